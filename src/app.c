/*
 * app.c: builds the collector's modules from the configuration, runs the
 * loop, and owns the start-up and shutdown order.
 *
 * Start-up: signals, TLS, the REST client and scheduler, PostgreSQL (after
 * the migrations, retried until it answers), the store, the Redis sink,
 * the symbol manager (the bootstrap list is collected at once; the table
 * refines it), the stream manager, the health/metrics endpoint. Nothing
 * waits for PostgreSQL or Redis: rows queue (bounded) and publishes are
 * counted as dropped until they are there.
 *
 * Shutdown (SIGINT/SIGTERM): stop reading (streams closed with 1000), flush
 * the store and wait for PostgreSQL (at most 10 s), flush Redis, close the
 * rest, and exit 0 with uv_loop_close() == 0. A second signal exits at once.
 */
#include "app.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "binance/limiter.h"
#include "binance/streams.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "market/depth.h"
#include "market/repair.h"
#include "market/symbols.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/httpd.h"
#include "pipeline.h"
#include "sink/migrate.h"
#include "sink/pg.h"
#include "sink/redis.h"
#include "sink/store.h"
#include "version.h"

/* The schema directory: $BINANCE_LIVE_SCHEMA_DIR, else ./schema, else the
 * installed copy (the container image puts it there). */
#define APP_SCHEMA_DIR_INSTALLED "/usr/share/binance-live/schema"

static const char *app_schema_dir(void) {
  const char *env = getenv("BINANCE_LIVE_SCHEMA_DIR");
  struct stat st;
  if (env && *env)
    return env;
  if (stat("schema", &st) != 0 && stat(APP_SCHEMA_DIR_INSTALLED, &st) == 0 &&
      S_ISDIR(st.st_mode))
    return APP_SCHEMA_DIR_INSTALLED;
  return "schema";
}

/* The PostgreSQL coordinates of the configuration, for pg and migrate. */
static void app_pgconn_opts(const struct config *cfg, struct pgconn_opts *o,
                            const char *application_name) {
  memset(o, 0, sizeof *o);
  o->host = cfg->database.host;
  o->port = cfg->database.port;
  o->user = cfg->database.user;
  o->password = cfg->database.password;
  o->dbname = cfg->database.database;
  o->sslmode = cfg->database.ssl_mode;
  o->application_name = application_name;
}

struct app_migration {
  int status;
  int done;
};

static void app_migrate_closed(struct migrate *m) {
  (void)m;
}

static void app_migrate_done(struct migrate *m, int status) {
  struct app_migration *am = m->data;
  am->status = status;
  am->done = 1;
  migrate_close(m, app_migrate_closed);
}

/* Runs the migrator to completion on a private loop (before the collector's
 * loop exists, or for --migrate). */
int app_migrate(const struct config *cfg) {
  uv_loop_t loop;
  struct migrate m;
  struct migrate_opts o;
  struct app_migration am = {0, 0};
  int rv;

  rv = uv_loop_init(&loop);
  if (rv) {
    log_error("migrate", "cannot create a loop: %s", uv_strerror(rv));
    return rv;
  }
  memset(&o, 0, sizeof(o));
  app_pgconn_opts(cfg, &o.conn, "binance-live-migrate");
  /* Up to 10 s to reach the server: refused connections (a server still
   * starting) are retried within that time. */
  o.conn.connect_timeout_ms = 10000;
  o.retry_for_ms = 10000;
  o.dir = app_schema_dir();

  rv = migrate_init(&loop, &m, &o);
  if (rv == 0) {
    m.data = &am;
    rv = migrate_start(&m, app_migrate_done);
    if (rv) {
      log_error("migrate", "%s", m.errstr);
      migrate_close(&m, app_migrate_closed);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rv == 0) {
    rv = am.done ? am.status : BL_ESTATE;
    if (rv == 0)
      log_info("migrate",
               "schema in %s is up to date: %d file(s) applied now, %d "
               "changed since applied",
               o.dir, m.n_applied, m.n_changed);
    else
      log_error("migrate", "migration failed: %s", m.errstr);
  }
  if (uv_loop_close(&loop) != 0) {
    log_error("migrate", "handles left open after the migration");
    if (rv == 0)
      rv = BL_ESTATE;
  }
  return rv;
}

/* --- the running collector ------------------------------------------------ */

#define APP_SHUTDOWN_BUDGET_MS 10000
#define APP_FRESH_MS 60000

struct app {
  uv_loop_t loop;
  const struct config *cfg;
  uint64_t started_ms;
  uv_signal_t sigint, sigterm;
  int signals;
  int stopping;
  int exit_status;
  struct tls_ctx *tls;
  struct http http;
  struct limiter lim;
  struct pg pg;
  int pg_started;
  struct store store;
  struct migrate mig;
  int migrating, migrated, mig_attempts;
  uv_timer_t mig_timer;
  struct redis_sink redis;
  struct symbols symbols;
  struct depth depth;
  int depth_on; /* binance.streams.depth */
  /* The spool's backlog while PostgreSQL is up, probed every
   * APP_SPOOL_PROBE_MS: growing means the writer is falling behind
   * (app_spool_probe). */
  uint64_t spool_probe_ms;
  uint64_t spool_probe_in, spool_probe_out; /* rows spooled, replayed */
  int spool_growing;                        /* probes in a row it grew */
  int spool_behind;
  unsigned turn_events; /* events since this loop turn began */
  struct repair repair;
  struct strmap seen_up; /* symbols whose stream connection was up once */
  struct streams streams;
  struct pipeline pl;
  struct httpd httpd;
  int httpd_up;
  struct metrics metrics;
  uv_check_t pressure; /* back-pressure, checked every loop iteration */
  uv_timer_t watchdog;
  int closing_left; /* modules whose close callback has not run */
};

static void app_stop(struct app *a, const char *why);
static double app_pressure(const struct app *a);
#define APP_PAUSE_AT 0.75
#define APP_RESUME_AT 0.40
#define APP_SPOOL_PROBE_MS 250
/* Events one loop turn may take from the exchange before reading yields
 * to the rest of the loop until the next turn (streams_yield). */
#define APP_TURN_EVENTS 300u
#define APP_SPOOL_PROBES 4

/* --- migrations in the loop ---------------------------------------------- */

static void app_db_ready(struct app *a) {
  if (!a->pg_started) {
    a->pg_started = 1;
    pg_start(&a->pg);
  }
}

static void app_mig_closed(struct migrate *m) {
  struct app *a = m->data;
  a->migrating = 0;
  if (a->migrated && !a->stopping)
    app_db_ready(a);
}

static void app_mig_retry(uv_timer_t *t);

static void app_mig_done(struct migrate *m, int status) {
  struct app *a = m->data;
  if (status == 0) {
    a->migrated = 1;
    log_info("app", "schema up to date (%d file(s) applied now)", m->n_applied);
  } else if (!a->stopping) {
    uint64_t delay = 1000;
    for (int i = 1; i < a->mig_attempts && delay < 60000; i++)
      delay *= 2;
    if (delay > 60000)
      delay = 60000;
    log_limited(BL_LOG_ERROR, "app",
                "migrations not applied (%s); rows queue meanwhile; "
                "retrying in %llu ms",
                m->errstr, (unsigned long long)delay);
    uv_timer_start(&a->mig_timer, app_mig_retry, delay, 0);
  }
  migrate_close(m, app_mig_closed);
}

static void app_mig_start(struct app *a) {
  const struct config *cfg = a->cfg;
  struct migrate_opts o;
  int rv;
  memset(&o, 0, sizeof o);
  app_pgconn_opts(cfg, &o.conn, "binance-live-migrate");
  o.conn.connect_timeout_ms = 10000;
  o.dir = app_schema_dir();
  a->mig_attempts++;
  rv = migrate_init(&a->loop, &a->mig, &o);
  if (rv) {
    log_error("app", "cannot start the migrator: %s", bl_strerror(rv));
    return;
  }
  a->mig.data = a;
  a->migrating = 1;
  rv = migrate_start(&a->mig, app_mig_done);
  if (rv) {
    log_error("app", "cannot start the migrator: %s", a->mig.errstr);
    migrate_close(&a->mig, app_mig_closed);
  }
}

static void app_mig_retry(uv_timer_t *t) {
  struct app *a = t->data;
  if (!a->stopping && !a->migrating)
    app_mig_start(a);
}

/* --- module callbacks ------------------------------------------------------
 */

static void app_pg_state(struct pg *pg, int up) {
  struct app *a = pg->data;
  if (up) {
    log_info("app", "PostgreSQL is up");
    symbols_db_up(&a->symbols);
  } else {
    log_warn("app", "PostgreSQL is down: %s; rows queue until it is back",
             pg->errstr);
  }
}

static void app_on_symbols(struct symbols *sy, const char *const *active,
                           const struct symbol_meta *const *metas, int n) {
  struct app *a = sy->data;
  if (a->stopping)
    return;
  if (a->depth_on) {
    struct depth_symbol *ds = calloc((size_t)(n ? n : 1), sizeof *ds);
    if (ds) {
      for (int i = 0; i < n; i++) {
        ds[i].symbol = active[i];
        ds[i].tick_size = metas[i] ? metas[i]->tick_size : NULL;
      }
      depth_set_symbols(&a->depth, ds, n);
      free(ds);
    }
  }
  repair_set_symbols(&a->repair, active, n);
  streams_set_symbols(&a->streams, active, n);
  redis_sink_set_active_symbols(&a->redis, active, (size_t)n);
}

static void app_on_trade(void *arg, const struct ev_trade *t) {
  repair_on_trade(arg, t);
}

static void app_on_kline(void *arg, const struct ev_kline *k) {
  repair_on_kline(arg, k);
}

static void app_on_depth(void *arg, const struct ev_depth *d) {
  depth_on_event(arg, d);
}

static void app_on_event(struct streams *s, const struct ev *ev) {
  struct app *a = s->data;
  pipeline_on_event(&a->pl, ev, s->rx_ns);
  /* One read can carry thousands of frames: look at the sinks after each
   * event, not only once per loop iteration. */
  if (!s->paused && app_pressure(a) >= APP_PAUSE_AT)
    streams_pause(s, 1);
  if (++a->turn_events >= APP_TURN_EVENTS && !s->yielded)
    streams_yield(s, 1);
}

static void app_on_conn_change(struct streams *s, struct stream_conn *c, int up,
                               int status, const char *const *symbols,
                               int n_symbols) {
  (void)s;
  (void)symbols;
  if (up)
    log_info("app", "stream connection %d up (%d symbols)", c->id, n_symbols);
  else
    log_warn("app", "stream connection %d down: %s", c->id,
             bl_strerror(status));
}

/* --- back-pressure -------------------------------------------------------- */

/* A sink that is up but behind makes the stream manager stop reading until
 * it has caught up (TCP then holds the exchange's frames), instead of
 * refusing rows or dropping publishes. A sink that is down does not:
 * waiting for it would only trade data loss for a disconnect from the
 * exchange. Checked once per loop iteration, after the I/O callbacks. */
static double app_pressure(const struct app *a) {
  double p = 0;
  if (pg_is_up(&a->pg))
    for (int t = 0; t < STORE_NTABLES; t++) {
      double f = (double)a->store.q[t].n_held / a->store.opts.max_rows;
      if (f > p)
        p = f;
    }
  /* PostgreSQL down (or not up yet at start): rows go to the spool, whose
   * write buffer fills when the disk is behind the exchange. */
  if (store_spool_fill(&a->store) > p)
    p = store_spool_fill(&a->store);
  /* PostgreSQL up and replaying a spool that still grows: reading on would
   * starve the replay (the loop only reads and spools), so wait for it. */
  if (a->spool_behind && p < 1)
    p = 1;
  if (redis_sink_is_up(&a->redis) && a->redis.max_inflight) {
    double f = (double)a->redis.inflight / a->redis.max_inflight;
    if (f > p)
      p = f;
  }
  return p;
}

/* Sets spool_behind while PostgreSQL is up and the spool's backlog (rows
 * written to it minus rows replayed) grew in each of the last
 * APP_SPOOL_PROBES probes; clears it once the backlog stops growing. A
 * replay that merely starts late does not pause reading; one that cannot
 * keep up with the exchange does. */
static void app_spool_probe(struct app *a) {
  uint64_t now = uv_now(&a->loop);
  uint64_t in = a->store.rows_spooled, out = a->store.rows_replayed;
  int grew;
  if (now - a->spool_probe_ms < APP_SPOOL_PROBE_MS)
    return;
  a->spool_probe_ms = now;
  grew = in - a->spool_probe_in > out - a->spool_probe_out;
  a->spool_probe_in = in;
  a->spool_probe_out = out;
  if (!grew || !store_spooling(&a->store) || !pg_is_up(&a->pg)) {
    a->spool_growing = 0;
    a->spool_behind = 0;
  } else if (++a->spool_growing >= APP_SPOOL_PROBES) {
    a->spool_behind = 1;
  }
}

static void app_pressure_cb(uv_check_t *h) {
  struct app *a = h->data;
  double p;
  a->turn_events = 0;
  if (a->streams.yielded)
    streams_yield(&a->streams, 0);
  app_spool_probe(a);
  p = app_pressure(a);
  if (!a->streams.paused && p >= APP_PAUSE_AT)
    streams_pause(&a->streams, 1);
  else if (a->streams.paused && p <= APP_RESUME_AT)
    streams_pause(&a->streams, 0);
}

/* --- health and metrics ----------------------------------------------------
 */

static void json_str(struct buf *b, const char *s) {
  buf_append_char(b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      buf_printf(b, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      buf_printf(b, "\\u%04x", (unsigned char)*s);
    else
      buf_append_char(b, *s);
  }
  buf_append_char(b, '"');
}

static uint64_t wall_ms(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int app_health(struct app *a, struct buf *b) {
  uint64_t now = uv_now(&a->loop);
  int pg_up = pg_is_up(&a->pg), redis_up = redis_sink_is_up(&a->redis);
  int banned = limiter_banned(&a->lim);
  int streams_ok = streams_healthy(&a->streams, APP_FRESH_MS);
  int n_symbols = symbols_count(&a->symbols);
  int64_t age = -1;
  int ok;
  if (a->pl.last_event_ms)
    age = (int64_t)(wall_ms() - a->pl.last_event_ms);
  if (n_symbols > 0 && a->streams.n_conns == 0)
    streams_ok = 0;
  ok = pg_up && redis_up && streams_ok && !banned &&
       (n_symbols == 0 || (age >= 0 && age < APP_FRESH_MS));
  buf_printf(b, "{\"status\":\"%s\",\"uptime_s\":%llu,", ok ? "ok" : "degraded",
             (unsigned long long)((now - a->started_ms) / 1000));
  buf_printf(b,
             "\"postgres\":{\"up\":%s,\"migrated\":%s,\"queued_rows\":%d,"
             "\"reconnects\":%llu,\"error\":",
             pg_up ? "true" : "false", a->migrated ? "true" : "false",
             store_pending(&a->store),
             (unsigned long long)a->pg.stats.reconnects);
  json_str(b, pg_up ? "" : a->pg.errstr);
  buf_printf(b,
             "},\"redis\":{\"up\":%s,\"published\":%llu,\"dropped\":%llu,"
             "\"error\":",
             redis_up ? "true" : "false",
             (unsigned long long)a->redis.published,
             (unsigned long long)a->redis.dropped);
  json_str(b, redis_up ? "" : a->redis.errstr);
  buf_printf(b, "},\"streams\":{\"up\":%s,\"symbols\":%d,\"connections\":[",
             streams_ok ? "true" : "false", n_symbols);
  for (int i = 0; i < a->streams.n_conns; i++) {
    const struct stream_conn *c = a->streams.conns[i];
    buf_printf(b,
               "%s{\"id\":%d,\"state\":\"%s\",\"symbols\":%d,\"frames\":%llu,"
               "\"last_frame_age_ms\":%llu,\"reconnects\":%llu}",
               i ? "," : "", c->id, stream_conn_state_name(c->state),
               c->n_symbols, (unsigned long long)c->frames,
               (unsigned long long)(c->last_frame_ms ? now - c->last_frame_ms
                                                     : now - a->started_ms),
               (unsigned long long)c->reconnects);
  }
  buf_printf(b, "]},\"newest_message_age_ms\":");
  if (age >= 0)
    buf_printf(b, "%lld", (long long)age);
  else
    buf_printf(b, "null");
  if (a->depth_on) {
    int synced, total;
    depth_counts(&a->depth, &synced, &total);
    buf_printf(b, ",\"books\":{\"synced\":%d,\"total\":%d}", synced, total);
  }
  buf_printf(b,
             ",\"rest\":{\"banned\":%s,\"weight_used_1m\":%lld,"
             "\"status_429\":%llu,\"status_418\":%llu}}\n",
             banned ? "true" : "false", (long long)limiter_weight_used(&a->lim),
             (unsigned long long)a->lim.stats.status_429,
             (unsigned long long)a->lim.stats.status_418);
  return ok;
}

static uint64_t rss_bytes(void) {
  char buf[128];
  uv_fs_t req;
  uv_file fd;
  long long pages = 0, rss = 0;
  int n;
  /* procfs answers from memory: this read never waits on a device. */
  fd = uv_fs_open(NULL, &req, "/proc/self/statm", O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0)
    return 0;
  {
    uv_buf_t ub = uv_buf_init(buf, sizeof buf - 1);
    n = uv_fs_read(NULL, &req, fd, &ub, 1, 0, NULL);
    uv_fs_req_cleanup(&req);
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  if (sscanf(buf, "%lld %lld", &pages, &rss) != 2)
    return 0;
  return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void app_collect(struct buf *out, void *arg) {
  struct app *a = arg;
  char lab[96];
  metrics_family(out, "binance_live_up", "gauge",
                 "Whether a dependency is reachable (1) or not (0).");
  metrics_sample(out, "binance_live_up", "component=\"postgres\"",
                 pg_is_up(&a->pg));
  metrics_sample(out, "binance_live_up", "component=\"redis\"",
                 redis_sink_is_up(&a->redis));
  metrics_single(out, "binance_live_process_resident_memory_bytes", "gauge",
                 "Resident set size of the collector.", (double)rss_bytes());
  metrics_single(out, "binance_live_uptime_seconds", "gauge",
                 "Seconds since the collector started.",
                 (double)(uv_now(&a->loop) - a->started_ms) / 1000);
  metrics_single(out, "binance_live_active_symbols", "gauge",
                 "Symbols being collected.",
                 (double)symbols_count(&a->symbols));
  metrics_family(out, "binance_live_stream_connections", "gauge",
                 "Stream connections, by state.");
  for (int st = SCONN_IDLE; st <= SCONN_CLOSING; st++) {
    int n = 0;
    for (int i = 0; i < a->streams.n_conns; i++)
      n += a->streams.conns[i]->state == (enum stream_conn_state)st;
    snprintf(lab, sizeof lab, "state=\"%s\"",
             stream_conn_state_name((enum stream_conn_state)st));
    metrics_sample(out, "binance_live_stream_connections", lab, n);
  }
  metrics_single(out, "binance_live_frames_total", "counter",
                 "WebSocket frames received.", (double)a->streams.stats.frames);
  metrics_family(out, "binance_live_parse_errors_total", "counter",
                 "Frames dropped as malformed, by reason.");
  for (int k = 1; k < PARSE_CLASS_COUNT; k++) {
    snprintf(lab, sizeof lab, "reason=\"%s\"", parse_class_name(k));
    metrics_sample_u64(out, "binance_live_parse_errors_total", lab,
                       a->streams.parser.n_errors[k]);
  }
  metrics_single(out, "binance_live_duplicates_total", "counter",
                 "Events dropped as duplicates (reconnect overlap, repeats).",
                 (double)a->streams.stats.duplicates);
  metrics_single(out, "binance_live_read_pauses_total", "counter",
                 "Times reading from the exchange paused for a slow sink.",
                 (double)a->streams.stats.pauses);
  metrics_single(out, "binance_live_reconnects_total", "counter",
                 "Stream connections re-established after a loss.",
                 (double)a->streams.stats.reconnects);
  metrics_single(out, "binance_live_rollovers_total", "counter",
                 "Stream connections replaced (24 h limit, serverShutdown).",
                 (double)a->streams.stats.rollovers);
  metrics_single(out, "binance_live_redis_publishes_total", "counter",
                 "Messages published to Redis (with their latest key).",
                 (double)a->redis.published);
  metrics_single(out, "binance_live_redis_drops_total", "counter",
                 "Messages not published (Redis down or behind).",
                 (double)a->redis.dropped);
  metrics_single(out, "binance_live_rest_weight_used", "gauge",
                 "REST request weight booked in the last 60 s.",
                 (double)limiter_weight_used(&a->lim));
  metrics_single(out, "binance_live_rest_weight_spent_total", "counter",
                 "REST request weight spent.",
                 (double)a->lim.budget.spent_total);
  metrics_single(out, "binance_live_rest_weight_limit", "gauge",
                 "REST weight the scheduler allows per 60 s.",
                 (double)weight_effective_limit(&a->lim.budget));
  metrics_family(out, "binance_live_rest_responses_total", "counter",
                 "REST answers that change the scheduler's behaviour.");
  metrics_sample_u64(out, "binance_live_rest_responses_total", "status=\"429\"",
                     a->lim.stats.status_429);
  metrics_sample_u64(out, "binance_live_rest_responses_total", "status=\"418\"",
                     a->lim.stats.status_418);
  metrics_sample_u64(out, "binance_live_rest_responses_total", "status=\"5xx\"",
                     a->lim.stats.status_5xx);
  metrics_single(out, "binance_live_rest_requests_total", "counter",
                 "REST requests sent.", (double)a->lim.stats.sent);
  metrics_single(out, "binance_live_rest_banned", "gauge",
                 "1 while Binance bans this IP (418).",
                 (double)limiter_banned(&a->lim));
  metrics_family(out, "binance_live_queue_depth", "gauge",
                 "Items waiting, by queue.");
  metrics_sample(out, "binance_live_queue_depth", "queue=\"pg_ops\"",
                 pg_pending(&a->pg));
  metrics_sample(out, "binance_live_queue_depth", "queue=\"rest\"",
                 a->lim.queued);
}

static int app_http(struct httpd *h, const char *path, struct buf *body,
                    const char **ctype) {
  struct app *a = h->data;
  if (!strcmp(path, "/health")) {
    *ctype = "application/json";
    return app_health(a, body) ? 200 : 503;
  }
  if (!strcmp(path, "/metrics")) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render(&a->metrics, body);
    return 200;
  }
  buf_append_str(body, "not found: try /health or /metrics\n");
  return 404;
}

/* --- shutdown ----------------------------------------------------------------
 */

static void app_closed_one(struct app *a) {
  if (--a->closing_left == 0) {
    uv_close((uv_handle_t *)&a->pressure, NULL);
    uv_close((uv_handle_t *)&a->watchdog, NULL);
    uv_close((uv_handle_t *)&a->mig_timer, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
  }
}

static void app_http_closed(struct http *h) {
  app_closed_one(h->data);
}

static void app_limiter_closed(struct limiter *lim) {
  struct app *a = lim->data;
  http_close(&a->http, app_http_closed);
}

static void app_pg_closed(struct pg *pg) {
  struct app *a = pg->data;
  log_info("app", "PostgreSQL connection closed (%llu ops written)",
           (unsigned long long)pg->stats.ops_ok);
  app_closed_one(a);
}

static void app_store_closed(struct store *st) {
  app_closed_one(st->data);
}

/* The store flushes what it holds into pg, then pg gets the rest of the
 * budget to commit it; what pg cannot commit in time (PostgreSQL down)
 * comes back to the store canceled and goes to the spool. */
static void app_close_storage(struct app *a) {
  store_close(&a->store, app_store_closed);
  pg_close(&a->pg, APP_SHUTDOWN_BUDGET_MS - 1000, app_pg_closed);
}

static void app_redis_closed(struct redis_sink *r) {
  app_closed_one(r->data);
}

/* The books are closed (their snapshot requests canceled): the rest of the
 * REST side can go. */
static void app_depth_closed(struct depth *d) {
  struct app *a = d->data;
  limiter_close(&a->lim, app_limiter_closed);
  app_close_storage(a);
  redis_sink_close(&a->redis, app_redis_closed);
}

/* Repairs are canceled and their ledger statements done: the books go
 * next (they still publish and store), then the REST side and storage. */
static void app_repair_closed(struct repair *r) {
  struct app *a = r->data;
  if (a->depth_on) {
    depth_close(&a->depth, app_depth_closed);
    return;
  }
  app_close_storage(a);
  redis_sink_close(&a->redis, app_redis_closed);
  limiter_close(&a->lim, app_limiter_closed);
}

static void app_streams_closed(struct streams *s) {
  struct app *a = s->data;
  log_info("app", "streams closed; flushing");
  /* Intake has stopped: what is queued is all there is to write. */
  repair_close(&a->repair, app_repair_closed);
}

static void app_symbols_closed(struct symbols *s) {
  app_closed_one(s->data);
}

static void app_httpd_closed(struct httpd *h) {
  app_closed_one(h->data);
}

static void app_watchdog(uv_timer_t *t) {
  (void)t;
  log_error("app", "shutdown did not finish within %d ms; exiting",
            APP_SHUTDOWN_BUDGET_MS + 2000);
  _exit(1);
}

static void app_stop(struct app *a, const char *why) {
  if (a->stopping)
    return;
  a->stopping = 1;
  log_info("app", "stopping (%s)", why);
  uv_check_stop(&a->pressure);
  uv_timer_stop(&a->mig_timer);
  uv_timer_start(&a->watchdog, app_watchdog, APP_SHUTDOWN_BUDGET_MS + 2000, 0);
  /* streams -> repair -> [depth ->] store, pg, redis, (limiter -> http);
   * symbols; httpd. Six close callbacks end it (app_closed_one). */
  a->closing_left = 6;
  symbols_close(&a->symbols, app_symbols_closed);
  if (a->httpd_up)
    httpd_close(&a->httpd, app_httpd_closed);
  else
    a->closing_left--;
  if (a->migrating)
    migrate_close(&a->mig, app_mig_closed);
  streams_close(&a->streams, app_streams_closed);
}

static void app_signal(uv_signal_t *h, int signum) {
  struct app *a = h->data;
  if (++a->signals > 1) {
    log_error("app", "second signal: exiting at once");
    _exit(1);
  }
  app_stop(a, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* --- start-up --------------------------------------------------------------
 */

static int app_start(struct app *a) {
  const struct config *cfg = a->cfg;
  char err[256];
  int rv;
  struct http_opts hopts;
  struct pg_opts popts;
  struct store_opts sopts;
  struct redis_sink_opts ropts;
  struct symbols_opts syopts;
  struct streams_config scfg;
  struct streams_callbacks scb = {app_on_event, app_on_conn_change};

  a->started_ms = uv_now(&a->loop);
  uv_signal_init(&a->loop, &a->sigint);
  uv_signal_init(&a->loop, &a->sigterm);
  a->sigint.data = a->sigterm.data = a;
  uv_signal_start(&a->sigint, app_signal, SIGINT);
  uv_signal_start(&a->sigterm, app_signal, SIGTERM);
  uv_timer_init(&a->loop, &a->watchdog);
  uv_timer_init(&a->loop, &a->mig_timer);
  a->watchdog.data = a->mig_timer.data = a;
  metrics_init(&a->metrics);

  if (!strncmp(cfg->binance.ws_url, "wss://", 6)) {
    rv = tls_ctx_new_client(&a->tls, cfg->binance.ca_file, err, sizeof err);
    if (rv) {
      log_error("app", "TLS: %s", err);
      return rv;
    }
  }

  memset(&hopts, 0, sizeof hopts);
  hopts.ca_file = cfg->binance.ca_file;
  hopts.user_agent = "binance-live/" BL_VERSION;
  if ((rv = http_init(&a->loop, &a->http, &hopts)))
    return rv;
  a->http.data = a;
  if ((rv = limiter_init(&a->loop, &a->lim, &a->http, cfg->binance.api_url,
                         cfg->binance.rest_rate_limit, cfg->sync.workers)))
    return rv;
  a->lim.data = a;

  memset(&popts, 0, sizeof popts);
  app_pgconn_opts(cfg, &popts.conn, "binance-live");
  if ((rv = pg_init(&a->loop, &a->pg, &popts)))
    return rv;
  a->pg.data = a;
  pg_set_callbacks(&a->pg, app_pg_state, NULL);
  memset(&sopts, 0, sizeof sopts);
  sopts.batch_size = cfg->database.batch_size;
  sopts.flush_interval_ms = cfg->database.flush_interval_ms;
  sopts.spool_dir = cfg->spool.dir;
  sopts.spool_max_bytes = (uint64_t)cfg->spool.max_bytes;
  sopts.copy_conn = &popts.conn; /* copied: COPY for insert-only tables */
  if ((rv = store_init(&a->loop, &a->store, &a->pg, &sopts)))
    return rv;
  a->store.data = a;

  memset(&ropts, 0, sizeof ropts);
  ropts.host = cfg->redis.host;
  ropts.port = cfg->redis.port;
  ropts.password = cfg->redis.password;
  ropts.db = cfg->redis.db;
  ropts.live_data_ttl = cfg->redis.live_data_ttl;
  ropts.key_prefix = cfg->redis.key_prefix;
  ropts.close_timeout_ms = APP_SHUTDOWN_BUDGET_MS - 1000;
  if ((rv = redis_sink_init(&a->loop, &a->redis, &ropts)))
    return rv;
  a->redis.data = a;

  pipeline_init(&a->pl);
  a->pl.store = &a->store;
  a->pl.redis = &a->redis;
  {
    struct repair_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.enabled = cfg->sync.enabled;
    ro.max_sync_hours = cfg->sync.max_sync_hours;
    ro.batch_size = cfg->sync.batch_size;
    ro.klines = cfg->binance.streams.kline;
    ro.trades = cfg->binance.streams.trade;
    for (int i = 0;
         i < cfg->binance.n_kline_intervals && i < REPAIR_MAX_INTERVALS; i++)
      ro.intervals[ro.n_intervals++] = cfg->binance.kline_intervals[i];
    if ((rv = repair_init(&a->loop, &a->repair, &ro, &a->pg, &a->lim,
                          &a->store)))
      return rv;
    a->repair.data = a;
    a->pl.on_trade = app_on_trade;
    a->pl.on_kline = app_on_kline;
    a->pl.check_arg = &a->repair;
    strmap_init(&a->seen_up, 65536);
  }
  a->depth_on = cfg->binance.streams.depth;
  if (a->depth_on) {
    struct depth_opts dopts;
    dopts.depth_levels = cfg->binance.depth_levels;
    dopts.snapshot_limit = cfg->binance.depth_snapshot_limit;
    dopts.snapshot_interval_s = cfg->binance.depth_snapshot_interval;
    if ((rv = depth_init(&a->loop, &a->depth, &dopts, &a->lim, &a->redis,
                         &a->store)))
      return rv;
    a->depth.data = a;
    a->pl.on_depth = app_on_depth;
    a->pl.depth_arg = &a->depth;
  }

  memset(&scfg, 0, sizeof scfg);
  scfg.ws_url = cfg->binance.ws_url;
  scfg.tls = a->tls;
  scfg.types.kline = cfg->binance.streams.kline;
  scfg.types.ticker = cfg->binance.streams.ticker;
  scfg.types.depth = cfg->binance.streams.depth;
  scfg.types.trade = cfg->binance.streams.trade;
  for (int i = 0; i < cfg->binance.n_kline_intervals && i < PLAN_MAX_INTERVALS;
       i++)
    scfg.types.intervals[scfg.types.n_intervals++] =
        cfg->binance.kline_intervals[i];
  scfg.max_streams_per_conn = cfg->binance.max_streams_per_connection;
  scfg.ping_interval_ms = (uint64_t)cfg->stream.ping_interval * 1000;
  scfg.reconnect_delay_ms = (uint64_t)cfg->stream.reconnect_delay * 1000;
  scfg.max_reconnect_attempts = cfg->stream.max_reconnect_attempts;
  {
    /* A test knob: connections are replaced after this many ms instead
     * of shortly before Binance's 24 h limit. */
    const char *roll = getenv("BINANCE_LIVE_ROLLOVER_MS");
    const char *rto = getenv("BINANCE_LIVE_READ_TIMEOUT_MS");
    if (roll && *roll)
      scfg.rollover_ms = strtoull(roll, NULL, 10);
    /* Likewise: how long a silent connection lives (60 s otherwise). */
    if (rto && *rto)
      scfg.read_timeout_ms = strtoull(rto, NULL, 10);
  }
  if ((rv = streams_init(&a->loop, &a->streams, &scfg, &scb)))
    return rv;
  a->streams.data = a;
  uv_check_init(&a->loop, &a->pressure);
  a->pressure.data = a;
  uv_check_start(&a->pressure, app_pressure_cb);

  memset(&syopts, 0, sizeof syopts);
  syopts.bootstrap = (const char *const *)cfg->symbols.bootstrap;
  syopts.n_bootstrap = cfg->symbols.n_bootstrap;
  if ((rv = symbols_init(&a->loop, &a->symbols, &syopts, &a->pg, &a->lim,
                         app_on_symbols)))
    return rv;
  a->symbols.data = a;

  metrics_register(&a->metrics, app_collect, a);
  metrics_register(&a->metrics, pipeline_collect, &a->pl);
  metrics_register(&a->metrics, store_collect, &a->store);
  if (a->depth_on)
    metrics_register(&a->metrics, depth_collect, &a->depth);
  metrics_register(&a->metrics, repair_collect, &a->repair);

  rv = httpd_start(&a->loop, &a->httpd, cfg->http.listen, app_http);
  if (rv) {
    log_error("app", "cannot listen on %s for /health and /metrics: %s",
              cfg->http.listen, bl_strerror(rv));
    return rv;
  }
  a->httpd.data = a;
  a->httpd_up = 1;
  log_info("app", "health and metrics on http://%s/", a->httpd.bound);

  redis_sink_start(&a->redis);
  if (cfg->database.migrate)
    app_mig_start(a);
  else
    app_db_ready(a);
  symbols_start(&a->symbols);
  log_info("app", "collecting from %s (REST %s)", cfg->binance.ws_url,
           cfg->binance.api_url);
  return 0;
}

int app_run(const struct config *cfg) {
  struct app *a = calloc(1, sizeof *a);
  int rv, status;
  if (!a)
    return 1;
  a->cfg = cfg;
  if (uv_loop_init(&a->loop)) {
    free(a);
    return 1;
  }
  rv = app_start(a);
  if (rv) {
    /* Modules may be half built: nothing is worth tearing down in order
     * when the process is about to exit with status 1. */
    log_error("app", "start-up failed: %s", bl_strerror(rv));
    return 1;
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  if (a->tls)
    tls_ctx_free(a->tls);
  strmap_free(&a->seen_up);
  status = a->exit_status;
  if (uv_loop_close(&a->loop) != 0) {
    log_error("app", "handles left open at exit");
    status = 1;
  }
  if (!status)
    log_info("app", "stopped cleanly");
  free(a);
  return status;
}
