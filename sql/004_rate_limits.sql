-- 004: the rate-limit tier shared by every host (RATE_LIMIT_SCOPE=cluster,
-- docs/RATELIMIT.md "The cluster tier").  Applied by `chat-admin migrate`
-- inside one transaction, as the owner role.

-- One row per (class, key): GCRA's one number, the theoretical arrival time,
-- in milliseconds since the epoch on the database's clock.  key is the first
-- 16 bytes of an HMAC keyed by SECRET_KEY (src/limit_cluster.c), never an
-- address, email or user id as such.
-- UNLOGGED: no WAL for a table written on every limited request; after a
-- crash PostgreSQL empties it (every limit restarts from zero, as when the
-- shared-memory segment is lost at reboot) and it is not replicated, so a
-- promoted standby starts it empty too.
-- tat is not indexed, so the update of each request stays HOT; fillfactor
-- leaves each page room for that.
CREATE UNLOGGED TABLE chat.rate_limits (
    class smallint NOT NULL,
    key   bytea    NOT NULL CHECK (length(key) = 16),
    tat   bigint   NOT NULL,
    PRIMARY KEY (class, key)
) WITH (fillfactor = 70);

-- Class -1 is no limit's: its one row holds when the next sweep of idle
-- rows may run (src/limit_cluster.c upserts it).
