/*
 * chat-fcgi: one prefork FastCGI worker.
 *
 * The web server (lighttpd bin-path + max-procs, Apache mod_fcgid, or
 * spawn-fcgi) starts N copies of this program with the listening socket on
 * fd 0.  Each copy validates its configuration, then serves one request at a
 * time until the server asks it to stop (SIGTERM/SIGUSR1 via libfcgi).
 * The database connection is opened lazily, after the fork, never before.
 */
#include <fcgiapp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "chat.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "reply.h"
#include "worker.h"

extern char **environ;

static ssize_t fcgi_read(void *ctx, char *buf, size_t n)
{
	int want = n > 65536 ? 65536 : (int)n;
	int got = FCGX_GetStr(buf, want, (FCGX_Stream *)ctx);

	if (got < 0)
		return -1;
	return got;
}

/* struct db counts per worker; the shared counters take the deltas. */
static void report_db_counters(struct worker *w)
{
	uint64_t now[3] = {w->db.connects, w->db.connect_failures, w->db.errors};

	metrics_add_db(w->metrics, now[0] - w->db_reported[0], now[1] - w->db_reported[1],
	               now[2] - w->db_reported[2]);
	memcpy(w->db_reported, now, sizeof now);
}

/* Serves one request.  Returns whether its whole body (if any) was read. */
static bool serve_one(struct worker *w, FCGX_Request *fr)
{
	struct request req;
	struct response res;
	uint64_t started = db_now_ns(), elapsed;
	char *out = NULL;
	size_t out_len = 0;
	bool body_read = false;

	http_response_init(&res);
	if (http_request_init(&req, fr->envp) != 0) {
		reply_internal(&res);
	} else {
		worker_handle(w, &req, &res, fcgi_read, fr->in);
		body_read = http_body_read_whole(&req);
	}
	if (http_format_response(&req, &res, &out, &out_len) == 0) {
		FCGX_PutStr(out, (int)out_len, fr->out);
		free(out);
	}
	elapsed = db_now_ns() - started;
	log_request(&req, res.status, elapsed);
	metrics_record(w->metrics, req.route_index, res.status, elapsed);
	report_db_counters(w);
	http_response_free(&res);
	http_request_free(&req);
	return body_read;
}

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

static void on_stop(int sig)
{
	(void)sig;
	FCGX_ShutdownPending(); /* sets a flag: async-signal-safe */
}

/* SIGTERM finishes the request in flight, then FCGX_Accept_r returns < 0.
 * No SA_RESTART, so a worker idle in accept() wakes up and leaves. */
static void install_stop_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static int register_statements(struct worker *w)
{
	size_t n;
	const struct db_statement *s;

	s = health_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	s = auth_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	s = chat_statements(&n);
	if (db_add_statements(&w->db, s, n) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct worker w; /* the one per-process context */
	struct config_problems problems = {0};
	FCGX_Request fr;
	char err[RL_ERR_LEN];

	(void)argv;
	/* First: FCGX_Init installs the SIGPIPE handler a vanished client
	 * would otherwise kill us with (lighttpd resets it to SIG_DFL). */
	if (FCGX_Init() != 0) {
		fputs("{\"level\":\"error\",\"event\":\"start\",\"msg\":\"FCGX_Init failed\"}\n",
		      stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	install_stop_handler();
	if (config_load(&w.cfg, environ, &problems) != 0) {
		log_event(LOG_LEVEL_ERROR, "config", "%s%s",
		          problems.count ? problems.lines[0] : "configuration could not be loaded",
		          problems.count > 1 ? " (and more: run chat-admin check-config)" : "");
		config_problems_free(&problems);
		config_free(&w.cfg);
		return CONFIG_EXIT_STATUS;
	}
	log_set_threshold(w.cfg.log_level);
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
	if (rl_open(w.cfg.rate_limit_shm, w.cfg.rate_limit_slots, &w.rl, err, sizeof err) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "rate-limit table: %s", err);
		config_free(&w.cfg);
		return CONFIG_EXIT_STATUS;
	}
	if (metrics_attach(w.rl, &w.metrics, err, sizeof err) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "%s", err);
		rl_close(w.rl);
		config_free(&w.cfg);
		return CONFIG_EXIT_STATUS;
	}
	db_init(&w.db, &w.cfg);
	if (register_statements(&w) != 0 || auth_init(&w) != 0) {
		log_event(LOG_LEVEL_ERROR, "start", "initialisation failed");
		return 1;
	}
	log_event(LOG_LEVEL_INFO, "start", "worker ready (mode %s)", config_mode_name(w.cfg.mode));

	FCGX_InitRequest(&fr, 0, 0);
	while (FCGX_Accept_r(&fr) >= 0) {
		if (serve_one(&w, &fr))
			close_at_once_if_drained(&fr);
		FCGX_Finish_r(&fr);
	}
	log_event(LOG_LEVEL_INFO, "stop", "worker stopping");
	db_close(&w.db);
	rl_close(w.rl);
	config_free(&w.cfg);
	return 0;
}
