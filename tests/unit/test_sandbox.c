/*
 * Unit tests for sandbox: the real filter, entered in a child forked for
 * each case and never in the test runner (with CK_FORK=no Check runs every
 * test in its own process, and a filter cannot be removed).
 *
 * After entering, what a worker does must still work: read a file
 * read-only, getrandom, a 40 MiB allocation, a TCP connect the way libpq
 * makes it, writev to a pipe, name resolution from /etc/hosts and over DNS
 * (a server in the parent answers, with two addresses so that glibc sorts
 * them), a poll stopped and continued.  What an attacker would try first
 * (exec, opening a file for writing, ptrace, fork, raw sockets, executable
 * memory, another ABI) must kill the child with SIGSYS, and leave nothing
 * behind.
 *
 * Under valgrind every case passes without running: valgrind's own system
 * calls would go through the filter.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <pwd.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

#define FILE_TEXT "read me, read only\n"
#define BIG       (40u << 20)

/* Made by the parent before each fork; what the child works with. */
static char dir[64];
static char ro_path[128];  /* a file with FILE_TEXT */
static char new_path[128]; /* a name that must never come to exist */
static int pipe_fds[2] = {-1, -1};
static int listen_fd = -1;
static in_port_t listen_port;
static int dns_fd = -1;
static in_port_t dns_port;
static unsigned dns_answered;
static pid_t parent_pid;
static int msg_fd = -1; /* child: the parent reads its complaints here */

/* valgrind runs its client with its own libraries preloaded
 * (vgpreload_core-*.so): no need for valgrind's headers at build time. */
static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/* In the child: tell the parent what went wrong; the exit status. */
static int say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0 && write(msg_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0)
		return 2;
	return 1;
}

static in_port_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static int loopback_socket(int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static void setup(void)
{
	int fd;

	strcpy(dir, "/tmp/test_sandbox.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(ro_path, sizeof ro_path, "%s/ro", dir);
	snprintf(new_path, sizeof new_path, "%s/new", dir);
	fd = open(ro_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, FILE_TEXT, strlen(FILE_TEXT)), (ssize_t)strlen(FILE_TEXT));
	close(fd);
	ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
	listen_fd = loopback_socket(SOCK_STREAM);
	ck_assert_int_eq(listen(listen_fd, 4), 0);
	listen_port = local_port(listen_fd);
	dns_fd = loopback_socket(SOCK_DGRAM);
	dns_port = local_port(dns_fd);
	dns_answered = 0;
	parent_pid = getpid();
}

static void teardown(void)
{
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	close(listen_fd);
	close(dns_fd);
	unlink(ro_path);
	unlink(new_path);
	rmdir(dir);
}

/*
 * The fake name server: A is 127.0.0.1, AAAA is ::1, anything else has no
 * answer.  The reply is the query's header and question with the answer
 * appended (any EDNS record of the query is dropped).
 */
static void dns_answer(void)
{
	static const unsigned char v4[4] = {127, 0, 0, 1};
	static const unsigned char v6[16] = {[15] = 1};
	unsigned char q[512], r[600];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof from;
	ssize_t n = recvfrom(dns_fd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
	size_t end = 12;
	unsigned type;
	size_t o;

	if (n < 12)
		return;
	while (end < (size_t)n && q[end] != 0)
		end += q[end] + 1u;
	end += 1 + 4;
	if (end > (size_t)n)
		return;
	type = (unsigned)q[end - 4] << 8 | q[end - 3];
	memcpy(r, q, end);
	r[2] = 0x81; /* a response, recursion desired ... */
	r[3] = 0x80; /* ... and available, no error */
	r[6] = 0;
	r[7] = type == ns_t_a || type == ns_t_aaaa;
	memset(r + 8, 0, 4);
	o = end;
	if (r[7]) {
		unsigned char len = type == ns_t_a ? 4 : 16;
		const unsigned char rr[] = {0xc0, 12, q[end - 4], q[end - 3], 0, 1,
		                            0,    0,  0,          60,         0, len};

		memcpy(r + o, rr, sizeof rr);
		o += sizeof rr;
		memcpy(r + o, type == ns_t_a ? v4 : v6, len);
		o += len;
	}
	if (sendto(dns_fd, r, o, 0, (struct sockaddr *)&from, fromlen) == (ssize_t)o)
		dns_answered++;
}

struct outcome {
	int status;
	char msg[512];
};

static const char *describe(const struct outcome *o)
{
	static char buf[640];

	if (WIFEXITED(o->status))
		snprintf(buf, sizeof buf, "exit %d%s%s", WEXITSTATUS(o->status),
		         o->msg[0] ? ": " : "", o->msg);
	else if (WIFSIGNALED(o->status))
		snprintf(buf, sizeof buf, "killed by signal %d (%s)%s%s", WTERMSIG(o->status),
		         strsignal(WTERMSIG(o->status)), o->msg[0] ? ": " : "", o->msg);
	else
		snprintf(buf, sizeof buf, "status %#x", (unsigned)o->status);
	return buf;
}

/*
 * Fork; the child enters the sandbox and exits with fn's result.  The
 * parent runs `parent` (if any), then answers DNS queries and collects the
 * child's messages until it is gone (20 s at most).
 */
static void run(int (*fn)(void), void (*parent)(pid_t), struct outcome *out)
{
	struct timespec start, now;
	int p[2];
	pid_t pid;
	size_t got = 0;

	memset(out, 0, sizeof *out);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* SIGSYS and SIGABRT would dump core into the build tree. */
		struct rlimit no_core = {0, 0};
		char err[256];

		close(p[0]);
		msg_fd = p[1];
		setrlimit(RLIMIT_CORE, &no_core);
		if (sandbox_enter(err, sizeof err) != 0) {
			say("sandbox_enter: %s", err);
			_exit(90);
		}
		/* The system call itself: no atexit handlers, and none of the
		 * sanitizers' _exit hooks (they call sigaltstack). */
		syscall(SYS_exit_group, fn());
	}
	close(p[1]);
	if (parent)
		parent(pid);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN},
		                        {.fd = dns_fd, .events = POLLIN}};

		if (poll(fds, 2, 20) > 0) {
			if (fds[0].revents & POLLIN && got < sizeof out->msg - 1) {
				ssize_t n = read(p[0], out->msg + got, sizeof out->msg - 1 - got);

				got += n > 0 ? (size_t)n : 0;
			}
			if (fds[1].revents & POLLIN)
				dns_answer();
		}
		if (waitpid(pid, &out->status, WNOHANG) == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 20) {
			kill(pid, SIGKILL);
			waitpid(pid, &out->status, 0);
			ck_abort_msg("the child took more than 20 s");
		}
	}
	/* What it wrote just before it exited. */
	while (got < sizeof out->msg - 1) {
		ssize_t n = read(p[0], out->msg + got, sizeof out->msg - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
}

#define SKIP_UNDER_VALGRIND()                                                                      \
	do {                                                                                       \
		if (under_valgrind())                                                              \
			return;                                                                    \
	} while (0)

static void expect_ok(int (*fn)(void), void (*parent)(pid_t), const char *what)
{
	struct outcome o;

	run(fn, parent, &o);
	ck_assert_msg(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0, "%s: %s", what,
	              describe(&o));
}

static void expect_sigsys(int (*fn)(void), const char *what)
{
	struct outcome o;

	run(fn, NULL, &o);
	ck_assert_msg(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSYS,
	              "%s: expected death by SIGSYS, got %s", what, describe(&o));
}

/* --- what must still work ------------------------------------------------------------ */

static int status_file_shows_filter(void)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return say("open /proc/self/status: %s", strerror(errno));
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return say("read /proc/self/status failed");
	buf[n] = '\0';
	if (!strstr(buf, "\nSeccomp:\t2\n"))
		return say("no \"Seccomp:\\t2\" in /proc/self/status");
	if (!strstr(buf, "\nNoNewPrivs:\t1\n"))
		return say("no \"NoNewPrivs:\\t1\" in /proc/self/status");
	return 0;
}

START_TEST(proc_status)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(status_file_shows_filter, NULL, "Seccomp: 2 and NoNewPrivs: 1");
}
END_TEST

static int read_only_open(void)
{
	char buf[64] = "";
	FILE *f;
	int fd = open(ro_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return say("open O_RDONLY: %s", strerror(errno));
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n != (ssize_t)strlen(FILE_TEXT) || memcmp(buf, FILE_TEXT, (size_t)n) != 0)
		return say("read gave %zd bytes", n);
	/* The stdio way, as NSS and OpenSSL read their files. */
	f = fopen(ro_path, "re");
	if (!f)
		return say("fopen \"re\": %s", strerror(errno));
	if (!fgets(buf, sizeof buf, f) || strcmp(buf, FILE_TEXT) != 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return say("fgets/fseek failed");
	}
	fclose(f);
	/* A directory, read-only (opendir's flags); listing it is another
	 * matter (getdents64 is not allowed). */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return say("open O_DIRECTORY: %s", strerror(errno));
	close(fd);
	return 0;
}

START_TEST(allows_read_only_open)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(read_only_open, NULL, "open, read, fopen, open a directory read-only");
}
END_TEST

static int random_bytes(void)
{
	unsigned char b[32];

	return getrandom(b, sizeof b, 0) == (ssize_t)sizeof b ? 0 : say("getrandom failed");
}

START_TEST(allows_getrandom)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(random_bytes, NULL, "getrandom");
}
END_TEST

/* scrypt's buffer (32 MiB by default) and more: mmap, mremap, munmap. */
static int big_allocation(void)
{
	char *p = malloc(BIG);
	char *q;

	if (!p)
		return say("malloc(40 MiB) failed");
	memset(p, 0x5a, BIG);
	q = realloc(p, BIG + (8u << 20));
	if (!q) {
		free(p);
		return say("realloc(48 MiB) failed");
	}
	if (q[BIG - 1] != 0x5a) {
		free(q);
		return say("realloc lost the contents");
	}
	free(q);
	return 0;
}

START_TEST(allows_big_allocation)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(big_allocation, NULL, "40 MiB malloc, realloc, free");
}
END_TEST

/* The way libpq connects: non-blocking, poll, SO_ERROR, options. */
static int tcp_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
	struct sockaddr_in local;
	socklen_t len = sizeof local;
	struct pollfd pfd;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	int on = 1, err = -1;
	socklen_t errlen = sizeof err;

	if (fd < 0)
		return say("socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		return say("fcntl: %s", strerror(errno));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
		return say("setsockopt: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
		return say("connect: %s", strerror(errno));
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, 5000) != 1)
		return say("poll for the connect failed");
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0)
		return say("SO_ERROR %d", err);
	if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 ||
	    getpeername(fd, (struct sockaddr *)&local, &len) != 0)
		return say("getsockname/getpeername: %s", strerror(errno));
	if (send(fd, "ping", 4, MSG_NOSIGNAL) != 4)
		return say("send: %s", strerror(errno));
	close(fd);
	return 0;
}

START_TEST(allows_tcp_connect)
{
	char buf[8] = "";
	int fd;

	SKIP_UNDER_VALGRIND();
	expect_ok(tcp_connect, NULL, "TCP connect to 127.0.0.1");
	fd = accept(listen_fd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof buf), 4);
	ck_assert_str_eq(buf, "ping");
	close(fd);
}
END_TEST

/* The log's way of writing a line. */
static int vector_write(void)
{
	struct iovec v[2] = {{"{\"level\":\"info\"}", 16}, {"\n", 1}};

	return writev(pipe_fds[1], v, 2) == 17 ? 0 : say("writev: %s", strerror(errno));
}

START_TEST(allows_writev)
{
	char buf[32] = "";

	SKIP_UNDER_VALGRIND();
	expect_ok(vector_write, NULL, "writev to a pipe");
	ck_assert_int_eq(read(pipe_fds[0], buf, sizeof buf), 17);
	ck_assert_str_eq(buf, "{\"level\":\"info\"}\n");
}
END_TEST

static int count_addresses(const char *host, int *n)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	int rc = getaddrinfo(host, "5432", &hints, &res);

	*n = 0;
	if (rc != 0)
		return rc;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		(*n)++;
	freeaddrinfo(res);
	return 0;
}

/* POSTGRES_HOST=localhost: nsswitch.conf, nscd's socket, /etc/hosts. */
static int resolve_localhost(void)
{
	int n, rc = count_addresses("localhost", &n);

	if (rc != 0)
		return say("getaddrinfo(localhost): %s", gai_strerror(rc));
	return n > 0 ? 0 : say("getaddrinfo(localhost): no address");
}

START_TEST(allows_hosts_file_lookup)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(resolve_localhost, NULL, "getaddrinfo(localhost)");
}
END_TEST

/*
 * A database host found by DNS: resolv.conf, then A and AAAA queries over
 * UDP to the parent's server.  Two addresses come back, so glibc sorts
 * them (RFC 6724): a netlink probe, refused, and a UDP connect to each.
 */
static int resolve_by_dns(void)
{
	int n, rc;

	if (res_init() != 0)
		return say("res_init failed");
	_res.nscount = 1;
	_res.nsaddr_list[0].sin_family = AF_INET;
	_res.nsaddr_list[0].sin_port = htons(dns_port);
	_res.nsaddr_list[0].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	_res.retrans = 2;
	_res.retry = 2;
	rc = count_addresses("db.sandbox.test.", &n);
	if (rc != 0)
		return say("getaddrinfo(db.sandbox.test.): %s", gai_strerror(rc));
	return n == 2 ? 0 : say("getaddrinfo(db.sandbox.test.): %d addresses, expected 2", n);
}

START_TEST(allows_dns_lookup)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(resolve_by_dns, NULL, "getaddrinfo over DNS");
	ck_assert_uint_ge(dns_answered, 2);
}
END_TEST

/* libpq looks up its home directory (~/.postgresql) at every TLS connect. */
static int passwd_lookup(void)
{
	(void)getpwuid(geteuid());
	return 0;
}

START_TEST(allows_passwd_lookup)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(passwd_lookup, NULL, "getpwuid");
}
END_TEST

/* getaddrinfo's probe: refused with an error, not a kill. */
static int netlink_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd >= 0)
		return say("a netlink socket was created");
	return errno == EAFNOSUPPORT ? 0 : say("netlink: errno %d, expected EAFNOSUPPORT", errno);
}

START_TEST(refuses_netlink_with_errno)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(netlink_socket, NULL, "socket(AF_NETLINK)");
}
END_TEST

/* Executable memory, even read-only, is refused with EPERM: a module a
 * library loads late (dlopen) fails to load, and the process goes on. */
static int exec_memory(void)
{
	static const int prots[] = {PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC};
	void *lib;

	for (size_t i = 0; i < sizeof prots / sizeof prots[0]; i++) {
		void *p = mmap(NULL, 4096, prots[i], MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED || errno != EPERM)
			return say("mmap(%#x): %p, errno %d; expected EPERM", (unsigned)prots[i], p,
			           errno);
	}
	/* A library this process has not loaded (glibc's hesiod NSS module). */
	lib = dlopen("libnss_hesiod.so.2", RTLD_NOW | RTLD_LOCAL);
	if (lib)
		return say("dlopen loaded a library");
	return 0;
}

START_TEST(refuses_executable_memory_with_errno)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(exec_memory, NULL, "mmap(PROT_EXEC), dlopen");
}
END_TEST

/* A poll with a timeout, stopped and continued (test_apache.sh stops a
 * worker), comes back through restart_syscall. */
static int stopped_poll(void)
{
	char c = 'r';

	if (write(pipe_fds[1], &c, 1) != 1)
		return say("write: %s", strerror(errno));
	if (poll(NULL, 0, 400) != 0)
		return say("poll: %s", strerror(errno));
	return 0;
}

static void stop_and_continue(pid_t pid)
{
	struct pollfd pfd = {.fd = pipe_fds[0], .events = POLLIN};
	struct timespec pause = {0, 100 * 1000000};
	char c;
	int st;

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	ck_assert_int_eq(read(pipe_fds[0], &c, 1), 1);
	nanosleep(&pause, NULL);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(st));
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
}

START_TEST(allows_restart_after_stop)
{
	SKIP_UNDER_VALGRIND();
	expect_ok(stopped_poll, stop_and_continue, "poll across SIGSTOP/SIGCONT");
}
END_TEST

/* An assertion in OpenSSL or glibc: SIGABRT, not SIGSYS. */
static int aborts(void)
{
	abort();
}

START_TEST(abort_is_sigabrt)
{
	struct outcome o;

	SKIP_UNDER_VALGRIND();
#if defined(CHAT_SANITIZERS)
	/* The sanitizers' runtime reports an abort itself, with system calls
	 * of its own; sanitizer builds run their workers unconfined anyway. */
	fprintf(stderr, "test_sandbox: sanitizer build: abort case skipped\n");
	return;
#endif
	run(aborts, NULL, &o);
	ck_assert_msg(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT, "abort(): %s",
	              describe(&o));
}
END_TEST

/*
 * Under systemd's SystemCallFilter=@system-service (deploy/systemd/), which
 * leaves seccomp(2) out and answers EPERM, while prctl(PR_SET_SECCOMP)
 * stays allowed.  The outer filter is raw BPF, not libseccomp, so that
 * libseccomp first probes the kernel from inside it, as in a worker that
 * systemd started.
 */
static int outer_filter_refuses_seccomp_syscall(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0;
}

static int under_systemd_filter(void)
{
	char err[256];
	int fd;

	/* The child of a child: this one keeps the outer filter only. */
	if (sandbox_enter(err, sizeof err) != 0)
		return say("sandbox_enter under an outer filter: %s", err);
	if (status_file_shows_filter() != 0)
		return 1;
	fd = open(new_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	return say("open for writing returned %d", fd);
}

START_TEST(loads_under_systemd_filter)
{
	struct outcome o;
	int p[2];
	pid_t pid;

	SKIP_UNDER_VALGRIND();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct rlimit no_core = {0, 0};

		close(p[0]);
		msg_fd = p[1];
		setrlimit(RLIMIT_CORE, &no_core);
		if (outer_filter_refuses_seccomp_syscall())
			syscall(SYS_exit_group, say("outer filter: %s", strerror(errno)));
		syscall(SYS_exit_group, under_systemd_filter());
	}
	close(p[1]);
	memset(&o, 0, sizeof o);
	ck_assert_int_eq(waitpid(pid, &o.status, 0), pid);
	if (read(p[0], o.msg, sizeof o.msg - 1) < 0)
		o.msg[0] = '\0';
	close(p[0]);
	ck_assert_msg(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSYS,
	              "expected death by SIGSYS, got %s", describe(&o));
	ck_assert_msg(access(new_path, F_OK) != 0, "%s exists", new_path);
}
END_TEST

/* --- what must kill ---------------------------------------------------------------------- */

static int exec_shell(void)
{
	char *const argv[] = {"sh", "-c", "exit 0", NULL};

	execve("/bin/sh", argv, NULL);
	return say("execve returned: %s", strerror(errno));
}

static int open_flags;

static int open_for_writing(void)
{
	int fd = open(open_flags & O_CREAT ? new_path : ro_path, open_flags | O_CLOEXEC, 0600);

	return say("open(%#x) returned %d (%s)", (unsigned)open_flags, fd,
	           fd < 0 ? strerror(errno) : "a descriptor");
}

static int open_tmpfile(void)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	return say("open(O_TMPFILE) returned %d", fd);
}

static int trace_me(void)
{
	long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);

	return say("ptrace(PTRACE_TRACEME) returned %ld", r);
}

static int fork_child(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return say("fork returned %d", (int)pid);
}

static int raw_socket(void)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);

	return say("socket(SOCK_RAW) returned %d", fd);
}

static int packet_socket(void)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return say("socket(AF_PACKET) returned %d", fd);
}

static int listen_tcp(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return say("socket: %s", strerror(errno));
	r = bind(fd, (struct sockaddr *)&a, sizeof a);
	return say("bind returned %d", r);
}

static int accept_elsewhere(void)
{
	int fd = accept(listen_fd, NULL, NULL);

	return say("accept on fd %d returned %d", listen_fd, fd);
}

static int other_ioctl(void)
{
	int on = 1;
	int r = ioctl(pipe_fds[0], FIONBIO, &on);

	return say("ioctl(FIONBIO) returned %d", r);
}

static int make_executable(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r;

	if (p == MAP_FAILED)
		return say("mmap: %s", strerror(errno));
	r = mprotect(p, 4096, PROT_READ | PROT_EXEC);
	return say("mprotect(PROT_EXEC) returned %d", r);
}

static int signal_parent(void)
{
	int r = kill(parent_pid, 0);

	return say("kill returned %d", r);
}

static int write_flags_fcntl(void)
{
	struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	int fd = open(ro_path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return say("open: %s", strerror(errno));
	r = fcntl(fd, F_SETLK, &lk);
	return say("fcntl(F_SETLK) returned %d", r);
}

#if defined(__x86_64__)
/* getpid through the i386 ABI (int 0x80): an architecture not in the
 * filter. */
static int i386_abi(void)
{
	long r = 20; /* __NR_getpid on i386 */

	__asm__ volatile("int $0x80" : "+a"(r) : : "memory");
	return say("int 0x80 returned %ld", r);
}

/* Whether this kernel runs i386 system calls at all: without its IA-32
 * emulation, int 0x80 is a SIGSEGV whatever the filter says. */
static bool kernel_has_i386_abi(void)
{
	int st;
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		long r = 20;

		setrlimit(RLIMIT_CORE, &no_core);
		__asm__ volatile("int $0x80" : "+a"(r) : : "memory");
		_exit(r == getpid() ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* getpid through the x32 ABI: same architecture token, other numbers. */
static int x32_abi(void)
{
	long r = syscall(0x40000000L | SYS_getpid);

	return say("x32 getpid returned %ld", r);
}
#endif

static const struct {
	const char *what;
	int (*fn)(void);
} forbidden[] = {
    {"execve(/bin/sh)", exec_shell},
    {"open for writing", open_for_writing},
    {"open(O_TMPFILE)", open_tmpfile},
    {"ptrace(PTRACE_TRACEME)", trace_me},
    {"fork", fork_child},
    {"raw socket", raw_socket},
    {"packet socket", packet_socket},
    {"bind", listen_tcp},
    {"accept on a socket other than fd 0", accept_elsewhere},
    {"ioctl other than FIONREAD", other_ioctl},
    {"mprotect to executable", make_executable},
    {"kill", signal_parent},
    {"fcntl lock", write_flags_fcntl},
#if defined(__x86_64__)
    {"i386 system call (int 0x80)", i386_abi},
    {"x32 system call", x32_abi},
#endif
};

START_TEST(forbidden_kills)
{
	SKIP_UNDER_VALGRIND();
#if defined(__x86_64__)
	if (forbidden[_i].fn == i386_abi && !kernel_has_i386_abi()) {
		fprintf(stderr, "test_sandbox: no i386 emulation in this kernel: case skipped\n");
		return;
	}
#endif
	open_flags = O_WRONLY | O_CREAT;
	expect_sigsys(forbidden[_i].fn, forbidden[_i].what);
	ck_assert_msg(access(new_path, F_OK) != 0, "%s: %s exists", forbidden[_i].what, new_path);
}
END_TEST

/* Every flag that writes: each alone kills, and nothing is created or
 * truncated. */
static const int write_flags[] = {
    O_WRONLY | O_CREAT, O_WRONLY,           O_RDWR,
    O_RDONLY | O_CREAT, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND,
};

START_TEST(open_for_writing_kills)
{
	struct stat st;

	SKIP_UNDER_VALGRIND();
	open_flags = write_flags[_i];
	expect_sigsys(open_for_writing, "open for writing");
	ck_assert_msg(access(new_path, F_OK) != 0, "flags %#x: %s exists", (unsigned)open_flags,
	              new_path);
	ck_assert_int_eq(stat(ro_path, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)strlen(FILE_TEXT));
}
END_TEST

START_TEST(unavailable_only_in_sanitizer_builds)
{
	const char *why = sandbox_unavailable();

#if defined(CHAT_SANITIZERS)
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "sanitizer"));
#else
	ck_assert_ptr_null(why);
#endif
}
END_TEST

static Suite *sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("sandbox");

	tcase_add_checked_fixture(tc, setup, teardown);
	/* Each DNS query may wait for the server; the rest is quick. */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, proc_status);
	tcase_add_test(tc, allows_read_only_open);
	tcase_add_test(tc, allows_getrandom);
	tcase_add_test(tc, allows_big_allocation);
	tcase_add_test(tc, allows_tcp_connect);
	tcase_add_test(tc, allows_writev);
	tcase_add_test(tc, allows_hosts_file_lookup);
	tcase_add_test(tc, allows_dns_lookup);
	tcase_add_test(tc, allows_passwd_lookup);
	tcase_add_test(tc, refuses_netlink_with_errno);
	tcase_add_test(tc, refuses_executable_memory_with_errno);
	tcase_add_test(tc, allows_restart_after_stop);
	tcase_add_test(tc, abort_is_sigabrt);
	tcase_add_loop_test(tc, forbidden_kills, 0, (int)(sizeof forbidden / sizeof forbidden[0]));
	tcase_add_loop_test(tc, open_for_writing_kills, 0,
	                    (int)(sizeof write_flags / sizeof write_flags[0]));
	tcase_add_test(tc, loads_under_systemd_filter);
	tcase_add_test(tc, unavailable_only_in_sanitizer_builds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sandbox_suite());
	int failed;

	if (under_valgrind())
		fprintf(stderr,
		        "test_sandbox: running under valgrind, which cannot run a process "
		        "that installs a seccomp filter: every case passes without running\n");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
