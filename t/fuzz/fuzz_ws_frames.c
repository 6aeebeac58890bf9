/*
 * fuzz_ws_frames.c: libFuzzer target feeding arbitrary bytes, as frames
 * after a valid 101 answer, to a client ws (net/ws.c with wslay) over an
 * in-memory transport: this file replaces net/conn.c with stubs that
 * capture what ws writes and let the input be delivered in pieces (ws.c
 * is #included to reach its private struct).
 * The first input byte picks options (auto-pong off, chunking, limits).
 * Not built by make; by hand from the repo root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     t/fuzz/fuzz_ws_frames.c src/net/ws_proto.c \
 *     src/core/buf.c src/core/err.c src/core/log.c \
 *     -luv -lwslay -lmbedcrypto -o build-fuzz/fuzz_ws_frames
 *   build-fuzz/fuzz_ws_frames -max_total_time=60 -max_len=70000
 *
 * `make fuzz` (t/fuzz/run) builds, seeds and runs it from the fuzz-*
 * lines below; the command above is the same build by hand.
 */
/* fuzz-build: -D_GNU_SOURCE src/net/ws_proto.c src/core/buf.c */
/* fuzz-build: src/core/err.c src/core/log.c -luv -lwslay -lmbedcrypto */
/* fuzz-run: -max_len=70000 */
/* fuzz-seed: ws-frames t/data/parse/BINANCE.ws.1.0 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/net/ws.c" /* reaches struct ws_impl */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- in-memory conn ---- */

static struct buf out_bytes; /* everything ws wrote */
static int conn_paused;

void conn_init(uv_loop_t *loop, struct conn *c, const struct conn_callbacks *cb,
               const struct conn_options *opt) {
  void *d = c->data;
  memset(c, 0, sizeof *c);
  c->data = d;
  c->loop = loop;
  if (cb)
    c->cb = *cb;
  if (opt)
    c->opt = *opt;
  if (c->opt.write_high_water == 0)
    c->opt.write_high_water = 1 << 20;
}

int conn_connect(struct conn *c, const char *host, int port,
                 struct tls_ctx *tls) {
  (void)host;
  (void)port;
  (void)tls;
  c->state = CONN_CONNECTING;
  return 0;
}

int conn_accept(struct conn *c, uv_stream_t *server, struct tls_ctx *tls) {
  (void)c;
  (void)server;
  (void)tls;
  return BL_EINVAL;
}

int conn_write(struct conn *c, const void *d, size_t len) {
  if (c->state != CONN_OPEN)
    return BL_ESTATE;
  if (out_bytes.len > (1u << 20)) /* exercise WOULDBLOCK paths */
    return BL_EFULL;
  return buf_append(&out_bytes, d, len) == 0 ? 0 : BL_EFULL;
}

size_t conn_write_queue_size(const struct conn *c) {
  (void)c;
  return out_bytes.len;
}

int conn_read_stop(struct conn *c) {
  (void)c;
  conn_paused = 1;
  return 0;
}

int conn_read_start(struct conn *c) {
  (void)c;
  conn_paused = 0;
  return 0;
}

void conn_close(struct conn *c, void (*cb)(struct conn *c)) {
  c->state = CONN_CLOSED;
  if (cb)
    cb(c);
}

/* ---- ws side ---- */

static int closes;

static void f_on_message(struct ws *ws, int binary, const char *d, size_t n) {
  (void)binary;
  if (d[n] != '\0' || n > ws->opt.max_message)
    abort();
  if (n == 3 && memcmp(d, "bye", 3) == 0)
    ws_shutdown(ws, 1000, "ok");
  if (n == 4 && memcmp(d, "kill", 4) == 0)
    ws_close(ws, NULL);
}

static void f_on_close(struct ws *ws, int status, int code,
                       const char *reason) {
  (void)ws;
  (void)status;
  (void)code;
  if (strlen(reason) > 127)
    abort();
  closes++;
}

static void f_on_pong(struct ws *ws, const char *d, size_t n) {
  (void)ws;
  (void)d;
  if (n > 125)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct ws_callbacks cbs = {NULL, f_on_message, f_on_close,
                                          f_on_pong};
  struct ws_options o;
  struct ws ws;
  uv_loop_t loop;
  struct buf resp;
  struct conn *c;
  const char *k;
  char key[32];
  size_t step, off = 0;
  uint8_t flags;

  if (size < 1)
    return 0;
  flags = data[0];
  data++;
  size--;
  memset(&o, 0, sizeof o);
  o.max_message = (flags & 1) ? 64 : 4096;
  o.max_msgs_per_sec = (flags & 2) ? 5 : 0;
  o.max_queued_bytes = 1 << 16;
  uv_loop_init(&loop);
  buf_init(&out_bytes, 4u << 20);
  conn_paused = 0;
  closes = 0;
  ws_init(&loop, &ws, &cbs, &o);
  if (ws_connect(&ws, "ws://fuzz.example/ws", NULL) != 0)
    abort();
  if (flags & 4)
    ws_set_auto_pong(&ws, 0);

  /* The stub conn "opens": ws sends its upgrade request. */
  c = ((struct ws_impl *)ws.impl)->c;
  c->state = CONN_OPEN;
  c->cb.on_open(c);
  k = strstr(out_bytes.data ? out_bytes.data : "", "Sec-WebSocket-Key: ");
  if (k == NULL)
    abort();
  memcpy(key, k + 19, 24);
  key[24] = '\0';
  buf_reset(&out_bytes);
  buf_init(&resp, 1 << 20);
  if (ws_handshake_build_response(&resp, key) != 0)
    abort();
  /* The first piece carries the 101 and the start of the frames. */
  step = (flags >> 4) ? (size_t)(flags >> 4) * 7 : size + 1;
  {
    size_t first = size < step ? size : step;
    buf_append(&resp, data, first);
    off = first;
  }
  c->cb.on_read(c, resp.data, resp.len);
  buf_free(&resp);
  if (ws.state == WS_OPEN && (flags & 8))
    ws_send_text(&ws, "{\"method\":\"SUBSCRIBE\"}", 22);
  while (off < size && ws.impl != NULL && ws.state != WS_CLOSED) {
    size_t n = size - off < step ? size - off : step;
    c->cb.on_read(c, (const char *)data + off, n);
    off += n;
    buf_reset(&out_bytes);
    if (c->cb.on_drain)
      c->cb.on_drain(c);
  }
  ws_close(&ws, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    abort();
  buf_free(&out_bytes);
  return 0;
}
