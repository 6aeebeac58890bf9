/*
 * streams.c: the WebSocket stream manager (see streams.h).
 *
 * State: the connections (each with its symbols, its queue of unsent
 * control requests, its ws, a timer for back-off/rollover/overlap/close and
 * one for request pacing), the one parser, duplicate filter and wanted-
 * symbol set shared by all of them, a jitter generator and counters. A
 * connection struct is freed only after its ws and both timers are closed;
 * while that is under way it is marked |destroying| and out of the list
 * (n_alive still counts it, and streams_close's callback waits for it).
 *
 * Owner callbacks may call streams_set_symbols or streams_close: the state
 * of a connection is settled before it is reported, and nothing touches a
 * connection after a callback that may have destroyed it.
 */
#include "binance/streams.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define REQUEST_MAX_BYTES (64 * 1024)

static void sconn_connect(struct stream_conn *c);
static void sconn_destroy(struct stream_conn *c);

const char *stream_conn_state_name(enum stream_conn_state st) {
  switch (st) {
  case SCONN_IDLE:
    return "idle";
  case SCONN_CONNECTING:
    return "connecting";
  case SCONN_OPEN:
    return "open";
  case SCONN_BACKOFF:
    return "backoff";
  case SCONN_RETIRING:
    return "retiring";
  case SCONN_FAILED:
    return "failed";
  case SCONN_CLOSING:
    return "closing";
  }
  return "?";
}

/* --- symbol lists ------------------------------------------------------ */

static int sconn_find_symbol(const struct stream_conn *c, const char *sym) {
  for (int i = 0; i < c->n_symbols; i++)
    if (!strcmp(c->symbols[i], sym))
      return i;
  return -1;
}

static int sconn_add_symbol(struct stream_conn *c, const char *sym) {
  char *copy;
  if (c->n_symbols == c->cap_symbols) {
    int cap = c->cap_symbols ? c->cap_symbols * 2 : 8;
    char **p = realloc(c->symbols, (size_t)cap * sizeof *p);
    if (!p)
      return BL_ENOMEM;
    c->symbols = p;
    c->cap_symbols = cap;
  }
  copy = strdup(sym);
  if (!copy)
    return BL_ENOMEM;
  c->symbols[c->n_symbols++] = copy;
  return 0;
}

/* --- control requests, paced ------------------------------------------- */

static void send_pending(struct stream_conn *c);

static void req_timer_cb(uv_timer_t *t) {
  send_pending(t->data);
}

static void request_free(struct stream_request *r) {
  for (int i = 0; i < r->n; i++)
    free(r->syms[i]);
  r->n = 0;
}

static void pending_clear(struct stream_conn *c) {
  for (int i = 0; i < c->n_pending; i++)
    request_free(&c->pending[i]);
  c->n_pending = 0;
}

static void pending_pop(struct stream_conn *c) {
  request_free(&c->pending[0]);
  memmove(&c->pending[0], &c->pending[1],
          (size_t)(c->n_pending - 1) * sizeof c->pending[0]);
  c->n_pending--;
}

static void send_pending(struct stream_conn *c) {
  struct streams *s = c->owner;
  uint64_t now = uv_now(s->loop);
  struct buf b;
  int rv;
  while (c->n_pending && c->state == SCONN_OPEN) {
    struct stream_request *r = &c->pending[0];
    if (!r->n) { /* every symbol cancelled out */
      pending_pop(c);
      continue;
    }
    if (c->last_request_ms &&
        now - c->last_request_ms < STREAMS_REQUEST_SPACING_MS) {
      uv_timer_start(&c->req_timer, req_timer_cb,
                     STREAMS_REQUEST_SPACING_MS - (now - c->last_request_ms),
                     0);
      return;
    }
    buf_init(&b, REQUEST_MAX_BYTES);
    rv = plan_request(&b, r->subscribe, ++s->next_request_id,
                      (const char *const *)r->syms, r->n, &s->cfg.types);
    if (!rv)
      rv = ws_send_text(&c->ws, b.data, b.len);
    if (rv == BL_EFULL) {
      buf_free(&b);
      uv_timer_start(&c->req_timer, req_timer_cb, STREAMS_REQUEST_SPACING_MS,
                     0);
      return;
    }
    if (rv) {
      /* The server's streams and ours now differ: start over. */
      log_warn("streams", "conn %d: cannot send request: %s", c->id,
               bl_strerror(rv));
      c->resync = 1;
      ws_shutdown(&c->ws, 1000, "resubscribe");
    } else {
      log_debug("streams", "conn %d: sent %s", c->id, b.data);
    }
    buf_free(&b);
    pending_pop(c);
    c->last_request_ms = now;
  }
}

/* Removes |sym| from the queued requests of kind |subscribe|. Returns 1
 * when it was there. */
static int pending_cancel(struct stream_conn *c, int subscribe,
                          const char *sym) {
  for (int i = 0; i < c->n_pending; i++) {
    struct stream_request *r = &c->pending[i];
    if (r->subscribe != subscribe)
      continue;
    for (int k = 0; k < r->n; k++)
      if (!strcmp(r->syms[k], sym)) {
        free(r->syms[k]);
        r->syms[k] = r->syms[--r->n];
        return 1;
      }
  }
  return 0;
}

/* Queues a (UN)SUBSCRIBE for |syms| on |c|. Only a connection that is
 * connecting or open needs one: any other state builds its URL from the
 * symbol list at its next connect. Requests not yet sent are merged: a
 * symbol queued the other way cancels out (the server never saw it), the
 * rest joins a queued request of the same kind, so a burst of changes
 * costs one or two requests. */
static void queue_request(struct stream_conn *c, int subscribe,
                          const char *const *syms, int n) {
  if (!n || (c->state != SCONN_OPEN && c->state != SCONN_CONNECTING))
    return;
  if (c->resync)
    return; /* reconnecting anyway */
  for (int i = 0; i < n; i++) {
    struct stream_request *r;
    char *copy;
    if (pending_cancel(c, !subscribe, syms[i]))
      continue;
    /* Requests about different symbols commute (the same symbol queued
     * both ways has cancelled out above), so any queued request of this
     * kind with room takes it. */
    r = NULL;
    for (int k = c->n_pending - 1; k >= 0 && !r; k--)
      if (c->pending[k].subscribe == subscribe &&
          c->pending[k].n < STREAMS_REQUEST_SYMBOLS)
        r = &c->pending[k];
    if (!r) {
      if (c->n_pending == STREAMS_MAX_PENDING) {
        /* Far behind: reconnecting rebuilds the streams from the symbol
         * list, which is always right. */
        log_warn("streams", "conn %d: request queue full; reconnecting", c->id);
        c->resync = 1;
        pending_clear(c);
        if (c->state == SCONN_OPEN)
          ws_shutdown(&c->ws, 1000, "resubscribe");
        return;
      }
      r = &c->pending[c->n_pending++];
      r->subscribe = subscribe;
      r->n = 0;
    }
    copy = strdup(syms[i]);
    if (!copy) {
      c->resync = 1;
      if (c->state == SCONN_OPEN)
        ws_shutdown(&c->ws, 1000, "resubscribe");
      return;
    }
    r->syms[r->n++] = copy;
  }
  send_pending(c);
}

/* --- connection lifecycle ---------------------------------------------- */

static void list_remove(struct streams *s, struct stream_conn *c) {
  for (int i = 0; i < s->n_conns; i++)
    if (s->conns[i] == c) {
      memmove(&s->conns[i], &s->conns[i + 1],
              (size_t)(s->n_conns - i - 1) * sizeof s->conns[0]);
      s->n_conns--;
      return;
    }
}

/* Everything is released only when no connection struct is left at all:
 * one out of the list may still be waiting for its handles to close. */
static void maybe_streams_closed(struct streams *s) {
  void (*cb)(struct streams *);
  if (!s->closing || s->n_conns || s->n_alive || !s->close_cb)
    return;
  cb = s->close_cb;
  s->close_cb = NULL;
  parse_free(&s->parser);
  plan_dedupe_free(&s->dedupe);
  strmap_free(&s->wanted);
  cb(s);
}

static void sconn_free_if_done(struct stream_conn *c) {
  struct streams *s = c->owner;
  if (!c->destroying || c->handles_open || c->ws_active)
    return;
  for (int i = 0; i < c->n_symbols; i++)
    free(c->symbols[i]);
  free(c->symbols);
  pending_clear(c);
  free(c);
  s->n_alive--;
  maybe_streams_closed(s);
}

static void timer_closed(uv_handle_t *h) {
  struct stream_conn *c = h->data;
  c->handles_open--;
  sconn_free_if_done(c);
}

static void ws_released(struct ws *ws) {
  struct stream_conn *c = ws->data;
  c->ws_active = 0;
  c->ws_releasing = 0;
  if (c->destroying) {
    sconn_free_if_done(c);
    return;
  }
  if (c->state == SCONN_BACKOFF || c->state == SCONN_IDLE)
    return; /* the back-off timer reconnects */
}

static void sconn_destroy(struct stream_conn *c) {
  if (c->destroying)
    return;
  c->destroying = 1;
  c->state = SCONN_CLOSING;
  list_remove(c->owner, c);
  if (c->replacement)
    c->replacement->replaces = NULL;
  if (c->replaces)
    c->replaces->replacement = NULL;
  uv_close((uv_handle_t *)&c->timer, timer_closed);
  uv_close((uv_handle_t *)&c->req_timer, timer_closed);
  if (c->ws_active && !c->ws_releasing) {
    c->ws_releasing = 1;
    ws_close(&c->ws, ws_released);
  } else if (!c->ws_active) {
    sconn_free_if_done(c);
  }
}

/* Releases the ws of a connection that stays (back-off, failed). */
static void sconn_release_ws(struct stream_conn *c) {
  if (c->ws_active && !c->ws_releasing) {
    c->ws_releasing = 1;
    ws_close(&c->ws, ws_released);
  }
}

static struct stream_conn *sconn_new(struct streams *s) {
  struct stream_conn *c;
  if (s->n_conns == STREAMS_MAX_CONNS)
    return NULL;
  c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->owner = s;
  c->id = ++s->next_conn_id;
  uv_timer_init(s->loop, &c->timer);
  uv_timer_init(s->loop, &c->req_timer);
  c->timer.data = c;
  c->req_timer.data = c;
  c->handles_open = 2;
  s->conns[s->n_conns++] = c;
  s->n_alive++;
  return c;
}

/* 0..999, from the instance's own generator (xorshift64*), seeded per
 * instance so that collectors started together do not jitter alike. */
static uint64_t jitter_permille(struct streams *s) {
  uint64_t x = s->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng = x;
  return ((x * 2685821657736338717ull) >> 32) % 1000;
}

static uint64_t backoff_ms(struct streams *s, int attempts) {
  uint64_t ms = s->cfg.reconnect_delay_ms ? s->cfg.reconnect_delay_ms : 1000;
  uint64_t max = s->cfg.reconnect_max_ms ? s->cfg.reconnect_max_ms : 60000;
  for (int i = 1; i < attempts && ms < max; i++)
    ms *= 2;
  if (ms > max)
    ms = max;
  /* Jitter between 50 % and 100 % spreads a reconnect storm. */
  return ms / 2 + (ms / 2) * jitter_permille(s) / 1000;
}

static void reconnect_cb(uv_timer_t *t) {
  struct stream_conn *c = t->data;
  if (c->state == SCONN_BACKOFF && !c->ws_active)
    sconn_connect(c);
  else if (c->state == SCONN_BACKOFF)
    uv_timer_start(&c->timer, reconnect_cb, 50, 0);
}

static void start_rollover(struct stream_conn *old, const char *why);

static void rollover_cb(uv_timer_t *t) {
  start_rollover(t->data, "24 h limit approaching");
}

static void close_timeout_cb(uv_timer_t *t) {
  sconn_destroy(t->data);
}

/* Ends a connection politely: close 1000 and up to 3 s for the peer's
 * answer (on_ws_close then destroys it), or at once when not open. */
static void sconn_retire(struct stream_conn *c, const char *reason) {
  if (c->destroying)
    return;
  if (c->ws_active && c->ws.state == WS_OPEN &&
      ws_shutdown(&c->ws, 1000, reason) == 0) {
    c->state = SCONN_CLOSING;
    uv_timer_stop(&c->req_timer);
    uv_timer_start(&c->timer, close_timeout_cb, 3000, 0);
    return;
  }
  sconn_destroy(c);
}

static void overlap_end_cb(uv_timer_t *t) {
  struct stream_conn *old = t->data;
  log_info("streams",
           "conn %d: overlap over, closing the replaced "
           "connection",
           old->id);
  sconn_retire(old, "rollover");
}

static void report(struct stream_conn *c, int up, int status) {
  struct streams *s = c->owner;
  if (s->cb.on_conn_change)
    s->cb.on_conn_change(s, c, up, status, (const char *const *)c->symbols,
                         c->n_symbols);
}

static void on_ws_open(struct ws *ws) {
  struct stream_conn *c = ws->data;
  struct streams *s = c->owner;
  uint64_t roll = s->cfg.rollover_ms ? s->cfg.rollover_ms : 23ull * 3600 * 1000;
  c->state = SCONN_OPEN;
  c->attempts = 0;
  if (s->paused || s->yielded)
    ws_set_read_stall(&c->ws, 1);
  c->opened_at_ms = uv_now(s->loop);
  c->last_frame_ms = c->opened_at_ms;
  log_info("streams", "conn %d: open with %d symbols", c->id, c->n_symbols);
  /* Roll over a little early, with jitter so connections opened together
   * do not all roll at once. */
  roll -= roll / 50 * jitter_permille(s) / 1000;
  uv_timer_start(&c->timer, rollover_cb, roll, 0);
  if (c->replaces) {
    struct stream_conn *old = c->replaces;
    uint64_t overlap = s->cfg.overlap_ms ? s->cfg.overlap_ms : 5000;
    old->state = SCONN_RETIRING;
    uv_timer_start(&old->timer, overlap_end_cb, overlap, 0);
    old->replacement = NULL;
    c->replaces = NULL;
  }
  if (!c->n_symbols) { /* all removed while it was opening */
    sconn_retire(c, "no streams left");
    return;
  }
  report(c, 1, 0);
  if (c->destroying || c->state != SCONN_OPEN)
    return; /* the callback changed things */
  if (c->resync) {
    log_warn("streams", "conn %d: requests were lost; reconnecting", c->id);
    ws_shutdown(&c->ws, 1000, "resubscribe");
    return;
  }
  send_pending(c);
}

static void handle_event(struct stream_conn *c, struct ev *ev) {
  struct streams *s = c->owner;
  struct plan_dedupe_symbol *rec;
  const char *symbol;
  int rv;
  switch (ev->type) {
  case EV_CONTROL:
    if (ev->u.control.is_error) {
      s->stats.control_errors++;
      log_error("streams", "conn %d: request %lld refused: code %d: %s", c->id,
                (long long)ev->u.control.id, ev->u.control.code,
                ev->u.control.msg);
    }
    return;
  case EV_SERVER_SHUTDOWN:
    s->stats.server_shutdowns++;
    start_rollover(c, "serverShutdown");
    return;
  case EV_IGNORED:
  case EV_NONE:
    s->stats.ignored++;
    return;
  default:
    break;
  }
  symbol = plan_event_symbol(ev);
  rec = symbol ? strmap_get(&s->wanted, symbol) : NULL;
  if (!rec) {
    /* Unsubscribed, or carried by a connection being replaced: its
     * frames still in flight are not wanted any more. */
    s->stats.unwanted++;
    return;
  }
  rv = plan_dedupe_check_in(&s->dedupe, rec, ev);
  if (rv == 0) {
    s->stats.duplicates++;
    return;
  }
  s->stats.events++;
  if (s->cb.on_event)
    s->cb.on_event(s, ev);
}

static void on_ws_message(struct ws *ws, int binary, const char *data,
                          size_t len) {
  struct stream_conn *c = ws->data;
  struct streams *s = c->owner;
  struct ev ev;
  s->rx_ns = ws->rx_ns; /* the read it came with, not the parse's turn */
  c->frames++;
  c->last_frame_ms = uv_now(s->loop);
  s->stats.frames++;
  if (s->closing)
    return; /* nothing reaches the owner after streams_close */
  if (s->on_frame && !binary)
    s->on_frame(s, c, data, len);
  if (c->destroying)
    return;
  if (binary) {
    s->stats.binary_frames++;
    log_limited(BL_LOG_WARN, "streams",
                "conn %d: unexpected binary frame of %zu bytes dropped", c->id,
                len);
    return;
  }
  if (parse_frame(&s->parser, data, len, &ev)) {
    s->stats.parse_errors++;
    log_limited(BL_LOG_WARN, "streams", "conn %d: frame dropped (%s): %s",
                c->id, parse_class_name(s->parser.err_class), s->parser.errstr);
    return;
  }
  handle_event(c, &ev);
}

static void on_ws_close(struct ws *ws, int status, int code,
                        const char *reason) {
  struct stream_conn *c = ws->data;
  struct streams *s = c->owner;
  int was_open = c->state == SCONN_OPEN;
  int why = status ? status : BL_ECLOSED;
  uint64_t delay;
  c->last_status = status;
  if (c->destroying)
    return;
  if (s->closing || c->state == SCONN_CLOSING) {
    sconn_destroy(c);
    return;
  }
  if (c->state == SCONN_RETIRING) {
    /* Its replacement carries the symbols; nothing to report. */
    sconn_destroy(c);
    return;
  }
  log_warn("streams", "conn %d: closed (%s; close code %d %s)", c->id,
           status ? bl_strerror(status) : "clean", code, reason);
  uv_timer_stop(&c->timer);
  uv_timer_stop(&c->req_timer);
  pending_clear(c);
  c->resync = 0; /* the next connect subscribes from the symbol list */
  /* The state is settled before the owner hears of it: the callback may
   * call streams_set_symbols or streams_close. */
  if (c->replacement) {
    /* Dropped while being replaced: the replacement takes over. */
    struct stream_conn *r = c->replacement;
    r->replaces = NULL;
    c->replacement = NULL;
    sconn_destroy(c);
    if (was_open && s->cb.on_conn_change)
      s->cb.on_conn_change(s, c, 0, why, (const char *const *)r->symbols,
                           r->n_symbols);
    return;
  }
  c->attempts++;
  /* A rollover's replacement does not give up while the connection it
   * replaces still carries the data: giving up would strand its symbols. */
  if (s->cfg.max_reconnect_attempts > 0 && !c->replaces &&
      c->attempts > s->cfg.max_reconnect_attempts) {
    c->state = SCONN_FAILED;
    log_error("streams", "conn %d: giving up after %d attempts", c->id,
              c->attempts - 1);
    sconn_release_ws(c);
    if (was_open)
      report(c, 0, why);
    return;
  }
  c->state = SCONN_BACKOFF;
  c->reconnects++;
  s->stats.reconnects++;
  sconn_release_ws(c);
  delay = backoff_ms(s, c->attempts);
  log_info("streams", "conn %d: reconnecting in %llu ms (attempt %d)", c->id,
           (unsigned long long)delay, c->attempts);
  uv_timer_start(&c->timer, reconnect_cb, delay, 0);
  if (was_open)
    report(c, 0, why);
}

static void sconn_connect(struct stream_conn *c) {
  struct streams *s = c->owner;
  struct ws_callbacks cb = {on_ws_open, on_ws_message, on_ws_close, NULL};
  struct ws_options opt;
  struct buf url;
  int rv, in_url;

  memset(&opt, 0, sizeof opt);
  opt.max_message = s->cfg.max_message;
  opt.ping_interval_ms = s->cfg.ping_interval_ms;
  opt.read_timeout_ms = s->cfg.read_timeout_ms ? s->cfg.read_timeout_ms : 60000;
  opt.max_msgs_per_sec = 5;

  buf_init(&url, 64 * 1024);
  rv = plan_url(&url, s->ws_url, (const char *const *)c->symbols, c->n_symbols,
                &s->cfg.types, PLAN_URL_MAX);
  if (rv < 0) {
    log_error("streams", "conn %d: cannot build the URL", c->id);
    buf_free(&url);
    c->state = SCONN_BACKOFF;
    uv_timer_start(&c->timer, reconnect_cb, backoff_ms(s, ++c->attempts), 0);
    return;
  }
  in_url = rv;
  ws_init(s->loop, &c->ws, &cb, &opt);
  c->ws.data = c;
  c->ws_active = 1;
  c->ws_releasing = 0;
  c->state = SCONN_CONNECTING;
  rv = ws_connect(&c->ws, url.data, s->cfg.tls);
  buf_free(&url);
  if (!rv && in_url < c->n_symbols) {
    /* The rest are subscribed as soon as the connection opens, in
     * batches under the request pacing. */
    for (int k = in_url; k < c->n_symbols; k += 64) {
      int take = c->n_symbols - k < 64 ? c->n_symbols - k : 64;
      queue_request(c, 1, (const char *const *)c->symbols + k, take);
    }
  }
  if (rv) {
    log_error("streams", "conn %d: cannot connect: %s", c->id, bl_strerror(rv));
    c->state = SCONN_BACKOFF;
    sconn_release_ws(c);
    uv_timer_start(&c->timer, reconnect_cb, backoff_ms(s, ++c->attempts), 0);
  }
}

static void start_rollover(struct stream_conn *old, const char *why) {
  struct streams *s = old->owner;
  struct stream_conn *c;
  if (old->replacement || old->state != SCONN_OPEN || s->closing)
    return;
  c = sconn_new(s);
  if (!c) {
    log_error("streams", "conn %d: no room for a replacement connection",
              old->id);
    return;
  }
  log_info("streams", "conn %d: %s; opening replacement conn %d", old->id, why,
           c->id);
  s->stats.rollovers++;
  /* The symbols move to the replacement; the old connection keeps
   * delivering (duplicates are filtered) until the overlap ends. */
  c->symbols = old->symbols;
  c->n_symbols = old->n_symbols;
  c->cap_symbols = old->cap_symbols;
  old->symbols = NULL;
  old->n_symbols = old->cap_symbols = 0;
  old->replacement = c;
  c->replaces = old;
  uv_timer_stop(&old->timer);
  sconn_connect(c);
}

/* --- public ------------------------------------------------------------ */

int streams_init(uv_loop_t *loop, struct streams *s,
                 const struct streams_config *cfg,
                 const struct streams_callbacks *cb) {
  struct parse_limits limits;
  size_t n;
  int rv;
  memset(s, 0, sizeof *s);
  if (!cfg->ws_url || !*cfg->ws_url)
    return BL_EINVAL;
  s->loop = loop;
  s->cfg = *cfg;
  if (cb)
    s->cb = *cb;
  snprintf(s->ws_url, sizeof s->ws_url, "%s", cfg->ws_url);
  n = strlen(s->ws_url);
  while (n && s->ws_url[n - 1] == '/')
    s->ws_url[--n] = '\0';
  if (s->cfg.max_streams_per_conn <= 0)
    s->cfg.max_streams_per_conn = 200;
  memset(&limits, 0, sizeof limits);
  limits.max_frame = cfg->max_frame;
  rv = parse_init(&s->parser, &limits);
  if (rv)
    return rv;
  plan_dedupe_init(&s->dedupe, 65536);
  strmap_init(&s->wanted, 1u << 20);
  s->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)s << 16) ^ (uint64_t)getpid();
  if (!s->rng)
    s->rng = 0x9e3779b97f4a7c15ull;
  return 0;
}

static struct stream_conn *owner_of(struct streams *s, const char *sym) {
  for (int i = 0; i < s->n_conns; i++)
    if (s->conns[i]->state != SCONN_RETIRING &&
        s->conns[i]->state != SCONN_CLOSING &&
        sconn_find_symbol(s->conns[i], sym) >= 0)
      return s->conns[i];
  return NULL;
}

/* A symbol goes into URLs and JSON as it is: 1 to EV_SYMBOL_MAX - 1
 * bytes, no ASCII control, space or character with a meaning there
 * (UTF-8 bytes are fine; plan_url percent-encodes them). */
static int symbol_ok(const char *sym) {
  size_t len = strlen(sym);
  if (!len || len >= EV_SYMBOL_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)sym[i];
    if (ch <= ' ' || ch == 0x7f || strchr("\"\\/?#&%@+,", ch))
      return 0;
  }
  return 1;
}

int streams_set_symbols(struct streams *s, const char *const *in, int n_in) {
  int per_conn =
      plan_symbols_per_connection(&s->cfg.types, s->cfg.max_streams_per_conn);
  const char **added, **symbols;
  struct strmap want;
  int n = 0, n_added = 0, rv = 0;

  if (s->closing)
    return BL_ESTATE;
  if (n_in < 0 || (n_in && !in))
    return BL_EINVAL;

  /* Check everything before changing anything; repeated names count once.
   * The wanted set is replaced first: events of dropped symbols stop at
   * once. */
  symbols = malloc((size_t)(n_in ? n_in : 1) * sizeof *symbols);
  if (!symbols)
    return BL_ENOMEM;
  strmap_init(&want, 1u << 20);
  for (int i = 0; i < n_in && !rv; i++) {
    if (!symbol_ok(in[i])) {
      log_error("streams", "invalid symbol name of %zu bytes", strlen(in[i]));
      rv = BL_EINVAL;
    } else if (!strmap_get(&want, in[i])) {
      rv = strmap_put(&want, in[i], &s->wanted); /* record set below */
      symbols[n++] = in[i];
    }
  }
  /* Each wanted symbol's value is its duplicate-filter record, so an
   * event needs one lookup for both. A record made here for a symbol the
   * call then fails to add stays in the filter, bounded by its limit, and
   * is found again next time. */
  for (int i = 0; i < n && !rv; i++) {
    struct plan_dedupe_symbol *rec =
        plan_dedupe_symbol(&s->dedupe, symbols[i], &rv);
    if (rec)
      rv = strmap_put(&want, symbols[i], rec);
  }
  if (rv) {
    strmap_free(&want);
    free(symbols);
    return rv;
  }
  strmap_free(&s->wanted);
  s->wanted = want;

  /* Remove what is no longer wanted, one UNSUBSCRIBE per connection. */
  for (int i = 0; i < s->n_conns; i++) {
    struct stream_conn *c = s->conns[i];
    const char *gone[64];
    int n_gone = 0;
    if (c->state == SCONN_RETIRING || c->state == SCONN_CLOSING)
      continue;
    for (int j = c->n_symbols - 1; j >= 0; j--) {
      if (strmap_get(&s->wanted, c->symbols[j]))
        continue;
      log_info("streams", "conn %d: dropping %s", c->id, c->symbols[j]);
      plan_dedupe_forget_symbol(&s->dedupe, c->symbols[j]);
      if (n_gone == 64) {
        queue_request(c, 0, gone, n_gone);
        for (int k = 0; k < n_gone; k++)
          free((char *)gone[k]);
        n_gone = 0;
      }
      gone[n_gone++] = c->symbols[j];
      c->symbols[j] = NULL;
      memmove(&c->symbols[j], &c->symbols[j + 1],
              (size_t)(c->n_symbols - j - 1) * sizeof c->symbols[0]);
      c->n_symbols--;
    }
    queue_request(c, 0, gone, n_gone);
    for (int k = 0; k < n_gone; k++)
      free((char *)gone[k]);
  }
  /* Close connections left without symbols. */
  for (int i = s->n_conns - 1; i >= 0; i--) {
    struct stream_conn *c = s->conns[i];
    if (!c->n_symbols && c->state != SCONN_RETIRING &&
        c->state != SCONN_CLOSING && !c->replaces && !c->replacement)
      sconn_retire(c, "no streams left");
  }

  added = malloc((size_t)(n ? n : 1) * sizeof *added);
  if (!added) {
    free(symbols);
    return BL_ENOMEM;
  }
  for (int i = 0; i < n; i++)
    if (!owner_of(s, symbols[i]))
      added[n_added++] = symbols[i];

  /* Fill connections that have room, then open new ones. */
  for (int i = 0; i < s->n_conns && n_added; i++) {
    struct stream_conn *c = s->conns[i];
    int room, take;
    if (c->state == SCONN_RETIRING || c->state == SCONN_FAILED ||
        c->state == SCONN_CLOSING || c->replacement)
      continue; /* a connection being replaced hands its symbols on */
    room = per_conn - c->n_symbols;
    if (room <= 0)
      continue;
    take = room < n_added ? room : n_added;
    for (int k = 0; k < take && !rv; k++)
      rv = sconn_add_symbol(c, added[k]);
    queue_request(c, 1, added, take);
    memmove(added, added + take, (size_t)(n_added - take) * sizeof *added);
    n_added -= take;
  }
  while (n_added && !rv) {
    struct stream_conn *c = sconn_new(s);
    int take = per_conn < n_added ? per_conn : n_added;
    if (!c) {
      log_error("streams", "too many connections; %d symbols not collected",
                n_added);
      rv = BL_EFULL;
      break;
    }
    for (int k = 0; k < take && !rv; k++)
      rv = sconn_add_symbol(c, added[k]);
    memmove(added, added + take, (size_t)(n_added - take) * sizeof *added);
    n_added -= take;
    sconn_connect(c);
  }
  free(added);
  free(symbols);
  return rv;
}

void streams_close(struct streams *s, void (*cb)(struct streams *s)) {
  struct stream_conn *all[STREAMS_MAX_CONNS];
  int n = s->n_conns;
  if (s->closing) { /* again: only the callback changes */
    s->close_cb = cb;
    maybe_streams_closed(s);
    return;
  }
  s->closing = 1;
  s->close_cb = cb;
  memcpy(all, s->conns, (size_t)n * sizeof all[0]);
  for (int i = 0; i < n; i++)
    sconn_retire(all[i], "shutting down");
  maybe_streams_closed(s);
}

int streams_healthy(const struct streams *s, uint64_t fresh_ms) {
  uint64_t now = uv_now(s->loop);
  for (int i = 0; i < s->n_conns; i++) {
    const struct stream_conn *c = s->conns[i];
    /* a replacement still opening: the old connection carries the data */
    if (c->state == SCONN_RETIRING || c->state == SCONN_CLOSING || c->replaces)
      continue;
    if (c->state != SCONN_OPEN || now - c->last_frame_ms > fresh_ms)
      return 0;
  }
  return 1;
}

static void apply_stall(struct streams *s) {
  for (int i = 0; i < s->n_conns; i++) {
    struct stream_conn *c = s->conns[i];
    if (c->ws_active && c->ws.state == WS_OPEN)
      ws_set_read_stall(&c->ws, s->paused || s->yielded);
  }
}

void streams_pause(struct streams *s, int paused) {
  int was = s->paused || s->yielded;
  if (s->paused == !!paused)
    return;
  s->paused = !!paused;
  s->stats.pauses += (uint64_t)s->paused;
  if (was != (s->paused || s->yielded))
    apply_stall(s);
}

void streams_yield(struct streams *s, int on) {
  int was = s->paused || s->yielded;
  s->yielded = !!on;
  if (was != (s->paused || s->yielded))
    apply_stall(s);
}
