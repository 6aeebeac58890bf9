/*
 * redis.c: the Redis publisher (see redis.h for the contract).
 *
 * State: the connection state machine (DOWN, RESOLVING, CONNECTING, UP),
 * the hiredis context while one exists (NULL from the moment hiredis
 * reports it failed or gone: it frees the context right after the
 * callback), the back-off, the number of commands awaiting replies (every
 * command carries a reply callback, which hiredis calls exactly once, with
 * NULL when the link is lost; those callbacks are the credits of the
 * in-flight cap), and a hash table of channels, each with its seq and its
 * latest message, so the latest keys can be rewritten after a reconnect.
 * A second table finds a channel from the event's (kind, symbol, interval)
 * without building its name, and each channel keeps the RESP head of its
 * SET and of its PUBLISH, so an event costs no formatting but its own JSON.
 *
 * TTL: a latest key is written with SET ... EX live_data_ttl when it is
 * first written on a connection and then at least every
 * REDIS_TTL_RENEW_MS; the writes between keep that TTL (SET ... KEEPTTL,
 * Redis 6.0 and later, found by INFO at connect). SET with EX costs Redis
 * about a fifth more than KEEPTTL: it rewrites the command with an
 * absolute time for replication and replaces the key's expiry each time.
 * A key then expires between live_data_ttl - REDIS_TTL_RENEW_MS and
 * live_data_ttl after its last write.
 *
 * Handshake: AUTH (when a password is set) and SELECT are queued right
 * after redisAsyncConnect; the sink is UP only when SELECT answered OK.
 * An AUTH or SELECT error is logged with Redis' own message and the
 * connection is dropped and retried with back-off.
 */
#include "sink/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/redis_uv.h"

#define N_BUCKETS 4096
#define REDIS_TTL_RENEW_MS 250

struct redis_chan {
  struct redis_chan *next;  /* in buckets (by channel name) */
  struct redis_chan *tnext; /* in tbuckets (by tuple), when |tuple| */
  uint64_t seq;
  char *channel;
  char *key;
  char *msg; /* the latest message, NULL until the first */
  size_t msg_len, msg_cap;
  /* The last SET with EX: connection (redis_sink.conn_id) and loop time. */
  uint64_t ttl_conn, ttl_ms;
  /* "$3\r\nSET\r\n$N\r\nKEY\r\n" (the argument count goes before
   * it) and "*3\r\n$7\r\nPUBLISH\r\n$N\r\nCHANNEL\r\n" */
  char *set_head, *pub_head;
  size_t set_head_len, pub_head_len;
  /* The event fields the channel was first found by (tuple set), which
   * are its entry in tbuckets. */
  int tuple;
  int kind;
  char symbol[EV_SYMBOL_MAX];
  char interval[EV_INTERVAL_MAX];
};

static void redis_retry_cb(uv_timer_t *timer);
static void redis_maybe_finish(struct redis_sink *r);

/* ---- helpers ---- */

static uint64_t rng_next(struct redis_sink *r) {
  uint64_t x = r->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  r->rng = x;
  return x;
}

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  while (*s)
    h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

/* errstr = "what: detail" */
static void set_err(struct redis_sink *r, const char *what,
                    const char *detail) {
  snprintf(r->errstr, sizeof r->errstr, "%s: %s", what,
           detail ? detail : "unknown error");
}

/* Writes "$LEN\r\n" at |p|; returns the end. */
static char *resp_len(char *p, size_t n) {
  size_t k = 1, t = n;
  while (t >= 10) {
    t /= 10;
    k++;
  }
  *p++ = '$';
  for (size_t i = k; i-- > 0; n /= 10)
    p[i] = (char)('0' + n % 10);
  p += k;
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

/* Writes |cmd| (RESP already), then $LEN\r\nS\r\n, at |p|; returns the
 * end. |p| needs strlen(cmd) + n + 26 bytes. */
static char *resp_head(char *p, const char *cmd, const char *s, size_t n) {
  size_t cl = strlen(cmd);
  memcpy(p, cmd, cl);
  p = resp_len(p + cl, n);
  memcpy(p, s, n);
  p += n;
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

static struct redis_chan *chan_get(struct redis_sink *r, const char *channel,
                                   const char *key) {
  static const char set_cmd[] = "$3\r\nSET\r\n";
  static const char pub_cmd[] = "*3\r\n$7\r\nPUBLISH\r\n";
  uint32_t b = hash_str(channel) % N_BUCKETS;
  struct redis_chan *c;
  size_t cl, kl, sl, pl;
  char *end;
  for (c = r->buckets[b]; c; c = c->next)
    if (strcmp(c->channel, channel) == 0)
      return c;
  if (r->n_chans >= REDIS_SINK_MAX_CHANNELS)
    return NULL;
  cl = strlen(channel) + 1;
  kl = strlen(key) + 1;
  sl = sizeof set_cmd + kl + 26;
  pl = sizeof pub_cmd + cl + 26;
  c = calloc(1, sizeof *c + cl + kl + sl + pl);
  if (!c)
    return NULL;
  c->channel = (char *)(c + 1);
  c->key = c->channel + cl;
  memcpy(c->channel, channel, cl);
  memcpy(c->key, key, kl);
  c->set_head = c->key + kl;
  end = resp_head(c->set_head, set_cmd, key, kl - 1);
  c->set_head_len = (size_t)(end - c->set_head);
  c->pub_head = c->set_head + sl;
  end = resp_head(c->pub_head, pub_cmd, channel, cl - 1);
  c->pub_head_len = (size_t)(end - c->pub_head);
  c->next = r->buckets[b];
  r->buckets[b] = c;
  r->n_chans++;
  return c;
}

/* The event fields that name a channel; the interval counts for klines
 * only (as in envelope_name). */
static uint32_t hash_tuple(int kind, const char *symbol, const char *interval) {
  uint32_t h = (2166136261u ^ (uint32_t)kind) * 16777619u;
  while (*symbol)
    h = (h ^ (unsigned char)*symbol++) * 16777619u;
  if (kind == ENVELOPE_KLINE)
    while (*interval)
      h = (h ^ (unsigned char)*interval++) * 16777619u;
  return h;
}

static struct redis_chan *tuple_find(struct redis_sink *r, int kind,
                                     const char *symbol, const char *interval,
                                     uint32_t h) {
  struct redis_chan *c;
  for (c = r->tbuckets[h % N_BUCKETS]; c; c = c->tnext)
    if (c->kind == kind && strcmp(c->symbol, symbol) == 0 &&
        (kind != ENVELOPE_KLINE || strcmp(c->interval, interval) == 0))
      return c;
  return NULL;
}

/* Enters |c| in tbuckets under the tuple it was just found by, unless it
 * is there already (under another tuple with the same names: that one
 * keeps finding it by name) or the fields do not fit. */
static void tuple_add(struct redis_sink *r, struct redis_chan *c, int kind,
                      const char *symbol, const char *interval, uint32_t h) {
  size_t sl = strlen(symbol),
         il = kind == ENVELOPE_KLINE ? strlen(interval) : 0;
  if (c->tuple || sl >= sizeof c->symbol || il >= sizeof c->interval)
    return;
  c->tuple = 1;
  c->kind = kind;
  memcpy(c->symbol, symbol, sl + 1);
  if (il)
    memcpy(c->interval, interval, il + 1);
  c->tnext = r->tbuckets[h % N_BUCKETS];
  r->tbuckets[h % N_BUCKETS] = c;
}

static int chan_keep(struct redis_chan *c, const char *msg, size_t len) {
  if (len > c->msg_cap) {
    char *p = realloc(c->msg, len);
    if (!p)
      return BL_ENOMEM;
    c->msg = p;
    c->msg_cap = len;
  }
  memcpy(c->msg, msg, len);
  c->msg_len = len;
  return 0;
}

/* ---- replies ---- */

static void redis_reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct redis_sink *r = priv;
  redisReply *rep = reply;
  (void)ac;
  r->inflight--;
  if (rep && rep->type == REDIS_REPLY_ERROR) {
    r->errors++;
    set_err(r, "reply", rep->str);
    log_limited(BL_LOG_WARN, "redis", "error reply: %s", rep->str);
  }
}

static int send_set(struct redis_sink *r, const char *key, const char *msg,
                    size_t len, int with_ttl) {
  char ttl[24];
  const char *argv[5] = {"SET", key, msg, "EX", ttl};
  size_t lens[5] = {3, strlen(key), len, 2, 0};
  lens[4] = (size_t)snprintf(ttl, sizeof ttl, "%d", r->ttl);
  if (redisAsyncCommandArgv(r->ac, redis_reply_cb, r, with_ttl ? 5 : 3, argv,
                            lens) != REDIS_OK)
    return BL_EREDIS;
  r->inflight++;
  return 0;
}

static int send_publish(struct redis_sink *r, const char *channel,
                        const char *msg, size_t len) {
  const char *argv[3] = {"PUBLISH", channel, msg};
  size_t lens[3] = {7, strlen(channel), len};
  if (redisAsyncCommandArgv(r->ac, redis_reply_cb, r, 3, argv, lens) !=
      REDIS_OK)
    return BL_EREDIS;
  r->inflight++;
  return 0;
}

/* ---- pre-built commands ---- */

/* SET key msg EX ttl (|with_ex|; else SET key msg KEEPTTL) and PUBLISH
 * channel msg, formatted here into |b| (redisAsyncCommandArgv would format
 * them again through sds): the channel's two heads, the message twice and
 * the TTL tail; *set_len is where the PUBLISH starts. Returns 0,
 * BL_ETOOBIG or BL_ENOMEM. */
static int build_set_publish(const struct redis_sink *r, struct buf *b,
                             const struct redis_chan *c, int with_ex,
                             size_t *set_len) {
  static const char keepttl[] = "$7\r\nKEEPTTL\r\n";
  size_t n = c->msg_len;
  char *p;
  int rv;
  buf_reset(b);
  rv = buf_reserve(b, 4 + c->set_head_len + c->pub_head_len + r->ttl_resp_len +
                          2 * (n + 26));
  if (rv)
    return rv;
  p = b->data;
  memcpy(p, with_ex ? "*5\r\n" : "*4\r\n", 4);
  p += 4;
  memcpy(p, c->set_head, c->set_head_len);
  p = resp_len(p + c->set_head_len, n);
  memcpy(p, c->msg, n);
  p += n;
  *p++ = '\r';
  *p++ = '\n';
  if (with_ex) {
    memcpy(p, r->ttl_resp, r->ttl_resp_len);
    p += r->ttl_resp_len;
  } else {
    memcpy(p, keepttl, sizeof keepttl - 1);
    p += sizeof keepttl - 1;
  }
  *set_len = (size_t)(p - b->data);
  memcpy(p, c->pub_head, c->pub_head_len);
  p = resp_len(p + c->pub_head_len, n);
  memcpy(p, c->msg, n);
  p += n;
  *p++ = '\r';
  *p++ = '\n';
  b->len = (size_t)(p - b->data);
  *p = '\0';
  return 0;
}

/* The two commands, handed to hiredis as ready RESP. |b| is scratch;
 * BL_ETOOBIG when the message does not fit, and the caller then lets
 * hiredis format them. */
static int send_set_publish(struct redis_sink *r, struct buf *b,
                            const struct redis_chan *c, int with_ex) {
  size_t set_len = 0;
  int rv = build_set_publish(r, b, c, with_ex, &set_len);
  if (rv)
    return rv;
  if (redisAsyncFormattedCommand(r->ac, redis_reply_cb, r, b->data, set_len) !=
      REDIS_OK)
    return BL_EREDIS;
  r->inflight++;
  if (redisAsyncFormattedCommand(r->ac, redis_reply_cb, r, b->data + set_len,
                                 b->len - set_len) != REDIS_OK)
    return BL_EREDIS;
  r->inflight++;
  return 0;
}

static void write_symbols(struct redis_sink *r) {
  if (!r->symbols_json || r->state != REDIS_SINK_UP || !r->ac)
    return;
  buf_reset(&r->name);
  if (buf_printf(&r->name, "%s:symbols:active", r->prefix) == 0)
    send_set(r, r->name.data, r->symbols_json, r->symbols_len, 0);
  buf_reset(&r->name);
}

/* After (re)connecting: every latest key again, from memory. This burst
 * is bounded by the channel table (REDIS_SINK_MAX_CHANNELS) and is not
 * held to max_inflight, so no latest value is lost to the cap. */
static void rewrite_latest(struct redis_sink *r) {
  size_t i, n = 0;
  struct redis_chan *c;
  for (i = 0; i < N_BUCKETS; i++)
    for (c = r->buckets[i]; c; c = c->next)
      if (c->msg && r->ac && send_set(r, c->key, c->msg, c->msg_len, 1) == 0) {
        c->ttl_conn = r->conn_id;
        c->ttl_ms = uv_now(r->loop);
        r->ttl_writes++;
        n++;
      }
  if (n)
    log_info("redis", "rewrote %zu latest keys", n);
}

static void go_up(struct redis_sink *r) {
  r->state = REDIS_SINK_UP;
  r->backoff = r->backoff_min;
  if (r->ever_up)
    r->reconnects++;
  r->ever_up = 1;
  log_info("redis", "connected to %s:%d db %d", r->host, r->port, r->db);
  write_symbols(r);
  rewrite_latest(r);
}

static void redis_auth_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct redis_sink *r = priv;
  redisReply *rep = reply;
  r->inflight--;
  if (!rep || r->ac != ac)
    return;
  if (rep->type == REDIS_REPLY_ERROR) {
    r->errors++;
    set_err(r, "AUTH failed", rep->str);
    log_limited(BL_LOG_ERROR, "redis", "AUTH failed: %s", rep->str);
    redisAsyncDisconnect(ac);
  }
}

static void redis_select_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct redis_sink *r = priv;
  redisReply *rep = reply;
  r->inflight--;
  if (!rep || r->ac != ac || (ac->c.flags & REDIS_DISCONNECTING))
    return; /* lost, replaced, or AUTH already failed */
  if (rep->type == REDIS_REPLY_ERROR) {
    r->errors++;
    snprintf(r->errstr, sizeof r->errstr, "SELECT %d failed: %s", r->db,
             rep->str);
    log_limited(BL_LOG_ERROR, "redis", "%s", r->errstr);
    redisAsyncDisconnect(ac);
    return;
  }
  go_up(r);
}

int redis_version_has_keepttl(const char *info) {
  const char *v = info ? strstr(info, "redis_version:") : NULL;
  int major = 0, digits = 0;
  if (!v)
    return 0;
  for (v += sizeof "redis_version:" - 1; *v >= '0' && *v <= '9' && digits < 4;
       v++, digits++)
    major = major * 10 + (*v - '0');
  return digits > 0 && *v == '.' && major >= 6;
}

/* INFO server, asked at connect: may SET take KEEPTTL? */
static void redis_info_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct redis_sink *r = priv;
  redisReply *rep = reply;
  r->inflight--;
  if (!rep || r->ac != ac || (ac->c.flags & REDIS_DISCONNECTING))
    return; /* lost, replaced, or AUTH or SELECT failed (logged there) */
  if (rep->type == REDIS_REPLY_STRING)
    r->keepttl = redis_version_has_keepttl(rep->str);
  if (!r->keepttl)
    log_info("redis", "%s: every latest key write sets its TTL",
             rep->type == REDIS_REPLY_STRING
                 ? "server without SET KEEPTTL (before 6.0)"
                 : "INFO refused");
}

/* ---- connection ---- */

static void schedule_retry(struct redis_sink *r) {
  uint64_t delay, half;
  r->state = REDIS_SINK_DOWN;
  if (r->closing)
    return;
  half = r->backoff / 2;
  delay = half + rng_next(r) % (half + 1);
  r->backoff =
      r->backoff * 2 > r->backoff_max ? r->backoff_max : r->backoff * 2;
  uv_timer_start(&r->timer, redis_retry_cb, delay, 0);
}

static void redis_connect_cb(const redisAsyncContext *ac, int status) {
  struct redis_sink *r = ac->data;
  if (r->ac != ac)
    return;
  if (status == REDIS_OK)
    return;     /* UP once SELECT answers */
  r->ac = NULL; /* hiredis frees it after this callback */
  r->errors++;
  set_err(r, "connect", ac->errstr);
  log_limited(BL_LOG_WARN, "redis", "connect to %s:%d failed: %s", r->host,
              r->port, ac->errstr);
  if (r->closing)
    redis_maybe_finish(r);
  else
    schedule_retry(r);
}

static void redis_disconnect_cb(const redisAsyncContext *ac, int status) {
  struct redis_sink *r = ac->data;
  if (r->ac != ac)
    return;
  r->ac = NULL; /* hiredis frees it after this callback */
  if (r->closing) {
    r->state = REDIS_SINK_DOWN;
    redis_maybe_finish(r);
    return;
  }
  /* hiredis reports REDIS_OK when the context was freed on purpose, as
   * the adapter's watchdog does after setting ac->err. */
  if (status != REDIS_OK || ac->err) {
    r->errors++;
    set_err(r, "connection lost", ac->errstr);
    log_limited(BL_LOG_WARN, "redis", "connection lost: %s", ac->errstr);
  } else {
    log_limited(BL_LOG_WARN, "redis", "disconnected (%s)", r->errstr);
  }
  schedule_retry(r);
}

static void connect_to(struct redis_sink *r, const char *ip) {
  redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
  int rv;
  const char *argv[2];
  size_t lens[2];
  char db[16];
  if (!ac) {
    set_err(r, "connect", "out of memory");
    schedule_retry(r);
    return;
  }
  if (ac->err) {
    r->errors++;
    set_err(r, "connect", ac->errstr);
    log_limited(BL_LOG_WARN, "redis", "connect to %s:%d failed: %s", ip,
                r->port, ac->errstr);
    redisAsyncFree(ac);
    schedule_retry(r);
    return;
  }
  rv = redis_uv_attach(ac, r->loop, r->connect_timeout, r->command_timeout);
  if (rv) {
    set_err(r, "attach", bl_strerror(rv));
    redisAsyncFree(ac);
    schedule_retry(r);
    return;
  }
  ac->data = r;
  r->ac = ac;
  r->state = REDIS_SINK_CONNECTING;
  redisAsyncSetConnectCallback(ac, redis_connect_cb);
  redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
  redisEnableKeepAlive(&ac->c);
  if (r->password && r->password[0]) {
    argv[0] = "AUTH";
    argv[1] = r->password;
    lens[0] = 4;
    lens[1] = strlen(r->password);
    if (redisAsyncCommandArgv(ac, redis_auth_cb, r, 2, argv, lens) == REDIS_OK)
      r->inflight++;
  }
  argv[0] = "SELECT";
  argv[1] = db;
  lens[0] = 6;
  lens[1] = (size_t)snprintf(db, sizeof db, "%d", r->db);
  if (redisAsyncCommandArgv(ac, redis_select_cb, r, 2, argv, lens) == REDIS_OK)
    r->inflight++;
  r->keepttl = 0;
  r->conn_id++;
  argv[0] = "INFO";
  argv[1] = "server";
  lens[0] = 4;
  lens[1] = 6;
  if (redisAsyncCommandArgv(ac, redis_info_cb, r, 2, argv, lens) == REDIS_OK)
    r->inflight++;
}

static void redis_gai_cb(uv_getaddrinfo_t *req, int status,
                         struct addrinfo *res) {
  struct redis_sink *r = req->data;
  char ip[64];
  int rv = UV_EAI_NONAME;
  r->resolving = 0;
  if (r->closing) {
    uv_freeaddrinfo(res);
    redis_maybe_finish(r);
    return;
  }
  if (status == 0 && res) {
    if (res->ai_family == AF_INET6)
      rv = uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    else
      rv = uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
  } else if (status < 0) {
    rv = status;
  }
  uv_freeaddrinfo(res);
  if (rv) {
    r->errors++;
    set_err(r, "resolve", uv_strerror(rv));
    log_limited(BL_LOG_WARN, "redis", "cannot resolve %s: %s", r->host,
                uv_strerror(rv));
    schedule_retry(r);
    return;
  }
  connect_to(r, ip);
}

static void connect_begin(struct redis_sink *r) {
  struct addrinfo hints;
  char port[16];
  int rv;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof port, "%d", r->port);
  r->state = REDIS_SINK_RESOLVING;
  r->gai.data = r;
  rv = uv_getaddrinfo(r->loop, &r->gai, redis_gai_cb, r->host, port, &hints);
  if (rv) {
    r->errors++;
    set_err(r, "resolve", uv_strerror(rv));
    schedule_retry(r);
    return;
  }
  r->resolving = 1;
}

static void redis_retry_cb(uv_timer_t *timer) {
  struct redis_sink *r = timer->data;
  if (!r->closing && r->state == REDIS_SINK_DOWN)
    connect_begin(r);
}

/* ---- public ---- */

static char *dup_default(const char *s, const char *def) {
  return strdup(s ? s : def);
}

int redis_sink_init(uv_loop_t *loop, struct redis_sink *r,
                    const struct redis_sink_opts *o) {
  static const struct redis_sink_opts none;
  memset(r, 0, sizeof *r);
  if (!o)
    o = &none;
  if (o->port < 0 || o->port > 65535 || o->db < 0 || o->live_data_ttl < 0)
    return BL_EINVAL;
  r->loop = loop;
  r->host = dup_default(o->host, "localhost");
  r->prefix = dup_default(o->key_prefix, "binance");
  r->password = dup_default(o->password, "");
  r->buckets = calloc(N_BUCKETS, sizeof *r->buckets);
  r->tbuckets = calloc(N_BUCKETS, sizeof *r->tbuckets);
  if (!r->host || !r->prefix || !r->password || !r->buckets || !r->tbuckets) {
    free(r->host);
    free(r->prefix);
    free(r->password);
    free(r->buckets);
    free(r->tbuckets);
    return BL_ENOMEM;
  }
  if (r->password[0])
    log_add_secret(r->password);
  r->port = o->port ? o->port : 6379;
  r->db = o->db;
  r->ttl = o->live_data_ttl ? o->live_data_ttl : 60;
  {
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%d", r->ttl);
    char *end = resp_head(r->ttl_resp, "$2\r\nEX\r\n", ttl, (size_t)tl);
    r->ttl_resp_len = (size_t)(end - r->ttl_resp);
  }
  r->max_inflight = o->max_inflight ? o->max_inflight : REDIS_SINK_MAX_INFLIGHT;
  r->backoff_min = o->backoff_min_ms ? o->backoff_min_ms : 100;
  r->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : 10000;
  if (r->backoff_max < r->backoff_min)
    r->backoff_max = r->backoff_min;
  r->backoff = r->backoff_min;
  r->connect_timeout = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
  r->command_timeout = o->command_timeout_ms ? o->command_timeout_ms : 10000;
  r->close_timeout = o->close_timeout_ms ? o->close_timeout_ms : 10000;
  r->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)r;
  if (!r->rng)
    r->rng = 0x9e3779b97f4a7c15ull;
  buf_init(&r->msg, REDIS_SINK_MSG_MAX);
  buf_init(&r->name, 4096);
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->state = REDIS_SINK_DOWN;
  return 0;
}

int redis_sink_start(struct redis_sink *r) {
  if (r->closing || r->state != REDIS_SINK_DOWN || r->ac || r->resolving)
    return BL_ESTATE;
  connect_begin(r);
  return 0;
}

int redis_sink_is_up(const struct redis_sink *r) {
  return r->state == REDIS_SINK_UP && r->ac != NULL;
}

/* The common path: find the channel, build the message with the next seq,
 * keep it as the latest value, send SET+PUBLISH or count the drop. */
static int publish(struct redis_sink *r, enum envelope_kind kind,
                   const char *symbol, const char *interval, const void *ev) {
  struct redis_chan *c;
  char key[512];
  uint32_t h;
  uint64_t now;
  int rv, with_ex;
  if (r->closing)
    return BL_ESTATE;
  h = hash_tuple((int)kind, symbol, interval);
  c = tuple_find(r, (int)kind, symbol, interval, h);
  if (!c) {
    rv = envelope_name(&r->name, r->prefix, kind, symbol, interval, 1);
    if (rv || r->name.len >= sizeof key)
      return rv ? rv : BL_ETOOBIG;
    memcpy(key, r->name.data, r->name.len + 1);
    rv = envelope_name(&r->name, r->prefix, kind, symbol, interval, 0);
    if (rv)
      return rv;
    c = chan_get(r, r->name.data, key);
    if (!c) {
      r->dropped++;
      log_limited(BL_LOG_ERROR, "redis", "channel table full (%d): dropping %s",
                  REDIS_SINK_MAX_CHANNELS, r->name.data);
      return BL_EFULL;
    }
    tuple_add(r, c, (int)kind, symbol, interval, h);
  }
  switch (kind) {
  case ENVELOPE_KLINE:
    rv = envelope_kline(&r->msg, ev, c->seq + 1);
    break;
  case ENVELOPE_TICKER:
    rv = envelope_ticker(&r->msg, ev, c->seq + 1);
    break;
  case ENVELOPE_TRADE:
    rv = envelope_trade(&r->msg, ev, c->seq + 1);
    break;
  default:
    rv = envelope_depth(&r->msg, ev, c->seq + 1);
    break;
  }
  if (!rv)
    rv = chan_keep(c, r->msg.data, r->msg.len);
  if (rv) {
    r->dropped++;
    return rv;
  }
  c->seq++;
  if (!redis_sink_is_up(r)) {
    r->dropped++;
    return BL_ESTATE;
  }
  if (r->inflight + 2 > r->max_inflight) {
    r->dropped++;
    log_limited(BL_LOG_WARN, "redis", "%u commands in flight: dropping",
                r->inflight);
    return BL_EFULL;
  }
  /* The key's TTL is set again when it is first written on this
   * connection and then every REDIS_TTL_RENEW_MS (see the top). */
  now = uv_now(r->loop);
  with_ex = !r->keepttl || c->ttl_conn != r->conn_id ||
            now - c->ttl_ms >= REDIS_TTL_RENEW_MS;
  /* r->msg was copied into c->msg: reuse it for the commands. */
  rv = send_set_publish(r, &r->msg, c, with_ex);
  if (rv == BL_ETOOBIG || rv == BL_ENOMEM) {
    with_ex = 1;
    rv = send_set(r, c->key, c->msg, c->msg_len, 1);
    if (!rv)
      rv = send_publish(r, c->channel, c->msg, c->msg_len);
  }
  if (rv) {
    r->dropped++;
    return rv;
  }
  if (with_ex) {
    c->ttl_conn = r->conn_id;
    c->ttl_ms = now;
    r->ttl_writes++;
  }
  r->published++;
  /* One read from the exchange can carry thousands of events: hand the
   * commands to Redis every 128 events instead of at the loop's next
   * poll, so it works in parallel and the in-flight count (which pauses
   * reading at 75 % of the cap) stays low. */
  if ((r->published & 127) == 0)
    redis_uv_pump(r->ac);
  return 0;
}

int redis_sink_publish_kline(struct redis_sink *r, const struct ev_kline *k) {
  return publish(r, ENVELOPE_KLINE, k->symbol, k->interval, k);
}

int redis_sink_publish_ticker(struct redis_sink *r, const struct ev_ticker *t) {
  return publish(r, ENVELOPE_TICKER, t->symbol, NULL, t);
}

int redis_sink_publish_trade(struct redis_sink *r, const struct ev_trade *t) {
  return publish(r, ENVELOPE_TRADE, t->symbol, NULL, t);
}

int redis_sink_publish_depth(struct redis_sink *r, const struct sink_depth *d) {
  return publish(r, ENVELOPE_DEPTH, d->symbol, NULL, d);
}

int redis_sink_set_active_symbols(struct redis_sink *r,
                                  const char *const *symbols, size_t n) {
  char *copy;
  int rv = envelope_symbols(&r->msg, symbols, n);
  if (rv)
    return rv;
  copy = malloc(r->msg.len + 1);
  if (!copy)
    return BL_ENOMEM;
  memcpy(copy, r->msg.data, r->msg.len + 1);
  free(r->symbols_json);
  r->symbols_json = copy;
  r->symbols_len = r->msg.len;
  write_symbols(r);
  return 0;
}

static void redis_timer_closed_cb(uv_handle_t *handle) {
  struct redis_sink *r = handle->data;
  size_t i;
  redis_sink_close_cb cb = r->close_cb;
  for (i = 0; i < N_BUCKETS; i++) {
    struct redis_chan *c = r->buckets[i], *next;
    for (; c; c = next) {
      next = c->next;
      free(c->msg);
      free(c);
    }
  }
  free(r->buckets);
  r->buckets = NULL;
  free(r->tbuckets);
  r->tbuckets = NULL;
  free(r->host);
  free(r->prefix);
  free(r->password);
  free(r->symbols_json);
  r->host = r->prefix = r->password = r->symbols_json = NULL;
  buf_free(&r->msg);
  buf_free(&r->name);
  r->state = REDIS_SINK_CLOSED;
  if (cb)
    cb(r);
}

static void redis_maybe_finish(struct redis_sink *r) {
  if (!r->closing || r->ac || r->resolving || r->timer_closed)
    return;
  r->timer_closed = 1;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, redis_timer_closed_cb);
}

static void redis_deadline_cb(uv_timer_t *timer) {
  struct redis_sink *r = timer->data;
  redisAsyncContext *ac = r->ac;
  if (ac) {
    log_warn("redis",
             "flush at close took longer than %llu ms: dropping "
             "%u commands",
             (unsigned long long)r->close_timeout, r->inflight);
    r->ac = NULL;
    redisAsyncFree(ac);
  }
  redis_maybe_finish(r);
}

void redis_sink_close(struct redis_sink *r, redis_sink_close_cb cb) {
  redisAsyncContext *ac = r->ac;
  if (r->closing)
    return;
  r->closing = 1;
  r->close_cb = cb;
  uv_timer_stop(&r->timer);
  if (r->resolving)
    uv_cancel((uv_req_t *)&r->gai); /* its callback still runs */
  if (ac && r->state == REDIS_SINK_UP) {
    /* Arm the deadline first: the disconnect may complete right here. */
    uv_timer_start(&r->timer, redis_deadline_cb, r->close_timeout, 0);
    redisAsyncDisconnect(ac);
  } else if (ac) {
    r->ac = NULL; /* still connecting: nothing worth flushing */
    redisAsyncFree(ac);
  }
  redis_maybe_finish(r);
}
