/*
 * segment: the life of the POSIX shared-memory segment the workers share
 * (the rate-limit table, and the metrics counters in its extension area):
 * create, attach, verify, unlink.  What lies inside is its owner's
 * (ratelimit.c); this module knows only the stable prefix every layout
 * starts with, the owner's header size and record count, and where the
 * extension area is.
 *
 * Creation: the first process to call seg_open() creates the segment
 * (O_EXCL), sets its mode to 0600, sizes it, fills the prefix, lets the
 * owner fill the rest of the header and then publishes a magic number; the
 * others wait up to 2 s for the magic and check layout version, record
 * count and size, and refuse a segment another user owns or can read.
 *
 * Lifetime: nobody removes the segment automatically.  It must outlive any
 * worker (mod_fcgid and lighttpd recycle workers) and it vanishes at reboot
 * (/dev/shm is tmpfs).  Operators remove it with seg_unlink() (chat-admin
 * ratelimit unlink) after a layout change or to forget every limit at
 * once; the dev and test scripts remove theirs.  Workers still running keep
 * the old mapping: restart them all after an unlink, or limits are split
 * across two segments.
 *
 * The error texts speak of the rate-limit table, RATE_LIMIT_SHM and
 * chat-admin: that is the one segment, and what an operator knows it by.
 */
#ifndef CHAT_SEGMENT_H
#define CHAT_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the error text of seg_open() and friends. */
#define SEG_ERR_LEN 512

/* Zero-initialised memory in the header, 64-byte aligned, that the owner
 * never touches: the metrics module lays its shared counters out there
 * (its own layout check included), so one segment, one creation protocol
 * and one lifetime serve both. */
#define SEG_EXTENSION_BYTES 32768u

/* The first 32 bytes of every layout version, so any build can read them
 * and say precisely what it found. */
struct seg_prefix {
	_Atomic uint64_t magic; /* 0 until the creator publishes the header */
	uint32_t version;
	uint32_t header_size;
	uint64_t nrecords;
	uint64_t total_size;
};

_Static_assert(offsetof(struct seg_prefix, magic) == 0, "stable prefix");
_Static_assert(offsetof(struct seg_prefix, version) == 8, "stable prefix");
_Static_assert(offsetof(struct seg_prefix, header_size) == 12, "stable prefix");
_Static_assert(offsetof(struct seg_prefix, nrecords) == 16, "stable prefix");
_Static_assert(offsetof(struct seg_prefix, total_size) == 24, "stable prefix");
_Static_assert(sizeof(struct seg_prefix) == 32, "stable prefix");

/* What the owner's layout looks like: [header][record 0]...[record n-1]. */
struct seg_layout {
	uint32_t version;        /* a mismatch is an error */
	size_t header_size;      /* a multiple of 4096, starting with struct seg_prefix */
	size_t extension_offset; /* of the SEG_EXTENSION_BYTES area, inside the header */
	size_t record_size;
	uint64_t min_records, max_records;
	/* Fill the owner's part of a new, zeroed header before it is published;
	 * 0, or -1 with err set (the segment is then removed). */
	int (*init)(void *header, const char *name, char *err, size_t errlen);
};

/* One process's mapping. */
struct segment {
	void *map; /* the header; records follow at layout->header_size */
	size_t size;
	uint64_t nrecords;
	const struct seg_layout *layout;
};

/*
 * Map the segment called `name` ("/chat-fcgi": one leading slash, no other),
 * creating it with `nrecords` records if may_create and it does not exist.
 * Without may_create nrecords is ignored and taken from the segment.
 * Returns 0 with *out filled, or -1 with a one-line reason in err (which
 * names the segment and, for a mismatched or abandoned one, how to remove
 * it).
 */
int seg_open(const char *name, const struct seg_layout *layout, uint64_t nrecords, bool may_create,
             struct segment *out, char *err, size_t errlen);

/* Unmap; the segment stays.  A segment never opened (map NULL) is fine. */
void seg_close(struct segment *s);

void *seg_records(const struct segment *s);
void *seg_extension(const struct segment *s);

/* Is the prefix still what seg_open() found?  0, or -1 with err set. */
int seg_verify(const struct segment *s, char *err, size_t errlen);

/* Remove the segment's name (shm_unlink).  0, or -1 with err set. */
int seg_unlink(const char *name, char *err, size_t errlen);

#endif
