/*
 * seed_recorder: a chat-fcgi worker that also keeps every request it serves
 * as fuzz seeds (tests/fuzz/record-seeds.sh runs the end-to-end suite with
 * it in place of chat-fcgi).  Not part of any installed program.
 *
 * Each request is served exactly as chat-fcgi serves it (worker_configure,
 * worker_open, serve_request); the body is read first and handed back
 * through an in-memory stream.  Written under $CHAT_SEED_DIR, one file per
 * distinct input, named by its SHA-1 as libFuzzer names corpus files:
 *   request/  the parameters the worker reads and the body (harness.h);
 *             a bearer token valid under this worker's keys is written as
 *             "@token" (the fuzz harness signs its own), any other token
 *             as it came;
 *   token/    "T" and every bearer token as sent; "P" and the payload of
 *             each valid one;
 *   netaddr/  REMOTE_ADDR, X-Forwarded-For and this worker's
 *             TRUSTED_PROXIES and METRICS_ALLOW;
 *   json/     every request body.
 */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "harness.h"
#include "serve.h"
#include "token.h"

extern char **environ;

/* The parameters http_request_init() reads; everything else the web server
 * sends (SERVER_SOFTWARE, DOCUMENT_ROOT, ...) is never looked at. */
static const char *const kept[] = {
    "REQUEST_METHOD", "REQUEST_URI",          "SCRIPT_NAME",        "QUERY_STRING",
    "CONTENT_TYPE",   "CONTENT_LENGTH",       "HTTP_AUTHORIZATION", "HTTP_IDEMPOTENCY_KEY",
    "REMOTE_ADDR",    "HTTP_X_FORWARDED_FOR", "HTTP_X_REQUEST_ID",  NULL,
};

static void save(const char *dir, const char *kind, const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char path[4096], *o;
	FILE *f;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL))
		return;
	o = path + snprintf(path, sizeof path - 2 * EVP_MAX_MD_SIZE, "%s/%s/", dir, kind);
	for (unsigned i = 0; i < mdlen; i++)
		o += sprintf(o, "%02x", md[i]);
	f = fopen(path, "wx"); /* an existing file is the same input */
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

/* "P" and the payload of a token valid under one of w's keys, as json-c
 * prints it (our tokens' payloads are json-c's plain printing). */
static void save_payload(const struct worker *w, const char *dir, const char *tok)
{
	const struct secret *keys[2] = {&w->cfg.secret_key, &w->cfg.secret_key_previous};
	struct json_object *payload = NULL;

	for (int i = 0; i < 2 && !payload; i++)
		if (keys[i]->len &&
		    token_verify_jws(tok, strlen(tok), (const unsigned char *)keys[i]->bytes,
		                     keys[i]->len, &payload) != TOKEN_OK)
			payload = NULL;
	if (payload) {
		const char *text = json_object_to_json_string_ext(
		    payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		char *seed = malloc(strlen(text) + 2);
		if (seed) {
			seed[0] = 'P';
			strcpy(seed + 1, text);
			save(dir, "token", seed, strlen(seed));
			free(seed);
		}
		json_object_put(payload);
	}
}

static bool token_valid(const struct worker *w, const char *tok, struct token_claims *c)
{
	return token_verify(tok, strlen(tok), &w->cfg.secret_key, &w->cfg.secret_key_previous,
	                    (int64_t)time(NULL), c) == TOKEN_OK;
}

static void record(const struct worker *w, const char *dir, char **envp, const char *body,
                   size_t body_len)
{
	const char *auth = fuzz_param(envp, "HTTP_AUTHORIZATION");
	const char *tok = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
	struct token_claims claims;
	bool valid = tok && token_valid(w, tok, &claims);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	for (const char *const *k = kept; *k; k++) {
		const char *v = fuzz_param(envp, *k);
		if (!v)
			continue;
		if (valid && strcmp(*k, "HTTP_AUTHORIZATION") == 0)
			fprintf(f, "%s=%.*s" FUZZ_TOKEN_MARK "\n", *k, (int)(tok - auth), auth);
		else
			fprintf(f, "%s=%s\n", *k, v);
	}
	fputc('\n', f);
	fwrite(body, 1, body_len, f);
	fclose(f);
	save(dir, "request", text, len);
	free(text);

	if (tok) {
		text = NULL;
		f = open_memstream(&text, &len);
		fprintf(f, "T%s", tok);
		fclose(f);
		save(dir, "token", text, len);
		free(text);
		if (valid)
			save_payload(w, dir, tok);
	}
	if (fuzz_param(envp, "REMOTE_ADDR")) {
		const char *xff = fuzz_param(envp, "HTTP_X_FORWARDED_FOR");
		const char *tp = getenv("TRUSTED_PROXIES"), *ma = getenv("METRICS_ALLOW");
		text = NULL;
		f = open_memstream(&text, &len);
		fprintf(f, "%s\n%s\n%s\n%s", fuzz_param(envp, "REMOTE_ADDR"), xff ? xff : "",
		        tp ? tp : "", ma ? ma : "127.0.0.0/8,::1/128");
		fclose(f);
		save(dir, "netaddr", text, len);
		free(text);
	}
	if (body_len)
		save(dir, "json", body, body_len);
}

int main(void)
{
	static struct worker w;
	const char *dir = getenv("CHAT_SEED_DIR");
	FCGX_Request fr;
	int status;

	if (FCGX_Init() != 0 || !dir)
		return 64;
	signal(SIGPIPE, SIG_IGN);
	status = worker_configure(&w, environ);
	if (status == 0)
		status = worker_open(&w);
	if (status != 0)
		return status;
	FCGX_InitRequest(&fr, 0, 0);
	while (FCGX_Accept_r(&fr) >= 0) {
		/* The whole body first (as much as declared, up to 1 MiB), then
		 * served from memory exactly as chat-fcgi serves it. */
		const char *cl = fuzz_param(fr.envp, "CONTENT_LENGTH");
		size_t want = cl ? strtoul(cl, NULL, 10) : 0, got = 0;
		char *body = malloc(want > (1u << 20) ? (1u << 20) : want + 1);
		struct fuzz_reader in;

		if (want > (1u << 20))
			want = 1u << 20;
		while (body && got < want) {
			int n = FCGX_GetStr(body + got, (int)(want - got), fr.in);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		record(&w, dir, fr.envp, body ? body : "", body ? got : 0);
		fuzz_reader_init(&in, (unsigned char *)(body ? body : ""), body ? got : 0, NULL, 0);
		serve_request(&w, fr.envp, &in.stream, fr.out);
		free(body);
		FCGX_Finish_r(&fr);
	}
	worker_close(&w);
	return 0;
}
