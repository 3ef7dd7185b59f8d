-- Version 1: the tables.
--
-- One row per session id in {sessions}: a live session, or the marker a
-- renewed id leaves (renewed = true) until `expires`. Its values and its
-- flash messages are rows of their own, so that a save writes only the
-- keys it changed. Times are Unix seconds of the application's clock.

CREATE TABLE IF NOT EXISTS {sessions} (
    id          bytea    PRIMARY KEY,
    -- A live session ends at this time unless saved again; a renewed id
    -- loads as renewed until it.
    expires     bigint   NOT NULL,
    renewed     boolean  NOT NULL DEFAULT false,
    created     bigint   NOT NULL,
    -- The session's own lifetimes, 'browser' or '<idle>/<absolute>'
    -- seconds; NULL for the settings'.
    expiry      text,
    user_id     text,
    -- UTF-8, as bytes: a label or a message may hold any character, NUL
    -- included, which a text column refuses.
    label       bytea,
    -- The generation of the user's sessions the binding belongs to; 0
    -- when unbound.
    generation  bigint   NOT NULL DEFAULT 0,
    -- What the session counts for in the session size bound.
    size        integer  NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {index_expires} ON {sessions} (expires);
CREATE INDEX IF NOT EXISTS {index_user} ON {sessions} (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS {values} (
    session_id  bytea    NOT NULL REFERENCES {sessions} (id) ON DELETE CASCADE,
    key         bytea    NOT NULL,
    -- MessagePack.
    value       bytea    NOT NULL,
    PRIMARY KEY (session_id, key)
);

CREATE TABLE IF NOT EXISTS {flashes} (
    session_id  bytea    NOT NULL REFERENCES {sessions} (id) ON DELETE CASCADE,
    -- The message's id, 8 bytes big-endian, so that ids sort as numbers.
    id          bytea    NOT NULL,
    level       smallint NOT NULL,
    message     bytea    NOT NULL,
    PRIMARY KEY (session_id, id)
);

-- Each user's generation: raised by "log out everywhere", remembered until
-- every session it ended would have ended anyway.
CREATE TABLE IF NOT EXISTS {users} (
    user_id         text    PRIMARY KEY,
    generation      bigint  NOT NULL,
    remember_until  bigint  NOT NULL
);
CREATE INDEX IF NOT EXISTS {index_remember} ON {users} (remember_until);
