/*
 * depth.h: the order-book manager. One verified local book (market/book)
 * per active symbol, fed by the diff-depth events of the stream manager;
 * snapshots fetched through the REST scheduler (binance/limiter, priority
 * LIMITER_BOOK, limit and weight from book_snapshot_limit); every applied
 * update published to P:depth:SYMBOL and P:latest:depth:SYMBOL with the top
 * binance.depth_levels per side (sink/redis); a resync published once as
 * book_state "resyncing" with empty sides; a depth_snapshots row stored
 * per symbol every binance.depth_snapshot_interval seconds while synced
 * (sink/store).
 */
#ifndef BL_MARKET_DEPTH_H
#define BL_MARKET_DEPTH_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "binance/limiter.h"
#include "core/buf.h"
#include "core/strmap.h"
#include "sink/redis.h"
#include "sink/store.h"

struct depth_opts {
  int depth_levels;        /* binance.depth_levels */
  int snapshot_limit;      /* binance.depth_snapshot_limit */
  int snapshot_interval_s; /* binance.depth_snapshot_interval */
};

/* What the symbol manager knows of a symbol from exchangeInfo. */
struct depth_symbol {
  const char *symbol;
  const char *tick_size; /* PRICE_FILTER tickSize, NULL or "" if unknown */
};

struct depth;

/* |lim|, |redis| and |store| may be NULL (tests): then snapshots are not
 * fetched / nothing is published / nothing stored. Returns 0 or a negative
 * code. */
int depth_init(uv_loop_t *loop, struct depth *d, const struct depth_opts *opts,
               struct limiter *lim, struct redis_sink *redis,
               struct store *store);

/* Makes the set of books exactly |syms|: new symbols get a book (buffering
 * until their snapshot), gone symbols' books are dropped. */
int depth_set_symbols(struct depth *d, const struct depth_symbol *syms, int n);

/* One diff-depth event from the stream (already deduplicated). */
void depth_on_event(struct depth *d, const struct ev_depth *ev);

/* The connection carrying |symbols| went down or was replaced: their books
 * resync (published as resyncing at once). */
void depth_on_disconnect(struct depth *d, const char *const *symbols, int n);

/* Prometheus families: books by state, resyncs by reason, snapshots
 * fetched, updates applied. */
void depth_collect(struct buf *out, void *arg);

/* Counts for /health: books synced and in total. */
void depth_counts(const struct depth *d, int *synced, int *total);

void depth_close(struct depth *d, void (*cb)(struct depth *d));

#endif
