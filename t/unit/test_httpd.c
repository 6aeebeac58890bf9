/*
 * test_httpd.c: unit tests for net/httpd: the request-head parser and the
 * server on a loopback port (200, 404, 405, 400, 431, a slow client cut off,
 * HEAD without a body, uv_loop_close() == 0 after close).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "net/httpd.h"

static void parse_listen(void **state) {
  char host[64];
  int port;
  (void)state;
  assert_int_equal(httpd_parse_listen("127.0.0.1:8080", host, 64, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 8080);
  assert_int_equal(httpd_parse_listen("[::1]:9", host, 64, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(httpd_parse_listen("nocolon", host, 64, &port), BL_EINVAL);
  assert_int_equal(httpd_parse_listen("h:70000", host, 64, &port), BL_EINVAL);
  assert_int_equal(httpd_parse_listen(":80", host, 64, &port), BL_EINVAL);
}

static void parse_request(void **state) {
  char m[16], p[256];
  const char *ok = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\nrest";
  (void)state;
  assert_int_equal(httpd_parse_request(ok, strlen(ok), m, 16, p, 256),
                   (long)strlen(ok) - 4);
  assert_string_equal(m, "GET");
  assert_string_equal(p, "/metrics");
  assert_int_equal(httpd_parse_request("GET / HTTP/1.1\r\n", 16, m, 16, p, 256),
                   0);
  assert_int_equal(
      httpd_parse_request("GET / FTP/1.0\r\n\r\n", 17, m, 16, p, 256),
      BL_EPARSE);
  assert_int_equal(
      httpd_parse_request("get / HTTP/1.1\r\n\r\n", 18, m, 16, p, 256),
      BL_EPARSE);
  assert_int_equal(
      httpd_parse_request("GET noslash HTTP/1.1\r\n\r\n", 24, m, 16, p, 256),
      BL_EPARSE);
  assert_int_equal(httpd_parse_request("garbage\r\n\r\n", 11, m, 16, p, 256),
                   BL_EPARSE);
}

/* --- live server ---------------------------------------------------------
 */

struct client {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  const char *request;
  char resp[4096];
  size_t len;
  int closed;
};

static int handler(struct httpd *h, const char *path, struct buf *body,
                   const char **ctype) {
  (void)h;
  if (!strcmp(path, "/metrics")) {
    *ctype = "text/plain; version=0.0.4";
    buf_append_str(body, "up 1\n");
    return 200;
  }
  buf_append_str(body, "not found\n");
  return 404;
}

static void client_closed(uv_handle_t *h) {
  struct client *c = h->data;
  c->closed = 1;
}

static void client_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  struct client *c = h->data;
  (void)s;
  b->base = c->resp + c->len;
  b->len = sizeof c->resp - c->len - 1;
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct client *c = s->data;
  (void)b;
  if (n > 0) {
    c->len += (size_t)n;
    c->resp[c->len] = '\0';
  } else if (n < 0) {
    uv_close((uv_handle_t *)&c->tcp, client_closed);
  }
}

static void client_written(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}

static void client_connected(uv_connect_t *req, int status) {
  struct client *c = req->data;
  uv_buf_t b;
  assert_int_equal(status, 0);
  uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
  if (c->request && *c->request) {
    b = uv_buf_init((char *)c->request, (unsigned)strlen(c->request));
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, client_written);
  }
}

static void server_closed(struct httpd *h) {
  *(int *)h->data = 1;
}

/* Sends |request| to a fresh server and returns the whole answer. */
static void exchange(const char *request, char *out, size_t outlen) {
  uv_loop_t loop;
  struct httpd h;
  struct client c;
  struct sockaddr_in addr;
  int port, closed = 0;
  uv_loop_init(&loop);
  assert_int_equal(httpd_start(&loop, &h, "127.0.0.1:0", handler), 0);
  h.data = &closed;
  h.read_timeout_ms = 200;
  port = (int)strtol(strrchr(h.bound, ':') + 1, NULL, 10);
  memset(&c, 0, sizeof c);
  c.request = request;
  uv_tcp_init(&loop, &c.tcp);
  c.tcp.data = &c;
  c.conn.data = &c;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_connect(&c.conn, &c.tcp, (struct sockaddr *)&addr, client_connected);
  while (!c.closed)
    uv_run(&loop, UV_RUN_ONCE);
  httpd_close(&h, server_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  snprintf(out, outlen, "%s", c.resp);
}

static void serves_paths(void **state) {
  char r[4096];
  (void)state;
  exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(r, "Content-Length: 5\r\n"));
  assert_non_null(strstr(r, "\r\n\r\nup 1\n"));
  exchange("GET /nope HTTP/1.1\r\n\r\n", r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 404 Not Found"));
  exchange("HEAD /metrics HTTP/1.0\r\n\r\n", r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
  assert_null(strstr(r, "up 1"));
}

static void rejects_bad_requests(void **state) {
  char r[4096];
  static char big[HTTPD_REQUEST_MAX + 100];
  (void)state;
  exchange("POST /metrics HTTP/1.1\r\n\r\n", r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 405"));
  exchange("\x01\x02 nonsense\r\n\r\n", r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 400"));
  memset(big, 'a', sizeof big - 1);
  memcpy(big, "GET /", 5);
  exchange(big, r, sizeof r);
  assert_non_null(strstr(r, "HTTP/1.1 431"));
}

static void slow_client_is_cut_off(void **state) {
  char r[4096];
  (void)state;
  exchange("GET /metr", r, sizeof r); /* never finishes its head */
  assert_non_null(strstr(r, "HTTP/1.1 408"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_listen),
      cmocka_unit_test(parse_request),
      cmocka_unit_test(serves_paths),
      cmocka_unit_test(rejects_bad_requests),
      cmocka_unit_test(slow_client_is_cut_off),
  };
  return cmocka_run_group_tests_name("httpd", tests, NULL, NULL);
}
