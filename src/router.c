/*
 * router: the route table and path matching.  The table is the API at a
 * glance; keep it in the order of SPEC §2.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "chat.h"
#include "health.h"
#include "metrics.h"
#include "util.h"

static const struct route routes[] = {
    {"GET", "/healthz", health_healthz, ROUTE_BODY_NONE, false, LIMIT_NONE, "healthz"},
    {"GET", "/readyz", health_readyz, ROUTE_BODY_NONE, false, LIMIT_NONE, "readyz"},
    {"GET", "/metrics", metrics_handler, ROUTE_BODY_NONE, false, LIMIT_NONE, "metrics"},

    {"POST", "/auth/register", auth_register, ROUTE_BODY_JSON, false, LIMIT_CLASS_AUTH,
     "auth_register"},
    /* Also LIMIT_CLASS_LOGIN, keyed by the email only the body names:
     * auth_login applies it (limit_apply) before its first query. */
    {"POST", "/auth/login", auth_login, ROUTE_BODY_JSON_OR_FORM, false, LIMIT_CLASS_AUTH,
     "auth_login"},
    {"POST", "/auth/logout", auth_logout, ROUTE_BODY_NONE, true, LIMIT_NONE, "auth_logout"},
    {"GET", "/auth/me", auth_me, ROUTE_BODY_NONE, true, LIMIT_CLASS_READ, "auth_me"},
    {"POST", "/auth/password", auth_password, ROUTE_BODY_JSON, true, LIMIT_CLASS_AUTH,
     "auth_password"},

    {"POST", "/chat/conversations", chat_conversation_create, ROUTE_BODY_JSON, true,
     LIMIT_CLASS_CHAT, "chat_conversation_create"},
    {"GET", "/chat/conversations", chat_conversation_list, ROUTE_BODY_NONE, true, LIMIT_CLASS_READ,
     "chat_conversation_list"},
    {"GET", "/chat/conversations/{id}", chat_conversation_get, ROUTE_BODY_NONE, true,
     LIMIT_CLASS_READ, "chat_conversation_get"},
    {"POST", "/chat/conversations/{id}/members", chat_member_add, ROUTE_BODY_JSON, true,
     LIMIT_CLASS_CHAT, "chat_member_add"},
    /* The owner removes a member; a member removes themself (leaves). */
    {"DELETE", "/chat/conversations/{id}/members/{id}", chat_member_remove, ROUTE_BODY_NONE, true,
     LIMIT_CLASS_CHAT, "chat_member_remove"},
    {"POST", "/chat/conversations/{id}/messages", chat_message_post, ROUTE_BODY_JSON, true,
     LIMIT_CLASS_CHAT, "chat_message_post"},
    {"GET", "/chat/conversations/{id}/messages", chat_message_list, ROUTE_BODY_NONE, true,
     LIMIT_CLASS_READ, "chat_message_list"},
    {"DELETE", "/chat/conversations/{id}/messages/{id}", chat_message_delete, ROUTE_BODY_NONE, true,
     LIMIT_CLASS_CHAT, "chat_message_delete"},
    {"POST", "/chat/conversations/{id}/read", chat_read_mark, ROUTE_BODY_JSON, true,
     LIMIT_CLASS_CHAT, "chat_read_mark"},
    /* One poll for every conversation (docs/CLIENT.md, the polling contract). */
    {"GET", "/chat/updates", chat_updates, ROUTE_BODY_NONE, true, LIMIT_CLASS_READ, "chat_updates"},
};

size_t router_count(void)
{
	return sizeof routes / sizeof routes[0];
}

const struct route *router_at(size_t i)
{
	return &routes[i];
}

static bool path_matches(const char *pattern, const char *path, int64_t ids[HTTP_MAX_PATH_IDS])
{
	int nids = 0;

	while (*pattern && *path) {
		if (strncmp(pattern, "{id}", 4) == 0) {
			size_t n = strcspn(path, "/");
			if (nids == HTTP_MAX_PATH_IDS || util_parse_id(path, n, &ids[nids]) != 0)
				return false;
			nids++;
			pattern += 4;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

enum router_result router_match(const char *method, const char *path, const struct route **route,
                                int *route_index, int64_t ids[HTTP_MAX_PATH_IDS], char *allow,
                                size_t allow_len)
{
	bool path_known = false;
	size_t used = 0;

	if (allow_len)
		allow[0] = '\0';
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		int64_t tmp[HTTP_MAX_PATH_IDS] = {0};

		if (!path_matches(routes[i].pattern, path, tmp))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			*route = &routes[i];
			*route_index = (int)i;
			memcpy(ids, tmp, sizeof tmp);
			return ROUTER_FOUND;
		}
		/* A 405 is counted on the path's first route. */
		if (!path_known)
			*route_index = (int)i;
		path_known = true;
		if (allow_len > used) {
			int n = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
			                 routes[i].method);
			if (n > 0)
				used += (size_t)n;
		}
	}
	return path_known ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}
