/*
 * decimal.h: the exchange's decimal text, checked and converted exactly.
 *
 * Binance sends prices and quantities as JSON strings such as "0.35280000"
 * or "-1.234". Events keep that text unchanged (so what is stored equals
 * what was received); the order book turns it into fixed-point int64 values
 * at a per-symbol scale derived from the tick size. No function here uses
 * floating point, allocates, or keeps state.
 */
#ifndef BL_CORE_DECIMAL_H
#define BL_CORE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Longest accepted text, in bytes, without the NUL (EV_DEC_MAX - 1). */
#define DEC_TEXT_MAX 47
/* Largest scale (decimals kept) of a fixed-point value: 10^18 fits int64. */
#define DEC_SCALE_MAX 18

/* Powers of ten that fit a uint64_t: dec_pow10[i] == 10^i, i < 20. */
#define DEC_POW10_COUNT 20
extern const uint64_t dec_pow10[DEC_POW10_COUNT];

/* Returns 1 when s[0..len) is: an optional '-', one or more digits, and
 * optionally a '.' followed by one or more digits; at most DEC_TEXT_MAX
 * bytes. No '+', exponent, spaces, empty parts ("1.", ".5", "-") or NUL
 * bytes. Returns 0 otherwise. */
int dec_valid(const char *s, size_t len);

/* Converts the NUL-terminated decimal |s| to an integer counting units of
 * 10^-scale: dec_to_scaled("0.3528", 8, &v) gives 35280000. Exact: digits
 * beyond |scale| must be zeros ("1.500" at scale 1 is 15).
 * Returns 0, or BL_EINVAL (not dec_valid, scale outside 0..DEC_SCALE_MAX,
 * or a non-zero digit beyond the scale), or BL_ETOOBIG (outside int64).
 * *out is written only on success. */
int dec_to_scaled(const char *s, int scale, int64_t *out);

/* The number of decimals a tick or step size needs: "0.00000100" gives 6,
 * "1.00000000" and "10" give 0, and "0" (a disabled filter) gives 0.
 * Returns the scale, or BL_EINVAL (not dec_valid, or negative), or
 * BL_ETOOBIG (more than DEC_SCALE_MAX decimals). */
int dec_scale_from_tick(const char *s);

/* Formats |v| units of 10^-scale with exactly |scale| decimals ("0.35280000"
 * for 35280000 at scale 8; "-12" for -12 at scale 0) into |out| of |outlen|
 * bytes, NUL-terminated. Returns the length written (without the NUL), or
 * BL_EINVAL (scale outside 0..DEC_SCALE_MAX) or BL_ETOOBIG (|out| too
 * small; out is then "" when outlen > 0). */
int dec_from_scaled(int64_t v, int scale, char *out, size_t outlen);

/* Returns 1 when the valid decimal |s| equals zero ("0", "0.00000000",
 * "-0.0"), 0 otherwise (also for invalid text). */
int dec_is_zero(const char *s);

#endif
