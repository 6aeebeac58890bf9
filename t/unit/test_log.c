/*
 * test_log.c: unit tests for core/log: JSON and text lines, escaping, level
 * filter, secret redaction and the per-call-site limiter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"

static char last[8192];
static int lines;

static void capture(int level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  snprintf(last, sizeof last, "%s", line);
  lines++;
}

static int setup(void **state) {
  (void)state;
  last[0] = '\0';
  lines = 0;
  log_set_sink(capture, NULL);
  log_setup(BL_LOG_INFO, BL_LOG_JSON, "binance-live", "test");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  log_set_sink(NULL, NULL);
  log_clear_secrets();
  return 0;
}

static void json_line_has_fields_and_escapes(void **state) {
  (void)state;
  log_info("ws", "bad \"frame\"\n\x01 from %s", "host");
  assert_int_equal(lines, 1);
  assert_non_null(strstr(last, "\"level\":\"info\""));
  assert_non_null(strstr(last, "\"app\":\"binance-live\""));
  assert_non_null(strstr(last, "\"env\":\"test\""));
  assert_non_null(strstr(last, "\"mod\":\"ws\""));
  assert_non_null(
      strstr(last, "\"msg\":\"bad \\\"frame\\\"\\n\\u0001 from host\"}"));
  assert_int_equal(last[0], '{');
}

static void level_filter(void **state) {
  (void)state;
  log_debug("x", "hidden");
  assert_int_equal(lines, 0);
  log_setup(BL_LOG_ERROR, BL_LOG_JSON, NULL, NULL);
  log_warn("x", "hidden too");
  assert_int_equal(lines, 0);
  log_error("x", "shown");
  assert_int_equal(lines, 1);
}

static void text_format(void **state) {
  (void)state;
  log_setup(BL_LOG_INFO, BL_LOG_TEXT, NULL, NULL);
  log_warn("pg", "queue at %d%%", 90);
  assert_non_null(strstr(last, " warn  pg: queue at 90%"));
}

static void secrets_are_masked(void **state) {
  (void)state;
  assert_int_equal(log_add_secret("hunter2"), 0);
  log_info("config", "connecting with password=hunter2 and hunter2 again");
  assert_null(strstr(last, "hunter2"));
  assert_non_null(strstr(last, "password=******** and ******** again"));
}

static void parse_names(void **state) {
  (void)state;
  assert_int_equal(log_level_parse("DEBUG"), BL_LOG_DEBUG);
  assert_int_equal(log_level_parse("warning"), BL_LOG_WARN);
  assert_int_equal(log_level_parse("loud"), BL_EINVAL);
  assert_int_equal(log_format_parse("json"), BL_LOG_JSON);
  assert_int_equal(log_format_parse("xml"), BL_EINVAL);
}

static void limiter_caps_a_flood(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++)
    log_limited(BL_LOG_WARN, "parse", "malformed frame %d", i);
  assert_int_equal(lines, BL_LOG_LIMIT_BURST);
}

static void long_message_is_cut(void **state) {
  char big[BL_LOG_LINE_MAX * 2];
  (void)state;
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_info("x", "%s", big);
  assert_non_null(strstr(last, "...\"}"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(json_line_has_fields_and_escapes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(level_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(text_format, setup, teardown),
      cmocka_unit_test_setup_teardown(secrets_are_masked, setup, teardown),
      cmocka_unit_test_setup_teardown(parse_names, setup, teardown),
      cmocka_unit_test_setup_teardown(limiter_caps_a_flood, setup, teardown),
      cmocka_unit_test_setup_teardown(long_message_is_cut, setup, teardown),
  };
  return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
