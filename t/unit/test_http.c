/*
 * test_http.c: net/http against a real HTTP/1.1 server on the same loop
 * (http_test_server.h): statuses, headers, query encoding, timeouts, body
 * limits, chunked bodies, 50 concurrent requests, cancellation, refused
 * connections, and a clean loop after http_close().
 *
 * TLS: a throw-away self-signed certificate (openssl req) served by
 * `openssl s_server -www` proves that a configured CA file is used and
 * that verification is on: an unknown issuer and a name mismatch both
 * fail with BL_EVERIFY. Skipped when openssl is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "core/err.h"
#include "net/http.h"

#include "http_test_server.h"

struct fx {
  uv_loop_t loop;
  struct ts_server srv;
  struct http http;
  uv_timer_t watchdog;
  uv_timer_t aux;
  int aux_used;
  int ncb;  /* callbacks seen */
  int want; /* callbacks before everything is closed */
  int closed;
  char base[64];
};

struct treq {
  struct http_req req;
  int calls;
  int result;
  uint64_t done_at;
};

static void fx_http_closed(struct http *h) {
  struct fx *f = h->data;
  f->closed++;
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  if (f->aux_used)
    uv_close((uv_handle_t *)&f->aux, NULL);
}

static void fx_shutdown(struct fx *f) {
  http_close(&f->http, fx_http_closed);
  ts_close(&f->srv);
}

static void fx_watchdog(uv_timer_t *t) {
  (void)t;
  fail_msg("test hung: watchdog fired");
}

static void fx_setup(struct fx *f, const struct http_opts *opts) {
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(ts_start(&f->loop, &f->srv), 0);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->srv.port);
  assert_int_equal(http_init(&f->loop, &f->http, opts), 0);
  f->http.data = f;
  uv_timer_init(&f->loop, &f->watchdog);
  uv_timer_start(&f->watchdog, fx_watchdog, 10000, 0);
  uv_unref((uv_handle_t *)&f->watchdog);
}

static void fx_run(struct fx *f) {
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->closed, 1);
  assert_int_equal(f->srv.open_handles, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void treq_init(struct treq *t, struct fx *f) {
  memset(t, 0, sizeof *t);
  http_req_init(&t->req);
  t->req.data = f;
  t->result = 1;
}

/* Counts the callback; shuts everything down after the last one. */
static void count_cb(struct http_req *req, int result) {
  struct treq *t = (struct treq *)req;
  struct fx *f = req->data;
  t->calls++;
  t->result = result;
  t->done_at = uv_now(&f->loop);
  if (++f->ncb == f->want)
    fx_shutdown(f);
}

static char *url(struct fx *f, const char *path, char *out, size_t len) {
  snprintf(out, len, "%s%s", f->base, path);
  return out;
}

static void get_json_with_headers(void **state) {
  struct fx f;
  struct treq t;
  char u[128];
  const char *v;
  size_t vlen;
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  f.want = 1;
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/json", u, sizeof u),
                            NULL, 0, count_cb),
                   0);
  assert_int_equal(t.calls, 0); /* never from inside http_get */
  fx_run(&f);
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.result, 0);
  assert_int_equal(t.req.status, 200);
  assert_string_equal(t.req.body.data, "{\"serverTime\":1700000000000}");
  assert_int_equal(t.req.used_weight_1m, 42);
  assert_int_equal(t.req.retry_after_s, -1);
  v = http_req_header(&t.req, "x-custom", &vlen);
  assert_non_null(v);
  assert_int_equal(vlen, strlen("spaced value"));
  assert_memory_equal(v, "spaced value", vlen);
  v = http_req_header(&t.req, "content-type", &vlen);
  assert_non_null(v);
  assert_memory_equal(v, "application/json", vlen);
  assert_null(http_req_header(&t.req, "X-Absent", &vlen));
  assert_null(http_req_header(&t.req, "X-Custo", &vlen));
  http_req_free(&t.req);
}

static void query_params_are_encoded(void **state) {
  struct fx f;
  struct treq a, b;
  char u[128];
  const struct http_param p[] = {
      {"symbol", "BTCUSDT"}, {"weird", "a b&c=d/\xc3\xa9"}, {"limit", "1000"}};
  const struct http_param p2[] = {{"x y", "1"}};
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&a, &f);
  treq_init(&b, &f);
  f.want = 2;
  assert_int_equal(
      http_get(&f.http, &a.req, url(&f, "/echo", u, sizeof u), p, 3, count_cb),
      0);
  assert_int_equal(http_get(&f.http, &b.req,
                            url(&f, "/echo?fixed=1", u, sizeof u), p2, 1,
                            count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(a.result, 0);
  assert_string_equal(a.req.body.data,
                      "symbol=BTCUSDT&weird=a%20b%26c%3Dd%2F%C3%A9&limit=1000");
  assert_string_equal(a.req.url + strlen(f.base),
                      "/echo?symbol=BTCUSDT&weird=a%20b%26c%3Dd%2F%C3%A9"
                      "&limit=1000");
  assert_int_equal(b.result, 0);
  assert_string_equal(b.req.body.data, "fixed=1&x%20y=1");
  http_req_free(&a.req);
  http_req_free(&b.req);
}

static void status_429_and_500_are_responses(void **state) {
  struct fx f;
  struct treq a, b;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&a, &f);
  treq_init(&b, &f);
  f.want = 2;
  assert_int_equal(http_get(&f.http, &a.req, url(&f, "/429", u, sizeof u), NULL,
                            0, count_cb),
                   0);
  assert_int_equal(http_get(&f.http, &b.req, url(&f, "/500", u, sizeof u), NULL,
                            0, count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(a.result, 0);
  assert_int_equal(a.req.status, 429);
  assert_int_equal(a.req.retry_after_s, 7);
  assert_int_equal(a.req.used_weight_1m, 6001);
  assert_string_equal(a.req.body.data,
                      "{\"code\":-1003,\"msg\":\"Too many requests.\"}");
  assert_int_equal(b.result, 0);
  assert_int_equal(b.req.status, 500);
  assert_string_equal(b.req.body.data, "oops");
  assert_int_equal(b.req.retry_after_s, -1);
  http_req_free(&a.req);
  http_req_free(&b.req);
}

static void stall_times_out(void **state) {
  struct fx f;
  struct treq t;
  char u[128];
  uint64_t t0;
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  t.req.timeout_ms = 300;
  f.want = 1;
  uv_update_time(&f.loop);
  t0 = uv_now(&f.loop);
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/stall", u, sizeof u),
                            NULL, 0, count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.result, BL_ETIMEDOUT);
  assert_int_equal(t.req.status, 0);
  assert_true(t.req.errstr[0] != '\0');
  assert_true(t.done_at - t0 >= 250);
  assert_true(t.done_at - t0 < 3000);
  http_req_free(&t.req);
}

static void body_limit(void **state) {
  struct fx f;
  struct treq a, b, c, d;
  char u[128];
  struct http_opts o = {.body_max = 1000};
  (void)state;
  fx_setup(&f, &o);
  treq_init(&a, &f);
  treq_init(&b, &f);
  treq_init(&c, &f);
  treq_init(&d, &f);
  d.req.body_max = 100000; /* per-request limit beats the default */
  f.want = 4;
  assert_int_equal(http_get(&f.http, &a.req,
                            url(&f, "/big?n=5000", u, sizeof u), NULL, 0,
                            count_cb),
                   0);
  assert_int_equal(http_get(&f.http, &b.req,
                            url(&f, "/bigchunked?n=5000", u, sizeof u), NULL, 0,
                            count_cb),
                   0);
  assert_int_equal(http_get(&f.http, &c.req,
                            url(&f, "/big?n=1000", u, sizeof u), NULL, 0,
                            count_cb),
                   0);
  assert_int_equal(http_get(&f.http, &d.req,
                            url(&f, "/bigchunked?n=50000", u, sizeof u), NULL,
                            0, count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(a.result, BL_ETOOBIG);
  assert_int_equal(b.result, BL_ETOOBIG);
  assert_true(b.req.body.len <= 1000);
  assert_int_equal(c.result, 0);
  assert_int_equal(c.req.body.len, 1000);
  assert_int_equal(d.result, 0);
  assert_int_equal(d.req.body.len, 50000);
  assert_int_equal(d.req.body.data[49999], 'y');
  http_req_free(&a.req);
  http_req_free(&b.req);
  http_req_free(&c.req);
  http_req_free(&d.req);
}

static void chunked_body(void **state) {
  struct fx f;
  struct treq t;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  f.want = 1;
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/chunked", u, sizeof u),
                            NULL, 0, count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(t.result, 0);
  assert_int_equal(t.req.status, 200);
  assert_string_equal(t.req.body.data, "hello, chunked world");
  http_req_free(&t.req);
}

#define N_CONC 50

static void fifty_concurrent(void **state) {
  struct fx f;
  static struct treq t[N_CONC];
  char u[128], v[16], want[32];
  struct http_param p;
  int i;
  (void)state;
  fx_setup(&f, NULL);
  f.want = N_CONC;
  for (i = 0; i < N_CONC; i++) {
    treq_init(&t[i], &f);
    snprintf(v, sizeof v, "%d", i);
    p.name = "i";
    p.value = v;
    assert_int_equal(http_get(&f.http, &t[i].req, url(&f, "/echo", u, sizeof u),
                              &p, 1, count_cb),
                     0);
  }
  assert_int_equal(f.http.n_active, N_CONC);
  fx_run(&f);
  assert_int_equal(f.ncb, N_CONC);
  assert_int_equal(f.srv.requests, N_CONC);
  for (i = 0; i < N_CONC; i++) {
    assert_int_equal(t[i].calls, 1);
    assert_int_equal(t[i].result, 0);
    assert_int_equal(t[i].req.status, 200);
    snprintf(want, sizeof want, "i=%d", i);
    assert_string_equal(t[i].req.body.data, want);
    http_req_free(&t[i].req);
  }
}

/* Chains requests from inside the callback, reusing the same struct. */
static int chain_left;
static void chain_cb(struct http_req *req, int result) {
  struct treq *t = (struct treq *)req;
  struct fx *f = req->data;
  char u[128];
  t->calls++;
  t->result = result;
  assert_int_equal(result, 0);
  assert_int_equal(req->status, 200);
  if (--chain_left > 0) {
    assert_int_equal(http_get(&f->http, req, url(f, "/json", u, sizeof u), NULL,
                              0, chain_cb),
                     0);
    return;
  }
  fx_shutdown(f);
}

static void reuse_from_callback(void **state) {
  struct fx f;
  struct treq t;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  chain_left = 5;
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/json", u, sizeof u),
                            NULL, 0, chain_cb),
                   0);
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/json", u, sizeof u),
                            NULL, 0, chain_cb),
                   BL_EINVAL); /* already in flight */
  fx_run(&f);
  assert_int_equal(t.calls, 5);
  assert_int_equal(f.srv.requests, 5);
  http_req_free(&t.req);
}

static void close_now(uv_timer_t *timer) {
  struct fx *f = timer->data;
  fx_shutdown(f);
}

#define N_STALL 10

static void cancel_all_at_close(void **state) {
  struct fx f;
  struct treq t[N_STALL];
  char u[128];
  int i;
  (void)state;
  fx_setup(&f, NULL);
  f.want = -1; /* only the timer closes */
  for (i = 0; i < N_STALL; i++) {
    treq_init(&t[i], &f);
    assert_int_equal(http_get(&f.http, &t[i].req,
                              url(&f, "/stall", u, sizeof u), NULL, 0,
                              count_cb),
                     0);
  }
  uv_timer_init(&f.loop, &f.aux);
  f.aux_used = 1;
  f.aux.data = &f;
  uv_timer_start(&f.aux, close_now, 200, 0);
  fx_run(&f);
  for (i = 0; i < N_STALL; i++) {
    assert_int_equal(t[i].calls, 1);
    assert_int_equal(t[i].result, BL_ECANCELED);
    http_req_free(&t[i].req);
  }
  assert_int_equal(f.srv.requests, N_STALL); /* they had really started */
}

static void get_after_close_refused(void **state) {
  struct fx f;
  struct treq t;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  fx_shutdown(&f);
  assert_int_equal(http_get(&f.http, &t.req, url(&f, "/json", u, sizeof u),
                            NULL, 0, count_cb),
                   BL_ESTATE);
  fx_run(&f);
  assert_int_equal(t.calls, 0);
  http_req_free(&t.req);
}

static struct treq *cancel_target;
static void cancel_other_cb(struct http_req *req, int result) {
  struct treq *t = (struct treq *)req;
  struct fx *f = req->data;
  t->calls++;
  t->result = result;
  if (t != cancel_target) {
    http_cancel(&cancel_target->req);
    http_cancel(&cancel_target->req); /* twice is harmless */
    return;
  }
  fx_shutdown(f);
}

static void cancel_one(void **state) {
  struct fx f;
  struct treq a, b;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&a, &f);
  treq_init(&b, &f);
  cancel_target = &a;
  assert_int_equal(http_get(&f.http, &a.req, url(&f, "/stall", u, sizeof u),
                            NULL, 0, cancel_other_cb),
                   0);
  assert_int_equal(http_get(&f.http, &b.req, url(&f, "/json", u, sizeof u),
                            NULL, 0, cancel_other_cb),
                   0);
  fx_run(&f);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.result, 0);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.result, BL_ECANCELED);
  assert_string_equal(a.req.errstr, "canceled");
  http_req_free(&a.req);
  http_req_free(&b.req);
}

static int free_port(void) {
  uv_loop_t loop;
  uv_tcp_t tcp;
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int namelen = sizeof name, port;
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &tcp);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  assert_int_equal(uv_tcp_bind(&tcp, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *)&name, &namelen),
                   0);
  port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  uv_close((uv_handle_t *)&tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return port;
}

static void refused_and_dropped(void **state) {
  struct fx f;
  struct treq a, b;
  char u[128];
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&a, &f);
  treq_init(&b, &f);
  f.want = 2;
  snprintf(u, sizeof u, "http://127.0.0.1:%d/json", free_port());
  assert_int_equal(http_get(&f.http, &a.req, u, NULL, 0, count_cb), 0);
  assert_int_equal(http_get(&f.http, &b.req, url(&f, "/close", u, sizeof u),
                            NULL, 0, count_cb),
                   0);
  fx_run(&f);
  assert_int_equal(a.result, BL_EHTTP);
  assert_int_equal(a.req.status, 0);
  assert_non_null(strstr(a.req.errstr, "onnect"));
  assert_int_equal(b.result, BL_EHTTP);
  assert_true(b.req.errstr[0] != '\0');
  http_req_free(&a.req);
  http_req_free(&b.req);
}

static void bad_arguments(void **state) {
  struct fx f;
  struct treq t;
  struct http_param p = {"a", NULL};
  (void)state;
  fx_setup(&f, NULL);
  treq_init(&t, &f);
  assert_int_equal(http_get(&f.http, &t.req, NULL, NULL, 0, count_cb),
                   BL_EINVAL);
  assert_int_equal(http_get(&f.http, &t.req, "http://x/", &p, 1, count_cb),
                   BL_EINVAL);
  assert_int_equal(http_get(&f.http, &t.req, "http://x/", NULL, 1, count_cb),
                   BL_EINVAL);
  fx_shutdown(&f);
  fx_run(&f);
  assert_int_equal(t.calls, 0);
  http_req_free(&t.req);
}

/* ---- TLS against openssl s_server ---- */

extern char **environ;

struct tls_srv {
  char dir[64];
  char cert[96], key[96];
  pid_t pid;
  int port;
};

static int run_quiet(const char *const *argv) {
  pid_t pid;
  int st;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ)) {
    posix_spawn_file_actions_destroy(&fa);
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  if (argv[1] && strcmp(argv[1], "s_server") == 0)
    return pid;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Makes a self-signed certificate for |san| and serves it on a free
 * port. Returns 0, or -1 when openssl is not usable. */
static int tls_start(struct tls_srv *t, const char *san) {
  char acc[32], sanext[128];
  int i;
  struct sockaddr_in addr;
  snprintf(t->dir, sizeof t->dir, "/tmp/bl-http-tls-XXXXXX");
  if (!mkdtemp(t->dir))
    return -1;
  snprintf(t->cert, sizeof t->cert, "%s/cert.pem", t->dir);
  snprintf(t->key, sizeof t->key, "%s/key.pem", t->dir);
  snprintf(sanext, sizeof sanext, "subjectAltName=%s", san);
  {
    const char *argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:P-256",
                          "-nodes",
                          "-keyout",
                          t->key,
                          "-out",
                          t->cert,
                          "-days",
                          "2",
                          "-subj",
                          "/CN=bl-test",
                          "-addext",
                          sanext,
                          NULL};
    if (run_quiet(argv) != 0)
      return -1;
  }
  t->port = free_port();
  snprintf(acc, sizeof acc, "127.0.0.1:%d", t->port);
  {
    const char *argv[] = {"openssl", "s_server", "-quiet", "-www",
                          "-accept", acc,        "-cert",  t->cert,
                          "-key",    t->key,     NULL};
    t->pid = run_quiet(argv);
    if (t->pid <= 0)
      return -1;
  }
  uv_ip4_addr("127.0.0.1", t->port, &addr);
  for (i = 0; i < 250; i++) { /* test-only wait for the listener */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    struct timespec ts = {0, 20 * 1000000L};
    close(fd);
    if (ok)
      return 0;
    nanosleep(&ts, NULL);
  }
  return -1;
}

static void tls_stop(struct tls_srv *t) {
  if (t->pid > 0) {
    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
  }
  unlink(t->cert);
  unlink(t->key);
  rmdir(t->dir);
}

/* One GET of |u| with |ca| as the CA file; returns the result. */
static int tls_get(const char *ca, const char *u, long *status) {
  struct fx f;
  struct treq t;
  struct http_opts o = {.ca_file = ca};
  fx_setup(&f, &o);
  treq_init(&t, &f);
  f.want = 1;
  assert_int_equal(http_get(&f.http, &t.req, u, NULL, 0, count_cb), 0);
  fx_run(&f);
  assert_int_equal(t.calls, 1);
  *status = t.req.status;
  if (t.result)
    assert_true(t.req.errstr[0] != '\0');
  http_req_free(&t.req);
  return t.result;
}

static struct tls_srv good, wrong;

static int tls_teardown(void **state) {
  (void)state;
  if (good.pid > 0)
    tls_stop(&good);
  if (wrong.pid > 0)
    tls_stop(&wrong);
  return 0;
}

static void tls_verification(void **state) {
  char u[128];
  long status;
  (void)state;
  memset(&good, 0, sizeof good);
  memset(&wrong, 0, sizeof wrong);
  if (tls_start(&good, "IP:127.0.0.1,DNS:localhost")) {
    tls_stop(&good);
    skip();
  }
  snprintf(u, sizeof u, "https://127.0.0.1:%d/", good.port);
  assert_int_equal(tls_get(good.cert, u, &status), 0);
  assert_int_equal(status, 200);
  /* the system bundle does not know our CA */
  assert_int_equal(tls_get(NULL, u, &status), BL_EVERIFY);
  assert_int_equal(status, 0);
  tls_stop(&good);

  /* trusted issuer, but the name does not match */
  assert_int_equal(tls_start(&wrong, "DNS:other.example"), 0);
  snprintf(u, sizeof u, "https://127.0.0.1:%d/", wrong.port);
  assert_int_equal(tls_get(wrong.cert, u, &status), BL_EVERIFY);
  tls_stop(&wrong);
}

static void dns_is_async(void **state) {
  (void)state;
  /* The file comment of http.c relies on this. */
  assert_int_equal(http_async_dns(), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_json_with_headers),
      cmocka_unit_test(query_params_are_encoded),
      cmocka_unit_test(status_429_and_500_are_responses),
      cmocka_unit_test(stall_times_out),
      cmocka_unit_test(body_limit),
      cmocka_unit_test(chunked_body),
      cmocka_unit_test(fifty_concurrent),
      cmocka_unit_test(reuse_from_callback),
      cmocka_unit_test(cancel_all_at_close),
      cmocka_unit_test(get_after_close_refused),
      cmocka_unit_test(cancel_one),
      cmocka_unit_test(refused_and_dropped),
      cmocka_unit_test(bad_arguments),
      cmocka_unit_test(dns_is_async),
      cmocka_unit_test_teardown(tls_verification, tls_teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
