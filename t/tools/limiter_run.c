/*
 * limiter_run.c: drives src/binance/limiter against the mock exchange for
 * t/integration/limiter.sh. One scenario per run:
 *
 *   limiter_run BASE_URL SCENARIO [N] [LIMIT] [WORKERS]
 *
 *   prio     N requests of each priority submitted lowest first, one worker
 *   plain    N GET /api/v3/time (used for 429, 418, 5xx, timeouts, bursts)
 *   klines   N GET /api/v3/klines (weight 2)
 *   bad      one klines request for an unknown symbol (a final 400)
 *   cancel   N requests; the odd ones canceled (one in flight, the rest
 *            queued)
 *   close    N requests; the limiter is closed after the first answer
 *   reserve  N HISTORY requests of weight 3, then at +400 ms one BOOK
 *            request of weight 5; prints when the BOOK request was answered
 *            (book_done_ms, -1 if not within 3 s) and how many HISTORY
 *            requests had been sent (history_sent), then closes
 *
 * Prints key=value lines: the completion order (prio), counts of results,
 * callbacks per request (each must be exactly 1), the largest number in
 * flight, the number sent before the first answer, ban callbacks, the
 * duration, and loop_close. The http timeout is 1000 ms. Exit 0 when the
 * loop closed cleanly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "binance/limiter.h"
#include "core/err.h"
#include "core/log.h"
#include "net/http.h"

#define MAXR 2000

static uv_loop_t loop;
static struct http http;
static struct limiter lim;
static struct limiter_req reqs[MAXR];
static int calls[MAXR], results[MAXR];
static int n_reqs, n_done, max_in_flight, sent_at_first = -1;
static int ban_on, ban_off, closing_started;
static char order[8192];
static size_t order_len;
static const char *scenario;
static uint64_t t0, last_done_ms;
static uv_timer_t book_timer;
static int book_phase; /* reserve: 0 before the BOOK request, 1 sent,
                          2 answered, 3 given up */

static void http_closed(struct http *h) {
  (void)h;
}

static void lim_closed(struct limiter *l) {
  (void)l;
  http_close(&http, http_closed);
}

static void on_ban(struct limiter *l, int banned, int64_t until) {
  (void)l;
  (void)until;
  if (banned)
    ban_on++;
  else
    ban_off++;
  fprintf(stderr, "limiter_run: on_ban(%d) at +%" PRIu64 " ms\n", banned,
          uv_now(&loop) - t0);
}

static void done_cb(struct limiter_req *req, int result) {
  int i = (int)(req - reqs);
  calls[i]++;
  results[i] = result;
  n_done++;
  last_done_ms = uv_now(&loop) - t0;
  if (sent_at_first < 0)
    sent_at_first = (int)lim.stats.sent;
  if (order_len + 4 < sizeof order)
    order_len += (size_t)snprintf(order + order_len, sizeof order - order_len,
                                  "%d", req->prio);
  if (result == BL_EHTTP)
    printf("final status=%ld api_code=%d api_msg=%s attempts=%d\n",
           req->http.status, req->api_code, req->api_msg, req->attempts);
  if (!strcmp(scenario, "reserve") && req->prio == LIMITER_BOOK &&
      book_phase == 1) {
    printf("book_done_ms=%" PRIu64 "\n", last_done_ms);
    printf("history_sent=%" PRIu64 "\n", lim.stats.sent - 1);
    book_phase = 2;
    uv_close((uv_handle_t *)&book_timer, NULL);
    closing_started = 1;
    limiter_close(&lim, lim_closed); /* cancels the HISTORY still queued */
    return;
  }
  if (!strcmp(scenario, "close") && !closing_started) {
    closing_started = 1;
    limiter_close(&lim, lim_closed);
    return;
  }
  if (n_done == n_reqs && !closing_started) {
    closing_started = 1;
    limiter_close(&lim, lim_closed);
  }
}

static void watch(uv_check_t *c) {
  if (lim.in_flight > max_in_flight)
    max_in_flight = lim.in_flight;
  if (closing_started && !lim.timer_open)
    uv_close((uv_handle_t *)c, NULL);
}

static void add(int prio, const char *path, const char *query, int weight);

/* reserve: submits the BOOK request at +400 ms; gives up at +3 s. */
static void book_timer_cb(uv_timer_t *t) {
  if (book_phase == 0) {
    book_phase = 1;
    add(LIMITER_BOOK, "/api/v3/time", "", 5);
    uv_timer_start(t, book_timer_cb, 2600, 0);
    return;
  }
  if (book_phase == 1 && !closing_started) {
    book_phase = 3;
    printf("book_done_ms=-1\n");
    printf("history_sent=%" PRIu64 "\n", lim.stats.sent);
    closing_started = 1;
    limiter_close(&lim, lim_closed);
  }
  uv_close((uv_handle_t *)t, NULL);
}

static void add(int prio, const char *path, const char *query, int weight) {
  struct limiter_req *q = &reqs[n_reqs];
  limiter_req_init(q);
  q->prio = prio;
  q->weight = weight;
  snprintf(q->path, sizeof q->path, "%s", path);
  snprintf(q->query, sizeof q->query, "%s", query);
  q->cb = done_cb;
  if (limiter_submit(&lim, q))
    fprintf(stderr, "FAIL: submit %d\n", n_reqs);
  n_reqs++;
}

int main(int argc, char **argv) {
  struct http_opts ho;
  uv_check_t chk;
  int n = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 10;
  long long limit = argc > 4 ? strtoll(argv[4], NULL, 10) : 6000;
  int workers = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 5;
  int once = 1, rv;
  if (argc < 3) {
    fprintf(stderr, "usage: limiter_run BASE_URL SCENARIO [N] [LIMIT] "
                    "[WORKERS]\n");
    return 2;
  }
  scenario = argv[2];
  if (n < 1 || n > MAXR / 4)
    n = 10;
  log_setup(BL_LOG_INFO, BL_LOG_TEXT, "limiter_run", "test");
  uv_loop_init(&loop);
  memset(&ho, 0, sizeof ho);
  ho.timeout_ms = 1000;
  if ((rv = http_init(&loop, &http, &ho)) ||
      (rv = limiter_init(&loop, &lim, &http, argv[1], limit, workers))) {
    fprintf(stderr, "FAIL: init %s\n", bl_strerror(rv));
    return 1;
  }
  lim.on_ban = on_ban;
  uv_check_init(&loop, &chk);
  uv_check_start(&chk, watch);
  t0 = uv_now(&loop);
  if (!strcmp(scenario, "prio")) {
    for (int p = LIMITER_NPRIO - 1; p >= 0; p--)
      for (int i = 0; i < n; i++)
        add(p, "/api/v3/time", "", 1);
  } else if (!strcmp(scenario, "klines")) {
    for (int i = 0; i < n; i++)
      add(LIMITER_HISTORY, "/api/v3/klines",
          "symbol=BTCUSDT&interval=1m&limit=1", 2);
  } else if (!strcmp(scenario, "reserve")) {
    for (int i = 0; i < n; i++)
      add(LIMITER_HISTORY, "/api/v3/time", "", 3);
    uv_timer_init(&loop, &book_timer);
    uv_timer_start(&book_timer, book_timer_cb, 400, 0);
  } else if (!strcmp(scenario, "bad")) {
    add(LIMITER_META, "/api/v3/klines", "symbol=NOSUCHUSDT&interval=1m", 2);
  } else {
    for (int i = 0; i < n; i++)
      add(LIMITER_RECENT, "/api/v3/time", "", 1);
  }
  if (!strcmp(scenario, "cancel")) {
    /* Run until a few are in flight, then cancel every other one. */
    while (once && uv_run(&loop, UV_RUN_ONCE)) {
      if (lim.stats.sent >= 3) {
        /* 0 has its answer, 1 and 2 are in flight (workers 2): cancels
         * one in flight (1) and the queued odd ones. */
        printf("in_flight_canceled=%d\n", reqs[1].state == 2);
        for (int i = 1; i < n_reqs; i += 2)
          limiter_cancel(&reqs[i]);
        limiter_cancel(&reqs[1]); /* twice: still one callback */
        once = 0;
      }
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  {
    int ok = 0, canceled = 0, other = 0, bad_calls = 0;
    for (int i = 0; i < n_reqs; i++) {
      if (calls[i] != 1)
        bad_calls++;
      if (results[i] == 0)
        ok++;
      else if (results[i] == BL_ECANCELED)
        canceled++;
      else
        other++;
    }
    printf("requests=%d\n", n_reqs);
    printf("ok=%d\n", ok);
    printf("canceled=%d\n", canceled);
    printf("other=%d\n", other);
    printf("not_called_once=%d\n", bad_calls);
    printf("order=%s\n", order);
    printf("max_in_flight=%d\n", max_in_flight);
    printf("sent_before_first_answer=%d\n", sent_at_first);
    printf("sent=%" PRIu64 "\n", lim.stats.sent);
    printf("retries=%" PRIu64 "\n", lim.stats.retries);
    printf("status_429=%" PRIu64 "\n", lim.stats.status_429);
    printf("status_418=%" PRIu64 "\n", lim.stats.status_418);
    printf("status_5xx=%" PRIu64 "\n", lim.stats.status_5xx);
    printf("timeouts=%" PRIu64 "\n", lim.stats.timeouts);
    printf("ban_on=%d\nban_off=%d\n", ban_on, ban_off);
    printf("last_done_ms=%" PRIu64 "\n", last_done_ms);
  }
  for (int i = 0; i < n_reqs; i++)
    limiter_req_free(&reqs[i]);
  rv = uv_loop_close(&loop);
  printf("loop_close=%d\n", rv);
  return rv == 0 ? 0 : 1;
}
