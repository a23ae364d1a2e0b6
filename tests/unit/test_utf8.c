/*
 * Unit tests for src/utf8.c.  Validity is checked against the Unicode
 * definition (Table 3-7 of the standard): overlong forms, UTF-16
 * surrogates and values past U+10FFFF are invalid.  The lenient count and
 * the prefix cut are checked on multi-byte text so a byte count cannot
 * pass for a character count.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- utf8_count --------------------------------------------------------- */

static const struct {
	const char *s;
	size_t count;
} good_utf8[] = {
    {"", 0},
    {"hello", 5},
    {"\x7f", 1},
    {"\xc2\x80", 1},         /* U+0080, smallest 2-byte */
    {"\xc3\xa9", 1},         /* é */
    {"\xdf\xbf", 1},         /* U+07FF */
    {"\xe0\xa0\x80", 1},     /* U+0800, smallest 3-byte */
    {"\xe2\x82\xac", 1},     /* € */
    {"\xed\x9f\xbf", 1},     /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 1},     /* U+E000, just above */
    {"\xef\xbf\xbf", 1},     /* U+FFFF */
    {"\xf0\x90\x80\x80", 1}, /* U+10000, smallest 4-byte */
    {"\xf0\x9f\x98\x80", 1}, /* 😀 */
    {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF, the last code point */
    {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 5},
};

/* Unicode White_Space, exactly: every listed code point and its neighbours. */
START_TEST(white_space_is_the_unicode_property)
{
	static const unsigned ws[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,
	                              0x85,   0xA0,   0x1680, 0x2000, 0x2005, 0x200A,
	                              0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
	static const unsigned not_ws[] = {0x00,   0x08,   0x0E,   0x1F,   0x21,   0x7F,
	                                  0x84,   0x86,   0x9F,   0xA1,   0x167F, 0x1681,
	                                  0x1FFF, 0x200B, 0x2027, 0x202A, 0x202E, 0x2030,
	                                  0x205E, 0x2060, 0x2FFF, 0x3001, 0xFEFF, 0x10FFFF};

	for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
		ck_assert_msg(utf8_is_white_space(ws[i]), "U+%04X", ws[i]);
	for (size_t i = 0; i < sizeof not_ws / sizeof not_ws[0]; i++)
		ck_assert_msg(!utf8_is_white_space(not_ws[i]), "U+%04X", not_ws[i]);
}
END_TEST

START_TEST(utf8_valid)
{
	size_t count = 12345;
	const char *s = good_utf8[_i].s;

	ck_assert_msg(utf8_count(s, strlen(s), &count) == 0, "case %d rejected", _i);
	ck_assert_uint_eq(count, good_utf8[_i].count);
}
END_TEST

static const char *const bad_utf8[] = {
    "\x80",                 /* lone continuation byte */
    "a\xbf",                /* lone continuation byte after ASCII */
    "\xc0\xaf",             /* overlong '/' */
    "\xc1\xbf",             /* overlong U+007F */
    "\xe0\x80\xaf",         /* overlong 3-byte */
    "\xe0\x9f\xbf",         /* overlong U+07FF */
    "\xf0\x80\x80\xaf",     /* overlong 4-byte */
    "\xf0\x8f\xbf\xbf",     /* overlong U+FFFF */
    "\xed\xa0\x80",         /* surrogate U+D800 */
    "\xed\xbf\xbf",         /* surrogate U+DFFF */
    "\xf4\x90\x80\x80",     /* U+110000 */
    "\xf5\x80\x80\x80",     /* lead byte past U+10FFFF */
    "\xf8\x88\x80\x80\x80", /* 5-byte form */
    "\xfe",
    "\xff",
    "\xc3",             /* truncated 2-byte */
    "\xe2\x82",         /* truncated 3-byte */
    "\xf0\x9f\x98",     /* truncated 4-byte */
    "ab\xe2\x82",       /* truncated at the end of longer text */
    "\xc3\x28",         /* lead byte followed by ASCII */
    "\xe2\x28\xac",     /* bad second byte */
    "\xf0\x9f\x98\x28", /* bad last byte */
};

START_TEST(utf8_invalid)
{
	size_t count;
	const char *s = bad_utf8[_i];

	ck_assert_msg(utf8_count(s, strlen(s), &count) == -1, "case %d accepted", _i);
}
END_TEST

START_TEST(utf8_uses_len_not_nul)
{
	size_t count;

	/* the length given, not strlen, bounds the scan */
	ck_assert_int_eq(utf8_count("\xe2\x82\xac", 2, &count), -1);
	ck_assert_int_eq(utf8_count("ab\xff", 2, &count), 0);
	ck_assert_uint_eq(count, 2);
}
END_TEST

/* ---- utf8_chars, utf8_prefix ------------------------------------------- */

START_TEST(chars_counts_lead_bytes)
{
	ck_assert_uint_eq(utf8_chars("", 0), 0);
	ck_assert_uint_eq(utf8_chars("abc", 3), 3);
	ck_assert_uint_eq(utf8_chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 11), 5);
	/* Not UTF-8 at all: still a count, never an error. */
	ck_assert_uint_eq(utf8_chars("\xff\xfe", 2), 2);
	ck_assert_uint_eq(utf8_chars("\x80\x80", 2), 0);
}
END_TEST

START_TEST(prefix_never_splits_a_character)
{
	const char *s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* é € 😀 z: 2+3+4+1 bytes */
	size_t n = strlen(s);

	ck_assert_uint_eq(utf8_prefix(s, n, 0), 0);
	ck_assert_uint_eq(utf8_prefix(s, n, 1), 2);
	ck_assert_uint_eq(utf8_prefix(s, n, 2), 5);
	ck_assert_uint_eq(utf8_prefix(s, n, 3), 9);
	ck_assert_uint_eq(utf8_prefix(s, n, 4), n);
	ck_assert_uint_eq(utf8_prefix(s, n, 64), n);
	ck_assert_uint_eq(utf8_prefix("abc", 3, 2), 2);
	ck_assert_uint_eq(utf8_prefix("abc", 3, 3), 3);
}
END_TEST

static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *strict = tcase_create("strict");
	TCase *lenient = tcase_create("lenient");

	tcase_add_loop_test(strict, utf8_valid, 0, N(good_utf8));
	tcase_add_loop_test(strict, utf8_invalid, 0, N(bad_utf8));
	tcase_add_test(strict, utf8_uses_len_not_nul);
	suite_add_tcase(s, strict);
	tcase_add_test(lenient, chars_counts_lead_bytes);
	tcase_add_test(lenient, prefix_never_splits_a_character);
	tcase_add_test(lenient, white_space_is_the_unicode_property);
	suite_add_tcase(s, lenient);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
