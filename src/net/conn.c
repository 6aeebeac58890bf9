/*
 * conn.c: a byte stream over TCP on libuv, optionally wrapped in TLS with
 * mbedTLS 2.28 through a memory BIO (see c-stack.md A3).
 *
 * State kept per connection (struct conn_impl, malloc'd at connect/accept
 * and freed after the last handle closed): the uv_tcp_t, one uv_timer_t
 * (connect/handshake timeout; later re-used as a zero-delay kick to resume
 * buffered input after conn_read_start, and as the bound on a graceful
 * shutdown), the resolved address list and the attempt cursor, the mbedTLS
 * session, the ciphertext input buffer, and the count of bytes handed to
 * uv_write and not yet completed (the high-water mark applies to it).
 *
 * Ciphertext flow: uv read_cb appends to |in|; bio_recv copies from it and
 * returns WANT_READ when empty; bio_send copies each record into its own
 * uv_write request and never returns WANT_WRITE. The shared tls_ctx holds
 * the config, the DRBG (seeded once) and the certificates.
 *
 * Re-entrancy: user callbacks may call conn_close (or anything else); the
 * code re-checks |closing|/|failed| after every callback, and memory is only
 * released from uv close callbacks, which never run inside a callback of
 * ours.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "net/conn.h"

#define CONN_DEFAULT_TIMEOUT_MS 10000
#define CONN_DEFAULT_HIGH_WATER (4u * 1024u * 1024u)
#define CONN_READ_CHUNK 65536
#define CONN_IN_MAX (1u * 1024u * 1024u) /* buffered ciphertext bound */
#define CONN_SHUTDOWN_GRACE_MS 2000
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

struct tls_ctx {
  int server;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt ca;  /* client: trust anchors */
  mbedtls_x509_crt own; /* server: certificate chain */
  mbedtls_pk_context key;
};

struct conn_impl {
  struct conn *c;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  struct addrinfo *ai_list, *ai_next;
  char host[256];
  int port;
  int last_connect_err;

  struct tls_ctx *tls;
  mbedtls_ssl_context ssl;
  int ssl_ready; /* mbedtls_ssl_setup done */
  int hs_done;   /* TLS handshake complete */
  struct buf in; /* ciphertext; the bytes before in_off are consumed */
  size_t in_off;
  int eof; /* the peer half-closed TCP */

  size_t wq_bytes;  /* bytes in uv_write requests not completed */
  int drain_wanted; /* on_drain owed once below half the mark */

  int tcp_open; /* tcp handle initialised and not closed */
  int timer_open;
  int gai_pending;
  int reading;     /* uv_read_start active */
  int user_paused; /* conn_read_stop called */
  int failed;
  int closing;
  int kick_pending; /* timer is a zero-delay resume of buffered input */
  int detached;     /* the caller's struct conn is no longer ours */
  void (*close_cb)(struct conn *c);
  char rbuf[CONN_READ_CHUNK];
};

struct conn_wreq {
  uv_write_t req;
  struct conn_impl *ci;
  size_t len;
  char data[];
};

/* ---- TLS contexts ---- */

static void tls_err(char *err, size_t errlen, const char *what, int rv) {
  char msg[160];
  if (err == NULL || errlen == 0)
    return;
  mbedtls_strerror(rv, msg, sizeof msg);
  snprintf(err, errlen, "%s: -0x%04x %s", what, (unsigned)-rv, msg);
}

static int tls_ctx_alloc(struct tls_ctx **out, int server, char *err,
                         size_t errlen) {
  static const char pers[] = "binance-live conn";
  struct tls_ctx *t = calloc(1, sizeof *t);
  int rv;
  if (t == NULL)
    return BL_ENOMEM;
  t->server = server;
  mbedtls_entropy_init(&t->entropy);
  mbedtls_ctr_drbg_init(&t->drbg);
  mbedtls_ssl_config_init(&t->conf);
  mbedtls_x509_crt_init(&t->ca);
  mbedtls_x509_crt_init(&t->own);
  mbedtls_pk_init(&t->key);
  *out = t;
  rv = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                             (const unsigned char *)pers, sizeof pers - 1);
  if (rv != 0) {
    tls_err(err, errlen, "ctr_drbg_seed", rv);
    return BL_ETLS;
  }
  rv = mbedtls_ssl_config_defaults(
      &t->conf, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (rv != 0) {
    tls_err(err, errlen, "ssl_config_defaults", rv);
    return BL_ETLS;
  }
  mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
  /* Debian's build still allows TLS 1.0; 1.2 is the floor here. */
  mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);
  return 0;
}

int tls_ctx_new_client(struct tls_ctx **out, const char *ca_file, char *err,
                       size_t errlen) {
  struct tls_ctx *t = NULL;
  int rv = tls_ctx_alloc(&t, 0, err, errlen);
  if (rv != 0)
    goto fail;
  if (ca_file == NULL)
    ca_file = SYSTEM_CA_FILE;
  rv = mbedtls_x509_crt_parse_file(&t->ca, ca_file);
  if (rv < 0) {
    tls_err(err, errlen, ca_file, rv);
    rv = BL_ETLS;
    goto fail;
  }
  if (rv > 0)
    log_warn("conn", "%s: %d certificates could not be parsed", ca_file, rv);
  mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
  mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  *out = t;
  return 0;
fail:
  tls_ctx_free(t);
  *out = NULL;
  return rv == BL_ENOMEM ? BL_ENOMEM : BL_ETLS;
}

int tls_ctx_new_server(struct tls_ctx **out, const char *cert_file,
                       const char *key_file, char *err, size_t errlen) {
  struct tls_ctx *t = NULL;
  int rv = tls_ctx_alloc(&t, 1, err, errlen);
  if (rv != 0)
    goto fail;
  rv = mbedtls_x509_crt_parse_file(&t->own, cert_file);
  if (rv != 0) {
    tls_err(err, errlen, cert_file, rv < 0 ? rv : -1);
    rv = BL_ETLS;
    goto fail;
  }
  rv = mbedtls_pk_parse_keyfile(&t->key, key_file, NULL);
  if (rv != 0) {
    tls_err(err, errlen, key_file, rv);
    rv = BL_ETLS;
    goto fail;
  }
  rv = mbedtls_ssl_conf_own_cert(&t->conf, &t->own, &t->key);
  if (rv != 0) {
    tls_err(err, errlen, "ssl_conf_own_cert", rv);
    rv = BL_ETLS;
    goto fail;
  }
  mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_NONE);
  *out = t;
  return 0;
fail:
  tls_ctx_free(t);
  *out = NULL;
  return rv == BL_ENOMEM ? BL_ENOMEM : BL_ETLS;
}

void tls_ctx_free(struct tls_ctx *t) {
  if (t == NULL)
    return;
  mbedtls_ssl_config_free(&t->conf);
  mbedtls_x509_crt_free(&t->ca);
  mbedtls_x509_crt_free(&t->own);
  mbedtls_pk_free(&t->key);
  mbedtls_ctr_drbg_free(&t->drbg);
  mbedtls_entropy_free(&t->entropy);
  free(t);
}

/* ---- helpers ---- */

static void conn_maybe_free(struct conn_impl *ci) {
  struct conn *c = ci->c;
  void (*cb)(struct conn *);
  if (!ci->closing || ci->tcp_open || ci->timer_open || ci->gai_pending)
    return;
  if (ci->ai_list)
    uv_freeaddrinfo(ci->ai_list);
  if (ci->ssl_ready)
    mbedtls_ssl_free(&ci->ssl);
  buf_free(&ci->in);
  cb = ci->close_cb;
  if (ci->detached) {
    free(ci);
    return;
  }
  free(ci);
  c->impl = NULL;
  c->state = CONN_CLOSED;
  if (cb)
    cb(c);
}

static void on_tcp_closed(uv_handle_t *h) {
  struct conn_impl *ci = h->data;
  ci->tcp_open = 0;
  conn_maybe_free(ci);
}

static void on_timer_closed(uv_handle_t *h) {
  struct conn_impl *ci = h->data;
  ci->timer_open = 0;
  conn_maybe_free(ci);
}

/* Reports a failure once; the connection is dead afterwards. */
static void conn_fail(struct conn_impl *ci, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn_impl *ci, int status, const char *fmt, ...) {
  struct conn *c = ci->c;
  if (ci->failed || ci->closing)
    return;
  ci->failed = 1;
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
  } else {
    snprintf(c->errstr, sizeof c->errstr, "%s", bl_strerror(status));
  }
  c->state = CONN_FAILED;
  if (ci->timer_open)
    uv_timer_stop(&ci->timer);
  if (ci->tcp_open && ci->reading) {
    uv_read_stop((uv_stream_t *)&ci->tcp);
    ci->reading = 0;
  }
  if (c->cb.on_error)
    c->cb.on_error(c, status);
}

static void set_peer(struct conn_impl *ci) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&ci->tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    uv_ip4_name(s4, ip, sizeof ip);
    port = ntohs(s4->sin_port);
    snprintf(ci->c->peer, sizeof ci->c->peer, "%s:%d", ip, port);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(s6, ip, sizeof ip);
    port = ntohs(s6->sin6_port);
    snprintf(ci->c->peer, sizeof ci->c->peer, "[%s]:%d", ip, port);
  }
}

/* ---- writes ---- */

static void on_write_done(uv_write_t *req, int status) {
  struct conn_wreq *w = req->data;
  struct conn_impl *ci = w->ci;
  struct conn *c = ci->c;
  size_t hw = c->opt.write_high_water;
  ci->wq_bytes -= w->len;
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED)
      conn_fail(ci, status, "write: %s", uv_strerror(status));
    return;
  }
  if (ci->drain_wanted && ci->wq_bytes < hw / 2 && !ci->failed &&
      !ci->closing) {
    ci->drain_wanted = 0;
    if (c->cb.on_drain)
      c->cb.on_drain(c);
  }
}

/* Hands bytes to the kernel through uv_write (copied). */
static int raw_write(struct conn_impl *ci, const void *data, size_t len) {
  struct conn_wreq *w;
  uv_buf_t b;
  int rv;
  w = malloc(sizeof *w + len);
  if (w == NULL)
    return BL_ENOMEM;
  w->ci = ci;
  w->len = len;
  memcpy(w->data, data, len);
  w->req.data = w;
  b = uv_buf_init(w->data, (unsigned)len);
  rv = uv_write(&w->req, (uv_stream_t *)&ci->tcp, &b, 1, on_write_done);
  if (rv != 0) {
    free(w);
    return rv;
  }
  ci->wq_bytes += len;
  return 0;
}

static int bio_send(void *arg, const unsigned char *data, size_t len) {
  struct conn_impl *ci = arg;
  int rv;
  if (!ci->tcp_open || uv_is_closing((uv_handle_t *)&ci->tcp))
    return MBEDTLS_ERR_NET_SEND_FAILED;
  if (len > INT32_MAX)
    len = INT32_MAX;
  rv = raw_write(ci, data, len);
  if (rv != 0)
    return MBEDTLS_ERR_NET_SEND_FAILED;
  return (int)len;
}

static int bio_recv(void *arg, unsigned char *out, size_t len) {
  struct conn_impl *ci = arg;
  size_t n = ci->in.len - ci->in_off;
  if (n == 0)
    return ci->eof ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
  if (n > len)
    n = len;
  if (n > INT32_MAX)
    n = INT32_MAX;
  memcpy(out, ci->in.data + ci->in_off, n);
  ci->in_off += n;
  if (ci->in_off == ci->in.len) { /* all consumed: rewind, no memmove */
    buf_reset(&ci->in);
    ci->in_off = 0;
  }
  return (int)n;
}

/* ---- reads ---- */

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct conn_impl *ci = h->data;
  (void)hint;
  *b = uv_buf_init(ci->rbuf, sizeof ci->rbuf);
}

static void deliver_open(struct conn_impl *ci) {
  struct conn *c = ci->c;
  c->state = CONN_OPEN;
  if (ci->timer_open)
    uv_timer_stop(&ci->timer);
  if (c->cb.on_open)
    c->cb.on_open(c);
}

static int alive(const struct conn_impl *ci) {
  return !ci->failed && !ci->closing;
}

static void tls_verify_failed(struct conn_impl *ci) {
  char info[200];
  uint32_t flags = mbedtls_ssl_get_verify_result(&ci->ssl);
  int n;
  n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
  if (n <= 0)
    snprintf(info, sizeof info, "flags 0x%x", (unsigned)flags);
  /* One line: the verify info is newline-separated. */
  for (char *p = info; *p; p++) {
    if (*p == '\n')
      *p = (p[1] != '\0') ? ';' : '\0';
  }
  conn_fail(ci, BL_EVERIFY, "certificate verification failed for %s: %s",
            ci->host, info);
}

/* Drives the handshake; returns 1 when it is complete and verified. */
static int tls_handshake_step(struct conn_impl *ci) {
  int rv = mbedtls_ssl_handshake(&ci->ssl);
  if (rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
    if (ci->eof && ci->in.len == ci->in_off)
      conn_fail(ci, BL_ETLS, "peer closed during the TLS handshake");
    return 0;
  }
  if (rv == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    tls_verify_failed(ci);
    return 0;
  }
  if (rv != 0) {
    char msg[160];
    mbedtls_strerror(rv, msg, sizeof msg);
    conn_fail(ci, BL_ETLS, "TLS handshake: -0x%04x %s", (unsigned)-rv, msg);
    return 0;
  }
  if (!ci->tls->server && mbedtls_ssl_get_verify_result(&ci->ssl) != 0) {
    tls_verify_failed(ci);
    return 0;
  }
  ci->hs_done = 1;
  return 1;
}

/* Decrypts and delivers what |in| holds, until WANT_READ, a stop or a
 * failure. */
static void tls_pump(struct conn_impl *ci) {
  struct conn *c = ci->c;
  unsigned char pt[16384];
  if (!ci->hs_done) {
    if (!tls_handshake_step(ci))
      return;
    deliver_open(ci);
  }
  while (alive(ci) && !ci->user_paused) {
    int rv = mbedtls_ssl_read(&ci->ssl, pt, sizeof pt);
    if (rv > 0) {
      if (c->cb.on_read)
        c->cb.on_read(c, (const char *)pt, (size_t)rv);
      continue;
    }
    if (rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (ci->eof && ci->in.len == ci->in_off &&
          !mbedtls_ssl_check_pending(&ci->ssl))
        conn_fail(ci, BL_ECLOSED, "EOF without TLS close_notify");
      return;
    }
    if (rv == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      conn_fail(ci, BL_ECLOSED, "peer sent TLS close_notify");
      return;
    }
    if (rv == 0 || rv == MBEDTLS_ERR_SSL_CONN_EOF) {
      conn_fail(ci, BL_ECLOSED, "EOF without TLS close_notify");
      return;
    }
    {
      char msg[160];
      mbedtls_strerror(rv, msg, sizeof msg);
      conn_fail(ci, BL_ETLS, "TLS read: -0x%04x %s", (unsigned)-rv, msg);
      return;
    }
  }
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct conn_impl *ci = s->data;
  struct conn *c = ci->c;
  (void)b;
  if (nread == 0 || !alive(ci))
    return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      conn_fail(ci, (int)nread, "read: %s", uv_strerror((int)nread));
      return;
    }
    ci->eof = 1;
    uv_read_stop(s);
    ci->reading = 0;
    if (ci->tls == NULL) {
      conn_fail(ci, BL_ECLOSED, "EOF");
      return;
    }
    tls_pump(ci);
    if (alive(ci)) /* mbedTLS did not notice: still report the EOF */
      conn_fail(ci, BL_ECLOSED,
                ci->hs_done ? "EOF without TLS close_notify"
                            : "peer closed during the TLS handshake");
    return;
  }
  if (ci->tls == NULL) {
    if (c->cb.on_read)
      c->cb.on_read(c, b->base, (size_t)nread);
    return;
  }
  if (ci->in_off > 0) { /* compact once per read, not once per record */
    buf_consume(&ci->in, ci->in_off);
    ci->in_off = 0;
  }
  if (buf_append(&ci->in, b->base, (size_t)nread) != 0) {
    conn_fail(ci, BL_ETOOBIG, "TLS input buffer over %u bytes",
              (unsigned)CONN_IN_MAX);
    return;
  }
  tls_pump(ci);
}

static int start_reading(struct conn_impl *ci) {
  int rv;
  if (ci->reading || ci->eof)
    return 0;
  rv = uv_read_start((uv_stream_t *)&ci->tcp, conn_alloc_cb, conn_read_cb);
  if (rv == 0)
    ci->reading = 1;
  return rv;
}

/* ---- connection setup ---- */

static void on_timeout(uv_timer_t *t) {
  struct conn_impl *ci = t->data;
  if (ci->kick_pending) { /* zero-delay resume after conn_read_start */
    ci->kick_pending = 0;
    if (alive(ci) && !ci->user_paused && ci->tls != NULL && ci->hs_done)
      tls_pump(ci);
    return;
  }
  if (ci->closing) { /* graceful shutdown took too long */
    if (ci->tcp_open && !uv_is_closing((uv_handle_t *)&ci->tcp))
      uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed);
    if (!uv_is_closing((uv_handle_t *)&ci->timer))
      uv_close((uv_handle_t *)&ci->timer, on_timer_closed);
    return;
  }
  conn_fail(ci, BL_ETIMEDOUT, "%s to %s:%d timed out after %llu ms",
            ci->c->state == CONN_HANDSHAKING ? "TLS handshake"
            : ci->c->state == CONN_RESOLVING ? "resolving"
                                             : "connecting",
            ci->host, ci->port,
            (unsigned long long)ci->c->opt.connect_timeout_ms);
}

static int begin_session(struct conn_impl *ci) {
  struct conn *c = ci->c;
  int rv;
  set_peer(ci);
  uv_tcp_nodelay(&ci->tcp, 1);
  if (ci->tls == NULL) {
    rv = start_reading(ci);
    if (rv != 0) {
      conn_fail(ci, rv, "read_start: %s", uv_strerror(rv));
      return rv;
    }
    deliver_open(ci);
    return 0;
  }
  c->state = CONN_HANDSHAKING;
  mbedtls_ssl_init(&ci->ssl);
  ci->ssl_ready = 1;
  rv = mbedtls_ssl_setup(&ci->ssl, &ci->tls->conf);
  if (rv == 0 && !ci->tls->server)
    rv = mbedtls_ssl_set_hostname(&ci->ssl, ci->host); /* SNI + name check */
  if (rv != 0) {
    char msg[160];
    mbedtls_strerror(rv, msg, sizeof msg);
    conn_fail(ci, BL_ETLS, "TLS setup: -0x%04x %s", (unsigned)-rv, msg);
    return BL_ETLS;
  }
  mbedtls_ssl_set_bio(&ci->ssl, ci, bio_send, bio_recv, NULL);
  rv = start_reading(ci);
  if (rv != 0) {
    conn_fail(ci, rv, "read_start: %s", uv_strerror(rv));
    return rv;
  }
  if (tls_handshake_step(ci))
    deliver_open(ci); /* cannot happen before any input, but be exact */
  return 0;
}

static void try_next_address(struct conn_impl *ci);

static void on_tcp_closed_retry(uv_handle_t *h) {
  struct conn_impl *ci = h->data;
  ci->tcp_open = 0;
  if (ci->closing) {
    conn_maybe_free(ci);
    return;
  }
  try_next_address(ci);
}

static void on_connect(uv_connect_t *req, int status) {
  struct conn_impl *ci = req->data;
  if (ci->closing || ci->failed)
    return;
  if (status < 0) {
    ci->last_connect_err = status;
    if (ci->ai_next != NULL) {
      uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed_retry);
      return;
    }
    conn_fail(ci, status, "connect to %s:%d: %s", ci->host, ci->port,
              uv_strerror(status));
    return;
  }
  begin_session(ci);
}

static void try_next_address(struct conn_impl *ci) {
  struct addrinfo *ai;
  int rv = UV_EAI_NONAME;
  while ((ai = ci->ai_next) != NULL) {
    ci->ai_next = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    if (ai->ai_family == AF_INET)
      ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(ci->port);
    else
      ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(ci->port);
    rv = uv_tcp_init(ci->c->loop, &ci->tcp);
    if (rv != 0)
      break;
    ci->tcp.data = ci;
    ci->tcp_open = 1;
    ci->connect_req.data = ci;
    rv = uv_tcp_connect(&ci->connect_req, &ci->tcp, ai->ai_addr, on_connect);
    if (rv == 0) {
      ci->c->state = CONN_CONNECTING;
      return;
    }
    ci->last_connect_err = rv;
    if (ci->ai_next == NULL)
      break;
    uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed_retry);
    return;
  }
  if (ci->last_connect_err != 0)
    rv = ci->last_connect_err;
  conn_fail(ci, rv, "connect to %s:%d: %s", ci->host, ci->port,
            uv_strerror(rv));
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct conn_impl *ci = req->data;
  ci->gai_pending = 0;
  if (ci->closing) {
    if (res)
      uv_freeaddrinfo(res);
    conn_maybe_free(ci);
    return;
  }
  if (ci->failed) {
    if (res)
      uv_freeaddrinfo(res);
    return;
  }
  if (status < 0) {
    conn_fail(ci, status, "resolve %s: %s", ci->host, uv_strerror(status));
    return;
  }
  ci->ai_list = ci->ai_next = res;
  try_next_address(ci);
}

void conn_init(uv_loop_t *loop, struct conn *c, const struct conn_callbacks *cb,
               const struct conn_options *opt) {
  void *data = c->data;
  memset(c, 0, sizeof *c);
  c->data = data;
  c->loop = loop;
  if (cb)
    c->cb = *cb;
  if (opt)
    c->opt = *opt;
  if (c->opt.connect_timeout_ms == 0)
    c->opt.connect_timeout_ms = CONN_DEFAULT_TIMEOUT_MS;
  if (c->opt.write_high_water == 0)
    c->opt.write_high_water = CONN_DEFAULT_HIGH_WATER;
  c->state = CONN_IDLE;
}

static int impl_new(struct conn *c, struct tls_ctx *tls) {
  struct conn_impl *ci;
  int rv;
  if (c->impl != NULL || c->state != CONN_IDLE)
    return BL_ESTATE;
  ci = calloc(1, sizeof *ci);
  if (ci == NULL)
    return BL_ENOMEM;
  ci->c = c;
  ci->tls = tls;
  buf_init(&ci->in, CONN_IN_MAX);
  rv = uv_timer_init(c->loop, &ci->timer);
  if (rv != 0) {
    free(ci);
    return rv;
  }
  ci->timer.data = ci;
  ci->timer_open = 1;
  c->impl = ci;
  return 0;
}

int conn_connect(struct conn *c, const char *host, int port,
                 struct tls_ctx *tls) {
  struct addrinfo hints;
  struct conn_impl *ci;
  size_t hl;
  int rv;
  if (host == NULL || port <= 0 || port > 65535)
    return BL_EINVAL;
  hl = strlen(host);
  if (hl == 0 || hl >= sizeof ci->host)
    return BL_EINVAL;
  if (tls != NULL && tls->server)
    return BL_EINVAL;
  rv = impl_new(c, tls);
  if (rv != 0)
    return rv;
  ci = c->impl;
  memcpy(ci->host, host, hl + 1);
  ci->port = port;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  ci->gai.data = ci;
  rv = uv_getaddrinfo(c->loop, &ci->gai, on_resolved, host, NULL, &hints);
  if (rv != 0) {
    /* Undo: the struct goes back to idle, the timer is released. */
    ci->closing = 1;
    ci->detached = 1;
    c->impl = NULL;
    uv_close((uv_handle_t *)&ci->timer, on_timer_closed);
    return rv;
  }
  ci->gai_pending = 1;
  c->state = CONN_RESOLVING;
  uv_timer_start(&ci->timer, on_timeout, c->opt.connect_timeout_ms, 0);
  return 0;
}

int conn_accept(struct conn *c, uv_stream_t *server, struct tls_ctx *tls) {
  struct conn_impl *ci;
  int rv;
  if (tls != NULL && !tls->server)
    return BL_EINVAL;
  rv = impl_new(c, tls);
  if (rv != 0)
    return rv;
  ci = c->impl;
  snprintf(ci->host, sizeof ci->host, "%s", "client");
  rv = uv_tcp_init(c->loop, &ci->tcp);
  if (rv == 0) {
    ci->tcp.data = ci;
    ci->tcp_open = 1;
    rv = uv_accept(server, (uv_stream_t *)&ci->tcp);
  }
  if (rv != 0) {
    ci->closing = 1;
    ci->detached = 1;
    c->impl = NULL;
    if (ci->tcp_open)
      uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&ci->timer, on_timer_closed);
    return rv;
  }
  c->state = CONN_CONNECTING;
  if (tls != NULL)
    uv_timer_start(&ci->timer, on_timeout, c->opt.connect_timeout_ms, 0);
  /* Failures from here on go through on_error, after we return. */
  return begin_session(ci) < 0 && !ci->failed ? BL_EIO : 0;
}

int conn_write(struct conn *c, const void *data, size_t len) {
  struct conn_impl *ci = c->impl;
  const unsigned char *p = data;
  if (ci == NULL || c->state != CONN_OPEN || !alive(ci))
    return BL_ESTATE;
  if (ci->wq_bytes > c->opt.write_high_water) {
    ci->drain_wanted = 1;
    return BL_EFULL;
  }
  if (len == 0)
    return 0;
  if (ci->tls == NULL) {
    int rv = raw_write(ci, data, len);
    if (rv != 0)
      return rv;
  } else {
    while (len > 0) {
      int rv = mbedtls_ssl_write(&ci->ssl, p, len);
      if (rv > 0) {
        p += rv;
        len -= (size_t)rv;
        continue;
      }
      if (rv == MBEDTLS_ERR_SSL_WANT_WRITE || rv == MBEDTLS_ERR_SSL_WANT_READ)
        continue; /* cannot happen with our BIO; loop is bounded by it */
      {
        char msg[160];
        mbedtls_strerror(rv, msg, sizeof msg);
        snprintf(c->errstr, sizeof c->errstr, "TLS write: -0x%04x %s",
                 (unsigned)-rv, msg);
        return BL_ETLS;
      }
    }
  }
  if (ci->wq_bytes > c->opt.write_high_water)
    ci->drain_wanted = 1;
  return 0;
}

size_t conn_write_queue_size(const struct conn *c) {
  const struct conn_impl *ci = c->impl;
  return ci ? ci->wq_bytes : 0;
}

int conn_read_stop(struct conn *c) {
  struct conn_impl *ci = c->impl;
  if (ci == NULL || !alive(ci))
    return BL_ESTATE;
  ci->user_paused = 1;
  if (ci->reading) {
    uv_read_stop((uv_stream_t *)&ci->tcp);
    ci->reading = 0;
  }
  return 0;
}

int conn_read_start(struct conn *c) {
  struct conn_impl *ci = c->impl;
  int rv;
  if (ci == NULL || !alive(ci))
    return BL_ESTATE;
  if (!ci->user_paused)
    return 0;
  ci->user_paused = 0;
  if (c->state != CONN_OPEN && c->state != CONN_HANDSHAKING)
    return 0;
  rv = start_reading(ci);
  if (rv != 0)
    return rv;
  /* Records may be buffered (ciphertext in |in| or plaintext inside
   * mbedTLS): deliver them from the loop, not from inside this call. */
  if (ci->tls != NULL && ci->hs_done &&
      (ci->in.len > ci->in_off || mbedtls_ssl_check_pending(&ci->ssl))) {
    ci->kick_pending = 1;
    uv_timer_start(&ci->timer, on_timeout, 0, 0);
  }
  return 0;
}

static void on_shutdown_done(uv_shutdown_t *req, int status) {
  struct conn_impl *ci = req->data;
  (void)status;
  if (ci->tcp_open && !uv_is_closing((uv_handle_t *)&ci->tcp))
    uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed);
  if (ci->timer_open && !uv_is_closing((uv_handle_t *)&ci->timer))
    uv_close((uv_handle_t *)&ci->timer, on_timer_closed);
}

void conn_close(struct conn *c, void (*close_cb)(struct conn *c)) {
  struct conn_impl *ci = c->impl;
  int graceful;
  if (ci == NULL) { /* never started: nothing to wait for */
    c->state = CONN_CLOSED;
    if (close_cb)
      close_cb(c);
    return;
  }
  if (ci->closing)
    return;
  graceful = !ci->failed && c->state == CONN_OPEN;
  ci->closing = 1;
  ci->close_cb = close_cb;
  c->state = CONN_CLOSING;
  if (ci->gai_pending)
    uv_cancel((uv_req_t *)&ci->gai);
  if (ci->tls != NULL && ci->hs_done && graceful)
    mbedtls_ssl_close_notify(&ci->ssl); /* queued through bio_send */
  if (ci->tcp_open && !uv_is_closing((uv_handle_t *)&ci->tcp)) {
    if (ci->reading) {
      uv_read_stop((uv_stream_t *)&ci->tcp);
      ci->reading = 0;
    }
    /* Flush what is queued, then FIN, then close; bounded by the grace
     * timer (a peer that does not read must not hold us). */
    ci->shutdown_req.data = ci;
    if (graceful && uv_shutdown(&ci->shutdown_req, (uv_stream_t *)&ci->tcp,
                                on_shutdown_done) == 0) {
      ci->kick_pending = 0;
      uv_timer_start(&ci->timer, on_timeout, CONN_SHUTDOWN_GRACE_MS, 0);
      return;
    }
    uv_close((uv_handle_t *)&ci->tcp, on_tcp_closed);
  }
  if (ci->timer_open && !uv_is_closing((uv_handle_t *)&ci->timer))
    uv_close((uv_handle_t *)&ci->timer, on_timer_closed);
  conn_maybe_free(ci);
}
