//! Sessions in the application's own SQL database, on sqlx: PostgreSQL
//! (feature `postgres`), SQLite (`sqlite`) and MySQL or MariaDB (`mysql`).
//!
//! A session is a row, and each of its values and flash messages a row of
//! its own, so a save writes only the keys its request changed and two
//! requests changing different keys of one session both land. The user a
//! session is bound to is an indexed column: listing a user's sessions is
//! a query, and "log out everywhere" one transaction. Each store makes and
//! upgrades its tables itself ([`migrate`](PostgresStore::migrate)); expired
//! rows never load as live (they load as expired until they are gone) and
//! are deleted in batches by a [`Sweeper`].
//! Schema, topologies and faults: `docs/sql.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod given;
mod names;
mod stored;
mod sweeper;
#[cfg(any(feature = "sqlite", feature = "mysql"))]
mod txn;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;

pub use names::DEFAULT_TABLE;
pub use sqlx;
pub use sweeper::{DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_EVERY, Sweep, Sweeper};

#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;

/// The environment variable each backend's `session_layer` reads the
/// database URL from.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The URL in `DATABASE_URL`, or a configuration error that says what to
/// set.
fn database_url() -> Result<String, http_sessions_core::ConfigError> {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        Ok(_) | Err(std::env::VarError::NotPresent) => Err(http_sessions_core::ConfigError::Store(
            format!(
                "{DATABASE_URL_ENV} is not set: set it to the database sessions are kept in \
                 (for example postgres://app@localhost/app)"
            )
            .into(),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(http_sessions_core::ConfigError::Store(
            format!("{DATABASE_URL_ENV} is not valid Unicode").into(),
        )),
    }
}
