/*
 * routes: print the router's table, one route a line, for the OpenAPI drift
 * test (tests/web/check-openapi.mjs compares it with openapi.yaml both
 * ways).  The table itself is the source, through router_count() and
 * router_at(), so a route added to src/router.c without its description in
 * the document fails that test.
 *
 * Each line has five tab-separated fields:
 *
 *   METHOD  PATTERN  TOKEN  BODY  LIMIT
 *
 * TOKEN is "token" (a bearer token is required) or "public"; BODY is
 * "none", "json" or "json-or-form"; LIMIT is the rate-limit class "none",
 * "auth", "chat" or "read".  A route name follows as a sixth field, for
 * messages only.
 */
#include <stdio.h>

#include "router.h"

static const char *body_name(enum route_body b)
{
	switch (b) {
	case ROUTE_BODY_NONE:
		return "none";
	case ROUTE_BODY_JSON:
		return "json";
	case ROUTE_BODY_JSON_OR_FORM:
		return "json-or-form";
	}
	return NULL;
}

static const char *limit_name(enum limit_class l)
{
	/* The document's names for the classes a route can carry; the login
	 * class is applied inside auth_login, on top of auth. */
	switch (l) {
	case LIMIT_NONE:
		return "none";
	case LIMIT_CLASS_AUTH:
		return "auth";
	case LIMIT_CLASS_CHAT:
		return "chat";
	case LIMIT_CLASS_READ:
		return "read";
	case LIMIT_CLASS_LOGIN:
		break;
	}
	return NULL;
}

int main(void)
{
	for (size_t i = 0; i < router_count(); i++) {
		const struct route *r = router_at(i);
		const char *body = body_name(r->body), *limit = limit_name(r->limit);

		/* A kind this program does not know yet must not print as a
		 * known one: fail, so the drift test says so. */
		if (!body || !limit) {
			fprintf(stderr, "routes: %s %s: unknown body kind or limit class\n",
			        r->method, r->pattern);
			return 1;
		}
		printf("%s\t%s\t%s\t%s\t%s\t%s\n", r->method, r->pattern,
		       r->needs_token ? "token" : "public", body, limit, r->name);
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
