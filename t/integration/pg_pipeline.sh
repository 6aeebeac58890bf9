#!/usr/bin/env bash
# pg_pipeline.sh: src/sink/pg against a real PostgreSQL on loopback, through
# the driver $BUILD/t/pg_pipeline (t/tools/pg_pipeline.c): many pipelined
# ops matched to their own results, backpressure, one failing op among many,
# server restart mid-stream, backend killed with ops in flight, connection
# refused at start, LISTEN/NOTIFY, and a connect timeout against a socket
# that never answers while the loop keeps running. Every driver run also
# checks uv_loop_close() == 0 (and is leak-checked under ASan builds).
set -u
. "$(dirname "$0")/../lib/harness.sh"

h_init
h_pg_start || { ok 1 "h_pg_start"; done_testing; exit 1; }

T=$BUILD/t/pg_pipeline
if [ ! -x "$T" ]; then
  ok 1 "$T is built"
  done_testing
  exit 1
fi

h_psql "
CREATE TABLE pp_bulk (name text PRIMARY KEY, v int8 NOT NULL);
CREATE TABLE pp_viol (id int8 PRIMARY KEY, v int8 NOT NULL CHECK (v >= 0));
CREATE TABLE pp_flood (id int8 PRIMARY KEY, v int8 NOT NULL);
CREATE TABLE pp_term (id int8 PRIMARY KEY, v int8 NOT NULL);
CREATE TABLE pp_wait (id int8 PRIMARY KEY, v int8 NOT NULL);
" >/dev/null

# Runs the driver; its stdout goes to $H_TMP/MODE.out, stderr to .err.
drive() {
  local mode=$1
  shift
  "$T" "$mode" "$@" >"$H_TMP/$mode.out" 2>"$H_TMP/$mode.err"
}
show_fail() {
  grep -h 'FAIL\|ERROR\|Sanitizer' "$H_TMP/$1.err" | head -n 10 |
    while IFS= read -r l; do diag "$l"; done
}

# --- bulk: 100 ops x 100 rows, 16 ops at most held ---------------------------
drive bulk
rc=$?
ok $rc "bulk: 100 ops of 100 rows each matched to their own result (sum)"
[ $rc -ne 0 ] && show_fail bulk
like "$(cat "$H_TMP/bulk.out")" "drains=[1-9]" "bulk: BL_EFULL past max_ops, on_drain resumed the producer"
is "$(h_psql 'SELECT count(*), count(DISTINCT name), sum(v) FROM pp_bulk')" \
  "10000|10000|495495000" "bulk: 10000 distinct rows with the right values stored"
is "$(h_psql "SELECT v FROM pp_bulk WHERE name = 'k42_17'")" 42017 "bulk: a sample row holds its own value"

# --- big: 8 ops of 2 MiB, far over the socket buffers ------------------------
drive big
rc=$?
ok $rc "big: 8 ops of 2 MiB each, results matched"
[ $rc -ne 0 ] && show_fail big
like "$(cat "$H_TMP/big.out")" "write_waits=[1-9]" "big: PQflush returned 1 and the rest went out on POLLOUT"

# --- violation: op 25 breaks a CHECK, op 30 has a bad literal ------------------
drive violation
rc=$?
ok $rc "violation: exactly the two bad ops failed, 48 neighbours succeeded"
[ $rc -ne 0 ] && show_fail violation
like "$(cat "$H_TMP/violation.out")" "failed_op=25 sqlstate=23514" "violation: check violation reported with SQLSTATE 23514"
like "$(cat "$H_TMP/violation.out")" "failed_op=30 sqlstate=22P02" "violation: bad value reported with SQLSTATE 22P02"
is "$(h_psql 'SELECT count(*) FROM pp_viol')" 480 "violation: 48 ops x 10 rows committed"
is "$(h_psql 'SELECT count(*) FROM pp_viol WHERE id BETWEEN 250 AND 259 OR id BETWEEN 300 AND 309')" 0 \
  "violation: nothing of the failed ops committed"

# --- terminate: our backend is killed with 4 slow ops in flight ---------------
drive terminate
rc=$?
ok $rc "terminate: in-flight ops re-sent after the reconnect, NORETRY op failed"
[ $rc -ne 0 ] && show_fail terminate
like "$(cat "$H_TMP/terminate.out")" "resent=[3-9]" "terminate: the ops without a result were re-sent"
like "$(cat "$H_TMP/terminate.out")" "ups=[2-9] downs=[1-9]" "terminate: on_state reported down and up again"
is "$(h_psql 'SELECT count(*), count(DISTINCT id) FROM pp_term WHERE id < 15')" "15|15" \
  "terminate: the three retried ops stored once each"

# --- flood while the server restarts ------------------------------------------
drive flood 300 &
fpid=$!
sleep 1
h_pg_restart
ok $? "flood: server restarted (fast shutdown) mid-stream"
wait $fpid
rc=$?
ok $rc "flood: all 300 ops completed across the restart"
[ $rc -ne 0 ] && show_fail flood
diag "flood: $(grep ops_ok "$H_TMP/flood.out")"
like "$(cat "$H_TMP/flood.out")" "reconnects=[1-9]" "flood: the connection was re-established"
is "$(h_psql 'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM pp_flood')" \
  "15000|15000|0|14999" "flood: content complete, no duplicates"

# --- connection refused at start ----------------------------------------------
h_pg_stop
drive wait &
wpid=$!
sleep 1.5
h_pg_start
ok $? "wait: server started 1.5 s after the driver"
wait $wpid
rc=$?
ok $rc "wait: retried without blocking, connected, op done"
[ $rc -ne 0 ] && show_fail wait
like "$(cat "$H_TMP/wait.out")" "connect_failures=[1-9]" "wait: refused attempts were counted"
like "$(cat "$H_TMP/wait.out")" "ticks=([5-9][0-9]|[1-9][0-9][0-9]+)" "wait: a 10 ms timer kept ticking meanwhile"
is "$(h_psql 'SELECT count(*) FROM pp_wait')" 3 "wait: the op queued before start was stored"

# --- LISTEN/NOTIFY -------------------------------------------------------------
drive listen
rc=$?
ok $rc "listen: notifications delivered in order on a quoted channel, and again after the listener's backend was killed"
[ $rc -ne 0 ] && show_fail listen

# --- the same over the Unix socket (no DNS, host= is a directory) -----------
PGHOST=$H_TMP/pgsock drive listen
rc=$?
ok $rc "listen over the Unix socket in $H_TMP/pgsock"
[ $rc -ne 0 ] && show_fail listen

# --- black hole: accepts TCP, never answers -----------------------------------
drive blackhole
rc=$?
ok $rc "blackhole: connect timed out (300 ms) repeatedly, the loop kept ticking, queued op canceled on close"
[ $rc -ne 0 ] && show_fail blackhole
like "$(cat "$H_TMP/blackhole.out")" "last_error=connection timed out" "blackhole: the error says it timed out"

done_testing
