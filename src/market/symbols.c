/*
 * symbols.c: the active symbol set (see symbols.h).
 *
 * State: exchangeInfo's facts per symbol, the table's active symbols, the
 * effective set last reported, the prepared statements and the one op of
 * each kind that may be in flight, and three timers (periodic re-read,
 * NOTIFY debounce, exchangeInfo refresh).
 */
#include "market/symbols.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/pgarray.h"

/* All rows: an empty table (bootstrap) differs from one whose symbols are
 * all inactive (collect nothing). */
#define SQL_SELECT "SELECT symbol, is_active FROM symbols ORDER BY symbol"
/* Fills an empty table only: with two collectors starting at once, or a
 * user inserting meanwhile, nothing is overwritten. */
#define SQL_BOOTSTRAP                                                          \
  "INSERT INTO symbols (symbol, base_asset, quote_asset, status, is_active) "  \
  "SELECT s, b, q, st, true FROM unnest($1::text[], $2::text[], "              \
  "$3::text[], $4::text[]) AS t(s, b, q, st) "                                 \
  "WHERE NOT EXISTS (SELECT 1 FROM symbols) "                                  \
  "ON CONFLICT (symbol) DO NOTHING"
/* exchangeInfo wins for status; assets are filled where still empty. */
#define SQL_UPDATE                                                             \
  "UPDATE symbols AS s SET status = t.st, "                                    \
  "base_asset = CASE WHEN s.base_asset = '' THEN t.b ELSE s.base_asset END, "  \
  "quote_asset = CASE WHEN s.quote_asset = '' THEN t.q ELSE s.quote_asset "    \
  "END FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "           \
  "AS t(sym, b, q, st) WHERE s.symbol = t.sym AND (s.status IS DISTINCT "      \
  "FROM t.st OR (s.base_asset = '' AND t.b <> '') OR (s.quote_asset = '' "     \
  "AND t.q <> ''))"

static void report(struct symbols *s);
static void read_table(struct symbols *s);
static void write_statuses(struct symbols *s);
static void try_bootstrap(struct symbols *s);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_list(char **list, int n) {
  for (int i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

/* --- exchangeInfo -------------------------------------------------------- */

static int on_symbol(void *arg, const struct rest_symbol *rs) {
  struct symbols *s = arg;
  struct symbol_meta *m = strmap_get(&s->exinfo, rs->symbol);
  if (!m) {
    m = calloc(1, sizeof *m);
    if (!m || strmap_put(&s->exinfo, rs->symbol, m)) {
      free(m);
      return 0; /* over the map's limit: the symbol stays unknown */
    }
  }
  snprintf(m->status, sizeof m->status, "%s", rs->status);
  snprintf(m->base, sizeof m->base, "%s", rs->base_asset);
  snprintf(m->quote, sizeof m->quote, "%s", rs->quote_asset);
  snprintf(m->tick_size, sizeof m->tick_size, "%s", rs->tick_size);
  return 0;
}

static void exinfo_done(struct limiter_req *req, int result) {
  struct symbols *s = req->data;
  struct rest_parse_cbs cbs = {NULL, NULL, on_symbol, s};
  int rv;
  s->exinfo_inflight = 0;
  if (result == BL_ECANCELED || s->closing) {
    limiter_req_free(req);
    return;
  }
  if (result) {
    log_error("symbols",
              "exchangeInfo failed (%s); the symbol list is not checked "
              "against the exchange until it answers",
              bl_strerror(result));
  } else {
    rv = rest_parse_body(&s->rp, REST_EXCHANGE_INFO, &cbs, req->http.body.data,
                         req->http.body.len);
    if (rv) {
      log_error("symbols", "exchangeInfo body not understood: %s",
                s->rp.errstr);
    } else {
      const struct rest_exchange_info *info = &s->rp.info;
      s->exinfo_loaded = 1;
      log_info("symbols",
               "exchangeInfo: %zu symbols, weight limit %lld per "
               "%lld %s",
               info->n_symbols, (long long)info->weight_limit,
               (long long)info->weight_interval_num, info->weight_interval);
      if (info->weight_limit > 0 && info->weight_interval_num > 0) {
        int64_t per_minute = info->weight_limit;
        if (!strcmp(info->weight_interval, "SECOND"))
          per_minute = info->weight_limit * 60 / info->weight_interval_num;
        else if (!strcmp(info->weight_interval, "MINUTE"))
          per_minute = info->weight_limit / info->weight_interval_num;
        else if (!strcmp(info->weight_interval, "HOUR"))
          per_minute = info->weight_limit / (60 * info->weight_interval_num);
        limiter_set_exchange_limit(s->lim, per_minute);
      }
    }
  }
  limiter_req_free(req);
  try_bootstrap(s);
  write_statuses(s);
  report(s);
}

static void request_exinfo(struct symbols *s) {
  struct limiter_req *r = &s->exreq;
  if (s->exinfo_inflight || s->closing)
    return;
  limiter_req_init(r);
  r->data = s;
  r->prio = LIMITER_META;
  r->weight = 20;
  snprintf(r->path, sizeof r->path, "/api/v3/exchangeInfo");
  r->cb = exinfo_done;
  if (limiter_submit(s->lim, r) == 0)
    s->exinfo_inflight = 1;
}

static void exrefresh_cb(uv_timer_t *t) {
  request_exinfo(t->data);
}

/* --- the table ----------------------------------------------------------- */

static void select_done(struct pg_op *op, int status, PGresult *res,
                        const char *err) {
  struct symbols *s = op->data;
  s->db_inflight = 0;
  if (s->closing)
    return;
  if (status || !res) {
    log_limited(BL_LOG_ERROR, "symbols", "reading the symbols table: %s",
                err ? err : bl_strerror(status));
    return;
  }
  {
    int n = PQntuples(res);
    char **list = calloc((size_t)(n ? n : 1), sizeof *list);
    int k = 0;
    if (!list)
      return;
    for (int i = 0; i < n && k < SYMBOLS_MAX; i++) {
      if (strcmp(PQgetvalue(res, i, 1), "t"))
        continue;
      list[k] = strdup(PQgetvalue(res, i, 0));
      if (list[k])
        k++;
    }
    free_list(s->db, s->n_db);
    s->db = list;
    s->n_db = k;
    s->db_empty = n == 0;
    s->db_loaded = 1;
    s->rereads++;
  }
  if (s->db_empty)
    try_bootstrap(s);
  write_statuses(s);
  report(s);
  if (s->db_again) {
    s->db_again = 0;
    read_table(s);
  }
}

static void read_table(struct symbols *s) {
  if (s->closing || !pg_is_up(s->pg))
    return;
  if (s->db_inflight) {
    s->db_again = 1;
    return;
  }
  memset(&s->op_select, 0, sizeof s->op_select);
  s->op_select.stmt = "bl_symbols_select";
  s->op_select.cb = select_done;
  s->op_select.data = s;
  s->op_select.flags = PG_OP_NORETRY;
  if (pg_submit(s->pg, &s->op_select) == 0)
    s->db_inflight = 1;
}

static void write_done(struct pg_op *op, int status, PGresult *res,
                       const char *err) {
  struct symbols *s = op->data;
  (void)res;
  s->write_inflight = 0;
  if (status && status != BL_ECANCELED)
    log_limited(BL_LOG_ERROR, "symbols", "updating the symbols table: %s",
                err ? err : bl_strerror(status));
}

/* Sends |stmt| with four text arrays built by |fill|. */
static void send_arrays(struct symbols *s, struct pg_op *op, const char *stmt,
                        const char *const *syms, int n) {
  int rv = 0;
  if (s->write_inflight || !n)
    return;
  for (int c = 0; c < 4 && !rv; c++)
    rv = pgarray_begin(&s->arr[c]);
  for (int i = 0; i < n && !rv; i++) {
    const struct symbol_meta *m = strmap_get(&s->exinfo, syms[i]);
    rv = pgarray_add_str(&s->arr[0], syms[i]);
    if (!rv)
      rv = pgarray_add_str(&s->arr[1], m ? m->base : "");
    if (!rv)
      rv = pgarray_add_str(&s->arr[2], m ? m->quote : "");
    if (!rv)
      rv = pgarray_add_str(&s->arr[3], m ? m->status : "TRADING");
  }
  for (int c = 0; c < 4 && !rv; c++) {
    rv = pgarray_end(&s->arr[c]);
    s->vals[c] = s->arr[c].data;
  }
  if (rv)
    return;
  memset(op, 0, sizeof *op);
  op->stmt = stmt;
  op->nparams = 4;
  op->values = s->vals;
  op->cb = write_done;
  op->data = s;
  if (pg_submit(s->pg, op) == 0)
    s->write_inflight = 1;
}

/* An empty table is filled from symbols.bootstrap, with exchangeInfo's
 * assets when it has answered (the insert waits for it only at start). */
static void try_bootstrap(struct symbols *s) {
  if (s->bootstrap_done || !s->db_loaded || !s->db_empty || !pg_is_up(s->pg))
    return;
  if (!s->exinfo_loaded && s->exinfo_inflight)
    return; /* exinfo_done calls again */
  s->bootstrap_done = 1;
  log_info("symbols",
           "the symbols table is empty: inserting the %d "
           "bootstrap symbols",
           s->opts.n_bootstrap);
  send_arrays(s, &s->op_bootstrap, "bl_symbols_bootstrap", s->opts.bootstrap,
              s->opts.n_bootstrap);
}

/* exchangeInfo wins: statuses (and empty assets) of the table's symbols. */
static void write_statuses(struct symbols *s) {
  const char **known;
  int n = 0;
  if (!s->exinfo_loaded || !s->db_loaded || !pg_is_up(s->pg) || !s->n_db)
    return;
  known = malloc((size_t)s->n_db * sizeof *known);
  if (!known)
    return;
  for (int i = 0; i < s->n_db; i++)
    if (strmap_get(&s->exinfo, s->db[i]))
      known[n++] = s->db[i];
  send_arrays(s, &s->op_update, "bl_symbols_update", known, n);
  free(known);
}

static void debounce_cb(uv_timer_t *t) {
  read_table(t->data);
}

static void on_notify(struct pg_listen *l, const char *channel,
                      const char *payload, int be_pid) {
  struct symbols *s = l->data;
  (void)channel;
  (void)be_pid;
  s->notifications++;
  log_debug("symbols", "symbols changed (%s)", payload);
  /* Several changes in a row cause one re-read. */
  uv_timer_start(&s->debounce, debounce_cb, 200, 0);
}

/* --- the effective set --------------------------------------------------- */

static void report(struct symbols *s) {
  const char *const *src = (const char *const *)s->db;
  int n_src = s->n_db;
  char **eff;
  const struct symbol_meta **metas;
  int n = 0, same;
  if (s->closing)
    return;
  if (!s->db_loaded || s->db_empty) {
    /* Until the table has rows, the bootstrap list is what to collect
     * (it is being inserted). */
    src = s->opts.bootstrap;
    n_src = s->opts.n_bootstrap;
  }
  eff = calloc((size_t)(n_src ? n_src : 1), sizeof *eff);
  metas = calloc((size_t)(n_src ? n_src : 1), sizeof *metas);
  if (!eff || !metas) {
    free(eff);
    free(metas);
    return;
  }
  for (int i = 0; i < n_src; i++) {
    const struct symbol_meta *m = strmap_get(&s->exinfo, src[i]);
    if (s->exinfo_loaded && !m) {
      s->skipped_unknown++;
      log_limited(BL_LOG_WARN, "symbols",
                  "%s is not listed by the exchange: skipped", src[i]);
      continue;
    }
    if (m && strcmp(m->status, "TRADING")) {
      s->skipped_not_trading++;
      log_limited(BL_LOG_WARN, "symbols", "%s is %s on the exchange: skipped",
                  src[i], m->status);
      continue;
    }
    eff[n] = strdup(src[i]);
    if (!eff[n])
      break;
    metas[n] = m;
    n++;
  }
  qsort(eff, (size_t)n, sizeof *eff, cmp_str);
  for (int i = 0; i < n; i++)
    metas[i] = strmap_get(&s->exinfo, eff[i]);
  same = n == s->n_active;
  for (int i = 0; same && i < n; i++)
    same = !strcmp(eff[i], s->active[i]);
  if (same) {
    free_list(eff, n);
    free(metas);
    return;
  }
  free_list(s->active, s->n_active);
  s->active = eff;
  s->n_active = n;
  log_info("symbols", "collecting %d symbols", n);
  if (s->on_change)
    s->on_change(s, (const char *const *)s->active, metas, n);
  free(metas);
}

/* --- lifecycle ------------------------------------------------------------ */

static void reread_cb(uv_timer_t *t) {
  read_table(t->data);
}

int symbols_init(uv_loop_t *loop, struct symbols *s,
                 const struct symbols_opts *opts, struct pg *pg,
                 struct limiter *lim, symbols_change_cb on_change) {
  struct rest_parse_limits limits = {0, 1, 0};
  int rv;
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->pg = pg;
  s->lim = lim;
  s->opts = *opts;
  s->on_change = on_change;
  strmap_init(&s->exinfo, 20000);
  for (int c = 0; c < 4; c++)
    buf_init(&s->arr[c], (size_t)16 << 20);
  rv = rest_parse_init(&s->rp, &limits);
  if (rv)
    return rv;
  if (pg) {
    if ((rv = pg_prepare(pg, &s->st_select, "bl_symbols_select", SQL_SELECT, 0,
                         NULL)) ||
        (rv = pg_prepare(pg, &s->st_bootstrap, "bl_symbols_bootstrap",
                         SQL_BOOTSTRAP, 4, NULL)) ||
        (rv = pg_prepare(pg, &s->st_update, "bl_symbols_update", SQL_UPDATE, 4,
                         NULL)))
      return rv;
    rv = pg_listen(pg, &s->listen, SYMBOLS_CHANNEL, on_notify);
    if (rv)
      return rv;
    s->listen.data = s; /* pg_listen clears the struct */
  }
  uv_timer_init(loop, &s->reread);
  uv_timer_init(loop, &s->debounce);
  uv_timer_init(loop, &s->exrefresh);
  s->reread.data = s->debounce.data = s->exrefresh.data = s;
  s->handles_open = 3;
  return 0;
}

int symbols_start(struct symbols *s) {
  uint64_t every = s->opts.reread_ms ? s->opts.reread_ms : 60000;
  uint64_t ex = s->opts.exchange_info_ms ? s->opts.exchange_info_ms : 3600000;
  if (s->lim)
    request_exinfo(s);
  uv_timer_start(&s->reread, reread_cb, every, every);
  if (s->lim)
    uv_timer_start(&s->exrefresh, exrefresh_cb, ex, ex);
  /* Collect the bootstrap set at once; the table refines it. */
  report(s);
  return 0;
}

void symbols_db_up(struct symbols *s) {
  read_table(s);
}

int symbols_count(const struct symbols *s) {
  return s->n_active;
}

static void timer_closed(uv_handle_t *h) {
  struct symbols *s = h->data;
  void (*cb)(struct symbols *);
  size_t it = 0;
  const char *k;
  void *v;
  if (--s->handles_open)
    return;
  while (strmap_next(&s->exinfo, &it, &k, &v))
    free(v);
  strmap_free(&s->exinfo);
  for (int c = 0; c < 4; c++)
    buf_free(&s->arr[c]);
  rest_parse_free(&s->rp);
  free_list(s->db, s->n_db);
  free_list(s->active, s->n_active);
  s->db = s->active = NULL;
  cb = s->close_cb;
  s->close_cb = NULL;
  if (cb)
    cb(s);
}

void symbols_close(struct symbols *s, void (*cb)(struct symbols *s)) {
  s->closing = 1;
  s->close_cb = cb;
  if (s->exinfo_inflight)
    limiter_cancel(&s->exreq);
  uv_close((uv_handle_t *)&s->reread, timer_closed);
  uv_close((uv_handle_t *)&s->debounce, timer_closed);
  uv_close((uv_handle_t *)&s->exrefresh, timer_closed);
}
