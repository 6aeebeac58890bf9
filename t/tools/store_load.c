/*
 * store_load.c: drives src/sink/store against a real PostgreSQL (with the
 * schema applied) for t/integration/store.sh.
 *
 * It queues, through the store's public calls only:
 *   - 2500 aggregated trades of BTCUSDT (ids 1..2500), then the first 300
 *     again (a reconnect overlap), with batch_size 1000 so several batches
 *     and a partial one are involved;
 *   - 10 one-minute bars of ETHUSDT, each updated 5 times while open and
 *     then closed, then one stale open update of bar 0 after it closed;
 *   - (after a flush, so the bars above share one batch) one kline of
 *     BADUSDT whose volume is not a number among 8 closed SOLUSDT bars:
 *     the server refuses the batch, which must split and keep the 8;
 *   - 400 ticker events and 3 depth snapshots.
 * Then it waits until nothing is pending.
 * With STORE_LOAD_COPY=1 the store also has its COPY connection, and once
 * that is up a second phase queues trades 2501..5000 of BTCUSDT and 1..10
 * of ETHUSDT, 10 more tickers and an ETHUSDT depth snapshot (new rows:
 * they go by COPY), waits, then 4901..5100 of
 * BTCUSDT (100 already stored) and one BADUSDT trade whose price is not a
 * number: that COPY is refused and the batch goes through the statement,
 * which skips the 100 and isolates the bad row.
 * STORE_LOAD_PG_MAX_BYTES bounds pg's parameter bytes, so that batches
 * over it must be halved to fit.
 * STORE_LOAD_ORDER=N instead queues only N trades over 40 symbols
 * (ORD00USDT..ORD39USDT, ids from 1 up per symbol, round robin), as fast
 * as the store takes them, once all its COPY connections are up: enough
 * to keep every connection busy, so that store.sh can check that each
 * symbol's rows committed in order. It prints copy_jobs_I per connection.
 * Then it closes and prints its counters as key=value lines. Exit 0 only
 * with uv_loop_close() == 0.
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

static uv_loop_t loop;
static struct pg pg;
static struct store st;
static uv_timer_t waiter;
static int done;

#define BASE_MS 1700000000000LL

static void set(char *dst, size_t cap, const char *s) {
  snprintf(dst, cap, "%s", s);
}

static void trade_of(const char *sym, int64_t id, const char *price) {
  struct ev_trade t;
  memset(&t, 0, sizeof t);
  set(t.symbol, sizeof t.symbol, sym);
  t.agg_trade_id = id;
  if (price)
    set(t.price, sizeof t.price, price);
  else
    snprintf(t.price, sizeof t.price, "%" PRId64 ".12345678", 30000 + id);
  set(t.quantity, sizeof t.quantity, "0.00100000");
  t.first_trade_id = id * 10;
  t.last_trade_id = id * 10 + 1;
  t.trade_time = BASE_MS + id * 7;
  t.event_time = t.trade_time + 1;
  t.is_buyer_maker = (int)(id & 1);
  if (store_trade(&st, &t, 0))
    fprintf(stderr, "FAIL: store_trade %" PRId64 "\n", id);
}

static void trade(int64_t id) {
  trade_of("BTCUSDT", id, NULL);
}

static void kline(const char *sym, int bar, int update, int closed,
                  const char *volume) {
  struct ev_kline k;
  memset(&k, 0, sizeof k);
  set(k.symbol, sizeof k.symbol, sym);
  set(k.interval, sizeof k.interval, "1m");
  k.open_time = BASE_MS + bar * 60000LL;
  k.close_time = k.open_time + 59999;
  k.event_time = k.open_time + 1000 + update;
  snprintf(k.open, sizeof k.open, "%d.00000000", 100 + bar);
  snprintf(k.high, sizeof k.high, "%d.50000000", 100 + bar + update);
  snprintf(k.low, sizeof k.low, "%d.00000000", 99 + bar);
  snprintf(k.close, sizeof k.close, "%d.25000000", 100 + bar + update);
  set(k.volume, sizeof k.volume, volume);
  set(k.quote_volume, sizeof k.quote_volume, "1000.00000000");
  set(k.taker_buy_volume, sizeof k.taker_buy_volume, "1.00000000");
  set(k.taker_buy_quote_volume, sizeof k.taker_buy_quote_volume,
      "100.00000000");
  k.trades_count = update + 1;
  k.first_trade_id = bar * 100;
  k.last_trade_id = bar * 100 + update;
  k.is_closed = closed;
  if (store_kline(&st, &k, 0, 1))
    fprintf(stderr, "FAIL: store_kline %s %d\n", sym, bar);
}

static void ticker(int i) {
  struct ev_ticker t;
  memset(&t, 0, sizeof t);
  set(t.symbol, sizeof t.symbol, "BTCUSDT");
  t.event_time = BASE_MS + i * 1000LL;
  snprintf(t.price, sizeof t.price, "%d.00000000", 30000 + i);
  set(t.price_change, sizeof t.price_change, "-12.50000000");
  set(t.price_change_percent, sizeof t.price_change_percent, "-0.041");
  set(t.weighted_avg_price, sizeof t.weighted_avg_price, "30001.1");
  set(t.open_price, sizeof t.open_price, "30012.5");
  set(t.high, sizeof t.high, "31000");
  set(t.low, sizeof t.low, "29000");
  set(t.volume, sizeof t.volume, "123456789012345678901234.123456789012");
  set(t.quote_volume, sizeof t.quote_volume, "1.0");
  set(t.bid_price, sizeof t.bid_price, "29999.99");
  set(t.bid_qty, sizeof t.bid_qty, "1");
  set(t.ask_price, sizeof t.ask_price, "30000.01");
  set(t.ask_qty, sizeof t.ask_qty, "2");
  t.trades_count = 1000 + i;
  t.first_trade_id = 1;
  t.last_trade_id = 1000 + i;
  if (store_ticker(&st, &t))
    fprintf(stderr, "FAIL: store_ticker %d\n", i);
}

static void store_closed(struct store *s) {
  (void)s;
  pg_close(&pg, 5000, NULL);
}

static uint64_t start_ms; /* uv_now() at start: uv_now is not 0-based */
static int copy_phase;    /* STORE_LOAD_COPY: 1 (waiting), 2, 3 (done) */

static int copy_all_up(void) {
  for (int i = 0; i < STORE_COPY_CONNS; i++)
    if (!pgcopy_is_up(&st.copy[i]))
      return 0;
  return 1;
}

static void check(uv_timer_t *t) {
  if (store_pending(&st) && uv_now(&loop) - start_ms < 30000)
    return;
  if (copy_phase == 1 && copy_all_up()) {
    for (int64_t id = 2501; id <= 5000; id++)
      trade(id);
    for (int64_t id = 1; id <= 10; id++)
      trade_of("ETHUSDT", id, NULL);
    for (int i = 400; i < 410; i++)
      ticker(i);
    if (store_depth(&st, "ETHUSDT", BASE_MS + 5, 77, "[[\"2000.00\",\"1.5\"]]",
                    "[[\"2001.00\",\"0.25\"]]"))
      fprintf(stderr, "FAIL: store_depth\n");
    copy_phase = 2;
    return;
  }
  if (copy_phase == 2) {
    for (int64_t id = 4901; id <= 5100; id++)
      trade(id);
    copy_phase = 3;
    return;
  }
  if (copy_phase == 3) {
    trade_of("BADUSDT", 1, "x");
    copy_phase = 4;
    return;
  }
  if (copy_phase == 1 && uv_now(&loop) - start_ms < 30000)
    return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  done = 1;
  store_close(&st, store_closed);
}

/* The server from PGHOST/PGPORT/PGUSER/PGDATABASE. */
static void pg_opts_from_env(struct pg_opts *po) {
  const char *port = getenv("PGPORT");
  memset(po, 0, sizeof *po);
  po->conn.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1";
  po->conn.port = port ? (int)strtol(port, NULL, 10) : 5432;
  po->conn.user = getenv("PGUSER") ? getenv("PGUSER") : "postgres";
  po->conn.dbname =
      getenv("PGDATABASE") ? getenv("PGDATABASE") : "binance_data";
}

/* --- STORE_LOAD_ORDER ----------------------------------------------------- */

#define ORDER_SYMBOLS 40
static int64_t order_total, order_sent;

static void order_feed(uv_timer_t *t) {
  if (copy_phase == 1) {
    if (!copy_all_up())
      return;
    copy_phase = 2;
  }
  /* Up to 2000 trades a tick; a full queue (no spool here) ends the tick
   * and the same trade is offered again on the next one. */
  for (int i = 0; i < 2000 && order_sent < order_total; i++) {
    struct ev_trade tr;
    int64_t id = order_sent / ORDER_SYMBOLS + 1;
    memset(&tr, 0, sizeof tr);
    snprintf(tr.symbol, sizeof tr.symbol, "ORD%02dUSDT",
             (int)(order_sent % ORDER_SYMBOLS));
    tr.agg_trade_id = id;
    snprintf(tr.price, sizeof tr.price, "%" PRId64 ".5", 100 + id % 1000);
    set(tr.quantity, sizeof tr.quantity, "1.25");
    tr.first_trade_id = tr.last_trade_id = id;
    tr.trade_time = BASE_MS + id;
    tr.event_time = tr.trade_time;
    if (store_trade(&st, &tr, 0) == BL_EFULL)
      return;
    order_sent++;
  }
  if (order_sent < order_total || store_pending(&st))
    return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  done = 1;
  store_close(&st, store_closed);
}

static int order_main(int64_t n) {
  struct pg_opts po;
  struct store_opts so = {.batch_size = 500, .flush_interval_ms = 50};
  log_setup(BL_LOG_WARN, BL_LOG_TEXT, "store_load", "test");
  uv_loop_init(&loop);
  pg_opts_from_env(&po);
  so.copy_conn = &po.conn;
  order_total = n;
  copy_phase = 1;
  if (pg_init(&loop, &pg, &po) || store_init(&loop, &st, &pg, &so) ||
      pg_start(&pg)) {
    fprintf(stderr, "FAIL: init\n");
    return 1;
  }
  uv_timer_init(&loop, &waiter);
  uv_timer_start(&waiter, order_feed, 1, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("order_sent=%" PRId64 "\n", order_sent);
  printf("written_trades=%llu\n",
         (unsigned long long)st.q[STORE_TRADES].rows_written);
  printf("copy_committed=%llu\ncopy_fell_back=%llu\n",
         (unsigned long long)st.copy_batches,
         (unsigned long long)st.copy_fallbacks);
  for (int i = 0; i < STORE_COPY_CONNS; i++)
    printf("copy_jobs_%d=%llu\n", i,
           (unsigned long long)st.copy[i].stats.jobs_ok);
  if (uv_loop_close(&loop)) {
    fprintf(stderr, "FAIL: uv_loop_close\n");
    return 1;
  }
  return done ? 0 : 1;
}

int main(void) {
  struct pg_opts po;
  struct store_opts so = {.batch_size = 1000, .flush_interval_ms = 100};
  uint64_t written[STORE_NTABLES], bad = 0;

  if (getenv("STORE_LOAD_ORDER"))
    return order_main(strtoll(getenv("STORE_LOAD_ORDER"), NULL, 10));

  log_setup(getenv("STORE_LOAD_COPY") ? BL_LOG_INFO : BL_LOG_WARN, BL_LOG_TEXT,
            "store_load", "test");
  uv_loop_init(&loop);
  pg_opts_from_env(&po);
  if (getenv("STORE_LOAD_PG_MAX_BYTES")) /* batches over it are halved */
    po.max_bytes =
        (size_t)strtoull(getenv("STORE_LOAD_PG_MAX_BYTES"), NULL, 10);
  if (getenv("STORE_LOAD_COPY")) {
    so.copy_conn = &po.conn;
    copy_phase = 1;
  }
  if (pg_init(&loop, &pg, &po) || store_init(&loop, &st, &pg, &so) ||
      pg_start(&pg)) {
    fprintf(stderr, "FAIL: init\n");
    return 1;
  }
  for (int64_t id = 1; id <= 2500; id++)
    trade(id);
  for (int64_t id = 1; id <= 300; id++)
    trade(id);
  for (int bar = 0; bar < 10; bar++) {
    for (int u = 0; u < 5; u++)
      kline("ETHUSDT", bar, u, 0, "5.00000000");
    kline("ETHUSDT", bar, 5, 1, "6.00000000");
  }
  kline("ETHUSDT", 0, 9, 0, "7.00000000"); /* stale open update */
  /* The ETHUSDT bars leave in a batch of their own; then a bad kline
   * travels with five good SOLUSDT bars. */
  store_flush(&st);
  for (int bar = 0; bar < 5; bar++)
    kline("SOLUSDT", bar, 0, 1, "1.00000000");
  kline("BADUSDT", 0, 0, 1, "not-a-number");
  for (int bar = 5; bar < 8; bar++)
    kline("SOLUSDT", bar, 0, 1, "1.00000000");
  for (int i = 0; i < 400; i++)
    ticker(i);
  for (int i = 0; i < 3; i++)
    if (store_depth(&st, "BTCUSDT", BASE_MS + i * 10000LL, 1000 + i,
                    "[[\"30000.00\",\"1.5\"],[\"29999.00\",\"2\"]]",
                    "[[\"30001.00\",\"0.5\"]]"))
      fprintf(stderr, "FAIL: store_depth\n");

  start_ms = uv_now(&loop);
  uv_timer_init(&loop, &waiter);
  uv_timer_start(&waiter, check, 50, 50);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int t = 0; t < STORE_NTABLES; t++) {
    written[t] = st.q[t].rows_written;
    bad += st.q[t].bad_rows;
    printf("written_%s=%llu\n", store_table_name((enum store_table)t),
           (unsigned long long)written[t]);
  }
  printf("bad_rows=%llu\n", (unsigned long long)bad);
  printf("batches_trades=%llu\n",
         (unsigned long long)st.q[STORE_TRADES].batches);
  printf("latency_count=%llu\n", (unsigned long long)st.latency.count);
  printf("copy_committed=%llu\ncopy_fell_back=%llu\ncopy_phase=%d\n",
         (unsigned long long)st.copy_batches,
         (unsigned long long)st.copy_fallbacks, copy_phase);
  if (uv_loop_close(&loop)) {
    fprintf(stderr, "FAIL: uv_loop_close\n");
    return 1;
  }
  return done ? 0 : 1;
}
