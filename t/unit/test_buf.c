/*
 * test_buf.c: unit tests for core/buf (growth, limits, printf, consume).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"

static void append_and_terminate(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 1024);
  assert_int_equal(buf_append_str(&b, "hello"), 0);
  assert_int_equal(buf_append_char(&b, ' '), 0);
  assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
  assert_int_equal(b.len, 10);
  assert_string_equal(b.data, "hello 42-x");
  buf_free(&b);
}

static void limit_is_enforced(void **state) {
  struct buf b;
  char big[100];
  (void)state;
  memset(big, 'a', sizeof big);
  buf_init(&b, 150);
  assert_int_equal(buf_append(&b, big, 100), 0);
  assert_int_equal(buf_append(&b, big, 51), BL_ETOOBIG);
  assert_int_equal(b.len, 100); /* unchanged on failure */
  assert_int_equal(buf_append(&b, big, 50), 0);
  assert_int_equal(b.len, 150);
  assert_int_equal(buf_append_char(&b, 'z'), BL_ETOOBIG);
  assert_int_equal(buf_printf(&b, "%s", "x"), BL_ETOOBIG);
  buf_free(&b);
}

static void consume_shifts(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, 64);
  assert_int_equal(buf_append_str(&b, "abcdef"), 0);
  buf_consume(&b, 2);
  assert_string_equal(b.data, "cdef");
  buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  buf_free(&b);
}

static void huge_request_does_not_overflow(void **state) {
  struct buf b;
  (void)state;
  buf_init(&b, (size_t)-1);
  assert_int_equal(buf_append_str(&b, "x"), 0);
  assert_int_equal(buf_reserve(&b, (size_t)-1), BL_ETOOBIG);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(append_and_terminate),
      cmocka_unit_test(limit_is_enforced),
      cmocka_unit_test(consume_shifts),
      cmocka_unit_test(huge_request_does_not_overflow),
  };
  return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
