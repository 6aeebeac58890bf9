#!/usr/bin/env bash
# store.sh: sink/store against a real PostgreSQL with the schema applied:
# batching, idempotent writes (duplicate trades, kline upserts that freeze
# once closed), exact decimals, a bad row isolated by splitting its batch,
# and sync_status.last_data_time kept by the same statements.
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
done_testing
