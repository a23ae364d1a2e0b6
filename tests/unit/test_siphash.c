/*
 * Unit tests for src/siphash.c: the reference vector of the SipHash paper,
 * then agreement with OpenSSL's SipHash (EVP_MAC) on random keys and every
 * message length up to 63 bytes (all tail lengths, several blocks).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "siphash.h"

static uint64_t openssl_siphash(const uint8_t key[16], const void *msg, size_t len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx;
	size_t size = 8, outl = 0;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
	                       OSSL_PARAM_construct_end()};
	uint8_t out[8];
	uint64_t v = 0;

	ck_assert_ptr_nonnull(mac);
	ctx = EVP_MAC_CTX_new(mac);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_MAC_init(ctx, key, 16, params), 1);
	ck_assert_int_eq(EVP_MAC_update(ctx, msg, len), 1);
	ck_assert_int_eq(EVP_MAC_final(ctx, out, &outl, sizeof(out)), 1);
	ck_assert_uint_eq(outl, 8);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | out[i];
	return v;
}

START_TEST(matches_reference_and_openssl)
{
	uint8_t key[16], msg[64];
	unsigned seed = 7;

	/* The reference vector of the SipHash paper (appendix A). */
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	ck_assert_uint_eq(siphash24(key, msg, 15), UINT64_C(0xa129ca6149be45e5));

	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)round % sizeof(msg);

		for (int i = 0; i < 16; i++)
			key[i] = (uint8_t)rand_r(&seed);
		for (size_t i = 0; i < len; i++)
			msg[i] = (uint8_t)rand_r(&seed);
		ck_assert_uint_eq(siphash24(key, msg, len), openssl_siphash(key, msg, len));
	}
}
END_TEST

START_TEST(empty_message_may_be_null)
{
	uint8_t key[16] = {0};

	ck_assert_uint_eq(siphash24(key, NULL, 0), siphash24(key, "", 0));
	ck_assert_uint_eq(siphash24(key, NULL, 0), openssl_siphash(key, "", 0));
}
END_TEST

static Suite *siphash_suite(void)
{
	Suite *s = suite_create("siphash");
	TCase *tc = tcase_create("siphash-2-4");

	tcase_add_test(tc, matches_reference_and_openssl);
	tcase_add_test(tc, empty_message_may_be_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(siphash_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
