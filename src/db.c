/*
 * db: connection, TLS mode, prepared statements, reconnect.  See db.h.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

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
                   struct db_conninfo_text *text)
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
	snprintf(text->connect_timeout, sizeof text->connect_timeout, "%u",
	         cfg->db_timeout_ms < 2000 ? 2 : (cfg->db_timeout_ms + 999) / 1000);
	ADD("connect_timeout", text->connect_timeout);
	/* A server whose host vanished (power, network) sends no reset: only
	 * TCP can tell.  tcp_user_timeout ends a connection, or a connect, whose
	 * packets go unacknowledged for DB_TIMEOUT_MS, and keepalives find a
	 * dead peer under an idle connection.  libpq also applies both to
	 * PQcancel's own connection, which otherwise blocks in connect() for
	 * the kernel's SYN retries, about two minutes (docs/DEPLOY.md). */
	snprintf(text->tcp_user_timeout, sizeof text->tcp_user_timeout, "%u", cfg->db_timeout_ms);
	ADD("tcp_user_timeout", text->tcp_user_timeout);
	snprintf(text->keepalives_idle, sizeof text->keepalives_idle, "%u",
	         (cfg->db_timeout_ms + 999) / 1000);
	ADD("keepalives", "1");
	ADD("keepalives_idle", text->keepalives_idle);
	ADD("keepalives_interval", "1");
	ADD("keepalives_count", "3");
	/* TLS is the one transport: GSSAPI encryption, which libpq would
	 * otherwise try first whenever a Kerberos ticket is around, is not
	 * governed by sslmode. */
	ADD("gssencmode", "disable");
	/* Every worker writes: given a primary and its standbys (a host
	 * list), libpq skips a standby and a read-only server and connects to
	 * the one that takes writes; after a failover, to the promoted one.
	 * Last, so a URL's own choice cannot override it. */
	ADD("target_session_attrs", "read-write");
	snprintf(text->options, sizeof text->options, "-c statement_timeout=%u %s",
	         cfg->db_timeout_ms, DB_SESSION_OPTIONS);
	ADD("options", text->options);
	ADD("application_name", "chat-fcgi");
	keys[n] = NULL;
	values[n] = NULL;
#undef ADD
	return n;
}

/*
 * Several hosts (a primary and its standbys): libpq tries them in order, but
 * in non-blocking mode its connect_timeout is ours to enforce, and a host
 * that never answers (a machine gone, a packet filter) would eat the whole
 * deadline before the next host is tried.  So each host gets an equal share
 * of what is left of DB_TIMEOUT_MS; when the host being tried overruns its
 * share, the attempt starts again with the host list from the next host on.
 * A host that refuses at once (server stopped) leaves its share to the next.
 */
struct host_lists {
	char host[2048], hostaddr[1024], port[128];
	int n; /* hosts; 1 when nothing to rotate */
};

/* Item i of a comma list, or the list itself when it has one item (one
 * port for every host). */
static void list_item(const char *list, int i, char *out, size_t size)
{
	const char *p = list;

	out[0] = '\0';
	if (!strchr(list, ',')) {
		snprintf(out, size, "%s", list);
		return;
	}
	for (; i > 0 && p; i--) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (p)
		snprintf(out, size, "%.*s", (int)strcspn(p, ","), p);
}

static int count_items(const char *s)
{
	int n = s[0] ? 1 : 0;

	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* The host, hostaddr and port lists in effect: the POSTGRES_* parts, or the
 * URL's (parsed again here, and wiped: the URL holds the password). */
static void host_lists_load(const struct config *cfg, struct host_lists *hl)
{
	memset(hl, 0, sizeof *hl);
	if (cfg->database_url.bytes) {
		PQconninfoOption *opts = PQconninfoParse(cfg->database_url.bytes, NULL);

		for (PQconninfoOption *o = opts; o && o->keyword; o++) {
			if (!o->val)
				continue;
			if (strcmp(o->keyword, "host") == 0)
				snprintf(hl->host, sizeof hl->host, "%s", o->val);
			else if (strcmp(o->keyword, "hostaddr") == 0)
				snprintf(hl->hostaddr, sizeof hl->hostaddr, "%s", o->val);
			else if (strcmp(o->keyword, "port") == 0)
				snprintf(hl->port, sizeof hl->port, "%s", o->val);
			OPENSSL_cleanse(o->val, strlen(o->val));
		}
		if (opts)
			PQconninfoFree(opts);
	} else {
		snprintf(hl->host, sizeof hl->host, "%s", cfg->pg_host ? cfg->pg_host : "");
		snprintf(hl->port, sizeof hl->port, "%s", cfg->pg_port ? cfg->pg_port : "");
	}
	hl->n = count_items(hl->host) > count_items(hl->hostaddr) ? count_items(hl->host)
	                                                          : count_items(hl->hostaddr);
	if (hl->n < 1)
		hl->n = 1;
}

/* Which host of the lists libpq is on (by name and port, from host `from`
 * on), -1 if unknown. */
static int host_index(const struct host_lists *hl, int from, PGconn *c)
{
	const char *h = PQhost(c), *p = PQport(c);
	char item[256], port[16];

	for (int i = from; h && i < hl->n; i++) {
		list_item(hl->host[0] ? hl->host : hl->hostaddr, i, item, sizeof item);
		list_item(hl->port, i, port, sizeof port);
		if (strcmp(item, h) == 0 && (!hl->port[0] || !p || strcmp(port, p) == 0))
			return i;
	}
	return -1;
}

/* The lists from host `from` on, as overriding keywords after the others
 * (with expand_dbname, later keywords win over the URL's). */
static void host_lists_from(const struct host_lists *hl, int from, struct host_lists *out)
{
	const char *src[3] = {hl->host, hl->hostaddr, hl->port};
	char *dst[3] = {out->host, out->hostaddr, out->port};
	size_t size[3] = {sizeof out->host, sizeof out->hostaddr, sizeof out->port};

	for (int k = 0; k < 3; k++) {
		dst[k][0] = '\0';
		if (!strchr(src[k], ',')) {
			snprintf(dst[k], size[k], "%s", src[k]);
			continue;
		}
		for (int i = from; i < hl->n; i++) {
			char item[256];

			list_item(src[k], i, item, sizeof item);
			snprintf(dst[k] + strlen(dst[k]), size[k] - strlen(dst[k]), "%s%s",
			         i > from ? "," : "", item);
		}
	}
	out->n = hl->n - from;
}

static PGconn *connect_start(const struct config *cfg, const struct host_lists *rest)
{
	/* Our pairs, then up to three host-list overrides and the NULL. */
	const char *keys[DB_CONNINFO_MAX + 3], *values[DB_CONNINFO_MAX + 3];
	struct db_conninfo_text text = {0};
	size_t n = db_conninfo(cfg, keys, values, DB_CONNINFO_MAX, &text);

	if (rest) {
		if (rest->host[0]) {
			keys[n] = "host";
			values[n++] = rest->host;
		}
		if (rest->hostaddr[0]) {
			keys[n] = "hostaddr";
			values[n++] = rest->hostaddr;
		}
		if (rest->port[0]) {
			keys[n] = "port";
			values[n++] = rest->port;
		}
		keys[n] = NULL;
		values[n] = NULL;
	}
	return PQconnectStartParams(keys, values, 1);
}

/* libpq's blocking connect only knows whole seconds; poll ourselves so no
 * request waits on the database longer than DB_TIMEOUT_MS in all, and no
 * host keeps the next one from being tried (see struct host_lists). */
static PGconn *connect_with_deadline(const struct config *cfg)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	uint64_t start = util_now_ns();
	uint64_t deadline = start + (uint64_t)cfg->db_timeout_ms * 1000000u;
	uint64_t host_deadline;
	struct host_lists hl, rest;
	int base = 0, cur = 0; /* first host of this attempt; host being tried */
	PGconn *c;

	host_lists_load(cfg, &hl);
	c = connect_start(cfg, NULL);
	host_deadline = start + (deadline - start) / (uint64_t)hl.n;
	if (!c || PQstatus(c) == CONNECTION_BAD)
		return c;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = {.fd = PQsocket(c),
		                     .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		uint64_t now = util_now_ns(), limit;
		int r, i;

		if (now >= deadline)
			break;
		if (now >= host_deadline && base + cur + 1 < hl.n) {
			/* This host overran its share: on with the next ones. */
			char line[256];

			snprintf(line, sizeof line, "%s:%s", PQhost(c) ? PQhost(c) : "?",
			         PQport(c) ? PQport(c) : "?");
			base += cur + 1;
			cur = 0;
			log_event(LOG_LEVEL_WARN, "db_connect",
			          "host %s: no answer within its share of %u ms, trying the next",
			          line, cfg->db_timeout_ms);
			PQfinish(c);
			host_lists_from(&hl, base, &rest);
			c = connect_start(cfg, &rest);
			st = PGRES_POLLING_WRITING;
			host_deadline = now + (deadline - now) / (uint64_t)(hl.n - base);
			if (!c || PQstatus(c) == CONNECTION_BAD)
				return c;
			continue;
		}
		/* The nearer deadline; one already past (the last host's share
		 * is the rest) must not become a huge or negative timeout. */
		limit = host_deadline < deadline ? host_deadline : deadline;
		if (limit <= now)
			limit = deadline;
		r = poll(&pfd, 1, (int)((limit - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0)
			continue; /* a deadline: checked at the top */
		st = PQconnectPoll(c);
		/* libpq moved on to the next host by itself (refused, standby):
		 * that host gets an equal share of what is left. */
		if (hl.n > 1 && st != PGRES_POLLING_FAILED && (i = host_index(&hl, base, c)) >= 0 &&
		    i != base + cur) {
			cur = i - base;
			now = util_now_ns();
			if (base + cur < hl.n && now < deadline)
				host_deadline =
				    now + (deadline - now) / (uint64_t)(hl.n - base - cur);
		}
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

/* A failed connect names every host it tried, one per line: all of them,
 * joined by "; " (with a host list the first line is only the first host's
 * reason, e.g. "refused", not why the standby or the new primary failed).
 * Tabs of libpq's hint lines become spaces. */
static void connect_lines(const char *msg, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = msg ? msg : ""; *p && o + 1 < len; p++) {
		if (*p == '\n') {
			if (p[1] == '\0')
				break;
			if (o + 3 >= len)
				break;
			out[o++] = ';';
			out[o++] = ' ';
		} else {
			out[o++] = *p == '\t' ? ' ' : *p;
		}
	}
	out[o] = '\0';
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

/*
 * An idle connection whose server went away (stopped, crashed, failed over)
 * still says CONNECTION_OK until it is used; a write sent on it fails and
 * cannot be retried (it may have committed).  The server's goodbye (its
 * FATAL message, or the end of the stream) makes the socket readable while
 * we are idle, so one poll() without waiting tells, and the request
 * reconnects first instead of answering 503.  A host that vanished without
 * a word is not seen here: that costs one 503.
 */
static bool idle_connection_lost(PGconn *c)
{
	struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};

	if (pfd.fd < 0)
		return true;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	/* Read what is there (libpq keeps notices and parameter changes);
	 * the end of the stream or an error leaves the status BAD. */
	return !PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK;
}

enum db_status db_ensure(struct db *db)
{
	char line[256], reasons[768];

	if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
		if (!idle_connection_lost(db->conn))
			return DB_OK;
		one_line(PQerrorMessage(db->conn), line, sizeof line);
		log_event(LOG_LEVEL_WARN, "db_connect", "connection lost while idle: %s", line);
		db->retry_at_ns = 0;
	}
	db_close(db);
	if (util_now_ns() < db->retry_at_ns)
		return DB_UNAVAILABLE;

	db->conn = connect_with_deadline(db->cfg);
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		connect_lines(db->conn ? PQerrorMessage(db->conn) : "timed out", reasons,
		              sizeof reasons);
		log_event(LOG_LEVEL_ERROR, "db_connect", "cannot connect: %s (retry in %u ms)",
		          reasons, db->backoff_ms ? db->backoff_ms * 2 : BACKOFF_FIRST_MS);
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
	/* The host says which server took us: after a failover, the new
	 * primary. */
	log_event(LOG_LEVEL_INFO, "db_connect", "connected to %s:%s (tls %s%s%s)", PQhost(db->conn),
	          PQport(db->conn), PQsslInUse(db->conn) ? "on" : "off",
	          PQsslInUse(db->conn) ? ", " : "",
	          PQsslInUse(db->conn) ? PQsslAttribute(db->conn, "protocol") : "");
	return DB_OK;
}

/* 25006 read_only_sql_transaction: our connection is to a server that no
 * longer takes writes (an old primary back as a standby, or fenced with
 * default_transaction_read_only).  Nothing was written; the connection must
 * go, so the next connect looks for the primary (target_session_attrs). */
static bool is_read_only(const char *state)
{
	return state && strcmp(state, "25006") == 0;
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
	    strncmp(state, "57P", 3) == 0 || strcmp(state, "53300") == 0 || is_read_only(state))
		return DB_UNAVAILABLE;
	return DB_FAILED;
}

/* How long past DB_TIMEOUT_MS we wait for an answer: statement_timeout
 * normally answers first (57014, 503); this only catches what it does not
 * cover. */
#define EXEC_GRACE_MS 1000

/*
 * PQexecPrepared with a deadline.  statement_timeout does not cover a
 * commit waiting for a synchronous standby (measured: an INSERT with
 * statement_timeout 1 s still waited 5 s and on, wait_event SyncRep): with
 * the standby gone, every write would hold its worker for good.  Returns
 * the last result as PQexec would, or NULL with *timed_out set.
 */
static PGresult *exec_with_deadline(struct db *db, const struct db_statement *stmt, int nparams,
                                    const char *const *values, bool *timed_out)
{
	PGconn *c = db->conn;
	uint64_t deadline =
	    util_now_ns() + ((uint64_t)db->cfg->db_timeout_ms + EXEC_GRACE_MS) * 1000000u;
	PGresult *last = NULL, *r;

	*timed_out = false;
	if (!PQsendQueryPrepared(c, stmt->name, nparams, values, NULL, NULL, 0))
		return NULL;
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
		uint64_t now;
		int n;

		if (!PQisBusy(c) || PQstatus(c) == CONNECTION_BAD) {
			r = PQgetResult(c);
			if (!r)
				return last;
			PQclear(last);
			last = r;
			continue;
		}
		now = util_now_ns();
		if (now >= deadline || pfd.fd < 0) {
			*timed_out = true;
			PQclear(last);
			return NULL;
		}
		n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
		if (n < 0 && errno != EINTR) {
			*timed_out = true;
			PQclear(last);
			return NULL;
		}
		if (n > 0)
			PQconsumeInput(c); /* a failure leaves the status BAD */
	}
}

/* The statement got no answer in time: cancel it, so its backend does not
 * stay behind (waiting for a standby that may never come), and drop the
 * connection.  The client gets 503: a commit that happened locally
 * meanwhile is not acknowledged (docs/DEPLOY.md, "PostgreSQL failover").
 * PQcancel blocks on its own connect; the server did answer our connect a
 * moment ago, so that is a local round trip. */
static void abandon_statement(struct db *db, const struct db_statement *stmt)
{
	PGcancel *cancel = PQgetCancel(db->conn);
	char err[256] = "";

	if (cancel) {
		PQcancel(cancel, err, sizeof err);
		PQfreeCancel(cancel);
	}
	log_event(LOG_LEVEL_WARN, "db_error",
	          "%s: no answer within %u ms (a synchronous standby missing?): cancelled, "
	          "connection dropped",
	          stmt->name, db->cfg->db_timeout_ms + EXEC_GRACE_MS);
	db_close(db);
	db->retry_at_ns = 0;
}

PGresult *db_exec(struct db *db, const struct db_statement *stmt, int nparams,
                  const char *const *values, enum db_status *status)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool was_connected = db->conn && PQstatus(db->conn) == CONNECTION_OK;
		bool timed_out;
		PGresult *r;
		ExecStatusType es;
		char line[256];

		*status = db_ensure(db);
		if (*status != DB_OK)
			return NULL;
		r = exec_with_deadline(db, stmt, nparams, values, &timed_out);
		if (timed_out) {
			db->errors++;
			abandon_statement(db, stmt);
			*status = DB_UNAVAILABLE;
			return NULL;
		}
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
		if (is_read_only(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL)) {
			PQclear(r);
			db_close(db);
			db->retry_at_ns = 0;
			return NULL;
		}
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
