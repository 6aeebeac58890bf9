/*
 * buf.c: growable byte buffers with a hard limit (see buf.h).
 */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void buf_init(struct buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void buf_free(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void buf_reset(struct buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

int buf_grow(struct buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > b->max || b->len > b->max - extra)
    return BL_ETOOBIG;
  if (b->len + extra == (size_t)-1)
    return BL_ENOMEM;        /* no room for the NUL in the address space */
  need = b->len + extra + 1; /* room for the trailing NUL */
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  if (b->max != (size_t)-1 && cap > b->max + 1)
    cap = b->max + 1;
  p = realloc(b->data, cap);
  if (!p)
    return BL_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append_str(struct buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  int n, rv;
  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return BL_EINVAL;
  rv = buf_reserve(b, (size_t)n);
  if (rv)
    return rv;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  int rv;
  va_start(ap, fmt);
  rv = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rv;
}

void buf_consume(struct buf *b, size_t n) {
  if (n >= b->len) {
    buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}
