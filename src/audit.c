/*
 * audit: security events noted on the request, logged and counted after
 * the answer.  See audit.h.
 */
#include "audit.h"

#include <string.h>

#include "log.h"
#include "metrics.h"
#include "netaddr.h"

static const struct {
	const char *name;
	enum log_level level; /* warn: worth an alert when it bursts */
} events[AUDIT_EVENTS] = {
    [AUDIT_LOGIN_FAILED] = {"login_failed", LOG_LEVEL_WARN},
    [AUDIT_LOGIN_SUCCEEDED] = {"login_succeeded", LOG_LEVEL_INFO},
    [AUDIT_USER_REGISTERED] = {"user_registered", LOG_LEVEL_INFO},
    [AUDIT_PASSWORD_CHANGED] = {"password_changed", LOG_LEVEL_INFO},
    [AUDIT_PASSWORD_REJECTED] = {"password_rejected", LOG_LEVEL_INFO},
    [AUDIT_SESSIONS_REVOKED] = {"sessions_revoked", LOG_LEVEL_INFO},
    [AUDIT_TOKEN_REJECTED] = {"token_rejected", LOG_LEVEL_WARN},
    [AUDIT_RATE_LIMITED] = {"rate_limited", LOG_LEVEL_WARN},
    [AUDIT_ACCESS_DENIED] = {"access_denied", LOG_LEVEL_WARN},
    [AUDIT_METRICS_DENIED] = {"metrics_denied", LOG_LEVEL_WARN},
    [AUDIT_CONFIG_REJECTED] = {"config_rejected", LOG_LEVEL_ERROR},
};

const char *audit_event_name(int event)
{
	return event >= 0 && event < AUDIT_EVENTS ? events[event].name : NULL;
}

void audit_note(struct request *req, enum audit_event ev, const struct request_event *fields)
{
	struct request_event *e;

	if (req->nevents >= HTTP_MAX_EVENTS || (unsigned)ev >= AUDIT_EVENTS)
		return;
	e = &req->events[req->nevents++];
	*e = fields ? *fields : (struct request_event){0};
	e->event = (int)ev;
}

static void put_string(struct json_object *o, const char *key, const char *value)
{
	if (value)
		json_object_object_add(o, key, json_object_new_string(value));
}

void audit_emit(const struct request *req, int status, const struct cidr_list *trusted,
                struct metrics_shm *metrics)
{
	char client[NETADDR_TEXT_MAX] = "unknown";
	struct netaddr addr;

	if (req->nevents == 0)
		return;
	if (netaddr_client(req->remote_addr, req->x_forwarded_for, trusted, &addr) != 0 ||
	    netaddr_format(&addr, client, sizeof client) != 0)
		strcpy(client, "unknown");
	for (size_t i = 0; i < req->nevents; i++) {
		const struct request_event *e = &req->events[i];
		int64_t user_id = e->user_id > 0 ? e->user_id : req->user_id;
		struct json_object *line;

		metrics_add_event(metrics, e->event);
		line = log_line_start(events[e->event].level);
		if (!line)
			continue;
		HTTP_JSON_PUT(line, "event", json_object_new_string(events[e->event].name));
		HTTP_JSON_PUT(line, "security", json_object_new_boolean(1));
		HTTP_JSON_PUT(line, "request_id", json_object_new_string(req->request_id));
		HTTP_JSON_PUT(line, "client", json_object_new_string(client));
		put_string(line, "route", req->route_name);
		HTTP_JSON_PUT(line, "status", json_object_new_int(status));
		put_string(line, "reason", e->reason);
		put_string(line, "class", e->rl_class);
		put_string(line, "key", e->key_kind);
		if (user_id > 0)
			json_object_object_add(line, "user_id", json_object_new_int64(user_id));
		if (e->count > 0)
			json_object_object_add(line, "count", json_object_new_int64(e->count));
		log_line_emit(line);
	}
}

void audit_config_rejected(const char *problem)
{
	struct json_object *line = log_line_start(events[AUDIT_CONFIG_REJECTED].level);

	if (!line)
		return;
	HTTP_JSON_PUT(line, "event", json_object_new_string(events[AUDIT_CONFIG_REJECTED].name));
	HTTP_JSON_PUT(line, "security", json_object_new_boolean(1));
	HTTP_JSON_PUT(line, "msg", json_object_new_string(problem));
	log_line_emit(line);
}
