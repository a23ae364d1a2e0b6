/*
 * chat: conversations, members and messages (SPEC §2 "Chat").
 *
 * Every handler does its database work in one prepared statement that also
 * checks the session (AUTH_SESSION_VALID) and the caller's membership, so a
 * request costs one round trip and its first columns tell a revoked session
 * (401) from a conversation the caller may not see (404, the same answer as
 * an id that does not exist) from data.  The one exception: a message sent
 * with an Idempotency-Key that races a concurrent send of the same key finds
 * nothing in its statement's snapshot and re-reads the winner's row.
 *
 * Messages are paged by keyset on (conversation_id, id).  Within a
 * conversation, ids are assigned while the conversation row is locked, so
 * they are ordered as the messages commit: a reader that polls with
 * `after` never skips a message that commits later with a smaller id.
 */
#ifndef CHAT_CHAT_H
#define CHAT_CHAT_H

#include <stddef.h>

#include "http.h"

struct worker;
struct db_statement;

const struct db_statement *chat_statements(size_t *count);

void chat_conversation_create(struct worker *w, struct request *req, struct response *res);
void chat_conversation_list(struct worker *w, struct request *req, struct response *res);
void chat_conversation_get(struct worker *w, struct request *req, struct response *res);
void chat_member_add(struct worker *w, struct request *req, struct response *res);
void chat_message_post(struct worker *w, struct request *req, struct response *res);
void chat_message_list(struct worker *w, struct request *req, struct response *res);
void chat_message_delete(struct worker *w, struct request *req, struct response *res);
void chat_read_mark(struct worker *w, struct request *req, struct response *res);
void chat_member_remove(struct worker *w, struct request *req, struct response *res);
void chat_updates(struct worker *w, struct request *req, struct response *res);

#endif
