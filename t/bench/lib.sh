# t/bench/lib.sh: helpers shared by t/bench/run and t/bench/soak (sourced
# after t/lib/harness.sh): collector configs for 200 mock symbols, reading
# /metrics, the collector's CPU time and memory from /proc, waiting for the
# pipeline to drain, and the no-loss check against the mock's /stats.
#
# State: shell variables of the sourcing script only (B_METRICS holds the
# last /metrics text fetched).

B_CLK_TCK=$(getconf CLK_TCK)
B_METRICS=

# Names of the first N mock symbols, as a YAML flow list.
b_symbols_yaml() {
  local n=$1 i out="BTCUSDT, ETHUSDT"
  for ((i = 0; i < n - 2; i++)); do
    out="$out, $(printf 'SYM%03dUSDT' "$i")"
  done
  printf '[%s]' "$out"
}

# b_config FILE NSYMBOLS INTERVALS_YAML DEPTH(true|false): a collector config
# for the harness servers and the mock, logging at info (the harness writes
# debug, which costs CPU under load), repair off.
b_config() {
  local file=$1 nsym=$2 ivs=$3 depth=$4
  h_config_write "$file" "binance:
  api_url: \"$MOCK_API_URL\"
  ws_url: \"$MOCK_WS_URL\"
  kline_intervals: $ivs
  streams:
    kline: true
    ticker: true
    depth: $depth
    trade: true
sync:
  enabled: false
symbols:
  bootstrap: $(b_symbols_yaml "$nsym")" || return 1
  sed -i 's/^  log_level: debug$/  log_level: info/' "$file"
}

# Fetches /metrics into B_METRICS; status 1 when the collector does not answer.
b_fetch() {
  B_METRICS=$(curl -s --max-time 2 "http://127.0.0.1:$H_HTTP_PORT/metrics") &&
    [ -n "$B_METRICS" ]
}

# b_metric NAME [LABELS]: the value of one sample in B_METRICS (0 if absent).
# LABELS is the text inside {} exactly as the collector writes it.
b_metric() {
  local key=$1
  [ -n "${2:-}" ] && key="$1{$2}"
  awk -v k="$key" '$1 == k { printf "%.0f\n", $2; f = 1; exit } END { if (!f) print 0 }' \
    <<<"$B_METRICS"
}

# Sum of every sample of a family in B_METRICS (all label sets).
b_metric_sum() {
  awk -v k="$1" 'index($1, k "{") == 1 || $1 == k { s += $2 } END { printf "%.0f\n", s }' \
    <<<"$B_METRICS"
}

b_messages() { b_metric_sum binance_live_messages_total; }
b_rows() { b_metric_sum binance_live_rows_written_total; }

# CPU ticks (utime + stime) of a pid.
b_cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU ticks of the harness's PostgreSQL: the postmaster, its live children
# and the children it has reaped (a finished backend's time lands in the
# postmaster's cutime/cstime).
b_pg_ticks() {
  local pm s p
  pm=$(h__pg_pid)
  [ -n "$pm" ] || { echo 0; return; }
  s=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat" 2>/dev/null || echo 0)
  for p in $(pgrep -P "$pm"); do
    s=$((s + $(b_cpu_ticks "$p")))
  done
  echo "$s"
}

# b_status_kb PID FIELD: a VmXXX field of /proc/PID/status in kB.
b_status_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

b_now() { date +%s.%N; }

# b_fmt_num VALUE: an integer with thousands separators.
b_fmt_num() { printf "%'d" "${1%.*}" 2>/dev/null || printf '%s' "$1"; }

# Waits until the pipeline is idle: rows written and Redis publishes have
# not changed for QUIET seconds (default 1.5), at most MAX seconds (default
# 60). Sets B_LAST_CHANGE (epoch seconds of the last change seen), status 1
# on timeout or when the collector stops answering.
b_wait_drained() {
  local quiet=${1:-1.5} max=${2:-60} t0 now prev="" cur
  t0=$(b_now)
  B_LAST_CHANGE=$t0
  while :; do
    b_fetch || return 1
    now=$(b_now)
    cur="$(b_rows) $(b_metric binance_live_redis_publishes_total) $(b_messages)"
    if [ "$cur" != "$prev" ]; then
      prev=$cur
      B_LAST_CHANGE=$now
    elif awk -v a="$now" -v b="$B_LAST_CHANGE" -v q="$quiet" 'BEGIN { exit !(a - b >= q) }'; then
      return 0
    fi
    awk -v a="$now" -v b="$t0" -v m="$max" 'BEGIN { exit !(a - b >= m) }' && return 1
    sleep 0.05
  done
}

# b_loss_check: after the mock was stalled and the pipeline drained, compares
# PostgreSQL's trades with what the mock sent (/stats). Prints one line of
# figures and sets B_LOST (trades missing) and B_DUP (duplicate rows);
# status 1 when anything was lost or duplicated. Symbols listed in
# B_LOSS_SHARED (space-separated) had another WebSocket client too, so the
# mock's per-stream frame count is not the collector's: for them only the
# first id and contiguity are checked.
b_loss_check() {
  local stats=$H_TMP/stats.json db=$H_TMP/trades_by_symbol.txt
  curl -s "$MOCK_CTL/stats" >"$stats"
  h_psql "SELECT symbol, count(*), count(DISTINCT agg_trade_id), min(agg_trade_id), max(agg_trade_id) FROM trades GROUP BY symbol" >"$db"
  local out
  b_fetch
  out=$(B_LOSS_SHARED="${B_LOSS_SHARED:-}" python3 - "$stats" "$db" \
    "$(b_metric binance_live_messages_total 'type="trade"')" <<'PY'
import json, os, sys
shared = set(os.environ.get("B_LOSS_SHARED", "").split())
st = json.load(open(sys.argv[1]))
streams = st.get("streams", {})
sent = {}
for name, n in streams.items():
    if name.endswith("@aggTrade"):
        sent[name.split("@")[0].upper()] = n
info = st.get("symbols", {})
rows = {}
for line in open(sys.argv[2]):
    s, c, d, lo, hi = line.strip().split("|")
    rows[s] = (int(c), int(d), int(lo), int(hi))
lost = dup = holes = 0
for s, n in sent.items():
    c, d, lo, hi = rows.get(s, (0, 0, 0, 0))
    first = info.get(s, {}).get("first_trade_id_sent", lo)
    dup += c - d
    # n: frames the mock really wrote for the stream (frames_per_stream;
    # trades_sent/last_trade_id_sent go on counting while it is stalled)
    if s not in shared:
        lost += max(0, n - d)
    if d and (lo != first or d != hi - lo + 1):
        holes += 1
received = int(sys.argv[3])
stored = sum(r[1] for r in rows.values())
# what the collector received and did not store
lost = max(lost, received - stored)
print("sent=%d received=%d stored=%d lost=%d duplicates=%d symbols_with_holes=%d dropped_by_mock=%d"
      % (sum(sent.values()), received, stored, lost, dup, holes,
         st.get("frames_dropped", 0)))
PY
)
  echo "$out"
  B_LOST=$(sed -n 's/.* lost=\([0-9]*\).*/\1/p' <<<"$out")
  B_DUP=$(sed -n 's/.* duplicates=\([0-9]*\).*/\1/p' <<<"$out")
  B_HOLES=$(sed -n 's/.* symbols_with_holes=\([0-9]*\).*/\1/p' <<<"$out")
  [ "${B_LOST:-1}" = 0 ] && [ "${B_DUP:-1}" = 0 ] && [ "${B_HOLES:-1}" = 0 ]
}
