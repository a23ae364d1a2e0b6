/*
 * worker: what one prefork worker keeps across requests.  There is exactly
 * one per process, created in main() after the web server spawned us, and
 * passed down to every module; nothing else is mutable across requests.
 */
#ifndef CHAT_WORKER_H
#define CHAT_WORKER_H

#include "config.h"
#include "db.h"
#include "http.h"

struct worker {
	struct config cfg;
	struct db db;
	char auth_dummy_mcf[128]; /* SCRYPT_MCF_LEN: see auth_init() */
};

/* Run one request through the pipeline and leave the answer in *res.  The
 * body, when the route takes one, is read through read_fn. */
void worker_handle(struct worker *w, struct request *req, struct response *res,
                   http_read_fn read_fn, void *ctx);

#endif
