-- 003: read markers and unread counts, one poll for every conversation,
-- leaving and removing members, deleting one's own message (docs/CHAT.md).
-- Applied by `chat-admin migrate` inside one transaction, as the owner role.

-- Conversations keep what a poll answers without touching messages: the
-- newest message's id and the number of messages ever sent (each message's
-- `seq`).  members_version moves with every membership change, under the
-- row lock that sends take too: a send whose snapshot predates a membership
-- change sees a different version on the locked row and runs again (CHAT.md
-- "Membership changes and sends").  None of these is indexed, so updating
-- them stays HOT like `activity`.
ALTER TABLE chat.conversations
    ADD COLUMN last_message_id bigint,
    ADD COLUMN message_count   bigint NOT NULL DEFAULT 0,
    ADD COLUMN members_version bigint NOT NULL DEFAULT 0;

-- seq: 1, 2, 3 ... within a conversation, drawn under the conversation's row
-- lock like the id, so unread = message_count - the seq read up to.
-- A deleted message keeps its row (a tombstone: body NULL, deleted_at set),
-- so ids, seqs and page cursors do not move.
ALTER TABLE chat.messages
    ADD COLUMN seq        bigint,
    ADD COLUMN deleted_at timestamptz,
    ALTER COLUMN body DROP NOT NULL;
UPDATE chat.messages m SET seq = s.seq
  FROM (SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS seq
          FROM chat.messages) s
 WHERE m.id = s.id;
ALTER TABLE chat.messages
    ALTER COLUMN seq SET NOT NULL,
    ADD CONSTRAINT messages_tombstone CHECK ((body IS NULL) = (deleted_at IS NOT NULL));

UPDATE chat.conversations c SET last_message_id = s.last_id, message_count = s.n
  FROM (SELECT conversation_id, max(id) AS last_id, count(*) AS n
          FROM chat.messages GROUP BY conversation_id) s
 WHERE c.id = s.conversation_id;

-- A member can now leave or be removed while their messages stay: the
-- sender no longer has to be a member row (the send statement checks
-- membership under the conversation's row lock instead), only a user.
ALTER TABLE chat.messages
    DROP CONSTRAINT messages_conversation_id_sender_id_fkey,
    ADD FOREIGN KEY (conversation_id) REFERENCES chat.conversations (id),
    ADD FOREIGN KEY (sender_id) REFERENCES chat.users (id);

-- Per member: the read marker (last_read_id, and read_seq, its message's
-- seq), and activity: the id of the last transaction that changed what this
-- member's poll answers (a message, a deletion, the member's own marker,
-- joining).  "My changes since X" is one probe of members_updates.
-- Existing members start with everything read.
ALTER TABLE chat.members
    ADD COLUMN last_read_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN read_seq     bigint NOT NULL DEFAULT 0,
    ADD COLUMN activity     bigint NOT NULL DEFAULT 0;
UPDATE chat.members m SET last_read_id = c.last_message_id, read_seq = c.message_count
  FROM chat.conversations c
 WHERE c.id = m.conversation_id AND c.last_message_id IS NOT NULL;
CREATE INDEX members_updates ON chat.members (user_id, activity) INCLUDE (conversation_id);

-- The end of a membership (removed by the owner, or left), so the former
-- member's poll reports it; last_message_id is the conversation's newest
-- message when it ended, read under the row lock that sends take: no
-- message of this user in this conversation is newer, unless re-added.
CREATE TABLE chat.member_removals (
    user_id         bigint      NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
    conversation_id bigint      NOT NULL REFERENCES chat.conversations (id) ON DELETE CASCADE,
    activity        bigint      NOT NULL,
    last_message_id bigint,
    removed_by      bigint      NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
    removed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX member_removals_updates ON chat.member_removals (user_id, activity);
