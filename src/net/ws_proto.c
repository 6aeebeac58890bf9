/*
 * ws_proto.c: the I/O-free half of the WebSocket module: URL parsing, the
 * Sec-WebSocket-Accept computation, building the client upgrade request and
 * the server's 101 answer, and parsing both HTTP heads. Everything works on
 * caller buffers and keeps no state, so it is unit-tested and fuzzed
 * directly (t/unit/test_ws_proto.c, t/fuzz/fuzz_ws_handshake.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int ws_url_parse(const char *url, struct ws_url *out) {
  const char *p, *host, *host_end, *rest;
  size_t hlen, plen;

  memset(out, 0, sizeof *out);
  if (url == NULL)
    return BL_EINVAL;
  if (strncasecmp(url, "ws://", 5) == 0) {
    out->tls = 0;
    out->port = 80;
    p = url + 5;
  } else if (strncasecmp(url, "wss://", 6) == 0) {
    out->tls = 1;
    out->port = 443;
    p = url + 6;
  } else {
    return BL_EINVAL;
  }

  if (*p == '[') { /* IPv6 literal */
    host = p + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL)
      return BL_EINVAL;
    rest = host_end + 1;
  } else {
    host = p;
    host_end = host + strcspn(host, ":/?#@");
    rest = host_end;
  }
  hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= sizeof out->host)
    return BL_EINVAL;
  for (p = host; p < host_end; p++) {
    if (*p <= ' ' || *p == 0x7f || *p == '@' || *p == '/')
      return BL_EINVAL;
  }
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';

  if (*rest == ':') {
    char *end;
    long port;
    rest++;
    if (!isdigit((unsigned char)*rest))
      return BL_EINVAL;
    port = strtol(rest, &end, 10);
    if (port < 1 || port > 65535 || end - rest > 5)
      return BL_EINVAL;
    out->port = (int)port;
    rest = end;
  }
  if (*rest != '\0' && *rest != '/' && *rest != '?')
    return BL_EINVAL; /* userinfo, fragment or junk after the host */
  if (strchr(rest, '#') != NULL)
    return BL_EINVAL;
  for (p = rest; *p; p++) {
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return BL_EINVAL;
  }

  plen = strlen(rest);
  if (*rest == '?') { /* "ws://h?x=1" means path "/?x=1" */
    if (plen + 1 >= sizeof out->path)
      return BL_EINVAL;
    out->path[0] = '/';
    memcpy(out->path + 1, rest, plen + 1);
  } else if (plen == 0) {
    out->path[0] = '/';
    out->path[1] = '\0';
  } else {
    if (plen >= sizeof out->path)
      return BL_EINVAL;
    memcpy(out->path, rest, plen + 1);
  }
  return 0;
}

int ws_accept_key(const char *key, char *out, size_t outlen) {
  unsigned char digest[20];
  char in[128];
  size_t klen = strlen(key), olen = 0;

  if (klen + sizeof WS_GUID > sizeof in)
    return BL_EINVAL;
  memcpy(in, key, klen);
  memcpy(in + klen, WS_GUID, sizeof WS_GUID - 1);
  if (mbedtls_sha1_ret((const unsigned char *)in, klen + sizeof WS_GUID - 1,
                       digest) != 0)
    return BL_EINVAL;
  if (mbedtls_base64_encode((unsigned char *)out, outlen, &olen, digest,
                            sizeof digest) != 0)
    return BL_EINVAL;
  return 0;
}

int ws_handshake_build_request(struct buf *out, const struct ws_url *u,
                               const char *key, const char *extra_headers) {
  int def = u->tls ? 443 : 80;
  int v6 = strchr(u->host, ':') != NULL;
  int rv;

  rv = buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s%s%s", u->path,
                  v6 ? "[" : "", u->host, v6 ? "]" : "");
  if (rv == 0 && u->port != def)
    rv = buf_printf(out, ":%d", u->port);
  if (rv == 0)
    rv = buf_printf(out,
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                    key);
  if (rv == 0 && extra_headers != NULL && *extra_headers) {
    size_t n = strlen(extra_headers);
    rv = buf_append(out, extra_headers, n);
    if (rv == 0 && (n < 2 || memcmp(extra_headers + n - 2, "\r\n", 2) != 0))
      rv = buf_append_str(out, "\r\n");
  }
  if (rv == 0)
    rv = buf_append_str(out, "\r\n");
  return rv;
}

int ws_handshake_build_response(struct buf *out, const char *key) {
  char acc[32];
  int rv = ws_accept_key(key, acc, sizeof acc);
  if (rv != 0)
    return rv;
  return buf_printf(out,
                    "HTTP/1.1 101 Switching Protocols\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n",
                    acc);
}

/* Length of the head through CRLF CRLF; 0 if not yet complete. */
static size_t head_length(const char *buf, size_t len) {
  size_t i, lim = len < WS_MAX_HEAD ? len : WS_MAX_HEAD;
  for (i = 3; i < lim; i++) {
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
        buf[i - 3] == '\r')
      return i + 1;
  }
  return 0;
}

/* Does the comma-separated list |v|/|n| contain |tok| (any case)? */
static int has_token(const char *v, size_t n, const char *tok) {
  size_t tlen = strlen(tok), i = 0;
  while (i < n) {
    size_t s, e;
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    s = i;
    while (i < n && v[i] != ',')
      i++;
    e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e - s == tlen && strncasecmp(v + s, tok, tlen) == 0)
      return 1;
  }
  return 0;
}

/* Walks the header lines of a head [p, end) (the start line already
 * skipped); calls |fn| per header with the name and the trimmed value.
 * Returns 0 or BL_EPARSE. */
typedef void (*header_fn)(void *arg, const char *name, size_t nlen,
                          const char *val, size_t vlen);

static int each_header(const char *p, const char *end, header_fn fn,
                       void *arg) {
  while (p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    const char *colon, *v, *ve;
    if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
      return BL_EPARSE;
    if (eol == p) /* the blank line */
      return 0;
    if (*p == ' ' || *p == '\t') /* obsolete line folding */
      return BL_EPARSE;
    colon = memchr(p, ':', (size_t)(eol - p));
    if (colon == NULL || colon == p)
      return BL_EPARSE;
    v = colon + 1;
    ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    for (const char *q = p; q < colon; q++) {
      if (*q <= ' ' || *q == 0x7f)
        return BL_EPARSE;
    }
    for (const char *q = v; q < ve; q++) {
      if ((*q >= 0 && *q < ' ' && *q != '\t') || *q == 0x7f)
        return BL_EPARSE; /* a bare LF or another control byte */
    }
    fn(arg, p, (size_t)(colon - p), v, (size_t)(ve - v));
    p = eol + 2;
  }
  return BL_EPARSE;
}

static int name_is(const char *name, size_t nlen, const char *want) {
  return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

struct resp_state {
  const char *expect; /* accept key */
  int upgrade, connection, accept;
};

static void resp_header(void *arg, const char *name, size_t nlen,
                        const char *val, size_t vlen) {
  struct resp_state *st = arg;
  if (name_is(name, nlen, "Upgrade")) {
    if (has_token(val, vlen, "websocket"))
      st->upgrade = 1;
  } else if (name_is(name, nlen, "Connection")) {
    if (has_token(val, vlen, "upgrade"))
      st->connection = 1;
  } else if (name_is(name, nlen, "Sec-WebSocket-Accept")) {
    st->accept = strlen(st->expect) == vlen &&
                         memcmp(st->expect, val, vlen) == 0 && st->accept != -1
                     ? 1
                     : -1; /* a second, different value spoils it */
  }
}

long ws_handshake_parse_response(const char *buf, size_t len, const char *key,
                                 int *status) {
  size_t hlen = head_length(buf, len);
  const char *p, *eol, *end;
  struct resp_state st;
  char acc[32];
  int rv;

  *status = 0;
  if (hlen == 0)
    return len >= WS_MAX_HEAD ? BL_ETOOBIG : 0;
  end = buf + hlen;
  eol = memchr(buf, '\r', hlen);
  /* "HTTP/1.x SSS[ reason]" */
  if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
      !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
      !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
      !isdigit((unsigned char)buf[11]) || (eol - buf > 12 && buf[12] != ' '))
    return BL_EPARSE;
  *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
  p = eol + 2;

  if (ws_accept_key(key, acc, sizeof acc) != 0)
    return BL_EINVAL;
  memset(&st, 0, sizeof st);
  st.expect = acc;
  rv = each_header(p, end, resp_header, &st);
  if (rv != 0)
    return rv;
  if (*status != 101 || !st.upgrade || !st.connection || st.accept != 1)
    return BL_EHANDSHAKE;
  return (long)hlen;
}

struct req_state {
  struct ws_http_request *req;
  int upgrade, connection, version, key_ok, host;
};

static int valid_key(const char *v, size_t n) {
  unsigned char raw[32];
  size_t olen = 0;
  if (n != 24)
    return 0;
  if (mbedtls_base64_decode(raw, sizeof raw, &olen, (const unsigned char *)v,
                            n) != 0)
    return 0;
  return olen == 16;
}

static void req_header(void *arg, const char *name, size_t nlen,
                       const char *val, size_t vlen) {
  struct req_state *st = arg;
  if (name_is(name, nlen, "Upgrade")) {
    if (has_token(val, vlen, "websocket"))
      st->upgrade = 1;
  } else if (name_is(name, nlen, "Connection")) {
    if (has_token(val, vlen, "upgrade"))
      st->connection = 1;
  } else if (name_is(name, nlen, "Sec-WebSocket-Version")) {
    st->version = vlen == 2 && memcmp(val, "13", 2) == 0;
  } else if (name_is(name, nlen, "Host")) {
    st->host = 1;
  } else if (name_is(name, nlen, "Sec-WebSocket-Key")) {
    if (valid_key(val, vlen) && vlen < sizeof st->req->key) {
      memcpy(st->req->key, val, vlen);
      st->req->key[vlen] = '\0';
      st->key_ok = 1;
    } else {
      st->key_ok = 0;
      st->req->key[0] = '\0';
    }
  }
}

long ws_handshake_parse_request(const char *buf, size_t len,
                                struct ws_http_request *req) {
  size_t hlen = head_length(buf, len);
  const char *eol, *sp1, *sp2, *end;
  struct req_state st;
  size_t n;
  int rv;

  memset(req, 0, sizeof *req);
  if (hlen == 0)
    return len >= WS_MAX_HEAD ? BL_ETOOBIG : 0;
  end = buf + hlen;
  eol = memchr(buf, '\r', hlen);
  /* "METHOD SP target SP HTTP/1.x" */
  sp1 = memchr(buf, ' ', (size_t)(eol - buf));
  if (sp1 == NULL || sp1 == buf)
    return BL_EPARSE;
  sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
  if (sp2 == NULL || sp2 == sp1 + 1)
    return BL_EPARSE;
  if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
      !isdigit((unsigned char)sp2[8]))
    return BL_EPARSE;
  n = (size_t)(sp1 - buf);
  if (n >= sizeof req->method)
    return BL_EPARSE;
  for (size_t i = 0; i < n; i++) {
    if (!isupper((unsigned char)buf[i]))
      return BL_EPARSE;
  }
  memcpy(req->method, buf, n);
  req->method[n] = '\0';
  n = (size_t)(sp2 - sp1 - 1);
  if (n >= sizeof req->path)
    return BL_ETOOBIG;
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)sp1[1 + i] <= ' ' || sp1[1 + i] == 0x7f)
      return BL_EPARSE;
  }
  memcpy(req->path, sp1 + 1, n);
  req->path[n] = '\0';

  memset(&st, 0, sizeof st);
  st.req = req;
  rv = each_header(eol + 2, end, req_header, &st);
  if (rv != 0) {
    memset(req, 0, sizeof *req);
    return rv;
  }
  req->is_upgrade = strcmp(req->method, "GET") == 0 && st.upgrade &&
                    st.connection && st.version && st.key_ok && st.host;
  if (!req->is_upgrade)
    req->key[0] = '\0';
  return (long)hlen;
}
