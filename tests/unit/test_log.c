/*
 * Unit tests for src/log.c: each line is one JSON object with the fields
 * SPEC §6 names, the threshold filters, a hostile path is cut, and nothing
 * secret a request carries (token, body) reaches a line.  stderr is pointed
 * at a temporary file for the duration of each test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "stderr_capture.h"

static void setup(void)
{
	capture();
	log_set_threshold(LOG_LEVEL_INFO);
}

static const char *member(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

START_TEST(event_line_is_one_json_object)
{
	char *text;
	struct json_object *o;

	log_event(LOG_LEVEL_WARN, "db_connect", "retry in %d ms", 200);
	text = captured();
	ck_assert_ptr_nonnull(strchr(text, '\n'));
	ck_assert_ptr_null(strchr(strchr(text, '\n') + 1, '\n'));
	o = json_tokener_parse(text);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(member(o, "level"), "warn");
	ck_assert_str_eq(member(o, "event"), "db_connect");
	ck_assert_str_eq(member(o, "msg"), "retry in 200 ms");
	ck_assert_ptr_nonnull(member(o, "ts"));
	ck_assert_int_eq(atoi(member(o, "pid")), (int)getpid());
	json_object_put(o);
	free(text);
}
END_TEST

START_TEST(threshold_filters)
{
	char *text;

	log_event(LOG_LEVEL_DEBUG, "x", "hidden");
	log_set_threshold(LOG_LEVEL_ERROR);
	log_event(LOG_LEVEL_WARN, "x", "hidden too");
	log_event(LOG_LEVEL_ERROR, "x", "shown");
	text = captured();
	ck_assert_ptr_null(strstr(text, "hidden"));
	ck_assert_ptr_nonnull(strstr(text, "shown"));
	free(text);
}
END_TEST

START_TEST(request_line_names_no_secret)
{
	struct request req;
	char long_path[1024], *text;
	struct json_object *o, *v;

	memset(&req, 0, sizeof req);
	memset(long_path, 'p', sizeof long_path - 1);
	long_path[0] = '/';
	long_path[sizeof long_path - 1] = '\0';
	req.method = "POST";
	req.path = long_path;
	req.route_name = "auth_login";
	req.authorization = "Bearer sekrit-token";
	req.body = "{\"password\":\"hunter2-hunter2\"}";
	req.body_len = strlen(req.body);
	req.user_id = 42;
	strcpy(req.request_id, "rid-1");
	log_request(&req, 201, 1234567);
	text = captured();
	ck_assert_ptr_null(strstr(text, "sekrit"));
	ck_assert_ptr_null(strstr(text, "hunter2"));
	o = json_tokener_parse(text);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(member(o, "request_id"), "rid-1");
	ck_assert_str_eq(member(o, "method"), "POST");
	ck_assert_str_eq(member(o, "route"), "auth_login");
	ck_assert_uint_eq(strlen(member(o, "path")), 256);
	ck_assert_str_eq(member(o, "status"), "201");
	ck_assert_str_eq(member(o, "user_id"), "42");
	ck_assert(json_object_object_get_ex(o, "duration_ms", &v));
	ck_assert_ptr_nonnull(strstr(text, "\"duration_ms\":1.235"));
	ck_assert_str_eq(member(o, "level"), "info");
	json_object_put(o);
	free(text);
}
END_TEST

START_TEST(server_errors_are_error_level)
{
	struct request req;
	char *text;
	struct json_object *o;

	memset(&req, 0, sizeof req);
	log_request(&req, 503, 0);
	text = captured();
	o = json_tokener_parse(text);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(member(o, "level"), "error");
	ck_assert_str_eq(member(o, "method"), "");
	ck_assert_ptr_null(member(o, "user_id"));
	json_object_put(o);
	free(text);
}
END_TEST

START_TEST(time_is_rfc3339_milliseconds)
{
	struct timespec ts = {.tv_sec = 1795900445, .tv_nsec = 123999999};
	char out[32];

	log_format_time(out, &ts);
	ck_assert_str_eq(out, "2026-11-28T21:14:05.123Z");
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, release);
	tcase_add_test(tc, event_line_is_one_json_object);
	tcase_add_test(tc, threshold_filters);
	tcase_add_test(tc, request_line_names_no_secret);
	tcase_add_test(tc, server_errors_are_error_level);
	tcase_add_test(tc, time_is_rfc3339_milliseconds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
