/*
 * test_stream_plan.c: unit tests for binance/stream_plan: stream names,
 * packing, URL, SUBSCRIBE bodies and the duplicate filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "binance/stream_plan.h"
#include "core/err.h"

static struct plan_types all_types(void) {
  struct plan_types t = {1, 1, 1, 1, {"1m", "1h"}, 2};
  return t;
}

static void names_for_symbol(void **state) {
  struct plan_types t = all_types();
  char names[PLAN_MAX_STREAMS_PER_SYMBOL][EV_STREAM_MAX];
  (void)state;
  assert_int_equal(plan_streams_per_symbol(&t), 5);
  assert_int_equal(plan_symbol_streams("BTCUSDT", &t, names, 19), 5);
  assert_string_equal(names[0], "btcusdt@kline_1m");
  assert_string_equal(names[1], "btcusdt@kline_1h");
  assert_string_equal(names[2], "btcusdt@ticker");
  assert_string_equal(names[3], "btcusdt@depth@100ms");
  assert_string_equal(names[4], "btcusdt@aggTrade");
  assert_int_equal(plan_symbol_streams("", &t, names, 19), BL_EINVAL);
  t.kline = 0;
  t.depth = 0;
  assert_int_equal(plan_symbol_streams("ETHBTC", &t, names, 19), 2);
  assert_string_equal(names[0], "ethbtc@ticker");
}

static void packing(void **state) {
  struct plan_types t = {1, 1, 1, 1, {"1m", "5m", "15m", "1h", "4h", "1d"}, 6};
  (void)state;
  assert_int_equal(plan_streams_per_symbol(&t), 9);
  assert_int_equal(plan_symbols_per_connection(&t, 200), 22);
  assert_int_equal(plan_symbols_per_connection(&t, 1024), 113);
  assert_int_equal(plan_symbols_per_connection(&t, 5), 1);
}

static void url_and_request(void **state) {
  struct plan_types t = all_types();
  const char *syms[] = {"BTCUSDT", "ETHUSDT"};
  struct buf b;
  (void)state;
  t.kline = 0;
  t.ticker = 0;
  buf_init(&b, 4096);
  assert_int_equal(plan_url(&b, "wss://x:9443", syms, 2, &t, PLAN_URL_MAX), 2);
  assert_string_equal(b.data,
                      "wss://x:9443/stream?streams=btcusdt@depth@100ms/"
                      "btcusdt@aggTrade/ethusdt@depth@100ms/ethusdt@aggTrade");
  /* Too long for both: the first symbol goes in the URL, the second
   * will be subscribed. */
  buf_reset(&b);
  assert_int_equal(plan_url(&b, "wss://x:9443", syms, 2, &t, 60), 1);
  assert_string_equal(b.data, "wss://x:9443/stream?streams=btcusdt@depth@100ms/"
                              "btcusdt@aggTrade");
  buf_reset(&b);
  assert_int_equal(plan_request(&b, 1, 7, syms, 1, &t), 0);
  assert_string_equal(b.data, "{\"method\":\"SUBSCRIBE\",\"params\":"
                              "[\"btcusdt@depth@100ms\",\"btcusdt@aggTrade\"],"
                              "\"id\":7}");
  buf_reset(&b);
  assert_int_equal(plan_request(&b, 0, 8, syms + 1, 1, &t), 0);
  assert_non_null(strstr(b.data, "\"UNSUBSCRIBE\""));
  buf_free(&b);
}

/* 22 symbols of 9 streams (max 200 streams) with long names do not fit in
 * PLAN_URL_MAX: the URL takes whole symbols up to the limit and the
 * SUBSCRIBE for the rest carries exactly the streams left out. */
static void url_limit(void **state) {
  struct plan_types t = {1, 1, 1, 1, {"1m", "5m", "15m", "1h", "4h", "1d"}, 6};
  char syms[22][EV_SYMBOL_MAX];
  const char *p[22];
  struct buf b;
  int in, n_streams = 0;
  (void)state;
  for (int i = 0; i < 22; i++) {
    snprintf(syms[i], sizeof syms[i], "LONGSYMBOL%03dUSDT", i);
    p[i] = syms[i];
  }
  buf_init(&b, 1 << 20);
  in = plan_url(&b, "ws://127.0.0.1:9443", p, 22, &t, PLAN_URL_MAX);
  assert_true(in >= 1 && in < 22);
  assert_true(b.len <= PLAN_URL_MAX);
  for (const char *q = b.data; (q = strchr(q, '@')) != NULL; q++)
    n_streams++;
  /* "@depth@100ms" has two '@' */
  assert_int_equal(n_streams, in * 10);
  assert_non_null(strstr(b.data, "longsymbol000usdt@kline_1m"));
  buf_reset(&b);
  assert_int_equal(plan_request(&b, 1, 1, p + in, 22 - in, &t), 0);
  assert_null(strstr(b.data, "longsymbol000usdt"));
  assert_non_null(strstr(b.data, "longsymbol021usdt@aggTrade"));
  /* UTF-8 symbols are percent-encoded in the URL, raw in JSON. */
  {
    struct plan_types tt = {0, 0, 0, 1, {NULL}, 0};
    const char *u[] = {"\xe8\xbf\x99"
                       "AB"};
    buf_reset(&b);
    assert_int_equal(plan_url(&b, "ws://h", u, 1, &tt, PLAN_URL_MAX), 1);
    assert_string_equal(b.data, "ws://h/stream?streams=%E8%BF%99ab@aggTrade");
    buf_reset(&b);
    assert_int_equal(plan_request(&b, 1, 2, u, 1, &tt), 0);
    assert_non_null(strstr(b.data, "\"\xe8\xbf\x99"
                                   "ab@aggTrade\""));
  }
  /* A single symbol always goes in, whatever the limit. */
  buf_reset(&b);
  assert_int_equal(plan_url(&b, "ws://h", p, 22, &t, 10), 1);
  buf_free(&b);
}

static void dedupe(void **state) {
  struct plan_dedupe d;
  struct ev ev;
  (void)state;
  plan_dedupe_init(&d, 100);
  memset(&ev, 0, sizeof ev);
  ev.type = EV_TRADE;
  snprintf(ev.u.trade.symbol, sizeof ev.u.trade.symbol, "%s", "BTCUSDT");
  ev.u.trade.agg_trade_id = 10;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  assert_int_equal(plan_dedupe_check(&d, &ev), 0); /* same frame twice */
  ev.u.trade.agg_trade_id = 9;
  assert_int_equal(plan_dedupe_check(&d, &ev), 0); /* overlap, older */
  ev.u.trade.agg_trade_id = 11;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  assert_int_equal(d.duplicates, 2);

  memset(&ev, 0, sizeof ev);
  ev.type = EV_KLINE;
  snprintf(ev.u.kline.symbol, sizeof ev.u.kline.symbol, "%s", "BTCUSDT");
  snprintf(ev.u.kline.interval, sizeof ev.u.kline.interval, "%s", "1m");
  ev.u.kline.event_time = 1000;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  snprintf(ev.u.kline.interval, sizeof ev.u.kline.interval, "%s",
           "1h"); /* same E, other interval: new */
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  assert_int_equal(plan_dedupe_check(&d, &ev), 0);
  /* A bar's final update and the next bar's first one in the same ms
   * are both new; the final bar again is not. */
  ev.u.kline.open_time = 60000;
  ev.u.kline.is_closed = 1;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  ev.u.kline.open_time = 120000;
  ev.u.kline.is_closed = 0;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  ev.u.kline.open_time = 60000;
  ev.u.kline.is_closed = 1;
  assert_int_equal(plan_dedupe_check(&d, &ev), 0);
  ev.u.kline.event_time = 999; /* older E */
  ev.u.kline.open_time = 180000;
  assert_int_equal(plan_dedupe_check(&d, &ev), 0);

  ev.type = EV_CONTROL;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);

  plan_dedupe_forget_symbol(&d, "BTCUSDT");
  ev.type = EV_TRADE;
  snprintf(ev.u.trade.symbol, sizeof ev.u.trade.symbol, "%s", "BTCUSDT");
  ev.u.trade.agg_trade_id = 5;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1); /* forgotten */
  plan_dedupe_free(&d);
}

/* The per-symbol records: one per symbol, the same one found again; an
 * event checked through its record or through its name shares one order;
 * up to PLAN_MAX_INTERVALS kline intervals a symbol, then BL_EFULL; the
 * symbol limit; forgetting a symbol starts it afresh. */
static void dedupe_records(void **state) {
  static const char *const ivl[] = {"1s", "1m", "3m", "5m", "15m", "30m",
                                    "1h", "2h", "4h", "6h", "8h",  "12h",
                                    "1d", "3d", "1w", "1M", "7m"};
  struct plan_dedupe d;
  struct plan_dedupe_symbol *btc, *eth;
  struct ev ev;
  int st;
  (void)state;
  plan_dedupe_init(&d, 2);
  btc = plan_dedupe_symbol(&d, "BTCUSDT", &st);
  assert_non_null(btc);
  assert_int_equal(st, 0);
  assert_ptr_equal(plan_dedupe_symbol(&d, "BTCUSDT", &st), btc);
  eth = plan_dedupe_symbol(&d, "ETHUSDT", &st);
  assert_non_null(eth);
  assert_ptr_not_equal(eth, btc);
  assert_null(plan_dedupe_symbol(&d, "BNBUSDT", &st));
  assert_int_equal(st, BL_EFULL);

  memset(&ev, 0, sizeof ev);
  ev.type = EV_TRADE;
  snprintf(ev.u.trade.symbol, sizeof ev.u.trade.symbol, "%s", "BTCUSDT");
  ev.u.trade.agg_trade_id = 0; /* the first key may be 0 */
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 1);
  assert_int_equal(plan_dedupe_check(&d, &ev), 0);
  ev.u.trade.agg_trade_id = 1;
  assert_int_equal(plan_dedupe_check(&d, &ev), 1);
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 0);
  /* ETH's trade stream is its own. */
  assert_int_equal(plan_dedupe_check_in(&d, eth, &ev), 1);
  /* Ticker and depth of one symbol are apart from its trades. */
  ev.type = EV_TICKER;
  snprintf(ev.u.ticker.symbol, sizeof ev.u.ticker.symbol, "%s", "BTCUSDT");
  ev.u.ticker.event_time = 1;
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 1);
  ev.type = EV_DEPTH;
  snprintf(ev.u.depth.symbol, sizeof ev.u.depth.symbol, "%s", "BTCUSDT");
  ev.u.depth.final_update_id = 1;
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 1);
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 0);

  memset(&ev, 0, sizeof ev);
  ev.type = EV_KLINE;
  snprintf(ev.u.kline.symbol, sizeof ev.u.kline.symbol, "%s", "BTCUSDT");
  ev.u.kline.event_time = 5;
  for (int i = 0; i < PLAN_MAX_INTERVALS; i++) {
    snprintf(ev.u.kline.interval, sizeof ev.u.kline.interval, "%s", ivl[i]);
    assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 1);
    assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 0);
  }
  snprintf(ev.u.kline.interval, sizeof ev.u.kline.interval, "%s",
           ivl[PLAN_MAX_INTERVALS]);
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), BL_EFULL);
  assert_int_equal(d.duplicates, 3 + PLAN_MAX_INTERVALS);

  plan_dedupe_forget_symbol(&d, "BTCUSDT");
  btc = plan_dedupe_symbol(&d, "BTCUSDT", &st);
  assert_non_null(btc);
  snprintf(ev.u.kline.interval, sizeof ev.u.kline.interval, "%s", "1m");
  assert_int_equal(plan_dedupe_check_in(&d, btc, &ev), 1); /* forgotten */
  plan_dedupe_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_for_symbol), cmocka_unit_test(packing),
      cmocka_unit_test(url_and_request),  cmocka_unit_test(url_limit),
      cmocka_unit_test(dedupe_records),   cmocka_unit_test(dedupe),
  };
  return cmocka_run_group_tests_name("stream_plan", tests, NULL, NULL);
}
