/*
 * jsonin: strict JSON objects from untrusted text.  See jsonin.h.
 *
 * json-c 0.16 is laxer than RFC 8259 even with JSON_TOKENER_STRICT |
 * JSON_TOKENER_VALIDATE_UTF8: it takes overlong forms, surrogates and code
 * points past U+10FFFF, NaN/Infinity, single-quoted strings, raw control
 * characters inside strings and numbers such as "1." or "01", and a NUL ends
 * its view of the input early.  So the text is pre-scanned first, then
 * handed to json-c.
 */
#include "jsonin.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "utf8.h"

/* Value of the four hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int d = OPENSSL_hexchar2int(p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* After "\u" at p: how many bytes the escape still spans (4, or 10 for a
 * surrogate pair such as "\ud83d\ude00"), or -1 for a lone UTF-16 surrogate,
 * which json-c would store as U+FFFD, silently changing the text.  Bad hex
 * is left to json-c, which refuses it. */
static int unicode_escape_len(const unsigned char *p, const unsigned char *end)
{
	long u = hex4(p, end), low;

	if (u < 0)
		return 0;
	if (u >= 0xDC00 && u <= 0xDFFF)
		return -1;
	if (u < 0xD800 || u > 0xDBFF)
		return 4;
	if (end - p < 10 || p[4] != '\\' || p[5] != 'u')
		return -1;
	low = hex4(p + 6, end);
	return low >= 0xDC00 && low <= 0xDFFF ? 10 : -1;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the RFC 8259 number at p, or -1.  json-c 0.16 also takes
 * "1.", "00", "-01" and "08e5", so numbers are checked here (found by
 * fuzz_json against the grammar). */
static long number_len(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q = p;

	if (q < end && *q == '-')
		q++;
	if (q < end && *q == '0') {
		q++;
	} else if (q < end && *q >= '1' && *q <= '9') {
		while (q < end && is_digit(*q))
			q++;
	} else {
		return -1;
	}
	if (q < end && *q == '.') {
		if (++q == end || !is_digit(*q))
			return -1;
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q == end || !is_digit(*q))
			return -1;
		while (q < end && is_digit(*q))
			q++;
	}
	/* "01", "1.2.3", "1e5e5", "1-2": another number part right after. */
	if (q < end && (is_digit(*q) || (*q && strchr(".eE+-", *q))))
		return -1;
	return q - p;
}

static enum jsonin_status prescan(const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + n;
	bool in_string = false, escaped = false;
	unsigned cp;

	while (p < end) {
		int step = utf8_decode(p, end, &cp);

		if (step < 0)
			return JSONIN_NOT_UTF8;
		if (cp == 0)
			return JSONIN_NUL;
		if (in_string) {
			if (cp < 0x20)
				return JSONIN_SYNTAX;
			if (escaped) {
				escaped = false;
				if (cp == 'u') {
					int skip = unicode_escape_len(p + 1, end);
					if (skip < 0)
						return JSONIN_NOT_UTF8;
					p += skip;
				}
			} else if (cp == '\\')
				escaped = true;
			else if (cp == '"')
				in_string = false;
		} else if (cp == '"') {
			in_string = true;
		} else if (cp == '-' || is_digit(*p)) {
			long len = number_len(p, end);
			if (len < 0)
				return JSONIN_SYNTAX;
			p += len;
			continue;
		} else if (cp >= 0x80 || !strchr(" \t\r\n{}[]:,truefalsn", (int)cp)) {
			return JSONIN_SYNTAX;
		}
		p += step;
	}
	return JSONIN_OK;
}

enum jsonin_status jsonin_parse_object(const char *text, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error err;
	enum jsonin_status st;
	size_t end;

	*out = NULL;
	if (len == 0)
		return JSONIN_EMPTY;
	if (len >= INT_MAX)
		return JSONIN_SYNTAX; /* json-c counts in int; bodies are capped far below */
	st = prescan(text, len);
	if (st != JSONIN_OK)
		return st;
	tok = json_tokener_new_ex(JSONIN_MAX_DEPTH);
	if (!tok)
		return JSONIN_NO_MEMORY;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!obj && err == json_tokener_continue) {
		/* A value that only its end delimits (a bare number): tell json-c
		 * the input is over.  The value then ended at len. */
		obj = json_tokener_parse_ex(tok, "", 1);
		err = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (!obj || err != json_tokener_success) {
		json_object_put(obj);
		return err == json_tokener_error_parse_utf8_string ? JSONIN_NOT_UTF8
		                                                   : JSONIN_SYNTAX;
	}
	/* In strict mode json-c consumes the white space after the value and
	 * fails on anything else, so a success ends at len; a guard, should a
	 * json-c ever stop at the closing brace instead. */
	if (end != len) {
		json_object_put(obj);
		return JSONIN_TRAILING;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return JSONIN_NOT_OBJECT;
	}
	*out = obj;
	return JSONIN_OK;
}
