//! What is compared: each [`Variant`] (no session layer, our four backends,
//! our Redis store once more on the driver's own connection, tower-sessions'
//! two stores) serves the same three [`Route`]s, built here by [`router`].
//!
//! The handlers do the same work on every variant: `/untouched` never asks
//! for the session; `/counter` reads a `u64` and writes it back plus one;
//! `/new` writes one string for a visitor who sent no cookie.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_sessions::{Key, Keyring, SessionLayer, Settings, ValueError};
use tower_sessions::cookie::time;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

use crate::Error;

/// The session key `/counter` reads and writes.
pub(crate) const COUNTER_KEY: &str = "counter";
/// The session key `/new` writes, and its value.
const NEW_KEY: &str = "visitor";
const NEW_VALUE: &str = "new";

/// Idle timeout on both sides: our default (OWASP's 15 to 30 minutes),
/// given to tower-sessions too so both keep sessions equally long, and so
/// sessions written into a shared Redis go away by themselves.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Redis connections on each side: our store's default, twice the two
/// cores, and the same for fred's pool.
pub(crate) const REDIS_CONNECTIONS: usize = 4;

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
}

impl Variant {
    /// Every variant, in the order they run and print.
    pub(crate) const ALL: [Variant; 8] = [
        Variant::NoLayer,
        Variant::TowerMemory,
        Variant::Memory,
        Variant::CookieSigned,
        Variant::CookieEncrypted,
        Variant::TowerRedis,
        Variant::Redis,
        Variant::RedisDriver,
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
        }
    }

    /// The variant named `name` on the command line.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The tower-sessions setup ours is compared with: its `MemoryStore`
    /// for memory and cookies (what one picks when nothing is shared),
    /// its Redis store for Redis. None for the baseline and for theirs.
    pub(crate) fn counterpart(self) -> Option<Variant> {
        match self {
            Variant::CookieSigned | Variant::CookieEncrypted | Variant::Memory => {
                Some(Variant::TowerMemory)
            }
            Variant::Redis | Variant::RedisDriver => Some(Variant::TowerRedis),
            Variant::NoLayer | Variant::TowerMemory | Variant::TowerRedis => None,
        }
    }

    /// Whether the variant needs Redis.
    pub(crate) fn uses_redis(self) -> bool {
        matches!(
            self,
            Variant::Redis | Variant::RedisDriver | Variant::TowerRedis
        )
    }
}

/// One route of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Never touches the session; the client sends its cookie anyway.
    Untouched,
    /// Reads and writes a counter in the session of a returning visitor.
    Counter,
    /// A new visitor (no cookie) writes one value.
    New,
}

impl Route {
    /// Every route, in the order they run: `/new` last, so the sessions it
    /// leaves behind do not weigh on the others.
    pub(crate) const ALL: [Route; 3] = [Route::Untouched, Route::Counter, Route::New];

    /// The request path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Route::Untouched => "/untouched",
            Route::Counter => "/counter",
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
}

impl Resources {
    /// Resources holding a fred pool.
    pub(crate) fn with_fred(pool: Pool) -> Self {
        Self { fred: Some(pool) }
    }

    /// Closes what the variant opened.
    pub(crate) async fn close(self) {
        if let Some(pool) = self.fred {
            // Only the bench's own connections; a failure changes nothing.
            let _ = pool.quit().await;
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

/// The routes served by `variant`. Must run inside the server's runtime:
/// stores and pools start their tasks where they are built.
pub(crate) async fn router(
    variant: Variant,
    redis_url: &str,
) -> Result<(Router, Resources), Error> {
    let routes = |counter, new| {
        Router::new()
            .route(Route::Untouched.path(), get(untouched))
            .route(Route::Counter.path(), counter)
            .route(Route::New.path(), new)
    };
    let ours = |layer: SessionLayer| routes(get(counter), get(new_visitor)).layer(layer);
    let theirs = || routes(get(tower_counter), get(tower_new_visitor));
    let mut resources = Resources::default();
    let router = match variant {
        Variant::NoLayer => Router::new()
            .route(Route::Untouched.path(), get(untouched))
            .route(Route::Counter.path(), get(plain_counter))
            .route(Route::New.path(), get(plain_new_visitor))
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
        Variant::TowerMemory => theirs().layer(tower_layer(tower_sessions::MemoryStore::default())),
        Variant::TowerRedis => {
            let pool = fred_pool(redis_url).await?;
            let store = tower_sessions_redis_store::RedisStore::new(pool.clone());
            resources.fred = Some(pool);
            theirs().layer(tower_layer(store))
        }
    };
    Ok((router, resources))
}

/// tower-sessions set up as ours is: plain-http cookies, the same idle
/// timeout. Its session id cookie is unsigned, its default.
fn tower_layer<S: tower_sessions::SessionStore + Clone>(
    store: S,
) -> tower_sessions::SessionManagerLayer<S> {
    let idle = i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
    tower_sessions::SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            time::Duration::seconds(idle),
        ))
}

async fn untouched() -> &'static str {
    "untouched"
}

async fn counter(session: http_sessions::Session) -> Result<String, ValueError> {
    let n = session.get::<u64>(COUNTER_KEY)?.unwrap_or(0) + 1;
    session.insert(COUNTER_KEY, n)?;
    Ok(format!("counter = {n}"))
}

async fn new_visitor(session: http_sessions::Session) -> Result<&'static str, ValueError> {
    session.insert(NEW_KEY, NEW_VALUE)?;
    Ok("welcome")
}

async fn tower_counter(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let n = session
        .get::<u64>(COUNTER_KEY)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0)
        + 1;
    session
        .insert(COUNTER_KEY, n)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!("counter = {n}"))
}

async fn tower_new_visitor(session: tower_sessions::Session) -> Result<&'static str, StatusCode> {
    session
        .insert(NEW_KEY, NEW_VALUE)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("welcome")
}

/// The baseline's state: what an application without a session library
/// would do at the least, a per-visitor counter keyed by a cookie.
#[derive(Debug, Default)]
struct Plain {
    /// std Mutex, not tokio's: nothing awaits while it is held.
    counters: Mutex<HashMap<String, u64>>,
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
        assert_eq!(Variant::NoLayer.counterpart(), None);
    }

    #[test]
    fn the_baseline_finds_its_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; session=0042; b=2".parse().unwrap());
        assert_eq!(plain_cookie(&headers), Some("0042"));
        assert_eq!(plain_cookie(&HeaderMap::new()), None);
    }
}
