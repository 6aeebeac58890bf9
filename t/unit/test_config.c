/*
 * test_config.c: unit tests for core/config: defaults, ${VAR} substitution,
 * environment overrides, validation with exact FILE:LINE:COLUMN messages,
 * warnings for unknown and Go-original keys, the masked YAML dump and the
 * interval helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

static const char *const override_vars[] = {
    "LOG_LEVEL",      "LOG_FORMAT",       "BINANCE_API_URL",
    "BINANCE_WS_URL", "BINANCE_CA_FILE",  "POSTGRES_HOST",
    "POSTGRES_PORT",  "POSTGRES_USER",    "POSTGRES_PASSWORD",
    "POSTGRES_DB",    "POSTGRES_SSLMODE", "REDIS_HOST",
    "REDIS_PORT",     "REDIS_PASSWORD",   "REDIS_DB",
    "HTTP_LISTEN",    "SPOOL_DIR",        "BINANCE_LIVE_CONFIG",
    "BL_T_A",         "BL_T_B",           "BL_T_UNSET",
    "APP_ENV"};

static struct config cfg;
static char err[1024];
static char *warnings;
static size_t warnings_len;
static char logged[8192];

static void capture(int level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  snprintf(logged, sizeof logged, "%s", line);
}

static int setup(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof override_vars / sizeof override_vars[0]; i++)
    unsetenv(override_vars[i]);
  memset(&cfg, 0, sizeof cfg);
  err[0] = '\0';
  warnings = NULL;
  warnings_len = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  config_free(&cfg);
  free(warnings);
  warnings = NULL;
  log_set_sink(NULL, NULL);
  log_clear_secrets();
  return 0;
}

/* Loads |yaml| as "t.yaml", collecting warnings. */
static int load(const char *yaml) {
  FILE *w;
  int rv;
  free(warnings);
  warnings = NULL;
  w = open_memstream(&warnings, &warnings_len);
  assert_non_null(w);
  rv = config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", w, err,
                          sizeof err);
  fclose(w);
  return rv;
}

static int load_path(const char *path) {
  FILE *w;
  int rv;
  free(warnings);
  warnings = NULL;
  w = open_memstream(&warnings, &warnings_len);
  assert_non_null(w);
  rv = config_load(&cfg, path, w, err, sizeof err);
  fclose(w);
  return rv;
}

/* Expects the load to fail with an error that starts with |prefix| and
 * contains |part|. */
static void expect_error(const char *yaml, const char *prefix,
                         const char *part) {
  int rv = load(yaml);
  if (rv != BL_ECONFIG || strncmp(err, prefix, strlen(prefix)) ||
      !strstr(err, part))
    fail_msg("yaml <<%s>>: rv %d, err '%s'; want prefix '%s' and '%s'", yaml,
             rv, err, prefix, part);
  assert_null(strchr(err, '\n'));
  /* A failed load leaves nothing to free. */
  assert_null(cfg.app.name);
  assert_null(cfg.path);
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void test_defaults(void **state) {
  (void)state;
  assert_int_equal(load(""), 0);
  assert_string_equal(cfg.path, "t.yaml");
  assert_string_equal(cfg.app.name, "binance-live");
  assert_string_equal(cfg.app.environment, "production");
  assert_int_equal(cfg.app.log_level, BL_LOG_INFO);
  assert_int_equal(cfg.app.log_format, BL_LOG_AUTO);
  assert_string_equal(cfg.binance.api_url, "https://api.binance.com");
  assert_string_equal(cfg.binance.ws_url, "wss://stream.binance.com:9443");
  assert_null(cfg.binance.ca_file);
  assert_int_equal(cfg.binance.rest_rate_limit, 6000);
  assert_int_equal(cfg.binance.n_kline_intervals, 6);
  assert_string_equal(cfg.binance.kline_intervals[0], "1m");
  assert_string_equal(cfg.binance.kline_intervals[5], "1d");
  assert_true(cfg.binance.streams.kline && cfg.binance.streams.ticker &&
              cfg.binance.streams.depth && cfg.binance.streams.trade);
  assert_int_equal(cfg.binance.depth_levels, 20);
  assert_int_equal(cfg.binance.depth_snapshot_interval, 10);
  assert_int_equal(cfg.binance.depth_snapshot_limit, 1000);
  assert_int_equal(cfg.binance.max_streams_per_connection, 200);
  assert_string_equal(cfg.database.host, "localhost");
  assert_int_equal(cfg.database.port, 5432);
  assert_string_equal(cfg.database.user, "postgres");
  assert_string_equal(cfg.database.password, "");
  assert_string_equal(cfg.database.database, "binance_data");
  assert_string_equal(cfg.database.ssl_mode, "prefer");
  assert_int_equal(cfg.database.batch_size, 1000);
  assert_int_equal(cfg.database.flush_interval_ms, 200);
  assert_int_equal(cfg.database.migrate, 1);
  assert_string_equal(cfg.redis.host, "localhost");
  assert_int_equal(cfg.redis.port, 6379);
  assert_string_equal(cfg.redis.password, "");
  assert_int_equal(cfg.redis.db, 0);
  assert_int_equal(cfg.redis.live_data_ttl, 60);
  assert_string_equal(cfg.redis.key_prefix, "binance");
  assert_int_equal(cfg.sync.enabled, 1);
  assert_int_equal(cfg.sync.max_sync_hours, 24);
  assert_int_equal(cfg.sync.batch_size, 1000);
  assert_int_equal(cfg.sync.workers, 5);
  assert_int_equal(cfg.stream.reconnect_delay, 1);
  assert_int_equal(cfg.stream.max_reconnect_attempts, 0);
  assert_int_equal(cfg.stream.ping_interval, 30);
  assert_string_equal(cfg.http.listen, "127.0.0.1:8080");
  assert_int_equal(cfg.symbols.n_bootstrap, 2);
  assert_string_equal(cfg.symbols.bootstrap[0], "BTCUSDT");
  assert_string_equal(cfg.symbols.bootstrap[1], "ETHUSDT");
  assert_string_equal(cfg.spool.dir, "./var/spool");
  assert_true(cfg.spool.max_bytes == 1073741824LL);
  assert_int_equal(warnings_len, 0);
}

static void test_values_and_nulls(void **state) {
  (void)state;
  assert_int_equal(load("# only a comment\napp:\ndatabase:\n  port: \"6543\"\n"
                        "  host: ~\n  migrate: off\nsync:\n  enabled: yes\n"
                        "binance:\n  kline_intervals:\n    - 1M\n    - 1s\n"
                        "  streams: {depth: false, trade: no}\n"
                        "  ca_file: /etc/ca.pem\n"
                        "symbols:\n  bootstrap: [btcusdt, SOLUSDT]\n"
                        "stream:\n  reconnect_delay: 2m\n"
                        "database2: {}\n"),
                   0);
  assert_int_equal(cfg.database.port, 6543);
  assert_string_equal(cfg.database.host, "localhost");
  assert_int_equal(cfg.database.migrate, 0);
  assert_int_equal(cfg.sync.enabled, 1);
  assert_int_equal(cfg.binance.n_kline_intervals, 2);
  assert_string_equal(cfg.binance.kline_intervals[0], "1M");
  assert_string_equal(cfg.binance.kline_intervals[1], "1s");
  assert_int_equal(cfg.binance.streams.depth, 0);
  assert_int_equal(cfg.binance.streams.trade, 0);
  assert_int_equal(cfg.binance.streams.kline, 1);
  assert_string_equal(cfg.binance.ca_file, "/etc/ca.pem");
  assert_string_equal(cfg.symbols.bootstrap[0], "BTCUSDT");
  assert_string_equal(cfg.symbols.bootstrap[1], "SOLUSDT");
  assert_int_equal(cfg.stream.reconnect_delay, 120);
  assert_non_null(strstr(warnings, "t.yaml:19:1: warning: unknown key "
                                   "'database2'"));
}

static void test_substitution(void **state) {
  (void)state;
  setenv("BL_T_A", "db1", 1);
  setenv("BL_T_B", "b", 1);
  assert_int_equal(load("database:\n  host: ${BL_T_A}\n"
                        "  user: ${BL_T_UNSET:fallback}\n"
                        "  database: pre-${BL_T_A}-${BL_T_B:x}-${NOPE_Q:y}"
                        "-post\n"
                        "  port: ${BL_T_UNSET:5433}\n"
                        "app:\n  environment: ${BL_T_UNSET}\n"),
                   0);
  assert_string_equal(cfg.database.host, "db1");
  assert_string_equal(cfg.database.user, "fallback");
  assert_string_equal(cfg.database.database, "pre-db1-b-y-post");
  assert_int_equal(cfg.database.port, 5433);
  assert_string_equal(cfg.app.environment, "");
  assert_non_null(warnings);
  assert_non_null(strstr(warnings, "t.yaml:7:16: warning: environment variable "
                                   "'BL_T_UNSET' is not set"));
}

static void test_substitution_errors(void **state) {
  (void)state;
  expect_error("app:\n  name: x\n  environment: ab${BL_T_A\n",
               "t.yaml:3:16: ", "unterminated '${'");
  expect_error("app:\n  environment: ${}\n",
               "t.yaml:2:16: ", "bad variable name");
  /* A substituted value is checked like a literal one, and the message
   * names the variable it came from. */
  setenv("BL_T_A", "abc", 1);
  expect_error("redis:\n  port: ${BL_T_A:1}\n", "t.yaml:2:9: ",
               "redis.port: expected an integer, got 'abc' (value from "
               "environment variable BL_T_A)");
}

static void test_env_overrides(void **state) {
  (void)state;
  setenv("POSTGRES_HOST", "envhost", 1);
  setenv("POSTGRES_PORT", "6000", 1);
  setenv("POSTGRES_PASSWORD", "envpw", 1);
  setenv("REDIS_DB", "3", 1);
  setenv("LOG_LEVEL", "DEBUG", 1);
  setenv("LOG_FORMAT", "text", 1);
  setenv("BINANCE_WS_URL", "ws://127.0.0.1:9000/", 1);
  setenv("HTTP_LISTEN", "0.0.0.0:9090", 1);
  setenv("SPOOL_DIR", "/tmp/spool", 1);
  setenv("POSTGRES_SSLMODE", "", 1); /* empty: no override */
  assert_int_equal(load("database:\n  host: filehost\n  port: 5432\n"
                        "  ssl_mode: require\n"),
                   0);
  assert_string_equal(cfg.database.host, "envhost");
  assert_int_equal(cfg.database.port, 6000);
  assert_string_equal(cfg.database.password, "envpw");
  assert_string_equal(cfg.database.ssl_mode, "require");
  assert_int_equal(cfg.redis.db, 3);
  assert_int_equal(cfg.app.log_level, BL_LOG_DEBUG);
  assert_int_equal(cfg.app.log_format, BL_LOG_TEXT);
  assert_string_equal(cfg.binance.ws_url, "ws://127.0.0.1:9000");
  assert_string_equal(cfg.http.listen, "0.0.0.0:9090");
  assert_string_equal(cfg.spool.dir, "/tmp/spool");
}

static void test_env_bad_value(void **state) {
  (void)state;
  setenv("POSTGRES_PORT", "abc", 1);
  expect_error(
      "database:\n  port: 5432\n",
      "t.yaml: environment variable POSTGRES_PORT: ", "expected an integer");
  unsetenv("POSTGRES_PORT");
  setenv("REDIS_PORT", "0", 1);
  expect_error(
      "", "t.yaml: environment variable REDIS_PORT: ", "between 1 and 65535");
  unsetenv("REDIS_PORT");
  setenv("LOG_LEVEL", "loud", 1);
  expect_error("", "t.yaml: environment variable LOG_LEVEL: ",
               "unknown log level 'loud'");
  unsetenv("LOG_LEVEL");
  setenv("BINANCE_API_URL", "ftp://x", 1);
  expect_error("", "t.yaml: environment variable BINANCE_API_URL: ",
               "http:// or https://");
}

static void test_wrong_types(void **state) {
  (void)state;
  expect_error("sync:\n  enabled: maybe\n",
               "t.yaml:2:12: ", "sync.enabled: expected a boolean");
  expect_error("database:\n  port: abc\n",
               "t.yaml:2:9: ", "database.port: expected an integer, got 'abc'");
  expect_error("database:\n  port: 12.5\n",
               "t.yaml:2:9: ", "expected an integer");
  expect_error("database:\n  host: [a, b]\n", "t.yaml:2:9: ",
               "database.host: expected a scalar value, got a list");
  expect_error("binance:\n  kline_intervals: 1m\n",
               "t.yaml:2:20: ", "expected a list, got a scalar");
  expect_error("binance:\n  streams: [kline]\n",
               "t.yaml:2:12: ", "expected a mapping, got a list");
  expect_error("binance:\n  streams:\n    depth: sometimes\n",
               "t.yaml:3:12: ", "binance.streams.depth: expected a boolean");
  expect_error("stream:\n  ping_interval: 5 s\n",
               "t.yaml:2:18: ", "expected a number of seconds");
}

static void test_scalar_where_map(void **state) {
  (void)state;
  expect_error("database: localhost\n",
               "t.yaml:1:11: ", "'database' must be a mapping, got a scalar");
  expect_error("just some text\n",
               "t.yaml:1:1: ", "expected a mapping of sections");
  expect_error("- a\n- b\n", "t.yaml:1:1: ", "got a list");
}

static void test_intervals(void **state) {
  (void)state;
  expect_error("binance:\n  kline_intervals: [1m, 2m]\n",
               "t.yaml:2:25: ", "unknown kline interval '2m'");
  expect_error("binance:\n  kline_intervals:\n    - 1m\n    - 1H\n",
               "t.yaml:4:7: ", "unknown kline interval '1H'");
  expect_error("binance:\n  kline_intervals: []\n",
               "t.yaml:2:20: ", "binance.kline_intervals is empty");
  /* Empty is fine when klines are not collected. */
  assert_int_equal(load("binance:\n  kline_intervals: []\n"
                        "  streams: {kline: false}\n"),
                   0);
  assert_int_equal(cfg.binance.n_kline_intervals, 0);
  config_free(&cfg);
  assert_int_equal(load("binance:\n  kline_intervals: [1m, 5m, 1m]\n"), 0);
  assert_int_equal(cfg.binance.n_kline_intervals, 2);
  assert_non_null(strstr(warnings, "t.yaml:2:29: warning: duplicate kline "
                                   "interval '1m'"));
  config_free(&cfg);
  assert_int_equal(load("symbols:\n  bootstrap: [BTCUSDT, btcusdt]\n"), 0);
  assert_int_equal(cfg.symbols.n_bootstrap, 1);
  assert_non_null(strstr(warnings, "duplicate symbol 'BTCUSDT'"));

  config_free(&cfg);
  {
    /* 1025 distinct symbols: one more than CONFIG_MAX_BOOTSTRAP. */
    static char big[32768];
    size_t n = (size_t)snprintf(big, sizeof big, "symbols:\n  bootstrap:\n");
    for (int i = 0; i <= CONFIG_MAX_BOOTSTRAP; i++)
      n += (size_t)snprintf(big + n, sizeof big - n, "    - S%dUSDT\n", i);
    assert_true(n < sizeof big - 1);
    expect_error(big, "t.yaml:1027:7: ", "more than 1024 items");
  }

  assert_int_equal(config_interval_valid("1m"), 1);
  assert_int_equal(config_interval_valid("1M"), 1);
  assert_int_equal(config_interval_valid("1H"), 0);
  assert_int_equal(config_interval_valid("2m"), 0);
  assert_int_equal(config_interval_valid(NULL), 0);
  assert_true(config_interval_ms("1s") == 1000);
  assert_true(config_interval_ms("1m") == 60000);
  assert_true(config_interval_ms("4h") == 14400000);
  assert_true(config_interval_ms("1w") == 604800000LL);
  assert_true(config_interval_ms("1M") == 0);
  assert_true(config_interval_ms("1H") == 0);
}

static void test_ranges(void **state) {
  (void)state;
  expect_error("database:\n  port: 70000\n", "t.yaml:2:9: ",
               "database.port must be between 1 and 65535, got '70000'");
  expect_error("redis:\n  port: 0\n", "t.yaml:2:9: ", "between 1 and 65535");
  expect_error("binance:\n  max_streams_per_connection: 1025\n",
               "t.yaml:2:31: ", "between 1 and 1024");
  expect_error("sync:\n  batch_size: 1001\n",
               "t.yaml:2:15: ", "between 1 and 1000");
  expect_error("binance:\n  depth_snapshot_limit: 5001\n",
               "t.yaml:2:25: ", "between 1 and 5000");
  expect_error("stream:\n  ping_interval: -1\n",
               "t.yaml:2:18: ", "between 1 and");
  expect_error("database:\n  port: 99999999999999999999999\n",
               "t.yaml:2:9: ", "between 1 and 65535");
  expect_error("binance:\n  depth_levels: 2000\n",
               "t.yaml:2:17: ", "exceeds binance.depth_snapshot_limit");
  expect_error("binance:\n  depth_snapshot_limit: 10\n",
               "t.yaml:2:25: ", "binance.depth_levels (20) exceeds");
  expect_error("binance:\n  ws_url: https://x\n",
               "t.yaml:2:11: ", "ws:// or wss://");
  expect_error("binance:\n  api_url: wss://x\n",
               "t.yaml:2:12: ", "http:// or https://");
  expect_error("http:\n  listen: localhost\n",
               "t.yaml:2:11: ", "expected host:port");
  expect_error("http:\n  listen: \"127.0.0.1:0\"\n",
               "t.yaml:2:11: ", "expected host:port");
  expect_error("database:\n  ssl_mode: Require\n",
               "t.yaml:2:13: ", "unknown ssl mode 'Require'");
  expect_error("app:\n  log_level: verbose\n",
               "t.yaml:2:14: ", "unknown log level 'verbose'");
  expect_error("database:\n  host: \"\"\n",
               "t.yaml:2:9: ", "database.host must not be empty");
  expect_error("app:\n  name: \"a\\0b\"\n", "t.yaml:2:9: ", "NUL byte");
  assert_int_equal(load("http:\n  listen: \"[::1]:8080\"\n"), 0);
}

static void test_not_yaml(void **state) {
  (void)state;
  expect_error("[unclosed\n", "t.yaml:2:1: ", "invalid YAML");
  expect_error("a: b\n c: d\n  - e\n", "t.yaml:", "invalid YAML");
  expect_error("app:\n  name: \"x\n", "t.yaml:", "invalid YAML");
  {
    static const char junk[] = "app:\n  name: \x01\x02\xff\xfe";
    int rv = config_load_string(&cfg, junk, sizeof junk - 1, "t.yaml", NULL,
                                err, sizeof err);
    assert_int_equal(rv, BL_ECONFIG);
    assert_non_null(strstr(err, "t.yaml:2:9: not a YAML text"));
  }
  {
    static const char nul[] = "app:\0\0\0";
    int rv = config_load_string(&cfg, nul, sizeof nul - 1, "t.yaml", NULL, err,
                                sizeof err);
    assert_int_equal(rv, BL_ECONFIG);
    assert_non_null(strstr(err, "t.yaml:1:5: "));
  }
  expect_error("app: {}\n---\ndatabase: {}\n",
               "t.yaml:2:1: ", "more than one YAML document");
}

static void test_keys(void **state) {
  (void)state;
  assert_int_equal(load("database:\n  hots: x\n  port: 5432\n"), 0);
  assert_non_null(warnings);
  assert_non_null(
      strstr(warnings, "t.yaml:2:3: warning: unknown key 'database.hots'"));
  config_free(&cfg);
  expect_error("database:\n  port: 1\n  port: 2\n",
               "t.yaml:3:3: ", "duplicate key 'database.port'");
  expect_error("app: {}\napp: {}\n", "t.yaml:2:1: ", "duplicate key 'app'");
  expect_error("app:\n  [a]: 1\n", "t.yaml:2:3: ", "must be strings");
  assert_int_equal(load("redis:\n  pool_size: 10\n"), 0);
  assert_non_null(strstr(warnings, "t.yaml:2:3: warning: key "
                                   "'redis.pool_size' is ignored"));
}

static void test_go_original(void **state) {
  (void)state;
  assert_int_equal(load_path("t/data/config/go-original.yaml"), 0);
  assert_string_equal(cfg.app.name, "binance-live-collector");
  assert_int_equal(cfg.binance.rest_rate_limit, 1200);
  assert_int_equal(cfg.binance.n_kline_intervals, 6);
  assert_string_equal(cfg.database.password, "postgres");
  assert_string_equal(cfg.database.ssl_mode, "disable");
  assert_int_equal(cfg.stream.reconnect_delay, 5);
  assert_int_equal(cfg.stream.max_reconnect_attempts, 10);
  assert_non_null(warnings);
  assert_non_null(strstr(warnings, "go-original.yaml:27:3: warning: key "
                                   "'database.max_connections' is ignored"));
  assert_non_null(strstr(warnings, "'database.max_idle_connections' is "
                                   "ignored"));
  assert_non_null(strstr(warnings, "'database.connection_max_lifetime' is "
                                   "ignored"));
  assert_non_null(strstr(warnings, "'redis.pool_size' is ignored"));
  assert_null(strstr(warnings, "unknown key"));
  assert_null(strstr(warnings, "not set"));
  config_free(&cfg);
  /* Its ${POSTGRES_HOST:localhost} takes the environment's value. */
  setenv("POSTGRES_HOST", "pg.internal", 1);
  assert_int_equal(load_path("t/data/config/go-original.yaml"), 0);
  assert_string_equal(cfg.database.host, "pg.internal");
}

static void test_dump_masks(void **state) {
  char *out = NULL;
  size_t outlen = 0;
  FILE *f;
  struct config again;
  (void)state;
  log_set_sink(capture, NULL);
  assert_int_equal(load("database:\n  password: hunter2\n"
                        "redis:\n  password: \"pw-redis\"\n"
                        "binance:\n  kline_intervals: [1m, 1M]\n"
                        "app:\n  name: \"quo\\\"te\"\n"),
                   0);
  f = open_memstream(&out, &outlen);
  assert_non_null(f);
  assert_int_equal(config_dump_yaml(&cfg, f), 0);
  fclose(f);
  assert_null(strstr(out, "hunter2"));
  assert_null(strstr(out, "pw-redis"));
  assert_non_null(strstr(out, "  password: \"********\"\n"));
  assert_non_null(strstr(out, "database:\n  host: \"localhost\"\n"));
  /* Keys in the table's order. */
  assert_true(strstr(out, "app:") < strstr(out, "binance:"));
  assert_true(strstr(out, "binance:") < strstr(out, "database:"));
  assert_true(strstr(out, "database:") < strstr(out, "redis:"));
  assert_true(strstr(out, "redis:") < strstr(out, "sync:"));
  assert_true(strstr(out, "stream:") < strstr(out, "http:"));
  assert_true(strstr(out, "symbols:") < strstr(out, "spool:"));
  /* The dump is YAML that loads back to the same values. */
  memset(&again, 0, sizeof again);
  assert_int_equal(
      config_load_string(&again, out, outlen, "dump", NULL, err, sizeof err),
      0);
  assert_string_equal(again.app.name, "quo\"te");
  assert_int_equal(again.binance.n_kline_intervals, 2);
  assert_string_equal(again.binance.kline_intervals[1], "1M");
  assert_int_equal(again.database.port, cfg.database.port);
  assert_null(again.binance.ca_file);
  config_free(&again);
  free(out);
  /* The passwords were registered as secrets with the logger. */
  log_info("t", "connecting with hunter2 and pw-redis");
  assert_null(strstr(logged, "hunter2"));
  assert_null(strstr(logged, "pw-redis"));
  assert_non_null(strstr(logged, "********"));
}

static void test_files(void **state) {
  char path[] = "/tmp/test_config_XXXXXX";
  char prefix[64];
  int fd;
  (void)state;
  assert_int_equal(load_path("/nonexistent/dir/x.yaml"), BL_EIO);
  assert_non_null(strstr(err, "/nonexistent/dir/x.yaml: "));
  assert_non_null(strstr(err, "No such file or directory"));

  fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  snprintf(prefix, sizeof prefix, "%s:2:1: invalid YAML", path);
  write_file(path, "[unclosed\n", 10);
  assert_int_equal(load_path(path), BL_ECONFIG);
  assert_non_null(strstr(err, prefix));

  write_file(path,
             "\x7f"
             "ELF\x02\x01\x01\x00\x00\x00",
             10);
  assert_int_equal(load_path(path), BL_ECONFIG);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "not a YAML text"));

  write_file(path, "database:\n  port: \"5433\"\n", 25);
  setenv("BINANCE_LIVE_CONFIG", path, 1);
  assert_int_equal(load_path(NULL), 0);
  assert_int_equal(cfg.database.port, 5433);
  assert_string_equal(cfg.path, path);
  config_free(&cfg);
  unsetenv("BINANCE_LIVE_CONFIG");

  /* The default file of the repository loads without a warning. */
  assert_int_equal(load_path("conf/binance-live.yaml"), 0);
  assert_int_equal(warnings_len, 0);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_values_and_nulls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_substitution, setup, teardown),
      cmocka_unit_test_setup_teardown(test_substitution_errors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_value, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scalar_where_map, setup, teardown),
      cmocka_unit_test_setup_teardown(test_intervals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_yaml, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_go_original, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dump_masks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_files, setup, teardown),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
