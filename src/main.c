/*
 * chat-fcgi: one prefork FastCGI worker.
 *
 * The web server (lighttpd bin-path + max-procs, Apache mod_fcgid, or
 * spawn-fcgi) starts N copies of this program with the listening socket on
 * fd 0.  Each copy validates its configuration, then serves one request at a
 * time until it is asked to stop (SIGTERM, SIGINT) or its web server is
 * gone (src/stop.h); a request in flight is always finished first.
 * The database connection is opened lazily, after the fork, never before.
 * Between start-up and the first request the worker confines itself with a
 * seccomp filter (src/sandbox.h), unless WORKER_SECCOMP=off.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "version_git.h"
#include "sandbox.h"
#include "serve.h"
#include "stop.h"
#include "worker.h"

extern char **environ;

/*
 * libfcgi ends a connection with a lingering close: shutdown, then wait (up
 * to 2 s) for the web server to hang up, so that input we never read cannot
 * turn into a reset that loses the response.  When the request's input has
 * been read to its end and nothing else is queued on the socket there is
 * nothing to lose, and waiting only keeps this worker from the next request
 * until the web server's event loop gets round to closing: detaching the
 * request makes FCGX_Finish_r() close at once.  Only after the whole body
 * was read (or there was none): then all that can follow is the empty
 * record that ends the input, which the web server sends with the body's
 * last bytes, so reading it does not wait on a client.  A body left unread
 * (an early 413 or 415) still gets the lingering close.  A connection the
 * web server keeps for its next request (FCGI_KEEP_CONN) is not closed at
 * all, so it is left alone.
 */
static void close_at_once_if_drained(FCGX_Request *fr)
{
	int queued = 0;

	if (!fr->keepConnection && FCGX_GetChar(fr->in) == EOF && FCGX_GetError(fr->in) == 0 &&
	    ioctl(fr->ipcFd, FIONREAD, &queued) == 0 && queued == 0)
		FCGX_Detach(fr);
}

/* libfcgi's listening socket (FCGI_LISTENSOCK_FILENO). */
#define LISTEN_FD 0

/*
 * Serve until stop_wait() says to leave.  The listening socket is made
 * non-blocking, so accept() never waits: stop_wait() does the waiting,
 * and when another process sharing the socket (spawn-fcgi -F N) took the
 * connection first, FCGX_Accept_r() returns -EAGAIN and we wait again.
 * An accepted connection does not inherit O_NONBLOCK (Linux accept(2)),
 * so libfcgi's reads and writes stay blocking.  Returns the exit status.
 */
static int serve_until_stopped(struct worker *w)
{
	FCGX_Request fr;
	int flags = fcntl(LISTEN_FD, F_GETFL);
	const char *reason;

	if (flags < 0 || fcntl(LISTEN_FD, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_event(LOG_LEVEL_ERROR, "start",
		          "cannot make the FastCGI socket non-blocking: %s", strerror(errno));
		return 1;
	}
	FCGX_InitRequest(&fr, LISTEN_FD, 0);
	while (stop_wait(LISTEN_FD) == STOP_WAIT_READY) {
		int rc = FCGX_Accept_r(&fr);

		if (rc == -EAGAIN || rc == -EWOULDBLOCK)
			continue; /* nothing queued after all */
		if (rc < 0) {
			log_event(LOG_LEVEL_ERROR, "stop", "accept failed: %s", strerror(-rc));
			return 1;
		}
		if (serve_request(w, fr.envp, fr.in, fr.out))
			close_at_once_if_drained(&fr);
		FCGX_Finish_r(&fr);
	}
	reason = stop_reason();
	log_event(LOG_LEVEL_INFO, "stop", "worker stopping (%s)", reason ? reason : "no reason");
	return 0;
}

/*
 * After start-up (configuration, secret files, the shared segment, the
 * dummy hash) and before the first request: from here on a worker only
 * serves requests and (re)connects to PostgreSQL, and the filter allows
 * nothing else.  A worker that was asked to confine itself and cannot
 * refuses to serve.  Returns 0, or the exit status to stop with.
 */
static int confine(const struct worker *w, bool *confined)
{
	const char *unavailable = sandbox_unavailable();
	char err[160];

	*confined = false;
	if (!w->cfg.worker_seccomp) {
		log_event(LOG_LEVEL_WARN, "seccomp",
		          "WORKER_SECCOMP=off: this worker runs without its system-call filter");
		return 0;
	}
	if (unavailable) {
		log_event(LOG_LEVEL_WARN, "seccomp", "system-call filter not installed: %s",
		          unavailable);
		return 0;
	}
	if (sandbox_enter(err, sizeof err) != 0) {
		log_event(LOG_LEVEL_ERROR, "seccomp",
		          "cannot install the system-call filter: %s (WORKER_SECCOMP=off runs "
		          "the worker without it)",
		          err);
		return CONFIG_EXIT_STATUS;
	}
	*confined = true;
	return 0;
}

/* chat-fcgi --help: to stdout, so that `chat-fcgi --help | less` works. */
static void print_usage(FILE *out)
{
	fputs("usage: chat-fcgi          a FastCGI worker, started by the web server\n"
	      "       chat-fcgi --help   this text\n"
	      "       chat-fcgi --version\n"
	      "\n"
	      "lighttpd (bin-path + max-procs), Apache mod_fcgid or spawn-fcgi starts it with\n"
	      "the listening socket on fd 0; the configuration comes from the environment\n"
	      "(README.md, Configuration).  To check it: chat-admin check-config\n",
	      out);
}

/*
 * --help and --version need no configuration and no FastCGI socket, so they
 * come before anything else.  Returns the exit status, or -1 to go on.
 */
static int handle_options(int argc, char **argv)
{
	if (argc != 2)
		return -1;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_usage(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("chat-fcgi %s%s%s\n", PACKAGE_VERSION, CHAT_GIT_DESCRIBE[0] ? " git " : "",
		       CHAT_GIT_DESCRIBE);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static struct worker w; /* the one per-process context */
	bool confined;
	int status;

	status = handle_options(argc, argv);
	if (status >= 0)
		return status;
	/* Before anything slow: a stop signal that comes during start-up
	 * must not be lost (stop.h). */
	if (stop_init() != 0) {
		fputs("{\"level\":\"error\",\"event\":\"start\",\"msg\":\"cannot install the stop "
		      "handling\"}\n",
		      stderr);
		return 1;
	}
	/* FCGX_Init installs the SIGPIPE handler a vanished client would
	 * otherwise kill us with (lighttpd resets it to SIG_DFL). */
	if (FCGX_Init() != 0) {
		fputs("{\"level\":\"error\",\"event\":\"start\",\"msg\":\"FCGX_Init failed\"}\n",
		      stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	status = worker_configure(&w, environ);
	if (status != 0)
		return status;
	/* After the config check, so running the binary by hand validates the
	 * environment it would serve with. */
	if (argc > 1 || FCGX_IsCGI()) {
		fputs(
		    "chat-fcgi: a FastCGI worker; start it from lighttpd, mod_fcgid or spawn-fcgi "
		    "(see README.md). To check the configuration: chat-admin check-config\n",
		    stderr);
		config_free(&w.cfg);
		return 64;
	}
	status = worker_open(&w);
	if (status != 0)
		return status;
	stop_watch_socket(LISTEN_FD);
	status = confine(&w, &confined);
	if (status != 0) {
		worker_close(&w);
		return status;
	}
	log_event(LOG_LEVEL_INFO, "start", "worker ready (mode %s, seccomp %s)",
	          config_mode_name(w.cfg.mode), confined ? "on" : "off");
	status = serve_until_stopped(&w);
	worker_close(&w);
	return status;
}
