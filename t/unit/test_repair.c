/*
 * test_repair.c: unit tests for market/repair's I/O-free parts: bar
 * arithmetic (1M by the calendar, 1w from Monday), start-up range
 * planning, gap detection on live trades and klines, open-ended repairs
 * bounded by the first live id, paging of klines with a short page that
 * records an exchange_empty range, and skipping a remembered empty range.
 * The repair runs on a pg that is never started and a limiter whose
 * requests are never sent: ops and requests only queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/market/repair.c"

#define MINUTE ((int64_t)60000)
#define DAY ((int64_t)86400000)
/* 2024-01-01T00:00:00Z (a Monday) */
#define T2024 ((int64_t)1704067200000)

static int64_t fixed_now = T2024 + 10 * DAY + 12 * (int64_t)3600000 + 30000;
static int64_t fake_clock(void) {
  return fixed_now;
}

struct fx {
  uv_loop_t loop;
  struct pg pg;
  struct store st;
  struct http http;
  struct limiter lim;
  struct repair r;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  struct pg_opts po;
  struct repair_opts ro;
  memset(&po, 0, sizeof po);
  po.conn.host = "127.0.0.1";
  po.conn.port = 1;
  memset(&ro, 0, sizeof ro);
  ro.enabled = 1;
  ro.max_sync_hours = 24;
  ro.batch_size = 5;
  ro.klines = ro.trades = 1;
  ro.intervals[0] = "1m";
  ro.intervals[1] = "1M";
  ro.n_intervals = 2;
  uv_loop_init(&f->loop);
  assert_int_equal(pg_init(&f->loop, &f->pg, &po), 0);
  assert_int_equal(store_init(&f->loop, &f->st, &f->pg, NULL), 0);
  assert_int_equal(http_init(&f->loop, &f->http, NULL), 0);
  assert_int_equal(
      limiter_init(&f->loop, &f->lim, &f->http, "http://127.0.0.1:1", 6000, 2),
      0);
  assert_int_equal(repair_init(&f->loop, &f->r, &ro, &f->pg, &f->lim, &f->st),
                   0);
  f->r.clock_ms = fake_clock;
  *state = f;
  return 0;
}

static void closed_http(struct http *h) {
  (void)h;
}
static void closed_lim(struct limiter *l) {
  struct fx *f = l->data;
  http_close(&f->http, closed_http);
}
static void closed_rep(struct repair *r) {
  struct fx *f = r->data;
  limiter_close(&f->lim, closed_lim);
}
static void closed_store(struct store *s) {
  struct fx *f = s->data;
  repair_close(&f->r, closed_rep);
}
static void closed_pg(struct pg *p) {
  struct fx *f = p->data;
  store_close(&f->st, closed_store);
}

static void show_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "left open: %s %p closing=%d\n", uv_handle_type_name(h->type),
          (void *)h, uv_is_closing(h));
}

/* The pg never connects: it is closed first, which fails every op held
 * (the repair, already closing, ends the jobs waiting for them). */
static int teardown(void **state) {
  struct fx *f = *state;
  int rv;
  f->r.data = f->lim.data = f->st.data = f->pg.data = f;
  f->r.closing = 1;
  pg_close(&f->pg, 0, closed_pg);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(&f->loop);
  if (rv) {
    uv_walk(&f->loop, show_handle, NULL);
    fprintf(stderr, "repair: active %d waiting %d db %d timer %d\n",
            f->r.n_active, f->r.n_waiting, f->r.n_db, f->r.timer_open);
  }
  assert_int_equal(rv, 0);
  free(f);
  return 0;
}

/* A symbol as after its start-up: ready, with no job. */
static struct repair_sym *ready_sym(struct fx *f, const char *name) {
  struct repair_sym *s = calloc(1, sizeof *s);
  snprintf(s->symbol, sizeof s->symbol, "%s", name);
  s->active = 1;
  s->state = 2;
  assert_int_equal(strmap_put(&f->r.syms, s->symbol, s), 0);
  return s;
}

static struct repair_job *only_job(struct fx *f) {
  struct repair_job *j = f->r.active ? f->r.active : f->r.waiting_head;
  assert_non_null(j);
  return j;
}

static int n_jobs(struct fx *f) {
  return f->r.n_active + f->r.n_waiting;
}

static void bars(void **state) {
  (void)state;
  /* minutes */
  assert_true(repair_bar_start(MINUTE, T2024 + 59999) == T2024);
  assert_true(repair_bar_next(MINUTE, T2024) == T2024 + MINUTE);
  assert_true(repair_bar_prev(MINUTE, T2024) == T2024 - MINUTE);
  assert_true(repair_last_closed(MINUTE, T2024 + 30000) == T2024 - MINUTE);
  assert_true(repair_last_closed(MINUTE, T2024 + MINUTE) == T2024);
  /* weeks open on Monday: 2024-01-10 (Wednesday) is in the week of 01-08 */
  assert_true(repair_bar_start(7 * DAY, T2024 + 9 * DAY) == T2024 + 7 * DAY);
  assert_true(repair_bar_start(7 * DAY, T2024) == T2024);
  /* months by the calendar */
  assert_true(repair_bar_start(0, T2024 + 40 * DAY) == T2024 + 31 * DAY);
  assert_true(repair_bar_next(0, T2024) == T2024 + 31 * DAY); /* Feb 1 */
  assert_true(repair_bar_next(0, T2024 + 31 * DAY) ==
              T2024 + 60 * DAY); /* 2024 is a leap year: Mar 1 */
  assert_true(repair_bar_prev(0, T2024 + 60 * DAY) == T2024 + 31 * DAY);
  assert_true(repair_bar_prev(0, T2024) == T2024 - 31 * DAY); /* Dec 2023 */
  assert_true(repair_bar_next(0, T2024 - 31 * DAY) == T2024);
  assert_true(repair_last_closed(0, T2024 + 45 * DAY) == T2024);
  /* before 1970 still floors */
  assert_true(repair_bar_start(MINUTE, -1) == -MINUTE);
}

static void planning(void **state) {
  int64_t from, to, now = T2024 + 12 * (int64_t)3600000 + 30000;
  (void)state;
  /* nothing stored: max_sync_hours back, up to the last closed bar */
  assert_int_equal(repair_plan_klines(MINUTE, 0, now, 2, &from, &to), 0);
  assert_true(from == T2024 + 10 * (int64_t)3600000 + MINUTE);
  assert_true(to == T2024 + 12 * (int64_t)3600000 - MINUTE);
  /* from the bar after the stored one */
  assert_int_equal(repair_plan_klines(MINUTE, T2024 + 11 * (int64_t)3600000,
                                      now, 2, &from, &to),
                   0);
  assert_true(from == T2024 + 11 * (int64_t)3600000 + MINUTE);
  /* a stored bar older than the cap: the cap wins */
  assert_int_equal(repair_plan_klines(MINUTE, T2024, now, 2, &from, &to), 0);
  assert_true(from == T2024 + 10 * (int64_t)3600000 + MINUTE);
  /* the last closed bar is stored: nothing to do */
  assert_int_equal(repair_plan_klines(MINUTE,
                                      T2024 + 12 * (int64_t)3600000 - MINUTE,
                                      now, 2, &from, &to),
                   1);
  /* 1M over 70 days: from the first month opening after the cap */
  assert_int_equal(
      repair_plan_klines(0, 0, T2024 + 70 * DAY, 70 * 24, &from, &to), 0);
  assert_true(from == T2024 && to == T2024 + 31 * DAY);
}

static struct ev_trade trade(const char *sym, int64_t id) {
  struct ev_trade t;
  memset(&t, 0, sizeof t);
  snprintf(t.symbol, sizeof t.symbol, "%s", sym);
  t.agg_trade_id = id;
  return t;
}

static void trade_gaps(void **state) {
  struct fx *f = *state;
  struct repair_sym *s = ready_sym(f, "BTCUSDT");
  struct ev_trade t;
  struct repair_job *j;
  t = trade("BTCUSDT", 100);
  repair_on_trade(&f->r, &t); /* the first: nothing to compare */
  assert_int_equal(n_jobs(f), 0);
  t = trade("BTCUSDT", 101);
  repair_on_trade(&f->r, &t);
  t = trade("BTCUSDT", 101); /* a repeat */
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 0);
  t = trade("BTCUSDT", 105);
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 1);
  j = only_job(f);
  assert_int_equal(j->type, T_TRADE);
  assert_true(j->from == 102 && j->to == 104 && j->count_from == 102);
  assert_int_equal(j->phase, P_LEDGER); /* its data_gaps row first */
  assert_true(s->last_trade_id == 105);
  assert_int_equal(f->r.st.gaps_detected[T_TRADE], 1);
  /* an older id (out of order) opens nothing */
  t = trade("BTCUSDT", 90);
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 1);
  /* unknown symbols are ignored */
  t = trade("XUSDT", 7);
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 1);
}

static void open_ended_meets_live(void **state) {
  struct fx *f = *state;
  struct repair_sym *s = ready_sym(f, "ETHUSDT");
  const char *syms[1] = {"ETHUSDT"};
  struct ev_trade t;
  struct repair_job *j;
  s->last_trade_id = 1000;
  repair_on_reconnect(&f->r, syms, 1);
  assert_int_equal(n_jobs(f), 1);
  j = only_job(f);
  assert_true(j->from == 1001 && j->to == 0);
  t = trade("ETHUSDT", 1500);
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 1); /* no second job: the open one is bounded */
  assert_true(j->to == 1499);
  t = trade("ETHUSDT", 1503);
  repair_on_trade(&f->r, &t);
  assert_int_equal(n_jobs(f), 2); /* a live gap after that is its own */
}

static struct ev_kline kline(const char *iv, int64_t open, int closed) {
  struct ev_kline k;
  memset(&k, 0, sizeof k);
  snprintf(k.symbol, sizeof k.symbol, "BTCUSDT");
  snprintf(k.interval, sizeof k.interval, "%s", iv);
  k.open_time = open;
  k.close_time = repair_bar_next(strcmp(iv, "1M") ? MINUTE : 0, open) - 1;
  k.is_closed = closed;
  snprintf(k.close, sizeof k.close, "1.0");
  return k;
}

static void kline_gaps(void **state) {
  struct fx *f = *state;
  struct repair_sym *s = ready_sym(f, "BTCUSDT");
  struct ev_kline k;
  struct repair_job *j;
  k = kline("1m", T2024, 1);
  repair_on_kline(&f->r, &k);
  k = kline("1m", T2024 + MINUTE, 1);
  repair_on_kline(&f->r, &k);
  k = kline("1m", T2024 + 5 * MINUTE, 0); /* open bars are not checked */
  repair_on_kline(&f->r, &k);
  assert_int_equal(n_jobs(f), 0);
  k = kline("1m", T2024 + 4 * MINUTE, 1);
  repair_on_kline(&f->r, &k);
  assert_int_equal(n_jobs(f), 1);
  j = only_job(f);
  assert_true(j->type == T_KLINE && j->iv == 0);
  assert_true(j->from == T2024 + 2 * MINUTE && j->to == T2024 + 3 * MINUTE);
  assert_true(s->last_open[0] == T2024 + 4 * MINUTE);
  assert_true(s->has_bar[0] && s->last_bar[0].open_time == T2024 + 4 * MINUTE);
  /* months: January then April closes: February and March are missing */
  k = kline("1M", T2024, 1);
  repair_on_kline(&f->r, &k);
  k = kline("1M", T2024 + 91 * DAY, 1); /* April 1 */
  repair_on_kline(&f->r, &k);
  assert_int_equal(n_jobs(f), 2);
  j = f->r.active; /* the newest is at the head */
  assert_true(j->iv == 1 && j->from == T2024 + 31 * DAY &&
              j->to == T2024 + 60 * DAY);
}

/* The ledger ops queued on the (never connected) pg forget their job, so
 * that the test can play their answers itself. */
static void detach_ops(struct fx *f, struct repair_job *j) {
  for (struct pg_op *op = f->pg.pend_head; op; op = op->next)
    if (op->cb == db_cb && ((struct repair_dbop *)op->data)->job == j)
      ((struct repair_dbop *)op->data)->job = NULL;
}

/* Takes a queued request back out of the limiter (as if it was answered). */
static void unqueue(struct limiter *lim, struct limiter_req *q) {
  assert_int_equal(q->state, 1);
  if (q->prev)
    q->prev->next = q->next;
  else
    lim->queues[q->prio].head = q->next;
  if (q->next)
    q->next->prev = q->prev;
  else
    lim->queues[q->prio].tail = q->prev;
  q->next = q->prev = NULL;
  q->state = 0;
  lim->queued--;
}

static void set_body(struct repair_job *j, const char *body) {
  buf_reset(&j->req.http.body);
  assert_int_equal(buf_append(&j->req.http.body, body, strlen(body)), 0);
  assert_int_equal(buf_append(&j->req.http.body, "", 1), 0);
  j->req.http.body.len--;
}

static void kline_json(char *out, size_t cap, int64_t open) {
  snprintf(out, cap,
           "[%" PRId64 ",\"1.0\",\"2.0\",\"0.5\",\"1.5\",\"10.0\",%" PRId64
           ",\"15.0\",7,\"5.0\",\"7.5\",\"0\"]",
           open, open + MINUTE - 1);
}

static void paging_and_empty_tail(void **state) {
  struct fx *f = *state;
  struct repair_sym *s = ready_sym(f, "BTCUSDT");
  struct repair_job *j = job_new(&f->r, s, T_KLINE, 0, O_LIVE);
  char body[4096], row[256];
  assert_non_null(j);
  if (!j)
    return;
  size_t n = 0;
  int64_t t0 = fixed_now - 30 * MINUTE - 30000; /* a minute boundary */
  j->from = j->cursor = j->count_from = t0;
  j->to = t0 + 9 * MINUTE;
  job_enqueue(j); /* -> ledger insert queued on pg */
  assert_int_equal(j->phase, P_LEDGER);
  detach_ops(f, j);
  j->busy = 0;
  ledger_inserted(j, 0, NULL); /* as if the row was written */
  assert_int_equal(j->phase, P_FETCH);
  assert_non_null(strstr(j->req.query, "interval=1m"));
  snprintf(row, sizeof row, "startTime=%" PRId64 "&", t0);
  assert_non_null(strstr(j->req.query, row));
  assert_non_null(strstr(j->req.query, "limit=5"));
  assert_int_equal(j->req.weight, 2);
  /* page 1: five bars (full) */
  n = (size_t)snprintf(body, sizeof body, "[");
  for (int i = 0; i < 5; i++) {
    kline_json(row, sizeof row, t0 + i * MINUTE);
    n += (size_t)snprintf(body + n, sizeof body - n, "%s%s", i ? "," : "", row);
  }
  snprintf(body + n, sizeof body - n, "]");
  unqueue(&f->lim, &j->req); /* the request never goes out */
  set_body(j, body);
  page_done(&j->req, 0);
  assert_true(j->rows == 5 && j->cursor == t0 + 5 * MINUTE);
  assert_int_equal(j->phase, P_FETCH);
  snprintf(row, sizeof row, "startTime=%" PRId64 "&", t0 + 5 * MINUTE);
  assert_non_null(strstr(j->req.query, row));
  /* page 2: three bars, then nothing: the rest is exchange_empty */
  n = (size_t)snprintf(body, sizeof body, "[");
  for (int i = 5; i < 8; i++) {
    kline_json(row, sizeof row, t0 + i * MINUTE);
    n += (size_t)snprintf(body + n, sizeof body - n, "%s%s", i > 5 ? "," : "",
                          row);
  }
  snprintf(body + n, sizeof body - n, "]");
  unqueue(&f->lim, &j->req);
  set_body(j, body);
  page_done(&j->req, 0);
  assert_int_equal(s->n_empty, 1);
  assert_true(s->empty[0].ival == 0 && s->empty[0].a == t0 + 8 * MINUTE &&
              s->empty[0].b == t0 + 9 * MINUTE);
  assert_int_equal(f->r.st.rows[T_KLINE], 8);
  assert_int_equal(f->st.q[STORE_KLINES].rows_in, 8);
  /* a later job starting inside the empty range skips it */
  {
    struct repair_job *k = job_new(&f->r, s, T_KLINE, 0, O_LIVE);
    assert_non_null(k);
    if (!k)
      return;
    k->from = k->cursor = k->count_from = t0 + 8 * MINUTE;
    k->to = t0 + 12 * MINUTE;
    job_enqueue(k);
    detach_ops(f, k);
    k->busy = 0;
    ledger_inserted(k, 0, NULL);
    snprintf(row, sizeof row, "startTime=%" PRId64 "&", t0 + 10 * MINUTE);
    assert_non_null(strstr(k->req.query, row));
  }
}

/* After a reconnect the last live bar is fetched again: a REST bar that
 * differs is counted; a failed page makes the gap 'failed' and retried
 * later. */
static void reconnect_compare_and_failure(void **state) {
  struct fx *f = *state;
  struct repair_sym *s = ready_sym(f, "BTCUSDT");
  const char *syms[1] = {"BTCUSDT"};
  struct ev_kline k;
  struct repair_job *j;
  char body[512], row[256];
  int64_t t0 = repair_last_closed(MINUTE, fixed_now) - 3 * MINUTE;
  k = kline("1m", t0, 1);
  snprintf(k.close, sizeof k.close, "1.4"); /* REST will say 1.5 */
  repair_on_kline(&f->r, &k);
  repair_on_reconnect(&f->r, syms, 1);
  assert_int_equal(n_jobs(f), 1); /* klines only: no trade seen yet */
  j = only_job(f);
  assert_true(j->cmp_open == t0 && j->from == t0 &&
              j->count_from == t0 + MINUTE);
  detach_ops(f, j);
  j->busy = 0;
  ledger_inserted(j, 0, NULL);
  j->gap_id = 7; /* as if its row was inserted */
  kline_json(row, sizeof row, t0);
  snprintf(body, sizeof body, "[%s]", row);
  unqueue(&f->lim, &j->req);
  set_body(j, body);
  j->page_limit = 5;
  page_done(&j->req, 0);
  assert_int_equal(f->r.st.mismatches, 1);
  assert_int_equal(j->rows, 0); /* the compared bar is not a repaired one */
  /* a short page: the job ended (the bars after it are exchange_empty) */
  assert_int_equal(j->phase, P_FINISH);
  /* a page that fails for good: the gap waits and is retried later */
  j = job_new(&f->r, s, T_KLINE, 0, O_LIVE);
  assert_non_null(j);
  if (!j)
    return;
  j->from = j->cursor = j->count_from = t0 - 10 * MINUTE;
  j->to = t0 - 5 * MINUTE;
  job_enqueue(j);
  detach_ops(f, j);
  j->busy = 0;
  j->gap_id = 42;
  ledger_inserted(j, 0, NULL);
  assert_int_equal(j->phase, P_FETCH);
  unqueue(&f->lim, &j->req);
  j->req.http.status = 400;
  j->req.api_code = -1121;
  snprintf(j->req.api_msg, sizeof j->req.api_msg, "Invalid symbol.");
  page_done(&j->req, BL_EHTTP);
  assert_int_equal(j->n_fail, 1);
  assert_int_equal(j->phase, P_PAUSE);
  assert_non_null(strstr(j->detail, "-1121"));
  assert_true(j->not_before >= uv_now(&f->loop) + RETRY_MIN_MS);
  assert_int_equal(f->r.st.outcomes[T_KLINE][OUT_FAILED], 1);
  (void)s;
}

static void collect(void **state) {
  struct fx *f = *state;
  struct buf out;
  buf_init(&out, 1 << 20);
  f->r.st.gaps_detected[T_TRADE] = 3;
  f->r.st.mismatches = 2;
  repair_collect(&out, &f->r);
  assert_int_equal(buf_append(&out, "", 1), 0);
  assert_non_null(strstr(out.data, "binance_live_gaps_detected_total{data_"
                                   "type=\"trade\"} 3"));
  assert_non_null(strstr(out.data, "binance_live_kline_mismatches_total 2"));
  assert_non_null(strstr(out.data, "outcome=\"exchange_empty\""));
  buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bars),
      cmocka_unit_test(planning),
      cmocka_unit_test_setup_teardown(trade_gaps, setup, teardown),
      cmocka_unit_test_setup_teardown(open_ended_meets_live, setup, teardown),
      cmocka_unit_test_setup_teardown(kline_gaps, setup, teardown),
      cmocka_unit_test_setup_teardown(paging_and_empty_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(reconnect_compare_and_failure, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(collect, setup, teardown),
  };
  return cmocka_run_group_tests_name("repair", tests, NULL, NULL);
}
