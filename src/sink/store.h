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
 * With store_opts.copy_conn set, batches of the insert-only tables
 * (tickers, trades, depth snapshots) go first through COPY on their own
 * connections (sink/pgcopy, STORE_COPY_CONNS of them): several times
 * cheaper for the server than the statement. Each symbol belongs to one
 * COPY connection (a hash of its name) and a batch holds one connection's
 * symbols, so a symbol's rows commit in the order they came: the start-up
 * repair looks only above a symbol's newest stored row, and a later batch
 * committing before an earlier one would leave a hole below it. COPY cannot
 * skip a row the table already has, so a COPY the server refuses (a duplicate
 * after a reconnect or a repair overlap, a bad value) or does not confirm (the
 * link dropped) sends its batch through the statement instead, which is the
 * path of record. sync_status is then updated by a separate small statement
 * from the committed rows' newest times per symbol (merged across batches while
 * one is in flight).
 *
 * A batch the server rejects for its data (SQLSTATE class 22 or 23) is
 * split in halves and retried until the bad row stands alone, which is then
 * logged, counted and dropped: one bad row never loses its neighbours.
 * Queues are bounded (store_opts.max_rows per table); a full queue makes
 * store_* return BL_EFULL when no spool is configured.
 *
 * The spool (store_opts.spool_dir set; see sink/spool.h): while PostgreSQL
 * has been down for longer than spool_grace_ms, or a table's queue is at
 * max_rows, new rows are appended to the on-disk spool instead of the
 * queues ("spooling"). Once per outage (pg down past the grace) the store
 * also writes a copy of every row it still holds in memory (batches in
 * flight at pg, held batches, waiting rows; oldest first) so that a kill -9
 * while PostgreSQL is down loses nothing. Those rows are still sent from
 * memory too (pg re-sends its in-flight batches after a reconnect), so
 * they arrive twice, which the idempotent statements absorb. While the
 * spool holds anything, every new row goes behind it, so order is kept.
 * Once pg is up and no older batch waits in memory, replay moves spooled
 * rows into the queues as room allows (bounded by max_rows); when the
 * spool is empty, rows go to the queues directly again. A spool left by an
 * earlier run is replayed first. Rows pg could not write at shutdown go to
 * the spool as well (their copies land behind newer spooled rows: for an
 * open kline that means an older update may be applied again after a
 * newer one until the next update; closed klines are frozen, other tables
 * ignore repeats).
 * A spool segment is deleted only once every row replayed from it is
 * committed (rows are numbered per table as they are queued; a segment is
 * released when each table's oldest uncommitted row is past the last row
 * it gave), so a crash during replay replays it again (duplicates only).
 * Loss window (kill -9, crash): rows accepted during the first
 * spool_grace_ms of an outage before the copy, and the spool's unwritten
 * buffer (a few ms of rows). A clean shutdown keeps everything.
 */
#ifndef BL_SINK_STORE_H
#define BL_SINK_STORE_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "sink/pg.h"
#include "sink/pgcopy.h"
#include "sink/spool.h"

enum store_table {
  STORE_KLINES = 0,
  STORE_TICKERS,
  STORE_TRADES,
  STORE_DEPTH,
  STORE_NTABLES
};

struct store_opts {
  int batch_size;               /* rows per statement; 0: 1000 */
  int flush_interval_ms;        /* 0: 200 */
  int max_rows;                 /* rows held per table; 0: 40 * batch_size */
  const char *spool_dir;        /* NULL: no spool */
  uint64_t spool_max_bytes;     /* 0: 1 GiB */
  uint64_t spool_segment_bytes; /* 0: 64 MiB */
  int spool_grace_ms;           /* pg down this long: spool; 0: 1000 */
  /* Where the COPY connections go (tickers, trades, depth snapshots;
   * STORE_COPY_CONNS of them); NULL: every batch goes through pg's
   * statements. */
  const struct pgconn_opts *copy_conn;
};

struct store_batch;

/* COPY connections. Two let PostgreSQL load one batch while the other waits
 * for its round trips, and use a second core when the server has one. */
#define STORE_COPY_CONNS 2
struct store_sync;

struct store_table_q {
  enum store_table table;
  struct buf rows;       /* packed rows waiting for a batch */
  struct buf offsets;    /* uint32_t start of each waiting row */
  int n_rows;            /* waiting */
  int n_held;            /* waiting + in batches */
  uint64_t first_row_ms; /* uv_now() when the oldest waiting row came */
  uint64_t seq_in;       /* rows ever queued: the next row's number */
  /* built batches held (pg or the COPY connection busy, a retry), oldest
   * first; a newer batch never overtakes them */
  struct store_batch *ready, *ready_tail;
  /* Batches in flight by COPY and by statement. A table never has both:
   * a COPY and a statement inserting the same keys on two connections
   * can deadlock (each waits for the other's uncommitted row). */
  int copy_fly, stmt_fly;
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
  /* spool */
  struct spool spool;
  int spool_on;    /* a spool is configured and open */
  int spooling;    /* new rows go to the spool */
  int spool_open_; /* not yet closed */
  int pg_down;
  int outage_copied; /* this outage's held rows are in the spool */
  uint64_t down_since_ms;
  struct buf scratch;      /* the row being packed */
  struct buf copy_scratch; /* the row order of the COPY being built */
  struct store_batch *fly_head, *fly_tail; /* submitted to pg */
  struct store_mark *marks; /* per spool segment replayed from: the row
                               numbers it reached, oldest first */
  int nmarks, capmarks;
  uint64_t rows_spooled, rows_replayed, spool_refused, spool_episodes;
  /* COPY, on STORE_COPY_CONNS connections. Each symbol's rows always use
   * the same one, so they still commit in order (see store.c). */
  struct pgcopy copy[STORE_COPY_CONNS];
  int copy_on;      /* COPY connections are configured */
  int copy_open_;   /* connections not yet closed */
  int copy_started; /* started once pg was first up */
  struct pg_stmt sync_stmt;
  struct store_sync *sync[STORE_NTABLES]; /* per COPY table */
  uint64_t copy_batches, copy_fallbacks;
};

/* Registers the statements with |pg| (which may still be connecting or
 * not started: rows spool until it first answers) and opens the spool
 * (synchronous directory scan: call before uv_run). Returns 0 or a
 * negative code (BL_EINVAL, UV_E* from the spool directory). */
int store_init(uv_loop_t *loop, struct store *st, struct pg *pg,
               const struct store_opts *opts);

/* Queue one row. |source_rest| selects source 'rest' instead of 'ws'.
 * For a kline, |has_trade_ids| 0 stores NULL first/last trade ids (REST
 * klines do not carry them). Returns 0, BL_EFULL (queue at max_rows and no
 * spool, or the spool is full: the row was NOT taken), BL_ESTATE (closing)
 * or BL_ENOMEM. */
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

/* 1 while rows go to (or are replayed from) the spool. */
int store_spooling(const struct store *st);

/* While spooling, the fraction (0..1) of the spool's in-memory write
 * buffer in use: rows are refused when it is full, so a reader should
 * pause before that. 0 when not spooling. */
double store_spool_fill(const struct store *st);

/* Prometheus families of the store (rows by table, batch latency, queue
 * depths) and of its spool. */
void store_collect(struct buf *out, void *arg);

/* Flushes, waits for the batches in flight (pg_close's deadline bounds
 * that: call pg_close() too when PostgreSQL may be down), puts the rows
 * that were not written into the spool, closes the spool and calls |cb|.
 * Does not close |pg|. */
void store_close(struct store *st, void (*cb)(struct store *st));

const char *store_table_name(enum store_table t);

#endif
