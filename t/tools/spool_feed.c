/*
 * spool_feed.c: a steady stream of aggregated trades (symbol SPLUSDT,
 * consecutive ids) through sink/store with a spool, for
 * t/integration/spool.sh.
 *
 *   spool_feed --spool DIR [--from ID] [--count N] [--rate ROWS_PER_S]
 *              [--max-bytes B] [--segment-bytes B] [--max-rows N]
 *              [--wait SECS]
 *
 * Sends ids from..from+count-1 at the given rate (count 0: none; the run
 * then only replays what the spool holds), printing "sent=<id>" lines
 * (line-buffered) as it goes. Then it waits (at most --wait seconds,
 * default 120) until nothing is held in memory and the spool is drained,
 * closes everything, prints its counters as key=value lines and exits 0
 * (1 on a timeout or when uv_loop_close() fails). SIGTERM or SIGINT close
 * early. No internal state survives between runs except the spool dir.
 * Server coordinates come from PGHOST/PGPORT/PGUSER/PGDATABASE.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/pg.h"
#include "sink/store.h"

struct feed {
  uv_loop_t loop;
  struct pg pg;
  struct store st;
  uv_timer_t tick;
  uv_signal_t sigterm, sigint;
  int64_t from, next_id, last_id;
  uint64_t wait_ms;
  double rate;
  uint64_t start_ms, deadline_ms, last_print_ms;
  uint64_t accepted, refused;
  int closing, timed_out, pg_closed, store_closed;
  uint64_t spool_refused, spool_rows_in, corrupt, torn, replayed;
};

static long long arg_ll(int argc, char **argv, const char *name,
                        long long dflt) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) {
      char *end;
      long long v = strtoll(argv[i + 1], &end, 10);
      if (*end || end == argv[i + 1]) {
        fprintf(stderr, "FAIL: bad %s\n", name);
        exit(2);
      }
      return v;
    }
  return dflt;
}

static const char *arg_s(int argc, char **argv, const char *name) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name))
      return argv[i + 1];
  return NULL;
}

static int send_trade(struct feed *f, int64_t id) {
  struct ev_trade t;
  memset(&t, 0, sizeof t);
  snprintf(t.symbol, sizeof t.symbol, "SPLUSDT");
  t.agg_trade_id = id;
  snprintf(t.price, sizeof t.price, "%" PRId64 ".00000001", 100 + id % 1000);
  snprintf(t.quantity, sizeof t.quantity, "0.50000000");
  t.first_trade_id = id * 3;
  t.last_trade_id = id * 3 + 2;
  t.trade_time = 1700000000000LL + id;
  t.event_time = t.trade_time + 1;
  t.is_buyer_maker = (int)(id & 1);
  return store_trade(&f->st, &t, 0);
}

static void pg_closed_cb(struct pg *pg) {
  struct feed *f = pg->data;
  f->pg_closed = 1;
}

static void store_closed_cb(struct store *st) {
  struct feed *f = st->data;
  f->store_closed = 1;
}

static void feed_close(struct feed *f) {
  if (f->closing)
    return;
  f->closing = 1;
  f->spool_refused = f->st.spool.stats.rows_refused;
  f->spool_rows_in = f->st.spool.stats.rows_in;
  f->corrupt = f->st.spool.stats.corrupt_bytes;
  f->torn = f->st.spool.stats.torn_tails;
  f->replayed = f->st.rows_replayed;
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_close((uv_handle_t *)&f->sigterm, NULL);
  uv_close((uv_handle_t *)&f->sigint, NULL);
  store_close(&f->st, store_closed_cb);
  pg_close(&f->pg, 3000, pg_closed_cb);
}

static void on_tick(uv_timer_t *t) {
  struct feed *f = t->data;
  uint64_t now = uv_now(&f->loop);
  if (f->closing)
    return;
  if (f->next_id <= f->last_id) {
    /* Ids up to from + elapsed * rate are due. */
    int64_t due =
        f->from + (int64_t)((double)(now - f->start_ms) * f->rate / 1000.0);
    while (f->next_id <= f->last_id && f->next_id <= due) {
      int rv = send_trade(f, f->next_id);
      if (rv == 0)
        f->accepted++;
      else if (rv == BL_EFULL)
        f->refused++;
      else
        fprintf(stderr, "FAIL: store_trade %" PRId64 ": %s\n", f->next_id,
                bl_strerror(rv));
      f->next_id++;
    }
    if (now - f->last_print_ms >= 500 || f->next_id > f->last_id) {
      printf("sent=%" PRId64 "\n", f->next_id - 1);
      f->last_print_ms = now;
    }
    if (f->next_id > f->last_id)
      f->deadline_ms = now + f->wait_ms;
    return;
  }
  if (!store_pending(&f->st) && !store_spooling(&f->st)) {
    feed_close(f);
    return;
  }
  if (now >= f->deadline_ms) {
    fprintf(stderr,
            "FAIL: not drained after the wait: pending=%d "
            "spooling=%d\n",
            store_pending(&f->st), store_spooling(&f->st));
    f->timed_out = 1;
    feed_close(f);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  feed_close(s->data);
}

int main(int argc, char **argv) {
  struct feed *f = calloc(1, sizeof *f);
  struct pg_opts po;
  struct store_opts so;
  const char *port = getenv("PGPORT");
  long long count;
  int rc = 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  log_setup(BL_LOG_INFO, BL_LOG_TEXT, "spool_feed", "test");
  if (!f || !arg_s(argc, argv, "--spool")) {
    fprintf(stderr, "usage: spool_feed --spool DIR [--from ID] [--count N] "
                    "[--rate R] [--max-bytes B] [--segment-bytes B] "
                    "[--max-rows N] [--wait SECS]\n");
    return 2;
  }
  f->from = arg_ll(argc, argv, "--from", 1);
  count = arg_ll(argc, argv, "--count", 0);
  f->rate = (double)arg_ll(argc, argv, "--rate", 500);
  f->wait_ms = (uint64_t)arg_ll(argc, argv, "--wait", 120) * 1000;
  f->next_id = f->from;
  f->last_id = f->from + count - 1;

  uv_loop_init(&f->loop);
  memset(&po, 0, sizeof po);
  po.conn.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1";
  po.conn.port = port ? (int)strtol(port, NULL, 10) : 5432;
  po.conn.user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
  po.conn.dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "binance_data";
  po.backoff_max_ms = 500;
  memset(&so, 0, sizeof so);
  so.batch_size = 200;
  so.flush_interval_ms = 50;
  so.max_rows = (int)arg_ll(argc, argv, "--max-rows", 0);
  so.spool_dir = arg_s(argc, argv, "--spool");
  so.spool_max_bytes = (uint64_t)arg_ll(argc, argv, "--max-bytes", 0);
  so.spool_segment_bytes = (uint64_t)arg_ll(argc, argv, "--segment-bytes", 0);
  if (pg_init(&f->loop, &f->pg, &po) ||
      store_init(&f->loop, &f->st, &f->pg, &so) || pg_start(&f->pg)) {
    fprintf(stderr, "FAIL: init\n");
    return 1;
  }
  f->pg.data = f;
  f->st.data = f;
  uv_timer_init(&f->loop, &f->tick);
  f->tick.data = f;
  uv_signal_init(&f->loop, &f->sigterm);
  uv_signal_init(&f->loop, &f->sigint);
  f->sigterm.data = f->sigint.data = f;
  uv_signal_start(&f->sigterm, on_signal, SIGTERM);
  uv_signal_start(&f->sigint, on_signal, SIGINT);
  f->start_ms = uv_now(&f->loop);
  f->deadline_ms = f->start_ms + f->wait_ms;
  uv_timer_start(&f->tick, on_tick, 10, 10);
  uv_run(&f->loop, UV_RUN_DEFAULT);

  printf("accepted=%" PRIu64 "\n", f->accepted);
  printf("refused=%" PRIu64 "\n", f->refused);
  printf("spool_rows_in=%" PRIu64 "\n", f->spool_rows_in);
  printf("spool_refused=%" PRIu64 "\n", f->spool_refused);
  printf("replayed=%" PRIu64 "\n", f->replayed);
  printf("corrupt_bytes=%" PRIu64 "\n", f->corrupt);
  printf("torn_tails=%" PRIu64 "\n", f->torn);
  printf("written=%" PRIu64 "\n", f->st.q[STORE_TRADES].rows_written);
  if (!f->store_closed || !f->pg_closed) {
    fprintf(stderr, "FAIL: not closed\n");
    rc = 1;
  }
  if (uv_loop_close(&f->loop)) {
    fprintf(stderr, "FAIL: uv_loop_close\n");
    rc = 1;
  }
  if (f->timed_out)
    rc = 1;
  free(f);
  return rc;
}
