#!/usr/bin/env bash
# faults_spool.sh: a full spool. spool.max_bytes 200000 and PostgreSQL down
# long enough to exceed it: the refusal is logged loudly and counted in
# /metrics, the collector goes on (no crash, /health answers). After
# PostgreSQL returns, the trades that were refused must be repaired over
# REST (by id from the newest stored), so that every trade the mock sent is
# in PostgreSQL exactly once; a failure lists the missing ranges.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/faults.sh"
F_SPOOL_MAX=200000
f_setup
cfg=$H_TMP/c.yaml
f_config "$cfg"
grep -q 'max_bytes: 200000' "$cfg"
ok $? "spool.max_bytes 200000 in the configuration"
f_start_collector "$cfg" 90
ok $? "trades are stored"
f_check "before the outage" 120

refused() { f_metric_val 'binance_live_spool_rows_total\{op="refused"\}'; }
refused_above() { [ "$(refused)" -gt "$1" ]; }
h_pg_stop
ok $? "PostgreSQL stopped"
t0=$(date +%s)
h_wait_for 120 refused_above 0
ok $? "the spool fills up and rows are refused ($(($(date +%s) - t0)) s into the outage)"
sleep 5
r1=$(refused)
ok $([ "$r1" -gt 0 ]; echo $?) "refused rows counted in /metrics: binance_live_spool_rows_total{op=\"refused\"} $r1"
bytes=$(f_metric_val '^binance_live_spool_bytes')
ok $([ "$bytes" -le 200000 ]; echo $?) "the spool stays within max_bytes ($bytes bytes)"
grep -q 'spool full .*row refused' "$H_TMP/collector.log"
ok $? "the refusal is logged as an error"
diag "$(grep -m1 'spool full' "$H_TMP/collector.log")"
kill -0 "$H_COLLECTOR_PID"
ok $? "no crash"
is "$(f_health)" "503" "/health answers (503) while the spool is full"
trades_refused=$(f_metric_val 'binance_live_store_refused_total\{type="trade"\}')
diag "live trade rows refused by the store so far: $trades_refused"

h_pg_start
ok $? "PostgreSQL back"
f_wait_health 200 60
ok $? "/health 200 after PostgreSQL returns"
trades_refused=$(f_metric_val 'binance_live_store_refused_total\{type="trade"\}')
diag "live trade rows refused by the store in all: $trades_refused"
f_check "after the spool was full" 60
filled=$(h_psql "SELECT coalesce(sum(rows_filled),0) FROM data_gaps WHERE data_type='trade' AND state='filled' AND detected_at >= to_timestamp($t0)")
is "$filled" "$trades_refused" "the data_gaps trade rows filled since the outage account for every refused live trade"
is "$(h_psql "SELECT count(*) FROM (SELECT symbol, open_time, lead(open_time) OVER (PARTITION BY symbol ORDER BY open_time) AS nx FROM klines WHERE interval='1m' AND is_closed) q WHERE nx IS NOT NULL AND nx - open_time <> interval '1 minute'")" "0" "closed 1m bars contiguous (refused bars repaired too)"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
diag "trade gaps in the ledger since the outage: $(h_psql "SELECT symbol||' '||state||' '||first_missing_id||'..'||last_missing_id||' filled '||rows_filled FROM data_gaps WHERE data_type='trade' AND detected_at >= to_timestamp($t0)" | tr '\n' ';')"
f_stop_clean
f_summary "spool full" "PostgreSQL down until the 200000-byte spool refused $r1+ rows"
done_testing
