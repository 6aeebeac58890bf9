/*
 * store.c: per-table row batches written with one array statement each
 * (see store.h).
 *
 * State per table: packed waiting rows and their offsets, batches that pg
 * refused for lack of room, counters. A row is packed as a sequence of
 * fields (tag byte, then 8 bytes for an integer, 1 for a boolean, or a
 * 4-byte length and the bytes for text), which keeps a queued kline near
 * 200 bytes instead of the 700 of its event struct. A batch owns a copy of
 * its rows, so it can be split and re-sent after a data error, and the
 * column array literals its op points to.
 *
 * With a spool (see store.h), a row is packed into a scratch buffer first
 * and then either queued or appended to the spool; the batches submitted to
 * pg are kept on a list so that entering the spooling state can copy them
 * to disk.
 */
#include "sink/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/strmap.h"
#include "sink/pgarray.h"

#define STORE_MAX_COLS 18
#define STORE_ROWS_MAX ((size_t)256 << 20)
#define STORE_ARRAY_MAX ((size_t)256 << 20)

enum field_tag { F_NULL = 0, F_TEXT = 1, F_I64 = 2, F_BOOL = 3 };

/* A decoded field; text points into the packed row. */
struct field {
  int tag;
  const char *text;
  size_t len;
  int64_t i64;
  int b;
};

#define TS(col) "timestamptz 'epoch' + " col " * interval '1 millisecond'"

static const struct table_def {
  const char *name;
  const char *stmt;
  int ncols;
  const char *sql;
} tables[STORE_NTABLES] = {
    [STORE_KLINES] =
        {"klines", "bl_store_klines", 17,
         "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], "
         "$3::int8[], $4::int8[], $5::numeric[], $6::numeric[], "
         "$7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], "
         "$11::int8[], $12::numeric[], $13::numeric[], $14::int8[], "
         "$15::int8[], $16::bool[], $17::text[]) AS t(symbol, iv, ot, ct, "
         "o, h, l, c, v, qv, n, tbv, tbqv, f, lt, x, src)), "
         "ins AS (INSERT INTO klines AS k (symbol, interval, open_time, "
         "close_time, open_price, high_price, low_price, close_price, "
         "volume, quote_volume, trades_count, taker_buy_volume, "
         "taker_buy_quote_volume, first_trade_id, last_trade_id, is_closed, "
         "source) SELECT symbol, iv, " TS("ot") ", " TS(
             "ct") ", o, h, l, c, "
                   "v, qv, n, tbv, tbqv, f, lt, x, src FROM r "
                   "ON CONFLICT (symbol, interval, open_time) DO UPDATE SET "
                   "close_time = EXCLUDED.close_time, open_price = "
                   "EXCLUDED.open_price, "
                   "high_price = EXCLUDED.high_price, low_price = "
                   "EXCLUDED.low_price, "
                   "close_price = EXCLUDED.close_price, volume = "
                   "EXCLUDED.volume, "
                   "quote_volume = EXCLUDED.quote_volume, "
                   "trades_count = EXCLUDED.trades_count, "
                   "taker_buy_volume = EXCLUDED.taker_buy_volume, "
                   "taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume, "
                   "first_trade_id = COALESCE(EXCLUDED.first_trade_id, "
                   "k.first_trade_id), "
                   "last_trade_id = COALESCE(EXCLUDED.last_trade_id, "
                   "k.last_trade_id), "
                   "is_closed = EXCLUDED.is_closed, source = EXCLUDED.source "
                   "WHERE NOT k.is_closed "
                   "RETURNING symbol, interval, open_time, is_closed) "
                   "INSERT INTO sync_status AS s (symbol, data_type, interval, "
                   "last_data_time, status, updated_at) "
                   "SELECT symbol, 'kline', interval, max(open_time), 'ok', "
                   "now() "
                   "FROM ins WHERE is_closed GROUP BY symbol, interval "
                   "ON CONFLICT (symbol, data_type, interval) DO UPDATE SET "
                   "last_data_time = GREATEST(s.last_data_time, "
                   "EXCLUDED.last_data_time), updated_at = now()"},
    [STORE_TICKERS] =
        {"tickers", "bl_store_tickers", 18,
         "WITH r AS (SELECT * FROM unnest($1::text[], $2::int8[], "
         "$3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], "
         "$7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], "
         "$11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], "
         "$15::numeric[], $16::int8[], $17::int8[], $18::int8[]) "
         "AS t(symbol, ts, c, p, pp, w, o, h, l, v, q, b, bq, a, aq, n, "
         "f, lt)), "
         "ins AS (INSERT INTO tickers (symbol, timestamp, price, "
         "price_change_24h, price_change_percent_24h, weighted_avg_price, "
         "open_price_24h, high_24h, low_24h, volume_24h, quote_volume_24h, "
         "bid_price, bid_qty, ask_price, ask_qty, trades_count_24h, "
         "first_trade_id, last_trade_id) SELECT symbol, " TS(
             "ts") ", c, p, "
                   "pp, w, o, h, l, v, q, b, bq, a, aq, n, f, lt FROM r "
                   "ON CONFLICT (symbol, timestamp) DO NOTHING "
                   "RETURNING symbol, timestamp) "
                   "INSERT INTO sync_status AS s (symbol, data_type, interval, "
                   "last_data_time, status, updated_at) "
                   "SELECT symbol, 'ticker', '', max(timestamp), 'ok', now() "
                   "FROM ins GROUP BY symbol "
                   "ON CONFLICT (symbol, data_type, interval) DO UPDATE SET "
                   "last_data_time = GREATEST(s.last_data_time, "
                   "EXCLUDED.last_data_time), updated_at = now()"},
    [STORE_TRADES] =
        {"trades", "bl_store_trades", 9,
         "WITH r AS (SELECT * FROM unnest($1::text[], $2::int8[], "
         "$3::numeric[], $4::numeric[], $5::int8[], $6::int8[], $7::int8[], "
         "$8::bool[], $9::text[]) AS t(symbol, a, p, q, f, lt, tt, m, "
         "src)), "
         "ins AS (INSERT INTO trades (symbol, agg_trade_id, price, "
         "quantity, first_trade_id, last_trade_id, trade_time, "
         "is_buyer_maker, source) SELECT symbol, a, p, q, f, lt, " TS(
             "tt") ", m, src FROM r "
                   "ON CONFLICT (symbol, agg_trade_id, trade_time) DO NOTHING "
                   "RETURNING symbol, trade_time) "
                   "INSERT INTO sync_status AS s (symbol, data_type, interval, "
                   "last_data_time, status, updated_at) "
                   "SELECT symbol, 'trade', '', max(trade_time), 'ok', now() "
                   "FROM ins GROUP BY symbol "
                   "ON CONFLICT (symbol, data_type, interval) DO UPDATE SET "
                   "last_data_time = GREATEST(s.last_data_time, "
                   "EXCLUDED.last_data_time), updated_at = now()"},
    [STORE_DEPTH] =
        {"depth_snapshots", "bl_store_depth", 5,
         "WITH r AS (SELECT * FROM unnest($1::text[], $2::int8[], "
         "$3::int8[], $4::text[], $5::text[]) AS t(symbol, ts, lu, b, a)), "
         "ins AS (INSERT INTO depth_snapshots (symbol, timestamp, "
         "last_update_id, bids, asks) SELECT symbol, " TS(
             "ts") ", lu, "
                   "b::jsonb, a::jsonb FROM r "
                   "ON CONFLICT (symbol, timestamp) DO NOTHING "
                   "RETURNING symbol, timestamp) "
                   "INSERT INTO sync_status AS s (symbol, data_type, interval, "
                   "last_data_time, status, updated_at) "
                   "SELECT symbol, 'depth', '', max(timestamp), 'ok', now() "
                   "FROM ins GROUP BY symbol "
                   "ON CONFLICT (symbol, data_type, interval) DO UPDATE SET "
                   "last_data_time = GREATEST(s.last_data_time, "
                   "EXCLUDED.last_data_time), updated_at = now()"},
};

/* The insert-only tables also load through COPY on the store's second
 * connection (sink/pgcopy) while it is up: the COPY with the columns in
 * packed-row order, which packed fields are epoch-ms times (bit per
 * column), and the sync_status row kept from them (the time column and the
 * data_type). A COPY the server refuses (a row it already has, a bad
 * value) or does not confirm sends its batch through the statement above,
 * which skips known rows and isolates bad ones. */
static const struct copy_def {
  const char *sql;
  /* Per packed column, how COPY's binary format writes it: t text,
   * N numeric (from the decimal text), I int8, M timestamptz (from epoch
   * ms), B bool, J jsonb (from JSON text). */
  const char *types;
  int time_col;
  const char *data_type;
} copies[STORE_NTABLES] = {
    [STORE_TICKERS] = {"COPY tickers (symbol, timestamp, price, "
                       "price_change_24h, price_change_percent_24h, "
                       "weighted_avg_price, open_price_24h, high_24h, "
                       "low_24h, volume_24h, quote_volume_24h, bid_price, "
                       "bid_qty, ask_price, ask_qty, trades_count_24h, "
                       "first_trade_id, last_trade_id) FROM STDIN "
                       "(FORMAT binary)",
                       "tMNNNNNNNNNNNNNIII", 1, "ticker"},
    [STORE_TRADES] = {"COPY trades (symbol, agg_trade_id, price, quantity, "
                      "first_trade_id, last_trade_id, trade_time, "
                      "is_buyer_maker, source) FROM STDIN (FORMAT binary)",
                      "tINNIIMBt", 6, "trade"},
    [STORE_DEPTH] = {"COPY depth_snapshots (symbol, timestamp, "
                     "last_update_id, bids, asks) FROM STDIN (FORMAT binary)",
                     "tMIJJ", 1, "depth"},
};

/* sync_status after a COPY: the newest time per symbol of the rows it
 * committed, merged with GREATEST like the statements do. */
#define SYNC_STMT "bl_store_sync"
static const char sync_sql[] =
    "INSERT INTO sync_status AS s (symbol, data_type, interval, "
    "last_data_time, status, updated_at) SELECT sym, $3, '', " TS(
        "t") ", 'ok', now() FROM unnest($1::text[], $2::int8[]) AS u(sym, t) "
             "ON CONFLICT (symbol, data_type, interval) DO UPDATE SET "
             "last_data_time = GREATEST(s.last_data_time, "
             "EXCLUDED.last_data_time), updated_at = now()";

/* While a table's COPYs are in flight, its rows wait and the next COPY on
 * each connection takes up to this many times batch_size: fewer round trips
 * and less set-up per row under load; see batch_due for when a connection
 * keeps up. */
#define STORE_COPY_FACTOR 10

/* Symbols one pending sync_status update may hold per table. */
#define SYNC_MAX_SYMBOLS 4096
/* How long a closing store lets the COPY jobs in flight finish. */
#define STORE_COPY_CLOSE_MS 3000

struct store_batch {
  struct store *st;
  enum store_table table;
  struct pg_op op;
  struct pgcopy_job job;
  struct buf copy;    /* the rows in COPY binary format */
  struct buf newest;  /* struct copy_newest per symbol, built with copy */
  int arrays_built;   /* values[] hold the statement's arrays */
  int copy_built;     /* copy holds the COPY data */
  int no_copy;        /* the COPY failed once: statement only */
  int shard;          /* the COPY connection of its rows' symbols; -1: any */
  struct buf rows;    /* packed rows, a copy */
  struct buf offsets; /* uint32_t per row */
  int n_rows;
  struct buf cols[STORE_MAX_COLS];
  const char *values[STORE_MAX_COLS];
  struct store_batch *next;                /* in a table's ready list */
  struct store_batch *fly_prev, *fly_next; /* while submitted to pg */
  uint64_t seq0; /* number of its first row in its table */
};

/* Rows replayed from spool segment |seg| reach row number end[t] - 1 of
 * table t (0: none). */
struct store_mark {
  uint32_t seg;
  uint64_t end[STORE_NTABLES];
};

const char *store_table_name(enum store_table t) {
  return t < STORE_NTABLES ? tables[t].name : "?";
}

/* --- packing ----------------------------------------------------------- */

struct packer {
  struct buf *b;
  int rv;
};

/* Each field is the tag, then for text a 4-byte length and the bytes, for
 * an integer its 8 bytes: one reservation, then plain copies. */
static void put_text(struct packer *p, const char *s) {
  uint32_t len = (uint32_t)strlen(s);
  char *at;
  if (p->rv || (p->rv = buf_reserve(p->b, 1 + sizeof len + len)))
    return;
  at = p->b->data + p->b->len;
  *at = F_TEXT;
  memcpy(at + 1, &len, sizeof len);
  memcpy(at + 1 + sizeof len, s, len);
  p->b->len += 1 + sizeof len + len;
  p->b->data[p->b->len] = '\0';
}

static void put_i64(struct packer *p, int64_t v) {
  char *at;
  if (p->rv || (p->rv = buf_reserve(p->b, 1 + sizeof v)))
    return;
  at = p->b->data + p->b->len;
  *at = F_I64;
  memcpy(at + 1, &v, sizeof v);
  p->b->len += 1 + sizeof v;
  p->b->data[p->b->len] = '\0';
}

static void put_bool(struct packer *p, int v) {
  char rec[2] = {F_BOOL, (char)(v ? 1 : 0)};
  if (!p->rv)
    p->rv = buf_append(p->b, rec, 2);
}

static void put_null(struct packer *p) {
  char tag = F_NULL;
  if (!p->rv)
    p->rv = buf_append(p->b, &tag, 1);
}

static const char *get_field(const char *at, struct field *f) {
  f->tag = (unsigned char)*at++;
  switch (f->tag) {
  case F_TEXT: {
    uint32_t len;
    memcpy(&len, at, sizeof len);
    f->len = len;
    f->text = at + sizeof len;
    return f->text + len;
  }
  case F_I64:
    memcpy(&f->i64, at, sizeof f->i64);
    return at + sizeof f->i64;
  case F_BOOL:
    f->b = *at;
    return at + 1;
  default:
    return at;
  }
}

static uint32_t row_offset(const struct buf *offsets, int i) {
  uint32_t off;
  memcpy(&off, offsets->data + (size_t)i * sizeof off, sizeof off);
  return off;
}

/* Starts packing a row into the scratch buffer. */
static int begin_row(struct store *st, struct packer *p) {
  if (st->closing)
    return BL_ESTATE;
  buf_reset(&st->scratch);
  p->b = &st->scratch;
  p->rv = 0;
  return 0;
}

static void flush_table(struct store *st, struct store_table_q *q);

/* 1 while batches of |t| can go by COPY (a connection is configured and
 * up, the table is insert-only, the store is not closing). */
static int copy_takes(const struct store *st, enum store_table t) {
  if (!st->copy_on || !copies[t].sql || st->closing)
    return 0;
  for (int i = 0; i < STORE_COPY_CONNS; i++)
    if (pgcopy_is_up(&st->copy[i]))
      return 1;
  return 0;
}

/* 1 while a COPY connection is up and has nothing to do (see batch_due). */
static int copy_idle(const struct store *st) {
  for (int i = 0; i < STORE_COPY_CONNS; i++)
    if (pgcopy_is_up(&st->copy[i]) && !pgcopy_pending(&st->copy[i]))
      return 1;
  return 0;
}

/* FNV-1a of a symbol's bytes. */
static uint32_t symbol_hash(const char *s, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* The COPY connection of a packed row: a hash of its symbol (the first
 * column of every COPY table), so a symbol always uses the same one. */
static int row_shard(const char *row) {
  struct field f;
  get_field(row, &f);
  if (f.tag != F_TEXT)
    return 0;
  return (int)(symbol_hash(f.text, f.len) % STORE_COPY_CONNS);
}

/* Rows one batch of |q| may take (see STORE_COPY_FACTOR). */
static int batch_limit(const struct store *st, const struct store_table_q *q) {
  if (copy_takes(st, q->table))
    return STORE_COPY_FACTOR * STORE_COPY_CONNS * st->opts.batch_size;
  return st->opts.batch_size;
}

/* 1 when the waiting rows of |q| should leave before batch_limit: once
 * there are 4 x batch_size of them per COPY connection (batch_size for a
 * table without COPY) and a connection is idle or none has the table's
 * rows. Fewer, larger COPYs cost the server less per row (it sets up to
 * 1,000 tuple slots for each COPY); below that the flush interval sends
 * them. */
static int batch_due(const struct store *st, const struct store_table_q *q) {
  int per = copy_takes(st, q->table) ? 4 * STORE_COPY_CONNS : 1;
  return q->n_rows >= per * st->opts.batch_size &&
         (!q->copy_fly || copy_idle(st));
}

/* Appends a packed row to a table's waiting rows. |fresh|: a new row (not
 * one replayed from the spool), counted in rows_in. */
static int queue_row(struct store *st, struct store_table_q *q, const char *row,
                     size_t len, int fresh) {
  uint32_t off = (uint32_t)q->rows.len;
  size_t olen = q->offsets.len;
  int rv;
  if (q->n_held >= st->opts.max_rows) {
    q->rows_refused++;
    return BL_EFULL;
  }
  rv = buf_append(&q->offsets, &off, sizeof off);
  if (!rv)
    rv = buf_append(&q->rows, row, len);
  if (rv) {
    q->rows.len = off;
    q->offsets.len = olen;
    return rv;
  }
  if (!q->n_rows)
    q->first_row_ms = uv_now(st->loop);
  q->n_rows++;
  q->n_held++;
  q->seq_in++;
  if (fresh)
    q->rows_in++;
  if (q->n_rows >= batch_limit(st, q) || batch_due(st, q))
    flush_table(st, q);
  return 0;
}

static int accept_row(struct store *st, enum store_table t, struct packer *p);

/* --- batches ----------------------------------------------------------- */

static void batch_free(struct store_batch *b) {
  buf_free(&b->copy);
  buf_free(&b->newest);
  buf_free(&b->rows);
  buf_free(&b->offsets);
  for (int i = 0; i < STORE_MAX_COLS; i++)
    buf_free(&b->cols[i]);
  free(b);
}

static struct store_batch *batch_new(struct store *st, enum store_table t) {
  struct store_batch *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->st = st;
  b->table = t;
  b->shard = -1;
  buf_init(&b->copy, STORE_ARRAY_MAX);
  buf_init(&b->newest, STORE_ROWS_MAX);
  buf_init(&b->rows, STORE_ROWS_MAX);
  buf_init(&b->offsets, STORE_ROWS_MAX);
  for (int i = 0; i < STORE_MAX_COLS; i++)
    buf_init(&b->cols[i], STORE_ARRAY_MAX);
  return b;
}

/* Copies rows [from, to) of a packed set into |b|. */
static int batch_take_rows(struct store_batch *b, const struct buf *rows,
                           const struct buf *offsets, int n_total, int from,
                           int to) {
  for (int i = from; i < to; i++) {
    uint32_t start = row_offset(offsets, i);
    uint32_t end =
        i + 1 < n_total ? row_offset(offsets, i + 1) : (uint32_t)rows->len;
    uint32_t off = (uint32_t)b->rows.len;
    int rv = buf_append(&b->offsets, &off, sizeof off);
    if (!rv)
      rv = buf_append(&b->rows, rows->data + start, end - start);
    if (rv)
      return rv;
    b->n_rows++;
  }
  return 0;
}

/* Copies rows [0, n) of a packed set into bs[0 .. STORE_COPY_CONNS - 1],
 * each to the batch of its COPY connection, in their order. */
static int batch_take_sharded(struct store_batch **bs, const struct buf *rows,
                              const struct buf *offsets, int n_total, int n) {
  for (int s = 0; s < STORE_COPY_CONNS; s++)
    bs[s]->shard = s;
  for (int i = 0; i < n; i++) {
    int s = row_shard(rows->data + row_offset(offsets, i));
    int rv = batch_take_rows(bs[s], rows, offsets, n_total, i, i + 1);
    if (rv)
      return rv;
  }
  return 0;
}

/* The kline key of a packed row: symbol, interval and open time. */
static void kline_key(const struct field *f, char *key, size_t cap) {
  snprintf(key, cap, "%.*s|%.*s|%lld", (int)f[0].len, f[0].text, (int)f[1].len,
           f[1].text, (long long)f[2].i64);
}

static const char *decode_row(const struct store_batch *b, int i, int ncols,
                              struct field *f) {
  const char *at = b->rows.data + row_offset(&b->offsets, i);
  for (int c = 0; c < ncols; c++)
    at = get_field(at, &f[c]);
  return at;
}

/* Klines are upserted, and one statement may not touch a row twice, so a
 * key repeated inside a batch keeps one row: a closed one over an open
 * one, else the newest. Marks the rows to keep in |keep|. */
static int choose_klines(const struct store_batch *b, char *keep) {
  struct strmap chosen; /* key -> (index + 1) */
  struct field f[STORE_MAX_COLS];
  char key[160];
  int rv = 0;
  strmap_init(&chosen, (size_t)b->n_rows + 1);
  for (int i = b->n_rows - 1; i >= 0 && !rv; i--) {
    uintptr_t prev;
    decode_row(b, i, tables[STORE_KLINES].ncols, f);
    kline_key(f, key, sizeof key);
    prev = (uintptr_t)strmap_get(&chosen, key);
    if (!prev) {
      keep[i] = 1;
      rv = strmap_put(&chosen, key, (void *)(uintptr_t)(i + 1));
    } else {
      struct field g[STORE_MAX_COLS];
      decode_row(b, (int)prev - 1, tables[STORE_KLINES].ncols, g);
      /* Column 15 is is_closed. */
      if (f[15].b && !g[15].b) {
        keep[prev - 1] = 0;
        keep[i] = 1;
        rv = strmap_put(&chosen, key, (void *)(uintptr_t)(i + 1));
      }
    }
  }
  strmap_free(&chosen);
  return rv;
}

/* Builds the column array literals of a batch. */
static int batch_build(struct store_batch *b) {
  const struct table_def *def = &tables[b->table];
  char *keep = NULL;
  int rv = 0;
  if (b->table == STORE_KLINES) {
    keep = calloc((size_t)b->n_rows + 1, 1);
    if (!keep)
      return BL_ENOMEM;
    rv = choose_klines(b, keep);
  }
  for (int c = 0; c < def->ncols && !rv; c++)
    rv = pgarray_begin(&b->cols[c]);
  for (int i = 0; i < b->n_rows && !rv; i++) {
    struct field f[STORE_MAX_COLS];
    if (keep && !keep[i])
      continue;
    decode_row(b, i, def->ncols, f);
    for (int c = 0; c < def->ncols && !rv; c++) {
      switch (f[c].tag) {
      case F_TEXT:
        rv = pgarray_add_strn(&b->cols[c], f[c].text, f[c].len);
        break;
      case F_I64:
        rv = pgarray_add_i64(&b->cols[c], f[c].i64);
        break;
      case F_BOOL:
        rv = pgarray_add_bool(&b->cols[c], f[c].b);
        break;
      default:
        rv = pgarray_add_null(&b->cols[c]);
      }
    }
  }
  for (int c = 0; c < def->ncols && !rv; c++) {
    rv = pgarray_end(&b->cols[c]);
    b->values[c] = b->cols[c].data;
  }
  free(keep);
  return rv;
}

static void batch_done(struct pg_op *op, int status, PGresult *res,
                       const char *err);
static void copy_done(struct pgcopy_job *job, int status, const char *err);
static void resubmit_ready(struct store *st);

/* --- the order of a COPY's rows ---------------------------------------- */

/* A COPY is one transaction, so the order of its rows is ours to choose.
 * Rows arrive interleaved over every symbol; sent as they came, each one
 * lands on a different leaf page of the primary key's B-tree (symbol
 * first) than the one before. Sent grouped by symbol, symbols in name
 * order, consecutive rows land on the same page. A lone psql COPY of 1.1M
 * trades of 200 symbols in chunks of 3,700 rows cost the server about 10 %
 * less CPU (1.5-17 % over five pairs); in the firehose PostgreSQL's CPU
 * per message fell about 4 %. Each symbol's own rows keep their arrival
 * order. */
struct copy_group {
  const char *sym; /* the symbol's bytes in the first row that has it */
  uint32_t len;
  int count; /* its rows in the batch */
  int at;    /* next place in the order for its rows */
};

static int group_cmp(const void *a, const void *b) {
  const struct copy_group *x = *(const struct copy_group *const *)a;
  const struct copy_group *y = *(const struct copy_group *const *)b;
  int c = memcmp(x->sym, y->sym, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Fills |order| (b->n_rows entries) with the row indices grouped as above.
 * Returns 0, or BL_ENOMEM: the caller then keeps the arrival order. */
static int copy_order(struct store *st, const struct store_batch *b,
                      int **order) {
  int n = b->n_rows, n_groups = 0;
  size_t slots = 16, need;
  int *ord, *row_group, *table;
  struct copy_group *groups, **by_name;
  char *at;
  while (slots < 2 * (size_t)n)
    slots *= 2;
  /* One scratch block: order, row_group, table, by_name, groups. */
  need = ((size_t)2 * n + slots) * sizeof(int) + 8 +
         (size_t)n * (sizeof *by_name + sizeof *groups);
  buf_reset(&st->copy_scratch);
  if (buf_reserve(&st->copy_scratch, need + 8))
    return BL_ENOMEM;
  at = st->copy_scratch.data;
  ord = (int *)(void *)at;
  row_group = ord + n;
  table = row_group + n;
  at = (char *)(table + slots);
  at += (8 - (uintptr_t)at % 8) % 8;
  by_name = (struct copy_group **)(void *)at;
  groups = (struct copy_group *)(void *)(by_name + n);
  memset(table, 0, slots * sizeof *table); /* group index + 1; 0: empty */
  for (int i = 0; i < n; i++) {
    struct field f;
    size_t k;
    get_field(b->rows.data + row_offset(&b->offsets, i), &f);
    if (f.tag != F_TEXT)
      f.len = 0;
    for (k = symbol_hash(f.text, f.len) & (slots - 1); table[k];
         k = (k + 1) & (slots - 1)) {
      const struct copy_group *g = &groups[table[k] - 1];
      if (g->len == f.len && !memcmp(g->sym, f.text, f.len))
        break;
    }
    if (!table[k]) {
      groups[n_groups] =
          (struct copy_group){f.len ? f.text : "", (uint32_t)f.len, 0, 0};
      by_name[n_groups] = &groups[n_groups];
      table[k] = ++n_groups;
    }
    row_group[i] = table[k] - 1;
    groups[table[k] - 1].count++;
  }
  qsort(by_name, (size_t)n_groups, sizeof *by_name, group_cmp);
  for (int g = 0, pos = 0; g < n_groups; g++) {
    by_name[g]->at = pos;
    pos += by_name[g]->count;
  }
  for (int i = 0; i < n; i++)
    ord[groups[row_group[i]].at++] = i;
  *order = ord;
  return 0;
}

/* The newest time of one symbol's rows in a COPY, for sync_status once it
 * commits: one entry per run of a symbol's rows in the COPY's order, which
 * is one per symbol when the rows are grouped. |sym| points into the
 * batch's rows. */
struct copy_newest {
  const char *sym;
  uint32_t len;
  int64_t ms;
};

/* Adds a row's symbol (f[0]) and time (f[tc]) to b->newest. */
static int note_newest(struct store_batch *b, const struct field *f, int tc) {
  struct copy_newest *last, e;
  if (f[0].tag != F_TEXT || f[tc].tag != F_I64)
    return 0;
  last =
      b->newest.len
          ? (struct copy_newest *)(void *)(b->newest.data + b->newest.len) - 1
          : NULL;
  if (last && last->len == f[0].len &&
      !memcmp(last->sym, f[0].text, f[0].len)) {
    if (f[tc].i64 > last->ms)
      last->ms = f[tc].i64;
    return 0;
  }
  e = (struct copy_newest){f[0].text, (uint32_t)f[0].len, f[tc].i64};
  return buf_append(&b->newest, &e, sizeof e);
}

/* Builds the COPY data of a batch (binary format), rows in the order of
 * copy_order, and the newest time per symbol (b->newest). A field that
 * does not fit its column's type fails the build: the batch then goes
 * through the statement, which reports and isolates the row. */
static int batch_build_copy(struct store_batch *b) {
  const struct table_def *def = &tables[b->table];
  const char *types = copies[b->table].types;
  int tc = copies[b->table].time_col;
  int *order = NULL;
  int rv;
  buf_reset(&b->copy);
  buf_reset(&b->newest);
  if (copy_order(b->st, b, &order))
    order = NULL; /* out of memory: arrival order is as correct */
  rv = pgcopy_bin_begin(&b->copy);
  for (int i = 0; i < b->n_rows && !rv; i++) {
    struct field f[STORE_MAX_COLS];
    decode_row(b, order ? order[i] : i, def->ncols, f);
    rv = note_newest(b, f, tc);
    if (!rv)
      rv = pgcopy_bin_row(&b->copy, def->ncols);
    for (int c = 0; c < def->ncols && !rv; c++) {
      int want = f[c].tag == F_TEXT ? 't' : f[c].tag == F_I64 ? 'I' : 'B';
      if (f[c].tag == F_NULL) {
        rv = pgcopy_bin_null(&b->copy);
        continue;
      }
      switch (types[c]) {
      case 't':
        rv = want == 't' ? pgcopy_bin_text(&b->copy, f[c].text, f[c].len)
                         : BL_EINVAL;
        break;
      case 'N':
        rv = want == 't' ? pgcopy_bin_numeric(&b->copy, f[c].text, f[c].len)
                         : BL_EINVAL;
        break;
      case 'J':
        rv = want == 't' ? pgcopy_bin_jsonb(&b->copy, f[c].text, f[c].len)
                         : BL_EINVAL;
        break;
      case 'I':
        rv = want == 'I' ? pgcopy_bin_i64(&b->copy, f[c].i64) : BL_EINVAL;
        break;
      case 'M':
        rv = want == 'I' ? pgcopy_bin_ms(&b->copy, f[c].i64) : BL_EINVAL;
        break;
      default: /* 'B' */
        rv = want == 'B' ? pgcopy_bin_bool(&b->copy, f[c].b) : BL_EINVAL;
      }
    }
  }
  if (!rv)
    rv = pgcopy_bin_end(&b->copy);
  b->copy_built = !rv;
  return rv;
}

static void fly_link(struct store *st, struct store_batch *b) {
  b->fly_next = NULL;
  b->fly_prev = st->fly_tail;
  if (st->fly_tail)
    st->fly_tail->fly_next = b;
  else
    st->fly_head = b;
  st->fly_tail = b;
}

/* 1 if a batch that must go by statement waits in the table's ready list. */
static int stmt_waiting(const struct store_table_q *q) {
  for (const struct store_batch *b = q->ready; b; b = b->next)
    if (b->no_copy)
      return 1;
  return 0;
}

/* Hands |b| to the COPY connection when its table has one and the link is
 * up. Returns 1 if taken; 0 to use the statement; -1 to hold the batch:
 * the COPY queue is full (it drains soon and is cheaper to wait for), or
 * the table's statements run or wait (see copy_fly; they go first, so a
 * table under load switches back to COPY once they are done). */
static int copy_try(struct store *st, struct store_batch *b) {
  struct store_table_q *q = &st->q[b->table];
  int rv;
  /* A batch of any symbols (made while COPY was down) takes the statement:
   * on one connection it could overtake rows waiting on the other. */
  if (b->no_copy || b->shard < 0 || !copy_takes(st, b->table) ||
      !pgcopy_is_up(&st->copy[b->shard]))
    return 0;
  if (q->stmt_fly || stmt_waiting(q))
    return -1;
  if (!b->copy_built && (rv = batch_build_copy(b))) {
    st->copy_fallbacks++;
    log_limited(BL_LOG_INFO, "store",
                "%s: %d rows cannot go by COPY (%s: a value does not fit "
                "its column); sending them through the statement",
                tables[b->table].name, b->n_rows, bl_strerror(rv));
    b->no_copy = 1;
    return 0;
  }
  memset(&b->job, 0, sizeof b->job);
  b->job.sql = copies[b->table].sql;
  b->job.rows = b->copy.data;
  b->job.len = b->copy.len;
  b->job.cb = copy_done;
  b->job.data = b;
  rv = pgcopy_submit(&st->copy[b->shard], &b->job);
  if (rv == BL_EFULL)
    return -1;
  return rv == 0;
}

/* The COPY connections whose rows |b| holds, as a bit set: all of them for
 * a batch of any symbols or one bound to the statement (statements and
 * COPYs of a table never run at once, see copy_fly). */
static unsigned shard_mask(const struct store_batch *b) {
  if (b->no_copy || b->shard < 0)
    return (1u << STORE_COPY_CONNS) - 1;
  return 1u << b->shard;
}

/* 1 if a held batch of |q| has rows of the same connection as |b|: |b|,
 * being newer, must wait behind it. */
static int held_before(const struct store_table_q *q,
                       const struct store_batch *b) {
  unsigned m = shard_mask(b);
  for (const struct store_batch *h = q->ready; h; h = h->next)
    if (shard_mask(h) & m)
      return 1;
  return 0;
}

/* A table's held batches, oldest first: they are sent in this order, and a
 * newer batch never overtakes one held here that has rows of the same
 * COPY connection (each symbol's rows commit in order). */
static void ready_push_back(struct store_table_q *q, struct store_batch *b) {
  b->next = NULL;
  if (q->ready_tail)
    q->ready_tail->next = b;
  else
    q->ready = b;
  q->ready_tail = b;
}

static void ready_push_front(struct store_table_q *q, struct store_batch *b) {
  b->next = q->ready;
  q->ready = b;
  if (!q->ready_tail)
    q->ready_tail = b;
}

static void ready_insert_after(struct store_table_q *q, struct store_batch *at,
                               struct store_batch *b) {
  b->next = at->next;
  at->next = b;
  if (q->ready_tail == at)
    q->ready_tail = b;
}

/* Holds |b|: as the oldest (|older|: a batch that was already sent once)
 * or the newest. */
static void hold(struct store_table_q *q, struct store_batch *b, int older) {
  if (older)
    ready_push_front(q, b);
  else
    ready_push_back(q, b);
}

/* Sends |b| by COPY or statement, or holds it. |older|: |b| is older than
 * every held batch of its table (a COPY's fallback, a split half, a
 * retry); otherwise it queues behind them. */
static void batch_split(struct store *st, struct store_batch *b,
                        const char *err);

static void batch_submit(struct store *st, struct store_batch *b, int older) {
  struct store_table_q *q = &st->q[b->table];
  int rv;
  if (!older && held_before(q, b)) {
    ready_push_back(q, b);
    return;
  }
  rv = copy_try(st, b);
  if (rv != 0) {
    if (rv < 0) {
      hold(q, b, older);
      return;
    }
    st->in_flight++;
    q->copy_fly++;
    q->batches++;
    fly_link(st, b);
    return;
  }
  if (q->copy_fly) {
    /* Behind the table's COPYs (see copy_fly). */
    hold(q, b, older);
    return;
  }
  if (!b->arrays_built) {
    rv = batch_build(b);
    if (rv) {
      log_limited(BL_LOG_ERROR, "store", "%s: cannot build a batch: %s",
                  tables[b->table].name, bl_strerror(rv));
      hold(q, b, older);
      return;
    }
    b->arrays_built = 1;
  }
  memset(&b->op, 0, sizeof b->op);
  b->op.stmt = tables[b->table].stmt;
  b->op.nparams = tables[b->table].ncols;
  b->op.values = b->values;
  b->op.cb = batch_done;
  b->op.data = b;
  rv = pg_submit(st->pg, &b->op);
  if (rv == BL_ETOOBIG) {
    /* Over pg's byte bound alone: halves until each fits (a single row
     * that big is reported and dropped). */
    snprintf(b->op.sqlstate, sizeof b->op.sqlstate, "%s", "54000");
    batch_split(st, b, "the batch alone is over the statement size bound");
    return;
  }
  if (rv == BL_EFULL) {
    hold(q, b, older); /* until pg has room: the tick sends it again */
    return;
  }
  if (rv) {
    log_error("store", "%s: cannot submit a batch: %s", tables[b->table].name,
              bl_strerror(rv));
    hold(q, b, older);
    return;
  }
  st->in_flight++;
  q->stmt_fly++;
  q->batches++;
  fly_link(st, b);
}

static void fly_unlink(struct store *st, struct store_batch *b) {
  if (b->fly_prev)
    b->fly_prev->fly_next = b->fly_next;
  else
    st->fly_head = b->fly_next;
  if (b->fly_next)
    b->fly_next->fly_prev = b->fly_prev;
  else
    st->fly_tail = b->fly_prev;
  b->fly_prev = b->fly_next = NULL;
}

/* --- spool ------------------------------------------------------------- */

static uint32_t rows_end(const struct buf *rows, const struct buf *offsets,
                         int n_total, int i) {
  return i + 1 < n_total ? row_offset(offsets, i + 1) : (uint32_t)rows->len;
}

/* Appends rows [0, n) of a packed set to the spool. Returns how many were
 * taken. */
static int spill_rows(struct store *st, enum store_table t,
                      const struct buf *rows, const struct buf *offsets,
                      int n) {
  int kept = 0;
  for (int i = 0; i < n; i++) {
    uint32_t start = row_offset(offsets, i);
    uint32_t end = rows_end(rows, offsets, n, i);
    if (spool_append(&st->spool, (int)t, rows->data + start, end - start)) {
      st->spool_refused++;
      continue;
    }
    st->rows_spooled++;
    kept++;
  }
  return kept;
}

/* Spills a ready list (oldest first). */
static int spill_ready(struct store *st, struct store_batch *b) {
  int n = 0;
  for (; b; b = b->next)
    n += spill_rows(st, b->table, &b->rows, &b->offsets, b->n_rows);
  return n;
}

static void pg_watch(struct store *st) {
  if (pg_is_up(st->pg)) {
    st->pg_down = 0;
    st->outage_copied = 0;
    if (st->copy_on && !st->copy_started && !st->closing) {
      /* Once pg is up the schema is in place (the app starts pg after
       * its migrations), so COPY does not meet missing tables. */
      st->copy_started = 1;
      for (int i = 0; i < STORE_COPY_CONNS; i++)
        pgcopy_start(&st->copy[i]);
    }
  } else if (!st->pg_down) {
    st->pg_down = 1;
    st->down_since_ms = uv_now(st->loop);
  }
}

static int pg_gone(struct store *st) {
  pg_watch(st);
  return st->pg_down && uv_now(st->loop) - st->down_since_ms >=
                            (uint64_t)st->opts.spool_grace_ms;
}

/* Starts sending new rows to the spool. When PostgreSQL is gone, also
 * copies every row held in memory there (oldest first; once per outage),
 * so a crash while it is away loses nothing. The in-memory rows are still
 * sent by pg and the store; the copies are replayed later as harmless
 * duplicates. */
static void enter_spooling(struct store *st, const char *why) {
  int n = 0;
  if (!st->spooling) {
    st->spooling = 1;
    st->spool_episodes++;
    log_warn("store", "%s: rows now go to the spool in %s", why, st->spool.dir);
  }
  if (st->outage_copied || !st->pg_down)
    return;
  st->outage_copied = 1;
  for (struct store_batch *b = st->fly_head; b; b = b->fly_next)
    n += spill_rows(st, b->table, &b->rows, &b->offsets, b->n_rows);
  for (int t = 0; t < STORE_NTABLES; t++) {
    struct store_table_q *q = &st->q[t];
    n += spill_ready(st, q->ready);
    n += spill_rows(st, q->table, &q->rows, &q->offsets, q->n_rows);
  }
  if (n)
    log_warn("store", "%d rows held in memory copied to the spool", n);
}

static int any_ready(const struct store *st) {
  for (int t = 0; t < STORE_NTABLES; t++)
    if (st->q[t].ready)
      return 1;
  return 0;
}

/* Notes that row |end| - 1 of |table| came from spool segment |seg|. */
static void mark_note(struct store *st, uint32_t seg, int table, uint64_t end) {
  struct store_mark *m;
  if (!st->nmarks || st->marks[st->nmarks - 1].seg != seg) {
    if (st->nmarks == st->capmarks) {
      int cap = st->capmarks ? st->capmarks * 2 : 16;
      struct store_mark *n = realloc(st->marks, (size_t)cap * sizeof *n);
      if (!n)
        return; /* the segment may then go before its rows are stored */
      st->marks = n;
      st->capmarks = cap;
    }
    m = &st->marks[st->nmarks++];
    memset(m, 0, sizeof *m);
    m->seg = seg;
  }
  st->marks[st->nmarks - 1].end[table] = end;
}

/* Lets the spool delete the segments whose replayed rows are all
 * committed: those before the oldest mark not yet passed by every table's
 * oldest uncommitted row. */
static void release_spool(struct store *st) {
  uint64_t wm[STORE_NTABLES];
  int k = 0;
  if (!st->spool_open_ || st->spool.closing)
    return;
  for (int t = 0; t < STORE_NTABLES; t++) {
    const struct store_table_q *q = &st->q[t];
    wm[t] = q->seq_in - (uint64_t)q->n_rows;
    for (const struct store_batch *b = q->ready; b; b = b->next)
      if (b->seq0 < wm[t])
        wm[t] = b->seq0;
  }
  for (const struct store_batch *b = st->fly_head; b; b = b->fly_next)
    if (b->seq0 < wm[b->table])
      wm[b->table] = b->seq0;
  while (k < st->nmarks) {
    int done = 1;
    for (int t = 0; t < STORE_NTABLES && done; t++)
      done = st->marks[k].end[t] <= wm[t];
    if (!done)
      break;
    k++;
  }
  if (k) {
    memmove(st->marks, st->marks + k,
            (size_t)(st->nmarks - k) * sizeof *st->marks);
    st->nmarks -= k;
  }
  spool_release(&st->spool, st->nmarks ? st->marks[0].seg - 1 : UINT32_MAX);
}

/* Moves spooled rows into the queues while PostgreSQL is up, no older
 * batch waits in memory and the queues have room; leaves the spooling
 * state once the spool is empty. */
static void replay(struct store *st) {
  if (!st->spool_on || !st->spooling || st->closing)
    return;
  pg_watch(st);
  if (st->pg_down)
    return;
  while (!any_ready(st)) {
    uint32_t seg;
    int table;
    const char *row;
    size_t len;
    struct store_table_q *q;
    if (spool_peek(&st->spool, &table, &row, &len))
      break;
    if (table < 0 || table >= STORE_NTABLES) {
      log_limited(BL_LOG_ERROR, "store",
                  "spooled row of unknown table %d dropped", table);
      spool_pop(&st->spool);
      continue;
    }
    q = &st->q[table];
    if (q->n_held >= st->opts.max_rows)
      break;
    seg = spool_peek_seg(&st->spool);
    if (queue_row(st, q, row, len, 0))
      break;
    mark_note(st, seg, table, q->seq_in);
    spool_pop(&st->spool);
    st->rows_replayed++;
  }
  if (spool_is_empty(&st->spool)) {
    st->spooling = 0;
    log_info("store",
             "spool drained (%llu rows replayed so far): rows go straight "
             "to PostgreSQL again",
             (unsigned long long)st->rows_replayed);
  }
}

static void store_spool_ready(struct spool *sp) {
  replay(sp->data);
}

static int accept_row(struct store *st, enum store_table t, struct packer *p) {
  struct store_table_q *q = &st->q[t];
  int rv;
  if (p->rv)
    return p->rv;
  if (st->spool_on) {
    if (!st->outage_copied && pg_gone(st))
      enter_spooling(st, "PostgreSQL is unreachable");
    else if (!st->spooling && q->n_held >= st->opts.max_rows)
      enter_spooling(st, "a table queue is full");
  }
  if (!st->spooling)
    return queue_row(st, q, st->scratch.data, st->scratch.len, 1);
  rv = spool_append(&st->spool, (int)t, st->scratch.data, st->scratch.len);
  if (rv) {
    q->rows_refused++;
    st->spool_refused++;
    return rv == BL_ETOOBIG ? rv : BL_EFULL;
  }
  q->rows_in++;
  st->rows_spooled++;
  return 0;
}

static void maybe_closed(struct store *st);

/* Splits a rejected batch in two and sends both halves, or, for a single
 * row, reports and drops it. */
static void batch_split(struct store *st, struct store_batch *b,
                        const char *err) {
  struct store_table_q *q = &st->q[b->table];
  int half = b->n_rows / 2;
  struct store_batch *l, *r;
  if (b->n_rows <= 1) {
    q->bad_rows++;
    q->n_held -= b->n_rows;
    log_error("store", "%s: a row was refused and dropped (SQLSTATE %s): %s",
              tables[b->table].name, b->op.sqlstate, err ? err : "");
    batch_free(b);
    return;
  }
  l = batch_new(st, b->table);
  r = batch_new(st, b->table);
  if (!l || !r ||
      batch_take_rows(l, &b->rows, &b->offsets, b->n_rows, 0, half) ||
      batch_take_rows(r, &b->rows, &b->offsets, b->n_rows, half, b->n_rows)) {
    log_error("store",
              "%s: out of memory splitting a refused batch; %d "
              "rows dropped",
              tables[b->table].name, b->n_rows);
    q->bad_rows += (uint64_t)b->n_rows;
    q->n_held -= b->n_rows;
    if (l)
      batch_free(l);
    if (r)
      batch_free(r);
    batch_free(b);
    return;
  }
  l->seq0 = b->seq0;
  r->seq0 = b->seq0 + (uint64_t)half;
  l->no_copy = r->no_copy = 1;
  batch_free(b);
  batch_submit(st, l, 1);
  if (q->ready == l)
    ready_insert_after(q, l, r); /* l is held: r stays behind it */
  else
    batch_submit(st, r, 1);
}

static int is_data_error(const char *sqlstate) {
  return sqlstate[0] == '2' && (sqlstate[1] == '2' || sqlstate[1] == '3');
}

static void batch_done(struct pg_op *op, int status, PGresult *res,
                       const char *err) {
  struct store_batch *b = op->data;
  struct store *st = b->st;
  struct store_table_q *q = &st->q[b->table];
  (void)res;
  fly_unlink(st, b);
  st->in_flight--;
  q->stmt_fly--;
  metrics_histogram_observe(&st->latency, (double)op->latency_us / 1e6);
  if (status == 0) {
    q->rows_written += (uint64_t)b->n_rows;
    q->n_held -= b->n_rows;
    batch_free(b);
  } else if (status == BL_EPG && is_data_error(op->sqlstate)) {
    batch_split(st, b, err);
  } else if (status == BL_EPG && !st->closing) {
    /* Not the data's fault (a missing table before migrations, a
     * permission): keep the batch and try again on the next tick. */
    log_limited(BL_LOG_ERROR, "store",
                "%s: batch of %d rows failed "
                "(SQLSTATE %s): %s; will retry",
                tables[b->table].name, b->n_rows, op->sqlstate, err ? err : "");
    ready_push_front(q, b);
    st->hold_until_ms = uv_now(st->loop) + 1000;
  } else {
    int kept = 0;
    if (st->spool_open_ && !st->spool.closing)
      kept = spill_rows(st, b->table, &b->rows, &b->offsets, b->n_rows);
    if (kept)
      log_warn("store",
               "%s: %d rows not written at shutdown (%s) kept in "
               "the spool",
               tables[b->table].name, kept, bl_strerror(status));
    if (kept < b->n_rows)
      log_error("store", "%s: %d rows not written at shutdown: %s",
                tables[b->table].name, b->n_rows - kept, bl_strerror(status));
    q->n_held -= b->n_rows;
    batch_free(b);
  }
  if (q->ready && q->table != STORE_KLINES)
    resubmit_ready(st); /* waiting for this table's statements to end */
  replay(st);
  maybe_closed(st);
}

/* --- COPY and its sync_status ------------------------------------------ */

struct sync_ent {
  int64_t ms;  /* the newest committed time not yet in sync_status */
  int pending; /* ms is newer than what was last sent */
  char sym[32];
};

/* A table's sync_status rows waiting to be written after its COPYs, one
 * entry per symbol (kept for the next batch), sent at most once a second
 * (and at close) as one statement on the COPY connection. */
struct store_sync {
  struct store *st;
  enum store_table table;
  struct strmap idx; /* symbol -> entry index + 1 */
  struct sync_ent *ents;
  int n, cap, n_pending;
  int in_flight;
  uint64_t sent_ms; /* uv_now() of the last send */
  struct pgcopy_job job;
  struct buf syms, times;
  const char *params[3];
};

static void sync_free(struct store_sync *sy) {
  if (!sy)
    return;
  strmap_free(&sy->idx);
  free(sy->ents);
  buf_free(&sy->syms);
  buf_free(&sy->times);
  free(sy);
}

static struct sync_ent *sync_entry(struct store_sync *sy, const char *sym,
                                   size_t len) {
  char key[sizeof sy->ents[0].sym];
  uintptr_t at;
  if (len >= sizeof key)
    return NULL;
  memcpy(key, sym, len);
  key[len] = '\0';
  at = (uintptr_t)strmap_get(&sy->idx, key);
  if (at)
    return &sy->ents[at - 1];
  if (sy->n == sy->cap) {
    int cap = sy->cap ? sy->cap * 2 : 64;
    struct sync_ent *n;
    if (cap > SYNC_MAX_SYMBOLS)
      return NULL;
    n = realloc(sy->ents, (size_t)cap * sizeof *n);
    if (!n)
      return NULL;
    sy->ents = n;
    sy->cap = cap;
  }
  if (strmap_put(&sy->idx, key, (void *)(uintptr_t)(sy->n + 1)))
    return NULL;
  memset(&sy->ents[sy->n], 0, sizeof sy->ents[0]);
  memcpy(sy->ents[sy->n].sym, key, len + 1);
  return &sy->ents[sy->n++];
}

/* Notes the newest time per symbol of a batch the COPY committed. */
static void sync_note(struct store *st, const struct store_batch *b) {
  struct store_sync *sy = st->sync[b->table];
  const struct copy_newest *n = (const void *)b->newest.data;
  size_t count = b->newest.len / sizeof *n;
  for (size_t i = 0; sy && i < count; i++) {
    struct sync_ent *e = sync_entry(sy, n[i].sym, n[i].len);
    if (!e) {
      log_limited(BL_LOG_WARN, "store",
                  "%s: sync_status not kept for a symbol: over %d symbols",
                  tables[b->table].name, SYNC_MAX_SYMBOLS);
      continue;
    }
    if (!e->pending) {
      e->pending = 1;
      e->ms = n[i].ms;
      sy->n_pending++;
    } else if (n[i].ms > e->ms) {
      e->ms = n[i].ms;
    }
  }
}

static void sync_done(struct pgcopy_job *job, int status, const char *err);

/* Sends a table's pending sync_status rows when due (|now|: regardless of
 * the once-a-second pace). */
static void sync_flush(struct store *st, enum store_table t, int now) {
  struct store_sync *sy = st->sync[t];
  int rv;
  if (!sy || sy->in_flight || !sy->n_pending || !st->copy_open_ ||
      st->q[t].stmt_fly)
    return; /* the table's statements upsert sync_status too (copy_fly) */
  if (!now && uv_now(st->loop) - sy->sent_ms < 1000)
    return;
  rv = pgarray_begin(&sy->syms);
  if (!rv)
    rv = pgarray_begin(&sy->times);
  for (int i = 0; i < sy->n && !rv; i++) {
    if (!sy->ents[i].pending)
      continue;
    rv = pgarray_add_str(&sy->syms, sy->ents[i].sym);
    if (!rv)
      rv = pgarray_add_i64(&sy->times, sy->ents[i].ms);
  }
  if (!rv)
    rv = pgarray_end(&sy->syms);
  if (!rv)
    rv = pgarray_end(&sy->times);
  if (rv)
    return;
  memset(&sy->job, 0, sizeof sy->job);
  sy->params[0] = sy->syms.data;
  sy->params[1] = sy->times.data;
  sy->params[2] = copies[t].data_type;
  sy->job.sql = sync_sql;
  sy->job.nparams = 3;
  sy->job.params = sy->params;
  sy->job.cb = sync_done;
  sy->job.data = sy;
  {
    /* Any connection: these rows are committed already. */
    struct pgcopy *pc = NULL;
    for (int i = 0; i < STORE_COPY_CONNS; i++)
      if (pgcopy_is_up(&st->copy[i]) &&
          (!pc || pgcopy_pending(&st->copy[i]) < pgcopy_pending(pc)))
        pc = &st->copy[i];
    if (!pc)
      pc = &st->copy[0]; /* takes it while closing; refuses it if down */
    if (pgcopy_submit(pc, &sy->job))
      return; /* kept pending: the next tick tries again */
  }
  for (int i = 0; i < sy->n; i++)
    sy->ents[i].pending = 0;
  sy->n_pending = 0;
  sy->in_flight = 1;
  sy->sent_ms = uv_now(st->loop);
  st->in_flight++;
  st->q[t].copy_fly++;
}

static void maybe_closed(struct store *st);

static void sync_done(struct pgcopy_job *job, int status, const char *err) {
  struct store_sync *sy = job->data;
  struct store *st = sy->st;
  sy->in_flight = 0;
  st->in_flight--;
  st->q[sy->table].copy_fly--;
  if (status)
    log_limited(BL_LOG_WARN, "store",
                "%s: sync_status update after COPY failed (%s): %s",
                tables[sy->table].name, bl_strerror(status), err ? err : "");
  if (st->closing) /* the COPY connection takes one job at a time */
    for (int t = 0; t < STORE_NTABLES; t++)
      sync_flush(st, (enum store_table)t, 1);
  if (st->q[sy->table].ready)
    resubmit_ready(st);
  maybe_closed(st);
}

static void copy_done(struct pgcopy_job *job, int status, const char *err) {
  struct store_batch *b = job->data;
  struct store *st = b->st;
  struct store_table_q *q = &st->q[b->table];
  fly_unlink(st, b);
  st->in_flight--;
  q->copy_fly--;
  if (status == 0) {
    metrics_histogram_observe(&st->latency, (double)job->latency_us / 1e6);
    st->copy_batches++;
    sync_note(st, b);
    q->rows_written += (uint64_t)b->n_rows;
    q->n_held -= b->n_rows;
    for (int t = 0; t < STORE_NTABLES; t++)
      if (st->closing || t == (int)b->table)
        sync_flush(st, (enum store_table)t, st->closing);
    batch_free(b);
    if (batch_due(st, q))
      flush_table(st, q); /* the rows that waited for this COPY */
  } else {
    /* Not committed, or not known to be: the statement skips what the
     * table already has and isolates a bad row. */
    st->copy_fallbacks++;
    if (job->sqlstate[0])
      log_limited(BL_LOG_INFO, "store",
                  "%s: COPY of %d rows refused (SQLSTATE %s): %s; sending "
                  "them through the statement",
                  tables[b->table].name, b->n_rows, job->sqlstate,
                  err ? err : "");
    else
      log_limited(BL_LOG_WARN, "store",
                  "%s: COPY of %d rows not confirmed (%s): %s; sending "
                  "them through the statement",
                  tables[b->table].name, b->n_rows, bl_strerror(status),
                  err ? err : "");
    b->no_copy = 1;
    batch_submit(st, b, 1);
  }
  resubmit_ready(st);
  replay(st);
  maybe_closed(st);
}

/* Moves waiting rows into batches of at most batch_limit rows and submits
 * them: while COPY takes the table, one batch per COPY connection, each
 * with that connection's symbols. */
static void flush_table(struct store *st, struct store_table_q *q) {
  int limit = batch_limit(st, q);
  int nb = copy_takes(st, q->table) ? STORE_COPY_CONNS : 1;
  while (q->n_rows) {
    int take = q->n_rows < limit ? q->n_rows : limit;
    struct store_batch *bs[STORE_COPY_CONNS] = {0};
    uint64_t seq0 = q->seq_in - (uint64_t)q->n_rows;
    size_t cut;
    int rv = 0;
    for (int s = 0; s < nb && !rv; s++) {
      bs[s] = batch_new(st, q->table);
      if (!bs[s])
        rv = BL_ENOMEM;
      else
        bs[s]->seq0 = seq0; /* a lower bound for a shard's first row */
    }
    if (!rv && nb == 1)
      rv = batch_take_rows(bs[0], &q->rows, &q->offsets, q->n_rows, 0, take);
    else if (!rv)
      rv = batch_take_sharded(bs, &q->rows, &q->offsets, q->n_rows, take);
    if (rv) {
      log_error("store", "%s: out of memory building a batch",
                tables[q->table].name);
      for (int s = 0; s < nb; s++)
        if (bs[s])
          batch_free(bs[s]);
      return;
    }
    /* Drop the taken rows from the waiting set and shift the offsets. */
    cut = take < q->n_rows ? row_offset(&q->offsets, take) : q->rows.len;
    buf_consume(&q->rows, cut);
    buf_consume(&q->offsets, (size_t)take * sizeof(uint32_t));
    for (int i = 0; i < q->n_rows - take; i++) {
      uint32_t off = row_offset(&q->offsets, i) - (uint32_t)cut;
      memcpy(q->offsets.data + (size_t)i * sizeof off, &off, sizeof off);
    }
    q->n_rows -= take;
    q->first_row_ms = uv_now(st->loop);
    for (int s = 0; s < nb; s++) {
      if (bs[s]->n_rows)
        batch_submit(st, bs[s], 0);
      else
        batch_free(bs[s]);
    }
  }
}

/* Resubmits batches held back by BL_EFULL or a retryable failure. */
static void resubmit_ready(struct store *st) {
  if (!st->closing && uv_now(st->loop) < st->hold_until_ms)
    return;
  for (int t = 0; t < STORE_NTABLES; t++) {
    struct store_table_q *q = &st->q[t];
    struct store_batch *list = q->ready;
    q->ready = q->ready_tail = NULL;
    while (list) { /* oldest first; a held one keeps the rest behind it */
      struct store_batch *n = list->next;
      list->next = NULL;
      batch_submit(st, list, 0);
      list = n;
    }
  }
}

static void tick(uv_timer_t *t) {
  struct store *st = t->data;
  uint64_t now = uv_now(st->loop);
  pg_watch(st);
  resubmit_ready(st);
  if (st->spool_on && !st->outage_copied && store_pending(st) && pg_gone(st))
    enter_spooling(st, "PostgreSQL is unreachable");
  replay(st);
  release_spool(st);
  for (int i = 0; i < STORE_NTABLES; i++)
    sync_flush(st, (enum store_table)i, 0);
  for (int i = 0; i < STORE_NTABLES; i++) {
    struct store_table_q *q = &st->q[i];
    if (q->n_rows &&
        now - q->first_row_ms >= (uint64_t)st->opts.flush_interval_ms)
      flush_table(st, q);
  }
}

/* --- public ------------------------------------------------------------ */

int store_init(uv_loop_t *loop, struct store *st, struct pg *pg,
               const struct store_opts *opts) {
  static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                  0.025,  0.05,  0.1,    0.25,  0.5,
                                  1,      2.5,   5,      10};
  int rv;
  memset(st, 0, sizeof *st);
  st->loop = loop;
  st->pg = pg;
  if (opts)
    st->opts = *opts;
  if (st->opts.batch_size <= 0)
    st->opts.batch_size = 1000;
  if (st->opts.flush_interval_ms <= 0)
    st->opts.flush_interval_ms = 200;
  if (st->opts.max_rows <= 0)
    st->opts.max_rows = 40 * st->opts.batch_size;
  if (st->opts.spool_grace_ms <= 0)
    st->opts.spool_grace_ms = 1000;
  buf_init(&st->scratch, SPOOL_RECORD_MAX - 16);
  buf_init(&st->copy_scratch, STORE_ROWS_MAX);
  pg_watch(st);
  metrics_histogram_init(&st->latency, bounds,
                         (int)(sizeof bounds / sizeof bounds[0]));
  for (int t = 0; t < STORE_NTABLES; t++) {
    st->q[t].table = (enum store_table)t;
    buf_init(&st->q[t].rows, STORE_ROWS_MAX);
    buf_init(&st->q[t].offsets, STORE_ROWS_MAX);
    rv = pg_prepare(pg, &st->stmts[t], tables[t].stmt, tables[t].sql,
                    tables[t].ncols, NULL);
    if (rv)
      return rv;
  }
  if (st->opts.spool_dir) {
    struct spool_opts so;
    memset(&so, 0, sizeof so);
    so.dir = st->opts.spool_dir;
    so.max_bytes = st->opts.spool_max_bytes;
    so.segment_bytes = st->opts.spool_segment_bytes;
    so.manual_release = 1;
    rv = spool_open(loop, &st->spool, &so, store_spool_ready);
    if (rv) {
      log_error("store", "cannot open the spool in %s: %s", so.dir,
                bl_strerror(rv));
      return rv;
    }
    st->spool.data = st;
    st->spool_on = 1;
    st->spool_open_ = 1;
    st->spooling = !spool_is_empty(&st->spool);
  }
  if (st->opts.copy_conn) {
    struct pgcopy_opts co;
    memset(&co, 0, sizeof co);
    co.conn = *st->opts.copy_conn;
    co.conn.application_name = "binance-live-copy";
    /* One job at a time per connection: a refused COPY's batch then goes
     * through the statement before any later batch of its symbols
     * (copy_try holds them while it waits), so each symbol's rows still
     * commit in order and the start-up repair, which looks above a
     * symbol's newest stored row, misses nothing after a crash. The next
     * COPY starts in the completion callback, so this costs no round
     * trip. */
    co.max_jobs = 1;
    for (int t = 0; t < STORE_NTABLES; t++) {
      struct store_sync *sy;
      if (!copies[t].sql)
        continue;
      sy = calloc(1, sizeof *sy);
      if (!sy)
        return BL_ENOMEM;
      sy->st = st;
      sy->table = (enum store_table)t;
      strmap_init(&sy->idx, SYNC_MAX_SYMBOLS);
      buf_init(&sy->syms, STORE_ARRAY_MAX);
      buf_init(&sy->times, STORE_ARRAY_MAX);
      st->sync[t] = sy;
    }
    for (int i = 0; i < STORE_COPY_CONNS; i++) {
      rv = pgcopy_init(loop, &st->copy[i], &co);
      if (rv)
        return rv;
      st->copy[i].data = st;
      st->copy_open_++;
    }
    st->copy_on = 1;
  }
  rv = uv_timer_init(loop, &st->timer);
  if (rv)
    return rv;
  st->timer.data = st;
  st->timer_open = 1;
  /* One tick drives age-based flushes and resubmission of held batches. */
  {
    uint64_t every = (uint64_t)st->opts.flush_interval_ms / 4;
    uv_timer_start(&st->timer, tick, every ? every : 1, every ? every : 1);
  }
  return 0;
}

static const char *src(int source_rest) {
  return source_rest ? "rest" : "ws";
}

int store_kline(struct store *st, const struct ev_kline *k, int source_rest,
                int has_trade_ids) {
  struct packer p;
  int rv = begin_row(st, &p);
  if (rv)
    return rv;
  put_text(&p, k->symbol);
  put_text(&p, k->interval);
  put_i64(&p, k->open_time);
  put_i64(&p, k->close_time);
  put_text(&p, k->open);
  put_text(&p, k->high);
  put_text(&p, k->low);
  put_text(&p, k->close);
  put_text(&p, k->volume);
  put_text(&p, k->quote_volume);
  put_i64(&p, k->trades_count);
  put_text(&p, k->taker_buy_volume);
  put_text(&p, k->taker_buy_quote_volume);
  if (has_trade_ids) {
    put_i64(&p, k->first_trade_id);
    put_i64(&p, k->last_trade_id);
  } else {
    put_null(&p);
    put_null(&p);
  }
  put_bool(&p, k->is_closed);
  put_text(&p, src(source_rest));
  return accept_row(st, STORE_KLINES, &p);
}

int store_ticker(struct store *st, const struct ev_ticker *t) {
  struct packer p;
  int rv = begin_row(st, &p);
  if (rv)
    return rv;
  put_text(&p, t->symbol);
  put_i64(&p, t->event_time);
  put_text(&p, t->price);
  put_text(&p, t->price_change);
  put_text(&p, t->price_change_percent);
  put_text(&p, t->weighted_avg_price);
  put_text(&p, t->open_price);
  put_text(&p, t->high);
  put_text(&p, t->low);
  put_text(&p, t->volume);
  put_text(&p, t->quote_volume);
  put_text(&p, t->bid_price);
  put_text(&p, t->bid_qty);
  put_text(&p, t->ask_price);
  put_text(&p, t->ask_qty);
  put_i64(&p, t->trades_count);
  put_i64(&p, t->first_trade_id);
  put_i64(&p, t->last_trade_id);
  return accept_row(st, STORE_TICKERS, &p);
}

int store_trade(struct store *st, const struct ev_trade *t, int source_rest) {
  struct packer p;
  int rv = begin_row(st, &p);
  if (rv)
    return rv;
  put_text(&p, t->symbol);
  put_i64(&p, t->agg_trade_id);
  put_text(&p, t->price);
  put_text(&p, t->quantity);
  put_i64(&p, t->first_trade_id);
  put_i64(&p, t->last_trade_id);
  put_i64(&p, t->trade_time);
  put_bool(&p, t->is_buyer_maker);
  put_text(&p, src(source_rest));
  return accept_row(st, STORE_TRADES, &p);
}

int store_depth(struct store *st, const char *symbol, int64_t time_ms,
                int64_t last_update_id, const char *bids_json,
                const char *asks_json) {
  struct packer p;
  int rv = begin_row(st, &p);
  if (rv)
    return rv;
  put_text(&p, symbol);
  put_i64(&p, time_ms);
  put_i64(&p, last_update_id);
  put_text(&p, bids_json);
  put_text(&p, asks_json);
  return accept_row(st, STORE_DEPTH, &p);
}

void store_flush(struct store *st) {
  resubmit_ready(st);
  for (int t = 0; t < STORE_NTABLES; t++)
    flush_table(st, &st->q[t]);
}

int store_spooling(const struct store *st) {
  return st->spooling;
}

double store_spool_fill(const struct store *st) {
  if (!st->spooling || !st->spool_open_ || !st->spool.opts.buffer_bytes)
    return 0;
  return (double)st->spool.pend.len / (double)st->spool.opts.buffer_bytes;
}

int store_pending(const struct store *st) {
  int n = 0;
  for (int t = 0; t < STORE_NTABLES; t++)
    n += st->q[t].n_held;
  return n;
}

void store_collect(struct buf *out, void *arg) {
  struct store *st = arg;
  char lab[64];
  metrics_family(out, "binance_live_rows_written_total", "counter",
                 "Rows committed to PostgreSQL, by table.");
  for (int t = 0; t < STORE_NTABLES; t++) {
    snprintf(lab, sizeof lab, "table=\"%s\"", tables[t].name);
    metrics_sample_u64(out, "binance_live_rows_written_total", lab,
                       st->q[t].rows_written);
  }
  metrics_family(out, "binance_live_rows_rejected_total", "counter",
                 "Rows PostgreSQL refused for their data, by table.");
  for (int t = 0; t < STORE_NTABLES; t++) {
    snprintf(lab, sizeof lab, "table=\"%s\"", tables[t].name);
    metrics_sample_u64(out, "binance_live_rows_rejected_total", lab,
                       st->q[t].bad_rows);
  }
  metrics_family(out, "binance_live_rows_refused_total", "counter",
                 "Rows the store could not queue because its queue was "
                 "full, by table.");
  for (int t = 0; t < STORE_NTABLES; t++) {
    snprintf(lab, sizeof lab, "table=\"%s\"", tables[t].name);
    metrics_sample_u64(out, "binance_live_rows_refused_total", lab,
                       st->q[t].rows_refused);
  }
  metrics_family(out, "binance_live_store_queue_rows", "gauge",
                 "Rows waiting or in flight, by table.");
  for (int t = 0; t < STORE_NTABLES; t++) {
    snprintf(lab, sizeof lab, "table=\"%s\"", tables[t].name);
    metrics_sample_u64(out, "binance_live_store_queue_rows", lab,
                       (uint64_t)st->q[t].n_held);
  }
  if (st->copy_on) {
    metrics_family(out, "binance_live_store_copy_batches_total", "counter",
                   "Batches of the insert-only tables sent by COPY, by "
                   "outcome (fell_back: refused or unconfirmed, then sent "
                   "through the statement).");
    metrics_sample_u64(out, "binance_live_store_copy_batches_total",
                       "outcome=\"committed\"", st->copy_batches);
    metrics_sample_u64(out, "binance_live_store_copy_batches_total",
                       "outcome=\"fell_back\"", st->copy_fallbacks);
  }
  metrics_family(out, "binance_live_write_batch_seconds", "histogram",
                 "Time from sending a batch to its commit.");
  metrics_histogram_write(out, "binance_live_write_batch_seconds", NULL,
                          &st->latency);
  if (st->spool_on) {
    metrics_family(out, "binance_live_store_spooling", "gauge",
                   "1 while new rows go to the spool.");
    metrics_sample_u64(out, "binance_live_store_spooling", NULL,
                       (uint64_t)st->spooling);
    if (st->spool_open_)
      spool_collect(out, &st->spool);
  }
}

static void timer_closed(uv_handle_t *h) {
  struct store *st = h->data;
  st->timer_open = 0;
  maybe_closed(st);
}

static void store_spool_closed(struct spool *sp) {
  struct store *st = sp->data;
  st->spool_open_ = 0;
  maybe_closed(st);
}

/* At shutdown: rows pg could not take go to the spool for the next start. */
static void spill_leftovers(struct store *st) {
  for (int t = 0; t < STORE_NTABLES; t++) {
    struct store_table_q *q = &st->q[t];
    int n = spill_ready(st, q->ready);
    n += spill_rows(st, q->table, &q->rows, &q->offsets, q->n_rows);
    if (n)
      log_warn("store",
               "%s: %d rows not written at shutdown kept in the "
               "spool",
               tables[t].name, n);
    q->ready_tail = NULL;
    while (q->ready) {
      struct store_batch *b = q->ready;
      q->ready = b->next;
      q->n_held -= b->n_rows;
      batch_free(b);
    }
    q->n_held -= q->n_rows;
    q->n_rows = 0;
    buf_reset(&q->rows);
    buf_reset(&q->offsets);
  }
}

static void maybe_closed(struct store *st) {
  void (*cb)(struct store *);
  if (!st->closing || st->in_flight || st->timer_open || st->copy_open_ ||
      !st->close_cb)
    return;
  if (st->spool_open_) {
    if (!st->spool.closing) {
      spill_leftovers(st);
      release_spool(st); /* rows committed so far free their segments */
      spool_close(&st->spool, store_spool_closed);
    }
    return;
  }
  for (int t = 0; t < STORE_NTABLES; t++) {
    sync_free(st->sync[t]);
    st->sync[t] = NULL;
  }
  buf_free(&st->scratch);
  buf_free(&st->copy_scratch);
  free(st->marks);
  st->marks = NULL;
  st->nmarks = st->capmarks = 0;
  cb = st->close_cb;
  st->close_cb = NULL;
  for (int t = 0; t < STORE_NTABLES; t++) {
    struct store_batch *b = st->q[t].ready;
    if (b || st->q[t].n_rows)
      log_error("store", "%s: %d rows not written at shutdown", tables[t].name,
                st->q[t].n_held);
    while (b) {
      struct store_batch *n = b->next;
      batch_free(b);
      b = n;
    }
    st->q[t].ready = st->q[t].ready_tail = NULL;
    buf_free(&st->q[t].rows);
    buf_free(&st->q[t].offsets);
  }
  cb(st);
}

static void copy_closed(struct pgcopy *pc) {
  struct store *st = pc->data;
  st->copy_open_--;
  maybe_closed(st);
}

void store_close(struct store *st, void (*cb)(struct store *st)) {
  store_flush(st);
  st->closing = 1;
  st->close_cb = cb;
  if (st->copy_on) {
    for (int t = 0; t < STORE_NTABLES; t++)
      sync_flush(st, (enum store_table)t, 1);
    for (int i = 0; i < STORE_COPY_CONNS; i++)
      pgcopy_close(&st->copy[i], STORE_COPY_CLOSE_MS, copy_closed);
  }
  uv_close((uv_handle_t *)&st->timer, timer_closed);
}
