/*
 * Unit tests for src/token.c: the HS256 JWT module.
 *
 * Two published vectors pin the cryptography to the standard rather than to
 * our own round trip (a sign/verify pair that agrees with itself proves
 * nothing about interoperability): RFC 7515 Appendix A.1, whose CRLFs in the
 * JSON mean it can only be reproduced from the encoded bytes, and the
 * well-known jwt.io example.  Both were also checked with `openssl dgst -mac
 * HMAC` when these tests were written.  The rejection tests build hostile
 * tokens with a valid MAC, so each one fails for the reason under test and
 * not merely because the signature is wrong.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

/* RFC 7515 Appendix A.1 (JWS using HMAC SHA-256), verbatim. */
#define RFC_HEADER "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
#define RFC_PAYLOAD                                                                                \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0" \
	"cnVlfQ"
#define RFC_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_JWK_K                                                                                  \
	"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"

/* jwt.io's example token, secret "your-256-bit-secret" (no exp claim). */
#define JWTIO_INPUT                                                                                \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                    \
	"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"                                     \
	"aWF0IjoxNTE2MjM5MDIyfQ"
#define JWTIO_SIG    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
#define JWTIO_SECRET "your-256-bit-secret"

/* base64url of {"alg":"HS256","typ":"JWT"} */
#define OUR_HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define HS256_HDR  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

#define NOW 1700000000

static char current_bytes[] = "current-key:9f1c7e55a0b24d6e8c3b1a2f7d9e0c4b";
static char old_bytes[] = "previous-key:5b8d2e1f0a9c7b3e6d4f2a1c8e0b9d7a";
static const struct secret current = {current_bytes, sizeof(current_bytes) - 1};
static const struct secret old = {old_bytes, sizeof(old_bytes) - 1};

/* Test-side base64url via libcrypto, independent of token.c's statics. */
static char *b64u(const void *data, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);
	ck_assert_ptr_nonnull(out);
	int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	ck_assert_int_ge(len, 0);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	return out;
}

static size_t b64u_decode(const char *in, unsigned char *out, size_t cap)
{
	char tmp[256];
	size_t n = strlen(in);
	size_t pad = (4 - n % 4) % 4;

	ck_assert_uint_lt(n + pad, sizeof(tmp));
	for (size_t i = 0; i < n; i++)
		tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(tmp + n, '=', pad);
	ck_assert_uint_ge(cap, (n + pad) / 4 * 3);
	int r = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)(n + pad));
	ck_assert_int_ge(r, (int)pad);
	return (size_t)r - pad;
}

/* "<b64u(header)>.<b64u(payload)>" with a valid MAC under key. */
static char *forge(const char *header, const char *payload, const struct secret *key)
{
	char *h = b64u(header, strlen(header));
	char *p = b64u(payload, strlen(payload));
	size_t n = strlen(h) + 1 + strlen(p);
	char *input = malloc(n + 1);
	char *tok = NULL;

	ck_assert_ptr_nonnull(input);
	snprintf(input, n + 1, "%s.%s", h, p);
	ck_assert_int_eq(
	    token_sign_jws((const unsigned char *)key->bytes, key->len, input, n, &tok), 0);
	free(h);
	free(p);
	free(input);
	return tok;
}

static char *sign_claims(const struct secret *key, int64_t user_id, int64_t iat, int64_t exp,
                         const char *jti)
{
	struct token_claims c = {.user_id = user_id, .iat = iat, .exp = exp};
	char *tok = NULL;

	snprintf(c.jti, sizeof(c.jti), "%s", jti);
	ck_assert_int_eq(token_sign(key, &c, &tok), 0);
	ck_assert_ptr_nonnull(tok);
	return tok;
}

static enum token_status verify_str(const char *tok)
{
	struct token_claims c;
	return token_verify(tok, strlen(tok), &current, NULL, NOW, &c);
}

/* A payload with a valid MAC under the current key, verified at NOW. */
static enum token_status verify_payload(const char *payload)
{
	char *tok = forge(HS256_HDR, payload, &current);
	struct token_claims c;
	enum token_status st = token_verify(tok, strlen(tok), &current, NULL, NOW, &c);
	if (st != TOKEN_OK) {
		ck_assert_int_eq(c.user_id, 0);
		ck_assert_str_eq(c.jti, "");
	}
	free(tok);
	return st;
}

static enum token_status verify_header(const char *header)
{
	char *tok =
	    forge(header, "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}", &current);
	enum token_status st = verify_str(tok);
	struct json_object *payload = NULL;

	/* Both layers must agree on the header. */
	ck_assert_int_eq(token_verify_jws(tok, strlen(tok), (const unsigned char *)current.bytes,
	                                  current.len, &payload),
	                 st);
	if (st != TOKEN_OK)
		ck_assert_ptr_null(payload);
	json_object_put(payload);
	free(tok);
	return st;
}

START_TEST(rfc7515_a1_verifies)
{
	const char *tok = RFC_HEADER "." RFC_PAYLOAD "." RFC_SIG;
	unsigned char key[66]; /* 64 + room for the padded decode */
	size_t keylen = b64u_decode(RFC_JWK_K, key, sizeof(key));
	struct json_object *payload = NULL;
	struct json_object *v = NULL;

	ck_assert_uint_eq(keylen, 64);
	ck_assert_int_eq(token_verify_jws(tok, strlen(tok), key, keylen, &payload), TOKEN_OK);
	ck_assert_ptr_nonnull(payload);
	ck_assert(json_object_object_get_ex(payload, "iss", &v));
	ck_assert_str_eq(json_object_get_string(v), "joe");
	ck_assert(json_object_object_get_ex(payload, "exp", &v));
	ck_assert_int_eq(json_object_get_int64(v), 1300819380);
	ck_assert(json_object_object_get_ex(payload, "http://example.com/is_root", &v));
	ck_assert(json_object_get_boolean(v));
	json_object_put(payload);

	/* The same token fails under a key one bit off. */
	key[0] ^= 1;
	payload = NULL;
	ck_assert_int_eq(token_verify_jws(tok, strlen(tok), key, keylen, &payload),
	                 TOKEN_BAD_SIGNATURE);
	ck_assert_ptr_null(payload);
	OPENSSL_cleanse(key, sizeof(key));
}
END_TEST

START_TEST(rfc7515_a1_mac)
{
	const char *input = RFC_HEADER "." RFC_PAYLOAD;
	unsigned char key[66]; /* 64 + room for the padded decode */
	size_t keylen = b64u_decode(RFC_JWK_K, key, sizeof(key));
	char *tok = NULL;

	ck_assert_int_eq(token_sign_jws(key, keylen, input, strlen(input), &tok), 0);
	ck_assert_str_eq(tok, RFC_HEADER "." RFC_PAYLOAD "." RFC_SIG);
	free(tok);
	OPENSSL_cleanse(key, sizeof(key));
}
END_TEST

START_TEST(jwtio_vector)
{
	const unsigned char *key = (const unsigned char *)JWTIO_SECRET;
	size_t keylen = strlen(JWTIO_SECRET);
	const char *full = JWTIO_INPUT "." JWTIO_SIG;
	char *tok = NULL;
	struct json_object *payload = NULL;
	struct json_object *v = NULL;
	char secret_bytes[] = JWTIO_SECRET;
	struct secret s = {secret_bytes, sizeof(secret_bytes) - 1};
	struct token_claims c;

	ck_assert_int_eq(token_sign_jws(key, keylen, JWTIO_INPUT, strlen(JWTIO_INPUT), &tok), 0);
	ck_assert_str_eq(tok, full);
	free(tok);

	ck_assert_int_eq(token_verify_jws(full, strlen(full), key, keylen, &payload), TOKEN_OK);
	ck_assert(json_object_object_get_ex(payload, "name", &v));
	ck_assert_str_eq(json_object_get_string(v), "John Doe");
	json_object_put(payload);

	/* Authentic, but it has no exp (nor jti): we never issued it. */
	ck_assert_int_eq(token_verify(full, strlen(full), &s, NULL, NOW, &c), TOKEN_BAD_CLAIMS);
}
END_TEST

START_TEST(roundtrip)
{
	char jti[TOKEN_JTI_HEX_LEN + 1];
	char expect[256];
	unsigned char raw[256];
	struct token_claims c;
	char *tok = NULL;

	ck_assert_int_eq(token_new_jti(jti), 0);
	tok = sign_claims(&current, 42, NOW - 10, NOW + 3600, jti);

	/* The header is byte-exact, and the payload is exactly our four claims. */
	ck_assert_int_eq(strncmp(tok, OUR_HEADER ".", strlen(OUR_HEADER) + 1), 0);
	const char *p = tok + strlen(OUR_HEADER) + 1;
	const char *dot = strchr(p, '.');
	ck_assert_ptr_nonnull(dot);
	char part[256];
	ck_assert_uint_lt((size_t)(dot - p), sizeof(part));
	memcpy(part, p, (size_t)(dot - p));
	part[dot - p] = '\0';
	size_t n = b64u_decode(part, raw, sizeof(raw));
	snprintf(expect, sizeof(expect), "{\"sub\":\"42\",\"iat\":%d,\"exp\":%d,\"jti\":\"%s\"}",
	         NOW - 10, NOW + 3600, jti);
	ck_assert_uint_eq(n, strlen(expect));
	ck_assert_int_eq(memcmp(raw, expect, n), 0);
	ck_assert_uint_eq(strlen(dot + 1), 43);

	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW, &c), TOKEN_OK);
	ck_assert_int_eq(c.user_id, 42);
	ck_assert_int_eq(c.iat, NOW - 10);
	ck_assert_int_eq(c.exp, NOW + 3600);
	ck_assert_str_eq(c.jti, jti);
	/* One second before expiry is still fine. */
	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW + 3599, &c), TOKEN_OK);
	free(tok);

	/* Largest user id and longest jti survive the trip. */
	tok = sign_claims(&current, INT64_MAX, NOW, NOW + 1,
	                  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_");
	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW, &c), TOKEN_OK);
	ck_assert_int_eq(c.user_id, INT64_MAX);
	ck_assert_uint_eq(strlen(c.jti), 64);
	free(tok);
}
END_TEST

START_TEST(sign_refuses_bad_claims)
{
	struct token_claims c = {.user_id = 1, .iat = NOW, .exp = NOW + 1, .jti = "abc"};
	struct secret empty = {NULL, 0};
	char *tok = (char *)&c; /* must be reset to NULL */

	ck_assert_int_eq(token_sign(&empty, &c, &tok), -1);
	ck_assert_ptr_null(tok);
	c.user_id = 0;
	ck_assert_int_eq(token_sign(&current, &c, &tok), -1);
	c.user_id = -5;
	ck_assert_int_eq(token_sign(&current, &c, &tok), -1);
	c.user_id = 1;
	c.jti[0] = '\0';
	ck_assert_int_eq(token_sign(&current, &c, &tok), -1);
	snprintf(c.jti, sizeof(c.jti), "a.b");
	ck_assert_int_eq(token_sign(&current, &c, &tok), -1);
	ck_assert_ptr_null(tok);

	/* The JWS layer refuses an empty key and a signing input we would not
	 * accept back. */
	ck_assert_int_eq(token_sign_jws(NULL, 0, "a.b", 3, &tok), -1);
	ck_assert_int_eq(token_sign_jws((const unsigned char *)"", 0, "a.b", 3, &tok), -1);
	ck_assert_int_eq(token_sign_jws((const unsigned char *)"k", 1, "a.b.c", 5, &tok), -1);
	ck_assert_int_eq(token_sign_jws((const unsigned char *)"k", 1, "ab", 2, &tok), -1);
	ck_assert_int_eq(token_sign_jws((const unsigned char *)"k", 1, "a=.b", 4, &tok), -1);
	ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(new_jti)
{
	char a[TOKEN_JTI_HEX_LEN + 1];
	char b[TOKEN_JTI_HEX_LEN + 1];

	ck_assert_int_eq(token_new_jti(a), 0);
	ck_assert_int_eq(token_new_jti(b), 0);
	ck_assert_uint_eq(strlen(a), 32);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 32);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(alg_rejected)
{
	const char *claims = "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}";
	char *h = b64u("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26);
	char *p = b64u(claims, strlen(claims));
	char tok[512];

	/* alg none, the classic: empty signature part. */
	snprintf(tok, sizeof(tok), "%s.%s.", h, p);
	ck_assert_int_eq(verify_str(tok), TOKEN_BAD_ALG);
	free(h);
	free(p);

	/* alg none with a signature that is a valid HS256 MAC of its input. */
	ck_assert_int_eq(verify_header("{\"alg\":\"none\",\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS512\",\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"hs256\",\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256 \"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\\u0000\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":256}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":null}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":[\"HS256\"]}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}"),
	                 TOKEN_BAD_ALG);
	/* Header that is not a JSON object at all. */
	ck_assert_int_eq(verify_header("[\"HS256\"]"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_header("\"HS256\""), TOKEN_MALFORMED);
	/* Positive controls: a minimal and our own header are accepted. */
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\"}"), TOKEN_OK);
	ck_assert_int_eq(verify_header(HS256_HDR), TOKEN_OK);
}
END_TEST

START_TEST(tampering_rejected)
{
	char *tok = sign_claims(&current, 7, NOW, NOW + 60, "abc");
	size_t len = strlen(tok);
	const char *dot1 = strchr(tok, '.');
	size_t mid = (size_t)(dot1 - tok) + 5; /* inside the payload part */
	char *copy = strdup(tok);
	struct token_claims c;

	ck_assert_ptr_nonnull(copy);
	ck_assert_int_eq(verify_str(tok), TOKEN_OK);

	copy[mid] = copy[mid] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify_str(copy), TOKEN_BAD_SIGNATURE);
	strcpy(copy, tok);

	/* First character of the signature. */
	copy[len - 43] = copy[len - 43] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify_str(copy), TOKEN_BAD_SIGNATURE);
	strcpy(copy, tok);

	/* Signature truncated or extended: no longer 32 bytes. */
	copy[len - 3] = '\0';
	ck_assert_int_eq(verify_str(copy), TOKEN_BAD_SIGNATURE);
	free(copy);

	/* The right MAC with bytes after it: the length is checked, not just a
	 * 32-byte prefix compared. */
	unsigned char mac[72];
	size_t maclen = b64u_decode(tok + len - 43, mac, sizeof(mac));
	ck_assert_uint_eq(maclen, 32);
	/* Only the last MAC byte wrong: every byte takes part in the compare. */
	mac[31] ^= 0x01;
	char *last = b64u(mac, 32);
	char lastbuf[512];
	snprintf(lastbuf, sizeof(lastbuf), "%.*s%s", (int)(len - 43), tok, last);
	ck_assert_int_eq(verify_str(lastbuf), TOKEN_BAD_SIGNATURE);
	free(last);
	mac[31] ^= 0x01;

	for (size_t extra = 1; extra <= 32; extra += 31) {
		memcpy(mac + 32, mac, extra);
		char *sig = b64u(mac, 32 + extra);
		char buf[512];
		snprintf(buf, sizeof(buf), "%.*s%s", (int)(len - 43), tok, sig);
		ck_assert_int_eq(verify_str(buf), TOKEN_BAD_SIGNATURE);
		free(sig);
	}

	/* Wrong key, and no key at all. */
	ck_assert_int_eq(token_verify(tok, len, &old, NULL, NOW, &c), TOKEN_BAD_SIGNATURE);
	struct secret empty = {NULL, 0};
	ck_assert_int_eq(token_verify(tok, len, &empty, NULL, NOW, &c), TOKEN_BAD_SIGNATURE);
	ck_assert_int_eq(token_verify(tok, len, NULL, NULL, NOW, &c), TOKEN_BAD_SIGNATURE);
	ck_assert_int_eq(c.user_id, 0);

	/* Length given explicitly: a prefix is not the token (42 signature
	 * chars cannot be a canonical encoding of anything). */
	ck_assert_int_eq(token_verify(tok, len - 1, &current, NULL, NOW, &c), TOKEN_MALFORMED);
	free(tok);
}
END_TEST

START_TEST(empty_key_never_verifies)
{
	/* HMAC under an empty key is computable by anyone; a token MAC'd that
	 * way must not pass even if the caller passes an empty key. */
	const char *input = JWTIO_INPUT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char tok[512];
	struct json_object *payload = NULL;

	ck_assert_ptr_nonnull(
	    HMAC(EVP_sha256(), "", 0, (const unsigned char *)input, strlen(input), mac, &maclen));
	ck_assert_uint_eq(maclen, 32);
	char *sig = b64u(mac, maclen);
	snprintf(tok, sizeof(tok), "%s.%s", input, sig);
	free(sig);
	ck_assert_int_eq(token_verify_jws(tok, strlen(tok), (const unsigned char *)"", 0, &payload),
	                 TOKEN_BAD_SIGNATURE);
	ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(noncanonical_signature_rejected)
{
	/* RFC_SIG ends in 'k' (100100b); its low 4 bits are unused, so 'l'
	 * (100101b) decodes to the same 32 bytes.  Accepting it would give one
	 * token two spellings. */
	const char *good = RFC_HEADER "." RFC_PAYLOAD "." RFC_SIG;
	char *bad = strdup(good);
	unsigned char key[66]; /* 64 + room for the padded decode */
	size_t keylen = b64u_decode(RFC_JWK_K, key, sizeof(key));
	struct json_object *payload = NULL;

	ck_assert_ptr_nonnull(bad);
	bad[strlen(bad) - 1] = 'l';
	ck_assert_int_eq(token_verify_jws(good, strlen(good), key, keylen, &payload), TOKEN_OK);
	json_object_put(payload);
	ck_assert_int_eq(token_verify_jws(bad, strlen(bad), key, keylen, &payload),
	                 TOKEN_MALFORMED);
	ck_assert_ptr_null(payload);
	free(bad);
}
END_TEST

START_TEST(expiry)
{
	char *tok = sign_claims(&current, 1, NOW - 100, NOW, "x");
	struct token_claims c;

	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW, &c), TOKEN_EXPIRED);
	ck_assert_int_eq(c.user_id, 0);
	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW + 1, &c),
	                 TOKEN_EXPIRED);
	ck_assert_int_eq(token_verify(tok, strlen(tok), &current, NULL, NOW - 1, &c), TOKEN_OK);
	free(tok);
}
END_TEST

START_TEST(claims_rejected)
{
	/* Positive control for the helper. */
	ck_assert_int_eq(
	    verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}"), TOKEN_OK);

	/* exp */
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"iat\":1,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(
	    verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":\"1800000000\",\"jti\":\"a\"}"),
	    TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(
	    verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000.0,\"jti\":\"a\"}"),
	    TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":1.8e9,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":null,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":true,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	/* iat */
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"exp\":1800000000,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(
	    verify_payload("{\"sub\":\"1\",\"iat\":\"1\",\"exp\":1800000000,\"jti\":\"a\"}"),
	    TOKEN_BAD_CLAIMS);

	/* sub */
	static const char *const bad_subs[] = {"\"0\"",
	                                       "\"-1\"",
	                                       "\"01\"",
	                                       "\"+1\"",
	                                       "\"\"",
	                                       "\" 1\"",
	                                       "\"1 \"",
	                                       "\"1a\"",
	                                       "\"0x10\"",
	                                       "\"1.0\"",
	                                       "\"1e3\"",
	                                       "1",
	                                       "1.5",
	                                       "null",
	                                       "true",
	                                       "[\"1\"]",
	                                       "{}",
	                                       "\"9223372036854775808\"",
	                                       "\"99999999999999999999\"",
	                                       "\"1\\u0000\"",
	                                       "\"\\u0031\\u0032x\""};
	char buf[256];
	for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++) {
		snprintf(buf, sizeof(buf),
		         "{\"sub\":%s,\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}", bad_subs[i]);
		ck_assert_msg(verify_payload(buf) == TOKEN_BAD_CLAIMS, "sub %s accepted",
		              bad_subs[i]);
	}
	ck_assert_int_eq(verify_payload("{\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}"),
	                 TOKEN_BAD_CLAIMS);
	ck_assert_int_eq(
	    verify_payload(
	        "{\"sub\":\"9223372036854775807\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}"),
	    TOKEN_OK);

	/* jti */
	static const char *const bad_jtis[] = {
	    "\"\"",
	    "\"a.b\"",
	    "\"a b\"",
	    "\"a=\"",
	    "\"a/b\"",
	    "\"\\u00e9\"",
	    "\"a\\u0000\"",
	    "1",
	    "null",
	    "[\"a\"]",
	    "\"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_x\""};
	for (size_t i = 0; i < sizeof(bad_jtis) / sizeof(bad_jtis[0]); i++) {
		snprintf(buf, sizeof(buf),
		         "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":%s}", bad_jtis[i]);
		ck_assert_msg(verify_payload(buf) == TOKEN_BAD_CLAIMS, "jti %s accepted",
		              bad_jtis[i]);
	}
	ck_assert_int_eq(verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000}"),
	                 TOKEN_BAD_CLAIMS);
}
END_TEST

START_TEST(bad_json_rejected)
{
	/* Authentic (valid MAC) but not strict JSON, or not an object: the
	 * parser, not the MAC, must say no. */
	static const char *const bad[] = {
	    "",
	    "[1]",
	    "\"x\"",
	    "null",
	    "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}x",
	    "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"}{}",
	    "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\",}",
	    "{'sub':'1','iat':1,'exp':1800000000,'jti':'a'}",
	    "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"",
	    "{\"sub\":\"1\",\"iat\":01,\"exp\":1800000000,\"jti\":\"a\"}",
	    "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\",\"x\":\"\xff\"}",
	    "{\"a\":[[[[[[[[[[1]]]]]]]]]]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(verify_payload(bad[i]) == TOKEN_MALFORMED, "payload %zu accepted", i);

	/* Same for the header, which is parsed before the MAC is checked. */
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\"}x"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\",}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_header("{\"alg\":\"HS256\",\"x\":\"\xc3\x28\"}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_header(""), TOKEN_MALFORMED);

	/* Whitespace around the value is part of RFC 8259's JSON-text (the RFC
	 * 7515 vector has CRLFs inside), so it is not "trailing". */
	ck_assert_int_eq(verify_header(" {\"alg\":\"HS256\"}\r\n"), TOKEN_OK);
	ck_assert_int_eq(
	    verify_payload("{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\"} "),
	    TOKEN_OK);
}
END_TEST

START_TEST(shape_rejected)
{
	char *tok = sign_claims(&current, 1, NOW, NOW + 60, "abc");
	size_t len = strlen(tok);
	char buf[1024];
	struct token_claims c;
	struct json_object *payload = NULL;

	ck_assert_int_eq(verify_str("garbage"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str("not a token at all"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str(""), TOKEN_MALFORMED);
	ck_assert_int_eq(token_verify(NULL, 0, &current, NULL, NOW, &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str(".."), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str("a.b"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str(OUR_HEADER ".eyJzdWIiOiIxIn0"), TOKEN_MALFORMED);

	/* 2 parts: the signature dropped. */
	snprintf(buf, sizeof(buf), "%.*s", (int)(len - 44), tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	/* 4 parts. */
	snprintf(buf, sizeof(buf), "%s.%s", tok, "AAAA");
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	snprintf(buf, sizeof(buf), "%s.", tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	/* Padding, anywhere, even where it would be "correct" base64. */
	snprintf(buf, sizeof(buf), "%s=", tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	snprintf(buf, sizeof(buf), "%.*s=%s", (int)(len - 44), tok, tok + len - 44);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	/* Standard-alphabet, whitespace and a Bearer prefix. */
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[5] = '+';
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	buf[5] = '/';
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	snprintf(buf, sizeof(buf), " %s", tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	snprintf(buf, sizeof(buf), "%s\n", tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	snprintf(buf, sizeof(buf), "Bearer %s", tok);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);
	/* An embedded NUL within the given length. */
	memcpy(buf, tok, len + 1);
	buf[len] = '\0';
	ck_assert_int_eq(token_verify(buf, len + 1, &current, NULL, NOW, &c), TOKEN_MALFORMED);
	/* A part whose length is 1 mod 4 is no base64 at all. */
	snprintf(buf, sizeof(buf), "%s.%s", "eyJhbGciOiJIUzI1NiJ9A", tok + strlen(OUR_HEADER) + 1);
	ck_assert_int_eq(verify_str(buf), TOKEN_MALFORMED);

	ck_assert_int_eq(token_verify_jws("a.b", 3, (const unsigned char *)"k", 1, &payload),
	                 TOKEN_MALFORMED);
	ck_assert_ptr_null(payload);
	free(tok);
}
END_TEST

START_TEST(oversize_rejected)
{
	/* 100 KB of otherwise plausible base64url in three parts. */
	size_t n = 100 * 1024;
	char *big = malloc(n + 1);
	struct token_claims c;
	struct json_object *payload = NULL;

	ck_assert_ptr_nonnull(big);
	memset(big, 'A', n);
	big[1000] = '.';
	big[n - 44] = '.';
	big[n] = '\0';
	ck_assert_int_eq(token_verify(big, n, &current, NULL, NOW, &c), TOKEN_MALFORMED);
	ck_assert_int_eq(token_verify_jws(big, n, (const unsigned char *)"k", 1, &payload),
	                 TOKEN_MALFORMED);
	ck_assert_ptr_null(payload);
	free(big);

	/* The boundary: an authentic token of exactly TOKEN_MAX_LEN bytes is
	 * accepted; one more byte (which would otherwise only make the MAC 33
	 * bytes, BAD_SIGNATURE) is refused before anything is decoded.  3011
	 * payload bytes encode to 4015 chars: 36 + 1 + 4015 + 1 + 43 = 4096. */
	char payload_json[3012];
	const char *head = "{\"sub\":\"1\",\"iat\":1,\"exp\":1800000000,\"jti\":\"a\",\"x\":\"";
	size_t hl = strlen(head);
	memcpy(payload_json, head, hl);
	memset(payload_json + hl, 'y', 3011 - hl - 2);
	memcpy(payload_json + 3011 - 2, "\"}", 3);
	char *tok = forge(HS256_HDR, payload_json, &current);
	size_t len = strlen(tok);
	ck_assert_uint_eq(len, TOKEN_MAX_LEN);
	ck_assert_int_eq(token_verify(tok, len, &current, NULL, NOW, &c), TOKEN_OK);
	char *edge = malloc(len + 2);
	ck_assert_ptr_nonnull(edge);
	memcpy(edge, tok, len);
	memcpy(edge + len, "A", 2);
	ck_assert_int_eq(token_verify(edge, len + 1, &current, NULL, NOW, &c), TOKEN_MALFORMED);
	free(tok);
	free(edge);
}
END_TEST

START_TEST(key_rotation)
{
	char *by_old = sign_claims(&old, 5, NOW, NOW + 60, "rot");
	char *by_cur = sign_claims(&current, 6, NOW, NOW + 60, "cur");
	struct secret empty = {NULL, 0};
	struct token_claims c;

	/* Old-key token: only with previous set. */
	ck_assert_int_eq(token_verify(by_old, strlen(by_old), &current, &old, NOW, &c), TOKEN_OK);
	ck_assert_int_eq(c.user_id, 5);
	ck_assert_str_eq(c.jti, "rot");
	ck_assert_int_eq(token_verify(by_old, strlen(by_old), &current, NULL, NOW, &c),
	                 TOKEN_BAD_SIGNATURE);
	ck_assert_int_eq(token_verify(by_old, strlen(by_old), &current, &empty, NOW, &c),
	                 TOKEN_BAD_SIGNATURE);
	/* Rotation does not extend a lifetime. */
	ck_assert_int_eq(token_verify(by_old, strlen(by_old), &current, &old, NOW + 60, &c),
	                 TOKEN_EXPIRED);

	/* Current-key token: with or without previous. */
	ck_assert_int_eq(token_verify(by_cur, strlen(by_cur), &current, &old, NOW, &c), TOKEN_OK);
	ck_assert_int_eq(c.user_id, 6);
	ck_assert_int_eq(token_verify(by_cur, strlen(by_cur), &current, NULL, NOW, &c), TOKEN_OK);
	ck_assert_int_eq(token_verify(by_cur, strlen(by_cur), &current, &empty, NOW, &c), TOKEN_OK);

	/* A third key is refused either way. */
	char other_bytes[] = "some-other-key-entirely-4d1e9a7c";
	struct secret other = {other_bytes, sizeof(other_bytes) - 1};
	ck_assert_int_eq(token_verify(by_old, strlen(by_old), &other, &current, NOW, &c),
	                 TOKEN_BAD_SIGNATURE);
	free(by_old);
	free(by_cur);
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *vectors = tcase_create("vectors");
	TCase *tc = tcase_create("behaviour");

	tcase_add_test(vectors, rfc7515_a1_verifies);
	tcase_add_test(vectors, rfc7515_a1_mac);
	tcase_add_test(vectors, jwtio_vector);
	suite_add_tcase(s, vectors);

	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, sign_refuses_bad_claims);
	tcase_add_test(tc, new_jti);
	tcase_add_test(tc, alg_rejected);
	tcase_add_test(tc, tampering_rejected);
	tcase_add_test(tc, empty_key_never_verifies);
	tcase_add_test(tc, noncanonical_signature_rejected);
	tcase_add_test(tc, expiry);
	tcase_add_test(tc, claims_rejected);
	tcase_add_test(tc, bad_json_rejected);
	tcase_add_test(tc, shape_rejected);
	tcase_add_test(tc, oversize_rejected);
	tcase_add_test(tc, key_rotation);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(token_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
