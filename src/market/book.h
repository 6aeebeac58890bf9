/*
 * book.h: the verified local order book of one symbol (pure logic, no I/O).
 *
 * One struct book per symbol follows the official procedure of
 * docs/binance-api.md section 2: diff events are buffered until a REST
 * snapshot arrives, events older than the snapshot are dropped, the first
 * kept event must straddle the snapshot (U <= lastUpdateId+1 <= u), and
 * every later event must continue the sequence (U <= updateId+1) or the book
 * is discarded and resynced. A crossed book, invalid input, a buffer that
 * outgrows its bounds or a reconnect (book_reset) also resync it.
 *
 * The book does no I/O. Every entry point returns a mask of BOOK_ACT_* bits
 * telling its owner what to do next: ask the REST scheduler for a snapshot
 * (limit and weight in req_limit / req_weight), publish the top levels,
 * publish a "resyncing" message. The owner must answer every
 * BOOK_ACT_REQUEST_SNAPSHOT with exactly one book_on_snapshot() or
 * book_on_snapshot_failed().
 *
 * States: BUFFERING (no snapshot request out; the next diff asks for one),
 * SNAPSHOT_PENDING (a request is out; diffs are buffered), SYNCED.
 *
 * Published levels are always known levels: a snapshot of `limit` levels
 * tells nothing about prices beyond its worst level, so each side keeps an
 * edge (the worst price it knows) and never stores or shows anything beyond
 * it. See book.c for the data structure and memory figures.
 */
#ifndef BL_MARKET_BOOK_H
#define BL_MARKET_BOOK_H

#include <stddef.h>
#include <stdint.h>

#include "binance/events.h"

#define BOOK_SCALE_MAX 18       /* decimals of the price scale */
#define BOOK_MIN_SCALE 8        /* Binance's fixed point: int64 * 1e-8 */
#define BOOK_QTY_SCALE 8        /* quantities are keyed at 8 decimals */
#define BOOK_LIMIT_MAX 5000     /* Binance's largest snapshot */
#define BOOK_DEFAULT_LIMIT 1000 /* PRODUCT.md binance.depth_snapshot_limit */
#define BOOK_DEFAULT_BUF_EVENTS 600        /* 60 s of @100ms diffs */
#define BOOK_DEFAULT_BUF_BYTES (64 * 1024) /* per book while resyncing */

enum book_state {
  BOOK_BUFFERING = 0,
  BOOK_SNAPSHOT_PENDING = 1,
  BOOK_SYNCED = 2
};

/* Bits of the action mask returned by the book_on_* functions. */
enum book_action {
  BOOK_ACT_REQUEST_SNAPSHOT = 1 << 0, /* GET depth, limit b->req_limit */
  BOOK_ACT_PUBLISH = 1 << 1,          /* synced and changed: publish the top */
  BOOK_ACT_TOP_CHANGED = 1 << 2,      /* the top depth_levels levels changed */
  BOOK_ACT_RESYNCING = 1 << 3, /* left SYNCED: publish book_state resyncing */
  BOOK_ACT_SYNCED = 1 << 4     /* just became SYNCED (PUBLISH is set too) */
};

/* Why a book (re)started its sync; counted in stats.resyncs[]. */
enum book_resync_reason {
  BOOK_RESYNC_GAP = 0,          /* U > updateId+1, or first event not
                                   straddling the snapshot */
  BOOK_RESYNC_CROSSED,          /* best bid >= best ask after an event */
  BOOK_RESYNC_SNAPSHOT_TOO_OLD, /* snapshot lastUpdateId < U0: refetched */
  BOOK_RESYNC_BUFFER_OVERFLOW,  /* buffered diffs over count or bytes: the
                                   oldest dropped, once per sync attempt */
  BOOK_RESYNC_RESET,            /* book_reset (reconnect) */
  BOOK_RESYNC_INVALID,          /* a price or quantity we cannot key */
  BOOK_RESYNC_SHALLOW,          /* fewer known levels than depth_levels */
  BOOK_RESYNC_NOMEM,            /* could not grow a side */
  BOOK_RESYNC__COUNT
};

/* What happened to one diff event (for tests and diagnostics). */
enum book_decision {
  BOOK_DEC_BUFFERED = 0, /* kept in the buffer until the snapshot */
  BOOK_DEC_DROPPED,      /* u <= lastUpdateId of the snapshot, or pushed
                            out of a full buffer: discarded */
  BOOK_DEC_APPLIED,      /* applied to the book */
  BOOK_DEC_STALE,        /* u <= updateId once synced: ignored */
  BOOK_DEC_GAP,          /* caused a resync (then buffered anew) */
  BOOK_DEC_INVALID       /* bad level: caused a resync */
};

struct book;
typedef void (*book_decision_cb)(void *ctx, const struct book *b,
                                 int64_t first_id, int64_t final_id,
                                 enum book_decision d);

struct book_stats {
  uint64_t events_applied;
  uint64_t events_dropped; /* discarded against a snapshot */
  uint64_t events_stale;   /* ignored once synced */
  uint64_t events_buffered;
  uint64_t levels_applied;
  uint64_t levels_beyond_edge; /* updates for prices we do not track */
  uint64_t levels_trimmed;     /* worst levels dropped at the side cap */
  uint64_t format_changes;     /* levels not printed as the first ones were */
  uint64_t snapshots_applied;
  uint64_t snapshots_ignored; /* arrived with no request out, or synced */
  uint64_t snapshots_failed;
  uint64_t resyncs[BOOK_RESYNC__COUNT];
};

/* One stored level, 16 bytes (see book.c). */
struct book_level {
  int64_t price; /* price * 10^pscale */
  int64_t qty;   /* quantity * 10^BOOK_QTY_SCALE */
};

struct book_side {
  struct book_level *lv; /* worst first, best last */
  uint32_t n, cap;
  int is_ask;   /* asks: better means lower */
  int bounded;  /* 1: prices worse than edge are unknown */
  int64_t edge; /* worst known price (scaled), when bounded */
};

struct book {
  char symbol[EV_SYMBOL_MAX];
  int scale;        /* decimals of tickSize */
  int pscale;       /* decimals of the price keys: max(scale, 8) */
  int pfrac, qfrac; /* digits after the point as received (-1: none yet) */
  int depth_levels; /* levels per side published */
  int cfg_limit;    /* configured snapshot limit */
  uint32_t buf_max_events;
  uint32_t side_max;    /* hard cap of stored levels per side */
  uint32_t shallow_min; /* fewer known levels on a bounded side: resync */

  enum book_state state;
  int need_first;         /* synced, first event not yet applied */
  int64_t last_update_id; /* updateId once synced */
  int64_t snap_update_id; /* lastUpdateId of the applied snapshot */
  struct book_side bids, asks;

  unsigned char *pend; /* buffered diffs (encoded, see book.c) */
  size_t pend_len, pend_cap;
  size_t pend_max;        /* byte bound of the buffer */
  uint32_t pending_count; /* events in pend */
  int64_t first_u0;       /* U of the first buffered event */
  int64_t pending_last_u; /* u of the last buffered event */
  int pend_overflowed;    /* the oldest events were dropped (counted) */

  int req_limit;  /* limit of the snapshot to request (read-only) */
  int req_weight; /* its request weight (read-only) */

  struct book_stats stats;
  enum book_decision last_decision;
  book_decision_cb on_decision; /* optional */
  void *decision_ctx;
};

/* Counts decimals of a tickSize such as "0.00010000" (-> 4) or
 * "1.00000000" (-> 0). Returns the scale, or BL_EINVAL if |tick| is not a
 * positive canonical decimal or needs more than BOOK_SCALE_MAX decimals. */
int book_scale_from_tick(const char *tick);

/* The snapshot limit to ask for, given the levels to publish and the
 * configured limit (0 = BOOK_DEFAULT_LIMIT): max(configured, depth_levels)
 * clamped to 1..5000. Its request weight (5/25/50/250) goes to |weight|
 * when not NULL. */
int book_snapshot_limit(int depth_levels, int configured_limit, int *weight);

/* Initialises an empty book in BUFFERING. |scale| is the number of
 * decimals of tickSize (book_scale_from_tick); prices are keyed at
 * max(scale, 8) decimals, because a book can hold resting orders finer than
 * today's tick (placed before a tickSize change; the recorded NKNUSDT book
 * has some). |depth_levels| is the levels per side to publish. No
 * allocation. Returns 0 or BL_EINVAL. */
int book_init(struct book *b, const char *symbol, int scale, int depth_levels);

/* Optional, before use: the configured snapshot limit and the buffer bounds
 * (0 keeps a default). Returns 0 or BL_EINVAL. */
int book_set_limits(struct book *b, int snapshot_limit, uint32_t max_events,
                    size_t max_bytes);

/* Frees the levels and the buffer. The book may be re-initialised. */
void book_free(struct book *b);

/* Handles one diff event. Returns a mask of BOOK_ACT_*, or BL_EINVAL if the
 * event is for another symbol (the book is unchanged). */
int book_on_diff(struct book *b, const struct ev_depth *ev);

/* Handles the answer to a snapshot request. Levels as the exchange sent
 * them, in any order. Returns a mask of BOOK_ACT_*, or BL_EINVAL on NULL
 * arrays with a non-zero count. */
int book_on_snapshot(struct book *b, int64_t last_update_id,
                     const struct ev_level *bids, size_t n_bids,
                     const struct ev_level *asks, size_t n_asks);

/* The snapshot request failed for good (the scheduler gave up). The buffer
 * is kept and the next diff asks again. Returns a mask of BOOK_ACT_*. */
int book_on_snapshot_failed(struct book *b);

/* Reconnect: the stream no longer continues; drop everything and buffer
 * again. Returns BOOK_ACT_RESYNCING if the book was synced, else 0. */
int book_reset(struct book *b);

/* Writes up to |n| best-first levels per side as the decimal strings
 * received, never more than the book knows, and returns their counts in
 * |*n_bids| and |*n_asks| (0 unless SYNCED). Either array may be NULL. */
void book_top(const struct book *b, size_t n, struct ev_level *bids,
              size_t *n_bids, struct ev_level *asks, size_t *n_asks);

enum book_state book_state(const struct book *b);

/* "synced" or "resyncing" (PRODUCT.md section 7 book_state). */
const char *book_state_name(const struct book *b);

int64_t book_last_update_id(const struct book *b);

const struct book_stats *book_stats(const struct book *b);

/* Bytes of heap the book holds now (levels and buffer). */
size_t book_mem(const struct book *b);

#endif
