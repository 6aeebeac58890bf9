/*
 * events.h: typed Binance market events, parsed once from a WebSocket frame
 * (binance/parse) and handed by pointer to every consumer (store, redis,
 * book, gaps). No consumer re-parses JSON.
 *
 * Decimals are kept as the exact strings the exchange sent (validated by
 * core/decimal), NUL-terminated, so what is stored and published equals
 * what was received. Ids and times are int64; times are epoch milliseconds.
 * An event and everything it points to is valid only during the callback
 * that delivers it; a consumer that needs it later copies what it needs.
 */
#ifndef BL_BINANCE_EVENTS_H
#define BL_BINANCE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EV_SYMBOL_MAX 48  /* bytes incl. NUL; symbols may be UTF-8 */
#define EV_DEC_MAX 48     /* bytes incl. NUL of one decimal string */
#define EV_INTERVAL_MAX 4 /* "15m", "1M" */
#define EV_STREAM_MAX 96  /* combined-stream name */

enum ev_type {
  EV_NONE = 0,
  EV_KLINE,           /* <symbol>@kline_<interval> */
  EV_TICKER,          /* <symbol>@ticker (24hrTicker) */
  EV_DEPTH,           /* <symbol>@depth@100ms (depthUpdate) */
  EV_TRADE,           /* <symbol>@aggTrade */
  EV_CONTROL,         /* {"result":...,"id":N} or {"error":{...},"id":N} */
  EV_SERVER_SHUTDOWN, /* {"e":"serverShutdown","E":...} */
  EV_IGNORED          /* a valid frame of a stream we do not consume */
};

typedef char ev_dec[EV_DEC_MAX];

struct ev_kline {
  char symbol[EV_SYMBOL_MAX];
  char interval[EV_INTERVAL_MAX];
  int64_t event_time;                              /* E */
  int64_t open_time;                               /* k.t */
  int64_t close_time;                              /* k.T */
  int64_t first_trade_id;                          /* k.f */
  int64_t last_trade_id;                           /* k.L */
  int64_t trades_count;                            /* k.n */
  ev_dec open, high, low, close;                   /* k.o k.h k.l k.c */
  ev_dec volume, quote_volume;                     /* k.v k.q */
  ev_dec taker_buy_volume, taker_buy_quote_volume; /* k.V k.Q */
  int is_closed;                                   /* k.x */
};

struct ev_ticker {
  char symbol[EV_SYMBOL_MAX];
  int64_t event_time;           /* E */
  ev_dec price;                 /* c */
  ev_dec price_change;          /* p */
  ev_dec price_change_percent;  /* P */
  ev_dec weighted_avg_price;    /* w */
  ev_dec open_price, high, low; /* o h l */
  ev_dec volume, quote_volume;  /* v q */
  ev_dec bid_price, bid_qty;    /* b B */
  ev_dec ask_price, ask_qty;    /* a A */
  int64_t trades_count;         /* n */
  int64_t first_trade_id;       /* F */
  int64_t last_trade_id;        /* L */
};

struct ev_trade {
  char symbol[EV_SYMBOL_MAX];
  int64_t event_time;     /* E */
  int64_t agg_trade_id;   /* a */
  ev_dec price;           /* p */
  ev_dec quantity;        /* q */
  int64_t first_trade_id; /* f */
  int64_t last_trade_id;  /* l */
  int64_t trade_time;     /* T */
  int is_buyer_maker;     /* m */
};

struct ev_level {
  ev_dec price;
  ev_dec qty;
};

struct ev_depth {
  char symbol[EV_SYMBOL_MAX];
  int64_t event_time;          /* E */
  int64_t first_update_id;     /* U */
  int64_t final_update_id;     /* u */
  const struct ev_level *bids; /* b, in the order received */
  size_t n_bids;
  const struct ev_level *asks; /* a */
  size_t n_asks;
};

struct ev_control {
  int64_t id;
  int has_id;   /* 0 when "id" was null or a string (we send integers) */
  int is_error; /* 1 for {"error":{"code","msg"}} */
  int code;
  char msg[256];
};

struct ev_server_shutdown {
  int64_t event_time;
};

struct ev {
  enum ev_type type;
  char stream[EV_STREAM_MAX]; /* combined-stream name, "" for raw frames */
  union {
    struct ev_kline kline;
    struct ev_ticker ticker;
    struct ev_depth depth;
    struct ev_trade trade;
    struct ev_control control;
    struct ev_server_shutdown shutdown;
  } u;
};

#endif
