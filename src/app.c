/*
 * app.c: wires the modules together and runs the loop (placeholder until
 * the live pipeline lands: it migrates and stops with a clear message).
 */
#include "app.h"

#include "core/err.h"
#include "core/log.h"

int app_migrate(const struct config *cfg) {
  (void)cfg;
  log_error("app", "migrations are not wired in yet");
  return BL_ESTATE;
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
