/*
 * streams_probe.c: runs binance/streams against a WebSocket endpoint (the
 * mock exchange) for a while and prints what happened, one fact a line,
 * for t/integration/streams.sh:
 *
 *   up T conn=ID nsym=N            a connection came up (T: ms since start)
 *   down T conn=ID status=S nsym=N a connection went down
 *   health T 0|1                   streams_healthy(fresh 2 s), every
 *                                  --health-every ms (250)
 *   set T n=N                      a scheduled streams_set_symbols ran
 *   list conn=ID n=N STREAMS       LIST_SUBSCRIPTIONS answer (sorted, ',')
 *   trades SYM count=N first=F last=L gaps=G back=B late=X
 *                                  per symbol: aggTrade ids delivered, jumps
 *                                  over a missing id, ids not above the
 *                                  previous one (a duplicate let through),
 *                                  events after the symbol was removed
 *   stats KEY=VALUE ...            streams_stats and parse errors by class
 *   conn ID STATE frames=F reconnects=R
 *   closed cb=N loop_close=RC      after streams_close
 *
 *   streams_probe --url URL [--symbols A,B,...] [--mock-symbols N]
 *     [--types trade|all] [--intervals 1m,5m] [--max-streams N]
 *     [--rollover MS] [--overlap MS] [--ping MS] [--read-timeout MS]
 *     [--delay MS] [--delay-max MS] [--max-attempts N] [--duration MS]
 *     [--at MS:SYM,SYM...]... [--list-at MS] [--health-every MS]
 *     [--log-level L]
 *
 * --mock-symbols N uses the mock's first N names (BTCUSDT, ETHUSDT,
 * SYM000USDT, ...). --at replaces the symbol set at MS ("-" for none).
 *
 * State: one struct probe on main's stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "binance/streams.h"
#include "core/err.h"
#include "core/log.h"

#define PROBE_MAX_SYMS 2048
#define PROBE_MAX_AT 64

struct probe_sym {
  char name[EV_SYMBOL_MAX];
  int64_t count, first, last, gaps, back, late;
  int wanted;
};

struct probe_at {
  uint64_t ms;
  char *list;
};

struct probe {
  uv_loop_t *loop;
  struct streams st;
  uv_timer_t tick;
  uint64_t t0, duration, list_at, health_every, next_health;
  int listed, closing, closed_cb;
  struct probe_sym syms[PROBE_MAX_SYMS];
  int n_syms;
  struct probe_at at[PROBE_MAX_AT];
  int n_at, next_at;
};

static uint64_t probe_now(struct probe *p) {
  return uv_now(p->loop) - p->t0;
}

static struct probe_sym *probe_sym(struct probe *p, const char *name, int add) {
  for (int i = 0; i < p->n_syms; i++)
    if (!strcmp(p->syms[i].name, name))
      return &p->syms[i];
  if (!add || p->n_syms == PROBE_MAX_SYMS)
    return NULL;
  snprintf(p->syms[p->n_syms].name, EV_SYMBOL_MAX, "%s", name);
  p->syms[p->n_syms].first = -1;
  return &p->syms[p->n_syms++];
}

/* Splits |list| (modified) on ',' into |out|. */
static int split(char *list, const char **out, int max) {
  int n = 0;
  char *save = NULL;
  if (!strcmp(list, "-"))
    return 0;
  for (char *t = strtok_r(list, ",", &save); t && n < max;
       t = strtok_r(NULL, ",", &save))
    out[n++] = t;
  return n;
}

static void apply_set(struct probe *p, char *list) {
  static const char *names[PROBE_MAX_SYMS];
  int n = split(list, names, PROBE_MAX_SYMS);
  int rv;
  for (int i = 0; i < p->n_syms; i++)
    p->syms[i].wanted = 0;
  for (int i = 0; i < n; i++) {
    struct probe_sym *s = probe_sym(p, names[i], 1);
    if (s)
      s->wanted = 1;
  }
  rv = streams_set_symbols(&p->st, names, n);
  printf("set %llu n=%d rv=%d\n", (unsigned long long)probe_now(p), n, rv);
}

static void on_event(struct streams *st, const struct ev *ev) {
  struct probe *p = st->data;
  struct probe_sym *s;
  if (ev->type != EV_TRADE)
    return;
  s = probe_sym(p, ev->u.trade.symbol, 1);
  if (!s)
    return;
  if (!s->wanted)
    s->late++;
  if (s->count) {
    if (ev->u.trade.agg_trade_id <= s->last)
      s->back++;
    else if (ev->u.trade.agg_trade_id > s->last + 1)
      s->gaps++;
  } else {
    s->first = ev->u.trade.agg_trade_id;
  }
  s->count++;
  s->last = ev->u.trade.agg_trade_id;
}

static void on_conn_change(struct streams *st, struct stream_conn *c, int up,
                           int status, const char *const *symbols, int n) {
  struct probe *p = st->data;
  (void)symbols;
  if (up)
    printf("up %llu conn=%d nsym=%d\n", (unsigned long long)probe_now(p), c->id,
           n);
  else
    printf("down %llu conn=%d status=%d nsym=%d\n",
           (unsigned long long)probe_now(p), c->id, status, n);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Prints a LIST_SUBSCRIPTIONS answer, its names sorted. */
static void on_frame(struct streams *st, struct stream_conn *c,
                     const char *data, size_t len) {
  const char *q = strstr(data, "\"result\":[");
  static char *names[4096];
  char *copy, *save = NULL;
  int n = 0;
  (void)st;
  if (!q || len > 1000000)
    return;
  copy = strdup(q + 10);
  if (!copy)
    return;
  if (strchr(copy, ']'))
    *strchr(copy, ']') = '\0';
  for (char *t = strtok_r(copy, ",\"", &save); t && n < 4096;
       t = strtok_r(NULL, ",\"", &save))
    names[n++] = t;
  qsort(names, (size_t)n, sizeof names[0], cmp_str);
  printf("list conn=%d n=%d ", c->id, n);
  for (int i = 0; i < n; i++)
    printf("%s%s", i ? "," : "", names[i]);
  printf("\n");
  free(copy);
}

static void closed_cb(struct streams *st) {
  struct probe *p = st->data;
  p->closed_cb++;
}

static void report(struct probe *p) {
  struct streams *s = &p->st;
  for (int i = 0; i < p->n_syms; i++) {
    struct probe_sym *y = &p->syms[i];
    printf("trades %s count=%lld first=%lld last=%lld gaps=%lld back=%lld "
           "late=%lld\n",
           y->name, (long long)y->count, (long long)y->first,
           (long long)y->last, (long long)y->gaps, (long long)y->back,
           (long long)y->late);
  }
  printf("stats frames=%llu events=%llu duplicates=%llu parse_errors=%llu "
         "binary=%llu reconnects=%llu rollovers=%llu server_shutdowns=%llu "
         "control_errors=%llu unwanted=%llu ignored=%llu",
         (unsigned long long)s->stats.frames,
         (unsigned long long)s->stats.events,
         (unsigned long long)s->stats.duplicates,
         (unsigned long long)s->stats.parse_errors,
         (unsigned long long)s->stats.binary_frames,
         (unsigned long long)s->stats.reconnects,
         (unsigned long long)s->stats.rollovers,
         (unsigned long long)s->stats.server_shutdowns,
         (unsigned long long)s->stats.control_errors,
         (unsigned long long)s->stats.unwanted,
         (unsigned long long)s->stats.ignored);
  for (int k = 1; k < PARSE_CLASS_COUNT; k++)
    printf(" %s=%llu", parse_class_name(k),
           (unsigned long long)s->parser.n_errors[k]);
  printf("\n");
  for (int i = 0; i < s->n_conns; i++) {
    struct stream_conn *c = s->conns[i];
    printf("conn %d %s frames=%llu reconnects=%llu nsym=%d\n", c->id,
           stream_conn_state_name(c->state), (unsigned long long)c->frames,
           (unsigned long long)c->reconnects, c->n_symbols);
  }
}

static void tick_cb(uv_timer_t *t) {
  struct probe *p = t->data;
  uint64_t now = probe_now(p);
  if (p->closing)
    return;
  while (p->next_at < p->n_at && p->at[p->next_at].ms <= now)
    apply_set(p, p->at[p->next_at++].list);
  if (now >= p->next_health) {
    printf("health %llu %d\n", (unsigned long long)now,
           streams_healthy(&p->st, 2000));
    p->next_health = now + p->health_every;
  }
  if (p->list_at && !p->listed && now >= p->list_at) {
    p->listed = 1;
    for (int i = 0; i < p->st.n_conns; i++) {
      struct stream_conn *c = p->st.conns[i];
      char req[64];
      int n = snprintf(req, sizeof req,
                       "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":%d}",
                       900000 + c->id);
      if (c->state == SCONN_OPEN)
        ws_send_text(&c->ws, req, (size_t)n);
    }
  }
  if (now >= p->duration) {
    p->closing = 1;
    report(p);
    uv_timer_stop(&p->tick);
    uv_close((uv_handle_t *)&p->tick, NULL);
    streams_close(&p->st, closed_cb);
  }
}

static uint64_t arg_u64(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end) {
    fprintf(stderr, "bad number %s\n", s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  static struct probe p;
  static char mock_names[PROBE_MAX_SYMS][EV_SYMBOL_MAX];
  static char intervals_buf[256];
  static char initial[1 << 16];
  struct streams_config cfg;
  struct streams_callbacks cbs = {on_event, on_conn_change};
  const char *log_level = "warn";
  int rc;

  memset(&cfg, 0, sizeof cfg);
  cfg.types.trade = 1;
  p.duration = 5000;
  p.health_every = 250;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "%s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--url"))
      cfg.ws_url = v;
    else if (!strcmp(a, "--symbols"))
      snprintf(initial, sizeof initial, "%s", v);
    else if (!strcmp(a, "--mock-symbols")) {
      int n = (int)arg_u64(v);
      size_t off = 0;
      for (int k = 0; k < n && k < PROBE_MAX_SYMS; k++) {
        if (k == 0)
          snprintf(mock_names[k], EV_SYMBOL_MAX, "BTCUSDT");
        else if (k == 1)
          snprintf(mock_names[k], EV_SYMBOL_MAX, "ETHUSDT");
        else
          snprintf(mock_names[k], EV_SYMBOL_MAX, "SYM%03dUSDT", k - 2);
        off += (size_t)snprintf(initial + off, sizeof initial - off, "%s%s",
                                k ? "," : "", mock_names[k]);
      }
    } else if (!strcmp(a, "--types")) {
      if (!strcmp(v, "all"))
        cfg.types.kline = cfg.types.ticker = cfg.types.depth = 1;
    } else if (!strcmp(a, "--intervals")) {
      char *save = NULL;
      snprintf(intervals_buf, sizeof intervals_buf, "%s", v);
      for (char *t = strtok_r(intervals_buf, ",", &save);
           t && cfg.types.n_intervals < PLAN_MAX_INTERVALS;
           t = strtok_r(NULL, ",", &save))
        cfg.types.intervals[cfg.types.n_intervals++] = t;
    } else if (!strcmp(a, "--max-streams"))
      cfg.max_streams_per_conn = (int)arg_u64(v);
    else if (!strcmp(a, "--rollover"))
      cfg.rollover_ms = arg_u64(v);
    else if (!strcmp(a, "--overlap"))
      cfg.overlap_ms = arg_u64(v);
    else if (!strcmp(a, "--ping"))
      cfg.ping_interval_ms = arg_u64(v);
    else if (!strcmp(a, "--read-timeout"))
      cfg.read_timeout_ms = arg_u64(v);
    else if (!strcmp(a, "--delay"))
      cfg.reconnect_delay_ms = arg_u64(v);
    else if (!strcmp(a, "--delay-max"))
      cfg.reconnect_max_ms = arg_u64(v);
    else if (!strcmp(a, "--max-attempts"))
      cfg.max_reconnect_attempts = (int)arg_u64(v);
    else if (!strcmp(a, "--duration"))
      p.duration = arg_u64(v);
    else if (!strcmp(a, "--health-every"))
      p.health_every = arg_u64(v);
    else if (!strcmp(a, "--list-at"))
      p.list_at = arg_u64(v);
    else if (!strcmp(a, "--log-level"))
      log_level = v;
    else if (!strcmp(a, "--at") && p.n_at < PROBE_MAX_AT) {
      const char *colon = strchr(v, ':');
      char num[32];
      if (!colon || (size_t)(colon - v) >= sizeof num) {
        fprintf(stderr, "--at MS:SYMS\n");
        return 2;
      }
      memcpy(num, v, (size_t)(colon - v));
      num[colon - v] = '\0';
      p.at[p.n_at].ms = arg_u64(num);
      p.at[p.n_at++].list = strdup(colon + 1);
    } else {
      fprintf(stderr, "unknown option %s\n", a);
      return 2;
    }
  }
  if (!cfg.ws_url) {
    fprintf(stderr, "--url is required\n");
    return 2;
  }
  if (cfg.types.kline && !cfg.types.n_intervals)
    cfg.types.intervals[cfg.types.n_intervals++] = "1m";
  setvbuf(stdout, NULL, _IOLBF, 0);
  log_setup(log_level_parse(log_level) < 0 ? BL_LOG_WARN
                                           : log_level_parse(log_level),
            BL_LOG_TEXT, "streams_probe", NULL);
  p.loop = uv_default_loop();
  rc = streams_init(p.loop, &p.st, &cfg, &cbs);
  if (rc) {
    fprintf(stderr, "streams_init: %s\n", bl_strerror(rc));
    return 1;
  }
  p.st.data = &p;
  p.st.on_frame = on_frame;
  p.t0 = uv_now(p.loop);
  apply_set(&p, initial);
  uv_timer_init(p.loop, &p.tick);
  p.tick.data = &p;
  uv_timer_start(&p.tick, tick_cb, 10, 10);
  uv_run(p.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(p.loop);
  printf("closed cb=%d loop_close=%d\n", p.closed_cb, rc);
  for (int i = 0; i < p.n_at; i++)
    free(p.at[i].list);
  return p.closed_cb == 1 && rc == 0 ? 0 : 1;
}
