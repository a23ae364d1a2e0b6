/*
 * stderr_capture: point stderr at a temporary file for one test, read back
 * what was written.  Shared by the suites of modules that log (log, audit).
 */
#ifndef CHAT_TEST_STDERR_CAPTURE_H
#define CHAT_TEST_STDERR_CAPTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char capture_path[64];
static int capture_saved = -1;

static void capture(void)
{
	int fd;

	snprintf(capture_path, sizeof capture_path, "/tmp/chat-test-log-XXXXXX");
	fd = mkstemp(capture_path);
	ck_assert_int_ge(fd, 0);
	capture_saved = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

static void release(void)
{
	if (capture_saved >= 0) {
		dup2(capture_saved, STDERR_FILENO);
		close(capture_saved);
		capture_saved = -1;
	}
	unlink(capture_path);
}

/* The captured text, malloc'd. */
static char *captured(void)
{
	FILE *f = fopen(capture_path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

#endif
