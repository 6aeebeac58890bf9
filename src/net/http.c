/*
 * http.c: libcurl's multi_socket API driven by libuv (see http.h).
 *
 * State: one CURLM per struct http, one uv_timer_t for curl's timeout, one
 * heap struct http_sock (holding a uv_poll_t) per socket curl asks us to
 * watch, the list of transfers in flight and the list of canceled requests
 * whose callbacks are still due.
 *
 * The rules of docs/c-stack.md A0/A1, all kept here:
 * - CURLMOPT_TIMERFUNCTION only (re)arms the one timer, even for 0 ms:
 *   uv_timer_start(..., 0, 0) fires on the next loop iteration, never
 *   inside curl, so socket_action is never called from a curl callback.
 * - The socket context is created in CURLMOPT_SOCKETFUNCTION, attached
 *   with curl_multi_assign() and closed on CURL_POLL_REMOVE.
 * - A poll callback with status < 0 (libuv reports POLLERR as UV_EBADF and
 *   stops the handle) is forwarded as CURL_CSELECT_ERR.
 * - curl_multi_info_read() is drained after every socket_action; the
 *   request (CURLINFO_PRIVATE) and result are read before
 *   curl_multi_remove_handle(). Requests complete only from that drain
 *   loop or from our own done timer, never from write/header callbacks.
 * - CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION make sure an fd is
 *   never closed while libuv still polls it (libuv aborts on that): before
 *   curl closes a socket its poll is stopped and closed.
 * - curl_global_init() runs once per process.
 *
 * Name resolution: curl resolves names itself. Debian's libcurl4-openssl
 * 7.88 is built with the threaded resolver (curl_version_info() reports
 * AsynchDNS; http_async_dns() checks it at run time), so getaddrinfo runs
 * on curl's helper thread and never blocks the loop.
 *
 * TLS: CURLOPT_SSL_VERIFYPEER 1 and VERIFYHOST 2 always; CURLOPT_CAINFO
 * when a CA file is configured. There is no way to disable verification.
 */
#include "net/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

#define HTTP_URL_MAX (16 * 1024)

_Static_assert(HTTP_ERRSTR_MAX >= CURL_ERROR_SIZE, "errstr too small");

enum { REQ_IDLE = 0, REQ_ACTIVE = 1, REQ_CANCELED = 2 };

struct http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct http *http;
  struct http_sock *next, *prev;
  int curl_owned;   /* curl has it assigned (no CURL_POLL_REMOVE yet) */
  int poll_closing; /* uv_close() called */
  int poll_closed;  /* close callback ran */
};

static int curl_inited;

static void http_maybe_finish(struct http *h);

/* ---- lists ---- */

static void req_link(struct http_req **head, struct http_req *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head)
    (*head)->prev = r;
  *head = r;
}

static void req_unlink(struct http_req **head, struct http_req *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    *head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

/* ---- socket contexts ---- */

static void sock_maybe_free(struct http_sock *sk) {
  struct http *h = sk->http;
  if (!sk->poll_closed || sk->curl_owned)
    return;
  if (sk->prev)
    sk->prev->next = sk->next;
  else
    h->socks = sk->next;
  if (sk->next)
    sk->next->prev = sk->prev;
  free(sk);
  if (h->closing)
    http_maybe_finish(h);
}

static void sock_poll_closed_cb(uv_handle_t *handle) {
  struct http_sock *sk = handle->data;
  sk->poll_closed = 1;
  sock_maybe_free(sk);
}

/* Stops watching the fd; safe to call more than once. */
static void sock_poll_release(struct http_sock *sk) {
  if (sk->poll_closing)
    return;
  sk->poll_closing = 1;
  uv_poll_stop(&sk->poll);
  uv_close((uv_handle_t *)&sk->poll, sock_poll_closed_cb);
}

static struct http_sock *sock_find_live(struct http *h, curl_socket_t fd) {
  struct http_sock *sk;
  for (sk = h->socks; sk; sk = sk->next)
    if (sk->fd == fd && !sk->poll_closing)
      return sk;
  return NULL;
}

/* ---- completion ---- */

static int map_curl_code(struct http_req *req, CURLcode rc) {
  switch (rc) {
  case CURLE_OK:
    return 0;
  case CURLE_OPERATION_TIMEDOUT:
    return BL_ETIMEDOUT;
  case CURLE_PEER_FAILED_VERIFICATION:
    return BL_EVERIFY;
  case CURLE_FILESIZE_EXCEEDED:
    return BL_ETOOBIG;
  case CURLE_WRITE_ERROR:
    return req->too_big ? BL_ETOOBIG : BL_EHTTP;
  case CURLE_OUT_OF_MEMORY:
    return BL_ENOMEM;
  default:
    return BL_EHTTP;
  }
}

static long header_long(const struct http_req *req, const char *name) {
  size_t len;
  const char *v = http_req_header(req, name, &len);
  char tmp[32];
  char *end;
  long n;
  if (!v || len == 0 || len >= sizeof tmp)
    return -1;
  memcpy(tmp, v, len);
  tmp[len] = '\0';
  errno = 0;
  n = strtol(tmp, &end, 10);
  if (errno || *end != '\0' || n < 0)
    return -1;
  return n;
}

static void req_parse_headers(struct http_req *req) {
  req->used_weight_1m = header_long(req, "X-MBX-USED-WEIGHT-1M");
  req->retry_after_s = header_long(req, "Retry-After");
}

/* Detaches the easy handle from the multi handle and frees it. */
static void req_detach(struct http_req *req) {
  struct http *h = req->http;
  if (req->easy) {
    curl_multi_remove_handle(h->multi, req->easy);
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
  }
  req_unlink(&h->active, req);
  h->n_active--;
}

static void req_finish(struct http_req *req, CURLcode rc) {
  long code = 0;
  curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
  req->status = code;
  req->result = map_curl_code(req, rc);
  if (req->result && req->errstr[0] == '\0')
    snprintf(req->errstr, sizeof req->errstr, "%s", curl_easy_strerror(rc));
  if (req->result == BL_ETOOBIG && req->too_big)
    snprintf(req->errstr, sizeof req->errstr,
             "response over its limit of %zu bytes", req->body.max);
  req_detach(req);
  req_parse_headers(req);
  req->state = REQ_IDLE;
  req->cb(req, req->result);
}

/* Completes every finished transfer. Called after each socket_action,
 * outside every curl callback. */
static void http_drain(struct http *h) {
  CURLMsg *m;
  int pending;
  while (h->multi && (m = curl_multi_info_read(h->multi, &pending))) {
    CURLcode rc;
    char *priv = NULL;
    if (m->msg != CURLMSG_DONE)
      continue;
    rc = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    if (!priv)
      continue;
    req_finish((struct http_req *)priv, rc);
  }
}

static void http_action(struct http *h, curl_socket_t fd, int flags) {
  int running = 0;
  CURLMcode mc;
  if (!h->multi)
    return;
  mc = curl_multi_socket_action(h->multi, fd, flags, &running);
  if (mc != CURLM_OK)
    log_limited(BL_LOG_ERROR, "http", "curl_multi_socket_action: %s",
                curl_multi_strerror(mc));
  http_drain(h);
}

/* ---- curl callbacks (no socket_action, no completion in here) ---- */

static void http_poll_cb(uv_poll_t *poll, int status, int events) {
  struct http_sock *sk = poll->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  http_action(sk->http, sk->fd, flags);
}

static void http_timer_cb(uv_timer_t *timer) {
  struct http *h = timer->data;
  http_action(h, CURL_SOCKET_TIMEOUT, 0);
}

static int http_timer_fn(CURLM *multi, long timeout_ms, void *userp) {
  struct http *h = userp;
  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, http_timer_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

static int http_socket_fn(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp) {
  struct http *h = userp;
  struct http_sock *sk = socketp;
  int events = 0, rv;
  (void)easy;

  if (what == CURL_POLL_REMOVE) {
    if (sk) {
      sk->curl_owned = 0;
      curl_multi_assign(h->multi, s, NULL);
      sock_poll_release(sk);
    }
    return 0;
  }
  if (!sk) {
    sk = calloc(1, sizeof *sk);
    if (!sk)
      return -1;
    rv = uv_poll_init_socket(h->loop, &sk->poll, s);
    if (rv) {
      log_limited(BL_LOG_ERROR, "http", "uv_poll_init_socket(%d): %s", (int)s,
                  uv_strerror(rv));
      free(sk);
      return -1;
    }
    sk->poll.data = sk;
    sk->fd = s;
    sk->http = h;
    sk->curl_owned = 1;
    sk->next = h->socks;
    if (h->socks)
      h->socks->prev = sk;
    h->socks = sk;
    curl_multi_assign(h->multi, s, sk);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  rv = uv_poll_start(&sk->poll, events, http_poll_cb);
  if (rv) {
    log_limited(BL_LOG_ERROR, "http", "uv_poll_start(%d): %s", (int)s,
                uv_strerror(rv));
    return -1;
  }
  return 0;
}

static curl_socket_t http_open_fn(void *clientp, curlsocktype purpose,
                                  struct curl_sockaddr *addr) {
  struct http *h = clientp;
  struct http_sock *stale;
  curl_socket_t fd;
  if (purpose != CURLSOCKTYPE_IPCXN)
    return CURL_SOCKET_BAD;
  fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0)
    return CURL_SOCKET_BAD;
  /* A live context on this number means its fd was closed behind our
   * back: stop watching the old one before the number is reused. */
  stale = sock_find_live(h, fd);
  if (stale) {
    log_limited(BL_LOG_WARN, "http", "stale poll on reused fd %d", (int)fd);
    sock_poll_release(stale);
  }
  return fd;
}

static int http_close_fn(void *clientp, curl_socket_t fd) {
  struct http *h = clientp;
  struct http_sock *sk = sock_find_live(h, fd);
  if (sk)
    sock_poll_release(sk); /* CURL_POLL_REMOVE did not come first */
  return close(fd);
}

static size_t http_write_fn(char *ptr, size_t size, size_t n, void *userp) {
  struct http_req *req = userp;
  size_t len = size * n;
  int rv = buf_append(&req->body, ptr, len);
  if (rv) {
    if (rv == BL_ETOOBIG)
      req->too_big = 1;
    return 0; /* CURLE_WRITE_ERROR */
  }
  return len;
}

static size_t http_header_fn(char *ptr, size_t size, size_t n, void *userp) {
  struct http_req *req = userp;
  size_t len = size * n;
  if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    buf_reset(&req->headers); /* a new response (after 1xx) */
    return len;
  }
  if (buf_append(&req->headers, ptr, len)) {
    req->too_big = 1;
    return 0;
  }
  return len;
}

/* ---- public ---- */

int http_async_dns(void) {
  const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
  return vi && (vi->features & CURL_VERSION_ASYNCHDNS) ? 1 : 0;
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

int http_init(uv_loop_t *loop, struct http *h, const struct http_opts *opts) {
  int rv;
  memset(h, 0, sizeof *h);
  if (!curl_inited) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return BL_EHTTP;
    curl_inited = 1;
    if (!http_async_dns())
      log_warn("http", "libcurl lacks AsynchDNS: name lookups block the "
                       "loop; use IP addresses in URLs");
  }
  h->loop = loop;
  h->timeout_ms = HTTP_TIMEOUT_MS_DEFAULT;
  h->connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS_DEFAULT;
  h->body_max = HTTP_BODY_MAX_DEFAULT;
  if (opts) {
    if (opts->timeout_ms > 0)
      h->timeout_ms = opts->timeout_ms;
    if (opts->connect_timeout_ms > 0)
      h->connect_timeout_ms = opts->connect_timeout_ms;
    if (opts->body_max > 0)
      h->body_max = opts->body_max;
  }
  h->ca_file = dup_or_null(opts ? opts->ca_file : NULL);
  h->user_agent =
      strdup(opts && opts->user_agent ? opts->user_agent : "binance-live");
  if ((opts && opts->ca_file && !h->ca_file) || !h->user_agent) {
    rv = BL_ENOMEM;
    goto fail;
  }
  h->multi = curl_multi_init();
  if (!h->multi) {
    rv = BL_EHTTP;
    goto fail;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_fn);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_fn);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  rv = uv_timer_init(loop, &h->timer);
  if (rv)
    goto fail;
  rv = uv_timer_init(loop, &h->done_timer);
  if (rv) {
    /* The first timer is initialised: it must be closed, not forgotten. */
    uv_close((uv_handle_t *)&h->timer, NULL);
    goto fail;
  }
  h->timer.data = h;
  h->done_timer.data = h;
  h->handles_open = 2;
  return 0;
fail:
  if (h->multi)
    curl_multi_cleanup(h->multi);
  h->multi = NULL;
  free(h->ca_file);
  free(h->user_agent);
  h->ca_file = h->user_agent = NULL;
  return rv;
}

void http_req_init(struct http_req *req) {
  memset(req, 0, sizeof *req);
  req->used_weight_1m = -1;
  req->retry_after_s = -1;
  buf_init(&req->body, HTTP_BODY_MAX_DEFAULT);
  buf_init(&req->headers, HTTP_HEADERS_MAX);
}

void http_req_free(struct http_req *req) {
  buf_free(&req->body);
  buf_free(&req->headers);
  free(req->url);
  req->url = NULL;
}

static int build_url(CURL *easy, struct buf *u, const char *url,
                     const struct http_param *params, size_t n) {
  size_t i;
  int rv = buf_append_str(u, url);
  for (i = 0; i < n && !rv; i++) {
    char *k, *v;
    if (!params[i].name || !params[i].value)
      return BL_EINVAL;
    k = curl_easy_escape(easy, params[i].name, 0);
    v = curl_easy_escape(easy, params[i].value, 0);
    if (!k || !v)
      rv = BL_ENOMEM;
    else
      rv = buf_printf(u, "%c%s=%s", i == 0 && !strchr(url, '?') ? '?' : '&', k,
                      v);
    curl_free(k);
    curl_free(v);
  }
  return rv;
}

int http_get(struct http *h, struct http_req *req, const char *url,
             const struct http_param *params, size_t n_params, http_cb cb) {
  CURL *easy;
  struct buf u;
  int rv;
  long timeout;

  if (!h || !req || !url || !cb || (n_params && !params))
    return BL_EINVAL;
  if (req->state != REQ_IDLE)
    return BL_EINVAL;
  if (h->closing || !h->multi)
    return BL_ESTATE;

  easy = curl_easy_init();
  if (!easy)
    return BL_ENOMEM;
  buf_init(&u, HTTP_URL_MAX);
  rv = build_url(easy, &u, url, params, n_params);
  if (rv) {
    buf_free(&u);
    curl_easy_cleanup(easy);
    return rv;
  }

  /* Fresh results; the caller's settings stay. */
  buf_free(&req->body);
  buf_free(&req->headers);
  buf_init(&req->body, req->body_max ? req->body_max : h->body_max);
  buf_init(&req->headers, HTTP_HEADERS_MAX);
  free(req->url);
  req->url = u.data; /* taken from the buffer */
  req->result = 0;
  req->status = 0;
  req->used_weight_1m = -1;
  req->retry_after_s = -1;
  req->errstr[0] = '\0';
  req->too_big = 0;
  req->http = h;
  req->cb = cb;
  timeout = req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms;

  curl_easy_setopt(easy, CURLOPT_URL, req->url);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)req);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->errstr);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   h->connect_timeout_ms < timeout ? h->connect_timeout_ms
                                                   : timeout);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (h->ca_file)
    curl_easy_setopt(easy, CURLOPT_CAINFO, h->ca_file);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, h->user_agent);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->body.max);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write_fn);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header_fn);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, http_open_fn);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, h);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, http_close_fn);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, h);

  if (curl_multi_add_handle(h->multi, easy) != CURLM_OK) {
    curl_easy_cleanup(easy);
    return BL_EHTTP;
  }
  req->easy = easy;
  req->state = REQ_ACTIVE;
  req_link(&h->active, req);
  h->n_active++;
  return 0;
}

static void http_maybe_finish(struct http *h) {
  http_close_cb cb;
  if (!h->closing || h->multi || h->handles_open || h->socks || !h->close_cb)
    return;
  free(h->ca_file);
  free(h->user_agent);
  h->ca_file = h->user_agent = NULL;
  cb = h->close_cb;
  h->close_cb = NULL;
  cb(h);
}

static void http_timer_closed_cb(uv_handle_t *handle) {
  struct http *h = handle->data;
  h->handles_open--;
  http_maybe_finish(h);
}

/* Delivers the callbacks of canceled requests; during http_close() it
 * then tears curl down and closes the handles. */
static void http_done_cb(uv_timer_t *timer) {
  struct http *h = timer->data;
  struct http_sock *sk;
  while (h->done) {
    struct http_req *req = h->done;
    req_unlink(&h->done, req);
    req->state = REQ_IDLE;
    req->cb(req, BL_ECANCELED);
  }
  if (!h->closing || !h->multi)
    return;
  /* Socket callbacks (CURL_POLL_REMOVE) and close callbacks may run in
   * here; they release their polls. */
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  for (sk = h->socks; sk; sk = sk->next) {
    sk->curl_owned = 0;
    sock_poll_release(sk);
  }
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, http_timer_closed_cb);
  uv_close((uv_handle_t *)&h->done_timer, http_timer_closed_cb);
}

void http_cancel(struct http_req *req) {
  struct http *h = req->http;
  if (!h || req->state != REQ_ACTIVE)
    return;
  req_detach(req);
  req->state = REQ_CANCELED;
  req->result = BL_ECANCELED;
  snprintf(req->errstr, sizeof req->errstr, "canceled");
  req_link(&h->done, req);
  uv_timer_start(&h->done_timer, http_done_cb, 0, 0);
}

void http_close(struct http *h, http_close_cb cb) {
  if (h->closing)
    return;
  h->closing = 1;
  h->close_cb = cb;
  while (h->active)
    http_cancel(h->active);
  uv_timer_start(&h->done_timer, http_done_cb, 0, 0);
}

const char *http_req_header(const struct http_req *req, const char *name,
                            size_t *len) {
  const char *p = req->headers.data;
  const char *end = p ? p + req->headers.len : NULL;
  size_t nlen = strlen(name);
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && (size_t)(colon - p) == nlen &&
        strncasecmp(p, name, nlen) == 0) {
      const char *v = colon + 1, *ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      *len = (size_t)(ve - v);
      return v;
    }
    p = eol ? eol + 1 : end;
  }
  *len = 0;
  return NULL;
}
