/*
 * http_test_server.h: a tiny HTTP/1.1 server on the test's own libuv loop
 * (uv_tcp on 127.0.0.1, port chosen by the kernel), for test_http.c.
 *
 * It keeps connections alive and answers GET requests by path:
 *   /json            200, X-MBX-USED-WEIGHT-1M: 42, a JSON body
 *   /echo?Q          200, the body is the raw query string Q
 *   /429             429 with Retry-After: 7 and a Binance error body
 *   /500             500 with a short body
 *   /stall           never answers
 *   /big?n=N         200 with Content-Length N
 *   /bigchunked?n=N  200, N bytes in chunked encoding
 *   /chunked         200, "hello, chunked world" in three chunks
 *   /close           closes the connection without answering
 * State: the listening handle, the list of connections, a request count.
 */
#ifndef BL_T_HTTP_TEST_SERVER_H
#define BL_T_HTTP_TEST_SERVER_H

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct ts_conn;

struct ts_server {
  uv_tcp_t tcp;
  uv_loop_t *loop;
  int port;
  int requests;
  int open_handles;
  struct ts_conn *conns;
};

struct ts_conn {
  uv_tcp_t tcp;
  struct ts_server *srv;
  char in[16384];
  size_t len;
  int closing;
  struct ts_conn *next, *prev;
};

static void ts_conn_closed(uv_handle_t *h) {
  struct ts_conn *c = h->data;
  struct ts_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
  s->open_handles--;
}

static void ts_conn_close(struct ts_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, ts_conn_closed);
}

static void ts_written(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
  free(req);
}

static void ts_send(struct ts_conn *c, const char *data, size_t len) {
  uv_write_t *w = malloc(sizeof *w);
  char *copy = malloc(len ? len : 1);
  uv_buf_t b;
  if (!w || !copy)
    abort();
  memcpy(copy, data, len);
  w->data = copy;
  b = uv_buf_init(copy, (unsigned)len);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, ts_written)) {
    free(copy);
    free(w);
  }
}

static void ts_respond(struct ts_conn *c, int status, const char *reason,
                       const char *extra_headers, const char *body,
                       size_t body_len) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                   reason, body_len, extra_headers ? extra_headers : "");
  ts_send(c, head, (size_t)n);
  if (body_len)
    ts_send(c, body, body_len);
}

static long ts_query_n(const char *q) {
  const char *p = q ? strstr(q, "n=") : NULL;
  return p ? strtol(p + 2, NULL, 10) : 0;
}

static void ts_handle(struct ts_conn *c, const char *target) {
  char path[256];
  const char *q = strchr(target, '?');
  size_t plen = q ? (size_t)(q - target) : strlen(target);
  if (plen >= sizeof path)
    plen = sizeof path - 1;
  memcpy(path, target, plen);
  path[plen] = '\0';
  if (q)
    q++;
  c->srv->requests++;

  if (strcmp(path, "/json") == 0) {
    static const char body[] = "{\"serverTime\":1700000000000}";
    ts_respond(c, 200, "OK",
               "Content-Type: application/json\r\n"
               "X-MBX-USED-WEIGHT-1M: 42\r\n"
               "X-Custom:   spaced value  \r\n",
               body, sizeof body - 1);
  } else if (strcmp(path, "/echo") == 0) {
    ts_respond(c, 200, "OK", NULL, q ? q : "", q ? strlen(q) : 0);
  } else if (strcmp(path, "/429") == 0) {
    static const char body[] =
        "{\"code\":-1003,\"msg\":\"Too many requests.\"}";
    ts_respond(c, 429, "Too Many Requests",
               "Retry-After: 7\r\nX-MBX-USED-WEIGHT-1M: 6001\r\n", body,
               sizeof body - 1);
  } else if (strcmp(path, "/500") == 0) {
    ts_respond(c, 500, "Internal Server Error", NULL, "oops", 4);
  } else if (strcmp(path, "/stall") == 0) {
    /* never answer */
  } else if (strcmp(path, "/big") == 0) {
    long n = ts_query_n(q);
    char *body = malloc((size_t)n + 1);
    if (!body)
      abort();
    memset(body, 'x', (size_t)n);
    ts_respond(c, 200, "OK", NULL, body, (size_t)n);
    free(body);
  } else if (strcmp(path, "/bigchunked") == 0) {
    static const char head[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char chunk[1100];
    long n = ts_query_n(q);
    ts_send(c, head, sizeof head - 1);
    while (n > 0) {
      long k = n > 1000 ? 1000 : n;
      int h = snprintf(chunk, sizeof chunk, "%lx\r\n", k);
      memset(chunk + h, 'y', (size_t)k);
      memcpy(chunk + h + k, "\r\n", 2);
      ts_send(c, chunk, (size_t)(h + k + 2));
      n -= k;
    }
    ts_send(c, "0\r\n\r\n", 5);
  } else if (strcmp(path, "/chunked") == 0) {
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "7\r\nhello, \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n";
    ts_send(c, resp, sizeof resp - 1);
  } else if (strcmp(path, "/close") == 0) {
    ts_conn_close(c);
  } else {
    ts_respond(c, 404, "Not Found", NULL, "no", 2);
  }
}

static void ts_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct ts_conn *c = h->data;
  (void)hint;
  buf->base = c->in + c->len;
  buf->len = sizeof c->in - c->len;
}

static void ts_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct ts_conn *c = st->data;
  char *end;
  (void)buf;
  if (nread < 0) {
    ts_conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  while (!c->closing && (end = memmem(c->in, c->len, "\r\n\r\n", 4)) != NULL) {
    char target[4096];
    size_t used = (size_t)(end - c->in) + 4;
    char *sp1 = memchr(c->in, ' ', used);
    char *sp2 =
        sp1 ? memchr(sp1 + 1, ' ', used - (size_t)(sp1 + 1 - c->in)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof target) {
      ts_conn_close(c);
      return;
    }
    memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    target[sp2 - sp1 - 1] = '\0';
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    ts_handle(c, target);
  }
  if (c->len == sizeof c->in)
    ts_conn_close(c);
}

static void ts_on_conn(uv_stream_t *server, int status) {
  struct ts_server *s = server->data;
  struct ts_conn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof *c);
  if (!c)
    abort();
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  s->open_handles++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
      uv_read_start((uv_stream_t *)&c->tcp, ts_alloc, ts_read))
    ts_conn_close(c);
}

/* Listens on 127.0.0.1 at a free port; returns 0 or a UV_E* code. */
static int ts_start(uv_loop_t *loop, struct ts_server *s) {
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int namelen = sizeof name, rv;
  memset(s, 0, sizeof *s);
  s->loop = loop;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  s->open_handles = 1;
  rv = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0);
  if (!rv)
    rv = uv_listen((uv_stream_t *)&s->tcp, 128, ts_on_conn);
  if (!rv)
    rv = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&name, &namelen);
  if (!rv)
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  return rv;
}

static void ts_listener_closed(uv_handle_t *h) {
  struct ts_server *s = h->data;
  s->open_handles--;
}

static void ts_close(struct ts_server *s) {
  struct ts_conn *c, *next;
  if (!uv_is_closing((uv_handle_t *)&s->tcp))
    uv_close((uv_handle_t *)&s->tcp, ts_listener_closed);
  for (c = s->conns; c; c = next) {
    next = c->next;
    ts_conn_close(c);
  }
}

#endif
