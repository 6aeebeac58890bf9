#!/usr/bin/env bash
# metrics.sh: the collector's HTTP endpoint as an operator and Prometheus see
# it. The collector runs against the mock exchange, the harness PostgreSQL
# and Redis; once data flows, /health answers 200 with a JSON body naming
# postgres, redis and the stream connections, /metrics passes `promtool
# check metrics`, and the Dockerfile's HEALTHCHECK probe accepts it. With
# Redis stopped /health turns 503 and says redis is down (and the probe
# fails); unknown paths get 404, a garbage request 400, a POST 405.
# Skipped (one ok line and a diag) while the collector has no HTTP endpoint.
. "$(dirname "$0")/../lib/harness.sh"
h_init
cd "$H_ROOT" || exit 1
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if [ ! -x "$BUILD/binance-live" ] || ! grep -q '"/metrics"' src/*.c 2>/dev/null; then
  diag "the collector does not serve /metrics yet (src/app.c)"
  ok 0 "skipped: collector not wired yet"
  done_testing
  exit 0
fi
if ! command -v promtool >/dev/null 2>&1; then
  diag "promtool is missing (deps/install.sh installs prometheus)"
  ok 1 "promtool available"
  done_testing
  exit 1
fi

h_pg_start || { ok 1 "PostgreSQL started"; done_testing; exit 1; }
h_redis_start || { ok 1 "Redis started"; done_testing; exit 1; }
h_mock_start --symbols 4 --rate 40 || { ok 1 "mock exchange started"; done_testing; exit 1; }
cfg=$H_TMP/c.yaml
h_config_write "$cfg" "binance:
  api_url: \"$MOCK_API_URL\"
  ws_url: \"$MOCK_WS_URL\"
  kline_intervals: [1m]
symbols:
  bootstrap: [BTCUSDT, ETHUSDT]
sync:
  enabled: false"
base=http://127.0.0.1:$H_HTTP_PORT
h_collector_start "$cfg"

# curl: status code to stdout, body to a file.
get() { curl -s -m 5 -o "$H_TMP/body" -w '%{http_code}' "$@"; }
health_is() { [ "$(get "$base/health")" = "$1" ]; }

h_wait_for 30 health_is 200
ok $? "/health answers 200 once data flows"
if ! health_is 200; then
  diag "last /health: $(cat "$H_TMP/body" 2>/dev/null)"
  tail -n 20 "$H_TMP/collector.log" | sed 's/^/#   /'
fi
body=$(cat "$H_TMP/body")
"$PY" - "$body" >"$H_TMP/health.checks" 2>&1 <<'PYEOF'
import json, sys
try:
    h = json.loads(sys.argv[1])
except ValueError as e:
    print("NOTOK /health body is JSON"); print("DIAG   %s" % e); sys.exit()
print("OK /health body is JSON")
def ok(c, n):
    print(("OK " if c else "NOTOK ") + n)
ok(h.get("status") == "ok", "status is ok")
ok(isinstance(h.get("postgres"), dict) and h["postgres"].get("up") is True,
   "it names postgres, up")
ok(isinstance(h.get("redis"), dict) and h["redis"].get("up") is True,
   "it names redis, up")
conns = (h.get("streams") or {}).get("connections")
ok(isinstance(conns, list) and len(conns) > 0 and
   all("state" in c for c in conns),
   "it lists the stream connections with their state (%s)"
   % (len(conns) if isinstance(conns, list) else conns))
PYEOF
while IFS= read -r line; do
  case "$line" in
    "OK "*) ok 0 "${line#OK }" ;;
    "NOTOK "*) ok 1 "${line#NOTOK }" ;;
    *) diag "$line" ;;
  esac
done <"$H_TMP/health.checks"

is "$(get "$base/metrics")" 200 "/metrics answers 200"
cp "$H_TMP/body" "$H_TMP/metrics.txt"
promtool check metrics <"$H_TMP/metrics.txt" >"$H_TMP/promtool.out" 2>&1
ok $? "promtool check metrics accepts /metrics"
sed 's/^/#   /' "$H_TMP/promtool.out" | head -n 20
like "$(grep -c '^# TYPE ' "$H_TMP/metrics.txt")" '^[1-9][0-9]*$' \
  "/metrics declares metric families"
like "$(grep -E '^binance_live_up\{component="redis"\}' "$H_TMP/metrics.txt")" \
  ' 1$' "binance_live_up{component=\"redis\"} is 1"
frames=$(sed -nE 's/^binance_live_frames_total ([0-9]+)$/\1/p' "$H_TMP/metrics.txt")
[ "${frames:-0}" -gt 0 ]
ok $? "binance_live_frames_total counts the frames received (${frames:-none})"

# The Dockerfile's HEALTHCHECK command against the real endpoint.
probe_json=$(grep -A1 '^HEALTHCHECK' Dockerfile | sed -n 's/^ *CMD //p')
probe() {
  "$PY" -c 'import json, subprocess, sys
argv = [a.replace("/8080", "/" + sys.argv[2]) for a in json.loads(sys.argv[1])]
sys.exit(subprocess.run(argv, timeout=5).returncode)' "$probe_json" "$H_HTTP_PORT"
}
probe
ok $? "the image's HEALTHCHECK probe passes against the collector"

# Bad requests.
is "$(get "$base/no-such-path")" 404 "an unknown path gets 404"
is "$(get -X POST --data x "$base/health")" 405 "a POST gets 405"
garbage=$("$PY" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"BLAH\x01\x02 nonsense\r\n\r\n")
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data.split(b"\r\n")[0].decode("latin-1"))' "$H_HTTP_PORT" 2>&1)
like "$garbage" '^HTTP/1\.[01] 400' "a garbage request gets 400"

# Redis goes away: /health turns 503 and says so.
h_redis_stop
h_wait_for 20 health_is 503
ok $? "/health answers 503 with Redis stopped"
body=$(cat "$H_TMP/body")
redis_up=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["redis"]["up"])' "$body" 2>/dev/null)
is "$redis_up" "False" "/health names redis as down"
pg_up=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["postgres"]["up"])' "$body" 2>/dev/null)
is "$pg_up" "True" "postgres is still up"
probe
rc=$?
[ $rc -ne 0 ]
ok $? "the HEALTHCHECK probe fails (status $rc) while Redis is down"
get "$base/metrics" >/dev/null
like "$(grep -E '^binance_live_up\{component="redis"\}' "$H_TMP/body")" \
  ' 0$' "binance_live_up{component=\"redis\"} is 0"

# And back.
h_redis_start
h_wait_for 30 health_is 200
ok $? "/health is 200 again once Redis is back"

h_collector_stop 20
ok $? "the collector exits 0 on SIGTERM"
done_testing
