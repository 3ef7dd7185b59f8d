//! The conformance suite of `http-sessions` backends: every case of the store
//! contract and of the session lifecycle, written once and run by each
//! backend against a real instance of itself.
//!
//! A backend implements [`Harness`] and calls [`suite!`] with an expression
//! that makes its harness, in an integration test; each case becomes one
//! `#[tokio::test]`. The cases drive a real [`SessionManager`] on a manual
//! clock, and server-side stores are also called directly, so a store that
//! only looks right through the manager is caught.
//!
//! ```ignore
//! // tests/conformance.rs of a store crate
//! use http_sessions_conformance::Harness;
//! # struct MyHarness;
//! http_sessions_conformance::suite!(MyHarness);
//! ```
//!
//! `crates/http-sessions/examples/custom_store.rs` in the repository is a
//! complete store with its harness.
//!
//! # Layout
//!
//! - this file: [`Harness`], the rig every case runs on, and the cases of
//!   the session lifecycle, through a manager;
//! - `rules`: the rules of one stored session, asked of the store itself;
//! - `merge`: what concurrent requests leave in one session (the size
//!   bound, flash messages), and sessions that hold only a user or an
//!   expiry;
//! - `users`: a store's index of users' sessions ([`UserIndex`]): "log out
//!   everywhere" final against renews and logins in flight, `keep`, and no
//!   user's session ended as another's. A store whose
//!   [`users`](SessionStore::users) is `Some` runs every one of them; they
//!   return at once only on a cookie backend or a store without an index;
//! - [`http`]: requests through a layer, for the cases that need one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cap;
pub mod http;
mod merge;
mod rules;
mod users;

pub use cap::*;
pub use merge::*;
pub use rules::*;
pub use users::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{Empty, Full};
use http_sessions_core::store::{
    Changes, IdSource, Loaded, RandomIds, Record, SessionId, SessionStore, StoreError, UnixTime,
    Update, UserIndex,
};
use http_sessions_core::{
    Expiry, FlashLevel, Key, Keyring, Session, SessionCheck, SessionLayer, Settings,
    SettingsBuilder, UserSessions, layer::LazySession, layer::ResponseBody, seams::Backend,
    seams::CookieUpdate, seams::ManualClock, seams::SessionManager,
};
use tower::{Layer, Service};

use ::http as http_crate;
use ::http::StatusCode;

/// What a backend gives the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// What the harness keeps of a backend it made, to look inside it.
    type Handle: Send + Sync + 'static;

    /// A new backend, configured by `settings`, that shares no sessions
    /// with any other this harness made.
    async fn make(&self, settings: &Settings) -> (Backend, Self::Handle);

    /// Makes the stored state of a session undecodable (a server-side
    /// store: the state under `id`; a cookie backend: the value `cookie`)
    /// and returns the cookie value that now names it; `None` if the
    /// backend holds no encoded state to corrupt.
    async fn corrupt(
        &self,
        handle: &Self::Handle,
        id: Option<SessionId>,
        cookie: &str,
        settings: &Settings,
    ) -> Option<String>;

    /// How many entries the backend holds (sessions and renewed ids);
    /// `None` if it cannot tell (state held by clients).
    async fn stored(&self, handle: &Self::Handle) -> Option<usize>;
}

/// The idle timeout the suite configures.
pub const IDLE: Duration = Duration::from_secs(600);
/// The absolute lifetime the suite configures.
pub const ABSOLUTE: Duration = Duration::from_secs(3600);
/// The manual clock's start.
pub const START: UnixTime = UnixTime::from_secs(1_700_000_000);

/// A keyring whose one key is 32 bytes of `byte`.
pub fn keyring(byte: u8) -> Keyring {
    Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
}

/// The settings of the suite, with `keys`, for a rig to build on its
/// clock.
pub fn settings_with(keys: Keyring) -> SettingsBuilder {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(keys)
        .with_idle_timeout(IDLE)
        .with_absolute_lifetime(ABSOLUTE)
        .with_flash_min_level(FlashLevel::Debug)
}

/// `settings` built on a new manual clock at [`START`], and the clock.
fn on_a_manual_clock(settings: SettingsBuilder) -> (Settings, ManualClock) {
    let clock = ManualClock::new(START);
    let settings = settings.with_clock(clock.clone()).build().unwrap();
    (settings, clock)
}

/// Session ids: given ones first, then random ones; remembers the last.
#[derive(Debug, Clone, Default)]
pub struct Ids(Arc<Mutex<IdsState>>);

#[derive(Debug, Default)]
struct IdsState {
    /// Handed out from the end.
    queued: Vec<SessionId>,
    last: Option<SessionId>,
}

impl Ids {
    /// Hands out `ids` in order, then random ids.
    pub fn fixed(ids: &[SessionId]) -> Self {
        let mut queued = ids.to_vec();
        queued.reverse();
        Self(Arc::new(Mutex::new(IdsState { queued, last: None })))
    }

    /// The id handed out last.
    pub fn last(&self) -> Option<SessionId> {
        self.0.lock().unwrap().last
    }
}

impl IdSource for Ids {
    fn next_id(&self) -> Result<SessionId, StoreError> {
        let mut state = self.0.lock().unwrap();
        let id = match state.queued.pop() {
            Some(id) => id,
            None => RandomIds::new().next_id()?,
        };
        state.last = Some(id);
        Ok(id)
    }
}

/// One backend under test, its manager on a manual clock, and its ids.
struct Rig<'h, H: Harness> {
    harness: &'h H,
    backend: Backend,
    handle: H::Handle,
    settings: Settings,
    clock: ManualClock,
    ids: Ids,
    manager: Arc<SessionManager>,
}

impl<'h, H: Harness> Rig<'h, H> {
    async fn new(harness: &'h H) -> Self {
        Self::with(harness, settings_with(keyring(1)), Ids::default()).await
    }

    /// A rig on a new backend, `settings` built on a new manual clock.
    async fn with(harness: &'h H, settings: SettingsBuilder, ids: Ids) -> Self {
        let (settings, clock) = on_a_manual_clock(settings);
        let (backend, handle) = harness.make(&settings).await;
        Self::on(harness, backend, handle, (settings, clock), ids)
    }

    /// Another manager on the same backend, with `settings` and the manual
    /// clock they were built on.
    fn on(
        harness: &'h H,
        backend: Backend,
        handle: H::Handle,
        (settings, clock): (Settings, ManualClock),
        ids: Ids,
    ) -> Self {
        let manager =
            Arc::new(SessionManager::new(backend.clone(), &settings).with_ids(ids.clone()));
        Self {
            harness,
            backend,
            handle,
            settings,
            clock,
            ids,
            manager,
        }
    }

    fn store(&self) -> Option<&dyn SessionStore> {
        match &self.backend {
            Backend::Server(store) => Some(store.as_ref()),
            Backend::Cookie(_) => None,
        }
    }

    /// The store, to hand to another task.
    fn server_store(&self) -> Option<Arc<dyn SessionStore>> {
        match &self.backend {
            Backend::Server(store) => Some(store.clone()),
            Backend::Cookie(_) => None,
        }
    }

    /// The store's index of users' sessions, if it has one.
    fn index(&self) -> Option<&dyn UserIndex> {
        self.store().and_then(|store| store.users())
    }

    /// The users' sessions, through this rig's manager.
    fn users(&self) -> UserSessions {
        UserSessions::new(self.manager.clone())
    }

    /// A new session of `user`, labelled `label`, with one value: its
    /// token and its id.
    async fn login(&self, user: &str, label: &str) -> (String, String) {
        let s = self.load(None).await;
        s.bind_user(user).unwrap();
        s.set_label(label);
        s.insert("k", "v").unwrap();
        let token = self.commit_token(&s).await;
        let id = self
            .load(Some(&token))
            .await
            .id()
            .expect("a stored session has an id");
        (token, id)
    }

    /// Concurrent deltas, and an old id dead at once, need server state.
    fn server_side(&self) -> bool {
        self.store().is_some()
    }

    async fn stored(&self) -> Option<usize> {
        self.harness.stored(&self.handle).await
    }

    async fn load(&self, token: Option<&str>) -> Session {
        self.manager.load_cookie(token).await.expect("load")
    }

    async fn commit(&self, session: &Session) -> CookieUpdate {
        self.manager.commit(session).await.expect("commit")
    }

    /// Commits and returns the cookie value it set.
    async fn commit_token(&self, session: &Session) -> String {
        match self.commit(session).await {
            CookieUpdate::Set { value, .. } => value,
            other => panic!("expected a cookie to be set, got {other:?}"),
        }
    }

    /// Commits and returns the cookie value the client holds afterwards.
    async fn commit_kept(&self, session: &Session, token: String) -> String {
        match self.commit(session).await {
            CookieUpdate::Set { value, .. } => value,
            CookieUpdate::Keep => token,
            CookieUpdate::Remove => panic!("a session with values was removed"),
        }
    }

    /// A stored session holding `key = value`, and its token.
    async fn create(&self, key: &str, value: &str) -> String {
        let s = self.load(None).await;
        s.insert(key, value).unwrap();
        self.commit_token(&s).await
    }

    /// Writes to the session of `token` every half idle window until the
    /// next step would reach the absolute deadline; returns the token the
    /// client then holds and the time that passed.
    async fn keep_busy(&self, mut token: String) -> (String, Duration) {
        let step = IDLE / 2;
        let mut elapsed = Duration::ZERO;
        while elapsed + step < ABSOLUTE {
            self.clock.advance(step);
            elapsed += step;
            let s = self.load(Some(&token)).await;
            assert_eq!(s.len(), 1, "ended early, after {elapsed:?}");
            s.insert("k", elapsed.as_secs()).unwrap();
            token = self.commit_kept(&s, token).await;
        }
        (token, elapsed)
    }

    /// Loads `token` and says how many values it has.
    async fn len(&self, token: &str) -> usize {
        self.load(Some(token)).await.len()
    }
}

/// A new random session id.
fn fresh_id() -> SessionId {
    RandomIds::new().next_id().unwrap()
}

/// A record bound to `user`, as the manager stores a login made at
/// [`START`], holding `key`.
fn bound(user: &str, key: &str) -> Record {
    let (mut record, _) = one_value(key);
    record.user = Some(user.to_owned());
    record.label = Some("device".to_owned());
    record.generation = START.as_secs() * 1000;
    record
}

/// An update at [`START`] of a session loaded bound to `stored_user`, to
/// `record` with `changes`.
fn update_of<'a>(
    record: &'a Record,
    changes: &'a Changes,
    stored_user: Option<&'a str>,
) -> Update<'a> {
    Update {
        record,
        changes,
        expires: START + IDLE,
        ends: START + ABSOLUTE,
        now: START,
        stored_user,
        max_size: usize::MAX,
    }
}

fn one_value(key: &str) -> (Record, Changes) {
    let mut record = Record::empty(START, START + IDLE, 4);
    record.data.insert(
        key.into(),
        http_sessions_core::store::Value::encode(&"v").unwrap(),
    );
    let changes = Changes {
        keys: vec![key.into()],
        ..Changes::default()
    };
    (record, changes)
}

/// Values and flash messages survive a save and a load, typed.
pub async fn round_trip<H: Harness>(h: &H) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        items: Vec<String>,
        total: u64,
    }
    let rig = Rig::new(h).await;
    let s = rig.load(None).await;
    s.insert("flywind", "123").unwrap();
    s.insert("visits", 3u32).unwrap();
    let cart = Cart {
        items: vec!["tea".into(), "cake".into()],
        total: 750,
    };
    s.insert("cart", &cart).unwrap();
    s.flash("first");
    s.flash_with(FlashLevel::Error, "second");
    let token = rig.commit_token(&s).await;

    let back = rig.load(Some(&token)).await;
    assert_eq!(
        back.get::<String>("flywind").unwrap().as_deref(),
        Some("123")
    );
    assert_eq!(back.get::<u32>("visits").unwrap(), Some(3));
    assert_eq!(back.get::<Cart>("cart").unwrap(), Some(cart));
    assert_eq!(back.keys(), ["cart", "flywind", "visits"]);
    let flashes = back.take_flashes();
    assert_eq!(flashes.len(), 2);
    assert_eq!(
        (flashes[0].level, flashes[0].message.as_str()),
        (FlashLevel::Info, "first")
    );
    assert_eq!(
        (flashes[1].level, flashes[1].message.as_str()),
        (FlashLevel::Error, "second")
    );
    // Reading the flashes is a change: they are gone on the next load.
    let token = rig.commit_kept(&back, token).await;
    assert!(rig.load(Some(&token)).await.take_flashes().is_empty());
}

/// 50 concurrent requests on one session, each setting its own key: all
/// land on a server-side store.
pub async fn concurrent_deltas<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if !rig.server_side() {
        return;
    }
    let token = rig.create("base", "0").await;
    // Every request loads before any saves, so each one's snapshot lacks
    // the others' keys: only deltas can keep them all.
    let mut sessions = Vec::new();
    for _ in 0..50 {
        sessions.push(rig.load(Some(&token)).await);
    }
    let mut tasks = Vec::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let manager = rig.manager.clone();
        tasks.push(tokio::spawn(async move {
            s.insert(format!("k{i:02}"), i as u64).unwrap();
            manager.commit(&s).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), CookieUpdate::Keep);
    }
    let all = rig.load(Some(&token)).await;
    assert_eq!(all.len(), 51, "lost updates: {all}");
    for i in 0..50u64 {
        assert_eq!(all.get::<u64>(&format!("k{i:02}")).unwrap(), Some(i));
    }
}

/// A save after the session was destroyed fails, sends no cookie and does
/// not bring the session back.
pub async fn no_resurrection<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("user", "alice").await;
    let id = rig.ids.last();
    let slow = rig.load(Some(&token)).await;
    let logout = rig.load(Some(&token)).await;
    logout.destroy();
    assert_eq!(rig.commit(&logout).await, CookieUpdate::Remove);

    slow.insert("cart", "tea").unwrap();
    let result = rig.manager.commit(&slow).await;
    let (Some(store), Some(id)) = (rig.store(), id) else {
        // The state lives in the cookie: nothing can know of the logout.
        assert!(result.is_ok());
        return;
    };
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    assert!(
        rig.load(Some(&token)).await.is_empty(),
        "destroyed session came back"
    );
    assert_eq!(rig.stored().await.unwrap_or(0), 0);

    // The same at the store level.
    let (record, changes) = one_value("x");
    let update = Update {
        record: &record,
        changes: &changes,
        expires: START + IDLE,
        ends: START + ABSOLUTE,
        now: START,
        stored_user: None,
        max_size: usize::MAX,
    };
    assert!(matches!(
        store.update(&id, update).await,
        Err(StoreError::Gone)
    ));
    assert!(matches!(
        store.retire(&id, START, START + IDLE, None).await,
        Err(StoreError::Gone)
    ));
    assert_eq!(store.load(&id, START).await.unwrap(), None);

    // A request that only read, due for a refresh when the session ended
    // meanwhile, loses nothing: it answers as it is, cookie untouched.
    let token = rig.create("user", "bob").await;
    let reader = rig.load(Some(&token)).await;
    let logout = rig.load(Some(&token)).await;
    logout.destroy();
    rig.commit(&logout).await;
    rig.clock.advance(IDLE / 2);
    assert_eq!(reader.len(), 1);
    assert_eq!(rig.commit(&reader).await, CookieUpdate::Keep);
    assert_eq!(rig.len(&token).await, 0);
}

/// A create whose id is taken never overwrites: the existing session keeps
/// its data and the new one gets another id.
pub async fn atomic_create<H: Harness>(h: &H) {
    let taken = SessionId::from_bytes([7; 16]);
    let rig = Rig::with(h, settings_with(keyring(1)), Ids::fixed(&[taken, taken])).await;
    let first = rig.load(None).await;
    first.insert("owner", "first").unwrap();
    let t1 = rig.commit_token(&first).await;
    let second = rig.load(None).await;
    second.insert("owner", "second").unwrap();
    let t2 = rig.commit_token(&second).await;
    assert_ne!(t1, t2);
    let owner = |s: Session| s.get::<String>("owner").unwrap();
    assert_eq!(owner(rig.load(Some(&t1)).await).as_deref(), Some("first"));
    assert_eq!(owner(rig.load(Some(&t2)).await).as_deref(), Some("second"));

    let Some(store) = rig.store() else { return };
    if rig.ids.last() == Some(taken) {
        panic!("the second session was stored under the taken id");
    }
    // At the store level: a create on a taken id, live or renewed, is refused.
    let (record, _) = one_value("x");
    assert!(matches!(
        store.create(&taken, &record, START + ABSOLUTE).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(owner(rig.load(Some(&t1)).await).as_deref(), Some("first"));
    store
        .retire(&taken, START, START + IDLE, None)
        .await
        .unwrap();
    assert!(matches!(
        store.create(&taken, &record, START + ABSOLUTE).await,
        Err(StoreError::Exists)
    ));
}

/// A session unused for the idle timeout is gone, as the store sees it.
pub async fn idle_expiry<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    if let Some(store) = rig.store() {
        let id = rig.ids.last().unwrap();
        let just_before = START + (IDLE - Duration::from_secs(1));
        assert!(
            store.load(&id, just_before).await.unwrap().is_some(),
            "expired early"
        );
        let found = store.load(&id, START + IDLE).await.unwrap();
        assert!(
            matches!(found, None | Some(Loaded::Expired(_))),
            "store returned an idle-expired session: {found:?}"
        );
    }
    rig.clock.advance(IDLE);
    assert_eq!(rig.len(&token).await, 0);
}

/// A session kept busy still ends at the absolute lifetime.
pub async fn absolute_expiry<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let (token, elapsed) = rig.keep_busy(token).await;
    if let Some(store) = rig.store() {
        let id = rig.ids.last().unwrap();
        let found = store.load(&id, START + ABSOLUTE).await.unwrap();
        assert!(
            matches!(found, None | Some(Loaded::Expired(_))),
            "store returned a session past its absolute lifetime: {found:?}"
        );
    }
    rig.clock.advance(ABSOLUTE - elapsed);
    assert_eq!(rig.len(&token).await, 0);
}

/// A read-only request writes nothing until a quarter of the idle window
/// has passed; then it extends the session. A cookie is sent only if its
/// value changed, and it lives until the absolute deadline.
pub async fn refresh_is_throttled<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let early = rig.create("k", "v").await;
    rig.clock.advance(IDLE / 8);
    let due = rig.create("k", "v").await;
    // `early` is read before the threshold: nothing is written, so it
    // still ends at its first idle deadline.
    let s = rig.load(Some(&early)).await;
    assert_eq!(s.len(), 1);
    assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
    // `due` is read a quarter of the idle window after it was made.
    rig.clock.advance(IDLE / 4);
    let s = rig.load(Some(&due)).await;
    assert_eq!(s.len(), 1);
    let due = match rig.commit(&s).await {
        CookieUpdate::Keep => due,
        CookieUpdate::Set { value, max_age } => {
            assert_ne!(value, due, "the same cookie was sent again");
            assert_eq!(max_age, Some(ABSOLUTE - IDLE / 4));
            value
        }
        CookieUpdate::Remove => panic!("a live session was removed"),
    };
    // At `due`'s first idle deadline (and past `early`'s): `early` is
    // gone, `due` lives on only if the refresh was written.
    rig.clock.advance(IDLE - IDLE / 4);
    assert_eq!(rig.len(&early).await, 0, "a throttled read wrote");
    assert_eq!(rig.len(&due).await, 1, "the refresh was not written");
}

/// Corrupt stored state loads as no session, never a panic or an error.
pub async fn corrupt_is_no_session<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let id = rig.server_side().then(|| rig.ids.last().unwrap());
    let Some(bad) = h.corrupt(&rig.handle, id, &token, &rig.settings).await else {
        // The store keeps typed values and decodes nothing on load.
        assert_eq!(rig.len(&token).await, 1);
        return;
    };
    let s = rig.load(Some(&bad)).await;
    assert!(s.is_empty(), "corrupt state was returned: {s}");
    s.insert("fresh", 1).unwrap();
    let fresh = rig.commit_token(&s).await;
    assert_ne!(fresh, bad);
}

/// Renew keeps the data under a new token; the old token loads nothing and
/// its id is remembered as renewed.
pub async fn renew_moves_to_new_token<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let old = rig.create("cart", "tea").await;
    let old_id = rig.ids.last();
    let s = rig.load(Some(&old)).await;
    s.insert("user", "alice").unwrap();
    s.renew();
    let new = rig.commit_token(&s).await;
    assert_ne!(new, old);
    let moved = rig.load(Some(&new)).await;
    assert_eq!(moved.to_string(), "{cart: tea, user: alice}");
    if let (Some(store), Some(old_id)) = (rig.store(), old_id) {
        assert!(
            rig.load(Some(&old)).await.is_empty(),
            "old token still loads"
        );
        assert_eq!(
            store.load(&old_id, START).await.unwrap(),
            Some(Loaded::Renewed)
        );
        // Remembered for the requests in flight, not for the session's life.
        let later = START + Duration::from_secs(61);
        assert_eq!(store.load(&old_id, later).await.unwrap(), None);
        // Deleting a renewed id removes its marker.
        store.delete(&old_id, None).await.unwrap();
        assert_eq!(store.load(&old_id, START).await.unwrap(), None);
    }
}

/// Renew keeps the absolute deadline: a session renewed again and again
/// still ends when its lifetime does. Only `renew_on_login` starts anew.
pub async fn renew_keeps_the_absolute_deadline<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let mut token = rig.create("k", "v").await;
    let step = IDLE / 2;
    let mut elapsed = Duration::ZERO;
    while elapsed + step < ABSOLUTE {
        rig.clock.advance(step);
        elapsed += step;
        let s = rig.load(Some(&token)).await;
        assert_eq!(s.len(), 1, "ended early, after {elapsed:?}");
        s.renew();
        match rig.commit(&s).await {
            CookieUpdate::Set { value, max_age } => {
                assert_eq!(
                    max_age,
                    Some(ABSOLUTE - elapsed),
                    "Max-Age moved past the deadline"
                );
                token = value;
            }
            other => panic!("renew sent {other:?}"),
        }
    }
    rig.clock.advance(ABSOLUTE - elapsed);
    assert_eq!(
        rig.len(&token).await,
        0,
        "renew made the session outlive its lifetime"
    );

    // At login, a new lifetime starts: kept busy, the session outlives the
    // deadline it had before.
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let (token, elapsed) = rig.keep_busy(token).await;
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.len(), 1);
    s.renew_on_login();
    let token = match rig.commit(&s).await {
        CookieUpdate::Set { value, max_age } => {
            assert_eq!(max_age, Some(ABSOLUTE));
            value
        }
        other => panic!("renew_on_login sent {other:?}"),
    };
    // Past the old absolute deadline, within the new idle window.
    rig.clock.advance(ABSOLUTE - elapsed + IDLE / 4);
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.len(), 1, "renew_on_login kept the old deadline");
}

/// A renew racing a destroy of the same session fails with `Gone`, like a
/// write would, and the session stays destroyed under every id.
pub async fn renew_after_destroy_is_gone<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("user", "alice").await;
    let renewing = rig.load(Some(&token)).await;
    let logout = rig.load(Some(&token)).await;
    logout.destroy();
    assert_eq!(rig.commit(&logout).await, CookieUpdate::Remove);
    renewing.renew();
    let result = rig.manager.commit(&renewing).await;
    if !rig.server_side() {
        assert!(result.is_ok());
        return;
    }
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    assert_eq!(
        rig.stored().await.unwrap_or(0),
        0,
        "the renew left a session behind"
    );
}

/// Requests still carrying the pre-renew cookie neither see the session
/// nor replace the new cookie: a read sends nothing, a write is refused.
pub async fn renewed_cookie_does_not_clobber<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let old = rig.create("user", "alice").await;
    let in_flight = rig.load(Some(&old)).await;
    let login = rig.load(Some(&old)).await;
    login.renew();
    let new = rig.commit_token(&login).await;
    if !rig.server_side() {
        return;
    }
    // Loaded before the renew, writing after it.
    in_flight.insert("cart", "tea").unwrap();
    let result = rig.manager.commit(&in_flight).await;
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    // Loaded after the renew: a read sends no removal cookie.
    let late = rig.load(Some(&old)).await;
    assert!(late.is_empty(), "a renewed id showed the session: {late}");
    assert_eq!(rig.commit(&late).await, CookieUpdate::Keep);
    // A write would start a new session over the renewed cookie: refused.
    let late = rig.load(Some(&old)).await;
    late.insert("x", 1).unwrap();
    let result = rig.manager.commit(&late).await;
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    // A logout is the user's own word: it expires the cookie.
    let late = rig.load(Some(&old)).await;
    late.destroy();
    assert_eq!(rig.commit(&late).await, CookieUpdate::Remove);
    // The renewed session is untouched by all of it.
    assert_eq!(rig.load(Some(&new)).await.to_string(), "{user: alice}");
}

/// Destroy deletes the session and removes the cookie.
pub async fn destroy_removes<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.destroy();
    assert_eq!(rig.commit(&s).await, CookieUpdate::Remove);
    if rig.server_side() {
        assert_eq!(rig.len(&token).await, 0);
        assert_eq!(rig.stored().await.unwrap_or(0), 0);
    }
}

/// A session nobody wrote to is never stored; one emptied is deleted.
pub async fn empty_is_never_stored<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let s = rig.load(None).await;
    assert_eq!(s.get::<String>("anything").unwrap(), None);
    s.insert("k", "v").unwrap();
    assert!(s.remove("k"));
    assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
    assert_eq!(rig.stored().await.unwrap_or(0), 0);

    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.remove("k");
    assert_eq!(rig.commit(&s).await, CookieUpdate::Remove);
    if rig.server_side() {
        assert_eq!(rig.len(&token).await, 0);
        assert_eq!(rig.stored().await.unwrap_or(0), 0);
    }
}

/// A session's own expiry is kept by the backend and enforced: "remember
/// me" outlives the settings' idle timeout and ends at its own, cut to the
/// settings' maximum; a browser session's cookie has no `Max-Age`; going
/// back to the default expiry is saved too.
pub async fn own_expiry_is_kept_and_enforced<H: Harness>(h: &H) {
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(keyring(1))
        .with_idle_timeout(IDLE)
        .with_absolute_lifetime(ABSOLUTE)
        .with_max_expiry(ABSOLUTE * 4);
    let rig = Rig::with(h, settings, Ids::default()).await;
    let s = rig.load(None).await;
    s.insert("user", "alice").unwrap();
    // Asks for more than the maximum: gets the maximum.
    s.set_expiry(Expiry::Lifetimes {
        idle: IDLE * 3,
        absolute: ABSOLUTE * 100,
    });
    let token = match rig.commit(&s).await {
        CookieUpdate::Set { value, max_age } => {
            assert_eq!(
                max_age,
                Some(ABSOLUTE * 4),
                "until its own absolute deadline"
            );
            value
        }
        other => panic!("expected a cookie, got {other:?}"),
    };
    // Past the settings' idle timeout, within its own.
    rig.clock.advance(IDLE * 2);
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"));
    assert_eq!(
        s.expiry(),
        Expiry::Lifetimes {
            idle: IDLE * 3,
            absolute: ABSOLUTE * 100
        }
    );
    let token = rig.commit_kept(&s, token).await;
    // Past its own idle timeout: gone, whatever the client holds.
    rig.clock.advance(IDLE * 3);
    assert_eq!(rig.len(&token).await, 0, "ended at its own idle deadline");

    let s = rig.load(None).await;
    s.insert("user", "bob").unwrap();
    s.set_expiry(Expiry::BrowserSession);
    let token = match rig.commit(&s).await {
        CookieUpdate::Set { value, max_age } => {
            assert_eq!(max_age, None, "a browser session's cookie");
            value
        }
        other => panic!("expected a cookie, got {other:?}"),
    };
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.expiry(), Expiry::BrowserSession);
    s.set_expiry(Expiry::Default);
    let token = match rig.commit(&s).await {
        CookieUpdate::Set { value, max_age } => {
            assert!(max_age.is_some(), "persistent again");
            value
        }
        CookieUpdate::Keep => token,
        CookieUpdate::Remove => panic!("a session with values was removed"),
    };
    assert_eq!(rig.load(Some(&token)).await.expiry(), Expiry::Default);
    // With the settings' idle timeout again.
    rig.clock.advance(IDLE + Duration::from_secs(1));
    assert_eq!(rig.len(&token).await, 0);
}

/// Sessions bound to a user are listed and ended through the store's
/// index, which stays right under renew, destroy, expiry and a change of
/// user; a request under way cannot bring back a session ended meanwhile.
/// A cookie backend keeps no index and says so.
pub async fn user_sessions_are_listed_and_ended<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let users = http_sessions_core::UserSessions::new(rig.manager.clone());
    // A cookie backend, or a store without an index, says it cannot.
    if rig.store().and_then(|store| store.users()).is_none() {
        assert!(matches!(
            users.list("alice").await,
            Err(StoreError::Unsupported(_))
        ));
        assert!(matches!(
            users.end_all("alice", None).await,
            Err(StoreError::Unsupported(_))
        ));
        return;
    }
    let rig = &rig;
    let login = |user: &'static str, label: &'static str| async move {
        let s = rig.load(None).await;
        s.bind_user(user).unwrap();
        s.set_label(label);
        s.insert("k", "v").unwrap();
        let token = rig.commit_token(&s).await;
        let id = rig
            .load(Some(&token))
            .await
            .id()
            .expect("a stored session has an id");
        (token, id)
    };
    let (laptop, laptop_id) = login("alice", "laptop").await;
    let (phone, phone_id) = login("alice", "phone").await;
    let (tablet, _) = login("alice", "tablet").await;
    let (bob, bob_id) = login("bob", "desktop").await;
    let listed = |list: Vec<http_sessions_core::SessionInfo>| {
        let mut labels: Vec<String> = list.into_iter().filter_map(|i| i.label).collect();
        labels.sort();
        labels
    };
    assert_eq!(
        listed(users.list("alice").await.unwrap()),
        ["laptop", "phone", "tablet"]
    );

    // A renew moves the tablet to a new id: listed once, under the new id.
    let s = rig.load(Some(&tablet)).await;
    s.renew_on_login();
    let tablet = rig.commit_token(&s).await;
    let tablet_id = rig.load(Some(&tablet)).await.id().unwrap();
    let list = users.list("alice").await.unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().any(|i| i.id == tablet_id));
    let info = list.iter().find(|i| i.id == laptop_id).unwrap();
    assert_eq!((info.created, info.last_seen), (START, START));

    // One ended; another user's id is not this user's to end.
    assert!(users.end("alice", &phone_id).await.unwrap());
    assert_eq!(rig.len(&phone).await, 0);
    assert!(!users.end("alice", &bob_id).await.unwrap());
    assert!(!users.end("alice", "not an id").await.unwrap());
    assert_eq!(rig.len(&bob).await, 1);

    // All but the current one; then a request that loaded before "log out
    // everywhere" cannot save its session back.
    let current = rig.load(Some(&laptop)).await;
    assert_eq!(current.id().as_ref(), Some(&laptop_id));
    assert_eq!(users.end_all("alice", Some(&current)).await.unwrap(), 1);
    assert_eq!(rig.len(&tablet).await, 0);
    assert_eq!(listed(users.list("alice").await.unwrap()), ["laptop"]);
    let late = rig.load(Some(&laptop)).await;
    assert_eq!(users.end_all("alice", None).await.unwrap(), 1);
    late.insert("after", "logout").unwrap();
    assert!(matches!(
        rig.manager.commit(&late).await,
        Err(StoreError::Gone)
    ));
    assert_eq!(rig.len(&laptop).await, 0);
    assert!(users.list("alice").await.unwrap().is_empty());

    // A change of user moves the session between indexes; unbinding
    // leaves it alive and unlisted; a destroy unlists it.
    let (carol, _) = login("carol", "laptop").await;
    let s = rig.load(Some(&carol)).await;
    s.bind_user("dave").unwrap();
    let carol = rig.commit_kept(&s, carol).await;
    assert!(users.list("carol").await.unwrap().is_empty());
    assert_eq!(users.list("dave").await.unwrap().len(), 1);
    let s = rig.load(Some(&carol)).await;
    s.unbind_user();
    let carol = rig.commit_kept(&s, carol).await;
    assert!(users.list("dave").await.unwrap().is_empty());
    assert_eq!(rig.len(&carol).await, 1);
    let s = rig.load(Some(&bob)).await;
    s.destroy();
    rig.commit(&s).await;
    assert!(users.list("bob").await.unwrap().is_empty());

    // Expired sessions leave the list with their time.
    let (_erin, _) = login("erin", "laptop").await;
    rig.clock.advance(IDLE + Duration::from_secs(1));
    assert!(users.list("erin").await.unwrap().is_empty());
}

/// Each user's generation, as an application's database would keep it:
/// the check the suite installs refuses sessions that carry an older one,
/// and fails while `down`.
#[derive(Debug, Clone, Default)]
struct Generations {
    current: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl SessionCheck for Generations {
    async fn accept(&self, session: &Session) -> Result<bool, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::unavailable("the user database is down"));
        }
        let Some(user) = session.user() else {
            return Ok(true);
        };
        let carried = session.get::<u64>("generation").unwrap().unwrap_or(0);
        let current = self
            .current
            .lock()
            .unwrap()
            .get(&user)
            .copied()
            .unwrap_or(0);
        Ok(carried >= current)
    }
}

/// A session the application's check refuses is ended: the handler sees
/// an empty session, the cookie is removed and a server store deletes it.
/// How sessions in the cookie are logged out everywhere: a per-user
/// generation raised once ends every older session of that user, on
/// every backend.
pub async fn refused_sessions_end<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let generations = Generations::default();
    let checked = Arc::new(
        SessionManager::new(rig.backend.clone(), &rig.settings).with_check(generations.clone()),
    );
    let login = |user: &'static str| {
        let checked = checked.clone();
        async move {
            let s = checked.load_cookie(None).await.unwrap();
            s.bind_user(user).unwrap();
            s.insert("generation", 0u64).unwrap();
            match checked.commit(&s).await.unwrap() {
                CookieUpdate::Set { value, .. } => value,
                other => panic!("expected a cookie, got {other:?}"),
            }
        }
    };
    let alice = login("alice").await;
    let bob = login("bob").await;
    let s = checked.load_cookie(Some(&alice)).await.unwrap();
    assert_eq!(s.user().as_deref(), Some("alice"), "accepted while current");

    // Alice changes her password: every session of hers is refused.
    generations
        .current
        .lock()
        .unwrap()
        .insert("alice".into(), 1);
    let s = checked.load_cookie(Some(&alice)).await.unwrap();
    assert!(
        s.is_empty() && s.user().is_none(),
        "the handler sees no session"
    );
    assert_eq!(checked.commit(&s).await.unwrap(), CookieUpdate::Remove);
    if let Some(store) = rig.store() {
        assert_eq!(rig.len(&alice).await, 0, "and the store no longer has it");
        if let Some(index) = store.users() {
            let listed = index.list("alice", rig.manager.now()).await.unwrap();
            assert!(listed.is_empty(), "nor alice's index: {listed:?}");
        }
    }
    let s = checked.load_cookie(Some(&bob)).await.unwrap();
    assert_eq!(
        s.user().as_deref(),
        Some("bob"),
        "another user's sessions stay"
    );

    // A check that cannot tell fails the load (a 503), never lets it by.
    generations
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        checked.load_cookie(Some(&bob)).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// Peeking at flash messages leaves them for a later request and saves
/// nothing; taking them removes them.
pub async fn peeked_flashes_wait<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let s = rig.load(None).await;
    s.insert("user", "alice").unwrap();
    s.flash("saved");
    s.flash_with(FlashLevel::Warning, "check your mail");
    let token = rig.commit_token(&s).await;

    let layout = rig.load(Some(&token)).await;
    assert_eq!(layout.flash_count(), 2);
    let peeked = layout.peek_flashes();
    assert_eq!(
        peeked
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>(),
        ["saved", "check your mail"]
    );
    assert_eq!(
        rig.commit(&layout).await,
        CookieUpdate::Keep,
        "a peek saves nothing"
    );

    let page = rig.load(Some(&token)).await;
    assert_eq!(page.take_flashes(), peeked, "still there after the peek");
    let token = rig.commit_kept(&page, token).await;
    assert_eq!(rig.load(Some(&token)).await.flash_count(), 0);
}

/// A handler that answers 5xx saves nothing it changed, through the layer:
/// no store write, no cookie; one that destroyed the session still ends
/// it; and with `with_save_on_server_error(true)` its changes are saved.
pub async fn failed_handler_saves_nothing<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("user", "alice").await;
    let stored = rig.stored().await;
    let name = rig.settings.cookie().name.clone();
    let cookie = http::cookie(&name, &token);
    let failing = |action: fn(&Session)| {
        let manager = SessionManager::new(rig.backend.clone(), &rig.settings);
        handler(
            SessionLayer::from_manager(manager),
            StatusCode::INTERNAL_SERVER_ERROR,
            action,
        )
    };

    let changed = failing(|s| s.insert("user", "mallory").unwrap());
    let reply = http::get(&changed, "/", Some(cookie.clone())).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.set_cookie(), None, "nothing to tell the client");
    assert_eq!(reply.headers[http_crate::header::VARY], "cookie");
    let renewed = failing(|s| {
        s.renew_on_login();
        s.flash("welcome");
    });
    assert_eq!(
        http::get(&renewed, "/", Some(cookie.clone()))
            .await
            .set_cookie(),
        None
    );
    let created = failing(|s| s.insert("user", "eve").unwrap());
    assert_eq!(http::get(&created, "/", None).await.set_cookie(), None);
    let after = rig.load(Some(&token)).await;
    assert_eq!(after.to_string(), "{user: alice}", "the session as it was");
    assert_eq!(after.flash_count(), 0);
    assert_eq!(rig.stored().await, stored, "no session created or changed");

    let saving = SessionManager::new(
        rig.backend.clone(),
        &Settings::builder()
            .with_cookie_name("session")
            .with_keyring(keyring(1))
            .with_idle_timeout(IDLE)
            .with_absolute_lifetime(ABSOLUTE)
            .with_save_on_server_error(true)
            .with_clock(rig.clock.clone())
            .build()
            .unwrap(),
    );
    let saving = handler(
        SessionLayer::from_manager(saving),
        StatusCode::SERVICE_UNAVAILABLE,
        |s| s.insert("user", "bob").unwrap(),
    );
    let reply = http::get(&saving, "/", Some(cookie.clone())).await;
    let token = reply.cookie_value(&name).unwrap_or(&token).to_owned();
    assert_eq!(rig.load(Some(&token)).await.to_string(), "{user: bob}");

    let logout = failing(|s| s.destroy());
    let reply = http::get(&logout, "/", Some(http::cookie(&name, &token))).await;
    assert!(
        reply.removes_cookie(),
        "a logout stands: {:?}",
        reply.set_cookie()
    );
    if rig.server_side() {
        assert_eq!(rig.len(&token).await, 0);
    }
}

/// A service behind `layer` whose handler loads the session, does `action`
/// and answers `status`.
fn handler(
    layer: SessionLayer,
    status: StatusCode,
    action: fn(&Session),
) -> impl Service<
    http_crate::Request<Empty<Bytes>>,
    Response = http_crate::Response<ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    let inner = tower::service_fn(
        move |request: http_crate::Request<Empty<Bytes>>| async move {
            let lazy = request.extensions().get::<LazySession>().cloned();
            let session = lazy.expect("the layer").load(request.headers()).await;
            action(&session.expect("a session"));
            let mut response = http_crate::Response::new(Full::from("handler"));
            *response.status_mut() = status;
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    layer.layer(inner)
}

/// A request that removes the last value it saw does not delete a value
/// another request set meanwhile, nor the cookie that names it.
pub async fn emptying_keeps_a_concurrent_value<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if !rig.server_side() {
        return;
    }
    let token = rig.create("k", "v").await;
    let emptier = rig.load(Some(&token)).await;
    let writer = rig.load(Some(&token)).await;
    writer.insert("x", 1).unwrap();
    assert_eq!(rig.commit(&writer).await, CookieUpdate::Keep);
    assert!(emptier.remove("k"));
    assert_eq!(rig.commit(&emptier).await, CookieUpdate::Keep);
    assert_eq!(rig.load(Some(&token)).await.to_string(), "{x: 1}");
}

/// A forged, random or foreign cookie is no session, and it is left alone:
/// the layer only removes a cookie whose session it ended.
pub async fn forged_cookie_is_no_session<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let real = rig.create("k", "v").await;
    let foreign = {
        let other = Rig::with(h, settings_with(keyring(9)), Ids::default()).await;
        other.create("k", "v").await
    };
    let mut flipped = real.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        foreign.as_str(),
        flipped.as_str(),
        "x",
        "a.b.c",
        &"A".repeat(5000),
    ] {
        let s = rig.load(Some(bad)).await;
        assert!(s.is_empty(), "{bad:?} loaded {s}");
        assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
    }
    assert_eq!(rig.len(&real).await, 1);
}

/// Of two cookies with the session's name, the first that verifies is
/// used, wherever it stands, and no removal cookie is sent for the other.
pub async fn first_verifying_cookie_wins<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let real = rig.create("user", "alice").await;
    let s = rig
        .manager
        .load_values(["garbage", real.as_str()])
        .await
        .unwrap();
    assert_eq!(s.to_string(), "{user: alice}");
    assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
    let s = rig
        .manager
        .load_values(["garbage", real.as_str()])
        .await
        .unwrap();
    s.insert("seen", true).unwrap();
    let kept = rig.commit_kept(&s, real).await;
    assert_eq!(rig.load(Some(&kept)).await.len(), 2);
}

/// A cookie under a verify-only key loads and is issued again under the
/// current key; a cookie under a removed key is no session.
pub async fn rotation_reissues<H: Harness>(h: &H) {
    let old = Rig::new(h).await;
    let token = old.create("k", "v").await;
    let rotated_settings = on_a_manual_clock(settings_with(
        keyring(2)
            .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
            .unwrap(),
    ));
    let rotated = Rig::on(
        h,
        rotated_backend(h, &old, rotated_settings.0.clone()).await,
        h.make(&rotated_settings.0).await.1,
        rotated_settings,
        Ids::default(),
    );
    let s = rotated.load(Some(&token)).await;
    assert_eq!(s.len(), 1);
    let reissued = rotated.commit_token(&s).await;
    assert_ne!(reissued, token);
    let only_new_settings = on_a_manual_clock(settings_with(keyring(2)));
    let only_new = Rig::on(
        h,
        rotated_backend(h, &old, only_new_settings.0.clone()).await,
        h.make(&only_new_settings.0).await.1,
        only_new_settings,
        Ids::default(),
    );
    assert_eq!(only_new.len(&reissued).await, 1);
    assert_eq!(only_new.len(&token).await, 0);
}

/// The backend `old` runs on, seen under `settings`: the same store for a
/// server-side backend, a codec with the new keys for a cookie backend.
async fn rotated_backend<H: Harness>(h: &H, old: &Rig<'_, H>, settings: Settings) -> Backend {
    match &old.backend {
        Backend::Server(store) => Backend::Server(store.clone()),
        Backend::Cookie(_) => h.make(&settings).await.0,
    }
}

/// A failed `save()` drops what it tried to save: the end of the request
/// saves nothing of it and answers normally.
pub async fn failed_save_is_not_retried<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    // Far larger than any store's bound or any cookie.
    s.insert("huge", "x".repeat(1 << 20)).unwrap();
    match s.save().await {
        Err(StoreError::TooLarge { .. }) => {
            assert!(
                s.contains("huge"),
                "the value stays readable in the request"
            );
            assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
            assert_eq!(rig.len(&token).await, 1);
        }
        // A store without a size bound keeps it.
        Ok(()) => assert_eq!(rig.len(&token).await, 2),
        Err(other) => panic!("save failed with {other:?}"),
    }
}

/// Runs every case of the suite as its own `#[tokio::test]`.
///
/// `$harness` is an expression making the backend's [`Harness`]; it is
/// evaluated once per case.
#[macro_export]
macro_rules! suite {
    ($harness:expr) => {
        $crate::suite!(@cases $harness;
            round_trip, no_resurrection, atomic_create, idle_expiry, absolute_expiry,
            refresh_is_throttled, corrupt_is_no_session, renew_moves_to_new_token,
            renew_keeps_the_absolute_deadline, renew_after_destroy_is_gone,
            renewed_cookie_does_not_clobber, destroy_removes, empty_is_never_stored,
            emptying_keeps_a_concurrent_value, peeked_flashes_wait, failed_handler_saves_nothing,
            own_expiry_is_kept_and_enforced, user_sessions_are_listed_and_ended,
            refused_sessions_end,
            forged_cookie_is_no_session, first_verifying_cookie_wins, rotation_reissues,
            failed_save_is_not_retried, a_login_in_flight_is_refused, a_first_login_in_flight_is_refused,
            a_renew_of_an_ended_generation_is_refused, end_never_crosses_users,
            keep_survives_end_all_and_can_renew, the_index_follows_the_writes,
            create_never_overwrites, update_of_a_dead_id_is_gone,
            retire_leaves_a_marker_until_its_time, the_size_bound_holds_on_the_merged_session,
            an_oversized_session_loads_and_can_shrink, an_oversized_session_shrinks_by_a_smaller_value,
            a_flash_read_is_not_shown_again,
            concurrent_flashes_both_land, a_login_that_only_binds_is_stored,
            a_change_of_expiry_sends_the_cookie, cap_ends_the_least_recently_used_session,
            cap_refuses_a_new_binding_when_set_to);
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_concurrent_deltas() {
            $crate::concurrent_deltas(&$harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_cap_holds_under_concurrent_logins() {
            $crate::cap_holds_under_concurrent_logins(&$harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_end_all_is_final_against_a_renewing_client() {
            $crate::end_all_is_final_against_a_renewing_client(&$harness).await;
        }
    };
    (@cases $harness:expr; $($case:ident),+) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    $crate::$case(&$harness).await;
                }
            )+
        }
    };
}
