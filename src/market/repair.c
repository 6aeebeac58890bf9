/*
 * repair.c: completeness (see repair.h).
 *
 * State: per symbol (struct repair_sym) the newest aggTrade id and closed
 * bar seen, the first live id, and the exchange_empty ranges read from or
 * written to data_gaps. Work is a list of jobs, one per range to repair
 * (kline range by open time, or trade range by id, possibly open-ended);
 * at most max_active run at once, the rest wait in FIFO order. A job goes
 * through: read its start from PostgreSQL (start-up only) -> insert its
 * data_gaps row (when its range is known) -> pages over the limiter, each
 * page parsed with rest_parse and written with store_* -> a write barrier
 * -> the data_gaps update and sync_status.
 *
 * Write barrier (rows committed before the gap is marked filled): after
 * the last page, store_flush() turns every waiting row of the table into
 * batch statements submitted to the same struct pg the ledger update goes
 * through. Once the store is not spooling (spooled rows are replayed into
 * the queues before spooling ends) and the table has no waiting row and
 * no batch held back (q->n_rows == 0 and q->ready == NULL, checked every
 * tick until true), the update is submitted: pg runs ops in submission
 * order on its one connection (and resends them in that order after a
 * reconnect), so the batches commit before the update does. The one
 * exception is a batch the server refuses for its data, which store splits
 * and resends later; its good rows then commit just after the update.
 * While the store spools, repairs do not fetch (their rows would only
 * fill the spool).
 *
 * One 50 ms timer runs while anything waits (back-offs, the barrier, ops
 * pg refused because it was full).
 */
#include "market/repair.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binance/rest_parse.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

#define HOUR_MS ((int64_t)3600000)
#define TICK_MS 50
#define MAX_ACTIVE 16
#define MAX_EMPTY 256 /* exchange_empty ranges kept per symbol */
#define RETRY_MIN_MS 30000
#define RETRY_MAX_MS 1800000
#define MAX_JOB_FAILS 10
#define TAIL_GRACE_MS 2000 /* a bar is asked for once closed this long */

enum { T_KLINE = 0, T_TRADE = 1 };
enum { O_STARTUP, O_LIVE, O_RECONNECT };
enum { OUT_PENDING, OUT_FILLED, OUT_EMPTY, OUT_FAILED };
enum {
  P_WAIT,    /* in the waiting queue */
  P_QUERY,   /* reading its start from PostgreSQL */
  P_LEDGER,  /* inserting its data_gaps row */
  P_FETCH,   /* a page is asked for */
  P_PAUSE,   /* waiting (store full, or a failure's back-off) */
  P_BARRIER, /* waiting for its rows to be submitted */
  P_FINISH,  /* the ledger update is in flight */
};
enum {
  S_EMPTY_READ,
  S_KLINE_LAST,
  S_TRADE_LAST,
  S_GAP_INSERT,
  S_GAP_UPDATE,
  S_SYNC_SET,
  S_NSTMTS
};

static const char *const outcome_name[] = {"pending", "filled",
                                           "exchange_empty", "failed"};

#define MS_TO_TS(p) "(timestamptz 'epoch' + (" p ")::int8 * interval '1 ms')"
#define TS_TO_MS(c) "(extract(epoch FROM " c ") * 1000)::int8"

static const struct {
  const char *name, *sql;
  int nparams;
} stmt_defs[S_NSTMTS] = {
    [S_EMPTY_READ] =
        {"bl_repair_empty_read",
         "SELECT data_type, interval, " TS_TO_MS("gap_start") ", " TS_TO_MS(
             "gap_end") ", first_missing_id, last_missing_id FROM data_gaps "
                        "WHERE symbol = $1 AND state = 'exchange_empty' "
                        "ORDER BY id DESC LIMIT 256",
         1},
    [S_KLINE_LAST] =
        {"bl_repair_kline_last",
         "SELECT COALESCE((SELECT " TS_TO_MS(
             "last_data_time") " FROM sync_status WHERE symbol = $1 AND "
                               "data_type = 'kline' AND interval = $2), "
                               "(SELECT " TS_TO_MS(
                                   "max(open_time)") " FROM klines WHERE "
                                                     "symbol = $1 AND "
                                                     "interval = $2 AND "
                                                     "is_closed))",
         2},
    /* The newest stored trade below the first live id ($2): live rows
     * stored before this query runs (spooled while PostgreSQL was down,
     * then replayed) must not hide the gap between the previous run and
     * this one. */
    [S_TRADE_LAST] = {"bl_repair_trade_last",
                      "SELECT agg_trade_id, " TS_TO_MS(
                          "trade_time") " FROM trades WHERE symbol = $1 "
                                        "AND agg_trade_id < $2::bigint "
                                        "ORDER BY agg_trade_id DESC LIMIT 1",
                      2},
    [S_GAP_INSERT] =
        {"bl_repair_gap_insert",
         "INSERT INTO data_gaps (symbol, data_type, interval, gap_start, "
         "gap_end, first_missing_id, last_missing_id, state, rows_filled, "
         "detail, filled_at) VALUES ($1, $2, $3, " MS_TO_TS("$4") ", " MS_TO_TS(
             "$5") ", $6, $7, $8, $9, $10, CASE WHEN $8 "
                   "IN ('filled', 'exchange_empty') THEN "
                   "now() END) RETURNING id",
         10},
    [S_GAP_UPDATE] =
        {"bl_repair_gap_update",
         "UPDATE data_gaps SET state = $2, rows_filled = $3, detail = $4, "
         "filled_at = CASE WHEN $2 IN ('filled', 'exchange_empty') THEN "
         "now() ELSE filled_at END WHERE id = $1",
         4},
    [S_SYNC_SET] =
        {"bl_repair_sync_set",
         "INSERT INTO sync_status AS s (symbol, data_type, interval, status, "
         "last_sync_time, error_message) VALUES ($1, $2, $3, $4, CASE WHEN "
         "$4 = 'ok' THEN now() END, $5) ON CONFLICT (symbol, data_type, "
         "interval) DO UPDATE SET status = EXCLUDED.status, last_sync_time "
         "= COALESCE(EXCLUDED.last_sync_time, s.last_sync_time), "
         "error_message = EXCLUDED.error_message",
         5},
};

struct repair_job {
  struct repair *r;
  struct repair_sym *s;
  struct repair_job *next, *prev;
  int type, iv, origin, phase;
  int64_t from, to;   /* klines: open times; trades: ids (to 0: open) */
  int64_t cursor;     /* next open time or id; trades: 0 = by time */
  int64_t start_time; /* trades by time: the next hour asked */
  int64_t count_from; /* first open time / id counted as repaired */
  int64_t cmp_open;   /* reconnect: the live bar to compare, 0 none */
  int64_t gap_id;     /* data_gaps id, 0 none yet */
  int64_t rows, first_id, last_id;
  int n_fail;
  uint64_t not_before; /* P_PAUSE: uv_now() to go on at */
  int busy;            /* a limiter request or a db op is outstanding */
  int failed;          /* the last attempt failed: finish as 'failed' */
  char detail[400];
  /* the page in progress */
  int64_t now_ms, expect, page_limit;
  int page_rows, page_stop, page_done, page_by_time;
  struct limiter_req req;
};

struct repair_dbop {
  struct pg_op op;
  struct repair *r;
  struct repair_job *job; /* NULL for fire-and-forget ops */
  void (*done)(struct repair_job *job, int status, PGresult *res);
  struct repair_dbop *next;
  const char *vals[10];
  char *text; /* the parameters, NUL-separated */
};

static void job_next_step(struct repair_job *j);
static void maybe_closed(struct repair *r);
static void job_fetch(struct repair_job *j);
static void job_finish(struct repair_job *j);
static void activate(struct repair *r);
static void tick_on(struct repair *r);

/* --- pure helpers ------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static int64_t civil_days(int64_t y, int m) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = floor_div(y, 400);
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_ym(int64_t days, int64_t *y, int *m) {
  int64_t z = days + 719468, era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int64_t repair_bar_start(int64_t iv_ms, int64_t t) {
  if (iv_ms <= 0) {
    int64_t y;
    int m;
    civil_ym(floor_div(t, 86400000), &y, &m);
    return civil_days(y, m) * 86400000;
  }
  if (iv_ms == 7 * 86400000LL) /* weeks open on Monday (1970-01-05) */
    return t -
           (t - 4 * 86400000LL - floor_div(t - 4 * 86400000LL, iv_ms) * iv_ms);
  return floor_div(t, iv_ms) * iv_ms;
}

int64_t repair_bar_next(int64_t iv_ms, int64_t open) {
  int64_t y;
  int m;
  if (iv_ms > 0)
    return open + iv_ms;
  civil_ym(floor_div(open, 86400000), &y, &m);
  if (++m > 12) {
    m = 1;
    y++;
  }
  return civil_days(y, m) * 86400000;
}

int64_t repair_bar_prev(int64_t iv_ms, int64_t open) {
  if (iv_ms > 0)
    return open - iv_ms;
  return repair_bar_start(0, open - 1);
}

int64_t repair_last_closed(int64_t iv_ms, int64_t now_ms) {
  /* The bar holding now is open; the one before it closed at its start
   * minus one ms, which is < now. */
  return repair_bar_prev(iv_ms, repair_bar_start(iv_ms, now_ms));
}

int repair_plan_klines(int64_t iv_ms, int64_t last_open, int64_t now_ms,
                       int max_hours, int64_t *from, int64_t *to) {
  int64_t floor_t = now_ms - (int64_t)max_hours * HOUR_MS, f;
  *to = repair_last_closed(iv_ms, now_ms - TAIL_GRACE_MS);
  f = last_open > 0 ? repair_bar_next(iv_ms, last_open) : 0;
  if (f < floor_t) /* at most max_sync_hours back: the first bar that
                      opens at or after the floor */
  {
    f = repair_bar_start(iv_ms, floor_t);
    if (f < floor_t)
      f = repair_bar_next(iv_ms, f);
  }
  *from = f;
  return f > *to;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the ledger: db ops ------------------------------------------------ */

static void dbop_free(struct repair_dbop *d) {
  free(d->text);
  free(d);
}

static void db_cb(struct pg_op *op, int status, PGresult *res,
                  const char *err) {
  struct repair_dbop *d = op->data;
  struct repair *r = d->r;
  r->n_db--;
  if (status) {
    r->st.ledger_errors++;
    log_limited(BL_LOG_WARN, "repair", "ledger statement %s failed: %s",
                op->stmt, err ? err : bl_strerror(status));
  }
  if (d->job) {
    d->job->busy = 0;
    d->done(d->job, status, res);
  }
  dbop_free(d);
  if (r->closing)
    maybe_closed(r);
}

static void db_try(struct repair *r, struct repair_dbop *d) {
  int rv = pg_submit(r->pg, &d->op);
  if (rv == 0) {
    r->n_db++;
    return;
  }
  if (rv == BL_EFULL) {
    d->next = NULL;
    if (r->db_tail)
      r->db_tail->next = d;
    else
      r->db_head = d;
    r->db_tail = d;
    tick_on(r);
    return;
  }
  log_error("repair", "cannot submit %s: %s", d->op.stmt, bl_strerror(rv));
  r->st.ledger_errors++;
  if (d->job) {
    d->job->busy = 0;
    d->done(d->job, rv, NULL);
  }
  dbop_free(d);
}

/* Submits statement |st| with |n| text parameters (NULL = SQL NULL). */
static void db_exec(struct repair *r, int st, struct repair_job *job,
                    void (*done)(struct repair_job *, int, PGresult *), int n,
                    const char *const *params) {
  struct repair_dbop *d = calloc(1, sizeof *d);
  size_t len = 0, off = 0;
  if (d)
    for (int i = 0; i < n; i++)
      len += params[i] ? strlen(params[i]) + 1 : 0;
  if (!d || !(d->text = malloc(len + 1))) {
    free(d);
    log_error("repair", "out of memory for a ledger statement");
    if (job && done)
      done(job, BL_ENOMEM, NULL);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (!params[i]) {
      d->vals[i] = NULL;
      continue;
    }
    size_t l = strlen(params[i]) + 1;
    memcpy(d->text + off, params[i], l);
    d->vals[i] = d->text + off;
    off += l;
  }
  if (!done)
    job = NULL; /* nothing to tell the job */
  d->r = r;
  d->job = job;
  d->done = done;
  d->op.stmt = stmt_defs[st].name;
  d->op.nparams = n;
  d->op.values = d->vals;
  d->op.cb = db_cb;
  d->op.data = d;
  if (job)
    job->busy = 1;
  db_try(r, d);
}

static const char *type_name(int type) {
  return type == T_KLINE ? "kline" : "trade";
}

static void sync_set(struct repair *r, struct repair_job *j, const char *st,
                     const char *msg) {
  const char *p[5] = {j->s->symbol, type_name(j->type),
                      j->type == T_KLINE ? r->ivname[j->iv] : "", st, msg};
  db_exec(r, S_SYNC_SET, NULL, NULL, 5, p);
}

/* Inserts a data_gaps row; |job| (may be NULL) gets the id. */
static void gap_insert(struct repair *r, struct repair_sym *s, int type, int iv,
                       int64_t a, int64_t b, int outcome, int64_t rows,
                       const char *detail, struct repair_job *job,
                       void (*done)(struct repair_job *, int, PGresult *)) {
  char sa[24], sb[24], sr[24];
  const char *p[10];
  snprintf(sa, sizeof sa, "%" PRId64, a);
  snprintf(sb, sizeof sb, "%" PRId64, b);
  snprintf(sr, sizeof sr, "%" PRId64, rows);
  p[0] = s->symbol;
  p[1] = type_name(type);
  p[2] = type == T_KLINE ? r->ivname[iv] : "";
  p[3] = type == T_KLINE ? sa : NULL;
  p[4] = type == T_KLINE ? sb : NULL;
  p[5] = type == T_TRADE ? sa : NULL;
  p[6] = type == T_TRADE ? sb : NULL;
  p[7] = outcome_name[outcome];
  p[8] = sr;
  p[9] = detail;
  r->st.gaps_detected[type]++;
  if (outcome != OUT_PENDING)
    r->st.outcomes[type][outcome]++;
  db_exec(r, S_GAP_INSERT, job, done, 10, p);
}

static void gap_update(struct repair_job *j, int outcome,
                       void (*done)(struct repair_job *, int, PGresult *)) {
  char sid[24], sr[24];
  const char *p[4] = {sid, outcome_name[outcome], sr, j->detail};
  snprintf(sid, sizeof sid, "%" PRId64, j->gap_id);
  snprintf(sr, sizeof sr, "%" PRId64, j->rows);
  db_exec(j->r, S_GAP_UPDATE, j, done, 4, p);
}

/* --- exchange_empty memory --------------------------------------------- */

static void empty_add(struct repair_sym *s, int ival, int64_t a, int64_t b) {
  if (!s->empty && !(s->empty = calloc(MAX_EMPTY, sizeof *s->empty)))
    return;
  if (s->n_empty == MAX_EMPTY) { /* forget the oldest */
    memmove(s->empty, s->empty + 1, (MAX_EMPTY - 1) * sizeof *s->empty);
    s->n_empty--;
  }
  s->empty[s->n_empty].ival = ival;
  s->empty[s->n_empty].a = a;
  s->empty[s->n_empty].b = b;
  s->n_empty++;
}

/* If |pos| lies in a known empty range, returns that range's end. */
static int empty_covers(const struct repair_sym *s, int ival, int64_t pos,
                        int64_t *end) {
  for (int i = 0; i < s->n_empty; i++)
    if (s->empty[i].ival == ival && s->empty[i].a <= pos &&
        pos <= s->empty[i].b) {
      *end = s->empty[i].b;
      return 1;
    }
  return 0;
}

/* --- jobs -------------------------------------------------------------- */

static void tick_cb(uv_timer_t *t);

static void tick_on(struct repair *r) {
  if (r->timer_open && !uv_is_active((uv_handle_t *)&r->timer))
    uv_timer_start(&r->timer, tick_cb, TICK_MS, TICK_MS);
}

static struct repair_job *job_new(struct repair *r, struct repair_sym *s,
                                  int type, int iv, int origin) {
  struct repair_job *j = calloc(1, sizeof *j);
  if (!j) {
    log_error("repair", "out of memory for a repair of %s", s->symbol);
    return NULL;
  }
  j->r = r;
  j->s = s;
  j->type = type;
  j->iv = iv;
  j->origin = origin;
  j->phase = P_WAIT;
  limiter_req_init(&j->req);
  j->req.data = j;
  return j;
}

static void job_enqueue(struct repair_job *j) {
  struct repair *r = j->r;
  j->next = NULL;
  j->prev = r->waiting_tail;
  if (r->waiting_tail)
    r->waiting_tail->next = j;
  else
    r->waiting_head = j;
  r->waiting_tail = j;
  r->n_waiting++;
  activate(r);
}

static void job_unlink_active(struct repair_job *j) {
  struct repair *r = j->r;
  if (j->prev)
    j->prev->next = j->next;
  else
    r->active = j->next;
  if (j->next)
    j->next->prev = j->prev;
  j->next = j->prev = NULL;
  r->n_active--;
}

static void job_free(struct repair_job *j) {
  limiter_req_free(&j->req);
  free(j);
}

/* The job is over (done, or dropped while closing). */
static void job_end(struct repair_job *j) {
  struct repair *r = j->r;
  job_unlink_active(j);
  job_free(j);
  if (!r->closing)
    activate(r);
  else
    maybe_closed(r);
}

static int job_prio(const struct repair_job *j) {
  struct repair *r = j->r;
  int64_t end;
  if (j->type == T_TRADE)
    return LIMITER_RECENT;
  end = repair_bar_next(r->iv_ms[j->iv], j->to);
  return end >= r->clock_ms() - HOUR_MS ? LIMITER_RECENT : LIMITER_HISTORY;
}

/* A job with a known missing range gets its ledger row first. */
static void ledger_inserted(struct repair_job *j, int status, PGresult *res) {
  if (j->r->closing) {
    job_end(j);
    return;
  }
  if (status == 0 && res && PQntuples(res) == 1)
    j->gap_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  /* Without a ledger row the repair still runs (the row is then written
   * at the end). */
  job_fetch(j);
}

static void job_start_range(struct repair_job *j) {
  struct repair *r = j->r;
  int64_t a = j->count_from, b = j->to;
  sync_set(r, j, "repairing", NULL);
  if ((j->type == T_TRADE && !b) || a > b) {
    /* Open-ended (its ledger row is written at the end, if it found
     * anything), or a reconnect check with nothing missing. */
    job_fetch(j);
    return;
  }
  j->phase = P_LEDGER;
  gap_insert(r, j->s, j->type, j->iv, a, b, OUT_PENDING, 0, NULL, j,
             ledger_inserted);
}

static void kline_last_read(struct repair_job *j, int status, PGresult *res) {
  struct repair *r = j->r;
  int64_t last = 0, from, to;
  if (r->closing) {
    job_end(j);
    return;
  }
  if (status) {
    snprintf(j->detail, sizeof j->detail, "cannot read sync_status");
    j->phase = P_PAUSE;
    j->not_before = uv_now(r->loop) + 1000;
    j->n_fail++;
    tick_on(r);
    return;
  }
  if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  if (repair_plan_klines(r->iv_ms[j->iv], last, r->clock_ms(),
                         r->opts.max_sync_hours, &from, &to)) {
    log_debug("repair", "%s %s: klines complete up to %" PRId64, j->s->symbol,
              r->ivname[j->iv], last);
    if (last > j->s->last_open[j->iv])
      j->s->last_open[j->iv] = last;
    job_end(j);
    return;
  }
  /* A live closed bar newer than the plan's end moves the end. */
  if (j->s->last_open[j->iv] > to)
    to = repair_bar_prev(r->iv_ms[j->iv], j->s->last_open[j->iv]);
  j->from = j->cursor = j->count_from = from;
  j->to = to;
  if (from > to) {
    job_end(j);
    return;
  }
  log_info("repair", "%s %s: repairing klines %" PRId64 "..%" PRId64,
           j->s->symbol, r->ivname[j->iv], from, to);
  job_start_range(j);
}

static void trade_last_read(struct repair_job *j, int status, PGresult *res) {
  struct repair *r = j->r;
  struct repair_sym *s = j->s;
  int64_t last = 0;
  if (r->closing) {
    job_end(j);
    return;
  }
  if (status) {
    j->phase = P_PAUSE;
    j->not_before = uv_now(r->loop) + 1000;
    j->n_fail++;
    tick_on(r);
    return;
  }
  if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
    int64_t floor_t = r->clock_ms() - (int64_t)r->opts.max_sync_hours * HOUR_MS;
    last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (!PQgetisnull(res, 0, 1) &&
        strtoll(PQgetvalue(res, 0, 1), NULL, 10) < floor_t) {
      log_warn("repair",
               "%s: the newest stored trade is older than "
               "sync.max_sync_hours (%d h): trades before that are not "
               "repaired",
               s->symbol, r->opts.max_sync_hours);
      last = 0; /* by time, from the limit */
    }
  }
  if (last > 0) {
    j->from = j->cursor = j->count_from = last + 1;
  } else {
    j->cursor = 0; /* by time, then by id */
    j->start_time = r->clock_ms() - (int64_t)r->opts.max_sync_hours * HOUR_MS;
  }
  if (s->first_live_id)
    j->to = s->first_live_id - 1;
  if (last && last > s->last_trade_id && !s->first_live_id)
    s->last_trade_id = last;
  if (j->to && j->cursor && j->cursor > j->to) {
    job_end(j);
    return;
  }
  /* With no stored trade the range starts at a time and its ids are known
   * only from the first page: its ledger row is written at the end. */
  log_info("repair",
           "%s: repairing trades from %s %" PRId64 " to %" PRId64
           " (0: the first live id)",
           s->symbol, j->cursor ? "id" : "time",
           j->cursor ? j->cursor : j->start_time, j->to);
  if (j->cursor == 0) {
    sync_set(r, j, "repairing", NULL);
    job_fetch(j);
  } else {
    job_start_range(j);
  }
}

/* Starts (or resumes) a job taken from the waiting queue. */
static void job_next_step(struct repair_job *j) {
  struct repair *r = j->r;
  char iv[EV_INTERVAL_MAX];
  if (j->origin == O_STARTUP && j->cursor == 0 && j->start_time == 0 &&
      !j->from) {
    char below[24];
    const char *p[2] = {j->s->symbol, iv};
    const char *pt[2] = {j->s->symbol, below};
    snprintf(iv, sizeof iv, "%s", j->type == T_KLINE ? r->ivname[j->iv] : "");
    snprintf(below, sizeof below, "%" PRId64,
             j->s->first_live_id ? j->s->first_live_id : INT64_MAX);
    j->phase = P_QUERY;
    if (j->type == T_KLINE)
      db_exec(r, S_KLINE_LAST, j, kline_last_read, 2, p);
    else
      db_exec(r, S_TRADE_LAST, j, trade_last_read, 2, pt);
    return;
  }
  job_start_range(j);
}

static void activate(struct repair *r) {
  while (!r->closing && r->waiting_head && r->n_active < r->max_active) {
    struct repair_job *j = r->waiting_head;
    r->waiting_head = j->next;
    if (!r->waiting_head)
      r->waiting_tail = NULL;
    r->n_waiting--;
    j->prev = NULL;
    j->next = r->active;
    if (r->active)
      r->active->prev = j;
    r->active = j;
    r->n_active++;
    job_next_step(j);
  }
}

/* --- pages ------------------------------------------------------------- */

static int cmp_bar(const struct repair_kbar *b, const struct rest_kline *k) {
  return b->close_time != k->close_time || b->trades_count != k->trades_count ||
         strcmp(b->open, k->open) || strcmp(b->high, k->high) ||
         strcmp(b->low, k->low) || strcmp(b->close, k->close) ||
         strcmp(b->volume, k->volume) ||
         strcmp(b->quote_volume, k->quote_volume);
}

static void note_empty(struct repair_job *j, int64_t a, int64_t b) {
  struct repair *r = j->r;
  char detail[96];
  int ival = j->type == T_KLINE ? j->iv : -1;
  int64_t end;
  if (a > b || empty_covers(j->s, ival, a, &end))
    return;
  snprintf(detail, sizeof detail,
           "the exchange returned no %s for this "
           "range",
           j->type == T_KLINE ? "klines" : "trades");
  log_warn("repair",
           "%s %s: the exchange has no data for %" PRId64 "..%" PRId64
           " (recorded as exchange_empty)",
           j->s->symbol, j->type == T_KLINE ? r->ivname[j->iv] : "trades", a,
           b);
  empty_add(j->s, ival, a, b);
  /* The job's own row takes the outcome when the whole job is empty. */
  if (!(a <= j->count_from && (j->to && b >= j->to) && j->rows == 0))
    gap_insert(r, j->s, j->type, j->iv, a, b, OUT_EMPTY, 0, detail, NULL, NULL);
}

static int on_kline_row(void *arg, const struct rest_kline *k) {
  struct repair_job *j = arg;
  struct repair *r = j->r;
  struct ev_kline ev;
  int64_t ivms = r->iv_ms[j->iv];
  int rv;
  if (k->open_time < j->cursor || k->open_time > j->to)
    return 0;
  if (k->close_time >= j->now_ms) { /* not closed yet: not stored */
    j->page_done = 1;
    return 0;
  }
  if (k->open_time > j->expect)
    note_empty(j, j->expect, repair_bar_prev(ivms, k->open_time));
  if (j->cmp_open && k->open_time == j->cmp_open && j->s->has_bar[j->iv] &&
      j->s->last_bar[j->iv].open_time == k->open_time &&
      cmp_bar(&j->s->last_bar[j->iv], k)) {
    r->st.mismatches++;
    log_warn(
        "repair",
        "%s %s bar %" PRId64 ": REST differs from the live closed bar "
        "(close %s vs %s, volume %s vs %s, trades %" PRId64 " vs %" PRId64 ")",
        j->s->symbol, r->ivname[j->iv], k->open_time, k->close,
        j->s->last_bar[j->iv].close, k->volume, j->s->last_bar[j->iv].volume,
        k->trades_count, j->s->last_bar[j->iv].trades_count);
  }
  memset(&ev, 0, sizeof ev);
  snprintf(ev.symbol, sizeof ev.symbol, "%s", j->s->symbol);
  snprintf(ev.interval, sizeof ev.interval, "%s", r->ivname[j->iv]);
  ev.event_time = j->now_ms;
  ev.open_time = k->open_time;
  ev.close_time = k->close_time;
  ev.first_trade_id = ev.last_trade_id = -1;
  ev.trades_count = k->trades_count;
  memcpy(ev.open, k->open, sizeof ev.open);
  memcpy(ev.high, k->high, sizeof ev.high);
  memcpy(ev.low, k->low, sizeof ev.low);
  memcpy(ev.close, k->close, sizeof ev.close);
  memcpy(ev.volume, k->volume, sizeof ev.volume);
  memcpy(ev.quote_volume, k->quote_volume, sizeof ev.quote_volume);
  memcpy(ev.taker_buy_volume, k->taker_buy_volume, sizeof ev.taker_buy_volume);
  memcpy(ev.taker_buy_quote_volume, k->taker_buy_quote_volume,
         sizeof ev.taker_buy_quote_volume);
  ev.is_closed = 1;
  rv = store_kline(r->store, &ev, 1, 0);
  if (rv) {
    if (rv == BL_EFULL)
      r->st.store_full++;
    j->page_stop = rv;
    return 1; /* the cursor stays here: asked again */
  }
  j->page_rows++;
  if (k->open_time >= j->count_from) {
    j->rows++;
    r->st.rows[T_KLINE]++;
  }
  j->expect = repair_bar_next(ivms, k->open_time);
  j->cursor = j->expect;
  return 0;
}

static int on_trade_row(void *arg, const struct rest_agg_trade *t) {
  struct repair_job *j = arg;
  struct repair *r = j->r;
  struct ev_trade ev;
  int rv;
  if (j->cursor && t->agg_trade_id < j->cursor)
    return 0;
  if (j->to && t->agg_trade_id > j->to) {
    j->page_done = 1;
    return 0;
  }
  if (j->cursor && t->agg_trade_id > j->expect)
    note_empty(j, j->expect, t->agg_trade_id - 1);
  memset(&ev, 0, sizeof ev);
  snprintf(ev.symbol, sizeof ev.symbol, "%s", j->s->symbol);
  ev.event_time = t->trade_time;
  ev.agg_trade_id = t->agg_trade_id;
  memcpy(ev.price, t->price, sizeof ev.price);
  memcpy(ev.quantity, t->quantity, sizeof ev.quantity);
  ev.first_trade_id = t->first_trade_id;
  ev.last_trade_id = t->last_trade_id;
  ev.trade_time = t->trade_time;
  ev.is_buyer_maker = t->is_buyer_maker;
  rv = store_trade(r->store, &ev, 1);
  if (rv) {
    if (rv == BL_EFULL)
      r->st.store_full++;
    j->page_stop = rv;
    return 1;
  }
  if (!j->first_id)
    j->first_id = t->agg_trade_id;
  j->last_id = t->agg_trade_id;
  j->page_rows++;
  j->rows++;
  r->st.rows[T_TRADE]++;
  j->cursor = j->expect = t->agg_trade_id + 1;
  if (!j->count_from)
    j->count_from = t->agg_trade_id;
  return 0;
}

static void job_failed(struct repair_job *j, const char *why);

static void page_done(struct limiter_req *req, int result) {
  struct repair_job *j = req->data;
  struct repair *r = j->r;
  struct rest_parse rp;
  struct rest_parse_cbs cbs;
  int rv, full_page, finished = 0;
  j->busy = 0;
  if (result == BL_ECANCELED || r->closing) {
    job_end(j);
    return;
  }
  if (result) {
    char why[320];
    if (result == BL_EHTTP && req->api_code)
      snprintf(why, sizeof why, "HTTP %ld, Binance code %d: %s",
               req->http.status, req->api_code, req->api_msg);
    else
      snprintf(why, sizeof why, "%s", bl_strerror(result));
    job_failed(j, why);
    return;
  }
  memset(&cbs, 0, sizeof cbs);
  cbs.arg = j;
  cbs.on_kline = on_kline_row;
  cbs.on_agg_trade = on_trade_row;
  j->page_rows = 0;
  j->page_stop = 0;
  j->page_done = 0;
  if (rest_parse_init(&rp, NULL)) {
    job_failed(j, "out of memory");
    return;
  }
  rv = rest_parse_body(&rp, j->type == T_KLINE ? REST_KLINES : REST_AGG_TRADES,
                       &cbs, req->http.body.data, req->http.body.len);
  rest_parse_free(&rp);
  if (rv && !(rv == BL_ECANCELED && j->page_stop)) {
    char why[200];
    snprintf(why, sizeof why, "bad response body: %s", bl_strerror(rv));
    r->st.pages_failed++;
    job_failed(j, why);
    return;
  }
  if (j->page_stop) { /* the store is full: wait, then ask again */
    store_flush(r->store);
    j->phase = P_PAUSE;
    j->not_before = uv_now(r->loop) + 200;
    tick_on(r);
    return;
  }
  full_page = j->page_rows >= j->page_limit;
  if (j->type == T_KLINE) {
    if (j->page_done || j->cursor > j->to) {
      finished = 1;
    } else if (!full_page) {
      /* A short page: nothing more up to |to| (endTime bounded it). */
      note_empty(j, j->expect, j->to);
      finished = 1;
    }
  } else if (j->page_by_time && !j->page_rows) {
    /* By time, an empty hour: the next one, up to now. */
    j->start_time += HOUR_MS;
    if (j->start_time > j->now_ms)
      finished = 1;
  } else if (j->page_by_time) {
    j->start_time = 0; /* from now on by id; a short hour is no end */
    if (j->page_done || (j->to && j->cursor > j->to))
      finished = 1;
  } else {
    if (j->page_done || (j->to && j->cursor > j->to)) {
      finished = 1;
    } else if (!full_page) {
      if (j->to) { /* the exchange has nothing up to |to| */
        note_empty(j, j->expect, j->to);
        j->cursor = j->to + 1;
      }
      finished = 1;
    }
  }
  if (finished)
    job_finish(j);
  else
    job_fetch(j);
}

/* Repairs leave the store's queue at least half free for live rows. */
static int store_crowded(const struct repair_job *j) {
  const struct store *st = j->r->store;
  const struct store_table_q *q =
      &st->q[j->type == T_KLINE ? STORE_KLINES : STORE_TRADES];
  /* While the store spools (PostgreSQL away or queues full), repaired
   * rows would only fill the disk: wait. */
  return store_spooling(st) ||
         q->n_held + j->r->opts.batch_size > st->opts.max_rows / 2;
}

static void job_fetch(struct repair_job *j) {
  struct repair *r = j->r;
  struct limiter_req *q = &j->req;
  int64_t limit = r->opts.batch_size, end;
  int rv;
  if (store_crowded(j)) {
    r->st.store_full++;
    j->phase = P_PAUSE;
    j->not_before = uv_now(r->loop) + 100;
    tick_on(r);
    return;
  }
  j->phase = P_FETCH;
  j->now_ms = r->clock_ms();
  q->prio = job_prio(j);
  if (j->type == T_KLINE) {
    int64_t ivms = r->iv_ms[j->iv];
    /* Skip what the exchange is known to have no data for. */
    while (j->cursor <= j->to && empty_covers(j->s, j->iv, j->cursor, &end))
      j->cursor = repair_bar_next(ivms, end);
    if (j->cursor > j->to) {
      job_finish(j);
      return;
    }
    j->expect = j->cursor;
    snprintf(q->path, sizeof q->path, "/api/v3/klines");
    snprintf(q->query, sizeof q->query,
             "symbol=%s&interval=%s&startTime=%" PRId64 "&endTime=%" PRId64
             "&limit=%" PRId64,
             j->s->symbol, r->ivname[j->iv], j->cursor,
             repair_bar_next(ivms, j->to) - 1, limit);
    q->weight = 2;
  } else {
    while (j->cursor && empty_covers(j->s, -1, j->cursor, &end))
      j->cursor = end + 1;
    if (j->to && j->cursor > j->to) {
      job_finish(j);
      return;
    }
    snprintf(q->path, sizeof q->path, "/api/v3/aggTrades");
    j->page_by_time = j->cursor == 0;
    if (j->cursor) {
      if (j->to && j->to - j->cursor + 1 < limit)
        limit = j->to - j->cursor + 1;
      j->expect = j->cursor;
      snprintf(q->query, sizeof q->query,
               "symbol=%s&fromId=%" PRId64 "&limit=%" PRId64, j->s->symbol,
               j->cursor, limit);
    } else {
      snprintf(q->query, sizeof q->query,
               "symbol=%s&startTime=%" PRId64 "&endTime=%" PRId64
               "&limit=%" PRId64,
               j->s->symbol, j->start_time,
               (int64_t)(j->start_time + HOUR_MS - 1), limit);
    }
    q->weight = 4;
  }
  j->page_limit = limit;
  q->cb = page_done;
  q->data = j;
  log_debug("repair", "GET %s?%s", q->path, q->query);
  rv = limiter_submit(r->lim, q);
  if (rv) {
    char why[120];
    snprintf(why, sizeof why, "cannot queue the request: %s", bl_strerror(rv));
    job_failed(j, why);
    return;
  }
  j->busy = 1;
  r->st.requests++;
}

/* --- the end of a job -------------------------------------------------- */

static void finished_update(struct repair_job *j, int status, PGresult *res) {
  (void)status;
  (void)res;
  job_end(j);
}

static void retry_update(struct repair_job *j, int status, PGresult *res) {
  struct repair *r = j->r;
  (void)status;
  (void)res;
  if (r->closing) {
    job_end(j);
    return;
  }
  j->phase = P_PAUSE;
  tick_on(r);
}

static void job_failed(struct repair_job *j, const char *why) {
  struct repair *r = j->r;
  int64_t backoff = RETRY_MIN_MS;
  j->n_fail++;
  for (int i = 1; i < j->n_fail && backoff < RETRY_MAX_MS; i++)
    backoff *= 2;
  if (backoff > RETRY_MAX_MS)
    backoff = RETRY_MAX_MS;
  snprintf(j->detail, sizeof j->detail, "%s", why);
  log_error("repair", "%s %s: repair failed (attempt %d): %s%s", j->s->symbol,
            j->type == T_KLINE ? r->ivname[j->iv] : "trades", j->n_fail, why,
            j->n_fail >= MAX_JOB_FAILS ? "; giving up" : "");
  r->st.outcomes[j->type][OUT_FAILED]++;
  sync_set(r, j, "error", why);
  if (j->n_fail >= MAX_JOB_FAILS) {
    j->failed = 1;
    job_finish(j);
    return;
  }
  j->not_before = uv_now(r->loop) + (uint64_t)backoff;
  if (j->gap_id) {
    j->phase = P_PAUSE;
    gap_update(j, OUT_FAILED, retry_update);
  } else {
    j->phase = P_PAUSE;
    tick_on(r);
  }
}

static void after_barrier(struct repair_job *j) {
  struct repair *r = j->r;
  struct repair_sym *s = j->s;
  int outcome = j->failed ? OUT_FAILED : (j->rows > 0 ? OUT_FILLED : OUT_EMPTY);
  if (j->type == T_KLINE) {
    if (!j->failed && j->to > s->last_open[j->iv])
      s->last_open[j->iv] = j->to;
  } else if (!j->failed) {
    int64_t upto = j->to ? j->to : j->cursor - 1;
    if (upto > s->last_trade_id)
      s->last_trade_id = upto;
  }
  if (!j->failed && outcome == OUT_EMPTY && j->detail[0] == '\0')
    snprintf(j->detail, sizeof j->detail,
             "the exchange returned nothing for this range");
  if (!j->failed && outcome == OUT_FILLED)
    j->detail[0] = '\0';
  if (!j->failed)
    sync_set(r, j, "ok", NULL);
  if (j->gap_id) {
    r->st.outcomes[j->type][outcome]++;
    j->phase = P_FINISH;
    gap_update(j, outcome, finished_update);
  } else if (j->rows > 0 && j->type == T_TRADE) {
    /* An open-ended trade repair: the range is known now. */
    j->phase = P_FINISH;
    gap_insert(r, s, T_TRADE, -1, j->first_id, j->last_id, OUT_FILLED, j->rows,
               NULL, j, finished_update);
  } else {
    job_end(j);
  }
}

/* True once every row of the job's table is in a statement pg holds. */
static int barrier_passed(struct repair_job *j) {
  struct store_table_q *q =
      &j->r->store->q[j->type == T_KLINE ? STORE_KLINES : STORE_TRADES];
  return !store_spooling(j->r->store) && q->n_rows == 0 && q->ready == NULL;
}

static void job_finish(struct repair_job *j) {
  struct repair *r = j->r;
  store_flush(r->store);
  if (barrier_passed(j)) {
    after_barrier(j);
    return;
  }
  j->phase = P_BARRIER;
  tick_on(r);
}

/* --- the timer --------------------------------------------------------- */

static void tick_cb(uv_timer_t *t) {
  struct repair *r = t->data;
  uint64_t now = uv_now(r->loop);
  int waiting = 0;
  /* ops pg refused while full */
  while (r->db_head && !r->closing) {
    struct repair_dbop *d = r->db_head;
    int rv = pg_submit(r->pg, &d->op);
    if (rv == BL_EFULL)
      break;
    r->db_head = d->next;
    if (!r->db_head)
      r->db_tail = NULL;
    if (rv == 0) {
      r->n_db++;
    } else {
      if (d->job) {
        d->job->busy = 0;
        d->done(d->job, rv, NULL);
      }
      dbop_free(d);
    }
  }
  if (r->db_head)
    waiting = 1;
  if (r->closing) {
    maybe_closed(r);
    return;
  }
  for (struct repair_job *j = r->active, *n; j; j = n) {
    n = j->next;
    if (j->busy)
      continue;
    if (j->phase == P_BARRIER) {
      store_flush(r->store);
      if (barrier_passed(j))
        after_barrier(j);
      else
        waiting = 1;
    } else if (j->phase == P_PAUSE) {
      if (now < j->not_before) {
        waiting = 1;
      } else if (j->origin == O_STARTUP && j->from == 0 && j->cursor == 0 &&
                 j->start_time == 0) {
        job_next_step(j); /* the start-up read failed: again */
      } else {
        if (j->gap_id && j->n_fail)
          gap_update(j, OUT_PENDING, NULL);
        job_fetch(j);
      }
    }
  }
  if (!waiting && !r->db_head) {
    int any = 0;
    for (struct repair_job *j = r->active; j; j = j->next)
      if (!j->busy && (j->phase == P_PAUSE || j->phase == P_BARRIER))
        any = 1;
    if (!any)
      uv_timer_stop(&r->timer);
  }
}

/* --- public ------------------------------------------------------------ */

int repair_init(uv_loop_t *loop, struct repair *r,
                const struct repair_opts *opts, struct pg *pg,
                struct limiter *lim, struct store *store) {
  int rv;
  memset(r, 0, sizeof *r);
  if (!opts || opts->n_intervals < 0 ||
      opts->n_intervals > REPAIR_MAX_INTERVALS)
    return BL_EINVAL;
  r->loop = loop;
  r->opts = *opts;
  if (r->opts.batch_size <= 0 || r->opts.batch_size > 1000)
    r->opts.batch_size = 1000;
  if (r->opts.max_sync_hours <= 0)
    r->opts.max_sync_hours = 24;
  r->opts.n_intervals = 0;
  for (int i = 0; i < opts->n_intervals; i++) {
    const char *iv = opts->intervals[i];
    long long ms = config_interval_ms(iv);
    if (!iv || (ms <= 0 && strcmp(iv, "1M") != 0)) {
      log_warn("repair", "interval %s is unknown: not repaired",
               iv ? iv : "(null)");
      continue;
    }
    snprintf(r->ivname[r->opts.n_intervals], EV_INTERVAL_MAX, "%s", iv);
    r->opts.intervals[r->opts.n_intervals] = r->ivname[r->opts.n_intervals];
    r->iv_ms[r->opts.n_intervals] = ms > 0 ? ms : 0; /* 1M: calendar */
    r->opts.n_intervals++;
  }
  r->pg = pg;
  r->lim = lim;
  r->store = store;
  r->max_active = MAX_ACTIVE;
  r->clock_ms = wall_ms;
  strmap_init(&r->syms, 100000);
  for (int i = 0; i < S_NSTMTS; i++) {
    rv = pg_prepare(pg, &r->stmts[i], stmt_defs[i].name, stmt_defs[i].sql,
                    stmt_defs[i].nparams, NULL);
    if (rv)
      return rv;
  }
  rv = uv_timer_init(loop, &r->timer);
  if (rv)
    return rv;
  r->timer.data = r;
  r->timer_open = 1;
  return 0;
}

static struct repair_sym *sym_get(struct repair *r, const char *symbol) {
  return strmap_get(&r->syms, symbol);
}

static void startup_jobs(struct repair *r, struct repair_sym *s) {
  struct repair_job *j;
  if (!r->opts.enabled)
    return;
  if (r->opts.klines)
    for (int i = 0; i < r->opts.n_intervals; i++)
      if ((j = job_new(r, s, T_KLINE, i, O_STARTUP)))
        job_enqueue(j);
  if (r->opts.trades && (j = job_new(r, s, T_TRADE, -1, O_STARTUP)))
    job_enqueue(j);
}

/* Reading a symbol's exchange_empty ranges, before its start-up jobs. */
static void empty_read_done(struct repair_job *jj, int status, PGresult *res) {
  /* |jj| is a stand-in job carrying the symbol; see sym_start. */
  struct repair *r = jj->r;
  struct repair_sym *s = jj->s;
  if (status == 0 && res)
    for (int i = PQntuples(res) - 1; i >= 0; i--) {
      int trade = strcmp(PQgetvalue(res, i, 0), "trade") == 0;
      int ival = -1;
      if (!trade) {
        for (int k = 0; k < r->opts.n_intervals; k++)
          if (strcmp(r->ivname[k], PQgetvalue(res, i, 1)) == 0)
            ival = k;
        if (ival < 0 || PQgetisnull(res, i, 2) || PQgetisnull(res, i, 3))
          continue;
        empty_add(s, ival, strtoll(PQgetvalue(res, i, 2), NULL, 10),
                  strtoll(PQgetvalue(res, i, 3), NULL, 10));
      } else if (!PQgetisnull(res, i, 4) && !PQgetisnull(res, i, 5)) {
        empty_add(s, -1, strtoll(PQgetvalue(res, i, 4), NULL, 10),
                  strtoll(PQgetvalue(res, i, 5), NULL, 10));
      }
    }
  s->state = 2;
  job_unlink_active(jj);
  job_free(jj);
  if (r->closing)
    return;
  if (s->active)
    startup_jobs(r, s);
  activate(r);
}

static void sym_start(struct repair *r, struct repair_sym *s) {
  /* A stand-in job (counted as active) carries the read. */
  struct repair_job *j = job_new(r, s, T_KLINE, 0, O_STARTUP);
  const char *p[1] = {s->symbol};
  if (!j)
    return;
  s->state = 1;
  j->prev = NULL;
  j->next = r->active;
  if (r->active)
    r->active->prev = j;
  r->active = j;
  r->n_active++;
  j->phase = P_QUERY;
  db_exec(r, S_EMPTY_READ, j, empty_read_done, 1, p);
}

int repair_set_symbols(struct repair *r, const char *const *symbols, int n) {
  size_t it = 0;
  const char *k;
  void *v;
  if (r->closing)
    return BL_ESTATE;
  while (strmap_next(&r->syms, &it, &k, &v))
    ((struct repair_sym *)v)->active = 0;
  for (int i = 0; i < n; i++) {
    struct repair_sym *s = sym_get(r, symbols[i]);
    if (!s) {
      int rv;
      if (!(s = calloc(1, sizeof *s)))
        return BL_ENOMEM;
      snprintf(s->symbol, sizeof s->symbol, "%s", symbols[i]);
      if ((rv = strmap_put(&r->syms, s->symbol, s))) {
        free(s);
        return rv;
      }
    }
    s->active = 1;
    if (s->state == 0 && r->opts.enabled)
      sym_start(r, s);
  }
  return 0;
}

static struct repair_job *find_open_trade_job(struct repair *r,
                                              struct repair_sym *s) {
  for (struct repair_job *j = r->active; j; j = j->next)
    if (j->s == s && j->type == T_TRADE && !j->to && j->phase != P_FINISH &&
        j->phase != P_BARRIER)
      return j;
  for (struct repair_job *j = r->waiting_head; j; j = j->next)
    if (j->s == s && j->type == T_TRADE && !j->to)
      return j;
  return NULL;
}

void repair_on_trade(struct repair *r, const struct ev_trade *t) {
  struct repair_sym *s;
  struct repair_job *j;
  int64_t id = t->agg_trade_id;
  if (r->closing || !(s = sym_get(r, t->symbol)))
    return;
  if (!s->first_live_id)
    s->first_live_id = id;
  if ((j = find_open_trade_job(r, s))) {
    /* An open-ended repair (start-up or reconnect) meets the live stream
     * here: it stops just before this id. */
    j->to = id - 1;
    if (id > s->last_trade_id)
      s->last_trade_id = id;
    return;
  }
  if (s->last_trade_id && id > s->last_trade_id + 1 && r->opts.enabled &&
      r->opts.trades && (j = job_new(r, s, T_TRADE, -1, O_LIVE))) {
    j->from = j->cursor = j->count_from = s->last_trade_id + 1;
    j->to = id - 1;
    log_warn("repair",
             "%s: aggTrade ids %" PRId64 "..%" PRId64
             " missing from the live stream; repairing",
             s->symbol, j->from, j->to);
    job_enqueue(j);
  }
  if (id > s->last_trade_id)
    s->last_trade_id = id;
}

static int iv_index(const struct repair *r, const char *iv) {
  for (int i = 0; i < r->opts.n_intervals; i++)
    if (strcmp(r->ivname[i], iv) == 0)
      return i;
  return -1;
}

static int startup_kline_pending(struct repair *r, struct repair_sym *s, int iv,
                                 int64_t open) {
  /* A start-up repair not yet planned or still running covers up to the
   * bar before |open|. */
  for (struct repair_job *j = r->active; j; j = j->next)
    if (j->s == s && j->type == T_KLINE && j->iv == iv &&
        j->origin == O_STARTUP && j->phase != P_BARRIER &&
        j->phase != P_FINISH) {
      int64_t prev = repair_bar_prev(r->iv_ms[iv], open);
      if (j->to && prev > j->to)
        j->to = prev;
      return 1;
    }
  for (struct repair_job *j = r->waiting_head; j; j = j->next)
    if (j->s == s && j->type == T_KLINE && j->iv == iv)
      return 1;
  return s->state < 2;
}

void repair_on_kline(struct repair *r, const struct ev_kline *k) {
  struct repair_sym *s;
  struct repair_kbar *b;
  struct repair_job *j;
  int iv;
  int64_t ivms, last;
  if (r->closing || !k->is_closed || !(s = sym_get(r, k->symbol)) ||
      (iv = iv_index(r, k->interval)) < 0)
    return;
  ivms = r->iv_ms[iv];
  last = s->last_open[iv];
  if (k->open_time <= last && last)
    return; /* a repeat */
  if (last && k->open_time > repair_bar_next(ivms, last) && r->opts.enabled &&
      r->opts.klines && !startup_kline_pending(r, s, iv, k->open_time) &&
      (j = job_new(r, s, T_KLINE, iv, O_LIVE))) {
    j->from = j->cursor = j->count_from = repair_bar_next(ivms, last);
    j->to = repair_bar_prev(ivms, k->open_time);
    log_warn("repair",
             "%s %s: bars %" PRId64 "..%" PRId64
             " missing from the live stream; repairing",
             s->symbol, r->ivname[iv], j->from, j->to);
    job_enqueue(j);
  } else if (!last) {
    startup_kline_pending(r, s, iv, k->open_time);
  }
  s->last_open[iv] = k->open_time;
  b = &s->last_bar[iv];
  b->open_time = k->open_time;
  b->close_time = k->close_time;
  b->trades_count = k->trades_count;
  memcpy(b->open, k->open, sizeof b->open);
  memcpy(b->high, k->high, sizeof b->high);
  memcpy(b->low, k->low, sizeof b->low);
  memcpy(b->close, k->close, sizeof b->close);
  memcpy(b->volume, k->volume, sizeof b->volume);
  memcpy(b->quote_volume, k->quote_volume, sizeof b->quote_volume);
  s->has_bar[iv] = 1;
}

void repair_on_reconnect(struct repair *r, const char *const *symbols, int n) {
  int64_t now;
  if (r->closing || !r->opts.enabled)
    return;
  now = r->clock_ms();
  for (int i = 0; i < n; i++) {
    struct repair_sym *s = sym_get(r, symbols[i]);
    struct repair_job *j;
    if (!s || s->state < 2)
      continue; /* its start-up repair covers it */
    if (r->opts.trades && s->last_trade_id && !find_open_trade_job(r, s) &&
        (j = job_new(r, s, T_TRADE, -1, O_RECONNECT))) {
      j->from = j->cursor = j->count_from = s->last_trade_id + 1;
      j->to = 0; /* up to the first live id after the reconnect */
      job_enqueue(j);
    }
    for (int iv = 0; r->opts.klines && iv < r->opts.n_intervals; iv++) {
      int64_t last = s->last_open[iv], to;
      if (!last)
        continue;
      to = repair_last_closed(r->iv_ms[iv], now - TAIL_GRACE_MS);
      if (to < last)
        continue;
      if (!(j = job_new(r, s, T_KLINE, iv, O_RECONNECT)))
        continue;
      /* From the last bar received live (compared) to the last closed. */
      j->from = j->cursor = j->cmp_open = last;
      j->count_from = repair_bar_next(r->iv_ms[iv], last);
      j->to = to;
      if (j->count_from > to) { /* nothing missing: compare only */
        j->count_from = to + 1;
      }
      job_enqueue(j);
    }
  }
}

int repair_busy(const struct repair *r) {
  return r->n_active > 0 || r->n_waiting > 0;
}

void repair_collect(struct buf *out, void *arg) {
  struct repair *r = arg;
  char lab[96];
  metrics_family(out, "binance_live_gaps_detected_total", "counter",
                 "Gaps found (start-up, live and after reconnects), by type.");
  for (int t = 0; t < 2; t++) {
    snprintf(lab, sizeof lab, "data_type=\"%s\"", type_name(t));
    metrics_sample_u64(out, "binance_live_gaps_detected_total", lab,
                       r->st.gaps_detected[t]);
  }
  metrics_family(out, "binance_live_gaps_total", "counter",
                 "Gap repairs by type and outcome.");
  for (int t = 0; t < 2; t++)
    for (int o = 1; o < 4; o++) {
      snprintf(lab, sizeof lab, "data_type=\"%s\",outcome=\"%s\"", type_name(t),
               outcome_name[o]);
      metrics_sample_u64(out, "binance_live_gaps_total", lab,
                         r->st.outcomes[t][o]);
    }
  metrics_family(out, "binance_live_rows_repaired_total", "counter",
                 "Rows written by REST repair, by type.");
  for (int t = 0; t < 2; t++) {
    snprintf(lab, sizeof lab, "data_type=\"%s\"", type_name(t));
    metrics_sample_u64(out, "binance_live_rows_repaired_total", lab,
                       r->st.rows[t]);
  }
  metrics_family(out, "binance_live_kline_mismatches_total", "counter",
                 "Repaired closed klines that differed from the live ones.");
  metrics_sample_u64(out, "binance_live_kline_mismatches_total", NULL,
                     r->st.mismatches);
  metrics_family(out, "binance_live_repair_jobs", "gauge",
                 "Repairs running and waiting.");
  metrics_sample_u64(out, "binance_live_repair_jobs", "state=\"active\"",
                     (uint64_t)r->n_active);
  metrics_sample_u64(out, "binance_live_repair_jobs", "state=\"waiting\"",
                     (uint64_t)r->n_waiting);
}

static void timer_closed(uv_handle_t *h) {
  struct repair *r = h->data;
  r->timer_open = 0;
  maybe_closed(r);
}

static void maybe_closed(struct repair *r) {
  void (*cb)(struct repair *);
  size_t it = 0;
  const char *k;
  void *v;
  if (r->n_active || r->n_db)
    return;
  if (r->timer_open) {
    if (!uv_is_closing((uv_handle_t *)&r->timer))
      uv_close((uv_handle_t *)&r->timer, timer_closed);
    return;
  }
  if (!(cb = r->close_cb))
    return;
  r->close_cb = NULL;
  while (strmap_next(&r->syms, &it, &k, &v)) {
    struct repair_sym *s = v;
    free(s->empty);
    free(s);
  }
  strmap_free(&r->syms);
  cb(r);
}

void repair_close(struct repair *r, void (*cb)(struct repair *r)) {
  r->closing = 1;
  r->close_cb = cb;
  while (r->waiting_head) {
    struct repair_job *j = r->waiting_head;
    r->waiting_head = j->next;
    job_free(j);
  }
  r->waiting_tail = NULL;
  r->n_waiting = 0;
  while (r->db_head) { /* never submitted */
    struct repair_dbop *d = r->db_head;
    r->db_head = d->next;
    if (d->job)
      d->job->busy = 0;
    dbop_free(d);
  }
  r->db_tail = NULL;
  for (struct repair_job *j = r->active, *n; j; j = n) {
    n = j->next;
    if (j->busy && j->phase == P_FETCH)
      limiter_cancel(&j->req); /* page_done ends it */
    else if (!j->busy)
      job_end(j);
    /* a db op in flight ends it from its callback */
  }
  maybe_closed(r);
}
