/*
 * pg_pipeline.c: drives src/sink/pg against a real PostgreSQL for
 * t/integration/pg_pipeline.sh. One mode per run:
 *
 *   bulk       100 ops x 100 rows through unnest() arrays, more ops than
 *              max_ops (BL_EFULL + on_drain), each result checked against
 *              its own op's rows
 *   big        8 ops of 2 MiB each, the server slow to read them: PQflush
 *              returns 1 and the rest is written on POLLOUT
 *   violation  50 ops, one breaking a CHECK constraint and one with a bad
 *              array literal: only those two fail, with their SQLSTATE
 *   flood      N paced upsert ops (the script restarts the server meanwhile)
 *   terminate  the server kills our backend while ops are in flight: they
 *              are re-sent after the reconnect, a PG_OP_NORETRY op fails
 *   wait       one op submitted before the server is up (connection
 *              refused first): retried without blocking, then done
 *   listen     LISTEN on a channel needing quotes, NOTIFY from a second
 *              connection, payloads delivered in order; the listener's
 *              backend is killed and the LISTEN is back after the reconnect
 *   blackhole  the server address accepts TCP but never answers: the
 *              connect times out while a uv_timer keeps ticking
 *
 * Server coordinates come from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE.
 * Prints key=value facts on stdout, "FAIL: ..." on stderr, and exits 0
 * only if every check of the mode passed and uv_loop_close() returned 0.
 * The tables (pp_*) are created by the script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/pg.h"

#define MAXOPS 512

struct top {
  struct pg_op op;
  const char *vals[4];
  char *a, *b;
  long long expect;
  int idx;
  int done;
  int status;
  char sqlstate[6];
  long long got;
};

static uv_loop_t loop;
static struct pg pg, pg2;
static struct top ops[MAXOPS];
static int nops, next_submit, ndone, failures;
static uv_timer_t ticker, stopper;
static long ticks;
static int closed_count, npg = 1;
static const char *mode;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "FAIL: " __VA_ARGS__);                                     \
    fputc('\n', stderr);                                                       \
    failures++;                                                                \
  } while (0)

static void fill_opts(struct pg_opts *o, const char *appname) {
  const char *port = getenv("PGPORT");
  memset(o, 0, sizeof(*o));
  o->conn.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1";
  o->conn.port = port ? (int)strtol(port, NULL, 10) : 5432;
  o->conn.user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
  o->conn.password = getenv("PGPASSWORD");
  o->conn.dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres";
  o->conn.application_name = appname;
  o->conn.connect_timeout_ms = 5000;
}

static void on_closed(struct pg *p) {
  (void)p;
  closed_count++;
}

static void close_all(void) {
  uv_timer_stop(&ticker);
  if (!uv_is_closing((uv_handle_t *)&ticker))
    uv_close((uv_handle_t *)&ticker, NULL);
  if (!uv_is_closing((uv_handle_t *)&stopper))
    uv_close((uv_handle_t *)&stopper, NULL);
  /* Ops still held after 2 s are canceled (blackhole has one). */
  pg_close(&pg, 2000, on_closed);
  if (npg == 2)
    pg_close(&pg2, 2000, on_closed);
}

static void on_stopper(uv_timer_t *t) {
  (void)t;
  FAIL("%s: timed out (%d of %d ops done)", mode, ndone, nops);
  close_all();
}

static void op_cb(struct pg_op *op, int status, PGresult *res,
                  const char *err) {
  struct top *t = op->data;
  if (t->done)
    FAIL("op %d completed twice", t->idx);
  t->done = 1;
  t->status = status;
  memcpy(t->sqlstate, op->sqlstate, sizeof(t->sqlstate));
  if (status == 0 && res && PQresultStatus(res) == PGRES_TUPLES_OK &&
      PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    t->got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  if (status && strcmp(mode, "violation") != 0 &&
      strcmp(mode, "terminate") != 0)
    fprintf(stderr, "op %d failed: %s (%s)\n", t->idx, err ? err : "?",
            op->sqlstate);
  if (status && strcmp(mode, "violation") == 0)
    printf("failed_op=%d sqlstate=%s\n", t->idx, op->sqlstate);
  ndone++;
  if (ndone == nops)
    close_all();
}

/* Submits ops from next_submit on until the pipe is full. */
static void submit_more(void) {
  while (next_submit < nops) {
    int rv = pg_submit(&pg, &ops[next_submit].op);
    if (rv == BL_EFULL)
      return;
    if (rv) {
      FAIL("pg_submit: %s", bl_strerror(rv));
      next_submit++;
      continue;
    }
    next_submit++;
  }
}

static int saw_full, drains, ups, downs;
static void on_state(struct pg *p, int up) {
  (void)p;
  if (up)
    ups++;
  else
    downs++;
}

static void on_drain(struct pg *p) {
  (void)p;
  drains++;
  submit_more();
}

/* Row arrays for op |i|: names "k<i>_<j>" (or ids) and values. */
static void make_rows(struct top *t, int i, int rows, int text_keys,
                      long long base, int bad_at, const char *bad) {
  size_t cap = (size_t)rows * 32 + 16;
  size_t la = 0, lb = 0;
  int j;
  t->a = malloc(cap);
  t->b = malloc(cap);
  if (!t->a || !t->b)
    abort();
  t->a[la++] = '{';
  t->b[lb++] = '{';
  t->expect = 0;
  for (j = 0; j < rows; j++) {
    long long v = base + j;
    if (text_keys)
      la +=
          (size_t)snprintf(t->a + la, cap - la, "%sk%d_%d", j ? "," : "", i, j);
    else
      la += (size_t)snprintf(t->a + la, cap - la, "%s%lld", j ? "," : "",
                             (long long)i * rows + j);
    if (j == bad_at)
      lb += (size_t)snprintf(t->b + lb, cap - lb, "%s%s", j ? "," : "", bad);
    else
      lb += (size_t)snprintf(t->b + lb, cap - lb, "%s%lld", j ? "," : "", v);
    t->expect += v;
  }
  snprintf(t->a + la, cap - la, "}");
  snprintf(t->b + lb, cap - lb, "}");
  t->vals[0] = t->a;
  t->vals[1] = t->b;
  t->idx = i;
  t->op.nparams = 2;
  t->op.values = t->vals;
  t->op.cb = op_cb;
  t->op.data = t;
}

static void free_rows(void) {
  int i;
  for (i = 0; i < nops; i++) {
    free(ops[i].a);
    free(ops[i].b);
  }
}

static int finish(void) {
  int rv;
  uv_run(&loop, UV_RUN_DEFAULT);
  if (closed_count != npg)
    FAIL("close callbacks: %d of %d", closed_count, npg);
  rv = uv_loop_close(&loop);
  if (rv)
    FAIL("uv_loop_close: %s", uv_strerror(rv));
  printf("ops_ok=%llu ops_failed=%llu resent=%llu connects=%llu "
         "reconnects=%llu connect_failures=%llu notifications=%llu\n",
         (unsigned long long)pg.stats.ops_ok,
         (unsigned long long)pg.stats.ops_failed,
         (unsigned long long)pg.stats.ops_resent,
         (unsigned long long)pg.stats.connects,
         (unsigned long long)pg.stats.reconnects,
         (unsigned long long)pg.stats.connect_failures,
         (unsigned long long)pg2.stats.notifications + pg.stats.notifications);
  free_rows();
  printf("ups=%d downs=%d write_waits=%llu\n", ups, downs,
         (unsigned long long)pg.stats.write_waits);
  printf("failures=%d\n", failures);
  return failures ? 1 : 0;
}

static struct pg_stmt st_main, st_aux;

/* ---- bulk ---- */
static int run_bulk(void) {
  int i;
  pg_prepare(&pg, &st_main, "bulk_ins",
             "WITH ins AS (INSERT INTO pp_bulk(name, v) SELECT * FROM "
             "unnest($1::text[], $2::int8[]) RETURNING v) "
             "SELECT sum(v) FROM ins",
             2, NULL);
  nops = 100;
  for (i = 0; i < nops; i++) {
    make_rows(&ops[i], i, 100, 1, (long long)i * 1000, -1, NULL);
    ops[i].op.stmt = "bulk_ins";
  }
  pg_start(&pg);
  submit_more();
  saw_full = next_submit < nops;
  uv_timer_start(&stopper, on_stopper, 30000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!saw_full)
    FAIL("max_ops never reached");
  if (drains < 1)
    FAIL("on_drain never called");
  for (i = 0; i < nops; i++) {
    if (!ops[i].done || ops[i].status)
      FAIL("op %d: done=%d status=%d", i, ops[i].done, ops[i].status);
    else if (ops[i].got != ops[i].expect)
      FAIL("op %d got sum %lld, expected its own %lld", i, ops[i].got,
           ops[i].expect);
  }
  printf("drains=%d\n", drains);
  return finish();
}

/* ---- big: ops far larger than the socket buffers ---- */
/* 8 ops with a 2 MiB parameter each; the server sleeps 0.1 s per op before
 * it reads the next one, so 16 MiB cannot all be written at once. */
#define BIG_LEN (2 << 20)
static int run_big(void) {
  int i;
  pg_prepare(&pg, &st_main, "big_len",
             "SELECT length($1::text) + $2::int8 FROM pg_sleep(0.1)", 2, NULL);
  nops = 8;
  for (i = 0; i < nops; i++) {
    struct top *t = &ops[i];
    t->a = malloc(BIG_LEN + 1);
    t->b = malloc(16);
    if (!t->a || !t->b)
      abort();
    memset(t->a, 'a' + i, BIG_LEN);
    t->a[BIG_LEN] = '\0';
    snprintf(t->b, 16, "%d", i);
    t->vals[0] = t->a;
    t->vals[1] = t->b;
    t->expect = BIG_LEN + i;
    t->idx = i;
    t->op.stmt = "big_len";
    t->op.nparams = 2;
    t->op.values = t->vals;
    t->op.cb = op_cb;
    t->op.data = t;
  }
  pg_start(&pg);
  submit_more(); /* the 8th is over max_bytes (16 MiB): sent on drain */
  uv_timer_start(&stopper, on_stopper, 60000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < nops; i++) {
    if (!ops[i].done || ops[i].status)
      FAIL("op %d: done=%d status=%d", i, ops[i].done, ops[i].status);
    else if (ops[i].got != ops[i].expect)
      FAIL("op %d got %lld, expected %lld", i, ops[i].got, ops[i].expect);
  }
  if (pg.stats.write_waits < 1)
    FAIL("PQflush never had to wait for the socket");
  return finish();
}

/* ---- violation ---- */
static int run_violation(void) {
  int i;
  pg_prepare(&pg, &st_main, "viol_ins",
             "INSERT INTO pp_viol(id, v) SELECT * FROM "
             "unnest($1::int8[], $2::int8[])",
             2, NULL);
  nops = 50;
  for (i = 0; i < nops; i++) {
    if (i == 25)
      make_rows(&ops[i], i, 10, 0, 100, 4, "-1");
    else if (i == 30)
      make_rows(&ops[i], i, 10, 0, 100, 7, "x1");
    else
      make_rows(&ops[i], i, 10, 0, 100, -1, NULL);
    ops[i].op.stmt = "viol_ins";
  }
  pg_start(&pg);
  submit_more();
  if (next_submit != nops)
    FAIL("only %d of %d submitted", next_submit, nops);
  uv_timer_start(&stopper, on_stopper, 30000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < nops; i++) {
    int want = i == 25 || i == 30 ? BL_EPG : 0;
    if (!ops[i].done || ops[i].status != want)
      FAIL("op %d: done=%d status=%d want %d", i, ops[i].done, ops[i].status,
           want);
  }
  if (strcmp(ops[25].sqlstate, "23514") != 0)
    FAIL("op 25 sqlstate %s, want 23514", ops[25].sqlstate);
  if (strcmp(ops[30].sqlstate, "22P02") != 0)
    FAIL("op 30 sqlstate %s, want 22P02", ops[30].sqlstate);
  return finish();
}

/* ---- flood (server restarted by the script) ---- */
static void on_tick_flood(uv_timer_t *t) {
  (void)t;
  ticks++;
  if (next_submit < nops) {
    int rv = pg_submit(&pg, &ops[next_submit].op);
    if (rv == 0)
      next_submit++;
    else if (rv != BL_EFULL)
      FAIL("pg_submit: %s", bl_strerror(rv));
  }
}

static int run_flood(int n) {
  int i;
  pg_prepare(&pg, &st_main, "flood_ins",
             "INSERT INTO pp_flood(id, v) SELECT * FROM "
             "unnest($1::int8[], $2::int8[]) ON CONFLICT (id) DO NOTHING",
             2, NULL);
  nops = n > MAXOPS ? MAXOPS : n;
  for (i = 0; i < nops; i++) {
    make_rows(&ops[i], i, 50, 0, 0, -1, NULL);
    ops[i].op.stmt = "flood_ins";
  }
  pg_start(&pg);
  uv_timer_start(&ticker, on_tick_flood, 10, 10);
  uv_timer_start(&stopper, on_stopper, 60000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < nops; i++)
    if (!ops[i].done || ops[i].status)
      FAIL("op %d: done=%d status=%d", i, ops[i].done, ops[i].status);
  if (pg.stats.reconnects < 1)
    FAIL("no reconnect seen");
  return finish();
}

/* ---- terminate ---- */
static struct pg_op kill_op;
static const char *kill_vals[1];
static char kill_pid[16];
static int killed;

static void kill_cb(struct pg_op *op, int status, PGresult *res,
                    const char *err) {
  (void)op;
  if (status || !res || PQntuples(res) != 1 ||
      strcmp(PQgetvalue(res, 0, 0), "t") != 0)
    FAIL("pg_terminate_backend: %s", err ? err : "returned false");
  killed = 1;
  printf("terminated=%s\n", kill_pid);
  ndone++;
  if (ndone == nops)
    close_all();
}

static void on_tick_term(uv_timer_t *t) {
  (void)t;
  ticks++;
  if (!killed && kill_op.cb == NULL && pg_is_up(&pg) && pg_is_up(&pg2) &&
      pg.fly_head) {
    snprintf(kill_pid, sizeof(kill_pid), "%d", PQbackendPID(pg.pc.conn));
    kill_vals[0] = kill_pid;
    kill_op.stmt = "kill";
    kill_op.nparams = 1;
    kill_op.values = kill_vals;
    kill_op.cb = kill_cb;
    if (pg_submit(&pg2, &kill_op))
      FAIL("submit kill");
  }
}

static int run_terminate(void) {
  int i;
  struct pg_opts o;
  pg_prepare(&pg, &st_main, "slow_ins",
             "INSERT INTO pp_term(id, v) SELECT u.id, u.v FROM "
             "unnest($1::int8[], $2::int8[]) AS u(id, v), pg_sleep(0.5) "
             "ON CONFLICT (id) DO NOTHING",
             2, NULL);
  fill_opts(&o, "pp_killer");
  pg_init(&loop, &pg2, &o);
  npg = 2;
  pg_prepare(&pg2, &st_aux, "kill", "SELECT pg_terminate_backend($1::int)", 1,
             NULL);
  nops = 4;
  for (i = 0; i < nops; i++) {
    make_rows(&ops[i], i, 5, 0, 0, -1, NULL);
    ops[i].op.stmt = "slow_ins";
  }
  ops[3].op.flags = PG_OP_NORETRY;
  nops++; /* the kill op counts as one */
  pg_start(&pg);
  pg_start(&pg2);
  for (i = 0; i < 4; i++)
    if (pg_submit(&pg, &ops[i].op))
      FAIL("submit %d", i);
  uv_timer_start(&ticker, on_tick_term, 20, 20);
  uv_timer_start(&stopper, on_stopper, 30000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  nops--;
  for (i = 0; i < 3; i++)
    if (!ops[i].done || ops[i].status)
      FAIL("op %d: done=%d status=%d", i, ops[i].done, ops[i].status);
  if (!ops[3].done || ops[3].status != BL_EPG)
    FAIL("NORETRY op: done=%d status=%d, want BL_EPG", ops[3].done,
         ops[3].status);
  if (!killed)
    FAIL("backend never terminated");
  if (pg.stats.ops_resent < 3)
    FAIL("resent %llu ops, want >= 3", (unsigned long long)pg.stats.ops_resent);
  if (pg.stats.reconnects < 1)
    FAIL("no reconnect");
  if (ups < 2 || downs < 1)
    FAIL("on_state: %d ups, %d downs", ups, downs);
  return finish();
}

/* ---- wait (connection refused first) ---- */
static void on_tick_count(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static int run_wait(void) {
  pg_prepare(&pg, &st_main, "wait_ins",
             "INSERT INTO pp_wait(id, v) SELECT * FROM "
             "unnest($1::int8[], $2::int8[]) ON CONFLICT (id) DO NOTHING",
             2, NULL);
  nops = 1;
  make_rows(&ops[0], 0, 3, 0, 7, -1, NULL);
  ops[0].op.stmt = "wait_ins";
  if (pg_submit(&pg, &ops[0].op))
    FAIL("submit before start");
  pg_start(&pg);
  uv_timer_start(&ticker, on_tick_count, 10, 10);
  uv_timer_start(&stopper, on_stopper, 30000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!ops[0].done || ops[0].status)
    FAIL("op: done=%d status=%d", ops[0].done, ops[0].status);
  if (pg.stats.connect_failures < 1)
    FAIL("no refused attempt seen");
  printf("ticks=%ld\n", ticks);
  return finish();
}

/* ---- listen ---- */
/* Three notifications, then our listening backend is killed; after the
 * reconnect the LISTEN must be back, and three more arrive. */
static struct pg_listen lis;
static int got_notes, notes_sent, listen_kill_sent;
static const char *payloads[6] = {"first",  "second payload", "third",
                                  "fourth", "fifth",          "sixth"};
static const char chan[] = "Pp-Chan\"1";
static struct pg_op note_ops[6], lkill_op;
static const char *note_vals[6][2], *lkill_vals[1];
static char lkill_pid[16];

static void note_cb(struct pg_listen *l, const char *channel,
                    const char *payload, int be_pid) {
  (void)l;
  (void)be_pid;
  if (got_notes < 6 && strcmp(payload, payloads[got_notes]) != 0)
    FAIL("notification %d: payload '%s'", got_notes, payload);
  if (strcmp(channel, chan) != 0)
    FAIL("channel '%s'", channel);
  printf("notify %d %s\n", got_notes, payload);
  got_notes++;
  if (got_notes == 6)
    close_all();
}

static void note_sent_cb(struct pg_op *op, int status, PGresult *res,
                         const char *err) {
  (void)op;
  (void)res;
  if (status)
    FAIL("pg_notify/kill: %s", err ? err : "?");
}

static void send_notes(int from) {
  int i;
  for (i = from; i < from + 3; i++) {
    note_vals[i][0] = chan;
    note_vals[i][1] = payloads[i];
    note_ops[i].stmt = "notify";
    note_ops[i].nparams = 2;
    note_ops[i].values = note_vals[i];
    note_ops[i].cb = note_sent_cb;
    if (pg_submit(&pg2, &note_ops[i]))
      FAIL("submit notify");
  }
  notes_sent = from + 3;
}

static void on_tick_listen(uv_timer_t *t) {
  int idle = pg_is_up(&pg) && pg_is_up(&pg2) && !pg.fly_head && !pg.pend_head;
  (void)t;
  ticks++;
  /* The LISTEN is in flight first after connect; wait until it is done. */
  if (notes_sent == 0 && idle) {
    send_notes(0);
  } else if (got_notes == 3 && !listen_kill_sent && idle) {
    snprintf(lkill_pid, sizeof(lkill_pid), "%d", PQbackendPID(pg.pc.conn));
    lkill_vals[0] = lkill_pid;
    lkill_op.stmt = "kill";
    lkill_op.nparams = 1;
    lkill_op.values = lkill_vals;
    lkill_op.cb = note_sent_cb;
    if (pg_submit(&pg2, &lkill_op))
      FAIL("submit kill");
    listen_kill_sent = 1;
  } else if (notes_sent == 3 && listen_kill_sent && pg.stats.reconnects > 0 &&
             idle) {
    send_notes(3);
  }
}

static int run_listen(void) {
  struct pg_opts o;
  fill_opts(&o, "pp_notifier");
  pg_init(&loop, &pg2, &o);
  npg = 2;
  pg_prepare(&pg2, &st_aux, "notify", "SELECT pg_notify($1, $2)", 2, NULL);
  pg_prepare(&pg2, &st_main, "kill", "SELECT pg_terminate_backend($1::int)", 1,
             NULL);
  if (pg_listen(&pg, &lis, chan, note_cb))
    FAIL("pg_listen");
  pg_start(&pg);
  pg_start(&pg2);
  uv_timer_start(&ticker, on_tick_listen, 20, 20);
  uv_timer_start(&stopper, on_stopper, 20000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (got_notes != 6)
    FAIL("got %d notifications, want 6", got_notes);
  if (pg.stats.reconnects < 1)
    FAIL("the listener never reconnected");
  return finish();
}

/* ---- blackhole ---- */
static uv_tcp_t hole;
static void on_hole_conn(uv_stream_t *s, int status) {
  (void)s;
  (void)status; /* never accepted: the peer waits forever */
}

static char bh_err[256];
static unsigned long long bh_failures;

static void on_bh_end(uv_timer_t *t) {
  (void)t;
  snprintf(bh_err, sizeof(bh_err), "%s", pg.errstr);
  bh_failures = pg.stats.connect_failures;
  close_all();
  uv_close((uv_handle_t *)&hole, NULL);
}

static int run_blackhole(void) {
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char port[16];
  struct pg_opts o;

  uv_tcp_init(&loop, &hole);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  if (uv_tcp_bind(&hole, (const struct sockaddr *)&sa, 0) ||
      uv_listen((uv_stream_t *)&hole, 8, on_hole_conn) ||
      uv_tcp_getsockname(&hole, (struct sockaddr *)&ss, &len)) {
    FAIL("cannot listen");
    return 1;
  }
  snprintf(port, sizeof(port), "%d",
           ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fill_opts(&o, "pp_blackhole");
  o.conn.host = "localhost"; /* through uv_getaddrinfo */
  o.conn.port = (int)strtol(port, NULL, 10);
  o.conn.connect_timeout_ms = 300;
  o.conn.sslmode = "disable";
  o.backoff_min_ms = 50;
  pg_init(&loop, &pg, &o);
  nops = 1;
  make_rows(&ops[0], 0, 1, 0, 0, -1, NULL);
  ops[0].op.stmt = "never";
  pg_start(&pg);
  if (pg_submit(&pg, &ops[0].op))
    FAIL("submit");
  uv_timer_start(&ticker, on_tick_count, 10, 10);
  uv_timer_start(&stopper, on_bh_end, 1200, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (ticks < 80)
    FAIL("only %ld ticks in 1.2 s: the loop was blocked", ticks);
  if (bh_failures < 2)
    FAIL("%llu timed-out attempts, want >= 2", bh_failures);
  if (!strstr(bh_err, "timed out"))
    FAIL("last error '%s'", bh_err);
  if (!ops[0].done || ops[0].status != BL_ECANCELED)
    FAIL("queued op: done=%d status=%d, want BL_ECANCELED", ops[0].done,
         ops[0].status);
  printf("ticks=%ld last_error=%s\n", ticks, bh_err);
  return finish();
}

int main(int argc, char **argv) {
  struct pg_opts o;
  if (argc < 2) {
    fprintf(stderr, "usage: pg_pipeline bulk|big|violation|flood N|terminate|"
                    "wait|listen|blackhole\n");
    return 2;
  }
  mode = argv[1];
  log_setup(BL_LOG_INFO, BL_LOG_TEXT, "pg_pipeline", "test");
  uv_loop_init(&loop);
  uv_timer_init(&loop, &ticker);
  uv_timer_init(&loop, &stopper);
  if (strcmp(mode, "blackhole") == 0)
    return run_blackhole();
  fill_opts(&o, "pp_main");
  if (strcmp(mode, "bulk") == 0)
    o.max_ops = 16;
  pg_init(&loop, &pg, &o);
  pg_set_callbacks(&pg, on_state, on_drain);
  if (strcmp(mode, "bulk") == 0)
    return run_bulk();
  if (strcmp(mode, "violation") == 0)
    return run_violation();
  if (strcmp(mode, "big") == 0)
    return run_big();
  if (strcmp(mode, "flood") == 0)
    return run_flood(argc > 2 ? (int)strtol(argv[2], NULL, 10) : 300);
  if (strcmp(mode, "terminate") == 0)
    return run_terminate();
  if (strcmp(mode, "wait") == 0)
    return run_wait();
  if (strcmp(mode, "listen") == 0)
    return run_listen();
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
