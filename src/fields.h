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
#include <stdint.h>

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

/* Is s[0..n) only white space (utf8_is_white_space)?  An empty text is;
 * invalid UTF-8 is not. */
bool field_is_blank(const char *s, size_t n);

/*
 * Body field `name`, a required JSON integer from min to max: absent is 422,
 * another JSON type (1.0 and 1e3 are numbers, not integers) is 400, out of
 * range is 422, each naming the field.  An integer beyond int64 reads as
 * the nearest int64 (json-c saturates), so it fails or passes as that.
 * 0 with *out set, or -1 with the answer in *res.
 */
int field_int(struct json_object *obj, const char *name, int64_t min, int64_t max, int64_t *out,
              struct response *res);

/*
 * Query parameter `name` as a canonical decimal integer from min (0 or 1)
 * to max.  Returns 1 with *out set, 0 when absent (*out untouched), or -1
 * with a 422 naming the parameter (a bad value, a bad percent-escape, or
 * the name given twice).
 */
int field_query_int(const struct request *req, const char *name, int64_t min, int64_t max,
                    int64_t *out, struct response *res);

/* The Idempotency-Key header: absent (*key NULL), or 1 to max printable
 * ASCII characters (0x20–0x7E; the web server has already stripped spaces
 * around it).  0, or -1 with a 422 naming the header. */
int field_idempotency_key(const struct request *req, size_t max, const char **key,
                          struct response *res);

/*
 * Body field `name`: absent or null (an empty list), or an array of at most
 * max emails under field_email's rules (400 if not an array of strings, 422
 * naming `name` otherwise).  *out is a JSON array of the lower-cased emails
 * (json-c does the encoding; the text goes to PostgreSQL as one parameter
 * value), owned by the caller.  0, or -1 with the answer in *res.
 */
int field_email_list(struct json_object *body, const char *name, size_t max,
                     struct json_object **out, struct response *res);

/* Free a string that may hold a secret. */
void field_free_secret(char *s, size_t len);

#endif
