/*
 * utf8: strict UTF-8 decoding (RFC 3629): no overlong forms, no UTF-16
 * surrogates, nothing past U+10FFFF.  Used at the edge (http) to check a
 * whole body and by field validation to count code points.
 */
#ifndef CHAT_UTF8_H
#define CHAT_UTF8_H

#include <stddef.h>

/* Decode the code point at p (p < end) into *cp.  Returns its length in
 * bytes (1–4), or -1 if the bytes there are not valid UTF-8. */
int utf8_decode(const unsigned char *p, const unsigned char *end, unsigned *cp);

/* Count the code points of s[0..len); -1 if it is not valid UTF-8. */
int utf8_count(const char *s, size_t len, size_t *count);

#endif
