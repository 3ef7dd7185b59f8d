//! [`UserSessions`]: the sessions bound to a user
//! ([`Session::bind_user`](crate::Session::bind_user)), listed and ended
//! through the store's index of them.
//!
//! The index is a hint, never the authority: each session it names is
//! loaded, and only one that is live and still bound to the user counts.
//! An entry whose write failed, or whose session ended, is passed over
//! (and dropped once its time passes, or at once when its id now holds
//! another user's session or a renewed id's marker).

use std::sync::Arc;

use crate::engine::manager::{Backend, SessionManager};
use crate::engine::stats::Op;
use crate::error::StoreError;
use crate::session::expiry::Expiry;
use crate::session::id::SessionId;
use crate::session::record::Record;
use crate::session::time::UnixTime;
use crate::store::{Loaded, SessionStore};

/// The sessions of each user, for a page that lists a user's devices and
/// ends one, all, or all but the current one ("log out other devices",
/// "log out everywhere" after a password change). Taken from the layer
/// with [`SessionLayer::user_sessions`](crate::SessionLayer::user_sessions);
/// cheap to clone.
///
/// Server-side stores only: sessions kept in the cookie are never listed,
/// and ending them takes a check of the application's own (see the guide).
#[derive(Debug, Clone)]
pub struct UserSessions {
    manager: Arc<SessionManager>,
}

/// One live session of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Its id, as [`Session::id`](crate::Session::id) gives it: what
    /// [`UserSessions::end`] takes.
    pub id: String,
    /// When it started (or was last renewed at a login).
    pub created: UnixTime,
    /// About when it was last used: its idle deadline minus its idle
    /// timeout, which a request moves once a quarter of the timeout has
    /// passed (the refresh fraction), so it lags by at most that much.
    pub last_seen: UnixTime,
    /// When it ends unless used again.
    pub expires: UnixTime,
    /// Its label ([`Session::set_label`](crate::Session::set_label)).
    pub label: Option<String>,
    /// Its expiry ([`Session::set_expiry`](crate::Session::set_expiry)).
    pub expiry: Expiry,
}

impl UserSessions {
    /// The sessions of each user, through `manager`'s store and clock
    /// (the layer's [`user_sessions`](crate::SessionLayer::user_sessions)
    /// is the usual way).
    pub fn new(manager: Arc<SessionManager>) -> Self {
        Self { manager }
    }

    fn store(&self) -> Result<&dyn SessionStore, StoreError> {
        match self.manager.backend() {
            Backend::Server(store) => Ok(store.as_ref()),
            Backend::Cookie(_) => Err(StoreError::unavailable(
                "sessions kept in the cookie have no index of users: \
                 end them with a check of your own (see the guide)",
            )),
        }
    }

    /// The live sessions bound to `user`, the most recently used first.
    ///
    /// # Errors
    ///
    /// The store's error, or [`StoreError::Unavailable`] on a cookie
    /// backend.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let store = self.store()?;
        let now = self.manager.now();
        let mut found = Vec::new();
        for id in self.ids(store, user, now).await? {
            if let Some(record) = self.bound(store, user, &id, now).await? {
                found.push(self.info(&id, &record));
            }
        }
        found.sort_by_key(|info| std::cmp::Reverse(info.last_seen));
        Ok(found)
    }

    /// Ends `user`'s session `id` (as listed); `false` if no live session
    /// of theirs has that id. A session of another user is never ended
    /// this way.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub async fn end(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let store = self.store()?;
        let Some(id) = SessionId::from_base64(id) else {
            return Ok(false);
        };
        let now = self.manager.now();
        if self.bound(store, user, &id, now).await?.is_none() {
            return Ok(false);
        }
        self.delete(store, user, &id).await?;
        Ok(true)
    }

    /// Ends every session of `user` but `keep` (the current one, given by
    /// [`Session::id`](crate::Session::id); `None` ends them all); returns
    /// how many ended. A request of the user already under way when this
    /// runs cannot bring its session back: its save finds it gone.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list); sessions ended before the error stay
    /// ended.
    pub async fn end_all(&self, user: &str, keep: Option<&str>) -> Result<usize, StoreError> {
        let store = self.store()?;
        let keep = keep.and_then(SessionId::from_base64);
        let now = self.manager.now();
        let mut ended = 0;
        for id in self.ids(store, user, now).await? {
            if Some(id) == keep {
                continue;
            }
            // Every id of the index is deleted, live or not yet written:
            // a login under way whose session is written after this delete
            // is a new session, and a renew under way fails when its old
            // id turns out to be gone.
            if self.bound(store, user, &id, now).await?.is_some() {
                ended += 1;
            }
            self.delete(store, user, &id).await?;
        }
        Ok(ended)
    }

    async fn ids(
        &self,
        store: &dyn SessionStore,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.manager
            .timed(Op::Indexed, store.indexed(user, now))
            .await
    }

    /// The record under `id` if it is a live session bound to `user`. An
    /// entry that now names a renewed id or another user's session is
    /// taken out of the index; one that names nothing is left to its time,
    /// since its session may be being written right now.
    async fn bound(
        &self,
        store: &dyn SessionStore,
        user: &str,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        match self.manager.timed(Op::Load, store.load(id, now)).await? {
            Some(Loaded::Live(record)) if record.user.as_deref() == Some(user) => Ok(Some(record)),
            Some(_) => {
                self.manager.unindex(store, Some(user), id).await;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(
        &self,
        store: &dyn SessionStore,
        user: &str,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        self.manager.timed(Op::Delete, store.delete(id)).await?;
        self.manager
            .timed(Op::Unindex, store.unindex(user, id))
            .await
    }

    fn info(&self, id: &SessionId, record: &Record) -> SessionInfo {
        let idle = self.manager.lifetimes().of(record.expiry).idle;
        let last_seen = UnixTime::from_secs(
            record
                .expires
                .as_secs()
                .saturating_sub(idle.as_secs())
                .max(record.created.as_secs()),
        );
        SessionInfo {
            id: id.to_base64(),
            created: record.created,
            last_seen,
            expires: record.expires,
            label: record.label.clone(),
            expiry: record.expiry,
        }
    }
}
