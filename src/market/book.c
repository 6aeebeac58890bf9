/*
 * book.c: the verified local order book of one symbol (see book.h).
 *
 * State kept: the two sides, the updateId reached, the buffer of diffs
 * received before a usable snapshot, the counters and the last decision.
 *
 * Levels. Each side is a sorted array of 16-byte levels, worst price first
 * and best price last, so that the updates Binance sends (nearly all within
 * a few ticks of the top) insert, update and delete at the end of the array
 * and memmove only the few levels above them; a lookup is a binary search
 * (about 10 steps at 1000 levels) and the top N is the last N entries, read
 * without a search. A B-tree or skiplist would buy nothing at <= 5000 levels
 * and cost pointers. t/bench/bench_book.c measured (x86-64, -O2, a shared
 * machine, so +-40% between runs): on a 1000-level book, diffs of 10 levels
 * near the top apply at 6-7 million levels/s (about 150 ns a level, string
 * parsing included), and 2.5-5 million/s when spread over the whole depth
 * (longest memmoves); a top-20 read formatting 40 levels to strings costs
 * 3-4 us. At 100 ms diffs for 1000 symbols that is well under 1% of a core.
 *
 * A level is two int64: the price as an exact scaled integer and the
 * quantity at 8 decimals. The price scale is max(decimals of tickSize, 8),
 * not tickSize alone: the recorded NKNUSDT snapshot (tickSize 0.0001) holds
 * 34 resting bids such as 0.25974000, placed before the tick was coarsened,
 * so keying at the tick would reject a real book. 8 decimals is Binance's
 * own fixed point (int64 * 1e-8; its maxQty is 92233720368.54775807), so
 * every price and quantity it sends keys exactly; a non-zero 9th decimal is
 * invalid input (counted, and the book resyncs rather than mis-key it).
 * Strings are printed back with as many decimals as the first level the
 * book saw (Binance writes a fixed count, 8 on spot), so what is published
 * equals what was received; a level written differently is still exact in
 * value and is counted (stats.format_changes). Two int64 are 16 bytes a
 * level against 96 for the two ev_dec strings; a string table would cost
 * more than the levels themselves.
 *
 * Memory: arrays are sized to the snapshot plus 1/8 and grow by half.
 * 200 symbols x 2 sides x 1000 levels is 6.4 MB of levels; bench_book
 * measured 7.3 MB of heap with the slack (36.5 KB a book). Memory scales
 * with the snapshot limit: 500 (weight 25) halves it. The buffer of diffs
 * exists only while a book is syncing and is freed once synced; it is bounded
 * per book by count and bytes (defaults 600 events, 64 KiB: 200 books resyncing
 * at once after a reconnect hold at most 12.8 MB). When full, the oldest events
 * go and U0 moves forward, so a snapshot taken within the window still
 * joins up.
 *
 * Known levels. A snapshot of `limit` levels per side says nothing about
 * prices beyond its worst level, and later diffs for such prices only tell
 * part of the story (docs/binance-api.md 2.2 NOTE). So each side has an
 * edge: the worst price it knows. A side whose snapshot returned fewer
 * levels than asked for is the whole side (no edge). Updates beyond the edge
 * are ignored (counted), never stored, so every stored level is known and
 * book_top() can never show an unknown one. A side also has a hard cap
 * (limit * 1.5 + 16): inserting into a full side drops its worst level and
 * moves the edge inside it. If a bounded side falls below
 * min(depth_levels, limit / 2) known levels the book resyncs (SHALLOW) to
 * learn more. The snapshot limit is chosen by book_snapshot_limit():
 * the configured one (default 1000, weight 50) but never fewer than
 * depth_levels; 5000 (weight 250) costs five times more for levels far from
 * the published top, which matters when hundreds of books resync after a
 * reconnect.
 *
 * Sequence. Until the first event is applied after a snapshot, an event
 * with u <= lastUpdateId is dropped (docs 2.1 step 5), whether it was
 * buffered or arrives later: the corpus has one (LRCBTC, u == lastUpdateId,
 * received 10 ms after the snapshot), which docs 2.4 lists as dropped. One
 * deviation in wording from docs 2.2, not in effect: afterwards an event
 * with u <= updateId (not only u < updateId) is ignored as stale, since all
 * its updates are already in the book.
 *
 * The decimal helpers below are local on purpose: to be replaced by
 * core/decimal once it lands.
 */
#include "market/book.h"

#include <stdlib.h>
#include <string.h>

#include "core/decimal.h"
#include "core/err.h"

#define FRAC_MAX 31

/* One buffered diff: this header, then n_bids + n_asks levels. */
struct rec_hdr {
  int64_t first_id; /* U */
  int64_t final_id; /* u */
  uint32_t n_bids;
  uint32_t n_asks;
};

/* ---- decimals: book-specific (they keep each level's written decimal
 * count for output); the powers of ten come from core/decimal ---- */

/* Parses a canonical decimal as Binance sends it: digits, then optionally
 * '.' and at least one digit; no sign, no exponent, no leading zero in the
 * integer part unless it is a lone "0". Gives its digits without trailing
 * fractional zeros as one integer (at most INT64_MAX), the count of
 * fractional digits that integer holds (|sig|) and the count written
 * (|frac|, at most 31). "4265.00000000" gives 4265, 0, 8. Returns 0 or
 * BL_EINVAL. */
static int level_dec_parse(const char *s, uint64_t *mant, unsigned *sig,
                           unsigned *frac) {
  uint64_t m = 0;
  unsigned f = 0, zeros = 0;
  int dot = 0;
  const char *p = s;

  if (*p < '0' || *p > '9')
    return BL_EINVAL;
  if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
    return BL_EINVAL;
  for (; *p; p++) {
    unsigned d;
    if (*p == '.') {
      if (dot || p[1] == '\0')
        return BL_EINVAL;
      dot = 1;
      continue;
    }
    if (*p < '0' || *p > '9')
      return BL_EINVAL;
    d = (unsigned)(*p - '0');
    if (dot && ++f > FRAC_MAX)
      return BL_EINVAL;
    if (dot && d == 0) {
      zeros++; /* significant only if a non-zero digit follows */
      continue;
    }
    for (; zeros > 0; zeros--) {
      if (m > (uint64_t)INT64_MAX / 10)
        return BL_EINVAL;
      m *= 10;
    }
    if (m > ((uint64_t)INT64_MAX - d) / 10)
      return BL_EINVAL;
    m = m * 10 + d;
  }
  *mant = m;
  *sig = f - zeros;
  *frac = f;
  return 0;
}

/* Digits |m| with |f| fractional digits -> the value * 10^|scale|, exact.
 * Returns 0, or BL_EINVAL if a non-zero digit lies beyond the scale or the
 * result does not fit an int64. */
static int level_dec_to_scaled(uint64_t m, unsigned f, unsigned scale,
                               int64_t *out) {
  if (f > scale) {
    if (f - scale > 19) {
      if (m != 0)
        return BL_EINVAL;
    } else {
      if (m % dec_pow10[f - scale] != 0)
        return BL_EINVAL;
      m /= dec_pow10[f - scale];
    }
  } else {
    uint64_t mul = dec_pow10[scale - f];
    if (m > (uint64_t)INT64_MAX / mul)
      return BL_EINVAL;
    m *= mul;
  }
  *out = (int64_t)m;
  return 0;
}

/* Prints |v| / 10^|scale| with at least |min_frac| and at most |scale|
 * fractional digits, dropping only trailing zeros. |out| holds EV_DEC_MAX
 * bytes. */
static void level_dec_format(int64_t v, unsigned scale, unsigned min_frac,
                             char *out) {
  char tmp[48];
  uint64_t u = (uint64_t)v;
  unsigned n = 0, frac = scale, i;
  unsigned extra = min_frac > scale ? min_frac - scale : 0;
  int o = 0;

  while (frac > min_frac && u % 10 == 0 && frac > 0) {
    u /= 10;
    frac--;
  }
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  while (n < frac + 1)
    tmp[n++] = '0';
  for (i = n; i-- > 0;) {
    out[o++] = tmp[i];
    if (i == frac && frac > 0)
      out[o++] = '.';
  }
  if (extra && frac == 0)
    out[o++] = '.';
  while (extra-- > 0)
    out[o++] = '0';
  out[o] = '\0';
}

/* ---- levels ---- */

/* Parses one [price, qty] pair into a level, learning the book's print
 * format (digits after the point) from the first one. Returns 0 or
 * BL_EINVAL. */
static int level_parse(struct book *b, const struct ev_level *in,
                       struct book_level *out) {
  uint64_t pm, qm;
  unsigned ps, pf, qs, qf;

  if (level_dec_parse(in->price, &pm, &ps, &pf) < 0 || pm == 0 ||
      level_dec_to_scaled(pm, ps, (unsigned)b->pscale, &out->price) < 0 ||
      level_dec_parse(in->qty, &qm, &qs, &qf) < 0 ||
      level_dec_to_scaled(qm, qs, BOOK_QTY_SCALE, &out->qty) < 0)
    return BL_EINVAL;
  if (b->pfrac < 0) {
    b->pfrac = (int)pf;
    b->qfrac = (int)qf;
  }
  if ((int)pf != b->pfrac || ((int)qf != b->qfrac && qm != 0))
    b->stats.format_changes++;
  return 0;
}

static void level_format(const struct book *b, const struct book_level *l,
                         struct ev_level *out) {
  unsigned pf = b->pfrac < 0 ? 0 : (unsigned)b->pfrac;
  unsigned qf = b->qfrac < 0 ? 0 : (unsigned)b->qfrac;
  level_dec_format(l->price, (unsigned)b->pscale, pf, out->price);
  level_dec_format(l->qty, BOOK_QTY_SCALE, qf, out->qty);
}

static int64_t lv_price(const struct book_level *l) {
  return l->price;
}

/* 1 if price |a| is better than |c| on side |s|. */
static int better(const struct book_side *s, int64_t a, int64_t c) {
  return s->is_ask ? a < c : a > c;
}

/* Index of the first level at least as good as |price| (worst first). */
static uint32_t side_find(const struct book_side *s, int64_t price) {
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (better(s, price, lv_price(&s->lv[mid])))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The price just better than |p|: the new edge when |p| stops being known. */
static int64_t just_better(const struct book_side *s, int64_t p) {
  return s->is_ask ? p - 1 : p + 1;
}

static int side_grow(struct book_side *s, uint32_t want, uint32_t max) {
  struct book_level *lv;
  uint32_t cap = s->cap ? s->cap + s->cap / 2 + 8 : 64;
  if (cap < want)
    cap = want;
  if (cap > max)
    cap = max;
  if (cap < want)
    return BL_ENOMEM;
  lv = realloc(s->lv, (size_t)cap * sizeof(*lv));
  if (lv == NULL)
    return BL_ENOMEM;
  s->lv = lv;
  s->cap = cap;
  return 0;
}

/* Applies one absolute level update. Sets *top when the best depth_levels
 * levels changed. Returns 0 or BL_ENOMEM. */
static int side_apply(struct book *b, struct book_side *s,
                      const struct book_level *in, int *top) {
  int64_t price = lv_price(in);
  uint32_t i, depth = (uint32_t)b->depth_levels;
  int found;

  if (s->bounded && better(s, s->edge, price)) {
    b->stats.levels_beyond_edge++;
    return 0;
  }
  i = side_find(s, price);
  found = i < s->n && lv_price(&s->lv[i]) == price;
  b->stats.levels_applied++;
  if (in->qty == 0) {
    if (found) {
      if (s->n - 1 - i < depth)
        *top = 1;
      memmove(s->lv + i, s->lv + i + 1, (s->n - i - 1) * sizeof(*s->lv));
      s->n--;
    }
    return 0;
  }
  if (found) {
    s->lv[i] = *in;
    if (s->n - 1 - i < depth)
      *top = 1;
    return 0;
  }
  if (s->n >= b->side_max) {
    /* Full: forget the worst price and move the edge inside it. */
    b->stats.levels_trimmed++;
    s->bounded = 1;
    if (i == 0) {
      s->edge = just_better(s, price);
      return 0;
    }
    /* One out at the worst end, one in just below |i|: n stays. */
    s->edge = just_better(s, lv_price(&s->lv[0]));
    memmove(s->lv, s->lv + 1, (size_t)(i - 1) * sizeof(*s->lv));
    s->lv[i - 1] = *in;
    if (s->n - i < depth)
      *top = 1;
    return 0;
  }
  if (s->n == s->cap && side_grow(s, s->n + 1, b->side_max) < 0)
    return BL_ENOMEM;
  memmove(s->lv + i + 1, s->lv + i, (s->n - i) * sizeof(*s->lv));
  s->lv[i] = *in;
  s->n++;
  if (s->n - 1 - i < depth)
    *top = 1;
  return 0;
}

static void side_clear(struct book_side *s) {
  s->n = 0;
  s->bounded = 0;
  s->edge = 0;
}

static void side_free(struct book_side *s) {
  free(s->lv);
  s->lv = NULL;
  s->n = s->cap = 0;
  s->bounded = 0;
}

static int cmp_worst_first_bid(const void *x, const void *y) {
  int64_t a = lv_price(x), c = lv_price(y);
  return (a > c) - (a < c);
}

static int cmp_worst_first_ask(const void *x, const void *y) {
  int64_t a = lv_price(x), c = lv_price(y);
  return (a < c) - (a > c);
}

/* Loads one side of a snapshot. Returns 0, BL_EINVAL or BL_ENOMEM. */
static int side_load(struct book *b, struct book_side *s,
                     const struct ev_level *in, size_t n) {
  size_t i, keep;

  side_clear(s);
  if (n > 0 && n + 1 > s->cap) {
    size_t want = n + n / 8 + 16;
    struct book_level *lv;
    if (want > b->side_max)
      want = b->side_max > n ? b->side_max : n;
    lv = realloc(s->lv, want * sizeof(*lv));
    if (lv == NULL)
      return BL_ENOMEM;
    s->lv = lv;
    s->cap = (uint32_t)want;
  }
  for (i = 0; i < n; i++) {
    if (level_parse(b, &in[i], &s->lv[i]) < 0)
      return BL_EINVAL;
  }
  if (n > 1)
    qsort(s->lv, n, sizeof(*s->lv),
          s->is_ask ? cmp_worst_first_ask : cmp_worst_first_bid);
  for (i = 1; i < n; i++) {
    if (lv_price(&s->lv[i]) == lv_price(&s->lv[i - 1]))
      return BL_EINVAL;
  }
  /* Drop zero quantities (never sent, but harmless) and anything beyond
   * the cap, which keeps the best levels. */
  keep = 0;
  for (i = 0; i < n; i++) {
    if (s->lv[i].qty != 0)
      s->lv[keep++] = s->lv[i];
  }
  s->n = (uint32_t)keep;
  if (s->n > b->side_max) {
    uint32_t cut = s->n - b->side_max;
    memmove(s->lv, s->lv + cut, (size_t)b->side_max * sizeof(*s->lv));
    s->n = b->side_max;
    b->stats.levels_trimmed += cut;
    s->bounded = 1;
  } else {
    /* Fewer levels than asked for: the exchange sent the whole side. */
    s->bounded = n >= (size_t)b->req_limit;
  }
  if (s->bounded && s->n > 0)
    s->edge = lv_price(&s->lv[0]);
  else if (s->bounded) /* asked for more, got only zeros: know nothing */
    s->edge = s->is_ask ? 0 : INT64_MAX;
  return 0;
}

/* ---- state machine ---- */

static void decide(struct book *b, int64_t first_id, int64_t final_id,
                   enum book_decision d) {
  b->last_decision = d;
  if (b->on_decision)
    b->on_decision(b->decision_ctx, b, first_id, final_id, d);
}

static void pending_clear(struct book *b) {
  b->pend_len = 0;
  b->pend_overflowed = 0;
  b->pending_count = 0;
  b->first_u0 = 0;
  b->pending_last_u = 0;
}

static void pending_free(struct book *b) {
  free(b->pend);
  b->pend = NULL;
  b->pend_cap = 0;
  pending_clear(b);
}

/* Discards the book (not the buffer); back to BUFFERING unless a request
 * is out and |keep_request|. Returns BOOK_ACT_RESYNCING if it was synced. */
static int resync(struct book *b, enum book_resync_reason why,
                  int keep_request) {
  int act = 0;
  if (b->state == BOOK_SYNCED) {
    act |= BOOK_ACT_RESYNCING;
    b->state = BOOK_BUFFERING;
  } else if (!keep_request) {
    b->state = BOOK_BUFFERING;
  }
  b->stats.resyncs[why]++;
  side_clear(&b->bids);
  side_clear(&b->asks);
  b->need_first = 0;
  b->last_update_id = 0;
  return act;
}

/* Asks for a snapshot if none is out and there is something buffered. */
static int want_snapshot(struct book *b) {
  if (b->state != BOOK_BUFFERING || b->pending_count == 0)
    return 0;
  b->state = BOOK_SNAPSHOT_PENDING;
  return BOOK_ACT_REQUEST_SNAPSHOT;
}

static int pend_reserve(struct book *b, size_t need) {
  unsigned char *p;
  size_t cap;
  if (b->pend_len + need <= b->pend_cap)
    return 0;
  cap = b->pend_cap ? b->pend_cap * 2 : 4096;
  while (cap < b->pend_len + need)
    cap *= 2;
  if (cap > b->pend_max)
    cap = b->pend_max;
  p = realloc(b->pend, cap);
  if (p == NULL)
    return BL_ENOMEM;
  b->pend = p;
  b->pend_cap = cap;
  return 0;
}

/* Full: drops the oldest buffered events until one of |need| bytes fits,
 * so the buffer holds the newest ones and U0 moves forward (a snapshot
 * taken recently still joins up). Counted once per sync attempt. */
static void pending_drop_oldest(struct book *b, size_t need) {
  size_t off = 0;
  if (!b->pend_overflowed) {
    b->stats.resyncs[BOOK_RESYNC_BUFFER_OVERFLOW]++;
    b->pend_overflowed = 1;
  }
  while (b->pending_count > 0 && (b->pending_count >= b->buf_max_events ||
                                  b->pend_len - off + need > b->pend_max)) {
    struct rec_hdr h;
    memcpy(&h, b->pend + off, sizeof(h));
    off +=
        sizeof(h) + ((size_t)h.n_bids + h.n_asks) * sizeof(struct book_level);
    b->pending_count--;
    b->stats.events_dropped++;
    decide(b, h.first_id, h.final_id, BOOK_DEC_DROPPED);
  }
  memmove(b->pend, b->pend + off, b->pend_len - off);
  b->pend_len -= off;
  if (b->pending_count > 0)
    memcpy(&b->first_u0, b->pend, sizeof(b->first_u0));
}

/* Buffers one event, validated and encoded. Returns an action mask. */
static int buffer_event(struct book *b, const struct ev_depth *ev) {
  struct rec_hdr h;
  struct book_level l;
  size_t i, start, nlev = ev->n_bids + ev->n_asks;
  size_t need = sizeof(h) + nlev * sizeof(l);
  int64_t first = ev->first_update_id, final = ev->final_update_id;

  if (b->pending_count > 0) {
    if (final <= b->pending_last_u) {
      b->stats.events_stale++;
      decide(b, first, final, BOOK_DEC_STALE);
      return 0;
    }
    if (first > b->pending_last_u + 1) {
      /* A gap among the buffered events: they can never join up. */
      b->stats.resyncs[BOOK_RESYNC_GAP]++;
      pending_clear(b);
    }
  }
  if (need > b->pend_max) {
    /* It can never fit, and without it nothing buffered joins up. */
    b->stats.resyncs[BOOK_RESYNC_BUFFER_OVERFLOW]++;
    pending_clear(b);
    decide(b, first, final, BOOK_DEC_DROPPED);
    return 0;
  }
  if (b->pending_count >= b->buf_max_events || b->pend_len + need > b->pend_max)
    pending_drop_oldest(b, need);
  if (pend_reserve(b, need) < 0) {
    b->stats.resyncs[BOOK_RESYNC_NOMEM]++;
    pending_clear(b);
    decide(b, first, final, BOOK_DEC_DROPPED);
    return 0;
  }
  start = b->pend_len;
  h.first_id = first;
  h.final_id = final;
  h.n_bids = (uint32_t)ev->n_bids;
  h.n_asks = (uint32_t)ev->n_asks;
  memcpy(b->pend + start, &h, sizeof(h));
  for (i = 0; i < nlev; i++) {
    const struct ev_level *in =
        i < ev->n_bids ? &ev->bids[i] : &ev->asks[i - ev->n_bids];
    if (level_parse(b, in, &l) < 0) {
      b->stats.resyncs[BOOK_RESYNC_INVALID]++;
      pending_clear(b);
      decide(b, first, final, BOOK_DEC_INVALID);
      return 0;
    }
    memcpy(b->pend + start + sizeof(h) + i * sizeof(l), &l, sizeof(l));
  }
  b->pend_len = start + need;
  if (b->pending_count++ == 0)
    b->first_u0 = first;
  b->pending_last_u = final;
  b->stats.events_buffered++;
  decide(b, first, final, BOOK_DEC_BUFFERED);
  return want_snapshot(b);
}

/* The procedure's verdict on an event once synced (docs 2.1 step 5, 2.2). */
static enum book_decision seq_check(const struct book *b, int64_t first,
                                    int64_t final) {
  if (b->need_first) {
    if (final <= b->last_update_id)
      return BOOK_DEC_DROPPED;
    return first > b->last_update_id + 1 ? BOOK_DEC_GAP : BOOK_DEC_APPLIED;
  }
  if (final <= b->last_update_id)
    return BOOK_DEC_STALE;
  return first > b->last_update_id + 1 ? BOOK_DEC_GAP : BOOK_DEC_APPLIED;
}

static int crossed(const struct book *b) {
  return b->bids.n > 0 && b->asks.n > 0 &&
         lv_price(&b->bids.lv[b->bids.n - 1]) >=
             lv_price(&b->asks.lv[b->asks.n - 1]);
}

static int shallow(const struct book *b) {
  return (b->bids.bounded && b->bids.n < b->shallow_min) ||
         (b->asks.bounded && b->asks.n < b->shallow_min);
}

/* After an event's levels were applied: advance updateId, count, and look
 * for doubt (crossed, too shallow). Returns the action mask. */
static int finish_event(struct book *b, int64_t first, int64_t final, int top) {
  b->last_update_id = final;
  b->need_first = 0;
  b->stats.events_applied++;
  decide(b, first, final, BOOK_DEC_APPLIED);
  if (crossed(b))
    return resync(b, BOOK_RESYNC_CROSSED, 0);
  if (shallow(b))
    return resync(b, BOOK_RESYNC_SHALLOW, 0);
  return BOOK_ACT_PUBLISH | (top ? BOOK_ACT_TOP_CHANGED : 0);
}

/* Handles the verdict on a not-applicable event once synced. Returns 1 if
 * the event needs no further work, 0 if it should be applied. */
static int skip_event(struct book *b, enum book_decision d, int64_t first,
                      int64_t final) {
  if (d == BOOK_DEC_DROPPED) {
    b->stats.events_dropped++;
    decide(b, first, final, d);
    return 1;
  }
  if (d == BOOK_DEC_STALE) {
    b->stats.events_stale++;
    decide(b, first, final, d);
    return 1;
  }
  return 0;
}

/* Replays the buffer after a snapshot was loaded. Returns an action mask;
 * on doubt the events not yet used stay buffered for the next snapshot. */
static int replay(struct book *b) {
  size_t off = 0;
  uint32_t k;
  int act = 0;

  for (k = 0; k < b->pending_count; k++) {
    struct rec_hdr h;
    struct book_level l;
    size_t i, nlev, keep_from;
    enum book_decision d;
    int top = 0, rc = 0;

    memcpy(&h, b->pend + off, sizeof(h));
    nlev = (size_t)h.n_bids + h.n_asks;
    d = seq_check(b, h.first_id, h.final_id);
    if (skip_event(b, d, h.first_id, h.final_id)) {
      off += sizeof(h) + nlev * sizeof(l);
      continue;
    }
    if (d == BOOK_DEC_GAP) {
      decide(b, h.first_id, h.final_id, d);
      act |= resync(b, BOOK_RESYNC_GAP, 0);
      keep_from = off;
    } else {
      for (i = 0; i < nlev && rc == 0; i++) {
        memcpy(&l, b->pend + off + sizeof(h) + i * sizeof(l), sizeof(l));
        rc = side_apply(b, i < h.n_bids ? &b->bids : &b->asks, &l, &top);
      }
      off += sizeof(h) + nlev * sizeof(l);
      if (rc < 0)
        act |= resync(b, BOOK_RESYNC_NOMEM, 0);
      else
        act |= finish_event(b, h.first_id, h.final_id, top);
      if (b->state == BOOK_SYNCED)
        continue;
      keep_from = off;
      k++;
    }
    /* Doubt: keep the events after the culprit, ask again. */
    memmove(b->pend, b->pend + keep_from, b->pend_len - keep_from);
    b->pend_len -= keep_from;
    b->pending_count -= k;
    if (b->pending_count > 0)
      memcpy(&b->first_u0, b->pend, sizeof(b->first_u0));
    else
      pending_clear(b);
    return act | want_snapshot(b);
  }
  pending_free(b);
  return act;
}

int book_scale_from_tick(const char *tick) {
  uint64_t m;
  unsigned sig, f;
  if (tick == NULL || level_dec_parse(tick, &m, &sig, &f) < 0 || m == 0)
    return BL_EINVAL;
  return sig > BOOK_SCALE_MAX ? BL_EINVAL : (int)sig;
}

int book_snapshot_limit(int depth_levels, int configured_limit, int *weight) {
  int l = configured_limit > 0 ? configured_limit : BOOK_DEFAULT_LIMIT;
  if (l < depth_levels)
    l = depth_levels;
  if (l > BOOK_LIMIT_MAX)
    l = BOOK_LIMIT_MAX;
  if (l < 1)
    l = 1;
  if (weight)
    *weight = l <= 100 ? 5 : l <= 500 ? 25 : l <= 1000 ? 50 : 250;
  return l;
}

int book_set_limits(struct book *b, int snapshot_limit, uint32_t max_events,
                    size_t max_bytes) {
  uint32_t half;
  if (snapshot_limit < 0)
    return BL_EINVAL;
  b->cfg_limit = snapshot_limit ? snapshot_limit : BOOK_DEFAULT_LIMIT;
  b->req_limit =
      book_snapshot_limit(b->depth_levels, b->cfg_limit, &b->req_weight);
  b->side_max = (uint32_t)(b->req_limit + b->req_limit / 2 + 16);
  half = (uint32_t)b->req_limit / 2;
  b->shallow_min =
      (uint32_t)b->depth_levels < half ? (uint32_t)b->depth_levels : half;
  if (max_events)
    b->buf_max_events = max_events;
  if (max_bytes)
    b->pend_max = max_bytes;
  return 0;
}

int book_init(struct book *b, const char *symbol, int scale, int depth_levels) {
  size_t len = symbol ? strlen(symbol) : 0;
  if (len == 0 || len >= EV_SYMBOL_MAX || scale < 0 || scale > BOOK_SCALE_MAX ||
      depth_levels < 1 || depth_levels > BOOK_LIMIT_MAX)
    return BL_EINVAL;
  memset(b, 0, sizeof(*b));
  memcpy(b->symbol, symbol, len + 1);
  b->scale = scale;
  b->pscale = scale > BOOK_MIN_SCALE ? scale : BOOK_MIN_SCALE;
  b->pfrac = b->qfrac = -1;
  b->depth_levels = depth_levels;
  b->asks.is_ask = 1;
  b->state = BOOK_BUFFERING;
  b->buf_max_events = BOOK_DEFAULT_BUF_EVENTS;
  b->pend_max = BOOK_DEFAULT_BUF_BYTES;
  return book_set_limits(b, 0, 0, 0);
}

void book_free(struct book *b) {
  side_free(&b->bids);
  side_free(&b->asks);
  pending_free(b);
}

int book_on_diff(struct book *b, const struct ev_depth *ev) {
  struct book_level l;
  enum book_decision d;
  int64_t first = ev->first_update_id, final = ev->final_update_id;
  size_t i;
  int top = 0, act;

  if (strcmp(ev->symbol, b->symbol) != 0 || (ev->n_bids && !ev->bids) ||
      (ev->n_asks && !ev->asks))
    return BL_EINVAL;
  if (first < 0 || first > final) {
    decide(b, first, final, BOOK_DEC_INVALID);
    act = resync(b, BOOK_RESYNC_INVALID, 1);
    pending_clear(b);
    return act;
  }
  if (b->state != BOOK_SYNCED)
    return buffer_event(b, ev);

  d = seq_check(b, first, final);
  if (skip_event(b, d, first, final))
    return 0;
  if (d == BOOK_DEC_GAP) {
    decide(b, first, final, d);
    act = resync(b, BOOK_RESYNC_GAP, 0);
    return act | buffer_event(b, ev); /* the first event of the new try */
  }
  for (i = 0; i < ev->n_bids + ev->n_asks; i++) {
    int is_bid = i < ev->n_bids;
    const struct ev_level *in =
        is_bid ? &ev->bids[i] : &ev->asks[i - ev->n_bids];
    if (level_parse(b, in, &l) < 0) {
      decide(b, first, final, BOOK_DEC_INVALID);
      return resync(b, BOOK_RESYNC_INVALID, 0);
    }
    if (side_apply(b, is_bid ? &b->bids : &b->asks, &l, &top) < 0) {
      decide(b, first, final, BOOK_DEC_INVALID);
      return resync(b, BOOK_RESYNC_NOMEM, 0);
    }
  }
  return finish_event(b, first, final, top);
}

int book_on_snapshot(struct book *b, int64_t last_update_id,
                     const struct ev_level *bids, size_t n_bids,
                     const struct ev_level *asks, size_t n_asks) {
  int rc, act;

  if ((n_bids && !bids) || (n_asks && !asks))
    return BL_EINVAL;
  if (b->state == BOOK_SYNCED || b->pending_count == 0) {
    /* Nothing to check it against; the next diff asks again. */
    b->stats.snapshots_ignored++;
    if (b->state != BOOK_SYNCED)
      b->state = BOOK_BUFFERING;
    return 0;
  }
  if (last_update_id < b->first_u0) {
    b->stats.resyncs[BOOK_RESYNC_SNAPSHOT_TOO_OLD]++;
    b->state = BOOK_SNAPSHOT_PENDING;
    return BOOK_ACT_REQUEST_SNAPSHOT;
  }
  rc = side_load(b, &b->bids, bids, n_bids);
  if (rc == 0)
    rc = side_load(b, &b->asks, asks, n_asks);
  if (rc < 0) {
    resync(b, rc == BL_ENOMEM ? BOOK_RESYNC_NOMEM : BOOK_RESYNC_INVALID, 0);
    b->state = BOOK_SNAPSHOT_PENDING;
    return BOOK_ACT_REQUEST_SNAPSHOT;
  }
  b->stats.snapshots_applied++;
  b->state = BOOK_SYNCED;
  b->need_first = 1;
  b->last_update_id = last_update_id;
  b->snap_update_id = last_update_id;
  if (crossed(b)) {
    resync(b, BOOK_RESYNC_CROSSED, 0);
    return want_snapshot(b);
  }
  act = replay(b);
  /* The owner never saw this book synced: no "resyncing" message. */
  act &= ~(BOOK_ACT_RESYNCING | BOOK_ACT_PUBLISH | BOOK_ACT_TOP_CHANGED);
  if (b->state == BOOK_SYNCED)
    act |= BOOK_ACT_SYNCED | BOOK_ACT_PUBLISH | BOOK_ACT_TOP_CHANGED;
  return act;
}

int book_on_snapshot_failed(struct book *b) {
  if (b->state != BOOK_SNAPSHOT_PENDING)
    return 0;
  b->stats.snapshots_failed++;
  b->state = BOOK_BUFFERING;
  return 0;
}

int book_reset(struct book *b) {
  int act = resync(b, BOOK_RESYNC_RESET, 0);
  pending_clear(b);
  return act;
}

void book_top(const struct book *b, size_t n, struct ev_level *bids,
              size_t *n_bids, struct ev_level *asks, size_t *n_asks) {
  const struct book_side *sides[2] = {&b->bids, &b->asks};
  struct ev_level *outs[2] = {bids, asks};
  size_t *counts[2] = {n_bids, n_asks};
  int k;

  for (k = 0; k < 2; k++) {
    const struct book_side *s = sides[k];
    size_t i, m = b->state == BOOK_SYNCED ? s->n : 0;
    if (m > n)
      m = n;
    if (outs[k] == NULL)
      m = 0;
    for (i = 0; i < m; i++)
      level_format(b, &s->lv[s->n - 1 - i], &outs[k][i]);
    if (counts[k])
      *counts[k] = m;
  }
}

enum book_state book_state(const struct book *b) {
  return b->state;
}

const char *book_state_name(const struct book *b) {
  return b->state == BOOK_SYNCED ? "synced" : "resyncing";
}

int64_t book_last_update_id(const struct book *b) {
  return b->state == BOOK_SYNCED ? b->last_update_id : 0;
}

const struct book_stats *book_stats(const struct book *b) {
  return &b->stats;
}

size_t book_mem(const struct book *b) {
  return ((size_t)b->bids.cap + b->asks.cap) * sizeof(struct book_level) +
         b->pend_cap;
}
