/*
 * Unit tests for src/reply.c: each error answer of the SPEC §2 table, its
 * status, "error" code, "field", the headers it must carry, and that no
 * detail echoes anything but the fixed text.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "reply.h"

static const char *member(const struct response *res, const char *name)
{
	struct json_object *v;

	if (!res->json || !json_object_object_get_ex(res->json, name, &v))
		return NULL;
	return json_object_get_string(v);
}

static void expect(const struct response *res, int status, const char *code, const char *field,
                   const char *header)
{
	ck_assert_int_eq(res->status, status);
	ck_assert_str_eq(member(res, "error"), code);
	ck_assert_ptr_nonnull(member(res, "detail"));
	if (field)
		ck_assert_str_eq(member(res, "field"), field);
	else
		ck_assert_ptr_null(member(res, "field"));
	if (header)
		ck_assert_ptr_nonnull(strstr(res->extra_headers, header));
	else
		ck_assert_uint_eq(res->extra_len, 0);
}

START_TEST(every_answer)
{
	struct response res;
	struct request req = {0};

#define RUN(call, ...)                                                                             \
	do {                                                                                       \
		http_response_init(&res);                                                          \
		call;                                                                              \
		expect(&res, __VA_ARGS__);                                                         \
		http_response_free(&res);                                                          \
	} while (0)

	RUN(reply_bad_request(&res, "bad", "email"), 400, "bad_request", "email", NULL);
	RUN(reply_unauthorized(&res, "no"), 401, "unauthorized", NULL,
	    "WWW-Authenticate: Bearer\r\n");
	RUN(reply_invalid_credentials(&res), 401, "invalid_credentials", NULL,
	    "WWW-Authenticate: Bearer\r\n");
	RUN(reply_forbidden(&req, &res, "owner_only", "owner only"), 403, "forbidden", NULL, NULL);
	RUN(reply_token_revoked(&req, &res), 401, "unauthorized", NULL,
	    "WWW-Authenticate: Bearer\r\n");
	RUN(reply_not_found(&res), 404, "not_found", NULL, NULL);
	RUN(reply_method_not_allowed(&res, "GET, POST"), 405, "method_not_allowed", NULL,
	    "Allow: GET, POST\r\n");
	RUN(reply_email_taken(&res), 409, "email_taken", "email", NULL);
	RUN(reply_too_large(&res, 65536), 413, "payload_too_large", NULL, NULL);
	RUN(reply_unsupported_media_type(&res, "json only"), 415, "unsupported_media_type", NULL,
	    NULL);
	RUN(reply_validation(&res, "title", "too long"), 422, "validation_failed", "title", NULL);
	RUN(reply_rate_limited(&res, 7), 429, "rate_limited", NULL, "Retry-After: 7\r\n");
	RUN(reply_internal(&res), 500, "internal", NULL, NULL);
	RUN(reply_db_error(&res, DB_UNAVAILABLE), 503, "database_unavailable", NULL,
	    "Retry-After: 1\r\n");
	RUN(reply_db_error(&res, DB_FAILED), 500, "internal", NULL, NULL);
#undef RUN
}
END_TEST

START_TEST(rate_limited_says_when)
{
	struct response res;
	struct json_object *v;

	http_response_init(&res);
	reply_rate_limited(&res, 42);
	ck_assert(json_object_object_get_ex(res.json, "retry_after", &v));
	ck_assert_int_eq(json_object_get_int(v), 42);
	http_response_free(&res);
}
END_TEST

START_TEST(too_large_states_the_limit)
{
	struct response res;
	struct json_object *v;

	http_response_init(&res);
	reply_too_large(&res, 12345);
	ck_assert(json_object_object_get_ex(res.json, "max_bytes", &v));
	ck_assert_int_eq(json_object_get_int64(v), 12345);
	ck_assert_str_eq(member(&res, "detail"), "request body over 12345 bytes");
	http_response_free(&res);
}
END_TEST

/* The two answers that are security events note them on the request:
 * one event each, of the right type and reason. */
START_TEST(revoked_and_forbidden_note_their_event)
{
	struct response res;
	struct request req = {0};

	http_response_init(&res);
	reply_token_revoked(&req, &res);
	http_response_free(&res);
	http_response_init(&res);
	reply_forbidden(&req, &res, "sender_only", "sender only");
	http_response_free(&res);
	ck_assert_uint_eq(req.nevents, 2);
	ck_assert_str_eq(audit_event_name(req.events[0].event), "token_rejected");
	ck_assert_str_eq(req.events[0].reason, "revoked");
	ck_assert_str_eq(audit_event_name(req.events[1].event), "access_denied");
	ck_assert_str_eq(req.events[1].reason, "sender_only");
}
END_TEST

static Suite *reply_suite(void)
{
	Suite *s = suite_create("reply");
	TCase *tc = tcase_create("answers");

	tcase_add_test(tc, every_answer);
	tcase_add_test(tc, rate_limited_says_when);
	tcase_add_test(tc, too_large_states_the_limit);
	tcase_add_test(tc, revoked_and_forbidden_note_their_event);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
