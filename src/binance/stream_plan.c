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

int plan_dedupe_init(struct plan_dedupe *d, size_t max_symbols) {
  strmap_init(&d->last, max_symbols);
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
  int seen;
};

/* One symbol's streams: trade, ticker, depth and up to PLAN_MAX_INTERVALS
 * kline intervals, found by a short scan (klines are a few per second). */
struct plan_dedupe_symbol {
  struct dedupe_key trade, ticker, depth;
  int n_klines;
  struct {
    char interval[EV_INTERVAL_MAX];
    struct dedupe_key last;
  } kline[PLAN_MAX_INTERVALS];
};

struct plan_dedupe_symbol *plan_dedupe_symbol(struct plan_dedupe *d,
                                              const char *symbol, int *status) {
  struct plan_dedupe_symbol *rec = strmap_get(&d->last, symbol);
  int rv;
  *status = 0;
  if (rec)
    return rec;
  rec = calloc(1, sizeof *rec);
  if (!rec) {
    *status = BL_ENOMEM;
    return NULL;
  }
  rv = strmap_put(&d->last, symbol, rec);
  if (rv) {
    free(rec);
    *status = rv;
    return NULL;
  }
  return rec;
}

/* The stream of |ev| in |rec| and its ordering key; NULL for events
 * without one, or a kline interval past the table (*full set). */
static struct dedupe_key *event_key(struct plan_dedupe_symbol *rec,
                                    const struct ev *ev, struct dedupe_key *k,
                                    int *full) {
  k->sub = 0;
  *full = 0;
  switch (ev->type) {
  case EV_KLINE: {
    int i;
    k->key = ev->u.kline.event_time;
    k->sub = ev->u.kline.open_time * 2 + !!ev->u.kline.is_closed;
    for (i = 0; i < rec->n_klines; i++)
      if (!strcmp(rec->kline[i].interval, ev->u.kline.interval))
        return &rec->kline[i].last;
    if (i == PLAN_MAX_INTERVALS) {
      *full = 1;
      return NULL;
    }
    memcpy(rec->kline[i].interval, ev->u.kline.interval, EV_INTERVAL_MAX);
    rec->kline[i].interval[EV_INTERVAL_MAX - 1] = '\0';
    rec->n_klines++;
    return &rec->kline[i].last;
  }
  case EV_TICKER:
    k->key = ev->u.ticker.event_time;
    return &rec->ticker;
  case EV_DEPTH:
    k->key = ev->u.depth.final_update_id;
    return &rec->depth;
  case EV_TRADE:
    k->key = ev->u.trade.agg_trade_id;
    return &rec->trade;
  default:
    return NULL;
  }
}

int plan_dedupe_check_in(struct plan_dedupe *d, struct plan_dedupe_symbol *rec,
                         const struct ev *ev) {
  struct dedupe_key k, *last;
  int full;
  last = event_key(rec, ev, &k, &full);
  if (!last)
    return full ? BL_EFULL : 1;
  if (last->seen &&
      (k.key < last->key || (k.key == last->key && k.sub <= last->sub))) {
    d->duplicates++;
    return 0;
  }
  last->key = k.key;
  last->sub = k.sub;
  last->seen = 1;
  return 1;
}

const char *plan_event_symbol(const struct ev *ev) {
  switch (ev->type) {
  case EV_KLINE:
    return ev->u.kline.symbol;
  case EV_TICKER:
    return ev->u.ticker.symbol;
  case EV_DEPTH:
    return ev->u.depth.symbol;
  case EV_TRADE:
    return ev->u.trade.symbol;
  default:
    return NULL;
  }
}

int plan_dedupe_check(struct plan_dedupe *d, const struct ev *ev) {
  const char *symbol = plan_event_symbol(ev);
  struct plan_dedupe_symbol *rec;
  int rv;
  if (!symbol)
    return 1;
  rec = plan_dedupe_symbol(d, symbol, &rv);
  if (!rec)
    return rv;
  return plan_dedupe_check_in(d, rec, ev);
}

void plan_dedupe_forget_symbol(struct plan_dedupe *d, const char *symbol) {
  free(strmap_del(&d->last, symbol));
}
