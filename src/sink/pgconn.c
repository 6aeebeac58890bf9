/*
 * pgconn.c: nonblocking libpq connect on libuv (see pgconn.h).
 *
 * The attempt: uv_getaddrinfo (skipped for a Unix-socket directory), then
 * PQconnectStartParams with hostaddr= the resolved addresses and host= the
 * name, then PQconnectPoll driven by the socket's readiness. Before every
 * PQconnectPoll the poll is stopped, because libpq may close the socket
 * inside it (moving on to the next address, or retrying without TLS); the
 * socket is read again afterwards and the poll restarted on it, or replaced
 * when it changed. A uv_timer bounds the whole attempt.
 */
#include "sink/pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

#define PGCONN_DEFAULT_TIMEOUT_MS 10000

static void pgconn_poll_free_cb(uv_handle_t *h) {
  free(h);
}

/* Stops and closes the current poll handle, if any. Safe before the fd is
 * closed by libpq (poll.rst: closing the fd right after uv_close is fine).
 */
static void poll_release(struct pgconn *pc) {
  if (!pc->poll)
    return;
  uv_poll_stop(pc->poll);
  uv_close((uv_handle_t *)pc->poll, pgconn_poll_free_cb);
  pc->poll = NULL;
  pc->poll_fd = -1;
  pc->poll_events = 0;
}

static void pgconn_on_poll(uv_poll_t *h, int status, int events);

/* Watches |fd| for |events| (0 stops), replacing the handle if the fd
 * changed. */
static int poll_set(struct pgconn *pc, int fd, int events) {
  int rv;
  if (pc->poll && pc->poll_fd != fd)
    poll_release(pc);
  if (!pc->poll) {
    uv_poll_t *p = malloc(sizeof(*p));
    if (!p)
      return BL_ENOMEM;
    rv = uv_poll_init_socket(pc->loop, p, fd);
    if (rv) {
      free(p);
      return rv;
    }
    p->data = pc;
    pc->poll = p;
    pc->poll_fd = fd;
  }
  pc->poll_events = events;
  if (events == 0)
    return uv_poll_stop(pc->poll);
  return uv_poll_start(pc->poll, events, pgconn_on_poll);
}

static void pgconn_notice_cb(void *arg, const PGresult *res) {
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  (void)arg;
  if (!msg)
    return;
  if (sev && strcmp(sev, "WARNING") == 0)
    log_limited(BL_LOG_WARN, "pg", "server warning: %s", msg);
  else
    log_debug("pg", "server %s: %s", sev ? sev : "notice", msg);
}

void pgconn_oneline(char *s) {
  char *w = s, *r = s;
  for (; *r; r++) {
    if (*r == '\n' || *r == '\t' || *r == '\r') {
      if (w > s && w[-1] != ' ')
        *w++ = ' ';
    } else {
      *w++ = *r;
    }
  }
  while (w > s && w[-1] == ' ')
    w--;
  *w = '\0';
}

static void set_err(struct pgconn *pc, const char *prefix, const char *msg) {
  snprintf(pc->errstr, sizeof(pc->errstr), "%s%s", prefix, msg ? msg : "");
  pgconn_oneline(pc->errstr);
}

int pgconn_init(uv_loop_t *loop, struct pgconn *pc,
                const struct pgconn_opts *opts) {
  int rv;
  memset(pc, 0, sizeof(*pc));
  pc->loop = loop;
  pc->opts = *opts;
  pc->poll_fd = -1;
  if (pc->opts.connect_timeout_ms == 0)
    pc->opts.connect_timeout_ms = PGCONN_DEFAULT_TIMEOUT_MS;
  rv = uv_timer_init(loop, &pc->timer);
  if (rv)
    return rv;
  pc->timer.data = pc;
  pc->state = PGCONN_IDLE;
  return 0;
}

/* Ends the attempt or the connection without calling anyone. */
void pgconn_drop(struct pgconn *pc) {
  if (pc->state == PGCONN_CLOSED)
    return;
  uv_timer_stop(&pc->timer);
  if (pc->gai) {
    /* The lookup may already be running on the thread pool; orphan it.
     * Its callback sees data == NULL and only frees the request. */
    pc->gai->data = NULL;
    uv_cancel((uv_req_t *)pc->gai);
    pc->gai = NULL;
  }
  poll_release(pc); /* A0.2: the poll goes before libpq closes the fd */
  if (pc->conn) {
    PQfinish(pc->conn);
    pc->conn = NULL;
  }
  if (pc->state != PGCONN_CLOSING)
    pc->state = PGCONN_IDLE;
}

/* Ends an attempt and reports |status| to the connect callback. */
static void attempt_done(struct pgconn *pc, int status) {
  pgconn_connect_cb cb = pc->connect_cb;
  pc->connect_cb = NULL;
  uv_timer_stop(&pc->timer);
  if (status == 0) {
    pc->state = PGCONN_READY;
    pc->errstr[0] = '\0';
  } else {
    pgconn_drop(pc);
  }
  if (cb)
    cb(pc, status);
}

static void connect_step(struct pgconn *pc) {
  PostgresPollingStatusType st;
  int fd, events, rv;

  /* libpq may close the socket inside PQconnectPoll: stop watching it
   * first (uv_poll_stop removes it from epoll at once). */
  if (pc->poll)
    uv_poll_stop(pc->poll);
  st = PQconnectPoll(pc->conn);
  switch (st) {
  case PGRES_POLLING_READING:
    events = UV_READABLE;
    break;
  case PGRES_POLLING_WRITING:
    events = UV_WRITABLE;
    break;
  case PGRES_POLLING_OK:
    fd = PQsocket(pc->conn);
    rv = fd >= 0 ? poll_set(pc, fd, 0) : BL_EPG;
    if (rv) {
      set_err(pc, "cannot watch the socket: ", bl_strerror(rv));
      attempt_done(pc, rv);
      return;
    }
    attempt_done(pc, 0);
    return;
  default:
    set_err(pc, "", PQerrorMessage(pc->conn));
    attempt_done(pc, BL_EPG);
    return;
  }
  fd = PQsocket(pc->conn);
  if (fd < 0) {
    set_err(pc, "no socket: ", PQerrorMessage(pc->conn));
    attempt_done(pc, BL_EPG);
    return;
  }
  rv = poll_set(pc, fd, events);
  if (rv) {
    set_err(pc, "cannot watch the socket: ", bl_strerror(rv));
    attempt_done(pc, rv);
  }
}

static void pgconn_on_poll(uv_poll_t *h, int status, int events) {
  struct pgconn *pc = h->data;
  if (pc->state == PGCONN_CONNECTING) {
    /* A poll error is left for PQconnectPoll to discover (A0.3). */
    connect_step(pc);
    return;
  }
  if (status < 0)
    pc->poll_events = 0; /* libuv stopped the handle on the error */
  if (pc->state == PGCONN_READY && pc->io_cb)
    pc->io_cb(pc, status, events);
}

static void pgconn_on_timeout(uv_timer_t *t) {
  struct pgconn *pc = t->data;
  char msg[96];
  snprintf(msg, sizeof(msg), "connection timed out after %u ms while %s",
           pc->opts.connect_timeout_ms,
           pc->state == PGCONN_RESOLVING ? "resolving the host" : "connecting");
  set_err(pc, "", msg);
  attempt_done(pc, BL_ETIMEDOUT);
}

/* Starts libpq on |hostaddrs| (NULL: let libpq use host=, a socket
 * directory or its default). */
static void start_libpq(struct pgconn *pc, const char *hosts,
                        const char *hostaddrs) {
  const char *keys[20], *vals[20];
  char port[16];
  int n = 0;

  snprintf(port, sizeof(port), "%d", pc->opts.port > 0 ? pc->opts.port : 5432);
#define KV(k, v)                                                               \
  do {                                                                         \
    if ((v) && *(v)) {                                                         \
      keys[n] = (k);                                                           \
      vals[n] = (v);                                                           \
      n++;                                                                     \
    }                                                                          \
  } while (0)
  KV("host", hosts);
  KV("hostaddr", hostaddrs);
  keys[n] = "port";
  vals[n] = port;
  n++;
  KV("user", pc->opts.user);
  KV("password", pc->opts.password);
  KV("dbname", pc->opts.dbname);
  KV("sslmode", pc->opts.sslmode);
  KV("application_name",
     pc->opts.application_name ? pc->opts.application_name : "binance-live");
  /* GSS negotiation would add a round trip and may consult Kerberos. */
  KV("gssencmode", "disable");
  /* A peer that vanished (no FIN, no RST) is noticed within about a
   * minute instead of the kernel's two hours, so in-flight ops are re-sent
   * on a new connection. Ignored on Unix sockets. */
  KV("keepalives_idle", "30");
  KV("keepalives_interval", "10");
  KV("keepalives_count", "3");
  KV("tcp_user_timeout", "60000");
  KV("client_encoding", "UTF8");
#undef KV
  keys[n] = NULL;
  vals[n] = NULL;

  pc->conn = PQconnectStartParams(keys, vals, 0);
  if (!pc->conn) {
    set_err(pc, "", "out of memory");
    attempt_done(pc, BL_ENOMEM);
    return;
  }
  if (PQstatus(pc->conn) == CONNECTION_BAD) {
    set_err(pc, "", PQerrorMessage(pc->conn));
    attempt_done(pc, BL_EPG);
    return;
  }
  PQsetNoticeReceiver(pc->conn, pgconn_notice_cb, pc);
  pc->state = PGCONN_CONNECTING;
  /* The docs: act as if PQconnectPoll had returned WRITING. */
  {
    int fd = PQsocket(pc->conn);
    int rv;
    if (fd < 0) {
      connect_step(pc);
      return;
    }
    rv = poll_set(pc, fd, UV_WRITABLE);
    if (rv) {
      set_err(pc, "cannot watch the socket: ", bl_strerror(rv));
      attempt_done(pc, rv);
    }
  }
}

int pgconn_addr_lists(const char *name, const struct addrinfo *ai, char *hosts,
                      size_t hosts_len, char *addrs, size_t addrs_len) {
  size_t hl = 0, al = 0;
  int n = 0;
  for (; ai && n < PGCONN_MAX_ADDRS; ai = ai->ai_next) {
    char ip[64];
    int w;
    if (ai->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
    else if (ai->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
    else
      continue;
    w = snprintf(addrs + al, addrs_len - al, "%s%s", n ? "," : "", ip);
    if (w < 0 || (size_t)w >= addrs_len - al)
      return BL_ETOOBIG;
    al += (size_t)w;
    w = snprintf(hosts + hl, hosts_len - hl, "%s%s", n ? "," : "", name);
    if (w < 0 || (size_t)w >= hosts_len - hl)
      return BL_ETOOBIG;
    hl += (size_t)w;
    n++;
  }
  return n > 0 ? n : BL_ENOTFOUND;
}

static void pgconn_on_resolved(uv_getaddrinfo_t *req, int status,
                               struct addrinfo *res) {
  struct pgconn *pc = req->data;
  char hosts[PGCONN_MAX_ADDRS * 256], addrs[PGCONN_MAX_ADDRS * 64];
  int rv;

  free(req);
  if (!pc) { /* dropped while resolving */
    uv_freeaddrinfo(res);
    return;
  }
  pc->gai = NULL;
  if (status < 0) {
    uv_freeaddrinfo(res);
    snprintf(pc->errstr, sizeof(pc->errstr), "cannot resolve \"%s\": %s",
             pc->opts.host, uv_strerror(status));
    attempt_done(pc, status);
    return;
  }
  rv = pgconn_addr_lists(pc->opts.host, res, hosts, sizeof(hosts), addrs,
                         sizeof(addrs));
  uv_freeaddrinfo(res);
  if (rv < 0) {
    snprintf(pc->errstr, sizeof(pc->errstr), "cannot resolve \"%s\": %s",
             pc->opts.host, bl_strerror(rv));
    attempt_done(pc, rv);
    return;
  }
  start_libpq(pc, hosts, addrs);
}

int pgconn_connect(struct pgconn *pc, pgconn_connect_cb cb) {
  const char *host = pc->opts.host;
  int rv;

  if (pc->state != PGCONN_IDLE)
    return BL_ESTATE;
  pc->connect_cb = cb;
  pc->errstr[0] = '\0';
  rv = uv_timer_start(&pc->timer, pgconn_on_timeout,
                      pc->opts.connect_timeout_ms, 0);
  if (rv)
    return rv;
  if (!host || !*host || host[0] == '/') {
    /* A Unix-socket directory (or libpq's default): no DNS involved. */
    pc->state = PGCONN_CONNECTING;
    start_libpq(pc, host, NULL);
    return 0;
  }
  {
    struct addrinfo hints;
    uv_getaddrinfo_t *req = malloc(sizeof(*req));
    if (!req) {
      uv_timer_stop(&pc->timer);
      return BL_ENOMEM;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    req->data = pc;
    rv = uv_getaddrinfo(pc->loop, req, pgconn_on_resolved, host, NULL, &hints);
    if (rv) {
      free(req);
      uv_timer_stop(&pc->timer);
      return rv;
    }
    pc->gai = req;
    pc->state = PGCONN_RESOLVING;
  }
  return 0;
}

int pgconn_watch(struct pgconn *pc, int events, pgconn_io_cb cb) {
  if (pc->state != PGCONN_READY || !pc->poll)
    return BL_ESTATE;
  pc->io_cb = cb;
  if (events == pc->poll_events)
    return 0;
  return poll_set(pc, pc->poll_fd, events);
}

static void pgconn_timer_closed(uv_handle_t *h) {
  struct pgconn *pc = h->data;
  pc->state = PGCONN_CLOSED;
  if (pc->close_cb)
    pc->close_cb(pc);
}

void pgconn_close(struct pgconn *pc, pgconn_close_cb cb) {
  if (pc->state == PGCONN_CLOSING || pc->state == PGCONN_CLOSED)
    return;
  pgconn_drop(pc);
  pc->state = PGCONN_CLOSING;
  pc->connect_cb = NULL;
  pc->io_cb = NULL;
  pc->close_cb = cb;
  uv_close((uv_handle_t *)&pc->timer, pgconn_timer_closed);
}
