/*
 * log.c: formats log lines (JSON or text), filters by level, redacts
 * registered secrets and writes each line to stderr with one write(2).
 *
 * State: the level, format, app and environment names, the secret list and
 * an optional test sink. All of it is process-global, set once at start-up
 * from the configuration; the service is single-threaded.
 */
#include "core/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

#define BL_LOG_MAX_SECRETS 16

static struct {
  int level;
  int format; /* resolved: BL_LOG_JSON or BL_LOG_TEXT */
  char app[64];
  char env[64];
  char *secrets[BL_LOG_MAX_SECRETS];
  int nsecrets;
  log_sink_fn sink;
  void *sink_arg;
} logger = {BL_LOG_INFO, 0, "binance-live", "production", {0}, 0, NULL, NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int resolve_format(int format) {
  if (format == BL_LOG_AUTO)
    return isatty(STDERR_FILENO) ? BL_LOG_TEXT : BL_LOG_JSON;
  return format;
}

void log_setup(int level, int format, const char *app, const char *env) {
  logger.level = level;
  logger.format = resolve_format(format);
  if (app)
    snprintf(logger.app, sizeof logger.app, "%s", app);
  if (env)
    snprintf(logger.env, sizeof logger.env, "%s", env);
}

int log_level_parse(const char *name) {
  if (!name)
    return BL_EINVAL;
  if (!strcasecmp(name, "debug"))
    return BL_LOG_DEBUG;
  if (!strcasecmp(name, "info"))
    return BL_LOG_INFO;
  if (!strcasecmp(name, "warn") || !strcasecmp(name, "warning"))
    return BL_LOG_WARN;
  if (!strcasecmp(name, "error"))
    return BL_LOG_ERROR;
  return BL_EINVAL;
}

int log_format_parse(const char *name) {
  if (!name)
    return BL_EINVAL;
  if (!strcasecmp(name, "json"))
    return BL_LOG_JSON;
  if (!strcasecmp(name, "text"))
    return BL_LOG_TEXT;
  if (!strcasecmp(name, "auto"))
    return BL_LOG_AUTO;
  return BL_EINVAL;
}

const char *log_level_name(int level) {
  if (level < BL_LOG_DEBUG || level > BL_LOG_ERROR)
    return "off";
  return level_names[level];
}

int log_add_secret(const char *secret) {
  char *copy;
  if (!secret || !*secret)
    return 0;
  for (int i = 0; i < logger.nsecrets; i++)
    if (!strcmp(logger.secrets[i], secret))
      return 0;
  if (logger.nsecrets == BL_LOG_MAX_SECRETS)
    return BL_EFULL;
  copy = strdup(secret);
  if (!copy)
    return BL_ENOMEM;
  logger.secrets[logger.nsecrets++] = copy;
  return 0;
}

void log_clear_secrets(void) {
  for (int i = 0; i < logger.nsecrets; i++)
    free(logger.secrets[i]);
  logger.nsecrets = 0;
}

int log_enabled(int level) {
  return level >= logger.level;
}

void log_set_sink(log_sink_fn sink, void *arg) {
  logger.sink = sink;
  logger.sink_arg = arg;
}

/* Replaces every registered secret in |s| (NUL-terminated, in a buffer of
 * |cap| bytes) by asterisks, in place. */
static void redact(char *s, size_t cap) {
  static const char mask[] = "********";
  for (int i = 0; i < logger.nsecrets; i++) {
    const char *secret = logger.secrets[i];
    size_t slen = strlen(secret);
    char *hit = s;
    while ((hit = strstr(hit, secret)) != NULL) {
      size_t len = strlen(s);
      size_t tail = len - (size_t)(hit - s) - slen;
      size_t mlen = sizeof mask - 1;
      if ((size_t)(hit - s) + mlen + tail + 1 > cap)
        mlen = slen; /* no room to grow: mask in place */
      memmove(hit + mlen, hit + slen, tail + 1);
      memset(hit, '*', mlen);
      hit += mlen;
    }
  }
}

/* Appends |s| to |out| as the body of a JSON string. */
static size_t json_escape(char *out, size_t cap, size_t at, const char *s) {
  static const char hex[] = "0123456789abcdef";
  for (; *s && at + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[at++] = '\\';
      out[at++] = (char)c;
    } else if (c == '\n') {
      out[at++] = '\\';
      out[at++] = 'n';
    } else if (c == '\t') {
      out[at++] = '\\';
      out[at++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      out[at++] = '\\';
      out[at++] = 'u';
      out[at++] = '0';
      out[at++] = '0';
      out[at++] = hex[c >> 4];
      out[at++] = hex[c & 15];
    } else {
      out[at++] = (char)c;
    }
  }
  return at;
}

static void format_time(char *out, size_t cap) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

void log_write(int level, const char *mod, const char *fmt, ...) {
  char msg[BL_LOG_LINE_MAX];
  char line[BL_LOG_LINE_MAX * 2];
  char when[40];
  size_t at;
  va_list ap;
  int n;

  if (level < logger.level)
    return;
  if (!logger.format)
    logger.format = resolve_format(BL_LOG_AUTO);

  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    snprintf(msg, sizeof msg, "(unformattable message)");
  else if ((size_t)n >= sizeof msg)
    memcpy(msg + sizeof msg - 4, "...", 4);
  redact(msg, sizeof msg);
  format_time(when, sizeof when);

  if (logger.format == BL_LOG_TEXT) {
    n = snprintf(line, sizeof line, "%s %-5s %s: %s", when,
                 log_level_name(level), mod ? mod : "-", msg);
    at = n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n;
  } else {
    n = snprintf(line, sizeof line,
                 "{\"ts\":\"%s\",\"level\":\"%s\",\"app\":\"", when,
                 log_level_name(level));
    at = n < 0 ? 0 : (size_t)n;
    at = json_escape(line, sizeof line, at, logger.app);
    at += (size_t)snprintf(line + at, sizeof line - at, "\",\"env\":\"");
    at = json_escape(line, sizeof line, at, logger.env);
    at += (size_t)snprintf(line + at, sizeof line - at, "\",\"mod\":\"");
    at = json_escape(line, sizeof line, at, mod ? mod : "-");
    at += (size_t)snprintf(line + at, sizeof line - at, "\",\"msg\":\"");
    at = json_escape(line, sizeof line, at, msg);
    if (at + 3 > sizeof line)
      at = sizeof line - 3;
    line[at++] = '"';
    line[at++] = '}';
    line[at] = '\0';
  }

  if (logger.sink) {
    logger.sink(level, line, logger.sink_arg);
    return;
  }
  line[at++] = '\n';
  /* One write per line keeps lines whole when stderr is shared. */
  if (write(STDERR_FILENO, line, at) < 0) {
    /* Nowhere left to report it. */
  }
}

static uint64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int log_limit_allow(struct log_limit *limit, unsigned *suppressed) {
  uint64_t now = monotonic_ms();
  *suppressed = 0;
  if (limit->window_start_ms == 0 ||
      now - limit->window_start_ms >= BL_LOG_LIMIT_WINDOW_MS) {
    *suppressed = limit->suppressed;
    limit->window_start_ms = now ? now : 1;
    limit->in_window = 0;
    limit->suppressed = 0;
  }
  if (limit->in_window < BL_LOG_LIMIT_BURST) {
    limit->in_window++;
    return 1;
  }
  limit->suppressed++;
  return 0;
}
