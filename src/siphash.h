/*
 * siphash: SipHash-2-4 (Aumasson and Bernstein) with a 64-bit result, the
 * keyed hash of the rate-limit table: with a random key per segment, a
 * client cannot choose keys that land in one bucket.  Written out rather
 * than through OpenSSL's EVP_MAC, which costs a context and a fetch per
 * call on the request path; test_siphash.c checks both agree.
 */
#ifndef CHAT_SIPHASH_H
#define CHAT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* msg may be NULL when len is 0. */
uint64_t siphash24(const uint8_t key[16], const void *msg, size_t len);

#endif
