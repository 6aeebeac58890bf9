/*
 * pipeline.h: where a parsed live event goes. Each event from the stream
 * manager is handed, by pointer and once, to the store (klines, tickers,
 * trades), to Redis (publish + latest key), to the order-book manager
 * (depth) and to the completeness checker (trade ids, closed klines).
 * Counts events by type and measures frame-arrival-to-publish latency.
 */
#ifndef BL_PIPELINE_H
#define BL_PIPELINE_H

#include <stdint.h>

#include "binance/events.h"
#include "core/buf.h"
#include "core/metrics.h"

struct store;
struct redis_sink;

enum pipeline_kind { PL_KLINE = 0, PL_TICKER, PL_DEPTH, PL_TRADE, PL_NKINDS };

struct pipeline {
  struct store *store;
  struct redis_sink *redis;
  /* The order-book manager and the continuity checker, as callbacks so
   * that the pipeline does not depend on them (NULL: not wired). */
  void (*on_depth)(void *arg, const struct ev_depth *d);
  void *depth_arg;
  void (*on_trade)(void *arg, const struct ev_trade *t);
  void (*on_kline)(void *arg, const struct ev_kline *k);
  void *check_arg;
  uint64_t events[PL_NKINDS];
  uint64_t store_refused[PL_NKINDS];
  uint64_t last_event_ms;           /* wall clock of the newest event */
  struct metrics_histogram latency; /* seconds, frame arrival to publish */
  /* last_event_ms reads the wall clock at most once per millisecond of
   * uv_hrtime (the clock costs as much as a fifth of an event's dispatch
   * otherwise): the hrtime of the last read. */
  uint64_t wall_read_ns;
};

void pipeline_init(struct pipeline *p);

/* |rx_ns|: uv_hrtime() when the frame arrived. */
void pipeline_on_event(struct pipeline *p, const struct ev *ev, uint64_t rx_ns);

void pipeline_collect(struct buf *out, void *arg);

const char *pipeline_kind_name(int kind);

#endif
