/*
 * Unit tests for src/http.c: the edge of the worker.
 *
 * Requests are built from envp-style parameter arrays and bodies are fed
 * through a fake read callback, exactly as the worker drives the module, so
 * the cap (nothing read when CONTENT_LENGTH is over it), the read loop and
 * the strict JSON/form parsers are tested on the code path production runs.
 * Every rejection asserts the precise outcome, not merely "failed", and
 * every allocation is released so the suite is clean under ASan and
 * valgrind.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "http.h"

#define CAP 16

/* ---- helpers ----------------------------------------------------------- */

static void init_req(struct request *req, char *const *params)
{
	ck_assert_int_eq(http_request_init(req, params), 0);
}

/* Install a body (any bytes, NULs included) as http_read_body would. */
static void set_body(struct request *req, const char *data, size_t len)
{
	req->body = malloc(len + 1);
	ck_assert_ptr_nonnull(req->body);
	memcpy(req->body, data, len);
	req->body[len] = '\0';
	req->body_len = len;
}

static bool is_generated_id(const char *id)
{
	if (strlen(id) != 32)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Request id resulting from a given HTTP_X_REQUEST_ID parameter (NULL:
 * none), copied into out. */
static void id_for(const char *client_id, char out[HTTP_REQUEST_ID_MAX + 1])
{
	struct request req;
	char *param = NULL;
	char *params[3] = {"REQUEST_URI=/healthz", NULL, NULL};

	if (client_id) {
		size_t n = strlen("HTTP_X_REQUEST_ID=") + strlen(client_id) + 1;
		param = malloc(n);
		ck_assert_ptr_nonnull(param);
		snprintf(param, n, "HTTP_X_REQUEST_ID=%s", client_id);
		params[1] = param;
	}
	init_req(&req, params);
	memcpy(out, req.request_id, sizeof req.request_id);
	http_request_free(&req);
	free(param);
}

/* A fake body source: serves data[0..len) at most `chunk` bytes per call
 * (0: as much as asked), can fail with -1 on call number fail_on (1-based,
 * 0: never), counts its calls and records whether it was ever asked for
 * more than `declared` (the CONTENT_LENGTH) minus what it already gave. */
struct fake_reader {
	const char *data;
	size_t len;
	size_t pos;
	size_t chunk;
	size_t declared;
	int fail_on;
	int calls;
	bool overread;
};

static ssize_t fake_read(void *ctx, char *buf, size_t n)
{
	struct fake_reader *f = ctx;
	size_t k;

	f->calls++;
	if (f->pos + n > f->declared)
		f->overread = true;
	if (f->fail_on && f->calls == f->fail_on)
		return -1;
	k = f->len - f->pos;
	if (k > n)
		k = n;
	if (f->chunk && k > f->chunk)
		k = f->chunk;
	memcpy(buf, f->data + f->pos, k);
	f->pos += k;
	return (ssize_t)k;
}

static enum http_body_status read_with_length(const char *content_length, struct fake_reader *f,
                                              struct request *req)
{
	char param[128];
	char *params[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/login", param, NULL};

	snprintf(param, sizeof param, "CONTENT_LENGTH=%s", content_length);
	init_req(req, params);
	return http_read_body(req, CAP, fake_read, f);
}

/* ---- http_request_init -------------------------------------------------- */

START_TEST(init_uri_without_query)
{
	struct request req;
	char *params[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL};

	init_req(&req, params);
	ck_assert_str_eq(req.method, "GET");
	ck_assert_str_eq(req.path, "/auth/me");
	ck_assert_str_eq(req.query, "");
	ck_assert(!req.has_content_length);
	http_request_free(&req);
}
END_TEST

START_TEST(init_uri_with_query)
{
	struct request req;
	char *params[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/chat/conversations?limit=5&before=9",
	                  NULL};

	init_req(&req, params);
	ck_assert_str_eq(req.path, "/chat/conversations");
	ck_assert_str_eq(req.query, "limit=5&before=9");
	http_request_free(&req);
}
END_TEST

START_TEST(init_uri_empty_query)
{
	struct request req;
	char *params[] = {"REQUEST_URI=/healthz?", NULL};

	init_req(&req, params);
	ck_assert_str_eq(req.path, "/healthz");
	ck_assert_str_eq(req.query, "");
	http_request_free(&req);
}
END_TEST

START_TEST(init_query_string_preferred)
{
	struct request req;
	char *params[] = {"REQUEST_URI=/chat/conversations?limit=5", "QUERY_STRING=limit=7", NULL};

	init_req(&req, params);
	ck_assert_str_eq(req.path, "/chat/conversations");
	ck_assert_str_eq(req.query, "limit=7");
	http_request_free(&req);
}
END_TEST

START_TEST(init_headers_copied)
{
	struct request req;
	char *params[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/logout",
	                  "CONTENT_TYPE=application/json", "HTTP_AUTHORIZATION=Bearer abc",
	                  "HTTP_IDEMPOTENCY_KEY=k1", "REMOTE_ADDR=192.0.2.7",
	                  "HTTP_X_FORWARDED_FOR=198.51.100.1", "CONTENT_LENGTH=12",
	                  /* a name that merely starts like another must not match */
	                  "REQUEST_METHODX=DELETE", NULL};

	init_req(&req, params);
	ck_assert_str_eq(req.method, "POST");
	ck_assert_str_eq(req.content_type, "application/json");
	ck_assert_str_eq(req.authorization, "Bearer abc");
	ck_assert_str_eq(req.idempotency_key, "k1");
	ck_assert_str_eq(req.remote_addr, "192.0.2.7");
	ck_assert_str_eq(req.x_forwarded_for, "198.51.100.1");
	ck_assert(req.has_content_length);
	ck_assert(req.content_length_valid);
	ck_assert_uint_eq(req.content_length, 12);
	http_request_free(&req);
}
END_TEST

START_TEST(request_id_valid_kept)
{
	char id[HTTP_REQUEST_ID_MAX + 1];
	char long_id[HTTP_REQUEST_ID_MAX + 1];
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

	id_for("a", id);
	ck_assert_str_eq(id, "a");
	id_for("-", id);
	ck_assert_str_eq(id, "-");
	id_for("Req.42_x-Y", id);
	ck_assert_str_eq(id, "Req.42_x-Y");

	/* 128 characters, using every allowed character at least once */
	for (size_t i = 0; i < HTTP_REQUEST_ID_MAX; i++)
		long_id[i] = alphabet[i % (sizeof alphabet - 1)];
	long_id[HTTP_REQUEST_ID_MAX] = '\0';
	id_for(long_id, id);
	ck_assert_str_eq(id, long_id);
}
END_TEST

static const char *const bad_ids[] = {"",    "a b",   "a/b",  "caf\xc3\xa9", "a\tb", "a\"b",
                                      "a:b", "a\xff", "\x7f", "a\r\nb",      "a;b=c"};

START_TEST(request_id_invalid_replaced)
{
	char id[HTTP_REQUEST_ID_MAX + 1];
	const char *bad = bad_ids[_i];

	id_for(bad, id);
	ck_assert_msg(is_generated_id(id), "client id \"%s\" gave \"%s\"", bad, id);
}
END_TEST

START_TEST(request_id_129_replaced)
{
	char id[HTTP_REQUEST_ID_MAX + 1];
	char too_long[HTTP_REQUEST_ID_MAX + 2];

	memset(too_long, 'a', HTTP_REQUEST_ID_MAX + 1);
	too_long[HTTP_REQUEST_ID_MAX + 1] = '\0';
	id_for(too_long, id);
	ck_assert_msg(is_generated_id(id), "129-char id gave \"%s\"", id);
}
END_TEST

START_TEST(request_id_generated_when_absent)
{
	char a[HTTP_REQUEST_ID_MAX + 1], b[HTTP_REQUEST_ID_MAX + 1];

	id_for(NULL, a);
	id_for(NULL, b);
	ck_assert(is_generated_id(a));
	ck_assert(is_generated_id(b));
	ck_assert_str_ne(a, b);
}
END_TEST

/* ---- CONTENT_LENGTH and the body ---------------------------------------- */

START_TEST(body_over_cap_never_read)
{
	struct request req;
	struct fake_reader f = {"0123456789abcdefX", 17, 0, 0, 17, 0, 0, false};

	ck_assert_int_eq(read_with_length("17", &f, &req), HTTP_BODY_TOO_LARGE);
	ck_assert_int_eq(f.calls, 0);
	ck_assert_int_eq(http_check_length(&req, CAP), HTTP_BODY_TOO_LARGE);
	http_request_free(&req);
}
END_TEST

START_TEST(body_far_over_cap_never_read)
{
	struct request req;
	struct fake_reader f = {"x", 1, 0, 0, 1, 0, 0, false};

	/* UINT64_MAX is a valid number, just far too large */
	ck_assert_int_eq(read_with_length("18446744073709551615", &f, &req), HTTP_BODY_TOO_LARGE);
	ck_assert_int_eq(f.calls, 0);
	http_request_free(&req);
}
END_TEST

START_TEST(body_exactly_cap)
{
	struct request req;
	struct fake_reader f = {"0123456789abcdef", CAP, 0, 0, CAP, 0, 0, false};

	ck_assert_int_eq(read_with_length("16", &f, &req), HTTP_BODY_OK);
	ck_assert_int_eq(http_check_length(&req, CAP), HTTP_BODY_OK);
	ck_assert_uint_eq(req.body_len, CAP);
	ck_assert_mem_eq(req.body, "0123456789abcdef", CAP);
	ck_assert_int_eq(req.body[CAP], '\0');
	ck_assert(!f.overread);
	http_request_free(&req);
}
END_TEST

START_TEST(body_zero_length)
{
	struct request req;
	struct fake_reader f = {"", 0, 0, 0, 0, 0, 0, false};

	ck_assert_int_eq(read_with_length("0", &f, &req), HTTP_BODY_OK);
	ck_assert_uint_eq(req.body_len, 0);
	ck_assert_ptr_nonnull(req.body);
	ck_assert_str_eq(req.body, "");
	ck_assert_int_eq(f.calls, 0);
	http_request_free(&req);
}
END_TEST

START_TEST(body_without_content_length)
{
	struct request req;
	char *params[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL};
	struct fake_reader f = {"junk", 4, 0, 0, 0, 0, 0, false};

	init_req(&req, params);
	ck_assert_int_eq(http_check_length(&req, CAP), HTTP_BODY_OK);
	ck_assert_int_eq(http_read_body(&req, CAP, fake_read, &f), HTTP_BODY_OK);
	ck_assert_uint_eq(req.body_len, 0);
	ck_assert_int_eq(f.calls, 0);
	http_request_free(&req);
}
END_TEST

static const char *const bad_lengths[] = {
    "abc", "-1",   "1e3", "99999999999999999999999", "18446744073709551616", "+5", " 5",
    "5 ",  "0x10", "1.0"};

START_TEST(body_bad_length)
{
	struct request req;
	struct fake_reader f = {"abcde", 5, 0, 0, 5, 0, 0, false};
	const char *cl = bad_lengths[_i];

	ck_assert_msg(read_with_length(cl, &f, &req) == HTTP_BODY_BAD_LENGTH,
	              "CONTENT_LENGTH=\"%s\" not rejected as a bad length", cl);
	ck_assert_int_eq(http_check_length(&req, CAP), HTTP_BODY_BAD_LENGTH);
	ck_assert_int_eq(f.calls, 0);
	http_request_free(&req);
}
END_TEST

START_TEST(body_incomplete)
{
	struct request req;
	struct fake_reader f = {"abc", 3, 0, 0, 10, 0, 0, false};

	ck_assert_int_eq(read_with_length("10", &f, &req), HTTP_BODY_INCOMPLETE);
	ck_assert_int_eq(f.calls, 2); /* 3 bytes, then end of input */
	ck_assert(!f.overread);
	http_request_free(&req);
}
END_TEST

START_TEST(body_one_byte_at_a_time)
{
	struct request req;
	struct fake_reader f = {"{\"a\":\"xyz\"}", 11, 0, 1, 11, 0, 0, false};

	ck_assert_int_eq(read_with_length("11", &f, &req), HTTP_BODY_OK);
	ck_assert_int_eq(f.calls, 11);
	ck_assert_uint_eq(req.body_len, 11);
	ck_assert_str_eq(req.body, "{\"a\":\"xyz\"}");
	ck_assert(!f.overread);
	http_request_free(&req);
}
END_TEST

START_TEST(body_does_not_read_past_length)
{
	struct request req;
	/* The stream holds more than CONTENT_LENGTH announces. */
	struct fake_reader f = {"abcdefgh", 8, 0, 0, 5, 0, 0, false};

	ck_assert_int_eq(read_with_length("5", &f, &req), HTTP_BODY_OK);
	ck_assert_uint_eq(req.body_len, 5);
	ck_assert_str_eq(req.body, "abcde");
	ck_assert_uint_eq(f.pos, 5);
	ck_assert(!f.overread);
	http_request_free(&req);
}
END_TEST

START_TEST(body_read_error)
{
	struct request req;
	struct fake_reader f = {"abcde", 5, 0, 0, 5, 1, 0, false};

	ck_assert_int_eq(read_with_length("5", &f, &req), HTTP_BODY_READ_ERROR);
	ck_assert_int_eq(f.calls, 1);
	http_request_free(&req);
}
END_TEST

/* Whether the worker may close without lingering (main.c): only when no
 * declared body byte is left unread. */
START_TEST(body_read_whole)
{
	struct request req;
	char *no_length[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL};
	char *with_length[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/login", "CONTENT_LENGTH=5",
	                       NULL};
	struct fake_reader whole = {"abcde", 5, 0, 0, 5, 0, 0, false};
	struct fake_reader short_body = {"abc", 3, 0, 0, 10, 0, 0, false};
	struct fake_reader over_cap = {"0123456789abcdefX", 17, 0, 0, 17, 0, 0, false};

	init_req(&req, no_length);
	ck_assert(http_body_read_whole(&req));
	http_request_free(&req);

	init_req(&req, with_length); /* declared, never read (an early 415) */
	ck_assert(!http_body_read_whole(&req));
	http_request_free(&req);

	ck_assert_int_eq(read_with_length("5", &whole, &req), HTTP_BODY_OK);
	ck_assert(http_body_read_whole(&req));
	http_request_free(&req);

	ck_assert_int_eq(read_with_length("10", &short_body, &req), HTTP_BODY_INCOMPLETE);
	ck_assert(!http_body_read_whole(&req));
	http_request_free(&req);

	ck_assert_int_eq(read_with_length("17", &over_cap, &req), HTTP_BODY_TOO_LARGE);
	ck_assert(!http_body_read_whole(&req));
	http_request_free(&req);

	ck_assert_int_eq(read_with_length("0", &whole, &req), HTTP_BODY_OK);
	ck_assert(http_body_read_whole(&req));
	http_request_free(&req);
}
END_TEST

START_TEST(body_read_error_midway)
{
	struct request req;
	struct fake_reader f = {"abcde", 5, 0, 2, 5, 2, 0, false};

	ck_assert_int_eq(read_with_length("5", &f, &req), HTTP_BODY_READ_ERROR);
	ck_assert_int_eq(f.calls, 2);
	http_request_free(&req);
}
END_TEST

/* ---- Content-Type ------------------------------------------------------- */

static bool ct_is(const char *content_type, const char *type)
{
	struct request req;
	char param[256];
	char *params[] = {"REQUEST_URI=/", content_type ? param : NULL, NULL};
	bool r;

	if (content_type)
		snprintf(param, sizeof param, "CONTENT_TYPE=%s", content_type);
	init_req(&req, params);
	r = http_content_type_is(&req, type);
	http_request_free(&req);
	return r;
}

START_TEST(content_type)
{
	const char *json = "application/json";

	ck_assert(ct_is("application/json", json));
	ck_assert(ct_is("application/json; charset=utf-8", json));
	ck_assert(ct_is("application/json;charset=UTF-8", json));
	ck_assert(ct_is("Application/JSON", json));
	ck_assert(!ct_is("application/jsonx", json));
	ck_assert(!ct_is("application/json-patch+json", json));
	ck_assert(!ct_is("application/jso", json));
	ck_assert(!ct_is("text/plain", json));
	ck_assert(!ct_is("", json));
	ck_assert(!ct_is(NULL, json));
	ck_assert(ct_is("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"));
	ck_assert(!ct_is("application/json", "application/x-www-form-urlencoded"));
}
END_TEST

/* ---- strict JSON object ------------------------------------------------- */

START_TEST(json_valid_object)
{
	struct request req;
	struct json_object *v;
	const char *detail = NULL;
	static const char body[] = "{\"email\":\"a@x.io\",\"n\":3,\"list\":[1,2],\"o\":{}}";
	char *params[] = {"REQUEST_URI=/", NULL};

	init_req(&req, params);
	set_body(&req, body, sizeof body - 1);
	ck_assert_int_eq(http_parse_json_object(&req, &detail), 0);
	ck_assert_ptr_nonnull(req.json);
	ck_assert(json_object_is_type(req.json, json_type_object));
	ck_assert(json_object_object_get_ex(req.json, "email", &v));
	ck_assert_str_eq(json_object_get_string(v), "a@x.io");
	ck_assert(json_object_object_get_ex(req.json, "n", &v));
	ck_assert_int_eq(json_object_get_int(v), 3);
	http_request_free(&req);
}
END_TEST

/* Bodies that must parse: white space around the value, UTF-8 text. */
static const struct {
	const char *label;
	const char *body;
} good_json[] = {
    {"empty object", "{}"},
    {"trailing whitespace", "{} \r\n\t"},
    {"leading whitespace", " \n{}"},
    {"UTF-8 text", "{\"t\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"},
    {"depth 8 objects", "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}"},
    {"depth 8 mixed", "{\"a\":[[[[[[{}]]]]]]}"},
    {"escaped surrogate pair", "{\"t\":\"\\ud83d\\ude00\"}"},
    {"escaped BMP character", "{\"t\":\"\\u00e9\\uFFFD\"}"},
    {"escaped backslash before u", "{\"t\":\"\\\\ud800\"}"},
};

START_TEST(json_accepted)
{
	struct request req;
	const char *detail = NULL;
	char *params[] = {"REQUEST_URI=/", NULL};

	init_req(&req, params);
	set_body(&req, good_json[_i].body, strlen(good_json[_i].body));
	ck_assert_msg(http_parse_json_object(&req, &detail) == 0, "%s rejected: %s",
	              good_json[_i].label, detail ? detail : "(no detail)");
	ck_assert(json_object_is_type(req.json, json_type_object));
	http_request_free(&req);
}
END_TEST

#define BODY(s) s, sizeof(s) - 1

/* Bodies that must be refused with 400 bad_request. */
static const struct {
	const char *label;
	const char *body;
	size_t len;
} bad_json[] = {
    {"not JSON", BODY("hello")},
    {"truncated", BODY("{\"a\":")},
    {"unquoted key", BODY("{a:1}")},
    {"trailing comma", BODY("{\"a\":1,}")},
    {"array", BODY("[]")},
    {"array of object", BODY("[{}]")},
    {"string", BODY("\"s\"")},
    {"number", BODY("1")},
    {"true", BODY("true")},
    {"null", BODY("null")},
    {"empty body", BODY("")},
    {"whitespace only", BODY("  \n")},
    {"trailing garbage", BODY("{} x")},
    {"two values", BODY("{}{}")},
    {"raw NUL inside string", BODY("{\"a\":\"b\0c\"}")},
    {"raw NUL after object", BODY("{}\0")},
    {"invalid UTF-8 0xff", BODY("{\"a\":\"\xff\"}")},
    {"invalid UTF-8 in key", BODY("{\"\xff\":1}")},
    {"truncated UTF-8", BODY("{\"a\":\"\xc3\"}")},
    {"lone continuation byte", BODY("{\"a\":\"\x80\"}")},
    {"overlong C0 AF", BODY("{\"a\":\"\xc0\xaf\"}")},
    {"overlong E0 80 AF", BODY("{\"a\":\"\xe0\x80\xaf\"}")},
    {"surrogate ED A0 80", BODY("{\"a\":\"\xed\xa0\x80\"}")},
    {"past U+10FFFF F4 90 80 80", BODY("{\"a\":\"\xf4\x90\x80\x80\"}")},
    {"overlong in key", BODY("{\"\xc0\xaf\":1}")},
    {"depth 9 objects", BODY("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}")},
    {"depth 9 mixed", BODY("{\"a\":[[[[[[[{}]]]]]]]}")},
    {"depth 9 arrays", BODY("[[[[[[[[[]]]]]]]]]")},
    {"NaN", BODY("{\"a\":NaN}")},
    {"Infinity", BODY("{\"a\":Infinity}")},
    {"-Infinity", BODY("{\"a\":-Infinity}")},
    {"single-quoted key", BODY("{'a':1}")},
    {"single-quoted value", BODY("{\"a\":'b'}")},
    {"raw tab in string", BODY("{\"a\":\"x\ty\"}")},
    {"raw newline in string", BODY("{\"a\":\"x\ny\"}")},
    {"comment", BODY("{/* c */}")},
    {"leading zero", BODY("{\"a\":01}")},
    {"hex number", BODY("{\"a\":0x10}")},
    {"lone high surrogate escape", BODY("{\"a\":\"\\ud800\"}")},
    {"lone low surrogate escape", BODY("{\"a\":\"\\udc00\"}")},
    {"high surrogate, then text", BODY("{\"a\":\"\\ud83dx\"}")},
    {"high surrogate, then a BMP escape", BODY("{\"a\":\"\\ud83d\\u0041\"}")},
    {"high surrogate at the end", BODY("{\"a\":\"\\ud83d\"}")},
};

START_TEST(json_rejected)
{
	struct request req;
	const char *detail = NULL;
	char *params[] = {"REQUEST_URI=/", NULL};

	init_req(&req, params);
	set_body(&req, bad_json[_i].body, bad_json[_i].len);
	ck_assert_msg(http_parse_json_object(&req, &detail) == -1, "%s accepted",
	              bad_json[_i].label);
	ck_assert_msg(detail != NULL && detail[0] != '\0', "%s: no detail", bad_json[_i].label);
	ck_assert_ptr_null(req.json);
	http_request_free(&req);
}
END_TEST

START_TEST(json_nul_escape_parses)
{
	struct request req;
	struct json_object *v;
	const char *detail = NULL;
	static const char body[] = "{\"a\":\"x\\u0000y\"}";
	char *params[] = {"REQUEST_URI=/", NULL};

	init_req(&req, params);
	set_body(&req, body, sizeof body - 1);
	ck_assert_int_eq(http_parse_json_object(&req, &detail), 0);
	ck_assert(json_object_object_get_ex(req.json, "a", &v));
	/* the NUL is kept, so the field layer can see and reject it */
	ck_assert_int_eq(json_object_get_string_len(v), 3);
	ck_assert_mem_eq(json_object_get_string(v), "x\0y", 3);
	http_request_free(&req);
}
END_TEST

/* ---- application/x-www-form-urlencoded ---------------------------------- */

static int form(const char *data, const char *name, char **out, size_t *out_len)
{
	return http_form_get(data, strlen(data), name, out, out_len);
}

START_TEST(form_basic)
{
	char *v;
	size_t n;

	ck_assert_int_eq(form("a=1&b=2", "a", &v, &n), 1);
	ck_assert_str_eq(v, "1");
	ck_assert_uint_eq(n, 1);
	free(v);
	ck_assert_int_eq(form("a=1&b=2", "b", &v, &n), 1);
	ck_assert_str_eq(v, "2");
	free(v);
	ck_assert_int_eq(form("username=al&password=pw&grant_type=password", "password", &v, &n),
	                 1);
	ck_assert_str_eq(v, "pw");
	free(v);
}
END_TEST

START_TEST(form_decoding)
{
	char *v;
	size_t n;

	ck_assert_int_eq(form("a=x+y", "a", &v, &n), 1);
	ck_assert_str_eq(v, "x y");
	free(v);
	ck_assert_int_eq(form("a=%41%62%2B%26%3d%2f", "a", &v, &n), 1);
	ck_assert_str_eq(v, "Ab+&=/");
	ck_assert_uint_eq(n, 6);
	free(v);
	ck_assert_int_eq(form("a=caf%C3%A9", "a", &v, &n), 1);
	ck_assert_str_eq(v, "caf\xc3\xa9");
	ck_assert_uint_eq(n, 5);
	free(v);
	/* names are decoded too */
	ck_assert_int_eq(form("user%5Fname=z", "user_name", &v, &n), 1);
	ck_assert_str_eq(v, "z");
	free(v);
}
END_TEST

START_TEST(form_missing)
{
	char *v = (char *)1;
	size_t n = 99;

	ck_assert_int_eq(form("a=1&b=2", "c", &v, &n), 0);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(form("", "a", &v, &n), 0);
	ck_assert_ptr_null(v);
	/* a name is matched whole, not as a prefix */
	ck_assert_int_eq(form("ab=1", "a", &v, &n), 0);
	ck_assert_ptr_null(v);
	/* len is honoured: only "a=1" is visible */
	ck_assert_int_eq(http_form_get("a=1&b=2", 3, "b", &v, &n), 0);
	ck_assert_ptr_null(v);
}
END_TEST

START_TEST(form_empty_values)
{
	char *v;
	size_t n;

	ck_assert_int_eq(form("a=&b=2", "a", &v, &n), 1);
	ck_assert_str_eq(v, "");
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(form("a&b=2", "a", &v, &n), 1);
	ck_assert_str_eq(v, "");
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(form("b=2&a", "a", &v, &n), 1);
	ck_assert_str_eq(v, "");
	free(v);
}
END_TEST

START_TEST(form_escape_within_len)
{
	char *v = (char *)1;
	size_t n = 99;

	/* "%4" ends the visible data even though "1" follows in memory: an
	 * escape must not borrow bytes past len */
	ck_assert_int_eq(http_form_get("a=%41", 4, "a", &v, &n), -1);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(http_form_get("a=%41&b=2", 3, "a", &v, &n), -1);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(http_form_get("a=%41", 5, "a", &v, &n), 1);
	ck_assert_str_eq(v, "A");
	free(v);
}
END_TEST

/* Found by fuzz_json: a raw NUL (not only %00) is malformed, as the
 * contract says, instead of a value whose C string ends early. */
START_TEST(form_raw_nul_is_malformed)
{
	char *v = (char *)1;
	size_t n = 99;

	ck_assert_int_eq(http_form_get("a=x\0y&b=2", 9, "a", &v, &n), -1);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(http_form_get("password=us\x01\0m", 15, "password", &v, &n), -1);
	ck_assert_ptr_null(v);
	/* in a name, too: the pair cannot be told apart from another */
	ck_assert_int_eq(http_form_get("a\0b=1&c=2", 9, "c", &v, &n), -1);
	/* a NUL past len is not part of the form */
	ck_assert_int_eq(http_form_get("a=xy\0", 4, "a", &v, &n), 1);
	ck_assert_str_eq(v, "xy");
	free(v);
}
END_TEST

static const char *const bad_forms[] = {
    "a=1&a=2", "a=1&b=0&a=1", "a=%G1", "a=%4", "a=%", "a=%00", "a=x%00y", "a=%4g",
};

START_TEST(form_malformed)
{
	char *v = (char *)1;
	size_t n = 99;

	ck_assert_msg(form(bad_forms[_i], "a", &v, &n) == -1, "\"%s\" not malformed",
	              bad_forms[_i]);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* ---- responses ---------------------------------------------------------- */

/* The header block (through the blank line) of a formatted response. */
static char *header_block(const char *out, const char **body)
{
	const char *end = strstr(out, "\r\n\r\n");
	char *h;

	ck_assert_ptr_nonnull(end);
	h = strndup(out, (size_t)(end - out) + 2);
	ck_assert_ptr_nonnull(h);
	*body = end + 4;
	return h;
}

START_TEST(response_error_format)
{
	struct request req;
	struct response res;
	char *params[] = {"REQUEST_URI=/nope", "HTTP_X_REQUEST_ID=req-42.A_b", NULL};
	char *out, *headers;
	const char *body;
	size_t len;
	static const char want_body[] =
	    "{\"error\":\"not_found\",\"detail\":\"no such resource\",\"field\":\"id\"}";
	char want_cl[64];

	init_req(&req, params);
	http_response_init(&res);
	http_error(&res, 404, "not_found", "no such resource", "id");
	http_add_header(&res, "Allow", "%s", "GET");
	http_add_header(&res, "Retry-After", "%d", 3);
	ck_assert_int_eq(http_format_response(&req, &res, &out, &len), 0);
	ck_assert_uint_eq(len, strlen(out));

	ck_assert_msg(strncmp(out, "Status: 404 Not Found\r\n", 23) == 0, "%s", out);
	headers = header_block(out, &body);
	ck_assert_ptr_nonnull(strstr(headers, "\r\nContent-Type: application/json\r\n"));
	snprintf(want_cl, sizeof want_cl, "\r\nContent-Length: %zu\r\n", sizeof want_body - 1);
	ck_assert_ptr_nonnull(strstr(headers, want_cl));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nX-Request-ID: req-42.A_b\r\n"));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nCache-Control: no-store\r\n"));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nAllow: GET\r\n"));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nRetry-After: 3\r\n"));
	ck_assert_str_eq(body, want_body);

	free(headers);
	free(out);
	http_response_free(&res);
	http_request_free(&req);
}
END_TEST

START_TEST(response_generated_id_echoed)
{
	struct request req;
	struct response res;
	char *params[] = {"REQUEST_URI=/", "HTTP_X_REQUEST_ID=bad id", NULL};
	char *out, *headers;
	const char *body;
	char want[HTTP_REQUEST_ID_MAX + 32];
	size_t len;

	init_req(&req, params);
	ck_assert(is_generated_id(req.request_id));
	http_response_init(&res);
	http_set_json(&res, 200, json_object_new_object());
	ck_assert_int_eq(http_format_response(&req, &res, &out, &len), 0);
	headers = header_block(out, &body);
	snprintf(want, sizeof want, "\r\nX-Request-ID: %s\r\n", req.request_id);
	ck_assert_ptr_nonnull(strstr(headers, want));
	ck_assert_ptr_null(strstr(headers, "bad id"));
	ck_assert_str_eq(body, "{}");
	free(headers);
	free(out);
	http_response_free(&res);
	http_request_free(&req);
}
END_TEST

START_TEST(response_exact_json_body)
{
	struct request req;
	struct response res;
	struct json_object *o = json_object_new_object();
	char *params[] = {"REQUEST_URI=/", NULL};
	char *out, *headers;
	const char *body;
	size_t len;

	json_object_object_add(o, "id", json_object_new_int64(9007199254740993LL));
	json_object_object_add(o, "path", json_object_new_string("a/b \"q\" caf\xc3\xa9"));
	json_object_object_add(o, "none", NULL);
	init_req(&req, params);
	http_response_init(&res);
	http_set_json(&res, 201, o);
	ck_assert_int_eq(http_format_response(&req, &res, &out, &len), 0);
	ck_assert_msg(strncmp(out, "Status: 201 Created\r\n", 21) == 0, "%s", out);
	headers = header_block(out, &body);
	ck_assert_str_eq(
	    body, "{\"id\":9007199254740993,\"path\":\"a/b \\\"q\\\" caf\xc3\xa9\",\"none\":null}");
	free(headers);
	free(out);
	http_response_free(&res);
	http_request_free(&req);
}
END_TEST

START_TEST(response_204_no_body)
{
	struct request req;
	struct response res;
	char *params[] = {"REQUEST_URI=/auth/logout", "HTTP_X_REQUEST_ID=r1", NULL};
	char *out;
	size_t len;
	static const char want[] = "Status: 204 No Content\r\n"
	                           "X-Request-ID: r1\r\n"
	                           "X-Content-Type-Options: nosniff\r\n"
	                           "Cache-Control: no-store\r\n"
	                           "\r\n";

	init_req(&req, params);
	http_response_init(&res);
	http_set_json(&res, 204, NULL);
	ck_assert_int_eq(http_format_response(&req, &res, &out, &len), 0);
	ck_assert_ptr_null(strstr(out, "\r\nContent-Type:"));
	ck_assert_ptr_null(strstr(out, "\r\nContent-Length:"));
	ck_assert_str_eq(out, want);
	ck_assert_uint_eq(len, sizeof want - 1);
	free(out);
	http_response_free(&res);
	http_request_free(&req);
}
END_TEST

START_TEST(response_text_body)
{
	struct request req;
	struct response res;
	char *params[] = {"REQUEST_URI=/metrics", NULL};
	char *out, *headers;
	const char *body;
	size_t len;

	init_req(&req, params);
	http_response_init(&res);
	res.status = 200;
	res.text = strdup("up 1\n");
	ck_assert_ptr_nonnull(res.text);
	res.text_len = 5;
	res.content_type = "text/plain; version=0.0.4";
	ck_assert_int_eq(http_format_response(&req, &res, &out, &len), 0);
	headers = header_block(out, &body);
	ck_assert_ptr_nonnull(strstr(headers, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
	ck_assert_ptr_nonnull(strstr(headers, "\r\nContent-Length: 5\r\n"));
	ck_assert_ptr_null(strstr(headers, "application/json"));
	ck_assert_str_eq(body, "up 1\n");
	free(headers);
	free(out);
	http_response_free(&res);
	http_request_free(&req);
}
END_TEST

START_TEST(error_envelope)
{
	struct response res;
	struct json_object *v;

	http_response_init(&res);
	http_error(&res, 422, "validation_failed", "is required", "email");
	ck_assert_int_eq(res.status, 422);
	ck_assert_int_eq(json_object_object_length(res.json), 3);
	ck_assert(json_object_object_get_ex(res.json, "error", &v));
	ck_assert_str_eq(json_object_get_string(v), "validation_failed");
	ck_assert(json_object_object_get_ex(res.json, "detail", &v));
	ck_assert_str_eq(json_object_get_string(v), "is required");
	ck_assert(json_object_object_get_ex(res.json, "field", &v));
	ck_assert_str_eq(json_object_get_string(v), "email");

	/* a second answer replaces the first (no leak, no mixing) */
	http_error(&res, 400, "bad_request", "request body is not valid JSON", NULL);
	ck_assert_int_eq(res.status, 400);
	ck_assert_int_eq(json_object_object_length(res.json), 2);
	ck_assert(json_object_object_get_ex(res.json, "error", &v));
	ck_assert_str_eq(json_object_get_string(v), "bad_request");
	ck_assert(!json_object_object_get_ex(res.json, "field", NULL));
	http_response_free(&res);
}
END_TEST

START_TEST(header_overflow_not_half_written)
{
	struct response res;
	char big[2048];

	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	http_response_init(&res);
	http_add_header(&res, "Allow", "GET");
	ck_assert_str_eq(res.extra_headers, "Allow: GET\r\n");
	http_add_header(&res, "X-Big", "%s", big);
	ck_assert_uint_eq(res.extra_len, strlen("Allow: GET\r\n"));
	ck_assert_str_eq(res.extra_headers, "Allow: GET\r\n");
	http_response_free(&res);
}
END_TEST

START_TEST(status_texts)
{
	ck_assert_str_eq(http_status_text(200), "OK");
	ck_assert_str_eq(http_status_text(201), "Created");
	ck_assert_str_eq(http_status_text(204), "No Content");
	ck_assert_str_eq(http_status_text(400), "Bad Request");
	ck_assert_str_eq(http_status_text(401), "Unauthorized");
	ck_assert_str_eq(http_status_text(403), "Forbidden");
	ck_assert_str_eq(http_status_text(404), "Not Found");
	ck_assert_str_eq(http_status_text(405), "Method Not Allowed");
	ck_assert_str_eq(http_status_text(409), "Conflict");
	ck_assert_str_eq(http_status_text(413), "Payload Too Large");
	ck_assert_str_eq(http_status_text(415), "Unsupported Media Type");
	ck_assert_str_eq(http_status_text(422), "Unprocessable Entity");
	ck_assert_str_eq(http_status_text(429), "Too Many Requests");
	ck_assert_str_eq(http_status_text(500), "Internal Server Error");
	ck_assert_str_eq(http_status_text(503), "Service Unavailable");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *init = tcase_create("request_init");
	TCase *body = tcase_create("body");
	TCase *json = tcase_create("json");
	TCase *frm = tcase_create("form");
	TCase *resp = tcase_create("response");

	tcase_add_test(init, init_uri_without_query);
	tcase_add_test(init, init_uri_with_query);
	tcase_add_test(init, init_uri_empty_query);
	tcase_add_test(init, init_query_string_preferred);
	tcase_add_test(init, init_headers_copied);
	tcase_add_test(init, request_id_valid_kept);
	tcase_add_loop_test(init, request_id_invalid_replaced, 0, N(bad_ids));
	tcase_add_test(init, request_id_129_replaced);
	tcase_add_test(init, request_id_generated_when_absent);
	suite_add_tcase(s, init);

	tcase_add_test(body, body_over_cap_never_read);
	tcase_add_test(body, body_far_over_cap_never_read);
	tcase_add_test(body, body_exactly_cap);
	tcase_add_test(body, body_zero_length);
	tcase_add_test(body, body_without_content_length);
	tcase_add_loop_test(body, body_bad_length, 0, N(bad_lengths));
	tcase_add_test(body, body_incomplete);
	tcase_add_test(body, body_one_byte_at_a_time);
	tcase_add_test(body, body_does_not_read_past_length);
	tcase_add_test(body, body_read_error);
	tcase_add_test(body, body_read_error_midway);
	tcase_add_test(body, body_read_whole);
	tcase_add_test(body, content_type);
	suite_add_tcase(s, body);

	tcase_add_test(json, json_valid_object);
	tcase_add_loop_test(json, json_accepted, 0, N(good_json));
	tcase_add_loop_test(json, json_rejected, 0, N(bad_json));
	tcase_add_test(json, json_nul_escape_parses);
	suite_add_tcase(s, json);

	tcase_add_test(frm, form_basic);
	tcase_add_test(frm, form_decoding);
	tcase_add_test(frm, form_missing);
	tcase_add_test(frm, form_empty_values);
	tcase_add_test(frm, form_escape_within_len);
	tcase_add_test(frm, form_raw_nul_is_malformed);
	tcase_add_loop_test(frm, form_malformed, 0, N(bad_forms));
	suite_add_tcase(s, frm);

	tcase_add_test(resp, response_error_format);
	tcase_add_test(resp, response_generated_id_echoed);
	tcase_add_test(resp, response_exact_json_body);
	tcase_add_test(resp, response_204_no_body);
	tcase_add_test(resp, response_text_body);
	tcase_add_test(resp, error_envelope);
	tcase_add_test(resp, header_overflow_not_half_written);
	tcase_add_test(resp, status_texts);
	suite_add_tcase(s, resp);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
