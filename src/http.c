/*
 * http: CGI parameters → struct request, body under the cap, strict parsing,
 * and response formatting.  See http.h for the ownership rules.
 *
 * Untrusted input enters the worker only through this file (and the token
 * module for the Authorization value), so every check that does not need the
 * database is done here, before a handler runs.
 */
#include "http.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* Nesting deeper than any request we accept needs; bounds json-c's stack. */
#define JSON_MAX_DEPTH 8

static const char *param_get(char *const *params, const char *name)
{
	size_t n = strlen(name);

	for (; params && *params; params++)
		if (strncmp(*params, name, n) == 0 && (*params)[n] == '=')
			return *params + n + 1;
	return NULL;
}

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
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];

	/* The kernel's generator: one system call, where RAND_bytes() costs a
	 * DRBG round with its locks and fork check on every request. */
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw &&
	    RAND_bytes(raw, sizeof raw) != 1)
		memset(raw, 0, sizeof raw); /* still a valid id; uniqueness only */
	for (size_t i = 0; i < sizeof raw; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * sizeof raw] = '\0';
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int http_request_init(struct request *req, char *const *params)
{
	const char *uri, *q, *cl, *rid;

	memset(req, 0, sizeof *req);
	req->route_index = -1;
	req->method = dup_or_null(param_get(params, "REQUEST_METHOD"));
	uri = param_get(params, "REQUEST_URI");
	if (!uri)
		uri = param_get(params, "SCRIPT_NAME");
	if (!uri)
		uri = "/";
	q = strchr(uri, '?');
	req->path = q ? strndup(uri, (size_t)(q - uri)) : strdup(uri);
	/* QUERY_STRING is what the server decoded the URI into; prefer it. */
	req->query = dup_or_null(param_get(params, "QUERY_STRING"));
	if (!req->query)
		req->query = strdup(q ? q + 1 : "");
	req->content_type = dup_or_null(param_get(params, "CONTENT_TYPE"));
	req->authorization = dup_or_null(param_get(params, "HTTP_AUTHORIZATION"));
	req->idempotency_key = dup_or_null(param_get(params, "HTTP_IDEMPOTENCY_KEY"));
	req->remote_addr = dup_or_null(param_get(params, "REMOTE_ADDR"));
	req->x_forwarded_for = dup_or_null(param_get(params, "HTTP_X_FORWARDED_FOR"));

	cl = param_get(params, "CONTENT_LENGTH");
	if (cl && *cl) {
		req->has_content_length = true;
		req->content_length_valid = parse_u64(cl, &req->content_length) == 0;
	}

	rid = param_get(params, "HTTP_X_REQUEST_ID");
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
		/* A bearer token is a credential: do not leave it in freed memory. */
		memset(req->authorization, 0, strlen(req->authorization));
		free(req->authorization);
	}
	free(req->idempotency_key);
	free(req->remote_addr);
	free(req->x_forwarded_for);
	if (req->body) {
		/* Bodies carry passwords. */
		memset(req->body, 0, req->body_len);
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

int http_parse_id(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 19 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

bool http_content_type_is(const struct request *req, const char *type)
{
	const char *ct = req->content_type;
	size_t n = strlen(type);

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * json-c 0.16 is laxer than RFC 8259 even with JSON_TOKENER_STRICT |
 * JSON_TOKENER_VALIDATE_UTF8: it takes overlong forms, surrogates and code
 * points past U+10FFFF, NaN/Infinity, single-quoted strings and raw control
 * characters inside strings.  So the text is checked first: strict UTF-8
 * throughout, no byte below 0x20 inside a string, and outside strings only
 * the bytes the JSON grammar uses.
 *
 * Value of the four hex digits at p, or -1.
 */
static long hex4(const unsigned char *p, const unsigned char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int d = OPENSSL_hexchar2int(p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* After "\u" at p: how many bytes the escape still spans (4, or 10 for a
 * surrogate pair such as "\ud83d\ude00"), or -1 for a lone UTF-16 surrogate,
 * which json-c would store as U+FFFD, silently changing the text.  Bad hex
 * is left to json-c, which refuses it. */
static int unicode_escape_len(const unsigned char *p, const unsigned char *end)
{
	long u = hex4(p, end), low;

	if (u < 0)
		return 0;
	if (u >= 0xDC00 && u <= 0xDFFF)
		return -1;
	if (u < 0xD800 || u > 0xDBFF)
		return 4;
	if (end - p < 10 || p[4] != '\\' || p[5] != 'u')
		return -1;
	low = hex4(p + 6, end);
	return low >= 0xDC00 && low <= 0xDFFF ? 10 : -1;
}

static const char *json_prescan(const char *body, size_t n)
{
	const unsigned char *p = (const unsigned char *)body, *end = p + n;
	bool in_string = false, escaped = false;
	unsigned cp;

	while (p < end) {
		int step = utf8_decode(p, end, &cp);

		if (step < 0)
			return "request body is not valid UTF-8";
		if (in_string) {
			if (cp < 0x20)
				return "request body is not valid JSON";
			if (escaped) {
				escaped = false;
				if (cp == 'u') {
					int skip = unicode_escape_len(p + 1, end);
					if (skip < 0)
						return "request body is not valid UTF-8";
					p += skip;
				}
			} else if (cp == '\\')
				escaped = true;
			else if (cp == '"')
				in_string = false;
		} else if (cp == '"') {
			in_string = true;
		} else if (cp >= 0x80 || !strchr(" \t\r\n{}[]:,-+.0123456789eEtrufalsn", (int)cp)) {
			return "request body is not valid JSON";
		}
		p += step;
	}
	return NULL;
}

int http_parse_json_object(struct request *req, const char **detail)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error err;
	size_t end;

	if (req->body_len == 0) {
		*detail = "request body is empty";
		return -1;
	}
	/* A raw NUL would end json-c's view of the input early. */
	if (memchr(req->body, '\0', req->body_len)) {
		*detail = "request body contains a NUL byte";
		return -1;
	}
	*detail = json_prescan(req->body, req->body_len);
	if (*detail)
		return -1;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok) {
		*detail = "out of memory";
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* Length includes the terminating NUL so the tokener sees end of input. */
	obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len + 1);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || err != json_tokener_success) {
		if (obj)
			json_object_put(obj);
		*detail = err == json_tokener_error_parse_utf8_string
		              ? "request body is not valid UTF-8"
		              : "request body is not valid JSON";
		return -1;
	}
	for (; end < req->body_len; end++) {
		char c = req->body[end];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			json_object_put(obj);
			*detail = "request body has data after the JSON value";
			return -1;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		*detail = "request body must be a JSON object";
		return -1;
	}
	req->json = obj;
	return 0;
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
		memset(*out, 0, *out_len);
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
