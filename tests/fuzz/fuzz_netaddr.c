/*
 * fuzz_netaddr: the client address and the CIDR lists.
 *
 * Input: four lines, REMOTE_ADDR, X-Forwarded-For, TRUSTED_PROXIES and
 * METRICS_ALLOW, fed to what the worker does with them: cidr_list_parse()
 * (as config does), netaddr_client() (as the rate limiter and /metrics
 * do), netaddr_key() and the METRICS_ALLOW check.
 *
 * Invariants: a parsed address prints and parses back to itself and is
 * never an IPv4-mapped IPv6; list items have no host bits and contain
 * their own network; the client is what an independent walk of
 * X-Forwarded-For finds; keys are short, and IPv6 keys depend on the /64
 * alone.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Line i of the input as a C string (a NUL ends it early, as in a header). */
static char *line(const uint8_t *data, size_t size, int i)
{
	const uint8_t *p = data, *end = data + size, *nl;
	char *s;

	for (; i > 0 && p < end; i--) {
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	nl = memchr(p, '\n', (size_t)(end - p));
	s = strndup((const char *)p, (size_t)((nl ? nl : end) - p));
	if (!s)
		fuzz_fail("out of memory");
	return s;
}

static void check_address(const struct netaddr *a)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char text[INET6_ADDRSTRLEN];
	struct netaddr back;
	size_t used = a->family == AF_INET ? 4 : 16;

	if (a->family != AF_INET && a->family != AF_INET6)
		fuzz_fail("address of family %d", a->family);
	for (size_t i = used; i < sizeof a->bytes; i++)
		if (a->bytes[i])
			fuzz_fail("unused address bytes not zero");
	if (a->family == AF_INET6 && memcmp(a->bytes, mapped, 12) == 0)
		fuzz_fail("an IPv4-mapped address left as IPv6");
	if (!inet_ntop(a->family, a->bytes, text, sizeof text) || netaddr_parse(text, &back) != 0 ||
	    memcmp(&back, a, sizeof back) != 0)
		fuzz_fail("address does not survive print and parse");
}

static void check_list(const char *text, const struct cidr_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct cidr *c = &l->items[i];
		struct cidr only = *c;
		if (c->prefix > (c->addr.family == AF_INET ? 32u : 128u))
			fuzz_fail("prefix /%u", c->prefix);
		check_address(&c->addr);
		if (!cidr_contains(c, &c->addr))
			fuzz_fail("a network does not contain its own address");
		/* Host bits are cleared: the next prefix up still matches. */
		if (c->prefix < (c->addr.family == AF_INET ? 32u : 128u)) {
			only.prefix++;
			if (!cidr_contains(&only, &c->addr))
				fuzz_fail("host bits left in %s", text);
		}
	}
}

/* The SPEC's rule, walked independently: REMOTE_ADDR unless trusted; then
 * the right-most X-Forwarded-For entry that is not a trusted proxy, or the
 * last good one when an entry does not parse (or all are trusted). */
static int reference_client(const char *remote, const char *xff, const struct cidr_list *trusted,
                            struct netaddr *out)
{
	char *copy, *entries[256];
	size_t n = 0;

	if (netaddr_parse(remote, out) != 0)
		return -1;
	if (!cidr_list_contains(trusted, out) || !xff)
		return 0;
	copy = strdup(xff);
	if (!copy)
		fuzz_fail("out of memory");
	/* Entries are the comma-separated pieces, empty ones included. */
	entries[n++] = copy;
	for (char *c = copy; *c; c++) {
		if (*c == ',') {
			*c = '\0';
			if (n == 256)
				break;
			entries[n++] = c + 1;
		}
	}
	while (n > 0) {
		struct netaddr hop;
		if (netaddr_parse(entries[--n], &hop) != 0)
			break;
		*out = hop;
		if (!cidr_list_contains(trusted, &hop))
			break;
	}
	free(copy);
	return 0;
}

static size_t commas(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* Membership compared bit by bit, for the families as netaddr keeps them. */
static bool reference_contains(const struct cidr_list *l, const struct netaddr *a)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct cidr *c = &l->items[i];
		unsigned b = 0;
		if (c->addr.family != a->family)
			continue;
		while (b < c->prefix &&
		       ((c->addr.bytes[b / 8] ^ a->bytes[b / 8]) & (0x80u >> (b % 8))) == 0)
			b++;
		if (b == c->prefix)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *remote = line(data, size, 0), *xff = line(data, size, 1);
	char *trusted_text = line(data, size, 2), *allow_text = line(data, size, 3);
	struct cidr_list trusted = {0}, allow = {0};
	struct netaddr client, expect;
	char key[64];
	size_t bad = 0;
	int r;

	if (cidr_list_parse(trusted_text, &trusted, &bad) == 0)
		check_list(trusted_text, &trusted);
	else if (bad > strlen(trusted_text))
		fuzz_fail("bad item offset past the text");
	if (cidr_list_parse(allow_text, &allow, &bad) == 0)
		check_list(allow_text, &allow);

	/* The reference walks at most 256 entries, far beyond any real chain. */
	if (commas(xff) < 255) {
		r = netaddr_client(remote, xff[0] ? xff : NULL, &trusted, &client);
		if ((r == 0) !=
		    (reference_client(remote, xff[0] ? xff : NULL, &trusted, &expect) == 0))
			fuzz_fail("client address found by one walk only");
		if (r == 0 && memcmp(&client, &expect, sizeof client) != 0)
			fuzz_fail("client address differs from the reference walk");
	} else {
		r = netaddr_client(remote, xff, &trusted, &client);
	}
	if (r == 0) {
		int n = netaddr_key(&client, key, sizeof key);
		check_address(&client);
		if (n < 3 || n > 18 || (size_t)n != strlen(key) ||
		    key[0] != (client.family == AF_INET ? '4' : '6') || key[1] != ':')
			fuzz_fail("key \"%s\"", key);
		if (client.family == AF_INET6) {
			struct netaddr other = client;
			char key2[64];
			other.bytes[15] ^= 0xff; /* same /64 ... */
			if (netaddr_key(&other, key2, sizeof key2) != n || strcmp(key, key2) != 0)
				fuzz_fail("IPv6 key depends on the interface id");
			other.bytes[7] ^= 0x01; /* ... another /64 */
			if (netaddr_key(&other, key2, sizeof key2) != n || strcmp(key, key2) == 0)
				fuzz_fail("IPv6 key ignores the /64");
		}
		/* /metrics opens exactly to the listed networks. */
		if (cidr_list_contains(&allow, &client) != reference_contains(&allow, &client))
			fuzz_fail("METRICS_ALLOW decision differs from a bit-by-bit match");
	}
	cidr_list_free(&trusted);
	cidr_list_free(&allow);
	free(remote);
	free(xff);
	free(trusted_text);
	free(allow_text);
	return 0;
}
