/*
 * utf8: strict UTF-8 decoding (RFC 3629): no overlong forms, no UTF-16
 * surrogates, nothing past U+10FFFF.  Used at the edge (http) to check a
 * whole body and by field validation to count code points; the one place
 * that knows how UTF-8 lengths are counted.
 */
#ifndef CHAT_UTF8_H
#define CHAT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Decode the code point at p (p < end) into *cp.  Returns its length in
 * bytes (1–4), or -1 if the bytes there are not valid UTF-8. */
int utf8_decode(const unsigned char *p, const unsigned char *end, unsigned *cp);

/* Count the code points of s[0..len); -1 if it is not valid UTF-8. */
int utf8_count(const char *s, size_t len, size_t *count);

/* Unicode's White_Space property (the characters a reader sees as blank):
 * the one table, for trimming checks and blank bodies. */
bool utf8_is_white_space(unsigned cp);

/* The lenient count, for bytes that need not be valid UTF-8 (a password
 * from the environment): the bytes that do not continue a sequence. */
size_t utf8_chars(const char *s, size_t len);

/* How many bytes of s[0..len) the first max characters take (counted as
 * utf8_chars() does), so a cut never splits a character. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

#endif
