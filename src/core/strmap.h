/*
 * strmap.h: a string-keyed hash map (open addressing, linear probing) for
 * the collector's per-symbol and per-channel state.
 *
 * Keys are copied into the map; values are opaque pointers owned by the
 * caller. The map grows by doubling up to |max_entries| and refuses more
 * with BL_EFULL, so a flood of unknown symbols cannot grow it without
 * bound. Iteration order is unspecified.
 */
#ifndef BL_CORE_STRMAP_H
#define BL_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
  char *key; /* NULL: empty; STRMAP_TOMB: deleted */
  void *value;
  uint64_t hash; /* of key, while key is live */
};

struct strmap {
  struct strmap_slot *slots;
  size_t cap;   /* power of two, 0 before the first insert */
  size_t count; /* live entries */
  size_t used;  /* live + deleted slots */
  size_t max_entries;
};

void strmap_init(struct strmap *m, size_t max_entries);

/* Frees the map's memory (not the values). */
void strmap_free(struct strmap *m);

/* Returns the value stored for |key| or NULL. */
void *strmap_get(const struct strmap *m, const char *key);

/* Inserts or replaces. Returns 0, BL_EFULL or BL_ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value);

/* Removes |key| and returns its value (NULL if absent). */
void *strmap_del(struct strmap *m, const char *key);

/* Iteration: for (size_t i = 0; strmap_next(m, &i, &k, &v);) ... */
int strmap_next(const struct strmap *m, size_t *iter, const char **key,
                void **value);

#endif
