/*
 * bench_ws.c: WebSocket throughput on loopback in one process and one loop:
 * a net/ws server pushes Binance-like ~200-byte text frames as fast as its
 * (pacer-free) queue accepts them, a net/ws client receives them; once over
 * plain TCP and once over TLS (certificates made by t/certs/gen.sh into a
 * temp dir). Prints frames/s and MB/s of payload measured at the receiver.
 * Each run stops after N frames or about one second, whichever comes first.
 *
 *   build/t/bench_ws [N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/conn.h"
#include "net/ws.h"

static const char frame_json[] =
    "{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":"
    "1634025600123,\"s\":\"BTCUSDT\",\"t\":1101200000,\"p\":\"57345.12000000\","
    "\"q\":\"0.00123000\",\"b\":7843210001,\"a\":7843210099,\"T\":"
    "1634025600121,\"m\":true,\"M\":true}}";

struct bench {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_idle_t idle;
  struct tls_ctx *stls, *ctls;
  struct conn sc;
  struct buf head;
  struct ws sws, cws;
  long target, sent, received;
  uint64_t t0, t1, deadline;
  size_t bytes;
  int done, failed;
};

static void stop_sending(struct bench *b) {
  uv_idle_stop(&b->idle);
}

static void on_idle(uv_idle_t *h) {
  struct bench *b = h->data;
  if (uv_hrtime() > b->deadline) {
    stop_sending(b);
    return;
  }
  while (b->sent < b->target) {
    int rv = ws_send_text(&b->sws, frame_json, sizeof frame_json - 1);
    if (rv == BL_EFULL)
      return; /* try again on the next loop iteration */
    if (rv != 0) {
      b->failed = 1;
      stop_sending(b);
      return;
    }
    b->sent++;
  }
  stop_sending(b);
}

static void s_on_open(struct ws *ws) {
  struct bench *b = ws->data;
  b->t0 = uv_hrtime();
  b->deadline = b->t0 + 1000000000ull;
  uv_idle_start(&b->idle, on_idle);
}

static void c_on_message(struct ws *ws, int binary, const char *d, size_t n) {
  struct bench *b = ws->data;
  (void)binary;
  (void)d;
  b->received++;
  b->bytes += n;
  if (!b->done && (b->received == b->target ||
                   (uv_hrtime() > b->deadline && b->received == b->sent &&
                    !uv_is_active((uv_handle_t *)&b->idle)))) {
    b->done = 1;
    b->t1 = uv_hrtime();
    ws_shutdown(&b->cws, 1000, "done");
  }
}

static void any_on_close(struct ws *ws, int status, int code,
                         const char *reason) {
  struct bench *b = ws->data;
  (void)code;
  (void)reason;
  if (status != 0 && !b->done) {
    fprintf(stderr, "bench_ws: closed early: %s (%s)\n", bl_strerror(status),
            ws->errstr);
    b->failed = 1;
  }
  stop_sending(b);
}

static void sc_on_read(struct conn *c, const char *d, size_t n) {
  struct bench *b = c->data;
  static const struct ws_callbacks scb = {s_on_open, NULL, any_on_close, NULL};
  struct ws_http_request req;
  long hl;
  buf_append(&b->head, d, n);
  hl = ws_handshake_parse_request(b->head.data, b->head.len, &req);
  if (hl <= 0)
    return;
  b->sws.data = b;
  ws_init(&b->loop, &b->sws, &scb, NULL);
  if (ws_accept_upgrade(&b->sws, c, b->head.data, (size_t)hl, b->head.data + hl,
                        b->head.len - (size_t)hl) != 0)
    b->failed = 1;
}

static void sc_on_error(struct conn *c, int status) {
  (void)c;
  (void)status;
}

static void on_connection(uv_stream_t *server, int status) {
  struct bench *b = server->data;
  static const struct conn_callbacks cbs = {NULL, sc_on_read, sc_on_error,
                                            NULL};
  if (status != 0)
    return;
  b->sc.data = b;
  conn_init(&b->loop, &b->sc, &cbs, NULL);
  conn_accept(&b->sc, server, b->stls);
}

static void noop_close(uv_handle_t *h) {
  (void)h;
}

static int run_one(const char *certdir, int tls, long n) {
  static const struct ws_callbacks ccb = {NULL, c_on_message, any_on_close,
                                          NULL};
  struct bench *b = calloc(1, sizeof *b);
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int len = sizeof ss, port;
  char url[128], a[512], k[512], err[256];
  double secs;
  int rc;

  if (b == NULL)
    return 1;
  uv_loop_init(&b->loop);
  buf_init(&b->head, 65536);
  b->target = n;
  if (tls) {
    snprintf(a, sizeof a, "%s/server.crt", certdir);
    snprintf(k, sizeof k, "%s/server.key", certdir);
    if (tls_ctx_new_server(&b->stls, a, k, err, sizeof err) != 0)
      return 1;
    snprintf(a, sizeof a, "%s/ca.crt", certdir);
    if (tls_ctx_new_client(&b->ctls, a, err, sizeof err) != 0)
      return 1;
  }
  uv_idle_init(&b->loop, &b->idle);
  b->idle.data = b;
  uv_tcp_init(&b->loop, &b->listener);
  b->listener.data = b;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_bind(&b->listener, (struct sockaddr *)&sa, 0);
  uv_listen((uv_stream_t *)&b->listener, 8, on_connection);
  uv_tcp_getsockname(&b->listener, (struct sockaddr *)&ss, &len);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  snprintf(url, sizeof url, "%s://localhost:%d/ws", tls ? "wss" : "ws", port);
  b->cws.data = b;
  ws_init(&b->loop, &b->cws, &ccb, NULL);
  if (ws_connect(&b->cws, url, b->ctls) != 0)
    return 1;
  while (!b->done && !b->failed && uv_run(&b->loop, UV_RUN_ONCE))
    ;
  secs = (double)(b->t1 - b->t0) / 1e9;
  rc = b->failed || !b->done;
  if (!rc)
    printf("bench_ws %-5s %8ld frames in %.3f s: %10.0f frames/s %7.1f MB/s\n",
           tls ? "tls" : "plain", b->received, secs, b->received / secs,
           (double)b->bytes / secs / 1e6);
  ws_close(&b->cws, NULL);
  ws_close(&b->sws, NULL);
  uv_close((uv_handle_t *)&b->idle, noop_close);
  uv_close((uv_handle_t *)&b->listener, noop_close);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&b->loop) != 0)
    rc = 1;
  buf_free(&b->head);
  tls_ctx_free(b->stls);
  tls_ctx_free(b->ctls);
  free(b);
  return rc;
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/bl-bench-certs-XXXXXX", cmd[256];
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
  int rc;
  signal(SIGPIPE, SIG_IGN);
  if (n <= 0 || mkdtemp(dir) == NULL)
    return 2;
  snprintf(cmd, sizeof cmd, "t/certs/gen.sh %s", dir);
  if (system(cmd) != 0)
    return 2;
  rc = run_one(dir, 0, n);
  rc |= run_one(dir, 1, n);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    rc = 1;
  return rc;
}
