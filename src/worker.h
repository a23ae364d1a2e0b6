/*
 * worker: what one prefork worker keeps across requests.  There is exactly
 * one per process, created in main() after the web server spawned us, and
 * passed down to every module; nothing else is mutable across requests.
 */
#ifndef CHAT_WORKER_H
#define CHAT_WORKER_H

#include <sys/types.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "limit_cluster.h"

struct rl_table;
struct metrics_shm;

struct worker {
	struct config cfg;
	struct db db;
	struct rl_table *rl;          /* the shared segment: rate limits ... */
	struct metrics_shm *metrics;  /* ... and the counters in it */
	uint64_t db_reported[3];      /* db counters already added to metrics */
	struct limit_cluster cluster; /* RATE_LIMIT_SCOPE=cluster: the shared tier */
};

/*
 * Start-up, in two steps so that a worker run by hand can check its
 * configuration without touching the shared segment.  Each returns 0, or
 * the exit status to stop with (CONFIG_EXIT_STATUS for a configuration or
 * segment problem) after logging why.
 *
 * worker_configure: the configuration from envp, and the log threshold.
 * worker_open: the shared segment and its metrics, the statements every
 * connection prepares, the dummy hash.  Opens no database connection.
 */
int worker_configure(struct worker *w, char *const *envp);
/*
 * Part of worker_configure: a worker must not run as root (uid or euid 0),
 * where a flaw in it would own the machine.  Returns 0 for another user;
 * for root, the reason in why and 1 in APP_MODE=DEV (a warning), -1 in
 * TEST and PROD (a refusal).
 */
int worker_check_user(enum app_mode mode, uid_t uid, uid_t euid, char *why, size_t len);
int worker_open(struct worker *w);
/* The cluster tier for limit_apply(): NULL in host scope. */
struct limit_cluster *worker_limit_cluster(struct worker *w);
/* Close the database connection, unmap the segment, wipe the config. */
void worker_close(struct worker *w);

/* Run one request through the pipeline and leave the answer in *res.  The
 * body, when the route takes one, is read through read_fn. */
void worker_handle(struct worker *w, struct request *req, struct response *res,
                   http_read_fn read_fn, void *ctx);

#endif
