/*
 * streams.c: stream names and the WebSocket control messages of the mock
 * (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY;
 * docs/binance-api.md 1.4), with Binance's answers and error objects.
 *
 * A synthetic stream is identified by an int: symbol * ST_NKINDS + kind.
 * In replay mode streams are kept by name (the recording decides what
 * exists). I/O-free: a message in, an answer and the subscription changes
 * out.
 *
 * State: struct st_subs per connection (owned by the server).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "core/err.h"
#include "mock.h"

int st_parse(const struct mk_market *m, const char *name, size_t len) {
  const char *at = memchr(name, '@', len), *rest;
  size_t rlen;
  int s, kind;
  if (!m || !at)
    return BL_EINVAL;
  s = mk_symbol_find_lower(m, name, (size_t)(at - name));
  if (s < 0)
    return BL_EINVAL;
  rest = at + 1;
  rlen = len - (size_t)(rest - name);
#define IS(lit) (rlen == sizeof(lit) - 1 && !memcmp(rest, lit, rlen))
  if (IS("aggTrade"))
    kind = ST_AGGTRADE;
  else if (IS("ticker"))
    kind = ST_TICKER;
  else if (IS("depth") || IS("depth@1000ms"))
    kind = ST_DEPTH;
  else if (IS("depth@100ms"))
    kind = ST_DEPTH100;
  else if (rlen > 6 && !memcmp(rest, "kline_", 6)) {
    int iv = mk_interval_parse(rest + 6, rlen - 6);
    if (iv < 0)
      return BL_EINVAL;
    kind = ST_KLINE0 + iv;
  } else
    return BL_EINVAL;
#undef IS
  return s * ST_NKINDS + kind;
}

int st_name(const struct mk_market *m, int sid, char *out, size_t outlen) {
  int s = sid / ST_NKINDS, kind = sid % ST_NKINDS, n;
  const char *lo = m->sym[s].lower;
  switch (kind) {
  case ST_AGGTRADE:
    n = snprintf(out, outlen, "%s@aggTrade", lo);
    break;
  case ST_TICKER:
    n = snprintf(out, outlen, "%s@ticker", lo);
    break;
  case ST_DEPTH:
    n = snprintf(out, outlen, "%s@depth", lo);
    break;
  case ST_DEPTH100:
    n = snprintf(out, outlen, "%s@depth@100ms", lo);
    break;
  default:
    n = snprintf(out, outlen, "%s@kline_%s", lo,
                 mk_interval_name(kind - ST_KLINE0));
  }
  return (n < 0 || (size_t)n >= outlen) ? BL_ETOOBIG : n;
}

int st_subs_has(const struct st_subs *subs, int sid) {
  int i;
  for (i = 0; i < subs->n; i++)
    if (subs->ids[i] == sid)
      return 1;
  return 0;
}

int st_subs_has_name(const struct st_subs *subs, const char *name, size_t len) {
  int i;
  for (i = 0; i < subs->nnames; i++)
    if (strlen(subs->names[i]) == len && !memcmp(subs->names[i], name, len))
      return 1;
  return 0;
}

void st_subs_free(struct st_subs *subs) {
  int i;
  for (i = 0; i < subs->nnames; i++)
    free(subs->names[i]);
  subs->nnames = 0;
  subs->n = 0;
}

static int name_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len > 100)
    return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == '"' || c == '\\' || c == '/' || c >= 0x7f)
      return 0;
  }
  return memchr(s, '@', len) != NULL;
}

static int add_name(struct st_subs *subs, const char *s, size_t len) {
  char *d;
  if (st_subs_has_name(subs, s, len))
    return 0;
  if (subs->nnames >= ST_MAX_PER_CONN)
    return BL_EFULL;
  d = malloc(len + 1);
  if (!d)
    return BL_ENOMEM;
  memcpy(d, s, len);
  d[len] = '\0';
  subs->names[subs->nnames++] = d;
  return 0;
}

static void remove_name(struct st_subs *subs, const char *s, size_t len) {
  int i;
  for (i = 0; i < subs->nnames; i++)
    if (strlen(subs->names[i]) == len && !memcmp(subs->names[i], s, len)) {
      free(subs->names[i]);
      memmove(&subs->names[i], &subs->names[i + 1],
              (size_t)(subs->nnames - i - 1) * sizeof subs->names[0]);
      subs->nnames--;
      return;
    }
}

static int add_id(struct st_subs *subs, int sid, struct st_effect *eff) {
  if (st_subs_has(subs, sid))
    return 0;
  if (subs->n >= ST_MAX_PER_CONN)
    return BL_EFULL;
  subs->ids[subs->n++] = sid;
  if (eff)
    eff->added[eff->nadded++] = sid;
  return 0;
}

static void remove_id(struct st_subs *subs, int sid, struct st_effect *eff) {
  int i;
  for (i = 0; i < subs->n; i++)
    if (subs->ids[i] == sid) {
      memmove(&subs->ids[i], &subs->ids[i + 1],
              (size_t)(subs->n - i - 1) * sizeof subs->ids[0]);
      subs->n--;
      if (eff)
        eff->removed[eff->nremoved++] = sid;
      return;
    }
}

static int hexdig(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int st_from_path(const struct mk_market *m, int replay_mode,
                 struct st_subs *subs, const char *path) {
  const char *list, *p;
  char dec[4096], *d = dec;
  int rc;
  if (!strncmp(path, "/ws", 3) &&
      (path[3] == '\0' || path[3] == '/' || path[3] == '?')) {
    subs->combined = 0;
    list = path[3] == '/' ? path + 4 : "";
  } else if (!strncmp(path, "/stream", 7) &&
             (path[7] == '\0' || path[7] == '?' || path[7] == '/')) {
    subs->combined = 1;
    list = strstr(path, "streams=");
    list = list ? list + 8 : "";
  } else {
    return BL_EINVAL;
  }
  /* URL-decode the list (Binance accepts encoded URLs since 2025-12) */
  for (p = list; *p && *p != '&' && *p != '?'; p++) {
    if ((size_t)(d - dec) >= sizeof dec - 1)
      return BL_EFULL;
    if (*p == '%' && hexdig(p[1]) >= 0 && hexdig(p[2]) >= 0) {
      *d++ = (char)(hexdig(p[1]) * 16 + hexdig(p[2]));
      p += 2;
    } else {
      *d++ = *p;
    }
  }
  *d = '\0';
  p = dec;
  while (*p) {
    size_t n = strcspn(p, "/");
    if (n > 0) {
      if (replay_mode) {
        if (!name_ok(p, n))
          return BL_EINVAL;
        rc = add_name(subs, p, n);
      } else {
        int sid = st_parse(m, p, n);
        if (sid < 0)
          return BL_EINVAL;
        rc = add_id(subs, sid, NULL);
      }
      if (rc != 0)
        return rc;
    }
    p += n;
    if (*p == '/')
      p++;
  }
  return 0;
}

/* ------------------------------------------------------- control messages */

static int reply_id(struct buf *r, yajl_val id) {
  if (!id || YAJL_IS_NULL(id))
    return buf_append_str(r, "null");
  if (YAJL_IS_INTEGER(id))
    return buf_printf(r, "%lld", YAJL_GET_INTEGER(id));
  if (YAJL_IS_STRING(id))
    return buf_printf(r, "\"%s\"", (id)->u.string);
  return buf_append_str(r, "null");
}

static int reply_error(struct buf *r, int code, const char *msg, yajl_val id) {
  int rc = buf_printf(
      r, "{\"error\":{\"code\":%d,\"msg\":\"%s\"},\"id\":", code, msg);
  if (rc == 0)
    rc = reply_id(r, id);
  return rc ? rc : buf_append_char(r, '}');
}

static int reply_result(struct buf *r, const char *result, yajl_val id) {
  int rc = buf_printf(r, "{\"result\":%s,\"id\":", result);
  if (rc == 0)
    rc = reply_id(r, id);
  return rc ? rc : buf_append_char(r, '}');
}

static yajl_val obj_get(yajl_val obj, const char *key) {
  size_t i;
  for (i = 0; i < obj->u.object.len; i++)
    if (!strcmp(obj->u.object.keys[i], key))
      return obj->u.object.values[i];
  return NULL;
}

static int id_valid(yajl_val id) {
  const char *s;
  if (!id || YAJL_IS_NULL(id) || YAJL_IS_INTEGER(id))
    return 1;
  if (!YAJL_IS_STRING(id))
    return 0;
  s = (id)->u.string;
  if (strlen(s) > 36)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return 0;
  return 1;
}

static int do_list(const struct mk_market *m, int replay_mode,
                   const struct st_subs *subs, struct buf *reply, yajl_val id) {
  int i, rc = buf_append_str(reply, "{\"result\":[");
  char name[128];
  if (replay_mode) {
    for (i = 0; rc == 0 && i < subs->nnames; i++)
      rc = buf_printf(reply, "%s\"%s\"", i ? "," : "", subs->names[i]);
  } else {
    for (i = 0; rc == 0 && i < subs->n; i++) {
      if (st_name(m, subs->ids[i], name, sizeof name) < 0)
        continue;
      rc = buf_printf(reply, "%s\"%s\"", i ? "," : "", name);
    }
  }
  if (rc == 0)
    rc = buf_append_str(reply, "],\"id\":");
  if (rc == 0)
    rc = reply_id(reply, id);
  return rc ? rc : buf_append_char(reply, '}');
}

static int do_sub(const struct mk_market *m, int replay_mode,
                  struct st_subs *subs, int subscribe, yajl_val params,
                  struct buf *reply, yajl_val id, struct st_effect *eff) {
  size_t i, n;
  int newcount = 0, rc;
  if (!params || !YAJL_IS_ARRAY(params))
    return reply_error(reply, 2, "Invalid request: missing field `params`", id);
  n = params->u.array.len;
  for (i = 0; i < n; i++) {
    yajl_val v = params->u.array.values[i];
    const char *s;
    if (!YAJL_IS_STRING(v))
      return reply_error(reply, 2, "Invalid request: invalid stream", id);
    s = (v)->u.string;
    if (replay_mode ? !name_ok(s, strlen(s)) : st_parse(m, s, strlen(s)) < 0)
      return reply_error(reply, 2, "Invalid request: invalid stream", id);
    if (subscribe &&
        !(replay_mode ? st_subs_has_name(subs, s, strlen(s))
                      : st_subs_has(subs, st_parse(m, s, strlen(s)))))
      newcount++;
  }
  if (subscribe &&
      (replay_mode ? subs->nnames : subs->n) + newcount > ST_MAX_PER_CONN)
    return reply_error(reply, 4, "Too many subscriptions", id);
  for (i = 0; i < n; i++) {
    const char *s = (params->u.array.values[i])->u.string;
    if (replay_mode) {
      if (subscribe) {
        if ((rc = add_name(subs, s, strlen(s))) != 0)
          return rc;
      } else {
        remove_name(subs, s, strlen(s));
      }
    } else {
      int sid = st_parse(m, s, strlen(s));
      if (subscribe)
        add_id(subs, sid, eff);
      else
        remove_id(subs, sid, eff);
    }
  }
  return reply_result(reply, "null", id);
}

int st_control(const struct mk_market *m, int replay_mode, struct st_subs *subs,
               const char *msg, size_t len, struct buf *reply,
               struct st_effect *eff) {
  char err[128], *copy;
  yajl_val root, id, method, params;
  const char *meth;
  int rc;
  eff->nadded = eff->nremoved = 0;
  copy = malloc(len + 1);
  if (!copy)
    return BL_ENOMEM;
  memcpy(copy, msg, len);
  copy[len] = '\0';
  root = (memchr(msg, '\0', len) == NULL)
             ? yajl_tree_parse(copy, err, sizeof err)
             : NULL;
  free(copy);
  if (!root || !YAJL_IS_OBJECT(root)) {
    if (root)
      yajl_tree_free(root);
    return reply_error(reply, 3,
                       "Invalid JSON: expected value at line 1 column 1", NULL);
  }
  id = obj_get(root, "id");
  method = obj_get(root, "method");
  params = obj_get(root, "params");
  if (!id_valid(id)) {
    rc = reply_error(reply, 2,
                     "Invalid request: request ID must be an unsigned "
                     "integer",
                     NULL);
    goto out;
  }
  if (!method || !YAJL_IS_STRING(method)) {
    rc = reply_error(reply, 2, "Invalid request: missing field `method`", id);
    goto out;
  }
  meth = (method)->u.string;
  if (!strcmp(meth, "SUBSCRIBE") || !strcmp(meth, "UNSUBSCRIBE")) {
    rc = do_sub(m, replay_mode, subs, meth[0] == 'S', params, reply, id, eff);
  } else if (!strcmp(meth, "LIST_SUBSCRIPTIONS")) {
    rc = do_list(m, replay_mode, subs, reply, id);
  } else if (!strcmp(meth, "SET_PROPERTY") || !strcmp(meth, "GET_PROPERTY")) {
    int set = meth[0] == 'S';
    yajl_val name, val;
    if (!params || !YAJL_IS_ARRAY(params) || params->u.array.len < 1 ||
        params->u.array.len > (size_t)(set ? 2 : 1)) {
      rc = reply_error(reply, 2, "Invalid request: too many parameters", id);
      goto out;
    }
    name = params->u.array.values[0];
    if (!YAJL_IS_STRING(name)) {
      rc = reply_error(reply, 2,
                       "Invalid request: property name must be a string", id);
      goto out;
    }
    if (strcmp((name)->u.string, "combined") != 0) {
      rc = reply_error(reply, 0, "Unknown property", id);
      goto out;
    }
    if (!set) {
      rc = reply_result(reply, subs->combined ? "true" : "false", id);
      goto out;
    }
    val = params->u.array.len == 2 ? params->u.array.values[1] : NULL;
    if (!val || !(YAJL_IS_TRUE(val) || YAJL_IS_FALSE(val))) {
      rc = reply_error(reply, 1, "Invalid value type: expected Boolean", id);
      goto out;
    }
    subs->combined = YAJL_IS_TRUE(val);
    rc = reply_result(reply, "null", id);
  } else {
    char msgbuf[300];
    snprintf(msgbuf, sizeof msgbuf,
             "Invalid request: unknown variant `%.60s`, expected one of "
             "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, "
             "`SET_PROPERTY`, `GET_PROPERTY`",
             meth);
    /* the method came from the client: keep the JSON valid */
    for (char *c = msgbuf; *c; c++)
      if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
        *c = '?';
    rc = reply_error(reply, 2, msgbuf, id);
  }
out:
  yajl_tree_free(root);
  return rc;
}
