/*
 * test_mock_rest.c: the mock exchange's REST handlers, weight accounting
 * and 429/418 machine, request routing and error codes, the corpus loader,
 * and the WebSocket control messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "../../t/mock/fmt.c"
#include "../../t/mock/market.c"
#include "../../t/mock/replay.c"
#include "../../t/mock/rest.c"
#include "../../t/mock/streams.c"

#define MIN0 1790000040000LL /* a minute boundary */

struct fx {
  struct mk_market m;
  struct rest_state r;
  struct rest_resp out;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  assert_int_equal(mk_market_init(&f->m, 4, 7, 40.0), 0);
  assert_int_equal(rest_state_init(&f->r, &f->m, NULL, 100), 0);
  buf_init(&f->out.body, 64 << 20);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  buf_free(&f->out.body);
  rest_state_free(&f->r);
  mk_market_free(&f->m);
  free(f);
  return 0;
}

static int get(struct fx *f, const char *target, int64_t now) {
  assert_int_equal(rest_handle(&f->r, "GET", target, now, &f->out), 0);
  return f->out.status;
}

static int err_code(struct fx *f) {
  char err[128];
  const char *path[] = {"code", NULL};
  yajl_val v = yajl_tree_parse(f->out.body.data, err, sizeof err), c;
  int code;
  assert_non_null(v);
  c = yajl_tree_get(v, path, yajl_t_number);
  assert_non_null(c);
  code = (int)YAJL_GET_INTEGER(c);
  yajl_tree_free(v);
  return code;
}

static void routing_and_errors(void **state) {
  struct fx *f = *state;
  int64_t t = MIN0;
  assert_int_equal(get(f, "/api/v3/ping", t), 200);
  assert_string_equal(f->out.body.data, "{}");
  assert_int_equal(get(f, "/api/v3/time", t), 200);
  assert_string_equal(f->out.body.data, "{\"serverTime\":1790000040000}");
  assert_int_equal(get(f, "/api/v3/nothing", t), 404);
  assert_int_equal(get(f, "/api/v3/depth?symbol=XRPUSDT", t), 400);
  assert_int_equal(err_code(f), -1121);
  assert_int_equal(get(f, "/api/v3/depth?symbol=btcusdt", t), 400);
  assert_int_equal(err_code(f), -1100);
  assert_int_equal(get(f, "/api/v3/depth", t), 400);
  assert_int_equal(err_code(f), -1102);
  assert_int_equal(get(f, "/api/v3/klines?symbol=BTCUSDT&interval=2m", t), 400);
  assert_int_equal(err_code(f), -1120);
  assert_int_equal(get(f, "/api/v3/klines?symbol=BTCUSDT", t), 400);
  assert_int_equal(err_code(f), -1102);
  assert_int_equal(
      get(f, "/api/v3/aggTrades?symbol=BTCUSDT&fromId=5&startTime=1", t), 400);
  assert_int_equal(err_code(f), -1128);
  assert_int_equal(get(f, "/api/v3/aggTrades?symbol=BTCUSDT&limit=x", t), 400);
  assert_int_equal(err_code(f), -1100);
  assert_int_equal(get(f, "/api/v3/exchangeInfo?symbol=NOPE", t + 60000), 400);
  assert_int_equal(err_code(f), -1121);
}

static void weights_and_window(void **state) {
  struct fx *f = *state;
  f->r.limit = 6000;
  assert_int_equal(get(f, "/api/v3/ping", MIN0), 200);
  assert_int_equal(f->out.used, 1);
  assert_int_equal(get(f, "/api/v3/depth?symbol=BTCUSDT", MIN0 + 1), 200);
  assert_int_equal(f->out.used, 6);
  assert_int_equal(get(f, "/api/v3/depth?symbol=BTCUSDT&limit=500", MIN0 + 2),
                   200);
  assert_int_equal(f->out.used, 31);
  get(f, "/api/v3/depth?symbol=BTCUSDT&limit=1000", MIN0 + 3);
  assert_int_equal(f->out.used, 81);
  get(f, "/api/v3/depth?symbol=BTCUSDT&limit=5000", MIN0 + 4);
  assert_int_equal(f->out.used, 331);
  get(f, "/api/v3/klines?symbol=BTCUSDT&interval=1m", MIN0 + 5);
  assert_int_equal(f->out.used, 333);
  get(f, "/api/v3/aggTrades?symbol=BTCUSDT", MIN0 + 6);
  assert_int_equal(f->out.used, 337);
  get(f, "/api/v3/exchangeInfo", MIN0 + 7);
  assert_int_equal(f->out.used, 357);
  get(f, "/api/v3/ticker/24hr?symbol=ETHUSDT", MIN0 + 8);
  assert_int_equal(f->out.used, 359);
  get(f, "/api/v3/ticker/24hr", MIN0 + 9);
  assert_int_equal(f->out.used, 439);
  /* a 400 still costs its weight */
  get(f, "/api/v3/klines?symbol=NOPE&interval=1m", MIN0 + 10);
  assert_int_equal(f->out.used, 441);
  /* the window is the UTC minute */
  get(f, "/api/v3/ping", MIN0 + 60000);
  assert_int_equal(f->out.used, 1);
  assert_int_equal(f->out.retry_after, -1);
}

static void limit_429_then_418(void **state) {
  struct fx *f = *state;
  int i;
  /* limit 100: 20 depth requests of weight 5 fill it */
  for (i = 0; i < 20; i++)
    assert_int_equal(get(f, "/api/v3/depth?symbol=BTCUSDT", MIN0 + i), 200);
  assert_int_equal(f->out.used, 100);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 30000), 429);
  assert_int_equal(err_code(f), -1003);
  assert_int_equal(f->out.retry_after, 30);
  assert_int_equal(f->out.used, 100); /* refused: not charged */
  /* back-off violations: 429, 429, then the ban */
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 31000), 429);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 32000), 429);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 33000), 418);
  assert_int_equal(f->out.retry_after, 120);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 100000), 418);
  assert_int_equal(f->out.retry_after, 53);
  assert_true(f->r.log[f->r.log_total - 1].in_ban);
  /* after the ban */
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 153000), 200);
  assert_int_equal(f->r.n_418, 2);
  assert_int_equal(f->r.n_429, 3);
  /* a client that waits the Retry-After is never banned */
  for (i = 0; i < 100; i++)
    get(f, "/api/v3/ping", MIN0 + 180000 + i);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 180100), 429);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 180000 + 60000), 200);
  assert_int_equal(f->r.bans, 1);
}

static void forced_faults(void **state) {
  struct fx *f = *state;
  f->r.force_status = 500;
  f->r.force_count = 2;
  assert_int_equal(get(f, "/api/v3/ping", MIN0), 500);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 1), 500);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 2), 200);
  f->r.force_status = 429;
  f->r.force_count = 1;
  f->r.force_retry_after = 2;
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 3), 429);
  assert_int_equal(f->out.retry_after, 2);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 2003), 200);
  f->r.force_status = 418;
  f->r.force_count = 1;
  f->r.force_retry_after = 5;
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 3000), 418);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 7000), 418);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 8001), 200);
  /* for a time */
  f->r.force_status = 500;
  f->r.force_until = MIN0 + 10000;
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 9000), 500);
  assert_int_equal(get(f, "/api/v3/ping", MIN0 + 10000), 200);
}

static void klines_ranges(void **state) {
  struct fx *f = *state;
  char err[128], url[256];
  yajl_val v;
  size_t i;
  int64_t now = MIN0 + 12345;
  f->r.limit = 1000000;
  /* no range: the most recent bars, the last one open */
  assert_int_equal(
      get(f, "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=3", now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 3);
  assert_int_equal(YAJL_GET_INTEGER(v->u.array.values[2]->u.array.values[0]),
                   MIN0);
  yajl_tree_free(v);
  /* a range: contiguous bars, limit capped at 1000 */
  snprintf(url, sizeof url,
           "/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=%lld&limit="
           "5000",
           (long long)(MIN0 - 86400000LL * 2 + 1));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 1000);
  for (i = 0; i < v->u.array.len; i++)
    assert_int_equal(YAJL_GET_INTEGER(v->u.array.values[i]->u.array.values[0]),
                     MIN0 - 86400000LL * 2 + 60000 + 60000 * (int64_t)i);
  yajl_tree_free(v);
  /* exchange_empty: bars in the hole are missing */
  f->m.sym[1].empty_from = MIN0 - 600000;
  f->m.sym[1].empty_to = MIN0 - 300000;
  snprintf(url, sizeof url,
           "/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=%lld&endTime="
           "%lld",
           (long long)(MIN0 - 900000), (long long)(MIN0 - 1));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 15 - 6);
  yajl_tree_free(v);
  /* endTime only: the most recent bars up to it */
  snprintf(url, sizeof url,
           "/api/v3/klines?symbol=BTCUSDT&interval=1h&endTime=%lld&limit=2",
           (long long)(MIN0 - 86400000LL));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 2);
  assert_int_equal(YAJL_GET_INTEGER(v->u.array.values[1]->u.array.values[0]),
                   mk_bar_start(MK_1h, MIN0 - 86400000LL));
  yajl_tree_free(v);
}

static void agg_trades_paging(void **state) {
  struct fx *f = *state;
  char err[128], url[256];
  yajl_val v;
  size_t i;
  int64_t now = MIN0, first;
  const char *pa[] = {"a", NULL}, *pt[] = {"T", NULL};
  f->r.limit = 1000000;
  snprintf(url, sizeof url,
           "/api/v3/aggTrades?symbol=SYM000USDT&startTime=%lld&limit=50",
           (long long)(now - 3600000));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 50);
  first =
      YAJL_GET_INTEGER(yajl_tree_get(v->u.array.values[0], pa, yajl_t_number));
  for (i = 0; i < 50; i++) {
    yajl_val it = v->u.array.values[i];
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(it, pa, yajl_t_number)),
                     first + (int64_t)i);
    assert_true(YAJL_GET_INTEGER(yajl_tree_get(it, pt, yajl_t_number)) >=
                now - 3600000);
  }
  yajl_tree_free(v);
  /* fromId continues */
  snprintf(url, sizeof url,
           "/api/v3/aggTrades?symbol=SYM000USDT&fromId=%lld&limit=10",
           (long long)(first + 50));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(
      YAJL_GET_INTEGER(yajl_tree_get(v->u.array.values[0], pa, yajl_t_number)),
      first + 50);
  yajl_tree_free(v);
  /* never beyond now */
  snprintf(url, sizeof url,
           "/api/v3/aggTrades?symbol=SYM000USDT&fromId=%lld&limit=1000",
           (long long)(mk_trade_last_at(&f->m, 2, now) + 1 - 2));
  assert_int_equal(get(f, url, now), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(v->u.array.len, 3);
  yajl_tree_free(v);
}

static void depth_snapshot_shape(void **state) {
  struct fx *f = *state;
  char err[128];
  const char *pu[] = {"lastUpdateId", NULL}, *pb[] = {"bids", NULL};
  yajl_val v;
  f->r.limit = 1000000;
  assert_int_equal(get(f, "/api/v3/depth?symbol=BTCUSDT&limit=10", MIN0), 200);
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(v, pu, yajl_t_number)),
                   mk_book_uid(&f->m, 0, MIN0));
  assert_int_equal(yajl_tree_get(v, pb, yajl_t_array)->u.array.len, 10);
  yajl_tree_free(v);
  assert_int_equal(get(f, "/api/v3/exchangeInfo", MIN0), 200);
  assert_non_null(strstr(f->out.body.data,
                         "\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":"
                         "\"MINUTE\",\"intervalNum\":1,\"limit\":1000000"));
  assert_non_null(strstr(f->out.body.data, "\"tickSize\":\"0.01000000\""));
  v = yajl_tree_parse(f->out.body.data, err, sizeof err);
  assert_non_null(v);
  yajl_tree_free(v);
  assert_int_equal(get(f,
                       "/api/v3/exchangeInfo?symbols=%5B%22ETHUSDT%22,"
                       "%22SYM001USDT%22%5D",
                       MIN0),
                   200);
  assert_null(strstr(f->out.body.data, "\"BTCUSDT\""));
  assert_non_null(
      strstr(f->out.body.data, "\"symbols\":[{\"symbol\":\"ETHUSDT\""));
  assert_non_null(strstr(f->out.body.data, "},{\"symbol\":\"SYM001USDT\""));
  assert_int_equal(
      get(f, "/api/v3/exchangeInfo?symbols=%5B%22NOPE%22%5D", MIN0), 400);
  assert_int_equal(err_code(f), -1121);
}

static void stats_json_is_valid(void **state) {
  struct fx *f = *state;
  struct buf b;
  char err[128];
  yajl_val v;
  get(f, "/api/v3/ping", MIN0);
  get(f, "/api/v3/\"weird", MIN0);
  buf_init(&b, 1 << 20);
  assert_int_equal(rest_stats_json(&f->r, &b), 0);
  v = yajl_tree_parse(b.data, err, sizeof err);
  assert_non_null(v);
  yajl_tree_free(v);
  assert_non_null(
      strstr(b.data, "\"/api/v3/ping\":{\"count\":1,\"weight\":1}"));
  buf_free(&b);
}

static void query_decoding(void **state) {
  char out[64];
  (void)state;
  assert_int_equal(rest_query_get("a=1&symbols=%5B%22X%22%5D&b=2", "symbols",
                                  out, sizeof out),
                   5);
  assert_string_equal(out, "[\"X\"]");
  assert_int_equal(rest_query_get("ab=1", "a", out, sizeof out), -1);
  assert_int_equal(rest_query_get("a=", "a", out, sizeof out), 0);
}

static void replay_corpus(void **state) {
  struct replay rp;
  char err[256];
  const struct replay_snapshot *sn;
  (void)state;
  assert_int_equal(replay_load(&rp, "t/mock/data", err, sizeof err), 0);
  /* 265 frame lines (the corpus README says 266) */
  assert_int_equal(rp.nframes, 265);
  assert_int_equal(strncmp(rp.url, "wss://stream.binance.com:9443/stream?", 37),
                   0);
  assert_int_equal(rp.frames[0].t_us, 1633998512063356LL);
  assert_int_equal(rp.frames[0].stream_len, strlen("nknusdt@depth@100ms"));
  assert_int_equal(
      memcmp(rp.ws_text + rp.frames[0].stream_off, "nknusdt@depth@100ms", 19),
      0);
  assert_int_equal(
      memcmp(rp.ws_text + rp.frames[0].data_off, "{\"e\":\"depthUpdate\"", 18),
      0);
  assert_int_equal(
      rp.ws_text[rp.frames[0].data_off + rp.frames[0].data_len - 1], '}');
  assert_int_equal(rp.nsnaps, 4);
  sn = replay_snapshot_find(&rp, "NKNUSDT");
  assert_non_null(sn);
  assert_int_equal(
      strncmp(sn ? sn->body : "", "{\"lastUpdateId\":499869752,", 26), 0);
  assert_int_equal(rp.exinfo_weight_limit, 1200);
  assert_true(replay_has_symbol(&rp, "BLZETH"));
  assert_false(replay_has_symbol(&rp, "NOPE"));
  replay_free(&rp);
}

static void control_messages(void **state) {
  struct fx *f = *state;
  struct st_subs *subs = calloc(1, sizeof *subs);
  struct st_effect *eff = calloc(1, sizeof *eff);
  struct buf r;
#define CTL(msg)                                                               \
  do {                                                                         \
    buf_reset(&r);                                                             \
    assert_int_equal(st_control(&f->m, 0, subs, msg, strlen(msg), &r, eff),    \
                     0);                                                       \
  } while (0)
  buf_init(&r, 1 << 20);
  assert_int_equal(st_from_path(&f->m, 0, subs,
                                "/stream?streams=btcusdt@aggTrade/"
                                "ethusdt@kline_1m"),
                   0);
  assert_int_equal(subs->n, 2);
  assert_true(subs->combined);
  CTL("{\"method\":\"SUBSCRIBE\",\"params\":[\"btcusdt@depth@100ms\","
      "\"btcusdt@aggTrade\"],\"id\":1}");
  assert_string_equal(r.data, "{\"result\":null,\"id\":1}");
  assert_int_equal(eff->nadded, 1);
  CTL("{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":\"ab-3\"}");
  assert_string_equal(r.data,
                      "{\"result\":[\"btcusdt@aggTrade\",\"ethusdt@kline_1m\","
                      "\"btcusdt@depth@100ms\"],\"id\":\"ab-3\"}");
  CTL("{\"method\":\"UNSUBSCRIBE\",\"params\":[\"btcusdt@aggTrade\"],\"id\":"
      "-7}");
  assert_string_equal(r.data, "{\"result\":null,\"id\":-7}");
  assert_int_equal(eff->nremoved, 1);
  assert_int_equal(subs->n, 2);
  CTL("{\"method\":\"SUBSCRIBE\",\"params\":[\"xrpusdt@aggTrade\"],\"id\":2}");
  assert_string_equal(
      r.data,
      "{\"error\":{\"code\":2,\"msg\":\"Invalid request: invalid stream\"},"
      "\"id\":2}");
  CTL("{\"method\":\"SUBSCRIBE\",");
  assert_non_null(strstr(r.data, "\"code\":3"));
  CTL("{\"params\":[],\"id\":4}");
  assert_non_null(strstr(r.data, "missing field `method`"));
  CTL("{\"method\":\"FOO\",\"id\":4}");
  assert_non_null(strstr(r.data, "unknown variant `FOO`"));
  CTL("{\"method\":\"SET_PROPERTY\",\"params\":[\"combined\",false],\"id\":5}");
  assert_string_equal(r.data, "{\"result\":null,\"id\":5}");
  assert_false(subs->combined);
  CTL("{\"method\":\"GET_PROPERTY\",\"params\":[\"combined\"],\"id\":6}");
  assert_string_equal(r.data, "{\"result\":false,\"id\":6}");
  CTL("{\"method\":\"SET_PROPERTY\",\"params\":[\"combined\",1],\"id\":5}");
  assert_non_null(strstr(r.data, "\"code\":1"));
  CTL("{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":1.5}");
  assert_non_null(strstr(r.data, "request ID"));
  /* bad stream in a URL */
  subs->n = 0;
  assert_int_equal(st_from_path(&f->m, 0, subs, "/ws/btcusdt@nothing"),
                   BL_EINVAL);
  assert_int_equal(st_from_path(&f->m, 0, subs, "/ws/btcusdt@ticker"), 0);
  assert_false(subs->combined);
  assert_int_equal(subs->ids[0], 0 * ST_NKINDS + ST_TICKER);
  /* URL-encoded names */
  subs->n = 0;
  assert_int_equal(st_from_path(&f->m, 0, subs,
                                "/stream?streams=btcusdt%40aggTrade%2F"
                                "ethusdt%40depth%40100ms&timeUnit=MILLISECOND"),
                   0);
  assert_int_equal(subs->n, 2);
  assert_int_equal(subs->ids[1], 1 * ST_NKINDS + ST_DEPTH100);
  buf_free(&r);
  st_subs_free(subs);
  free(subs);
  free(eff);
#undef CTL
}

static void too_many_streams(void **state) {
  struct fx *f = *state;
  struct st_subs *subs = calloc(1, sizeof *subs);
  struct st_effect *eff = calloc(1, sizeof *eff);
  struct buf r, msg;
  int i;
  buf_init(&r, 1 << 20);
  buf_init(&msg, 1 << 20);
  /* 4 symbols x 20 kinds = 80 streams; replay mode takes any names */
  buf_append_str(&msg, "{\"method\":\"SUBSCRIBE\",\"params\":[");
  for (i = 0; i < 1025; i++)
    buf_printf(&msg, "%s\"s%d@trade\"", i ? "," : "", i);
  buf_append_str(&msg, "],\"id\":9}");
  assert_int_equal(st_control(&f->m, 1, subs, msg.data, msg.len, &r, eff), 0);
  assert_non_null(strstr(r.data, "Too many subscriptions"));
  assert_int_equal(subs->nnames, 0);
  buf_free(&r);
  buf_free(&msg);
  st_subs_free(subs);
  free(subs);
  free(eff);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(routing_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(weights_and_window, setup, teardown),
      cmocka_unit_test_setup_teardown(limit_429_then_418, setup, teardown),
      cmocka_unit_test_setup_teardown(forced_faults, setup, teardown),
      cmocka_unit_test_setup_teardown(klines_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(agg_trades_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(depth_snapshot_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(stats_json_is_valid, setup, teardown),
      cmocka_unit_test(query_decoding),
      cmocka_unit_test(replay_corpus),
      cmocka_unit_test_setup_teardown(control_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(too_many_streams, setup, teardown),
  };
  return cmocka_run_group_tests_name("mock_rest", tests, NULL, NULL);
}
