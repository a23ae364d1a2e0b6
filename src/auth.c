/*
 * auth: register, login, logout, me, password change.  See auth.h.
 */
#include "auth.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libscrypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "common_passwords.h"
#include "db.h"
#include "fields.h"
#include "limit.h"
#include "reply.h"
#include "token.h"
#include "utf8.h"
#include "worker.h"

enum {
	SQL_USER_INSERT,
	SQL_LOGIN_LOOKUP,
	SQL_SESSION_INSERT,
	SQL_ME,
	SQL_LOGOUT,
	SQL_PASSWORD_LOOKUP,
	SQL_PASSWORD_SET,
};

#define USER_COLUMNS "u.id, u.email, u.display_name, " SQL_TIMESTAMP("u.created_at")

static const struct db_statement statements[] = {
    [SQL_USER_INSERT] = {"auth_user_insert",
                         "INSERT INTO users AS u (email, display_name, password_hash)"
                         " VALUES ($1, $2, $3) RETURNING " USER_COLUMNS,
                         false},
    [SQL_LOGIN_LOOKUP] = {"auth_login_lookup",
                          "SELECT id, password_hash FROM users WHERE lower(email) = lower($1)",
                          true},
    /* The session insert also upgrades the hash when $4 is given, with the
     * old hash as a compare-and-set guard: one round trip either way. */
    [SQL_SESSION_INSERT] =
        {"auth_session_insert",
         "WITH upgrade AS (UPDATE users SET password_hash = $4"
         " WHERE $4::text IS NOT NULL AND id = $2::bigint AND password_hash = $5)"
         " INSERT INTO sessions (id, user_id, expires_at)"
         " VALUES ($1, $2::bigint, to_timestamp($3::bigint))",
         false},
    [SQL_ME] = {"auth_me",
                "SELECT " USER_COLUMNS
                " FROM users u WHERE u.id = $2::bigint AND " AUTH_SESSION_VALID,
                true},
    [SQL_LOGOUT] = {"auth_logout",
                    "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2::bigint"
                    " AND revoked_at IS NULL AND expires_at > now()",
                    false},
    [SQL_PASSWORD_LOOKUP] =
        {"auth_password_lookup",
         "SELECT u.password_hash FROM users u WHERE u.id = $2::bigint AND " AUTH_SESSION_VALID,
         true},
    /* New hash guarded by the old one (a concurrent change wins once), and
     * every session of the user revoked in the same statement. */
    [SQL_PASSWORD_SET] =
        {"auth_password_set",
         "WITH changed AS (UPDATE users u SET password_hash = $3"
         " WHERE u.id = $2::bigint AND u.password_hash = $4 AND " AUTH_SESSION_VALID
         " RETURNING u.id),"
         " revoked AS (UPDATE sessions SET revoked_at = now()"
         " WHERE user_id IN (SELECT id FROM changed) AND revoked_at IS NULL RETURNING id)"
         " SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM revoked)",
         false},
};

static const struct text_rule email_rule = {"email", true, true, FIELD_CODEPOINTS, 1, 1024};
static const struct text_rule new_password_rule = {"password", true, false, FIELD_BYTES, 8, 1024};
static const struct text_rule login_password_rule = {"password", true, false, FIELD_BYTES, 1, 1024};
static const struct text_rule display_name_rule = {"display_name",   false, true,
                                                   FIELD_CODEPOINTS, 1,     64};
static const struct text_rule current_password_rule = {"current_password", true, false,
                                                       FIELD_BYTES,        1,    1024};
static const struct text_rule changed_password_rule = {"new_password", true, false,
                                                       FIELD_BYTES,    8,    1024};

const struct db_statement *auth_statements(size_t *count)
{
	*count = sizeof statements / sizeof statements[0];
	return statements;
}

/* The dummy MCF of auth_init(): made once at start-up and only read after,
 * a constant of this process that no other module needs. */
static char dummy_mcf[SCRYPT_MCF_LEN];

int auth_init(const struct config *cfg)
{
	/* A well-formed MCF under the current parameters (16-byte salt, 64-byte
	 * hash, as libscrypt_check insists): checking a password against it
	 * costs one full hash and never matches.  Malformed ones fail in
	 * microseconds, which would reveal unknown emails. */
	unsigned char salt[16], hash[SCRYPT_HASH_LEN];
	char salt64[32], hash64[96];

	memset(salt, 0x5a, sizeof salt);
	memset(hash, 0xa5, sizeof hash);
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
	EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof hash);

	/* A hash allocates 128·r·N bytes (32 MiB by default).  glibc would raise
	 * its mmap threshold after the first free and keep the next block on the
	 * heap, resident for good; a fixed threshold returns it every time. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	if (libscrypt_mcf(1u << cfg->scrypt_log2_n, cfg->scrypt_r, cfg->scrypt_p, salt64, hash64,
	                  dummy_mcf) <= 0)
		return -1;
	return 0;
}

/* libscrypt_check writes into the MCF it is given: work on a copy. */
static int password_matches(const char *mcf, const char *password)
{
	char copy[SCRYPT_MCF_LEN];
	size_t n = strlen(mcf);
	int r;

	if (n >= sizeof copy)
		return 0;
	memcpy(copy, mcf, n + 1);
	r = libscrypt_check(copy, password);
	OPENSSL_cleanse(copy, sizeof copy);
	return r > 0;
}

static int password_hash(const struct config *cfg, const char *password, char out[SCRYPT_MCF_LEN])
{
	return libscrypt_hash(out, password, 1u << cfg->scrypt_log2_n, (uint8_t)cfg->scrypt_r,
	                      (uint8_t)cfg->scrypt_p) > 0
	           ? 0
	           : -1;
}

/* Does the MCF "$s1$NNrrpp$..." carry other parameters than configured? */
static int hash_is_outdated(const struct config *cfg, const char *mcf)
{
	char expect[16];

	snprintf(expect, sizeof expect, "$s1$%02x%02x%02x$", cfg->scrypt_log2_n, cfg->scrypt_r,
	         cfg->scrypt_p);
	return strncmp(mcf, expect, strlen(expect)) != 0;
}

static struct json_object *user_json(PGresult *r)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "id", json_object_new_int64(strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
	HTTP_JSON_PUT(o, "email", json_object_new_string(PQgetvalue(r, 0, 1)));
	HTTP_JSON_PUT(o, "display_name", json_object_new_string(PQgetvalue(r, 0, 2)));
	HTTP_JSON_PUT(o, "created_at", json_object_new_string(PQgetvalue(r, 0, 3)));
	return o;
}

/* json-c frees without wiping: clear a password field's bytes in place once
 * it has been copied out. */
static void wipe_json_field(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (obj && json_object_object_get_ex(obj, name, &v) &&
	    json_object_is_type(v, json_type_string))
		OPENSSL_cleanse((char *)json_object_get_string(v),
		                (size_t)json_object_get_string_len(v));
}

/* A new password on the common list: 422 before any query or hash. */
static int refuse_common(struct request *req, struct response *res, const char *password,
                         size_t len, const char *field)
{
	if (!common_password(password, len))
		return 0;
	audit_note(req, AUDIT_PASSWORD_REJECTED, &(struct request_event){.reason = "common"});
	reply_validation(
	    res, field,
	    "is a commonly used password (on a list attackers try first); choose another");
	return -1;
}

/* The token_rejected reason of a token_verify() failure. */
static const char *token_status_reason(enum token_status st)
{
	switch (st) {
	case TOKEN_BAD_ALG:
		return "algorithm";
	case TOKEN_BAD_SIGNATURE:
		return "bad_signature";
	case TOKEN_EXPIRED:
		return "expired";
	case TOKEN_BAD_CLAIMS:
		return "bad_claims";
	default:
		return "malformed";
	}
}

int auth_authenticate(const struct config *cfg, struct request *req, struct response *res)
{
	const char *h = req->authorization, *tok;
	struct token_claims claims;
	enum token_status st;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		audit_note(req, AUDIT_TOKEN_REJECTED, &(struct request_event){.reason = "missing"});
		reply_unauthorized(res, "a bearer token is required");
		return -1;
	}
	tok = h + 7;
	st = token_verify(tok, strlen(tok), &cfg->secret_key, &cfg->secret_key_previous,
	                  (int64_t)time(NULL), &claims);
	if (st != TOKEN_OK) {
		audit_note(req, AUDIT_TOKEN_REJECTED,
		           &(struct request_event){.reason = token_status_reason(st)});
		reply_unauthorized(res,
		                   st == TOKEN_EXPIRED ? "token has expired" : "invalid token");
		return -1;
	}
	req->user_id = claims.user_id;
	memcpy(req->session_id, claims.jti, sizeof req->session_id);
	return 0;
}

void auth_register(struct worker *w, struct request *req, struct response *res)
{
	char *email = NULL, *password = NULL, *name = NULL, hash[SCRYPT_MCF_LEN];
	size_t email_len, password_len = 0, name_len;
	const char *params[3];
	enum db_status st;
	PGresult *r;

	if (field_text(req->json, &email_rule, &email, &email_len, res) < 0 ||
	    field_email(email, email_len, "email", res) < 0 ||
	    field_text(req->json, &new_password_rule, &password, &password_len, res) < 0 ||
	    field_text(req->json, &display_name_rule, &name, &name_len, res) < 0 ||
	    refuse_common(req, res, password, password_len, "password") < 0)
		goto out;
	if (!name) {
		/* Default: the local part, cut to the 64 characters allowed. */
		name = strndup(email, utf8_prefix(email, strcspn(email, "@"), 64));
	}
	if (!name) {
		reply_internal(res);
		goto out;
	}
	/* A hash costs a quarter of a second of CPU and 32 MiB: not for a row
	 * that cannot be stored.  (This is also where the fuzz targets, whose
	 * database is never there, stop.) */
	st = db_ensure(&w->db);
	if (st != DB_OK) {
		reply_db_error(res, st);
		goto out;
	}
	if (password_hash(&w->cfg, password, hash) != 0) {
		reply_internal(res);
		goto out;
	}
	params[0] = email;
	params[1] = name;
	params[2] = hash;
	r = db_exec(&w->db, &statements[SQL_USER_INSERT], 3, params, &st);
	OPENSSL_cleanse(hash, sizeof hash);
	if (!r) {
		if (st == DB_UNIQUE_VIOLATION)
			reply_email_taken(res);
		else
			reply_db_error(res, st);
		goto out;
	}
	http_set_json(res, 201, user_json(r));
	audit_note(req, AUDIT_USER_REGISTERED,
	           &(struct request_event){.user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10)});
	PQclear(r);
out:
	wipe_json_field(req->json, "password");
	field_free_secret(password, password_len);
	free(email);
	free(name);
}

/* The login body: JSON {email, password} or the OAuth2 password form
 * username=&password= (other form fields are ignored). */
static int login_input(struct request *req, struct response *res, char **email, size_t *email_len,
                       char **password, size_t *password_len)
{
	char *raw;
	size_t raw_len;
	int r;

	if (req->json) {
		if (field_text(req->json, &email_rule, email, email_len, res) < 0 ||
		    field_text(req->json, &login_password_rule, password, password_len, res) < 0)
			return -1;
		return 0;
	}
	r = http_form_get(req->body, req->body_len, "username", &raw, &raw_len);
	if (r < 0) {
		reply_bad_request(res, "malformed form body", "username");
		return -1;
	}
	if (r == 0) {
		reply_validation(res, "username", "is required");
		return -1;
	}
	r = field_check_text(raw, raw_len,
	                     &(struct text_rule){"username", true, true, FIELD_CODEPOINTS, 1, 1024},
	                     email, email_len, res);
	free(raw);
	if (r < 0)
		return -1;
	r = http_form_get(req->body, req->body_len, "password", &raw, &raw_len);
	if (r <= 0) {
		if (r < 0)
			reply_bad_request(res, "malformed form body", "password");
		else
			reply_validation(res, "password", "is required");
		return -1;
	}
	r = field_check_text(raw, raw_len, &login_password_rule, password, password_len, res);
	field_free_secret(raw, raw_len);
	return r < 0 ? -1 : 0;
}

void auth_login(struct worker *w, struct request *req, struct response *res)
{
	char *email = NULL, *password = NULL, *token = NULL, newhash[SCRYPT_MCF_LEN];
	char user_id[24], exp_text[24];
	size_t email_len = 0, password_len = 0;
	const char *params[5];
	struct token_claims claims;
	enum db_status st;
	PGresult *r = NULL, *r2;
	const char *stored;
	bool upgrade = false;

	if (login_input(req, res, &email, &email_len, &password, &password_len) < 0)
		goto out;
	if (field_email(email, email_len, "email", res) < 0)
		goto out;
	/* The per-email class (limit.h), once the email is known and still
	 * before any query. */
	if (limit_apply(w->rl, worker_limit_cluster(w), &w->cfg, LIMIT_CLASS_LOGIN, email, req,
	                res) != 0)
		goto out;
	params[0] = email;
	r = db_exec(&w->db, &statements[SQL_LOGIN_LOOKUP], 1, params, &st);
	if (!r) {
		reply_db_error(res, st);
		goto out;
	}
	/* Unknown email: spend the same hash time on the dummy, same answer. */
	stored = PQntuples(r) == 1 ? PQgetvalue(r, 0, 1) : dummy_mcf;
	if (!password_matches(stored, password) || PQntuples(r) != 1) {
		audit_note(
		    req, AUDIT_LOGIN_FAILED,
		    PQntuples(r) == 1
		        ? &(struct request_event){.reason = "wrong_password",
		                                  .user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10)}
		        : &(struct request_event){.reason = "unknown_email"});
		reply_invalid_credentials(res);
		goto out;
	}
	if (hash_is_outdated(&w->cfg, stored)) {
		if (password_hash(&w->cfg, password, newhash) != 0) {
			reply_internal(res);
			goto out;
		}
		upgrade = true;
	}

	memset(&claims, 0, sizeof claims);
	claims.user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	claims.iat = (int64_t)time(NULL);
	claims.exp = claims.iat + w->cfg.access_token_ttl;
	if (token_new_jti(claims.jti) != 0 ||
	    token_sign(&w->cfg.secret_key, &claims, &token) != 0) {
		reply_internal(res);
		goto out;
	}
	snprintf(user_id, sizeof user_id, "%lld", (long long)claims.user_id);
	snprintf(exp_text, sizeof exp_text, "%lld", (long long)claims.exp);
	params[0] = claims.jti;
	params[1] = user_id;
	params[2] = exp_text;
	params[3] = upgrade ? newhash : NULL;
	params[4] = upgrade ? stored : NULL;
	r2 = db_exec(&w->db, &statements[SQL_SESSION_INSERT], 5, params, &st);
	if (!r2) {
		reply_db_error(res, st);
		goto out;
	}
	PQclear(r2);
	req->user_id = claims.user_id;
	audit_note(req, AUDIT_LOGIN_SUCCEEDED, NULL);
	{
		struct json_object *o = json_object_new_object();
		HTTP_JSON_PUT(o, "access_token", json_object_new_string(token));
		HTTP_JSON_PUT(o, "token_type", json_object_new_string("bearer"));
		HTTP_JSON_PUT(o, "expires_in", json_object_new_int64(w->cfg.access_token_ttl));
		http_set_json(res, 200, o);
	}
out:
	OPENSSL_cleanse(newhash, sizeof newhash);
	if (token)
		field_free_secret(token, strlen(token));
	wipe_json_field(req->json, "password");
	field_free_secret(password, password_len);
	free(email);
	PQclear(r);
}

void auth_session_params(const struct request *req, char user_id[24], const char *params[2])
{
	snprintf(user_id, 24, "%lld", (long long)req->user_id);
	params[0] = req->session_id;
	params[1] = user_id;
}

void auth_logout(struct worker *w, struct request *req, struct response *res)
{
	char user_id[24];
	const char *params[2];
	enum db_status st;
	PGresult *r;

	auth_session_params(req, user_id, params);
	r = db_exec(&w->db, &statements[SQL_LOGOUT], 2, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (strcmp(PQcmdTuples(r), "1") == 0) {
		res->status = 204;
		audit_note(req, AUDIT_SESSIONS_REVOKED,
		           &(struct request_event){.reason = "logout", .count = 1});
	} else
		reply_token_revoked(req, res);
	PQclear(r);
}

void auth_me(struct worker *w, struct request *req, struct response *res)
{
	char user_id[24];
	const char *params[2];
	enum db_status st;
	PGresult *r;

	auth_session_params(req, user_id, params);
	r = db_exec(&w->db, &statements[SQL_ME], 2, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (PQntuples(r) == 1)
		http_set_json(res, 200, user_json(r));
	else
		reply_token_revoked(req, res);
	PQclear(r);
}

void auth_password(struct worker *w, struct request *req, struct response *res)
{
	char *current = NULL, *next = NULL, user_id[24], hash[SCRYPT_MCF_LEN];
	size_t current_len = 0, next_len = 0;
	const char *params[4];
	enum db_status st;
	PGresult *r = NULL, *r2;

	if (field_text(req->json, &current_password_rule, &current, &current_len, res) < 0 ||
	    field_text(req->json, &changed_password_rule, &next, &next_len, res) < 0 ||
	    refuse_common(req, res, next, next_len, "new_password") < 0)
		goto out;
	auth_session_params(req, user_id, params);
	r = db_exec(&w->db, &statements[SQL_PASSWORD_LOOKUP], 2, params, &st);
	if (!r) {
		reply_db_error(res, st);
		goto out;
	}
	if (PQntuples(r) != 1) {
		reply_token_revoked(req, res);
		goto out;
	}
	if (!password_matches(PQgetvalue(r, 0, 0), current)) {
		audit_note(req, AUDIT_LOGIN_FAILED,
		           &(struct request_event){.reason = "wrong_current_password"});
		reply_invalid_credentials(res);
		goto out;
	}
	if (password_hash(&w->cfg, next, hash) != 0) {
		reply_internal(res);
		goto out;
	}
	params[2] = hash;
	params[3] = PQgetvalue(r, 0, 0);
	r2 = db_exec(&w->db, &statements[SQL_PASSWORD_SET], 4, params, &st);
	OPENSSL_cleanse(hash, sizeof hash);
	if (!r2) {
		reply_db_error(res, st);
		goto out;
	}
	if (strcmp(PQgetvalue(r2, 0, 0), "1") == 0) {
		res->status = 204;
		audit_note(req, AUDIT_PASSWORD_CHANGED, NULL);
		audit_note(
		    req, AUDIT_SESSIONS_REVOKED,
		    &(struct request_event){.reason = "password_changed",
		                            .count = strtoll(PQgetvalue(r2, 0, 1), NULL, 10)});
	} else
		reply_token_revoked(req, res);
	PQclear(r2);
out:
	wipe_json_field(req->json, "current_password");
	wipe_json_field(req->json, "new_password");
	field_free_secret(current, current_len);
	field_free_secret(next, next_len);
	PQclear(r);
}
