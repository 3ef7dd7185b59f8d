//! The [`Session`] handle that handlers use: typed values, flash messages,
//! the lifecycle verbs, and the record of what changed. It knows nothing
//! of stores: the layer loads it before the handler and commits it after.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoreError, ValueError};
use crate::session::changes::{Changes, CookieUpdate};
use crate::session::data_key::DataKey;
use crate::session::expiry::Expiry;
use crate::session::flash::{Flash, FlashLevel};
use crate::session::id::SessionId;
use crate::session::record::{MAX_LABEL_LEN, MAX_USER_LEN, Record};
use crate::session::session_data;
use crate::session::value::{self, Value};

/// One request's session: a cheap handle, clone it freely.
///
/// Methods are synchronous and touch only memory; the layer loads the
/// session before the handler runs and saves what changed after it returns.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{FlashLevel, Session};
///
/// let session = Session::detached();
/// session.insert("flywind", "123")?;
/// session.insert("visits", 3u32)?;
/// assert_eq!(session.get::<u32>("visits")?, Some(3));
/// assert_eq!(session.to_string(), "{flywind: 123, visits: 3}");
///
/// session.flash("Saved.");
/// assert_eq!(session.flashed(FlashLevel::Info).as_deref(), Some("Saved."));
/// assert_eq!(session.flashed(FlashLevel::Info), None);
/// # Ok::<(), http_sessions_core::ValueError>(())
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Shared>,
}

struct Shared {
    // std Mutex, not tokio's: nothing awaits while it is held.
    state: Mutex<State>,
    /// Where [`Session::save`] saves; `None` when detached.
    saver: Option<Arc<dyn SaveHook>>,
}

/// Where the request's session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// No session cookie verified, or it named no live session: a new
    /// session, stored only if the request writes to it.
    New,
    /// A live session: under `id` in a server-side store, or (`id` is
    /// `None`) in the cookie itself.
    Stored {
        id: Option<SessionId>,
        /// A verify-only key verified the cookie: issue it again under the
        /// current key.
        reissue: bool,
    },
    /// The cookie named a session that another request renewed: this
    /// request may read nothing and change nothing.
    Renewed,
}

/// What the handler asked of the session's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Nothing.
    Keep,
    /// A new id for the same data; `restart` also starts a new absolute
    /// lifetime.
    Renew { restart: bool },
    /// The session ends; values set afterwards start a new one.
    Destroy,
}

/// A session's state and what happened to it during the request.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) record: Record,
    pub(crate) origin: Origin,
    pub(crate) changes: Changes,
    pub(crate) lifecycle: Lifecycle,
    /// What an earlier [`Session::save`] asks the response to send.
    pub(crate) cookie: CookieUpdate,
    pub(crate) flash_min: FlashLevel,
    /// The user the session was bound to as stored: its index entry is
    /// what a change of user or an end of the session removes.
    pub(crate) stored_user: Option<String>,
    /// When the request loaded the session, in milliseconds since the
    /// epoch (0 if it was not loaded): a binding made by this request is
    /// of that generation (see [`Record::generation`]).
    pub(crate) began: u64,
}

impl State {
    /// Whether the handler changed a value, a flash message or the
    /// session's identity.
    pub(crate) fn is_modified(&self) -> bool {
        !self.changes.is_empty() || self.lifecycle != Lifecycle::Keep
    }

    pub(crate) fn new(record: Record, origin: Origin, flash_min: FlashLevel) -> Self {
        Self {
            origin,
            changes: Changes::default(),
            lifecycle: Lifecycle::Keep,
            cookie: CookieUpdate::Keep,
            flash_min,
            stored_user: record.user.clone(),
            began: 0,
            record,
        }
    }
}

/// The state [`Session::save`] took out of its session, put back when
/// dropped.
struct Taken<'a> {
    session: &'a Session,
    state: Option<State>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            *self.session.lock() = state;
        }
    }
}

/// What [`Session::save`] calls: the layer's commit of a state, which it
/// leaves describing what is now stored on success and unchanged on
/// failure.
pub(crate) trait SaveHook: Send + Sync + 'static {
    fn save<'a>(
        &'a self,
        state: &'a mut State,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;
}

impl Session {
    pub(crate) fn new(state: State, saver: Option<Arc<dyn SaveHook>>) -> Self {
        Self {
            inner: Arc::new(Shared {
                state: Mutex::new(state),
                saver,
            }),
        }
    }

    /// A session that belongs to no request and is never saved: for tests
    /// and examples of code that takes a `Session`.
    pub fn detached() -> Self {
        let record = Record::empty(
            Default::default(),
            Default::default(),
            crate::session::flash::DEFAULT_FLASH_CAPACITY,
        );
        Self::new(State::new(record, Origin::New, FlashLevel::Debug), None)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the state half
        // written: every change below is a single map or queue operation.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the state for the end-of-request commit, leaving an empty one.
    pub(crate) fn take_state(&self) -> State {
        let mut guard = self.lock();
        let empty = State::new(
            Record::empty(
                guard.record.created,
                guard.record.expires,
                guard.record.flash.capacity(),
            ),
            Origin::New,
            guard.flash_min,
        );
        std::mem::replace(&mut *guard, empty)
    }

    /// Saves the session now instead of when the response is ready, so the
    /// handler learns of a failure (a store that is down, a cookie that
    /// would be too large) and can react to it.
    ///
    /// On success, later changes are saved as usual when the response is
    /// ready, and the response carries the cookie. On failure, the values
    /// this call tried to save are dropped from the end-of-request commit:
    /// the handler has seen the error, so its own response goes out as it
    /// is, and the stored values stay as they were (they stay readable in
    /// this request). A `renew`, `renew_on_login` or `destroy` is kept and
    /// tried again when the request ends. Do not change the session from
    /// another task while this runs. A detached session has nowhere to save
    /// to and returns `Ok`.
    ///
    /// # Errors
    ///
    /// The store's error, for example
    /// [`StoreError::TooLarge`](crate::StoreError::TooLarge).
    pub async fn save(&self) -> Result<(), StoreError> {
        let Some(saver) = self.inner.saver.clone() else {
            return Ok(());
        };
        // Put back however this ends, even if the caller stops awaiting.
        let mut taken = Taken {
            session: self,
            state: Some(self.take_state()),
        };
        let Some(state) = taken.state.as_mut() else {
            return Ok(());
        };
        let result = saver.save(state).await;
        if result.is_err() {
            // The values are dropped; a renew or a destroy is not: it is
            // tried again when the request ends, so a login never stays on
            // the id it had before.
            state.changes = Changes::default();
        }
        result
    }

    /// Sets `key` to `value`, encoded as MessagePack.
    ///
    /// Setting a key to the value it already has changes nothing.
    ///
    /// # Errors
    ///
    /// [`ValueError::Encode`] if the value cannot be encoded; the session is
    /// then unchanged.
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<DataKey>,
        value: T,
    ) -> Result<(), ValueError> {
        let key = key.into();
        // Encode before locking: user `Serialize` code never runs under the lock.
        let value = match Value::encode(&value) {
            Ok(v) => v,
            Err(source) => {
                return Err(ValueError::Encode {
                    key: key.into(),
                    source,
                });
            }
        };
        let mut s = self.lock();
        match s.record.data.get_mut(key.as_str()) {
            Some(old) if *old == value => return Ok(()),
            Some(old) => *old = value,
            None => {
                s.record.data.insert(key.clone(), value);
            }
        }
        s.changes.mark(key);
        Ok(())
    }

    /// The value under `key`, decoded as a `T`; `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`ValueError::Decode`] if the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        let s = self.lock();
        s.record
            .data
            .get(key)
            .map(|v| value::decode_value(key, v))
            .transpose()
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        let mut s = self.lock();
        if s.record.data.remove(key).is_none() {
            return false;
        }
        s.changes.mark(key.into());
        true
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &str) -> bool {
        self.lock().record.data.contains_key(key)
    }

    /// How many keys have values.
    pub fn len(&self) -> usize {
        self.lock().record.data.len()
    }

    /// Whether no key has a value (flash messages aside).
    pub fn is_empty(&self) -> bool {
        self.lock().record.data.is_empty()
    }

    /// The keys, in sorted order.
    pub fn keys(&self) -> Vec<String> {
        self.lock()
            .record
            .data
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect()
    }

    /// Removes every value and every flash message. The session keeps its
    /// id; once empty it is deleted from the store at the end of the request.
    pub fn clear(&self) {
        let mut s = self.lock();
        if !s.record.data.is_empty() {
            s.record.data.clear();
            s.changes.cleared = true;
            s.changes.keys.clear();
        }
        if !s.record.flash.is_empty() {
            let State {
                record, changes, ..
            } = &mut *s;
            record.flash.take_all_with(|id| changes.flash.take(id));
        }
    }

    /// Gives the session a new id and keeps its data; the old id stops
    /// working when the request ends. Its absolute deadline stays as it
    /// was, so renewing never makes a session live longer.
    ///
    /// Call [`renew_on_login`](Self::renew_on_login) instead when the user
    /// has just proven who they are.
    pub fn renew(&self) {
        let mut s = self.lock();
        if s.lifecycle == Lifecycle::Keep {
            s.lifecycle = Lifecycle::Renew { restart: false };
        }
    }

    /// Renews the session at (re)authentication: a new id, the same data,
    /// and a new absolute lifetime from now. Call it right after checking
    /// the user's credentials, before storing who they are: an id planted
    /// before login is then worthless after it (session fixation).
    ///
    /// This is the only call that starts a new absolute lifetime.
    pub fn renew_on_login(&self) {
        let mut s = self.lock();
        if s.lifecycle != Lifecycle::Destroy {
            s.lifecycle = Lifecycle::Renew { restart: true };
        }
    }

    /// Sets how long this session lives from now on: a browser session, or
    /// lifetimes of its own such as "remember me" (see [`Expiry`]). Kept
    /// with the session, so later requests and the store apply it too;
    /// lifetimes past the settings' maximum
    /// ([`Settings::max_expiry`](crate::Settings::max_expiry)) are cut to
    /// it when the session is saved.
    ///
    /// Pair a longer expiry with [`renew_on_login`](Self::renew_on_login)
    /// at login, so that the new absolute lifetime starts then.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Expiry, Session};
    ///
    /// let session = Session::detached();
    /// assert_eq!(session.expiry(), Expiry::Default);
    /// session.set_expiry(Expiry::BrowserSession);
    /// assert_eq!(session.expiry(), Expiry::BrowserSession);
    /// assert!(session.is_modified());
    /// ```
    pub fn set_expiry(&self, expiry: Expiry) {
        let mut s = self.lock();
        if s.record.expiry != expiry {
            s.record.expiry = expiry;
            s.changes.expiry = true;
        }
    }

    /// How long this session lives ([`Expiry::Default`] unless
    /// [`set_expiry`](Self::set_expiry) changed it).
    pub fn expiry(&self) -> Expiry {
        self.lock().record.expiry
    }

    /// The session's id, as stored: opaque, never the cookie's token (which
    /// adds a signature), and the same on every request until the session
    /// is renewed or ends. `None` for a session not stored yet, and for
    /// sessions kept in the cookie, which have no id. It is what
    /// [`UserSessions`](crate::UserSessions) lists and revokes.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::Session;
    ///
    /// assert_eq!(Session::detached().id(), None);
    /// ```
    pub fn id(&self) -> Option<String> {
        match self.lock().origin {
            Origin::Stored { id: Some(id), .. } => Some(id.to_base64()),
            _ => None,
        }
    }

    /// The stored id, for the layer's own use.
    pub(crate) fn stored_id(&self) -> Option<SessionId> {
        match self.lock().origin {
            Origin::Stored { id: Some(id), .. } => Some(id),
            _ => None,
        }
    }

    /// Moves the session to `generation` of its user's sessions, as an
    /// `end_all` that kept it did in the store: a renew later in the same
    /// request carries it.
    pub(crate) fn move_to_generation(&self, generation: u64) {
        self.lock().record.generation = generation;
    }

    /// Binds the session to `user` (the application's id of the user, say
    /// a database key): server-side stores then index it, so that
    /// [`UserSessions`](crate::UserSessions) can list the user's sessions
    /// and end them ("log out everywhere"). Call it at login, after
    /// [`renew_on_login`](Self::renew_on_login).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::Session;
    ///
    /// let session = Session::detached();
    /// session.renew_on_login();
    /// session.bind_user("user-42")?;
    /// session.set_label("Firefox on Linux");
    /// assert_eq!(session.user().as_deref(), Some("user-42"));
    /// assert!(session.bind_user("x".repeat(10_000)).is_err());
    /// assert_eq!(session.user().as_deref(), Some("user-42"));
    /// # Ok::<(), http_sessions_core::ValueError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ValueError::UserTooLong`] for an id over
    /// [`MAX_USER_LEN`](crate::store::MAX_USER_LEN) bytes,
    /// [`ValueError::UserHasNul`] for one holding a NUL character; the
    /// session is left as it was.
    pub fn bind_user(&self, user: impl Into<String>) -> Result<(), ValueError> {
        let user = user.into();
        if user.len() > MAX_USER_LEN {
            return Err(ValueError::UserTooLong {
                len: user.len(),
                limit: MAX_USER_LEN,
            });
        }
        if user.contains('\0') {
            return Err(ValueError::UserHasNul);
        }
        let mut s = self.lock();
        if s.record.user.as_deref() != Some(user.as_str()) {
            s.record.user = Some(user);
            // A new binding: the store stamps the user's generation.
            s.record.generation = 0;
            s.changes.binding = true;
        }
        Ok(())
    }

    /// Unbinds the session from its user: it leaves the user's index.
    pub fn unbind_user(&self) {
        let mut s = self.lock();
        if s.record.user.take().is_some() {
            s.record.generation = 0;
            s.changes.binding = true;
        }
    }

    /// The user the session is bound to, if any.
    pub fn user(&self) -> Option<String> {
        self.lock().record.user.clone()
    }

    /// Labels the session for the user's list of sessions (a device or a
    /// browser, say), at most [`MAX_LABEL_LEN`](crate::store::MAX_LABEL_LEN)
    /// bytes: a longer label is cut at a character boundary.
    pub fn set_label(&self, label: impl Into<String>) {
        let mut label = label.into();
        if label.len() > MAX_LABEL_LEN {
            let mut end = MAX_LABEL_LEN;
            while !label.is_char_boundary(end) {
                end -= 1;
            }
            label.truncate(end);
        }
        let mut s = self.lock();
        if s.record.label.as_deref() != Some(label.as_str()) {
            s.record.label = Some(label);
            s.changes.binding = true;
        }
    }

    /// The session's label, if any.
    pub fn label(&self) -> Option<String> {
        self.lock().record.label.clone()
    }

    /// Ends the session: deletes it from the store and expires the cookie
    /// when the request ends. Values set after this start a new session,
    /// with the default expiry.
    pub fn destroy(&self) {
        let mut s = self.lock();
        s.lifecycle = Lifecycle::Destroy;
        s.record.data.clear();
        s.record.flash.take_all();
        s.record.expiry = Expiry::Default;
        s.record.user = None;
        s.record.label = None;
        s.changes = Changes::default();
    }

    /// Adds an `Info` flash message.
    pub fn flash(&self, message: impl Into<String>) {
        self.flash_with(FlashLevel::Info, message);
    }

    /// Adds a flash message of `level`; below the configured minimum level it
    /// is dropped. A full queue drops its oldest message.
    pub fn flash_with(&self, level: FlashLevel, message: impl Into<String>) {
        let mut s = self.lock();
        if level < s.flash_min {
            return;
        }
        let floor = flash_floor(s.began);
        let State {
            record, changes, ..
        } = &mut *s;
        let id = record
            .flash
            .push_after(level, message.into(), floor, |id| changes.flash.take(id));
        changes.flash.pushed.push(id);
    }

    /// Records that the load dropped these messages (over the queue's
    /// capacity): the next save removes them from the store too.
    pub(crate) fn flash_dropped(&self, ids: Vec<u64>) {
        self.lock().changes.flash.taken.extend(ids);
    }

    /// Takes the oldest unread message of `level`.
    pub fn flashed(&self, level: FlashLevel) -> Option<String> {
        let mut s = self.lock();
        let (id, flash) = s.record.flash.pop_entry(level)?;
        s.changes.flash.take(id);
        Some(flash.message)
    }

    /// Takes every unread message, oldest first, with its level.
    pub fn take_flashes(&self) -> Vec<Flash> {
        let mut s = self.lock();
        if s.record.flash.is_empty() {
            return Vec::new();
        }
        let State {
            record, changes, ..
        } = &mut *s;
        record.flash.take_all_with(|id| changes.flash.take(id))
    }

    /// The unread messages, oldest first, with their levels, left in place:
    /// for a layout that shows how many wait, or a page that shows them
    /// and lets a later request take them. Changes nothing, so a request
    /// that only peeks saves nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{FlashLevel, Session};
    ///
    /// let session = Session::detached();
    /// session.flash("Saved");
    /// session.flash_with(FlashLevel::Error, "But not sent");
    /// assert_eq!(session.peek_flashes().len(), 2);
    /// assert_eq!(session.peek_flashes()[1].message, "But not sent");
    /// // Still there for whoever takes them.
    /// assert_eq!(session.take_flashes().len(), 2);
    /// assert!(session.peek_flashes().is_empty());
    /// ```
    pub fn peek_flashes(&self) -> Vec<Flash> {
        self.lock().record.flash.iter().cloned().collect()
    }

    /// How many unread messages wait, without reading them.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::Session;
    ///
    /// let session = Session::detached();
    /// session.flash("one");
    /// session.flash("two");
    /// assert_eq!(session.flash_count(), 2);
    /// ```
    pub fn flash_count(&self) -> usize {
        self.lock().record.flash.len()
    }

    /// Whether the handler ended the session ([`destroy`](Self::destroy)).
    pub(crate) fn is_destroyed(&self) -> bool {
        matches!(self.lock().lifecycle, Lifecycle::Destroy)
    }

    /// Whether anything changed that the store must be told of.
    pub fn is_modified(&self) -> bool {
        self.lock().is_modified()
    }
}

/// Prints the values as `{k1: v1, k2: v2}` in key order; strings bare.
impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        session_data::write_map(f, &self.lock().record.data)
    }
}

/// Shows the keys, never the values or the token.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Session")
            .field("keys", &s.record.data.keys().collect::<Vec<_>>())
            .field("flashes", &s.record.flash.len())
            .field("stored", &matches!(s.origin, Origin::Stored { .. }))
            .finish()
    }
}

/// The least id a message pushed by a request that began at `began` (in
/// milliseconds) takes: the time, then 22 random bits, so that ids grow
/// with time and two requests pushing in the same millisecond do not
/// collide (1 in 4 million). Without randomness, the time alone: ids stay
/// ordered, only that rare collision is more likely.
fn flash_floor(began: u64) -> u64 {
    use ring::rand::SecureRandom;
    let mut bits = [0u8; 4];
    let random = match ring::rand::SystemRandom::new().fill(&mut bits) {
        Ok(()) => u64::from(u32::from_le_bytes(bits) & 0x3f_ffff),
        Err(_) => 0,
    };
    (began << 22) | random
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handle_is_send_sync() {
        assert_send_sync::<Session>();
    }

    #[test]
    fn changes_are_tracked() {
        let s = Session::detached();
        assert!(!s.is_modified());
        s.insert("a", "1").unwrap();
        s.insert("b", 2).unwrap();
        assert!(s.remove("b"));
        assert!(!s.remove("missing"));
        let state = s.take_state();
        assert_eq!(state.changes.keys.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(!state.changes.cleared && state.changes.flash.is_empty());
    }

    #[test]
    fn same_value_again_is_no_change() {
        let s = Session::detached();
        s.insert("a", "1").unwrap();
        let _ = s.take_state();
        let mut state = State::new(
            Record::empty(Default::default(), Default::default(), 4),
            Origin::New,
            FlashLevel::Debug,
        );
        state
            .record
            .data
            .insert("a".into(), Value::encode("1").unwrap());
        let s = Session::new(state, None);
        s.insert("a", "1").unwrap();
        assert!(!s.is_modified());
        s.insert("a", "2").unwrap();
        assert!(s.is_modified());
    }

    #[test]
    fn wrong_type_is_an_error_not_a_panic() {
        let s = Session::detached();
        s.insert("n", "not a number").unwrap();
        assert!(matches!(s.get::<u64>("n"), Err(ValueError::Decode { .. })));
        assert_eq!(s.get::<u64>("absent").unwrap(), None);
    }

    #[test]
    fn unencodable_value_is_an_error_and_changes_nothing() {
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let s = Session::detached();
        assert!(matches!(s.insert("k", Bad), Err(ValueError::Encode { .. })));
        assert!(!s.is_modified() && s.is_empty());
    }

    #[test]
    fn peeking_at_flashes_changes_nothing() {
        let mut record = Record::empty(Default::default(), Default::default(), 4);
        record.flash.push(FlashLevel::Info, "saved".into());
        record.flash.push(FlashLevel::Error, "not sent".into());
        let s = Session::new(State::new(record, Origin::New, FlashLevel::Info), None);
        assert_eq!(s.flash_count(), 2);
        let peeked = s.peek_flashes();
        assert_eq!(peeked.len(), 2);
        assert_eq!(
            (peeked[0].level, peeked[0].message.as_str()),
            (FlashLevel::Info, "saved")
        );
        assert!(!s.is_modified(), "a peek is not a change");
        assert_eq!(
            s.take_flashes(),
            peeked,
            "the same messages are still there"
        );
        assert!(s.is_modified());
        assert_eq!(s.flash_count(), 0);
    }

    #[test]
    fn flash_min_level_drops_lower() {
        let state = State::new(
            Record::empty(Default::default(), Default::default(), 4),
            Origin::New,
            FlashLevel::Warning,
        );
        let s = Session::new(state, None);
        s.flash("info is dropped");
        s.flash_with(FlashLevel::Error, "kept");
        assert!(s.flashed(FlashLevel::Info).is_none());
        let all = s.take_flashes();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].message, "kept");
    }

    #[test]
    fn clear_marks_cleared_and_drops_key_changes() {
        let s = Session::detached();
        s.insert("a", 1).unwrap();
        s.clear();
        s.insert("b", 2).unwrap();
        let state = s.take_state();
        assert!(state.changes.cleared);
        assert_eq!(state.changes.keys.iter().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn a_user_id_over_its_bound_is_refused_and_changes_nothing() {
        let s = Session::detached();
        let huge = "u".repeat(1 << 20);
        assert!(matches!(
            s.bind_user(huge),
            Err(ValueError::UserTooLong {
                len: 1_048_576,
                limit: MAX_USER_LEN
            })
        ));
        assert_eq!(s.user(), None);
        assert!(!s.is_modified());
        s.bind_user("u".repeat(MAX_USER_LEN)).unwrap();
        assert_eq!(s.user().map(|u| u.len()), Some(MAX_USER_LEN));
    }

    #[test]
    fn a_user_id_holding_a_nul_is_refused_and_changes_nothing() {
        let s = Session::detached();
        assert!(matches!(
            s.bind_user("al\0ice"),
            Err(ValueError::UserHasNul)
        ));
        assert_eq!(s.user(), None);
        assert!(!s.is_modified());
    }
}
