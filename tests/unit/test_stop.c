/*
 * stop: a worker leaves on SIGTERM or SIGINT, however they come (during
 * start-up, while idle), after serving what is already queued (for a
 * bounded time), and when its parent dies; inside the seccomp filter, as
 * a worker runs.  Each case runs in a child of its own: stop_init() and
 * the filter are for good.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "stop.h"
#include "util.h"

/* Exit statuses of the children. */
enum { OK = 0, WRONG_RESULT = 10, WRONG_REASON, TOO_SLOW, SETUP_FAILED };

static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/* As a worker does: the filter after stop_init(), where this build and
 * valgrind allow it (sandbox.h).  Then stop_wait() runs confined. */
static int confine(void)
{
	char err[160];

	if (sandbox_unavailable() || under_valgrind())
		return 0;
	return sandbox_enter(err, sizeof err);
}

/* The system call itself: no atexit handlers, none of the sanitizers'
 * _exit hooks (which the filter would refuse). */
static void leave(int status)
{
	syscall(SYS_exit_group, status);
	_exit(status); /* not reached */
}

static int wait_child(pid_t pid, int seconds)
{
	int status;
	uint64_t until = util_now_ns() + (uint64_t)seconds * 1000000000u;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		ck_assert_int_eq(r, 0);
		if (util_now_ns() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("child %d still running after %d s", (int)pid, seconds);
		}
		usleep(10000);
	}
}

static void expect_exit(int status, int want, const char *what)
{
	ck_assert_msg(WIFEXITED(status), "%s: child killed by signal %d", what,
	              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	ck_assert_msg(WEXITSTATUS(status) == want, "%s: child exited %d, wanted %d", what,
	              WEXITSTATUS(status), want);
}

static int check_reason(const char *want)
{
	const char *got = stop_reason();

	return got && strcmp(got, want) == 0 ? OK : WRONG_REASON;
}

/* A child raises sig before its first wait, then confines itself: the
 * wait must say leave, with sig as the reason. */
static void expect_raised_signal_leaves(int sig, const char *name, const char *what)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (stop_init() != 0 || raise(sig) != 0 || confine() != 0)
			leave(SETUP_FAILED);
		if (stop_wait(p[0]) != STOP_WAIT_LEAVE)
			leave(WRONG_RESULT);
		leave(check_reason(name));
	}
	expect_exit(wait_child(pid, 5), OK, what);
	close(p[0]);
	close(p[1]);
}

/* A SIGTERM during start-up (before the first wait) neither kills the
 * worker nor gets lost: the first wait says leave. */
START_TEST(signal_during_start_up_is_kept)
{
	expect_raised_signal_leaves(SIGTERM, "SIGTERM", "SIGTERM before the first wait");
}
END_TEST

/* SIGUSR1, libfcgi's graceful stop, is one too. */
START_TEST(sigusr1_is_a_stop)
{
	expect_raised_signal_leaves(SIGUSR1, "SIGUSR1", "SIGUSR1");
}
END_TEST

/* Idle in the wait: SIGINT (Ctrl-C on the process group) ends it at once,
 * not at the next periodic check. */
START_TEST(signal_while_idle_ends_the_wait)
{
	int p[2], ready[2];
	pid_t pid;
	char c;
	uint64_t t0;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (stop_init() != 0 || confine() != 0)
			leave(SETUP_FAILED);
		if (write(ready[1], "r", 1) != 1)
			leave(SETUP_FAILED);
		if (stop_wait(p[0]) != STOP_WAIT_LEAVE)
			leave(WRONG_RESULT);
		leave(check_reason("SIGINT"));
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	usleep(100000); /* well inside the wait */
	t0 = util_now_ns();
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	expect_exit(wait_child(pid, 5), OK, "SIGINT while idle");
	ck_assert_msg(util_now_ns() - t0 < (uint64_t)STOP_CHECK_MS * 1000000u / 2,
	              "the wait ended %llu ms after the signal",
	              (unsigned long long)((util_now_ns() - t0) / 1000000u));
	close(p[0]);
	close(p[1]);
	close(ready[0]);
	close(ready[1]);
}
END_TEST

/* A connection already queued when the stop comes is still served; the
 * worker leaves when nothing more is queued. */
START_TEST(queued_work_is_served_after_stop)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;

		if (stop_init() != 0 || raise(SIGTERM) != 0 || confine() != 0)
			leave(SETUP_FAILED);
		if (stop_wait(p[0]) != STOP_WAIT_READY || read(p[0], &c, 1) != 1)
			leave(WRONG_RESULT);
		if (stop_wait(p[0]) != STOP_WAIT_LEAVE)
			leave(WRONG_RESULT);
		leave(OK);
	}
	expect_exit(wait_child(pid, 5), OK, "queued work after SIGTERM");
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ... but not for ever: with work always queued (a busy shared socket),
 * the worker leaves STOP_DRAIN_MS after the stop. */
START_TEST(draining_is_bounded)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1); /* never read: always readable */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t t0, ms;

		if (stop_init() != 0 || raise(SIGTERM) != 0 || confine() != 0)
			leave(SETUP_FAILED);
		t0 = util_now_ns();
		while (stop_wait(p[0]) == STOP_WAIT_READY)
			poll(NULL, 0, 10); /* as if serving: sleeping is not allowed */
		ms = (util_now_ns() - t0) / 1000000u;
		leave(ms >= STOP_DRAIN_MS - 50 && ms < STOP_DRAIN_MS + 1000 ? OK : TOO_SLOW);
	}
	expect_exit(wait_child(pid, 10), OK, "draining after SIGTERM");
	close(p[0]);
	close(p[1]);
}
END_TEST

/* The web server dies (SIGKILL: no chance to stop its workers): the
 * orphaned worker leaves by itself.  This test process becomes a
 * subreaper so that it gets the orphan to wait for, as init would. */
START_TEST(orphan_leaves_by_itself)
{
	int p[2], ready[2];
	pid_t server, worker;
	char c;
	uint64_t t0;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(ready), 0);
	server = fork();
	ck_assert_int_ge(server, 0);
	if (server == 0) {
		pid_t w = fork();

		if (w == 0) {
			if (stop_init() != 0 || confine() != 0)
				leave(SETUP_FAILED);
			if (write(ready[1], "r", 1) != 1)
				leave(SETUP_FAILED);
			if (stop_wait(p[0]) != STOP_WAIT_LEAVE)
				leave(WRONG_RESULT);
			leave(check_reason("SIGTERM, parent gone"));
		}
		pause(); /* until killed */
		leave(SETUP_FAILED);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	/* The worker's pid: the only child of the server. */
	{
		char path[64];
		FILE *f;

		snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)server, (int)server);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fscanf(f, "%d", &worker), 1);
		fclose(f);
	}
	t0 = util_now_ns();
	ck_assert_int_eq(kill(server, SIGKILL), 0);
	ck_assert_int_eq(waitpid(server, NULL, 0), server);
	expect_exit(wait_child(worker, 5), OK, "orphaned worker");
	ck_assert_msg(util_now_ns() - t0 < (uint64_t)STOP_CHECK_MS * 1000000u * 2,
	              "the orphan left %llu ms after its parent died",
	              (unsigned long long)((util_now_ns() - t0) / 1000000u));
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	close(p[0]);
	close(p[1]);
	close(ready[0]);
	close(ready[1]);
}
END_TEST

/* The web server is gone and its SIGTERM was lost, and the worker's parent
 * was init from the start: the socket path it unlinked tells.  Also a path
 * that now names another socket (a new web server). */
static void socket_case(bool replace)
{
	char dir[] = "/tmp/chat-stop-XXXXXX", path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, again, ready[2];
	pid_t pid;
	char c;
	uint64_t t0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sock", dir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (stop_init() != 0)
			leave(SETUP_FAILED);
		stop_watch_socket(fd);
		if (confine() != 0 || write(ready[1], "r", 1) != 1)
			leave(SETUP_FAILED);
		if (stop_wait(fd) != STOP_WAIT_LEAVE)
			leave(WRONG_RESULT);
		leave(check_reason("socket gone"));
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	t0 = util_now_ns();
	ck_assert_int_eq(unlink(path), 0);
	again = -1;
	if (replace) {
		again = socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_eq(bind(again, (struct sockaddr *)&sa, sizeof sa), 0);
	}
	expect_exit(wait_child(pid, 5), OK, replace ? "socket replaced" : "socket unlinked");
	ck_assert_msg(util_now_ns() - t0 < (uint64_t)STOP_CHECK_MS * 1000000u * 2,
	              "the worker left %llu ms after its socket went",
	              (unsigned long long)((util_now_ns() - t0) / 1000000u));
	if (again >= 0)
		close(again);
	close(fd);
	unlink(path);
	rmdir(dir);
	close(ready[0]);
	close(ready[1]);
}

START_TEST(socket_unlinked_leaves)
{
	socket_case(false);
}
END_TEST

START_TEST(socket_replaced_leaves)
{
	socket_case(true);
}
END_TEST

/* A worker serving normally stays: a second of idling is not a stop. */
START_TEST(idle_is_not_a_stop)
{
	char dir[] = "/tmp/chat-stop-XXXXXX", path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, client;
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sock", dir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (stop_init() != 0)
			leave(SETUP_FAILED);
		stop_watch_socket(fd);
		if (confine() != 0)
			leave(SETUP_FAILED);
		/* Idle for over two periodic checks, then a connection. */
		if (stop_wait(fd) != STOP_WAIT_READY || stop_reason() != NULL)
			leave(WRONG_RESULT);
		leave(OK);
	}
	usleep(STOP_CHECK_MS * 2500);
	client = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(client, (struct sockaddr *)&sa, sizeof sa), 0);
	expect_exit(wait_child(pid, 5), OK, "idle, then a connection");
	close(client);
	close(fd);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *stop_suite(void)
{
	Suite *s = suite_create("stop");
	TCase *tc = tcase_create("stop");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, signal_during_start_up_is_kept);
	tcase_add_test(tc, signal_while_idle_ends_the_wait);
	tcase_add_test(tc, sigusr1_is_a_stop);
	tcase_add_test(tc, queued_work_is_served_after_stop);
	tcase_add_test(tc, draining_is_bounded);
	tcase_add_test(tc, orphan_leaves_by_itself);
	tcase_add_test(tc, socket_unlinked_leaves);
	tcase_add_test(tc, socket_replaced_leaves);
	tcase_add_test(tc, idle_is_not_a_stop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stop_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
