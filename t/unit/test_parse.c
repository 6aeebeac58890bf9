/*
 * test_parse.c: unit tests for binance/parse. Every real frame of the
 * cryptofeed capture (t/data/parse/BINANCE.ws.1.0), exact fields of known
 * frames, synthetic 24hrTicker, control and serverShutdown frames, and one
 * table-driven case per missing or mistyped field of each event type, plus
 * malformed JSON, bad UTF-8, size, level and nesting limits.
 *
 * It includes parse.c to check that the per-frame yajl handle never left
 * the parser's arena (no malloc per frame).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/binance/parse.c"

#define WS_CORPUS "t/data/parse/BINANCE.ws.1.0"

static struct parse P;

static int setup(void **state) {
  (void)state;
  return parse_init(&P, NULL);
}

static int teardown(void **state) {
  (void)state;
  parse_free(&P);
  return 0;
}

static int pf(const char *json, struct ev *ev) {
  return parse_frame(&P, json, strlen(json), ev);
}

static void expect_ok(const char *json, struct ev *ev, enum ev_type type) {
  int rv = pf(json, ev);
  if (rv != 0 || ev->type != type)
    fail_msg("%s\n -> rv %d type %d (%s: %s), want type %d", json, rv, ev->type,
             parse_class_name(P.err_class), P.errstr, type);
  assert_int_equal(P.err_class, PARSE_OK);
}

static void expect_fail(const char *json, size_t len, enum parse_class cls) {
  struct ev ev;
  int rv = parse_frame(&P, json, len, &ev);
  if (P.err_class != cls || rv == 0)
    fail_msg("%.*s\n -> rv %d class %s (%s), want %s",
             (int)(len > 300 ? 300 : len), json, rv,
             parse_class_name(P.err_class), P.errstr, parse_class_name(cls));
  assert_int_equal(rv, cls == PARSE_TOO_BIG ? BL_ETOOBIG : BL_EPARSE);
  assert_int_equal(ev.type, EV_NONE);
  assert_true(P.errstr[0] != '\0');
}

#define EXPECT_FAIL(json, cls) expect_fail(json, strlen(json), cls)

/* ---- the real capture -------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *b;
  long n;
  if (!f)
    fail_msg("cannot open %s (run from the repository root)", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* Returns the JSON of line |lineno| (1-based) of the capture. */
static char *corpus_frame(int lineno) {
  static char line[8192];
  FILE *f = fopen(WS_CORPUS, "r");
  int n = 0;
  assert_non_null(f);
  while (fgets(line, sizeof line, f)) {
    if (++n == lineno) {
      char *j = strstr(line, ": ");
      fclose(f);
      assert_non_null(j);
      j += 2;
      j[strcspn(j, "\n")] = '\0';
      return j;
    }
  }
  fclose(f);
  fail_msg("no line %d", lineno);
  return NULL;
}

static void corpus_every_frame_parses(void **state) {
  size_t len;
  char *all = read_file(WS_CORPUS, &len), *line, *save = NULL;
  int counts[EV_IGNORED + 1] = {0}, frames = 0, first = 1;
  struct ev ev;
  uint64_t fallback0 = P.impl->arena.n_fallback;
  (void)state;

  for (line = strtok_r(all, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *j;
    if (first) { /* the URL line */
      first = 0;
      continue;
    }
    j = strstr(line, ": ");
    assert_non_null(j);
    j += 2;
    if (parse_frame(&P, j, strlen(j), &ev) != 0)
      fail_msg("%s: %s", j, P.errstr);
    assert_true(ev.type > EV_NONE && ev.type <= EV_IGNORED);
    assert_true(strstr(ev.stream, "@") != NULL);
    counts[ev.type]++;
    frames++;
    if (ev.type == EV_DEPTH) {
      assert_true(ev.u.depth.first_update_id <= ev.u.depth.final_update_id);
      for (size_t i = 0; i < ev.u.depth.n_bids; i++)
        assert_true(dec_valid(ev.u.depth.bids[i].price,
                              strlen(ev.u.depth.bids[i].price)));
    }
  }
  free(all);
  assert_int_equal(frames, 265);
  assert_int_equal(counts[EV_DEPTH], 177);
  assert_int_equal(counts[EV_IGNORED], 84); /* bookTicker */
  assert_int_equal(counts[EV_KLINE], 2);
  assert_int_equal(counts[EV_TRADE], 2);
  /* No frame needed memory beyond the arena. */
  assert_int_equal(P.impl->arena.n_fallback, fallback0);
}

static void corpus_kline_exact(void **state) {
  struct ev ev;
  const struct ev_kline *k = &ev.u.kline;
  (void)state;
  expect_ok(corpus_frame(111), &ev, EV_KLINE);
  assert_string_equal(ev.stream, "nknusdt@kline_1m");
  assert_string_equal(k->symbol, "NKNUSDT");
  assert_string_equal(k->interval, "1m");
  assert_true(k->event_time == 1633998523963LL);
  assert_true(k->open_time == 1633998480000LL);
  assert_true(k->close_time == 1633998539999LL);
  assert_true(k->first_trade_id == 19862761);
  assert_true(k->last_trade_id == 19862790);
  assert_true(k->trades_count == 30);
  assert_string_equal(k->open, "0.35270000");
  assert_string_equal(k->close, "0.35280000");
  assert_string_equal(k->high, "0.35280000");
  assert_string_equal(k->low, "0.35220000");
  assert_string_equal(k->volume, "25877.00000000");
  assert_string_equal(k->quote_volume, "9116.04600000");
  assert_string_equal(k->taker_buy_volume, "58.00000000");
  assert_string_equal(k->taker_buy_quote_volume, "20.46240000");
  assert_int_equal(k->is_closed, 0);
}

static void corpus_trade_exact(void **state) {
  struct ev ev;
  const struct ev_trade *t = &ev.u.trade;
  (void)state;
  expect_ok(corpus_frame(110), &ev, EV_TRADE);
  assert_string_equal(ev.stream, "nknusdt@aggTrade");
  assert_string_equal(t->symbol, "NKNUSDT");
  assert_true(t->event_time == 1633998523963LL);
  assert_true(t->agg_trade_id == 15683430);
  assert_string_equal(t->price, "0.35280000");
  assert_string_equal(t->quantity, "58.00000000");
  assert_true(t->first_trade_id == 19862790);
  assert_true(t->last_trade_id == 19862790);
  assert_true(t->trade_time == 1633998523963LL);
  assert_int_equal(t->is_buyer_maker, 0);
}

static void corpus_depth_exact(void **state) {
  struct ev ev;
  const struct ev_depth *d = &ev.u.depth;
  (void)state;
  expect_ok(corpus_frame(2), &ev, EV_DEPTH);
  assert_string_equal(ev.stream, "nknusdt@depth@100ms");
  assert_string_equal(d->symbol, "NKNUSDT");
  assert_true(d->event_time == 1633998512068LL);
  assert_true(d->first_update_id == 499869750);
  assert_true(d->final_update_id == 499869752);
  assert_int_equal(d->n_bids, 3);
  assert_int_equal(d->n_asks, 0);
  assert_string_equal(d->bids[0].price, "0.35130000");
  assert_string_equal(d->bids[0].qty, "6195.00000000");
  assert_string_equal(d->bids[2].price, "0.34640000");
  assert_string_equal(d->bids[2].qty, "6222.00000000");

  /* asks keep the order received */
  expect_ok(corpus_frame(20), &ev, EV_DEPTH);
  assert_true(d->first_update_id == 499869785);
  assert_true(d->final_update_id == 499869788);
  assert_int_equal(d->n_bids, 1);
  assert_int_equal(d->n_asks, 3);
  assert_string_equal(d->bids[0].price, "0.35160000");
  assert_string_equal(d->bids[0].qty, "18898.00000000");
  assert_string_equal(d->asks[0].price, "0.35280000");
  assert_string_equal(d->asks[0].qty, "10070.00000000");
  assert_string_equal(d->asks[1].price, "0.35330000");
  assert_string_equal(d->asks[2].price, "0.35450000");
  assert_string_equal(d->asks[2].qty, "6052.00000000");

  expect_ok(corpus_frame(16), &ev, EV_DEPTH);
  assert_int_equal(d->n_bids, 0);
  assert_int_equal(d->n_asks, 3);
  assert_string_equal(d->asks[2].qty, "0.00000000");
}

static void corpus_bookticker_ignored(void **state) {
  struct ev ev;
  (void)state;
  expect_ok("{\"stream\":\"nknusdt@bookTicker\",\"data\":{\"u\":499869768,"
            "\"s\":\"NKNUSDT\",\"b\":\"0.35210000\",\"B\":\"672.00000000\","
            "\"a\":\"0.35260000\",\"A\":\"3199.00000000\"}}",
            &ev, EV_IGNORED);
  assert_string_equal(ev.stream, "nknusdt@bookTicker");
  /* raw, with no "e" */
  expect_ok("{\"u\":400900217,\"s\":\"BNBUSDT\",\"b\":\"25.35190000\","
            "\"B\":\"31.21000000\",\"a\":\"25.36520000\",\"A\":\"40.66\"}",
            &ev, EV_IGNORED);
  assert_string_equal(ev.stream, "");
  /* partial depth, raw and combined */
  expect_ok("{\"lastUpdateId\":160,\"bids\":[[\"0.0024\",\"10\"]],"
            "\"asks\":[[\"0.0026\",\"100\"]]}",
            &ev, EV_IGNORED);
  expect_ok("{\"stream\":\"bnbbtc@depth5\",\"data\":{\"lastUpdateId\":160,"
            "\"bids\":[[\"0.0024\",\"10\"]],\"asks\":[]}}",
            &ev, EV_IGNORED);
  /* other streams we do not consume */
  expect_ok("{\"e\":\"trade\",\"E\":1639351062244,\"s\":\"ETHUSDT\","
            "\"t\":705291099,\"p\":\"4149.74000000\",\"q\":\"0.4387\","
            "\"b\":7038593583,\"a\":7038593613,\"T\":1639351062243,"
            "\"m\":true,\"M\":true}",
            &ev, EV_IGNORED);
  expect_ok("{\"stream\":\"!miniTicker@arr\",\"data\":[{\"e\":"
            "\"24hrMiniTicker\",\"s\":\"X\"}]}",
            &ev, EV_IGNORED);
  expect_ok("{\"e\":\"referencePrice\",\"s\":\"BAZUSD\",\"r\":null,"
            "\"t\":1770313263917}",
            &ev, EV_IGNORED);
}

/* ---- synthetic frames -------------------------------------------------- */

#define TICKER_DATA                                                            \
  "{\"e\":\"24hrTicker\",\"E\":1672515782136,\"s\":\"BNBBTC\","                \
  "\"p\":\"0.0015\",\"P\":\"-250.00\",\"w\":\"0.0018\",\"x\":\"0.0009\","      \
  "\"c\":\"0.0025\",\"Q\":\"10\",\"b\":\"0.0024\",\"B\":\"10\","               \
  "\"a\":\"0.0026\",\"A\":\"100\",\"o\":\"0.0010\",\"h\":\"0.0025\","          \
  "\"l\":\"0.0010\",\"v\":\"10000\",\"q\":\"18\",\"O\":0,\"C\":86400000,"      \
  "\"F\":0,\"L\":18150,\"n\":18151}"

static void ticker_synthetic(void **state) {
  struct ev ev;
  const struct ev_ticker *t = &ev.u.ticker;
  (void)state;
  expect_ok(TICKER_DATA, &ev, EV_TICKER);
  assert_string_equal(ev.stream, "");
  assert_string_equal(t->symbol, "BNBBTC");
  assert_true(t->event_time == 1672515782136LL);
  assert_string_equal(t->price_change, "0.0015");
  assert_string_equal(t->price_change_percent, "-250.00");
  assert_string_equal(t->weighted_avg_price, "0.0018");
  assert_string_equal(t->price, "0.0025");
  assert_string_equal(t->bid_price, "0.0024");
  assert_string_equal(t->bid_qty, "10");
  assert_string_equal(t->ask_price, "0.0026");
  assert_string_equal(t->ask_qty, "100");
  assert_string_equal(t->open_price, "0.0010");
  assert_string_equal(t->high, "0.0025");
  assert_string_equal(t->low, "0.0010");
  assert_string_equal(t->volume, "10000");
  assert_string_equal(t->quote_volume, "18");
  assert_true(t->first_trade_id == 0);
  assert_true(t->last_trade_id == 18150);
  assert_true(t->trades_count == 18151);

  /* combined, with "stream" after "data" */
  expect_ok("{\"data\":" TICKER_DATA ",\"stream\":\"bnbbtc@ticker\"}", &ev,
            EV_TICKER);
  assert_string_equal(ev.stream, "bnbbtc@ticker");
  assert_string_equal(t->symbol, "BNBBTC");
  assert_true(t->trades_count == 18151);
}

static void stream_after_data_and_field_order(void **state) {
  struct ev ev;
  (void)state;
  /* "e" last, "stream" last, unknown keys everywhere */
  expect_ok("{\"zz\":{\"a\":[1,{\"b\":[[]]}],\"e\":\"x\"},\"data\":{\"m\":"
            "true,\"T\":5,\"l\":4,\"f\":3,\"q\":\"2\",\"p\":\"1\",\"a\":7,"
            "\"s\":\"NKNUSDT\",\"E\":6,\"unknown\":[{\"k\":{}}],\"M\":true,"
            "\"e\":\"aggTrade\"},\"stream\":\"nknusdt@aggTrade\",\"id\":1}",
            &ev, EV_TRADE);
  assert_string_equal(ev.stream, "nknusdt@aggTrade");
  assert_true(ev.u.trade.agg_trade_id == 7);
  assert_true(ev.u.trade.event_time == 6);
  assert_int_equal(ev.u.trade.is_buyer_maker, 1);
  assert_string_equal(ev.u.trade.price, "1");
  /* escaped keys and values are decoded before use */
  expect_ok("{\"\\u0065\":\"aggTrade\",\"E\":6,\"s\":\"\\u004eKN\","
            "\"a\":7,\"p\":\"\\u0031.5\",\"q\":\"2\",\"f\":3,\"l\":4,"
            "\"T\":5,\"m\":false}",
            &ev, EV_TRADE);
  assert_string_equal(ev.u.trade.symbol, "NKN");
  assert_string_equal(ev.u.trade.price, "1.5");
  /* raw kline with unknown fields inside k, and the +08:00 stream form */
  expect_ok("{\"stream\":\"nknusdt@kline_1M@+08:00\",\"data\":{\"e\":"
            "\"kline\",\"E\":1,\"s\":\"NKNUSDT\",\"k\":{\"new\":{\"x\":[1]},"
            "\"t\":2,\"T\":3,\"s\":\"NKNUSDT\",\"i\":\"1M\",\"f\":-1,\"L\":-1,"
            "\"o\":\"1\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\","
            "\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\","
            "\"B\":\"0\"}}}",
            &ev, EV_KLINE);
  assert_string_equal(ev.u.kline.interval, "1M");
  assert_true(ev.u.kline.first_trade_id == -1);
  assert_int_equal(ev.u.kline.is_closed, 1);
  /* int64 limits are accepted */
  expect_ok("{\"e\":\"serverShutdown\",\"E\":9223372036854775807}", &ev,
            EV_SERVER_SHUTDOWN);
  assert_true(ev.u.shutdown.event_time == INT64_MAX);
  expect_ok("{\"e\":\"serverShutdown\",\"E\":-9223372036854775808}", &ev,
            EV_SERVER_SHUTDOWN);
  assert_true(ev.u.shutdown.event_time == INT64_MIN);
  /* a UTF-8 symbol */
  expect_ok("{\"e\":\"aggTrade\",\"E\":6,\"s\":\"这是测试币456\",\"a\":7,"
            "\"p\":\"1\",\"q\":\"2\",\"f\":3,\"l\":4,\"T\":5,\"m\":false}",
            &ev, EV_TRADE);
  assert_string_equal(ev.u.trade.symbol, "这是测试币456");
  /* a number far beyond double range in an ignored field is fine */
  expect_ok("{\"e\":\"serverShutdown\",\"E\":1,\"X\":1e400,\"big\":-1e400}",
            &ev, EV_SERVER_SHUTDOWN);
}

static void control_frames(void **state) {
  struct ev ev;
  const struct ev_control *c = &ev.u.control;
  (void)state;
  expect_ok("{\"result\":null,\"id\":1}", &ev, EV_CONTROL);
  assert_true(c->id == 1);
  assert_int_equal(c->has_id, 1);
  assert_int_equal(c->is_error, 0);
  expect_ok("{\"result\":[\"btcusdt@aggTrade\",\"x\"],\"id\":3}", &ev,
            EV_CONTROL);
  assert_true(c->id == 3);
  assert_int_equal(c->is_error, 0);
  expect_ok("{\"id\":2,\"result\":true}", &ev, EV_CONTROL);
  assert_true(c->id == 2);
  expect_ok("{\"result\":null,\"id\":-9223372036854775808}", &ev, EV_CONTROL);
  assert_true(c->id == INT64_MIN);
  expect_ok("{\"error\":{\"code\":2,\"msg\":\"Invalid request: invalid "
            "stream\"},\"id\":2}",
            &ev, EV_CONTROL);
  assert_int_equal(c->is_error, 1);
  assert_int_equal(c->code, 2);
  assert_true(c->id == 2);
  assert_string_equal(c->msg, "Invalid request: invalid stream");
  expect_ok("{\"id\":null,\"error\":{\"msg\":\"Invalid JSON\",\"code\":3,"
            "\"extra\":[1]}}",
            &ev, EV_CONTROL);
  assert_int_equal(c->has_id, 0);
  assert_int_equal(c->code, 3);
  expect_ok("{\"result\":null,\"id\":\"abc\"}", &ev, EV_CONTROL);
  assert_int_equal(c->has_id, 0);

  EXPECT_FAIL("{\"result\":null}", PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"result\":null,\"id\":1.5}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"result\":null,\"id\":{}}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"error\":{\"msg\":\"x\"},\"id\":1}", PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"error\":{\"code\":1},\"id\":1}", PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"error\":{\"code\":\"1\",\"msg\":\"x\"},\"id\":1}",
              PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"error\":{\"code\":1,\"msg\":2},\"id\":1}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"error\":{\"code\":99999999999,\"msg\":\"x\"},\"id\":1}",
              PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"error\":\"boom\",\"id\":1}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"error\":{\"code\":1,\"code\":2,\"msg\":\"x\"},\"id\":1}",
              PARSE_BAD_JSON);
}

static void control_long_msg_cut_on_utf8(void **state) {
  char frame[1024], msg[600];
  struct ev ev;
  size_t n;
  (void)state;
  /* 254 ASCII bytes, then "é" (2 bytes) straddling the 255-byte cut */
  memset(msg, 'x', 254);
  memcpy(msg + 254, "\xc3\xa9tail", 7);
  msg[261] = '\0';
  snprintf(frame, sizeof frame,
           "{\"error\":{\"code\":1,\"msg\":\"%s\"},\"id\":9}", msg);
  expect_ok(frame, &ev, EV_CONTROL);
  n = strlen(ev.u.control.msg);
  assert_int_equal(n, 254);
}

static void server_shutdown_both_forms(void **state) {
  struct ev ev;
  (void)state;
  expect_ok("{\"e\":\"serverShutdown\",\"E\":1770123456789}", &ev,
            EV_SERVER_SHUTDOWN);
  assert_true(ev.u.shutdown.event_time == 1770123456789LL);
  assert_string_equal(ev.stream, "");
  expect_ok("{\"stream\":\"!serverShutdown\",\"data\":{\"e\":"
            "\"serverShutdown\",\"E\":1770123456789}}",
            &ev, EV_SERVER_SHUTDOWN);
  assert_true(ev.u.shutdown.event_time == 1770123456789LL);
  assert_string_equal(ev.stream, "!serverShutdown");
  EXPECT_FAIL("{\"e\":\"serverShutdown\"}", PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"stream\":\"!serverShutdown\",\"data\":{\"E\":1}}",
              PARSE_MISSING_FIELD);
}

/* ---- malformed frames -------------------------------------------------- */

static void bad_json(void **state) {
  static const char *cases[] = {
      "",
      " ",
      "{",
      "{\"e\":\"aggTrade\"",
      "{\"e\":",
      "{\"e\":\"aggT",
      "{\"result\":null,\"id\":1}}",
      "{\"result\":null,\"id\":1} x",
      "{\"result\":null,\"id\":1}{}",
      "{\"result\":null,\"id\":1} 1",
      "[1,2]",
      "\"string\"",
      "42",
      "null",
      "true",
      "{'e':1}",
      "{\"e\":01}",
      "{\"E\":1,}",
      "{\"e\":NaN}",
      "{\"a\":1 /* comment */}",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"tab\there\"}",
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    EXPECT_FAIL(cases[i], PARSE_BAD_JSON);
  /* duplicate keys the parser reads */
  EXPECT_FAIL("{\"e\":\"serverShutdown\",\"E\":1,\"E\":2}", PARSE_BAD_JSON);
  EXPECT_FAIL("{\"stream\":\"a@b\",\"stream\":\"a@b\",\"data\":{}}",
              PARSE_BAD_JSON);
  EXPECT_FAIL("{\"e\":\"depthUpdate\",\"b\":[],\"b\":[]}", PARSE_BAD_JSON);
  EXPECT_FAIL("{\"b\":[],\"data\":{\"b\":[]},\"stream\":\"x@depth\"}",
              PARSE_BAD_JSON);
  /* duplicates of ignored keys are not checked */
  {
    struct ev ev;
    expect_ok("{\"e\":\"serverShutdown\",\"E\":1,\"zz\":1,\"zz\":2}", &ev,
              EV_SERVER_SHUTDOWN);
  }
  /* a NUL byte before the end of the counted length */
  expect_fail("{\"result\":null,\"id\":1}\0", 23, PARSE_BAD_JSON);
}

static void unknown_shapes(void **state) {
  (void)state;
  EXPECT_FAIL("{}", PARSE_UNKNOWN_EVENT);
  EXPECT_FAIL("{\"foo\":1}", PARSE_UNKNOWN_EVENT);
  EXPECT_FAIL("{\"e\":\"newEvent\",\"E\":1}", PARSE_UNKNOWN_EVENT);
  EXPECT_FAIL("{\"stream\":\"x@new\",\"data\":{\"e\":\"newEvent\"}}",
              PARSE_UNKNOWN_EVENT);
  /* e disagreeing with the stream name */
  EXPECT_FAIL("{\"stream\":\"x@aggTrade\",\"data\":{\"e\":\"trade\"}}",
              PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"stream\":\"x@kline_1m\",\"data\":" TICKER_DATA "}",
              PARSE_BAD_TYPE);
  /* stream and data */
  EXPECT_FAIL("{\"data\":{\"e\":\"serverShutdown\",\"E\":1}}",
              PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"stream\":\"x@aggTrade\"}", PARSE_MISSING_FIELD);
  EXPECT_FAIL("{\"stream\":1,\"data\":{}}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"stream\":\"\",\"data\":{}}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"stream\":\"x@depth\",\"data\":5}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"stream\":\"x@depth\",\"data\":[]}", PARSE_BAD_TYPE);
  EXPECT_FAIL("{\"e\":5,\"E\":1}", PARSE_BAD_TYPE);
  {
    char frame[300];
    char name[120];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(frame, sizeof frame, "{\"stream\":\"%s\",\"data\":{}}", name);
    EXPECT_FAIL(frame, PARSE_BAD_TYPE);
  }
}

/* One field of an event: key, kind, a valid value. */
struct fdef {
  const char *key;
  char kind; /* i int, d decimal, b bool, s symbol, v interval, L levels,
                e event name, k the kline object */
  const char *val;
};

static const struct fdef trade_defs[] = {
    {"e", 'e', "\"aggTrade\""},   {"E", 'i', "1633998523963"},
    {"s", 's', "\"NKNUSDT\""},    {"a", 'i', "15683430"},
    {"p", 'd', "\"0.35280000\""}, {"q", 'd', "\"58.00000000\""},
    {"f", 'i', "19862790"},       {"l", 'i', "19862790"},
    {"T", 'i', "1633998523963"},  {"m", 'b', "false"},
    {"M", 'x', "true"},
};
static const struct fdef depth_defs[] = {
    {"e", 'e', "\"depthUpdate\""},
    {"E", 'i', "1633998512568"},
    {"s", 's', "\"NKNUSDT\""},
    {"U", 'i', "499869753"},
    {"u", 'i', "499869754"},
    {"b", 'L', "[[\"0.35170000\",\"4265.00000000\"]]"},
    {"a", 'L', "[[\"0.35290000\",\"10968.00000000\"]]"},
};
static const struct fdef ticker_defs[] = {
    {"e", 'e', "\"24hrTicker\""},
    {"E", 'i', "1672515782136"},
    {"s", 's', "\"BNBBTC\""},
    {"p", 'd', "\"0.0015\""},
    {"P", 'd', "\"250.00\""},
    {"w", 'd', "\"0.0018\""},
    {"x", 'x', "\"0.0009\""},
    {"c", 'd', "\"0.0025\""},
    {"Q", 'x', "\"10\""},
    {"b", 'd', "\"0.0024\""},
    {"B", 'd', "\"10\""},
    {"a", 'd', "\"0.0026\""},
    {"A", 'd', "\"100\""},
    {"o", 'd', "\"0.0010\""},
    {"h", 'd', "\"0.0025\""},
    {"l", 'd', "\"0.0010\""},
    {"v", 'd', "\"10000\""},
    {"q", 'd', "\"18\""},
    {"O", 'x', "0"},
    {"C", 'x', "86400000"},
    {"F", 'i', "0"},
    {"L", 'i', "18150"},
    {"n", 'i', "18151"},
};
static const struct fdef kline_defs[] = {
    {"e", 'e', "\"kline\""},
    {"E", 'i', "1633998523963"},
    {"s", 's', "\"NKNUSDT\""},
    {"k", 'k', NULL},
};
static const struct fdef kline_k_defs[] = {
    {"t", 'i', "1633998480000"},
    {"T", 'i', "1633998539999"},
    {"s", 'x', "\"NKNUSDT\""},
    {"i", 'v', "\"1m\""},
    {"f", 'i', "19862761"},
    {"L", 'i', "19862790"},
    {"o", 'd', "\"0.35270000\""},
    {"c", 'd', "\"0.35280000\""},
    {"h", 'd', "\"0.35280000\""},
    {"l", 'd', "\"0.35220000\""},
    {"v", 'd', "\"25877.00000000\""},
    {"n", 'i', "30"},
    {"x", 'b', "false"},
    {"q", 'd', "\"9116.04600000\""},
    {"V", 'd', "\"58.00000000\""},
    {"Q", 'd', "\"20.46240000\""},
    {"B", 'x', "\"0\""},
};
static const struct fdef shutdown_defs[] = {
    {"e", 'e', "\"serverShutdown\""},
    {"E", 'i', "1770123456789"},
};

struct evdef {
  const char *stream;
  enum ev_type type;
  const struct fdef *f;
  size_t n;
};

#define ED(s, t, a)                                                            \
  { s, t, a, sizeof(a) / sizeof((a)[0]) }
static const struct evdef evdefs[] = {
    ED("nknusdt@aggTrade", EV_TRADE, trade_defs),
    ED("nknusdt@depth@100ms", EV_DEPTH, depth_defs),
    ED("bnbbtc@ticker", EV_TICKER, ticker_defs),
    ED("nknusdt@kline_1m", EV_KLINE, kline_defs),
    ED("!serverShutdown", EV_SERVER_SHUTDOWN, shutdown_defs),
};

/* Builds a combined frame of |d|, leaving out field |skip| of the payload
 * (or of k when |in_k|), or giving it the value |rep|. -1: none. */
static void build(char *out, size_t cap, const struct evdef *d, int in_k,
                  int idx, const char *rep, int combined) {
  size_t n = 0;
  int first = 1;

#define PUT(...) n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__)
  if (combined)
    PUT("{\"stream\":\"%s\",\"data\":{", d->stream);
  else
    PUT("{");
  for (size_t i = 0; i < d->n; i++) {
    const struct fdef *f = &d->f[i];
    int here = !in_k && (int)i == idx;
    if (here && !rep)
      continue;
    PUT("%s\"%s\":", first ? "" : ",", f->key);
    first = 0;
    if (here) {
      PUT("%s", rep);
    } else if (f->kind == 'k') {
      int kfirst = 1;
      PUT("{");
      for (size_t j = 0; j < NF(kline_k_defs); j++) {
        const struct fdef *g = &kline_k_defs[j];
        int khere = in_k && (int)j == idx;
        if (khere && !rep)
          continue;
        PUT("%s\"%s\":%s", kfirst ? "" : ",", g->key, khere ? rep : g->val);
        kfirst = 0;
      }
      PUT("}");
    } else {
      PUT("%s", f->val);
    }
  }
  PUT(combined ? "}}" : "}");
#undef PUT
  assert_true(n < cap);
}

static void all_defs_parse(void **state) {
  char frame[4096];
  struct ev ev;
  (void)state;
  for (size_t d = 0; d < NF(evdefs); d++) {
    build(frame, sizeof frame, &evdefs[d], 0, -1, NULL, 1);
    expect_ok(frame, &ev, evdefs[d].type);
    build(frame, sizeof frame, &evdefs[d], 0, -1, NULL, 0);
    expect_ok(frame, &ev, evdefs[d].type);
  }
}

static void each_missing_field(void **state) {
  char frame[4096];
  int checked = 0;
  (void)state;
  for (size_t d = 0; d < NF(evdefs); d++) {
    const struct evdef *ed = &evdefs[d];
    for (size_t i = 0; i < ed->n; i++) {
      if (ed->f[i].kind == 'x')
        continue;
      build(frame, sizeof frame, ed, 0, (int)i, NULL, 1);
      EXPECT_FAIL(frame, PARSE_MISSING_FIELD);
      checked++;
    }
    if (ed->type == EV_KLINE) {
      for (size_t j = 0; j < NF(kline_k_defs); j++) {
        if (kline_k_defs[j].kind == 'x')
          continue;
        build(frame, sizeof frame, ed, 1, (int)j, NULL, 1);
        EXPECT_FAIL(frame, PARSE_MISSING_FIELD);
        checked++;
      }
    }
  }
  /* 10 trade, 7 depth, 19 ticker, 4 + 15 kline, 2 shutdown */
  assert_int_equal(checked, 10 + 7 + 19 + 4 + 15 + 2);
}

struct badval {
  char kind;
  const char *val;
  enum parse_class cls;
};

static const struct badval badvals[] = {
    {'i', "\"1\"", PARSE_BAD_TYPE},
    {'i', "1.5", PARSE_BAD_TYPE},
    {'i', "1e3", PARSE_BAD_TYPE},
    {'i', "1e400", PARSE_BAD_TYPE},
    {'i', "1.0", PARSE_BAD_TYPE},
    {'i', "true", PARSE_BAD_TYPE},
    {'i', "null", PARSE_BAD_TYPE},
    {'i', "{}", PARSE_BAD_TYPE},
    {'i', "[1]", PARSE_BAD_TYPE},
    {'i', "9223372036854775808", PARSE_BAD_TYPE},
    {'i', "-9223372036854775809", PARSE_BAD_TYPE},
    {'i', "123456789012345678901234567890", PARSE_BAD_TYPE},
    {'d', "1", PARSE_BAD_TYPE},
    {'d', "1.5", PARSE_BAD_TYPE},
    {'d', "true", PARSE_BAD_TYPE},
    {'d', "null", PARSE_BAD_TYPE},
    {'d', "{}", PARSE_BAD_TYPE},
    {'d', "\"1e5\"", PARSE_BAD_DECIMAL},
    {'d', "\"\"", PARSE_BAD_DECIMAL},
    {'d', "\" 1\"", PARSE_BAD_DECIMAL},
    {'d', "\"1.\"", PARSE_BAD_DECIMAL},
    {'d', "\"abc\"", PARSE_BAD_DECIMAL},
    {'d', "\"1\\u00002\"", PARSE_BAD_DECIMAL},
    {'d', "\"123456789012345678901234567890.123456789012345678\"",
     PARSE_BAD_DECIMAL},
    {'b', "\"true\"", PARSE_BAD_TYPE},
    {'b', "1", PARSE_BAD_TYPE},
    {'b', "null", PARSE_BAD_TYPE},
    {'s', "1", PARSE_BAD_TYPE},
    {'s', "true", PARSE_BAD_TYPE},
    {'s', "\"\"", PARSE_BAD_TYPE},
    {'s', "[\"NKNUSDT\"]", PARSE_BAD_TYPE},
    {'s', "\"A\\u0000B\"", PARSE_BAD_TYPE},
    {'s', "\"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ\"",
     PARSE_BAD_TYPE},
    {'v', "\"2m\"", PARSE_BAD_TYPE},
    {'v', "\"1y\"", PARSE_BAD_TYPE},
    {'v', "\"15mm\"", PARSE_BAD_TYPE},
    {'v', "1", PARSE_BAD_TYPE},
    {'L', "\"0.1\"", PARSE_BAD_TYPE},
    {'L', "1", PARSE_BAD_TYPE},
    {'L', "{}", PARSE_BAD_TYPE},
    {'L', "null", PARSE_BAD_TYPE},
    {'L', "[[\"1\"]]", PARSE_BAD_TYPE},
    {'L', "[[\"1\",\"2\",\"3\"]]", PARSE_BAD_TYPE},
    {'L', "[[1,2]]", PARSE_BAD_TYPE},
    {'L', "[[\"1\",2]]", PARSE_BAD_TYPE},
    {'L', "[\"1\",\"2\"]", PARSE_BAD_TYPE},
    {'L', "[{\"p\":\"1\"}]", PARSE_BAD_TYPE},
    {'L', "[[[\"1\"],\"2\"]]", PARSE_BAD_TYPE},
    {'L', "[[\"1e5\",\"1\"]]", PARSE_BAD_DECIMAL},
    {'L', "[[\"1\",\"\"]]", PARSE_BAD_DECIMAL},
    {'k', "[]", PARSE_BAD_TYPE},
    {'k', "\"k\"", PARSE_BAD_TYPE},
    {'k', "null", PARSE_BAD_TYPE},
};

static void each_mistyped_field(void **state) {
  char frame[4096];
  int checked = 0;
  (void)state;
  for (size_t d = 0; d < NF(evdefs); d++) {
    const struct evdef *ed = &evdefs[d];
    for (int in_k = 0; in_k <= (ed->type == EV_KLINE); in_k++) {
      const struct fdef *fs = in_k ? kline_k_defs : ed->f;
      size_t n = in_k ? NF(kline_k_defs) : ed->n;
      for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < NF(badvals); b++) {
          if (badvals[b].kind != fs[i].kind)
            continue;
          build(frame, sizeof frame, ed, in_k, (int)i, badvals[b].val, 1);
          EXPECT_FAIL(frame, badvals[b].cls);
          /* the raw form fails the same way */
          build(frame, sizeof frame, ed, in_k, (int)i, badvals[b].val, 0);
          EXPECT_FAIL(frame, badvals[b].cls);
          checked++;
        }
      }
    }
  }
  assert_true(checked > 300);
}

static void bad_utf8(void **state) {
  (void)state;
  /* in a read field, an ignored field, a key, and a truncated sequence */
  EXPECT_FAIL("{\"e\":\"serverShutdown\",\"E\":1,\"s\":\"\xff\"}",
              PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"e\":\"serverShutdown\",\"E\":1,\"zz\":[\"ok\",\"\xc3\"]}",
              PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"\xfe\":1}", PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"stream\":\"\xe4\xb8\",\"data\":{}}", PARSE_BAD_UTF8);
  /* yajl lets overlong forms and surrogates through; kept text is checked */
  EXPECT_FAIL("{\"e\":\"aggTrade\",\"E\":6,\"s\":\"\xc0\xaf\",\"a\":7,"
              "\"p\":\"1\",\"q\":\"2\",\"f\":3,\"l\":4,\"T\":5,\"m\":false}",
              PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"e\":\"aggTrade\",\"E\":6,\"s\":\"A\xe0\x80\xaf"
              "B\",\"a\":7,"
              "\"p\":\"1\",\"q\":\"2\",\"f\":3,\"l\":4,\"T\":5,\"m\":false}",
              PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"stream\":\"\xed\xa0\x80@x\",\"data\":{}}", PARSE_BAD_UTF8);
  EXPECT_FAIL("{\"error\":{\"code\":1,\"msg\":\"\xf4\x90\x80\x80\"},\"id\":1}",
              PARSE_BAD_UTF8);
  {
    struct ev ev;
    expect_ok("{\"e\":\"aggTrade\",\"E\":6,\"s\":\"\xf0\x9f\x98\x80\","
              "\"a\":7,\"p\":\"1\",\"q\":\"2\",\"f\":3,\"l\":4,\"T\":5,"
              "\"m\":false}",
              &ev, EV_TRADE);
  }
}

static void size_limits(void **state) {
  struct parse small;
  struct parse_limits lim = {100, 4, 4, 0};
  struct ev ev;
  char frame[200];
  (void)state;
  assert_int_equal(parse_init(&small, &lim), 0);
  memset(frame, 'x', sizeof frame);
  /* over the frame limit: too_big before any parsing (even garbage) */
  assert_int_equal(parse_frame(&small, frame, 101, &ev), BL_ETOOBIG);
  assert_int_equal(small.err_class, PARSE_TOO_BIG);
  assert_int_equal(parse_frame(&small, frame, 100, &ev), BL_EPARSE);
  assert_int_equal(small.err_class, PARSE_BAD_JSON);
  /* 4 levels fit, 5 do not */
  snprintf(frame, sizeof frame,
           "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":1,\"u\":2,"
           "\"a\":[[\"1\",\"1\"]],\"b\":[[\"2\",\"1\"],[\"3\",\"1\"],"
           "[\"4\",\"1\"]]}");
  assert_int_equal(parse_frame(&small, frame, strlen(frame), &ev), 0);
  assert_int_equal(ev.u.depth.n_bids + ev.u.depth.n_asks, 4);
  snprintf(frame, sizeof frame,
           "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":1,\"u\":2,"
           "\"a\":[[\"1\",\"1\"],[\"1\",\"1\"]],\"b\":[[\"2\",\"1\"],"
           "[\"3\",\"1\"],[\"4\",\"1\"]]}");
  assert_int_equal(parse_frame(&small, frame, strlen(frame), &ev), BL_ETOOBIG);
  assert_int_equal(small.err_class, PARSE_TOO_BIG);
  /* nesting 4 fits, 5 does not */
  assert_int_equal(parse_frame(&small,
                               "{\"e\":\"serverShutdown\",\"E\":1,"
                               "\"z\":[[{\"a\":1}]]}",
                               44, &ev),
                   0);
  assert_int_equal(parse_frame(&small,
                               "{\"e\":\"serverShutdown\",\"E\":1,"
                               "\"z\":[[[{\"a\":1}]]]}",
                               46, &ev),
                   BL_ETOOBIG);
  assert_int_equal(small.n_errors[PARSE_TOO_BIG], 3);
  assert_int_equal(small.n_errors[PARSE_BAD_JSON], 1);
  assert_int_equal(small.n_frames, 6);
  parse_free(&small);

  lim.max_depth = PARSE_DEPTH_MAX_LIMIT + 1;
  assert_int_equal(parse_init(&small, &lim), BL_EINVAL);
}

static char *level_frame(size_t nb, size_t na, size_t *len) {
  size_t cap = 64 + (nb + na) * 40, n = 0;
  char *f = malloc(cap);
  assert_non_null(f);
  n += (size_t)snprintf(f + n, cap - n,
                        "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":1,"
                        "\"u\":2,\"b\":[");
  for (size_t i = 0; i < nb; i++)
    n += (size_t)snprintf(f + n, cap - n, "%s[\"%zu.5\",\"1\"]", i ? "," : "",
                          i);
  n += (size_t)snprintf(f + n, cap - n, "],\"a\":[");
  for (size_t i = 0; i < na; i++)
    n += (size_t)snprintf(f + n, cap - n, "%s[\"%zu\",\"2\"]", i ? "," : "", i);
  n += (size_t)snprintf(f + n, cap - n, "]}");
  assert_true(n < cap);
  *len = n;
  return f;
}

static void huge_level_arrays(void **state) {
  struct ev ev;
  size_t len;
  char *f;
  (void)state;
  /* exactly the default bound: 20,000 levels */
  f = level_frame(12000, 8000, &len);
  assert_int_equal(parse_frame(&P, f, len, &ev), 0);
  assert_int_equal(ev.u.depth.n_bids, 12000);
  assert_int_equal(ev.u.depth.n_asks, 8000);
  assert_string_equal(ev.u.depth.bids[0].price, "0.5");
  assert_string_equal(ev.u.depth.bids[11999].price, "11999.5");
  assert_string_equal(ev.u.depth.asks[0].price, "0");
  assert_string_equal(ev.u.depth.asks[7999].price, "7999");
  assert_string_equal(ev.u.depth.asks[7999].qty, "2");
  free(f);
  f = level_frame(12000, 8001, &len);
  assert_int_equal(parse_frame(&P, f, len, &ev), BL_ETOOBIG);
  assert_int_equal(P.err_class, PARSE_TOO_BIG);
  free(f);
  f = level_frame(30000, 0, &len);
  assert_int_equal(parse_frame(&P, f, len, &ev), BL_ETOOBIG);
  free(f);
}

static void deep_nesting(void **state) {
  size_t n = 10000, len;
  char *f = malloc(2 * n + 64);
  (void)state;
  assert_non_null(f);
  /* 10,000 '[' at the top */
  memset(f, '[', n);
  memset(f + n, ']', n);
  expect_fail(f, 2 * n, PARSE_BAD_JSON); /* not an object: first '[' */
  /* 10,000 levels inside an ignored field, unterminated and terminated */
  len = (size_t)snprintf(f, 64, "{\"e\":\"serverShutdown\",\"E\":1,\"z\":");
  memset(f + len, '[', n);
  expect_fail(f, len + n, PARSE_TOO_BIG);
  memset(f + len + n, ']', n);
  expect_fail(f, len + 2 * n, PARSE_TOO_BIG);
  /* objects */
  for (size_t i = 0; i < n / 8; i++)
    memcpy(f + len + i * 6, "{\"a\": ", 6);
  expect_fail(f, len + (n / 8) * 6, PARSE_TOO_BIG);
  free(f);
}

static void recovers_after_errors(void **state) {
  static const struct {
    const char *json;
    enum parse_class cls;
  } bad[] = {
      {"{\"e\":", PARSE_BAD_JSON},
      {"{\"e\":\"aggTrade\",\"p\":\"\xff\"}", PARSE_BAD_UTF8},
      {"[[[[", PARSE_BAD_JSON},
      {"{}", PARSE_UNKNOWN_EVENT},
      {"{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":1,\"u\":2,"
       "\"b\":[[\"1\",\"1\"]],\"a\":[[\"1e1\",\"1\"]]}",
       PARSE_BAD_DECIMAL},
      {"{\"e\":\"depthUpdate\",\"b\":[[\"1\",\"1\"]]}", PARSE_MISSING_FIELD},
      {"{\"e\":\"serverShutdown\",\"E\":1,\"z\":[[[[[[[[[[[[[[[[[[[[[[[[[[["
       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
       PARSE_TOO_BIG},
  };
  struct ev ev;
  char good[600];
  (void)state;
  snprintf(good, sizeof good, "%s", corpus_frame(20));
  for (size_t i = 0; i < NF(bad); i++) {
    EXPECT_FAIL(bad[i].json, bad[i].cls);
    /* the result of the previous attempt must not leak into this one */
    expect_ok(good, &ev, EV_DEPTH);
    assert_int_equal(ev.u.depth.n_bids, 1);
    assert_int_equal(ev.u.depth.n_asks, 3);
    assert_string_equal(ev.u.depth.asks[0].price, "0.35280000");
    assert_string_equal(ev.u.depth.asks[2].price, "0.35450000");
    assert_string_equal(ev.u.depth.bids[0].price, "0.35160000");
  }
}

static void counters_and_names(void **state) {
  struct parse q;
  struct ev ev;
  (void)state;
  assert_int_equal(parse_init(&q, NULL), 0);
  parse_frame(&q, "{", 1, &ev);
  parse_frame(&q, "{}", 2, &ev);
  parse_frame(&q, "{\"result\":null,\"id\":1}", 22, &ev);
  assert_int_equal(q.n_frames, 3);
  assert_int_equal(q.n_errors[PARSE_BAD_JSON], 1);
  assert_int_equal(q.n_errors[PARSE_UNKNOWN_EVENT], 1);
  assert_int_equal(q.err_class, PARSE_OK);
  assert_string_equal(q.errstr, "");
  parse_free(&q);
  assert_string_equal(parse_class_name(PARSE_BAD_UTF8), "bad_utf8");
  assert_string_equal(parse_class_name(PARSE_UNKNOWN_EVENT), "unknown_event");
  assert_string_equal(parse_class_name(99), "?");
}

static void arena_and_helpers(void **state) {
  struct parse_arena a;
  void *x, *y, *z;
  int64_t v;
  (void)state;
  assert_int_equal(parse_arena_init(&a, 256), 0);
  x = arena_malloc(&a, 10);
  y = arena_realloc(&a, x, 100); /* the last block grows in place */
  assert_ptr_equal(x, y);
  z = arena_realloc(&a, y, 1000); /* too big: moves to malloc */
  assert_true(!in_arena(&a, z));
  assert_int_equal(a.n_fallback, 1);
  arena_release(&a, z);
  parse_arena_free(&a);

  assert_int_equal(parse_int64_text("0", 1, &v), 0);
  assert_int_equal(parse_int64_text("-", 1, &v), -1);
  assert_int_equal(parse_int64_text("", 0, &v), -1);
  assert_int_equal(parse_int64_text("1.0", 3, &v), -1);
  assert_int_equal(parse_int64_text("1e2", 3, &v), -1);
  assert_int_equal(parse_int64_text("-42", 3, &v), 0);
  assert_true(v == -42);
  assert_true(parse_interval_valid("12h"));
  assert_false(parse_interval_valid("12H"));
  assert_false(parse_interval_valid(""));
}

/* Integer text at the edges of the unchecked loop (up to 18 digits) and
 * of int64. */
static void int64_text_edges(void **state) {
  int64_t v = 7;
  (void)state;
  assert_int_equal(parse_int64_text("999999999999999999", 18, &v), 0);
  assert_true(v == 999999999999999999LL);
  assert_int_equal(parse_int64_text("-999999999999999999", 19, &v), 0);
  assert_true(v == -999999999999999999LL);
  assert_int_equal(parse_int64_text("9223372036854775807", 19, &v), 0);
  assert_true(v == INT64_MAX);
  assert_int_equal(parse_int64_text("-9223372036854775808", 20, &v), 0);
  assert_true(v == INT64_MIN);
  assert_int_equal(parse_int64_text("9223372036854775808", 19, &v), -1);
  assert_int_equal(parse_int64_text("-9223372036854775809", 20, &v), -1);
  assert_int_equal(parse_int64_text("99999999999999999999", 20, &v), -1);
  assert_int_equal(parse_int64_text("1634043000000", 13, &v), 0);
  assert_true(v == 1634043000000LL);
  assert_int_equal(parse_int64_text("0", 1, &v), 0);
  assert_true(v == 0);
  assert_int_equal(parse_int64_text("12a4", 4, &v), -1);
  assert_int_equal(parse_int64_text("12/4", 4, &v), -1);
  assert_int_equal(parse_int64_text("1.5", 3, &v), -1);
  assert_int_equal(parse_int64_text("1e5", 3, &v), -1);
  assert_int_equal(parse_int64_text("-", 1, &v), -1);
  assert_int_equal(parse_int64_text("", 0, &v), -1);
  assert_int_equal(parse_int64_text("123456789012345678a", 19, &v), -1);
}

/* Eight digits at a time: every length from 1 to 19 digits, with and
 * without a sign, against strtoll; and a non-digit at every position of
 * the number, including the bytes just outside '0'..'9' and one with the
 * high bit set. */
static void int64_text_by_eight(void **state) {
  static const char bad[] = {'/', ':', 'a', ' ', '\x80', '\xb9', '\0'};
  char buf[32];
  int64_t v;
  (void)state;
  for (int n = 1; n <= 19; n++)
    for (int sign = 0; sign < 2; sign++)
      for (int seed = 0; seed < 50; seed++) {
        size_t len = 0;
        if (sign)
          buf[len++] = '-';
        for (int d = 0; d < n; d++)
          buf[len++] =
              (char)('0' +
                     (d == 0 && n == 19 ? seed % 9 : (seed * 7 + d * 3) % 10));
        buf[len] = '\0';
        v = 7;
        assert_int_equal(parse_int64_text(buf, len, &v), 0);
        assert_true(v == strtoll(buf, NULL, 10));
        for (size_t at = sign; at < len && seed < 2; at++) {
          for (size_t b = 0; b < sizeof bad; b++) {
            char keep = buf[at];
            buf[at] = bad[b];
            assert_int_equal(parse_int64_text(buf, len, &v), -1);
            buf[at] = keep;
          }
        }
      }
}

/* utf8_strict on its own: a bad sequence found at every offset of a
 * longer ASCII text (inside an eight-byte word, across two, in the tail),
 * good multibyte characters anywhere, and ASCII of every length. */
static void utf8_strict_every_offset(void **state) {
  static const char *const bad[] = {
      "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xe4\xb8", "\x80",         "\xff"};
  static const char *const good[] = {"\xc3\xa9", "\xe4\xb8\xad",
                                     "\xf0\x9f\x98\x80"};
  char text[64];
  (void)state;
  for (size_t len = 0; len < 40; len++) {
    memset(text, 'A', len);
    assert_true(utf8_strict(text, len));
  }
  for (size_t pos = 0; pos < 30; pos++) {
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
      size_t n = strlen(bad[b]);
      memset(text, 'B', sizeof text);
      memcpy(text + pos, bad[b], n);
      assert_false(utf8_strict(text, pos + n));
      assert_false(utf8_strict(text, 40));
    }
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
      size_t n = strlen(good[g]);
      memset(text, 'C', sizeof text);
      memcpy(text + pos, good[g], n);
      assert_true(utf8_strict(text, 40));
      /* cut short inside the character: invalid */
      assert_false(utf8_strict(text, pos + n - 1));
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(int64_text_edges),
      cmocka_unit_test(int64_text_by_eight),
      cmocka_unit_test(corpus_every_frame_parses),
      cmocka_unit_test(corpus_kline_exact),
      cmocka_unit_test(corpus_trade_exact),
      cmocka_unit_test(corpus_depth_exact),
      cmocka_unit_test(corpus_bookticker_ignored),
      cmocka_unit_test(ticker_synthetic),
      cmocka_unit_test(stream_after_data_and_field_order),
      cmocka_unit_test(control_frames),
      cmocka_unit_test(control_long_msg_cut_on_utf8),
      cmocka_unit_test(server_shutdown_both_forms),
      cmocka_unit_test(bad_json),
      cmocka_unit_test(unknown_shapes),
      cmocka_unit_test(all_defs_parse),
      cmocka_unit_test(each_missing_field),
      cmocka_unit_test(each_mistyped_field),
      cmocka_unit_test(bad_utf8),
      cmocka_unit_test(utf8_strict_every_offset),
      cmocka_unit_test(size_limits),
      cmocka_unit_test(huge_level_arrays),
      cmocka_unit_test(deep_nesting),
      cmocka_unit_test(recovers_after_errors),
      cmocka_unit_test(counters_and_names),
      cmocka_unit_test(arena_and_helpers),
  };
  return cmocka_run_group_tests_name("parse", tests, setup, teardown);
}
