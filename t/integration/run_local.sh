#!/usr/bin/env bash
# run_local.sh: t/lib/run-local.sh (behind `make run` and `make demo`) in a
# scratch copy of the repository: it starts PostgreSQL and Redis under ./var
# (loopback, password, persistent), hands them to the collector through the
# environment, leaves them running, reuses them on the next run, points the
# collector at the mock for `demo`, passes the collector's exit status on,
# and `stop` stops them. Stand-in programs play the collector and the mock;
# the servers are real. The ports come from a pre-seeded ./var/ports and
# RUN_LOCAL_IGNORE_DEFAULTS=1 keeps it away from servers on 5432/6379.
set -u
. "$(dirname "$0")/../lib/harness.sh"

h_init
repo=$H_TMP/repo
mkdir -p "$repo/t/lib" "$repo/conf" "$repo/var"
cp "$H_LIB/harness.sh" "$H_LIB/tap.sh" "$H_LIB/run-local.sh" "$repo/t/lib/"
echo 'app: {}' >"$repo/conf/binance-live.yaml"
rl=$repo/t/lib/run-local.sh
# Whatever happens, stop what run-local.sh started before the harness
# removes $H_TMP.
trap 'rc=$?; "$rl" stop >/dev/null 2>&1; h_cleanup; exit $rc' EXIT
trap '"$rl" stop >/dev/null 2>&1; h_cleanup; exit 143' TERM

h_free_port >/dev/null
pg_port=$H_PORT
h_free_port >/dev/null
redis_port=$H_PORT
printf 'pg=%s\nredis=%s\n' "$pg_port" "$redis_port" >"$repo/var/ports"

# Stand-in collector: reports what it was given and whether the servers
# answer with it, then exits with $FAKE_RC.
fake=$H_TMP/fakebuild
mkdir -p "$fake"
cat >"$fake/binance-live" <<'EOF'
#!/usr/bin/env bash
echo "args: $*"
echo "pg: $POSTGRES_HOST:$POSTGRES_PORT db=$POSTGRES_DB user=$POSTGRES_USER"
echo "redis: $REDIS_HOST:$REDIS_PORT"
echo "ws: ${BINANCE_WS_URL:-} api: ${BINANCE_API_URL:-}"
PGPASSWORD=$POSTGRES_PASSWORD psql -XAtq -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" \
  -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -c "CREATE TABLE IF NOT EXISTS kept (n int); INSERT INTO kept VALUES (1)" \
  -c "SELECT 'pg-ok ' || count(*) FROM kept"
echo "redis-$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping)"
exit "${FAKE_RC:-0}"
EOF
cat >"$fake/binance-mock" <<'EOF'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do
  case $1 in --port-file) pf=$2; shift ;; esac
  shift
done
printf 'port=%s\ncontrol_port=%s\n' 23999 24000 >"$pf"
trap 'exit 0' TERM
while :; do sleep 0.05; done
EOF
chmod +x "$fake/binance-live" "$fake/binance-mock"

run_local() { # MODE: runs run-local.sh, output in $out, status in $rc
  out=$(env -u POSTGRES_HOST -u POSTGRES_PORT -u REDIS_HOST -u REDIS_PORT \
    BUILD="$fake" RUN_LOCAL_IGNORE_DEFAULTS=1 "$rl" "$@" 2>&1)
  rc=$?
}

# --- first run: servers created ---------------------------------------------
t0=$(date +%s%N)
run_local run
diag "first run (initdb + start) took $((($(date +%s%N) - t0) / 1000000)) ms"
is "$rc" 0 "make run: exit status 0 when the collector exits 0"
[ $rc -ne 0 ] && printf '%s\n' "$out" | sed 's/^/#   /'
like "$out" "args: -c conf/binance-live.yaml" "the collector runs with -c conf/binance-live.yaml"
like "$out" "pg: 127.0.0.1:$pg_port db=binance_data user=postgres" "POSTGRES_* point at the local server (port from ./var/ports)"
like "$out" "pg-ok 1" "the collector can log in to binance_data with the exported password"
like "$out" "redis: 127.0.0.1:$redis_port" "REDIS_* point at the local server"
like "$out" "redis-PONG" "the collector reaches Redis"
like "$out" "initialising PostgreSQL" "it says it initialises PostgreSQL"
like "$out" "t/lib/run-local.sh stop" "it tells how to stop the servers"
is "$(stat -c %a "$repo/var/pg/password")" 600 "the generated password is private (0600)"
pw=$(cat "$repo/var/pg/password")
is "$(PGPASSWORD=$pw psql -XAtq -h 127.0.0.1 -p "$pg_port" -U postgres -d binance_data -c 'SHOW listen_addresses')" \
  127.0.0.1 "PostgreSQL listens on loopback only"
! PGPASSWORD=wrong psql -XAtq -h 127.0.0.1 -p "$pg_port" -U postgres -d binance_data -c 'SELECT 1' >/dev/null 2>&1
ok $? "PostgreSQL refuses a wrong password"
is "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping)" PONG "servers keep running after the collector exits"
if [ "$(id -u)" -eq 0 ]; then
  pgpid=$(head -n 1 "$repo/var/pg/data/postmaster.pid")
  is "$(ps -o user= -p "$pgpid")" postgres "under root, PostgreSQL runs as postgres"
fi

# --- second run: reused -----------------------------------------------------
run_local run
is "$rc" 0 "second run: exit status 0"
like "$out" "using the PostgreSQL already running under ./var \(127.0.0.1:$pg_port\)" "second run reuses PostgreSQL"
like "$out" "using the Redis already running under ./var \(127.0.0.1:$redis_port\)" "second run reuses Redis"
like "$out" "pg-ok 2" "the data of the first run is there"

FAKE_RC=3 run_local run
is "$rc" 3 "the collector's exit status is passed on"

# --- demo -------------------------------------------------------------------
run_local demo
is "$rc" 0 "make demo: exit status 0"
like "$out" "ws: ws://127.0.0.1:23999 api: http://127.0.0.1:23999" "demo points BINANCE_WS_URL and BINANCE_API_URL at the mock"
! pgrep -f "$fake/binance-mock" >/dev/null
ok $? "the mock is stopped with the collector"

# --- explicit configuration that does not answer -----------------------------
h_free_port >/dev/null
closed=$H_PORT
out=$(POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$closed BUILD="$fake" "$rl" run 2>&1)
rc=$?
is "$rc" 2 "an unreachable POSTGRES_HOST/PORT is an error (status 2)"
like "$out" "does not accept user postgres" "with a clear message"

# --- stop and start again -----------------------------------------------------
run_local status
like "$out" "PostgreSQL under ./var: running on 127.0.0.1:$pg_port" "status shows PostgreSQL"
run_local stop
is "$rc" 0 "stop: exit status 0"
h_wait_for 10 bash -c "[ -z \"\$(ss -Htln '( sport = :$pg_port or sport = :$redis_port )')\" ]"
ok $? "stop closes both ports"
run_local status
like "$out" "PostgreSQL under ./var: not running" "status after stop"
run_local run
is "$rc" 0 "a run after stop starts the servers again"
like "$out" "pg-ok 5" "with the data kept in ./var"
like "$out" "pg: 127.0.0.1:$pg_port " "on the same port"

done_testing
