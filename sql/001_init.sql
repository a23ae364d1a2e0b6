-- 001: schema, accounts and sessions.
-- Applied by `chat-admin migrate` inside one transaction, as the owner role.
-- Workers connect with search_path=chat and DML rights only
-- (scripts/grant-worker-role.sql).

CREATE SCHEMA IF NOT EXISTS chat;

CREATE TABLE chat.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name  text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 64),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$s1$%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness; login looks users up through this index.
CREATE UNIQUE INDEX users_email_lower_key ON chat.users (lower(email));

-- One row per issued token (its jti); revocation is an UPDATE here, seen by
-- every worker at once.
CREATE TABLE chat.sessions (
    id         text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    user_id    bigint      NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- Password change revokes all live sessions of one user.
CREATE INDEX sessions_user_live ON chat.sessions (user_id) WHERE revoked_at IS NULL;
