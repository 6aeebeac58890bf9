/*
 * pgcopy.h: a plain (not pipelined) PostgreSQL connection that loads rows
 * with COPY ... FROM STDIN, without blocking the loop.
 *
 * COPY is the server's fastest way in: it inserts rows in bulk, several
 * times cheaper per row than INSERT ... SELECT FROM unnest(...). It cannot
 * run in pipeline mode, so sink/store keeps such connections beside sink/pg
 * for the insert-only tables. Jobs run one at a time, each its own
 * transaction: COPY query -> CopyInResponse -> the data -> CopyDone ->
 * result. A job either commits whole or not at all. A job may also be a
 * plain statement with text parameters (the store's sync_status update
 * after its COPYs), so that it follows them on the same connection.
 *
 * pgcopy is an accelerator, not a path of record: it never retries. A job
 * the server refuses (a duplicate key, a bad value), a job in flight when
 * the link drops (it may or may not have committed), a job queued while
 * the link is down and a job canceled at close all come back to their
 * callback with a non-zero status, and the caller sends those rows through
 * its idempotent statements instead. The link reconnects by itself with
 * exponential back-off and jitter.
 *
 * State: the job queue (bounded by pgcopy_opts.max_jobs), the job in
 * progress and its phase, the pgconn, a retry timer and a close deadline.
 */
#ifndef BL_SINK_PGCOPY_H
#define BL_SINK_PGCOPY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "sink/pgconn.h"

struct pgcopy;
struct pgcopy_job;

/* |status|: 0 (committed), BL_EPG (the server refused: job->sqlstate and
 * |err| say why; or the link was lost: sqlstate ""), BL_ECANCELED (the
 * connection is closing or went down before the job started). */
typedef void (*pgcopy_job_cb)(struct pgcopy_job *job, int status,
                              const char *err);

struct pgcopy_job {
  /* Set by the caller; must stay valid until the callback. */
  const char *sql;  /* "COPY t (cols) FROM STDIN", or a statement */
  const char *rows; /* COPY text format, whole lines */
  size_t len;
  /* A statement job (params non-NULL): |sql| runs with these text
   * parameters instead of a COPY (rows and len are ignored). */
  int nparams;
  const char *const *params;
  pgcopy_job_cb cb;
  void *data;

  /* Filled by pgcopy. */
  char sqlstate[6];
  uint64_t latency_us; /* query sent to result */

  /* Private. */
  struct pgcopy_job *next;
  uint64_t sent_ns_;
};

struct pgcopy_opts {
  struct pgconn_opts conn;
  unsigned max_jobs;       /* queued + in progress; 0: 4 */
  unsigned backoff_min_ms; /* 0: 100 */
  unsigned backoff_max_ms; /* 0: 10000 */
};

struct pgcopy_stats {
  uint64_t jobs_ok;
  uint64_t jobs_failed; /* refused, lost or canceled */
  uint64_t rows_bytes;  /* COPY data committed */
  uint64_t connects;
  uint64_t connect_failures;
};

typedef void (*pgcopy_close_cb)(struct pgcopy *pc);

struct pgcopy {
  uv_loop_t *loop;
  void *data; /* the owner's */
  struct pgcopy_opts opts;
  struct pgconn conn;
  uv_prepare_t kick; /* starts the next job outside callers' stacks */
  uv_timer_t retry;
  uv_timer_t deadline;
  int state; /* private */
  int up;
  int phase; /* of the head job; private */
  int want_write;
  struct pgcopy_job *head, *tail; /* head: the job in progress */
  unsigned n_jobs;
  unsigned backoff_ms;
  uint32_t rng_;
  int handles_open;
  pgcopy_close_cb close_cb;
  int failed_;      /* the head job got an error result */
  char err_[512];   /* its message */
  char errstr[256]; /* why the link went down last */
  struct pgcopy_stats stats;
};

/* Prepares |pc| (strings in |opts| must outlive it). Returns 0 or UV_E*. */
int pgcopy_init(uv_loop_t *loop, struct pgcopy *pc,
                const struct pgcopy_opts *opts);

/* Starts connecting (and reconnecting forever). Returns 0 or BL_ESTATE. */
int pgcopy_start(struct pgcopy *pc);

/* Queues |job|; it is sent from a uv_prepare handle, never from inside
 * this call. Returns 0, BL_EFULL (max_jobs held), BL_ECLOSED (the link is
 * down: send the rows another way), BL_EINVAL or BL_ESTATE (closing). On
 * a non-zero return the callback is not called. */
int pgcopy_submit(struct pgcopy *pc, struct pgcopy_job *job);

/* 1 while connected. */
int pgcopy_is_up(const struct pgcopy *pc);

/* Jobs held (queued + in progress). */
unsigned pgcopy_pending(const struct pgcopy *pc);

/* Lets the held jobs finish for up to |timeout_ms| (then they fail with
 * BL_ECANCELED), taking new ones until the queue is empty or the time is
 * up (so a job's callback may still submit its follow-up), then closes
 * the connection and the handles; |cb| runs last. */
void pgcopy_close(struct pgcopy *pc, unsigned timeout_ms, pgcopy_close_cb cb);

/* COPY binary format (FORMAT binary; pure, exposed for tests): the
 * server then converts nothing from text (no numeric or timestamp
 * parsing). A stream is pgcopy_bin_begin, per row pgcopy_bin_row(n) and n
 * fields, then pgcopy_bin_end. pgcopy_bin_ms writes epoch milliseconds as
 * a timestamptz; pgcopy_bin_numeric the exchange's decimal text exactly
 * (digits, weight and display scale as numeric's own binary form; BL_EINVAL
 * if the text is not dec_valid); pgcopy_bin_jsonb JSON text as jsonb. Each
 * returns 0, BL_EINVAL, BL_ETOOBIG, or BL_ENOMEM/BL_ETOOBIG from the
 * buffer's limit. */
int pgcopy_bin_begin(struct buf *b);
int pgcopy_bin_row(struct buf *b, int nfields);
int pgcopy_bin_end(struct buf *b);
int pgcopy_bin_null(struct buf *b);
int pgcopy_bin_text(struct buf *b, const char *s, size_t len);
int pgcopy_bin_jsonb(struct buf *b, const char *s, size_t len);
int pgcopy_bin_i64(struct buf *b, int64_t v);
int pgcopy_bin_bool(struct buf *b, int v);
int pgcopy_bin_ms(struct buf *b, int64_t ms);
int pgcopy_bin_numeric(struct buf *b, const char *s, size_t len);

/* A decimal's base-10000 digits as numeric stores them (at most
 * PGCOPY_NUMERIC_MAX_DIGITS), the weight of the first, the sign and the
 * count of decimals. Returns 0, BL_EINVAL (not dec_valid), BL_ETOOBIG. */
#define PGCOPY_NUMERIC_MAX_DIGITS 16
int pgcopy_numeric_digits(const char *s, size_t len, int16_t *digits,
                          int *ndigits, int *weight, int *negative,
                          int *dscale);

#endif
