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
#include "core/strmap.h"
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

/* Pure helpers (exposed for tests). |iv_ms| is config_interval_ms() of
 * the interval, 0 for "1M" (calendar months, UTC). */
int64_t repair_bar_start(int64_t iv_ms, int64_t t_ms); /* bar holding t */
int64_t repair_bar_next(int64_t iv_ms, int64_t open_ms);
int64_t repair_bar_prev(int64_t iv_ms, int64_t open_ms);
/* Open time of the newest bar closed at |now_ms| (close_time < now). */
int64_t repair_last_closed(int64_t iv_ms, int64_t now_ms);
/* Start-up kline range: from the bar after |last_open| (0: none stored) up
 * to the last closed bar, at most |max_hours| back. Returns 0 and sets
 * *from, *to (open times, inclusive), or 1 when nothing is missing. */
int repair_plan_klines(int64_t iv_ms, int64_t last_open, int64_t now_ms,
                       int max_hours, int64_t *from, int64_t *to);

/* One per active symbol. */
struct repair_empty {
  int ival;     /* interval index, -1 for trades */
  int64_t a, b; /* open times or ids, inclusive */
};
struct repair_kbar { /* the fields of a closed bar compared after reconnect */
  int64_t open_time, close_time, trades_count;
  ev_dec open, high, low, close, volume, quote_volume;
};
struct repair_sym {
  char symbol[EV_SYMBOL_MAX];
  int active;
  int state; /* 0 new, 1 reading its exchange_empty ranges, 2 ready */
  int64_t last_trade_id; /* newest aggTrade id seen live or repaired */
  int64_t first_live_id; /* first id the live stream delivered, 0 none */
  int64_t last_open[REPAIR_MAX_INTERVALS]; /* newest closed bar seen */
  struct repair_kbar last_bar[REPAIR_MAX_INTERVALS]; /* as received live */
  int has_bar[REPAIR_MAX_INTERVALS];
  struct repair_empty *empty; /* exchange_empty ranges (bounded) */
  int n_empty;
};

struct repair_job;
struct repair_dbop;

struct repair_stats {
  uint64_t gaps_detected[2]; /* [0] kline, [1] trade */
  uint64_t outcomes[2][4];   /* by type and pending/filled/empty/failed */
  uint64_t rows[2];          /* rows repaired (stored) by type */
  uint64_t mismatches;       /* repaired closed klines unlike the live ones */
  uint64_t requests, pages_failed, ledger_errors, store_full;
};

struct repair {
  void *data;
  uv_loop_t *loop;
  struct repair_opts opts;
  char ivname[REPAIR_MAX_INTERVALS][EV_INTERVAL_MAX];
  int64_t iv_ms[REPAIR_MAX_INTERVALS]; /* 0 for 1M */
  struct pg *pg;
  struct limiter *lim;
  struct store *store;
  struct pg_stmt stmts[8];
  struct strmap syms; /* symbol -> struct repair_sym * */
  struct repair_job *waiting_head, *waiting_tail; /* not yet started */
  struct repair_job *active;                      /* started, linked */
  int n_waiting, n_active, max_active;
  struct repair_dbop *db_head, *db_tail; /* refused by pg (full): retried */
  int n_db;                              /* dbops submitted, not finished */
  uv_timer_t timer;                      /* 50 ms tick while anything waits */
  int timer_open, closing;
  void (*close_cb)(struct repair *r);
  int64_t (*clock_ms)(void); /* epoch ms; tests may replace it */
  struct repair_stats st;
};

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
