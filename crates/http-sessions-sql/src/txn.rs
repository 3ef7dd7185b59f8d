//! What the SQLite and MySQL stores share: the statements, which both
//! write with `?` placeholders, the reading of a session's rows in one
//! query, and the saves, each one transaction driven from Rust.
//!
//! Postgres applies a save inside the database (`postgres/v2.sql`). Here
//! the store locks and reads the session's rows ([`Sql::read`]), the
//! core's rules apply the request to the record they hold
//! ([`Entry::apply`]: gone, too large or emptied exactly as the contract
//! says), a binding that moves is admitted against its user's generation
//! ([`admitted`], as `v2.sql`'s `admit`), and only what differs from the
//! rows is written back ([`Saving::writes`]). What differs between the
//! two backends is a [`Dialect`], and the statements each writes alone.

use std::borrow::Cow;
use std::collections::BTreeMap;

use http_sessions_core::store::{
    Entry, Loaded, Record, SessionId, StoreError, UnixTime, Update, Updated,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use crate::names::Names;
use crate::stored::{self, Corrupt, Rows};

/// How one backend's SQL differs where the statements are shared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// The identifier quote: `"` or `` ` ``.
    pub(crate) quote: char,
    /// Whether a save's read locks the rows it reads (`FOR UPDATE`); not
    /// where its transaction already keeps every other writer out.
    pub(crate) lock_reads: bool,
    /// What makes an insert of values an upsert.
    pub(crate) upsert_value: &'static str,
    /// The longest key the values table holds, if it bounds them, and
    /// what to tell an application that stores a longer one.
    pub(crate) max_key: Option<(usize, &'static str)>,
}

/// Rows written or deleted per statement at most: far below either
/// backend's bound on placeholders.
const BATCH: usize = 100;

/// The columns of every read after `kind` (0 the session's own row, 1 a
/// value, 2 a flash message): each part fills its own and leaves the
/// others NULL, so one query reads a session whole.
const SESSION_PART: &str = "0, s.renewed, s.created, s.expires, s.expiry, s.user_id, s.label, \
                            s.generation, NULL, NULL, NULL, NULL, NULL";
const VALUE_PART: &str =
    "1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, v.{key}, v.value, NULL, NULL, NULL";
const FLASH_PART: &str =
    "2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, f.id, f.level, f.message";

/// The statements both backends send, written once with a store's names.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) names: Names,
    dialect: Dialect,
    load: String,
    read: String,
    list: String,
    retire: String,
    retire_values: String,
    retire_flashes: String,
    delete: String,
    end: String,
    insert_session: String,
    update_session: String,
    insert_values: String,
    delete_values: String,
    insert_flashes: String,
    delete_flashes: String,
}

impl Sql {
    pub(crate) fn new(names: Names, dialect: Dialect) -> Self {
        let q = dialect.quote;
        let r = |sql: &str| (names.render(sql, q)).replace("{key}", &format!("{q}key{q}"));
        let locked = |part: String| match dialect.lock_reads {
            true => format!("({part} FOR UPDATE)"),
            false => part,
        };
        let live = "s.expires > ? AND NOT s.renewed";
        Self {
            // Expired sessions too, until they are swept: the layer reports
            // them (`Loaded::Expired`).
            load: r(&format!(
                "SELECT {SESSION_PART} FROM {{sessions}} s WHERE s.id = ? \
                 UNION ALL SELECT {VALUE_PART} FROM {{sessions}} s \
                 JOIN {{values}} v ON v.session_id = s.id WHERE s.id = ? AND NOT s.renewed \
                 UNION ALL SELECT {FLASH_PART} FROM {{sessions}} s \
                 JOIN {{flashes}} f ON f.session_id = s.id WHERE s.id = ? AND NOT s.renewed"
            )),
            read: r(&[
                locked(format!(
                    "SELECT {SESSION_PART} FROM {{sessions}} s WHERE s.id = ?"
                )),
                locked(format!(
                    "SELECT {VALUE_PART} FROM {{values}} v WHERE v.session_id = ?"
                )),
                locked(format!(
                    "SELECT {FLASH_PART} FROM {{flashes}} f WHERE f.session_id = ?"
                )),
            ]
            .join(" UNION ALL ")),
            list: r(&format!(
                "SELECT s.id, {SESSION_PART} FROM {{sessions}} s WHERE s.user_id = ? AND {live} \
                 UNION ALL SELECT s.id, {VALUE_PART} FROM {{sessions}} s \
                 JOIN {{values}} v ON v.session_id = s.id WHERE s.user_id = ? AND {live} \
                 UNION ALL SELECT s.id, {FLASH_PART} FROM {{sessions}} s \
                 JOIN {{flashes}} f ON f.session_id = s.id WHERE s.user_id = ? AND {live}"
            )),
            retire: r(
                "UPDATE {sessions} SET renewed = TRUE, expires = ?, expiry = NULL, \
                 user_id = NULL, label = NULL, generation = 0, size = 0 \
                 WHERE id = ? AND NOT renewed AND expires > ?",
            ),
            retire_values: r("DELETE FROM {values} WHERE session_id = ?"),
            retire_flashes: r("DELETE FROM {flashes} WHERE session_id = ?"),
            delete: r("DELETE FROM {sessions} WHERE id = ?"),
            end: r(
                "DELETE FROM {sessions} WHERE id = ? AND user_id = ? AND NOT renewed \
                 AND expires > ?",
            ),
            insert_session: r("INSERT INTO {sessions} \
                 (id, expires, created, expiry, user_id, label, generation, size) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            update_session: r(
                "UPDATE {sessions} SET expires = ?, expiry = ?, user_id = ?, \
                 label = ?, generation = ?, size = ? WHERE id = ?",
            ),
            insert_values: r("INSERT INTO {values} (session_id, {key}, value) VALUES "),
            delete_values: r("DELETE FROM {values} WHERE session_id = ? AND {key} IN "),
            insert_flashes: r("INSERT INTO {flashes} (session_id, id, level, message) VALUES "),
            delete_flashes: r("DELETE FROM {flashes} WHERE session_id = ? AND id IN "),
            names,
            dialect,
        }
    }

    /// The session or renewed id's marker under `id`, expired or not,
    /// with its values and flash messages; rows for [`Gathered::add`].
    pub(crate) fn load<'a>(&'a self, id: &'a SessionId) -> Write<'a> {
        Write::new(&self.load, vec![Arg::id(id); 3])
    }

    /// Whatever the rows under `id` hold, locked for a save where the
    /// dialect says so; rows for [`Gathered::add`].
    pub(crate) fn read<'a>(&'a self, id: &'a SessionId) -> Write<'a> {
        Write::new(&self.read, vec![Arg::id(id); 3])
    }

    /// The live sessions bound to `user` at `now`, each row with its
    /// session's id first; rows for [`Gathered::add`].
    pub(crate) fn list<'a>(&'a self, user: &'a str, now: UnixTime) -> Write<'a> {
        let (user, now) = (Arg::text(Some(user)), Arg::Int(stored::secs(now)));
        let args = [
            user.clone(),
            now.clone(),
            user.clone(),
            now.clone(),
            user,
            now,
        ];
        Write::new(&self.list, args.into())
    }

    /// The statements of a retire, in one transaction: the session's row
    /// becomes the marker of a renewed id until `until` if the session is
    /// live at `now` (the first one's count says whether it was), and its
    /// values and flash messages go.
    pub(crate) fn retire<'a>(
        &'a self,
        id: &'a SessionId,
        now: UnixTime,
        until: UnixTime,
    ) -> [Write<'a>; 3] {
        let (until, now) = (stored::secs(until), stored::secs(now));
        [
            Write::new(
                &self.retire,
                vec![Arg::Int(until), Arg::id(id), Arg::Int(now)],
            ),
            Write::new(&self.retire_values, vec![Arg::id(id)]),
            Write::new(&self.retire_flashes, vec![Arg::id(id)]),
        ]
    }

    /// Deletes whatever is under `id`, its rows with it.
    pub(crate) fn delete<'a>(&'a self, id: &'a SessionId) -> Write<'a> {
        Write::new(&self.delete, vec![Arg::id(id)])
    }

    /// Deletes the session under `id` if it is live at `now` and bound to
    /// `user`.
    pub(crate) fn end<'a>(&'a self, user: &'a str, id: &'a SessionId, now: UnixTime) -> Write<'a> {
        let args = vec![
            Arg::id(id),
            Arg::text(Some(user)),
            Arg::Int(stored::secs(now)),
        ];
        Write::new(&self.end, args)
    }

    /// The writes of a new session `record` under `id`, stamped with
    /// `generation`: its row, which fails as a unique violation if the id
    /// holds anything, then the rows of its values and flash messages.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for a key the backend cannot hold.
    pub(crate) fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        generation: u64,
    ) -> Result<(Write<'a>, Vec<Write<'a>>), StoreError> {
        let session = Write::new(
            &self.insert_session,
            vec![
                Arg::id(id),
                Arg::Int(stored::secs(record.expires)),
                Arg::Int(stored::secs(record.created)),
                Arg::Text(record.expiry.encode().map(Cow::Owned)),
                Arg::text(record.user.as_deref()),
                Arg::text(record.label.as_deref()),
                Arg::Int(stored::int(generation)),
                Arg::Int(size_with(record, generation)),
            ],
        );
        let mut values = Vec::with_capacity(record.data.len());
        for (key, value) in &record.data {
            self.check_key(key)?;
            values.push((key.as_str(), value.as_bytes()));
        }
        let flashes: Vec<_> = record.flash.entries().collect();
        let mut rest = Vec::new();
        self.insert_values(&mut rest, id, &values, "");
        self.insert_flashes(&mut rest, id, &flashes);
        Ok((session, rest))
    }

    /// An error if the backend cannot hold `key`.
    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        match self.dialect.max_key {
            Some((max, why)) if key.len() > max => Err(StoreError::Unsupported(why)),
            _ => Ok(()),
        }
    }

    fn insert_values<'a>(
        &'a self,
        into: &mut Vec<Write<'a>>,
        id: &'a SessionId,
        values: &[(&'a str, &'a [u8])],
        suffix: &str,
    ) {
        let sql = &self.insert_values;
        inserts(into, sql, suffix, id, values, 2, |&(key, value), args| {
            args.push(Arg::Blob(Cow::Borrowed(key.as_bytes())));
            args.push(Arg::Blob(Cow::Borrowed(value)));
        });
    }

    fn insert_flashes<'a>(
        &'a self,
        into: &mut Vec<Write<'a>>,
        id: &'a SessionId,
        flashes: &[(u64, &'a http_sessions_core::Flash)],
    ) {
        let sql = &self.insert_flashes;
        inserts(into, sql, "", id, flashes, 3, |&(flash_id, flash), args| {
            args.push(Arg::Blob(Cow::Owned(stored::flash_id(flash_id).to_vec())));
            args.push(Arg::Int(i64::from(stored::level(flash))));
            args.push(Arg::text(Some(&flash.message)));
        });
    }
}

/// Inserts of `rows` into the session under `id`, `BATCH` rows per
/// statement: `prefix`, then per row `(?, ...)` with `width` placeholders
/// after the id's, whose arguments `args` adds, then `suffix`.
fn inserts<'a, T>(
    into: &mut Vec<Write<'a>>,
    prefix: &str,
    suffix: &str,
    id: &'a SessionId,
    rows: &[T],
    width: usize,
    args: impl Fn(&T, &mut Vec<Arg<'a>>),
) {
    let row = format!("(?{})", ", ?".repeat(width));
    for chunk in rows.chunks(BATCH) {
        let mut write = Write::new(
            format!(
                "{prefix}{}{suffix}",
                vec![row.as_str(); chunk.len()].join(", ")
            ),
            Vec::with_capacity(chunk.len() * (width + 1)),
        );
        for item in chunk {
            write.args.push(Arg::id(id));
            args(item, &mut write.args);
        }
        into.push(write);
    }
}

/// Deletes of the rows of the session under `id` that `prefix` names by
/// `names`, `BATCH` per statement.
fn deletes<'a>(into: &mut Vec<Write<'a>>, prefix: &str, id: &'a SessionId, names: &[&'a [u8]]) {
    for chunk in names.chunks(BATCH) {
        let mut args = Vec::with_capacity(chunk.len() + 1);
        args.push(Arg::id(id));
        args.extend(chunk.iter().map(|name| Arg::Blob(Cow::Borrowed(*name))));
        let placeholders = vec!["?"; chunk.len()].join(", ");
        into.push(Write::new(format!("{prefix}({placeholders})"), args));
    }
}

/// One argument of a [`Write`].
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Blob(Cow<'a, [u8]>),
    Int(i64),
    Text(Option<Cow<'a, str>>),
}

impl<'a> Arg<'a> {
    pub(crate) fn id(id: &'a SessionId) -> Self {
        Self::Blob(Cow::Borrowed(&id.as_bytes()[..]))
    }

    pub(crate) fn text(text: Option<&'a str>) -> Self {
        Self::Text(text.map(Cow::Borrowed))
    }
}

/// A statement and its arguments.
#[derive(Debug)]
pub(crate) struct Write<'a> {
    pub(crate) sql: Cow<'a, str>,
    pub(crate) args: Vec<Arg<'a>>,
}

impl<'a> Write<'a> {
    pub(crate) fn new(sql: impl Into<Cow<'a, str>>, args: Vec<Arg<'a>>) -> Self {
        Self {
            sql: sql.into(),
            args,
        }
    }

    /// The statement with its arguments bound, to run on `DB`.
    pub(crate) fn query<'q, DB>(&'q self) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
    where
        DB: Database,
        &'q [u8]: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
    {
        let mut query = sqlx::query(&self.sql);
        for arg in &self.args {
            query = match arg {
                Arg::Blob(bytes) => query.bind(bytes.as_ref()),
                Arg::Int(n) => query.bind(*n),
                Arg::Text(text) => query.bind(text.as_deref()),
            };
        }
        query
    }
}

/// The rows of the sessions a read found, gathered by id from the rows of
/// its parts.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Whether the session's own row was read, and its rows.
    sessions: BTreeMap<Vec<u8>, (bool, Rows)>,
}

impl Gathered {
    /// Adds a row of [`Sql::load`] or [`Sql::read`], or, `listed`, of
    /// [`Sql::list`].
    pub(crate) fn add<R>(&mut self, row: &R, listed: bool) -> Result<(), sqlx::Error>
    where
        R: Row,
        usize: ColumnIndex<R>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> i16: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    {
        let (id, first) = match listed {
            true => (row.try_get(0)?, 1),
            false => (Vec::new(), 0),
        };
        let at = |i: usize| first + i;
        let (own, rows) = self.sessions.entry(id).or_default();
        let kind: i64 = row.try_get(at(0))?;
        match kind {
            0 => {
                *own = true;
                rows.renewed = row.try_get::<i64, _>(at(1))? != 0;
                rows.created = row.try_get(at(2))?;
                rows.expires = row.try_get(at(3))?;
                rows.expiry = row.try_get(at(4))?;
                // Bytes: MySQL keeps the user id binary, to compare it exactly.
                let user: Option<Vec<u8>> = row.try_get(at(5))?;
                rows.user = (user.map(String::from_utf8).transpose())
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                rows.label = row.try_get(at(6))?;
                rows.generation = row.try_get(at(7))?;
            }
            1 => rows.values.push((row.try_get(at(8))?, row.try_get(at(9))?)),
            _ => rows.flashes.push((
                row.try_get(at(10))?,
                row.try_get(at(11))?,
                row.try_get(at(12))?,
            )),
        }
        Ok(())
    }

    /// The rows of the one session read, if its own row was among them.
    pub(crate) fn one(self) -> Option<Rows> {
        self.sessions
            .into_values()
            .find_map(|(own, rows)| own.then_some(rows))
    }

    /// The live sessions at `now` of a list; an id that is not one is
    /// skipped, and so is a session that does not decode, each logged.
    pub(crate) fn listed(self, now: UnixTime) -> Vec<(SessionId, Record)> {
        let mut sessions = Vec::with_capacity(self.sessions.len());
        for (id, (own, rows)) in self.sessions {
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()).map(SessionId::from_bytes) else {
                tracing::warn!("a stored session id is not 16 bytes; skipped");
                continue;
            };
            if let (true, Some(Loaded::Live(record))) = (own, load(&id, Some(rows), now)) {
                sessions.push((id, record));
            }
        }
        sessions
    }
}

/// What a load at `now` finds in `rows`: stored state that does not
/// decode is logged, and is no session.
pub(crate) fn load(id: &SessionId, rows: Option<Rows>, now: UnixTime) -> Option<Loaded> {
    rows?.load(now).unwrap_or_else(|corrupt| {
        log_corrupt(id, corrupt);
        None
    })
}

fn log_corrupt(id: &SessionId, corrupt: Corrupt) {
    tracing::warn!(
        ?id,
        column = corrupt.column,
        reason = corrupt.reason,
        "stored session is corrupt; treated as no session"
    );
}

/// Logs a read whose rows did not decode as their columns' types.
pub(crate) fn log_undecodable(id: &SessionId, error: &sqlx::Error) {
    tracing::warn!(?id, %error, "stored session is corrupt; treated as no session");
}

/// The generation a binding carrying `generation` is stored with when its
/// user's is `theirs`: refused if older, since an end_all ended it
/// (`v2.sql`'s `admit`); a new binding (0) takes the user's.
///
/// # Errors
///
/// [`StoreError::Gone`] as above.
pub(crate) fn admitted(generation: u64, theirs: i64) -> Result<u64, StoreError> {
    let theirs = u64::try_from(theirs).unwrap_or(0);
    if generation != 0 && generation < theirs {
        return Err(StoreError::Gone);
    }
    Ok(generation.max(theirs))
}

/// What `record` counts for in its row's `size` once stamped with
/// `generation`.
fn size_with(record: &Record, generation: u64) -> i64 {
    let stamp = |generation: u64| if generation == 0 { 0 } else { 8 };
    i64::from(stored::size(record)) - stamp(record.generation) + stamp(generation)
}

/// A save under way: the session as its rows hold it, and as the request
/// leaves it.
#[derive(Debug)]
pub(crate) struct Saving {
    before: Record,
    /// The flash ids the rows hold: the record loaded from them keeps
    /// only what the queue's bounds allow, and the rows it left out go.
    stored_flashes: Vec<Vec<u8>>,
    after: Record,
    updated: Updated,
}

impl Saving {
    /// Applies `update` to the session `rows` hold (`None`: no row), by
    /// the core's rules.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] unless the rows hold a live session at
    /// `update.now` (stored state that does not decode is no session), and
    /// [`StoreError::TooLarge`] as [`Entry::apply`] says.
    pub(crate) fn new(
        id: &SessionId,
        rows: Option<Rows>,
        update: &Update<'_>,
    ) -> Result<Self, StoreError> {
        let stored_flashes = rows.iter().flat_map(|rows| &rows.flashes);
        let stored_flashes = stored_flashes.map(|(id, _, _)| id.clone()).collect();
        let Some(Loaded::Live(before)) = load(id, rows, update.now) else {
            return Err(StoreError::Gone);
        };
        let mut entry = Entry::live(&before);
        let updated = entry.apply(update)?;
        let Entry::Live(after) = entry else {
            return Err(StoreError::Gone);
        };
        Ok(Self {
            before,
            stored_flashes,
            after: *after,
            updated,
        })
    }

    /// The user the binding must be admitted to and the generation it
    /// carries, when the save binds the session to another user or changes
    /// the lifetime of its binding (`v2.sql`'s `save`).
    pub(crate) fn admission(&self) -> Option<(&str, u64)> {
        let user = self.after.user.as_deref()?;
        let moved = self.after.user != self.before.user || self.after.expiry != self.before.expiry;
        moved.then_some((user, self.after.generation))
    }

    /// Stamps the binding with the generation it is stored with, its
    /// user's being `theirs` ([`admitted`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if it is of an older generation.
    pub(crate) fn admit(&mut self, theirs: i64) -> Result<(), StoreError> {
        self.after.generation = admitted(self.after.generation, theirs)?;
        Ok(())
    }

    /// What the save leaves under the id.
    pub(crate) fn updated(&self) -> Updated {
        self.updated
    }

    /// The statements that make the rows hold the session as the request
    /// leaves it, writing only what differs from what they hold: the keys
    /// removed and set, the flash messages gone and added, and the
    /// session's row, or its deletion if the save left it empty.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for a key the backend cannot hold.
    pub(crate) fn writes<'a>(
        &'a self,
        id: &'a SessionId,
        sql: &'a Sql,
    ) -> Result<Vec<Write<'a>>, StoreError> {
        if self.updated == Updated::Emptied {
            return Ok(vec![sql.delete(id)]);
        }
        let (before, after) = (&self.before.data, &self.after.data);
        let removed: Vec<&[u8]> = (before.keys())
            .filter(|key| !after.contains_key(key))
            .map(|key| key.as_bytes())
            .collect();
        let mut set = Vec::new();
        for (key, value) in after {
            if before.get(key).map(|old| old.as_bytes()) != Some(value.as_bytes()) {
                sql.check_key(key)?;
                set.push((key.as_str(), value.as_bytes()));
            }
        }
        let flashes: Vec<_> = self.after.flash.entries().collect();
        let stored = |flash_id: u64| {
            let bytes = stored::flash_id(flash_id);
            self.stored_flashes.iter().any(|s| s[..] == bytes[..])
        };
        let taken: Vec<&[u8]> = (self.stored_flashes.iter())
            .filter(|s| {
                !flashes
                    .iter()
                    .any(|(id, _)| s[..] == stored::flash_id(*id)[..])
            })
            .map(|s| &s[..])
            .collect();
        let pushed: Vec<_> = flashes.into_iter().filter(|(id, _)| !stored(*id)).collect();

        let mut writes = Vec::new();
        deletes(&mut writes, &sql.delete_values, id, &removed);
        sql.insert_values(&mut writes, id, &set, sql.dialect.upsert_value);
        deletes(&mut writes, &sql.delete_flashes, id, &taken);
        sql.insert_flashes(&mut writes, id, &pushed);
        let after = &self.after;
        writes.push(Write::new(
            &sql.update_session,
            vec![
                Arg::Int(stored::secs(after.expires)),
                Arg::Text(after.expiry.encode().map(Cow::Owned)),
                Arg::text(after.user.as_deref()),
                Arg::text(after.label.as_deref()),
                Arg::Int(stored::int(after.generation)),
                Arg::Int(size_with(after, after.generation)),
                Arg::id(id),
            ],
        ));
        Ok(writes)
    }
}

/// Whether `e` is an insert refused because its key is taken.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_of_an_older_generation_is_refused() {
        assert_eq!(admitted(0, 7).ok(), Some(7), "a new binding is stamped");
        assert_eq!(admitted(9, 7).ok(), Some(9));
        assert!(matches!(admitted(6, 7), Err(StoreError::Gone)));
    }
}
