/*
 * test_limiter.c: unit tests for binance/limiter's I/O-free parts and the
 * budget behaviour it relies on: the back-off schedule (1 s doubling to
 * 60 s, 75-100 % jitter), foreign weight told apart by the server's UTC
 * minute even while our sliding window still holds the previous minute,
 * Binance error bodies, and submit's argument checks. (The scheduler
 * itself runs against the mock in t/integration/limiter.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../src/binance/limiter.c"

static void backoff_schedule(void **state) {
  (void)state;
  for (int i = 0; i < 200; i++) {
    uint64_t a1 = backoff_ms(1), a2 = backoff_ms(2), a7 = backoff_ms(7),
             a20 = backoff_ms(20);
    assert_true(a1 >= 750 && a1 <= 1000);
    assert_true(a2 >= 1500 && a2 <= 2000);
    assert_true(a7 >= 45000 && a7 <= 60000); /* 64 s capped at 60 */
    assert_true(a20 >= 45000 && a20 <= 60000);
  }
}

/* Minute M: we send 18. Minute M+1 starts: the server forgets them, a
 * foreign process uses 10; our sliding window still holds our 18. The
 * header (11 after our first request in M+1) must book 10 foreign. */
static void foreign_hidden_by_the_previous_minute(void **state) {
  struct weight_budget b;
  int64_t m = 60000LL * 1000000; /* a minute boundary, wall == now */
  (void)state;
  weight_init(&b, 20, 10); /* 18 effective */
  for (int i = 0; i < 18; i++)
    weight_spend(&b, m + 50000, 1);
  weight_observe_used(&b, m + 50000, 18);
  assert_int_equal(b.foreign_total, 0);
  weight_spend(&b, m + 60000 + 5000, 1);
  weight_observe_used(&b, m + 60000 + 5000, 11);
  assert_int_equal(b.foreign_total, 10);
  /* the same header again books nothing more */
  weight_observe_used(&b, m + 60000 + 5100, 11);
  assert_int_equal(b.foreign_total, 10);
  /* once our minute-M weight aged out, only 18 - 10 - 1 = 7 more fit */
  assert_true(weight_wait_ms(&b, m + 51000 + WEIGHT_WINDOW_S * 1000, 7) == 0);
  assert_true(weight_wait_ms(&b, m + 51000 + WEIGHT_WINDOW_S * 1000, 8) > 0);
}

static void wall_offset_aligns_minutes(void **state) {
  struct weight_budget b;
  (void)state;
  weight_init(&b, 100, 0);
  b.wall_offset_ms = 60000LL * 5000 - 30000; /* now 30000 = wall :00 */
  weight_spend(&b, 29000, 5);                /* wall minute 4999 */
  weight_observe_used(&b, 31000, 5);         /* minute 5000: 5 foreign */
  assert_int_equal(b.foreign_total, 5);
}

static void api_error_body(void **state) {
  struct limiter_req req;
  const char *body = "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}";
  (void)state;
  limiter_req_init(&req);
  assert_int_equal(buf_append(&req.http.body, body, strlen(body) + 1), 0);
  req.http.body.len--;
  parse_api_error(&req);
  assert_int_equal(req.api_code, -1121);
  assert_string_equal(req.api_msg, "Invalid symbol.");
  limiter_req_free(&req);
}

static void submit_checks(void **state) {
  uv_loop_t loop;
  struct limiter lim;
  struct limiter_req req;
  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(limiter_init(&loop, &lim, NULL, "http://x/", 6000, 0), 0);
  assert_string_equal(lim.base_url, "http://x");
  assert_int_equal(lim.workers, 1);
  limiter_req_init(&req);
  assert_int_equal(limiter_submit(&lim, &req), BL_EINVAL); /* no path/cb */
  snprintf(req.path, sizeof req.path, "/api/v3/time");
  req.prio = LIMITER_NPRIO;
  assert_int_equal(limiter_submit(&lim, &req), BL_EINVAL);
  limiter_close(&lim, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  limiter_req_free(&req);
}

/* The wall-clock offset must hold however long the start-up took before
 * the limiter was made: the loop's cached time is older than that. */
static void wall_offset_after_slow_start(void **state) {
  uv_loop_t loop;
  struct limiter lim;
  struct timespec ts;
  int64_t wall;
  (void)state;
  uv_loop_init(&loop);
  usleep(1200 * 1000); /* a start-up that took 1.2 s before uv_run */
  assert_int_equal(limiter_init(&loop, &lim, NULL, "http://x/", 6000, 1), 0);
  clock_gettime(CLOCK_REALTIME, &ts);
  wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  uv_update_time(&loop);
  assert_true(
      llabs(wall - ((int64_t)uv_now(&loop) + lim.budget.wall_offset_ms)) < 200);
  limiter_close(&lim, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(backoff_schedule),
      cmocka_unit_test(foreign_hidden_by_the_previous_minute),
      cmocka_unit_test(wall_offset_aligns_minutes),
      cmocka_unit_test(api_error_body),
      cmocka_unit_test(submit_checks),
      cmocka_unit_test(wall_offset_after_slow_start),
  };
  return cmocka_run_group_tests_name("limiter", tests, NULL, NULL);
}
