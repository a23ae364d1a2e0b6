/*
 * Unit tests for netaddr: address and CIDR parsing, containment at the prefix
 * boundaries, IPv4-mapped normalisation and the /64 rate-limit key.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

static struct netaddr addr(const char *text)
{
	struct netaddr a;

	ck_assert_msg(netaddr_parse(text, &a) == 0, "cannot parse %s", text);
	return a;
}

static struct cidr cidr(const char *text)
{
	struct cidr c;

	ck_assert_msg(cidr_parse(text, &c) == 0, "cannot parse %s", text);
	return c;
}

static bool contains(const char *net, const char *a)
{
	struct cidr c = cidr(net);
	struct netaddr x = addr(a);

	return cidr_contains(&c, &x);
}

START_TEST(format_round_trips)
{
	struct netaddr a;
	char buf[NETADDR_TEXT_MAX];

	ck_assert_int_eq(netaddr_parse("203.0.113.7", &a), 0);
	ck_assert_int_eq(netaddr_format(&a, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "203.0.113.7");
	ck_assert_int_eq(netaddr_parse("2001:DB8:0:0:0:0:0:1", &a), 0);
	ck_assert_int_eq(netaddr_format(&a, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "2001:db8::1");
	/* Mapped IPv4 is IPv4 (as the rate limiter keys it). */
	ck_assert_int_eq(netaddr_parse("::ffff:192.0.2.1", &a), 0);
	ck_assert_int_eq(netaddr_format(&a, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "192.0.2.1");
	ck_assert_int_eq(netaddr_format(&a, buf, 8), -1);
	a.family = 0;
	ck_assert_int_eq(netaddr_format(&a, buf, sizeof buf), -1);
}
END_TEST

START_TEST(parse_ipv4)
{
	struct netaddr a = addr("192.0.2.1");
	const unsigned char want[16] = {192, 0, 2, 1};

	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_mem_eq(a.bytes, want, 16);
	a = addr("  10.1.2.3\t");
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_int_eq(a.bytes[3], 3);
}
END_TEST

START_TEST(parse_ipv6)
{
	struct netaddr a = addr("2001:db8::1");

	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_int_eq(a.bytes[0], 0x20);
	ck_assert_int_eq(a.bytes[1], 0x01);
	ck_assert_int_eq(a.bytes[15], 1);
	a = addr("::1");
	ck_assert_int_eq(a.family, AF_INET6);
}
END_TEST

START_TEST(parse_mapped_is_ipv4)
{
	struct netaddr a = addr("::ffff:198.51.100.7");
	struct netaddr b = addr("198.51.100.7");

	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_int_eq(a.bytes[0], 198);
	ck_assert_int_eq(a.bytes[3], 7);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	/* Only ::ffff:0:0/96 is mapped; the deprecated compatible form is not. */
	a = addr("::198.51.100.7");
	ck_assert_int_eq(a.family, AF_INET6);
}
END_TEST

START_TEST(parse_rejects)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "1.2.3",
	    "1.2.3.4.5",
	    "256.1.1.1",
	    "01.2.3.4",
	    "1.2.3.4/32",
	    "example.com",
	    "fe80::1%eth0",
	    "1.2.3.4 5",
	    "::ffff:1.2.3.256",
	    "2001:db8::1::2",
	    "1.2.3.4,5.6.7.8",
	    "0000000000000000000000000000000000000000000000000000000000000000000000001.2.3.4",
	};
	struct netaddr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(netaddr_parse(bad[i], &a) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(cidr_parse_ok)
{
	struct cidr c = cidr("10.0.0.1/8");
	const unsigned char net10[16] = {10};

	ck_assert_int_eq(c.addr.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_mem_eq(c.addr.bytes, net10, 16); /* host bits cleared */

	c = cidr("192.0.2.9");
	ck_assert_uint_eq(c.prefix, 32);
	c = cidr("2001:db8::1");
	ck_assert_uint_eq(c.prefix, 128);
	c = cidr("2001:db8:0:1:ffff::/64");
	ck_assert_int_eq(c.addr.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 64);
	ck_assert_int_eq(c.addr.bytes[7], 1);
	ck_assert_int_eq(c.addr.bytes[8], 0);
	c = cidr("10.255.255.255/9");
	ck_assert_int_eq(c.addr.bytes[1], 0x80);
	ck_assert_int_eq(c.addr.bytes[2], 0);
	c = cidr(" 0.0.0.0/0 ");
	ck_assert_uint_eq(c.prefix, 0);

	/* Mapped networks from /96 on are IPv4 networks. */
	c = cidr("::ffff:10.0.0.0/104");
	ck_assert_int_eq(c.addr.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	c = cidr("::ffff:10.0.0.1");
	ck_assert_int_eq(c.addr.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 32);
}
END_TEST

START_TEST(cidr_parse_rejects)
{
	static const char *const bad[] = {
	    "10.0.0.0/33", "::/129",       "10.0.0.0/",     "10.0.0.0/+8",
	    "10.0.0.0/-1", "10.0.0.0/8x",  "10.0.0.0/ 8",   "10.0.0.0 /8",
	    "/8",          "10.0.0.0/8/8", "10.0.0.0/1000", "",
	    "10.0.0/8",    "10.0.0.0/0x8", "host/8",
	};
	struct cidr c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cidr_parse(bad[i], &c) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(contains_boundaries_v4)
{
	ck_assert(contains("0.0.0.0/0", "255.255.255.255"));
	ck_assert(contains("0.0.0.0/0", "0.0.0.0"));
	ck_assert(contains("192.0.2.7/32", "192.0.2.7"));
	ck_assert(!contains("192.0.2.7/32", "192.0.2.6"));
	ck_assert(!contains("192.0.2.7/32", "192.0.2.8"));
	ck_assert(contains("10.0.0.0/8", "10.255.255.255"));
	ck_assert(!contains("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!contains("10.0.0.0/8", "9.255.255.255"));
	ck_assert(contains("172.16.0.0/12", "172.31.255.255"));
	ck_assert(!contains("172.16.0.0/12", "172.32.0.0"));
	ck_assert(contains("127.0.0.0/8", "::ffff:127.0.0.1"));
	/* Families never mix. */
	ck_assert(!contains("0.0.0.0/0", "::1"));
	ck_assert(!contains("::/0", "127.0.0.1"));
}
END_TEST

START_TEST(contains_boundaries_v6)
{
	ck_assert(contains("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(contains("::1/128", "::1"));
	ck_assert(!contains("::1/128", "::2"));
	ck_assert(!contains("::1/128", "::"));
	ck_assert(contains("2001:db8:0:1::/64", "2001:db8:0:1:ffff:ffff:ffff:ffff"));
	ck_assert(contains("2001:db8:0:1::/64", "2001:db8:0:1::"));
	ck_assert(!contains("2001:db8:0:1::/64", "2001:db8:0:2::"));
	ck_assert(!contains("2001:db8:0:1::/64", "2001:db8:0:0:ffff:ffff:ffff:ffff"));
	ck_assert(contains("2001:db8::/33", "2001:db8:7fff::1"));
	ck_assert(!contains("2001:db8::/33", "2001:db8:8000::1"));
}
END_TEST

START_TEST(list_parse_and_contains)
{
	struct cidr_list l = {NULL, 0};
	struct netaddr a;
	size_t bad = 99;

	ck_assert_int_eq(cidr_list_parse("127.0.0.0/8,::1/128", &l, &bad), 0);
	ck_assert_uint_eq(l.count, 2);
	a = addr("127.3.2.1");
	ck_assert(cidr_list_contains(&l, &a));
	a = addr("::1");
	ck_assert(cidr_list_contains(&l, &a));
	a = addr("::2");
	ck_assert(!cidr_list_contains(&l, &a));
	a = addr("128.0.0.1");
	ck_assert(!cidr_list_contains(&l, &a));
	cidr_list_free(&l);
	ck_assert_ptr_null(l.items);
	ck_assert_uint_eq(l.count, 0);

	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8, 192.168.0.0/16 ,fd00::/8", &l, &bad), 0);
	ck_assert_uint_eq(l.count, 3);
	cidr_list_free(&l);

	ck_assert_int_eq(cidr_list_parse("", &l, &bad), 0);
	ck_assert_uint_eq(l.count, 0);
	a = addr("127.0.0.1");
	ck_assert(!cidr_list_contains(&l, &a));
	cidr_list_free(&l);
}
END_TEST

START_TEST(list_parse_bad_item)
{
	struct cidr_list l = {NULL, 0};
	size_t bad = 99;

	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8,10.0.0.0/33,::1", &l, &bad), -1);
	ck_assert_uint_eq(bad, 11);
	ck_assert_ptr_null(l.items);
	ck_assert_uint_eq(l.count, 0);

	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8, nope", &l, &bad), -1);
	ck_assert_uint_eq(bad, 12);
	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8,,::1", &l, &bad), -1);
	ck_assert_uint_eq(bad, 11);
	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8,", &l, &bad), -1);
	ck_assert_uint_eq(bad, 11);
	ck_assert_int_eq(cidr_list_parse(",10.0.0.0/8", &l, &bad), -1);
	ck_assert_uint_eq(bad, 0);
}
END_TEST

static const char *key_of(const char *text, char *buf, size_t size)
{
	struct netaddr a = addr(text);

	ck_assert_int_gt(netaddr_key(&a, buf, size), 0);
	return buf;
}

START_TEST(key_formats)
{
	char buf[32];
	struct netaddr a = addr("203.0.113.200");

	ck_assert_int_eq(netaddr_key(&a, buf, sizeof(buf)), 15);
	ck_assert_str_eq(buf, "4:203.0.113.200");
	ck_assert_str_eq(key_of("::ffff:203.0.113.200", buf, sizeof(buf)), "4:203.0.113.200");
	a = addr("2001:db8:0:1::abcd");
	ck_assert_int_eq(netaddr_key(&a, buf, sizeof(buf)), 18);
	ck_assert_str_eq(buf, "6:20010db800000001");
	/* Longest keys fit in 19 bytes, and a short buffer is refused. */
	a = addr("255.255.255.255");
	ck_assert_int_eq(netaddr_key(&a, buf, 18), 17);
	ck_assert_int_eq(netaddr_key(&a, buf, 17), -1);
	a = addr("ffff:ffff:ffff:ffff::");
	ck_assert_int_eq(netaddr_key(&a, buf, 19), 18);
	ck_assert_int_eq(netaddr_key(&a, buf, 18), -1);
	ck_assert_int_eq(netaddr_key(&a, buf, 0), -1);
}
END_TEST

START_TEST(key_groups_by_64)
{
	char k1[32], k2[32];

	key_of("2001:db8:0:1::1", k1, sizeof(k1));
	key_of("2001:db8:0:1:ffff:ffff:ffff:ffff", k2, sizeof(k2));
	ck_assert_str_eq(k1, k2);
	key_of("2001:db8:0:2::1", k2, sizeof(k2));
	ck_assert_str_ne(k1, k2);
	key_of("2001:db8:1:1::1", k2, sizeof(k2));
	ck_assert_str_ne(k1, k2);
	/* IPv4 keys keep the whole address. */
	key_of("192.0.2.1", k1, sizeof(k1));
	key_of("192.0.2.2", k2, sizeof(k2));
	ck_assert_str_ne(k1, k2);
}
END_TEST

/* Client address of REMOTE_ADDR + X-Forwarded-For under TRUSTED_PROXIES. */
static const char *client_of(const char *remote, const char *xff, const char *trusted, char *buf,
                             size_t size)
{
	struct cidr_list list = {0};
	struct netaddr a;
	size_t bad;
	int r;

	ck_assert_int_eq(cidr_list_parse(trusted, &list, &bad), 0);
	r = netaddr_client(remote, xff, &list, &a);
	cidr_list_free(&list);
	if (r != 0)
		return "error";
	ck_assert_int_gt(netaddr_key(&a, buf, size), 0);
	return buf;
}

START_TEST(client_behind_proxies)
{
	char b[64];

	/* No trusted proxies: the header changes nothing (spoofing). */
	ck_assert_str_eq(client_of("203.0.113.9", "1.1.1.1", "", b, sizeof b), "4:203.0.113.9");
	/* From an untrusted address, even with proxies configured. */
	ck_assert_str_eq(client_of("203.0.113.9", "1.1.1.1", "10.0.0.0/8", b, sizeof b),
	                 "4:203.0.113.9");
	/* Trusted proxy: the right-most entry it appended. */
	ck_assert_str_eq(client_of("10.0.0.2", "1.1.1.1, 198.51.100.7", "10.0.0.0/8", b, sizeof b),
	                 "4:198.51.100.7");
	/* Chains of trusted proxies are skipped from the right. */
	ck_assert_str_eq(
	    client_of("10.0.0.2", "198.51.100.7,10.0.0.5, 10.0.0.3", "10.0.0.0/8", b, sizeof b),
	    "4:198.51.100.7");
	/* A spoofed left part cannot win over what the proxy appended. */
	ck_assert_str_eq(client_of("10.0.0.2", "6.6.6.6, 198.51.100.7", "10.0.0.0/8", b, sizeof b),
	                 "4:198.51.100.7");
	/* Garbage stops the walk at the last trusted hop. */
	ck_assert_str_eq(client_of("10.0.0.2", "junk", "10.0.0.0/8", b, sizeof b), "4:10.0.0.2");
	ck_assert_str_eq(
	    client_of("10.0.0.2", "1.1.1.1, junk, 10.0.0.3", "10.0.0.0/8", b, sizeof b),
	    "4:10.0.0.3");
	/* All hops trusted: the left-most one. */
	ck_assert_str_eq(client_of("10.0.0.2", "10.0.0.9", "10.0.0.0/8", b, sizeof b),
	                 "4:10.0.0.9");
	/* IPv6 client behind a proxy, keyed by /64. */
	ck_assert_str_eq(client_of("::1", "2001:db8:1:2:3:4:5:6", "::1/128", b, sizeof b),
	                 "6:20010db800010002");
	/* Trusted proxy without the header: the proxy itself. */
	ck_assert_str_eq(client_of("10.0.0.2", NULL, "10.0.0.0/8", b, sizeof b), "4:10.0.0.2");
	ck_assert_str_eq(client_of("not an address", NULL, "", b, sizeof b), "error");
}
END_TEST

static Suite *netaddr_suite(void)
{
	Suite *s = suite_create("netaddr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, format_round_trips);
	tcase_add_test(tc, parse_ipv4);
	tcase_add_test(tc, parse_ipv6);
	tcase_add_test(tc, parse_mapped_is_ipv4);
	tcase_add_test(tc, parse_rejects);
	tcase_add_test(tc, cidr_parse_ok);
	tcase_add_test(tc, cidr_parse_rejects);
	tcase_add_test(tc, contains_boundaries_v4);
	tcase_add_test(tc, contains_boundaries_v6);
	tcase_add_test(tc, list_parse_and_contains);
	tcase_add_test(tc, list_parse_bad_item);
	tcase_add_test(tc, key_formats);
	tcase_add_test(tc, key_groups_by_64);
	tcase_add_test(tc, client_behind_proxies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(netaddr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
