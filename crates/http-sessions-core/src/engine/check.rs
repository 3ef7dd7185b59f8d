//! [`SessionCheck`]: the application's own say on each loaded session.

use std::fmt;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::session::Session;

/// A check the layer runs on every session it loads from a cookie, before
/// the handler sees it ([`SessionLayer::with_check`](crate::SessionLayer::with_check)).
/// A session it refuses is ended: the handler gets an empty session, and
/// the response removes the cookie (and a server-side store deletes it).
///
/// This is how sessions kept in the cookie, which no server can delete,
/// are ended everywhere: keep a generation number per user in your
/// database, write it into the session at login, raise it to log the user
/// out everywhere (after a password change, say), and refuse sessions that
/// carry an older one. Each request then costs one lookup of the user's
/// generation; a cache in front of it is yours to add.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use http_sessions_core::{Session, SessionCheck, StoreError};
///
/// /// Each user's generation, as the application's database keeps it.
/// #[derive(Debug, Default)]
/// struct Generations(Mutex<HashMap<String, u64>>);
///
/// #[async_trait]
/// impl SessionCheck for Generations {
///     async fn accept(&self, session: &Session) -> Result<bool, StoreError> {
///         let Some(user) = session.user() else { return Ok(true) };
///         let carried = session.get::<u64>("generation").ok().flatten().unwrap_or(0);
///         let current = self.0.lock().map_err(|_| StoreError::unavailable("poisoned"))?
///             .get(&user).copied().unwrap_or(0);
///         Ok(carried >= current)
///     }
/// }
/// ```
#[async_trait]
pub trait SessionCheck: Send + Sync + fmt::Debug + 'static {
    /// Whether the session as loaded may be used.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the check cannot tell (its database is down,
    /// say): the request then answers 503, as when the store fails, and
    /// the cookie is left alone.
    async fn accept(&self, session: &Session) -> Result<bool, StoreError>;
}
