/*
 * test_pgcopy.c: unit tests for sink/pgcopy without a server: the COPY
 * text format (escapes, NULL, booleans, integers, millisecond timestamps
 * in UTC including before 1970) and the job queue's refusals and close
 * path on a loop where nothing connects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "core/err.h"
#include "sink/pgcopy.h"

static void assert_buf(const struct buf *b, const char *want) {
  assert_int_equal(b->len, strlen(want));
  assert_memory_equal(b->data, want, b->len);
}

static void text_is_escaped(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_add_text(&b, "BTCUSDT", 7), 0);
  assert_int_equal(pgcopy_add_text(&b, "a\\b\tc\nd\re", 9), 0);
  assert_int_equal(pgcopy_add_text(&b, "", 0), 0);
  assert_int_equal(pgcopy_row_end(&b), 0);
  assert_buf(&b, "BTCUSDT\ta\\\\b\\tc\\nd\\re\t\n");
  buf_free(&b);
}

static void scalars_and_null(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_add_i64(&b, INT64_MIN), 0);
  assert_int_equal(pgcopy_add_i64(&b, 9223372036854775807LL), 0);
  assert_int_equal(pgcopy_add_bool(&b, 1), 0);
  assert_int_equal(pgcopy_add_bool(&b, 0), 0);
  assert_int_equal(pgcopy_add_null(&b), 0);
  assert_int_equal(pgcopy_row_end(&b), 0);
  assert_buf(&b, "-9223372036854775808\t9223372036854775807\tt\tf\t\\N\n");
  buf_free(&b);
}

static void millisecond_times_in_utc(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_add_ms(&b, 1700000000007LL), 0);
  assert_int_equal(pgcopy_add_ms(&b, 0), 0);
  assert_int_equal(pgcopy_add_ms(&b, -1), 0);
  assert_int_equal(pgcopy_add_ms(&b, 951782400999LL), 0); /* 2000-02-29 */
  assert_int_equal(pgcopy_row_end(&b), 0);
  assert_buf(&b, "2023-11-14 22:13:20.007+00\t1970-01-01 00:00:00.000+00\t"
                 "1969-12-31 23:59:59.999+00\t2000-02-29 00:00:00.999+00\n");
  buf_free(&b);
}

static void row_end_needs_a_field(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_row_end(&b), BL_EINVAL);
  buf_free(&b);
}

static void buffer_limit_is_reported(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 8);
  assert_int_not_equal(pgcopy_add_text(&b, "0123456789", 10), 0);
  buf_free(&b);
}

static int closed;
static void on_closed(struct pgcopy *pc) {
  (void)pc;
  closed++;
}

static void job_cb(struct pgcopy_job *job, int status, const char *err) {
  (void)job;
  (void)status;
  (void)err;
  fail_msg("a refused job must not get a callback");
}

static void refuses_while_down_and_closes(void **state) {
  uv_loop_t loop;
  struct pgcopy pc;
  struct pgcopy_opts o;
  struct pgcopy_job job;
  (void)state;
  memset(&o, 0, sizeof o);
  o.conn.host = "127.0.0.1";
  o.conn.port = 1; /* never started: nothing connects */
  memset(&job, 0, sizeof job);
  job.sql = "COPY t FROM STDIN";
  job.rows = "1\n";
  job.len = 2;
  job.cb = job_cb;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(pgcopy_init(&loop, &pc, &o), 0);
  assert_int_equal(pgcopy_submit(&pc, &job), BL_ESTATE); /* not started */
  assert_int_equal(pgcopy_submit(&pc, NULL), BL_EINVAL);
  job.cb = NULL;
  assert_int_equal(pgcopy_submit(&pc, &job), BL_EINVAL);
  job.cb = job_cb;
  assert_int_equal(pgcopy_is_up(&pc), 0);
  assert_int_equal(pgcopy_pending(&pc), 0);
  closed = 0;
  pgcopy_close(&pc, 1000, on_closed);
  assert_int_equal(pgcopy_submit(&pc, &job), BL_ESTATE);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(text_is_escaped),
      cmocka_unit_test(scalars_and_null),
      cmocka_unit_test(millisecond_times_in_utc),
      cmocka_unit_test(row_end_needs_a_field),
      cmocka_unit_test(buffer_limit_is_reported),
      cmocka_unit_test(refuses_while_down_and_closes),
  };
  return cmocka_run_group_tests_name("pgcopy", tests, NULL, NULL);
}
