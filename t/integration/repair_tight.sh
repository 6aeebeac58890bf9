#!/usr/bin/env bash
# repair_tight.sh: (e) with a tight weight limit (mock enforces 40/min,
# limiter configured 40: 36 effective) a start-up repair that needs about
# 60 weight slows down to the budget instead of drawing a 429, and still
# ends contiguous.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied"
h_free_port >/dev/null; P=$H_PORT
h_free_port >/dev/null; C=$H_PORT
h_mock_start --port "$P" --control-port "$C" --symbols 1 --rate 2 --weight-limit 40 --log-level warn
h_wait_for 10 curl -sf "http://127.0.0.1:$C/stats" -o /dev/null
ok $? "mock up, 40 weight per minute"
out=$("$BUILD/t/repair_run" --api "http://127.0.0.1:$P" --symbols BTCUSDT --intervals 1m \
  --hours 1 --batch 500 --limit 40 --workers 5 --timeout 200 2>"$H_TMP/run.log")
ok $? "repair under a tight budget ran to completion"
diag "$(echo $out)"
like "$out" "status_429=0" "no 429 drawn"
ms=$(echo "$out" | sed -n 's/^duration_ms=//p')
w=$(echo "$out" | sed -n 's/^weight_spent=//p')
[ "$w" -gt 36 ] && [ "$ms" -ge 50000 ]; ok $? "it needed $w weight (> 36) and waited for the window ($ms ms)"
is "$(h_psql "SELECT (max(agg_trade_id) - min(agg_trade_id) + 1) - count(DISTINCT agg_trade_id) FROM trades WHERE symbol='BTCUSDT'")" "0" "trade ids contiguous"
curl -sf "http://127.0.0.1:$C/stats" >"$H_TMP/stats.json"
python3 - "$H_TMP/stats.json" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))["rest"]["requests"]
per = {}
for e in log:
    per[e["t"] // 60000] = per.get(e["t"] // 60000, 0) + e["weight"]
n429 = sum(1 for e in log if e["status"] == 429)
print("# weight per UTC minute: %s; 429s: %d" % (sorted(per.values()), n429))
sys.exit(0 if n429 == 0 and max(per.values()) <= 40 else 1)
PY
ok $? "mock stats: no 429, never more than 40 weight in a minute"
h_mock_stop
done_testing
