/*
 * test_ws.c: net/ws client and server in one libuv loop over loopback
 * (plain TCP and TLS with certificates from t/certs/gen.sh), plus a raw
 * peer that answers the upgrade with scripted bytes (non-101 statuses,
 * fragmented frames, oversize frames) and decodes what the client sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/conn.h"
#include "net/ws.h"

static char certdir[256];

static int group_setup(void **state) {
  char cmd[512];
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  snprintf(certdir, sizeof certdir, "/tmp/bl-ws-certs-XXXXXX");
  if (mkdtemp(certdir) == NULL)
    return -1;
  snprintf(cmd, sizeof cmd, "t/certs/gen.sh %s", certdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  char cmd[512];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* What one side saw. */
struct rec {
  int opened, closed, status, code, freed;
  char reason[128];
  int msgs, last_binary;
  char last[4096];
  size_t last_len;
  int last_nul_ok;
  int pongs;
  char pong[128];
  size_t pong_len;
  uint64_t times[256];
  int echo, close_in_msg;
  int drains;
};

struct fx {
  uv_loop_t loop;
  uv_tcp_t listener;
  int port;
  struct tls_ctx *stls, *ctls;
  /* server side */
  struct conn sc;
  int sc_used, sc_closed;
  struct buf head;
  struct ws sws;
  int sws_used;
  struct ws_options sopt;
  struct rec srec;
  /* raw peer: answer instead of a ws server */
  int raw;
  int raw_status; /* 101: a valid answer, then |raw_tail| */
  const char *raw_tail;
  size_t raw_tail_len;
  int raw_answered;
  struct buf raw_in; /* what the client sent after the request */
  /* client */
  struct ws cws;
  struct rec crec;
};

static void rec_on_open(struct ws *ws) {
  struct rec *r = ws->data;
  r->opened++;
}

static void rec_on_message(struct ws *ws, int binary, const char *d, size_t n) {
  struct rec *r = ws->data;
  if (r->msgs < 256)
    r->times[r->msgs] = uv_hrtime();
  r->msgs++;
  r->last_binary = binary;
  r->last_len = n;
  r->last_nul_ok = d[n] == '\0';
  if (n <= sizeof r->last)
    memcpy(r->last, d, n);
  if (r->echo) {
    int rv = binary ? ws_send_binary(ws, d, n) : ws_send_text(ws, d, n);
    assert_int_equal(rv, 0);
  }
  if (r->close_in_msg)
    ws_close(ws, NULL);
}

static void rec_on_close(struct ws *ws, int status, int code,
                         const char *reason) {
  struct rec *r = ws->data;
  assert_int_equal(r->closed, 0); /* exactly once */
  r->closed++;
  r->status = status;
  r->code = code;
  snprintf(r->reason, sizeof r->reason, "%s", reason);
}

static void rec_on_pong(struct ws *ws, const char *d, size_t n) {
  struct rec *r = ws->data;
  r->pongs++;
  r->pong_len = n < sizeof r->pong ? n : sizeof r->pong;
  memcpy(r->pong, d, r->pong_len);
}

static void rec_on_drain(struct ws *ws) {
  struct rec *r = ws->data;
  r->drains++;
}

static const struct ws_callbacks rec_cbs = {rec_on_open, rec_on_message,
                                            rec_on_close, rec_on_pong};

/* ---- server side ---- */

static void sc_on_read(struct conn *c, const char *d, size_t n) {
  struct fx *f = c->data;
  struct ws_http_request req;
  long hl;
  if (f->raw && f->raw_answered) {
    assert_int_equal(buf_append(&f->raw_in, d, n), 0);
    return;
  }
  assert_int_equal(buf_append(&f->head, d, n), 0);
  hl = ws_handshake_parse_request(f->head.data, f->head.len, &req);
  if (hl == 0)
    return;
  assert_true(hl > 0);
  if (f->raw) {
    struct buf out;
    buf_init(&out, 1 << 20);
    if (f->raw_status == 101)
      assert_int_equal(ws_handshake_build_response(&out, req.key), 0);
    else
      buf_printf(&out, "HTTP/1.1 %d Nope\r\nContent-Length: 0\r\n\r\n",
                 f->raw_status);
    if (f->raw_tail_len)
      buf_append(&out, f->raw_tail, f->raw_tail_len);
    assert_int_equal(conn_write(c, out.data, out.len), 0);
    buf_free(&out);
    f->raw_answered = 1;
    return;
  }
  f->sws.data = &f->srec;
  ws_init(&f->loop, &f->sws, &rec_cbs, &f->sopt);
  f->sws_used = 1;
  assert_int_equal(ws_accept_upgrade(&f->sws, c, f->head.data, (size_t)hl,
                                     f->head.data + hl, f->head.len - hl),
                   0);
}

static void sc_on_error(struct conn *c, int status) {
  (void)c;
  (void)status;
}

static void on_connection(uv_stream_t *server, int status) {
  struct fx *f = server->data;
  static const struct conn_callbacks cbs = {NULL, sc_on_read, sc_on_error,
                                            NULL};
  assert_int_equal(status, 0);
  assert_int_equal(f->sc_used, 0);
  f->sc_used = 1;
  f->sc.data = f;
  conn_init(&f->loop, &f->sc, &cbs, NULL);
  assert_int_equal(conn_accept(&f->sc, server, f->stls), 0);
}

static struct fx *fx_new(int tls) {
  struct fx *f = calloc(1, sizeof *f);
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char a[300], b[300], err[256];
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  buf_init(&f->head, 65536);
  buf_init(&f->raw_in, 1 << 20);
  if (tls) {
    snprintf(a, sizeof a, "%s/server.crt", certdir);
    snprintf(b, sizeof b, "%s/server.key", certdir);
    assert_int_equal(tls_ctx_new_server(&f->stls, a, b, err, sizeof err), 0);
    snprintf(a, sizeof a, "%s/ca.crt", certdir);
    assert_int_equal(tls_ctx_new_client(&f->ctls, a, err, sizeof err), 0);
  }
  uv_tcp_init(&f->loop, &f->listener);
  f->listener.data = f;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_connection), 0);
  uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len);
  f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return f;
}

static void client_start(struct fx *f, const struct ws_options *o,
                         const char *path) {
  char url[512];
  snprintf(url, sizeof url, "%s://localhost:%d%s", f->ctls ? "wss" : "ws",
           f->port, path ? path : "/ws");
  f->cws.data = &f->crec;
  ws_init(&f->loop, &f->cws, &rec_cbs, o);
  f->cws.on_drain = rec_on_drain;
  assert_int_equal(ws_connect(&f->cws, url, f->ctls), 0);
}

static void rec_freed(struct ws *ws) {
  struct rec *r = ws->data;
  r->freed++;
}

static void sc_closed(struct conn *c) {
  struct fx *f = c->data;
  f->sc_closed = 1;
}

static void noop_close(uv_handle_t *h) {
  (void)h;
}

static void fx_free(struct fx *f) {
  ws_close(&f->cws, rec_freed);
  if (f->sws_used)
    ws_close(&f->sws, rec_freed);
  else if (f->sc_used)
    conn_close(&f->sc, sc_closed);
  uv_close((uv_handle_t *)&f->listener, noop_close);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(f->crec.freed, 1);
  if (f->sws_used)
    assert_int_equal(f->srec.freed, 1);
  buf_free(&f->head);
  buf_free(&f->raw_in);
  tls_ctx_free(f->stls);
  tls_ctx_free(f->ctls);
  free(f);
}

static void timer_noop(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until |done| or |ms| passed; a guard timer bounds each
 * blocking iteration. */
static void run_until(struct fx *f, int (*done)(struct fx *), uint64_t ms) {
  uv_timer_t guard;
  uint64_t end;
  uv_update_time(&f->loop);
  end = uv_now(&f->loop) + ms;
  uv_timer_init(&f->loop, &guard);
  while (!done(f) && uv_now(&f->loop) < end) {
    uv_timer_start(&guard, timer_noop, end - uv_now(&f->loop), 0);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int never(struct fx *f) {
  (void)f;
  return 0;
}

static void run_ms(struct fx *f, uint64_t ms) {
  run_until(f, never, ms);
}

static int both_open(struct fx *f) {
  return (f->crec.opened && f->srec.opened) || f->crec.closed;
}
static int client_closed(struct fx *f) {
  return f->crec.closed;
}
static int both_closed(struct fx *f) {
  return f->crec.closed && f->srec.closed;
}
static int client_has_1(struct fx *f) {
  return f->crec.msgs >= 1 || f->crec.closed;
}
static int client_has_2(struct fx *f) {
  return f->crec.msgs >= 2 || f->crec.closed;
}

/* ---- tests ---- */

static void echo_and_close(int tls) {
  struct fx *f = fx_new(tls);
  static const char bin[] = {'a', 0, 'b', 0, (char)0xff};
  f->srec.echo = 1;
  client_start(f, NULL, "/ws/btcusdt@trade?x=1");
  run_until(f, both_open, 5000);
  assert_int_equal(f->crec.opened, 1);
  assert_int_equal(f->srec.opened, 1);
  assert_int_equal(f->cws.state, WS_OPEN);
  assert_int_equal(f->cws.http_status, 101);
  assert_int_equal(ws_send_text(&f->cws, "hello", 5), 0);
  run_until(f, client_has_1, 5000); /* wait for the first echo */
  assert_int_equal(ws_send_binary(&f->cws, bin, sizeof bin), 0);
  run_until(f, client_has_2, 5000);
  assert_int_equal(f->crec.msgs, 2);
  assert_int_equal(f->crec.last_binary, 1);
  assert_int_equal(f->crec.last_len, sizeof bin);
  assert_memory_equal(f->crec.last, bin, sizeof bin);
  assert_true(f->crec.last_nul_ok);
  assert_int_equal(f->srec.msgs, 2);
  assert_true(f->cws.frames_in >= 2);
  assert_true(f->cws.frames_out >= 2);

  /* Client closes with a code and reason; both see a clean close. */
  assert_int_equal(ws_shutdown(&f->cws, 1000, "bye"), 0);
  assert_int_equal(ws_send_text(&f->cws, "late", 4), BL_ESTATE);
  run_until(f, both_closed, 5000);
  assert_int_equal(f->srec.status, 0);
  assert_int_equal(f->srec.code, 1000);
  assert_string_equal(f->srec.reason, "bye");
  assert_int_equal(f->crec.status, 0);
  assert_int_equal(f->crec.code, 1000); /* the server echoed it */
  fx_free(f);
}

static void echo_plain(void **state) {
  (void)state;
  echo_and_close(0);
}

static void echo_tls(void **state) {
  (void)state;
  echo_and_close(1);
}

static void server_closes_with_reason(void **state) {
  struct fx *f = fx_new(1);
  (void)state;
  client_start(f, NULL, NULL);
  run_until(f, both_open, 5000);
  assert_int_equal(ws_shutdown(&f->sws, 4000, "server going away"), 0);
  run_until(f, both_closed, 5000);
  assert_int_equal(f->crec.status, 0);
  assert_int_equal(f->crec.code, 4000);
  assert_string_equal(f->crec.reason, "server going away");
  assert_int_equal(f->srec.status, 0);
  assert_int_equal(f->srec.code, 4000);
  fx_free(f);
}

/* wss:// to a server whose CA the client does not trust. */
static void tls_verify_failure(void **state) {
  struct fx *f = fx_new(1);
  char ca[300], err[256];
  (void)state;
  tls_ctx_free(f->ctls);
  snprintf(ca, sizeof ca, "%s/otherca.crt", certdir);
  assert_int_equal(tls_ctx_new_client(&f->ctls, ca, err, sizeof err), 0);
  client_start(f, NULL, NULL);
  run_until(f, client_closed, 5000);
  assert_int_equal(f->crec.opened, 0);
  assert_int_equal(f->crec.status, BL_EVERIFY);
  assert_non_null(strstr(f->cws.errstr, "not correctly signed"));
  fx_free(f);
}

static void refused_429(void **state) {
  struct fx *f = fx_new(0);
  (void)state;
  f->raw = 1;
  f->raw_status = 429;
  client_start(f, NULL, NULL);
  run_until(f, client_closed, 5000);
  assert_int_equal(f->crec.opened, 0);
  assert_int_equal(f->crec.status, BL_EHANDSHAKE);
  assert_int_equal(f->cws.http_status, 429);
  assert_non_null(strstr(f->cws.errstr, "429"));
  fx_free(f);
}

static void connect_refused(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  (void)state;
  /* Nobody listens on the listener's port once it is closed: use port 1
   * on loopback, which is not served here. */
  f->cws.data = &f->crec;
  ws_init(&f->loop, &f->cws, &rec_cbs, &o);
  assert_int_equal(ws_connect(&f->cws, "ws://127.0.0.1:1/", NULL), 0);
  run_until(f, client_closed, 5000);
  assert_int_equal(f->crec.status, UV_ECONNREFUSED);
  assert_int_equal(ws_connect(&f->cws, "ws://x/", NULL), BL_ESTATE);
  fx_free(f);
}

static void bad_urls(void **state) {
  struct ws ws;
  uv_loop_t loop;
  int calls = 0;
  (void)state;
  uv_loop_init(&loop);
  ws.data = &calls;
  ws_init(&loop, &ws, &rec_cbs, NULL);
  assert_int_equal(ws_connect(&ws, "http://x/", NULL), BL_EINVAL);
  assert_int_equal(ws_connect(&ws, "wss://x/", NULL), BL_EINVAL); /* no tls */
  assert_int_equal(ws_send_text(&ws, "x", 1), BL_ESTATE);
  assert_int_equal(ws_shutdown(&ws, 1000, ""), BL_ESTATE);
  ws_close(&ws, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Server frames (unmasked) for the raw peer. */
static size_t frame(char *out, int fin, int op, const char *p, size_t n) {
  size_t h = 0;
  out[h++] = (char)((fin ? 0x80 : 0) | op);
  if (n < 126) {
    out[h++] = (char)n;
  } else if (n < 65536) {
    out[h++] = 126;
    out[h++] = (char)(n >> 8);
    out[h++] = (char)n;
  } else {
    out[h++] = 127;
    for (int i = 7; i >= 0; i--)
      out[h++] = (char)((uint64_t)n >> (8 * i));
  }
  if (n)
    memcpy(out + h, p, n);
  return h + n;
}

/* Decodes one masked client frame; returns its size or 0. */
static size_t unframe(const unsigned char *p, size_t len, int *op,
                      char *payload, size_t *plen) {
  size_t h = 2, n;
  if (len < 2)
    return 0;
  *op = p[0] & 0x0f;
  n = p[1] & 0x7f;
  assert_true(p[1] & 0x80); /* clients mask */
  if (n == 126) {
    if (len < 4)
      return 0;
    n = ((size_t)p[2] << 8) | p[3];
    h = 4;
  } else if (n == 127) {
    if (len < 10)
      return 0;
    n = 0;
    for (int i = 0; i < 8; i++)
      n = (n << 8) | p[2 + i];
    h = 10;
  }
  if (len < h + 4 + n)
    return 0;
  for (size_t i = 0; i < n; i++)
    payload[i] = (char)(p[h + 4 + i] ^ p[h + (i & 3)]);
  *plen = n;
  return h + 4 + n;
}

/* Finds the first client frame with opcode |want| in what the raw peer
 * received; returns 1 and its payload. */
static int find_frame(struct fx *f, int want, char *payload, size_t *plen) {
  size_t off = 0;
  for (;;) {
    int op;
    size_t n = unframe((unsigned char *)f->raw_in.data + off,
                       f->raw_in.len - off, &op, payload, plen);
    if (n == 0)
      return 0;
    if (op == want)
      return 1;
    off += n;
  }
}

static int raw_got_pong(struct fx *f) {
  char p[256];
  size_t n;
  return find_frame(f, 0xA, p, &n);
}

static void fragmented_with_ping(void **state) {
  struct fx *f = fx_new(0);
  char tail[256], p[256];
  size_t n = 0, plen;
  (void)state;
  /* Sent in the same write as the 101: frames must reach wslay. */
  n += frame(tail + n, 0, 0x1, "hel", 3);
  n += frame(tail + n, 1, 0x9, "png-42", 6); /* ping between fragments */
  n += frame(tail + n, 0, 0x0, "lo ", 3);
  n += frame(tail + n, 1, 0x0, "world", 5);
  f->raw = 1;
  f->raw_status = 101;
  f->raw_tail = tail;
  f->raw_tail_len = n;
  client_start(f, NULL, NULL);
  run_until(f, raw_got_pong, 5000);
  assert_int_equal(f->crec.opened, 1);
  assert_int_equal(f->crec.msgs, 1);
  assert_int_equal(f->crec.last_binary, 0);
  assert_int_equal(f->crec.last_len, 11);
  assert_memory_equal(f->crec.last, "hello world", 11);
  assert_true(f->crec.last_nul_ok);
  assert_true(find_frame(f, 0xA, p, &plen));
  assert_int_equal(plen, 6);
  assert_memory_equal(p, "png-42", 6);
  fx_free(f);
}

static int raw_got_close(struct fx *f) {
  char p[256];
  size_t n;
  return find_frame(f, 0x8, p, &n) && f->crec.closed;
}

static void message_limit(int fragmented) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  char *tail = malloc(4096), *body = malloc(2048), p[256];
  size_t n = 0, plen;
  memset(body, 'x', 2048);
  o.max_message = 1000;
  n += frame(tail + n, 1, 0x2, body, 1000); /* exactly at the limit */
  if (fragmented) {
    n += frame(tail + n, 0, 0x2, body, 600);
    n += frame(tail + n, 1, 0x0, body, 401);
  } else {
    n += frame(tail + n, 1, 0x2, body, 1001);
  }
  f->raw = 1;
  f->raw_status = 101;
  f->raw_tail = tail;
  f->raw_tail_len = n;
  client_start(f, &o, NULL);
  run_until(f, raw_got_close, 5000);
  assert_int_equal(f->crec.msgs, 1);
  assert_int_equal(f->crec.last_len, 1000);
  assert_int_equal(f->crec.closed, 1);
  assert_int_equal(f->crec.status, BL_ETOOBIG);
  assert_true(find_frame(f, 0x8, p, &plen));
  assert_true(plen >= 2);
  assert_int_equal(((unsigned char)p[0] << 8) | (unsigned char)p[1], 1009);
  fx_free(f);
  free(tail);
  free(body);
}

static void max_message_single(void **state) {
  (void)state;
  message_limit(0);
}

static void max_message_fragmented(void **state) {
  (void)state;
  message_limit(1);
}

static int server_got_pong(struct fx *f) {
  return f->srec.pongs > 0;
}

static void server_ping_answered(void **state) {
  struct fx *f = fx_new(1);
  (void)state;
  client_start(f, NULL, NULL);
  run_until(f, both_open, 5000);
  assert_int_equal(ws_send_ping(&f->sws, "abc123", 6), 0);
  run_until(f, server_got_pong, 5000);
  assert_int_equal(f->srec.pongs, 1);
  assert_int_equal(f->srec.pong_len, 6);
  assert_memory_equal(f->srec.pong, "abc123", 6);
  fx_free(f);
}

static int client_got_2_pongs(struct fx *f) {
  return f->crec.pongs >= 2 || f->crec.closed;
}

static void client_keepalive(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  (void)state;
  o.ping_interval_ms = 50;
  o.read_timeout_ms = 300;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  run_until(f, client_got_2_pongs, 3000);
  assert_true(f->crec.pongs >= 2);
  /* The pongs keep the read timeout away. */
  run_ms(f, 500);
  assert_int_equal(f->crec.closed, 0);
  fx_free(f);
}

static void read_timeout(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  uint64_t t0;
  (void)state;
  o.ping_interval_ms = 50;
  o.read_timeout_ms = 300;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  ws_set_auto_pong(&f->sws, 0); /* fault: the server ignores pings */
  t0 = uv_now(&f->loop);
  run_until(f, client_closed, 3000);
  assert_int_equal(f->crec.status, BL_ETIMEDOUT);
  assert_true(uv_now(&f->loop) - t0 >= 250);
  assert_int_equal(f->crec.pongs, 0);
  assert_true(f->srec.msgs == 0);
  fx_free(f);
}

static void close_timeout(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  (void)state;
  o.close_timeout_ms = 200;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  ws_set_read_stall(&f->sws, 1); /* the server never sees our close */
  assert_int_equal(ws_shutdown(&f->cws, 1001, "going away"), 0);
  assert_int_equal(f->cws.state, WS_CLOSING);
  run_until(f, client_closed, 3000);
  assert_int_equal(f->crec.status, BL_ETIMEDOUT);
  fx_free(f);
}

static int server_has_n(struct fx *f) {
  return f->srec.msgs >= 25 || f->srec.closed;
}

static void pacer_window(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  char msg[32];
  uint64_t t0;
  (void)state;
  o.max_msgs_per_sec = 10;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  t0 = uv_hrtime();
  for (int i = 0; i < 25; i++) {
    int n = snprintf(msg, sizeof msg, "{\"id\":%d}", i);
    assert_int_equal(ws_send_text(&f->cws, msg, (size_t)n), 0);
  }
  assert_true(ws_queued_bytes(&f->cws) > 0);
  run_until(f, server_has_n, 6000);
  assert_int_equal(f->srec.msgs, 25);
  /* In any one-second window on the receiving side: at most 10. */
  for (int i = 0; i + 10 < 25; i++)
    assert_true(f->srec.times[i + 10] - f->srec.times[i] >= 1000000000ull);
  /* And it did not dawdle: 25 frames at 10/s take a bit over 2 s. */
  assert_true(uv_hrtime() - t0 < 3500000000ull);
  fx_free(f);
}

/* A ping arriving while the pacer holds a backlog is answered at once. */
static void pong_not_delayed(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  uint64_t t0;
  (void)state;
  o.max_msgs_per_sec = 2;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  for (int i = 0; i < 6; i++)
    assert_int_equal(ws_send_text(&f->cws, "x", 1), 0);
  run_ms(f, 50);
  assert_int_equal(f->srec.msgs, 2); /* the window is full */
  t0 = uv_now(&f->loop);
  assert_int_equal(ws_send_ping(&f->sws, "urgent", 6), 0);
  run_until(f, server_got_pong, 2000);
  assert_int_equal(f->srec.pongs, 1);
  assert_memory_equal(f->srec.pong, "urgent", 6);
  assert_true(uv_now(&f->loop) - t0 < 300);
  assert_int_equal(f->srec.msgs, 2); /* data still waits */
  fx_free(f);
}

static int client_drained(struct fx *f) {
  return f->crec.drains > 0 || f->crec.closed;
}

static void backpressure_full(void **state) {
  struct fx *f = fx_new(0);
  struct ws_options o = {0};
  static char chunk[8192];
  int rv = 0, sent = 0;
  (void)state;
  o.max_queued_bytes = 256 * 1024;
  client_start(f, &o, NULL);
  run_until(f, both_open, 5000);
  ws_set_read_stall(&f->sws, 1);
  for (int i = 0; i < 10000 && rv == 0; i++) {
    rv = ws_send_binary(&f->cws, chunk, sizeof chunk);
    if (rv == 0)
      sent++;
    if (i % 8 == 0)
      uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(rv, BL_EFULL);
  assert_true(ws_queued_bytes(&f->cws) + sizeof chunk > 256 * 1024);
  run_ms(f, 100);
  assert_int_equal(f->crec.drains, 0); /* still stalled: no drain */
  ws_set_read_stall(&f->sws, 0);
  run_until(f, client_drained, 5000);
  assert_int_equal(f->crec.drains, 1);
  assert_true(ws_queued_bytes(&f->cws) <= 128 * 1024);
  run_until(f, server_has_n, 5000); /* 25 messages at least */
  assert_true(f->srec.msgs >= 25);
  assert_int_equal(ws_send_binary(&f->cws, chunk, sizeof chunk), 0);
  assert_true(sent > 10);
  fx_free(f);
}

static void close_inside_on_message(void **state) {
  struct fx *f = fx_new(1);
  (void)state;
  f->srec.echo = 1;
  f->crec.close_in_msg = 1;
  client_start(f, NULL, NULL);
  run_until(f, both_open, 5000);
  assert_int_equal(ws_send_text(&f->cws, "a", 1), 0);
  assert_int_equal(ws_send_text(&f->cws, "b", 1), 0);
  run_until(f, client_has_2, 2000);
  assert_int_equal(f->crec.msgs, 1); /* nothing after ws_close */
  assert_int_equal(f->crec.closed, 0);
  fx_free(f);
}

static void server_rejects_plain_request(void **state) {
  struct ws ws;
  struct conn c;
  uv_loop_t loop;
  const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)state;
  uv_loop_init(&loop);
  conn_init(&loop, &c, NULL, NULL);
  ws_init(&loop, &ws, &rec_cbs, NULL);
  /* The conn is not open: the 400 cannot go out, the verdict stands. */
  assert_int_equal(ws_accept_upgrade(&ws, &c, req, strlen(req), NULL, 0),
                   BL_EHANDSHAKE);
  assert_null(ws.impl);
  conn_close(&c, NULL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(echo_plain),
      cmocka_unit_test(echo_tls),
      cmocka_unit_test(server_closes_with_reason),
      cmocka_unit_test(tls_verify_failure),
      cmocka_unit_test(refused_429),
      cmocka_unit_test(connect_refused),
      cmocka_unit_test(bad_urls),
      cmocka_unit_test(fragmented_with_ping),
      cmocka_unit_test(max_message_single),
      cmocka_unit_test(max_message_fragmented),
      cmocka_unit_test(server_ping_answered),
      cmocka_unit_test(client_keepalive),
      cmocka_unit_test(read_timeout),
      cmocka_unit_test(close_timeout),
      cmocka_unit_test(pacer_window),
      cmocka_unit_test(pong_not_delayed),
      cmocka_unit_test(backpressure_full),
      cmocka_unit_test(close_inside_on_message),
      cmocka_unit_test(server_rejects_plain_request),
  };
  return cmocka_run_group_tests_name("ws", tests, group_setup, group_teardown);
}
