/*
 * test_strmap.c: unit tests for core/strmap: put/get/replace/delete,
 * growth through many keys, keys that are prefixes of each other or differ
 * in one byte anywhere, how the hash spreads symbol names, the entry
 * limit, iteration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/strmap.h"

static void basic(void **state) {
  struct strmap m;
  int a = 1, b = 2;
  (void)state;
  strmap_init(&m, 100);
  assert_null(strmap_get(&m, "BTCUSDT"));
  assert_int_equal(strmap_put(&m, "BTCUSDT", &a), 0);
  assert_int_equal(strmap_put(&m, "ETHUSDT", &b), 0);
  assert_ptr_equal(strmap_get(&m, "BTCUSDT"), &a);
  assert_int_equal(strmap_put(&m, "BTCUSDT", &b), 0);
  assert_ptr_equal(strmap_get(&m, "BTCUSDT"), &b);
  assert_int_equal(m.count, 2);
  assert_ptr_equal(strmap_del(&m, "BTCUSDT"), &b);
  assert_null(strmap_get(&m, "BTCUSDT"));
  assert_ptr_equal(strmap_get(&m, "ETHUSDT"), &b);
  assert_int_equal(m.count, 1);
  strmap_free(&m);
}

static void many_keys_and_churn(void **state) {
  struct strmap m;
  char key[32];
  static int values[5000];
  (void)state;
  strmap_init(&m, 10000);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 5000; i++) {
      snprintf(key, sizeof key, "SYM%05dUSDT", i);
      values[i] = i;
      assert_int_equal(strmap_put(&m, key, &values[i]), 0);
    }
    for (int i = 0; i < 5000; i += 2) {
      snprintf(key, sizeof key, "SYM%05dUSDT", i);
      assert_ptr_equal(strmap_del(&m, key), &values[i]);
    }
    for (int i = 0; i < 5000; i++) {
      snprintf(key, sizeof key, "SYM%05dUSDT", i);
      if (i % 2)
        assert_ptr_equal(strmap_get(&m, key), &values[i]);
      else
        assert_null(strmap_get(&m, key));
    }
  }
  assert_int_equal(m.count, 2500);
  assert_true(m.cap <= 16384); /* tombstones do not grow it forever */
  strmap_free(&m);
}

/* Every key a prefix of the next (lengths 0..40), and keys that differ
 * from one another in a single byte at any position: each keeps its own
 * value, so every byte of a key, in whole words and in the tail, counts. */
static void prefixes_and_single_bytes(void **state) {
  struct strmap m;
  static char keys[41 + 40][48];
  static int values[41 + 40];
  const char *base = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno";
  int n = 0;
  (void)state;
  strmap_init(&m, 1000);
  for (int len = 0; len <= 40; len++, n++)
    snprintf(keys[n], sizeof keys[n], "%.*s", len, base);
  for (int pos = 0; pos < 40; pos++, n++) {
    snprintf(keys[n], sizeof keys[n], "%s", base);
    keys[n][pos] = '#';
  }
  for (int i = 0; i < n; i++) {
    values[i] = i;
    assert_int_equal(strmap_put(&m, keys[i], &values[i]), 0);
  }
  assert_int_equal(m.count, n);
  for (int i = 0; i < n; i++)
    assert_ptr_equal(strmap_get(&m, keys[i]), &values[i]);
  strmap_free(&m);
}

/* Symbol-like keys land on distinct home slots about as often as random
 * ones would (5,000 keys in 8,192 slots: about 3,740). */
static void hash_spreads_symbols(void **state) {
  struct strmap m;
  char key[32], *home;
  size_t distinct = 0;
  static int v;
  (void)state;
  strmap_init(&m, 10000);
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "a:SYM%04dUSDT", i);
    assert_int_equal(strmap_put(&m, key, &v), 0);
  }
  assert_int_equal(m.cap, 8192);
  home = calloc(m.cap, 1);
  assert_non_null(home);
  for (size_t i = 0; i < m.cap; i++)
    if (m.slots[i].key) {
      size_t h = m.slots[i].hash & (m.cap - 1);
      distinct += !home[h];
      home[h] = 1;
    }
  free(home);
  assert_true(distinct >= 3400);
  strmap_free(&m);
}

static void limit_refuses(void **state) {
  struct strmap m;
  int v;
  (void)state;
  strmap_init(&m, 2);
  assert_int_equal(strmap_put(&m, "A", &v), 0);
  assert_int_equal(strmap_put(&m, "B", &v), 0);
  assert_int_equal(strmap_put(&m, "C", &v), BL_EFULL);
  assert_int_equal(strmap_put(&m, "A", NULL), 0); /* replace still ok */
  strmap_free(&m);
}

static void iterate(void **state) {
  struct strmap m;
  int v[3];
  size_t it = 0;
  const char *k;
  void *val;
  int seen = 0;
  (void)state;
  strmap_init(&m, 10);
  strmap_put(&m, "a", &v[0]);
  strmap_put(&m, "b", &v[1]);
  strmap_put(&m, "c", &v[2]);
  strmap_del(&m, "b");
  while (strmap_next(&m, &it, &k, &val)) {
    assert_true(!strcmp(k, "a") || !strcmp(k, "c"));
    seen++;
  }
  assert_int_equal(seen, 2);
  strmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(basic),
      cmocka_unit_test(many_keys_and_churn),
      cmocka_unit_test(prefixes_and_single_bytes),
      cmocka_unit_test(hash_spreads_symbols),
      cmocka_unit_test(limit_refuses),
      cmocka_unit_test(iterate),
  };
  return cmocka_run_group_tests_name("strmap", tests, NULL, NULL);
}
