/*
 * fields: typed access to the fields of a parsed JSON request body, with the
 * SPEC §2 text rules applied once for every handler: the JSON type must
 * match (else 400 bad_request with the field), text must be valid UTF-8
 * without NUL, optionally trimmed, and its length within bounds counted in
 * code points or bytes (else 422 validation_failed with the field).
 */
#ifndef CHAT_FIELDS_H
#define CHAT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "http.h"
#include "utf8.h" /* utf8_count */

enum field_unit { FIELD_CODEPOINTS, FIELD_BYTES };

struct text_rule {
	const char *name;
	bool required;
	bool trim;
	enum field_unit unit;
	size_t min;
	size_t max;
};

/*
 * Read the text field rule->name of obj.  Returns 1 with a malloc'd copy in
 * *out (NUL-terminated, *out_len bytes), 0 if absent and optional, or -1
 * with the error answer already in *res.
 */
int field_text(struct json_object *obj, const struct text_rule *rule, char **out, size_t *out_len,
               struct response *res);

/* Apply the same rule to a value from elsewhere (a form field). */
int field_check_text(const char *value, size_t len, const struct text_rule *rule, char **out,
                     size_t *out_len, struct response *res);

/* SPEC §2 email: 3–254 code points, one '@' with non-empty sides, no
 * whitespace or control characters.  Lower-cases ASCII letters in place.
 * Returns 0, or -1 with a 422 in *res. */
int field_email(char *email, size_t len, const char *field, struct response *res);

/* Free a string that may hold a secret. */
void field_free_secret(char *s, size_t len);

#endif
