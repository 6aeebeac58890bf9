/*
 * app.h: builds the collector's modules from a configuration, runs the
 * loop, and owns the start-up and shutdown order.
 */
#ifndef BL_APP_H
#define BL_APP_H

#include "core/config.h"

/* Applies the schema migrations and returns 0, or a negative code after
 * logging why. Used by --migrate. */
int app_migrate(const struct config *cfg);

/* Runs the collector until SIGINT/SIGTERM. Returns the process exit status:
 * 0 after a clean shutdown, 1 after a fatal runtime error. */
int app_run(const struct config *cfg);

#endif
