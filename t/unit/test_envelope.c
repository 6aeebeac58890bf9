/*
 * test_envelope.c: exact JSON of every Redis message kind, string
 * escaping (quotes, control bytes, UTF-8, invalid UTF-8), channel and key
 * names, and the size limit; the fast writers give the piecewise builders'
 * bytes and errors for random events with hostile strings, at every buffer
 * limit around the message's size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>

/* The source, for the piecewise builders the fast writers must match. */
#include "../../src/sink/envelope.c"

static void kline_exact(void **state) {
  struct buf b;
  struct ev_kline k = {
      .symbol = "BTCUSDT",
      .interval = "1m",
      .event_time = 1634043000123,
      .open_time = 1634042940000,
      .close_time = 1634042999999,
      .first_trade_id = 1077455000,
      .last_trade_id = 1077455999,
      .trades_count = 1000,
      .open = "56012.34000000",
      .high = "56100.00000000",
      .low = "55990.01000000",
      .close = "56050.00000000",
      .volume = "12.34500000",
      .quote_volume = "691234.56789000",
      .taker_buy_volume = "6.00000000",
      .taker_buy_quote_volume = "336000.00000000",
      .is_closed = 1,
  };
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_kline(&b, &k, 42), 0);
  assert_string_equal(
      b.data,
      "{\"type\":\"kline\",\"symbol\":\"BTCUSDT\",\"timestamp\":1634043000123,"
      "\"seq\":42,\"data\":{\"symbol\":\"BTCUSDT\",\"interval\":\"1m\","
      "\"open_time\":1634042940000,\"close_time\":1634042999999,"
      "\"open_price\":\"56012.34000000\",\"high_price\":\"56100.00000000\","
      "\"low_price\":\"55990.01000000\",\"close_price\":\"56050.00000000\","
      "\"volume\":\"12.34500000\",\"quote_volume\":\"691234.56789000\","
      "\"trades_count\":1000,\"taker_buy_volume\":\"6.00000000\","
      "\"taker_buy_quote_volume\":\"336000.00000000\","
      "\"first_trade_id\":1077455000,\"last_trade_id\":1077455999,"
      "\"is_closed\":true,\"source\":\"ws\"}}");
  k.is_closed = 0;
  assert_int_equal(envelope_kline(&b, &k, 43), 0);
  assert_non_null(strstr(b.data, "\"seq\":43,"));
  assert_non_null(strstr(b.data, "\"is_closed\":false,"));
  buf_free(&b);
}

static void ticker_exact(void **state) {
  struct buf b;
  struct ev_ticker t = {
      .symbol = "ETHUSDT",
      .event_time = 1634043000500,
      .price = "3500.10",
      .price_change = "-12.50",
      .price_change_percent = "-0.356",
      .weighted_avg_price = "3490.00",
      .open_price = "3512.60",
      .high = "3600.00",
      .low = "3400.00",
      .volume = "100000.5",
      .quote_volume = "349000000.25",
      .bid_price = "3500.09",
      .bid_qty = "1.5",
      .ask_price = "3500.11",
      .ask_qty = "2.25",
      .trades_count = 123456,
      .first_trade_id = 1,
      .last_trade_id = 123456,
  };
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_ticker(&b, &t, 1), 0);
  assert_string_equal(
      b.data,
      "{\"type\":\"ticker\",\"symbol\":\"ETHUSDT\",\"timestamp\":1634043000500,"
      "\"seq\":1,\"data\":{\"symbol\":\"ETHUSDT\","
      "\"timestamp\":1634043000500,\"price\":\"3500.10\","
      "\"price_change_24h\":\"-12.50\",\"price_change_percent_24h\":\"-0.356\","
      "\"weighted_avg_price\":\"3490.00\",\"open_price_24h\":\"3512.60\","
      "\"high_24h\":\"3600.00\",\"low_24h\":\"3400.00\","
      "\"volume_24h\":\"100000.5\",\"quote_volume_24h\":\"349000000.25\","
      "\"bid_price\":\"3500.09\",\"bid_qty\":\"1.5\","
      "\"ask_price\":\"3500.11\",\"ask_qty\":\"2.25\","
      "\"trades_count_24h\":123456,\"first_trade_id\":1,"
      "\"last_trade_id\":123456}}");
  buf_free(&b);
}

static void trade_exact(void **state) {
  struct buf b;
  struct ev_trade t = {
      .symbol = "BNBBTC",
      .event_time = 1634043000999,
      .agg_trade_id = 12345,
      .price = "0.00812300",
      .quantity = "100.00000000",
      .first_trade_id = 100,
      .last_trade_id = 105,
      .trade_time = 1634043000998,
      .is_buyer_maker = 0,
  };
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_trade(&b, &t, 18446744073709551615ULL), 0);
  assert_string_equal(
      b.data,
      "{\"type\":\"trade\",\"symbol\":\"BNBBTC\",\"timestamp\":1634043000999,"
      "\"seq\":18446744073709551615,\"data\":{\"symbol\":\"BNBBTC\","
      "\"agg_trade_id\":12345,\"price\":\"0.00812300\","
      "\"quantity\":\"100.00000000\",\"first_trade_id\":100,"
      "\"last_trade_id\":105,\"trade_time\":1634043000998,"
      "\"is_buyer_maker\":false,\"source\":\"ws\"}}");
  buf_free(&b);
}

static void depth_exact(void **state) {
  struct buf b;
  static const struct ev_level bids[] = {{"100.5", "1.0"}, {"100.4", "2.5"}};
  static const struct ev_level asks[] = {{"100.6", "0.1"}};
  struct sink_depth d = {.symbol = "BTCUSDT",
                         .event_time = 1634043000100,
                         .last_update_id = 987654321,
                         .synced = 1,
                         .bids = bids,
                         .n_bids = 2,
                         .asks = asks,
                         .n_asks = 1};
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_depth(&b, &d, 7), 0);
  assert_string_equal(
      b.data,
      "{\"type\":\"depth\",\"symbol\":\"BTCUSDT\",\"timestamp\":1634043000100,"
      "\"seq\":7,\"data\":{\"symbol\":\"BTCUSDT\","
      "\"timestamp\":1634043000100,\"last_update_id\":987654321,"
      "\"book_state\":\"synced\",\"bids\":[[\"100.5\",\"1.0\"],"
      "[\"100.4\",\"2.5\"]],\"asks\":[[\"100.6\",\"0.1\"]]}}");
  /* A resyncing book is published with empty sides, whatever it holds. */
  d.synced = 0;
  assert_int_equal(envelope_depth(&b, &d, 8), 0);
  assert_string_equal(
      b.data,
      "{\"type\":\"depth\",\"symbol\":\"BTCUSDT\",\"timestamp\":1634043000100,"
      "\"seq\":8,\"data\":{\"symbol\":\"BTCUSDT\","
      "\"timestamp\":1634043000100,\"last_update_id\":987654321,"
      "\"book_state\":\"resyncing\",\"bids\":[],\"asks\":[]}}");
  buf_free(&b);
}

static void string_escaping(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_append_string(&b, "a\"b\\c\n\r\t\b\f\x01\x1f"), 0);
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\"");
  buf_reset(&b);
  /* valid UTF-8 passes through: é, 币, 😀 */
  assert_int_equal(
      envelope_append_string(&b, "\xc3\xa9\xe5\xb8\x81\xf0\x9f\x98\x80"), 0);
  assert_string_equal(b.data, "\"\xc3\xa9\xe5\xb8\x81\xf0\x9f\x98\x80\"");
  buf_reset(&b);
  /* invalid: lone continuation, truncated, overlong, surrogate, > U+10FFFF */
  assert_int_equal(envelope_append_string(
                       &b, "\x80x\xc3\xc0\xafy\xed\xa0\x80\xf4\x90\x80\x80"),
                   0);
  assert_string_equal(b.data, "\"\\ufffdx\\ufffd\\ufffd\\ufffdy\\ufffd\\ufffd"
                              "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
  buf_free(&b);
}

static void symbols_array(void **state) {
  struct buf b;
  const char *syms[] = {"BTCUSDT", "ETHUSDT", "X\"Y"};
  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(envelope_symbols(&b, syms, 3), 0);
  assert_string_equal(b.data, "[\"BTCUSDT\",\"ETHUSDT\",\"X\\\"Y\"]");
  assert_int_equal(envelope_symbols(&b, syms, 0), 0);
  assert_string_equal(b.data, "[]");
  buf_free(&b);
}

static void names(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 256);
  assert_int_equal(
      envelope_name(&b, "binance", ENVELOPE_KLINE, "BTCUSDT", "1m", 0), 0);
  assert_string_equal(b.data, "binance:kline:BTCUSDT:1m");
  assert_int_equal(
      envelope_name(&b, "binance", ENVELOPE_KLINE, "BTCUSDT", "1M", 1), 0);
  assert_string_equal(b.data, "binance:latest:kline:BTCUSDT:1M");
  assert_int_equal(envelope_name(&b, "p", ENVELOPE_TICKER, "ETHUSDT", NULL, 0),
                   0);
  assert_string_equal(b.data, "p:ticker:ETHUSDT");
  assert_int_equal(envelope_name(&b, "p", ENVELOPE_DEPTH, "ETHUSDT", "1m", 1),
                   0);
  assert_string_equal(b.data, "p:latest:depth:ETHUSDT");
  assert_int_equal(envelope_name(&b, "p", ENVELOPE_TRADE, "ETHUSDT", NULL, 0),
                   0);
  assert_string_equal(b.data, "p:trade:ETHUSDT");
  assert_int_equal(envelope_name(&b, "p", ENVELOPE_KLINE, "ETHUSDT", NULL, 0),
                   BL_EINVAL);
  assert_int_equal(envelope_name(&b, "p", ENVELOPE_TRADE, "", NULL, 0),
                   BL_EINVAL);
  assert_int_equal(
      envelope_name(&b, "p", (enum envelope_kind)9, "ETHUSDT", NULL, 0),
      BL_EINVAL);
  assert_string_equal(envelope_kind_name(ENVELOPE_DEPTH), "depth");
  buf_free(&b);
}

static void size_limit(void **state) {
  struct buf b;
  struct ev_trade t = {.symbol = "BTCUSDT", .price = "1", .quantity = "2"};
  (void)state;
  buf_init(&b, 64);
  assert_int_equal(envelope_trade(&b, &t, 1), BL_ETOOBIG);
  buf_free(&b);
}

/* ---- fast writers against the piecewise builders ---------------------- */

static unsigned rng_state = 1;

static unsigned rnd(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

/* Fills a char array of |size| bytes with a random hostile or plain
 * string (NUL-terminated). */
static void rnd_str(char *dst, size_t size) {
  static const char *const pool[] = {"56012.34000000",
                                     "",
                                     "BTCUSDT",
                                     "a\"b\\c",
                                     "\x01\x1f\x7f",
                                     "\xc3\xa9\xe5\xb8\x81\xf0\x9f\x98\x80",
                                     "\x80\xc3\xc0\xaf\xed\xa0\x80",
                                     "\xf4\x90\x80\x80\xc3",
                                     "\n\r\t\b\f",
                                     "-0.5"};
  size_t n;
  if (rnd() % 4 == 0) { /* the longest that fits, of one kind of byte */
    static const char fill[] = "\x01\"\xff"
                               "a";
    memset(dst, fill[rnd() % 4], size - 1);
    dst[size - 1] = '\0';
    return;
  }
  n = (size_t)snprintf(dst, size, "%s", pool[rnd() % 10]);
  (void)n;
}

static int64_t rnd_i64(void) {
  static const int64_t pool[] = {
      0, -1, 1, INT64_MIN, INT64_MAX, 1634043000123, -1634043000123};
  return rnd() % 2 ? pool[rnd() % 7] : (int64_t)rnd() * (rnd() % 2 ? -1 : 1);
}

typedef int (*build_fn)(struct buf *, const void *, uint64_t);

static int b_trade(struct buf *b, const void *e, uint64_t s) {
  return envelope_trade(b, e, s);
}
static int s_trade(struct buf *b, const void *e, uint64_t s) {
  return trade_slow(b, e, s);
}
static int b_kline(struct buf *b, const void *e, uint64_t s) {
  return envelope_kline(b, e, s);
}
static int s_kline(struct buf *b, const void *e, uint64_t s) {
  return kline_slow(b, e, s);
}
static int b_ticker(struct buf *b, const void *e, uint64_t s) {
  return envelope_ticker(b, e, s);
}
static int s_ticker(struct buf *b, const void *e, uint64_t s) {
  return ticker_slow(b, e, s);
}

/* Same bytes and same return code at limits 1 MiB, exactly the size, one
 * less, and a few in between. */
static void compare(build_fn fast, build_fn slow, const void *e, uint64_t seq) {
  struct buf a, b;
  size_t want, limits[5];
  buf_init(&b, 1 << 20);
  assert_int_equal(slow(&b, e, seq), 0);
  want = b.len;
  limits[0] = 1 << 20;
  limits[1] = want;
  limits[2] = want - 1;
  limits[3] = want / 2;
  limits[4] = want + 1 + rnd() % 6000;
  for (int i = 0; i < 5; i++) {
    int ra, rb;
    buf_init(&a, limits[i]);
    buf_free(&b);
    buf_init(&b, limits[i]);
    ra = fast(&a, e, seq);
    rb = slow(&b, e, seq);
    assert_int_equal(ra, rb);
    if (ra == 0) {
      assert_int_equal(a.len, b.len);
      assert_memory_equal(a.data, b.data, a.len + 1);
    }
    buf_free(&a);
  }
  buf_free(&b);
}

static void fast_matches_piecewise(void **state) {
  (void)state;
  for (int i = 0; i < 3000; i++) {
    struct ev_trade t;
    struct ev_kline k;
    struct ev_ticker tk;
    uint64_t seq = rnd() % 3 ? rnd() : UINT64_MAX;
    memset(&t, 0, sizeof t);
    rnd_str(t.symbol, sizeof t.symbol);
    rnd_str(t.price, sizeof t.price);
    rnd_str(t.quantity, sizeof t.quantity);
    t.event_time = rnd_i64();
    t.agg_trade_id = rnd_i64();
    t.first_trade_id = rnd_i64();
    t.last_trade_id = rnd_i64();
    t.trade_time = rnd_i64();
    t.is_buyer_maker = (int)(rnd() % 2);
    compare(b_trade, s_trade, &t, seq);

    memset(&k, 0, sizeof k);
    rnd_str(k.symbol, sizeof k.symbol);
    rnd_str(k.interval, sizeof k.interval);
    k.event_time = rnd_i64();
    k.open_time = rnd_i64();
    k.close_time = rnd_i64();
    k.first_trade_id = rnd_i64();
    k.last_trade_id = rnd_i64();
    k.trades_count = rnd_i64();
    rnd_str(k.open, sizeof k.open);
    rnd_str(k.high, sizeof k.high);
    rnd_str(k.low, sizeof k.low);
    rnd_str(k.close, sizeof k.close);
    rnd_str(k.volume, sizeof k.volume);
    rnd_str(k.quote_volume, sizeof k.quote_volume);
    rnd_str(k.taker_buy_volume, sizeof k.taker_buy_volume);
    rnd_str(k.taker_buy_quote_volume, sizeof k.taker_buy_quote_volume);
    k.is_closed = (int)(rnd() % 2);
    compare(b_kline, s_kline, &k, seq);

    memset(&tk, 0, sizeof tk);
    rnd_str(tk.symbol, sizeof tk.symbol);
    tk.event_time = rnd_i64();
    rnd_str(tk.price, sizeof tk.price);
    rnd_str(tk.price_change, sizeof tk.price_change);
    rnd_str(tk.price_change_percent, sizeof tk.price_change_percent);
    rnd_str(tk.weighted_avg_price, sizeof tk.weighted_avg_price);
    rnd_str(tk.open_price, sizeof tk.open_price);
    rnd_str(tk.high, sizeof tk.high);
    rnd_str(tk.low, sizeof tk.low);
    rnd_str(tk.volume, sizeof tk.volume);
    rnd_str(tk.quote_volume, sizeof tk.quote_volume);
    rnd_str(tk.bid_price, sizeof tk.bid_price);
    rnd_str(tk.bid_qty, sizeof tk.bid_qty);
    rnd_str(tk.ask_price, sizeof tk.ask_price);
    rnd_str(tk.ask_qty, sizeof tk.ask_qty);
    tk.trades_count = rnd_i64();
    tk.first_trade_id = rnd_i64();
    tk.last_trade_id = rnd_i64();
    compare(b_ticker, s_ticker, &tk, seq);
  }
}

/* Integers as printf writes them: powers of ten and their neighbours,
 * the extremes, random values; signed, unsigned, by both writers. */
static void integers_like_printf(void **state) {
  (void)state;
  for (int i = 0; i < 20000; i++) {
    char want[32], got[32], tmp[24], *p;
    int64_t v;
    uint64_t u;
    if (i < 3 * 20) {
      uint64_t t = 1;
      for (int k = 0; k < i / 3; k++)
        t *= 10;
      u = t + (uint64_t)(i % 3) - 1;
    } else if (i < 64) {
      u = i % 2 ? UINT64_MAX : (uint64_t)INT64_MAX + (uint64_t)(i % 4 / 2);
    } else {
      u = ((uint64_t)rnd() << 40) ^ ((uint64_t)rnd() << 20) ^ rnd();
      u >>= rnd() % 64;
    }
    snprintf(want, sizeof want, "%llu", (unsigned long long)u);
    p = w_u64(got, u);
    *p = '\0';
    assert_string_equal(got, want);
    p = fmt_u64(tmp + sizeof tmp, u);
    assert_memory_equal(p, want, strlen(want));
    assert_int_equal(tmp + sizeof tmp - p, strlen(want));
    v = (int64_t)u;
    snprintf(want, sizeof want, "%lld", (long long)v);
    p = w_i64(got, v);
    *p = '\0';
    assert_string_equal(got, want);
    p = fmt_i64(tmp + sizeof tmp, v);
    assert_memory_equal(p, want, strlen(want));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kline_exact),
      cmocka_unit_test(ticker_exact),
      cmocka_unit_test(trade_exact),
      cmocka_unit_test(depth_exact),
      cmocka_unit_test(string_escaping),
      cmocka_unit_test(symbols_array),
      cmocka_unit_test(names),
      cmocka_unit_test(size_limit),
      cmocka_unit_test(fast_matches_piecewise),
      cmocka_unit_test(integers_like_printf),
  };
  return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
