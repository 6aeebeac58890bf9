/*
 * test_weight.c: unit tests for binance/weight: the sliding budget never
 * lets any 60 s carry more than the limit, foreign weight from headers,
 * 429 pauses and 418 bans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "binance/weight.h"

static void effective_limit(void **state) {
  struct weight_budget b;
  (void)state;
  weight_init(&b, 6000, 10);
  assert_int_equal(weight_effective_limit(&b), 5400);
  weight_set_exchange_limit(&b, 1200);
  assert_int_equal(weight_effective_limit(&b), 1080);
  weight_set_exchange_limit(&b, 0);
  assert_int_equal(weight_effective_limit(&b), 5400);
}

static void spends_until_full_then_waits(void **state) {
  struct weight_budget b;
  int64_t t = 1000000;
  (void)state;
  weight_init(&b, 100, 0);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(weight_wait_ms(&b, t, 2), 0);
    weight_spend(&b, t, 2);
  }
  assert_int_equal(weight_used(&b, t), 100);
  /* Everything was booked in second 1000: it ages out WEIGHT_WINDOW_S later. */
  assert_int_equal(weight_wait_ms(&b, t, 2), WEIGHT_WINDOW_S * 1000);
  assert_int_equal(weight_wait_ms(&b, t + WEIGHT_WINDOW_S * 1000 - 1, 2), 1);
  assert_int_equal(weight_wait_ms(&b, t + WEIGHT_WINDOW_S * 1000, 2), 0);
}

/* Simulates a greedy caller for 10 minutes in 100 ms steps and checks the
 * invariant on every 60 s window, aligned or not. */
static void no_window_exceeds_limit(void **state) {
  struct weight_budget b;
  static int64_t per_100ms[6000];
  int64_t limit = 300;
  (void)state;
  weight_init(&b, limit, 0);
  for (int step = 0; step < 6000; step++) {
    int64_t now = 5000000 + step * 100;
    while (weight_wait_ms(&b, now, 4) == 0) {
      weight_spend(&b, now, 4);
      per_100ms[step] += 4;
    }
  }
  for (int start = 0; start + 600 <= 6000; start++) {
    int64_t sum = 0;
    for (int i = start; i < start + 600; i++)
      sum += per_100ms[i];
    assert_true(sum <= limit);
  }
  /* And it does use the budget: about limit per minute over 10 minutes. */
  {
    int64_t total = 0;
    for (int i = 0; i < 6000; i++)
      total += per_100ms[i];
    assert_true(total >= limit * 9);
  }
}

static void foreign_weight_from_header(void **state) {
  struct weight_budget b;
  int64_t t = 2000000;
  (void)state;
  weight_init(&b, 100, 0);
  weight_spend(&b, t, 10);
  weight_observe_used(&b, t, 95); /* someone else used 85 */
  assert_int_equal(weight_used(&b, t), 95);
  assert_int_equal(b.foreign_total, 85);
  assert_true(weight_wait_ms(&b, t, 10) > 0);
  weight_observe_used(&b, t, 50); /* lower than ours: nothing booked */
  assert_int_equal(weight_used(&b, t), 95);
}

static void pause_on_429_and_ban_on_418(void **state) {
  struct weight_budget b;
  int64_t t = 3000000;
  (void)state;
  weight_init(&b, 6000, 10);
  weight_on_429(&b, t, 7);
  assert_int_equal(weight_wait_ms(&b, t, 1), 7000);
  assert_int_equal(weight_wait_ms(&b, t + 7000, 1), 0);
  assert_false(weight_banned(&b, t));
  weight_on_418(&b, t, 0); /* unknown Retry-After: 2 minutes */
  assert_true(weight_banned(&b, t + 119999));
  assert_false(weight_banned(&b, t + 120000));
  assert_int_equal(weight_wait_ms(&b, t, 1), 120000);
  assert_int_equal(b.n_429, 1);
  assert_int_equal(b.n_418, 1);
}

static void oversized_request_goes_alone(void **state) {
  struct weight_budget b;
  int64_t t = 4000000;
  (void)state;
  weight_init(&b, 100, 0);
  assert_int_equal(weight_wait_ms(&b, t, 250), 0); /* empty window */
  weight_spend(&b, t, 250);
  assert_true(weight_wait_ms(&b, t + 1000, 1) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(effective_limit),
      cmocka_unit_test(spends_until_full_then_waits),
      cmocka_unit_test(no_window_exceeds_limit),
      cmocka_unit_test(foreign_weight_from_header),
      cmocka_unit_test(pause_on_429_and_ban_on_418),
      cmocka_unit_test(oversized_request_goes_alone),
  };
  return cmocka_run_group_tests_name("weight", tests, NULL, NULL);
}
