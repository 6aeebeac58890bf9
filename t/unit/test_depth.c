/*
 * test_depth.c: the order-book manager with no limiter, Redis or store:
 * snapshot answers are delivered through depth_snapshot_arrived(), and the
 * manager's counters and books show what it did. Covers book creation and
 * removal, one request per symbol, publish on apply, the single
 * "resyncing" message on a gap, a stale snapshot refetched, a failed
 * snapshot asked again, a crossed book, a reconnect, depth_snapshots rows
 * and their JSON, the metrics families and close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../src/market/depth.c"

struct fx {
  uv_loop_t loop;
  struct depth d;
  int closed;
};

static struct ev_level lv_b[8], lv_a[8];

/* One diff: bid |bp| x |bq| and ask |ap| x |aq| (NULL: none). */
static void diff(struct depth *d, const char *sym, int64_t U, int64_t u,
                 const char *bp, const char *bq, const char *ap,
                 const char *aq) {
  struct ev_depth ev;
  memset(&ev, 0, sizeof ev);
  snprintf(ev.symbol, sizeof ev.symbol, "%s", sym);
  ev.event_time = 1634000000000 + u;
  ev.first_update_id = U;
  ev.final_update_id = u;
  if (bp) {
    snprintf(lv_b[0].price, sizeof lv_b[0].price, "%s", bp);
    snprintf(lv_b[0].qty, sizeof lv_b[0].qty, "%s", bq);
    ev.bids = lv_b;
    ev.n_bids = 1;
  }
  if (ap) {
    snprintf(lv_a[0].price, sizeof lv_a[0].price, "%s", ap);
    snprintf(lv_a[0].qty, sizeof lv_a[0].qty, "%s", aq);
    ev.asks = lv_a;
    ev.n_asks = 1;
  }
  depth_on_event(d, &ev);
}

/* A snapshot with lastUpdateId |id|: bids 100,99,98, asks 101,102,103. */
static int snap(struct depth *d, const char *sym, int64_t id) {
  char body[512];
  int n = snprintf(body, sizeof body,
                   "{\"lastUpdateId\":%lld,\"bids\":[[\"100.00000000\","
                   "\"1.00000000\"],[\"99.00000000\",\"2.00000000\"],"
                   "[\"98.00000000\",\"3.00000000\"]],\"asks\":[["
                   "\"101.00000000\",\"1.50000000\"],[\"102.00000000\","
                   "\"2.50000000\"],[\"103.00000000\",\"3.50000000\"]]}",
                   (long long)id);
  return depth_snapshot_arrived(d, sym, 0, body, (size_t)n);
}

static int setup(void **state) {
  static struct fx f;
  struct depth_opts o = {3, 100, 10};
  struct depth_symbol syms[2] = {{"BTCUSDT", "0.01000000"}, {"ETHBTC", NULL}};
  memset(&f, 0, sizeof f);
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(depth_init(&f.loop, &f.d, &o, NULL, NULL, NULL), 0);
  f.d.data = &f;
  assert_int_equal(depth_set_symbols(&f.d, syms, 2), 0);
  *state = &f;
  return 0;
}

static void closed_cb(struct depth *d) {
  struct fx *f = d->data;
  f->closed = 1;
}

static int teardown(void **state) {
  struct fx *f = *state;
  depth_close(&f->d, closed_cb);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->closed, 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  return 0;
}

/* The book of |sym| (asserted to exist). */
static const struct book *bk(struct fx *f, const char *sym) {
  static struct book none;
  const struct book *b = depth_book(&f->d, sym);
  assert_non_null(b);
  return b ? b : &none;
}

static enum book_state st(struct fx *f, const char *sym) {
  const struct book *b = depth_book(&f->d, sym);
  assert_non_null(b);
  return book_state(b);
}

/* Brings BTCUSDT to SYNCED at update id 12. */
static void sync_btc(struct fx *f) {
  diff(&f->d, "BTCUSDT", 9, 10, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SNAPSHOT_PENDING);
  diff(&f->d, "BTCUSDT", 11, 12, "99.50000000", "4.00000000", NULL, NULL);
  assert_int_equal(snap(&f->d, "BTCUSDT", 10), 0);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SYNCED);
}

static void test_books_follow_symbols(void **state) {
  struct fx *f = *state;
  int s = -1, t = -1;
  struct depth_symbol one[1] = {{"ETHBTC", ""}};
  depth_counts(&f->d, &s, &t);
  assert_int_equal(t, 2);
  assert_int_equal(s, 0);
  const struct book *bb = bk(f, "BTCUSDT");
  const struct book *be = bk(f, "ETHBTC");
  assert_int_equal(bb->scale, 2);
  assert_int_equal(be->scale, 8);
  assert_int_equal(bb->req_limit, 100);
  assert_int_equal(depth_set_symbols(&f->d, one, 1), 0);
  depth_counts(&f->d, &s, &t);
  assert_int_equal(t, 1);
  assert_null(depth_book(&f->d, "BTCUSDT"));
  assert_int_equal(f->d.stats.books_dropped, 1);
  /* events for a dropped symbol are counted and ignored */
  diff(&f->d, "BTCUSDT", 1, 2, "1.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.events_unknown, 1);
}

static void test_one_request_then_publish(void **state) {
  struct fx *f = *state;
  int s = 0;
  diff(&f->d, "BTCUSDT", 9, 10, "100.00000000", "1.00000000", NULL, NULL);
  diff(&f->d, "BTCUSDT", 11, 12, "99.50000000", "4.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 1);
  assert_int_equal(f->d.stats.publishes, 0);
  /* ETHBTC owes nothing yet */
  assert_int_equal(st(f, "ETHBTC"), BOOK_BUFFERING);
  assert_int_equal(snap(&f->d, "BTCUSDT", 10), 0);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SYNCED);
  assert_int_equal(book_last_update_id(bk(f, "BTCUSDT")), 12);
  assert_int_equal(f->d.stats.publishes, 1);
  assert_int_equal(f->d.stats.snapshots_ok, 1);
  /* the top as published: 100, 99.5, 99 */
  assert_string_equal(f->d.top_bids[0].price, "100.00000000");
  assert_string_equal(f->d.top_bids[1].price, "99.50000000");
  assert_string_equal(f->d.top_bids[1].qty, "4.00000000");
  assert_string_equal(f->d.top_asks[0].price, "101.00000000");
  diff(&f->d, "BTCUSDT", 13, 13, NULL, NULL, "100.50000000", "1.00000000");
  assert_int_equal(f->d.stats.publishes, 2);
  assert_string_equal(f->d.top_asks[0].price, "100.50000000");
  depth_counts(&f->d, &s, NULL);
  assert_int_equal(s, 1);
  /* no answer is owed any more */
  assert_int_equal(snap(&f->d, "BTCUSDT", 20), 0);
  assert_int_equal(book_stats(bk(f, "BTCUSDT"))->snapshots_ignored, 1);
  assert_int_equal(snap(&f->d, "NOPE", 20), BL_ENOTFOUND);
}

static void test_gap_resyncs_once(void **state) {
  struct fx *f = *state;
  sync_btc(f);
  assert_int_equal(f->d.stats.resyncing_published, 0);
  diff(&f->d, "BTCUSDT", 15, 16, "99.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SNAPSHOT_PENDING);
  assert_int_equal(f->d.stats.resyncing_published, 1);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  diff(&f->d, "BTCUSDT", 17, 18, "99.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.resyncing_published, 1);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  assert_int_equal(depth_store_snapshots(&f->d, 1000), 0);
  assert_int_equal(snap(&f->d, "BTCUSDT", 17), 0);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SYNCED);
  assert_int_equal(book_last_update_id(bk(f, "BTCUSDT")), 18);
  assert_int_equal(book_stats(bk(f, "BTCUSDT"))->resyncs[BOOK_RESYNC_GAP], 1);
}

static void test_stale_snapshot_refetched(void **state) {
  struct fx *f = *state;
  diff(&f->d, "ETHBTC", 50, 52, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 1);
  assert_int_equal(snap(&f->d, "ETHBTC", 40), 0); /* < U0 = 50 */
  assert_int_equal(st(f, "ETHBTC"), BOOK_SNAPSHOT_PENDING);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  assert_int_equal(
      book_stats(bk(f, "ETHBTC"))->resyncs[BOOK_RESYNC_SNAPSHOT_TOO_OLD], 1);
  assert_int_equal(snap(&f->d, "ETHBTC", 51), 0);
  assert_int_equal(st(f, "ETHBTC"), BOOK_SYNCED);
}

static void test_failed_snapshot_asked_again(void **state) {
  struct fx *f = *state;
  diff(&f->d, "ETHBTC", 50, 52, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(depth_snapshot_arrived(&f->d, "ETHBTC", BL_EHTTP, NULL, 0),
                   0);
  assert_int_equal(f->d.stats.snapshots_failed, 1);
  assert_int_equal(st(f, "ETHBTC"), BOOK_BUFFERING);
  /* a body that does not parse is a failure too */
  diff(&f->d, "ETHBTC", 53, 53, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  assert_int_equal(depth_snapshot_arrived(&f->d, "ETHBTC", 0, "{\"la", 4), 0);
  assert_int_equal(f->d.stats.snapshots_failed, 2);
  assert_int_equal(st(f, "ETHBTC"), BOOK_BUFFERING);
  diff(&f->d, "ETHBTC", 54, 54, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 3);
  assert_int_equal(snap(&f->d, "ETHBTC", 52), 0);
  assert_int_equal(st(f, "ETHBTC"), BOOK_SYNCED);
}

static void test_crossed_resyncs(void **state) {
  struct fx *f = *state;
  sync_btc(f);
  /* a bid above the best ask (101) crosses the book */
  diff(&f->d, "BTCUSDT", 13, 13, "101.50000000", "1.00000000", NULL, NULL);
  assert_int_not_equal(st(f, "BTCUSDT"), BOOK_SYNCED);
  assert_int_equal(f->d.stats.resyncing_published, 1);
  assert_int_equal(book_stats(bk(f, "BTCUSDT"))->resyncs[BOOK_RESYNC_CROSSED],
                   1);
}

static void test_disconnect_resets(void **state) {
  struct fx *f = *state;
  const char *syms[2] = {"BTCUSDT", "ETHBTC"};
  sync_btc(f);
  depth_on_disconnect(&f->d, syms, 2);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_BUFFERING);
  assert_int_equal(f->d.stats.resyncing_published, 1); /* ETHBTC was not */
  /* the new stream starts anywhere; the book asks for a new snapshot */
  diff(&f->d, "BTCUSDT", 500, 501, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  assert_int_equal(snap(&f->d, "BTCUSDT", 500), 0);
  assert_int_equal(st(f, "BTCUSDT"), BOOK_SYNCED);
}

/* A reconnect while a snapshot request is out: the book asks again, but
 * the one request out answers it (never two per symbol); an answer older
 * than the new buffer is refetched. */
static void test_reset_with_request_out(void **state) {
  struct fx *f = *state;
  const char *syms[1] = {"ETHBTC"};
  diff(&f->d, "ETHBTC", 50, 52, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(f->d.stats.snapshots_requested, 1);
  depth_on_disconnect(&f->d, syms, 1);
  assert_int_equal(st(f, "ETHBTC"), BOOK_BUFFERING);
  diff(&f->d, "ETHBTC", 80, 81, "100.00000000", "1.00000000", NULL, NULL);
  assert_int_equal(st(f, "ETHBTC"), BOOK_SNAPSHOT_PENDING);
  assert_int_equal(f->d.stats.snapshots_requested, 1);
  /* the answer to the first request predates the new stream: refetched */
  assert_int_equal(snap(&f->d, "ETHBTC", 52), 0);
  assert_int_equal(f->d.stats.snapshots_requested, 2);
  assert_int_equal(st(f, "ETHBTC"), BOOK_SNAPSHOT_PENDING);
  assert_int_equal(snap(&f->d, "ETHBTC", 80), 0);
  assert_int_equal(st(f, "ETHBTC"), BOOK_SYNCED);
  assert_int_equal(book_last_update_id(bk(f, "ETHBTC")), 81);
}

static void test_snapshot_rows(void **state) {
  struct fx *f = *state;
  const char *want_b = "[[\"100.00000000\",\"1.00000000\"],[\"99.50000000\","
                       "\"4.00000000\"],[\"99.00000000\",\"2.00000000\"]]";
  const char *want_a = "[[\"101.00000000\",\"1.50000000\"],[\"102.00000000\","
                       "\"2.50000000\"],[\"103.00000000\",\"3.50000000\"]]";
  assert_int_equal(depth_store_snapshots(&f->d, 1000), 0);
  sync_btc(f);
  assert_int_equal(depth_store_snapshots(&f->d, 2000), 1);
  assert_string_equal(f->d.bids_json.data, want_b);
  assert_string_equal(f->d.asks_json.data, want_a);
  assert_int_equal(f->d.stats.rows_stored, 1);
}

static void test_metrics(void **state) {
  struct fx *f = *state;
  struct buf out;
  sync_btc(f);
  diff(&f->d, "BTCUSDT", 15, 16, "99.00000000", "1.00000000", NULL, NULL);
  buf_init(&out, 1 << 20);
  depth_collect(&out, &f->d);
  assert_int_equal(buf_append_char(&out, '\0'), 0);
  assert_non_null(strstr(out.data, "binance_live_depth_books{state=\""
                                   "snapshot_pending\"} 1"));
  assert_non_null(strstr(out.data, "binance_live_depth_books{state=\""
                                   "buffering\"} 1"));
  assert_non_null(
      strstr(out.data, "binance_live_depth_resyncs_total{reason=\"gap\"} 1"));
  assert_non_null(strstr(out.data, "binance_live_depth_snapshots_total{"
                                   "outcome=\"requested\"} 2"));
  assert_non_null(strstr(out.data, "binance_live_depth_events_total{"
                                   "decision=\"applied\"} 1"));
  assert_non_null(strstr(out.data, "binance_live_depth_publishes_total{"
                                   "book_state=\"resyncing\"} 1"));
  buf_free(&out);
}

static void test_bad_opts(void **state) {
  struct fx *f = *state;
  struct depth d2;
  struct depth_opts o = {0, 100, 10};
  assert_int_equal(depth_init(&f->loop, &d2, &o, NULL, NULL, NULL), BL_EINVAL);
  o.depth_levels = 20;
  o.snapshot_limit = 6000;
  assert_int_equal(depth_init(&f->loop, &d2, &o, NULL, NULL, NULL), BL_EINVAL);
  assert_int_equal(depth_set_symbols(&f->d, NULL, 1), BL_EINVAL);
}

static int lim_closed, http_closed_n;
static void t_http_closed(struct http *h) {
  (void)h;
  http_closed_n++;
}
static void t_lim_closed(struct limiter *l) {
  lim_closed++;
  http_close(l->http, t_http_closed);
}

/* With a real limiter (never run against a server): one request per book
 * while several diffs arrive, its fields, and a dropped book cancels its
 * queued request and is freed in the callback (ASan checks the freeing). */
static void test_limiter_request_and_cancel(void **state) {
  struct fx *f = *state;
  struct http http;
  struct limiter lim;
  struct depth d2;
  struct depth_opts o = {20, 1000, 0};
  struct depth_symbol syms[2] = {{"BTCUSDT", "0.01000000"}, {"ETHBTC", NULL}};
  struct depth_book *db;
  assert_int_equal(http_init(&f->loop, &http, NULL), 0);
  assert_int_equal(
      limiter_init(&f->loop, &lim, &http, "http://127.0.0.1:1", 6000, 1), 0);
  assert_int_equal(depth_init(&f->loop, &d2, &o, &lim, NULL, NULL), 0);
  assert_int_equal(depth_set_symbols(&d2, syms, 2), 0);
  diff(&d2, "BTCUSDT", 9, 10, "100.00000000", "1.00000000", NULL, NULL);
  diff(&d2, "BTCUSDT", 11, 12, "100.00000000", "2.00000000", NULL, NULL);
  diff(&d2, "ETHBTC", 11, 12, "100.00000000", "2.00000000", NULL, NULL);
  assert_int_equal(d2.stats.snapshots_requested, 2);
  assert_int_equal(lim.queued, 2);
  db = strmap_get(&d2.books, "BTCUSDT");
  assert_non_null(db);
  if (!db)
    return;
  assert_int_equal(db->req_out, 1);
  assert_string_equal(db->req.path, "/api/v3/depth");
  assert_string_equal(db->req.query, "symbol=BTCUSDT&limit=1000");
  assert_int_equal(db->req.weight, 50);
  assert_int_equal(db->req.prio, LIMITER_BOOK);
  /* the test hook refuses while a real request is out */
  assert_int_equal(snap(&d2, "BTCUSDT", 10), BL_ESTATE);
  /* BTCUSDT goes: its request is canceled, the book freed later */
  assert_int_equal(depth_set_symbols(&d2, &syms[1], 1), 0);
  assert_null(depth_book(&d2, "BTCUSDT"));
  assert_int_equal(d2.gone_waiting, 1);
  assert_int_equal(lim.queued, 1);
  /* close at once: ETHBTC's request is canceled too; all freed later */
  f->closed = 0;
  d2.data = f;
  depth_close(&d2, closed_cb);
  assert_int_equal(d2.gone_waiting, 2);
  assert_int_equal(lim.queued, 0);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->closed, 1);
  assert_int_equal(lim.stats.canceled, 2);
  assert_int_equal(lim.stats.sent, 0);
  f->closed = 0;
  limiter_close(&lim, t_lim_closed);
  /* (the fixture's depth keeps a 10 s timer: no UV_RUN_DEFAULT here) */
  for (int i = 0; i < 1000 && !http_closed_n; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(lim_closed, 1);
  assert_int_equal(http_closed_n, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_books_follow_symbols, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_one_request_then_publish, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_gap_resyncs_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_snapshot_refetched, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_snapshot_asked_again, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_crossed_resyncs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_resets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_with_request_out, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limiter_request_and_cancel, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("depth", tests, NULL, NULL);
}
