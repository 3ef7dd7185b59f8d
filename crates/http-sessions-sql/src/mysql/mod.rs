//! [`MySqlStore`]: sessions in MySQL 8 or MariaDB 10.6 and later, on
//! InnoDB. One statement per load; a save is one transaction that locks
//! the session's rows (`SELECT ... FOR UPDATE`) and applies the request
//! to them as they are (`txn.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_sessions_core::store::{
    EndAll, Ended, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
    UserIndex,
};
use http_sessions_core::{ConfigError, SessionLayer, Settings};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection as _, Executor as _, MySql, Transaction};

use crate::error::{retried, store_error};
use crate::given::Given;
use crate::names::Names;
use crate::stored;
use crate::sweeper::{DEFAULT_SWEEP_BATCH, Sweep, Sweeper};
use crate::txn::{self, Dialect, Gathered, Saving, Sql};

/// The schema's versions, in order. MySQL commits each DDL statement as
/// it runs, so a version is written to be run again if it was cut short,
/// and instances migrating at once take turns on a named lock.
const MIGRATIONS: [(i32, &str); 1] = [(1, include_str!("v1.sql"))];

/// Connections a pool built from a URL opens at most.
const DEFAULT_POOL_SIZE: u32 = 10;

/// How long [`MySqlStore::migrate`] waits for another instance's.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(60);

/// The lock migrations take turns on, named after the tables (at most 64
/// characters: a name cut short only makes more migrations take turns);
/// binds the database, or NULL for the connection's, and the table.
const GET_LOCK: &str = "SELECT GET_LOCK(LEFT(CONCAT('http-sessions ', \
     COALESCE(?, DATABASE(), ''), '.', ?), 64), ?)";
const RELEASE_LOCK: &str = "SELECT RELEASE_LOCK(LEFT(CONCAT('http-sessions ', \
     COALESCE(?, DATABASE(), ''), '.', ?), 64))";

/// The longest key the values table holds, in bytes.
pub const MAX_KEY_LEN: usize = 3056;

const DIALECT: Dialect = Dialect {
    quote: '`',
    lock_reads: true,
    upsert_value: " ON DUPLICATE KEY UPDATE value = VALUES(value)",
    max_key: Some((
        MAX_KEY_LEN,
        "a session key longer than 3056 bytes, the most a MySQL index holds beside the \
         session id: use a shorter key",
    )),
};

/// Every write transaction: at READ COMMITTED, InnoDB locks the rows a
/// save reads and not the gaps beside them, so that saves of sessions
/// whose rows neighbour each other neither wait for nor deadlock with one
/// another. One round trip.
const BEGIN: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION";

/// The statements of one table family, written once with its names:
/// those shared with SQLite, and MySQL's own.
#[derive(Debug)]
struct Statements {
    shared: Sql,
    admit: String,
    generation: String,
    end_all_user: String,
    end_all_live: String,
    end_all_rest: String,
    end_all_keep: String,
    /// A batch of a sweep, each in a transaction of its own: the expired
    /// rows no other instance is deleting, locked, then deleted by key.
    sweep_sessions: (String, String),
    sweep_users: (String, String),
}

impl Statements {
    fn new(names: Names) -> Self {
        let r = |sql: &str| names.render(sql, '`');
        Self {
            // The user's row, kept until the binding ends, then its
            // generation, locked by the upsert (`v2.sql`'s `admit`).
            admit: r(
                "INSERT INTO {users} (user_id, generation, remember_until) VALUES (?, 1, ?) \
                 ON DUPLICATE KEY UPDATE remember_until = GREATEST(remember_until, ?)",
            ),
            generation: r("SELECT generation FROM {users} WHERE user_id = ? FOR UPDATE"),
            end_all_user: r("INSERT INTO {users} (user_id, generation, remember_until) \
                 VALUES (?, GREATEST(2, ?), ?) \
                 ON DUPLICATE KEY UPDATE generation = GREATEST(generation + 1, ?), \
                 remember_until = GREATEST(remember_until, ?)"),
            // The sessions a "log out everywhere" ends, counted, then the
            // expired ones beside them.
            end_all_live: r(
                "DELETE FROM {sessions} WHERE user_id = ? AND NOT (id <=> ?) \
                 AND expires > ?",
            ),
            end_all_rest: r("DELETE FROM {sessions} WHERE user_id = ? AND NOT (id <=> ?)"),
            end_all_keep: r("UPDATE {sessions} SET generation = ? WHERE id = ? AND user_id = ?"),
            sweep_sessions: (
                r("SELECT id FROM {sessions} WHERE expires <= ? LIMIT ? FOR UPDATE SKIP LOCKED"),
                r("DELETE FROM {sessions} WHERE id IN "),
            ),
            sweep_users: (
                r(
                    "SELECT user_id FROM {users} WHERE remember_until <= ? LIMIT ? \
                   FOR UPDATE SKIP LOCKED",
                ),
                r("DELETE FROM {users} WHERE user_id IN "),
            ),
            shared: Sql::new(names, DIALECT),
        }
    }
}

/// A session store in MySQL 8 or MariaDB 10.6 and later, on a
/// [`MySqlPool`].
///
/// Build it on the application's own pool ([`from_pool`](Self::from_pool))
/// or from a URL ([`from_url`](Self::from_url)), then call
/// [`migrate`](Self::migrate) once at start-up, which makes or upgrades its
/// tables (InnoDB); [`session_layer`] does all three from `DATABASE_URL`.
/// Clones share the pool. Keys of at most [`MAX_KEY_LEN`] bytes are
/// stored; a save of a longer one fails as
/// [`StoreError::Unsupported`]. Saves run at READ COMMITTED, which a
/// server whose binary log is in STATEMENT format refuses to write: keep
/// it ROW or MIXED (MySQL's and MariaDB's defaults).
///
/// ```no_run
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_sql::MySqlStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::MySqlPool::connect("mysql://app@localhost/app").await?;
/// let store = MySqlStore::from_pool(pool).with_schema("auth")?;
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
pub struct MySqlStore {
    pool: MySqlPool,
    sql: Arc<Statements>,
    /// The store timeout and the clock of the layer's settings.
    given: Given,
}

impl MySqlStore {
    /// A store on a pool of at most 10 connections to the database at
    /// `url` (`mysql://user:password@host:port/database`); no connection
    /// is made until the first call, so the application starts while the
    /// database is down. Its connections keep the settings' store timeout
    /// as their `innodb_lock_wait_timeout` (whole seconds, at least one)
    /// and as the longest a statement runs (MySQL's `max_execution_time`,
    /// which bounds reads; MariaDB's `max_statement_time`, every
    /// statement).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `url` is not a MySQL URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let options: MySqlConnectOptions = url.parse().map_err(|e| {
            ConfigError::Store(format!("the session database URL is not usable: {e}").into())
        })?;
        let given = Given::new();
        let timeouts = given.clone();
        let pool = MySqlPoolOptions::new()
            .max_connections(DEFAULT_POOL_SIZE)
            // Every connection is tested as it goes back to the pool; one
            // that broke while idle fails its next call, and is closed.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let ms = timeouts.timeout_ms();
                Box::pin(async move {
                    let mariadb: i64 = sqlx::query_scalar("SELECT VERSION() LIKE '%MariaDB%'")
                        .fetch_one(&mut *conn)
                        .await?;
                    conn.execute(session_timeouts(mariadb != 0, ms).as_str())
                        .await
                        .map(|_| ())
                })
            })
            .connect_lazy_with(options);
        let mut store = Self::from_pool(pool);
        store.given = given;
        Ok(store)
    }

    /// A store on the application's own pool, whose settings stay as they
    /// are. MySQL keeps a lock wait's bound per connection, not per
    /// transaction: a save waits for another's lock as long as the
    /// connection's `innodb_lock_wait_timeout` says (50 seconds unless
    /// set), and when the layer gives up on a call first, the server goes
    /// on waiting until then before it rolls the save back. Set it, in
    /// the pool's `after_connect`, near the settings' store timeout.
    pub fn from_pool(pool: MySqlPool) -> Self {
        Self {
            pool,
            sql: Arc::new(Statements::new(Names::default())),
            given: Given::new(),
        }
    }

    /// Keeps the tables in the database `schema`, which must exist,
    /// instead of the connection's.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] unless `schema` is 1 to 48 ASCII letters,
    /// digits and `_`, not starting with a digit.
    pub fn with_schema(self, schema: &str) -> Result<Self, ConfigError> {
        let mut names = self.sql.shared.names.clone();
        names.schema = Some(Names::check("schema", schema)?);
        Ok(self.with_names(names))
    }

    /// Names the sessions table `table` (default [`DEFAULT_TABLE`]); the
    /// others are named after it.
    ///
    /// # Errors
    ///
    /// As [`with_schema`](Self::with_schema).
    ///
    /// [`DEFAULT_TABLE`]: crate::DEFAULT_TABLE
    pub fn with_table(self, table: &str) -> Result<Self, ConfigError> {
        let mut names = self.sql.shared.names.clone();
        names.table = Names::check("table", table)?;
        Ok(self.with_names(names))
    }

    fn with_names(mut self, names: Names) -> Self {
        self.sql = Arc::new(Statements::new(names));
        self
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Makes the store's tables, or brings them up to this release's
    /// version; does nothing when they are. Safe to run from every
    /// instance at once: each waits for the one before (a lock named
    /// after the tables, `GET_LOCK`, for at most a minute), then finds
    /// nothing left to do. It runs on a connection of its own, closed
    /// after, so that the lock never outlives it.
    ///
    /// # Errors
    ///
    /// The database's, or [`StoreError::Unavailable`] if another
    /// instance's migration held the lock for a minute. A version is
    /// recorded only once all of it is applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?.detach();
        let done = self.migrate_on(&mut conn).await;
        // Closing the connection releases the lock whatever happened.
        let _ = conn.close().await;
        done
    }

    async fn migrate_on(&self, conn: &mut MySqlConnection) -> Result<(), StoreError> {
        let names = &self.sql.shared.names;
        let version_table = names.render(
            "CREATE TABLE IF NOT EXISTS {version} (version INT NOT NULL) ENGINE = InnoDB",
            '`',
        );
        let current_version = names.render("SELECT MAX(version) FROM {version}", '`');
        let record_version = names.render("INSERT INTO {version} (version) VALUES (?)", '`');
        let lock = |sql: &'static str| {
            sqlx::query_scalar(sql)
                .bind(names.schema.as_deref())
                .bind(&names.table)
        };
        let locked: Option<i64> = lock(GET_LOCK)
            .bind(i64::try_from(MIGRATION_LOCK_WAIT.as_secs()).unwrap_or(60))
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
        if locked != Some(1) {
            return Err(StoreError::unavailable(
                "another instance's migration of the session tables held its lock for a minute",
            ));
        }
        conn.execute(sqlx::raw_sql(&version_table))
            .await
            .map_err(store_error)?;
        let current: Option<i32> = sqlx::query_scalar(&current_version)
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
        for (version, sql) in self.migrations() {
            if version <= current.unwrap_or(0) {
                continue;
            }
            conn.execute(sqlx::raw_sql(&sql))
                .await
                .map_err(store_error)?;
            sqlx::query(&record_version)
                .bind(version)
                .execute(&mut *conn)
                .await
                .map_err(store_error)?;
        }
        let _released: Option<i64> = lock(RELEASE_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The SQL of every version, with this store's names, for an
    /// application that runs its own migrations: apply them in order, and
    /// record the last in the `_version` table
    /// (`INSERT INTO <table>_version VALUES (1)`) so that
    /// [`migrate`](Self::migrate) finds nothing to do.
    pub fn migrations(&self) -> Vec<(i32, String)> {
        MIGRATIONS
            .iter()
            .map(|(version, sql)| (*version, self.sql.shared.names.render(sql, '`')))
            .collect()
    }

    /// Deletes every expired session and renewed id, and the users'
    /// generations no session needs any more, [`DEFAULT_SWEEP_BATCH`] rows
    /// per statement; how many rows. For a cron job; a [`Sweeper`] does it
    /// on a timer. Instances sweeping at once each skip the rows another
    /// is deleting (`SKIP LOCKED`).
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

    /// A write transaction; begun again on another connection while the
    /// one it had was dead ([`retried`]): nothing ran on it yet.
    async fn begin(&self) -> Result<Transaction<'static, MySql>, StoreError> {
        retried(self.tries(), true, || self.pool.begin_with(BEGIN)).await
    }

    /// How many connections a call tries at most: the pool's size and one.
    fn tries(&self) -> u32 {
        self.pool.options().get_max_connections().saturating_add(1)
    }

    async fn save(
        &self,
        tx: &mut MySqlConnection,
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

    /// The generation of `user`, whose row is kept at least until `ends`
    /// and locked until the transaction ends.
    async fn admit(
        &self,
        tx: &mut MySqlConnection,
        user: &str,
        ends: UnixTime,
    ) -> Result<i64, StoreError> {
        let ends = stored::secs(ends);
        sqlx::query(&self.sql.admit)
            .bind(user)
            .bind(ends)
            .bind(ends)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query_scalar(&self.sql.generation)
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)
    }

    async fn create_in(
        &self,
        tx: &mut MySqlConnection,
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
        tx: &mut MySqlConnection,
        user: &str,
        end: &EndAll<'_>,
    ) -> Result<Ended, StoreError> {
        let keep = end.keep.map(|id| &id.as_bytes()[..]);
        let (floor, remember_until) = (stored::int(end.floor), stored::secs(end.remember_until));
        sqlx::query(&self.sql.end_all_user)
            .bind(user)
            .bind(floor)
            .bind(remember_until)
            .bind(floor)
            .bind(remember_until)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let generation: i64 = sqlx::query_scalar(&self.sql.generation)
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let ended = sqlx::query(&self.sql.end_all_live)
            .bind(user)
            .bind(keep)
            .bind(stored::secs(end.now))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        sqlx::query(&self.sql.end_all_rest)
            .bind(user)
            .bind(keep)
            .execute(&mut *tx)
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
        Ok(Ended {
            sessions: usize::try_from(ended).unwrap_or(usize::MAX),
            generation: u64::try_from(generation).unwrap_or(0),
        })
    }
}

/// Commits `tx` if the work in it is `done`, or rolls it back.
async fn finish<T>(
    tx: Transaction<'static, MySql>,
    done: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match done {
        Ok(value) => {
            tx.commit().await.map_err(store_error)?;
            Ok(value)
        }
        Err(e) => {
            // A rollback that fails leaves the connection to the pool,
            // which tests it and closes it.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The statement that bounds a connection's lock waits and statements by
/// `ms` milliseconds.
fn session_timeouts(mariadb: bool, ms: u64) -> String {
    let secs = ms.div_ceil(1000).max(1);
    if mariadb {
        // Seconds, with a fraction; of every statement.
        let statement = ms as f64 / 1000.0;
        format!(
            "SET SESSION innodb_lock_wait_timeout = {secs}, SESSION max_statement_time = {statement}"
        )
    } else {
        // Of reads only.
        format!("SET SESSION innodb_lock_wait_timeout = {secs}, SESSION max_execution_time = {ms}")
    }
}

#[async_trait]
impl SessionStore for MySqlStore {
    fn name(&self) -> &'static str {
        "mysql"
    }

    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        let load = self.sql.shared.load(id);
        let found = retried(self.tries(), true, || load.query().fetch_all(&self.pool)).await?;
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
        let mut tx = self.begin().await?;
        let done = self.create_in(&mut tx, id, record, ends).await;
        finish(tx, done).await
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
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
        let delete = self.sql.shared.delete(id);
        retried(self.tries(), true, || delete.query().execute(&self.pool)).await?;
        Ok(())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn use_settings(&self, settings: &Settings) {
        self.given.take(settings);
    }
}

#[async_trait]
impl UserIndex for MySqlStore {
    async fn list(
        &self,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let list = self.sql.shared.list(user, now);
        let found = retried(self.tries(), true, || list.query().fetch_all(&self.pool)).await?;
        let mut gathered = Gathered::default();
        for row in &found {
            gathered.add(row, true).map_err(store_error)?;
        }
        Ok(gathered.listed(now))
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError> {
        let end = self.sql.shared.end(user, id, now);
        let ended = end.query().execute(&self.pool).await;
        Ok(ended.map_err(store_error)?.rows_affected() > 0)
    }

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError> {
        let mut tx = self.begin().await?;
        let done = self.end_all_in(&mut tx, user, &end).await;
        finish(tx, done).await
    }
}

#[async_trait]
impl Sweep for MySqlStore {
    async fn delete_expired_batch(&self, batch: u32) -> Result<u64, StoreError> {
        let now = stored::secs(self.given.now());
        let mut deleted = 0;
        for (pick, delete) in [&self.sql.sweep_sessions, &self.sql.sweep_users] {
            let mut tx = self.begin().await?;
            let done = async {
                let keys: Vec<Vec<u8>> = sqlx::query_scalar(pick)
                    .bind(now)
                    .bind(i64::from(batch))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(store_error)?;
                if keys.is_empty() {
                    return Ok(0);
                }
                let args = keys.iter().map(|key| txn::Arg::Blob(key.into())).collect();
                let placeholders = vec!["?"; keys.len()].join(", ");
                let delete = txn::Write::new(format!("{delete}({placeholders})"), args);
                let done = delete.query().execute(&mut *tx).await;
                Ok(done.map_err(store_error)?.rows_affected())
            }
            .await;
            deleted += finish(tx, done).await?;
        }
        Ok(deleted)
    }
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("tables", &self.sql.shared.names.qualified("", '`'))
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// A session layer keeping sessions in the MySQL or MariaDB database at
/// `DATABASE_URL`: connects, makes or upgrades the tables
/// ([`MySqlStore::migrate`]), and starts no sweeper (keep
/// [`MySqlStore::sweeper`] of a store of your own, or run
/// `delete_expired` from a cron job).
///
/// # Errors
///
/// [`ConfigError::Store`] if `DATABASE_URL` is unset or not a MySQL URL,
/// or the tables could not be made (the database is down, or the user may
/// not create tables).
pub async fn session_layer(settings: &Settings) -> Result<SessionLayer, ConfigError> {
    let store = MySqlStore::from_url(&crate::database_url()?)?;
    store.use_settings(settings);
    store.migrate().await.map_err(|e| {
        ConfigError::Store(format!("could not make the session tables: {e}").into())
    })?;
    Ok(SessionLayer::new(store, settings))
}
