/*
 * http: CGI parameters → struct request, body under the cap, strict parsing,
 * and response formatting.  See http.h for the ownership rules.
 *
 * Untrusted input enters the worker only through this file (and the token
 * module for the Authorization value), so every check that does not need the
 * database is done here, before a handler runs.
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "jsonin.h"
#include "util.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool request_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > HTTP_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static void request_id_generate(char out[HTTP_REQUEST_ID_MAX + 1])
{
	unsigned char raw[16];

	/* The kernel's generator: one system call, where RAND_bytes() costs a
	 * DRBG round with its locks and fork check on every request. */
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw &&
	    RAND_bytes(raw, sizeof raw) != 1)
		memset(raw, 0, sizeof raw); /* still a valid id; uniqueness only */
	util_hex(raw, sizeof raw, out);
}

int http_request_init(struct request *req, char *const *params)
{
	const char *uri, *q, *cl, *rid;

	memset(req, 0, sizeof *req);
	req->route_index = -1;
	req->method = dup_or_null(util_env_get(params, "REQUEST_METHOD"));
	uri = util_env_get(params, "REQUEST_URI");
	if (!uri)
		uri = util_env_get(params, "SCRIPT_NAME");
	if (!uri)
		uri = "/";
	q = strchr(uri, '?');
	req->path = q ? strndup(uri, (size_t)(q - uri)) : strdup(uri);
	/* QUERY_STRING is what the server decoded the URI into; prefer it. */
	req->query = dup_or_null(util_env_get(params, "QUERY_STRING"));
	if (!req->query)
		req->query = strdup(q ? q + 1 : "");
	req->content_type = dup_or_null(util_env_get(params, "CONTENT_TYPE"));
	req->authorization = dup_or_null(util_env_get(params, "HTTP_AUTHORIZATION"));
	req->idempotency_key = dup_or_null(util_env_get(params, "HTTP_IDEMPOTENCY_KEY"));
	req->remote_addr = dup_or_null(util_env_get(params, "REMOTE_ADDR"));
	req->x_forwarded_for = dup_or_null(util_env_get(params, "HTTP_X_FORWARDED_FOR"));

	cl = util_env_get(params, "CONTENT_LENGTH");
	if (cl && *cl) {
		req->has_content_length = true;
		req->content_length_valid =
		    util_parse_u64(cl, strlen(cl), UINT64_MAX, &req->content_length) == 0;
	}

	rid = util_env_get(params, "HTTP_X_REQUEST_ID");
	if (rid && request_id_valid(rid))
		memcpy(req->request_id, rid, strlen(rid) + 1);
	else
		request_id_generate(req->request_id);

	if (!req->method)
		req->method = strdup("GET");
	if (!req->method || !req->path || !req->query)
		return -1;
	return 0;
}

void http_request_free(struct request *req)
{
	free(req->method);
	free(req->path);
	free(req->query);
	free(req->content_type);
	if (req->authorization) {
		/* A bearer token is a credential: do not leave it in freed
		 * memory (OPENSSL_cleanse: a compiler may drop a memset right
		 * before free). */
		OPENSSL_cleanse(req->authorization, strlen(req->authorization));
		free(req->authorization);
	}
	free(req->idempotency_key);
	free(req->remote_addr);
	free(req->x_forwarded_for);
	if (req->body) {
		/* Bodies carry passwords. */
		OPENSSL_cleanse(req->body, req->body_len);
		free(req->body);
	}
	if (req->json)
		json_object_put(req->json);
	memset(req, 0, sizeof *req);
}

enum http_body_status http_check_length(const struct request *req, size_t max_body)
{
	if (!req->has_content_length)
		return HTTP_BODY_OK;
	if (!req->content_length_valid)
		return HTTP_BODY_BAD_LENGTH;
	if (req->content_length > max_body)
		return HTTP_BODY_TOO_LARGE;
	return HTTP_BODY_OK;
}

enum http_body_status http_read_body(struct request *req, size_t max_body, http_read_fn read_fn,
                                     void *ctx)
{
	enum http_body_status st = http_check_length(req, max_body);
	size_t want, got = 0;

	if (st != HTTP_BODY_OK)
		return st;
	want = req->has_content_length ? (size_t)req->content_length : 0;
	req->body = malloc(want + 1);
	if (!req->body)
		return HTTP_BODY_READ_ERROR;
	/* libfcgi may hand out the body in pieces: loop until all of it. */
	while (got < want) {
		ssize_t n = read_fn(ctx, req->body + got, want - got);
		if (n < 0) {
			req->body_len = got;
			return HTTP_BODY_READ_ERROR;
		}
		if (n == 0) {
			req->body_len = got;
			return HTTP_BODY_INCOMPLETE;
		}
		got += (size_t)n;
	}
	req->body[got] = '\0';
	req->body_len = got;
	return HTTP_BODY_OK;
}

bool http_body_read_whole(const struct request *req)
{
	return !req->has_content_length || req->content_length == 0 ||
	       (req->body && req->body_len == req->content_length);
}

bool http_content_type_is(const struct request *req, const char *type)
{
	const char *ct = req->content_type;
	size_t n = strlen(type);

	if (!ct)
		return false;
	while (util_is_ows(*ct))
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return false;
	ct += n;
	while (util_is_ows(*ct))
		ct++;
	return *ct == '\0' || *ct == ';';
}

int http_parse_json_object(struct request *req, const char **detail)
{
	switch (jsonin_parse_object(req->body, req->body_len, &req->json)) {
	case JSONIN_OK:
		*detail = NULL;
		return 0;
	case JSONIN_EMPTY:
		*detail = "request body is empty";
		break;
	case JSONIN_NUL:
		*detail = "request body contains a NUL byte";
		break;
	case JSONIN_NOT_UTF8:
		*detail = "request body is not valid UTF-8";
		break;
	case JSONIN_TRAILING:
		*detail = "request body has data after the JSON value";
		break;
	case JSONIN_NOT_OBJECT:
		*detail = "request body must be a JSON object";
		break;
	case JSONIN_NO_MEMORY:
		*detail = "out of memory";
		break;
	default:
		*detail = "request body is not valid JSON";
		break;
	}
	return -1;
}

/* Percent-decode (and '+' → space) src[0..n) into a new string. */
static char *form_decode(const char *src, size_t n, size_t *out_len)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (src[i] == '+') {
			out[o++] = ' ';
		} else if (src[i] == '%') {
			int hi, lo;
			if (i + 2 >= n) {
				free(out);
				return NULL;
			}
			hi = OPENSSL_hexchar2int((unsigned char)src[i + 1]);
			lo = OPENSSL_hexchar2int((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (src[i] == '\0') {
			/* Raw or escaped, a NUL would cut the C string a handler
			 * passes on. */
			free(out);
			return NULL;
		} else {
			out[o++] = src[i];
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

int http_form_get(const char *data, size_t len, const char *name, char **out, size_t *out_len)
{
	size_t name_len = strlen(name);
	const char *p = data, *end = data + len;
	int found = 0;

	*out = NULL;
	*out_len = 0;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *key_end = eq ? eq : pair_end;
		size_t key_len;
		char *key = form_decode(p, (size_t)(key_end - p), &key_len);

		if (!key)
			goto malformed;
		if (key_len == name_len && memcmp(key, name, name_len) == 0) {
			const char *v = eq ? eq + 1 : pair_end;
			free(key);
			if (found)
				goto malformed; /* a name given twice is ambiguous */
			*out = form_decode(v, (size_t)(pair_end - v), out_len);
			if (!*out)
				goto malformed;
			found = 1;
		} else {
			free(key);
		}
		p = amp ? amp + 1 : end;
	}
	return found;
malformed:
	if (*out) {
		OPENSSL_cleanse(*out, *out_len);
		free(*out);
	}
	*out = NULL;
	*out_len = 0;
	return -1;
}

void http_response_init(struct response *res)
{
	memset(res, 0, sizeof *res);
	res->status = 500;
}

void http_response_free(struct response *res)
{
	if (res->json)
		json_object_put(res->json);
	free(res->text);
	memset(res, 0, sizeof *res);
}

void http_set_json(struct response *res, int status, struct json_object *body)
{
	if (res->json)
		json_object_put(res->json);
	res->status = status;
	res->json = body;
}

void http_add_header(struct response *res, const char *name, const char *fmt, ...)
{
	size_t room = sizeof res->extra_headers - res->extra_len;
	va_list ap;
	int n, m;

	n = snprintf(res->extra_headers + res->extra_len, room, "%s: ", name);
	if (n < 0 || (size_t)n >= room)
		goto overflow;
	va_start(ap, fmt);
	m = vsnprintf(res->extra_headers + res->extra_len + n, room - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m + 2) >= room)
		goto overflow;
	memcpy(res->extra_headers + res->extra_len + n + m, "\r\n", 3);
	res->extra_len += (size_t)(n + m + 2);
	return;
overflow:
	/* Our own header values are short; never emit half a header. */
	res->extra_headers[res->extra_len] = '\0';
}

void http_error(struct response *res, int status, const char *code, const char *detail,
                const char *field)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "error", json_object_new_string(code));
	HTTP_JSON_PUT(o, "detail", json_object_new_string(detail));
	if (field)
		HTTP_JSON_PUT(o, "field", json_object_new_string(field));
	http_set_json(res, status, o);
}

const char *http_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

int http_format_response(const struct request *req, const struct response *res, char **out,
                         size_t *out_len)
{
	const char *body = NULL;
	size_t body_len = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (res->json) {
		body = json_object_to_json_string_length(
		    res->json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &body_len);
	} else if (res->text) {
		body = res->text;
		body_len = res->text_len;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		return -1;
	fprintf(f, "Status: %d %s\r\n", res->status, http_status_text(res->status));
	if (body)
		fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		        res->content_type ? res->content_type : "application/json", body_len);
	fprintf(f,
	        "X-Request-ID: %s\r\n"
	        "X-Content-Type-Options: nosniff\r\n"
	        "Cache-Control: no-store\r\n",
	        req->request_id);
	fwrite(res->extra_headers, 1, res->extra_len, f);
	fputs("\r\n", f);
	if (body)
		fwrite(body, 1, body_len, f);
	if (fclose(f) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = len;
	return 0;
}
