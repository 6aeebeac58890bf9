/*
 * parse.h: Binance WebSocket text frames to typed events (events.h).
 *
 * One parser per connection, reused for every frame. It drives yajl's
 * callback API with a small key-path state machine: scalar fields land in
 * fixed per-object slot tables and depth levels in a bounded array owned by
 * the parser, and when the frame's top-level object closes they are checked
 * and copied into the caller's struct ev. Field order is free (the "e" of a
 * payload, or the "stream" of a combined frame, may come last). Nothing is
 * allocated per frame: the yajl handle of each frame lives in an arena the
 * parser owns (yajl 2.1 has no reset, so a handle is made per frame, from
 * the arena, which costs no malloc).
 *
 * Shapes understood (binance-api.md 1.2-1.6):
 *   {"stream":"<name>","data":{...}}   combined, keys in any order
 *   {"e":"<type>",...}                 raw event
 *   {"result":<any>,"id":N}            control response  -> EV_CONTROL
 *   {"error":{"code":N,"msg":"..."},"id":N}              -> EV_CONTROL
 *   serverShutdown, raw or with stream "!serverShutdown" -> EV_SERVER_SHUTDOWN
 * kline, 24hrTicker, depthUpdate and aggTrade become typed events; frames of
 * other Binance streams (bookTicker, partial depth, trade, miniTicker, ...,
 * or a combined frame whose data is an array) are EV_IGNORED.
 *
 * A combined stream name that promises one of the four typed events
 * (<s>@aggTrade, <s>@kline_<i>[@+08:00], <s>@ticker, <s>@depth[@100ms]) must
 * carry a payload whose "e" matches it: a missing "e" is missing_field, a
 * different one bad_type. A raw object without "e" that is not a bookTicker
 * or partial-depth shape, and an unknown "e", are unknown_event.
 *
 * Rules: unknown keys are skipped at any depth; a key the parser reads that
 * appears twice in one object is an error (bad_json), keys it skips are not
 * checked for duplicates; decimals must be JSON strings passing dec_valid;
 * ids and times must be JSON integers within int64 (a fraction, exponent or
 * out-of-range number is bad_type); strings must be valid UTF-8 (yajl checks
 * the byte structure everywhere; symbols, stream names and error messages
 * are also checked for overlong forms and surrogates); the frame must be
 * exactly one JSON object; nesting beyond max_depth is too_big (yajl itself
 * has no depth limit).
 */
#ifndef BL_BINANCE_PARSE_H
#define BL_BINANCE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_common.h>

#include "binance/events.h"

#define PARSE_FRAME_MAX_DEFAULT (1u << 20) /* bytes of one frame */
#define PARSE_LEVELS_MAX_DEFAULT 20000     /* bids + asks of one frame */
#define PARSE_DEPTH_MAX_DEFAULT 32         /* JSON nesting */
#define PARSE_DEPTH_MAX_LIMIT 256

struct parse_limits {
  size_t max_frame;  /* frames longer than this are too_big; 0: default */
  size_t max_levels; /* depth levels (bids + asks) per frame; 0: default */
  int max_depth;     /* nesting of arrays/objects, 1..256; 0: default */
  int yajl_malloc;   /* benchmarks only: yajl on malloc, not the arena */
};

/* Why a frame was rejected; the counters below are indexed by it. */
enum parse_class {
  PARSE_OK = 0,
  PARSE_BAD_JSON,      /* not JSON, not one object, duplicate read key */
  PARSE_MISSING_FIELD, /* a required field is absent */
  PARSE_BAD_TYPE,      /* wrong JSON type, int64 out of range, bad value */
  PARSE_BAD_DECIMAL,   /* a decimal string failing dec_valid */
  PARSE_BAD_UTF8,      /* a string with invalid UTF-8 */
  PARSE_TOO_BIG,       /* frame, level count or nesting over the limit */
  PARSE_UNKNOWN_EVENT, /* a frame of no known shape or event type */
  PARSE_CLASS_COUNT
};

struct parse_impl;

struct parse {
  /* Why the last frame failed (PARSE_OK after a success) and how. */
  enum parse_class err_class;
  char errstr[256];
  /* Totals since parse_init: frames seen, and failures by class. */
  uint64_t n_frames;
  uint64_t n_errors[PARSE_CLASS_COUNT];
  /* Private. */
  struct parse_impl *impl;
};

/* Prepares |p| with |limits| (NULL: defaults). Allocates the level array
 * and the arena once. Returns 0, BL_EINVAL (a limit out of range) or
 * BL_ENOMEM. */
int parse_init(struct parse *p, const struct parse_limits *limits);

/* Parses one complete text frame of |len| bytes (need not be
 * NUL-terminated). On success returns 0 and fills |out|: its type, its
 * stream ("" for raw frames) and the member of |out->u| for that type. The
 * level arrays of a depth event point into |p| and stay valid until the
 * next parse_frame or parse_free. On failure returns BL_EPARSE, or
 * BL_ETOOBIG for the too_big class, sets p->err_class and p->errstr, and
 * leaves out->type EV_NONE. The parser is ready for the next frame either
 * way. */
int parse_frame(struct parse *p, const char *data, size_t len, struct ev *out);

/* Releases what parse_init allocated. */
void parse_free(struct parse *p);

/* "ok", "bad_json", "missing_field", "bad_type", "bad_decimal", "bad_utf8",
 * "too_big", "unknown_event" (or "?"). */
const char *parse_class_name(int cls);

/* Helpers shared with binance/rest_parse. */

/* Reads JSON integer text (an optional '-' and digits) into *out. Returns 0,
 * or -1 for a fraction, an exponent, anything else, or a value outside
 * int64. */
int parse_int64_text(const char *s, size_t len, int64_t *out);

/* Returns 1 when |s| (NUL-terminated) is one of the 16 kline intervals. */
int parse_interval_valid(const char *s);

/* A bump allocator for yajl handles: one block, reset per parse, with a
 * malloc fallback for requests that do not fit. */
struct parse_arena {
  char *base;
  size_t cap;
  size_t used;
  size_t last;         /* offset of the last block (realloc in place) */
  uint64_t n_fallback; /* allocations that went to malloc */
};

/* Allocates the block. Returns 0 or BL_ENOMEM. */
int parse_arena_init(struct parse_arena *a, size_t cap);
/* Forgets every block; call only when no yajl handle uses the arena. */
void parse_arena_reset(struct parse_arena *a);
void parse_arena_free(struct parse_arena *a);
/* Fills |afs| so that yajl_alloc(cb, afs, ctx) allocates from |a|. */
void parse_arena_funcs(struct parse_arena *a, yajl_alloc_funcs *afs);

#endif
