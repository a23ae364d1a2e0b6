/*
 * fuzz_request: one whole request, as a worker serves it.
 *
 * The input (format in harness.h) gives the CGI parameters and the body;
 * serve_request() runs the real pipeline: parameters → router → length cap
 * → media type → the body read in the fuzzer's chunks through libfcgi's
 * FCGX_GetStr → strict JSON or form parsing → bearer token → rate limiter
 * → the handler's field rules (email, passwords, display name, title,
 * message body, members, ids, query parameters, Idempotency-Key) → the
 * answer, the log line and the metrics.  The database never answers, so
 * every handler stops at its first query with 503.
 *
 * Besides what the sanitizers catch, the answer itself is checked against
 * the API's rules (the invariants below): a request that makes the worker
 * break one is kept as a crash like any memory error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "harness.h"
#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool request_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 128)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The error codes the API gives each status (SPEC §2). */
static const struct {
	int status;
	const char *code, *other;
} error_codes[] = {
    {400, "bad_request", NULL},
    {401, "unauthorized", "invalid_credentials"},
    {403, "forbidden", NULL},
    {404, "not_found", NULL},
    {405, "method_not_allowed", NULL},
    {409, "email_taken", NULL},
    {413, "payload_too_large", NULL},
    {415, "unsupported_media_type", NULL},
    {422, "validation_failed", NULL},
    {429, "rate_limited", NULL},
    {503, "database_unavailable", NULL},
};

static bool code_matches(int status, const char *code)
{
	for (size_t i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++)
		if (error_codes[i].status == status)
			return strcmp(code, error_codes[i].code) == 0 ||
			       (error_codes[i].other && strcmp(code, error_codes[i].other) == 0);
	return false;
}

struct answer {
	int status;
	char request_id[160];
	char content_type[128];
	long content_length; /* -1: none */
	bool www_authenticate, allow, retry_after;
	const char *body;
	size_t body_len;
};

/* Split the CGI response into its parts, checking each header line. */
static void parse_answer(const char *out, size_t len, struct answer *a)
{
	const char *p = out, *end = out + len;
	int lines = 0;

	memset(a, 0, sizeof *a);
	a->content_length = -1;
	if (len < 13 || memcmp(out, "Status: ", 8) != 0)
		fuzz_fail("answer does not start with a Status line");
	a->status = atoi(out + 8);
	for (;;) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		size_t n;

		if (!eol || eol + 1 >= end || eol[1] != '\n')
			fuzz_fail("header block not terminated by CRLF");
		n = (size_t)(eol - p);
		if (n == 0) {
			p = eol + 2;
			break;
		}
		/* Every header line is "Name: value", printable ASCII only: no
		 * CR, LF or NUL from a request can split or forge a header. */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
				fuzz_fail("header line with byte 0x%02x", (unsigned char)p[i]);
		if (!memchr(p, ':', n))
			fuzz_fail("header line without a colon");
#define IS(h) (n >= strlen(h) && strncmp(p, h, strlen(h)) == 0)
		if (IS("X-Request-ID: "))
			snprintf(a->request_id, sizeof a->request_id, "%.*s", (int)(n - 14),
			         p + 14);
		else if (IS("Content-Type: "))
			snprintf(a->content_type, sizeof a->content_type, "%.*s", (int)(n - 14),
			         p + 14);
		else if (IS("Content-Length: "))
			a->content_length = atol(p + 16);
		else if (IS("WWW-Authenticate: Bearer"))
			a->www_authenticate = true;
		else if (IS("Allow: "))
			a->allow = true;
		else if (IS("Retry-After: "))
			a->retry_after = true;
#undef IS
		if (++lines > 32)
			fuzz_fail("too many header lines");
		p = eol + 2;
	}
	a->body = p;
	a->body_len = (size_t)(end - p);
}

static void check_json_body(const struct answer *a)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *v;

	o = json_tokener_parse_ex(tok, a->body, (int)a->body_len);
	if (!o || json_tokener_get_parse_end(tok) != a->body_len ||
	    !json_object_is_type(o, json_type_object))
		fuzz_fail("status %d: body is not one JSON object", a->status);
	json_tokener_free(tok);
	if (a->status >= 400) {
		if (!json_object_object_get_ex(o, "error", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    !code_matches(a->status, json_object_get_string(v)))
			fuzz_fail("status %d: wrong or missing error code", a->status);
		if (!json_object_object_get_ex(o, "detail", &v) ||
		    !json_object_is_type(v, json_type_string))
			fuzz_fail("status %d: no detail", a->status);
	}
	json_object_put(o);
}

static void check_answer(const struct fuzz_request *r, const char *out, size_t len)
{
	const char *rid = fuzz_param(r->params, "HTTP_X_REQUEST_ID");
	struct answer a;

	parse_answer(out, len, &a);
	switch (a.status) {
	case 200: /* /healthz and /metrics: the only routes without a query */
	case 400:
	case 401:
	case 404:
	case 405:
	case 413:
	case 415:
	case 422:
	case 503:
		break;
	default:
		/* 500 is a bug; 201, 204, 403, 409 need a database, 429 a limit
		 * this harness never reaches. */
		fuzz_fail("unexpected status %d", a.status);
	}
	if (rid && request_id_valid(rid) ? strcmp(a.request_id, rid) != 0
	                                 : strlen(a.request_id) != 32)
		fuzz_fail("X-Request-ID not the client's valid one, nor a generated one");
	if (a.content_length < 0 || (size_t)a.content_length != a.body_len)
		fuzz_fail("Content-Length %ld for a body of %zu bytes", a.content_length,
		          a.body_len);
	if (strcmp(a.content_type, "application/json") == 0)
		check_json_body(&a);
	else if (a.status != 200 || strncmp(a.content_type, "text/plain", 10) != 0)
		fuzz_fail("status %d with Content-Type \"%s\"", a.status, a.content_type);
	if (a.status == 401 && !a.www_authenticate)
		fuzz_fail("401 without WWW-Authenticate: Bearer");
	if (a.status == 405 && !a.allow)
		fuzz_fail("405 without Allow");
	if (a.status == 503 && !a.retry_after)
		fuzz_fail("503 without Retry-After");
	/* Nothing secret goes back to the client, but for what it sent in
	 * X-Request-ID (echoed as sent: its alphabet holds a token's). */
	if (memmem(a.body, a.body_len, FUZZ_SECRET_KEY, strlen(FUZZ_SECRET_KEY)) ||
	    memmem(a.body, a.body_len, fuzz_token(), strlen(fuzz_token())))
		fuzz_fail("the key or a token in the body");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int show_answers = -1;
	struct worker *w = fuzz_worker(NULL);
	struct fuzz_request r;
	struct fuzz_reader in;
	struct fuzz_writer out;

	if (show_answers < 0)
		show_answers = getenv("FUZZ_SHOW_ANSWER") != NULL;
	fuzz_request_parse(data, size, &r);
	fuzz_reader_init(&in, r.body, r.body_len, r.chunks, r.nchunks);
	fuzz_writer_init(&out);
	serve_request(w, r.params, &in.stream, &out.stream);
	if (show_answers) /* FUZZ_SHOW_ANSWER=1: see what an input gets */
		fwrite(out.buf, 1, fuzz_writer_len(&out), stdout), fflush(stdout);
	check_answer(&r, (const char *)out.buf, fuzz_writer_len(&out));
	fuzz_writer_free(&out);
	fuzz_request_free(&r);
	return 0;
}
