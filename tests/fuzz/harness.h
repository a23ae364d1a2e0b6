/*
 * harness: what the fuzz targets share.
 *
 *  - A worker set up as main() sets one up (configuration from a fixed
 *    environment, a private rate-limit segment with its metrics, the
 *    statements registered, the dummy hash), except that its database is
 *    never there: db_exec() answers DB_UNAVAILABLE at once, so a request
 *    runs every check the worker makes and stops where the first query
 *    would go.
 *  - In-memory libfcgi streams: the input hands the body out in the chunks
 *    the fuzzer chose, through libfcgi's own FCGX_GetStr; the output
 *    collects the answer.  serve_request() reads and writes through them
 *    exactly as it does on a socket.
 *  - The request input format, shared with the seed recorder.
 *
 * A target that finds a broken invariant calls fuzz_fail(), which aborts:
 * libFuzzer keeps the input as a crash.
 */
#ifndef CHAT_FUZZ_HARNESS_H
#define CHAT_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "worker.h"

/* The key of every harness worker, and what seeds write instead of a token
 * (the recorder replaces each token valid under its key by these). */
#define FUZZ_SECRET_KEY          "fuzz-harness-key-0123456789abcdefghij"
#define FUZZ_SECRET_KEY_PREVIOUS "fuzz-harness-old-key-zyxwvutsrqponmlk"
#define FUZZ_TOKEN_MARK          "@token"
#define FUZZ_OLD_TOKEN_MARK      "@oldtoken"
#define FUZZ_USER_ID             42

/* Abort with a message: a broken invariant, kept by libFuzzer as a crash. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The value of parameter `name` in a NULL-terminated "NAME=value" array, or
 * NULL: looked up as libfcgi's FCGX_GetParam does, independently of http.c. */
const char *fuzz_param(char *const *params, const char *name);

/* The harness worker (created on first use, lives until exit).  extra_env
 * (NULL-terminated, may be NULL) is added to the fixed environment on the
 * first call only. */
struct worker *fuzz_worker(char *const *extra_env);

/* Tokens for FUZZ_USER_ID under the current and the previous key, valid
 * for a year from the first call. */
const char *fuzz_token(void);
const char *fuzz_old_token(void);

/*
 * One request as the fuzzer writes it:
 *
 *   ["~" chunk-size bytes "\n"]    each byte b: a chunk of 1 + (b & 63) bytes, cycled
 *   "NAME=value\n" ...             the CGI parameters, as libfcgi hands them over
 *   "\n"
 *   body bytes                     the rest of the input
 *
 * "@token" and "@oldtoken" in a parameter become valid bearer tokens.  No
 * "~" line: the body comes in one piece.
 */
#define FUZZ_MAX_PARAMS 64
struct fuzz_request {
	char *params[FUZZ_MAX_PARAMS + 1]; /* NULL-terminated, owned */
	unsigned char *body;               /* owned, exactly body_len bytes */
	size_t body_len;
	unsigned char chunks[64];
	size_t nchunks;
};

void fuzz_request_parse(const uint8_t *data, size_t size, struct fuzz_request *out);
void fuzz_request_free(struct fuzz_request *r);

/* A reader stream over a body, handed out in chunks. */
struct fuzz_reader {
	FCGX_Stream stream;
	const unsigned char *next, *end;
	const unsigned char *chunks;
	size_t nchunks, at;
};
void fuzz_reader_init(struct fuzz_reader *r, const unsigned char *body, size_t len,
                      const unsigned char *chunks, size_t nchunks);

/* A writer stream that collects everything written into a growing buffer. */
struct fuzz_writer {
	FCGX_Stream stream;
	unsigned char *buf;
	size_t cap;
};
void fuzz_writer_init(struct fuzz_writer *w);
/* The bytes written so far. */
size_t fuzz_writer_len(const struct fuzz_writer *w);
void fuzz_writer_free(struct fuzz_writer *w);

#endif
