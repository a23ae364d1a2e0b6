/*
 * Unit tests for src/health.c: liveness answers without the database,
 * readiness asks it (one attempt) and, with nothing on port 1, is 503
 * database_unavailable with Retry-After: what a load balancer must see to
 * take the worker out of rotation.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "pipeline.h"
#include "worker.h"

static struct worker w;

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",    "SECRET_KEY=health-unit-key", "POSTGRES_HOST=127.0.0.1",
	               "POSTGRES_PORT=1", "DB_TIMEOUT_MS=500",          NULL};
	struct config_problems p = {0};
	const struct db_statement *s;
	size_t n;

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	db_init(&w.db, &w.cfg);
	s = health_statements(&n);
	ck_assert_int_eq(db_add_statements(&w.db, s, n), 0);
}

static void teardown(void)
{
	db_close(&w.db);
	config_free(&w.cfg);
}

static uint64_t db_attempts(void)
{
	return db_attempts_of(&w);
}

static ssize_t no_body(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	ck_abort_msg("a health check read a body");
	return -1;
}

static void get(const char *uri, struct request *req, struct response *res)
{
	char u[128];
	char *p[] = {"REQUEST_METHOD=GET", u, NULL};

	snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
	ck_assert_int_eq(http_request_init(req, p), 0);
	http_response_init(res);
	worker_handle(&w, req, res, no_body, NULL);
}

START_TEST(healthz_is_ok_without_the_database)
{
	struct request req;
	struct response res;

	get("/healthz", &req, &res);
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(member(&res, "status"), "ok");
	ck_assert_int_eq(json_object_object_length(res.json), 1);
	ck_assert_uint_eq(res.extra_len, 0); /* no Retry-After, nothing */
	ck_assert_uint_eq(db_attempts(), 0);
	ck_assert_ptr_null(w.db.conn);
	done(&req, &res);

	/* Also while the database is known to be down. */
	get("/readyz", &req, &res);
	done(&req, &res);
	get("/healthz", &req, &res);
	ck_assert_int_eq(res.status, 200);
	ck_assert_uint_eq(db_attempts(), 1);
	done(&req, &res);
}
END_TEST

START_TEST(readyz_asks_the_database)
{
	struct request req;
	struct response res;

	get("/readyz", &req, &res);
	ck_assert_int_eq(res.status, 503);
	ck_assert_str_eq(member(&res, "error"), "database_unavailable");
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "Retry-After: 1\r\n"));
	ck_assert_uint_eq(db_attempts(), 1);
	ck_assert_uint_eq(w.db.connect_failures, 1);
	done(&req, &res);

	/* Every probe after the back-off tries again: readiness follows the
	 * database, it is not remembered. */
	w.db.retry_at_ns = 0;
	get("/readyz", &req, &res);
	ck_assert_int_eq(res.status, 503);
	ck_assert_uint_eq(db_attempts(), 2);
	done(&req, &res);
}
END_TEST

/* The ping is registered under health's name and may be retried on a
 * fresh connection (it changes nothing). */
START_TEST(ping_statement)
{
	size_t n;
	const struct db_statement *s = health_statements(&n);

	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(s[0].name, "health_ping");
	ck_assert_str_eq(s[0].sql, "SELECT 1");
	ck_assert(s[0].read_only);
}
END_TEST

static Suite *health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("health");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, healthz_is_ok_without_the_database);
	tcase_add_test(tc, readyz_asks_the_database);
	tcase_add_test(tc, ping_statement);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(health_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
