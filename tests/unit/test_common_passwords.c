/*
 * Unit tests for src/common_passwords.c: every entry of the source list is
 * refused in any ASCII case, nothing else is, and the edges (empty, longer
 * than any entry, non-ASCII, embedded NUL) never match.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_passwords.h"

/* data/common-passwords.txt, read the way the build reads it. */
static char **entries;
static size_t nentries;

static void load_source_list(void)
{
	/* make check sets CHAT_SRCDIR; run by hand (valgrind), the tree it
	 * was configured from. */
	const char *top = getenv("CHAT_SRCDIR") ? getenv("CHAT_SRCDIR") : CHAT_TEST_SRCDIR;
	char path[4096], line[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/data/common-passwords.txt", top);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s", path);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "#!", 2) == 0)
			continue;
		char **grown = realloc(entries, (nentries + 1) * sizeof *entries);

		ck_assert_ptr_nonnull(grown);
		entries = grown;
		entries[nentries++] = strdup(line);
	}
	fclose(f);
}

static bool on_source_list(const char *s)
{
	for (size_t i = 0; i < nentries; i++)
		if (strcmp(entries[i], s) == 0)
			return true;
	return false;
}

static bool common(const char *s)
{
	return common_password(s, strlen(s));
}

START_TEST(every_entry_is_refused_in_any_case)
{
	load_source_list();
	ck_assert_uint_gt(nentries, 600);
	ck_assert_uint_eq(common_passwords_count(), nentries);
	for (size_t i = 0; i < nentries; i++) {
		char upper[256];
		size_t n = strlen(entries[i]);

		ck_assert_msg(common(entries[i]), "entry %zu refused", i);
		for (size_t j = 0; j <= n; j++)
			upper[j] = entries[i][j] >= 'a' && entries[i][j] <= 'z'
			               ? (char)(entries[i][j] - 'a' + 'A')
			               : entries[i][j];
		ck_assert_msg(common(upper), "entry %zu upper-cased refused", i);
	}
}
END_TEST

START_TEST(nothing_else_is_refused)
{
	/* Each entry with one byte changed, one dropped, one added: a match
	 * must be the whole entry, not a prefix, a suffix or a near miss. */
	load_source_list();
	for (size_t i = 0; i < nentries; i++) {
		char s[256];
		size_t n = strlen(entries[i]);

		memcpy(s, entries[i], n + 1);
		s[n - 1] = s[n - 1] == '~' ? '}' : '~';
		if (!on_source_list(s))
			ck_assert_msg(!common(s), "%s", s);
		s[n - 1] = '\0';
		if (!on_source_list(s))
			ck_assert_msg(!common(s), "%s", s);
		memcpy(s, entries[i], n);
		s[n] = 'Q';
		s[n + 1] = '\0';
		if (!on_source_list(s))
			ck_assert_msg(!common(s), "%s", s);
	}
	ck_assert(!common("correct horse battery staple"));
	ck_assert(!common("Tr0ub4dor&3-long-enough"));
}
END_TEST

START_TEST(edges_never_match)
{
	char longer[COMMON_PASSWORD_MAX + 2];

	ck_assert(common("password"));
	ck_assert(common("PassWord1"));
	ck_assert(!common_password("", 0));
	/* A NUL inside: only the whole length counts. */
	ck_assert(!common_password("password\0", 9));
	ck_assert(!common_password("pass\0word", 9));
	/* Non-ASCII letters are not folded: "PASSWÖRD" is not "passwörd". */
	ck_assert(!common("passw\xc3\xb6rd"));
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	ck_assert(!common(longer));
}
END_TEST

static Suite *common_passwords_suite(void)
{
	Suite *s = suite_create("common_passwords");
	TCase *tc = tcase_create("lookup");

	tcase_add_test(tc, every_entry_is_refused_in_any_case);
	tcase_add_test(tc, nothing_else_is_refused);
	tcase_add_test(tc, edges_never_match);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(common_passwords_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
