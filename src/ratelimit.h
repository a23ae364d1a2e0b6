/*
 * ratelimit: per-key request limits shared by every worker through one POSIX
 * shared-memory segment (SPEC §3; the design and its proofs are in
 * docs/RATELIMIT.md).
 *
 * Algorithm: GCRA (generic cell rate algorithm) on a millisecond clock.  For a
 * policy "limit per period" the emission interval is T = ceil(period / limit)
 * milliseconds and the burst tolerance is tau = (limit - 1) * T.  Each key
 * keeps one number, its theoretical arrival time TAT.  A request at time t
 * (t = floor(now_ns / 10^6)) is admitted iff TAT <= t + tau, and then
 * TAT = max(TAT, t) + T.  A rejected request changes nothing, so hammering a
 * limited key does not push its reset further away.
 *
 * Guarantee (exact, proved in docs/RATELIMIT.md, checked by brute force in
 * tests/unit/test_ratelimit.c).  If n requests of one key and class are
 * admitted at millisecond times t_1 <= ... <= t_n, then
 *
 *         n <= limit + floor((t_n - t_1) / T),
 *
 * and the bound is reached by a client that sends `limit` at once and then
 * one every T.  Consequences:
 *   - a burst (all in one millisecond) is at most `limit`;
 *   - the sustained rate is at most one per T, i.e. at most limit per period;
 *   - any window of length P = period on the millisecond grid holds at most
 *     limit + ceil(P / T) - 1 <= 2 * limit - 1 admissions;
 *   - any window of real time of length P (open or closed) holds at most
 *     limit + floor(P / T) <= 2 * limit admissions (the extra one comes from
 *     truncating nanoseconds to milliseconds).
 * Equality in the last two needs T to divide P; otherwise T was rounded up
 * and the bound is lower.  T >= 1 ms, so a key never sustains more than 1000
 * requests per second whatever its policy says (the burst is still `limit`).
 *
 * Sharing: the guarantee holds across every process that maps the segment:
 * K workers never admit more than one worker would.  A key is stored as its
 * bucket and 23 more bits of a keyed 64-bit SipHash; a new key matches one of
 * the up to 16 entries it looks at with probability below 16 / 2^23 (2e-6,
 * see docs), and then the two share one TAT: both are limited together,
 * never admitted more.  When all 16 slots a new key may use hold keys still
 * being limited, it is refused (RL_TABLE_FULL, fail closed) rather than a
 * limited key forgotten.
 *
 * Shared memory: the table lives in the segment of segment.h, which
 * creates it once, checks it on attach and outlives every worker; this
 * module lays out its header (hash key, counters) and its slots.  Every
 * change to a slot is one 64-bit compare-and-swap, so a process killed at
 * any instruction leaves nothing locked or half-written.
 *
 * Ownership: a struct rl_table is one process's handle on the segment (the
 * mapping and keys derived from the header); a worker opens it after fork and
 * keeps it in its worker context.  Any number of processes may operate on
 * the segment at once; one handle is not meant for several threads.
 */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "segment.h"

/* Bumped whenever the segment's layout changes; a mismatch is an error. */
#define RL_LAYOUT_VERSION 3u

/* Class ids 0 .. RL_MAX_CLASSES-1 (auth, chat, read, ...), each counted
 * separately; the same key in two classes is two independent limits. */
#define RL_MAX_CLASSES 8u

/* RATE_LIMIT_SLOTS bounds: 8 bytes a slot. */
#define RL_MIN_SLOTS 16u
#define RL_MAX_SLOTS (1u << 30)

/* Longest period a policy may have (the slot's clock has 40 bits of ms). */
#define RL_MAX_PERIOD_S (366u * 86400u)

/* Room for the error text of rl_open() and rl_attach(). */
#define RL_ERR_LEN SEG_ERR_LEN

struct rl_table;

enum rl_outcome {
	RL_ADMITTED,   /* allowed and counted */
	RL_OFF,        /* the policy's limit is 0: allowed, nothing counted, no headers */
	RL_LIMITED,    /* over the limit */
	RL_TABLE_FULL, /* every slot the key may use holds a key still limited: fail closed */
	RL_CONFLICT,   /* a rare race between processes, resolved by refusing: fail closed */
};

struct rl_result {
	bool allowed; /* RL_ADMITTED or RL_OFF */
	enum rl_outcome outcome;
	uint32_t limit;         /* the policy's limit (RateLimit-Limit) */
	uint32_t remaining;     /* admissions still possible right now (RateLimit-Remaining) */
	uint32_t reset_s;       /* seconds until fully replenished, rounded up (RateLimit-Reset) */
	uint32_t retry_after_s; /* when refused: seconds until one is admitted, >= 1; else 0 */
};

struct rl_class_stats {
	uint64_t checks;     /* rl_check calls with a policy that is on */
	uint64_t rejected;   /* all refusals: limited + table_full + conflicts */
	uint64_t table_full; /* refused because the key's slots were all in use */
	uint64_t conflicts;  /* refused to settle a race (see RL_CONFLICT) */
};

struct rl_stats {
	uint64_t slots;
	uint64_t in_use;      /* slots holding a key not yet fully replenished */
	uint64_t evictions;   /* replenished entries replaced by another key */
	uint64_t folds;       /* duplicate entries of one key merged (races) */
	uint64_t cas_retries; /* compare-and-swap lost to another process */
	int32_t creator_pid;  /* the process that created the segment */
	uint64_t created_ns;  /* its CLOCK_MONOTONIC time then */
	struct rl_class_stats classes[RL_MAX_CLASSES];
};

/*
 * Map the table called `name` ("/chat-fcgi": one leading slash, no other),
 * creating it with `slots` slots if it does not exist.  Returns 0 with *out
 * set, or -1 with a one-line reason in err (which names the segment and, for
 * a mismatched or abandoned one, how to remove it).
 */
int rl_open(const char *name, uint32_t slots, struct rl_table **out, char *err, size_t errlen);

/* Like rl_open() but never creates, and takes the slot count from the
 * segment: for chat-admin, which must not create a segment the workers
 * would then have to match. */
int rl_attach(const char *name, struct rl_table **out, char *err, size_t errlen);

/* Unmap and free the handle; the segment stays (seg_unlink removes it).
 * NULL is fine. */
void rl_close(struct rl_table *t);

/* The segment the table lives in: metrics keeps its counters in its
 * extension area (seg_extension). */
const struct segment *rl_segment(const struct rl_table *t);

/*
 * Count one request of `key` (any bytes) in class class_id under `policy` at
 * now_ns (util_now_ns(), or a fake clock in tests).  Returns 0 with *out
 * filled, or -1 with errno EINVAL (class id, period 0 or above
 * RL_MAX_PERIOD_S) or EOVERFLOW (clock beyond 2^40 ms); a caller should
 * then refuse the request.
 */
int rl_check(struct rl_table *t, const struct rate_policy *policy, uint8_t class_id,
             const void *key, size_t keylen, uint64_t now_ns, struct rl_result *out);

/* Forget one key (chat-admin ratelimit reset): returns how many entries
 * were cleared (0 or 1; more only after a race), or -1 (EINVAL). */
int rl_reset_key(struct rl_table *t, uint8_t class_id, const void *key, size_t keylen);

/* Counters summed over all processes, and occupancy at now_ns. O(slots). */
void rl_stats(struct rl_table *t, uint64_t now_ns, struct rl_stats *out);

#endif
