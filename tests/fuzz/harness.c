/*
 * harness: the worker, streams and input format the fuzz targets share.
 * See harness.h.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit.h"
#include "segment.h"
#include "token.h"

/* The sanitizers' report channel: libFuzzer keeps it open when it closes
 * the target's stderr (-close_fd_mask=2, which the scripts use so the
 * worker's log lines cost nothing to watch). */
void __sanitizer_report_error_summary(const char *summary) __attribute__((weak));

void fuzz_fail(const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof msg, "fuzz invariant broken: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	if (__sanitizer_report_error_summary)
		__sanitizer_report_error_summary(msg);
	else
		fprintf(stderr, "%s\n", msg);
	abort();
}

const char *fuzz_param(char *const *params, const char *name)
{
	size_t n = strlen(name);

	for (; params && *params; params++)
		if (strncmp(*params, name, n) == 0 && (*params)[n] == '=')
			return *params + n + 1;
	return NULL;
}

static struct worker the_worker;
static bool worker_ready;
static char *tokens[2];

static void must(bool ok, const char *what)
{
	if (!ok)
		fuzz_fail("harness set-up: %s", what);
}

static char *sign_token(const struct secret *key)
{
	struct token_claims c;
	char *tok = NULL;

	memset(&c, 0, sizeof c);
	c.user_id = FUZZ_USER_ID;
	c.iat = (int64_t)time(NULL);
	c.exp = c.iat + 365 * 86400;
	memcpy(c.jti, "fuzzsession0123456789abcdef01234", TOKEN_JTI_HEX_LEN);
	must(token_sign(key, &c, &tok) == 0, "token_sign");
	return tok;
}

struct worker *fuzz_worker(char *const *extra_env)
{
	static char shm[64];
	char *env[64] = {
	    "APP_MODE=DEV",
	    "SECRET_KEY=" FUZZ_SECRET_KEY,
	    "SECRET_KEY_PREVIOUS=" FUZZ_SECRET_KEY_PREVIOUS,
	    /* Nothing listens on port 1; and db_exec never tries (below). */
	    "POSTGRES_HOST=127.0.0.1",
	    "POSTGRES_PORT=1",
	    "SCRYPT_N=10",
	    "SCRYPT_R=1",
	    "SCRYPT_P=1",
	    /* The limiter runs on every key, but never turns a request away:
	     * a fuzzing run's answers must not depend on the inputs before. */
	    "RATE_LIMIT_AUTH=1000000/second",
	    "RATE_LIMIT_CHAT=1000000/second",
	    "RATE_LIMIT_READ=1000000/second",
	    "RATE_LIMIT_SLOTS=1024",
	    "TRUSTED_PROXIES=10.0.0.0/8,fd00::/8",
	    "METRICS_ALLOW=127.0.0.0/8,::1/128",
	    /* The smallest cap, so bodies around it fit libFuzzer's inputs. */
	    "MAX_BODY_BYTES=1024",
	    shm,
	};
	size_t n = 16;
	char err[RL_ERR_LEN];
	struct worker *w = &the_worker;

	if (worker_ready)
		return w;
	snprintf(shm, sizeof shm, "RATE_LIMIT_SHM=/chat-fuzz-%d", (int)getpid());
	for (; extra_env && *extra_env && n < 63; extra_env++)
		env[n++] = *extra_env;
	env[n] = NULL;
	must(worker_configure(w, env) == 0, "worker_configure");
	must(worker_open(w) == 0, "worker_open");
	/* Mapped: the name can go at once, so no run leaves a segment behind. */
	seg_unlink(w->cfg.rate_limit_shm, err, sizeof err);
	/* The database is down and never due for a retry: every db_exec()
	 * answers DB_UNAVAILABLE without a connect attempt. */
	w->db.retry_at_ns = UINT64_MAX;
	tokens[0] = sign_token(&w->cfg.secret_key);
	tokens[1] = sign_token(&w->cfg.secret_key_previous);
	worker_ready = true;
	return w;
}

const char *fuzz_token(void)
{
	fuzz_worker(NULL);
	return tokens[0];
}

const char *fuzz_old_token(void)
{
	fuzz_worker(NULL);
	return tokens[1];
}

/* line[0..n) with each mark replaced by its token, as a C string (a NUL in
 * the line ends it, as it would end a FastCGI parameter). */
static char *expand_marks(const char *line, size_t n)
{
	size_t tlen = strlen(fuzz_token()) + strlen(fuzz_old_token());
	char *out = malloc(n + 8 * tlen + 1), *o = out;
	size_t i = 0, marks = 0;

	if (!out)
		fuzz_fail("out of memory");
	while (i < n && line[i] != '\0') {
		size_t left = n - i;
		if (marks < 8 && left >= strlen(FUZZ_OLD_TOKEN_MARK) &&
		    memcmp(line + i, FUZZ_OLD_TOKEN_MARK, strlen(FUZZ_OLD_TOKEN_MARK)) == 0) {
			o = stpcpy(o, fuzz_old_token());
			i += strlen(FUZZ_OLD_TOKEN_MARK);
			marks++;
		} else if (marks < 8 && left >= strlen(FUZZ_TOKEN_MARK) &&
		           memcmp(line + i, FUZZ_TOKEN_MARK, strlen(FUZZ_TOKEN_MARK)) == 0) {
			o = stpcpy(o, fuzz_token());
			i += strlen(FUZZ_TOKEN_MARK);
			marks++;
		} else {
			*o++ = line[i++];
		}
	}
	*o = '\0';
	return out;
}

void fuzz_request_parse(const uint8_t *data, size_t size, struct fuzz_request *out)
{
	const uint8_t *p = data, *end = data + size;
	size_t np = 0;

	memset(out, 0, sizeof *out);
	if (p < end && *p == '~') {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *stop = nl ? nl : end;
		for (p++; p < stop && out->nchunks < sizeof out->chunks; p++)
			out->chunks[out->nchunks++] = (unsigned char)(1 + (*p & 63));
		p = nl ? nl + 1 : end;
	}
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n == 0) { /* the empty line: the body follows */
			p++;
			break;
		}
		if (np < FUZZ_MAX_PARAMS)
			out->params[np++] = expand_marks((const char *)p, n);
		p = nl ? nl + 1 : end;
	}
	out->params[np] = NULL;
	out->body_len = (size_t)(end - p);
	/* A buffer of exactly the body's size: ASan sees any read past it. */
	out->body = malloc(out->body_len ? out->body_len : 1);
	if (!out->body)
		fuzz_fail("out of memory");
	memcpy(out->body, p, out->body_len);
}

void fuzz_request_free(struct fuzz_request *r)
{
	for (size_t i = 0; r->params[i]; i++)
		free(r->params[i]);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* libfcgi calls this when the buffer is used up: hand out the next chunk,
 * or close the stream at the end of the body (its EOF). */
static void reader_fill(FCGX_Stream *s)
{
	struct fuzz_reader *r = s->data;
	size_t n = (size_t)(r->end - r->next);

	if (n == 0) {
		s->isClosed = 1;
		s->rdNext = s->stop = (unsigned char *)r->end;
		return;
	}
	if (r->nchunks) {
		size_t c = r->chunks[r->at++ % r->nchunks];
		if (c < n)
			n = c;
	}
	s->rdNext = s->stopUnget = (unsigned char *)r->next;
	s->stop = (unsigned char *)r->next + n;
	r->next += n;
}

static void reader_empty(FCGX_Stream *s, int do_close)
{
	(void)do_close;
	s->isClosed = 1; /* a reader is never written to */
}

void fuzz_reader_init(struct fuzz_reader *r, const unsigned char *body, size_t len,
                      const unsigned char *chunks, size_t nchunks)
{
	memset(r, 0, sizeof *r);
	r->next = body;
	r->end = body + len;
	r->chunks = chunks;
	r->nchunks = nchunks;
	r->stream.isReader = 1;
	r->stream.rdNext = r->stream.stop = r->stream.stopUnget = (unsigned char *)body;
	r->stream.fillBuffProc = reader_fill;
	r->stream.emptyBuffProc = reader_empty;
	r->stream.data = r;
}

/* libfcgi calls this when the buffer is full: double it. */
static void writer_empty(FCGX_Stream *s, int do_close)
{
	struct fuzz_writer *w = s->data;
	size_t used = fuzz_writer_len(w);
	size_t cap = w->cap ? w->cap * 2 : 256;
	unsigned char *b;

	if (do_close) {
		s->isClosed = 1;
		return;
	}
	b = realloc(w->buf, cap);
	if (!b)
		fuzz_fail("out of memory");
	w->buf = b;
	w->cap = cap;
	s->wrNext = b + used;
	s->stop = b + cap;
}

static void writer_fill(FCGX_Stream *s)
{
	s->isClosed = 1; /* a writer is never read from */
}

void fuzz_writer_init(struct fuzz_writer *w)
{
	memset(w, 0, sizeof *w);
	w->stream.fillBuffProc = writer_fill;
	w->stream.emptyBuffProc = writer_empty;
	w->stream.data = w;
}

size_t fuzz_writer_len(const struct fuzz_writer *w)
{
	return w->buf ? (size_t)(w->stream.wrNext - w->buf) : 0;
}

void fuzz_writer_free(struct fuzz_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}
