/*
 * config: the environment (an envp array, so tests can build one) turned into
 * a validated struct config, following the table of SPEC §4.
 *
 * Every rule is checked and every broken rule adds one line "NAME: why" to
 * the problem list; nothing stops at the first problem, so an operator fixes
 * a configuration in one round.  Lines about a secret never contain its
 * value (not even a prefix); other values are quoted, escaped and truncated
 * so a hostile value cannot forge log lines.
 *
 * A variable that is present with an empty value is "set to empty", not
 * unset: an empty integer is an error, an empty SECRET_KEY is missing.
 * Unknown variables are ignored: the environment is shared with libpq, the
 * web server and the shell.
 *
 * Ownership: every string in struct config is a private copy; secrets are
 * wiped with OPENSSL_cleanse before they are freed, and so are the buffers
 * they passed through (secret files, libpq's parse of DATABASE_URL).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "utf8.h"
#include "util.h"

/* Docker/Kubernetes secrets are a few hundred bytes at most; a larger file is
 * almost certainly the wrong path (a CA bundle, a log). */
#define SECRET_FILE_MAX 65536

#define SECRET_KEY_MIN_BYTES    32
#define SECRET_KEY_MIN_DISTINCT 10
#define DB_PASSWORD_MIN_CHARS   16

/* Room for a quoted, escaped, truncated value in a problem line. */
#define QUOTE_VALUE 48
#define QUOTE_PATH  160

struct loader {
	struct config *cfg;
	char *const *envp;
	struct config_problems *problems;
	enum app_mode mode; /* the mode the rules are checked against */
	bool strict;        /* TEST or PROD */
	bool failed;
	/* From DATABASE_URL, consulted by the sslmode and root-cert rules. */
	char *url_sslmode;
	char *url_sslrootcert;
};

/* Equal, case-insensitively, to a SECRET_KEY: these are the values that
 * tutorials, templates and .env.example files ship with. */
static const char *const key_placeholders[] = {
    "changeme",    "change-me",       "change_me", "secret",   "secretkey", "secret-key",
    "secret_key",  "password",        "default",   "example",  "test",      "your-secret-key",
    "supersecret", "your_secret_key", "mysecret",  "insecure", "dev",       "development",
    NULL,
};

/* Contained, case-insensitively, in a SECRET_KEY: marks of a template value
 * ("your-secret-key-here", "CHANGEME_0123...").  A random key of 32+ bytes
 * contains none of these by chance. */
static const char *const key_placeholder_parts[] = {
    "changeme", "change-me", "change_me", "your-secret", "placeholder", "example", "insecure", NULL,
};

/* Database passwords that scanners try first: image defaults, our own
 * defaults ("chat") and the classic top of leaked-password lists.  A password
 * is rejected if it equals one of these case-insensitively or is one of them
 * repeated ("postgrespostgres" reaches 16 characters but is no stronger).
 * Deliberately short: the length rule does the heavy lifting. */
static const char *const db_password_defaults[] = {
    "postgres", "password", "changeme", "change-me", "change_me", "admin",  "root",   "secret",
    "chat",     "test",     "default",  "example",   "letmein",   "qwerty", "123456", "12345678",
    "pass",     "passw0rd", "p@ssw0rd", "postgres1", "password1", NULL,
};

static const char *const sslmodes[] = {
    "disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL,
};

static void add_problem(struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_problem(struct loader *ld, const char *fmt, ...)
{
	struct config_problems *p = ld->problems;
	va_list ap;
	char *line;
	char **lines;
	int n;

	ld->failed = true;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	line = malloc((size_t)n + 1);
	if (!line)
		return;
	va_start(ap, fmt);
	vsnprintf(line, (size_t)n + 1, fmt, ap);
	va_end(ap);
	lines = realloc(p->lines, (p->count + 1) * sizeof(*lines));
	if (!lines) {
		free(line);
		return;
	}
	lines[p->count++] = line;
	p->lines = lines;
}

static void out_of_memory(struct loader *ld, const char *name)
{
	add_problem(ld, "%s: out of memory", name);
}

static char *dup_str(struct loader *ld, const char *name, const char *s)
{
	char *d = strdup(s);

	if (!d)
		out_of_memory(ld, name);
	return d;
}

/*
 * Writes "value" into buf, escaping quotes, backslashes and non-printable
 * bytes and truncating with "..." so that a problem line stays one short
 * line whatever the value holds.  Never call this on a secret.
 */
static const char *quote_n(const char *v, size_t n, char *buf, size_t size)
{
	size_t o = 0;
	size_t i;

	buf[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		/* Keep room for the longest escape, "...", '"' and NUL. */
		if (o + 4 + 3 + 2 > size)
			break;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			util_hex(&c, 1, buf + o);
			o += 2;
		}
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static const char *quote(const char *v, char *buf, size_t size)
{
	return quote_n(v, strlen(v), buf, size);
}

static unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Byte-length based so that a binary SECRET_KEY with NUL bytes compares
 * correctly; ASCII folding only, independent of the locale. */
static bool ci_equal(const char *s, size_t n, const char *word)
{
	size_t wn = strlen(word);

	if (n != wn)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i]))
			return false;
	return true;
}

/* s is word repeated one or more times, case-insensitively. */
static bool ci_repeats(const char *s, size_t n, const char *word)
{
	size_t wn = strlen(word);

	if (wn == 0 || n == 0 || n % wn != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i % wn]))
			return false;
	return true;
}

static bool ci_contains(const char *s, size_t n, const char *word)
{
	size_t wn = strlen(word);

	for (size_t i = 0; wn <= n && i <= n - wn; i++)
		if (ci_equal(s + i, wn, word))
			return true;
	return false;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static void load_mode(struct loader *ld)
{
	const char *v = util_env_get(ld->envp, "APP_MODE");
	char q[QUOTE_VALUE];

	if (!v || strcmp(v, "DEV") == 0) {
		ld->mode = APP_MODE_DEV;
	} else if (strcmp(v, "TEST") == 0) {
		ld->mode = APP_MODE_TEST;
	} else if (strcmp(v, "PROD") == 0) {
		ld->mode = APP_MODE_PROD;
	} else {
		add_problem(ld, "APP_MODE: must be DEV, TEST or PROD (case-sensitive), got %s",
		            quote(v, q, sizeof(q)));
		/* Whoever wrote "prod" or "production" meant production: check
		 * the rest against the strictest rules so that the next run
		 * brings no new surprises. */
		ld->mode = APP_MODE_PROD;
	}
	ld->strict = ld->mode != APP_MODE_DEV;
	ld->cfg->mode = ld->mode;
}

static void set_secret(struct loader *ld, const char *name, struct secret *out, const char *bytes,
                       size_t len)
{
	/* Empty stays "bytes == NULL, len == 0", the unset form. */
	if (len == 0)
		return;
	out->bytes = malloc(len + 1);
	if (!out->bytes) {
		out_of_memory(ld, name);
		return;
	}
	memcpy(out->bytes, bytes, len);
	out->bytes[len] = '\0';
	out->len = len;
}

static bool read_secret_file(struct loader *ld, const char *name, const char *file_var,
                             const char *path, bool allow_nul, struct secret *out)
{
	char q[QUOTE_PATH];
	char *buf = NULL;
	size_t len = 0;
	bool ok = false;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		add_problem(ld, "%s: cannot open %s: %s", file_var, quote(path, q, sizeof(q)),
		            strerror(errno));
		return false;
	}
	buf = malloc(SECRET_FILE_MAX + 1);
	if (!buf) {
		out_of_memory(ld, file_var);
		goto out;
	}
	/* One byte more than the cap tells "exactly at the cap" from "over". */
	for (;;) {
		ssize_t n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			add_problem(ld, "%s: cannot read %s: %s", file_var,
			            quote(path, q, sizeof(q)), strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_FILE_MAX) {
			add_problem(ld, "%s: %s is larger than %d bytes", file_var,
			            quote(path, q, sizeof(q)), SECRET_FILE_MAX);
			goto out;
		}
	}
	/* `echo secret > file`, editors and docker secrets add one newline;
	 * only one is removed so a deliberate trailing newline survives. */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (!allow_nul && memchr(buf, '\0', len)) {
		/* libpq takes C strings: a NUL would silently cut the value. */
		add_problem(ld, "%s: %s contains a NUL byte", file_var, quote(path, q, sizeof(q)));
		goto out;
	}
	set_secret(ld, name, out, buf, len);
	ok = true;
out:
	if (buf) {
		/* The whole buffer: len no longer counts a stripped newline or
		 * the bytes past the cap. */
		OPENSSL_cleanse(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	close(fd);
	return ok;
}

enum secret_state {
	SECRET_UNSET,  /* neither NAME nor NAME_FILE present */
	SECRET_GIVEN,  /* read, possibly empty */
	SECRET_BROKEN, /* present, but a problem was reported already */
};

/* Reads NAME or the file named by NAME_FILE into *out.  A broken secret gets
 * no further rules: "required" after "cannot open" would only be noise. */
static enum secret_state load_secret(struct loader *ld, const char *name, bool allow_nul,
                                     struct secret *out)
{
	char file_var[64];
	const char *v;
	const char *path;

	snprintf(file_var, sizeof(file_var), "%s_FILE", name);
	v = util_env_get(ld->envp, name);
	path = util_env_get(ld->envp, file_var);
	if (v && path) {
		add_problem(ld, "%s: both %s and %s are set; set only one", name, name, file_var);
		return SECRET_BROKEN;
	}
	if (v) {
		set_secret(ld, name, out, v, strlen(v));
		return SECRET_GIVEN;
	}
	if (path)
		return read_secret_file(ld, name, file_var, path, allow_nul, out) ? SECRET_GIVEN
		                                                                  : SECRET_BROKEN;
	return SECRET_UNSET;
}

static size_t distinct_bytes(const struct secret *s)
{
	bool seen[256] = {false};
	size_t n = 0;

	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = (unsigned char)s->bytes[i];

		if (!seen[c]) {
			seen[c] = true;
			n++;
		}
	}
	return n;
}

static bool is_key_placeholder(const struct secret *s)
{
	for (const char *const *w = key_placeholders; *w; w++)
		if (ci_equal(s->bytes, s->len, *w))
			return true;
	for (const char *const *w = key_placeholder_parts; *w; w++)
		if (ci_contains(s->bytes, s->len, *w))
			return true;
	return false;
}

static void check_key_strength(struct loader *ld, const char *name, const struct secret *s)
{
	const char *mode = config_mode_name(ld->mode);

	if (!ld->strict || s->len == 0)
		return;
	if (s->len < SECRET_KEY_MIN_BYTES)
		add_problem(ld,
		            "%s: must be at least %d bytes in %s mode (e.g. openssl rand -hex 32)",
		            name, SECRET_KEY_MIN_BYTES, mode);
	if (distinct_bytes(s) < SECRET_KEY_MIN_DISTINCT)
		add_problem(ld, "%s: must contain at least %d distinct byte values in %s mode",
		            name, SECRET_KEY_MIN_DISTINCT, mode);
	if (is_key_placeholder(s))
		add_problem(ld, "%s: is a known placeholder value, not allowed in %s mode", name,
		            mode);
}

static void load_secret_keys(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	enum secret_state st;

	st = load_secret(ld, "SECRET_KEY", true, &cfg->secret_key);
	if (st != SECRET_BROKEN && cfg->secret_key.len == 0)
		add_problem(ld, "SECRET_KEY: required and must not be empty (set SECRET_KEY or "
		                "SECRET_KEY_FILE)");
	check_key_strength(ld, "SECRET_KEY", &cfg->secret_key);

	st = load_secret(ld, "SECRET_KEY_PREVIOUS", true, &cfg->secret_key_previous);
	if (st != SECRET_GIVEN)
		return;
	if (cfg->secret_key_previous.len == 0) {
		add_problem(ld, "SECRET_KEY_PREVIOUS: is set but empty; unset it when no key is "
		                "being rotated out");
		return;
	}
	check_key_strength(ld, "SECRET_KEY_PREVIOUS", &cfg->secret_key_previous);
	/* Lengths are not secret; the bytes are compared in constant time. */
	if (cfg->secret_key.len == cfg->secret_key_previous.len &&
	    CRYPTO_memcmp(cfg->secret_key.bytes, cfg->secret_key_previous.bytes,
	                  cfg->secret_key.len) == 0)
		add_problem(ld, "SECRET_KEY_PREVIOUS: must differ from SECRET_KEY");
}

static bool is_default_password(const struct secret *pw)
{
	for (const char *const *w = db_password_defaults; *w; w++)
		if (ci_repeats(pw->bytes, pw->len, *w))
			return true;
	return false;
}

/* var names the variable the operator has to change: POSTGRES_PASSWORD or
 * DATABASE_URL. */
static void check_db_password(struct loader *ld, const char *var, const struct secret *pw,
                              const char *user)
{
	const char *mode = config_mode_name(ld->mode);

	if (!ld->strict)
		return;
	if (pw->len == 0) {
		add_problem(ld, "%s: a database password is required in %s mode", var, mode);
		return;
	}
	/* The rule says characters, so a password is not weakened by being
	 * ASCII; it need not be valid UTF-8. */
	if (utf8_chars(pw->bytes, pw->len) < DB_PASSWORD_MIN_CHARS)
		add_problem(ld,
		            "%s: the database password must be at least %d characters in %s mode",
		            var, DB_PASSWORD_MIN_CHARS, mode);
	if (user && ci_repeats(pw->bytes, pw->len, user))
		add_problem(
		    ld, "%s: the database password must not be the user name (or repeat it)", var);
	if (is_default_password(pw))
		add_problem(ld, "%s: the database password is a well-known default", var);
}

static const char *const db_part_vars[] = {
    "POSTGRES_HOST",     "POSTGRES_PORT",          "POSTGRES_DB", "POSTGRES_USER",
    "POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE", NULL,
};

/* Items of a comma-separated list (libpq's multi-host form), or -1 when an
 * item is empty or holds a blank: libpq would take "a, b" as the host " b"
 * and ",b" as the default host, neither of which an operator means. */
static int list_items(const char *s)
{
	int n = 1;
	size_t len = 0;

	for (; *s; s++) {
		if (*s == ',') {
			if (len == 0)
				return -1;
			n++;
			len = 0;
		} else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
			return -1;
		} else {
			len++;
		}
	}
	return len == 0 ? -1 : n;
}

/* Host, hostaddr and port lists must pair up as libpq pairs them (one port
 * for all, or one per host); libpq would only say so at the first connect,
 * in every worker.  Returns a static rule text when they do not. */
static const char *host_lists_problem(const char *host, const char *hostaddr, const char *port)
{
	int nh = host ? list_items(host) : 0;
	int na = hostaddr ? list_items(hostaddr) : 0;
	int np = port ? list_items(port) : 0;
	int n = nh > na ? nh : na;

	if (nh < 0 || na < 0 || np < 0)
		return "no empty item or blank in its host, hostaddr or port list";
	if (n > CONFIG_MAX_DB_HOSTS)
		return "at most " CONFIG_MAX_DB_HOSTS_TEXT " hosts";
	if (nh > 0 && na > 0 && nh != na)
		return "as many hostaddr items as host items";
	if (np > 1 && np != (n ? n : 1))
		return "one port for every host, or one port per host";
	return NULL;
}

static void wipe_and_free_conninfo(PQconninfoOption *opts)
{
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			OPENSSL_cleanse(o->val, strlen(o->val));
	PQconninfoFree(opts);
}

static void load_database_url(struct loader *ld, enum secret_state st)
{
	struct config *cfg = ld->cfg;
	char others[160] = "";
	struct secret password = {NULL, 0};
	char *user = NULL;
	char *errmsg = NULL;
	const char *host = NULL, *hostaddr = NULL, *port = NULL, *rule;
	PQconninfoOption *opts;

	for (const char *const *v = db_part_vars; *v; v++) {
		if (!util_env_get(ld->envp, *v))
			continue;
		if (others[0])
			strncat(others, ", ", sizeof(others) - strlen(others) - 1);
		strncat(others, *v, sizeof(others) - strlen(others) - 1);
	}
	if (others[0])
		add_problem(ld,
		            "DATABASE_URL: cannot be combined with %s (ambiguous); use either "
		            "DATABASE_URL or the POSTGRES_* variables",
		            others);

	if (st == SECRET_BROKEN)
		return;
	if (cfg->database_url.len == 0) {
		add_problem(ld, "DATABASE_URL: is set but empty");
		return;
	}
	opts = PQconninfoParse(cfg->database_url.bytes, &errmsg);
	if (!opts) {
		/* libpq's message may quote part of the URL, password included:
		 * it is wiped, never shown. */
		if (errmsg) {
			OPENSSL_cleanse(errmsg, strlen(errmsg));
			PQfreemem(errmsg);
		}
		add_problem(ld,
		            "DATABASE_URL: not a valid libpq connection URI or key=value string");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		if (strcmp(o->keyword, "user") == 0)
			user = dup_str(ld, "DATABASE_URL", o->val);
		else if (strcmp(o->keyword, "password") == 0)
			set_secret(ld, "DATABASE_URL", &password, o->val, strlen(o->val));
		else if (strcmp(o->keyword, "sslmode") == 0)
			ld->url_sslmode = dup_str(ld, "DATABASE_URL", o->val);
		else if (strcmp(o->keyword, "sslrootcert") == 0)
			ld->url_sslrootcert = dup_str(ld, "DATABASE_URL", o->val);
	}
	/* Named, never quoted: the lists are part of a secret. */
	rule = host_lists_problem(host, hostaddr, port);
	if (rule)
		add_problem(ld, "DATABASE_URL: %s", rule);
	wipe_and_free_conninfo(opts);

	check_db_password(ld, "DATABASE_URL", &password, user);
	if (password.bytes) {
		OPENSSL_cleanse(password.bytes, password.len);
		free(password.bytes);
	}
	free(user);
}

/* Strict decimal (util_parse_u64) within min..max; every bound is >= 0. */
static bool parse_decimal(const char *s, long long min, long long max, long long *out)
{
	uint64_t v;

	if (util_parse_u64(s, strlen(s), (uint64_t)max, &v) != 0 || v < (uint64_t)min)
		return false;
	*out = (long long)v;
	return true;
}

static long long load_int(struct loader *ld, const char *name, long long def, long long min,
                          long long max)
{
	const char *v = util_env_get(ld->envp, name);
	long long n;

	if (!v)
		return def;
	if (!parse_decimal(v, min, max, &n)) {
		char q[QUOTE_VALUE];

		add_problem(ld, "%s: must be an integer in %lld..%lld, got %s", name, min, max,
		            quote(v, q, sizeof(q)));
		return def;
	}
	return n;
}

static char *load_nonempty(struct loader *ld, const char *name, const char *def)
{
	const char *v = util_env_get(ld->envp, name);

	if (!v)
		v = def;
	if (*v == '\0') {
		add_problem(ld, "%s: must not be empty", name);
		v = def;
	}
	return dup_str(ld, name, v);
}

/* POSTGRES_PORT: one port for every host, or one per host, each 1..65535,
 * returned in canonical form ("05432" would reach libpq as "5432" either
 * way; a list is rebuilt item by item). */
static char *load_ports(struct loader *ld, const char *v, int nhosts)
{
	char out[CONFIG_MAX_DB_HOSTS * 6 + 1] = "";
	char q[QUOTE_VALUE];
	int n = list_items(v);
	const char *p = v;

	if (n < 0 || (n != 1 && n != nhosts))
		goto bad;
	for (int i = 0; i < n; i++) {
		size_t len = strcspn(p, ",");
		char item[8];
		long long port;

		if (len >= sizeof(item))
			goto bad;
		memcpy(item, p, len);
		item[len] = '\0';
		if (!parse_decimal(item, 1, 65535, &port))
			goto bad;
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%lld", i ? "," : "",
		         port);
		p += len + 1;
	}
	return dup_str(ld, "POSTGRES_PORT", out);
bad:
	if (nhosts > 1)
		add_problem(ld,
		            "POSTGRES_PORT: must be one port, or one per POSTGRES_HOST item (%d), "
		            "each an integer in 1..65535, got %s",
		            nhosts, quote(v, q, sizeof(q)));
	else
		add_problem(ld, "POSTGRES_PORT: must be an integer in 1..65535, got %s",
		            quote(v, q, sizeof(q)));
	return dup_str(ld, "POSTGRES_PORT", "5432");
}

static void load_database_parts(struct loader *ld, enum secret_state pw)
{
	struct config *cfg = ld->cfg;
	const char *ports = util_env_get(ld->envp, "POSTGRES_PORT");
	char q[QUOTE_VALUE];
	int nhosts;

	/* A comma list names a primary and its standbys: the db module passes
	 * it to libpq as one multi-host connection (see db.h). */
	cfg->pg_host = load_nonempty(ld, "POSTGRES_HOST", "localhost");
	nhosts = cfg->pg_host ? list_items(cfg->pg_host) : 1;
	if (nhosts < 0 || nhosts > CONFIG_MAX_DB_HOSTS) {
		add_problem(ld,
		            "POSTGRES_HOST: a host name, address or socket directory, or a comma "
		            "list of at most " CONFIG_MAX_DB_HOSTS_TEXT
		            " of them (no empty item, no blank), got %s",
		            quote(cfg->pg_host, q, sizeof(q)));
		nhosts = 1;
	}
	cfg->pg_port = load_ports(ld, ports ? ports : "5432", nhosts);
	cfg->pg_db = load_nonempty(ld, "POSTGRES_DB", "chat");
	cfg->pg_user = load_nonempty(ld, "POSTGRES_USER", "chat");
	if (pw != SECRET_BROKEN)
		check_db_password(ld, "POSTGRES_PASSWORD", &cfg->pg_password, cfg->pg_user);
}

static void load_database(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	enum secret_state pw;
	enum secret_state url;

	pw = load_secret(ld, "POSTGRES_PASSWORD", false, &cfg->pg_password);
	url = load_secret(ld, "DATABASE_URL", false, &cfg->database_url);
	if (url != SECRET_UNSET)
		load_database_url(ld, url);
	else
		load_database_parts(ld, pw);
}

static bool sslmode_is_strong(const char *m)
{
	return strcmp(m, "require") == 0 || strcmp(m, "verify-ca") == 0 ||
	       strcmp(m, "verify-full") == 0;
}

/* Effective sslmode: POSTGRES_SSLMODE, else the URL's, else the mode's
 * default.  The db module passes it after the URL, so it always wins. */
static void load_sslmode(struct loader *ld)
{
	const char *env = util_env_get(ld->envp, "POSTGRES_SSLMODE");
	const char *def = ld->strict ? "require" : "prefer";
	const char *eff = def;
	const char *from = "";
	char q[QUOTE_VALUE];

	if (env) {
		if (in_list(env, sslmodes))
			eff = env;
		else
			add_problem(
			    ld,
			    "POSTGRES_SSLMODE: must be one of disable, allow, prefer, require, "
			    "verify-ca, verify-full, got %s",
			    quote(env, q, sizeof(q)));
	} else if (ld->url_sslmode) {
		if (in_list(ld->url_sslmode, sslmodes)) {
			eff = ld->url_sslmode;
			from = " (from DATABASE_URL)";
		} else {
			/* Not quoted: it is part of a secret, and a missing space
			 * ("sslmode=requirepassword=...") puts the password in it
			 * (found by fuzz_config). */
			add_problem(ld, "DATABASE_URL: its sslmode must be one of disable, allow, "
			                "prefer, require, verify-ca, verify-full");
		}
	}
	if (ld->strict && !sslmode_is_strong(eff))
		add_problem(ld,
		            "POSTGRES_SSLMODE: sslmode %s%s does not protect the database "
		            "connection; %s mode needs require, verify-ca or verify-full",
		            quote(eff, q, sizeof(q)), from, config_mode_name(ld->mode));
	ld->cfg->pg_sslmode = dup_str(ld, "POSTGRES_SSLMODE", eff);
}

static void load_sslrootcert(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	const char *path = util_env_get(ld->envp, "POSTGRES_SSLROOTCERT");
	const char *shown;
	bool from_url = false;
	const char *mode = cfg->pg_sslmode;
	char q[QUOTE_PATH];
	struct stat st;

	if (!path && ld->url_sslrootcert) {
		path = ld->url_sslrootcert;
		from_url = true;
	}
	if (!path) {
		/* libpq would fall back to ~/.postgresql/root.crt, which
		 * depends on whose home the worker runs in: be explicit. */
		if (mode && (strcmp(mode, "verify-ca") == 0 || strcmp(mode, "verify-full") == 0))
			add_problem(
			    ld,
			    "POSTGRES_SSLROOTCERT: required when sslmode is %s (the CA file "
			    "that signed the server certificate)",
			    mode);
		return;
	}
	/* A path from DATABASE_URL is part of a secret: named, never quoted. */
	shown = from_url ? "the sslrootcert of DATABASE_URL" : quote(path, q, sizeof(q));
	if (stat(path, &st) != 0) {
		add_problem(ld, "POSTGRES_SSLROOTCERT: cannot use %s: %s", shown, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		add_problem(ld, "POSTGRES_SSLROOTCERT: %s is not a regular file", shown);
	} else if (access(path, R_OK) != 0) {
		add_problem(ld, "POSTGRES_SSLROOTCERT: cannot read %s: %s", shown, strerror(errno));
	}
	cfg->pg_sslrootcert = dup_str(ld, "POSTGRES_SSLROOTCERT", path);
}

static void load_scrypt(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	cfg->scrypt_log2_n = (unsigned)load_int(ld, "SCRYPT_N", 15, 10, 22);
	/* 2^14/8/5 is OWASP's weakest equal-strength setting we still accept
	 * for production (see FIELD-NOTES: libscrypt). */
	if (ld->mode == APP_MODE_PROD && cfg->scrypt_log2_n < 14)
		add_problem(ld,
		            "SCRYPT_N: must be at least 14 in PROD mode (N = 2^SCRYPT_N), got %u",
		            cfg->scrypt_log2_n);
	cfg->scrypt_r = (unsigned)load_int(ld, "SCRYPT_R", 8, 1, 255);
	cfg->scrypt_p = (unsigned)load_int(ld, "SCRYPT_P", 3, 1, 255);
}

/* "N/unit" with N 1..1000000 written without sign or leading zero, or "off". */
static bool parse_rate(const char *s, struct rate_policy *out)
{
	static const struct {
		const char *name;
		uint32_t seconds;
	} units[] = {{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}};
	const char *slash = strchr(s, '/');
	uint64_t n;

	if (strcmp(s, "off") == 0) {
		out->limit = 0;
		out->period_s = 0;
		return true;
	}
	if (!slash || *s == '0' || util_parse_u64(s, (size_t)(slash - s), 1000000, &n) != 0 ||
	    n == 0)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(slash + 1, units[i].name) == 0) {
			out->limit = (uint32_t)n;
			out->period_s = units[i].seconds;
			return true;
		}
	}
	return false;
}

static void load_rate(struct loader *ld, const char *name, const char *def, struct rate_policy *out)
{
	const char *v = util_env_get(ld->envp, name);

	if (v && parse_rate(v, out))
		return;
	if (v) {
		char q[QUOTE_VALUE];

		add_problem(ld,
		            "%s: must be N/second, N/minute, N/hour or N/day with N in 1..1000000, "
		            "or off, got %s",
		            name, quote(v, q, sizeof(q)));
	}
	parse_rate(def, out);
}

/* host (the default) or cluster: a typo must not silently leave a cluster
 * counting per host, so anything else stops the worker. */
static void load_rate_limit_scope(struct loader *ld)
{
	const char *v = util_env_get(ld->envp, "RATE_LIMIT_SCOPE");
	char q[QUOTE_VALUE];

	ld->cfg->rate_limit_scope = RATE_LIMIT_SCOPE_HOST;
	if (!v || strcmp(v, "host") == 0)
		return;
	if (strcmp(v, "cluster") == 0)
		ld->cfg->rate_limit_scope = RATE_LIMIT_SCOPE_CLUSTER;
	else
		add_problem(ld, "RATE_LIMIT_SCOPE: must be host or cluster, got %s",
		            quote(v, q, sizeof(q)));
}

static void load_rate_limits(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	const char *shm = util_env_get(ld->envp, "RATE_LIMIT_SHM");

	load_rate(ld, "RATE_LIMIT_AUTH", "5/minute", &cfg->rate_auth);
	load_rate(ld, "RATE_LIMIT_CHAT", "5/minute", &cfg->rate_chat);
	load_rate(ld, "RATE_LIMIT_READ", "60/minute", &cfg->rate_read);

	if (!shm)
		shm = "/chat-fcgi";
	/* shm_open(3): portable names are "/" followed by up to NAME_MAX
	 * characters, none of them a slash. */
	if (shm[0] != '/' || strlen(shm) < 2 || strlen(shm) > 200 || strchr(shm + 1, '/')) {
		char q[QUOTE_VALUE];

		add_problem(ld,
		            "RATE_LIMIT_SHM: must be '/' followed by 1..199 characters without "
		            "another '/', got %s",
		            quote(shm, q, sizeof(q)));
		shm = "/chat-fcgi";
	}
	cfg->rate_limit_shm = dup_str(ld, "RATE_LIMIT_SHM", shm);
	cfg->rate_limit_slots = (uint32_t)load_int(ld, "RATE_LIMIT_SLOTS", 65536, 1024, 16777216);
	load_rate_limit_scope(ld);
}

static void load_cidrs(struct loader *ld, const char *name, const char *def, struct cidr_list *out)
{
	const char *v = util_env_get(ld->envp, name);
	char q[QUOTE_VALUE];
	size_t bad = 0;
	size_t len;

	if (!v)
		v = def;
	if (cidr_list_parse(v, out, &bad) == 0)
		return;
	if (errno == ENOMEM) {
		out_of_memory(ld, name);
		return;
	}
	len = strcspn(v + bad, ",");
	while (len > 0 && (v[bad + len - 1] == ' ' || v[bad + len - 1] == '\t'))
		len--;
	add_problem(ld, "%s: item %s is not an IPv4/IPv6 address or CIDR (comma-separated list)",
	            name, quote_n(v + bad, len, q, sizeof(q)));
}

static void load_log_level(struct loader *ld)
{
	const char *v = util_env_get(ld->envp, "LOG_LEVEL");
	char q[QUOTE_VALUE];

	ld->cfg->log_level = LOG_LEVEL_INFO;
	if (!v || strcmp(v, "info") == 0)
		return;
	if (strcmp(v, "debug") == 0)
		ld->cfg->log_level = LOG_LEVEL_DEBUG;
	else if (strcmp(v, "warn") == 0)
		ld->cfg->log_level = LOG_LEVEL_WARN;
	else if (strcmp(v, "error") == 0)
		ld->cfg->log_level = LOG_LEVEL_ERROR;
	else
		add_problem(ld, "LOG_LEVEL: must be debug, info, warn or error, got %s",
		            quote(v, q, sizeof(q)));
}

static void load_worker_seccomp(struct loader *ld)
{
	const char *v = util_env_get(ld->envp, "WORKER_SECCOMP");
	char q[QUOTE_VALUE];

	ld->cfg->worker_seccomp = true;
	if (!v || strcmp(v, "on") == 0)
		return;
	if (strcmp(v, "off") == 0)
		ld->cfg->worker_seccomp = false;
	else
		/* A typo must not leave a worker unconfined: it stays on, and
		 * the problem stops the worker anyway. */
		add_problem(ld, "WORKER_SECCOMP: must be on or off, got %s",
		            quote(v, q, sizeof(q)));
}

int config_load(struct config *cfg, char *const *envp, struct config_problems *problems)
{
	struct loader ld = {
	    .cfg = cfg,
	    .envp = envp,
	    .problems = problems,
	};

	memset(cfg, 0, sizeof(*cfg));
	/* Same order as the table in SPEC §4. */
	load_mode(&ld);
	load_secret_keys(&ld);
	load_database(&ld);
	load_sslmode(&ld);
	load_sslrootcert(&ld);
	cfg->access_token_ttl = (long)load_int(&ld, "ACCESS_TOKEN_TTL", 3600, 60, 2592000);
	load_scrypt(&ld);
	load_rate_limits(&ld);
	load_cidrs(&ld, "TRUSTED_PROXIES", "", &cfg->trusted_proxies);
	load_cidrs(&ld, "METRICS_ALLOW", "127.0.0.0/8,::1/128", &cfg->metrics_allow);
	cfg->max_body_bytes = (size_t)load_int(&ld, "MAX_BODY_BYTES", 65536, 1024, 16777216);
	cfg->db_timeout_ms = (unsigned)load_int(&ld, "DB_TIMEOUT_MS", 5000, 100, 600000);
	load_log_level(&ld);
	load_worker_seccomp(&ld);

	free(ld.url_sslmode);
	free(ld.url_sslrootcert);
	return ld.failed ? -1 : 0;
}

/*
 * chat-admin's ratelimit commands read or reset the segment: they need its
 * name, not the secrets or the database, so that an operator can inspect a
 * running stack without its secrets in the environment.  Same rules and
 * defaults as config_load.
 */
int config_load_rate_limits(struct config *cfg, char *const *envp, struct config_problems *problems)
{
	struct loader ld = {
	    .cfg = cfg,
	    .envp = envp,
	    .problems = problems,
	};

	memset(cfg, 0, sizeof(*cfg));
	load_rate_limits(&ld);
	return ld.failed ? -1 : 0;
}

static void secret_free(struct secret *s)
{
	if (s->bytes) {
		OPENSSL_cleanse(s->bytes, s->len);
		free(s->bytes);
	}
	s->bytes = NULL;
	s->len = 0;
}

void config_free(struct config *cfg)
{
	secret_free(&cfg->secret_key);
	secret_free(&cfg->secret_key_previous);
	secret_free(&cfg->database_url);
	secret_free(&cfg->pg_password);
	free(cfg->pg_host);
	free(cfg->pg_port);
	free(cfg->pg_db);
	free(cfg->pg_user);
	free(cfg->pg_sslmode);
	free(cfg->pg_sslrootcert);
	free(cfg->rate_limit_shm);
	cidr_list_free(&cfg->trusted_proxies);
	cidr_list_free(&cfg->metrics_allow);
	memset(cfg, 0, sizeof(*cfg));
}

void config_problems_free(struct config_problems *problems)
{
	for (size_t i = 0; i < problems->count; i++)
		free(problems->lines[i]);
	free(problems->lines);
	problems->lines = NULL;
	problems->count = 0;
}

const char *config_mode_name(enum app_mode mode)
{
	switch (mode) {
	case APP_MODE_DEV:
		return "DEV";
	case APP_MODE_TEST:
		return "TEST";
	case APP_MODE_PROD:
		return "PROD";
	}
	return "?";
}
