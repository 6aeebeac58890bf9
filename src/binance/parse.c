/*
 * parse.c: Binance WebSocket frames to struct ev (see parse.h).
 *
 * State kept across frames: the limits, the arena the per-frame yajl handle
 * lives in, the level array and the counters. State of one frame: a stack
 * of open containers (what each one is and which key it is on), three slot
 * tables (top-level object, "data" object, "k" object) indexed by the
 * one-letter keys Binance uses, the named keys (stream, data, result,
 * error, id, ...) and the levels of "b" and "a". Callbacks only record;
 * finish() decides what the frame is once its object has closed, because
 * the keys that say so ("e", "stream") may come last.
 *
 * Bids fill the level array from the front, asks from the back (so the two
 * share one bound without knowing which comes first); the asks are put back
 * in received order when the frame is complete.
 */
#include "binance/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "core/decimal.h"
#include "core/err.h"

#define ARENA_SIZE (32 * 1024)
#define ARENA_ALIGN 16
#define NSLOTS 52 /* 'A'..'Z' then 'a'..'z' */

enum slot_kind {
  SK_NONE = 0,
  SK_STR,     /* a string that fits and has no NUL byte */
  SK_STR_BAD, /* a string too long for its field, or with a NUL byte */
  SK_INT,     /* an integer within int64 */
  SK_NUM,     /* any other number (fraction, exponent, out of range) */
  SK_BOOL,
  SK_NULL,
  SK_OBJ,
  SK_ARR,
  SK_LEVELS /* an array of [price, qty] pairs, in the level array */
};

struct slot {
  uint8_t kind;
  uint8_t len;
  int64_t i;
  char s[EV_DEC_MAX];
};

struct slotset {
  uint64_t seen; /* bit per slot */
  struct slot v[NSLOTS];
};

enum { SET_TOP = 0, SET_DATA, SET_K, NSETS };

/* What an open container is. */
enum ctx_kind {
  C_TOP,    /* the frame's object */
  C_DATA,   /* "data" of a combined frame */
  C_K,      /* "k" of a kline */
  C_ERR,    /* "error" of a control response */
  C_LEVELS, /* "b" or "a" array */
  C_PAIR,   /* one [price, qty] */
  C_SKIP    /* anything we do not read */
};

/* Key ids: 0..51 are the one-letter slots, then the named keys. */
enum key_id {
  K_STREAM = 64,
  K_DATA,
  K_RESULT,
  K_ERROR,
  K_ID,
  K_LASTUPD,
  K_CODE,
  K_MSG,
  K_OTHER
};

/* Bits of impl->named: one per (object, named key). */
#define NB(key) (1u << ((key)-K_STREAM))
#define NB_DATA_LASTUPD (1u << 16)

struct open_ctx {
  uint8_t ctx;
  uint8_t key;  /* key the object is on (K_OTHER before the first) */
  uint8_t side; /* C_LEVELS, C_PAIR: 0 bids, 1 asks */
  uint8_t idx;  /* C_PAIR: strings seen */
};

struct parse_impl {
  struct parse *p;
  struct parse_arena arena;
  yajl_alloc_funcs afs;
  int use_malloc;
  size_t max_frame;
  size_t max_levels;
  int max_depth;
  struct ev_level *lv;

  /* One frame. */
  int depth;
  int done;
  uint32_t named;
  uint8_t k_owner;     /* SET_x + 1 of the object holding "k", or 0 */
  uint8_t lv_owner[2]; /* the same for "b" and "a" */
  uint8_t stream_kind, data_kind, result_kind, error_kind, id_kind;
  uint8_t code_kind, msg_kind;
  int64_t id, code;
  size_t n_lv[2];
  char stream[EV_STREAM_MAX];
  char msg[sizeof(((struct ev_control *)0)->msg)];
  struct open_ctx stack[PARSE_DEPTH_MAX_LIMIT];
  struct slotset sets[NSETS];
};

static const char *const class_names[PARSE_CLASS_COUNT] = {
    "ok",          "bad_json", "missing_field", "bad_type",
    "bad_decimal", "bad_utf8", "too_big",       "unknown_event"};

const char *parse_class_name(int cls) {
  if (cls < 0 || cls >= PARSE_CLASS_COUNT)
    return "?";
  return class_names[cls];
}

/* Records why the frame failed and returns 0, which cancels a yajl parse
 * when returned from a callback. The first reason wins. */
static int reject(struct parse_impl *im, enum parse_class cls, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));
static int reject(struct parse_impl *im, enum parse_class cls, const char *fmt,
                  ...) {
  va_list ap;
  if (im->p->err_class != PARSE_OK)
    return 0;
  im->p->err_class = cls;
  va_start(ap, fmt);
  vsnprintf(im->p->errstr, sizeof im->p->errstr, fmt, ap);
  va_end(ap);
  return 0;
}

/* The same, as an expression worth -1, for functions that return 0/-1. */
#define REJECT(im, cls, ...) (reject(im, cls, __VA_ARGS__), -1)

/* ---- shared helpers ---------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PARSE_SWAR 1
/* The value of 8 ASCII digits at |s| (the first one most significant), or
 * -1 when one of them is not a digit. Bytes are combined in pairs, then
 * quads, then all eight, with no carry between lanes (each lane holds at
 * most 99, 9999, 99999999). Ids and millisecond times have 10-13 digits:
 * this does most of them in one step. */
static int64_t eight_digits(const char *s) {
  const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull, zeros = 0x3030303030303030ull;
  uint64_t v;
  memcpy(&v, s, sizeof v);
  /* every byte 0x30..0x39: high nibble 3, and low nibble + 6 still < 16 */
  if ((v & hi) != zeros || ((v + 0x0606060606060606ull) & hi) != zeros)
    return -1;
  v -= zeros;
  v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFull;
  v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFull;
  v = (v * 10000 + (v >> 32)) & 0xFFFFFFFFull;
  return (int64_t)v;
}
#endif

int parse_int64_text(const char *s, size_t len, int64_t *out) {
  size_t i = 0;
  uint64_t mag = 0, limit = (uint64_t)INT64_MAX;

  if (len == 0 || len > 20)
    return -1;
  if (s[0] == '-') {
    i = 1;
    limit = (uint64_t)INT64_MAX + 1;
    if (len == 1)
      return -1;
  }
  if (len - i <= 18) { /* cannot overflow: no bound check per digit */
#ifdef PARSE_SWAR
    for (; len - i >= 8; i += 8) {
      int64_t d8 = eight_digits(s + i);
      if (d8 < 0)
        return -1;
      mag = mag * 100000000u + (uint64_t)d8;
    }
#endif
    for (; i < len; i++) {
      unsigned d = (unsigned)(unsigned char)s[i] - '0';
      if (d > 9)
        return -1;
      mag = mag * 10 + d;
    }
  }
  for (; i < len; i++) {
    uint64_t d;
    if (s[i] < '0' || s[i] > '9')
      return -1;
    d = (uint64_t)(s[i] - '0');
    if (mag > (limit - d) / 10)
      return -1;
    mag = mag * 10 + d;
  }
  if (s[0] == '-')
    *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  else
    *out = (int64_t)mag;
  return 0;
}

int parse_interval_valid(const char *s) {
  static const char *const intervals[] = {"1s", "1m", "3m", "5m", "15m", "30m",
                                          "1h", "2h", "4h", "6h", "8h",  "12h",
                                          "1d", "3d", "1w", "1M"};
  for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
    if (strcmp(s, intervals[i]) == 0)
      return 1;
  }
  return 0;
}

/* ---- arena for yajl ---------------------------------------------------- */

/* Every block, in the arena or from malloc, starts with a header holding
 * its size, so realloc knows how much to copy. */
#define HDR ARENA_ALIGN
#define ROUND(n) (((n) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define NO_LAST ((size_t)-1)

int parse_arena_init(struct parse_arena *a, size_t cap) {
  a->base = malloc(cap);
  if (!a->base)
    return BL_ENOMEM;
  a->cap = cap;
  a->used = 0;
  a->last = NO_LAST;
  a->n_fallback = 0;
  return 0;
}

void parse_arena_reset(struct parse_arena *a) {
  a->used = 0;
  a->last = NO_LAST;
}

void parse_arena_free(struct parse_arena *a) {
  free(a->base);
  a->base = NULL;
  a->cap = 0;
}

static int in_arena(const struct parse_arena *a, const void *ptr) {
  const char *c = ptr;
  return c >= a->base && c < a->base + a->cap;
}

static void *arena_malloc(void *ctx, size_t sz) {
  struct parse_arena *a = ctx;
  char *b;

  if (sz <= a->cap && a->cap - a->used >= HDR + ROUND(sz)) {
    b = a->base + a->used;
    a->last = a->used;
    a->used += HDR + ROUND(sz);
  } else {
    if (sz > SIZE_MAX - HDR)
      return NULL;
    b = malloc(HDR + sz);
    if (!b)
      return NULL;
    a->n_fallback++;
  }
  memcpy(b, &sz, sizeof sz);
  return b + HDR;
}

static void arena_release(void *ctx, void *ptr) {
  struct parse_arena *a = ctx;
  char *b;

  if (!ptr)
    return;
  b = (char *)ptr - HDR;
  if (!in_arena(a, ptr)) {
    free(b);
    return;
  }
  if (a->last != NO_LAST && b == a->base + a->last) {
    a->used = a->last; /* the newest block: give it back */
    a->last = NO_LAST;
  }
}

static void *arena_realloc(void *ctx, void *ptr, size_t sz) {
  struct parse_arena *a = ctx;
  size_t old;
  char *b, *nb;

  if (!ptr)
    return arena_malloc(ctx, sz);
  b = (char *)ptr - HDR;
  memcpy(&old, b, sizeof old);
  if (in_arena(a, ptr) && a->last != NO_LAST && b == a->base + a->last &&
      sz <= a->cap && a->cap - a->last >= HDR + ROUND(sz)) {
    a->used = a->last + HDR + ROUND(sz); /* grow or shrink in place */
    memcpy(b, &sz, sizeof sz);
    return ptr;
  }
  nb = arena_malloc(ctx, sz);
  if (!nb)
    return NULL;
  memcpy(nb, ptr, old < sz ? old : sz);
  arena_release(ctx, ptr);
  return nb;
}

void parse_arena_funcs(struct parse_arena *a, yajl_alloc_funcs *afs) {
  afs->malloc = arena_malloc;
  afs->realloc = arena_realloc;
  afs->free = arena_release;
  afs->ctx = a;
}

/* ---- callbacks --------------------------------------------------------- */

static int slot_index(const unsigned char *k, size_t n) {
  if (n != 1)
    return -1;
  if (k[0] >= 'A' && k[0] <= 'Z')
    return k[0] - 'A';
  if (k[0] >= 'a' && k[0] <= 'z')
    return 26 + (k[0] - 'a');
  return -1;
}

static int slot_of(char c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' : 26 + (c - 'a');
}

static int key_is(const unsigned char *k, size_t n, const char *name) {
  size_t m = strlen(name);
  return n == m && memcmp(k, name, n) == 0;
}

static uint8_t key_id(uint8_t ctx, const unsigned char *k, size_t n) {
  int si;

  if (ctx == C_TOP || ctx == C_DATA || ctx == C_K) {
    si = slot_index(k, n);
    if (si >= 0)
      return (uint8_t)si;
  }
  if (ctx == C_TOP) {
    if (key_is(k, n, "stream"))
      return K_STREAM;
    if (key_is(k, n, "data"))
      return K_DATA;
    if (key_is(k, n, "result"))
      return K_RESULT;
    if (key_is(k, n, "error"))
      return K_ERROR;
    if (key_is(k, n, "id"))
      return K_ID;
  }
  if ((ctx == C_TOP || ctx == C_DATA) && key_is(k, n, "lastUpdateId"))
    return K_LASTUPD;
  if (ctx == C_ERR) {
    if (key_is(k, n, "code"))
      return K_CODE;
    if (key_is(k, n, "msg"))
      return K_MSG;
  }
  return K_OTHER;
}

static int set_of(uint8_t ctx) {
  return ctx == C_TOP ? SET_TOP : ctx == C_DATA ? SET_DATA : SET_K;
}

static const char *ctx_name(uint8_t ctx) {
  return ctx == C_TOP ? "" : ctx == C_DATA ? "data." : "k.";
}

/* Marks a key as seen in its object; a key read twice is an error. */
static int mark_seen(struct parse_impl *im, const struct open_ctx *o) {
  if (o->key < NSLOTS) {
    struct slotset *ss = &im->sets[set_of(o->ctx)];
    uint64_t bit = 1ULL << o->key;
    if (ss->seen & bit) {
      char c = (char)(o->key < 26 ? 'A' + o->key : 'a' + o->key - 26);
      return reject(im, PARSE_BAD_JSON, "duplicate key \"%s%c\"",
                    ctx_name(o->ctx), c);
    }
    ss->seen |= bit;
    return 1;
  }
  if (o->key != K_OTHER) {
    uint32_t bit = NB(o->key);
    if (o->ctx == C_DATA)
      bit = NB_DATA_LASTUPD;
    if (im->named & bit)
      return reject(im, PARSE_BAD_JSON, "duplicate key in %s object",
                    o->ctx == C_ERR ? "error" : "frame");
    im->named |= bit;
  }
  return 1;
}

/* A scalar value as the callbacks see it. */
struct scalar {
  uint8_t kind; /* SK_STR, SK_INT/SK_NUM (decided here), SK_BOOL, SK_NULL */
  const char *s;
  size_t len;
  int64_t i;
};

static void fill_slot(struct slot *sl, const struct scalar *v) {
  sl->kind = v->kind;
  sl->i = v->i;
  if (v->kind == SK_STR) {
    if (v->len > DEC_TEXT_MAX || memchr(v->s, '\0', v->len)) {
      sl->kind = SK_STR_BAD;
      return;
    }
    memcpy(sl->s, v->s, v->len);
    sl->s[v->len] = '\0';
    sl->len = (uint8_t)v->len;
  }
}

/* Copies at most |cap|-1 bytes of UTF-8 text, cutting at a character
 * boundary, and NUL-terminates. */
static void copy_utf8_cut(char *dst, size_t cap, const char *s, size_t len) {
  if (len >= cap) {
    len = cap - 1;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
      len--;
  }
  memcpy(dst, s, len);
  dst[len] = '\0';
}

static int pf_scalar(struct parse_impl *im, struct scalar *v) {
  struct open_ctx *o;

  if (v->kind == SK_NUM && parse_int64_text(v->s, v->len, &v->i) == 0)
    v->kind = SK_INT;
  if (im->depth == 0)
    return reject(im, PARSE_BAD_JSON, "frame is not a JSON object");
  o = &im->stack[im->depth - 1];
  switch (o->ctx) {
  case C_TOP:
  case C_DATA:
  case C_K:
    if (!mark_seen(im, o))
      return 0;
    if (o->key < NSLOTS) {
      fill_slot(&im->sets[set_of(o->ctx)].v[o->key], v);
      return 1;
    }
    switch (o->key) {
    case K_STREAM:
      im->stream_kind = v->kind;
      if (v->kind == SK_STR) {
        if (v->len >= sizeof im->stream || memchr(v->s, '\0', v->len)) {
          im->stream_kind = SK_STR_BAD;
        } else {
          memcpy(im->stream, v->s, v->len);
          im->stream[v->len] = '\0';
        }
      }
      break;
    case K_DATA:
      im->data_kind = v->kind;
      break;
    case K_RESULT:
      im->result_kind = v->kind;
      break;
    case K_ERROR:
      im->error_kind = v->kind;
      break;
    case K_ID:
      im->id_kind = v->kind;
      im->id = v->i;
      break;
    default:
      break;
    }
    return 1;
  case C_ERR:
    if (!mark_seen(im, o))
      return 0;
    if (o->key == K_CODE) {
      im->code_kind = v->kind;
      im->code = v->i;
    } else if (o->key == K_MSG) {
      im->msg_kind = v->kind;
      if (v->kind == SK_STR)
        copy_utf8_cut(im->msg, sizeof im->msg, v->s, v->len);
    }
    return 1;
  case C_LEVELS:
    return reject(im, PARSE_BAD_TYPE, "a depth level is not an array");
  case C_PAIR: {
    struct ev_level *l;
    char *dst;
    if (v->kind != SK_STR || o->idx >= 2)
      return reject(im, PARSE_BAD_TYPE,
                    "a depth level is not [price, qty] strings");
    if (!dec_valid(v->s, v->len))
      return reject(im, PARSE_BAD_DECIMAL, "bad decimal in a depth level");
    l = o->side == 0 ? &im->lv[im->n_lv[0]]
                     : &im->lv[im->max_levels - 1 - im->n_lv[1]];
    dst = o->idx == 0 ? l->price : l->qty;
    memcpy(dst, v->s, v->len);
    dst[v->len] = '\0';
    o->idx++;
    return 1;
  }
  default:
    return 1; /* C_SKIP */
  }
}

static int pf_null(void *ctx) {
  struct scalar v = {SK_NULL, NULL, 0, 0};
  return pf_scalar(ctx, &v);
}

static int pf_bool(void *ctx, int b) {
  struct scalar v = {SK_BOOL, NULL, 0, b ? 1 : 0};
  return pf_scalar(ctx, &v);
}

static int pf_number(void *ctx, const char *s, size_t len) {
  struct scalar v = {SK_NUM, s, len, 0};
  return pf_scalar(ctx, &v);
}

static int pf_string(void *ctx, const unsigned char *s, size_t len) {
  struct scalar v = {SK_STR, (const char *)s, len, 0};
  return pf_scalar(ctx, &v);
}

static int pf_open(struct parse_impl *im, int is_map) {
  struct open_ctx *o, *n;
  uint8_t kind = is_map ? SK_OBJ : SK_ARR;
  uint8_t next = C_SKIP, side = 0;

  if (im->depth >= im->max_depth)
    return reject(im, PARSE_TOO_BIG, "nesting deeper than %d", im->max_depth);
  if (im->depth == 0) {
    if (!is_map)
      return reject(im, PARSE_BAD_JSON, "frame is not a JSON object");
    next = C_TOP;
    goto push;
  }
  o = &im->stack[im->depth - 1];
  switch (o->ctx) {
  case C_TOP:
  case C_DATA:
  case C_K:
    if (!mark_seen(im, o))
      return 0;
    if (o->key < NSLOTS) {
      int set = set_of(o->ctx);
      struct slot *sl = &im->sets[set].v[o->key];
      sl->kind = kind;
      if (o->ctx == C_K)
        break;
      if (is_map && o->key == slot_of('k')) {
        if (im->k_owner)
          return reject(im, PARSE_BAD_JSON, "two \"k\" objects");
        im->k_owner = (uint8_t)(set + 1);
        next = C_K;
      } else if (!is_map &&
                 (o->key == slot_of('b') || o->key == slot_of('a'))) {
        side = o->key == slot_of('b') ? 0 : 1;
        if (im->lv_owner[side])
          return reject(im, PARSE_BAD_JSON, "two \"%c\" level arrays",
                        side ? 'a' : 'b');
        im->lv_owner[side] = (uint8_t)(set + 1);
        sl->kind = SK_LEVELS;
        next = C_LEVELS;
      }
      break;
    }
    switch (o->key) {
    case K_STREAM:
      im->stream_kind = kind;
      break;
    case K_DATA:
      im->data_kind = kind;
      if (is_map)
        next = C_DATA;
      break;
    case K_RESULT:
      im->result_kind = kind;
      break;
    case K_ERROR:
      im->error_kind = kind;
      if (is_map)
        next = C_ERR;
      break;
    case K_ID:
      im->id_kind = kind;
      break;
    default:
      break;
    }
    break;
  case C_ERR:
    if (!mark_seen(im, o))
      return 0;
    if (o->key == K_CODE)
      im->code_kind = kind;
    else if (o->key == K_MSG)
      im->msg_kind = kind;
    break;
  case C_LEVELS:
    if (is_map)
      return reject(im, PARSE_BAD_TYPE, "a depth level is not an array");
    if (im->n_lv[0] + im->n_lv[1] >= im->max_levels)
      return reject(im, PARSE_TOO_BIG, "more than %zu depth levels",
                    im->max_levels);
    side = o->side;
    next = C_PAIR;
    break;
  case C_PAIR:
    return reject(im, PARSE_BAD_TYPE,
                  "a depth level is not [price, qty] strings");
  default:
    break; /* C_SKIP: children are skipped too */
  }
push:
  n = &im->stack[im->depth++];
  n->ctx = next;
  n->key = K_OTHER;
  n->side = side;
  n->idx = 0;
  return 1;
}

static int pf_close(struct parse_impl *im) {
  struct open_ctx *o = &im->stack[im->depth - 1];

  if (o->ctx == C_PAIR) {
    if (o->idx != 2)
      return reject(im, PARSE_BAD_TYPE,
                    "a depth level is not [price, qty] strings");
    im->n_lv[o->side]++;
  }
  if (--im->depth == 0)
    im->done = 1;
  return 1;
}

static int pf_start_map(void *ctx) {
  return pf_open(ctx, 1);
}

static int pf_start_array(void *ctx) {
  return pf_open(ctx, 0);
}

static int pf_end(void *ctx) {
  return pf_close(ctx);
}

static int pf_map_key(void *ctx, const unsigned char *k, size_t n) {
  struct parse_impl *im = ctx;
  struct open_ctx *o = &im->stack[im->depth - 1];
  o->key = key_id(o->ctx, k, n);
  return 1;
}

static const yajl_callbacks frame_callbacks = {
    pf_null,      pf_bool,    NULL,   NULL,           pf_number, pf_string,
    pf_start_map, pf_map_key, pf_end, pf_start_array, pf_end};

/* yajl checks only the shape of UTF-8 sequences; text we keep (symbols,
 * stream names, error messages) is also checked for overlong forms,
 * surrogates and code points above U+10FFFF. That text is nearly always
 * ASCII: eight bytes without a high bit are passed at once. */
static int utf8_strict(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  while (i < n) {
    unsigned c = s[i];
    size_t len, k;
    uint32_t cp;
    if (c < 0x80) {
      uint64_t w;
      if (n - i >= 8) {
        memcpy(&w, s + i, 8);
        if (!(w & 0x8080808080808080ULL)) {
          i += 8;
          continue;
        }
      }
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
      return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
      return 0;
    i += len;
  }
  return 1;
}

/* ---- finishing: slots to the typed event -------------------------------- */

enum ftype { F_INT, F_DEC, F_BOOL, F_SYM, F_IVL };

struct field {
  char key;
  uint8_t type;
  uint16_t off;
};

#define FLD(k, t, st, m)                                                       \
  { k, t, (uint16_t)offsetof(st, m) }

static const struct field kline_top[] = {
    FLD('E', F_INT, struct ev_kline, event_time),
    FLD('s', F_SYM, struct ev_kline, symbol),
};
static const struct field kline_k[] = {
    FLD('t', F_INT, struct ev_kline, open_time),
    FLD('T', F_INT, struct ev_kline, close_time),
    FLD('i', F_IVL, struct ev_kline, interval),
    FLD('f', F_INT, struct ev_kline, first_trade_id),
    FLD('L', F_INT, struct ev_kline, last_trade_id),
    FLD('o', F_DEC, struct ev_kline, open),
    FLD('c', F_DEC, struct ev_kline, close),
    FLD('h', F_DEC, struct ev_kline, high),
    FLD('l', F_DEC, struct ev_kline, low),
    FLD('v', F_DEC, struct ev_kline, volume),
    FLD('n', F_INT, struct ev_kline, trades_count),
    FLD('x', F_BOOL, struct ev_kline, is_closed),
    FLD('q', F_DEC, struct ev_kline, quote_volume),
    FLD('V', F_DEC, struct ev_kline, taker_buy_volume),
    FLD('Q', F_DEC, struct ev_kline, taker_buy_quote_volume),
};
static const struct field ticker_fields[] = {
    FLD('E', F_INT, struct ev_ticker, event_time),
    FLD('s', F_SYM, struct ev_ticker, symbol),
    FLD('p', F_DEC, struct ev_ticker, price_change),
    FLD('P', F_DEC, struct ev_ticker, price_change_percent),
    FLD('w', F_DEC, struct ev_ticker, weighted_avg_price),
    FLD('c', F_DEC, struct ev_ticker, price),
    FLD('b', F_DEC, struct ev_ticker, bid_price),
    FLD('B', F_DEC, struct ev_ticker, bid_qty),
    FLD('a', F_DEC, struct ev_ticker, ask_price),
    FLD('A', F_DEC, struct ev_ticker, ask_qty),
    FLD('o', F_DEC, struct ev_ticker, open_price),
    FLD('h', F_DEC, struct ev_ticker, high),
    FLD('l', F_DEC, struct ev_ticker, low),
    FLD('v', F_DEC, struct ev_ticker, volume),
    FLD('q', F_DEC, struct ev_ticker, quote_volume),
    FLD('F', F_INT, struct ev_ticker, first_trade_id),
    FLD('L', F_INT, struct ev_ticker, last_trade_id),
    FLD('n', F_INT, struct ev_ticker, trades_count),
};
static const struct field trade_fields[] = {
    FLD('E', F_INT, struct ev_trade, event_time),
    FLD('s', F_SYM, struct ev_trade, symbol),
    FLD('a', F_INT, struct ev_trade, agg_trade_id),
    FLD('p', F_DEC, struct ev_trade, price),
    FLD('q', F_DEC, struct ev_trade, quantity),
    FLD('f', F_INT, struct ev_trade, first_trade_id),
    FLD('l', F_INT, struct ev_trade, last_trade_id),
    FLD('T', F_INT, struct ev_trade, trade_time),
    FLD('m', F_BOOL, struct ev_trade, is_buyer_maker),
};
static const struct field depth_fields[] = {
    FLD('E', F_INT, struct ev_depth, event_time),
    FLD('s', F_SYM, struct ev_depth, symbol),
    FLD('U', F_INT, struct ev_depth, first_update_id),
    FLD('u', F_INT, struct ev_depth, final_update_id),
};
static const struct field shutdown_fields[] = {
    FLD('E', F_INT, struct ev_server_shutdown, event_time),
};

#define NF(a) (sizeof(a) / sizeof((a)[0]))

static const char *kind_name(uint8_t kind) {
  switch (kind) {
  case SK_STR:
  case SK_STR_BAD:
    return "a string";
  case SK_INT:
    return "an integer";
  case SK_NUM:
    return "a non-integer number";
  case SK_BOOL:
    return "a boolean";
  case SK_NULL:
    return "null";
  case SK_OBJ:
    return "an object";
  default:
    return "an array";
  }
}

/* Checks and copies the fields |f| of slot table |set| into |base|.
 * Returns 0, or -1 with the reason recorded. */
static int map_fields(struct parse_impl *im, int set, const char *pfx,
                      const struct field *f, size_t n, void *base) {
  const struct slotset *ss = &im->sets[set];

  for (size_t i = 0; i < n; i++) {
    int si = slot_of(f[i].key);
    const struct slot *sl = &ss->v[si];
    char *dst = (char *)base + f[i].off;

    if (!(ss->seen & (1ULL << si))) {
      reject(im, PARSE_MISSING_FIELD, "missing field \"%s%c\"", pfx, f[i].key);
      return -1;
    }
    switch (f[i].type) {
    case F_INT:
      if (sl->kind != SK_INT)
        goto bad_type;
      memcpy(dst, &sl->i, sizeof(int64_t));
      break;
    case F_BOOL: {
      int b = (int)sl->i;
      if (sl->kind != SK_BOOL)
        goto bad_type;
      memcpy(dst, &b, sizeof b);
      break;
    }
    case F_DEC:
      if (sl->kind == SK_STR_BAD ||
          (sl->kind == SK_STR && !dec_valid(sl->s, sl->len))) {
        reject(im, PARSE_BAD_DECIMAL, "field \"%s%c\" is not a decimal", pfx,
               f[i].key);
        return -1;
      }
      if (sl->kind != SK_STR)
        goto bad_type;
      memcpy(dst, sl->s, (size_t)sl->len + 1);
      break;
    case F_SYM:
      if (sl->kind != SK_STR && sl->kind != SK_STR_BAD)
        goto bad_type;
      if (sl->kind == SK_STR_BAD || sl->len == 0 || sl->len >= EV_SYMBOL_MAX) {
        reject(im, PARSE_BAD_TYPE, "field \"%s%c\" is not a valid symbol", pfx,
               f[i].key);
        return -1;
      }
      if (!utf8_strict(sl->s, sl->len)) {
        reject(im, PARSE_BAD_UTF8, "field \"%s%c\" is not valid UTF-8", pfx,
               f[i].key);
        return -1;
      }
      memcpy(dst, sl->s, (size_t)sl->len + 1);
      break;
    case F_IVL:
      if (sl->kind != SK_STR && sl->kind != SK_STR_BAD)
        goto bad_type;
      if (sl->kind == SK_STR_BAD || sl->len >= EV_INTERVAL_MAX ||
          !parse_interval_valid(sl->s)) {
        reject(im, PARSE_BAD_TYPE, "field \"%s%c\" is not a kline interval",
               pfx, f[i].key);
        return -1;
      }
      memcpy(dst, sl->s, (size_t)sl->len + 1);
      break;
    }
    continue;
  bad_type:
    reject(im, PARSE_BAD_TYPE, "field \"%s%c\" is %s", pfx, f[i].key,
           kind_name(sl->kind));
    return -1;
  }
  return 0;
}

/* Event types by "e". EV_IGNORED: a Binance event we do not consume. */
static enum ev_type event_by_name(const char *e) {
  static const struct {
    const char *name;
    enum ev_type type;
  } names[] = {
      {"depthUpdate", EV_DEPTH},
      {"aggTrade", EV_TRADE},
      {"kline", EV_KLINE},
      {"24hrTicker", EV_TICKER},
      {"serverShutdown", EV_SERVER_SHUTDOWN},
      {"trade", EV_IGNORED},
      {"24hrMiniTicker", EV_IGNORED},
      {"1hTicker", EV_IGNORED},
      {"4hTicker", EV_IGNORED},
      {"1dTicker", EV_IGNORED},
      {"avgPrice", EV_IGNORED},
      {"blockTrade", EV_IGNORED},
      {"referencePrice", EV_IGNORED},
  };
  for (size_t i = 0; i < NF(names); i++) {
    if (strcmp(e, names[i].name) == 0)
      return names[i].type;
  }
  return EV_NONE;
}

/* The event type a combined stream name promises, or EV_NONE when the
 * stream is not one whose frames we turn into typed events. */
static enum ev_type event_by_stream(const char *stream) {
  const char *at;

  if (strcmp(stream, "!serverShutdown") == 0)
    return EV_SERVER_SHUTDOWN;
  at = strchr(stream, '@');
  if (!at)
    return EV_NONE;
  at++;
  if (strcmp(at, "aggTrade") == 0)
    return EV_TRADE;
  if (strcmp(at, "ticker") == 0)
    return EV_TICKER;
  if (strcmp(at, "depth") == 0 || strcmp(at, "depth@100ms") == 0 ||
      strcmp(at, "depth@1000ms") == 0)
    return EV_DEPTH;
  if (strncmp(at, "kline_", 6) == 0) {
    char ivl[EV_INTERVAL_MAX];
    const char *end = strchr(at + 6, '@');
    size_t n = end ? (size_t)(end - (at + 6)) : strlen(at + 6);
    if (n == 0 || n >= sizeof ivl || (end && strcmp(end, "@+08:00") != 0))
      return EV_NONE;
    memcpy(ivl, at + 6, n);
    ivl[n] = '\0';
    return parse_interval_valid(ivl) ? EV_KLINE : EV_NONE;
  }
  return EV_NONE;
}

static void reverse_levels(struct ev_level *l, size_t n) {
  for (size_t i = 0; i < n / 2; i++) {
    struct ev_level t = l[i];
    l[i] = l[n - 1 - i];
    l[n - 1 - i] = t;
  }
}

static int levels_field(struct parse_impl *im, int set, char key) {
  const struct slotset *ss = &im->sets[set];
  int si = slot_of(key);
  if (!(ss->seen & (1ULL << si)))
    return REJECT(im, PARSE_MISSING_FIELD, "missing field \"%c\"", key);
  if (ss->v[si].kind != SK_LEVELS)
    return REJECT(im, PARSE_BAD_TYPE, "field \"%c\" is %s, not levels", key,
                  kind_name(ss->v[si].kind));
  return 0;
}

/* A stream event in slot table |set|; |expect| is the type promised by the
 * combined stream name (EV_NONE: none or unknown). */
static int finish_payload(struct parse_impl *im, int set, int combined,
                          enum ev_type expect, struct ev *out) {
  const struct slotset *ss = &im->sets[set];
  const struct slot *e = &ss->v[slot_of('e')];
  enum ev_type type;

  if (ss->seen & (1ULL << slot_of('e'))) {
    if (e->kind != SK_STR)
      return REJECT(im, PARSE_BAD_TYPE, "field \"e\" is %s",
                    kind_name(e->kind));
    type = event_by_name(e->s);
    if (expect != EV_NONE && type != expect)
      return REJECT(im, PARSE_BAD_TYPE, "event \"%s\" on stream \"%s\"", e->s,
                    im->stream);
    if (type == EV_NONE)
      return REJECT(im, PARSE_UNKNOWN_EVENT, "unknown event type \"%s\"", e->s);
  } else if (expect != EV_NONE) {
    return REJECT(im, PARSE_MISSING_FIELD, "missing field \"e\"");
  } else if (combined || (im->named & NB(K_LASTUPD)) ||
             (ss->seen & (1ULL << slot_of('u')) &&
              ss->seen & (1ULL << slot_of('s')) &&
              ss->seen & (1ULL << slot_of('b')))) {
    /* A combined stream we do not consume, or a raw bookTicker or
     * partial-depth object (they carry no "e"). */
    out->type = EV_IGNORED;
    return 0;
  } else {
    return REJECT(im, PARSE_UNKNOWN_EVENT, "an object of no known shape");
  }

  switch (type) {
  case EV_KLINE: {
    const struct slot *k = &ss->v[slot_of('k')];
    if (map_fields(im, set, "", kline_top, NF(kline_top), &out->u.kline))
      return -1;
    if (!(ss->seen & (1ULL << slot_of('k'))))
      return REJECT(im, PARSE_MISSING_FIELD, "missing field \"k\"");
    if (k->kind != SK_OBJ || im->k_owner != set + 1)
      return REJECT(im, PARSE_BAD_TYPE, "field \"k\" is %s",
                    kind_name(k->kind));
    if (map_fields(im, SET_K, "k.", kline_k, NF(kline_k), &out->u.kline))
      return -1;
    break;
  }
  case EV_TICKER:
    if (map_fields(im, set, "", ticker_fields, NF(ticker_fields),
                   &out->u.ticker))
      return -1;
    break;
  case EV_TRADE:
    if (map_fields(im, set, "", trade_fields, NF(trade_fields), &out->u.trade))
      return -1;
    break;
  case EV_DEPTH: {
    struct ev_depth *d = &out->u.depth;
    if (map_fields(im, set, "", depth_fields, NF(depth_fields), d))
      return -1;
    if (levels_field(im, set, 'b') || levels_field(im, set, 'a'))
      return -1;
    d->bids = im->lv;
    d->n_bids = im->n_lv[0];
    d->n_asks = im->n_lv[1];
    d->asks = im->lv + (im->max_levels - d->n_asks);
    reverse_levels(im->lv + (im->max_levels - d->n_asks), d->n_asks);
    break;
  }
  case EV_SERVER_SHUTDOWN:
    if (map_fields(im, set, "", shutdown_fields, NF(shutdown_fields),
                   &out->u.shutdown))
      return -1;
    break;
  default:
    break;
  }
  out->type = type;
  return 0;
}

static int finish_control(struct parse_impl *im, struct ev *out) {
  struct ev_control *c = &out->u.control;

  if (!(im->named & NB(K_ID)))
    return REJECT(im, PARSE_MISSING_FIELD, "missing field \"id\"");
  if (im->id_kind == SK_INT) {
    c->id = im->id;
    c->has_id = 1;
  } else if (im->id_kind != SK_NULL && im->id_kind != SK_STR &&
             im->id_kind != SK_STR_BAD) {
    return REJECT(im, PARSE_BAD_TYPE, "field \"id\" is %s",
                  kind_name(im->id_kind));
  }
  if (im->named & NB(K_ERROR)) {
    if (im->error_kind != SK_OBJ)
      return REJECT(im, PARSE_BAD_TYPE, "field \"error\" is %s",
                    kind_name(im->error_kind));
    if (!(im->named & NB(K_CODE)))
      return REJECT(im, PARSE_MISSING_FIELD, "missing field \"error.code\"");
    if (im->code_kind != SK_INT || im->code < -2147483647 - 1 ||
        im->code > 2147483647)
      return REJECT(im, PARSE_BAD_TYPE, "field \"error.code\" is %s",
                    im->code_kind == SK_INT ? "out of range"
                                            : kind_name(im->code_kind));
    if (!(im->named & NB(K_MSG)))
      return REJECT(im, PARSE_MISSING_FIELD, "missing field \"error.msg\"");
    if (im->msg_kind != SK_STR)
      return REJECT(im, PARSE_BAD_TYPE, "field \"error.msg\" is %s",
                    kind_name(im->msg_kind));
    if (!utf8_strict(im->msg, strlen(im->msg)))
      return REJECT(im, PARSE_BAD_UTF8,
                    "field \"error.msg\" is not valid UTF-8");
    c->is_error = 1;
    c->code = (int)im->code;
    memcpy(c->msg, im->msg, sizeof c->msg);
  }
  out->type = EV_CONTROL;
  return 0;
}

static int finish(struct parse_impl *im, struct ev *out) {
  if (im->named & NB(K_DATA)) {
    if (!(im->named & NB(K_STREAM)))
      return REJECT(im, PARSE_MISSING_FIELD, "missing field \"stream\"");
    if (im->stream_kind != SK_STR || im->stream[0] == '\0')
      return REJECT(im, PARSE_BAD_TYPE, "field \"stream\" is %s",
                    im->stream_kind == SK_STR_BAD ? "too long"
                    : im->stream_kind == SK_STR   ? "empty"
                                                  : kind_name(im->stream_kind));
    if (!utf8_strict(im->stream, strlen(im->stream)))
      return REJECT(im, PARSE_BAD_UTF8, "field \"stream\" is not valid UTF-8");
    memcpy(out->stream, im->stream, sizeof out->stream);
    if (im->data_kind == SK_ARR && event_by_stream(im->stream) == EV_NONE) {
      out->type = EV_IGNORED; /* !miniTicker@arr and the like */
      return 0;
    }
    if (im->data_kind != SK_OBJ)
      return REJECT(im, PARSE_BAD_TYPE, "field \"data\" is %s",
                    kind_name(im->data_kind));
    return finish_payload(im, SET_DATA, 1, event_by_stream(im->stream), out);
  }
  if (im->named & (NB(K_RESULT) | NB(K_ERROR)))
    return finish_control(im, out);
  if (im->named & NB(K_STREAM))
    return REJECT(im, PARSE_MISSING_FIELD, "missing field \"data\"");
  return finish_payload(im, SET_TOP, 0, EV_NONE, out);
}

/* ---- the public functions ---------------------------------------------- */

int parse_init(struct parse *p, const struct parse_limits *limits) {
  struct parse_impl *im;
  struct parse_limits l = {0, 0, 0, 0};
  int rv;

  memset(p, 0, sizeof *p);
  if (limits)
    l = *limits;
  if (l.max_frame == 0)
    l.max_frame = PARSE_FRAME_MAX_DEFAULT;
  if (l.max_levels == 0)
    l.max_levels = PARSE_LEVELS_MAX_DEFAULT;
  if (l.max_depth == 0)
    l.max_depth = PARSE_DEPTH_MAX_DEFAULT;
  if (l.max_depth < 1 || l.max_depth > PARSE_DEPTH_MAX_LIMIT ||
      l.max_levels > SIZE_MAX / sizeof(struct ev_level))
    return BL_EINVAL;

  im = calloc(1, sizeof *im);
  if (!im)
    return BL_ENOMEM;
  im->lv = malloc(l.max_levels * sizeof *im->lv);
  if (!im->lv) {
    free(im);
    return BL_ENOMEM;
  }
  rv = parse_arena_init(&im->arena, ARENA_SIZE);
  if (rv < 0) {
    free(im->lv);
    free(im);
    return rv;
  }
  parse_arena_funcs(&im->arena, &im->afs);
  im->p = p;
  im->use_malloc = l.yajl_malloc;
  im->max_frame = l.max_frame;
  im->max_levels = l.max_levels;
  im->max_depth = l.max_depth;
  p->impl = im;
  return 0;
}

void parse_free(struct parse *p) {
  if (!p->impl)
    return;
  parse_arena_free(&p->impl->arena);
  free(p->impl->lv);
  free(p->impl);
  p->impl = NULL;
}

static void reset_frame(struct parse_impl *im) {
  im->depth = 0;
  im->done = 0;
  im->named = 0;
  im->k_owner = 0;
  im->lv_owner[0] = im->lv_owner[1] = 0;
  im->stream_kind = im->data_kind = im->result_kind = SK_NONE;
  im->error_kind = im->id_kind = im->code_kind = im->msg_kind = SK_NONE;
  im->id = im->code = 0;
  im->n_lv[0] = im->n_lv[1] = 0;
  im->stream[0] = '\0';
  im->msg[0] = '\0';
  for (int i = 0; i < NSETS; i++)
    im->sets[i].seen = 0;
}

/* Turns yajl's error text into a reason: "lexical error: invalid bytes in
 * UTF8 string." is bad_utf8, anything else bad_json. */
static void yajl_reason(struct parse_impl *im, yajl_handle h) {
  unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
  const char *m = msg ? (const char *)msg : "JSON error";
  size_t n = strcspn(m, "\n");
  reject(im, strstr(m, "UTF8") ? PARSE_BAD_UTF8 : PARSE_BAD_JSON, "%.*s",
         (int)n, m);
  if (msg)
    yajl_free_error(h, msg);
}

int parse_frame(struct parse *p, const char *data, size_t len, struct ev *out) {
  struct parse_impl *im = p->impl;
  yajl_handle h;
  yajl_status st;
  int rv = 0;

  memset(out, 0, sizeof *out);
  p->err_class = PARSE_OK;
  p->errstr[0] = '\0';
  p->n_frames++;
  if (len > im->max_frame) {
    reject(im, PARSE_TOO_BIG, "frame of %zu bytes over the limit of %zu", len,
           im->max_frame);
    p->n_errors[PARSE_TOO_BIG]++;
    return BL_ETOOBIG;
  }
  reset_frame(im);
  parse_arena_reset(&im->arena);
  h = yajl_alloc(&frame_callbacks, im->use_malloc ? NULL : &im->afs, im);
  if (!h) {
    reject(im, PARSE_BAD_JSON, "out of memory");
    p->n_errors[PARSE_BAD_JSON]++;
    return BL_ENOMEM;
  }
  st = yajl_parse(h, (const unsigned char *)data, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(h);
  if (st == yajl_status_error)
    yajl_reason(im, h);
  else if (st != yajl_status_ok && p->err_class == PARSE_OK)
    reject(im, PARSE_BAD_JSON, "parse canceled");
  yajl_free(h);

  if (p->err_class == PARSE_OK && !im->done)
    reject(im, PARSE_BAD_JSON, "incomplete frame");
  if (p->err_class == PARSE_OK)
    finish(im, out);
  if (p->err_class != PARSE_OK) {
    rv = p->err_class == PARSE_TOO_BIG ? BL_ETOOBIG : BL_EPARSE;
    p->n_errors[p->err_class]++;
    /* No half-filled event escapes. */
    memset(out, 0, sizeof *out);
  }
  return rv;
}
