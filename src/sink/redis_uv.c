/*
 * redis_uv.c: hiredis 0.14.1 async contexts on libuv (see redis_uv.h).
 *
 * hiredis drives us through ac->ev: addRead/delRead/addWrite/delWrite
 * change the events of the one uv_poll_t on the context's fd, cleanup
 * (called by hiredis right before it frees the context and closes the fd)
 * stops and closes the poll and the watchdog. Our struct outlives the
 * context until both handles' close callbacks ran.
 */
#include "sink/redis_uv.h"

#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

/* Reads of up to 16 KiB hiredis makes per readable event at most. */
#define REDIS_UV_READ_ROUNDS 64

/* Room kept in hiredis' output buffer once it has been written out. */
#define REDIS_UV_OBUF_KEEP (128u * 1024u)

struct redis_uv {
  redisAsyncContext *ac; /* NULL after cleanup */
  /* Reply objects: see reply_string. */
  redisReplyObjectFunctions fns, *orig_fns;
  redisReply status_slot, int_slot;
  int status_used, int_used;
  char status_text[32];
  uv_poll_t poll;
  uv_timer_t watchdog;
  int events;
  int handles_open;
  uint64_t connect_ms, command_ms;
  uint64_t attached_at, last_read_at;
};

/* hiredis frees its output buffer each time it has written all of it and
 * starts again from an empty sds, which then doubles its way up through a
 * dozen reallocs (copying) while the next commands are appended: 4 % of
 * the collector's samples under a stream of publishes. After a write,
 * give the empty buffer its room back in one allocation. (The buffer is
 * redisContext.obuf, an sds, in hiredis 0.14; if the room cannot be had
 * the buffer stays as it is.) */
static void redis_uv_keep_obuf(redisAsyncContext *ac) {
  sds b = ac->c.obuf, n;
  if (b == NULL || sdslen(b) != 0 || sdsavail(b) >= REDIS_UV_OBUF_KEEP)
    return;
  n = sdsMakeRoomFor(b, REDIS_UV_OBUF_KEEP);
  if (n != NULL)
    ac->c.obuf = n;
}

/* Every command of the sink gets a top-level "+OK" or ":N" reply, which
 * hiredis builds with two or one mallocs and frees right after the reply
 * callback. The context's reader builds those two kinds in a slot of this
 * struct instead (one of each at a time; a second one while the first is
 * held, a nested reply, a long status and every other kind go to hiredis'
 * own functions). A slot is marked by its |element| pointing at us, which
 * hiredis' objects of these types never have (calloc'd, no elements). */
static void *reply_string(const redisReadTask *task, char *str, size_t len) {
  struct redis_uv *p = task->privdata;
  redisReply *r = &p->status_slot;
  if (task->parent != NULL || task->type != REDIS_REPLY_STATUS ||
      len >= sizeof p->status_text || p->status_used)
    return p->orig_fns->createString(task, str, len);
  memset(r, 0, sizeof *r);
  r->type = REDIS_REPLY_STATUS;
  memcpy(p->status_text, str, len);
  p->status_text[len] = '\0';
  r->str = p->status_text;
  r->len = len;
  r->element = (redisReply **)(void *)p;
  p->status_used = 1;
  return r;
}

static void *reply_integer(const redisReadTask *task, long long v) {
  struct redis_uv *p = task->privdata;
  redisReply *r = &p->int_slot;
  if (task->parent != NULL || p->int_used)
    return p->orig_fns->createInteger(task, v);
  memset(r, 0, sizeof *r);
  r->type = REDIS_REPLY_INTEGER;
  r->integer = v;
  r->element = (redisReply **)(void *)p;
  p->int_used = 1;
  return r;
}

static void *reply_array(const redisReadTask *task, int n) {
  struct redis_uv *p = task->privdata;
  return p->orig_fns->createArray(task, n);
}

static void *reply_nil(const redisReadTask *task) {
  struct redis_uv *p = task->privdata;
  return p->orig_fns->createNil(task);
}

static void reply_free(void *obj) {
  redisReply *r = obj;
  if (r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER) &&
      r->element != NULL) {
    struct redis_uv *p = (struct redis_uv *)(void *)r->element;
    if (r == &p->status_slot)
      p->status_used = 0;
    else
      p->int_used = 0;
    return;
  }
  freeReplyObject(obj);
}

static void redis_uv_handle_closed(uv_handle_t *handle) {
  struct redis_uv *p = handle->data;
  if (--p->handles_open == 0)
    free(p);
}

static void redis_uv_poll_cb(uv_poll_t *poll, int status, int events) {
  struct redis_uv *p = poll->data;
  if (status < 0) {
    /* POLLERR/POLLHUP: libuv stopped the handle. Let hiredis find out
     * (connect failure, reset) through the events it asked for. */
    events = p->events;
    if (!events)
      events = UV_READABLE;
  }
  if (p->ac && (events & UV_READABLE)) {
    /* hiredis reads at most 16 KiB of replies per call; under a stream of
     * commands that falls behind what the loop queues in one iteration.
     * Keep reading while the socket has bytes (bounded per wake-up). */
    int pending = 0, rounds = 0;
    p->last_read_at = uv_now(poll->loop);
    do {
      redisAsyncHandleRead(p->ac);
    } while (p->ac && ++rounds < REDIS_UV_READ_ROUNDS &&
             ioctl(p->ac->c.fd, FIONREAD, &pending) == 0 && pending > 0);
  }
  if (p->ac && (events & UV_WRITABLE)) {
    redisAsyncHandleWrite(p->ac);
    if (p->ac)
      redis_uv_keep_obuf(p->ac);
  }
  /* After an error libuv stopped the poll; restart it if the context
   * survived and still wants events. */
  if (status < 0 && p->ac && p->events)
    uv_poll_start(&p->poll, p->events, redis_uv_poll_cb);
}

void redis_uv_pump(redisAsyncContext *ac) {
  struct redis_uv *p = ac ? ac->ev.data : NULL;
  int pending = 0;
  if (!p || p->ac != ac || !(ac->c.flags & REDIS_CONNECTED))
    return;
  redisAsyncHandleWrite(ac);
  if (p->ac)
    redis_uv_keep_obuf(p->ac);
  if (p->ac && ioctl(p->ac->c.fd, FIONREAD, &pending) == 0 && pending > 0) {
    p->last_read_at = uv_now(p->poll.loop);
    redisAsyncHandleRead(p->ac);
  }
}

static void redis_uv_update(struct redis_uv *p) {
  int rv;
  if (!p->ac)
    return;
  if (p->events)
    rv = uv_poll_start(&p->poll, p->events, redis_uv_poll_cb);
  else
    rv = uv_poll_stop(&p->poll);
  if (rv)
    log_limited(BL_LOG_ERROR, "redis", "uv_poll_start: %s", uv_strerror(rv));
}

/* hiredis asks for write interest on every command; re-arming the poll
 * each time costs two epoll_ctl calls, so only a change is applied. */
static void redis_uv_set(struct redis_uv *p, int events) {
  if (events == p->events)
    return;
  p->events = events;
  redis_uv_update(p);
}

static void redis_uv_add_read(void *privdata) {
  struct redis_uv *p = privdata;
  redis_uv_set(p, p->events | UV_READABLE);
}

static void redis_uv_del_read(void *privdata) {
  struct redis_uv *p = privdata;
  redis_uv_set(p, p->events & ~UV_READABLE);
}

static void redis_uv_add_write(void *privdata) {
  struct redis_uv *p = privdata;
  redis_uv_set(p, p->events | UV_WRITABLE);
}

static void redis_uv_del_write(void *privdata) {
  struct redis_uv *p = privdata;
  redis_uv_set(p, p->events & ~UV_WRITABLE);
}

static void redis_uv_cleanup(void *privdata) {
  struct redis_uv *p = privdata;
  p->ac = NULL;
  p->events = 0;
  uv_poll_stop(&p->poll);
  uv_timer_stop(&p->watchdog);
  uv_close((uv_handle_t *)&p->poll, redis_uv_handle_closed);
  uv_close((uv_handle_t *)&p->watchdog, redis_uv_handle_closed);
}

/* Fails the context as hiredis would on an I/O error. */
static void redis_uv_fail(struct redis_uv *p, const char *why) {
  redisAsyncContext *ac = p->ac;
  int connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  ac->c.err = REDIS_ERR_IO;
  snprintf(ac->c.errstr, sizeof ac->c.errstr, "%s", why);
  ac->err = ac->c.err;
  ac->errstr = ac->c.errstr;
  /* hiredis calls onConnect(REDIS_ERR) for a failed connect and then
   * frees without onDisconnect; mirror that for a connect timeout. */
  if (!connected && ac->onConnect)
    ac->onConnect(ac, REDIS_ERR);
  redisAsyncFree(ac); /* onDisconnect(REDIS_ERR) when it was connected */
}

static void redis_uv_watchdog_cb(uv_timer_t *timer) {
  struct redis_uv *p = timer->data;
  uint64_t now = uv_now(timer->loop);
  redisAsyncContext *ac = p->ac;
  if (!ac)
    return;
  if (!(ac->c.flags & REDIS_CONNECTED)) {
    if (p->connect_ms && now - p->attached_at >= p->connect_ms)
      redis_uv_fail(p, "connect timeout");
    return;
  }
  if (!ac->replies.head) {
    p->last_read_at = now; /* nothing awaited: the clock starts later */
    return;
  }
  if (p->command_ms && now - p->last_read_at >= p->command_ms)
    redis_uv_fail(p, "command timeout");
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop, uint64_t connect_ms,
                    uint64_t command_ms) {
  struct redis_uv *p;
  uint64_t tick;
  int rv;
  if (!ac || ac->ev.data)
    return BL_EINVAL;
  p = calloc(1, sizeof *p);
  if (!p)
    return BL_ENOMEM;
  rv = uv_poll_init_socket(loop, &p->poll, ac->c.fd);
  if (rv) {
    free(p);
    return rv;
  }
  uv_timer_init(loop, &p->watchdog); /* cannot fail */
  p->poll.data = p;
  p->watchdog.data = p;
  p->handles_open = 2;
  p->ac = ac;
  p->connect_ms = connect_ms;
  p->command_ms = command_ms;
  p->attached_at = p->last_read_at = uv_now(loop);

  tick = 250;
  if (connect_ms && connect_ms / 4 < tick)
    tick = connect_ms / 4;
  if (command_ms && command_ms / 4 < tick)
    tick = command_ms / 4;
  if (tick < 5)
    tick = 5;
  if (connect_ms || command_ms)
    uv_timer_start(&p->watchdog, redis_uv_watchdog_cb, tick, tick);
  uv_unref((uv_handle_t *)&p->watchdog); /* the poll keeps the loop alive */

  if (ac->c.reader && ac->c.reader->fn && !ac->c.reader->privdata) {
    p->orig_fns = ac->c.reader->fn;
    p->fns.createString = reply_string;
    p->fns.createArray = reply_array;
    p->fns.createInteger = reply_integer;
    p->fns.createNil = reply_nil;
    p->fns.freeObject = reply_free;
    ac->c.reader->fn = &p->fns;
    ac->c.reader->privdata = p;
  }

  ac->ev.data = p;
  ac->ev.addRead = redis_uv_add_read;
  ac->ev.delRead = redis_uv_del_read;
  ac->ev.addWrite = redis_uv_add_write;
  ac->ev.delWrite = redis_uv_del_write;
  ac->ev.cleanup = redis_uv_cleanup;
  return 0;
}
