/*
 * symbols.h: the set of symbols being collected (PRODUCT.md section 6).
 *
 * The active set is SELECT symbol FROM symbols WHERE is_active, checked
 * against exchangeInfo, which wins: symbols.status (and empty base/quote
 * assets) are updated from it, and unknown or non-TRADING symbols are
 * reported and skipped. An empty table is filled from symbols.bootstrap
 * with the assets exchangeInfo gives. A change in the table takes effect
 * without a restart: the schema's trigger NOTIFYs binance_live_symbols,
 * which is LISTENed; the table is also re-read every minute, and
 * exchangeInfo every hour. Until PostgreSQL first answers, the bootstrap
 * list is the active set, so collection starts without the database.
 */
#ifndef BL_MARKET_SYMBOLS_H
#define BL_MARKET_SYMBOLS_H

#include <stdint.h>
#include <uv.h>

#include "binance/events.h"
#include "binance/limiter.h"
#include "binance/rest_parse.h"
#include "core/strmap.h"
#include "sink/pg.h"

#define SYMBOLS_CHANNEL "binance_live_symbols"
#define SYMBOLS_MAX 4096

struct symbol_meta {
  char status[24];
  char base[EV_SYMBOL_MAX];
  char quote[EV_SYMBOL_MAX];
  ev_dec tick_size;
};

struct symbols;

/* The effective set changed: |active| (sorted) is what to collect; |metas|
 * holds exchangeInfo's facts for each (zeroed when unknown). */
typedef void (*symbols_change_cb)(struct symbols *s, const char *const *active,
                                  const struct symbol_meta *const *metas,
                                  int n);

struct symbols_opts {
  const char *const *bootstrap;
  int n_bootstrap;
  uint64_t reread_ms;        /* 0: 60 s */
  uint64_t exchange_info_ms; /* 0: 1 h */
};

struct symbols {
  void *data;
  uv_loop_t *loop;
  struct pg *pg;
  struct limiter *lim;
  struct symbols_opts opts;
  symbols_change_cb on_change;
  /* exchangeInfo: symbol -> struct symbol_meta * */
  struct strmap exinfo;
  int exinfo_loaded;
  int exinfo_inflight;
  struct limiter_req exreq;
  struct rest_parse rp;
  /* the table's active symbols, sorted; NULL until first read */
  char **db;
  int n_db;
  int db_loaded;
  int db_empty; /* the table has no row at all */
  int db_inflight;
  int db_again;       /* a NOTIFY came while a read was in flight */
  int bootstrap_done; /* the empty-table insert was tried */
  /* the effective set last reported */
  char **active;
  int n_active;
  /* pg */
  struct pg_stmt st_select, st_bootstrap, st_update;
  struct pg_listen listen;
  struct pg_op op_select, op_bootstrap, op_update;
  struct buf arr[4]; /* array parameters of the op in flight */
  const char *vals[4];
  int write_inflight;
  uv_timer_t reread;    /* periodic re-read */
  uv_timer_t debounce;  /* NOTIFY -> re-read */
  uv_timer_t exrefresh; /* exchangeInfo refresh */
  int handles_open;
  int closing;
  void (*close_cb)(struct symbols *s);
  /* counters */
  uint64_t rereads, notifications, skipped_unknown, skipped_not_trading;
};

int symbols_init(uv_loop_t *loop, struct symbols *s,
                 const struct symbols_opts *opts, struct pg *pg,
                 struct limiter *lim, symbols_change_cb on_change);

/* Asks for exchangeInfo and reports the bootstrap set at once. */
int symbols_start(struct symbols *s);

/* PostgreSQL is (again) up: read the table (the app calls this after the
 * migrations have run). */
void symbols_db_up(struct symbols *s);

/* Number of symbols in the effective set. */
int symbols_count(const struct symbols *s);

void symbols_close(struct symbols *s, void (*cb)(struct symbols *s));

#endif
