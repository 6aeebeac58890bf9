#!/usr/bin/env bash
# faults_pg.sh: the whole collector against the mock, PostgreSQL and Redis,
# with PostgreSQL stopped for 15 s in the middle of a steady trade flow:
# rows go to the on-disk spool, /health answers 503 naming postgres during
# the outage and 200 after, the spool is replayed, and every trade the mock
# sent (from the first id stored to the last id sent) is in PostgreSQL
# exactly once. Ends with SIGTERM: exit 0 and, under the ASan build
# (BUILD=build-asan), no LeakSanitizer/ASan/UBSan report.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/faults.sh"
f_setup
cfg=$H_TMP/c.yaml
f_config "$cfg"
f_start_collector "$cfg" 90
ok $? "trades are stored"
f_wait_health 200 60
ok $? "/health 200 with everything up"
f_check "before the outage" 120

# The outage.
h_pg_stop
ok $? "PostgreSQL stopped mid-stream"
f_wait_health 503 20
ok $? "/health 503 during the outage"
like "$(cat "$H_TMP/health.json")" '"postgres":\{"up":false' "/health names postgres as down"
h_wait_for 20 sh -c "[ -n \"\$(ls $H_TMP/spool | grep spool-)\" ]"
ok $? "a spool segment appears on disk"
h_wait_for 20 sh -c "curl -s $H/metrics | grep -q 'binance_live_store_spooling 1'"
ok $? "binance_live_store_spooling 1 during the outage"
sleep 12
written=$(f_metric_val 'binance_live_spool_rows_total\{op="written"\}')
ok $([ "$written" -gt 100 ]; echo $?) "rows written to the spool during the outage ($written)"
is "$(f_health)" "503" "/health still 503 after ~15 s of outage"
h_pg_start
ok $? "PostgreSQL back after ~15 s"

f_wait_health 200 60
ok $? "/health 200 again after PostgreSQL returns"
h_wait_for 60 sh -c "curl -s $H/metrics | grep -q 'binance_live_store_spooling 0'"
ok $? "spooling ends"
f_check "after the 15 s PostgreSQL outage" 120
replayed=$(f_metric_val 'binance_live_spool_rows_total\{op="replayed"\}')
ok $([ "$replayed" -ge "$written" ]; echo $?) "every spooled row replayed ($replayed replayed, $written written)"
is "$(f_metric_val 'binance_live_spool_rows_total\{op="refused"\}')" "0" "no row refused"
h_wait_for 30 sh -c "[ -z \"\$(ls $H_TMP/spool | grep spool-)\" ]"
ok $? "consumed spool segments deleted"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
f_stop_clean
f_summary "postgres outage" "PostgreSQL stopped 15 s (spooled $written rows, replayed $replayed)"
done_testing
