-- Version 1: the tables, as PostgreSQL's (`postgres/v1.sql`), for InnoDB.
--
-- One row per session id in {sessions}: a live session, or the marker a
-- renewed id leaves (renewed = TRUE) until `expires`. Its values and its
-- flash messages are rows of their own, so that a save writes only the
-- keys it changed. Times are Unix seconds of the application's clock.
-- A user id is binary (its UTF-8 bytes), so that it compares byte for
-- byte: even the `_bin` collations of text ignore trailing spaces (PAD
-- SPACE), and "ada " is not "ada". Every statement makes what is missing
-- and leaves what is there, so a version cut short (MySQL commits each
-- statement) is simply run again.

CREATE TABLE IF NOT EXISTS {sessions} (
    id          VARBINARY(16)  NOT NULL PRIMARY KEY,
    -- A live session ends at this time unless saved again; a renewed id
    -- loads as renewed until it.
    expires     BIGINT         NOT NULL,
    renewed     BOOLEAN        NOT NULL DEFAULT FALSE,
    created     BIGINT         NOT NULL,
    -- The session's own lifetimes, 'browser' or '<idle>/<absolute>'
    -- seconds; NULL for the settings'.
    expiry      VARCHAR(64)    NULL,
    -- At most 256 bytes each (MAX_USER_LEN, MAX_LABEL_LEN).
    user_id     VARBINARY(256) NULL,
    label       VARCHAR(256)   NULL,
    -- The generation of the user's sessions the binding belongs to; 0
    -- when unbound.
    generation  BIGINT         NOT NULL DEFAULT 0,
    -- What the session counts for in the session size bound.
    size        INT            NOT NULL DEFAULT 0,
    INDEX {index_expires} (expires),
    INDEX {index_user} (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS {values} (
    session_id  VARBINARY(16)    NOT NULL,
    -- The most InnoDB's 3,072-byte primary key leaves beside the id.
    `key`       VARBINARY(3056)  NOT NULL,
    -- MessagePack.
    value       LONGBLOB         NOT NULL,
    PRIMARY KEY (session_id, `key`),
    FOREIGN KEY (session_id) REFERENCES {sessions} (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS {flashes} (
    session_id  VARBINARY(16)  NOT NULL,
    -- The message's id, 8 bytes big-endian, so that ids sort as numbers.
    id          VARBINARY(8)   NOT NULL,
    level       SMALLINT       NOT NULL,
    -- At most 2,048 bytes (FLASH_MAX_BYTES).
    message     TEXT           NOT NULL,
    PRIMARY KEY (session_id, id),
    FOREIGN KEY (session_id) REFERENCES {sessions} (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Each user's generation: raised by "log out everywhere", remembered until
-- every session it ended would have ended anyway.
CREATE TABLE IF NOT EXISTS {users} (
    user_id         VARBINARY(256)  NOT NULL PRIMARY KEY,
    generation      BIGINT          NOT NULL,
    remember_until  BIGINT          NOT NULL,
    INDEX {index_remember} (remember_until)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
