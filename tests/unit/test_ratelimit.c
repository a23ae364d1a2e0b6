/*
 * Unit tests for src/ratelimit.c: GCRA with a fake clock, the guarantee of
 * ratelimit.h checked by brute force, and the shared-memory table under
 * processes that race to create it, hammer one key, get SIGKILLed, and
 * overflow it.
 *
 * Every test uses its own segment names (with the pid of the process Check
 * forks for it) and removes them, also when it fails (see names_cleanup).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit.h"
#include "ratelimit_internal.h"
#include "segment.h"
#include "util.h"

#define NS_PER_MS UINT64_C(1000000)
#define SEC(x)    ((uint64_t)(x)*UINT64_C(1000000000))
#define MS(x)     ((uint64_t)(x)*NS_PER_MS)
/* Fake clock origin: any ms-aligned time well above zero. */
#define T0 SEC(100000)

/* ---- helpers ---- */

/* Segment names are /chat-fcgi-test-<pid of main>-<tag>: unique per run
 * and per test, whether Check forks each test or not, and main() removes
 * every one of them after the run, including those of failed tests. */
#define RUN_ENV "CHAT_RL_TEST_RUN"

static const char *test_name(const char *tag)
{
	/* Test-only state: a test holds at most a few names at once. */
	static char bufs[8][64];
	static unsigned next;
	char *buf = bufs[next++ % 8];

	snprintf(buf, sizeof(bufs[0]), "/chat-fcgi-test-%s-%s", getenv(RUN_ENV), tag);
	shm_unlink(buf); /* a leftover of an earlier run with the same pid */
	return buf;
}

static void remove_run_segments(void)
{
	char prefix[64];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (d == NULL)
		return;
	snprintf(prefix, sizeof(prefix), "chat-fcgi-test-%s-", getenv(RUN_ENV));
	while ((e = readdir(d)) != NULL) {
		char name[300];

		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(name, sizeof(name), "/%s", e->d_name);
		shm_unlink(name);
	}
	closedir(d);
}

static struct rl_table *must_open(const char *name, uint32_t slots)
{
	struct rl_table *t = NULL;
	char err[RL_ERR_LEN] = "";

	ck_assert_msg(rl_open(name, slots, &t, err, sizeof(err)) == 0, "rl_open %s: %s", name, err);
	return t;
}

static struct rl_result check_key(struct rl_table *t, uint32_t limit, uint32_t period_s,
                                  uint8_t cls, const char *key, uint64_t now)
{
	struct rate_policy p = {.limit = limit, .period_s = period_s};
	struct rl_result r;

	ck_assert_int_eq(rl_check(t, &p, cls, key, strlen(key), now, &r), 0);
	return r;
}

static void expect(struct rl_result r, bool allowed, uint32_t remaining, uint32_t reset_s,
                   uint32_t retry_after_s)
{
	ck_assert_int_eq(r.allowed, allowed);
	ck_assert_uint_eq(r.remaining, remaining);
	ck_assert_uint_eq(r.reset_s, reset_s);
	ck_assert_uint_eq(r.retry_after_s, retry_after_s);
}

static void *shared_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static void write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(90);
		p += n;
		len -= (size_t)n;
	}
}

static void read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "short read from a child: %s",
		              n < 0 ? strerror(errno) : "EOF");
		p += n;
		len -= (size_t)n;
	}
}

static void wait_ok(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %ld ended with status 0x%x",
	              (long)pid, st);
}

/* rand_r gives 31 bits; gaps of minutes in ns need more. */
static uint64_t rnd64(unsigned *seed)
{
	uint64_t hi = (uint64_t)rand_r(seed), lo = (uint64_t)rand_r(seed);

	return hi << 31 | lo;
}

static uint64_t t_ms(uint32_t limit, uint32_t period_s)
{
	return ((uint64_t)period_s * 1000 + limit - 1) / limit;
}

/* ---- GCRA with a fake clock ---- */

START_TEST(test_gcra_basics)
{
	struct rl_table *t = must_open(test_name("basics"), 1024);
	struct rate_policy off = {.limit = 0, .period_s = 60}, bad = {.limit = 5, .period_s = 0};
	struct rl_result r;
	struct rl_stats st;

	/* 5/minute: T = 12 s, tau = 48 s.  A burst of exactly 5. */
	for (uint32_t i = 0; i < 5; i++) {
		r = check_key(t, 5, 60, 0, "alice", T0);
		ck_assert_int_eq(r.outcome, RL_ADMITTED);
		ck_assert_uint_eq(r.limit, 5);
		expect(r, true, 4 - i, 12 * (i + 1), 0);
	}
	r = check_key(t, 5, 60, 0, "alice", T0);
	ck_assert_int_eq(r.outcome, RL_LIMITED);
	expect(r, false, 0, 60, 12);

	/* Refusals change nothing: the wait only shrinks with time. */
	for (int i = 0; i < 100; i++)
		expect(check_key(t, 5, 60, 0, "alice", T0 + MS(i)), false, 0, 60, 12);
	expect(check_key(t, 5, 60, 0, "alice", T0 + MS(11999)), false, 0, 49, 1);
	/* Nanoseconds are truncated to the millisecond. */
	expect(check_key(t, 5, 60, 0, "alice", T0 + MS(11999) + 999999), false, 0, 49, 1);

	/* Admitted again exactly T after the burst, one at a time. */
	expect(check_key(t, 5, 60, 0, "alice", T0 + SEC(12)), true, 0, 60, 0);
	expect(check_key(t, 5, 60, 0, "alice", T0 + SEC(12)), false, 0, 60, 12);
	expect(check_key(t, 5, 60, 0, "alice", T0 + SEC(24)), true, 0, 60, 0);

	/* Fully replenished a period after the last TAT: a burst of 5 again. */
	for (uint32_t i = 0; i < 5; i++)
		expect(check_key(t, 5, 60, 0, "alice", T0 + SEC(84)), true, 4 - i, 12 * (i + 1), 0);
	ck_assert(!check_key(t, 5, 60, 0, "alice", T0 + SEC(84)).allowed);

	/* Partly replenished: 30 s after a full bucket, floor(30/12) = 2 back. */
	expect(check_key(t, 5, 60, 0, "alice", T0 + SEC(114)), true, 1, 42, 0);

	/* Classes and keys are independent limits. */
	expect(check_key(t, 5, 60, 1, "alice", T0), true, 4, 12, 0);
	expect(check_key(t, 5, 60, 0, "bob", T0), true, 4, 12, 0);
	expect(check_key(t, 5, 60, 0, "alicf", T0), true, 4, 12, 0);

	/* 1/second: tau = 0, no burst. */
	expect(check_key(t, 1, 1, 2, "k", T0), true, 0, 1, 0);
	expect(check_key(t, 1, 1, 2, "k", T0 + MS(999)), false, 0, 1, 1);
	expect(check_key(t, 1, 1, 2, "k", T0 + SEC(1)), true, 0, 1, 0);

	/* 7/minute: T = ceil(60000 / 7) = 8572 ms, rounded up. */
	for (uint32_t i = 0; i < 7; i++)
		ck_assert(check_key(t, 7, 60, 3, "k", T0).allowed);
	expect(check_key(t, 7, 60, 3, "k", T0), false, 0, 61, 9);
	ck_assert(!check_key(t, 7, 60, 3, "k", T0 + MS(8571)).allowed);
	ck_assert(check_key(t, 7, 60, 3, "k", T0 + MS(8572)).allowed);

	/* An empty key is a key. */
	r = check_key(t, 1, 60, 4, "", T0);
	ck_assert(r.allowed);
	ck_assert(!check_key(t, 1, 60, 4, "", T0).allowed);
	{
		struct rate_policy one = {1, 60};

		/* NULL with length 0 is that same empty key. */
		ck_assert_int_eq(rl_check(t, &one, 4, NULL, 0, T0, &r), 0);
		ck_assert_int_eq(r.outcome, RL_LIMITED);
		errno = 0;
		ck_assert_int_eq(rl_check(t, &one, 4, NULL, 1, T0, &r), -1);
		ck_assert_int_eq(errno, EINVAL);
	}

	/* Off: admitted, not counted, no table access. */
	rl_stats(t, T0, &st);
	ck_assert_int_eq(rl_check(t, &off, 0, "x", 1, T0, &r), 0);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.outcome, RL_OFF);
	ck_assert_uint_eq(r.limit, 0);
	{
		struct rl_stats st2;

		rl_stats(t, T0, &st2);
		ck_assert_uint_eq(st2.classes[0].checks, st.classes[0].checks);
	}

	/* Invalid arguments. */
	errno = 0;
	ck_assert_int_eq(rl_check(t, &bad, 0, "x", 1, T0, &r), -1);
	ck_assert_int_eq(errno, EINVAL);
	bad.period_s = RL_MAX_PERIOD_S + 1;
	ck_assert_int_eq(rl_check(t, &bad, 0, "x", 1, T0, &r), -1);
	bad.period_s = 60;
	ck_assert_int_eq(rl_check(t, &bad, RL_MAX_CLASSES, "x", 1, T0, &r), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(rl_check(t, &bad, 0, "x", 1, UINT64_MAX - 1, &r), -1);
	ck_assert_int_eq(errno, EOVERFLOW);

	/* Counters: class 0 saw 6 + 100 + 2 + 3 + 6 + 1 + 2 checks, of
	 * which 1 + 100 + 2 + 1 + 1 were refused; invalid calls count not. */
	rl_stats(t, T0 + SEC(114), &st);
	ck_assert_uint_eq(st.classes[0].checks, 120);
	ck_assert_uint_eq(st.classes[0].rejected, 105);
	ck_assert_uint_eq(st.classes[0].table_full, 0);
	ck_assert_uint_eq(st.slots, 1024);

	rl_close(t);
}
END_TEST

/* The definition of GCRA in ms, written independently of src/, as the
 * oracle for random request sequences. */
struct ref_gcra {
	uint64_t tat; /* ms; 0 = never used */
};

static struct rl_result ref_check(struct ref_gcra *s, uint32_t limit, uint32_t period_s,
                                  uint64_t now_ns)
{
	uint64_t t = now_ns / NS_PER_MS, T = t_ms(limit, period_s), tau = (limit - 1) * T;
	uint64_t tat = s->tat > t ? s->tat : t;
	struct rl_result r = {.limit = limit};

	if (s->tat > t + tau) {
		r.reset_s = (uint32_t)((s->tat - t + 999) / 1000);
		r.retry_after_s = (uint32_t)((s->tat - tau - t + 999) / 1000);
		return r;
	}
	s->tat = tat + T;
	r.allowed = true;
	r.reset_s = (uint32_t)((s->tat - t + 999) / 1000);
	/* Count how many more would pass right now, one by one. */
	for (uint64_t x = s->tat; x <= t + tau; x += T)
		r.remaining++;
	return r;
}

START_TEST(test_gcra_matches_reference)
{
	static const struct rate_policy pols[] = {{1, 1},  {2, 1},   {3, 2},  {5, 60},
	                                          {7, 60}, {60, 60}, {10, 1}, {1000, 1}};
	struct rl_table *t = must_open(test_name("ref"), 4096);
	unsigned seed = 11;

	for (size_t p = 0; p < sizeof(pols) / sizeof(pols[0]); p++) {
		uint32_t limit = pols[p].limit, period = pols[p].period_s;
		uint64_t T = t_ms(limit, period), now = T0 + SEC(1000 * p);
		struct ref_gcra ref = {0};
		char key[32];

		snprintf(key, sizeof(key), "ref-%zu", p);
		for (int i = 0; i < 3000; i++) {
			struct rl_result got, want;

			/* Mostly short gaps around T, some long idles, some
			 * bursts in the same nanosecond. */
			switch (rand_r(&seed) % 4) {
			case 0:
				break;
			case 1:
				now += rnd64(&seed) % (MS(T) * 2 + 1);
				break;
			case 2:
				now += rnd64(&seed) % MS(3);
				break;
			default:
				if (rand_r(&seed) % 10 == 0)
					now += rnd64(&seed) % (SEC(period) * 2);
			}
			got = check_key(t, limit, period, 0, key, now);
			want = ref_check(&ref, limit, period, now);
			ck_assert_msg(
			    got.allowed == want.allowed && got.remaining == want.remaining &&
			        got.reset_s == want.reset_s &&
			        got.retry_after_s == want.retry_after_s,
			    "policy %u/%us request %d: got %d/%u/%u/%u want %d/%u/%u/%u", limit,
			    period, i, got.allowed, got.remaining, got.reset_s, got.retry_after_s,
			    want.allowed, want.remaining, want.reset_s, want.retry_after_s);
		}
	}
	rl_close(t);
}
END_TEST

/* ---- the guarantee, by brute force ---- */

struct guarantee_max {
	uint64_t pair_excess; /* max over pairs of n - floor(span / T) */
	uint64_t real_window; /* max admissions in a real-time window of length P */
	uint64_t grid_window; /* max admissions in a ms-grid window of length P */
};

/*
 * Check every statement of the guarantee on one key's admitted times (ns,
 * non-decreasing).  Any window can slide right until it starts on an
 * admission without losing one, so windows starting at admissions are the
 * worst cases.
 */
static struct guarantee_max check_guarantee(const uint64_t *adm, size_t n, uint32_t limit,
                                            uint32_t period_s, const char *what)
{
	uint64_t T = t_ms(limit, period_s), P_ms = (uint64_t)period_s * 1000;
	uint64_t P_ns = MS(P_ms);
	struct guarantee_max m = {0};

	for (size_t i = 0; i < n; i++) {
		uint64_t ms_i = adm[i] / NS_PER_MS;
		size_t real = 0, grid = 0;

		for (size_t j = i; j < n; j++) {
			uint64_t count = j - i + 1, span = adm[j] / NS_PER_MS - ms_i;

			if (count > limit + span / T)
				ck_abort_msg("%s: %" PRIu64 " admissions within %" PRIu64
				             " ms, bound %" PRIu64,
				             what, count, span, limit + span / T);
			if (count - span / T > m.pair_excess)
				m.pair_excess = count - span / T;
			if (adm[j] < adm[i] + P_ns)
				real++;
			if (adm[j] / NS_PER_MS < ms_i + P_ms)
				grid++;
		}
		if (real > limit + P_ms / T)
			ck_abort_msg("%s: %zu admissions in a real window of %" PRIu64 " ms", what,
			             real, P_ms);
		if (real > 2 * (uint64_t)limit)
			ck_abort_msg("%s: %zu > 2 * limit in a real window", what, real);
		if (grid > limit + (P_ms + T - 1) / T - 1)
			ck_abort_msg("%s: %zu admissions in a grid window of %" PRIu64 " ms", what,
			             grid, P_ms);
		if (real > m.real_window)
			m.real_window = real;
		if (grid > m.grid_window)
			m.grid_window = grid;
	}
	return m;
}

enum pattern {
	PAT_GREEDY,     /* 2L at t = 0, then one request every ms */
	PAT_LATE_BURST, /* 2L at the last ns of ms 0, then every ms: worst real window */
	PAT_RANDOM,     /* random gaps up to 2T, random ns, bursts */
	PAT_IDLE_BURST, /* bursts of 2L after random idles up to 1.5 P */
	PAT_JITTER,     /* every ~T/3 with ns jitter */
	PAT_COUNT,
};

/* Request times (ns offsets from 0, non-decreasing) of one adversary over
 * four periods; returns how many. */
static size_t gen_pattern(enum pattern pat, uint32_t limit, uint32_t period_s, uint64_t *out,
                          size_t max, unsigned *seed)
{
	uint64_t T = t_ms(limit, period_s), end = SEC(4 * (uint64_t)period_s), now = 0;
	size_t n = 0;

	switch (pat) {
	case PAT_GREEDY:
		for (uint32_t i = 0; i < 2 * limit && n < max; i++)
			out[n++] = 0;
		for (now = MS(1); now < end && n < max; now += MS(1))
			out[n++] = now;
		break;
	case PAT_LATE_BURST:
		for (uint32_t i = 0; i < 2 * limit && n < max; i++)
			out[n++] = MS(1) - 1;
		for (now = MS(1); now < end && n < max; now += MS(1))
			out[n++] = now;
		break;
	case PAT_RANDOM:
		while (now < end && n < max) {
			uint32_t burst =
			    rand_r(seed) % 10 == 0 ? (unsigned)rand_r(seed) % (2 * limit) : 0;

			now += rnd64(seed) % (MS(2 * T) + 1) + rnd64(seed) % NS_PER_MS;
			for (uint32_t i = 0; i <= burst && n < max; i++)
				out[n++] = now;
		}
		break;
	case PAT_IDLE_BURST:
		while (now < end && n < max) {
			now += rnd64(seed) % (SEC(period_s) * 3 / 2 + 1);
			for (uint32_t i = 0; i < 2 * limit && n < max; i++)
				out[n++] = now;
		}
		break;
	case PAT_JITTER:
		while (now < end && n < max) {
			now += MS(T) / 3 + rnd64(seed) % NS_PER_MS;
			out[n++] = now;
		}
		break;
	default:
		break;
	}
	return n;
}

static const struct rate_policy guarantee_policies[] = {
    {1, 1}, {2, 1}, {3, 2}, {5, 60}, {7, 60}, {10, 1}, {60, 60}, {1000, 1},
};
#define N_GUARANTEE_POLICIES (sizeof(guarantee_policies) / sizeof(guarantee_policies[0]))

START_TEST(test_window_guarantee)
{
	size_t max = 300000;
	uint64_t *req = malloc(max * sizeof(*req)), *adm = malloc(max * sizeof(*adm));
	struct rl_table *t = must_open(test_name("window"), 4096);
	unsigned seed = 5;
	int run = 0;

	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(adm);
	for (size_t p = 0; p < N_GUARANTEE_POLICIES; p++) {
		uint32_t limit = guarantee_policies[p].limit,
		         period = guarantee_policies[p].period_s;
		uint64_t T = t_ms(limit, period);
		bool divides = (uint64_t)period * 1000 % T == 0;

		for (int pat = 0; pat < PAT_COUNT; pat++) {
			size_t n = gen_pattern((enum pattern)pat, limit, period, req, max, &seed),
			       na = 0;
			uint64_t base = T0 + SEC(100000) * (uint64_t)run++;
			struct guarantee_max m;
			char key[32], what[64];

			snprintf(key, sizeof(key), "w-%zu-%d", p, pat);
			snprintf(what, sizeof(what), "policy %u/%us pattern %d", limit, period,
			         pat);
			for (size_t i = 0; i < n; i++)
				if (check_key(t, limit, period, 0, key, base + req[i]).allowed)
					adm[na++] = req[i];
			ck_assert_uint_gt(na, 0);
			m = check_guarantee(adm, na, limit, period, what);
			/* The greedy adversaries reach every bound exactly. */
			if (pat == PAT_GREEDY) {
				ck_assert_uint_eq(m.pair_excess, limit);
				if (divides)
					ck_assert_uint_eq(m.grid_window, 2 * (uint64_t)limit - 1);
			}
			if (pat == PAT_LATE_BURST && divides)
				ck_assert_uint_eq(m.real_window, 2 * (uint64_t)limit);
		}
	}
	rl_close(t);
	free(req);
	free(adm);
}
END_TEST

/*
 * The same adversaries all at once, each on its own key, through a table of
 * a single window (16 slots) so that keys are evicted and refused for want
 * of a slot all the time: the guarantee must hold for every key regardless.
 */
struct req {
	uint64_t at;
	int key;
};

static int cmp_req(const void *a, const void *b)
{
	const struct req *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

START_TEST(test_window_guarantee_tiny_table)
{
	enum { KEYS = 40, PER_KEY = 20000 };
	struct req *all = malloc(KEYS * PER_KEY * sizeof(*all));
	uint64_t *times = malloc(PER_KEY * sizeof(*times));
	uint64_t *adm[KEYS];
	size_t nadm[KEYS] = {0}, n = 0;
	struct rl_table *t = must_open(test_name("tiny"), 16);
	struct rl_stats st;
	unsigned seed = 3;

	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(times);
	for (int k = 0; k < KEYS; k++) {
		const struct rate_policy *pol = &guarantee_policies[k % 4];
		size_t m = gen_pattern((enum pattern)(k % PAT_COUNT), pol->limit, pol->period_s,
		                       times, PER_KEY, &seed);
		/* Stagger the keys so that they come and go. */
		uint64_t shift = SEC(k % 3);

		for (size_t i = 0; i < m; i++)
			all[n++] = (struct req){.at = times[i] + shift, .key = k};
		adm[k] = malloc(m * sizeof(uint64_t));
		ck_assert_ptr_nonnull(adm[k]);
	}
	/* One timeline; equal times keep no particular order, which does not
	 * matter: a key's requests at one instant are interchangeable. */
	qsort(all, n, sizeof(*all), cmp_req);
	for (size_t i = 0; i < n; i++) {
		const struct rate_policy *pol = &guarantee_policies[all[i].key % 4];
		char key[16];

		snprintf(key, sizeof(key), "k%d", all[i].key);
		if (check_key(t, pol->limit, pol->period_s, 0, key, T0 + all[i].at).allowed)
			adm[all[i].key][nadm[all[i].key]++] = all[i].at;
	}
	for (int k = 0; k < KEYS; k++) {
		const struct rate_policy *pol = &guarantee_policies[k % 4];
		char what[32];

		snprintf(what, sizeof(what), "tiny table key %d", k);
		check_guarantee(adm[k], nadm[k], pol->limit, pol->period_s, what);
		free(adm[k]);
	}
	rl_stats(t, T0, &st);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_gt(st.classes[0].table_full, 0);
	rl_close(t);
	free(all);
	free(times);
}
END_TEST

/* ---- many processes on one key ---- */

struct gate {
	_Atomic int round;
};

/*
 * nproc children each open the table, then for every round wait at the gate
 * and try `tries` times on the round's fresh key; the parent opens the gate
 * for all at once and checks that exactly `limit` were admitted per round.
 */
static void hammer_rounds(const char *name, const char *prefix, int nproc, int rounds, int tries,
                          uint32_t limit, uint32_t period_s)
{
	struct gate *g = shared_anon(sizeof(*g));
	pid_t kids[16];
	int res[2];

	ck_assert_int_le(nproc, 16);
	atomic_store(&g->round, -1);
	ck_assert_int_eq(pipe(res), 0);
	for (int c = 0; c < nproc; c++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct rate_policy pol = {.limit = limit, .period_s = period_s};
			struct rl_table *t = NULL;
			char err[RL_ERR_LEN];

			close(res[0]);
			if (rl_open(name, 1u << 12, &t, err, sizeof(err)) < 0)
				_exit(2);
			for (int r = 0; r < rounds; r++) {
				char key[64];
				int32_t n = 0;

				while (atomic_load(&g->round) < r)
					sched_yield();
				snprintf(key, sizeof(key), "%s-%d", prefix, r);
				for (int i = 0; i < tries; i++) {
					struct rl_result out;

					if (rl_check(t, &pol, 1, key, strlen(key), util_now_ns(),
					             &out) < 0)
						_exit(3);
					n += out.allowed;
				}
				write_full(res[1], &n, sizeof(n));
			}
			rl_close(t);
			_exit(0);
		}
		kids[c] = pid;
	}
	close(res[1]);
	for (int r = 0; r < rounds; r++) {
		int32_t total = 0;

		atomic_store(&g->round, r);
		for (int c = 0; c < nproc; c++) {
			int32_t n;

			read_full(res[0], &n, sizeof(n));
			total += n;
		}
		ck_assert_msg(total == (int32_t)limit, "round %d: %d admitted, limit %u", r, total,
		              limit);
	}
	close(res[0]);
	for (int c = 0; c < nproc; c++)
		wait_ok(kids[c]);
	munmap(g, sizeof(*g));
}

START_TEST(test_fork_hammer_one_key)
{
	const char *name = test_name("hammer");
	struct rl_table *t = must_open(name, 1u << 12);
	struct rl_stats st;

	hammer_rounds(name, "hammer", 8, 50, 100, 5, 3600);
	rl_stats(t, util_now_ns(), &st);
	ck_assert_uint_eq(st.classes[1].checks, 8 * 50 * 100);
	ck_assert_uint_eq(st.classes[1].rejected, 8 * 50 * 100 - 5 * 50);
	ck_assert_uint_eq(st.classes[1].conflicts, 0);
	rl_close(t);
	seg_unlink(name, NULL, 0);
}
END_TEST

/* ---- creating and opening the segment ---- */

struct open_report {
	int32_t ok;
	int32_t creator_pid;
	uint64_t created_ns;
	uint64_t slots;
};

START_TEST(test_concurrent_create)
{
	for (int iter = 0; iter < 20; iter++) {
		char tag[32];
		const char *name;
		struct gate *g = shared_anon(sizeof(*g));
		struct open_report rep[8];
		pid_t kids[8];
		int res[2];

		snprintf(tag, sizeof(tag), "create%d", iter);
		name = test_name(tag);
		atomic_store(&g->round, 0);
		ck_assert_int_eq(pipe(res), 0);
		for (int c = 0; c < 8; c++) {
			pid_t pid = fork();

			ck_assert_int_ge(pid, 0);
			if (pid == 0) {
				struct open_report me = {0};
				struct rl_table *t = NULL;
				struct rl_stats st;
				char err[RL_ERR_LEN];

				while (atomic_load(&g->round) == 0)
					sched_yield();
				if (rl_open(name, 256, &t, err, sizeof(err)) == 0) {
					rl_stats(t, util_now_ns(), &st);
					me = (struct open_report){1, st.creator_pid, st.created_ns,
					                          st.slots};
					rl_close(t);
				} else {
					fprintf(stderr, "%s\n", err);
				}
				write_full(res[1], &me, sizeof(me));
				_exit(0);
			}
			kids[c] = pid;
		}
		close(res[1]);
		atomic_store(&g->round, 1);
		for (int c = 0; c < 8; c++)
			read_full(res[0], &rep[c], sizeof(rep[c]));
		close(res[0]);
		for (int c = 0; c < 8; c++)
			wait_ok(kids[c]);
		for (int c = 0; c < 8; c++) {
			bool creator_is_a_child = false;

			ck_assert_int_eq(rep[c].ok, 1);
			ck_assert_int_eq(rep[c].creator_pid, rep[0].creator_pid);
			ck_assert_uint_eq(rep[c].created_ns, rep[0].created_ns);
			ck_assert_uint_eq(rep[c].slots, 256);
			for (int k = 0; k < 8; k++)
				creator_is_a_child |= kids[k] == rep[c].creator_pid;
			ck_assert(creator_is_a_child);
		}
		ck_assert_int_eq(seg_unlink(name, NULL, 0), 0);
		munmap(g, sizeof(*g));
	}
}
END_TEST

/* Map a segment raw, as a foreign or older program would have left it. */
static void *raw_segment(const char *name, size_t size, mode_t mode)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	void *p = NULL;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	if (size > 0) {
		ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		ck_assert_ptr_ne(p, MAP_FAILED);
	}
	close(fd);
	return p;
}

static void expect_open_error(const char *name, uint32_t slots, const char *needle1,
                              const char *needle2)
{
	struct rl_table *t = NULL;
	char err[RL_ERR_LEN] = "";

	ck_assert_int_eq(rl_open(name, slots, &t, err, sizeof(err)), -1);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, needle1) != NULL, "\"%s\" lacks \"%s\"", err, needle1);
	ck_assert_msg(strstr(err, needle2) != NULL, "\"%s\" lacks \"%s\"", err, needle2);
}

START_TEST(test_mismatched_segments)
{
	const char *name = test_name("mismatch");
	struct rl_table *t = must_open(name, 1024), *t2 = NULL;
	char err[RL_ERR_LEN], path[96];
	struct rl_result r;
	uint32_t *words;
	uint8_t *p;
	int fd;

	/* A different slot count: a clear error naming both and the fix. */
	expect_open_error(name, 2048, "1024 slots", "2048 slots");
	snprintf(path, sizeof(path), "rm /dev/shm/%s", name + 1);
	expect_open_error(name, 2048, path, "chat-admin ratelimit unlink");
	/* The table is untouched and still works, and rl_attach takes it as
	 * it is. */
	r = check_key(t, 1, 60, 0, "k", T0);
	ck_assert(r.allowed);
	ck_assert_int_eq(rl_attach(name, &t2, err, sizeof(err)), 0);
	ck_assert(!check_key(t2, 1, 60, 0, "k", T0).allowed);
	rl_close(t2);

	/* Another layout version (the stable prefix says so at offset 8). */
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	close(fd);
	words = (uint32_t *)(void *)(p + 8);
	*words = 99;
	snprintf(path, sizeof(path), "expects version %u / 1024 slots", RL_LAYOUT_VERSION);
	expect_open_error(name, 1024, "layout version 99 / 1024 slots", path);
	*words = RL_LAYOUT_VERSION;
	rl_close(must_open(name, 1024));
	munmap(p, 4096);
	rl_close(t);
	ck_assert_int_eq(seg_unlink(name, err, sizeof(err)), 0);
	ck_assert_int_eq(seg_unlink(name, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));

	/* Not ours at all. */
	name = test_name("foreign");
	p = raw_segment(name, 4096, 0600);
	memset(p, 0xa5, 4096);
	expect_open_error(name, 1024, "not a chat-fcgi rate-limit table", "rm /dev/shm/");
	munmap(p, 4096);
	shm_unlink(name);

	/* Readable by others: the hash key would leak. */
	name = test_name("mode");
	p = raw_segment(name, 4096, 0644);
	expect_open_error(name, 1024, "mode 0644", "rm /dev/shm/");
	munmap(p, 4096);
	shm_unlink(name);

	/* Bad arguments. */
	expect_open_error("no-slash", 1024, "must be one leading slash", "no-slash");
	expect_open_error("/a/b", 1024, "must be one leading slash", "/a/b");
	expect_open_error(name, 8, "slot count 8", "16..");

	/* rl_attach never creates. */
	ck_assert_int_eq(rl_attach(name, &t2, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not exist"));
}
END_TEST

/*
 * A creator killed between shm_open(O_EXCL) and publishing the magic leaves
 * a segment nobody will ever finish: after the 2 s wait, a clear error that
 * says how to remove it (nobody removes it automatically: a waiter cannot
 * tell a dead creator from a slow one, and removing a live one would split
 * the workers over two tables).
 */
START_TEST(test_never_published)
{
	const char *name = test_name("stale");
	uint64_t start = util_now_ns(), waited;
	uint8_t *p;

	/* Died after ftruncate, before the magic. */
	p = raw_segment(name, 4096 * 4, 0600);
	expect_open_error(name, 1024, "never initialised", "rm /dev/shm/");
	waited = util_now_ns() - start;
	ck_assert_uint_ge(waited, SEC(2) - MS(10));
	ck_assert_uint_lt(waited, SEC(4));
	munmap(p, 4096 * 4);
	shm_unlink(name);

	/* Died before ftruncate: an empty file. */
	name = test_name("empty");
	raw_segment(name, 0, 0600);
	expect_open_error(name, 1024, "never initialised", "chat-admin ratelimit unlink");
	shm_unlink(name);
}
END_TEST

/* ---- SIGKILL ---- */

#define KILL_SLOW_KEYS 400

START_TEST(test_sigkill_mid_update)
{
	const char *name = test_name("kill");
	struct rl_table *t = must_open(name, 4096);
	int reported[KILL_SLOW_KEYS] = {0}, rep[2], total = 0;
	char err[RL_ERR_LEN];
	unsigned seed = 99;
	struct rl_stats st;

	ck_assert_int_eq(pipe(rep), 0);
	ck_assert_int_eq(fcntl(rep[0], F_SETFL, O_NONBLOCK), 0);
	for (int cycle = 0; cycle < 25; cycle++) {
		pid_t kids[4];

		for (int c = 0; c < 4; c++) {
			pid_t pid = fork();

			ck_assert_int_ge(pid, 0);
			if (pid == 0) {
				struct rate_policy slow = {3, 3600}, fast = {1000, 1};
				unsigned s = (unsigned)getpid();
				struct rl_table *mine = NULL;

				close(rep[0]);
				if (rl_open(name, 4096, &mine, err, sizeof(err)) < 0)
					_exit(2);
				/* Until killed: slow keys report each admission,
				 * fast keys keep the CAS path busy. */
				for (;;) {
					uint16_t u = (uint16_t)(rand_r(&s) % KILL_SLOW_KEYS);
					struct rl_result r;
					char key[16];

					if (rand_r(&s) & 1) {
						snprintf(key, sizeof(key), "s%u", (unsigned)u);
						if (rl_check(mine, &slow, 0, key, strlen(key),
						             util_now_ns(), &r) < 0)
							_exit(3);
						if (r.allowed)
							write_full(rep[1], &u, sizeof(u));
					} else {
						snprintf(key, sizeof(key), "f%u", (unsigned)u % 40);
						if (rl_check(mine, &fast, 1, key, strlen(key),
						             util_now_ns(), &r) < 0)
							_exit(3);
					}
				}
			}
			kids[c] = pid;
		}
		{
			struct timespec ts = {0, (long)(1 + rand_r(&seed) % 20) * 1000000L};

			nanosleep(&ts, NULL);
		}
		for (int c = 0; c < 4; c++) {
			int st_kid;

			kill(kids[c], SIGKILL);
			ck_assert_int_eq(waitpid(kids[c], &st_kid, 0), kids[c]);
			ck_assert_msg(WIFSIGNALED(st_kid) && WTERMSIG(st_kid) == SIGKILL,
			              "child ended with status 0x%x before the kill", st_kid);
		}
		for (;;) {
			uint16_t u;

			if (read(rep[0], &u, sizeof(u)) != (ssize_t)sizeof(u))
				break;
			reported[u]++;
			total++;
		}
	}
	close(rep[1]);
	close(rep[0]);
	ck_assert_int_gt(total, 0);

	/* Every slot holds a whole, plausible entry. */
	ck_assert_msg(rl_verify(t, util_now_ns(), err, sizeof(err)) == 0, "%s", err);

	/* The killed processes' admissions still count: a slow key never gets
	 * more than 3 in all (reports undercount; they cannot overcount). */
	for (int u = 0; u < KILL_SLOW_KEYS; u++) {
		char key[16];
		int later = 0;

		snprintf(key, sizeof(key), "s%d", u);
		for (int i = 0; i < 5; i++)
			later += check_key(t, 3, 3600, 0, key, util_now_ns()).allowed;
		ck_assert_msg(reported[u] + later <= 3, "key %s: %d + %d admitted, limit 3", key,
		              reported[u], later);
	}

	/* Nothing is stuck: fresh keys are limited exactly, by new processes. */
	rl_stats(t, util_now_ns(), &st);
	hammer_rounds(name, "after-kill", 8, 10, 100, 5, 3600);
	{
		struct rl_stats after;

		rl_stats(t, util_now_ns(), &after);
		ck_assert_uint_eq(after.classes[1].checks - st.classes[1].checks, 8 * 10 * 100);
		ck_assert_uint_eq(after.classes[1].conflicts, st.classes[1].conflicts);
	}
	rl_close(t);
	seg_unlink(name, NULL, 0);
}
END_TEST

/* ---- a full table ---- */

/* An IPv6 /64 from 2001:db8::/32 as the 8-byte key the worker would use. */
static void v6_key(uint8_t key[8], uint32_t net)
{
	key[0] = 0x20;
	key[1] = 0x01;
	key[2] = 0x0d;
	key[3] = 0xb8;
	key[4] = (uint8_t)(net >> 24);
	key[5] = (uint8_t)(net >> 16);
	key[6] = (uint8_t)(net >> 8);
	key[7] = (uint8_t)net;
}

static struct rl_result check_net(struct rl_table *t, const struct rate_policy *p, uint32_t net,
                                  uint64_t now)
{
	struct rl_result r;
	uint8_t key[8];

	v6_key(key, net);
	ck_assert_int_eq(rl_check(t, p, 0, key, sizeof(key), now, &r), 0);
	return r;
}

START_TEST(test_table_overflow)
{
	enum { N = 256, KEYS = 10 * N };
	const struct rate_policy hour = {1, 3600}, second = {1, 1};
	struct rl_table *t = must_open(test_name("full"), N);
	bool *admitted = calloc(KEYS, sizeof(bool)), *is_short = calloc(KEYS, sizeof(bool));
	uint32_t n_adm = 0, n_full = 0, n_long = 0, n_short = 0, n_new = 0;
	char err[RL_ERR_LEN];
	struct rl_stats st;

	ck_assert_ptr_nonnull(admitted);
	ck_assert_ptr_nonnull(is_short);

	/* 10x more distinct /64s than slots, each limited for an hour. */
	for (uint32_t i = 0; i < KEYS; i++) {
		struct rl_result r = check_net(t, &hour, i, T0);

		if (r.allowed) {
			admitted[i] = true;
			n_adm++;
		} else {
			/* A fresh key is refused only for want of a slot
			 * (or, about once in 2^19 here, a shared fingerprint). */
			ck_assert(r.outcome == RL_TABLE_FULL || r.outcome == RL_LIMITED);
			n_full += r.outcome == RL_TABLE_FULL;
			ck_assert_uint_ge(r.retry_after_s, 1);
			ck_assert_uint_eq(r.remaining, 0);
		}
	}
	rl_stats(t, T0, &st);
	ck_assert_uint_le(n_adm, N);
	ck_assert_uint_ge(n_adm, N * 3 / 4); /* 16-slot windows fill most slots */
	ck_assert_uint_eq(st.in_use, n_adm);
	ck_assert_uint_eq(st.classes[0].table_full, n_full);
	ck_assert_uint_eq(st.evictions, 0);

	/* A key over its limit is never admitted, however many keys came
	 * after it; keys refused for want of a slot stay refused while every
	 * slot is still limiting someone. */
	for (uint32_t i = 0; i < KEYS; i++) {
		struct rl_result r = check_net(t, &hour, i, T0 + SEC(60));

		ck_assert_msg(!r.allowed, "key %u admitted", i);
		if (admitted[i])
			ck_assert_int_eq(r.outcome, RL_LIMITED);
	}
	ck_assert_msg(rl_verify(t, T0, err, sizeof(err)) == 0, "%s", err);
	rl_close(t);

	/* Stale entries go first: half the keys limited for a second, half
	 * for an hour; once the seconds are over, new keys take exactly the
	 * replenished slots and the hour keys keep theirs. */
	t = must_open(test_name("stale-first"), N);
	for (uint32_t i = 0; i < KEYS; i++) {
		is_short[i] = i % 2 == 0;
		admitted[i] = check_net(t, is_short[i] ? &second : &hour, i, T0).allowed;
		if (admitted[i]) {
			n_short += is_short[i];
			n_long += !is_short[i];
		}
	}
	for (uint32_t i = KEYS; i < 2 * KEYS; i++)
		n_new += check_net(t, &hour, i, T0 + SEC(5)).allowed;
	rl_stats(t, T0 + SEC(5), &st);
	for (uint32_t i = 0; i < KEYS; i++)
		if (admitted[i] && !is_short[i])
			ck_assert_int_eq(check_net(t, &hour, i, T0 + SEC(5)).outcome, RL_LIMITED);
	ck_assert_uint_eq(st.in_use, n_long + n_new);
	ck_assert_uint_le(n_new, N - n_long);
	/* Every replenished entry was reachable by some of the 2560 new keys. */
	ck_assert_uint_ge(n_new, n_short);
	ck_assert_uint_eq(st.evictions, n_short);
	ck_assert_msg(rl_verify(t, T0 + SEC(5), err, sizeof(err)) == 0, "%s", err);
	rl_close(t);
	free(admitted);
	free(is_short);
}
END_TEST

/*
 * Layout version 2, white-box: a key's two entries can only come from a race
 * between processes (see fold() in ratelimit.c), so plant one by hand, using
 * only what the layout documents: header_size at offset 12, buckets of 8
 * slots, and the slot word choice:1 | fp:23 | tat:40.
 */
START_TEST(test_twins_are_folded)
{
	enum { N = 64 };
	const char *name = test_name("twins");
	struct rl_table *t = must_open(name, N);
	int fd = shm_open(name, O_RDWR, 0), at = -1;
	uint8_t *map;
	uint32_t header_size;
	_Atomic uint64_t *slots;
	uint64_t w, tat_mask = (UINT64_C(1) << 40) - 1, twin;
	struct rl_stats st;

	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	memcpy(&header_size, map + 12, sizeof(header_size));
	munmap(map, 4096);
	map = mmap(NULL, header_size + N * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	close(fd);
	slots = (_Atomic uint64_t *)(void *)(map + header_size);

	/* One admission of 5/minute: the only entry, first slot of its
	 * bucket, TAT = T0 + 12 s. */
	ck_assert(check_key(t, 5, 60, 0, "eve", T0).allowed);
	for (int i = 0; i < N; i++)
		if (atomic_load(&slots[i]) != 0) {
			ck_assert_int_eq(at, -1);
			at = i;
		}
	ck_assert_int_ge(at, 0);
	ck_assert_int_eq(at % 8, 0);
	w = atomic_load(&slots[at]);
	ck_assert_uint_eq(w & tat_mask, T0 / NS_PER_MS + 12000);

	/* A twin in the next slot of the bucket that saw three more
	 * admissions. */
	twin = (w & ~tat_mask) | (T0 / NS_PER_MS + 48000);
	atomic_store(&slots[at + 1], twin);

	/* The next check merges them into the nearer slot with the larger TAT,
	 * then decides on that: the fifth admission, none left. */
	expect(check_key(t, 5, 60, 0, "eve", T0), true, 0, 60, 0);
	ck_assert_uint_eq(atomic_load(&slots[at + 1]), 0);
	ck_assert_uint_eq(atomic_load(&slots[at]) & tat_mask, T0 / NS_PER_MS + 60000);
	ck_assert_int_eq(check_key(t, 5, 60, 0, "eve", T0).outcome, RL_LIMITED);
	rl_stats(t, T0, &st);
	ck_assert_uint_eq(st.folds, 1);

	/* A twin with the smaller TAT changes nothing but disappears. */
	atomic_store(&slots[at + 1], (twin & ~tat_mask) | (T0 / NS_PER_MS + 1));
	ck_assert_int_eq(check_key(t, 5, 60, 0, "eve", T0).outcome, RL_LIMITED);
	ck_assert_uint_eq(atomic_load(&slots[at + 1]), 0);
	ck_assert_uint_eq(atomic_load(&slots[at]) & tat_mask, T0 / NS_PER_MS + 60000);

	munmap(map, header_size + N * 8);
	rl_close(t);
}
END_TEST

/*
 * A key whose replenished entry was evicted by a process with a later clock
 * read must not start afresh at an earlier time: that would admit it twice
 * within T.  Single-window table so that the eviction is forced.
 */
START_TEST(test_eviction_floor)
{
	struct rl_table *t = must_open(test_name("floor"), 16);
	char key[32];
	struct rl_result r;

	/* 15 keys limited for an hour and "a", 1/second, at 10 s: TAT 11 s. */
	for (int i = 0; i < 15; i++) {
		snprintf(key, sizeof(key), "filler%d", i);
		ck_assert(check_key(t, 1, 3600, 0, key, T0).allowed);
	}
	ck_assert(check_key(t, 1, 1, 0, "a", T0 + SEC(10)).allowed);
	ck_assert_int_eq(check_key(t, 1, 3600, 0, "b", T0 + SEC(10)).outcome, RL_TABLE_FULL);

	/* At 12 s "b" takes the only replenished slot, a's. */
	ck_assert(check_key(t, 1, 3600, 0, "b", T0 + SEC(12)).allowed);
	ck_assert_int_eq(rl_reset_key(t, 0, "filler0", 7), 1);

	/* A process whose clock read 10.5 s comes late: "a" has no entry, but
	 * its history counts: admitted as of 11 s (its old TAT), not 10.5 s,
	 * so it is not admitted again before 12 s. */
	r = check_key(t, 1, 1, 0, "a", T0 + MS(10500));
	ck_assert(r.allowed);
	ck_assert_int_eq(check_key(t, 1, 1, 0, "a", T0 + MS(11500)).outcome, RL_LIMITED);
	ck_assert(check_key(t, 1, 1, 0, "a", T0 + SEC(12)).allowed);
	rl_close(t);
}
END_TEST

/* ---- the guarantee across processes, with a real clock ---- */

struct rec {
	uint64_t before_ns, after_ns;
	uint16_t key;
	uint8_t cls;
	uint8_t allowed;
};

#define REC_MAX 100000

static int cmp_rec_before(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->before_ns < y->before_ns ? -1 : x->before_ns > y->before_ns;
}

/*
 * Four processes on a 32-slot table, a hot set of keys that drifts so that
 * entries are evicted and windows fill up all the time.  The table's time
 * for a request lies between the clock read before the call and the one
 * after it, so for admissions sorted by `before`, any run i..j lies within
 * [before_i, max after] and obeys the bound with that span.
 */
START_TEST(test_concurrent_guarantee)
{
	enum { PROCS = 4, KEYS = 64 };
	static const struct rate_policy pol[2] = {{2, 1}, {50, 1}};
	const char *name = test_name("conc");
	struct rl_table *t = must_open(name, 32);
	struct rec *recs = shared_anon(PROCS * REC_MAX * sizeof(struct rec));
	size_t *counts = shared_anon(PROCS * sizeof(size_t));
	struct rec *sel = malloc(PROCS * REC_MAX * sizeof(struct rec));
	pid_t kids[PROCS];
	struct rl_stats st;
	size_t total_adm = 0;

	ck_assert_ptr_nonnull(sel);
	for (int c = 0; c < PROCS; c++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct rec *mine = recs + (size_t)c * REC_MAX;
			uint64_t end = util_now_ns() + MS(2000);
			unsigned s = (unsigned)getpid();
			struct rl_table *h = NULL;
			char err[RL_ERR_LEN];
			size_t n = 0;

			rl_close(t); /* the parent's; this process opens its own */
			if (rl_open(name, 32, &h, err, sizeof(err)) < 0)
				_exit(2);
			while (n < REC_MAX) {
				uint64_t now = util_now_ns();
				uint16_t key =
				    (uint16_t)((now / MS(20) + (unsigned)rand_r(&s) % 6) % KEYS);
				uint8_t cls = (uint8_t)(rand_r(&s) & 1);
				struct rl_result r;
				char k[16];

				if (now >= end)
					break;
				/* Bursts of 20, so that records last the whole run
				 * and the hot set really drifts. */
				if (n % 20 == 19) {
					struct timespec ts = {0, 1000000};

					nanosleep(&ts, NULL);
				}
				snprintf(k, sizeof(k), "g%u", key);
				if (rl_check(h, &pol[cls], cls, k, strlen(k), now, &r) < 0)
					_exit(3);
				mine[n++] = (struct rec){now, util_now_ns(), key, cls, r.allowed};
			}
			counts[c] = n;
			rl_close(h);
			_exit(0);
		}
		kids[c] = pid;
	}
	for (int c = 0; c < PROCS; c++)
		wait_ok(kids[c]);

	for (uint8_t cls = 0; cls < 2; cls++) {
		uint64_t T = t_ms(pol[cls].limit, pol[cls].period_s);

		for (uint16_t key = 0; key < KEYS; key++) {
			size_t n = 0;

			for (int c = 0; c < PROCS; c++)
				for (size_t i = 0; i < counts[c]; i++) {
					const struct rec *x = &recs[(size_t)c * REC_MAX + i];

					if (x->allowed && x->cls == cls && x->key == key)
						sel[n++] = *x;
				}
			total_adm += n;
			qsort(sel, n, sizeof(*sel), cmp_rec_before);
			for (size_t i = 0; i < n; i++) {
				uint64_t max_after = 0, from = sel[i].before_ns / NS_PER_MS;

				for (size_t j = i; j < n; j++) {
					uint64_t span;

					if (sel[j].after_ns > max_after)
						max_after = sel[j].after_ns;
					span = max_after / NS_PER_MS - from;
					if (j - i + 1 > pol[cls].limit + span / T)
						ck_abort_msg("class %u key %u: %zu admitted within "
						             "%" PRIu64 " ms",
						             cls, key, j - i + 1, span);
				}
			}
		}
	}
	rl_stats(t, util_now_ns(), &st);
	ck_assert_uint_gt(total_adm, 0);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_gt(st.classes[0].table_full + st.classes[1].table_full, 0);
	rl_close(t);
	free(sel);
	munmap(recs, PROCS * REC_MAX * sizeof(struct rec));
	munmap(counts, PROCS * sizeof(size_t));
}
END_TEST

/* ---- operator functions ---- */

START_TEST(test_reset_and_stats)
{
	const char *name = test_name("reset");
	struct rl_table *t = must_open(name, 64), *admin = NULL;
	char err[RL_ERR_LEN];
	struct rl_stats st;

	for (int i = 0; i < 3; i++)
		check_key(t, 2, 60, 0, "carol", T0);
	check_key(t, 2, 60, 1, "carol", T0);
	check_key(t, 2, 60, 0, "dave", T0);
	rl_stats(t, T0, &st);
	ck_assert_uint_eq(st.in_use, 3);
	ck_assert_uint_eq(st.classes[0].checks, 4);
	ck_assert_uint_eq(st.classes[0].rejected, 1);
	ck_assert_uint_eq(st.classes[1].checks, 1);
	ck_assert_int_eq(st.creator_pid, getpid());

	/* chat-admin attaches without knowing the slot count and resets one
	 * key in one class; the worker sees it at once. */
	ck_assert_int_eq(rl_attach(name, &admin, err, sizeof(err)), 0);
	ck_assert_int_eq(rl_reset_key(admin, 0, "carol", 5), 1);
	ck_assert_int_eq(rl_reset_key(admin, 0, "carol", 5), 0);
	ck_assert_int_eq(rl_reset_key(admin, RL_MAX_CLASSES, "carol", 5), -1);
	expect(check_key(t, 2, 60, 0, "carol", T0), true, 1, 30, 0);
	/* The same key in class 1 was not reset: one used, one left. */
	expect(check_key(t, 2, 60, 1, "carol", T0), true, 0, 60, 0);
	ck_assert(!check_key(t, 2, 60, 1, "carol", T0).allowed);

	rl_reset_all(admin);
	rl_stats(admin, T0, &st);
	ck_assert_uint_eq(st.in_use, 0);
	ck_assert_uint_eq(st.slots, 64);
	expect(check_key(t, 2, 60, 1, "carol", T0), true, 1, 30, 0);
	rl_stats(admin, T0 + SEC(31), &st);
	ck_assert_uint_eq(st.in_use, 0);
	rl_close(admin);
	rl_close(t);
	rl_close(NULL);
	ck_assert_int_eq(seg_unlink(name, err, sizeof(err)), 0);
}
END_TEST

static Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *algo = tcase_create("algorithm"), *shm = tcase_create("shared memory");

	tcase_add_test(algo, test_gcra_basics);
	tcase_add_test(algo, test_gcra_matches_reference);
	tcase_add_test(algo, test_window_guarantee);
	tcase_add_test(algo, test_window_guarantee_tiny_table);
	tcase_set_timeout(algo, 60);
	suite_add_tcase(s, algo);

	tcase_add_test(shm, test_fork_hammer_one_key);
	tcase_add_test(shm, test_concurrent_create);
	tcase_add_test(shm, test_mismatched_segments);
	tcase_add_test(shm, test_never_published);
	tcase_add_test(shm, test_sigkill_mid_update);
	tcase_add_test(shm, test_table_overflow);
	tcase_add_test(shm, test_twins_are_folded);
	tcase_add_test(shm, test_eviction_floor);
	tcase_add_test(shm, test_concurrent_guarantee);
	tcase_add_test(shm, test_reset_and_stats);
	tcase_set_timeout(shm, 60);
	suite_add_tcase(s, shm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	char run[32];
	int failed;

	snprintf(run, sizeof(run), "%ld", (long)getpid());
	setenv(RUN_ENV, run, 1);
	srunner_run_all(sr, CK_NORMAL);
	remove_run_segments();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
