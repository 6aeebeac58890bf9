/*
 * config.c: loads, checks and prints the collector's configuration
 * (PRODUCT.md section 4).
 *
 * The whole file is parsed with libyaml's document API before the loop
 * starts. One table (keys[] below) drives everything: the type and range of
 * each key, its environment override, and the order in which the effective
 * configuration is printed. Loading goes: defaults -> file (each scalar
 * value first gets its ${VAR} / ${VAR:default} substitutions) -> the
 * environment overrides of the table -> checks across keys -> secrets are
 * registered with the logger.
 *
 * State: none between calls. While loading, a struct load holds the file
 * name, the warning stream, the error buffer and the position of every key
 * seen in the file (for checks that involve two keys).
 *
 * Conventions (documented for operators in conf/binance-live.yaml):
 *  - a null value (`key:` or `key: ~`) leaves the default in place;
 *  - an environment variable that is set but empty does not override;
 *  - ints may be quoted ("5432"); keys counted in seconds also take an
 *    s/m/h suffix ("5s", "1m") and flush_interval_ms takes ms/s, so files
 *    written for the Go original with duration strings still load;
 *  - duplicate kline intervals and symbols are dropped with a warning;
 *    a key given twice in one mapping is an error.
 */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define CONFIG_DEFAULT_PATH "conf/binance-live.yaml"
#define CONFIG_FILE_MAX (4u << 20) /* bytes read from a config file */
#define CONFIG_VALUE_MAX 65536     /* one value after substitution */
#define CONFIG_SYMBOL_MAX 32       /* bytes in one symbol name */
#define CONFIG_MSG_MAX 512

enum key_type {
  K_STR,       /* string */
  K_INT,       /* int, plain decimal */
  K_SECS,      /* int seconds; also "5s", "2m", "1h" */
  K_MS,        /* int milliseconds; also "200ms", "1s", "1m" */
  K_LLONG,     /* long long, plain decimal */
  K_BOOL,      /* true/false/yes/no/on/off */
  K_LEVEL,     /* log level name */
  K_FORMAT,    /* log format name */
  K_HTTP_URL,  /* http:// or https:// */
  K_WS_URL,    /* ws:// or wss:// */
  K_SSLMODE,   /* libpq sslmode */
  K_LISTEN,    /* host:port */
  K_INTERVALS, /* list of Binance kline intervals */
  K_SYMBOLS,   /* list of symbols */
  K_STREAMS,   /* map of kline/ticker/depth/trade booleans */
  K_IGNORED    /* a key of the Go original that does not apply */
};

#define F_SECRET 1u   /* never printed: a password */
#define F_NONEMPTY 2u /* the empty string is an error */
#define F_NULLABLE 4u /* the empty string means "not set" (NULL) */

struct key_def {
  const char *section;
  const char *name;
  enum key_type type;
  size_t off;
  long long min, max;
  const char *env;
  unsigned flags;
};

#define OFF(m) offsetof(struct config, m)

/* The order is PRODUCT.md's table order; config_dump_yaml() follows it. */
static const struct key_def keys[] = {
    {"app", "name", K_STR, OFF(app.name), 0, 0, NULL, F_NONEMPTY},
    {"app", "environment", K_STR, OFF(app.environment), 0, 0, NULL, 0},
    {"app", "log_level", K_LEVEL, OFF(app.log_level), 0, 0, "LOG_LEVEL", 0},
    {"app", "log_format", K_FORMAT, OFF(app.log_format), 0, 0, "LOG_FORMAT", 0},
    {"binance", "api_url", K_HTTP_URL, OFF(binance.api_url), 0, 0,
     "BINANCE_API_URL", 0},
    {"binance", "ws_url", K_WS_URL, OFF(binance.ws_url), 0, 0, "BINANCE_WS_URL",
     0},
    {"binance", "ca_file", K_STR, OFF(binance.ca_file), 0, 0, "BINANCE_CA_FILE",
     F_NULLABLE},
    {"binance", "rest_rate_limit", K_INT, OFF(binance.rest_rate_limit), 1,
     1000000, NULL, 0},
    {"binance", "kline_intervals", K_INTERVALS, 0, 0, 0, NULL, 0},
    {"binance", "streams", K_STREAMS, 0, 0, 0, NULL, 0},
    {"binance", "depth_levels", K_INT, OFF(binance.depth_levels), 1, 5000, NULL,
     0},
    {"binance", "depth_snapshot_interval", K_SECS,
     OFF(binance.depth_snapshot_interval), 1, 86400, NULL, 0},
    {"binance", "depth_snapshot_limit", K_INT,
     OFF(binance.depth_snapshot_limit), 1, 5000, NULL, 0},
    {"binance", "max_streams_per_connection", K_INT,
     OFF(binance.max_streams_per_connection), 1, 1024, NULL, 0},
    {"database", "host", K_STR, OFF(database.host), 0, 0, "POSTGRES_HOST",
     F_NONEMPTY},
    {"database", "port", K_INT, OFF(database.port), 1, 65535, "POSTGRES_PORT",
     0},
    {"database", "user", K_STR, OFF(database.user), 0, 0, "POSTGRES_USER",
     F_NONEMPTY},
    {"database", "password", K_STR, OFF(database.password), 0, 0,
     "POSTGRES_PASSWORD", F_SECRET},
    {"database", "database", K_STR, OFF(database.database), 0, 0, "POSTGRES_DB",
     F_NONEMPTY},
    {"database", "ssl_mode", K_SSLMODE, OFF(database.ssl_mode), 0, 0,
     "POSTGRES_SSLMODE", 0},
    {"database", "batch_size", K_INT, OFF(database.batch_size), 1, 100000, NULL,
     0},
    {"database", "flush_interval_ms", K_MS, OFF(database.flush_interval_ms), 1,
     3600000, NULL, 0},
    {"database", "migrate", K_BOOL, OFF(database.migrate), 0, 0, NULL, 0},
    {"database", "max_connections", K_IGNORED, 0, 0, 0, NULL, 0},
    {"database", "max_idle_connections", K_IGNORED, 0, 0, 0, NULL, 0},
    {"database", "connection_max_lifetime", K_IGNORED, 0, 0, 0, NULL, 0},
    {"redis", "host", K_STR, OFF(redis.host), 0, 0, "REDIS_HOST", F_NONEMPTY},
    {"redis", "port", K_INT, OFF(redis.port), 1, 65535, "REDIS_PORT", 0},
    {"redis", "password", K_STR, OFF(redis.password), 0, 0, "REDIS_PASSWORD",
     F_SECRET},
    {"redis", "db", K_INT, OFF(redis.db), 0, 1000000, "REDIS_DB", 0},
    {"redis", "live_data_ttl", K_SECS, OFF(redis.live_data_ttl), 1, 31536000,
     NULL, 0},
    {"redis", "key_prefix", K_STR, OFF(redis.key_prefix), 0, 0, NULL,
     F_NONEMPTY},
    {"redis", "pool_size", K_IGNORED, 0, 0, 0, NULL, 0},
    {"sync", "enabled", K_BOOL, OFF(sync.enabled), 0, 0, NULL, 0},
    {"sync", "max_sync_hours", K_INT, OFF(sync.max_sync_hours), 1, 100000, NULL,
     0},
    {"sync", "batch_size", K_INT, OFF(sync.batch_size), 1, 1000, NULL, 0},
    {"sync", "workers", K_INT, OFF(sync.workers), 1, 100, NULL, 0},
    {"stream", "reconnect_delay", K_SECS, OFF(stream.reconnect_delay), 1, 3600,
     NULL, 0},
    {"stream", "max_reconnect_attempts", K_INT,
     OFF(stream.max_reconnect_attempts), 0, INT_MAX, NULL, 0},
    {"stream", "ping_interval", K_SECS, OFF(stream.ping_interval), 1, 3600,
     NULL, 0},
    {"http", "listen", K_LISTEN, OFF(http.listen), 0, 0, "HTTP_LISTEN", 0},
    {"symbols", "bootstrap", K_SYMBOLS, 0, 0, 0, NULL, 0},
    {"spool", "dir", K_STR, OFF(spool.dir), 0, 0, "SPOOL_DIR", F_NONEMPTY},
    {"spool", "max_bytes", K_LLONG, OFF(spool.max_bytes), 1, LLONG_MAX, NULL,
     0},
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"app",   "binance", "database",
                                       "redis", "sync",    "stream",
                                       "http",  "symbols", "spool"};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static const struct {
  const char *name;
  long long ms;
} intervals[CONFIG_MAX_INTERVALS] = {
    {"1s", 1000LL},      {"1m", 60000LL},
    {"3m", 180000LL},    {"5m", 300000LL},
    {"15m", 900000LL},   {"30m", 1800000LL},
    {"1h", 3600000LL},   {"2h", 7200000LL},
    {"4h", 14400000LL},  {"6h", 21600000LL},
    {"8h", 28800000LL},  {"12h", 43200000LL},
    {"1d", 86400000LL},  {"3d", 259200000LL},
    {"1w", 604800000LL}, {"1M", 0 /* a calendar month has no fixed length */},
};

static const char *const ssl_modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};

static const char *const default_intervals[] = {"1m", "5m", "15m",
                                                "1h", "4h", "1d"};
static const char *const default_symbols[] = {"BTCUSDT", "ETHUSDT"};

/* Where a value came from, for messages: a position in the file or the
 * name of an environment variable. */
struct where {
  const yaml_mark_t *mark;
  const char *env;
};

struct load {
  const char *name;
  const char *text;
  size_t len;
  FILE *warn;
  char *err;
  size_t errlen;
  struct config *cfg;
  yaml_document_t *doc;
  struct buf sub; /* scratch for substitutions */
  char via[128];  /* environment variables the last value came from */
  yaml_mark_t marks[NKEYS];
  unsigned char seen[NKEYS];
};

/* ---- helpers for messages ---- */

/* Copies at most 64 bytes of |s| into |out| with anything unprintable shown
 * as '?', so a value never breaks the one-line error format. */
static const char *printable(const char *s, size_t len, char *out,
                             size_t outlen) {
  size_t i, n = 0;
  for (i = 0; i < len && n + 4 < outlen && i < 64; i++) {
    unsigned char c = (unsigned char)s[i];
    out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (i < len && n + 4 < outlen) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
  return out;
}

static void load_errv(struct load *ld, const struct where *w, const char *fmt,
                      va_list ap) __attribute__((format(printf, 3, 0)));
static void load_errv(struct load *ld, const struct where *w, const char *fmt,
                      va_list ap) {
  char msg[CONFIG_MSG_MAX];
  if (!ld->err || !ld->errlen)
    return;
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (w && w->env)
    snprintf(ld->err, ld->errlen, "%s: environment variable %s: %s", ld->name,
             w->env, msg);
  else if (w && w->mark && ld->via[0])
    snprintf(ld->err, ld->errlen,
             "%s:%zu:%zu: %s (value from environment "
             "variable %s)",
             ld->name, w->mark->line + 1, w->mark->column + 1, msg, ld->via);
  else if (w && w->mark)
    snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name, w->mark->line + 1,
             w->mark->column + 1, msg);
  else
    snprintf(ld->err, ld->errlen, "%s: %s", ld->name, msg);
}

static int load_err(struct load *ld, const struct where *w, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
static int load_err(struct load *ld, const struct where *w, const char *fmt,
                    ...) {
  va_list ap;
  va_start(ap, fmt);
  load_errv(ld, w, fmt, ap);
  va_end(ap);
  return BL_ECONFIG;
}

static void load_warn(struct load *ld, const struct where *w, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));
static void load_warn(struct load *ld, const struct where *w, const char *fmt,
                      ...) {
  char msg[CONFIG_MSG_MAX];
  va_list ap;
  if (!ld->warn)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w && w->env)
    fprintf(ld->warn, "%s: warning: environment variable %s: %s\n", ld->name,
            w->env, msg);
  else if (w && w->mark)
    fprintf(ld->warn, "%s:%zu:%zu: warning: %s\n", ld->name, w->mark->line + 1,
            w->mark->column + 1, msg);
  else
    fprintf(ld->warn, "%s: warning: %s\n", ld->name, msg);
}

/* ---- defaults and freeing ---- */

static int set_str(char **field, const char *value, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy)
    return BL_ENOMEM;
  memcpy(copy, value, len);
  copy[len] = '\0';
  free(*field);
  *field = copy;
  return 0;
}

void config_free(struct config *cfg) {
  if (!cfg)
    return;
  free(cfg->path);
  for (size_t i = 0; i < NKEYS; i++)
    if (keys[i].type == K_STR || keys[i].type == K_HTTP_URL ||
        keys[i].type == K_WS_URL || keys[i].type == K_SSLMODE ||
        keys[i].type == K_LISTEN)
      free(*(char **)((char *)cfg + keys[i].off));
  for (int i = 0; i < cfg->binance.n_kline_intervals; i++)
    free(cfg->binance.kline_intervals[i]);
  for (int i = 0; i < cfg->symbols.n_bootstrap; i++)
    free(cfg->symbols.bootstrap[i]);
  memset(cfg, 0, sizeof *cfg);
}

int config_defaults(struct config *cfg) {
  int rv = 0;
  memset(cfg, 0, sizeof *cfg);
#define DSTR(f, v)                                                             \
  if (!rv)                                                                     \
  rv = set_str(&cfg->f, v, strlen(v))
  DSTR(app.name, "binance-live");
  DSTR(app.environment, "production");
  DSTR(binance.api_url, "https://api.binance.com");
  DSTR(binance.ws_url, "wss://stream.binance.com:9443");
  DSTR(database.host, "localhost");
  DSTR(database.user, "postgres");
  DSTR(database.password, "");
  DSTR(database.database, "binance_data");
  DSTR(database.ssl_mode, "prefer");
  DSTR(redis.host, "localhost");
  DSTR(redis.password, "");
  DSTR(redis.key_prefix, "binance");
  DSTR(http.listen, "127.0.0.1:8080");
  DSTR(spool.dir, "./var/spool");
#undef DSTR
  for (size_t i = 0; !rv && i < sizeof default_intervals / sizeof(char *);
       i++) {
    rv = set_str(&cfg->binance.kline_intervals[i], default_intervals[i],
                 strlen(default_intervals[i]));
    if (!rv)
      cfg->binance.n_kline_intervals++;
  }
  for (size_t i = 0; !rv && i < sizeof default_symbols / sizeof(char *); i++) {
    rv = set_str(&cfg->symbols.bootstrap[i], default_symbols[i],
                 strlen(default_symbols[i]));
    if (!rv)
      cfg->symbols.n_bootstrap++;
  }
  if (rv) {
    config_free(cfg);
    return rv;
  }
  cfg->app.log_level = BL_LOG_INFO;
  cfg->app.log_format = BL_LOG_AUTO;
  cfg->binance.ca_file = NULL;
  cfg->binance.rest_rate_limit = 6000;
  cfg->binance.streams.kline = 1;
  cfg->binance.streams.ticker = 1;
  cfg->binance.streams.depth = 1;
  cfg->binance.streams.trade = 1;
  cfg->binance.depth_levels = 20;
  cfg->binance.depth_snapshot_interval = 10;
  cfg->binance.depth_snapshot_limit = 1000;
  cfg->binance.max_streams_per_connection = 200;
  cfg->database.port = 5432;
  cfg->database.batch_size = 1000;
  cfg->database.flush_interval_ms = 200;
  cfg->database.migrate = 1;
  cfg->redis.port = 6379;
  cfg->redis.db = 0;
  cfg->redis.live_data_ttl = 60;
  cfg->sync.enabled = 1;
  cfg->sync.max_sync_hours = 24;
  cfg->sync.batch_size = 1000;
  cfg->sync.workers = 5;
  cfg->stream.reconnect_delay = 1;
  cfg->stream.max_reconnect_attempts = 0;
  cfg->stream.ping_interval = 30;
  cfg->spool.max_bytes = 1073741824LL;
  return 0;
}

/* ---- intervals ---- */

int config_interval_valid(const char *interval) {
  if (!interval)
    return 0;
  for (int i = 0; i < CONFIG_MAX_INTERVALS; i++)
    if (!strcmp(intervals[i].name, interval))
      return 1;
  return 0;
}

long long config_interval_ms(const char *interval) {
  if (!interval)
    return 0;
  for (int i = 0; i < CONFIG_MAX_INTERVALS; i++)
    if (!strcmp(intervals[i].name, interval))
      return intervals[i].ms;
  return 0;
}

/* ---- substitution ---- */

static int is_null_scalar(const yaml_node_t *n) {
  const char *v = (const char *)n->data.scalar.value;
  size_t len = n->data.scalar.length;
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  return len == 0 || (len == 1 && v[0] == '~') ||
         (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) ||
                       !memcmp(v, "NULL", 4)));
}

/* Replaces ${VAR} and ${VAR:default} in |in| and leaves the result,
 * NUL-terminated, in ld->sub. */
static int substitute(struct load *ld, const char *in, size_t len,
                      const struct where *w) {
  struct buf *out = &ld->sub;
  int rv = 0;
  buf_reset(out);
  ld->via[0] = '\0';
  for (size_t i = 0; i < len && !rv; i++) {
    const char *close, *colon, *value;
    char name[128];
    size_t nlen;
    if (in[i] != '$' || i + 1 >= len || in[i + 1] != '{') {
      rv = buf_append_char(out, in[i]);
      continue;
    }
    close = memchr(in + i + 2, '}', len - i - 2);
    if (!close)
      return load_err(ld, w, "unterminated '${' in value (missing '}')");
    colon = memchr(in + i + 2, ':', (size_t)(close - (in + i + 2)));
    nlen = (size_t)((colon ? colon : close) - (in + i + 2));
    if (nlen == 0 || nlen >= sizeof name ||
        !(isalpha((unsigned char)in[i + 2]) || in[i + 2] == '_'))
      return load_err(ld, w, "bad variable name in '${...}'");
    for (size_t k = 0; k < nlen; k++) {
      unsigned char c = (unsigned char)in[i + 2 + k];
      if (!isalnum(c) && c != '_')
        return load_err(ld, w, "bad variable name in '${...}'");
    }
    memcpy(name, in + i + 2, nlen);
    name[nlen] = '\0';
    value = getenv(name);
    if (value && *value) {
      size_t used = strlen(ld->via);
      rv = buf_append_str(out, value);
      if (used + nlen + 2 < sizeof ld->via) {
        if (used)
          ld->via[used++] = ',';
        memcpy(ld->via + used, name, nlen + 1);
      }
    } else if (colon)
      rv = buf_append(out, colon + 1, (size_t)(close - colon - 1));
    else if (!value)
      load_warn(ld, w,
                "environment variable '%s' is not set; using an empty "
                "string",
                name);
    i = (size_t)(close - in);
  }
  if (rv == BL_ETOOBIG)
    return load_err(ld, w, "value longer than %d bytes", CONFIG_VALUE_MAX);
  if (rv)
    return load_err(ld, w, "out of memory");
  if (!out->data && (rv = buf_reserve(out, 1)) != 0)
    return load_err(ld, w, "out of memory");
  out->data[out->len] = '\0';
  return 0;
}

/* ---- scalar values ---- */

static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "yes", "on"};
  static const char *const no[] = {"false", "no", "off"};
  for (int i = 0; i < 3; i++) {
    if (!strcasecmp(s, yes[i])) {
      *out = 1;
      return 0;
    }
    if (!strcasecmp(s, no[i])) {
      *out = 0;
      return 0;
    }
  }
  return BL_EINVAL;
}

/* Parses a decimal integer with the unit suffixes that |type| allows. */
static int parse_number(const char *s, enum key_type type, long long *out) {
  char *end;
  long long v, mult = 1;
  if (!(isdigit((unsigned char)s[0]) ||
        ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
    return BL_EINVAL;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno == ERANGE)
    return BL_ETOOBIG;
  if (*end) {
    if (type == K_SECS && !strcmp(end, "s"))
      mult = 1;
    else if (type == K_SECS && !strcmp(end, "m"))
      mult = 60;
    else if (type == K_SECS && !strcmp(end, "h"))
      mult = 3600;
    else if (type == K_MS && !strcmp(end, "ms"))
      mult = 1;
    else if (type == K_MS && !strcmp(end, "s"))
      mult = 1000;
    else if (type == K_MS && !strcmp(end, "m"))
      mult = 60000;
    else
      return BL_EINVAL;
  }
  if (v > LLONG_MAX / mult || v < LLONG_MIN / mult)
    return BL_ETOOBIG;
  *out = v * mult;
  return 0;
}

static int check_url(const char *s, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  const char *host;
  if (!strncasecmp(s, a, la))
    host = s + la;
  else if (!strncasecmp(s, b, lb))
    host = s + lb;
  else
    return BL_EINVAL;
  if (!*host || *host == '/' || *host == ':')
    return BL_EINVAL;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return BL_EINVAL;
  return 0;
}

/* host:port, the host a name, an IPv4 address or [IPv6]. */
static int check_listen(const char *s) {
  const char *colon = strrchr(s, ':');
  char *end;
  long port;
  if (!colon || colon == s || !colon[1])
    return BL_EINVAL;
  if (s[0] == '[' && colon[-1] != ']')
    return BL_EINVAL;
  if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)))
    return BL_EINVAL;
  for (const char *p = s; p < colon; p++)
    if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7f)
      return BL_EINVAL;
  if (!isdigit((unsigned char)colon[1]))
    return BL_EINVAL;
  errno = 0;
  port = strtol(colon + 1, &end, 10);
  if (errno || *end || port < 1 || port > 65535)
    return BL_EINVAL;
  return 0;
}

/* Applies one scalar value (already substituted, NUL-terminated, |len|
 * bytes) to the key |kd|. */
static int apply_scalar(struct load *ld, const struct key_def *kd,
                        const char *v, size_t len, const struct where *w) {
  void *field = (char *)ld->cfg + kd->off;
  char shown[96];
  long long n;
  int rv, x;

  if (strlen(v) != len)
    return load_err(ld, w, "%s.%s must not contain a NUL byte", kd->section,
                    kd->name);
  printable(v, len, shown, sizeof shown);
  if (kd->flags & F_SECRET)
    snprintf(shown, sizeof shown, "********");

  switch (kd->type) {
  case K_INT:
  case K_SECS:
  case K_MS:
  case K_LLONG:
    rv = parse_number(v, kd->type, &n);
    if (rv == BL_EINVAL)
      return load_err(
          ld, w, "%s.%s: expected %s, got '%s'", kd->section, kd->name,
          kd->type == K_SECS ? "a number of seconds (e.g. 30 or 30s)"
          : kd->type == K_MS ? "a number of milliseconds (e.g. 200 or 200ms)"
                             : "an integer",
          shown);
    if (rv || n < kd->min || n > kd->max)
      return load_err(ld, w, "%s.%s must be between %lld and %lld, got '%s'",
                      kd->section, kd->name, kd->min, kd->max, shown);
    if (kd->type == K_LLONG)
      *(long long *)field = n;
    else
      *(int *)field = (int)n;
    return 0;
  case K_BOOL:
    if (parse_bool(v, &x))
      return load_err(ld, w,
                      "%s.%s: expected a boolean (true/false/yes/no/on/off), "
                      "got '%s'",
                      kd->section, kd->name, shown);
    *(int *)field = x;
    return 0;
  case K_LEVEL:
    x = log_level_parse(v);
    if (x < 0)
      return load_err(ld, w,
                      "%s.%s: unknown log level '%s' (debug, info, warn, "
                      "error)",
                      kd->section, kd->name, shown);
    *(int *)field = x;
    return 0;
  case K_FORMAT:
    x = log_format_parse(v);
    if (x < 0)
      return load_err(ld, w,
                      "%s.%s: unknown log format '%s' (json, text, auto)",
                      kd->section, kd->name, shown);
    *(int *)field = x;
    return 0;
  case K_HTTP_URL:
  case K_WS_URL:
    if (kd->type == K_HTTP_URL ? check_url(v, "http://", "https://")
                               : check_url(v, "ws://", "wss://"))
      return load_err(
          ld, w, "%s.%s: expected a %s URL, got '%s'", kd->section, kd->name,
          kd->type == K_HTTP_URL ? "http:// or https://" : "ws:// or wss://",
          shown);
    while (len > 0 && v[len - 1] == '/')
      len--; /* modules append paths that start with '/' */
    break;
  case K_SSLMODE:
    for (x = 0; x < 6; x++)
      if (!strcmp(v, ssl_modes[x]))
        break;
    if (x == 6)
      return load_err(ld, w,
                      "%s.%s: unknown ssl mode '%s' (disable, allow, prefer, "
                      "require, verify-ca, verify-full)",
                      kd->section, kd->name, shown);
    break;
  case K_LISTEN:
    if (check_listen(v))
      return load_err(ld, w,
                      "%s.%s: expected host:port with a port 1..65535, got "
                      "'%s'",
                      kd->section, kd->name, shown);
    break;
  case K_STR:
    if (!len && (kd->flags & F_NONEMPTY))
      return load_err(ld, w, "%s.%s must not be empty", kd->section, kd->name);
    if (!len && (kd->flags & F_NULLABLE)) {
      free(*(char **)field);
      *(char **)field = NULL;
      return 0;
    }
    break;
  default:
    return load_err(ld, w, "%s.%s: expected a list or a mapping", kd->section,
                    kd->name);
  }
  if (set_str((char **)field, v, len))
    return load_err(ld, w, "out of memory");
  return 0;
}

/* ---- nodes ---- */

static const char *node_kind(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}

/* Checks one list item of binance.kline_intervals or symbols.bootstrap
 * and returns a copy of its value in |*out| (NULL when it is a duplicate
 * of an earlier item, after a warning). */
static int list_item(struct load *ld, const struct key_def *kd,
                     const yaml_node_t *item, char **have, int nhave,
                     char **out) {
  struct where w = {&item->start_mark, NULL};
  char shown[96];
  char *v;
  size_t len;
  int rv;

  *out = NULL;
  if (item->type != YAML_SCALAR_NODE)
    return load_err(ld, &w, "%s.%s: expected a string item, got %s",
                    kd->section, kd->name, node_kind(item));
  rv = substitute(ld, (const char *)item->data.scalar.value,
                  item->data.scalar.length, &w);
  if (rv)
    return rv;
  v = ld->sub.data;
  len = ld->sub.len;
  printable(v, len, shown, sizeof shown);
  if (strlen(v) != len || !len)
    return load_err(ld, &w, "%s.%s: empty or bad item '%s'", kd->section,
                    kd->name, shown);
  if (kd->type == K_INTERVALS) {
    if (!config_interval_valid(v))
      return load_err(ld, &w,
                      "unknown kline interval '%s' (one of 1s 1m 3m 5m 15m "
                      "30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)",
                      shown);
  } else {
    if (len > CONFIG_SYMBOL_MAX)
      return load_err(ld, &w, "symbol '%s' is longer than %d bytes", shown,
                      CONFIG_SYMBOL_MAX);
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)v[i];
      if (c <= ' ' || c == 0x7f || c == '/' || c == '"' || c == '\'' ||
          c == '\\' || c == ',')
        return load_err(ld, &w, "bad symbol '%s'", shown);
      v[i] = (char)toupper(c);
    }
  }
  for (int i = 0; i < nhave; i++)
    if (!strcmp(have[i], v)) {
      load_warn(ld, &w, "duplicate %s '%s' in %s.%s ignored",
                kd->type == K_INTERVALS ? "kline interval" : "symbol", v,
                kd->section, kd->name);
      return 0;
    }
  *out = strdup(v);
  if (!*out)
    return load_err(ld, &w, "out of memory");
  return 0;
}

static int apply_list(struct load *ld, const struct key_def *kd,
                      const yaml_node_t *node) {
  struct where w = {&node->start_mark, NULL};
  int max =
      kd->type == K_INTERVALS ? CONFIG_MAX_INTERVALS : CONFIG_MAX_BOOTSTRAP;
  char **list = kd->type == K_INTERVALS ? ld->cfg->binance.kline_intervals
                                        : ld->cfg->symbols.bootstrap;
  int *count = kd->type == K_INTERVALS ? &ld->cfg->binance.n_kline_intervals
                                       : &ld->cfg->symbols.n_bootstrap;
  char **tmp;
  int n = 0, rv = 0;

  if (node->type != YAML_SEQUENCE_NODE)
    return load_err(ld, &w, "%s.%s: expected a list, got %s", kd->section,
                    kd->name, node_kind(node));
  tmp = calloc((size_t)max, sizeof *tmp);
  if (!tmp)
    return load_err(ld, &w, "out of memory");
  for (yaml_node_item_t *it = node->data.sequence.items.start;
       it < node->data.sequence.items.top; it++) {
    const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
    char *copy;
    if (!item)
      continue;
    rv = list_item(ld, kd, item, tmp, n, &copy);
    if (rv)
      break;
    if (!copy)
      continue;
    if (n == max) {
      free(copy);
      w.mark = &item->start_mark;
      rv = load_err(ld, &w, "%s.%s has more than %d items", kd->section,
                    kd->name, max);
      break;
    }
    tmp[n++] = copy;
  }
  if (rv) {
    for (int i = 0; i < n; i++)
      free(tmp[i]);
    free(tmp);
    return rv;
  }
  for (int i = 0; i < *count; i++) {
    free(list[i]);
    list[i] = NULL;
  }
  memcpy(list, tmp, (size_t)n * sizeof *tmp);
  *count = n;
  free(tmp);
  return 0;
}

static int apply_streams(struct load *ld, const struct key_def *kd,
                         const yaml_node_t *node) {
  static const char *const names[] = {"kline", "ticker", "depth", "trade"};
  struct where w = {&node->start_mark, NULL};
  int *flags[4];
  unsigned seen = 0;

  flags[0] = &ld->cfg->binance.streams.kline;
  flags[1] = &ld->cfg->binance.streams.ticker;
  flags[2] = &ld->cfg->binance.streams.depth;
  flags[3] = &ld->cfg->binance.streams.trade;
  if (node->type != YAML_MAPPING_NODE)
    return load_err(ld, &w, "%s.%s: expected a mapping, got %s", kd->section,
                    kd->name, node_kind(node));
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
       p < node->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
    const char *name;
    int i, b, rv;
    ld->via[0] = '\0';
    if (!k || !v)
      continue;
    w.mark = &k->start_mark;
    if (k->type != YAML_SCALAR_NODE)
      return load_err(ld, &w, "%s.%s: keys must be strings", kd->section,
                      kd->name);
    name = (const char *)k->data.scalar.value;
    for (i = 0; i < 4; i++)
      if (!strcmp(name, names[i]))
        break;
    if (i == 4) {
      char shown[96];
      load_warn(ld, &w, "unknown key '%s.%s.%s'", kd->section, kd->name,
                printable(name, k->data.scalar.length, shown, sizeof shown));
      continue;
    }
    if (seen & (1u << i))
      return load_err(ld, &w, "duplicate key '%s.%s.%s'", kd->section, kd->name,
                      names[i]);
    seen |= 1u << i;
    w.mark = &v->start_mark;
    if (is_null_scalar(v))
      continue;
    if (v->type != YAML_SCALAR_NODE)
      return load_err(ld, &w, "%s.%s.%s: expected a boolean, got %s",
                      kd->section, kd->name, names[i], node_kind(v));
    rv = substitute(ld, (const char *)v->data.scalar.value,
                    v->data.scalar.length, &w);
    if (rv)
      return rv;
    if (parse_bool(ld->sub.data, &b)) {
      char shown[96];
      return load_err(
          ld, &w,
          "%s.%s.%s: expected a boolean (true/false/yes/no/on/off), got '%s'",
          kd->section, kd->name, names[i],
          printable(ld->sub.data, ld->sub.len, shown, sizeof shown));
    }
    *flags[i] = b;
  }
  return 0;
}

static int apply_node(struct load *ld, size_t idx, const yaml_node_t *key,
                      const yaml_node_t *node) {
  const struct key_def *kd = &keys[idx];
  struct where w = {&node->start_mark, NULL};
  int rv;

  if (kd->type == K_IGNORED) {
    w.mark = &key->start_mark;
    load_warn(ld, &w,
              "key '%s.%s' is ignored (a setting of the Go original that "
              "does not apply to binance-live)",
              kd->section, kd->name);
    return 0;
  }
  if (is_null_scalar(node))
    return 0; /* keep the default */
  if (kd->type == K_INTERVALS || kd->type == K_SYMBOLS)
    return apply_list(ld, kd, node);
  if (kd->type == K_STREAMS)
    return apply_streams(ld, kd, node);
  if (node->type != YAML_SCALAR_NODE)
    return load_err(ld, &w, "%s.%s: expected a scalar value, got %s",
                    kd->section, kd->name, node_kind(node));
  rv = substitute(ld, (const char *)node->data.scalar.value,
                  node->data.scalar.length, &w);
  if (rv)
    return rv;
  return apply_scalar(ld, kd, ld->sub.data, ld->sub.len, &w);
}

static int walk_section(struct load *ld, const char *section,
                        const yaml_node_t *map) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
    struct where w;
    const char *name;
    char shown[96];
    size_t i;
    int rv;
    ld->via[0] = '\0';
    if (!k || !v)
      continue;
    w.mark = &k->start_mark;
    w.env = NULL;
    if (k->type != YAML_SCALAR_NODE)
      return load_err(ld, &w, "keys in '%s' must be strings, got %s", section,
                      node_kind(k));
    name = (const char *)k->data.scalar.value;
    for (i = 0; i < NKEYS; i++)
      if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
        break;
    if (i == NKEYS) {
      load_warn(ld, &w, "unknown key '%s.%s'", section,
                printable(name, k->data.scalar.length, shown, sizeof shown));
      continue;
    }
    if (ld->seen[i])
      return load_err(ld, &w, "duplicate key '%s.%s'", section, name);
    ld->seen[i] = 1;
    ld->marks[i] = v->start_mark;
    rv = apply_node(ld, i, k, v);
    if (rv)
      return rv;
  }
  return 0;
}

static int walk_root(struct load *ld) {
  const yaml_node_t *root = yaml_document_get_root_node(ld->doc);
  unsigned char seen[NSECTIONS] = {0};
  struct where w = {NULL, NULL};

  if (!root || is_null_scalar(root))
    return 0; /* an empty file: every default */
  w.mark = &root->start_mark;
  if (root->type != YAML_MAPPING_NODE)
    return load_err(ld, &w,
                    "expected a mapping of sections (app, binance, "
                    "database, ...) at the top level, got %s",
                    node_kind(root));
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
       p < root->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
    const char *name;
    char shown[96];
    size_t i;
    int rv;
    ld->via[0] = '\0';
    if (!k || !v)
      continue;
    w.mark = &k->start_mark;
    if (k->type != YAML_SCALAR_NODE)
      return load_err(ld, &w, "top-level keys must be strings, got %s",
                      node_kind(k));
    name = (const char *)k->data.scalar.value;
    for (i = 0; i < NSECTIONS; i++)
      if (!strcmp(sections[i], name))
        break;
    if (i == NSECTIONS) {
      load_warn(ld, &w, "unknown key '%s'",
                printable(name, k->data.scalar.length, shown, sizeof shown));
      continue;
    }
    if (seen[i])
      return load_err(ld, &w, "duplicate key '%s'", name);
    seen[i] = 1;
    if (is_null_scalar(v))
      continue;
    w.mark = &v->start_mark;
    if (v->type != YAML_MAPPING_NODE)
      return load_err(ld, &w, "'%s' must be a mapping, got %s", name,
                      node_kind(v));
    rv = walk_section(ld, name, v);
    if (rv)
      return rv;
  }
  return 0;
}

/* ---- the environment and checks across keys ---- */

static int apply_env(struct load *ld) {
  for (size_t i = 0; i < NKEYS; i++) {
    struct where w = {NULL, keys[i].env};
    const char *v;
    int rv;
    if (!keys[i].env)
      continue;
    v = getenv(keys[i].env);
    if (!v || !*v)
      continue;
    rv = apply_scalar(ld, &keys[i], v, strlen(v), &w);
    if (rv)
      return rv;
  }
  return 0;
}

static size_t key_index(const char *section, const char *name) {
  for (size_t i = 0; i < NKEYS; i++)
    if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
      return i;
  return NKEYS;
}

static int check_all(struct load *ld) {
  const struct config *cfg = ld->cfg;
  struct where w = {NULL, NULL};
  size_t i;

  ld->via[0] = '\0';
  if (cfg->binance.streams.kline && cfg->binance.n_kline_intervals == 0) {
    i = key_index("binance", "kline_intervals");
    w.mark = i < NKEYS && ld->seen[i] ? &ld->marks[i] : NULL;
    return load_err(ld, &w,
                    "binance.kline_intervals is empty while "
                    "binance.streams.kline is true");
  }
  if (cfg->binance.depth_levels > cfg->binance.depth_snapshot_limit) {
    /* Point at whichever of the two the file set, depth_levels first. */
    i = key_index("binance", "depth_levels");
    if (i < NKEYS && !ld->seen[i])
      i = key_index("binance", "depth_snapshot_limit");
    w.mark = i < NKEYS && ld->seen[i] ? &ld->marks[i] : NULL;
    return load_err(ld, &w,
                    "binance.depth_levels (%d) exceeds "
                    "binance.depth_snapshot_limit (%d)",
                    cfg->binance.depth_levels,
                    cfg->binance.depth_snapshot_limit);
  }
  return 0;
}

/* ---- loading ---- */

/* Turns a byte offset into a position (reader errors carry no mark). */
static yaml_mark_t offset_mark(const char *text, size_t len, size_t off) {
  yaml_mark_t m = {0, 0, 0};
  if (off > len)
    off = len;
  m.index = off;
  for (size_t i = 0; i < off; i++) {
    if (text[i] == '\n') {
      m.line++;
      m.column = 0;
    } else {
      m.column++;
    }
  }
  return m;
}

static int yaml_failure(struct load *ld, const yaml_parser_t *parser) {
  struct where w = {NULL, NULL};
  yaml_mark_t m;
  const char *problem = parser->problem ? parser->problem : "unknown error";

  if (parser->error == YAML_MEMORY_ERROR) {
    load_err(ld, NULL, "out of memory while parsing");
    return BL_ENOMEM;
  }
  if (parser->error == YAML_READER_ERROR) {
    m = offset_mark(ld->text, ld->len, parser->problem_offset);
    w.mark = &m;
    return load_err(ld, &w, "not a YAML text: %s", problem);
  }
  w.mark = &parser->problem_mark;
  if (parser->context)
    return load_err(ld, &w,
                    "invalid YAML: %s (%s started at line %zu, column %zu)",
                    problem, parser->context, parser->context_mark.line + 1,
                    parser->context_mark.column + 1);
  return load_err(ld, &w, "invalid YAML: %s", problem);
}

static int parse_and_apply(struct load *ld) {
  yaml_parser_t parser;
  yaml_document_t doc, extra;
  int rv;

  if (!yaml_parser_initialize(&parser))
    return load_err(ld, NULL, "out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text,
                               ld->len);
  if (!yaml_parser_load(&parser, &doc)) {
    rv = yaml_failure(ld, &parser);
    yaml_parser_delete(&parser);
    return rv;
  }
  ld->doc = &doc;
  rv = walk_root(ld);
  ld->doc = NULL;
  if (!rv) {
    if (!yaml_parser_load(&parser, &extra)) {
      rv = yaml_failure(ld, &parser);
    } else {
      const yaml_node_t *root = yaml_document_get_root_node(&extra);
      if (root) {
        struct where w = {&extra.start_mark, NULL};
        rv = load_err(ld, &w, "more than one YAML document in the file");
      }
      yaml_document_delete(&extra);
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rv;
}

int config_load_string(struct config *cfg, const char *yaml, size_t len,
                       const char *name, FILE *warn, char *err, size_t errlen) {
  struct load ld;
  int rv;

  if (err && errlen)
    err[0] = '\0';
  memset(&ld, 0, sizeof ld);
  ld.name = name ? name : "<string>";
  ld.text = yaml ? yaml : "";
  ld.len = yaml ? len : 0;
  ld.warn = warn;
  ld.err = err;
  ld.errlen = errlen;
  ld.cfg = cfg;
  buf_init(&ld.sub, CONFIG_VALUE_MAX);

  rv = config_defaults(cfg);
  if (rv) {
    load_err(&ld, NULL, "out of memory");
    return rv;
  }
  rv = parse_and_apply(&ld);
  if (!rv)
    rv = apply_env(&ld);
  if (!rv)
    rv = check_all(&ld);
  if (!rv && !(cfg->path = strdup(ld.name)))
    rv = load_err(&ld, NULL, "out of memory");
  buf_free(&ld.sub);
  if (rv) {
    config_free(cfg);
    return rv;
  }
  log_add_secret(cfg->database.password);
  log_add_secret(cfg->redis.password);
  return 0;
}

int config_load(struct config *cfg, const char *path, FILE *warn, char *err,
                size_t errlen) {
  char *text = NULL;
  size_t len = 0, cap = 0;
  FILE *f;
  int rv;

  memset(cfg, 0, sizeof *cfg);
  if (err && errlen)
    err[0] = '\0';
  if (!path || !*path) {
    path = getenv("BINANCE_LIVE_CONFIG");
    if (!path || !*path)
      path = CONFIG_DEFAULT_PATH;
  }
  f = fopen(path, "rb");
  if (!f) {
    if (err && errlen)
      snprintf(err, errlen, "%s: cannot open the configuration file: %s", path,
               strerror(errno));
    return BL_EIO;
  }
  for (;;) {
    size_t n;
    if (len == cap) {
      char *p;
      if (cap >= CONFIG_FILE_MAX) {
        fclose(f);
        free(text);
        if (err && errlen)
          snprintf(err, errlen, "%s: larger than %u bytes", path,
                   CONFIG_FILE_MAX);
        return BL_ECONFIG;
      }
      cap = cap ? cap * 2 : 8192;
      p = realloc(text, cap + 1);
      if (!p) {
        fclose(f);
        free(text);
        if (err && errlen)
          snprintf(err, errlen, "%s: out of memory", path);
        return BL_ENOMEM;
      }
      text = p;
    }
    n = fread(text + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    free(text);
    if (err && errlen)
      snprintf(err, errlen, "%s: cannot read the configuration file: %s", path,
               strerror(e));
    return BL_EIO;
  }
  fclose(f);
  if (len > CONFIG_FILE_MAX) {
    free(text);
    if (err && errlen)
      snprintf(err, errlen, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
    return BL_ECONFIG;
  }
  rv = config_load_string(cfg, text ? text : "", len, path, warn, err, errlen);
  free(text);
  return rv;
}

/* ---- printing ---- */

/* Writes |s| as a double-quoted YAML scalar. */
static void dump_quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", out);
    else if (*p == '\t')
      fputs("\\t", out);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

int config_dump_yaml(const struct config *cfg, FILE *out) {
  static const char *const formats[] = {"auto", "json", "text"};
  const char *section = NULL;

  fputs("# binance-live effective configuration", out);
  if (cfg->path) {
    fputs(" (from ", out);
    for (const char *p = cfg->path; *p; p++)
      fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
    fputc(')', out);
  }
  fputc('\n', out);
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key_def *kd = &keys[i];
    const void *field = (const char *)cfg + kd->off;
    if (kd->type == K_IGNORED)
      continue;
    if (!section || strcmp(section, kd->section)) {
      section = kd->section;
      fprintf(out, "%s:\n", section);
    }
    fprintf(out, "  %s:", kd->name);
    switch (kd->type) {
    case K_INT:
    case K_SECS:
    case K_MS:
      fprintf(out, " %d\n", *(const int *)field);
      break;
    case K_LLONG:
      fprintf(out, " %lld\n", *(const long long *)field);
      break;
    case K_BOOL:
      fprintf(out, " %s\n", *(const int *)field ? "true" : "false");
      break;
    case K_LEVEL:
      fprintf(out, " %s\n", log_level_name(*(const int *)field));
      break;
    case K_FORMAT: {
      int f = *(const int *)field;
      fprintf(out, " %s\n", f >= 0 && f <= 2 ? formats[f] : "auto");
      break;
    }
    case K_INTERVALS:
    case K_SYMBOLS: {
      char *const *list = kd->type == K_INTERVALS ? cfg->binance.kline_intervals
                                                  : cfg->symbols.bootstrap;
      int n = kd->type == K_INTERVALS ? cfg->binance.n_kline_intervals
                                      : cfg->symbols.n_bootstrap;
      fputs(" [", out);
      for (int k = 0; k < n; k++) {
        if (k)
          fputs(", ", out);
        dump_quoted(out, list[k]);
      }
      fputs("]\n", out);
      break;
    }
    case K_STREAMS:
      fprintf(out,
              "\n    kline: %s\n    ticker: %s\n    depth: %s\n"
              "    trade: %s\n",
              cfg->binance.streams.kline ? "true" : "false",
              cfg->binance.streams.ticker ? "true" : "false",
              cfg->binance.streams.depth ? "true" : "false",
              cfg->binance.streams.trade ? "true" : "false");
      break;
    default: {
      const char *s = *(char *const *)field;
      if (kd->flags & F_SECRET) {
        fputs(" \"********\"\n", out);
      } else if (!s) {
        fputs(" null\n", out);
      } else {
        fputc(' ', out);
        dump_quoted(out, s);
        fputc('\n', out);
      }
      break;
    }
    }
  }
  fflush(out);
  return ferror(out) ? BL_EIO : 0;
}
