/*
 * fuzz_token: the bearer token, from its text to its claims.
 *
 * The first byte picks what the rest of the input is:
 *   'P' / 'p'  a payload: signed under the harness's current / previous key
 *              with our own header, so the MAC holds and the claims parser
 *              is reached with any JSON the fuzzer writes;
 *   'H'        a header: signed with a good payload, so the alg and crit
 *              rules meet any JSON;
 *   else       the token text itself (shape, base64url, header, MAC).
 * Each is verified as auth_authenticate() verifies it.
 *
 * Invariants: a correctly signed token is never refused for its signature
 * or (with our header) its alg; one changed signature character always is;
 * an accepted token's claims obey token.h and survive a sign/verify round
 * trip unchanged.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "harness.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUR_HEADER   "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define GOOD_PAYLOAD "{\"sub\":\"42\",\"iat\":1700000000,\"exp\":4102444800,\"jti\":\"abc\"}"
/* A fixed clock: the outcome of an input must not change with the date. */
#define NOW 1800000000

/* Unpadded base64url of in[0..n) into a malloc'd string (the test's own
 * encoder: token.c's is static, and an independent one checks it too). */
static char *b64url(const void *in, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);
	int len;

	if (!out)
		fuzz_fail("out of memory");
	len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *c = out; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return out;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char c)
{
	return (int)(strchr(b64url_alphabet, c) - b64url_alphabet);
}

/* Sign header.payload (raw JSON texts) with key; NULL if too long. */
static char *sign(const struct secret *key, const void *hdr, size_t hn, const void *pl, size_t pn)
{
	char *h = b64url(hdr, hn), *p = b64url(pl, pn), *input, *tok = NULL;
	size_t len = strlen(h) + 1 + strlen(p);

	input = malloc(len + 1);
	if (!input)
		fuzz_fail("out of memory");
	strcpy(input, h);
	strcat(input, ".");
	strcat(input, p);
	if (token_sign_jws((const unsigned char *)key->bytes, key->len, input, len, &tok) != 0)
		tok = NULL;
	free(h);
	free(p);
	free(input);
	return tok;
}

static bool jti_ok(const char *jti)
{
	size_t n = strlen(jti);

	return n >= 1 && n <= TOKEN_JTI_MAX &&
	       strspn(jti, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static void check_accepted(const struct worker *w, const struct token_claims *c)
{
	struct token_claims again;
	char *tok = NULL;

	if (c->user_id <= 0 || !jti_ok(c->jti) || NOW >= c->exp)
		fuzz_fail("accepted claims break the rules");
	if (token_sign(&w->cfg.secret_key, c, &tok) != 0)
		fuzz_fail("accepted claims cannot be signed again");
	if (token_verify(tok, strlen(tok), &w->cfg.secret_key, NULL, NOW, &again) != TOKEN_OK ||
	    memcmp(&again, c, sizeof again) != 0)
		fuzz_fail("claims changed in a sign/verify round trip");
	free(tok);
}

/* Verify a token we signed: the MAC must hold, and a flipped character
 * in the signature must break it. */
static void check_signed(const struct worker *w, char *tok, bool our_header)
{
	struct token_claims c;
	enum token_status st;
	size_t n = strlen(tok);

	st = token_verify(tok, n, &w->cfg.secret_key, &w->cfg.secret_key_previous, NOW, &c);
	if (st == TOKEN_BAD_SIGNATURE)
		fuzz_fail("a correctly signed token refused for its signature");
	if (our_header && st == TOKEN_BAD_ALG)
		fuzz_fail("our own header refused");
	if (st == TOKEN_OK)
		check_accepted(w, &c);
	if (st == TOKEN_OK || st == TOKEN_EXPIRED || st == TOKEN_BAD_CLAIMS) {
		/* One data bit changed in the first, a middle and the last
		 * character of the signature (the last one's low 2 bits are
		 * padding, so bit 2: still canonical).  Every byte of the MAC
		 * must count. */
		char *sig = strrchr(tok, '.') + 1;
		size_t len = strlen(sig), at[3] = {0, len / 2, len - 1};
		for (int i = 0; i < 3; i++) {
			char was = sig[at[i]];
			sig[at[i]] = b64url_alphabet[b64url_value(was) ^ 4];
			if (token_verify(tok, n, &w->cfg.secret_key, &w->cfg.secret_key_previous,
			                 NOW, &c) != TOKEN_BAD_SIGNATURE)
				fuzz_fail("a signature changed at %zu still verifies", at[i]);
			sig[at[i]] = was;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct worker *w = fuzz_worker(NULL);
	struct token_claims c;
	char *tok;

	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'P':
	case 'p':
		tok = sign(data[0] == 'P' ? &w->cfg.secret_key : &w->cfg.secret_key_previous,
		           OUR_HEADER, strlen(OUR_HEADER), data + 1, size - 1);
		if (tok)
			check_signed(w, tok, true);
		free(tok);
		break;
	case 'H':
		tok = sign(&w->cfg.secret_key, data + 1, size - 1, GOOD_PAYLOAD,
		           strlen(GOOD_PAYLOAD));
		if (tok)
			check_signed(w, tok, false);
		free(tok);
		break;
	default:
		/* As the Authorization value hands it over: not NUL-terminated
		 * for token_verify, which takes a length. */
		if (token_verify((const char *)data + 1, size - 1, &w->cfg.secret_key,
		                 &w->cfg.secret_key_previous, NOW, &c) == TOKEN_OK)
			check_accepted(w, &c);
		break;
	}
	return 0;
}
