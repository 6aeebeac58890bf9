/*
 * log.h: structured logging on stderr.
 *
 * One line per message: a JSON object ({"ts","level","app","env","mod","msg"})
 * or, for a human at a terminal, plain text. Messages below the configured
 * level cost one comparison. Secrets registered with log_add_secret() are
 * replaced by "********" wherever they would appear. log_limited() keeps a
 * per-call-site budget so that a flood of one message (a malformed frame
 * arriving 10,000 times a second) prints a few lines and then one count of
 * what it suppressed.
 */
#ifndef BL_CORE_LOG_H
#define BL_CORE_LOG_H

#include <stdint.h>

enum bl_log_level {
  BL_LOG_DEBUG = 0,
  BL_LOG_INFO = 1,
  BL_LOG_WARN = 2,
  BL_LOG_ERROR = 3,
  BL_LOG_OFF = 4
};

enum bl_log_format { BL_LOG_AUTO = 0, BL_LOG_JSON = 1, BL_LOG_TEXT = 2 };

/* Longest line written; longer messages are cut and end in "...". */
#define BL_LOG_LINE_MAX 4096

/* Sets the level, the format (BL_LOG_AUTO picks text when stderr is a
 * terminal) and the app and environment names written on every line. The
 * strings are copied. May be called again to change them. */
void log_setup(int level, int format, const char *app, const char *env);

/* Parses "debug", "info", "warn"/"warning", "error" (any case).
 * Returns the level, or BL_EINVAL. */
int log_level_parse(const char *name);

/* Parses "json", "text" or "auto". Returns the format, or BL_EINVAL. */
int log_format_parse(const char *name);

const char *log_level_name(int level);

/* Registers a secret (a password) never to be written. Empty strings are
 * ignored. Up to 16 are kept; returns 0 or BL_EFULL. */
int log_add_secret(const char *secret);

/* Forgets every registered secret (tests). */
void log_clear_secrets(void);

int log_enabled(int level);

void log_write(int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends finished lines (without the trailing newline) to |sink| instead of
 * stderr; NULL restores stderr. For tests. */
typedef void (*log_sink_fn)(int level, const char *line, void *arg);
void log_set_sink(log_sink_fn sink, void *arg);

/* A call site's budget: at most BL_LOG_LIMIT_BURST lines per
 * BL_LOG_LIMIT_WINDOW_MS; the rest are counted and reported once the
 * window has passed. */
#define BL_LOG_LIMIT_BURST 5
#define BL_LOG_LIMIT_WINDOW_MS 10000
struct log_limit {
  uint64_t window_start_ms;
  unsigned in_window;
  unsigned suppressed;
};

/* Returns 1 when the call site may log now. When it returns 1 after a
 * window in which lines were suppressed, *suppressed receives their number
 * (0 otherwise). */
int log_limit_allow(struct log_limit *limit, unsigned *suppressed);

#define log_debug(mod, ...)                                                    \
  do {                                                                         \
    if (log_enabled(BL_LOG_DEBUG))                                             \
      log_write(BL_LOG_DEBUG, mod, __VA_ARGS__);                               \
  } while (0)
#define log_info(mod, ...) log_write(BL_LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(BL_LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_write(BL_LOG_ERROR, mod, __VA_ARGS__)

/* Logs through a static per-call-site limit. */
#define log_limited(level, mod, ...)                                           \
  do {                                                                         \
    static struct log_limit bl_ll_;                                            \
    unsigned bl_sup_;                                                          \
    if (log_enabled(level) && log_limit_allow(&bl_ll_, &bl_sup_)) {            \
      if (bl_sup_)                                                             \
        log_write(level, mod, "%u similar messages suppressed", bl_sup_);      \
      log_write(level, mod, __VA_ARGS__);                                      \
    }                                                                          \
  } while (0)

#endif
