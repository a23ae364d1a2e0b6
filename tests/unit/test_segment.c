/*
 * Unit tests for src/segment.c with a small layout of its own: creation and
 * attachment, the checks an attaching process makes (record count, layout
 * version, mode, a creator that never published), the extension area shared
 * between mappings, seg_verify, and unlink.  The rate-limit table's own use
 * of the segment (racing creators, its error texts) is in test_ratelimit.c.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"

struct header {
	struct seg_prefix prefix;
	uint64_t stamp; /* written by init, before publication */
	_Alignas(64) unsigned char extension[SEG_EXTENSION_BYTES];
};

#define HEADER_SIZE ((sizeof(struct header) + 4095u) & ~(size_t)4095u)

static int inits;

static int init_ok(void *header, const char *name, char *err, size_t errlen)
{
	(void)name;
	(void)err;
	(void)errlen;
	((struct header *)header)->stamp = 0x5e5e;
	inits++;
	return 0;
}

static int init_fails(void *header, const char *name, char *err, size_t errlen)
{
	(void)header;
	snprintf(err, errlen, "no randomness for %s", name);
	return -1;
}

static const struct seg_layout layout = {
    .version = 7,
    .header_size = HEADER_SIZE,
    .extension_offset = offsetof(struct header, extension),
    .record_size = 8,
    .min_records = 16,
    .max_records = 4096,
    .init = init_ok,
};

static char name[64];

static void setup(void)
{
	snprintf(name, sizeof name, "/chat-test-segment-%d", (int)getpid());
	shm_unlink(name);
	inits = 0;
}

static void teardown(void)
{
	shm_unlink(name);
}

START_TEST(create_then_attach)
{
	struct segment a, b;
	char err[SEG_ERR_LEN];
	uint64_t *ra, *rb;

	ck_assert_int_eq(seg_open(name, &layout, 32, true, &a, err, sizeof err), 0);
	ck_assert_int_eq(inits, 1);
	ck_assert_uint_eq(a.nrecords, 32);
	ck_assert_uint_eq(a.size, HEADER_SIZE + 32 * 8);
	ck_assert_uint_eq(((struct header *)a.map)->stamp, 0x5e5e);
	/* A second opener attaches: init runs once, the records are shared. */
	ck_assert_int_eq(seg_open(name, &layout, 32, true, &b, err, sizeof err), 0);
	ck_assert_int_eq(inits, 1);
	ra = seg_records(&a);
	rb = seg_records(&b);
	ra[31] = 42;
	ck_assert_uint_eq(rb[31], 42);
	/* The extension: zeroed, shared, inside the header. */
	ck_assert_uint_eq(((unsigned char *)seg_extension(&b))[0], 0);
	((unsigned char *)seg_extension(&a))[SEG_EXTENSION_BYTES - 1] = 9;
	ck_assert_uint_eq(((unsigned char *)seg_extension(&b))[SEG_EXTENSION_BYTES - 1], 9);
	ck_assert_uint_eq((uintptr_t)seg_extension(&a) % 64, 0);
	ck_assert_int_eq(seg_verify(&b, err, sizeof err), 0);
	seg_close(&b);
	ck_assert_ptr_null(b.map);
	seg_close(&b); /* twice is fine */
	/* Attach without creating takes the record count from the segment. */
	ck_assert_int_eq(seg_open(name, &layout, 0, false, &b, err, sizeof err), 0);
	ck_assert_uint_eq(b.nrecords, 32);
	seg_close(&b);
	seg_close(&a);
}
END_TEST

START_TEST(mismatches_are_refused)
{
	struct segment a, b;
	struct seg_layout other = layout;
	char err[SEG_ERR_LEN];

	ck_assert_int_eq(seg_open(name, &layout, 32, true, &a, err, sizeof err), 0);
	ck_assert_int_eq(seg_open(name, &layout, 64, true, &b, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "64 slots"));
	other.version = 8;
	ck_assert_int_eq(seg_open(name, &other, 32, true, &b, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "layout version 7"));
	/* A prefix that changed under a mapping is reported. */
	((struct seg_prefix *)a.map)->version = 8;
	ck_assert_int_eq(seg_verify(&a, err, sizeof err), -1);
	((struct seg_prefix *)a.map)->version = 7;
	ck_assert_int_eq(seg_verify(&a, err, sizeof err), 0);
	seg_close(&a);
	ck_assert_int_eq(seg_open(name, &layout, 8, true, &b, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "outside 16..4096"));
	ck_assert_int_eq(seg_open("no-slash", &layout, 32, true, &b, err, sizeof err), -1);
	ck_assert_int_eq(seg_open("/a/b", &layout, 32, true, &b, err, sizeof err), -1);
}
END_TEST

START_TEST(unsafe_or_unpublished_segments_are_refused)
{
	struct segment s;
	struct seg_layout failing = layout;
	char err[SEG_ERR_LEN];
	int fd;

	/* Readable by others: the owner's secrets would not be. */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(HEADER_SIZE + 32 * 8)), 0);
	ck_assert_int_eq(seg_open(name, &layout, 32, true, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "other users may read it"));
	/* Sized but never published: given up after the wait. */
	ck_assert_int_eq(fchmod(fd, 0600), 0);
	close(fd);
	ck_assert_int_eq(seg_open(name, &layout, 32, true, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "never initialised"));
	ck_assert_int_eq(seg_unlink(name, err, sizeof err), 0);
	/* Published by something else: another magic number. */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(HEADER_SIZE + 32 * 8)), 0);
	{
		struct seg_prefix foreign = {.magic = 0x4141414141414141ull};
		ck_assert_int_eq(pwrite(fd, &foreign, sizeof foreign, 0), (ssize_t)sizeof foreign);
	}
	close(fd);
	ck_assert_int_eq(seg_open(name, &layout, 32, true, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "is not a chat-fcgi rate-limit table"));
	ck_assert_int_eq(seg_unlink(name, err, sizeof err), 0);
	/* A creator whose init fails leaves no segment behind. */
	failing.init = init_fails;
	ck_assert_int_eq(seg_open(name, &failing, 32, true, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "no randomness"));
	ck_assert_int_eq(seg_open(name, &layout, 0, false, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not exist"));
}
END_TEST

START_TEST(unlink_removes_the_name)
{
	struct segment s;
	char err[SEG_ERR_LEN];

	ck_assert_int_eq(seg_open(name, &layout, 16, true, &s, err, sizeof err), 0);
	seg_close(&s);
	ck_assert_int_eq(seg_unlink(name, err, sizeof err), 0);
	ck_assert_int_eq(seg_unlink(name, err, sizeof err), -1);
	ck_assert_int_eq(seg_unlink("bad", err, sizeof err), -1);
	ck_assert_int_eq(seg_open(name, &layout, 0, false, &s, err, sizeof err), -1);
}
END_TEST

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc = tcase_create("life");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, create_then_attach);
	tcase_add_test(tc, mismatches_are_refused);
	tcase_add_test(tc, unsafe_or_unpublished_segments_are_refused);
	tcase_add_test(tc, unlink_removes_the_name);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(segment_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
