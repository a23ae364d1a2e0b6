/*
 * Unit tests for src/limit.c: the classes and their names, the key each
 * class derives from a request (address through TRUSTED_PROXIES, user id,
 * lower-cased email) and from chat-admin's text, applying a class to a real
 * shared table, and the RateLimit-* headers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limit.h"
#include "ratelimit.h"
#include "segment.h"

static struct config cfg;
static struct rl_table *rl;
static char shm_name[64];

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",
	               "SECRET_KEY=unit-test-key",
	               "TRUSTED_PROXIES=10.0.0.0/8",
	               "RATE_LIMIT_AUTH=5/minute",
	               "RATE_LIMIT_CHAT=2/minute",
	               "RATE_LIMIT_READ=off",
	               NULL};
	struct config_problems p = {0};
	char err[RL_ERR_LEN];

	ck_assert_int_eq(config_load(&cfg, env, &p), 0);
	snprintf(shm_name, sizeof shm_name, "/chat-test-limit-%d", (int)getpid());
	seg_unlink(shm_name, err, sizeof err);
	ck_assert_int_eq(rl_open(shm_name, 1024, &rl, err, sizeof err), 0);
}

static void teardown(void)
{
	char err[RL_ERR_LEN];

	rl_close(rl);
	seg_unlink(shm_name, err, sizeof err);
	config_free(&cfg);
}

static void request(struct request *req, const char *remote, const char *xff, int64_t user)
{
	memset(req, 0, sizeof *req);
	req->remote_addr = (char *)remote;
	req->x_forwarded_for = (char *)xff;
	req->user_id = user;
}

START_TEST(class_names_round_trip)
{
	const char *names[] = {"auth", "chat", "read", "login"};
	enum limit_class c;

	for (int i = 0; i < LIMIT_CLASSES; i++) {
		ck_assert_str_eq(limit_class_name((enum limit_class)i), names[i]);
		ck_assert_int_eq(limit_class_parse(names[i], strlen(names[i]), &c), 0);
		ck_assert_int_eq(c, i);
	}
	ck_assert_ptr_null(limit_class_name(LIMIT_NONE));
	ck_assert_int_eq(limit_class_parse("logi", 4, &c), -1);
	ck_assert_int_eq(limit_class_parse("login:x", 7, &c), -1);
	ck_assert_int_eq(limit_class_parse("AUTH", 4, &c), -1);
	ck_assert_int_eq(limit_class_parse("", 0, &c), -1);
}
END_TEST

START_TEST(keys_from_requests)
{
	struct request req;
	char key[LIMIT_KEY_MAX];

	request(&req, "192.0.2.1", NULL, 42);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_AUTH, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "4:192.0.2.1");
	/* A trusted proxy: the client is the right-most untrusted hop. */
	request(&req, "10.1.2.3", "198.51.100.7, 10.9.9.9", 42);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_AUTH, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "4:198.51.100.7");
	/* An untrusted peer cannot choose its key with the header. */
	request(&req, "192.0.2.1", "198.51.100.7", 42);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_AUTH, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "4:192.0.2.1");
	request(&req, NULL, NULL, 42);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_AUTH, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "unknown");

	request(&req, "192.0.2.1", NULL, 42);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_CHAT, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "42");
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_READ, &req, &cfg.trusted_proxies, NULL, key, sizeof key), 0);
	ck_assert_str_eq(key, "42");
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_LOGIN, &req, &cfg.trusted_proxies, "Bob@X.io", key, sizeof key),
	    0);
	ck_assert_str_eq(key, "bob@x.io");
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_LOGIN, &req, &cfg.trusted_proxies, NULL, key, sizeof key), -1);
	ck_assert_int_eq(
	    limit_key(LIMIT_CLASS_LOGIN, &req, &cfg.trusted_proxies, "bob@x.io", key, 8), -1);
	ck_assert_int_eq(limit_key(LIMIT_NONE, &req, &cfg.trusted_proxies, NULL, key, sizeof key),
	                 -1);
}
END_TEST

/* chat-admin ratelimit reset login:EMAIL names the entry the worker counted,
 * however the operator capitalises the address. */
START_TEST(admin_login_key_is_lower_cased_like_the_worker)
{
	struct request req;
	struct response res;
	char worker_key[LIMIT_KEY_MAX], admin_key[LIMIT_KEY_MAX];

	request(&req, "192.0.2.1", NULL, 0);
	ck_assert_int_eq(limit_key(LIMIT_CLASS_LOGIN, &req, &cfg.trusted_proxies,
	                           "alice@example.com", worker_key, sizeof worker_key),
	                 0);
	ck_assert_int_eq(limit_key_from_text(LIMIT_CLASS_LOGIN, "Alice@Example.COM", admin_key,
	                                     sizeof admin_key),
	                 0);
	ck_assert_str_eq(admin_key, worker_key);

	http_response_init(&res);
	ck_assert_int_eq(
	    limit_apply(rl, NULL, &cfg, LIMIT_CLASS_LOGIN, "alice@example.com", &req, &res), 0);
	http_response_free(&res);
	ck_assert_int_eq(rl_reset_key(rl, LIMIT_CLASS_LOGIN, admin_key, strlen(admin_key)), 1);
}
END_TEST

START_TEST(keys_from_admin_text)
{
	char key[LIMIT_KEY_MAX];

	ck_assert_int_eq(limit_key_from_text(LIMIT_CLASS_AUTH, "192.0.2.1", key, sizeof key), 0);
	ck_assert_str_eq(key, "4:192.0.2.1");
	ck_assert_int_eq(limit_key_from_text(LIMIT_CLASS_AUTH, "not-an-address", key, sizeof key),
	                 -1);
	ck_assert_int_eq(limit_key_from_text(LIMIT_CLASS_READ, "42", key, sizeof key), 0);
	ck_assert_str_eq(key, "42");
	ck_assert_int_eq(limit_key_from_text(LIMIT_CLASS_CHAT, "7", key, sizeof key), 0);
	ck_assert_str_eq(key, "7");
	ck_assert_int_eq(limit_key_from_text(LIMIT_NONE, "7", key, sizeof key), -1);
}
END_TEST

START_TEST(apply_limits_and_answers_429)
{
	struct request req;
	struct response res;
	struct json_object *v;

	/* chat: 2/minute for user 9. */
	for (int i = 0; i < 2; i++) {
		request(&req, "192.0.2.1", NULL, 9);
		http_response_init(&res);
		ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_CHAT, NULL, &req, &res),
		                 0);
		ck_assert(req.limited);
		ck_assert_uint_eq(req.limit, 2);
		ck_assert_uint_eq(req.limit_remaining, (uint32_t)(1 - i));
		http_response_free(&res);
	}
	request(&req, "192.0.2.1", NULL, 9);
	http_response_init(&res);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_CHAT, NULL, &req, &res), -1);
	ck_assert_int_eq(res.status, 429);
	ck_assert(json_object_object_get_ex(res.json, "retry_after", &v));
	ck_assert_int_ge(json_object_get_int(v), 1);
	http_response_free(&res);
	/* Another user is another key. */
	request(&req, "192.0.2.1", NULL, 10);
	http_response_init(&res);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_CHAT, NULL, &req, &res), 0);
	http_response_free(&res);
}
END_TEST

START_TEST(off_counts_nothing_and_no_table_fails_closed)
{
	struct request req;
	struct response res;

	request(&req, "192.0.2.1", NULL, 9);
	http_response_init(&res);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_READ, NULL, &req, &res), 0);
	ck_assert(!req.limited);
	limit_headers(&req, &res);
	ck_assert_uint_eq(res.extra_len, 0);
	/* Off needs no table; on without one is refused, never admitted. */
	ck_assert_int_eq(limit_apply(NULL, NULL, &cfg, LIMIT_CLASS_READ, NULL, &req, &res), 0);
	ck_assert_int_eq(limit_apply(NULL, NULL, &cfg, LIMIT_CLASS_AUTH, NULL, &req, &res), -1);
	ck_assert_int_eq(res.status, 500);
	http_response_free(&res);
}
END_TEST

START_TEST(headers_carry_the_tightest_limit)
{
	struct request req;
	struct response res;

	request(&req, "192.0.2.5", NULL, 11);
	http_response_init(&res);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_AUTH, NULL, &req, &res), 0);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_CHAT, NULL, &req, &res), 0);
	ck_assert_int_eq(limit_apply(rl, NULL, &cfg, LIMIT_CLASS_LOGIN, "c@x.io", &req, &res), 0);
	limit_headers(&req, &res);
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "RateLimit-Limit: 2\r\n"));
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "RateLimit-Remaining: 1\r\n"));
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "RateLimit-Reset: "));
	http_response_free(&res);
}
END_TEST

static Suite *limit_suite(void)
{
	Suite *s = suite_create("limit");
	TCase *tc = tcase_create("policy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, class_names_round_trip);
	tcase_add_test(tc, keys_from_requests);
	tcase_add_test(tc, admin_login_key_is_lower_cased_like_the_worker);
	tcase_add_test(tc, keys_from_admin_text);
	tcase_add_test(tc, apply_limits_and_answers_429);
	tcase_add_test(tc, off_counts_nothing_and_no_table_fails_closed);
	tcase_add_test(tc, headers_carry_the_tightest_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(limit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
