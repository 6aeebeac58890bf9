/*
 * metrics.c: collectors, sample formatting and fixed-bucket histograms for
 * the Prometheus text format (version 0.0.4).
 *
 * State: only the collector list of a struct metrics; the numbers live in
 * the modules that count them.
 */
#include "core/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

void metrics_init(struct metrics *m) {
  memset(m, 0, sizeof *m);
}

int metrics_register(struct metrics *m, metrics_collect_fn fn, void *arg) {
  if (m->n == METRICS_MAX_COLLECTORS)
    return BL_EFULL;
  m->collectors[m->n].fn = fn;
  m->collectors[m->n].arg = arg;
  m->n++;
  return 0;
}

void metrics_unregister(struct metrics *m, void *arg) {
  int j = 0;
  for (int i = 0; i < m->n; i++)
    if (m->collectors[i].arg != arg)
      m->collectors[j++] = m->collectors[i];
  m->n = j;
}

int metrics_render(const struct metrics *m, struct buf *out) {
  for (int i = 0; i < m->n; i++)
    m->collectors[i].fn(out, m->collectors[i].arg);
  /* Lines that did not fit were dropped whole by buf; say so. */
  if (out->max - out->len < 256)
    return BL_ETOOBIG;
  return 0;
}

void metrics_family(struct buf *out, const char *name, const char *type,
                    const char *help) {
  buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void format_value(char *dst, size_t cap, double v) {
  if (isnan(v))
    snprintf(dst, cap, "NaN");
  else if (isinf(v))
    snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
  else if (v == (double)(long long)v && fabs(v) < 1e15)
    snprintf(dst, cap, "%lld", (long long)v);
  else
    snprintf(dst, cap, "%.9g", v);
}

void metrics_sample(struct buf *out, const char *name, const char *labels,
                    double value) {
  char num[64];
  format_value(num, sizeof num, value);
  if (labels && *labels)
    buf_printf(out, "%s{%s} %s\n", name, labels, num);
  else
    buf_printf(out, "%s %s\n", name, num);
}

void metrics_sample_u64(struct buf *out, const char *name, const char *labels,
                        uint64_t value) {
  if (labels && *labels)
    buf_printf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
  else
    buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_single(struct buf *out, const char *name, const char *type,
                    const char *help, double value) {
  metrics_family(out, name, type, help);
  metrics_sample(out, name, NULL, value);
}

void metrics_escape_label(char *dst, size_t cap, const char *value) {
  size_t at = 0;
  if (!cap)
    return;
  for (; *value && at + 2 < cap; value++) {
    char c = *value;
    if (c == '\\' || c == '"') {
      dst[at++] = '\\';
      dst[at++] = c;
    } else if (c == '\n') {
      dst[at++] = '\\';
      dst[at++] = 'n';
    } else {
      dst[at++] = c;
    }
  }
  dst[at] = '\0';
}

int metrics_histogram_init(struct metrics_histogram *h, const double *bounds,
                           int n) {
  memset(h, 0, sizeof *h);
  if (n < 1 || n > METRICS_MAX_BUCKETS)
    return BL_EINVAL;
  for (int i = 0; i < n; i++) {
    if (i && bounds[i] <= bounds[i - 1])
      return BL_EINVAL;
    h->bounds[i] = bounds[i];
  }
  h->n_bounds = n;
  return 0;
}

void metrics_histogram_observe(struct metrics_histogram *h, double value) {
  int lo = 0, hi = h->n_bounds;
  /* First bucket whose bound is >= value (binary search). */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (value <= h->bounds[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  h->counts[lo]++;
  h->count++;
  h->sum += value;
}

double metrics_histogram_quantile(const struct metrics_histogram *h, double q) {
  double rank, seen = 0;
  if (!h->count)
    return 0;
  rank = q * (double)h->count;
  for (int i = 0; i <= h->n_bounds; i++) {
    double c = (double)h->counts[i];
    if (seen + c >= rank && c > 0) {
      double lo = i ? h->bounds[i - 1] : 0;
      double hi;
      if (i == h->n_bounds)
        return h->bounds[h->n_bounds - 1];
      hi = h->bounds[i];
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return h->bounds[h->n_bounds - 1];
}

void metrics_histogram_write(struct buf *out, const char *name,
                             const char *labels,
                             const struct metrics_histogram *h) {
  char lab[512], le[64], full[256];
  uint64_t cum = 0;
  const char *sep = labels && *labels ? "," : "";
  const char *base = labels ? labels : "";
  snprintf(full, sizeof full, "%s_bucket", name);
  for (int i = 0; i <= h->n_bounds; i++) {
    cum += h->counts[i];
    if (i < h->n_bounds)
      format_value(le, sizeof le, h->bounds[i]);
    else
      snprintf(le, sizeof le, "+Inf");
    snprintf(lab, sizeof lab, "%s%sle=\"%s\"", base, sep, le);
    metrics_sample_u64(out, full, lab, cum);
  }
  snprintf(full, sizeof full, "%s_sum", name);
  metrics_sample(out, full, base, h->sum);
  snprintf(full, sizeof full, "%s_count", name);
  metrics_sample_u64(out, full, base, h->count);
}
