/*
 * sandbox: the seccomp-bpf allow-list of a worker.  See sandbox.h.
 *
 * The list was taken from strace of workers through the whole end-to-end
 * suite (first request, TLS verify-full connects, PostgreSQL restarts and
 * reconnects, statement timeouts, a host that never answers, logins with
 * scrypt, SIGTERM) and from tests/unit/test_sandbox.c (DNS over UDP, a
 * name with several addresses, large allocations).  It is the list of what
 * runs after start-up: whatever happens only before sandbox_enter()
 * (reading secrets, shm_open, mapping the segment, installing signal
 * handlers) is not in it.
 *
 * Names are libseccomp's (SCMP_SYS), so this builds on any architecture;
 * a name the native architecture lacks (poll on arm64) is skipped.  Only
 * the native architecture is in the filter: a system call made through
 * another ABI (int 0x80 on x86_64, x32) kills the process too.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SANDBOX_LSAN 1
#endif
#endif
#if defined(CHAT_SANITIZERS) || defined(__SANITIZE_ADDRESS__)
#define SANDBOX_LSAN 1
#endif

/* Flags that make an open write, create or truncate.  O_TMPFILE without
 * its O_DIRECTORY bit: opendir() is a read-only open with O_DIRECTORY (and
 * glibc's __O_TMPFILE includes that bit too). */
#define OPEN_TMPFILE_BIT (O_TMPFILE & ~O_DIRECTORY)
#define OPEN_WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | OPEN_TMPFILE_BIT)

/* The socket type without SOCK_NONBLOCK and SOCK_CLOEXEC. */
#define SOCK_TYPE_BITS 0xf

/* The futex operation without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME:
 * what the kernel switches on (any other bit makes it refuse the call). */
#define FUTEX_CMD_BITS 0xfffffe7fu

/* libfcgi's listening socket (FCGI_LISTENSOCK_FILENO). */
#define LISTEN_FD 0

struct builder {
	scmp_filter_ctx ctx;
	int rc; /* the first failure, a negative errno ... */
	int nr; /* ... and the system call it was about */
};

static void add(struct builder *b, uint32_t action, int nr, unsigned n,
                const struct scmp_arg_cmp *cmp)
{
	int rc;

	/* A negative number is libseccomp's placeholder for a call the
	 * native architecture does not have: nothing to allow. */
	if (b->rc != 0 || nr < 0)
		return;
	rc = seccomp_rule_add_array(b->ctx, action, nr, n, cmp);
	if (rc != 0) {
		b->rc = rc;
		b->nr = nr;
	}
}

/* Argument number arg, an int in the ABI: equal to v, or equal to v under
 * mask.  (libseccomp's SCMP_A*_32 macros leave datum_b out, which clang's
 * -Wextra reports.) */
static struct scmp_arg_cmp arg_eq(unsigned arg, uint32_t v)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
}

static struct scmp_arg_cmp arg_masked(unsigned arg, uint32_t mask, uint32_t v)
{
	return (struct scmp_arg_cmp){
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v};
}

#define ALLOW(b, nr) add((b), SCMP_ACT_ALLOW, (nr), 0, NULL)
#define ALLOW_IF(b, nr, ...)                                                                       \
	do {                                                                                       \
		const struct scmp_arg_cmp cmp_[] = {__VA_ARGS__};                                  \
		add((b), SCMP_ACT_ALLOW, (nr), sizeof cmp_ / sizeof cmp_[0], cmp_);                \
	} while (0)
#define REFUSE_IF(b, err, nr, ...)                                                                 \
	do {                                                                                       \
		const struct scmp_arg_cmp cmp_[] = {__VA_ARGS__};                                  \
		add((b), SCMP_ACT_ERRNO(err), (nr), sizeof cmp_ / sizeof cmp_[0], cmp_);           \
	} while (0)

/* Allowed whatever their arguments: they act on the process itself or on
 * descriptors it already holds. */
static const int plain_calls[] = {
    /* Requests, responses, log lines, libpq's and OpenSSL's traffic. */
    SCMP_SYS(read),
    SCMP_SYS(readv),
    SCMP_SYS(write),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),    /* the idle wait (stop.c); poll where poll(2) is missing */
    SCMP_SYS(shutdown), /* libfcgi's lingering close */
    SCMP_SYS(sendto),   /* libpq send(), the resolver's single query */
    SCMP_SYS(recvfrom), /* libpq recv(), the resolver's answers */
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmmsg),   /* the resolver sends its A and AAAA queries at once */
    SCMP_SYS(connect),    /* only sockets created under the rules below */
    SCMP_SYS(getsockopt), /* SO_ERROR after a non-blocking connect */
    SCMP_SYS(setsockopt), /* TCP_NODELAY, SO_KEEPALIVE (libpq) */
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    /* Files opened read-only (openat below): stdio reads and rewinds
     * them, libpq and NSS stat them (/etc/nsswitch.conf, ~/.postgresql). */
    SCMP_SYS(lseek),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    /* malloc, scrypt's 128·r·N bytes (mmap/munmap), realloc of large
     * blocks (mremap), trimming (madvise). */
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    /* Time, randomness, identity. */
    SCMP_SYS(clock_gettime), /* the vDSO answers unless it is unavailable */
    SCMP_SYS(gettimeofday),
    SCMP_SYS(getrandom), /* request ids, OpenSSL's DRBG */
    SCMP_SYS(getpid),    /* every log line */
    SCMP_SYS(getppid),   /* an idle worker checks that its web server is still there */
    SCMP_SYS(gettid),    /* abort() */
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid), /* libpq looks up its home directory for ~/.postgresql */
    SCMP_SYS(uname),   /* the resolver's default domain (gethostname) */
    SCMP_SYS(sysinfo), /* qsort() asks for physical memory (OpenSSL sorts ciphers) */
    /* Signals: SIGTERM's handler returns; a poll interrupted by SIGSTOP and
     * resumed by SIGCONT restarts; abort() blocks and resets signals; the
     * idle wait (stop.c) is a ppoll that unblocks SIGTERM and SIGINT. */
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigpending), /* the idle wait: a stop signal still pending */
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

static void allow_plain(struct builder *b)
{
	for (size_t i = 0; i < sizeof plain_calls / sizeof plain_calls[0]; i++)
		ALLOW(b, plain_calls[i]);
}

/* Sockets of the three families a connect can need: Unix (nscd's socket,
 * which glibc tries before every lookup; PostgreSQL's socket directory if
 * POSTGRES_HOST is a path) and IPv4/IPv6 (PostgreSQL over TCP, DNS over UDP
 * and TCP, and the UDP connect glibc does to sort a name's addresses).
 * Stream and datagram only: no raw or packet sockets. */
static void allow_sockets(struct builder *b)
{
	static const int families[] = {AF_INET, AF_INET6};

	ALLOW_IF(b, SCMP_SYS(socket), arg_eq(0, AF_UNIX),
	         arg_masked(1, SOCK_TYPE_BITS, SOCK_STREAM));
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		ALLOW_IF(b, SCMP_SYS(socket), arg_eq(0, families[i]),
		         arg_masked(1, SOCK_TYPE_BITS, SOCK_STREAM));
		ALLOW_IF(b, SCMP_SYS(socket), arg_eq(0, families[i]),
		         arg_masked(1, SOCK_TYPE_BITS, SOCK_DGRAM));
	}
	/* A probe, refused: when a name has several addresses (localhost
	 * with 127.0.0.1 and ::1 in /etc/hosts), getaddrinfo() asks the
	 * kernel over netlink which local addresses exist, to sort them.
	 * Without an answer it assumes both IPv4 and IPv6 and goes on. */
	REFUSE_IF(b, EAFNOSUPPORT, SCMP_SYS(socket), arg_eq(0, AF_NETLINK));
	/* Connections come from the web server on libfcgi's socket only. */
	ALLOW_IF(b, SCMP_SYS(accept), arg_eq(0, LISTEN_FD));
	ALLOW_IF(b, SCMP_SYS(accept4), arg_eq(0, LISTEN_FD));
}

static void allow_files(struct builder *b)
{
	static const int fcntl_cmds[] = {F_GETFD, F_SETFD, F_GETFL, F_SETFL};

	/* Read-only: /etc/hosts, /etc/resolv.conf, /etc/nsswitch.conf,
	 * /etc/passwd (libpq's home directory), openssl.cnf, the CA file
	 * (read again at every connect), ~/.postgresql/root.crl (a probe),
	 * /dev/urandom (libscrypt's salts).  Writing, creating or truncating
	 * kills. */
	ALLOW_IF(b, SCMP_SYS(openat), arg_masked(2, OPEN_WRITE_FLAGS, 0));
	/* libpq: O_NONBLOCK and FD_CLOEXEC on its socket.  No locks, no
	 * F_SETOWN, no descriptor duplication. */
	for (size_t i = 0; i < sizeof fcntl_cmds / sizeof fcntl_cmds[0]; i++)
		ALLOW_IF(b, SCMP_SYS(fcntl), arg_eq(1, fcntl_cmds[i]));
	/* main.c: bytes queued on the FastCGI connection.  No other ioctl. */
	ALLOW_IF(b, SCMP_SYS(ioctl), arg_eq(1, FIONREAD));
}

static void allow_memory(struct builder *b)
{
	/* No new executable memory after start-up, not even read-only: a
	 * file mapped executable could alias memory this process can write
	 * (the shared segment can be opened read-only and mapped again).
	 * Only the dynamic loader asks, when a library loads a module late
	 * (an NSS module such as mdns from nsswitch.conf, an OpenSSL provider
	 * from openssl.cnf): its mmap gets EPERM, dlopen() fails, and glibc
	 * goes on with the next NSS source.  A probe, refused; making memory
	 * executable with mprotect has no such excuse and kills. */
	ALLOW_IF(b, SCMP_SYS(mmap), arg_masked(2, PROT_EXEC, 0));
	REFUSE_IF(b, EPERM, SCMP_SYS(mmap), arg_masked(2, PROT_EXEC, PROT_EXEC));
	ALLOW_IF(b, SCMP_SYS(mprotect), arg_masked(2, PROT_EXEC, 0));
}

static void allow_threads(struct builder *b)
{
	static const int ops[] = {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET};
	pid_t self = getpid();

	/* OpenSSL's and glibc's once-locks wake (nobody: one thread).  Only
	 * plain wait and wake: the requeue and PI operations are where the
	 * futex exploits were. */
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		ALLOW_IF(b, SCMP_SYS(futex), arg_masked(1, FUTEX_CMD_BITS, ops[i]));
	/* abort() (an OpenSSL or glibc assertion) raises SIGABRT at this
	 * process only, so it dies of SIGABRT with a core, not of SIGSYS. */
	ALLOW_IF(b, SCMP_SYS(tgkill), arg_eq(0, (uint32_t)self), arg_eq(2, SIGABRT));
}

const char *sandbox_unavailable(void)
{
#ifdef SANDBOX_LSAN
	/* Not the runtime's name: the tests take that word for its report. */
	return "sanitizer build: the leak check at exit needs clone and ptrace";
#else
	return NULL;
#endif
}

static int fail(char *err, size_t errlen, const char *what, int rc, int nr)
{
	char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;

	snprintf(err, errlen, "%s%s%s: %s", what, name ? " " : "", name ? name : "", strerror(-rc));
	free(name);
	return -1;
}

int sandbox_enter(char *err, size_t errlen)
{
	struct builder b = {NULL, 0, -1};
	uint32_t kill = SCMP_ACT_KILL_PROCESS;
	int rc;

	/* Also what libseccomp would do on load; first, so that a kernel
	 * that refuses it is reported as such. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS)", -errno, -1);
	b.ctx = seccomp_init(kill);
	if (!b.ctx) {
		/* libseccomp offers KILL_PROCESS only after seccomp(2) said it
		 * is available.  systemd's SystemCallFilter=@system-service
		 * refuses seccomp(2) (EPERM) but allows prctl(), which
		 * libseccomp then loads the filter with.  Killing the thread
		 * kills this process all the same: it has only the one, and it
		 * dies of SIGSYS. */
		kill = SCMP_ACT_KILL_THREAD;
		b.ctx = seccomp_init(kill);
	}
	if (!b.ctx)
		return fail(err, errlen, "seccomp_init", -EINVAL, -1);
	/* The default bad-architecture action would kill the thread only. */
	rc = seccomp_attr_set(b.ctx, SCMP_FLTATR_ACT_BADARCH, kill);
	/* A binary search over the allowed calls instead of a linear scan. */
	if (rc == 0)
		rc = seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (rc != 0) {
		seccomp_release(b.ctx);
		return fail(err, errlen, "seccomp_attr_set", rc, -1);
	}
	allow_plain(&b);
	allow_sockets(&b);
	allow_files(&b);
	allow_memory(&b);
	allow_threads(&b);
	if (b.rc != 0) {
		seccomp_release(b.ctx);
		return fail(err, errlen, "seccomp_rule_add", b.rc, b.nr);
	}
	rc = seccomp_load(b.ctx);
	seccomp_release(b.ctx);
	if (rc != 0)
		return fail(err, errlen, "seccomp_load", rc, -1);
	return 0;
}
