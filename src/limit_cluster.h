/*
 * limit_cluster: the rate-limit tier shared by every host, in PostgreSQL
 * (RATE_LIMIT_SCOPE=cluster; docs/RATELIMIT.md, "The cluster tier").
 *
 * The same GCRA as ratelimit.h, one row per (class, key) in the UNLOGGED
 * table chat.rate_limits (sql/004_rate_limits.sql), decided by one
 * statement on the database's clock: INSERT ... ON CONFLICT DO UPDATE ...
 * WHERE tat <= now + tau RETURNING.  The row lock serialises the decisions
 * of every worker of every host, as the compare-and-swap does for the
 * workers of one host, so the guarantee of ratelimit.h holds across hosts.
 *
 * It runs behind the shared-memory tier (limit.c asks the segment first,
 * so a flood is turned away without a query), as its own round trip: the
 * class is applied before the handler, and the handler may not need the
 * database at all in the same way (docs/RATELIMIT.md says why it is not
 * folded into the handlers' statements).
 *
 * Keys are never stored as given: a row holds the first 16 bytes of
 * HMAC-SHA-256 keyed by SECRET_KEY over the class and the key, so the
 * table names no address, email or user.
 */
#ifndef CHAT_LIMIT_CLUSTER_H
#define CHAT_LIMIT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "ratelimit.h"

/* A key as bytea text input: "\x" and 32 hex digits. */
#define LIMIT_CLUSTER_KEY_TEXT 35

/* How long after its replenishment an idle key's row may be deleted: more
 * than any statement may take (statement_timeout = DB_TIMEOUT_MS, at most
 * 600 s), so no
 * decision in flight ever read its clock before a row it would have found
 * was deleted (the eviction race of docs/RATELIMIT.md). */
#define LIMIT_CLUSTER_EXPIRE_MARGIN_MS 660000
/* Each worker offers to sweep at most this often; the first to come after
 * LIMIT_CLUSTER_SWEEP_EVERY_MS of the cluster's time takes the turn. */
#define LIMIT_CLUSTER_SWEEP_EVERY_MS 10000
/* Rows deleted by one sweep at most, so one sweep stays short. */
#define LIMIT_CLUSTER_SWEEP_BATCH 20000

/* One worker's handle: its connection and when it next offers to sweep. */
struct limit_cluster {
	struct db *db;
	const struct secret *secret; /* SECRET_KEY: keys the key hash */
	uint64_t sweep_at_ns;        /* monotonic */
};

/* The statements every connection prepares in cluster scope. */
const struct db_statement *limit_cluster_statements(size_t *n);

/*
 * The stored form of `key` in class class_id: HMAC-SHA-256 keyed by secret
 * over "chat-fcgi rate limit v1", the class and the key, first 16 bytes, as
 * bytea text.  0, or -1 (no secret, or libcrypto failed).
 */
int limit_cluster_key(const struct secret *secret, uint8_t class_id, const void *key, size_t keylen,
                      char out[LIMIT_CLUSTER_KEY_TEXT]);

/*
 * The header values of one decision under policy p (limit > 0): admitted
 * or not, the key's TAT after it and the database's clock, both in
 * milliseconds since the epoch.  Same arithmetic as ratelimit.c's.
 */
void limit_cluster_result(const struct rate_policy *p, bool admitted, int64_t tat_ms,
                          int64_t now_ms, struct rl_result *out);

/*
 * Count one request of key in class class_id under p (limit > 0) in the
 * shared table.  DB_OK with *out filled (allowed or not); otherwise the
 * database could not decide (DB_UNAVAILABLE: answer 503; DB_FAILED: 500)
 * and nothing may be admitted.  Offers a sweep of expired rows now and then.
 */
enum db_status limit_cluster_check(struct limit_cluster *lc, const struct rate_policy *p,
                                   uint8_t class_id, const void *key, size_t keylen,
                                   struct rl_result *out);

/*
 * chat-admin ratelimit reset in cluster scope: delete key's row of class
 * class_id over connection c (any role with DELETE on chat.rate_limits).
 * Returns the number of rows deleted (0 or 1), or -1 with a one-line
 * reason in err.
 */
int limit_cluster_forget(PGconn *c, const struct secret *secret, uint8_t class_id, const void *key,
                         size_t keylen, char *err, size_t errlen);

#endif
