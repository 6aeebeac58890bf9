/*
 * redis.h: the Redis publisher (PRODUCT.md section 7).
 *
 * For each live event one pipelined pair
 *   SET P:latest:KIND:SYMBOL[:INTERVAL] MSG EX live_data_ttl
 *   PUBLISH P:KIND:SYMBOL[:INTERVAL] MSG
 * where MSG is the envelope of sink/envelope.h with a per-channel seq
 * (1, 2, 3 ... since start, counting also what could not be delivered).
 * P:symbols:active holds the active symbols as a JSON array without
 * expiry.
 *
 * Connection: DOWN -> RESOLVING (uv_getaddrinfo) -> CONNECTING (TCP, then
 * AUTH and SELECT) -> UP. Any failure goes back to DOWN and retries after
 * a back-off (100 ms doubling to 10 s, with jitter). On every UP the
 * active symbols and the latest message of every channel (kept in memory,
 * one per channel) are written again. Nothing blocks: while not UP, or
 * with more than max_inflight commands awaiting replies, a publish is
 * dropped and counted.
 */
#ifndef BL_SINK_REDIS_H
#define BL_SINK_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "core/buf.h"
#include "sink/envelope.h"

#define REDIS_SINK_MAX_INFLIGHT 10000 /* commands awaiting replies */
#define REDIS_SINK_MAX_CHANNELS 65536 /* distinct channels remembered */
#define REDIS_SINK_MSG_MAX (1 << 20)  /* one message */

struct redis_sink;
typedef void (*redis_sink_close_cb)(struct redis_sink *r);

struct redis_sink_opts {
  const char *host;            /* NULL: "localhost" */
  int port;                    /* 0: 6379 */
  const char *password;        /* NULL or "": no AUTH */
  int db;                      /* SELECT db */
  int live_data_ttl;           /* seconds; 0: 60 */
  const char *key_prefix;      /* NULL: "binance" */
  unsigned max_inflight;       /* 0: REDIS_SINK_MAX_INFLIGHT */
  uint64_t backoff_min_ms;     /* 0: 100 */
  uint64_t backoff_max_ms;     /* 0: 10000 */
  uint64_t connect_timeout_ms; /* 0: 5000 */
  uint64_t command_timeout_ms; /* 0: 10000 */
  uint64_t close_timeout_ms;   /* flush deadline at close; 0: 10000 */
};

enum redis_sink_state {
  REDIS_SINK_DOWN = 0,
  REDIS_SINK_RESOLVING,
  REDIS_SINK_CONNECTING,
  REDIS_SINK_UP,
  REDIS_SINK_CLOSED
};

struct redis_chan; /* redis.c */

struct redis_sink {
  void *data; /* the caller's */

  /* Counters (read freely). */
  uint64_t published;  /* events sent (SET+PUBLISH pairs) */
  uint64_t dropped;    /* events not sent: down or over the in-flight cap */
  uint64_t ttl_writes; /* latest-key writes that set the TTL (SET ... EX) */
  uint64_t reconnects; /* times UP was reached again after a loss */
  uint64_t errors;     /* error replies, failed connects, lost links */
  char errstr[256];    /* the last error, for logs and /health */

  /* private */
  uv_loop_t *loop;
  int state;
  struct redisAsyncContext *ac;
  uv_timer_t timer; /* retry back-off; the flush deadline at close */
  uv_getaddrinfo_t gai;
  int resolving;
  char *host, *password, *prefix;
  int port, db, ttl;
  unsigned max_inflight, inflight;
  uint64_t backoff_min, backoff_max, backoff;
  uint64_t connect_timeout, command_timeout, close_timeout;
  uint64_t rng;
  int ever_up;
  int closing;
  int timer_closed;
  redis_sink_close_cb close_cb;
  struct redis_chan **buckets;  /* channels by name */
  struct redis_chan **tbuckets; /* the same, by (kind, symbol, interval) */
  size_t n_chans;
  char ttl_resp[40]; /* "$2\r\nEX\r\n$N\r\nTTL\r\n", the end of a SET */
  int keepttl;       /* this server takes SET ... KEEPTTL */
  uint64_t conn_id;  /* counts connections (a key's TTL is per server) */
  size_t ttl_resp_len;
  char *symbols_json; /* the last active-symbols array, or NULL */
  size_t symbols_len;
  struct buf msg, name; /* scratch */
};

/* Initialises |r| (copies the strings); does not connect yet.
 * Returns 0, BL_EINVAL or BL_ENOMEM. */
int redis_sink_init(uv_loop_t *loop, struct redis_sink *r,
                    const struct redis_sink_opts *opts);

/* Starts connecting (and keeps reconnecting). Returns 0 or BL_ESTATE. */
int redis_sink_start(struct redis_sink *r);

/* Publish one event and update its latest key. Returns 0 when the pair
 * was queued on the connection, BL_ESTATE when Redis is not up (dropped,
 * counted, seq advanced), BL_EFULL over the in-flight cap (dropped,
 * counted, seq advanced), BL_EINVAL, BL_ETOOBIG or BL_ENOMEM. */
int redis_sink_publish_kline(struct redis_sink *r, const struct ev_kline *k);
int redis_sink_publish_ticker(struct redis_sink *r, const struct ev_ticker *t);
int redis_sink_publish_trade(struct redis_sink *r, const struct ev_trade *t);
int redis_sink_publish_depth(struct redis_sink *r, const struct sink_depth *d);

/* Remembers the active symbols and writes P:symbols:active (no expiry)
 * now if up, and after every reconnect. Returns 0 (also when not up),
 * BL_ETOOBIG or BL_ENOMEM. */
int redis_sink_set_active_symbols(struct redis_sink *r,
                                  const char *const *symbols, size_t n);

int redis_sink_is_up(const struct redis_sink *r);

/* Stops reconnecting, flushes what is queued (redisAsyncDisconnect: all
 * replies are awaited) for at most close_timeout_ms, then drops the
 * connection, closes the timer and calls |cb|. */
void redis_sink_close(struct redis_sink *r, redis_sink_close_cb cb);

/* 1 if an INFO text names a Redis version that takes SET ... KEEPTTL
 * (6.0 and later). Pure; exposed for tests. */
int redis_version_has_keepttl(const char *info);

#endif
