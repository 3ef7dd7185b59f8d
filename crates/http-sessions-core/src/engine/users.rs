//! [`UserSessions`]: the sessions bound to a user
//! ([`Session::bind_user`](crate::Session::bind_user)), listed and ended
//! through the store's own index of them ([`UserIndex`]), which the store
//! keeps with its session writes.

use std::sync::Arc;

use crate::engine::events::EventKind;
use crate::engine::manager::{Backend, SessionManager};
use crate::engine::stats::Op;
use crate::error::StoreError;
use crate::session::Session;
use crate::session::expiry::Expiry;
use crate::session::id::SessionId;
use crate::session::record::Record;
use crate::session::time::UnixTime;
use crate::store::{EndAll, UserIndex};

/// Why a cookie backend cannot list or end sessions.
const IN_THE_COOKIE: &str = "sessions kept in the cookie have no server state, so they \
     cannot be listed or ended from the server: end them with a SessionCheck of your own \
     (keep a generation per user in your database, store it in the session at login, and \
     refuse a session whose generation is old; see the guide), or keep sessions in a \
     server-side store";

/// Why a store without an index cannot.
const NO_INDEX: &str = "this session store keeps no index of users' sessions (its \
     SessionStore::users answers None): use a store that implements UserIndex, such as \
     the memory or Redis store";

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

    fn index(&self) -> Result<&dyn UserIndex, StoreError> {
        match self.manager.backend() {
            Backend::Server(store) => store.users().ok_or(StoreError::Unsupported(NO_INDEX)),
            Backend::Cookie(_) => Err(StoreError::Unsupported(IN_THE_COOKIE)),
        }
    }

    /// The live sessions bound to `user`, the most recently used first.
    ///
    /// # Errors
    ///
    /// The store's error; [`StoreError::Unsupported`] on a cookie backend
    /// or a store that keeps no index, which no retry mends.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let index = self.index()?;
        let now = self.manager.now();
        let sessions = self.manager.timed(Op::List, index.list(user, now)).await?;
        let mut found: Vec<SessionInfo> = sessions
            .iter()
            .filter(|(_, record)| record.user.as_deref() == Some(user))
            .map(|(id, record)| self.info(id, record))
            .collect();
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
        let index = self.index()?;
        let Some(id) = SessionId::from_base64(id) else {
            return Ok(false);
        };
        let now = self.manager.now();
        let ended = self
            .manager
            .timed(Op::End, index.end(user, &id, now))
            .await?;
        if ended {
            let events = self.manager.events();
            events.send_parts(EventKind::Ended, Some(&id), Some(user), None);
        }
        Ok(ended)
    }

    /// Ends every session of `user` but `keep` (the current request's
    /// session, which stays signed in; `None` ends them all); returns how
    /// many ended. Final: once it returns, no session bound to `user`
    /// before it started can be used again, including one being renewed
    /// or logged in while it ran (that request answers 409), and a request
    /// already under way cannot bring its session back. Sessions of other
    /// users are never touched. The kept session can go on to renew in the
    /// same request.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list); sessions ended before the error stay
    /// ended, and calling it again ends the rest.
    pub async fn end_all(&self, user: &str, keep: Option<&Session>) -> Result<usize, StoreError> {
        let index = self.index()?;
        let kept = keep.and_then(Session::stored_id);
        let began = self.manager.now_millis();
        let now = UnixTime::from_millis(began);
        let end = EndAll {
            keep: kept.as_ref(),
            now,
            floor: began.saturating_add(1),
            remember_until: now + self.manager.lifetimes().absolute,
        };
        let ended = self
            .manager
            .timed(Op::EndAll, index.end_all(user, end))
            .await?;
        if let Some(session) = keep
            && kept.is_some()
            && session.user().as_deref() == Some(user)
        {
            session.move_to_generation(ended.generation);
        }
        let kind = EventKind::EndedAll {
            sessions: ended.sessions,
        };
        self.manager
            .events()
            .send_parts(kind, None, Some(user), None);
        Ok(ended.sessions)
    }

    fn info(&self, id: &SessionId, record: &Record) -> SessionInfo {
        SessionInfo {
            id: id.to_base64(),
            created: record.created,
            last_seen: self.manager.last_seen(record),
            expires: record.expires,
            label: record.label.clone(),
            expiry: record.expiry,
        }
    }
}
