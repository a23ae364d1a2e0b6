/*
 * health: /healthz and /readyz.
 */
#include "health.h"

#include "db.h"
#include "reply.h"
#include "worker.h"

enum { SQL_PING };

static const struct db_statement statements[] = {
    [SQL_PING] = {"health_ping", "SELECT 1", true},
};

const struct db_statement *health_statements(size_t *count)
{
	*count = sizeof statements / sizeof statements[0];
	return statements;
}

static struct json_object *status_object(const char *status)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "status", json_object_new_string(status));
	return o;
}

void health_healthz(struct worker *w, struct request *req, struct response *res)
{
	(void)w;
	(void)req;
	http_set_json(res, 200, status_object("ok"));
}

void health_readyz(struct worker *w, struct request *req, struct response *res)
{
	enum db_status st;
	PGresult *r = db_exec(&w->db, &statements[SQL_PING], 0, NULL, &st);

	(void)req;
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	PQclear(r);
	http_set_json(res, 200, status_object("ready"));
}
