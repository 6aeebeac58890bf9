/*
 * bench_depth.c: the whole depth path, frame -> binance/parse ->
 * market/depth (book) -> sink/envelope -> Redis SET + PUBLISH, for 200
 * symbols, against a real redis-server (REDIS_HOST/REDIS_PORT; run it
 * through t/bench/bench_depth.sh, which starts one).
 *
 * Workload: 200 BTCUSDT-like books (tick 0.01, 8-decimal strings) synced
 * from 1000-level snapshots (through depth_snapshot_arrived, no REST), then
 * combined-stream depthUpdate frames of 10 levels (5 bids, 5 asks within
 * 30 ticks of the top: changes, removals, re-insertions), all generated
 * before timing. Phase 1 sends them at the production rate, 200 symbols x
 * one event per 100 ms = 2,000 updates/s, for 5 s, from a 100 ms timer, and
 * measures the CPU the process used (getrusage: parse + book + envelope +
 * hiredis + socket writes). Phase 2 sends the rest as fast as the loop
 * goes (letting Redis replies drain whenever more than 2,000 publishes
 * are in flight) and gives the sustained maximum. Phase 3 repeats it with
 * the Redis sink detached, to split the cost between our path and Redis. Prints
 * key=value lines; exits 1 if a publish was lost or a book left SYNCED. State:
 * the modules and the frames, static (one run).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "binance/parse.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "market/depth.h"
#include "sink/redis.h"

#define NSYM 200
#define ROUNDS_RATE 50     /* 5 s at 100 ms */
#define ROUNDS_FAST 250    /* then as fast as possible */
#define ROUNDS_NOREDIS 250 /* and without Redis: parse + book + top only */
#define ROUNDS (ROUNDS_RATE + ROUNDS_FAST + ROUNDS_NOREDIS)
#define LEVELS 1000
#define MID 3000000 /* ticks of 0.01: 30000.00 */

static uv_loop_t loop;
static struct redis_sink redis;
static struct depth depth;
static struct parse parser;
static char names[NSYM][24]; /* stream names: lower case */
static char upper[NSYM][24]; /* symbols */
static char *frames[ROUNDS][NSYM];
static size_t frame_len[ROUNDS][NSYM];
static uv_timer_t timer;
static int round_no;
static uint64_t errors;
static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void price(struct buf *b, int64_t ticks) {
  buf_printf(b, "\"%" PRId64 ".%02" PRId64 "000000\"", ticks / 100,
             ticks % 100);
}

static void level(struct buf *b, int64_t ticks, int64_t qty_milli) {
  buf_append_char(b, '[');
  price(b, ticks);
  buf_printf(b, ",\"%" PRId64 ".%03" PRId64 "00000\"]", qty_milli / 1000,
             qty_milli % 1000);
}

static void make_frames(void) {
  struct buf b;
  buf_init(&b, 1 << 16);
  for (int r = 0; r < ROUNDS; r++)
    for (int s = 0; s < NSYM; s++) {
      int64_t u = 1000 + (int64_t)r * 3 + 2;
      buf_reset(&b);
      buf_printf(&b,
                 "{\"stream\":\"%s@depth@100ms\",\"data\":{\"e\":"
                 "\"depthUpdate\",\"E\":%" PRId64 ",\"s\":\"%s\",\"U\":%" PRId64
                 ",\"u\":%" PRId64 ",\"b\":[",
                 names[s], 1700000000000 + (int64_t)r * 100, upper[s], u - 2,
                 u);
      for (int i = 0; i < 5; i++) {
        int64_t q = rng() % 4 == 0 ? 0 : (int64_t)(rng() % 50000) + 1;
        if (i)
          buf_append_char(&b, ',');
        level(&b, MID - 1 - (int64_t)(rng() % 30), q);
      }
      buf_append_str(&b, "],\"a\":[");
      for (int i = 0; i < 5; i++) {
        int64_t q = rng() % 4 == 0 ? 0 : (int64_t)(rng() % 50000) + 1;
        if (i)
          buf_append_char(&b, ',');
        level(&b, MID + 1 + (int64_t)(rng() % 30), q);
      }
      buf_append_str(&b, "]}}");
      frames[r][s] = malloc(b.len);
      memcpy(frames[r][s], b.data, b.len);
      frame_len[r][s] = b.len;
    }
  buf_free(&b);
}

static void sync_books(void) {
  struct buf b;
  buf_init(&b, 1 << 20);
  for (int s = 0; s < NSYM; s++) {
    struct ev ev;
    /* one event first, so that the book asks for its snapshot */
    if (parse_frame(&parser, frames[0][s], frame_len[0][s], &ev) == 0)
      depth_on_event(&depth, &ev.u.depth);
    buf_reset(&b);
    buf_append_str(&b, "{\"lastUpdateId\":1000,\"bids\":[");
    for (int i = 0; i < LEVELS; i++) {
      if (i)
        buf_append_char(&b, ',');
      level(&b, MID - 1 - i, 1000 + i);
    }
    buf_append_str(&b, "],\"asks\":[");
    for (int i = 0; i < LEVELS; i++) {
      if (i)
        buf_append_char(&b, ',');
      level(&b, MID + 1 + i, 1000 + i);
    }
    buf_append_str(&b, "]}");
    if (depth_snapshot_arrived(&depth, upper[s], 0, b.data, b.len) < 0)
      errors++;
  }
  buf_free(&b);
}

static void send_round(int r) {
  for (int s = 0; s < NSYM; s++) {
    struct ev ev;
    if (parse_frame(&parser, frames[r][s], frame_len[r][s], &ev) != 0 ||
        ev.type != EV_DEPTH) {
      errors++;
      continue;
    }
    depth_on_event(&depth, &ev.u.depth);
  }
}

static void timer_cb(uv_timer_t *t) {
  send_round(++round_no);
  if (round_no >= ROUNDS_RATE)
    uv_timer_stop(t);
}

static void wait_up(void) {
  double t0 = now_s();
  while (!redis_sink_is_up(&redis) && now_s() - t0 < 10)
    uv_run(&loop, UV_RUN_ONCE);
}

static void drain(unsigned below) {
  while (redis.inflight > below)
    uv_run(&loop, UV_RUN_ONCE);
}

int main(void) {
  struct redis_sink_opts ro;
  struct depth_opts dop = {20, 1000, 3600};
  struct depth_symbol syms[NSYM];
  const char *port = getenv("REDIS_PORT");
  double t0, c0, t1, c1, rate_wall, rate_cpu, fast_wall, fast_cpu;
  double nored_wall, nored_cpu;
  uint64_t pub0, n_rate, n_fast;
  int synced = 0, total = 0;

  log_setup(BL_LOG_WARN, BL_LOG_TEXT, "bench_depth", "bench");
  uv_loop_init(&loop);
  memset(&ro, 0, sizeof ro);
  ro.host = getenv("REDIS_HOST") ? getenv("REDIS_HOST") : "127.0.0.1";
  ro.port = port ? (int)strtol(port, NULL, 10) : 6379;
  if (redis_sink_init(&loop, &redis, &ro) || redis_sink_start(&redis) ||
      parse_init(&parser, NULL) ||
      depth_init(&loop, &depth, &dop, NULL, &redis, NULL)) {
    fprintf(stderr, "init failed\n");
    return 1;
  }
  for (int s = 0; s < NSYM; s++) {
    snprintf(names[s], sizeof names[s], "sym%03dusdt", s);
    snprintf(upper[s], sizeof upper[s], "SYM%03dUSDT", s);
    syms[s].symbol = upper[s];
    syms[s].tick_size = "0.01000000";
  }
  depth_set_symbols(&depth, syms, NSYM);
  make_frames();
  wait_up();
  if (!redis_sink_is_up(&redis)) {
    fprintf(stderr, "redis not up\n");
    return 1;
  }
  sync_books();
  drain(0);

  /* phase 1: the production rate */
  pub0 = redis.published;
  t0 = now_s();
  c0 = cpu_s();
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, timer_cb, 100, 100);
  while (round_no < ROUNDS_RATE)
    uv_run(&loop, UV_RUN_ONCE);
  drain(0);
  t1 = now_s();
  c1 = cpu_s();
  rate_wall = t1 - t0;
  rate_cpu = c1 - c0;
  n_rate = redis.published - pub0;

  /* phase 2: as fast as it goes */
  pub0 = redis.published;
  t0 = now_s();
  c0 = cpu_s();
  for (int r = ROUNDS_RATE + 1; r < ROUNDS_RATE + ROUNDS_FAST; r++) {
    send_round(r);
    drain(2000);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  drain(0);
  fast_wall = now_s() - t0;
  fast_cpu = cpu_s() - c0;
  n_fast = redis.published - pub0;

  /* phase 3: the same path with the Redis sink detached (test-only: the
   * field is private), to split the cost */
  depth.redis = NULL;
  t0 = now_s();
  c0 = cpu_s();
  for (int r = ROUNDS_RATE + ROUNDS_FAST; r < ROUNDS; r++)
    send_round(r);
  nored_cpu = cpu_s() - c0;
  nored_wall = now_s() - t0;
  depth.redis = &redis;

  depth_counts(&depth, &synced, &total);
  printf("symbols=%d synced=%d errors=%" PRIu64 " redis_dropped=%" PRIu64
         " redis_errors=%" PRIu64 "\n",
         total, synced, errors, redis.dropped, redis.errors);
  printf("rate_phase: publishes=%" PRIu64 " wall_s=%.2f publishes_per_s=%.0f "
         "cpu_s=%.3f cpu_pct_of_core=%.1f us_cpu_per_update=%.1f\n",
         n_rate, rate_wall, (double)n_rate / rate_wall, rate_cpu,
         100.0 * rate_cpu / rate_wall, 1e6 * rate_cpu / (double)n_rate);
  printf("fast_phase: publishes=%" PRIu64 " wall_s=%.3f publishes_per_s=%.0f "
         "us_cpu_per_update=%.1f\n",
         n_fast, fast_wall, (double)n_fast / fast_wall,
         1e6 * fast_cpu / (double)n_fast);

  printf("no_redis_phase: updates=%d wall_s=%.3f updates_per_s=%.0f "
         "us_cpu_per_update=%.1f\n",
         NSYM * ROUNDS_NOREDIS, nored_wall,
         (double)(NSYM * ROUNDS_NOREDIS) / nored_wall,
         1e6 * nored_cpu / (double)(NSYM * ROUNDS_NOREDIS));

  uv_close((uv_handle_t *)&timer, NULL);
  depth_close(&depth, NULL);
  redis_sink_close(&redis, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  parse_free(&parser);
  for (int r = 0; r < ROUNDS; r++)
    for (int s = 0; s < NSYM; s++)
      free(frames[r][s]);
  uv_loop_close(&loop);
  return (errors || redis.dropped || synced != NSYM ||
          n_rate != (uint64_t)NSYM * ROUNDS_RATE ||
          n_fast != (uint64_t)NSYM * (ROUNDS_FAST - 1))
             ? 1
             : 0;
}
