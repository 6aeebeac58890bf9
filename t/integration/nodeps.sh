#!/usr/bin/env bash
# nodeps.sh: the collector started with neither PostgreSQL nor Redis
# running. It starts, collects (rows go to the spool), /health answers 503
# naming both; PostgreSQL then appears: the migrations run when it first
# answers, the spool is replayed; Redis then appears: publishing starts and
# /health turns 200. At the end every trade the mock sent (from the first
# id stored, the start-up repair's hour back, to the last id sent) is in
# PostgreSQL exactly once.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/faults.sh"
h_init
# Start both once for their ports and data dir, then stop them: the
# database exists but holds no table yet.
h_pg_start && h_pg_stop
ok $? "PostgreSQL prepared and stopped"
h_redis_start && h_redis_stop
ok $? "Redis prepared and stopped"
h_mock_start --symbols "$F_MOCK_SYMBOLS" --rate "$F_RATE" --seed 7 --log-level warn
cfg=$H_TMP/c.yaml
f_config "$cfg"
h_collector_start "$cfg"
h_wait_for 30 sh -c "curl -s -o /dev/null $H/health"
ok $? "the collector starts and answers /health without its dependencies"
is "$(f_health)" "503" "/health 503"
like "$(cat "$H_TMP/health.json")" '"postgres":\{"up":false,"migrated":false' "/health: postgres down, not migrated"
like "$(cat "$H_TMP/health.json")" '"redis":\{"up":false' "/health: redis down"
h_wait_for 30 sh -c "curl -s $H/metrics | grep -q 'binance_live_spool_rows_total{op=\"written\"} [1-9]'"
ok $? "it collects: live rows go to the spool"
sleep 5
kill -0 "$H_COLLECTOR_PID"
ok $? "still running after ~10 s without dependencies"
written=$(f_metric_val 'binance_live_spool_rows_total\{op="written"\}')
diag "rows spooled before PostgreSQL appeared: $written"

# PostgreSQL appears.
h_pg_start
ok $? "PostgreSQL appears"
h_wait_for 60 sh -c "[ \$(psql -XAtq -c 'SELECT count(*) FROM schema_migrations' 2>/dev/null || echo 0) -ge 1 ]"
ok $? "the migrations ran when PostgreSQL first answered"
h_wait_for 30 sh -c "curl -s $H/health | grep -q '\"postgres\":{\"up\":true,\"migrated\":true'"
ok $? "/health: postgres up and migrated"
h_wait_for 60 sh -c "curl -s $H/metrics | grep -q 'binance_live_store_spooling 0'"
ok $? "spooling ends"
replayed=$(f_metric_val 'binance_live_spool_rows_total\{op="replayed"\}')
ok $([ "$replayed" -ge "$written" ] && [ "$replayed" -gt 0 ]; echo $?) "the spool is replayed ($replayed rows, $written spooled before PostgreSQL appeared)"
is "$(f_health)" "503" "/health still 503 while Redis is missing"

# Redis appears.
h_redis_start
ok $? "Redis appears"
redis-cli -p "$REDIS_PORT" SUBSCRIBE binance:trade:BTCUSDT >"$H_TMP/sub.txt" 2>/dev/null &
sub=$!
H_PIDS+=("$sub")
f_wait_health 200 60
ok $? "/health 200 once both are there"
h_wait_for 30 sh -c "grep -c '\"type\":\"trade\"' $H_TMP/sub.txt | grep -q '^[1-9]'"
ok $? "publishing starts: a subscriber receives trades"
kill "$sub" 2>/dev/null
h_wait_for 20 sh -c "[ -n \"\$(redis-cli -p $REDIS_PORT GET binance:symbols:active)\" ]"
ok $? "P:symbols:active written"
f_check "after starting without dependencies" 120
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
f_stop_clean
f_summary "no dependencies at start" "PostgreSQL and Redis down at start ($written rows spooled, $replayed replayed)"
done_testing
