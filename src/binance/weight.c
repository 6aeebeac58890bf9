/*
 * weight.c: sliding-window request-weight budget (see weight.h).
 *
 * State: 60 one-second buckets keyed by absolute second, the pause and
 * ban deadlines, and counters.
 */
#include "binance/weight.h"

#include <string.h>

void weight_init(struct weight_budget *b, int64_t config_limit,
                 int headroom_pct) {
  memset(b, 0, sizeof *b);
  b->config_limit = config_limit > 0 ? config_limit : 6000;
  b->headroom_pct = headroom_pct >= 0 && headroom_pct < 100 ? headroom_pct : 10;
  for (int i = 0; i < WEIGHT_WINDOW_S; i++)
    b->bucket_second[i] = -1;
}

void weight_set_exchange_limit(struct weight_budget *b, int64_t per_minute) {
  b->exchange_limit = per_minute > 0 ? per_minute : 0;
}

int64_t weight_effective_limit(const struct weight_budget *b) {
  int64_t lim = b->config_limit;
  if (b->exchange_limit && b->exchange_limit < lim)
    lim = b->exchange_limit;
  lim = lim * (100 - b->headroom_pct) / 100;
  return lim > 0 ? lim : 1;
}

static int64_t bucket_total(const struct weight_budget *b, int64_t now_s,
                            int64_t from_s) {
  int64_t sum = 0;
  for (int i = 0; i < WEIGHT_WINDOW_S; i++) {
    int64_t s = b->bucket_second[i];
    if (s >= from_s && s <= now_s && s > now_s - WEIGHT_WINDOW_S)
      sum += b->buckets[i];
  }
  return sum;
}

int64_t weight_used(struct weight_budget *b, int64_t now_ms) {
  int64_t now_s = now_ms / 1000;
  return bucket_total(b, now_s, now_s - WEIGHT_WINDOW_S + 1);
}

static void book(struct weight_budget *b, int64_t now_ms, int64_t weight) {
  int64_t s = now_ms / 1000;
  int i = (int)(s % WEIGHT_WINDOW_S);
  if (b->bucket_second[i] != s) {
    b->bucket_second[i] = s;
    b->buckets[i] = 0;
  }
  b->buckets[i] += weight;
}

int64_t weight_wait_ms(struct weight_budget *b, int64_t now_ms,
                       int64_t weight) {
  int64_t limit = weight_effective_limit(b);
  int64_t now_s = now_ms / 1000;
  int64_t used, wait = 0;
  if (b->banned_until_ms > now_ms)
    return b->banned_until_ms - now_ms;
  if (b->paused_until_ms > now_ms)
    return b->paused_until_ms - now_ms;
  if (weight > limit)
    weight = limit; /* goes alone into an empty window */
  used = weight_used(b, now_ms);
  if (used + weight <= limit)
    return 0;
  /* Find the earliest second at which enough of the window has aged out:
   * a bucket of second s stops counting at second s + WINDOW. */
  for (int64_t s = now_s - WEIGHT_WINDOW_S + 1; s <= now_s; s++) {
    used -= bucket_total(b, s, s);
    if (used + weight <= limit) {
      wait = (s + WEIGHT_WINDOW_S) * 1000 - now_ms;
      break;
    }
  }
  return wait > 0 ? wait : 1;
}

static void minute_roll(struct weight_budget *b, int64_t now_ms) {
  int64_t wall = now_ms + b->wall_offset_ms;
  int64_t m = (wall >= 0 ? wall : wall - 59999) / 60000;
  if (m != b->cur_minute) {
    b->cur_minute = m;
    b->minute_ours = 0;
    b->minute_foreign = 0;
  }
}

void weight_spend(struct weight_budget *b, int64_t now_ms, int64_t weight) {
  book(b, now_ms, weight);
  minute_roll(b, now_ms);
  b->minute_ours += weight;
  b->spent_total += (uint64_t)weight;
}

void weight_observe_used(struct weight_budget *b, int64_t now_ms,
                         int64_t used) {
  int64_t foreign;
  b->header_seen = 1;
  b->last_header_used = used;
  minute_roll(b, now_ms);
  /* Requests we sent late in the last minute and the server counted in
   * this one look foreign here: booked twice, which only errs on the safe
   * side. */
  foreign = used - b->minute_ours - b->minute_foreign;
  if (foreign > 0) {
    book(b, now_ms, foreign);
    b->minute_foreign += foreign;
    b->foreign_total += (uint64_t)foreign;
  }
}

void weight_on_429(struct weight_budget *b, int64_t now_ms,
                   int64_t retry_after_s) {
  int64_t until = now_ms + (retry_after_s > 0 ? retry_after_s : 60) * 1000;
  b->n_429++;
  if (until > b->paused_until_ms)
    b->paused_until_ms = until;
}

void weight_on_418(struct weight_budget *b, int64_t now_ms,
                   int64_t retry_after_s) {
  int64_t until = now_ms + (retry_after_s > 0 ? retry_after_s : 120) * 1000;
  b->n_418++;
  if (until > b->banned_until_ms)
    b->banned_until_ms = until;
}

int weight_banned(const struct weight_budget *b, int64_t now_ms) {
  return b->banned_until_ms > now_ms;
}
