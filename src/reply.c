/*
 * reply: shared error answers.  Details are fixed strings: nothing from the
 * database or the request is echoed back.
 */
#include "reply.h"

#include <stdio.h>

#include "audit.h"

/* Long enough for a reconnect with back-off, short enough to be retried. */
#define DB_RETRY_AFTER_S 1

void reply_db_error(struct response *res, enum db_status st)
{
	if (st == DB_UNAVAILABLE) {
		http_error(res, 503, "database_unavailable",
		           "the database is unreachable; retry shortly", NULL);
		http_add_header(res, "Retry-After", "%d", DB_RETRY_AFTER_S);
		return;
	}
	reply_internal(res);
}

void reply_unauthorized(struct response *res, const char *detail)
{
	http_error(res, 401, "unauthorized", detail, NULL);
	http_add_header(res, "WWW-Authenticate", "Bearer");
}

void reply_token_revoked(struct request *req, struct response *res)
{
	audit_note(req, AUDIT_TOKEN_REJECTED, &(struct request_event){.reason = "revoked"});
	reply_unauthorized(res, "token has been revoked");
}

void reply_invalid_credentials(struct response *res)
{
	http_error(res, 401, "invalid_credentials", "email or password is wrong", NULL);
	http_add_header(res, "WWW-Authenticate", "Bearer");
}

void reply_forbidden(struct request *req, struct response *res, const char *reason,
                     const char *detail)
{
	audit_note(req, AUDIT_ACCESS_DENIED, &(struct request_event){.reason = reason});
	http_error(res, 403, "forbidden", detail, NULL);
}

void reply_not_found(struct response *res)
{
	http_error(res, 404, "not_found", "no such resource", NULL);
}

void reply_method_not_allowed(struct response *res, const char *allow)
{
	http_error(res, 405, "method_not_allowed", "method not allowed on this path", NULL);
	http_add_header(res, "Allow", "%s", allow);
}

void reply_email_taken(struct response *res)
{
	http_error(res, 409, "email_taken", "an account with this email exists", "email");
}

void reply_too_large(struct response *res, size_t max_body_bytes)
{
	char detail[64];

	/* The limit itself, so a client can split or shrink what it sends. */
	snprintf(detail, sizeof detail, "request body over %zu bytes", max_body_bytes);
	http_error(res, 413, "payload_too_large", detail, NULL);
	HTTP_JSON_PUT(res->json, "max_bytes", json_object_new_int64((int64_t)max_body_bytes));
}

void reply_unsupported_media_type(struct response *res, const char *detail)
{
	http_error(res, 415, "unsupported_media_type", detail, NULL);
}

void reply_rate_limited(struct response *res, uint32_t retry_after_s)
{
	http_error(res, 429, "rate_limited", "too many requests; retry later", NULL);
	HTTP_JSON_PUT(res->json, "retry_after", json_object_new_int64(retry_after_s));
	http_add_header(res, "Retry-After", "%u", retry_after_s);
}

void reply_internal(struct response *res)
{
	http_error(res, 500, "internal", "internal error", NULL);
}

void reply_validation(struct response *res, const char *field, const char *detail)
{
	http_error(res, 422, "validation_failed", detail, field);
}

void reply_bad_request(struct response *res, const char *detail, const char *field)
{
	http_error(res, 400, "bad_request", detail, field);
}
