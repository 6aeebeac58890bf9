/*
 * test_ws_proto.c: unit tests for the I/O-free WebSocket pieces
 * (net/ws_proto.c): URL parsing, accept key, request building, and both
 * handshake parsers on buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/ws.h"

/* RFC 6455 section 1.3 example. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void url_parse(void **state) {
  struct ws_url u;
  (void)state;
  assert_int_equal(ws_url_parse("wss://stream.binance.com:9443/ws", &u), 0);
  assert_int_equal(u.tls, 1);
  assert_string_equal(u.host, "stream.binance.com");
  assert_int_equal(u.port, 9443);
  assert_string_equal(u.path, "/ws");

  assert_int_equal(
      ws_url_parse("ws://localhost/stream?streams=a@trade/b@trade", &u), 0);
  assert_int_equal(u.tls, 0);
  assert_int_equal(u.port, 80);
  assert_string_equal(u.path, "/stream?streams=a@trade/b@trade");

  assert_int_equal(ws_url_parse("WSS://h", &u), 0);
  assert_int_equal(u.port, 443);
  assert_string_equal(u.path, "/");
  assert_int_equal(ws_url_parse("ws://h?x=1", &u), 0);
  assert_string_equal(u.path, "/?x=1");
  assert_int_equal(ws_url_parse("ws://[::1]:8080/x", &u), 0);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 8080);

  assert_int_equal(ws_url_parse("http://h/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://h:0/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://h:65536/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://h:12x/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://user@h/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://h/a#frag", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://h/a b", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse("ws://[::1/", &u), BL_EINVAL);
  assert_int_equal(ws_url_parse(NULL, &u), BL_EINVAL);
}

static void accept_key(void **state) {
  char out[32];
  (void)state;
  assert_int_equal(ws_accept_key(RFC_KEY, out, sizeof out), 0);
  assert_string_equal(out, RFC_ACCEPT);
  assert_int_not_equal(ws_accept_key(RFC_KEY, out, 10), 0);
}

static void build_request(void **state) {
  struct ws_url u;
  struct buf b;
  (void)state;
  buf_init(&b, 8192);
  assert_int_equal(ws_url_parse("wss://h.example:9443/ws?x=1", &u), 0);
  assert_int_equal(ws_handshake_build_request(&b, &u, RFC_KEY, NULL), 0);
  assert_non_null(strstr(b.data, "GET /ws?x=1 HTTP/1.1\r\n"));
  assert_non_null(strstr(b.data, "\r\nHost: h.example:9443\r\n"));
  assert_non_null(strstr(b.data, "Sec-WebSocket-Key: " RFC_KEY "\r\n"));
  assert_non_null(strstr(b.data, "Sec-WebSocket-Version: 13\r\n"));
  assert_int_equal(memcmp(b.data + b.len - 4, "\r\n\r\n", 4), 0);
  buf_reset(&b);
  assert_int_equal(ws_url_parse("wss://h.example/ws", &u), 0);
  assert_int_equal(ws_handshake_build_request(&b, &u, RFC_KEY, "X-A: 1"), 0);
  assert_non_null(strstr(b.data, "\r\nHost: h.example\r\n"));
  assert_non_null(strstr(b.data, "\r\nX-A: 1\r\n\r\n"));
  buf_reset(&b);
  assert_int_equal(ws_url_parse("ws://[::1]:81/", &u), 0);
  assert_int_equal(ws_handshake_build_request(&b, &u, RFC_KEY, NULL), 0);
  assert_non_null(strstr(b.data, "\r\nHost: [::1]:81\r\n"));

  /* The request our builder makes is accepted by our request parser. */
  {
    struct ws_http_request req;
    assert_int_equal(ws_handshake_parse_request(b.data, b.len, &req),
                     (long)b.len);
    assert_true(req.is_upgrade);
    assert_string_equal(req.key, RFC_KEY);
    assert_string_equal(req.path, "/");
  }
  buf_free(&b);
}

static long parse_resp(const char *s, int *status) {
  return ws_handshake_parse_response(s, strlen(s), RFC_KEY, status);
}

static void response_accepted(void **state) {
  const char *ok = "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n";
  char both[512];
  int status;
  (void)state;
  assert_int_equal(parse_resp(ok, &status), (long)strlen(ok));
  assert_int_equal(status, 101);

  /* Bytes after the head are not part of it (they are frames). */
  snprintf(both, sizeof both, "%s\x81\x02hi", ok);
  assert_int_equal(
      ws_handshake_parse_response(both, strlen(ok) + 4, RFC_KEY, &status),
      (long)strlen(ok));

  /* Case-insensitive names and tokens; token lists. */
  assert_true(parse_resp("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\n"
                         "CONNECTION: keep-alive, Upgrade\r\n"
                         "sec-websocket-accept:   " RFC_ACCEPT "  \r\n\r\n",
                         &status) > 0);
  /* No reason phrase at all. */
  assert_true(parse_resp("HTTP/1.1 101\r\nUpgrade: websocket\r\n"
                         "Connection: upgrade\r\n"
                         "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                         &status) > 0);
}

static void response_refused(void **state) {
  int status;
  (void)state;
  /* Wrong accept key. */
  assert_int_equal(
      parse_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
                 &status),
      BL_EHANDSHAKE);
  /* Missing accept. */
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  /* Non-101 statuses are reported. */
  assert_int_equal(parse_resp("HTTP/1.1 429 Too Many Requests\r\n"
                              "Retry-After: 10\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  assert_int_equal(status, 429);
  assert_int_equal(parse_resp("HTTP/1.1 404 Not Found\r\n"
                              "Content-Length: 0\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  assert_int_equal(status, 404);
  /* Missing Upgrade / Connection tokens. */
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade: h2c\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                              "Connection: keep-alive\r\n"
                              "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgraded\r\n"
                              "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
  /* Two different accept headers. */
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                              "Sec-WebSocket-Accept: x\r\n\r\n",
                              &status),
                   BL_EHANDSHAKE);
}

static void response_malformed(void **state) {
  int status;
  char *big;
  size_t n = WS_MAX_HEAD + 100;
  (void)state;
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nUpgrade", &status), 0);
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\n\r", &status), 0);
  assert_int_equal(parse_resp("", &status), 0);
  assert_int_equal(parse_resp("FTP/1.1 101 x\r\n\r\n", &status), BL_EPARSE);
  assert_int_equal(parse_resp("HTTP/1.1 1x1 x\r\n\r\n", &status), BL_EPARSE);
  assert_int_equal(parse_resp("HTTP/1.1 1011 x\r\n\r\n", &status), BL_EPARSE);
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nno colon\r\n\r\n", &status),
                   BL_EPARSE);
  assert_int_equal(
      parse_resp("HTTP/1.1 101 x\r\nA: b\r\n folded\r\n\r\n", &status),
      BL_EPARSE);
  assert_int_equal(parse_resp("HTTP/1.1 101 x\r\nA: b\nC: d\r\n\r\n", &status),
                   BL_EPARSE);

  big = malloc(n + 1);
  assert_non_null(big);
  memcpy(big, "HTTP/1.1 101 x\r\n", 16);
  for (size_t i = 16; i < n; i++)
    big[i] = (i % 80 == 79) ? '\n' : ((i % 80 == 78) ? '\r' : 'a');
  big[n] = '\0';
  assert_int_equal(ws_handshake_parse_response(big, n, RFC_KEY, &status),
                   BL_ETOOBIG);
  /* Below the limit and incomplete: wait for more. */
  assert_int_equal(ws_handshake_parse_response(big, 8000, RFC_KEY, &status), 0);
  free(big);
}

static void request_parse(void **state) {
  struct ws_http_request req;
  const char *up = "GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\n"
                   "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                   "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\nrest";
  const char *plain = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *badkey = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: abc\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
  const char *badver = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY
                       "\r\nSec-WebSocket-Version: 8\r\n\r\n";
  char *big;
  size_t n = WS_MAX_HEAD + 10;
  (void)state;

  assert_int_equal(ws_handshake_parse_request(up, strlen(up), &req),
                   (long)strlen(up) - 4);
  assert_string_equal(req.method, "GET");
  assert_string_equal(req.path, "/ws/btcusdt@trade");
  assert_string_equal(req.key, RFC_KEY);
  assert_true(req.is_upgrade);

  assert_int_equal(ws_handshake_parse_request(plain, strlen(plain), &req),
                   (long)strlen(plain));
  assert_false(req.is_upgrade);
  assert_string_equal(req.key, "");
  assert_string_equal(req.path, "/health");

  assert_true(ws_handshake_parse_request(badkey, strlen(badkey), &req) > 0);
  assert_false(req.is_upgrade);
  assert_string_equal(req.key, "");
  assert_true(ws_handshake_parse_request(badver, strlen(badver), &req) > 0);
  assert_false(req.is_upgrade);

  assert_int_equal(ws_handshake_parse_request("GET / HTTP/1.1\r\n", 16, &req),
                   0);
  assert_int_equal(ws_handshake_parse_request("GET /\r\n\r\n", 9, &req),
                   BL_EPARSE);
  assert_int_equal(
      ws_handshake_parse_request("get / HTTP/1.1\r\n\r\n", 18, &req),
      BL_EPARSE);
  assert_int_equal(
      ws_handshake_parse_request("GET  / HTTP/1.1\r\n\r\n", 19, &req),
      BL_EPARSE);

  big = malloc(n);
  assert_non_null(big);
  memset(big, 'a', n);
  memcpy(big, "GET /", 5);
  assert_int_equal(ws_handshake_parse_request(big, n, &req), BL_ETOOBIG);
  /* A path longer than struct ws_http_request.path. */
  memcpy(big + 3000, " HTTP/1.1\r\n\r\n", 13);
  assert_int_equal(ws_handshake_parse_request(big, 3013, &req), BL_ETOOBIG);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(url_parse),        cmocka_unit_test(accept_key),
      cmocka_unit_test(build_request),    cmocka_unit_test(response_accepted),
      cmocka_unit_test(response_refused), cmocka_unit_test(response_malformed),
      cmocka_unit_test(request_parse),
  };
  return cmocka_run_group_tests_name("ws_proto", tests, NULL, NULL);
}
