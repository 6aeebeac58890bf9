/*
 * rest_parse.h: Binance REST response bodies to typed records.
 *
 * A callback parser over yajl, fed in chunks as the body arrives (or in one
 * piece), so a multi-megabyte exchangeInfo or klines body is never held as
 * a tree. Rows of klines and aggTrades and symbols of exchangeInfo go to a
 * callback one at a time; a depth snapshot fills level arrays owned by the
 * parser. An error body {"code":-1121,"msg":"Invalid symbol."} is
 * recognised for every kind and reported as BL_EPROTO with code and msg.
 *
 * Decimals are kept as exact text checked by dec_valid, as in events.h;
 * ids and times must be JSON integers within int64; unknown keys, unknown
 * filter types and extra trailing kline columns are skipped. Failures are
 * classified with enum parse_class (binance/parse.h). State kept: the
 * limits, the level arrays, the arena for yajl, and one body's progress.
 */
#ifndef BL_BINANCE_REST_PARSE_H
#define BL_BINANCE_REST_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "binance/events.h"
#include "binance/parse.h"

#define REST_BODY_MAX_DEFAULT (32u << 20) /* bytes of one body */
#define REST_LEVELS_MAX_DEFAULT 5000      /* per side of a depth snapshot */

enum rest_kind {
  REST_KLINES = 1,    /* GET /api/v3/klines (and uiKlines) */
  REST_AGG_TRADES,    /* GET /api/v3/aggTrades */
  REST_DEPTH,         /* GET /api/v3/depth */
  REST_EXCHANGE_INFO, /* GET /api/v3/exchangeInfo */
  REST_ERROR_ONLY     /* any body expected to be {"code","msg"} */
};

/* One kline row: columns 0-10 (column 11 and later are ignored). */
struct rest_kline {
  int64_t open_time;             /* 0 */
  ev_dec open;                   /* 1 */
  ev_dec high;                   /* 2 */
  ev_dec low;                    /* 3 */
  ev_dec close;                  /* 4 */
  ev_dec volume;                 /* 5 */
  int64_t close_time;            /* 6 */
  ev_dec quote_volume;           /* 7 */
  int64_t trades_count;          /* 8 */
  ev_dec taker_buy_volume;       /* 9 */
  ev_dec taker_buy_quote_volume; /* 10 */
};

struct rest_agg_trade {
  int64_t agg_trade_id;   /* a */
  ev_dec price;           /* p */
  ev_dec quantity;        /* q */
  int64_t first_trade_id; /* f */
  int64_t last_trade_id;  /* l */
  int64_t trade_time;     /* T */
  int is_buyer_maker;     /* m */
};

/* One symbol of exchangeInfo. tick_size and step_size are "" when the
 * symbol has no PRICE_FILTER or LOT_SIZE filter. */
struct rest_symbol {
  char symbol[EV_SYMBOL_MAX];
  char status[24]; /* TRADING, HALT, BREAK, END_OF_DAY, ... */
  char base_asset[EV_SYMBOL_MAX];
  char quote_asset[EV_SYMBOL_MAX];
  ev_dec tick_size; /* PRICE_FILTER tickSize */
  ev_dec step_size; /* LOT_SIZE stepSize */
};

/* What an exchangeInfo body said besides its symbols. */
struct rest_exchange_info {
  int64_t server_time;         /* 0 when absent */
  int64_t weight_limit;        /* REQUEST_WEIGHT limit, 0 when absent */
  int64_t weight_interval_num; /* its intervalNum (1 when absent) */
  char weight_interval[16];    /* its interval: "MINUTE", "SECOND", ... */
  size_t n_symbols;            /* symbols passed to on_symbol */
  size_t n_bad_symbols;        /* symbols skipped: a field missing or bad */
};

struct rest_depth {
  int64_t last_update_id;
  const struct ev_level *bids; /* as received: best (highest) first */
  size_t n_bids;
  const struct ev_level *asks; /* best (lowest) first */
  size_t n_asks;
};

/* Callbacks; each returns 0 to go on or non-zero to stop the parse (which
 * then fails with BL_ECANCELED). Records are valid during the call only. */
struct rest_parse_cbs {
  int (*on_kline)(void *arg, const struct rest_kline *k);
  int (*on_agg_trade)(void *arg, const struct rest_agg_trade *t);
  int (*on_symbol)(void *arg, const struct rest_symbol *s);
  void *arg;
};

struct rest_parse_limits {
  size_t max_body;   /* 0: REST_BODY_MAX_DEFAULT */
  size_t max_levels; /* per side; 0: REST_LEVELS_MAX_DEFAULT */
  int max_depth;     /* JSON nesting; 0: PARSE_DEPTH_MAX_DEFAULT */
};

struct rest_parse_impl;

struct rest_parse {
  /* Outcome of the last body. */
  enum parse_class err_class; /* PARSE_OK unless it failed to parse */
  char errstr[256];
  int api_code;                   /* the "code" of an error body (BL_EPROTO) */
  char api_msg[256];              /* its "msg" */
  size_t n_rows;                  /* klines or aggTrades delivered */
  struct rest_depth depth;        /* REST_DEPTH results */
  struct rest_exchange_info info; /* REST_EXCHANGE_INFO results */
  /* Private. */
  struct rest_parse_impl *impl;
};

/* Returns 0, BL_EINVAL (a limit out of range) or BL_ENOMEM. */
int rest_parse_init(struct rest_parse *rp,
                    const struct rest_parse_limits *limits);

/* Starts a body of |kind|. |cbs| may be NULL when no callback is wanted
 * (depth, error bodies); it is copied. Returns 0, BL_EINVAL or BL_ENOMEM.
 */
int rest_parse_begin(struct rest_parse *rp, enum rest_kind kind,
                     const struct rest_parse_cbs *cbs);

/* Feeds the next |len| bytes of the body. Returns 0, or BL_EPARSE,
 * BL_ETOOBIG (body or level limit, nesting) or BL_ECANCELED (a callback
 * stopped); after an error further feeds return the same error. */
int rest_parse_feed(struct rest_parse *rp, const char *data, size_t len);

/* Ends the body. Returns 0 when it was a complete body of the kind begun,
 * BL_EPROTO when it was a Binance error body (rp->api_code, rp->api_msg),
 * or the error of a failed feed, BL_EPARSE or BL_ETOOBIG. */
int rest_parse_end(struct rest_parse *rp);

/* begin + feed + end on a whole body. */
int rest_parse_body(struct rest_parse *rp, enum rest_kind kind,
                    const struct rest_parse_cbs *cbs, const char *data,
                    size_t len);

/* Releases everything (also a body left unfinished). */
void rest_parse_free(struct rest_parse *rp);

#endif
