/*
 * siphash: SipHash-2-4, 64-bit output.  See siphash.h.
 */
#include "siphash.h"

static uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl64(v[2], 32);
}

uint64_t siphash24(const uint8_t key[16], const void *msg, size_t len)
{
	const uint8_t *in = msg;
	size_t blocks = len / 8, rest = len % 8;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	uint64_t v[4] = {
	    UINT64_C(0x736f6d6570736575) ^ k0,
	    UINT64_C(0x646f72616e646f6d) ^ k1,
	    UINT64_C(0x6c7967656e657261) ^ k0,
	    UINT64_C(0x7465646279746573) ^ k1,
	};
	uint64_t b = (uint64_t)len << 56;

	/* Indexing, not pointer bumping: msg may be NULL when len is 0. */
	for (size_t i = 0; i < blocks; i++) {
		uint64_t m = load_le64(&in[8 * i]);

		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	for (size_t i = 0; i < rest; i++)
		b |= (uint64_t)in[8 * blocks + i] << (8 * i);
	v[3] ^= b;
	sipround(v);
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
