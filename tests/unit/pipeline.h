/*
 * pipeline: what the suites that run requests through worker_handle()
 * share (auth, chat, health, worker): the database attempt counter, a body
 * reader over a string, a look at the answer's members, and clean-up.
 * Each suite keeps its own worker and setup: they differ in configuration.
 */
#ifndef CHAT_TEST_PIPELINE_H
#define CHAT_TEST_PIPELINE_H

#include <string.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "http.h"
#include "worker.h"

/* Connection attempts so far, refused ones included: with nothing on the
 * database's port a NULL connection proves nothing, an attempt is counted
 * either way. */
static inline uint64_t db_attempts_of(const struct worker *w)
{
	return w->db.connects + w->db.connect_failures;
}

/* An http_read_fn over a NUL-terminated string (ctx: const char **). */
static inline ssize_t read_string(void *ctx, char *buf, size_t n)
{
	const char **src = ctx;
	size_t len = strlen(*src);

	if (len > n)
		len = n;
	memcpy(buf, *src, len);
	*src += len;
	return (ssize_t)len;
}

/* The answer's top-level member `name` as text, "" if absent. */
static inline const char *member(const struct response *res, const char *name)
{
	struct json_object *v;

	if (!res->json || !json_object_object_get_ex(res->json, name, &v))
		return "";
	return json_object_get_string(v);
}

static inline void done(struct request *req, struct response *res)
{
	http_response_free(res);
	http_request_free(req);
}

#endif
