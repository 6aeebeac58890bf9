/*
 * buf.h: a growable byte buffer with a hard maximum (curl's dynbuf idea).
 *
 * Growth past |max| fails with BL_ETOOBIG and leaves the contents as they
 * were, so every producer meets its limit as a designed error path. The
 * data is always followed by a NUL byte (not counted in len), so a buffer
 * holding text can be handed to functions that want a C string.
 */
#ifndef BL_CORE_BUF_H
#define BL_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max;
};

/* Initialises an empty buffer that may grow to |max| bytes. No allocation. */
void buf_init(struct buf *b, size_t max);

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* The growing part of buf_reserve (out of line). */
int buf_grow(struct buf *b, size_t extra);

/* Makes room for |extra| more bytes. Returns 0, BL_ETOOBIG or BL_ENOMEM.
 * Inline: the common case (room already there) is a comparison. */
static inline int buf_reserve(struct buf *b, size_t extra) {
  if (extra <= b->max && b->len <= b->max - extra && b->len + extra < b->cap)
    return 0;
  return buf_grow(b, extra);
}

/* Appends bytes. Returns 0, BL_ETOOBIG or BL_ENOMEM. */
static inline int buf_append(struct buf *b, const void *data, size_t len) {
  int rv = buf_reserve(b, len);
  if (rv)
    return rv;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int buf_append_str(struct buf *b, const char *s);

static inline int buf_append_char(struct buf *b, char c) {
  int rv = buf_reserve(b, 1);
  if (rv)
    return rv;
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
  return 0;
}
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Removes the first |n| bytes (n is clamped to len). */
void buf_consume(struct buf *b, size_t n);

#endif
