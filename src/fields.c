/*
 * fields: request body fields under the SPEC §2 text rules.  See fields.h.
 */
#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "reply.h"
#include "utf8.h"
#include "util.h"

/* Not in an email: controls (C0, DEL, C1), white space, and the invisible
 * zero-width space and byte-order mark. */
static bool is_space_or_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || utf8_is_white_space(cp) || cp == 0x200B ||
	       cp == 0xFEFF;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int field_check_text(const char *value, size_t len, const struct text_rule *rule, char **out,
                     size_t *out_len, struct response *res)
{
	const char *start = value, *end = value + len;
	size_t n, count;
	char msg[128];

	if (memchr(value, '\0', len)) {
		reply_validation(res, rule->name, "must not contain NUL characters");
		return -1;
	}
	if (rule->trim) {
		while (start < end && is_space(*start))
			start++;
		while (end > start && is_space(end[-1]))
			end--;
	}
	n = (size_t)(end - start);
	if (utf8_count(start, n, &count) != 0) {
		reply_validation(res, rule->name, "must be valid UTF-8");
		return -1;
	}
	if (rule->unit == FIELD_BYTES)
		count = n;
	if (count < rule->min || count > rule->max) {
		snprintf(msg, sizeof msg, "must be %zu to %zu %s long", rule->min, rule->max,
		         rule->unit == FIELD_BYTES ? "bytes" : "characters");
		reply_validation(res, rule->name, msg);
		return -1;
	}
	*out = malloc(n + 1);
	if (!*out) {
		reply_internal(res);
		return -1;
	}
	memcpy(*out, start, n);
	(*out)[n] = '\0';
	*out_len = n;
	return 1;
}

int field_text(struct json_object *obj, const struct text_rule *rule, char **out, size_t *out_len,
               struct response *res)
{
	struct json_object *v;
	char msg[128];

	*out = NULL;
	*out_len = 0;
	/* null stands for "absent" only where absent is allowed; a required
	 * field given as null has the wrong type. */
	if (!json_object_object_get_ex(obj, rule->name, &v) ||
	    (!rule->required && json_object_is_type(v, json_type_null))) {
		if (!rule->required)
			return 0;
		reply_validation(res, rule->name, "is required");
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(msg, sizeof msg, "%s must be a string", rule->name);
		reply_bad_request(res, msg, rule->name);
		return -1;
	}
	return field_check_text(json_object_get_string(v), (size_t)json_object_get_string_len(v),
	                        rule, out, out_len, res);
}

int field_int(struct json_object *obj, const char *name, int64_t min, int64_t max, int64_t *out,
              struct response *res)
{
	struct json_object *v;
	char msg[128];

	if (!json_object_object_get_ex(obj, name, &v)) {
		reply_validation(res, name, "is required");
		return -1;
	}
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(msg, sizeof msg, "%s must be an integer", name);
		reply_bad_request(res, msg, name);
		return -1;
	}
	*out = json_object_get_int64(v);
	if (*out < min || *out > max) {
		snprintf(msg, sizeof msg, "must be from %" PRId64 " to %" PRId64, min, max);
		reply_validation(res, name, msg);
		return -1;
	}
	return 0;
}

int field_email(char *email, size_t len, const char *field, struct response *res)
{
	unsigned char *p = (unsigned char *)email, *end = p + len;
	size_t at = 0, ats = 0, count = 0;
	unsigned cp;

	while (p < end) {
		int step = utf8_decode(p, end, &cp);
		if (step < 0) {
			reply_validation(res, field, "must be valid UTF-8");
			return -1;
		}
		if (is_space_or_control(cp)) {
			reply_validation(res, field,
			                 "must not contain spaces or control characters");
			return -1;
		}
		if (cp == '@') {
			at = (size_t)(p - (unsigned char *)email);
			ats++;
		}
		if (cp >= 'A' && cp <= 'Z')
			*p = (unsigned char)(cp - 'A' + 'a');
		p += step;
		count++;
	}
	if (count < 3 || count > 254) {
		reply_validation(res, field, "must be 3 to 254 characters long");
		return -1;
	}
	if (ats != 1 || at == 0 || at == len - 1) {
		reply_validation(res, field,
		                 "must contain exactly one @ between a name and a domain");
		return -1;
	}
	return 0;
}

void field_free_secret(char *s, size_t len)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, len);
	free(s);
}

int field_query_int(const struct request *req, const char *name, int64_t min, int64_t max,
                    int64_t *out, struct response *res)
{
	char *raw, msg[96];
	size_t len;
	int64_t v = 0;
	int r = http_form_get(req->query, strlen(req->query), name, &raw, &len);
	bool ok;

	if (r == 0)
		return 0;
	/* "0" is the one canonical spelling util_parse_id (ids) refuses. */
	ok = r > 0 && ((min == 0 && len == 1 && raw[0] == '0') ||
	               (util_parse_id(raw, len, &v) == 0 && v <= max));
	free(raw);
	if (!ok) {
		if (max == INT64_MAX)
			snprintf(msg, sizeof msg,
			         "must be an integer from %" PRId64 " up, given once", min);
		else
			snprintf(msg, sizeof msg,
			         "must be an integer from %" PRId64 " to %" PRId64 ", given once",
			         min, max);
		reply_validation(res, name, msg);
		return -1;
	}
	*out = v;
	return 1;
}

bool field_is_blank(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	unsigned cp;

	while (p < end) {
		int step = utf8_decode(p, end, &cp);
		if (step < 0 || !utf8_is_white_space(cp))
			return false;
		p += step;
	}
	return true;
}

int field_idempotency_key(const struct request *req, size_t max, const char **key,
                          struct response *res)
{
	const char *k = req->idempotency_key;
	size_t n;

	*key = NULL;
	if (!k)
		return 0;
	n = strlen(k);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7E)
			n = 0;
	if (n < 1 || n > max) {
		char msg[64];

		snprintf(msg, sizeof msg, "must be 1 to %zu printable ASCII characters", max);
		reply_validation(res, "Idempotency-Key", msg);
		return -1;
	}
	*key = k;
	return 0;
}

int field_email_list(struct json_object *body, const char *name, size_t max,
                     struct json_object **out, struct response *res)
{
	const struct text_rule rule = {name, true, true, FIELD_CODEPOINTS, 1, 1024};
	struct json_object *v, *arr;
	char msg[64];
	size_t n;

	*out = NULL;
	arr = json_object_new_array();
	if (!arr) {
		reply_internal(res);
		return -1;
	}
	if (!json_object_object_get_ex(body, name, &v) || json_object_is_type(v, json_type_null)) {
		*out = arr;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(msg, sizeof msg, "%s must be an array of emails", name);
		reply_bad_request(res, msg, name);
		goto fail;
	}
	n = json_object_array_length(v);
	if (n > max) {
		snprintf(msg, sizeof msg, "at most %zu emails", max);
		reply_validation(res, name, msg);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		char *email;
		size_t len;

		if (!json_object_is_type(e, json_type_string)) {
			snprintf(msg, sizeof msg, "%s must be an array of emails", name);
			reply_bad_request(res, msg, name);
			goto fail;
		}
		if (field_check_text(json_object_get_string(e),
		                     (size_t)json_object_get_string_len(e), &rule, &email, &len,
		                     res) < 0)
			goto fail;
		if (field_email(email, len, name, res) < 0) {
			free(email);
			goto fail;
		}
		json_object_array_add(arr, json_object_new_string_len(email, (int)len));
		free(email);
	}
	*out = arr;
	return 0;
fail:
	json_object_put(arr);
	return -1;
}
