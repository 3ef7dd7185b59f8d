//! [`PostgresStore`]: sessions in PostgreSQL, one statement per load and
//! one per save. A save is a call of a function the store installs
//! (`v2.sql`), which locks the session's row and applies the request's
//! changes in one transaction: the rules of the contract, in the one place
//! that sees the row as it is.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use http_sessions_core::store::{
    EndAll, Ended, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
    UserIndex,
};
use http_sessions_core::{ConfigError, SessionLayer, Settings};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor as _, Row as _};

use crate::error::{retried, store_error};
use crate::given::Given;
use crate::names::Names;
use crate::stored::{self, Corrupt, Rows};
use crate::sweeper::{DEFAULT_SWEEP_BATCH, Sweep, Sweeper};

/// The schema's versions, in order: each is applied once, in one
/// transaction with the version it brings.
const MIGRATIONS: [(i32, &str); 2] = [(1, include_str!("v1.sql")), (2, include_str!("v2.sql"))];

/// Connections a pool built from a URL opens at most.
const DEFAULT_POOL_SIZE: u32 = 10;

/// The statements of one table family, written once with its names.
#[derive(Debug)]
struct Statements {
    names: Names,
    load: String,
    list: String,
    create: String,
    save: String,
    retire: String,
    delete: String,
    end: String,
    end_all: String,
    sweep_sessions: String,
    sweep_users: String,
}

/// The columns a load and a list read, after the id.
const COLUMNS: &str = "s.renewed, s.created, s.expires, s.expiry, s.user_id, s.label, \
     s.generation, v.keys, v.vals, f.ids, f.levels, f.messages \
     FROM {sessions} s \
     LEFT JOIN LATERAL (SELECT array_agg(key) AS keys, array_agg(value) AS vals \
         FROM {values} WHERE session_id = s.id) v ON NOT s.renewed \
     LEFT JOIN LATERAL (SELECT array_agg(id) AS ids, array_agg(level) AS levels, \
         array_agg(message) AS messages FROM {flashes} WHERE session_id = s.id) f \
         ON NOT s.renewed";

impl Statements {
    fn new(names: Names) -> Self {
        let r = |sql: &str| names.render(sql, '"');
        Self {
            // Expired sessions too, until they are swept: the layer reports
            // them (`Loaded::Expired`).
            load: r(&format!("SELECT {COLUMNS} WHERE s.id = $1")),
            list: r(&format!(
                "SELECT s.id, {COLUMNS} WHERE s.user_id = $1 AND NOT s.renewed AND s.expires > $2"
            )),
            create: r(
                "SELECT {create}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15)",
            ),
            save: r(
                "SELECT status, new_size FROM {save}($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
            ),
            retire: r(
                "WITH r AS (UPDATE {sessions} SET renewed = true, expires = $3, \
                 expiry = NULL, user_id = NULL, label = NULL, generation = 0, size = 0 \
                 WHERE id = $1 AND NOT renewed AND expires > $2 RETURNING id), \
                 v AS (DELETE FROM {values} WHERE session_id IN (SELECT id FROM r)), \
                 f AS (DELETE FROM {flashes} WHERE session_id IN (SELECT id FROM r)) \
                 SELECT count(*) FROM r",
            ),
            delete: r("DELETE FROM {sessions} WHERE id = $1"),
            end: r(
                "DELETE FROM {sessions} WHERE id = $2 AND user_id = $1 AND NOT renewed \
                 AND expires > $3",
            ),
            end_all: r("SELECT ended, new_generation FROM {end_all}($1, $2, $3, $4, $5, $6)"),
            sweep_sessions: r(
                "DELETE FROM {sessions} WHERE id IN (SELECT id FROM {sessions} \
                 WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            ),
            sweep_users: r(
                "DELETE FROM {users} WHERE user_id IN (SELECT user_id FROM {users} \
                 WHERE remember_until <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            ),
            names,
        }
    }
}

/// A session store in PostgreSQL 12 or later, on a [`PgPool`].
///
/// Build it on the application's own pool ([`from_pool`](Self::from_pool))
/// or from a URL ([`from_url`](Self::from_url)), then call
/// [`migrate`](Self::migrate) once at start-up, which makes or upgrades its
/// tables; [`session_layer`] does all three from `DATABASE_URL`. Clones
/// share the pool.
///
/// ```no_run
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_sql::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
/// let store = PostgresStore::from_pool(pool).with_schema("auth")?;
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
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Statements>,
    /// The store timeout and the clock of the layer's settings.
    given: Given,
}

impl PostgresStore {
    /// A store on a pool of at most 10 connections to the database at
    /// `url` (`postgres://user:password@host:port/database`); no
    /// connection is made until the first call, so the application starts
    /// while the database is down. Its connections keep the settings'
    /// store timeout as their `statement_timeout` and `lock_timeout`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `url` is not a PostgreSQL URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            ConfigError::Store(format!("the session database URL is not usable: {e}").into())
        })?;
        let given = Given::new();
        let timeouts = given.clone();
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_POOL_SIZE)
            // No ping before each call: a round trip on every request's
            // path. A connection that died is found by the call that uses
            // it, and replaced.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let ms = timeouts.timeout_ms();
                Box::pin(async move {
                    conn.execute(
                        format!("SET statement_timeout = {ms}; SET lock_timeout = {ms}").as_str(),
                    )
                    .await
                    .map(|_| ())
                })
            })
            .connect_lazy_with(options);
        let mut store = Self::from_pool(pool);
        store.given = given;
        Ok(store)
    }

    /// A store on the application's own pool. The pool's settings stay as
    /// they are; each save still bounds its lock waits by the store
    /// timeout.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            sql: Arc::new(Statements::new(Names::default())),
            given: Given::new(),
        }
    }

    /// Keeps the tables in `schema` (made by [`migrate`](Self::migrate) if
    /// missing) instead of the connection's `search_path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] unless `schema` is 1 to 48 ASCII letters,
    /// digits and `_`, not starting with a digit.
    pub fn with_schema(self, schema: &str) -> Result<Self, ConfigError> {
        let mut names = self.sql.names.clone();
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
        let mut names = self.sql.names.clone();
        names.table = Names::check("table", table)?;
        Ok(self.with_names(names))
    }

    fn with_names(mut self, names: Names) -> Self {
        self.sql = Arc::new(Statements::new(names));
        self
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Makes the store's tables and functions, or brings them up to this
    /// release's version; does nothing when they are. Safe to run from
    /// every instance at once: each waits for the one before (an advisory
    /// lock), then finds nothing left to do.
    ///
    /// # Errors
    ///
    /// The database's; nothing of a failed version is left applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_to(MIGRATIONS.len()).await
    }

    /// [`migrate`](Self::migrate), stopping after the first `versions`
    /// versions: for a test of upgrades.
    #[doc(hidden)]
    pub fn migrate_to(
        &self,
        versions: usize,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
        // Boxed here, where its lifetimes are known, so that the future is
        // `Send` wherever it is awaited (sqlx's transactions otherwise ask
        // for a proof the compiler cannot make).
        Box::pin(self.migrate_in_transaction(versions))
    }

    async fn migrate_in_transaction(&self, versions: usize) -> Result<(), StoreError> {
        // Every statement written before the first await.
        let names = &self.sql.names;
        let lock_name = format!("http-sessions {}", names.qualified("", '"'));
        let schema = (names.schema.as_ref())
            .map(|schema| format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""));
        let version_table = names.render(
            "CREATE TABLE IF NOT EXISTS {version} (version integer NOT NULL)",
            '"',
        );
        let current_version = names.render("SELECT max(version) FROM {version}", '"');
        let record_version = names.render("INSERT INTO {version} (version) VALUES ($1)", '"');
        let steps: Vec<(i32, String)> = self.migrations().into_iter().take(versions).collect();

        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Start-up, not a request: wait for an instance migrating already,
        // however long it takes, whatever timeouts the pool's connections
        // keep for requests.
        (&mut *tx)
            .execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")
            .await
            .map_err(store_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(lock_name)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some(schema) = schema {
            (&mut *tx)
                .execute(sqlx::raw_sql(&schema))
                .await
                .map_err(store_error)?;
        }
        (&mut *tx)
            .execute(sqlx::raw_sql(&version_table))
            .await
            .map_err(store_error)?;
        let current: Option<i32> = sqlx::query_scalar(&current_version)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let current = current.unwrap_or(0);
        for (version, sql) in steps {
            if version <= current {
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
        tx.commit().await.map_err(store_error)
    }

    /// The SQL of every version, with this store's names, for an
    /// application that runs its own migrations: apply them in order, and
    /// record the last in the `_version` table
    /// (`INSERT INTO <table>_version VALUES (2)`) so that
    /// [`migrate`](Self::migrate) finds nothing to do.
    pub fn migrations(&self) -> Vec<(i32, String)> {
        MIGRATIONS
            .iter()
            .map(|(version, sql)| (*version, self.sql.names.render(sql, '"')))
            .collect()
    }

    /// Deletes every expired session and renewed id, and the users'
    /// generations no session needs any more, [`DEFAULT_SWEEP_BATCH`] rows
    /// per statement; how many rows. For a cron job; a [`Sweeper`] does it
    /// on a timer.
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

    /// The lock timeout a save passes to its function.
    fn lock_timeout(&self) -> String {
        format!("{}ms", self.given.timeout_ms())
    }

    /// Runs `call`, again on another connection while the one it had was
    /// dead ([`retried`]).
    async fn call<T, F, Fut>(&self, read: bool, call: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let tries = self.pool.options().get_max_connections().saturating_add(1);
        retried(tries, read, call).await
    }
}

/// The rows of one session as a load or a list reads them.
fn rows(row: &PgRow, first: usize) -> Result<Rows, sqlx::Error> {
    let at = |i: usize| first + i;
    let keys: Option<Vec<Vec<u8>>> = row.try_get(at(7))?;
    let vals: Option<Vec<Vec<u8>>> = row.try_get(at(8))?;
    let ids: Option<Vec<Vec<u8>>> = row.try_get(at(9))?;
    let levels: Option<Vec<i16>> = row.try_get(at(10))?;
    let messages: Option<Vec<Vec<u8>>> = row.try_get(at(11))?;
    let values = keys
        .unwrap_or_default()
        .into_iter()
        .zip(vals.unwrap_or_default())
        .collect();
    let flashes = (ids.unwrap_or_default().into_iter())
        .zip(levels.unwrap_or_default())
        .zip(messages.unwrap_or_default())
        .map(|((id, level), message)| Ok((id, level, text(message)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let label: Option<Vec<u8>> = row.try_get(at(5))?;
    Ok(Rows {
        renewed: row.try_get(at(0))?,
        created: row.try_get(at(1))?,
        expires: row.try_get(at(2))?,
        expiry: row.try_get(at(3))?,
        user: row.try_get(at(4))?,
        label: label.map(text).transpose()?,
        generation: row.try_get(at(6))?,
        values,
        flashes,
    })
}

/// Text kept as bytes (a label, a flash message), which must be UTF-8.
fn text(bytes: Vec<u8>) -> Result<String, sqlx::Error> {
    String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn log_corrupt(id: &SessionId, corrupt: Corrupt) {
    tracing::warn!(
        ?id,
        column = corrupt.column,
        reason = corrupt.reason,
        "stored session is corrupt; treated as no session"
    );
}

/// The arguments of a record's values and flash messages.
struct Written<'a> {
    keys: Vec<&'a [u8]>,
    values: Vec<&'a [u8]>,
    flash_ids: Vec<[u8; 8]>,
    flash_levels: Vec<i16>,
    flash_messages: Vec<&'a [u8]>,
}

impl<'a> Written<'a> {
    fn whole(record: &'a Record) -> Self {
        let (keys, values) = record
            .data
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
            .unzip();
        let mut this = Self {
            keys,
            values,
            flash_ids: Vec::new(),
            flash_levels: Vec::new(),
            flash_messages: Vec::new(),
        };
        for (id, flash) in record.flash.entries() {
            this.flash(id, flash);
        }
        this
    }

    fn flash(&mut self, id: u64, flash: &'a http_sessions_core::Flash) {
        self.flash_ids.push(stored::flash_id(id));
        self.flash_levels.push(stored::level(flash));
        self.flash_messages.push(flash.message.as_bytes());
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        let row = self
            .call(true, || {
                sqlx::query(&self.sql.load)
                    .bind(&id.as_bytes()[..])
                    .fetch_optional(&self.pool)
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        match rows(&row, 0) {
            Ok(rows) => rows.load(now).or_else(|corrupt| {
                log_corrupt(id, corrupt);
                Ok(None)
            }),
            Err(e) => {
                tracing::warn!(?id, error = %e, "stored session is corrupt; treated as no session");
                Ok(None)
            }
        }
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        let written = Written::whole(record);
        // The generation is counted when the function stamps it.
        let unstamped = stored::size(record) - if record.generation == 0 { 0 } else { 8 };
        let status: i32 = self
            .call(false, || {
                sqlx::query_scalar(&self.sql.create)
                    .bind(&id.as_bytes()[..])
                    .bind(stored::secs(record.created))
                    .bind(stored::secs(record.expires))
                    .bind(stored::secs(ends))
                    .bind(record.expiry.encode())
                    .bind(record.user.as_deref())
                    .bind(record.label.as_deref().map(str::as_bytes))
                    .bind(stored::int(record.generation))
                    .bind(unstamped)
                    .bind(&written.keys)
                    .bind(&written.values)
                    .bind(&written.flash_ids)
                    .bind(&written.flash_levels)
                    .bind(&written.flash_messages)
                    .bind(self.lock_timeout())
                    .fetch_one(&self.pool)
            })
            .await?;
        match status {
            0 => Ok(()),
            1 => Err(StoreError::Exists),
            _ => Err(StoreError::Gone),
        }
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        let changes = update.changes;
        let record = update.record;
        let (mut keys, mut values, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in update.changed() {
            match value {
                Some(value) => {
                    keys.push(key.as_bytes());
                    values.push(value.as_bytes());
                }
                None => removed.push(key.as_bytes()),
            }
        }
        let taken: Vec<[u8; 8]> = (changes.flash.taken.iter())
            .map(|&id| stored::flash_id(id))
            .collect();
        let mut pushed = Written {
            keys: Vec::new(),
            values: Vec::new(),
            flash_ids: Vec::new(),
            flash_levels: Vec::new(),
            flash_messages: Vec::new(),
        };
        for &flash_id in &changes.flash.pushed {
            if let Some(flash) = record.flash.get(flash_id) {
                pushed.flash(flash_id, flash);
            }
        }
        // What the values set and the messages pushed add to the size, as
        // `Record::encoded_len` counts them; the function adds the binding's.
        let added: i64 = (keys.iter().zip(&values))
            .map(|(k, v)| k.len() + v.len())
            .chain(pushed.flash_messages.iter().map(|m| m.len() + 8))
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            .fold(0, i64::saturating_add);
        let row = self
            .call(false, || {
                sqlx::query(&self.sql.save)
                    .bind(&id.as_bytes()[..])
                    .bind(stored::secs(update.now))
                    .bind(stored::secs(update.expires))
                    .bind(stored::secs(update.ends))
                    .bind(i64::try_from(update.max_size).unwrap_or(i64::MAX))
                    .bind(changes.cleared)
                    .bind(&keys)
                    .bind(&values)
                    .bind(&removed)
                    .bind(added)
                    .bind(&taken)
                    .bind(&pushed.flash_ids)
                    .bind(&pushed.flash_levels)
                    .bind(&pushed.flash_messages)
                    .bind(changes.expiry)
                    .bind(record.expiry.encode())
                    .bind(changes.binding)
                    .bind(record.user.as_deref())
                    .bind(record.label.as_deref().map(str::as_bytes))
                    .bind(stored::int(record.generation))
                    .bind(self.lock_timeout())
                    .fetch_one(&self.pool)
            })
            .await?;
        let status: i32 = row.try_get(0).map_err(store_error)?;
        match status {
            0 => Ok(Updated::Kept),
            3 => Ok(Updated::Emptied),
            4 => {
                let size: i64 = row.try_get(1).map_err(store_error)?;
                Err(StoreError::TooLarge {
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    limit: update.max_size,
                })
            }
            _ => Err(StoreError::Gone),
        }
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        _user: Option<&str>,
    ) -> Result<(), StoreError> {
        let retired: i64 = self
            .call(false, || {
                sqlx::query_scalar(&self.sql.retire)
                    .bind(&id.as_bytes()[..])
                    .bind(stored::secs(now))
                    .bind(stored::secs(until))
                    .fetch_one(&self.pool)
            })
            .await?;
        if retired == 0 {
            return Err(StoreError::Gone);
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId, _user: Option<&str>) -> Result<(), StoreError> {
        self.call(true, || {
            sqlx::query(&self.sql.delete)
                .bind(&id.as_bytes()[..])
                .execute(&self.pool)
        })
        .await?;
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
impl UserIndex for PostgresStore {
    async fn list(
        &self,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let found = self
            .call(true, || {
                sqlx::query(&self.sql.list)
                    .bind(user)
                    .bind(stored::secs(now))
                    .fetch_all(&self.pool)
            })
            .await?;
        let mut sessions = Vec::with_capacity(found.len());
        for row in found {
            let id: Vec<u8> = row.try_get(0).map_err(store_error)?;
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()).map(SessionId::from_bytes) else {
                tracing::warn!(user, "a stored session id is not 16 bytes; skipped");
                continue;
            };
            match rows(&row, 1).map_err(store_error)?.load(now) {
                Ok(Some(Loaded::Live(record))) => sessions.push((id, record)),
                Ok(_) => {}
                Err(corrupt) => log_corrupt(&id, corrupt),
            }
        }
        Ok(sessions)
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError> {
        let ended = self
            .call(false, || {
                sqlx::query(&self.sql.end)
                    .bind(user)
                    .bind(&id.as_bytes()[..])
                    .bind(stored::secs(now))
                    .execute(&self.pool)
            })
            .await?;
        Ok(ended.rows_affected() > 0)
    }

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError> {
        let row = self
            .call(false, || {
                sqlx::query(&self.sql.end_all)
                    .bind(user)
                    .bind(end.keep.map(|id| &id.as_bytes()[..]))
                    .bind(stored::secs(end.now))
                    .bind(stored::int(end.floor))
                    .bind(stored::secs(end.remember_until))
                    .bind(self.lock_timeout())
                    .fetch_one(&self.pool)
            })
            .await?;
        let sessions: i64 = row.try_get(0).map_err(store_error)?;
        let generation: i64 = row.try_get(1).map_err(store_error)?;
        Ok(Ended {
            sessions: usize::try_from(sessions).unwrap_or(0),
            generation: u64::try_from(generation).unwrap_or(0),
        })
    }
}

#[async_trait]
impl Sweep for PostgresStore {
    async fn delete_expired_batch(&self, batch: u32) -> Result<u64, StoreError> {
        let now = stored::secs(self.given.now());
        let mut deleted = 0;
        for sql in [&self.sql.sweep_sessions, &self.sql.sweep_users] {
            deleted += self
                .call(true, || {
                    sqlx::query(sql)
                        .bind(now)
                        .bind(i64::from(batch))
                        .execute(&self.pool)
                })
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("tables", &self.sql.names.qualified("", '"'))
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// A session layer keeping sessions in the PostgreSQL database at
/// `DATABASE_URL`: connects, makes or upgrades the tables
/// ([`PostgresStore::migrate`]), and starts no sweeper (keep
/// [`PostgresStore::sweeper`] of a store of your own, or run
/// `delete_expired` from a cron job).
///
/// # Errors
///
/// [`ConfigError::Store`] if `DATABASE_URL` is unset or not a PostgreSQL
/// URL, or the tables could not be made (the database is down, or the
/// user may not create tables).
pub async fn session_layer(settings: &Settings) -> Result<SessionLayer, ConfigError> {
    let store = PostgresStore::from_url(&crate::database_url()?)?;
    store.use_settings(settings);
    store.migrate().await.map_err(|e| {
        ConfigError::Store(format!("could not make the session tables: {e}").into())
    })?;
    Ok(SessionLayer::new(store, settings))
}
