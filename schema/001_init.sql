-- schema/001_init.sql: the tables of PRODUCT.md section 5, on TimescaleDB
-- when the extension can be had, on plain PostgreSQL (>= 14) otherwise.
--
-- How it is applied: the collector's migrator (src/sink/migrate.c, and
-- t/integration/schema.sh until --migrate exists) runs every schema/NNN_*.sql
-- in name order, each file inside ONE transaction (psql -1 -f), and records
-- it in schema_migrations(version, applied_at, checksum). This file does NOT
-- create schema_migrations: the migrator creates that table itself, before
-- the first file, so that it can record 001 too.
--
-- Rules this file keeps, so that it can also be run again by hand:
--   * idempotent: IF NOT EXISTS / CREATE OR REPLACE / guarded DO blocks; a
--     second run changes nothing (t/integration/schema.sh compares
--     pg_dump --schema-only before and after a second run);
--   * transaction-safe: no CREATE INDEX CONCURRENTLY, no VACUUM, nothing that
--     refuses to run inside a transaction block;
--   * prices and quantities are numeric WITHOUT precision (exact decimal
--     strings of any size; the Go original's DECIMAL(20,8) overflowed), times
--     are timestamptz, ids bigint.
--
-- Two modes, chosen once per database and never flipped by a re-run:
--   TimescaleDB: if the extension is already installed, or if it is available
--     (pg_available_extensions) and this database has not been set up in
--     plain mode before, CREATE EXTENSION timescaledb; klines, tickers,
--     trades and depth_snapshots become hypertables, compressed after 7 days,
--     segmented by symbol (symbol, interval for klines). If CREATE EXTENSION
--     fails (not in shared_preload_libraries, no privilege) the failure is
--     reported as a WARNING and the plain mode is used.
--   plain: the same tables as ordinary tables, plus a SQL function
--     time_bucket(interval, timestamptz [, origin]) built on date_bin, so the
--     seed README's example queries run unchanged. Turning a plain database
--     into a TimescaleDB one later is a manual step (drop our time_bucket,
--     CREATE EXTENSION, create_hypertable(..., migrate_data => true)).
--
-- What was verified, and how:
--   * The plain branch runs in CI (PostgreSQL 15) in t/integration/schema.sh:
--     applied twice, catalog dump compared, columns and types compared with
--     section 5, the seed README queries run, numeric exactness, NOTIFY, keys.
--   * The TimescaleDB branch cannot run here (CI has no TimescaleDB). It was
--     reviewed line by line against TimescaleDB's documentation
--     (timescale/docs: api/hypertable/create_hypertable_old.md,
--     api/compression/alter_table_compression.md,
--     api/compression/add_compression_policy.md, api/time_bucket.md) and the
--     segmentby parser (src/compression_with_clause.c):
--       - create_hypertable(relation, time_column_name, chunk_time_interval
--         => INTERVAL, if_not_exists => TRUE): the pre-2.13 signature, still
--         supported by 2.13+; the column is cast to ::name so that 2.13+'s
--         new overload (relation, dimension_info, ...) cannot be chosen.
--         if_not_exists makes a second run a NOTICE instead of an error.
--         UNIQUE and PRIMARY KEY constraints of a hypertable must include the
--         partitioning column: every key below does (that is why trades' key
--         is (symbol, agg_trade_id, trade_time)). The time column must be
--         NOT NULL: it is declared so.
--       - ALTER TABLE t SET (timescaledb.compress, timescaledb.
--         compress_segmentby = '...', timescaledb.compress_orderby = '...'):
--         the segmentby list is parsed as "SELECT FROM t GROUP BY <list>";
--         "symbol, interval" was checked to parse with PostgreSQL 15's grammar
--         ("interval" is accepted as a column reference there). The ALTER runs
--         only while compression is not enabled yet (read from
--         timescaledb_information.hypertables.compression_enabled), because
--         changing compression settings fails once chunks are compressed.
--         compress_orderby lists the key columns that are not in segmentby
--         (TimescaleDB warns about a unique key column that is neither, and
--         refuses a column that is both); lookups on the key stay efficient
--         on compressed chunks.
--       - add_compression_policy(t, compress_after => INTERVAL '7 days',
--         if_not_exists => TRUE): "fail with a warning instead of an error if
--         a compression policy already exists". It requires compression to
--         be enabled first, which the ALTER above guarantees.
--       - time_bucket is provided by TimescaleDB itself in that mode; this
--         file never defines it there (CREATE OR REPLACE would clash with
--         the extension's own function).
--     Not verified against a live TimescaleDB server: the whole TimescaleDB
--     branch. Test it with `docker compose up` before relying on it.

SET LOCAL client_min_messages = warning;

-- 1. Mode: create the extension when it is available and the database is
--    not already set up in plain mode (our own time_bucket marks plain mode).
DO $mode$
DECLARE
  plain_before boolean;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RETURN;
  END IF;
  SELECT EXISTS (
    SELECT 1 FROM pg_proc p
    WHERE p.proname = 'time_bucket'
      AND obj_description(p.oid, 'pg_proc') LIKE 'binance-live:%')
    INTO plain_before;
  IF plain_before
     OR NOT EXISTS (SELECT 1 FROM pg_available_extensions
                    WHERE name = 'timescaledb') THEN
    RETURN;
  END IF;
  BEGIN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'binance-live: timescaledb is available but CREATE '
      'EXTENSION failed (%); using plain PostgreSQL tables', SQLERRM;
  END;
END
$mode$;

-- 2. Tables (identical in both modes).

-- The symbols to collect. The active set is SELECT symbol FROM symbols
-- WHERE is_active; status is refreshed from exchangeInfo. base_asset and
-- quote_asset are '' until exchangeInfo has been read (the collector's
-- bootstrap may insert a bare symbol).
CREATE TABLE IF NOT EXISTS symbols (
  symbol      text        NOT NULL,
  base_asset  text        NOT NULL DEFAULT '',
  quote_asset text        NOT NULL DEFAULT '',
  status      text        NOT NULL DEFAULT 'TRADING',
  is_active   boolean     NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT symbols_pkey PRIMARY KEY (symbol),
  -- Binance symbols are upper case (possibly non-ASCII); a lower-case
  -- 'btcusdt' would never match a stream and is refused here.
  CONSTRAINT symbols_symbol_check CHECK (symbol <> '' AND symbol = upper(symbol))
);

-- Candlesticks. The open bar is upserted (is_closed false), the closed bar
-- finalised (is_closed true). Repaired rows (source 'rest') have NULL
-- first_trade_id and last_trade_id: the REST answer does not carry them.
CREATE TABLE IF NOT EXISTS klines (
  symbol                 text        NOT NULL,
  interval               text        NOT NULL,
  open_time              timestamptz NOT NULL,
  close_time             timestamptz NOT NULL,
  open_price             numeric     NOT NULL,
  high_price             numeric     NOT NULL,
  low_price              numeric     NOT NULL,
  close_price            numeric     NOT NULL,
  volume                 numeric     NOT NULL,
  quote_volume           numeric     NOT NULL,
  trades_count           bigint      NOT NULL,
  taker_buy_volume       numeric     NOT NULL,
  taker_buy_quote_volume numeric     NOT NULL,
  first_trade_id         bigint,
  last_trade_id          bigint,
  is_closed              boolean     NOT NULL DEFAULT false,
  source                 text        NOT NULL DEFAULT 'ws',
  CONSTRAINT klines_pkey PRIMARY KEY (symbol, interval, open_time),
  CONSTRAINT klines_source_check CHECK (source IN ('ws', 'rest')),
  CONSTRAINT klines_interval_check CHECK (interval IN (
    '1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h',
    '12h', '1d', '3d', '1w', '1M')),
  CONSTRAINT klines_time_check CHECK (close_time >= open_time)
);

-- 24 h ticker statistics: one row per symbol per event ("timestamp" is the
-- event time E). Only symbol, timestamp and price are required; the
-- statistics are nullable so that a partial event is still stored.
CREATE TABLE IF NOT EXISTS tickers (
  symbol                   text        NOT NULL,
  "timestamp"              timestamptz NOT NULL,
  price                    numeric     NOT NULL,
  price_change_24h         numeric,
  price_change_percent_24h numeric,
  weighted_avg_price       numeric,
  open_price_24h           numeric,
  high_24h                 numeric,
  low_24h                  numeric,
  volume_24h               numeric,
  quote_volume_24h         numeric,
  bid_price                numeric,
  bid_qty                  numeric,
  ask_price                numeric,
  ask_qty                  numeric,
  trades_count_24h         bigint,
  first_trade_id           bigint,
  last_trade_id            bigint,
  CONSTRAINT tickers_pkey PRIMARY KEY (symbol, "timestamp")
);

-- Aggregated trades. The key carries trade_time because a hypertable's
-- unique keys must include its partitioning column; agg_trade_id alone is
-- unique per symbol on the exchange. "Newest stored agg_trade_id" (where a
-- repair resumes) is served by the key's index.
CREATE TABLE IF NOT EXISTS trades (
  symbol         text        NOT NULL,
  agg_trade_id   bigint      NOT NULL,
  price          numeric     NOT NULL,
  quantity       numeric     NOT NULL,
  first_trade_id bigint      NOT NULL,
  last_trade_id  bigint      NOT NULL,
  trade_time     timestamptz NOT NULL,
  is_buyer_maker boolean     NOT NULL,
  source         text        NOT NULL DEFAULT 'ws',
  CONSTRAINT trades_pkey PRIMARY KEY (symbol, agg_trade_id, trade_time),
  CONSTRAINT trades_source_check CHECK (source IN ('ws', 'rest'))
);

-- Order-book snapshots from the verified local book, depth_levels per side:
-- bids and asks are JSON arrays of [price, qty] strings, best first.
CREATE TABLE IF NOT EXISTS depth_snapshots (
  symbol         text        NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  last_update_id bigint      NOT NULL,
  bids           jsonb       NOT NULL,
  asks           jsonb       NOT NULL,
  CONSTRAINT depth_snapshots_pkey PRIMARY KEY (symbol, "timestamp"),
  CONSTRAINT depth_snapshots_bids_check CHECK (jsonb_typeof(bids) = 'array'),
  CONSTRAINT depth_snapshots_asks_check CHECK (jsonb_typeof(asks) = 'array')
);

-- Per stream: how far the stored history is known to be complete.
-- interval is '' unless data_type is 'kline'. No foreign key to symbols:
-- deleting a symbol must not be blocked by its history.
CREATE TABLE IF NOT EXISTS sync_status (
  symbol         text        NOT NULL,
  data_type      text        NOT NULL,
  interval       text        NOT NULL DEFAULT '',
  last_sync_time timestamptz,
  last_data_time timestamptz,
  status         text        NOT NULL DEFAULT 'ok',
  error_message  text,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sync_status_pkey PRIMARY KEY (symbol, data_type, interval),
  CONSTRAINT sync_status_data_type_check
    CHECK (data_type IN ('kline', 'ticker', 'depth', 'trade')),
  CONSTRAINT sync_status_interval_check
    CHECK ((data_type = 'kline') = (interval <> '')),
  CONSTRAINT sync_status_status_check
    CHECK (status IN ('ok', 'repairing', 'error'))
);

-- Every gap found, with its outcome. Kline gaps are time ranges
-- (gap_start..gap_end); trade gaps are id ranges (first_missing_id..
-- last_missing_id), usually with the times around them too.
CREATE TABLE IF NOT EXISTS data_gaps (
  id               bigint      GENERATED BY DEFAULT AS IDENTITY,
  symbol           text        NOT NULL,
  data_type        text        NOT NULL,
  interval         text        NOT NULL DEFAULT '',
  gap_start        timestamptz,
  gap_end          timestamptz,
  first_missing_id bigint,
  last_missing_id  bigint,
  detected_at      timestamptz NOT NULL DEFAULT now(),
  state            text        NOT NULL DEFAULT 'pending',
  filled_at        timestamptz,
  rows_filled      bigint      NOT NULL DEFAULT 0,
  detail           text,
  CONSTRAINT data_gaps_pkey PRIMARY KEY (id),
  CONSTRAINT data_gaps_data_type_check
    CHECK (data_type IN ('kline', 'ticker', 'depth', 'trade')),
  CONSTRAINT data_gaps_interval_check
    CHECK ((data_type = 'kline') = (interval <> '')),
  CONSTRAINT data_gaps_state_check
    CHECK (state IN ('pending', 'filled', 'exchange_empty', 'failed')),
  CONSTRAINT data_gaps_range_check CHECK (
    (gap_start IS NOT NULL OR first_missing_id IS NOT NULL)
    AND (gap_end IS NULL OR gap_start IS NULL OR gap_end >= gap_start)
    AND (last_missing_id IS NULL OR first_missing_id IS NULL
         OR last_missing_id >= first_missing_id)),
  CONSTRAINT data_gaps_rows_filled_check CHECK (rows_filled >= 0)
);

-- The collector's queries: open gaps (state = 'pending', oldest first), and
-- the gaps of one stream in time order.
CREATE INDEX IF NOT EXISTS data_gaps_state_idx
  ON data_gaps (state, detected_at);
CREATE INDEX IF NOT EXISTS data_gaps_stream_idx
  ON data_gaps (symbol, data_type, interval, gap_start);
-- sync_status is read by its key; symbols by is_active (a few rows: the key
-- scan is enough). klines, tickers, trades and depth_snapshots are read by
-- symbol and time, which their keys cover.

-- 3. Triggers.

-- updated_at follows every update of a row (symbols, sync_status).
CREATE OR REPLACE FUNCTION binance_live_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE TRIGGER symbols_touch_updated_at
  BEFORE UPDATE ON symbols
  FOR EACH ROW EXECUTE FUNCTION binance_live_touch_updated_at();

CREATE OR REPLACE TRIGGER sync_status_touch_updated_at
  BEFORE UPDATE ON sync_status
  FOR EACH ROW EXECUTE FUNCTION binance_live_touch_updated_at();

-- Changes to symbols are announced on channel binance_live_symbols with the
-- symbol as payload (both names when a symbol is renamed; '' after a
-- TRUNCATE, meaning "re-read everything"). The collector LISTENs and
-- re-reads the active set. An UPDATE that changes none of the columns below
-- (e.g. only updated_at) is not announced, so the collector's own no-op
-- writes cannot start a feedback loop. Notifications are delivered at
-- commit, one per distinct payload per transaction.
CREATE OR REPLACE FUNCTION binance_live_symbols_notify() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('binance_live_symbols', '');
    RETURN NULL;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM pg_notify('binance_live_symbols', NEW.symbol);
  END IF;
  IF TG_OP = 'DELETE'
     OR (TG_OP = 'UPDATE' AND OLD.symbol IS DISTINCT FROM NEW.symbol) THEN
    PERFORM pg_notify('binance_live_symbols', OLD.symbol);
  END IF;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER symbols_notify_insert_delete
  AFTER INSERT OR DELETE ON symbols
  FOR EACH ROW EXECUTE FUNCTION binance_live_symbols_notify();

CREATE OR REPLACE TRIGGER symbols_notify_update
  AFTER UPDATE ON symbols
  FOR EACH ROW
  WHEN (OLD.symbol IS DISTINCT FROM NEW.symbol
        OR OLD.is_active IS DISTINCT FROM NEW.is_active
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.base_asset IS DISTINCT FROM NEW.base_asset
        OR OLD.quote_asset IS DISTINCT FROM NEW.quote_asset)
  EXECUTE FUNCTION binance_live_symbols_notify();

CREATE OR REPLACE TRIGGER symbols_notify_truncate
  AFTER TRUNCATE ON symbols
  FOR EACH STATEMENT EXECUTE FUNCTION binance_live_symbols_notify();

-- 4. Mode-specific objects.
DO $modespecific$
DECLARE
  t record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    -- TimescaleDB: hypertables, compression after 7 days. Chunks: klines
    -- grow slowly (one row per symbol, interval and bar), the other tables
    -- by up to millions of rows per day, so they get one-day chunks.
    FOR t IN
      SELECT * FROM (VALUES
        ('klines',          'open_time',   INTERVAL '7 days',
         'symbol, interval', 'open_time DESC'),
        ('tickers',         'timestamp',   INTERVAL '1 day',
         'symbol',           '"timestamp" DESC'),
        ('trades',          'trade_time',  INTERVAL '1 day',
         'symbol',           'trade_time DESC, agg_trade_id DESC'),
        ('depth_snapshots', 'timestamp',   INTERVAL '1 day',
         'symbol',           '"timestamp" DESC')
      ) AS v(tbl, time_col, chunk, segmentby, orderby)
    LOOP
      PERFORM create_hypertable(t.tbl::regclass, t.time_col::name,
                                chunk_time_interval => t.chunk,
                                if_not_exists => TRUE);
      IF NOT EXISTS (
        SELECT 1 FROM timescaledb_information.hypertables h
        WHERE h.hypertable_schema = current_schema()
          AND h.hypertable_name = t.tbl
          AND h.compression_enabled) THEN
        EXECUTE format(
          'ALTER TABLE %I SET (timescaledb.compress, '
          'timescaledb.compress_segmentby = %L, '
          'timescaledb.compress_orderby = %L)',
          t.tbl, t.segmentby, t.orderby);
      END IF;
      PERFORM add_compression_policy(t.tbl::regclass,
                                     compress_after => INTERVAL '7 days',
                                     if_not_exists => TRUE);
    END LOOP;
  ELSE
    -- Plain PostgreSQL: time_bucket() as TimescaleDB defines it for
    -- timestamptz, so that the seed README's queries run unchanged.
    --
    -- Origin: TimescaleDB's documented default (timescale/docs,
    -- api/time_bucket.md) is midnight 2000-01-03 (a Monday, so weeks start
    -- on Monday as in ISO 8601) for buckets without a month or year part,
    -- and midnight 2000-01-01 for month and year buckets; timestamptz values
    -- are bucketed at UTC. The same origins are used here, in UTC, so both
    -- modes give the same buckets (days at UTC midnight, weeks on Monday).
    -- date_bin handles widths without months (it treats a day as 24 h, as
    -- TimescaleDB does at UTC); widths of whole months/years are computed
    -- by counting months from 2000-01-01; a width mixing months with days
    -- or time is refused, as TimescaleDB refuses it.
    EXECUTE $def$
      CREATE OR REPLACE FUNCTION time_bucket(bucket_width interval,
                                             ts timestamptz,
                                             origin timestamptz)
      RETURNS timestamptz
      LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      DECLARE
        months   integer;
        rest     interval;
        n        integer;
        o        timestamp;
        u        timestamp;
      BEGIN
        months := extract(year FROM bucket_width)::integer * 12
                  + extract(month FROM bucket_width)::integer;
        IF months = 0 THEN
          RETURN date_bin(bucket_width, ts, origin);
        END IF;
        rest := bucket_width - make_interval(months => months);
        IF months < 0 OR extract(day FROM rest) <> 0
           OR extract(epoch FROM rest) <> 0 THEN
          RAISE EXCEPTION 'month intervals cannot have day or time component'
            USING ERRCODE = 'invalid_parameter_value';
        END IF;
        o := origin AT TIME ZONE 'UTC';
        u := ts AT TIME ZONE 'UTC';
        n := (extract(year FROM u)::integer * 12
              + extract(month FROM u)::integer)
             - (extract(year FROM o)::integer * 12
                + extract(month FROM o)::integer);
        o := o + make_interval(months => (floor(n::numeric / months)
                                          * months)::integer);
        IF o > u THEN
          o := o - make_interval(months => months);
        END IF;
        RETURN o AT TIME ZONE 'UTC';
      END
      $fn$
    $def$;
    EXECUTE $def$
      CREATE OR REPLACE FUNCTION time_bucket(bucket_width interval,
                                             ts timestamptz)
      RETURNS timestamptz
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN extract(year FROM bucket_width) = 0
                         AND extract(month FROM bucket_width) = 0
               THEN date_bin(bucket_width, ts,
                             timestamptz '2000-01-03 00:00:00+00')
               ELSE time_bucket(bucket_width, ts,
                                timestamptz '2000-01-01 00:00:00+00') END
      $fn$
    $def$;
    COMMENT ON FUNCTION time_bucket(interval, timestamptz) IS
      'binance-live: TimescaleDB-compatible time_bucket on plain PostgreSQL';
    COMMENT ON FUNCTION time_bucket(interval, timestamptz, timestamptz) IS
      'binance-live: TimescaleDB-compatible time_bucket on plain PostgreSQL';
  END IF;
END
$modespecific$;
