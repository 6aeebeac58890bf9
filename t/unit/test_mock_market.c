/*
 * test_mock_market.c: the mock exchange's synthetic market and frame
 * formatting: consecutive trade ids, closed-form aggregates against a
 * brute-force sum, kline consistency between WS frames and REST rows,
 * bars of one interval summing to the next, order-book diffs that rebuild
 * the snapshot, calendar bars, number formatting (the fast paths too), the
 * reference-price memo, server WebSocket framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "../../t/mock/fmt.c"
#include "../../t/mock/market.c"
#include "../../t/mock/replay.c"
#include "../../t/mock/rest.c"
#include "../../t/mock/streams.c"

#define NOW 1790000000000LL /* 2026-09 */

static struct mk_market M;

static int setup(void **state) {
  (void)state;
  return mk_market_init(&M, 5, 42, 50.0); /* 10 trades/s per symbol */
}

static int teardown(void **state) {
  (void)state;
  mk_market_free(&M);
  return 0;
}

static void symbols_and_names(void **state) {
  (void)state;
  assert_string_equal(M.sym[0].name, "BTCUSDT");
  assert_string_equal(M.sym[1].name, "ETHUSDT");
  assert_string_equal(M.sym[2].name, "SYM000USDT");
  assert_string_equal(M.sym[4].lower, "sym002usdt");
  assert_int_equal(mk_symbol_find(&M, "ETHUSDT", 7), 1);
  assert_int_equal(mk_symbol_find(&M, "XRPUSDT", 7), -1);
  assert_int_equal(mk_symbol_find_lower(&M, "sym001usdt", 10), 3);
}

static void trades_consecutive_and_timed(void **state) {
  int s;
  (void)state;
  for (s = 0; s < M.nsym; s++) {
    int64_t k0 = mk_trade_first_at(&M, s, NOW), k;
    struct mk_trade prev, tr;
    mk_trade_get(&M, s, k0, &prev);
    assert_true(prev.time >= NOW);
    if (k0 > 0) {
      mk_trade_get(&M, s, k0 - 1, &tr);
      assert_true(tr.time < NOW);
    }
    for (k = k0 + 1; k < k0 + 2000; k++) {
      mk_trade_get(&M, s, k, &tr);
      assert_int_equal(tr.id, prev.id + 1);
      assert_true(tr.time >= prev.time);
      assert_true(tr.price > 0 && tr.qty > 0);
      assert_int_equal(mk_trade_last_at(&M, s, tr.time) >= k, 1);
      assert_int_equal(mk_trade_first_at(&M, s, tr.time) <= k, 1);
      prev = tr;
    }
  }
  /* 10 trades a second per symbol */
  assert_int_equal(mk_trade_last_at(&M, 0, NOW + 59999) -
                       mk_trade_first_at(&M, 0, NOW) + 1,
                   600);
}

/* The closed-form aggregate equals the sum over the trades. */
static void brute(int s, int64_t from, int64_t to, struct mk_agg *a) {
  int64_t k;
  struct mk_trade tr;
  memset(a, 0, sizeof *a);
  for (k = mk_trade_first_at(&M, s, from);; k++) {
    mk_trade_get(&M, s, k, &tr);
    if (tr.time > to)
      break;
    if (a->n == 0) {
      a->o = a->h = a->l = tr.price;
      a->first_k = k;
    }
    a->n++;
    a->last_k = k;
    a->c = tr.price;
    if (tr.price > a->h)
      a->h = tr.price;
    if (tr.price < a->l)
      a->l = tr.price;
    a->vol += tr.qty;
    a->qvol += (__int128)tr.price * tr.qty;
    if (!tr.buyer_maker) {
      a->tbvol += tr.qty;
      a->tbqvol += (__int128)tr.price * tr.qty;
    }
  }
}

static void aggregates_match_brute_force(void **state) {
  static const int64_t spans[] = {1,     999,   1000,   1500,    59999,
                                  60000, 61234, 180000, 3600000, 4000000};
  unsigned i;
  int s;
  (void)state;
  for (s = 0; s < M.nsym; s++)
    for (i = 0; i < sizeof spans / sizeof spans[0]; i++) {
      int64_t from = NOW + 12345 * (int64_t)i + s * 777;
      struct mk_agg a, b;
      mk_agg_range(&M, s, from, from + spans[i] - 1, &a);
      brute(s, from, from + spans[i] - 1, &b);
      assert_int_equal(a.n, b.n);
      if (b.n == 0)
        continue;
      assert_int_equal(a.first_k, b.first_k);
      assert_int_equal(a.last_k, b.last_k);
      assert_int_equal(a.o, b.o);
      assert_int_equal(a.c, b.c);
      assert_int_equal(a.h, b.h);
      assert_int_equal(a.l, b.l);
      assert_true(a.vol == b.vol);
      assert_true(a.qvol == b.qvol);
      assert_true(a.tbvol == b.tbvol);
      assert_true(a.tbqvol == b.tbqvol);
    }
}

static void hour_is_sum_of_minutes(void **state) {
  int64_t h0 = mk_bar_start(MK_1h, NOW), t;
  struct mk_agg hour, mn;
  __int128 vol = 0, qvol = 0;
  int64_t n = 0, hi = 0, lo = INT64_MAX;
  (void)state;
  mk_kline(&M, 2, MK_1h, h0, NOW + 86400000, &hour);
  for (t = h0; t < h0 + 3600000; t = mk_bar_next(MK_1m, t)) {
    mk_kline(&M, 2, MK_1m, t, NOW + 86400000, &mn);
    if (t == h0)
      assert_int_equal(mn.o, hour.o);
    if (t == h0 + 3540000)
      assert_int_equal(mn.c, hour.c);
    vol += mn.vol;
    qvol += mn.qvol;
    n += mn.n;
    if (mn.h > hi)
      hi = mn.h;
    if (mn.l < lo)
      lo = mn.l;
  }
  assert_int_equal(n, hour.n);
  assert_true(vol == hour.vol);
  assert_true(qvol == hour.qvol);
  assert_int_equal(hi, hour.h);
  assert_int_equal(lo, hour.l);
}

static void calendar_bars(void **state) {
  (void)state;
  /* 2026-03-15 12:00 UTC -> month starts 2026-03-01, next 2026-04-01 */
  assert_int_equal(mk_bar_start(MK_1M, 1773576000000LL), 1772323200000LL);
  assert_int_equal(mk_bar_next(MK_1M, 1772323200000LL), 1775001600000LL);
  /* 2025-12-31 -> 2025-12-01; next is 2026-01-01 */
  assert_int_equal(mk_bar_next(MK_1M, mk_bar_start(MK_1M, 1767139200000LL)),
                   1767225600000LL);
  /* weeks open on Monday: 2026-11-29 is a Sunday, its week opened
   * Monday 2026-11-23 */
  assert_int_equal(mk_bar_start(MK_1w, 1795910400000LL + 3600000),
                   1795392000000LL);
  assert_int_equal(mk_bar_start(MK_1m, 1795910461234LL), 1795910460000LL);
  assert_int_equal(mk_interval_parse("1M", 2), MK_1M);
  assert_int_equal(mk_interval_parse("1m", 2), MK_1m);
  assert_int_equal(mk_interval_parse("2m", 2), BL_EINVAL);
}

static yajl_val parse(const char *s) {
  char err[128];
  yajl_val v = yajl_tree_parse(s, err, sizeof err);
  assert_non_null(v);
  return v;
}

static const char *sget(yajl_val o, const char *k1, const char *k2) {
  const char *path[3] = {k1, k2, NULL};
  yajl_val v = yajl_tree_get(o, path, yajl_t_any);
  assert_non_null(v);
  if (YAJL_IS_STRING(v))
    return v->u.string;
  return v->u.number.r;
}

/* A closed WS kline equals the REST row of the same bar, field by field. */
static void ws_kline_equals_rest_row(void **state) {
  struct buf ws, row;
  struct mk_agg a;
  int64_t t = mk_bar_start(MK_5m, NOW);
  yajl_val w, r;
  (void)state;
  buf_init(&ws, 1 << 20);
  buf_init(&row, 1 << 20);
  mk_kline(&M, 0, MK_5m, t, NOW + 3600000, &a);
  assert_int_equal(fmt_kline(&ws, &M, 0, MK_5m, t, &a, 1, t + 300000), 0);
  mk_kline(&M, 0, MK_5m, t, NOW + 7200000, &a); /* later: same bar */
  assert_int_equal(fmt_kline_row(&row, &M, MK_5m, t, &a), 0);
  w = parse(ws.data);
  r = parse(row.data);
  assert_string_equal(sget(w, "e", NULL), "kline");
  assert_string_equal(sget(w, "k", "i"), "5m");
  assert_true(YAJL_IS_TRUE(
      yajl_tree_get(w, (const char *[]){"k", "x", NULL}, yajl_t_any)));
  assert_string_equal(sget(w, "k", "t"), r->u.array.values[0]->u.number.r);
  assert_string_equal(sget(w, "k", "o"), r->u.array.values[1]->u.string);
  assert_string_equal(sget(w, "k", "h"), r->u.array.values[2]->u.string);
  assert_string_equal(sget(w, "k", "l"), r->u.array.values[3]->u.string);
  assert_string_equal(sget(w, "k", "c"), r->u.array.values[4]->u.string);
  assert_string_equal(sget(w, "k", "v"), r->u.array.values[5]->u.string);
  assert_string_equal(sget(w, "k", "T"), r->u.array.values[6]->u.number.r);
  assert_string_equal(sget(w, "k", "q"), r->u.array.values[7]->u.string);
  assert_string_equal(sget(w, "k", "n"), r->u.array.values[8]->u.number.r);
  assert_string_equal(sget(w, "k", "V"), r->u.array.values[9]->u.string);
  assert_string_equal(sget(w, "k", "Q"), r->u.array.values[10]->u.string);
  assert_int_equal(r->u.array.len, 12);
  yajl_tree_free(w);
  yajl_tree_free(r);
  buf_free(&ws);
  buf_free(&row);
}

/* Applying every diff from a snapshot rebuilds the later book exactly, and
 * update ids are continuous. */
static void depth_diffs_rebuild_book(void **state) {
  struct mk_level bids[MK_LEVELS], asks[MK_LEVELS];
  struct mk_level db[2 * MK_LEVELS], da[2 * MK_LEVELS];
  static int64_t bq[400000], aq[400000]; /* qty by tick offset */
  int64_t base, u0, u, step, t;
  int i, nb, na, s = 3;
  const int64_t tick = M.sym[s].tick;
  (void)state;
  t = NOW + 55000; /* crosses minute boundaries: the book moves */
  u0 = mk_book_uid(&M, s, t);
  mk_book_at(&M, s, u0, bids, asks);
  base = bids[0].price / tick - 200000;
  memset(bq, 0, sizeof bq);
  memset(aq, 0, sizeof aq);
  for (i = 0; i < MK_LEVELS; i++) {
    bq[bids[i].price / tick - base] = bids[i].qty;
    aq[asks[i].price / tick - base] = asks[i].qty;
  }
  u = u0;
  for (step = 0; step < 3000; step++) {
    int64_t nu = u + 1 + step % 7; /* events of 1..7 updates */
    mk_book_diff(&M, s, u, nu, db, &nb, da, &na);
    for (i = 0; i < nb; i++) {
      bq[db[i].price / tick - base] = db[i].qty;
      if (i)
        assert_true(db[i].price < db[i - 1].price); /* bids high to low */
    }
    for (i = 0; i < na; i++) {
      aq[da[i].price / tick - base] = da[i].qty;
      if (i)
        assert_true(da[i].price > da[i - 1].price);
    }
    u = nu;
  }
  assert_true(mk_book_uid(&M, s, t + 200000) > u0);
  mk_book_at(&M, s, u, bids, asks);
  for (i = 0; i < MK_LEVELS; i++) {
    assert_int_equal(bq[bids[i].price / tick - base], bids[i].qty);
    assert_int_equal(aq[asks[i].price / tick - base], asks[i].qty);
  }
  /* nothing else is left in the local book */
  {
    int live = 0;
    for (i = 0; i < 400000; i++)
      live += (bq[i] != 0) + (aq[i] != 0);
    assert_int_equal(live, 2 * MK_LEVELS);
  }
}

static void number_formatting(void **state) {
  char b[64], *e;
  (void)state;
  e = fmt_dec8(b, 0);
  *e = 0;
  assert_string_equal(b, "0.00000000");
  e = fmt_dec8(b, 35280000);
  *e = 0;
  assert_string_equal(b, "0.35280000");
  e = fmt_dec8(b, -123456789012LL);
  *e = 0;
  assert_string_equal(b, "-1234.56789012");
  e = fmt_i64(b, INT64_MIN);
  *e = 0;
  assert_string_equal(b, "-9223372036854775808");
  e = fmt_dec16(b, (__int128)15 * 100000000 * 100000000 + 49999999);
  *e = 0;
  assert_string_equal(b, "15.00000000");
  e = fmt_dec16(b, (__int128)15 * 100000000 * 100000000 + 50000000);
  *e = 0;
  assert_string_equal(b, "15.00000001");
}

static void number_formatting_edges(void **state) {
  char b[80], *e;
  (void)state;
  e = fmt_dec8(b, INT64_MIN);
  *e = 0;
  assert_string_equal(b, "-92233720368.54775808");
  e = fmt_dec8(b, INT64_MAX);
  *e = 0;
  assert_string_equal(b, "92233720368.54775807");
  e = fmt_dec8(b, 1);
  *e = 0;
  assert_string_equal(b, "0.00000001");
  e = fmt_dec8(b, 100000000);
  *e = 0;
  assert_string_equal(b, "1.00000000");
  e = fmt_i64(b, 1000000000000000000LL);
  *e = 0;
  assert_string_equal(b, "1000000000000000000");
  e = fmt_i64(b, 7);
  *e = 0;
  assert_string_equal(b, "7");
  /* beyond 64 bits: the 128-bit path */
  e = fmt_dec16(b,
                (__int128)1000000000000000LL * 1000000000000000LL + 50000000);
  *e = 0;
  assert_string_equal(b, "100000000000000.00000001");
  e = fmt_dec16(b, -((__int128)15 * 100000000 * 100000000 + 50000000));
  *e = 0;
  assert_string_equal(b, "-15.00000001");
  e = fmt_fixed128(b, -1234, 3); /* ticker percentages */
  *e = 0;
  assert_string_equal(b, "-1.234");
  e = fmt_fixed128(b, 5, 3);
  *e = 0;
  assert_string_equal(b, "0.005");
}

/* Minutes that share a slot of the reference-price memo keep their own
 * prices (each checked against a fresh market that computed it once). */
static void mid_memo_slots(void **state) {
  struct mk_market a, b1, b2;
  int64_t t1 = NOW, t2 = NOW + (int64_t)MK_MID_CACHE * 60000, v1, v2;
  int i;
  (void)state;
  assert_int_equal(mk_market_init(&a, 3, 9, 30.0), 0);
  assert_int_equal(mk_market_init(&b1, 3, 9, 30.0), 0);
  assert_int_equal(mk_market_init(&b2, 3, 9, 30.0), 0);
  v1 = mk_mid_ticks(&b1, 2, t1);
  v2 = mk_mid_ticks(&b2, 2, t2);
  assert_true(v1 != v2);
  for (i = 0; i < 3; i++) {
    assert_int_equal(mk_mid_ticks(&a, 2, t1), v1);
    assert_int_equal(mk_mid_ticks(&a, 2, t1), v1);
    assert_int_equal(mk_mid_ticks(&a, 2, t2), v2);
  }
  assert_int_equal(mk_mid_ticks(&a, 2, 0), mid_compute(&a.sym[2], 0));
  mk_market_free(&a);
  mk_market_free(&b1);
  mk_market_free(&b2);
}

/* Server frames as RFC 6455 lays them out: FIN + text, no mask, 7-bit,
 * 16-bit and 64-bit lengths; the reader finds each whole frame only. */
static void ws_text_framing(void **state) {
  static const size_t lens[] = {0, 5, 125, 126, 200, 65535, 65536, 70000};
  struct buf b;
  char *payload = malloc(70000);
  size_t i, off = 0, po, pl;
  long n;
  (void)state;
  assert_non_null(payload);
  for (i = 0; i < 70000; i++)
    payload[i] = (char)('a' + i % 26);
  buf_init(&b, 1u << 20);
  for (i = 0; i < sizeof lens / sizeof lens[0]; i++)
    assert_int_equal(fmt_ws_text_frame(&b, payload, lens[i]), 0);
  for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    const unsigned char *h = (const unsigned char *)b.data + off;
    size_t hl = lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10;
    assert_int_equal(h[0], 0x81);
    if (hl == 2) {
      assert_int_equal(h[1], lens[i]);
    } else if (hl == 4) {
      assert_int_equal(h[1], 126);
      assert_int_equal(((size_t)h[2] << 8) | h[3], lens[i]);
    } else {
      assert_int_equal(h[1], 127);
      assert_int_equal(h[2] | h[3] | h[4] | h[5] | h[6], 0);
      assert_int_equal(((size_t)h[7] << 16) | ((size_t)h[8] << 8) | h[9],
                       lens[i]);
    }
    assert_int_equal(
        fmt_ws_frame_next(b.data + off, hl + lens[i] - 1, &po, &pl), 0);
    assert_int_equal(fmt_ws_frame_next(b.data + off, 1, &po, &pl), 0);
    n = fmt_ws_frame_next(b.data + off, b.len - off, &po, &pl);
    assert_int_equal(n, (long)(hl + lens[i]));
    assert_int_equal(po, hl);
    assert_int_equal(pl, lens[i]);
    if (pl > 0)
      assert_memory_equal(b.data + off + po, payload, pl);
    off += (size_t)n;
  }
  assert_int_equal(off, b.len);
  /* the limit is a designed path */
  {
    struct buf small;
    buf_init(&small, 64);
    assert_int_equal(fmt_ws_text_frame(&small, payload, 100), BL_ETOOBIG);
    assert_int_equal(small.len, 0);
    buf_free(&small);
  }
  buf_free(&b);
  free(payload);
}

static void agg_trade_frame_shape(void **state) {
  struct buf b;
  struct mk_trade tr;
  yajl_val v;
  (void)state;
  buf_init(&b, 4096);
  mk_trade_get(&M, 0, 1000, &tr);
  assert_int_equal(fmt_agg_trade(&b, &M.sym[0], &tr, tr.time), 0);
  v = parse(b.data);
  assert_string_equal(sget(v, "e", NULL), "aggTrade");
  assert_string_equal(sget(v, "s", NULL), "BTCUSDT");
  assert_string_equal(sget(v, "a", NULL), "1001");
  assert_non_null(strstr(b.data, "\"M\":true}"));
  assert_true(strlen(sget(v, "p", NULL)) > 9);
  assert_non_null(strchr(sget(v, "p", NULL), '.'));
  assert_int_equal(strlen(strchr(sget(v, "q", NULL), '.')), 9);
  yajl_tree_free(v);
  buf_reset(&b);
  assert_int_equal(fmt_ticker(&b, &M, 1, NOW), 0);
  v = parse(b.data);
  assert_string_equal(sget(v, "e", NULL), "24hrTicker");
  assert_string_equal(sget(v, "n", NULL), "864000");
  yajl_tree_free(v);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(symbols_and_names),
      cmocka_unit_test(trades_consecutive_and_timed),
      cmocka_unit_test(aggregates_match_brute_force),
      cmocka_unit_test(hour_is_sum_of_minutes),
      cmocka_unit_test(calendar_bars),
      cmocka_unit_test(ws_kline_equals_rest_row),
      cmocka_unit_test(depth_diffs_rebuild_book),
      cmocka_unit_test(number_formatting),
      cmocka_unit_test(number_formatting_edges),
      cmocka_unit_test(mid_memo_slots),
      cmocka_unit_test(ws_text_framing),
      cmocka_unit_test(agg_trade_frame_shape),
  };
  return cmocka_run_group_tests_name("mock_market", tests, setup, teardown);
}
