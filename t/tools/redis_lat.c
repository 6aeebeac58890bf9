/*
 * redis_lat.c: a Redis subscriber for the benchmarks. PSUBSCRIBEs to a
 * pattern, and for every message carrying the collector's envelope
 * ({"type":..,"symbol":..,"timestamp":E,...}) compares the local wall
 * clock at receipt with the event time E (ms). Skips the first WARMUP
 * seconds, runs for SECONDS, then prints one line:
 *
 *   messages=N p50_ms=X p90_ms=X p99_ms=X max_ms=X bytes_avg=N
 *
 * Both clocks are this machine's only when the exchange stamps E from the
 * wall clock (the mock in real-time mode). E has millisecond resolution,
 * so every figure is good to about 1 ms.
 *
 *   redis_lat HOST PORT PATTERN SECONDS [WARMUP]
 *
 * Exit status 0, 1 on a connection error or bad arguments. State: the
 * samples, in one array with a hard cap (later messages are counted only).
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define MAX_SAMPLES 4000000

static double wall_ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(const double *v, size_t n, double q) {
  size_t i;
  if (!n)
    return 0;
  i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

/* The E of an envelope, or -1. */
static long long event_time(const char *s, size_t len) {
  static const char key[] = "\"timestamp\":";
  const char *p = memmem(s, len, key, sizeof key - 1);
  char *end;
  long long v;
  if (!p)
    return -1;
  p += sizeof key - 1;
  v = strtoll(p, &end, 10);
  return end == p ? -1 : v;
}

int main(int argc, char **argv) {
  redisContext *c;
  redisReply *r;
  struct timeval tv = {0, 200000};
  double *samples, t0, seconds, warmup = 0;
  size_t n = 0, total = 0, bytes = 0;
  long port;
  char *end;

  if (argc < 5) {
    fprintf(stderr, "usage: redis_lat HOST PORT PATTERN SECONDS [WARMUP]\n");
    return 1;
  }
  port = strtol(argv[2], &end, 10);
  seconds = strtod(argv[4], NULL);
  if (argc > 5)
    warmup = strtod(argv[5], NULL);
  if (*end || port <= 0 || port > 65535 || seconds <= 0)
    return 1;
  samples = malloc(sizeof *samples * MAX_SAMPLES);
  if (!samples)
    return 1;
  c = redisConnect(argv[1], (int)port);
  if (!c || c->err) {
    fprintf(stderr, "redis_lat: %s\n", c ? c->errstr : "out of memory");
    return 1;
  }
  r = redisCommand(c, "PSUBSCRIBE %s", argv[3]);
  if (!r) {
    fprintf(stderr, "redis_lat: %s\n", c->errstr);
    return 1;
  }
  freeReplyObject(r);
  redisSetTimeout(c, tv);
  t0 = mono_s();
  for (;;) {
    void *rep = NULL;
    double el = mono_s() - t0;
    if (el >= warmup + seconds)
      break;
    if (redisGetReply(c, &rep) != REDIS_OK) {
      if (c->err == REDIS_ERR_IO) { /* the read timeout: look at the clock */
        c->err = 0;
        memset(c->errstr, 0, sizeof c->errstr);
        continue;
      }
      fprintf(stderr, "redis_lat: %s\n", c->errstr);
      return 1;
    }
    r = rep;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[3]->type == REDIS_REPLY_STRING) {
      double now = wall_ms_now();
      long long e = event_time(r->element[3]->str, r->element[3]->len);
      if (e > 0 && mono_s() - t0 >= warmup) {
        total++;
        bytes += r->element[3]->len;
        if (n < MAX_SAMPLES)
          samples[n++] = now - (double)e;
      }
    }
    freeReplyObject(r);
  }
  qsort(samples, n, sizeof *samples, cmp_double);
  printf("messages=%zu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
         "bytes_avg=%zu\n",
         total, quantile(samples, n, 0.50), quantile(samples, n, 0.90),
         quantile(samples, n, 0.99), n ? samples[n - 1] : 0.0,
         total ? bytes / total : 0);
  redisFree(c);
  free(samples);
  return 0;
}
