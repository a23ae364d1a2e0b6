/*
 * Unit tests for src/auth.c without a database: what the bearer check
 * answers and notes for each kind of bad token, what register, login and
 * password change refuse before their first query (and that refusing costs
 * no connection attempt), the per-email login limit, and that a password
 * read from the JSON body is wiped in the body the request still owns.
 * The database is on port 1: a request that gets past validation tries
 * once, is refused, and answers 503 with Retry-After.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit.h"
#include "auth.h"
#include "ratelimit.h"
#include "segment.h"
#include "token.h"
#include "pipeline.h"
#include "worker.h"

#define USER_ID 7
#define JTI     "0123456789abcdef0123456789abcdef"

static struct worker w;
static char shm_name[64];
static uint32_t auth_limit; /* RATE_LIMIT_AUTH's, off until a test wants it */

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",
	               "SECRET_KEY=auth-unit-key-0123456789abcdef",
	               "SECRET_KEY_PREVIOUS=auth-unit-old-key-fedcba9876543210",
	               "SCRYPT_N=10",
	               "POSTGRES_HOST=127.0.0.1",
	               "POSTGRES_PORT=1",
	               "DB_TIMEOUT_MS=500",
	               NULL};
	struct config_problems p = {0};
	size_t n;
	const struct db_statement *s;

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	db_init(&w.db, &w.cfg);
	s = auth_statements(&n);
	ck_assert_int_eq(db_add_statements(&w.db, s, n), 0);
	ck_assert_int_eq(auth_init(&w.cfg), 0);
	/* No shared table unless a test opens one: the classes are off. */
	auth_limit = w.cfg.rate_auth.limit;
	w.cfg.rate_auth.limit = 0;
	w.cfg.rate_read.limit = 0;
}

static void teardown(void)
{
	char err[RL_ERR_LEN];

	if (w.rl) {
		rl_close(w.rl);
		w.rl = NULL;
		seg_unlink(shm_name, err, sizeof err);
	}
	db_close(&w.db);
	config_free(&w.cfg);
}

static uint64_t db_attempts(void)
{
	return db_attempts_of(&w);
}

/* Run one request through the pipeline; extra is one more parameter (or
 * NULL).  The body's length is declared when there is a body. */
static void run(const char *method, const char *uri, const char *type, const char *extra,
                const char *body, struct request *req, struct response *res)
{
	char m[32], u[256], t[128], length[48], e[512];
	char *p[8];
	size_t n = 0;
	const char *cursor = body ? body : "";

	snprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
	snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
	if (extra) { /* first: it wins over the defaults below */
		snprintf(e, sizeof e, "%s", extra);
		p[n++] = e;
	}
	p[n++] = m;
	p[n++] = u;
	p[n++] = "REMOTE_ADDR=192.0.2.10";
	if (type) {
		snprintf(t, sizeof t, "CONTENT_TYPE=%s", type);
		p[n++] = t;
	}
	if (body) {
		snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(body));
		p[n++] = length;
	}
	p[n] = NULL;
	ck_assert_int_eq(http_request_init(req, p), 0);
	http_response_init(res);
	worker_handle(&w, req, res, read_string, &cursor);
}

static void post_json(const char *uri, const char *extra, const char *body, struct request *req,
                      struct response *res)
{
	run("POST", uri, "application/json", extra, body, req, res);
}

/* A 422 or 400 on `field`, decided without the database. */
static void expect_refusal(const char *uri, const char *extra, const char *body, int status,
                           const char *field)
{
	struct request req;
	struct response res;

	post_json(uri, extra, body, &req, &res);
	ck_assert_msg(res.status == status, "%s: %d, not %d", body, res.status, status);
	ck_assert_str_eq(member(&res, "error"),
	                 status == 422 ? "validation_failed" : "bad_request");
	ck_assert_msg(strcmp(member(&res, "field"), field) == 0, "%s: field %s, not %s", body,
	              member(&res, "field"), field);
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);
}

/* A 503 after exactly one connection attempt. */
static void expect_unavailable(const struct response *res, uint64_t attempts_before)
{
	ck_assert_int_eq(res->status, 503);
	ck_assert_str_eq(member(res, "error"), "database_unavailable");
	ck_assert_ptr_nonnull(strstr(res->extra_headers, "Retry-After: 1\r\n"));
	ck_assert_uint_eq(db_attempts(), attempts_before + 1);
}

/* The bytes of the string field `name` of req's body: all zero? */
static bool field_wiped(const struct request *req, const char *name)
{
	struct json_object *v;
	const char *s;
	int n;

	ck_assert_ptr_nonnull(req->json);
	ck_assert(json_object_object_get_ex(req->json, name, &v));
	s = json_object_get_string(v);
	n = json_object_get_string_len(v);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++)
		if (s[i] != '\0')
			return false;
	return true;
}

static char *sign(const struct secret *key, int64_t user_id, int64_t exp)
{
	struct token_claims c;
	char *tok = NULL;

	memset(&c, 0, sizeof c);
	c.user_id = user_id;
	c.iat = (int64_t)time(NULL) - 10;
	c.exp = exp;
	memcpy(c.jti, JTI, sizeof JTI);
	ck_assert_int_eq(token_sign(key, &c, &tok), 0);
	return tok;
}

/* base64url without padding, by libcrypto (not token.c). */
static char *b64u(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc((n + 2) / 3 * 4 + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);

	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *c = out; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return out;
}

/* A token with any header and payload, signed with the configured key. */
static char *forge(const char *header, const char *payload)
{
	char *h = b64u(header), *p = b64u(payload), *input, *tok = NULL;

	ck_assert_int_ge(asprintf(&input, "%s.%s", h, p), 0);
	ck_assert_int_eq(token_sign_jws((const unsigned char *)w.cfg.secret_key.bytes,
	                                w.cfg.secret_key.len, input, strlen(input), &tok),
	                 0);
	free(h);
	free(p);
	free(input);
	return tok;
}

/* auth_authenticate on a request with this Authorization value (NULL:
 * none); returns its result, the answer in *res. */
static int authenticate(const char *authorization, struct request *req, struct response *res)
{
	char *h = NULL;
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL, NULL};
	int r;

	if (authorization) {
		ck_assert_int_ge(asprintf(&h, "HTTP_AUTHORIZATION=%s", authorization), 0);
		p[2] = h;
	}
	ck_assert_int_eq(http_request_init(req, p), 0);
	http_response_init(res);
	r = auth_authenticate(&w.cfg, req, res);
	free(h);
	return r;
}

/* Refused with 401, the reason noted as one token_rejected event. */
static void expect_token_rejected(const char *authorization, const char *reason, const char *detail)
{
	struct request req;
	struct response res;

	ck_assert_int_eq(authenticate(authorization, &req, &res), -1);
	ck_assert_int_eq(res.status, 401);
	ck_assert_str_eq(member(&res, "error"), "unauthorized");
	ck_assert_str_eq(member(&res, "detail"), detail);
	ck_assert_ptr_nonnull(strstr(res.extra_headers, "WWW-Authenticate: Bearer\r\n"));
	ck_assert_uint_eq(req.nevents, 1);
	ck_assert_int_eq(req.events[0].event, AUDIT_TOKEN_REJECTED);
	ck_assert_msg(strcmp(req.events[0].reason, reason) == 0, "%s: reason %s, not %s",
	              authorization ? authorization : "(none)", req.events[0].reason, reason);
	ck_assert_int_eq(req.user_id, 0);
	ck_assert_str_eq(req.session_id, "");
	done(&req, &res);
}

START_TEST(valid_token_names_the_caller)
{
	char *tok = sign(&w.cfg.secret_key, USER_ID, (int64_t)time(NULL) + 600);
	char *old = sign(&w.cfg.secret_key_previous, USER_ID + 1, (int64_t)time(NULL) + 600);
	char header[512];
	struct request req;
	struct response res;

	snprintf(header, sizeof header, "Bearer %s", tok);
	ck_assert_int_eq(authenticate(header, &req, &res), 0);
	ck_assert_int_eq(req.user_id, USER_ID);
	ck_assert_str_eq(req.session_id, JTI);
	ck_assert_uint_eq(req.nevents, 0);
	ck_assert_ptr_null(res.json); /* no answer written */
	done(&req, &res);

	/* The scheme is case-insensitive (RFC 7235). */
	snprintf(header, sizeof header, "bEARER %s", tok);
	ck_assert_int_eq(authenticate(header, &req, &res), 0);
	ck_assert_int_eq(req.user_id, USER_ID);
	done(&req, &res);

	/* Key rotation: the previous key still verifies. */
	snprintf(header, sizeof header, "Bearer %s", old);
	ck_assert_int_eq(authenticate(header, &req, &res), 0);
	ck_assert_int_eq(req.user_id, USER_ID + 1);
	done(&req, &res);
	free(tok);
	free(old);
}
END_TEST

START_TEST(each_token_failure_has_its_reason)
{
	static const char other_bytes[] = "someone-elses-key-0123456789abcdef";
	const struct secret other = {(char *)other_bytes, sizeof other_bytes - 1};
	int64_t now = (int64_t)time(NULL);
	char *foreign = sign(&other, USER_ID, now + 600);
	char *expired = sign(&w.cfg.secret_key, USER_ID, now - 1);
	char *hs512 = forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
	                    "{\"sub\":\"7\",\"iat\":1,\"exp\":4000000000,\"jti\":\"a\"}");
	char *no_jti = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	                     "{\"sub\":\"7\",\"iat\":1,\"exp\":4000000000}");
	char header[512];

	expect_token_rejected(NULL, "missing", "a bearer token is required");
	expect_token_rejected("Basic dXNlcjpwYXNz", "missing", "a bearer token is required");
	expect_token_rejected("Bearer", "missing", "a bearer token is required");
	expect_token_rejected("Bearer not.a.token", "malformed", "invalid token");
	expect_token_rejected("Bearer ", "malformed", "invalid token");
	snprintf(header, sizeof header, "Bearer %s", hs512);
	expect_token_rejected(header, "algorithm", "invalid token");
	snprintf(header, sizeof header, "Bearer %s", foreign);
	expect_token_rejected(header, "bad_signature", "invalid token");
	snprintf(header, sizeof header, "Bearer %s", expired);
	expect_token_rejected(header, "expired", "token has expired");
	snprintf(header, sizeof header, "Bearer %s", no_jti);
	expect_token_rejected(header, "bad_claims", "invalid token");
	free(foreign);
	free(expired);
	free(hs512);
	free(no_jti);
}
END_TEST

START_TEST(register_refuses_before_the_database)
{
	static const char *const uri = "/auth/register";

	expect_refusal(uri, NULL, "{\"password\":\"a long passphrase\"}", 422, "email");
	expect_refusal(uri, NULL, "{\"email\":\"no-at-sign\",\"password\":\"a long passphrase\"}",
	               422, "email");
	expect_refusal(uri, NULL, "{\"email\":42,\"password\":\"a long passphrase\"}", 400,
	               "email");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\"}", 422, "password");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\",\"password\":\"7chars!\"}", 422,
	               "password");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\",\"password\":[\"x\"]}", 400,
	               "password");
	expect_refusal(uri, NULL,
	               "{\"email\":\"a@example.io\",\"password\":\"a long "
	               "passphrase\",\"display_name\":\"  \"}",
	               422, "display_name");
	expect_refusal(uri, NULL,
	               "{\"email\":\"a@example.io\",\"password\":\"a long passphrase\","
	               "\"display_name\":\"12345678901234567890123456789012345678901234567890"
	               "123456789012345\"}",
	               422, "display_name");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\",\"password\":\"qwertyuiop\"}", 422,
	               "password");
}
END_TEST

/* The common-password refusal is a password_rejected event; an account
 * that passes every rule reaches the database, once. */
START_TEST(register_common_password_is_noted_valid_one_is_503)
{
	struct request req;
	struct response res;

	post_json("/auth/register", NULL, "{\"email\":\"a@example.io\",\"password\":\"PassWord1\"}",
	          &req, &res);
	ck_assert_int_eq(res.status, 422);
	ck_assert_uint_eq(req.nevents, 1);
	ck_assert_int_eq(req.events[0].event, AUDIT_PASSWORD_REJECTED);
	ck_assert_str_eq(req.events[0].reason, "common");
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);

	post_json("/auth/register", NULL,
	          "{\"email\":\"a@example.io\",\"password\":\"an uncommon passphrase\"}", &req,
	          &res);
	expect_unavailable(&res, 0);
	ck_assert_uint_eq(req.nevents, 0);
	done(&req, &res);
}
END_TEST

/* json-c frees without wiping: the handler clears the password's bytes in
 * the body the request still holds, whether it got to the database or
 * stopped at a later field. */
START_TEST(register_wipes_the_password_in_the_body)
{
	struct request req;
	struct response res;

	post_json("/auth/register", NULL,
	          "{\"email\":\"a@example.io\",\"password\":\"an uncommon passphrase\"}", &req,
	          &res);
	ck_assert_int_eq(res.status, 503);
	ck_assert(field_wiped(&req, "password"));
	done(&req, &res);

	post_json("/auth/register", NULL,
	          "{\"email\":\"a@example.io\",\"password\":\"an uncommon passphrase\","
	          "\"display_name\":\"\"}",
	          &req, &res);
	ck_assert_int_eq(res.status, 422);
	ck_assert(field_wiped(&req, "password"));
	done(&req, &res);
}
END_TEST

START_TEST(login_refuses_before_the_database)
{
	static const char *const uri = "/auth/login";
	struct request req;
	struct response res;

	expect_refusal(uri, NULL, "{\"email\":\"not an email\",\"password\":\"x\"}", 422, "email");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\"}", 422, "password");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\",\"password\":\"\"}", 422,
	               "password");
	expect_refusal(uri, NULL, "{\"email\":\"a@example.io\",\"password\":1}", 400, "password");

	/* A well-formed login asks the database, and wipes the password. */
	post_json(uri, NULL, "{\"email\":\"a@example.io\",\"password\":\"any password\"}", &req,
	          &res);
	expect_unavailable(&res, 0);
	ck_assert(field_wiped(&req, "password"));
	done(&req, &res);
}
END_TEST

/* The OAuth2 password form: username= is the email. */
START_TEST(login_form_fields)
{
	static const struct {
		const char *body;
		int status;
		const char *field;
	} cases[] = {
	    {"password=x", 422, "username"},
	    {"username=&password=x", 422, "username"},
	    {"username=%zz&password=x", 400, "username"},
	    {"username=a%40example.io", 422, "password"},
	    {"username=a%40example.io&password=", 422, "password"},
	    {"username=a%40example.io&password=%2", 400, "password"},
	    {"username=a@x.io&username=b@x.io&password=x", 400, "username"},
	    {"username=nobody&password=x", 422, "email"},
	};
	struct request req;
	struct response res;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run("POST", "/auth/login", "application/x-www-form-urlencoded", NULL, cases[i].body,
		    &req, &res);
		ck_assert_msg(res.status == cases[i].status, "%s: %d", cases[i].body, res.status);
		ck_assert_msg(strcmp(member(&res, "field"), cases[i].field) == 0, "%s: field %s",
		              cases[i].body, member(&res, "field"));
		done(&req, &res);
	}
	ck_assert_uint_eq(db_attempts(), 0);

	run("POST", "/auth/login", "application/x-www-form-urlencoded", NULL,
	    "grant_type=password&username=a%40example.io&password=any+password&scope=", &req, &res);
	expect_unavailable(&res, 0);
	done(&req, &res);
}
END_TEST

/* Five logins for one account from five addresses pass the address class;
 * the sixth, with the email in other letter case, is refused by the
 * per-email class before the database. */
START_TEST(login_is_limited_per_email)
{
	char err[RL_ERR_LEN], addr[64];
	const char *bodies[] = {"{\"email\":\"Victim@Example.io\",\"password\":\"guess\"}",
	                        "{\"email\":\"victim@example.io\",\"password\":\"guess\"}"};
	struct request req;
	struct response res;
	uint64_t attempts;

	snprintf(shm_name, sizeof shm_name, "/chat-test-auth-%d", (int)getpid());
	seg_unlink(shm_name, err, sizeof err);
	ck_assert_int_eq(rl_open(shm_name, 1024, &w.rl, err, sizeof err), 0);
	ck_assert_uint_eq(auth_limit, 5); /* 5/minute: per address and per email */
	w.cfg.rate_auth.limit = auth_limit;
	w.cfg.rate_auth.period_s = 3600; /* no refill during a slow run */
	for (int i = 0; i < 5; i++) {
		snprintf(addr, sizeof addr, "REMOTE_ADDR=198.51.100.%d", i + 1);
		post_json("/auth/login", addr, bodies[i % 2], &req, &res);
		ck_assert_int_eq(res.status, 503);
		done(&req, &res);
	}
	w.db.retry_at_ns = 0; /* a query would be attempted now */
	attempts = db_attempts();
	post_json("/auth/login", "REMOTE_ADDR=198.51.100.77", bodies[1], &req, &res);
	ck_assert_int_eq(res.status, 429);
	ck_assert_str_eq(member(&res, "error"), "rate_limited");
	ck_assert_uint_eq(req.nevents, 1);
	ck_assert_int_eq(req.events[0].event, AUDIT_RATE_LIMITED);
	ck_assert_str_eq(req.events[0].rl_class, "login");
	ck_assert_str_eq(req.events[0].key_kind, "email");
	ck_assert_uint_eq(db_attempts(), attempts);
	done(&req, &res);

	/* Another account from a fresh address is not affected. */
	post_json("/auth/login", "REMOTE_ADDR=198.51.100.78",
	          "{\"email\":\"other@example.io\",\"password\":\"guess\"}", &req, &res);
	expect_unavailable(&res, attempts);
	done(&req, &res);
}
END_TEST

START_TEST(password_change_refuses_before_the_database)
{
	static const char *const uri = "/auth/password";
	char *tok = sign(&w.cfg.secret_key, USER_ID, (int64_t)time(NULL) + 600);
	char bearer[512];
	struct request req;
	struct response res;

	snprintf(bearer, sizeof bearer, "HTTP_AUTHORIZATION=Bearer %s", tok);
	expect_refusal(uri, bearer, "{\"new_password\":\"a new passphrase\"}", 422,
	               "current_password");
	expect_refusal(uri, bearer, "{\"current_password\":\"old one\"}", 422, "new_password");
	expect_refusal(uri, bearer, "{\"current_password\":\"old one\",\"new_password\":\"short\"}",
	               422, "new_password");
	expect_refusal(uri, bearer, "{\"current_password\":true,\"new_password\":\"a new one!\"}",
	               400, "current_password");

	post_json(uri, bearer, "{\"current_password\":\"old one\",\"new_password\":\"password1\"}",
	          &req, &res);
	ck_assert_int_eq(res.status, 422);
	ck_assert_str_eq(member(&res, "field"), "new_password");
	ck_assert_uint_eq(req.nevents, 1);
	ck_assert_int_eq(req.events[0].event, AUDIT_PASSWORD_REJECTED);
	ck_assert(field_wiped(&req, "current_password"));
	ck_assert(field_wiped(&req, "new_password"));
	ck_assert_uint_eq(db_attempts(), 0);
	done(&req, &res);

	post_json(uri, bearer,
	          "{\"current_password\":\"old one\",\"new_password\":\"a new passphrase\"}", &req,
	          &res);
	expect_unavailable(&res, 0);
	ck_assert(field_wiped(&req, "current_password"));
	ck_assert(field_wiped(&req, "new_password"));
	done(&req, &res);
	free(tok);
}
END_TEST

/* Handlers behind the token: me and logout each ask the database once. */
START_TEST(me_and_logout_need_the_database)
{
	char *tok = sign(&w.cfg.secret_key, USER_ID, (int64_t)time(NULL) + 600);
	char bearer[512];
	struct request req;
	struct response res;

	snprintf(bearer, sizeof bearer, "HTTP_AUTHORIZATION=Bearer %s", tok);
	run("GET", "/auth/me", NULL, bearer, NULL, &req, &res);
	expect_unavailable(&res, 0);
	ck_assert_int_eq(req.user_id, USER_ID);
	done(&req, &res);

	w.db.retry_at_ns = 0;
	run("POST", "/auth/logout", NULL, bearer, NULL, &req, &res);
	expect_unavailable(&res, 1);
	done(&req, &res);
	free(tok);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("auth");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_token_names_the_caller);
	tcase_add_test(tc, each_token_failure_has_its_reason);
	tcase_add_test(tc, register_refuses_before_the_database);
	tcase_add_test(tc, register_common_password_is_noted_valid_one_is_503);
	tcase_add_test(tc, register_wipes_the_password_in_the_body);
	tcase_add_test(tc, login_refuses_before_the_database);
	tcase_add_test(tc, login_form_fields);
	tcase_add_test(tc, login_is_limited_per_email);
	tcase_add_test(tc, password_change_refuses_before_the_database);
	tcase_add_test(tc, me_and_logout_need_the_database);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
