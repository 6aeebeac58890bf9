#!/usr/bin/env bash
# depth.sh: the order-book manager (market/depth) end to end against the
# mock exchange, through build/t/depth_run (http + limiter + streams + depth
# + redis sink + store) with real Redis and PostgreSQL:
#  (a) the recorded capture replayed with its REST snapshots: the top-20
#      book published for each of its four symbols equals the book computed
#      here independently (python3 over the same files), and the drop/apply
#      decisions are those of docs/binance-api.md 2.4;
#  (b) a skipped update id resyncs: a second snapshot, "resyncing" then
#      "synced" on the channel;
#  (c) a snapshot older than the first buffered event is fetched again;
#  (e) a crossed book resyncs;
#  (f) depth_snapshots rows every interval, depth_levels levels a side;
#  (d) a reconnect resyncs every book within the weight budget: spread, no
#      429, the mock's per-minute weight under its limit.
. "$(dirname "$0")/../lib/harness.sh"
h_init
cd "$H_ROOT" || exit 1
RUN=$BUILD/t/depth_run
CORPUS=${DEPTH_CORPUS:-t/mock/data}
[ -d /work/shared/corpus/binance-spot-2021-10-12 ] &&
  CORPUS=${DEPTH_CORPUS:-/work/shared/corpus/binance-spot-2021-10-12}

h_redis_start || { ok 1 "redis started"; done_testing; exit 1; }
h_pg_start || { ok 1 "postgres started"; done_testing; exit 1; }
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied with --migrate"

# mock ARGS...: (re)starts the mock on free ports (h_mock_start waits for
# it); sets PORT and C (control URL).
mock() {
  h_mock_stop
  h_mock_start --log-level warn "$@" || return 1
  PORT=$MOCK_PORT
  C=$MOCK_CTL
}

# run_start NAME ARGS...: depth_run in the background, metrics in
# $H_TMP/NAME.metrics.
RUN_PID=
run_start() {
  local name=$1
  shift
  M=$H_TMP/$name.metrics
  rm -f "$M"
  "$RUN" --rest "http://127.0.0.1:$PORT" --ws "ws://127.0.0.1:$PORT" \
    --metrics "$M" "$@" >"$H_TMP/$name.out" 2>"$H_TMP/$name.log" &
  RUN_PID=$!
  H_PIDS+=("$RUN_PID")
}
run_stop() {
  kill -TERM "$RUN_PID" 2>/dev/null
  wait "$RUN_PID"
  local rc=$?
  RUN_PID=
  return $rc
}
# metric NAME_WITH_LABELS: its value in the last metrics file.
metric() {
  awk -v k="$1" '$1 == k { print $2 }' "$M" 2>/dev/null
}
metric_ge() { # NAME MIN
  local v
  v=$(metric "$1")
  [ -n "$v" ] && [ "$v" -ge "$2" ]
}
depth_requests() {
  curl -s "$C/stats" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["rest"]["endpoints"]["/api/v3/depth"]["count"])'
}

# ---------------------------------------------------------------- (a)
mock --replay "$CORPUS" || { ok 1 "replay mock started"; done_testing; exit 1; }
run_start replay --symbols NKNUSDT,BLZETH,LRCBTC,RUNEEUR --levels 20 \
  --limit 1000 --interval 3600
h_wait_for 20 metric_ge depth_synced 4
ok $? "(a) the four recorded books are synced"
# all frames of the recording arrive at once; wait until they are applied
h_wait_for 10 metric_ge streams_events 177
run_stop
ok $? "(a) depth_run closed cleanly (uv_loop_close == 0)"

python3 - "$CORPUS" >"$H_TMP/expected.txt" <<'EOF'
# Independent order book: docs/binance-api.md 2.1/2.2 over the recording.
import json, sys
from decimal import Decimal
corpus = sys.argv[1]
snaps = {}
for line in open(corpus + "/BINANCE.http.0.0"):
    if "/api/v3/depth?" not in line:
        continue
    url, rest = line.split(" -> ", 1)
    sym = url.split("symbol=")[1].split("&")[0]
    limit = int(url.split("limit=")[1].split("&")[0])
    snaps[sym] = (limit, json.loads(rest.split(": ", 1)[1]))
events = {}
for line in open(corpus + "/BINANCE.ws.1.0"):
    if not line[0].isdigit() or ": " not in line:
        continue
    msg = json.loads(line.split(": ", 1)[1])
    if not msg.get("stream", "").endswith("@depth@100ms"):
        continue
    d = msg["data"]
    events.setdefault(d["s"], []).append(d)
for sym in sorted(snaps):
    limit, sn = snaps[sym]
    lid = sn["lastUpdateId"]
    sides = {}
    for key in ("bids", "asks"):
        lv = sn[key]
        book = {Decimal(p): (p, q) for p, q in lv}
        # a full snapshot says nothing beyond its worst level
        edge = Decimal(lv[-1][0]) if len(lv) >= limit else None
        sides[key] = (book, edge)
    dropped = applied = 0
    first = True
    upd = lid
    for e in events.get(sym, []):
        if first and e["u"] <= lid:
            dropped += 1
            continue
        if first:
            assert e["U"] <= lid + 1 <= e["u"], (sym, "first event")
            first = False
        else:
            assert e["U"] <= upd + 1, (sym, "gap")
            if e["u"] <= upd:
                continue
        for key, short in (("bids", "b"), ("asks", "a")):
            book, edge = sides[key]
            for p, q in e[short]:
                dp = Decimal(p)
                if edge is not None and (dp < edge if key == "bids" else dp > edge):
                    continue
                if Decimal(q) == 0:
                    book.pop(dp, None)
                else:
                    book[dp] = (p, q)
        upd = e["u"]
        applied += 1
    bids = [list(sides["bids"][0][p]) for p in sorted(sides["bids"][0], reverse=True)[:20]]
    asks = [list(sides["asks"][0][p]) for p in sorted(sides["asks"][0])[:20]]
    print(sym, upd, dropped, applied,
          json.dumps(bids, separators=(",", ":")),
          json.dumps(asks, separators=(",", ":")))
EOF
ok $? "(a) the independent book was computed from the corpus"

for sym in NKNUSDT BLZETH LRCBTC RUNEEUR; do
  want=$(awk -v s=$sym '$1 == s' "$H_TMP/expected.txt")
  got=$(h_redis GET "binance:latest:depth:$sym" | python3 -c '
import json, sys
m = json.load(sys.stdin); d = m["data"]
print(m["symbol"], d["last_update_id"], d["book_state"],
      json.dumps(d["bids"], separators=(",", ":")),
      json.dumps(d["asks"], separators=(",", ":")))')
  read -r _ w_upd w_drop w_app w_bids w_asks <<<"$want"
  read -r _ g_upd g_state g_bids g_asks <<<"$got"
  is "$g_state $g_upd" "synced $w_upd" "(a) $sym: published synced at update id $w_upd"
  is "$g_bids" "$w_bids" "(a) $sym: the top-20 bids equal the independent book"
  is "$g_asks" "$w_asks" "(a) $sym: the top-20 asks equal the independent book"
  b=$(grep "^book $sym " "$M")
  like "$b" "dropped=$w_drop applied=$w_app " \
    "(a) $sym: $w_drop dropped, $w_app applied (docs 2.4)"
done
# docs/binance-api.md 2.4: NKNUSDT drop 1, BLZETH drop 1, LRCBTC drop 2,
# RUNEEUR drop 1
is "$(awk '{printf "%s=%s ", $1, $3}' "$H_TMP/expected.txt")" \
  "BLZETH=1 LRCBTC=2 NKNUSDT=1 RUNEEUR=1 " "(a) the drops are those of docs 2.4"

# ------------------------------------------------- (b), (c), (e), (f)
mock --symbols 2 --rate 100 || { ok 1 "synthetic mock"; done_testing; exit 1; }
redis-cli -h 127.0.0.1 -p "$H_REDIS_PORT" SUBSCRIBE binance:depth:BTCUSDT binance:depth:ETHUSDT \
  >"$H_TMP/chan.txt" 2>&1 &
SUB_PID=$!
H_PIDS+=("$SUB_PID")
run_start synth --synthetic 2 --levels 20 --limit 1000 --interval 2 --pg
h_wait_for 20 metric_ge depth_synced 2
ok $? "both synthetic books synced"
h_wait_for 10 metric_ge 'binance_live_depth_publishes_total{book_state="synced"}' 20
ok $? "every 100 ms update is published"
is "$(depth_requests)" "2" "one snapshot per symbol"

# (b) a gap
curl -s "$C/skip_depth?symbol=BTCUSDT&n=5" >/dev/null
h_wait_for 10 metric_ge 'binance_live_depth_resyncs_total{reason="gap"}' 1
ok $? "(b) a skipped update id resyncs the book (gap)"
h_wait_for 10 metric_ge depth_synced 2
ok $? "(b) and it is synced again"
is "$(depth_requests)" "3" "(b) the mock answered a second depth request for it"
sleep 0.5
states=$(python3 - "$H_TMP/chan.txt" <<'EOF'
import json, sys
out = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        m = json.loads(line)
        if m["symbol"] == "BTCUSDT":
            s = m["data"]["book_state"]
            if not out or out[-1] != s:
                out.append(s)
            if s == "resyncing":
                assert m["data"]["bids"] == [] and m["data"]["asks"] == []
print(" ".join(out))
EOF
)
is "$states" "synced resyncing synced" \
  "(b) the channel saw synced, one resyncing (empty sides), then synced"

# (c) a snapshot older than the first buffered event
before=$(depth_requests)
curl -s "$C/stale_depth?n=1&ids=200" >/dev/null
curl -s "$C/skip_depth?symbol=ETHUSDT&n=3" >/dev/null
h_wait_for 10 metric_ge 'binance_live_depth_resyncs_total{reason="snapshot_too_old"}' 1
ok $? "(c) the stale snapshot was recognised (snapshot_too_old)"
h_wait_for 10 metric_ge depth_synced 2
ok $? "(c) and a fresh one synced the book"
is "$(($(depth_requests) - before))" "2" "(c) two depth requests: the stale one and its refetch"

# (e) a crossing diff
curl -s "$C/cross_depth?symbol=BTCUSDT" >/dev/null
h_wait_for 10 metric_ge 'binance_live_depth_resyncs_total{reason="crossed"}' 1
ok $? "(e) a crossed book resyncs (crossed)"
h_wait_for 10 metric_ge depth_synced 2
ok $? "(e) and it is synced again"

# (f) depth_snapshots rows every 2 s for synced books
sleep 5
rows=$(h_psql "SELECT count(*) >= 2 FROM depth_snapshots GROUP BY symbol ORDER BY symbol")
is "$(echo $rows)" "t t" "(f) at least two rows per symbol after 5 s at a 2 s interval"
is "$(h_psql "SELECT DISTINCT jsonb_array_length(bids) || ' ' || jsonb_array_length(asks) FROM depth_snapshots")" \
  "20 20" "(f) every row has depth_levels (20) levels a side"
is "$(h_psql "SELECT count(*) FROM depth_snapshots WHERE (bids->0->>0)::numeric >= (asks->0->>0)::numeric OR last_update_id <= 0")" \
  "0" "(f) no row is crossed or without an update id"
gaps=$(h_psql "SELECT count(*) FROM (SELECT timestamp - lag(timestamp) OVER (PARTITION BY symbol ORDER BY timestamp) AS d FROM depth_snapshots) x WHERE d < interval '1.5 s' OR d > interval '5 s'")
is "$gaps" "0" "(f) rows are about 2 s apart (1.5 to 5 s on a loaded machine)"
run_stop
ok $? "depth_run closed cleanly"
kill "$SUB_PID" 2>/dev/null

# ---------------------------------------------------------------- (d)
# 20 symbols, snapshots of weight 25 (limit 500; the mock holds 100 levels,
# so each is a whole book), a budget of 600 a minute: the first sync takes
# 500, the resync after the drop another 500 and must wait for the window.
N=20
mock --symbols $N --rate 100 --weight-limit 600 ||
  { ok 1 "mock for (d)"; done_testing; exit 1; }
run_start mass --synthetic $N --levels 20 --limit 500 --interval 3600 \
  --rate-limit 600 --exchange-limit 600 --workers 4
h_wait_for 30 metric_ge depth_synced $N
ok $? "(d) $N books synced"
t_drop=$(date +%s)
curl -s "$C/drop" >/dev/null
h_wait_for 10 metric_ge 'binance_live_depth_resyncs_total{reason="reset"}' $N
ok $? "(d) the reconnect resets every book"
h_wait_for 150 metric_ge depth_synced $N
ok $? "(d) every book is synced again"
diag "resynced in $(($(date +%s) - t_drop)) s"
curl -s "$C/stats" >"$H_TMP/mass.stats"
python3 - "$H_TMP/mass.stats" $N 600 <<'EOF' >"$H_TMP/mass.check"
import json, sys
st = json.load(open(sys.argv[1]))["rest"]
n, limit = int(sys.argv[2]), int(sys.argv[3])
reqs = [r for r in st["requests"] if r["path"] == "/api/v3/depth"]
print("requests", len(reqs))
print("n429", st["n429"] + sum(1 for r in reqs if r["status"] == 429))
print("max_used", max(r["used"] for r in reqs))
per_min = {}
for r in reqs:
    per_min[r["t"] // 60000] = per_min.get(r["t"] // 60000, 0) + r["weight"]
print("max_minute", max(per_min.values()))
# the resync: the last n requests; spread if they did not all go at once
last = sorted(r["t"] for r in reqs)[-n:]
print("spread_s", (last[-1] - last[0]) // 1000)
EOF
cat "$H_TMP/mass.check" | while read -r l; do diag "$l"; done
val() { awk -v k="$1" '$1 == k { print $2 }' "$H_TMP/mass.check"; }
is "$(val requests)" "$((2 * N))" "(d) one snapshot per book and sync, no more"
is "$(val n429)" "0" "(d) no 429"
[ "$(val max_used)" -le 600 ] && [ "$(val max_minute)" -le 600 ]
ok $? "(d) the mock's per-minute weight stayed under its limit (600)"
[ "$(val spread_s)" -ge 10 ]
ok $? "(d) the resync snapshots were spread over time ($(val spread_s) s), not sent at once"
is "$(metric limiter_429)" "0" "(d) the limiter saw no 429"
run_stop
ok $? "depth_run closed cleanly"
done_testing
