/*
 * stop: when a worker leaves.  It leaves when it is asked to (SIGTERM or
 * SIGINT: the web server's stop, or Ctrl-C reaching the whole process
 * group; SIGUSR1, libfcgi's graceful stop), or when the web server that
 * started it is gone; never in the middle of a request.
 *
 * The stop signals are blocked for the whole life of the worker except
 * inside stop_wait(), the idle wait for the next connection (ppoll(2)
 * unblocks them atomically).  So a request in flight is never interrupted
 * (no EINTR reaches libpq or libfcgi), and a signal that arrives at any
 * other moment, during start-up or a request, stays pending and ends the
 * next wait at once: there is no window in which a worker could miss its
 * stop and block in accept() for good.
 *
 * A worker whose web server is gone leaves by itself: PR_SET_PDEATHSIG
 * turns its parent's death into a SIGTERM, and while idle the wait wakes
 * once a second to check that its parent is still the one that started it
 * and that its socket's path still names its socket (the web server
 * unlinks it as it exits).
 */
#ifndef CHAT_STOP_H
#define CHAT_STOP_H

/* How often an idle worker checks its web server, in milliseconds. */
#define STOP_CHECK_MS 1000
/*
 * After a stop, connections already queued on the listening socket are
 * still served (the web server sent them before it stopped, or while it
 * finishes gracefully), for at most this long; then the worker leaves.
 */
#define STOP_DRAIN_MS 2000

/*
 * First thing in main(): block SIGTERM, SIGINT and SIGUSR1, install their
 * handler (no SA_RESTART), and, when the parent is not init (a web server
 * that spawned us, not a daemonising spawn-fcgi), remember it and ask the
 * kernel for SIGTERM when it dies.  Returns 0, or -1 with errno set.
 */
int stop_init(void);

/*
 * Also watch the listening socket fd: when it is a Unix socket bound to an
 * absolute path (lighttpd, mod_fcgid, spawn-fcgi -s), leave once that path
 * is gone or names another file.  Call before the first wait.
 */
void stop_watch_socket(int fd);

enum stop_wait {
	STOP_WAIT_READY, /* a connection is waiting on fd: accept it */
	STOP_WAIT_LEAVE  /* stop: nothing (more) to serve */
};

/* Wait until fd is readable or it is time to leave (see above). */
enum stop_wait stop_wait(int fd);

/* Why the worker is leaving, for its last log line: the signal's name,
 * then ", parent gone" or ", socket gone" when the web server is gone too
 * (or that alone), or NULL when no stop was requested. */
const char *stop_reason(void);

#endif
