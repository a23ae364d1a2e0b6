/*
 * bench_ratelimit: what rl_check costs, for the closing note of issue 5.  It
 * prints figures and asserts nothing; correctness lives in
 * tests/unit/test_ratelimit.c.
 *
 *   gcc -std=gnu11 -O2 -Isrc bench/bench_ratelimit.c src/ratelimit.c \
 *       -o /tmp/bench_ratelimit $(pkg-config --libs libcrypto) -lrt
 *   /tmp/bench_ratelimit [scale]     (scale < 1 for a quick run)
 *
 * Every check reads CLOCK_MONOTONIC itself, as a worker does per request;
 * the clock's own cost is printed first so it can be subtracted.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratelimit.h"
#include "segment.h"
#include "util.h"

/* Limits for the admitted path: effectively unlimited (the burst is 4e9), so
 * every check takes the compare-and-swap path. */
static const struct rate_policy unlimited = {UINT32_MAX, 86400};
static const struct rate_policy five_a_minute = {5, 60};
static const struct rate_policy one_a_day = {1, 86400};

struct bench {
	char name[64];
	struct rl_table *t;
};

static void bench_open(struct bench *b, const char *tag, uint32_t slots)
{
	char err[RL_ERR_LEN];

	snprintf(b->name, sizeof(b->name), "/chat-fcgi-bench-%ld-%s", (long)getpid(), tag);
	seg_unlink(b->name, NULL, 0);
	if (rl_open(b->name, slots, &b->t, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_ratelimit: %s\n", err);
		exit(1);
	}
}

static void bench_close(struct bench *b)
{
	rl_close(b->t);
	seg_unlink(b->name, NULL, 0);
}

static double secs_since(uint64_t start_ns)
{
	return (double)(util_now_ns() - start_ns) / 1e9;
}

static void report(const char *what, uint64_t n, double secs)
{
	printf("  %-46s %12.0f checks/s  %7.1f ns/check\n", what, (double)n / secs,
	       secs * 1e9 / (double)n);
}

static void check_or_die(struct rl_table *t, const struct rate_policy *p, const char *key,
                         size_t len, struct rl_result *r)
{
	if (rl_check(t, p, 0, key, len, util_now_ns(), r) < 0) {
		perror("rl_check");
		exit(1);
	}
}

/* Keys as a worker would build them: "user:<id>". */
static size_t make_key(char *buf, size_t len, uint32_t id)
{
	return (size_t)snprintf(buf, len, "user:%u", id);
}

static void bench_clock(uint64_t n)
{
	uint64_t start = util_now_ns();
	volatile uint64_t sink = 0; /* keeps the calls */

	for (uint64_t i = 0; i < n; i++)
		sink = util_now_ns();
	(void)sink;
	printf("  %-46s %7.1f ns/call\n", "clock_gettime(CLOCK_MONOTONIC)",
	       secs_since(start) * 1e9 / (double)n);
}

static void bench_hot_key(uint64_t n)
{
	struct bench b = {0};
	struct rl_result r;
	uint64_t start;

	bench_open(&b, "hot", 65536);
	start = util_now_ns();
	for (uint64_t i = 0; i < n; i++)
		check_or_die(b.t, &unlimited, "user:42", 7, &r);
	report("one hot key, admitted (CAS every check)", n, secs_since(start));

	start = util_now_ns();
	for (uint64_t i = 0; i < n; i++)
		check_or_die(b.t, &five_a_minute, "user:43", 7, &r);
	report("one hot key, limited (5/minute, read only)", n, secs_since(start));
	bench_close(&b);
}

/* Fisher-Yates with a fixed seed: a random order defeats the caches the way
 * many clients would. */
static uint32_t *shuffled(uint32_t n, unsigned seed)
{
	uint32_t *v = malloc(n * sizeof(*v));

	if (v == NULL) {
		perror("malloc");
		exit(1);
	}
	for (uint32_t i = 0; i < n; i++)
		v[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j =
		    (uint32_t)(((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) % (i + 1));
		uint32_t x = v[i];

		v[i] = v[j];
		v[j] = x;
	}
	return v;
}

static void bench_many_keys(uint32_t nkeys)
{
	struct bench b = {0};
	struct rl_result r;
	struct rl_stats st;
	uint32_t *order = shuffled(nkeys, 1);
	uint64_t start, full = 0;
	char key[32], label[64];

	bench_open(&b, "many", nkeys * 2);
	start = util_now_ns();
	for (uint32_t i = 0; i < nkeys; i++) {
		size_t len = make_key(key, sizeof(key), order[i]);

		check_or_die(b.t, &five_a_minute, key, len, &r);
		full += r.outcome == RL_TABLE_FULL;
	}
	snprintf(label, sizeof(label), "%u distinct keys, %u slots, 1st check", nkeys, nkeys * 2);
	report(label, nkeys, secs_since(start));
	start = util_now_ns();
	for (uint32_t i = 0; i < nkeys; i++) {
		size_t len = make_key(key, sizeof(key), order[nkeys - 1 - i]);

		check_or_die(b.t, &five_a_minute, key, len, &r);
	}
	snprintf(label, sizeof(label), "%u distinct keys, %u slots, 2nd check", nkeys, nkeys * 2);
	report(label, nkeys, secs_since(start));
	rl_stats(b.t, util_now_ns(), &st);
	printf("  %-46s %llu in use, %llu refused for want of a slot\n", "",
	       (unsigned long long)st.in_use, (unsigned long long)full);
	bench_close(&b);
	free(order);
}

/* nproc processes, each n checks of `policy`, on one key or one key each,
 * started together; wall time from the start signal to the last one done. */
static void bench_processes(int nproc, bool same_key, uint64_t n)
{
	struct bench b = {0};
	_Atomic int *go =
	    mmap(NULL, sizeof(*go), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kids[8];
	struct rl_stats before, after;
	uint64_t start;

	if (go == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	atomic_store(go, 0);
	bench_open(&b, "procs", 65536);
	rl_stats(b.t, util_now_ns(), &before);
	for (int c = 0; c < nproc; c++) {
		kids[c] = fork();
		if (kids[c] == 0) {
			struct rl_table *t;
			struct rl_result r;
			char err[RL_ERR_LEN], key[32];
			size_t len = make_key(key, sizeof(key), same_key ? 7u : (unsigned)c);

			/* Each worker maps the table itself. */
			if (rl_open(b.name, 65536, &t, err, sizeof(err)) < 0)
				_exit(1);
			while (atomic_load(go) == 0)
				;
			for (uint64_t i = 0; i < n; i++)
				check_or_die(t, &unlimited, key, len, &r);
			rl_close(t);
			_exit(0);
		}
	}
	usleep(100000); /* let them map and reach the gate */
	start = util_now_ns();
	atomic_store(go, 1);
	for (int c = 0; c < nproc; c++)
		waitpid(kids[c], NULL, 0);
	{
		double secs = secs_since(start);
		char label[80];

		rl_stats(b.t, util_now_ns(), &after);
		snprintf(label, sizeof(label), "%d processes, %s, admitted", nproc,
		         same_key ? "one shared key" : "a key each");
		report(label, n * (uint64_t)nproc, secs);
		printf("  %-46s %.2f%% of CAS lost to the other process\n", "",
		       100.0 * (double)(after.cas_retries - before.cas_retries) /
		           (double)(n * (uint64_t)nproc));
	}
	bench_close(&b);
	munmap((void *)go, sizeof(*go));
}

/*
 * Fill a table to a given occupancy with keys limited for a day, then time
 * checks of keys it holds (found, refused, read only) and of keys it has
 * never seen (a scan of the whole window, then an insert or, when every slot
 * of the window is taken, RL_TABLE_FULL).
 */
static void bench_occupancy(uint32_t slots, const unsigned *percent, int npercent)
{
	struct bench b = {0};
	struct rl_result r;
	uint32_t next = 0, held = 0, probes = slots / 20;
	uint32_t *ids = malloc(slots * sizeof(*ids));
	char key[32];

	if (ids == NULL) {
		perror("malloc");
		exit(1);
	}
	bench_open(&b, "occ", slots);
	printf("  table of %u slots, keys limited 1/day\n", slots);
	for (int p = 0; p < npercent; p++) {
		uint64_t target = (uint64_t)slots * percent[p] / 100, tries = 0, start;
		uint32_t full = 0;
		unsigned seed = 3;
		double hit_s, miss_s;

		/* Give up when the last free slots are out of reach of any
		 * window that still has room: that is the table's limit. */
		while (held < target && tries < 40ull * slots) {
			size_t len = make_key(key, sizeof(key), next);

			check_or_die(b.t, &one_a_day, key, len, &r);
			if (r.allowed)
				ids[held++] = next;
			next++;
			tries++;
		}
		start = util_now_ns();
		for (uint32_t i = 0; i < probes; i++) {
			size_t len =
			    make_key(key, sizeof(key), ids[(uint32_t)rand_r(&seed) % held]);

			check_or_die(b.t, &one_a_day, key, len, &r);
		}
		hit_s = secs_since(start);
		/* Fresh keys, taken back out so that occupancy stays put. */
		start = util_now_ns();
		for (uint32_t i = 0; i < probes; i++) {
			size_t len = make_key(key, sizeof(key), 0x80000000u + next + i);

			check_or_die(b.t, &one_a_day, key, len, &r);
			full += r.outcome == RL_TABLE_FULL;
		}
		miss_s = secs_since(start);
		for (uint32_t i = 0; i < probes; i++) {
			size_t len = make_key(key, sizeof(key), 0x80000000u + next + i);

			rl_reset_key(b.t, 0, key, len);
		}
		next += probes;
		printf("  occupancy %5.1f%% (asked %2u%%): held key %6.1f ns, new key %6.1f ns, "
		       "new keys refused (table full) %5.1f%%\n",
		       100.0 * held / slots, percent[p], hit_s * 1e9 / probes,
		       miss_s * 1e9 / probes, 100.0 * full / probes);
	}
	bench_close(&b);
	free(ids);
}

int main(int argc, char **argv)
{
	static const unsigned percent[] = {10, 50, 70, 80, 90, 95, 99};
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	uint64_t n = (uint64_t)(10e6 * scale);

	if (n < 1000)
		n = 1000;
	printf("rl_check, one core unless said otherwise (%ld CPUs online)\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	bench_clock(n);
	bench_hot_key(n);
	bench_many_keys((uint32_t)(1000000 * (scale < 1 ? scale : 1)));
	bench_processes(1, true, n);
	bench_processes(2, true, n);
	bench_processes(2, false, n);
	bench_occupancy((uint32_t)(1 << 20), percent, (int)(sizeof(percent) / sizeof(percent[0])));
	return 0;
}
