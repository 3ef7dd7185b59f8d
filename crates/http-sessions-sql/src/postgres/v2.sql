-- Version 2: the functions that write sessions, one call per save, each
-- one transaction. Every time is passed in: the application's clock
-- decides expiry, never the server's.

-- The generation a binding of `p_user` is stored with, or NULL when it is
-- of an older generation than the user's (a "log out everywhere" ended
-- it). The upsert locks the user's row until the caller commits, so a
-- binding and an end_all of one user never interleave.
CREATE OR REPLACE FUNCTION {admit}(p_user text, p_generation bigint, p_ends bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    theirs bigint;
BEGIN
    INSERT INTO {users} AS u (user_id, generation, remember_until)
    VALUES (p_user, 1, p_ends)
    ON CONFLICT (user_id) DO UPDATE
        SET remember_until = greatest(u.remember_until, excluded.remember_until)
    RETURNING u.generation INTO theirs;
    IF p_generation <> 0 AND p_generation < theirs THEN
        RETURN NULL;
    END IF;
    RETURN greatest(p_generation, theirs);
END $$;

-- Stores a new session under `p_id` unless the id holds anything.
-- `p_size` is its size but for its generation, which is stamped here.
-- Returns 0 stored, 1 exists, 2 gone (a binding of an ended generation).
CREATE OR REPLACE FUNCTION {create}(
    p_id bytea, p_created bigint, p_expires bigint, p_ends bigint,
    p_expiry text, p_user text, p_label bytea, p_generation bigint, p_size integer,
    p_keys bytea[], p_values bytea[],
    p_flash_ids bytea[], p_flash_levels smallint[], p_flash_messages bytea[],
    p_lock_timeout text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    stamped bigint := p_generation;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    IF p_user IS NOT NULL THEN
        stamped := {admit}(p_user, p_generation, p_ends);
        IF stamped IS NULL THEN
            RETURN 2;
        END IF;
    END IF;
    INSERT INTO {sessions} (id, expires, created, expiry, user_id, label, generation, size)
    VALUES (p_id, p_expires, p_created, p_expiry, p_user, p_label, stamped,
            p_size + CASE WHEN stamped <> 0 THEN 8 ELSE 0 END)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 1;
    END IF;
    INSERT INTO {values} (session_id, key, value)
    SELECT p_id, k, v FROM unnest(p_keys, p_values) AS x(k, v);
    INSERT INTO {flashes} (session_id, id, level, message)
    SELECT p_id, i, l, m FROM unnest(p_flash_ids, p_flash_levels, p_flash_messages) AS x(i, l, m);
    RETURN 0;
END $$;

-- Applies one request's changes to the live session under `p_id`: the
-- values it set (`p_keys`, `p_values`, adding `p_added` bytes to the size)
-- and removed (`p_removed`), all values first if `p_cleared`; the flash messages it took and pushed; its
-- expiry and its binding when they changed; and the new `p_expires`.
-- The session's row is locked first, so concurrent saves of one session
-- apply one after the other, each to what the one before left.
--
-- status: 0 saved, 2 gone (no live session, or a binding of an ended
-- generation), 3 saved and deleted because it held nothing, 4 too large
-- (nothing written; `new_size` is what it would have been).
CREATE OR REPLACE FUNCTION {save}(
    p_id bytea, p_now bigint, p_expires bigint, p_ends bigint, p_max_size bigint,
    p_cleared boolean, p_keys bytea[], p_values bytea[], p_removed bytea[],
    p_added bigint,
    p_taken bytea[], p_flash_ids bytea[], p_flash_levels smallint[], p_flash_messages bytea[],
    p_expiry_changed boolean, p_expiry text,
    p_binding_changed boolean, p_user text, p_label bytea, p_generation bigint,
    p_lock_timeout text,
    OUT status integer, OUT new_size bigint)
LANGUAGE plpgsql AS $$
DECLARE
    s {sessions}%ROWTYPE;
    removed bigint := 0;
    added bigint := 0;
    new_user text;
    new_label bytea;
    new_expiry text;
    new_generation bigint;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    new_size := 0;
    SELECT * INTO s FROM {sessions} WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR s.renewed THEN
        status := 2;
        RETURN;
    END IF;
    IF s.expires <= p_now THEN
        -- Writing to it would bring it back with part of its state.
        DELETE FROM {sessions} WHERE id = p_id;
        status := 2;
        RETURN;
    END IF;

    new_user := s.user_id;
    new_label := s.label;
    new_expiry := s.expiry;
    new_generation := s.generation;
    IF p_binding_changed THEN
        new_user := p_user;
        new_label := p_label;
        IF p_user IS DISTINCT FROM s.user_id THEN
            new_generation := CASE WHEN p_user IS NULL THEN 0 ELSE p_generation END;
        END IF;
    END IF;
    IF p_expiry_changed THEN
        new_expiry := p_expiry;
    END IF;
    -- A binding that moves to a user, or whose lifetime moves, is admitted
    -- against the user's generation.
    IF new_user IS NOT NULL
       AND (new_user IS DISTINCT FROM s.user_id OR new_expiry IS DISTINCT FROM s.expiry) THEN
        new_generation := {admit}(new_user, new_generation, p_ends);
        IF new_generation IS NULL THEN
            status := 2;
            RETURN;
        END IF;
    END IF;

    -- The size bound, on the session as stored now: what the changes take
    -- from it (a statement only for the rows they touch, whose plan is
    -- kept), and what they add: `p_added` for the values set and the
    -- messages pushed (their keys, bytes and texts), and the binding.
    IF p_cleared OR cardinality(p_keys) + cardinality(p_removed) > 0 THEN
        SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0)
        INTO removed FROM {values}
        WHERE session_id = p_id AND (p_cleared OR key = ANY (p_keys) OR key = ANY (p_removed));
    END IF;
    IF cardinality(p_taken) > 0 THEN
        SELECT removed + coalesce(sum(octet_length(message) + 8), 0)
        INTO removed FROM {flashes} WHERE session_id = p_id AND id = ANY (p_taken);
    END IF;
    removed := removed + coalesce(octet_length(s.user_id), 0) + coalesce(octet_length(s.label), 0)
        + coalesce(octet_length(s.expiry), 0) + CASE WHEN s.generation <> 0 THEN 8 ELSE 0 END;
    added := p_added + coalesce(octet_length(new_user), 0) + coalesce(octet_length(new_label), 0)
        + coalesce(octet_length(new_expiry), 0) + CASE WHEN new_generation <> 0 THEN 8 ELSE 0 END;
    new_size := s.size - removed + added;
    IF added > removed AND new_size > p_max_size THEN
        status := 4;
        RETURN;
    END IF;

    IF p_cleared THEN
        DELETE FROM {values} WHERE session_id = p_id;
    ELSIF cardinality(p_removed) > 0 THEN
        DELETE FROM {values} WHERE session_id = p_id AND key = ANY (p_removed);
    END IF;
    IF cardinality(p_keys) > 0 THEN
        INSERT INTO {values} (session_id, key, value)
        SELECT p_id, k, v FROM unnest(p_keys, p_values) AS x(k, v)
        ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value;
    END IF;
    IF cardinality(p_taken) > 0 THEN
        DELETE FROM {flashes} WHERE session_id = p_id AND id = ANY (p_taken);
    END IF;
    IF cardinality(p_flash_ids) > 0 THEN
        INSERT INTO {flashes} (session_id, id, level, message)
        SELECT p_id, i, l, m FROM unnest(p_flash_ids, p_flash_levels, p_flash_messages) AS x(i, l, m)
        ON CONFLICT (session_id, id) DO NOTHING;
    END IF;

    -- Concurrent removals can empty a session each request saw non-empty:
    -- an empty session is not kept. A save that set a value or pushed a
    -- message, or leaves a binding or an expiry, cannot have emptied it.
    IF cardinality(p_keys) = 0 AND cardinality(p_flash_ids) = 0
       AND new_user IS NULL AND new_label IS NULL AND new_expiry IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM {values} WHERE session_id = p_id)
           AND NOT EXISTS (SELECT 1 FROM {flashes} WHERE session_id = p_id) THEN
            DELETE FROM {sessions} WHERE id = p_id;
            status := 3;
            RETURN;
        END IF;
    END IF;
    UPDATE {sessions}
    SET expires = p_expires, expiry = new_expiry, user_id = new_user, label = new_label,
        generation = new_generation, size = new_size
    WHERE id = p_id;
    status := 0;
END $$;

-- "Log out everywhere": raises the user's generation past its current one
-- and `p_floor`, and ends every session of the user but `p_keep`, which
-- moves to the new generation. `ended` counts those live at `p_now`.
CREATE OR REPLACE FUNCTION {end_all}(
    p_user text, p_keep bytea, p_now bigint, p_floor bigint, p_remember_until bigint,
    p_lock_timeout text,
    OUT ended bigint, OUT new_generation bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    INSERT INTO {users} AS u (user_id, generation, remember_until)
    VALUES (p_user, greatest(2, p_floor), p_remember_until)
    ON CONFLICT (user_id) DO UPDATE
        SET generation = greatest(u.generation + 1, p_floor),
            remember_until = greatest(u.remember_until, excluded.remember_until)
    RETURNING u.generation INTO new_generation;
    WITH gone AS (
        DELETE FROM {sessions}
        WHERE user_id = p_user AND id IS DISTINCT FROM p_keep
        RETURNING expires
    )
    SELECT count(*) FILTER (WHERE expires > p_now) INTO ended FROM gone;
    UPDATE {sessions} SET generation = new_generation
    WHERE id = p_keep AND user_id = p_user;
END $$;
