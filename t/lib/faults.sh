# t/lib/faults.sh: shared helpers for the collector-level fault-injection
# scripts (t/integration/faults*.sh, t/integration/nodeps.sh). Sourced
# after t/lib/harness.sh.
#
# The set-up is the same everywhere: the mock exchange with a steady flow
# of trades (F_MOCK_SYMBOLS symbols, F_RATE trades/s over all of them), the
# collector ($BUILD/binance-live) collecting F_SYMS with trades, tickers and
# 1m klines (depth off: the tests are about trades), sync enabled with
# max_sync_hours 1, so a start-up repair fetches the last hour of trades.
#
# The completeness check (f_check) is the heart of every script: for each
# collected symbol it takes the last aggTrade id the mock has sent (its
# /stats), waits until PostgreSQL holds every id from the first one stored
# up to that one, then asserts count = max - min + 1 and no duplicate.
# Each check sets F_CHECKED (ids covered) and adds to F_LOST and F_DUPS,
# which f_summary prints.
#
#   f_setup [MOCK_ARGS...]   h_init, PostgreSQL, Redis, the mock
#   f_config FILE [YAML]     h_config_write with the binance/symbols/sync
#                            sections above plus YAML (e.g. a spool section
#                            override is not possible: use F_SPOOL_MAX)
#   f_start_collector FILE   h_collector_start, waits for trades to arrive
#   f_mock_last              prints "SYMBOL LAST_ID_SENT" per collected symbol
#   f_check LABEL [SECS]     the completeness check (TAP lines)
#   f_health                 prints the HTTP status of /health (body in
#                            $H_TMP/health.json)
#   f_metric REGEX           prints the /metrics lines matching REGEX
#   f_stop_clean             SIGTERM; TAP: exit 0, no sanitizer report
#   f_summary NAME FAULTS    the per-scenario line of the final report
#
# State: F_SYMS, F_RATE, F_MOCK_SYMBOLS, F_SPOOL_MAX (config knobs, set
# before f_setup/f_config), F_CHECKED, F_LOST, F_DUPS, F_T0 (counters).

F_SYMS=${F_SYMS:-"BTCUSDT ETHUSDT SYM000USDT"}
F_RATE=${F_RATE:-200}
F_MOCK_SYMBOLS=${F_MOCK_SYMBOLS:-4}
F_SPOOL_MAX=${F_SPOOL_MAX:-}
F_CHECKED=0
F_LOST=0
F_DUPS=0
F_T0=$(date +%s)

# LeakSanitizer on for ASan builds (ignored by normal builds).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

f_setup() {
  h_init
  h_pg_start || { ok 1 "PostgreSQL started"; done_testing; exit 1; }
  h_redis_start || { ok 1 "Redis started"; done_testing; exit 1; }
  h_mock_start --symbols "$F_MOCK_SYMBOLS" --rate "$F_RATE" --seed 7 \
    --log-level warn "$@" || { ok 1 "mock started"; done_testing; exit 1; }
  H=http://127.0.0.1
}

f_config() {
  local file=$1 extra=${2:-} list sp=
  list=$(printf '%s, ' $F_SYMS)
  list=${list%, }
  h_config_write "$file" "binance:
  api_url: \"$MOCK_API_URL\"
  ws_url: \"$MOCK_WS_URL\"
  kline_intervals: [1m]
  streams: {kline: true, ticker: true, depth: false, trade: true}
symbols:
  bootstrap: [$list]
sync:
  enabled: true
  max_sync_hours: 1
stream:
  reconnect_delay: 1
$extra"
  if [ -n "$F_SPOOL_MAX" ]; then
    # h_config_write writes the spool section; add max_bytes under it.
    sed -i "s|^  dir: \"$H_TMP/spool\"|&\n  max_bytes: $F_SPOOL_MAX|" "$file"
  fi
  H=http://127.0.0.1:$H_HTTP_PORT
}

# Trades of the first collected symbol in PostgreSQL.
f_ntrades() {
  h_psql "SELECT count(*) FROM trades WHERE symbol='${1:-${F_SYMS%% *}}'" 2>/dev/null
}

f__trades_above() { [ "$(f_ntrades "$2")" -gt "$1" ] 2>/dev/null; }

# Waits (SECS) until the first symbol has more than N trades stored.
f_wait_trades_above() {
  h_wait_for "$2" f__trades_above "$1" "${3:-${F_SYMS%% *}}"
}

f_start_collector() {
  h_collector_start "$1"
  f_wait_trades_above 0 "${2:-60}"
}

f_stats() { curl -sf "$MOCK_CTL/stats"; }

f_mock_last() {
  f_stats | python3 -c '
import json, sys
st = json.load(sys.stdin)["symbols"]
for s in sys.argv[1:]:
    print(s, st.get(s, {}).get("last_trade_id_sent", 0))' $F_SYMS
}

# "SYMBOL total distinct min max in_range" per symbol, in_range being the
# distinct ids in [min, LAST]; reads "SYMBOL LAST" lines on stdin.
f__db_view() {
  local vals="" s l
  while read -r s l; do
    vals="$vals${vals:+,}('$s',$l::bigint)"
  done
  h_psql "SELECT v.s, count(t.*), count(DISTINCT t.agg_trade_id),
    coalesce(min(t.agg_trade_id),0), coalesce(max(t.agg_trade_id),0),
    count(DISTINCT t.agg_trade_id) FILTER (WHERE t.agg_trade_id <= v.l), v.l
    FROM (VALUES $vals) v(s,l) LEFT JOIN trades t ON t.symbol = v.s
    GROUP BY v.s, v.l ORDER BY v.s" 2>/dev/null | tr '|' ' '
}

# True when every symbol holds every id in [min, LAST].
f__complete() {
  local s n d mn mx r l
  [ -s "$1" ] || return 1
  while read -r s n d mn mx r l; do
    [ "$n" -gt 0 ] || return 1
    [ "$mx" -ge "$l" ] || return 1
    [ "$r" -eq $((l - mn + 1)) ] || return 1
  done < <(f__db_view <"$1")
}

f_check() {
  local label=$1 secs=${2:-90} lf=$H_TMP/last.$RANDOM s n d mn mx r l
  local want lost dups t0 t1
  f_mock_last >"$lf"
  F_CHECKED=0 # the last check counts: it covers the earlier ones
  t0=$(date +%s)
  h_wait_for "$secs" f__complete "$lf"
  t1=$(date +%s)
  while read -r s n d mn mx r l; do
    want=$((l - mn + 1))
    lost=$((want - r))
    dups=$((n - d))
    F_CHECKED=$((F_CHECKED + want))
    F_LOST=$((F_LOST + (lost > 0 ? lost : 0)))
    F_DUPS=$((F_DUPS + dups))
    ok $([ "$n" -gt 0 ] && [ "$lost" -eq 0 ]; echo $?) \
      "$label: $s holds every trade id from the first stored ($mn) to the last the mock sent ($l): $want checked, $lost missing"
    is "$dups" "0" "$label: $s has no duplicate trade ($n rows, $d distinct ids)"
    if [ "$lost" -gt 0 ]; then
      diag "  missing ranges of $s (first 10):"
      h_psql "SELECT lo, hi, hi - lo + 1 FROM (SELECT agg_trade_id + 1 AS lo,
        lead(agg_trade_id) OVER (ORDER BY agg_trade_id) - 1 AS hi
        FROM trades WHERE symbol='$s' AND agg_trade_id <= $l) q
        WHERE hi >= lo ORDER BY lo LIMIT 10" | sed 's/^/#   /'
    fi
  done < <(f__db_view <"$lf")
  diag "$label: waited $((t1 - t0)) s for the collector to catch up"
}

f_health() {
  curl -s -o "$H_TMP/health.json" -w '%{http_code}' "$H/health" 2>/dev/null
}

f__health_is() { [ "$(f_health)" = "$1" ]; }
f_wait_health() { h_wait_for "$2" f__health_is "$1"; }

f_metric() {
  curl -s "$H/metrics" 2>/dev/null | grep -E "$1"
}

# The numeric value of the first /metrics line matching REGEX (0 if none).
f_metric_val() {
  local v
  v=$(f_metric "$1" | head -n 1 | awk '{print $NF}')
  printf '%s\n' "${v:-0}" | cut -d. -f1
}

f_sanitizer_clean() {
  ! grep -qE 'Sanitizer|runtime error:' \
    "$H_TMP/collector.log"
}

f_stop_clean() {
  h_collector_stop 30
  is "$?" "0" "SIGTERM: the collector exits 0"
  f_sanitizer_clean
  ok $? "no LeakSanitizer/ASan/UBSan report in the collector's stderr"
  if ! f_sanitizer_clean; then
    grep -E -A20 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' \
      "$H_TMP/collector.log" | head -n 60 | sed 's/^/#   /'
  fi
}

f_summary() {
  diag "SUMMARY $1: faults: $2; trades checked $F_CHECKED, lost $F_LOST, duplicates $F_DUPS, $(($(date +%s) - F_T0)) s"
}
