/*
 * Unit tests for config: every rule of SPEC §4 with a failing and a passing
 * case, secrets from files, problem collection, and the promise that no
 * problem line ever contains a secret.
 *
 * Each test starts from a valid base environment (DEV or PROD) and overrides
 * or removes single variables, so a failure points at exactly one rule.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"

/* 32 bytes, 30 distinct values, no placeholder word. */
#define GOOD_KEY  "k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3EaU"
#define GOOD_KEY2 "Z3pX8vQm1LwR7tYb5NcK9hJd2FgS6eAu"
/* 18 characters, safe inside a URL without escaping. */
#define GOOD_PW "Xv9-qT4m_Lp2.Rz8wK"

static const char *const prod_base[] = {
    "APP_MODE=PROD",
    "SECRET_KEY=" GOOD_KEY,
    "POSTGRES_PASSWORD=" GOOD_PW,
    NULL,
};

static const char *const test_base[] = {
    "APP_MODE=TEST",
    "SECRET_KEY=" GOOD_KEY,
    "POSTGRES_PASSWORD=" GOOD_PW,
    NULL,
};

static const char *const dev_base[] = {
    "APP_MODE=DEV",
    "SECRET_KEY=dev",
    NULL,
};

static struct config cfg;
static struct config_problems probs;
static char tmpdir[64];
static char paths[8][128];
static size_t npaths;

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&probs, 0, sizeof(probs));
	strcpy(tmpdir, "/tmp/test_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	npaths = 0;
}

static void teardown(void)
{
	config_free(&cfg);
	config_problems_free(&probs);
	for (size_t i = 0; i < npaths; i++) {
		chmod(paths[i], 0600);
		if (unlink(paths[i]) != 0)
			rmdir(paths[i]);
	}
	rmdir(tmpdir);
}

static size_t name_len(const char *entry)
{
	return strcspn(entry, "=");
}

static bool same_name(const char *a, const char *b)
{
	size_t n = name_len(a);

	return n == name_len(b) && memcmp(a, b, n) == 0;
}

/* The sentinel typed as the variadic arguments are read: a bare NULL may be
 * a plain int 0 on some platforms. */
#define END ((const char *)NULL)

/*
 * Loads base with overrides: "NAME=value" replaces or adds NAME, a bare
 * "NAME" removes it.  The list ends with NULL.
 */
static int load_env(const char *const *base, ...) __attribute__((sentinel));

static int load_env(const char *const *base, ...)
{
	const char *over[64];
	char *env[128];
	size_t nover = 0;
	size_t n = 0;
	va_list ap;

	va_start(ap, base);
	for (const char *o; (o = va_arg(ap, const char *)) != NULL;) {
		ck_assert_uint_lt(nover, 64);
		over[nover++] = o;
	}
	va_end(ap);
	for (; *base; base++) {
		bool replaced = false;

		for (size_t i = 0; i < nover; i++)
			replaced = replaced || same_name(*base, over[i]);
		if (!replaced)
			env[n++] = (char *)*base;
	}
	for (size_t i = 0; i < nover; i++)
		if (strchr(over[i], '='))
			env[n++] = (char *)over[i];
	env[n] = NULL;

	config_free(&cfg);
	config_problems_free(&probs);
	return config_load(&cfg, env, &probs);
}

static const char *all_lines(void)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < probs.count && o < sizeof(buf) - 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\n  [%s]", probs.lines[i]);
	return probs.count ? buf : " (none)";
}

/* Number of lines about var (starting "VAR:") that contain needle. */
static size_t problems_about(const char *var, const char *needle)
{
	size_t n = 0;
	size_t vl = strlen(var);

	for (size_t i = 0; i < probs.count; i++) {
		const char *l = probs.lines[i];

		if (strncmp(l, var, vl) == 0 && l[vl] == ':' && (!needle || strstr(l, needle)))
			n++;
	}
	return n;
}

#define assert_ok(rc)                                                                              \
	ck_assert_msg((rc) == 0 && probs.count == 0, "expected a valid config, problems:%s",       \
	              all_lines())

#define assert_problem(rc, var, needle)                                                            \
	do {                                                                                       \
		const char *needle_ = (needle);                                                    \
		ck_assert_msg((rc) == -1, "expected failure for %s", var);                         \
		ck_assert_msg(problems_about(var, needle_) >= 1,                                   \
		              "no problem line about %s mentioning \"%s\"; got:%s", var,           \
		              needle_ ? needle_ : "", all_lines());                                \
	} while (0)

static const char *write_file(const char *name, const void *data, size_t len)
{
	char *path;
	int fd;

	ck_assert_uint_lt(npaths, sizeof(paths) / sizeof(paths[0]));
	path = paths[npaths++];
	snprintf(path, sizeof(paths[0]), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static const char *make_dir(const char *name)
{
	char *path;

	ck_assert_uint_lt(npaths, sizeof(paths) / sizeof(paths[0]));
	path = paths[npaths++];
	snprintf(path, sizeof(paths[0]), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	return path;
}

/* "NAME=value" in a buffer that lives until the end of the test. */
static const char *var(const char *name, const char *value)
{
	static char bufs[16][512];
	static size_t next;
	char *b = bufs[next++ % 16];

	snprintf(b, sizeof(bufs[0]), "%s=%s", name, value);
	return b;
}

START_TEST(defaults_dev)
{
	char *const only_key[] = {"SECRET_KEY=x", NULL};

	ck_assert_int_eq(config_load(&cfg, only_key, &probs), 0);
	ck_assert_uint_eq(probs.count, 0);
	ck_assert_int_eq(cfg.mode, APP_MODE_DEV);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(cfg.secret_key.len, 1);
	ck_assert_str_eq(cfg.secret_key.bytes, "x");
	ck_assert_ptr_null(cfg.secret_key_previous.bytes);
	ck_assert_ptr_null(cfg.database_url.bytes);
	ck_assert_str_eq(cfg.pg_host, "localhost");
	ck_assert_str_eq(cfg.pg_port, "5432");
	ck_assert_str_eq(cfg.pg_db, "chat");
	ck_assert_str_eq(cfg.pg_user, "chat");
	ck_assert_ptr_null(cfg.pg_password.bytes);
	ck_assert_str_eq(cfg.pg_sslmode, "prefer");
	ck_assert_ptr_null(cfg.pg_sslrootcert);
	ck_assert_uint_eq(cfg.db_timeout_ms, 5000);
	ck_assert_int_eq(cfg.access_token_ttl, 3600);
	ck_assert_uint_eq(cfg.scrypt_log2_n, 15);
	ck_assert_uint_eq(cfg.scrypt_r, 8);
	ck_assert_uint_eq(cfg.scrypt_p, 3);
	ck_assert_uint_eq(cfg.rate_auth.limit, 5);
	ck_assert_uint_eq(cfg.rate_auth.period_s, 60);
	ck_assert_uint_eq(cfg.rate_chat.limit, 5);
	ck_assert_uint_eq(cfg.rate_chat.period_s, 60);
	ck_assert_uint_eq(cfg.rate_read.limit, 60);
	ck_assert_uint_eq(cfg.rate_read.period_s, 60);
	ck_assert_str_eq(cfg.rate_limit_shm, "/chat-fcgi");
	ck_assert_uint_eq(cfg.rate_limit_slots, 65536);
	ck_assert_int_eq(cfg.rate_limit_scope, RATE_LIMIT_SCOPE_HOST);
	ck_assert_uint_eq(cfg.trusted_proxies.count, 0);
	ck_assert_uint_eq(cfg.metrics_allow.count, 2);
	ck_assert_uint_eq(cfg.max_body_bytes, 65536);
}
END_TEST

START_TEST(valid_prod_and_test)
{
	assert_ok(load_env(prod_base, END));
	ck_assert_int_eq(cfg.mode, APP_MODE_PROD);
	ck_assert_str_eq(cfg.pg_sslmode, "require");
	ck_assert_uint_eq(cfg.pg_password.len, strlen(GOOD_PW));
	ck_assert_str_eq(cfg.pg_password.bytes, GOOD_PW);
	ck_assert_str_eq(cfg.secret_key.bytes, GOOD_KEY);

	assert_ok(load_env(test_base, END));
	ck_assert_int_eq(cfg.mode, APP_MODE_TEST);
	ck_assert_str_eq(cfg.pg_sslmode, "require");
}
END_TEST

START_TEST(app_mode)
{
	static const char *const bad[] = {"prod", "PRODUCTION", "", "Dev", " PROD", "PROD\n"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_problem(load_env(prod_base, var("APP_MODE", bad[i]), END), "APP_MODE",
		               "DEV, TEST or PROD");
	/* An unknown mode is checked as PROD: a weak key is reported too. */
	assert_problem(load_env(dev_base, "APP_MODE=prod", END), "SECRET_KEY", "32");

	assert_ok(load_env(dev_base, "APP_MODE", END));
	ck_assert_int_eq(cfg.mode, APP_MODE_DEV);
	assert_ok(load_env(prod_base, "APP_MODE=TEST", END));
	ck_assert_int_eq(cfg.mode, APP_MODE_TEST);
}
END_TEST

START_TEST(secret_key_required)
{
	assert_problem(load_env(dev_base, "SECRET_KEY", END), "SECRET_KEY", "required");
	assert_problem(load_env(dev_base, "SECRET_KEY=", END), "SECRET_KEY", "required");
	assert_problem(load_env(prod_base, "SECRET_KEY", END), "SECRET_KEY", "required");
	assert_ok(load_env(dev_base, END));
}
END_TEST

START_TEST(secret_key_short)
{
	/* 31 bytes. */
	assert_problem(load_env(prod_base, "SECRET_KEY=k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3Ea", END),
	               "SECRET_KEY", "32 bytes");
	ck_assert_uint_eq(problems_about("SECRET_KEY", NULL), 1);
	assert_problem(load_env(test_base, "SECRET_KEY=k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3Ea", END),
	               "SECRET_KEY", "32 bytes");
	assert_ok(load_env(prod_base, "SECRET_KEY=" GOOD_KEY, END));
	/* DEV takes anything non-empty. */
	assert_ok(load_env(dev_base, "SECRET_KEY=short", END));
}
END_TEST

START_TEST(secret_key_placeholder)
{
	static const char *const bad[] = {
	    /* 40 bytes, varied, but a template value. */
	    "k7Qw9ZpL2xVb8NcR4mTf6HsJchangemeGd3EaU01",
	    "CHANGEME-k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3Ea",
	    "your-secret-key-here-k7Qw9ZpL2xVb8NcR4mT",
	    "k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3EaU_Example",
	    "placeholder-k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd",
	    "k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3EaU-change_me",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_problem(load_env(prod_base, var("SECRET_KEY", bad[i]), END), "SECRET_KEY",
		               "placeholder");
		ck_assert_msg(problems_about("SECRET_KEY", NULL) == 1, "more than one rule:%s",
		              all_lines());
	}
	/* Exact placeholders, any case. */
	assert_problem(load_env(test_base, "SECRET_KEY=SuperSecret", END), "SECRET_KEY",
	               "placeholder");
	assert_problem(load_env(test_base, "SECRET_KEY=secret", END), "SECRET_KEY", "placeholder");
	assert_ok(load_env(dev_base, "SECRET_KEY=changeme", END));
}
END_TEST

START_TEST(secret_key_variety)
{
	/* 32 x 'a'. */
	assert_problem(load_env(prod_base, "SECRET_KEY=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", END),
	               "SECRET_KEY", "distinct");
	ck_assert_uint_eq(problems_about("SECRET_KEY", NULL), 1);
	/* 9 distinct values, 36 bytes. */
	assert_problem(load_env(prod_base, "SECRET_KEY=123456789123456789123456789123456789", END),
	               "SECRET_KEY", "10 distinct");
	/* 10 distinct values, 40 bytes. */
	assert_ok(load_env(prod_base, "SECRET_KEY=0123456789012345678901234567890123456789", END));
}
END_TEST

START_TEST(secret_key_binary_from_file)
{
	unsigned char key[48];
	const char *path;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 37);
	key[5] = 0;
	path = write_file("binary", key, sizeof(key));
	assert_ok(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", path), END));
	ck_assert_uint_eq(cfg.secret_key.len, sizeof(key));
	ck_assert_mem_eq(cfg.secret_key.bytes, key, sizeof(key));
}
END_TEST

START_TEST(secret_key_previous)
{
	assert_ok(load_env(prod_base, "SECRET_KEY_PREVIOUS=" GOOD_KEY2, END));
	ck_assert_str_eq(cfg.secret_key_previous.bytes, GOOD_KEY2);

	assert_problem(load_env(prod_base, "SECRET_KEY_PREVIOUS=" GOOD_KEY, END),
	               "SECRET_KEY_PREVIOUS", "differ");
	assert_problem(load_env(dev_base, "SECRET_KEY_PREVIOUS=dev", END), "SECRET_KEY_PREVIOUS",
	               "differ");
	assert_problem(load_env(prod_base, "SECRET_KEY_PREVIOUS=short", END), "SECRET_KEY_PREVIOUS",
	               "32 bytes");
	assert_problem(
	    load_env(prod_base, "SECRET_KEY_PREVIOUS=changeme-k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd", END),
	    "SECRET_KEY_PREVIOUS", "placeholder");
	assert_problem(load_env(prod_base, "SECRET_KEY_PREVIOUS=", END), "SECRET_KEY_PREVIOUS",
	               "empty");
	/* Same length, one byte apart: not "equal". */
	assert_ok(load_env(prod_base, "SECRET_KEY_PREVIOUS=k7Qw9ZpL2xVb8NcR4mTf6HsJ1yGd3EaV", END));
	assert_ok(load_env(dev_base, "SECRET_KEY_PREVIOUS=old", END));
}
END_TEST

START_TEST(secret_both_forms)
{
	const char *path = write_file("key", GOOD_KEY, strlen(GOOD_KEY));

	assert_problem(load_env(prod_base, var("SECRET_KEY_FILE", path), END), "SECRET_KEY",
	               "SECRET_KEY_FILE");
	assert_problem(load_env(prod_base, var("POSTGRES_PASSWORD_FILE", path), END),
	               "POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE");
	assert_problem(load_env(prod_base, var("SECRET_KEY_PREVIOUS", GOOD_KEY2),
	                        var("SECRET_KEY_PREVIOUS_FILE", path), END),
	               "SECRET_KEY_PREVIOUS", "both");
	assert_ok(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", path), END));
}
END_TEST

START_TEST(secret_file_missing)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/does-not-exist", tmpdir);
	assert_problem(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", path), END),
	               "SECRET_KEY_FILE", path);
	ck_assert_uint_eq(problems_about("SECRET_KEY_FILE", strerror(ENOENT)), 1);
	/* One line: no "SECRET_KEY: required" on top of it. */
	ck_assert_msg(probs.count == 1, "%s", all_lines());
	assert_problem(load_env(prod_base, "SECRET_KEY", "SECRET_KEY_FILE=", END),
	               "SECRET_KEY_FILE", "cannot");
}
END_TEST

START_TEST(secret_file_unreadable)
{
	const char *path;

	if (geteuid() == 0) {
		/* root reads a mode-000 file; a directory fails for everyone. */
		path = make_dir("key.d");
	} else {
		path = write_file("key000", GOOD_KEY, strlen(GOOD_KEY));
		ck_assert_int_eq(chmod(path, 0), 0);
	}
	assert_problem(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", path), END),
	               "SECRET_KEY_FILE", path);
	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD", var("POSTGRES_PASSWORD_FILE", path), END),
	    "POSTGRES_PASSWORD_FILE", geteuid() == 0 ? strerror(EISDIR) : strerror(EACCES));
}
END_TEST

START_TEST(secret_file_newline)
{
	const char *lf = write_file("lf", GOOD_KEY "\n", strlen(GOOD_KEY) + 1);
	const char *crlf = write_file("crlf", GOOD_PW "\r\n", strlen(GOOD_PW) + 2);
	const char *two = write_file("two", GOOD_KEY "\n\n", strlen(GOOD_KEY) + 2);

	assert_ok(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", lf), "POSTGRES_PASSWORD",
	                   var("POSTGRES_PASSWORD_FILE", crlf), END));
	ck_assert_uint_eq(cfg.secret_key.len, strlen(GOOD_KEY));
	ck_assert_str_eq(cfg.secret_key.bytes, GOOD_KEY);
	ck_assert_str_eq(cfg.pg_password.bytes, GOOD_PW);

	/* Only one newline is removed. */
	assert_ok(load_env(prod_base, "SECRET_KEY", var("SECRET_KEY_FILE", two), END));
	ck_assert_uint_eq(cfg.secret_key.len, strlen(GOOD_KEY) + 1);
	ck_assert_str_eq(cfg.secret_key.bytes, GOOD_KEY "\n");
}
END_TEST

START_TEST(secret_file_empty_or_big)
{
	const char *empty = write_file("empty", "", 0);
	const char *nl = write_file("nl", "\n", 1);
	static char big[70000];
	const char *bigf;

	memset(big, 'x', sizeof(big));
	bigf = write_file("big", big, sizeof(big));
	assert_problem(load_env(dev_base, "SECRET_KEY", var("SECRET_KEY_FILE", empty), END),
	               "SECRET_KEY", "required");
	assert_problem(load_env(dev_base, "SECRET_KEY", var("SECRET_KEY_FILE", nl), END),
	               "SECRET_KEY", "required");
	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD", var("POSTGRES_PASSWORD_FILE", empty), END),
	    "POSTGRES_PASSWORD", "required");
	assert_problem(load_env(dev_base, "SECRET_KEY", var("SECRET_KEY_FILE", bigf), END),
	               "SECRET_KEY_FILE", "65536");
	/* Exactly at the cap is fine. */
	bigf = write_file("cap", big, 65536);
	assert_ok(load_env(dev_base, "SECRET_KEY", var("SECRET_KEY_FILE", bigf), END));
	ck_assert_uint_eq(cfg.secret_key.len, 65536);
}
END_TEST

START_TEST(db_password_nul_byte)
{
	const char *path = write_file("nul", "Xv9-qT4m\0Lp2.Rz8wK", 18);

	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD", var("POSTGRES_PASSWORD_FILE", path), END),
	    "POSTGRES_PASSWORD_FILE", "NUL");
}
END_TEST

START_TEST(db_password_weak)
{
	/* Required in TEST/PROD, optional in DEV. */
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD", END), "POSTGRES_PASSWORD",
	               "required");
	assert_problem(load_env(test_base, "POSTGRES_PASSWORD=", END), "POSTGRES_PASSWORD",
	               "required");
	assert_ok(load_env(dev_base, END));
	assert_ok(load_env(dev_base, "POSTGRES_PASSWORD=postgres", END));

	/* 15 characters. */
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD=Xv9-qT4m_Lp2.R", END),
	               "POSTGRES_PASSWORD", "16");
	/* 16 characters, 15 of them two-byte: counted as characters. */
	assert_ok(load_env(prod_base,
	                   "POSTGRES_PASSWORD=\xc3\xa9\xc3\xa8\xc3\xa0\xc3\xb9\xc3\xa7"
	                   "\xc3\xab\xc3\xaf\xc3\xb4\xc3\xa2\xc3\xaa\xc3\xae\xc3\xbb"
	                   "\xc3\xb6\xc3\xbc\xc3\xa4"
	                   "1",
	                   END));
	assert_problem(load_env(prod_base,
	                        "POSTGRES_PASSWORD=\xc3\xa9\xc3\xa8\xc3\xa0\xc3\xb9"
	                        "\xc3\xa7\xc3\xab\xc3\xaf\xc3\xb4\xc3\xa2",
	                        END),
	               "POSTGRES_PASSWORD", "16");

	/* Equal to the user name, case-insensitively. */
	assert_problem(load_env(prod_base, "POSTGRES_USER=chat_service_account",
	                        "POSTGRES_PASSWORD=Chat_Service_Account", END),
	               "POSTGRES_PASSWORD", "user name");
	ck_assert_uint_eq(problems_about("POSTGRES_PASSWORD", NULL), 1);
	assert_problem(load_env(prod_base, "POSTGRES_USER=chatchat",
	                        "POSTGRES_PASSWORD=chatchatchatchat", END),
	               "POSTGRES_PASSWORD", "user name");

	/* Known defaults, and repeated to reach the length rule. */
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD=postgres", END), "POSTGRES_PASSWORD",
	               "default");
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD=PostgresPostgres", END),
	               "POSTGRES_PASSWORD", "default");
	ck_assert_uint_eq(problems_about("POSTGRES_PASSWORD", NULL), 1);
	assert_problem(load_env(test_base, "POSTGRES_PASSWORD=passwordpassword", END),
	               "POSTGRES_PASSWORD", "default");
	/* A default inside a longer password is fine. */
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD=postgres-Xv9qT4mLp2", END));
}
END_TEST

START_TEST(db_parts)
{
	assert_ok(load_env(prod_base, "POSTGRES_HOST=db.internal", "POSTGRES_PORT=6543",
	                   "POSTGRES_DB=chatdb", "POSTGRES_USER=chatapp", END));
	ck_assert_str_eq(cfg.pg_host, "db.internal");
	ck_assert_str_eq(cfg.pg_port, "6543");
	ck_assert_str_eq(cfg.pg_db, "chatdb");
	ck_assert_str_eq(cfg.pg_user, "chatapp");

	assert_problem(load_env(prod_base, "POSTGRES_PORT=0", END), "POSTGRES_PORT", "1..65535");
	assert_problem(load_env(prod_base, "POSTGRES_PORT=65536", END), "POSTGRES_PORT",
	               "1..65535");
	assert_problem(load_env(prod_base, "POSTGRES_PORT=54x", END), "POSTGRES_PORT", "1..65535");
	assert_ok(load_env(prod_base, "POSTGRES_PORT=65535", END));
	assert_ok(load_env(prod_base, "POSTGRES_PORT=1", END));
	assert_problem(load_env(prod_base, "POSTGRES_HOST=", END), "POSTGRES_HOST", "empty");

	/* A primary and its standbys: libpq's comma lists, one port for all
	 * or one per host, canonical. */
	assert_ok(load_env(prod_base, "POSTGRES_HOST=db1.internal,db2.internal", END));
	ck_assert_str_eq(cfg.pg_host, "db1.internal,db2.internal");
	ck_assert_str_eq(cfg.pg_port, "5432");
	assert_ok(
	    load_env(prod_base, "POSTGRES_HOST=db1,db2,db3", "POSTGRES_PORT=05432,6543,7000", END));
	ck_assert_str_eq(cfg.pg_port, "5432,6543,7000");
	assert_ok(load_env(prod_base, "POSTGRES_HOST=db1,db2", "POSTGRES_PORT=6543", END));
	ck_assert_str_eq(cfg.pg_port, "6543");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=db1,db2", "POSTGRES_PORT=1,2,3", END),
	               "POSTGRES_PORT", "one per POSTGRES_HOST item (2)");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=db1,db2", "POSTGRES_PORT=1,0", END),
	               "POSTGRES_PORT", "1..65535");
	assert_problem(load_env(prod_base, "POSTGRES_PORT=5432,5433", END), "POSTGRES_PORT",
	               "1..65535");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=db1,", END), "POSTGRES_HOST", "comma");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=db1,,db2", END), "POSTGRES_HOST",
	               "no empty item");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=db1, db2", END), "POSTGRES_HOST",
	               "no blank");
	assert_problem(load_env(prod_base, "POSTGRES_HOST=a,b,c,d,e,f,g,h,i", END), "POSTGRES_HOST",
	               "at most 8");
	assert_problem(load_env(prod_base, "POSTGRES_USER=", END), "POSTGRES_USER", "empty");
	assert_problem(load_env(prod_base, "POSTGRES_DB=", END), "POSTGRES_DB", "empty");
}
END_TEST

START_TEST(database_url)
{
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=postgresql://chat:" GOOD_PW "@db.example/chat", END));
	ck_assert_str_eq(cfg.database_url.bytes, "postgresql://chat:" GOOD_PW "@db.example/chat");
	ck_assert_ptr_null(cfg.pg_host);
	ck_assert_ptr_null(cfg.pg_password.bytes);
	ck_assert_str_eq(cfg.pg_sslmode, "require");

	/* Several hosts; the lists must pair up, said without quoting. */
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=postgresql://chat:" GOOD_PW
	                   "@db1:5432,db2:5433/chat?target_session_attrs=any",
	                   END));
	ck_assert_ptr_null(cfg.pg_host);
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=host=db1,db2 port=5432 user=chat password=" GOOD_PW, END));
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=host=db1,db2 port=1,2,3 user=chat password=" GOOD_PW,
	                        END),
	               "DATABASE_URL", "one port per host");
	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD",
	             "DATABASE_URL=host=db1,db2 hostaddr=10.0.0.1 user=chat password=" GOOD_PW,
	             END),
	    "DATABASE_URL", "hostaddr");
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=host=db1,,db2 user=chat password=" GOOD_PW, END),
	               "DATABASE_URL", "no empty item");
	ck_assert_ptr_null(strstr(probs.lines[0], "db1"));

	/* key=value form, and from a file. */
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=host=db user=chat password=" GOOD_PW, END));
	const char *path = write_file("url", "postgres://chat:" GOOD_PW "@db/chat\n",
	                              strlen("postgres://chat:" GOOD_PW "@db/chat\n"));
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD", var("DATABASE_URL_FILE", path), END));
	ck_assert_str_eq(cfg.database_url.bytes, "postgres://chat:" GOOD_PW "@db/chat");

	assert_problem(load_env(dev_base, "DATABASE_URL=", END), "DATABASE_URL", "empty");
	assert_problem(load_env(dev_base, "DATABASE_URL=postgresql://u@h/db?nosuchparam=1", END),
	               "DATABASE_URL", "not a valid");
	assert_problem(load_env(dev_base, "DATABASE_URL=host=db password", END), "DATABASE_URL",
	               "not a valid");
}
END_TEST

/* The value of keyword `key` in libpq's arrays, or NULL; with `after` set,
 * only a match after the keyword `after` counts (libpq: the later wins). */
static const char *conninfo_value(const char **keys, const char **values, const char *key,
                                  const char *after)
{
	bool seen = after == NULL;

	for (size_t i = 0; keys[i]; i++) {
		if (after && strcmp(keys[i], after) == 0)
			seen = true;
		else if (seen && strcmp(keys[i], key) == 0)
			return values[i];
	}
	return NULL;
}

START_TEST(conninfo_tls_only)
{
	const char *keys[DB_CONNINFO_MAX], *values[DB_CONNINFO_MAX], *v;
	struct db_conninfo_text text = {0};

	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=postgresql://chat:" GOOD_PW
	                   "@db.example/chat?sslmode=require"
	                   "&gssencmode=require",
	                   END));
	ck_assert_uint_gt(db_conninfo(&cfg, keys, values, DB_CONNINFO_MAX, &text), 0);
	ck_assert_str_eq(conninfo_value(keys, values, "dbname", NULL), cfg.database_url.bytes);
	/* After the URL, so they override what it says. */
	ck_assert_str_eq(conninfo_value(keys, values, "sslmode", "dbname"), cfg.pg_sslmode);
	ck_assert_str_eq(conninfo_value(keys, values, "gssencmode", "dbname"), "disable");
	v = conninfo_value(keys, values, "options", "dbname");
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(strstr(v, "-c statement_timeout=5000"));
	ck_assert_ptr_nonnull(strstr(v, DB_SESSION_OPTIONS));
	ck_assert_ptr_null(keys[db_conninfo(&cfg, keys, values, DB_CONNINFO_MAX, &text)]);
}
END_TEST

START_TEST(database_url_ambiguous)
{
	static const char *const parts[] = {
	    "POSTGRES_HOST=db",   "POSTGRES_PORT=5432",           "POSTGRES_DB=chat",
	    "POSTGRES_USER=chat", ("POSTGRES_PASSWORD=" GOOD_PW),
	};

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(parts[i], "="), parts[i]);
		assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
		                        "DATABASE_URL=postgresql://chat:" GOOD_PW "@db/chat",
		                        parts[i], END),
		               "DATABASE_URL", name);
		ck_assert_msg(strstr(all_lines(), "ambiguous"), "%s", all_lines());
	}
	const char *path = write_file("pw", GOOD_PW, strlen(GOOD_PW));
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=postgresql://chat:" GOOD_PW "@db/chat",
	                        var("POSTGRES_PASSWORD_FILE", path), END),
	               "DATABASE_URL", "POSTGRES_PASSWORD_FILE");
	/* POSTGRES_SSLMODE is not a connection part: allowed with a URL. */
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=postgresql://chat:" GOOD_PW "@db/chat",
	                   "POSTGRES_SSLMODE=require", END));
}
END_TEST

START_TEST(database_url_weak_password)
{
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=postgresql://chat:short@db/chat", END),
	               "DATABASE_URL", "16");
	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD", "DATABASE_URL=postgresql://chat@db/chat", END),
	    "DATABASE_URL", "required");
	assert_problem(
	    load_env(test_base, "POSTGRES_PASSWORD",
	             "DATABASE_URL=postgresql://SuperUserAccount1:superuseraccount1@db/chat", END),
	    "DATABASE_URL", "user name");
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=postgresql://chat:postgrespostgres@db/chat", END),
	               "DATABASE_URL", "default");
	/* No password needed in DEV. */
	assert_ok(load_env(dev_base, "DATABASE_URL=postgresql://chat@localhost/chat", END));
}
END_TEST

START_TEST(sslmode)
{
	static const char *const weak[] = {"disable", "allow", "prefer"};

	for (size_t i = 0; i < 3; i++) {
		assert_problem(load_env(prod_base, var("POSTGRES_SSLMODE", weak[i]), END),
		               "POSTGRES_SSLMODE", weak[i]);
		assert_problem(load_env(test_base, var("POSTGRES_SSLMODE", weak[i]), END),
		               "POSTGRES_SSLMODE", "TEST");
		assert_ok(load_env(dev_base, var("POSTGRES_SSLMODE", weak[i]), END));
		ck_assert_str_eq(cfg.pg_sslmode, weak[i]);
	}
	assert_ok(load_env(prod_base, "POSTGRES_SSLMODE=require", END));
	ck_assert_str_eq(cfg.pg_sslmode, "require");
	assert_ok(load_env(dev_base, END));
	ck_assert_str_eq(cfg.pg_sslmode, "prefer");

	assert_problem(load_env(dev_base, "POSTGRES_SSLMODE=required", END), "POSTGRES_SSLMODE",
	               "\"required\"");
	assert_problem(load_env(dev_base, "POSTGRES_SSLMODE=REQUIRE", END), "POSTGRES_SSLMODE",
	               "must be one of");
	assert_problem(load_env(dev_base, "POSTGRES_SSLMODE=", END), "POSTGRES_SSLMODE",
	               "must be one of");
	ck_assert_ptr_nonnull(cfg.pg_sslmode);
}
END_TEST

START_TEST(sslmode_from_url)
{
	/* The URL's sslmode counts, and is named when it is too weak. */
	assert_problem(
	    load_env(prod_base, "POSTGRES_PASSWORD",
	             "DATABASE_URL=postgresql://chat:" GOOD_PW "@db/chat?sslmode=disable", END),
	    "POSTGRES_SSLMODE", "DATABASE_URL");
	/* POSTGRES_SSLMODE wins over the URL's. */
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD",
	                   "DATABASE_URL=postgresql://chat:" GOOD_PW "@db/chat?sslmode=disable",
	                   "POSTGRES_SSLMODE=require", END));
	ck_assert_str_eq(cfg.pg_sslmode, "require");
	assert_ok(load_env(dev_base, "DATABASE_URL=postgresql://chat@db/chat?sslmode=allow", END));
	ck_assert_str_eq(cfg.pg_sslmode, "allow");
	assert_problem(
	    load_env(dev_base, "DATABASE_URL=postgresql://chat@db/chat?sslmode=bogus", END),
	    "DATABASE_URL", "sslmode");
}
END_TEST

START_TEST(sslrootcert)
{
	const char *ca = write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 28);
	const char *dir = make_dir("ca.d");
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/missing.pem", tmpdir);
	assert_problem(load_env(prod_base, "POSTGRES_SSLMODE=verify-full", END),
	               "POSTGRES_SSLROOTCERT", "verify-full");
	assert_problem(load_env(prod_base, "POSTGRES_SSLMODE=verify-ca", END),
	               "POSTGRES_SSLROOTCERT", "required");
	assert_ok(load_env(prod_base, "POSTGRES_SSLMODE=verify-full",
	                   var("POSTGRES_SSLROOTCERT", ca), END));
	ck_assert_str_eq(cfg.pg_sslrootcert, ca);
	ck_assert_str_eq(cfg.pg_sslmode, "verify-full");
	assert_ok(load_env(prod_base, "POSTGRES_SSLMODE=verify-ca", var("POSTGRES_SSLROOTCERT", ca),
	                   END));

	assert_problem(load_env(prod_base, "POSTGRES_SSLMODE=verify-full",
	                        var("POSTGRES_SSLROOTCERT", missing), END),
	               "POSTGRES_SSLROOTCERT", strerror(ENOENT));
	/* Given but unusable is an error whatever the mode. */
	assert_problem(load_env(dev_base, var("POSTGRES_SSLROOTCERT", missing), END),
	               "POSTGRES_SSLROOTCERT", missing);
	assert_problem(load_env(dev_base, var("POSTGRES_SSLROOTCERT", dir), END),
	               "POSTGRES_SSLROOTCERT", "regular file");

	/* From the URL. */
	char url[256];

	snprintf(url, sizeof(url),
	         "postgresql://chat:" GOOD_PW "@db/chat?sslmode=verify-full&sslrootcert=%s", ca);
	assert_ok(load_env(prod_base, "POSTGRES_PASSWORD", var("DATABASE_URL", url), END));
	ck_assert_str_eq(cfg.pg_sslrootcert, ca);
	ck_assert_str_eq(cfg.pg_sslmode, "verify-full");
	assert_problem(load_env(prod_base, "POSTGRES_PASSWORD",
	                        "DATABASE_URL=postgresql://chat:" GOOD_PW
	                        "@db/chat?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
	                        END),
	               "POSTGRES_SSLROOTCERT", "DATABASE_URL");
}
END_TEST

struct int_rule {
	const char *name;
	const char *min, *max, *below, *above;
	const char *range;
};

static const struct int_rule int_rules[] = {
    {"DB_TIMEOUT_MS", "100", "600000", "99", "600001", "100..600000"},
    {"MAX_BODY_BYTES", "1024", "16777216", "1023", "16777217", "1024..16777216"},
    {"ACCESS_TOKEN_TTL", "60", "2592000", "59", "2592001", "60..2592000"},
    {"SCRYPT_N", "14", "22", "9", "23", "10..22"},
    {"SCRYPT_R", "1", "255", "0", "256", "1..255"},
    {"SCRYPT_P", "1", "255", "0", "256", "1..255"},
    {"RATE_LIMIT_SLOTS", "1024", "16777216", "1023", "16777217", "1024..16777216"},
    {"POSTGRES_PORT", "1", "65535", "0", "65536", "1..65535"},
};

START_TEST(integers)
{
	static const char *const junk[] = {
	    "",     "abc",   "12x", "-1",  "99999999999999999999", " 500", "500 ",
	    "+500", "0x1f4", "5e3", "1.5",
	};
	const struct int_rule *r = &int_rules[_i];

	for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
		assert_problem(load_env(prod_base, var(r->name, junk[j]), END), r->name, r->range);
		ck_assert_uint_eq(probs.count, 1);
	}
	assert_problem(load_env(prod_base, var(r->name, r->below), END), r->name, r->range);
	assert_problem(load_env(prod_base, var(r->name, r->above), END), r->name, r->range);
	assert_ok(load_env(prod_base, var(r->name, r->min), END));
	assert_ok(load_env(prod_base, var(r->name, r->max), END));
}
END_TEST

START_TEST(integer_values)
{
	assert_ok(load_env(prod_base, "DB_TIMEOUT_MS=250", "MAX_BODY_BYTES=2048",
	                   "ACCESS_TOKEN_TTL=900", "SCRYPT_N=16", "SCRYPT_R=9", "SCRYPT_P=2",
	                   "RATE_LIMIT_SLOTS=4096", END));
	ck_assert_uint_eq(cfg.db_timeout_ms, 250);
	ck_assert_uint_eq(cfg.max_body_bytes, 2048);
	ck_assert_int_eq(cfg.access_token_ttl, 900);
	ck_assert_uint_eq(cfg.scrypt_log2_n, 16);
	ck_assert_uint_eq(cfg.scrypt_r, 9);
	ck_assert_uint_eq(cfg.scrypt_p, 2);
	ck_assert_uint_eq(cfg.rate_limit_slots, 4096);
}
END_TEST

START_TEST(scrypt_n_prod_floor)
{
	assert_problem(load_env(prod_base, "SCRYPT_N=13", END), "SCRYPT_N", "PROD");
	assert_ok(load_env(prod_base, "SCRYPT_N=14", END));
	assert_ok(load_env(test_base, "SCRYPT_N=10", END));
	ck_assert_uint_eq(cfg.scrypt_log2_n, 10);
	assert_ok(load_env(dev_base, "SCRYPT_N=10", END));
}
END_TEST

START_TEST(log_level)
{
	static const char *const ok[] = {"debug", "info", "warn", "error"};
	static const enum log_level want[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN,
	                                      LOG_LEVEL_ERROR};

	for (size_t i = 0; i < 4; i++) {
		assert_ok(load_env(dev_base, var("LOG_LEVEL", ok[i]), END));
		ck_assert_int_eq(cfg.log_level, want[i]);
	}
	assert_problem(load_env(dev_base, "LOG_LEVEL=INFO", END), "LOG_LEVEL", "\"INFO\"");
	assert_problem(load_env(dev_base, "LOG_LEVEL=warning", END), "LOG_LEVEL", "warn");
	assert_problem(load_env(dev_base, "LOG_LEVEL=", END), "LOG_LEVEL", "debug");
}
END_TEST

START_TEST(worker_seccomp)
{
	assert_ok(load_env(dev_base, END));
	ck_assert(cfg.worker_seccomp);
	assert_ok(load_env(prod_base, "WORKER_SECCOMP=on", END));
	ck_assert(cfg.worker_seccomp);
	assert_ok(load_env(prod_base, "WORKER_SECCOMP=off", END));
	ck_assert(!cfg.worker_seccomp);
	/* Anything but the two words is refused, and never read as off. */
	assert_problem(load_env(dev_base, "WORKER_SECCOMP=OFF", END), "WORKER_SECCOMP", "\"OFF\"");
	ck_assert(cfg.worker_seccomp);
	assert_problem(load_env(dev_base, "WORKER_SECCOMP=0", END), "WORKER_SECCOMP", "on or off");
	ck_assert(cfg.worker_seccomp);
	assert_problem(load_env(dev_base, "WORKER_SECCOMP=", END), "WORKER_SECCOMP", "on or off");
}
END_TEST

START_TEST(rate_limit_scope)
{
	assert_ok(load_env(prod_base, "RATE_LIMIT_SCOPE=host", END));
	ck_assert_int_eq(cfg.rate_limit_scope, RATE_LIMIT_SCOPE_HOST);
	assert_ok(load_env(prod_base, "RATE_LIMIT_SCOPE=cluster", END));
	ck_assert_int_eq(cfg.rate_limit_scope, RATE_LIMIT_SCOPE_CLUSTER);
	/* A typo must not leave a cluster counting per host unnoticed. */
	assert_problem(load_env(dev_base, "RATE_LIMIT_SCOPE=Cluster", END), "RATE_LIMIT_SCOPE",
	               "\"Cluster\"");
	assert_problem(load_env(dev_base, "RATE_LIMIT_SCOPE=", END), "RATE_LIMIT_SCOPE",
	               "host or cluster");
}
END_TEST

START_TEST(rate_limits)
{
	static const struct {
		const char *text;
		uint32_t limit, period;
	} ok[] = {
	    {"5/minute", 5, 60},   {"off", 0, 0},
	    {"1/second", 1, 1},    {"1000000/day", 1000000, 86400},
	    {"30/hour", 30, 3600}, {"10/second", 10, 1},
	};
	static const char *const bad[] = {
	    "5/min", "0/minute",  "5/ minute",   "05/minute",       "/minute",   "5",
	    "5/",    "-5/minute", "+5/minute",   " 5/minute",       "5/minute ", "5/Minute",
	    "OFF",   "",          "1000001/day", "99999999999/day", "5/minutes", "5//minute",
	    "0",     "5 /minute",
	};
	static const char *const vars[] = {"RATE_LIMIT_AUTH", "RATE_LIMIT_CHAT", "RATE_LIMIT_READ"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_ok(load_env(dev_base, var("RATE_LIMIT_AUTH", ok[i].text),
		                   var("RATE_LIMIT_CHAT", ok[i].text),
		                   var("RATE_LIMIT_READ", ok[i].text), END));
		ck_assert_uint_eq(cfg.rate_auth.limit, ok[i].limit);
		ck_assert_uint_eq(cfg.rate_auth.period_s, ok[i].period);
		ck_assert_uint_eq(cfg.rate_chat.limit, ok[i].limit);
		ck_assert_uint_eq(cfg.rate_chat.period_s, ok[i].period);
		ck_assert_uint_eq(cfg.rate_read.limit, ok[i].limit);
		ck_assert_uint_eq(cfg.rate_read.period_s, ok[i].period);
	}
	for (size_t v = 0; v < 3; v++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			assert_problem(load_env(dev_base, var(vars[v], bad[i]), END), vars[v],
			               "N/minute");
}
END_TEST

START_TEST(rate_limit_shm)
{
	char name[256];

	assert_ok(load_env(dev_base, "RATE_LIMIT_SHM=/x", END));
	ck_assert_str_eq(cfg.rate_limit_shm, "/x");
	name[0] = '/';
	memset(name + 1, 'a', 199);
	name[200] = '\0';
	assert_ok(load_env(dev_base, var("RATE_LIMIT_SHM", name), END));
	name[200] = 'a';
	name[201] = '\0';
	assert_problem(load_env(dev_base, var("RATE_LIMIT_SHM", name), END), "RATE_LIMIT_SHM",
	               "...");
	assert_problem(load_env(dev_base, "RATE_LIMIT_SHM=chat-fcgi", END), "RATE_LIMIT_SHM",
	               "\"chat-fcgi\"");
	assert_problem(load_env(dev_base, "RATE_LIMIT_SHM=/", END), "RATE_LIMIT_SHM", "'/'");
	assert_problem(load_env(dev_base, "RATE_LIMIT_SHM=/a/b", END), "RATE_LIMIT_SHM", "'/'");
	assert_problem(load_env(dev_base, "RATE_LIMIT_SHM=", END), "RATE_LIMIT_SHM", "'/'");
}
END_TEST

/* chat-admin's ratelimit commands: the RATE_LIMIT_* rules alone, with no
 * secret and no database in the environment, and nothing else filled in. */
START_TEST(rate_limits_alone)
{
	char *only_shm[] = {"RATE_LIMIT_SHM=/chat-fcgi-dev-999", NULL};
	char *bad_shm[] = {"RATE_LIMIT_SHM=chat", "APP_MODE=PROD", NULL};
	char *bad_slots[] = {"RATE_LIMIT_SLOTS=12", NULL};
	char *none[] = {NULL};

	config_free(&cfg);
	config_problems_free(&probs);
	ck_assert_int_eq(config_load_rate_limits(&cfg, only_shm, &probs), 0);
	ck_assert_uint_eq(probs.count, 0);
	ck_assert_str_eq(cfg.rate_limit_shm, "/chat-fcgi-dev-999");
	ck_assert_uint_eq(cfg.rate_limit_slots, 65536);
	ck_assert_ptr_null(cfg.secret_key.bytes);
	/* The full loader refuses the same environment: no SECRET_KEY. */
	config_free(&cfg);
	ck_assert_int_eq(config_load(&cfg, only_shm, &probs), -1);
	config_free(&cfg);
	config_problems_free(&probs);

	ck_assert_int_eq(config_load_rate_limits(&cfg, none, &probs), 0);
	ck_assert_str_eq(cfg.rate_limit_shm, "/chat-fcgi");
	config_free(&cfg);
	assert_problem(config_load_rate_limits(&cfg, bad_shm, &probs), "RATE_LIMIT_SHM", "'/'");
	ck_assert_uint_eq(probs.count, 1); /* APP_MODE is not its concern */
	config_free(&cfg);
	config_problems_free(&probs);
	assert_problem(config_load_rate_limits(&cfg, bad_slots, &probs), "RATE_LIMIT_SLOTS", NULL);
}
END_TEST

START_TEST(cidr_lists)
{
	assert_ok(load_env(dev_base, "TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.1", END));
	ck_assert_uint_eq(cfg.trusted_proxies.count, 2);
	assert_ok(load_env(dev_base, "METRICS_ALLOW=", END));
	ck_assert_uint_eq(cfg.metrics_allow.count, 0);
	assert_ok(load_env(dev_base, "METRICS_ALLOW=::1", END));
	ck_assert_uint_eq(cfg.metrics_allow.count, 1);

	assert_problem(load_env(dev_base, "TRUSTED_PROXIES=10.0.0.0/8,bogus,::1", END),
	               "TRUSTED_PROXIES", "\"bogus\"");
	assert_problem(load_env(dev_base, "METRICS_ALLOW=127.0.0.0/8,::1/129", END),
	               "METRICS_ALLOW", "\"::1/129\"");
	assert_problem(load_env(dev_base, "METRICS_ALLOW=127.0.0.0/8,", END), "METRICS_ALLOW",
	               "\"\"");
	ck_assert_ptr_null(cfg.metrics_allow.items);
}
END_TEST

START_TEST(collects_every_problem)
{
	static const char *const vars[] = {"APP_MODE",        "SECRET_KEY",    "POSTGRES_PASSWORD",
	                                   "RATE_LIMIT_AUTH", "DB_TIMEOUT_MS", "LOG_LEVEL"};
	size_t first = 0;

	ck_assert_int_eq(load_env(prod_base, "APP_MODE=production", "SECRET_KEY=short",
	                          "POSTGRES_PASSWORD=weak", "DB_TIMEOUT_MS=abc",
	                          "RATE_LIMIT_AUTH=5/min", "LOG_LEVEL=loud", END),
	                 -1);
	ck_assert_uint_ge(probs.count, 6);
	/* Every variable is named, in the order of the spec's table. */
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		size_t at = probs.count;

		for (size_t j = 0; j < probs.count; j++) {
			size_t n = strlen(vars[i]);

			if (strncmp(probs.lines[j], vars[i], n) == 0 && probs.lines[j][n] == ':') {
				at = j;
				break;
			}
		}
		ck_assert_msg(at < probs.count, "no line names %s:%s", vars[i], all_lines());
		ck_assert_msg(at >= first, "%s out of order:%s", vars[i], all_lines());
		first = at;
	}
	for (size_t j = 0; j < probs.count; j++)
		ck_assert_ptr_null(strchr(probs.lines[j], '\n'));
}
END_TEST

START_TEST(problems_are_appended)
{
	ck_assert_int_eq(load_env(dev_base, "LOG_LEVEL=x", END), -1);
	ck_assert_uint_eq(probs.count, 1);
	config_free(&cfg);
	/* config_load appends: a caller can gather problems from several
	 * sources in one list. */
	char *const env[] = {"SECRET_KEY=x", "DB_TIMEOUT_MS=1", NULL};
	ck_assert_int_eq(config_load(&cfg, env, &probs), -1);
	ck_assert_uint_eq(probs.count, 2);
	ck_assert(strncmp(probs.lines[0], "LOG_LEVEL:", 10) == 0);
	ck_assert(strncmp(probs.lines[1], "DB_TIMEOUT_MS:", 14) == 0);
}
END_TEST

START_TEST(no_secret_in_problems)
{
	/* Each value breaks a rule, and each has a marker no message would
	 * contain by itself. */
	static const char *const secrets[] = {
	    "QzXjSKshort",      /* SECRET_KEY: short */
	    "QzXjPREVchangeme", /* previous: placeholder */
	    "QzXjPGpw",         /* POSTGRES_PASSWORD_FILE: short */
	    "QzXjURLpw",        /* in an invalid URL */
	};
	const char *pwfile = write_file("pw", "QzXjPGpw\n", 9);
	char url[160];

	snprintf(url, sizeof(url), "postgresql://QzXjUSER:%s@h:5432/db?QzXjBAD=%s", secrets[3],
	         secrets[3]);
	ck_assert_int_eq(load_env(prod_base, var("SECRET_KEY", secrets[0]),
	                          var("SECRET_KEY_PREVIOUS", secrets[1]), "POSTGRES_PASSWORD",
	                          var("POSTGRES_PASSWORD_FILE", pwfile), var("DATABASE_URL", url),
	                          "POSTGRES_USER=QzXjPGpw", END),
	                 -1);
	ck_assert_uint_ge(probs.count, 5);
	ck_assert_uint_ge(problems_about("DATABASE_URL", NULL), 2);
	for (size_t i = 0; i < probs.count; i++)
		ck_assert_msg(strstr(probs.lines[i], "QzXj") == NULL, "secret leaked: %s",
		              probs.lines[i]);

	/* Parts: the weak password equals the user name; neither is quoted. */
	ck_assert_int_eq(load_env(prod_base, "POSTGRES_PASSWORD",
	                          var("POSTGRES_PASSWORD_FILE", pwfile), "POSTGRES_USER=QzXjPGpw",
	                          END),
	                 -1);
	ck_assert_uint_eq(problems_about("POSTGRES_PASSWORD", NULL), 2);
	for (size_t i = 0; i < probs.count; i++)
		ck_assert_msg(strstr(probs.lines[i], "QzXj") == NULL, "secret leaked: %s",
		              probs.lines[i]);

	/* Valid URL, weak password: the password is not quoted either. */
	ck_assert_int_eq(load_env(prod_base, "POSTGRES_PASSWORD",
	                          "DATABASE_URL=postgresql://chat:QzXjWeakPassword@db/chat?"
	                          "sslmode=prefer",
	                          "SECRET_KEY=QzXjQzXjQzXjQzXjQzXjQzXjQzXjQzXjQzXj", END),
	                 -1);
	ck_assert_uint_ge(probs.count, 2);
	for (size_t i = 0; i < probs.count; i++)
		ck_assert_msg(strstr(probs.lines[i], "QzXj") == NULL, "secret leaked: %s",
		              probs.lines[i]);
}
END_TEST

/* Found by fuzz_config: the values libpq parses out of DATABASE_URL are
 * part of the secret.  A missing space glues the password to the sslmode
 * or the sslrootcert, and neither may then be quoted. */
START_TEST(url_parts_are_never_quoted)
{
	ck_assert_int_eq(
	    load_env(prod_base, "POSTGRES_PASSWORD",
	             "DATABASE_URL=host=db user=chat sslmode=requirepassword=QzXjGlued1", END),
	    -1);
	ck_assert_uint_ge(problems_about("DATABASE_URL", "its sslmode must be one of"), 1);
	for (size_t i = 0; i < probs.count; i++)
		ck_assert_msg(strstr(probs.lines[i], "QzXj") == NULL, "secret leaked: %s",
		              probs.lines[i]);

	ck_assert_int_eq(load_env(prod_base, "POSTGRES_PASSWORD",
	                          "DATABASE_URL=host=db user=chat sslmode=verify-full "
	                          "sslrootcert=/nonexistent/ca.crtpassword=QzXjGlued2",
	                          END),
	                 -1);
	ck_assert_uint_ge(problems_about("POSTGRES_SSLROOTCERT", "the sslrootcert of DATABASE_URL"),
	                  1);
	for (size_t i = 0; i < probs.count; i++)
		ck_assert_msg(strstr(probs.lines[i], "QzXj") == NULL, "secret leaked: %s",
		              probs.lines[i]);
}
END_TEST

START_TEST(values_are_escaped)
{
	assert_problem(load_env(dev_base, "LOG_LEVEL=a\nERROR: forged\"\\", END), "LOG_LEVEL",
	               "\"a\\x0aERROR: forged\\x22\\x5c\"");
}
END_TEST

START_TEST(unknown_and_odd_entries)
{
	char *const env[] = {
	    "NOEQUALS",          "=odd",    "SECRET_KEYX=nope",
	    "APP_MODEX=bogus",   "FOO=bar", "SECRET_KEY=first",
	    "SECRET_KEY=second", NULL,
	};

	ck_assert_int_eq(config_load(&cfg, env, &probs), 0);
	ck_assert_uint_eq(probs.count, 0);
	/* Like getenv: the first entry wins. */
	ck_assert_str_eq(cfg.secret_key.bytes, "first");
	config_free(&cfg);
	ck_assert_int_eq(config_load(&cfg, NULL, &probs), -1);
	ck_assert_uint_eq(problems_about("SECRET_KEY", "required"), 1);
}
END_TEST

START_TEST(free_is_safe)
{
	struct config zero;
	struct config_problems none = {NULL, 0};

	memset(&zero, 0, sizeof(zero));
	config_free(&zero);
	config_free(&zero);
	config_problems_free(&none);
	/* After a failed load the struct is freeable too, and free zeroes it. */
	ck_assert_int_eq(load_env(prod_base, "SECRET_KEY=short", "METRICS_ALLOW=x", END), -1);
	config_free(&cfg);
	ck_assert_ptr_null(cfg.secret_key.bytes);
	ck_assert_uint_eq(cfg.secret_key.len, 0);
	ck_assert_ptr_null(cfg.pg_host);
	config_free(&cfg);
	config_problems_free(&probs);
	ck_assert_ptr_null(probs.lines);
	ck_assert_uint_eq(probs.count, 0);
}
END_TEST

START_TEST(mode_names)
{
	ck_assert_str_eq(config_mode_name(APP_MODE_DEV), "DEV");
	ck_assert_str_eq(config_mode_name(APP_MODE_TEST), "TEST");
	ck_assert_str_eq(config_mode_name(APP_MODE_PROD), "PROD");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_dev);
	tcase_add_test(tc, valid_prod_and_test);
	tcase_add_test(tc, app_mode);
	tcase_add_test(tc, secret_key_required);
	tcase_add_test(tc, secret_key_short);
	tcase_add_test(tc, secret_key_placeholder);
	tcase_add_test(tc, secret_key_variety);
	tcase_add_test(tc, secret_key_binary_from_file);
	tcase_add_test(tc, secret_key_previous);
	tcase_add_test(tc, secret_both_forms);
	tcase_add_test(tc, secret_file_missing);
	tcase_add_test(tc, secret_file_unreadable);
	tcase_add_test(tc, secret_file_newline);
	tcase_add_test(tc, secret_file_empty_or_big);
	tcase_add_test(tc, db_password_nul_byte);
	tcase_add_test(tc, db_password_weak);
	tcase_add_test(tc, db_parts);
	tcase_add_test(tc, database_url);
	tcase_add_test(tc, conninfo_tls_only);
	tcase_add_test(tc, database_url_ambiguous);
	tcase_add_test(tc, database_url_weak_password);
	tcase_add_test(tc, sslmode);
	tcase_add_test(tc, sslmode_from_url);
	tcase_add_test(tc, sslrootcert);
	tcase_add_loop_test(tc, integers, 0, (int)(sizeof(int_rules) / sizeof(int_rules[0])));
	tcase_add_test(tc, integer_values);
	tcase_add_test(tc, scrypt_n_prod_floor);
	tcase_add_test(tc, log_level);
	tcase_add_test(tc, worker_seccomp);
	tcase_add_test(tc, rate_limit_scope);
	tcase_add_test(tc, rate_limits);
	tcase_add_test(tc, rate_limit_shm);
	tcase_add_test(tc, rate_limits_alone);
	tcase_add_test(tc, cidr_lists);
	tcase_add_test(tc, collects_every_problem);
	tcase_add_test(tc, problems_are_appended);
	tcase_add_test(tc, no_secret_in_problems);
	tcase_add_test(tc, values_are_escaped);
	tcase_add_test(tc, url_parts_are_never_quoted);
	tcase_add_test(tc, unknown_and_odd_entries);
	tcase_add_test(tc, free_is_safe);
	tcase_add_test(tc, mode_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
