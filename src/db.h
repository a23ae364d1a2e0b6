/*
 * db: the worker's one PostgreSQL connection.
 *
 * The connection is opened lazily on the first request that needs it (never
 * before the web server forked us), with the TLS mode of the configuration,
 * a connect deadline and statement_timeout of DB_TIMEOUT_MS, and a fixed
 * search_path.  Every statement the worker may run is registered up front as
 * a named constant and prepared once per connection; no SQL text is ever
 * built at run time.  After a failure the connection is dropped and retried
 * with exponential back-off; while it is down, callers get DB_UNAVAILABLE at
 * once (the request answers 503) instead of waiting.
 */
#ifndef CHAT_DB_H
#define CHAT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct config;

struct db_statement {
	const char *name;
	const char *sql;
	/* Safe to run again on a fresh connection if the old one turned out
	 * dead: true only for statements that change nothing. */
	bool read_only;
};

enum db_status {
	DB_OK = 0,
	DB_UNAVAILABLE,      /* no connection, connection lost, or timed out: 503 */
	DB_UNIQUE_VIOLATION, /* SQLSTATE 23505 */
	DB_FAILED,           /* anything else: a bug, 500 */
};

#define DB_MAX_STATEMENT_SETS 8

struct db {
	PGconn *conn;
	const struct config *cfg;
	const struct db_statement *sets[DB_MAX_STATEMENT_SETS];
	size_t set_len[DB_MAX_STATEMENT_SETS];
	size_t nsets;
	uint64_t retry_at_ns; /* monotonic; no connect attempt before this */
	unsigned backoff_ms;
	/* Counters for metrics. */
	uint64_t connects;
	uint64_t connect_failures;
	uint64_t errors;
};

void db_init(struct db *db, const struct config *cfg);
/* Register statements (a static array) to prepare on every connection. */
int db_add_statements(struct db *db, const struct db_statement *stmts, size_t n);
void db_close(struct db *db);

/* Connect now if not connected and the back-off allows it. */
enum db_status db_ensure(struct db *db);

/*
 * Run the prepared statement `name` with text parameters (NULL = SQL NULL).
 * Returns the result on DB_OK (caller PQclear()s it), else NULL with *status
 * saying why.  A broken connection is closed here.
 */
PGresult *db_exec(struct db *db, const struct db_statement *stmt, int nparams,
                  const char *const *values, enum db_status *status);

/*
 * Session settings of every connection (libpq "options"), besides
 * statement_timeout: a fixed search_path, so no other schema can shadow our
 * tables.  The benchmarks give pgbench the same settings.
 */
#define DB_SESSION_OPTIONS "-c search_path=chat"

/* The values db_conninfo() computes, kept by the caller as long as the
 * arrays are in use. */
struct db_conninfo_text {
	char connect_timeout[16];
	char tcp_user_timeout[16];
	char keepalives_idle[16];
	char options[128];
};

/* Room for every pair db_conninfo() gives, and its NULL. */
#define DB_CONNINFO_MAX 24

/* Build libpq's keyword/value arrays from the configuration (exposed for
 * chat-admin, which connects the same way).  Returns the number of pairs
 * (at most max - 1); the arrays are NULL-terminated and point into cfg,
 * static storage or *text. */
size_t db_conninfo(const struct config *cfg, const char **keys, const char **values, size_t max,
                   struct db_conninfo_text *text);

#endif
