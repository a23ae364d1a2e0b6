/*
 * audit: typed security events, for an operator's SIEM and alerts.
 *
 * A module notes an event where it happens (audit_note); the worker logs
 * every noted event after the answer, one JSON line each beside the request
 * line, and counts it in /metrics (chat_security_events_total{event=...}):
 *
 *   {"ts":…,"level":"warn","pid":…,"event":"login_failed","security":true,
 *    "request_id":…,"client":"203.0.113.7","route":"auth_login",
 *    "status":401,"reason":"wrong_password","user_id":42}
 *
 * "client" is the address the rate limiter keys on (REMOTE_ADDR, or behind
 * TRUSTED_PROXIES the right-most untrusted X-Forwarded-For entry).  Every
 * other value is a fixed word or a number: never an email, password, token,
 * hash or secret, never text from the request.
 */
#ifndef CHAT_AUDIT_H
#define CHAT_AUDIT_H

#include <stdint.h>

#include "http.h"

struct cidr_list;
struct metrics_shm;

/* Names are the "event" values; never renumber (metrics index by them). */
enum audit_event {
	AUDIT_LOGIN_FAILED,      /* reason unknown_email | wrong_password (+ user_id) */
	AUDIT_LOGIN_SUCCEEDED,   /* user_id */
	AUDIT_USER_REGISTERED,   /* user_id */
	AUDIT_PASSWORD_CHANGED,  /* user_id */
	AUDIT_PASSWORD_REJECTED, /* reason common: a new password on the list */
	AUDIT_SESSIONS_REVOKED,  /* reason logout | password_changed, count */
	AUDIT_TOKEN_REJECTED,    /* reason missing | malformed | algorithm |
	                          * bad_signature | expired | bad_claims | revoked */
	AUDIT_RATE_LIMITED,      /* class, key (address | user | email) */
	AUDIT_ACCESS_DENIED,     /* reason owner_only: a member's 403 */
	AUDIT_METRICS_DENIED,    /* /metrics asked from outside METRICS_ALLOW */
	AUDIT_CONFIG_REJECTED,   /* start-up refused; no request, log only */
	AUDIT_EVENTS
};

/* "login_failed", ...; NULL for anything else. */
const char *audit_event_name(int event);

/* Note ev on the request (fields: NULL, or the event's details).  A request
 * has room for HTTP_MAX_EVENTS; more are dropped (none needs more than 2). */
void audit_note(struct request *req, enum audit_event ev, const struct request_event *fields);

/* Log and count the request's events, with its final status (trusted: the
 * TRUSTED_PROXIES list, possibly empty, never NULL). */
void audit_emit(const struct request *req, int status, const struct cidr_list *trusted,
                struct metrics_shm *metrics);

/* The worker refuses to start: one config_rejected line naming the problem
 * (a configuration message never carries a secret's value). */
void audit_config_rejected(const char *problem);

#endif
