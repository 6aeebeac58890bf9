/*
 * weight.h: the REST request-weight budget, I/O-free (the arithmetic half
 * of binance/limiter).
 *
 * Binance counts request weight per IP in fixed one-minute windows and
 * reports the count in X-MBX-USED-WEIGHT-1M. The budget here is stricter: a
 * sliding 60-second window of one-second buckets, so whatever the server's
 * window alignment or our clock skew, no 60 seconds ever carry more than
 * the limit. When an answer reports more weight than we sent (another
 * process on the same IP, or our own restart), the difference is booked as
 * foreign weight at that second and ages out like our own.
 *
 * The effective limit is the lower of binance.rest_rate_limit and
 * exchangeInfo's REQUEST_WEIGHT limit, less a headroom percentage. A 429
 * pauses everything until its Retry-After has passed; a 418 is a ban until
 * its Retry-After, reported as such.
 */
#ifndef BL_BINANCE_WEIGHT_H
#define BL_BINANCE_WEIGHT_H

#include <stdint.h>

/* Weight counts for 60 s plus 2 s: a request is booked when it is sent,
 * but the exchange counts it in the minute it arrives, and the one-second
 * buckets round. Without the margin a burst sent just before a server
 * minute ends could land in the next one on top of that minute's budget. */
#define WEIGHT_WINDOW_S 62

struct weight_budget {
  int64_t config_limit; /* binance.rest_rate_limit */
  int64_t
      exchange_limit; /* exchangeInfo REQUEST_WEIGHT per minute, 0 unknown */
  int headroom_pct;   /* kept free below the limit */
  int64_t buckets[WEIGHT_WINDOW_S];       /* weight per second, ring */
  int64_t bucket_second[WEIGHT_WINDOW_S]; /* the second each bucket holds */
  int64_t paused_until_ms;                /* 429: nothing before this */
  int64_t banned_until_ms;                /* 418: nothing before this */
  int header_seen; /* an X-MBX-USED-WEIGHT-1M was observed */
  /* The server's window is the UTC minute: what we sent in the current
   * one and the foreign weight booked in it, to tell foreign weight from
   * ours even while our sliding window still holds the last minute. */
  int64_t wall_offset_ms; /* wall clock minus now_ms (0: now_ms is wall) */
  int64_t cur_minute, minute_ours, minute_foreign;
  /* counters */
  uint64_t spent_total;
  uint64_t foreign_total;
  uint64_t n_429, n_418;
  int64_t last_header_used;
};

void weight_init(struct weight_budget *b, int64_t config_limit,
                 int headroom_pct);

/* exchangeInfo's REQUEST_WEIGHT limit per minute (limit / intervalNum
 * minutes already converted by the caller). */
void weight_set_exchange_limit(struct weight_budget *b, int64_t per_minute);

/* The limit in force after headroom (at least 1). */
int64_t weight_effective_limit(const struct weight_budget *b);

/* Weight booked in the 60 seconds before |now_ms|. */
int64_t weight_used(struct weight_budget *b, int64_t now_ms);

/* Milliseconds to wait before a request of |weight| may be sent at
 * |now_ms|: 0 when it may go now. A weight above the whole limit waits for
 * an empty window and then goes. */
int64_t weight_wait_ms(struct weight_budget *b, int64_t now_ms, int64_t weight);

/* Books a request being sent. */
void weight_spend(struct weight_budget *b, int64_t now_ms, int64_t weight);

/* An answer's X-MBX-USED-WEIGHT-1M value: whatever it holds beyond what we
 * sent in the current UTC minute (and beyond foreign weight already
 * booked in it) is booked as foreign weight now. */
void weight_observe_used(struct weight_budget *b, int64_t now_ms, int64_t used);

/* 429 with Retry-After (seconds; <= 0 means unknown: 60 s is assumed). */
void weight_on_429(struct weight_budget *b, int64_t now_ms,
                   int64_t retry_after_s);

/* 418 with Retry-After (seconds; <= 0: 120 s, Binance's shortest ban). */
void weight_on_418(struct weight_budget *b, int64_t now_ms,
                   int64_t retry_after_s);

/* 1 while a 418 ban lasts. */
int weight_banned(const struct weight_budget *b, int64_t now_ms);

#endif
