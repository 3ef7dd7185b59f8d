//! The [`SessionManager`]: turns the request's cookie into a [`Session`]
//! (verifying tokens, asking the store by id) and executes the commit
//! [`plan`](crate::engine::plan) when the request is done, with a timeout around
//! every store call. It owns the tokens: stores only ever see ids.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tracing::Instrument;

use crate::config::limits::OverCap;
use crate::config::settings::Settings;
use crate::engine::cap::{self, Cap};
use crate::engine::check::SessionCheck;
use crate::engine::events::{Deadline, EventKind, Events, SessionEvents};
use crate::engine::plan::{self, Action, CookiePlan, Kind, Lifetimes, Plan};
use crate::engine::stats::{self, Counters, Op, SessionStats};
use crate::engine::token;
use crate::error::StoreError;
use crate::session::changes::{Changes, CookieUpdate};
use crate::session::id::{IdSource, RandomIds, SessionId};
use crate::session::record::Record;
use crate::session::time::{Clock, UnixTime};
use crate::session::{Lifecycle, Origin, SaveHook, Session, State};
use crate::store::{CookieCodec, Loaded, SessionStore, Update, Updated, UserIndex};

/// No browser sends a cookie longer than this (RFC 6265 section 6.1 asks
/// for at least 4096 bytes per cookie, and browsers stop there); a longer
/// value is refused before any store sees it.
pub const MAX_COOKIE_VALUE_LEN: usize = 4096;

/// How long a renewed id is remembered: long enough for the requests that
/// were in flight during the renew, short enough that a browser which
/// never received the new cookie is not refused for long.
const RENEWED_GRACE: Duration = Duration::from_secs(60);

/// How often a create retries when its random id is already taken.
const CREATE_ATTEMPTS: usize = 3;

/// At most this many cookies of the session's name, among those shaped
/// like the backend's values, are tried per request, so a request stuffed
/// with forged cookies costs a bounded number of MACs.
const MAX_CANDIDATES: usize = 8;

/// Where sessions live: a server-side store, keyed by id, or the cookie.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A [`SessionStore`]: the cookie holds a signed id.
    Server(Arc<dyn SessionStore>),
    /// A [`CookieCodec`]: the cookie holds the session.
    Cookie(Arc<dyn CookieCodec>),
}

impl Backend {
    /// A server-side store.
    pub fn server(store: impl SessionStore) -> Self {
        Self::Server(Arc::new(store))
    }

    /// A cookie codec.
    pub fn cookie(codec: impl CookieCodec) -> Self {
        Self::Cookie(Arc::new(codec))
    }

    fn kind(&self) -> Kind {
        match self {
            Backend::Server(_) => Kind::Server,
            Backend::Cookie(_) => Kind::Cookie,
        }
    }
}

/// Loads and commits sessions for one backend and one set of settings.
#[derive(Debug, Clone)]
pub struct SessionManager {
    backend: Backend,
    settings: Settings,
    lifetimes: Lifetimes,
    /// The longest cookie value the response can carry; the layer sets it
    /// from the settings' cookie attributes.
    max_value_len: usize,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    counters: Arc<Counters>,
    check: Option<Arc<dyn SessionCheck>>,
    events: Events,
    cap: Option<Cap>,
}

impl SessionManager {
    /// A manager for `backend`, with the settings' clock and random ids. A
    /// server-side store learns the settings here
    /// ([`SessionStore::use_settings`]): its own deadlines follow the
    /// store timeout this manager applies.
    pub fn new(backend: Backend, settings: &Settings) -> Self {
        if let Backend::Server(store) = &backend {
            store.use_settings(settings);
        }
        Self {
            backend,
            lifetimes: Lifetimes {
                idle: settings.idle_timeout(),
                absolute: settings.absolute_lifetime(),
                refresh_fraction: settings.refresh_fraction(),
                max: settings.max_expiry(),
                persistent: true,
            },
            max_value_len: MAX_COOKIE_VALUE_LEN,
            settings: settings.clone(),
            clock: settings.clock(),
            ids: Arc::new(RandomIds::new()),
            counters: Arc::default(),
            check: None,
            events: Events::new(settings.keyring()),
            cap: settings.max_sessions_per_user().map(|max| Cap {
                max,
                over: settings.over_cap(),
            }),
        }
    }

    /// Sends the [lifecycle events](crate::events) to `hook` rather than
    /// to `tracing`.
    pub fn with_events(mut self, hook: impl SessionEvents) -> Self {
        self.events = self.events.with_hook(Arc::new(hook));
        self
    }

    /// Where this manager's events go.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// Counts, and tells of, `n` session cookies that failed to verify.
    fn rejected(&self, n: usize) {
        if n > 0 {
            self.counters.rejected(n);
            self.events
                .send_parts(EventKind::CookiesRejected { count: n }, None, None, None);
        }
    }

    /// Tells of a session found expired at `now`, and which deadline
    /// passed.
    fn expired(&self, id: Option<&SessionId>, record: &Record, now: UnixTime) {
        if !self.events.wanted() {
            return;
        }
        let absolute = record.created + self.lifetimes.of(record.expiry).absolute;
        let deadline = if now >= absolute {
            Deadline::Absolute
        } else {
            Deadline::Idle
        };
        self.events.send(EventKind::Expired(deadline), id, record);
    }

    /// About when `record` was last used: its idle deadline less its idle
    /// timeout, which a request moves once the refresh fraction of it has
    /// passed.
    pub(crate) fn last_seen(&self, record: &Record) -> UnixTime {
        let idle = self.lifetimes.of(record.expiry).idle;
        UnixTime::from_secs(
            (record.expires.as_secs())
                .saturating_sub(idle.as_secs())
                .max(record.created.as_secs()),
        )
    }

    /// Refuses, with [`StoreError::TooLarge`], a cookie value longer than
    /// `len` (at most [`MAX_COOKIE_VALUE_LEN`]): what room the `Set-Cookie`
    /// header leaves once its attributes are written.
    pub fn with_max_value_len(mut self, len: usize) -> Self {
        self.max_value_len = len.min(MAX_COOKIE_VALUE_LEN);
        self
    }

    /// Runs `check` on every session loaded from a cookie; one it refuses
    /// is ended (see [`SessionCheck`]).
    pub fn with_check(mut self, check: impl SessionCheck) -> Self {
        self.check = Some(Arc::new(check));
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

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The current time on this manager's clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The current time on this manager's clock, in milliseconds.
    pub(crate) fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }

    /// The request's session, from the first of its session cookie values
    /// (in header order) that verifies; a fresh empty session when none
    /// does or it names no live session.
    ///
    /// # Errors
    ///
    /// The store's error when it cannot answer; the caller answers 503 and
    /// leaves the client's cookie alone.
    pub fn load_values<'v>(
        self: &Arc<Self>,
        values: impl IntoIterator<Item = &'v str>,
    ) -> impl Future<Output = Result<Session, StoreError>> {
        self.load_from(values, false)
    }

    /// [`load_values`](Self::load_values), and when `renamed`, from
    /// cookies of a name the session cookie had before: a session found is
    /// then sent again, under the current name.
    pub(crate) async fn load_from<'v>(
        self: &Arc<Self>,
        values: impl IntoIterator<Item = &'v str>,
        renamed: bool,
    ) -> Result<Session, StoreError> {
        let began = self.clock.now_millis();
        let now = UnixTime::from_millis(began);
        // In a block of its own: the loaded record goes out of scope before
        // the check's await, so the future every request allocates does
        // not keep room for a copy of it across that await.
        let session = {
            // Only values shaped like the backend's count toward the
            // candidates tried: another application's cookie of the same
            // name costs one read and hides no session.
            let candidates = values
                .into_iter()
                .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE_LEN);
            let found = match &self.backend {
                Backend::Server(store) => {
                    let keys = self.settings.keyring();
                    let mut rejected = 0;
                    let opened = (candidates.filter_map(token::shaped))
                        .take(MAX_CANDIDATES)
                        .find_map(|t| {
                            let opened = token::verify(keys, &t);
                            rejected += usize::from(opened.is_none());
                            opened
                        });
                    self.rejected(rejected);
                    match opened {
                        None => None,
                        Some(opened) => {
                            let reissue = renamed || !opened.current_key;
                            match self.timed(Op::Load, store.load(&opened.id, now)).await? {
                                Some(Loaded::Live(record)) => Some((
                                    record,
                                    Origin::Stored {
                                        id: Some(opened.id),
                                        reissue,
                                    },
                                )),
                                Some(Loaded::Renewed) => {
                                    return Ok(self.session(
                                        self.empty(now),
                                        Origin::Renewed,
                                        began,
                                    ));
                                }
                                Some(Loaded::Expired(record)) => {
                                    self.expired(Some(&opened.id), &record, now);
                                    None
                                }
                                None => None,
                            }
                        }
                    }
                }
                Backend::Cookie(codec) => {
                    let mut rejected = 0;
                    let opened = (candidates.filter_map(|v| codec.open_shaped(v, now)))
                        .take(MAX_CANDIDATES)
                        .find_map(|opened| {
                            rejected += usize::from(opened.is_none());
                            opened
                        });
                    self.rejected(rejected);
                    opened.map(|o| {
                        let origin = Origin::Stored {
                            id: None,
                            reissue: renamed || !o.current_key,
                        };
                        (o.record, origin)
                    })
                }
            };
            match found {
                // The store enforces expiry; checking again costs nothing
                // and keeps a faulty store from extending a session.
                Some((mut record, origin)) if !record.is_expired(now) => {
                    // Concurrent pushes can leave more messages than the
                    // queue holds: the oldest go, and the store is told.
                    let mut dropped = Vec::new();
                    (record.flash).set_capacity_with(self.settings.flash_capacity(), |id| {
                        dropped.push(id);
                    });
                    let session = self.session(record, origin, began);
                    if !dropped.is_empty() {
                        session.flash_dropped(dropped);
                    }
                    session
                }
                Some((record, Origin::Stored { id, .. })) => {
                    self.expired(id.as_ref(), &record, now);
                    return Ok(self.session(self.empty(now), Origin::New, began));
                }
                _ => return Ok(self.session(self.empty(now), Origin::New, began)),
            }
        };
        match &self.check {
            Some(check) if !check.accept(&session).await? => {
                // Refused: ended by `destroy`, so the handler sees an empty
                // session, the cookie goes, and a bound user's index loses
                // it.
                if self.events.wanted() {
                    let (user, label) = (session.user(), session.label());
                    self.events.send_parts(
                        EventKind::Refused,
                        session.stored_id().as_ref(),
                        user.as_deref(),
                        label.as_deref(),
                    );
                }
                session.destroy();
                Ok(session)
            }
            _ => Ok(session),
        }
    }

    /// [`load_values`](Self::load_values) for one cookie value, or none.
    ///
    /// # Errors
    ///
    /// As for [`load_values`](Self::load_values).
    pub async fn load_cookie(
        self: &Arc<Self>,
        cookie: Option<&str>,
    ) -> Result<Session, StoreError> {
        self.load_values(cookie).await
    }

    fn empty(&self, now: UnixTime) -> Record {
        Record::empty(now, now, self.settings.flash_capacity())
    }

    fn session(self: &Arc<Self>, record: Record, origin: Origin, began: u64) -> Session {
        let mut state = State::new(record, origin, self.settings.flash_min_level());
        state.began = began;
        Session::new(state, Some(self.clone() as Arc<dyn SaveHook>))
    }

    /// Executes what the request's session asks for and says what to do
    /// with the cookie. If the handler saved earlier with
    /// [`Session::save`], that save's cookie is sent unless this commit
    /// sets another.
    ///
    /// # Errors
    ///
    /// The store's error; [`StoreError::Gone`] when the session ended or
    /// was renewed by another request while this one ran. The client's
    /// cookie is then left as it is.
    pub async fn commit(&self, session: &Session) -> Result<CookieUpdate, StoreError> {
        let mut state = session.take_state();
        self.commit_state(&mut state).await?;
        Ok(std::mem::take(&mut state.cookie))
    }

    /// Ends a request whose changes are not to be saved (its handler
    /// failed): what it changed since its last [`Session::save`] is
    /// dropped. The cookie an earlier save set is still returned, since
    /// the store holds what it names.
    pub fn discard(&self, session: &Session) -> CookieUpdate {
        session.take_state().cookie
    }

    /// Plans and executes. On success the state describes what is now
    /// stored, and `state.cookie` what to send; on failure it is as it was.
    async fn commit_state(&self, state: &mut State) -> Result<(), StoreError> {
        let now = self.clock.now();
        let server = self.backend.kind() == Kind::Server;
        if server && state.record.user.is_some() && state.record.generation == 0 {
            // A binding this request made: of the generation of the time
            // the request began, so that an end_all that ran meanwhile
            // refuses it (a login in flight).
            let began = match state.began {
                0 => self.clock.now_millis(),
                began => began,
            };
            state.record.generation = began.max(1);
        }
        let plan = plan::plan(state, now, &self.lifetimes, self.backend.kind());
        if plan.action == Action::Refuse {
            return Err(StoreError::Gone);
        }
        // A binding this commit stores: the cap on sessions per user counts
        // it.
        let binds = state.record.user.is_some()
            && state.record.user != state.stored_user
            && matches!(
                plan.action,
                Action::Create | Action::Update | Action::Renew | Action::Replace
            );
        let capped = self.cap.filter(|_| binds);
        if let (Some(cap), Some(user)) = (capped, &state.record.user) {
            // Boxed, as below: inline, these calls would take room in the
            // future of every commit, bound or not.
            Box::pin(self.before_binding(cap, user, now)).await?;
        }
        let writes = match plan.action {
            Action::Create | Action::Renew | Action::Replace => true,
            // An update that only moves the expiry sends no value.
            Action::Update => !state.changes.is_empty(),
            _ => false,
        };
        if writes && self.backend.kind() == Kind::Server {
            // Checked before anything is sent: one session too large for the
            // store would slow every request that shares its connection. An
            // update is checked again by the store, on the session as merged
            // with concurrent writes; here it is refused only if what it
            // writes is over the bound on its own, so a session over the
            // bound can still shrink.
            let size = state.record.encoded_len();
            let limit = self.settings.max_session_size();
            if size > limit
                && (plan.action != Action::Update
                    || state.changes.written_len(&state.record) > limit)
            {
                return Err(StoreError::TooLarge { size, limit });
            }
        }
        // The record is stored and sealed with the plan's times; a failure
        // puts the loaded ones back, so a retry plans from what is stored.
        let loaded_times = (state.record.created, state.record.expires);
        (state.record.created, state.record.expires) = (plan.created, plan.expires);
        let outcome = async {
            let stored = match &self.backend {
                Backend::Server(store) => self.execute(store.as_ref(), &plan, state, now).await?,
                Backend::Cookie(_) => match plan.action {
                    Action::Nothing | Action::Refuse => state.origin,
                    Action::Delete => Origin::New,
                    _ => Origin::Stored {
                        id: None,
                        reissue: false,
                    },
                },
            };
            let cookie = self.cookie(&plan, stored, &state.record, now)?;
            Ok((stored, cookie))
        };
        let (stored, cookie) = match outcome.await {
            Ok(done) => done,
            // Only the expiry or the cookie's key was due for a refresh, and
            // the session ended meanwhile: nothing the request did is lost,
            // so its response stands and the cookie is left alone.
            Err(StoreError::Gone) if !state.is_modified() => (Origin::New, CookieUpdate::Keep),
            Err(error) => {
                (state.record.created, state.record.expires) = loaded_times;
                return Err(error);
            }
        };
        if let (Some(cap), Some(user), Origin::Stored { id: Some(own), .. }) =
            (capped, state.record.user.as_deref(), stored)
            && let Err(error) = Box::pin(self.after_binding(cap, user, &own, now)).await
        {
            if !matches!(error, StoreError::Gone | StoreError::TooManySessions { .. })
                && let Some(index) = self.store().and_then(SessionStore::users)
            {
                // The cap could not be checked: the new session, whose
                // cookie is never sent, ends rather than count against it.
                let _ = self.timed(Op::End, index.end(user, &own, now)).await;
            }
            (state.record.created, state.record.expires) = loaded_times;
            return Err(error);
        }
        self.tell(plan.action, state, stored);
        state.origin = stored;
        state.stored_user = match stored {
            Origin::Stored { .. } => state.record.user.clone(),
            _ => None,
        };
        state.changes = Changes::default();
        state.lifecycle = Lifecycle::Keep;
        if cookie != CookieUpdate::Keep {
            state.cookie = cookie;
        }
        Ok(())
    }

    /// The store's index of users' sessions, which the cap needs.
    fn capped_index(&self) -> Result<&dyn UserIndex, StoreError> {
        (self.store().and_then(SessionStore::users)).ok_or(StoreError::Unsupported(cap::NO_INDEX))
    }

    /// `user`'s live sessions, for the cap.
    async fn listed(
        &self,
        index: &dyn UserIndex,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let mut sessions = self.timed(Op::List, index.list(user, now)).await?;
        sessions.retain(|(_, record)| record.user.as_deref() == Some(user));
        Ok(sessions)
    }

    /// Before a binding to `user` is written: [`StoreError::TooManySessions`]
    /// if the cap refuses it, so that nothing is written.
    async fn before_binding(&self, cap: Cap, user: &str, now: UnixTime) -> Result<(), StoreError> {
        let index = self.capped_index()?;
        if cap.over == OverCap::Refuse {
            let live = self.listed(index, user, now).await?.len();
            if cap.refuses(live) {
                return Err(StoreError::TooManySessions { limit: cap.max });
            }
        }
        Ok(())
    }

    /// Once the binding of `own` to `user` is stored: ends the user's
    /// sessions past the cap.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if `own` was among those ended (concurrent
    /// logins past the cap: the others were more recent),
    /// [`StoreError::TooManySessions`] if it was refused, and the store's
    /// errors.
    async fn after_binding(
        &self,
        cap: Cap,
        user: &str,
        own: &SessionId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let index = self.capped_index()?;
        let sessions = self.listed(index, user, now).await?;
        let mut own_ended = false;
        for (id, record) in cap.past(sessions, |record| self.last_seen(record)) {
            let ended = self.timed(Op::End, index.end(user, &id, now)).await?;
            if id == *own {
                own_ended = true;
            } else if ended {
                self.events
                    .send(EventKind::EndedOverCap, Some(&id), &record);
            }
        }
        match (own_ended, cap.over) {
            (false, _) => Ok(()),
            (true, OverCap::Refuse) => Err(StoreError::TooManySessions { limit: cap.max }),
            (true, OverCap::EndLeastRecent) => Err(StoreError::Gone),
        }
    }

    /// The server-side store, if sessions live in one.
    fn store(&self) -> Option<&dyn SessionStore> {
        match &self.backend {
            Backend::Server(store) => Some(store.as_ref()),
            Backend::Cookie(_) => None,
        }
    }

    /// Sends the events of a commit that stored what `action` asked: the
    /// session as loaded is `state.origin`, as now stored `stored`.
    fn tell(&self, action: Action, state: &State, stored: Origin) {
        if !self.events.wanted() {
            return;
        }
        let id = |origin: Origin| match origin {
            Origin::Stored { id, .. } => id,
            _ => None,
        };
        let (old, new) = (id(state.origin), id(stored));
        let was_stored = matches!(state.origin, Origin::Stored { .. });
        let login = state.lifecycle == Lifecycle::Renew { restart: true };
        let record = &state.record;
        let destroyed = || {
            let (user, label) = (state.stored_user.as_deref(), record.label.as_deref());
            (self.events).send_parts(EventKind::Destroyed, old.as_ref(), user, label);
        };
        match action {
            Action::Create | Action::Renew if login => {
                self.events.send(EventKind::LoggedIn, new.as_ref(), record);
            }
            Action::Create => self.events.send(EventKind::Created, new.as_ref(), record),
            Action::Renew => self.events.send(EventKind::Renewed, new.as_ref(), record),
            Action::Delete if was_stored => destroyed(),
            Action::Update if was_stored && stored == Origin::New => destroyed(),
            Action::Replace => {
                if was_stored {
                    destroyed();
                }
                self.events.send(EventKind::Created, new.as_ref(), record);
            }
            _ => {}
        }
    }

    /// The cookie the plan sends for the session as now `stored`.
    fn cookie(
        &self,
        plan: &Plan,
        stored: Origin,
        record: &Record,
        now: UnixTime,
    ) -> Result<CookieUpdate, StoreError> {
        let value = match (plan.cookie, &self.backend, stored) {
            (CookiePlan::Keep, ..) => return Ok(CookieUpdate::Keep),
            (CookiePlan::Remove, ..) => return Ok(CookieUpdate::Remove),
            (CookiePlan::RemoveIfEmptied, _, Origin::New) => return Ok(CookieUpdate::Remove),
            (CookiePlan::RemoveIfEmptied, ..) => return Ok(CookieUpdate::Keep),
            (CookiePlan::Send, Backend::Cookie(codec), _) => codec.seal(record, now)?,
            (CookiePlan::Send, Backend::Server(_), Origin::Stored { id: Some(id), .. }) => {
                token::seal(self.settings.keyring(), &id)?
            }
            (CookiePlan::Send, Backend::Server(_), _) => {
                return Err(StoreError::Corrupt(
                    "a commit that sends a cookie stored no session".into(),
                ));
            }
        };
        if value.len() > self.max_value_len {
            return Err(StoreError::TooLarge {
                size: value.len(),
                limit: self.max_value_len,
            });
        }
        Ok(CookieUpdate::Set {
            value,
            max_age: self.lifetimes.of(record.expiry).max_age(plan.created, now),
        })
    }

    /// Runs the plan's store calls; returns where the session is stored
    /// afterwards. Each call carries the session's user: the store keeps
    /// its index of users' sessions with the write.
    async fn execute(
        &self,
        store: &dyn SessionStore,
        plan: &Plan,
        state: &State,
        now: UnixTime,
    ) -> Result<Origin, StoreError> {
        let id = match state.origin {
            Origin::Stored { id: Some(id), .. } => Some(id),
            _ => None,
        };
        let stored = |id| Origin::Stored {
            id: Some(id),
            reissue: false,
        };
        let loaded_user = state.stored_user.as_deref();
        let ends = plan.created + self.lifetimes.of(state.record.expiry).absolute;
        match (plan.action, id) {
            (Action::Nothing | Action::Refuse, _) => Ok(state.origin),
            (Action::Create, _) => Ok(stored(self.create(store, &state.record, ends).await?)),
            (Action::Update, Some(id)) => {
                let update = Update {
                    record: &state.record,
                    changes: &state.changes,
                    expires: plan.expires,
                    ends,
                    now,
                    stored_user: loaded_user,
                    max_size: self.settings.max_session_size(),
                };
                match self.timed(Op::Update, store.update(&id, update)).await? {
                    Updated::Kept => Ok(stored(id)),
                    Updated::Emptied => Ok(Origin::New),
                }
            }
            (Action::Renew, Some(old)) => {
                let until = plan.expires.min(now + RENEWED_GRACE);
                Ok(stored(
                    self.renew(store, state, &old, ends, now, until).await?,
                ))
            }
            (Action::Delete, Some(id)) => {
                self.timed(Op::Delete, store.delete(&id, loaded_user))
                    .await?;
                Ok(Origin::New)
            }
            (Action::Replace, Some(old)) => {
                // The old session ends first: a logout must hold even if
                // storing the new values fails.
                self.timed(Op::Delete, store.delete(&old, loaded_user))
                    .await?;
                Ok(stored(self.create(store, &state.record, ends).await?))
            }
            (Action::Delete | Action::Replace, None) => Ok(Origin::New),
            (Action::Update | Action::Renew, None) => Err(StoreError::Corrupt(
                "the plan asked to change a session that has no id".into(),
            )),
        }
    }

    /// Stores the session under a new id, then retires `old` until `until`.
    /// The new id first: if anything fails, the old session is still
    /// there and nothing is lost.
    async fn renew(
        &self,
        store: &dyn SessionStore,
        state: &State,
        old: &SessionId,
        ends: UnixTime,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<SessionId, StoreError> {
        let new = self.create(store, &state.record, ends).await?;
        let retire = store.retire(old, now, until, state.stored_user.as_deref());
        if let Err(error) = self.timed(Op::Retire, retire).await {
            // A call that failed on its way back may have run: if the old
            // id is retired, the renew happened.
            let retired = !matches!(error, StoreError::Gone)
                && matches!(
                    self.timed(Op::Load, store.load(old, now)).await,
                    Ok(Some(Loaded::Renewed))
                );
            if !retired {
                // Nobody holds the new id's token yet; if this delete
                // fails too, the orphan expires on its own.
                let user = state.record.user.as_deref();
                let _ = self.timed(Op::Delete, store.delete(&new, user)).await;
                return Err(error);
            }
        }
        Ok(new)
    }

    /// Stores `record` under a new id, trying again if the id is taken.
    async fn create(
        &self,
        store: &dyn SessionStore,
        record: &Record,
        ends: UnixTime,
    ) -> Result<SessionId, StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.ids.next_id()?;
            match self
                .timed(Op::Create, store.create(&id, record, ends))
                .await
            {
                Err(StoreError::Exists) => continue,
                Err(error) => return Err(error),
                Ok(()) => return Ok(id),
            }
        }
        Err(StoreError::Exists)
    }

    /// Runs a store call under the store timeout, in a `session_store`
    /// span, and counts it. The timer is armed only if the call has to
    /// wait: a store that answers at once (memory) costs no timer, and one
    /// that waits on the network is cut off `store_timeout` after it first
    /// had to.
    pub(crate) async fn timed<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // Only a subscriber that takes DEBUG can keep the span: without
        // one, the call runs bare, as a span nobody keeps still costs its
        // creation, an enter and an exit per poll and a record.
        let result = if tracing::level_filters::LevelFilter::current() >= tracing::Level::DEBUG {
            // Boxed: inline, the span and its wrapper would take room in
            // the future of every request that loads a session, traced or
            // not; only a traced call pays for the allocation.
            Box::pin(self.traced(op, call)).await
        } else {
            self.within_timeout(call).await
        };
        self.counters.count(op, &result);
        result
    }

    /// [`within_timeout`](Self::within_timeout) in a `session_store` span
    /// that learns how the call ended.
    async fn traced<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = tracing::debug_span!(
            "session_store",
            backend = self.store_name(),
            op = op.as_str(),
            outcome = tracing::field::Empty,
        );
        let result = self.within_timeout(call.instrument(span.clone())).await;
        span.record("outcome", stats::outcome(&result));
        result
    }

    /// The one timeout of a store call: the settings' store timeout. A
    /// store with deadlines of its own took them from the same settings
    /// when this manager was built ([`SessionStore::use_settings`]).
    async fn within_timeout<T>(
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
        // Boxed: the timer is large, and inline it would take room in the
        // future of every request, even those whose store never waits.
        match Box::pin(tokio::time::timeout(limit, call)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// The lifetimes of the settings.
    pub(crate) fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    /// The store's name, for spans; a cookie backend calls no store.
    fn store_name(&self) -> &'static str {
        match &self.backend {
            Backend::Server(store) => store.name(),
            Backend::Cookie(_) => "cookie",
        }
    }

    /// How many store calls this manager (and its clones) made, and how
    /// many failed, since it was built.
    pub fn stats(&self) -> SessionStats {
        self.counters.snapshot()
    }
}

impl SaveHook for SessionManager {
    fn save<'a>(
        &'a self,
        state: &'a mut State,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(self.commit_state(state))
    }
}
