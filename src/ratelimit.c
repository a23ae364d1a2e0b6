/*
 * ratelimit: the shared-memory table and its algorithm (GCRA); the interface
 * and the guarantee are in ratelimit.h, the design and its proofs in
 * docs/RATELIMIT.md.
 *
 * Segment layout (version 3: version 2 plus the extension area for metrics in
 * the header; version 1, a linear-probing window of 16 slots, was only in
 * early development commits):
 *
 *   [header, HEADER_SIZE bytes][slot 0][slot 1]...[slot nslots-1]
 *
 * The first 32 bytes of the header (magic, version, header size, slot count,
 * total size) keep their offsets in every layout version, so any build can
 * read them and say precisely what it found.
 *
 * A slot is one _Atomic uint64_t:
 *
 *   bit  63      choice  which of the key's two buckets this is (0 or 1)
 *   bits 62..40  fp      23 bits of the key's hash, not used to pick buckets
 *   bits 39..0   tat     the key's TAT in ms of CLOCK_MONOTONIC; 0 = empty
 *
 * Slots come in buckets of 8, one 64-byte cache line each.  The key's hash
 * names two different buckets; the key lives in one slot of either, so a
 * check reads exactly two cache lines.  A new key goes to the bucket with
 * more free slots (two choices keep the buckets even, so a table refuses new
 * keys only when it is nearly full; a linear-probing window of 16 refused
 * some at half occupancy).  Bucket, choice bit and fp together name the key.
 * An entry with tat <= now is fully replenished: it carries no information
 * and any key may take its slot.  Every transition of a slot is one CAS of
 * the whole word, so a reader sees either the old entry or the new one, and
 * a process killed anywhere leaves only whole entries behind.
 *
 * Invariants the proofs rely on:
 *   1. A key's admitted requests always see its latest TAT: an entry leaves a
 *      slot only by (a) eviction once replenished, after raising the header's
 *      evicted_tat_max to its TAT, (b) a fold into another entry of the same
 *      key that already holds a TAT at least as large, or (c) an operator's
 *      reset.  A key that finds no entry starts from max(now,
 *      evicted_tat_max), so (a) loses nothing either.
 *   2. An active entry (tat > now) is never evicted.
 *   3. A request admitted through one entry re-reads its window after the
 *      CAS; if another entry of the same key appeared it refuses (fail
 *      closed), so two entries of one key are never both used to admit.
 */
#include "ratelimit.h"
#include "ratelimit_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "segment.h"
#include "siphash.h"
#include "util.h"

/* A process killed mid-update must not leave a lock behind, so every shared
 * word is a lock-free atomic: never a mutex, never a libatomic lock table
 * (which is per process and would not even exclude other processes). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "64-bit long long");

#define BUCKET       8u           /* slots per bucket: 64 bytes, one cache line */
#define WINDOW       (2 * BUCKET) /* the slots a key may occupy */
#define CHOICE_SHIFT 63
#define FP_BITS      23
#define TAT_BITS     40
#define FP_MASK      ((UINT64_C(1) << FP_BITS) - 1)
#define TAT_MASK     ((UINT64_C(1) << TAT_BITS) - 1)
_Static_assert(1 + FP_BITS + TAT_BITS == 64, "a slot is one 64-bit word");
_Static_assert(RL_MIN_SLOTS >= 2 * BUCKET, "two distinct buckets");

#define NS_PER_MS UINT64_C(1000000)
#define MS_PER_S  UINT64_C(1000)

/* Counters are spread over cache lines by pid so that workers on different
 * cores do not fight over one line on every request. */
#define SHARDS 16u

/* A CAS fails only when another process changed the same slot, i.e. made
 * progress; this bound only stops a pathological livelock from spinning a
 * worker forever (the request is then refused, fail closed). */
#define MAX_ATTEMPTS 1000

/* No correct writer puts a TAT further ahead of now than a whole period plus
 * the rounding of T: limit * T <= period + limit. */
#define MAX_AHEAD_MS ((uint64_t)RL_MAX_PERIOD_S * MS_PER_S + UINT32_MAX)

struct rl_shard {
	_Alignas(64) _Atomic uint64_t checks[RL_MAX_CLASSES];
	_Atomic uint64_t rejected[RL_MAX_CLASSES];
	_Atomic uint64_t table_full[RL_MAX_CLASSES];
	_Atomic uint64_t conflicts[RL_MAX_CLASSES];
	_Atomic uint64_t evictions;
	_Atomic uint64_t folds;
	_Atomic uint64_t cas_retries;
};

struct rl_shm {
	/* Stable prefix (segment.h): the same offsets in every layout version;
	 * its record count is the slot count. */
	struct seg_prefix prefix;

	/* Version 1. */
	uint8_t hash_key[16]; /* random per segment: clients cannot aim at a slot */
	int32_t creator_pid;
	uint32_t reserved;
	uint64_t created_ns;
	/* The largest TAT of any entry evicted so far (invariant 1). */
	_Alignas(64) _Atomic uint64_t evicted_tat_max;
	struct rl_shard shards[SHARDS];
	/* Version 3: room for the other counters the workers share (metrics),
	 * so one segment, one creation protocol and one lifetime serve both. */
	_Alignas(64) uint8_t extension[SEG_EXTENSION_BYTES];
};

_Static_assert(offsetof(struct rl_shm, hash_key) == 32, "version 1 starts after the prefix");

#define HEADER_SIZE ((sizeof(struct rl_shm) + 4095u) & ~(size_t)4095u)

struct rl_table {
	struct segment seg;
	struct rl_shm *shm; /* seg.map */
	_Atomic uint64_t *slots;
	uint32_t nslots;
	uint32_t nbuckets;      /* nslots / BUCKET; a remainder of slots stays unused */
	struct rl_shard *shard; /* this process's counters */
	/* Per-class SipHash keys derived from the segment's key, so the class
	 * takes part in the hash without a second pass over the key. */
	uint8_t class_key[RL_MAX_CLASSES][16];
};

/* Where a key may live and how its entries are recognised. */
struct probe {
	uint32_t bucket[2];
	uint64_t fp;
};

/* GCRA parameters of one policy, in ms. */
struct gcra {
	uint32_t limit;
	uint64_t t;   /* emission interval T */
	uint64_t tau; /* burst tolerance (limit - 1) * T */
};

/* The class keys are stored as SipHash keys are read: little-endian. */
static void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- time and GCRA ---- */

static int gcra_of(const struct rate_policy *p, struct gcra *g)
{
	uint64_t period_ms;

	if (p->period_s == 0 || p->period_s > RL_MAX_PERIOD_S) {
		errno = EINVAL;
		return -1;
	}
	period_ms = (uint64_t)p->period_s * MS_PER_S;
	g->limit = p->limit;
	/* Rounding T up keeps the sustained rate at or below the policy. */
	g->t = (period_ms + p->limit - 1) / p->limit;
	g->tau = (uint64_t)(p->limit - 1) * g->t;
	return 0;
}

static uint32_t ceil_s(uint64_t ms)
{
	return (uint32_t)((ms + MS_PER_S - 1) / MS_PER_S);
}

/* Headers after an admission that left the key's TAT at tat (> now). */
static void result_admitted(const struct gcra *g, uint64_t now, uint64_t tat, struct rl_result *r)
{
	r->allowed = true;
	r->outcome = RL_ADMITTED;
	r->limit = g->limit;
	/* The k-th further request now is admitted iff tat + (k-1)T <= now + tau. */
	r->remaining = tat <= now + g->tau ? (uint32_t)((now + g->tau - tat) / g->t + 1) : 0;
	r->reset_s = ceil_s(tat - now);
	r->retry_after_s = 0;
}

static void result_refused(const struct gcra *g, enum rl_outcome why, uint64_t reset_ms,
                           uint64_t retry_ms, struct rl_result *r)
{
	r->allowed = false;
	r->outcome = why;
	r->limit = g->limit;
	r->remaining = 0;
	r->reset_s = ceil_s(reset_ms);
	r->retry_after_s = retry_ms > 0 ? ceil_s(retry_ms) : 1;
}

/* ---- slots ---- */

static uint64_t w_tat(uint64_t w)
{
	return w & TAT_MASK;
}

/* Candidate k (0..WINDOW-1) is slot k % BUCKET of the key's bucket k / BUCKET;
 * every process numbers the candidates the same way. */
static unsigned choice_of(unsigned k)
{
	return k / BUCKET;
}

static uint64_t w_make(unsigned k, uint64_t fp, uint64_t tat)
{
	return (uint64_t)choice_of(k) << CHOICE_SHIFT | fp << TAT_BITS | tat;
}

/* Whether w, found at candidate k, is a (possibly replenished) entry of the
 * key probed by pr. */
static bool w_is_key(uint64_t w, unsigned k, const struct probe *pr)
{
	return w_tat(w) != 0 && (w >> CHOICE_SHIFT) == choice_of(k) &&
	       ((w >> TAT_BITS) & FP_MASK) == pr->fp;
}

static _Atomic uint64_t *slot_at(const struct rl_table *t, const struct probe *pr, unsigned k)
{
	return &t->slots[(size_t)pr->bucket[choice_of(k)] * BUCKET + k % BUCKET];
}

/* A fixed bijection of 64-bit words (the splitmix64 finaliser): the second
 * bucket from the same keyed hash, without hashing the key twice. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static struct probe probe_of(const struct rl_table *t, uint8_t class_id, const void *key,
                             size_t keylen)
{
	uint64_t h = siphash24(t->class_key[class_id], key, keylen);
	struct probe pr;

	/* Multiply-shift maps 32 random bits onto the buckets without a
	 * division; the low 23 bits tell keys of one bucket apart. */
	pr.bucket[0] = (uint32_t)(((h >> 32) * t->nbuckets) >> 32);
	pr.bucket[1] = (uint32_t)(((mix64(h) >> 32) * t->nbuckets) >> 32);
	if (pr.bucket[1] == pr.bucket[0])
		pr.bucket[1] = (pr.bucket[0] + 1) % t->nbuckets;
	pr.fp = h & FP_MASK;
	return pr;
}

static void read_window(const struct rl_table *t, const struct probe *pr, uint64_t view[WINDOW])
{
	for (unsigned k = 0; k < WINDOW; k++)
		view[k] = atomic_load(slot_at(t, pr, k));
}

/* Atomic max, so a slow process can never lower the floor. */
static void raise_evicted_max(struct rl_shm *shm, uint64_t tat)
{
	uint64_t cur = atomic_load(&shm->evicted_tat_max);

	while (cur < tat && !atomic_compare_exchange_weak(&shm->evicted_tat_max, &cur, tat))
		;
}

/*
 * Two entries of one key: only a race makes them (two processes inserting the
 * key while a slot of its window became free).  Keep the first one, give it
 * the largest TAT, clear the others.  The max is enough: by invariant 3 only
 * one of them ever admitted since they coexist, so it holds the key's real
 * TAT.  Clearing happens after the merge, so a process killed in between
 * leaves two entries (counted twice, fail closed), never none.  Failed CASes
 * are left to the next request.
 */
static void fold(struct rl_table *t, const struct probe *pr, const uint64_t view[WINDOW])
{
	int keep = -1;
	uint64_t max_tat = 0;

	for (unsigned k = 0; k < WINDOW; k++) {
		if (!w_is_key(view[k], k, pr))
			continue;
		if (keep < 0)
			keep = (int)k;
		if (w_tat(view[k]) > max_tat)
			max_tat = w_tat(view[k]);
	}
	if (keep < 0)
		return;
	if (w_tat(view[keep]) < max_tat) {
		uint64_t expect = view[keep];

		if (!atomic_compare_exchange_strong(slot_at(t, pr, (unsigned)keep), &expect,
		                                    w_make((unsigned)keep, pr->fp, max_tat)))
			return;
	}
	for (unsigned k = (unsigned)keep + 1; k < WINDOW; k++) {
		uint64_t expect = view[k];

		if (w_is_key(view[k], k, pr))
			atomic_compare_exchange_strong(slot_at(t, pr, k), &expect, 0);
	}
	atomic_fetch_add_explicit(&t->shard->folds, 1, memory_order_relaxed);
}

/* Invariant 3: after admitting through slot `used`, is there another entry
 * of the key?  Sequentially consistent loads after our CAS: of two processes
 * that each admit through a different entry, the later one sees the other. */
static bool has_twin(const struct rl_table *t, const struct probe *pr, unsigned used)
{
	for (unsigned k = 0; k < WINDOW; k++)
		if (k != used && w_is_key(atomic_load(slot_at(t, pr, k)), k, pr))
			return true;
	return false;
}

int rl_check(struct rl_table *t, const struct rate_policy *policy, uint8_t class_id,
             const void *key, size_t keylen, uint64_t now_ns, struct rl_result *out)
{
	struct rl_shard *sh;
	struct gcra g;
	struct probe pr;
	uint64_t now;

	if (t == NULL || policy == NULL || out == NULL || class_id >= RL_MAX_CLASSES ||
	    (key == NULL && keylen > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (policy->limit == 0) {
		*out = (struct rl_result){.allowed = true, .outcome = RL_OFF};
		return 0;
	}
	if (gcra_of(policy, &g) < 0)
		return -1;
	now = now_ns / NS_PER_MS;
	/* A TAT may reach now + tau + T; it must fit the slot's 40 bits
	 * (2^40 ms is 34 years of uptime). */
	if (now >= TAT_MASK - g.tau - g.t) {
		errno = EOVERFLOW;
		return -1;
	}
	sh = t->shard;
	atomic_fetch_add_explicit(&sh->checks[class_id], 1, memory_order_relaxed);
	pr = probe_of(t, class_id, key, keylen);

	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		uint64_t view[WINDOW];
		int mine = -1, spare, first_free[2] = {-1, -1};
		unsigned n_free[2] = {0, 0};
		bool twins = false;
		uint64_t soonest = UINT64_MAX, tat, new_tat, expect;
		unsigned used;

		read_window(t, &pr, view);
		for (unsigned k = 0; k < WINDOW; k++) {
			uint64_t wt = w_tat(view[k]);

			if (w_is_key(view[k], k, &pr)) {
				twins = twins || mine >= 0;
				if (mine < 0)
					mine = (int)k;
			} else if (wt <= now) {
				/* Empty or replenished: free to take (invariant 2). */
				if (first_free[choice_of(k)] < 0)
					first_free[choice_of(k)] = (int)k;
				n_free[choice_of(k)]++;
			} else if (wt < soonest) {
				soonest = wt;
			}
		}
		/* The emptier bucket, so that buckets fill evenly. */
		spare = n_free[1] > n_free[0] ? first_free[1] : first_free[0];
		if (twins) {
			fold(t, &pr, view);
			continue;
		}

		if (mine >= 0) {
			used = (unsigned)mine;
			tat = w_tat(view[used]);
			if (tat > now + g.tau) {
				atomic_fetch_add_explicit(&sh->rejected[class_id], 1,
				                          memory_order_relaxed);
				result_refused(&g, RL_LIMITED, tat - now, tat - g.tau - now, out);
				return 0;
			}
			new_tat = (tat > now ? tat : now) + g.t;
		} else if (spare >= 0) {
			uint64_t floor_tat;

			used = (unsigned)spare;
			tat = w_tat(view[used]);
			/* Before the CAS, so whoever sees the eviction sees
			 * the floor too (invariant 1). */
			if (tat != 0)
				raise_evicted_max(t->shm, tat);
			/* A new key starts no earlier than any evicted TAT: if
			 * this key was itself evicted by a process whose clock
			 * read was later than ours, its history still counts.
			 * The floor is at most that process's now, so this
			 * only moves our clock forward to a time that has
			 * already passed. */
			floor_tat = atomic_load(&t->shm->evicted_tat_max);
			if (floor_tat > now)
				now = floor_tat;
			new_tat = now + g.t;
			if (new_tat > TAT_MASK) {
				errno = EOVERFLOW;
				return -1;
			}
		} else {
			atomic_fetch_add_explicit(&sh->rejected[class_id], 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&sh->table_full[class_id], 1,
			                          memory_order_relaxed);
			result_refused(&g, RL_TABLE_FULL, soonest - now, soonest - now, out);
			return 0;
		}

		expect = view[used];
		if (!atomic_compare_exchange_strong(slot_at(t, &pr, used), &expect,
		                                    w_make(used, pr.fp, new_tat))) {
			atomic_fetch_add_explicit(&sh->cas_retries, 1, memory_order_relaxed);
			continue;
		}
		if (mine < 0 && tat != 0)
			atomic_fetch_add_explicit(&sh->evictions, 1, memory_order_relaxed);

		if (has_twin(t, &pr, used)) {
			/* Counted but refused: the other entry may hold
			 * admissions this one did not see. */
			read_window(t, &pr, view);
			fold(t, &pr, view);
			atomic_fetch_add_explicit(&sh->rejected[class_id], 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&sh->conflicts[class_id], 1,
			                          memory_order_relaxed);
			result_refused(&g, RL_CONFLICT, new_tat - now, 0, out);
			return 0;
		}
		result_admitted(&g, now, new_tat, out);
		return 0;
	}

	atomic_fetch_add_explicit(&sh->rejected[class_id], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->conflicts[class_id], 1, memory_order_relaxed);
	result_refused(&g, RL_CONFLICT, 0, 0, out);
	return 0;
}

int rl_reset_key(struct rl_table *t, uint8_t class_id, const void *key, size_t keylen)
{
	struct probe pr;
	int cleared = 0;

	if (t == NULL || class_id >= RL_MAX_CLASSES || (key == NULL && keylen > 0)) {
		errno = EINVAL;
		return -1;
	}
	pr = probe_of(t, class_id, key, keylen);
	for (unsigned k = 0; k < WINDOW; k++) {
		_Atomic uint64_t *slot = slot_at(t, &pr, k);
		uint64_t w = atomic_load(slot);

		/* A failed CAS reloads w: retry while it is still the key's. */
		while (w_is_key(w, k, &pr)) {
			if (atomic_compare_exchange_weak(slot, &w, 0)) {
				cleared++;
				break;
			}
		}
	}
	return cleared;
}

void rl_reset_all(struct rl_table *t)
{
	for (uint32_t i = 0; i < t->nslots; i++)
		atomic_store(&t->slots[i], 0);
}

void rl_stats(struct rl_table *t, uint64_t now_ns, struct rl_stats *out)
{
	uint64_t now = now_ns / NS_PER_MS;

	memset(out, 0, sizeof(*out));
	out->slots = t->nslots;
	out->creator_pid = t->shm->creator_pid;
	out->created_ns = t->shm->created_ns;
	for (uint32_t i = 0; i < t->nslots; i++)
		if (w_tat(atomic_load_explicit(&t->slots[i], memory_order_relaxed)) > now)
			out->in_use++;
	for (unsigned s = 0; s < SHARDS; s++) {
		struct rl_shard *sh = &t->shm->shards[s];

		out->evictions += atomic_load_explicit(&sh->evictions, memory_order_relaxed);
		out->folds += atomic_load_explicit(&sh->folds, memory_order_relaxed);
		out->cas_retries += atomic_load_explicit(&sh->cas_retries, memory_order_relaxed);
		for (unsigned c = 0; c < RL_MAX_CLASSES; c++) {
			struct rl_class_stats *cs = &out->classes[c];

			cs->checks += atomic_load_explicit(&sh->checks[c], memory_order_relaxed);
			cs->rejected +=
			    atomic_load_explicit(&sh->rejected[c], memory_order_relaxed);
			cs->table_full +=
			    atomic_load_explicit(&sh->table_full[c], memory_order_relaxed);
			cs->conflicts +=
			    atomic_load_explicit(&sh->conflicts[c], memory_order_relaxed);
		}
	}
}

int rl_verify(struct rl_table *t, uint64_t now_ns, char *err, size_t errlen)
{
	uint64_t now = now_ns / NS_PER_MS;

	if (seg_verify(&t->seg, err, errlen) != 0)
		return -1;
	for (uint32_t i = 0; i < t->nslots; i++) {
		uint64_t w = atomic_load_explicit(&t->slots[i], memory_order_relaxed);

		if (w != 0 && w_tat(w) == 0) {
			util_set_err(err, errlen, "slot %u: key bits without a time (0x%016llx)", i,
			             (unsigned long long)w);
			return -1;
		}
		if (w_tat(w) > now + MAX_AHEAD_MS) {
			util_set_err(err, errlen, "slot %u: time %llu ms is beyond now + %llu ms",
			             i, (unsigned long long)w_tat(w),
			             (unsigned long long)MAX_AHEAD_MS);
			return -1;
		}
	}
	return 0;
}

/* ---- the segment's contents (its life is segment.c's) ---- */

/* The part of a new header that is ours, before segment.c publishes it. */
static int init_header(void *header, const char *name, char *err, size_t errlen)
{
	struct rl_shm *shm = header;

	if (RAND_bytes(shm->hash_key, sizeof(shm->hash_key)) != 1) {
		util_set_err(err, errlen, "cannot get random bytes for shared memory %s", name);
		return -1;
	}
	shm->creator_pid = (int32_t)getpid();
	shm->created_ns = util_now_ns();
	return 0;
}

static const struct seg_layout layout = {
    .version = RL_LAYOUT_VERSION,
    .header_size = HEADER_SIZE,
    .extension_offset = offsetof(struct rl_shm, extension),
    .record_size = sizeof(uint64_t),
    .min_records = RL_MIN_SLOTS,
    .max_records = RL_MAX_SLOTS,
    .init = init_header,
};

static int open_table(const char *name, uint32_t slots, bool may_create, struct rl_table **out,
                      char *err, size_t errlen)
{
	struct rl_table *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL) {
		util_set_err(err, errlen, "out of memory");
		return -1;
	}
	if (seg_open(name, &layout, slots, may_create, &t->seg, err, errlen) != 0) {
		free(t);
		return -1;
	}
	t->shm = t->seg.map;
	t->nslots = (uint32_t)t->seg.nrecords;
	t->nbuckets = t->nslots / BUCKET;
	t->slots = seg_records(&t->seg);
	t->shard = &t->shm->shards[(unsigned)getpid() % SHARDS];
	for (unsigned c = 0; c < RL_MAX_CLASSES; c++) {
		uint8_t label[2] = {'c', (uint8_t)c};

		/* Two PRF outputs under the segment key make the class key. */
		store_le64(t->class_key[c], siphash24(t->shm->hash_key, label, 2));
		label[0] = 'C';
		store_le64(t->class_key[c] + 8, siphash24(t->shm->hash_key, label, 2));
	}
	*out = t;
	return 0;
}

int rl_open(const char *name, uint32_t slots, struct rl_table **out, char *err, size_t errlen)
{
	return open_table(name, slots, true, out, err, errlen);
}

int rl_attach(const char *name, struct rl_table **out, char *err, size_t errlen)
{
	return open_table(name, 0, false, out, err, errlen);
}

void rl_close(struct rl_table *t)
{
	if (t == NULL)
		return;
	seg_close(&t->seg);
	free(t);
}

const struct segment *rl_segment(const struct rl_table *t)
{
	return &t->seg;
}
