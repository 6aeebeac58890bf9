/*
 * store.h: per-table batching of rows into PostgreSQL through sink/pg.
 *
 * Each table (klines, tickers, trades, depth_snapshots) has a queue of
 * compactly packed rows. A batch leaves when it holds database.batch_size
 * rows or its oldest row has waited database.flush_interval_ms; it travels
 * as ONE prepared statement whose parameters are column arrays
 * (INSERT ... SELECT FROM unnest($1::text[], ...)), which also keeps
 * sync_status.last_data_time current in the same statement. Writes are
 * idempotent: klines are upserted while open and frozen once closed;
 * tickers, trades and snapshots ignore a row they already have.
 *
 * A batch the server rejects for its data (SQLSTATE class 22 or 23) is
 * split in halves and retried until the bad row stands alone, which is then
 * logged, counted and dropped: one bad row never loses its neighbours.
 * Queues are bounded (store_opts.max_rows per table); a full queue makes
 * store_* return BL_EFULL so the caller can spool the row.
 */
#ifndef BL_SINK_STORE_H
#define BL_SINK_STORE_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "sink/pg.h"

enum store_table {
  STORE_KLINES = 0,
  STORE_TICKERS,
  STORE_TRADES,
  STORE_DEPTH,
  STORE_NTABLES
};

struct store_opts {
  int batch_size;        /* rows per statement; 0: 1000 */
  int flush_interval_ms; /* 0: 200 */
  int max_rows;          /* rows held per table; 0: 20 * batch_size */
};

struct store_batch;

struct store_table_q {
  enum store_table table;
  struct buf rows;           /* packed rows waiting for a batch */
  struct buf offsets;        /* uint32_t start of each waiting row */
  int n_rows;                /* waiting */
  int n_held;                /* waiting + in batches */
  uint64_t first_row_ms;     /* uv_now() when the oldest waiting row came */
  struct store_batch *ready; /* built batches pg refused with BL_EFULL */
  /* counters */
  uint64_t rows_in, rows_written, rows_refused, bad_rows, batches;
};

struct store {
  void *data;
  uv_loop_t *loop;
  struct pg *pg;
  struct store_opts opts;
  struct store_table_q q[STORE_NTABLES];
  struct pg_stmt stmts[STORE_NTABLES];
  uv_timer_t timer;
  int timer_open;
  int in_flight;          /* batches submitted to pg */
  uint64_t hold_until_ms; /* after a failed batch: no resend before */
  int closing;
  void (*close_cb)(struct store *st);
  struct metrics_histogram latency; /* seconds per batch, send to commit */
};

/* Registers the statements with |pg| (which may still be connecting).
 * Returns 0 or a negative code. */
int store_init(uv_loop_t *loop, struct store *st, struct pg *pg,
               const struct store_opts *opts);

/* Queue one row. |source_rest| selects source 'rest' instead of 'ws'.
 * For a kline, |has_trade_ids| 0 stores NULL first/last trade ids (REST
 * klines do not carry them). Returns 0, BL_EFULL (queue at max_rows: the
 * row was NOT taken), BL_ESTATE (closing) or BL_ENOMEM. */
int store_kline(struct store *st, const struct ev_kline *k, int source_rest,
                int has_trade_ids);
int store_ticker(struct store *st, const struct ev_ticker *t);
int store_trade(struct store *st, const struct ev_trade *t, int source_rest);
/* |bids_json|, |asks_json|: JSON arrays of [price, qty] strings. */
int store_depth(struct store *st, const char *symbol, int64_t time_ms,
                int64_t last_update_id, const char *bids_json,
                const char *asks_json);

/* Sends every waiting row now (shutdown, tests). */
void store_flush(struct store *st);

/* Rows held (waiting or in flight) in all tables. */
int store_pending(const struct store *st);

/* Prometheus families of the store (rows by table, batch latency, queue
 * depths). */
void store_collect(struct buf *out, void *arg);

/* Flushes, waits for the batches in flight (pg_close's deadline bounds
 * that), and calls |cb|. Does not close |pg|. */
void store_close(struct store *st, void (*cb)(struct store *st));

const char *store_table_name(enum store_table t);

#endif
