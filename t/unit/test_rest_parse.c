/*
 * test_rest_parse.c: unit tests for binance/rest_parse: the real 1.8 MB
 * exchangeInfo and the four real depth snapshots of the cryptofeed capture
 * (whole and fed in small chunks), synthetic klines (the real row of
 * binance-api.md 3.5) and aggTrades, error bodies, malformed bodies and
 * limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "binance/rest_parse.h"
#include "core/err.h"

#define EXINFO "t/data/parse/BINANCE.0.exchangeInfo"
#define DEPTHS "t/data/parse/BINANCE.http.0.0"

static struct rest_parse R;

static int setup(void **state) {
  (void)state;
  return rest_parse_init(&R, NULL);
}

static int teardown(void **state) {
  (void)state;
  rest_parse_free(&R);
  return 0;
}

static char *read_all(const char *path, size_t *len) {
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

/* The JSON after "<url> -> <ts>: " of a recorded line. */
static const char *body_of(const char *line) {
  const char *p = strstr(line, " -> ");
  assert_non_null(p);
  p = strstr(p, ": ");
  assert_non_null(p);
  return p + 2;
}

/* ---- exchangeInfo ------------------------------------------------------ */

struct sym_tally {
  size_t n, trading;
  struct rest_symbol nkn, btc;
  int seen_nkn, seen_btc;
};

static int on_symbol(void *arg, const struct rest_symbol *s) {
  struct sym_tally *t = arg;
  t->n++;
  if (strcmp(s->status, "TRADING") == 0)
    t->trading++;
  if (strcmp(s->symbol, "NKNUSDT") == 0) {
    t->nkn = *s;
    t->seen_nkn++;
  }
  if (strcmp(s->symbol, "BTCUSDT") == 0) {
    t->btc = *s;
    t->seen_btc++;
  }
  return 0;
}

static void check_exinfo(const struct sym_tally *t) {
  assert_int_equal(t->n, 1695);
  assert_int_equal(t->trading, 1262);
  assert_int_equal(R.info.n_symbols, 1695);
  assert_int_equal(R.info.n_bad_symbols, 0);
  assert_int_equal(t->seen_nkn, 1);
  assert_string_equal(t->nkn.status, "TRADING");
  assert_string_equal(t->nkn.base_asset, "NKN");
  assert_string_equal(t->nkn.quote_asset, "USDT");
  assert_string_equal(t->nkn.tick_size, "0.00010000");
  assert_string_equal(t->nkn.step_size, "1.00000000");
  assert_int_equal(t->seen_btc, 1);
  assert_string_equal(t->btc.tick_size, "0.01000000");
  assert_string_equal(t->btc.step_size, "0.00001000");
  assert_true(R.info.weight_limit == 1200);
  assert_true(R.info.weight_interval_num == 1);
  assert_string_equal(R.info.weight_interval, "MINUTE");
  assert_true(R.info.server_time == 1633998511098LL);
}

static void exchange_info_real(void **state) {
  size_t len;
  char *all = read_all(EXINFO, &len);
  const char *body = body_of(all);
  size_t blen = strlen(body);
  struct sym_tally t;
  struct rest_parse_cbs cbs = {NULL, NULL, on_symbol, &t};
  (void)state;
  while (blen && body[blen - 1] == '\n')
    blen--;
  assert_true(blen > 1800000);

  memset(&t, 0, sizeof t);
  assert_int_equal(rest_parse_body(&R, REST_EXCHANGE_INFO, &cbs, body, blen),
                   0);
  check_exinfo(&t);

  /* the same, fed in 7-byte and 4 KiB chunks as a socket would */
  for (size_t step = 7; step <= 4096; step = step == 7 ? 4096 : 8192) {
    memset(&t, 0, sizeof t);
    assert_int_equal(rest_parse_begin(&R, REST_EXCHANGE_INFO, &cbs), 0);
    for (size_t off = 0; off < blen; off += step) {
      size_t n = blen - off < step ? blen - off : step;
      assert_int_equal(rest_parse_feed(&R, body + off, n), 0);
    }
    assert_int_equal(rest_parse_end(&R), 0);
    check_exinfo(&t);
  }
  free(all);
}

static void exchange_info_odd_symbols(void **state) {
  static const char body[] =
      "{\"timezone\":\"UTC\",\"rateLimits\":[{\"rateLimitType\":\"ORDERS\","
      "\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":50},"
      "{\"limit\":6000,\"intervalNum\":1,\"interval\":\"MINUTE\","
      "\"rateLimitType\":\"REQUEST_WEIGHT\"}],\"exchangeFilters\":[],"
      "\"symbols\":["
      /* fine, filters in any order, tickSize before filterType */
      "{\"symbol\":\"AAA\",\"status\":\"TRADING\",\"baseAsset\":\"A\","
      "\"quoteAsset\":\"B\",\"permissionSets\":[[\"SPOT\"]],\"filters\":["
      "{\"filterType\":\"NEW_FILTER\",\"tickSize\":\"bad\"},"
      "{\"stepSize\":\"0.001\",\"filterType\":\"LOT_SIZE\"},"
      "{\"tickSize\":\"0.01\",\"minPrice\":\"0\",\"filterType\":"
      "\"PRICE_FILTER\"}]},"
      /* no filters at all: tick and step empty */
      "{\"symbol\":\"BBB\",\"status\":\"HALT\",\"baseAsset\":\"B\","
      "\"quoteAsset\":\"C\"},"
      /* missing status */
      "{\"symbol\":\"CCC\",\"baseAsset\":\"C\",\"quoteAsset\":\"D\"},"
      /* bad tickSize in PRICE_FILTER */
      "{\"symbol\":\"DDD\",\"status\":\"TRADING\",\"baseAsset\":\"D\","
      "\"quoteAsset\":\"E\",\"filters\":[{\"filterType\":\"PRICE_FILTER\","
      "\"tickSize\":\"1e-8\"}]},"
      /* symbol not a string, symbol empty, an array instead of a symbol */
      "{\"symbol\":5,\"status\":\"TRADING\",\"baseAsset\":\"D\","
      "\"quoteAsset\":\"E\"},"
      "{\"symbol\":\"\",\"status\":\"TRADING\",\"baseAsset\":\"D\","
      "\"quoteAsset\":\"E\"},"
      "[1,2],"
      /* a UTF-8 symbol */
      "{\"symbol\":\"这是测试币456\",\"status\":\"TRADING\","
      "\"baseAsset\":\"这是测试币\",\"quoteAsset\":\"USDT\"}"
      "],\"serverTime\":5}";
  struct sym_tally t;
  struct rest_parse_cbs cbs = {NULL, NULL, on_symbol, &t};
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(
      rest_parse_body(&R, REST_EXCHANGE_INFO, &cbs, body, strlen(body)), 0);
  assert_int_equal(t.n, 3);
  assert_int_equal(R.info.n_symbols, 3);
  assert_int_equal(R.info.n_bad_symbols, 5);
  assert_true(R.info.weight_limit == 6000);
  assert_string_equal(R.info.weight_interval, "MINUTE");
  assert_true(R.info.server_time == 5);
}

static int collect_first_symbol(void *arg, const struct rest_symbol *s) {
  *(struct rest_symbol *)arg = *s;
  return 0;
}

static void exchange_info_filter_values(void **state) {
  static const char body[] =
      "{\"symbols\":[{\"symbol\":\"AAA\",\"status\":\"TRADING\","
      "\"baseAsset\":\"A\",\"quoteAsset\":\"B\",\"filters\":["
      "{\"stepSize\":\"0.001\",\"filterType\":\"LOT_SIZE\"},"
      "{\"filterType\":\"MARKET_LOT_SIZE\",\"stepSize\":\"0.00000000\"},"
      "{\"tickSize\":\"0.01\",\"filterType\":\"PRICE_FILTER\"}]}]}";
  struct rest_symbol s;
  struct rest_parse_cbs cbs = {NULL, NULL, collect_first_symbol, &s};
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(
      rest_parse_body(&R, REST_EXCHANGE_INFO, &cbs, body, strlen(body)), 0);
  assert_string_equal(s.symbol, "AAA");
  assert_string_equal(s.tick_size, "0.01");
  assert_string_equal(s.step_size, "0.001");
  /* no rateLimits: defaults */
  assert_true(R.info.weight_limit == 0);
  assert_true(R.info.weight_interval_num == 1);
  /* no symbols key */
  assert_int_equal(
      rest_parse_body(&R, REST_EXCHANGE_INFO, NULL, "{\"x\":1}", 7), BL_EPARSE);
  assert_int_equal(R.err_class, PARSE_MISSING_FIELD);
  assert_int_equal(
      rest_parse_body(&R, REST_EXCHANGE_INFO, NULL, "{\"symbols\":{}}", 14),
      BL_EPARSE);
  assert_int_equal(R.err_class, PARSE_BAD_TYPE);
}

/* ---- depth snapshots --------------------------------------------------- */

static void depth_real(void **state) {
  static const struct {
    const char *sym;
    int64_t last;
    size_t nb, na;
    const char *bid0, *ask_last;
  } want[] = {
      {"NKNUSDT", 499869752, 609, 1000, "0.35210000", "0.55060000"},
      {"BLZETH", 281916627, 174, 1000, "0.00006547", "0.00348000"},
      {"LRCBTC", 259345543, 176, 1000, "0.00000637", "0.00001785"},
      {"RUNEEUR", 15602511, 221, 468, "6.25100000", "45.00000000"},
  };
  size_t len, i = 0;
  char *all = read_all(DEPTHS, &len), *line, *save = NULL;
  (void)state;
  for (line = strtok_r(all, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), i++) {
    const char *body = body_of(line);
    assert_true(i < 4);
    assert_non_null(strstr(line, want[i].sym));
    assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, body, strlen(body)),
                     0);
    assert_true(R.depth.last_update_id == want[i].last);
    assert_int_equal(R.depth.n_bids, want[i].nb);
    assert_int_equal(R.depth.n_asks, want[i].na);
    assert_string_equal(R.depth.bids[0].price, want[i].bid0);
    assert_string_equal(R.depth.asks[want[i].na - 1].price, want[i].ask_last);
  }
  assert_int_equal(i, 4);
  /* the first NKNUSDT bid's quantity */
  free(all);
}

static void depth_synthetic(void **state) {
  static const char body[] =
      "{\"asks\":[[\"4.00000200\",\"12.00000000\"]],\"lastUpdateId\":1027024,"
      "\"bids\":[[\"4.00000000\",\"431.00000000\"],[\"3.9\",\"1\"]],"
      "\"extra\":{\"x\":[1]}}";
  (void)state;
  assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, body, strlen(body)),
                   0);
  assert_true(R.depth.last_update_id == 1027024);
  assert_int_equal(R.depth.n_bids, 2);
  assert_int_equal(R.depth.n_asks, 1);
  assert_string_equal(R.depth.bids[0].qty, "431.00000000");
  assert_string_equal(R.depth.bids[1].price, "3.9");
  assert_string_equal(R.depth.asks[0].price, "4.00000200");
  /* empty book */
  assert_int_equal(
      rest_parse_body(&R, REST_DEPTH, NULL,
                      "{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}", 38),
      0);
  assert_int_equal(R.depth.n_bids + R.depth.n_asks, 0);
}

static void depth_malformed(void **state) {
  static const struct {
    const char *body;
    int rv;
    enum parse_class cls;
  } cases[] = {
      {"{\"bids\":[],\"asks\":[]}", BL_EPARSE, PARSE_MISSING_FIELD},
      {"{\"lastUpdateId\":1,\"asks\":[]}", BL_EPARSE, PARSE_MISSING_FIELD},
      {"{\"lastUpdateId\":1,\"bids\":[]}", BL_EPARSE, PARSE_MISSING_FIELD},
      {"{\"lastUpdateId\":\"1\",\"bids\":[],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1.5,\"bids\":[],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":{},\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":[[\"1\"]],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":[[\"1\",\"2\",\"3\"]],\"asks\":[]}",
       BL_EPARSE, PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":[[1,2]],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":[\"1\"],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_TYPE},
      {"{\"lastUpdateId\":1,\"bids\":[[\"1.\",\"2\"]],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_DECIMAL},
      {"{\"lastUpdateId\":1,\"bids\":[],\"bids\":[],\"asks\":[]}", BL_EPARSE,
       PARSE_BAD_JSON},
      {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]", BL_EPARSE,
       PARSE_BAD_JSON},
      {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}x", BL_EPARSE,
       PARSE_BAD_JSON},
      {"[]", BL_EPARSE, PARSE_BAD_TYPE},
      {"1", BL_EPARSE, PARSE_BAD_TYPE},
      {"", BL_EPARSE, PARSE_BAD_JSON},
      {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[],\"x\":\"\xff\"}", BL_EPARSE,
       PARSE_BAD_UTF8},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rv = rest_parse_body(&R, REST_DEPTH, NULL, cases[i].body,
                             strlen(cases[i].body));
    if (rv != cases[i].rv || R.err_class != cases[i].cls)
      fail_msg("%s -> %d %s (%s)", cases[i].body, rv,
               parse_class_name(R.err_class), R.errstr);
  }
}

static char *levels_body(size_t nb, size_t na, size_t *len) {
  size_t cap = 64 + (nb + na) * 24, n = 0;
  char *b = malloc(cap);
  assert_non_null(b);
  n += (size_t)snprintf(b + n, cap - n, "{\"lastUpdateId\":7,\"bids\":[");
  for (size_t i = 0; i < nb; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s[\"%zu\",\"1\"]", i ? "," : "", i);
  n += (size_t)snprintf(b + n, cap - n, "],\"asks\":[");
  for (size_t i = 0; i < na; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s[\"%zu\",\"1\"]", i ? "," : "", i);
  n += (size_t)snprintf(b + n, cap - n, "]}");
  assert_true(n < cap);
  *len = n;
  return b;
}

static void depth_limits(void **state) {
  size_t len;
  char *b;
  (void)state;
  b = levels_body(5000, 5000, &len);
  assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, b, len), 0);
  assert_int_equal(R.depth.n_bids, 5000);
  assert_int_equal(R.depth.n_asks, 5000);
  assert_string_equal(R.depth.asks[4999].price, "4999");
  free(b);
  b = levels_body(5001, 0, &len);
  assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, b, len), BL_ETOOBIG);
  assert_int_equal(R.err_class, PARSE_TOO_BIG);
  free(b);
  b = levels_body(0, 5001, &len);
  assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, b, len), BL_ETOOBIG);
  free(b);
}

/* ---- klines ------------------------------------------------------------ */

#define KROW                                                                   \
  "[1634943780000,\"60685.22000000\",\"60729.84000000\",\"60670.90000000\","   \
  "\"60719.27000000\",\"21.63272000\",1634943839999,\"1313200.01340410\","     \
  "617,\"12.28492000\",\"745719.41022840\",\"0\"]"

struct kl_tally {
  size_t n;
  struct rest_kline first, last;
  size_t stop_after;
};

static int on_kline(void *arg, const struct rest_kline *k) {
  struct kl_tally *t = arg;
  if (t->n == 0)
    t->first = *k;
  t->last = *k;
  t->n++;
  return t->stop_after && t->n >= t->stop_after;
}

static void klines_real_row(void **state) {
  static const char body[] =
      "[" KROW ",[1634943840000,\"1\",\"2\",\"0.5\",\"1.5\",\"0\","
      "1634943899999,\"0\",0,\"0\",\"0\"],[1,\"1\",\"1\",\"1\",\"1\",\"1\","
      "2,\"1\",3,\"1\",\"1\",\"0\",\"future\",[1]]]";
  struct kl_tally t;
  struct rest_parse_cbs cbs = {on_kline, NULL, NULL, &t};
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rest_parse_body(&R, REST_KLINES, &cbs, body, strlen(body)),
                   0);
  assert_int_equal(t.n, 3);
  assert_int_equal(R.n_rows, 3);
  assert_true(t.first.open_time == 1634943780000LL);
  assert_string_equal(t.first.open, "60685.22000000");
  assert_string_equal(t.first.high, "60729.84000000");
  assert_string_equal(t.first.low, "60670.90000000");
  assert_string_equal(t.first.close, "60719.27000000");
  assert_string_equal(t.first.volume, "21.63272000");
  assert_true(t.first.close_time == 1634943839999LL);
  assert_string_equal(t.first.quote_volume, "1313200.01340410");
  assert_true(t.first.trades_count == 617);
  assert_string_equal(t.first.taker_buy_volume, "12.28492000");
  assert_string_equal(t.first.taker_buy_quote_volume, "745719.41022840");
  assert_true(t.last.trades_count == 3);
  /* an empty array is no rows */
  memset(&t, 0, sizeof t);
  assert_int_equal(rest_parse_body(&R, REST_KLINES, &cbs, "[]", 2), 0);
  assert_int_equal(t.n, 0);
}

static void klines_malformed(void **state) {
  static const struct {
    const char *body;
    enum parse_class cls;
  } cases[] = {
      {"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\"]]",
       PARSE_MISSING_FIELD},
      {"[[]]", PARSE_MISSING_FIELD},
      {"[[\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\"]]",
       PARSE_BAD_TYPE},
      {"[[1,1,\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\"]]", PARSE_BAD_TYPE},
      {"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2.5,\"1\",3,\"1\",\"1\"]]",
       PARSE_BAD_TYPE},
      {"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",1e3,\"1\",\"1\"]]",
       PARSE_BAD_TYPE},
      {"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",[\"1\"]]]",
       PARSE_BAD_TYPE},
      {"[[1,\"1\",\"1\",\"1\",\"x\",\"1\",2,\"1\",3,\"1\",\"1\"]]",
       PARSE_BAD_DECIMAL},
      {"[[99999999999999999999,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,"
       "\"1\",\"1\"]]",
       PARSE_BAD_TYPE},
      {"[1]", PARSE_BAD_TYPE},
      {"[{}]", PARSE_BAD_TYPE},
      {"{}", PARSE_BAD_TYPE},
      {"[" KROW, PARSE_BAD_JSON},
      {"[" KROW "]]", PARSE_BAD_JSON},
      {"[" KROW ",]", PARSE_BAD_JSON},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rv = rest_parse_body(&R, REST_KLINES, NULL, cases[i].body,
                             strlen(cases[i].body));
    if (rv != BL_EPARSE || R.err_class != cases[i].cls)
      fail_msg("%s -> %d %s (%s)", cases[i].body, rv,
               parse_class_name(R.err_class), R.errstr);
  }
}

static void callback_stops(void **state) {
  static const char body[] = "[" KROW "," KROW "," KROW "]";
  struct kl_tally t;
  struct rest_parse_cbs cbs = {on_kline, NULL, NULL, &t};
  (void)state;
  memset(&t, 0, sizeof t);
  t.stop_after = 2;
  assert_int_equal(rest_parse_body(&R, REST_KLINES, &cbs, body, strlen(body)),
                   BL_ECANCELED);
  assert_int_equal(t.n, 2);
  /* the parser is usable right after */
  memset(&t, 0, sizeof t);
  assert_int_equal(rest_parse_body(&R, REST_KLINES, &cbs, body, strlen(body)),
                   0);
  assert_int_equal(t.n, 3);
}

/* ---- aggTrades --------------------------------------------------------- */

struct tr_tally {
  size_t n;
  struct rest_agg_trade first;
};

static int on_trade(void *arg, const struct rest_agg_trade *tr) {
  struct tr_tally *t = arg;
  if (t->n++ == 0)
    t->first = *tr;
  return 0;
}

#define TRADE                                                                  \
  "{\"a\":26129,\"p\":\"0.01633102\",\"q\":\"4.70443515\",\"f\":27781,"        \
  "\"l\":27781,\"T\":1498793709153,\"m\":true,\"M\":true}"

static void agg_trades(void **state) {
  static const char body[] =
      "[" TRADE ",{\"M\":false,\"m\":false,\"T\":2,\"l\":4,\"f\":3,"
      "\"q\":\"1\",\"p\":\"2\",\"a\":26130,\"new\":{\"x\":[]}}]";
  struct tr_tally t;
  struct rest_parse_cbs cbs = {NULL, on_trade, NULL, &t};
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(
      rest_parse_body(&R, REST_AGG_TRADES, &cbs, body, strlen(body)), 0);
  assert_int_equal(t.n, 2);
  assert_int_equal(R.n_rows, 2);
  assert_true(t.first.agg_trade_id == 26129);
  assert_string_equal(t.first.price, "0.01633102");
  assert_string_equal(t.first.quantity, "4.70443515");
  assert_true(t.first.first_trade_id == 27781);
  assert_true(t.first.last_trade_id == 27781);
  assert_true(t.first.trade_time == 1498793709153LL);
  assert_int_equal(t.first.is_buyer_maker, 1);
}

static void agg_trades_malformed(void **state) {
  static const struct {
    const char *body;
    enum parse_class cls;
  } cases[] = {
      {"[{\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,\"m\":true}]",
       PARSE_MISSING_FIELD},
      {"[{\"a\":1,\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,\"m\":true}]",
       PARSE_MISSING_FIELD},
      {"[{\"a\":1,\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1}]",
       PARSE_MISSING_FIELD},
      {"[{\"a\":\"1\",\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,"
       "\"m\":true}]",
       PARSE_BAD_TYPE},
      {"[{\"a\":1,\"p\":1,\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,\"m\":true}]",
       PARSE_BAD_TYPE},
      {"[{\"a\":1,\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,"
       "\"m\":\"true\"}]",
       PARSE_BAD_TYPE},
      {"[{\"a\":1,\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":{},"
       "\"m\":true}]",
       PARSE_BAD_TYPE},
      {"[{\"a\":1,\"p\":\"1e1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,"
       "\"m\":true}]",
       PARSE_BAD_DECIMAL},
      {"[{\"a\":1,\"a\":2,\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,"
       "\"m\":true}]",
       PARSE_BAD_JSON},
      {"[[1]]", PARSE_BAD_TYPE},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rv = rest_parse_body(&R, REST_AGG_TRADES, NULL, cases[i].body,
                             strlen(cases[i].body));
    if (rv != BL_EPARSE || R.err_class != cases[i].cls)
      fail_msg("%s -> %d %s (%s)", cases[i].body, rv,
               parse_class_name(R.err_class), R.errstr);
  }
}

/* ---- error bodies and limits ------------------------------------------- */

static void error_bodies(void **state) {
  static const char body[] = "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}";
  static const enum rest_kind kinds[] = {REST_KLINES, REST_AGG_TRADES,
                                         REST_DEPTH, REST_EXCHANGE_INFO,
                                         REST_ERROR_ONLY};
  (void)state;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    assert_int_equal(rest_parse_body(&R, kinds[i], NULL, body, strlen(body)),
                     BL_EPROTO);
    assert_int_equal(R.api_code, -1121);
    assert_string_equal(R.api_msg, "Invalid symbol.");
    assert_int_equal(R.err_class, PARSE_OK);
  }
  assert_int_equal(
      rest_parse_body(&R, REST_ERROR_ONLY, NULL,
                      "{\"msg\":\"Too many requests; current "
                      "limit is 6000\",\"code\":-1003}",
                      strlen("{\"msg\":\"Too many requests; current "
                             "limit is 6000\",\"code\":-1003}")),
      BL_EPROTO);
  assert_int_equal(R.api_code, -1003);
  /* a long message is cut on a character boundary */
  {
    char big[700];
    int n = snprintf(big, sizeof big, "{\"code\":-1,\"msg\":\"");
    memset(big + n, 'x', 254);
    n += 254;
    n += snprintf(big + n, sizeof big - (size_t)n, "\xc3\xa9tail\"}");
    assert_int_equal(rest_parse_body(&R, REST_ERROR_ONLY, NULL, big, (size_t)n),
                     BL_EPROTO);
    assert_int_equal(strlen(R.api_msg), 254);
  }
  /* not an error body */
  assert_int_equal(
      rest_parse_body(&R, REST_ERROR_ONLY, NULL, "{\"code\":\"x\"}", 12),
      BL_EPARSE);
  assert_int_equal(R.err_class, PARSE_MISSING_FIELD);
  assert_int_equal(rest_parse_body(&R, REST_KLINES, NULL, "{\"code\":1}", 10),
                   BL_EPARSE);
  assert_int_equal(R.err_class, PARSE_BAD_TYPE);
}

static void limits_and_state(void **state) {
  struct rest_parse small;
  struct rest_parse_limits lim = {64, 2, 4};
  char deep[20000];
  size_t n;
  (void)state;
  assert_int_equal(rest_parse_init(&small, &lim), 0);
  /* body size is counted across feeds */
  assert_int_equal(rest_parse_begin(&small, REST_KLINES, NULL), 0);
  memset(deep, ' ', 64);
  assert_int_equal(rest_parse_feed(&small, "[", 1), 0);
  assert_int_equal(rest_parse_feed(&small, deep, 63), 0);
  assert_int_equal(rest_parse_feed(&small, "]", 1), BL_ETOOBIG);
  assert_int_equal(small.err_class, PARSE_TOO_BIG);
  assert_int_equal(rest_parse_feed(&small, "]", 1), BL_ETOOBIG); /* sticky */
  assert_int_equal(rest_parse_end(&small), BL_ETOOBIG);
  /* nesting */
  assert_int_equal(
      rest_parse_body(&small, REST_DEPTH, NULL, "{\"x\":[[[[1]]]]}", 15),
      BL_ETOOBIG);
  rest_parse_free(&small);

  /* 10,000 '[' in a default parser */
  memset(deep, '[', 10000);
  assert_int_equal(rest_parse_body(&R, REST_KLINES, NULL, deep, 10000),
                   BL_EPARSE); /* column 0 of a row cannot be an array */
  assert_int_equal(R.err_class, PARSE_BAD_TYPE);
  n = (size_t)snprintf(deep, 64, "{\"symbols\":");
  memset(deep + n, '[', 10000);
  assert_int_equal(
      rest_parse_body(&R, REST_EXCHANGE_INFO, NULL, deep, n + 10000),
      BL_ETOOBIG);
  n = (size_t)snprintf(deep, 64, "{\"lastUpdateId\":1,\"x\":");
  for (size_t i = 0; i < 1000; i++)
    memcpy(deep + n + 5 * i, "{\"a\":", 5);
  assert_int_equal(rest_parse_body(&R, REST_DEPTH, NULL, deep, n + 5000),
                   BL_ETOOBIG);

  /* calls out of order */
  assert_int_equal(rest_parse_end(&R), BL_ETOOBIG); /* last body's error */
  assert_int_equal(rest_parse_begin(&R, 99, NULL), BL_EINVAL);
  lim.max_depth = 1000;
  assert_int_equal(rest_parse_init(&small, &lim), BL_EINVAL);

  /* an unfinished body is released by free (no leak under ASan) */
  assert_int_equal(rest_parse_init(&small, NULL), 0);
  assert_int_equal(rest_parse_begin(&small, REST_DEPTH, NULL), 0);
  assert_int_equal(rest_parse_feed(&small, "{\"bids\":[[\"1\"", 13), 0);
  rest_parse_free(&small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exchange_info_real),
      cmocka_unit_test(exchange_info_odd_symbols),
      cmocka_unit_test(exchange_info_filter_values),
      cmocka_unit_test(depth_real),
      cmocka_unit_test(depth_synthetic),
      cmocka_unit_test(depth_malformed),
      cmocka_unit_test(depth_limits),
      cmocka_unit_test(klines_real_row),
      cmocka_unit_test(klines_malformed),
      cmocka_unit_test(callback_stops),
      cmocka_unit_test(agg_trades),
      cmocka_unit_test(agg_trades_malformed),
      cmocka_unit_test(error_bodies),
      cmocka_unit_test(limits_and_state),
  };
  return cmocka_run_group_tests_name("rest_parse", tests, setup, teardown);
}
