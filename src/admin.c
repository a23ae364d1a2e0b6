/*
 * chat-admin: operator commands that run beside the workers.
 *
 *   chat-admin check-config           validate the environment, print every problem
 *   chat-admin migrate [DIR]          apply pending sql/NNN_*.sql migrations
 *   chat-admin ratelimit stats        occupancy and rejections of the shared table
 *   chat-admin ratelimit reset C:KEY  forget one key of class C (auth, login, chat, read);
 *                                     in cluster scope its row in PostgreSQL too
 *   chat-admin ratelimit unlink       remove the segment (restart the workers after)
 *
 * migrate takes a session-level advisory lock so two deploys cannot migrate
 * at once, applies each pending file in its own transaction together with
 * its row in schema_migrations, and stops at the first failure.  Run it as
 * the owner role; workers use a DML-only role.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config.h"
#include "db.h"
#include "limit.h"
#include "limit_cluster.h"
#include "ratelimit.h"
#include "segment.h"
#include "util.h"
#include "version_git.h"

#ifndef CHAT_SQL_DIR
#define CHAT_SQL_DIR "sql"
#endif

/* pg_advisory_lock key: "chatfcgi" read as a number, unique to us. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_lock(7161349163806263657)"

extern char **environ;

static void print_usage(FILE *out)
{
	fputs("usage: chat-admin check-config\n"
	      "       chat-admin migrate [DIR]   (default " CHAT_SQL_DIR ")\n"
	      "       chat-admin ratelimit stats\n"
	      "       chat-admin ratelimit reset CLASS:KEY   (auth:ADDRESS, login:EMAIL, "
	      "chat:USER_ID, "
	      "read:USER_ID)\n"
	      "       chat-admin ratelimit unlink\n"
	      "       chat-admin --help | --version\n"
	      "The configuration comes from the environment, as for chat-fcgi; the ratelimit\n"
	      "commands need only RATE_LIMIT_SHM, the segment's name (default /chat-fcgi).\n",
	      out);
}

/* A wrong command line: usage to stderr, EX_USAGE. */
static int usage(void)
{
	print_usage(stderr);
	return 64;
}

/* Prints the first problem, or all of them; always -1. */
static int print_problems(struct config_problems *problems, bool print_all)
{
	for (size_t i = 0; i < problems->count && (print_all || i == 0); i++)
		fprintf(stderr, "config: %s\n", problems->lines[i]);
	if (!print_all && problems->count > 1)
		fprintf(stderr, "config: ... %zu problems in all (chat-admin check-config)\n",
		        problems->count);
	config_problems_free(problems);
	return -1;
}

static int load_config(struct config *cfg, bool print_all)
{
	struct config_problems problems = {0};

	if (config_load(cfg, environ, &problems) == 0)
		return 0;
	return print_problems(&problems, print_all);
}

/* The ratelimit commands: RATE_LIMIT_* only (config_load_rate_limits). */
static int load_rate_limit_config(struct config *cfg)
{
	struct config_problems problems = {0};

	if (config_load_rate_limits(cfg, environ, &problems) == 0)
		return 0;
	return print_problems(&problems, false);
}

static int cmd_check_config(void)
{
	struct config cfg;
	int rc = 0;

	if (load_config(&cfg, true) != 0)
		rc = CONFIG_EXIT_STATUS;
	else
		printf("configuration is valid (APP_MODE=%s, sslmode=%s)\n",
		       config_mode_name(cfg.mode), cfg.pg_sslmode);
	config_free(&cfg);
	return rc;
}

static bool migration_name(const char *name)
{
	size_t n = strlen(name);

	return n > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
	       name[2] >= '0' && name[2] <= '9' && name[3] == '_' &&
	       strcmp(name + n - 4, ".sql") == 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	char chunk[8192];
	size_t n;

	if (!f)
		return NULL;
	mem = open_memstream(&buf, &len);
	while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(f);
	if (!mem || fclose(mem) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool command_ok(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "migrate: %s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static int apply_one(PGconn *c, const char *dir, const char *name, bool *applied)
{
	const char *version[1] = {name};
	char path[4096];
	char *sql;
	PGresult *r;
	bool done;

	r = PQexecParams(c, "SELECT 1 FROM chat.schema_migrations WHERE version = $1", 1, NULL,
	                 version, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "migrate: %s: %s", name, PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	done = PQntuples(r) == 1;
	PQclear(r);
	*applied = false;
	if (done)
		return 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	sql = read_file(path);
	if (!sql) {
		fprintf(stderr, "migrate: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* The file and its schema_migrations row commit together or not at all.
	 * Migration files are ours, shipped with the release: never input. */
	if (!command_ok(c, "BEGIN", name) || !command_ok(c, sql, name)) {
		free(sql);
		command_ok(c, "ROLLBACK", "rollback");
		return -1;
	}
	free(sql);
	r = PQexecParams(c, "INSERT INTO chat.schema_migrations (version) VALUES ($1)", 1, NULL,
	                 version, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "migrate: %s: %s", name, PQresultErrorMessage(r));
		PQclear(r);
		command_ok(c, "ROLLBACK", "rollback");
		return -1;
	}
	PQclear(r);
	if (!command_ok(c, "COMMIT", name))
		return -1;
	*applied = true;
	return 0;
}

static int cmd_migrate(const char *dir)
{
	struct config cfg;
	const char *keys[DB_CONNINFO_MAX], *values[DB_CONNINFO_MAX];
	struct db_conninfo_text text = {0};
	char **names = NULL;
	size_t count = 0, applied_count = 0;
	struct dirent *de;
	PGconn *c = NULL;
	DIR *d;
	int rc = 1;

	if (load_config(&cfg, false) != 0)
		return CONFIG_EXIT_STATUS;
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "migrate: cannot open %s: %s\n", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		char **grown;
		if (!migration_name(de->d_name))
			continue;
		grown = realloc(names, (count + 1) * sizeof *names);
		if (!grown)
			break;
		names = grown;
		names[count++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof *names, by_name);

	db_conninfo(&cfg, keys, values, DB_CONNINFO_MAX, &text);
	c = PQconnectdbParams(keys, values, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "migrate: cannot connect: %s", PQerrorMessage(c));
		goto out;
	}
	/* DDL may legitimately run longer than a request may wait. */
	if (!command_ok(c, "SET statement_timeout = 0", "settings") ||
	    !command_ok(c, "SET client_min_messages = warning", "settings") ||
	    !command_ok(c, MIGRATE_LOCK_SQL, "advisory lock") ||
	    !command_ok(c, "CREATE SCHEMA IF NOT EXISTS chat", "schema") ||
	    !command_ok(c,
	                "CREATE TABLE IF NOT EXISTS chat.schema_migrations ("
	                " version text PRIMARY KEY,"
	                " applied_at timestamptz NOT NULL DEFAULT now())",
	                "schema_migrations"))
		goto out;
	for (size_t i = 0; i < count; i++) {
		bool applied;
		if (apply_one(c, dir, names[i], &applied) != 0) {
			fprintf(stderr, "migrate: stopped at %s; nothing of it was applied\n",
			        names[i]);
			goto out;
		}
		if (applied) {
			printf("applied %s\n", names[i]);
			applied_count++;
		}
	}
	printf("migrations: %zu applied, %zu already present\n", applied_count,
	       count - applied_count);
	rc = 0;
out:
	if (c)
		PQfinish(c); /* ends the session: releases the advisory lock */
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	config_free(&cfg);
	return rc;
}

static int cmd_ratelimit_stats(struct rl_table *t, const char *name)
{
	struct rl_stats st;

	rl_stats(t, util_now_ns(), &st);
	printf("segment %s: %llu slots, %llu in use (%.2f%%), created by pid %d\n", name,
	       (unsigned long long)st.slots, (unsigned long long)st.in_use,
	       st.slots ? 100.0 * (double)st.in_use / (double)st.slots : 0.0, (int)st.creator_pid);
	printf("evictions %llu, cas_retries %llu\n", (unsigned long long)st.evictions,
	       (unsigned long long)st.cas_retries);
	printf("%-6s %12s %12s %12s\n", "class", "checks", "rejected", "table_full");
	for (size_t c = 0; c < LIMIT_CLASSES; c++)
		printf("%-6s %12llu %12llu %12llu\n", limit_class_name((enum limit_class)c),
		       (unsigned long long)st.classes[c].checks,
		       (unsigned long long)st.classes[c].rejected,
		       (unsigned long long)st.classes[c].table_full);
	return 0;
}

/* In cluster scope, the key's row in PostgreSQL: shared by every host, so
 * one reset there is enough; -1 after printing why.  This part needs the
 * whole configuration (the database, and SECRET_KEY, which keys the stored
 * form of the key), unlike the segment's commands. */
static int forget_cluster_row(enum limit_class c, const char *key)
{
	const char *keys[DB_CONNINFO_MAX], *values[DB_CONNINFO_MAX];
	struct db_conninfo_text text = {0};
	char err[256];
	struct config cfg;
	PGconn *conn;
	int n;

	if (load_config(&cfg, false) != 0)
		return -1;
	db_conninfo(&cfg, keys, values, DB_CONNINFO_MAX, &text);
	conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "ratelimit: cannot connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		config_free(&cfg);
		return -1;
	}
	n = limit_cluster_forget(conn, &cfg.secret_key, (uint8_t)c, key, strlen(key), err,
	                         sizeof err);
	if (n < 0)
		fprintf(stderr, "ratelimit: cluster row: %s\n", err);
	PQfinish(conn);
	config_free(&cfg);
	return n;
}

/* "auth:192.0.2.1" → class auth, key "4:192.0.2.1"; "login:Bob@X.io" →
 * "bob@x.io": the key the worker uses (limit_key_from_text). */
static int cmd_ratelimit_reset(const struct config *cfg, struct rl_table *t, const char *arg)
{
	const char *colon = strchr(arg, ':');
	char key[LIMIT_KEY_MAX];
	enum limit_class c;
	int n, rows = 0;

	if (!colon)
		return usage();
	if (limit_class_parse(arg, (size_t)(colon - arg), &c) != 0) {
		fprintf(stderr, "ratelimit: unknown class in %s\n", arg);
		return 64;
	}
	if (limit_key_from_text(c, colon + 1, key, sizeof key) != 0) {
		fprintf(stderr, "ratelimit: %s is not %s\n", colon + 1,
		        c == LIMIT_CLASS_AUTH ? "an address" : "a valid key");
		return 64;
	}
	n = rl_reset_key(t, (uint8_t)c, key, strlen(key));
	if (n < 0) {
		fprintf(stderr, "ratelimit: cannot reset %s\n", arg);
		return 1;
	}
	if (cfg->rate_limit_scope == RATE_LIMIT_SCOPE_CLUSTER &&
	    (rows = forget_cluster_row(c, key)) < 0)
		return 1;
	printf("reset %s:%s (%d entr%s cleared", limit_class_name(c), key, n, n == 1 ? "y" : "ies");
	/* Each host has its own segment: the operator resets it on each. */
	if (cfg->rate_limit_scope == RATE_LIMIT_SCOPE_CLUSTER)
		printf("; %d cluster row%s deleted; reset it on every host's segment too", rows,
		       rows == 1 ? "" : "s");
	printf(")\n");
	return 0;
}

static int cmd_ratelimit(int argc, char **argv)
{
	struct config cfg;
	struct rl_table *t = NULL;
	char err[RL_ERR_LEN];
	int rc;

	if (load_rate_limit_config(&cfg) != 0)
		return CONFIG_EXIT_STATUS;
	if (argc == 1 && strcmp(argv[0], "unlink") == 0) {
		rc = seg_unlink(cfg.rate_limit_shm, err, sizeof err) == 0 ? 0 : 1;
		if (rc)
			fprintf(stderr, "ratelimit: %s\n", err);
		else
			printf("removed %s; restart the workers\n", cfg.rate_limit_shm);
		config_free(&cfg);
		return rc;
	}
	/* Attach only: creating a segment here could give the workers one of
	 * another size than they expect. */
	if (rl_attach(cfg.rate_limit_shm, &t, err, sizeof err) != 0) {
		fprintf(stderr, "ratelimit: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (argc == 1 && strcmp(argv[0], "stats") == 0)
		rc = cmd_ratelimit_stats(t, cfg.rate_limit_shm);
	else if (argc == 2 && strcmp(argv[0], "reset") == 0)
		rc = cmd_ratelimit_reset(&cfg, t, argv[1]);
	else
		rc = usage();
	rl_close(t);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		print_usage(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("chat-admin %s%s%s\n", PACKAGE_VERSION, CHAT_GIT_DESCRIBE[0] ? " git " : "",
		       CHAT_GIT_DESCRIBE);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "check-config") == 0 && argc == 2)
		return cmd_check_config();
	if (strcmp(argv[1], "migrate") == 0 && argc <= 3)
		return cmd_migrate(argc == 3 ? argv[2] : CHAT_SQL_DIR);
	if (strcmp(argv[1], "ratelimit") == 0 && argc >= 3)
		return cmd_ratelimit(argc - 2, argv + 2);
	return usage();
}
