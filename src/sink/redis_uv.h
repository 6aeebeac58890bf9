/*
 * redis_uv.h: the project's own hiredis 0.14.1 adapter for libuv
 * (docs/c-stack.md A5). It replaces <hiredis/adapters/libuv.h>, which must
 * not be included anywhere, and fixes its defects:
 * - a poll callback with status != 0 (a refused connect arrives as POLLERR,
 *   status UV_EBADF, and libuv stops the handle) dispatches the registered
 *   read and write events, so hiredis sees the error instead of hanging;
 * - uv_poll_init_socket with checked errors, nothing leaked on failure;
 * - no static on_close (or any other generic name);
 * - a watchdog timer: a connect that takes longer than connect_ms, or a
 *   reply awaited for longer than command_ms without any byte read, fails
 *   the context with errstr "connect timeout" / "command timeout". Like a
 *   refused connect, a connect timeout calls the connect callback with
 *   REDIS_ERR; a command timeout frees the context, so the disconnect
 *   callback runs (hiredis passes REDIS_OK for a context freed on purpose:
 *   check ac->err, which is REDIS_ERR_IO, and ac->errstr). hiredis frees
 *   the context afterwards in both cases.
 *
 * State (one per context, freed after its two handles are closed): the
 * context pointer (NULL once hiredis cleaned up), the uv_poll_t on the
 * context's fd, the events wanted, the watchdog uv_timer_t and the times
 * of attachment and of the last read.
 */
#ifndef BL_SINK_REDIS_UV_H
#define BL_SINK_REDIS_UV_H

#include <stdint.h>
#include <uv.h>

#include <hiredis/async.h>

/* Attaches |ac| (fresh from redisAsyncConnect, ac->err == 0) to |loop|.
 * |connect_ms| and |command_ms| are the watchdog limits; 0 disables one.
 * Returns 0, BL_EINVAL (already attached), BL_ENOMEM or a UV_E* code; on
 * error nothing is attached and the caller frees |ac| with
 * redisAsyncFree(). */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop, uint64_t connect_ms,
                    uint64_t command_ms);

/* Writes what hiredis holds for |ac| and reads the replies already on the
 * socket (their callbacks run), without waiting for the loop's next poll.
 * For a caller that queues thousands of commands in one loop iteration:
 * Redis works on them meanwhile and their replies return the in-flight
 * credits early. The context may be gone afterwards (its disconnect
 * callback ran): reload any saved pointer. No-op on a context not
 * attached or already failed. */
void redis_uv_pump(redisAsyncContext *ac);

#endif
