/*
 * Unit tests for src/db.c without a server: the connection parameters every
 * connection (and chat-admin) uses, the statement registry's bound, and the
 * back-off after a failed connect, counted in the counters metrics reports
 * (nothing listens on port 1).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"

static struct config cfg;
static struct db db;

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",
	               "SECRET_KEY=unit-test-key",
	               "POSTGRES_HOST=127.0.0.1",
	               "POSTGRES_PORT=1",
	               "POSTGRES_DB=chatdb",
	               "POSTGRES_USER=chatuser",
	               "DB_TIMEOUT_MS=2500",
	               NULL};
	struct config_problems p = {0};

	ck_assert_int_eq(config_load(&cfg, env, &p), 0);
	db_init(&db, &cfg);
}

static void teardown(void)
{
	db_close(&db);
	config_free(&cfg);
}

static const char *value_of(const char **keys, const char **values, const char *key)
{
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(keys[i], key) == 0)
			return values[i];
	return NULL;
}

START_TEST(conninfo_carries_our_settings)
{
	const char *keys[DB_CONNINFO_MAX], *values[DB_CONNINFO_MAX];
	struct db_conninfo_text text = {0};
	size_t n = db_conninfo(&cfg, keys, values, DB_CONNINFO_MAX, &text);

	ck_assert_uint_gt(n, 0);
	ck_assert_ptr_null(keys[n]);
	ck_assert_str_eq(value_of(keys, values, "host"), "127.0.0.1");
	ck_assert_str_eq(value_of(keys, values, "port"), "1");
	ck_assert_str_eq(value_of(keys, values, "dbname"), "chatdb");
	ck_assert_str_eq(value_of(keys, values, "user"), "chatuser");
	ck_assert_str_eq(value_of(keys, values, "sslmode"), cfg.pg_sslmode);
	/* Whole seconds, rounded up, at least 2. */
	ck_assert_str_eq(value_of(keys, values, "connect_timeout"), "3");
	ck_assert_ptr_nonnull(strstr(value_of(keys, values, "options"), "statement_timeout=2500"));
	ck_assert_ptr_nonnull(strstr(value_of(keys, values, "options"), DB_SESSION_OPTIONS));
	ck_assert_str_eq(value_of(keys, values, "gssencmode"), "disable");
	/* A vanished host is found by TCP within DB_TIMEOUT_MS (libpq also
	 * gives these to PQcancel's connection). */
	ck_assert_str_eq(value_of(keys, values, "tcp_user_timeout"), "2500");
	ck_assert_str_eq(value_of(keys, values, "keepalives"), "1");
	ck_assert_str_eq(value_of(keys, values, "keepalives_idle"), "3");
	ck_assert_str_eq(value_of(keys, values, "keepalives_interval"), "1");
	ck_assert_str_eq(value_of(keys, values, "keepalives_count"), "3");
	ck_assert_str_eq(value_of(keys, values, "target_session_attrs"), "read-write");
	ck_assert_uint_lt(n, DB_CONNINFO_MAX);
	/* The arrays stay NULL-terminated when they are short. */
	n = db_conninfo(&cfg, keys, values, 3, &text);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_null(keys[2]);
}
END_TEST

START_TEST(statement_sets_are_bounded)
{
	static const struct db_statement s[] = {{"x", "SELECT 1", true}};

	for (int i = 0; i < DB_MAX_STATEMENT_SETS; i++)
		ck_assert_int_eq(db_add_statements(&db, s, 1), 0);
	ck_assert_int_eq(db_add_statements(&db, s, 1), -1);
}
END_TEST

START_TEST(failed_connect_backs_off_and_is_counted)
{
	static const struct db_statement ping = {"ping", "SELECT 1", true};
	enum db_status st;

	ck_assert_int_eq(db_ensure(&db), DB_UNAVAILABLE);
	ck_assert_ptr_null(db.conn);
	ck_assert_uint_eq(db.connect_failures, 1);
	ck_assert_uint_eq(db.connects, 0);
	ck_assert_uint_gt(db.retry_at_ns, 0);
	/* Within the back-off: answered at once, no second attempt. */
	ck_assert_int_eq(db_ensure(&db), DB_UNAVAILABLE);
	ck_assert_ptr_null(db_exec(&db, &ping, 0, NULL, &st));
	ck_assert_int_eq(st, DB_UNAVAILABLE);
	ck_assert_uint_eq(db.connect_failures, 1);
	/* Once it has passed, the next call tries again, and waits longer. */
	db.retry_at_ns = 0;
	ck_assert_int_eq(db_ensure(&db), DB_UNAVAILABLE);
	ck_assert_uint_eq(db.connect_failures, 2);
	ck_assert_uint_eq(db.backoff_ms, 200);
	ck_assert_uint_eq(db.errors, 0); /* no statement ever ran */
}
END_TEST

static Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("no server");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, conninfo_carries_our_settings);
	tcase_add_test(tc, statement_sets_are_bounded);
	tcase_add_test(tc, failed_connect_backs_off_and_is_counted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(db_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
