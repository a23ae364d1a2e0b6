/*
 * jsonin: the one strict JSON parser for untrusted text.  Request bodies
 * (http) and token headers and payloads (token) both come through here, so
 * an auditor reads one set of rules:
 *
 *   - the text is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 *     nothing past U+10FFFF) and holds no NUL byte;
 *   - a \u escape is never a lone UTF-16 surrogate;
 *   - strings hold no raw control character, and outside strings only the
 *     bytes of the JSON grammar appear (no NaN, Infinity, comments or
 *     single quotes);
 *   - json-c in strict mode, depth at most JSONIN_MAX_DEPTH;
 *   - exactly one value, an object, followed by nothing but white space.
 *
 * The text need not be NUL-terminated.  On success the caller owns the
 * object (json_object_put()).
 */
#ifndef CHAT_JSONIN_H
#define CHAT_JSONIN_H

#include <stddef.h>

struct json_object;

/* Deeper than any document we accept needs; bounds json-c's stack. */
#define JSONIN_MAX_DEPTH 8

enum jsonin_status {
	JSONIN_OK = 0,
	JSONIN_EMPTY,      /* no bytes at all */
	JSONIN_NUL,        /* a raw NUL byte */
	JSONIN_NOT_UTF8,   /* bad UTF-8, or a lone surrogate escape */
	JSONIN_SYNTAX,     /* not JSON (json-c or the pre-scan says so) */
	JSONIN_TRAILING,   /* a value, then more than white space */
	JSONIN_NOT_OBJECT, /* valid JSON, but not an object */
	JSONIN_NO_MEMORY,
};

enum jsonin_status jsonin_parse_object(const char *text, size_t len, struct json_object **out);

#endif
