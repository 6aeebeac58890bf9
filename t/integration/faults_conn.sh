#!/usr/bin/env bash
# faults_conn.sh: the exchange's connections fail under a steady trade
# flow, with BINANCE_LIVE_READ_TIMEOUT_MS=3000:
#  - /drop (every WebSocket closed without a handshake): the collector
#    reconnects, the trades sent while it was away are repaired over REST
#    (data_gaps rows 'filled');
#  - /stall?on=1 (sockets open, nothing sent): the silent connection is
#    declared dead after 3 s and replaced; after /stall?on=0 the missed
#    trades are repaired;
#  - /shutdown (serverShutdown): a replacement connection opens first, no
#    trade lost, none duplicated.
# After each fault every trade the mock sent is in PostgreSQL exactly once.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/faults.sh"
export BINANCE_LIVE_READ_TIMEOUT_MS=3000
f_setup
cfg=$H_TMP/c.yaml
f_config "$cfg"
f_start_collector "$cfg" 90
ok $? "trades are stored"
f_wait_health 200 60
ok $? "/health 200 with everything up"
f_check "before the faults" 120

gaps() {
  h_psql "SELECT count(*) FROM data_gaps WHERE data_type='trade' AND state='$1' AND detected_at >= to_timestamp($2)"
}
recon() { f_metric_val '^binance_live_reconnects_total'; }
recon_above() { [ "$(recon)" -gt "$1" ]; }

# --- /drop --------------------------------------------------------------------
r0=$(recon)
t=$(date +%s)
curl -sf "$MOCK_CTL/drop" >/dev/null
ok $? "mock drops every connection"
h_wait_for 30 recon_above "$r0"
ok $? "the collector reconnects"
h_wait_for 60 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM data_gaps WHERE data_type='trade' AND state='filled' AND detected_at >= to_timestamp($((t - 1)))\") -ge 1 ]"
ok $? "the trades missed during the drop are repaired: data_gaps trade rows 'filled'"
f_check "after /drop" 120
diag "gaps since the drop: $(h_psql "SELECT symbol||' '||state||' '||(last_missing_id-first_missing_id+1)||' ids, '||rows_filled||' filled' FROM data_gaps WHERE data_type='trade' AND detected_at >= to_timestamp($((t - 1)))" | tr '\n' ';')"
h_wait_for 30 f__health_is 200
ok $? "/health 200 after the drop"

# --- /stall -------------------------------------------------------------------
r0=$(recon)
t=$(date +%s)
curl -sf "$MOCK_CTL/stall?on=1" >/dev/null
ok $? "mock stalls every connection"
h_wait_for 20 recon_above "$r0"
ok $? "the silent connection is declared dead (read timeout 3 s) and replaced"
ts=$(date +%s)
diag "replaced $((ts - t)) s after the stall began"
sleep 4
curl -sf "$MOCK_CTL/stall?on=0" >/dev/null
ok $? "mock resumes"
h_wait_for 60 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM data_gaps WHERE data_type='trade' AND state='filled' AND detected_at >= to_timestamp($((t - 1)))\") -ge 1 ]"
ok $? "the trades missed during the stall are repaired: data_gaps trade rows 'filled'"
f_check "after /stall" 120
diag "gaps since the stall: $(h_psql "SELECT symbol||' '||state||' '||(last_missing_id-first_missing_id+1)||' ids, '||rows_filled||' filled' FROM data_gaps WHERE data_type='trade' AND detected_at >= to_timestamp($((t - 1)))" | tr '\n' ';')"
h_wait_for 30 f__health_is 200
ok $? "/health 200 after the stall"

# --- serverShutdown -------------------------------------------------------------
sleep 2
r0=$(recon)
acc0=$(f_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["ws_accepted"])')
t=$(date +%s)
curl -sf "$MOCK_CTL/shutdown" >/dev/null
ok $? "mock sends serverShutdown on every connection"
h_wait_for 20 sh -c "[ \$(curl -s $MOCK_CTL/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"ws_accepted\"])') -gt $acc0 ]"
ok $? "a replacement connection is opened"
h_wait_for 20 sh -c "curl -s $H/metrics | grep -q '^binance_live_rollovers_total [1-9]'"
ok $? "counted as a rollover"
sleep 7
f_check "after serverShutdown" 120
is "$(recon)" "$r0" "no reconnect: the old connection ran until the new one took over"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE data_type='trade' AND detected_at >= to_timestamp($t)")" "0" "no trade gap opened by the rollover (nothing was missed)"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
f_stop_clean
f_summary "connections" "/drop, /stall 7 s (read timeout 3 s), serverShutdown"
done_testing
