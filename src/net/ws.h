/*
 * ws.h: WebSocket (RFC 6455) on wslay 1.1.1 over a conn (plain TCP or TLS).
 *
 * Client: ws_connect() parses a ws:// or wss:// URL, connects, sends the
 * HTTP/1.1 upgrade and verifies the 101 answer and Sec-WebSocket-Accept
 * (a non-101 answer fails with BL_EHANDSHAKE and the status in
 * ws->http_status). Server (the mock exchange): ws_accept_upgrade() takes an
 * open conn whose HTTP request has been read, answers 101 and continues on
 * the same conn (and sets its write_high_water to max_queued_bytes / 2).
 *
 * Both sides: text and binary messages (fragmented ones are reassembled),
 * a maximum message size (larger: close 1009 and BL_ETOOBIG), pings answered
 * at once with the same payload, client pings on a quiet connection, a read
 * timeout, the close handshake with code and reason reported, and an
 * outgoing pacer: at most |max_msgs_per_sec| frames (data, ping, pong) in
 * any one-second window; frames beyond that wait in a bounded queue. Pongs
 * are never delayed behind data frames.
 *
 * Lifecycle: ws_init -> ws_connect | ws_accept_upgrade -> on_open ->
 * on_message* -> on_close (exactly once, after which the ws is dead) ->
 * ws_close(cb) to release. Protocol logic (handshake request building and
 * response parsing, accept key) is exposed below as I/O-free functions so
 * that it can be unit-tested on buffers.
 */
#ifndef BL_NET_WS_H
#define BL_NET_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/conn.h"

#define WS_DEFAULT_MAX_MESSAGE (16u * 1024u * 1024u)
#define WS_MAX_HEAD 16384 /* longest HTTP head accepted (request or answer) */

struct ws;

struct ws_callbacks {
  void (*on_open)(struct ws *ws);
  /* A complete message; |data| is valid only during the call and is
   * followed by a NUL byte that is not part of the message. */
  void (*on_message)(struct ws *ws, int binary, const char *data, size_t len);
  /* The connection ended. |status| is 0 after a clean close handshake,
   * otherwise the error (BL_ECLOSED, BL_ETIMEDOUT, BL_EPROTO, BL_ETOOBIG,
   * BL_EHANDSHAKE, BL_EVERIFY, UV_ECONNREFUSED ...). |code| and |reason|
   * are the close code and reason the peer sent (0 and "" if none). */
  void (*on_close)(struct ws *ws, int status, int code, const char *reason);
  /* A pong arrived (optional). */
  void (*on_pong)(struct ws *ws, const char *data, size_t len);
};

struct ws_options {
  size_t max_message;        /* 0: WS_DEFAULT_MAX_MESSAGE */
  uint64_t ping_interval_ms; /* client pings after this much quiet; 0: off */
  uint64_t read_timeout_ms;  /* nothing received for this long: dead; 0: off */
  uint64_t connect_timeout_ms; /* whole connect + upgrade; 0: 10 s */
  unsigned max_msgs_per_sec;   /* outgoing pacer; 0: unlimited */
  size_t max_queued_bytes;     /* outgoing queue limit; 0: 4 MiB */
  const char *extra_headers;   /* client: appended to the upgrade request */
  uint64_t close_timeout_ms;   /* wait for the peer's close answer; 0: 5 s */
};

enum ws_state {
  WS_IDLE = 0,
  WS_CONNECTING, /* conn connecting or upgrade in flight */
  WS_OPEN,
  WS_CLOSING, /* close sent or received, waiting for the other side */
  WS_CLOSED
};

struct ws {
  void *data; /* owner's pointer */
  uv_loop_t *loop;
  enum ws_state state;
  struct ws_callbacks cb;
  struct ws_options opt;
  int http_status; /* client: status of the upgrade answer */
  char errstr[256];
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  uint64_t last_rx_ms; /* uv_now() of the last frame received */
  uint64_t rx_ns;      /* uv_hrtime() of the read that brought the bytes being
                          processed: when a frame delivered now arrived */
  /* Optional, set after ws_init (a field here rather than in ws_callbacks so
   * that positional initialisers of that struct keep compiling): after a
   * send returned BL_EFULL, the outgoing queue fell to half of
   * max_queued_bytes or less; send again. */
  void (*on_drain)(struct ws *ws);
  void *impl; /* private to ws.c */
};

void ws_init(uv_loop_t *loop, struct ws *ws, const struct ws_callbacks *cb,
             const struct ws_options *opt);

/* Client: |url| is ws://host[:port]/path?query or wss://...; |tls| is used
 * for wss:// (required then). Returns 0 or BL_EINVAL for a bad URL. */
int ws_connect(struct ws *ws, const char *url, struct tls_ctx *tls);

/* Server: |c| is open (TCP or TLS) and |request|/|len| is the complete
 * HTTP request head that was read from it (through the blank line);
 * |rest|/|rest_len| are bytes that followed it. ws takes over |c|'s
 * callbacks (it keeps c->data for itself) and will close |c|.
 * Returns 0, or BL_EHANDSHAKE after answering 400 when the request is not
 * a valid upgrade. */
int ws_accept_upgrade(struct ws *ws, struct conn *c, const char *request,
                      size_t len, const char *rest, size_t rest_len);

/* Queues a message (copied). Returns 0, BL_ESTATE when not open, BL_EFULL
 * when the outgoing queue is at its limit. */
int ws_send_text(struct ws *ws, const char *data, size_t len);
int ws_send_binary(struct ws *ws, const void *data, size_t len);
int ws_send_ping(struct ws *ws, const void *data, size_t len);

/* Starts the close handshake with |code| and |reason| (< 123 bytes). */
int ws_shutdown(struct ws *ws, int code, const char *reason);

/* Releases everything; |close_cb| runs when |ws| may be freed. Safe in any
 * state and from inside ws callbacks, exactly once. When the connection is
 * still open this drops it without a close handshake (call ws_shutdown
 * first for a clean close). */
void ws_close(struct ws *ws, void (*close_cb)(struct ws *ws));

/* Bytes waiting in the outgoing queue (pacer plus conn). */
size_t ws_queued_bytes(const struct ws *ws);

/* Testing hooks on the server side (mock exchange faults): stop answering
 * pings, stop reading (stall). */
void ws_set_auto_pong(struct ws *ws, int on);
/* Stall: with |on| the ws stops reading from its conn (conn_read_stop), so
 * frames pile up in the kernel buffers and nothing is answered; off resumes.
 * The read timeout keeps running while stalled. */
void ws_set_read_stall(struct ws *ws, int on);

/* --- I/O-free protocol pieces, for unit tests and fuzzing --- */

struct ws_url {
  int tls; /* 1 for wss:// */
  char host[256];
  int port;
  char path[2048]; /* path and query, at least "/" */
};

/* Parses a ws:// or wss:// URL. Returns 0 or BL_EINVAL. */
int ws_url_parse(const char *url, struct ws_url *out);

/* Computes base64(SHA1(key + GUID)) into |out| (at least 29 bytes). */
int ws_accept_key(const char *key, char *out, size_t outlen);

/* Parses an HTTP/1.1 response head (through CRLF CRLF) to an upgrade
 * request sent with |key|. Returns the number of bytes of the head (the
 * rest are frames), 0 if more bytes are needed, or a negative code:
 * BL_EHANDSHAKE (non-101 status, stored in *status; wrong or missing
 * Upgrade/Connection/Accept), BL_EPARSE, BL_ETOOBIG (head over 16 KiB). */
long ws_handshake_parse_response(const char *buf, size_t len, const char *key,
                                 int *status);

/* Parses an HTTP/1.1 request head. Returns the number of bytes of the head,
 * 0 if more are needed, or BL_EPARSE / BL_ETOOBIG. On success fills the
 * method, path and (when it is a valid WebSocket upgrade) the key; an
 * ordinary request has key[0] == '\0'. */
struct ws_http_request {
  char method[16];
  char path[2048];
  char key[64];
  int is_upgrade;
};
long ws_handshake_parse_request(const char *buf, size_t len,
                                struct ws_http_request *req);

struct buf;
/* Appends the client upgrade request for |u| with the base64 |key| (Host
 * carries the port when it is not the default one; |extra_headers|, may be
 * NULL, are CRLF-separated lines). Returns 0, BL_ETOOBIG or BL_ENOMEM. */
int ws_handshake_build_request(struct buf *out, const struct ws_url *u,
                               const char *key, const char *extra_headers);
/* Appends the server's 101 answer for the client |key|. Returns 0, BL_EINVAL,
 * BL_ETOOBIG or BL_ENOMEM. */
int ws_handshake_build_response(struct buf *out, const char *key);

#endif
