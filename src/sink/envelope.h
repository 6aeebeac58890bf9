/*
 * envelope.h: the JSON bodies of Redis messages and latest values
 * (PRODUCT.md section 7) and the channel and key names, built from the
 * typed events without any I/O.
 *
 *   {"type":"kline","symbol":"BTCUSDT","timestamp":E,"seq":N,"data":{...}}
 *
 * data holds the columns of the matching table row (PRODUCT.md section 5)
 * under the same names: decimals as JSON strings exactly as received,
 * times as integer milliseconds, booleans as true/false, and
 * "source":"ws" for klines and trades (channels carry live data only).
 * Strings are escaped; bytes that are not valid UTF-8 become U+FFFD.
 */
#ifndef BL_SINK_ENVELOPE_H
#define BL_SINK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "binance/events.h"
#include "core/buf.h"

/* A verified order book's top levels, as the book publishes it. */
struct sink_depth {
  char symbol[EV_SYMBOL_MAX];
  int64_t event_time;          /* E of the last applied update (ms) */
  int64_t last_update_id;      /* the book's update id */
  int synced;                  /* 1: "synced"; 0: "resyncing" (no levels) */
  const struct ev_level *bids; /* best first, at most depth_levels */
  size_t n_bids;
  const struct ev_level *asks;
  size_t n_asks;
};

enum envelope_kind {
  ENVELOPE_KLINE = 0,
  ENVELOPE_TICKER,
  ENVELOPE_DEPTH,
  ENVELOPE_TRADE
};

/* "kline", "ticker", "depth", "trade". */
const char *envelope_kind_name(enum envelope_kind kind);

/* Each builder empties |out| and writes one message with sequence number
 * |seq|. Returns 0, BL_ETOOBIG (|out|'s limit) or BL_ENOMEM. */
int envelope_kline(struct buf *out, const struct ev_kline *k, uint64_t seq);
int envelope_ticker(struct buf *out, const struct ev_ticker *t, uint64_t seq);
int envelope_trade(struct buf *out, const struct ev_trade *t, uint64_t seq);
int envelope_depth(struct buf *out, const struct sink_depth *d, uint64_t seq);

/* Empties |out| and writes a JSON array of strings: ["BTCUSDT",...]. */
int envelope_symbols(struct buf *out, const char *const *symbols, size_t n);

/* Empties |out| and writes the channel name
 * "PREFIX:KIND:SYMBOL[:INTERVAL]" or, with |latest| set, the key
 * "PREFIX:latest:KIND:SYMBOL[:INTERVAL]". |interval| is used for klines
 * only. Returns 0, BL_EINVAL, BL_ETOOBIG or BL_ENOMEM. */
int envelope_name(struct buf *out, const char *prefix, enum envelope_kind kind,
                  const char *symbol, const char *interval, int latest);

/* Appends |s| as a quoted, escaped JSON string. */
int envelope_append_string(struct buf *out, const char *s);

#endif
