/*
 * limiter.h: the one REST scheduler every caller goes through
 * (exchangeInfo, depth snapshots, kline and aggTrade repair).
 *
 * Requests wait in four priority queues (exchange metadata, order-book
 * resyncs, recent repairs, deep history) and leave when three things allow
 * it: fewer than |workers| requests are in flight (one until the first
 * X-MBX-USED-WEIGHT-1M has been seen), the weight budget (binance/weight)
 * has room for the request's weight (repairs, RECENT and HISTORY, also
 * leave LIMITER_RESERVE_PCT of it free for snapshots and metadata), and
 * no 429 pause or 418 ban is in force. Answers are sorted out here so
 * that callers see only final outcomes:
 *   429 -> every REST call pauses for Retry-After; the request is retried
 *   418 -> all REST stops until the ban ends (logged loudly, visible to
 *          health); the request is retried after it
 *   5xx, timeouts, transport errors -> retried with exponential back-off
 *          (1 s doubling to 60 s), at most LIMITER_MAX_ATTEMPTS times
 *   other 4xx -> reported to the caller with Binance's code and message,
 *          not retried
 */
#ifndef BL_BINANCE_LIMITER_H
#define BL_BINANCE_LIMITER_H

#include <stdint.h>
#include <uv.h>

#include "binance/weight.h"
#include "net/http.h"

enum limiter_prio {
  LIMITER_META = 0,    /* exchangeInfo, time */
  LIMITER_BOOK = 1,    /* order-book snapshots */
  LIMITER_RECENT = 2,  /* repairs of the last hours */
  LIMITER_HISTORY = 3, /* deep history */
  LIMITER_NPRIO = 4
};

#define LIMITER_MAX_ATTEMPTS 8
#define LIMITER_RESERVE_PCT 10 /* of the budget, kept from repairs */
#define LIMITER_MAX_QUEUED 100000
#define LIMITER_QUERY_MAX 512

struct limiter;
struct limiter_req;

/* |result| is 0 when a 2xx answer arrived (req->http holds status, body,
 * headers); BL_EHTTP for a final 4xx (req->http.status, req->api_code and
 * req->api_msg from Binance's {"code","msg"} body); the last error after
 * LIMITER_MAX_ATTEMPTS failures; or BL_ECANCELED. */
typedef void (*limiter_cb)(struct limiter_req *req, int result);

struct limiter_req {
  void *data;                    /* the caller's */
  int prio;                      /* enum limiter_prio */
  int weight;                    /* request weight (docs/binance-api.md 3.4) */
  char path[64];                 /* "/api/v3/klines" */
  char query[LIMITER_QUERY_MAX]; /* "symbol=BTCUSDT&interval=1m&..." */
  limiter_cb cb;

  /* results */
  struct http_req http;
  int attempts;
  int api_code;      /* Binance error code, 0 if none */
  char api_msg[256]; /* Binance error message */

  /* private */
  struct limiter *lim;
  struct limiter_req *next, *prev;
  uint64_t not_before; /* uv_now() before which it must not be sent */
  int state;           /* 0 idle, 1 queued, 2 in flight */
};

struct limiter_stats {
  uint64_t sent, ok, client_errors, retries, failed, canceled;
  uint64_t status_429, status_418, status_5xx, timeouts;
};

struct limiter {
  void *data;
  uv_loop_t *loop;
  struct http *http;
  char base_url[256];
  int workers;
  int in_flight;
  int queued;
  int closing;
  struct weight_budget budget;
  struct {
    struct limiter_req *head, *tail;
  } queues[LIMITER_NPRIO];
  struct limiter_req *in_flight_list; /* doubly linked through next/prev */
  struct limiter_req *canceled;       /* awaiting their callback */
  uv_timer_t timer;
  int timer_open;
  void (*close_cb)(struct limiter *lim);
  struct limiter_stats stats;
  /* Called when a 418 ban starts (banned = 1) and ends (0). */
  void (*on_ban)(struct limiter *lim, int banned, int64_t until_ms);
};

/* |http| is an initialised http client the limiter uses (not owned);
 * |base_url| the REST base (binance.api_url); |config_limit|
 * binance.rest_rate_limit; |workers| sync.workers. Returns 0 or a UV_E*
 * code. */
int limiter_init(uv_loop_t *loop, struct limiter *lim, struct http *http,
                 const char *base_url, int64_t config_limit, int workers);

/* Prepares a request struct (zeroes it). */
void limiter_req_init(struct limiter_req *req);
void limiter_req_free(struct limiter_req *req);

/* Queues |req| (path, query, weight, prio and cb set by the caller).
 * Returns 0, BL_EINVAL (already queued or bad fields), BL_EFULL or
 * BL_ESTATE (closing). */
int limiter_submit(struct limiter *lim, struct limiter_req *req);

/* Cancels a queued or in-flight request; its callback runs later with
 * BL_ECANCELED. */
void limiter_cancel(struct limiter_req *req);

/* exchangeInfo's REQUEST_WEIGHT limit per minute. */
void limiter_set_exchange_limit(struct limiter *lim, int64_t per_minute);

/* 1 while a 418 ban lasts. */
int limiter_banned(struct limiter *lim);

/* Weight booked in the last 60 s. */
int64_t limiter_weight_used(struct limiter *lim);

/* Cancels everything (callbacks get BL_ECANCELED) and calls |cb| once no
 * request is in flight and the limiter's timer is closed. The http client
 * is not closed (close it after |cb|). */
void limiter_close(struct limiter *lim, void (*cb)(struct limiter *lim));

#endif
