/*
 * ws.c: WebSocket connections on wslay 1.1.1 over a conn (ws.h has the
 * contract; the I/O-free handshake pieces live in ws_proto.c).
 *
 * State kept per ws (struct ws_impl, malloc'd at connect/accept, freed after
 * the conn and the three timers have closed): the conn (our own for a
 * client, the caller's for a server), the wslay context, the handshake
 * input (client), the plaintext waiting for wslay, the message being
 * reassembled, the outgoing FIFO and the pacer's ring of send times, the
 * close code/reason the peer sent, and the timers: |t_ctl| (connect +
 * upgrade timeout, close-handshake timeout, deferred server on_open),
 * |t_ka| (keepalive ping and read timeout), |t_pace| (releases the FIFO).
 *
 * Receiving: wslay runs with no_buffering; the frame callbacks append data
 * frames straight into one reusable struct buf (which always keeps a NUL
 * after its bytes), so a message is copied exactly once out of wslay's 4 KiB
 * read buffer and on_message gets a NUL-terminated view with no further
 * copy. The message limit is checked per message before anything is
 * appended (wslay's own max_recv_msg_length, set to the same value, guards
 * single frames and closes 1009 itself).
 *
 * Sending and the pacer: ws_send_* append to our FIFO; pump() hands one
 * frame at a time to wslay, only when wslay's queue is empty, the conn is
 * below its high-water mark and fewer than max_msgs_per_sec frames went out
 * in the last second (plus a 25 ms guard), so the recorded send times are
 * the real ones. Pongs are queued by wslay itself when a ping arrives; they
 * are never delayed (wslay sends control frames first, and they bypass our
 * FIFO) but they are recorded in the ring, so data frames wait for them.
 * Client keepalive pings enter the FIFO at its head. Flushing is done right
 * away (or just after wslay_event_recv returns when called from inside a
 * callback), not coalesced per loop iteration.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/base64.h>
#include <wslay/wslay.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "net/ws.h"

#define WS_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define WS_DEFAULT_MAX_QUEUED (4u * 1024u * 1024u)
#define WS_CLOSE_TIMEOUT_MS 5000
#define WS_PACER_WINDOW_NS (1025ull * 1000000ull) /* 1 s + 25 ms guard */
#define WS_RX_MAX (4u * 1024u * 1024u)

struct ws_out {
  struct ws_out *next;
  uint8_t opcode;
  size_t len;
  char data[];
};

/* Outgoing frame parser used to drop pongs when auto-pong is off. */
struct pong_filter {
  uint8_t hdr[14];
  size_t hlen, hneed;
  uint64_t remaining; /* payload bytes left in the current frame */
  int in_payload, drop;
};

struct ws_impl {
  struct ws *ws;
  struct conn own_conn;
  struct conn *c;
  int server;
  wslay_event_context_ptr ctx;
  struct ws_url url;
  char key[32];

  struct buf hs; /* client: bytes of the HTTP answer */
  struct buf rx; /* plaintext not yet pulled by wslay */
  size_t rx_off;
  const char *in_ptr; /* the conn's read, pulled in place during on_read */
  size_t in_len, in_off;
  int drain_wanted; /* a send returned BL_EFULL: on_drain owed */
  struct buf msg;   /* data message being reassembled */
  int in_ctrl, msg_binary, msg_discard;

  struct ws_out *oq_head, *oq_tail;
  size_t oq_bytes;
  uint64_t *ring; /* pacer: send times (uv_hrtime) of the last N frames */
  unsigned ring_n, ring_pos, ring_cnt;

  uv_timer_t t_ctl, t_ka, t_pace;
  int handles_open;
  int conn_started, conn_closing, conn_closed;
  int open_pending; /* server: on_open deferred to the loop */
  int in_wslay;
  int finished; /* on_close delivered (or ws_close before it) */
  int closing;  /* ws_close called */
  void (*close_cb)(struct ws *ws);
  int shutdown_called;
  int err_status; /* error to report when the close handshake ends */
  int peer_code;
  char peer_reason[128];
  uint64_t last_ping_ms;
  int auto_pong, stalled;
  struct pong_filter pf;
  uint8_t mask_pool[256];
  size_t mask_pos;
};

static void ws_finish(struct ws_impl *wi, int status);
static void ws_flush(struct ws_impl *wi);

static void ws_fail(struct ws_impl *wi, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ws_fail(struct ws_impl *wi, int status, const char *fmt, ...) {
  if (wi->finished)
    return;
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wi->ws->errstr, sizeof wi->ws->errstr, fmt, ap);
    va_end(ap);
  }
  ws_finish(wi, status);
}

/* ---- memory and teardown ---- */

static void ws_maybe_free(struct ws_impl *wi) {
  struct ws *ws = wi->ws;
  void (*cb)(struct ws *);
  struct ws_out *o, *next;
  if (!wi->closing || wi->handles_open > 0 ||
      (wi->conn_started && !wi->conn_closed))
    return;
  if (wi->ctx)
    wslay_event_context_free(wi->ctx);
  for (o = wi->oq_head; o; o = next) {
    next = o->next;
    free(o);
  }
  buf_free(&wi->hs);
  buf_free(&wi->rx);
  buf_free(&wi->msg);
  free(wi->ring);
  cb = wi->close_cb;
  free(wi);
  if (ws == NULL) /* detached by impl_abort */
    return;
  ws->impl = NULL;
  ws->state = WS_CLOSED;
  if (cb)
    cb(ws);
}

static void on_ws_timer_closed(uv_handle_t *h) {
  struct ws_impl *wi = h->data;
  wi->handles_open--;
  ws_maybe_free(wi);
}

static void on_ws_conn_closed(struct conn *c) {
  struct ws_impl *wi = c->data;
  wi->conn_closed = 1;
  ws_maybe_free(wi);
}

static void close_conn(struct ws_impl *wi) {
  if (wi->conn_started && !wi->conn_closing) {
    wi->conn_closing = 1;
    conn_close(wi->c, on_ws_conn_closed);
  }
}

static void stop_timers(struct ws_impl *wi) {
  uv_timer_stop(&wi->t_ctl);
  uv_timer_stop(&wi->t_ka);
  uv_timer_stop(&wi->t_pace);
}

/* Ends the connection once: reports on_close and lets the conn go. */
static void ws_finish(struct ws_impl *wi, int status) {
  struct ws *ws = wi->ws;
  if (wi->finished)
    return;
  wi->finished = 1;
  ws->state = WS_CLOSED;
  stop_timers(wi);
  if (wi->ctx) {
    wslay_event_shutdown_read(wi->ctx);
    wslay_event_shutdown_write(wi->ctx);
  }
  close_conn(wi);
  if (status != 0 && ws->errstr[0] == '\0')
    snprintf(ws->errstr, sizeof ws->errstr, "%s", bl_strerror(status));
  if (ws->cb.on_close)
    ws->cb.on_close(ws, status, wi->peer_code, wi->peer_reason);
}

void ws_close(struct ws *ws, void (*close_cb)(struct ws *ws)) {
  struct ws_impl *wi = ws->impl;
  if (wi == NULL) {
    ws->state = WS_CLOSED;
    if (close_cb)
      close_cb(ws);
    return;
  }
  if (wi->closing)
    return;
  wi->closing = 1;
  wi->close_cb = close_cb;
  wi->finished = 1; /* no on_close after ws_close */
  ws->state = WS_CLOSED;
  if (wi->ctx) {
    wslay_event_shutdown_read(wi->ctx);
    wslay_event_shutdown_write(wi->ctx);
  }
  close_conn(wi);
  uv_close((uv_handle_t *)&wi->t_ctl, on_ws_timer_closed);
  uv_close((uv_handle_t *)&wi->t_ka, on_ws_timer_closed);
  uv_close((uv_handle_t *)&wi->t_pace, on_ws_timer_closed);
  ws_maybe_free(wi);
}

/* ---- pacer ---- */

static int pacer_allows(struct ws_impl *wi, uint64_t now, uint64_t *wait_ms) {
  uint64_t oldest;
  if (wi->ring_n == 0 || wi->ring_cnt < wi->ring_n)
    return 1;
  oldest = wi->ring[wi->ring_pos];
  if (now - oldest >= WS_PACER_WINDOW_NS)
    return 1;
  *wait_ms = (oldest + WS_PACER_WINDOW_NS - now) / 1000000 + 1;
  return 0;
}

static void pacer_record(struct ws_impl *wi, uint64_t now) {
  if (wi->ring_n == 0)
    return;
  wi->ring[wi->ring_pos] = now;
  wi->ring_pos = (wi->ring_pos + 1) % wi->ring_n;
  if (wi->ring_cnt < wi->ring_n)
    wi->ring_cnt++;
}

static void on_pace_timer(uv_timer_t *t) {
  struct ws_impl *wi = t->data;
  ws_flush(wi);
}

/* Moves frames from our FIFO into wslay while the pacer, wslay's queue and
 * the conn allow; see the file comment. */
static void pump(struct ws_impl *wi) {
  struct ws *ws = wi->ws;
  while (wi->oq_head != NULL && ws->state == WS_OPEN && !wi->finished) {
    struct ws_out *o = wi->oq_head;
    struct wslay_event_msg m;
    uint64_t now = uv_hrtime(), wait_ms = 0;
    int rv;
    if (wslay_event_get_queued_msg_count(wi->ctx) > 0)
      return; /* after the flush, or on_drain */
    if (conn_write_queue_size(wi->c) > wi->c->opt.write_high_water)
      return; /* on_drain */
    if (!pacer_allows(wi, now, &wait_ms)) {
      if (!uv_is_active((uv_handle_t *)&wi->t_pace))
        uv_timer_start(&wi->t_pace, on_pace_timer, wait_ms, 0);
      return;
    }
    m.opcode = o->opcode;
    m.msg = (const uint8_t *)o->data;
    m.msg_length = o->len;
    rv = wslay_event_queue_msg(wi->ctx, &m); /* copies */
    if (rv != 0) {
      ws_fail(wi, rv == WSLAY_ERR_NOMEM ? BL_ENOMEM : BL_EPROTO,
              "wslay_event_queue_msg: %d", rv);
      return;
    }
    wi->oq_head = o->next;
    if (wi->oq_head == NULL)
      wi->oq_tail = NULL;
    wi->oq_bytes -= o->len;
    pacer_record(wi, now);
    ws->frames_out++;
    ws->bytes_out += o->len;
    free(o);
    if (wi->in_wslay)
      return; /* the flush after wslay_event_recv continues */
    rv = wslay_event_send(wi->ctx);
    if (rv != 0) {
      ws_fail(wi, BL_EPROTO, "wslay_event_send: %d", rv);
      return;
    }
  }
}

/* After a close frame went one way or both: end or wait. */
static void check_close_state(struct ws_impl *wi) {
  int sent = wslay_event_get_close_sent(wi->ctx);
  int recvd = wslay_event_get_close_received(wi->ctx);
  if (wi->finished || !sent)
    return;
  if (!wi->shutdown_called && !recvd && wi->err_status == 0) {
    /* wslay failed the connection itself (bad frame, too big, UTF-8). */
    int code = wslay_event_get_status_code_sent(wi->ctx);
    wi->err_status =
        code == WSLAY_CODE_MESSAGE_TOO_BIG ? BL_ETOOBIG : BL_EPROTO;
    snprintf(wi->ws->errstr, sizeof wi->ws->errstr,
             "closed with %d after a protocol violation by the peer", code);
  }
  if (recvd || !wslay_event_get_read_enabled(wi->ctx)) {
    ws_finish(wi, wi->err_status);
    return;
  }
  wi->ws->state = WS_CLOSING; /* our close is out; wait for the answer */
}

static void ws_flush(struct ws_impl *wi) {
  int rv;
  if (wi->finished || wi->ctx == NULL || wi->in_wslay)
    return;
  rv = wslay_event_send(wi->ctx);
  if (rv != 0) {
    ws_fail(wi, BL_EPROTO, "wslay_event_send: %d", rv);
    return;
  }
  pump(wi);
  if (!wi->finished)
    check_close_state(wi);
  if (!wi->finished && wi->drain_wanted) {
    struct ws *ws = wi->ws;
    if (ws_queued_bytes(ws) <= ws->opt.max_queued_bytes / 2) {
      wi->drain_wanted = 0;
      if (ws->on_drain)
        ws->on_drain(ws);
    } else if (!uv_is_active((uv_handle_t *)&wi->t_pace)) {
      /* Nothing else may wake us (the conn below its own mark): poll. */
      uv_timer_start(&wi->t_pace, on_pace_timer, 5, 0);
    }
  }
}

static void process_input(struct ws_impl *wi) {
  int rv;
  if (wi->finished || wi->ctx == NULL || wi->open_pending)
    return;
  wi->in_wslay++;
  rv = wslay_event_recv(wi->ctx);
  wi->in_wslay--;
  if (wi->finished)
    return;
  if (rv != 0) {
    ws_fail(wi, rv == WSLAY_ERR_NOMEM ? BL_ENOMEM : BL_EPROTO,
            "wslay_event_recv: %d", rv);
    return;
  }
  if (wi->rx_off >= wi->rx.len) {
    buf_reset(&wi->rx);
    wi->rx_off = 0;
  }
  ws_flush(wi);
}

/* ---- wslay callbacks ---- */

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *out, size_t len,
                        int flags, void *ud) {
  struct ws_impl *wi = ud;
  size_t n = wi->rx.len - wi->rx_off;
  (void)flags;
  if (wi->finished) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  if (n > 0) { /* older bytes first */
    if (n > len)
      n = len;
    memcpy(out, wi->rx.data + wi->rx_off, n);
    wi->rx_off += n;
    return (ssize_t)n;
  }
  n = wi->in_ptr ? wi->in_len - wi->in_off : 0;
  if (n == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (n > len)
    n = len;
  memcpy(out, wi->in_ptr + wi->in_off, n);
  wi->in_off += n;
  return (ssize_t)n;
}

/* Drops pong frames from the outgoing bytes (auto-pong off). Fills |keep|
 * with the bytes to send and returns their count; |pf| is advanced only
 * when |commit|. */
static size_t filter_pongs(struct pong_filter *pf, const uint8_t *d, size_t len,
                           uint8_t *keep) {
  size_t i = 0, k = 0;
  while (i < len) {
    if (!pf->in_payload) {
      uint8_t b = d[i++];
      if (pf->hlen == 0) {
        pf->drop = (b & 0x0f) == WSLAY_PONG;
        pf->hneed = 2;
      }
      pf->hdr[pf->hlen++] = b;
      if (!pf->drop)
        keep[k++] = b;
      if (pf->hlen == 2) {
        unsigned l7 = pf->hdr[1] & 0x7f;
        pf->hneed = 2 +
                    (l7 == 126   ? 2
                     : l7 == 127 ? 8
                                 : 0) +
                    ((pf->hdr[1] & 0x80) ? 4 : 0);
      }
      if (pf->hlen == pf->hneed) {
        unsigned l7 = pf->hdr[1] & 0x7f;
        uint64_t plen = l7;
        if (l7 == 126)
          plen = ((uint64_t)pf->hdr[2] << 8) | pf->hdr[3];
        else if (l7 == 127) {
          plen = 0;
          for (int j = 0; j < 8; j++)
            plen = (plen << 8) | pf->hdr[2 + j];
        }
        pf->hlen = 0;
        pf->remaining = plen;
        pf->in_payload = plen > 0;
      }
    } else {
      size_t n = len - i;
      if (n > pf->remaining)
        n = (size_t)pf->remaining;
      if (!pf->drop) {
        memcpy(keep + k, d + i, n);
        k += n;
      }
      i += n;
      pf->remaining -= n;
      if (pf->remaining == 0)
        pf->in_payload = 0;
    }
  }
  return k;
}

static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *data,
                        size_t len, int flags, void *ud) {
  struct ws_impl *wi = ud;
  int rv;
  (void)flags;
  if (wi->finished) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  if (!wi->auto_pong) {
    struct pong_filter save = wi->pf;
    uint8_t *keep = malloc(len ? len : 1);
    size_t k;
    if (keep == NULL) {
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
    k = filter_pongs(&wi->pf, data, len, keep);
    rv = k ? conn_write(wi->c, keep, k) : 0;
    free(keep);
    if (rv != 0)
      wi->pf = save;
  } else {
    rv = conn_write(wi->c, data, len);
  }
  if (rv == BL_EFULL) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (rv != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int wsl_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       void *ud) {
  struct ws_impl *wi = ud;
  (void)ctx;
  while (len > 0) {
    size_t n;
    if (wi->mask_pos >= sizeof wi->mask_pool) {
      if (getrandom(wi->mask_pool, sizeof wi->mask_pool, 0) !=
          (ssize_t)sizeof wi->mask_pool)
        return -1;
      wi->mask_pos = 0;
    }
    n = sizeof wi->mask_pool - wi->mask_pos;
    if (n > len)
      n = len;
    memcpy(buf, wi->mask_pool + wi->mask_pos, n);
    wi->mask_pos += n;
    buf += n;
    len -= n;
  }
  return 0;
}

static void wsl_frame_start(wslay_event_context_ptr ctx,
                            const struct wslay_event_on_frame_recv_start_arg *a,
                            void *ud) {
  struct ws_impl *wi = ud;
  struct ws *ws = wi->ws;
  ws->frames_in++;
  ws->last_rx_ms = uv_now(ws->loop);
  if (wslay_is_ctrl_frame(a->opcode)) {
    wi->in_ctrl = 1;
    return;
  }
  wi->in_ctrl = 0;
  if (a->opcode != WSLAY_CONTINUATION_FRAME) {
    buf_reset(&wi->msg);
    wi->msg_binary = a->opcode == WSLAY_BINARY_FRAME;
    wi->msg_discard = 0;
  }
  if (wi->msg_discard)
    return;
  if (a->payload_length > ws->opt.max_message - wi->msg.len) {
    wi->msg_discard = 1;
    wi->err_status = BL_ETOOBIG;
    snprintf(ws->errstr, sizeof ws->errstr,
             "message over %zu bytes: closed with 1009", ws->opt.max_message);
    wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG, NULL, 0);
    wslay_event_shutdown_read(ctx);
  }
}

static void wsl_frame_chunk(wslay_event_context_ptr ctx,
                            const struct wslay_event_on_frame_recv_chunk_arg *a,
                            void *ud) {
  struct ws_impl *wi = ud;
  wi->ws->bytes_in += a->data_length;
  if (wi->in_ctrl || wi->msg_discard)
    return;
  if (buf_append(&wi->msg, a->data, a->data_length) != 0) {
    wi->msg_discard = 1;
    wi->err_status = BL_ENOMEM;
    wslay_event_queue_close(ctx, WSLAY_CODE_INTERNAL_SERVER_ERROR, NULL, 0);
    wslay_event_shutdown_read(ctx);
  }
}

static void wsl_frame_end(wslay_event_context_ptr ctx, void *ud) {
  struct ws_impl *wi = ud;
  (void)ctx;
  wi->in_ctrl = 0;
}

static void wsl_msg(wslay_event_context_ptr ctx,
                    const struct wslay_event_on_msg_recv_arg *a, void *ud) {
  struct ws_impl *wi = ud;
  struct ws *ws = wi->ws;
  (void)ctx;
  switch (a->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    if (wi->msg_discard || wi->finished)
      return;
    if (ws->cb.on_message) {
      /* buf keeps a NUL after its bytes; an empty, never-grown buffer has
       * no storage, hence the literal. */
      ws->cb.on_message(ws, wi->msg_binary, wi->msg.data ? wi->msg.data : "",
                        wi->msg.len);
    }
    if (!wi->finished)
      buf_reset(&wi->msg);
    break;
  case WSLAY_PING:
    if (wi->auto_pong && !wi->finished) {
      /* wslay queued the pong: it counts toward the pacer window. */
      pacer_record(wi, uv_hrtime());
      ws->frames_out++;
    }
    break;
  case WSLAY_PONG:
    if (ws->cb.on_pong && !wi->finished)
      ws->cb.on_pong(ws, a->msg ? (const char *)a->msg : "", a->msg_length);
    break;
  case WSLAY_CONNECTION_CLOSE: {
    size_t n = a->msg_length >= 2 ? a->msg_length - 2 : 0;
    wi->peer_code = a->status_code;
    if (n >= sizeof wi->peer_reason)
      n = sizeof wi->peer_reason - 1;
    if (n)
      memcpy(wi->peer_reason, a->msg + 2, n);
    wi->peer_reason[n] = '\0';
    if (ws->state == WS_OPEN)
      ws->state = WS_CLOSING;
    break;
  }
  default:
    break;
  }
}

static int start_wslay(struct ws_impl *wi) {
  struct wslay_event_callbacks cbs = {
      wsl_recv,        wsl_send,      wsl_genmask, wsl_frame_start,
      wsl_frame_chunk, wsl_frame_end, wsl_msg,
  };
  int rv = wi->server ? wslay_event_context_server_init(&wi->ctx, &cbs, wi)
                      : wslay_event_context_client_init(&wi->ctx, &cbs, wi);
  if (rv != 0)
    return BL_ENOMEM;
  wslay_event_config_set_no_buffering(wi->ctx, 1);
  wslay_event_config_set_max_recv_msg_length(wi->ctx, wi->ws->opt.max_message);
  return 0;
}

/* ---- timers ---- */

static void on_ctl_timer(uv_timer_t *t) {
  struct ws_impl *wi = t->data;
  struct ws *ws = wi->ws;
  if (wi->open_pending) { /* server: deferred on_open, then early input */
    wi->open_pending = 0;
    if (ws->cb.on_open)
      ws->cb.on_open(ws);
    process_input(wi);
    return;
  }
  if (ws->state == WS_CONNECTING) {
    ws_fail(wi, BL_ETIMEDOUT, "connect and upgrade timed out after %llu ms",
            (unsigned long long)ws->opt.connect_timeout_ms);
    return;
  }
  ws_fail(wi, wi->err_status ? wi->err_status : BL_ETIMEDOUT,
          "no close answer from the peer within %llu ms",
          (unsigned long long)ws->opt.close_timeout_ms);
}

static void on_ka_timer(uv_timer_t *t) {
  struct ws_impl *wi = t->data;
  struct ws *ws = wi->ws;
  uint64_t now = uv_now(ws->loop), next = UINT64_MAX;
  if (wi->finished || ws->state != WS_OPEN)
    return;
  if (ws->opt.read_timeout_ms) {
    uint64_t due = ws->last_rx_ms + ws->opt.read_timeout_ms;
    if (now >= due) {
      ws_fail(wi, BL_ETIMEDOUT, "nothing received for %llu ms",
              (unsigned long long)(now - ws->last_rx_ms));
      return;
    }
    next = due - now;
  }
  if (ws->opt.ping_interval_ms) {
    uint64_t quiet =
        ws->last_rx_ms > wi->last_ping_ms ? ws->last_rx_ms : wi->last_ping_ms;
    uint64_t due = quiet + ws->opt.ping_interval_ms;
    if (now >= due) {
      wi->last_ping_ms = now;
      ws_send_ping(ws, "", 0);
      if (wi->finished)
        return;
      due = now + ws->opt.ping_interval_ms;
    }
    if (due - now < next)
      next = due - now;
  }
  if (next != UINT64_MAX)
    uv_timer_start(&wi->t_ka, on_ka_timer, next ? next : 1, 0);
}

static void start_open_timers(struct ws_impl *wi) {
  struct ws *ws = wi->ws;
  ws->last_rx_ms = uv_now(ws->loop);
  wi->last_ping_ms = ws->last_rx_ms;
  if (ws->opt.read_timeout_ms || ws->opt.ping_interval_ms) {
    uint64_t first = UINT64_MAX;
    if (ws->opt.read_timeout_ms)
      first = ws->opt.read_timeout_ms;
    if (ws->opt.ping_interval_ms && ws->opt.ping_interval_ms < first)
      first = ws->opt.ping_interval_ms;
    uv_timer_start(&wi->t_ka, on_ka_timer, first, 0);
  }
}

/* ---- conn callbacks ---- */

static void wsc_on_open(struct conn *c) {
  struct ws_impl *wi = c->data;
  struct buf req;
  int rv;
  buf_init(&req, WS_MAX_HEAD);
  rv = ws_handshake_build_request(&req, &wi->url, wi->key,
                                  wi->ws->opt.extra_headers);
  if (rv == 0)
    rv = conn_write(c, req.data, req.len);
  buf_free(&req);
  if (rv != 0)
    ws_fail(wi, rv, "sending the upgrade request: %s", bl_strerror(rv));
}

static void client_handshake_input(struct ws_impl *wi, const char *d,
                                   size_t n) {
  struct ws *ws = wi->ws;
  long hl;
  int rv = buf_append(&wi->hs, d, n);
  if (rv != 0) {
    ws_fail(wi, BL_ETOOBIG, "upgrade answer over %d bytes", WS_MAX_HEAD);
    return;
  }
  hl = ws_handshake_parse_response(wi->hs.data, wi->hs.len, wi->key,
                                   &ws->http_status);
  if (hl == 0)
    return;
  if (hl < 0) {
    if (hl == BL_EHANDSHAKE && ws->http_status != 101)
      ws_fail(wi, BL_EHANDSHAKE, "upgrade refused: HTTP %d", ws->http_status);
    else
      ws_fail(wi, hl == BL_ETOOBIG ? BL_ETOOBIG : BL_EHANDSHAKE,
              "bad upgrade answer (%s)", bl_errname((int)hl));
    return;
  }
  rv = start_wslay(wi);
  if (rv == 0)
    rv = buf_append(&wi->rx, wi->hs.data + hl, wi->hs.len - (size_t)hl);
  buf_free(&wi->hs);
  if (rv != 0) {
    ws_fail(wi, rv, "starting the session: %s", bl_strerror(rv));
    return;
  }
  uv_timer_stop(&wi->t_ctl);
  ws->state = WS_OPEN;
  start_open_timers(wi);
  if (ws->cb.on_open)
    ws->cb.on_open(ws);
  process_input(wi); /* frames that came with the 101 go to wslay first */
}

static void wsc_on_read(struct conn *c, const char *d, size_t n) {
  struct ws_impl *wi = c->data;
  struct ws *ws = wi->ws;
  if (wi->finished)
    return;
  ws->last_rx_ms = uv_now(ws->loop);
  ws->rx_ns = uv_hrtime();
  if (ws->state == WS_CONNECTING && !wi->server) {
    client_handshake_input(wi, d, n);
    return;
  }
  if (wi->open_pending || wi->rx.len > wi->rx_off) {
    if (buf_append(&wi->rx, d, n) != 0) {
      ws_fail(wi, BL_ETOOBIG, "receive buffer over %u bytes",
              (unsigned)WS_RX_MAX);
      return;
    }
    process_input(wi);
    return;
  }
  /* The common case: wslay pulls straight from the conn's buffer. Bytes it
   * leaves (it stops reading only once the connection is closing) are
   * dropped with the buffer. */
  wi->in_ptr = d;
  wi->in_len = n;
  wi->in_off = 0;
  process_input(wi); /* |wi| outlives this: it is freed from uv close cbs */
  wi->in_ptr = NULL;
  wi->in_len = wi->in_off = 0;
}

static void wsc_on_error(struct conn *c, int status) {
  struct ws_impl *wi = c->data;
  struct ws *ws = wi->ws;
  if (wi->finished)
    return;
  snprintf(ws->errstr, sizeof ws->errstr, "%s", c->errstr);
  if (wi->ctx && wslay_event_get_close_received(wi->ctx) &&
      wslay_event_get_close_sent(wi->ctx)) {
    ws_finish(wi, wi->err_status); /* the handshake was complete */
    return;
  }
  if (ws->state == WS_CONNECTING && status == BL_ECLOSED)
    status = BL_EHANDSHAKE; /* the server hung up on the upgrade */
  ws_finish(wi, status);
}

static void wsc_on_drain(struct conn *c) {
  ws_flush(c->data);
}

static const struct conn_callbacks ws_conn_cbs = {wsc_on_open, wsc_on_read,
                                                  wsc_on_error, wsc_on_drain};

/* ---- setup ---- */

void ws_init(uv_loop_t *loop, struct ws *ws, const struct ws_callbacks *cb,
             const struct ws_options *opt) {
  void *data = ws->data;
  memset(ws, 0, sizeof *ws);
  ws->data = data;
  ws->loop = loop;
  if (cb)
    ws->cb = *cb;
  if (opt)
    ws->opt = *opt;
  if (ws->opt.max_message == 0)
    ws->opt.max_message = WS_DEFAULT_MAX_MESSAGE;
  if (ws->opt.connect_timeout_ms == 0)
    ws->opt.connect_timeout_ms = WS_DEFAULT_CONNECT_TIMEOUT_MS;
  if (ws->opt.max_queued_bytes == 0)
    ws->opt.max_queued_bytes = WS_DEFAULT_MAX_QUEUED;
  if (ws->opt.close_timeout_ms == 0)
    ws->opt.close_timeout_ms = WS_CLOSE_TIMEOUT_MS;
  ws->state = WS_IDLE;
}

static int impl_new(struct ws *ws, int server) {
  struct ws_impl *wi;
  if (ws->impl != NULL || ws->state != WS_IDLE)
    return BL_ESTATE;
  wi = calloc(1, sizeof *wi);
  if (wi == NULL)
    return BL_ENOMEM;
  wi->ws = ws;
  wi->server = server;
  wi->auto_pong = 1;
  wi->mask_pos = sizeof wi->mask_pool; /* empty: filled on first use */
  buf_init(&wi->hs, WS_MAX_HEAD + 65536);
  buf_init(&wi->rx, WS_RX_MAX);
  buf_init(&wi->msg, ws->opt.max_message);
  if (ws->opt.max_msgs_per_sec) {
    wi->ring = calloc(ws->opt.max_msgs_per_sec, sizeof *wi->ring);
    if (wi->ring == NULL) {
      free(wi);
      return BL_ENOMEM;
    }
    wi->ring_n = ws->opt.max_msgs_per_sec;
  }
  uv_timer_init(ws->loop, &wi->t_ctl);
  uv_timer_init(ws->loop, &wi->t_ka);
  uv_timer_init(ws->loop, &wi->t_pace);
  wi->t_ctl.data = wi->t_ka.data = wi->t_pace.data = wi;
  wi->handles_open = 3;
  ws->impl = wi;
  return 0;
}

/* Releases an impl that never started a conn, from a failing setup call;
 * the caller's struct ws is back to idle at once. */
static void impl_abort(struct ws *ws) {
  struct ws_impl *wi = ws->impl;
  wi->closing = 1;
  wi->finished = 1;
  wi->close_cb = NULL;
  uv_close((uv_handle_t *)&wi->t_ctl, on_ws_timer_closed);
  uv_close((uv_handle_t *)&wi->t_ka, on_ws_timer_closed);
  uv_close((uv_handle_t *)&wi->t_pace, on_ws_timer_closed);
  /* Detach: the timers' close callbacks free |wi| without touching |ws|. */
  wi->ws = NULL;
  ws->impl = NULL;
  ws->state = WS_IDLE;
}

static int random_key(char *out, size_t outlen) {
  unsigned char raw[16];
  size_t olen = 0;
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return BL_EIO;
  if (mbedtls_base64_encode((unsigned char *)out, outlen, &olen, raw,
                            sizeof raw) != 0)
    return BL_EINVAL;
  return 0;
}

int ws_connect(struct ws *ws, const char *url, struct tls_ctx *tls) {
  struct ws_impl *wi;
  struct conn_options co;
  int rv;
  struct ws_url u;
  if (ws_url_parse(url, &u) != 0)
    return BL_EINVAL;
  if (u.tls && tls == NULL)
    return BL_EINVAL;
  rv = impl_new(ws, 0);
  if (rv != 0)
    return rv;
  wi = ws->impl;
  wi->url = u;
  rv = random_key(wi->key, sizeof wi->key);
  if (rv != 0) {
    impl_abort(ws);
    return rv;
  }
  memset(&co, 0, sizeof co);
  co.connect_timeout_ms = ws->opt.connect_timeout_ms;
  co.write_high_water = ws->opt.max_queued_bytes / 2;
  wi->c = &wi->own_conn;
  wi->own_conn.data = wi;
  conn_init(ws->loop, wi->c, &ws_conn_cbs, &co);
  rv = conn_connect(wi->c, u.host, u.port, u.tls ? tls : NULL);
  if (rv != 0) {
    impl_abort(ws);
    return rv;
  }
  wi->conn_started = 1;
  ws->state = WS_CONNECTING;
  uv_timer_start(&wi->t_ctl, on_ctl_timer, ws->opt.connect_timeout_ms, 0);
  return 0;
}

int ws_accept_upgrade(struct ws *ws, struct conn *c, const char *request,
                      size_t len, const char *rest, size_t rest_len) {
  static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
                            "Content-Length: 0\r\nConnection: close\r\n\r\n";
  struct ws_http_request req;
  struct ws_impl *wi;
  struct buf resp;
  long hl = ws_handshake_parse_request(request, len, &req);
  int rv;
  if (hl <= 0 || !req.is_upgrade) {
    conn_write(c, bad, sizeof bad - 1);
    return BL_EHANDSHAKE;
  }
  rv = impl_new(ws, 1);
  if (rv != 0)
    return rv;
  wi = ws->impl;
  buf_init(&resp, 1024);
  rv = ws_handshake_build_response(&resp, req.key);
  if (rv == 0)
    rv = conn_write(c, resp.data, resp.len);
  buf_free(&resp);
  if (rv == 0)
    rv = start_wslay(wi);
  if (rv == 0 && rest_len > 0)
    rv = buf_append(&wi->rx, rest, rest_len);
  if (rv != 0) {
    impl_abort(ws);
    return rv;
  }
  wi->c = c;
  c->data = wi;
  c->cb = ws_conn_cbs;
  c->opt.write_high_water = ws->opt.max_queued_bytes / 2;
  wi->conn_started = 1;
  ws->state = WS_OPEN;
  start_open_timers(wi);
  /* on_open (and the frames in |rest|) from the loop, not from inside the
   * caller's read callback. */
  wi->open_pending = 1;
  uv_timer_start(&wi->t_ctl, on_ctl_timer, 0, 0);
  return 0;
}

/* ---- sending ---- */

size_t ws_queued_bytes(const struct ws *ws) {
  const struct ws_impl *wi = ws->impl;
  size_t n;
  if (wi == NULL)
    return 0;
  n = wi->oq_bytes;
  if (wi->ctx)
    n += wslay_event_get_queued_msg_length(wi->ctx);
  if (wi->c)
    n += conn_write_queue_size(wi->c);
  return n;
}

static int enqueue(struct ws *ws, uint8_t opcode, const void *data, size_t len,
                   int front) {
  struct ws_impl *wi = ws->impl;
  struct ws_out *o;
  if (wi == NULL || ws->state != WS_OPEN || wi->finished)
    return BL_ESTATE;
  if (ws_queued_bytes(ws) + len > ws->opt.max_queued_bytes) {
    wi->drain_wanted = 1;
    if (!uv_is_active((uv_handle_t *)&wi->t_pace))
      uv_timer_start(&wi->t_pace, on_pace_timer, 5, 0);
    return BL_EFULL;
  }
  o = malloc(sizeof *o + len);
  if (o == NULL)
    return BL_ENOMEM;
  o->opcode = opcode;
  o->len = len;
  if (len)
    memcpy(o->data, data, len);
  if (front) {
    o->next = wi->oq_head;
    wi->oq_head = o;
    if (wi->oq_tail == NULL)
      wi->oq_tail = o;
  } else {
    o->next = NULL;
    if (wi->oq_tail)
      wi->oq_tail->next = o;
    else
      wi->oq_head = o;
    wi->oq_tail = o;
  }
  wi->oq_bytes += len;
  if (!wi->open_pending)
    pump(wi);
  return 0;
}

int ws_send_text(struct ws *ws, const char *data, size_t len) {
  return enqueue(ws, WSLAY_TEXT_FRAME, data, len, 0);
}

int ws_send_binary(struct ws *ws, const void *data, size_t len) {
  return enqueue(ws, WSLAY_BINARY_FRAME, data, len, 0);
}

int ws_send_ping(struct ws *ws, const void *data, size_t len) {
  if (len > 125)
    return BL_EINVAL;
  return enqueue(ws, WSLAY_PING, data, len, 1);
}

int ws_shutdown(struct ws *ws, int code, const char *reason) {
  struct ws_impl *wi = ws->impl;
  size_t rlen = reason ? strlen(reason) : 0;
  struct ws_out *o, *next;
  int rv;
  if (wi == NULL || ws->state != WS_OPEN || wi->finished || !wi->ctx)
    return BL_ESTATE;
  if (rlen >= 123 || code < 1000 || code > 4999)
    return BL_EINVAL;
  /* Unsent frames in our FIFO are dropped: the close goes out now. */
  for (o = wi->oq_head; o; o = next) {
    next = o->next;
    free(o);
  }
  wi->oq_head = wi->oq_tail = NULL;
  wi->oq_bytes = 0;
  rv = wslay_event_queue_close(wi->ctx, (uint16_t)code, (const uint8_t *)reason,
                               rlen);
  if (rv != 0)
    return rv == WSLAY_ERR_NO_MORE_MSG ? BL_ESTATE : BL_EINVAL;
  wi->shutdown_called = 1;
  ws->state = WS_CLOSING;
  uv_timer_stop(&wi->t_ka);
  uv_timer_start(&wi->t_ctl, on_ctl_timer, ws->opt.close_timeout_ms, 0);
  ws_flush(wi);
  return 0;
}

void ws_set_auto_pong(struct ws *ws, int on) {
  struct ws_impl *wi = ws->impl;
  if (wi)
    wi->auto_pong = on != 0;
}

void ws_set_read_stall(struct ws *ws, int on) {
  struct ws_impl *wi = ws->impl;
  if (wi == NULL || wi->finished || wi->c == NULL)
    return;
  wi->stalled = on != 0;
  if (on)
    conn_read_stop(wi->c);
  else
    conn_read_start(wi->c);
}
