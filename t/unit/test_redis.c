/*
 * test_redis.c: sink/redis and sink/redis_uv against real redis-server
 * processes that the test starts on 127.0.0.1 (free ports, no
 * persistence). A subscriber on the same loop (PSUBSCRIBE through our own
 * adapter) sees what the sink publishes; a synchronous hiredis client
 * (test code only, between loop runs) checks keys and TTLs.
 *
 * Proves: exact channels and envelopes with seq rising by one; latest
 * keys with 0 < TTL <= live_data_ttl; P:symbols:active without expiry;
 * a refused connection retries without hanging and connects once the
 * server appears (rewriting the latest keys from memory); a server killed
 * mid-stream gives counted drops, a visible seq gap and rewritten keys
 * after reconnect; AUTH works and a wrong password is reported; a server
 * that never answers trips the command watchdog; the in-flight cap
 * drops and counts; close flushes everything queued; under a steady
 * stream a latest key's TTL is set again every 250 ms or so (SET ... EX)
 * and kept in between (SET ... KEEPTTL), so it neither lapses nor loses
 * its expiry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/envelope.h"
#include "sink/redis.h"
#include "sink/redis_uv.h"

extern char **environ;

/* ---- redis-server processes ---- */

static int free_port(void) {
  uv_loop_t loop;
  uv_tcp_t tcp;
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int namelen = sizeof name, port;
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &tcp);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  assert_int_equal(uv_tcp_bind(&tcp, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *)&name, &namelen),
                   0);
  port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  uv_close((uv_handle_t *)&tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return port;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Test-only synchronous client. */
static redisContext *sync_connect(int port, const char *password) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisReply *rep;
  if (!c || c->err) {
    if (c)
      redisFree(c);
    return NULL;
  }
  if (password) {
    rep = redisCommand(c, "AUTH %s", password);
    if (rep)
      freeReplyObject(rep);
  }
  return c;
}

/* Servers still running; a failed test's teardown kills them. */
static pid_t live_pids[8];

static void pid_track(pid_t pid, int add) {
  size_t i;
  for (i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
    if (live_pids[i] == (add ? 0 : pid)) {
      live_pids[i] = add ? pid : 0;
      return;
    }
}

static int kill_leftovers(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
    if (live_pids[i] > 0) {
      kill(live_pids[i], SIGKILL);
      waitpid(live_pids[i], NULL, 0);
      live_pids[i] = 0;
    }
  return 0;
}

static pid_t redis_start(int port, const char *password) {
  char portstr[16];
  const char *argv[16];
  int n = 0, i;
  pid_t pid;
  snprintf(portstr, sizeof portstr, "%d", port);
  argv[n++] = "redis-server";
  argv[n++] = "--port";
  argv[n++] = portstr;
  argv[n++] = "--bind";
  argv[n++] = "127.0.0.1";
  argv[n++] = "--save";
  argv[n++] = "";
  argv[n++] = "--appendonly";
  argv[n++] = "no";
  argv[n++] = "--daemonize";
  argv[n++] = "no";
  argv[n++] = "--logfile";
  argv[n++] = "/dev/null";
  if (password) {
    argv[n++] = "--requirepass";
    argv[n++] = password;
  }
  argv[n] = NULL;
  {
    /* stdout and stderr away from the test's pipes */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    assert_int_equal(posix_spawnp(&pid, "redis-server", &fa, NULL,
                                  (char *const *)argv, environ),
                     0);
    posix_spawn_file_actions_destroy(&fa);
  }
  pid_track(pid, 1);
  for (i = 0; i < 250; i++) { /* up to 5 s */
    redisContext *c = sync_connect(port, password);
    if (c) {
      redisReply *rep = redisCommand(c, "PING");
      int ok = rep && rep->type == REDIS_REPLY_STATUS;
      if (rep)
        freeReplyObject(rep);
      redisFree(c);
      if (ok)
        return pid;
    }
    nap_ms(20);
  }
  fail_msg("redis-server on port %d did not start", port);
  return -1;
}

static void redis_kill(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  pid_track(pid, 0);
}

static redisReply *sync_cmd(int port, const char *password, const char *fmt,
                            const char *arg) {
  redisContext *c = sync_connect(port, password);
  redisReply *rep;
  assert_non_null(c);
  rep = redisCommand(c, fmt, arg);
  redisFree(c);
  assert_non_null(rep);
  return rep;
}

/* An integer reply: TTL or PTTL of |key|. */
static long long sync_int(int port, const char *fmt, const char *key) {
  redisReply *rep = sync_cmd(port, NULL, fmt, key);
  long long v;
  assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
  v = rep->integer;
  freeReplyObject(rep);
  return v;
}

static long long sync_ttl(int port, const char *key) {
  return sync_int(port, "TTL %s", key);
}

static long long sync_pttl(int port, const char *key) {
  return sync_int(port, "PTTL %s", key);
}

/* GET into |out| ("" when absent). */
static void sync_get(int port, const char *password, const char *key, char *out,
                     size_t len) {
  redisReply *rep = sync_cmd(port, password, "GET %s", key);
  out[0] = '\0';
  if (rep->type == REDIS_REPLY_STRING)
    snprintf(out, len, "%s", rep->str);
  freeReplyObject(rep);
}

/* ---- the loop side ---- */

#define MAX_MSGS 64

struct sub {
  redisAsyncContext *ac;
  int subscribed;
  int n;
  char chan[MAX_MSGS][128];
  char msg[MAX_MSGS][2048];
};

struct fx {
  uv_loop_t loop;
  struct redis_sink sink;
  uv_timer_t poll;
  int (*pred)(struct fx *);
  uint64_t deadline;
  int met;
  int sink_closed;
  struct sub sub;
};

static void sub_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct sub *s = priv;
  redisReply *r = reply;
  (void)ac;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
    return;
  if (strcmp(r->element[0]->str, "psubscribe") == 0) {
    s->subscribed = 1;
    return;
  }
  if (strcmp(r->element[0]->str, "pmessage") == 0 && r->elements == 4 &&
      s->n < MAX_MSGS) {
    snprintf(s->chan[s->n], sizeof s->chan[0], "%s", r->element[2]->str);
    snprintf(s->msg[s->n], sizeof s->msg[0], "%s", r->element[3]->str);
    s->n++;
  }
}

static void sub_start(struct fx *f, int port, const char *pattern) {
  struct sub *s = &f->sub;
  memset(s, 0, sizeof *s);
  s->ac = redisAsyncConnect("127.0.0.1", port);
  assert_non_null(s->ac);
  assert_int_equal(s->ac->err, 0);
  assert_int_equal(redis_uv_attach(s->ac, &f->loop, 2000, 0), 0);
  assert_int_equal(redis_uv_attach(s->ac, &f->loop, 2000, 0), BL_EINVAL);
  redisAsyncCommand(s->ac, sub_cb, s, "PSUBSCRIBE %s", pattern);
}

static void sub_stop(struct sub *s) {
  if (s->ac)
    redisAsyncFree(s->ac);
  s->ac = NULL;
}

static void fx_poll_cb(uv_timer_t *t) {
  struct fx *f = t->data;
  if (f->pred(f) || uv_now(&f->loop) >= f->deadline) {
    f->met = f->pred(f);
    uv_timer_stop(t);
    uv_stop(&f->loop);
  }
}

/* Runs the loop until |pred| holds or |ms| passed; returns pred. */
static int run_until(struct fx *f, int (*pred)(struct fx *), uint64_t ms) {
  uv_update_time(&f->loop);
  f->pred = pred;
  f->deadline = uv_now(&f->loop) + ms;
  f->met = 0;
  uv_timer_start(&f->poll, fx_poll_cb, 5, 5);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return f->met;
}

static int never(struct fx *f) {
  (void)f;
  return 0;
}
static int is_up(struct fx *f) {
  return redis_sink_is_up(&f->sink) && (!f->sub.ac || f->sub.subscribed);
}
static int is_down(struct fx *f) {
  return !redis_sink_is_up(&f->sink);
}
static int closed(struct fx *f) {
  return f->sink_closed;
}

static void sink_closed_cb(struct redis_sink *r) {
  struct fx *f = r->data;
  f->sink_closed = 1;
}

static void fx_init(struct fx *f, int port, const char *password,
                    struct redis_sink_opts *o) {
  struct redis_sink_opts def = {0};
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->poll);
  f->poll.data = f;
  if (!o)
    o = &def;
  o->host = "127.0.0.1";
  o->port = port;
  o->password = password;
  o->key_prefix = "t";
  if (!o->live_data_ttl)
    o->live_data_ttl = 30;
  if (!o->backoff_min_ms)
    o->backoff_min_ms = 20;
  if (!o->backoff_max_ms)
    o->backoff_max_ms = 100;
  assert_int_equal(redis_sink_init(&f->loop, &f->sink, o), 0);
  f->sink.data = f;
}

static void fx_close(struct fx *f) {
  sub_stop(&f->sub);
  if (!f->sink_closed) {
    redis_sink_close(&f->sink, sink_closed_cb);
    assert_true(run_until(f, closed, 12000));
  }
  uv_close((uv_handle_t *)&f->poll, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void make_trade(struct ev_trade *t, const char *sym, int64_t id) {
  memset(t, 0, sizeof *t);
  snprintf(t->symbol, sizeof t->symbol, "%s", sym);
  t->event_time = 1634043000000 + id;
  t->agg_trade_id = id;
  snprintf(t->price, sizeof t->price, "%lld.5", (long long)(50000 + id));
  snprintf(t->quantity, sizeof t->quantity, "0.%03lld", (long long)id);
  t->first_trade_id = id * 10;
  t->last_trade_id = id * 10 + 1;
  t->trade_time = 1634043000000 + id - 1;
  t->is_buyer_maker = (int)(id & 1);
}

static void trade_json(const struct ev_trade *t, uint64_t seq, char *out,
                       size_t len) {
  struct buf b;
  buf_init(&b, 4096);
  assert_int_equal(envelope_trade(&b, t, seq), 0);
  snprintf(out, len, "%s", b.data);
  buf_free(&b);
}

/* ---- tests ---- */

static int got_10(struct fx *f) {
  return f->sub.n >= 10;
}

static void publish_subscribe_and_keys(void **state) {
  struct fx f;
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  struct ev_trade tr;
  struct ev_kline k;
  struct ev_ticker tk;
  static const struct ev_level bids[] = {{"100.5", "1"}};
  struct sink_depth d = {.symbol = "BTCUSDT",
                         .event_time = 5,
                         .last_update_id = 77,
                         .synced = 1,
                         .bids = bids,
                         .n_bids = 1,
                         .asks = bids,
                         .n_asks = 1};
  const char *syms[] = {"BTCUSDT", "ETHUSDT"};
  char want[2048], got[4096];
  long long ttl;
  int i;
  (void)state;

  fx_init(&f, port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_int_equal(redis_sink_start(&f.sink), BL_ESTATE);
  sub_start(&f, port, "t:*");
  assert_true(run_until(&f, is_up, 5000));
  assert_int_equal(redis_sink_set_active_symbols(&f.sink, syms, 2), 0);

  for (i = 1; i <= 5; i++) {
    make_trade(&tr, "BTCUSDT", i);
    assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), 0);
  }
  memset(&k, 0, sizeof k);
  snprintf(k.symbol, sizeof k.symbol, "BTCUSDT");
  snprintf(k.interval, sizeof k.interval, "1m");
  for (i = 0; i < 3; i++) {
    k.event_time = 1000 + i;
    assert_int_equal(redis_sink_publish_kline(&f.sink, &k), 0);
  }
  memset(&tk, 0, sizeof tk);
  snprintf(tk.symbol, sizeof tk.symbol, "ETHUSDT");
  assert_int_equal(redis_sink_publish_ticker(&f.sink, &tk), 0);
  assert_int_equal(redis_sink_publish_depth(&f.sink, &d), 0);
  assert_true(run_until(&f, got_10, 5000));
  assert_int_equal(f.sub.n, 10);

  for (i = 0; i < 5; i++) {
    make_trade(&tr, "BTCUSDT", i + 1);
    trade_json(&tr, (uint64_t)i + 1, want, sizeof want);
    assert_string_equal(f.sub.chan[i], "t:trade:BTCUSDT");
    assert_string_equal(f.sub.msg[i], want);
  }
  for (i = 5; i < 8; i++) {
    char seq[32];
    assert_string_equal(f.sub.chan[i], "t:kline:BTCUSDT:1m");
    snprintf(seq, sizeof seq, "\"seq\":%d,", i - 4);
    assert_non_null(strstr(f.sub.msg[i], seq));
  }
  assert_string_equal(f.sub.chan[8], "t:ticker:ETHUSDT");
  assert_non_null(strstr(f.sub.msg[8], "\"seq\":1,"));
  assert_string_equal(f.sub.chan[9], "t:depth:BTCUSDT");
  assert_non_null(strstr(f.sub.msg[9], "\"book_state\":\"synced\""));
  assert_int_equal(f.sink.published, 10);
  assert_int_equal(f.sink.dropped, 0);
  assert_int_equal(f.sink.errors, 0);

  /* latest keys: the last message, with a TTL */
  sync_get(port, NULL, "t:latest:trade:BTCUSDT", got, sizeof got);
  assert_string_equal(got, f.sub.msg[4]);
  sync_get(port, NULL, "t:latest:kline:BTCUSDT:1m", got, sizeof got);
  assert_string_equal(got, f.sub.msg[7]);
  ttl = sync_ttl(port, "t:latest:depth:BTCUSDT");
  assert_true(ttl > 0 && ttl <= 30);
  ttl = sync_ttl(port, "t:latest:ticker:ETHUSDT");
  assert_true(ttl > 0 && ttl <= 30);
  /* active symbols: no expiry */
  sync_get(port, NULL, "t:symbols:active", got, sizeof got);
  assert_string_equal(got, "[\"BTCUSDT\",\"ETHUSDT\"]");
  assert_int_equal(sync_ttl(port, "t:symbols:active"), -1);

  fx_close(&f);
  redis_kill(pid);
}

static int64_t steady_id;
static uint64_t steady_until;
static int keepttl_known(struct fx *f) {
  return f->sink.keepttl;
}
/* Publishes one trade per poll (every 5 ms) until steady_until. */
static int publish_steadily(struct fx *f) {
  struct ev_trade tr;
  make_trade(&tr, "BTCUSDT", ++steady_id);
  assert_int_equal(redis_sink_publish_trade(&f->sink, &tr), 0);
  return uv_now(&f->loop) >= steady_until;
}
static int nothing_in_flight(struct fx *f) {
  return f->sink.inflight == 0;
}

static void ttl_renewed_under_steady_stream(void **state) {
  struct fx f;
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  struct redis_sink_opts o = {0};
  long long pttl;
  (void)state;

  o.live_data_ttl = 2;
  fx_init(&f, port, NULL, &o);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_true(run_until(&f, is_up, 5000));
  assert_true(run_until(&f, keepttl_known, 2000)); /* Redis >= 6 here */
  /* 2.6 s of writes, longer than the TTL: a key whose TTL were set only
   * once would lapse and come back without one (KEEPTTL on a new key). */
  steady_until = uv_now(&f.loop) + 2600;
  assert_true(run_until(&f, publish_steadily, 5000));
  assert_true(run_until(&f, nothing_in_flight, 2000));
  pttl = sync_pttl(port, "t:latest:trade:BTCUSDT");
  assert_true(pttl > 2000 - 250 - 200 && pttl <= 2000);
  assert_int_equal(f.sink.dropped, 0);
  assert_int_equal(f.sink.errors, 0);
  /* Renewed about every 250 ms, kept in between. */
  assert_true(f.sink.ttl_writes >= 8);
  assert_true(f.sink.ttl_writes * 4 <= f.sink.published);

  fx_close(&f);
  redis_kill(pid);
}

static pid_t late_pid;
static int late_port;
static void start_late(uv_timer_t *t) {
  (void)t;
  late_pid = redis_start(late_port, NULL); /* blocks the test loop briefly */
}

static void refused_then_server_appears(void **state) {
  struct fx f;
  struct ev_trade tr;
  uv_timer_t later;
  char want[2048], got[4096];
  (void)state;
  late_port = free_port();
  fx_init(&f, late_port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  /* Nothing listens: no hang, refused connects are retried. */
  assert_false(run_until(&f, is_up, 400));
  assert_true(f.sink.errors >= 2);
  assert_non_null(strstr(f.sink.errstr, "refused"));
  make_trade(&tr, "ETHUSDT", 1);
  assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), BL_ESTATE);
  make_trade(&tr, "ETHUSDT", 2);
  assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), BL_ESTATE);
  assert_int_equal(f.sink.dropped, 2);
  assert_int_equal(f.sink.published, 0);

  uv_timer_init(&f.loop, &later);
  uv_timer_start(&later, start_late, 10, 0);
  assert_true(run_until(&f, is_up, 5000));
  uv_close((uv_handle_t *)&later, NULL);
  assert_int_equal(f.sink.reconnects, 0); /* first time up */
  /* the latest key was written from memory on connect: seq 2 */
  run_until(&f, never, 100);
  trade_json(&tr, 2, want, sizeof want);
  sync_get(late_port, NULL, "t:latest:trade:ETHUSDT", got, sizeof got);
  assert_string_equal(got, want);
  fx_close(&f);
  redis_kill(late_pid);
}

static int got_3(struct fx *f) {
  return f->sub.n >= 3;
}
static int got_1(struct fx *f) {
  return f->sub.n >= 1;
}

static void server_killed_mid_stream(void **state) {
  struct fx f;
  const char *syms[] = {"BTCUSDT"};
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  struct ev_trade tr;
  char want[2048], got[4096];
  int i;
  (void)state;
  fx_init(&f, port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  sub_start(&f, port, "t:trade:*");
  assert_true(run_until(&f, is_up, 5000));
  assert_int_equal(redis_sink_set_active_symbols(&f.sink, syms, 1), 0);
  for (i = 1; i <= 3; i++) {
    make_trade(&tr, "BTCUSDT", i);
    assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), 0);
  }
  assert_true(run_until(&f, got_3, 5000));
  sub_stop(&f.sub);

  redis_kill(pid);
  assert_true(run_until(&f, is_down, 5000));
  assert_true(f.sink.errors >= 1);
  for (i = 4; i <= 6; i++) {
    make_trade(&tr, "BTCUSDT", i);
    assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), BL_ESTATE);
  }
  assert_int_equal(f.sink.dropped, 3);
  assert_int_equal(f.sink.published, 3);

  pid = redis_start(port, NULL); /* a fresh, empty server */
  assert_true(run_until(&f, is_up, 5000));
  assert_int_equal(f.sink.reconnects, 1);
  /* rewritten from memory: the message of seq 6, never delivered */
  run_until(&f, never, 100);
  make_trade(&tr, "BTCUSDT", 6);
  trade_json(&tr, 6, want, sizeof want);
  sync_get(port, NULL, "t:latest:trade:BTCUSDT", got, sizeof got);
  assert_string_equal(got, want);
  assert_true(sync_ttl(port, "t:latest:trade:BTCUSDT") > 0);
  /* and the active symbols, without expiry */
  sync_get(port, NULL, "t:symbols:active", got, sizeof got);
  assert_string_equal(got, "[\"BTCUSDT\"]");
  assert_int_equal(sync_ttl(port, "t:symbols:active"), -1);

  /* a subscriber sees the gap: seq 7 after seq 3 */
  sub_start(&f, port, "t:trade:*");
  assert_true(run_until(&f, is_up, 5000));
  make_trade(&tr, "BTCUSDT", 7);
  assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), 0);
  assert_true(run_until(&f, got_1, 5000));
  assert_non_null(strstr(f.sub.msg[0], "\"seq\":7,"));
  fx_close(&f);
  redis_kill(pid);
}

static void auth_ok_and_wrong(void **state) {
  struct fx f;
  int port = free_port();
  pid_t pid = redis_start(port, "s3cret");
  struct ev_trade tr;
  struct redis_sink_opts o = {.db = 3};
  char got[4096];
  redisReply *rep;
  (void)state;

  fx_init(&f, port, "s3cret", &o);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_true(run_until(&f, is_up, 5000));
  make_trade(&tr, "BTCUSDT", 1);
  assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), 0);
  fx_close(&f);
  /* written into db 3 */
  {
    redisContext *c = sync_connect(port, "s3cret");
    assert_non_null(c);
    rep = redisCommand(c, "SELECT 3");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET t:latest:trade:BTCUSDT");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    freeReplyObject(rep);
    redisFree(c);
  }
  sync_get(port, "s3cret", "t:latest:trade:BTCUSDT", got, sizeof got);
  assert_string_equal(got, ""); /* not in db 0 */

  fx_init(&f, port, "wrong", NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_false(run_until(&f, is_up, 500));
  assert_non_null(strstr(f.sink.errstr, "AUTH failed"));
  assert_true(f.sink.errors >= 1);
  fx_close(&f);

  fx_init(&f, port, NULL, NULL); /* no password at all */
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_false(run_until(&f, is_up, 300));
  assert_non_null(strstr(f.sink.errstr, "SELECT 0 failed"));
  fx_close(&f);
  redis_kill(pid);
}

static void inflight_cap_and_flush_at_close(void **state) {
  struct fx f;
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  struct redis_sink_opts o = {.max_inflight = 10};
  struct ev_trade tr;
  char want[2048], got[4096], sym[16];
  int i, ok = 0, full = 0;
  (void)state;

  fx_init(&f, port, NULL, &o);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_true(run_until(&f, is_up, 5000));
  run_until(&f, never, 50); /* AUTH/SELECT replies are in */
  for (i = 1; i <= 20; i++) {
    int rv;
    make_trade(&tr, "BTCUSDT", i);
    rv = redis_sink_publish_trade(&f.sink, &tr);
    ok += rv == 0;
    full += rv == BL_EFULL;
  }
  assert_int_equal(ok, 5);
  assert_int_equal(full, 15);
  assert_int_equal(f.sink.dropped, 15);
  fx_close(&f);

  /* 3000 pairs queued, then closed at once: all of them arrive. */
  fx_init(&f, port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_true(run_until(&f, is_up, 5000));
  for (i = 1; i <= 3000; i++) {
    snprintf(sym, sizeof sym, "S%03d", i % 100);
    make_trade(&tr, sym, i);
    assert_int_equal(redis_sink_publish_trade(&f.sink, &tr), 0);
  }
  redis_sink_close(&f.sink, sink_closed_cb);
  assert_true(run_until(&f, closed, 12000));
  assert_int_equal(f.sink.published, 3000);
  for (i = 2901; i <= 3000; i++) {
    char key[64];
    snprintf(sym, sizeof sym, "S%03d", i % 100);
    snprintf(key, sizeof key, "t:latest:trade:%s", sym);
    make_trade(&tr, sym, i);
    trade_json(&tr, 30, want, sizeof want);
    sync_get(port, NULL, key, got, sizeof got);
    assert_string_equal(got, want);
  }
  fx_close(&f);
  redis_kill(pid);
}

/* A TCP server that accepts and never answers. */
static void free_handle(uv_handle_t *h) {
  free(h);
}
static void mute_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char sink[4096];
  (void)h;
  (void)n;
  *b = uv_buf_init(sink, sizeof sink);
}
static void mute_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0)
    uv_close((uv_handle_t *)s, free_handle);
}
static void mute_conn(uv_stream_t *server, int status) {
  uv_tcp_t *c = malloc(sizeof *c);
  assert_int_equal(status, 0);
  uv_tcp_init(server->loop, c);
  assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
  uv_read_start((uv_stream_t *)c, mute_alloc, mute_read);
}
static void mute_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h) && h->type == UV_TCP)
    uv_close(h, h->data == h ? NULL : free_handle);
}

static void command_watchdog(void **state) {
  struct fx f;
  uv_tcp_t srv;
  struct sockaddr_in addr;
  int port = free_port();
  struct redis_sink_opts o = {.command_timeout_ms = 200};
  uint64_t t0;
  (void)state;
  fx_init(&f, port, NULL, &o);
  uv_tcp_init(&f.loop, &srv);
  srv.data = &srv;
  uv_ip4_addr("127.0.0.1", port, &addr);
  assert_int_equal(uv_tcp_bind(&srv, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&srv, 8, mute_conn), 0);
  uv_update_time(&f.loop);
  t0 = uv_now(&f.loop);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_false(run_until(&f, is_up, 700));
  assert_non_null(strstr(f.sink.errstr, "command timeout"));
  assert_true(f.sink.errors >= 1);
  assert_true(uv_now(&f.loop) - t0 >= 200);
  redis_sink_close(&f.sink, sink_closed_cb);
  assert_true(run_until(&f, closed, 2000));
  uv_walk(&f.loop, mute_walk_close, NULL);
  fx_close(&f);
}

/* A listener whose accept queue is full drops further SYNs, so a connect
 * never completes: the adapter's connect watchdog must fire. */
static void connect_watchdog(void **state) {
  struct fx f;
  int port = free_port(), i, lfd, fds[8];
  struct sockaddr_in addr;
  struct redis_sink_opts o = {.connect_timeout_ms = 300};
  (void)state;
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  uv_ip4_addr("127.0.0.1", port, &addr);
  assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(lfd, 0), 0);
  for (i = 0; i < 8; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fds[i], (struct sockaddr *)&addr, sizeof addr);
  }
  fx_init(&f, port, NULL, &o);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  assert_false(run_until(&f, is_up, 1000));
  assert_non_null(strstr(f.sink.errstr, "connect timeout"));
  fx_close(&f);
  for (i = 0; i < 8; i++)
    close(fds[i]);
  close(lfd);
}

static void close_while_down_or_resolving(void **state) {
  struct fx f;
  int port = free_port();
  (void)state;
  /* while a refused connect waits for its retry */
  fx_init(&f, port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  run_until(&f, never, 60);
  fx_close(&f);
  /* right after start: resolving */
  fx_init(&f, port, NULL, NULL);
  assert_int_equal(redis_sink_start(&f.sink), 0);
  fx_close(&f);
  /* never started */
  fx_init(&f, port, NULL, NULL);
  fx_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(publish_subscribe_and_keys, kill_leftovers),
      cmocka_unit_test_teardown(ttl_renewed_under_steady_stream,
                                kill_leftovers),
      cmocka_unit_test_teardown(refused_then_server_appears, kill_leftovers),
      cmocka_unit_test_teardown(server_killed_mid_stream, kill_leftovers),
      cmocka_unit_test_teardown(auth_ok_and_wrong, kill_leftovers),
      cmocka_unit_test_teardown(inflight_cap_and_flush_at_close,
                                kill_leftovers),
      cmocka_unit_test_teardown(command_watchdog, kill_leftovers),
      cmocka_unit_test_teardown(connect_watchdog, kill_leftovers),
      cmocka_unit_test_teardown(close_while_down_or_resolving, kill_leftovers),
  };
  signal(SIGPIPE, SIG_IGN);
  log_setup(BL_LOG_ERROR, BL_LOG_TEXT, "test", "test");
  return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
