/*
 * test_pgarray.c: unit tests for sink/pgarray: quoting, escaping, NULLs,
 * numbers and booleans in array literals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "sink/pgarray.h"

static void mixed_elements(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(pgarray_begin(&b), 0);
  assert_int_equal(pgarray_add_str(&b, "BTCUSDT"), 0);
  assert_int_equal(pgarray_add_str(&b, "a\"b\\c"), 0);
  assert_int_equal(pgarray_add_str(&b, NULL), 0);
  assert_int_equal(pgarray_add_str(&b, ""), 0);
  assert_int_equal(pgarray_add_str(&b, "NULL"), 0);
  assert_int_equal(pgarray_end(&b), 0);
  assert_string_equal(b.data,
                      "{\"BTCUSDT\",\"a\\\"b\\\\c\",NULL,\"\",\"NULL\"}");
  buf_free(&b);
}

static void numbers_and_bools(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  pgarray_begin(&b);
  pgarray_add_i64(&b, INT64_MIN);
  pgarray_add_i64(&b, 42);
  pgarray_add_bool(&b, 1);
  pgarray_add_bool(&b, 0);
  pgarray_add_null(&b);
  pgarray_end(&b);
  assert_string_equal(b.data, "{-9223372036854775808,42,t,f,NULL}");
  pgarray_begin(&b); /* reuse resets */
  pgarray_end(&b);
  assert_string_equal(b.data, "{}");
  buf_free(&b);
}

static void limit_reported(void **state) {
  struct buf b;
  int rv = 0;
  (void)state;
  buf_init(&b, 32);
  pgarray_begin(&b);
  for (int i = 0; i < 100 && !rv; i++)
    rv = pgarray_add_str(&b, "0.35280000");
  assert_int_equal(rv, BL_ETOOBIG);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mixed_elements),
      cmocka_unit_test(numbers_and_bools),
      cmocka_unit_test(limit_reported),
  };
  return cmocka_run_group_tests_name("pgarray", tests, NULL, NULL);
}
