/*
 * test_pg.c: unit tests for the I/O-free parts of sink/pgconn, sink/pg and
 * sink/migrate: back-off and jitter, which SQLSTATEs mean a lost session,
 * LISTEN quoting, libpq host/hostaddr lists, migration file names, error
 * line numbers, checksums; and pg's queue bounds and close path on a loop
 * without any server (nothing is started, so no socket is touched).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <uv.h>

#include "core/err.h"
#include "sink/migrate.h"
#include "sink/pg.h"
#include "sink/pgconn.h"

static void backoff_doubles_to_max(void **state) {
  (void)state;
  assert_int_equal(pg_backoff_next(0, 100, 10000), 100);
  assert_int_equal(pg_backoff_next(100, 100, 10000), 200);
  assert_int_equal(pg_backoff_next(6400, 100, 10000), 10000);
  assert_int_equal(pg_backoff_next(10000, 100, 10000), 10000);
  assert_int_equal(pg_backoff_next(4000000000u, 100, 4000000000u), 4000000000u);
}

static void jitter_stays_in_half_to_full(void **state) {
  uint32_t r;
  (void)state;
  for (r = 0; r < 5000; r += 7) {
    unsigned d = pg_backoff_jitter(1000, r * 2654435761u);
    assert_true(d >= 500 && d <= 1000);
  }
  assert_int_equal(pg_backoff_jitter(0, 12345), 0);
  assert_int_equal(pg_backoff_jitter(1, 0), 0);
}

static void link_errors_are_classified(void **state) {
  (void)state;
  assert_true(pg_sqlstate_is_link_error("57P01"));  /* admin shutdown */
  assert_true(pg_sqlstate_is_link_error("57P02"));  /* crash shutdown */
  assert_true(pg_sqlstate_is_link_error("57P03"));  /* cannot connect now */
  assert_true(pg_sqlstate_is_link_error("08006"));  /* connection failure */
  assert_false(pg_sqlstate_is_link_error("57014")); /* query canceled */
  assert_false(pg_sqlstate_is_link_error("23505")); /* unique violation */
  assert_false(pg_sqlstate_is_link_error("22P02"));
  assert_false(pg_sqlstate_is_link_error(""));
  assert_false(pg_sqlstate_is_link_error(NULL));
}

static void listen_sql_quotes_the_channel(void **state) {
  char out[160];
  char long_name[80];
  (void)state;
  assert_int_equal(pg_listen_sql("symbols", out, sizeof(out)), 0);
  assert_string_equal(out, "LISTEN \"symbols\"");
  assert_int_equal(pg_listen_sql("a\"b", out, sizeof(out)), 0);
  assert_string_equal(out, "LISTEN \"a\"\"b\"");
  assert_int_equal(pg_listen_sql("", out, sizeof(out)), BL_EINVAL);
  memset(long_name, 'x', 64);
  long_name[64] = '\0';
  assert_int_equal(pg_listen_sql(long_name, out, sizeof(out)), BL_EINVAL);
  assert_int_equal(pg_listen_sql("abc", out, 8), BL_EINVAL);
}

static void addr_lists_pair_host_and_hostaddr(void **state) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  struct addrinfo i4, i6;
  char hosts[256], addrs[256];
  (void)state;
  memset(&i4, 0, sizeof(i4));
  memset(&i6, 0, sizeof(i6));
  uv_ip4_addr("127.0.0.1", 5432, &a4);
  uv_ip6_addr("::1", 5432, &a6);
  i6.ai_family = AF_INET6;
  i6.ai_addr = (struct sockaddr *)&a6;
  i6.ai_next = &i4;
  i4.ai_family = AF_INET;
  i4.ai_addr = (struct sockaddr *)&a4;
  assert_int_equal(pgconn_addr_lists("db.example", &i6, hosts, sizeof(hosts),
                                     addrs, sizeof(addrs)),
                   2);
  assert_string_equal(addrs, "::1,127.0.0.1");
  assert_string_equal(hosts, "db.example,db.example");
  assert_int_equal(
      pgconn_addr_lists("x", NULL, hosts, sizeof(hosts), addrs, sizeof(addrs)),
      BL_ENOTFOUND);
  assert_int_equal(pgconn_addr_lists("x", &i6, hosts, sizeof(hosts), addrs, 6),
                   BL_ETOOBIG);
}

static void oneline_folds_libpq_messages(void **state) {
  char s[] = "connection failed: refused\n\tIs the server running?\n";
  (void)state;
  pgconn_oneline(s);
  assert_string_equal(s, "connection failed: refused Is the server running?");
}

static void migration_names(void **state) {
  (void)state;
  assert_true(migrate_name_ok("001_init.sql"));
  assert_true(migrate_name_ok("20240101_add-index.v2.sql"));
  assert_false(migrate_name_ok("init.sql"));
  assert_false(migrate_name_ok("001init.sql"));
  assert_false(migrate_name_ok("001_init.sql~"));
  assert_false(migrate_name_ok("001_in it.sql"));
  assert_false(migrate_name_ok("001_x'y.sql")); /* goes into a literal */
  assert_false(migrate_name_ok("_x.sql"));
}

static void error_line_counts_characters(void **state) {
  const char *sql = "-- é comment\nSELECT 1;\n\nSELECT nope;\n";
  (void)state;
  assert_int_equal(migrate_line_of(sql, strlen(sql), 1), 1);
  /* "-- é comment\n" is 13 characters (14 bytes); S of line 2 is 14th. */
  assert_int_equal(migrate_line_of(sql, strlen(sql), 13), 1);
  assert_int_equal(migrate_line_of(sql, strlen(sql), 14), 2);
  assert_int_equal(migrate_line_of(sql, strlen(sql), 24), 3);
  assert_int_equal(migrate_line_of(sql, strlen(sql), 25), 4);
  assert_int_equal(migrate_line_of(sql, strlen(sql), 0), 0);
  assert_int_equal(migrate_line_of(sql, strlen(sql), 1000), 0);
}

static void checksum_is_sha256_hex(void **state) {
  char out[65];
  (void)state;
  migrate_sha256_hex("abc", 3, out);
  assert_string_equal(
      out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  migrate_sha256_hex("", 0, out);
  assert_string_equal(
      out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- pg queue bounds and close without a server ---- */

static int cb_calls, cb_last_status, closed;

static void count_cb(struct pg_op *op, int status, PGresult *res,
                     const char *err) {
  (void)op;
  (void)err;
  assert_null(res);
  cb_calls++;
  cb_last_status = status;
}

static void pg_closed(struct pg *pg) {
  (void)pg;
  closed++;
}

static void queue_bounds_and_cancel_on_close(void **state) {
  uv_loop_t loop;
  struct pg pg;
  struct pg_opts o;
  struct pg_op ops[5], big;
  const char *vals[1] = {"0123456789"};
  const char *bigvals[1];
  static char bigtext[2000];
  int i;
  (void)state;

  memset(&o, 0, sizeof(o));
  o.conn.host = "127.0.0.1";
  o.max_ops = 4;
  o.max_bytes = 1024;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(pg_init(&loop, &pg, &o), 0);
  memset(ops, 0, sizeof(ops));
  for (i = 0; i < 5; i++) {
    ops[i].stmt = "s";
    ops[i].nparams = 1;
    ops[i].values = vals;
    ops[i].cb = count_cb;
  }
  for (i = 0; i < 4; i++)
    assert_int_equal(pg_submit(&pg, &ops[i]), 0);
  assert_int_equal(pg_submit(&pg, &ops[4]), BL_EFULL);
  assert_int_equal(pg_pending(&pg), 4);
  assert_false(pg_is_up(&pg));

  memset(&big, 0, sizeof(big));
  memset(bigtext, 'x', sizeof(bigtext) - 1);
  bigvals[0] = bigtext;
  big.stmt = "s";
  big.nparams = 1;
  big.values = bigvals;
  big.cb = count_cb;
  assert_int_equal(pg_submit(&pg, &big), BL_ETOOBIG);
  big.cb = NULL;
  assert_int_equal(pg_submit(&pg, &big), BL_EINVAL);

  cb_calls = 0;
  closed = 0;
  pg_close(&pg, 0, pg_closed);
  /* Every held op is canceled exactly once, at once. */
  assert_int_equal(cb_calls, 4);
  assert_int_equal(cb_last_status, BL_ECANCELED);
  assert_int_equal(pg_submit(&pg, &ops[4]), BL_ESTATE);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(backoff_doubles_to_max),
      cmocka_unit_test(jitter_stays_in_half_to_full),
      cmocka_unit_test(link_errors_are_classified),
      cmocka_unit_test(listen_sql_quotes_the_channel),
      cmocka_unit_test(addr_lists_pair_host_and_hostaddr),
      cmocka_unit_test(oneline_folds_libpq_messages),
      cmocka_unit_test(migration_names),
      cmocka_unit_test(error_line_counts_characters),
      cmocka_unit_test(checksum_is_sha256_hex),
      cmocka_unit_test(queue_bounds_and_cancel_on_close),
  };
  return cmocka_run_group_tests_name("pg", tests, NULL, NULL);
}
