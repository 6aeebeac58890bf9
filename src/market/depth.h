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
#include "binance/rest_parse.h"
#include "market/book.h"
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

struct depth_book; /* depth.c: one symbol's book and its request */

struct depth_stats {
  uint64_t snapshots_requested; /* requests submitted (or owed, no limiter) */
  uint64_t snapshots_ok;        /* bodies parsed and handed to the book */
  uint64_t snapshots_failed;    /* errors, bad bodies, cancels */
  uint64_t publishes;           /* synced messages accepted by redis */
  uint64_t publish_errors;      /* redis refused (down, full) */
  uint64_t resyncing_published; /* "resyncing" messages */
  uint64_t rows_stored;         /* depth_snapshots rows queued */
  uint64_t rows_refused;        /* store refused (full, closing) */
  uint64_t events_unknown;      /* events for a symbol without a book */
  uint64_t books_dropped;
};

struct depth {
  void *data; /* the caller's */
  /* private */
  uv_loop_t *loop;
  struct depth_opts opts;
  struct limiter *lim;
  struct redis_sink *redis;
  struct store *store;
  struct strmap books; /* symbol -> struct depth_book * */
  struct rest_parse rp;
  int rp_ready;
  int req_limit, req_weight;            /* from book_snapshot_limit */
  struct ev_level *top_bids, *top_asks; /* depth_levels each, reused */
  struct buf bids_json, asks_json;      /* depth_snapshots rows, reused */
  uv_timer_t timer;                     /* depth_snapshots rows */
  int timer_open;
  int gen;          /* depth_set_symbols generation */
  int gone_waiting; /* dropped books whose request has not answered yet */
  int closing;
  void (*close_cb)(struct depth *d);
  struct book_stats gone; /* counters of dropped books (monotonic totals) */
  struct depth_stats stats;
};

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

/* Writes one depth_snapshots row (time |now_ms|, wall clock) for every
 * SYNCED book; the timer calls it every snapshot_interval_s with the wall
 * clock. Returns the rows made (also counted when |store| is NULL). */
int depth_store_snapshots(struct depth *d, int64_t now_ms);

/* The book of |symbol| (NULL if none): for tests and diagnostics. */
const struct book *depth_book(const struct depth *d, const char *symbol);

/* Delivers a snapshot answer as if the limiter had returned it: |result| 0
 * with the body, or a negative code (the request failed). For tests with
 * no limiter; with a limiter, only a book with no request out takes it.
 * Returns 0, BL_ENOTFOUND (no book) or BL_ESTATE (no answer owed). */
int depth_snapshot_arrived(struct depth *d, const char *symbol, int result,
                           const char *body, size_t len);

/* Cancels the snapshot requests, stops the timer and frees the books;
 * |cb| (may be NULL) runs once every request has answered and the timer
 * is closed; the memory is released then. */
void depth_close(struct depth *d, void (*cb)(struct depth *d));

#endif
