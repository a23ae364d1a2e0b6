/*
 * netaddr: IPv4/IPv6 addresses and CIDR lists for TRUSTED_PROXIES,
 * METRICS_ALLOW, client-address resolution and rate-limit keys.
 *
 * Parsing is inet_pton only, so the accepted syntax is exactly the one the
 * C library documents: no octal or short IPv4 forms ("010.1", "10.1"), no
 * zone ids.  Every struct netaddr holds its family and the address bytes with
 * unused bytes zero, so two equal addresses compare equal byte for byte.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes AF_INET: a dual-stack socket
 * reports IPv4 clients that way, and an operator who writes 10.0.0.0/8 means
 * them too.  The families never mix otherwise: ::/0 does not match an IPv4
 * client.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

/* Longer than any textual address inet_pton accepts (INET6_ADDRSTRLEN is
 * 46), so a longer item is rejected without being copied. */
#define ADDR_TEXT_MAX 64

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && util_is_ows(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && util_is_ows((*s)[*n - 1]))
		(*n)--;
}

/* Exactly n bytes of s, no spaces, no mapping. */
static int parse_exact(const char *s, size_t n, struct netaddr *out)
{
	char buf[ADDR_TEXT_MAX];

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

static bool is_v4_mapped(const struct netaddr *a)
{
	return a->family == AF_INET6 && memcmp(a->bytes, v4_mapped_prefix, 12) == 0;
}

static void unmap(struct netaddr *a)
{
	memmove(a->bytes, a->bytes + 12, 4);
	memset(a->bytes + 4, 0, sizeof(a->bytes) - 4);
	a->family = AF_INET;
}

static int parse_n(const char *text, size_t n, struct netaddr *out)
{
	struct netaddr a;

	trim(&text, &n);
	if (parse_exact(text, n, &a) != 0)
		return -1;
	if (is_v4_mapped(&a))
		unmap(&a);
	*out = a;
	return 0;
}

int netaddr_parse(const char *text, struct netaddr *out)
{
	return parse_n(text, strlen(text), out);
}

int netaddr_client(const char *remote_addr, const char *forwarded_for,
                   const struct cidr_list *trusted, struct netaddr *out)
{
	const char *end;

	if (!remote_addr || netaddr_parse(remote_addr, out) != 0)
		return -1;
	if (!cidr_list_contains(trusted, out) || !forwarded_for)
		return 0;
	/* Walk from the right: each hop we trust appended the address it saw.
	 * The first one we do not trust is the client; a hop we cannot parse
	 * stops the walk at the last address a trusted proxy vouched for. */
	end = forwarded_for + strlen(forwarded_for);
	while (end > forwarded_for) {
		const char *start = end;
		struct netaddr hop;

		while (start > forwarded_for && start[-1] != ',')
			start--;
		if (parse_n(start, (size_t)(end - start), &hop) != 0)
			return 0;
		*out = hop;
		if (!cidr_list_contains(trusted, &hop))
			return 0;
		end = start > forwarded_for ? start - 1 : start;
	}
	return 0;
}

static unsigned max_prefix(int family)
{
	return family == AF_INET ? 32 : 128;
}

static void clear_host_bits(struct netaddr *a, unsigned prefix)
{
	size_t nbytes = a->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned first_bit = (unsigned)i * 8;

		if (first_bit >= prefix)
			a->bytes[i] = 0;
		else if (prefix - first_bit < 8)
			a->bytes[i] &= (unsigned char)(0xff00u >> (prefix - first_bit));
	}
}

/* Digits only, at most three: rejects "", "+8", "-1", " 8", "8x". */
static int parse_prefix(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_cidr_n(const char *s, size_t n, struct cidr *out)
{
	const char *slash;
	size_t addr_len;
	struct cidr c;

	trim(&s, &n);
	slash = memchr(s, '/', n);
	addr_len = slash ? (size_t)(slash - s) : n;
	memset(&c, 0, sizeof(c));
	if (parse_exact(s, addr_len, &c.addr) != 0)
		return -1;
	if (slash) {
		if (parse_prefix(slash + 1, n - addr_len - 1, &c.prefix) != 0)
			return -1;
		if (c.prefix > max_prefix(c.addr.family))
			return -1;
	} else {
		c.prefix = max_prefix(c.addr.family);
	}
	/* A mapped network lies wholly inside ::ffff:0:0/96 only from /96 on;
	 * a shorter one is a genuine IPv6 network and stays IPv6. */
	if (is_v4_mapped(&c.addr) && c.prefix >= 96) {
		unmap(&c.addr);
		c.prefix -= 96;
	}
	/* Clearing (rather than rejecting) host bits accepts the common
	 * "10.0.0.1/8" meaning "the /8 around this address". */
	clear_host_bits(&c.addr, c.prefix);
	*out = c;
	return 0;
}

int cidr_parse(const char *text, struct cidr *out)
{
	return parse_cidr_n(text, strlen(text), out);
}

/* Sets errno to EINVAL for a bad item and ENOMEM when allocation failed, so a
 * caller can tell "fix your list" from "out of memory". */
int cidr_list_parse(const char *text, struct cidr_list *out, size_t *bad_item)
{
	size_t len = strlen(text);
	size_t items = 1;
	size_t start = 0;
	size_t count = 0;
	struct cidr *list;
	const char *t = text;
	size_t n = len;

	out->items = NULL;
	out->count = 0;
	trim(&t, &n);
	if (n == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (text[i] == ',')
			items++;
	list = calloc(items, sizeof(*list));
	if (!list) {
		if (bad_item)
			*bad_item = 0;
		errno = ENOMEM;
		return -1;
	}
	while (start <= len) {
		const char *comma = memchr(text + start, ',', len - start);
		size_t end = comma ? (size_t)(comma - text) : len;

		if (parse_cidr_n(text + start, end - start, &list[count]) != 0) {
			size_t at = start;

			while (at < end && util_is_ows(text[at]))
				at++;
			if (bad_item)
				*bad_item = at;
			free(list);
			errno = EINVAL;
			return -1;
		}
		count++;
		start = end + 1;
	}
	out->items = list;
	out->count = count;
	return 0;
}

void cidr_list_free(struct cidr_list *list)
{
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

bool cidr_contains(const struct cidr *c, const struct netaddr *a)
{
	unsigned full = c->prefix / 8;
	unsigned rest = c->prefix % 8;

	if (c->addr.family != a->family || c->prefix > max_prefix(a->family))
		return false;
	if (memcmp(c->addr.bytes, a->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->addr.bytes[full] ^ a->bytes[full]) & (0xff00u >> rest)) == 0;
}

bool cidr_list_contains(const struct cidr_list *l, const struct netaddr *a)
{
	for (size_t i = 0; i < l->count; i++)
		if (cidr_contains(&l->items[i], a))
			return true;
	return false;
}

int netaddr_format(const struct netaddr *a, char *buf, size_t buflen)
{
	if (a->family != AF_INET && a->family != AF_INET6)
		return -1;
	return inet_ntop(a->family, a->bytes, buf, (socklen_t)buflen) ? 0 : -1;
}

int netaddr_key(const struct netaddr *a, char *buf, size_t buflen)
{
	int n;

	if (a->family == AF_INET) {
		n = snprintf(buf, buflen, "4:%u.%u.%u.%u", a->bytes[0], a->bytes[1], a->bytes[2],
		             a->bytes[3]);
	} else if (a->family == AF_INET6) {
		/* Only the /64: one host usually owns a whole /64, so keying
		 * by the full address would let it rotate out of its limit. */
		n = snprintf(buf, buflen, "6:%02x%02x%02x%02x%02x%02x%02x%02x", a->bytes[0],
		             a->bytes[1], a->bytes[2], a->bytes[3], a->bytes[4], a->bytes[5],
		             a->bytes[6], a->bytes[7]);
	} else {
		return -1;
	}
	if (n < 0 || (size_t)n >= buflen)
		return -1;
	return n;
}
