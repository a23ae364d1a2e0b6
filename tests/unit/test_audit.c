/*
 * Unit tests for src/audit.c: a noted event becomes exactly one JSON line
 * with its type, the client address as the rate limiter sees it, its fixed
 * details and nothing from the request's secrets; events are counted even
 * below the log threshold; a request has bounded room.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit.h"
#include "log.h"
#include "netaddr.h"
#include "stderr_capture.h"

static void setup(void)
{
	capture();
	log_set_threshold(LOG_LEVEL_INFO);
}

static struct request fake_request(void)
{
	struct request req;

	memset(&req, 0, sizeof req);
	req.remote_addr = "10.1.2.3";
	req.x_forwarded_for = "198.51.100.9, 203.0.113.7";
	req.route_name = "auth_login";
	req.authorization = "Bearer sekrit-token";
	req.body = "{\"email\":\"victim@example.io\",\"password\":\"hunter2-hunter2\"}";
	req.body_len = strlen(req.body);
	strcpy(req.request_id, "rid-7");
	return req;
}

static struct json_object *line(const char *text, int n)
{
	for (int i = 0; i < n; i++) {
		text = strchr(text, '\n');
		ck_assert_ptr_nonnull(text);
		text++;
	}
	return json_tokener_parse(text);
}

static const char *member(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

static size_t lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

START_TEST(one_line_per_event_with_its_details)
{
	struct request req = fake_request();
	struct cidr_list trusted = {0};
	struct json_object *o;
	char *text;

	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8", &trusted, &(size_t){0}), 0);
	req.user_id = 5;
	audit_note(&req, AUDIT_LOGIN_FAILED,
	           &(struct request_event){.reason = "wrong_password", .user_id = 42});
	audit_note(&req, AUDIT_SESSIONS_REVOKED,
	           &(struct request_event){.reason = "password_changed", .count = 3});
	audit_note(&req, AUDIT_RATE_LIMITED,
	           &(struct request_event){.rl_class = "login", .key_kind = "email"});
	audit_emit(&req, 401, &trusted, NULL);
	text = captured();
	ck_assert_uint_eq(lines(text), 3);
	ck_assert_ptr_null(strstr(text, "sekrit"));
	ck_assert_ptr_null(strstr(text, "hunter2"));
	ck_assert_ptr_null(strstr(text, "victim"));

	o = line(text, 0);
	ck_assert_str_eq(member(o, "event"), "login_failed");
	ck_assert_str_eq(member(o, "level"), "warn");
	ck_assert_str_eq(member(o, "security"), "true");
	ck_assert_str_eq(member(o, "request_id"), "rid-7");
	/* Behind a trusted proxy: the right-most untrusted hop. */
	ck_assert_str_eq(member(o, "client"), "203.0.113.7");
	ck_assert_str_eq(member(o, "route"), "auth_login");
	ck_assert_str_eq(member(o, "status"), "401");
	ck_assert_str_eq(member(o, "reason"), "wrong_password");
	ck_assert_str_eq(member(o, "user_id"), "42"); /* the account, not the caller */
	ck_assert_ptr_null(member(o, "count"));
	ck_assert_ptr_null(member(o, "class"));
	json_object_put(o);

	o = line(text, 1);
	ck_assert_str_eq(member(o, "event"), "sessions_revoked");
	ck_assert_str_eq(member(o, "level"), "info");
	ck_assert_str_eq(member(o, "count"), "3");
	ck_assert_str_eq(member(o, "user_id"), "5"); /* the caller's */
	json_object_put(o);

	o = line(text, 2);
	ck_assert_str_eq(member(o, "event"), "rate_limited");
	ck_assert_str_eq(member(o, "class"), "login");
	ck_assert_str_eq(member(o, "key"), "email");
	json_object_put(o);
	free(text);
	cidr_list_free(&trusted);
}
END_TEST

START_TEST(untrusted_peer_is_the_client)
{
	struct request req = fake_request();
	struct cidr_list none = {0};
	struct json_object *o;
	char *text;

	audit_note(&req, AUDIT_TOKEN_REJECTED, &(struct request_event){.reason = "expired"});
	audit_emit(&req, 401, &none, NULL);
	text = captured();
	o = line(text, 0);
	ck_assert_str_eq(member(o, "client"), "10.1.2.3");
	ck_assert_ptr_null(member(o, "user_id"));
	json_object_put(o);
	free(text);
}
END_TEST

START_TEST(nothing_noted_nothing_logged)
{
	struct request req = fake_request();
	char *text;

	audit_emit(&req, 200, NULL, NULL);
	text = captured();
	ck_assert_str_eq(text, "");
	free(text);
}
END_TEST

START_TEST(room_is_bounded_and_types_checked)
{
	struct request req = fake_request();

	for (int i = 0; i < HTTP_MAX_EVENTS + 3; i++)
		audit_note(&req, AUDIT_LOGIN_SUCCEEDED, NULL);
	ck_assert_uint_eq(req.nevents, HTTP_MAX_EVENTS);
	req.nevents = 0;
	audit_note(&req, AUDIT_EVENTS, NULL);
	audit_note(&req, (enum audit_event) - 1, NULL);
	ck_assert_uint_eq(req.nevents, 0);
	ck_assert_ptr_null(audit_event_name(AUDIT_EVENTS));
	ck_assert_ptr_null(audit_event_name(-1));
	ck_assert_str_eq(audit_event_name(AUDIT_CONFIG_REJECTED), "config_rejected");
}
END_TEST

START_TEST(threshold_hides_info_events)
{
	struct request req = fake_request();
	struct cidr_list none = {0};
	char *text;

	log_set_threshold(LOG_LEVEL_WARN);
	audit_note(&req, AUDIT_LOGIN_SUCCEEDED, NULL);
	audit_note(&req, AUDIT_ACCESS_DENIED, &(struct request_event){.reason = "owner_only"});
	audit_emit(&req, 403, &none, NULL);
	text = captured();
	ck_assert_uint_eq(lines(text), 1);
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"access_denied\""));
	free(text);
}
END_TEST

START_TEST(config_rejected_is_one_error_line)
{
	struct json_object *o;
	char *text;

	audit_config_rejected("APP_MODE: must be DEV, TEST or PROD");
	text = captured();
	ck_assert_uint_eq(lines(text), 1);
	o = line(text, 0);
	ck_assert_str_eq(member(o, "event"), "config_rejected");
	ck_assert_str_eq(member(o, "level"), "error");
	ck_assert_str_eq(member(o, "security"), "true");
	ck_assert_str_eq(member(o, "msg"), "APP_MODE: must be DEV, TEST or PROD");
	json_object_put(o);
	free(text);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("events");

	tcase_add_checked_fixture(tc, setup, release);
	tcase_add_test(tc, one_line_per_event_with_its_details);
	tcase_add_test(tc, untrusted_peer_is_the_client);
	tcase_add_test(tc, nothing_noted_nothing_logged);
	tcase_add_test(tc, room_is_bounded_and_types_checked);
	tcase_add_test(tc, threshold_hides_info_events);
	tcase_add_test(tc, config_rejected_is_one_error_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
