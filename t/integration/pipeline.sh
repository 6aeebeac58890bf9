#!/usr/bin/env bash
# pipeline.sh: the whole collector (build/binance-live) against the mock
# exchange, a real PostgreSQL and a real Redis: rows stored with the exact
# decimals the exchange sent, contiguous trade ids, the Redis contract
# (channel names, envelope, seq rising by one, latest keys with a TTL,
# P:symbols:active), symbols added and deactivated at runtime, duplicate and
# malformed frames survived, and SIGTERM under load committing everything
# received with exit status 0.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
h_redis_start
h_mock_start --symbols 6 --rate 600 --seed 3
cfg=$H_TMP/c.yaml
h_config_write "$cfg" "binance:
  api_url: \"$MOCK_API_URL\"
  ws_url: \"$MOCK_WS_URL\"
  kline_intervals: [1s, 1m]
  depth_snapshot_interval: 2
symbols:
  bootstrap: [BTCUSDT, ETHUSDT]
sync:
  max_sync_hours: 1"
H=http://127.0.0.1:$H_HTTP_PORT

# A subscriber on every channel of BTCUSDT, from before the collector.
redis-cli -p "$REDIS_PORT" PSUBSCRIBE 'binance:*:BTCUSDT*' >"$H_TMP/sub.txt" &
sub=$!
H_PIDS+=("$sub")
h_collector_start "$cfg"
h_wait_for 20 sh -c "curl -sf $H/health >/dev/null"
ok $? "/health answers 200 once streams, PostgreSQL and Redis are up"
h_wait_for 20 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM trades WHERE symbol='ETHUSDT'\") -gt 50 ]"
ok $? "trades are stored"

# Symbols added and deactivated at runtime.
h_psql "INSERT INTO symbols (symbol, base_asset, quote_asset, status, is_active) VALUES ('SYM000USDT', 'SYM000', 'USDT', 'TRADING', true)" >/dev/null
h_wait_for 10 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM trades WHERE symbol='SYM000USDT'\") -gt 0 ]"
ok $? "a symbol inserted at runtime is collected within seconds"
h_psql "UPDATE symbols SET is_active = false WHERE symbol = 'ETHUSDT'" >/dev/null
sleep 2
n1=$(h_psql "SELECT count(*) FROM trades WHERE symbol='ETHUSDT' AND source='ws'")
sleep 2
n2=$(h_psql "SELECT count(*) FROM trades WHERE symbol='ETHUSDT' AND source='ws'")
is "$n2" "$n1" "a deactivated symbol stops (live rows)"
is "$(h_redis GET binance:symbols:active)" '["BTCUSDT","SYM000USDT"]' "P:symbols:active follows the table"
is "$(h_redis TTL binance:symbols:active)" "-1" "P:symbols:active has no expiry"

# Nothing lost so far: every trade id between the first and the last one
# stored is there once (no reconnect has happened yet).
is "$(h_psql "SELECT count(*) = max(agg_trade_id) - min(agg_trade_id) + 1 FROM trades WHERE symbol='BTCUSDT' AND source='ws'")" "t" "BTCUSDT: live trade ids contiguous while connected"

# Duplicated and malformed frames: counted, logged, dropped; the
# connection stays.
curl -sf "$MOCK_CTL/duplicate?n=50" >/dev/null
for k in badjson missing mistyped baddecimal; do
  curl -sf "$MOCK_CTL/malformed?kind=$k" >/dev/null
done
curl -sf "$MOCK_CTL/malformed?kind=oversize&size=2000000" >/dev/null
sleep 2
m=$(curl -s "$H/metrics")
like "$m" 'binance_live_duplicates_total [1-9]' "duplicate frames are counted and dropped"
for r in bad_json missing_field bad_type bad_decimal too_big; do
  like "$m" "binance_live_parse_errors_total\{reason=\"$r\"\} [1-9]" "a malformed frame ($r) is counted"
done
like "$m" 'binance_live_reconnects_total 0' "no reconnect: the connection survived the bad frames"
grep -q 'frame dropped' "$H_TMP/collector.log"
ok $? "bad frames are logged"
curl -sf "$H/health" >/dev/null
ok $? "still healthy after bad input"
is "$(h_psql "SELECT count(*) - count(DISTINCT (symbol, agg_trade_id)) FROM trades")" "0" "duplicated frames left no duplicate row"

# Invalid UTF-8 in a text frame violates RFC 6455 itself (wslay fails the
# connection with 1007): that is a protocol violation, so the connection
# is replaced with back-off, and collection goes on.
curl -sf "$MOCK_CTL/malformed?kind=utf8" >/dev/null
h_wait_for 10 sh -c "curl -s $H/metrics | grep -q 'binance_live_reconnects_total [1-9]'"
ok $? "invalid UTF-8 in a text frame: the connection is replaced"
n1=$(h_psql "SELECT count(*) FROM trades WHERE symbol='BTCUSDT'")
h_wait_for 10 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM trades WHERE symbol='BTCUSDT'\") -gt $n1 ]"
ok $? "collection goes on after the reconnect"
h_wait_for 10 sh -c "curl -sf $H/health >/dev/null"
ok $? "healthy again"

# Order books: verified, published at depth_levels, stored periodically.
# The synced message found is the one checked: a book may resync again
# (a gap, counted) before a second GET, and publish "resyncing" then.
h_wait_for 15 sh -c "redis-cli -p $REDIS_PORT GET binance:latest:depth:BTCUSDT >$H_TMP/depth.json; grep -q '\"book_state\":\"synced\"' $H_TMP/depth.json"
ok $? "the BTCUSDT book is synced and published"
d=$(cat "$H_TMP/depth.json")
is "$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); d=e["data"]; print(e["type"], len(d["bids"]), len(d["asks"]), d["last_update_id"] > 0, float(d["bids"][0][0]) < float(d["asks"][0][0]))' "$d")" \
   "depth 20 20 True True" "a depth message holds 20 levels per side, best bid below best ask"
h_wait_for 10 sh -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM depth_snapshots WHERE symbol='BTCUSDT'\") -ge 1 ]"
ok $? "depth_snapshots rows are stored for a synced book"
is "$(h_psql "SELECT jsonb_array_length(bids), jsonb_array_length(asks) FROM depth_snapshots WHERE symbol='BTCUSDT' ORDER BY timestamp DESC LIMIT 1")" "20|20" "a stored snapshot has depth_levels levels per side"

# Redis contract, from the subscriber's side and the keys.
ttl=$(h_redis TTL binance:latest:trade:BTCUSDT)
ok $([ "$ttl" -gt 0 ] && [ "$ttl" -le 60 ]; echo $?) "latest keys expire after live_data_ttl (TTL $ttl)"
latest=$(h_redis GET binance:latest:kline:BTCUSDT:1m)
like "$latest" '^\{"type":"kline","symbol":"BTCUSDT","timestamp":[0-9]{13},"seq":[0-9]+,"data":\{.*"interval":"1m".*\}\}$' "the latest kline key holds the envelope"

# SIGTERM under load.
before=$(h_psql "SELECT count(*) FROM trades")
t0=$(date +%s%N)
h_collector_stop
rc=$?
t1=$(date +%s%N)
is "$rc" "0" "SIGTERM: exit status 0"
ok $([ $(( (t1 - t0) / 1000000 )) -lt 10000 ]; echo $?) "SIGTERM: stopped within 10 s ($(( (t1 - t0) / 1000000 )) ms)"
kill "$sub" 2>/dev/null
grep -q 'stopped cleanly' "$H_TMP/collector.log"
ok $? "the loop closed with every handle released"

# No duplicate row, whatever happened.
is "$(h_psql "SELECT count(*) - count(DISTINCT (symbol, agg_trade_id)) FROM trades")" "0" "no duplicate trade row at the end"
after=$(h_psql "SELECT count(*) FROM trades")
ok $([ "$after" -ge "$before" ]; echo $?) "rows queued at SIGTERM were committed ($before before, $after after)"

# Stored values equal what the exchange serves over REST, byte for byte.
read -r id price qty < <(h_psql "SELECT agg_trade_id, price::text, quantity::text FROM trades WHERE symbol='BTCUSDT' ORDER BY agg_trade_id DESC LIMIT 1 OFFSET 5" | tr '|' ' ')
rest=$(curl -s "$MOCK_API_URL/api/v3/aggTrades?symbol=BTCUSDT&fromId=$id&limit=1")
like "$rest" "\"a\":$id,\"p\":\"$price\",\"q\":\"$qty\"" "stored decimals equal the exchange's strings ($price, $qty)"
kl=$(h_psql "SELECT (extract(epoch FROM open_time)*1000)::bigint, open_price::text, close_price::text, volume::text FROM klines WHERE symbol='BTCUSDT' AND interval='1s' AND is_closed ORDER BY open_time DESC LIMIT 1 OFFSET 2")
IFS='|' read -r ot o c v <<<"$kl"
rest=$(curl -s "$MOCK_API_URL/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=$ot&limit=1")
like "$rest" "^\[\[$ot,\"$o\",\"[0-9.]+\",\"[0-9.]+\",\"$c\",\"$v\"" "a closed kline equals the exchange's bar"
# Bars that closed while the connection was being replaced were fetched
# over REST after the reconnect; only the last moments before SIGTERM may
# still be open (their final update had not arrived).
is "$(h_psql "SELECT count(*) FROM klines k WHERE symbol='BTCUSDT' AND interval='1s' AND NOT is_closed AND open_time < (SELECT max(open_time) - interval '3 seconds' FROM klines WHERE symbol='BTCUSDT' AND interval='1s')")" "0" "no bar older than the last moments is left open"
rest_bars=$(h_psql "SELECT count(*) FROM klines WHERE symbol='BTCUSDT' AND interval='1s' AND source='rest'")
ok $([ "$rest_bars" -gt 0 ]; echo $?) "repaired bars are stored with source 'rest' ($rest_bars)"

# The subscriber saw the contract: channel names, envelope, seq by one.
python3 - "$H_TMP/sub.txt" "$TAP_N" <<'PY'
import json, sys
n = int(sys.argv[2])
def tap(good, name):
    global n
    n += 1
    print("%s %d - %s" % ("ok" if good else "not ok", n, name))
lines = open(sys.argv[1]).read().split("\n")
msgs = []
i = 0
while i + 3 < len(lines):
    if lines[i] == "pmessage":
        msgs.append((lines[i + 2], lines[i + 3]))
        i += 4
    else:
        i += 1
chans = sorted(set(c for c, _ in msgs))
want = {"binance:trade:BTCUSDT", "binance:ticker:BTCUSDT", "binance:kline:BTCUSDT:1s", "binance:kline:BTCUSDT:1m", "binance:depth:BTCUSDT"}
tap(set(chans) == want, "channels seen: %s" % chans)
bad = 0
seqs = {}
for c, m in msgs:
    e = json.loads(m)
    if list(e.keys()) != ["type", "symbol", "timestamp", "seq", "data"] or e["symbol"] != "BTCUSDT":
        bad += 1
    seqs.setdefault(c, []).append(e["seq"])
tap(msgs and not bad, "%d messages, every one the envelope {type,symbol,timestamp,seq,data}" % len(msgs))
gaps = sum(1 for s in seqs.values() for a, b in zip(s, s[1:]) if b != a + 1)
tap(not gaps, "seq rises by one on every channel (%d breaks)" % gaps)
t = [json.loads(m) for c, m in msgs if c == "binance:trade:BTCUSDT"]
keys = ["symbol","agg_trade_id","price","quantity","first_trade_id","last_trade_id","trade_time","is_buyer_maker","source"]
tap(t and all(all(k in e["data"] for k in keys) and isinstance(e["data"]["price"], str) and e["data"]["source"] == "ws" for e in t), "trade messages carry the trades row, decimals as strings")
PY
TAP_N=$((TAP_N + 4))
done_testing
