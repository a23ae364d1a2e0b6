/*
 * token: the bearer tokens of SPEC §2 "Auth" — HS256 JSON Web Tokens
 * (RFC 7519) in JWS compact serialization (RFC 7515), keyed by SECRET_KEY
 * with SECRET_KEY_PREVIOUS accepted for key rotation.
 *
 * What we issue: header exactly {"alg":"HS256","typ":"JWT"}, payload
 * {"sub":"<user id>","iat":<s>,"exp":<s>,"jti":"<session id>"}.  What we
 * accept is exactly that shape and nothing looser, because a token is
 * untrusted input that reaches us before any other check:
 *   - at most TOKEN_MAX_LEN bytes (longer is refused before any decoding);
 *   - three base64url parts, unpadded, canonical, nothing outside the
 *     alphabet (so one token has one spelling: no malleable signatures);
 *   - header alg exactly "HS256" and no "crit" (no alg confusion, no "none",
 *     no extensions we do not implement); other header fields are ignored,
 *     in particular nothing ever fetches or selects a key from the token;
 *   - the 32-byte MAC compared in constant time, before the payload is
 *     even parsed;
 *   - header and payload parsed by jsonin, the same strict parser as
 *     request bodies (strict UTF-8, no raw control characters, depth 8,
 *     one object and only white space after it);
 *   - every claim we issue is required: sub a positive decimal int64 as a
 *     string, iat and exp JSON integers, jti 1..TOKEN_JTI_MAX characters of
 *     [A-Za-z0-9_-]; a token is expired from the second now == exp.
 * Revocation is not decided here: the caller looks the jti up in the
 * database.
 *
 * No global state; every function is safe to call from any worker.  Buffers
 * that held a computed MAC are wiped before they are released.  Key bytes
 * stay owned by the caller (struct secret, see config.h).
 */
#ifndef CHAT_TOKEN_H
#define CHAT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h" /* struct secret */

struct json_object;

/* Longest token accepted or produced, in bytes.  Ours are about 200. */
#define TOKEN_MAX_LEN 4096

/* Longest jti accepted; token_new_jti() makes TOKEN_JTI_HEX_LEN. */
#define TOKEN_JTI_MAX     64
#define TOKEN_JTI_HEX_LEN 32

struct token_claims {
	int64_t user_id; /* "sub", > 0 */
	char jti[TOKEN_JTI_MAX + 1];
	int64_t iat;
	int64_t exp;
};

enum token_status {
	TOKEN_OK,
	TOKEN_MALFORMED,     /* too long, wrong shape, bad base64url or JSON */
	TOKEN_BAD_ALG,       /* header alg is not exactly "HS256", or has "crit" */
	TOKEN_BAD_SIGNATURE, /* MAC not 32 bytes, or matches no key given */
	TOKEN_EXPIRED,       /* authentic and well-formed, but now >= exp */
	TOKEN_BAD_CLAIMS,    /* authentic, but a claim is missing or malformed */
};

/*
 * Make a token for claims (user_id > 0, jti valid as above; iat and exp are
 * copied as given).  On success returns 0 and *out is a NUL-terminated
 * malloc'd string the caller frees; on failure returns -1 and *out is NULL.
 */
int token_sign(const struct secret *key, const struct token_claims *claims, char **out);

/*
 * Check token (len bytes, need not be NUL-terminated) against key, and
 * against previous when key does not match (previous may be NULL or empty).
 * Fills *out and returns TOKEN_OK only when every rule above holds at time
 * now (Unix seconds); otherwise *out is zeroed.
 */
enum token_status token_verify(const char *token, size_t len, const struct secret *key,
                               const struct secret *previous, int64_t now,
                               struct token_claims *out);

/*
 * The JWS layer under token_verify(), without claim checks: header, alg and
 * MAC as above, then the payload as a JSON object in *payload (the caller
 * json_object_put()s it; NULL unless TOKEN_OK).
 */
enum token_status token_verify_jws(const char *token, size_t len, const unsigned char *key,
                                   size_t keylen, struct json_object **payload);

/*
 * The JWS layer under token_sign(): signing_input is "<header>.<payload>",
 * already base64url-encoded; *out becomes the malloc'd compact JWS
 * "<signing_input>.<MAC>".  Returns 0, or -1 with *out NULL.
 */
int token_sign_jws(const unsigned char *key, size_t keylen, const char *signing_input, size_t len,
                   char **out);

/* A fresh session id: TOKEN_JTI_HEX_LEN lowercase hex digits of 16 bytes from
 * RAND_bytes, NUL-terminated.  Returns 0, or -1 when the CSPRNG fails. */
int token_new_jti(char out[TOKEN_JTI_HEX_LEN + 1]);

#endif
