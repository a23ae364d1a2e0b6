/*
 * The request pipeline without a web server or a database: what is decided
 * at the edge (route, body cap, media type, body, token) must be decided
 * before any byte of an oversized body is read and before any query.
 */
#include <check.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ratelimit.h"
#include "segment.h"
#include "worker.h"

static struct worker w;
static int reads;

static ssize_t counting_reader(void *ctx, char *buf, size_t n)
{
	const char **src = ctx;
	size_t len = strlen(*src);

	reads++;
	if (len > n)
		len = n;
	memcpy(buf, *src, len);
	*src += len;
	return (ssize_t)len;
}

static void setup(void)
{
	char *env[] = {
	    "APP_MODE=DEV",    "SECRET_KEY=unit-test-key", "SCRYPT_N=10", "POSTGRES_HOST=127.0.0.1",
	    "POSTGRES_PORT=1", "DB_TIMEOUT_MS=500",        NULL};
	struct config_problems p = {0};

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	db_init(&w.db, &w.cfg);
	ck_assert_int_eq(auth_init(&w.cfg), 0);
	reads = 0;
}

/* Connection attempts so far, failed ones included: with nothing on port 1
 * a NULL connection proves nothing, an attempt is counted either way. */
static uint64_t db_attempts(void)
{
	return w.db.connects + w.db.connect_failures;
}

static void teardown(void)
{
	db_close(&w.db);
	config_free(&w.cfg);
}

/* Run one request; params is a NULL-terminated CGI array. */
static void run(char **params, const char *body, struct request *req, struct response *res)
{
	const char *cursor = body ? body : "";

	ck_assert_int_eq(http_request_init(req, params), 0);
	http_response_init(res);
	worker_handle(&w, req, res, counting_reader, &cursor);
}

static const char *error_code(const struct response *res)
{
	struct json_object *e;

	if (!res->json || !json_object_object_get_ex(res->json, "error", &e))
		return "";
	return json_object_get_string(e);
}

static void done(struct request *req, struct response *res)
{
	http_response_free(res);
	http_request_free(req);
}

START_TEST(oversized_body_is_refused_unread)
{
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", "CONTENT_LENGTH=10485760", NULL};
	struct request req;
	struct response res;

	run(p, "{\"email\":", &req, &res);
	ck_assert_int_eq(res.status, 413);
	ck_assert_str_eq(error_code(&res), "payload_too_large");
	ck_assert_int_eq(reads, 0);
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
}
END_TEST

/* A common password is refused before any query or hash; the same body
 * with an uncommon password does reach the database (the counter counts). */
START_TEST(common_password_costs_no_query)
{
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", NULL, NULL};
	const char *common = "{\"email\":\"a@example.io\",\"password\":\"PassWord1\"}";
	const char *uncommon = "{\"email\":\"a@example.io\",\"password\":\"PassWord1 of mine\"}";
	char length[32];
	struct request req;
	struct response res;
	struct json_object *field;

	w.cfg.rate_auth.limit = 0; /* no shared table here: the class is off */
	snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(common));
	p[3] = length;
	run(p, common, &req, &res);
	ck_assert_int_eq(res.status, 422);
	ck_assert_str_eq(error_code(&res), "validation_failed");
	ck_assert(json_object_object_get_ex(res.json, "field", &field));
	ck_assert_str_eq(json_object_get_string(field), "password");
	ck_assert_uint_eq(db_attempts(), 0);
	ck_assert_uint_eq(req.nevents, 1);
	ck_assert_str_eq(req.events[0].reason, "common");
	done(&req, &res);

	snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(uncommon));
	run(p, uncommon, &req, &res);
	ck_assert_int_eq(res.status, 503);
	ck_assert_uint_gt(db_attempts(), 0);
	ck_assert_uint_eq(req.nevents, 0);
	done(&req, &res);
}
END_TEST

START_TEST(one_byte_over_the_cap_is_413_exactly_the_cap_is_read)
{
	char over[32], exact[32];
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", over, NULL};
	struct request req;
	struct response res;
	char *body = malloc(w.cfg.max_body_bytes + 1);

	snprintf(over, sizeof over, "CONTENT_LENGTH=%zu", w.cfg.max_body_bytes + 1);
	run(p, "", &req, &res);
	ck_assert_int_eq(res.status, 413);
	ck_assert_int_eq(reads, 0);
	done(&req, &res);

	/* Exactly the cap: read, then refused as JSON, not as too large. */
	memset(body, ' ', w.cfg.max_body_bytes);
	body[w.cfg.max_body_bytes] = '\0';
	snprintf(exact, sizeof exact, "CONTENT_LENGTH=%zu", w.cfg.max_body_bytes);
	p[3] = exact;
	run(p, body, &req, &res);
	ck_assert_int_eq(res.status, 400);
	ck_assert_int_gt(reads, 0);
	done(&req, &res);
	free(body);
}
END_TEST

START_TEST(wrong_media_type_is_415_unread)
{
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register", "CONTENT_TYPE=text/plain",
	             "CONTENT_LENGTH=2", NULL};
	struct request req;
	struct response res;

	run(p, "{}", &req, &res);
	ck_assert_int_eq(res.status, 415);
	ck_assert_str_eq(error_code(&res), "unsupported_media_type");
	ck_assert_int_eq(reads, 0);
	done(&req, &res);
}
END_TEST

START_TEST(short_body_is_400)
{
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", "CONTENT_LENGTH=100", NULL};
	struct request req;
	struct response res;

	run(p, "{\"email\":\"a@x.io\"}", &req, &res);
	ck_assert_int_eq(res.status, 400);
	ck_assert_str_eq(error_code(&res), "bad_request");
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
}
END_TEST

START_TEST(huge_bearer_token_is_401_without_the_database)
{
	size_t n = 100 * 1024;
	char *auth = malloc(n + 64);
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", auth, NULL};
	struct request req;
	struct response res;

	strcpy(auth, "HTTP_AUTHORIZATION=Bearer ");
	memset(auth + strlen(auth), 'A', n);
	auth[strlen("HTTP_AUTHORIZATION=Bearer ") + n] = '\0';
	run(p, NULL, &req, &res);
	ck_assert_int_eq(res.status, 401);
	ck_assert_str_eq(error_code(&res), "unauthorized");
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "WWW-Authenticate: Bearer\r\n"));
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
	free(auth);
}
END_TEST

START_TEST(routing_errors)
{
	char *p404[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/nope?x=1", NULL};
	char *p405[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/auth/me", NULL};
	struct request req;
	struct response res;

	run(p404, NULL, &req, &res);
	ck_assert_int_eq(res.status, 404);
	ck_assert_str_eq(error_code(&res), "not_found");
	done(&req, &res);

	run(p405, NULL, &req, &res);
	ck_assert_int_eq(res.status, 405);
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "Allow: GET\r\n"));
	done(&req, &res);
}
END_TEST

START_TEST(healthz_needs_no_database)
{
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz", NULL};
	struct request req;
	struct response res;
	struct json_object *s;

	run(p, NULL, &req, &res);
	ck_assert_int_eq(res.status, 200);
	ck_assert(json_object_object_get_ex(res.json, "status", &s));
	ck_assert_str_eq(json_object_get_string(s), "ok");
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
}
END_TEST

/* The sixth login from one address within a minute is refused from shared
 * memory alone: the database (unreachable here) is never asked. */
START_TEST(rate_limit_is_decided_before_the_database)
{
	char name[64], err[RL_ERR_LEN];
	const char *body = "{\"email\":\"a@x.io\",\"password\":\"password1\"}";
	char length[32];
	char *p[] = {"REQUEST_METHOD=POST",           "REQUEST_URI=/auth/login",
	             "CONTENT_TYPE=application/json", length,
	             "REMOTE_ADDR=192.0.2.1",         NULL};
	struct request req;
	struct response res;
	struct json_object *v;
	uint64_t attempts;

	snprintf(name, sizeof name, "/chat-test-worker-%d", (int)getpid());
	seg_unlink(name, err, sizeof err);
	ck_assert_int_eq(rl_open(name, 1024, &w.rl, err, sizeof err), 0);
	snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(body));
	/* Nothing listens on port 1: every admitted login is a 503. */
	for (int i = 0; i < 5; i++) {
		run(p, body, &req, &res);
		ck_assert_int_eq(res.status, 503);
		ck_assert_ptr_nonnull(strstr(res.extra_headers, "RateLimit-Limit: 5\r\n"));
		ck_assert_uint_gt(db_attempts(), 0); /* the counter does count */
		done(&req, &res);
	}
	/* No back-off in the way: a 429 that asked the database would count
	 * an attempt now. */
	w.db.retry_at_ns = 0;
	attempts = db_attempts();
	run(p, body, &req, &res);
	ck_assert_int_eq(res.status, 429);
	ck_assert_str_eq(error_code(&res), "rate_limited");
	ck_assert(json_object_object_get_ex(res.json, "retry_after", &v));
	ck_assert_int_ge(json_object_get_int(v), 1);
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "Retry-After: "));
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "RateLimit-Remaining: 0\r\n"));
	ck_assert_uint_eq(db_attempts(), attempts);
	done(&req, &res);
	rl_close(w.rl);
	w.rl = NULL;
	seg_unlink(name, err, sizeof err);
}
END_TEST

/* Root is refused in TEST and PROD, tolerated with a warning in DEV; any
 * other user, or root in neither the real nor the effective id, is fine. */
START_TEST(root_is_refused_outside_dev)
{
	char why[192];

	ck_assert_int_eq(worker_check_user(APP_MODE_TEST, 0, 0, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "running as root (uid 0, euid 0), refused in APP_MODE=TEST"),
	              "%s", why);
	ck_assert_int_eq(worker_check_user(APP_MODE_PROD, 1000, 0, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "(uid 1000, euid 0), refused in APP_MODE=PROD"), "%s", why);
	ck_assert_int_eq(worker_check_user(APP_MODE_PROD, 0, 1000, why, sizeof why), -1);
	ck_assert_int_eq(worker_check_user(APP_MODE_DEV, 0, 0, why, sizeof why), 1);
	ck_assert_msg(strstr(why, "allowed in APP_MODE=DEV only"), "%s", why);
	strcpy(why, "untouched");
	ck_assert_int_eq(worker_check_user(APP_MODE_PROD, 33, 33, why, sizeof why), 0);
	ck_assert_int_eq(worker_check_user(APP_MODE_TEST, 65534, 65534, why, sizeof why), 0);
	ck_assert_str_eq(why, "untouched");
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("pipeline");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, oversized_body_is_refused_unread);
	tcase_add_test(tc, common_password_costs_no_query);
	tcase_add_test(tc, one_byte_over_the_cap_is_413_exactly_the_cap_is_read);
	tcase_add_test(tc, wrong_media_type_is_415_unread);
	tcase_add_test(tc, short_body_is_400);
	tcase_add_test(tc, huge_bearer_token_is_401_without_the_database);
	tcase_add_test(tc, routing_errors);
	tcase_add_test(tc, healthz_needs_no_database);
	tcase_add_test(tc, rate_limit_is_decided_before_the_database);
	tcase_add_test(tc, root_is_refused_outside_dev);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
