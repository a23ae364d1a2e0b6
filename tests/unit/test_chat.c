/*
 * Unit tests for src/chat.c without a database: every handler's checks of
 * its body, query and headers answer before the first query (no connection
 * attempt), and a request that passes them asks the database exactly once
 * and, with nothing on port 1, answers 503 database_unavailable with
 * Retry-After.  Requests go through the pipeline with a valid token.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "chat.h"
#include "token.h"
#include "pipeline.h"
#include "worker.h"

static struct worker w;
static char bearer[512];

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",
	               "SECRET_KEY=chat-unit-key-0123456789abcdef",
	               "SCRYPT_N=10",
	               "POSTGRES_HOST=127.0.0.1",
	               "POSTGRES_PORT=1",
	               "DB_TIMEOUT_MS=500",
	               "MAX_BODY_BYTES=1048576",
	               NULL};
	struct config_problems p = {0};
	struct token_claims c;
	const struct db_statement *s;
	size_t n;
	char *tok = NULL;

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	db_init(&w.db, &w.cfg);
	s = chat_statements(&n);
	ck_assert_int_eq(db_add_statements(&w.db, s, n), 0);
	/* No shared table here: the classes are off. */
	w.cfg.rate_chat.limit = 0;
	w.cfg.rate_read.limit = 0;

	memset(&c, 0, sizeof c);
	c.user_id = 7;
	c.iat = (int64_t)time(NULL);
	c.exp = c.iat + 600;
	strcpy(c.jti, "chatunitsession");
	ck_assert_int_eq(token_sign(&w.cfg.secret_key, &c, &tok), 0);
	snprintf(bearer, sizeof bearer, "HTTP_AUTHORIZATION=Bearer %s", tok);
	free(tok);
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

/* One authenticated request: a JSON body when body is not NULL, and one
 * extra parameter when extra is not NULL. */
static void run(const char *method, const char *uri, const char *extra, const char *body,
                struct request *req, struct response *res)
{
	char m[32], u[512], length[48], *e = NULL;
	char *p[8];
	size_t n = 0;
	const char *cursor = body ? body : "";

	snprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
	snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
	p[n++] = m;
	p[n++] = u;
	p[n++] = bearer;
	if (body) {
		snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(body));
		p[n++] = length;
		p[n++] = "CONTENT_TYPE=application/json";
	}
	if (extra) {
		e = strdup(extra);
		p[n++] = e;
	}
	p[n] = NULL;
	ck_assert_int_eq(http_request_init(req, p), 0);
	http_response_init(res);
	worker_handle(&w, req, res, read_string, &cursor);
	free(e);
}

/* Refused with status on `field`, and no connection attempt. */
static void expect_refusal(const char *method, const char *uri, const char *extra, const char *body,
                           int status, const char *field)
{
	struct request req;
	struct response res;

	run(method, uri, extra, body, &req, &res);
	ck_assert_msg(res.status == status, "%s %s %s: %d, not %d", method, uri,
	              body    ? body
	              : extra ? extra
	                      : "",
	              res.status, status);
	ck_assert_str_eq(member(&res, "error"),
	                 status == 422 ? "validation_failed" : "bad_request");
	ck_assert_msg(strcmp(member(&res, "field"), field) == 0, "%s %s: field %s, not %s", method,
	              uri, member(&res, "field"), field);
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
}

/* Past every check: one connection attempt, then 503 with Retry-After. */
static void expect_unavailable(const char *method, const char *uri, const char *extra,
                               const char *body)
{
	struct request req;
	struct response res;
	uint64_t before;

	w.db.retry_at_ns = 0; /* no back-off in the way of the attempt */
	before = db_attempts();
	run(method, uri, extra, body, &req, &res);
	ck_assert_msg(res.status == 503, "%s %s %s: %d", method, uri,
	              body    ? body
	              : extra ? extra
	                      : "",
	              res.status);
	ck_assert_str_eq(member(&res, "error"), "database_unavailable");
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "Retry-After: 1\r\n"));
	ck_assert_uint_eq(db_attempts(), before + 1);
	ck_assert_uint_eq(req.nevents, 0);
	done(&req, &res);
}

/* "x" repeated n times in a JSON string field: {"name":"xxx..."}. */
static char *json_repeat(const char *name, const char *unit, size_t n)
{
	size_t ul = strlen(unit), nl = strlen(name);
	char *s = malloc(nl + ul * n + 16), *p = s;

	p += sprintf(p, "{\"%s\":\"", name);
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	strcpy(p, "\"}");
	return s;
}

START_TEST(create_conversation_checks)
{
	static const char *const uri = "/chat/conversations";
	char *long_title = json_repeat("title", "t", 201);
	char *max_title = json_repeat("title", "\xc3\xa9", 200); /* 200 code points */
	char members[4096], *p = members;

	expect_refusal("POST", uri, NULL, "{}", 422, "title");
	expect_refusal("POST", uri, NULL, "{\"title\":\" \\t \"}", 422, "title");
	expect_refusal("POST", uri, NULL, "{\"title\":17}", 400, "title");
	expect_refusal("POST", uri, NULL, long_title, 422, "title");
	expect_refusal("POST", uri, NULL, "{\"title\":\"t\",\"members\":\"a@x.io\"}", 400,
	               "members");
	expect_refusal("POST", uri, NULL, "{\"title\":\"t\",\"members\":[1]}", 400, "members");
	expect_refusal("POST", uri, NULL, "{\"title\":\"t\",\"members\":[\"a@x.io\",\"nope\"]}",
	               422, "members");
	/* 101 members: one over the cap. */
	p += sprintf(p, "{\"title\":\"t\",\"members\":[");
	for (int i = 0; i < 101; i++)
		p += sprintf(p, "%s\"u%d@x.io\"", i ? "," : "", i);
	strcpy(p, "]}");
	expect_refusal("POST", uri, NULL, members, 422, "members");

	expect_unavailable("POST", uri, NULL, max_title);
	expect_unavailable("POST", uri, NULL,
	                   "{\"title\":\"t\",\"members\":[\"A@X.io\"],\"ignored\":1}");
	expect_unavailable("POST", uri, NULL, "{\"title\":\"t\",\"members\":null}");
	free(long_title);
	free(max_title);
}
END_TEST

START_TEST(list_conversations_checks)
{
	static const struct {
		const char *uri, *field;
	} bad[] = {
	    {"/chat/conversations?limit=0", "limit"},
	    {"/chat/conversations?limit=201", "limit"},
	    {"/chat/conversations?limit=abc", "limit"},
	    {"/chat/conversations?limit=-1", "limit"},
	    {"/chat/conversations?limit=05", "limit"},
	    {"/chat/conversations?limit=", "limit"},
	    {"/chat/conversations?limit=1&limit=2", "limit"},
	    {"/chat/conversations?before=0", "before"},
	    {"/chat/conversations?before=9223372036854775808", "before"},
	    {"/chat/conversations?limit=10&before=%zz", "before"},
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_refusal("GET", bad[i].uri, NULL, NULL, 422, bad[i].field);
	expect_unavailable("GET", "/chat/conversations", NULL, NULL);
	expect_unavailable("GET", "/chat/conversations?limit=200&before=9223372036854775807", NULL,
	                   NULL);
	expect_unavailable("GET", "/chat/conversations?limit=1&other=x", NULL, NULL);
}
END_TEST

/* No input but the id: straight to the database. */
START_TEST(get_conversation_asks_the_database)
{
	expect_unavailable("GET", "/chat/conversations/5", NULL, NULL);
}
END_TEST

START_TEST(add_member_checks)
{
	static const char *const uri = "/chat/conversations/5/members";

	expect_refusal("POST", uri, NULL, "{}", 422, "email");
	expect_refusal("POST", uri, NULL, "{\"email\":\"\"}", 422, "email");
	expect_refusal("POST", uri, NULL, "{\"email\":\"not-an-email\"}", 422, "email");
	expect_refusal("POST", uri, NULL, "{\"email\":\"a b@x.io\"}", 422, "email");
	expect_refusal("POST", uri, NULL, "{\"email\":[\"a@x.io\"]}", 400, "email");
	expect_unavailable("POST", uri, NULL, "{\"email\":\"  Bob@Example.io \"}");
}
END_TEST

START_TEST(post_message_checks)
{
	static const char *const uri = "/chat/conversations/5/messages";
	char *long_body = json_repeat("body", "b", 4001);
	char *max_body = json_repeat("body", "\xe2\x82\xac", 4000); /* 4000 code points */
	char key[256];

	expect_refusal("POST", uri, NULL, "{}", 422, "body");
	expect_refusal("POST", uri, NULL, "{\"body\":\"\"}", 422, "body");
	expect_refusal("POST", uri, NULL, "{\"body\":\" \\n\\t \"}", 422, "body");
	/* U+3000 IDEOGRAPHIC SPACE is white space too. */
	expect_refusal("POST", uri, NULL, "{\"body\":\"\\u3000\"}", 422, "body");
	expect_refusal("POST", uri, NULL, "{\"body\":false}", 400, "body");
	expect_refusal("POST", uri, NULL, long_body, 422, "body");

	/* Idempotency-Key: 1 to 128 printable ASCII characters. */
	expect_refusal("POST", uri, "HTTP_IDEMPOTENCY_KEY=", "{\"body\":\"hi\"}", 422,
	               "Idempotency-Key");
	expect_refusal("POST", uri, "HTTP_IDEMPOTENCY_KEY=k\x01y", "{\"body\":\"hi\"}", 422,
	               "Idempotency-Key");
	expect_refusal("POST", uri, "HTTP_IDEMPOTENCY_KEY=cl\xc3\xa9", "{\"body\":\"hi\"}", 422,
	               "Idempotency-Key");
	memset(key, 0, sizeof key);
	strcpy(key, "HTTP_IDEMPOTENCY_KEY=");
	memset(key + strlen(key), 'k', 129);
	expect_refusal("POST", uri, key, "{\"body\":\"hi\"}", 422, "Idempotency-Key");
	/* Checked after the body: a bad body is named first. */
	expect_refusal("POST", uri, "HTTP_IDEMPOTENCY_KEY=", "{\"body\":\" \"}", 422, "body");

	key[strlen(key) - 1] = '\0'; /* 128 */
	expect_unavailable("POST", uri, key, "{\"body\":\"hi\"}");
	expect_unavailable("POST", uri, "HTTP_IDEMPOTENCY_KEY=a key with spaces ~!",
	                   "{\"body\":\"hi\"}");
	expect_unavailable("POST", uri, NULL, max_body);
	expect_unavailable("POST", uri, NULL, "{\"body\":\"  hi  \"}");
	free(long_body);
	free(max_body);
}
END_TEST

START_TEST(list_messages_checks)
{
	static const struct {
		const char *query, *field;
	} bad[] = {
	    {"limit=0", "limit"},   {"limit=201", "limit"},          {"limit=x", "limit"},
	    {"after=-1", "after"},  {"after=1&after=2", "after"},    {"after=%", "after"},
	    {"before=0", "before"}, {"after=1&before=-5", "before"},
	};
	char uri[128];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(uri, sizeof uri, "/chat/conversations/5/messages?%s", bad[i].query);
		expect_refusal("GET", uri, NULL, NULL, 422, bad[i].field);
	}
	expect_unavailable("GET", "/chat/conversations/5/messages", NULL, NULL);
	/* after=0: a client that has seen nothing yet. */
	expect_unavailable("GET", "/chat/conversations/5/messages?after=0", NULL, NULL);
	expect_unavailable("GET", "/chat/conversations/5/messages?after=3&before=9&limit=200", NULL,
	                   NULL);
}
END_TEST

/* Each statement names itself after its module, once (a prepared name
 * given twice would fail on every connection), and none marked read-only
 * writes (a read-only statement may be retried on a new connection). */
START_TEST(statements_are_named_and_read_only_where_safe)
{
	size_t n;
	const struct db_statement *s = chat_statements(&n);
	int reads = 0;

	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(strncmp(s[i].name, "chat_", 5) == 0, "%s", s[i].name);
		ck_assert_ptr_nonnull(s[i].sql);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(s[i].name, s[j].name) != 0, "%s twice", s[i].name);
		if (s[i].read_only) {
			ck_assert_msg(strstr(s[i].sql, "INSERT") == NULL &&
			                  strstr(s[i].sql, "UPDATE") == NULL &&
			                  strstr(s[i].sql, "DELETE") == NULL,
			              "%s writes but is marked read-only", s[i].name);
			reads++;
		}
	}
	/* Not vacuous: both kinds are there. */
	ck_assert_int_gt(reads, 0);
	ck_assert_int_lt(reads, (int)n);
}
END_TEST

static Suite *chat_suite(void)
{
	Suite *s = suite_create("chat");
	TCase *tc = tcase_create("chat");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, create_conversation_checks);
	tcase_add_test(tc, list_conversations_checks);
	tcase_add_test(tc, get_conversation_asks_the_database);
	tcase_add_test(tc, add_member_checks);
	tcase_add_test(tc, post_message_checks);
	tcase_add_test(tc, list_messages_checks);
	tcase_add_test(tc, statements_are_named_and_read_only_where_safe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chat_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
