/*
 * rest_parse.c: Binance REST bodies to records (see rest_parse.h).
 *
 * Like binance/parse, a stack of open containers says what each one is
 * (the body, a kline row, a trade, a level pair, a symbol, a filter, ...)
 * and which key or column it is on. Because the kind of body is known when
 * it begins, values are checked and written straight into the record in
 * progress, and a record is delivered when its container closes. A symbol
 * of exchangeInfo with a missing or bad field is counted and skipped, not
 * fatal; everything else that is wrong fails the body.
 */
#include "binance/rest_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "core/decimal.h"
#include "core/err.h"

#define ARENA_SIZE (32 * 1024)

enum rctx {
  R_TOP_ARR, /* klines / aggTrades body */
  R_TOP_OBJ, /* depth / exchangeInfo / error body */
  R_KROW,    /* one kline row */
  R_TRADE,   /* one aggTrade */
  R_LEVELS,  /* bids or asks */
  R_PAIR,    /* [price, qty] */
  R_RLIMITS, /* rateLimits */
  R_RLIMIT,
  R_SYMBOLS, /* symbols */
  R_SYMBOL,
  R_FILTERS, /* a symbol's filters */
  R_FILTER,
  R_SKIP
};

enum rkey {
  RK_OTHER = 0,
  /* body object */
  RK_CODE,
  RK_MSG,
  RK_LASTUPD,
  RK_BIDS,
  RK_ASKS,
  RK_SERVERTIME,
  RK_RATELIMITS,
  RK_SYMBOLS,
  /* rate limit */
  RK_RL_TYPE,
  RK_RL_INTERVAL,
  RK_RL_NUM,
  RK_RL_LIMIT,
  /* symbol */
  RK_S_SYMBOL,
  RK_S_STATUS,
  RK_S_BASE,
  RK_S_QUOTE,
  RK_S_FILTERS,
  /* filter */
  RK_F_TYPE,
  RK_F_TICK,
  RK_F_STEP,
  /* aggTrade */
  RK_T_A,
  RK_T_P,
  RK_T_Q,
  RK_T_F,
  RK_T_L,
  RK_T_TIME,
  RK_T_M,
  RK_COUNT
};

static const struct {
  uint8_t ctx;
  uint8_t key;
  const char *name;
} key_names[] = {
    {R_TOP_OBJ, RK_CODE, "code"},
    {R_TOP_OBJ, RK_MSG, "msg"},
    {R_TOP_OBJ, RK_LASTUPD, "lastUpdateId"},
    {R_TOP_OBJ, RK_BIDS, "bids"},
    {R_TOP_OBJ, RK_ASKS, "asks"},
    {R_TOP_OBJ, RK_SERVERTIME, "serverTime"},
    {R_TOP_OBJ, RK_RATELIMITS, "rateLimits"},
    {R_TOP_OBJ, RK_SYMBOLS, "symbols"},
    {R_RLIMIT, RK_RL_TYPE, "rateLimitType"},
    {R_RLIMIT, RK_RL_INTERVAL, "interval"},
    {R_RLIMIT, RK_RL_NUM, "intervalNum"},
    {R_RLIMIT, RK_RL_LIMIT, "limit"},
    {R_SYMBOL, RK_S_SYMBOL, "symbol"},
    {R_SYMBOL, RK_S_STATUS, "status"},
    {R_SYMBOL, RK_S_BASE, "baseAsset"},
    {R_SYMBOL, RK_S_QUOTE, "quoteAsset"},
    {R_SYMBOL, RK_S_FILTERS, "filters"},
    {R_FILTER, RK_F_TYPE, "filterType"},
    {R_FILTER, RK_F_TICK, "tickSize"},
    {R_FILTER, RK_F_STEP, "stepSize"},
    {R_TRADE, RK_T_A, "a"},
    {R_TRADE, RK_T_P, "p"},
    {R_TRADE, RK_T_Q, "q"},
    {R_TRADE, RK_T_F, "f"},
    {R_TRADE, RK_T_L, "l"},
    {R_TRADE, RK_T_TIME, "T"},
    {R_TRADE, RK_T_M, "m"},
};

_Static_assert(sizeof key_names / sizeof key_names[0] == RK_COUNT - 1,
               "key_names follows enum rkey");

enum vkind { V_STR, V_INT, V_NUM, V_BOOL, V_NULL, V_OBJ, V_ARR };

struct ropen {
  uint8_t ctx;
  uint8_t key;
  uint8_t side;
  uint32_t idx; /* R_KROW column, R_PAIR item */
};

struct rest_parse_impl {
  struct rest_parse *rp;
  struct parse_arena arena;
  yajl_alloc_funcs afs;
  yajl_handle h;
  size_t max_body;
  size_t max_levels;
  int max_depth;
  struct ev_level *lv[2];

  /* One body. */
  enum rest_kind kind;
  struct rest_parse_cbs cbs;
  int rv; /* sticky error of this body */
  int canceled;
  int began;
  size_t fed;
  int depth;
  int done;
  int top_is_obj;
  uint64_t top_seen; /* keys of the body object, bit per enum rkey */
  uint64_t seen;     /* keys of the record in progress */
  int64_t code;
  size_t n_lv[2];
  struct ropen stack[PARSE_DEPTH_MAX_LIMIT];

  struct rest_kline kline;
  struct rest_agg_trade trade;
  struct rest_symbol sym;
  int sym_bad;
  char ftype[32];
  ev_dec ftick, fstep;
  char rl_type[32];
  char rl_interval[16];
  int64_t rl_num, rl_limit;
  int rl_found;
};

static int reject(struct rest_parse_impl *im, enum parse_class cls,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int reject(struct rest_parse_impl *im, enum parse_class cls,
                  const char *fmt, ...) {
  va_list ap;
  if (im->rp->err_class != PARSE_OK || im->canceled)
    return 0;
  im->rp->err_class = cls;
  va_start(ap, fmt);
  vsnprintf(im->rp->errstr, sizeof im->rp->errstr, fmt, ap);
  va_end(ap);
  return 0;
}

#define BIT(k) (1ULL << (k))

static uint8_t key_of(uint8_t ctx, const unsigned char *k, size_t n) {
  for (size_t i = 0; i < sizeof key_names / sizeof key_names[0]; i++) {
    if (key_names[i].ctx == ctx && strlen(key_names[i].name) == n &&
        memcmp(key_names[i].name, k, n) == 0)
      return key_names[i].key;
  }
  return RK_OTHER;
}

/* Marks |key| seen in the current record; a repeat is an error. Symbols
 * and filters are lenient: a repeat only spoils the symbol. */
static int mark(struct rest_parse_impl *im, uint8_t ctx, uint8_t key) {
  uint64_t *seen = ctx == R_TOP_OBJ ? &im->top_seen : &im->seen;
  if (key == RK_OTHER)
    return 1;
  if (*seen & BIT(key)) {
    if (ctx == R_SYMBOL || ctx == R_FILTER) {
      im->sym_bad = 1;
      return 1;
    }
    return reject(im, PARSE_BAD_JSON, "duplicate key \"%s\"",
                  key_names[key - 1].name);
  }
  *seen |= BIT(key);
  return 1;
}

/* Copies a string that must fit |cap| with its NUL and have no NUL
 * inside. Returns 1, or 0 when it does not. */
static int copy_str(char *dst, size_t cap, const char *s, size_t len) {
  if (len >= cap || memchr(s, '\0', len))
    return 0;
  memcpy(dst, s, len);
  dst[len] = '\0';
  return 1;
}

static int put_int(struct rest_parse_impl *im, int64_t *dst, uint8_t vk,
                   int64_t v, const char *what) {
  if (vk != V_INT)
    return reject(im, PARSE_BAD_TYPE, "%s is not an int64", what);
  *dst = v;
  return 1;
}

static int put_dec(struct rest_parse_impl *im, char *dst, uint8_t vk,
                   const char *s, size_t len, const char *what) {
  if (vk != V_STR)
    return reject(im, PARSE_BAD_TYPE, "%s is not a string", what);
  if (!dec_valid(s, len))
    return reject(im, PARSE_BAD_DECIMAL, "%s is not a decimal", what);
  memcpy(dst, s, len);
  dst[len] = '\0';
  return 1;
}

static const char *const kline_cols[11] = {"open_time",
                                           "open",
                                           "high",
                                           "low",
                                           "close",
                                           "volume",
                                           "close_time",
                                           "quote_volume",
                                           "trades",
                                           "taker_buy_volume",
                                           "taker_buy_quote_volume"};

static int kline_value(struct rest_parse_impl *im, struct ropen *o, uint8_t vk,
                       const char *s, size_t len, int64_t v) {
  struct rest_kline *k = &im->kline;
  char what[48];
  uint32_t col = o->idx++;

  if (col >= 11)
    return 1; /* column 11 ("ignore") and any later ones */
  snprintf(what, sizeof what, "kline column %u (%s)", col, kline_cols[col]);
  switch (col) {
  case 0:
    return put_int(im, &k->open_time, vk, v, what);
  case 1:
    return put_dec(im, k->open, vk, s, len, what);
  case 2:
    return put_dec(im, k->high, vk, s, len, what);
  case 3:
    return put_dec(im, k->low, vk, s, len, what);
  case 4:
    return put_dec(im, k->close, vk, s, len, what);
  case 5:
    return put_dec(im, k->volume, vk, s, len, what);
  case 6:
    return put_int(im, &k->close_time, vk, v, what);
  case 7:
    return put_dec(im, k->quote_volume, vk, s, len, what);
  case 8:
    return put_int(im, &k->trades_count, vk, v, what);
  case 9:
    return put_dec(im, k->taker_buy_volume, vk, s, len, what);
  default:
    return put_dec(im, k->taker_buy_quote_volume, vk, s, len, what);
  }
}

static int trade_value(struct rest_parse_impl *im, uint8_t key, uint8_t vk,
                       const char *s, size_t len, int64_t v) {
  struct rest_agg_trade *t = &im->trade;
  switch (key) {
  case RK_T_A:
    return put_int(im, &t->agg_trade_id, vk, v, "aggTrade \"a\"");
  case RK_T_P:
    return put_dec(im, t->price, vk, s, len, "aggTrade \"p\"");
  case RK_T_Q:
    return put_dec(im, t->quantity, vk, s, len, "aggTrade \"q\"");
  case RK_T_F:
    return put_int(im, &t->first_trade_id, vk, v, "aggTrade \"f\"");
  case RK_T_L:
    return put_int(im, &t->last_trade_id, vk, v, "aggTrade \"l\"");
  case RK_T_TIME:
    return put_int(im, &t->trade_time, vk, v, "aggTrade \"T\"");
  case RK_T_M:
    if (vk != V_BOOL)
      return reject(im, PARSE_BAD_TYPE, "aggTrade \"m\" is not a boolean");
    t->is_buyer_maker = (int)v;
    return 1;
  default:
    return 1;
  }
}

static void symbol_value(struct rest_parse_impl *im, uint8_t key, uint8_t vk,
                         const char *s, size_t len) {
  struct rest_symbol *y = &im->sym;
  char *dst = NULL;
  size_t cap = 0;

  switch (key) {
  case RK_S_SYMBOL:
    dst = y->symbol;
    cap = sizeof y->symbol;
    break;
  case RK_S_STATUS:
    dst = y->status;
    cap = sizeof y->status;
    break;
  case RK_S_BASE:
    dst = y->base_asset;
    cap = sizeof y->base_asset;
    break;
  case RK_S_QUOTE:
    dst = y->quote_asset;
    cap = sizeof y->quote_asset;
    break;
  case RK_S_FILTERS:
    im->sym_bad = 1; /* not an array */
    return;
  default:
    return;
  }
  if (vk != V_STR || len == 0 || !copy_str(dst, cap, s, len))
    im->sym_bad = 1;
}

static int rp_value(struct rest_parse_impl *im, uint8_t vk, const char *s,
                    size_t len, int64_t v) {
  struct ropen *o;

  if (im->depth == 0)
    return reject(im, PARSE_BAD_TYPE, "body is not an array or object");
  o = &im->stack[im->depth - 1];
  switch (o->ctx) {
  case R_TOP_ARR:
    return reject(im, PARSE_BAD_TYPE, "%s",
                  im->kind == REST_KLINES ? "a kline row is not an array"
                                          : "an aggTrade is not an object");
  case R_TOP_OBJ:
    if (!mark(im, o->ctx, o->key))
      return 0;
    switch (o->key) {
    case RK_CODE:
      if (vk == V_INT)
        im->code = v;
      else
        im->top_seen &= ~BIT(RK_CODE); /* not an error body's code */
      return 1;
    case RK_MSG:
      if (vk == V_STR) {
        size_t n = len;
        if (n >= sizeof im->rp->api_msg) {
          n = sizeof im->rp->api_msg - 1; /* cut on a UTF-8 boundary */
          while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        }
        memcpy(im->rp->api_msg, s, n);
        im->rp->api_msg[n] = '\0';
      } else {
        im->top_seen &= ~BIT(RK_MSG);
      }
      return 1;
    case RK_LASTUPD:
      return put_int(im, &im->rp->depth.last_update_id, vk, v,
                     "\"lastUpdateId\"");
    case RK_SERVERTIME:
      return put_int(im, &im->rp->info.server_time, vk, v, "\"serverTime\"");
    case RK_BIDS:
    case RK_ASKS:
    case RK_RATELIMITS:
    case RK_SYMBOLS:
      if (im->kind == REST_DEPTH || im->kind == REST_EXCHANGE_INFO)
        return reject(im, PARSE_BAD_TYPE, "\"%s\" is not an array",
                      key_names[o->key - 1].name);
      return 1;
    default:
      return 1;
    }
  case R_KROW:
    return kline_value(im, o, vk, s, len, v);
  case R_TRADE:
    if (!mark(im, o->ctx, o->key))
      return 0;
    return trade_value(im, o->key, vk, s, len, v);
  case R_LEVELS:
    return reject(im, PARSE_BAD_TYPE, "a depth level is not an array");
  case R_PAIR: {
    struct ev_level *l = &im->lv[o->side][im->n_lv[o->side]];
    if (vk != V_STR || o->idx >= 2)
      return reject(im, PARSE_BAD_TYPE,
                    "a depth level is not [price, qty] strings");
    if (!dec_valid(s, len))
      return reject(im, PARSE_BAD_DECIMAL, "bad decimal in a depth level");
    memcpy(o->idx == 0 ? l->price : l->qty, s, len);
    (o->idx == 0 ? l->price : l->qty)[len] = '\0';
    o->idx++;
    return 1;
  }
  case R_RLIMIT:
    if (!mark(im, o->ctx, o->key))
      return 0;
    if (o->key == RK_RL_TYPE && vk == V_STR)
      copy_str(im->rl_type, sizeof im->rl_type, s, len);
    else if (o->key == RK_RL_INTERVAL && vk == V_STR)
      copy_str(im->rl_interval, sizeof im->rl_interval, s, len);
    else if (o->key == RK_RL_NUM && vk == V_INT)
      im->rl_num = v;
    else if (o->key == RK_RL_LIMIT && vk == V_INT)
      im->rl_limit = v;
    else if (o->key != RK_OTHER)
      im->seen &= ~BIT(o->key); /* wrong type: as if absent */
    return 1;
  case R_SYMBOL:
    mark(im, o->ctx, o->key);
    symbol_value(im, o->key, vk, s, len);
    return 1;
  case R_FILTER:
    mark(im, o->ctx, o->key);
    if (o->key == RK_F_TYPE) {
      if (vk != V_STR || !copy_str(im->ftype, sizeof im->ftype, s, len))
        im->ftype[0] = '\0';
    } else if (o->key == RK_F_TICK || o->key == RK_F_STEP) {
      char *dst = o->key == RK_F_TICK ? im->ftick : im->fstep;
      if (vk != V_STR || !dec_valid(s, len) ||
          !copy_str(dst, EV_DEC_MAX, s, len))
        dst[0] = '!'; /* bad: spoils the symbol if its filter is read */
    }
    return 1;
  case R_SYMBOLS:
    im->rp->info.n_bad_symbols++; /* a symbol that is not an object */
    return 1;
  default:
    return 1; /* R_SKIP, R_RLIMITS, R_FILTERS */
  }
}

static int rp_null(void *ctx) {
  return rp_value(ctx, V_NULL, NULL, 0, 0);
}

static int rp_bool(void *ctx, int b) {
  return rp_value(ctx, V_BOOL, NULL, 0, b ? 1 : 0);
}

static int rp_number(void *ctx, const char *s, size_t len) {
  int64_t v = 0;
  if (parse_int64_text(s, len, &v) == 0)
    return rp_value(ctx, V_INT, s, len, v);
  return rp_value(ctx, V_NUM, s, len, 0);
}

static int rp_string(void *ctx, const unsigned char *s, size_t len) {
  return rp_value(ctx, V_STR, (const char *)s, len, 0);
}

static int rp_map_key(void *ctx, const unsigned char *k, size_t n) {
  struct rest_parse_impl *im = ctx;
  struct ropen *o = &im->stack[im->depth - 1];
  o->key = key_of(o->ctx, k, n);
  return 1;
}

static int rp_open(struct rest_parse_impl *im, int is_map) {
  struct ropen *o, *n;
  uint8_t next = R_SKIP, side = 0;
  int rows = im->kind == REST_KLINES || im->kind == REST_AGG_TRADES;

  if (im->depth >= im->max_depth)
    return reject(im, PARSE_TOO_BIG, "nesting deeper than %d", im->max_depth);
  if (im->depth == 0) {
    if (is_map) {
      next = R_TOP_OBJ;
      im->top_is_obj = 1;
    } else if (rows) {
      next = R_TOP_ARR;
    } else {
      return reject(im, PARSE_BAD_TYPE, "body is an array, not an object");
    }
    goto push;
  }
  o = &im->stack[im->depth - 1];
  switch (o->ctx) {
  case R_TOP_ARR:
    if (im->kind == REST_KLINES && !is_map) {
      memset(&im->kline, 0, sizeof im->kline);
      next = R_KROW;
    } else if (im->kind == REST_AGG_TRADES && is_map) {
      memset(&im->trade, 0, sizeof im->trade);
      im->seen = 0;
      next = R_TRADE;
    } else {
      return rp_value(im, V_OBJ, NULL, 0, 0); /* the same complaint */
    }
    break;
  case R_TOP_OBJ:
    if (!mark(im, o->ctx, o->key))
      return 0;
    if (im->kind == REST_DEPTH && !is_map &&
        (o->key == RK_BIDS || o->key == RK_ASKS)) {
      side = o->key == RK_ASKS;
      next = R_LEVELS;
    } else if (im->kind == REST_EXCHANGE_INFO && !is_map &&
               o->key == RK_RATELIMITS) {
      next = R_RLIMITS;
    } else if (im->kind == REST_EXCHANGE_INFO && !is_map &&
               o->key == RK_SYMBOLS) {
      next = R_SYMBOLS;
    } else if (o->key == RK_LASTUPD || o->key == RK_SERVERTIME ||
               (im->kind == REST_DEPTH &&
                (o->key == RK_BIDS || o->key == RK_ASKS)) ||
               (im->kind == REST_EXCHANGE_INFO &&
                (o->key == RK_RATELIMITS || o->key == RK_SYMBOLS))) {
      return reject(im, PARSE_BAD_TYPE, "\"%s\" has the wrong type",
                    key_names[o->key - 1].name);
    } else if (o->key == RK_CODE || o->key == RK_MSG) {
      im->top_seen &= ~BIT(o->key);
    }
    break;
  case R_KROW:
    if (o->idx < 11)
      return reject(im, PARSE_BAD_TYPE, "kline column %u is %s", o->idx,
                    is_map ? "an object" : "an array");
    o->idx++;
    break;
  case R_TRADE:
    if (!mark(im, o->ctx, o->key))
      return 0;
    if (o->key != RK_OTHER)
      return reject(im, PARSE_BAD_TYPE, "aggTrade \"%s\" is %s",
                    key_names[o->key - 1].name,
                    is_map ? "an object" : "an array");
    break;
  case R_LEVELS:
    if (is_map)
      return reject(im, PARSE_BAD_TYPE, "a depth level is not an array");
    if (im->n_lv[o->side] >= im->max_levels)
      return reject(im, PARSE_TOO_BIG, "more than %zu %s", im->max_levels,
                    o->side ? "asks" : "bids");
    side = o->side;
    next = R_PAIR;
    break;
  case R_PAIR:
    return reject(im, PARSE_BAD_TYPE,
                  "a depth level is not [price, qty] strings");
  case R_RLIMITS:
    if (is_map) {
      im->seen = 0;
      im->rl_type[0] = im->rl_interval[0] = '\0';
      im->rl_num = 1;
      im->rl_limit = 0;
      next = R_RLIMIT;
    }
    break;
  case R_SYMBOLS:
    if (is_map) {
      memset(&im->sym, 0, sizeof im->sym);
      im->sym_bad = 0;
      im->seen = 0;
      next = R_SYMBOL;
    } else {
      im->rp->info.n_bad_symbols++;
    }
    break;
  case R_SYMBOL:
    mark(im, o->ctx, o->key);
    if (o->key == RK_S_FILTERS && !is_map)
      next = R_FILTERS;
    else if (o->key != RK_OTHER)
      im->sym_bad = 1;
    break;
  case R_FILTERS:
    if (is_map) {
      im->ftype[0] = im->ftick[0] = im->fstep[0] = '\0';
      im->seen &= ~(BIT(RK_F_TYPE) | BIT(RK_F_TICK) | BIT(RK_F_STEP));
      next = R_FILTER;
    }
    break;
  case R_FILTER:
    mark(im, o->ctx, o->key);
    if (o->key == RK_F_TYPE)
      im->ftype[0] = '\0';
    else if (o->key == RK_F_TICK)
      im->ftick[0] = '!';
    else if (o->key == RK_F_STEP)
      im->fstep[0] = '!';
    break;
  default:
    break;
  }
push:
  n = &im->stack[im->depth++];
  n->ctx = next;
  n->key = RK_OTHER;
  n->side = side;
  n->idx = 0;
  return 1;
}

static int rp_start_map(void *ctx) {
  return rp_open(ctx, 1);
}

static int rp_start_array(void *ctx) {
  return rp_open(ctx, 0);
}

static int deliver(struct rest_parse_impl *im, int rv) {
  if (rv != 0) {
    im->canceled = 1;
    return 0;
  }
  return 1;
}

/* The filter of |key| (tickSize or stepSize) into |dst| of the symbol. */
static void take_filter(struct rest_parse_impl *im, const char *value,
                        char *dst) {
  if (value[0] == '\0' || value[0] == '!')
    im->sym_bad = 1; /* absent or bad in the filter that should have it */
  else
    memcpy(dst, value, strlen(value) + 1);
}

static int rp_close(struct rest_parse_impl *im) {
  struct ropen *o = &im->stack[im->depth - 1];
  struct rest_parse *rp = im->rp;
  int ok = 1;

  switch (o->ctx) {
  case R_KROW:
    if (o->idx < 11) {
      ok = reject(im, PARSE_MISSING_FIELD, "kline row of %u columns", o->idx);
      break;
    }
    rp->n_rows++;
    if (im->cbs.on_kline)
      ok = deliver(im, im->cbs.on_kline(im->cbs.arg, &im->kline));
    break;
  case R_TRADE: {
    static const uint8_t need[] = {RK_T_A, RK_T_P,    RK_T_Q, RK_T_F,
                                   RK_T_L, RK_T_TIME, RK_T_M};
    for (size_t i = 0; i < sizeof need; i++) {
      if (!(im->seen & BIT(need[i]))) {
        ok = reject(im, PARSE_MISSING_FIELD, "aggTrade without \"%s\"",
                    key_names[need[i] - 1].name);
        break;
      }
    }
    if (!ok)
      break;
    rp->n_rows++;
    if (im->cbs.on_agg_trade)
      ok = deliver(im, im->cbs.on_agg_trade(im->cbs.arg, &im->trade));
    break;
  }
  case R_PAIR:
    if (o->idx != 2) {
      ok = reject(im, PARSE_BAD_TYPE,
                  "a depth level is not [price, qty] strings");
      break;
    }
    im->n_lv[o->side]++;
    break;
  case R_RLIMIT:
    if (!im->rl_found && strcmp(im->rl_type, "REQUEST_WEIGHT") == 0 &&
        (im->seen & BIT(RK_RL_LIMIT))) {
      im->rl_found = 1;
      rp->info.weight_limit = im->rl_limit;
      rp->info.weight_interval_num = im->rl_num;
      memcpy(rp->info.weight_interval, im->rl_interval,
             sizeof rp->info.weight_interval);
    }
    break;
  case R_FILTER:
    if (strcmp(im->ftype, "PRICE_FILTER") == 0)
      take_filter(im, im->ftick, im->sym.tick_size);
    else if (strcmp(im->ftype, "LOT_SIZE") == 0)
      take_filter(im, im->fstep, im->sym.step_size);
    break;
  case R_SYMBOL: {
    uint64_t need =
        BIT(RK_S_SYMBOL) | BIT(RK_S_STATUS) | BIT(RK_S_BASE) | BIT(RK_S_QUOTE);
    if (im->sym_bad || (im->seen & need) != need) {
      rp->info.n_bad_symbols++;
      break;
    }
    rp->info.n_symbols++;
    if (im->cbs.on_symbol)
      ok = deliver(im, im->cbs.on_symbol(im->cbs.arg, &im->sym));
    break;
  }
  default:
    break;
  }
  if (!ok)
    return 0;
  if (--im->depth == 0)
    im->done = 1;
  return 1;
}

static int rp_end(void *ctx) {
  return rp_close(ctx);
}

static const yajl_callbacks rest_callbacks = {
    rp_null,      rp_bool,    NULL,   NULL,           rp_number, rp_string,
    rp_start_map, rp_map_key, rp_end, rp_start_array, rp_end};

/* ---- public ------------------------------------------------------------ */

int rest_parse_init(struct rest_parse *rp,
                    const struct rest_parse_limits *limits) {
  struct rest_parse_impl *im;
  struct rest_parse_limits l = {0, 0, 0};

  memset(rp, 0, sizeof *rp);
  if (limits)
    l = *limits;
  if (l.max_body == 0)
    l.max_body = REST_BODY_MAX_DEFAULT;
  if (l.max_levels == 0)
    l.max_levels = REST_LEVELS_MAX_DEFAULT;
  if (l.max_depth == 0)
    l.max_depth = PARSE_DEPTH_MAX_DEFAULT;
  if (l.max_depth < 1 || l.max_depth > PARSE_DEPTH_MAX_LIMIT ||
      l.max_levels > SIZE_MAX / 2 / sizeof(struct ev_level))
    return BL_EINVAL;
  im = calloc(1, sizeof *im);
  if (!im)
    return BL_ENOMEM;
  im->lv[0] = malloc(2 * l.max_levels * sizeof(struct ev_level));
  if (!im->lv[0] || parse_arena_init(&im->arena, ARENA_SIZE) < 0) {
    free(im->lv[0]);
    free(im);
    return BL_ENOMEM;
  }
  im->lv[1] = im->lv[0] + l.max_levels;
  parse_arena_funcs(&im->arena, &im->afs);
  im->rp = rp;
  im->max_body = l.max_body;
  im->max_levels = l.max_levels;
  im->max_depth = l.max_depth;
  rp->impl = im;
  return 0;
}

static void drop_handle(struct rest_parse_impl *im) {
  if (im->h) {
    yajl_free(im->h);
    im->h = NULL;
  }
  im->began = 0;
}

int rest_parse_begin(struct rest_parse *rp, enum rest_kind kind,
                     const struct rest_parse_cbs *cbs) {
  struct rest_parse_impl *im = rp->impl;

  if (kind < REST_KLINES || kind > REST_ERROR_ONLY)
    return BL_EINVAL;
  drop_handle(im);
  rp->err_class = PARSE_OK;
  rp->errstr[0] = '\0';
  rp->api_code = 0;
  rp->api_msg[0] = '\0';
  rp->n_rows = 0;
  memset(&rp->depth, 0, sizeof rp->depth);
  memset(&rp->info, 0, sizeof rp->info);
  rp->info.weight_interval_num = 1;
  im->kind = kind;
  if (cbs)
    im->cbs = *cbs;
  else
    memset(&im->cbs, 0, sizeof im->cbs);
  im->rv = 0;
  im->canceled = 0;
  im->fed = 0;
  im->depth = 0;
  im->done = 0;
  im->top_is_obj = 0;
  im->seen = 0;
  im->top_seen = 0;
  im->code = 0;
  im->n_lv[0] = im->n_lv[1] = 0;
  im->rl_found = 0;
  parse_arena_reset(&im->arena);
  im->h = yajl_alloc(&rest_callbacks, &im->afs, im);
  if (!im->h)
    return BL_ENOMEM;
  im->began = 1;
  return 0;
}

/* Turns the state after a yajl call into the body's sticky error. */
static int settle(struct rest_parse_impl *im, yajl_status st) {
  struct rest_parse *rp = im->rp;

  if (st == yajl_status_error) {
    unsigned char *m = yajl_get_error(im->h, 0, NULL, 0);
    const char *t = m ? (const char *)m : "JSON error";
    reject(im, strstr(t, "UTF8") ? PARSE_BAD_UTF8 : PARSE_BAD_JSON, "%.*s",
           (int)strcspn(t, "\n"), t);
    if (m)
      yajl_free_error(im->h, m);
  }
  if (im->canceled) {
    snprintf(rp->errstr, sizeof rp->errstr, "stopped by a callback");
    im->rv = BL_ECANCELED;
  } else if (rp->err_class != PARSE_OK) {
    im->rv = rp->err_class == PARSE_TOO_BIG ? BL_ETOOBIG : BL_EPARSE;
  } else if (st != yajl_status_ok) {
    reject(im, PARSE_BAD_JSON, "parse canceled");
    im->rv = BL_EPARSE;
  }
  return im->rv;
}

int rest_parse_feed(struct rest_parse *rp, const char *data, size_t len) {
  struct rest_parse_impl *im = rp->impl;

  if (!im->began)
    return im->rv ? im->rv : BL_ESTATE;
  if (im->rv)
    return im->rv;
  if (len > im->max_body - im->fed) {
    reject(im, PARSE_TOO_BIG, "body over %zu bytes", im->max_body);
    return im->rv = BL_ETOOBIG;
  }
  im->fed += len;
  return settle(im, yajl_parse(im->h, (const unsigned char *)data, len));
}

int rest_parse_end(struct rest_parse *rp) {
  struct rest_parse_impl *im = rp->impl;
  int rv;

  if (!im->began)
    return im->rv ? im->rv : BL_ESTATE;
  if (!im->rv)
    settle(im, yajl_complete_parse(im->h));
  drop_handle(im);
  if (im->rv)
    return im->rv;
  if (!im->done) {
    reject(im, PARSE_BAD_JSON, "incomplete body");
    return im->rv = BL_EPARSE;
  }
  rv = 0;
  if (im->top_is_obj && (im->top_seen & BIT(RK_CODE)) &&
      (im->top_seen & BIT(RK_MSG))) {
    rp->api_code =
        im->code < -2147483647 - 1 || im->code > 2147483647 ? 0 : (int)im->code;
    return BL_EPROTO;
  }
  switch (im->kind) {
  case REST_KLINES:
  case REST_AGG_TRADES:
    if (im->top_is_obj) {
      reject(im, PARSE_BAD_TYPE, "body is an object, not an array");
      rv = BL_EPARSE;
    }
    break;
  case REST_DEPTH:
    if (!(im->top_seen & BIT(RK_LASTUPD)) || !(im->top_seen & BIT(RK_BIDS)) ||
        !(im->top_seen & BIT(RK_ASKS))) {
      reject(im, PARSE_MISSING_FIELD, "missing \"%s\"",
             !(im->top_seen & BIT(RK_LASTUPD)) ? "lastUpdateId"
             : !(im->top_seen & BIT(RK_BIDS))  ? "bids"
                                               : "asks");
      rv = BL_EPARSE;
      break;
    }
    rp->depth.bids = im->lv[0];
    rp->depth.n_bids = im->n_lv[0];
    rp->depth.asks = im->lv[1];
    rp->depth.n_asks = im->n_lv[1];
    break;
  case REST_EXCHANGE_INFO:
    if (!(im->top_seen & BIT(RK_SYMBOLS))) {
      reject(im, PARSE_MISSING_FIELD, "missing \"symbols\"");
      rv = BL_EPARSE;
    }
    break;
  default:
    reject(im, PARSE_MISSING_FIELD, "not an error body");
    rv = BL_EPARSE;
    break;
  }
  im->rv = rv;
  return rv;
}

int rest_parse_body(struct rest_parse *rp, enum rest_kind kind,
                    const struct rest_parse_cbs *cbs, const char *data,
                    size_t len) {
  int rv = rest_parse_begin(rp, kind, cbs);
  if (rv < 0)
    return rv;
  rv = rest_parse_feed(rp, data, len);
  if (rv < 0) {
    drop_handle(rp->impl);
    return rv;
  }
  return rest_parse_end(rp);
}

void rest_parse_free(struct rest_parse *rp) {
  struct rest_parse_impl *im = rp->impl;
  if (!im)
    return;
  drop_handle(im);
  parse_arena_free(&im->arena);
  free(im->lv[0]);
  free(im);
  rp->impl = NULL;
}
