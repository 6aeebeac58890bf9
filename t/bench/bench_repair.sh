#!/usr/bin/env bash
# bench_repair.sh: repairs 24 h of 1m klines for 200 symbols (batch 500:
# 3 pages each, 600 requests of weight 2) against the mock with the real
# 6000/min budget (5400 effective), into a real PostgreSQL, and prints the
# duration beside the minimum the budget allows and the 429 count.
#   t/bench/bench_repair.sh        (BUILD=build by default)
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log" || exit 1
h_free_port >/dev/null; P=$H_PORT
h_free_port >/dev/null; C=$H_PORT
h_mock_start --port "$P" --control-port "$C" --symbols 200 --rate 10 --log-level warn
h_wait_for 10 curl -sf "http://127.0.0.1:$C/stats" -o /dev/null || exit 1
syms=$(curl -sf "http://127.0.0.1:$P/api/v3/exchangeInfo" | python3 -c 'import json,sys; print(",".join(s["symbol"] for s in json.load(sys.stdin)["symbols"][:200]))')
out=$("$BUILD/t/repair_run" --api "http://127.0.0.1:$P" --symbols "$syms" --intervals 1m \
  --hours 24 --batch 500 --limit 6000 --workers 5 --no-trades --timeout 600 2>"$H_TMP/run.log")
rc=$?
ms=$(echo "$out" | sed -n 's/^duration_ms=//p')
req=$(echo "$out" | sed -n 's/^requests=//p')
w=$(echo "$out" | sed -n 's/^weight_spent=//p')
lim=$(echo "$out" | sed -n 's/^effective_limit=//p')
n429=$(echo "$out" | sed -n 's/^status_429=//p')
rows=$(echo "$out" | sed -n 's/^rows_klines=//p')
stored=$(h_psql "SELECT count(*) FROM klines")
python3 - "$ms" "$req" "$w" "$lim" "$n429" "$rows" "$stored" "$rc" <<'PY'
import sys
ms, req, w, lim, n429, rows, stored, rc = map(int, sys.argv[1:])
# The sliding budget lets `lim` weight go at once; each further `lim`
# needs one more minute.
floor_s = max(0, (w - 1) // lim) * 60.0
print("bench_repair: %d requests, weight %d, %d rows repaired (%d stored) in %.2f s; "
      "budget minimum %.2f s (weight / %d per min: %.2f min); 429s: %d; exit %d"
      % (req, w, rows, stored, ms / 1000.0, floor_s, lim, w / float(lim), n429, rc))
PY
[ "$rc" = 0 ] && [ "$n429" = 0 ]
