/*
 * metrics.h: Prometheus text exposition without a global registry.
 *
 * Modules keep their counters in their own typed structs (a uint64_t field
 * costs nothing to bump). A module that wants to be seen registers a
 * collector function; /metrics calls every collector, which writes its
 * families with metrics_family() and metrics_sample(). Histograms with
 * fixed bucket bounds are provided for latencies.
 */
#ifndef BL_CORE_METRICS_H
#define BL_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define METRICS_MAX_COLLECTORS 32
#define METRICS_MAX_BUCKETS 24

typedef void (*metrics_collect_fn)(struct buf *out, void *arg);

struct metrics {
  struct {
    metrics_collect_fn fn;
    void *arg;
  } collectors[METRICS_MAX_COLLECTORS];
  int n;
};

void metrics_init(struct metrics *m);

/* Adds a collector. Returns 0 or BL_EFULL. */
int metrics_register(struct metrics *m, metrics_collect_fn fn, void *arg);

/* Removes every registration of |arg|. */
void metrics_unregister(struct metrics *m, void *arg);

/* Renders every collector into |out| (appending). Returns 0, or
 * BL_ETOOBIG when |out| came within 256 bytes of its limit (lines that did
 * not fit are missing whole). */
int metrics_render(const struct metrics *m, struct buf *out);

/* Writes "# HELP name help" and "# TYPE name type" (type: counter, gauge,
 * histogram). */
void metrics_family(struct buf *out, const char *name, const char *type,
                    const char *help);

/* Writes one sample line. |labels| is NULL or the text between braces,
 * e.g. "table=\"klines\"" (values must already be escaped with
 * metrics_escape_label()). */
void metrics_sample(struct buf *out, const char *name, const char *labels,
                    double value);
void metrics_sample_u64(struct buf *out, const char *name, const char *labels,
                        uint64_t value);

/* A family with one unlabelled sample: the HELP and TYPE lines and the
 * value. */
void metrics_single(struct buf *out, const char *name, const char *type,
                    const char *help, double value);

/* Escapes a label value (backslash, quote, newline) into |dst|. */
void metrics_escape_label(char *dst, size_t cap, const char *value);

struct metrics_histogram {
  int n_bounds;
  double bounds[METRICS_MAX_BUCKETS];       /* upper bounds, ascending */
  uint64_t counts[METRICS_MAX_BUCKETS + 1]; /* last: +Inf overflow */
  uint64_t count;
  double sum;
};

/* Initialises with |n| ascending upper bounds (at most
 * METRICS_MAX_BUCKETS). Returns 0 or BL_EINVAL. */
int metrics_histogram_init(struct metrics_histogram *h, const double *bounds,
                           int n);
void metrics_histogram_observe(struct metrics_histogram *h, double value);

/* The value below which |q| (0..1) of the observations fall, estimated by
 * linear interpolation inside the bucket (as Prometheus'
 * histogram_quantile does). 0 when empty. */
double metrics_histogram_quantile(const struct metrics_histogram *h, double q);

/* Writes the _bucket, _sum and _count lines (family line not included). */
void metrics_histogram_write(struct buf *out, const char *name,
                             const char *labels,
                             const struct metrics_histogram *h);

#endif
