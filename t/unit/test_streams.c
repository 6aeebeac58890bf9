/*
 * test_streams.c: binance/streams against an in-process WebSocket server
 * (net/ws server side) in the same libuv loop, where timing and faults are
 * under the test's control: connection packing and URL limits, events
 * parsed once with duplicates and malformed frames dropped, batched and
 * paced (UN)SUBSCRIBE, reconnect back-off with jitter and giving up,
 * rollover and serverShutdown without loss, a drop during a rollover,
 * pings, reentrant calls from the callbacks, health and a clean close.
 *
 * State: one fixture per test (loop, listener, server peers, the streams
 * under test and what its callbacks saw); nothing global but the fixture
 * pointer the server's timers reach through handle->data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "binance/streams.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "net/conn.h"
#include "net/ws.h"

#define MAXP 64
#define MAXRX 512
#define MAXSUBS 2048
#define MAXSYM 8
#define MAXIDS 20000

struct fx;

/* One server-side connection. */
struct peer {
  struct fx *f;
  int idx;
  struct conn c;
  struct buf head;
  struct ws ws;
  int ws_used, open, closed, released, conn_closed, rejected;
  int close_code; /* what the client sent */
  char path[2048];
  uint64_t accepted_ms, open_ms;
  /* every frame received: messages and pongs (the 5/s rule) */
  uint64_t rx_ms[MAXRX];
  int n_rx;
  /* requests received */
  uint64_t req_ms[MAXRX];
  int n_req, n_sub, n_unsub;
  char last_req[4096];
  int pongs;
  char pong[64];
  char *subs[MAXSUBS];
  int n_subs;
};

struct fx {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_timer_t gen, pinger;
  int port;
  struct peer *p[MAXP];
  int n;
  int reject;        /* close new TCP connections at once */
  int reject_nth;    /* reject only accept number |reject_nth| (1-based) */
  int drop_first_on; /* accept number that drops peer 0 */
  int set_on;        /* accept number that calls streams_set_symbols */
  const char *set_syms[MAXSYM];
  int n_set;
  /* trade generator: every open peer subscribed gets the same ids */
  const char *gen_syms[MAXSYM];
  int n_gen;
  int64_t gen_id[MAXSYM];
  int check_health, unhealthy, health_samples;
  /* the streams under test and what its callbacks saw */
  struct streams st;
  struct streams_config cfg;
  int closed_cb;
  int ups, downs, last_down_status, last_down_nsym;
  uint64_t down_ms[64], up_ms[64];
  int64_t *ids[MAXSYM];
  int n_ids[MAXSYM];
  const char *syms[MAXSYM];
  int n_syms;
  int events;
  /* reentrancy hooks */
  int reenter_event_at; /* on this event number: set_symbols(reenter) */
  const char *reenter_syms[MAXSYM];
  int n_reenter;
  int close_in_event_at; /* on this event number: streams_close */
  int clear_on_down;     /* on a down report: set_symbols({}) */
  int events_after_reenter_of_removed;
};

/* ------------------------------------------------------------ server */

static int peer_has(const struct peer *p, const char *stream) {
  for (int i = 0; i < p->n_subs; i++)
    if (!strcmp(p->subs[i], stream))
      return 1;
  return 0;
}

static void peer_sub(struct peer *p, const char *stream, size_t len, int on) {
  char name[EV_STREAM_MAX];
  if (len >= sizeof name)
    return;
  memcpy(name, stream, len);
  name[len] = '\0';
  for (int i = 0; i < p->n_subs; i++)
    if (!strcmp(p->subs[i], name)) {
      if (!on) {
        free(p->subs[i]);
        p->subs[i] = p->subs[--p->n_subs];
      } else {
        fail_msg("stream %s subscribed twice on peer %d", name, p->idx);
      }
      return;
    }
  if (on && p->n_subs < MAXSUBS)
    p->subs[p->n_subs++] = strdup(name);
}

static void peer_ws_released(struct ws *ws) {
  struct peer *p = ws->data;
  p->released = 1;
}

static void peer_conn_closed(struct conn *c) {
  struct peer *p = c->data;
  p->conn_closed = 1;
}

static void peer_drop(struct peer *p) {
  if (p->ws_used && !p->released && !p->closed) {
    p->closed = 1;
    p->open = 0;
    ws_close(&p->ws, peer_ws_released);
  }
}

static void srv_on_open(struct ws *ws) {
  struct peer *p = ws->data;
  p->open = 1;
  p->open_ms = uv_now(ws->loop);
}

static void srv_on_message(struct ws *ws, int binary, const char *d, size_t n) {
  struct peer *p = ws->data;
  uint64_t now = uv_now(ws->loop);
  const char *q, *end;
  int sub;
  long long id = 0;
  char reply[128];
  (void)binary;
  if (p->n_rx < MAXRX)
    p->rx_ms[p->n_rx++] = now;
  sub = strstr(d, "\"method\":\"SUBSCRIBE\"") != NULL;
  if (!sub && !strstr(d, "\"method\":\"UNSUBSCRIBE\""))
    return;
  if (p->n_req < MAXRX)
    p->req_ms[p->n_req++] = now;
  if (sub)
    p->n_sub++;
  else
    p->n_unsub++;
  snprintf(p->last_req, sizeof p->last_req, "%.*s", (int)n, d);
  q = strchr(d, '[');
  end = q ? strchr(q, ']') : NULL;
  assert_non_null(end);
  for (q = q + 1; q < end;) {
    const char *a = strchr(q, '"'), *b;
    if (!a || a > end)
      break;
    b = strchr(a + 1, '"');
    peer_sub(p, a + 1, (size_t)(b - a - 1), sub);
    q = b + 1;
  }
  q = strstr(d, "\"id\":");
  if (q)
    id = strtoll(q + 5, NULL, 10);
  snprintf(reply, sizeof reply, "{\"result\":null,\"id\":%lld}", id);
  ws_send_text(ws, reply, strlen(reply));
}

static void srv_on_close(struct ws *ws, int status, int code,
                         const char *reason) {
  struct peer *p = ws->data;
  (void)status;
  (void)reason;
  p->close_code = code;
  p->open = 0;
  if (!p->closed) {
    p->closed = 1;
    ws_close(ws, peer_ws_released);
  }
}

static void srv_on_pong(struct ws *ws, const char *d, size_t n) {
  struct peer *p = ws->data;
  if (p->n_rx < MAXRX)
    p->rx_ms[p->n_rx++] = uv_now(ws->loop);
  p->pongs++;
  snprintf(p->pong, sizeof p->pong, "%.*s", (int)n, d);
}

static const struct ws_callbacks srv_cbs = {srv_on_open, srv_on_message,
                                            srv_on_close, srv_on_pong};

static void srv_on_read(struct conn *c, const char *d, size_t n) {
  struct peer *p = c->data;
  struct fx *f = p->f;
  struct ws_http_request req;
  struct ws_options opt;
  long hl;
  const char *q;
  assert_int_equal(buf_append(&p->head, d, n), 0);
  hl = ws_handshake_parse_request(p->head.data, p->head.len, &req);
  if (hl == 0)
    return;
  assert_true(hl > 0);
  snprintf(p->path, sizeof p->path, "%s", req.path);
  /* the streams in the URL */
  q = strstr(p->path, "streams=");
  if (q) {
    q += 8;
    while (*q) {
      const char *e = strchr(q, '/');
      size_t len = e ? (size_t)(e - q) : strlen(q);
      peer_sub(p, q, len, 1);
      q += len + (e ? 1 : 0);
    }
  }
  memset(&opt, 0, sizeof opt);
  ws_init(&f->loop, &p->ws, &srv_cbs, &opt);
  p->ws.data = p;
  p->ws_used = 1;
  assert_int_equal(ws_accept_upgrade(&p->ws, c, p->head.data, (size_t)hl,
                                     p->head.data + hl, p->head.len - hl),
                   0);
}

static void srv_on_error(struct conn *c, int status) {
  struct peer *p = c->data;
  (void)status;
  if (!p->ws_used && !p->conn_closed && !p->rejected) {
    p->rejected = 1;
    conn_close(c, peer_conn_closed);
  }
}

static void srv_on_connection(uv_stream_t *server, int status) {
  static const struct conn_callbacks cbs = {NULL, srv_on_read, srv_on_error,
                                            NULL};
  struct fx *f = server->data;
  struct peer *p;
  assert_int_equal(status, 0);
  assert_true(f->n < MAXP);
  p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->f = f;
  p->idx = f->n;
  p->accepted_ms = uv_now(&f->loop);
  buf_init(&p->head, 65536);
  f->p[f->n++] = p;
  conn_init(&f->loop, &p->c, &cbs, NULL);
  p->c.data = p;
  assert_int_equal(conn_accept(&p->c, server, NULL), 0);
  if (f->drop_first_on && f->n == f->drop_first_on)
    peer_drop(f->p[0]); /* before the newcomer's upgrade is answered */
  if (f->set_on && f->n == f->set_on)
    assert_int_equal(streams_set_symbols(&f->st, f->set_syms, f->n_set), 0);
  if (f->reject || f->reject_nth == f->n) {
    p->rejected = 1;
    conn_close(&p->c, peer_conn_closed);
  }
}

static void send_text(struct peer *p, const char *s) {
  assert_true(p->open);
  assert_int_equal(ws_send_text(&p->ws, s, strlen(s)), 0);
}

static void lower(char *dst, size_t cap, const char *src) {
  size_t i;
  for (i = 0; src[i] && i + 1 < cap; i++)
    dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
  dst[i] = '\0';
}

static void trade_frame(char *out, size_t cap, const char *sym, int64_t id) {
  char lo[EV_SYMBOL_MAX];
  lower(lo, sizeof lo, sym);
  snprintf(out, cap,
           "{\"stream\":\"%s@aggTrade\",\"data\":{\"e\":\"aggTrade\","
           "\"E\":%lld,\"s\":\"%s\",\"a\":%lld,\"p\":\"1.50\",\"q\":\"2\","
           "\"f\":%lld,\"l\":%lld,\"T\":%lld,\"m\":false,\"M\":true}}",
           lo, (long long)(1700000000000 + id), sym, (long long)id,
           (long long)id, (long long)id, (long long)(1700000000000 + id));
}

/* Sends trade |id| of |sym| on every open peer subscribed to it, as the
 * exchange does. */
static void broadcast_trade(struct fx *f, const char *sym, int64_t id) {
  char frame[512], lo[EV_SYMBOL_MAX], stream[EV_STREAM_MAX];
  lower(lo, sizeof lo, sym);
  snprintf(stream, sizeof stream, "%s@aggTrade", lo);
  trade_frame(frame, sizeof frame, sym, id);
  for (int i = 0; i < f->n; i++)
    if (f->p[i]->open && peer_has(f->p[i], stream))
      send_text(f->p[i], frame);
}

static void gen_cb(uv_timer_t *t) {
  struct fx *f = t->data;
  for (int i = 0; i < f->n_gen; i++)
    broadcast_trade(f, f->gen_syms[i], ++f->gen_id[i]);
  if (f->check_health) {
    f->health_samples++;
    f->unhealthy += !streams_healthy(&f->st, 1000);
  }
}

static void pinger_cb(uv_timer_t *t) {
  struct fx *f = t->data;
  for (int i = 0; i < f->n; i++)
    if (f->p[i]->open)
      ws_send_ping(&f->p[i]->ws, "srvping", 7);
}

/* ------------------------------------------------------------ client */

static int sym_index(struct fx *f, const char *sym) {
  for (int i = 0; i < f->n_syms; i++)
    if (!strcmp(f->syms[i], sym))
      return i;
  return -1;
}

static void closed_cb(struct streams *s) {
  struct fx *f = s->data;
  f->closed_cb++;
}

static void on_event(struct streams *s, const struct ev *ev) {
  struct fx *f = s->data;
  int i;
  f->events++;
  if (ev->type == EV_TRADE) {
    i = sym_index(f, ev->u.trade.symbol);
    assert_true(i >= 0);
    if (f->n_ids[i] < MAXIDS)
      f->ids[i][f->n_ids[i]++] = ev->u.trade.agg_trade_id;
    if (f->n_reenter && f->reenter_event_at < 0) {
      /* after the reentrant change: only wanted symbols arrive */
      int wanted = 0;
      for (int k = 0; k < f->n_reenter; k++)
        wanted |= !strcmp(f->reenter_syms[k], ev->u.trade.symbol);
      if (!wanted)
        f->events_after_reenter_of_removed++;
    }
  }
  if (f->reenter_event_at > 0 && f->events == f->reenter_event_at) {
    f->reenter_event_at = -1;
    assert_int_equal(streams_set_symbols(s, f->reenter_syms, f->n_reenter), 0);
  }
  if (f->close_in_event_at && f->events == f->close_in_event_at)
    streams_close(s, closed_cb);
}

static void on_conn_change(struct streams *s, struct stream_conn *c, int up,
                           int status, const char *const *symbols, int n) {
  struct fx *f = s->data;
  (void)c;
  (void)symbols;
  if (up) {
    if (f->ups < 64)
      f->up_ms[f->ups] = uv_now(&f->loop);
    f->ups++;
    return;
  }
  if (f->downs < 64)
    f->down_ms[f->downs] = uv_now(&f->loop);
  f->downs++;
  f->last_down_status = status;
  f->last_down_nsym = n;
  if (f->clear_on_down)
    assert_int_equal(streams_set_symbols(s, NULL, 0), 0);
}

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof *f);
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  static char url[64];
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_tcp_init(&f->loop, &f->listener);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sa, 0), 0);
  f->listener.data = f;
  assert_int_equal(
      uv_listen((uv_stream_t *)&f->listener, 128, srv_on_connection), 0);
  uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len);
  f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_timer_init(&f->loop, &f->gen);
  uv_timer_init(&f->loop, &f->pinger);
  f->gen.data = f->pinger.data = f;
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/", f->port);
  f->cfg.ws_url = url;
  f->cfg.types.trade = 1;
  f->cfg.max_streams_per_conn = 100;
  f->cfg.reconnect_delay_ms = 50;
  f->cfg.reconnect_max_ms = 400;
  for (int i = 0; i < MAXSYM; i++) {
    f->ids[i] = calloc(MAXIDS, sizeof(int64_t));
    assert_non_null(f->ids[i]);
  }
  return f;
}

static void fx_start(struct fx *f, const char *const *syms, int n) {
  static const struct streams_callbacks cbs = {on_event, on_conn_change};
  assert_int_equal(streams_init(&f->loop, &f->st, &f->cfg, &cbs), 0);
  f->st.data = f;
  for (int i = 0; i < n && f->n_syms < MAXSYM; i++)
    f->syms[f->n_syms++] = syms[i];
  assert_int_equal(streams_set_symbols(&f->st, syms, n), 0);
}

static void timer_noop(uv_timer_t *t) {
  (void)t;
}

static int run_until(struct fx *f, int (*done)(struct fx *), uint64_t ms) {
  uv_timer_t guard;
  uint64_t end;
  uv_update_time(&f->loop);
  end = uv_now(&f->loop) + ms;
  uv_timer_init(&f->loop, &guard);
  while (!(done && done(f)) && uv_now(&f->loop) < end) {
    uv_timer_start(&guard, timer_noop, end - uv_now(&f->loop), 0);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return done ? done(f) : 1;
}

static void run_for(struct fx *f, uint64_t ms) {
  run_until(f, NULL, ms);
}

static int n_open_conns(const struct fx *f) {
  int k = 0;
  for (int i = 0; i < f->st.n_conns; i++)
    k += f->st.conns[i]->state == SCONN_OPEN;
  return k;
}

static int all_open(struct fx *f) {
  return f->st.n_conns > 0 && n_open_conns(f) == f->st.n_conns;
}

static int is_closed(struct fx *f) {
  return f->closed_cb > 0;
}

/* Closes the streams (when the test did not), then the server, and checks
 * that every handle is gone. */
static void fx_free(struct fx *f) {
  uv_timer_stop(&f->gen);
  uv_timer_stop(&f->pinger);
  if (!f->closed_cb && !f->st.closing)
    streams_close(&f->st, closed_cb);
  assert_true(run_until(f, is_closed, 5000));
  assert_int_equal(f->closed_cb, 1);
  for (int i = 0; i < f->n; i++) {
    struct peer *p = f->p[i];
    if (p->ws_used && !p->closed) {
      p->closed = 1;
      ws_close(&p->ws, peer_ws_released);
    } else if (!p->ws_used && !p->rejected && !p->conn_closed) {
      p->rejected = 1;
      conn_close(&p->c, peer_conn_closed);
    }
  }
  uv_close((uv_handle_t *)&f->listener, NULL);
  uv_close((uv_handle_t *)&f->gen, NULL);
  uv_close((uv_handle_t *)&f->pinger, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (int i = 0; i < f->n; i++) {
    struct peer *p = f->p[i];
    assert_true(p->released || p->conn_closed);
    for (int k = 0; k < p->n_subs; k++)
      free(p->subs[k]);
    buf_free(&p->head);
    free(p);
  }
  for (int i = 0; i < MAXSYM; i++)
    free(f->ids[i]);
  free(f);
}

/* The ids delivered for symbol |i| are contiguous and each appears once. */
static void assert_contiguous(struct fx *f, int i) {
  assert_true(f->n_ids[i] > 0);
  for (int k = 1; k < f->n_ids[i]; k++)
    if (f->ids[i][k] != f->ids[i][k - 1] + 1)
      fail_msg("%s: id %lld after %lld (index %d)", f->syms[i],
               (long long)f->ids[i][k], (long long)f->ids[i][k - 1], k);
}

/* Requests on a peer at least STREAMS_REQUEST_SPACING_MS apart (a little
 * timer slack) and never more than 5 frames in any 1.1 s window (the
 * mock's sampling) counting pongs. */
static void assert_paced(const struct peer *p) {
  for (int k = 1; k < p->n_req; k++)
    if (p->req_ms[k] - p->req_ms[k - 1] < STREAMS_REQUEST_SPACING_MS - 5)
      fail_msg("peer %d: requests %d and %d %llu ms apart", p->idx, k - 1, k,
               (unsigned long long)(p->req_ms[k] - p->req_ms[k - 1]));
  for (int a = 0; a < p->n_rx; a++) {
    int in = 0;
    for (int b = a; b < p->n_rx && p->rx_ms[b] - p->rx_ms[a] <= 1100; b++)
      in++;
    if (in > 5)
      fail_msg("peer %d: %d frames within 1.1 s from frame %d", p->idx, in, a);
  }
}

/* ------------------------------------------------------------ tests */

/* 200 symbols of 9 streams with at most 200 streams a connection: 22
 * symbols each, 10 connections, every URL under PLAN_URL_MAX, the rest
 * subscribed after open, and every stream on exactly one connection with
 * all of its symbol's streams. */
static void plan_200_symbols(void **state) {
  struct fx *f = fx_new();
  static char names[200][EV_SYMBOL_MAX];
  const char *syms[200];
  int total = 0;
  (void)state;
  f->cfg.types =
      (struct plan_types){1, 1, 1, 1, {"1m", "5m", "15m", "1h", "4h", "1d"}, 6};
  f->cfg.max_streams_per_conn = 200;
  for (int i = 0; i < 200; i++) {
    snprintf(names[i], sizeof names[i], "SYMBOL%03dUSDT", i);
    syms[i] = names[i];
  }
  fx_start(f, syms, 0);
  assert_int_equal(streams_set_symbols(&f->st, syms, 200), 0);
  assert_int_equal(f->st.n_conns, 10);
  for (int i = 0; i < 10; i++)
    assert_true(f->st.conns[i]->n_symbols <= 22);
  assert_true(run_until(f, all_open, 5000));
  /* wait until the requests for the rest are through */
  for (int tries = 0; tries < 100; tries++) {
    total = 0;
    for (int i = 0; i < f->n; i++)
      total += f->p[i]->n_subs;
    if (total == 1800)
      break;
    run_for(f, 100);
  }
  assert_int_equal(f->n, 10);
  assert_int_equal(total, 1800);
  for (int i = 0; i < f->n; i++) {
    struct peer *p = f->p[i];
    assert_true(strlen(p->path) + strlen(f->cfg.ws_url) <= PLAN_URL_MAX);
    if (p->n_subs == 22 * 9)
      assert_true(p->n_sub >= 1); /* 22 x 9 streams never fit in the URL */
    assert_int_equal(p->n_subs % 9, 0);
    assert_paced(p);
    /* all streams of a symbol on this peer */
    for (int k = 0; k < p->n_subs; k++) {
      char sym[EV_SYMBOL_MAX], name[EV_STREAM_MAX];
      const char *at = strchr(p->subs[k], '@');
      snprintf(sym, sizeof sym, "%.*s", (int)(at - p->subs[k]), p->subs[k]);
      snprintf(name, sizeof name, "%s@depth@100ms", sym);
      assert_true(peer_has(p, name));
      snprintf(name, sizeof name, "%s@kline_1d", sym);
      assert_true(peer_has(p, name));
    }
  }
  assert_int_equal(f->st.stats.control_errors, 0);
  fx_free(f);
}

static int btc_has_4(struct fx *f) {
  return f->n_ids[0] >= 4;
}

/* Frames parsed once, duplicates dropped, malformed frames counted by
 * class and the connection kept. */
static void events_duplicates_malformed(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  char fr[512];
  struct peer *p;
  (void)state;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  p = f->p[0];
  assert_string_equal(p->path, "/stream?streams=btcusdt@aggTrade");
  for (int64_t id = 1; id <= 2; id++) {
    trade_frame(fr, sizeof fr, "BTCUSDT", id);
    send_text(p, fr);
  }
  send_text(p, fr); /* a repeated frame */
  send_text(p, "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":");
  send_text(p, "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\","
               "\"E\":1,\"s\":\"BTCUSDT\",\"a\":9,\"q\":\"2\",\"f\":1,"
               "\"l\":1,\"T\":1,\"m\":false}}");
  send_text(p, "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\","
               "\"E\":1,\"s\":\"BTCUSDT\",\"a\":9,\"p\":\"1.2.3\",\"q\":\"2\","
               "\"f\":1,\"l\":1,\"T\":1,\"m\":false}}");
  send_text(p, "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\","
               "\"E\":\"1\",\"s\":\"BTCUSDT\",\"a\":9,\"p\":\"1\",\"q\":\"2\","
               "\"f\":1,\"l\":1,\"T\":1,\"m\":false}}");
  ws_send_binary(&p->ws, "\x01\x02", 2);
  for (int64_t id = 3; id <= 4; id++) {
    trade_frame(fr, sizeof fr, "BTCUSDT", id);
    send_text(p, fr);
  }
  if (!run_until(f, btc_has_4, 3000))
    fail_msg("ids %d downs %d status %d perr %d", f->n_ids[0], f->downs,
             f->last_down_status, (int)f->st.stats.parse_errors);
  run_for(f, 50);
  assert_int_equal(f->n_ids[0], 4);
  assert_contiguous(f, 0);
  assert_true(f->st.stats.duplicates == 1);
  assert_true(f->st.stats.parse_errors == 4);
  assert_true(f->st.stats.binary_frames == 1);
  assert_true(f->st.parser.n_errors[PARSE_BAD_JSON] == 1);
  assert_true(f->st.parser.n_errors[PARSE_MISSING_FIELD] == 1);
  assert_true(f->st.parser.n_errors[PARSE_BAD_DECIMAL] == 1);
  assert_true(f->st.parser.n_errors[PARSE_BAD_TYPE] == 1);
  assert_int_equal(f->downs, 0);
  assert_int_equal(f->n, 1);
  assert_true(p->open);
  assert_true(streams_healthy(&f->st, 1000));
  fx_free(f);
}

static int g_dropped_lines;

static void count_sink(int level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  if (strstr(line, "frame dropped"))
    g_dropped_lines++;
}

static int errors_200(struct fx *f) {
  return f->st.stats.parse_errors >= 200;
}

/* A flood of malformed frames: all counted, a few lines logged (the first
 * test, so the per-call-site budget is fresh), the connection kept. */
static void malformed_flood_rate_limited(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  char fr[512];
  (void)state;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  log_setup(BL_LOG_WARN, 0, "test_streams", NULL);
  log_set_sink(count_sink, NULL);
  for (int i = 0; i < 200; i++)
    send_text(f->p[0], "{\"stream\":\"btcusdt@aggTrade\",\"data\":[");
  trade_frame(fr, sizeof fr, "BTCUSDT", 1);
  send_text(f->p[0], fr);
  assert_true(run_until(f, errors_200, 3000));
  run_for(f, 50);
  log_set_sink(NULL, NULL);
  log_setup(BL_LOG_ERROR, 0, "test_streams", NULL);
  assert_true(f->st.stats.parse_errors == 200);
  assert_true(g_dropped_lines >= 1 && g_dropped_lines <= BL_LOG_LIMIT_BURST);
  assert_int_equal(f->n_ids[0], 1);
  assert_int_equal(f->downs, 0);
  fx_free(f);
}

/* An oversized frame (over max_frame) is dropped as too_big and the
 * connection stays. */
static void oversized_frame(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  char fr[512];
  struct buf big;
  (void)state;
  f->cfg.max_frame = 4096;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  buf_init(&big, 1 << 20);
  buf_printf(&big, "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"pad\":\"");
  for (int i = 0; i < 10000; i++)
    buf_append(&big, "x", 1);
  buf_printf(&big, "\"}}");
  send_text(f->p[0], big.data);
  buf_free(&big);
  for (int64_t id = 1; id <= 4; id++) {
    trade_frame(fr, sizeof fr, "BTCUSDT", id);
    send_text(f->p[0], fr);
  }
  assert_true(run_until(f, btc_has_4, 3000));
  assert_true(f->st.parser.n_errors[PARSE_TOO_BIG] == 1);
  assert_int_equal(f->downs, 0);
  fx_free(f);
}

static const char *g_want[64];
static int g_n_want;

static int subs_match(struct fx *f) {
  struct peer *p = f->p[0];
  char lo[EV_SYMBOL_MAX], name[EV_STREAM_MAX];
  if (p->n_subs != g_n_want || p->n_req < 1)
    return 0;
  for (int i = 0; i < g_n_want; i++) {
    lower(lo, sizeof lo, g_want[i]);
    snprintf(name, sizeof name, "%s@aggTrade", lo);
    if (!peer_has(p, name))
      return 0;
  }
  /* every request answered and nothing queued */
  return f->st.conns[0]->n_pending == 0;
}

/* One SUBSCRIBE and one UNSUBSCRIBE for one change; many changes at once
 * stay paced (>= 250 ms, <= 5 frames a second with the pongs to a server
 * pinging every 300 ms) and end with exactly the wanted streams; a removed
 * symbol's events stop at once. */
static void subscriptions_in_step(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"};
  const char *next[] = {"AAAUSDT", "BBBUSDT", "CCCUSDT", "FFFUSDT", "GGGUSDT"};
  static char extra[12][EV_SYMBOL_MAX];
  char fr[512];
  struct peer *p;
  int before;
  (void)state;
  fx_start(f, syms, 5);
  f->syms[f->n_syms++] = "FFFUSDT";
  f->syms[f->n_syms++] = "GGGUSDT";
  assert_true(run_until(f, all_open, 3000));
  p = f->p[0];
  uv_timer_start(&f->pinger, pinger_cb, 1000, 1000);
  assert_int_equal(p->n_subs, 5);
  assert_int_equal(streams_set_symbols(&f->st, next, 5), 0);
  memcpy(g_want, next, sizeof next);
  g_n_want = 5;
  assert_true(run_until(f, subs_match, 3000));
  assert_int_equal(p->n_sub, 1);
  assert_int_equal(p->n_unsub, 1);
  assert_int_equal(f->st.n_conns, 1);
  /* DDD's frames still in flight are dropped */
  trade_frame(fr, sizeof fr, "DDDUSDT", 1);
  send_text(p, fr);
  trade_frame(fr, sizeof fr, "FFFUSDT", 1);
  send_text(p, fr);
  run_for(f, 100);
  assert_int_equal(f->n_ids[3], 0);
  assert_int_equal(f->n_ids[5], 1);
  assert_true(f->st.stats.unwanted == 1);
  /* twelve changes in one go: merged into few requests */
  before = p->n_req;
  for (int i = 0; i < 12; i++) {
    const char *set[6];
    snprintf(extra[i], sizeof extra[i], "X%02dUSDT", i);
    set[0] = "AAAUSDT";
    set[1] = extra[i];
    if (i > 0)
      set[2] = extra[i - 1];
    assert_int_equal(streams_set_symbols(&f->st, set, i > 0 ? 3 : 2), 0);
  }
  g_want[0] = "AAAUSDT";
  g_want[1] = extra[11];
  g_want[2] = extra[10];
  g_n_want = 3;
  assert_true(run_until(f, subs_match, 5000));
  assert_true(p->n_req - before <= 3);
  /* 100 alternating changes (add one, drop another) at once: one
   * SUBSCRIBE and one UNSUBSCRIBE at most after the first */
  run_for(f, 600);
  before = p->n_req;
  {
    static char alt[101][EV_SYMBOL_MAX];
    const char *set[3];
    for (int i = 0; i <= 100; i++)
      snprintf(alt[i], sizeof alt[i], "ALT%03dUSDT", i);
    for (int i = 0; i < 100; i++) {
      set[0] = "AAAUSDT";
      set[1] = alt[i];
      set[2] = alt[i + 1];
      assert_int_equal(streams_set_symbols(&f->st, set, 3), 0);
    }
    g_want[0] = "AAAUSDT";
    g_want[1] = alt[99];
    g_want[2] = alt[100];
    g_n_want = 3;
  }
  assert_true(run_until(f, subs_match, 5000));
  assert_true(p->n_req - before <= 3);
  assert_int_equal(f->downs, 0);
  run_for(f, 1500); /* pongs keep coming */
  assert_true(p->pongs >= 2);
  assert_paced(p);
  assert_true(p->open);
  assert_int_equal(f->downs, 0);
  assert_int_equal(f->st.stats.control_errors, 0);
  fx_free(f);
}

static int down_once(struct fx *f) {
  return f->downs >= 1;
}

static int n_accepts_6(struct fx *f) {
  return f->n >= 6;
}

static int up_twice(struct fx *f) {
  return f->ups >= 2;
}

/* A drop: down then up, with exponential back-off and jitter while the
 * server refuses; health false until recovered. */
static void reconnect_backoff(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  uint64_t base = 100;
  int jittered = 0;
  (void)state;
  f->cfg.reconnect_delay_ms = 100;
  f->cfg.reconnect_max_ms = 400;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  assert_int_equal(f->ups, 1);
  assert_true(streams_healthy(&f->st, 1000));
  f->reject = 1;
  peer_drop(f->p[0]);
  assert_true(run_until(f, down_once, 3000));
  assert_true(f->last_down_status < 0);
  assert_int_equal(f->last_down_nsym, 1);
  assert_false(streams_healthy(&f->st, 1000));
  assert_true(run_until(f, n_accepts_6, 5000));
  /* accept k (k >= 1) follows the previous failure after a delay in
   * [base/2, base], base doubling from 100 up to 400 */
  for (int k = 1; k < 6; k++) {
    uint64_t prev = k == 1 ? f->down_ms[0] : f->p[k - 1]->accepted_ms;
    uint64_t d = f->p[k]->accepted_ms - prev;
    if (d < base / 2 || d > base + 60)
      fail_msg("attempt %d after %llu ms, base %llu", k, (unsigned long long)d,
               (unsigned long long)base);
    if (d < base * 95 / 100)
      jittered++;
    base = base * 2 > 400 ? 400 : base * 2;
  }
  assert_true(jittered >= 1);
  assert_false(streams_healthy(&f->st, 1000));
  assert_int_equal(f->st.conns[0]->state, SCONN_BACKOFF);
  f->reject = 0;
  assert_true(run_until(f, up_twice, 3000));
  assert_int_equal(f->downs, 1); /* failed attempts are not reported */
  assert_true(streams_healthy(&f->st, 1000));
  assert_true(f->st.stats.reconnects >= 6);
  fx_free(f);
}

static int conn_failed(struct fx *f) {
  return f->st.n_conns == 1 && f->st.conns[0]->state == SCONN_FAILED;
}

/* max_reconnect_attempts = 2: after the drop, two attempts, then failed. */
static void gives_up(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  (void)state;
  f->cfg.max_reconnect_attempts = 2;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  f->reject = 1;
  peer_drop(f->p[0]);
  assert_true(run_until(f, conn_failed, 5000));
  run_for(f, 500);
  assert_int_equal(f->n, 3);
  assert_int_equal(f->downs, 1);
  assert_false(streams_healthy(&f->st, 1000));
  assert_string_equal(stream_conn_state_name(f->st.conns[0]->state), "failed");
  fx_free(f);
}

/* Rollover every ~400 ms with 150 ms overlap while trades flow with
 * consecutive ids: nothing lost, nothing twice, never reported down, old
 * connections closed with 1000. */
static void rollover_without_loss(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT", "ETHUSDT"};
  int closed1000 = 0;
  (void)state;
  f->cfg.rollover_ms = 400;
  f->cfg.overlap_ms = 150;
  f->gen_syms[0] = "BTCUSDT";
  f->gen_syms[1] = "ETHUSDT";
  f->n_gen = 2;
  f->check_health = 1;
  fx_start(f, syms, 2);
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  run_for(f, 2500);
  assert_true(f->health_samples > 500);
  assert_int_equal(f->unhealthy, 0); /* healthy through every rollover */
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_true(f->st.stats.rollovers >= 4);
  assert_true(f->st.stats.duplicates > 0); /* the overlaps did overlap */
  assert_int_equal(f->downs, 0);
  assert_contiguous(f, 0);
  assert_contiguous(f, 1);
  assert_true(f->n_ids[0] > 300);
  /* the last id sent was delivered */
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  for (int i = 0; i < f->n; i++)
    closed1000 += f->p[i]->close_code == 1000;
  assert_true(closed1000 >= 4);
  assert_true(f->st.n_conns <= 2);
  fx_free(f);
}

static int two_open_peers(struct fx *f) {
  int k = 0;
  for (int i = 0; i < f->n; i++)
    k += f->p[i]->open;
  return k == 2;
}

static int first_closed(struct fx *f) {
  return f->p[0]->closed;
}

/* serverShutdown: the replacement opens first, both run, the old one
 * closes with 1000; trades contiguous. */
static void server_shutdown(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  (void)state;
  f->cfg.overlap_ms = 200;
  f->gen_syms[0] = "BTCUSDT";
  f->n_gen = 1;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  run_for(f, 100);
  send_text(f->p[0], "{\"stream\":\"!serverShutdown\",\"data\":{\"e\":"
                     "\"serverShutdown\",\"E\":1770123456789}}");
  assert_true(run_until(f, two_open_peers, 3000));
  assert_false(f->p[0]->closed);
  assert_true(run_until(f, first_closed, 3000));
  assert_int_equal(f->p[0]->close_code, 1000);
  run_for(f, 100);
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_true(f->st.stats.server_shutdowns == 1);
  assert_int_equal(f->downs, 0);
  assert_int_equal(f->ups, 2);
  assert_contiguous(f, 0);
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  assert_int_equal(f->st.n_conns, 1);
  fx_free(f);
}

static int n_accepts_3(struct fx *f) {
  return f->n >= 3 && all_open(f);
}

/* The old connection drops while its replacement is opening: reported down
 * once with the symbols, then up; trades continue afterwards. Then a
 * replacement that is refused once: the old one keeps delivering. */
static void drop_during_rollover(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  int64_t last;
  (void)state;
  f->cfg.rollover_ms = 300;
  f->cfg.overlap_ms = 200;
  f->drop_first_on = 2; /* the replacement's upgrade drops peer 0 */
  f->reject_nth = 3;    /* the next replacement is refused once */
  f->gen_syms[0] = "BTCUSDT";
  f->n_gen = 1;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  assert_true(run_until(f, down_once, 3000));
  assert_int_equal(f->last_down_nsym, 1);
  assert_true(run_until(f, n_accepts_3, 3000));
  run_for(f, 200);
  last = f->ids[0][f->n_ids[0] - 1];
  run_for(f, 200);
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_true(f->ids[0][f->n_ids[0] - 1] > last);
  assert_int_equal(f->downs, 1);
  assert_true(f->n >= 4); /* the refused replacement was retried */
  /* no id twice, in order */
  for (int k = 1; k < f->n_ids[0]; k++)
    assert_true(f->ids[0][k] > f->ids[0][k - 1]);
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  fx_free(f);
}

/* A symbol added while a rollover's replacement is connecting goes onto a
 * connection that stays (not the one being replaced), and a symbol removed
 * then is not delivered from the old connection. */
static void set_symbols_during_rollover(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT", "XRPUSDT"};
  int64_t eth_first;
  (void)state;
  f->cfg.rollover_ms = 300;
  f->cfg.overlap_ms = 300;
  f->set_on = 2;
  f->set_syms[0] = "BTCUSDT";
  f->set_syms[1] = "ETHUSDT";
  f->n_set = 2;
  f->gen_syms[0] = "BTCUSDT";
  f->gen_syms[1] = "ETHUSDT";
  f->gen_syms[2] = "XRPUSDT";
  f->n_gen = 3;
  fx_start(f, syms, 2);
  f->syms[2] = "ETHUSDT";
  f->n_syms = 3;
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  run_for(f, 1500);
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_true(f->n >= 4);
  assert_contiguous(f, 0);
  assert_contiguous(f, 2);
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  assert_true(f->ids[2][f->n_ids[2] - 1] == f->gen_id[1]);
  eth_first = f->ids[2][0];
  assert_true(f->gen_id[1] - eth_first > 200);
  /* XRP stopped when it was removed, though the old connection still
   * carried it until the overlap ended */
  assert_true(f->n_ids[1] > 0);
  assert_true(f->ids[1][f->n_ids[1] - 1] < f->gen_id[2] - 100);
  assert_int_equal(f->downs, 0);
  fx_free(f);
}

static int accepts_5(struct fx *f) {
  return f->n >= 5;
}

/* Replacements refused (with max_reconnect_attempts 1): the old connection
 * keeps delivering, the replacement keeps trying, nothing is stranded;
 * once accepted, the rollover completes. */
static void replacement_refused(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  (void)state;
  f->cfg.rollover_ms = 200;
  f->cfg.overlap_ms = 100;
  f->cfg.max_reconnect_attempts = 1;
  f->gen_syms[0] = "BTCUSDT";
  f->n_gen = 1;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  f->reject = 1;
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  assert_true(run_until(f, accepts_5, 5000));
  assert_int_equal(f->downs, 0);
  assert_true(f->p[0]->open);
  assert_int_equal(f->st.conns[0]->state, SCONN_OPEN);
  assert_true(f->st.conns[1]->state == SCONN_BACKOFF ||
              f->st.conns[1]->state == SCONN_CONNECTING);
  f->reject = 0;
  assert_true(run_until(f, first_closed, 5000));
  run_for(f, 100);
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_int_equal(f->downs, 0);
  assert_contiguous(f, 0);
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  fx_free(f);
}

static int replacement_open(struct fx *f) {
  return f->n >= 2 && f->p[1]->open;
}

/* The replacement drops during the overlap (the old connection is already
 * retiring): reported down, reconnected within the overlap, nothing lost
 * or repeated. */
static void replacement_drops_in_overlap(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  (void)state;
  f->cfg.rollover_ms = 400;
  f->cfg.overlap_ms = 400;
  f->gen_syms[0] = "BTCUSDT";
  f->n_gen = 1;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  assert_true(run_until(f, replacement_open, 3000));
  run_for(f, 20);
  peer_drop(f->p[1]);
  assert_true(run_until(f, down_once, 3000));
  run_for(f, 700);
  uv_timer_stop(&f->gen);
  run_for(f, 50);
  assert_int_equal(f->downs, 1);
  assert_contiguous(f, 0);
  assert_true(f->ids[0][f->n_ids[0] - 1] == f->gen_id[0]);
  assert_true(n_open_conns(f) >= 1);
  fx_free(f);
}

/* Invalid names are refused before anything changes; a repeated name
 * counts once. */
static void symbol_checks(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT", "BTCUSDT", "ETHUSDT"};
  const char *bad1[] = {"BTCUSDT", ""};
  const char *bad2[] = {"BTC/USDT"};
  const char *bad3[] = {"BTC\"X"};
  const char *bad4[] = {
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
  (void)state;
  fx_start(f, syms, 3);
  assert_int_equal(f->st.n_conns, 1);
  assert_int_equal(f->st.conns[0]->n_symbols, 2);
  assert_int_equal(streams_set_symbols(&f->st, bad1, 2), BL_EINVAL);
  assert_int_equal(streams_set_symbols(&f->st, bad2, 1), BL_EINVAL);
  assert_int_equal(streams_set_symbols(&f->st, bad3, 1), BL_EINVAL);
  assert_int_equal(streams_set_symbols(&f->st, bad4, 1), BL_EINVAL);
  assert_int_equal(streams_set_symbols(&f->st, NULL, -1), BL_EINVAL);
  assert_int_equal(f->st.conns[0]->n_symbols, 2);
  assert_true(run_until(f, all_open, 3000));
  assert_string_equal(f->p[0]->path,
                      "/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade");
  fx_free(f);
}

static int got_pong(struct fx *f) {
  return f->p[0]->pongs >= 1;
}

/* Server pings are answered at once with the same payload; the client
 * pings a quiet connection; health follows the freshness of frames. */
static void pings(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  uint64_t t0;
  (void)state;
  f->cfg.ping_interval_ms = 100;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  t0 = uv_now(&f->loop);
  ws_send_ping(&f->p[0]->ws, "hello", 5);
  assert_true(run_until(f, got_pong, 1000));
  assert_string_equal(f->p[0]->pong, "hello");
  assert_true(uv_now(&f->loop) - t0 < 50);
  {
    uint64_t before = f->p[0]->ws.frames_in;
    run_for(f, 450);
    /* pings from the client (the server's ws answers them) */
    assert_true(f->p[0]->ws.frames_in >= before + 2);
  }
  assert_false(streams_healthy(&f->st, 200)); /* no data frame lately */
  assert_true(streams_healthy(&f->st, 10000));
  assert_int_equal(f->downs, 0);
  fx_free(f);
}

static int eth_has_5(struct fx *f) {
  return f->n_ids[1] >= 5;
}

/* on_event changes the symbols: BTC is dropped at once (its later frames
 * never reach on_event), ETH subscribed on the same connection. */
static void reentrant_set_symbols(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  (void)state;
  f->syms[1] = "ETHUSDT";
  f->reenter_event_at = 3;
  f->reenter_syms[0] = "ETHUSDT";
  f->n_reenter = 1;
  f->gen_syms[0] = "BTCUSDT";
  f->gen_syms[1] = "ETHUSDT";
  f->n_gen = 2;
  fx_start(f, syms, 1);
  f->n_syms = 2;
  assert_true(run_until(f, all_open, 3000));
  uv_timer_start(&f->gen, gen_cb, 2, 2);
  assert_true(run_until(f, eth_has_5, 3000));
  uv_timer_stop(&f->gen);
  assert_int_equal(f->n_ids[0], 3);
  assert_int_equal(f->events_after_reenter_of_removed, 0);
  assert_int_equal(f->st.n_conns, 1);
  assert_int_equal(f->downs, 0);
  fx_free(f);
}

/* on_conn_change(down) removes every symbol: the connection goes away and
 * does not reconnect. */
static void reentrant_clear_on_down(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT", "ETHUSDT"};
  (void)state;
  f->clear_on_down = 1;
  fx_start(f, syms, 2);
  assert_true(run_until(f, all_open, 3000));
  peer_drop(f->p[0]);
  assert_true(run_until(f, down_once, 3000));
  run_for(f, 300);
  assert_int_equal(f->st.n_conns, 0);
  assert_int_equal(f->n, 1);
  assert_int_equal(f->st.n_alive, 0);
  assert_true(streams_healthy(&f->st, 1000));
  fx_free(f);
}

/* streams_close from inside on_event: the frames that arrived in the same
 * read are not delivered after it. */
static void close_from_event(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"BTCUSDT"};
  char fr[512];
  (void)state;
  f->close_in_event_at = 2;
  fx_start(f, syms, 1);
  assert_true(run_until(f, all_open, 3000));
  for (int64_t id = 1; id <= 10; id++) {
    trade_frame(fr, sizeof fr, "BTCUSDT", id);
    send_text(f->p[0], fr);
  }
  assert_true(run_until(f, is_closed, 3000));
  assert_int_equal(f->n_ids[0], 2);
  assert_int_equal(f->p[0]->close_code, 1000);
  assert_int_equal(streams_set_symbols(&f->st, syms, 1), BL_ESTATE);
  fx_free(f);
}

static int all_peers_closed(struct fx *f) {
  for (int i = 0; i < f->n; i++)
    if (!f->p[i]->closed && !f->p[i]->rejected)
      return 0;
  return f->closed_cb > 0;
}

/* streams_close: each open connection closed with 1000, one in back-off
 * and one being retired too; the callback once; the loop closes (checked
 * in fx_free). */
static void close_all(void **state) {
  struct fx *f = fx_new();
  const char *syms[] = {"AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"};
  (void)state;
  f->cfg.max_streams_per_conn = 1;
  f->cfg.reconnect_delay_ms = 2000;
  fx_start(f, syms, 4);
  assert_int_equal(f->st.n_conns, 4);
  assert_true(run_until(f, all_open, 3000));
  f->reject = 1;
  peer_drop(f->p[3]); /* DDD: in back-off */
  assert_true(run_until(f, down_once, 3000));
  assert_int_equal(streams_set_symbols(&f->st, syms, 2), 0); /* CCC goes */
  streams_close(&f->st, closed_cb);
  assert_true(run_until(f, all_peers_closed, 5000));
  assert_int_equal(f->closed_cb, 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(f->p[i]->close_code, 1000);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(malformed_flood_rate_limited),
      cmocka_unit_test(plan_200_symbols),
      cmocka_unit_test(events_duplicates_malformed),
      cmocka_unit_test(oversized_frame),
      cmocka_unit_test(subscriptions_in_step),
      cmocka_unit_test(reconnect_backoff),
      cmocka_unit_test(gives_up),
      cmocka_unit_test(rollover_without_loss),
      cmocka_unit_test(server_shutdown),
      cmocka_unit_test(drop_during_rollover),
      cmocka_unit_test(set_symbols_during_rollover),
      cmocka_unit_test(replacement_drops_in_overlap),
      cmocka_unit_test(replacement_refused),
      cmocka_unit_test(symbol_checks),
      cmocka_unit_test(pings),
      cmocka_unit_test(reentrant_set_symbols),
      cmocka_unit_test(reentrant_clear_on_down),
      cmocka_unit_test(close_from_event),
      cmocka_unit_test(close_all),
  };
  signal(SIGPIPE, SIG_IGN);
  log_setup(BL_LOG_ERROR, 0, "test_streams", NULL);
  return cmocka_run_group_tests_name("streams", tests, NULL, NULL);
}
