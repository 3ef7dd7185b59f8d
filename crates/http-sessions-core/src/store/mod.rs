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
//!    [`expires`](Record::expires) time is never returned as live (a store
//!    that still holds it says [`Loaded::Expired`]).
//! 5. **Renewed ids are remembered.** A retired id loads as
//!    [`Loaded::Renewed`] until the time given to `retire`, so a request
//!    still carrying it neither sees the session nor replaces its cookie.
//! 6. **Typed errors.** Backend failures are [`StoreError`]s; stored state
//!    that does not decode is logged and loads as no session.
//! 7. **Users' sessions, with the writes.** A store that implements
//!    [`UserIndex`] keeps each user's sessions as it writes them, refuses
//!    a binding of an ended generation, and never ends another user's
//!    session.

use std::fmt;

use async_trait::async_trait;

mod entry;
mod ledger;
mod table;

pub use crate::engine::manager::MAX_COOKIE_VALUE_LEN;
pub use crate::error::{BoxError, StoreError};
pub use crate::session::changes::Changes;
pub use crate::session::codec;
pub use crate::session::data_key::DataKey;
pub use crate::session::expiry::Expiry;
pub use crate::session::flash::{
    DEFAULT_FLASH_CAPACITY, FLASH_MAX_BYTES, Flash, FlashChanges, FlashQueue,
};
pub use crate::session::id::{ID_LEN, IdSource, RandomIds, SessionId};
pub use crate::session::record::{Extra, MAX_LABEL_LEN, MAX_USER_LEN, Record};
pub use crate::session::session_data::SessionData;
pub use crate::session::time::UnixTime;
pub use crate::session::value::Value;
pub use entry::Entry;
pub use ledger::UserLedger;
pub use table::Table;

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
    /// The session under the id had expired at the time of the load. The
    /// request gets a new session, as for no session at all; the record,
    /// which is never used, tells the layer's
    /// [lifecycle events](crate::events) which deadline passed and whose
    /// session it was. A store that still holds a session past its expiry
    /// answers this; one whose sessions vanish at their expiry answers
    /// `None`.
    Expired(Record),
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
    /// The latest the session can live (its absolute deadline), for the
    /// user's index: it moves only with a renew or a change of expiry.
    pub ends: UnixTime,
    /// The time of the request: a session expired at `now` is
    /// [`Gone`](StoreError::Gone).
    pub now: UnixTime,
    /// The user the session was bound to when the request loaded it; when
    /// it differs from `record.user`, the session leaves that user's
    /// index.
    pub stored_user: Option<&'a str>,
    /// The session size bound, in bytes ([`Record::encoded_len`]): an
    /// update that would leave the stored session larger than this, and
    /// larger than it was, fails with [`StoreError::TooLarge`] and writes
    /// nothing. Checked on the session as merged with what concurrent
    /// requests wrote; a session already over it can still shrink.
    pub max_size: usize,
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

    /// Whether the update changes the session's place in the users'
    /// indexes: its user, or, for a bound session, its expiry and with it
    /// the time its entry lasts. Only then does a store touch an index.
    pub fn moves_binding(&self) -> bool {
        self.stored_user != self.record.user.as_deref()
            || (self.record.user.is_some() && self.changes.expiry)
    }

    /// The bytes ([`Record::encoded_len`]) this update takes from
    /// `stored` and adds to it, computed without applying it.
    pub fn delta(&self, stored: &Record) -> (usize, usize) {
        let (mut removed, mut added) = (0, 0);
        if self.changes.cleared {
            removed += stored.data_len();
        }
        for (key, value) in self.changed() {
            if let (false, Some(old)) = (self.changes.cleared, stored.data.get(key)) {
                removed += key.len() + old.as_bytes().len();
            }
            if let Some(new) = value {
                added += key.len() + new.as_bytes().len();
            }
        }
        let flash = &self.changes.flash;
        if !flash.is_empty() {
            removed += (stored.flash.entries())
                .filter(|(id, _)| flash.taken.contains(id))
                .map(|(_, f)| f.message.len() + 8)
                .sum::<usize>();
            added += (flash.pushed.iter())
                .filter_map(|&id| self.record.flash.get(id))
                .map(|f| f.message.len() + 8)
                .sum::<usize>();
        }
        if self.changes.binding {
            removed += stored.binding_len();
            added += self.record.binding_len();
        }
        if self.changes.expiry {
            removed += stored.expiry.encoded_len();
            added += self.record.expiry.encoded_len();
        }
        (removed, added)
    }

    /// [`StoreError::TooLarge`] if this update would leave `stored` over
    /// [`max_size`](Self::max_size) and larger than it is. An update that
    /// adds no more than it takes is never refused, and costs no walk over
    /// the stored session.
    ///
    /// # Errors
    ///
    /// As above.
    pub fn check_size(&self, stored: &Record) -> Result<(), StoreError> {
        self.check_delta(stored).map(|_| ())
    }

    /// [`check_size`](Self::check_size), answering the bytes the update
    /// takes and adds ([`delta`](Self::delta)) when it passes.
    pub(crate) fn check_delta(&self, stored: &Record) -> Result<(usize, usize), StoreError> {
        let (removed, added) = self.delta(stored);
        if added <= removed {
            return Ok((removed, added));
        }
        let after = (stored.encoded_len() + added).saturating_sub(removed);
        if after > self.max_size {
            return Err(StoreError::TooLarge {
                size: after,
                limit: self.max_size,
            });
        }
        Ok((removed, added))
    }

    /// Applies the update to `stored`, a store's copy of the session:
    /// clears it if asked, sets or removes each changed key, removes the
    /// flash messages taken and adds those pushed, and sets the new expiry. For a store that
    /// keeps whole records; [`Entry::apply`] also checks that the session
    /// is live and says whether it is left empty.
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
        if !self.changes.flash.is_empty() {
            stored.flash.merge(&self.record.flash, &self.changes.flash);
        }
        if self.changes.expiry {
            stored.expiry = self.record.expiry;
        }
        if self.changes.binding {
            if stored.user != self.record.user {
                stored.generation = self.record.generation;
            }
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
/// lock or a script gives). Expired sessions and markers past their time
/// are never asked for again: reclaim them (a TTL, a sweeper). The module
/// docs list the contract, and [`Entry`] keeps its rules for a store that
/// holds whole records; `crates/http-sessions/examples/custom_store.rs` is
/// a complete store.
///
/// A store that can list and end a user's sessions says so with
/// [`users`](Self::users), and keeps its index of them with the session
/// writes: every call below carries the session's user.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The session stored under `id`, if any: [`Loaded::Expired`] if it
    /// has expired at `now` and the store still holds it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] when the
    /// backend cannot answer. State that does not decode is `Ok(None)`.
    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError>;

    /// Stores `record` under `id`, which must be free. A session bound to
    /// a user joins the user's index until `ends`, its absolute deadline,
    /// stamped with the user's generation if `record.generation` is 0.
    ///
    /// # Errors
    ///
    /// [`StoreError::Exists`] if anything is stored under `id` (a live
    /// session or a renewed id), [`StoreError::Gone`] if the record's
    /// binding is of an older generation than its user's (an
    /// [`end_all`](UserIndex::end_all) ended it),
    /// [`StoreError::TooLarge`] if the store cannot hold it, and the
    /// backend errors.
    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError>;

    /// Applies `update` to the live session under `id`: clears it if
    /// `changes.cleared`, sets or removes each changed key, removes the
    /// flash messages `changes.flash` took and adds those it pushed, and
    /// sets the new expiry; refuses, with [`StoreError::TooLarge`], an
    /// update that would take the merged session past
    /// [`max_size`](Update::max_size) ([`Update::check_size`]). A session
    /// left [empty](Record::is_empty) is deleted, and the answer
    /// says so: a request that removed its last value may find that a
    /// concurrent one set another, and the layer then keeps the cookie. An
    /// update that [moves the binding](Update::moves_binding) moves the
    /// session between the users' indexes, admitting the new binding as
    /// [`create`](Self::create) does.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if no live session is under `id` (never stored,
    /// deleted, expired at `update.now`, or renewed) or the new binding is
    /// refused as in `create`, and the backend errors.
    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError>;

    /// Ends the live session under `id` because it was renewed, leaving a
    /// marker that loads as [`Loaded::Renewed`] until `until`; the session
    /// leaves the index of `user`, the user the request loaded it with.
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
        user: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Deletes whatever is under `id`, and its entry in the index of
    /// `user`, the user the request loaded it with; deleting nothing is
    /// not an error.
    ///
    /// # Errors
    ///
    /// The backend errors.
    async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError>;

    /// A short name for the `backend` field of the spans the layer wraps
    /// store calls in (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str {
        "custom"
    }

    /// The store's index of users' sessions, if it keeps one; `None` (the
    /// default) makes [`UserSessions`](crate::UserSessions) answer
    /// [`StoreError::Unsupported`].
    fn users(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// Called with the layer's settings when a layer or a
    /// [`SessionManager`](crate::seams::SessionManager) is built on this store,
    /// before any other call. The default does nothing: a store that keeps
    /// no deadline and tells no time of its own needs nothing from them.
    /// One that does takes it from here, never from a setting of its own:
    /// a deadline from [`store_timeout`](crate::Settings::store_timeout)
    /// (Redis judges its connections by it), the time between calls from
    /// the settings' clock (the memory store's sweeper).
    fn use_settings(&self, settings: &crate::Settings) {
        let _ = settings;
    }
}

/// The sessions of each user, as a store keeps them beside its sessions:
/// the optional half of the store contract, behind
/// [`UserSessions`](crate::UserSessions).
///
/// Each user has a generation, a number that only grows (absent, it is
/// 1). A binding carries one ([`Record::generation`]: the time its request
/// began, in milliseconds), and `create`, and an `update` that moves the binding, refuse
/// ([`StoreError::Gone`]) one older than its user's. `end_all` raises the
/// user's generation to [`next_generation`] and ends every session of an
/// older one: a client renewing in a loop and a login under way both
/// carry an older generation, so neither can store a session again. None
/// of these ever ends a session bound to another user, whatever a stale
/// index entry says.
#[async_trait]
pub trait UserIndex: Send + Sync {
    /// The live sessions bound to `user` at `now`, with their ids.
    ///
    /// # Errors
    ///
    /// The backend errors.
    async fn list(&self, user: &str, now: UnixTime)
    -> Result<Vec<(SessionId, Record)>, StoreError>;

    /// Ends the session under `id` if it is live and bound to `user`;
    /// whether it did.
    ///
    /// # Errors
    ///
    /// The backend errors.
    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError>;

    /// Raises `user`'s generation to [`next_generation`] of it and
    /// `end.floor`, remembered at least until `end.remember_until`, and
    /// ends every session of an older generation but `end.keep`, which
    /// moves to the new one. Once it returns, no session bound to `user`
    /// before it started can be stored again.
    ///
    /// # Errors
    ///
    /// The backend errors; the new generation may have started, and
    /// sessions ended before the error stay ended: call it again.
    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError>;
}

/// What [`UserIndex::end_all`] is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct EndAll<'a> {
    /// The session that stays (the caller's own), if it is the user's.
    pub keep: Option<&'a SessionId>,
    /// The time of the call: sessions expired at it are not counted.
    pub now: UnixTime,
    /// The least generation to move to: past the time the call began, in
    /// milliseconds, so that every binding made by a request that began
    /// before it (a login under way) is of an older generation.
    pub floor: u64,
    /// Until when the new generation must be remembered even if the user
    /// has no session left: past the end of any request under way.
    pub remember_until: UnixTime,
}

/// What [`UserIndex::end_all`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// How many live sessions it ended.
    pub sessions: usize,
    /// The user's generation now, which the kept session carries.
    pub generation: u64,
}

/// The generation a user's sessions move to when they are all ended:
/// past the current one, and at least `floor`, which the layer sets past
/// the time `end_all` began (in milliseconds), so that a binding made by a
/// request that began before (a login in flight) is of an older one.
///
/// # Examples
///
/// ```
/// use http_sessions_core::store::next_generation;
///
/// assert_eq!(next_generation(1, 100_001), 100_001);
/// assert_eq!(next_generation(500_000, 100_001), 500_001);
/// ```
pub fn next_generation(current: u64, floor: u64) -> u64 {
    current.saturating_add(1).max(floor)
}

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

    /// [`open`](Self::open), or `None` when `value` is not even shaped
    /// like a value this codec seals (its length, alphabet or version are
    /// wrong), found without any cryptography. Only shaped values count
    /// toward the few cookies of the session's name a request may try, so
    /// another application's cookie of that name hides no session. A value
    /// that verifies but has expired may be opened here (its record past
    /// its expiry): the layer reports it as expired rather than as a
    /// cookie that failed to verify, and never uses it. The default counts
    /// every value.
    fn open_shaped(&self, value: &str, now: UnixTime) -> Option<Option<Opened>> {
        Some(self.open(value, now))
    }
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
