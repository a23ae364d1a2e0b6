/*
 * Unit tests for src/serve.c: one request through libfcgi's stream API
 * (FCGX_GetStr, FCGX_PutStr) over in-memory streams, as a worker serves it
 * on a socket.  The answer written is a whole CGI response; the return
 * value says whether the body was read to its end; every request ends in
 * exactly one log line and, with a segment attached, in the metrics
 * (requests, database connection deltas, security events).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "segment.h"
#include "serve.h"
#include "worker.h"

#include "stderr_capture.h"

static struct worker w;
static char shm_name[64];

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV",
	               "SECRET_KEY=serve-unit-key",
	               "POSTGRES_HOST=127.0.0.1",
	               "POSTGRES_PORT=1",
	               "DB_TIMEOUT_MS=500",
	               "MAX_BODY_BYTES=4096",
	               NULL};
	struct config_problems p = {0};

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	db_init(&w.db, &w.cfg);
	log_set_threshold(LOG_LEVEL_INFO);
	w.cfg.rate_auth.limit = 0; /* no table unless a test attaches one */
	w.cfg.rate_read.limit = 0;
	capture();
}

static void teardown(void)
{
	char err[RL_ERR_LEN];

	release();
	if (w.rl) {
		rl_close(w.rl);
		seg_unlink(shm_name, err, sizeof err);
	}
	db_close(&w.db);
	config_free(&w.cfg);
}

/* An input stream over a body that libfcgi refills in 5-byte pieces, so a
 * body arrives over several fills as it does from a socket. */
struct input {
	FCGX_Stream s;
	unsigned char *next, *end;
	int fills;
};

static void input_fill(FCGX_Stream *s)
{
	struct input *in = s->data;
	size_t n = (size_t)(in->end - in->next);

	in->fills++;
	if (n == 0) {
		s->isClosed = 1; /* end of the body */
		return;
	}
	if (n > 5)
		n = 5;
	s->rdNext = s->stopUnget = in->next;
	s->stop = in->next + n;
	in->next += n;
}

static void input_empty(FCGX_Stream *s, int do_close)
{
	(void)do_close;
	s->isClosed = 1;
}

static void input_init(struct input *in, const char *body)
{
	memset(in, 0, sizeof *in);
	in->next = (unsigned char *)body;
	in->end = in->next + strlen(body);
	in->s.isReader = 1;
	in->s.rdNext = in->s.stop = in->s.stopUnget = in->next; /* empty until filled */
	in->s.fillBuffProc = input_fill;
	in->s.emptyBuffProc = input_empty;
	in->s.data = in;
}

/* Bytes of the body libfcgi has not handed out yet. */
static size_t input_left(const struct input *in)
{
	return (size_t)(in->end - in->next) + (size_t)(in->s.stop - in->s.rdNext);
}

/* An output stream into a fixed buffer, refused (closed) when full. */
struct output {
	FCGX_Stream s;
	unsigned char buf[65536];
};

static void output_empty(FCGX_Stream *s, int do_close)
{
	(void)do_close;
	s->isClosed = 1;
}

static void output_fill(FCGX_Stream *s)
{
	s->isClosed = 1;
}

static void output_init(struct output *out)
{
	memset(out, 0, sizeof *out);
	out->s.wrNext = out->s.rdNext = out->buf;
	out->s.stop = out->buf + sizeof out->buf - 1; /* room for a NUL */
	out->s.fillBuffProc = output_fill;
	out->s.emptyBuffProc = output_empty;
	out->s.data = out;
}

/* What was written, NUL-terminated. */
static const char *output_text(struct output *out)
{
	*out->s.wrNext = '\0';
	return (const char *)out->buf;
}

/* Serve one request: params NULL-terminated, body may be "". */
static bool serve(char **params, const char *body, struct input *in, struct output *out)
{
	input_init(in, body);
	output_init(out);
	return serve_request(&w, params, &in->s, &out->s);
}

/* The header block of a response, as "\r\nName: value\r\n..." so every
 * line, the first included, can be found as "\r\nName: ". */
static char *headers_of(const char *text)
{
	const char *end = strstr(text, "\r\n\r\n");
	char *h;

	ck_assert_ptr_nonnull(end);
	ck_assert_int_ge(asprintf(&h, "\r\n%.*s\r\n", (int)(end - text), text), 0);
	return h;
}

static const char *body_of(const char *text)
{
	const char *end = strstr(text, "\r\n\r\n");

	ck_assert_ptr_nonnull(end);
	return end + 4;
}

/* The per-request log lines captured (those with "method"), parsed. */
static size_t request_lines(struct json_object **out, size_t max)
{
	char *text = captured(), *line = text, *nl;
	size_t n = 0;

	for (; (nl = strchr(line, '\n')); line = nl + 1) {
		struct json_object *o, *v;

		*nl = '\0';
		o = json_tokener_parse(line);
		ck_assert_msg(o != NULL, "log line is not JSON: %s", line);
		if (json_object_object_get_ex(o, "method", &v) && n < max)
			out[n++] = o;
		else
			json_object_put(o);
	}
	free(text);
	return n;
}

static const char *str(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : "";
}

START_TEST(a_whole_cgi_response_is_written)
{
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz",
	             "HTTP_X_REQUEST_ID=client-id_1.2", NULL};
	struct input in;
	struct output out;
	const char *text;
	char *h;

	ck_assert(serve(p, "", &in, &out));
	text = output_text(&out);
	ck_assert_msg(strncmp(text, "Status: 200 OK\r\n", 16) == 0, "%s", text);
	h = headers_of(text);
	ck_assert_ptr_nonnull(strstr(h, "\r\nContent-Type: application/json\r\n"));
	ck_assert_ptr_nonnull(strstr(h, "\r\nContent-Length: 15\r\n"));
	ck_assert_ptr_nonnull(strstr(h, "\r\nX-Request-ID: client-id_1.2\r\n"));
	ck_assert_ptr_nonnull(strstr(h, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(strstr(h, "\r\nCache-Control: no-store\r\n"));
	ck_assert_str_eq(body_of(text), "{\"status\":\"ok\"}");
	ck_assert_int_eq(in.fills, 0); /* no body: nothing read */
	free(h);
}
END_TEST

/* An invalid client id is replaced, and the log names the id the client
 * was sent. */
START_TEST(request_id_in_answer_and_log_agree)
{
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/nowhere", "HTTP_X_REQUEST_ID=bad id!",
	             NULL};
	struct input in;
	struct output out;
	struct json_object *lines[4];
	const char *text, *id;
	char *h, want[200];

	ck_assert(serve(p, "", &in, &out));
	text = output_text(&out);
	ck_assert(strncmp(text, "Status: 404 Not Found\r\n", 23) == 0);
	h = headers_of(text);
	ck_assert_ptr_null(strstr(h, "bad id"));
	id = strstr(h, "\r\nX-Request-ID: ");
	ck_assert_ptr_nonnull(id);
	id += strlen("\r\nX-Request-ID: ");
	ck_assert_uint_eq(request_lines(lines, 4), 1);
	snprintf(want, sizeof want, "%s\r\n", str(lines[0], "request_id"));
	ck_assert_int_gt(strlen(want), 2);
	ck_assert_msg(strncmp(id, want, strlen(want)) == 0, "log %s, answer %.40s", want, id);
	ck_assert_str_eq(str(lines[0], "status"), "404");
	ck_assert_str_eq(str(lines[0], "path"), "/nowhere");
	json_object_put(lines[0]);
	free(h);
}
END_TEST

/* An oversized declared body is refused unread: serve says so, and the
 * connection must not be reused. */
START_TEST(early_413_reports_the_body_unread)
{
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", "CONTENT_LENGTH=5000", NULL};
	struct input in;
	struct output out;
	const char *text;

	ck_assert(!serve(p, "{\"email\":\"a@x.io\"}", &in, &out));
	text = output_text(&out);
	ck_assert(strncmp(text, "Status: 413 ", 12) == 0);
	ck_assert_ptr_nonnull(strstr(body_of(text), "\"payload_too_large\""));
	ck_assert_int_eq(in.fills, 0);
	ck_assert_uint_eq(input_left(&in), strlen("{\"email\":\"a@x.io\"}"));
}
END_TEST

/* A body read to its declared end, in several fills; a short one is not. */
START_TEST(body_read_whole_or_not)
{
	const char *body = "{\"email\":\"a@example.io\"}";
	char length[32];
	char *p[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/auth/register",
	             "CONTENT_TYPE=application/json", length, NULL};
	struct input in;
	struct output out;
	const char *text;

	snprintf(length, sizeof length, "CONTENT_LENGTH=%zu", strlen(body));
	ck_assert(serve(p, body, &in, &out));
	text = output_text(&out);
	ck_assert(strncmp(text, "Status: 422 ", 12) == 0); /* the handler saw the body */
	ck_assert_ptr_nonnull(strstr(body_of(text), "\"field\":\"password\""));
	ck_assert_int_gt(in.fills, 1);
	ck_assert_uint_eq(input_left(&in), 0);

	/* Declared 100, 24 arrive: 400, and not read whole. */
	snprintf(length, sizeof length, "CONTENT_LENGTH=100");
	ck_assert(!serve(p, body, &in, &out));
	text = output_text(&out);
	ck_assert(strncmp(text, "Status: 400 ", 12) == 0);
}
END_TEST

/* One line per request, with its status, route and level; a 503 is an
 * error line (the connect failure logs a line of its own, not a request
 * line). */
START_TEST(one_log_line_per_request)
{
	char *ok[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz", NULL};
	char *down[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/readyz", NULL};
	struct input in;
	struct output out;
	struct json_object *lines[8];
	const char *text;
	char *h;

	serve(ok, "", &in, &out);
	serve(down, "", &in, &out);
	text = output_text(&out);
	ck_assert(strncmp(text, "Status: 503 ", 12) == 0);
	h = headers_of(text);
	ck_assert_ptr_nonnull(strstr(h, "\r\nRetry-After: 1\r\n"));
	free(h);
	ck_assert_uint_eq(request_lines(lines, 8), 2);
	ck_assert_str_eq(str(lines[0], "route"), "healthz");
	ck_assert_str_eq(str(lines[0], "status"), "200");
	ck_assert_str_eq(str(lines[0], "level"), "info");
	ck_assert_str_eq(str(lines[0], "method"), "GET");
	ck_assert_str_eq(str(lines[1], "route"), "readyz");
	ck_assert_str_eq(str(lines[1], "status"), "503");
	ck_assert_str_eq(str(lines[1], "level"), "error");
	json_object_put(lines[0]);
	json_object_put(lines[1]);
}
END_TEST

/* A request's security events are logged after the answer is known. */
START_TEST(security_events_are_emitted)
{
	char *p[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL};
	struct input in;
	struct output out;
	char *text;

	serve(p, "", &in, &out);
	ck_assert(strncmp(output_text(&out), "Status: 401 ", 12) == 0);
	text = captured();
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"token_rejected\""));
	ck_assert_ptr_nonnull(strstr(text, "\"reason\":\"missing\""));
	free(text);
}
END_TEST

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(metrics_render(w.metrics, w.rl, &text, &len), 0);
	return text;
}

/* With a segment: each request counted under its route and status, the
 * database counters added as deltas (not totals), events counted. */
START_TEST(metrics_are_counted)
{
	char *ok[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz", NULL};
	char *down[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/readyz", NULL};
	char *me[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/auth/me", NULL};
	char err[RL_ERR_LEN], *text;
	struct input in;
	struct output out;

	snprintf(shm_name, sizeof shm_name, "/chat-test-serve-%d", (int)getpid());
	seg_unlink(shm_name, err, sizeof err);
	ck_assert_int_eq(rl_open(shm_name, 1024, &w.rl, err, sizeof err), 0);
	ck_assert_int_eq(metrics_attach(rl_segment(w.rl), &w.metrics, err, sizeof err), 0);

	serve(ok, "", &in, &out);
	serve(ok, "", &in, &out);
	for (int i = 0; i < 3; i++) {
		w.db.retry_at_ns = 0; /* each probe tries */
		serve(down, "", &in, &out);
	}
	serve(me, "", &in, &out);
	text = render();
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"healthz\",status=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"readyz\",status=\"503\"} 3\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"auth_me\",status=\"401\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_db_connect_failures_total 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_db_connects_total 0\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_security_events_total{event=\"token_rejected\"} 1\n"));
	free(text);
}
END_TEST

static Suite *serve_suite(void)
{
	Suite *s = suite_create("serve");
	TCase *tc = tcase_create("serve");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_whole_cgi_response_is_written);
	tcase_add_test(tc, request_id_in_answer_and_log_agree);
	tcase_add_test(tc, early_413_reports_the_body_unread);
	tcase_add_test(tc, body_read_whole_or_not);
	tcase_add_test(tc, one_log_line_per_request);
	tcase_add_test(tc, security_events_are_emitted);
	tcase_add_test(tc, metrics_are_counted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(serve_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
