#!/usr/bin/env bash
# t/lib/run-local.sh: the servers behind `make run` and `make demo`.
#
#   t/lib/run-local.sh run      collect from Binance
#   t/lib/run-local.sh demo     collect from the bundled mock exchange (offline)
#   t/lib/run-local.sh stop     stop the PostgreSQL and Redis started under ./var
#   t/lib/run-local.sh status   show what runs under ./var
#
# PostgreSQL: when POSTGRES_HOST or POSTGRES_PORT is set, that server is used
# (and must answer). Otherwise the one already started under ./var/pg, else
# one on localhost:5432 that accepts POSTGRES_USER (default postgres) with
# POSTGRES_PASSWORD (default empty), else a new one under ./var/pg. Redis
# alike (REDIS_HOST/REDIS_PORT, ./var/redis, localhost:6379, new).
#
# Servers started here: loopback only; PostgreSQL runs as the unprivileged
# `postgres` user when this runs as root (as t/lib/harness.sh does), with a
# generated password kept in ./var/pg/password (mode 0600); data persists in
# ./var across runs; ports 5432/6379 when free, other free ports otherwise,
# remembered in ./var/ports. They stay up after the collector stops (stop
# them with `t/lib/run-local.sh stop`). Running this again reuses them.
#
# RUN_LOCAL_IGNORE_DEFAULTS=1 skips the servers on localhost:5432/6379 (the
# tests use it so as never to touch a developer's own servers).
#
# Then $BUILD/binance-live -c ${BINANCE_LIVE_CONFIG:-conf/binance-live.yaml}
# runs in the foreground with POSTGRES_* and REDIS_* exported; Ctrl-C stops
# the collector only.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# Helpers shared with the test harness (PostgreSQL bin dir, running as the
# postgres user, port checks). No h_init: nothing here is cleaned up on exit.
# shellcheck source=t/lib/harness.sh
. "$here/harness.sh"
cd "$H_ROOT" || exit 1

VAR=$H_ROOT/var
PORTS_FILE=$VAR/ports
CONF=${BINANCE_LIVE_CONFIG:-conf/binance-live.yaml}

say() { printf 'run-local: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 2
}

# --- ./var/ports ------------------------------------------------------------
port_get() { # NAME -> stored port or ""
  [ -f "$PORTS_FILE" ] && sed -n "s/^$1=\([0-9]*\)$/\1/p" "$PORTS_FILE" | tail -n 1
}
port_set() { # NAME PORT
  mkdir -p "$VAR"
  touch "$PORTS_FILE"
  { grep -v "^$1=" "$PORTS_FILE"; echo "$1=$2"; } >"$PORTS_FILE.tmp"
  mv "$PORTS_FILE.tmp" "$PORTS_FILE"
}
# The preferred port if free, else a random free one (no reservation: these
# servers outlive this script).
pick_port() {
  local p=$1 i
  if ! h__port_listening "$p"; then
    echo "$p"
    return
  fi
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12768))
    h__port_in_use "$p" || { echo "$p"; return; }
  done
  return 1
}

# --- PostgreSQL ---------------------------------------------------------------
# $PG_DIR keeps the password and, when the data lives elsewhere, its path
# (file home). The data, socket and log live in $PG_HOME: $PG_DIR itself,
# unless the postgres user cannot reach ./var (a checkout under /root, say);
# then a dir of that user's own under /var/lib/postgresql.
PG_DIR=$VAR/pg
PG_HOME=$PG_DIR
[ -f "$PG_DIR/home" ] && PG_HOME=$(cat "$PG_DIR/home")
PG_DATA=$PG_HOME/data

pg_local_running() {
  [ -f "$PG_DATA/PG_VERSION" ] || return 1
  H_PG_BIN=$(h__pg_bindir) || return 1
  (cd / && h__as_pg "$H_PG_BIN/pg_ctl" -D "$PG_DATA" status) >/dev/null 2>&1
}

pg_can_login() { # HOST PORT USER PASSWORD
  PGCONNECT_TIMEOUT=3 PGPASSWORD=$4 psql -XAtq -h "$1" -p "$2" -U "$3" \
    -d postgres -c 'SELECT 1' >/dev/null 2>&1
}

# Creates the collector's database on a server we can log in to.
pg_ensure_db() { # HOST PORT USER PASSWORD DB
  local have
  # (psql interpolates :'db' only in SQL read from stdin or a file, not -c)
  have=$(echo "SELECT count(*) FROM pg_database WHERE datname = :'db'" |
    PGPASSWORD=$4 psql -XAtq -h "$1" -p "$2" -U "$3" -d postgres -v db="$5" 2>/dev/null)
  [ "$have" = 1 ] && return 0
  say "creating database $5"
  PGPASSWORD=$4 psql -XAtq -h "$1" -p "$2" -U "$3" -d postgres \
    -c "CREATE DATABASE \"$5\"" >/dev/null ||
    die "cannot create database $5 on $1:$2 (create it, or set POSTGRES_DB)"
}

pg_local_init() {
  local user pw mask
  user=$(h__pg_user)
  mask=$(umask)
  mkdir -p "$PG_DIR"
  chmod 0755 "$PG_DIR"
  h__give_pg "$PG_DIR"
  if ! h__as_pg test -w "$PG_DIR"; then
    local base=/var/lib/postgresql
    PG_HOME=$base/binance-live-$(printf '%s' "$H_ROOT" | sha1sum | cut -c1-8)
    say "user $user cannot reach $PG_DIR; keeping the PostgreSQL data in $PG_HOME"
    mkdir -p "$PG_HOME" && h__give_pg "$PG_HOME" && h__as_pg test -w "$PG_HOME" ||
      die "cannot prepare $PG_HOME for user $user; set POSTGRES_HOST to use another server"
    printf '%s\n' "$PG_HOME" >"$PG_DIR/home"
    PG_DATA=$PG_HOME/data
  fi
  pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  umask 077
  printf '%s\n' "$pw" >"$PG_HOME/pwfile"
  h__give_pg "$PG_HOME/pwfile"
  say "initialising PostgreSQL in $PG_DATA (user postgres, password in $PG_DIR/password)"
  if ! h__as_pg "$H_PG_BIN/initdb" -D "$PG_DATA" -U postgres \
    --pwfile="$PG_HOME/pwfile" --auth-host=scram-sha-256 --auth-local=peer \
    --encoding=UTF8 --locale=C >"$VAR/initdb.log" 2>&1; then
    rm -f "$PG_HOME/pwfile"
    cat "$VAR/initdb.log" >&2
    die "initdb failed"
  fi
  rm -f "$PG_HOME/pwfile"
  printf '%s\n' "$pw" >"$PG_DIR/password"
  chmod 600 "$PG_DIR/password"
  umask "$mask"
}

pg_local_start() {
  H_PG_BIN=$(h__pg_bindir) || die "PostgreSQL server binaries missing (make deps)"
  [ -f "$PG_DATA/PG_VERSION" ] || pg_local_init
  local port
  port=$(port_get pg)
  if [ -z "$port" ] || h__port_listening "$port"; then
    port=$(pick_port 5432) || die "no free port for PostgreSQL"
  fi
  port_set pg "$port"
  mkdir -p "$PG_HOME/sock"
  touch "$PG_HOME/log"
  h__give_pg "$PG_HOME/sock" "$PG_HOME/log"
  say "starting PostgreSQL on 127.0.0.1:$port (log $PG_HOME/log)"
  # pg_ctl puts the postmaster in its own session: Ctrl-C on the collector
  # does not reach it.
  (cd / && h__as_pg "$H_PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_HOME/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_HOME/sock" \
    start) >/dev/null || {
    tail -n 20 "$PG_HOME/log" >&2
    die "PostgreSQL did not start"
  }
}

pg_setup() {
  if [ -n "${POSTGRES_HOST:-}${POSTGRES_PORT:-}" ]; then
    PG_HOST=${POSTGRES_HOST:-localhost} PG_PORT=${POSTGRES_PORT:-5432}
    PG_USER=${POSTGRES_USER:-postgres} PG_PASS=${POSTGRES_PASSWORD:-}
    pg_can_login "$PG_HOST" "$PG_PORT" "$PG_USER" "$PG_PASS" ||
      die "PostgreSQL at $PG_HOST:$PG_PORT (POSTGRES_HOST/POSTGRES_PORT) does not accept user $PG_USER; fix it or unset those variables to use a local server under ./var"
    say "using PostgreSQL at $PG_HOST:$PG_PORT (from POSTGRES_HOST/POSTGRES_PORT)"
  elif pg_local_running; then
    PG_HOST=127.0.0.1 PG_PORT=$(port_get pg) PG_USER=postgres
    PG_PASS=$(cat "$PG_DIR/password")
    say "using the PostgreSQL already running under ./var (127.0.0.1:$PG_PORT)"
  elif [ ! -f "$PG_DATA/PG_VERSION" ] && [ "${RUN_LOCAL_IGNORE_DEFAULTS:-0}" != 1 ] &&
    pg_can_login localhost 5432 "${POSTGRES_USER:-postgres}" "${POSTGRES_PASSWORD:-}"; then
    PG_HOST=localhost PG_PORT=5432
    PG_USER=${POSTGRES_USER:-postgres} PG_PASS=${POSTGRES_PASSWORD:-}
    say "using the PostgreSQL already listening on localhost:5432"
  else
    if [ ! -f "$PG_DATA/PG_VERSION" ] && [ "${RUN_LOCAL_IGNORE_DEFAULTS:-0}" != 1 ] &&
      h__port_listening 5432; then
      say "a server on localhost:5432 does not accept user ${POSTGRES_USER:-postgres} without a password; starting our own"
    fi
    pg_local_start
    PG_HOST=127.0.0.1 PG_PORT=$(port_get pg) PG_USER=postgres
    PG_PASS=$(cat "$PG_DIR/password")
  fi
  PG_DB=${POSTGRES_DB:-binance_data}
  pg_ensure_db "$PG_HOST" "$PG_PORT" "$PG_USER" "$PG_PASS" "$PG_DB"
  export POSTGRES_HOST=$PG_HOST POSTGRES_PORT=$PG_PORT POSTGRES_USER=$PG_USER \
    POSTGRES_PASSWORD=$PG_PASS POSTGRES_DB=$PG_DB
}

# --- Redis ----------------------------------------------------------------------
REDIS_DIR=$VAR/redis

redis_answers() { # HOST PORT: PONG, or an auth error (it is a Redis)
  local r
  r=$(timeout 3 redis-cli -h "$1" -p "$2" ${REDIS_PASSWORD:+--no-auth-warning -a "$REDIS_PASSWORD"} ping 2>&1)
  [ "$r" = PONG ]
}

redis_local_pid() {
  local pid
  pid=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && h__alive "$pid" && echo "$pid"
}

redis_local_start() {
  command -v redis-server >/dev/null || die "redis-server missing (make deps)"
  local port
  port=$(port_get redis)
  if [ -z "$port" ] || h__port_listening "$port"; then
    port=$(pick_port 6379) || die "no free port for Redis"
  fi
  port_set redis "$port"
  mkdir -p "$REDIS_DIR"
  say "starting Redis on 127.0.0.1:$port (data and log in $REDIS_DIR)"
  # --daemonize: its own session, so Ctrl-C on the collector does not stop it.
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --dir "$REDIS_DIR" \
    --logfile "$REDIS_DIR/redis.log" --appendonly no >/dev/null ||
    die "redis-server did not start (see $REDIS_DIR/redis.log)"
  h_wait_for 10 redis_answers 127.0.0.1 "$port" ||
    die "redis-server does not answer (see $REDIS_DIR/redis.log)"
}

redis_setup() {
  if [ -n "${REDIS_HOST:-}${REDIS_PORT:-}" ]; then
    RD_HOST=${REDIS_HOST:-localhost} RD_PORT=${REDIS_PORT:-6379}
    redis_answers "$RD_HOST" "$RD_PORT" ||
      die "Redis at $RD_HOST:$RD_PORT (REDIS_HOST/REDIS_PORT) does not answer PING; fix it or unset those variables to use a local server under ./var"
    say "using Redis at $RD_HOST:$RD_PORT (from REDIS_HOST/REDIS_PORT)"
  elif redis_local_pid >/dev/null && redis_answers 127.0.0.1 "$(port_get redis)"; then
    RD_HOST=127.0.0.1 RD_PORT=$(port_get redis)
    say "using the Redis already running under ./var (127.0.0.1:$RD_PORT)"
  elif [ "${RUN_LOCAL_IGNORE_DEFAULTS:-0}" != 1 ] && redis_answers localhost 6379; then
    RD_HOST=localhost RD_PORT=6379
    say "using the Redis already listening on localhost:6379"
  else
    redis_local_start
    RD_HOST=127.0.0.1 RD_PORT=$(port_get redis)
  fi
  export REDIS_HOST=$RD_HOST REDIS_PORT=$RD_PORT
}

# --- the mock exchange (demo) -------------------------------------------------
# >>> Owned with t/mock: the flags below follow binance-mock's --help (--host,
# --port 0, --port-file FILE writing port=N). If they change, change only
# demo_start_mock; demo_point_collector takes the URLs. <<<
MOCK_PID=
demo_start_mock() {
  [ -x "$BUILD/binance-mock" ] || die "$BUILD/binance-mock is not built (make build)"
  local pf=$VAR/mock.ports port
  mkdir -p "$VAR"
  rm -f "$pf"
  "$BUILD/binance-mock" --host 127.0.0.1 --port 0 --port-file "$pf" \
    >"$VAR/mock.log" 2>&1 &
  MOCK_PID=$!
  h_wait_for 10 grep -q '^port=' "$pf" ||
    die "the mock exchange did not start (see $VAR/mock.log)"
  port=$(sed -n 's/^port=//p' "$pf")
  say "mock exchange on 127.0.0.1:$port (log $VAR/mock.log)"
  demo_point_collector "ws://127.0.0.1:$port" "http://127.0.0.1:$port"
}

demo_point_collector() { # WS_URL API_URL
  export BINANCE_WS_URL=$1 BINANCE_API_URL=$2
}

demo_stop_mock() {
  [ -n "$MOCK_PID" ] || return 0
  kill -TERM "$MOCK_PID" 2>/dev/null
  wait "$MOCK_PID" 2>/dev/null
  MOCK_PID=
}

# --- commands -------------------------------------------------------------------
stop_servers() {
  local pid
  if pg_local_running; then
    say "stopping PostgreSQL under ./var"
    (cd / && h__as_pg "$H_PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop) >/dev/null
  else
    say "PostgreSQL under ./var is not running"
  fi
  if pid=$(redis_local_pid); then
    say "stopping Redis under ./var"
    kill -TERM "$pid"
    h_wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" ||
      say "Redis (pid $pid) did not stop"
  else
    say "Redis under ./var is not running"
  fi
}

status() {
  if pg_local_running; then
    say "PostgreSQL under ./var: running on 127.0.0.1:$(port_get pg)"
  else
    say "PostgreSQL under ./var: not running"
  fi
  if redis_local_pid >/dev/null; then
    say "Redis under ./var: running on 127.0.0.1:$(port_get redis)"
  else
    say "Redis under ./var: not running"
  fi
}

collect() { # run | demo
  [ -x "$BUILD/binance-live" ] || die "$BUILD/binance-live is not built (make build)"
  [ -f "$CONF" ] || die "config $CONF not found (set BINANCE_LIVE_CONFIG)"
  pg_setup
  redis_setup
  [ "$1" = demo ] && demo_start_mock
  say "collector: $BUILD/binance-live -c $CONF (Ctrl-C stops it; the servers keep running)"
  local rc interrupted=0
  # A handler (not '') so that the collector still receives Ctrl-C itself.
  trap 'interrupted=1' INT
  "$BUILD/binance-live" -c "$CONF"
  rc=$?
  trap - INT
  demo_stop_mock
  say "collector exited with status $rc"
  if pg_local_running || redis_local_pid >/dev/null; then
    say "servers under ./var are still running; stop them with: t/lib/run-local.sh stop"
  fi
  [ $interrupted -eq 1 ] && [ $rc -eq 130 ] && rc=0
  return $rc
}

case "${1:-}" in
  run | demo) collect "$1" ;;
  stop) stop_servers ;;
  status) status ;;
  *)
    echo "usage: t/lib/run-local.sh run|demo|stop|status" >&2
    exit 2
    ;;
esac
