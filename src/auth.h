/*
 * auth: accounts, passwords and sessions (SPEC §2 "Auth").
 *
 * Passwords are libscrypt MCF hashes under SCRYPT_N/R/P, re-hashed on the
 * next successful login when the parameters changed.  A login creates a
 * session row whose id is the token's jti; every authenticated handler
 * checks that row inside its own query, so logout and password change revoke
 * tokens at once in every worker.  Unknown emails are verified against a
 * dummy hash with the current parameters, so both failures cost the same.
 */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stddef.h>

#include "http.h"

struct config;
struct worker;
struct db_statement;

/* Make the dummy hash for the current scrypt parameters: once, at start-up,
 * before any login.  0, or -1. */
int auth_init(const struct config *cfg);
const struct db_statement *auth_statements(size_t *count);

/* Verify the bearer token (CPU only): sets req->user_id and req->session_id,
 * or answers 401 and returns -1. */
int auth_authenticate(const struct config *cfg, struct request *req, struct response *res);

/* SQL fragment every authenticated query embeds to check the session: the
 * statement's parameters $1 and $2 are the session id and the user id. */
#define AUTH_SESSION_VALID                                                                         \
	"EXISTS (SELECT 1 FROM sessions s WHERE s.id = $1 AND s.user_id = $2::bigint"              \
	" AND s.revoked_at IS NULL AND s.expires_at > now())"

/* $1 and $2 of AUTH_SESSION_VALID for this request: the session id and the
 * user id as text (written into user_id). */
void auth_session_params(const struct request *req, char user_id[24], const char *params[2]);

/* The canonical timestamp text of SPEC §2, for a timestamptz column. */
#define SQL_TIMESTAMP(col)                                                                         \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void auth_register(struct worker *w, struct request *req, struct response *res);
void auth_login(struct worker *w, struct request *req, struct response *res);
void auth_logout(struct worker *w, struct request *req, struct response *res);
void auth_me(struct worker *w, struct request *req, struct response *res);
void auth_password(struct worker *w, struct request *req, struct response *res);

#endif
