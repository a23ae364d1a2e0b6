/*
 * fields: request body fields under the SPEC §2 text rules.  See fields.h.
 */
#include "fields.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "reply.h"
#include "utf8.h"

/* Controls and the Unicode white space characters. */
static bool is_space_or_control(unsigned cp)
{
	return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
	       cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
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
