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

static const char *param(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

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

static bool token_valid(const struct worker *w, const char *tok, struct token_claims *c)
{
	return token_verify(tok, strlen(tok), &w->cfg.secret_key, &w->cfg.secret_key_previous,
	                    (int64_t)time(NULL), c) == TOKEN_OK;
}

static void record(const struct worker *w, const char *dir, char **envp, const char *body,
                   size_t body_len)
{
	const char *auth = param(envp, "HTTP_AUTHORIZATION");
	const char *tok = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
	struct token_claims claims;
	bool valid = tok && token_valid(w, tok, &claims);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	for (const char *const *k = kept; *k; k++) {
		const char *v = param(envp, *k);
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
		if (valid) {
			/* The payload part, decoded: the claims the worker issued. */
			const char *p = strchr(tok, '.') + 1, *q = strchr(p, '.');
			char b64[4096], raw[3 * sizeof b64 / 4 + 2];
			size_t n = (size_t)(q - p), i;
			int m;
			for (i = 0; i < n && i < sizeof b64 - 4; i++)
				b64[i] = p[i] == '-' ? '+' : p[i] == '_' ? '/' : p[i];
			while (i % 4)
				b64[i++] = '=';
			raw[0] = 'P';
			m = EVP_DecodeBlock((unsigned char *)raw + 1, (unsigned char *)b64, (int)i);
			if (m > 0) {
				while (m > 0 && raw[m] == '\0')
					m--; /* padding decodes to zero bytes */
				save(dir, "token", raw, (size_t)m + 1);
			}
		}
	}
	if (param(envp, "REMOTE_ADDR")) {
		const char *xff = param(envp, "HTTP_X_FORWARDED_FOR");
		const char *tp = getenv("TRUSTED_PROXIES"), *ma = getenv("METRICS_ALLOW");
		text = NULL;
		f = open_memstream(&text, &len);
		fprintf(f, "%s\n%s\n%s\n%s", param(envp, "REMOTE_ADDR"), xff ? xff : "",
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
		const char *cl = param(fr.envp, "CONTENT_LENGTH");
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
