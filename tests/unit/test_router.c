/*
 * Unit tests for src/router.c: the route table and path matching.
 *
 * The expected table below is written from SPEC §2 and §3 (method, path,
 * body kind, bearer token, rate-limit class), not copied from router.c, so a
 * route that drifts from the contract fails here.  The single-method routes
 * are in `expected`; the chat routes, with "{id}" segments and paths shared
 * by two methods, have a test of their own.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const struct {
	const char *method;
	const char *path;
	const char *name;
	enum route_body body;
	bool needs_token;
	enum limit_class limit;
} expected[] = {
    {"GET", "/healthz", "healthz", ROUTE_BODY_NONE, false, LIMIT_NONE},
    {"GET", "/readyz", "readyz", ROUTE_BODY_NONE, false, LIMIT_NONE},
    {"POST", "/auth/register", "auth_register", ROUTE_BODY_JSON, false, LIMIT_CLASS_AUTH},
    {"POST", "/auth/login", "auth_login", ROUTE_BODY_JSON_OR_FORM, false, LIMIT_CLASS_AUTH},
    {"POST", "/auth/logout", "auth_logout", ROUTE_BODY_NONE, true, LIMIT_NONE},
    {"GET", "/auth/me", "auth_me", ROUTE_BODY_NONE, true, LIMIT_CLASS_READ},
    {"POST", "/auth/password", "auth_password", ROUTE_BODY_JSON, true, LIMIT_CLASS_AUTH},
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static enum router_result match(const char *method, const char *path, const struct route **r,
                                char *allow, size_t allow_len)
{
	int64_t ids[HTTP_MAX_PATH_IDS] = {-1, -1};

	*r = NULL;
	int index = -1;
	enum router_result res = router_match(method, path, r, &index, ids, allow, allow_len);

	/* The index names the same entry of the table. */
	if (res == ROUTER_FOUND)
		ck_assert_ptr_eq(router_at((size_t)index), *r);
	return res;
}

START_TEST(route_found)
{
	const struct route *r;
	char allow[64] = "untouched";
	const char *path = expected[_i].path;

	ck_assert_msg(match(expected[_i].method, path, &r, allow, sizeof allow) == ROUTER_FOUND,
	              "%s %s not found", expected[_i].method, path);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->name, expected[_i].name);
	ck_assert_str_eq(r->method, expected[_i].method);
	ck_assert_str_eq(r->pattern, path);
	ck_assert_ptr_nonnull(r->handler);
	ck_assert_msg(r->body == expected[_i].body, "%s: body kind %d", path, r->body);
	ck_assert_msg(r->needs_token == expected[_i].needs_token, "%s: needs_token", path);
	ck_assert_msg(r->limit == expected[_i].limit, "%s: limit class %d", path, r->limit);
}
END_TEST

/* Every path has exactly one method today, so any other method is a 405
 * whose Allow lists just that one. */
START_TEST(route_wrong_method)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
	const struct route *r;
	char allow[64];

	for (int m = 0; m < N(methods); m++) {
		if (strcmp(methods[m], expected[_i].method) == 0)
			continue;
		ck_assert_msg(match(methods[m], expected[_i].path, &r, allow, sizeof allow) ==
		                  ROUTER_METHOD_NOT_ALLOWED,
		              "%s %s not a 405", methods[m], expected[_i].path);
		ck_assert_str_eq(allow, expected[_i].method);
	}
}
END_TEST

START_TEST(method_is_case_sensitive)
{
	const struct route *r;
	char allow[64];

	/* RFC 9110 §9.1: the method token is case-sensitive. */
	ck_assert_int_eq(match("get", "/healthz", &r, allow, sizeof allow),
	                 ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "GET");
	ck_assert_int_eq(match("post", "/auth/login", &r, allow, sizeof allow),
	                 ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "POST");
}
END_TEST

static const char *const unknown_paths[] = {
    "",
    "/",
    "/nope",
    "/healthz/",
    "/HEALTHZ",
    "/Healthz",
    "/health",
    "/healthzz",
    "//healthz",
    "/healthz/x",
    "healthz",
    "/auth",
    "/auth/",
    "/auth/me/",
    "/auth/ME",
    "/auth//me",
    "/auth/login/",
    "/auth/register/1",
    "/auth/me/1",
    "/readyz/0",
    "/healthz/1",
    "/healthz%2F",
    "/chat/conversations/0",
    "/chat/conversations/-1",
    "/chat/conversations/abc",
    "/chat/conversations/01",
    "/chat/conversations/9223372036854775808",
};

/* The chat routes carry "{id}" segments and share paths between methods;
 * the id is a positive int64 in canonical decimal, else no route at all. */
START_TEST(chat_routes_and_ids)
{
	static const struct {
		const char *method, *path, *name;
		int64_t id;
		enum route_body body;
		enum limit_class limit;
	} rows[] = {
	    {"POST", "/chat/conversations", "chat_conversation_create", 0, ROUTE_BODY_JSON,
	     LIMIT_CLASS_CHAT},
	    {"GET", "/chat/conversations", "chat_conversation_list", 0, ROUTE_BODY_NONE,
	     LIMIT_CLASS_READ},
	    {"GET", "/chat/conversations/7", "chat_conversation_get", 7, ROUTE_BODY_NONE,
	     LIMIT_CLASS_READ},
	    {"POST", "/chat/conversations/42/members", "chat_member_add", 42, ROUTE_BODY_JSON,
	     LIMIT_CLASS_CHAT},
	    {"POST", "/chat/conversations/9223372036854775807/messages", "chat_message_post",
	     INT64_MAX, ROUTE_BODY_JSON, LIMIT_CLASS_CHAT},
	    {"GET", "/chat/conversations/1/messages", "chat_message_list", 1, ROUTE_BODY_NONE,
	     LIMIT_CLASS_READ},
	};
	const struct route *r;
	int64_t ids[HTTP_MAX_PATH_IDS];
	int index;
	char allow[64];

	for (int i = 0; i < N(rows); i++) {
		ids[0] = 0;
		ck_assert_msg(router_match(rows[i].method, rows[i].path, &r, &index, ids, allow,
		                           sizeof allow) == ROUTER_FOUND,
		              "%s %s", rows[i].method, rows[i].path);
		ck_assert_str_eq(r->name, rows[i].name);
		ck_assert(r->needs_token);
		ck_assert_int_eq(r->body, rows[i].body);
		ck_assert_int_eq(r->limit, rows[i].limit);
		if (rows[i].id)
			ck_assert(ids[0] == rows[i].id);
	}
	ck_assert_int_eq(
	    router_match("DELETE", "/chat/conversations", &r, &index, ids, allow, sizeof allow),
	    ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "POST, GET");
	ck_assert_int_eq(router_match("GET", "/chat/conversations/1e3/messages", &r, &index, ids,
	                              allow, sizeof allow),
	                 ROUTER_NOT_FOUND);
	ck_assert_int_eq(router_match("GET", "/metrics", &r, &index, ids, allow, sizeof allow),
	                 ROUTER_FOUND);
	ck_assert(!r->needs_token && r->limit == LIMIT_NONE);
}
END_TEST

START_TEST(unknown_path)
{
	const char *methods[] = {"GET", "POST"};
	const struct route *r;
	char allow[64];

	for (int m = 0; m < N(methods); m++) {
		strcpy(allow, "untouched");
		ck_assert_msg(match(methods[m], unknown_paths[_i], &r, allow, sizeof allow) ==
		                  ROUTER_NOT_FOUND,
		              "%s \"%s\" matched", methods[m], unknown_paths[_i]);
		ck_assert_ptr_null(r);
		ck_assert_str_eq(allow, "");
	}
}
END_TEST

START_TEST(allow_truncated_safely)
{
	const struct route *r;
	char allow[3] = {'x', 'x', 'x'};

	ck_assert_int_eq(match("GET", "/auth/password", &r, allow, 3), ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "PO");
	ck_assert_int_eq(match("DELETE", "/auth/password", &r, allow, 1),
	                 ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "");
}
END_TEST

static Suite *router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("match");

	tcase_add_test(tc, chat_routes_and_ids);
	tcase_add_loop_test(tc, route_found, 0, N(expected));
	tcase_add_loop_test(tc, route_wrong_method, 0, N(expected));
	tcase_add_test(tc, method_is_case_sensitive);
	tcase_add_loop_test(tc, unknown_path, 0, N(unknown_paths));
	tcase_add_test(tc, allow_truncated_safely);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(router_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
