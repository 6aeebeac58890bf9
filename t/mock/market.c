/*
 * market.c: the synthetic market of the mock exchange, as pure functions.
 *
 * Nothing here is stored per trade or per bar: every value is computed
 * from (seed, symbol, index or time), so the past (any range back to
 * MK_T0) costs nothing to keep and REST always agrees with the WebSocket.
 *
 * Trades: symbol s has trade k (k >= 0) at time
 *   T(k) = MK_T0 + (k * gap_us + off_us) / 1000 ms,
 * aggregate id k + 1 and one fill with trade id k + 100. Its price is the
 * symbol's reference price of that minute, P(minute), plus D ticks, and
 * its quantity Q steps, where (D, Q) come from a 16-entry pattern indexed
 * by (k + rot) mod 16; D < 0 means the buyer was the maker. Because P is
 * constant within a minute and the pattern is periodic, the sums of a
 * minute's trades (volume, quote volume, taker volumes) are prefix-sum
 * look-ups, and a bar of any length costs one step per minute.
 *
 * Order book: update id uid(t) = MK_UID_BASE + (t - MK_T0) * ups / 1000.
 * The book after update u has MK_LEVELS bids below and MK_LEVELS asks above
 * P(minute of u), each level's quantity a hash of (price, epoch) where the
 * epoch of a level advances every MK_LEVELS updates at a per-level phase.
 * A diff between two update ids compares the two books, so snapshots and
 * diffs are consistent by construction.
 *
 * State: only the immutable per-symbol parameters in struct mk_market.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mock.h"

/* D (ticks from the reference price) and Q (steps) of the pattern. Both
 * -2 and +2 occur, so a run of 16 or more trades spans the full range. */
static const int mk_d[MK_TABLE] = {1, -1, 2,  -1, 1, -2, 1, -1,
                                   2, 1,  -1, -2, 1, -1, 1, 2};
static const int mk_q[MK_TABLE] = {3, 1, 7, 2, 5, 1, 12, 4,
                                   2, 9, 1, 3, 6, 2, 20, 1};

static uint64_t mk_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t mk_hash2(uint64_t a, uint64_t b) {
  return mk_mix(a ^ mk_mix(b));
}

static uint64_t mk_hash3(uint64_t a, uint64_t b, uint64_t c) {
  return mk_mix(a ^ mk_mix(b ^ mk_mix(c)));
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
  return a - floor_div(a, b) * b;
}

static void symbol_setup(struct mk_symbol *sy, uint64_t seed, int i) {
  int j;
  memset(sy, 0, sizeof *sy);
  sy->seed = mk_hash2(seed, (uint64_t)i + 1);
  if (i == 0) {
    memcpy(sy->name, "BTCUSDT", 8);
    memcpy(sy->base, "BTC", 4);
    sy->tick = 1000000; /* 0.01 */
    sy->step = 1000;    /* 0.00001 */
    sy->p0 = 5000000;   /* 50000.00 */
  } else if (i == 1) {
    memcpy(sy->name, "ETHUSDT", 8);
    memcpy(sy->base, "ETH", 4);
    sy->tick = 1000000;
    sy->step = 10000; /* 0.0001 */
    sy->p0 = 300000;  /* 3000.00 */
  } else {
    snprintf(sy->name, sizeof sy->name, "SYM%03dUSDT", i - 2);
    snprintf(sy->base, sizeof sy->base, "SYM%03d", i - 2);
    sy->tick = 10000;    /* 0.0001 */
    sy->step = 10000000; /* 0.1 */
    sy->p0 = 5000 + (int64_t)(sy->seed % 45000);
  }
  memcpy(sy->quote, "USDT", 5);
  for (j = 0; sy->name[j]; j++) {
    char c = sy->name[j];
    sy->lower[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  sy->lower[j] = '\0';
  sy->rot = (int)(mk_mix(sy->seed) % MK_TABLE);
  for (j = 0; j < 3; j++)
    sy->ph[j] = (double)(mk_hash2(sy->seed, (uint64_t)j) % 6283) / 1000.0;
  sy->pre_q[0] = sy->pre_dq[0] = sy->pre_bq[0] = sy->pre_bdq[0] = 0;
  for (j = 0; j < MK_TABLE; j++) {
    int x = (j + sy->rot) % MK_TABLE;
    int d = mk_d[x], q = mk_q[x];
    sy->pre_q[j + 1] = sy->pre_q[j] + q;
    sy->pre_dq[j + 1] = sy->pre_dq[j] + (int64_t)d * q;
    sy->pre_bq[j + 1] = sy->pre_bq[j] + (d > 0 ? q : 0);
    sy->pre_bdq[j + 1] = sy->pre_bdq[j] + (d > 0 ? (int64_t)d * q : 0);
  }
}

int mk_market_init(struct mk_market *m, int nsym, uint64_t seed,
                   double trades_per_sec) {
  int i;
  double g;
  memset(m, 0, sizeof *m);
  if (nsym < 1 || nsym > MK_MAX_SYMBOLS || !(trades_per_sec > 0))
    return BL_EINVAL;
  m->sym = calloc((size_t)nsym, sizeof *m->sym);
  if (!m->sym)
    return BL_ENOMEM;
  m->nsym = nsym;
  m->seed = seed;
  g = 1e6 * nsym / trades_per_sec;
  if (g < 1)
    g = 1;
  if (g > 3.6e9) /* at least one trade an hour */
    g = 3.6e9;
  m->gap_us = (int64_t)g;
  m->ups = 20;
  for (i = 0; i < nsym; i++) {
    symbol_setup(&m->sym[i], seed, i);
    m->sym[i].off_us = (int64_t)(m->sym[i].seed % (uint64_t)m->gap_us);
  }
  return 0;
}

void mk_market_free(struct mk_market *m) {
  int i;
  for (i = 0; m->sym && i < m->nsym; i++)
    free(m->sym[i].mid_cache);
  free(m->sym);
  m->sym = NULL;
  m->nsym = 0;
}

int mk_symbol_find(const struct mk_market *m, const char *name, size_t len) {
  int i;
  for (i = 0; i < m->nsym; i++)
    if (strlen(m->sym[i].name) == len && !memcmp(m->sym[i].name, name, len))
      return i;
  return -1;
}

int mk_symbol_find_lower(const struct mk_market *m, const char *name,
                         size_t len) {
  int i;
  for (i = 0; i < m->nsym; i++)
    if (strlen(m->sym[i].lower) == len && !memcmp(m->sym[i].lower, name, len))
      return i;
  return -1;
}

static int64_t mid_compute(const struct mk_symbol *sy, int64_t mi) {
  double x = (double)mi, r;
  r = 0.03 * sin(x / 731.0 + sy->ph[0]) + 0.01 * sin(x / 97.0 + sy->ph[1]) +
      0.004 * sin(x / 13.0 + sy->ph[2]) +
      0.004 *
          ((double)(mk_hash2(sy->seed, (uint64_t)mi) % 1000) / 1000.0 - 0.5);
  return llround((double)sy->p0 * (1.0 + r));
}

/* The reference price of minute |mi|, memoised: a direct-mapped table of
 * MK_MID_CACHE minutes per symbol (allocated at first use; without memory
 * the value is computed each time). The value is a pure function of
 * (symbol, minute); the table only saves the three sin() per call, which
 * were most of the cost of a trade and of a ticker's 1440-minute sum. */
static int64_t mid_of_minute(const struct mk_symbol *sy, int64_t mi) {
  struct mk_mid_slot *slot;
  if (!sy->mid_cache) {
    int i;
    struct mk_symbol *w = (struct mk_symbol *)sy; /* memo only */
    w->mid_cache = malloc(MK_MID_CACHE * sizeof *w->mid_cache);
    if (!w->mid_cache)
      return mid_compute(sy, mi);
    for (i = 0; i < MK_MID_CACHE; i++)
      w->mid_cache[i].minute = INT64_MIN;
  }
  slot = &sy->mid_cache[(uint64_t)mi % MK_MID_CACHE];
  if (slot->minute != mi) {
    slot->mid = mid_compute(sy, mi);
    slot->minute = mi;
  }
  return slot->mid;
}

int64_t mk_mid_ticks(const struct mk_market *m, int s, int64_t t) {
  return mid_of_minute(&m->sym[s], floor_div(t, 60000));
}

static int64_t trade_time(const struct mk_market *m, int s, int64_t k) {
  return MK_T0 + (k * m->gap_us + m->sym[s].off_us) / 1000;
}

void mk_trade_get(const struct mk_market *m, int s, int64_t k,
                  struct mk_trade *out) {
  const struct mk_symbol *sy = &m->sym[s];
  int x = (int)((k + sy->rot) % MK_TABLE);
  int64_t mid;
  out->k = k;
  out->id = k + 1;
  out->tid = k + 100;
  out->time = trade_time(m, s, k);
  mid = mid_of_minute(sy, floor_div(out->time, 60000));
  out->price = (mid + mk_d[x]) * sy->tick;
  out->qty = mk_q[x] * sy->step;
  out->buyer_maker = mk_d[x] < 0;
}

int64_t mk_trade_first_at(const struct mk_market *m, int s, int64_t t) {
  int64_t num;
  if (t <= MK_T0)
    return 0;
  num = (t - MK_T0) * 1000 - m->sym[s].off_us;
  if (num <= 0)
    return 0;
  return (num + m->gap_us - 1) / m->gap_us;
}

int64_t mk_trade_last_at(const struct mk_market *m, int s, int64_t t) {
  return mk_trade_first_at(m, s, t + 1) - 1;
}

int64_t mk_last_price_before(const struct mk_market *m, int s, int64_t k) {
  struct mk_trade tr;
  if (k <= 0)
    return mid_of_minute(&m->sym[s], MK_T0 / 60000) * m->sym[s].tick;
  mk_trade_get(m, s, k - 1, &tr);
  return tr.price;
}

/* Sum over trades [0, n) of a per-rotation prefix table. */
static int64_t psum(const int64_t *pre, int64_t n) {
  return (n / MK_TABLE) * pre[MK_TABLE] + pre[n % MK_TABLE];
}

/* Adds trades ka..kb (one minute, reference price mid) to |a|. */
static void agg_minute(const struct mk_market *m, int s, int64_t mid,
                       int64_t ka, int64_t kb, struct mk_agg *a) {
  const struct mk_symbol *sy = &m->sym[s];
  int64_t q, dq, bq, bdq, cnt = kb - ka + 1;
  int dmax = -3, dmin = 3;
  __int128 ts = (__int128)sy->tick * sy->step;
  q = psum(sy->pre_q, kb + 1) - psum(sy->pre_q, ka);
  dq = psum(sy->pre_dq, kb + 1) - psum(sy->pre_dq, ka);
  bq = psum(sy->pre_bq, kb + 1) - psum(sy->pre_bq, ka);
  bdq = psum(sy->pre_bdq, kb + 1) - psum(sy->pre_bdq, ka);
  if (cnt >= MK_TABLE) {
    dmax = 2;
    dmin = -2;
  } else {
    int64_t k;
    for (k = ka; k <= kb; k++) {
      int d = mk_d[(k + sy->rot) % MK_TABLE];
      if (d > dmax)
        dmax = d;
      if (d < dmin)
        dmin = d;
    }
  }
  a->vol += (__int128)q * sy->step;
  a->qvol += ts * ((__int128)mid * q + dq);
  a->tbvol += (__int128)bq * sy->step;
  a->tbqvol += ts * ((__int128)mid * bq + bdq);
  if (a->n == 0 || (mid + dmax) * sy->tick > a->h)
    a->h = (mid + dmax) * sy->tick;
  if (a->n == 0 || (mid + dmin) * sy->tick < a->l)
    a->l = (mid + dmin) * sy->tick;
  a->n += cnt;
}

void mk_agg_range(const struct mk_market *m, int s, int64_t from, int64_t to,
                  struct mk_agg *out) {
  int64_t ka, kb, k, mi;
  struct mk_trade tr;
  memset(out, 0, sizeof *out);
  out->first_k = out->last_k = -1;
  ka = mk_trade_first_at(m, s, from);
  kb = mk_trade_last_at(m, s, to);
  if (to < from || kb < ka) {
    int64_t p = mk_last_price_before(m, s, ka);
    out->o = out->h = out->l = out->c = p;
    return;
  }
  out->first_k = ka;
  out->last_k = kb;
  mk_trade_get(m, s, ka, &tr);
  out->o = tr.price;
  k = ka;
  mi = floor_div(tr.time, 60000);
  while (k <= kb) {
    int64_t end = mk_trade_last_at(m, s, mi * 60000 + 59999);
    if (end > kb)
      end = kb;
    if (end >= k) {
      agg_minute(m, s, mid_of_minute(&m->sym[s], mi), k, end, out);
      k = end + 1;
    }
    if (k <= kb) {
      /* jump to the minute of the next trade */
      mi = floor_div(trade_time(m, s, k), 60000);
    }
  }
  mk_trade_get(m, s, kb, &tr);
  out->c = tr.price;
}

/* ------------------------------------------------------------ intervals */

static const char *const mk_iv_names[MK_NINTERVALS] = {
    "1s", "1m", "3m", "5m",  "15m", "30m", "1h", "2h",
    "4h", "6h", "8h", "12h", "1d",  "3d",  "1w", "1M"};
static const int64_t mk_iv_ms[MK_NINTERVALS] = {
    1000,     60000,     180000,    300000,   900000,   1800000,
    3600000,  7200000,   14400000,  21600000, 28800000, 43200000,
    86400000, 259200000, 604800000, 0};

int mk_interval_parse(const char *name, size_t len) {
  int i;
  for (i = 0; i < MK_NINTERVALS; i++)
    if (strlen(mk_iv_names[i]) == len && !memcmp(mk_iv_names[i], name, len))
      return i;
  return BL_EINVAL;
}

const char *mk_interval_name(int iv) {
  return (iv >= 0 && iv < MK_NINTERVALS) ? mk_iv_names[iv] : "?";
}

/* Civil date <-> days since 1970-01-01 (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int mo, int d) {
  int64_t era, yoe, doy, doe;
  y -= mo <= 2;
  era = floor_div(y, 400);
  yoe = y - era * 400;
  doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *mo) {
  int64_t era, doe, yoe, doy, mp;
  z += 719468;
  era = floor_div(z, 146097);
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *mo = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*mo <= 2);
}

int64_t mk_bar_start(int iv, int64_t t) {
  if (iv == MK_1M) {
    int64_t y;
    int mo;
    civil_from_days(floor_div(t, 86400000), &y, &mo);
    return days_from_civil(y, mo, 1) * 86400000;
  }
  if (iv == MK_1w) /* weeks open on Monday; 1970-01-05 was one */
    return t - floor_mod(t - 4 * 86400000LL, mk_iv_ms[iv]);
  return t - floor_mod(t, mk_iv_ms[iv]);
}

int64_t mk_bar_next(int iv, int64_t start) {
  if (iv == MK_1M) {
    int64_t y;
    int mo;
    civil_from_days(floor_div(start, 86400000), &y, &mo);
    if (++mo > 12) {
      mo = 1;
      y++;
    }
    return days_from_civil(y, mo, 1) * 86400000;
  }
  return start + mk_iv_ms[iv];
}

void mk_kline(const struct mk_market *m, int s, int iv, int64_t open_time,
              int64_t now, struct mk_agg *out) {
  int64_t to = mk_bar_next(iv, open_time) - 1;
  if (to > now)
    to = now;
  mk_agg_range(m, s, open_time, to, out);
}

/* ------------------------------------------------------------ the book */

int64_t mk_book_uid(const struct mk_market *m, int s, int64_t t) {
  (void)s;
  if (t <= MK_T0)
    return MK_UID_BASE;
  return MK_UID_BASE + (t - MK_T0) * m->ups / 1000;
}

static int64_t book_mid(const struct mk_market *m, int s, int64_t uid) {
  /* the first time at which this update id is current */
  int64_t t = MK_T0 + ((uid - MK_UID_BASE) * 1000 + m->ups - 1) / m->ups;
  return mk_mid_ticks(m, s, t);
}

static int64_t level_qty(const struct mk_symbol *sy, int64_t ticks,
                         int64_t uid) {
  uint64_t phase = mk_hash2(sy->seed ^ 0x5151, (uint64_t)ticks) % MK_LEVELS;
  int64_t epoch = (uid + (int64_t)phase) / MK_LEVELS;
  return (int64_t)(1 +
                   mk_hash3(sy->seed, (uint64_t)ticks, (uint64_t)epoch) % 500) *
         sy->step;
}

void mk_book_at(const struct mk_market *m, int s, int64_t uid,
                struct mk_level *bids, struct mk_level *asks) {
  const struct mk_symbol *sy = &m->sym[s];
  int64_t mid = book_mid(m, s, uid);
  int i;
  for (i = 0; i < MK_LEVELS; i++) {
    int64_t bt = mid - 1 - i, at = mid + 1 + i;
    bids[i].price = bt * sy->tick;
    bids[i].qty = level_qty(sy, bt, uid);
    asks[i].price = at * sy->tick;
    asks[i].qty = level_qty(sy, at, uid);
  }
}

/* Levels whose quantity differs between two books of one side. |lo0..hi0|
 * and |lo1..hi1| are the tick ranges; |desc| orders bids high to low. */
static int side_diff(const struct mk_symbol *sy, int64_t lo0, int64_t hi0,
                     int64_t u0, int64_t lo1, int64_t hi1, int64_t u1, int desc,
                     struct mk_level *out) {
  int64_t lo = lo0 < lo1 ? lo0 : lo1, hi = hi0 > hi1 ? hi0 : hi1, p;
  int n = 0;
  if (hi - lo + 1 > 2 * MK_LEVELS) {
    /* the book jumped far: remove the old side, add the new */
    for (p = desc ? hi0 : lo0; desc ? p >= lo0 : p <= hi0; p += desc ? -1 : 1)
      if (p < lo1 || p > hi1) {
        out[n].price = p * sy->tick;
        out[n++].qty = 0;
      }
    for (p = desc ? hi1 : lo1; desc ? p >= lo1 : p <= hi1; p += desc ? -1 : 1) {
      out[n].price = p * sy->tick;
      out[n++].qty = level_qty(sy, p, u1);
    }
    return n;
  }
  for (p = desc ? hi : lo; desc ? p >= lo : p <= hi; p += desc ? -1 : 1) {
    int in0 = p >= lo0 && p <= hi0, in1 = p >= lo1 && p <= hi1;
    int64_t q0 = in0 ? level_qty(sy, p, u0) : 0;
    int64_t q1 = in1 ? level_qty(sy, p, u1) : 0;
    if (q0 != q1) {
      out[n].price = p * sy->tick;
      out[n++].qty = q1;
    }
  }
  return n;
}

void mk_book_diff(const struct mk_market *m, int s, int64_t from_uid,
                  int64_t to_uid, struct mk_level *bids, int *nb,
                  struct mk_level *asks, int *na) {
  const struct mk_symbol *sy = &m->sym[s];
  int64_t m0 = book_mid(m, s, from_uid), m1 = book_mid(m, s, to_uid);
  *nb = side_diff(sy, m0 - MK_LEVELS, m0 - 1, from_uid, m1 - MK_LEVELS, m1 - 1,
                  to_uid, 1, bids);
  *na = side_diff(sy, m0 + 1, m0 + MK_LEVELS, from_uid, m1 + 1, m1 + MK_LEVELS,
                  to_uid, 0, asks);
}

void mk_ticker_get(const struct mk_market *m, int s, int64_t now,
                   struct mk_ticker *tk) {
  struct mk_level bids[MK_LEVELS], asks[MK_LEVELS];
  struct mk_trade tr;
  memset(tk, 0, sizeof *tk);
  tk->open_time = now - 86400000;
  tk->close_time = now;
  mk_agg_range(m, s, tk->open_time, now, &tk->a);
  tk->prev_close = mk_last_price_before(
      m, s, tk->a.n ? tk->a.first_k : mk_trade_first_at(m, s, tk->open_time));
  tk->last = tk->a.c;
  if (tk->a.n) {
    mk_trade_get(m, s, tk->a.last_k, &tr);
    tk->last_qty = tr.qty;
    tk->first_id = tk->a.first_k + 100;
    tk->last_id = tk->a.last_k + 100;
    tk->wavg = (int64_t)(tk->a.qvol / tk->a.vol);
  } else {
    tk->first_id = tk->last_id = -1;
    tk->wavg = tk->a.c;
  }
  tk->change = tk->a.c - tk->a.o;
  tk->pct_milli = tk->a.o ? tk->change * 100000 / tk->a.o : 0;
  mk_book_at(m, s, mk_book_uid(m, s, now), bids, asks);
  tk->bid = bids[0].price;
  tk->bid_qty = bids[0].qty;
  tk->ask = asks[0].price;
  tk->ask_qty = asks[0].qty;
}
