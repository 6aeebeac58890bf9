/*
 * ws_dump.c: a small WebSocket client for the tests. Connects to a URL,
 * optionally sends text messages, prints every text message received, one
 * per line, byte for byte, and exits after N messages, on close, or after
 * a timeout.
 *
 *   ws_dump [--ca FILE] [--send MSG]... [--timeout S] [--close-info]
 *           [--no-pong] [--line-buffered] URL N
 *
 * Exit status: 0 when N messages arrived, 3 on timeout, 4 when the server
 * closed first (with --close-info the close code and reason are printed
 * to stdout as "CLOSE <status> <code> <reason>"), 1 on other errors.
 *
 * State: one struct dump on main's stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "net/ws.h"

struct dump {
  struct ws ws;
  uv_timer_t timer;
  long want, got;
  const char *sends[16];
  int nsends;
  int close_info;
  int no_pong;
  int rc;
  int done;
};

static void dump_finish(struct dump *d, int rc) {
  if (d->done)
    return;
  d->done = 1;
  d->rc = rc;
  uv_close((uv_handle_t *)&d->timer, NULL);
  ws_close(&d->ws, NULL);
}

static void dump_on_open(struct ws *ws) {
  struct dump *d = ws->data;
  int i;
  if (d->no_pong)
    ws_set_auto_pong(ws, 0);
  for (i = 0; i < d->nsends; i++)
    ws_send_text(ws, d->sends[i], strlen(d->sends[i]));
}

static void dump_on_message(struct ws *ws, int binary, const char *data,
                            size_t len) {
  struct dump *d = ws->data;
  (void)binary;
  if (d->done)
    return;
  fwrite(data, 1, len, stdout);
  fputc('\n', stdout);
  if (++d->got >= d->want) {
    fflush(stdout);
    dump_finish(d, 0);
  }
}

static void dump_on_close(struct ws *ws, int status, int code,
                          const char *reason) {
  struct dump *d = ws->data;
  if (d->close_info)
    printf("CLOSE %s %d %s\n", bl_errname(status), code, reason);
  fflush(stdout);
  fprintf(stderr, "ws_dump: closed: %s (%s) code %d %s\n", bl_strerror(status),
          ws->errstr, code, reason);
  dump_finish(d, 4);
}

static void dump_on_timeout(uv_timer_t *t) {
  struct dump *d = t->data;
  fprintf(stderr, "ws_dump: timeout after %ld messages\n", d->got);
  fflush(stdout);
  dump_finish(d, 3);
}

int main(int argc, char **argv) {
  static const struct ws_callbacks cbs = {.on_open = dump_on_open,
                                          .on_message = dump_on_message,
                                          .on_close = dump_on_close};
  struct ws_options opt = {.max_message = 128u << 20};
  struct dump d;
  struct tls_ctx *tls = NULL;
  const char *ca = NULL, *url = NULL;
  double timeout = 10;
  char err[256];
  uv_loop_t loop;
  int i, rc;

  memset(&d, 0, sizeof d);
  d.want = -1;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ca") && i + 1 < argc)
      ca = argv[++i];
    else if (!strcmp(argv[i], "--send") && i + 1 < argc && d.nsends < 16)
      d.sends[d.nsends++] = argv[++i];
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
      timeout = strtod(argv[++i], NULL);
    else if (!strcmp(argv[i], "--close-info"))
      d.close_info = 1;
    else if (!strcmp(argv[i], "--no-pong"))
      d.no_pong = 1;
    else if (!strcmp(argv[i], "--line-buffered"))
      setvbuf(stdout, NULL, _IOLBF, 0);
    else if (!url)
      url = argv[i];
    else
      d.want = strtol(argv[i], NULL, 10);
  }
  if (!url || d.want < 0) {
    fprintf(stderr, "usage: ws_dump [--ca FILE] [--send MSG]... [--timeout S]"
                    " [--close-info] [--no-pong] [--line-buffered] URL N\n");
    return 1;
  }
  log_setup(BL_LOG_WARN, BL_LOG_TEXT, "ws_dump", "test");
  uv_loop_init(&loop);
  if (!strncmp(url, "wss://", 6)) {
    rc = tls_ctx_new_client(&tls, ca, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "ws_dump: TLS: %s\n", err);
      return 1;
    }
  }
  ws_init(&loop, &d.ws, &cbs, &opt);
  d.ws.data = &d;
  uv_timer_init(&loop, &d.timer);
  d.timer.data = &d;
  uv_timer_start(&d.timer, dump_on_timeout, (uint64_t)(timeout * 1000), 0);
  if (d.want == 0) {
    dump_finish(&d, 0);
  } else {
    rc = ws_connect(&d.ws, url, tls);
    if (rc != 0) {
      fprintf(stderr, "ws_dump: bad URL %s\n", url);
      dump_finish(&d, 1);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (tls)
    tls_ctx_free(tls);
  return d.rc;
}
