//! Everything a store author needs: the [`SessionStore`] trait, on session
//! ids and records, the values that cross it, and the [`CookieCodec`] of a
//! backend that keeps sessions in the cookie. Tokens, MACs and keys never reach a store: the
//! manager verifies the cookie and hands the store the id it names.
//!
//! Every store holds to these points; the conformance suite (crate
//! `http-sessions-conformance`) checks them:
//!
//! 1. **Deltas, not snapshots.** [`update`](SessionStore::update) writes
//!    only the keys in [`Changes`], so two requests changing different keys
//!    of one session both land.
//! 2. **No resurrection.** An update of a session that was destroyed,
//!    expired or renewed meanwhile fails with [`StoreError::Gone`] and
//!    writes nothing; so does a [`retire`](SessionStore::retire).
//! 3. **Atomic create.** [`create`](SessionStore::create) never overwrites:
//!    it fails with [`StoreError::Exists`] and the caller tries a new id.
//! 4. **Server-side expiry.** A record at or past its
//!    [`expires`](Record::expires) time is never returned.
//! 5. **Renewed ids are remembered.** A retired id loads as
//!    [`Loaded::Renewed`] until the time given to `retire`, so a request
//!    still carrying it neither sees the session nor replaces its cookie.
//! 6. **Typed errors.** Backend failures are [`StoreError`]s; stored state
//!    that does not decode is logged and loads as no session.

use std::fmt;

use async_trait::async_trait;

pub use crate::error::{BoxError, StoreError};
pub use crate::session::changes::Changes;
pub use crate::session::data_key::DataKey;
pub use crate::session::expiry::Expiry;
pub use crate::session::id::{ID_LEN, IdSource, RandomIds, SessionId};
pub use crate::session::record::{Extra, MAX_LABEL_LEN, Record};
pub use crate::session::session_data::SessionData;
pub use crate::session::time::UnixTime;
pub use crate::session::value::Value;

/// What [`SessionStore::update`] left under the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// The session, with the changes applied.
    Kept,
    /// Nothing: the changes left no value and no flash message, so the
    /// session was deleted.
    Emptied,
}

/// What [`SessionStore::load`] found under an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A live session.
    Live(Record),
    /// The id was renewed: its session lives on under another id, which
    /// this request must not learn.
    Renewed,
}

/// One update of a stored session: the changed keys and flash queue, and
/// the new expiry.
///
/// `record.expires` is the expiry the request loaded; write
/// [`expires`](Self::expires).
#[derive(Debug, Clone, Copy)]
pub struct Update<'a> {
    /// The whole state after the request; only what `changes` names is
    /// written from it.
    pub record: &'a Record,
    /// What changed; empty when the update only extends the expiry.
    pub changes: &'a Changes,
    /// The new expiry: the session is gone at this time unless updated
    /// again.
    pub expires: UnixTime,
    /// The time of the request: a session expired at `now` is
    /// [`Gone`](StoreError::Gone).
    pub now: UnixTime,
}

impl<'a> Update<'a> {
    /// The changed keys with their new values; `None` means removed.
    pub fn changed(&self) -> impl Iterator<Item = (&'a str, Option<&'a Value>)> + 'a {
        let data = &self.record.data;
        self.changes
            .keys
            .iter()
            .map(move |k| (k.as_str(), data.get(k.as_str())))
    }

    /// Applies the update to `stored`, a store's copy of the session:
    /// clears it if asked, sets or removes each changed key, replaces the
    /// flash queue if it changed, and sets the new expiry. For a store that
    /// keeps whole records; it still has to check first that the session is
    /// live, and delete it if this leaves it empty.
    pub fn apply_to(&self, stored: &mut Record) {
        if self.changes.cleared {
            stored.data.clear();
        }
        for (key, value) in self.changed() {
            match (value, stored.data.get_mut(key)) {
                // Overwrite in place: no new key for a key already there.
                (Some(v), Some(slot)) => *slot = v.clone(),
                (Some(v), None) => {
                    stored.data.insert(key.into(), v.clone());
                }
                (None, _) => {
                    stored.data.remove(key);
                }
            }
        }
        if self.changes.flash {
            stored.flash.clone_from(&self.record.flash);
        }
        if self.changes.expiry {
            stored.expiry = self.record.expiry;
        }
        if self.changes.binding {
            stored.user.clone_from(&self.record.user);
            stored.label.clone_from(&self.record.label);
        }
        stored.expires = self.expires;
    }
}

/// A place on the server where sessions live, keyed by [`SessionId`].
///
/// The layer wraps every call in its store timeout; an implementation need
/// not add its own, and drops a call that runs past it: a call must leave
/// the store consistent wherever it is stopped (one atomic step, as a
/// lock or a script gives). Each call touches one id, so a store can spread
/// ids over shards or cluster nodes freely. Expired sessions and markers
/// past their time are never asked for again: reclaim them (a TTL, a
/// sweeper). The module docs list the contract;
/// `crates/http-sessions/examples/custom_store.rs` is a complete store.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The session stored under `id`, if any, unless it has expired at
    /// `now`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] when the
    /// backend cannot answer. State that does not decode is `Ok(None)`.
    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError>;

    /// Stores `record` under `id`, which must be free.
    ///
    /// # Errors
    ///
    /// [`StoreError::Exists`] if anything is stored under `id` (a live
    /// session or a renewed id), [`StoreError::TooLarge`] if the store
    /// cannot hold it, and the backend errors.
    async fn create(&self, id: &SessionId, record: &Record) -> Result<(), StoreError>;

    /// Applies `update` to the live session under `id`: clears it if
    /// `changes.cleared`, sets or removes each changed key, replaces the
    /// flash queue if `changes.flash`, and sets the new expiry. A session
    /// left with no values and no flash messages is deleted, and the answer
    /// says so: a request that removed its last value may find that a
    /// concurrent one set another, and the layer then keeps the cookie.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if no live session is under `id` (never stored,
    /// deleted, expired at `update.now`, or renewed), and the backend
    /// errors.
    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError>;

    /// Ends the live session under `id` because it was renewed, leaving a
    /// marker that loads as [`Loaded::Renewed`] until `until`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if no live session is under `id` at `now`, and
    /// the backend errors.
    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<(), StoreError>;

    /// Deletes whatever is under `id`; deleting nothing is not an error.
    ///
    /// # Errors
    ///
    /// The backend errors.
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError>;

    /// A short name for the `backend` field of the spans the layer wraps
    /// store calls in (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Records in `user`'s index that the session under `id` is theirs
    /// until `expires` (a later call moves the time), at `now`; entries
    /// whose time has passed may be dropped. The layer calls it before it
    /// stores or updates a session bound to `user`, so that the index
    /// always covers every live session of the user.
    ///
    /// # Errors
    ///
    /// The backend errors. The default keeps no index and fails, so that a
    /// store without one is found at the first bound session, not when a
    /// "log out everywhere" misses sessions.
    async fn index(
        &self,
        user: &str,
        id: &SessionId,
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _ = (user, id, expires, now);
        Err(StoreError::unavailable(NO_INDEX))
    }

    /// Removes `id` from `user`'s index; removing nothing is not an error.
    ///
    /// # Errors
    ///
    /// The backend errors; by default, as [`index`](Self::index).
    async fn unindex(&self, user: &str, id: &SessionId) -> Result<(), StoreError> {
        let _ = (user, id);
        Err(StoreError::unavailable(NO_INDEX))
    }

    /// The ids in `user`'s index whose time is after `now`, dropping the
    /// others. An id listed may name a session that ended meanwhile: the
    /// caller loads each one.
    ///
    /// # Errors
    ///
    /// The backend errors; by default, as [`index`](Self::index).
    async fn indexed(&self, user: &str, now: UnixTime) -> Result<Vec<SessionId>, StoreError> {
        let _ = (user, now);
        Err(StoreError::unavailable(NO_INDEX))
    }
}

/// The error of a store that keeps no user index.
const NO_INDEX: &str = "this session store keeps no index of users' sessions: \
                        Session::bind_user needs a store that implements \
                        SessionStore::index, unindex and indexed";

/// A backend that keeps the whole session in the cookie: it turns a record
/// into a cookie value and back, with keys it derives from the settings'
/// [`Keyring`](crate::Keyring). There is no server state, so there is no
/// id, no delta and no revocation: the last response's cookie wins, and an
/// old cookie stays valid until its expiry.
pub trait CookieCodec: Send + Sync + fmt::Debug + 'static {
    /// The record a cookie value holds, and whether it was sealed under
    /// the current key; `None` for anything that does not verify, has
    /// expired at `now` or does not decode.
    fn open(&self, value: &str, now: UnixTime) -> Option<Opened>;

    /// Seals `record` into a cookie value under the current key.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] if the value cannot be a cookie,
    /// [`StoreError::Unavailable`] if sealing cannot be done (the system's
    /// random generator fails). The layer also refuses a value too long for
    /// the `Set-Cookie` its settings make.
    fn seal(&self, record: &Record, now: UnixTime) -> Result<String, StoreError>;
}

/// A cookie value that a [`CookieCodec`] opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The session it holds.
    pub record: Record,
    /// False when a verify-only key opened it: the response seals it again
    /// under the current key.
    pub current_key: bool,
}
