/*
 * streams.h: the WebSocket stream manager.
 *
 * It keeps the combined-stream connections that carry the active symbols'
 * streams (binance/stream_plan packs them, at most max_streams_per_conn
 * each), parses every frame once (binance/parse) and hands each new event
 * to the owner; duplicates from an overlap or a repeated frame, and events
 * of symbols no longer wanted, are dropped first. It keeps subscriptions in
 * step with the symbol set through SUBSCRIBE/UNSUBSCRIBE, one batched
 * request per change and connection (queued changes merge), at least
 * STREAMS_REQUEST_SPACING_MS apart (the ws pacer keeps every connection
 * under five frames a second, pongs included). A connection that drops
 * reconnects with exponential back-off and jitter (never giving up unless
 * max_reconnect_attempts says so). Before its 24 h limit, and at once on
 * serverShutdown, a connection is replaced: the new one opens first, both
 * run for overlap_ms, then the old one closes, so nothing is lost.
 */
#ifndef BL_BINANCE_STREAMS_H
#define BL_BINANCE_STREAMS_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "binance/parse.h"
#include "binance/stream_plan.h"
#include "core/strmap.h"
#include "net/ws.h"

#define STREAMS_MAX_CONNS 256
#define STREAMS_MAX_PENDING 64 /* queued control requests per connection */
/* Control requests on one connection go out at least this far apart.
 * Binance allows 5 incoming frames a second, pongs and pings included; the
 * mock counts them over a window of 1.0 to 1.1 s. With 500 ms spacing such
 * a window holds at most 3 requests, leaving room for the pongs to two
 * server pings a second apart. Queued requests merge, so bursts of changes
 * do not queue up. */
#define STREAMS_REQUEST_SPACING_MS 500

struct streams;
struct stream_conn;

#define STREAMS_REQUEST_SYMBOLS 64 /* symbols in one (UN)SUBSCRIBE */

/* A queued control request: built into JSON only when it is sent, so that
 * later changes can merge into it. */
struct stream_request {
  int subscribe;
  int n;
  char *syms[STREAMS_REQUEST_SYMBOLS];
};

enum stream_conn_state {
  SCONN_IDLE = 0,
  SCONN_CONNECTING,
  SCONN_OPEN,
  SCONN_BACKOFF,  /* waiting to reconnect */
  SCONN_RETIRING, /* replaced; runs until the overlap ends */
  SCONN_FAILED,   /* gave up (max_reconnect_attempts) */
  SCONN_CLOSING
};

struct streams_config {
  const char *ws_url;  /* binance.ws_url */
  struct tls_ctx *tls; /* for wss:// */
  struct plan_types types;
  int max_streams_per_conn;
  uint64_t ping_interval_ms;   /* quiet time before a client ping */
  uint64_t read_timeout_ms;    /* nothing received: dead; 0: 60 s */
  uint64_t reconnect_delay_ms; /* first back-off */
  uint64_t reconnect_max_ms;   /* 0: 60 s */
  int max_reconnect_attempts;  /* 0: never give up */
  uint64_t rollover_ms;        /* replace a connection after; 0: 23 h */
  uint64_t overlap_ms;         /* both run this long; 0: 5 s */
  size_t max_message;          /* 0: ws default */
  size_t max_frame;            /* parse limit; 0: parse default */
};

struct streams_callbacks {
  /* A new event (kline, ticker, depth, trade), parsed and deduplicated. */
  void (*on_event)(struct streams *s, const struct ev *ev);
  /* A connection came up (up = 1) or went down (up = 0, |status| says
   * why). |symbols| are the symbols it carries (valid during the call and
   * only until the callback calls streams_set_symbols). A retiring
   * connection's end is not reported (its replacement carries the
   * symbols). Both callbacks may call streams_set_symbols and
   * streams_close. */
  void (*on_conn_change)(struct streams *s, struct stream_conn *c, int up,
                         int status, const char *const *symbols, int n_symbols);
};

struct stream_conn {
  struct streams *owner;
  int id;
  enum stream_conn_state state;
  struct ws ws;
  int ws_active; /* ws_init'ed and not yet released by ws_close's cb */
  char **symbols;
  int n_symbols, cap_symbols;
  uv_timer_t timer;     /* reconnect back-off, rollover, overlap end */
  uv_timer_t req_timer; /* control request pacing */
  int handles_open;
  int attempts;
  struct stream_request pending[STREAMS_MAX_PENDING]; /* not yet sent */
  int n_pending;
  uint64_t last_request_ms;
  struct stream_conn *replacement; /* set on the old connection */
  struct stream_conn *replaces;    /* set on the new connection */
  /* observability */
  uint64_t frames, reconnects, opened_at_ms, last_frame_ms;
  int last_status;
  int destroying;
  int ws_releasing; /* ws_close called, its callback not yet run */
  int resync;       /* requests were lost: reconnect once open */
};

struct streams_stats {
  uint64_t frames, events, ignored, duplicates, parse_errors, binary_frames;
  uint64_t reconnects, rollovers, server_shutdowns, control_errors;
  uint64_t pauses;   /* times reading was paused for back-pressure */
  uint64_t unwanted; /* events of symbols no longer collected, dropped */
};

struct streams {
  void *data;
  uv_loop_t *loop;
  struct streams_config cfg;
  struct streams_callbacks cb;
  char ws_url[512];
  struct parse parser;
  struct plan_dedupe dedupe;
  struct stream_conn *conns[STREAMS_MAX_CONNS];
  int n_conns;
  int next_conn_id;
  int64_t next_request_id;
  int closing;
  int paused;  /* streams_pause() */
  int yielded; /* streams_yield() */
  void (*close_cb)(struct streams *s);
  struct streams_stats stats;
  uint64_t rx_ns; /* uv_hrtime() of the read the frame being delivered
                     came with (ws.rx_ns) */
  /* Additions after the lead's first version. */
  struct strmap wanted; /* symbols of the last streams_set_symbols -> their
                         * duplicate-filter records */
  int n_alive;          /* connections allocated (listed or being freed) */
  uint64_t rng;         /* jitter generator state */
  /* Optional, set after streams_init (tests, probes): every text frame as
   * received, before parsing. */
  void (*on_frame)(struct streams *s, struct stream_conn *c, const char *data,
                   size_t len);
};

/* Returns 0, BL_EINVAL or BL_ENOMEM. Nothing connects until
 * streams_set_symbols(). */
int streams_init(uv_loop_t *loop, struct streams *s,
                 const struct streams_config *cfg,
                 const struct streams_callbacks *cb);

/* Makes the collected symbols exactly |symbols| (upper case). New symbols
 * go onto connections with room (SUBSCRIBE) or new connections; symbols
 * no longer wanted are unsubscribed (their events stop at once: frames
 * still in flight are dropped and counted as unwanted); empty connections
 * close. Returns 0, BL_ESTATE (closing), BL_ENOMEM, or BL_EFULL when
 * STREAMS_MAX_CONNS connections cannot carry them all. */
int streams_set_symbols(struct streams *s, const char *const *symbols, int n);

/* Closes every connection (close 1000, up to 3 s for the answer) and calls
 * |cb| once when everything is released (then |s| may be freed). No event
 * or connection change reaches the owner after this call. A second call
 * only replaces |cb|. Safe from inside the callbacks. */
void streams_close(struct streams *s, void (*cb)(struct streams *s));

/* Stops (|paused| = 1) or resumes reading every connection: back-pressure
 * while a sink is behind. TCP flow control then holds the exchange's
 * frames; a pause must stay short (the read timeout still runs). */
void streams_pause(struct streams *s, int paused);

/* Like streams_pause for one loop turn, not counted as a pause: the owner
 * stops reading after many events in one turn so that the rest of the
 * loop (PostgreSQL's replies above all) is served between read bursts,
 * and resumes on the next turn. Reading runs only while neither holds. */
void streams_yield(struct streams *s, int on);

/* For health: 1 when every connection is open and received a frame in the
 * last |fresh_ms| (a rollover's replacement still opening and a retiring
 * connection do not count; none at all is healthy). */
int streams_healthy(const struct streams *s, uint64_t fresh_ms);

const char *stream_conn_state_name(enum stream_conn_state st);

#endif
