/*
 * limit_cluster: GCRA in one PostgreSQL statement.  See limit_cluster.h.
 */
#include "limit_cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "limit.h"
#include "log.h"
#include "util.h"

#define MS_PER_S 1000

/* The database's clock in milliseconds since the epoch.  clock_timestamp(),
 * not now(): now() is when the transaction began, before the statement
 * waited for the key's row lock; clock_timestamp() read while the lock is
 * held orders the clock like the decisions themselves (docs/RATELIMIT.md). */
#define DB_NOW_MS "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

/* The row the sweeps take turns on (class -1 is no limit's).  Upserted, so
 * the table emptied by a crash (UNLOGGED) gets it back. */
#define SWEEP_CLASS "-1"
#define SWEEP_KEY   "'\\x00000000000000000000000000000000'::bytea"

enum { SQL_RL_CHECK, SQL_RL_SWEEP };

/*
 * $1 class, $2 key, $3 T (ms), $4 tau (ms).  A new key is admitted with
 * TAT = now + T; an existing one iff TAT <= now + tau, then TAT =
 * max(TAT, now) + T.  The WHERE makes a refusal write nothing (no dead row
 * in a flood); the second branch then reads the TAT for Retry-After.  That
 * read uses the statement's snapshot: a row another statement created
 * after it began is not seen and the row count is 0 (limit_cluster_check
 * then refuses with T as the wait).
 */
static const struct db_statement statements[] = {
    [SQL_RL_CHECK] = {"rl_check",
                      "WITH up AS ("
                      " INSERT INTO rate_limits AS r (class, key, tat)"
                      " VALUES ($1::smallint, $2::bytea, " DB_NOW_MS " + $3::bigint)"
                      " ON CONFLICT (class, key) DO UPDATE"
                      " SET tat = greatest(r.tat, " DB_NOW_MS ") + $3::bigint"
                      " WHERE r.tat <= " DB_NOW_MS " + $4::bigint"
                      " RETURNING r.tat, " DB_NOW_MS " AS now)"
                      " SELECT true, tat, now FROM up"
                      " UNION ALL"
                      " SELECT false, tat, " DB_NOW_MS " FROM rate_limits"
                      " WHERE class = $1::smallint AND key = $2::bytea"
                      " AND NOT EXISTS (SELECT FROM up)",
                      false},
    /* $1 sweep interval, $2 expiry margin, $3 batch (ms, ms, rows).  The
     * sentinel's TAT is the cluster's next sweep time: one worker of all
     * wins it, the others' UPDATE matches nothing and the scan below never
     * runs (a one-time filter).  Rows are deleted by ctid from one
     * snapshot: a row updated meanwhile has a new ctid and stays. */
    [SQL_RL_SWEEP] = {"rl_sweep",
                      "WITH turn AS ("
                      " INSERT INTO rate_limits AS r (class, key, tat)"
                      " VALUES (" SWEEP_CLASS ", " SWEEP_KEY ", " DB_NOW_MS " + $1::bigint)"
                      " ON CONFLICT (class, key) DO UPDATE SET tat = " DB_NOW_MS " + $1::bigint"
                      " WHERE r.tat <= " DB_NOW_MS " RETURNING 1)"
                      " DELETE FROM rate_limits WHERE ctid = ANY (ARRAY("
                      " SELECT ctid FROM rate_limits"
                      " WHERE EXISTS (SELECT FROM turn) AND class >= 0"
                      " AND tat < " DB_NOW_MS " - $2::bigint LIMIT $3::bigint))",
                      false},
};

const struct db_statement *limit_cluster_statements(size_t *n)
{
	*n = sizeof statements / sizeof statements[0];
	return statements;
}

int limit_cluster_key(const struct secret *secret, uint8_t class_id, const void *key, size_t keylen,
                      char out[LIMIT_CLUSTER_KEY_TEXT])
{
	/* A fixed label, so these MACs never equal a token's (token.c signs
	 * with the same secret), then the class, then the key. */
	static const char label[] = "chat-fcgi rate limit v1";
	unsigned char msg[sizeof label + 1 + LIMIT_KEY_MAX], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *ok;

	if (!secret || !secret->bytes || secret->len == 0 || secret->len > INT32_MAX ||
	    keylen > LIMIT_KEY_MAX)
		return -1;
	memcpy(msg, label, sizeof label); /* with its NUL: the label ends there */
	msg[sizeof label] = class_id;
	memcpy(msg + sizeof label + 1, key, keylen);
	ok = HMAC(EVP_sha256(), secret->bytes, (int)secret->len, msg, sizeof label + 1 + keylen, md,
	          &mdlen);
	OPENSSL_cleanse(msg, sizeof label + 1 + keylen);
	if (!ok || mdlen < 16)
		return -1;
	out[0] = '\\';
	out[1] = 'x';
	util_hex(md, 16, out + 2);
	OPENSSL_cleanse(md, sizeof md);
	return 0;
}

/* T and tau of a policy, as ratelimit.c derives them. */
static void gcra_of(const struct rate_policy *p, int64_t *t, int64_t *tau)
{
	int64_t period_ms = (int64_t)p->period_s * MS_PER_S;

	*t = (period_ms + p->limit - 1) / p->limit;
	*tau = (int64_t)(p->limit - 1) * *t;
}

static uint32_t ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : (uint32_t)((ms + MS_PER_S - 1) / MS_PER_S);
}

void limit_cluster_result(const struct rate_policy *p, bool admitted, int64_t tat_ms,
                          int64_t now_ms, struct rl_result *out)
{
	int64_t t, tau;

	gcra_of(p, &t, &tau);
	memset(out, 0, sizeof *out);
	out->limit = p->limit;
	out->reset_s = ceil_s(tat_ms - now_ms);
	if (admitted) {
		out->allowed = true;
		out->outcome = RL_ADMITTED;
		out->remaining =
		    tat_ms <= now_ms + tau ? (uint32_t)((now_ms + tau - tat_ms) / t + 1) : 0;
		return;
	}
	out->allowed = false;
	out->outcome = RL_LIMITED;
	out->retry_after_s = tat_ms - tau - now_ms > 0 ? ceil_s(tat_ms - tau - now_ms) : 1;
}

/* Now and then, one sweep of expired rows (limit_cluster.h).  Its failure
 * is logged and otherwise ignored: the decision was already made. */
static void maybe_sweep(struct limit_cluster *lc)
{
	char every[24], margin[24], batch[24];
	const char *params[3] = {every, margin, batch};
	uint64_t now = util_now_ns();
	enum db_status st;
	PGresult *r;

	if (now < lc->sweep_at_ns)
		return;
	/* Spread the workers' offers a little (pid): they all start together. */
	lc->sweep_at_ns =
	    now + ((uint64_t)LIMIT_CLUSTER_SWEEP_EVERY_MS + (uint64_t)(getpid() % 1000)) * 1000000u;
	snprintf(every, sizeof every, "%d", LIMIT_CLUSTER_SWEEP_EVERY_MS);
	snprintf(margin, sizeof margin, "%d", LIMIT_CLUSTER_EXPIRE_MARGIN_MS);
	snprintf(batch, sizeof batch, "%d", LIMIT_CLUSTER_SWEEP_BATCH);
	r = db_exec(lc->db, &statements[SQL_RL_SWEEP], 3, params, &st);
	if (!r)
		return;
	if (strcmp(PQcmdTuples(r), "0") != 0)
		log_event(LOG_LEVEL_DEBUG, "ratelimit", "cluster sweep deleted %s idle rows",
		          PQcmdTuples(r));
	PQclear(r);
}

enum db_status limit_cluster_check(struct limit_cluster *lc, const struct rate_policy *p,
                                   uint8_t class_id, const void *key, size_t keylen,
                                   struct rl_result *out)
{
	char cls[8], k[LIMIT_CLUSTER_KEY_TEXT], t_text[24], tau_text[24];
	const char *params[4] = {cls, k, t_text, tau_text};
	int64_t t, tau;
	enum db_status st;
	PGresult *r;

	if (!lc || !lc->db || p->limit == 0 || p->period_s == 0 ||
	    limit_cluster_key(lc->secret, class_id, key, keylen, k) != 0)
		return DB_FAILED;
	gcra_of(p, &t, &tau);
	snprintf(cls, sizeof cls, "%u", (unsigned)class_id);
	snprintf(t_text, sizeof t_text, "%" PRId64, t);
	snprintf(tau_text, sizeof tau_text, "%" PRId64, tau);
	r = db_exec(lc->db, &statements[SQL_RL_CHECK], 4, params, &st);
	if (!r)
		return st;
	if (PQntuples(r) == 1 && PQnfields(r) == 3) {
		limit_cluster_result(p, PQgetvalue(r, 0, 0)[0] == 't',
		                     strtoll(PQgetvalue(r, 0, 1), NULL, 10),
		                     strtoll(PQgetvalue(r, 0, 2), NULL, 10), out);
	} else {
		/* Refused by a row this statement's snapshot cannot see (see
		 * the statement): wait one emission interval. */
		limit_cluster_result(p, false, t + tau, 0, out);
	}
	PQclear(r);
	maybe_sweep(lc);
	return DB_OK;
}

int limit_cluster_forget(PGconn *c, const struct secret *secret, uint8_t class_id, const void *key,
                         size_t keylen, char *err, size_t errlen)
{
	char cls[8], k[LIMIT_CLUSTER_KEY_TEXT];
	const char *params[2] = {cls, k};
	PGresult *r;
	int n = -1;

	if (limit_cluster_key(secret, class_id, key, keylen, k) != 0) {
		snprintf(err, errlen, "cannot derive the stored key (SECRET_KEY?)");
		return -1;
	}
	snprintf(cls, sizeof cls, "%u", (unsigned)class_id);
	r = PQexecParams(
	    c, "DELETE FROM chat.rate_limits WHERE class = $1::smallint AND key = $2::bytea", 2,
	    NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		n = atoi(PQcmdTuples(r));
	else
		snprintf(err, errlen, "%.*s", (int)strcspn(PQresultErrorMessage(r), "\n"),
		         PQresultErrorMessage(r));
	PQclear(r);
	return n;
}
