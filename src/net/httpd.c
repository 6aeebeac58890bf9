/*
 * httpd.c: the health and metrics server (see httpd.h).
 *
 * State: the listening socket and a count of live connections. A
 * connection lives on the heap from accept to the close callback of its
 * socket; its timer bounds how long the peer may take to send its request.
 */
#include "net/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/log.h"

struct httpd_conn {
  struct httpd *h;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  char in[HTTPD_REQUEST_MAX];
  size_t in_len;
  struct buf out;
  int handles; /* open uv handles: tcp, timer */
  int answered;
};

int httpd_parse_listen(const char *listen, char *host, size_t hostlen,
                       int *port) {
  const char *colon;
  char *end;
  long p;
  size_t n;
  if (!listen || !*listen)
    return BL_EINVAL;
  if (listen[0] == '[') {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':')
      return BL_EINVAL;
    n = (size_t)(close - listen - 1);
    if (n >= hostlen)
      return BL_EINVAL;
    memcpy(host, listen + 1, n);
    host[n] = '\0';
    colon = close + 1;
  } else {
    colon = strrchr(listen, ':');
    if (!colon)
      return BL_EINVAL;
    n = (size_t)(colon - listen);
    if (!n || n >= hostlen)
      return BL_EINVAL;
    memcpy(host, listen, n);
    host[n] = '\0';
  }
  p = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || *end || p < 0 || p > 65535)
    return BL_EINVAL;
  *port = (int)p;
  return 0;
}

long httpd_parse_request(const char *buf, size_t len, char *method,
                         size_t methodlen, char *path, size_t pathlen) {
  const char *end = NULL, *sp1, *sp2, *eol;
  size_t n;
  for (size_t i = 0; i + 3 < len; i++)
    if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
        buf[i + 3] == '\n') {
      end = buf + i + 4;
      break;
    }
  if (!end)
    return len >= HTTPD_REQUEST_MAX ? BL_ETOOBIG : 0;
  eol = memchr(buf, '\r', (size_t)(end - buf));
  sp1 = memchr(buf, ' ', (size_t)(eol - buf));
  if (!sp1)
    return BL_EPARSE;
  sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
  if (!sp2 || sp1 == buf || sp2 == sp1 + 1)
    return BL_EPARSE;
  if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
      (sp2[8] != '0' && sp2[8] != '1'))
    return BL_EPARSE;
  n = (size_t)(sp1 - buf);
  if (n >= methodlen)
    return BL_EPARSE;
  for (size_t i = 0; i < n; i++)
    if (buf[i] < 'A' || buf[i] > 'Z')
      return BL_EPARSE;
  memcpy(method, buf, n);
  method[n] = '\0';
  n = (size_t)(sp2 - sp1 - 1);
  if (sp1[1] != '/')
    return BL_EPARSE;
  {
    const char *q = memchr(sp1 + 1, '?', n);
    if (q)
      n = (size_t)(q - sp1 - 1);
  }
  if (n >= pathlen)
    return BL_ETOOBIG;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)sp1[1 + i] <= 0x20 || sp1[1 + i] == 0x7f)
      return BL_EPARSE;
  memcpy(path, sp1 + 1, n);
  path[n] = '\0';
  return (long)(end - buf);
}

static void maybe_closed(struct httpd *h);
static void server_closed(uv_handle_t *handle);

static void conn_handle_closed(uv_handle_t *handle) {
  struct httpd_conn *c = handle->data;
  struct httpd *h = c->h;
  if (--c->handles)
    return;
  buf_free(&c->out);
  free(c);
  h->n_conns--;
  maybe_closed(h);
}

static void conn_close(struct httpd_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void written(uv_write_t *req, int status) {
  struct httpd_conn *c = req->data;
  (void)status;
  conn_close(c);
}

static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Status";
  }
}

static void respond(struct httpd_conn *c, int status, const char *ctype,
                    const char *body, size_t body_len, int head_only) {
  uv_buf_t b;
  if (c->answered)
    return;
  c->answered = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer);
  buf_reset(&c->out);
  if (buf_printf(&c->out,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n"
                 "Cache-Control: no-store\r\n\r\n",
                 status, reason(status), ctype, body_len) ||
      (!head_only && buf_append(&c->out, body, body_len))) {
    conn_close(c);
    return;
  }
  b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, written))
    conn_close(c);
}

static void respond_error(struct httpd_conn *c, int status) {
  char body[64];
  int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
  c->h->bad_requests++;
  respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, 0);
}

static void serve(struct httpd_conn *c, const char *method, const char *path) {
  struct httpd *h = c->h;
  struct buf body;
  const char *ctype = "text/plain; charset=utf-8";
  int status, head = !strcmp(method, "HEAD");
  if (strcmp(method, "GET") && !head) {
    respond_error(c, 405);
    return;
  }
  h->requests++;
  buf_init(&body, HTTPD_RESPONSE_MAX);
  status = h->handler(h, path, &body, &ctype);
  respond(c, status, ctype, body.data ? body.data : "", body.len, head);
  buf_free(&body);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *b) {
  struct httpd_conn *c = handle->data;
  (void)suggested;
  b->base = c->in + c->in_len;
  b->len = sizeof c->in - c->in_len;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b) {
  struct httpd_conn *c = stream->data;
  char method[16], path[256];
  long rv;
  (void)b;
  if (nread == 0)
    return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->in_len += (size_t)nread;
  rv = httpd_parse_request(c->in, c->in_len, method, sizeof method, path,
                           sizeof path);
  if (rv == 0 && c->in_len == sizeof c->in)
    rv = BL_ETOOBIG;
  if (rv == 0)
    return;
  if (rv == BL_ETOOBIG)
    respond_error(c, 431);
  else if (rv < 0)
    respond_error(c, 400);
  else
    serve(c, method, path);
}

static void timeout_cb(uv_timer_t *t) {
  struct httpd_conn *c = t->data;
  respond_error(c, 408);
}

static void on_connection(uv_stream_t *server, int status) {
  struct httpd *h = server->data;
  struct httpd_conn *c;
  if (status < 0 || h->closing)
    return;
  c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->h = h;
  buf_init(&c->out, HTTPD_RESPONSE_MAX + 1024);
  uv_tcp_init(h->loop, &c->tcp);
  uv_timer_init(h->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  h->n_conns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    conn_close(c);
    return;
  }
  if (h->n_conns > HTTPD_MAX_CONNS) {
    h->rejected++;
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, timeout_cb, h->read_timeout_ms, 0);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int httpd_start(uv_loop_t *loop, struct httpd *h, const char *listen,
                httpd_handler handler) {
  char host[64];
  int port, rv;
  struct sockaddr_storage ss;
  int namelen = sizeof ss;
  memset(h, 0, sizeof *h);
  h->loop = loop;
  h->handler = handler;
  h->read_timeout_ms = HTTPD_READ_TIMEOUT_MS;
  if (httpd_parse_listen(listen, host, sizeof host, &port))
    return BL_EINVAL;
  if (strchr(host, ':'))
    rv = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    rv = uv_ip4_addr(!strcmp(host, "localhost") ? "127.0.0.1" : host, port,
                     (struct sockaddr_in *)&ss);
  if (rv)
    return BL_EINVAL;
  rv = uv_tcp_init(loop, &h->server);
  if (rv)
    return rv;
  h->server.data = h;
  h->server_open = 1;
  rv = uv_tcp_bind(&h->server, (struct sockaddr *)&ss, 0);
  if (!rv)
    rv = uv_listen((uv_stream_t *)&h->server, 128, on_connection);
  if (rv) {
    h->closing = 1;
    uv_close((uv_handle_t *)&h->server, server_closed);
    return rv;
  }
  uv_tcp_getsockname(&h->server, (struct sockaddr *)&ss, &namelen);
  if (ss.ss_family == AF_INET6) {
    char ip[INET6_ADDRSTRLEN];
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    snprintf(h->bound, sizeof h->bound, "[%s]:%d", ip,
             ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    char ip[INET_ADDRSTRLEN];
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    snprintf(h->bound, sizeof h->bound, "%s:%d", ip,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  return 0;
}

static void maybe_closed(struct httpd *h) {
  void (*cb)(struct httpd *);
  if (!h->closing || h->n_conns || h->server_open || !h->close_cb)
    return;
  cb = h->close_cb;
  h->close_cb = NULL;
  cb(h);
}

static void server_closed(uv_handle_t *handle) {
  struct httpd *h = handle->data;
  h->server_open = 0;
  maybe_closed(h);
}

void httpd_close(struct httpd *h, void (*cb)(struct httpd *h)) {
  h->closing = 1;
  h->close_cb = cb;
  uv_close((uv_handle_t *)&h->server, server_closed);
}
