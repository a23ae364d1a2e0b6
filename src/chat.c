/*
 * chat: conversations, members, messages.  See chat.h.
 *
 * Each statement starts from the session check (AUTH_SESSION_VALID: $1 is
 * the session id, $2 the caller's user id) and joins the membership check
 * and the data to it, so its first columns say "session valid" and "caller
 * is a member" and the handler answers 401, 404 or the data from one result.
 */
#include "chat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "fields.h"
#include "log.h"
#include "reply.h"
#include "worker.h"

enum {
	SQL_CONVERSATION_CREATE,
	SQL_CONVERSATION_LIST,
	SQL_CONVERSATION_GET,
	SQL_MEMBER_ADD,
	SQL_MESSAGE_POST,
	SQL_MESSAGE_POST_KEYED,
	SQL_MESSAGE_BY_KEY,
	SQL_MESSAGES_BEFORE,
	SQL_MESSAGES_AFTER,
	SQL_UPDATES,
	SQL_READ_MARK,
	SQL_MEMBER_REMOVE,
	SQL_MESSAGE_DELETE,
};

/* SQL reads best as SQL: the statement table keeps its own layout. */
// clang-format off

/* The five columns of a conversation object, in conversation_json() order. */
#define CONVERSATION_COLUMNS(c) \
	c ".id, " c ".title, " c ".owner_id, " \
	SQL_TIMESTAMP(c ".created_at") ", " SQL_TIMESTAMP(c ".last_message_at")

/* Is the caller ($2) a member of the conversation whose id is `conv`? */
#define IS_MEMBER(conv) \
	"EXISTS (SELECT 1 FROM members me" \
	" WHERE me.conversation_id = " conv " AND me.user_id = $2::bigint)"

/* A page of the messages of conversation $3 joined to the session and the
 * membership checks: columns ok, member, then id, sender_id, sender_name,
 * body, created_at (NULL when the page is empty).  `page` is the keyset
 * condition, order and limit. */
#define MESSAGES_PAGE(page) \
	"SELECT a.ok, mb.ok, x.id, x.sender_id, u.display_name, x.body, " \
	SQL_TIMESTAMP("x.created_at") \
	" FROM (SELECT " AUTH_SESSION_VALID " AS ok) a" \
	" LEFT JOIN LATERAL (SELECT true AS ok FROM members me" \
	"  WHERE me.conversation_id = $3::bigint AND me.user_id = $2::bigint) mb ON a.ok" \
	" LEFT JOIN LATERAL (SELECT m.id, m.sender_id, m.body, m.created_at" \
	"  FROM messages m WHERE m.conversation_id = $3::bigint AND " page ") x ON mb.ok" \
	" LEFT JOIN users u ON u.id = x.sender_id" \
	" ORDER BY x.id"

/* The activity stamp of a change a member's poll must report: the id of
 * the writing transaction.  A poll answers the changes stamped at or above
 * its cursor and returns as the next cursor the oldest transaction still
 * running at its snapshot (pg_snapshot_xmin): every change that snapshot
 * could not see is stamped at or above it, so a poll never misses a change
 * that commits late; it may repeat one (docs/CHAT.md "Updates"). */
#define ACTIVITY_NOW "pg_current_xact_id()::text::bigint"

/* The conversation row $3 locked for a change that depends on its member
 * list (a send, adding or removing a member), as the CTE "conv" with the
 * given columns.  `snap` is a CTE with the row's members_version as the
 * statement's snapshot saw it; every membership change moves it under this
 * same lock (`cond`: further conditions, each followed by AND), so when
 * the locked (newest) row carries another version, a
 * membership change committed after the snapshot: conv is then empty and
 * the statement changes nothing; the handler runs it again (run_settled). */
#define CONV_LOCKED(cols, from, cond) \
	" conv AS MATERIALIZED (SELECT " cols " FROM conversations c, " from \
	"  WHERE " cond "c.id = $3::bigint AND c.members_version = snap.members_version" \
	"  FOR NO KEY UPDATE OF c),"

/* A message send to conversation $3 by $2: `insert` defines the CTE "ins"
 * (and what it needs) and `result` the message row to answer with.
 *
 * The conversation row is locked first (FOR NO KEY UPDATE: member inserts,
 * whose foreign key takes KEY SHARE, are not blocked) and the message id
 * and seq are drawn under that lock, so within a conversation ids follow
 * commit order.  The conversation's last_message_at, last_message_id,
 * message_count and activity move in the same statement, and every member
 * row gets the activity stamp (the sender's read marker moves to the new
 * message: one's own message is read).  Columns: ok, member, settled,
 * created, id, sender_name, body, created_at. */
#define MESSAGE_SEND(insert, result) \
	"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok)," \
	" snap AS MATERIALIZED (SELECT s.members_version FROM conversations s, a" \
	"  WHERE a.ok AND s.id = $3::bigint AND " IS_MEMBER("s.id") ")," \
	CONV_LOCKED("c.id, c.message_count", "snap", "") \
	insert \
	" upd AS (UPDATE conversations c SET last_message_at = ins.created_at," \
	"  last_message_id = ins.id, message_count = ins.seq," \
	"  activity = nextval('conversation_activity') FROM ins WHERE c.id = $3::bigint)," \
	" fan AS (UPDATE members f SET activity = " ACTIVITY_NOW "," \
	"  last_read_id = CASE WHEN f.user_id = $2::bigint THEN ins.id ELSE f.last_read_id END," \
	"  read_seq = CASE WHEN f.user_id = $2::bigint THEN ins.seq ELSE f.read_seq END" \
	"  FROM ins WHERE f.conversation_id = $3::bigint)" \
	" SELECT a.ok, EXISTS (SELECT 1 FROM snap), EXISTS (SELECT 1 FROM conv)," \
	"  r.created, r.id, u.display_name, r.body, " SQL_TIMESTAMP("r.created_at") \
	" FROM a LEFT JOIN (" result ") r ON true" \
	" LEFT JOIN users u ON u.id = $2::bigint"

static const struct db_statement statements[] = {
	/* $3 title, $4 member emails (a JSON array).  The conversation is
	 * inserted only when every email is known, so an unknown one leaves
	 * nothing behind; column 2 is the 1-based position of the first.
	 * Then one row per member, owner first, stamped (activity) so that the
	 * members' next GET /chat/updates reports the new conversation. */
	[SQL_CONVERSATION_CREATE] = {"chat_conversation_create",
		"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok),"
		" wanted AS MATERIALIZED (SELECT e.email, e.ord FROM a,"
		"  json_array_elements_text($4::json) WITH ORDINALITY AS e(email, ord) WHERE a.ok),"
		" found AS MATERIALIZED (SELECT w.ord, u.id FROM wanted w"
		"  LEFT JOIN users u ON lower(u.email) = lower(w.email)),"
		" conv AS (INSERT INTO conversations AS c (title, owner_id)"
		"  SELECT $3, $2::bigint FROM a"
		"  WHERE a.ok AND NOT EXISTS (SELECT 1 FROM found WHERE id IS NULL)"
		"  RETURNING c.id, c.title, c.owner_id, c.created_at, c.last_message_at),"
		" mem AS (INSERT INTO members AS m (conversation_id, user_id, role, activity)"
		"  SELECT conv.id, $2::bigint, 'owner', " ACTIVITY_NOW " FROM conv"
		"  UNION SELECT conv.id, f.id, 'member', " ACTIVITY_NOW
		"  FROM conv, found f WHERE f.id <> $2::bigint"
		"  RETURNING m.user_id, m.role)"
		" SELECT a.ok, (SELECT min(ord) FROM found WHERE id IS NULL), "
		CONVERSATION_COLUMNS("conv") ", mem.user_id, u.display_name, mem.role"
		" FROM a LEFT JOIN conv ON true LEFT JOIN mem ON true"
		" LEFT JOIN users u ON u.id = mem.user_id"
		" ORDER BY mem.role <> 'owner', mem.user_id",
		false},

	/* $3 activity cursor (exclusive), $4 page size + 1 (the extra row says
	 * another page follows).  From the caller's memberships (members_user)
	 * to the conversations, most recent activity first, each with the
	 * caller's read marker and unread count (message_count - read_seq: no
	 * message is read). */
	[SQL_CONVERSATION_LIST] = {"chat_conversation_list",
		"SELECT a.ok, " CONVERSATION_COLUMNS("x") ", x.activity,"
		" x.last_message_id, r.last_read_id, greatest(x.message_count - r.read_seq, 0)"
		" FROM (SELECT " AUTH_SESSION_VALID " AS ok) a"
		" LEFT JOIN LATERAL (SELECT c.id, c.title, c.owner_id, c.created_at,"
		"  c.last_message_at, c.activity, c.last_message_id, c.message_count"
		"  FROM members m JOIN conversations c ON c.id = m.conversation_id"
		"  WHERE m.user_id = $2::bigint AND c.activity < $3::bigint"
		"  ORDER BY c.activity DESC LIMIT $4::int) x ON a.ok"
		/* The read state of the page's rows only: the page is chosen from
		 * the index-only scan of members_user, then one members_pkey
		 * probe per row. */
		" LEFT JOIN members r ON r.conversation_id = x.id AND r.user_id = $2::bigint"
		" ORDER BY x.activity DESC",
		true},

	/* $3 conversation: one row per member, in the order they joined. */
	[SQL_CONVERSATION_GET] = {"chat_conversation_get",
		"SELECT a.ok, " CONVERSATION_COLUMNS("c") ", m.user_id, u.display_name, m.role"
		" FROM (SELECT " AUTH_SESSION_VALID " AS ok) a"
		" LEFT JOIN LATERAL (SELECT c.* FROM conversations c"
		"  WHERE c.id = $3::bigint AND " IS_MEMBER("c.id") ") c ON a.ok"
		" LEFT JOIN members m ON m.conversation_id = c.id"
		" LEFT JOIN users u ON u.id = m.user_id"
		" ORDER BY m.joined_at, m.role <> 'owner', m.user_id",
		true},

	/* $3 conversation, $4 email.  Columns: ok, member, owner, the user's
	 * id and name (NULL: unknown email), added, role, settled.  Only the
	 * owner inserts, under the conversation's row lock (CONV_LOCKED), and
	 * moves members_version; the new member's read marker starts at the
	 * newest message (history is readable, not unread).  A concurrent add
	 * of the same user conflicts and reports "already a member". */
	[SQL_MEMBER_ADD] = {"chat_member_add",
		"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok),"
		" snap AS MATERIALIZED (SELECT c.id, c.owner_id, c.members_version FROM conversations c, a"
		"  WHERE a.ok AND c.id = $3::bigint AND " IS_MEMBER("c.id") "),"
		" t AS MATERIALIZED (SELECT u.id, u.display_name FROM users u, snap"
		"  WHERE snap.owner_id = $2::bigint AND lower(u.email) = lower($4)),"
		" old AS MATERIALIZED (SELECT m.user_id, m.role FROM members m, t"
		"  WHERE m.conversation_id = $3::bigint AND m.user_id = t.id),"
		CONV_LOCKED("c.id, c.last_message_id, c.message_count", "snap, t",
		            "NOT EXISTS (SELECT 1 FROM old) AND ")
		" ins AS (INSERT INTO members AS m (conversation_id, user_id, role,"
		"  last_read_id, read_seq, activity)"
		"  SELECT conv.id, t.id, 'member', coalesce(conv.last_message_id, 0), conv.message_count, "
		ACTIVITY_NOW " FROM conv, t"
		"  ON CONFLICT (conversation_id, user_id) DO NOTHING RETURNING m.user_id),"
		" ver AS (UPDATE conversations c SET members_version = c.members_version + 1"
		"  FROM ins WHERE c.id = $3::bigint)"
		" SELECT a.ok, snap.id IS NOT NULL, snap.owner_id = $2::bigint, t.id, t.display_name,"
		"  EXISTS (SELECT 1 FROM ins), coalesce(old.role, 'member'),"
		"  t.id IS NULL OR old.user_id IS NOT NULL OR EXISTS (SELECT 1 FROM conv)"
		" FROM a LEFT JOIN snap ON true LEFT JOIN t ON true LEFT JOIN old ON true",
		false},

	/* $3 conversation, $4 body.  Columns: ok, member, created, id,
	 * sender_name, body, created_at (see MESSAGE_SEND). */
	[SQL_MESSAGE_POST] = {"chat_message_post",
		MESSAGE_SEND(
		" ins AS (INSERT INTO messages AS m (conversation_id, sender_id, body, seq)"
		"  SELECT conv.id, $2::bigint, $4, conv.message_count + 1 FROM conv"
		"  RETURNING m.id, m.body, m.created_at, m.seq),",
		"SELECT true AS created, id, body, created_at FROM ins"),
		false},

	/* The same with $5, an Idempotency-Key.  A key stored before this
	 * statement began is answered from its snapshot ("old", created false);
	 * a key stored concurrently is caught by ON CONFLICT on
	 * messages_idempotency and yields no message at all, since this
	 * snapshot cannot see the winner: the caller re-reads it with
	 * SQL_MESSAGE_BY_KEY.  A statement of its own, so that the common send
	 * without a key pays for no key lookup and no ON CONFLICT arbiter. */
	[SQL_MESSAGE_POST_KEYED] = {"chat_message_post_keyed",
		MESSAGE_SEND(
		" old AS MATERIALIZED (SELECT m.id, m.body, m.created_at FROM messages m, conv"
		"  WHERE m.conversation_id = conv.id AND m.sender_id = $2::bigint"
		"  AND m.idempotency_key = $5),"
		" ins AS (INSERT INTO messages AS m (conversation_id, sender_id, body, idempotency_key, seq)"
		"  SELECT conv.id, $2::bigint, $4, $5, conv.message_count + 1 FROM conv"
		"  WHERE NOT EXISTS (SELECT 1 FROM old)"
		"  ON CONFLICT (conversation_id, sender_id, idempotency_key)"
		"  WHERE idempotency_key IS NOT NULL DO NOTHING"
		"  RETURNING m.id, m.body, m.created_at, m.seq),",
		"SELECT true AS created, id, body, created_at FROM ins"
		" UNION ALL SELECT false, id, body, created_at FROM old"),
		false},

	/* $1 conversation, $2 sender, $3 key: the concurrent winner's message
	 * (id, sender_name, body, created_at). */
	[SQL_MESSAGE_BY_KEY] = {"chat_message_by_key",
		"SELECT m.id, u.display_name, m.body, " SQL_TIMESTAMP("m.created_at")
		" FROM messages m JOIN users u ON u.id = m.sender_id"
		" WHERE m.conversation_id = $1::bigint AND m.sender_id = $2::bigint"
		" AND m.idempotency_key = $3",
		true},

	/* $3 conversation, $4 before (exclusive), $5 limit: the last `limit`
	 * below `before`, read backwards on the primary key, sent ascending. */
	[SQL_MESSAGES_BEFORE] = {"chat_messages_before",
		MESSAGES_PAGE("m.id < $4::bigint ORDER BY m.id DESC LIMIT $5::int"),
		true},

	/* $3 conversation, $4 after, $5 before (both exclusive), $6 limit. */
	[SQL_MESSAGES_AFTER] = {"chat_messages_after",
		MESSAGES_PAGE("m.id > $4::bigint AND m.id < $5::bigint ORDER BY m.id LIMIT $6::int"),
		true},

	/* $3 cursor: the caller's conversations whose activity stamp is at or
	 * above it (one range of members_updates; nothing changed: one probe
	 * that finds nothing), and the memberships that ended since
	 * (member_removals_updates), unless the caller is a member again.
	 * Columns: ok, next cursor, removed, the conversation's five columns,
	 * last_message_id, last_read_id, unread, conversation id.  unread is
	 * message_count - read_seq: no message is counted. */
	[SQL_UPDATES] = {"chat_updates",
		"SELECT a.ok, pg_snapshot_xmin(pg_current_snapshot())::text::bigint, x.removed, "
		CONVERSATION_COLUMNS("c") ", c.last_message_id, x.last_read_id,"
		" greatest(c.message_count - x.read_seq, 0), x.conversation_id"
		" FROM (SELECT " AUTH_SESSION_VALID " AS ok) a"
		" LEFT JOIN LATERAL (SELECT m.conversation_id, m.activity, false AS removed,"
		"  m.last_read_id, m.read_seq"
		"  FROM members m WHERE m.user_id = $2::bigint AND m.activity >= $3::bigint"
		"  UNION ALL SELECT r.conversation_id, r.activity, true, NULL, NULL"
		"  FROM member_removals r WHERE r.user_id = $2::bigint AND r.activity >= $3::bigint"
		"  AND NOT EXISTS (SELECT 1 FROM members m2"
		"   WHERE m2.conversation_id = r.conversation_id AND m2.user_id = $2::bigint)) x ON a.ok"
		" LEFT JOIN conversations c ON c.id = x.conversation_id AND NOT x.removed"
		" ORDER BY x.activity, x.conversation_id",
		true},

	/* $3 conversation, $4 message id: the caller's read marker moves to
	 * the newest message of the conversation at or below $4, never back;
	 * a mark that moves nothing writes nothing.  One backward probe of
	 * messages_pkey.  Columns: ok, member, last_read_id, unread. */
	[SQL_READ_MARK] = {"chat_read_mark",
		"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok),"
		" me AS MATERIALIZED (SELECT m.last_read_id, m.read_seq FROM members m, a"
		"  WHERE a.ok AND m.conversation_id = $3::bigint AND m.user_id = $2::bigint),"
		" mark AS MATERIALIZED (SELECT x.id, x.seq FROM messages x, me"
		"  WHERE x.conversation_id = $3::bigint AND x.id <= $4::bigint"
		"  AND x.id > me.last_read_id ORDER BY x.id DESC LIMIT 1),"
		" upd AS (UPDATE members m SET last_read_id = greatest(m.last_read_id, mark.id),"
		"  read_seq = greatest(m.read_seq, mark.seq), activity = " ACTIVITY_NOW
		"  FROM mark WHERE m.conversation_id = $3::bigint AND m.user_id = $2::bigint"
		"  RETURNING m.last_read_id, m.read_seq)"
		" SELECT a.ok, me.last_read_id IS NOT NULL, coalesce(upd.last_read_id, me.last_read_id),"
		"  greatest(c.message_count - coalesce(upd.read_seq, me.read_seq), 0)"
		" FROM a LEFT JOIN me ON true LEFT JOIN upd ON true"
		" LEFT JOIN conversations c ON c.id = $3::bigint AND me.last_read_id IS NOT NULL",
		false},

	/* $3 conversation, $4 the user to remove: the owner removes anyone, a
	 * member removes only themself (leaving).  Under the conversation's
	 * row lock (CONV_LOCKED): the member row goes, members_version moves,
	 * the end is recorded in member_removals with the newest message id
	 * (the ordering witness: no send of this user lands after it), and
	 * when the owner leaves, the member who joined first becomes owner (no
	 * one left: the conversation stays, memberless).  Columns: ok, member,
	 * allowed, target is a member, settled. */
	[SQL_MEMBER_REMOVE] = {"chat_member_remove",
		"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok),"
		" snap AS MATERIALIZED (SELECT c.owner_id, c.members_version FROM conversations c, a"
		"  WHERE a.ok AND c.id = $3::bigint AND " IS_MEMBER("c.id") "),"
		" t AS MATERIALIZED (SELECT m.user_id, m.role FROM members m, snap"
		"  WHERE (snap.owner_id = $2::bigint OR $4::bigint = $2::bigint)"
		"  AND m.conversation_id = $3::bigint AND m.user_id = $4::bigint),"
		CONV_LOCKED("c.id, c.last_message_id", "snap, t", "")
		" del AS (DELETE FROM members m USING conv"
		"  WHERE m.conversation_id = $3::bigint AND m.user_id = $4::bigint),"
		" heir AS MATERIALIZED (SELECT h.user_id FROM members h, conv, t"
		"  WHERE t.role = 'owner' AND h.conversation_id = $3::bigint AND h.user_id <> $4::bigint"
		"  ORDER BY h.joined_at, h.user_id LIMIT 1),"
		" promote AS (UPDATE members m SET role = 'owner', activity = " ACTIVITY_NOW
		"  FROM heir WHERE m.conversation_id = $3::bigint AND m.user_id = heir.user_id),"
		" ver AS (UPDATE conversations c SET members_version = c.members_version + 1,"
		"  owner_id = coalesce((SELECT user_id FROM heir), c.owner_id)"
		"  FROM conv WHERE c.id = $3::bigint),"
		" gone AS (INSERT INTO member_removals AS r"
		"  (user_id, conversation_id, activity, last_message_id, removed_by)"
		"  SELECT $4::bigint, conv.id, " ACTIVITY_NOW ", conv.last_message_id, $2::bigint FROM conv"
		"  ON CONFLICT (user_id, conversation_id) DO UPDATE SET activity = excluded.activity,"
		"  last_message_id = excluded.last_message_id, removed_by = excluded.removed_by,"
		"  removed_at = now())"
		" SELECT a.ok, snap.owner_id IS NOT NULL,"
		"  snap.owner_id = $2::bigint OR $4::bigint = $2::bigint,"
		"  t.user_id IS NOT NULL, EXISTS (SELECT 1 FROM conv)"
		" FROM a LEFT JOIN snap ON true LEFT JOIN t ON true",
		false},

	/* $3 conversation, $4 message: the sender turns it into a tombstone
	 * (body NULL, deleted_at set; id and seq stay), under the conversation's
	 * row lock like a send, and stamps every member's activity.  Deleting a
	 * tombstone again changes nothing.  Columns: ok, member, message found,
	 * caller is its sender. */
	[SQL_MESSAGE_DELETE] = {"chat_message_delete",
		"WITH a AS MATERIALIZED (SELECT " AUTH_SESSION_VALID " AS ok),"
		" conv AS MATERIALIZED (SELECT c.id FROM conversations c, a"
		"  WHERE a.ok AND c.id = $3::bigint AND " IS_MEMBER("c.id") " FOR NO KEY UPDATE OF c),"
		" msg AS MATERIALIZED (SELECT x.id, x.sender_id, x.deleted_at IS NOT NULL AS gone"
		"  FROM messages x, conv WHERE x.conversation_id = $3::bigint AND x.id = $4::bigint),"
		" del AS (UPDATE messages x SET body = NULL, deleted_at = now() FROM msg"
		"  WHERE x.conversation_id = $3::bigint AND x.id = msg.id"
		"  AND msg.sender_id = $2::bigint AND NOT msg.gone RETURNING x.id),"
		" fan AS (UPDATE members f SET activity = " ACTIVITY_NOW
		"  FROM del WHERE f.conversation_id = $3::bigint)"
		" SELECT a.ok, EXISTS (SELECT 1 FROM conv), msg.id IS NOT NULL,"
		"  msg.sender_id = $2::bigint"
		" FROM a LEFT JOIN msg ON true",
		false},
};

// clang-format on

#define LIMIT_DEFAULT   50
#define LIMIT_MAX       200
#define MEMBERS_MAX     100
#define IDEMPOTENCY_MAX 128
#define OWNER_ONLY      "only the owner can add members"
#define OWNER_REMOVES   "only the owner can remove other members"
#define SENDER_DELETES  "only the sender can delete a message"
/* Runs of a statement that lost a race with a membership change (see
 * CONV_LOCKED) before the answer is 503: each run after the first found a
 * change committed since the previous one. */
#define SETTLE_TRIES 5

static const struct text_rule title_rule = {"title", true, true, FIELD_CODEPOINTS, 1, 200};
static const struct text_rule body_rule = {"body", true, false, FIELD_CODEPOINTS, 1, 4000};
static const struct text_rule email_rule = {"email", true, true, FIELD_CODEPOINTS, 1, 1024};

const struct db_statement *chat_statements(size_t *count)
{
	*count = sizeof statements / sizeof statements[0];
	return statements;
}

/* --- result columns ---------------------------------------------------------- */

static bool col_true(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static struct json_object *col_int64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL; /* json null */
	return json_object_new_int64(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

/* Text as stored, byte for byte (the length, not strlen). */
static struct json_object *col_text(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return json_object_new_string_len(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}

/* {"id","title","owner_id","created_at","last_message_at"} from 5 columns. */
static struct json_object *conversation_json(const PGresult *r, int row, int col)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "id", col_int64(r, row, col));
	HTTP_JSON_PUT(o, "title", col_text(r, row, col + 1));
	HTTP_JSON_PUT(o, "owner_id", col_int64(r, row, col + 2));
	HTTP_JSON_PUT(o, "created_at", col_text(r, row, col + 3));
	HTTP_JSON_PUT(o, "last_message_at", col_text(r, row, col + 4));
	return o;
}

/* {"id","display_name","role"} from 3 columns. */
static struct json_object *member_json(const PGresult *r, int row, int col)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "id", col_int64(r, row, col));
	HTTP_JSON_PUT(o, "display_name", col_text(r, row, col + 1));
	HTTP_JSON_PUT(o, "role", col_text(r, row, col + 2));
	return o;
}

/* Columns id, sender_id, sender_name, body, created_at from `col`. */
static struct json_object *message_json(const PGresult *r, int row, int col, int64_t conversation)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "id", col_int64(r, row, col));
	HTTP_JSON_PUT(o, "conversation_id", json_object_new_int64(conversation));
	HTTP_JSON_PUT(o, "sender_id", col_int64(r, row, col + 1));
	HTTP_JSON_PUT(o, "sender_name", col_text(r, row, col + 2));
	HTTP_JSON_PUT(o, "body", col_text(r, row, col + 3));
	/* A tombstone: the database keeps body NULL exactly when deleted. */
	HTTP_JSON_PUT(o, "deleted", json_object_new_boolean(PQgetisnull(r, row, col + 3)));
	HTTP_JSON_PUT(o, "created_at", col_text(r, row, col + 4));
	return o;
}

/* The caller's read state from columns col.. (last_message_id,
 * last_read_id, unread) into conversation object o. */
static void read_state_put(struct json_object *o, const PGresult *r, int row, int col)
{
	HTTP_JSON_PUT(o, "last_message_id", col_int64(r, row, col));
	HTTP_JSON_PUT(o, "last_read_id", col_int64(r, row, col + 1));
	HTTP_JSON_PUT(o, "unread", col_int64(r, row, col + 2));
}

/* Run a statement that locks the conversation row for a change depending
 * on its members (CONV_LOCKED) until `settled` says it did not lose a race
 * with a membership change: one round trip, and another only after such a
 * race.  NULL with *st on a database error or, after SETTLE_TRIES runs,
 * with DB_UNAVAILABLE (a 503: retry shortly). */
static PGresult *exec_settled(struct worker *w, int stmt, int nparams, const char *const *params,
                              bool (*settled)(const PGresult *r), enum db_status *st)
{
	for (int i = 0; i < SETTLE_TRIES; i++) {
		PGresult *r = db_exec(&w->db, &statements[stmt], nparams, params, st);
		if (!r || settled(r))
			return r;
		PQclear(r);
	}
	log_event(LOG_LEVEL_WARN, "chat", "membership kept changing under a statement");
	*st = DB_UNAVAILABLE;
	return NULL;
}

/* --- request input ------------------------------------------------------------ */

static int query_limit(const struct request *req, int64_t *limit, struct response *res)
{
	*limit = LIMIT_DEFAULT;
	return field_query_int(req, "limit", 1, LIMIT_MAX, limit, res) < 0 ? -1 : 0;
}

/* --- handlers -------------------------------------------------------------------- */

void chat_conversation_create(struct worker *w, struct request *req, struct response *res)
{
	char *title = NULL, user_id[24], msg[96];
	size_t title_len;
	struct json_object *emails = NULL, *conv, *members;
	const char *params[4];
	enum db_status st;
	PGresult *r = NULL;

	if (field_text(req->json, &title_rule, &title, &title_len, res) < 0 ||
	    field_email_list(req->json, "members", MEMBERS_MAX, &emails, res) < 0)
		goto out;
	auth_session_params(req, user_id, params);
	params[2] = title;
	params[3] = json_object_to_json_string_ext(emails, JSON_C_TO_STRING_PLAIN);
	r = db_exec(&w->db, &statements[SQL_CONVERSATION_CREATE], 4, params, &st);
	if (!r) {
		reply_db_error(res, st);
		goto out;
	}
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
		goto out;
	}
	if (!PQgetisnull(r, 0, 1)) {
		snprintf(msg, sizeof msg, "members[%lld] is not a registered email",
		         strtoll(PQgetvalue(r, 0, 1), NULL, 10) - 1);
		reply_validation(res, "members", msg);
		goto out;
	}
	conv = conversation_json(r, 0, 2);
	members = json_object_new_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_object_array_add(members, member_json(r, i, 7));
	HTTP_JSON_PUT(conv, "members", members);
	http_set_json(res, 201, conv);
out:
	PQclear(r);
	json_object_put(emails);
	free(title);
}

void chat_conversation_list(struct worker *w, struct request *req, struct response *res)
{
	char user_id[24], before_text[24], fetch_text[24];
	const char *params[4];
	int64_t limit, before = INT64_MAX;
	struct json_object *body, *items;
	enum db_status st;
	PGresult *r;
	int n, rows;

	if (query_limit(req, &limit, res) < 0 ||
	    field_query_int(req, "before", 1, INT64_MAX, &before, res) < 0)
		return;
	auth_session_params(req, user_id, params);
	snprintf(before_text, sizeof before_text, "%" PRId64, before);
	snprintf(fetch_text, sizeof fetch_text, "%" PRId64, limit + 1);
	params[2] = before_text;
	params[3] = fetch_text;
	r = db_exec(&w->db, &statements[SQL_CONVERSATION_LIST], 4, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
		PQclear(r);
		return;
	}
	rows = PQgetisnull(r, 0, 1) ? 0 : PQntuples(r);
	n = rows > limit ? (int)limit : rows;
	body = json_object_new_object();
	items = json_object_new_array();
	for (int i = 0; i < n; i++) {
		struct json_object *c = conversation_json(r, i, 1);
		read_state_put(c, r, i, 7);
		json_object_array_add(items, c);
	}
	HTTP_JSON_PUT(body, "items", items);
	/* A row beyond the page: the cursor is the last item's activity. */
	HTTP_JSON_PUT(body, "next_before", rows > limit ? col_int64(r, n - 1, 6) : NULL);
	http_set_json(res, 200, body);
	PQclear(r);
}

/* The text of a statement's first parameters under
 * /chat/conversations/{id}[/...]: the session ($1, $2), then the path's ids
 * ($3, $4).  It must outlive the params array that points into it. */
struct path_params {
	char user_id[24];
	char ids[2][24];
};

static void path_params(const struct request *req, size_t nids, struct path_params *t,
                        const char *params[])
{
	auth_session_params(req, t->user_id, params);
	for (size_t i = 0; i < nids && i < 2; i++) {
		snprintf(t->ids[i], sizeof t->ids[i], "%" PRId64, req->path_ids[i]);
		params[2 + i] = t->ids[i];
	}
}

void chat_conversation_get(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	const char *params[3];
	struct json_object *conv, *members;
	enum db_status st;
	PGresult *r;

	path_params(req, 1, &pp, params);
	r = db_exec(&w->db, &statements[SQL_CONVERSATION_GET], 3, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (!col_true(r, 0, 0))
		reply_token_revoked(req, res);
	else if (PQgetisnull(r, 0, 1))
		reply_not_found(res);
	else {
		conv = conversation_json(r, 0, 1);
		members = json_object_new_array();
		for (int i = 0; i < PQntuples(r); i++)
			if (!PQgetisnull(r, i, 6))
				json_object_array_add(members, member_json(r, i, 6));
		HTTP_JSON_PUT(conv, "members", members);
		http_set_json(res, 200, conv);
	}
	PQclear(r);
}

/* Settled: column 7 (see SQL_MEMBER_ADD). */
static bool member_add_settled(const PGresult *r)
{
	return col_true(r, 0, 7);
}

void chat_member_add(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	char *email = NULL;
	size_t email_len;
	const char *params[4];
	struct json_object *o;
	enum db_status st;
	PGresult *r = NULL;

	if (field_text(req->json, &email_rule, &email, &email_len, res) < 0 ||
	    field_email(email, email_len, "email", res) < 0)
		goto out;
	path_params(req, 1, &pp, params);
	params[3] = email;
	r = exec_settled(w, SQL_MEMBER_ADD, 4, params, member_add_settled, &st);
	if (!r) {
		reply_db_error(res, st);
		goto out;
	}
	/* ok, member, owner, target id, target name, added, target role */
	if (!col_true(r, 0, 0))
		reply_token_revoked(req, res);
	else if (!col_true(r, 0, 1))
		reply_not_found(res);
	else if (!col_true(r, 0, 2))
		reply_forbidden(req, res, "owner_only", OWNER_ONLY);
	else if (PQgetisnull(r, 0, 3))
		reply_validation(res, "email", "is not a registered email");
	else {
		o = json_object_new_object();
		HTTP_JSON_PUT(o, "id", col_int64(r, 0, 3));
		HTTP_JSON_PUT(o, "display_name", col_text(r, 0, 4));
		HTTP_JSON_PUT(o, "role", col_text(r, 0, 6));
		http_set_json(res, col_true(r, 0, 5) ? 201 : 200, o);
	}
out:
	PQclear(r);
	free(email);
}

/* The caller's own message, from columns col.. (id, sender name, body,
 * created_at) of row 0: conversation and sender come from the request. */
static struct json_object *sent_message_json(const struct request *req, PGresult *r, int col)
{
	struct json_object *o = json_object_new_object();

	HTTP_JSON_PUT(o, "id", col_int64(r, 0, col));
	HTTP_JSON_PUT(o, "conversation_id", json_object_new_int64(req->path_ids[0]));
	HTTP_JSON_PUT(o, "sender_id", json_object_new_int64(req->user_id));
	HTTP_JSON_PUT(o, "sender_name", col_text(r, 0, col + 1));
	HTTP_JSON_PUT(o, "body", col_text(r, 0, col + 2));
	/* A retry of a key whose message was deleted since: the tombstone. */
	HTTP_JSON_PUT(o, "deleted", json_object_new_boolean(PQgetisnull(r, 0, col + 2)));
	HTTP_JSON_PUT(o, "created_at", col_text(r, 0, col + 3));
	return o;
}

/* A concurrent send with the same key won: answer with its message. */
static void message_by_key(struct worker *w, struct request *req, struct response *res,
                           const char *conv_text, const char *user_id, const char *key)
{
	const char *params[3] = {conv_text, user_id, key};
	enum db_status st;
	PGresult *r;

	r = db_exec(&w->db, &statements[SQL_MESSAGE_BY_KEY], 3, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (PQntuples(r) != 1) {
		/* ON CONFLICT saw a committed row that a later snapshot cannot:
		 * impossible while messages are never deleted. */
		log_event(LOG_LEVEL_ERROR, "chat", "idempotent message vanished");
		reply_internal(res);
	} else {
		http_set_json(res, 200, sent_message_json(req, r, 0));
	}
	PQclear(r);
}

/* Settled unless a member (column 1) found the locked row changed
 * (column 2); see MESSAGE_SEND. */
static bool send_settled(const PGresult *r)
{
	return !col_true(r, 0, 1) || col_true(r, 0, 2);
}

void chat_message_post(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	char *body = NULL;
	size_t body_len;
	const char *params[5], *key;
	enum db_status st;
	PGresult *r = NULL;

	if (field_text(req->json, &body_rule, &body, &body_len, res) < 0)
		goto out;
	if (field_is_blank(body, body_len)) {
		reply_validation(res, "body", "must not be only white space");
		goto out;
	}
	if (field_idempotency_key(req, IDEMPOTENCY_MAX, &key, res) < 0)
		goto out;
	path_params(req, 1, &pp, params);
	params[3] = body;
	params[4] = key;
	r = exec_settled(w, key ? SQL_MESSAGE_POST_KEYED : SQL_MESSAGE_POST, key ? 5 : 4, params,
	                 send_settled, &st);
	if (!r) {
		reply_db_error(res, st);
		goto out;
	}
	/* ok, member, settled, created, id, sender name, body, created_at */
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
	} else if (!col_true(r, 0, 1)) {
		reply_not_found(res);
	} else if (PQgetisnull(r, 0, 4)) {
		if (key)
			message_by_key(w, req, res, pp.ids[0], pp.user_id, key);
		else
			reply_internal(res); /* no key, no conflict: cannot happen */
	} else {
		http_set_json(res, col_true(r, 0, 3) ? 201 : 200, sent_message_json(req, r, 4));
	}
out:
	PQclear(r);
	free(body);
}

void chat_message_list(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	char after_text[24], before_text[24], limit_text[24];
	const char *params[6];
	int64_t limit, after = 0, before = INT64_MAX;
	int has_after, nparams;
	struct json_object *body, *items;
	const struct db_statement *stmt;
	enum db_status st;
	PGresult *r;

	if (query_limit(req, &limit, res) < 0 ||
	    /* SPEC: after=0 is a client that has seen nothing yet. */
	    (has_after = field_query_int(req, "after", 0, INT64_MAX, &after, res)) < 0 ||
	    field_query_int(req, "before", 1, INT64_MAX, &before, res) < 0)
		return;
	path_params(req, 1, &pp, params);
	snprintf(after_text, sizeof after_text, "%" PRId64, after);
	snprintf(before_text, sizeof before_text, "%" PRId64, before);
	snprintf(limit_text, sizeof limit_text, "%" PRId64, limit);
	if (has_after) {
		/* The first `limit` after `after`, still below `before`. */
		stmt = &statements[SQL_MESSAGES_AFTER];
		params[3] = after_text;
		params[4] = before_text;
		params[5] = limit_text;
		nparams = 6;
	} else {
		stmt = &statements[SQL_MESSAGES_BEFORE];
		params[3] = before_text;
		params[4] = limit_text;
		nparams = 5;
	}
	r = db_exec(&w->db, stmt, nparams, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
	} else if (!col_true(r, 0, 1)) {
		reply_not_found(res);
	} else {
		body = json_object_new_object();
		items = json_object_new_array();
		for (int i = 0; i < PQntuples(r); i++)
			if (!PQgetisnull(r, i, 2))
				json_object_array_add(items,
				                      message_json(r, i, 2, req->path_ids[0]));
		HTTP_JSON_PUT(body, "items", items);
		http_set_json(res, 200, body);
	}
	PQclear(r);
}

void chat_updates(struct worker *w, struct request *req, struct response *res)
{
	char user_id[24], since_text[24];
	const char *params[3];
	int64_t since = 0;
	struct json_object *body, *items, *removed;
	enum db_status st;
	PGresult *r;

	/* SPEC: since=0 (or none) is a client that has seen nothing yet. */
	if (field_query_int(req, "since", 0, INT64_MAX, &since, res) < 0)
		return;
	auth_session_params(req, user_id, params);
	snprintf(since_text, sizeof since_text, "%" PRId64, since);
	params[2] = since_text;
	r = db_exec(&w->db, &statements[SQL_UPDATES], 3, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
		PQclear(r);
		return;
	}
	/* ok, cursor, removed, 5 conversation columns, last_message_id,
	 * last_read_id, unread, conversation id */
	body = json_object_new_object();
	items = json_object_new_array();
	removed = json_object_new_array();
	for (int i = 0; i < PQntuples(r); i++) {
		struct json_object *c;

		if (PQgetisnull(r, i, 2))
			continue; /* nothing changed: the one row of the session check */
		if (col_true(r, i, 2)) {
			json_object_array_add(removed, col_int64(r, i, 11));
			continue;
		}
		c = conversation_json(r, i, 3);
		read_state_put(c, r, i, 8);
		json_object_array_add(items, c);
	}
	HTTP_JSON_PUT(body, "items", items);
	HTTP_JSON_PUT(body, "removed", removed);
	HTTP_JSON_PUT(body, "cursor", col_int64(r, 0, 1));
	http_set_json(res, 200, body);
	PQclear(r);
}

void chat_read_mark(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	char mark_text[24];
	const char *params[4];
	int64_t mark;
	struct json_object *o;
	enum db_status st;
	PGresult *r;

	if (field_int(req->json, "message_id", 1, INT64_MAX, &mark, res) < 0)
		return;
	path_params(req, 1, &pp, params);
	snprintf(mark_text, sizeof mark_text, "%" PRId64, mark);
	params[3] = mark_text;
	r = db_exec(&w->db, &statements[SQL_READ_MARK], 4, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	/* ok, member, last_read_id, unread */
	if (!col_true(r, 0, 0)) {
		reply_token_revoked(req, res);
	} else if (!col_true(r, 0, 1)) {
		reply_not_found(res);
	} else {
		o = json_object_new_object();
		HTTP_JSON_PUT(o, "conversation_id", json_object_new_int64(req->path_ids[0]));
		HTTP_JSON_PUT(o, "last_read_id", col_int64(r, 0, 2));
		HTTP_JSON_PUT(o, "unread", col_int64(r, 0, 3));
		http_set_json(res, 200, o);
	}
	PQclear(r);
}

/* Settled unless an allowed removal of a member (columns 1-3) found the
 * locked row changed (column 4); see SQL_MEMBER_REMOVE. */
static bool member_remove_settled(const PGresult *r)
{
	return !(col_true(r, 0, 1) && col_true(r, 0, 2) && col_true(r, 0, 3)) || col_true(r, 0, 4);
}

void chat_member_remove(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	const char *params[4];
	enum db_status st;
	PGresult *r;

	path_params(req, 2, &pp, params);
	r = exec_settled(w, SQL_MEMBER_REMOVE, 4, params, member_remove_settled, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	/* ok, member, allowed, target is a member, done */
	if (!col_true(r, 0, 0))
		reply_token_revoked(req, res);
	else if (!col_true(r, 0, 1))
		reply_not_found(res);
	else if (!col_true(r, 0, 2))
		reply_forbidden(req, res, "owner_only", OWNER_REMOVES);
	else if (!col_true(r, 0, 3))
		reply_not_found(res); /* no such member: the same 404 */
	else
		res->status = 204;
	PQclear(r);
}

void chat_message_delete(struct worker *w, struct request *req, struct response *res)
{
	struct path_params pp;
	const char *params[4];
	enum db_status st;
	PGresult *r;

	path_params(req, 2, &pp, params);
	r = db_exec(&w->db, &statements[SQL_MESSAGE_DELETE], 4, params, &st);
	if (!r) {
		reply_db_error(res, st);
		return;
	}
	/* ok, member, found, sender */
	if (!col_true(r, 0, 0))
		reply_token_revoked(req, res);
	else if (!col_true(r, 0, 1) || !col_true(r, 0, 2))
		reply_not_found(res);
	else if (!col_true(r, 0, 3))
		reply_forbidden(req, res, "sender_only", SENDER_DELETES);
	else
		res->status = 204; /* deleted now, or already a tombstone */
	PQclear(r);
}
