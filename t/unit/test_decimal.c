/*
 * test_decimal.c: unit tests for core/decimal (validation, exact fixed-point
 * conversion both ways, scale from tick size, zero test), edge by edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/decimal.h"
#include "core/err.h"

static int valid(const char *s) {
  return dec_valid(s, strlen(s));
}

static void valid_accepts_exchange_text(void **state) {
  (void)state;
  assert_true(valid("0"));
  assert_true(valid("0.35280000"));
  assert_true(valid("-1.234"));
  assert_true(valid("-0"));
  assert_true(valid("25877.00000000"));
  assert_true(valid("007")); /* leading zeros are harmless */
  assert_true(valid("12345678901234567890123456789")); /* long but valid */
  /* exactly DEC_TEXT_MAX (47) bytes */
  assert_true(valid("1.234567890123456789012345678901234567890123456"));
}

static void valid_rejects_everything_else(void **state) {
  static const char *bad[] = {
      "",   "-",  "--1",  "+1",    "1.",   ".5",  "-.5",  "1e5", "1E5",
      " 1", "1 ", "1..2", "1.2.3", "0x10", "NaN", "inf",  "1,5", "-1-",
      "1-", "١",  "1.5e", "abc",   ".",    "-1.", "1.-5",
  };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (valid(bad[i]))
      fail_msg("accepted \"%s\"", bad[i]);
  }
  /* 48 bytes is one too many */
  assert_false(valid("1.2345678901234567890123456789012345678901234567"));
  /* a NUL inside the counted length */
  assert_false(dec_valid("1\0002", 3));
  assert_false(dec_valid(NULL, 0));
  /* a length shorter than the string checks only the prefix */
  assert_true(dec_valid("12x", 2));
}

static void to_scaled_exact(void **state) {
  int64_t v = 0;
  (void)state;
  assert_int_equal(dec_to_scaled("0.35280000", 8, &v), 0);
  assert_int_equal(v, 35280000);
  assert_int_equal(dec_to_scaled("0.3528", 8, &v), 0);
  assert_int_equal(v, 35280000);
  assert_int_equal(dec_to_scaled("60685.22000000", 2, &v), 0);
  assert_int_equal(v, 6068522);
  assert_int_equal(dec_to_scaled("-1.234", 3, &v), 0);
  assert_int_equal(v, -1234);
  assert_int_equal(dec_to_scaled("-1.234", 6, &v), 0);
  assert_int_equal(v, -1234000);
  assert_int_equal(dec_to_scaled("0", 8, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(dec_to_scaled("-0.00000000", 8, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(dec_to_scaled("12", 0, &v), 0);
  assert_int_equal(v, 12);
  assert_int_equal(dec_to_scaled("1.500", 1, &v), 0); /* zeros beyond */
  assert_int_equal(v, 15);
  assert_int_equal(dec_to_scaled("0.000000000000000001", 18, &v), 0);
  assert_int_equal(v, 1);
}

static void to_scaled_precision_loss_is_einval(void **state) {
  int64_t v = 77;
  (void)state;
  assert_int_equal(dec_to_scaled("1.05", 1, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled("0.000000001", 8, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled("1.5", 0, &v), BL_EINVAL);
  assert_int_equal(v, 77); /* untouched on error */
}

static void to_scaled_bad_text_and_scale(void **state) {
  static const char *bad[] = {"", "1.", ".5", "1e5", "--1", "+1", " 1", "x"};
  int64_t v = 77;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(dec_to_scaled(bad[i], 8, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled("1", -1, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled("1", 19, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled(NULL, 2, &v), BL_EINVAL);
  assert_int_equal(dec_to_scaled("1", 2, NULL), BL_EINVAL);
  assert_int_equal(v, 77);
}

static void to_scaled_overflow(void **state) {
  int64_t v = 77;
  (void)state;
  /* int64 limits at scale 0, with and without sign */
  assert_int_equal(dec_to_scaled("9223372036854775807", 0, &v), 0);
  assert_true(v == INT64_MAX);
  assert_int_equal(dec_to_scaled("-9223372036854775808", 0, &v), 0);
  assert_true(v == INT64_MIN);
  assert_int_equal(dec_to_scaled("9223372036854775808", 0, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("-9223372036854775809", 0, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("99999999999999999999", 0, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("12345678901234567890123", 0, &v), BL_ETOOBIG);
  /* 19+ digits can fit only with a small scale */
  assert_int_equal(dec_to_scaled("1000000000000000000", 0, &v), 0);
  assert_true(v == 1000000000000000000LL);
  assert_int_equal(dec_to_scaled("1000000000000000000", 1, &v), BL_ETOOBIG);
  /* overflow from the scale multiplication */
  assert_int_equal(dec_to_scaled("92233720369", 8, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("92233720368.54775807", 8, &v), 0);
  assert_true(v == INT64_MAX);
  /* overflow while adding the fraction */
  assert_int_equal(dec_to_scaled("92233720368.54775808", 8, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("-92233720368.54775808", 8, &v), 0);
  assert_true(v == INT64_MIN);
  assert_int_equal(dec_to_scaled("-92233720368.54775809", 8, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("10", 18, &v), BL_ETOOBIG);
  assert_int_equal(dec_to_scaled("9.223372036854775807", 18, &v), 0);
  assert_true(v == INT64_MAX);
}

static void scale_from_tick(void **state) {
  (void)state;
  assert_int_equal(dec_scale_from_tick("0.00000100"), 6);
  assert_int_equal(dec_scale_from_tick("0.00000001"), 8);
  assert_int_equal(dec_scale_from_tick("0.01000000"), 2);
  assert_int_equal(dec_scale_from_tick("1.00000000"), 0);
  assert_int_equal(dec_scale_from_tick("10"), 0);
  assert_int_equal(dec_scale_from_tick("0"), 0);
  assert_int_equal(dec_scale_from_tick("0.00000000"), 0);
  assert_int_equal(dec_scale_from_tick("0.5"), 1);
  assert_int_equal(dec_scale_from_tick("0.000000000000000001"), 18);
  assert_int_equal(dec_scale_from_tick("0.0000000000000000001"), BL_ETOOBIG);
  assert_int_equal(dec_scale_from_tick("-0.01"), BL_EINVAL);
  assert_int_equal(dec_scale_from_tick("1e-8"), BL_EINVAL);
  assert_int_equal(dec_scale_from_tick(""), BL_EINVAL);
  assert_int_equal(dec_scale_from_tick(NULL), BL_EINVAL);
}

static void from_scaled_formats(void **state) {
  char out[48];
  (void)state;
  assert_int_equal(dec_from_scaled(35280000, 8, out, sizeof out), 10);
  assert_string_equal(out, "0.35280000");
  assert_int_equal(dec_from_scaled(-1234, 3, out, sizeof out), 6);
  assert_string_equal(out, "-1.234");
  assert_int_equal(dec_from_scaled(-12, 0, out, sizeof out), 3);
  assert_string_equal(out, "-12");
  assert_int_equal(dec_from_scaled(0, 0, out, sizeof out), 1);
  assert_string_equal(out, "0");
  assert_int_equal(dec_from_scaled(0, 2, out, sizeof out), 4);
  assert_string_equal(out, "0.00");
  assert_int_equal(dec_from_scaled(-5, 2, out, sizeof out), 5);
  assert_string_equal(out, "-0.05");
  assert_int_equal(dec_from_scaled(INT64_MAX, 0, out, sizeof out), 19);
  assert_string_equal(out, "9223372036854775807");
  assert_int_equal(dec_from_scaled(INT64_MIN, 0, out, sizeof out), 20);
  assert_string_equal(out, "-9223372036854775808");
  assert_int_equal(dec_from_scaled(INT64_MIN, 18, out, sizeof out), 21);
  assert_string_equal(out, "-9.223372036854775808");
  assert_int_equal(dec_from_scaled(1, 18, out, sizeof out), 20);
  assert_string_equal(out, "0.000000000000000001");
}

static void from_scaled_limits(void **state) {
  char out[8];
  (void)state;
  assert_int_equal(dec_from_scaled(1, 19, out, sizeof out), BL_EINVAL);
  assert_int_equal(dec_from_scaled(1, -1, out, sizeof out), BL_EINVAL);
  /* "0.35280000" needs 11 bytes */
  assert_int_equal(dec_from_scaled(35280000, 8, out, sizeof out), BL_ETOOBIG);
  assert_string_equal(out, "");
  assert_int_equal(dec_from_scaled(1234567, 0, out, sizeof out), 7);
  assert_int_equal(dec_from_scaled(12345678, 0, out, sizeof out), BL_ETOOBIG);
  assert_int_equal(dec_from_scaled(1, 0, NULL, 0), BL_ETOOBIG);
}

static void round_trip(void **state) {
  static const char *texts[] = {
      "0.35280000",           "-1.23400000",           "0.00000000",
      "92233720368.54775807", "-92233720368.54775808", "1.00000001"};
  char out[48];
  int64_t v;
  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    assert_int_equal(dec_to_scaled(texts[i], 8, &v), 0);
    assert_true(dec_from_scaled(v, 8, out, sizeof out) > 0);
    assert_string_equal(out, texts[i]);
  }
  for (int64_t x = -100000; x <= 100000; x += 7) {
    int64_t back;
    assert_true(dec_from_scaled(x, 4, out, sizeof out) > 0);
    assert_int_equal(dec_to_scaled(out, 4, &back), 0);
    assert_true(back == x);
  }
}

static void is_zero(void **state) {
  (void)state;
  assert_true(dec_is_zero("0"));
  assert_true(dec_is_zero("0.00000000"));
  assert_true(dec_is_zero("-0.0"));
  assert_false(dec_is_zero("0.00000001"));
  assert_false(dec_is_zero("10"));
  assert_false(dec_is_zero(""));
  assert_false(dec_is_zero("0."));
  assert_false(dec_is_zero(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_accepts_exchange_text),
      cmocka_unit_test(valid_rejects_everything_else),
      cmocka_unit_test(to_scaled_exact),
      cmocka_unit_test(to_scaled_precision_loss_is_einval),
      cmocka_unit_test(to_scaled_bad_text_and_scale),
      cmocka_unit_test(to_scaled_overflow),
      cmocka_unit_test(scale_from_tick),
      cmocka_unit_test(from_scaled_formats),
      cmocka_unit_test(from_scaled_limits),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(is_zero),
  };
  return cmocka_run_group_tests_name("decimal", tests, NULL, NULL);
}
