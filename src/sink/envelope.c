/*
 * envelope.c: JSON message bodies and channel/key names for Redis (see
 * envelope.h). Pure functions on struct buf; no state.
 */
#include "sink/envelope.h"

#include <inttypes.h>
#include <string.h>

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

/* Decimal digits of |v| written backwards ending at |end|; returns the
 * start. |end| must have room for 20 digits and a sign before it. */
static char *fmt_i64(char *end, int64_t v) {
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *p = end;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    *--p = '-';
  return p;
}

static char *fmt_u64(char *end, uint64_t u) {
  char *p = end;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
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

int envelope_kline(struct buf *out, const struct ev_kline *k, uint64_t seq) {
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

int envelope_ticker(struct buf *out, const struct ev_ticker *t, uint64_t seq) {
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

int envelope_trade(struct buf *out, const struct ev_trade *t, uint64_t seq) {
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
