//! Sessions in Redis: [`RedisStore`], on a single node, the primary of a
//! Sentinel group, or a Redis Cluster.
//!
//! Every instance of an application that points at the same Redis (and
//! shares the session secret) sees the same sessions, and they outlive a
//! restart of the application. Each session is one Redis hash under its id:
//! a load is one `HGETALL`, a save is one `EVALSHA` of a Lua script that
//! applies only what the request changed, so concurrent requests changing
//! different keys both land, and a session destroyed, expired or renewed
//! meanwhile never comes back. `docs/redis.md` in the repository describes
//! the layout, the scripts' rules and what Redis persistence means for
//! sessions.
//!
//! The quickest start reads `REDIS_URL`:
//!
//! ```no_run
//! use http_sessions_core::{Key, Keyring, Settings};
//!
//! let settings = Settings::builder()
//!     .with_keyring(Keyring::new(Key::generate()?)?)
//!     .build()?;
//! let layer = http_sessions_redis::session_layer(&settings)?; // router.layer(layer)
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each of those is one network round trip. The stores
//! [`RedisStore::from_url`], [`RedisStore::sentinel`],
//! [`RedisStore::cluster`] and [`session_layer`] build use a pool of
//! multiplexed connections that hands a connection out without asking
//! Redis anything; a connection that turns out to be dead
//! (Redis restarted, say) is replaced and the call sent once more on a new
//! one, so the application recovers by itself. One that stops answering
//! without a reset (a host crash, a failover, a NAT entry timed out) is
//! replaced after one call times out on it, and every connection has TCP
//! keepalive on.
//!
//! The driver is re-exported ([`deadpool_redis`], [`redis`]), so a pool
//! built by hand needs no separate dependency. A deadpool-redis pool
//! ([`RedisStore::from_pool`], [`RedisStore::from_cluster_pool`]) checks
//! each connection with a `PING` when it hands it out: one more round trip
//! per call.
//!
//! # Features
//!
//! | feature | adds |
//! |---|---|
//! | `tls` | `rediss://` URLs: TLS by rustls, the platform's root certificates, and `RedisStore::from_url_with_ca` for a CA of your own |
//! | `tls-webpki-roots` | as `tls`, with Mozilla's root certificates built in instead of the platform's |
//!
//! # Layout
//!
//! - [`RedisStore`] (`store`): the store, its builder methods and the
//!   [`SessionStore`](http_sessions_core::store::SessionStore) implementation.
//! - `conn`: the pool behind a store (one node, found by URL or through
//!   Sentinels, or a cluster; checkout without a round trip, or a
//!   deadpool-redis pool given by the caller), the per-call timeout, the one retry on a dropped connection, and the
//!   mapping of driver errors to `StoreError`.
//! - `pipe`: the connection that writes concurrent calls' commands
//!   together, on a single node over plain TCP.
//! - `layout`: the hash's fields, a live session's or a renewed id's, and
//!   decoding a hash.
//! - `script`: the Lua scripts that write (`save.lua`: create or update;
//!   `retire.lua`: a renewed id's marker; `users.lua`: a user's index and
//!   generation; `end.lua`: ending a user's sessions), and their arguments.
//! - `users`: listing and ending a user's sessions
//!   ([`UserIndex`](http_sessions_core::store::UserIndex)), and the check
//!   of the server's eviction policy.
//! - [`session_layer`]: a layer on the Redis at `REDIS_URL`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
mod eviction;
mod layout;
mod pipe;
mod script;
mod store;
mod users;

pub use deadpool_redis;
pub use deadpool_redis::redis;
pub use store::{DEFAULT_PREFIX, RedisStore};

use http_sessions_core::{ConfigError, SessionLayer, Settings};

/// The environment variable [`session_layer`] reads the Redis URL from.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// The Redis [`session_layer`] uses when `REDIS_URL` is unset or empty.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A session layer keeping sessions in the Redis at `REDIS_URL` (default
/// [`DEFAULT_REDIS_URL`]), with the default key prefix and the settings'
/// store timeout.
///
/// Nothing connects yet: the pool opens connections on first use, so the
/// application starts even while Redis is down (requests then answer 503
/// until it is back). A load and a save are one round trip each, as with
/// [`RedisStore::from_url`].
///
/// # Errors
///
/// [`ConfigError::Store`] if `REDIS_URL` is not a Redis URL or not valid
/// Unicode.
///
/// # Examples
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use http_sessions_core::{Key, Keyring, Session, Settings, ValueError};
///
/// async fn login(session: Session) -> Result<&'static str, ValueError> {
///     session.insert("user", "alice")?;
///     Ok("welcome")
/// }
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let app: Router = Router::new()
///     .route("/login", get(login))
///     .layer(http_sessions_redis::session_layer(&settings)?);
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn session_layer(settings: &Settings) -> Result<SessionLayer, ConfigError> {
    let url = match std::env::var(REDIS_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) | Err(std::env::VarError::NotPresent) => DEFAULT_REDIS_URL.to_owned(),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(ConfigError::Store(
                format!("{REDIS_URL_ENV} is not valid Unicode").into(),
            ));
        }
    };
    // The layer gives the store the settings' timeout as it is built.
    Ok(SessionLayer::new(
        RedisStore::from_url(url.trim())?,
        settings,
    ))
}
