/*
 * log: JSON lines on stderr.  See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

/* Write-once at start-up (log_set_threshold), read-only afterwards. */
static enum log_level threshold = LOG_LEVEL_INFO;

/* Paths are untrusted; keep a hostile one from bloating every log line. */
#define LOG_PATH_MAX 256

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return "debug";
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_WARN:
		return "warn";
	default:
		return "error";
	}
}

void log_set_threshold(enum log_level level)
{
	threshold = level;
}

void log_format_time(char out[32], const struct timespec *ts)
{
	struct tm tm;
	char base[24];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, (int)(ts->tv_nsec / 1000000) % 1000);
}

static struct json_object *line_start(enum log_level level)
{
	struct json_object *o = json_object_new_object();
	struct timespec now;
	char ts[32];

	clock_gettime(CLOCK_REALTIME, &now);
	log_format_time(ts, &now);
	HTTP_JSON_PUT(o, "ts", json_object_new_string(ts));
	HTTP_JSON_PUT(o, "level", json_object_new_string(level_name(level)));
	HTTP_JSON_PUT(o, "pid", json_object_new_int64(getpid()));
	return o;
}

static void line_emit(struct json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	struct iovec line[2] = {{(void *)s, len}, {"\n", 1}};

	/* One system call per line, whatever its length.  Best effort: a full
	 * pipe must not stop the worker. */
	if (writev(STDERR_FILENO, line, 2) < 0)
		(void)0;
	json_object_put(o);
}

struct json_object *log_line_start(enum log_level level)
{
	return level < threshold ? NULL : line_start(level);
}

void log_line_emit(struct json_object *line)
{
	if (line)
		line_emit(line);
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	struct json_object *o;
	char msg[1024];
	va_list ap;

	if (level < threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	o = line_start(level);
	HTTP_JSON_PUT(o, "event", json_object_new_string(event));
	HTTP_JSON_PUT(o, "msg", json_object_new_string(msg));
	line_emit(o);
}

void log_request(const struct request *req, int status, uint64_t duration_ns)
{
	enum log_level level = status >= 500 ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO;
	struct json_object *o;
	char ms[32];
	size_t plen;

	if (level < threshold)
		return;
	o = line_start(level);
	HTTP_JSON_PUT(o, "request_id", json_object_new_string(req->request_id));
	HTTP_JSON_PUT(o, "method", json_object_new_string(req->method ? req->method : ""));
	plen = req->path ? strlen(req->path) : 0;
	HTTP_JSON_PUT(o, "path",
	              json_object_new_string_len(req->path ? req->path : "",
	                                         (int)(plen > LOG_PATH_MAX ? LOG_PATH_MAX : plen)));
	if (req->route_name)
		HTTP_JSON_PUT(o, "route", json_object_new_string(req->route_name));
	HTTP_JSON_PUT(o, "status", json_object_new_int(status));
	/* Fixed three decimals: json-c would print %.17g noise. */
	snprintf(ms, sizeof ms, "%.3f", (double)duration_ns / 1e6);
	HTTP_JSON_PUT(o, "duration_ms", json_object_new_double_s((double)duration_ns / 1e6, ms));
	if (req->user_id > 0)
		HTTP_JSON_PUT(o, "user_id", json_object_new_int64(req->user_id));
	line_emit(o);
}
