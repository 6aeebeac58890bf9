/*
 * http.h: HTTP(S) GET requests on the libuv loop through libcurl's
 * multi_socket API (one multi handle per struct http, its sockets on
 * uv_poll, its timeout on one uv_timer).
 *
 * The caller owns every struct http_req. A request started by http_get()
 * completes exactly once through its callback, never from inside
 * http_get(), with one of:
 *   0              a response arrived; req->status holds the HTTP status
 *                  (4xx/5xx are responses, not transport errors) and
 *                  req->body the body
 *   BL_ETIMEDOUT   the connect or the whole transfer took too long
 *   BL_EVERIFY     the server's certificate failed verification
 *   BL_ETOOBIG     the body (or the headers) exceeded the request's limit
 *   BL_ECANCELED   http_cancel() or http_close()
 *   BL_ENOMEM      out of memory
 *   BL_EHTTP       any other failure (refused, reset, DNS, TLS, bad reply)
 * with curl's error text in req->errstr. TLS certificates are always
 * verified; there is no option to turn verification off.
 *
 * After the callback, req->body, the headers and errstr stay readable
 * until the request is started again or http_req_free() is called.
 */
#ifndef BL_NET_HTTP_H
#define BL_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

#define HTTP_BODY_MAX_DEFAULT ((size_t)64 << 20) /* 64 MiB */
#define HTTP_HEADERS_MAX ((size_t)64 << 10)      /* all header lines */
#define HTTP_TIMEOUT_MS_DEFAULT 10000
#define HTTP_CONNECT_TIMEOUT_MS_DEFAULT 5000
#define HTTP_ERRSTR_MAX 256 /* CURL_ERROR_SIZE */

struct http;
struct http_req;

typedef void (*http_cb)(struct http_req *req, int result);
typedef void (*http_close_cb)(struct http *http);

struct http_opts {
  const char *ca_file;     /* CA bundle; NULL: the system bundle */
  const char *user_agent;  /* NULL: "binance-live" */
  long timeout_ms;         /* whole transfer; 0: HTTP_TIMEOUT_MS_DEFAULT */
  long connect_timeout_ms; /* 0: HTTP_CONNECT_TIMEOUT_MS_DEFAULT */
  size_t body_max;         /* 0: HTTP_BODY_MAX_DEFAULT */
};

/* A query parameter; both strings are URL-encoded by http_get(). */
struct http_param {
  const char *name;
  const char *value;
};

struct http_sock; /* one per socket curl asks us to watch (http.c) */

struct http {
  void *data; /* the caller's */
  /* private */
  uv_loop_t *loop;
  void *multi;           /* CURLM * */
  uv_timer_t timer;      /* curl's timeout */
  uv_timer_t done_timer; /* delivers cancellations outside curl */
  char *ca_file;
  char *user_agent;
  long timeout_ms;
  long connect_timeout_ms;
  size_t body_max;
  struct http_req *active; /* transfers added to the multi handle */
  struct http_req *done;   /* canceled, callback not yet called */
  struct http_sock *socks; /* every socket context not yet freed */
  unsigned n_active;
  int closing;
  int handles_open; /* uv handles not yet closed (the two timers) */
  http_close_cb close_cb;
};

struct http_req {
  void *data; /* the caller's */

  /* Per-request settings, read by http_get(); 0 takes the default. */
  long timeout_ms;
  size_t body_max;

  /* Results, valid in and after the callback. */
  int result;          /* as passed to the callback */
  long status;         /* HTTP status, 0 when no response */
  struct buf body;     /* NUL-terminated */
  struct buf headers;  /* the final response's header lines, raw */
  long used_weight_1m; /* X-MBX-USED-WEIGHT-1M, -1 when absent */
  long retry_after_s;  /* Retry-After in seconds, -1 when absent */
  char errstr[HTTP_ERRSTR_MAX];
  char *url; /* the full URL asked for (with the query) */

  /* private */
  struct http *http;
  void *easy; /* CURL * while started */
  http_cb cb;
  struct http_req *next, *prev;
  int too_big;
  int state; /* 0 idle, 1 active, 2 canceled awaiting its callback */
};

/* Initialises |http| on |loop| and calls curl_global_init once per
 * process. |opts| may be NULL. The strings are copied.
 * Returns 0, BL_ENOMEM, BL_EHTTP (curl could not initialise) or a UV_E*
 * code. */
int http_init(uv_loop_t *loop, struct http *http, const struct http_opts *opts);

/* Prepares a request for its first use (zeroes it). */
void http_req_init(struct http_req *req);

/* Releases the request's buffers. Not while it is in flight. */
void http_req_free(struct http_req *req);

/* Starts GET |url| with |n_params| query parameters appended
 * ("?a=1&b=2", URL-encoded). |cb| is called once, later, from the loop.
 * Returns 0, BL_EINVAL (bad arguments or |req| already in flight),
 * BL_ESTATE (http_close() was called), BL_ENOMEM or BL_EHTTP; on error
 * the callback is not called. */
int http_get(struct http *http, struct http_req *req, const char *url,
             const struct http_param *params, size_t n_params, http_cb cb);

/* Cancels a request in flight: its callback is called later with
 * BL_ECANCELED. Does nothing for a request that is not in flight. */
void http_cancel(struct http_req *req);

/* Finds response header |name| (case-insensitive) of the final response.
 * Returns its value, trimmed, not NUL-terminated, with its length in
 * |*len|; NULL when absent. */
const char *http_req_header(const struct http_req *req, const char *name,
                            size_t *len);

/* Returns 1 when the linked libcurl resolves names without blocking the
 * calling thread (feature AsynchDNS: threaded resolver or c-ares). */
int http_async_dns(void);

/* Cancels everything in flight (each callback gets BL_ECANCELED), tears
 * down curl, closes the handles and calls |cb| once nothing refers to
 * |http| any more. */
void http_close(struct http *http, http_close_cb cb);

#endif
