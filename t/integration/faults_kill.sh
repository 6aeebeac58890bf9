#!/usr/bin/env bash
# faults_kill.sh: the collector killed with SIGKILL mid-stream, twice:
#  1. with everything up: restarted with the same configuration, its
#     start-up repair fetches what was sent while it was dead;
#  2. while PostgreSQL is down and rows are in the spool: restarted (same
#     spool dir) before PostgreSQL returns; the spool left on disk is
#     replayed and the start-up repair fills the rest.
# After each restart every trade the mock sent is in PostgreSQL exactly
# once.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/faults.sh"
f_setup
cfg=$H_TMP/c.yaml
f_config "$cfg"
f_start_collector "$cfg" 90
ok $? "trades are stored"
f_check "before the kill" 120

kill_collector() {
  local pid=$H_COLLECTOR_PID
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  H_COLLECTOR_PID=
}

# --- 1. SIGKILL with everything up ----------------------------------------------
kill_collector
ok $? "collector killed with SIGKILL mid-stream"
sleep 3
n0=$(f_ntrades)
h_collector_start "$cfg"
f_wait_trades_above "$n0" 60
ok $? "restarted with the same configuration: trades arrive again"
f_check "after SIGKILL and restart" 120
diag "start-up repair after the restart: $(h_psql "SELECT symbol||' '||state||' '||rows_filled FROM data_gaps WHERE data_type='trade' ORDER BY id DESC LIMIT 3" | tr '\n' ';')"

# --- 2. SIGKILL while spooling ----------------------------------------------------
h_pg_stop
ok $? "PostgreSQL stopped"
h_wait_for 20 sh -c "curl -s $H/metrics | grep -q 'binance_live_store_spooling 1'"
ok $? "the collector spools"
sleep 5
written=$(f_metric_val 'binance_live_spool_rows_total\{op="written"\}')
ok $([ "$written" -gt 0 ]; echo $?) "rows in the spool ($written)"
kill_collector
ok $? "collector killed with SIGKILL while spooling"
segs=$(ls "$H_TMP/spool" | grep -c '^spool-')
ok $([ "$segs" -gt 0 ]; echo $?) "the spool is on disk ($segs segment(s))"
sleep 2
h_collector_start "$cfg"
sleep 3
h_pg_start
ok $? "PostgreSQL back; the collector was restarted before it"
h_wait_for 60 sh -c "curl -s $H/metrics | grep -q 'binance_live_spool_rows_total{op=\"replayed\"} [1-9]'"
ok $? "the spool left by the killed process is replayed"
f_check "after SIGKILL while spooling and restart" 120
h_wait_for 30 sh -c "[ -z \"\$(ls $H_TMP/spool | grep spool-)\" ]"
ok $? "consumed spool segments deleted"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
f_stop_clean
f_summary "kill -9" "SIGKILL with everything up; SIGKILL while spooling ($written rows in the spool), restarts"
done_testing
