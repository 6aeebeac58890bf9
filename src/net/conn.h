/*
 * conn.h: a byte stream over TCP, optionally wrapped in TLS (mbedTLS 2.28),
 * on a libuv loop. Client side (resolve with uv_getaddrinfo, connect with a
 * timeout, IPv4 and IPv6, TLS with SNI and hostname verification always on)
 * and server side (accept from a uv_tcp_t listener, TLS with a certificate
 * and key, used by the mock exchange and the health endpoint).
 *
 * Lifecycle, libuv style: conn_init -> conn_connect | conn_accept ->
 * (on_open) -> conn_write* / on_read* -> conn_close(cb). The struct belongs
 * to the caller and must stay valid until the close callback has run.
 * Every failure after conn_connect/conn_accept returned 0 is reported once
 * through on_error (status < 0, detail in conn->errstr), after which the
 * connection is dead and the caller must conn_close() it. Plaintext bytes
 * go up through on_read; they are valid only during the callback.
 */
#ifndef BL_NET_CONN_H
#define BL_NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct conn;
struct tls_ctx; /* opaque shared TLS configuration, see below */

/* Creates a client TLS context: TLS 1.2 minimum, certificates verified
 * against |ca_file| (NULL: the system bundle
 * /etc/ssl/certs/ca-certificates.crt). Returns 0, BL_ENOMEM or BL_ETLS with
 * a message in |err|. */
int tls_ctx_new_client(struct tls_ctx **out, const char *ca_file, char *err,
                       size_t errlen);

/* Creates a server TLS context from PEM files. Returns 0 or BL_ETLS. */
int tls_ctx_new_server(struct tls_ctx **out, const char *cert_file,
                       const char *key_file, char *err, size_t errlen);

void tls_ctx_free(struct tls_ctx *ctx);

struct conn_callbacks {
  /* Connected (and TLS handshake done and verified). */
  void (*on_open)(struct conn *c);
  /* Plaintext received. */
  void (*on_read)(struct conn *c, const char *data, size_t len);
  /* The peer closed cleanly (EOF or TLS close_notify): status BL_ECLOSED;
   * or a failure: any other negative code. Called at most once. */
  void (*on_error)(struct conn *c, int status);
  /* The write queue fell below the low-water mark after conn_write()
   * returned BL_EFULL or the queue passed the high-water mark. May be NULL. */
  void (*on_drain)(struct conn *c);
};

struct conn_options {
  uint64_t connect_timeout_ms; /* resolve + TCP + TLS handshake; 0: 10 s */
  size_t write_high_water;     /* bytes queued; 0: 4 MiB */
};

enum conn_state {
  CONN_IDLE = 0,
  CONN_RESOLVING,
  CONN_CONNECTING,
  CONN_HANDSHAKING,
  CONN_OPEN,
  CONN_FAILED,
  CONN_CLOSING,
  CONN_CLOSED
};

struct conn {
  void *data; /* the owner's pointer, like uv_handle_t.data */
  uv_loop_t *loop;
  enum conn_state state;
  struct conn_callbacks cb;
  struct conn_options opt;
  char errstr[256]; /* detail of the last failure */
  char peer[64];    /* "ip:port" of the peer, for logs */
  void *impl;       /* private to conn.c */
};

void conn_init(uv_loop_t *loop, struct conn *c, const struct conn_callbacks *cb,
               const struct conn_options *opt);

/* Resolves |host|, connects to |port|; with |tls| non-NULL performs a TLS
 * handshake with SNI = host and verifies the certificate chain and host
 * name. Returns 0 (result through on_open or on_error) or a negative code
 * for an immediate failure. */
int conn_connect(struct conn *c, const char *host, int port,
                 struct tls_ctx *tls);

/* Accepts a pending connection from |server| (a listening uv_tcp_t); with
 * |tls| non-NULL acts as TLS server. on_open fires after the handshake. */
int conn_accept(struct conn *c, uv_stream_t *server, struct tls_ctx *tls);

/* Queues bytes (copied) for sending. Returns 0, BL_ESTATE when not open,
 * or BL_EFULL when more than write_high_water bytes are already queued (the
 * data is NOT queued then; on_drain tells when to try again). */
int conn_write(struct conn *c, const void *data, size_t len);

/* Bytes queued and not yet handed to the kernel. */
size_t conn_write_queue_size(const struct conn *c);

/* Stops or restarts delivering on_read (back-pressure). */
int conn_read_stop(struct conn *c);
int conn_read_start(struct conn *c);

/* Closes: sends TLS close_notify when open, flushes what can be flushed
 * without waiting on the peer, closes the socket. |close_cb| runs when the
 * memory of |c| may be released. Safe from inside any conn callback, and
 * safe to call in any state (including after on_error), exactly once. */
void conn_close(struct conn *c, void (*close_cb)(struct conn *c));

#endif
