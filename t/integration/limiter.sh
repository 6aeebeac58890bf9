#!/usr/bin/env bash
# limiter.sh: binance/limiter (the one REST scheduler) against the mock
# exchange, through build/t/limiter_run: priorities, the workers cap and
# one-in-flight before the first weight header, 429 pause and 418 ban (the
# mock sees no request inside them; on_ban fires both ways), 5xx and
# timeouts retried with back-off, a final 4xx with Binance's code and msg,
# cancellation and close (each callback exactly once, uv_loop_close == 0),
# repairs leaving a reserve of the budget to a book snapshot,
# and a burst under a tight weight limit that slows down instead of
# drawing a 429.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_free_port >/dev/null; P=$H_PORT
h_free_port >/dev/null; C=$H_PORT
h_mock_start --port "$P" --control-port "$C" --symbols 2 --rate 10 --log-level warn
h_wait_for 10 curl -sf "http://127.0.0.1:$C/stats" -o /dev/null
ok $? "mock up"
A=http://127.0.0.1:$P
CTL=http://127.0.0.1:$C
RUN="$BUILD/t/limiter_run"
ctl() { curl -sf "$CTL/$1" >/dev/null; }
stats() { curl -sf "$CTL/stats" >"$H_TMP/stats.json"; }

out=$("$RUN" "$A" prio 3 6000 1 2>>"$H_TMP/err.log")
ok $? "prio run closed cleanly"
like "$out" "order=000111222333" "META before BOOK before RECENT before HISTORY, FIFO inside each"

# Repairs leave 10 % of the budget to book snapshots. Limit 100, so 90
# after the 10 % headroom and a reserve of 9: HISTORY requests of weight 3
# stop once 79 or more are used (without the reserve they would fill it to
# 88-90). A BOOK request of weight 5, submitted at +400 ms while they wait
# for the window to roll, then fits and leaves at once, instead of a
# minute later.
out=$("$RUN" "$A" reserve 40 100 1 2>>"$H_TMP/err.log")
ok $? "reserve run closed cleanly"
hs=$(sed -n 's/^history_sent=//p' <<<"$out")
[ "${hs:-99}" -ge 15 ] && [ "$hs" -le 27 ]
ok $? "repairs stop with 10 % of the budget left ($hs x 3 sent; the mock's count of the runs before may take some)"
bd=$(sed -n 's/^book_done_ms=//p' <<<"$out")
[ "${bd:--1}" -ge 400 ] && [ "$bd" -lt 1500 ]
ok $? "a book snapshot submitted while they wait goes at once (answered at +$bd ms)"

ctl "rest_delay?ms=300"
out=$("$RUN" "$A" plain 12 6000 3 2>>"$H_TMP/err.log")
ok $? "workers run closed cleanly"
like "$out" "max_in_flight=3" "at most sync.workers (3) in flight, and that many used"
like "$out" "sent_before_first_answer=1" "one request alone until the first X-MBX-USED-WEIGHT-1M"
like "$out" "ok=12" "all 12 answered"

out=$("$RUN" "$A" cancel 10 6000 2 2>>"$H_TMP/err.log")
ok $? "cancel run: uv_loop_close == 0"
like "$out" "not_called_once=0" "cancel: every callback exactly once (one request canceled twice)"
like "$out" "in_flight_canceled=1" "cancel: one of them was in flight"
like "$out" "canceled=5" "cancel: the 5 canceled ones (queued and in flight) got BL_ECANCELED"
like "$out" "ok=5" "cancel: the others succeeded"

out=$("$RUN" "$A" close 10 6000 2 2>>"$H_TMP/err.log")
ok $? "close run: uv_loop_close == 0"
like "$out" "not_called_once=0" "close: every callback exactly once"
like "$out" "canceled=9" "close: the 9 left got BL_ECANCELED"
ctl "rest_delay?ms=0"

# 429: everything pauses for Retry-After.
stats; before=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rest"]["requests"]))' "$H_TMP/stats.json")
ctl "rest_fault?status=429&count=1&retry_after=2"
out=$("$RUN" "$A" plain 6 6000 2 2>>"$H_TMP/err.log")
ok $? "429 run closed cleanly"
like "$out" "status_429=1" "one 429"
like "$out" "ok=6" "its request was retried after the pause"
ms=$(echo "$out" | sed -n 's/^last_done_ms=//p')
[ "$ms" -ge 1900 ]; ok $? "the run waited out Retry-After ($ms ms)"
stats
python3 - "$H_TMP/stats.json" "$before" 429 2 <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))["rest"]["requests"][int(sys.argv[2]):]
st, secs = int(sys.argv[3]), int(sys.argv[4])
t0 = [e["t"] for e in log if e["status"] == st][0]
inside = [e for e in log if t0 + 300 < e["t"] < t0 + secs * 1000]
after = [e for e in log if e["t"] >= t0 + secs * 1000]
print("# %d at %d; %d requests inside the pause, %d after it" % (st, t0, len(inside), len(after)))
sys.exit(0 if not inside and after else 1)
PY
ok $? "the mock saw no request during the 429 pause, and requests after it"

# 418: all REST stops until the ban ends; on_ban both ways.
stats; before=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rest"]["requests"]))' "$H_TMP/stats.json")
ctl "rest_fault?status=418&retry_after=3"
out=$("$RUN" "$A" plain 6 6000 2 2>"$H_TMP/ban.log")
ok $? "418 run closed cleanly"
like "$out" "status_418=1" "one 418"
like "$out" "ban_on=1" "on_ban(1) when the ban started"
like "$out" "ban_off=1" "on_ban(0) when it ended"
like "$out" "ok=6" "all requests done after the ban"
grep -q 'BANNED' "$H_TMP/ban.log"; ok $? "the ban is logged loudly"
stats
python3 - "$H_TMP/stats.json" "$before" 418 3 <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))["rest"]["requests"][int(sys.argv[2]):]
st, secs = int(sys.argv[3]), int(sys.argv[4])
t0 = [e["t"] for e in log if e["status"] == st][0]
inside = [e for e in log if t0 + 300 < e["t"] < t0 + secs * 1000]
print("# %d at %d; %d requests inside the ban" % (st, t0, len(inside)))
sys.exit(0 if not inside else 1)
PY
ok $? "the mock saw no request during the ban"

# 5xx and timeouts: retried with back-off.
ctl "rest_fault?status=500&count=2"
out=$("$RUN" "$A" plain 1 6000 2 2>>"$H_TMP/err.log")
like "$out" "status_5xx=2" "two 500s"
like "$out" "ok=1" "then success"
ms=$(echo "$out" | sed -n 's/^last_done_ms=//p')
[ "$ms" -ge 1500 ]; ok $? "back-off between the attempts (1 s then 2 s, with jitter: $ms ms)"
ctl "rest_delay?ms=1500"
( sleep 2.5; curl -sf "$CTL/rest_delay?ms=0" >/dev/null ) &
SPID=$!
out=$("$RUN" "$A" plain 1 6000 2 2>>"$H_TMP/err.log")
like "$out" "timeouts=[1-9]" "timeouts seen (http timeout 1 s, answers delayed 1.5 s)"
like "$out" "ok=1" "retried until it succeeded"
wait $SPID

# other 4xx: final, with Binance's code and message, not retried
out=$("$RUN" "$A" bad 2>>"$H_TMP/err.log")
like "$out" "final status=400 api_code=-1121 api_msg=Invalid symbol. attempts=1" "a 400 is final with code -1121 and its msg, one attempt"
like "$out" "retries=0" "not retried"

h_mock_stop
ok $? "mock exits 0"

# A burst under a tight limit, on a fresh mock (its minute window empty):
# the mock enforces 20/min, the limiter is configured 20 (18 effective); 26
# requests must spread over two windows with no 429.
h_free_port >/dev/null; P=$H_PORT
h_free_port >/dev/null; C=$H_PORT
h_mock_start --port "$P" --control-port "$C" --symbols 1 --rate 1 --weight-limit 20 --log-level warn
h_wait_for 10 curl -sf "http://127.0.0.1:$C/stats" -o /dev/null
ok $? "second mock up, 20 weight per minute"
A=http://127.0.0.1:$P
CTL=http://127.0.0.1:$C
out=$("$RUN" "$A" plain 26 20 5 2>>"$H_TMP/err.log")
ok $? "burst run closed cleanly"
like "$out" "status_429=0" "no 429 drawn"
like "$out" "ok=26" "all 26 done"
ms=$(echo "$out" | sed -n 's/^last_done_ms=//p')
[ "$ms" -ge 55000 ]; ok $? "the burst slowed down to the budget ($ms ms)"
stats
python3 - "$H_TMP/stats.json" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))["rest"]["requests"]
per = {}
for e in log:
    per[e["t"] // 60000] = per.get(e["t"] // 60000, 0) + e["weight"]
n429 = sum(1 for e in log if e["status"] == 429)
print("# weight per UTC minute: %s; 429s: %d" % (sorted(per.values()), n429))
sys.exit(0 if n429 == 0 and max(per.values()) <= 20 else 1)
PY
ok $? "the mock's stats: no 429 and never more than 20 weight in a minute"
h_mock_stop
ok $? "second mock exits 0"
done_testing
