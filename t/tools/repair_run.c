/*
 * repair_run.c: drives src/market/repair against the mock exchange and a
 * real PostgreSQL (schema applied) for t/integration/repair*.sh and
 * t/bench/bench_repair.sh. It wires pg + store + http + limiter + repair
 * (and, with --ws, binance/streams feeding live trades and klines to the
 * store and to repair, with every reconnect reported to repair).
 *
 *   repair_run --api URL [--ws URL] --symbols A,B [--intervals 1m,5m]
 *              [--hours H] [--batch N] [--limit W] [--workers N]
 *              [--no-trades] [--no-klines] [--live S] [--timeout S]
 *
 * Without --ws it runs the start-up repair and exits when nothing is left
 * to do; with --ws it collects live for --live seconds, then waits for the
 * repairs to end. Prints key=value counters. Exit 0 only when the run
 * ended by itself (not --timeout) and uv_loop_close() == 0.
 * Server coordinates come from PGHOST/PGPORT/PGUSER/PGDATABASE.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "binance/limiter.h"
#include "binance/streams.h"
#include "core/err.h"
#include "core/log.h"
#include "market/repair.h"
#include "net/http.h"
#include "sink/pg.h"
#include "sink/store.h"

static uv_loop_t loop;
static struct pg pg;
static struct store st;
static struct http http;
static struct limiter lim;
static struct repair rep;
static struct streams streams;
static uv_timer_t waiter;
static int use_ws, timed_out, conn_ups;
static uint64_t live_ms, timeout_ms, started;
static uint64_t live_trades, live_klines, reconnects, live_refused;
static char *symbols[2000];
static int n_symbols;
static char *ivs[REPAIR_MAX_INTERVALS];
static int n_ivs;

static int split(char *s, char **out, int max) {
  int n = 0;
  for (char *p = strtok(s, ","); p && n < max; p = strtok(NULL, ","))
    out[n++] = p;
  return n;
}

static void pg_closed(struct pg *p) {
  (void)p;
}

static void store_closed(struct store *s) {
  (void)s;
  pg_close(&pg, 5000, pg_closed);
}

static void http_closed(struct http *h) {
  (void)h;
  store_close(&st, store_closed);
}

static void lim_closed(struct limiter *l) {
  (void)l;
  http_close(&http, http_closed);
}

static void rep_closed(struct repair *r) {
  (void)r;
  limiter_close(&lim, lim_closed);
}

static void streams_closed(struct streams *s) {
  (void)s;
  repair_close(&rep, rep_closed);
}

static void on_event(struct streams *s, const struct ev *ev) {
  (void)s;
  if (ev->type == EV_TRADE) {
    live_trades++;
    if (store_trade(&st, &ev->u.trade, 0))
      live_refused++;
    repair_on_trade(&rep, &ev->u.trade);
  } else if (ev->type == EV_KLINE) {
    live_klines++;
    if (store_kline(&st, &ev->u.kline, 0, 1))
      live_refused++;
    repair_on_kline(&rep, &ev->u.kline);
  }
}

static void on_conn_change(struct streams *s, struct stream_conn *c, int up,
                           int status, const char *const *syms, int n) {
  (void)s;
  (void)c;
  (void)status;
  if (!up)
    return;
  if (conn_ups++ > 0) { /* the first open is the start, not a reconnect */
    reconnects++;
    repair_on_reconnect(&rep, syms, n);
  }
}

static void finish(void) {
  uv_timer_stop(&waiter);
  uv_close((uv_handle_t *)&waiter, NULL);
  if (use_ws)
    streams_close(&streams, streams_closed);
  else
    repair_close(&rep, rep_closed);
}

static void check(uv_timer_t *t) {
  uint64_t el = uv_now(&loop) - started;
  (void)t;
  if (el > timeout_ms) {
    timed_out = 1;
    fprintf(stderr, "repair_run: timeout (busy=%d pending=%d)\n",
            repair_busy(&rep), store_pending(&st));
    finish();
    return;
  }
  if (use_ws && el < live_ms)
    return;
  if (el < 500 || repair_busy(&rep) || store_pending(&st) || pg_pending(&pg))
    return;
  finish();
}

int main(int argc, char **argv) {
  struct pg_opts po;
  struct store_opts so;
  struct repair_opts ro;
  const char *api = NULL, *ws = NULL, *port = getenv("PGPORT");
  static char symarg[65536] = "BTCUSDT";
  char ivarg[256] = "1m";
  long long limit = 6000;
  int workers = 5, rv;
  uint64_t t0;
  const char *lvl = getenv("REPAIR_LOG");

  memset(&so, 0, sizeof so);
  so.batch_size = 1000;
  so.flush_interval_ms = 100;
  memset(&ro, 0, sizeof ro);
  ro.enabled = 1;
  ro.max_sync_hours = 1;
  ro.batch_size = 1000;
  ro.klines = ro.trades = 1;
  timeout_ms = 120000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--no-trades")) {
      ro.trades = 0;
      continue;
    }
    if (!strcmp(a, "--no-klines")) {
      ro.klines = 0;
      continue;
    }
    if (!v) {
      fprintf(stderr, "usage: see the file header\n");
      return 2;
    }
    i++;
    if (!strcmp(a, "--api"))
      api = v;
    else if (!strcmp(a, "--ws"))
      ws = v;
    else if (!strcmp(a, "--symbols"))
      snprintf(symarg, sizeof symarg, "%s", v);
    else if (!strcmp(a, "--intervals"))
      snprintf(ivarg, sizeof ivarg, "%s", v);
    else if (!strcmp(a, "--hours"))
      ro.max_sync_hours = (int)strtol(v, NULL, 10);
    else if (!strcmp(a, "--batch"))
      ro.batch_size = (int)strtol(v, NULL, 10);
    else if (!strcmp(a, "--limit"))
      limit = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--workers"))
      workers = (int)strtol(v, NULL, 10);
    else if (!strcmp(a, "--live"))
      live_ms = (uint64_t)strtoll(v, NULL, 10) * 1000;
    else if (!strcmp(a, "--timeout"))
      timeout_ms = (uint64_t)strtoll(v, NULL, 10) * 1000;
    else {
      fprintf(stderr, "unknown option %s\n", a);
      return 2;
    }
  }
  if (!api) {
    fprintf(stderr, "--api is required\n");
    return 2;
  }
  n_symbols = split(symarg, symbols, 2000);
  n_ivs = split(ivarg, ivs, REPAIR_MAX_INTERVALS);
  for (int i = 0; i < n_ivs; i++)
    ro.intervals[i] = ivs[i];
  ro.n_intervals = n_ivs;
  use_ws = ws != NULL;

  log_setup(lvl && !strcmp(lvl, "debug") ? BL_LOG_DEBUG : BL_LOG_INFO,
            BL_LOG_TEXT, "repair_run", "test");
  uv_loop_init(&loop);
  memset(&po, 0, sizeof po);
  po.conn.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1";
  po.conn.port = port ? (int)strtol(port, NULL, 10) : 5432;
  po.conn.user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
  po.conn.dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "binance_data";
  po.max_ops = 256;
  if ((rv = pg_init(&loop, &pg, &po)) ||
      (rv = store_init(&loop, &st, &pg, &so)) ||
      (rv = http_init(&loop, &http, NULL)) ||
      (rv = limiter_init(&loop, &lim, &http, api, limit, workers)) ||
      (rv = repair_init(&loop, &rep, &ro, &pg, &lim, &st)) ||
      (rv = pg_start(&pg))) {
    fprintf(stderr, "FAIL: init: %s\n", bl_strerror(rv));
    return 1;
  }
  if (use_ws) {
    struct streams_config sc;
    struct streams_callbacks cb = {on_event, on_conn_change};
    memset(&sc, 0, sizeof sc);
    sc.ws_url = ws;
    sc.types.kline = ro.klines;
    sc.types.trade = ro.trades;
    for (int i = 0; i < n_ivs; i++)
      sc.types.intervals[i] = ivs[i];
    sc.types.n_intervals = n_ivs;
    sc.max_streams_per_conn = 1024;
    sc.reconnect_delay_ms = 200;
    sc.reconnect_max_ms = 1000;
    if ((rv = streams_init(&loop, &streams, &sc, &cb)) ||
        (rv = streams_set_symbols(&streams, (const char *const *)symbols,
                                  n_symbols))) {
      fprintf(stderr, "FAIL: streams: %s\n", bl_strerror(rv));
      return 1;
    }
  }
  repair_set_symbols(&rep, (const char *const *)symbols, n_symbols);
  uv_timer_init(&loop, &waiter);
  started = t0 = uv_now(&loop);
  uv_timer_start(&waiter, check, 100, 100);
  uv_run(&loop, UV_RUN_DEFAULT);

  printf("duration_ms=%" PRIu64 "\n", uv_now(&loop) - t0);
  printf("requests=%" PRIu64 "\n", rep.st.requests);
  printf("rows_klines=%" PRIu64 "\n", rep.st.rows[0]);
  printf("rows_trades=%" PRIu64 "\n", rep.st.rows[1]);
  printf("gaps_kline=%" PRIu64 "\n", rep.st.gaps_detected[0]);
  printf("gaps_trade=%" PRIu64 "\n", rep.st.gaps_detected[1]);
  printf("filled=%" PRIu64 "\n", rep.st.outcomes[0][1] + rep.st.outcomes[1][1]);
  printf("exchange_empty=%" PRIu64 "\n",
         rep.st.outcomes[0][2] + rep.st.outcomes[1][2]);
  printf("failed=%" PRIu64 "\n", rep.st.outcomes[0][3] + rep.st.outcomes[1][3]);
  printf("mismatches=%" PRIu64 "\n", rep.st.mismatches);
  printf("ledger_errors=%" PRIu64 "\n", rep.st.ledger_errors);
  printf("sent=%" PRIu64 "\n", lim.stats.sent);
  printf("status_429=%" PRIu64 "\n", lim.stats.status_429);
  printf("status_418=%" PRIu64 "\n", lim.stats.status_418);
  printf("status_5xx=%" PRIu64 "\n", lim.stats.status_5xx);
  printf("retries=%" PRIu64 "\n", lim.stats.retries);
  printf("weight_spent=%" PRIu64 "\n", lim.budget.spent_total);
  printf("effective_limit=%" PRId64 "\n", weight_effective_limit(&lim.budget));
  printf("live_trades=%" PRIu64 "\n", live_trades);
  printf("live_klines=%" PRIu64 "\n", live_klines);
  printf("reconnects=%" PRIu64 "\n", reconnects);
  printf("live_refused=%" PRIu64 "\n", live_refused);
  printf("store_waits=%" PRIu64 "\n", rep.st.store_full);
  printf("timed_out=%d\n", timed_out);
  rv = uv_loop_close(&loop);
  printf("loop_close=%d\n", rv);
  return rv == 0 && !timed_out ? 0 : 1;
}
