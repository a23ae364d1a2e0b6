/*
 * netaddr: IPv4/IPv6 addresses and CIDR lists, parsed with inet_pton.
 *
 * Used for TRUSTED_PROXIES and METRICS_ALLOW (config), for finding the client
 * address behind trusted proxies, and for the rate-limit key (IPv6 keyed by
 * its /64, because one host usually owns a whole /64).
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are treated as the IPv4 address.
 */
#ifndef CHAT_NETADDR_H
#define CHAT_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

struct netaddr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char bytes[16]; /* 4 used for AF_INET */
};

struct cidr {
	struct netaddr addr; /* host bits cleared */
	unsigned prefix;     /* 0..32 or 0..128 */
};

struct cidr_list {
	struct cidr *items;
	size_t count;
};

/* 0 on success, -1 if text is not an address (surrounding spaces allowed). */
int netaddr_parse(const char *text, struct netaddr *out);

/*
 * The client address of a request (SPEC §3): REMOTE_ADDR, unless it is in
 * `trusted`; then the right-most X-Forwarded-For entry that is not a trusted
 * proxy.  forwarded_for may be NULL.  Returns -1 if remote_addr is unusable.
 */
int netaddr_client(const char *remote_addr, const char *forwarded_for,
                   const struct cidr_list *trusted, struct netaddr *out);

/* "a.b.c.d/n", "x::y/n" or a bare address (a /32 or /128). */
int cidr_parse(const char *text, struct cidr *out);

/* Comma-separated list; empty text gives an empty list.  On error returns -1
 * and points *bad_item at the offending item's offset in text. */
int cidr_list_parse(const char *text, struct cidr_list *out, size_t *bad_item);
void cidr_list_free(struct cidr_list *list);

bool cidr_contains(const struct cidr *c, const struct netaddr *a);
bool cidr_list_contains(const struct cidr_list *l, const struct netaddr *a);

/* The address as text (inet_ntop: "203.0.113.7", "2001:db8::1"), for log
 * lines.  0, or -1 if buf is too small (NETADDR_TEXT_MAX is enough). */
#define NETADDR_TEXT_MAX 46
int netaddr_format(const struct netaddr *a, char *buf, size_t buflen);

/* Rate-limit key of an address: "4:a.b.c.d", or for IPv6 "6:" and the 16 hex
 * digits of its /64 ("6:20010db800000001"); at most 18 characters.
 * Returns the length written (without NUL), or -1 if buf is too small. */
int netaddr_key(const struct netaddr *a, char *buf, size_t buflen);

#endif
