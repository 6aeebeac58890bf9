/*
 * server.c: the mock exchange on a libuv loop.
 *
 * One listener serves REST and WebSocket on the same port (plain or TLS):
 * a connection's HTTP request head is read and either answered as REST
 * (keep-alive, several requests per connection) or handed to
 * ws_accept_upgrade() for /ws/<stream> and /stream?streams=... A second,
 * plain-HTTP listener takes the control commands the tests use to inject
 * faults and to read statistics (see README.md).
 *
 * Frames: a 10 ms timer advances the market clock to the wall clock and
 * generates, for every stream that has subscribers, what became due:
 * aggTrades as they happen, @depth@100ms every 100 ms and @depth every
 * second (U = previous u + 1), tickers every second, klines every 2 s (1 s
 * for 1s) plus the closed bar (x=true) as soon as a bar ends. A frame is
 * formatted once, wrapped for combined streams, and the raw payload is a
 * slice of the same buffer. With --rate 0 the clock runs ahead of the wall
 * clock as fast as the clients take frames (an idle handle; up to
 * FAST_STEPS steps of 2 ms per loop iteration), pausing while any client's
 * queue is over half its limit, and standing still (the loop idle) while
 * stalled or while no client is subscribed.
 *
 * Batches: generated frames (and replayed ones) are framed as WebSocket
 * text frames straight into a per-client buffer and written with one
 * conn_write per client per pass (client_flush), instead of one
 * ws_send_text (two copies, two allocations and a write syscall) per frame.
 * The bytes are those ws.c would send. Everything else a client gets
 * through ws.c (control answers, pings, faults, the close) flushes the
 * batch first, and the batch goes to the conn directly only while ws.c
 * holds nothing of its own, so the order on the wire is the order of the
 * sends.
 *
 * Back-pressure (synthetic data): a frame for a client that has more than
 * client_queue_max bytes queued is dropped and counted (frames_dropped in
 * /stats) in real-time mode; in fast mode the clock waits instead. Replay
 * never drops: a client's cursor simply waits.
 *
 * Per client: a 100 ms housekeeping pass sends server pings every
 * ping_interval (payload: the send time), drops the connection when the
 * matching pong has not come within pong_timeout, and closes with 1008
 * "Too many requests" when more than 5 frames (data, ping, pong) arrived
 * within one second.
 *
 * State: struct mock_server (market clock, per-symbol generator state,
 * subscriber counts per stream, faults, statistics) and struct mclient per
 * connection (linked list; its batch of frames not yet written).
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/err.h"
#include "core/log.h"

#define MOD "mock"
#define HTTP_MAX_IN (64 * 1024)
#define RX_RING 10
#define REPLAY_BATCH 5000
#define FAST_STEPS 64            /* 2 ms steps per loop iteration at most */
#define FAST_BATCH (256u * 1024) /* bytes batched for a client: write now */

struct mclient {
  struct mock_server *srv;
  struct mclient *next, *prev;
  uint64_t id;
  int is_control, is_ws, closing, pending_closes, delaying;
  struct conn conn;
  struct ws ws;
  uv_timer_t timer; /* delayed REST answers */
  struct buf in;    /* HTTP bytes not yet handled */
  struct buf out;   /* a delayed answer */
  struct st_subs *subs;
  unsigned char *bits; /* subscribed stream ids (synthetic) */
  /* pings */
  uint64_t last_ping, ping_sent;
  int ping_outstanding;
  char ping_payload[24];
  /* incoming-message rule: frames_in sampled every 100 ms */
  uint64_t rx_ring[RX_RING];
  int rx_pos;
  /* replay */
  size_t rp_pos;
  uint64_t rp_start;
  int stalled;
  uint64_t dropped, sent;
  struct buf batch; /* WebSocket frames not yet written (client_flush) */
};

static int64_t wall_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return 0;
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t market_now(struct mock_server *srv) {
  return srv->fast ? srv->now : wall_ms();
}

/* ------------------------------------------------------------- clients */

static void client_free(struct mclient *cl) {
  struct mock_server *srv = cl->srv;
  if (cl->prev)
    cl->prev->next = cl->next;
  else
    srv->clients = cl->next;
  if (cl->next)
    cl->next->prev = cl->prev;
  buf_free(&cl->in);
  buf_free(&cl->out);
  buf_free(&cl->batch);
  if (cl->subs) {
    st_subs_free(cl->subs);
    free(cl->subs);
  }
  free(cl->bits);
  free(cl);
}

static void client_close_step(struct mclient *cl) {
  if (--cl->pending_closes == 0)
    client_free(cl);
}

static void on_client_timer_closed(uv_handle_t *h) {
  client_close_step(h->data);
}

static void on_client_conn_closed(struct conn *c) {
  client_close_step(c->data);
}

static void on_client_ws_closed(struct ws *ws) {
  client_close_step(ws->data);
}

static void ref_remove(struct mock_server *srv, int sid);

static void client_unsubscribe_all(struct mclient *cl) {
  int i;
  if (!cl->subs || cl->srv->replay_mode)
    return;
  for (i = 0; i < cl->subs->n; i++)
    ref_remove(cl->srv, cl->subs->ids[i]);
  cl->subs->n = 0;
}

static void client_close(struct mclient *cl) {
  if (cl->closing)
    return;
  cl->closing = 1;
  client_unsubscribe_all(cl);
  cl->pending_closes = 2;
  uv_close((uv_handle_t *)&cl->timer, on_client_timer_closed);
  if (cl->is_ws)
    ws_close(&cl->ws, on_client_ws_closed);
  else
    conn_close(&cl->conn, on_client_conn_closed);
}

/* ---------------------------------------------------------------- HTTP */

static const char *reason_of(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 418:
    return "I'm a teapot";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

/* Builds a whole HTTP answer in |out|. */
static int http_answer(struct buf *out, int status, int used, int retry_after,
                       const char *body, size_t len) {
  int rc = buf_printf(out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json;"
                      "charset=UTF-8\r\nContent-Length: %zu\r\n",
                      status, reason_of(status), len);
  if (rc == 0 && used >= 0)
    rc = buf_printf(out, "X-MBX-USED-WEIGHT-1M: %d\r\n", used);
  if (rc == 0 && retry_after >= 0)
    rc = buf_printf(out, "Retry-After: %d\r\n", retry_after);
  if (rc == 0)
    rc = buf_append_str(out, "Connection: keep-alive\r\n\r\n");
  if (rc == 0)
    rc = buf_append(out, body, len);
  return rc;
}

static void client_write(struct mclient *cl, const char *data, size_t len) {
  int rc = conn_write(&cl->conn, data, len);
  if (rc != 0 && rc != BL_EFULL) {
    log_limited(BL_LOG_WARN, MOD, "write to %s failed: %s", cl->conn.peer,
                bl_strerror(rc));
    client_close(cl);
  }
}

static void http_process(struct mclient *cl);

static void on_delay_timer(uv_timer_t *t) {
  struct mclient *cl = t->data;
  if (cl->closing)
    return;
  cl->delaying = 0;
  client_write(cl, cl->out.data, cl->out.len);
  buf_reset(&cl->out);
  if (!cl->closing) {
    conn_read_start(&cl->conn);
    http_process(cl);
  }
}

static int control_handle(struct mock_server *srv, const char *target,
                          struct buf *body, int *status);
static void ws_upgrade(struct mclient *cl, const struct ws_http_request *req,
                       size_t head_len);

static void http_process(struct mclient *cl) {
  struct mock_server *srv = cl->srv;
  while (!cl->closing && !cl->delaying && cl->in.len > 0) {
    struct ws_http_request req;
    struct rest_resp resp;
    struct buf ans;
    long n = ws_handshake_parse_request(cl->in.data, cl->in.len, &req);
    if (n == 0)
      return;
    if (n < 0) {
      static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: "
                                "0\r\nConnection: close\r\n\r\n";
      client_write(cl, bad, sizeof bad - 1);
      client_close(cl);
      return;
    }
    if (req.is_upgrade && !cl->is_control) {
      ws_upgrade(cl, &req, (size_t)n);
      return;
    }
    buf_init(&ans, 256u << 20);
    buf_init(&resp.body, 200u << 20);
    if (cl->is_control) {
      int st = 200;
      if (control_handle(srv, req.path, &resp.body, &st) != 0)
        st = 500;
      http_answer(&ans, st, -1, -1, resp.body.data ? resp.body.data : "",
                  resp.body.len);
    } else {
      int64_t now = market_now(srv);
      if (rest_handle(&srv->rest, req.method, req.path, now, &resp) != 0)
        log_limited(BL_LOG_WARN, MOD, "REST %s: answer too big", req.path);
      log_debug(MOD, "%s %s -> %d (weight used %d)", req.method, req.path,
                resp.status, resp.used);
      http_answer(&ans, resp.status, resp.used, resp.retry_after,
                  resp.body.data ? resp.body.data : "", resp.body.len);
    }
    buf_free(&resp.body);
    buf_consume(&cl->in, (size_t)n);
    if (!cl->is_control && srv->rest.delay_ms > 0) {
      buf_free(&cl->out);
      cl->out = ans;
      cl->delaying = 1;
      conn_read_stop(&cl->conn);
      uv_timer_start(&cl->timer, on_delay_timer, (uint64_t)srv->rest.delay_ms,
                     0);
      return;
    }
    client_write(cl, ans.data, ans.len);
    buf_free(&ans);
  }
}

static void hc_on_read(struct conn *c, const char *data, size_t len) {
  struct mclient *cl = c->data;
  if (cl->closing)
    return;
  if (buf_append(&cl->in, data, len) != 0) {
    static const char big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
    client_write(cl, big, sizeof big - 1);
    client_close(cl);
    return;
  }
  http_process(cl);
}

static void hc_on_error(struct conn *c, int status) {
  struct mclient *cl = c->data;
  if (status != BL_ECLOSED)
    log_debug(MOD, "connection %s: %s (%s)", c->peer, bl_strerror(status),
              c->errstr);
  client_close(cl);
}

static const struct conn_callbacks http_cbs = {.on_read = hc_on_read,
                                               .on_error = hc_on_error};

static void on_listen(uv_stream_t *server, int status, int is_control) {
  struct mock_server *srv = server->data;
  struct mclient *cl;
  struct conn_options copt = {.write_high_water = 64u << 20};
  int rc;
  if (status < 0 || srv->stopping)
    return;
  cl = calloc(1, sizeof *cl);
  if (!cl)
    return;
  cl->srv = srv;
  cl->id = ++srv->next_client_id;
  cl->is_control = is_control;
  buf_init(&cl->in, HTTP_MAX_IN);
  buf_init(&cl->out, 256u << 20);
  /* a frame is queued only while the client is at or below the limit */
  buf_init(&cl->batch, srv->opt.client_queue_max + (4u << 20));
  uv_timer_init(srv->loop, &cl->timer);
  cl->timer.data = cl;
  conn_init(srv->loop, &cl->conn, &http_cbs, &copt);
  cl->conn.data = cl;
  cl->next = srv->clients;
  if (srv->clients)
    srv->clients->prev = cl;
  srv->clients = cl;
  rc = conn_accept(&cl->conn, server, is_control ? NULL : srv->tls);
  if (rc != 0) {
    log_warn(MOD, "accept failed: %s", bl_strerror(rc));
    client_close(cl);
    return;
  }
  if (!is_control)
    srv->accepted++;
}

static void on_listen_main(uv_stream_t *server, int status) {
  on_listen(server, status, 0);
}

static void on_listen_control(uv_stream_t *server, int status) {
  on_listen(server, status, 1);
}

/* ----------------------------------------------------------- streams */

static void ref_add(struct mock_server *srv, int sid) {
  int s = sid / ST_NKINDS, kind = sid % ST_NKINDS;
  struct sym_gen *g = &srv->gen[s];
  int64_t now = srv->now;
  if (srv->refs[sid]++ > 0)
    return;
  if (kind == ST_AGGTRADE) {
    g->next_k = mk_trade_last_at(&srv->market, s, now) + 1;
  } else if (kind == ST_DEPTH || kind == ST_DEPTH100) {
    int d = kind == ST_DEPTH100, period = d ? 100 : 1000;
    g->depth_u[d] = mk_book_uid(&srv->market, s, now);
    g->depth_due[d] = (now / period + 1) * period;
  } else if (kind == ST_TICKER) {
    g->ticker_due = now;
  } else {
    int iv = kind - ST_KLINE0;
    g->kline_bar[iv] = mk_bar_start(iv, now);
    g->kline_due[iv] = now;
  }
}

static void ref_remove(struct mock_server *srv, int sid) {
  if (srv->refs[sid] > 0)
    srv->refs[sid]--;
}

static void bit_set(unsigned char *b, int i, int on) {
  if (on)
    b[i >> 3] |= (unsigned char)(1u << (i & 7));
  else
    b[i >> 3] &= (unsigned char)~(1u << (i & 7));
}

static int bit_get(const unsigned char *b, int i) {
  return (b[i >> 3] >> (i & 7)) & 1;
}

static int ws_ready(const struct mclient *cl) {
  return cl->is_ws && !cl->closing && cl->ws.state == WS_OPEN;
}

/* ------------------------------------------------------------ batches */

/* Bytes waiting for a client: in ws.c and the conn, plus its batch. */
static size_t client_queued(const struct mclient *cl) {
  return ws_queued_bytes(&cl->ws) + cl->batch.len;
}

/* Writes the batch. Straight to the conn, in one write, when ws.c holds
 * nothing of its own (its FIFO and wslay's queue are empty, so no frame of
 * ws.c is half written and none is waiting to go before these); otherwise
 * the frames are handed to ws.c one by one, after what it holds. */
static void client_flush(struct mclient *cl) {
  struct mock_server *srv = cl->srv;
  size_t off = 0;
  int rc;
  if (cl->batch.len == 0)
    return;
  if (!ws_ready(cl)) {
    buf_reset(&cl->batch);
    return;
  }
  if (ws_queued_bytes(&cl->ws) == conn_write_queue_size(&cl->conn)) {
    rc = conn_write(&cl->conn, cl->batch.data, cl->batch.len);
    if (rc != BL_EFULL) {
      if (rc != 0)
        log_limited(BL_LOG_WARN, MOD, "write to client %llu failed: %s",
                    (unsigned long long)cl->id, bl_strerror(rc));
      buf_reset(&cl->batch);
      return;
    }
  }
  for (;;) {
    size_t po, plen;
    long n = fmt_ws_frame_next(cl->batch.data + off, cl->batch.len - off, &po,
                               &plen);
    if (n <= 0)
      break;
    if (ws_send_text(&cl->ws, cl->batch.data + off + po, plen) != 0) {
      cl->sent--;
      srv->frames_sent--;
      cl->dropped++;
      srv->frames_dropped++;
    }
    off += (size_t)n;
  }
  buf_reset(&cl->batch);
}

static void flush_all(struct mock_server *srv) {
  struct mclient *cl;
  for (cl = srv->clients; cl; cl = cl->next)
    if (cl->batch.len)
      client_flush(cl);
}

/* Queues one frame for |cl| in its batch (the generators' path). */
static int batch_text(struct mclient *cl, const char *data, size_t len) {
  int rc = fmt_ws_text_frame(&cl->batch, data, len);
  if (rc == 0) {
    cl->sent++;
    cl->srv->frames_sent++;
  } else {
    cl->dropped++;
    cl->srv->frames_dropped++;
  }
  return rc;
}

/* Sends one frame through ws.c (control answers and faults), after the
 * batch. */
static int send_text(struct mclient *cl, const char *data, size_t len) {
  int rc;
  client_flush(cl);
  rc = ws_send_text(&cl->ws, data, len);
  if (rc == 0) {
    cl->sent++;
    cl->srv->frames_sent++;
  } else {
    cl->dropped++;
    cl->srv->frames_dropped++;
  }
  return rc;
}

static const char *const kind_suffix[ST_KLINE0] = {"@aggTrade", "@ticker",
                                                   "@depth", "@depth@100ms"};

/* Starts a frame for stream |sid| in srv->fb: the combined prefix
 * {"stream":"<name>","data": (the name as st_name writes it). */
static int frame_begin(struct mock_server *srv, int sid) {
  int s = sid / ST_NKINDS, kind = sid % ST_NKINDS;
  const char *lo = srv->market.sym[s].lower;
  char *p;
  buf_reset(&srv->fb);
  if (buf_reserve(&srv->fb, 128) != 0)
    return BL_ETOOBIG;
  p = srv->fb.data;
  memcpy(p, "{\"stream\":\"", 11);
  p = fmt_str(p + 11, lo);
  if (kind < ST_KLINE0) {
    p = fmt_str(p, kind_suffix[kind]);
  } else {
    p = fmt_str(p, "@kline_");
    p = fmt_str(p, mk_interval_name(kind - ST_KLINE0));
  }
  memcpy(p, "\",\"data\":", 9);
  srv->fb.len = (size_t)(p + 9 - srv->fb.data);
  srv->fb_prefix = srv->fb.len;
  return 0;
}

/* Queues the frame in srv->fb (payload appended) for every subscriber. */
static void frame_send(struct mock_server *srv, int sid) {
  struct mclient *cl;
  const char *comb, *raw;
  size_t clen, rlen;
  int reps = 1, r;
  if (buf_append_char(&srv->fb, '}') != 0)
    return;
  comb = srv->fb.data;
  clen = srv->fb.len;
  raw = comb + srv->fb_prefix;
  rlen = clen - srv->fb_prefix - 1;
  if (srv->dup_next > 0) {
    srv->dup_next--;
    reps = 2;
  }
  for (cl = srv->clients; cl; cl = cl->next) {
    if (!ws_ready(cl) || !cl->bits || !bit_get(cl->bits, sid))
      continue;
    if (srv->stall || cl->stalled)
      continue;
    for (r = 0; r < reps; r++) {
      if (client_queued(cl) > srv->opt.client_queue_max) {
        cl->dropped++;
        srv->frames_dropped++;
        continue;
      }
      if (batch_text(cl, cl->subs->combined ? comb : raw,
                     cl->subs->combined ? clen : rlen) == 0)
        srv->frames_per_stream[sid]++;
    }
  }
}

/* /cross_depth fault: adds a bid at the best ask of the book at |u|, so
 * that the event leaves the book crossed (bid >= ask). */
static void cross_levels(const struct mk_market *m, int s, int64_t u,
                         struct mk_level *bids, int *nb) {
  struct mk_level b[MK_LEVELS], a[MK_LEVELS];
  if (*nb >= 2 * MK_LEVELS)
    (*nb)--;
  mk_book_at(m, s, u, b, a);
  bids[*nb].price = a[0].price;
  bids[*nb].qty = 100000000; /* 1.0 */
  (*nb)++;
}

static void gen_symbol(struct mock_server *srv, int s, int64_t now) {
  struct mk_market *m = &srv->market;
  struct sym_gen *g = &srv->gen[s];
  int base = s * ST_NKINDS, d, iv;
  if (srv->refs[base + ST_AGGTRADE]) {
    int sid = base + ST_AGGTRADE;
    int64_t last = mk_trade_last_at(m, s, now), k;
    struct mk_trade tr;
    for (k = g->next_k; k <= last; k++) {
      if (g->skip_trades > 0) {
        g->skip_trades--;
        g->trades_skipped++;
        continue;
      }
      mk_trade_get(m, s, k, &tr);
      if (frame_begin(srv, sid) != 0 ||
          fmt_agg_trade(&srv->fb, &m->sym[s], &tr, tr.time) != 0)
        continue;
      frame_send(srv, sid);
      if (!g->trades_sent++)
        g->first_trade_sent = tr.id;
      g->last_trade_sent = tr.id;
    }
    if (last + 1 > g->next_k)
      g->next_k = last + 1;
  }
  for (d = 0; d < 2; d++) {
    int sid = base + (d ? ST_DEPTH100 : ST_DEPTH), period = d ? 100 : 1000;
    struct mk_level bids[2 * MK_LEVELS], asks[2 * MK_LEVELS];
    int nb, na;
    int64_t u, first;
    if (!srv->refs[sid] || now < g->depth_due[d])
      continue;
    g->depth_due[d] = (now / period + 1) * period;
    if (g->skip_depth > 0) { /* these ids are never sent: a gap */
      g->depth_u[d] += g->skip_depth;
      g->skip_depth = 0;
    }
    u = mk_book_uid(m, s, now);
    if (u <= g->depth_u[d])
      continue;
    first = g->depth_u[d] + 1;
    mk_book_diff(m, s, g->depth_u[d], u, bids, &nb, asks, &na);
    if (d == 1 && g->cross_depth) {
      cross_levels(m, s, u, bids, &nb);
      g->cross_depth = 0;
    }
    g->depth_u[d] = u;
    if (frame_begin(srv, sid) != 0 ||
        fmt_depth_update(&srv->fb, &m->sym[s], now, first, u, bids, nb, asks,
                         na) != 0)
      continue;
    frame_send(srv, sid);
    g->last_depth_u_sent = u;
  }
  if (srv->refs[base + ST_TICKER] && now >= g->ticker_due) {
    g->ticker_due = (now / 1000 + 1) * 1000;
    if (frame_begin(srv, base + ST_TICKER) == 0 &&
        fmt_ticker(&srv->fb, m, s, now) == 0)
      frame_send(srv, base + ST_TICKER);
  }
  for (iv = 0; iv < MK_NINTERVALS; iv++) {
    int sid = base + ST_KLINE0 + iv;
    int64_t cur;
    struct mk_agg a;
    if (!srv->refs[sid])
      continue;
    cur = mk_bar_start(iv, now);
    if (cur != g->kline_bar[iv]) {
      /* the bar being sent has ended: send it final, once */
      mk_kline(m, s, iv, g->kline_bar[iv], now, &a);
      if (frame_begin(srv, sid) == 0 &&
          fmt_kline(&srv->fb, m, s, iv, g->kline_bar[iv], &a, 1, now) == 0)
        frame_send(srv, sid);
      g->kline_bar[iv] = cur;
    }
    if (now >= g->kline_due[iv]) {
      g->kline_due[iv] = now + (iv == MK_1s ? 1000 : 2000);
      mk_kline(m, s, iv, cur, now, &a);
      if (frame_begin(srv, sid) == 0 &&
          fmt_kline(&srv->fb, m, s, iv, cur, &a, 0, now) == 0)
        frame_send(srv, sid);
    }
  }
}

static void gen_all(struct mock_server *srv, int64_t now) {
  int s;
  srv->now = now;
  for (s = 0; s < srv->market.nsym; s++)
    gen_symbol(srv, s, now);
}

/* -------------------------------------------------------------- replay */

static void replay_client(struct mock_server *srv, struct mclient *cl) {
  const struct replay *rp = &srv->replay;
  uint64_t elapsed_ms = uv_now(srv->loop) - cl->rp_start;
  int n = 0;
  if (!ws_ready(cl) || srv->stall || cl->stalled || cl->subs->nnames == 0)
    return;
  while (cl->rp_pos < rp->nframes && n < REPLAY_BATCH) {
    const struct replay_frame *f = &rp->frames[cl->rp_pos];
    if (srv->opt.replay_timing) {
      double due = (double)(f->t_us - rp->frames[0].t_us) / 1000.0 /
                   (srv->opt.replay_speed > 0 ? srv->opt.replay_speed : 1.0);
      if (due > (double)elapsed_ms)
        break;
    }
    if (client_queued(cl) > srv->opt.client_queue_max)
      break; /* wait for the client */
    if (!f->stream_len ||
        st_subs_has_name(cl->subs, rp->ws_text + f->stream_off,
                         f->stream_len)) {
      int reps = 1, r;
      if (srv->dup_next > 0) {
        srv->dup_next--;
        reps = 2;
      }
      for (r = 0; r < reps; r++) {
        if (cl->subs->combined)
          batch_text(cl, rp->ws_text + f->off, f->len);
        else
          batch_text(cl, rp->ws_text + f->data_off, f->data_len);
        srv->replay_sent++;
      }
      n++;
    }
    cl->rp_pos++;
  }
  client_flush(cl);
}

/* --------------------------------------------------------- housekeeping */

static void client_housekeeping(struct mock_server *srv, struct mclient *cl,
                                uint64_t mono) {
  uint64_t old;
  if (!ws_ready(cl))
    return;
  /* more than 5 incoming frames in the last second */
  old = cl->rx_ring[cl->rx_pos];
  if (cl->ws.frames_in - old > 5) {
    log_info(MOD, "client %llu: %llu messages in 1 s, closing 1008",
             (unsigned long long)cl->id,
             (unsigned long long)(cl->ws.frames_in - old));
    srv->ws_closed_rate++;
    client_flush(cl);
    ws_shutdown(&cl->ws, 1008, "Too many requests");
    return;
  }
  cl->rx_ring[cl->rx_pos] = cl->ws.frames_in;
  cl->rx_pos = (cl->rx_pos + 1) % RX_RING;
  if (srv->stall || cl->stalled)
    return;
  if (cl->ping_outstanding && srv->opt.pong_timeout_ms &&
      mono - cl->ping_sent > srv->opt.pong_timeout_ms) {
    log_info(MOD, "client %llu: no pong in %llu ms, dropping",
             (unsigned long long)cl->id,
             (unsigned long long)srv->opt.pong_timeout_ms);
    srv->ws_closed_pong++;
    client_close(cl);
    return;
  }
  if (srv->opt.ping_interval_ms &&
      mono - cl->last_ping >= srv->opt.ping_interval_ms) {
    int n = snprintf(cl->ping_payload, sizeof cl->ping_payload, "%llu",
                     (unsigned long long)mono);
    cl->last_ping = mono;
    if (!cl->ping_outstanding) {
      cl->ping_outstanding = 1;
      cl->ping_sent = mono;
    }
    client_flush(cl);
    ws_send_ping(&cl->ws, cl->ping_payload, (size_t)n);
  }
}

/* Fast mode: whether the market clock may advance. Only while someone
 * takes frames: not while stalled, not without a subscribed client, and
 * not while any client has more than half of its queue limit waiting. */
static int fast_may_run(struct mock_server *srv) {
  struct mclient *cl;
  int any = 0;
  if (srv->stall)
    return 0;
  for (cl = srv->clients; cl; cl = cl->next) {
    if (!ws_ready(cl) || cl->stalled || !cl->subs || cl->subs->n == 0)
      continue;
    if (client_queued(cl) > srv->opt.client_queue_max / 2)
      return 0;
    any = 1;
  }
  return any;
}

/* Fast mode, once per loop iteration: up to FAST_STEPS steps of 2 ms of
 * market time (the same steps as one per iteration, so the same events),
 * until a client has FAST_BATCH bytes batched, then one write per client. */
static void on_idle(uv_idle_t *h) {
  struct mock_server *srv = h->data;
  int step;
  for (step = 0; step < FAST_STEPS; step++) {
    struct mclient *cl;
    int full = 0;
    if (!fast_may_run(srv)) {
      uv_idle_stop(&srv->idle); /* the tick restarts it */
      break;
    }
    gen_all(srv, srv->now + 2);
    for (cl = srv->clients; cl; cl = cl->next)
      full |= cl->batch.len >= FAST_BATCH;
    if (full)
      break;
  }
  flush_all(srv);
}

static void on_tick(uv_timer_t *t) {
  struct mock_server *srv = t->data;
  struct mclient *cl, *next;
  uint64_t mono = uv_now(srv->loop);
  if (srv->stopping)
    return;
  if (srv->replay_mode) {
    for (cl = srv->clients; cl; cl = next) {
      next = cl->next;
      replay_client(srv, cl);
    }
  } else if (srv->fast) {
    if (!uv_is_active((uv_handle_t *)&srv->idle) && fast_may_run(srv))
      uv_idle_start(&srv->idle, on_idle);
  } else {
    gen_all(srv, wall_ms());
    flush_all(srv);
  }
  if (++srv->ticks % 10 == 0) {
    for (cl = srv->clients; cl; cl = next) {
      next = cl->next;
      client_housekeeping(srv, cl, mono);
    }
  }
}

/* ------------------------------------------------------------ WebSocket */

static void wc_on_open(struct ws *ws) {
  struct mclient *cl = ws->data;
  cl->rp_start = uv_now(cl->srv->loop);
  cl->last_ping = uv_now(cl->srv->loop);
  if (cl->srv->no_pong)
    ws_set_auto_pong(ws, 0);
}

static void apply_effect(struct mclient *cl, const struct st_effect *eff) {
  int i;
  for (i = 0; i < eff->nadded; i++) {
    bit_set(cl->bits, eff->added[i], 1);
    ref_add(cl->srv, eff->added[i]);
  }
  for (i = 0; i < eff->nremoved; i++) {
    bit_set(cl->bits, eff->removed[i], 0);
    ref_remove(cl->srv, eff->removed[i]);
  }
}

static void wc_on_message(struct ws *ws, int binary, const char *data,
                          size_t len) {
  struct mclient *cl = ws->data;
  struct mock_server *srv = cl->srv;
  struct st_effect *eff;
  struct buf reply;
  if (cl->closing)
    return;
  if (ws->state != WS_OPEN)
    return;
  /* the ring starts at zeros: a new connection had 0 frames 1 s ago */
  if (ws->frames_in - cl->rx_ring[cl->rx_pos] > 5) {
    srv->ws_closed_rate++;
    client_flush(cl);
    ws_shutdown(ws, 1008, "Too many requests");
    return;
  }
  if (binary)
    return;
  eff = malloc(sizeof *eff);
  if (!eff)
    return;
  buf_init(&reply, 1 << 20);
  if (st_control(srv->replay_mode ? NULL : &srv->market, srv->replay_mode,
                 cl->subs, data, len, &reply, eff) == 0) {
    if (!srv->replay_mode)
      apply_effect(cl, eff);
    client_flush(cl);
    ws_send_text(ws, reply.data, reply.len);
  }
  buf_free(&reply);
  free(eff);
}

static void wc_on_pong(struct ws *ws, const char *data, size_t len) {
  struct mclient *cl = ws->data;
  if (cl->ping_outstanding && len == strlen(cl->ping_payload) &&
      !memcmp(data, cl->ping_payload, len))
    cl->ping_outstanding = 0;
}

static void wc_on_close(struct ws *ws, int status, int code,
                        const char *reason) {
  struct mclient *cl = ws->data;
  log_debug(MOD, "client %llu closed: %s code %d %s",
            (unsigned long long)cl->id, bl_strerror(status), code, reason);
  client_close(cl);
}

static const struct ws_callbacks ws_cbs = {.on_open = wc_on_open,
                                           .on_message = wc_on_message,
                                           .on_close = wc_on_close,
                                           .on_pong = wc_on_pong};

static void ws_upgrade(struct mclient *cl, const struct ws_http_request *req,
                       size_t head_len) {
  struct mock_server *srv = cl->srv;
  struct ws_options wopt = {.max_message = 1u << 20,
                            .max_queued_bytes = 128u << 20};
  int rc, i;
  size_t nbits = ((size_t)srv->market.nsym * ST_NKINDS + 7) / 8;
  cl->subs = calloc(1, sizeof *cl->subs);
  cl->bits = calloc(nbits ? nbits : 1, 1);
  if (!cl->subs || !cl->bits) {
    client_close(cl);
    return;
  }
  rc = st_from_path(srv->replay_mode ? NULL : &srv->market, srv->replay_mode,
                    cl->subs, req->path);
  if (rc != 0) {
    char body[160];
    struct buf ans;
    int n = snprintf(body, sizeof body,
                     "{\"code\":-1100,\"msg\":\"Invalid request: %s\"}",
                     rc == BL_EFULL ? "too many streams" : "invalid stream");
    buf_init(&ans, 4096);
    http_answer(&ans,
                rc == BL_EINVAL && strncmp(req->path, "/ws", 3) &&
                        strncmp(req->path, "/stream", 7)
                    ? 404
                    : 400,
                -1, -1, body, (size_t)n);
    client_write(cl, ans.data, ans.len);
    buf_free(&ans);
    st_subs_free(cl->subs);
    client_close(cl);
    return;
  }
  ws_init(srv->loop, &cl->ws, &ws_cbs, &wopt);
  cl->ws.data = cl;
  rc = ws_accept_upgrade(&cl->ws, &cl->conn, cl->in.data, head_len,
                         cl->in.data + head_len, cl->in.len - head_len);
  buf_free(&cl->in);
  if (rc != 0) {
    log_warn(MOD, "upgrade failed: %s", bl_strerror(rc));
    st_subs_free(cl->subs);
    client_close(cl);
    return;
  }
  cl->is_ws = 1;
  srv->ws_accepted++;
  if (!srv->replay_mode)
    for (i = 0; i < cl->subs->n; i++) {
      bit_set(cl->bits, cl->subs->ids[i], 1);
      ref_add(srv, cl->subs->ids[i]);
    }
  log_debug(MOD, "client %llu: WebSocket %s", (unsigned long long)cl->id,
            req->path);
}

/* -------------------------------------------------------------- control */

static void send_special(struct mock_server *srv, const char *kind, size_t size,
                         const char *payload_override);

static int q_int(const char *q, const char *key, int64_t def, int64_t *out) {
  char tmp[64], *end;
  long long v;
  if (rest_query_get(q, key, tmp, sizeof tmp) <= 0) {
    *out = def;
    return 0;
  }
  v = strtoll(tmp, &end, 10);
  if (*end != '\0')
    return -1;
  *out = v;
  return 0;
}

static int stats_json(struct mock_server *srv, struct buf *b) {
  struct mclient *cl;
  int s, rc, first = 1, nws = 0;
  char name[96];
  for (cl = srv->clients; cl; cl = cl->next)
    nws += ws_ready(cl);
  rc = buf_printf(
      b,
      "{\"now\":%lld,\"mode\":\"%s\",\"connections_accepted\":%llu,"
      "\"ws_accepted\":%llu,\"ws_open\":%d,\"frames_sent\":%llu,"
      "\"frames_dropped\":%llu,\"replay_frames_sent\":%llu,"
      "\"closed_too_many_requests\":%llu,\"closed_pong_timeout\":%llu,"
      "\"streams\":{",
      (long long)market_now(srv),
      srv->replay_mode ? "replay"
      : srv->fast      ? "fast"
                       : "realtime",
      (unsigned long long)srv->accepted, (unsigned long long)srv->ws_accepted,
      nws, (unsigned long long)srv->frames_sent,
      (unsigned long long)srv->frames_dropped,
      (unsigned long long)srv->replay_sent,
      (unsigned long long)srv->ws_closed_rate,
      (unsigned long long)srv->ws_closed_pong);
  if (!srv->replay_mode) {
    int sid, nsid = srv->market.nsym * ST_NKINDS;
    for (sid = 0; rc == 0 && sid < nsid; sid++) {
      if (!srv->frames_per_stream[sid])
        continue;
      st_name(&srv->market, sid, name, sizeof name);
      rc = buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", name,
                      (unsigned long long)srv->frames_per_stream[sid]);
      first = 0;
    }
  }
  if (rc == 0)
    rc = buf_append_str(b, "},\"symbols\":{");
  first = 1;
  for (s = 0; rc == 0 && !srv->replay_mode && s < srv->market.nsym; s++) {
    const struct sym_gen *g = &srv->gen[s];
    if (!g->trades_sent && !g->trades_skipped && !g->last_depth_u_sent)
      continue;
    rc = buf_printf(
        b,
        "%s\"%s\":{\"first_trade_id_sent\":%lld,"
        "\"last_trade_id_sent\":%lld,\"trades_sent\":%llu,"
        "\"trades_skipped\":%llu,\"last_depth_u_sent\":%lld}",
        first ? "" : ",", srv->market.sym[s].name,
        (long long)g->first_trade_sent, (long long)g->last_trade_sent,
        (unsigned long long)g->trades_sent,
        (unsigned long long)g->trades_skipped, (long long)g->last_depth_u_sent);
    first = 0;
  }
  if (rc == 0)
    rc = buf_append_str(b, "},\"clients\":[");
  first = 1;
  for (cl = srv->clients; rc == 0 && cl; cl = cl->next) {
    if (!cl->is_ws)
      continue;
    rc = buf_printf(b,
                    "%s{\"id\":%llu,\"peer\":\"%s\",\"open\":%s,"
                    "\"subscriptions\":%d,\"sent\":%llu,\"dropped\":%llu,"
                    "\"queued_bytes\":%zu}",
                    first ? "" : ",", (unsigned long long)cl->id, cl->conn.peer,
                    ws_ready(cl) ? "true" : "false",
                    srv->replay_mode ? cl->subs->nnames : cl->subs->n,
                    (unsigned long long)cl->sent,
                    (unsigned long long)cl->dropped,
                    ws_ready(cl) ? ws_queued_bytes(&cl->ws) : (size_t)0);
    first = 0;
  }
  if (rc == 0)
    rc = buf_append_str(b, "],\"rest\":");
  if (rc == 0)
    rc = rest_stats_json(&srv->rest, b);
  if (rc == 0)
    rc = buf_append_char(b, '}');
  return rc;
}

static int control_handle(struct mock_server *srv, const char *target,
                          struct buf *body, int *status) {
  const char *qm = strchr(target, '?');
  size_t plen = qm ? (size_t)(qm - target) : strlen(target);
  const char *q = qm ? qm + 1 : "";
  char sym[64], kind[32];
  int64_t n, secs, ra, v1, v2;
  struct mclient *cl, *next;
  int s;
#define PATH(lit) (plen == sizeof(lit) - 1 && !memcmp(target, lit, plen))
  log_info(MOD, "control: %s", target);
  if (PATH("/stats") || PATH("/mock/stats"))
    return stats_json(srv, body);
  if (PATH("/time"))
    return buf_printf(body, "{\"now\":%lld}", (long long)market_now(srv));
  if (PATH("/drop")) {
    int count = 0;
    for (cl = srv->clients; cl; cl = next) {
      next = cl->next;
      if (cl->is_ws && !cl->closing) {
        client_close(cl); /* no close handshake */
        count++;
      }
    }
    return buf_printf(body, "{\"ok\":true,\"dropped\":%d}", count);
  }
  if (PATH("/stall")) {
    if (q_int(q, "on", 1, &n) != 0)
      goto bad;
    srv->stall = n != 0;
    for (cl = srv->clients; cl; cl = cl->next)
      if (ws_ready(cl))
        ws_set_read_stall(&cl->ws, srv->stall);
    return buf_printf(body, "{\"ok\":true,\"stall\":%s}",
                      srv->stall ? "true" : "false");
  }
  if (PATH("/pongs")) {
    if (q_int(q, "on", 1, &n) != 0)
      goto bad;
    srv->no_pong = n == 0;
    for (cl = srv->clients; cl; cl = cl->next)
      if (ws_ready(cl))
        ws_set_auto_pong(&cl->ws, !srv->no_pong);
    return buf_printf(body, "{\"ok\":true,\"answer_pings\":%s}",
                      srv->no_pong ? "false" : "true");
  }
  if (PATH("/shutdown")) {
    char raw[96], comb[160];
    int count = 0;
    int64_t now = market_now(srv);
    int rn = snprintf(raw, sizeof raw, "{\"e\":\"serverShutdown\",\"E\":%lld}",
                      (long long)now);
    int cn = snprintf(comb, sizeof comb,
                      "{\"stream\":\"!serverShutdown\",\"data\":%s}", raw);
    for (cl = srv->clients; cl; cl = cl->next)
      if (ws_ready(cl)) {
        if (cl->subs->combined)
          send_text(cl, comb, (size_t)cn);
        else
          send_text(cl, raw, (size_t)rn);
        count++;
      }
    return buf_printf(body, "{\"ok\":true,\"sent\":%d}", count);
  }
  if (PATH("/skip_depth") || PATH("/skip_trades")) {
    if (rest_query_get(q, "symbol", sym, sizeof sym) <= 0 ||
        q_int(q, "n", 1, &n) != 0 || n < 1 || srv->replay_mode)
      goto bad;
    s = mk_symbol_find(&srv->market, sym, strlen(sym));
    if (s < 0)
      goto bad;
    if (PATH("/skip_depth"))
      srv->gen[s].skip_depth = (int)n;
    else
      srv->gen[s].skip_trades = (int)n;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/duplicate")) {
    if (q_int(q, "n", 1, &n) != 0 || n < 0)
      goto bad;
    srv->dup_next = (int)n;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/malformed")) {
    if (rest_query_get(q, "kind", kind, sizeof kind) <= 0 ||
        q_int(q, "size", 100000, &n) != 0 || n < 16 || n > (64 << 20))
      goto bad;
    if (strcmp(kind, "badjson") && strcmp(kind, "missing") &&
        strcmp(kind, "mistyped") && strcmp(kind, "baddecimal") &&
        strcmp(kind, "utf8") && strcmp(kind, "oversize"))
      goto bad;
    send_special(srv, kind, (size_t)n, NULL);
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/rest_fault")) {
    if (q_int(q, "status", 0, &n) != 0 ||
        (n != 0 && n != 429 && n != 418 && n != 500 && n != 503) ||
        q_int(q, "count", 0, &v1) != 0 || q_int(q, "seconds", 0, &secs) != 0 ||
        q_int(q, "retry_after", 1, &ra) != 0)
      goto bad;
    srv->rest.force_status = (int)n;
    srv->rest.force_count = (int)v1;
    srv->rest.force_until = secs > 0 ? market_now(srv) + secs * 1000 : 0;
    srv->rest.force_retry_after = (int)ra;
    if (n != 0 && v1 == 0 && secs == 0)
      srv->rest.force_count = 1;
    if (n == 418) { /* a ban, from now on */
      srv->rest.force_status = 0;
      srv->rest.force_count = 0;
      srv->rest.force_until = 0;
      srv->rest.ban_until = market_now(srv) + ra * 1000;
      srv->rest.bans++;
    }
    if (n == 0) { /* clear faults, back-off and ban */
      srv->rest.ban_until = 0;
      srv->rest.backoff_until = 0;
      srv->rest.violations = 0;
    }
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/rest_delay")) {
    if (q_int(q, "ms", 0, &n) != 0 || n < 0 || n > 600000)
      goto bad;
    srv->rest.delay_ms = (int)n;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/empty_klines")) {
    if (rest_query_get(q, "symbol", sym, sizeof sym) <= 0 ||
        q_int(q, "from", 0, &v1) != 0 || q_int(q, "to", 0, &v2) != 0 ||
        srv->replay_mode)
      goto bad;
    s = mk_symbol_find(&srv->market, sym, strlen(sym));
    if (s < 0)
      goto bad;
    srv->market.sym[s].empty_from = v1;
    srv->market.sym[s].empty_to = v2;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/weight_limit")) {
    if (q_int(q, "limit", 6000, &n) != 0 || n < 1)
      goto bad;
    srv->rest.limit = (int)n;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/stale_depth")) {
    if (q_int(q, "n", 1, &n) != 0 || n < 0 || q_int(q, "ids", 200, &v1) != 0 ||
        v1 < 1 || srv->replay_mode)
      goto bad;
    srv->rest.stale_depth_count = (int)n;
    srv->rest.stale_depth_ids = (int)v1;
    return buf_append_str(body, "{\"ok\":true}");
  }
  if (PATH("/cross_depth")) {
    if (rest_query_get(q, "symbol", sym, sizeof sym) <= 0 || srv->replay_mode)
      goto bad;
    s = mk_symbol_find(&srv->market, sym, strlen(sym));
    if (s < 0)
      goto bad;
    srv->gen[s].cross_depth = 1;
    return buf_append_str(body, "{\"ok\":true}");
  }
  *status = 404;
  return buf_append_str(body, "{\"ok\":false,\"error\":\"unknown command\"}");
bad:
  *status = 400;
  return buf_append_str(body, "{\"ok\":false,\"error\":\"bad parameters\"}");
#undef PATH
}

/* Sends one malformed or oversized frame to every open WebSocket client.
 * The frame is wrapped (combined clients) in the client's first stream. */
static void send_special(struct mock_server *srv, const char *kind, size_t size,
                         const char *payload_override) {
  struct mclient *cl;
  struct buf p, f;
  const char *sname = "btcusdt@aggTrade", *symname = "BTCUSDT";
  char namebuf[96];
  buf_init(&p, (size_t)80 << 20);
  buf_init(&f, (size_t)80 << 20);
  (void)payload_override;
  for (cl = srv->clients; cl; cl = cl->next) {
    int64_t now = market_now(srv);
    if (!ws_ready(cl))
      continue;
    if (srv->replay_mode && cl->subs->nnames)
      sname = cl->subs->names[0];
    else if (!srv->replay_mode && cl->subs->n) {
      int i, pick = cl->subs->ids[0];
      for (i = 0; i < cl->subs->n; i++)
        if (cl->subs->ids[i] % ST_NKINDS == ST_AGGTRADE) {
          pick = cl->subs->ids[i];
          break;
        }
      st_name(&srv->market, pick, namebuf, sizeof namebuf);
      sname = namebuf;
      symname = srv->market.sym[pick / ST_NKINDS].name;
    }
    buf_reset(&p);
    buf_reset(&f);
    if (!strcmp(kind, "badjson"))
      buf_printf(&p, "{\"e\":\"aggTrade\",\"E\":%lld,\"s\":\"%s\",\"a\":",
                 (long long)now, symname);
    else if (!strcmp(kind, "missing"))
      buf_printf(&p,
                 "{\"e\":\"aggTrade\",\"E\":%lld,\"s\":\"%s\",\"a\":1,"
                 "\"q\":\"1.00000000\",\"f\":1,\"l\":1,\"T\":%lld,"
                 "\"m\":false,\"M\":true}",
                 (long long)now, symname, (long long)now);
    else if (!strcmp(kind, "mistyped"))
      buf_printf(&p,
                 "{\"e\":\"aggTrade\",\"E\":\"%lld\",\"s\":\"%s\",\"a\":"
                 "\"x1\",\"p\":1.5,\"q\":\"1.00000000\",\"f\":1,\"l\":1,"
                 "\"T\":%lld,\"m\":\"no\",\"M\":true}",
                 (long long)now, symname, (long long)now);
    else if (!strcmp(kind, "baddecimal"))
      buf_printf(&p,
                 "{\"e\":\"aggTrade\",\"E\":%lld,\"s\":\"%s\",\"a\":1,"
                 "\"p\":\"12.3.4e\",\"q\":\"--1\",\"f\":1,\"l\":1,"
                 "\"T\":%lld,\"m\":false,\"M\":true}",
                 (long long)now, symname, (long long)now);
    else if (!strcmp(kind, "utf8"))
      buf_printf(&p,
                 "{\"e\":\"aggTrade\",\"E\":%lld,\"s\":\"BTC\xff\xfe\xc3"
                 "USDT\",\"a\":1,\"p\":\"1.00000000\",\"q\":\"1.00000000\","
                 "\"f\":1,\"l\":1,\"T\":%lld,\"m\":false,\"M\":true}",
                 (long long)now, (long long)now);
    else { /* oversize: valid JSON of exactly |size| bytes on the wire */
      size_t fixed;
      if (cl->subs->combined)
        buf_printf(&f, "{\"stream\":\"%s\",\"data\":", sname);
      buf_printf(&f, "{\"e\":\"aggTrade\",\"E\":%lld,\"s\":\"%s\",\"pad\":\"",
                 (long long)now, symname);
      fixed = f.len + (cl->subs->combined ? 3 : 2);
      if (size > fixed && buf_reserve(&f, size - fixed) == 0) {
        memset(f.data + f.len, 'x', size - fixed);
        f.len += size - fixed;
        f.data[f.len] = '\0';
      }
      buf_append_str(&f, cl->subs->combined ? "\"}}" : "\"}");
      send_text(cl, f.data, f.len);
      continue;
    }
    if (cl->subs->combined) {
      buf_printf(&f, "{\"stream\":\"%s\",\"data\":", sname);
      buf_append(&f, p.data, p.len);
      buf_append_char(&f, '}');
      send_text(cl, f.data, f.len);
    } else {
      send_text(cl, p.data, p.len);
    }
  }
  buf_free(&p);
  buf_free(&f);
}

/* ---------------------------------------------------------- lifecycle */

static void on_signal(uv_signal_t *h, int signum) {
  struct mock_server *srv = h->data;
  log_info(MOD, "signal %d: stopping", signum);
  mock_server_stop(srv);
}

int mock_server_init(struct mock_server *srv, uv_loop_t *loop,
                     const struct mock_options *opt, char *err, size_t errlen) {
  int rc, limit;
  memset(srv, 0, sizeof *srv);
  srv->loop = loop;
  srv->opt = *opt;
  if (!srv->opt.host)
    srv->opt.host = "127.0.0.1";
  if (!srv->opt.client_queue_max)
    srv->opt.client_queue_max = 8u << 20;
  buf_init(&srv->fb, 4u << 20);
  srv->fast = !opt->replay_dir && opt->rate <= 0;
  if (opt->replay_dir) {
    srv->replay_mode = 1;
    rc = replay_load(&srv->replay, opt->replay_dir, err, errlen);
    if (rc != 0)
      return rc;
  }
  rc = mk_market_init(
      &srv->market, opt->symbols > 0 ? opt->symbols : 10, opt->seed,
      srv->fast ? 1000.0 * (opt->symbols > 0 ? opt->symbols : 10) : opt->rate);
  if (rc != 0) {
    snprintf(err, errlen, "bad --symbols or --rate");
    return rc;
  }
  limit = opt->weight_limit;
  if (limit <= 0)
    limit = (srv->replay_mode && srv->replay.exinfo_weight_limit > 0)
                ? srv->replay.exinfo_weight_limit
                : 6000;
  rc = rest_state_init(&srv->rest, &srv->market,
                       srv->replay_mode ? &srv->replay : NULL, limit);
  if (rc != 0)
    return rc;
  if (opt->ban_after > 0)
    srv->rest.ban_after = opt->ban_after;
  if (opt->ban_secs > 0)
    srv->rest.ban_secs = opt->ban_secs;
  srv->refs = calloc((size_t)srv->market.nsym * ST_NKINDS, sizeof *srv->refs);
  srv->frames_per_stream = calloc((size_t)srv->market.nsym * ST_NKINDS,
                                  sizeof *srv->frames_per_stream);
  srv->gen = calloc((size_t)srv->market.nsym, sizeof *srv->gen);
  if (!srv->refs || !srv->frames_per_stream || !srv->gen)
    return BL_ENOMEM;
  if (opt->tls_cert || opt->tls_key) {
    if (!opt->tls_cert || !opt->tls_key) {
      snprintf(err, errlen, "--tls-cert and --tls-key go together");
      return BL_EINVAL;
    }
    rc =
        tls_ctx_new_server(&srv->tls, opt->tls_cert, opt->tls_key, err, errlen);
    if (rc != 0)
      return rc;
  }
  srv->now = wall_ms();
  return 0;
}

static int listen_on(struct mock_server *srv, uv_tcp_t *t, int port,
                     uv_connection_cb cb, int *bound, char *err,
                     size_t errlen) {
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  rc = uv_ip4_addr(srv->opt.host, port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    rc = uv_ip6_addr(srv->opt.host, port, (struct sockaddr_in6 *)&ss);
  if (rc != 0) {
    snprintf(err, errlen, "bad address %s", srv->opt.host);
    return rc;
  }
  uv_tcp_init(srv->loop, t);
  t->data = srv;
  rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)t, 512, cb);
  if (rc == 0)
    rc = uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", srv->opt.host, port,
             uv_strerror(rc));
    return rc;
  }
  *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

int mock_server_start(struct mock_server *srv, char *err, size_t errlen) {
  int rc, port = 0, cport = 0;
  rc = listen_on(srv, &srv->listener, srv->opt.port, on_listen_main, &port, err,
                 errlen);
  if (rc != 0)
    return rc;
  rc = listen_on(srv, &srv->control, srv->opt.control_port, on_listen_control,
                 &cport, err, errlen);
  if (rc != 0)
    return rc;
  srv->opt.port = port;
  srv->opt.control_port = cport;
  uv_timer_init(srv->loop, &srv->tick);
  srv->tick.data = srv;
  uv_timer_start(&srv->tick, on_tick, 10, 10);
  uv_idle_init(srv->loop, &srv->idle);
  srv->idle.data = srv;
  uv_signal_init(srv->loop, &srv->sigint);
  uv_signal_init(srv->loop, &srv->sigterm);
  srv->sigint.data = srv->sigterm.data = srv;
  uv_signal_start(&srv->sigint, on_signal, SIGINT);
  uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
  if (srv->opt.port_file) {
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", srv->opt.port_file);
    f = fopen(tmp, "w");
    if (!f || fprintf(f, "port=%d\ncontrol_port=%d\n", port, cport) < 0 ||
        fclose(f) != 0 || rename(tmp, srv->opt.port_file) != 0) {
      snprintf(err, errlen, "cannot write %s", srv->opt.port_file);
      return BL_EIO;
    }
  }
  log_info(MOD, "listening on %s:%d (%s), control on %s:%d; %s, %d symbols",
           srv->opt.host, port, srv->tls ? "TLS" : "plain", srv->opt.host,
           cport,
           srv->replay_mode ? "replay"
           : srv->fast      ? "synthetic, as fast as possible"
                            : "synthetic, real time",
           srv->market.nsym);
  return 0;
}

void mock_server_stop(struct mock_server *srv) {
  struct mclient *cl, *next;
  if (srv->stopping)
    return;
  srv->stopping = 1;
  for (cl = srv->clients; cl; cl = next) {
    next = cl->next;
    client_close(cl);
  }
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_close((uv_handle_t *)&srv->control, NULL);
  uv_close((uv_handle_t *)&srv->tick, NULL);
  uv_close((uv_handle_t *)&srv->idle, NULL);
  uv_close((uv_handle_t *)&srv->sigint, NULL);
  uv_close((uv_handle_t *)&srv->sigterm, NULL);
}

void mock_server_free(struct mock_server *srv) {
  rest_state_free(&srv->rest);
  mk_market_free(&srv->market);
  if (srv->replay_mode)
    replay_free(&srv->replay);
  if (srv->tls)
    tls_ctx_free(srv->tls);
  free(srv->refs);
  free(srv->frames_per_stream);
  free(srv->gen);
  buf_free(&srv->fb);
}
