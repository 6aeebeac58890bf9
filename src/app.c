/*
 * app.c: wires the modules together and runs the loop (placeholder until
 * the live pipeline lands: it migrates and stops with a clear message).
 */
#include "app.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "sink/migrate.h"

/* The schema directory: $BINANCE_LIVE_SCHEMA_DIR, else ./schema, else the
 * installed copy (the container image puts it there). */
#define APP_SCHEMA_DIR_INSTALLED "/usr/share/binance-live/schema"

static const char *app_schema_dir(void) {
  const char *env = getenv("BINANCE_LIVE_SCHEMA_DIR");
  struct stat st;
  if (env && *env)
    return env;
  if (stat("schema", &st) != 0 && stat(APP_SCHEMA_DIR_INSTALLED, &st) == 0 &&
      S_ISDIR(st.st_mode))
    return APP_SCHEMA_DIR_INSTALLED;
  return "schema";
}

struct app_migration {
  int status;
  int done;
};

static void app_migrate_closed(struct migrate *m) {
  (void)m;
}

static void app_migrate_done(struct migrate *m, int status) {
  struct app_migration *am = m->data;
  am->status = status;
  am->done = 1;
  migrate_close(m, app_migrate_closed);
}

/* Runs the migrator to completion on a private loop (before the collector's
 * loop exists, or for --migrate). */
int app_migrate(const struct config *cfg) {
  uv_loop_t loop;
  struct migrate m;
  struct migrate_opts o;
  struct app_migration am = {0, 0};
  int rv;

  rv = uv_loop_init(&loop);
  if (rv) {
    log_error("migrate", "cannot create a loop: %s", uv_strerror(rv));
    return rv;
  }
  memset(&o, 0, sizeof(o));
  o.conn.host = cfg->database.host;
  o.conn.port = cfg->database.port;
  o.conn.user = cfg->database.user;
  o.conn.password = cfg->database.password;
  o.conn.dbname = cfg->database.database;
  o.conn.sslmode = cfg->database.ssl_mode;
  o.conn.application_name = "binance-live-migrate";
  /* Up to 10 s to reach the server: refused connections (a server still
   * starting) are retried within that time. */
  o.conn.connect_timeout_ms = 10000;
  o.retry_for_ms = 10000;
  o.dir = app_schema_dir();

  rv = migrate_init(&loop, &m, &o);
  if (rv == 0) {
    m.data = &am;
    rv = migrate_start(&m, app_migrate_done);
    if (rv) {
      log_error("migrate", "%s", m.errstr);
      migrate_close(&m, app_migrate_closed);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rv == 0) {
    rv = am.done ? am.status : BL_ESTATE;
    if (rv == 0)
      log_info("migrate",
               "schema in %s is up to date: %d file(s) applied now, %d "
               "changed since applied",
               o.dir, m.n_applied, m.n_changed);
    else
      log_error("migrate", "migration failed: %s", m.errstr);
  }
  if (uv_loop_close(&loop) != 0) {
    log_error("migrate", "handles left open after the migration");
    if (rv == 0)
      rv = BL_ESTATE;
  }
  return rv;
}

int app_run(const struct config *cfg) {
  int rv = 0;
  if (cfg->database.migrate)
    rv = app_migrate(cfg);
  if (rv)
    return 1;
  log_error("app", "collection is not implemented yet: the schema is "
                   "applied, nothing is collected; stopping");
  return 1;
}
