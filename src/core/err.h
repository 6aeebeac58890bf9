/*
 * err.h: the project's one error enum.
 *
 * Every function that can fail returns 0 or a negative code. libuv's UV_E*
 * codes (negative errno values, all above -4096) pass through unchanged;
 * the project's own codes start at BL_ERR_BASE, well below them, so one int
 * carries either kind and bl_strerror() names both. Library-specific codes
 * (mbedTLS, CURLcode, PGRES_*, REDIS_ERR) are translated at the module edge
 * into one of these; the library's own detail text stays on the object that
 * failed (its errstr field).
 */
#ifndef BL_CORE_ERR_H
#define BL_CORE_ERR_H

#define BL_ERR_BASE (-30000)

enum bl_err {
  BL_OK = 0,
  BL_ENOMEM = BL_ERR_BASE - 1,     /* allocation failed */
  BL_EINVAL = BL_ERR_BASE - 2,     /* invalid argument or value */
  BL_EPARSE = BL_ERR_BASE - 3,     /* malformed input (JSON, YAML, HTTP, ...) */
  BL_ETOOBIG = BL_ERR_BASE - 4,    /* input over its size limit */
  BL_EPROTO = BL_ERR_BASE - 5,     /* peer violated its protocol */
  BL_ETLS = BL_ERR_BASE - 6,       /* TLS failure (detail on the object) */
  BL_EVERIFY = BL_ERR_BASE - 7,    /* certificate verification failed */
  BL_EHANDSHAKE = BL_ERR_BASE - 8, /* WebSocket upgrade refused or bad */
  BL_ETIMEDOUT = BL_ERR_BASE - 9,  /* an operation took too long */
  BL_ECLOSED = BL_ERR_BASE - 10,   /* the peer or the caller closed */
  BL_EPG = BL_ERR_BASE - 11,       /* PostgreSQL error (detail on object) */
  BL_EREDIS = BL_ERR_BASE - 12,    /* Redis error (detail on object) */
  BL_EHTTP = BL_ERR_BASE - 13,     /* HTTP transfer failed */
  BL_ECONFIG = BL_ERR_BASE - 14,   /* configuration is invalid */
  BL_EFULL = BL_ERR_BASE - 15,     /* a bounded queue or buffer is full */
  BL_ESTATE = BL_ERR_BASE - 16,    /* call not allowed in this state */
  BL_EIO = BL_ERR_BASE - 17,       /* file or device I/O failed */
  BL_ECORRUPT = BL_ERR_BASE - 18,  /* stored data failed its checksum */
  BL_ERATELIMIT = BL_ERR_BASE - 19, /* exchange rate limit (429) */
  BL_EBANNED = BL_ERR_BASE - 20,    /* exchange IP ban (418) */
  BL_ECANCELED = BL_ERR_BASE - 21,  /* canceled by shutdown or the caller */
  BL_ENOTFOUND = BL_ERR_BASE - 22,  /* no such key, symbol or file */
  BL_ERR_LAST = BL_ERR_BASE - 23
};

/* Returns a static description of |err|: a BL_E* code, a UV_E* code, or 0. */
const char *bl_strerror(int err);

/* Returns the short symbolic name ("BL_EPARSE", "ECONNREFUSED", "OK"). */
const char *bl_errname(int err);

#endif
