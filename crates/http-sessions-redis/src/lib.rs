//! Sessions in Redis: [`RedisStore`], on a single node, the primary of a
//! Sentinel group, or a Redis Cluster. Every instance of an application
//! that shares the Redis (and the session secret) sees the same sessions,
//! and they outlive the application's restarts. A load is one `HGETALL`, a
//! save one Lua script that writes only what the request changed and never
//! brings back a session that ended meanwhile.
//!
//! ```no_run
//! use http_sessions_core::{Key, Keyring, Settings};
//!
//! let settings = Settings::builder()
//!     .with_keyring(Keyring::new(Key::generate()?)?)
//!     .build()?;
//! let layer = http_sessions_redis::session_layer(&settings)?; // the Redis at REDIS_URL
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The driver is re-exported ([`deadpool_redis`], [`redis`]). Topologies,
//! URLs, TLS (features `tls`, `tls-webpki-roots`) and faults:
//! `docs/redis.md`; the modules, the pool and the pipe:
//! `docs/redis-internals.md`.
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
