/*
 * log: one JSON object per line on stderr (SPEC §6).
 *
 * Each line is built whole and written with a single writev(2), so lines of
 * concurrent workers sharing the web server's stderr never interleave.  Only
 * fields chosen here are logged: never a body, a header value, a password, a
 * hash or a token.  The threshold is set once at start-up.
 */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include "config.h"
#include "http.h"

void log_set_threshold(enum log_level level);

/* A start-up, database or internal event: {"ts","level","pid","event","msg"}. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line with fields of the caller's choice (audit.h's typed events): ts,
 * level and pid already in; NULL if level is below the threshold.  Emit it
 * (which frees it) with log_line_emit. */
struct json_object *log_line_start(enum log_level level);
void log_line_emit(struct json_object *line);

/* The per-request line. */
void log_request(const struct request *req, int status, uint64_t duration_ns);

/* RFC 3339 UTC with milliseconds, "2026-11-28T21:04:05.123Z" (25 bytes). */
void log_format_time(char out[32], const struct timespec *ts);

#endif
