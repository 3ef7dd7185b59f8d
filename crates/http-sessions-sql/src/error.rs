//! What a database error means to the layer: the server cannot answer now
//! (503, the client's cookie kept), or it ran past its deadline.

use http_sessions_core::store::StoreError;

/// SQLSTATE classes and codes that mean "not now" rather than a bug: the
/// connection failed or was ended, the server is starting, stopping,
/// recovering or read-only, a lock or statement ran past its timeout, or
/// a transaction lost a deadlock or serialization race.
const UNAVAILABLE_CLASSES: [&str; 3] = ["08", "53", "57"];
const UNAVAILABLE_CODES: [&str; 4] = ["25006", "55P03", "40001", "40P01"];

/// A sqlx error as a [`StoreError`].
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let known = UNAVAILABLE_CODES.contains(&code.as_ref())
                || UNAVAILABLE_CLASSES.iter().any(|c| code.starts_with(c));
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
pub(crate) fn was_stale(e: &sqlx::Error, read: bool) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "57P01" | "57P02")),
        sqlx::Error::Io(_) => read,
        _ => false,
    }
}
