/*
 * common_passwords: a linear scan of the compiled-in list.  See
 * common_passwords.h.
 *
 * 613 entries: a scan costs a few microseconds, next to the quarter second
 * of the scrypt hash that follows an accepted password, so neither an index
 * nor its per-worker memory is worth having.
 */
#include "common_passwords.h"

#include <string.h>

#include <openssl/crypto.h>

/* static const char list[]: the entries, each ending in '\n', lower-case
 * (made by scripts/lines-to-c.awk from data/common-passwords.txt at build
 * time). */
#include "common_passwords.inc"

bool common_password(const char *password, size_t len)
{
	char lower[COMMON_PASSWORD_MAX];
	bool found = false;
	const char *p = list, *end = list + sizeof list - 1;

	if (len == 0 || len > sizeof lower)
		return false;
	for (size_t i = 0; i < len; i++)
		lower[i] = password[i] >= 'A' && password[i] <= 'Z'
		               ? (char)(password[i] - 'A' + 'a')
		               : password[i];
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);

		/* No early exit: a match costs what a miss costs. */
		if (n == len)
			found |= CRYPTO_memcmp(p, lower, len) == 0;
		p = nl + 1;
	}
	OPENSSL_cleanse(lower, len);
	return found;
}

size_t common_passwords_count(void)
{
	size_t n = 0;

	for (const char *p = list; *p; p++)
		n += *p == '\n';
	return n;
}
