// The README's quick start uses the memory backend and axum: without them
// the crate is documented by the summary below instead. `../README.md` is a
// symlink to the repository's README, which cargo packages as a plain file,
// so the published crate documents itself from inside its package.
#![cfg_attr(all(feature = "memory", feature = "axum"), doc = include_str!("../README.md"))]
#![cfg_attr(
    not(all(feature = "memory", feature = "axum")),
    doc = "HTTP sessions and flash messages for axum and other tower services; the README has the guide."
)]
//!
//! # Layout
//!
//! - the crate root: what handlers and application setup use: [`Session`],
//!   [`SessionLayer`], [`Settings`], keys, flash messages and the errors;
//! - [`store`]: what a store author needs;
//! - one module per backend, each with its store and a one-line
//!   `session_layer(&settings)`: [`cookie`], [`memory`], `redis` (feature
//!   `redis`), and the SQL stores `postgres`, `sqlite` and `mysql` (features
//!   of the same names; their `session_layer` is async, since it makes the
//!   tables).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
pub use http_sessions_core::SessionRejection;
pub use http_sessions_core::{
    ConfigError, CookieSettings, Expiry, Flash, FlashLevel, Key, KeyError, Keyring, OverCap,
    SameSite, Session, SessionCheck, SessionFailure, SessionInfo, SessionLayer, SessionStats,
    Settings, SettingsBuilder, StoreError, UserSessions, ValueError, layer::LazySession,
    layer::ResponseBody,
};

/// Lifecycle events, for monitoring and audit: install a
/// [`SessionEvents`](events::SessionEvents) hook with
/// [`SessionLayer::with_events`], or read them from `tracing` at INFO under
/// [`EVENTS_TARGET`](events::EVENTS_TARGET). Sessions are named by a keyed
/// hash of their id, never the id.
pub mod events {
    pub use http_sessions_core::events::*;
}

/// Writing a backend of your own: the [`SessionStore`](store::SessionStore)
/// trait on session ids and records, and the values that cross it.
/// `examples/custom_store.rs` is a complete store; the crate
/// `http-sessions-conformance` checks one.
pub mod store {
    pub use http_sessions_core::store::*;
}

/// What tests and benchmarks reach for: a clock that moves only when
/// told, the manager behind the layer, and its backend.
#[doc(hidden)]
pub mod seams {
    pub use http_sessions_core::{
        seams::Backend, seams::Clock, seams::ManualClock, seams::SessionManager, seams::SystemClock,
    };
}

/// Sessions kept in the cookie itself ([`CookieStore`](cookie::CookieStore)),
/// signed by default or encrypted.
///
/// Nothing is stored on the server. The client holds the state: a signed
/// cookie can be read by its holder, any cookie can be replayed until it
/// expires, and concurrent requests do not merge their changes. See
/// `docs/security.md` for when to choose memory or Redis instead.
#[cfg(feature = "cookie")]
pub mod cookie {
    pub use http_sessions_cookie::{CookieStore, FORMAT_VERSION, Mode};

    use http_sessions_core::{SessionLayer, Settings};

    /// The session layer with signed cookies (HMAC-SHA256).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions::cookie::{encrypted_session_layer, session_layer};
    /// use http_sessions::{Key, Keyring, Settings};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .build()?;
    /// let signed = session_layer(&settings);
    /// let encrypted = encrypted_session_layer(&settings);
    /// # let _ = (signed, encrypted);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_layer(settings: &Settings) -> SessionLayer {
        SessionLayer::in_cookie(CookieStore::signed(settings), settings)
    }

    /// The session layer with encrypted cookies (AES-256-GCM): the client
    /// can neither read nor change the session.
    pub fn encrypted_session_layer(settings: &Settings) -> SessionLayer {
        SessionLayer::in_cookie(CookieStore::encrypted(settings), settings)
    }
}

/// Sessions in process memory ([`MemoryStore`](memory::MemoryStore)).
///
/// Gone when the process stops, and not shared between instances: for one
/// process, development and tests.
#[cfg(feature = "memory")]
pub mod memory {
    pub use http_sessions_memory::{
        DEFAULT_CAPACITY, DEFAULT_SWEEP_INTERVAL, EVICTION_WARNING_INTERVAL, MAX_SWEEP_INTERVAL,
        MemoryStore,
    };

    use http_sessions_core::{SessionLayer, Settings};

    /// The session layer with a [`MemoryStore`] of the default bound
    /// ([`DEFAULT_CAPACITY`] sessions; a flood of one-request visitors
    /// evicts its own sessions first, not those of returning ones).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions::{Key, Keyring, Settings};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .build()?;
    /// let layer = http_sessions::memory::session_layer(&settings);
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_layer(settings: &Settings) -> SessionLayer {
        SessionLayer::new(MemoryStore::new(), settings)
    }
}

/// Sessions in Redis ([`RedisStore`](redis::RedisStore)): one node, the
/// primary of a Sentinel group, or a Redis Cluster, shared by every
/// instance of the application.
///
/// [`session_layer`](redis::session_layer) connects to `REDIS_URL` (default
/// `redis://127.0.0.1:6379`); the connection is made on first use, so an
/// application starts even while Redis is down (its requests answer 503
/// until Redis is back). The driver is re-exported as
/// `http_sessions::redis::redis` and the pool as `http_sessions::redis::deadpool_redis`.
///
/// `rediss://` URLs (TLS) need the feature `redis-tls` (the platform's
/// root certificates) or `redis-tls-webpki-roots` (Mozilla's, built in);
/// `RedisStore::from_url_with_ca` trusts a CA of your own instead.
///
/// # Examples
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use http_sessions::redis::{RedisStore, session_layer};
/// use http_sessions::{Session, SessionLayer, Settings};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = Settings::from_env()?; // SESSION_SECRET, shared by every instance
/// let app: Router = Router::new()
///     .route("/", get(|s: Session| async move { s.to_string() }))
///     .layer(session_layer(&settings)?); // REDIS_URL
///
/// // Or by hand: a cluster, a prefix of your own.
/// let store = RedisStore::cluster(["redis://redis-a:7000", "redis://redis-b:7000"])?
///     .with_prefix("shop:session:");
/// let layer = SessionLayer::new(store, &settings);
///
/// // Or the primary that Sentinels watch under the name `mymaster`.
/// let store = RedisStore::sentinel(["redis://sentinel-a:26379", "redis://sentinel-b:26379"], "mymaster")?;
/// let failover_ready = SessionLayer::new(store, &settings);
/// # let _ = (app, layer, failover_ready);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "redis")]
pub mod redis {
    pub use http_sessions_redis::{
        DEFAULT_PREFIX, DEFAULT_REDIS_URL, REDIS_URL_ENV, RedisStore, deadpool_redis, redis,
        session_layer,
    };
}

/// Sessions in PostgreSQL ([`PostgresStore`](postgres::PostgresStore)), in
/// the application's own database: a row per session and per value, one
/// statement per load and per save.
///
/// [`session_layer`](postgres::session_layer) connects to `DATABASE_URL`
/// and makes or upgrades the tables; or build the store on the
/// application's own pool, call `migrate()` at start-up, and keep a
/// [`Sweeper`](postgres::Sweeper) that deletes expired rows. sqlx is
/// re-exported as `http_sessions::postgres::sqlx`.
///
/// # Examples
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use http_sessions::postgres::{PostgresStore, sqlx::PgPool};
/// use http_sessions::{Session, SessionLayer, Settings};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = Settings::from_env()?; // SESSION_SECRET, shared by every instance
/// let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
/// let store = PostgresStore::from_pool(pool);
/// store.migrate().await?;
/// let _sweeper = store.sweeper(); // every minute, until dropped
/// let app: Router = Router::new()
///     .route("/", get(|s: Session| async move { s.to_string() }))
///     .layer(SessionLayer::new(store, &settings));
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use http_sessions_sql::postgres::{PostgresStore, session_layer};
    pub use http_sessions_sql::{
        DATABASE_URL_ENV, DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_EVERY, DEFAULT_TABLE, Sweep, Sweeper,
        sqlx,
    };
}

/// Sessions in SQLite ([`SqliteStore`](sqlite::SqliteStore)), bundled: a
/// file beside the application, made if missing (`sqlite://sessions.db`).
///
/// [`session_layer`](sqlite::session_layer) opens `DATABASE_URL` and makes
/// or upgrades the tables. One process writes at a time; for several
/// instances on several machines, use Postgres.
///
/// # Examples
///
/// ```
/// use http_sessions::sqlite::SqliteStore;
/// use http_sessions::{SessionLayer, Settings};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = Settings::builder().with_random_dev_key().build()?;
/// let store = SqliteStore::from_url("sqlite::memory:")?;
/// store.migrate().await?;
/// let layer = SessionLayer::new(store, &settings);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use http_sessions_sql::sqlite::{SqliteStore, session_layer};
    pub use http_sessions_sql::{
        DATABASE_URL_ENV, DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_EVERY, DEFAULT_TABLE, Sweep, Sweeper,
        sqlx,
    };
}

/// Sessions in MySQL 8 or MariaDB 10.6 and later
/// ([`MySqlStore`](mysql::MySqlStore)).
///
/// [`session_layer`](mysql::session_layer) connects to `DATABASE_URL` and
/// makes or upgrades the tables; a session key can be at most
/// [`MAX_KEY_LEN`](mysql::MAX_KEY_LEN) bytes here (InnoDB's bound on a
/// primary key).
///
/// # Examples
///
/// ```no_run
/// use http_sessions::mysql::MySqlStore;
/// use http_sessions::{SessionLayer, Settings};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = Settings::from_env()?;
/// let store = MySqlStore::from_url("mysql://app@localhost/app")?;
/// store.migrate().await?;
/// let _sweeper = store.sweeper();
/// let layer = SessionLayer::new(store, &settings);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "mysql")]
pub mod mysql {
    pub use http_sessions_sql::mysql::{MAX_KEY_LEN, MySqlStore, session_layer};
    pub use http_sessions_sql::{
        DATABASE_URL_ENV, DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_EVERY, DEFAULT_TABLE, Sweep, Sweeper,
        sqlx,
    };
}

/// The guide (`guide.md` in this crate), here so its examples compile as
/// doctests.
#[cfg(all(
    feature = "memory",
    feature = "cookie",
    feature = "axum",
    feature = "postgres"
))]
#[doc = include_str!("../guide.md")]
pub mod guide {}
