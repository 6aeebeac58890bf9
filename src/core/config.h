/*
 * config.h: the collector's configuration (PRODUCT.md section 4).
 *
 * config_load() reads a YAML file with libyaml, substitutes ${VAR} and
 * ${VAR:default} inside scalar values, applies the environment overrides of
 * the table (LOG_LEVEL, POSTGRES_HOST, ...), fills every default and
 * validates. Errors name FILE:LINE:COLUMN (of the offending value; of the
 * key when the key itself is wrong) and the problem; unknown keys and keys
 * of the Go original that do not apply here are warnings. All strings in
 * struct config are owned by it and released by config_free().
 */
#ifndef BL_CORE_CONFIG_H
#define BL_CORE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_INTERVALS 16
#define CONFIG_MAX_BOOTSTRAP 1024

struct config {
  char *path; /* the file it was loaded from */

  struct {
    char *name;        /* binance-live */
    char *environment; /* production */
    int log_level;     /* enum bl_log_level; info */
    int log_format;    /* enum bl_log_format; auto (json unless a tty) */
  } app;

  struct {
    char *api_url;       /* https://api.binance.com */
    char *ws_url;        /* wss://stream.binance.com:9443 */
    char *ca_file;       /* NULL: system bundle */
    int rest_rate_limit; /* 6000 */
    char *kline_intervals[CONFIG_MAX_INTERVALS]; /* 1m 5m 15m 1h 4h 1d */
    int n_kline_intervals;
    struct {
      int kline, ticker, depth, trade; /* all 1 */
    } streams;
    int depth_levels;               /* 20 */
    int depth_snapshot_interval;    /* 10 s */
    int depth_snapshot_limit;       /* 1000 */
    int max_streams_per_connection; /* 200, at most 1024 */
  } binance;

  struct {
    char *host;            /* localhost */
    int port;              /* 5432 */
    char *user;            /* postgres */
    char *password;        /* "" */
    char *database;        /* binance_data */
    char *ssl_mode;        /* prefer */
    int batch_size;        /* 1000 */
    int flush_interval_ms; /* 200 */
    int migrate;           /* 1 */
  } database;

  struct {
    char *host;        /* localhost */
    int port;          /* 6379 */
    char *password;    /* "" */
    int db;            /* 0 */
    int live_data_ttl; /* 60 */
    char *key_prefix;  /* binance */
  } redis;

  struct {
    int enabled;        /* 1 */
    int max_sync_hours; /* 24 */
    int batch_size;     /* 1000, at most 1000 */
    int workers;        /* 5 */
  } sync;

  struct {
    int reconnect_delay;        /* 1 s */
    int max_reconnect_attempts; /* 0 = never give up */
    int ping_interval;          /* 30 s */
  } stream;

  struct {
    char *listen; /* 127.0.0.1:8080 */
  } http;

  struct {
    char *bootstrap[CONFIG_MAX_BOOTSTRAP]; /* BTCUSDT ETHUSDT */
    int n_bootstrap;
  } symbols;

  struct {
    char *dir;           /* ./var/spool */
    long long max_bytes; /* 1073741824 */
  } spool;
};

/* Conventions of the loader (see config.c and conf/binance-live.yaml): a
 * null value (`key:` or `key: ~`) keeps the default; an environment
 * variable that is set but empty does not override; an unset ${VAR} without
 * a default becomes "" with a warning; ints may be quoted; keys counted in
 * seconds also take "30s", "2m", "1h", and flush_interval_ms "200ms", "1s";
 * duplicate kline intervals and symbols are dropped with a warning (symbols
 * are upper-cased); a key given twice is an error; api_url and ws_url lose
 * any trailing '/'. After a failed load |cfg| is all zero (config_free() on
 * it is harmless). Non-empty passwords are registered with
 * log_add_secret(). */

/* Fills |cfg| with every default (no file, no environment). Returns 0 or
 * BL_ENOMEM. */
int config_defaults(struct config *cfg);

/* Loads |path| (NULL: $BINANCE_LIVE_CONFIG, else conf/binance-live.yaml),
 * applies the environment and validates. Warnings are written to |warn|
 * (may be NULL) as "FILE:LINE:COLUMN: warning: ..." lines. On error returns
 * BL_ECONFIG (or BL_EIO when the file cannot be read) with one line
 * "FILE:LINE:COLUMN: message" in |err| (FILE only when no position
 * applies). */
int config_load(struct config *cfg, const char *path, FILE *warn, char *err,
                size_t errlen);

/* Same as config_load() but from a string; |name| is used in messages. */
int config_load_string(struct config *cfg, const char *yaml, size_t len,
                       const char *name, FILE *warn, char *err, size_t errlen);

/* Writes the effective configuration as YAML with every password shown as
 * "********". */
int config_dump_yaml(const struct config *cfg, FILE *out);

void config_free(struct config *cfg);

/* Helpers shared with other modules. */
int config_interval_valid(const char *interval); /* 1 if Binance knows it */
/* Milliseconds in one interval ("1s" -> 1000, "1w" -> 604800000); 0 for an
 * unknown interval and for "1M", whose length depends on the calendar month
 * (callers must treat 1M specially). */
long long config_interval_ms(const char *interval);

#endif
