#!/usr/bin/env bash
# harness_selftest.sh: proves t/lib/harness.sh does what every other
# integration test relies on: PostgreSQL and Redis start on free loopback
# ports, answer, come back on the SAME port after a restart (and after an
# immediate kill), stop completely, and nothing survives the script (exit,
# failure or SIGTERM). Also checks h_free_port, h_wait_for, h_config_write
# and the background-program helpers (with stand-in programs, since the
# mock and the collector are tested elsewhere).
set -u
. "$(dirname "$0")/../lib/harness.sh"

h_init

# Prints the pids of processes listening on 127.0.0.1:PORT or any address.
listeners() {
  ss -Htlnp "( sport = :$1 )" 2>/dev/null
}
port_closed() { [ -z "$(listeners "$1")" ]; }

# --- ports ---------------------------------------------------------------------
h_free_port >/dev/null
p1=$H_PORT
h_free_port >/dev/null
p2=$H_PORT
[ "$p1" != "$p2" ]; ok $? "h_free_port gives a different port each time ($p1, $p2)"
[ -d "$(h__port_dir)/$p1" ]; ok $? "the port is reserved for other harness processes"
port_closed "$p1"; ok $? "nothing listens on the picked port"

# --- PostgreSQL ----------------------------------------------------------------
t0=$(date +%s%N)
h_pg_start
ok $? "h_pg_start"
diag "postgres on port $PGPORT, started in $((($(date +%s%N) - t0) / 1000000)) ms"
pg_port=$PGPORT
is "$(h_psql 'SELECT 1')" 1 "postgres answers"
is "$(h_psql 'SELECT current_database()')" binance_data "database binance_data exists and is the default"
is "$PGHOST:$PGUSER" "127.0.0.1:postgres" "PGHOST and PGUSER exported"
is "$(h_psql 'SHOW fsync')" off "fsync is off for speed"
is "$(h_psql 'SHOW listen_addresses')" 127.0.0.1 "postgres listens on loopback only"
like "$(listeners "$pg_port")" "127\.0\.0\.1:$pg_port" "postgres listens on 127.0.0.1:$pg_port"
pg_pid=$(h__pg_pid)
pg_owner=$(ps -o user= -p "$pg_pid")
if [ "$(id -u)" -eq 0 ]; then
  [ "$pg_owner" != root ]; ok $? "postgres runs unprivileged under root (as $pg_owner)"
else
  is "$pg_owner" "$(id -un)" "postgres runs as the calling user"
fi
[ -S "$H_TMP/pgsock/.s.PGSQL.$pg_port" ]; ok $? "unix socket in \$H_TMP/pgsock"

h_psql "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')"
h_pg_restart
ok $? "h_pg_restart"
is "$PGPORT" "$pg_port" "restart keeps the port"
is "$(h_psql 'SELECT v FROM kept')" before "restart keeps the data dir"
[ "$(h__pg_pid)" != "$pg_pid" ]; ok $? "restart runs a new postmaster"

h_psql "INSERT INTO kept VALUES ('committed before kill')"
old_pid=$(h__pg_pid)
h_pg_kill
! h__alive "$old_pid"; ok $? "h_pg_kill stops the postmaster"
! { h_psql 'SELECT 1' >/dev/null 2>&1; }; ok $? "postgres is unreachable after h_pg_kill"
h_pg_start
ok $? "h_pg_start after h_pg_kill (crash recovery)"
is "$PGPORT" "$pg_port" "same port after a kill"
is "$(h_psql 'SELECT count(*) FROM kept')" 2 "committed rows survive the kill"

# --- Redis ---------------------------------------------------------------------
h_redis_start
ok $? "h_redis_start"
redis_port=$REDIS_PORT
is "$(h_redis ping)" PONG "redis answers"
is "$REDIS_HOST" 127.0.0.1 "REDIS_HOST exported"
is "$(h_redis config get save | tail -n 1)" "" "redis has no RDB snapshots"
is "$(h_redis config get appendonly | tail -n 1)" no "redis has no AOF"
like "$(listeners "$redis_port")" "127\.0\.0\.1:$redis_port" "redis listens on 127.0.0.1:$redis_port"
h_redis set k v >/dev/null
redis_pid=$H_REDIS_PID
h_redis_restart
ok $? "h_redis_restart"
is "$REDIS_PORT" "$redis_port" "redis restart keeps the port"
is "$(h_redis ping)" PONG "redis answers after restart"
is "$(h_redis exists k)" 0 "redis restart starts empty (no persistence)"
! kill -0 "$redis_pid" 2>/dev/null; ok $? "the old redis process is gone"

# --- helpers -------------------------------------------------------------------
h_wait_for 2 true
ok $? "h_wait_for returns at once when the command succeeds"
t0=$(date +%s%N)
h_wait_for 1 false
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
{ [ $rc -ne 0 ] && [ $ms -ge 900 ] && [ $ms -lt 3000 ]; }; ok $? "h_wait_for gives up after its timeout ($ms ms)"
flag=$H_TMP/flag
(sleep 0.3; touch "$flag") &
h_wait_for 5 test -e "$flag"
ok $? "h_wait_for sees a condition that becomes true"

h_config_write "$H_TMP/test.yaml" "$(printf 'binance:\n  ws_url: "ws://127.0.0.1:1"')"
cfg=$(cat "$H_TMP/test.yaml")
like "$cfg" "port: $PGPORT" "config names the harness postgres port"
like "$cfg" "port: $REDIS_PORT" "config names the harness redis port"
like "$cfg" "listen: \"127.0.0.1:$H_HTTP_PORT\"" "config has http.listen on a free loopback port"
like "$cfg" "ws_url: \"ws://127.0.0.1:1\"" "extra yaml is appended"

# Stand-ins for the collector and the mock: record their arguments, exit 7
# on SIGTERM.
fake=$H_TMP/fakebuild
mkdir -p "$fake"
for prog in binance-live binance-mock; do
  cat >"$fake/$prog" <<'EOF'
#!/usr/bin/env bash
echo "args: $*"
echo "stderr line" >&2
while [ $# -gt 0 ]; do
  if [ "$1" = --port-file ]; then
    printf 'port=1234\ncontrol_port=1235\n' >"$2"
  fi
  shift
done
trap 'exit 7' TERM
while :; do sleep 0.05; done
EOF
  chmod +x "$fake/$prog"
done
real_build=$BUILD
BUILD=$fake
h_collector_start "$H_TMP/test.yaml"
ok $? "h_collector_start"
h_wait_for 5 grep -q 'stderr line' "$H_TMP/collector.log"
ok $? "collector stderr goes to \$H_TMP/collector.log"
h_wait_for 5 grep -q "args: -c $H_TMP/test.yaml" "$H_TMP/collector.out"
ok $? "collector is run with -c CONFIG_FILE"
cpid=$H_COLLECTOR_PID
h_collector_stop 5
is "$?" 7 "h_collector_stop returns the collector's exit status"
! kill -0 "$cpid" 2>/dev/null; ok $? "the collector is gone"
h_mock_start --symbols 3
ok $? "h_mock_start"
h_wait_for 5 grep -q 'args: --port 0 --control-port 0 --port-file .* --symbols 3' "$H_TMP/mock.log"
ok $? "mock gets free ports and its arguments, log in \$H_TMP/mock.log"
is "$MOCK_API_URL $MOCK_WS_URL $MOCK_CTL" "http://127.0.0.1:1234 ws://127.0.0.1:1234 http://127.0.0.1:1235" "h_mock_start exports the mock's URLs from its port file"
mpid=$H_MOCK_PID
h_mock_stop
is "$?" 7 "h_mock_stop returns the mock's exit status"
! kill -0 "$mpid" 2>/dev/null; ok $? "the mock is gone"
BUILD=$real_build

# --- stopping ------------------------------------------------------------------
pg_pid=$(h__pg_pid)
redis_pid=$H_REDIS_PID
h_pg_stop
h_redis_stop
port_closed "$pg_port"; ok $? "postgres port $pg_port is closed after h_pg_stop"
port_closed "$redis_port"; ok $? "redis port $redis_port is closed after h_redis_stop"
! h__alive "$pg_pid"; ok $? "no postmaster left"
! kill -0 "$redis_pid" 2>/dev/null; ok $? "no redis-server left"
left=$(pgrep -f "$H_TMP" 2>/dev/null | grep -v "^$$\$" || true)
is "$left" "" "no process refers to \$H_TMP"

# --- cleanup of a script that exits or is killed -------------------------------
child=$H_TMP/child.sh
cat >"$child" <<EOF
. "$H_LIB/harness.sh"
h_init
h_pg_start || exit 90
h_redis_start || exit 91
echo "\$PGPORT \$REDIS_PORT \$H_TMP \$(head -n 1 "\$H_PGDATA/postmaster.pid") \$H_REDIS_PID" >"\$1"
if [ "\$2" = exit ]; then exit 3; fi
sleep 60 >/dev/null 2>&1 &
wait
EOF

bash "$child" "$H_TMP/child1" exit
rc=$?
is "$rc" 3 "a test's exit status survives the cleanup trap"
read -r cpg credis ctmp cpgpid credispid <"$H_TMP/child1"
{ port_closed "$cpg" && port_closed "$credis"; }; ok $? "servers of an exiting script are stopped"
! { h__alive "$cpgpid" || h__alive "$credispid"; }; ok $? "no server process of an exiting script is left"
[ ! -e "$ctmp" ]; ok $? "its temp dir is removed"
{ [ ! -e "$(h__port_dir)/$cpg" ] && [ ! -e "$(h__port_dir)/$credis" ]; }; ok $? "its port reservations are released"

bash "$child" "$H_TMP/child2" wait &
cpid=$!
h_wait_for 60 test -s "$H_TMP/child2"
read -r cpg credis ctmp cpgpid credispid <"$H_TMP/child2"
is "$(PGPORT=$cpg PGDATABASE=binance_data h_psql 'SELECT 1')" 1 "a second harness runs beside this one"
kill -TERM "$cpid"
wait "$cpid"
rc=$?
is "$rc" 143 "SIGTERM ends a test script with 143"
{ port_closed "$cpg" && port_closed "$credis"; }; ok $? "servers of a killed script are stopped"
! { h__alive "$cpgpid" || h__alive "$credispid"; }; ok $? "no server process of a killed script is left"
[ ! -e "$ctmp" ]; ok $? "its temp dir is removed"

done_testing
