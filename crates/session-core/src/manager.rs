//! The [`SessionManager`]: loads a session for a request and commits what
//! the request changed, with expiry, refresh throttling and a timeout
//! around every store call. The layer is its HTTP face.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::error::StoreError;
use crate::record::Record;
use crate::session::{Session, State};
use crate::settings::Settings;
use crate::store::{Context, Save, SessionStore};
use crate::time::{Clock, SystemClock, UnixTime};
use crate::token::{self, IdSource, RandomIds};

/// No browser sends a cookie longer than this (RFC 6265 section 6.1 asks
/// for at least 4096 bytes per cookie, and browsers stop there); a longer
/// value is refused before any store sees it.
pub const MAX_COOKIE_VALUE_LEN: usize = 4096;

/// The most a `Set-Cookie` may hold, name, value and attributes together
/// (RFC 6265 section 6.1: the least a browser must keep per cookie).
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// How often a create retries when its random id is already taken.
const CREATE_ATTEMPTS: usize = 3;

/// The room left for the value in a `Set-Cookie` of at most
/// [`MAX_SET_COOKIE_LEN`] bytes, counting `Max-Age` at its longest.
fn max_value_len(settings: &Settings) -> usize {
    let longest = CookieUpdate::Set {
        value: String::new(),
        max_age: settings.absolute_lifetime(),
    };
    let overhead = crate::cookies::set_cookie_value(settings.cookie(), &longest)
        .map_or(MAX_SET_COOKIE_LEN, |v| v.len());
    MAX_SET_COOKIE_LEN.saturating_sub(overhead)
}

/// What the response must do with the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave the client's cookie as it is.
    Keep,
    /// Set the cookie to this value, living this long.
    Set {
        /// The cookie value.
        value: String,
        /// Its `Max-Age`.
        max_age: Duration,
    },
    /// Expire the cookie.
    Remove,
}

/// A commit that failed, and what to do with the cookie all the same.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CommitError {
    /// Why.
    #[source]
    pub error: StoreError,
    /// [`CookieUpdate::Remove`] when the session is gone for good;
    /// [`CookieUpdate::Keep`] when the client's cookie is still right.
    pub cookie: CookieUpdate,
}

/// Loads and commits sessions for one store and one set of settings.
#[derive(Debug, Clone)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    /// The store's tokens are `id.mac` tokens, verified here.
    signed_tokens: bool,
    /// The longest cookie value that keeps `Set-Cookie` within
    /// [`MAX_SET_COOKIE_LEN`] with these settings' attributes.
    max_value_len: usize,
    settings: Settings,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl SessionManager {
    /// A manager for `store`, with the system clock and random ids.
    pub fn new(store: impl SessionStore, settings: &Settings) -> Self {
        Self::from_arc(Arc::new(store), settings)
    }

    /// A manager for a shared store.
    pub fn from_arc(store: Arc<dyn SessionStore>, settings: &Settings) -> Self {
        Self {
            signed_tokens: store.capabilities().signed_tokens,
            max_value_len: max_value_len(settings),
            store,
            settings: settings.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds::new()),
        }
    }

    /// Uses `clock` for the time (tests move a [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses `ids` for new session ids (tests use fixed ids to check that a
    /// create never overwrites).
    pub fn with_ids(mut self, ids: impl IdSource) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The current time on this manager's clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    fn context(&self, now: UnixTime) -> Context<'_> {
        Context::new(
            self.settings.keyring(),
            &self.settings.cookie().name,
            now,
            self.ids.as_ref(),
        )
        .with_max_value_len(self.max_value_len)
    }

    /// Runs a store call under the store timeout. The timer is armed only
    /// if the call has to wait: a store that answers at once (memory,
    /// cookie) costs no timer, and one that waits on the network is cut
    /// off `store_timeout` after it first had to.
    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.settings.store_timeout();
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
            Poll::Ready(done) => Poll::Ready(Some(done)),
            Poll::Pending => Poll::Ready(None),
        });
        if let Some(done) = first.await {
            return done;
        }
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    fn fresh_state(&self, now: UnixTime) -> State {
        let record = Record::empty(now, self.deadline(now, now), self.settings.flash_capacity());
        State::new(record, None, self.settings.flash_min_level())
    }

    /// How long the browser keeps the cookie of a session created at
    /// `created`: until its absolute deadline. Idle expiry is the server's
    /// alone, so the cookie need not be sent again when a request only
    /// moves the idle deadline.
    fn cookie_max_age(&self, created: UnixTime, now: UnixTime) -> Duration {
        (created + self.settings.absolute_lifetime()).saturating_since(now)
    }

    /// The end of a session created at `created`, active at `now`.
    fn deadline(&self, created: UnixTime, now: UnixTime) -> UnixTime {
        (now + self.settings.idle_timeout()).min(created + self.settings.absolute_lifetime())
    }

    /// The session the cookie value names, or a fresh empty one when there
    /// is no cookie or it names no live session.
    ///
    /// # Errors
    ///
    /// The store's error when it cannot answer; the caller answers 503 and
    /// leaves the client's cookie alone.
    pub async fn load(self: &Arc<Self>, cookie: Option<&str>) -> Result<Session, StoreError> {
        let now = self.clock.now();
        let Some(token) = cookie else {
            return Ok(self.session(self.fresh_state(now)));
        };
        let mut opened = None;
        let loaded = if token.is_empty() || token.len() > MAX_COOKIE_VALUE_LEN {
            None
        } else if self.signed_tokens {
            // Verified here, once, so a forged token never reaches the store.
            opened = token::open(self.settings.keyring(), token);
            match opened {
                Some(o) => {
                    let cx = self.context(now).with_verified(token, o);
                    self.timed(self.store.load(token, &cx)).await?
                }
                None => None,
            }
        } else {
            self.timed(self.store.load(token, &self.context(now)))
                .await?
        };
        let state = match loaded {
            // The store enforces expiry; checking again costs nothing and
            // keeps a faulty store from extending a session.
            Some(loaded) if !loaded.record.is_expired(now) => {
                let mut record = loaded.record;
                record.flash.set_capacity(self.settings.flash_capacity());
                let mut state = State::new(
                    record,
                    Some(token.to_owned()),
                    self.settings.flash_min_level(),
                );
                state.reissue = loaded.reissue;
                state.opened = opened;
                state
            }
            _ => {
                let mut state = self.fresh_state(now);
                state.stale_cookie = true;
                state
            }
        };
        Ok(self.session(state))
    }

    fn session(self: &Arc<Self>, mut state: State) -> Session {
        state.manager = Some(self.clone());
        Session::from_state(state)
    }

    /// Saves what the request changed and says what to do with the cookie.
    ///
    /// Nothing changed: no store call, and the cookie is kept, unless the
    /// idle refresh is due or the cookie must be issued under the current
    /// key. An empty session is never written; a stored one that became
    /// empty is deleted. If the handler already saved with
    /// [`Session::save`], the cookie of that save is sent unless this
    /// commit sets another.
    ///
    /// # Errors
    ///
    /// A [`CommitError`] with the store's error and what to do with the
    /// cookie anyway.
    pub async fn commit(&self, session: &Session) -> Result<CookieUpdate, CommitError> {
        let mut state = session.take_state();
        self.commit_state(&mut state).await?;
        Ok(std::mem::replace(&mut state.cookie, CookieUpdate::Keep))
    }

    /// Saves now, on behalf of [`Session::save`]: the state goes back into
    /// the session, marked as saved on success and unchanged on failure.
    pub(crate) async fn save_now(&self, session: &Session) -> Result<(), CommitError> {
        let mut state = session.take_state();
        let result = self.commit_state(&mut state).await;
        session.put_state(state);
        result
    }

    /// Commits `state`. On success the state describes what is now stored
    /// and `state.cookie` what to send; on failure it is as it was, so the
    /// caller can change it and try again.
    async fn commit_state(&self, state: &mut State) -> Result<(), CommitError> {
        let now = self.clock.now();
        let keep = |error| CommitError {
            error,
            cookie: CookieUpdate::Keep,
        };
        // The token this request loaded, as verified at load.
        let loaded_token = state.token.as_deref().or(state.retired.as_deref());
        let cx = match (loaded_token, state.opened) {
            (Some(t), Some(o)) => self.context(now).with_verified(t, o),
            _ => self.context(now),
        };

        let mut stored = state.record.created;
        let mut expires = state.record.expires;
        let update = match &state.token {
            Some(token) => {
                let deadline = self.deadline(state.record.created, now);
                if state.record.is_empty() || deadline <= now {
                    self.timed(self.store.delete(token, &cx))
                        .await
                        .map_err(keep)?;
                    CookieUpdate::Remove
                } else {
                    let extension = deadline.saturating_since(state.record.expires);
                    let refresh_due = !extension.is_zero()
                        && extension
                            >= self
                                .settings
                                .idle_timeout()
                                .mul_f64(self.settings.refresh_fraction());
                    if state.changes.is_empty() && !refresh_due && !state.reissue {
                        CookieUpdate::Keep
                    } else {
                        let previous = state.record.expires;
                        state.record.expires = deadline;
                        let save = Save {
                            token: Some(token),
                            record: &state.record,
                            changes: &state.changes,
                        };
                        match self.timed(self.store.save(save, &cx)).await {
                            Ok(value) => {
                                expires = deadline;
                                // A server-side store keeps its token: the
                                // client's cookie is still right.
                                if value == *token {
                                    CookieUpdate::Keep
                                } else {
                                    CookieUpdate::Set {
                                        value,
                                        max_age: self.cookie_max_age(state.record.created, now),
                                    }
                                }
                            }
                            Err(error) => {
                                state.record.expires = previous;
                                let cookie = match error {
                                    StoreError::Gone => CookieUpdate::Remove,
                                    _ => CookieUpdate::Keep,
                                };
                                return Err(CommitError { error, cookie });
                            }
                        }
                    }
                }
            }
            None if !state.record.is_empty() => {
                let previous = (state.record.created, state.record.expires);
                state.record.created = now;
                state.record.expires = self.deadline(now, now);
                match self.create(&state.record, now).await {
                    Ok(value) => {
                        stored = state.record.created;
                        expires = state.record.expires;
                        CookieUpdate::Set {
                            value,
                            max_age: self.cookie_max_age(stored, now),
                        }
                    }
                    Err(error) => {
                        (state.record.created, state.record.expires) = previous;
                        return Err(keep(error));
                    }
                }
            }
            None => CookieUpdate::Keep,
        };

        let mut update = update;
        if let Some(old) = &state.retired {
            // After the create above, so a failure here loses no data.
            self.timed(self.store.delete(old, &cx))
                .await
                .map_err(keep)?;
            if update == CookieUpdate::Keep {
                update = CookieUpdate::Remove;
            }
        }
        if state.stale_cookie && update == CookieUpdate::Keep {
            update = CookieUpdate::Remove;
        }

        // Everything is stored: the state now says so.
        state.record.created = stored;
        state.record.expires = expires;
        match &update {
            CookieUpdate::Set { value, .. } => {
                if state.token.as_deref() != Some(value) {
                    state.opened = None;
                    state.token = Some(value.clone());
                }
            }
            CookieUpdate::Remove => {
                state.token = None;
                state.opened = None;
            }
            CookieUpdate::Keep => {}
        }
        state.retired = None;
        state.changes = Default::default();
        state.reissue = false;
        state.stale_cookie = false;
        if update != CookieUpdate::Keep {
            state.cookie = update;
        }
        Ok(())
    }

    async fn create(&self, record: &Record, now: UnixTime) -> Result<String, StoreError> {
        let changes = crate::store::Changes::default();
        let save = Save {
            token: None,
            record,
            changes: &changes,
        };
        let mut last = StoreError::Exists;
        for _ in 0..CREATE_ATTEMPTS {
            match self.timed(self.store.save(save, &self.context(now))).await {
                Err(StoreError::Exists) => last = StoreError::Exists,
                other => return other,
            }
        }
        Err(last)
    }
}
