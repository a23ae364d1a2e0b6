/*
 * serve: one FastCGI request from its parameters to its last byte out.
 *
 * The parameters become a struct request (http), the request goes through
 * the pipeline (worker_handle), the body is read from the request's input
 * stream on demand, the answer is written to its output stream, and the
 * request ends in its log line and its metrics.  main.c owns the accept
 * loop and the connection; this is everything in between, so the fuzz
 * targets (tests/fuzz/) drive exactly what a worker runs, through in-memory
 * libfcgi streams.
 */
#ifndef CHAT_SERVE_H
#define CHAT_SERVE_H

#include <stdbool.h>

#include <fcgiapp.h>

struct worker;

/* Serve one request: envp holds its "NAME=value" parameters, in and out
 * are its FastCGI streams.  Returns whether the request's whole body (if
 * it had one) was read, which decides how the connection may be closed. */
bool serve_request(struct worker *w, char **envp, FCGX_Stream *in, FCGX_Stream *out);

#endif
