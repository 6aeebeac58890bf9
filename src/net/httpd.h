/*
 * httpd.h: a small HTTP/1.1 server on the loop for /health and /metrics.
 *
 * Plain TCP on http.listen (loopback by default). Each connection reads one
 * request head (at most HTTPD_REQUEST_MAX bytes, within HTTPD_READ_TIMEOUT_MS),
 * gets one answer and is closed; at most HTTPD_MAX_CONNS are served at
 * once, further ones are closed at accept. Only GET and HEAD are served
 * (405 otherwise); a malformed request gets 400, an oversized one 431, a
 * slow one is cut off, an unknown path gets the handler's 404. Nothing it
 * does can stall the loop.
 */
#ifndef BL_NET_HTTPD_H
#define BL_NET_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

#define HTTPD_REQUEST_MAX 8192
#define HTTPD_READ_TIMEOUT_MS 5000
#define HTTPD_MAX_CONNS 64
#define HTTPD_RESPONSE_MAX ((size_t)16 << 20)

struct httpd;

/* Fills |body| and returns the status; sets *content_type (a static
 * string). Called for GET and HEAD with the path (query stripped). */
typedef int (*httpd_handler)(struct httpd *h, const char *path,
                             struct buf *body, const char **content_type);

struct httpd {
  void *data;
  uv_loop_t *loop;
  uv_tcp_t server;
  httpd_handler handler;
  int n_conns;
  int closing;
  int server_open;
  void (*close_cb)(struct httpd *h);
  char bound[64];           /* "ip:port" actually bound */
  uint64_t read_timeout_ms; /* HTTPD_READ_TIMEOUT_MS; tests may lower it */
  uint64_t requests, bad_requests, rejected;
};

/* Parses "host:port" ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0").
 * Returns 0 or BL_EINVAL. */
int httpd_parse_listen(const char *listen, char *host, size_t hostlen,
                       int *port);

/* Binds and listens on |listen|. Returns 0, BL_EINVAL or a UV_E* code
 * (UV_EADDRINUSE ...); after a UV_E* failure the server handle is closing:
 * run the loop before releasing |h|. */
int httpd_start(uv_loop_t *loop, struct httpd *h, const char *listen,
                httpd_handler handler);

/* Parses a request head. Returns the head length when complete, 0 when
 * more bytes are needed, or a negative code: BL_EPARSE (400), BL_ETOOBIG
 * (431). Fills method and path (query stripped). */
long httpd_parse_request(const char *buf, size_t len, char *method,
                         size_t methodlen, char *path, size_t pathlen);

void httpd_close(struct httpd *h, void (*cb)(struct httpd *h));

#endif
