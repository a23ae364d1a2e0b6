/*
 * fuzz_json: the two body parsers on their own, without the request around
 * them: jsonin (request bodies and token parts) and the form decoder
 * (login form, query strings).  The request target reaches both too, but
 * only behind a route, a media type and a length; here every execution
 * goes straight to the parser.
 *
 * Invariants: an accepted object, printed by json-c and parsed again, is
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
