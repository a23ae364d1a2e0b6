/*
 * fuzz_json: the two body parsers on their own, without the request around
 * them: jsonin (request bodies and token parts) and the form decoder
 * (login form, query strings).  The request target reaches both too, but
 * only behind a route, a media type and a length; here every execution
 * goes straight to the parser.
 *
 * Invariants: jsonin accepts exactly what an independent reference of RFC
 * 8259's grammar plus jsonin's own rules accepts; an accepted object,
 * printed by json-c and parsed again, is
 * accepted and equal (what we accept, we can also emit); trailing white
 * space changes nothing; a decoded form value is never longer than its
 * text and holds no NUL.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "harness.h"
#include "http.h"
#include "jsonin.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The reference: RFC 8259's grammar, written out as a recursive descent,
 * with the rules jsonin adds (jsonin.h): strict UTF-8, no lone surrogate
 * escape, an object at the top, at most MAX_NESTING containers deep.  It
 * shares no code with jsonin or json-c, so "jsonin accepts exactly what
 * this accepts" is a check of both.
 */
#define MAX_NESTING (JSONIN_MAX_DEPTH - 1) /* json-c counts one level more */

struct cursor {
	const unsigned char *p, *end;
};

static void ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(struct cursor *c, char ch)
{
	if (c->p < c->end && *c->p == (unsigned char)ch) {
		c->p++;
		return true;
	}
	return false;
}

static bool digit(const struct cursor *c)
{
	return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

static long hex4(struct cursor *c)
{
	long v = 0;

	for (int i = 0; i < 4; i++, c->p++) {
		unsigned char h = c->p < c->end ? *c->p : 0;
		int d = h >= '0' && h <= '9'   ? h - '0'
		        : h >= 'a' && h <= 'f' ? h - 'a' + 10
		        : h >= 'A' && h <= 'F' ? h - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static bool string(struct cursor *c)
{
	if (!eat(c, '"'))
		return false;
	while (c->p < c->end) {
		unsigned cp;
		int n;
		if (*c->p == '"') {
			c->p++;
			return true;
		}
		if (*c->p == '\\') {
			c->p++;
			if (c->p >= c->end)
				return false;
			if (strchr("\"\\/bfnrt", *c->p) && *c->p) {
				c->p++;
			} else if (eat(c, 'u')) {
				long u = hex4(c);
				if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
					return false;
				if (u >= 0xD800 && u <= 0xDBFF) {
					long low;
					if (!eat(c, '\\') || !eat(c, 'u'))
						return false;
					low = hex4(c);
					if (low < 0xDC00 || low > 0xDFFF)
						return false;
				}
			} else {
				return false;
			}
			continue;
		}
		n = utf8_decode(c->p, c->end, &cp);
		if (n < 0 || cp < 0x20)
			return false;
		c->p += n;
	}
	return false;
}

static bool number(struct cursor *c)
{
	eat(c, '-');
	if (eat(c, '0')) {
		/* no leading zeros */
	} else if (digit(c)) {
		while (digit(c))
			c->p++;
	} else {
		return false;
	}
	if (eat(c, '.')) {
		if (!digit(c))
			return false;
		while (digit(c))
			c->p++;
	}
	if (eat(c, 'e') || eat(c, 'E')) {
		if (!eat(c, '+'))
			eat(c, '-');
		if (!digit(c))
			return false;
		while (digit(c))
			c->p++;
	}
	return true;
}

static bool literal(struct cursor *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool value(struct cursor *c, int depth);

static bool members(struct cursor *c, int depth, bool object)
{
	char close = object ? '}' : ']';

	if (depth > MAX_NESTING)
		return false;
	ws(c);
	if (eat(c, close))
		return true;
	for (;;) {
		if (object) {
			if (!string(c))
				return false;
			ws(c);
			if (!eat(c, ':'))
				return false;
		}
		if (!value(c, depth))
			return false;
		if (eat(c, close))
			return true;
		if (!eat(c, ','))
			return false;
		ws(c);
	}
}

/* ws value ws */
static bool value(struct cursor *c, int depth)
{
	bool ok;

	ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '{':
		c->p++;
		ok = members(c, depth + 1, true);
		break;
	case '[':
		c->p++;
		ok = members(c, depth + 1, false);
		break;
	case '"':
		ok = string(c);
		break;
	case 't':
		ok = literal(c, "true");
		break;
	case 'f':
		ok = literal(c, "false");
		break;
	case 'n':
		ok = literal(c, "null");
		break;
	default:
		ok = number(c);
	}
	ws(c);
	return ok;
}

static bool reference_accepts(const uint8_t *data, size_t size)
{
	struct cursor c = {data, data + size};

	ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return false;
	return value(&c, 0) && c.p == c.end;
}

static void check_json(const uint8_t *data, size_t size)
{
	struct json_object *obj = NULL, *again = NULL;
	enum jsonin_status st;
	unsigned char *copy = malloc(size + 2);

	if (!copy)
		fuzz_fail("out of memory");
	/* A buffer of exactly the input's size: no NUL after it to lean on. */
	memcpy(copy, data, size);
	st = jsonin_parse_object((const char *)copy, size, &obj);
	if ((st == JSONIN_OK) != (obj != NULL))
		fuzz_fail("status %d with object %p", st, (void *)obj);
	if ((st == JSONIN_OK) != reference_accepts(data, size))
		fuzz_fail("jsonin says %d, the RFC 8259 reference %s", st,
		          st == JSONIN_OK ? "refuses" : "accepts");
	if (st == JSONIN_OK) {
		size_t n = 0;
		const char *text = json_object_to_json_string_length(
		    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
		if (jsonin_parse_object(text, n, &again) != JSONIN_OK)
			fuzz_fail("json-c's own printing of an accepted object is refused: %s",
			          text);
		if (!json_object_equal(obj, again))
			fuzz_fail("an accepted object changed when printed and parsed again");
		json_object_put(again);
		again = NULL;
		memcpy(copy + size, " \n", 2);
		if (jsonin_parse_object((const char *)copy, size + 2, &again) != JSONIN_OK ||
		    !json_object_equal(obj, again))
			fuzz_fail("trailing white space changed the outcome");
		json_object_put(again);
	}
	json_object_put(obj);
	free(copy);
}

static void check_form(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"username", "password", "limit", "before", "after"};
	char *copy = malloc(size ? size : 1);

	if (!copy)
		fuzz_fail("out of memory");
	memcpy(copy, data, size);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *value = NULL;
		size_t len = 0;
		int r = http_form_get(copy, size, names[i], &value, &len);

		if (r < -1 || r > 1 || (r == 1) != (value != NULL))
			fuzz_fail("http_form_get returned %d with value %p", r, (void *)value);
		if (r == 1 && (len > size || strlen(value) != len))
			fuzz_fail("decoded value of %zu bytes (NUL inside, or longer than %zu)",
			          len, size);
		free(value);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_json(data, size);
	check_form(data, size);
	return 0;
}
