/*
 * repair.h: completeness. Detects what the live streams missed and fills
 * it over REST through the one scheduler (binance/limiter), recording every
 * gap in the data_gaps ledger and keeping sync_status current.
 *
 *  - Start-up: for every active symbol, every kline interval and trades,
 *    from sync_status (or the newest stored row) up to now, at most
 *    sync.max_sync_hours back, in pages of sync.batch_size; klines are
 *    stored with source 'rest'; trades by aggTrade id (fromId) up to the
 *    first id the live stream delivered, so history and live meet.
 *  - Live: aggTrade ids must be consecutive per symbol; a break opens a gap
 *    repaired by id. A closed kline whose open time skips bars opens a gap
 *    repaired by time.
 *  - After every reconnect or rollover: the trades since the last stored id
 *    and the last closed klines of each interval; a closed kline that
 *    differs from the one received live is counted and logged.
 *  - Ledger: each gap is a data_gaps row (pending -> filled | exchange_empty
 *    | failed, with rows_filled and detail); a failed gap is retried later
 *    with back-off; an exchange_empty range is not asked again.
 *  - Priorities: gaps ending within the last hour are LIMITER_RECENT, older
 *    ones LIMITER_HISTORY.
 */
#ifndef BL_MARKET_REPAIR_H
#define BL_MARKET_REPAIR_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "binance/limiter.h"
#include "core/buf.h"
#include "sink/pg.h"
#include "sink/store.h"

#define REPAIR_MAX_INTERVALS 16

struct repair_opts {
  int enabled;        /* sync.enabled */
  int max_sync_hours; /* sync.max_sync_hours */
  int batch_size;     /* sync.batch_size (<= 1000) */
  int klines, trades; /* binance.streams.kline / .trade */
  const char *intervals[REPAIR_MAX_INTERVALS];
  int n_intervals;
};

struct repair;

/* |pg| is used for the ledger and for reading sync_status and the newest
 * stored ids; |store| for the repaired rows. Returns 0 or a negative code. */
int repair_init(uv_loop_t *loop, struct repair *r,
                const struct repair_opts *opts, struct pg *pg,
                struct limiter *lim, struct store *store);

/* The active symbols; new ones get their start-up repair. */
int repair_set_symbols(struct repair *r, const char *const *symbols, int n);

/* Every live trade and kline (deduplicated), before or after it is
 * stored: continuity is checked here. */
void repair_on_trade(struct repair *r, const struct ev_trade *t);
void repair_on_kline(struct repair *r, const struct ev_kline *k);

/* A connection carrying |symbols| came back (reconnect or rollover). */
void repair_on_reconnect(struct repair *r, const char *const *symbols, int n);

/* Prometheus families: gaps detected and filled by type and outcome, rows
 * repaired, kline mismatches. */
void repair_collect(struct buf *out, void *arg);

/* 1 while any repair is pending or running (for /health detail). */
int repair_busy(const struct repair *r);

void repair_close(struct repair *r, void (*cb)(struct repair *r));

#endif
