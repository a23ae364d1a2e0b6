/*
 * segment: create, attach, verify and unlink the shared segment.  See
 * segment.h; the layout of what lies inside is ratelimit.c's.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* "fcgi-rl1" as little-endian bytes. */
#define SEG_MAGIC UINT64_C(0x316c722d69676366)

#define NS_PER_MS UINT64_C(1000000)

/* How long seg_open() waits for another process to publish the segment. */
#define OPEN_WAIT_MS 2000

static bool valid_name(const char *name)
{
	size_t len;

	if (name == NULL || name[0] != '/')
		return false;
	len = strlen(name);
	return len >= 2 && len <= NAME_MAX && strchr(name + 1, '/') == NULL;
}

static uint64_t total_size_for(const struct seg_layout *l, uint64_t nrecords)
{
	return l->header_size + nrecords * l->record_size;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static const char *shm_path(const char *name)
{
	return name + 1; /* /dev/shm/<name without its slash> on Linux */
}

static int create_segment(int fd, const char *name, const struct seg_layout *l, uint64_t nrecords,
                          struct segment *out, char *err, size_t errlen)
{
	uint64_t size = total_size_for(l, nrecords);
	struct seg_prefix *shm;

	/* The mode regardless of umask: every worker of our uid must open it
	 * read-write, nobody else may read the hash key. */
	if (fchmod(fd, 0600) < 0) {
		util_set_err(err, errlen, "cannot set the mode of shared memory %s: %s", name,
		             strerror(errno));
		return -1;
	}
	/* tmpfs hands out zero pages: every record starts as zeros. */
	if (ftruncate(fd, (off_t)size) < 0) {
		util_set_err(err, errlen, "cannot size shared memory %s to %llu bytes: %s", name,
		             (unsigned long long)size, strerror(errno));
		return -1;
	}
	shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED) {
		util_set_err(err, errlen, "cannot map shared memory %s: %s", name, strerror(errno));
		return -1;
	}
	shm->version = l->version;
	shm->header_size = (uint32_t)l->header_size;
	shm->nrecords = nrecords;
	shm->total_size = size;
	if (l->init(shm, name, err, errlen) != 0) {
		munmap(shm, size);
		return -1;
	}
	/* Release: whoever reads the magic also reads the header above. */
	atomic_store_explicit(&shm->magic, SEG_MAGIC, memory_order_release);

	*out = (struct segment){.map = shm, .size = size, .nrecords = nrecords, .layout = l};
	return 0;
}

/*
 * Map a segment another process created, waiting until the deadline for it
 * to be sized and published.  want 0 accepts any record count.
 */
static int attach_segment(int fd, const char *name, const struct seg_layout *l, uint64_t want,
                          uint64_t deadline_ns, struct segment *out, char *err, size_t errlen)
{
	struct stat st;
	struct seg_prefix *pre = MAP_FAILED;
	size_t pre_len = 0;
	void *map;
	uint64_t magic = 0, nslots, total;
	uint32_t version, header_size;
	int rc = -1;

	if (fstat(fd, &st) < 0) {
		util_set_err(err, errlen, "cannot stat shared memory %s: %s", name,
		             strerror(errno));
		return -1;
	}
	/* The hash key inside must stay secret and the table must be ours:
	 * refuse a segment another user could have planted or can write. */
	if (st.st_uid != geteuid() && geteuid() != 0) {
		util_set_err(err, errlen,
		             "shared memory %s belongs to uid %u, not to us (uid %u): remove it "
		             "with rm /dev/shm/%s",
		             name, (unsigned)st.st_uid, (unsigned)geteuid(), shm_path(name));
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		util_set_err(err, errlen,
		             "shared memory %s has mode 0%o, other users may read it: remove it "
		             "with rm /dev/shm/%s",
		             name, (unsigned)(st.st_mode & 0777), shm_path(name));
		return -1;
	}

	/* The creator sizes the segment once, then fills and publishes the
	 * header; wait for both, up to the deadline. */
	for (;;) {
		if (pre == MAP_FAILED && st.st_size >= (off_t)sizeof(struct seg_prefix)) {
			pre_len = (size_t)st.st_size < l->header_size ? (size_t)st.st_size
			                                              : l->header_size;
			pre = mmap(NULL, pre_len, PROT_READ, MAP_SHARED, fd, 0);
			if (pre == MAP_FAILED) {
				util_set_err(err, errlen, "cannot map shared memory %s: %s", name,
				             strerror(errno));
				return -1;
			}
		}
		if (pre != MAP_FAILED) {
			magic = atomic_load_explicit(&pre->magic, memory_order_acquire);
			if (magic != 0)
				break;
		}
		if (util_now_ns() >= deadline_ns) {
			util_set_err(err, errlen,
			             "shared memory %s exists but was never initialised (its "
			             "creator died during start-up?): remove it with chat-admin "
			             "ratelimit unlink or rm /dev/shm/%s",
			             name, shm_path(name));
			goto out;
		}
		sleep_ms(1);
		if (pre == MAP_FAILED && fstat(fd, &st) < 0) {
			util_set_err(err, errlen, "cannot stat shared memory %s: %s", name,
			             strerror(errno));
			return -1;
		}
	}

	if (magic != SEG_MAGIC) {
		util_set_err(err, errlen,
		             "shared memory %s is not a chat-fcgi rate-limit table: remove it with "
		             "rm /dev/shm/%s or choose another RATE_LIMIT_SHM",
		             name, shm_path(name));
		goto out;
	}
	version = pre->version;
	header_size = pre->header_size;
	nslots = pre->nrecords;
	total = pre->total_size;
	if (version != l->version || (want != 0 && nslots != want)) {
		util_set_err(err, errlen,
		             "shared memory %s has layout version %u / %llu slots, this build "
		             "expects version %u / %llu slots: remove it with chat-admin ratelimit "
		             "unlink or rm /dev/shm/%s (every limit restarts from zero), then "
		             "restart all workers",
		             name, version, (unsigned long long)nslots, l->version,
		             (unsigned long long)(want != 0 ? want : nslots), shm_path(name));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		util_set_err(err, errlen, "cannot stat shared memory %s: %s", name,
		             strerror(errno));
		goto out;
	}
	if (header_size != l->header_size || nslots < l->min_records || nslots > l->max_records ||
	    total != total_size_for(l, nslots) || (uint64_t)st.st_size != total) {
		util_set_err(err, errlen,
		             "shared memory %s is inconsistent (header %u bytes, %llu slots, "
		             "%llu bytes recorded, %llu bytes on disk): remove it with chat-admin "
		             "ratelimit unlink or rm /dev/shm/%s",
		             name, header_size, (unsigned long long)nslots,
		             (unsigned long long)total, (unsigned long long)st.st_size,
		             shm_path(name));
		goto out;
	}
	map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		util_set_err(err, errlen, "cannot map shared memory %s: %s", name, strerror(errno));
		goto out;
	}
	*out = (struct segment){.map = map, .size = total, .nrecords = nslots, .layout = l};
	rc = 0;
out:
	if (pre != MAP_FAILED)
		munmap(pre, pre_len);
	return rc;
}

int seg_open(const char *name, const struct seg_layout *l, uint64_t slots, bool may_create,
             struct segment *out, char *err, size_t errlen)
{
	uint64_t deadline = util_now_ns() + OPEN_WAIT_MS * NS_PER_MS;

	*out = (struct segment){0};
	if (!valid_name(name)) {
		util_set_err(err, errlen,
		             "shared memory name \"%s\" must be one leading slash and up to %d "
		             "more characters, none of them a slash",
		             name != NULL ? name : "(null)", NAME_MAX - 1);
		return -1;
	}
	if (may_create && (slots < l->min_records || slots > l->max_records)) {
		util_set_err(err, errlen, "rate-limit slot count %llu is outside %llu..%llu",
		             (unsigned long long)slots, (unsigned long long)l->min_records,
		             (unsigned long long)l->max_records);
		return -1;
	}

	for (;;) {
		int fd, rc;

		if (may_create) {
			/* O_EXCL: exactly one process becomes the creator. */
			fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
			if (fd >= 0) {
				rc = create_segment(fd, name, l, slots, out, err, errlen);
				close(fd);
				/* Nobody can have used an unpublished segment;
				 * waiters time out with a clear message. */
				if (rc < 0)
					shm_unlink(name);
				return rc;
			}
			if (errno != EEXIST) {
				util_set_err(err, errlen, "cannot create shared memory %s: %s",
				             name, strerror(errno));
				return -1;
			}
		}
		fd = shm_open(name, O_RDWR, 0);
		if (fd < 0) {
			/* Removed between our two shm_open calls (a failed
			 * creator, an operator): try to create it again. */
			if (errno == ENOENT && may_create && util_now_ns() < deadline)
				continue;
			if (errno == ENOENT)
				util_set_err(err, errlen,
				             "shared memory %s does not exist (no worker has "
				             "started yet?)",
				             name);
			else
				util_set_err(err, errlen, "cannot open shared memory %s: %s", name,
				             strerror(errno));
			return -1;
		}
		rc =
		    attach_segment(fd, name, l, may_create ? slots : 0, deadline, out, err, errlen);
		close(fd);
		return rc;
	}
}

int seg_unlink(const char *name, char *err, size_t errlen)
{
	if (!valid_name(name)) {
		util_set_err(err, errlen, "shared memory name \"%s\" is not valid",
		             name != NULL ? name : "(null)");
		return -1;
	}
	if (shm_unlink(name) < 0) {
		util_set_err(err, errlen, "cannot remove shared memory %s: %s", name,
		             strerror(errno));
		return -1;
	}
	return 0;
}

void seg_close(struct segment *s)
{
	if (s->map != NULL)
		munmap(s->map, s->size);
	*s = (struct segment){0};
}

void *seg_records(const struct segment *s)
{
	return (char *)s->map + s->layout->header_size;
}

void *seg_extension(const struct segment *s)
{
	return (char *)s->map + s->layout->extension_offset;
}

int seg_verify(const struct segment *s, char *err, size_t errlen)
{
	const struct seg_prefix *p = s->map;

	if (atomic_load(&p->magic) != SEG_MAGIC || p->version != s->layout->version ||
	    p->nrecords != s->nrecords || p->header_size != s->layout->header_size ||
	    p->total_size != s->size) {
		util_set_err(err, errlen, "rate-limit header changed under us");
		return -1;
	}
	return 0;
}
