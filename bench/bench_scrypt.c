/*
 * bench_scrypt: time of one libscrypt_hash at given parameters.
 *
 *   bench_scrypt [LOG2_N R P [ROUNDS]]     (default 15 8 3 5)
 *
 * Prints the mean and the best time per hash; asserts nothing.
 */
#include <libscrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	unsigned log2_n = argc > 1 ? (unsigned)atoi(argv[1]) : 15;
	unsigned r = argc > 2 ? (unsigned)atoi(argv[2]) : 8;
	unsigned p = argc > 3 ? (unsigned)atoi(argv[3]) : 3;
	int rounds = argc > 4 ? atoi(argv[4]) : 5;
	double total = 0, best = 1e9;
	char mcf[SCRYPT_MCF_LEN];

	if (log2_n < 1 || log2_n > 24 || r < 1 || r > 255 || p < 1 || p > 255 || rounds < 1) {
		fputs("usage: bench_scrypt [LOG2_N R P [ROUNDS]]\n", stderr);
		return 64;
	}
	for (int i = 0; i < rounds; i++) {
		double t0 = now_ms(), dt;
		if (libscrypt_hash(mcf, "benchmark password", 1u << log2_n, (uint8_t)r,
		                   (uint8_t)p) <= 0) {
			fputs("libscrypt_hash failed\n", stderr);
			return 1;
		}
		dt = now_ms() - t0;
		total += dt;
		if (dt < best)
			best = dt;
	}
	printf("scrypt N=2^%u r=%u p=%u (%u MiB): mean %.1f ms, best %.1f ms over %d hashes\n",
	       log2_n, r, p, (128u * r << log2_n) >> 20, total / rounds, best, rounds);
	return 0;
}
