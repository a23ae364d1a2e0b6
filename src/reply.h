/*
 * reply: the error answers several handlers share, so each status of the
 * SPEC §2 table is produced in exactly one place with the same body.
 */
#ifndef CHAT_REPLY_H
#define CHAT_REPLY_H

#include "db.h"
#include "http.h"

/* 503 database_unavailable with Retry-After, or 500 internal. */
void reply_db_error(struct response *res, enum db_status st);
/* 401 unauthorized with WWW-Authenticate: Bearer. */
void reply_unauthorized(struct response *res, const char *detail);
void reply_not_found(struct response *res);
/* 413 payload_too_large: the body is over MAX_BODY_BYTES. */
void reply_too_large(struct response *res);
void reply_internal(struct response *res);
void reply_validation(struct response *res, const char *field, const char *detail);
void reply_bad_request(struct response *res, const char *detail, const char *field);

#endif
