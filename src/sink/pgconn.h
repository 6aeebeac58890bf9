/*
 * pgconn.h: one libpq connection opened without blocking the loop.
 *
 * Shared by sink/pg (the pipelined writer) and sink/migrate (the schema
 * migrator). It resolves the host with uv_getaddrinfo, hands libpq the
 * addresses as hostaddr= (so libpq never does a synchronous DNS lookup;
 * host= stays set for TLS server-name checks), drives PQconnectPoll from a
 * uv_poll_t and bounds the whole attempt with a uv_timer. Once connected it
 * keeps owning the socket's uv_poll_t and lends it to the user through
 * pgconn_watch(), so that the uv_poll rules of c-stack.md A0 live in one
 * place: one poll per fd, the poll is stopped before libpq may close the fd
 * (PQconnectPoll moving to the next address, PQfinish), a new poll is made
 * when PQsocket() changes, and poll errors reach the user's callback.
 *
 * State: IDLE -> RESOLVING -> CONNECTING -> READY, and back to IDLE through
 * pgconn_drop() or a failed attempt. The uv_poll_t and the getaddrinfo
 * request live on the heap because a dropped connection's poll may still
 * be closing (or its lookup still running) while the next attempt starts.
 */
#ifndef BL_SINK_PGCONN_H
#define BL_SINK_PGCONN_H

#include <libpq-fe.h>
#include <uv.h>

struct pgconn_opts {
  const char *host; /* name, IP address, or a directory (Unix socket) */
  int port;         /* 0: 5432 */
  const char *user;
  const char *password;
  const char *dbname;
  const char *sslmode;          /* NULL: libpq's default (prefer) */
  const char *application_name; /* NULL: binance-live */
  unsigned connect_timeout_ms;  /* DNS + TCP + TLS + auth; 0: 10000 */
};

enum pgconn_state {
  PGCONN_IDLE = 0,
  PGCONN_RESOLVING,
  PGCONN_CONNECTING,
  PGCONN_READY,
  PGCONN_CLOSING,
  PGCONN_CLOSED
};

struct pgconn;

/* |status| is 0 (pc->conn is usable) or BL_ETIMEDOUT, BL_EPG (libpq's
 * reason in pc->errstr), BL_ENOMEM, or a UV_E* code from the lookup. */
typedef void (*pgconn_connect_cb)(struct pgconn *pc, int status);
/* |status| < 0 is a poll error (UV_EBADF on POLLERR): the user must still
 * let libpq look at the socket (PQconsumeInput) to learn what happened. */
typedef void (*pgconn_io_cb)(struct pgconn *pc, int status, int events);
typedef void (*pgconn_close_cb)(struct pgconn *pc);

#define PGCONN_MAX_ADDRS 8

struct pgconn {
  uv_loop_t *loop;
  void *data;              /* the owner's */
  struct pgconn_opts opts; /* strings must outlive the object */
  PGconn *conn;            /* NULL unless CONNECTING or READY */
  int state;
  uv_poll_t *poll; /* heap; NULL when no socket is watched */
  int poll_fd;
  int poll_events;
  uv_getaddrinfo_t *gai; /* heap; the lookup in progress */
  uv_timer_t timer;      /* connect timeout */
  pgconn_connect_cb connect_cb;
  pgconn_io_cb io_cb;
  pgconn_close_cb close_cb;
  char errstr[256]; /* why the last attempt failed; never holds secrets */
};

/* Prepares |pc| on |loop|. Returns 0 or a UV_E* code. */
int pgconn_init(uv_loop_t *loop, struct pgconn *pc,
                const struct pgconn_opts *opts);

/* Starts one connection attempt; |cb| is called exactly once unless
 * pgconn_drop() or pgconn_close() cancels the attempt first (for a socket
 * directory whose parameters libpq rejects at once, before this function
 * returns). After success the socket is not watched until pgconn_watch().
 * Returns 0,
 * BL_ESTATE (not IDLE), or a UV_E* code. */
int pgconn_connect(struct pgconn *pc, pgconn_connect_cb cb);

/* READY only: watches the socket for |events| (UV_READABLE|UV_WRITABLE,
 * 0 to pause) and calls |cb| on readiness. Returns 0, BL_ESTATE or a UV_E*
 * code. */
int pgconn_watch(struct pgconn *pc, int events, pgconn_io_cb cb);

/* Ends the connection or the attempt in progress (no callback): the poll is
 * stopped and closed first, then PQfinish closes the socket. Back to IDLE. */
void pgconn_drop(struct pgconn *pc);

/* Drops, then closes the timer; |cb| runs once every handle is closed. */
void pgconn_close(struct pgconn *pc, pgconn_close_cb cb);

/* Builds libpq's "host"/"hostaddr" values for the addresses in |ai| (at
 * most PGCONN_MAX_ADDRS, in resolver order): hostaddr gets the numeric
 * addresses, host repeats |name| once per address. Returns the number of
 * addresses (>= 1), or BL_ENOTFOUND, BL_ETOOBIG. Pure; exposed for tests. */
int pgconn_addr_lists(const char *name, const struct addrinfo *ai, char *hosts,
                      size_t hosts_len, char *addrs, size_t addrs_len);

/* Folds libpq's multi-line messages into one line, in place. */
void pgconn_oneline(char *s);

#endif
