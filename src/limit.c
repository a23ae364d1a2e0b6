/*
 * limit: the classes, their keys and policies, applying them.  See limit.h.
 */
#include "limit.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "limit_cluster.h"
#include "netaddr.h"
#include "ratelimit.h"
#include "reply.h"
#include "util.h"

_Static_assert(LIMIT_CLASSES <= RL_MAX_CLASSES, "every class has its counters in the table");

enum key_kind { KEY_ADDRESS, KEY_USER, KEY_EMAIL };
static const char *const key_kind_names[] = {"address", "user", "email"};

/* SPEC §3 as a table: the one place that says how each class is keyed
 * and which policy it follows. */
static const struct {
	const char *name;
	enum key_kind key;
	size_t policy; /* offsetof(struct config, ...) */
} classes[LIMIT_CLASSES] = {
    [LIMIT_CLASS_AUTH] = {"auth", KEY_ADDRESS, offsetof(struct config, rate_auth)},
    [LIMIT_CLASS_CHAT] = {"chat", KEY_USER, offsetof(struct config, rate_chat)},
    [LIMIT_CLASS_READ] = {"read", KEY_USER, offsetof(struct config, rate_read)},
    /* Per account too, so guessing one password from many addresses is
     * bounded as well: the same policy as the address. */
    [LIMIT_CLASS_LOGIN] = {"login", KEY_EMAIL, offsetof(struct config, rate_auth)},
};

const char *limit_class_name(enum limit_class c)
{
	return (unsigned)c < LIMIT_CLASSES ? classes[c].name : NULL;
}

int limit_class_parse(const char *name, size_t len, enum limit_class *out)
{
	for (size_t c = 0; c < LIMIT_CLASSES; c++)
		if (strlen(classes[c].name) == len && memcmp(name, classes[c].name, len) == 0) {
			*out = (enum limit_class)c;
			return 0;
		}
	return -1;
}

static const struct rate_policy *policy_of(const struct config *cfg, enum limit_class c)
{
	return (const struct rate_policy *)((const char *)cfg + classes[c].policy);
}

/* Emails are compared case-insensitively (SPEC §2); field_email has
 * lower-cased the worker's already, an operator's may not be. */
static int key_email(const char *email, char *key, size_t len)
{
	size_t n = strlen(email);

	if (n >= len)
		return -1;
	for (size_t i = 0; i <= n; i++)
		key[i] =
		    email[i] >= 'A' && email[i] <= 'Z' ? (char)(email[i] - 'A' + 'a') : email[i];
	return 0;
}

static int key_user(int64_t user_id, char *key, size_t len)
{
	int n = snprintf(key, len, "%lld", (long long)user_id);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

int limit_key(enum limit_class c, const struct request *req, const struct cidr_list *trusted,
              const char *email, char *key, size_t len)
{
	struct netaddr client;

	if ((unsigned)c >= LIMIT_CLASSES)
		return -1;
	switch (classes[c].key) {
	case KEY_ADDRESS:
		/* A client whose address cannot be told shares one key with
		 * every other such client: limited together, never unlimited. */
		if (netaddr_client(req->remote_addr, req->x_forwarded_for, trusted, &client) != 0 ||
		    netaddr_key(&client, key, len) < 0)
			return snprintf(key, len, "unknown") < (int)len ? 0 : -1;
		return 0;
	case KEY_USER:
		return key_user(req->user_id, key, len);
	case KEY_EMAIL:
		return email ? key_email(email, key, len) : -1;
	}
	return -1;
}

int limit_key_from_text(enum limit_class c, const char *text, char *key, size_t len)
{
	struct netaddr a;

	if ((unsigned)c >= LIMIT_CLASSES)
		return -1;
	switch (classes[c].key) {
	case KEY_ADDRESS:
		if (netaddr_parse(text, &a) != 0 || netaddr_key(&a, key, len) < 0)
			return -1;
		return 0;
	case KEY_USER:
		/* As given: a text that is no user id names no entry. */
		return snprintf(key, len, "%s", text) < (int)len ? 0 : -1;
	case KEY_EMAIL:
		return key_email(text, key, len);
	}
	return -1;
}

/* Keep the tightest limit seen for the RateLimit-* headers. */
static void note_limit(struct request *req, const struct rl_result *r)
{
	if (!req->limited || r->remaining < req->limit_remaining) {
		req->limited = true;
		req->limit = r->limit;
		req->limit_remaining = r->remaining;
		req->limit_reset_s = r->reset_s;
	}
}

int limit_apply(struct rl_table *rl, struct limit_cluster *cluster, const struct config *cfg,
                enum limit_class c, const char *email, struct request *req, struct response *res)
{
	const struct rate_policy *policy;
	char key[LIMIT_KEY_MAX];
	struct rl_result r;

	if ((unsigned)c >= LIMIT_CLASSES) {
		reply_internal(res);
		return -1;
	}
	policy = policy_of(cfg, c);
	if (policy->limit == 0)
		return 0;
	if (!rl || limit_key(c, req, &cfg->trusted_proxies, email, key, sizeof key) != 0 ||
	    rl_check(rl, policy, (uint8_t)c, key, strlen(key), util_now_ns(), &r) != 0) {
		/* Cannot happen with a validated policy; never admit blindly. */
		reply_internal(res);
		return -1;
	}
	note_limit(req, &r);
	/* The cluster tier only sees what this host's table admitted: a
	 * flood is refused above without a query. */
	if (r.allowed && cluster) {
		enum db_status st =
		    limit_cluster_check(cluster, policy, (uint8_t)c, key, strlen(key), &r);

		if (st != DB_OK) {
			/* Fail closed: no decision, no admission. */
			reply_db_error(res, st);
			return -1;
		}
		note_limit(req, &r);
	}
	if (r.allowed)
		return 0;
	audit_note(req, AUDIT_RATE_LIMITED,
	           &(struct request_event){.rl_class = classes[c].name,
	                                   .key_kind = key_kind_names[classes[c].key]});
	reply_rate_limited(res, r.retry_after_s);
	return -1;
}

void limit_headers(const struct request *req, struct response *res)
{
	if (!req->limited)
		return;
	http_add_header(res, "RateLimit-Limit", "%u", req->limit);
	http_add_header(res, "RateLimit-Remaining", "%u", req->limit_remaining);
	http_add_header(res, "RateLimit-Reset", "%u", req->limit_reset_s);
}
