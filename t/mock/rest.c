/*
 * rest.c: the mock's REST endpoints as a pure function of (state, request
 * target, time) -> (status, Retry-After, used weight, body).
 *
 * Weight accounting uses a FIXED window aligned to the UTC minute (as
 * Binance's X-MBX-USED-WEIGHT-1M does): the counter resets when the minute
 * changes. A request whose weight would take the counter over the limit is
 * refused with 429 (code -1003), charged nothing, and Retry-After says the
 * seconds until the next minute; the client is then "in back-off" until
 * that time. Every request that arrives during a back-off is a violation
 * and is answered 429 again; the |ban_after|-th violation bans the IP:
 * 418 with Retry-After for |ban_secs| seconds, doubling with every further
 * ban (Binance escalates from 2 minutes to 3 days). During a ban every
 * request is answered 418 with the remaining time. Requests refused with
 * 400 (bad parameters) are charged their weight, as Binance does.
 *
 * Forced faults (from the control interface) answer 429/418/500 for the
 * next N requests or until a time; a forced 418 starts a real ban.
 *
 * State: struct rest_state (window, back-off, ban, faults, request log).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mock.h"

int rest_state_init(struct rest_state *r, struct mk_market *m,
                    const struct replay *rp, int limit) {
  memset(r, 0, sizeof *r);
  r->market = m;
  r->replay = rp;
  r->limit = limit > 0 ? limit : 6000;
  r->ban_after = 3;
  r->ban_secs = 120;
  r->log = calloc(REST_LOG_MAX, sizeof *r->log);
  return r->log ? 0 : BL_ENOMEM;
}

void rest_state_free(struct rest_state *r) {
  free(r->log);
  r->log = NULL;
}

/* ---------------------------------------------------------------- query */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int rest_query_get(const char *query, const char *key, char *out,
                   size_t outlen) {
  size_t klen = strlen(key);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    const char *end = amp ? amp : p + strlen(p);
    if ((size_t)(end - p) > klen && !memcmp(p, key, klen) && p[klen] == '=') {
      const char *v = p + klen + 1;
      size_t n = 0;
      while (v < end) {
        int c = (unsigned char)*v;
        if (c == '%' && end - v >= 3 && hexval(v[1]) >= 0 &&
            hexval(v[2]) >= 0) {
          c = hexval(v[1]) * 16 + hexval(v[2]);
          v += 3;
        } else {
          if (c == '+')
            c = ' ';
          v++;
        }
        if (n + 1 >= outlen)
          return -1;
        out[n++] = (char)c;
      }
      out[n] = '\0';
      return (int)n;
    }
    p = amp ? amp + 1 : NULL;
  }
  return -1;
}

/* Parses a non-negative decimal integer. Returns 0 or -1. */
static int parse_u64(const char *s, int64_t *out) {
  int64_t v = 0;
  if (!*s || strlen(s) > 18)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return 0;
}

/* --------------------------------------------------------------- errors */

static int set_error(struct rest_resp *out, int status, int code,
                     const char *msg) {
  out->status = status;
  buf_reset(&out->body);
  return buf_printf(&out->body, "{\"code\":%d,\"msg\":\"%s\"}", code, msg);
}

static int err_illegal(struct rest_resp *out, const char *param,
                       const char *range) {
  char msg[200];
  snprintf(msg, sizeof msg,
           "Illegal characters found in parameter '%s'; legal range is "
           "'%s'.",
           param, range);
  return set_error(out, 400, -1100, msg);
}

static int err_mandatory(struct rest_resp *out, const char *param) {
  char msg[200];
  snprintf(msg, sizeof msg,
           "Mandatory parameter '%s' was not sent, was empty/null, or "
           "malformed.",
           param);
  return set_error(out, 400, -1102, msg);
}

/* Gets an optional integer parameter: 1 present (in *v), 0 absent,
 * -1 malformed (the error answer is set). */
static int int_param(const char *q, const char *key, int64_t *v,
                     struct rest_resp *out) {
  char tmp[64];
  if (rest_query_get(q, key, tmp, sizeof tmp) < 0)
    return 0;
  if (parse_u64(tmp, v) != 0) {
    err_illegal(out, key, "^[0-9]{1,20}$");
    return -1;
  }
  return 1;
}

/* Time parameters may be in microseconds. */
static int64_t to_ms(int64_t t) {
  return t > 100000000000000LL ? t / 1000 : t;
}

static int symbol_chars_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 20)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
          *s == '_' || *s == '.'))
      return 0;
  return 1;
}

/* Reads and checks "symbol". Returns the symbol index (synthetic), 0 for a
 * known replay symbol, or -1 with the error answer set. */
static int symbol_param(struct rest_state *r, const char *q, char *name,
                        size_t namelen, struct rest_resp *out) {
  int s;
  if (rest_query_get(q, "symbol", name, namelen) <= 0) {
    err_mandatory(out, "symbol");
    return -1;
  }
  if (!symbol_chars_ok(name)) {
    err_illegal(out, "symbol", "^[A-Z0-9-_.]{1,20}$");
    return -1;
  }
  if (r->replay) {
    if (replay_has_symbol(r->replay, name))
      return 0;
    set_error(out, 400, -1121, "Invalid symbol.");
    return -1;
  }
  s = mk_symbol_find(r->market, name, strlen(name));
  if (s < 0)
    set_error(out, 400, -1121, "Invalid symbol.");
  return s;
}

/* ------------------------------------------------------------ endpoints */

enum ep {
  EP_PING = 0,
  EP_TIME,
  EP_EXINFO,
  EP_DEPTH,
  EP_KLINES,
  EP_AGGTRADES,
  EP_TICKER,
  EP_UNKNOWN
};

static const char *const ep_paths[] = {
    "/api/v3/ping",       "/api/v3/time",   "/api/v3/exchangeInfo",
    "/api/v3/depth",      "/api/v3/klines", "/api/v3/aggTrades",
    "/api/v3/ticker/24hr"};

static int route(const char *path, size_t len) {
  int i;
  for (i = 0; i < EP_UNKNOWN; i++)
    if (strlen(ep_paths[i]) == len && !memcmp(ep_paths[i], path, len))
      return i;
  return EP_UNKNOWN;
}

static int depth_weight(int64_t limit) {
  if (limit <= 100)
    return 5;
  if (limit <= 500)
    return 25;
  if (limit <= 1000)
    return 50;
  return 250;
}

/* Counts the entries of a symbols=["A","B"] parameter (0 if absent). */
static int count_symbols(const char *q, char *val, size_t vallen) {
  int n = 0;
  const char *p;
  if (rest_query_get(q, "symbols", val, vallen) < 0)
    return 0;
  for (p = val; *p; p++)
    if (*p == '"')
      n++;
  return n / 2;
}

static int weight_of(int ep, const char *q) {
  char tmp[4096];
  int64_t v;
  int n;
  switch (ep) {
  case EP_PING:
  case EP_TIME:
    return 1;
  case EP_EXINFO:
    return 20;
  case EP_DEPTH:
    if (rest_query_get(q, "limit", tmp, sizeof tmp) >= 0 &&
        parse_u64(tmp, &v) == 0)
      return depth_weight(v);
    return 5;
  case EP_KLINES:
    return 2;
  case EP_AGGTRADES:
    return 4;
  case EP_TICKER:
    if (rest_query_get(q, "symbol", tmp, sizeof tmp) >= 0)
      return 2;
    n = count_symbols(q, tmp, sizeof tmp);
    if (n == 0)
      return 80;
    return n <= 20 ? 2 : n <= 100 ? 40 : 80;
  default:
    return 0;
  }
}

static int ep_exchange_info(struct rest_state *r, const char *q, int64_t now,
                            struct rest_resp *out) {
  struct buf *b = &out->body;
  char name[64], list[4096];
  unsigned char *pick = NULL;
  int i, one = -1, rc, first = 1;
  if (r->replay) {
    if (!r->replay->exinfo)
      return set_error(out, 500, -1000, "No exchangeInfo in the recording.");
    return buf_append(b, r->replay->exinfo, r->replay->exinfo_len);
  }
  if (rest_query_get(q, "symbol", name, sizeof name) >= 0) {
    one = mk_symbol_find(r->market, name, strlen(name));
    if (one < 0)
      return set_error(out, 400, -1121, "Invalid symbol.");
  } else if (rest_query_get(q, "symbols", list, sizeof list) >= 0) {
    /* symbols=["A","B"]: every name must exist */
    char *p = list;
    pick = calloc((size_t)r->market->nsym, 1);
    if (!pick)
      return BL_ENOMEM;
    while ((p = strchr(p, '"')) != NULL) {
      char *e = strchr(p + 1, '"');
      int s;
      if (!e) {
        free(pick);
        return set_error(out, 400, -1135, "Invalid JSON.");
      }
      s = mk_symbol_find(r->market, p + 1, (size_t)(e - p - 1));
      if (s < 0) {
        free(pick);
        return set_error(out, 400, -1121, "Invalid symbol.");
      }
      pick[s] = 1;
      p = e + 1;
    }
  }
  rc = buf_printf(b,
                  "{\"timezone\":\"UTC\",\"serverTime\":%lld,\"rateLimits\":["
                  "{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":"
                  "\"MINUTE\",\"intervalNum\":1,\"limit\":%d},"
                  "{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\","
                  "\"intervalNum\":10,\"limit\":100},"
                  "{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":"
                  "\"MINUTE\",\"intervalNum\":5,\"limit\":300000}],"
                  "\"exchangeFilters\":[],\"symbols\":[",
                  (long long)now, r->limit);
  for (i = 0; rc == 0 && i < r->market->nsym; i++) {
    const struct mk_symbol *sy = &r->market->sym[i];
    char tick[48], step[48], *e;
    if ((one >= 0 && i != one) || (pick && !pick[i]))
      continue;
    e = fmt_dec8(tick, sy->tick);
    *e = '\0';
    e = fmt_dec8(step, sy->step);
    *e = '\0';
    rc = buf_printf(
        b,
        "%s{\"symbol\":\"%s\",\"status\":\"TRADING\",\"baseAsset\":\"%s\","
        "\"baseAssetPrecision\":8,\"quoteAsset\":\"%s\",\"quotePrecision\":8,"
        "\"quoteAssetPrecision\":8,\"baseCommissionPrecision\":8,"
        "\"quoteCommissionPrecision\":8,\"orderTypes\":[\"LIMIT\",\"MARKET\"],"
        "\"icebergAllowed\":true,\"ocoAllowed\":true,"
        "\"isSpotTradingAllowed\":true,\"isMarginTradingAllowed\":false,"
        "\"filters\":[{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"%s\","
        "\"maxPrice\":\"1000000.00000000\",\"tickSize\":\"%s\"},"
        "{\"filterType\":\"LOT_SIZE\",\"minQty\":\"%s\","
        "\"maxQty\":\"9000000.00000000\",\"stepSize\":\"%s\"}],"
        "\"permissions\":[],\"permissionSets\":[[\"SPOT\"]]}",
        first ? "" : ",", sy->name, sy->base, sy->quote, tick, tick, step,
        step);
    first = 0;
  }
  free(pick);
  if (rc == 0)
    rc = buf_append_str(b, "]}");
  return rc;
}

/* /stale_depth fault: the snapshot of an older update id (a consistent
 * book, just old), for the next stale_depth_count answers. */
static int64_t stale_depth_uid(struct rest_state *r, int64_t uid) {
  if (r->stale_depth_count <= 0)
    return uid;
  r->stale_depth_count--;
  uid -= r->stale_depth_ids;
  return uid < 1 ? 1 : uid;
}

static int ep_depth(struct rest_state *r, const char *q, int64_t now,
                    struct rest_resp *out) {
  char name[64];
  int64_t limit = 100;
  int s, n;
  struct mk_level bids[MK_LEVELS], asks[MK_LEVELS];
  if ((s = symbol_param(r, q, name, sizeof name, out)) < 0)
    return 0;
  if (int_param(q, "limit", &limit, out) < 0)
    return 0;
  if (limit < 1)
    return set_error(out, 400, -1100,
                     "Illegal characters found in parameter 'limit'; legal "
                     "range is '^[0-9]{1,20}$'.");
  if (r->replay) {
    const struct replay_snapshot *sn = replay_snapshot_find(r->replay, name);
    if (sn)
      return buf_append(&out->body, sn->body, sn->len);
    return buf_append_str(&out->body,
                          "{\"lastUpdateId\":0,\"bids\":[],\"asks\":[]}");
  }
  n = limit > MK_LEVELS ? MK_LEVELS : (int)limit;
  {
    int64_t uid = mk_book_uid(r->market, s, now);
    uid = stale_depth_uid(r, uid);
    mk_book_at(r->market, s, uid, bids, asks);
    return fmt_depth_snapshot(&out->body, uid, bids, asks, n);
  }
}

static int ep_klines(struct rest_state *r, const char *q, int64_t now,
                     struct rest_resp *out) {
  char name[64], ivs[16];
  int64_t limit = 500, st = -1, et = -1, t, first_bar, last_bar;
  int s, iv, n = 0, rc = 0, hs, he;
  struct mk_agg a;
  const struct mk_symbol *sy;
  if ((s = symbol_param(r, q, name, sizeof name, out)) < 0)
    return 0;
  if (rest_query_get(q, "interval", ivs, sizeof ivs) <= 0)
    return err_mandatory(out, "interval");
  iv = mk_interval_parse(ivs, strlen(ivs));
  if (iv < 0)
    return set_error(out, 400, -1120, "Invalid interval.");
  if (int_param(q, "limit", &limit, out) < 0 ||
      (hs = int_param(q, "startTime", &st, out)) < 0 ||
      (he = int_param(q, "endTime", &et, out)) < 0)
    return 0;
  if (limit < 1)
    limit = 1;
  if (limit > 1000)
    limit = 1000;
  if (r->replay)
    return buf_append_str(&out->body, "[]");
  sy = &r->market->sym[s];
  st = to_ms(st);
  et = to_ms(et);
  if (hs && he && st > et)
    return set_error(out, 400, -1127,
                     "startTime must be less than or equal to endTime.");
  /* bars exist from the one containing the first trade up to now */
  first_bar = mk_bar_start(iv, MK_T0);
  last_bar = mk_bar_start(iv, now);
  if (he && et < now)
    last_bar = mk_bar_start(iv, et);
  if (last_bar < first_bar)
    return buf_append_str(&out->body, "[]");
  if (hs) {
    t = mk_bar_start(iv, st);
    if (t < st)
      t = mk_bar_next(iv, t); /* bars opening at or after startTime */
    if (t < first_bar)
      t = first_bar;
  } else {
    int64_t i;
    t = last_bar;
    for (i = 1; i < limit && t > first_bar; i++)
      t = mk_bar_start(iv, t - 1);
  }
  rc = buf_append_char(&out->body, '[');
  for (; rc == 0 && t <= last_bar && n < limit; t = mk_bar_next(iv, t)) {
    if ((sy->empty_from || sy->empty_to) && t >= sy->empty_from &&
        t <= sy->empty_to)
      continue;
    mk_kline(r->market, s, iv, t, now, &a);
    if (n++)
      rc = buf_append_char(&out->body, ',');
    if (rc == 0)
      rc = fmt_kline_row(&out->body, r->market, iv, t, &a);
  }
  if (rc == 0)
    rc = buf_append_char(&out->body, ']');
  return rc;
}

static int ep_agg_trades(struct rest_state *r, const char *q, int64_t now,
                         struct rest_resp *out) {
  char name[64];
  int64_t limit = 500, from = 0, st = 0, et = 0, ka, kb, k, last;
  int s, hf, hs, he, rc, n = 0;
  struct mk_trade tr;
  if ((s = symbol_param(r, q, name, sizeof name, out)) < 0)
    return 0;
  if (int_param(q, "limit", &limit, out) < 0 ||
      (hf = int_param(q, "fromId", &from, out)) < 0 ||
      (hs = int_param(q, "startTime", &st, out)) < 0 ||
      (he = int_param(q, "endTime", &et, out)) < 0)
    return 0;
  if (hf && (hs || he))
    return set_error(out, 400, -1128,
                     "Combination of optional parameters invalid.");
  if (limit < 1)
    limit = 1;
  if (limit > 1000)
    limit = 1000;
  if (r->replay)
    return buf_append_str(&out->body, "[]");
  st = to_ms(st);
  et = to_ms(et);
  last = mk_trade_last_at(r->market, s, now);
  if (hf) {
    ka = from > 0 ? from - 1 : 0;
    kb = ka + limit - 1;
  } else if (hs) {
    ka = mk_trade_first_at(r->market, s, st);
    kb = ka + limit - 1;
    if (he) {
      int64_t e = mk_trade_last_at(r->market, s, et);
      if (e < kb)
        kb = e;
    }
  } else {
    kb = he ? mk_trade_last_at(r->market, s, et) : last;
    if (kb > last)
      kb = last;
    ka = kb - limit + 1;
    if (ka < 0)
      ka = 0;
  }
  if (kb > last)
    kb = last;
  rc = buf_append_char(&out->body, '[');
  for (k = ka; rc == 0 && k <= kb; k++) {
    mk_trade_get(r->market, s, k, &tr);
    if (n++)
      rc = buf_append_char(&out->body, ',');
    if (rc == 0)
      rc = fmt_agg_trade_rest(&out->body, &tr);
  }
  if (rc == 0)
    rc = buf_append_char(&out->body, ']');
  return rc;
}

static int ep_ticker(struct rest_state *r, const char *q, int64_t now,
                     struct rest_resp *out) {
  char name[64], list[4096];
  int s, i, rc = 0, n = 0;
  if (rest_query_get(q, "symbol", name, sizeof name) >= 0) {
    if ((s = symbol_param(r, q, name, sizeof name, out)) < 0)
      return 0;
    if (r->replay)
      return buf_printf(&out->body, "{\"symbol\":\"%s\"}", name);
    return fmt_ticker_rest(&out->body, r->market, s, now);
  }
  if (r->replay)
    return buf_append_str(&out->body, "[]");
  if (rest_query_get(q, "symbols", list, sizeof list) >= 0) {
    /* ["A","B"]: check every name first */
    char *p = list;
    rc = buf_append_char(&out->body, '[');
    while (rc == 0 && (p = strchr(p, '"')) != NULL) {
      char *e = strchr(p + 1, '"');
      if (!e)
        return set_error(out, 400, -1135, "Invalid JSON.");
      s = mk_symbol_find(r->market, p + 1, (size_t)(e - p - 1));
      if (s < 0)
        return set_error(out, 400, -1121, "Invalid symbol.");
      if (n++)
        rc = buf_append_char(&out->body, ',');
      if (rc == 0)
        rc = fmt_ticker_rest(&out->body, r->market, s, now);
      p = e + 1;
    }
    return rc ? rc : buf_append_char(&out->body, ']');
  }
  rc = buf_append_char(&out->body, '[');
  for (i = 0; rc == 0 && i < r->market->nsym; i++) {
    if (i)
      rc = buf_append_char(&out->body, ',');
    if (rc == 0)
      rc = fmt_ticker_rest(&out->body, r->market, i, now);
  }
  return rc ? rc : buf_append_char(&out->body, ']');
}

/* ------------------------------------------------------------ the machine */

static void log_request(struct rest_state *r, const char *path, size_t plen,
                        int64_t now, int status, int weight, int in_backoff,
                        int in_ban) {
  struct rest_log_entry *e = &r->log[r->log_total % REST_LOG_MAX];
  if (plen >= sizeof e->path)
    plen = sizeof e->path - 1;
  memcpy(e->path, path, plen);
  e->path[plen] = '\0';
  for (size_t i = 0; i < plen; i++) /* keep the stats JSON valid */
    if (e->path[i] == '"' || e->path[i] == '\\' ||
        (unsigned char)e->path[i] < 0x20 || (unsigned char)e->path[i] > 0x7e)
      e->path[i] = '_';
  e->t = now;
  e->status = status;
  e->weight = weight;
  e->used = r->used;
  e->in_backoff = (unsigned char)in_backoff;
  e->in_ban = (unsigned char)in_ban;
  r->log_total++;
  if (r->log_len < REST_LOG_MAX)
    r->log_len++;
  r->n_requests++;
  if (status == 429)
    r->n_429++;
  else if (status == 418)
    r->n_418++;
  else if (status >= 500)
    r->n_500++;
}

static int secs_until(int64_t until, int64_t now) {
  int64_t d = until - now;
  return d <= 0 ? 0 : (int)((d + 999) / 1000);
}

static int answer_ban(struct rest_state *r, int64_t now,
                      struct rest_resp *out) {
  char msg[256];
  snprintf(msg, sizeof msg,
           "Way too much request weight used; IP banned until %lld. Please "
           "use WebSocket Streams for live updates to avoid bans.",
           (long long)r->ban_until);
  out->retry_after = secs_until(r->ban_until, now);
  return set_error(out, 418, -1003, msg);
}

static int answer_429(struct rest_state *r, int retry_after,
                      struct rest_resp *out) {
  char msg[256];
  snprintf(msg, sizeof msg,
           "Too much request weight used; current limit is %d request weight "
           "per 1 MINUTE. Please use WebSocket Streams for live updates to "
           "avoid polling the API.",
           r->limit);
  out->retry_after = retry_after;
  return set_error(out, 429, -1003, msg);
}

static void start_ban(struct rest_state *r, int64_t now, int secs) {
  r->ban_until = now + (int64_t)secs * 1000;
  r->bans++;
  r->violations = 0;
  r->backoff_until = 0;
}

int rest_handle(struct rest_state *r, const char *method, const char *target,
                int64_t now, struct rest_resp *out) {
  const char *qm = strchr(target, '?');
  size_t plen = qm ? (size_t)(qm - target) : strlen(target);
  const char *q = qm ? qm + 1 : "";
  int ep = route(target, plen), w, rc = 0, in_backoff = 0;
  int64_t minute = now / 60000;
  (void)method;
  out->status = 200;
  out->retry_after = -1;
  buf_reset(&out->body);
  if (minute != r->win_minute) {
    r->win_minute = minute;
    r->used = 0;
  }
  if (ep == EP_UNKNOWN) {
    out->status = 404;
    out->used = r->used;
    log_request(r, target, plen, now, 404, 0, 0, 0);
    return 0;
  }
  /* 1. banned */
  if (r->ban_until > now) {
    rc = answer_ban(r, now, out);
    out->used = r->used;
    log_request(r, target, plen, now, 418, 0, 0, 1);
    return rc;
  }
  /* 2. arriving during a back-off: a violation, maybe a ban */
  if (r->backoff_until > now) {
    in_backoff = 1;
    if (++r->violations >= r->ban_after) {
      start_ban(r, now, r->ban_secs << (r->bans < 10 ? r->bans : 10));
      rc = answer_ban(r, now, out);
      out->used = r->used;
      log_request(r, target, plen, now, 418, 0, 1, 0);
      return rc;
    }
  }
  /* 3. forced faults */
  if (r->force_status &&
      (r->force_count > 0 || (r->force_until && now < r->force_until))) {
    int st = r->force_status;
    if (r->force_count > 0 && --r->force_count == 0 && !r->force_until)
      r->force_status = 0;
    out->used = r->used;
    if (st == 418) {
      r->force_status = 0;
      r->force_count = 0;
      r->force_until = 0;
      start_ban(r, now, r->force_retry_after);
      rc = answer_ban(r, now, out);
      log_request(r, target, plen, now, 418, 0, in_backoff, 0);
      return rc;
    }
    if (st == 429) {
      r->backoff_until = now + (int64_t)r->force_retry_after * 1000;
      rc = answer_429(r, r->force_retry_after, out);
      log_request(r, target, plen, now, 429, 0, in_backoff, 0);
      return rc;
    }
    rc = set_error(out, st, -1001,
                   "Internal error; unable to process your request. Please "
                   "try again.");
    log_request(r, target, plen, now, st, 0, in_backoff, 0);
    return rc;
  }
  if (r->force_until && now >= r->force_until) {
    r->force_status = 0;
    r->force_until = 0;
  }
  /* 4. weight */
  w = weight_of(ep, q);
  if (r->used + w > r->limit || in_backoff) {
    int64_t next = (minute + 1) * 60000;
    if (!in_backoff) {
      r->backoff_until = next;
      r->violations = 0;
    }
    rc = answer_429(r, secs_until(r->backoff_until, now), out);
    out->used = r->used;
    log_request(r, target, plen, now, 429, 0, in_backoff, 0);
    return rc;
  }
  r->used += w;
  r->violations = 0;
  out->used = r->used;
  switch (ep) {
  case EP_PING:
    rc = buf_append_str(&out->body, "{}");
    break;
  case EP_TIME:
    rc = buf_printf(&out->body, "{\"serverTime\":%lld}", (long long)now);
    break;
  case EP_EXINFO:
    rc = ep_exchange_info(r, q, now, out);
    break;
  case EP_DEPTH:
    rc = ep_depth(r, q, now, out);
    break;
  case EP_KLINES:
    rc = ep_klines(r, q, now, out);
    break;
  case EP_AGGTRADES:
    rc = ep_agg_trades(r, q, now, out);
    break;
  case EP_TICKER:
    rc = ep_ticker(r, q, now, out);
    break;
  default:
    break;
  }
  if (rc != 0)
    set_error(out, 500, -1000, "An unknown error occurred.");
  log_request(r, target, plen, now, out->status, w, 0, 0);
  return rc;
}

int rest_stats_json(const struct rest_state *r, struct buf *b) {
  size_t i, start;
  int rc, e;
  uint64_t cnt[EP_UNKNOWN + 1] = {0}, wt[EP_UNKNOWN + 1] = {0};
  rc = buf_printf(b,
                  "{\"requests_total\":%llu,\"n429\":%llu,\"n418\":%llu,"
                  "\"n5xx\":%llu,\"weight_limit\":%d,\"used_weight\":%d,"
                  "\"window_minute\":%lld,\"backoff_until\":%lld,"
                  "\"ban_until\":%lld,\"bans\":%d,\"requests\":[",
                  (unsigned long long)r->n_requests,
                  (unsigned long long)r->n_429, (unsigned long long)r->n_418,
                  (unsigned long long)r->n_500, r->limit, r->used,
                  (long long)r->win_minute, (long long)r->backoff_until,
                  (long long)r->ban_until, r->bans);
  start = r->log_total - r->log_len;
  for (i = 0; rc == 0 && i < r->log_len; i++) {
    const struct rest_log_entry *le = &r->log[(start + i) % REST_LOG_MAX];
    e = route(le->path, strlen(le->path));
    cnt[e]++;
    wt[e] += (uint64_t)le->weight;
    rc = buf_printf(b,
                    "%s{\"t\":%lld,\"path\":\"%s\",\"status\":%d,"
                    "\"weight\":%d,\"used\":%d,\"in_backoff\":%s,"
                    "\"in_ban\":%s}",
                    i ? "," : "", (long long)le->t, le->path, le->status,
                    le->weight, le->used, le->in_backoff ? "true" : "false",
                    le->in_ban ? "true" : "false");
  }
  if (rc == 0)
    rc = buf_append_str(b, "],\"endpoints\":{");
  for (e = 0; rc == 0 && e < EP_UNKNOWN; e++)
    rc = buf_printf(b, "%s\"%s\":{\"count\":%llu,\"weight\":%llu}",
                    e ? "," : "", ep_paths[e], (unsigned long long)cnt[e],
                    (unsigned long long)wt[e]);
  if (rc == 0)
    rc = buf_printf(b, "},\"other_count\":%llu}",
                    (unsigned long long)cnt[EP_UNKNOWN]);
  return rc;
}
