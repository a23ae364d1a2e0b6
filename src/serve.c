/*
 * serve: one request, parameters to log line.  See serve.h.
 */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "util.h"
#include "worker.h"

/* The body read callback (http_read_fn) over a libfcgi input stream. */
static ssize_t read_stream(void *ctx, char *buf, size_t n)
{
	int want = n > 65536 ? 65536 : (int)n;
	int got = FCGX_GetStr(buf, want, (FCGX_Stream *)ctx);

	if (got < 0)
		return -1;
	return got;
}

/* struct db counts per worker; the shared counters take the deltas. */
static void report_db_counters(struct worker *w)
{
	uint64_t now[3] = {w->db.connects, w->db.connect_failures, w->db.errors};

	metrics_add_db(w->metrics, now[0] - w->db_reported[0], now[1] - w->db_reported[1],
	               now[2] - w->db_reported[2]);
	memcpy(w->db_reported, now, sizeof now);
}

bool serve_request(struct worker *w, char **envp, FCGX_Stream *in, FCGX_Stream *out)
{
	struct request req;
	struct response res;
	uint64_t started = util_now_ns(), elapsed;
	char *text = NULL;
	size_t text_len = 0;
	bool body_read = false;

	http_response_init(&res);
	if (http_request_init(&req, envp) != 0) {
		reply_internal(&res);
	} else {
		worker_handle(w, &req, &res, read_stream, in);
		body_read = http_body_read_whole(&req);
	}
	if (http_format_response(&req, &res, &text, &text_len) == 0) {
		FCGX_PutStr(text, (int)text_len, out);
		free(text);
	}
	elapsed = util_now_ns() - started;
	log_request(&req, res.status, elapsed);
	audit_emit(&req, res.status, &w->cfg.trusted_proxies, w->metrics);
	metrics_record(w->metrics, req.route_index, res.status, elapsed);
	report_db_counters(w);
	http_response_free(&res);
	http_request_free(&req);
	return body_read;
}
