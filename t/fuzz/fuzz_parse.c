/*
 * fuzz_parse.c: libFuzzer targets for binance/parse (parse_frame) and, when
 * built with -DFUZZ_REST, binance/rest_parse (fed in two chunks split at an
 * input-chosen point, kind chosen by the first byte). Not built by make:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     $(pkg-config --cflags yajl libuv) t/fuzz/fuzz_parse.c \
 *     src/binance/parse.c src/binance/rest_parse.c src/core/decimal.c \
 *     $(pkg-config --libs yajl libuv) -o build-fuzz/fuzz_parse
 *   (add -DFUZZ_REST and -o build-fuzz/fuzz_rest_parse for the REST one)
 *   build-fuzz/fuzz_parse -max_total_time=60 CORPUS_DIR
 *
 * Besides crashes and sanitizer reports, each run checks the invariants a
 * consumer relies on: a success yields a known type, NUL-terminated strings
 * and decimals that pass dec_valid; a failure yields a class and a reason.
 * State: one parser kept across inputs, as on a live connection.
 *
 * `make fuzz` (t/fuzz/run) builds, seeds and runs it from the fuzz-*
 * lines below; the command above is the same build by hand.
 */
/* fuzz-build: pkg:yajl pkg:libuv src/binance/parse.c */
/* fuzz-build: src/binance/rest_parse.c src/core/decimal.c */
/* fuzz-run: -max_len=8192 -dict=t/fuzz/parse.dict */
/* fuzz-seed: ws-json t/data/parse/BINANCE.ws.1.0 */
/* fuzz-build fuzz_rest_parse: -DFUZZ_REST pkg:yajl pkg:libuv */
/* fuzz-build fuzz_rest_parse: src/binance/parse.c src/binance/rest_parse.c */
/* fuzz-build fuzz_rest_parse: src/core/decimal.c */
/* fuzz-run fuzz_rest_parse: -max_len=65536 -dict=t/fuzz/parse.dict */
/* fuzz-seed fuzz_rest_parse: rest-body t/data/parse/BINANCE.http.0.0 */
/* fuzz-seed fuzz_rest_parse: rest-body t/data/parse/BINANCE.0.exchangeInfo */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binance/parse.h"
#include "binance/rest_parse.h"
#include "core/decimal.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dec(const char *d) {
  if (memchr(d, '\0', EV_DEC_MAX) == NULL || !dec_valid(d, strlen(d)))
    abort();
}

static void check_str(const char *s, size_t cap, int may_be_empty) {
  if (memchr(s, '\0', cap) == NULL || (!may_be_empty && s[0] == '\0'))
    abort();
}

#ifndef FUZZ_REST

static struct parse fz_parser;
static int fz_ready;

static void check_levels(const struct ev_level *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    check_dec(l[i].price);
    check_dec(l[i].qty);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ev ev;
  int rv;

  if (!fz_ready) {
    struct parse_limits lim = {1 << 16, 1000, 0, 0};
    if (parse_init(&fz_parser, &lim) != 0)
      abort();
    fz_ready = 1;
  }
  rv = parse_frame(&fz_parser, (const char *)data, size, &ev);
  if (rv != 0) {
    if (fz_parser.err_class <= PARSE_OK ||
        fz_parser.err_class >= PARSE_CLASS_COUNT ||
        fz_parser.errstr[0] == '\0' || ev.type != EV_NONE)
      abort();
    if (rv != BL_EPARSE && rv != BL_ETOOBIG)
      abort();
    return 0;
  }
  check_str(ev.stream, sizeof ev.stream, 1);
  switch (ev.type) {
  case EV_KLINE:
    check_str(ev.u.kline.symbol, EV_SYMBOL_MAX, 0);
    if (!parse_interval_valid(ev.u.kline.interval))
      abort();
    check_dec(ev.u.kline.open);
    check_dec(ev.u.kline.high);
    check_dec(ev.u.kline.low);
    check_dec(ev.u.kline.close);
    check_dec(ev.u.kline.volume);
    check_dec(ev.u.kline.quote_volume);
    check_dec(ev.u.kline.taker_buy_volume);
    check_dec(ev.u.kline.taker_buy_quote_volume);
    break;
  case EV_TICKER:
    check_str(ev.u.ticker.symbol, EV_SYMBOL_MAX, 0);
    check_dec(ev.u.ticker.price);
    check_dec(ev.u.ticker.price_change_percent);
    check_dec(ev.u.ticker.ask_qty);
    break;
  case EV_DEPTH:
    check_str(ev.u.depth.symbol, EV_SYMBOL_MAX, 0);
    if (ev.u.depth.n_bids + ev.u.depth.n_asks > 1000)
      abort();
    check_levels(ev.u.depth.bids, ev.u.depth.n_bids);
    check_levels(ev.u.depth.asks, ev.u.depth.n_asks);
    break;
  case EV_TRADE:
    check_str(ev.u.trade.symbol, EV_SYMBOL_MAX, 0);
    check_dec(ev.u.trade.price);
    check_dec(ev.u.trade.quantity);
    break;
  case EV_CONTROL:
    check_str(ev.u.control.msg, sizeof ev.u.control.msg, 1);
    break;
  case EV_SERVER_SHUTDOWN:
  case EV_IGNORED:
    break;
  default:
    abort();
  }
  return 0;
}

#else /* FUZZ_REST */

static struct rest_parse fz_rest;
static int fz_ready;

static int fz_kline(void *arg, const struct rest_kline *k) {
  (void)arg;
  check_dec(k->open);
  check_dec(k->taker_buy_quote_volume);
  return 0;
}

static int fz_trade(void *arg, const struct rest_agg_trade *t) {
  (void)arg;
  check_dec(t->price);
  check_dec(t->quantity);
  return 0;
}

static int fz_symbol(void *arg, const struct rest_symbol *s) {
  (void)arg;
  check_str(s->symbol, sizeof s->symbol, 0);
  check_str(s->status, sizeof s->status, 0);
  if (s->tick_size[0])
    check_dec(s->tick_size);
  if (s->step_size[0])
    check_dec(s->step_size);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct rest_parse_cbs cbs = {fz_kline, fz_trade, fz_symbol,
                                            NULL};
  enum rest_kind kind;
  size_t split;
  int rv;

  if (!fz_ready) {
    struct rest_parse_limits lim = {1 << 20, 500, 0};
    if (rest_parse_init(&fz_rest, &lim) != 0)
      abort();
    fz_ready = 1;
  }
  if (size < 2)
    return 0;
  kind = (enum rest_kind)(1 + data[0] % 5);
  split = data[1] % (size - 1);
  data += 2;
  size -= 2;
  if (rest_parse_begin(&fz_rest, kind, &cbs) != 0)
    abort();
  rv = rest_parse_feed(&fz_rest, (const char *)data, split);
  if (rv == 0)
    rv = rest_parse_feed(&fz_rest, (const char *)data + split, size - split);
  rv = rest_parse_end(&fz_rest);
  if (rv == BL_EPARSE || rv == BL_ETOOBIG) {
    if (fz_rest.err_class == PARSE_OK || fz_rest.errstr[0] == '\0')
      abort();
  } else if (rv == 0 && kind == REST_DEPTH) {
    for (size_t i = 0; i < fz_rest.depth.n_bids; i++)
      check_dec(fz_rest.depth.bids[i].qty);
    for (size_t i = 0; i < fz_rest.depth.n_asks; i++)
      check_dec(fz_rest.depth.asks[i].price);
  } else if (rv != 0 && rv != BL_EPROTO && rv != BL_ECANCELED) {
    abort();
  }
  return 0;
}

#endif
