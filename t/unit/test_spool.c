/*
 * test_spool.c: sink/spool on a real loop and a temporary directory:
 * round trip in order (also while appending), segment roll and deletion,
 * replay after reopening, torn tails cut at every byte of the last record,
 * flipped bytes in the middle, max_bytes refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/spool.h"

struct fx {
  uv_loop_t loop;
  struct spool sp;
  char dir[256];
  int closed;
};

static void rm_dir_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[600];
  if (!d)
    return;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  closedir(d);
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, "spool-", 6))
      n++;
  closedir(d);
  return n;
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s/bl-spool-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  rm_dir_files(f->dir);
  rmdir(f->dir);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void sp_open(struct fx *f, uint64_t max_bytes, uint64_t seg_bytes) {
  struct spool_opts o;
  memset(&o, 0, sizeof o);
  o.dir = f->dir;
  o.max_bytes = max_bytes;
  o.segment_bytes = seg_bytes;
  o.sync_ms = 50;
  f->closed = 0;
  assert_int_equal(spool_open(&f->loop, &f->sp, &o, NULL), 0);
  f->sp.data = f;
}

static void sp_closed(struct spool *sp) {
  struct fx *f = sp->data;
  f->closed = 1;
}

static void sp_close(struct fx *f) {
  spool_close(&f->sp, sp_closed);
  for (int i = 0; i < 100000 && !f->closed; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(f->closed);
}

/* Runs the loop until everything appended is on disk. */
static void settle(struct fx *f) {
  for (int i = 0; i < 100000; i++) {
    if (!f->sp.pend.len && f->sp.fly_off == f->sp.fly.len && !f->sp.wbusy)
      return;
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  fail_msg("the writer did not settle");
}

static void row_text(int i, char *out, size_t cap, size_t *len) {
  int n = snprintf(out, cap, "row-%d-%.*s", i, i % 37,
                   "abcdefghijklmnopqrstuvwxyz0123456789x");
  *len = (size_t)n;
}

static void append(struct fx *f, int i, int table) {
  char r[128];
  size_t len;
  row_text(i, r, sizeof r, &len);
  assert_int_equal(spool_append(&f->sp, table, r, len), 0);
}

/* Reads rows until the spool is empty (or |max| rows); each must be row
 * |expect[k]| (or first+k when |expect| is NULL). Returns the count. */
static int drain(struct fx *f, int first, const int *expect, int max) {
  int n = 0;
  for (int spins = 0; spins < 200000; spins++) {
    int table;
    const char *row;
    size_t len;
    if (n == max)
      return n;
    if (spool_peek(&f->sp, &table, &row, &len) == 0) {
      char want[128];
      size_t wl;
      int id = expect ? expect[n] : first + n;
      row_text(id, want, sizeof want, &wl);
      if (len != wl || memcmp(row, want, wl))
        fail_msg("row %d: got '%.*s', want '%s'", n, (int)len, row, want);
      spool_pop(&f->sp);
      n++;
      continue;
    }
    if (spool_is_empty(&f->sp))
      return n;
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  fail_msg("drain did not finish after %d rows", n);
  return n;
}

/* Runs the loop until every consumed segment is deleted. */
static void wait_gc(struct fx *f) {
  for (int i = 0; i < 100000 && f->sp.nsegs; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->sp.nsegs, 0);
}

static void t_crc(void **state) {
  (void)state;
  /* The standard CRC-32C check value. */
  assert_int_equal(spool_crc32c(0, "123456789", 9), 0xe3069283u);
}

static void t_round_trip(void **state) {
  struct fx *f = *state;
  sp_open(f, 0, 0);
  assert_true(spool_is_empty(&f->sp));
  for (int i = 0; i < 1000; i++)
    append(f, i, i % 4 == 3 ? 1 : 0);
  assert_false(spool_is_empty(&f->sp));
  assert_int_equal(drain(f, 0, NULL, 400), 400);
  /* Rows appended while replaying come behind. */
  for (int i = 1000; i < 1500; i++)
    append(f, i, 2);
  assert_int_equal(drain(f, 400, NULL, -1), 1100);
  assert_true(spool_is_empty(&f->sp));
  assert_int_equal(f->sp.stats.rows_in, 1500);
  assert_int_equal(f->sp.stats.rows_replayed, 1500);
  assert_int_equal(f->sp.stats.corrupt_bytes, 0);
  assert_true(f->sp.stats.records_written < 1500); /* rows share records */
  wait_gc(f);
  assert_int_equal(spool_bytes(&f->sp), 0);
  {
    struct buf m;
    buf_init(&m, 1 << 20);
    spool_collect(&m, &f->sp);
    assert_non_null(strstr(m.data, "binance_live_spool_bytes 0\n"));
    assert_non_null(strstr(
        m.data, "binance_live_spool_rows_total{op=\"replayed\"} 1500\n"));
    assert_non_null(
        strstr(m.data, "binance_live_spool_rows_total{op=\"refused\"} 0\n"));
    assert_non_null(
        strstr(m.data, "binance_live_spool_corrupt_bytes_total 0\n"));
    buf_free(&m);
  }
  sp_close(f);
  assert_int_equal(count_files(f->dir), 0);
}

static void t_roll_and_reopen(void **state) {
  struct fx *f = *state;
  sp_open(f, 0, 4096);
  for (int i = 0; i < 3000; i++) {
    append(f, i, 1);
    if (i % 100 == 99)
      settle(f); /* several writes, so segments can roll */
  }
  settle(f);
  assert_true(count_files(f->dir) >= 10);
  sp_close(f);
  assert_true(count_files(f->dir) >= 10);
  /* A new start replays everything, then deletes the consumed files. */
  sp_open(f, 0, 4096);
  assert_false(spool_is_empty(&f->sp));
  append(f, 3000, 3); /* new rows go behind the old ones */
  assert_int_equal(drain(f, 0, NULL, -1), 3001);
  assert_true(spool_is_empty(&f->sp));
  wait_gc(f);
  assert_int_equal(count_files(f->dir), 0);
  sp_close(f);
  assert_int_equal(count_files(f->dir), 0);
}

/* Writes rows 0..n-1, each in a record of its own (alternating tables),
 * closes, and returns the segment's bytes and the record offsets. */
static size_t write_records(struct fx *f, int n, char **data, size_t *offs) {
  char path[600];
  FILE *fp;
  long sz;
  size_t at = 0;
  sp_open(f, 0, 0);
  for (int i = 0; i < n; i++) {
    append(f, i, i % 2);
    settle(f);
  }
  sp_close(f);
  assert_int_equal(count_files(f->dir), 1);
  snprintf(path, sizeof path, "%s/spool-00000001.log", f->dir);
  fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  sz = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  *data = malloc((size_t)sz);
  assert_int_equal(fread(*data, 1, (size_t)sz, fp), (size_t)sz);
  fclose(fp);
  for (int i = 0; i < n; i++) {
    long r = spool_record_check(*data + at, (size_t)sz - at);
    assert_true(r > 0);
    offs[i] = at;
    at += (size_t)r;
  }
  offs[n] = at;
  assert_int_equal(at, (size_t)sz);
  return (size_t)sz;
}

static void put_file(struct fx *f, const char *data, size_t len) {
  char path[600];
  FILE *fp;
  rm_dir_files(f->dir);
  snprintf(path, sizeof path, "%s/spool-00000001.log", f->dir);
  fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  fclose(fp);
}

static void t_torn_tail(void **state) {
  struct fx *f = *state;
  enum { N = 12 };
  size_t offs[N + 1];
  char *data;
  write_records(f, N, &data, offs);
  for (size_t cut = offs[N - 1]; cut < offs[N]; cut++) {
    put_file(f, data, cut);
    sp_open(f, 0, 0);
    assert_int_equal(drain(f, 0, NULL, -1), N - 1);
    assert_int_equal(f->sp.stats.corrupt_bytes, cut - offs[N - 1]);
    assert_int_equal(f->sp.stats.torn_tails, cut > offs[N - 1] ? 1 : 0);
    wait_gc(f);
    assert_int_equal(count_files(f->dir), 0);
    sp_close(f);
  }
  free(data);
}

static void t_flipped_middle(void **state) {
  struct fx *f = *state;
  enum { N = 12 };
  size_t offs[N + 1];
  char *data;
  int expect[N];
  write_records(f, N, &data, offs);
  for (int k = 0, n = 0; k < N; k++)
    if (k != 5)
      expect[n++] = k;
  /* A flipped byte in the magic, the length, the CRC, the table byte, a
   * row length and the row text of record 5: it alone is skipped. */
  size_t where[] = {0, 1, 5, 9, 12, 13, 20, offs[6] - offs[5] - 1};
  for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
    char *copy = malloc(offs[N]);
    memcpy(copy, data, offs[N]);
    copy[offs[5] + where[w]] ^= 0x5a;
    put_file(f, copy, offs[N]);
    free(copy);
    sp_open(f, 0, 0);
    assert_int_equal(drain(f, 0, expect, -1), N - 1);
    assert_int_equal(f->sp.stats.corrupt_bytes, offs[6] - offs[5]);
    assert_int_equal(f->sp.stats.torn_tails, 0);
    sp_close(f);
  }
  /* Garbage between two records is skipped too. */
  {
    size_t glen = 333;
    char *copy = malloc(offs[N] + glen);
    memcpy(copy, data, offs[3]);
    for (size_t i = 0; i < glen; i++)
      copy[offs[3] + i] = (char)(i * 7 + 1);
    memcpy(copy + offs[3] + glen, data + offs[3], offs[N] - offs[3]);
    put_file(f, copy, offs[N] + glen);
    free(copy);
    sp_open(f, 0, 0);
    assert_int_equal(drain(f, 0, NULL, -1), N);
    assert_int_equal(f->sp.stats.corrupt_bytes, glen);
    sp_close(f);
  }
  free(data);
}

static void t_max_bytes(void **state) {
  struct fx *f = *state;
  int accepted = 0, refused = 0;
  char r[128];
  size_t len;
  sp_open(f, 2000, 0);
  for (int i = 0; i < 200; i++) {
    int rv;
    row_text(accepted, r, sizeof r, &len);
    rv = spool_append(&f->sp, 0, r, len);
    if (rv == 0)
      accepted++;
    else {
      assert_int_equal(rv, BL_EFULL);
      refused++;
    }
    assert_true(spool_bytes(&f->sp) <= 2000);
    if (i % 10 == 0)
      settle(f);
  }
  assert_true(accepted > 20);
  assert_true(refused > 50);
  assert_int_equal(f->sp.stats.rows_refused, (uint64_t)refused);
  settle(f);
  assert_true(spool_bytes(&f->sp) <= 2000);
  /* Every accepted row comes back; then there is room again. */
  assert_int_equal(drain(f, 0, NULL, -1), accepted);
  wait_gc(f);
  row_text(accepted, r, sizeof r, &len);
  assert_int_equal(spool_append(&f->sp, 0, r, len), 0);
  assert_int_equal(drain(f, accepted, NULL, -1), 1);
  sp_close(f);
}

/* With manual_release, a consumed segment stays until released. */
static void t_manual_release(void **state) {
  struct fx *f = *state;
  struct spool_opts o;
  memset(&o, 0, sizeof o);
  o.dir = f->dir;
  o.segment_bytes = 4096;
  o.manual_release = 1;
  assert_int_equal(spool_open(&f->loop, &f->sp, &o, NULL), 0);
  f->sp.data = f;
  for (int i = 0; i < 600; i++) {
    append(f, i, 0);
    if (i % 50 == 49)
      settle(f);
  }
  settle(f);
  {
    int n = count_files(f->dir);
    uint32_t first;
    int table;
    const char *row;
    size_t len;
    assert_true(n >= 4);
    while (spool_peek(&f->sp, &table, &row, &len))
      uv_run(&f->loop, UV_RUN_ONCE);
    first = spool_peek_seg(&f->sp);
    assert_int_equal(first, 1);
    assert_int_equal(drain(f, 0, NULL, -1), 600);
    for (int i = 0; i < 50; i++)
      uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(count_files(f->dir), n); /* nothing released yet */
    spool_release(&f->sp, 2);
    for (int i = 0; i < 1000 && count_files(f->dir) > n - 2; i++)
      uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(count_files(f->dir), n - 2);
    spool_release(&f->sp, UINT32_MAX);
    wait_gc(f);
    assert_int_equal(count_files(f->dir), 0);
  }
  sp_close(f);
}

static void t_check_pure(void **state) {
  char rec[64];
  uint32_t magic = SPOOL_MAGIC, len = 1 + 4 + 3, crc, rl = 3;
  (void)state;
  memset(rec, 0, sizeof rec);
  memcpy(rec, &magic, 4);
  memcpy(rec + 4, &len, 4);
  rec[12] = 2;
  memcpy(rec + 13, &rl, 4);
  memcpy(rec + 17, "abc", 3);
  crc = spool_crc32c(0, rec + 12, len);
  memcpy(rec + 8, &crc, 4);
  assert_int_equal(spool_record_check(rec, 20), 20);
  for (size_t n = 0; n < 20; n++)
    assert_int_equal(spool_record_check(rec, n), 0);
  /* A row length that overruns the body, with a matching CRC. */
  rl = 4;
  memcpy(rec + 13, &rl, 4);
  crc = spool_crc32c(0, rec + 12, len);
  memcpy(rec + 8, &crc, 4);
  assert_int_equal(spool_record_check(rec, 20), BL_ECORRUPT);
  assert_int_equal(spool_record_check("SPOX", 4), BL_ECORRUPT);
  assert_int_equal(spool_record_check("X", 1), BL_ECORRUPT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_crc),
      cmocka_unit_test(t_check_pure),
      cmocka_unit_test_setup_teardown(t_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(t_roll_and_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(t_torn_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(t_flipped_middle, setup, teardown),
      cmocka_unit_test_setup_teardown(t_max_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(t_manual_release, setup, teardown),
  };
  log_setup(BL_LOG_ERROR, BL_LOG_TEXT, "test_spool", "test");
  return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
