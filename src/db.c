/*
 * db: connection, TLS mode, prepared statements, reconnect.  See db.h.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000

void db_init(struct db *db, const struct config *cfg)
{
	memset(db, 0, sizeof *db);
	db->cfg = cfg;
}

int db_add_statements(struct db *db, const struct db_statement *stmts, size_t n)
{
	if (db->nsets == DB_MAX_STATEMENT_SETS)
		return -1;
	db->sets[db->nsets] = stmts;
	db->set_len[db->nsets] = n;
	db->nsets++;
	return 0;
}

void db_close(struct db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
}

size_t db_conninfo(const struct config *cfg, const char **keys, const char **values, size_t max,
                   char connect_timeout[16], char options[128])
{
	size_t n = 0;

#define ADD(k, v)                                                                                  \
	do {                                                                                       \
		if ((v) && n + 1 < max) {                                                          \
			keys[n] = (k);                                                             \
			values[n] = (v);                                                           \
			n++;                                                                       \
		}                                                                                  \
	} while (0)

	/* With expand_dbname, a URL given as dbname is expanded first and every
	 * later keyword overrides it: our TLS settings always win. */
	if (cfg->database_url.bytes) {
		ADD("dbname", cfg->database_url.bytes);
	} else {
		ADD("host", cfg->pg_host);
		ADD("port", cfg->pg_port);
		ADD("dbname", cfg->pg_db);
		ADD("user", cfg->pg_user);
		ADD("password", cfg->pg_password.bytes);
	}
	ADD("sslmode", cfg->pg_sslmode);
	ADD("sslrootcert", cfg->pg_sslrootcert);
	/* libpq's own timeout is in whole seconds, at least 2; db_connect()
	 * enforces the millisecond deadline, this covers chat-admin. */
	snprintf(connect_timeout, 16, "%u",
	         cfg->db_timeout_ms < 2000 ? 2 : (cfg->db_timeout_ms + 999) / 1000);
	ADD("connect_timeout", connect_timeout);
	/* TLS is the one transport: GSSAPI encryption, which libpq would
	 * otherwise try first whenever a Kerberos ticket is around, is not
	 * governed by sslmode. */
	ADD("gssencmode", "disable");
	snprintf(options, 128, "-c statement_timeout=%u %s", cfg->db_timeout_ms,
	         DB_SESSION_OPTIONS);
	ADD("options", options);
	ADD("application_name", "chat-fcgi");
	keys[n] = NULL;
	values[n] = NULL;
#undef ADD
	return n;
}

/* libpq's blocking connect only knows whole seconds; poll ourselves so no
 * request waits on a dead host longer than DB_TIMEOUT_MS. */
static PGconn *connect_with_deadline(const struct config *cfg)
{
	const char *keys[16], *values[16];
	char timeout[16], options[128];
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	uint64_t deadline = util_now_ns() + (uint64_t)cfg->db_timeout_ms * 1000000u;
	PGconn *c;

	db_conninfo(cfg, keys, values, 16, timeout, options);
	c = PQconnectStartParams(keys, values, 1);
	if (!c || PQstatus(c) == CONNECTION_BAD)
		return c;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = {.fd = PQsocket(c),
		                     .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		uint64_t now = util_now_ns();
		int r;

		if (now >= deadline)
			break;
		r = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0)
			break; /* deadline */
		st = PQconnectPoll(c);
	}
	if (st != PGRES_POLLING_OK) {
		if (st != PGRES_POLLING_FAILED)
			log_event(LOG_LEVEL_WARN, "db_connect", "connect timed out after %u ms",
			          cfg->db_timeout_ms);
		/* Make the status BAD so callers see one failure shape. */
		if (PQstatus(c) != CONNECTION_BAD) {
			PQfinish(c);
			return NULL;
		}
	}
	return c;
}

static void schedule_retry(struct db *db)
{
	db->backoff_ms = db->backoff_ms ? db->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (db->backoff_ms > BACKOFF_MAX_MS)
		db->backoff_ms = BACKOFF_MAX_MS;
	db->retry_at_ns = util_now_ns() + (uint64_t)db->backoff_ms * 1000000u;
}

/* First line of a libpq message, without the trailing newline. */
static void one_line(const char *msg, char *out, size_t len)
{
	size_t n = strcspn(msg ? msg : "", "\n");

	if (n >= len)
		n = len - 1;
	memcpy(out, msg ? msg : "", n);
	out[n] = '\0';
}

static int prepare_all(struct db *db)
{
	for (size_t s = 0; s < db->nsets; s++) {
		for (size_t i = 0; i < db->set_len[s]; i++) {
			const struct db_statement *st = &db->sets[s][i];
			PGresult *r = PQprepare(db->conn, st->name, st->sql, 0, NULL);
			bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			char line[256];

			if (!ok) {
				one_line(PQresultErrorMessage(r), line, sizeof line);
				log_event(LOG_LEVEL_ERROR, "db_prepare",
				          "statement %s: %s (are migrations applied?)", st->name,
				          line);
			}
			PQclear(r);
			if (!ok)
				return -1;
		}
	}
	return 0;
}

enum db_status db_ensure(struct db *db)
{
	char line[256];

	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		return DB_OK;
	db_close(db);
	if (util_now_ns() < db->retry_at_ns)
		return DB_UNAVAILABLE;

	db->conn = connect_with_deadline(db->cfg);
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		one_line(db->conn ? PQerrorMessage(db->conn) : "timed out", line, sizeof line);
		log_event(LOG_LEVEL_ERROR, "db_connect", "cannot connect: %s (retry in %u ms)",
		          line, db->backoff_ms ? db->backoff_ms * 2 : BACKOFF_FIRST_MS);
		db_close(db);
		db->connect_failures++;
		schedule_retry(db);
		return DB_UNAVAILABLE;
	}
	if (prepare_all(db) != 0) {
		db_close(db);
		db->connect_failures++;
		schedule_retry(db);
		return DB_UNAVAILABLE;
	}
	db->connects++;
	db->backoff_ms = 0;
	db->retry_at_ns = 0;
	log_event(LOG_LEVEL_INFO, "db_connect", "connected (tls %s%s%s)",
	          PQsslInUse(db->conn) ? "on" : "off", PQsslInUse(db->conn) ? ", " : "",
	          PQsslInUse(db->conn) ? PQsslAttribute(db->conn, "protocol") : "");
	return DB_OK;
}

static enum db_status classify(PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!state)
		return DB_UNAVAILABLE;
	if (strcmp(state, "23505") == 0)
		return DB_UNIQUE_VIOLATION;
	/* statement_timeout, connection exceptions, server shutting down, too
	 * many connections: the database is not there for us right now. */
	if (strcmp(state, "57014") == 0 || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0 || strcmp(state, "53300") == 0)
		return DB_UNAVAILABLE;
	return DB_FAILED;
}

PGresult *db_exec(struct db *db, const struct db_statement *stmt, int nparams,
                  const char *const *values, enum db_status *status)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool was_connected = db->conn && PQstatus(db->conn) == CONNECTION_OK;
		PGresult *r;
		ExecStatusType es;
		char line[256];

		*status = db_ensure(db);
		if (*status != DB_OK)
			return NULL;
		r = PQexecPrepared(db->conn, stmt->name, nparams, values, NULL, NULL, 0);
		es = PQresultStatus(r);
		if (r && (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK)) {
			*status = DB_OK;
			return r;
		}
		*status = classify(r);
		db->errors++;
		one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn), line, sizeof line);
		/* The primary message only: DETAIL lines may quote stored values. */
		log_event(*status == DB_FAILED ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, "db_error",
		          "%s: %s", stmt->name, line);
		PQclear(r);
		if (PQstatus(db->conn) != CONNECTION_OK) {
			*status = DB_UNAVAILABLE;
			db_close(db);
			/* A connection that died while idle (server restart) is
			 * retried at once; a read can safely run again on it. */
			db->retry_at_ns = 0;
			if (was_connected && stmt->read_only && attempt == 0)
				continue;
		}
		return NULL;
	}
	return NULL;
}
