/*
 * pg.h: one pipelined PostgreSQL connection (libpq pipeline mode on uv_poll).
 *
 * The caller registers named statements (pg_prepare) and LISTEN channels
 * (pg_listen) once; after every (re)connect they are prepared and listened
 * again before anything else is sent. Work is submitted as caller-owned
 * struct pg_op records naming a prepared statement and its parameters. Each
 * op is sent with its own Sync, so it is its own implicit transaction: an
 * error in one op (a constraint violation, a bad value) fails that op only.
 * Every op's callback runs exactly once, after the op's Sync arrived (i.e.
 * after its transaction committed or failed).
 *
 * pg_submit() never does I/O: ops are queued and sent once per loop
 * iteration from a uv_prepare handle (redis's beforeSleep), so callbacks
 * may submit freely. The number of held ops (queued + in flight) and their
 * parameter bytes are bounded; past a bound pg_submit() returns BL_EFULL and
 * the on_drain callback announces room again.
 *
 * On connection loss every op without its result is put back at the front
 * of the queue in its original order and sent again after the reconnect
 * (the statements are expected to be idempotent upserts), unless the op
 * has PG_OP_NORETRY, in which case it fails with BL_EPG. Reconnects back
 * off exponentially with jitter (100 ms doubling to 10 s by default).
 */
#ifndef BL_SINK_PG_H
#define BL_SINK_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "sink/pgconn.h"

struct pg;
struct pg_op;

/* |status| is 0, BL_EPG (the server refused: |err| is its message,
 * op->sqlstate its SQLSTATE; or, for PG_OP_NORETRY ops, the connection was
 * lost) or BL_ECANCELED (pg_close's deadline passed). |res| is the
 * statement's result on success (PGRES_COMMAND_OK or PGRES_TUPLES_OK), the
 * error result on a server error, NULL otherwise; pg clears it after the
 * callback returns. */
typedef void (*pg_op_cb)(struct pg_op *op, int status, PGresult *res,
                         const char *err);

#define PG_OP_NORETRY 0x1 /* fail instead of re-sending after a lost link */

struct pg_op {
  /* Set by the caller; everything pointed to must stay valid until the
   * callback, since the op may be sent again after a reconnect. */
  const char *stmt; /* a name given to pg_prepare() */
  int nparams;
  const char *const *values;
  const int *lengths; /* binary parameters only; may be NULL */
  const int *formats; /* NULL: all text */
  int result_format;  /* 0 text, 1 binary */
  int flags;          /* PG_OP_* */
  pg_op_cb cb;
  void *data;

  /* Filled by pg. */
  char sqlstate[6];    /* of a server error, else "" */
  uint64_t latency_us; /* send-to-Sync of the last send */

  /* Private. */
  struct pg_op *next;
  const char *sql_; /* internal ops: the text */
  PGresult *res_;
  char *err_;
  size_t bytes_;
  uint64_t sent_ns_;
  int internal_;
  int phase_;
};

struct pg_stmt {
  const char *name;
  const char *sql;
  int nparams;
  const Oid *types; /* may be NULL: the server infers */
  struct pg_op op_;
  struct pg_stmt *next_;
};

struct pg_listen;
typedef void (*pg_notify_cb)(struct pg_listen *l, const char *channel,
                             const char *payload, int be_pid);

struct pg_listen {
  pg_notify_cb cb;
  void *data;
  char channel[64];
  char sql_[160];
  struct pg_op op_;
  struct pg_listen *next_;
};

struct pg_opts {
  struct pgconn_opts conn;
  unsigned max_ops;        /* ops held (queued + in flight); 0: 64 */
  size_t max_bytes;        /* their parameter bytes; 0: 16 MiB */
  unsigned backoff_min_ms; /* 0: 100 */
  unsigned backoff_max_ms; /* 0: 10000 */
};

struct pg_stats {
  uint64_t ops_ok;
  uint64_t ops_failed; /* server errors and canceled ops */
  uint64_t ops_resent; /* ops sent again after a lost connection */
  uint64_t connects;   /* successful connects */
  uint64_t reconnects; /* connects after the first */
  uint64_t connect_failures;
  uint64_t last_latency_us; /* of the last completed op */
  uint64_t latency_sum_us;  /* over ops_ok + ops_failed */
  uint64_t notifications;
  uint64_t write_waits; /* PQflush left data: waited for POLLOUT */
};

typedef void (*pg_state_cb)(struct pg *pg, int up);
typedef void (*pg_drain_cb)(struct pg *pg);
typedef void (*pg_close_cb)(struct pg *pg);

struct pg {
  uv_loop_t *loop;
  void *data; /* the owner's */
  struct pg_opts opts;
  struct pgconn pc;
  uv_prepare_t flusher; /* sends queued ops once per iteration */
  uv_timer_t retry;     /* reconnect back-off */
  uv_timer_t deadline;  /* pg_close's bound */
  int state;
  int up;
  int want_write;
  int full; /* BL_EFULL was returned since the last drain */
  struct pg_op *pend_head, *pend_tail; /* not yet sent */
  struct pg_op *fly_head, *fly_tail;   /* sent, waiting for their Sync */
  unsigned n_ops;                      /* user ops held (both queues) */
  size_t bytes;
  struct pg_stmt *stmts;
  struct pg_listen *listens;
  unsigned backoff_ms;
  int handles_open;
  uint32_t rng_; /* jitter state */
  pg_state_cb on_state;
  pg_drain_cb on_drain;
  pg_close_cb close_cb;
  char errstr[256]; /* why the link went down last */
  struct pg_stats stats;
};

/* Prepares |pg| (strings in |opts| must outlive it). Returns 0 or UV_E*. */
int pg_init(uv_loop_t *loop, struct pg *pg, const struct pg_opts *opts);

/* Optional callbacks: link up/down, and room again after BL_EFULL. */
void pg_set_callbacks(struct pg *pg, pg_state_cb on_state,
                      pg_drain_cb on_drain);

/* Registers a statement (caller-owned, lives as long as |pg|). Allowed at
 * any time; it is prepared at once when connected. Returns 0, BL_EINVAL,
 * BL_ESTATE (closing). */
int pg_prepare(struct pg *pg, struct pg_stmt *st, const char *name,
               const char *sql, int nparams, const Oid *types);

/* Listens on |channel| (at most 63 bytes) after every connect and calls
 * |cb| for each notification. Returns 0, BL_EINVAL, BL_ESTATE. */
int pg_listen(struct pg *pg, struct pg_listen *l, const char *channel,
              pg_notify_cb cb);

/* Starts connecting (and reconnecting forever). Returns 0, BL_ESTATE or a
 * UV_E* code. */
int pg_start(struct pg *pg);

/* Queues |op|. Returns 0, BL_EFULL (over max_ops or max_bytes: keep the
 * op and wait for on_drain), BL_ETOOBIG (the op alone is over max_bytes),
 * BL_EINVAL (no statement or callback) or BL_ESTATE (closing). */
int pg_submit(struct pg *pg, struct pg_op *op);

/* 1 while connected (prepared statements may still be in flight). */
int pg_is_up(const struct pg *pg);

/* Ops held (queued + in flight). */
unsigned pg_pending(const struct pg *pg);

/* Stops accepting ops, waits up to |timeout_ms| for the held ones to
 * finish (they fail with BL_ECANCELED after that), closes the poll, then
 * the connection, then the handles; |cb| runs last. */
void pg_close(struct pg *pg, unsigned timeout_ms, pg_close_cb cb);

/* Pure helpers, exposed for tests. */
/* Next back-off delay after |cur| ms: doubled, at most |max|. */
unsigned pg_backoff_next(unsigned cur, unsigned min, unsigned max);
/* |d| with jitter: a value in [d/2, d] picked with |rnd|. */
unsigned pg_backoff_jitter(unsigned d, uint32_t rnd);
/* The next value of a xorshift32 generator kept in |*state| (jitter). */
uint32_t pg_backoff_rand(uint32_t *state);
/* 1 if an error with |sqlstate| means the session is gone (class 08,
 * 57P01..57P05), not that the op was wrong. */
int pg_sqlstate_is_link_error(const char *sqlstate);
/* Writes "LISTEN "<channel>"" with quotes doubled. Returns 0, BL_EINVAL. */
int pg_listen_sql(const char *channel, char *out, size_t outlen);

#endif
