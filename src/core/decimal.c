/*
 * decimal.c: validation and exact fixed-point conversion of decimal text
 * (see decimal.h). Stateless; integer arithmetic only.
 */
#include "core/decimal.h"

#include <string.h>

#include "core/err.h"

const uint64_t dec_pow10[DEC_POW10_COUNT] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

int dec_valid(const char *s, size_t len) {
  size_t i = 0, start;

  if (!s || len == 0 || len > DEC_TEXT_MAX)
    return 0;
  if (s[0] == '-')
    i = 1;
  start = i;
  while (i < len && is_digit(s[i]))
    i++;
  if (i == start)
    return 0; /* no integer digits: "", "-", ".5" */
  if (i == len)
    return 1;
  if (s[i] != '.')
    return 0;
  i++;
  start = i;
  while (i < len && is_digit(s[i]))
    i++;
  return i > start && i == len; /* "1." fails, "1.5x" fails */
}

int dec_to_scaled(const char *s, int scale, int64_t *out) {
  size_t len, i = 0;
  int neg = 0, frac_digits = 0;
  uint64_t mag = 0, limit;

  if (!s || !out || scale < 0 || scale > DEC_SCALE_MAX)
    return BL_EINVAL;
  len = strnlen(s, DEC_TEXT_MAX + 1);
  if (!dec_valid(s, len))
    return BL_EINVAL;
  if (s[0] == '-') {
    neg = 1;
    i = 1;
  }
  /* The magnitude may reach 2^63 for a negative value (INT64_MIN). */
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

  for (; i < len && s[i] != '.'; i++) {
    uint64_t d = (uint64_t)(s[i] - '0');
    if (mag > (limit - d) / 10)
      return BL_ETOOBIG;
    mag = mag * 10 + d;
  }
  /* Scale the integer part, then add the fractional digits in place. */
  if (mag > limit / dec_pow10[scale])
    return BL_ETOOBIG;
  mag *= dec_pow10[scale];
  if (i < len) {
    for (i++; i < len; i++) {
      uint64_t d = (uint64_t)(s[i] - '0');
      if (frac_digits >= scale) {
        if (d != 0)
          return BL_EINVAL; /* precision would be lost */
        continue;
      }
      frac_digits++;
      d *= dec_pow10[scale - frac_digits];
      if (mag > limit - d)
        return BL_ETOOBIG;
      mag += d;
    }
  }
  if (neg)
    *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  else
    *out = (int64_t)mag;
  return 0;
}

int dec_scale_from_tick(const char *s) {
  size_t len, dot;
  int scale = 0;

  if (!s)
    return BL_EINVAL;
  len = strnlen(s, DEC_TEXT_MAX + 1);
  if (!dec_valid(s, len) || s[0] == '-')
    return BL_EINVAL;
  for (dot = 0; dot < len && s[dot] != '.'; dot++)
    ;
  for (size_t i = dot + 1; i < len; i++) {
    if (s[i] != '0')
      scale = (int)(i - dot);
  }
  return scale > DEC_SCALE_MAX ? BL_ETOOBIG : scale;
}

int dec_from_scaled(int64_t v, int scale, char *out, size_t outlen) {
  char tmp[32]; /* 20 digits, '-', '.', leading "0." and zeros: < 32 */
  size_t n = 0, pos;
  uint64_t mag;
  int digits = 0;

  if (scale < 0 || scale > DEC_SCALE_MAX) {
    if (out && outlen > 0)
      out[0] = '\0';
    return BL_EINVAL;
  }
  mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  /* Build the text backwards in tmp, from its end. */
  pos = sizeof tmp;
  do {
    if (digits == scale && scale > 0)
      tmp[--pos] = '.';
    tmp[--pos] = (char)('0' + mag % 10);
    mag /= 10;
    digits++;
  } while (mag > 0 || digits <= scale);
  if (v < 0)
    tmp[--pos] = '-';
  n = sizeof tmp - pos;
  if (!out || outlen < n + 1) {
    if (out && outlen > 0)
      out[0] = '\0';
    return BL_ETOOBIG;
  }
  memcpy(out, tmp + pos, n);
  out[n] = '\0';
  return (int)n;
}

int dec_is_zero(const char *s) {
  size_t len, i;

  if (!s)
    return 0;
  len = strnlen(s, DEC_TEXT_MAX + 1);
  if (!dec_valid(s, len))
    return 0;
  for (i = s[0] == '-' ? 1 : 0; i < len; i++) {
    if (s[i] != '0' && s[i] != '.')
      return 0;
  }
  return 1;
}
