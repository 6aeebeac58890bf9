#!/usr/bin/env bash
# repair_live.sh: market/repair with the live stream (binance/streams
# against the mock) through build/t/repair_run --ws:
#  (b) aggTrades the mock skips on the stream (/skip_trades) are found by
#      the id check, repaired by fromId, and end contiguous with a 'filled'
#      trade row in data_gaps; after /drop (reconnect) the trades and bars
#      of the outage are repaired too;
#  (c) during the repair the mock answers 429, 5xx and 418: the limiter
#      obeys them (no request during the ban) and the run still ends
#      contiguous.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied"
h_free_port >/dev/null; P=$H_PORT
h_free_port >/dev/null; C=$H_PORT
h_mock_start --port "$P" --control-port "$C" --symbols 2 --rate 40 --log-level warn
h_wait_for 10 curl -sf "http://127.0.0.1:$C/stats" -o /dev/null
ok $? "mock up"
CTL=http://127.0.0.1:$C
RUN="$BUILD/t/repair_run"

trade_holes() {
  h_psql "SELECT (max(agg_trade_id) - min(agg_trade_id) + 1) - count(DISTINCT agg_trade_id) FROM trades WHERE symbol='$1'"
}

"$RUN" --api "http://127.0.0.1:$P" --ws "ws://127.0.0.1:$P" --symbols BTCUSDT,ETHUSDT \
  --intervals 1m --hours 1 --live 14 --timeout 90 >"$H_TMP/live.out" 2>"$H_TMP/live.log" &
RPID=$!
H_PIDS+=("$RPID")
sleep 4
curl -sf "$CTL/skip_trades?symbol=BTCUSDT&n=7" >/dev/null
ok $? "mock skips 7 BTCUSDT trades on the stream"
sleep 3
curl -sf "$CTL/drop" >/dev/null
ok $? "mock drops every connection"
sleep 2
curl -sf "$CTL/skip_trades?symbol=ETHUSDT&n=3" >/dev/null
wait $RPID
ok $? "repair_run with the live stream ended cleanly"
out=$(cat "$H_TMP/live.out")
diag "$(echo $out)"
like "$out" "reconnects=[1-9]" "the drop was seen as a reconnect"
like "$out" "live_trades=[1-9]" "live trades arrived"
like "$out" "live_refused=0" "the repair left room in the store for every live row"
is "$(trade_holes BTCUSDT)" "0" "BTCUSDT trade ids contiguous"
is "$(trade_holes ETHUSDT)" "0" "ETHUSDT trade ids contiguous"
like "$(h_psql "SELECT count(*) FROM data_gaps WHERE symbol='BTCUSDT' AND data_type='trade' AND state='filled' AND last_missing_id - first_missing_id + 1 = 7 AND rows_filled = 7")" "^[1-9]" "a filled trade gap of exactly the 7 skipped ids"
like "$(h_psql "SELECT count(*) FROM data_gaps WHERE symbol='ETHUSDT' AND data_type='trade' AND state='filled' AND rows_filled >= 3 AND detected_at > now() - interval '60 seconds'")" "^[1-9]" "ETHUSDT's skipped ids filled"
is "$(h_psql "SELECT count(*) FROM trades t WHERE symbol='BTCUSDT' AND source='rest' AND agg_trade_id BETWEEN (SELECT first_missing_id FROM data_gaps WHERE symbol='BTCUSDT' AND data_type='trade' AND rows_filled=7 LIMIT 1) AND (SELECT last_missing_id FROM data_gaps WHERE symbol='BTCUSDT' AND data_type='trade' AND rows_filled=7 LIMIT 1)")" "7" "the 7 came from REST"
is "$(h_psql "SELECT count(*) FROM (SELECT open_time, lead(open_time) OVER (ORDER BY open_time) AS nx FROM klines WHERE symbol='BTCUSDT' AND interval='1m' AND is_closed) q WHERE nx IS NOT NULL AND nx - open_time <> interval '1 minute'")" "0" "closed 1m bars contiguous"
is "$(h_psql "SELECT count(*) FROM data_gaps WHERE state IN ('pending','failed')")" "0" "no gap left pending or failed"
grep -q 'ERROR' "$H_TMP/live.log"; ok $((1 - $?)) "no error logged"

# (c) faults during a start-up repair of an hour of trades.
h_psql "TRUNCATE trades, klines, data_gaps, sync_status"
curl -sf "$CTL/rest_delay?ms=20" >/dev/null
curl -sf "$CTL/rest_fault?status=500&count=3" >/dev/null
"$RUN" --api "http://127.0.0.1:$P" --symbols BTCUSDT --intervals 1m \
  --hours 1 --batch 100 --timeout 120 >"$H_TMP/f.out" 2>"$H_TMP/f.log" &
RPID=$!
H_PIDS+=("$RPID")
sleep 0.7
curl -sf "$CTL/rest_fault?status=429&count=1&retry_after=2" >/dev/null
sleep 3
curl -sf "$CTL/rest_fault?status=418&retry_after=3" >/dev/null
wait $RPID
ok $? "repair under 5xx, 429 and 418 ended cleanly"
out=$(cat "$H_TMP/f.out")
diag "$(echo $out)"
n5=$(curl -sf "$CTL/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rest"]["n5xx"])')
like "$out" "status_5xx=$n5" "every 5xx the mock sent ($n5) was seen and retried"
like "$out" "status_429=[1-9]" "429 seen"
like "$out" "status_418=[1-9]" "418 seen"
like "$out" "failed=0" "no repair failed"
is "$(trade_holes BTCUSDT)" "0" "trades contiguous after the faults"
is "$(h_psql "SELECT count(*) FROM trades WHERE symbol='BTCUSDT'")" "$(h_psql "SELECT sum(rows_filled) FROM data_gaps WHERE symbol='BTCUSDT' AND data_type='trade'")" "rows_filled matches the stored trades"
curl -sf "$CTL/stats" >"$H_TMP/stats.json"
python3 - "$H_TMP/stats.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
log = st["rest"]["requests"]
bad = 0
# Requests still in flight when a 429/418 was answered may arrive just
# after it; anything sent later than 300 ms after it, before the pause or
# ban ended, is a violation.
for kind, secs in ((429, 2), (418, 3)):
    first = [e["t"] for e in log if e["status"] == kind]
    if not first:
        print("# no %d in the log" % kind); bad += 1; continue
    t0 = first[0]
    during = [e for e in log if t0 + 300 < e["t"] < t0 + secs * 1000]
    print("# %d at %d: %d requests between +300 ms and +%d s" % (kind, t0, len(during), secs))
    bad += len(during)
mins = {}
for e in log:
    m = e["t"] // 60000
    mins[m] = max(mins.get(m, 0), e["used"])
print("# max used weight per minute: %d" % max(mins.values()))
sys.exit(1 if bad else 0)
PY
ok $? "the mock saw no request during the 429 pause or the 418 ban"
curl -sf "$CTL/rest_delay?ms=0" >/dev/null
h_mock_stop
done_testing
