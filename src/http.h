/*
 * http: the edge of the worker.  Turns FastCGI/CGI parameters into a struct
 * request, reads the body under the MAX_BODY_BYTES cap, parses JSON and form
 * bodies strictly, and formats responses with the headers every answer
 * carries (SPEC §2).
 *
 * Everything here is independent of libfcgi: parameters come as an envp-style
 * array and the body through a read callback, so unit tests drive the same
 * code the worker runs.  A struct request owns every string it points to and
 * is released by http_request_free(); a struct response owns its body.
 */
#ifndef CHAT_HTTP_H
#define CHAT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define HTTP_REQUEST_ID_MAX 128
#define HTTP_MAX_PATH_IDS   2
#define HTTP_MAX_EVENTS     4

/* A security event noted while a request is handled (audit.h), logged and
 * counted once the answer is known.  Strings are fixed words, never input. */
struct request_event {
	int event;            /* enum audit_event */
	const char *reason;   /* NULL or a fixed word */
	const char *rl_class; /* rate_limited: the class */
	const char *key_kind; /* rate_limited: "address", "user" or "email" */
	int64_t user_id;      /* the account concerned, 0: the caller's (if known) */
	int64_t count;        /* sessions_revoked: how many; 0 if not counted */
};

/* Reads up to n bytes of body; returns bytes read, 0 at end of input, -1 on
 * error.  May return fewer bytes than asked. */
typedef ssize_t (*http_read_fn)(void *ctx, char *buf, size_t n);

struct request {
	char *method;
	char *path;  /* REQUEST_URI up to '?' */
	char *query; /* after '?', "" if none */
	char *content_type;
	char *authorization;
	char *idempotency_key;
	char *remote_addr;
	char *x_forwarded_for;
	bool has_content_length;
	uint64_t content_length;
	bool content_length_valid;

	char request_id[HTTP_REQUEST_ID_MAX + 1];
	int64_t path_ids[HTTP_MAX_PATH_IDS];

	char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
	struct json_object *json; /* parsed JSON body, owned */

	int64_t user_id;     /* 0 until a token names the caller */
	char session_id[65]; /* the token's jti, "" until verified */
	const char *route_name;
	int route_index; /* in the route table, -1 if none matched */

	/* The tightest rate limit that applied, for the RateLimit-* headers. */
	bool limited;
	uint32_t limit;
	uint32_t limit_remaining;
	uint32_t limit_reset_s;

	struct request_event events[HTTP_MAX_EVENTS];
	size_t nevents;
};

struct response {
	int status;
	struct json_object *json; /* owned; NULL for no body */
	char *text;               /* owned raw body (e.g. metrics), used if json NULL */
	size_t text_len;
	const char *content_type; /* NULL: application/json */
	char extra_headers[1024]; /* "Name: value\r\n" lines */
	size_t extra_len;
};

enum http_body_status {
	HTTP_BODY_OK = 0,
	HTTP_BODY_TOO_LARGE,  /* 413: CONTENT_LENGTH over the cap, nothing read */
	HTTP_BODY_INCOMPLETE, /* 400: fewer bytes than CONTENT_LENGTH arrived */
	HTTP_BODY_BAD_LENGTH, /* 400: CONTENT_LENGTH not a decimal number */
	HTTP_BODY_READ_ERROR, /* 400 */
};

/* Fill req from CGI parameters (NULL-terminated "NAME=value" array). */
int http_request_init(struct request *req, char *const *params);
void http_request_free(struct request *req);

/* Decide from CONTENT_LENGTH alone whether the body fits; read nothing. */
enum http_body_status http_check_length(const struct request *req, size_t max_body);

/* Read exactly CONTENT_LENGTH bytes (after http_check_length said OK). */
enum http_body_status http_read_body(struct request *req, size_t max_body, http_read_fn read_fn,
                                     void *ctx);

/* Whether the request's input is all read: it declared no body, or
 * http_read_body() read every byte it declared. */
bool http_body_read_whole(const struct request *req);

/* Is the request's media type `type` (case-insensitive, parameters ignored)? */
bool http_content_type_is(const struct request *req, const char *type);

/* Parse the body as one strict JSON object into req->json.  Returns 0, or -1
 * with *detail set to a static human-readable reason (400 bad_request). */
int http_parse_json_object(struct request *req, const char **detail);

/*
 * application/x-www-form-urlencoded lookup (query strings and login form):
 * find `name` in `data`, percent-decode it into a malloc'd NUL-terminated
 * string.  Returns 1 found, 0 absent, -1 malformed (bad escape, embedded NUL,
 * or the name given twice).
 */
int http_form_get(const char *data, size_t len, const char *name, char **out, size_t *out_len);

/*
 * Add v to the JSON object o under the key k, which must be a string
 * literal ("" k "" refuses anything else) not yet in o: json-c then keeps
 * the pointer instead of a copy and skips its duplicate lookup, two of the
 * allocations and searches per field when a page builds 300 of them.
 */
#define HTTP_JSON_PUT(o, k, v)                                                                     \
	json_object_object_add_ex((o), "" k "", (v),                                               \
	                          JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY)

/* Responses. */
void http_response_init(struct response *res);
void http_response_free(struct response *res);
void http_set_json(struct response *res, int status, struct json_object *body);
void http_add_header(struct response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The error envelope {"error","detail"[,"field"]}. field may be NULL. */
void http_error(struct response *res, int status, const char *code, const char *detail,
                const char *field);

/* Serialise status line, headers and body as a FastCGI/CGI response into a
 * malloc'd buffer. */
int http_format_response(const struct request *req, const struct response *res, char **out,
                         size_t *out_len);

const char *http_status_text(int status);

#endif
