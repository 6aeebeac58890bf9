/*
 * pipeline.c: dispatch of live events to their consumers (see pipeline.h).
 *
 * State: counters, the latency histogram and the wall time of the newest
 * event (read at most once per millisecond). The consumers are owned by
 * the app; a full store queue is counted here (the store logs it).
 */
#include "pipeline.h"

#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/redis.h"
#include "sink/store.h"

static const char *const kind_names[PL_NKINDS] = {"kline", "ticker", "depth",
                                                  "trade"};

const char *pipeline_kind_name(int kind) {
  return kind >= 0 && kind < PL_NKINDS ? kind_names[kind] : "?";
}

void pipeline_init(struct pipeline *p) {
  static const double bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                  0.0025,  0.005,  0.01,    0.025,  0.05,
                                  0.1,     0.25,   1};
  memset(p, 0, sizeof *p);
  metrics_histogram_init(&p->latency, bounds,
                         (int)(sizeof bounds / sizeof bounds[0]));
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void refused(struct pipeline *p, int kind, int rv) {
  p->store_refused[kind]++;
  log_limited(BL_LOG_ERROR, "pipeline",
              "%s row not stored: %s (store queue full; PostgreSQL behind)",
              kind_names[kind], rv == BL_EFULL ? "queue full" : "error");
}

void pipeline_on_event(struct pipeline *p, const struct ev *ev,
                       uint64_t rx_ns) {
  uint64_t now_ns;
  int rv, kind = -1;
  switch (ev->type) {
  case EV_KLINE:
    kind = PL_KLINE;
    /* The checker sees only rows the store took: a refused row (spool
     * full) then shows as a gap and is repaired over REST. */
    if (p->store && (rv = store_kline(p->store, &ev->u.kline, 0, 1)))
      refused(p, kind, rv);
    else if (p->on_kline)
      p->on_kline(p->check_arg, &ev->u.kline);
    if (p->redis)
      redis_sink_publish_kline(p->redis, &ev->u.kline);
    break;
  case EV_TICKER:
    kind = PL_TICKER;
    if (p->store && (rv = store_ticker(p->store, &ev->u.ticker)))
      refused(p, kind, rv);
    if (p->redis)
      redis_sink_publish_ticker(p->redis, &ev->u.ticker);
    break;
  case EV_TRADE:
    kind = PL_TRADE;
    if (p->store && (rv = store_trade(p->store, &ev->u.trade, 0)))
      refused(p, kind, rv);
    else if (p->on_trade)
      p->on_trade(p->check_arg, &ev->u.trade);
    if (p->redis)
      redis_sink_publish_trade(p->redis, &ev->u.trade);
    break;
  case EV_DEPTH:
    kind = PL_DEPTH;
    if (p->on_depth)
      p->on_depth(p->depth_arg, &ev->u.depth);
    break;
  default:
    return;
  }
  p->events[kind]++;
  now_ns = uv_hrtime();
  if (!p->last_event_ms || now_ns - p->wall_read_ns >= 1000000) {
    p->last_event_ms = wall_ms();
    p->wall_read_ns = now_ns;
  }
  if (rx_ns)
    metrics_histogram_observe(&p->latency, (double)(now_ns - rx_ns) / 1e9);
}

void pipeline_collect(struct buf *out, void *arg) {
  struct pipeline *p = arg;
  char lab[64];
  metrics_family(out, "binance_live_messages_total", "counter",
                 "Live events received, by type.");
  for (int k = 0; k < PL_NKINDS; k++) {
    snprintf(lab, sizeof lab, "type=\"%s\"", kind_names[k]);
    metrics_sample_u64(out, "binance_live_messages_total", lab, p->events[k]);
  }
  metrics_family(out, "binance_live_store_refused_total", "counter",
                 "Live rows the store could not queue, by type.");
  for (int k = 0; k < PL_NKINDS; k++) {
    snprintf(lab, sizeof lab, "type=\"%s\"", kind_names[k]);
    metrics_sample_u64(out, "binance_live_store_refused_total", lab,
                       p->store_refused[k]);
  }
  metrics_family(out, "binance_live_event_to_publish_seconds", "histogram",
                 "Time from the read that brought a frame to the end of its "
                 "dispatch (stored in the batch queue and published to "
                 "Redis), so a frame's wait behind the others of its read "
                 "counts.");
  metrics_histogram_write(out, "binance_live_event_to_publish_seconds", NULL,
                          &p->latency);
}
