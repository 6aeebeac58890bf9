#!/usr/bin/env bash
# schema.sh: the migrations of schema/ against a real PostgreSQL (plain, as
# in CI): applied the way the migrator applies them (each file in one
# transaction), idempotent (a second run leaves the catalog unchanged), every
# table and column of PRODUCT.md section 5 with the right type, keys and
# CHECKs enforced, the seed README's example queries running unchanged,
# numeric exactness, time_bucket semantics, and the NOTIFY on symbols.
set -u
. "$(dirname "$0")/../lib/harness.sh"

h_init
h_pg_start || { ok 1 "h_pg_start"; done_testing; exit 1; }
SCHEMA_DIR=$H_ROOT/schema
files=("$SCHEMA_DIR"/[0-9][0-9][0-9]_*.sql)

# What the migrator does, in psql: schema_migrations, then every file in
# name order inside one transaction each, recorded with its checksum.
# Files already recorded are applied again anyway (the second run of this
# test is about the files themselves being idempotent).
apply_with_psql() {
  local f v sum
  h_psql "CREATE TABLE IF NOT EXISTS schema_migrations (
            version text PRIMARY KEY,
            applied_at timestamptz DEFAULT now(),
            checksum text)" >>"$H_TMP/migrate.log" 2>&1 || return 1
  for f in "${files[@]}"; do
    v=$(basename "$f" .sql)
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    psql -Xq -v ON_ERROR_STOP=1 -1 -f "$f" \
      -c "INSERT INTO schema_migrations (version, checksum)
          VALUES ('$v', '$sum') ON CONFLICT (version) DO NOTHING" \
      >>"$H_TMP/migrate.log" 2>&1 || {
      sed 's/^/#   /' "$H_TMP/migrate.log"
      return 1
    }
  done
}

dump() {
  # (pg_dump >= 15.14 brackets its output with \restrict RANDOM_KEY lines)
  "$H_PG_BIN/pg_dump" --schema-only --no-owner -d binance_data |
    grep -v -E '^\\(un)?restrict '
}

# ---------------------------------------------------------------------------
# First application. >>> When `binance-live --migrate` exists it is used here
# (the collector's own migrator); until then psql does the same job. <<<
h_config_write "$H_TMP/migrate.yaml"
used_migrate=0
if [ -x "$BUILD/binance-live" ] &&
  timeout 60 "$BUILD/binance-live" --migrate -c "$H_TMP/migrate.yaml" \
    >"$H_TMP/migrate1.log" 2>&1; then
  used_migrate=1
  diag "applied with binance-live --migrate"
  ok 0 "first application (binance-live --migrate)"
else
  diag "binance-live --migrate not available or failed (see below); applying with psql -1 -f"
  [ -s "$H_TMP/migrate1.log" ] && tail -n 3 "$H_TMP/migrate1.log" | sed 's/^/#   /'
  apply_with_psql
  ok $? "first application (psql, one transaction per file)"
fi
is "$(h_psql "SELECT count(*) FROM schema_migrations")" "${#files[@]}" \
  "every schema file is recorded in schema_migrations"

dump >"$H_TMP/dump1.sql"
apply_with_psql
ok $? "second application of every file succeeds"
dump >"$H_TMP/dump2.sql"
diff -u "$H_TMP/dump1.sql" "$H_TMP/dump2.sql" >"$H_TMP/dump.diff"
ok $? "second application changes nothing (pg_dump --schema-only identical)"
[ -s "$H_TMP/dump.diff" ] && head -n 40 "$H_TMP/dump.diff" | sed 's/^/#   /'
if [ $used_migrate -eq 1 ]; then
  timeout 60 "$BUILD/binance-live" --migrate -c "$H_TMP/migrate.yaml" >"$H_TMP/migrate2.log" 2>&1
  ok $? "binance-live --migrate runs again"
  dump >"$H_TMP/dump3.sql"
  diff -q "$H_TMP/dump1.sql" "$H_TMP/dump3.sql" >/dev/null
  ok $? "a second --migrate changes nothing"
fi

# Each file alone: transaction-safe, no schema_migrations of its own.
PGDATABASE=postgres h_psql "CREATE DATABASE fresh"
for f in "${files[@]}"; do
  PGDATABASE=fresh psql -Xq -v ON_ERROR_STOP=1 -1 -f "$f" >/dev/null 2>"$H_TMP/fresh.err"
  ok $? "$(basename "$f") applies alone inside one transaction on an empty database"
done
is "$(PGDATABASE=fresh h_psql "SELECT to_regclass('schema_migrations') IS NULL")" t \
  "the schema files do not create schema_migrations (the migrator does)"
! sed 's/--.*//' "${files[@]}" | grep -qi 'concurrently'
ok $? "no CREATE INDEX CONCURRENTLY (it cannot run in a transaction)"

# ---------------------------------------------------------------------------
# Tables and columns of PRODUCT.md section 5, in order, with their types.
expected_columns='symbols|symbol|text|NO
symbols|base_asset|text|NO
symbols|quote_asset|text|NO
symbols|status|text|NO
symbols|is_active|boolean|NO
symbols|created_at|timestamp with time zone|NO
symbols|updated_at|timestamp with time zone|NO
klines|symbol|text|NO
klines|interval|text|NO
klines|open_time|timestamp with time zone|NO
klines|close_time|timestamp with time zone|NO
klines|open_price|numeric|NO
klines|high_price|numeric|NO
klines|low_price|numeric|NO
klines|close_price|numeric|NO
klines|volume|numeric|NO
klines|quote_volume|numeric|NO
klines|trades_count|bigint|NO
klines|taker_buy_volume|numeric|NO
klines|taker_buy_quote_volume|numeric|NO
klines|first_trade_id|bigint|YES
klines|last_trade_id|bigint|YES
klines|is_closed|boolean|NO
klines|source|text|NO
tickers|symbol|text|NO
tickers|timestamp|timestamp with time zone|NO
tickers|price|numeric|NO
tickers|price_change_24h|numeric|YES
tickers|price_change_percent_24h|numeric|YES
tickers|weighted_avg_price|numeric|YES
tickers|open_price_24h|numeric|YES
tickers|high_24h|numeric|YES
tickers|low_24h|numeric|YES
tickers|volume_24h|numeric|YES
tickers|quote_volume_24h|numeric|YES
tickers|bid_price|numeric|YES
tickers|bid_qty|numeric|YES
tickers|ask_price|numeric|YES
tickers|ask_qty|numeric|YES
tickers|trades_count_24h|bigint|YES
tickers|first_trade_id|bigint|YES
tickers|last_trade_id|bigint|YES
trades|symbol|text|NO
trades|agg_trade_id|bigint|NO
trades|price|numeric|NO
trades|quantity|numeric|NO
trades|first_trade_id|bigint|NO
trades|last_trade_id|bigint|NO
trades|trade_time|timestamp with time zone|NO
trades|is_buyer_maker|boolean|NO
trades|source|text|NO
depth_snapshots|symbol|text|NO
depth_snapshots|timestamp|timestamp with time zone|NO
depth_snapshots|last_update_id|bigint|NO
depth_snapshots|bids|jsonb|NO
depth_snapshots|asks|jsonb|NO
sync_status|symbol|text|NO
sync_status|data_type|text|NO
sync_status|interval|text|NO
sync_status|last_sync_time|timestamp with time zone|YES
sync_status|last_data_time|timestamp with time zone|YES
sync_status|status|text|NO
sync_status|error_message|text|YES
sync_status|updated_at|timestamp with time zone|NO
data_gaps|id|bigint|NO
data_gaps|symbol|text|NO
data_gaps|data_type|text|NO
data_gaps|interval|text|NO
data_gaps|gap_start|timestamp with time zone|YES
data_gaps|gap_end|timestamp with time zone|YES
data_gaps|first_missing_id|bigint|YES
data_gaps|last_missing_id|bigint|YES
data_gaps|detected_at|timestamp with time zone|NO
data_gaps|state|text|NO
data_gaps|filled_at|timestamp with time zone|YES
data_gaps|rows_filled|bigint|NO
data_gaps|detail|text|YES'
tables="'symbols','klines','tickers','trades','depth_snapshots','sync_status','data_gaps'"
got_columns=$(h_psql "
  SELECT table_name || '|' || column_name || '|' || data_type || '|' || is_nullable
  FROM information_schema.columns
  WHERE table_schema = current_schema() AND table_name IN ($tables)
  ORDER BY array_position(ARRAY[$tables]::text[], table_name::text),
           ordinal_position")
is "$got_columns" "$expected_columns" "every table and column of section 5, with its type and nullability"
is "$(h_psql "SELECT count(*) FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name IN ($tables)
                AND data_type = 'numeric' AND numeric_precision IS NOT NULL")" 0 \
  "numeric columns have no precision limit"

expected_keys='data_gaps|PRIMARY KEY (id)
depth_snapshots|PRIMARY KEY (symbol, "timestamp")
klines|PRIMARY KEY (symbol, "interval", open_time)
symbols|PRIMARY KEY (symbol)
sync_status|PRIMARY KEY (symbol, data_type, "interval")
tickers|PRIMARY KEY (symbol, "timestamp")
trades|PRIMARY KEY (symbol, agg_trade_id, trade_time)'
is "$(h_psql "SELECT conrelid::regclass::text || '|' || pg_get_constraintdef(oid)
              FROM pg_constraint WHERE contype IN ('p', 'u')
                AND conrelid::regclass::text IN ($tables)
              ORDER BY 1")" "$expected_keys" "keys of section 5"
like "$(h_psql "SELECT string_agg(indexdef, ';') FROM pg_indexes WHERE tablename = 'data_gaps'")" \
  "data_gaps USING btree \(state" "data_gaps has an index by state"
is "$(h_psql "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")" 0 \
  "plain PostgreSQL here: no timescaledb extension"
like "$(h_psql "SELECT obj_description('time_bucket(interval, timestamptz)'::regprocedure)")" \
  "^binance-live:" "plain mode defines time_bucket(interval, timestamptz)"

# ---------------------------------------------------------------------------
# Sample data: BTCUSDT 1h klines over the last 7 days, tickers.
h_psql "
INSERT INTO symbols (symbol, base_asset, quote_asset, status, is_active)
VALUES ('BTCUSDT', 'BTC', 'USDT', 'TRADING', true),
       ('ETHUSDT', 'ETH', 'USDT', 'TRADING', true);
INSERT INTO klines (symbol, interval, open_time, close_time, open_price,
  high_price, low_price, close_price, volume, quote_volume, trades_count,
  taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id,
  is_closed, source)
SELECT 'BTCUSDT', '1h', t, t + interval '1 hour' - interval '1 millisecond',
  60000 + i, 60100 + i, 59900 + i, 60050 + i, '12.5', '750000.25', 1000 + i,
  '6.25', '375000.125', 100000 + i * 1000, 100999 + i * 1000, true, 'ws'
FROM generate_series(0, 7 * 24 - 1) AS i,
     LATERAL (SELECT date_trunc('hour', now()) - (i || ' hours')::interval AS t) s;
INSERT INTO tickers (symbol, \"timestamp\", price, price_change_24h,
  price_change_percent_24h, weighted_avg_price, open_price_24h, high_24h,
  low_24h, volume_24h, quote_volume_24h, bid_price, bid_qty, ask_price,
  ask_qty, trades_count_24h, first_trade_id, last_trade_id)
SELECT 'BTCUSDT', now() - (i || ' seconds')::interval, 60000 + i, '-150.5',
  '-0.25', '60010.1', '60150.5', '61000', '59000', '12345.678', '740000000.1',
  60000 + i - 0.01, '1.5', 60000 + i + 0.01, '2.5', 500000, 1, 500000
FROM generate_series(1, 20) AS i;" >/dev/null
ok $? "sample rows inserted (168 klines, 20 tickers)"

# The seed README's three example queries, verbatim.
q1="SELECT * FROM klines
WHERE symbol = 'BTCUSDT' AND interval = '1h'
ORDER BY open_time DESC
LIMIT 24;"
q2="SELECT 
    symbol,
    interval,
    time_bucket('1 day', open_time) AS day,
    AVG(close_price) as avg_price
FROM klines
WHERE symbol = 'BTCUSDT' AND interval = '1h'
  AND open_time >= NOW() - INTERVAL '7 days'
GROUP BY symbol, interval, day
ORDER BY day DESC;"
q3="SELECT 
    symbol,
    timestamp,
    price,
    price_change_percent_24h
FROM tickers
WHERE symbol = 'BTCUSDT'
ORDER BY timestamp DESC
LIMIT 10;"
out1=$(h_psql "$q1" 2>&1)
ok $? "seed query 'Get Latest Klines' runs"
is "$(printf '%s\n' "$out1" | wc -l)" 24 "it returns 24 rows"
out2=$(h_psql "$q2" 2>&1)
ok $? "seed query 'Calculate Average Price' (time_bucket) runs"
n2=$(printf '%s\n' "$out2" | wc -l)
{ [ "$n2" -ge 7 ] && [ "$n2" -le 8 ]; }; ok $? "it returns one row per day of the last 7 days ($n2)"
ref2=$(h_psql "SELECT symbol, interval, date_trunc('day', open_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
                      AVG(close_price)
               FROM klines WHERE symbol = 'BTCUSDT' AND interval = '1h'
                 AND open_time >= NOW() - INTERVAL '7 days'
               GROUP BY 1, 2, 3 ORDER BY day DESC")
is "$out2" "$ref2" "its daily buckets are UTC days, as TimescaleDB's"
out3=$(h_psql "$q3" 2>&1)
ok $? "seed query 'Get Price Changes' runs"
is "$(printf '%s\n' "$out3" | wc -l)" 10 "it returns 10 rows"
like "$(printf '%s\n' "$out3" | head -n 1)" '^BTCUSDT\|.*\|60001\|-0\.25$' "newest ticker first, decimals as stored"

# time_bucket as TimescaleDB documents it (origin 2000-01-03 for days and
# weeks, 2000-01-01 for months; UTC for timestamptz), whatever the session
# time zone.
tb() {
  h_psql "SET TIME ZONE 'America/New_York';
          SELECT to_char(time_bucket('$1', timestamptz '$2') AT TIME ZONE 'UTC',
                         'YYYY-MM-DD HH24:MI:SS')"
}
is "$(tb '5 minutes' '2024-05-10 12:17:59+00')" "2024-05-10 12:15:00" "time_bucket 5 minutes"
is "$(tb '1 hour' '2024-05-10 12:17:59+00')" "2024-05-10 12:00:00" "time_bucket 1 hour"
is "$(tb '1 day' '2024-05-10 02:00:00+00')" "2024-05-10 00:00:00" "time_bucket 1 day: UTC midnight even in New York"
is "$(tb '1 week' '2024-01-10 12:00:00+00')" "2024-01-08 00:00:00" "time_bucket 1 week starts on Monday"
is "$(tb '2 days' '2000-01-04 12:00:00+00')" "2000-01-03 00:00:00" "time_bucket 2 days aligned on 2000-01-03"
is "$(tb '1 month' '2024-03-31 23:59:59+00')" "2024-03-01 00:00:00" "time_bucket 1 month"
is "$(tb '3 months' '2024-05-10 00:00:00+00')" "2024-04-01 00:00:00" "time_bucket 3 months: quarters"
is "$(tb '1 year' '1999-05-10 00:00:00+00')" "1999-01-01 00:00:00" "time_bucket 1 year before the origin"
! h_psql "SELECT time_bucket('1 month 1 day', now())" >/dev/null 2>&1
ok $? "time_bucket refuses a month width with days, as TimescaleDB does"

# ---------------------------------------------------------------------------
# numeric keeps the exchange's decimal strings exactly.
big='123456789012345678901234.123456789012'
h_psql "INSERT INTO trades (symbol, agg_trade_id, price, quantity, first_trade_id,
          last_trade_id, trade_time, is_buyer_maker, source)
        VALUES ('PEPEUSDT', 1, '0.00000123', '$big', 10, 12,
                '2024-01-01 00:00:00.123+00', false, 'ws')" >/dev/null
is "$(h_psql "SELECT quantity FROM trades WHERE symbol = 'PEPEUSDT'")" "$big" \
  "numeric keeps 24 integer and 12 fractional digits exactly"
is "$(h_psql "SELECT price FROM trades WHERE symbol = 'PEPEUSDT'")" "0.00000123" \
  "tiny prices keep their scale"
h_psql "UPDATE trades SET price = '1.10000000' WHERE symbol = 'PEPEUSDT'"
is "$(h_psql "SELECT price FROM trades WHERE symbol = 'PEPEUSDT'")" "1.10000000" \
  "trailing zeros of the exchange string are kept"
is "$(h_psql "SELECT (extract(epoch FROM trade_time) * 1000)::bigint FROM trades WHERE symbol = 'PEPEUSDT'")" \
  1704067200123 "trade_time keeps milliseconds"

# ---------------------------------------------------------------------------
# Keys: a duplicate conflicts; ON CONFLICT keeps one row.
dup() { # NAME SQL: the SQL run twice must fail the second time with 23505
  local name=$1 sql=$2 err
  h_psql "$sql" >/dev/null 2>&1
  err=$(psql -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$sql" 2>&1)
  like "$err" "23505" "$name: a duplicate violates the key"
}
kline_sql() { # INTERVAL SOURCE
  echo "INSERT INTO klines (symbol, interval, open_time, close_time, open_price, high_price,
  low_price, close_price, volume, quote_volume, trades_count, taker_buy_volume,
  taker_buy_quote_volume, is_closed, source)
  VALUES ('ETHUSDT', '$1', '2024-01-01 00:00+00', '2024-01-01 00:00:59.999+00',
  '1', '2', '0.5', '1.5', '10', '15', 3, '5', '7.5', false, '$2')"
}
kl=$(kline_sql 1m rest)
dup klines "$kl"
h_psql "$kl ON CONFLICT (symbol, interval, open_time) DO UPDATE
        SET close_price = '1.75', is_closed = true"
is "$(h_psql "SELECT count(*) || ' ' || close_price || ' ' || is_closed FROM klines
              WHERE symbol = 'ETHUSDT' GROUP BY close_price, is_closed")" "1 1.75 true" \
  "klines: an upsert finalises the one row"
is "$(h_psql "SELECT first_trade_id IS NULL AND last_trade_id IS NULL FROM klines WHERE symbol = 'ETHUSDT'")" t \
  "klines: a repaired row may leave first/last_trade_id NULL"
h_psql "$(kline_sql 5m ws)"
ok $? "klines: the same open_time at another interval is another row"
dup trades "INSERT INTO trades (symbol, agg_trade_id, price, quantity, first_trade_id,
  last_trade_id, trade_time, is_buyer_maker) VALUES ('ETHUSDT', 7, '1', '1', 1, 1,
  '2024-01-01 00:00+00', true)"
h_psql "INSERT INTO trades (symbol, agg_trade_id, price, quantity, first_trade_id,
  last_trade_id, trade_time, is_buyer_maker) VALUES ('ETHUSDT', 7, '1', '1', 1, 1,
  '2024-01-01 00:00+00', true) ON CONFLICT DO NOTHING"
is "$(h_psql "SELECT count(*) FROM trades WHERE symbol = 'ETHUSDT'")" 1 \
  "trades: ON CONFLICT DO NOTHING leaves one row"
dup tickers "INSERT INTO tickers (symbol, \"timestamp\", price) VALUES ('ETHUSDT', '2024-01-01 00:00+00', '1')"
dup depth_snapshots "INSERT INTO depth_snapshots (symbol, \"timestamp\", last_update_id, bids, asks)
  VALUES ('ETHUSDT', '2024-01-01 00:00+00', 42, '[[\"1.0\",\"2.0\"]]', '[[\"1.1\",\"3.0\"]]')"
is "$(h_psql "SELECT bids->0->>0 || ' ' || (asks->0->>1) FROM depth_snapshots WHERE symbol = 'ETHUSDT'")" \
  "1.0 3.0" "depth_snapshots: bids and asks keep their decimal strings"
dup sync_status "INSERT INTO sync_status (symbol, data_type, interval, status)
  VALUES ('ETHUSDT', 'kline', '1m', 'ok')"
dup symbols "INSERT INTO symbols (symbol) VALUES ('SOLUSDT')"
gid=$(h_psql "INSERT INTO data_gaps (symbol, data_type, interval, gap_start, gap_end)
              VALUES ('ETHUSDT', 'kline', '1m', '2024-01-01', '2024-01-02') RETURNING id")
is "$(h_psql "SELECT state || ' ' || rows_filled || ' ' || (detected_at IS NOT NULL) FROM data_gaps WHERE id = $gid")" \
  "pending 0 true" "data_gaps: id generated, state pending, rows_filled 0, detected_at set"

# CHECK constraints.
refused() { # NAME SQL: must fail with a check violation (23514)
  local err
  err=$(psql -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$2" 2>&1)
  like "$err" "23514" "refused: $1"
}
refused "klines.source other than ws/rest" "$(kline_sql 3m ftp)"
refused "klines.interval not a Binance interval" "$(kline_sql 7m ws)"
refused "trades.source other than ws/rest" "INSERT INTO trades (symbol, agg_trade_id, price, quantity,
  first_trade_id, last_trade_id, trade_time, is_buyer_maker, source)
  VALUES ('X', 1, 1, 1, 1, 1, now(), true, 'x')"
refused "sync_status.status other than ok/repairing/error" "INSERT INTO sync_status (symbol, data_type, status)
  VALUES ('BTCUSDT', 'ticker', 'fine')"
refused "sync_status.data_type unknown" "INSERT INTO sync_status (symbol, data_type) VALUES ('BTCUSDT', 'book')"
refused "sync_status kline without an interval" "INSERT INTO sync_status (symbol, data_type) VALUES ('BTCUSDT', 'kline')"
refused "sync_status ticker with an interval" "INSERT INTO sync_status (symbol, data_type, interval) VALUES ('BTCUSDT', 'ticker', '1m')"
refused "data_gaps.state unknown" "INSERT INTO data_gaps (symbol, data_type, gap_start, state)
  VALUES ('BTCUSDT', 'trade', now(), 'lost')"
refused "data_gaps without a time or id range" "INSERT INTO data_gaps (symbol, data_type) VALUES ('BTCUSDT', 'trade')"
refused "data_gaps with an inverted id range" "INSERT INTO data_gaps (symbol, data_type, first_missing_id, last_missing_id)
  VALUES ('BTCUSDT', 'trade', 10, 9)"
refused "depth_snapshots.bids not an array" "INSERT INTO depth_snapshots VALUES ('X', now(), 1, '{}', '[]')"
refused "lower-case symbol" "INSERT INTO symbols (symbol) VALUES ('btcusdt')"
h_psql "INSERT INTO sync_status (symbol, data_type) VALUES ('BTCUSDT', 'trade')"
is "$(h_psql "SELECT interval = '' AND status = 'ok' FROM sync_status WHERE symbol = 'BTCUSDT' AND data_type = 'trade'")" t \
  "sync_status: interval defaults to '' and status to ok"

# updated_at follows updates.
h_psql "UPDATE symbols SET created_at = now() - interval '1 day', updated_at = now() - interval '1 day'
        WHERE symbol = 'SOLUSDT'"
h_psql "UPDATE symbols SET is_active = false WHERE symbol = 'SOLUSDT'"
is "$(h_psql "SELECT updated_at > now() - interval '1 minute' FROM symbols WHERE symbol = 'SOLUSDT'")" t \
  "symbols.updated_at is maintained by a trigger"
h_psql "UPDATE sync_status SET updated_at = now() - interval '1 day' WHERE symbol = 'BTCUSDT';
        UPDATE sync_status SET status = 'repairing' WHERE symbol = 'BTCUSDT'"
is "$(h_psql "SELECT bool_and(updated_at > now() - interval '1 minute') FROM sync_status WHERE symbol = 'BTCUSDT'")" t \
  "sync_status.updated_at is maintained by a trigger"

# ---------------------------------------------------------------------------
# NOTIFY binance_live_symbols, payload the symbol.
notes=$(psql -Xq -c "LISTEN binance_live_symbols" \
  -c "INSERT INTO symbols (symbol, base_asset, quote_asset) VALUES ('ADAUSDT', 'ADA', 'USDT')" \
  -c "UPDATE symbols SET is_active = false WHERE symbol = 'ADAUSDT'" \
  -c "SELECT 'after-update'" \
  -c "UPDATE symbols SET is_active = false WHERE symbol = 'ADAUSDT'" \
  -c "SELECT 'after-noop'" \
  -c "DELETE FROM symbols WHERE symbol = 'ADAUSDT'" 2>&1)
n=$(printf '%s\n' "$notes" | grep -c 'notification "binance_live_symbols" with payload "ADAUSDT"')
is "$n" 3 "INSERT, UPDATE and DELETE each notify binance_live_symbols with the symbol"
noop=$(printf '%s\n' "$notes" | sed -n '/after-update/,/after-noop/p' | grep -c 'notification' || true)
is "$noop" 0 "an UPDATE that changes nothing does not notify"

# Another session (as the collector will listen) gets the notification.
fifo=$H_TMP/listen.fifo
mkfifo "$fifo"
psql -Xq <"$fifo" >"$H_TMP/listen.out" 2>&1 &
lpid=$!
exec 7>"$fifo"
echo "LISTEN binance_live_symbols; SELECT 'listening';" >&7
h_wait_for 10 grep -q listening "$H_TMP/listen.out"
h_psql "UPDATE symbols SET status = 'BREAK' WHERE symbol = 'BTCUSDT'"
h_wait_for 10 bash -c "echo 'SELECT 1;' >&7; grep -q 'payload \"BTCUSDT\"' '$H_TMP/listen.out'"
ok $? "a listening session receives the change of another session"
exec 7>&-
wait "$lpid"

done_testing
