/*
 * worker: one request through the pipeline of SPEC §8, in this order:
 *
 *   route (404/405) → body cap from CONTENT_LENGTH (413, nothing read)
 *   → media type (415) → read body (400 if short) → parse (400)
 *   → bearer token, CPU only (401) → rate limit, shared memory (429)
 *   → in cluster scope, rate limit in PostgreSQL (429, 503)
 *   → handler (database).
 *
 * Everything before the handler is decided without the database, so bad
 * input costs no query.
 */
#include "worker.h"

#include <stdio.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "chat.h"
#include "health.h"
#include "log.h"
#include "limit.h"
#include "metrics.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"

int worker_check_user(enum app_mode mode, uid_t uid, uid_t euid, char *why, size_t len)
{
	if (uid != 0 && euid != 0)
		return 0;
	snprintf(why, len,
	         "running as root (uid %u, euid %u)%s: run the workers as an unprivileged user "
	         "(lighttpd server.username, Apache User, systemd User=)",
	         (unsigned)uid, (unsigned)euid,
	         mode == APP_MODE_DEV    ? ", allowed in APP_MODE=DEV only"
	         : mode == APP_MODE_PROD ? ", refused in APP_MODE=PROD"
	                                 : ", refused in APP_MODE=TEST");
	return mode == APP_MODE_DEV ? 1 : -1;
}

int worker_configure(struct worker *w, char *const *envp)
{
	struct config_problems problems = {0};
	char why[192];
	const char *refusal = NULL, *more = "";
	int user = 0;

	if (config_load(&w->cfg, envp, &problems) != 0) {
		refusal = problems.count ? problems.lines[0] : "configuration could not be loaded";
		more = problems.count > 1 ? " (and more: run chat-admin check-config)" : "";
	} else {
		user = worker_check_user(w->cfg.mode, getuid(), geteuid(), why, sizeof why);
		if (user < 0)
			refusal = why;
	}
	/* The one place a worker refuses to start over its configuration
	 * or its environment: one line, exit status 78. */
	if (refusal) {
		char line[1024];

		snprintf(line, sizeof line, "%s%s", refusal, more);
		audit_config_rejected(line);
		config_problems_free(&problems);
		config_free(&w->cfg);
		return CONFIG_EXIT_STATUS;
	}
	log_set_threshold(w->cfg.log_level);
	if (user > 0)
		log_event(LOG_LEVEL_WARN, "config", "%s", why);
	return 0;
}

/* Every statement a connection prepares, whoever's module runs it. */
static int register_statements(struct worker *w)
{
	size_t n;
	const struct db_statement *s;

	s = health_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	s = auth_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	s = chat_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	/* Only in cluster scope: a host-scope deployment needs no
	 * rate_limits table (sql/004 may be applied or not). */
	if (w->cfg.rate_limit_scope != RATE_LIMIT_SCOPE_CLUSTER)
		return 0;
	s = limit_cluster_statements(&n);
	return db_add_statements(&w->db, s, n);
}

struct limit_cluster *worker_limit_cluster(struct worker *w)
{
	return w->cfg.rate_limit_scope == RATE_LIMIT_SCOPE_CLUSTER ? &w->cluster : NULL;
}

int worker_open(struct worker *w)
{
	char err[RL_ERR_LEN];

	if (rl_open(w->cfg.rate_limit_shm, w->cfg.rate_limit_slots, &w->rl, err, sizeof err) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "rate-limit table: %s", err);
		config_free(&w->cfg);
		return CONFIG_EXIT_STATUS;
	}
	if (metrics_attach(rl_segment(w->rl), &w->metrics, err, sizeof err) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "%s", err);
		rl_close(w->rl);
		config_free(&w->cfg);
		return CONFIG_EXIT_STATUS;
	}
	db_init(&w->db, &w->cfg);
	w->cluster = (struct limit_cluster){.db = &w->db, .secret = &w->cfg.secret_key};
	if (register_statements(w) != 0 || auth_init(&w->cfg) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "initialisation failed");
		worker_close(w);
		return 1;
	}
	return 0;
}

void worker_close(struct worker *w)
{
	db_close(&w->db);
	rl_close(w->rl);
	w->rl = NULL;
	w->metrics = NULL;
	config_free(&w->cfg);
}

static int read_body(struct worker *w, const struct route *route, struct request *req,
                     struct response *res, http_read_fn read_fn, void *ctx)
{
	bool form = route->body == ROUTE_BODY_JSON_OR_FORM &&
	            http_content_type_is(req, "application/x-www-form-urlencoded");
	const char *detail;

	if (!form && !http_content_type_is(req, "application/json")) {
		reply_unsupported_media_type(res,
		                             route->body == ROUTE_BODY_JSON_OR_FORM
		                                 ? "request body must be application/json or a form"
		                                 : "request body must be application/json");
		return -1;
	}
	switch (http_read_body(req, w->cfg.max_body_bytes, read_fn, ctx)) {
	case HTTP_BODY_OK:
		break;
	case HTTP_BODY_TOO_LARGE:
		reply_too_large(res, w->cfg.max_body_bytes);
		return -1;
	case HTTP_BODY_INCOMPLETE:
		reply_bad_request(res, "request body is shorter than Content-Length", NULL);
		return -1;
	default:
		reply_bad_request(res, "request body could not be read", NULL);
		return -1;
	}
	if (form)
		return 0; /* the handler reads its fields */
	if (http_parse_json_object(req, &detail) != 0) {
		reply_bad_request(res, detail, NULL);
		return -1;
	}
	return 0;
}

void worker_handle(struct worker *w, struct request *req, struct response *res,
                   http_read_fn read_fn, void *ctx)
{
	const struct route *route = NULL;
	char allow[64];

	switch (router_match(req->method, req->path, &route, &req->route_index, req->path_ids,
	                     allow, sizeof allow)) {
	case ROUTER_NOT_FOUND:
		reply_not_found(res);
		return;
	case ROUTER_METHOD_NOT_ALLOWED:
		reply_method_not_allowed(res, allow);
		return;
	case ROUTER_FOUND:
		break;
	}
	req->route_name = route->name;

	/* The cap holds for every route, decided before a byte is read. */
	switch (http_check_length(req, w->cfg.max_body_bytes)) {
	case HTTP_BODY_OK:
		break;
	case HTTP_BODY_TOO_LARGE:
		reply_too_large(res, w->cfg.max_body_bytes);
		return;
	default:
		reply_bad_request(res, "invalid Content-Length", NULL);
		return;
	}
	if (route->body != ROUTE_BODY_NONE && read_body(w, route, req, res, read_fn, ctx) != 0)
		return;
	if (route->needs_token && auth_authenticate(&w->cfg, req, res) != 0)
		return;
	if (route->limit == LIMIT_NONE ||
	    limit_apply(w->rl, worker_limit_cluster(w), &w->cfg, route->limit, NULL, req, res) == 0)
		route->handler(w, req, res);
	limit_headers(req, res);
}
