/*
 * worker: one request through the pipeline of SPEC §8, in this order:
 *
 *   route (404/405) → body cap from CONTENT_LENGTH (413, nothing read)
 *   → media type (415) → read body (400 if short) → parse (400)
 *   → bearer token, CPU only (401) → handler (database).
 *
 * Everything before the handler is decided without the database, so bad
 * input costs no query.
 */
#include "worker.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "reply.h"
#include "router.h"

static int read_body(struct worker *w, const struct route *route, struct request *req,
                     struct response *res, http_read_fn read_fn, void *ctx)
{
	bool form = route->body == ROUTE_BODY_JSON_OR_FORM &&
	            http_content_type_is(req, "application/x-www-form-urlencoded");
	const char *detail;

	if (!form && !http_content_type_is(req, "application/json")) {
		http_error(res, 415, "unsupported_media_type",
		           route->body == ROUTE_BODY_JSON_OR_FORM
		               ? "request body must be application/json or a form"
		               : "request body must be application/json",
		           NULL);
		return -1;
	}
	switch (http_read_body(req, w->cfg.max_body_bytes, read_fn, ctx)) {
	case HTTP_BODY_OK:
		break;
	case HTTP_BODY_TOO_LARGE:
		http_error(res, 413, "payload_too_large", "request body is too large", NULL);
		return -1;
	case HTTP_BODY_INCOMPLETE:
		reply_bad_request(res, "request body is shorter than Content-Length", NULL);
		return -1;
	default:
		reply_bad_request(res, "request body could not be read", NULL);
		return -1;
	}
	if (form)
		return 0; /* the handler reads its fields */
	if (http_parse_json_object(req, &detail) != 0) {
		reply_bad_request(res, detail, NULL);
		return -1;
	}
	return 0;
}

void worker_handle(struct worker *w, struct request *req, struct response *res,
                   http_read_fn read_fn, void *ctx)
{
	const struct route *route = NULL;
	char allow[64];

	switch (router_match(req->method, req->path, &route, req->path_ids, allow, sizeof allow)) {
	case ROUTER_NOT_FOUND:
		reply_not_found(res);
		return;
	case ROUTER_METHOD_NOT_ALLOWED:
		http_error(res, 405, "method_not_allowed", "method not allowed on this path", NULL);
		http_add_header(res, "Allow", "%s", allow);
		return;
	case ROUTER_FOUND:
		break;
	}
	req->route_name = route->name;

	/* The cap holds for every route, decided before a byte is read. */
	switch (http_check_length(req, w->cfg.max_body_bytes)) {
	case HTTP_BODY_OK:
		break;
	case HTTP_BODY_TOO_LARGE:
		http_error(res, 413, "payload_too_large", "request body is too large", NULL);
		return;
	default:
		reply_bad_request(res, "invalid Content-Length", NULL);
		return;
	}
	if (route->body != ROUTE_BODY_NONE && read_body(w, route, req, res, read_fn, ctx) != 0)
		return;
	if (route->needs_token && auth_authenticate(w, req, res) != 0)
		return;
	route->handler(w, req, res);
}
