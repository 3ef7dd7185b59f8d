//! [`SqliteStore`]: sessions in a SQLite database, a file or memory, with
//! SQLite bundled. One statement per load; a save is one write
//! transaction, begun `IMMEDIATE` so that it holds the database's one
//! write lock from its first statement and applies the request to the
//! rows as they are (`txn.rs`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http_sessions_core::store::{
    EndAll, Ended, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
    UserIndex,
};
use http_sessions_core::{ConfigError, SessionLayer, Settings};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor as _, Sqlite, Transaction};
use tokio::sync::{Mutex as AsyncMutex, MutexGuard};

use crate::error::store_error;
use crate::given::Given;
use crate::names::Names;
use crate::stored;
use crate::sweeper::{DEFAULT_SWEEP_BATCH, Sweep, Sweeper};
use crate::txn::{self, Dialect, Gathered, Saving, Sql};

/// The schema's versions, in order: each is applied once, in one
/// transaction with the version it brings.
const MIGRATIONS: [(i32, &str); 1] = [(1, include_str!("v1.sql"))];

/// Connections a pool built from a URL opens at most: one writes at a
/// time, the others read.
const DEFAULT_POOL_SIZE: u32 = 8;

const DIALECT: Dialect = Dialect {
    quote: '"',
    // An IMMEDIATE transaction holds the write lock from its start.
    lock_reads: false,
    upsert_value: " ON CONFLICT (session_id, \"key\") DO UPDATE SET value = excluded.value",
    max_key: None,
};

/// The statements of one table family, written once with its names:
/// those shared with MySQL, and SQLite's own.
#[derive(Debug)]
struct Statements {
    shared: Sql,
    admit: String,
    end_all_user: String,
    end_all_delete: String,
    end_all_keep: String,
    sweep_sessions: String,
    sweep_users: String,
}

impl Statements {
    fn new(names: Names) -> Self {
        let r = |sql: &str| names.render(sql, '"');
        Self {
            // The user's generation, with the row kept until the binding
            // ends (`v2.sql`'s `admit`).
            admit: r(
                "INSERT INTO {users} (user_id, generation, remember_until) VALUES (?1, 1, ?2) \
                 ON CONFLICT (user_id) DO UPDATE \
                 SET remember_until = max(remember_until, excluded.remember_until) \
                 RETURNING generation",
            ),
            end_all_user: r("INSERT INTO {users} (user_id, generation, remember_until) \
                 VALUES (?1, max(2, ?2), ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET generation = max(generation + 1, ?2), \
                 remember_until = max(remember_until, excluded.remember_until) \
                 RETURNING generation"),
            end_all_delete: r("DELETE FROM {sessions} WHERE user_id = ? AND id IS NOT ? \
                 RETURNING expires"),
            end_all_keep: r("UPDATE {sessions} SET generation = ? WHERE id = ? AND user_id = ?"),
            sweep_sessions: r("DELETE FROM {sessions} WHERE id IN \
                 (SELECT id FROM {sessions} WHERE expires <= ? LIMIT ?)"),
            sweep_users: r("DELETE FROM {users} WHERE user_id IN \
                 (SELECT user_id FROM {users} WHERE remember_until <= ? LIMIT ?)"),
            shared: Sql::new(names, DIALECT),
        }
    }
}

/// A session store in a SQLite database, on a [`SqlitePool`]; SQLite is
/// bundled, so there is no server to run.
///
/// Build it from a URL ([`from_url`](Self::from_url): `sqlite://sessions.db`
/// makes the file if missing) or on the application's own pool
/// ([`from_pool`](Self::from_pool)), then call [`migrate`](Self::migrate)
/// once at start-up, which makes or upgrades its tables;
/// [`session_layer`] does all three from `DATABASE_URL`. Clones share the
/// pool.
///
/// SQLite lets one connection write at a time: the store's saves take
/// turns in the order they come (a lock of its own, shared by its clones),
/// and wait for writers of other processes as the connections'
/// `busy_timeout` allows. Loads read beside them (the WAL journal).
///
/// ```
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_sql::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::from_url("sqlite::memory:")?;
/// store.migrate().await?;
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let _sweeper = store.sweeper(); // deletes expired rows while it lives
/// let layer = SessionLayer::new(store, &settings);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: Arc<Statements>,
    /// The store timeout and the clock of the layer's settings.
    given: Given,
    /// Held by each write transaction: the writers of this store take
    /// turns in order, rather than SQLite's busy handler polling for the
    /// lock with sleeps in between.
    writer: Arc<AsyncMutex<()>>,
}

impl SqliteStore {
    /// A store on a pool of at most 8 connections to the database at
    /// `url`: `sqlite://path/to/sessions.db` (the file is made if
    /// missing), or `sqlite::memory:`, a database in memory that lives as
    /// long as the pool's one connection, which the pool then keeps open.
    /// No connection is made until the first call. Its connections use
    /// the WAL journal (loads read while a save writes), `synchronous =
    /// NORMAL` (a commit survives the application crashing; the last ones
    /// may not survive the machine losing power), foreign keys, and the
    /// settings' store timeout as their `busy_timeout`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `url` is not a SQLite URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let options: SqliteConnectOptions = url.parse().map_err(|e| {
            ConfigError::Store(format!("the session database URL is not usable: {e}").into())
        })?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let given = Given::new();
        let timeouts = given.clone();
        let mut pool = SqlitePoolOptions::new()
            .max_connections(DEFAULT_POOL_SIZE)
            // Nothing can break a connection between two calls.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let ms = timeouts.timeout_ms();
                Box::pin(async move {
                    conn.execute(format!("PRAGMA busy_timeout = {ms}").as_str())
                        .await
                        .map(|_| ())
                })
            });
        if is_memory(url) {
            // The database is gone once its last connection closes.
            pool = pool
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let mut store = Self::from_pool(pool.connect_lazy_with(options));
        store.given = given;
        Ok(store)
    }

    /// A store on the application's own pool, whose settings stay as they
    /// are: a save waits for the writers of other processes as long as the
    /// pool's `busy_timeout` (5 seconds unless set). The pool's connections
    /// must enforce foreign keys (sqlx's default; [`migrate`](Self::migrate)
    /// checks), since a session's values go with it. A database in memory
    /// must be on a pool of one connection that is never closed
    /// (`max_connections(1)`, no idle timeout and no lifetime): each
    /// connection of another pool may see a database of its own, and it
    /// is gone when the connection closes.
    ///
    /// ```
    /// use http_sessions_sql::SqliteStore;
    /// use sqlx::sqlite::SqlitePoolOptions;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A database in memory: one connection, never closed.
    /// let pool = SqlitePoolOptions::new()
    ///     .max_connections(1)
    ///     .idle_timeout(None)
    ///     .max_lifetime(None)
    ///     .connect("sqlite::memory:")
    ///     .await?;
    /// let store = SqliteStore::from_pool(pool).with_table("sessions")?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            sql: Arc::new(Statements::new(Names::default())),
            given: Given::new(),
            writer: Arc::new(AsyncMutex::new(())),
        }
    }

    /// Names the sessions table `table` (default [`DEFAULT_TABLE`]); the
    /// others are named after it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] unless `table` is 1 to 48 ASCII letters,
    /// digits and `_`, not starting with a digit.
    ///
    /// [`DEFAULT_TABLE`]: crate::DEFAULT_TABLE
    pub fn with_table(mut self, table: &str) -> Result<Self, ConfigError> {
        let mut names = self.sql.shared.names.clone();
        names.table = Names::check("table", table)?;
        self.sql = Arc::new(Statements::new(names));
        Ok(self)
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Makes the store's tables, or brings them up to this release's
    /// version; does nothing when they are. Safe to run from every
    /// instance at once: each does it in one write transaction, which
    /// waits for the one before, then finds nothing left to do.
    ///
    /// # Errors
    ///
    /// The database's, and [`StoreError::Unsupported`] if the pool's
    /// connections do not enforce foreign keys; nothing of a failed
    /// version is left applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let names = &self.sql.shared.names;
        let version_table = names.render(
            "CREATE TABLE IF NOT EXISTS {version} (version INTEGER NOT NULL)",
            '"',
        );
        let current_version = names.render("SELECT max(version) FROM {version}", '"');
        let record_version = names.render("INSERT INTO {version} (version) VALUES (?)", '"');
        let (_writer, mut tx) = self.begin().await?;
        let done = async {
            let enforced: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            if enforced == 0 {
                return Err(StoreError::Unsupported(
                    "the SQLite session store needs connections that enforce foreign keys \
                     (SqliteConnectOptions::foreign_keys(true), sqlx's default)",
                ));
            }
            (&mut *tx)
                .execute(sqlx::raw_sql(&version_table))
                .await
                .map_err(store_error)?;
            let current: Option<i32> = sqlx::query_scalar(&current_version)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            for (version, sql) in self.migrations() {
                if version <= current.unwrap_or(0) {
                    continue;
                }
                (&mut *tx)
                    .execute(sqlx::raw_sql(&sql))
                    .await
                    .map_err(store_error)?;
                sqlx::query(&record_version)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
            }
            Ok(())
        }
        .await;
        finish(tx, done).await
    }

    /// The SQL of every version, with this store's names, for an
    /// application that runs its own migrations: apply them in order, and
    /// record the last in the `_version` table
    /// (`INSERT INTO <table>_version VALUES (1)`) so that
    /// [`migrate`](Self::migrate) finds nothing to do.
    pub fn migrations(&self) -> Vec<(i32, String)> {
        MIGRATIONS
            .iter()
            .map(|(version, sql)| (*version, self.sql.shared.names.render(sql, '"')))
            .collect()
    }

    /// Deletes every expired session and renewed id, and the users'
    /// generations no session needs any more, [`DEFAULT_SWEEP_BATCH`] rows
    /// per statement; how many rows. For a cron job; a [`Sweeper`] does it
    /// on a timer. Instances sweeping at once take turns, as SQLite's
    /// writers do: each batch finds what the one before left.
    ///
    /// # Errors
    ///
    /// The database's; the batches before the error stay deleted.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.delete_expired_in(DEFAULT_SWEEP_BATCH).await
    }

    /// A [`Sweeper`] deleting expired rows every minute, on the current
    /// Tokio runtime, until it is stopped or dropped.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper::start(self.clone(), crate::DEFAULT_SWEEP_EVERY)
    }

    /// This store's turn to write, and a write transaction holding the
    /// database's write lock.
    async fn begin(
        &self,
    ) -> Result<(MutexGuard<'_, ()>, Transaction<'static, Sqlite>), StoreError> {
        let turn = self.writer.lock().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        Ok((turn, tx))
    }

    /// One write statement of its own, in this store's turn.
    async fn write(&self, write: txn::Write<'_>) -> Result<u64, StoreError> {
        let _turn = self.writer.lock().await;
        let done = write.query().execute(&self.pool).await;
        Ok(done.map_err(store_error)?.rows_affected())
    }

    async fn save(
        &self,
        tx: &mut SqliteConnection,
        id: &SessionId,
        update: &Update<'_>,
    ) -> Result<Updated, StoreError> {
        let mut gathered = Gathered::default();
        let found = (self.sql.shared.read(id).query())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        for row in &found {
            if let Err(e) = gathered.add(row, false) {
                txn::log_undecodable(id, &e);
                return Err(StoreError::Gone);
            }
        }
        let mut saving = Saving::new(id, gathered.one(), update)?;
        if let Some((user, _)) = saving.admission() {
            let theirs = self.admit(tx, user, update.ends).await?;
            saving.admit(theirs)?;
        }
        for write in saving.writes(id, &self.sql.shared)? {
            write.query().execute(&mut *tx).await.map_err(store_error)?;
        }
        Ok(saving.updated())
    }

    /// The generation of `user`, whose row is kept at least until `ends`.
    async fn admit(
        &self,
        tx: &mut SqliteConnection,
        user: &str,
        ends: UnixTime,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(&self.sql.admit)
            .bind(user)
            .bind(stored::secs(ends))
            .fetch_one(tx)
            .await
            .map_err(store_error)
    }

    async fn create_in(
        &self,
        tx: &mut SqliteConnection,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        let mut generation = record.generation;
        if let Some(user) = &record.user {
            let theirs = self.admit(tx, user, ends).await?;
            generation = txn::admitted(generation, theirs)?;
        }
        let (session, rest) = self.sql.shared.create(id, record, generation)?;
        match session.query().execute(&mut *tx).await {
            Err(e) if txn::is_unique_violation(&e) => return Err(StoreError::Exists),
            done => done.map_err(store_error)?,
        };
        for write in rest {
            write.query().execute(&mut *tx).await.map_err(store_error)?;
        }
        Ok(())
    }

    async fn end_all_in(
        &self,
        tx: &mut SqliteConnection,
        user: &str,
        end: &EndAll<'_>,
    ) -> Result<Ended, StoreError> {
        let keep = end.keep.map(|id| &id.as_bytes()[..]);
        let generation: i64 = sqlx::query_scalar(&self.sql.end_all_user)
            .bind(user)
            .bind(stored::int(end.floor))
            .bind(stored::secs(end.remember_until))
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let ended: Vec<i64> = sqlx::query_scalar(&self.sql.end_all_delete)
            .bind(user)
            .bind(keep)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some(keep) = keep {
            sqlx::query(&self.sql.end_all_keep)
                .bind(generation)
                .bind(keep)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        let now = stored::secs(end.now);
        Ok(Ended {
            sessions: ended.iter().filter(|&&expires| expires > now).count(),
            generation: u64::try_from(generation).unwrap_or(0),
        })
    }
}

/// Commits `tx` if the work in it is `done`, or rolls it back.
async fn finish<T>(
    tx: Transaction<'static, Sqlite>,
    done: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match done {
        Ok(value) => {
            tx.commit().await.map_err(store_error)?;
            Ok(value)
        }
        Err(e) => {
            // A rollback that fails leaves the connection to the pool,
            // which closes it.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[async_trait]
impl SessionStore for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        let found = (self.sql.shared.load(id).query())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut gathered = Gathered::default();
        for row in &found {
            if let Err(e) = gathered.add(row, false) {
                txn::log_undecodable(id, &e);
                return Ok(None);
            }
        }
        Ok(txn::load(id, gathered.one(), now))
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let done = self.create_in(&mut tx, id, record, ends).await;
        finish(tx, done).await
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let done = self.save(&mut tx, id, &update).await;
        finish(tx, done).await
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        _user: Option<&str>,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let done = async {
            let [marker, values, flashes] = self.sql.shared.retire(id, now, until);
            let marked = marker.query().execute(&mut *tx).await;
            if marked.map_err(store_error)?.rows_affected() == 0 {
                return Err(StoreError::Gone);
            }
            for write in [values, flashes] {
                write.query().execute(&mut *tx).await.map_err(store_error)?;
            }
            Ok(())
        }
        .await;
        finish(tx, done).await
    }

    async fn delete(&self, id: &SessionId, _user: Option<&str>) -> Result<(), StoreError> {
        self.write(self.sql.shared.delete(id)).await.map(|_| ())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn use_settings(&self, settings: &Settings) {
        self.given.take(settings);
    }
}

#[async_trait]
impl UserIndex for SqliteStore {
    async fn list(
        &self,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let found = (self.sql.shared.list(user, now).query())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut gathered = Gathered::default();
        for row in &found {
            gathered.add(row, true).map_err(store_error)?;
        }
        Ok(gathered.listed(now))
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self.write(self.sql.shared.end(user, id, now)).await? > 0)
    }

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let done = self.end_all_in(&mut tx, user, &end).await;
        finish(tx, done).await
    }
}

#[async_trait]
impl Sweep for SqliteStore {
    async fn delete_expired_batch(&self, batch: u32) -> Result<u64, StoreError> {
        let now = stored::secs(self.given.now());
        let mut deleted = 0;
        for sql in [&self.sql.sweep_sessions, &self.sql.sweep_users] {
            let args = vec![txn::Arg::Int(now), txn::Arg::Int(i64::from(batch))];
            deleted += self.write(txn::Write::new(sql, args)).await?;
        }
        Ok(deleted)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("tables", &self.sql.shared.names.qualified("", '"'))
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// A session layer keeping sessions in the SQLite database at
/// `DATABASE_URL` (`sqlite://sessions.db`, made if missing): opens it,
/// makes or upgrades the tables ([`SqliteStore::migrate`]), and starts no
/// sweeper (keep [`SqliteStore::sweeper`] of a store of your own, or run
/// `delete_expired` from a cron job).
///
/// # Errors
///
/// [`ConfigError::Store`] if `DATABASE_URL` is unset or not a SQLite URL,
/// or the tables could not be made (the file cannot be written).
pub async fn session_layer(settings: &Settings) -> Result<SessionLayer, ConfigError> {
    let store = SqliteStore::from_url(&crate::database_url()?)?;
    store.use_settings(settings);
    store.migrate().await.map_err(|e| {
        ConfigError::Store(format!("could not make the session tables: {e}").into())
    })?;
    Ok(SessionLayer::new(store, settings))
}
