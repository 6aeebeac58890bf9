# t/lib/harness.sh: real PostgreSQL and Redis servers (and the project's own
# programs) for integration scripts, on free loopback ports in a temp dir.
# Sourced by t/integration/*.sh; sources t/lib/tap.sh itself.
#
# State (all in shell variables of the sourcing script): the temp dir
# $H_TMP, the servers' ports and pids, the list of ports this process has
# reserved, the pids of background programs. Everything started here is
# stopped on exit, failure, Ctrl-C or TERM (trap installed by h_init).
#
# Works as root and as a normal user. PostgreSQL refuses to run as root, so
# as root initdb/pg_ctl/postgres run as the unprivileged `postgres` system
# user (the Debian package creates it; H_PG_USER overrides) through runuser
# or setpriv; the dirs it needs are handed to that user. Redis and the
# project's programs run as the calling user.
#
#   h_init                 create $H_TMP, install the cleanup trap, unset
#                          collector env overrides (POSTGRES_*, REDIS_*, ...)
#                          inherited from the caller's shell. Call first.
#   h_cleanup              stop everything started here, release reserved
#                          ports, remove $H_TMP (kept when H_KEEP=1, and its
#                          path is printed). Idempotent; the trap calls it.
#
#   h_pg_start             PostgreSQL on 127.0.0.1:$PGPORT (free port) and a
#                          unix socket in $H_TMP/pgsock; data dir copied from
#                          a cached initdb template ($BUILD/pg-template);
#                          fsync off, commit timestamps on; database
#                          binance_data created. Exports
#                          PGHOST=127.0.0.1 PGPORT PGUSER=postgres
#                          PGDATABASE=binance_data (and H_PGDATA, H_PG_BIN).
#   h_pg_stop              fast shutdown, waits until it is gone.
#   h_pg_restart           stop, then start the SAME data dir on the SAME port.
#   h_pg_kill              immediate shutdown (no checkpoint: a crash, as far
#                          as the data is concerned). h_pg_start or
#                          h_pg_restart brings it back on the same port.
#   h_redis_start          redis-server on 127.0.0.1:$REDIS_PORT, no
#                          persistence. Exports REDIS_HOST=127.0.0.1 REDIS_PORT.
#   h_redis_stop, h_redis_restart (same port).
#
#   h_free_port            prints a free TCP port: picked at random in
#                          20000-32767 (below Linux's ephemeral range),
#                          checked with ss that nothing uses it, and reserved
#                          (${TMPDIR:-/tmp}/binance-live-ports/PORT, holding
#                          the owner's pid) so that other harness processes
#                          don't pick it too; released by h_cleanup. Also
#                          sets $H_PORT: prefer `h_free_port >/dev/null;
#                          p=$H_PORT` (inside $(...) the reservation is not
#                          released until this script has exited).
#   h_psql "SQL" [ARGS]    psql -XAtq -v ON_ERROR_STOP=1 -c SQL against the
#                          harness database; prints the rows. Without SQL,
#                          reads the SQL from stdin.
#   h_redis ARGS...        redis-cli against the harness server.
#   h_wait_for SECS CMD... runs CMD every 0.1 s until it succeeds (status 0)
#                          or SECS have passed (status 1).
#
#   h_mock_start ARGS...   starts $BUILD/binance-mock ARGS in the background,
#                          output in $H_TMP/mock.log, pid in $H_MOCK_PID.
#   h_mock_stop            SIGTERM to the mock, waits; returns its status.
#   h_collector_start CONFIG_FILE
#                          starts $BUILD/binance-live -c CONFIG_FILE in the
#                          background, stdout in $H_TMP/collector.out, stderr
#                          in $H_TMP/collector.log, pid in $H_COLLECTOR_PID.
#   h_collector_stop [SECS]
#                          SIGTERM, waits up to SECS (default 20) for it to
#                          exit, returns its exit status (SIGKILL and 137
#                          after the timeout).
#   h_config_write FILE [EXTRA_YAML]
#                          writes a collector config for the harness servers
#                          (sections app, database, redis, http, spool;
#                          http.listen on a free port, exported as
#                          H_HTTP_PORT) and appends EXTRA_YAML verbatim, which
#                          may add the other sections (binance, sync, stream,
#                          symbols) but must not repeat those five.
#
# Environment: BUILD (default build, relative to the repository root),
# H_KEEP=1 keeps $H_TMP, H_PG_USER (user PostgreSQL runs as under root),
# H_PG_BIN (PostgreSQL bin dir; default the highest /usr/lib/postgresql/*/bin).

H_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
H_ROOT=$(cd "$H_LIB/../.." && pwd)
# shellcheck source=t/lib/tap.sh
. "$H_LIB/tap.sh"

BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$H_ROOT/$BUILD" ;; esac
export BUILD

# State of this script's harness; reset here so that values exported by a
# parent test script (a test may run another harness script) don't leak in.
H_TMP=
H_PIDS=()          # background programs to stop at cleanup
H_PORTS=()         # ports reserved by this process
H_PORT=            # the port h_free_port picked last
H_PG_STARTED=0
H_PGDATA=
H_PG_PORT=
H_REDIS_PID=
H_REDIS_PORT=
H_MOCK_PID=
H_COLLECTOR_PID=
H_HTTP_PORT=
H_CLEANED=0

h__log() { printf 'harness: %s\n' "$*" >&2; }

# --- running PostgreSQL as an unprivileged user -----------------------------

# The user PostgreSQL runs as: the caller, or under root $H_PG_USER/postgres.
h__pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    printf '%s\n' "${H_PG_USER:-postgres}"
  else
    id -un
  fi
}

# Runs a command as the PostgreSQL user (directly when not root).
h__as_pg() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
    return
  fi
  local u
  u=$(h__pg_user)
  if ! id "$u" >/dev/null 2>&1; then
    h__log "user '$u' does not exist; set H_PG_USER to an unprivileged user"
    return 1
  fi
  # From a dir that user can read (pg_ctl wants a usable cwd).
  if command -v runuser >/dev/null 2>&1; then
    (cd "${H_TMP:-/}" && runuser -u "$u" -- "$@")
  else
    (cd "${H_TMP:-/}" &&
      setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@")
  fi
}

# Makes a dir (and its contents) belong to the PostgreSQL user.
h__give_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    local u
    u=$(h__pg_user)
    chown -R "$u:$(id -gn "$u")" "$@"
  fi
}

# The bin dir of the highest installed PostgreSQL, or $H_PG_BIN.
h__pg_bindir() {
  if [ -n "${H_PG_BIN:-}" ]; then
    printf '%s\n' "$H_PG_BIN"
    return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] || [ ! -x "$d/postgres" ]; then
    h__log "no PostgreSQL server under /usr/lib/postgresql/*/bin (deps/install.sh)"
    return 1
  fi
  printf '%s\n' "$d"
}

# --- ports ------------------------------------------------------------------

h__port_dir() { printf '%s\n' "${TMPDIR:-/tmp}/binance-live-ports"; }

# True when some TCP socket (listening or not) uses the port locally.
h__port_in_use() {
  local p=$1
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
  fi
}

# True when something listens on the port (a server could not bind it;
# TIME_WAIT leftovers of a stopped server don't count).
h__port_listening() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Reserves a port for this process (atomic mkdir); a reservation whose owner
# has died is taken over.
h__port_reserve() {
  local p=$1 dir owner
  dir=$(h__port_dir)
  mkdir -p "$dir" 2>/dev/null && chmod 1777 "$dir" 2>/dev/null
  if ! mkdir "$dir/$p" 2>/dev/null; then
    owner=$(cat "$dir/$p/pid" 2>/dev/null)
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then
      return 1
    fi
    # stale (owner gone) or unreadable: take it over only if we can
    rm -rf "${dir:?}/$p" 2>/dev/null || return 1
    mkdir "$dir/$p" 2>/dev/null || return 1
  fi
  echo $$ >"$dir/$p/pid"
  H_PORTS+=("$p")
}

h__port_release_all() {
  local p dir
  dir=$(h__port_dir)
  for p in "${H_PORTS[@]}"; do
    rm -rf "${dir:?}/$p"
  done
  H_PORTS=()
}

# Must not run in a subshell ($(h_free_port) would lose the reservation
# list): callers use `h_free_port; port=$H_PORT` or the helper below.
h_free_port() {
  local i p
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12768))
    h__port_in_use "$p" && continue
    h__port_reserve "$p" || continue
    H_PORT=$p
    printf '%s\n' "$p"
    return 0
  done
  h__log "no free port found"
  return 1
}

# --- lifecycle ----------------------------------------------------------------

h_init() {
  if [ -n "$H_TMP" ]; then
    return 0
  fi
  H_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bl-test.XXXXXX") || return 1
  # PostgreSQL's user (under root) must reach its dirs inside.
  chmod 0711 "$H_TMP"
  export H_TMP
  # shellcheck disable=SC2154 # h__rc is set inside the trap
  trap 'h__rc=$?; h_cleanup; exit $h__rc' EXIT
  trap 'h_cleanup; trap - INT; kill -INT $$' INT
  trap 'h_cleanup; exit 143' TERM
  # The collector reads these; a value from the caller's shell would point
  # it away from the harness servers. Tests set them after h_init if needed.
  unset POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD \
    POSTGRES_DB POSTGRES_SSLMODE REDIS_HOST REDIS_PORT REDIS_PASSWORD \
    REDIS_DB BINANCE_API_URL BINANCE_WS_URL BINANCE_CA_FILE LOG_LEVEL \
    LOG_FORMAT HTTP_LISTEN SPOOL_DIR BINANCE_LIVE_CONFIG \
    PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE \
    PGHOSTADDR PGCONNECT_TIMEOUT
}

# Stops one background pid: TERM, up to 10 s, then KILL.
h__stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

h_cleanup() {
  [ "$H_CLEANED" -eq 1 ] && return 0
  H_CLEANED=1
  local pid
  for pid in "${H_PIDS[@]}"; do
    h__stop_pid "$pid"
  done
  H_PIDS=()
  h_redis_stop >/dev/null 2>&1
  if [ "$H_PG_STARTED" -eq 1 ]; then
    pid=$(h__pg_pid)
    h__pg_ctl stop -w -t 30 -s -m immediate >/dev/null 2>&1
    h__pg_force_gone "$pid"
    H_PG_STARTED=0
  fi
  h__port_release_all
  if [ -n "$H_TMP" ] && [ -d "$H_TMP" ]; then
    if [ "${H_KEEP:-0}" = 1 ]; then
      h__log "kept $H_TMP"
    else
      rm -rf "$H_TMP"
    fi
  fi
  return 0
}

# --- PostgreSQL ---------------------------------------------------------------

h__pg_ctl() {
  h__as_pg "$H_PG_BIN/pg_ctl" -D "$H_PGDATA" "$@"
}

# The postmaster's pid from postmaster.pid (readable by root and the owner).
h__pg_pid() {
  head -n 1 "$H_PGDATA/postmaster.pid" 2>/dev/null
}

# True while a process exists and is not a zombie. (The postmaster is not
# our child: pg_ctl detaches it, so once it exits it may linger as a zombie
# until init reaps it; that counts as gone.)
h__alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$st" in Z*|"") return 1 ;; esac
  return 0
}

# Last resort after pg_ctl stop: kill a postmaster that is still there.
h__pg_force_gone() {
  local pid=${1:-} i
  [ -n "$pid" ] || pid=$(h__pg_pid)
  [ -n "$pid" ] || return 0
  for i in $(seq 1 50); do
    h__alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  return 0
}

# A fresh data dir for this test: a copy of the cached template, made once
# per PostgreSQL version and user under $BUILD/pg-template.
h__pg_datadir() {
  local ver user tpl dst=$H_TMP/pgdata tmp
  ver=$("$H_PG_BIN/postgres" --version | awk '{print $NF}' | cut -d. -f1)
  user=$(h__pg_user)
  tpl="$BUILD/pg-template/$ver-$user"
  if [ ! -f "$tpl/PG_VERSION" ]; then
    tmp="$H_TMP/initdb"
    mkdir -p "$tmp"
    h__give_pg "$tmp"
    if ! h__as_pg "$H_PG_BIN/initdb" -D "$tmp/data" -U postgres \
      --auth=trust --encoding=UTF8 --locale=C --no-sync \
      >"$H_TMP/initdb.log" 2>&1; then
      h__log "initdb failed:"
      sed 's/^/  /' "$H_TMP/initdb.log" >&2
      return 1
    fi
    # Publish the template atomically; if $BUILD is not writable, use the
    # fresh dir directly (no cache).
    if mkdir -p "$BUILD/pg-template" 2>/dev/null &&
      cp -a "$tmp/data" "$tpl.$$" 2>/dev/null &&
      mv -T "$tpl.$$" "$tpl" 2>/dev/null; then
      :
    else
      rm -rf "$tpl.$$" 2>/dev/null
      mv "$tmp/data" "$dst"
      rm -rf "$tmp"
      return 0
    fi
    rm -rf "$tmp"
  fi
  if ! cp -a "$tpl" "$dst" 2>/dev/null; then
    h__log "cannot copy $tpl; remove it (make clean) or check permissions"
    return 1
  fi
  h__give_pg "$dst"
  chmod 0700 "$dst"
}

# Starts the server on $PGPORT with the data dir $H_PGDATA.
h__pg_launch() {
  local opts
  opts="-c listen_addresses=127.0.0.1 -c port=$PGPORT"
  opts="$opts -c unix_socket_directories=$H_TMP/pgsock"
  opts="$opts -c fsync=off -c full_page_writes=off"
  opts="$opts -c max_connections=100 -c shared_buffers=32MB"
  opts="$opts -c max_wal_size=1GB -c checkpoint_timeout=30min"
  opts="$opts -c autovacuum=off -c jit=off -c logging_collector=off"
  # Commit times, so that tests can check the order rows committed in.
  opts="$opts -c track_commit_timestamp=on"
  opts="$opts -c log_min_messages=warning -c log_line_prefix=%m_[%p]_"
  if ! h__pg_ctl start -w -t 60 -s -o "$opts" -l "$H_TMP/pg.log" \
    >/dev/null 2>&1; then
    return 1
  fi
  H_PG_STARTED=1
}

h_pg_start() {
  [ -n "$H_TMP" ] || h_init || return 1
  H_PG_BIN=$(h__pg_bindir) || return 1
  export H_PG_BIN
  if [ -z "${H_PGDATA:-}" ]; then
    H_PGDATA=$H_TMP/pgdata
    h__pg_datadir || return 1
    mkdir -p "$H_TMP/pgsock"
    h__give_pg "$H_TMP/pgsock"
    touch "$H_TMP/pg.log"
    h__give_pg "$H_TMP/pg.log"
  fi
  if [ -z "${PGPORT:-}" ] || [ "${H_PG_PORT:-}" != "$PGPORT" ]; then
    # First start: a free port; retry with another if someone took it.
    local try
    for try in 1 2 3; do
      h_free_port >/dev/null || return 1
      PGPORT=$H_PORT
      h__pg_launch && break
      h__log "postgres did not start on port $PGPORT (try $try)"
      tail -n 5 "$H_TMP/pg.log" >&2
    done
    [ "$H_PG_STARTED" -eq 1 ] || return 1
    H_PG_PORT=$PGPORT
  else
    # Restart: the same port, as fault tests expect.
    if ! h__pg_launch; then
      h__log "postgres did not restart on port $PGPORT"
      tail -n 5 "$H_TMP/pg.log" >&2
      return 1
    fi
  fi
  export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=binance_data
  if [ "$(PGDATABASE=postgres h_psql "SELECT count(*) FROM pg_database WHERE datname = 'binance_data'")" != 1 ]; then
    PGDATABASE=postgres h_psql "CREATE DATABASE binance_data" || return 1
  fi
}

h_pg_stop() {
  [ "$H_PG_STARTED" -eq 1 ] || return 0
  local pid
  pid=$(h__pg_pid)
  h__pg_ctl stop -w -t 60 -s -m fast >/dev/null 2>&1
  h__pg_force_gone "$pid"
  H_PG_STARTED=0
}

h_pg_restart() {
  h_pg_stop
  h_pg_start
}

h_pg_kill() {
  [ "$H_PG_STARTED" -eq 1 ] || return 0
  local pid
  pid=$(h__pg_pid)
  h__pg_ctl stop -w -t 60 -s -m immediate >/dev/null 2>&1
  h__pg_force_gone "$pid"
  H_PG_STARTED=0
}

h_psql() {
  if [ $# -eq 0 ]; then
    psql -XAtq -v ON_ERROR_STOP=1 -f -
  else
    local sql=$1
    shift
    psql -XAtq -v ON_ERROR_STOP=1 "$@" -c "$sql"
  fi
}

# --- Redis ----------------------------------------------------------------------

h__redis_launch() {
  mkdir -p "$H_TMP/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$H_TMP/redis" --daemonize no \
    --logfile "$H_TMP/redis.log" --loglevel warning \
    --databases 16 >/dev/null 2>&1 &
  H_REDIS_PID=$!
  if ! h_wait_for 10 h__redis_ready; then
    h__stop_pid "$H_REDIS_PID"
    H_REDIS_PID=
    return 1
  fi
}

h__redis_ready() {
  kill -0 "$H_REDIS_PID" 2>/dev/null &&
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

h_redis_start() {
  [ -n "$H_TMP" ] || h_init || return 1
  if [ -z "${H_REDIS_PORT:-}" ]; then
    local try
    for try in 1 2 3; do
      h_free_port >/dev/null || return 1
      REDIS_PORT=$H_PORT
      h__redis_launch && break
      h__log "redis-server did not start on port $REDIS_PORT (try $try)"
      tail -n 5 "$H_TMP/redis.log" >&2
    done
    [ -n "$H_REDIS_PID" ] || return 1
    H_REDIS_PORT=$REDIS_PORT
  else
    REDIS_PORT=$H_REDIS_PORT
    if ! h__redis_launch; then
      h__log "redis-server did not restart on port $REDIS_PORT"
      tail -n 5 "$H_TMP/redis.log" >&2
      return 1
    fi
  fi
  export REDIS_HOST=127.0.0.1 REDIS_PORT
}

h_redis_stop() {
  [ -n "$H_REDIS_PID" ] || return 0
  h__stop_pid "$H_REDIS_PID"
  H_REDIS_PID=
}

h_redis_restart() {
  h_redis_stop
  h_redis_start
}

h_redis() {
  redis-cli -h 127.0.0.1 -p "$H_REDIS_PORT" "$@"
}

# --- waiting --------------------------------------------------------------------

h_wait_for() {
  local secs=$1 deadline
  shift
  deadline=$(($(date +%s%N) + secs * 1000000000))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s%N)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# --- the project's programs -----------------------------------------------------

h_mock_start() {
  # Starts the mock exchange on free ports (ARGS are its flags, see
  # t/mock/README.md) and waits until it listens. Exports MOCK_PORT,
  # MOCK_CTL_PORT, MOCK_API_URL (http://127.0.0.1:PORT), MOCK_WS_URL
  # (ws://127.0.0.1:PORT) and MOCK_CTL (http://127.0.0.1:CTL_PORT).
  [ -n "$H_TMP" ] || h_init || return 1
  if [ ! -x "$BUILD/binance-mock" ]; then
    h__log "$BUILD/binance-mock is not built"
    return 1
  fi
  local pf=$H_TMP/mock.ports i
  rm -f "$pf"
  "$BUILD/binance-mock" --port 0 --control-port 0 --port-file "$pf" "$@" \
    >>"$H_TMP/mock.log" 2>&1 &
  H_MOCK_PID=$!
  H_PIDS+=("$H_MOCK_PID")
  for i in $(seq 200); do
    [ -s "$pf" ] && break
    sleep 0.05
  done
  if [ ! -s "$pf" ]; then
    h__log "the mock exchange did not start (see $H_TMP/mock.log)"
    return 1
  fi
  MOCK_PORT=$(sed -n 's/^port=//p' "$pf")
  MOCK_CTL_PORT=$(sed -n 's/^control_port=//p' "$pf")
  MOCK_API_URL=http://127.0.0.1:$MOCK_PORT
  MOCK_WS_URL=ws://127.0.0.1:$MOCK_PORT
  MOCK_CTL=http://127.0.0.1:$MOCK_CTL_PORT
  export MOCK_PORT MOCK_CTL_PORT MOCK_API_URL MOCK_WS_URL MOCK_CTL
}

h_mock_stop() {
  [ -n "$H_MOCK_PID" ] || return 0
  local pid=$H_MOCK_PID rc
  H_MOCK_PID=
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  return $rc
}

h_collector_start() {
  [ -n "$H_TMP" ] || h_init || return 1
  if [ ! -x "$BUILD/binance-live" ]; then
    h__log "$BUILD/binance-live is not built"
    return 1
  fi
  "$BUILD/binance-live" -c "$1" >>"$H_TMP/collector.out" \
    2>>"$H_TMP/collector.log" &
  H_COLLECTOR_PID=$!
  H_PIDS+=("$H_COLLECTOR_PID")
}

h_collector_stop() {
  [ -n "$H_COLLECTOR_PID" ] || return 0
  local pid=$H_COLLECTOR_PID secs=${1:-20} i rc
  H_COLLECTOR_PID=
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    h__log "collector did not exit within ${secs}s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  rc=$?
  return $rc
}

h_config_write() {
  local file=$1 extra=${2:-}
  h_free_port >/dev/null || return 1
  H_HTTP_PORT=$H_PORT
  export H_HTTP_PORT
  mkdir -p "$H_TMP/spool"
  {
    printf 'app:\n'
    printf '  name: binance-live-test\n'
    printf '  environment: test\n'
    printf '  log_level: debug\n'
    printf '  log_format: text\n'
    printf 'database:\n'
    printf '  host: "127.0.0.1"\n'
    printf '  port: %s\n' "${PGPORT:-5432}"
    printf '  user: postgres\n'
    printf '  password: ""\n'
    printf '  database: binance_data\n'
    printf '  ssl_mode: disable\n'
    printf 'redis:\n'
    printf '  host: "127.0.0.1"\n'
    printf '  port: %s\n' "${REDIS_PORT:-6379}"
    printf 'http:\n'
    printf '  listen: "127.0.0.1:%s"\n' "$H_HTTP_PORT"
    printf 'spool:\n'
    printf '  dir: "%s"\n' "$H_TMP/spool"
    if [ -n "$extra" ]; then
      printf '%s\n' "$extra"
    fi
  } >"$file"
}
