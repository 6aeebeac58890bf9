/*
 * limiter.c: the REST scheduler (see limiter.h).
 *
 * State: four intrusive FIFO queues by priority, the count in flight, the
 * weight budget, one uv_timer that wakes the pump when the budget, a
 * back-off or a pause allows the next request, and counters. Completion
 * of every request (also cancellation) is delivered from an http callback
 * or from the timer, never from inside limiter_submit/limiter_cancel.
 */
#include "binance/limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl_tree.h>

#include "core/err.h"
#include "core/log.h"

static void pump(struct limiter *lim);

static void queue_push(struct limiter *lim, struct limiter_req *req,
                       int front) {
  struct limiter_req **head = &lim->queues[req->prio].head;
  struct limiter_req **tail = &lim->queues[req->prio].tail;
  req->next = req->prev = NULL;
  if (!*head) {
    *head = *tail = req;
  } else if (front) {
    req->next = *head;
    (*head)->prev = req;
    *head = req;
  } else {
    req->prev = *tail;
    (*tail)->next = req;
    *tail = req;
  }
  req->state = 1;
  lim->queued++;
}

static void queue_remove(struct limiter *lim, struct limiter_req *req) {
  if (req->prev)
    req->prev->next = req->next;
  else
    lim->queues[req->prio].head = req->next;
  if (req->next)
    req->next->prev = req->prev;
  else
    lim->queues[req->prio].tail = req->prev;
  req->next = req->prev = NULL;
  req->state = 0;
  lim->queued--;
}

static void inflight_add(struct limiter *lim, struct limiter_req *req) {
  req->prev = NULL;
  req->next = lim->in_flight_list;
  if (req->next)
    req->next->prev = req;
  lim->in_flight_list = req;
}

static void inflight_remove(struct limiter *lim, struct limiter_req *req) {
  if (req->prev)
    req->prev->next = req->next;
  else
    lim->in_flight_list = req->next;
  if (req->next)
    req->next->prev = req->prev;
  req->next = req->prev = NULL;
}

static void deliver_canceled(struct limiter *lim);

static void timer_cb(uv_timer_t *t) {
  struct limiter *lim = t->data;
  deliver_canceled(lim);
  pump(lim);
}

int limiter_init(uv_loop_t *loop, struct limiter *lim, struct http *http,
                 const char *base_url, int64_t config_limit, int workers) {
  int rv;
  memset(lim, 0, sizeof *lim);
  lim->loop = loop;
  lim->http = http;
  snprintf(lim->base_url, sizeof lim->base_url, "%s", base_url);
  /* A trailing slash would double up with the paths. */
  {
    size_t n = strlen(lim->base_url);
    while (n && lim->base_url[n - 1] == '/')
      lim->base_url[--n] = '\0';
  }
  lim->workers = workers > 0 ? workers : 1;
  weight_init(&lim->budget, config_limit, 10);
  {
    /* The server's window follows the wall clock's UTC minute. The loop's
     * cached time is refreshed first: before uv_run it is as old as the
     * start-up so far, and an offset that much too large moves our minute
     * boundary early, so that every header after it books the server's
     * whole minute again as foreign weight (doubling it). */
    struct timespec ts;
    uv_update_time(loop);
    clock_gettime(CLOCK_REALTIME, &ts);
    lim->budget.wall_offset_ms =
        ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) -
        (int64_t)uv_now(loop);
  }
  rv = uv_timer_init(loop, &lim->timer);
  if (rv)
    return rv;
  lim->timer.data = lim;
  lim->timer_open = 1;
  return 0;
}

void limiter_req_init(struct limiter_req *req) {
  memset(req, 0, sizeof *req);
  http_req_init(&req->http);
}

void limiter_req_free(struct limiter_req *req) {
  http_req_free(&req->http);
}

int limiter_submit(struct limiter *lim, struct limiter_req *req) {
  if (lim->closing)
    return BL_ESTATE;
  if (req->state || req->prio < 0 || req->prio >= LIMITER_NPRIO ||
      req->weight < 0 || !req->path[0] || !req->cb)
    return BL_EINVAL;
  if (lim->queued >= LIMITER_MAX_QUEUED)
    return BL_EFULL;
  req->lim = lim;
  req->attempts = 0;
  req->api_code = 0;
  req->api_msg[0] = '\0';
  req->not_before = 0;
  queue_push(lim, req, 0);
  /* Never complete inside submit: let the loop run the pump, at once even
   * when the timer waits for a back-off or the budget (the new request
   * may be of a higher priority, or fit in the reserve). */
  uv_timer_start(&lim->timer, timer_cb, 0, 0);
  return 0;
}

/* Extracts Binance's {"code":-1121,"msg":"..."} from an error body. The
 * bodies are small, so the tree parser is fine here. */
static void parse_api_error(struct limiter_req *req) {
  char errbuf[128];
  yajl_val root, code, msg;
  static const char *code_path[] = {"code", NULL};
  static const char *msg_path[] = {"msg", NULL};
  if (!req->http.body.len || req->http.body.len > 8192)
    return;
  root = yajl_tree_parse(req->http.body.data, errbuf, sizeof errbuf);
  if (!root)
    return;
  code = yajl_tree_get(root, code_path, yajl_t_number);
  msg = yajl_tree_get(root, msg_path, yajl_t_string);
  if (code && YAJL_IS_INTEGER(code))
    req->api_code = (int)YAJL_GET_INTEGER(code);
  if (msg)
    snprintf(req->api_msg, sizeof req->api_msg, "%s", YAJL_GET_STRING(msg));
  yajl_tree_free(root);
}

static void finish(struct limiter *lim, struct limiter_req *req, int result) {
  req->state = 0;
  if (result == 0)
    lim->stats.ok++;
  else if (result == BL_ECANCELED)
    lim->stats.canceled++;
  else if (result == BL_EHTTP && req->http.status >= 400)
    lim->stats.client_errors++;
  else
    lim->stats.failed++;
  req->cb(req, result);
}

static uint64_t backoff_ms(int attempts) {
  uint64_t ms = 1000;
  for (int i = 1; i < attempts && ms < 60000; i++)
    ms *= 2;
  if (ms > 60000)
    ms = 60000;
  /* Jitter: 75 % to 100 % so retries of many requests spread out. */
  return ms - (ms / 4) * (uint64_t)(rand() % 100) / 100;
}

static void retry_later(struct limiter *lim, struct limiter_req *req,
                        int result) {
  if (req->attempts >= LIMITER_MAX_ATTEMPTS) {
    log_error("rest", "GET %s failed %d times, giving up: %s (%s)", req->path,
              req->attempts, bl_strerror(result), req->http.errstr);
    finish(lim, req, result);
    return;
  }
  lim->stats.retries++;
  req->not_before = uv_now(lim->loop) + backoff_ms(req->attempts);
  queue_push(lim, req, 1);
}

static void maybe_closed(struct limiter *lim);

static void http_done(struct http_req *hreq, int result) {
  struct limiter_req *req = hreq->data;
  struct limiter *lim = req->lim;
  int64_t now = (int64_t)uv_now(lim->loop);
  long status = hreq->status;

  lim->in_flight--;
  inflight_remove(lim, req);
  if (hreq->used_weight_1m >= 0)
    weight_observe_used(&lim->budget, now, hreq->used_weight_1m);

  if (result == BL_ECANCELED || lim->closing) {
    finish(lim, req, BL_ECANCELED);
  } else if (result) {
    if (result == BL_ETIMEDOUT)
      lim->stats.timeouts++;
    log_limited(BL_LOG_WARN, "rest", "GET %s: %s (%s), will retry", req->path,
                bl_strerror(result), hreq->errstr);
    retry_later(lim, req, result);
  } else if (status == 429) {
    lim->stats.status_429++;
    weight_on_429(&lim->budget, now, hreq->retry_after_s);
    log_warn("rest",
             "429 from %s: pausing every REST call for %ld s (used weight "
             "%ld)",
             req->path, hreq->retry_after_s > 0 ? hreq->retry_after_s : 60,
             hreq->used_weight_1m);
    req->attempts--; /* a pause is not the request's fault */
    retry_later(lim, req, BL_ERATELIMIT);
  } else if (status == 418) {
    lim->stats.status_418++;
    weight_on_418(&lim->budget, now, hreq->retry_after_s);
    log_error("rest",
              "418 from %s: this IP is BANNED by Binance for %ld s; all REST "
              "calls stop until then",
              req->path, hreq->retry_after_s > 0 ? hreq->retry_after_s : 120);
    if (lim->on_ban)
      lim->on_ban(lim, 1, lim->budget.banned_until_ms);
    req->attempts--;
    retry_later(lim, req, BL_EBANNED);
  } else if (status >= 500) {
    lim->stats.status_5xx++;
    parse_api_error(req);
    log_limited(BL_LOG_WARN, "rest", "GET %s: HTTP %ld (%d %s), will retry",
                req->path, status, req->api_code, req->api_msg);
    retry_later(lim, req, BL_EHTTP);
  } else if (status >= 400) {
    parse_api_error(req);
    log_error("rest", "GET %s?%s: HTTP %ld, Binance code %d: %s", req->path,
              req->query, status, req->api_code, req->api_msg);
    finish(lim, req, BL_EHTTP);
  } else {
    finish(lim, req, 0);
  }
  if (lim->closing)
    maybe_closed(lim);
  else
    pump(lim);
}

static int send_one(struct limiter *lim, struct limiter_req *req) {
  char url[1024];
  int rv;
  if (req->query[0])
    snprintf(url, sizeof url, "%s%s?%s", lim->base_url, req->path, req->query);
  else
    snprintf(url, sizeof url, "%s%s", lim->base_url, req->path);
  req->http.data = req;
  rv = http_get(lim->http, &req->http, url, NULL, 0, http_done);
  if (rv)
    return rv;
  req->state = 2;
  req->attempts++;
  lim->in_flight++;
  inflight_add(lim, req);
  lim->stats.sent++;
  weight_spend(&lim->budget, (int64_t)uv_now(lim->loop), req->weight);
  return 0;
}

/* The weight |req| needs free before it may leave: repairs leave
 * LIMITER_RESERVE_PCT of the budget to order-book snapshots and exchange
 * metadata, so that a book which loses sync while a long repair has the
 * budget in use gets its snapshot at once, not after the window rolls. */
static int64_t weight_needed(struct limiter *lim,
                             const struct limiter_req *req) {
  if (req->prio < LIMITER_RECENT)
    return req->weight;
  return req->weight +
         weight_effective_limit(&lim->budget) * LIMITER_RESERVE_PCT / 100;
}

static void pump(struct limiter *lim) {
  uint64_t now, wake = 0;
  int was_banned;
  if (lim->closing)
    return;
  now = uv_now(lim->loop);
  was_banned = lim->budget.banned_until_ms > 0;
  if (was_banned && !weight_banned(&lim->budget, (int64_t)now)) {
    lim->budget.banned_until_ms = 0;
    log_warn("rest", "the REST ban has ended; resuming");
    if (lim->on_ban)
      lim->on_ban(lim, 0, 0);
  }
  for (;;) {
    struct limiter_req *req = NULL;
    int cap = lim->budget.header_seen ? lim->workers : 1;
    int64_t wait;
    if (lim->in_flight >= cap || !lim->queued)
      break;
    /* Highest priority first; inside one, FIFO, skipping back-offs. */
    for (int p = 0; p < LIMITER_NPRIO && !req; p++)
      for (struct limiter_req *r = lim->queues[p].head; r; r = r->next) {
        if (r->not_before <= now) {
          req = r;
          break;
        }
        if (!wake || r->not_before < wake)
          wake = r->not_before;
      }
    if (!req)
      break;
    wait = weight_wait_ms(&lim->budget, (int64_t)now, weight_needed(lim, req));
    if (wait > 0) {
      if (!wake || now + (uint64_t)wait < wake)
        wake = now + (uint64_t)wait;
      break;
    }
    queue_remove(lim, req);
    if (send_one(lim, req)) {
      log_error("rest", "cannot start GET %s", req->path);
      retry_later(lim, req, BL_EHTTP);
      if (!wake || req->not_before < wake)
        wake = req->not_before;
      break;
    }
  }
  if (wake)
    uv_timer_start(&lim->timer, timer_cb, wake > now ? wake - now : 1, 0);
}

/* Queued requests that were canceled get their callback from the timer,
 * never from inside limiter_cancel(). */
static void deliver_canceled(struct limiter *lim) {
  while (lim->canceled) {
    struct limiter_req *req = lim->canceled;
    lim->canceled = req->next;
    req->next = NULL;
    finish(lim, req, BL_ECANCELED);
  }
}

static void cancel_queued(struct limiter *lim, struct limiter_req *req) {
  queue_remove(lim, req);
  req->state = 3;
  req->next = lim->canceled;
  lim->canceled = req;
}

void limiter_cancel(struct limiter_req *req) {
  struct limiter *lim = req->lim;
  if (!lim)
    return;
  if (req->state == 1) {
    cancel_queued(lim, req);
    if (!lim->closing)
      uv_timer_start(&lim->timer, timer_cb, 0, 0);
  } else if (req->state == 2) {
    http_cancel(&req->http);
  }
}

void limiter_set_exchange_limit(struct limiter *lim, int64_t per_minute) {
  weight_set_exchange_limit(&lim->budget, per_minute);
}

int limiter_banned(struct limiter *lim) {
  return weight_banned(&lim->budget, (int64_t)uv_now(lim->loop));
}

int64_t limiter_weight_used(struct limiter *lim) {
  return weight_used(&lim->budget, (int64_t)uv_now(lim->loop));
}

static void maybe_closed(struct limiter *lim) {
  void (*cb)(struct limiter *) = lim->close_cb;
  if (lim->timer_open || lim->in_flight || !cb)
    return;
  lim->close_cb = NULL;
  cb(lim);
}

static void timer_closed(uv_handle_t *h) {
  struct limiter *lim = h->data;
  /* Callbacks of canceled queued requests run here, outside close(). */
  deliver_canceled(lim);
  lim->timer_open = 0;
  maybe_closed(lim);
}

void limiter_close(struct limiter *lim, void (*cb)(struct limiter *lim)) {
  lim->closing = 1;
  lim->close_cb = cb;
  for (int p = 0; p < LIMITER_NPRIO; p++)
    while (lim->queues[p].head)
      cancel_queued(lim, lim->queues[p].head);
  /* In-flight requests end through http_done with BL_ECANCELED. */
  for (struct limiter_req *r = lim->in_flight_list; r; r = r->next)
    http_cancel(&r->http);
  uv_close((uv_handle_t *)&lim->timer, timer_closed);
}
