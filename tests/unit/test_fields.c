/*
 * Unit tests for src/fields.c: the SPEC §2 text rules every handler relies
 * on.
 * (UTF-8 itself is tested in test_utf8.c.)  Length bounds are tested on both sides of each
 * limit, in code points where the rule counts characters and in bytes where
 * it counts bytes, with multi-byte text so the two units cannot be confused.
 * Every failure is checked through the answer a client would get: the
 * status, and the "error" and "field" members of the JSON body.
 */
#include <check.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "fields.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- helpers ----------------------------------------------------------- */

static void expect_error(const struct response *res, int status, const char *code,
                         const char *field)
{
	struct json_object *v;

	ck_assert_int_eq(res->status, status);
	ck_assert_ptr_nonnull(res->json);
	ck_assert(json_object_object_get_ex(res->json, "error", &v));
	ck_assert_str_eq(json_object_get_string(v), code);
	ck_assert(json_object_object_get_ex(res->json, "detail", &v));
	ck_assert(json_object_is_type(v, json_type_string));
	ck_assert_int_gt(json_object_get_string_len(v), 0);
	if (field) {
		ck_assert(json_object_object_get_ex(res->json, "field", &v));
		ck_assert_str_eq(json_object_get_string(v), field);
	} else {
		ck_assert(!json_object_object_get_ex(res->json, "field", NULL));
	}
}

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	ck_assert_msg(o != NULL, "test JSON does not parse: %s", text);
	return o;
}

/* Run field_text on JSON `text`; returns its result, leaves *res filled. */
static int text_of(const char *text, const struct text_rule *rule, char **out, size_t *out_len,
                   struct response *res)
{
	struct json_object *o = parse(text);
	int rc;

	http_response_init(res);
	rc = field_text(o, rule, out, out_len, res);
	json_object_put(o);
	return rc;
}

/* {"<name>": "<value>"} with the value JSON-escaped by json-c. */
static struct json_object *object_with(const char *name, const char *value, size_t len)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, name, json_object_new_string_len(value, (int)len));
	return o;
}

static int text_value(const char *value, size_t len, const struct text_rule *rule, char **out,
                      size_t *out_len, struct response *res)
{
	struct json_object *o = object_with(rule->name, value, len);
	int rc;

	http_response_init(res);
	rc = field_text(o, rule, out, out_len, res);
	json_object_put(o);
	return rc;
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * times + t + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * u, unit, u);
	memcpy(s + u * times, tail, t + 1);
	return s;
}

static const struct text_rule title_rule = {"title", true, true, FIELD_CODEPOINTS, 1, 4};
static const struct text_rule nick_rule = {"nick", false, true, FIELD_CODEPOINTS, 1, 4};
static const struct text_rule pass_rule = {"password", true, false, FIELD_BYTES, 8, 1024};

/* ---- field_text --------------------------------------------------------- */

START_TEST(text_ok)
{
	struct response res;
	char *out;
	size_t len;

	ck_assert_int_eq(text_of("{\"title\":\"abc\"}", &title_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, "abc");
	ck_assert_uint_eq(len, 3);
	free(out);
	http_response_free(&res);
}
END_TEST

START_TEST(text_required_missing)
{
	struct response res;
	char *out = (char *)1;
	size_t len = 7;

	ck_assert_int_eq(text_of("{\"other\":\"x\"}", &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	ck_assert_ptr_null(out);
	http_response_free(&res);
}
END_TEST

START_TEST(text_optional_missing)
{
	struct response res;
	char *out = (char *)1;
	size_t len = 7;

	ck_assert_int_eq(text_of("{}", &nick_rule, &out, &len, &res), 0);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_null(res.json); /* no answer was written */
	http_response_free(&res);
}
END_TEST

/* Wrong JSON types are a 400 bad_request naming the field. */
static const char *const wrong_types[] = {
    "{\"title\":5}",       "{\"title\":1.5}", "{\"title\":true}",
    "{\"title\":[\"a\"]}", "{\"title\":{}}",  "{\"title\":null}",
};

START_TEST(text_wrong_type)
{
	struct response res;
	char *out = (char *)1;
	size_t len;

	ck_assert_msg(text_of(wrong_types[_i], &title_rule, &out, &len, &res) == -1, "%s accepted",
	              wrong_types[_i]);
	ck_assert_msg(res.status == 400, "%s: status %d, want 400", wrong_types[_i], res.status);
	expect_error(&res, 400, "bad_request", "title");
	ck_assert_ptr_null(out);
	http_response_free(&res);
}
END_TEST

START_TEST(text_optional_wrong_type)
{
	struct response res;
	char *out;
	size_t len;

	ck_assert_int_eq(text_of("{\"nick\":7}", &nick_rule, &out, &len, &res), -1);
	expect_error(&res, 400, "bad_request", "nick");
	http_response_free(&res);
}
END_TEST

START_TEST(text_nul_rejected)
{
	struct response res;
	char *out = (char *)1;
	size_t len;

	/* parsed from the \u0000 escape, as http_parse_json_object lets it through */
	ck_assert_int_eq(text_of("{\"title\":\"a\\u0000b\"}", &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	ck_assert_ptr_null(out);
	http_response_free(&res);

	ck_assert_int_eq(text_value("pass\0word", 9, &pass_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "password");
	http_response_free(&res);
}
END_TEST

START_TEST(text_invalid_utf8_rejected)
{
	struct response res;
	char *out;
	size_t len;

	ck_assert_int_eq(text_value("a\xc0\xaf", 3, &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);
	ck_assert_int_eq(text_value("\xed\xa0\x80", 3, &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);
}
END_TEST

START_TEST(text_trimmed)
{
	struct response res;
	char *out;
	size_t len;

	ck_assert_int_eq(
	    text_of("{\"title\":\" \\t\\n ab c\\r\\n \"}", &title_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, "ab c");
	ck_assert_uint_eq(len, 4);
	free(out);
	http_response_free(&res);

	/* "  abcd  " is 8 before trimming but 4 after: the bound applies after */
	ck_assert_int_eq(text_of("{\"title\":\"  abcd  \"}", &title_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, "abcd");
	free(out);
	http_response_free(&res);

	/* only blanks: empty after trimming, below min 1 */
	ck_assert_int_eq(text_of("{\"title\":\"   \"}", &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);
}
END_TEST

START_TEST(text_not_trimmed_without_trim)
{
	struct response res;
	char *out;
	size_t len;

	ck_assert_int_eq(text_of("{\"password\":\"  secret  \"}", &pass_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, "  secret  ");
	ck_assert_uint_eq(len, 10);
	free(out);
	http_response_free(&res);
}
END_TEST

START_TEST(text_codepoint_bounds)
{
	struct response res;
	char *out;
	size_t len;
	static const char four[] = "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac"; /* ééé€ */
	static const char five[] = "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac"
	                           "a";

	ck_assert_int_eq(text_value(four, 9, &title_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, four);
	ck_assert_uint_eq(len, 9);
	free(out);
	http_response_free(&res);

	ck_assert_int_eq(text_value(five, 10, &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);

	ck_assert_int_eq(text_value("\xf0\x9f\x98\x80", 4, &title_rule, &out, &len, &res), 1);
	free(out);
	http_response_free(&res);

	ck_assert_int_eq(text_value("", 0, &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);
}
END_TEST

START_TEST(text_byte_bounds)
{
	struct response res;
	char *out;
	size_t len;
	char *s;

	s = repeat("a", 8, "");
	ck_assert_int_eq(text_value(s, 8, &pass_rule, &out, &len, &res), 1);
	ck_assert_uint_eq(len, 8);
	free(out);
	http_response_free(&res);
	free(s);

	s = repeat("a", 7, "");
	ck_assert_int_eq(text_value(s, 7, &pass_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "password");
	http_response_free(&res);
	free(s);

	/* four é are 4 code points but 8 bytes: long enough in bytes */
	ck_assert_int_eq(
	    text_value("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, &pass_rule, &out, &len, &res), 1);
	free(out);
	http_response_free(&res);

	s = repeat("x", 1024, "");
	ck_assert_int_eq(text_value(s, 1024, &pass_rule, &out, &len, &res), 1);
	ck_assert_uint_eq(len, 1024);
	ck_assert_mem_eq(out, s, 1024);
	free(out);
	http_response_free(&res);
	free(s);

	s = repeat("x", 1025, "");
	ck_assert_int_eq(text_value(s, 1025, &pass_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "password");
	http_response_free(&res);
	free(s);

	/* 513 é: 513 code points but 1026 bytes: too long in bytes */
	s = repeat("\xc3\xa9", 513, "");
	ck_assert_int_eq(text_value(s, 1026, &pass_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "password");
	http_response_free(&res);
	free(s);
}
END_TEST

START_TEST(check_text_direct)
{
	struct response res;
	char *out;
	size_t len;

	http_response_init(&res);
	ck_assert_int_eq(field_check_text(" al ice ", 8, &title_rule, &out, &len, &res), -1);
	expect_error(&res, 422, "validation_failed", "title");
	http_response_free(&res);

	http_response_init(&res);
	ck_assert_int_eq(field_check_text(" alic ", 6, &title_rule, &out, &len, &res), 1);
	ck_assert_str_eq(out, "alic");
	free(out);
	http_response_free(&res);
}
END_TEST

/* ---- field_email -------------------------------------------------------- */

static int email(char *s, struct response *res)
{
	http_response_init(res);
	return field_email(s, strlen(s), "email", res);
}

START_TEST(email_lowercased)
{
	struct response res;
	char s[] = "A@X.io";
	char t[] = "Caf\xc3\x89@Example.COM"; /* CaféÉ: only ASCII is folded */

	ck_assert_int_eq(email(s, &res), 0);
	ck_assert_str_eq(s, "a@x.io");
	ck_assert_ptr_null(res.json);
	http_response_free(&res);

	ck_assert_int_eq(email(t, &res), 0);
	ck_assert_str_eq(t, "caf\xc3\x89@example.com");
	http_response_free(&res);
}
END_TEST

START_TEST(email_length_bounds)
{
	struct response res;
	char s3[] = "a@b";
	char s2[] = "ab";
	char *s;

	ck_assert_int_eq(email(s3, &res), 0);
	http_response_free(&res);

	ck_assert_int_eq(email(s2, &res), -1);
	expect_error(&res, 422, "validation_failed", "email");
	http_response_free(&res);

	/* 254 ASCII characters */
	s = repeat("b", 250, "@x.i");
	ck_assert_uint_eq(strlen(s), 254);
	ck_assert_int_eq(email(s, &res), 0);
	http_response_free(&res);
	free(s);

	s = repeat("b", 251, "@x.i");
	ck_assert_int_eq(email(s, &res), -1);
	expect_error(&res, 422, "validation_failed", "email");
	http_response_free(&res);
	free(s);

	/* counted in code points: 249 é + "@x.io" is 254 characters, 503 bytes */
	s = repeat("\xc3\xa9", 249, "@x.io");
	ck_assert_int_eq(email(s, &res), 0);
	http_response_free(&res);
	free(s);

	s = repeat("\xc3\xa9", 250, "@x.io");
	ck_assert_int_eq(email(s, &res), -1);
	expect_error(&res, 422, "validation_failed", "email");
	http_response_free(&res);
	free(s);
}
END_TEST

static const char *const bad_emails[] = {
    "alice.example.com",      /* no '@' */
    "a@b@c.io",               /* two */
    "@example.com",           /* nothing before */
    "alice@",                 /* nothing after */
    "ali ce@x.io",            /* space */
    "alice@x.io ",            /* trailing space (the caller trims first) */
    "ali\tce@x.io",           /* tab */
    "ali\nce@x.io",           /* newline */
    "alice\x01@x.io",         /* control character */
    "alice\x7f@x.io",         /* DEL */
    "alice\xc2\x85@x.io",     /* U+0085 NEL */
    "alice\xc2\xa0@x.io",     /* U+00A0 no-break space */
    "alice\xe3\x80\x80@x.io", /* U+3000 ideographic space */
    "alice\xe2\x80\x8b@x.io", /* U+200B zero-width space */
    "alice\xe2\x80\xa8@x.io", /* U+2028 line separator */
    "alice\xef\xbb\xbf@x.io", /* U+FEFF */
    "alice\xc0\xaf@x.io",     /* invalid UTF-8 (overlong) */
    "alice\xff@x.io",         /* invalid UTF-8 */
};

START_TEST(email_rejected)
{
	struct response res;
	char *s = strdup(bad_emails[_i]);

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(email(s, &res) == -1, "case %d accepted", _i);
	expect_error(&res, 422, "validation_failed", "email");
	http_response_free(&res);
	free(s);
}
END_TEST

START_TEST(email_field_name_passed_through)
{
	struct response res;
	char s[] = "nobody";

	http_response_init(&res);
	ck_assert_int_eq(field_email(s, strlen(s), "members", &res), -1);
	expect_error(&res, 422, "validation_failed", "members");
	http_response_free(&res);
}
END_TEST

START_TEST(free_secret_null)
{
	char *s = strdup("hunter22");

	ck_assert_ptr_nonnull(s);
	field_free_secret(s, strlen(s));
	field_free_secret(NULL, 0); /* must be a no-op */
}
END_TEST

/* ---- query integers, blank text, Idempotency-Key, email lists ----------- */

static int query(const char *q, const char *name, int64_t min, int64_t max, int64_t *out,
                 struct response *res)
{
	struct request req = {0};

	req.query = (char *)q;
	http_response_init(res);
	return field_query_int(&req, name, min, max, out, res);
}

START_TEST(query_int_bounds)
{
	struct response res;
	int64_t v = -7;

	ck_assert_int_eq(query("a=1", "limit", 1, 200, &v, &res), 0);
	ck_assert_int_eq(v, -7); /* absent: untouched */
	ck_assert_int_eq(query("limit=200", "limit", 1, 200, &v, &res), 1);
	ck_assert_int_eq(v, 200);
	ck_assert_int_eq(query("after=0", "after", 0, INT64_MAX, &v, &res), 1);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(query("before=9223372036854775807", "before", 1, INT64_MAX, &v, &res), 1);
	ck_assert_int_eq(v, INT64_MAX);
	static const char *const bad[] = {"limit=201", "limit=0",   "limit=01",  "limit=",
	                                  "limit=-1",  "limit=1e2", "limit=%zz", "limit=1&limit=2"};
	for (int i = 0; i < N(bad); i++) {
		ck_assert_msg(query(bad[i], "limit", 1, 200, &v, &res) == -1, "%s", bad[i]);
		expect_error(&res, 422, "validation_failed", "limit");
		http_response_free(&res);
	}
	ck_assert_int_eq(query("before=0", "before", 1, INT64_MAX, &v, &res), -1);
	expect_error(&res, 422, "validation_failed", "before");
	http_response_free(&res);
}
END_TEST

START_TEST(blank_is_white_space_only)
{
	ck_assert(field_is_blank("", 0));
	ck_assert(field_is_blank(" \t\r\n", 4));
	ck_assert(
	    field_is_blank("\xc2\xa0\xe3\x80\x80\xe2\x80\xa8", 8)); /* NBSP, ideographic, LS */
	ck_assert(!field_is_blank(" a ", 3));
	/* Zero-width space is not White_Space: such a body is not blank. */
	ck_assert(!field_is_blank("\xe2\x80\x8b", 3));
	ck_assert(!field_is_blank("\xff", 1));
}
END_TEST

START_TEST(idempotency_key_rules)
{
	struct request req = {0};
	struct response res;
	const char *key = "x";
	char long_key[130];

	http_response_init(&res);
	ck_assert_int_eq(field_idempotency_key(&req, 128, &key, &res), 0);
	ck_assert_ptr_null(key);
	req.idempotency_key = "~ok key!";
	ck_assert_int_eq(field_idempotency_key(&req, 128, &key, &res), 0);
	ck_assert_str_eq(key, "~ok key!");
	memset(long_key, 'k', 128);
	long_key[128] = '\0';
	req.idempotency_key = long_key;
	ck_assert_int_eq(field_idempotency_key(&req, 128, &key, &res), 0);
	long_key[128] = 'k';
	long_key[129] = '\0';
	static const char *const bad[] = {"", "tab\there", "del\x7f", "caf\xc3\xa9", NULL};
	for (int i = 0; i < N(bad); i++) {
		req.idempotency_key = bad[i] ? (char *)bad[i] : long_key;
		ck_assert_int_eq(field_idempotency_key(&req, 128, &key, &res), -1);
		expect_error(&res, 422, "validation_failed", "Idempotency-Key");
		http_response_free(&res);
		http_response_init(&res);
	}
	http_response_free(&res);
}
END_TEST

static int email_list(const char *body, size_t max, struct json_object **out, struct response *res)
{
	struct json_object *o = parse(body);
	int r;

	http_response_init(res);
	r = field_email_list(o, "members", max, out, res);
	json_object_put(o);
	return r;
}

START_TEST(email_list_rules)
{
	struct json_object *out;
	struct response res;

	ck_assert_int_eq(email_list("{}", 2, &out, &res), 0);
	ck_assert_uint_eq(json_object_array_length(out), 0);
	json_object_put(out);
	ck_assert_int_eq(email_list("{\"members\":null}", 2, &out, &res), 0);
	ck_assert_uint_eq(json_object_array_length(out), 0);
	json_object_put(out);
	ck_assert_int_eq(email_list("{\"members\":[\" B@X.io \",\"c@x.io\"]}", 2, &out, &res), 0);
	ck_assert_str_eq(json_object_to_json_string(out), "[ \"b@x.io\", \"c@x.io\" ]");
	json_object_put(out);

	ck_assert_int_eq(
	    email_list("{\"members\":[\"a@x.io\",\"b@x.io\",\"c@x.io\"]}", 2, &out, &res), -1);
	ck_assert_ptr_null(out);
	expect_error(&res, 422, "validation_failed", "members");
	http_response_free(&res);
	ck_assert_int_eq(email_list("{\"members\":\"a@x.io\"}", 2, &out, &res), -1);
	expect_error(&res, 400, "bad_request", "members");
	http_response_free(&res);
	ck_assert_int_eq(email_list("{\"members\":[1]}", 2, &out, &res), -1);
	expect_error(&res, 400, "bad_request", "members");
	http_response_free(&res);
	ck_assert_int_eq(email_list("{\"members\":[\"nobody\"]}", 2, &out, &res), -1);
	expect_error(&res, 422, "validation_failed", "members");
	http_response_free(&res);
}
END_TEST

static Suite *fields_suite(void)
{
	Suite *s = suite_create("fields");
	TCase *text = tcase_create("text");
	TCase *mail = tcase_create("email");

	tcase_add_test(text, text_ok);
	tcase_add_test(text, text_required_missing);
	tcase_add_test(text, text_optional_missing);
	tcase_add_loop_test(text, text_wrong_type, 0, N(wrong_types));
	tcase_add_test(text, text_optional_wrong_type);
	tcase_add_test(text, text_nul_rejected);
	tcase_add_test(text, text_invalid_utf8_rejected);
	tcase_add_test(text, text_trimmed);
	tcase_add_test(text, text_not_trimmed_without_trim);
	tcase_add_test(text, text_codepoint_bounds);
	tcase_add_test(text, text_byte_bounds);
	tcase_add_test(text, check_text_direct);
	tcase_add_test(text, query_int_bounds);
	tcase_add_test(text, blank_is_white_space_only);
	tcase_add_test(text, idempotency_key_rules);
	tcase_add_test(text, email_list_rules);
	suite_add_tcase(s, text);

	tcase_add_test(mail, email_lowercased);
	tcase_add_test(mail, email_length_bounds);
	tcase_add_loop_test(mail, email_rejected, 0, N(bad_emails));
	tcase_add_test(mail, email_field_name_passed_through);
	tcase_add_test(mail, free_secret_null);
	suite_add_tcase(s, mail);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fields_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
