/*
 * stream_plan.h: the I/O-free half of the stream manager.
 *
 * Given the active symbols and the configured data types, it names the
 * streams (<symbol>@kline_<i>, @ticker, @depth@100ms, @aggTrade), packs
 * symbols onto connections (all of a symbol's streams on one connection, at
 * most max_streams_per_connection streams each), builds the combined-stream
 * URL and the SUBSCRIBE/UNSUBSCRIBE requests, and filters duplicate events
 * (reconnect overlap, rollover, repeated frames) by each stream's own
 * ordering key: E for klines and tickers, u for depth, the aggregate id for
 * trades.
 */
#ifndef BL_BINANCE_STREAM_PLAN_H
#define BL_BINANCE_STREAM_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "binance/events.h"
#include "core/buf.h"
#include "core/strmap.h"

#define PLAN_MAX_INTERVALS 16
#define PLAN_MAX_STREAMS_PER_SYMBOL (PLAN_MAX_INTERVALS + 3)

struct plan_types {
  int kline, ticker, depth, trade;
  const char *intervals[PLAN_MAX_INTERVALS];
  int n_intervals;
};

/* Number of streams one symbol needs. */
int plan_streams_per_symbol(const struct plan_types *t);

/* Symbols that fit on one connection: max(1, max_streams / per_symbol). */
int plan_symbols_per_connection(const struct plan_types *t, int max_streams);

/* Writes the stream names of |symbol| into |names| (at most |max|).
 * Returns how many, or BL_EINVAL for an empty or oversized symbol. */
int plan_symbol_streams(const char *symbol, const struct plan_types *t,
                        char names[][EV_STREAM_MAX], int max);

/* Longest connection URL the stream manager builds. Servers (and the
 * project's mock, whose request-path limit is 2048 bytes) refuse very long
 * request lines, so symbols that do not fit are subscribed after the
 * connection opens. */
#define PLAN_URL_MAX 2000

/* Appends "<base>/stream?streams=a/b/c" for as many of |symbols| as fit in
 * |max_len| bytes (at least one symbol, whole symbols only) to |url|.
 * |base| is binance.ws_url without a trailing slash. Returns the number of
 * symbols included, or a negative buf error. */
int plan_url(struct buf *url, const char *base, const char *const *symbols,
             int n_symbols, const struct plan_types *t, size_t max_len);

/* Appends {"method":"SUBSCRIBE"|"UNSUBSCRIBE","params":[...],"id":N} for
 * the streams of |symbols|. Returns 0 or a buf error. */
int plan_request(struct buf *out, int subscribe, int64_t id,
                 const char *const *symbols, int n_symbols,
                 const struct plan_types *t);

/* Duplicate filter: per symbol, the last ordering key of each of its
 * streams (trade, ticker, depth, each kline interval). */
struct plan_dedupe_symbol;
struct plan_dedupe {
  struct strmap last; /* symbol -> struct plan_dedupe_symbol (private) */
  uint64_t duplicates;
};

int plan_dedupe_init(struct plan_dedupe *d, size_t max_symbols);
void plan_dedupe_free(struct plan_dedupe *d);

/* The record of |symbol|, made on first use. NULL with *status BL_EFULL
 * (more symbols than the limit) or BL_ENOMEM. The record lives until
 * plan_dedupe_forget_symbol or plan_dedupe_free; the stream manager keeps
 * it as the value of its wanted set, so an event costs one lookup. */
struct plan_dedupe_symbol *plan_dedupe_symbol(struct plan_dedupe *d,
                                              const char *symbol, int *status);

/* Returns 1 when |ev| is new (and remembers it), 0 when it is a duplicate
 * or older than what was seen on its stream (counted), or a negative code
 * (BL_EFULL: a kline interval beyond PLAN_MAX_INTERVALS for one symbol,
 * or more symbols than the limit). Events without an ordering key
 * (control replies) are always new. plan_dedupe_check_in takes the
 * event's symbol record, already found. */
int plan_dedupe_check(struct plan_dedupe *d, const struct ev *ev);
int plan_dedupe_check_in(struct plan_dedupe *d, struct plan_dedupe_symbol *rec,
                         const struct ev *ev);

/* The symbol a market event belongs to, or NULL for events without one
 * (control replies, serverShutdown). */
const char *plan_event_symbol(const struct ev *ev);

/* Forgets |symbol| (after it is unsubscribed); its record is freed. */
void plan_dedupe_forget_symbol(struct plan_dedupe *d, const char *symbol);

#endif
