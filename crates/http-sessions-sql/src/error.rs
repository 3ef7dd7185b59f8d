//! What a database error means to the layer: the server cannot answer now
//! (503, the client's cookie kept), or it ran past its deadline.

use http_sessions_core::store::StoreError;

/// SQLSTATE classes and codes that mean "not now" rather than a bug: the
/// connection failed or was ended, the server is starting, stopping,
/// recovering or read-only, a lock or statement ran past its timeout, or
/// a transaction lost a deadlock or serialization race.
const UNAVAILABLE_CLASSES: [&str; 3] = ["08", "53", "57"];
const UNAVAILABLE_CODES: [&str; 4] = ["25006", "55P03", "40001", "40P01"];

/// SQLite's result codes for the same: the database busy or locked by
/// another writer past the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`
/// and their extended codes), or opened read-only (`SQLITE_READONLY`).
#[cfg(feature = "sqlite")]
const SQLITE_UNAVAILABLE: [&str; 6] = ["5", "6", "261", "262", "517", "8"];

/// MySQL's error numbers for the same, which its SQLSTATE (`HY000`, a
/// catch-all) does not tell apart: a lock wait timeout (1205), a
/// statement timeout (3024; MariaDB 1969), a read-only server (1290,
/// 1836) or transaction (1792).
#[cfg(feature = "mysql")]
const MYSQL_UNAVAILABLE: [u16; 7] = [1205, 3024, 1969, 1290, 1836, 1792, 1213];

/// Whether a database error is one a fault explains, not a bug to log.
fn is_fault(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return MYSQL_UNAVAILABLE.contains(&my.number());
    }
    let code = db.code().unwrap_or_default();
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return SQLITE_UNAVAILABLE.contains(&code.as_ref());
    }
    UNAVAILABLE_CODES.contains(&code.as_ref())
        || UNAVAILABLE_CLASSES.iter().any(|c| code.starts_with(c))
}

/// A sqlx error as a [`StoreError`].
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            let known = is_fault(db.as_ref());
            let code = db.code().unwrap_or_default();
            if !known {
                tracing::error!(code = %code, error = %db, "session store query failed");
            }
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

/// Whether `e` says the connection was dead before the call reached the
/// server, so that the same call on another connection is the first one
/// the server sees: the server ended the connection (it was terminated,
/// or the server restarted). A write stops there; a read may also be
/// tried again after any I/O error, since reading twice changes nothing.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn was_stale(e: &sqlx::Error, read: bool) -> bool {
    match e {
        // Postgres ends a connection with `57P01` (terminated, or a
        // shutdown) or `57P02` (a crash elsewhere), sent before it closes.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "57P01" | "57P02")),
        sqlx::Error::Io(_) => read,
        _ => false,
    }
}

/// Runs `call`, and again while the connection it had was dead before the
/// call reached the server ([`was_stale`]), at most `tries` times in all:
/// after a restart every idle connection of a pool is dead, and each is
/// found by one try, so the pool's size plus one tries reach a live one.
/// Pools here do not check connections before handing them out, which
/// would cost a round trip on every call.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) async fn retried<T, F, Fut>(tries: u32, read: bool, call: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tried = 1;
    loop {
        match call().await {
            Err(e) if tried < tries && was_stale(&e, read) => tried += 1,
            result => return result.map_err(store_error),
        }
    }
}
