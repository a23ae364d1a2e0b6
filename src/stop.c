/*
 * stop: when a worker leaves.  See stop.h.
 *
 * Why not libfcgi's own stop (FCGX_ShutdownPending and a blocking
 * accept()): a SIGTERM that lands after its check and before accept() is
 * lost, and the worker then sleeps in accept() until a connection comes.
 *
 * Why more than the signals: lighttpd stops its workers with SIGTERM as it
 * exits, right after it may have respawned some (it respawns those that
 * left on Ctrl-C while it finishes gracefully, and at once the one that
 * just finished the last request).  Once in 20 Ctrl-C tries of
 * tests/e2e/test_stop.sh, a worker spawned in lighttpd's last millisecond
 * got no SIGTERM it could see (lost before its exec(), or never sent) and
 * started after lighttpd was gone: parent 1 from its first instruction,
 * so PR_SET_PDEATHSIG had nothing to watch.  lighttpd does unlink the
 * worker's socket as it exits: a worker whose socket path is gone, or now
 * names another socket, can never be reached again, and leaves.
 */
#include "stop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static volatile sig_atomic_t stop_signal; /* set by the handler */
static pid_t parent;                      /* the parent we watch, 0: none */
static bool parent_lost;
/* The listening socket's path and the file it named at start, if watched. */
static char sock_path[sizeof((struct sockaddr_un *)0)->sun_path + 1];
static dev_t sock_dev;
static ino_t sock_ino;
static bool socket_lost;
static sigset_t wait_mask;     /* the mask while idle: the stop signals open */
static uint64_t stop_since_ns; /* when the stop was noticed, 0 before */
static bool checked_once;      /* the web server was checked at least once */

static void on_stop(int sig)
{
	stop_signal = sig; /* async-signal-safe: one store */
}

int stop_init(void)
{
	struct sigaction sa;
	sigset_t stops, old;

	/* SIGUSR1 too: libfcgi's own graceful stop (FCGX_Init installs its
	 * handler only where it finds none, and ours is first). */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGUSR1);
	/* Blocked first: a signal that comes before the handler is installed
	 * stays pending instead of killing a half-started worker. */
	if (sigprocmask(SIG_BLOCK, &stops, &old) != 0)
		return -1;
	wait_mask = old;
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGUSR1);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the wait returns at once */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGUSR1, &sa, NULL) != 0)
		return -1;

	/* A parent of 1 is init: spawn-fcgi forks the workers and exits (or
	 * a container's first process started us, or our web server is
	 * already gone), and nothing tells which.  Such a worker is not
	 * watched by its parent, only by its socket. */
	parent = getppid();
	if (parent <= 1) {
		parent = 0;
		return 0;
	}
	/* Sent when the parent thread exits: lighttpd and mod_fcgid's process
	 * manager are single-threaded.  Had the parent died before this call,
	 * no signal would come: the checks compare getppid() with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		return -1;
	return 0;
}

void stop_watch_socket(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof sa;
	struct stat st;
	size_t n;

	memset(&sa, 0, sizeof sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path))
		return; /* TCP (spawn-fcgi -p), or an unnamed socket */
	n = strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
	if (n == 0 || sa.sun_path[0] != '/')
		return; /* abstract, or relative to a directory we cannot know */
	memcpy(sock_path, sa.sun_path, n);
	sock_path[n] = '\0';
	if (stat(sock_path, &st) != 0) {
		/* Already unlinked: the web server is gone.  Any other error
		 * (a directory we may not search): not watched. */
		socket_lost = errno == ENOENT;
		sock_path[0] = '\0';
		return;
	}
	if (!S_ISSOCK(st.st_mode)) {
		sock_path[0] = '\0';
		return;
	}
	sock_dev = st.st_dev;
	sock_ino = st.st_ino;
}

/* Whether the web server is still there: the same parent, the same socket
 * file.  A few system calls: only at the first wait and once a second
 * while idle (a busy worker has a web server). */
static void check_web_server(void)
{
	struct stat st;

	checked_once = true;
	if (parent && !parent_lost && getppid() != parent)
		parent_lost = true;
	if (sock_path[0] && !socket_lost) {
		int rc = fstatat(AT_FDCWD, sock_path, &st, 0);

		/* Gone, or another socket there now (a new web server):
		 * nobody can connect to ours any more.  Other errors: keep
		 * serving. */
		if ((rc != 0 && errno == ENOENT) ||
		    (rc == 0 && (st.st_dev != sock_dev || st.st_ino != sock_ino)))
			socket_lost = true;
	}
}

/*
 * Asked to stop, or the web server is gone.  A stop signal may also be
 * pending still: ppoll() delivers it only when it returns EINTR, and on a
 * socket that always has a connection queued (a busy spawn-fcgi pool) it
 * returns at once, readable, every time.
 */
static bool must_leave(void)
{
	sigset_t pending;

	if (!stop_signal && sigpending(&pending) == 0) {
		if (sigismember(&pending, SIGTERM) == 1)
			stop_signal = SIGTERM;
		else if (sigismember(&pending, SIGINT) == 1)
			stop_signal = SIGINT;
		else if (sigismember(&pending, SIGUSR1) == 1)
			stop_signal = SIGUSR1;
	}
	return stop_signal != 0 || parent_lost || socket_lost;
}

enum stop_wait stop_wait(int fd)
{
	static const struct timespec tick = {STOP_CHECK_MS / 1000,
	                                     (STOP_CHECK_MS % 1000) * 1000000L};
	static const struct timespec at_once = {0, 0};
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (!checked_once)
		check_web_server();
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
		if (n == 0)
			check_web_server(); /* idle for a second */
		else if (errno != EINTR)
			return STOP_WAIT_LEAVE; /* cannot wait: nothing sensible left */
	}
}

const char *stop_reason(void)
{
	static char reason[64];
	const char *sig = stop_signal == SIGINT    ? "SIGINT"
	                  : stop_signal == SIGUSR1 ? "SIGUSR1"
	                  : stop_signal            ? "SIGTERM"
	                                           : NULL;
	const char *gone;

	check_web_server(); /* PR_SET_PDEATHSIG sends SIGTERM: say why */
	gone = parent_lost ? "parent gone" : socket_lost ? "socket gone" : NULL;
	if (!sig && !gone)
		return NULL;
	snprintf(reason, sizeof reason, "%s%s%s", sig ? sig : "", sig && gone ? ", " : "",
	         gone ? gone : "");
	return reason;
}
