/*
 * server.h: the mock exchange's network side: one listener for REST and
 * WebSocket (plain or TLS), one plain-HTTP control listener, the frame
 * generator (synthetic market or replay) and the fault switches.
 *
 * State: struct mock_server, owned by main.c; clients are allocated per
 * accepted connection and freed after their close callbacks.
 */
#ifndef BL_MOCK_SERVER_H
#define BL_MOCK_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "mock.h"
#include "net/conn.h"
#include "net/ws.h"

struct mclient;

struct mock_options {
  const char *host; /* "127.0.0.1" */
  int port;         /* 0: any */
  int control_port; /* 0: any */
  const char *tls_cert, *tls_key;
  int symbols; /* synthetic symbols */
  double rate; /* aggTrades/s over all symbols; 0: fast */
  uint64_t seed;
  const char *replay_dir;
  int replay_timing;         /* keep the recording's pacing */
  double replay_speed;       /* pacing factor with replay_timing */
  uint64_t ping_interval_ms; /* server pings; 0: off */
  uint64_t pong_timeout_ms;  /* no pong this long after a ping: drop */
  int weight_limit;          /* 0: 6000 (replay: the recording's) */
  int ban_after, ban_secs;
  const char *port_file;
  size_t client_queue_max; /* bytes queued per WS client before drops */
};

struct sym_gen {
  int64_t next_k;     /* next trade index to send */
  int64_t depth_u[2]; /* last update id sent: @depth, @depth@100ms */
  int64_t depth_due[2];
  int64_t ticker_due;
  int64_t kline_bar[MK_NINTERVALS]; /* open time of the bar being sent */
  int64_t kline_due[MK_NINTERVALS];
  int skip_depth;  /* fault: ids to skip in the next event */
  int skip_trades; /* fault: trades to leave out */
  int cross_depth; /* fault: the next @depth@100ms event crosses the book */
  int64_t first_trade_sent, last_trade_sent;
  uint64_t trades_sent, trades_skipped;
  int64_t last_depth_u_sent;
};

struct mock_server {
  uv_loop_t *loop;
  struct mock_options opt;
  uv_tcp_t listener, control;
  uv_timer_t tick; /* generation and housekeeping */
  uv_idle_t idle;  /* fast mode */
  uv_signal_t sigint, sigterm;
  struct tls_ctx *tls;
  int replay_mode, fast, stopping;
  struct mk_market market;
  struct replay replay;
  struct rest_state rest;
  int64_t now; /* the market clock, ms */
  int *refs;   /* subscribers per stream id */
  uint64_t *frames_per_stream;
  struct sym_gen *gen;
  struct mclient *clients;
  struct buf fb;    /* frame under construction */
  size_t fb_prefix; /* bytes of {"stream":..,"data": before payload */
  /* faults */
  int stall, no_pong, dup_next;
  /* stats */
  uint64_t accepted, ws_accepted, frames_sent, frames_dropped, replay_sent;
  uint64_t ws_closed_rate, ws_closed_pong;
  uint64_t ticks, next_client_id;
};

int mock_server_init(struct mock_server *srv, uv_loop_t *loop,
                     const struct mock_options *opt, char *err, size_t errlen);
int mock_server_start(struct mock_server *srv, char *err, size_t errlen);
/* Drops every client, closes the listeners and timers; the loop then ends. */
void mock_server_stop(struct mock_server *srv);
void mock_server_free(struct mock_server *srv);

#endif
