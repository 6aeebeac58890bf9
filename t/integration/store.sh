#!/usr/bin/env bash
# store.sh: sink/store against a real PostgreSQL with the schema applied:
# batching, idempotent writes (duplicate trades, kline upserts that freeze
# once closed), exact decimals, a bad row isolated by splitting its batch,
# and sync_status.last_data_time kept by the same statements. Then the same
# with the COPY connection (STORE_LOAD_COPY=1): new rows committed by COPY,
# a refused COPY (rows already stored, a bad value) sent through the
# statement instead with nothing lost or doubled, sync_status kept after
# COPY, and the same end state as without it. Last, 200,000 trades of 40
# symbols as fast as the store takes them (STORE_LOAD_ORDER): both COPY
# connections busy, and still each symbol's rows committed in id order
# (the harness's PostgreSQL keeps commit timestamps), and each COPY's rows
# sent grouped by symbol.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied with --migrate"

out=$("$BUILD/t/store_load" 2>"$H_TMP/store.err")
ok $? "store_load ran to completion with uv_loop_close() == 0"
diag "$(echo $out)"
grep FAIL "$H_TMP/store.err" && ok 1 "no FAIL lines" || ok 0 "no FAIL lines"

is "$(h_psql "SELECT count(*), count(DISTINCT agg_trade_id), min(agg_trade_id), max(agg_trade_id) FROM trades WHERE symbol='BTCUSDT'")" \
   "2500|2500|1|2500" "2500 trades, the 300 repeated ones stored once"
is "$(h_psql "SELECT price::text, source, is_buyer_maker FROM trades WHERE symbol='BTCUSDT' AND agg_trade_id=7")" \
   "30007.12345678|ws|t" "a trade's decimal is stored exactly, with its source"
is "$(h_psql "SELECT count(*) FROM klines WHERE symbol='ETHUSDT' AND interval='1m' AND is_closed")" \
   "10" "10 closed bars, one row each"
is "$(h_psql "SELECT volume::text, trades_count, high_price::text FROM klines WHERE symbol='ETHUSDT' AND open_time = to_timestamp(1700000000)")" \
   "6.00000000|6|105.50000000" "a closed bar keeps its final values; the later open update did not overwrite it"
is "$(h_psql "SELECT count(*) FROM klines WHERE symbol='BADUSDT'")" "0" "the unparsable kline was refused"
is "$(h_psql "SELECT count(*) FROM klines WHERE symbol='SOLUSDT'")" "8" "its 8 neighbours in the refused batch were all stored"
like "$out" "bad_rows=1" "exactly one row was dropped, its batch was split"
is "$(h_psql "SELECT count(*) FROM tickers WHERE symbol='BTCUSDT'")" "400" "every ticker event stored"
is "$(h_psql "SELECT volume_24h::text FROM tickers WHERE symbol='BTCUSDT' LIMIT 1")" \
   "123456789012345678901234.123456789012" "a 36-digit decimal survives exactly"
is "$(h_psql "SELECT count(*), max(last_update_id) FROM depth_snapshots WHERE symbol='BTCUSDT'")" "3|1002" "depth snapshots stored"
is "$(h_psql "SELECT bids->0->>0 FROM depth_snapshots WHERE symbol='BTCUSDT' ORDER BY timestamp LIMIT 1")" "30000.00" "snapshot levels are jsonb arrays of strings"
is "$(h_psql "SELECT (extract(epoch FROM last_data_time)*1000)::bigint FROM sync_status WHERE symbol='BTCUSDT' AND data_type='trade' AND interval=''")" \
   "$((1700000000000 + 2500 * 7))" "sync_status.last_data_time of trades is the newest trade_time"
is "$(h_psql "SELECT (extract(epoch FROM last_data_time)*1000)::bigint FROM sync_status WHERE symbol='ETHUSDT' AND data_type='kline' AND interval='1m'")" \
   "$((1700000000000 + 9 * 60000))" "sync_status.last_data_time of klines is the newest closed open_time"
is "$(h_psql "SELECT count(*) FROM sync_status WHERE symbol='BTCUSDT' AND data_type IN ('ticker','depth')")" "2" "tickers and snapshots keep sync_status too"

# Run it again: every write is idempotent.
"$BUILD/t/store_load" >/dev/null 2>&1
is "$(h_psql "SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM klines) + (SELECT count(*) FROM tickers) + (SELECT count(*) FROM depth_snapshots)")" \
   "$((2500 + 10 + 8 + 400 + 3))" "a second identical run adds no row"
# Batches over pg's byte bound are halved until they fit, nothing dropped.
h_psql "TRUNCATE trades, klines, tickers, depth_snapshots, sync_status" >/dev/null
out=$(STORE_LOAD_PG_MAX_BYTES=30000 "$BUILD/t/store_load" 2>"$H_TMP/store-small.err")
ok $? "store_load with a 30,000-byte statement bound ran to completion"
n=$(sed -n 's/^batches_trades=//p' <<<"$out")
[ "${n:-0}" -ge 8 ]
ok $? "trade batches were halved to fit ($n statements for 2,800 rows)"
is "$(h_psql "SELECT count(*), count(DISTINCT agg_trade_id) FROM trades WHERE symbol='BTCUSDT'")" "2500|2500" \
   "every trade stored once after the halving"
like "$out" "bad_rows=1" "only the bad kline was dropped"

# --- the COPY connection --------------------------------------------------
h_psql "TRUNCATE trades, klines, tickers, depth_snapshots, sync_status" >/dev/null
out=$(STORE_LOAD_COPY=1 "$BUILD/t/store_load" 2>"$H_TMP/store-copy.err")
ok $? "store_load with COPY ran to completion with uv_loop_close() == 0"
diag "$(echo $out)"
like "$out" "copy_phase=4" "the COPY connection came up and the three COPY phases ran"
n=$(sed -n 's/^copy_committed=//p' <<<"$out")
[ "${n:-0}" -ge 2 ]
ok $? "new trades were committed by COPY ($n batches)"
n=$(sed -n 's/^copy_fell_back=//p' <<<"$out")
[ "${n:-0}" -ge 2 ]
ok $? "the COPY holding stored rows and the batch with a bad value fell back to the statement ($n)"
grep -q "COPY of .* refused (SQLSTATE 23505" "$H_TMP/store-copy.err"
ok $? "the refused COPY is logged with its SQLSTATE"
grep -q "cannot go by COPY" "$H_TMP/store-copy.err"
ok $? "the batch that cannot be written as COPY data is logged"
is "$(h_psql "SELECT count(*), count(DISTINCT agg_trade_id), min(agg_trade_id), max(agg_trade_id) FROM trades WHERE symbol='BTCUSDT'")" \
   "5100|5100|1|5100" "5100 trades once each: nothing lost or doubled across COPY and its fallback"
is "$(h_psql "SELECT price::text, quantity::text, trade_time, is_buyer_maker, source FROM trades WHERE symbol='BTCUSDT' AND agg_trade_id=3001")" \
   "33001.12345678|0.00100000|$(h_psql "SELECT to_timestamp((1700000000000 + 3001 * 7) / 1000.0)")|t|ws" \
   "a COPY'd trade keeps its exact decimal, millisecond time and flag"
is "$(h_psql "SELECT count(*) FROM trades WHERE symbol='BADUSDT'")" "0" "the unparsable trade was refused"
like "$out" "bad_rows=2" "the bad trade was isolated like the bad kline (2 rows dropped)"
is "$(h_psql "SELECT (extract(epoch FROM last_data_time)*1000)::bigint FROM sync_status WHERE symbol='ETHUSDT' AND data_type='trade' AND interval=''")" \
   "$((1700000000000 + 10 * 7))" "sync_status after COPY: the newest committed trade_time"
is "$(h_psql "SELECT (extract(epoch FROM last_data_time)*1000)::bigint FROM sync_status WHERE symbol='BTCUSDT' AND data_type='trade' AND interval=''")" \
   "$((1700000000000 + 5100 * 7))" "sync_status across COPY and statement batches keeps the newest"
is "$(h_psql "SELECT count(*) FROM tickers WHERE symbol='BTCUSDT'")" "410" "every ticker stored, 10 of them by COPY"
is "$(h_psql "SELECT price::text, price_change_24h::text, price_change_percent_24h::text, high_24h::text, volume_24h::text, (extract(epoch FROM timestamp)*1000)::bigint, trades_count_24h FROM tickers WHERE symbol='BTCUSDT' AND price = 30405")" \
   "30405.00000000|-12.50000000|-0.041|31000|123456789012345678901234.123456789012|$((1700000000000 + 405 * 1000))|1405" \
   "a COPY'd ticker keeps its exact decimals, time and counts"
is "$(h_psql "SELECT last_update_id, bids->0->>1, asks::text, (extract(epoch FROM timestamp)*1000)::bigint FROM depth_snapshots WHERE symbol='ETHUSDT'")" \
   "77|1.5|[[\"2001.00\", \"0.25\"]]|$((1700000000000 + 5))" "a COPY'd depth snapshot keeps its levels as jsonb"
is "$(h_psql "SELECT count(*) FROM sync_status WHERE symbol IN ('BTCUSDT','ETHUSDT') AND data_type IN ('ticker','depth')")" "3" \
   "sync_status rows for tickers and snapshots after COPY"
STORE_LOAD_COPY=1 "$BUILD/t/store_load" >/dev/null 2>&1
is "$(h_psql "SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM klines) + (SELECT count(*) FROM tickers) + (SELECT count(*) FROM depth_snapshots)")" \
   "$((5100 + 10 + 10 + 8 + 410 + 4))" "a second identical run with COPY adds no row"

# --- order across the COPY connections ---------------------------------------
h_psql "TRUNCATE trades, sync_status" >/dev/null
out=$(STORE_LOAD_ORDER=200000 "$BUILD/t/store_load" 2>"$H_TMP/store-order.err")
ok $? "store_load fed 200,000 trades over 40 symbols and closed cleanly"
diag "$(echo $out)"
is "$(h_psql "SELECT count(*), count(DISTINCT (symbol, agg_trade_id)), count(DISTINCT symbol) FROM trades")" \
   "200000|200000|40" "every trade stored once"
conns=$(grep -c '^copy_jobs_' <<<"$out")
[ "$conns" -ge 2 ]
ok $? "the store has $conns COPY connections"
while IFS== read -r k n; do
  [ "${n:-0}" -ge 5 ]
  ok $? "COPY connection ${k#copy_jobs_} committed batches ($n)"
done < <(grep '^copy_jobs_' <<<"$out")
is "$(h_psql "SELECT count(*) FROM (SELECT pg_xact_commit_timestamp(xmin) AS c, lag(pg_xact_commit_timestamp(xmin)) OVER (PARTITION BY symbol ORDER BY agg_trade_id) AS p FROM trades) s WHERE c < p")" \
   "0" "each symbol's trades committed in id order (no later row committed before an earlier one)"
# A COPY sends its rows grouped by symbol, symbols in byte order, each
# symbol's rows in arrival order (the B-tree then takes them a page at a
# time). Each COPY is one transaction, so its rows are those of one xmin.
# The heap's order (ctid) shows the order they were sent in, except where
# the two connections' backends share a page from the free space map,
# which makes the order step back once or twice. The feed is round robin
# over 20 symbols per connection: sent as they came, a step back would
# follow every 20th row. So a COPY counts as grouped below 1 in 100.
copies=$(sed -n 's/^copy_committed=//p' <<<"$out")
grouped=$(h_psql "WITH r AS (SELECT xmin::text AS tx, symbol COLLATE \"C\" AS s, agg_trade_id AS id,
  lag(symbol COLLATE \"C\") OVER w AS ps, lag(agg_trade_id) OVER w AS pid
  FROM trades WINDOW w AS (PARTITION BY xmin::text ORDER BY ctid))
  SELECT count(*) FROM (SELECT tx FROM r GROUP BY tx HAVING count(DISTINCT s) > 1 AND
  100 * count(*) FILTER (WHERE ps > s OR (ps = s AND pid > id)) < count(*)) t")
[ "${grouped:-0}" -ge "${copies:-0}" ] && [ "${copies:-0}" -ge 10 ]
ok $? "each of the $copies COPYs sent its rows grouped by symbol in name order, ids rising ($grouped transactions so)"
done_testing
