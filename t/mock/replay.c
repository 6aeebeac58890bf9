/*
 * replay.c: loads a recording in the cryptofeed sample_data format (the
 * corpus binance-spot-2021-10-12) for the mock to replay.
 *
 *   BINANCE.ws.1.0    line 1: "<url> <-> <epoch s>", then one
 *                     "<epoch s>: <frame>" per WebSocket text frame
 *   BINANCE.http.0.0  "<url> -> <epoch s>: <body>" per depth snapshot
 *   BINANCE.0         line 1: "<url> -> <epoch s>: <exchangeInfo body>"
 *
 * Frames are kept byte for byte in one buffer; each is indexed by offset,
 * its receive time and the spans of its "stream" and "data" values, so a
 * combined connection gets the recorded bytes and a raw one the payload.
 * Files are read once at start, before the loop runs.
 *
 * State: struct replay (owned buffers, freed by replay_free).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mock.h"

static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *data = NULL;
  size_t cap = 0, n = 0;
  if (!f)
    return BL_EIO;
  for (;;) {
    size_t got;
    if (n + 65536 + 1 > cap) {
      char *nd;
      cap = cap ? cap * 2 : 131072;
      if (cap > ((size_t)256 << 20)) {
        free(data);
        fclose(f);
        return BL_ETOOBIG;
      }
      nd = realloc(data, cap);
      if (!nd) {
        free(data);
        fclose(f);
        return BL_ENOMEM;
      }
      data = nd;
    }
    got = fread(data + n, 1, 65536, f);
    n += got;
    if (got < 65536)
      break;
  }
  if (ferror(f)) {
    free(data);
    fclose(f);
    return BL_EIO;
  }
  fclose(f);
  data[n] = '\0';
  *out = data;
  *len = n;
  return 0;
}

static int64_t parse_epoch_us(const char *s) {
  int64_t sec = 0, us = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9')
    sec = sec * 10 + (*s++ - '0');
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') {
      if (digits < 6) {
        us = us * 10 + (*s - '0');
        digits++;
      }
      s++;
    }
  }
  while (digits++ < 6)
    us *= 10;
  return sec * 1000000 + us;
}

int replay_parse_ws(struct replay *rp) {
  char *p = rp->ws_text, *end = rp->ws_text + rp->ws_len, *nl, *sep;
  size_t cap = 0;
  nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl)
    return BL_EPARSE;
  sep = strstr(p, " <-> ");
  if (!sep || sep > nl || (size_t)(sep - p) >= sizeof rp->url)
    return BL_EPARSE;
  memcpy(rp->url, p, (size_t)(sep - p));
  rp->url[sep - p] = '\0';
  p = nl + 1;
  while (p < end) {
    struct replay_frame *f;
    char *colon;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      nl = end;
    if (nl == p) {
      p++;
      continue;
    }
    colon = memchr(p, ':', (size_t)(nl - p));
    if (!colon || colon + 2 > nl || colon[1] != ' ')
      return BL_EPARSE;
    if (rp->nframes == cap) {
      struct replay_frame *nf;
      cap = cap ? cap * 2 : 256;
      nf = realloc(rp->frames, cap * sizeof *nf);
      if (!nf)
        return BL_ENOMEM;
      rp->frames = nf;
    }
    f = &rp->frames[rp->nframes++];
    memset(f, 0, sizeof *f);
    f->t_us = parse_epoch_us(p);
    f->off = (size_t)(colon + 2 - rp->ws_text);
    f->len = (size_t)(nl - (colon + 2));
    if (f->len > 0 && rp->ws_text[f->off + f->len - 1] == '\r')
      f->len--;
    {
      const char *fr = rp->ws_text + f->off;
      static const char sk[] = "{\"stream\":\"";
      if (f->len > sizeof sk && !memcmp(fr, sk, sizeof sk - 1)) {
        const char *q =
            memchr(fr + sizeof sk - 1, '"', f->len - (sizeof sk - 1));
        static const char dk[] = ",\"data\":";
        if (q && (size_t)(q - fr) + sizeof dk < f->len &&
            !memcmp(q + 1, dk, sizeof dk - 1)) {
          f->stream_off = f->off + sizeof sk - 1;
          f->stream_len = (size_t)(q - fr) - (sizeof sk - 1);
          f->data_off = (size_t)(q + 1 + sizeof dk - 1 - rp->ws_text);
          f->data_len = f->off + f->len - 1 - f->data_off;
        }
      }
      if (!f->stream_len) { /* a raw recording: the frame is the payload */
        f->data_off = f->off;
        f->data_len = f->len;
      }
    }
    p = nl + 1;
  }
  return 0;
}

/* "<url> -> <ts>: <body>": returns the body start or NULL. */
static char *line_body(char *line, char *eol) {
  char *arrow = strstr(line, " -> "), *colon;
  if (!arrow || arrow > eol)
    return NULL;
  colon = memchr(arrow, ':', (size_t)(eol - arrow));
  if (!colon || colon + 2 > eol)
    return NULL;
  return colon + 2;
}

static int load_http(struct replay *rp) {
  char *p = rp->http_text;
  while (p && *p) {
    char *nl = strchr(p, '\n'), *eol = nl ? nl : p + strlen(p), *body, *sym;
    body = line_body(p, eol);
    sym = strstr(p, "symbol=");
    if (body && sym && sym < body && rp->nsnaps < 64) {
      struct replay_snapshot *sn = &rp->snaps[rp->nsnaps];
      size_t n = strcspn(sym + 7, "& ");
      if (n < sizeof sn->symbol) {
        memcpy(sn->symbol, sym + 7, n);
        sn->symbol[n] = '\0';
        sn->body = body;
        sn->len = (size_t)(eol - body);
        if (sn->len && body[sn->len - 1] == '\r')
          sn->len--;
        rp->nsnaps++;
      }
    }
    p = nl ? nl + 1 : NULL;
  }
  return 0;
}

static void load_exinfo(struct replay *rp) {
  char *p = rp->exinfo_text, *nl = strchr(p, '\n'), *eol, *lim;
  static const char key[] = "\"rateLimitType\":\"REQUEST_WEIGHT\","
                            "\"interval\":\"MINUTE\",\"intervalNum\":1,"
                            "\"limit\":";
  eol = nl ? nl : p + strlen(p);
  rp->exinfo = line_body(p, eol);
  if (!rp->exinfo)
    return;
  rp->exinfo_len = (size_t)(eol - rp->exinfo);
  *eol = '\0';
  lim = strstr(rp->exinfo, key);
  if (lim)
    rp->exinfo_weight_limit = (int)strtol(lim + sizeof key - 1, NULL, 10);
}

int replay_load(struct replay *rp, const char *dir, char *errstr,
                size_t errlen) {
  char path[4096];
  size_t len;
  int rc;
  memset(rp, 0, sizeof *rp);
  snprintf(path, sizeof path, "%s/BINANCE.ws.1.0", dir);
  rc = read_file(path, &rp->ws_text, &rp->ws_len);
  if (rc != 0) {
    snprintf(errstr, errlen, "cannot read %s", path);
    return rc;
  }
  rc = replay_parse_ws(rp);
  if (rc != 0) {
    snprintf(errstr, errlen, "cannot parse %s", path);
    return rc;
  }
  snprintf(path, sizeof path, "%s/BINANCE.http.0.0", dir);
  if (read_file(path, &rp->http_text, &len) == 0)
    load_http(rp);
  snprintf(path, sizeof path, "%s/BINANCE.0", dir);
  if (read_file(path, &rp->exinfo_text, &len) == 0)
    load_exinfo(rp);
  return 0;
}

void replay_free(struct replay *rp) {
  free(rp->ws_text);
  free(rp->frames);
  free(rp->http_text);
  free(rp->exinfo_text);
  memset(rp, 0, sizeof *rp);
}

const struct replay_snapshot *replay_snapshot_find(const struct replay *rp,
                                                   const char *symbol) {
  size_t i;
  for (i = 0; i < rp->nsnaps; i++)
    if (!strcmp(rp->snaps[i].symbol, symbol))
      return &rp->snaps[i];
  return NULL;
}

int replay_has_symbol(const struct replay *rp, const char *symbol) {
  char pat[64];
  if (replay_snapshot_find(rp, symbol))
    return 1;
  if (!rp->exinfo)
    return 0;
  snprintf(pat, sizeof pat, "\"symbol\":\"%s\"", symbol);
  return strstr(rp->exinfo, pat) != NULL;
}
