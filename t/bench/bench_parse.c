/*
 * bench_parse.c: throughput of binance/parse on the real capture.
 *
 * Loads the 265 frames of t/data/parse/BINANCE.ws.1.0 (or the file given as
 * the first argument) and, for about two seconds each (or the seconds given
 * as the second argument), parses them in a loop with parse_frame (the yajl
 * handle in the parser's arena, as shipped), with parse_frame on plain
 * malloc (to measure what the arena saves), and with yajl_tree_parse +
 * yajl_tree_free on the same frames as a reference. Prints frames/s and
 * MB/s for each. State: the frames, held in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "binance/parse.h"

#define MAX_FRAMES 100000

struct frames {
  char **text; /* NUL-terminated copies (yajl_tree needs them) */
  size_t *len;
  size_t n;
  size_t bytes;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *path, struct frames *f) {
  FILE *fp = fopen(path, "r");
  char line[65536];

  if (!fp) {
    fprintf(stderr, "bench_parse: cannot open %s\n", path);
    return -1;
  }
  f->text = calloc(MAX_FRAMES, sizeof *f->text);
  f->len = calloc(MAX_FRAMES, sizeof *f->len);
  if (!f->text || !f->len) {
    fclose(fp);
    return -1;
  }
  while (f->n < MAX_FRAMES && fgets(line, sizeof line, fp)) {
    char *j = strstr(line, ": ");
    size_t n;
    if (!j || strncmp(line, "wss:", 4) == 0)
      continue;
    j += 2;
    n = strcspn(j, "\n");
    if (n == 0)
      continue;
    f->text[f->n] = malloc(n + 1);
    if (!f->text[f->n])
      break;
    memcpy(f->text[f->n], j, n);
    f->text[f->n][n] = '\0';
    f->len[f->n] = n;
    f->bytes += n;
    f->n++;
  }
  fclose(fp);
  return f->n > 0 ? 0 : -1;
}

static void report(const char *name, size_t frames, size_t bytes, double secs) {
  printf("%-28s %10.0f frames/s %8.1f MB/s  (%zu frames in %.2f s)\n", name,
         (double)frames / secs, (double)bytes / secs / 1e6, frames, secs);
}

static int run_parse(const struct frames *f, double dur, int use_malloc) {
  struct parse p;
  struct parse_limits lim = {0, 0, 0, use_malloc};
  struct ev ev;
  size_t frames = 0, bytes = 0, errors = 0;
  double t0, t;

  if (parse_init(&p, &lim) != 0)
    return -1;
  t0 = now_s();
  do {
    for (size_t i = 0; i < f->n; i++) {
      if (parse_frame(&p, f->text[i], f->len[i], &ev) != 0)
        errors++;
    }
    frames += f->n;
    bytes += f->bytes;
    t = now_s() - t0;
  } while (t < dur);
  report(use_malloc ? "parse_frame (yajl on malloc)"
                    : "parse_frame (arena, shipped)",
         frames, bytes, t);
  parse_free(&p);
  if (errors) {
    fprintf(stderr, "bench_parse: %zu frames failed to parse\n", errors);
    return -1;
  }
  return 0;
}

static int run_tree(const struct frames *f, double dur) {
  char err[128];
  size_t frames = 0, bytes = 0;
  double t0, t;

  t0 = now_s();
  do {
    for (size_t i = 0; i < f->n; i++) {
      yajl_val v = yajl_tree_parse(f->text[i], err, sizeof err);
      if (!v) {
        fprintf(stderr, "bench_parse: yajl_tree_parse: %s\n", err);
        return -1;
      }
      yajl_tree_free(v);
    }
    frames += f->n;
    bytes += f->bytes;
    t = now_s() - t0;
  } while (t < dur);
  report("yajl_tree_parse (reference)", frames, bytes, t);
  return 0;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "t/data/parse/BINANCE.ws.1.0";
  double dur = argc > 2 ? strtod(argv[2], NULL) : 2.0;
  struct frames f = {NULL, NULL, 0, 0};
  int rv = 0;

  if (dur <= 0)
    dur = 2.0;
  if (load(path, &f) != 0)
    return 1;
  printf("bench_parse: %zu frames, %zu bytes, from %s\n", f.n, f.bytes, path);
  if (run_parse(&f, dur, 0) != 0 || run_parse(&f, dur, 1) != 0 ||
      run_tree(&f, dur) != 0)
    rv = 1;
  for (size_t i = 0; i < f.n; i++)
    free(f.text[i]);
  free(f.text);
  free(f.len);
  return rv;
}
