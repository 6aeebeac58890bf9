/*
 * stream_plan.c: stream names, connection packing, combined URLs,
 * SUBSCRIBE bodies and the duplicate filter (see stream_plan.h). Pure
 * functions over buffers; the only state is the dedupe map.
 */
#include "binance/stream_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int plan_streams_per_symbol(const struct plan_types *t) {
  return (t->kline ? t->n_intervals : 0) + !!t->ticker + !!t->depth +
         !!t->trade;
}

int plan_symbols_per_connection(const struct plan_types *t, int max_streams) {
  int per = plan_streams_per_symbol(t);
  if (per <= 0)
    return max_streams > 0 ? max_streams : 1;
  return max_streams / per > 0 ? max_streams / per : 1;
}

/* Stream names use the lower-case symbol; only ASCII letters change, so
 * UTF-8 symbols pass through byte for byte. */
static void lower_ascii(char *dst, size_t cap, const char *src) {
  size_t i;
  for (i = 0; src[i] && i + 1 < cap; i++) {
    char c = src[i];
    dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  dst[i] = '\0';
}

int plan_symbol_streams(const char *symbol, const struct plan_types *t,
                        char names[][EV_STREAM_MAX], int max) {
  char low[EV_SYMBOL_MAX];
  int n = 0;
  size_t len = strlen(symbol);
  if (!len || len >= EV_SYMBOL_MAX)
    return BL_EINVAL;
  lower_ascii(low, sizeof low, symbol);
#define PLAN_ADD(...)                                                          \
  do {                                                                         \
    if (n < max)                                                               \
      snprintf(names[n], EV_STREAM_MAX, __VA_ARGS__);                          \
    n++;                                                                       \
  } while (0)
  if (t->kline)
    for (int i = 0; i < t->n_intervals; i++)
      PLAN_ADD("%s@kline_%s", low, t->intervals[i]);
  if (t->ticker)
    PLAN_ADD("%s@ticker", low);
  if (t->depth)
    PLAN_ADD("%s@depth@100ms", low);
  if (t->trade)
    PLAN_ADD("%s@aggTrade", low);
#undef PLAN_ADD
  return n < max ? n : max;
}

/* Appends a stream name to a URL, percent-encoding non-ASCII bytes (UTF-8
 * symbols). */
static int url_append_name(struct buf *url, const char *name) {
  static const char hex[] = "0123456789ABCDEF";
  int rv = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p && !rv; p++) {
    if (*p < 0x80) {
      rv = buf_append(url, (const char *)p, 1);
    } else {
      char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      rv = buf_append(url, esc, 3);
    }
  }
  return rv;
}

int plan_url(struct buf *url, const char *base, const char *const *symbols,
             int n_symbols, const struct plan_types *t, size_t max_len) {
  char names[PLAN_MAX_STREAMS_PER_SYMBOL][EV_STREAM_MAX];
  size_t start = url->len;
  int rv = buf_printf(url, "%s/stream?streams=", base);
  int first = 1, included = 0;
  for (int i = 0; !rv && i < n_symbols; i++) {
    size_t before = url->len;
    int was_first = first;
    int n =
        plan_symbol_streams(symbols[i], t, names, PLAN_MAX_STREAMS_PER_SYMBOL);
    for (int j = 0; !rv && j < n; j++) {
      rv = first ? 0 : buf_append(url, "/", 1);
      if (!rv)
        rv = url_append_name(url, names[j]);
      first = 0;
    }
    if (!rv && included && url->len - start > max_len) {
      /* This symbol does not fit: it is left for a SUBSCRIBE. */
      url->len = before;
      url->data[before] = '\0';
      first = was_first;
      break;
    }
    if (!rv)
      included++;
  }
  return rv ? rv : included;
}

int plan_request(struct buf *out, int subscribe, int64_t id,
                 const char *const *symbols, int n_symbols,
                 const struct plan_types *t) {
  char names[PLAN_MAX_STREAMS_PER_SYMBOL][EV_STREAM_MAX];
  int rv = buf_printf(out, "{\"method\":\"%s\",\"params\":[",
                      subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
  int first = 1;
  for (int i = 0; !rv && i < n_symbols; i++) {
    int n =
        plan_symbol_streams(symbols[i], t, names, PLAN_MAX_STREAMS_PER_SYMBOL);
    for (int j = 0; !rv && j < n; j++) {
      rv = buf_printf(out, "%s\"%s\"", first ? "" : ",", names[j]);
      first = 0;
    }
  }
  if (!rv)
    rv = buf_printf(out, "],\"id\":%lld}", (long long)id);
  return rv;
}

int plan_dedupe_init(struct plan_dedupe *d, size_t max_streams) {
  strmap_init(&d->last, max_streams);
  d->duplicates = 0;
  return 0;
}

void plan_dedupe_free(struct plan_dedupe *d) {
  size_t it = 0;
  const char *k;
  void *v;
  while (strmap_next(&d->last, &it, &k, &v))
    free(v);
  strmap_free(&d->last);
}

/* The last ordering key seen on one stream. |sub| breaks ties of |key|:
 * a kline's final update (x:true) and the next bar's first update can
 * carry the same E, so klines order by (E, open time, closed). */
struct dedupe_key {
  int64_t key, sub;
};

/* Copies as much of |s| as fits before |end|; returns the new end. */
static char *put_clamped(char *p, const char *end, const char *s) {
  size_t m = strlen(s);
  if (m > (size_t)(end - p))
    m = (size_t)(end - p);
  memcpy(p, s, m);
  return p + m;
}

/* snprintf(name, cap, "T:%s[:%s]", a, b) without printf (this runs per
 * event): |b| NULL leaves out ":%s". Truncates as snprintf would. */
static void key_name(char *name, size_t cap, char type, const char *a,
                     const char *b) {
  char *end = name + cap - 1;
  char *p = name;
  if (p < end)
    *p++ = type;
  if (p < end)
    *p++ = ':';
  p = put_clamped(p, end, a);
  if (b) {
    if (p < end)
      *p++ = ':';
    p = put_clamped(p, end, b);
  }
  *p = '\0';
}

/* The ordering key of an event, and the name it is tracked under. Klines
 * are tracked per symbol and interval even on raw connections. */
static int event_key(const struct ev *ev, struct dedupe_key *k, char *name,
                     size_t cap) {
  k->sub = 0;
  switch (ev->type) {
  case EV_KLINE:
    k->key = ev->u.kline.event_time;
    k->sub = ev->u.kline.open_time * 2 + !!ev->u.kline.is_closed;
    key_name(name, cap, 'k', ev->u.kline.symbol, ev->u.kline.interval);
    return 1;
  case EV_TICKER:
    k->key = ev->u.ticker.event_time;
    key_name(name, cap, 't', ev->u.ticker.symbol, NULL);
    return 1;
  case EV_DEPTH:
    k->key = ev->u.depth.final_update_id;
    key_name(name, cap, 'd', ev->u.depth.symbol, NULL);
    return 1;
  case EV_TRADE:
    k->key = ev->u.trade.agg_trade_id;
    key_name(name, cap, 'a', ev->u.trade.symbol, NULL);
    return 1;
  default:
    return 0;
  }
}

int plan_dedupe_check(struct plan_dedupe *d, const struct ev *ev) {
  char name[EV_SYMBOL_MAX + EV_INTERVAL_MAX + 8];
  struct dedupe_key k, *last;
  int rv;
  if (!event_key(ev, &k, name, sizeof name))
    return 1;
  last = strmap_get(&d->last, name);
  if (last) {
    if (k.key < last->key || (k.key == last->key && k.sub <= last->sub)) {
      d->duplicates++;
      return 0;
    }
    *last = k;
    return 1;
  }
  last = malloc(sizeof *last);
  if (!last)
    return BL_ENOMEM;
  *last = k;
  rv = strmap_put(&d->last, name, last);
  if (rv) {
    free(last);
    return rv;
  }
  return 1;
}

void plan_dedupe_forget_symbol(struct plan_dedupe *d, const char *symbol) {
  size_t it = 0, slen = strlen(symbol);
  const char *k;
  void *v;
  char *victims[PLAN_MAX_STREAMS_PER_SYMBOL];
  int n = 0;
  /* Keys look like "k:SYMBOL:1m", "t:SYMBOL", "d:SYMBOL", "a:SYMBOL". */
  while (strmap_next(&d->last, &it, &k, &v) && n < PLAN_MAX_STREAMS_PER_SYMBOL)
    if (!strncmp(k + 2, symbol, slen) &&
        (k[2 + slen] == '\0' || k[2 + slen] == ':'))
      victims[n++] = strdup(k);
  for (int i = 0; i < n; i++) {
    if (victims[i])
      free(strmap_del(&d->last, victims[i]));
    free(victims[i]);
  }
}
