/*
 * config: the process environment turned into a validated struct config.
 *
 * Validation happens once, at start-up, and collects every problem instead of
 * stopping at the first, so `chat-admin check-config` can print them all and
 * the worker can refuse to start with one line naming the variable.  A
 * problem message names the variable and the rule it broke; it never quotes
 * the value of a secret.
 *
 * Secrets (SECRET_KEY, SECRET_KEY_PREVIOUS, POSTGRES_PASSWORD, DATABASE_URL)
 * may come from the file named by NAME_FILE instead; both set is an error.
 * A struct config owns every string it points to; config_free() wipes the
 * secrets before freeing them.
 */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

/* sysexits.h EX_CONFIG: what the worker exits with on a bad configuration. */
#define CONFIG_EXIT_STATUS 78

enum app_mode { APP_MODE_DEV, APP_MODE_TEST, APP_MODE_PROD };

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* A secret: bytes plus length, NUL-terminated for libraries that want a C
 * string.  len == 0 and bytes == NULL when unset. */
struct secret {
	char *bytes;
	size_t len;
};

/* "N/period": at most `limit` requests per `period_s` seconds.  limit == 0
 * means the class is off. */
struct rate_policy {
	uint32_t limit;
	uint32_t period_s;
};

/* Hosts in POSTGRES_HOST or DATABASE_URL (a primary and its standbys). */
#define CONFIG_MAX_DB_HOSTS      8
#define CONFIG_MAX_DB_HOSTS_TEXT "8"

/* RATE_LIMIT_SCOPE: where the limits are counted (docs/RATELIMIT.md). */
enum rate_limit_scope {
	RATE_LIMIT_SCOPE_HOST,    /* this host's shared memory only */
	RATE_LIMIT_SCOPE_CLUSTER, /* that, then PostgreSQL, shared by every host */
};

struct config {
	enum app_mode mode;
	enum log_level log_level;

	struct secret secret_key;
	struct secret secret_key_previous; /* optional: key rotation */

	/* Either database_url (a libpq URI or conninfo string) or the
	 * POSTGRES_* parts; never both.  pg_host and pg_port may be libpq's
	 * comma lists (several hosts, one port or one per host), checked to
	 * pair up; so may the URL's. */
	struct secret database_url;
	char *pg_host;
	char *pg_port;
	char *pg_db;
	char *pg_user;
	struct secret pg_password;
	char *pg_sslmode;     /* effective sslmode, always set */
	char *pg_sslrootcert; /* NULL when unset */
	unsigned db_timeout_ms;

	long access_token_ttl; /* seconds */
	unsigned scrypt_log2_n;
	unsigned scrypt_r;
	unsigned scrypt_p;

	struct rate_policy rate_auth;
	struct rate_policy rate_chat;
	struct rate_policy rate_read;
	char *rate_limit_shm; /* POSIX shm name, "/chat-fcgi" */
	uint32_t rate_limit_slots;
	enum rate_limit_scope rate_limit_scope;
	struct cidr_list trusted_proxies;
	struct cidr_list metrics_allow;

	size_t max_body_bytes;

	/* WORKER_SECCOMP: install the system-call filter (src/sandbox.h)
	 * once start-up is done.  Off is for debugging only. */
	bool worker_seccomp;
};

/* Every problem found, one line each, in the order of the table in SPEC §4. */
struct config_problems {
	char **lines;
	size_t count;
};

/*
 * Fill *cfg from envp (a NULL-terminated "NAME=value" array, e.g. environ).
 * Returns 0 when the configuration is valid; -1 otherwise, with every
 * problem appended to *problems and *cfg left safe to config_free().
 */
int config_load(struct config *cfg, char *const *envp, struct config_problems *problems);
/* Only the RATE_LIMIT_* variables; the rest of cfg stays zero. */
int config_load_rate_limits(struct config *cfg, char *const *envp,
                            struct config_problems *problems);
void config_free(struct config *cfg);
void config_problems_free(struct config_problems *problems);

const char *config_mode_name(enum app_mode mode);

#endif
