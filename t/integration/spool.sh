#!/usr/bin/env bash
# spool.sh: sink/store with its on-disk spool against a real PostgreSQL
# that goes away. A steady stream of trades (consecutive ids, t/tools/
# spool_feed) must arrive exactly once:
#   1. PostgreSQL stopped for 15 s in the middle of the stream;
#   2. the feeder killed with SIGKILL while PostgreSQL is down, then a new
#      feeder replays the spool left on disk;
#   3. a small spool.max_bytes: refusals counted and logged, no crash, every
#      accepted row arrives;
#   4. a torn tail (the segment truncated by the test) is skipped with a log
#      line and everything before it arrives;
#   5. SIGTERM while PostgreSQL is down and rows are still only in memory:
#      the clean shutdown puts them in the spool, the next start stores them;
#   6. SIGKILL in the middle of a replay: segments whose rows were not yet
#      committed are still on disk, and the next start stores everything.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied with --migrate"
FEED=$BUILD/t/spool_feed

# "count|distinct|min|max" of the trade ids in [lo, hi].
ids() {
  h_psql "SELECT count(*), count(DISTINCT agg_trade_id), min(agg_trade_id), max(agg_trade_id) FROM trades WHERE symbol='SPLUSDT' AND agg_trade_id BETWEEN $1 AND $2"
}
segs() { ls "$1" 2>/dev/null | grep -c '^spool-.*\.log$'; }

# --- 1. an outage of 15 s in the middle of the stream -----------------------
sp=$H_TMP/spool1
"$FEED" --spool "$sp" --from 1 --count 9000 --rate 300 --segment-bytes 65536 \
  --wait 90 >"$H_TMP/f1.out" 2>"$H_TMP/f1.err" &
fpid=$!
sleep 3
h_pg_stop
ok $? "PostgreSQL stopped while trades stream in"
sleep 15
h_pg_start
ok $? "PostgreSQL back after 15 s"
wait $fpid
ok $? "the feeder drained its spool and exited 0"
grep FAIL "$H_TMP/f1.err" && ok 1 "no FAIL lines" || ok 0 "no FAIL lines"
is "$(ids 1 9000)" "9000|9000|1|9000" "all 9000 trade ids stored exactly once"
grep -q "rows now go to the spool" "$H_TMP/f1.err"
ok $? "the outage was logged and rows went to the spool"
like "$(grep '^replayed=' "$H_TMP/f1.out")" "^replayed=[1-9][0-9]{3,}" "thousands of rows replayed from the spool"
like "$(grep '^refused=' "$H_TMP/f1.out")" "^refused=0$" "no row refused"
is "$(segs "$sp")" "0" "consumed segments deleted"
diag "outage: checked 9000 ids; $(tr '\n' ' ' <"$H_TMP/f1.out" | sed 's/sent=[0-9]* //g')"

# --- 2. SIGKILL while PostgreSQL is down, then replay by a new process ------
sp=$H_TMP/spool2
"$FEED" --spool "$sp" --from 100001 --count 100000 --rate 500 \
  >"$H_TMP/f2.out" 2>"$H_TMP/f2.err" &
fpid=$!
sleep 2
h_pg_stop
sleep 5
kill -9 $fpid
wait $fpid 2>/dev/null
# The last "sent=" line may be younger than the last write; the one before
# it is 0.5 s older.
durable=$(grep '^sent=' "$H_TMP/f2.out" | tail -n 2 | head -n 1 | cut -d= -f2)
ok $((durable > 102000 ? 0 : 1)) "feeder killed with SIGKILL after sending up to id $durable"
like "$(segs "$sp")" "^[1-9]" "the spool is left on disk"
h_pg_start
"$FEED" --spool "$sp" --count 0 --wait 90 >"$H_TMP/f2b.out" 2>"$H_TMP/f2b.err"
ok $? "a new process replayed the spool and exited 0"
grep -q "segments with .* bytes found" "$H_TMP/f2b.err"
ok $? "the restart found the spool and said so"
r=$(ids 100001 200000)
IFS='|' read -r n nd lo hi <<<"$r"
is "$n|$nd|$lo" "$n|$n|100001" "no duplicate, nothing missing at the start ($r)"
is "$n" "$((hi - lo + 1))" "no hole: count = max - min + 1"
ok $((hi >= durable ? 0 : 1)) "every id up to $durable (sent 0.5 s before the kill) is stored; max $hi"
is "$(segs "$sp")" "0" "consumed segments deleted"
diag "kill -9: checked $n ids"

# --- 3. a full spool ---------------------------------------------------------
sp=$H_TMP/spool3
h_pg_stop
"$FEED" --spool "$sp" --from 300001 --count 5000 --rate 1000 --max-bytes 200000 \
  --wait 60 >"$H_TMP/f3.out" 2>"$H_TMP/f3.err" &
fpid=$!
sleep 7
h_pg_start
wait $fpid
ok $? "the feeder with a full spool exited 0 (no crash)"
acc=$(grep '^accepted=' "$H_TMP/f3.out" | cut -d= -f2)
ref=$(grep '^refused=' "$H_TMP/f3.out" | cut -d= -f2)
sref=$(grep '^spool_refused=' "$H_TMP/f3.out" | cut -d= -f2)
is "$((acc + ref))" "5000" "every row was accepted or refused ($acc accepted, $ref refused)"
ok $((ref > 0 && sref >= ref ? 0 : 1)) "refusals counted ($ref by the store, $sref by the spool)"
grep -q "spool full" "$H_TMP/f3.err"
ok $? "the refusal was logged"
is "$(ids 300001 305000 | cut -d'|' -f1-2)" "$acc|$acc" "every accepted row arrived, once"
diag "full spool: $acc accepted rows checked"

# --- 4. a torn tail ----------------------------------------------------------
sp=$H_TMP/spool4
h_pg_stop
"$FEED" --spool "$sp" --from 400001 --count 1000 --rate 1000 \
  >"$H_TMP/f4.out" 2>"$H_TMP/f4.err" &
fpid=$!
sleep 4
kill -9 $fpid
wait $fpid 2>/dev/null
last=$(ls "$sp"/spool-*.log | tail -n 1)
size=$(stat -c %s "$last")
truncate -s $((size - 7)) "$last"
ok $? "the last segment cut by 7 bytes ($size bytes before)"
h_pg_start
"$FEED" --spool "$sp" --count 0 --wait 60 >"$H_TMP/f4b.out" 2>"$H_TMP/f4b.err"
ok $? "replay with a torn tail exited 0"
grep -q "torn or corrupt tail" "$H_TMP/f4b.err"
ok $? "the torn tail was logged"
is "$(grep '^torn_tails=' "$H_TMP/f4b.out")" "torn_tails=1" "one torn tail counted"
r=$(ids 400001 401000)
IFS='|' read -r n nd lo hi <<<"$r"
is "$n|$nd|$lo" "$n|$n|400001" "the rows before the tail arrived once ($r)"
is "$n" "$((hi - lo + 1))" "no hole before the torn record"
ok $((n > 0 && n < 1000 ? 0 : 1)) "the torn record's rows are the ones missing ($n of 1000)"

# --- 5. a clean shutdown while PostgreSQL is down ---------------------------
sp=$H_TMP/spool5
h_pg_stop
"$FEED" --spool "$sp" --from 500001 --count 100000 --rate 1000 \
  >"$H_TMP/f5.out" 2>"$H_TMP/f5.err" &
fpid=$!
sleep 0.6 # inside the 1 s grace: the rows are only in memory
kill -TERM $fpid
wait $fpid
ok $? "SIGTERM while PostgreSQL is down: the feeder exited 0"
acc=$(grep '^accepted=' "$H_TMP/f5.out" | cut -d= -f2)
grep -q "not written at shutdown .*kept in the spool" "$H_TMP/f5.err"
ok $? "the unwritten rows were put in the spool at shutdown"
h_pg_start
"$FEED" --spool "$sp" --count 0 --wait 60 >"$H_TMP/f5b.out" 2>"$H_TMP/f5b.err"
ok $? "the next start replayed them"
is "$(ids 500001 600000)" "$acc|$acc|500001|$((500000 + acc))" "all $acc rows accepted before SIGTERM stored once"

# --- 6. SIGKILL during a replay ----------------------------------------------
sp=$H_TMP/spool6
h_pg_stop
"$FEED" --spool "$sp" --from 600001 --count 60000 --rate 8000 \
  --segment-bytes 8192 --max-rows 1000 \
  >"$H_TMP/f6.out" 2>"$H_TMP/f6.err" &
fpid=$!
h_wait_for 30 grep -q '^sent=660000' "$H_TMP/f6.out"
ok $? "60000 rows sent while PostgreSQL is down"
sleep 1
h_pg_start
h_wait_for 30 bash -c "[ \$(psql -XAtq -c \"SELECT count(*) FROM trades WHERE agg_trade_id > 600000\") -gt 2000 ]"
kill -9 $fpid
wait $fpid 2>/dev/null
before=$(h_psql "SELECT count(*) FROM trades WHERE agg_trade_id > 600000")
ok $((before < 60000 ? 0 : 1)) "killed in the middle of the replay ($before of 60000 stored)"
"$FEED" --spool "$sp" --count 0 --wait 60 >"$H_TMP/f6b.out" 2>"$H_TMP/f6b.err"
ok $? "the next start replayed the rest"
is "$(ids 600001 660000)" "60000|60000|600001|660000" "all 60000 rows stored once"
is "$(segs "$sp")" "0" "consumed segments deleted"
diag "kill during replay: $before stored before the kill; next run $(grep -E '^(replayed|written)=' "$H_TMP/f6b.out" | tr '\n' ' ')"
done_testing
