/*
 * limit: the rate-limit policy of SPEC §3, in one place.  Which classes
 * there are and their names (metrics labels, chat-admin arguments), which
 * policy of the configuration each follows, how a request's key is derived
 * (the client address through TRUSTED_PROXIES, the user id, the lower-cased
 * email), counting a request in a class, and the RateLimit-* headers.
 *
 * The shared table and its algorithm are ratelimit.h's; this module only
 * decides what is counted where.  The worker applies a route's class before
 * the handler runs (router.c's table says which); the login handler applies
 * LIMIT_CLASS_LOGIN once it has validated the email, still before any query.
 * chat-admin derives its keys here too, so a reset names the entry the
 * workers use.
 */
#ifndef CHAT_LIMIT_H
#define CHAT_LIMIT_H

#include <stddef.h>

#include "config.h"
#include "http.h"

struct rl_table;
struct limit_cluster;

/* Class ids in the shared table: their numbers are part of the segment's
 * contents, so never renumber one. */
enum limit_class {
	LIMIT_CLASS_AUTH = 0,  /* POST /auth/register, /login, /password: client address */
	LIMIT_CLASS_CHAT = 1,  /* POST under /chat/: user id */
	LIMIT_CLASS_READ = 2,  /* GET under /chat/, GET /auth/me: user id */
	LIMIT_CLASS_LOGIN = 3, /* POST /auth/login also: lower-cased email, auth's policy */
	LIMIT_CLASSES,
	LIMIT_NONE = LIMIT_CLASSES /* a route that is not limited */
};

/* Longest key: an email is at most 254 code points of 4 bytes. */
#define LIMIT_KEY_MAX 1024

/* "auth", "chat", "read", "login"; NULL for anything else. */
const char *limit_class_name(enum limit_class c);

/* The class called name[0..len).  0, or -1 if there is none. */
int limit_class_parse(const char *name, size_t len, enum limit_class *out);

/*
 * The key of class c for this request: the client address (auth), the
 * caller's user id (chat, read) or `email` lower-cased (login).  Writes a
 * NUL-terminated key into key[0..len) and returns 0, or -1 (class without
 * keys, no email for login, key longer than len).
 */
int limit_key(enum limit_class c, const struct request *req, const struct cidr_list *trusted,
              const char *email, char *key, size_t len);

/*
 * The same key from an operator's text (chat-admin ratelimit reset
 * CLASS:TEXT): an address for auth (-1 if it is not one), an email for
 * login (lower-cased as the worker does), a user id for chat and read (as
 * given).  0, or -1.
 */
int limit_key_from_text(enum limit_class c, const char *text, char *key, size_t len);

/*
 * Count the request in class c under its policy in cfg (email: login
 * only): in the host's shared table first, then, if that admitted it and
 * cluster is not NULL (RATE_LIMIT_SCOPE=cluster), in the table every host
 * shares (limit_cluster.h).  Returns 0 if admitted by both or the class is
 * off; otherwise the answer (429; 503 if the database cannot decide; 500 if
 * the shared-memory table cannot be asked: never admit blindly) is in *res
 * and it returns -1.  Either way req keeps the tightest limit seen for the
 * RateLimit-* headers.  With cluster NULL it never touches the database;
 * a request the shared memory refuses never does.
 */
int limit_apply(struct rl_table *rl, struct limit_cluster *cluster, const struct config *cfg,
                enum limit_class c, const char *email, struct request *req, struct response *res);

/* RateLimit-Limit, -Remaining and -Reset of the tightest limit that applied
 * to the request, if any did. */
void limit_headers(const struct request *req, struct response *res);

#endif
