/*
 * reply: every error answer of the SPEC §2 table, so each status is
 * produced in exactly one place with the same body and headers.  Handlers,
 * the pipeline and the limiter call these; nothing else calls http_error.
 */
#ifndef CHAT_REPLY_H
#define CHAT_REPLY_H

#include <stdint.h>

#include "db.h"
#include "http.h"

/* 503 database_unavailable with Retry-After, or 500 internal. */
void reply_db_error(struct response *res, enum db_status st);
/* 401 unauthorized with WWW-Authenticate: Bearer. */
void reply_unauthorized(struct response *res, const char *detail);
/* 401 invalid_credentials with WWW-Authenticate: Bearer: a wrong login or a
 * wrong current password, one body for every cause. */
void reply_invalid_credentials(struct response *res);
/* 401 "token has been revoked": the token is authentic but its session is
 * over (logout, password change, expiry in the database); a token_rejected
 * security event. */
void reply_token_revoked(struct request *req, struct response *res);
/* 403 forbidden: a member tries what only the owner ("owner_only") or the
 * sender ("sender_only") may do; an access_denied security event with that
 * reason (a fixed word). */
void reply_forbidden(struct request *req, struct response *res, const char *reason,
                     const char *detail);
void reply_not_found(struct response *res);
/* 405 method_not_allowed with Allow: the path's methods. */
void reply_method_not_allowed(struct response *res, const char *allow);
/* 409 email_taken, field "email". */
void reply_email_taken(struct response *res);
/* 413 payload_too_large: the body is over MAX_BODY_BYTES; the detail and
 * "max_bytes" state the limit. */
void reply_too_large(struct response *res, size_t max_body_bytes);
/* 415 unsupported_media_type. */
void reply_unsupported_media_type(struct response *res, const char *detail);
/* 429 rate_limited with "retry_after" and Retry-After (seconds, >= 1). */
void reply_rate_limited(struct response *res, uint32_t retry_after_s);
void reply_internal(struct response *res);
void reply_validation(struct response *res, const char *field, const char *detail);
void reply_bad_request(struct response *res, const char *detail, const char *field);

#endif
