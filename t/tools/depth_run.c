/*
 * depth_run.c: the whole depth path against the mock exchange, for
 * t/integration/depth.sh: net/http + binance/limiter + binance/streams
 * (depth streams only) + market/depth + sink/redis (+ sink/store when
 * --pg is given), wired as the collector wires them.
 *
 *   depth_run --rest http://127.0.0.1:P --ws ws://127.0.0.1:P
 *             (--symbols A,B,C | --synthetic N) [--levels 20] [--limit 1000]
 *             [--interval 10] [--workers 1] [--rate-limit 6000]
 *             [--exchange-limit N] [--pg] [--seconds S] [--metrics FILE]
 *
 * Redis from REDIS_HOST/REDIS_PORT, PostgreSQL from PGHOST/PGPORT/PGUSER/
 * PGDATABASE. Every 200 ms the metrics (depth_collect, depth_counts and the
 * limiter's counters) are written to FILE (FILE.tmp, then renamed). Runs
 * until SIGTERM/SIGINT or --seconds, then closes everything and exits 0 only
 * if uv_loop_close() succeeds. State: the modules, all static (one run).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "binance/limiter.h"
#include "binance/streams.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "market/depth.h"
#include "net/http.h"
#include "sink/pg.h"
#include "sink/redis.h"
#include "sink/store.h"

#define MAX_SYMS 2000

static uv_loop_t loop;
static struct http http;
static struct limiter lim;
static struct streams streams;
static struct depth depth;
static struct redis_sink redis;
static struct pg pg;
static struct store store;
static int use_pg;
static uv_timer_t tick, stop_timer;
static uv_signal_t sig_term, sig_int;
static const char *metrics_file;
static char *sym_names[MAX_SYMS];
static int n_syms;
static int stopping;

static void write_metrics(void) {
  struct buf out;
  char tmp[1024];
  FILE *f;
  int synced = 0, total = 0;
  if (!metrics_file)
    return;
  buf_init(&out, 4 << 20);
  depth_collect(&out, &depth);
  depth_counts(&depth, &synced, &total);
  buf_printf(&out, "depth_synced %d\ndepth_total %d\n", synced, total);
  buf_printf(&out,
             "limiter_sent %" PRIu64 "\nlimiter_ok %" PRIu64
             "\nlimiter_429 %" PRIu64 "\nlimiter_failed %" PRIu64
             "\nlimiter_queued %d\nlimiter_weight_used %" PRId64 "\n",
             lim.stats.sent, lim.stats.ok, lim.stats.status_429,
             lim.stats.failed, lim.queued, limiter_weight_used(&lim));
  buf_printf(&out, "redis_published %" PRIu64 "\nredis_dropped %" PRIu64 "\n",
             redis.published, redis.dropped);
  buf_printf(&out,
             "streams_events %" PRIu64 "\nstreams_reconnects %" PRIu64 "\n",
             streams.stats.events, streams.stats.reconnects);
  for (int i = 0; i < n_syms; i++) {
    const struct book *b = depth_book(&depth, sym_names[i]);
    const struct book_stats *st;
    if (!b)
      continue;
    st = book_stats(b);
    buf_printf(&out,
               "book %s state=%d dropped=%" PRIu64 " applied=%" PRIu64
               " snapshot=%" PRId64 " update_id=%" PRId64 "\n",
               b->symbol, (int)book_state(b), st->events_dropped,
               st->events_applied, b->snap_update_id, book_last_update_id(b));
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", metrics_file);
  f = fopen(tmp, "w");
  if (f) {
    fwrite(out.data, 1, out.len, f);
    fclose(f);
    rename(tmp, metrics_file);
  }
  buf_free(&out);
}

static void tick_cb(uv_timer_t *t) {
  (void)t;
  write_metrics();
}

static void on_event(struct streams *s, const struct ev *ev) {
  (void)s;
  if (ev->type == EV_DEPTH)
    depth_on_event(&depth, &ev->u.depth);
}

static void on_conn_change(struct streams *s, struct stream_conn *c, int up,
                           int status, const char *const *symbols, int n) {
  (void)s;
  (void)c;
  log_info("depth_run", "connection %s (%s), %d symbols", up ? "up" : "down",
           bl_strerror(status), n);
  if (!up)
    depth_on_disconnect(&depth, symbols, n);
}

static void http_closed(struct http *h) {
  (void)h;
}

static void limiter_closed(struct limiter *l) {
  (void)l;
  http_close(&http, http_closed);
}

static void depth_closed(struct depth *d) {
  (void)d;
  limiter_close(&lim, limiter_closed);
}

static void streams_closed(struct streams *s) {
  (void)s;
  depth_close(&depth, depth_closed);
}

static void store_closed(struct store *s) {
  (void)s;
  pg_close(&pg, 5000, NULL);
}

static void redis_closed(struct redis_sink *r) {
  (void)r;
}

static void stop(void) {
  if (stopping)
    return;
  stopping = 1;
  write_metrics();
  uv_close((uv_handle_t *)&tick, NULL);
  uv_close((uv_handle_t *)&stop_timer, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  streams_close(&streams, streams_closed);
  /* the depth manager publishes nothing once closing */
  redis_sink_close(&redis, redis_closed);
  if (use_pg) {
    store_flush(&store);
    store_close(&store, store_closed);
  }
}

static void sig_cb(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  stop();
}

static void stop_cb(uv_timer_t *t) {
  (void)t;
  stop();
}

static void usage(void) {
  fprintf(stderr, "usage: depth_run --rest URL --ws URL (--symbols A,B | "
                  "--synthetic N) [options]\n");
  exit(2);
}

static long num(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end)
    usage();
  return v;
}

int main(int argc, char **argv) {
  const char *rest = NULL, *ws = NULL, *symbols = NULL;
  long synthetic = 0, levels = 20, limit = 1000, interval = 10, workers = 1;
  long rate_limit = 6000, exch_limit = 0, seconds = 0;
  struct depth_opts dopts;
  struct depth_symbol *dsyms;
  struct streams_config scfg;
  struct streams_callbacks scb = {on_event, on_conn_change};
  struct redis_sink_opts ropts;
  const char *rport = getenv("REDIS_PORT");
  int rc;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--pg")) {
      use_pg = 1;
      continue;
    }
    if (!v)
      usage();
    i++;
    if (!strcmp(a, "--rest"))
      rest = v;
    else if (!strcmp(a, "--ws"))
      ws = v;
    else if (!strcmp(a, "--symbols"))
      symbols = v;
    else if (!strcmp(a, "--synthetic"))
      synthetic = num(v);
    else if (!strcmp(a, "--levels"))
      levels = num(v);
    else if (!strcmp(a, "--limit"))
      limit = num(v);
    else if (!strcmp(a, "--interval"))
      interval = num(v);
    else if (!strcmp(a, "--workers"))
      workers = num(v);
    else if (!strcmp(a, "--rate-limit"))
      rate_limit = num(v);
    else if (!strcmp(a, "--exchange-limit"))
      exch_limit = num(v);
    else if (!strcmp(a, "--seconds"))
      seconds = num(v);
    else if (!strcmp(a, "--metrics"))
      metrics_file = v;
    else
      usage();
  }
  if (!rest || !ws || (!symbols && synthetic < 1) || synthetic > MAX_SYMS)
    usage();
  if (symbols) {
    char *copy = strdup(symbols), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n_syms < MAX_SYMS;
         t = strtok_r(NULL, ",", &save))
      sym_names[n_syms++] = strdup(t);
    free(copy);
  } else {
    for (long i = 0; i < synthetic; i++) {
      char name[32];
      if (i == 0)
        snprintf(name, sizeof name, "BTCUSDT");
      else if (i == 1)
        snprintf(name, sizeof name, "ETHUSDT");
      else
        snprintf(name, sizeof name, "SYM%03ldUSDT", i - 2);
      sym_names[n_syms++] = strdup(name);
    }
  }

  log_setup(BL_LOG_INFO, BL_LOG_TEXT, "depth_run", "test");
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);

  memset(&ropts, 0, sizeof ropts);
  ropts.host = getenv("REDIS_HOST") ? getenv("REDIS_HOST") : "127.0.0.1";
  ropts.port = rport ? (int)strtol(rport, NULL, 10) : 6379;
  ropts.live_data_ttl = 600;
  ropts.key_prefix = "binance";
  if ((rc = redis_sink_init(&loop, &redis, &ropts)) < 0 ||
      (rc = redis_sink_start(&redis)) < 0) {
    fprintf(stderr, "FAIL: redis: %s\n", bl_strerror(rc));
    return 1;
  }
  if (use_pg) {
    struct pg_opts po;
    struct store_opts so = {.batch_size = 100, .flush_interval_ms = 100};
    const char *port = getenv("PGPORT");
    memset(&po, 0, sizeof po);
    po.conn.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1";
    po.conn.port = port ? (int)strtol(port, NULL, 10) : 5432;
    po.conn.user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
    po.conn.dbname =
        getenv("PGDATABASE") ? getenv("PGDATABASE") : "binance_data";
    if (pg_init(&loop, &pg, &po) || store_init(&loop, &store, &pg, &so) ||
        pg_start(&pg)) {
      fprintf(stderr, "FAIL: pg init\n");
      return 1;
    }
  }
  if ((rc = http_init(&loop, &http, NULL)) < 0 ||
      (rc = limiter_init(&loop, &lim, &http, rest, rate_limit, (int)workers)) <
          0) {
    fprintf(stderr, "FAIL: http/limiter: %s\n", bl_strerror(rc));
    return 1;
  }
  if (exch_limit > 0)
    limiter_set_exchange_limit(&lim, exch_limit);

  dopts.depth_levels = (int)levels;
  dopts.snapshot_limit = (int)limit;
  dopts.snapshot_interval_s = (int)interval;
  rc = depth_init(&loop, &depth, &dopts, &lim, &redis, use_pg ? &store : NULL);
  if (rc < 0) {
    fprintf(stderr, "FAIL: depth_init: %s\n", bl_strerror(rc));
    return 1;
  }
  dsyms = calloc((size_t)n_syms, sizeof *dsyms);
  for (int i = 0; i < n_syms; i++)
    dsyms[i].symbol = sym_names[i];
  if ((rc = depth_set_symbols(&depth, dsyms, n_syms)) < 0) {
    fprintf(stderr, "FAIL: depth_set_symbols: %s\n", bl_strerror(rc));
    return 1;
  }
  free(dsyms);

  memset(&scfg, 0, sizeof scfg);
  scfg.ws_url = ws;
  scfg.types.depth = 1;
  scfg.max_streams_per_conn = 1024;
  scfg.ping_interval_ms = 30000;
  scfg.reconnect_delay_ms = 200;
  scfg.reconnect_max_ms = 2000;
  if ((rc = streams_init(&loop, &streams, &scfg, &scb)) < 0 ||
      (rc = streams_set_symbols(&streams, (const char *const *)sym_names,
                                n_syms)) < 0) {
    fprintf(stderr, "FAIL: streams: %s\n", bl_strerror(rc));
    return 1;
  }

  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, tick_cb, 200, 200);
  uv_timer_init(&loop, &stop_timer);
  if (seconds > 0)
    uv_timer_start(&stop_timer, stop_cb, (uint64_t)seconds * 1000, 0);
  uv_signal_init(&loop, &sig_term);
  uv_signal_start(&sig_term, sig_cb, SIGTERM);
  uv_signal_init(&loop, &sig_int);
  uv_signal_start(&sig_int, sig_cb, SIGINT);

  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < n_syms; i++)
    free(sym_names[i]);
  rc = uv_loop_close(&loop);
  if (rc) {
    fprintf(stderr, "FAIL: uv_loop_close: %s\n", uv_strerror(rc));
    return 1;
  }
  printf("ok\n");
  return 0;
}
