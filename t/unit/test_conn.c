/*
 * test_conn.c: net/conn over loopback inside one libuv loop: TLS with good
 * and bad certificates (made by t/certs/gen.sh into a temp dir at setup),
 * refused and timed-out connects, peer reset, close_notify, close from
 * inside callbacks, an 8 MiB transfer with back-pressure, IPv6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/err.h"
#include "net/conn.h"

static char certdir[256];

static void certpath(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", certdir, name);
}

static int group_setup(void **state) {
  char cmd[512];
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  snprintf(certdir, sizeof certdir, "/tmp/bl-conn-certs-XXXXXX");
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

/* ---- a tiny server: accepts into struct peer, echoes or records ---- */

struct peer {
  struct conn c;
  struct tls_ctx *tls;
  int opened, error, closed, echo;
  size_t got;
  uint64_t sum;
  int stall_after_open;
};

struct client {
  struct conn c;
  int opened, error, closed;
  char data[4096];
  size_t got;
  int close_on_open, close_on_read, close_on_error;
  int drains;
};

struct fixture {
  uv_loop_t loop;
  uv_tcp_t listener;
  int port;
  struct tls_ctx *server_tls;
  struct peer peer;
  int accept_mode; /* 0 conn_accept, 1 never accept, 2 raw + reset */
  uv_tcp_t raw;
  int raw_open;
};

static void peer_on_open(struct conn *c) {
  struct peer *p = c->data;
  p->opened++;
  if (p->stall_after_open)
    conn_read_stop(c);
}

static void peer_on_read(struct conn *c, const char *d, size_t n) {
  struct peer *p = c->data;
  p->got += n;
  for (size_t i = 0; i < n; i++)
    p->sum = p->sum * 31 + (unsigned char)d[i];
  if (p->echo)
    assert_int_equal(conn_write(c, d, n), 0);
}

static void peer_on_error(struct conn *c, int status) {
  struct peer *p = c->data;
  p->error = status;
}

static void peer_closed(struct conn *c) {
  struct peer *p = c->data;
  p->closed++;
}

static void on_connection(uv_stream_t *server, int status) {
  struct fixture *f = server->data;
  static const struct conn_callbacks cbs = {peer_on_open, peer_on_read,
                                            peer_on_error, NULL};
  assert_int_equal(status, 0);
  if (f->accept_mode == 1)
    return; /* never accept: the kernel completes TCP, nobody answers */
  if (f->accept_mode == 2) {
    assert_int_equal(uv_tcp_init(&f->loop, &f->raw), 0);
    f->raw_open = 1;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&f->raw), 0);
    return;
  }
  f->peer.c.data = &f->peer;
  conn_init(&f->loop, &f->peer.c, &cbs, NULL);
  assert_int_equal(conn_accept(&f->peer.c, server, f->server_tls), 0);
}

static void fixture_listen(struct fixture *f, const char *ip, int v6) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (v6)
    uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)&ss);
  else
    uv_ip4_addr(ip, 0, (struct sockaddr_in *)&ss);
  assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
  f->listener.data = f;
  assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&ss, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, on_connection),
                   0);
  assert_int_equal(
      uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len), 0);
  f->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                     : ((struct sockaddr_in *)&ss)->sin_port);
}

static struct fixture *fixture_new(const char *server_cert, int tls) {
  struct fixture *f = calloc(1, sizeof *f);
  char crt[300], key[300], err[256];
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  if (tls) {
    snprintf(crt, sizeof crt, "%s/%s.crt", certdir, server_cert);
    snprintf(key, sizeof key, "%s/%s.key", certdir, server_cert);
    assert_int_equal(
        tls_ctx_new_server(&f->server_tls, crt, key, err, sizeof err), 0);
  }
  return f;
}

static void on_handle_closed(uv_handle_t *h) {
  (void)h;
}

static void run_for(uv_loop_t *loop, int (*done)(void *), void *arg,
                    uint64_t max_ms) {
  uint64_t end = uv_now(loop) + max_ms;
  while (!done(arg) && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
}

static void fixture_free(struct fixture *f) {
  if (f->peer.c.impl != NULL || f->peer.c.state != CONN_IDLE) {
    if (f->peer.c.state != CONN_CLOSED && f->peer.c.state != CONN_CLOSING)
      conn_close(&f->peer.c, peer_closed);
  }
  if (f->raw_open && !uv_is_closing((uv_handle_t *)&f->raw))
    uv_close((uv_handle_t *)&f->raw, on_handle_closed);
  uv_close((uv_handle_t *)&f->listener, on_handle_closed);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  tls_ctx_free(f->server_tls);
  free(f);
}

static void cl_on_open(struct conn *c) {
  struct client *cl = c->data;
  cl->opened++;
  if (cl->close_on_open)
    conn_close(c, NULL);
}

static void cl_on_read(struct conn *c, const char *d, size_t n) {
  struct client *cl = c->data;
  if (cl->got + n <= sizeof cl->data)
    memcpy(cl->data + cl->got, d, n);
  cl->got += n;
  if (cl->close_on_read)
    conn_close(c, NULL);
}

static void cl_on_error(struct conn *c, int status) {
  struct client *cl = c->data;
  assert_int_equal(cl->error, 0); /* at most once */
  cl->error = status;
  if (cl->close_on_error)
    conn_close(c, NULL);
}

static void cl_on_drain(struct conn *c) {
  struct client *cl = c->data;
  cl->drains++;
}

static void cl_closed(struct conn *c) {
  struct client *cl = c->data;
  cl->closed++;
}

static const struct conn_callbacks client_cbs = {cl_on_open, cl_on_read,
                                                 cl_on_error, cl_on_drain};

static struct tls_ctx *client_tls(void) {
  struct tls_ctx *t;
  char ca[300], err[256];
  certpath(ca, sizeof ca, "ca.crt");
  assert_int_equal(tls_ctx_new_client(&t, ca, err, sizeof err), 0);
  return t;
}

static int opened_or_failed(void *arg) {
  struct client *cl = arg;
  return cl->opened || cl->error;
}

static int got_5(void *arg) {
  struct client *cl = arg;
  return cl->got >= 5 || cl->error;
}

static int peer_gone(void *arg) {
  struct peer *p = arg;
  return p->error != 0;
}

static void tls_good_cert(void **state) {
  struct fixture *f = fixture_new("server", 1);
  struct tls_ctx *ct = client_tls();
  struct client cl;
  (void)state;
  memset(&cl, 0, sizeof cl);
  f->peer.echo = 1;
  fixture_listen(f, "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "localhost", f->port, ct), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.error, 0);
  assert_int_equal(cl.opened, 1);
  assert_int_equal(cl.c.state, CONN_OPEN);
  assert_int_equal(conn_write(&cl.c, "hello", 5), 0);
  run_for(&f->loop, got_5, &cl, 5000);
  assert_int_equal(cl.got, 5);
  assert_memory_equal(cl.data, "hello", 5);
  assert_int_equal(f->peer.opened, 1);
  assert_non_null(strstr(cl.c.peer, "127.0.0.1:"));

  /* Clean close: the server sees close_notify as BL_ECLOSED. */
  conn_close(&cl.c, cl_closed);
  run_for(&f->loop, peer_gone, &f->peer, 5000);
  assert_int_equal(f->peer.error, BL_ECLOSED);
  assert_non_null(strstr(f->peer.c.errstr, "close_notify"));
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
  assert_int_equal(cl.error, 0);
  tls_ctx_free(ct);
}

static void verify_fails(const char *cert, const char *host,
                         const char *reason) {
  struct fixture *f = fixture_new(cert, 1);
  struct tls_ctx *ct = client_tls();
  struct client cl;
  memset(&cl, 0, sizeof cl);
  fixture_listen(f, strcmp(host, "localhost") ? host : "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, host, f->port, ct), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.opened, 0);
  assert_int_equal(cl.error, BL_EVERIFY);
  if (strstr(cl.c.errstr, reason) == NULL)
    fail_msg("errstr '%s' does not name '%s'", cl.c.errstr, reason);
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
  tls_ctx_free(ct);
}

static void tls_wrong_host(void **state) {
  (void)state;
  verify_fails("wronghost", "localhost", "Common Name");
}

static void tls_unknown_ca(void **state) {
  (void)state;
  verify_fails("unknown", "localhost", "not correctly signed");
}

static void tls_expired(void **state) {
  (void)state;
  verify_fails("expired", "localhost", "expired");
}

/* The name is checked even when the chain is fine: "127.0.0.2" is not in
 * the good certificate. */
static void tls_name_checked(void **state) {
  (void)state;
  verify_fails("server", "127.0.0.2", "Common Name");
}

static void connect_refused(void **state) {
  uv_loop_t loop;
  uv_tcp_t t;
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int len = sizeof ss, port;
  struct client cl;
  (void)state;
  memset(&cl, 0, sizeof cl);
  assert_int_equal(uv_loop_init(&loop), 0);
  /* Find a free port: bind, read it, close. */
  uv_tcp_init(&loop, &t);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
  uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  cl.c.data = &cl;
  conn_init(&loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "127.0.0.1", port, NULL), 0);
  run_for(&loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.error, UV_ECONNREFUSED);
  assert_non_null(strstr(cl.c.errstr, "refused"));
  conn_close(&cl.c, cl_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(cl.closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int peer_opened(void *arg) {
  struct fixture *f = arg;
  return f->peer.opened;
}

static void connect_timeout(void **state) {
  struct fixture *f = fixture_new("server", 0);
  struct tls_ctx *ct = client_tls();
  struct conn_options o = {300, 0};
  struct client cl;
  uint64_t t0;
  (void)state;
  memset(&cl, 0, sizeof cl);
  f->accept_mode = 1;
  fixture_listen(f, "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, &o);
  t0 = uv_now(&f->loop);
  assert_int_equal(conn_connect(&cl.c, "localhost", f->port, ct), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.error, BL_ETIMEDOUT);
  assert_true(uv_now(&f->loop) - t0 >= 290);
  assert_non_null(strstr(cl.c.errstr, "timed out"));
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
  tls_ctx_free(ct);
}

static void on_reset_closed(uv_handle_t *h) {
  (void)h;
}

static int raw_accepted(void *arg) {
  struct fixture *f = arg;
  return f->raw_open;
}

static int cl_failed(void *arg) {
  struct client *cl = arg;
  return cl->error != 0;
}

static void peer_reset(void **state) {
  struct fixture *f = fixture_new("server", 0);
  struct client cl;
  (void)state;
  memset(&cl, 0, sizeof cl);
  f->accept_mode = 2;
  fixture_listen(f, "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "127.0.0.1", f->port, NULL), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.opened, 1);
  run_for(&f->loop, raw_accepted, f, 5000);
  assert_int_equal(uv_tcp_close_reset(&f->raw, on_reset_closed), 0);
  run_for(&f->loop, cl_failed, &cl, 5000);
  assert_int_equal(cl.error, UV_ECONNRESET);
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
}

static void plain_eof(void **state) {
  struct fixture *f = fixture_new("server", 0);
  struct client cl;
  (void)state;
  memset(&cl, 0, sizeof cl);
  fixture_listen(f, "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "127.0.0.1", f->port, NULL), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.opened, 1);
  run_for(&f->loop, peer_opened, f, 5000);
  assert_int_equal(f->peer.opened, 1);
  assert_int_equal(conn_write(&f->peer.c, "bye", 3), 0);
  conn_close(&f->peer.c, peer_closed);
  run_for(&f->loop, cl_failed, &cl, 5000);
  assert_int_equal(cl.error, BL_ECLOSED);
  assert_int_equal(cl.got, 3); /* data before the FIN arrived */
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
}

/* conn_close from inside on_open, on_read and on_error, over TLS. */
static void close_inside_callbacks(void **state) {
  for (int mode = 0; mode < 3; mode++) {
    struct fixture *f = fixture_new("server", 1);
    struct tls_ctx *ct = client_tls();
    struct client *cl = calloc(1, sizeof *cl);
    (void)state;
    f->peer.echo = 1;
    fixture_listen(f, "127.0.0.1", 0);
    cl->c.data = cl;
    cl->close_on_open = mode == 0;
    cl->close_on_read = mode == 1;
    cl->close_on_error = mode == 2;
    conn_init(&f->loop, &cl->c, &client_cbs, NULL);
    assert_int_equal(conn_connect(&cl->c, "localhost", f->port, ct), 0);
    run_for(&f->loop, opened_or_failed, cl, 5000);
    assert_int_equal(cl->opened, 1);
    if (mode == 1) {
      /* Two writes echo back as two records, maybe in one TCP read: the
       * close inside the first on_read must stop delivery. */
      assert_int_equal(conn_write(&cl->c, "ab", 2), 0);
      assert_int_equal(conn_write(&cl->c, "cd", 2), 0);
      run_for(&f->loop, peer_gone, &f->peer, 5000);
      assert_true(cl->got == 2 || cl->got == 4);
    }
    if (mode == 2) {
      run_for(&f->loop, peer_opened, f, 5000);
      conn_close(&f->peer.c, peer_closed);
      run_for(&f->loop, cl_failed, cl, 5000);
      assert_int_equal(cl->error, BL_ECLOSED);
    }
    fixture_free(f);
    assert_int_equal(cl->c.state, CONN_CLOSED);
    assert_null(cl->c.impl);
    free(cl);
    tls_ctx_free(ct);
  }
}

/* 8 MiB over TLS, written as fast as conn_write allows (BL_EFULL and
 * on_drain), arrives intact. */
struct bulk {
  struct client cl;
  size_t sent, total;
  uint64_t sum;
  int fulls;
  char chunk[65536];
};

static void bulk_pump(struct bulk *b) {
  while (b->sent < b->total) {
    size_t n = b->total - b->sent;
    int rv;
    if (n > sizeof b->chunk)
      n = sizeof b->chunk;
    for (size_t i = 0; i < n; i++)
      b->chunk[i] = (char)((b->sent + i) * 7 + ((b->sent + i) >> 13));
    rv = conn_write(&b->cl.c, b->chunk, n);
    if (rv == BL_EFULL) {
      b->fulls++;
      return;
    }
    assert_int_equal(rv, 0);
    for (size_t i = 0; i < n; i++)
      b->sum = b->sum * 31 + (unsigned char)b->chunk[i];
    b->sent += n;
  }
}

static void bulk_on_drain(struct conn *c) {
  bulk_pump(c->data);
}

static int bulk_done(void *arg) {
  struct fixture *f = arg;
  return f->peer.got >= 8u * 1024 * 1024 || f->peer.error;
}

static void large_write(void **state) {
  struct fixture *f = fixture_new("server", 1);
  struct tls_ctx *ct = client_tls();
  struct bulk *b = calloc(1, sizeof *b);
  struct conn_callbacks cbs = client_cbs;
  struct conn_options o = {0, 256 * 1024};
  (void)state;
  cbs.on_drain = bulk_on_drain;
  b->total = 8u * 1024 * 1024;
  fixture_listen(f, "127.0.0.1", 0);
  b->cl.c.data = b;
  conn_init(&f->loop, &b->cl.c, &cbs, &o);
  assert_int_equal(conn_connect(&b->cl.c, "localhost", f->port, ct), 0);
  run_for(&f->loop, opened_or_failed, &b->cl, 5000);
  assert_int_equal(b->cl.opened, 1);
  bulk_pump(b);
  run_for(&f->loop, bulk_done, f, 20000);
  assert_int_equal(f->peer.got, b->total);
  assert_int_equal(b->sent, b->total);
  assert_true(f->peer.sum == b->sum);
  assert_true(b->fulls > 0); /* the high-water mark was met and drained */
  conn_close(&b->cl.c, NULL);
  fixture_free(f);
  free(b);
  tls_ctx_free(ct);
}

/* A peer that stops reading: conn_write meets BL_EFULL, and on_drain fires
 * after it resumes. */

static int drained(void *arg) {
  struct client *cl = arg;
  return cl->drains > 0 || cl->error;
}

static void backpressure(void **state) {
  struct fixture *f = fixture_new("server", 0);
  struct client cl;
  struct conn_options o = {0, 64 * 1024};
  static char chunk[16384];
  int rv = 0, writes = 0;
  (void)state;
  memset(&cl, 0, sizeof cl);
  f->peer.stall_after_open = 1;
  fixture_listen(f, "127.0.0.1", 0);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, &o);
  assert_int_equal(conn_connect(&cl.c, "127.0.0.1", f->port, NULL), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  run_for(&f->loop, peer_opened, f, 5000);
  /* Fill the kernel buffers, then our queue. */
  for (int i = 0; i < 100000 && rv == 0; i++) {
    rv = conn_write(&cl.c, chunk, sizeof chunk);
    if (rv == 0)
      writes++;
    if (i % 16 == 0)
      uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(rv, BL_EFULL);
  assert_true(conn_write_queue_size(&cl.c) > 64 * 1024);
  assert_int_equal(cl.drains, 0);
  assert_int_equal(conn_read_start(&f->peer.c), 0);
  run_for(&f->loop, drained, &cl, 5000);
  assert_int_equal(cl.drains, 1);
  assert_true(conn_write_queue_size(&cl.c) < 32 * 1024);
  assert_int_equal(conn_write(&cl.c, chunk, 1), 0);
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  assert_int_equal(cl.closed, 1);
  assert_true(writes > 4);
}

static void ipv6_loopback(void **state) {
  struct fixture *f = fixture_new("server", 1);
  struct tls_ctx *ct = client_tls();
  struct sockaddr_in6 sa;
  uv_tcp_t probe;
  struct client cl;
  int ok;
  (void)state;
  /* Skip when the machine has no ::1. */
  uv_tcp_init(&f->loop, &probe);
  uv_ip6_addr("::1", 0, &sa);
  ok = uv_tcp_bind(&probe, (struct sockaddr *)&sa, 0) == 0;
  uv_close((uv_handle_t *)&probe, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  if (!ok) {
    uv_loop_close(&f->loop);
    tls_ctx_free(f->server_tls);
    free(f);
    tls_ctx_free(ct);
    skip();
  }
  memset(&cl, 0, sizeof cl);
  f->peer.echo = 1;
  fixture_listen(f, "::1", 1);
  cl.c.data = &cl;
  conn_init(&f->loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "::1", f->port, ct), 0);
  run_for(&f->loop, opened_or_failed, &cl, 5000);
  assert_int_equal(cl.error, 0);
  assert_int_equal(conn_write(&cl.c, "hello", 5), 0);
  run_for(&f->loop, got_5, &cl, 5000);
  assert_memory_equal(cl.data, "hello", 5);
  assert_non_null(strstr(cl.c.peer, "[::1]:"));
  conn_close(&cl.c, cl_closed);
  fixture_free(f);
  tls_ctx_free(ct);
}

static void bad_ca_file(void **state) {
  struct tls_ctx *t = NULL;
  char err[256] = "";
  (void)state;
  assert_int_equal(
      tls_ctx_new_client(&t, "/nonexistent/ca.pem", err, sizeof err), BL_ETLS);
  assert_null(t);
  assert_non_null(strstr(err, "/nonexistent/ca.pem"));
  assert_int_equal(tls_ctx_new_server(&t, "/nonexistent/a", "/nonexistent/b",
                                      err, sizeof err),
                   BL_ETLS);
}

static void close_idle_and_states(void **state) {
  uv_loop_t loop;
  struct client cl;
  (void)state;
  memset(&cl, 0, sizeof cl);
  assert_int_equal(uv_loop_init(&loop), 0);
  cl.c.data = &cl;
  conn_init(&loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_write(&cl.c, "x", 1), BL_ESTATE);
  assert_int_equal(conn_connect(&cl.c, "", 1, NULL), BL_EINVAL);
  assert_int_equal(conn_connect(&cl.c, "h", 0, NULL), BL_EINVAL);
  conn_close(&cl.c, cl_closed);
  assert_int_equal(cl.closed, 1);
  /* Close while resolving. */
  memset(&cl, 0, sizeof cl);
  cl.c.data = &cl;
  conn_init(&loop, &cl.c, &client_cbs, NULL);
  assert_int_equal(conn_connect(&cl.c, "localhost", 9, NULL), 0);
  conn_close(&cl.c, cl_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(cl.closed, 1);
  assert_int_equal(cl.error, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tls_good_cert),
      cmocka_unit_test(tls_wrong_host),
      cmocka_unit_test(tls_unknown_ca),
      cmocka_unit_test(tls_expired),
      cmocka_unit_test(tls_name_checked),
      cmocka_unit_test(connect_refused),
      cmocka_unit_test(connect_timeout),
      cmocka_unit_test(peer_reset),
      cmocka_unit_test(plain_eof),
      cmocka_unit_test(close_inside_callbacks),
      cmocka_unit_test(large_write),
      cmocka_unit_test(backpressure),
      cmocka_unit_test(ipv6_loopback),
      cmocka_unit_test(bad_ca_file),
      cmocka_unit_test(close_idle_and_states),
  };
  return cmocka_run_group_tests_name("conn", tests, group_setup,
                                     group_teardown);
}
