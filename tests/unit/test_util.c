/*
 * Unit tests for src/util.c: the strict decimal parsers at their bounds,
 * the envp lookup, the clock, hex and optional white space.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int u64(const char *s, uint64_t max, uint64_t *v)
{
	return util_parse_u64(s, strlen(s), max, v);
}

static int id(const char *s, int64_t *v)
{
	return util_parse_id(s, strlen(s), v);
}

START_TEST(parse_u64_bounds)
{
	uint64_t v = 7;

	ck_assert_int_eq(u64("0", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(u64("007", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(u64("18446744073709551615", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 1;
	ck_assert_int_eq(u64("18446744073709551616", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64("99999999999999999999", UINT64_MAX, &v), -1);
	ck_assert_uint_eq(v, 1); /* nothing written on failure */
	ck_assert_int_eq(u64("1000000", 1000000, &v), 0);
	ck_assert_uint_eq(v, 1000000);
	ck_assert_int_eq(u64("1000001", 1000000, &v), -1);
	ck_assert_int_eq(u64("5", 4, &v), -1);
	ck_assert_int_eq(u64("4", 4, &v), 0);
	ck_assert_int_eq(u64("", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64("+1", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64("-1", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64(" 1", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64("1 ", UINT64_MAX, &v), -1);
	ck_assert_int_eq(u64("0x10", UINT64_MAX, &v), -1);
	/* Only n bytes are read. */
	ck_assert_int_eq(util_parse_u64("12/minute", 2, 100, &v), 0);
	ck_assert_uint_eq(v, 12);
}
END_TEST

START_TEST(parse_id_is_canonical)
{
	int64_t v = 0;

	ck_assert_int_eq(id("1", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(id("9223372036854775807", &v), 0);
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert_int_eq(id("9223372036854775808", &v), -1);
	ck_assert_int_eq(id("10000000000000000000", &v), -1);
	ck_assert_int_eq(id("0", &v), -1);
	ck_assert_int_eq(id("01", &v), -1);
	ck_assert_int_eq(id("", &v), -1);
	ck_assert_int_eq(id("-1", &v), -1);
	ck_assert_int_eq(id("1a", &v), -1);
	ck_assert_int_eq(util_parse_id("42/members", 2, &v), 0);
	ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(env_get_first_wins)
{
	char *env[] = {"A=1", "AB=2", "A=3", "B=", "C", NULL};

	ck_assert_str_eq(util_env_get(env, "A"), "1");
	ck_assert_str_eq(util_env_get(env, "AB"), "2");
	ck_assert_str_eq(util_env_get(env, "B"), "");
	ck_assert_ptr_null(util_env_get(env, "C"));
	ck_assert_ptr_null(util_env_get(env, "D"));
	ck_assert_ptr_null(util_env_get(NULL, "A"));
}
END_TEST

START_TEST(clock_is_monotonic)
{
	uint64_t a = util_now_ns(), b = util_now_ns();

	ck_assert_uint_gt(a, 0);
	ck_assert_uint_ge(b, a);
}
END_TEST

START_TEST(hex_is_lower_case)
{
	const unsigned char in[] = {0x00, 0x9f, 0xa0, 0xff};
	char out[2 * sizeof in + 1];

	memset(out, 'x', sizeof out);
	util_hex(in, sizeof in, out);
	ck_assert_str_eq(out, "009fa0ff");
	util_hex(in, 0, out);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(ows_is_space_and_tab)
{
	ck_assert(util_is_ows(' '));
	ck_assert(util_is_ows('\t'));
	ck_assert(!util_is_ows('\n'));
	ck_assert(!util_is_ows('\r'));
	ck_assert(!util_is_ows('\v'));
	ck_assert(!util_is_ows('a'));
	ck_assert(!util_is_ows('\0'));
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("helpers");

	tcase_add_test(tc, parse_u64_bounds);
	tcase_add_test(tc, parse_id_is_canonical);
	tcase_add_test(tc, env_get_first_wins);
	tcase_add_test(tc, clock_is_monotonic);
	tcase_add_test(tc, hex_is_lower_case);
	tcase_add_test(tc, ows_is_space_and_tab);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
