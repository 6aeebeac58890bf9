/*
 * pgarray.h: builds PostgreSQL one-dimensional array literals in text form
 * ({"a","b",NULL}) for the store's fixed INSERT ... SELECT FROM unnest()
 * statements, where each column of a batch travels as one array parameter.
 */
#ifndef BL_SINK_PGARRAY_H
#define BL_SINK_PGARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Starts an array literal in |b| (which it resets). */
int pgarray_begin(struct buf *b);

/* Appends one element; every element is quoted, with backslash and
 * double quote escaped, so any text is safe. NULL appends SQL NULL. */
int pgarray_add_str(struct buf *b, const char *s);
int pgarray_add_strn(struct buf *b, const char *s, size_t len);
int pgarray_add_i64(struct buf *b, int64_t v);
int pgarray_add_bool(struct buf *b, int v);
int pgarray_add_null(struct buf *b);

/* Closes the literal. */
int pgarray_end(struct buf *b);

#endif
