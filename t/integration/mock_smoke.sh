#!/usr/bin/env bash
# mock_smoke.sh: the mock exchange (build/binance-mock) seen from outside:
# REST answers (status, headers, JSON shape, error codes, weights), the
# control interface (forced 429, stats), WebSocket streams (raw, combined,
# SUBSCRIBE, the 5-messages-per-second rule, faults), the replayed corpus
# byte for byte, and TLS.
set -u
cd "$(dirname "$0")/../.."
. t/lib/tap.sh
BUILD=${BUILD:-build}
MOCK=$BUILD/binance-mock
DUMP=$BUILD/t/ws_dump
CORPUS=t/mock/data
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_mock NAME ARGS...: starts a mock, waits for its port file, sets
# PORT and CPORT.
start_mock() {
  local name=$1 i
  shift
  "$MOCK" --port 0 --control-port 0 --port-file "$tmp/$name.ports" "$@" \
    2>"$tmp/$name.log" &
  pids+=($!)
  for i in $(seq 100); do
    [ -s "$tmp/$name.ports" ] && break
    sleep 0.05
  done
  PORT=$(sed -n 's/^port=//p' "$tmp/$name.ports")
  CPORT=$(sed -n 's/^control_port=//p' "$tmp/$name.ports")
}

hdr() { # URL HEADER: the value of a response header
  curl -s -D - -o /dev/null "$1" | tr -d '\r' |
    sed -n "s/^$2: //Ip" | head -1
}

start_mock syn --symbols 4 --rate 40 --seed 7 --ping-interval 1 \
  --pong-timeout 3
ok $([ -n "$PORT" ] && [ -n "$CPORT" ]; echo $?) "port file has both ports"
B=http://127.0.0.1:$PORT
C=http://127.0.0.1:$CPORT

# --- REST
is "$(curl -s "$B/api/v3/ping")" "{}" "ping answers {}"
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/ping")" 200 \
  "ping is 200"
like "$(hdr "$B/api/v3/ping" X-MBX-USED-WEIGHT-1M)" '^[0-9]+$' \
  "X-MBX-USED-WEIGHT-1M on every answer"
like "$(curl -s "$B/api/v3/time")" '^\{"serverTime":[0-9]{13}\}$' \
  "time answers serverTime"
ex=$(curl -s "$B/api/v3/exchangeInfo")
like "$ex" '"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000' \
  "exchangeInfo has the REQUEST_WEIGHT limit"
like "$ex" '"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC"' \
  "exchangeInfo lists BTCUSDT"
like "$ex" '"symbol":"SYM001USDT".*"tickSize":"0.00010000"' \
  "exchangeInfo has tickSize"
kl=$(curl -s "$B/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=3")
like "$kl" '^\[\[[0-9]{13},"[0-9]+\.[0-9]{8}","[0-9.]+","[0-9.]+","[0-9.]+","[0-9.]+",[0-9]{13},"[0-9.]+",[0-9]+,"[0-9.]+","[0-9.]+","0"\],' \
  "klines are 12-element arrays"
is "$(grep -o '\],\[' <<<"$kl" | wc -l)" 2 "klines limit=3 gives 3 rows"
u0=$(hdr "$B/api/v3/ping" X-MBX-USED-WEIGHT-1M)
u1=$(hdr "$B/api/v3/depth?symbol=BTCUSDT&limit=1000" X-MBX-USED-WEIGHT-1M)
ok $([ $((u1 - u0)) -eq 50 ] || [ "$u1" -eq 50 ]; echo $?) \
  "depth limit=1000 weighs 50 ($u0 -> $u1)"
like "$(curl -s "$B/api/v3/depth?symbol=BTCUSDT&limit=5")" \
  '^\{"lastUpdateId":[0-9]+,"bids":\[\["[0-9.]+","[0-9.]+"\]' \
  "depth snapshot shape"
like "$(curl -s "$B/api/v3/aggTrades?symbol=SYM000USDT&limit=2")" \
  '^\[\{"a":[0-9]+,"p":"[0-9.]+","q":"[0-9.]+","f":[0-9]+,"l":[0-9]+,"T":[0-9]+,"m":(true|false),"M":true\},' \
  "aggTrades items"
like "$(curl -s "$B/api/v3/ticker/24hr?symbol=BTCUSDT")" \
  '^\{"symbol":"BTCUSDT","priceChange":"-?[0-9.]+",.*"count":[0-9]+\}$' \
  "ticker/24hr object"
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/depth?symbol=NOPE")" \
  400 "unknown symbol is 400"
like "$(curl -s "$B/api/v3/depth?symbol=NOPE")" '"code":-1121' \
  "unknown symbol is -1121"
like "$(curl -s "$B/api/v3/klines?symbol=BTCUSDT&interval=7m")" \
  '"code":-1120' "bad interval is -1120"
like "$(curl -s "$B/api/v3/aggTrades?symbol=BTCUSDT&fromId=1&startTime=1")" \
  '"code":-1128' "fromId with startTime is -1128"
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/nothing")" 404 \
  "unknown path is 404"

# --- control: forced 429, then stats
like "$(curl -s "$C/rest_fault?status=429&count=1&retry_after=2")" \
  '"ok":true' "control accepts rest_fault"
r=$(curl -s -D - "$B/api/v3/ping" | tr -d '\r')
like "$r" '^HTTP/1.1 429' "forced 429 arrives"
like "$r" 'Retry-After: 2' "429 carries Retry-After"
like "$r" '"code":-1003' "429 body is -1003"
sleep 2.1
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/ping")" 200 \
  "after Retry-After the answers are normal again"
st=$(curl -s "$C/stats")
like "$st" '"n429":1,' "stats count the 429"
like "$st" '"path":"/api/v3/ping","status":429,"weight":0' \
  "stats log the request with status and weight"
curl -s "$C/rest_fault?status=418&retry_after=1" >/dev/null
r=$(curl -s -D - "$B/api/v3/ping" | tr -d '\r')
like "$r" '^HTTP/1.1 418' "forced ban answers 418"
like "$r" 'Retry-After: 1' "418 carries Retry-After"
sleep 1.1
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/ping")" 200 \
  "after the ban the answers are normal again"
like "$(curl -s "$C/stats" | head -c 300)" '"n418":1,' "stats count the 418"
curl -s "$C/rest_fault?status=500&count=1" >/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v3/ping")" 500 \
  "forced 500"
curl -s "$C/rest_delay?ms=300" >/dev/null
t=$(curl -s -o /dev/null -w '%{time_total}' "$B/api/v3/ping")
ok $(awk -v t="$t" 'BEGIN{exit !(t >= 0.29)}'; echo $?) \
  "rest_delay slows answers ($t s)"
curl -s "$C/rest_delay?ms=0" >/dev/null

# --- WebSocket, synthetic
out=$(timeout 10 "$DUMP" --timeout 5 "ws://127.0.0.1:$PORT/ws/btcusdt@aggTrade" 5)
ok $? "raw stream delivers 5 frames"
like "$(head -1 <<<"$out")" '^\{"e":"aggTrade","E":[0-9]+,"s":"BTCUSDT","a":[0-9]+,"p":"[0-9]+\.[0-9]{8}"' \
  "raw aggTrade payload"
ids=$(grep -o '"a":[0-9]*' <<<"$out" | cut -d: -f2)
ok $(awk 'NR>1 && $1 != prev+1 {bad=1} {prev=$1} END{exit bad}' <<<"$ids"; echo $?) \
  "aggTrade ids are consecutive"
out=$(timeout 10 "$DUMP" --timeout 5 \
  "ws://127.0.0.1:$PORT/stream?streams=ethusdt@depth@100ms/ethusdt@kline_1m" 12)
ok $? "combined stream delivers"
like "$(grep -m1 depthUpdate <<<"$out")" \
  '^\{"stream":"ethusdt@depth@100ms","data":\{"e":"depthUpdate","E":[0-9]+,"s":"ETHUSDT","U":[0-9]+,"u":[0-9]+,"b":\[' \
  "combined depth frame"
ok $(grep depthUpdate <<<"$out" | sed 's/.*"U":\([0-9]*\),"u":\([0-9]*\).*/\1 \2/' |
  awk 'NR>1 && $1 != prevu+1 {bad=1} {prevu=$2} END{exit bad}'; echo $?) \
  "depth U is the previous u + 1"
like "$(grep -m1 kline <<<"$out")" '"k":\{"t":[0-9]+,"T":[0-9]+,"s":"ETHUSDT","i":"1m"' \
  "combined kline frame"
out=$(timeout 10 "$DUMP" --timeout 5 \
  --send '{"method":"SUBSCRIBE","params":["sym000usdt@aggTrade"],"id":1}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":2}' \
  "ws://127.0.0.1:$PORT/ws" 3)
is "$(sed -n 1p <<<"$out")" '{"result":null,"id":1}' "SUBSCRIBE answered"
is "$(sed -n 2p <<<"$out")" '{"result":["sym000usdt@aggTrade"],"id":2}' \
  "LIST_SUBSCRIPTIONS answered"
like "$(sed -n 3p <<<"$out")" '"s":"SYM000USDT"' "subscribed stream flows"
out=$(timeout 10 "$DUMP" --timeout 5 --send 'nope' "ws://127.0.0.1:$PORT/ws" 1)
like "$out" '^\{"error":\{"code":3,' "bad JSON gets error code 3"
out=$(timeout 10 "$DUMP" --timeout 5 --close-info \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":1}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":2}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":3}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":4}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":5}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":6}' \
  --send '{"method":"LIST_SUBSCRIPTIONS","id":7}' \
  "ws://127.0.0.1:$PORT/ws" 100)
like "$out" 'CLOSE [A-Z_]+ 1008 Too many requests' \
  "more than 5 messages a second: close 1008"
is "$(curl -s -o /dev/null -w '%{http_code}' \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
  -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
  "$B/ws/btcusdt@nothing")" 400 "unknown stream refused with 400"

# faults on a live connection
"$DUMP" --timeout 8 --close-info \
  "ws://127.0.0.1:$PORT/stream?streams=btcusdt@aggTrade" 100000 \
  >"$tmp/f.out" 2>/dev/null &
dpid=$!
sleep 0.5
curl -s "$C/malformed?kind=badjson" >/dev/null
curl -s "$C/malformed?kind=oversize&size=300000" >/dev/null
curl -s "$C/shutdown" >/dev/null
curl -s "$C/skip_trades?symbol=BTCUSDT&n=3" >/dev/null
sleep 0.6
curl -s "$C/drop" >/dev/null
wait $dpid
is "$(grep -c '"s":"BTCUSDT","a":}$' "$tmp/f.out")" 1 \
  "malformed (truncated JSON) frame sent"
is "$(awk 'length($0) == 300000' "$tmp/f.out" | wc -l)" 1 \
  "oversized frame has the requested size"
is "$(grep -cE '^\{"stream":"!serverShutdown","data":\{"e":"serverShutdown","E":[0-9]+\}\}$' "$tmp/f.out")" \
  1 "serverShutdown sent"
ids=$(grep -o '"a":[0-9]*,"p"' "$tmp/f.out" | grep -o '[0-9]*')
ok $(awk 'NR>1 && $1 != prev+1 {gaps += $1 - prev - 1} {prev=$1} END{exit !(gaps == 3)}' <<<"$ids"; echo $?) \
  "skip_trades leaves a gap of 3 ids"
like "$(tail -1 "$tmp/f.out")" '^CLOSE ' "drop ends the connection"
st=$(curl -s "$C/stats" | head -c 2000)
like "$st" '"BTCUSDT":\{"first_trade_id_sent":[0-9]+,"last_trade_id_sent":[0-9]+,"trades_sent":[0-9]+,"trades_skipped":3' \
  "stats report trade ids sent and skipped"
like "$st" '"closed_too_many_requests":1' "stats count the 1008 close"

# depth id gap, duplicates, stall
"$DUMP" --timeout 6 --line-buffered \
  "ws://127.0.0.1:$PORT/ws/ethusdt@depth@100ms" 100000 \
  >"$tmp/d.out" 2>/dev/null &
dpid=$!
sleep 0.5
curl -s "$C/skip_depth?symbol=ETHUSDT&n=5" >/dev/null
sleep 0.5
curl -s "$C/duplicate?n=3" >/dev/null
sleep 0.5
curl -s "$C/stall?on=1" >/dev/null
sleep 0.3
n1=$(wc -l <"$tmp/d.out")
sleep 1
n2=$(wc -l <"$tmp/d.out")
curl -s "$C/stall?on=0" >/dev/null
sleep 0.5
curl -s "$C/drop" >/dev/null
wait $dpid
gaps=$(head -n "$n1" "$tmp/d.out" |
  sed 's/.*"U":\([0-9]*\),"u":\([0-9]*\).*/\1 \2/' |
  awk 'NR>1 && $1 > prevu+1 {print $1 - prevu - 1} {prevu=$2}')
is "$gaps" 5 "skip_depth leaves one gap of 5 update ids"
is "$(sort "$tmp/d.out" | uniq -d | wc -l)" 3 "duplicate sends 3 frames twice"
is "$n2" "$n1" "stall stops the frames"
ok $([ "$(wc -l <"$tmp/d.out")" -gt "$n2" ]; echo $?) "frames resume after the stall"

# pings: a client that answers them stays past the pong timeout (3 s);
# one that does not is dropped
out=$(timeout 10 "$DUMP" --timeout 4.5 --close-info \
  "ws://127.0.0.1:$PORT/ws/btcusdt@kline_1s" 1000 2>/dev/null)
ok $([ $? -eq 3 ]; echo $?) "a client that answers pings stays"
out=$(timeout 15 "$DUMP" --timeout 8 --close-info --no-pong \
  "ws://127.0.0.1:$PORT/ws/btcusdt@kline_1s" 1000 2>/dev/null)
ok $([ $? -eq 4 ]; echo $?) "a client that does not answer pings is dropped"
like "$(curl -s "$C/stats" | head -c 400)" '"closed_pong_timeout":1' \
  "stats count the pong timeout"

# --- replay: the corpus byte for byte
start_mock rep --replay "$CORPUS"
url=$(head -1 "$CORPUS/BINANCE.ws.1.0" | sed 's/ <-> .*//; s#^wss://stream.binance.com:9443##')
n=$(grep -c '^[0-9.]*: ' "$CORPUS/BINANCE.ws.1.0")
timeout 20 "$DUMP" --timeout 10 "ws://127.0.0.1:$PORT$url" "$n" >"$tmp/rep.out"
ok $? "replay delivers all $n frames"
sed -n 's/^[0-9.]*: //p' "$CORPUS/BINANCE.ws.1.0" >"$tmp/rep.want"
check "replayed frames equal the corpus byte for byte" cmp "$tmp/rep.out" "$tmp/rep.want"
want=$(sed -n 's/^https[^ ]*symbol=NKNUSDT[^ ]* -> [0-9.]*: //p' "$CORPUS/BINANCE.http.0.0")
is "$(curl -s "http://127.0.0.1:$PORT/api/v3/depth?symbol=NKNUSDT&limit=1000")" \
  "$want" "replay serves the recorded depth snapshot"
like "$(curl -s "http://127.0.0.1:$PORT/api/v3/exchangeInfo" | head -c 300)" \
  '"limit":1200' "replay serves the recorded exchangeInfo"
start_mock rept --replay "$CORPUS" --replay-timing --replay-speed 10
t0=$(date +%s%N)
timeout 20 "$DUMP" --timeout 10 "ws://127.0.0.1:$PORT$url" "$n" >"$tmp/rept.out"
ok $? "timed replay delivers every frame"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok $([ "$ms" -ge 2000 ] && [ "$ms" -le 6000 ]; echo $?) \
  "timed replay at 10x takes about 3 s ($ms ms)"
check "timed replay is byte for byte too" cmp "$tmp/rept.out" "$tmp/rep.want"
timeout 20 "$DUMP" --timeout 10 "ws://127.0.0.1:$PORT/ws/blzeth@depth@100ms" 3 \
  >"$tmp/raw.out"
like "$(head -1 "$tmp/raw.out")" '^\{"e":"depthUpdate","E":[0-9]+,"s":"BLZETH"' \
  "replay on a raw stream sends the bare payload"

# --- TLS
if [ -x t/certs/gen.sh ]; then
  t/certs/gen.sh "$tmp/certs" >/dev/null 2>&1
else
  mkdir -p "$tmp/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/certs/server.key" -out "$tmp/certs/server.crt" -days 2 \
    -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1' \
    >/dev/null 2>&1
  cp "$tmp/certs/server.crt" "$tmp/certs/ca.crt"
fi
start_mock tls --symbols 2 --rate 20 --tls-cert "$tmp/certs/server.crt" \
  --tls-key "$tmp/certs/server.key"
is "$(curl -s --cacert "$tmp/certs/ca.crt" "https://localhost:$PORT/api/v3/ping")" \
  "{}" "REST over TLS"
out=$(timeout 10 "$DUMP" --timeout 5 --ca "$tmp/certs/ca.crt" \
  "wss://localhost:$PORT/ws/btcusdt@aggTrade" 2)
ok $? "WebSocket over TLS"
like "$(head -1 <<<"$out")" '^\{"e":"aggTrade"' "TLS frames are the stream's"

# --- fast mode (--rate 0): frames go out in batches (one write per client
# per loop iteration); ids stay consecutive, a SUBSCRIBE answer comes before
# the new stream's first frame, and a stalled mock idles
start_mock fast --symbols 3 --rate 0 --seed 9 --ping-interval 0
FC=http://127.0.0.1:$CPORT
fpid=${pids[${#pids[@]}-1]}
out=$(timeout 30 "$DUMP" --timeout 20 \
  --send '{"method":"SUBSCRIBE","params":["ethusdt@aggTrade"],"id":7}' \
  "ws://127.0.0.1:$PORT/ws/btcusdt@aggTrade" 60000 2>/dev/null)
ok $? "fast mode delivers 60000 frames"
for sym in BTCUSDT ETHUSDT; do
  ids=$(grep -o "\"s\":\"$sym\",\"a\":[0-9]*" <<<"$out" | sed 's/.*://')
  ok $([ "$(wc -l <<<"$ids")" -gt 1000 ] &&
    awk 'NR>1 && $1 != prev+1 {bad=1} {prev=$1} END{exit bad}' <<<"$ids"
  echo $?) "fast mode: $sym aggregate ids are consecutive"
done
ans=$(grep -n '^{"result":null,"id":7}$' <<<"$out" | cut -d: -f1)
eth=$(grep -n '"s":"ETHUSDT"' <<<"$out" | head -1 | cut -d: -f1)
ok $([ -n "$ans" ] && [ -n "$eth" ] && [ "$ans" -lt "$eth" ]; echo $?) \
  "fast mode: the SUBSCRIBE answer precedes the new stream's frames"
"$DUMP" --timeout 8 "ws://127.0.0.1:$PORT/ws/btcusdt@aggTrade" 100000000 \
  >/dev/null 2>&1 &
spid=$!
sleep 0.5
curl -s "$FC/stall?on=1" >/dev/null
sleep 0.3
t1=$(curl -s "$FC/time")
c1=$(awk '{print $14 + $15}' "/proc/$fpid/stat")
sleep 1
t2=$(curl -s "$FC/time")
c2=$(awk '{print $14 + $15}' "/proc/$fpid/stat")
is "$t2" "$t1" "fast mode: the market clock stands still while stalled"
ok $([ $((c2 - c1)) -le $(($(getconf CLK_TCK) / 5)) ]; echo $?) \
  "fast mode: a stalled mock idles ($((c2 - c1)) CPU ticks in 1 s)"
curl -s "$FC/stall?on=0" >/dev/null
sleep 0.3
t3=$(curl -s "$FC/time")
ok $([ "$t3" != "$t2" ]; echo $?) "fast mode: the clock runs again after the stall"
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null

# every mock stops cleanly on SIGTERM (and, under ASan, leak-free)
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
rcs=""
for p in "${pids[@]}"; do wait "$p"; rcs="$rcs$?"; done
pids=()
is "$rcs" "00000" "the five mocks exit 0 on SIGTERM"
ok $(! grep -l 'Sanitizer' "$tmp"/*.log >/dev/null; echo $?) \
  "no sanitizer report in the mock logs"

done_testing
