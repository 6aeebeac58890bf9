/*
 * main.c: the binance-live command line (PRODUCT.md section 3.1).
 *
 *   binance-live [-c FILE] [--check-config] [--migrate] [--version] [--help]
 *
 * Parses the arguments, loads the configuration (before any loop exists),
 * sets up logging and hands over to app.c, which owns the loop, the signals
 * and the shutdown order. Exit status: 0 clean, 1 fatal runtime error,
 * 2 usage or configuration error. No state beyond main()'s locals.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "version.h"

#define EXIT_USAGE 2

static void usage(FILE *out) {
  fputs("usage: binance-live [-c FILE] [--check-config] [--migrate] "
        "[--version] [--help]\n"
        "\n"
        "  -c, --config FILE  configuration file (default: "
        "$BINANCE_LIVE_CONFIG,\n"
        "                     else conf/binance-live.yaml)\n"
        "      --check-config load and validate the configuration, print it "
        "as YAML\n"
        "                     (passwords masked) and exit\n"
        "      --migrate      apply the database schema and exit\n"
        "      --version      print the version and exit\n"
        "  -h, --help         print this help and exit\n"
        "\n"
        "Exit status: 0 clean shutdown, 1 fatal runtime error, 2 usage or "
        "configuration error.\n",
        out);
}

/* Sends the configuration warnings collected in |text| through the logger,
 * one log line per warning line. */
static void log_config_warnings(char *text) {
  char *save = NULL;
  if (!text)
    return;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    log_warn("config", "%s", line);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"check-config", no_argument, NULL, 'k'},
                                       {"migrate", no_argument, NULL, 'm'},
                                       {"version", no_argument, NULL, 'V'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *path = NULL;
  int check = 0, migrate = 0, c, rv;
  char err[1024];
  char *warnings = NULL;
  size_t warnings_len = 0;
  FILE *warn;
  struct config cfg;

  signal(SIGPIPE, SIG_IGN);

  opterr = 0;
  while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'k':
      check = 1;
      break;
    case 'm':
      migrate = 1;
      break;
    case 'V':
      printf("binance-live %s\n", BL_VERSION);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    case ':':
      fprintf(stderr, "binance-live: option '%s' needs an argument\n",
              argv[optind - 1]);
      usage(stderr);
      return EXIT_USAGE;
    default:
      fprintf(stderr, "binance-live: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "binance-live: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return EXIT_USAGE;
  }
  if (check && migrate) {
    fputs("binance-live: --check-config and --migrate exclude each other\n",
          stderr);
    usage(stderr);
    return EXIT_USAGE;
  }

  /* For --check-config the warnings go straight to stderr; otherwise they
   * are collected and logged once logging is set up. */
  warn = check ? stderr : open_memstream(&warnings, &warnings_len);
  rv = config_load(&cfg, path, warn ? warn : stderr, err, sizeof err);
  if (warn && warn != stderr)
    fclose(warn);
  if (rv) {
    fprintf(stderr, "%s\n", err[0] ? err : bl_strerror(rv));
    free(warnings);
    return EXIT_USAGE;
  }

  if (check) {
    rv = config_dump_yaml(&cfg, stdout);
    config_free(&cfg);
    return rv ? 1 : 0;
  }

  log_setup(cfg.app.log_level, cfg.app.log_format, cfg.app.name,
            cfg.app.environment);
  log_config_warnings(warnings);
  free(warnings);

  if (migrate)
    rv = app_migrate(&cfg) ? 1 : 0;
  else
    rv = app_run(&cfg);
  config_free(&cfg);
  return rv;
}
