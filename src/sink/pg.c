/*
 * pg.c: the pipelined PostgreSQL connection (see pg.h).
 *
 * State kept: two FIFOs of struct pg_op. "pend" holds ops not yet sent (new
 * ones, and ones put back after a lost connection); "fly" holds ops sent
 * and waiting for their Sync, in the order the server answers them. Each op
 * is sent as PQsendQueryPrepared + PQpipelineSync, so the results arrive as
 *
 *   result (COMMAND_OK / TUPLES_OK / FATAL_ERROR), NULL, PIPELINE_SYNC
 *
 * per op (c-stack.md A4): the NULL ends the op's statement, the SYNC (with
 * no NULL after it) ends its transaction, and only then is the op's
 * callback run. Internal ops (PREPARE after connect, LISTEN) use the same
 * FIFO and the same framing; they are dropped, not re-sent, when the link
 * goes down, because the connect path queues them again.
 *
 * The socket is watched through pgconn; writes are coalesced into one
 * PQflush per loop iteration by a uv_prepare handle. Teardown always stops
 * and closes the poll before PQfinish (pgconn_drop).
 */
#include "sink/pg.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

enum { PG_INIT = 0, PG_RUNNING, PG_CLOSING, PG_CLOSED };
enum { PH_QUEUED = 0, PH_RESULT, PH_SYNC };
enum { OP_USER = 0, OP_PREPARE, OP_LISTEN };

#define PG_DEFAULT_MAX_OPS 64
#define PG_DEFAULT_MAX_BYTES (16u << 20)
#define PG_DEFAULT_BACKOFF_MIN 100
#define PG_DEFAULT_BACKOFF_MAX 10000
#define PG_OP_OVERHEAD 32 /* bytes counted per op and per parameter */

static void pg_on_io(struct pgconn *pc, int status, int events);
static void link_lost(struct pg *pg, const char *why);
static void finish_close(struct pg *pg);

/* ---- pure helpers ---- */

unsigned pg_backoff_next(unsigned cur, unsigned min, unsigned max) {
  unsigned n;
  if (cur < min)
    return min;
  n = cur > max / 2 ? max : cur * 2;
  return n > max ? max : n;
}

unsigned pg_backoff_jitter(unsigned d, uint32_t rnd) {
  unsigned half = d / 2;
  if (d == 0)
    return 0;
  return half + (unsigned)(rnd % (d - half + 1));
}

int pg_sqlstate_is_link_error(const char *s) {
  if (!s || strlen(s) != 5)
    return 0;
  if (s[0] == '0' && s[1] == '8')
    return 1; /* connection_exception */
  /* admin_shutdown, crash_shutdown, cannot_connect_now,
   * database_dropped, idle_session_timeout */
  return s[0] == '5' && s[1] == '7' && s[2] == 'P' && s[3] == '0' &&
         s[4] >= '1' && s[4] <= '5';
}

int pg_listen_sql(const char *channel, char *out, size_t outlen) {
  size_t n = 0, len;
  const char *p;
  static const char head[] = "LISTEN \"";
  len = channel ? strlen(channel) : 0;
  if (len == 0 || len > 63 || outlen < sizeof(head) + 2 * len + 2)
    return BL_EINVAL;
  memcpy(out, head, sizeof(head) - 1);
  n = sizeof(head) - 1;
  for (p = channel; *p; p++) {
    if (*p == '"')
      out[n++] = '"';
    out[n++] = *p;
  }
  out[n++] = '"';
  out[n] = '\0';
  return 0;
}

uint32_t pg_backoff_rand(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x ? x : 0x9e3779b9u;
  return *state;
}

/* ---- queues ---- */

static void q_push(struct pg_op **h, struct pg_op **t, struct pg_op *op) {
  op->next = NULL;
  if (*t)
    (*t)->next = op;
  else
    *h = op;
  *t = op;
}

static struct pg_op *q_pop(struct pg_op **h, struct pg_op **t) {
  struct pg_op *op = *h;
  if (!op)
    return NULL;
  *h = op->next;
  if (!*h)
    *t = NULL;
  op->next = NULL;
  return op;
}

static void q_push_front(struct pg_op **h, struct pg_op **t, struct pg_op *op) {
  op->next = *h;
  *h = op;
  if (!*t)
    *t = op;
}

static void op_reset(struct pg_op *op) {
  if (op->res_)
    PQclear(op->res_);
  op->res_ = NULL;
  free(op->err_);
  op->err_ = NULL;
  op->phase_ = PH_QUEUED;
}

static size_t op_bytes(const struct pg_op *op) {
  size_t n = PG_OP_OVERHEAD + strlen(op->stmt);
  int i;
  for (i = 0; i < op->nparams; i++) {
    n += PG_OP_OVERHEAD;
    if (op->formats && op->formats[i] && op->lengths)
      n += op->lengths[i] > 0 ? (size_t)op->lengths[i] : 0;
    else if (op->values && op->values[i])
      n += strlen(op->values[i]);
  }
  return n;
}

/* ---- completion ---- */

static void maybe_drain(struct pg *pg) {
  if (pg->full && pg->state == PG_RUNNING && pg->n_ops < pg->opts.max_ops &&
      pg->bytes < pg->opts.max_bytes) {
    pg->full = 0;
    if (pg->on_drain)
      pg->on_drain(pg);
  }
}

/* Hands a user op its outcome. The op is in no queue. */
static void op_finish(struct pg *pg, struct pg_op *op, int status,
                      const char *err) {
  PGresult *res = op->res_;
  char *own_err = op->err_;
  op->res_ = NULL;
  op->err_ = NULL;
  op->phase_ = PH_QUEUED;
  pg->n_ops--;
  pg->bytes -= op->bytes_;
  if (status == 0)
    pg->stats.ops_ok++;
  else
    pg->stats.ops_failed++;
  if (!err)
    err = own_err;
  if (status == 0)
    op->sqlstate[0] = '\0';
  /* The callback may free or resubmit |op|: it is not touched after. */
  op->cb(op, status, res, err);
  if (res)
    PQclear(res);
  free(own_err);
}

static void internal_done(struct pg *pg, struct pg_op *op) {
  if (op->err_) {
    if (op->internal_ == OP_PREPARE)
      log_limited(BL_LOG_ERROR, "pg", "cannot prepare statement %s: %s",
                  op->stmt, op->err_);
    else
      log_limited(BL_LOG_ERROR, "pg", "%s failed: %s", op->sql_, op->err_);
  }
  (void)pg;
  op_reset(op);
}

/* The op at the head of "fly" got its Sync. */
static void op_synced(struct pg *pg, struct pg_op *op) {
  uint64_t lat = (uv_hrtime() - op->sent_ns_) / 1000;
  if (op->internal_) {
    internal_done(pg, op);
    return;
  }
  op->latency_us = lat;
  pg->stats.last_latency_us = lat;
  pg->stats.latency_sum_us += lat;
  op_finish(pg, op, op->err_ ? BL_EPG : 0, NULL);
  maybe_drain(pg);
  if (pg->state == PG_CLOSING && pg->n_ops == 0)
    finish_close(pg);
}

/* Records an error result on |op| (the first one wins). */
static void op_set_error(struct pg_op *op, PGresult *r, const char *fallback) {
  const char *msg = NULL, *ss = NULL;
  if (op->err_) {
    PQclear(r);
    return;
  }
  if (r) {
    msg = PQresultErrorMessage(r);
    ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  }
  if (!msg || !*msg)
    msg = fallback;
  op->err_ = strdup(msg);
  if (op->err_)
    pgconn_oneline(op->err_);
  snprintf(op->sqlstate, sizeof(op->sqlstate), "%s", ss ? ss : "");
  if (op->res_)
    PQclear(op->res_);
  op->res_ = r;
}

/* ---- results ---- */

static void process_results(struct pg *pg) {
  PGconn *conn;
  while ((conn = pg->pc.conn) != NULL && !PQisBusy(conn)) {
    PGresult *r = PQgetResult(conn);
    struct pg_op *op = pg->fly_head;
    ExecStatusType st;

    if (!r) {
      /* End of the head op's statement; NULL otherwise means idle. */
      if (op && op->phase_ == PH_RESULT) {
        op->phase_ = PH_SYNC;
        continue;
      }
      break;
    }
    st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      if (!op) {
        log_limited(BL_LOG_ERROR, "pg", "sync with no op in flight");
        continue;
      }
      q_pop(&pg->fly_head, &pg->fly_tail);
      op_synced(pg, op);
      continue;
    }
    if (!op) {
      log_limited(BL_LOG_ERROR, "pg", "result %s with no op in flight",
                  PQresStatus(st));
      PQclear(r);
      continue;
    }
    if (st == PGRES_FATAL_ERROR) {
      const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (PQstatus(conn) == CONNECTION_BAD || pg_sqlstate_is_link_error(ss)) {
        char why[256];
        snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
        PQclear(r);
        link_lost(pg, why);
        return;
      }
      op_set_error(op, r, "statement failed");
    } else if (st == PGRES_PIPELINE_ABORTED) {
      op_set_error(op, r, "pipeline aborted by an earlier error");
    } else if (op->err_) {
      PQclear(r);
    } else {
      if (op->res_)
        PQclear(op->res_);
      op->res_ = r;
    }
  }
}

static void process_notifies(struct pg *pg) {
  PGnotify *n;
  while (pg->pc.conn && (n = PQnotifies(pg->pc.conn)) != NULL) {
    struct pg_listen *l, *next;
    pg->stats.notifications++;
    for (l = pg->listens; l; l = next) {
      next = l->next_;
      if (strcmp(l->channel, n->relname) == 0 && l->cb)
        l->cb(l, n->relname, n->extra, n->be_pid);
    }
    PQfreemem(n);
  }
}

/* ---- sending ---- */

static int pg_watch_io(struct pg *pg) {
  int ev = UV_READABLE | (pg->want_write ? UV_WRITABLE : 0);
  return pgconn_watch(&pg->pc, ev, pg_on_io);
}

/* PQflush and adjust the poll; 0, or -1 after the link was dropped. */
static int pg_flush_out(struct pg *pg) {
  int r = PQflush(pg->pc.conn);
  if (r < 0) {
    link_lost(pg, PQerrorMessage(pg->pc.conn));
    return -1;
  }
  pg->want_write = r == 1;
  if (r == 1)
    pg->stats.write_waits++;
  if (pg_watch_io(pg)) {
    link_lost(pg, "cannot watch the socket");
    return -1;
  }
  return 0;
}

/* Sends one op and its Sync. Returns 0, 1 (the op was refused by libpq:
 * its error is recorded) or -1 (the link is broken). */
static int send_one(struct pg *pg, struct pg_op *op) {
  PGconn *conn = pg->pc.conn;
  int ok;
  switch (op->internal_) {
  case OP_PREPARE: {
    struct pg_stmt *st = op->data;
    ok = PQsendPrepare(conn, st->name, st->sql, st->nparams, st->types);
    break;
  }
  case OP_LISTEN:
    ok = PQsendQueryParams(conn, op->sql_, 0, NULL, NULL, NULL, NULL, 0);
    break;
  default:
    ok = PQsendQueryPrepared(conn, op->stmt, op->nparams, op->values,
                             op->lengths, op->formats, op->result_format);
    break;
  }
  if (!ok) {
    if (PQstatus(conn) == CONNECTION_BAD)
      return -1;
    op_set_error(op, NULL, PQerrorMessage(conn));
    return 1;
  }
  if (!PQpipelineSync(conn))
    return -1;
  return 0;
}

static void send_pending(struct pg *pg) {
  struct pg_op *op;
  if (!pg->up || !pg->pc.conn)
    return;
  while ((op = q_pop(&pg->pend_head, &pg->pend_tail)) != NULL) {
    int rv = send_one(pg, op);
    if (rv < 0) {
      q_push_front(&pg->pend_head, &pg->pend_tail, op);
      link_lost(pg, PQerrorMessage(pg->pc.conn));
      return;
    }
    if (rv > 0) {
      if (op->internal_) {
        internal_done(pg, op);
      } else {
        op_finish(pg, op, BL_EPG, NULL);
        if (!pg->up)
          return; /* the callback closed us */
      }
      continue;
    }
    op->phase_ = PH_RESULT;
    op->sent_ns_ = uv_hrtime();
    q_push(&pg->fly_head, &pg->fly_tail, op);
  }
  pg_flush_out(pg);
}

static void pg_on_prepare(uv_prepare_t *h) {
  struct pg *pg = h->data;
  uv_prepare_stop(h);
  send_pending(pg);
  maybe_drain(pg);
}

static void pg_kick(struct pg *pg) {
  if (pg->up && pg->state != PG_CLOSED)
    uv_prepare_start(&pg->flusher, pg_on_prepare);
}

static void pg_on_io(struct pgconn *pc, int status, int events) {
  struct pg *pg = pc->data;
  if (status < 0 || (events & UV_READABLE)) {
    /* A poll error is forwarded to libpq, which reports it (A0.3). */
    if (!PQconsumeInput(pc->conn)) {
      link_lost(pg, PQerrorMessage(pc->conn));
      return;
    }
    process_results(pg);
    if (!pg->up)
      return;
    process_notifies(pg);
    if (!pg->up)
      return;
    if (PQstatus(pc->conn) == CONNECTION_BAD) {
      link_lost(pg, PQerrorMessage(pc->conn));
      return;
    }
  }
  /* Write what is left (or re-arm the poll libuv stopped on an error). */
  pg_flush_out(pg);
}

/* ---- connection life ---- */

static void pg_on_retry(uv_timer_t *t);

static void schedule_reconnect(struct pg *pg) {
  unsigned d;
  if (pg->state != PG_RUNNING && pg->state != PG_CLOSING)
    return;
  d = pg_backoff_jitter(pg->backoff_ms, pg_backoff_rand(&pg->rng_));
  pg->backoff_ms = pg_backoff_next(pg->backoff_ms, pg->opts.backoff_min_ms,
                                   pg->opts.backoff_max_ms);
  uv_timer_start(&pg->retry, pg_on_retry, d, 0);
}

static void pg_on_connected(struct pgconn *pc, int status) {
  struct pg *pg = pc->data;
  PGconn *conn = pc->conn;
  struct pg_stmt *st;
  struct pg_listen *l;
  struct pg_op *h = NULL, *t = NULL;

  if (status) {
    pg->stats.connect_failures++;
    snprintf(pg->errstr, sizeof(pg->errstr), "%s", pc->errstr);
    log_limited(BL_LOG_WARN, "pg", "cannot connect to PostgreSQL: %s",
                pc->errstr);
    schedule_reconnect(pg);
    return;
  }
  if (PQsetnonblocking(conn, 1) != 0 || !PQenterPipelineMode(conn)) {
    snprintf(pg->errstr, sizeof(pg->errstr), "cannot enter pipeline mode: %s",
             PQerrorMessage(conn));
    log_limited(BL_LOG_ERROR, "pg", "%s", pg->errstr);
    pgconn_drop(pc);
    pg->stats.connect_failures++;
    schedule_reconnect(pg);
    return;
  }
  pg->up = 1;
  pg->want_write = 0;
  pg->backoff_ms = pg->opts.backoff_min_ms;
  pg->stats.connects++;
  if (pg->stats.connects > 1)
    pg->stats.reconnects++;
  log_info("pg", "connected to PostgreSQL %s:%d/%s (server %d)",
           pg->opts.conn.host ? pg->opts.conn.host : "(default)",
           pg->opts.conn.port, pg->opts.conn.dbname ? pg->opts.conn.dbname : "",
           PQserverVersion(conn));

  /* Statements and LISTENs go ahead of every queued op. */
  for (st = pg->stmts; st; st = st->next_) {
    op_reset(&st->op_);
    q_push(&h, &t, &st->op_);
  }
  for (l = pg->listens; l; l = l->next_) {
    op_reset(&l->op_);
    q_push(&h, &t, &l->op_);
  }
  if (t) {
    t->next = pg->pend_head;
    pg->pend_head = h;
    if (!pg->pend_tail)
      pg->pend_tail = t;
  }
  if (pg_watch_io(pg)) {
    link_lost(pg, "cannot watch the socket");
    return;
  }
  pg_kick(pg);
  if (pg->on_state)
    pg->on_state(pg, 1);
}

static void do_connect(struct pg *pg) {
  int rv = pgconn_connect(&pg->pc, pg_on_connected);
  if (rv) {
    snprintf(pg->errstr, sizeof(pg->errstr), "cannot start connecting: %s",
             bl_strerror(rv));
    pg->stats.connect_failures++;
    schedule_reconnect(pg);
  }
}

static void pg_on_retry(uv_timer_t *t) {
  struct pg *pg = t->data;
  if (pg->pc.state == PGCONN_IDLE)
    do_connect(pg);
}

/* Drops the connection and puts every unfinished user op back at the front
 * of the queue in its original order (PG_OP_NORETRY ones fail). */
static void link_lost(struct pg *pg, const char *why) {
  struct pg_op *h = NULL, *t = NULL, *fail_h = NULL, *fail_t = NULL, *op;
  int was_up = pg->up;
  char reason[256];

  snprintf(reason, sizeof(reason), "%s", why && *why ? why : "link lost");
  pgconn_oneline(reason);
  snprintf(pg->errstr, sizeof(pg->errstr), "%s", reason);
  pg->up = 0;
  pg->want_write = 0;
  uv_prepare_stop(&pg->flusher);
  pgconn_drop(&pg->pc); /* the poll first, then PQfinish */

  while ((op = q_pop(&pg->fly_head, &pg->fly_tail)) != NULL) {
    if (op->internal_) {
      op_reset(op);
    } else if (op->flags & PG_OP_NORETRY) {
      q_push(&fail_h, &fail_t, op);
    } else {
      op_reset(op);
      pg->stats.ops_resent++;
      q_push(&h, &t, op);
    }
  }
  while ((op = q_pop(&pg->pend_head, &pg->pend_tail)) != NULL) {
    if (op->internal_)
      op_reset(op);
    else
      q_push(&h, &t, op);
  }
  pg->pend_head = h;
  pg->pend_tail = t;

  if (was_up)
    log_limited(BL_LOG_WARN, "pg", "PostgreSQL connection lost: %s", reason);
  schedule_reconnect(pg);
  if (was_up && pg->on_state)
    pg->on_state(pg, 0);
  while ((op = q_pop(&fail_h, &fail_t)) != NULL) {
    char msg[300];
    snprintf(msg, sizeof(msg), "connection lost: %s", reason);
    op_finish(pg, op, BL_EPG, msg);
  }
  if (pg->state == PG_CLOSING && pg->n_ops == 0)
    finish_close(pg);
}

/* ---- public ---- */

int pg_init(uv_loop_t *loop, struct pg *pg, const struct pg_opts *opts) {
  int rv;
  memset(pg, 0, sizeof(*pg));
  pg->loop = loop;
  pg->opts = *opts;
  if (!pg->opts.max_ops)
    pg->opts.max_ops = PG_DEFAULT_MAX_OPS;
  if (!pg->opts.max_bytes)
    pg->opts.max_bytes = PG_DEFAULT_MAX_BYTES;
  if (!pg->opts.backoff_min_ms)
    pg->opts.backoff_min_ms = PG_DEFAULT_BACKOFF_MIN;
  if (!pg->opts.backoff_max_ms)
    pg->opts.backoff_max_ms = PG_DEFAULT_BACKOFF_MAX;
  if (pg->opts.backoff_max_ms < pg->opts.backoff_min_ms)
    pg->opts.backoff_max_ms = pg->opts.backoff_min_ms;
  pg->backoff_ms = pg->opts.backoff_min_ms;
  pg->rng_ = (uint32_t)uv_hrtime() | 1u;

  rv = pgconn_init(loop, &pg->pc, &pg->opts.conn);
  if (rv)
    return rv;
  pg->pc.data = pg;
  uv_prepare_init(loop, &pg->flusher);
  uv_timer_init(loop, &pg->retry);
  uv_timer_init(loop, &pg->deadline);
  pg->flusher.data = pg;
  pg->retry.data = pg;
  pg->deadline.data = pg;
  pg->state = PG_INIT;
  return 0;
}

void pg_set_callbacks(struct pg *pg, pg_state_cb on_state,
                      pg_drain_cb on_drain) {
  pg->on_state = on_state;
  pg->on_drain = on_drain;
}

int pg_prepare(struct pg *pg, struct pg_stmt *st, const char *name,
               const char *sql, int nparams, const Oid *types) {
  struct pg_stmt **pp;
  if (!name || !*name || !sql || nparams < 0)
    return BL_EINVAL;
  if (pg->state != PG_INIT && pg->state != PG_RUNNING)
    return BL_ESTATE;
  memset(st, 0, sizeof(*st));
  st->name = name;
  st->sql = sql;
  st->nparams = nparams;
  st->types = types;
  st->op_.internal_ = OP_PREPARE;
  st->op_.stmt = name;
  st->op_.sql_ = sql;
  st->op_.data = st;
  for (pp = &pg->stmts; *pp; pp = &(*pp)->next_)
    ;
  *pp = st;
  if (pg->up) {
    q_push(&pg->pend_head, &pg->pend_tail, &st->op_);
    pg_kick(pg);
  }
  return 0;
}

int pg_listen(struct pg *pg, struct pg_listen *l, const char *channel,
              pg_notify_cb cb) {
  struct pg_listen **pp;
  if (!cb || !channel)
    return BL_EINVAL;
  if (pg->state != PG_INIT && pg->state != PG_RUNNING)
    return BL_ESTATE;
  memset(l, 0, sizeof(*l));
  if (pg_listen_sql(channel, l->sql_, sizeof(l->sql_)))
    return BL_EINVAL;
  snprintf(l->channel, sizeof(l->channel), "%s", channel);
  l->cb = cb;
  l->op_.internal_ = OP_LISTEN;
  l->op_.stmt = "";
  l->op_.sql_ = l->sql_;
  l->op_.data = l;
  for (pp = &pg->listens; *pp; pp = &(*pp)->next_)
    ;
  *pp = l;
  if (pg->up) {
    q_push(&pg->pend_head, &pg->pend_tail, &l->op_);
    pg_kick(pg);
  }
  return 0;
}

int pg_start(struct pg *pg) {
  if (pg->state != PG_INIT)
    return BL_ESTATE;
  pg->state = PG_RUNNING;
  do_connect(pg);
  return 0;
}

int pg_submit(struct pg *pg, struct pg_op *op) {
  size_t bytes;
  if (pg->state != PG_INIT && pg->state != PG_RUNNING)
    return BL_ESTATE;
  if (!op->stmt || !op->cb || op->nparams < 0 ||
      (op->nparams > 0 && !op->values))
    return BL_EINVAL;
  bytes = op_bytes(op);
  if (bytes > pg->opts.max_bytes)
    return BL_ETOOBIG;
  if (pg->n_ops >= pg->opts.max_ops || pg->bytes + bytes > pg->opts.max_bytes) {
    pg->full = 1;
    return BL_EFULL;
  }
  op->res_ = NULL;
  op->err_ = NULL;
  op->sql_ = NULL;
  op->internal_ = OP_USER;
  op->phase_ = PH_QUEUED;
  op->bytes_ = bytes;
  op->sqlstate[0] = '\0';
  q_push(&pg->pend_head, &pg->pend_tail, op);
  pg->n_ops++;
  pg->bytes += bytes;
  pg_kick(pg);
  return 0;
}

int pg_is_up(const struct pg *pg) {
  return pg->up;
}

unsigned pg_pending(const struct pg *pg) {
  return pg->n_ops;
}

static void pg_maybe_closed(struct pg *pg) {
  if (--pg->handles_open == 0) {
    pg->state = PG_CLOSED;
    if (pg->close_cb)
      pg->close_cb(pg);
  }
}

static void pg_handle_closed(uv_handle_t *h) {
  pg_maybe_closed(h->data);
}

static void pg_conn_closed(struct pgconn *pc) {
  pg_maybe_closed(pc->data);
}

static void finish_close(struct pg *pg) {
  struct pg_op *h = NULL, *t = NULL, *op;
  if (pg->handles_open > 0 || pg->state == PG_CLOSED)
    return; /* already finishing */
  pg->up = 0;
  uv_timer_stop(&pg->retry);
  uv_timer_stop(&pg->deadline);
  uv_prepare_stop(&pg->flusher);
  while ((op = q_pop(&pg->fly_head, &pg->fly_tail)) != NULL) {
    if (op->internal_)
      op_reset(op);
    else
      q_push(&h, &t, op);
  }
  while ((op = q_pop(&pg->pend_head, &pg->pend_tail)) != NULL) {
    if (op->internal_)
      op_reset(op);
    else
      q_push(&h, &t, op);
  }
  pg->handles_open = 4;
  pgconn_close(&pg->pc, pg_conn_closed); /* poll, then PQfinish */
  uv_close((uv_handle_t *)&pg->flusher, pg_handle_closed);
  uv_close((uv_handle_t *)&pg->retry, pg_handle_closed);
  uv_close((uv_handle_t *)&pg->deadline, pg_handle_closed);
  while ((op = q_pop(&h, &t)) != NULL)
    op_finish(pg, op, BL_ECANCELED, "canceled: the connection is closing");
}

static void pg_on_deadline(uv_timer_t *t) {
  struct pg *pg = t->data;
  if (pg->n_ops)
    log_warn("pg", "closing with %u ops unfinished", pg->n_ops);
  finish_close(pg);
}

void pg_close(struct pg *pg, unsigned timeout_ms, pg_close_cb cb) {
  if (pg->state == PG_CLOSING || pg->state == PG_CLOSED)
    return;
  pg->state = PG_CLOSING;
  pg->close_cb = cb;
  if (pg->n_ops == 0 || timeout_ms == 0) {
    finish_close(pg);
    return;
  }
  uv_timer_start(&pg->deadline, pg_on_deadline, timeout_ms, 0);
}
