/*
 * token: HS256 JWT signing and verification; the contract is in token.h.
 *
 * Verification gives attacker-controlled bytes as little processing as
 * possible before the MAC is known good: the length cap, then one scan for
 * shape and alphabet, then the header (it must be read to refuse alg
 * confusion, and it is covered by the MAC anyway), then the MAC, and only
 * then the payload JSON and the claims.
 *
 * Base64 and HMAC come from libcrypto; base64url (RFC 4648 §5, unpadded, as
 * RFC 7515 §2 requires) is only a translation of the alphabet around
 * EVP_EncodeBlock/EVP_DecodeBlock.  All work buffers are on the stack and
 * bounded by TOKEN_MAX_LEN, so verification never allocates except inside
 * json-c.
 */
#include "token.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "jsonin.h"
#include "util.h"

/* HS256 is HMAC-SHA-256 untruncated (RFC 7518 §3.2): 32 bytes, 43 chars. */
#define MAC_LEN     32
#define MAC_B64_LEN 43

/* One part re-padded for EVP_DecodeBlock (up to two '=' added) plus a NUL,
 * and what that decodes to. */
#define B64_BUF (TOKEN_MAX_LEN + 4)
#define RAW_BUF (B64_BUF / 4 * 3)

#define JWT_HEADER_ALG "HS256"
#define JWT_HEADER_TYP "JWT"

/* A token split and half-checked by jws_open(). */
struct jws {
	const char *signing_input; /* "<header>.<payload>", what the MAC covers */
	size_t signing_input_len;
	const char *payload; /* base64url, not yet decoded */
	size_t payload_len;
	unsigned char mac[MAC_LEN]; /* as sent */
};

static bool b64url_char(char c)
{
	/* Explicit ranges rather than isalnum(): the locale must not widen the
	 * alphabet. */
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static bool jti_valid(const char *s, size_t n)
{
	if (n < 1 || n > TOKEN_JTI_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		/* The jti alphabet happens to be the base64url one. */
		if (!b64url_char(s[i]))
			return false;
	}
	return true;
}

/* out gets the unpadded base64url of in[0..n) and a NUL; cap must hold
 * 4 * ceil(n / 3) + 1 bytes because EVP_EncodeBlock writes the padding
 * before we strip it. */
static int b64url_encode(char *out, size_t cap, const unsigned char *in, size_t n, size_t *outlen)
{
	if (n > (size_t)INT_MAX / 4 || cap < (n + 2) / 3 * 4 + 1)
		return -1;
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	if (len < 0)
		return -1;
	size_t m = (size_t)len;
	while (m > 0 && out[m - 1] == '=')
		m--;
	for (size_t i = 0; i < m; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	out[m] = '\0';
	*outlen = m;
	return 0;
}

/*
 * Decode n chars of unpadded base64url into out (cap bytes).  The caller has
 * already checked the alphabet.  Only the canonical spelling is accepted:
 * EVP_DecodeBlock ignores the unused low bits of the last character, so
 * e.g. "...Xjk" and "...Xjl" decode alike; re-encoding and comparing makes
 * each byte string have exactly one accepted text, so a token cannot be
 * altered without breaking it.
 */
static int b64url_decode(unsigned char *out, size_t cap, const char *in, size_t n, size_t *outlen)
{
	unsigned char tmp[B64_BUF];
	size_t pad = (4 - n % 4) % 4;
	size_t len = 0;
	size_t relen = 0;
	int ret = -1;

	/* n % 4 == 1 cannot be produced by any byte string. */
	if (n > TOKEN_MAX_LEN || pad == 3 || cap < (n + pad) / 4 * 3)
		return -1;
	for (size_t i = 0; i < n; i++)
		tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : (unsigned char)in[i];
	for (size_t i = 0; i < pad; i++)
		tmp[n + i] = '=';

	/* EVP_DecodeBlock counts the padding as zero bytes of output. */
	int r = EVP_DecodeBlock(out, tmp, (int)(n + pad));
	if (r < 0 || (size_t)r < pad)
		goto out;
	len = (size_t)r - pad;

	if (b64url_encode((char *)tmp, sizeof(tmp), out, len, &relen) != 0 || relen != n ||
	    memcmp(tmp, in, n) != 0)
		goto out;
	*outlen = len;
	ret = 0;
out:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ret;
}

/* The header or payload as an object, under the rules every untrusted
 * JSON text meets (jsonin.h); NULL if it breaks one. */
static struct json_object *parse_object(const unsigned char *buf, size_t len)
{
	struct json_object *obj = NULL;

	return jsonin_parse_object((const char *)buf, len, &obj) == JSONIN_OK ? obj : NULL;
}

/* The string value of key in obj, or NULL when absent or not a string. */
static const char *get_string(struct json_object *obj, const char *key, size_t *len)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	int n = json_object_get_string_len(v);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return json_object_get_string(v);
}

static enum token_status check_header(struct json_object *hdr)
{
	size_t n = 0;
	const char *alg = get_string(hdr, "alg", &n);

	/* Compared with the length so "HS256\u0000..." does not pass as a C
	 * string; case matters (RFC 7515 §4.1.1). */
	if (alg == NULL || n != strlen(JWT_HEADER_ALG) || memcmp(alg, JWT_HEADER_ALG, n) != 0)
		return TOKEN_BAD_ALG;
	/* RFC 7515 §4.1.11: extensions listed in crit must be understood, and
	 * we understand none (e.g. RFC 7797 "b64":false would change what the
	 * MAC covers). */
	if (json_object_object_get_ex(hdr, "crit", NULL))
		return TOKEN_BAD_ALG;
	return TOKEN_OK;
}

/* Shape, alphabet, header and the sent MAC; the payload is left encoded. */
static enum token_status jws_open(const char *token, size_t len, struct jws *j)
{
	unsigned char raw[RAW_BUF];
	size_t dots[2];
	size_t ndots = 0;
	size_t rawlen = 0;
	struct json_object *hdr = NULL;
	enum token_status st = TOKEN_MALFORMED;

	/* Before anything else: a huge header must cost one comparison. */
	if (token == NULL || len == 0 || len > TOKEN_MAX_LEN)
		return TOKEN_MALFORMED;
	for (size_t i = 0; i < len; i++) {
		if (token[i] == '.') {
			if (ndots == 2)
				return TOKEN_MALFORMED;
			dots[ndots++] = i;
		} else if (!b64url_char(token[i])) {
			/* Also refuses '=' padding, '+', '/', spaces and NULs. */
			return TOKEN_MALFORMED;
		}
	}
	if (ndots != 2)
		return TOKEN_MALFORMED;

	j->signing_input = token;
	j->signing_input_len = dots[1];
	j->payload = token + dots[0] + 1;
	j->payload_len = dots[1] - dots[0] - 1;

	if (b64url_decode(raw, sizeof(raw), token, dots[0], &rawlen) != 0)
		goto out;
	hdr = parse_object(raw, rawlen);
	if (hdr == NULL)
		goto out;
	st = check_header(hdr);
	if (st != TOKEN_OK)
		goto out;

	st = TOKEN_MALFORMED;
	if (b64url_decode(raw, sizeof(raw), token + dots[1] + 1, len - dots[1] - 1, &rawlen) != 0)
		goto out;
	st = TOKEN_BAD_SIGNATURE;
	if (rawlen != MAC_LEN)
		goto out;
	memcpy(j->mac, raw, MAC_LEN);
	st = TOKEN_OK;
out:
	json_object_put(hdr);
	OPENSSL_cleanse(raw, sizeof(raw));
	return st;
}

/* HMAC-SHA-256 of data into mac[MAC_LEN]; an empty key is refused because
 * HMAC with no key is a plain hash anyone can compute. */
static int hs256(const unsigned char *key, size_t keylen, const void *data, size_t len,
                 unsigned char mac[MAC_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ret = -1;

	if (key == NULL || keylen == 0 || keylen > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) == NULL || mdlen != MAC_LEN)
		goto out;
	memcpy(mac, md, MAC_LEN);
	ret = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	return ret;
}

static bool jws_mac_matches(const struct jws *j, const unsigned char *key, size_t keylen)
{
	unsigned char mac[MAC_LEN];
	bool ok = false;

	if (hs256(key, keylen, j->signing_input, j->signing_input_len, mac) == 0)
		ok = CRYPTO_memcmp(mac, j->mac, MAC_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

static bool secret_matches(const struct jws *j, const struct secret *s)
{
	return s != NULL && s->bytes != NULL && s->len > 0 &&
	       jws_mac_matches(j, (const unsigned char *)s->bytes, s->len);
}

/* Only called once the MAC matched. */
static enum token_status jws_payload(const struct jws *j, struct json_object **payload)
{
	unsigned char raw[RAW_BUF];
	size_t rawlen = 0;

	*payload = NULL;
	if (b64url_decode(raw, sizeof(raw), j->payload, j->payload_len, &rawlen) == 0)
		*payload = parse_object(raw, rawlen);
	OPENSSL_cleanse(raw, sizeof(raw));
	return *payload != NULL ? TOKEN_OK : TOKEN_MALFORMED;
}

static int get_int(struct json_object *obj, const char *key, int64_t *out)
{
	struct json_object *v = NULL;

	/* json_type_int only: 1e9 and 1000.0 are doubles and refused. */
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return 0;
}

static enum token_status read_claims(struct json_object *p, int64_t now, struct token_claims *c)
{
	const char *s = NULL;
	size_t n = 0;

	/* "sub": one spelling per number (no sign, no leading zero, no
	 * spaces), so one user has one subject string. */
	s = get_string(p, "sub", &n);
	if (s == NULL || util_parse_id(s, n, &c->user_id) != 0)
		return TOKEN_BAD_CLAIMS;
	if (get_int(p, "iat", &c->iat) != 0 || get_int(p, "exp", &c->exp) != 0)
		return TOKEN_BAD_CLAIMS;
	s = get_string(p, "jti", &n);
	if (s == NULL || !jti_valid(s, n))
		return TOKEN_BAD_CLAIMS;
	memcpy(c->jti, s, n);
	c->jti[n] = '\0';
	/* RFC 7519 §4.1.4: not accepted "on or after" exp. */
	if (now >= c->exp)
		return TOKEN_EXPIRED;
	return TOKEN_OK;
}

enum token_status token_verify_jws(const char *token, size_t len, const unsigned char *key,
                                   size_t keylen, struct json_object **payload)
{
	struct jws j;
	enum token_status st;

	*payload = NULL;
	st = jws_open(token, len, &j);
	if (st != TOKEN_OK)
		return st;
	if (jws_mac_matches(&j, key, keylen))
		st = jws_payload(&j, payload);
	else
		st = TOKEN_BAD_SIGNATURE;
	OPENSSL_cleanse(&j, sizeof(j));
	return st;
}

enum token_status token_verify(const char *token, size_t len, const struct secret *key,
                               const struct secret *previous, int64_t now, struct token_claims *out)
{
	struct jws j;
	struct token_claims c;
	struct json_object *payload = NULL;
	enum token_status st;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	st = jws_open(token, len, &j);
	if (st != TOKEN_OK)
		goto out;
	/* The previous key is tried only after the current one fails, so the
	 * common case costs one HMAC. */
	if (!secret_matches(&j, key) && !secret_matches(&j, previous)) {
		st = TOKEN_BAD_SIGNATURE;
		goto out;
	}
	st = jws_payload(&j, &payload);
	if (st != TOKEN_OK)
		goto out;
	st = read_claims(payload, now, &c);
	if (st == TOKEN_OK)
		*out = c;
out:
	json_object_put(payload);
	OPENSSL_cleanse(&j, sizeof(j));
	return st;
}

int token_sign_jws(const unsigned char *key, size_t keylen, const char *signing_input, size_t len,
                   char **out)
{
	unsigned char mac[MAC_LEN];
	char sig[MAC_B64_LEN + 3]; /* EVP_EncodeBlock writes "=" and a NUL */
	size_t siglen = 0;
	size_t ndots = 0;
	char *tok = NULL;
	int ret = -1;

	*out = NULL;
	/* Refuse what token_verify_jws would refuse, so we never hand out a
	 * token we would not take back. */
	if (signing_input == NULL || len == 0 || len > TOKEN_MAX_LEN - 1 - MAC_B64_LEN)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (signing_input[i] == '.')
			ndots++;
		else if (!b64url_char(signing_input[i]))
			return -1;
	}
	if (ndots != 1)
		return -1;

	if (hs256(key, keylen, signing_input, len, mac) != 0)
		goto out;
	if (b64url_encode(sig, sizeof(sig), mac, MAC_LEN, &siglen) != 0 || siglen != MAC_B64_LEN)
		goto out;
	tok = malloc(len + 1 + siglen + 1);
	if (tok == NULL)
		goto out;
	memcpy(tok, signing_input, len);
	tok[len] = '.';
	memcpy(tok + len + 1, sig, siglen + 1);
	*out = tok;
	ret = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(sig, sizeof(sig));
	return ret;
}

/* json_object_object_add() leaves val with us when it fails. */
static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (val == NULL)
		return -1;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

/* Append the base64url of obj's plain JSON text at buf[*pos], within cap. */
static int append_json_b64(char *buf, size_t cap, size_t *pos, struct json_object *obj)
{
	size_t n = 0;
	size_t m = 0;
	const char *text = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (text == NULL || *pos > cap)
		return -1;
	if (b64url_encode(buf + *pos, cap - *pos, (const unsigned char *)text, n, &m) != 0)
		return -1;
	*pos += m;
	return 0;
}

int token_sign(const struct secret *key, const struct token_claims *claims, char **out)
{
	char input[TOKEN_MAX_LEN];
	char sub[24];
	size_t pos = 0;
	size_t jtilen = strnlen(claims->jti, sizeof(claims->jti));
	struct json_object *hdr = NULL;
	struct json_object *pl = NULL;
	int ret = -1;

	*out = NULL;
	if (key == NULL || key->bytes == NULL || key->len == 0 || claims->user_id <= 0 ||
	    !jti_valid(claims->jti, jtilen))
		return -1;
	snprintf(sub, sizeof(sub), "%" PRId64, claims->user_id);

	/* Insertion order is kept by json-c, which makes the header exactly
	 * {"alg":"HS256","typ":"JWT"}. */
	hdr = json_object_new_object();
	pl = json_object_new_object();
	if (hdr == NULL || pl == NULL || add(hdr, "alg", json_object_new_string(JWT_HEADER_ALG)) ||
	    add(hdr, "typ", json_object_new_string(JWT_HEADER_TYP)) ||
	    add(pl, "sub", json_object_new_string(sub)) ||
	    add(pl, "iat", json_object_new_int64(claims->iat)) ||
	    add(pl, "exp", json_object_new_int64(claims->exp)) ||
	    add(pl, "jti", json_object_new_string_len(claims->jti, (int)jtilen)))
		goto out;

	if (append_json_b64(input, sizeof(input), &pos, hdr) != 0 || pos + 1 >= sizeof(input))
		goto out;
	input[pos++] = '.';
	if (append_json_b64(input, sizeof(input), &pos, pl) != 0)
		goto out;
	ret = token_sign_jws((const unsigned char *)key->bytes, key->len, input, pos, out);
out:
	json_object_put(hdr);
	json_object_put(pl);
	return ret;
}

int token_new_jti(char out[TOKEN_JTI_HEX_LEN + 1])
{
	unsigned char rnd[TOKEN_JTI_HEX_LEN / 2];

	out[0] = '\0';
	if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
		return -1;
	util_hex(rnd, sizeof(rnd), out);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}
