/*
 * pgcopy.c: COPY ... FROM STDIN jobs on a nonblocking libpq connection
 * driven by uv_poll (through sink/pgconn), one job at a time.
 *
 * A job moves through three phases: COPYIN (the COPY query is sent, the
 * server's CopyInResponse is awaited), RESULT (the rows and CopyDone are
 * queued in libpq's output buffer and flushed as the socket takes them;
 * the command's result is awaited) and END (the result is in; libpq's
 * closing NULL is awaited). libpq grows its output buffer to hold a job's
 * rows, so PQputCopyData never refuses in nonblocking mode; the job size is
 * bounded by the caller (a store batch).
 */
#include "sink/pgcopy.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/decimal.h"
#include "core/err.h"
#include "core/log.h"
#include "sink/pg.h"

enum { PC_INIT = 0, PC_RUNNING, PC_CLOSING, PC_CLOSED };
enum { PH_IDLE = 0, PH_COPYIN, PH_RESULT, PH_END };

/* PQputCopyData takes an int; rows go in pieces of at most this. */
#define PGCOPY_CHUNK ((size_t)1 << 20)

static void link_lost(struct pgcopy *pc, const char *why);
static void finish_close(struct pgcopy *pc);
static void pgcopy_on_io(struct pgconn *conn, int status, int events);

/* ---- COPY binary format ---- */

/* Big-endian writers into reserved room; each returns the end. */
static unsigned char *wr_be16(unsigned char *p, int v) {
  p[0] = (unsigned char)((unsigned)v >> 8);
  p[1] = (unsigned char)v;
  return p + 2;
}

static unsigned char *wr_be32(unsigned char *p, int32_t v) {
  uint32_t u = (uint32_t)v;
  p[0] = (unsigned char)(u >> 24);
  p[1] = (unsigned char)(u >> 16);
  p[2] = (unsigned char)(u >> 8);
  p[3] = (unsigned char)u;
  return p + 4;
}

static unsigned char *wr_be64(unsigned char *p, int64_t v) {
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--, u >>= 8)
    p[i] = (unsigned char)u;
  return p + 8;
}

/* A field is written whole or not at all: room for |n| bytes is reserved
 * first (then *at is where they go), and field_end counts what was
 * written up to |end|. */
static int field_begin(struct buf *b, size_t n, unsigned char **at) {
  int rv = buf_reserve(b, n);
  if (!rv)
    *at = (unsigned char *)b->data + b->len;
  return rv;
}

static int field_end(struct buf *b, const unsigned char *end) {
  b->len = (size_t)((const char *)end - b->data);
  b->data[b->len] = '\0';
  return 0;
}

int pgcopy_bin_begin(struct buf *b) {
  static const char sig[11] = "PGCOPY\n\377\r\n";
  unsigned char *p;
  int rv = field_begin(b, sizeof sig + 8, &p);
  if (rv)
    return rv;
  memcpy(p, sig, sizeof sig);         /* with its NUL */
  p = wr_be32(p + sizeof sig, 0);     /* flags */
  return field_end(b, wr_be32(p, 0)); /* header extension length */
}

static int put_be16(struct buf *b, int v) {
  unsigned char *p;
  int rv = field_begin(b, 2, &p);
  return rv ? rv : field_end(b, wr_be16(p, v));
}

int pgcopy_bin_row(struct buf *b, int nfields) {
  return put_be16(b, nfields);
}

int pgcopy_bin_end(struct buf *b) {
  return put_be16(b, -1);
}

int pgcopy_bin_null(struct buf *b) {
  unsigned char *p;
  int rv = field_begin(b, 4, &p);
  return rv ? rv : field_end(b, wr_be32(p, -1));
}

int pgcopy_bin_text(struct buf *b, const char *s, size_t len) {
  unsigned char *p;
  int rv;
  if (len > INT32_MAX)
    return BL_ETOOBIG;
  if ((rv = field_begin(b, 4 + len, &p)))
    return rv;
  p = wr_be32(p, (int32_t)len);
  memcpy(p, s, len);
  return field_end(b, p + len);
}

int pgcopy_bin_jsonb(struct buf *b, const char *s, size_t len) {
  unsigned char *p;
  int rv;
  if (len >= INT32_MAX)
    return BL_ETOOBIG;
  if ((rv = field_begin(b, 5 + len, &p)))
    return rv;
  p = wr_be32(p, (int32_t)len + 1);
  *p++ = 1; /* jsonb's binary format: version 1, text */
  memcpy(p, s, len);
  return field_end(b, p + len);
}

int pgcopy_bin_i64(struct buf *b, int64_t v) {
  unsigned char *p;
  int rv = field_begin(b, 12, &p);
  return rv ? rv : field_end(b, wr_be64(wr_be32(p, 8), v));
}

int pgcopy_bin_bool(struct buf *b, int v) {
  unsigned char *p;
  int rv = field_begin(b, 5, &p);
  if (rv)
    return rv;
  p = wr_be32(p, 1);
  *p++ = v ? 1 : 0;
  return field_end(b, p);
}

/* Unix epoch milliseconds of 2000-01-01 00:00:00 UTC, PostgreSQL's. */
#define PG_EPOCH_MS INT64_C(946684800000)

int pgcopy_bin_ms(struct buf *b, int64_t ms) {
  if (ms > INT64_MAX / 1000 + PG_EPOCH_MS || ms < INT64_MIN / 1000)
    return BL_EINVAL;
  return pgcopy_bin_i64(b, (ms - PG_EPOCH_MS) * 1000);
}

int pgcopy_numeric_digits(const char *s, size_t len, int16_t *digits,
                          int *ndigits, int *weight, int *negative,
                          int *dscale) {
  /* The decimal point falls on a group boundary: the integer digits are
   * padded on the left and the fraction on the right to groups of 4. */
  char pad[3 * PGCOPY_NUMERIC_MAX_DIGITS * 4];
  size_t n = 0, i = 0, ni, nf = 0, start;
  const char *dot;
  int nd = 0, w, lead;
  if (!dec_valid(s, len))
    return BL_EINVAL;
  *negative = s[0] == '-';
  i = (size_t)*negative;
  dot = memchr(s, '.', len);
  ni = (dot ? (size_t)(dot - s) : len) - i;
  while (ni > 1 && s[i] == '0') { /* leading zeros */
    i++;
    ni--;
  }
  if (ni == 1 && s[i] == '0') {
    i++;
    ni = 0;
  }
  if (dot)
    nf = len - (size_t)(dot - s) - 1;
  lead = (int)((4 - ni % 4) % 4);
  if (ni + (size_t)lead + nf + 3 > sizeof pad)
    return BL_ETOOBIG;
  memset(pad, '0', (size_t)lead);
  n = (size_t)lead;
  memcpy(pad + n, s + i, ni);
  n += ni;
  w = (int)(n / 4) - 1;
  if (nf) {
    memcpy(pad + n, dot + 1, nf);
    n += nf;
  }
  while (n % 4)
    pad[n++] = '0';
  start = 0;
  while (start < n && !memcmp(pad + start, "0000", 4)) { /* leading groups */
    start += 4;
    w--;
  }
  while (n > start && !memcmp(pad + n - 4, "0000", 4)) /* trailing groups */
    n -= 4;
  for (size_t g = start; g < n; g += 4) {
    if (nd == PGCOPY_NUMERIC_MAX_DIGITS)
      return BL_ETOOBIG;
    digits[nd++] = (int16_t)((pad[g] - '0') * 1000 + (pad[g + 1] - '0') * 100 +
                             (pad[g + 2] - '0') * 10 + (pad[g + 3] - '0'));
  }
  if (!nd) {
    w = 0;
    *negative = 0; /* PostgreSQL has no negative zero */
  }
  *ndigits = nd;
  *weight = w;
  *dscale = (int)nf;
  return 0;
}

int pgcopy_bin_numeric(struct buf *b, const char *s, size_t len) {
  int16_t d[PGCOPY_NUMERIC_MAX_DIGITS];
  int nd, w, neg, dscale;
  unsigned char *p;
  int rv = pgcopy_numeric_digits(s, len, d, &nd, &w, &neg, &dscale);
  if (rv || (rv = field_begin(b, 12 + 2 * (size_t)nd, &p)))
    return rv;
  p = wr_be32(p, 8 + 2 * nd);
  p = wr_be16(p, nd);
  p = wr_be16(p, w);
  p = wr_be16(p, neg ? 0x4000 : 0);
  p = wr_be16(p, dscale);
  for (int k = 0; k < nd; k++)
    p = wr_be16(p, d[k]);
  return field_end(b, p);
}

/* ---- jobs ---- */

/* Takes the head job off the queue and hands it its outcome. */
static void job_finish(struct pgcopy *pc, int status, const char *err) {
  struct pgcopy_job *job = pc->head;
  pc->head = job->next;
  if (!pc->head)
    pc->tail = NULL;
  job->next = NULL;
  pc->n_jobs--;
  pc->phase = PH_IDLE;
  job->latency_us = (uv_hrtime() - job->sent_ns_) / 1000;
  if (status == 0) {
    pc->stats.jobs_ok++;
    pc->stats.rows_bytes += job->len;
    job->sqlstate[0] = '\0';
  } else {
    pc->stats.jobs_failed++;
  }
  job->cb(job, status, err); /* may free |job| */
}

/* Fails every held job: the first (in progress, maybe committed) with
 * |first_status|, the others with BL_ECANCELED. The queue is emptied before
 * any callback runs. */
static void fail_all(struct pgcopy *pc, int first_status, const char *why) {
  struct pgcopy_job *list = pc->head;
  int started = pc->phase != PH_IDLE;
  pc->head = pc->tail = NULL;
  pc->n_jobs = 0;
  pc->phase = PH_IDLE;
  while (list) {
    struct pgcopy_job *job = list;
    list = job->next;
    job->next = NULL;
    job->sqlstate[0] = '\0';
    pc->stats.jobs_failed++;
    job->cb(job, started ? first_status : BL_ECANCELED, why);
    started = 0;
  }
}

/* ---- I/O ---- */

static int watch_io(struct pgcopy *pc) {
  int ev = UV_READABLE | (pc->want_write ? UV_WRITABLE : 0);
  return pgconn_watch(&pc->conn, ev, pgcopy_on_io);
}

/* PQflush and adjust the poll; 0, or -1 after the link was dropped. */
static int flush_out(struct pgcopy *pc) {
  int r = PQflush(pc->conn.conn);
  if (r < 0) {
    link_lost(pc, PQerrorMessage(pc->conn.conn));
    return -1;
  }
  pc->want_write = r == 1;
  if (watch_io(pc)) {
    link_lost(pc, "cannot watch the socket");
    return -1;
  }
  return 0;
}

/* Sends the head job's query. 0, or -1 after the link was dropped. */
static int start_job(struct pgcopy *pc) {
  struct pgcopy_job *job = pc->head;
  if (!pc->up || !job || pc->phase != PH_IDLE)
    return 0;
  job->sent_ns_ = uv_hrtime();
  if (job->params) {
    if (!PQsendQueryParams(pc->conn.conn, job->sql, job->nparams, NULL,
                           job->params, NULL, NULL, 0)) {
      link_lost(pc, PQerrorMessage(pc->conn.conn));
      return -1;
    }
    pc->phase = PH_RESULT;
    return flush_out(pc);
  }
  if (!PQsendQuery(pc->conn.conn, job->sql)) {
    link_lost(pc, PQerrorMessage(pc->conn.conn));
    return -1;
  }
  pc->phase = PH_COPYIN;
  return flush_out(pc);
}

/* Queues the head job's rows and CopyDone. 0, or -1 after the link was
 * dropped. */
static int send_rows(struct pgcopy *pc) {
  struct pgcopy_job *job = pc->head;
  size_t off = 0;
  while (off < job->len) {
    size_t n = job->len - off < PGCOPY_CHUNK ? job->len - off : PGCOPY_CHUNK;
    if (PQputCopyData(pc->conn.conn, job->rows + off, (int)n) != 1) {
      link_lost(pc, PQerrorMessage(pc->conn.conn));
      return -1;
    }
    off += n;
  }
  if (PQputCopyEnd(pc->conn.conn, NULL) != 1) {
    link_lost(pc, PQerrorMessage(pc->conn.conn));
    return -1;
  }
  pc->phase = PH_RESULT;
  return flush_out(pc);
}

/* Records a server error on the head job. */
static void note_error(struct pgcopy *pc, PGresult *r, char *err,
                       size_t errlen) {
  const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorMessage(r);
  snprintf(pc->head->sqlstate, sizeof pc->head->sqlstate, "%s", ss ? ss : "");
  snprintf(err, errlen, "%s", msg && *msg ? msg : "COPY failed");
  pgconn_oneline(err);
}

/* Reads every result libpq holds. Returns 0, or -1 after the link was
 * dropped (or the owner closed us from a callback). */
static int process_results(struct pgcopy *pc) {
  char *err = pc->err_;
  size_t errlen = sizeof pc->err_;
  while (pc->conn.conn && pc->head && pc->phase != PH_IDLE &&
         !PQisBusy(pc->conn.conn)) {
    PGresult *r = PQgetResult(pc->conn.conn);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_EMPTY_QUERY;
    if (r && st == PGRES_FATAL_ERROR) {
      const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (PQstatus(pc->conn.conn) == CONNECTION_BAD ||
          pg_sqlstate_is_link_error(ss)) {
        char why[256];
        snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
        PQclear(r);
        link_lost(pc, why);
        return -1;
      }
    }
    switch (pc->phase) {
    case PH_COPYIN:
      if (r && st == PGRES_COPY_IN) {
        PQclear(r);
        if (send_rows(pc))
          return -1;
        continue;
      }
      pc->failed_ = 1;
      if (r)
        note_error(pc, r, err, errlen);
      else
        snprintf(err, errlen, "the server did not start the COPY");
      pc->phase = r ? PH_END : PH_IDLE;
      break;
    case PH_RESULT:
      pc->failed_ = !r || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK);
      if (pc->failed_ && r)
        note_error(pc, r, err, errlen);
      else if (pc->failed_)
        snprintf(err, errlen, "COPY ended without a result");
      pc->phase = r ? PH_END : PH_IDLE;
      break;
    default: /* PH_END: only libpq's closing NULL is expected */
      if (r) {
        PQclear(r);
        continue;
      }
      pc->phase = PH_IDLE;
      break;
    }
    if (r && pc->phase == PH_END) {
      PQclear(r);
      continue;
    }
    /* The job is over (its closing NULL was read). */
    {
      int failed = pc->failed_;
      pc->failed_ = 0;
      job_finish(pc, failed ? BL_EPG : 0, failed ? err : NULL);
    }
    if (!pc->up)
      return -1; /* the owner closed us from the callback */
    if (pc->state == PC_CLOSING && pc->n_jobs == 0) {
      finish_close(pc);
      return -1;
    }
    if (start_job(pc))
      return -1;
  }
  return 0;
}

static void pgcopy_on_io(struct pgconn *conn, int status, int events) {
  struct pgcopy *pc = conn->data;
  if (status < 0 || (events & UV_READABLE)) {
    if (!PQconsumeInput(conn->conn)) {
      link_lost(pc, PQerrorMessage(conn->conn));
      return;
    }
    if (process_results(pc) || !pc->up)
      return;
    if (PQstatus(conn->conn) == CONNECTION_BAD) {
      link_lost(pc, PQerrorMessage(conn->conn));
      return;
    }
  }
  flush_out(pc);
}

static void pgcopy_on_kick(uv_prepare_t *h) {
  struct pgcopy *pc = h->data;
  uv_prepare_stop(h);
  start_job(pc);
}

/* ---- connection life ---- */

static void pgcopy_on_retry(uv_timer_t *t);

static void schedule_reconnect(struct pgcopy *pc) {
  unsigned d;
  if (pc->state != PC_RUNNING)
    return;
  d = pg_backoff_jitter(pc->backoff_ms, pg_backoff_rand(&pc->rng_));
  pc->backoff_ms = pg_backoff_next(pc->backoff_ms, pc->opts.backoff_min_ms,
                                   pc->opts.backoff_max_ms);
  uv_timer_start(&pc->retry, pgcopy_on_retry, d, 0);
}

static void pgcopy_on_connected(struct pgconn *conn, int status) {
  struct pgcopy *pc = conn->data;
  if (status) {
    pc->stats.connect_failures++;
    snprintf(pc->errstr, sizeof pc->errstr, "%s", conn->errstr);
    log_limited(BL_LOG_WARN, "pgcopy", "cannot connect to PostgreSQL: %s",
                conn->errstr);
    schedule_reconnect(pc);
    return;
  }
  if (PQsetnonblocking(conn->conn, 1) != 0) {
    snprintf(pc->errstr, sizeof pc->errstr, "cannot go nonblocking: %s",
             PQerrorMessage(conn->conn));
    pgconn_drop(conn);
    pc->stats.connect_failures++;
    schedule_reconnect(pc);
    return;
  }
  pc->up = 1;
  pc->want_write = 0;
  pc->phase = PH_IDLE;
  pc->backoff_ms = pc->opts.backoff_min_ms;
  pc->stats.connects++;
  if (watch_io(pc)) {
    link_lost(pc, "cannot watch the socket");
    return;
  }
  log_debug("pgcopy", "COPY connection to PostgreSQL ready");
}

static void pgcopy_on_retry(uv_timer_t *t) {
  struct pgcopy *pc = t->data;
  int rv;
  if (pc->conn.state != PGCONN_IDLE || pc->state != PC_RUNNING)
    return;
  rv = pgconn_connect(&pc->conn, pgcopy_on_connected);
  if (rv) {
    snprintf(pc->errstr, sizeof pc->errstr, "cannot start connecting: %s",
             bl_strerror(rv));
    pc->stats.connect_failures++;
    schedule_reconnect(pc);
  }
}

static void link_lost(struct pgcopy *pc, const char *why) {
  char reason[256];
  int was_up = pc->up;
  snprintf(reason, sizeof reason, "%s", why && *why ? why : "link lost");
  pgconn_oneline(reason);
  snprintf(pc->errstr, sizeof pc->errstr, "%s", reason);
  pc->up = 0;
  pc->want_write = 0;
  uv_prepare_stop(&pc->kick);
  pgconn_drop(&pc->conn);
  if (was_up)
    log_limited(BL_LOG_WARN, "pgcopy", "COPY connection lost: %s", reason);
  schedule_reconnect(pc);
  fail_all(pc, BL_EPG, reason);
  if (pc->state == PC_CLOSING)
    finish_close(pc);
}

/* ---- public ---- */

int pgcopy_init(uv_loop_t *loop, struct pgcopy *pc,
                const struct pgcopy_opts *opts) {
  int rv;
  memset(pc, 0, sizeof *pc);
  pc->loop = loop;
  if (opts)
    pc->opts = *opts;
  if (!pc->opts.max_jobs)
    pc->opts.max_jobs = 4;
  if (!pc->opts.backoff_min_ms)
    pc->opts.backoff_min_ms = 100;
  if (!pc->opts.backoff_max_ms)
    pc->opts.backoff_max_ms = 10000;
  if (!pc->opts.conn.application_name)
    pc->opts.conn.application_name = "binance-live-copy";
  pc->backoff_ms = pc->opts.backoff_min_ms;
  pc->rng_ = (uint32_t)uv_hrtime() | 1u;
  if ((rv = pgconn_init(loop, &pc->conn, &pc->opts.conn)))
    return rv;
  pc->conn.data = pc;
  if ((rv = uv_prepare_init(loop, &pc->kick)) ||
      (rv = uv_timer_init(loop, &pc->retry)) ||
      (rv = uv_timer_init(loop, &pc->deadline)))
    return rv;
  pc->kick.data = pc;
  pc->retry.data = pc;
  pc->deadline.data = pc;
  return 0;
}

int pgcopy_start(struct pgcopy *pc) {
  if (pc->state != PC_INIT)
    return BL_ESTATE;
  pc->state = PC_RUNNING;
  uv_timer_start(&pc->retry, pgcopy_on_retry, 0, 0);
  return 0;
}

int pgcopy_submit(struct pgcopy *pc, struct pgcopy_job *job) {
  if (!job || !job->sql || !job->cb || (!job->params && job->len && !job->rows))
    return BL_EINVAL;
  if (pc->state != PC_RUNNING && (pc->state != PC_CLOSING || pc->handles_open))
    return BL_ESTATE; /* closing: only until the held jobs are done */
  if (!pc->up)
    return BL_ECLOSED;
  if (pc->n_jobs >= pc->opts.max_jobs)
    return BL_EFULL;
  job->next = NULL;
  job->sqlstate[0] = '\0';
  job->latency_us = 0;
  if (pc->tail)
    pc->tail->next = job;
  else
    pc->head = job;
  pc->tail = job;
  pc->n_jobs++;
  if (pc->head == job)
    uv_prepare_start(&pc->kick, pgcopy_on_kick);
  return 0;
}

int pgcopy_is_up(const struct pgcopy *pc) {
  return pc->up;
}

unsigned pgcopy_pending(const struct pgcopy *pc) {
  return pc->n_jobs;
}

static void one_closed(struct pgcopy *pc) {
  if (--pc->handles_open == 0) {
    pc->state = PC_CLOSED;
    if (pc->close_cb)
      pc->close_cb(pc);
  }
}

static void handle_closed(uv_handle_t *h) {
  one_closed(h->data);
}

static void conn_closed(struct pgconn *conn) {
  one_closed(conn->data);
}

static void finish_close(struct pgcopy *pc) {
  if (pc->handles_open > 0 || pc->state == PC_CLOSED)
    return; /* already finishing */
  pc->up = 0;
  uv_timer_stop(&pc->retry);
  uv_timer_stop(&pc->deadline);
  uv_prepare_stop(&pc->kick);
  pc->handles_open = 4;
  pgconn_close(&pc->conn, conn_closed); /* poll, then PQfinish */
  uv_close((uv_handle_t *)&pc->kick, handle_closed);
  uv_close((uv_handle_t *)&pc->retry, handle_closed);
  uv_close((uv_handle_t *)&pc->deadline, handle_closed);
  fail_all(pc, BL_ECANCELED, "canceled: the COPY connection is closing");
}

static void pgcopy_on_deadline(uv_timer_t *t) {
  struct pgcopy *pc = t->data;
  if (pc->n_jobs)
    log_warn("pgcopy", "closing with %u COPY jobs unfinished", pc->n_jobs);
  finish_close(pc);
}

void pgcopy_close(struct pgcopy *pc, unsigned timeout_ms, pgcopy_close_cb cb) {
  if (pc->state == PC_CLOSING || pc->state == PC_CLOSED)
    return;
  pc->state = PC_CLOSING;
  pc->close_cb = cb;
  if (pc->n_jobs == 0 || timeout_ms == 0 || !pc->up) {
    finish_close(pc);
    return;
  }
  uv_timer_start(&pc->deadline, pgcopy_on_deadline, timeout_ms, 0);
}
