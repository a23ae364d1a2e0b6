/*
 * Unit tests for src/limit_cluster.c without a database: the stored key
 * (a keyed MAC, per class and per secret, never the key itself; checked
 * against `openssl dgst -mac HMAC`), and the header values of a decision,
 * which must be exactly those the shared-memory tier gives for the same
 * GCRA state (the 429s do not change with the scope).  The statement itself
 * is tested against PostgreSQL by tests/e2e/test_cluster.sh.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limit_cluster.h"
#include "ratelimit.h"
#include "segment.h"

START_TEST(key_is_a_mac_per_class_and_secret)
{
	struct secret s = {.bytes = "unit-test-key", .len = 13};
	struct secret s2 = {.bytes = "unit-test-kez", .len = 13};
	char a[LIMIT_CLUSTER_KEY_TEXT], b[LIMIT_CLUSTER_KEY_TEXT];

	ck_assert_int_eq(limit_cluster_key(&s, 3, "alice@x.io", 10, a), 0);
	/* printf 'chat-fcgi rate limit v1\0\003alice@x.io' |
	 *   openssl dgst -sha256 -mac HMAC -macopt key:unit-test-key */
	ck_assert_str_eq(a, "\\x1e8645fb362668b66c9d556a6546382a");
	ck_assert_ptr_null(strstr(a, "alice"));
	ck_assert_int_eq(limit_cluster_key(&s, 0, "alice@x.io", 10, b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(limit_cluster_key(&s2, 3, "alice@x.io", 10, b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(limit_cluster_key(&s, 3, "alice@x.io", 10, b), 0);
	ck_assert_str_eq(a, b);
	/* No secret, no key: never a plain hash anyone could compute. */
	ck_assert_int_eq(limit_cluster_key(&(struct secret){0}, 3, "a", 1, b), -1);
	ck_assert_int_eq(limit_cluster_key(NULL, 3, "a", 1, b), -1);
}
END_TEST

/* The statement's GCRA step, as sql does it: a new key (tat 0 here) is
 * admitted with now + T; else admitted iff tat <= now + tau. */
static bool gcra_step(const struct rate_policy *p, int64_t now, int64_t *tat)
{
	int64_t period = (int64_t)p->period_s * 1000, t = (period + p->limit - 1) / p->limit;
	int64_t tau = (int64_t)(p->limit - 1) * t;

	if (*tat != 0 && *tat > now + tau)
		return false;
	*tat = (*tat > now ? *tat : now) + t;
	return true;
}

START_TEST(headers_equal_the_shared_memory_tier)
{
	static const struct rate_policy policies[] = {{5, 60}, {7, 60}, {60, 60},
	                                              {3, 1},  {1, 60}, {100, 3600}};
	char name[64], err[RL_ERR_LEN];
	struct rl_table *rl;

	snprintf(name, sizeof name, "/chat-test-limit-cluster-%d", (int)getpid());
	seg_unlink(name, err, sizeof err);
	ck_assert_int_eq(rl_open(name, 1024, &rl, err, sizeof err), 0);
	for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
		const struct rate_policy *p = &policies[i];
		int64_t now = 5000000, tat = 0;
		unsigned seed = (unsigned)i + 1;
		char key[16];

		snprintf(key, sizeof key, "k%zu", i);
		for (int n = 0; n < 400; n++) {
			struct rl_result a, b;
			bool admitted;

			ck_assert_int_eq(rl_check(rl, p, 0, key, strlen(key),
			                          (uint64_t)now * 1000000u + 999999u, &a),
			                 0);
			admitted = gcra_step(p, now, &tat);
			limit_cluster_result(p, admitted, tat, now, &b);
			ck_assert_int_eq(a.allowed, b.allowed);
			ck_assert_int_eq(a.outcome, b.outcome);
			ck_assert_uint_eq(a.limit, b.limit);
			ck_assert_uint_eq(a.remaining, b.remaining);
			ck_assert_uint_eq(a.reset_s, b.reset_s);
			ck_assert_uint_eq(a.retry_after_s, b.retry_after_s);
			/* Bursts, then gaps up to a few emission intervals. */
			seed = seed * 1103515245u + 12345u;
			now += (seed >> 16) % 4 == 0 ? (int64_t)((seed >> 8) % (p->period_s * 700u))
			                             : 0;
		}
	}
	rl_close(rl);
	seg_unlink(name, err, sizeof err);
}
END_TEST

START_TEST(refusals_always_say_when)
{
	struct rate_policy p = {5, 60};
	struct rl_result r;

	/* A TAT the statement's snapshot could not see: limit_cluster_check
	 * passes t + tau and 0, i.e. wait one emission interval. */
	limit_cluster_result(&p, false, 12000 + 48000, 0, &r);
	ck_assert(!r.allowed);
	ck_assert_uint_eq(r.retry_after_s, 12);
	ck_assert_uint_eq(r.remaining, 0);
	/* A clock read after the TAT was already reachable: still >= 1. */
	limit_cluster_result(&p, false, 1000, 990000, &r);
	ck_assert_uint_eq(r.retry_after_s, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limit_cluster");
	TCase *tc = tcase_create("offline");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, key_is_a_mac_per_class_and_secret);
	tcase_add_test(tc, headers_equal_the_shared_memory_tier);
	tcase_add_test(tc, refusals_always_say_when);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
