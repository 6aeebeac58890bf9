/*
 * test_metrics.c: unit tests for core/metrics: exposition lines, label
 * escaping, histogram buckets and quantiles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/metrics.h"

struct counters {
  uint64_t frames;
  uint64_t rows_klines;
};

static void collect(struct buf *out, void *arg) {
  struct counters *c = arg;
  metrics_family(out, "bl_frames_total", "counter", "Frames received.");
  metrics_sample_u64(out, "bl_frames_total", NULL, c->frames);
  metrics_family(out, "bl_rows_written_total", "counter", "Rows stored.");
  metrics_sample_u64(out, "bl_rows_written_total", "table=\"klines\"",
                     c->rows_klines);
}

static void render_collectors(void **state) {
  struct metrics m;
  struct counters c = {7, 1234567890123ULL};
  struct buf out;
  (void)state;
  metrics_init(&m);
  buf_init(&out, 1 << 20);
  assert_int_equal(metrics_register(&m, collect, &c), 0);
  assert_int_equal(metrics_render(&m, &out), 0);
  assert_string_equal(out.data, "# HELP bl_frames_total Frames received.\n"
                                "# TYPE bl_frames_total counter\n"
                                "bl_frames_total 7\n"
                                "# HELP bl_rows_written_total Rows stored.\n"
                                "# TYPE bl_rows_written_total counter\n"
                                "bl_rows_written_total{table=\"klines\"} "
                                "1234567890123\n");
  metrics_unregister(&m, &c);
  buf_reset(&out);
  assert_int_equal(metrics_render(&m, &out), 0);
  assert_int_equal(out.len, 0);
  buf_free(&out);
}

static void single_sample_family(void **state) {
  struct buf out;
  (void)state;
  buf_init(&out, 4096);
  metrics_single(&out, "bl_up", "gauge", "Up.", 1);
  metrics_single(&out, "bl_ratio", "gauge", "A ratio.", 0.25);
  assert_string_equal(out.data,
                      "# HELP bl_up Up.\n# TYPE bl_up gauge\nbl_up 1\n"
                      "# HELP bl_ratio A ratio.\n# TYPE bl_ratio "
                      "gauge\nbl_ratio 0.25\n");
  buf_free(&out);
}

static void escape_labels(void **state) {
  char dst[64];
  (void)state;
  metrics_escape_label(dst, sizeof dst, "a\"b\\c\nd");
  assert_string_equal(dst, "a\\\"b\\\\c\\nd");
}

static void histogram_buckets(void **state) {
  static const double bounds[] = {0.001, 0.01, 0.1};
  struct metrics_histogram h;
  struct buf out;
  (void)state;
  assert_int_equal(metrics_histogram_init(&h, bounds, 3), 0);
  metrics_histogram_observe(&h, 0.0005);
  metrics_histogram_observe(&h, 0.001); /* le is inclusive */
  metrics_histogram_observe(&h, 0.05);
  metrics_histogram_observe(&h, 3);
  buf_init(&out, 4096);
  metrics_histogram_write(&out, "bl_lat_seconds", "type=\"trade\"", &h);
  assert_non_null(strstr(
      out.data, "bl_lat_seconds_bucket{type=\"trade\",le=\"0.001\"} 2\n"));
  assert_non_null(strstr(
      out.data, "bl_lat_seconds_bucket{type=\"trade\",le=\"0.01\"} 2\n"));
  assert_non_null(
      strstr(out.data, "bl_lat_seconds_bucket{type=\"trade\",le=\"0.1\"} 3\n"));
  assert_non_null(strstr(
      out.data, "bl_lat_seconds_bucket{type=\"trade\",le=\"+Inf\"} 4\n"));
  assert_non_null(strstr(out.data, "bl_lat_seconds_count{type=\"trade\"} 4\n"));
  buf_free(&out);
}

static void histogram_quantile(void **state) {
  static const double bounds[] = {1, 2, 3, 4};
  struct metrics_histogram h;
  (void)state;
  assert_int_equal(metrics_histogram_init(&h, bounds, 4), 0);
  assert_true(metrics_histogram_quantile(&h, 0.99) == 0);
  for (int i = 0; i < 100; i++)
    metrics_histogram_observe(&h, i < 90 ? 0.5 : 2.5);
  /* 90 % fall in (0,1], the rest in (2,3]. */
  assert_true(metrics_histogram_quantile(&h, 0.5) <= 1.0);
  assert_true(metrics_histogram_quantile(&h, 0.99) > 2.0);
  assert_true(metrics_histogram_quantile(&h, 0.99) <= 3.0);
}

static void histogram_rejects_bad_bounds(void **state) {
  static const double bad[] = {2, 1};
  struct metrics_histogram h;
  (void)state;
  assert_int_equal(metrics_histogram_init(&h, bad, 2), BL_EINVAL);
  assert_int_equal(metrics_histogram_init(&h, bad, 0), BL_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(render_collectors),
      cmocka_unit_test(single_sample_family),
      cmocka_unit_test(escape_labels),
      cmocka_unit_test(histogram_buckets),
      cmocka_unit_test(histogram_quantile),
      cmocka_unit_test(histogram_rejects_bad_bounds),
  };
  return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
