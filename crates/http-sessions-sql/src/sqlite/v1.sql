-- Version 1: the tables, as PostgreSQL's (`postgres/v1.sql`).
--
-- One row per session id in {sessions}: a live session, or the marker a
-- renewed id leaves (renewed = TRUE) until `expires`. Its values and its
-- flash messages are rows of their own, so that a save writes only the
-- keys it changed. Times are Unix seconds of the application's clock.
-- The values and flash messages of a deleted session go with it: the
-- connection must enforce foreign keys (sqlx's default). The sessions
-- and users tables, of small rows found by their key, are kept in the
-- order of their key (WITHOUT ROWID); values may be large.

CREATE TABLE IF NOT EXISTS {sessions} (
    id          BLOB     PRIMARY KEY NOT NULL,
    -- A live session ends at this time unless saved again; a renewed id
    -- loads as renewed until it.
    expires     INTEGER  NOT NULL,
    renewed     BOOLEAN  NOT NULL DEFAULT FALSE,
    created     INTEGER  NOT NULL,
    -- The session's own lifetimes, 'browser' or '<idle>/<absolute>'
    -- seconds; NULL for the settings'.
    expiry      TEXT,
    user_id     TEXT,
    label       TEXT,
    -- The generation of the user's sessions the binding belongs to; 0
    -- when unbound.
    generation  INTEGER  NOT NULL DEFAULT 0,
    -- What the session counts for in the session size bound.
    size        INTEGER  NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {index_expires} ON {sessions} (expires);
CREATE INDEX IF NOT EXISTS {index_user} ON {sessions} (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS {values} (
    session_id  BLOB     NOT NULL REFERENCES {sessions} (id) ON DELETE CASCADE,
    "key"       BLOB     NOT NULL,
    -- MessagePack.
    value       BLOB     NOT NULL,
    PRIMARY KEY (session_id, "key")
);

CREATE TABLE IF NOT EXISTS {flashes} (
    session_id  BLOB     NOT NULL REFERENCES {sessions} (id) ON DELETE CASCADE,
    -- The message's id, 8 bytes big-endian, so that ids sort as numbers.
    id          BLOB     NOT NULL,
    level       INTEGER  NOT NULL,
    message     TEXT     NOT NULL,
    PRIMARY KEY (session_id, id)
);

-- Each user's generation: raised by "log out everywhere", remembered until
-- every session it ended would have ended anyway.
CREATE TABLE IF NOT EXISTS {users} (
    user_id         TEXT     PRIMARY KEY NOT NULL,
    generation      INTEGER  NOT NULL,
    remember_until  INTEGER  NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {index_remember} ON {users} (remember_until);
