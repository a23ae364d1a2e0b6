/*
 * util: the small pure helpers several modules need, written once: strict
 * decimal parsing, a lookup in an envp-style array, the monotonic clock,
 * lower-case hex and HTTP's optional white space.  Nothing here allocates,
 * keeps state or knows about requests; UTF-8 has its own module (utf8.h).
 */
#ifndef CHAT_UTIL_H
#define CHAT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Strict unsigned decimal s[0..n): at least one digit, digits only (no
 * sign, no spaces, no "0x"), at most max.  Leading zeros are allowed.
 * Returns 0 with *out set, or -1 (nothing written).
 */
int util_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);

/* A positive decimal int64 in canonical form (digits only, no sign, no
 * leading zero): the only shape of an id in a path, a query or a token's
 * "sub".  0, or -1. */
int util_parse_id(const char *s, size_t n, int64_t *out);

/* The value of NAME in a NULL-terminated "NAME=value" array (CGI
 * parameters, an environment); like getenv, the first entry wins.  NULL if
 * absent or if envp is NULL. */
const char *util_env_get(char *const *envp, const char *name);

/* CLOCK_MONOTONIC in nanoseconds: the same clock in every process. */
uint64_t util_now_ns(void);

/* in[0..n) as 2n lower-case hex digits and a NUL (OPENSSL_buf2hexstr()
 * writes upper case with colons). */
void util_hex(const unsigned char *in, size_t n, char *out);

/* HTTP's optional white space (RFC 9110 §5.6.3): space and horizontal tab. */
bool util_is_ows(char c);

/* Format an error message into ERR (ERRLEN bytes); a NULL or empty buffer
 * is allowed and ignored, so callers pass theirs through unchecked. */
void util_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
