/*
 * test_redis_chan.c: the Redis sink's channel table and its prebuilt RESP,
 * without a server (sink/redis.c is included to reach its statics; the
 * sink stays DOWN, so every publish is a counted drop that still advances
 * the channel's seq and keeps its latest message).
 *
 * Proves: an event finds its channel by (kind, symbol, interval) and the
 * seq rises per channel (trade and ticker of one symbol, klines of two
 * intervals are apart); two tuples that make the same channel name share
 * one channel and one seq, as when channels were found by name only; the
 * SET+PUBLISH bytes built from the prebuilt heads equal hiredis' own
 * formatting of the same commands, for several TTLs and message sizes, in
 * both forms (SET ... EX ttl and SET ... KEEPTTL); INFO texts give
 * KEEPTTL from Redis 6.0 on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/sink/redis.c"

static struct redis_chan *find_chan(struct redis_sink *r, const char *name) {
  struct redis_chan *c;
  for (c = r->buckets[hash_str(name) % N_BUCKETS]; c; c = c->next)
    if (strcmp(c->channel, name) == 0)
      return c;
  return NULL;
}

static void sink_closed(struct redis_sink *r) {
  (void)r;
}

static void sink_start(uv_loop_t *loop, struct redis_sink *r, int ttl) {
  struct redis_sink_opts o;
  memset(&o, 0, sizeof o);
  o.key_prefix = "p";
  o.live_data_ttl = ttl;
  assert_int_equal(uv_loop_init(loop), 0);
  assert_int_equal(redis_sink_init(loop, r, &o), 0);
}

static void sink_end(uv_loop_t *loop, struct redis_sink *r) {
  redis_sink_close(r, sink_closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void seq_per_channel(void **state) {
  uv_loop_t loop;
  struct redis_sink r;
  struct ev_trade t;
  struct ev_ticker tk;
  struct ev_kline k;
  struct redis_chan *c;
  (void)state;

  sink_start(&loop, &r, 0);
  memset(&t, 0, sizeof t);
  memset(&tk, 0, sizeof tk);
  memset(&k, 0, sizeof k);
  snprintf(t.symbol, sizeof t.symbol, "BTCUSDT");
  snprintf(tk.symbol, sizeof tk.symbol, "BTCUSDT");
  snprintf(k.symbol, sizeof k.symbol, "BTCUSDT");
  for (int i = 0; i < 3; i++)
    assert_int_equal(redis_sink_publish_trade(&r, &t), BL_ESTATE);
  assert_int_equal(redis_sink_publish_ticker(&r, &tk), BL_ESTATE);
  snprintf(k.interval, sizeof k.interval, "1m");
  assert_int_equal(redis_sink_publish_kline(&r, &k), BL_ESTATE);
  assert_int_equal(redis_sink_publish_kline(&r, &k), BL_ESTATE);
  snprintf(k.interval, sizeof k.interval, "5m");
  assert_int_equal(redis_sink_publish_kline(&r, &k), BL_ESTATE);
  snprintf(t.symbol, sizeof t.symbol, "ETHUSDT");
  assert_int_equal(redis_sink_publish_trade(&r, &t), BL_ESTATE);

  assert_int_equal(r.n_chans, 5);
  assert_int_equal(r.dropped, 8);
  c = find_chan(&r, "p:trade:BTCUSDT");
  assert_non_null(c);
  assert_int_equal(c->seq, 3);
  assert_string_equal(c->key, "p:latest:trade:BTCUSDT");
  assert_non_null(strstr(c->msg, "\"seq\":3,"));
  assert_int_equal(find_chan(&r, "p:ticker:BTCUSDT")->seq, 1);
  assert_int_equal(find_chan(&r, "p:kline:BTCUSDT:1m")->seq, 2);
  assert_int_equal(find_chan(&r, "p:kline:BTCUSDT:5m")->seq, 1);
  assert_int_equal(find_chan(&r, "p:trade:ETHUSDT")->seq, 1);
  /* an empty symbol names no channel */
  snprintf(t.symbol, sizeof t.symbol, "%s", "");
  assert_int_equal(redis_sink_publish_trade(&r, &t), BL_EINVAL);
  assert_int_equal(r.n_chans, 5);
  sink_end(&loop, &r);
}

static void same_name_same_channel(void **state) {
  uv_loop_t loop;
  struct redis_sink r;
  struct ev_kline a, b;
  struct redis_chan *c;
  (void)state;

  /* "A" + "1:x" and "A:1" + "x" both name p:kline:A:1:x */
  sink_start(&loop, &r, 0);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  snprintf(a.symbol, sizeof a.symbol, "A");
  snprintf(a.interval, sizeof a.interval, "1:x");
  snprintf(b.symbol, sizeof b.symbol, "A:1");
  snprintf(b.interval, sizeof b.interval, "x");
  for (int i = 0; i < 2; i++) {
    assert_int_equal(redis_sink_publish_kline(&r, &a), BL_ESTATE);
    assert_int_equal(redis_sink_publish_kline(&r, &b), BL_ESTATE);
  }
  assert_int_equal(r.n_chans, 1);
  c = find_chan(&r, "p:kline:A:1:x");
  assert_non_null(c);
  assert_int_equal(c->seq, 4);
  assert_non_null(strstr(c->msg, "\"seq\":4,"));
  assert_non_null(strstr(c->msg, "\"symbol\":\"A:1\""));
  sink_end(&loop, &r);
}

static void resp_matches_hiredis(void **state) {
  static const int ttls[] = {1, 9, 10, 60, 86400, 2147483647};
  static const size_t sizes[] = {0, 1, 9, 10, 99, 100, 1000, 100000};
  (void)state;

  for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
    uv_loop_t loop;
    struct redis_sink r;
    struct ev_trade t;
    struct redis_chan *c;
    struct buf b;
    char ttl[24];
    sink_start(&loop, &r, ttls[i]);
    memset(&t, 0, sizeof t);
    snprintf(t.symbol, sizeof t.symbol, "SYM%zuUSDT", i);
    assert_int_equal(redis_sink_publish_trade(&r, &t), BL_ESTATE);
    assert_int_equal(r.n_chans, 1);
    c = NULL;
    for (size_t k = 0; k < N_BUCKETS && !c; k++)
      c = r.buckets[k];
    assert_non_null(c);
    snprintf(ttl, sizeof ttl, "%d", ttls[i]);
    buf_init(&b, 1 << 20);
    for (size_t s = 0; s < 2 * sizeof sizes / sizeof sizes[0]; s++) {
      size_t size = sizes[s / 2];
      int with_ex = (int)(s % 2);
      char *msg = malloc(size + 1), *want = NULL;
      const char *set_argv[5] = {"SET", c->key, msg, with_ex ? "EX" : "KEEPTTL",
                                 ttl};
      size_t set_lens[5] = {3, strlen(c->key), size, with_ex ? 2 : 7,
                            strlen(ttl)};
      const char *pub_argv[3] = {"PUBLISH", c->channel, msg};
      size_t pub_lens[3] = {7, strlen(c->channel), size};
      char *set_cmd, *pub_cmd;
      int sl, pl;
      size_t set_len = 0;
      assert_non_null(msg);
      memset(msg, 'a' + (int)s, size);
      msg[size] = '\0';
      assert_int_equal(chan_keep(c, msg, size), 0);
      sl =
          redisFormatCommandArgv(&set_cmd, with_ex ? 5 : 4, set_argv, set_lens);
      pl = redisFormatCommandArgv(&pub_cmd, 3, pub_argv, pub_lens);
      assert_true(sl > 0 && pl > 0);
      want = malloc((size_t)sl + (size_t)pl);
      assert_non_null(want);
      memcpy(want, set_cmd, (size_t)sl);
      memcpy(want + sl, pub_cmd, (size_t)pl);
      assert_int_equal(build_set_publish(&r, &b, c, with_ex, &set_len), 0);
      assert_int_equal(set_len, (size_t)sl);
      assert_int_equal(b.len, (size_t)sl + (size_t)pl);
      assert_memory_equal(b.data, want, b.len);
      redisFreeCommand(set_cmd);
      redisFreeCommand(pub_cmd);
      free(want);
      free(msg);
    }
    buf_free(&b);
    sink_end(&loop, &r);
  }
}

static void keepttl_by_version(void **state) {
  (void)state;
  assert_true(
      redis_version_has_keepttl("# Server\r\nredis_version:7.0.15\r\n"));
  assert_true(redis_version_has_keepttl("redis_version:6.0.0\r\n"));
  assert_true(redis_version_has_keepttl("redis_version:6.2.14\r\n"));
  assert_true(redis_version_has_keepttl("redis_version:10.1.0\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:5.0.14\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:2.8.24\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:0.9\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:7\r\n"));
  assert_false(redis_version_has_keepttl("redis_version:12345.0\r\n"));
  assert_false(redis_version_has_keepttl("# Server\r\nno version here\r\n"));
  assert_false(redis_version_has_keepttl(""));
  assert_false(redis_version_has_keepttl(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(seq_per_channel),
      cmocka_unit_test(same_name_same_channel),
      cmocka_unit_test(resp_matches_hiredis),
      cmocka_unit_test(keepttl_by_version),
  };
  return cmocka_run_group_tests_name("redis_chan", tests, NULL, NULL);
}
