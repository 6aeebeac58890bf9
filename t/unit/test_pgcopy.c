/*
 * test_pgcopy.c: unit tests for sink/pgcopy without a server: the COPY
 * binary format (header, fields, NULL, trailer; timestamps in microseconds
 * since 2000; jsonb; numeric's base-10000 digits, weight, sign and scale
 * from the exchange's decimal text) and the job queue's refusals and close
 * path on a loop where nothing connects. store.sh checks the same values
 * round-trip exactly through a real server.
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

static void assert_buf(const struct buf *b, const void *want, size_t len) {
  assert_int_equal(b->len, len);
  assert_memory_equal(b->data, want, len);
}

static void stream_header_rows_and_trailer(void **state) {
  static const unsigned char want[] = {
      'P',  'G',  'C',  'O',  'P',  'Y',  '\n', 0xff,
      '\r', '\n', 0,                               /* signature */
      0,    0,    0,    0,    0,    0,    0,    0, /* flags, extension */
      0,    4,                                     /* 4 fields */
      0,    0,    0,    3,    'B',  'T',  'C',     /* text */
      0,    0,    0,    8,    0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xfe,    /* -2 */
      0,    0,    0,    1,    1, /* true */
      0xff, 0xff, 0xff, 0xff,    /* NULL */
      0xff, 0xff};               /* trailer */
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_bin_begin(&b), 0);
  assert_int_equal(pgcopy_bin_row(&b, 4), 0);
  assert_int_equal(pgcopy_bin_text(&b, "BTC", 3), 0);
  assert_int_equal(pgcopy_bin_i64(&b, -2), 0);
  assert_int_equal(pgcopy_bin_bool(&b, 7), 0);
  assert_int_equal(pgcopy_bin_null(&b), 0);
  assert_int_equal(pgcopy_bin_end(&b), 0);
  assert_buf(&b, want, sizeof want);
  buf_free(&b);
}

static void times_are_microseconds_since_2000(void **state) {
  /* 2000-01-01 00:00:00.001 UTC is 1000 us; 1970-01-01 is -946684800 s */
  static const unsigned char want[] = {
      0, 0, 0, 8, 0,    0,    0,    0,    0,    0,    0x03, 0xe8,
      0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00};
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_bin_ms(&b, 946684800001LL), 0);
  assert_int_equal(pgcopy_bin_ms(&b, 0), 0);
  assert_buf(&b, want, sizeof want);
  assert_int_equal(pgcopy_bin_ms(&b, INT64_MAX), BL_EINVAL);
  buf_free(&b);
}

static void jsonb_is_version_one_text(void **state) {
  static const unsigned char want[] = {0, 0, 0, 3, 1, '[', ']'};
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_bin_jsonb(&b, "[]", 2), 0);
  assert_buf(&b, want, sizeof want);
  buf_free(&b);
}

struct num_case {
  const char *text;
  int ndigits, weight, negative, dscale;
  int16_t digits[12];
};

static void numeric_digits_match_postgres(void **state) {
  static const struct num_case cases[] = {
      {"0", 0, 0, 0, 0, {0}},
      {"-0.00", 0, 0, 0, 2, {0}},
      {"0.00100000", 1, -1, 0, 8, {10}},
      {"30007.12345678", 4, 1, 0, 8, {3, 7, 1234, 5678}},
      {"-1.5", 2, 0, 1, 1, {1, 5000}},
      {"10000", 1, 1, 0, 0, {1}},
      {"0.0000001", 1, -2, 0, 7, {10}},
      {"000123.4500", 2, 0, 0, 4, {123, 4500}},
      {"123456789012345678901234.123456789012",
       9,
       5,
       0,
       12,
       {1234, 5678, 9012, 3456, 7890, 1234, 1234, 5678, 9012}},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct num_case *c = &cases[i];
    int16_t d[PGCOPY_NUMERIC_MAX_DIGITS];
    int nd, w, neg, ds;
    assert_int_equal(
        pgcopy_numeric_digits(c->text, strlen(c->text), d, &nd, &w, &neg, &ds),
        0);
    assert_int_equal(nd, c->ndigits);
    assert_int_equal(w, c->weight);
    assert_int_equal(neg, c->negative);
    assert_int_equal(ds, c->dscale);
    for (int k = 0; k < nd; k++)
      assert_int_equal(d[k], c->digits[k]);
  }
}

static void numeric_field_bytes(void **state) {
  /* -1.5: ndigits 2, weight 0, sign 0x4000, dscale 1, digits 1 5000 */
  static const unsigned char want[] = {0,    0, 0, 12, 0, 2, 0,    0,
                                       0x40, 0, 0, 1,  0, 1, 0x13, 0x88};
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgcopy_bin_numeric(&b, "-1.5", 4), 0);
  assert_buf(&b, want, sizeof want);
  buf_reset(&b);
  assert_int_equal(pgcopy_bin_numeric(&b, "1e5", 3), BL_EINVAL);
  assert_int_equal(pgcopy_bin_numeric(&b, "x", 1), BL_EINVAL);
  assert_int_equal(pgcopy_bin_numeric(&b, "1.", 2), BL_EINVAL);
  assert_int_equal(b.len, 0);
  buf_free(&b);
}

static void buffer_limit_is_reported(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 8);
  assert_int_not_equal(pgcopy_bin_text(&b, "0123456789", 10), 0);
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
      cmocka_unit_test(stream_header_rows_and_trailer),
      cmocka_unit_test(times_are_microseconds_since_2000),
      cmocka_unit_test(jsonb_is_version_one_text),
      cmocka_unit_test(numeric_digits_match_postgres),
      cmocka_unit_test(numeric_field_bytes),
      cmocka_unit_test(buffer_limit_is_reported),
      cmocka_unit_test(refuses_while_down_and_closes),
  };
  return cmocka_run_group_tests_name("pgcopy", tests, NULL, NULL);
}
