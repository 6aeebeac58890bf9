/*
 * mock.h: the mock Binance exchange's I/O-free parts.
 *
 * - market: a deterministic synthetic market. Every trade, kline, ticker
 *   and order book is a pure function of (seed, symbol, trade index or time
 *   or update id), so the past can be computed on demand for any range and
 *   the REST answers always agree with what the WebSocket sent.
 * - fmt: fast frame formatting (no snprintf in the hot path).
 * - rest: the REST endpoints as a function from request target to response,
 *   with weights, the X-MBX-USED-WEIGHT-1M window and the 429/418 machine.
 * - replay: the recorded corpus (cryptofeed format) loaded into memory.
 * - streams: stream-name parsing and the WS control-message protocol.
 *
 * The network layer (server.c) and the program (main.c) sit on top.
 */
#ifndef BL_MOCK_H
#define BL_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* ---------------------------------------------------------------- market */

#define MK_T0 1704067200000LL /* history origin, 2024-01-01 00:00 UTC */
#define MK_UID_BASE 1000000LL /* first order-book update id */
#define MK_LEVELS 100         /* book levels per side */
#define MK_TABLE 16           /* period of the per-trade pattern */
#define MK_MAX_SYMBOLS 2000

enum mk_interval {
  MK_1s = 0,
  MK_1m,
  MK_3m,
  MK_5m,
  MK_15m,
  MK_30m,
  MK_1h,
  MK_2h,
  MK_4h,
  MK_6h,
  MK_8h,
  MK_12h,
  MK_1d,
  MK_3d,
  MK_1w,
  MK_1M,
  MK_NINTERVALS
};

#define MK_MID_CACHE 2048 /* minutes memoised per symbol (> one day) */

struct mk_mid_slot {
  int64_t minute, mid;
};

struct mk_symbol {
  char name[24];  /* BTCUSDT */
  char lower[24]; /* btcusdt */
  char base[16];
  char quote[8];
  int64_t tick; /* price tick, 1e-8 units */
  int64_t step; /* quantity step, 1e-8 units */
  int64_t p0;   /* reference price in ticks */
  uint64_t seed;
  int64_t off_us; /* phase of the trade clock */
  int rot;        /* rotation into the pattern tables */
  double ph[3];   /* phases of the price curve */
  /* prefix sums over one pattern period for this rotation */
  int64_t pre_q[MK_TABLE + 1], pre_dq[MK_TABLE + 1];
  int64_t pre_bq[MK_TABLE + 1], pre_bdq[MK_TABLE + 1];
  /* exchange_empty simulation: REST klines omit bars opening in
   * [empty_from, empty_to] (0/0: none) */
  int64_t empty_from, empty_to;
  /* memo of the reference price per minute (market.c), NULL until used */
  struct mk_mid_slot *mid_cache;
};

struct mk_market {
  int nsym;
  struct mk_symbol *sym;
  uint64_t seed;
  int64_t gap_us; /* time between two trades of one symbol */
  int ups;        /* order-book updates per second per symbol */
};

struct mk_trade {
  int64_t k;     /* trade index, >= 0 */
  int64_t id;    /* aggregate trade id (k + 1) */
  int64_t tid;   /* trade id of its single fill */
  int64_t time;  /* ms */
  int64_t price; /* 1e-8 units */
  int64_t qty;   /* 1e-8 units */
  int buyer_maker;
};

/* Aggregate of the trades in a time range. Volumes: vol and tbvol in 1e-8
 * units; qvol and tbqvol in 1e-16 units (price * qty). */
struct mk_agg {
  int64_t n;
  int64_t first_k, last_k; /* -1 when n == 0 */
  int64_t o, h, l, c;      /* 1e-8; when n == 0 all equal the last price */
  __int128 vol, qvol, tbvol, tbqvol;
};

struct mk_level {
  int64_t price; /* 1e-8 */
  int64_t qty;   /* 1e-8; 0 removes the level in a diff */
};

/* Creates |nsym| symbols (BTCUSDT, ETHUSDT, then SYM000USDT...) with
 * |trades_per_sec| trades per second over all symbols together.
 * Returns 0, BL_EINVAL or BL_ENOMEM. */
int mk_market_init(struct mk_market *m, int nsym, uint64_t seed,
                   double trades_per_sec);
void mk_market_free(struct mk_market *m);

/* Index of the symbol with this upper-case name, or -1. */
int mk_symbol_find(const struct mk_market *m, const char *name, size_t len);
int mk_symbol_find_lower(const struct mk_market *m, const char *name,
                         size_t len);

/* Reference ("mid") price of a symbol in the minute containing |t|, in
 * ticks. */
int64_t mk_mid_ticks(const struct mk_market *m, int s, int64_t t);

/* Trade index k (>= 0) of symbol s. */
void mk_trade_get(const struct mk_market *m, int s, int64_t k,
                  struct mk_trade *out);
/* Index of the first trade with time >= t (never below 0). */
int64_t mk_trade_first_at(const struct mk_market *m, int s, int64_t t);
/* Index of the last trade with time <= t, or -1. */
int64_t mk_trade_last_at(const struct mk_market *m, int s, int64_t t);

/* Aggregates the trades with from <= time <= to. */
void mk_agg_range(const struct mk_market *m, int s, int64_t from, int64_t to,
                  struct mk_agg *out);

/* Intervals: name <-> index, bar start for a time, next bar start. */
int mk_interval_parse(const char *name, size_t len);
const char *mk_interval_name(int iv);
int64_t mk_bar_start(int iv, int64_t t);
int64_t mk_bar_next(int iv, int64_t start);

/* The kline of bar |open_time| as known at |now| (trades up to now). */
void mk_kline(const struct mk_market *m, int s, int iv, int64_t open_time,
              int64_t now, struct mk_agg *out);

/* Order book: update id current at time t; the book after update |uid|
 * (levels per side, best first); the diff between two update ids. */
int64_t mk_book_uid(const struct mk_market *m, int s, int64_t t);
void mk_book_at(const struct mk_market *m, int s, int64_t uid,
                struct mk_level *bids, struct mk_level *asks);
/* Writes changed levels (qty 0 for removed ones) into |bids|/|asks|, each
 * of capacity 2*MK_LEVELS; returns their counts. */
void mk_book_diff(const struct mk_market *m, int s, int64_t from_uid,
                  int64_t to_uid, struct mk_level *bids, int *nb,
                  struct mk_level *asks, int *na);

/* Price of the trade before trade k (the reference price for k == 0). */
int64_t mk_last_price_before(const struct mk_market *m, int s, int64_t k);

/* The rolling 24 h statistics at |now| (window [now - 24 h, now]). */
struct mk_ticker {
  int64_t open_time, close_time;
  int64_t prev_close, last, last_qty;
  int64_t bid, bid_qty, ask, ask_qty;
  int64_t change, pct_milli, wavg; /* pct_milli: percent * 1000 */
  int64_t first_id, last_id;       /* trade ids, -1 when none */
  struct mk_agg a;
};
void mk_ticker_get(const struct mk_market *m, int s, int64_t now,
                   struct mk_ticker *tk);

/* ------------------------------------------------------------------- fmt */

/* Each writes at |p| and returns the end; callers guarantee room
 * (a number takes at most 42 bytes). */
char *fmt_i64(char *p, int64_t v);
char *fmt_dec8(char *p, int64_t v);    /* v in 1e-8: "123.45000000" */
char *fmt_dec16(char *p, __int128 v);  /* v in 1e-16, rounded to 8 */
char *fmt_str(char *p, const char *s); /* raw copy, no escaping */
char *fmt_qdec8(char *p, int64_t v);   /* "\"123.45000000\"" */

/* Payload builders. Each appends to |b| and returns 0 or BL_ETOOBIG. */
int fmt_agg_trade(struct buf *b, const struct mk_symbol *sy,
                  const struct mk_trade *t, int64_t event_time);
int fmt_kline(struct buf *b, const struct mk_market *m, int s, int iv,
              int64_t open_time, const struct mk_agg *a, int closed,
              int64_t event_time);
int fmt_ticker(struct buf *b, const struct mk_market *m, int s, int64_t now);
int fmt_depth_update(struct buf *b, const struct mk_symbol *sy,
                     int64_t event_time, int64_t first_uid, int64_t last_uid,
                     const struct mk_level *bids, int nb,
                     const struct mk_level *asks, int na);

/* WebSocket framing for the server side, on buffers: appends |data| as
 * one unmasked text frame (FIN, opcode 1, the shortest length form, the
 * bytes wslay writes) to |b|. Returns 0 or BL_ETOOBIG. */
int fmt_ws_text_frame(struct buf *b, const char *data, size_t len);
/* The frame at |p| (as written above): its length with the header, and
 * where its payload starts and how long it is; 0 when |avail| bytes do not
 * hold a whole frame. */
long fmt_ws_frame_next(const char *p, size_t avail, size_t *payload_off,
                       size_t *payload_len);

/* REST bodies: a depth snapshot of |n| levels a side, one 12-element kline
 * row, one aggTrade item, one ticker/24hr FULL object. */
int fmt_depth_snapshot(struct buf *b, int64_t uid, const struct mk_level *bids,
                       const struct mk_level *asks, int n);
int fmt_kline_row(struct buf *b, const struct mk_market *m, int iv,
                  int64_t open_time, const struct mk_agg *a);
int fmt_agg_trade_rest(struct buf *b, const struct mk_trade *t);
int fmt_ticker_rest(struct buf *b, const struct mk_market *m, int s,
                    int64_t now);

/* ------------------------------------------------------------------ rest */

#define REST_LOG_MAX 20000

struct replay;

struct rest_log_entry {
  int64_t t; /* ms */
  char path[40];
  int status;
  int weight;               /* weight charged (0 when refused) */
  int used;                 /* X-MBX-USED-WEIGHT-1M after the request */
  unsigned char in_backoff; /* arrived during a 429 back-off */
  unsigned char in_ban;     /* arrived during a 418 ban */
};

struct rest_state {
  struct mk_market *market;    /* synthetic source */
  const struct replay *replay; /* or replay source (market still used
                                  for nothing then) */
  int limit;                   /* REQUEST_WEIGHT per minute */
  int ban_after;               /* requests during a back-off before a ban */
  int ban_secs;                /* first ban length; doubles per ban */
  /* fixed window aligned to the UTC minute, as Binance's */
  int64_t win_minute;
  int used;
  int64_t backoff_until; /* ms; a 429 told the client to wait until then */
  int violations;
  int64_t ban_until;
  int bans;
  /* forced faults */
  int force_status;      /* 429, 418 or 500; 0 none */
  int force_count;       /* for the next N requests ... */
  int64_t force_until;   /* ... or until this time */
  int force_retry_after; /* seconds */
  int delay_ms;          /* slow REST; applied by the server */
  int stale_depth_count; /* the next N synthetic depth answers ... */
  int stale_depth_ids;   /* ... are this many update ids old */
  /* log */
  struct rest_log_entry *log;
  size_t log_len, log_total;
  uint64_t n_requests, n_429, n_418, n_500;
};

struct rest_resp {
  int status;
  int retry_after; /* seconds; -1: no header */
  int used;        /* for X-MBX-USED-WEIGHT-1M */
  struct buf body; /* owned by the caller: buf_init before, free after */
};

int rest_state_init(struct rest_state *r, struct mk_market *m,
                    const struct replay *rp, int limit);
void rest_state_free(struct rest_state *r);

/* Answers one request. |target| is the path with query ("/api/v3/ping").
 * Fills |out| (status, headers, body). Returns 0, or BL_ETOOBIG/BL_ENOMEM
 * when the body could not be built (then answer 500). */
int rest_handle(struct rest_state *r, const char *method, const char *target,
                int64_t now, struct rest_resp *out);

/* Query helpers (exposed for tests). Looks up |key| in a query string
 * (without '?'), URL-decodes into |out|. Returns the length or -1. */
int rest_query_get(const char *query, const char *key, char *out,
                   size_t outlen);

/* Appends the request log and counters as JSON. */
int rest_stats_json(const struct rest_state *r, struct buf *b);

/* ---------------------------------------------------------------- replay */

struct replay_frame {
  size_t off, len;               /* the frame text in replay.ws_text */
  int64_t t_us;                  /* receive time, microseconds */
  size_t stream_off, stream_len; /* the "stream" value, or len 0 */
  size_t data_off, data_len;     /* the "data" value (raw payload) */
};

struct replay_snapshot {
  char symbol[24];
  char *body;
  size_t len;
};

struct replay {
  char *ws_text; /* whole BINANCE.ws.1.0 */
  size_t ws_len;
  char url[2048]; /* line 1 */
  struct replay_frame *frames;
  size_t nframes;
  struct replay_snapshot snaps[64];
  size_t nsnaps;
  char *http_text;
  char *exinfo; /* exchangeInfo body (BINANCE.0 line 1) */
  size_t exinfo_len;
  char *exinfo_text;
  int exinfo_weight_limit; /* REQUEST_WEIGHT limit found in it, or 0 */
};

/* Loads DIR/BINANCE.ws.1.0, DIR/BINANCE.http.0.0 and DIR/BINANCE.0 (the
 * last two optional). Returns 0, BL_EIO (errstr says which file),
 * BL_EPARSE or BL_ENOMEM. */
int replay_load(struct replay *rp, const char *dir, char *errstr,
                size_t errlen);
/* Parses an already loaded ws text (for tests). */
int replay_parse_ws(struct replay *rp);
void replay_free(struct replay *rp);
const struct replay_snapshot *replay_snapshot_find(const struct replay *rp,
                                                   const char *symbol);
/* 1 if the exchangeInfo has this symbol. */
int replay_has_symbol(const struct replay *rp, const char *symbol);

/* --------------------------------------------------------------- streams */

enum st_kind {
  ST_AGGTRADE = 0,
  ST_TICKER,
  ST_DEPTH,    /* @depth, every 1000 ms */
  ST_DEPTH100, /* @depth@100ms */
  ST_KLINE0,   /* + interval */
  ST_NKINDS = ST_KLINE0 + MK_NINTERVALS
};

#define ST_MAX_PER_CONN 1024

/* Parses a stream name against the market; returns the stream id
 * (symbol * ST_NKINDS + kind) or BL_EINVAL. */
int st_parse(const struct mk_market *m, const char *name, size_t len);
/* Writes the canonical name of stream id |sid| into |out|. */
int st_name(const struct mk_market *m, int sid, char *out, size_t outlen);

/* A connection's subscriptions (stream ids, insertion ordered) and the
 * combined flag. Replay streams are kept by name instead. */
struct st_subs {
  int n;
  int ids[ST_MAX_PER_CONN];
  int combined;
  /* replay mode: names */
  int nnames;
  char *names[ST_MAX_PER_CONN];
};

/* What handling a control message asks the server to do. */
struct st_effect {
  int added[ST_MAX_PER_CONN];
  int nadded;
  int removed[ST_MAX_PER_CONN];
  int nremoved;
};

/* Handles one SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/SET_PROPERTY/
 * GET_PROPERTY text message: updates |subs|, writes the JSON answer into
 * |reply| and the subscription changes into |eff|. |replay_mode| keeps
 * names without checking them against the market. Returns 0 (an error
 * answer is still 0) or BL_ENOMEM. */
int st_control(const struct mk_market *m, int replay_mode, struct st_subs *subs,
               const char *msg, size_t len, struct buf *reply,
               struct st_effect *eff);

/* Adds streams named in a URL ("/ws/a" or "/stream?streams=a/b").
 * Returns 0, BL_EINVAL (unknown stream or path) or BL_EFULL (> 1024). */
int st_from_path(const struct mk_market *m, int replay_mode,
                 struct st_subs *subs, const char *path);
void st_subs_free(struct st_subs *subs);
int st_subs_has(const struct st_subs *subs, int sid);
int st_subs_has_name(const struct st_subs *subs, const char *name, size_t len);

#endif
