/*
 * main.c: binance-mock, the mock Binance exchange used by the tests, the
 * demo and the benchmarks. Parses the flags (see README.md), starts the
 * server on a libuv loop and runs until SIGINT/SIGTERM.
 *
 * State: none beyond main's locals.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "server.h"

static void usage(FILE *f) {
  fputs(
      "usage: binance-mock [options]\n"
      "  --host ADDR           listen address (127.0.0.1)\n"
      "  --port N              REST + WebSocket port (0: any; default 0)\n"
      "  --control-port N      control HTTP port (0: any; default 0)\n"
      "  --port-file FILE      write port=N and control_port=N to FILE\n"
      "  --tls-cert PEM --tls-key PEM   serve TLS on --port\n"
      "  --symbols N           synthetic symbols (10): BTCUSDT, ETHUSDT,\n"
      "                        SYM000USDT, ...\n"
      "  --rate N              aggTrades per second over all symbols (100);\n"
      "                        0: as fast as the clients take them\n"
      "  --seed N              market seed (1)\n"
      "  --replay DIR          replay a recording instead (cryptofeed format)\n"
      "  --replay-timing       keep the recording's pacing\n"
      "  --replay-speed X      pacing factor with --replay-timing (1.0)\n"
      "  --ping-interval S     server ping every S seconds (20; 0: off)\n"
      "  --pong-timeout S      drop when no pong within S seconds (60)\n"
      "  --weight-limit N      REQUEST_WEIGHT per minute (6000)\n"
      "  --ban-after N         requests during a 429 back-off before a 418 "
      "(3)\n"
      "  --ban-seconds N       first ban length, doubling per ban (120)\n"
      "  --queue-max BYTES     per-client queue before frames drop (8 MiB)\n"
      "  --log-level LEVEL     debug, info, warn, error (info)\n",
      f);
}

static int parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  enum {
    O_PORT = 1000,
    O_CPORT,
    O_CERT,
    O_KEY,
    O_SYMS,
    O_RATE,
    O_SEED,
    O_REPLAY,
    O_RTIMING,
    O_RSPEED,
    O_PING,
    O_PONG,
    O_WLIMIT,
    O_PFILE,
    O_LOG,
    O_HOST,
    O_BANAFTER,
    O_BANSECS,
    O_QMAX,
    O_HELP
  };
  static const struct option longopts[] = {
      {"port", required_argument, NULL, O_PORT},
      {"control-port", required_argument, NULL, O_CPORT},
      {"tls-cert", required_argument, NULL, O_CERT},
      {"tls-key", required_argument, NULL, O_KEY},
      {"symbols", required_argument, NULL, O_SYMS},
      {"rate", required_argument, NULL, O_RATE},
      {"seed", required_argument, NULL, O_SEED},
      {"replay", required_argument, NULL, O_REPLAY},
      {"replay-timing", no_argument, NULL, O_RTIMING},
      {"replay-speed", required_argument, NULL, O_RSPEED},
      {"ping-interval", required_argument, NULL, O_PING},
      {"pong-timeout", required_argument, NULL, O_PONG},
      {"weight-limit", required_argument, NULL, O_WLIMIT},
      {"port-file", required_argument, NULL, O_PFILE},
      {"log-level", required_argument, NULL, O_LOG},
      {"host", required_argument, NULL, O_HOST},
      {"ban-after", required_argument, NULL, O_BANAFTER},
      {"ban-seconds", required_argument, NULL, O_BANSECS},
      {"queue-max", required_argument, NULL, O_QMAX},
      {"help", no_argument, NULL, O_HELP},
      {NULL, 0, NULL, 0}};
  struct mock_options opt;
  struct mock_server *srv;
  uv_loop_t loop;
  char err[512] = "";
  int c, level = BL_LOG_INFO, rc;
  double v;

  memset(&opt, 0, sizeof opt);
  opt.symbols = 10;
  opt.rate = 100;
  opt.seed = 1;
  opt.replay_speed = 1.0;
  opt.ping_interval_ms = 20000;
  opt.pong_timeout_ms = 60000;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    const char *a = optarg;
    int bad = 0;
    switch (c) {
    case O_PORT:
      bad = parse_num(a, 0, 65535, &v);
      opt.port = (int)v;
      break;
    case O_CPORT:
      bad = parse_num(a, 0, 65535, &v);
      opt.control_port = (int)v;
      break;
    case O_CERT:
      opt.tls_cert = a;
      break;
    case O_KEY:
      opt.tls_key = a;
      break;
    case O_SYMS:
      bad = parse_num(a, 1, MK_MAX_SYMBOLS, &v);
      opt.symbols = (int)v;
      break;
    case O_RATE:
      bad = parse_num(a, 0, 1e8, &v);
      opt.rate = v;
      break;
    case O_SEED:
      bad = parse_num(a, 0, 1e15, &v);
      opt.seed = (uint64_t)v;
      break;
    case O_REPLAY:
      opt.replay_dir = a;
      break;
    case O_RTIMING:
      opt.replay_timing = 1;
      break;
    case O_RSPEED:
      bad = parse_num(a, 0.001, 1e6, &opt.replay_speed);
      break;
    case O_PING:
      bad = parse_num(a, 0, 86400, &v);
      opt.ping_interval_ms = (uint64_t)(v * 1000);
      break;
    case O_PONG:
      bad = parse_num(a, 0, 86400, &v);
      opt.pong_timeout_ms = (uint64_t)(v * 1000);
      break;
    case O_WLIMIT:
      bad = parse_num(a, 1, 1e9, &v);
      opt.weight_limit = (int)v;
      break;
    case O_PFILE:
      opt.port_file = a;
      break;
    case O_LOG:
      level = log_level_parse(a);
      bad = level < 0;
      break;
    case O_HOST:
      opt.host = a;
      break;
    case O_BANAFTER:
      bad = parse_num(a, 1, 1e6, &v);
      opt.ban_after = (int)v;
      break;
    case O_BANSECS:
      bad = parse_num(a, 1, 1e7, &v);
      opt.ban_secs = (int)v;
      break;
    case O_QMAX:
      bad = parse_num(a, 4096, 1e10, &v);
      opt.client_queue_max = (size_t)v;
      break;
    case O_HELP:
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "binance-mock: bad value for option: %s\n", a);
      return 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }
  log_setup(level, BL_LOG_TEXT, "binance-mock", "test");
  /* a peer that went away must cost a write error, not the process */
  signal(SIGPIPE, SIG_IGN);
  srv = calloc(1, sizeof *srv);
  if (!srv || uv_loop_init(&loop) != 0)
    return 1;
  rc = mock_server_init(srv, &loop, &opt, err, sizeof err);
  if (rc == 0)
    rc = mock_server_start(srv, err, sizeof err);
  if (rc != 0) {
    /* exits without unwinding the half-started server */
    log_error("mock", "cannot start: %s (%s)", err, bl_strerror(rc));
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  mock_server_free(srv);
  free(srv);
  rc = uv_loop_close(&loop);
  if (rc != 0)
    log_warn("mock", "loop not empty at exit: %s", uv_strerror(rc));
  return 0;
}
