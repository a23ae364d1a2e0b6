/*
 * router: the route table.  Maps method + path to a handler, says what body
 * the route takes, whether it needs a bearer token, and its rate-limit class.
 * Path patterns are literal segments and "{id}", which matches only a
 * positive decimal int64 without leading zeros; anything else is no match,
 * so a bad id is a 404 like any unknown path.
 */
#ifndef CHAT_ROUTER_H
#define CHAT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "limit.h"

struct worker;

typedef void (*route_handler)(struct worker *w, struct request *req, struct response *res);

enum route_body { ROUTE_BODY_NONE, ROUTE_BODY_JSON, ROUTE_BODY_JSON_OR_FORM };

struct route {
	const char *method;
	const char *pattern;
	route_handler handler;
	enum route_body body;
	bool needs_token;
	enum limit_class limit; /* applied before the handler; LIMIT_NONE: none */
	const char *name;       /* stable label for logs and metrics */
};

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

/* The table, for metrics: routes are numbered 0 .. router_count() - 1. */
size_t router_count(void);
const struct route *router_at(size_t i);

/*
 * Find the route for method + path.  On ROUTER_FOUND, *route and
 * *route_index are set and the "{id}" values are stored in ids[] in order.
 * On ROUTER_METHOD_NOT_ALLOWED, allow (size allow_len) receives the
 * comma-separated methods of the path and *route_index names the path's
 * first route (so metrics count the 405 there).
 */
enum router_result router_match(const char *method, const char *path, const struct route **route,
                                int *route_index, int64_t ids[HTTP_MAX_PATH_IDS], char *allow,
                                size_t allow_len);

#endif
