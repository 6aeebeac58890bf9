/*
 * pgarray.c: text array literals for PostgreSQL (see pgarray.h).
 */
#include "sink/pgarray.h"

#include <string.h>

/* An element separator is needed unless the literal is still "{". */
static int sep(struct buf *b) {
  if (b->len > 1)
    return buf_append_char(b, ',');
  return 0;
}

int pgarray_begin(struct buf *b) {
  buf_reset(b);
  return buf_append_char(b, '{');
}

int pgarray_add_strn(struct buf *b, const char *s, size_t len) {
  int rv;
  size_t i, start;
  if (!s)
    return pgarray_add_null(b);
  if ((rv = sep(b)) || (rv = buf_append_char(b, '"')))
    return rv;
  for (i = start = 0; i < len; i++) {
    if (s[i] == '"' || s[i] == '\\') {
      if ((rv = buf_append(b, s + start, i - start)) ||
          (rv = buf_append_char(b, '\\')))
        return rv;
      start = i;
    }
  }
  if ((rv = buf_append(b, s + start, len - start)))
    return rv;
  return buf_append_char(b, '"');
}

int pgarray_add_str(struct buf *b, const char *s) {
  return pgarray_add_strn(b, s, s ? strlen(s) : 0);
}

/* Digits written directly: printf-style formatting of every integer cell
 * was a visible share of batch building. */
int pgarray_add_i64(struct buf *b, int64_t v) {
  char tmp[24];
  char *p = tmp + sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  int rv = sep(b);
  if (rv)
    return rv;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    *--p = '-';
  return buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

int pgarray_add_bool(struct buf *b, int v) {
  int rv = sep(b);
  return rv ? rv : buf_append_char(b, v ? 't' : 'f');
}

int pgarray_add_null(struct buf *b) {
  int rv = sep(b);
  return rv ? rv : buf_append(b, "NULL", 4);
}

int pgarray_end(struct buf *b) {
  return buf_append_char(b, '}');
}
