/*
 * fmt.c: fast formatting of the mock's JSON payloads, byte-compatible with
 * Binance's (field order of the real frames, decimals as strings with 8
 * places, ids and times as integers, flags as booleans).
 *
 * Numbers are written digit by digit into space reserved up front in a
 * struct buf; there is no snprintf and no allocation per frame once the
 * buffer has grown. Stateless.
 */
#include <string.h>

#include "core/err.h"
#include "mock.h"

/* "00" "01" ... "99": two digits per division. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

static const uint64_t pow10_u64[9] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static char *fmt_u64(char *p, uint64_t u) {
  char tmp[20];
  int n = 20;
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    n -= 2;
    memcpy(tmp + n, digit_pairs + 2 * r, 2);
  }
  if (u >= 10) {
    n -= 2;
    memcpy(tmp + n, digit_pairs + 2 * u, 2);
  } else {
    tmp[--n] = (char)('0' + u);
  }
  memcpy(p, tmp + n, (size_t)(20 - n));
  return p + 20 - n;
}

char *fmt_i64(char *p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return fmt_u64(p, (uint64_t)0 - (uint64_t)v);
  }
  return fmt_u64(p, (uint64_t)v);
}

/* Writes |v| / 10^places with exactly |places| (0..8) decimals; values
 * within 64 bits take the fast path (no 128-bit division). */
static char *fmt_fixed128(char *p, __int128 v, int places) {
  char tmp[48];
  int n = 0;
  unsigned __int128 u;
  if (v < 0) {
    *p++ = '-';
    u = (unsigned __int128)0 - (unsigned __int128)v;
  } else {
    u = (unsigned __int128)v;
  }
  if (u <= UINT64_MAX && places >= 0 && places <= 8) {
    uint64_t w = (uint64_t)u, ip = w / pow10_u64[places];
    uint64_t fp = w % pow10_u64[places];
    int i = places;
    p = fmt_u64(p, ip);
    if (places == 0)
      return p;
    *p++ = '.';
    while (i >= 2) {
      unsigned r = (unsigned)(fp % 100);
      fp /= 100;
      i -= 2;
      memcpy(p + i, digit_pairs + 2 * r, 2);
    }
    if (i == 1)
      p[0] = (char)('0' + fp);
    return p + places;
  }
  do {
    tmp[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u || n <= places);
  while (n) {
    if (n == places)
      *p++ = '.';
    *p++ = tmp[--n];
  }
  return p;
}

char *fmt_dec8(char *p, int64_t v) {
  return fmt_fixed128(p, v, 8);
}

char *fmt_dec16(char *p, __int128 v) {
  __int128 r;
  if (v >= 0 && v <= INT64_MAX - 50000000)
    r = ((int64_t)v + 50000000) / 100000000;
  else if (v < 0 && v >= -(INT64_MAX - 50000000))
    r = -((-(int64_t)v + 50000000) / 100000000);
  else
    r = v >= 0 ? (v + 50000000) / 100000000 : -((-v + 50000000) / 100000000);
  return fmt_fixed128(p, r, 8);
}

char *fmt_str(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return p + n;
}

char *fmt_qdec8(char *p, int64_t v) {
  *p++ = '"';
  p = fmt_dec8(p, v);
  *p++ = '"';
  return p;
}

static char *fmt_qdec16(char *p, __int128 v) {
  *p++ = '"';
  p = fmt_dec16(p, v);
  *p++ = '"';
  return p;
}

static char *fmt_bool(char *p, int v) {
  return fmt_str(p, v ? "true" : "false");
}

/* Reserves |n| bytes and returns where to write. */
static char *reserve(struct buf *b, size_t n) {
  if (buf_reserve(b, n) != 0)
    return NULL;
  return b->data + b->len;
}

static void commit(struct buf *b, char *end) {
  b->len = (size_t)(end - b->data);
  b->data[b->len] = '\0';
}

int fmt_agg_trade(struct buf *b, const struct mk_symbol *sy,
                  const struct mk_trade *t, int64_t event_time) {
  char *p = reserve(b, 400);
  if (!p)
    return BL_ETOOBIG;
  p = fmt_str(p, "{\"e\":\"aggTrade\",\"E\":");
  p = fmt_i64(p, event_time);
  p = fmt_str(p, ",\"s\":\"");
  p = fmt_str(p, sy->name);
  p = fmt_str(p, "\",\"a\":");
  p = fmt_i64(p, t->id);
  p = fmt_str(p, ",\"p\":");
  p = fmt_qdec8(p, t->price);
  p = fmt_str(p, ",\"q\":");
  p = fmt_qdec8(p, t->qty);
  p = fmt_str(p, ",\"f\":");
  p = fmt_i64(p, t->tid);
  p = fmt_str(p, ",\"l\":");
  p = fmt_i64(p, t->tid);
  p = fmt_str(p, ",\"T\":");
  p = fmt_i64(p, t->time);
  p = fmt_str(p, ",\"m\":");
  p = fmt_bool(p, t->buyer_maker);
  p = fmt_str(p, ",\"M\":true}");
  commit(b, p);
  return 0;
}

int fmt_kline(struct buf *b, const struct mk_market *m, int s, int iv,
              int64_t open_time, const struct mk_agg *a, int closed,
              int64_t event_time) {
  const struct mk_symbol *sy = &m->sym[s];
  char *p = reserve(b, 800);
  if (!p)
    return BL_ETOOBIG;
  p = fmt_str(p, "{\"e\":\"kline\",\"E\":");
  p = fmt_i64(p, event_time);
  p = fmt_str(p, ",\"s\":\"");
  p = fmt_str(p, sy->name);
  p = fmt_str(p, "\",\"k\":{\"t\":");
  p = fmt_i64(p, open_time);
  p = fmt_str(p, ",\"T\":");
  p = fmt_i64(p, mk_bar_next(iv, open_time) - 1);
  p = fmt_str(p, ",\"s\":\"");
  p = fmt_str(p, sy->name);
  p = fmt_str(p, "\",\"i\":\"");
  p = fmt_str(p, mk_interval_name(iv));
  p = fmt_str(p, "\",\"f\":");
  p = fmt_i64(p, a->n ? a->first_k + 100 : -1);
  p = fmt_str(p, ",\"L\":");
  p = fmt_i64(p, a->n ? a->last_k + 100 : -1);
  p = fmt_str(p, ",\"o\":");
  p = fmt_qdec8(p, a->o);
  p = fmt_str(p, ",\"c\":");
  p = fmt_qdec8(p, a->c);
  p = fmt_str(p, ",\"h\":");
  p = fmt_qdec8(p, a->h);
  p = fmt_str(p, ",\"l\":");
  p = fmt_qdec8(p, a->l);
  p = fmt_str(p, ",\"v\":\"");
  p = fmt_fixed128(p, a->vol, 8);
  p = fmt_str(p, "\",\"n\":");
  p = fmt_i64(p, a->n);
  p = fmt_str(p, ",\"x\":");
  p = fmt_bool(p, closed);
  p = fmt_str(p, ",\"q\":");
  p = fmt_qdec16(p, a->qvol);
  p = fmt_str(p, ",\"V\":\"");
  p = fmt_fixed128(p, a->tbvol, 8);
  p = fmt_str(p, "\",\"Q\":");
  p = fmt_qdec16(p, a->tbqvol);
  p = fmt_str(p, ",\"B\":\"0\"}}");
  commit(b, p);
  return 0;
}

int fmt_ticker(struct buf *b, const struct mk_market *m, int s, int64_t now) {
  const struct mk_symbol *sy = &m->sym[s];
  struct mk_ticker tk;
  char *p = reserve(b, 1200);
  if (!p)
    return BL_ETOOBIG;
  mk_ticker_get(m, s, now, &tk);
  p = fmt_str(p, "{\"e\":\"24hrTicker\",\"E\":");
  p = fmt_i64(p, now);
  p = fmt_str(p, ",\"s\":\"");
  p = fmt_str(p, sy->name);
  p = fmt_str(p, "\",\"p\":");
  p = fmt_qdec8(p, tk.change);
  p = fmt_str(p, ",\"P\":\"");
  p = fmt_fixed128(p, tk.pct_milli, 3);
  p = fmt_str(p, "\",\"w\":");
  p = fmt_qdec8(p, tk.wavg);
  p = fmt_str(p, ",\"x\":");
  p = fmt_qdec8(p, tk.prev_close);
  p = fmt_str(p, ",\"c\":");
  p = fmt_qdec8(p, tk.last);
  p = fmt_str(p, ",\"Q\":");
  p = fmt_qdec8(p, tk.last_qty);
  p = fmt_str(p, ",\"b\":");
  p = fmt_qdec8(p, tk.bid);
  p = fmt_str(p, ",\"B\":");
  p = fmt_qdec8(p, tk.bid_qty);
  p = fmt_str(p, ",\"a\":");
  p = fmt_qdec8(p, tk.ask);
  p = fmt_str(p, ",\"A\":");
  p = fmt_qdec8(p, tk.ask_qty);
  p = fmt_str(p, ",\"o\":");
  p = fmt_qdec8(p, tk.a.o);
  p = fmt_str(p, ",\"h\":");
  p = fmt_qdec8(p, tk.a.h);
  p = fmt_str(p, ",\"l\":");
  p = fmt_qdec8(p, tk.a.l);
  p = fmt_str(p, ",\"v\":\"");
  p = fmt_fixed128(p, tk.a.vol, 8);
  p = fmt_str(p, "\",\"q\":");
  p = fmt_qdec16(p, tk.a.qvol);
  p = fmt_str(p, ",\"O\":");
  p = fmt_i64(p, tk.open_time);
  p = fmt_str(p, ",\"C\":");
  p = fmt_i64(p, tk.close_time);
  p = fmt_str(p, ",\"F\":");
  p = fmt_i64(p, tk.first_id);
  p = fmt_str(p, ",\"L\":");
  p = fmt_i64(p, tk.last_id);
  p = fmt_str(p, ",\"n\":");
  p = fmt_i64(p, tk.a.n);
  p = fmt_str(p, "}");
  commit(b, p);
  return 0;
}

static char *fmt_levels(char *p, const struct mk_level *lv, int n) {
  int i;
  *p++ = '[';
  for (i = 0; i < n; i++) {
    if (i)
      *p++ = ',';
    *p++ = '[';
    p = fmt_qdec8(p, lv[i].price);
    *p++ = ',';
    p = fmt_qdec8(p, lv[i].qty);
    *p++ = ']';
  }
  *p++ = ']';
  return p;
}

int fmt_depth_update(struct buf *b, const struct mk_symbol *sy,
                     int64_t event_time, int64_t first_uid, int64_t last_uid,
                     const struct mk_level *bids, int nb,
                     const struct mk_level *asks, int na) {
  char *p = reserve(b, 200 + (size_t)(nb + na) * 64);
  if (!p)
    return BL_ETOOBIG;
  p = fmt_str(p, "{\"e\":\"depthUpdate\",\"E\":");
  p = fmt_i64(p, event_time);
  p = fmt_str(p, ",\"s\":\"");
  p = fmt_str(p, sy->name);
  p = fmt_str(p, "\",\"U\":");
  p = fmt_i64(p, first_uid);
  p = fmt_str(p, ",\"u\":");
  p = fmt_i64(p, last_uid);
  p = fmt_str(p, ",\"b\":");
  p = fmt_levels(p, bids, nb);
  p = fmt_str(p, ",\"a\":");
  p = fmt_levels(p, asks, na);
  p = fmt_str(p, "}");
  commit(b, p);
  return 0;
}

/* Used by rest.c: a snapshot body. */
int fmt_depth_snapshot(struct buf *b, int64_t uid, const struct mk_level *bids,
                       const struct mk_level *asks, int n) {
  char *p = reserve(b, 100 + (size_t)n * 128);
  if (!p)
    return BL_ETOOBIG;
  p = fmt_str(p, "{\"lastUpdateId\":");
  p = fmt_i64(p, uid);
  p = fmt_str(p, ",\"bids\":");
  p = fmt_levels(p, bids, n);
  p = fmt_str(p, ",\"asks\":");
  p = fmt_levels(p, asks, n);
  p = fmt_str(p, "}");
  commit(b, p);
  return 0;
}

/* Used by rest.c: one REST kline row (12 elements). */
int fmt_kline_row(struct buf *b, const struct mk_market *m, int iv,
                  int64_t open_time, const struct mk_agg *a) {
  char *p = reserve(b, 500);
  (void)m;
  if (!p)
    return BL_ETOOBIG;
  *p++ = '[';
  p = fmt_i64(p, open_time);
  *p++ = ',';
  p = fmt_qdec8(p, a->o);
  *p++ = ',';
  p = fmt_qdec8(p, a->h);
  *p++ = ',';
  p = fmt_qdec8(p, a->l);
  *p++ = ',';
  p = fmt_qdec8(p, a->c);
  p = fmt_str(p, ",\"");
  p = fmt_fixed128(p, a->vol, 8);
  p = fmt_str(p, "\",");
  p = fmt_i64(p, mk_bar_next(iv, open_time) - 1);
  *p++ = ',';
  p = fmt_qdec16(p, a->qvol);
  *p++ = ',';
  p = fmt_i64(p, a->n);
  p = fmt_str(p, ",\"");
  p = fmt_fixed128(p, a->tbvol, 8);
  p = fmt_str(p, "\",");
  p = fmt_qdec16(p, a->tbqvol);
  p = fmt_str(p, ",\"0\"]");
  commit(b, p);
  return 0;
}

/* Used by rest.c: one REST aggTrade item. */
int fmt_agg_trade_rest(struct buf *b, const struct mk_trade *t) {
  char *p = reserve(b, 300);
  if (!p)
    return BL_ETOOBIG;
  p = fmt_str(p, "{\"a\":");
  p = fmt_i64(p, t->id);
  p = fmt_str(p, ",\"p\":");
  p = fmt_qdec8(p, t->price);
  p = fmt_str(p, ",\"q\":");
  p = fmt_qdec8(p, t->qty);
  p = fmt_str(p, ",\"f\":");
  p = fmt_i64(p, t->tid);
  p = fmt_str(p, ",\"l\":");
  p = fmt_i64(p, t->tid);
  p = fmt_str(p, ",\"T\":");
  p = fmt_i64(p, t->time);
  p = fmt_str(p, ",\"m\":");
  p = fmt_bool(p, t->buyer_maker);
  p = fmt_str(p, ",\"M\":true}");
  commit(b, p);
  return 0;
}

/* Used by rest.c: the ticker/24hr FULL object. */
int fmt_ticker_rest(struct buf *b, const struct mk_market *m, int s,
                    int64_t now) {
  struct mk_ticker tk;
  char *p = reserve(b, 1500);
  if (!p)
    return BL_ETOOBIG;
  mk_ticker_get(m, s, now, &tk);
  p = fmt_str(p, "{\"symbol\":\"");
  p = fmt_str(p, m->sym[s].name);
  p = fmt_str(p, "\",\"priceChange\":");
  p = fmt_qdec8(p, tk.change);
  p = fmt_str(p, ",\"priceChangePercent\":\"");
  p = fmt_fixed128(p, tk.pct_milli, 3);
  p = fmt_str(p, "\",\"weightedAvgPrice\":");
  p = fmt_qdec8(p, tk.wavg);
  p = fmt_str(p, ",\"prevClosePrice\":");
  p = fmt_qdec8(p, tk.prev_close);
  p = fmt_str(p, ",\"lastPrice\":");
  p = fmt_qdec8(p, tk.last);
  p = fmt_str(p, ",\"lastQty\":");
  p = fmt_qdec8(p, tk.last_qty);
  p = fmt_str(p, ",\"bidPrice\":");
  p = fmt_qdec8(p, tk.bid);
  p = fmt_str(p, ",\"bidQty\":");
  p = fmt_qdec8(p, tk.bid_qty);
  p = fmt_str(p, ",\"askPrice\":");
  p = fmt_qdec8(p, tk.ask);
  p = fmt_str(p, ",\"askQty\":");
  p = fmt_qdec8(p, tk.ask_qty);
  p = fmt_str(p, ",\"openPrice\":");
  p = fmt_qdec8(p, tk.a.o);
  p = fmt_str(p, ",\"highPrice\":");
  p = fmt_qdec8(p, tk.a.h);
  p = fmt_str(p, ",\"lowPrice\":");
  p = fmt_qdec8(p, tk.a.l);
  p = fmt_str(p, ",\"volume\":\"");
  p = fmt_fixed128(p, tk.a.vol, 8);
  p = fmt_str(p, "\",\"quoteVolume\":");
  p = fmt_qdec16(p, tk.a.qvol);
  p = fmt_str(p, ",\"openTime\":");
  p = fmt_i64(p, tk.open_time);
  p = fmt_str(p, ",\"closeTime\":");
  p = fmt_i64(p, tk.close_time);
  p = fmt_str(p, ",\"firstId\":");
  p = fmt_i64(p, tk.first_id);
  p = fmt_str(p, ",\"lastId\":");
  p = fmt_i64(p, tk.last_id);
  p = fmt_str(p, ",\"count\":");
  p = fmt_i64(p, tk.a.n);
  p = fmt_str(p, "}");
  commit(b, p);
  return 0;
}

int fmt_ws_text_frame(struct buf *b, const char *data, size_t len) {
  unsigned char h[10];
  size_t hl = 2, i;
  char *p;
  h[0] = 0x81; /* FIN, text */
  if (len < 126) {
    h[1] = (unsigned char)len;
  } else if (len < 65536) {
    h[1] = 126;
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
    hl = 4;
  } else {
    h[1] = 127;
    for (i = 0; i < 8; i++)
      h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    hl = 10;
  }
  if (buf_reserve(b, hl + len) != 0)
    return BL_ETOOBIG;
  p = b->data + b->len;
  memcpy(p, h, hl);
  memcpy(p + hl, data, len);
  b->len += hl + len;
  b->data[b->len] = '\0';
  return 0;
}

long fmt_ws_frame_next(const char *p, size_t avail, size_t *payload_off,
                       size_t *payload_len) {
  const unsigned char *h = (const unsigned char *)p;
  uint64_t len;
  size_t hl = 2, i;
  if (avail < 2)
    return 0;
  len = h[1] & 0x7f;
  if (len == 126)
    hl = 4;
  else if (len == 127)
    hl = 10;
  if (avail < hl)
    return 0;
  if (hl == 4) {
    len = ((uint64_t)h[2] << 8) | h[3];
  } else if (hl == 10) {
    len = 0;
    for (i = 0; i < 8; i++)
      len = (len << 8) | h[2 + i];
  }
  if (len > avail - hl)
    return 0;
  *payload_off = hl;
  *payload_len = (size_t)len;
  return (long)(hl + len);
}
