/*
 * bench_book.c: how fast market/book applies diffs and reads its top, and
 * how much memory a book takes. Prints the figures; runs about 2 s.
 *
 * Workload: a BTCUSDT-like book (tick 0.01, strings with 8 decimals as
 * Binance writes them) synced from a 1000-level snapshot per side, then
 * @100ms-like diffs of 10 levels (5 bids, 5 asks) within 30 ticks of the
 * top: quantity changes, removals and re-insertions, parsed from strings as
 * the collector would. A second run spreads the levels over the whole
 * depth, the worst case for the sorted array (longer memmoves). Then
 * top-20 reads, and the heap and RSS of 200 such books. No state is kept
 * between runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "market/book.h"

#define LEVELS 1000
#define NEVENTS 4096
#define PER_SIDE 5
#define BOOKS 200

struct pre_event {
  struct ev_depth ev;
  struct ev_level lv[2 * PER_SIDE];
};

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Price of |cents| as Binance writes it: "12345.67000000". */
static void price_str(char *out, long long cents) {
  snprintf(out, EV_DEC_MAX, "%lld.%02lld000000", cents / 100, cents % 100);
}

static void qty_str(char *out, unsigned q) {
  snprintf(out, EV_DEC_MAX, "%u.%08u", q / 1000, (q % 1000) * 100000);
}

/* Mid price 30000.00; bids below, asks above, one tick apart. */
#define MID_CENTS 3000000LL

static int sync_book(struct book *b, const char *symbol) {
  static struct ev_level bids[LEVELS], asks[LEVELS];
  struct ev_depth first;
  int i, act;

  if (book_init(b, symbol, 2, 20) < 0)
    return -1;
  for (i = 0; i < LEVELS; i++) {
    price_str(bids[i].price, MID_CENTS - 1 - i);
    qty_str(bids[i].qty, 1000 + (unsigned)(rng() % 100000));
    price_str(asks[i].price, MID_CENTS + 1 + i);
    qty_str(asks[i].qty, 1000 + (unsigned)(rng() % 100000));
  }
  memset(&first, 0, sizeof(first));
  snprintf(first.symbol, sizeof(first.symbol), "%s", symbol);
  first.first_update_id = 1;
  first.final_update_id = 1;
  book_on_diff(b, &first);
  act = book_on_snapshot(b, 1, bids, LEVELS, asks, LEVELS);
  return (act & BOOK_ACT_SYNCED) ? 0 : -1;
}

/* Diffs touching levels within |span| ticks of the top. About 1 in 4
 * levels is a removal; a removed level comes back later as an insert. */
static void make_events(struct pre_event *pe, int span) {
  int i, k;
  for (i = 0; i < NEVENTS; i++) {
    struct pre_event *p = &pe[i];
    memset(&p->ev, 0, sizeof(p->ev));
    snprintf(p->ev.symbol, sizeof(p->ev.symbol), "BTCUSDT");
    for (k = 0; k < 2 * PER_SIDE; k++) {
      long long off = 1 + (long long)(rng() % (uint64_t)span);
      long long cents = k < PER_SIDE ? MID_CENTS - off : MID_CENTS + off;
      price_str(p->lv[k].price, cents);
      if (rng() % 4 == 0)
        snprintf(p->lv[k].qty, EV_DEC_MAX, "0.00000000");
      else
        qty_str(p->lv[k].qty, 1000 + (unsigned)(rng() % 100000));
    }
    p->ev.bids = p->lv;
    p->ev.n_bids = PER_SIDE;
    p->ev.asks = p->lv + PER_SIDE;
    p->ev.n_asks = PER_SIDE;
  }
}

static int run_diffs(const char *label, int span, double seconds) {
  static struct pre_event pe[NEVENTS];
  struct book b;
  int64_t id = 1;
  uint64_t events = 0;
  double t0, t;

  if (sync_book(&b, "BTCUSDT") < 0)
    return -1;
  make_events(pe, span);
  t0 = now_s();
  do {
    int i;
    for (i = 0; i < NEVENTS; i++) {
      pe[i].ev.first_update_id = id + 1;
      pe[i].ev.final_update_id = id + 1;
      id++;
      if (book_on_diff(&b, &pe[i].ev) < 0 || book_state(&b) != BOOK_SYNCED) {
        fprintf(stderr, "bench_book: book left SYNCED\n");
        book_free(&b);
        return -1;
      }
    }
    events += NEVENTS;
    t = now_s() - t0;
  } while (t < seconds);
  printf("diffs %-22s %9.0f events/s  %10.0f levels/s  %6.0f ns/level"
         "  (bids %u, asks %u)\n",
         label, (double)events / t, (double)events * 2 * PER_SIDE / t,
         t * 1e9 / ((double)events * 2 * PER_SIDE), b.bids.n, b.asks.n);
  book_free(&b);
  return 0;
}

static int run_top(double seconds) {
  struct book b;
  struct ev_level bids[20], asks[20];
  size_t nb = 0, na = 0;
  uint64_t reads = 0;
  double t0, t;

  if (sync_book(&b, "BTCUSDT") < 0)
    return -1;
  t0 = now_s();
  do {
    int i;
    for (i = 0; i < 10000; i++)
      book_top(&b, 20, bids, &nb, asks, &na);
    reads += 10000;
    t = now_s() - t0;
  } while (t < seconds);
  printf("top-20 read (40 levels as strings): %.0f ns  (%zu+%zu levels)\n",
         t * 1e9 / (double)reads, nb, na);
  book_free(&b);
  return 0;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &size, &res) != 2)
    res = -1;
  fclose(f);
  return res < 0 ? -1 : res * 4; /* 4 KiB pages */
}

static int run_memory(void) {
  struct book *books = calloc(BOOKS, sizeof(*books));
  long before, after;
  size_t heap = 0;
  int i;

  if (books == NULL)
    return -1;
  before = rss_kib();
  for (i = 0; i < BOOKS; i++) {
    char sym[32];
    snprintf(sym, sizeof(sym), "SYM%dUSDT", i);
    if (sync_book(&books[i], sym) < 0)
      return -1;
    heap += book_mem(&books[i]);
  }
  after = rss_kib();
  printf("memory: %zu bytes a level; one synced book of %d+%d levels: "
         "%zu B heap + %zu B struct\n",
         sizeof(struct book_level), LEVELS, LEVELS, book_mem(&books[0]),
         sizeof(struct book));
  printf("memory: %d books x 2 sides x %d levels: %.2f MB heap, "
         "RSS grew %.2f MB\n",
         BOOKS, LEVELS, (double)heap / 1e6, (double)(after - before) / 1024.0);
  for (i = 0; i < BOOKS; i++)
    book_free(&books[i]);
  free(books);
  return 0;
}

int main(void) {
  if (run_diffs("near top (30 ticks)", 30, 0.7) < 0 ||
      run_diffs("whole depth (1000)", 1000, 0.5) < 0 || run_top(0.5) < 0 ||
      run_memory() < 0)
    return 1;
  return 0;
}
