/*
 * depth.c: the order-book manager (see depth.h).
 *
 * State kept: one struct depth_book per active symbol in a strmap (the
 * verified book, its one limiter request, the E of the last event), the
 * counters of books already dropped, one REST depth parser, and scratch
 * arrays for the top levels and the JSON of depth_snapshots rows, all
 * allocated once at init so that an update costs no allocation here (the
 * redis sink builds each message once into its own scratch buffer).
 *
 * Requests. A book owes an answer (book_on_snapshot or
 * book_on_snapshot_failed) for every BOOK_ACT_REQUEST_SNAPSHOT. Each book
 * has at most one limiter request out (req_out). If the book asks again
 * while one is out (it was reset by a reconnect, then a diff came), no
 * second request is made: the one out answers both, and the book checks it
 * against its new buffer (a snapshot older than the first buffered event is
 * refetched: BOOK_RESYNC_SNAPSHOT_TOO_OLD). An answer that comes while the
 * book owes nothing is handed over anyway; the book ignores it (counted as
 * snapshots_ignored) or, if it buffered something, uses it. A dropped book
 * cancels its request and is freed in the request's callback.
 *
 * Publishing: every BOOK_ACT_PUBLISH publishes the top depth_levels per
 * side with the E of the last event received; BOOK_ACT_RESYNCING publishes
 * one "resyncing" message with empty sides and last_update_id 0.
 *
 * depth_snapshots rows carry the wall-clock time at which the row was taken
 * (not the book's last event time: an idle book still gets a row per
 * interval, and the primary key (symbol, timestamp) never merges two).
 */
#include "market/depth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

#define DEPTH_MAX_BOOKS 65536
#define DEPTH_ROW_JSON_MAX (1u << 20)

struct depth_book {
  struct depth *d;
  struct book b;
  struct limiter_req req;
  int req_out;    /* a limiter request is queued or in flight */
  int owed;       /* the book waits for an answer (no limiter: test hook) */
  int gone;       /* dropped: freed when the request answers */
  int gen;        /* depth_set_symbols generation */
  int64_t last_e; /* E of the last event received */
};

static const char *const reason_names[BOOK_RESYNC__COUNT] = {
    "gap",   "crossed", "snapshot_too_old", "buffer_overflow",
    "reset", "invalid", "shallow",          "nomem"};

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void maybe_closed(struct depth *d) {
  void (*cb)(struct depth *) = d->close_cb;
  if (d->closing != 1 || d->timer_open || d->gone_waiting)
    return;
  d->closing = 2; /* closed */
  d->close_cb = NULL;
  if (d->rp_ready)
    rest_parse_free(&d->rp);
  d->rp_ready = 0;
  strmap_free(&d->books);
  free(d->top_bids);
  free(d->top_asks);
  d->top_bids = d->top_asks = NULL;
  buf_free(&d->bids_json);
  buf_free(&d->asks_json);
  if (cb)
    cb(d);
}

static void add_stats(struct book_stats *to, const struct book_stats *s) {
  to->events_applied += s->events_applied;
  to->events_dropped += s->events_dropped;
  to->events_stale += s->events_stale;
  to->events_buffered += s->events_buffered;
  to->snapshots_applied += s->snapshots_applied;
  to->snapshots_ignored += s->snapshots_ignored;
  to->snapshots_failed += s->snapshots_failed;
  for (int i = 0; i < BOOK_RESYNC__COUNT; i++)
    to->resyncs[i] += s->resyncs[i];
}

static void book_destroy(struct depth_book *db) {
  book_free(&db->b);
  limiter_req_free(&db->req);
  free(db);
}

static void publish_resyncing(struct depth *d, struct depth_book *db) {
  struct sink_depth sd;
  d->stats.resyncing_published++;
  if (!d->redis)
    return;
  memset(&sd, 0, sizeof sd);
  memcpy(sd.symbol, db->b.symbol, sizeof sd.symbol);
  sd.event_time = db->last_e;
  sd.synced = 0;
  if (redis_sink_publish_depth(d->redis, &sd) < 0)
    d->stats.publish_errors++;
}

static void publish_top(struct depth *d, struct depth_book *db) {
  struct sink_depth sd;
  size_t nb = 0, na = 0;
  book_top(&db->b, (size_t)d->opts.depth_levels, d->top_bids, &nb, d->top_asks,
           &na);
  memset(&sd, 0, sizeof sd);
  memcpy(sd.symbol, db->b.symbol, sizeof sd.symbol);
  sd.event_time = db->last_e;
  sd.last_update_id = book_last_update_id(&db->b);
  sd.synced = book_state(&db->b) == BOOK_SYNCED;
  sd.bids = d->top_bids;
  sd.n_bids = nb;
  sd.asks = d->top_asks;
  sd.n_asks = na;
  if (!sd.synced)
    return; /* never present a book that is not synced */
  if (!d->redis) {
    d->stats.publishes++;
    return;
  }
  if (redis_sink_publish_depth(d->redis, &sd) < 0)
    d->stats.publish_errors++;
  else
    d->stats.publishes++;
}

static void snapshot_cb(struct limiter_req *req, int result);

static void request_snapshot(struct depth *d, struct depth_book *db) {
  int rc;
  if (db->req_out || db->owed)
    return; /* the answer out serves this request too */
  d->stats.snapshots_requested++;
  if (!d->lim) {
    db->owed = 1; /* depth_snapshot_arrived() answers */
    return;
  }
  db->req.data = db;
  db->req.prio = LIMITER_BOOK;
  db->req.weight = db->b.req_weight;
  db->req.cb = snapshot_cb;
  snprintf(db->req.path, sizeof db->req.path, "/api/v3/depth");
  snprintf(db->req.query, sizeof db->req.query, "symbol=%s&limit=%d",
           db->b.symbol, db->b.req_limit);
  rc = limiter_submit(d->lim, &db->req);
  if (rc < 0) {
    int act;
    d->stats.snapshots_failed++;
    log_limited(BL_LOG_WARN, "depth", "%s: snapshot request refused: %s",
                db->b.symbol, bl_strerror(rc));
    act = book_on_snapshot_failed(&db->b);
    (void)act; /* never asks again by itself: the next diff does */
    return;
  }
  db->req_out = 1;
}

static void act_on(struct depth *d, struct depth_book *db, int act) {
  if (act < 0)
    return;
  if (act & BOOK_ACT_RESYNCING)
    publish_resyncing(d, db);
  if (act & BOOK_ACT_REQUEST_SNAPSHOT)
    request_snapshot(d, db);
  if (act & BOOK_ACT_PUBLISH)
    publish_top(d, db);
}

/* One answer to the book's snapshot request. */
static void answer(struct depth *d, struct depth_book *db, int result,
                   const char *body, size_t len) {
  int rc = result, act;
  if (rc == 0) {
    rc = rest_parse_body(&d->rp, REST_DEPTH, NULL, body ? body : "", len);
    if (rc < 0)
      log_limited(BL_LOG_WARN, "depth", "%s: bad snapshot body: %s %s",
                  db->b.symbol, bl_strerror(rc), d->rp.errstr);
  }
  if (rc == 0) {
    d->stats.snapshots_ok++;
    act = book_on_snapshot(&db->b, d->rp.depth.last_update_id, d->rp.depth.bids,
                           d->rp.depth.n_bids, d->rp.depth.asks,
                           d->rp.depth.n_asks);
  } else {
    d->stats.snapshots_failed++;
    if (rc != BL_ECANCELED)
      log_limited(BL_LOG_WARN, "depth", "%s: snapshot failed: %s", db->b.symbol,
                  bl_strerror(rc));
    act = book_on_snapshot_failed(&db->b);
  }
  act_on(d, db, act);
}

static void snapshot_cb(struct limiter_req *req, int result) {
  struct depth_book *db = req->data;
  struct depth *d = db->d;
  db->req_out = 0;
  if (db->gone) {
    d->gone_waiting--;
    book_destroy(db);
    maybe_closed(d);
    return;
  }
  if (result == 0 && (req->http.status < 200 || req->http.status > 299))
    result = BL_EHTTP;
  answer(d, db, result, req->http.body.data, req->http.body.len);
}

int depth_snapshot_arrived(struct depth *d, const char *symbol, int result,
                           const char *body, size_t len) {
  struct depth_book *db = strmap_get(&d->books, symbol);
  if (!db)
    return BL_ENOTFOUND;
  if (db->req_out)
    return BL_ESTATE;
  db->owed = 0;
  answer(d, db, result, body, len);
  return 0;
}

int depth_init(uv_loop_t *loop, struct depth *d, const struct depth_opts *opts,
               struct limiter *lim, struct redis_sink *redis,
               struct store *store) {
  int rc;
  if (!loop || !d || !opts || opts->depth_levels < 1 ||
      opts->depth_levels > BOOK_LIMIT_MAX || opts->snapshot_limit < 0 ||
      opts->snapshot_limit > BOOK_LIMIT_MAX || opts->snapshot_interval_s < 0)
    return BL_EINVAL;
  memset(d, 0, sizeof *d);
  d->loop = loop;
  d->opts = *opts;
  d->lim = lim;
  d->redis = redis;
  d->store = store;
  d->req_limit = book_snapshot_limit(opts->depth_levels, opts->snapshot_limit,
                                     &d->req_weight);
  strmap_init(&d->books, DEPTH_MAX_BOOKS);
  buf_init(&d->bids_json, DEPTH_ROW_JSON_MAX);
  buf_init(&d->asks_json, DEPTH_ROW_JSON_MAX);
  d->top_bids = calloc((size_t)opts->depth_levels, sizeof *d->top_bids);
  d->top_asks = calloc((size_t)opts->depth_levels, sizeof *d->top_asks);
  if (!d->top_bids || !d->top_asks) {
    rc = BL_ENOMEM;
    goto fail;
  }
  rc = rest_parse_init(&d->rp, NULL);
  if (rc < 0)
    goto fail;
  d->rp_ready = 1;
  rc = uv_timer_init(loop, &d->timer);
  if (rc < 0)
    goto fail;
  d->timer.data = d;
  d->timer_open = 1;
  return 0;
fail:
  if (d->rp_ready)
    rest_parse_free(&d->rp);
  free(d->top_bids);
  free(d->top_asks);
  buf_free(&d->bids_json);
  buf_free(&d->asks_json);
  strmap_free(&d->books);
  memset(d, 0, sizeof *d);
  return rc;
}

static void timer_cb(uv_timer_t *t) {
  struct depth *d = t->data;
  depth_store_snapshots(d, wall_ms());
}

static void drop_book(struct depth *d, struct depth_book *db) {
  strmap_del(&d->books, db->b.symbol);
  add_stats(&d->gone, &db->b.stats);
  d->stats.books_dropped++;
  if (db->req_out) {
    db->gone = 1;
    d->gone_waiting++;
    limiter_cancel(&db->req);
    return;
  }
  book_destroy(db);
}

static int add_book(struct depth *d, const struct depth_symbol *s, int gen) {
  struct depth_book *db;
  int scale = 8, rc;
  if (s->tick_size && s->tick_size[0]) {
    scale = book_scale_from_tick(s->tick_size);
    if (scale < 0) {
      log_warn("depth", "%s: tickSize %s unusable, price scale 8", s->symbol,
               s->tick_size);
      scale = 8;
    }
  }
  db = calloc(1, sizeof *db);
  if (!db)
    return BL_ENOMEM;
  db->d = d;
  db->gen = gen;
  limiter_req_init(&db->req);
  rc = book_init(&db->b, s->symbol, scale, d->opts.depth_levels);
  if (rc == 0)
    rc = book_set_limits(&db->b, d->opts.snapshot_limit, 0, 0);
  if (rc == 0)
    rc = strmap_put(&d->books, db->b.symbol, db);
  if (rc < 0) {
    book_destroy(db);
    return rc;
  }
  return 0;
}

int depth_set_symbols(struct depth *d, const struct depth_symbol *syms, int n) {
  struct depth_book **victims = NULL;
  size_t it = 0, nv = 0;
  const char *key;
  void *val;
  int gen, rc = 0;

  if (d->closing)
    return BL_ESTATE;
  if (n < 0 || (n > 0 && !syms))
    return BL_EINVAL;
  gen = ++d->gen;
  for (int i = 0; i < n; i++) {
    struct depth_book *db;
    if (!syms[i].symbol || !syms[i].symbol[0] ||
        strlen(syms[i].symbol) >= EV_SYMBOL_MAX)
      continue;
    db = strmap_get(&d->books, syms[i].symbol);
    if (db) {
      db->gen = gen;
      continue;
    }
    rc = add_book(d, &syms[i], gen);
    if (rc < 0) {
      log_error("depth", "%s: no book: %s", syms[i].symbol, bl_strerror(rc));
      break;
    }
  }
  if (d->books.count) {
    victims = malloc(d->books.count * sizeof *victims);
    if (!victims)
      return BL_ENOMEM;
  }
  while (strmap_next(&d->books, &it, &key, &val)) {
    struct depth_book *db = val;
    if (db->gen != gen && rc == 0)
      victims[nv++] = db;
  }
  for (size_t i = 0; i < nv; i++)
    drop_book(d, victims[i]);
  free(victims);
  if (d->opts.snapshot_interval_s > 0 && d->timer_open &&
      !uv_is_active((uv_handle_t *)&d->timer)) {
    uint64_t ms = (uint64_t)d->opts.snapshot_interval_s * 1000;
    uv_timer_start(&d->timer, timer_cb, ms, ms);
  }
  return rc;
}

void depth_on_event(struct depth *d, const struct ev_depth *ev) {
  struct depth_book *db;
  int act;
  if (d->closing)
    return;
  db = strmap_get(&d->books, ev->symbol);
  if (!db) {
    d->stats.events_unknown++;
    return;
  }
  db->last_e = ev->event_time;
  act = book_on_diff(&db->b, ev);
  act_on(d, db, act);
}

void depth_on_disconnect(struct depth *d, const char *const *symbols, int n) {
  for (int i = 0; i < n; i++) {
    struct depth_book *db = strmap_get(&d->books, symbols[i]);
    if (db)
      act_on(d, db, book_reset(&db->b));
  }
}

/* Appends [["p","q"],...] to |out|. */
static int levels_json(struct buf *out, const struct ev_level *lv, size_t n) {
  int rc = buf_append_char(out, '[');
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = buf_printf(out, "%s[\"%s\",\"%s\"]", i ? "," : "", lv[i].price,
                    lv[i].qty);
  if (rc == 0)
    rc = buf_append_char(out, ']');
  return rc;
}

int depth_store_snapshots(struct depth *d, int64_t now_ms) {
  size_t it = 0;
  const char *key;
  void *val;
  int rows = 0;
  while (strmap_next(&d->books, &it, &key, &val)) {
    struct depth_book *db = val;
    size_t nb = 0, na = 0;
    int rc;
    if (book_state(&db->b) != BOOK_SYNCED)
      continue;
    book_top(&db->b, (size_t)d->opts.depth_levels, d->top_bids, &nb,
             d->top_asks, &na);
    buf_reset(&d->bids_json);
    buf_reset(&d->asks_json);
    rc = levels_json(&d->bids_json, d->top_bids, nb);
    if (rc == 0)
      rc = levels_json(&d->asks_json, d->top_asks, na);
    if (rc == 0)
      rc = buf_append_char(&d->bids_json, '\0');
    if (rc == 0)
      rc = buf_append_char(&d->asks_json, '\0');
    if (rc == 0 && d->store)
      rc = store_depth(d->store, db->b.symbol, now_ms,
                       book_last_update_id(&db->b), d->bids_json.data,
                       d->asks_json.data);
    if (rc < 0) {
      d->stats.rows_refused++;
      log_limited(BL_LOG_WARN, "depth", "%s: depth_snapshots row refused: %s",
                  db->b.symbol, bl_strerror(rc));
      continue;
    }
    d->stats.rows_stored++;
    rows++;
  }
  return rows;
}

const struct book *depth_book(const struct depth *d, const char *symbol) {
  struct depth_book *db = strmap_get(&d->books, symbol);
  return db ? &db->b : NULL;
}

void depth_counts(const struct depth *d, int *synced, int *total) {
  size_t it = 0;
  const char *key;
  void *val;
  int s = 0, t = 0;
  while (strmap_next(&d->books, &it, &key, &val)) {
    struct depth_book *db = val;
    t++;
    if (book_state(&db->b) == BOOK_SYNCED)
      s++;
  }
  if (synced)
    *synced = s;
  if (total)
    *total = t;
}

void depth_collect(struct buf *out, void *arg) {
  const struct depth *d = arg;
  struct book_stats sum = d->gone;
  uint64_t by_state[3] = {0, 0, 0};
  static const char *const state_names[3] = {"buffering", "snapshot_pending",
                                             "synced"};
  size_t it = 0;
  const char *key;
  void *val;
  char lab[64];

  while (strmap_next(&d->books, &it, &key, &val)) {
    struct depth_book *db = val;
    enum book_state st = book_state(&db->b);
    if ((int)st >= 0 && (int)st < 3)
      by_state[st]++;
    add_stats(&sum, &db->b.stats);
  }
  metrics_family(out, "binance_live_depth_books", "gauge",
                 "Order books by state.");
  for (int i = 0; i < 3; i++) {
    snprintf(lab, sizeof lab, "state=\"%s\"", state_names[i]);
    metrics_sample_u64(out, "binance_live_depth_books", lab, by_state[i]);
  }
  metrics_family(out, "binance_live_depth_resyncs_total", "counter",
                 "Order book resyncs by reason.");
  for (int i = 0; i < BOOK_RESYNC__COUNT; i++) {
    snprintf(lab, sizeof lab, "reason=\"%s\"", reason_names[i]);
    metrics_sample_u64(out, "binance_live_depth_resyncs_total", lab,
                       sum.resyncs[i]);
  }
  metrics_family(out, "binance_live_depth_snapshots_total", "counter",
                 "REST depth snapshots by outcome.");
  metrics_sample_u64(out, "binance_live_depth_snapshots_total",
                     "outcome=\"requested\"", d->stats.snapshots_requested);
  metrics_sample_u64(out, "binance_live_depth_snapshots_total",
                     "outcome=\"received\"", d->stats.snapshots_ok);
  metrics_sample_u64(out, "binance_live_depth_snapshots_total",
                     "outcome=\"failed\"", d->stats.snapshots_failed);
  metrics_sample_u64(out, "binance_live_depth_snapshots_total",
                     "outcome=\"applied\"", sum.snapshots_applied);
  metrics_sample_u64(out, "binance_live_depth_snapshots_total",
                     "outcome=\"ignored\"", sum.snapshots_ignored);
  metrics_family(out, "binance_live_depth_events_total", "counter",
                 "Diff-depth events by decision.");
  metrics_sample_u64(out, "binance_live_depth_events_total",
                     "decision=\"applied\"", sum.events_applied);
  metrics_sample_u64(out, "binance_live_depth_events_total",
                     "decision=\"dropped\"", sum.events_dropped);
  metrics_sample_u64(out, "binance_live_depth_events_total",
                     "decision=\"stale\"", sum.events_stale);
  metrics_sample_u64(out, "binance_live_depth_events_total",
                     "decision=\"buffered\"", sum.events_buffered);
  metrics_sample_u64(out, "binance_live_depth_events_total",
                     "decision=\"unknown_symbol\"", d->stats.events_unknown);
  metrics_family(out, "binance_live_depth_publishes_total", "counter",
                 "Depth messages published by book state.");
  metrics_sample_u64(out, "binance_live_depth_publishes_total",
                     "book_state=\"synced\"", d->stats.publishes);
  metrics_sample_u64(out, "binance_live_depth_publishes_total",
                     "book_state=\"resyncing\"", d->stats.resyncing_published);
  metrics_family(out, "binance_live_depth_publish_errors_total", "counter",
                 "Depth messages Redis did not take.");
  metrics_sample_u64(out, "binance_live_depth_publish_errors_total", NULL,
                     d->stats.publish_errors);
  metrics_family(out, "binance_live_depth_snapshot_rows_total", "counter",
                 "depth_snapshots rows by outcome.");
  metrics_sample_u64(out, "binance_live_depth_snapshot_rows_total",
                     "outcome=\"queued\"", d->stats.rows_stored);
  metrics_sample_u64(out, "binance_live_depth_snapshot_rows_total",
                     "outcome=\"refused\"", d->stats.rows_refused);
}

static void timer_closed(uv_handle_t *h) {
  struct depth *d = h->data;
  d->timer_open = 0;
  maybe_closed(d);
}

void depth_close(struct depth *d, void (*cb)(struct depth *d)) {
  size_t it;
  const char *key;
  void *val;
  if (d->closing)
    return;
  d->closing = 1;
  d->close_cb = cb;
  for (it = 0; strmap_next(&d->books, &it, &key, &val); it = 0)
    drop_book(d, val);
  if (d->timer_open) {
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, timer_closed);
  } else {
    maybe_closed(d);
  }
}
