-- 002: conversations, members, messages (SPEC §2 "Chat").
-- Applied by `chat-admin migrate` inside one transaction, as the owner role.

-- The conversation list is ordered by "activity": a value drawn from this
-- sequence when the conversation is created and again on every new message.
-- Unlike a timestamp it is unique, so it is a keyset cursor without ties.
CREATE SEQUENCE chat.conversation_activity AS bigint;

-- activity changes on every message: it is deliberately not indexed, and the
-- pages keep free space, so that update stays HOT (no index writes).
CREATE TABLE chat.conversations (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    owner_id        bigint      NOT NULL REFERENCES chat.users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz,
    activity        bigint      NOT NULL DEFAULT nextval('chat.conversation_activity')
) WITH (fillfactor = 80);
ALTER SEQUENCE chat.conversation_activity OWNED BY chat.conversations.activity;

CREATE TABLE chat.members (
    conversation_id bigint      NOT NULL REFERENCES chat.conversations (id) ON DELETE CASCADE,
    user_id         bigint      NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
    role            text        NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);
-- "My conversations": an index-only scan from the user to the conversations.
CREATE INDEX members_user ON chat.members (user_id, conversation_id);

-- Messages are paged by keyset on (conversation_id, id): the primary key is
-- that index.  The sender must be a member (a foreign key to members), so the
-- database itself refuses a message from outside the conversation.
CREATE TABLE chat.messages (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    conversation_id bigint      NOT NULL,
    sender_id       bigint      NOT NULL,
    body            text        NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    idempotency_key text        CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, id),
    FOREIGN KEY (conversation_id, sender_id) REFERENCES chat.members (conversation_id, user_id)
);
-- One message per (conversation, sender, key): INSERT ... ON CONFLICT DO
-- NOTHING against this index makes concurrent retries store one row.
CREATE UNIQUE INDEX messages_idempotency ON chat.messages (conversation_id, sender_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
