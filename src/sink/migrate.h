/*
 * migrate.h: applies schema/NNN_name.sql migrations, asynchronously on uv.
 *
 * migrate_start() reads the directory (file names NNN_name.sql, applied in
 * name order; the files are read once, before any I/O, so nothing blocks
 * the loop afterwards), connects through pgconn (nonblocking, DNS via
 * uv_getaddrinfo) on its own connection outside pipeline mode, and runs:
 *
 *   SELECT pg_advisory_lock(K)           two collectors never race
 *   CREATE TABLE IF NOT EXISTS schema_migrations (version text primary key,
 *     applied_at timestamptz not null default now(), checksum text not null)
 *   SELECT version, checksum FROM schema_migrations
 *   for each file not recorded, ONE simple-protocol query:
 *     BEGIN; <file>; INSERT INTO schema_migrations ...; COMMIT;
 *   SELECT pg_advisory_unlock(K)
 *
 * so a file is applied completely or not at all. The version is the file
 * name without ".sql"; the checksum is the SHA-256 of the file in hex. A
 * recorded file whose checksum changed is reported with a warning and not
 * applied again. A failing file stops the run with an error naming the file,
 * the line (when PostgreSQL gives a position) and the server's message; the
 * connection is then dropped, which rolls the transaction back. Files must
 * not contain their own transaction control (BEGIN/COMMIT).
 */
#ifndef BL_SINK_MIGRATE_H
#define BL_SINK_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sink/pgconn.h"

#define MIGRATE_MAX_FILES 1000
#define MIGRATE_MAX_FILE_BYTES (8u << 20)
/* The advisory lock key: "blschema" read as a big-endian integer. */
#define MIGRATE_LOCK_KEY "7092170383992122721"

struct migrate_opts {
  struct pgconn_opts conn;
  const char *dir;       /* NULL: "schema" */
  unsigned retry_for_ms; /* keep retrying a failed connect (refused, server
                            starting up) for this long; 0: one attempt */
};

struct migrate_file {
  char *name;    /* 001_init.sql */
  char *version; /* 001_init */
  char *sql;
  size_t len;
  char checksum[65];
  int pending;
};

struct migrate;
/* |status| is 0, BL_EPG (a statement failed, or the server refused us),
 * BL_ETIMEDOUT, or a UV_E* code; m->errstr says why. */
typedef void (*migrate_done_cb)(struct migrate *m, int status);
typedef void (*migrate_close_cb)(struct migrate *m);

struct migrate {
  uv_loop_t *loop;
  void *data; /* the owner's */
  struct migrate_opts opts;
  struct pgconn pc;
  uv_timer_t retry;
  uint64_t started_ms;
  int attempts;
  int handles_open;
  int step;
  struct migrate_file *files;
  int nfiles;
  int cur;           /* the file being applied */
  PGresult *err_res; /* first error of the current query */
  int n_applied;     /* files applied by this run */
  int n_changed;     /* recorded files whose checksum differs */
  migrate_done_cb done_cb;
  migrate_close_cb close_cb;
  char errstr[1024];
};

/* Prepares |m| (strings in |opts| must outlive it). Returns 0 or UV_E*. */
int migrate_init(uv_loop_t *loop, struct migrate *m,
                 const struct migrate_opts *opts);

/* Reads the directory and starts; |cb| runs once with the outcome. Returns
 * 0, or (with m->errstr set, and no callback) BL_ENOTFOUND (no directory),
 * BL_EIO, BL_ETOOBIG (a file over MIGRATE_MAX_FILE_BYTES, or too many
 * files), BL_ENOMEM, BL_ESTATE (already started). */
int migrate_start(struct migrate *m, migrate_done_cb cb);

/* Drops the connection if still open, frees the files; |cb| runs once
 * every handle is closed. */
void migrate_close(struct migrate *m, migrate_close_cb cb);

/* Pure helpers, exposed for tests. */
/* 1 if |name| looks like NNN_name.sql (digits, '_', [A-Za-z0-9_.-], .sql). */
int migrate_name_ok(const char *name);
/* The 1-based line of the 1-based character position |pos| (characters,
 * not bytes: PostgreSQL counts UTF-8 characters) in |sql|; 0 if outside. */
int migrate_line_of(const char *sql, size_t len, long pos);
/* SHA-256 of |data| as 64 lowercase hex digits and a NUL. */
void migrate_sha256_hex(const void *data, size_t len, char out[65]);

#endif
