/*
 * stop: when a worker leaves.  See stop.h.
 *
 * Why not libfcgi's own stop (FCGX_ShutdownPending and a blocking
 * accept()): a SIGTERM that lands after its check and before accept() is
 * lost, and the worker then sleeps in accept() until a connection comes.
 * lighttpd stops its workers with SIGTERM right after it respawned some
 * (it respawns those that left on Ctrl-C while it finishes gracefully), so
 * the new ones were often still starting up: they sat in accept() for
 * good, parent 1, on a socket lighttpd had unlinked.
 */
#include "stop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static volatile sig_atomic_t stop_signal; /* set by the handler */
static pid_t parent;                      /* the parent we watch, 0: none */
static bool parent_lost;
static sigset_t wait_mask;     /* the mask while idle: the stop signals open */
static uint64_t stop_since_ns; /* when the stop was noticed, 0 before */

static void on_stop(int sig)
{
	stop_signal = sig; /* async-signal-safe: one store */
}

int stop_init(void)
{
	struct sigaction sa;
	sigset_t stops, old;

	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	/* Blocked first: a signal that comes before the handler is installed
	 * stays pending instead of killing a half-started worker. */
	if (sigprocmask(SIG_BLOCK, &stops, &old) != 0)
		return -1;
	wait_mask = old;
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the wait returns at once */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return -1;

	/* A parent of 1 is init: spawn-fcgi forks the workers and exits (or
	 * a container's first process started us), and nothing tells us
	 * which parent was meant.  Such workers stop on their signal only. */
	parent = getppid();
	if (parent <= 1) {
		parent = 0;
		return 0;
	}
	/* Sent when the parent thread exits: lighttpd and mod_fcgid's process
	 * manager are single-threaded.  Had the parent died before this call,
	 * no signal would come: the first wait compares getppid() with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		return -1;
	return 0;
}

/*
 * Asked to stop, or orphaned (re-parented to init or a subreaper).  A stop
 * signal may also be pending still: ppoll() delivers it only when it
 * returns EINTR, and on a socket that always has a connection queued (a
 * busy spawn-fcgi pool) it returns at once, readable, every time.
 */
static bool must_leave(void)
{
	sigset_t pending;

	if (!stop_signal && sigpending(&pending) == 0) {
		if (sigismember(&pending, SIGTERM) == 1)
			stop_signal = SIGTERM;
		else if (sigismember(&pending, SIGINT) == 1)
			stop_signal = SIGINT;
	}
	if (parent && !parent_lost && getppid() != parent)
		parent_lost = true;
	return stop_signal != 0 || parent_lost;
}

enum stop_wait stop_wait(int fd)
{
	static const struct timespec tick = {STOP_CHECK_MS / 1000,
	                                     (STOP_CHECK_MS % 1000) * 1000000L};
	static const struct timespec at_once = {0, 0};
	struct pollfd p = {.fd = fd, .events = POLLIN};

	for (;;) {
		bool leaving = must_leave();
		int n;

		if (leaving) {
			uint64_t now = util_now_ns();

			if (!stop_since_ns)
				stop_since_ns = now ? now : 1;
			else if (now - stop_since_ns >= (uint64_t)STOP_DRAIN_MS * 1000000u)
				return STOP_WAIT_LEAVE;
		}
		/* Leaving: only what is already queued (a zero timeout). */
		p.revents = 0;
		n = ppoll(&p, 1, leaving ? &at_once : &tick, &wait_mask);
		if (n > 0)
			return STOP_WAIT_READY; /* or an error that accept() will report */
		if (n == 0 && leaving)
			return STOP_WAIT_LEAVE;
		if (n < 0 && errno != EINTR)
			return STOP_WAIT_LEAVE; /* cannot wait: nothing sensible left */
		/* A timeout while serving (check the parent), or a signal. */
	}
}

const char *stop_reason(void)
{
	bool orphan = parent_lost || (parent && getppid() != parent);

	switch (stop_signal) {
	case 0:
		return orphan ? "parent gone" : NULL;
	case SIGINT:
		return orphan ? "SIGINT, parent gone" : "SIGINT";
	default: /* PR_SET_PDEATHSIG sends SIGTERM too */
		return orphan ? "SIGTERM, parent gone" : "SIGTERM";
	}
}
