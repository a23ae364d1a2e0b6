/*
 * Unit tests for src/jsonin.c: the one strict JSON parser for request
 * bodies and token parts.
 *
 * The tables are written from RFC 8259's grammar and the rules jsonin.h
 * adds, not from what json-c happens to accept: the "json-c takes it" rows
 * are inputs json-c 0.16 parses in strict mode, so each one fails if the
 * pre-scan in front of it lets it through.  Every input is passed in a
 * buffer of exactly its length, with no NUL after it, as a token's decoded
 * payload is.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonin.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parse s from an exact-size heap copy (ASan sees any read past it). */
static enum jsonin_status parse(const char *s, size_t n, struct json_object **out)
{
	char *copy = malloc(n ? n : 1);
	enum jsonin_status st;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, n);
	st = jsonin_parse_object(copy, n, out);
	free(copy);
	return st;
}

static const char *const good[] = {
    "{}",
    " \t\r\n{}\r\n ",
    "{\"a\":1}",
    "{\"a\":-0}",
    "{\"a\":0.5e-3}",
    "{\"a\":1E+05}", /* leading zeros are fine in an exponent */
    "{\"a\":1e400}", /* grammar-valid; range is the reader's business */
    "{\"a\":[true,false,null,\"x\",{}]}",
    "{\"a\":\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
    "{\"a\":\"\\u0000\"}", /* an escaped NUL is JSON; the field rules refuse it */
    "{\"caf\xc3\xa9\":\"\xf0\x9f\x98\x80\"}",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":[1]}}}}}}", /* 7 levels: the most */
};

static const struct {
	const char *text;
	enum jsonin_status st;
	const char *why;
} bad[] = {
    {"", JSONIN_EMPTY, "nothing"},
    {"{\"a\":1.}", JSONIN_SYNTAX, "json-c takes it: no digit after the point"},
    {"{\"a\":1.e5}", JSONIN_SYNTAX, "json-c takes it: no digit after the point"},
    {"{\"a\":00}", JSONIN_SYNTAX, "json-c takes it: leading zero"},
    {"{\"a\":-01}", JSONIN_SYNTAX, "json-c takes it: leading zero"},
    {"{\"a\":08e5}", JSONIN_SYNTAX, "json-c takes it: leading zero"},
    {"{\"a\":01}", JSONIN_SYNTAX, "leading zero"},
    {"{\"a\":.5}", JSONIN_SYNTAX, "no integer part"},
    {"{\"a\":+1}", JSONIN_SYNTAX, "plus sign"},
    {"{\"a\":1e}", JSONIN_SYNTAX, "empty exponent"},
    {"{\"a\":1.2.3}", JSONIN_SYNTAX, "two points"},
    {"{\"a\":- 1}", JSONIN_SYNTAX, "space after the sign"},
    {"{\"a\":NaN}", JSONIN_SYNTAX, "NaN"},
    {"{\"a\":Infinity}", JSONIN_SYNTAX, "Infinity"},
    {"{'a':1}", JSONIN_SYNTAX, "single quotes"},
    {"{\"a\":1,}", JSONIN_SYNTAX, "trailing comma"},
    {"{\"a\":\"\t\"}", JSONIN_SYNTAX, "raw control character in a string"},
    {"{\"a\":1}/*c*/", JSONIN_SYNTAX, "comment"},
    {"{\"a\":\"\xc0\xaf\"}", JSONIN_NOT_UTF8, "overlong"},
    {"{\"a\":\"\xed\xa0\x80\"}", JSONIN_NOT_UTF8, "UTF-8 surrogate"},
    {"{\"a\":\"\xf4\x90\x80\x80\"}", JSONIN_NOT_UTF8, "past U+10FFFF"},
    {"{\"a\":\"\\ud800\"}", JSONIN_NOT_UTF8, "lone high surrogate escape"},
    {"{\"a\":\"\\udc00\\ud800\"}", JSONIN_NOT_UTF8, "low before high"},
    {"{} {}", JSONIN_SYNTAX, "two values (json-c strict refuses them itself)"},
    {"{}x", JSONIN_SYNTAX, "garbage after"},
    {"[1]", JSONIN_NOT_OBJECT, "an array"},
    {"1", JSONIN_NOT_OBJECT, "a bare number, which only the end delimits"},
    {"\"s\"", JSONIN_NOT_OBJECT, "a string"},
    {"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":[1]}}}}}}}", JSONIN_SYNTAX, "8 levels"},
    {"{\"a\":", JSONIN_SYNTAX, "cut short"},
};

START_TEST(accepts_rfc8259_objects)
{
	struct json_object *o = NULL;
	const char *s = good[_i];

	ck_assert_msg(parse(s, strlen(s), &o) == JSONIN_OK, "refused: %s", s);
	ck_assert(json_object_is_type(o, json_type_object));
	json_object_put(o);
}
END_TEST

START_TEST(refuses_the_rest)
{
	struct json_object *o = (struct json_object *)1;
	enum jsonin_status st = parse(bad[_i].text, strlen(bad[_i].text), &o);

	ck_assert_msg(st == bad[_i].st, "%s (%s): got %d, want %d", bad[_i].text, bad[_i].why, st,
	              bad[_i].st);
	ck_assert_ptr_null(o);
}
END_TEST

START_TEST(nul_bytes)
{
	struct json_object *o = NULL;

	/* raw, anywhere: in a string, after a number, after the value */
	ck_assert_int_eq(parse("{\"a\":\"x\0y\"}", 11, &o), JSONIN_NUL);
	ck_assert_int_eq(parse("{\"a\":1\0}", 8, &o), JSONIN_NUL);
	ck_assert_int_eq(parse("{}\0", 3, &o), JSONIN_NUL);
	ck_assert_ptr_null(o);
}
END_TEST

START_TEST(length_is_honoured)
{
	struct json_object *o = NULL;

	/* Only the first 7 bytes count: "{\"a\":1}" then garbage in memory. */
	ck_assert_int_eq(jsonin_parse_object("{\"a\":1}garbage", 7, &o), JSONIN_OK);
	json_object_put(o);
	ck_assert_int_eq(jsonin_parse_object("{\"a\":1}", 6, &o), JSONIN_SYNTAX);
	ck_assert_ptr_null(o);
}
END_TEST

static Suite *jsonin_suite(void)
{
	Suite *s = suite_create("jsonin");
	TCase *tc = tcase_create("jsonin");

	tcase_add_loop_test(tc, accepts_rfc8259_objects, 0, N(good));
	tcase_add_loop_test(tc, refuses_the_rest, 0, N(bad));
	tcase_add_test(tc, nul_bytes);
	tcase_add_test(tc, length_is_honoured);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jsonin_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
