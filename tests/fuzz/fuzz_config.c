/*
 * fuzz_config: the configuration loader, over an environment built from
 * the input.
 *
 * Each input line is one "NAME=value" entry of the environment.  A value of
 * a NAME_FILE variable becomes the content of an in-memory file (memfd)
 * whose /proc/self/fd path is what the loader gets, so the secret-file
 * reader runs too; "\n" (backslash, n) in such a value is a newline.
 *
 * Invariants: success means no problem and a configuration that obeys the
 * rules of its mode; failure means at least one problem; every problem
 * line names a variable, is printable ASCII (a value can neither forge a
 * line nor smuggle raw bytes), and never quotes a secret, not even 8 bytes
 * of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VARS 48

static const char *const secret_names[] = {"SECRET_KEY", "SECRET_KEY_PREVIOUS", "POSTGRES_PASSWORD",
                                           "DATABASE_URL", NULL};

struct env {
	char *vars[MAX_VARS + 2]; /* room for APP_MODE=PROD and the NULL */
	size_t n;
	int fds[MAX_VARS];
	size_t nfds;
	/* Secret values as given (inline or in a file), for the leak check,
	 * and the entry each came from (-1: a file). */
	char *secrets[MAX_VARS];
	int secret_from[MAX_VARS];
	size_t nsecrets;
};

static bool is_secret_name(const char *name, size_t n)
{
	for (const char *const *s = secret_names; *s; s++) {
		size_t sn = strlen(*s);
		if ((n == sn && memcmp(name, *s, n) == 0) ||
		    (n == sn + 5 && memcmp(name, *s, sn) == 0 &&
		     memcmp(name + sn, "_FILE", 5) == 0))
			return true;
	}
	return false;
}

static char *must_dup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (!d)
		fuzz_fail("out of memory");
	return d;
}

/* NAME_FILE=value: value (with "\n" unescaped) into a memfd. */
static char *file_var(struct env *e, const char *line, size_t name_len, const char *value)
{
	char *content = must_dup(value, strlen(value)), *o = content, path[64], *var;
	int fd;

	for (const char *v = value; *v; v++) {
		if (v[0] == '\\' && v[1] == 'n') {
			*o++ = '\n';
			v++;
		} else {
			*o++ = *v;
		}
	}
	*o = '\0';
	fd = memfd_create("fuzz-secret", MFD_CLOEXEC);
	if (fd < 0 || write(fd, content, (size_t)(o - content)) != o - content)
		fuzz_fail("memfd");
	e->fds[e->nfds++] = fd;
	if (is_secret_name(line, name_len)) {
		e->secret_from[e->nsecrets] = -1;
		e->secrets[e->nsecrets++] = content;
	} else
		free(content);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	var = malloc(name_len + 1 + strlen(path) + 1);
	if (!var)
		fuzz_fail("out of memory");
	memcpy(var, line, name_len + 1);
	strcpy(var + name_len + 1, path);
	return var;
}

static void build_env(const uint8_t *data, size_t size, struct env *e)
{
	const uint8_t *p = data, *end = data + size;

	memset(e, 0, sizeof *e);
	while (p < end && e->n < MAX_VARS) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = must_dup((const char *)p, (size_t)((nl ? nl : end) - p));
		char *eq = strchr(line, '=');
		size_t name_len = eq ? (size_t)(eq - line) : 0;

		p = nl ? nl + 1 : end;
		if (eq && name_len > 5 && memcmp(eq - 5, "_FILE", 5) == 0) {
			e->vars[e->n++] = file_var(e, line, name_len, eq + 1);
			free(line);
			continue;
		}
		if (eq && is_secret_name(line, name_len)) {
			e->secret_from[e->nsecrets] = (int)e->n;
			e->secrets[e->nsecrets++] = must_dup(eq + 1, strlen(eq + 1));
		}
		e->vars[e->n++] = line;
	}
	e->vars[e->n] = NULL;
}

static void free_env(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->vars[i]);
	for (size_t i = 0; i < e->nfds; i++)
		close(e->fds[i]);
	for (size_t i = 0; i < e->nsecrets; i++)
		free(e->secrets[i]);
}

/* Bytes a problem line can only hold if a value went in: none of them
 * occurs in the loader's fixed texts ("=", "^" and "*" do: "key=value",
 * "2^SCRYPT_N", "POSTGRES_*") or in strerror(). */
static bool has_marker(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("!#$&+?@`{|}~<>", s[i]) && s[i])
			return true;
	return false;
}

/* A value as a problem line quotes it: \xHH for quotes, backslashes and
 * bytes outside printable ASCII. */
static char *escaped(const char *v)
{
	char *out = malloc(4 * strlen(v) + 1), *o = out;

	if (!out)
		fuzz_fail("out of memory");
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			*o++ = (char)c;
		else
			o += sprintf(o, "\\x%02x", c);
	}
	*o = '\0';
	return out;
}

/* Does needle occur in the value of an entry other than `own`, as written
 * or as quoted?  Then a problem line may show it from there: the operator
 * wrote those bytes twice. */
static bool in_other_values(const struct env *e, int own, const char *needle, size_t n)
{
	for (size_t i = 0; i < e->n; i++) {
		const char *eq = strchr(e->vars[i], '=');
		char *q;
		bool found;
		if ((int)i == own || !eq)
			continue;
		q = escaped(eq + 1);
		found =
		    memmem(eq + 1, strlen(eq + 1), needle, n) || memmem(q, strlen(q), needle, n);
		free(q);
		if (found)
			return true;
	}
	return false;
}

/* Is the quoted text q[0..n) (quote_n()'s output between its quote marks,
 * maybe cut with "...") the quote of a value that is not a secret? */
static bool quotes_a_plain_value(const struct env *e, const char *q, size_t n)
{
	if (n >= 3 && memcmp(q + n - 3, "...", 3) == 0)
		n -= 3;
	for (size_t i = 0; i < e->n; i++) {
		const char *eq = strchr(e->vars[i], '=');
		char *esc;
		bool match;
		if (!eq || is_secret_name(e->vars[i], (size_t)(eq - e->vars[i])))
			continue;
		esc = escaped(eq + 1);
		match = strlen(esc) >= n && memcmp(esc, q, n) == 0;
		free(esc);
		if (match)
			return true;
	}
	return false;
}

/* The line with every quoted non-secret value (quote marks included)
 * replaced by '_': what remains is fixed text and anything else. */
static char *mask_quoted_values(const struct env *e, const char *line)
{
	char *m = strdup(line), *open, *close;

	if (!m)
		fuzz_fail("out of memory");
	for (open = strchr(m, '"'); open && (close = strchr(open + 1, '"'));
	     open = strchr(close + 1, '"')) {
		if (quotes_a_plain_value(e, open + 1, (size_t)(close - open - 1)))
			memset(open, '_', (size_t)(close - open + 1));
	}
	return m;
}

static void check_problems(const struct env *e, const struct config_problems *p)
{
	for (size_t i = 0; i < p->count; i++) {
		const char *l = p->lines[i];
		size_t name = strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		if (name == 0 || l[name] != ':')
			fuzz_fail("problem line does not start with a variable: %s", l);
		for (const char *c = l; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				fuzz_fail("raw byte 0x%02x in a problem line", (unsigned char)*c);
		/* Any 8 bytes of a secret, not only its start: a value glued to
		 * a password ("sslmode=requirepassword=...") shows its middle.
		 * Quotes of non-secret values are blanked out first: a secret
		 * may share bytes with them, and their quote marks with it. */
		char *masked = mask_quoted_values(e, l);
		for (size_t s = 0; s < e->nsecrets; s++) {
			const char *v = e->secrets[s];
			for (size_t k = 0; k + 8 <= strlen(v); k++)
				if (has_marker(v + k, 8) &&
				    !in_other_values(e, e->secret_from[s], v + k, 8) &&
				    memmem(masked, strlen(masked), v + k, 8))
					fuzz_fail(
					    "bytes %zu.. of secret #%zu (\"%.8s\") in a problem "
					    "line: %s",
					    k, s, v + k, l);
		}
		free(masked);
	}
}

static size_t distinct_bytes(const struct secret *s)
{
	bool seen[256] = {false};
	size_t n = 0;

	for (size_t i = 0; i < s->len; i++)
		if (!seen[(unsigned char)s->bytes[i]]++)
			n++;
	return n;
}

static void check_config(const struct config *c)
{
	bool strict = c->mode != APP_MODE_DEV;
	const char *m = c->pg_sslmode;

	if (!c->secret_key.bytes || c->secret_key.len == 0)
		fuzz_fail("accepted without SECRET_KEY");
	if (c->secret_key_previous.len == c->secret_key.len &&
	    CRYPTO_memcmp(c->secret_key_previous.bytes, c->secret_key.bytes, c->secret_key.len) ==
	        0)
		fuzz_fail("accepted with SECRET_KEY_PREVIOUS equal to SECRET_KEY");
	if (!m)
		fuzz_fail("accepted without an sslmode");
	if (strict) {
		if (c->secret_key.len < 32 || distinct_bytes(&c->secret_key) < 10)
			fuzz_fail("weak SECRET_KEY accepted in TEST/PROD");
		if (strcmp(m, "require") != 0 && strcmp(m, "verify-ca") != 0 &&
		    strcmp(m, "verify-full") != 0)
			fuzz_fail("sslmode %s accepted in TEST/PROD", m);
		if (!c->database_url.bytes && c->pg_password.len < 16)
			fuzz_fail("short database password accepted in TEST/PROD");
	}
	if (c->mode == APP_MODE_PROD && c->scrypt_log2_n < 14)
		fuzz_fail("SCRYPT_N %u accepted in PROD", c->scrypt_log2_n);
	if (c->max_body_bytes < 1024 || c->max_body_bytes > 16777216 || c->db_timeout_ms < 100 ||
	    c->db_timeout_ms > 600000 || c->access_token_ttl < 60 || c->access_token_ttl > 2592000)
		fuzz_fail("a number out of its range accepted");
}

/* As the loader looks a name up: the first entry "NAME=" wins. */
static bool has_var(const struct env *e, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
			return true;
	return false;
}

/* One load of e's environment, and every invariant on its outcome. */
static void check_load(const struct env *e)
{
	struct config cfg;
	struct config_problems problems = {0};
	int r;

	memset(&cfg, 0, sizeof cfg);
	r = config_load(&cfg, e->vars, &problems);
	if (r == 0 && problems.count != 0)
		fuzz_fail("accepted with %zu problems", problems.count);
	if (r != 0 && problems.count == 0)
		fuzz_fail("refused without a problem");
	check_problems(e, &problems);
	if (r == 0) {
		check_config(&cfg);
		if ((has_var(e, "DATABASE_URL") || has_var(e, "DATABASE_URL_FILE")) &&
		    (has_var(e, "POSTGRES_HOST") || has_var(e, "POSTGRES_PORT") ||
		     has_var(e, "POSTGRES_DB") || has_var(e, "POSTGRES_USER") ||
		     has_var(e, "POSTGRES_PASSWORD") || has_var(e, "POSTGRES_PASSWORD_FILE")))
			fuzz_fail("accepted with both DATABASE_URL and POSTGRES_* parts");
	}
	config_problems_free(&problems);
	config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char prod[] = "APP_MODE=PROD";
	struct env e;

	build_env(data, size, &e);
	check_load(&e);
	/* The same environment in production (the first entry of a name
	 * wins): every configuration the fuzzer makes valid in DEV meets
	 * the strict rules too. */
	memmove(e.vars + 1, e.vars, (e.n + 1) * sizeof e.vars[0]);
	e.vars[0] = prod;
	for (size_t i = 0; i < e.nsecrets; i++)
		if (e.secret_from[i] >= 0)
			e.secret_from[i]++;
	e.n++;
	check_load(&e);
	memmove(e.vars, e.vars + 1, e.n * sizeof e.vars[0]);
	e.n--;
	free_env(&e);
	return 0;
}
