/*
 * envelope.c: JSON message bodies and channel/key names for Redis (see
 * envelope.h). Pure functions on struct buf; no state. Klines, tickers and
 * trades have a fast writer (one reserve, then a cursor) beside the
 * piecewise builder it falls back to.
 */
#include "sink/envelope.h"

#include <inttypes.h>
#include <string.h>

#include "core/decimal.h"
#include "core/err.h"

static const char *const kind_names[] = {"kline", "ticker", "depth", "trade"};

const char *envelope_kind_name(enum envelope_kind kind) {
  if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
    return "unknown";
  return kind_names[kind];
}

/* Length of the valid UTF-8 sequence at |p| (at most |n| bytes), 0 when
 * it is not valid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  unsigned char lo = 0x80, hi = 0xBF;
  size_t len, i;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4;
  else
    return 0;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (n < len)
    return 0;
  if (p[1] < lo || p[1] > hi)
    return 0;
  for (i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xBF)
      return 0;
  return len;
}

int envelope_append_string(struct buf *out, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  int rv = buf_append_char(out, '"');
  while (!rv && n > 0) {
    size_t run = 0, k;
    /* Copy plain runs in one call. */
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
           p[run] != '\\')
      run++;
    if (run) {
      rv = buf_append(out, p, run);
      p += run;
      n -= run;
      continue;
    }
    switch (*p) {
    case '"':
      rv = buf_append(out, "\\\"", 2);
      break;
    case '\\':
      rv = buf_append(out, "\\\\", 2);
      break;
    case '\n':
      rv = buf_append(out, "\\n", 2);
      break;
    case '\r':
      rv = buf_append(out, "\\r", 2);
      break;
    case '\t':
      rv = buf_append(out, "\\t", 2);
      break;
    case '\b':
      rv = buf_append(out, "\\b", 2);
      break;
    case '\f':
      rv = buf_append(out, "\\f", 2);
      break;
    default:
      if (*p < 0x20) {
        rv = buf_printf(out, "\\u%04x", *p);
        break;
      }
      k = utf8_len(p, n);
      if (k == 0) {
        rv = buf_append(out, "\\ufffd", 6);
        k = 1;
      } else {
        rv = buf_append(out, p, k);
      }
      p += k;
      n -= k;
      continue;
    }
    p++;
    n--;
  }
  if (!rv)
    rv = buf_append_char(out, '"');
  return rv;
}

/* "00" .. "99" */
static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Eight digits of |v| (< 10^8), zero-padded, at |p|: two independent
 * 32-bit halves, each two pairs from the table. */
static void put8(char *p, uint32_t v) {
  uint32_t hi = v / 10000, lo = v % 10000;
  memcpy(p, digits2 + 2 * (hi / 100), 2);
  memcpy(p + 2, digits2 + 2 * (hi % 100), 2);
  memcpy(p + 4, digits2 + 2 * (lo / 100), 2);
  memcpy(p + 6, digits2 + 2 * (lo % 100), 2);
}

/* Decimal digits of |u| written backwards ending at |end|; returns the
 * start. |end| must have room for 20 digits before it. Eight digits at a
 * time while the value is large (ids and ms times have 10-13), then
 * pairs in 32-bit arithmetic: a chain of 64-bit divisions by 100 was
 * most of the envelope's integer cost. */
static char *fmt_u64(char *end, uint64_t u) {
  char *p = end;
  uint32_t v;
  while (u >= 100000000) {
    p -= 8;
    put8(p, (uint32_t)(u % 100000000));
    u /= 100000000;
  }
  v = (uint32_t)u;
  while (v >= 100) {
    unsigned r = v % 100;
    v /= 100;
    p -= 2;
    memcpy(p, digits2 + 2 * r, 2);
  }
  if (v >= 10) {
    p -= 2;
    memcpy(p, digits2 + 2 * v, 2);
  } else {
    *--p = (char)('0' + v);
  }
  return p;
}

/* The same for a signed value; room for 20 digits and a sign. */
static char *fmt_i64(char *end, int64_t v) {
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *p = fmt_u64(end, u);
  if (v < 0)
    *--p = '-';
  return p;
}

/* ,"name": (the formatting below copies strings and writes integers
 * directly: printf-style formatting was a fifth of the publish cost) */
static int field_name(struct buf *out, const char *name) {
  size_t n = strlen(name);
  int rv = buf_reserve(out, n + 4);
  if (rv)
    return rv;
  out->data[out->len++] = ',';
  out->data[out->len++] = '"';
  memcpy(out->data + out->len, name, n);
  out->len += n;
  out->data[out->len++] = '"';
  out->data[out->len++] = ':';
  out->data[out->len] = '\0';
  return 0;
}

/* ,"name":"value" */
static int field_str(struct buf *out, const char *name, const char *value) {
  int rv = field_name(out, name);
  return rv ? rv : envelope_append_string(out, value);
}

static int append_i64(struct buf *out, int64_t v) {
  char tmp[24];
  char *p = fmt_i64(tmp + sizeof tmp, v);
  return buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
}

static int field_int(struct buf *out, const char *name, int64_t v) {
  int rv = field_name(out, name);
  return rv ? rv : append_i64(out, v);
}

static int field_bool(struct buf *out, const char *name, int v) {
  int rv = field_name(out, name);
  return rv ? rv
            : (v ? buf_append(out, "true", 4) : buf_append(out, "false", 5));
}

/* {"type":..,"symbol":..,"timestamp":..,"seq":..,"data":{"symbol":.. */
static int head(struct buf *out, const char *type, const char *symbol,
                int64_t ts, uint64_t seq) {
  static const char seq_lit[] = ",\"seq\":";
  static const char data_lit[] = ",\"data\":{\"symbol\":";
  char tmp[24];
  char *p;
  int rv;
  buf_reset(out);
  rv = buf_append(out, "{\"type\":\"", 9);
  if (!rv)
    rv = buf_append_str(out, type);
  if (!rv)
    rv = buf_append(out, "\",\"symbol\":", 11);
  if (!rv)
    rv = envelope_append_string(out, symbol);
  if (!rv)
    rv = field_int(out, "timestamp", ts);
  if (!rv)
    rv = buf_append(out, seq_lit, sizeof seq_lit - 1);
  if (!rv) {
    p = fmt_u64(tmp + sizeof tmp, seq);
    rv = buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
  }
  if (!rv)
    rv = buf_append(out, data_lit, sizeof data_lit - 1);
  if (!rv)
    rv = envelope_append_string(out, symbol);
  return rv;
}

static int tail(struct buf *out) {
  return buf_append(out, "}}", 2);
}

static int kline_slow(struct buf *out, const struct ev_kline *k, uint64_t seq) {
  int rv = head(out, "kline", k->symbol, k->event_time, seq);
  if (!rv)
    rv = field_str(out, "interval", k->interval);
  if (!rv)
    rv = field_int(out, "open_time", k->open_time);
  if (!rv)
    rv = field_int(out, "close_time", k->close_time);
  if (!rv)
    rv = field_str(out, "open_price", k->open);
  if (!rv)
    rv = field_str(out, "high_price", k->high);
  if (!rv)
    rv = field_str(out, "low_price", k->low);
  if (!rv)
    rv = field_str(out, "close_price", k->close);
  if (!rv)
    rv = field_str(out, "volume", k->volume);
  if (!rv)
    rv = field_str(out, "quote_volume", k->quote_volume);
  if (!rv)
    rv = field_int(out, "trades_count", k->trades_count);
  if (!rv)
    rv = field_str(out, "taker_buy_volume", k->taker_buy_volume);
  if (!rv)
    rv = field_str(out, "taker_buy_quote_volume", k->taker_buy_quote_volume);
  if (!rv)
    rv = field_int(out, "first_trade_id", k->first_trade_id);
  if (!rv)
    rv = field_int(out, "last_trade_id", k->last_trade_id);
  if (!rv)
    rv = field_bool(out, "is_closed", k->is_closed);
  if (!rv)
    rv = field_str(out, "source", "ws");
  return rv ? rv : tail(out);
}

static int ticker_slow(struct buf *out, const struct ev_ticker *t,
                       uint64_t seq) {
  int rv = head(out, "ticker", t->symbol, t->event_time, seq);
  if (!rv)
    rv = field_int(out, "timestamp", t->event_time);
  if (!rv)
    rv = field_str(out, "price", t->price);
  if (!rv)
    rv = field_str(out, "price_change_24h", t->price_change);
  if (!rv)
    rv = field_str(out, "price_change_percent_24h", t->price_change_percent);
  if (!rv)
    rv = field_str(out, "weighted_avg_price", t->weighted_avg_price);
  if (!rv)
    rv = field_str(out, "open_price_24h", t->open_price);
  if (!rv)
    rv = field_str(out, "high_24h", t->high);
  if (!rv)
    rv = field_str(out, "low_24h", t->low);
  if (!rv)
    rv = field_str(out, "volume_24h", t->volume);
  if (!rv)
    rv = field_str(out, "quote_volume_24h", t->quote_volume);
  if (!rv)
    rv = field_str(out, "bid_price", t->bid_price);
  if (!rv)
    rv = field_str(out, "bid_qty", t->bid_qty);
  if (!rv)
    rv = field_str(out, "ask_price", t->ask_price);
  if (!rv)
    rv = field_str(out, "ask_qty", t->ask_qty);
  if (!rv)
    rv = field_int(out, "trades_count_24h", t->trades_count);
  if (!rv)
    rv = field_int(out, "first_trade_id", t->first_trade_id);
  if (!rv)
    rv = field_int(out, "last_trade_id", t->last_trade_id);
  return rv ? rv : tail(out);
}

static int trade_slow(struct buf *out, const struct ev_trade *t, uint64_t seq) {
  int rv = head(out, "trade", t->symbol, t->event_time, seq);
  if (!rv)
    rv = field_int(out, "agg_trade_id", t->agg_trade_id);
  if (!rv)
    rv = field_str(out, "price", t->price);
  if (!rv)
    rv = field_str(out, "quantity", t->quantity);
  if (!rv)
    rv = field_int(out, "first_trade_id", t->first_trade_id);
  if (!rv)
    rv = field_int(out, "last_trade_id", t->last_trade_id);
  if (!rv)
    rv = field_int(out, "trade_time", t->trade_time);
  if (!rv)
    rv = field_bool(out, "is_buyer_maker", t->is_buyer_maker);
  if (!rv)
    rv = field_str(out, "source", "ws");
  return rv ? rv : tail(out);
}

/* ---- the fast writers ----------------------------------------------------
 *
 * The builders above grow |out| piece by piece. The ones below reserve the
 * most a message of its kind can take once, then write with a cursor: the
 * same bytes, without a bounds check per piece. When that reserve does not
 * fit |out|'s limit (a small buffer), the piecewise builder runs instead,
 * so the result and the errors are the same either way. */

/* 1 for bytes envelope_append_string copies unchanged. */
static const unsigned char plain[256] = {
#define P4(x) x, x, x, x
#define P16(x) P4(x), P4(x), P4(x), P4(x)
    P16(0), P16(0),            /* 0x00-0x1F */
    1,      1,      0,      1, /* ' ' '!' '"' '#' */
    P4(1),  P4(1),  P4(1),     /* 0x24-0x2F */
    P16(1), P16(1),            /* 0x30-0x4F */
    P4(1),  P4(1),  P4(1),     /* 0x50-0x5B */
    0,      1,      1,      1, /* '\\' ']' '^' '_' */
    P16(1), P16(1),            /* 0x60-0x7F */
    P16(0), P16(0), P16(0), P16(0), P16(0),
    P16(0), P16(0), P16(0)
#undef P16
#undef P4
};

/* The most one string from a char array of |size| bytes takes quoted and
 * escaped (every byte may become \uXXXX), and the budget for the literals
 * and integers of any message. */
#define ESC_MAX(size) (6 * (size) + 2)
#define LIT_BUDGET 1024

#define W_LIT(p, lit) (memcpy(p, lit, sizeof lit - 1), (p) + sizeof lit - 1)

/* envelope_append_string at a cursor, for a string in a char array of
 * |size| bytes (it never reads past the array, which the reserve counts
 * on). */
static char *w_str(char *p, const char *str, size_t size) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t n = strnlen(str, size), run, k;
  *p++ = '"';
  while (n > 0) {
    for (run = 0; run < n && plain[s[run]]; run++)
      ;
    memcpy(p, s, run);
    p += run;
    s += run;
    n -= run;
    if (n == 0)
      break;
    k = 1;
    switch (*s) {
    case '"':
      p = W_LIT(p, "\\\"");
      break;
    case '\\':
      p = W_LIT(p, "\\\\");
      break;
    case '\n':
      p = W_LIT(p, "\\n");
      break;
    case '\r':
      p = W_LIT(p, "\\r");
      break;
    case '\t':
      p = W_LIT(p, "\\t");
      break;
    case '\b':
      p = W_LIT(p, "\\b");
      break;
    case '\f':
      p = W_LIT(p, "\\f");
      break;
    default:
      if (*s < 0x20) {
        p = W_LIT(p, "\\u00");
        *p++ = hex[*s >> 4];
        *p++ = hex[*s & 15];
        break;
      }
      k = utf8_len(s, n);
      if (k == 0) {
        p = W_LIT(p, "\\ufffd");
        k = 1;
      } else {
        memcpy(p, s, k);
        p += k;
      }
      break;
    }
    s += k;
    n -= k;
  }
  *p++ = '"';
  return p;
}

/* Digits of |u|: 1 for 0..9, 20 at most. The bit length times log10(2)
 * (1233 / 4096) is the digit count or one more; one comparison decides. */
static size_t n_digits(uint64_t u) {
  uint64_t v = u | 1; /* 0 has one digit; the low bit never changes it */
  unsigned t = (unsigned)(64 - __builtin_clzll(v)) * 1233 >> 12;
  return t + 1 - (v < dec_pow10[t]);
}

static char *w_u64(char *p, uint64_t u) {
  char *end = p + n_digits(u);
  fmt_u64(end, u);
  return end;
}

static char *w_i64(char *p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return w_u64(p, (uint64_t)0 - (uint64_t)v);
  }
  return w_u64(p, (uint64_t)v);
}

static char *w_head(char *p, const char *type_lit,
                    const char symbol[EV_SYMBOL_MAX], int64_t ts,
                    uint64_t seq) {
  size_t n;
  p = W_LIT(p, "{\"type\":\"");
  n = strlen(type_lit);
  memcpy(p, type_lit, n);
  p = W_LIT(p + n, "\",\"symbol\":");
  p = w_str(p, symbol, EV_SYMBOL_MAX);
  p = W_LIT(p, ",\"timestamp\":");
  p = w_i64(p, ts);
  p = W_LIT(p, ",\"seq\":");
  p = w_u64(p, seq);
  p = W_LIT(p, ",\"data\":{\"symbol\":");
  return w_str(p, symbol, EV_SYMBOL_MAX);
}

static int w_end(struct buf *out, char *p) {
  p = W_LIT(p, "}}");
  out->len = (size_t)(p - out->data);
  *p = '\0';
  return 0;
}

int envelope_trade(struct buf *out, const struct ev_trade *t, uint64_t seq) {
  char *p;
  buf_reset(out);
  if (buf_reserve(out, LIT_BUDGET + 2 * ESC_MAX(sizeof t->symbol) +
                           ESC_MAX(sizeof t->price) +
                           ESC_MAX(sizeof t->quantity)))
    return trade_slow(out, t, seq);
  p = w_head(out->data, "trade", t->symbol, t->event_time, seq);
  p = W_LIT(p, ",\"agg_trade_id\":");
  p = w_i64(p, t->agg_trade_id);
  p = W_LIT(p, ",\"price\":");
  p = w_str(p, t->price, sizeof t->price);
  p = W_LIT(p, ",\"quantity\":");
  p = w_str(p, t->quantity, sizeof t->quantity);
  p = W_LIT(p, ",\"first_trade_id\":");
  p = w_i64(p, t->first_trade_id);
  p = W_LIT(p, ",\"last_trade_id\":");
  p = w_i64(p, t->last_trade_id);
  p = W_LIT(p, ",\"trade_time\":");
  p = w_i64(p, t->trade_time);
  p = t->is_buyer_maker ? W_LIT(p, ",\"is_buyer_maker\":true")
                        : W_LIT(p, ",\"is_buyer_maker\":false");
  p = W_LIT(p, ",\"source\":\"ws\"");
  return w_end(out, p);
}

int envelope_kline(struct buf *out, const struct ev_kline *k, uint64_t seq) {
  char *p;
  buf_reset(out);
  if (buf_reserve(out, LIT_BUDGET + 2 * ESC_MAX(sizeof k->symbol) +
                           ESC_MAX(sizeof k->interval) +
                           8 * ESC_MAX(sizeof k->open)))
    return kline_slow(out, k, seq);
  p = w_head(out->data, "kline", k->symbol, k->event_time, seq);
  p = W_LIT(p, ",\"interval\":");
  p = w_str(p, k->interval, sizeof k->interval);
  p = W_LIT(p, ",\"open_time\":");
  p = w_i64(p, k->open_time);
  p = W_LIT(p, ",\"close_time\":");
  p = w_i64(p, k->close_time);
  p = W_LIT(p, ",\"open_price\":");
  p = w_str(p, k->open, sizeof k->open);
  p = W_LIT(p, ",\"high_price\":");
  p = w_str(p, k->high, sizeof k->high);
  p = W_LIT(p, ",\"low_price\":");
  p = w_str(p, k->low, sizeof k->low);
  p = W_LIT(p, ",\"close_price\":");
  p = w_str(p, k->close, sizeof k->close);
  p = W_LIT(p, ",\"volume\":");
  p = w_str(p, k->volume, sizeof k->volume);
  p = W_LIT(p, ",\"quote_volume\":");
  p = w_str(p, k->quote_volume, sizeof k->quote_volume);
  p = W_LIT(p, ",\"trades_count\":");
  p = w_i64(p, k->trades_count);
  p = W_LIT(p, ",\"taker_buy_volume\":");
  p = w_str(p, k->taker_buy_volume, sizeof k->taker_buy_volume);
  p = W_LIT(p, ",\"taker_buy_quote_volume\":");
  p = w_str(p, k->taker_buy_quote_volume, sizeof k->taker_buy_quote_volume);
  p = W_LIT(p, ",\"first_trade_id\":");
  p = w_i64(p, k->first_trade_id);
  p = W_LIT(p, ",\"last_trade_id\":");
  p = w_i64(p, k->last_trade_id);
  p = k->is_closed ? W_LIT(p, ",\"is_closed\":true")
                   : W_LIT(p, ",\"is_closed\":false");
  p = W_LIT(p, ",\"source\":\"ws\"");
  return w_end(out, p);
}

int envelope_ticker(struct buf *out, const struct ev_ticker *t, uint64_t seq) {
  char *p;
  buf_reset(out);
  if (buf_reserve(out, LIT_BUDGET + 2 * ESC_MAX(sizeof t->symbol) +
                           14 * ESC_MAX(sizeof t->price)))
    return ticker_slow(out, t, seq);
  p = w_head(out->data, "ticker", t->symbol, t->event_time, seq);
  p = W_LIT(p, ",\"timestamp\":");
  p = w_i64(p, t->event_time);
  p = W_LIT(p, ",\"price\":");
  p = w_str(p, t->price, sizeof t->price);
  p = W_LIT(p, ",\"price_change_24h\":");
  p = w_str(p, t->price_change, sizeof t->price_change);
  p = W_LIT(p, ",\"price_change_percent_24h\":");
  p = w_str(p, t->price_change_percent, sizeof t->price_change_percent);
  p = W_LIT(p, ",\"weighted_avg_price\":");
  p = w_str(p, t->weighted_avg_price, sizeof t->weighted_avg_price);
  p = W_LIT(p, ",\"open_price_24h\":");
  p = w_str(p, t->open_price, sizeof t->open_price);
  p = W_LIT(p, ",\"high_24h\":");
  p = w_str(p, t->high, sizeof t->high);
  p = W_LIT(p, ",\"low_24h\":");
  p = w_str(p, t->low, sizeof t->low);
  p = W_LIT(p, ",\"volume_24h\":");
  p = w_str(p, t->volume, sizeof t->volume);
  p = W_LIT(p, ",\"quote_volume_24h\":");
  p = w_str(p, t->quote_volume, sizeof t->quote_volume);
  p = W_LIT(p, ",\"bid_price\":");
  p = w_str(p, t->bid_price, sizeof t->bid_price);
  p = W_LIT(p, ",\"bid_qty\":");
  p = w_str(p, t->bid_qty, sizeof t->bid_qty);
  p = W_LIT(p, ",\"ask_price\":");
  p = w_str(p, t->ask_price, sizeof t->ask_price);
  p = W_LIT(p, ",\"ask_qty\":");
  p = w_str(p, t->ask_qty, sizeof t->ask_qty);
  p = W_LIT(p, ",\"trades_count_24h\":");
  p = w_i64(p, t->trades_count);
  p = W_LIT(p, ",\"first_trade_id\":");
  p = w_i64(p, t->first_trade_id);
  p = W_LIT(p, ",\"last_trade_id\":");
  p = w_i64(p, t->last_trade_id);
  return w_end(out, p);
}

static int levels(struct buf *out, const char *name, const struct ev_level *l,
                  size_t n) {
  size_t i;
  int rv = field_name(out, name);
  if (!rv)
    rv = buf_append_char(out, '[');
  for (i = 0; i < n && !rv; i++) {
    rv = buf_append_str(out, i ? ",[" : "[");
    if (!rv)
      rv = envelope_append_string(out, l[i].price);
    if (!rv)
      rv = buf_append_char(out, ',');
    if (!rv)
      rv = envelope_append_string(out, l[i].qty);
    if (!rv)
      rv = buf_append_char(out, ']');
  }
  return rv ? rv : buf_append_char(out, ']');
}

int envelope_depth(struct buf *out, const struct sink_depth *d, uint64_t seq) {
  int rv = head(out, "depth", d->symbol, d->event_time, seq);
  if (!rv)
    rv = field_int(out, "timestamp", d->event_time);
  if (!rv)
    rv = field_int(out, "last_update_id", d->last_update_id);
  if (!rv)
    rv = field_str(out, "book_state", d->synced ? "synced" : "resyncing");
  if (!rv)
    rv = levels(out, "bids", d->bids, d->synced ? d->n_bids : 0);
  if (!rv)
    rv = levels(out, "asks", d->asks, d->synced ? d->n_asks : 0);
  return rv ? rv : tail(out);
}

int envelope_symbols(struct buf *out, const char *const *symbols, size_t n) {
  size_t i;
  int rv;
  buf_reset(out);
  rv = buf_append_char(out, '[');
  for (i = 0; i < n && !rv; i++) {
    if (i)
      rv = buf_append_char(out, ',');
    if (!rv)
      rv = envelope_append_string(out, symbols[i]);
  }
  return rv ? rv : buf_append_char(out, ']');
}

int envelope_name(struct buf *out, const char *prefix, enum envelope_kind kind,
                  const char *symbol, const char *interval, int latest) {
  int rv;
  if ((unsigned)kind > ENVELOPE_TRADE || !prefix || !symbol || !symbol[0] ||
      (kind == ENVELOPE_KLINE && (!interval || !interval[0])))
    return BL_EINVAL;
  buf_reset(out);
  rv = buf_append_str(out, prefix);
  if (!rv)
    rv = buf_append_char(out, ':');
  if (!rv && latest)
    rv = buf_append(out, "latest:", 7);
  if (!rv)
    rv = buf_append_str(out, kind_names[kind]);
  if (!rv)
    rv = buf_append_char(out, ':');
  if (!rv)
    rv = buf_append_str(out, symbol);
  if (!rv && kind == ENVELOPE_KLINE) {
    rv = buf_append_char(out, ':');
    if (!rv)
      rv = buf_append_str(out, interval);
  }
  return rv;
}
