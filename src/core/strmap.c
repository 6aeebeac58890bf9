/*
 * strmap.c: open-addressing string hash map (FNV-1a, linear probing,
 * tombstones for deletion, rehash when live+deleted passes 70 %). Each
 * slot keeps its key's full hash, so a probe compares strings only when
 * the hashes match (symbol names differ in a byte or two, and a probe
 * through neighbours cost a strcmp each) and a rehash does not hash again.
 */
#include "core/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

static char strmap_tomb_;
#define STRMAP_TOMB (&strmap_tomb_)

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

void strmap_init(struct strmap *m, size_t max_entries) {
  memset(m, 0, sizeof *m);
  m->max_entries = max_entries;
}

void strmap_free(struct strmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key && m->slots[i].key != STRMAP_TOMB)
      free(m->slots[i].key);
  free(m->slots);
  m->slots = NULL;
  m->cap = m->count = m->used = 0;
}

static struct strmap_slot *find(const struct strmap *m, const char *key,
                                uint64_t h) {
  size_t mask, i;
  if (!m->cap)
    return NULL;
  mask = m->cap - 1;
  for (i = h & mask;; i = (i + 1) & mask) {
    struct strmap_slot *s = &m->slots[i];
    if (!s->key)
      return NULL;
    if (s->hash == h && s->key != STRMAP_TOMB && !strcmp(s->key, key))
      return s;
  }
}

void *strmap_get(const struct strmap *m, const char *key) {
  struct strmap_slot *s = find(m, key, hash_str(key));
  return s ? s->value : NULL;
}

static int rehash(struct strmap *m, size_t cap) {
  struct strmap_slot *old = m->slots;
  size_t oldcap = m->cap;
  struct strmap_slot *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return BL_ENOMEM;
  m->slots = slots;
  m->cap = cap;
  m->used = m->count;
  for (size_t i = 0; i < oldcap; i++) {
    size_t j;
    if (!old[i].key || old[i].key == STRMAP_TOMB)
      continue;
    for (j = old[i].hash & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1)) {
    }
    slots[j] = old[i];
  }
  free(old);
  return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value) {
  uint64_t h = hash_str(key);
  struct strmap_slot *s = find(m, key, h);
  size_t i, mask;
  char *copy;
  if (s) {
    s->value = value;
    return 0;
  }
  if (m->count >= m->max_entries)
    return BL_EFULL;
  if (!m->cap || (m->used + 1) * 10 > m->cap * 7) {
    size_t cap = m->cap ? m->cap : 16;
    while ((m->count + 1) * 10 > cap * 5)
      cap *= 2;
    int rv = rehash(m, cap);
    if (rv)
      return rv;
  }
  copy = strdup(key);
  if (!copy)
    return BL_ENOMEM;
  mask = m->cap - 1;
  for (i = h & mask;; i = (i + 1) & mask) {
    s = &m->slots[i];
    if (!s->key || s->key == STRMAP_TOMB)
      break;
  }
  if (!s->key)
    m->used++;
  s->key = copy;
  s->hash = h;
  s->value = value;
  m->count++;
  return 0;
}

void *strmap_del(struct strmap *m, const char *key) {
  struct strmap_slot *s = find(m, key, hash_str(key));
  void *v;
  if (!s)
    return NULL;
  v = s->value;
  free(s->key);
  s->key = STRMAP_TOMB;
  s->value = NULL;
  m->count--;
  return v;
}

int strmap_next(const struct strmap *m, size_t *iter, const char **key,
                void **value) {
  for (; *iter < m->cap; (*iter)++) {
    struct strmap_slot *s = &m->slots[*iter];
    if (s->key && s->key != STRMAP_TOMB) {
      *key = s->key;
      *value = s->value;
      (*iter)++;
      return 1;
    }
  }
  return 0;
}
