/*
 * bench_common_passwords: what the common-password check costs per call and
 * what the list weighs, for README "Tokens and passwords".  Figures only;
 * correctness lives in tests/unit/test_common_passwords.c.
 *
 *   make bench/bench_common_passwords && bench/bench_common_passwords
 *
 * The scan compares every entry of the candidate's length, so a hit, a miss
 * and a length no entry has should cost about the same.
 */
#include <stdio.h>
#include <string.h>

#include "common_passwords.h"
#include "util.h"

int main(void)
{
	static const char *const candidates[] = {"Password1", "correct horse battery", "x"};
	const int rounds = 200000;

	printf("list: %zu entries, compiled in (read-only, shared by every worker)\n",
	       common_passwords_count());
	for (size_t k = 0; k < sizeof candidates / sizeof candidates[0]; k++) {
		size_t len = strlen(candidates[k]);
		uint64_t t0 = util_now_ns();
		int hits = 0;

		for (int i = 0; i < rounds; i++)
			hits += common_password(candidates[k], len);
		printf("%-24s %s  %.2f us per check\n", candidates[k],
		       hits ? "common" : "not common",
		       (double)(util_now_ns() - t0) / rounds / 1000.0);
	}
	return 0;
}
