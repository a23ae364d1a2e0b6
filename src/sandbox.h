/*
 * sandbox: the worker's seccomp-bpf allow-list, installed once start-up is
 * done (configuration read, shared segment mapped, dummy hash computed) and
 * before the first request is accepted.
 *
 * Allowed afterwards: what serving a request needs (accept on fd 0, reads
 * and writes, poll, the log's writev, getrandom, the clock, memory for
 * malloc and scrypt) and what a database (re)connect needs, because the
 * connection is opened lazily and reopened after PostgreSQL restarts:
 * TCP/UDP/Unix sockets and connect (name resolution included), and files
 * opened read-only (/etc/hosts, the CA file, openssl.cnf, /dev/urandom).
 * Anything else (exec, fork, ptrace, opening a file for writing, other
 * socket families, ...) kills the whole process with SIGSYS; the kernel
 * logs the system call (audit type 1326).  sandbox.c lists every entry and
 * why.  The same call also sets no_new_privs.
 */
#ifndef CHAT_SANDBOX_H
#define CHAT_SANDBOX_H

#include <stddef.h>

/*
 * Why this build must not install the filter, or NULL when it can.
 * Sanitizer builds: LeakSanitizer checks for leaks at exit from a thread it
 * clone()s and that ptrace()s the process, which the filter forbids.
 */
const char *sandbox_unavailable(void);

/*
 * Set no_new_privs and load the filter into the calling process, for good:
 * it is inherited by any child and cannot be removed.  Returns 0, or -1
 * with the reason in err (e.g. a kernel without seccomp).  Not reversible:
 * tests call it in a child they fork for the purpose.
 */
int sandbox_enter(char *err, size_t errlen);

#endif
