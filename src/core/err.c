/*
 * err.c: names and descriptions for the codes of err.h and libuv's codes.
 */
#include "core/err.h"

#include <uv.h>

static const struct {
  int code;
  const char *name;
  const char *text;
} bl_errors[] = {
    {BL_ENOMEM, "BL_ENOMEM", "out of memory"},
    {BL_EINVAL, "BL_EINVAL", "invalid argument"},
    {BL_EPARSE, "BL_EPARSE", "malformed input"},
    {BL_ETOOBIG, "BL_ETOOBIG", "input over its size limit"},
    {BL_EPROTO, "BL_EPROTO", "protocol violation"},
    {BL_ETLS, "BL_ETLS", "TLS error"},
    {BL_EVERIFY, "BL_EVERIFY", "certificate verification failed"},
    {BL_EHANDSHAKE, "BL_EHANDSHAKE", "WebSocket handshake failed"},
    {BL_ETIMEDOUT, "BL_ETIMEDOUT", "timed out"},
    {BL_ECLOSED, "BL_ECLOSED", "connection closed"},
    {BL_EPG, "BL_EPG", "PostgreSQL error"},
    {BL_EREDIS, "BL_EREDIS", "Redis error"},
    {BL_EHTTP, "BL_EHTTP", "HTTP transfer failed"},
    {BL_ECONFIG, "BL_ECONFIG", "invalid configuration"},
    {BL_EFULL, "BL_EFULL", "queue full"},
    {BL_ESTATE, "BL_ESTATE", "not allowed in this state"},
    {BL_EIO, "BL_EIO", "I/O error"},
    {BL_ECORRUPT, "BL_ECORRUPT", "data corrupt"},
    {BL_ERATELIMIT, "BL_ERATELIMIT", "rate limited by the exchange"},
    {BL_EBANNED, "BL_EBANNED", "banned by the exchange"},
    {BL_ECANCELED, "BL_ECANCELED", "canceled"},
    {BL_ENOTFOUND, "BL_ENOTFOUND", "not found"},
};

static int bl_err_index(int err) {
  for (unsigned i = 0; i < sizeof bl_errors / sizeof bl_errors[0]; i++)
    if (bl_errors[i].code == err)
      return (int)i;
  return -1;
}

const char *bl_strerror(int err) {
  int i;
  if (err == 0)
    return "success";
  i = bl_err_index(err);
  if (i >= 0)
    return bl_errors[i].text;
  if (err > BL_ERR_BASE)
    return uv_strerror(err);
  return "unknown error";
}

const char *bl_errname(int err) {
  int i;
  if (err == 0)
    return "OK";
  i = bl_err_index(err);
  if (i >= 0)
    return bl_errors[i].name;
  if (err > BL_ERR_BASE)
    return uv_err_name(err);
  return "UNKNOWN";
}
