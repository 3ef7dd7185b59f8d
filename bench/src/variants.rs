//! What is compared: each [`Variant`] (no session layer, our six backends,
//! our Redis store once more on the driver's own connection, tower-sessions'
//! four stores) serves the same four [`Route`]s, built here by [`router`].
//!
//! The handlers do the same work on every variant: `/untouched` never asks
//! for the session; `/counter` reads a `u64` and writes it back plus one;
//! `/counter-signed-in` does the same for a visitor who signed in first at
//! [`SIGN_IN`], after checking that the session is signed in; `/new` writes
//! one string for a visitor who sent no cookie.
//!
//! Signing in is where the sides differ, each as its applications do it:
//! ours renews the id and binds the session to the user
//! ([`Session::bind_user`](http_sessions::Session::bind_user): the
//! server-side stores keep it in the user's index, the cookie stores in the
//! cookie); tower-sessions cycles its id and keeps the user id in the
//! session as a value under [`USER_KEY`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http_sessions::{Key, Keyring, SessionLayer, Settings, ValueError};
use http_sessions_sql::sqlx::PgPool;
use http_sessions_sql::sqlx::postgres::PgPoolOptions;
use http_sessions_sql::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

use crate::Error;

/// The session key `/counter` reads and writes.
pub(crate) const COUNTER_KEY: &str = "counter";
/// The route a returning visitor signs in at before `/counter-signed-in`:
/// `/sign-in/{n}` signs the session in as user `user-{n}` ([`sign_in_path`]).
/// Not measured: the load generator calls it once per visitor.
pub(crate) const SIGN_IN: &str = "/sign-in/{n}";
/// tower-sessions' session key for the signed-in user's id.
pub(crate) const USER_KEY: &str = "user";
/// The session key `/new` writes, and its value.
const NEW_KEY: &str = "visitor";
const NEW_VALUE: &str = "new";

/// The path that signs a visitor in as user number `n`.
pub(crate) fn sign_in_path(n: u64) -> String {
    format!("/sign-in/{n}")
}

/// The application's id of user number `n`.
fn user_name(n: u64) -> String {
    format!("user-{n}")
}

/// Idle timeout on both sides: our default (OWASP's 15 to 30 minutes),
/// given to tower-sessions too so both keep sessions equally long, and so
/// sessions written into a shared Redis go away by themselves.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Redis connections on each side: our store's default, twice the two
/// cores, and the same for fred's pool.
pub(crate) const REDIS_CONNECTIONS: usize = 4;

/// Postgres connections in each side's pool: our `PostgresStore::from_url`'s
/// default, and sqlx's.
pub(crate) const DATABASE_CONNECTIONS: u32 = 10;

/// SQLite connections in each side's pool: our `SqliteStore::from_url`'s
/// default.
pub(crate) const SQLITE_CONNECTIONS: u32 = 8;

/// The schema the Postgres variants keep their tables in, each side's
/// tables of its own: ours [`OUR_TABLE`] and the tables named after it,
/// theirs [`THEIR_TABLE`]. Dropped and made anew at the start of a run,
/// dropped at its end ([`drop_schema`]).
pub(crate) const SQL_SCHEMA: &str = "session_bench";
/// Our sessions table (its values, flash messages and users are
/// `http_sessions_values`, ...), in Postgres and SQLite.
pub(crate) const OUR_TABLE: &str = "http_sessions";
/// tower-sessions-sqlx-store's table, in Postgres and SQLite.
pub(crate) const THEIR_TABLE: &str = "tower_sessions";

/// The secret of the bench's keyring: fixed, so runs are alike.
const SECRET: [u8; 32] = [0x5e; 32];

/// One session setup under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// No session layer: the baseline.
    NoLayer,
    /// Our cookie store, signed (HMAC-SHA256).
    CookieSigned,
    /// Our cookie store, encrypted (AES-256-GCM).
    CookieEncrypted,
    /// Our memory store.
    Memory,
    /// Our Redis store.
    Redis,
    /// Our Redis store on redis-rs's own multiplexed connection instead of
    /// its pipe: what the pipe has to beat.
    RedisDriver,
    /// tower-sessions with its `MemoryStore`.
    TowerMemory,
    /// tower-sessions with tower-sessions-redis-store.
    TowerRedis,
    /// Our `PostgresStore`.
    Postgres,
    /// tower-sessions with tower-sessions-sqlx-store's `PostgresStore`.
    TowerPostgres,
    /// Our `SqliteStore`.
    Sqlite,
    /// tower-sessions with tower-sessions-sqlx-store's `SqliteStore`.
    TowerSqlite,
}

impl Variant {
    /// Every variant, in the order they run and print.
    pub(crate) const ALL: [Variant; 12] = [
        Variant::NoLayer,
        Variant::TowerMemory,
        Variant::Memory,
        Variant::CookieSigned,
        Variant::CookieEncrypted,
        Variant::TowerRedis,
        Variant::Redis,
        Variant::RedisDriver,
        Variant::TowerPostgres,
        Variant::Postgres,
        Variant::TowerSqlite,
        Variant::Sqlite,
    ];

    /// The name on the command line (`--only`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Variant::NoLayer => "none",
            Variant::CookieSigned => "cookie-signed",
            Variant::CookieEncrypted => "cookie-encrypted",
            Variant::Memory => "memory",
            Variant::Redis => "redis",
            Variant::RedisDriver => "redis-driver",
            Variant::TowerMemory => "tower-sessions-memory",
            Variant::TowerRedis => "tower-sessions-redis",
            Variant::Postgres => "postgres",
            Variant::TowerPostgres => "tower-sessions-postgres",
            Variant::Sqlite => "sqlite",
            Variant::TowerSqlite => "tower-sessions-sqlite",
        }
    }

    /// The name in the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Variant::NoLayer => "no session layer",
            Variant::CookieSigned => "sessions: cookie, signed",
            Variant::CookieEncrypted => "sessions: cookie, encrypted",
            Variant::Memory => "sessions: memory",
            Variant::Redis => "sessions: Redis",
            Variant::RedisDriver => "sessions: Redis (driver connection)",
            Variant::TowerMemory => "tower-sessions: MemoryStore",
            Variant::TowerRedis => "tower-sessions-redis-store",
            Variant::Postgres => "sessions: Postgres",
            Variant::TowerPostgres => "tower-sessions-sqlx-store: Postgres",
            Variant::Sqlite => "sessions: SQLite",
            Variant::TowerSqlite => "tower-sessions-sqlx-store: SQLite",
        }
    }

    /// The variant named `name` on the command line.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The tower-sessions setup ours is compared with: its `MemoryStore`
    /// for memory and cookies (what one picks when nothing is shared),
    /// its Redis store for Redis, its sqlx store on the same database for
    /// ours. None for the baseline and for theirs.
    pub(crate) fn counterpart(self) -> Option<Variant> {
        match self {
            Variant::CookieSigned | Variant::CookieEncrypted | Variant::Memory => {
                Some(Variant::TowerMemory)
            }
            Variant::Redis | Variant::RedisDriver => Some(Variant::TowerRedis),
            Variant::Postgres => Some(Variant::TowerPostgres),
            Variant::Sqlite => Some(Variant::TowerSqlite),
            Variant::NoLayer
            | Variant::TowerMemory
            | Variant::TowerRedis
            | Variant::TowerPostgres
            | Variant::TowerSqlite => None,
        }
    }

    /// Whether the variant needs Redis.
    pub(crate) fn uses_redis(self) -> bool {
        matches!(
            self,
            Variant::Redis | Variant::RedisDriver | Variant::TowerRedis
        )
    }

    /// Whether the variant needs the Postgres at `DATABASE_URL`.
    pub(crate) fn uses_postgres(self) -> bool {
        matches!(self, Variant::Postgres | Variant::TowerPostgres)
    }

    /// Whether the variant keeps its sessions in the bench's SQLite file.
    pub(crate) fn uses_sqlite(self) -> bool {
        matches!(self, Variant::Sqlite | Variant::TowerSqlite)
    }

    /// Whether the variant is one of the SQL rows, reported in a section
    /// of their own.
    pub(crate) fn is_sql(self) -> bool {
        self.uses_postgres() || self.uses_sqlite()
    }
}

/// Where the variants that need a server or a file find it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Backends<'a> {
    /// The Redis of the Redis variants.
    pub(crate) redis_url: &'a str,
    /// The Postgres of the Postgres variants, if given.
    pub(crate) database_url: Option<&'a str>,
    /// The SQLite database file of the SQLite variants (`sqlite://...`),
    /// made by the bench.
    pub(crate) sqlite_url: Option<&'a str>,
}

/// One route of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Never touches the session; the client sends its cookie anyway.
    Untouched,
    /// Reads and writes a counter in the session of a returning visitor.
    Counter,
    /// `/counter` for a returning visitor who signed in first: checks that
    /// the session is signed in, then reads and writes the counter.
    SignedInCounter,
    /// A new visitor (no cookie) writes one value.
    New,
}

impl Route {
    /// Every route, in the order they run: `/new` last, so the sessions it
    /// leaves behind do not weigh on the others.
    pub(crate) const ALL: [Route; 4] = [
        Route::Untouched,
        Route::Counter,
        Route::SignedInCounter,
        Route::New,
    ];

    /// The request path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Route::Untouched => "/untouched",
            Route::Counter => "/counter",
            Route::SignedInCounter => "/counter-signed-in",
            Route::New => "/new",
        }
    }

    /// The route named `name` on the command line (with or without `/`).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let name = name.trim_start_matches('/');
        Self::ALL
            .into_iter()
            .find(|r| r.path().strip_prefix('/') == Some(name))
    }
}

/// Things a variant's server holds that must be shut down with it.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    /// fred's pool: its connection tasks run until told to quit.
    fred: Option<Pool>,
    /// A Postgres pool: its connections stay open until it is closed.
    postgres: Option<PgPool>,
    /// A SQLite pool, likewise.
    sqlite: Option<SqlitePool>,
}

impl Resources {
    /// Resources holding a fred pool.
    pub(crate) fn with_fred(pool: Pool) -> Self {
        Self {
            fred: Some(pool),
            ..Self::default()
        }
    }

    /// Closes what the variant opened.
    pub(crate) async fn close(self) {
        if let Some(pool) = self.fred {
            // Only the bench's own connections; a failure changes nothing.
            let _ = pool.quit().await;
        }
        if let Some(pool) = self.postgres {
            pool.close().await;
        }
        if let Some(pool) = self.sqlite {
            pool.close().await;
        }
    }
}

/// Our settings for every variant of ours: a fixed key, plain-http
/// cookies (the load generator is not a browser on https).
fn settings() -> Result<Settings, Error> {
    Ok(Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&SECRET)?)?)
        .with_secure(false)
        .with_idle_timeout(IDLE_TIMEOUT)
        .build()?)
}

/// A fred pool of [`REDIS_CONNECTIONS`] to `url`, connected.
pub(crate) async fn fred_pool(url: &str) -> Result<Pool, Error> {
    let config = Config::from_url(url)?;
    let pool = Pool::new(config, None, None, None, REDIS_CONNECTIONS)?;
    // `init` connects every client and waits for them; the handle it
    // returns is the connection task, which ends with `quit`.
    let _connection = pool.init().await?;
    Ok(pool)
}

/// A pool of [`DATABASE_CONNECTIONS`] to the Postgres at `url`, the same
/// for both sides, connected.
pub(crate) async fn postgres_pool(url: &str) -> Result<PgPool, Error> {
    Ok(PgPoolOptions::new()
        .max_connections(DATABASE_CONNECTIONS)
        .connect(url)
        .await?)
}

/// Our `PostgresStore` on `pool`, its tables in `schema`, made.
pub(crate) async fn our_postgres(
    pool: PgPool,
    schema: &str,
) -> Result<http_sessions_sql::PostgresStore, Error> {
    let store = http_sessions_sql::PostgresStore::from_pool(pool)
        .with_schema(schema)?
        .with_table(OUR_TABLE)?;
    store.migrate().await?;
    Ok(store)
}

/// tower-sessions-sqlx-store's `PostgresStore` on `pool`, its table in
/// `schema`, made.
pub(crate) async fn their_postgres(
    pool: PgPool,
    schema: &str,
) -> Result<tower_sessions_sqlx_store::PostgresStore, Error> {
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(schema)?
        .with_table_name(THEIR_TABLE)?;
    store.migrate().await?;
    Ok(store)
}

/// A pool of [`SQLITE_CONNECTIONS`] to the SQLite database at `url` (the
/// file made if missing), the same for both sides: the settings of our
/// `SqliteStore::from_url` (the WAL journal, `synchronous = NORMAL`,
/// foreign keys); sqlx's `busy_timeout` of 5 s.
pub(crate) async fn sqlite_pool(url: &str) -> Result<SqlitePool, Error> {
    let options: SqliteConnectOptions = url.parse()?;
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .connect_with(options)
        .await?)
}

/// Our `SqliteStore` on `pool`, its tables made.
pub(crate) async fn our_sqlite(pool: SqlitePool) -> Result<http_sessions_sql::SqliteStore, Error> {
    let store = http_sessions_sql::SqliteStore::from_pool(pool).with_table(OUR_TABLE)?;
    store.migrate().await?;
    Ok(store)
}

/// tower-sessions-sqlx-store's `SqliteStore` on `pool`, its table made.
pub(crate) async fn their_sqlite(
    pool: SqlitePool,
) -> Result<tower_sessions_sqlx_store::SqliteStore, Error> {
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool).with_table_name(THEIR_TABLE)?;
    store.migrate().await?;
    Ok(store)
}

/// Drops `schema` and all in it, if it is there: the bench's own tables,
/// before a run and after it.
pub(crate) async fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let dropped = sqlx_raw(
        &pool,
        &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
    )
    .await;
    pool.close().await;
    dropped
}

/// Runs `sql` as a simple query: no statement prepared, as `VACUUM` and
/// `DROP` need.
pub(crate) async fn sqlx_raw(pool: &PgPool, sql: &str) -> Result<(), Error> {
    use http_sessions_sql::sqlx::Executor as _;
    pool.execute(http_sessions_sql::sqlx::raw_sql(sql)).await?;
    Ok(())
}

/// The URL of the Postgres the database variants use, or an error that
/// says how to give one.
pub(crate) fn need_database(database_url: Option<&str>) -> Result<&str, Error> {
    database_url.ok_or_else(|| {
        format!(
            "DATABASE_URL is not set: the Postgres variants (postgres, \
             tower-sessions-postgres) need a Postgres in which the bench may drop and make \
             the schemas {SQL_SCHEMA} and {SQL_SCHEMA}_disk; set DATABASE_URL (or \
             --database-url) to postgres://user@host:port/database, or leave them out \
             (--only)"
        )
        .into()
    })
}

/// The routes of every variant, each path to its handler.
fn routes<S: Clone + Send + Sync + 'static>(
    counter: MethodRouter<S>,
    signed_in_counter: MethodRouter<S>,
    sign_in: MethodRouter<S>,
    new: MethodRouter<S>,
) -> Router<S> {
    Router::new()
        .route(Route::Untouched.path(), get(untouched))
        .route(Route::Counter.path(), counter)
        .route(Route::SignedInCounter.path(), signed_in_counter)
        .route(SIGN_IN, sign_in)
        .route(Route::New.path(), new)
}

/// The routes served by `variant`. Must run inside the server's runtime:
/// stores and pools start their tasks where they are built. The Postgres
/// variants make their tables in [`SQL_SCHEMA`] at `database_url`, the
/// SQLite ones in the file at `sqlite_url`.
pub(crate) async fn router(
    variant: Variant,
    backends: Backends<'_>,
) -> Result<(Router, Resources), Error> {
    let Backends {
        redis_url,
        database_url,
        sqlite_url,
    } = backends;
    let sqlite_url = || sqlite_url.ok_or("the SQLite variants need the bench's database file");
    let ours = |layer: SessionLayer| {
        routes(
            get(counter),
            get(signed_in_counter),
            get(sign_in),
            get(new_visitor),
        )
        .layer(layer)
    };
    let mut resources = Resources::default();
    let router = match variant {
        Variant::NoLayer => routes(
            get(plain_counter),
            get(plain_signed_in_counter),
            get(plain_sign_in),
            get(plain_new_visitor),
        )
        .with_state(Arc::new(Plain::default())),
        Variant::CookieSigned => ours(http_sessions::cookie::session_layer(&settings()?)),
        Variant::CookieEncrypted => {
            ours(http_sessions::cookie::encrypted_session_layer(&settings()?))
        }
        Variant::Memory => ours(SessionLayer::new(
            http_sessions::memory::MemoryStore::new(),
            &settings()?,
        )),
        Variant::Redis => ours(SessionLayer::new(
            http_sessions::redis::RedisStore::from_url(redis_url)?,
            &settings()?,
        )),
        Variant::RedisDriver => ours(SessionLayer::new(
            http_sessions::redis::RedisStore::from_url(redis_url)?.with_driver_connection(),
            &settings()?,
        )),
        Variant::TowerMemory => routes(
            get(tower015::counter),
            get(tower015::signed_in_counter),
            get(tower015::sign_in),
            get(tower015::new_visitor),
        )
        .layer(tower015::layer(tower_sessions::MemoryStore::default())),
        Variant::TowerRedis => {
            let pool = fred_pool(redis_url).await?;
            let store = tower_sessions_redis_store::RedisStore::new(pool.clone());
            resources.fred = Some(pool);
            routes(
                get(tower014::counter),
                get(tower014::signed_in_counter),
                get(tower014::sign_in),
                get(tower014::new_visitor),
            )
            .layer(tower014::layer(store))
        }
        Variant::Postgres => {
            let pool = postgres_pool(need_database(database_url)?).await?;
            let store = our_postgres(pool.clone(), SQL_SCHEMA).await?;
            resources.postgres = Some(pool);
            ours(SessionLayer::new(store, &settings()?))
        }
        Variant::TowerPostgres => {
            let pool = postgres_pool(need_database(database_url)?).await?;
            let store = their_postgres(pool.clone(), SQL_SCHEMA).await?;
            resources.postgres = Some(pool);
            routes(
                get(tower014::counter),
                get(tower014::signed_in_counter),
                get(tower014::sign_in),
                get(tower014::new_visitor),
            )
            .layer(tower014::layer(store))
        }
        Variant::Sqlite => {
            let pool = sqlite_pool(sqlite_url()?).await?;
            let store = our_sqlite(pool.clone()).await?;
            resources.sqlite = Some(pool);
            ours(SessionLayer::new(store, &settings()?))
        }
        Variant::TowerSqlite => {
            let pool = sqlite_pool(sqlite_url()?).await?;
            let store = their_sqlite(pool.clone()).await?;
            resources.sqlite = Some(pool);
            routes(
                get(tower014::counter),
                get(tower014::signed_in_counter),
                get(tower014::sign_in),
                get(tower014::new_visitor),
            )
            .layer(tower014::layer(store))
        }
    };
    Ok((router, resources))
}

async fn untouched() -> &'static str {
    "untouched"
}

async fn counter(session: http_sessions::Session) -> Result<String, ValueError> {
    let n = session.get::<u64>(COUNTER_KEY)?.unwrap_or(0) + 1;
    session.insert(COUNTER_KEY, n)?;
    Ok(format!("counter = {n}"))
}

/// A login as ours are done: a new id, and the session bound to the user.
async fn sign_in(
    session: http_sessions::Session,
    Path(n): Path<u64>,
) -> Result<&'static str, ValueError> {
    session.renew_on_login();
    session.bind_user(user_name(n))?;
    Ok("signed in")
}

async fn signed_in_counter(session: http_sessions::Session) -> Response {
    if session.user().is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    counter(session).await.into_response()
}

async fn new_visitor(session: http_sessions::Session) -> Result<&'static str, ValueError> {
    session.insert(NEW_KEY, NEW_VALUE)?;
    Ok("welcome")
}

/// The handlers and the layer of one tower-sessions version, in a module
/// `$module` over the crate `$ts`: the memory anchor runs on tower-sessions
/// 0.15, the Redis one on 0.14, the version its store's release implements.
macro_rules! tower_sessions_side {
    ($module:ident, $ts:ident) => {
        mod $module {
            use axum::extract::Path;
            use axum::http::StatusCode;
            use ts::cookie::time;
            use $ts as ts;

            use super::{COUNTER_KEY, IDLE_TIMEOUT, NEW_KEY, NEW_VALUE, USER_KEY, user_name};

            /// tower-sessions set up as ours is: plain-http cookies, the
            /// same idle timeout. Its session id cookie is unsigned, its
            /// default.
            pub(super) fn layer<S: ts::SessionStore + Clone>(
                store: S,
            ) -> ts::SessionManagerLayer<S> {
                let idle = i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
                ts::SessionManagerLayer::new(store)
                    .with_secure(false)
                    .with_expiry(ts::Expiry::OnInactivity(time::Duration::seconds(idle)))
            }

            fn internal(_: ts::session::Error) -> StatusCode {
                StatusCode::INTERNAL_SERVER_ERROR
            }

            pub(super) async fn counter(session: ts::Session) -> Result<String, StatusCode> {
                let n = session
                    .get::<u64>(COUNTER_KEY)
                    .await
                    .map_err(internal)?
                    .unwrap_or(0)
                    + 1;
                session.insert(COUNTER_KEY, n).await.map_err(internal)?;
                Ok(format!("counter = {n}"))
            }

            /// A login as a tower-sessions application does it: a new id,
            /// and the user's id kept in the session as a value.
            pub(super) async fn sign_in(
                session: ts::Session,
                Path(n): Path<u64>,
            ) -> Result<&'static str, StatusCode> {
                session.cycle_id().await.map_err(internal)?;
                session
                    .insert(USER_KEY, user_name(n))
                    .await
                    .map_err(internal)?;
                Ok("signed in")
            }

            pub(super) async fn signed_in_counter(
                session: ts::Session,
            ) -> Result<String, StatusCode> {
                session
                    .get::<String>(USER_KEY)
                    .await
                    .map_err(internal)?
                    .ok_or(StatusCode::UNAUTHORIZED)?;
                counter(session).await
            }

            pub(super) async fn new_visitor(
                session: ts::Session,
            ) -> Result<&'static str, StatusCode> {
                session.insert(NEW_KEY, NEW_VALUE).await.map_err(internal)?;
                Ok("welcome")
            }
        }
    };
}

tower_sessions_side!(tower015, tower_sessions);
tower_sessions_side!(tower014, tower_sessions_014);

/// The baseline's state: what an application without a session library
/// would do at the least, a per-visitor counter keyed by a cookie.
#[derive(Debug, Default)]
struct Plain {
    /// std Mutex, not tokio's: nothing awaits while it is held.
    counters: Mutex<HashMap<String, u64>>,
    /// The user each signed-in visitor's id is signed in as.
    users: Mutex<HashMap<String, String>>,
    values: Mutex<HashMap<String, &'static str>>,
    next_id: AtomicU64,
}

/// The baseline's cookie name, ours' default.
const PLAIN_COOKIE: &str = "session";

impl Plain {
    /// A new visitor id: a sequence number, neither random nor signed.
    fn new_id(&self) -> String {
        format!("{:022}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn set_cookie(id: &str) -> [(header::HeaderName, String); 1] {
        [(
            header::SET_COOKIE,
            format!("{PLAIN_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax"),
        )]
    }
}

/// The value of the baseline's cookie in the request, if sent.
fn plain_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == PLAIN_COOKIE).then_some(value)
        })
}

async fn plain_counter(State(plain): State<Arc<Plain>>, headers: HeaderMap) -> Response {
    if let Some(id) = plain_cookie(&headers) {
        let mut counters = plain
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counters.get_mut(id) {
            *n += 1;
            return format!("counter = {n}").into_response();
        }
    }
    let id = plain.new_id();
    plain
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone(), 1);
    (Plain::set_cookie(&id), "counter = 1").into_response()
}

/// Signs the visitor's id in as the user: no new id, nothing signed.
async fn plain_sign_in(
    State(plain): State<Arc<Plain>>,
    headers: HeaderMap,
    Path(n): Path<u64>,
) -> Response {
    let Some(id) = plain_cookie(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let known = plain
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(id);
    if !known {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    plain
        .users
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.to_owned(), user_name(n));
    "signed in".into_response()
}

async fn plain_signed_in_counter(State(plain): State<Arc<Plain>>, headers: HeaderMap) -> Response {
    let Some(id) = plain_cookie(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let signed_in = plain
        .users
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(id);
    if !signed_in {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut counters = plain
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match counters.get_mut(id) {
        Some(n) => {
            *n += 1;
            format!("counter = {n}").into_response()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn plain_new_visitor(State(plain): State<Arc<Plain>>) -> Response {
    let id = plain.new_id();
    plain
        .values
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone(), NEW_VALUE);
    (Plain::set_cookie(&id), "welcome").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.name()), Some(v));
        }
        for r in Route::ALL {
            assert_eq!(Route::parse(r.path()), Some(r));
            assert_eq!(Route::parse(&r.path()[1..]), Some(r));
        }
        assert_eq!(Variant::Memory.counterpart(), Some(Variant::TowerMemory));
        assert_eq!(Variant::Redis.counterpart(), Some(Variant::TowerRedis));
        assert_eq!(
            Variant::RedisDriver.counterpart(),
            Some(Variant::TowerRedis)
        );
        assert!(Variant::RedisDriver.uses_redis());
        assert_eq!(
            Variant::Postgres.counterpart(),
            Some(Variant::TowerPostgres)
        );
        assert!(Variant::Postgres.uses_postgres() && Variant::TowerPostgres.uses_postgres());
        assert!(!Variant::Postgres.uses_redis() && !Variant::Redis.uses_postgres());
        assert_eq!(Variant::Sqlite.counterpart(), Some(Variant::TowerSqlite));
        assert!(Variant::TowerSqlite.uses_sqlite() && !Variant::TowerSqlite.uses_postgres());
        assert!(
            Variant::Sqlite.is_sql() && Variant::Postgres.is_sql() && !Variant::Memory.is_sql()
        );
        assert!(
            need_database(None)
                .unwrap_err()
                .to_string()
                .contains("DATABASE_URL")
        );
        assert_eq!(Variant::NoLayer.counterpart(), None);
    }

    /// One request in process, with `cookie`; the answer's status, body
    /// and the `name=value` of its first `Set-Cookie`.
    async fn call(
        router: &Router,
        path: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        use tower::ServiceExt as _;
        let mut request = axum::http::Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let set = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), set)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_signed_in_visitor_goes_on_counting_and_a_stranger_is_refused() {
        // Both SQLite sides in one file, as in the bench.
        let dir = std::env::temp_dir().join(format!("session-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite_url = format!("sqlite://{}", dir.join("test.db").display());
        let backends = Backends {
            sqlite_url: Some(&sqlite_url),
            ..Backends::default()
        };
        for variant in [
            Variant::NoLayer,
            Variant::CookieSigned,
            Variant::CookieEncrypted,
            Variant::Memory,
            Variant::TowerMemory,
            Variant::Sqlite,
            Variant::TowerSqlite,
        ] {
            let (router, resources) = router(variant, backends).await.unwrap();
            let (status, body, set) = call(&router, Route::Counter.path(), None).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "counter = 1"));
            let first = set.unwrap();

            // Not signed in: refused, whatever the session holds.
            let path = Route::SignedInCounter.path();
            let (status, _, _) = call(&router, path, Some(&first)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{variant:?}");

            let (status, _, set) = call(&router, &sign_in_path(7), Some(&first)).await;
            assert_eq!(status, StatusCode::OK, "{variant:?}");
            // Ours and theirs renew the id at login; the baseline keeps its own.
            let mut cookie = set.unwrap_or(first);
            for expected in 2..=3 {
                let (status, body, set) = call(&router, path, Some(&cookie)).await;
                assert_eq!(status, StatusCode::OK, "{variant:?}");
                assert_eq!(body, format!("counter = {expected}"), "{variant:?}");
                // The cookie stores send the session anew with each write.
                cookie = set.unwrap_or(cookie);
            }
            resources.close().await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_baseline_finds_its_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; session=0042; b=2".parse().unwrap());
        assert_eq!(plain_cookie(&headers), Some("0042"));
        assert_eq!(plain_cookie(&HeaderMap::new()), None);
    }
}
