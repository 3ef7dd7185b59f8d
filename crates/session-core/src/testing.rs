//! The store conformance suite: every case of the store contract, written
//! once and run by each backend against a real instance of itself.
//!
//! A backend implements [`Harness`] and calls
//! [`conformance_suite!`](crate::conformance_suite) with an expression that
//! makes its harness, in an integration test; each case becomes one
//! `#[tokio::test]`. `session-memory`'s `tests/conformance.rs` is a complete
//! example.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Capabilities, Changes, Context, CookieUpdate, FlashLevel, IdSource, Key, Keyring, ManualClock,
    Record, Save, Session, SessionId, SessionManager, SessionStore, Settings, StoreError, UnixTime,
    token,
};

/// What a backend gives the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store under test.
    type Store: SessionStore + Clone;

    /// A new store that shares no sessions with any other this harness made.
    async fn store(&self) -> Self::Store;

    /// Makes the state behind `token` undecodable and returns the token that
    /// now names it; `None` if the store holds no encoded state to corrupt.
    async fn corrupt(&self, store: &Self::Store, token: &str) -> Option<String>;

    /// How many sessions the store holds; `None` if it cannot tell (state
    /// held by clients).
    async fn stored(&self, store: &Self::Store) -> Option<usize>;
}

/// The idle timeout the suite configures.
pub const IDLE: Duration = Duration::from_secs(600);
/// The absolute lifetime the suite configures.
pub const ABSOLUTE: Duration = Duration::from_secs(3600);
const START: UnixTime = UnixTime::from_secs(1_700_000_000);

fn keyring(byte: u8) -> Keyring {
    Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
}

fn settings_with(keys: Keyring) -> Settings {
    Settings::builder()
        .with_keyring(keys)
        .with_idle_timeout(IDLE)
        .with_absolute_lifetime(ABSOLUTE)
        .with_flash_min_level(FlashLevel::Debug)
        .build()
        .unwrap()
}

struct Rig<S> {
    store: S,
    clock: ManualClock,
    manager: Arc<SessionManager>,
}

impl<S: SessionStore + Clone> Rig<S> {
    fn new(store: S) -> Self {
        Self::with_settings(store, settings_with(keyring(1)))
    }

    fn with_settings(store: S, settings: Settings) -> Self {
        let clock = ManualClock::new(START);
        let manager =
            Arc::new(SessionManager::new(store.clone(), &settings).with_clock(clock.clone()));
        Self {
            store,
            clock,
            manager,
        }
    }

    async fn load(&self, token: Option<&str>) -> Session {
        self.manager.load(token).await.expect("load")
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

    /// Commits and returns the cookie value the client holds afterwards:
    /// the one set, or `token` if the cookie was kept.
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

    fn caps(&self) -> Capabilities {
        self.store.capabilities()
    }
}

/// Values and flash messages survive a save and a load, typed.
pub async fn round_trip<H: Harness>(h: &H) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        items: Vec<String>,
        total: u64,
    }
    let rig = Rig::new(h.store().await);
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
/// land (server-side stores); a client-held store must say it cannot.
pub async fn concurrent_deltas<H: Harness>(h: &H) {
    let rig = Arc::new(Rig::new(h.store().await));
    if !rig.caps().concurrent_deltas {
        assert!(
            !rig.caps().revocation,
            "a client-held store cannot merge deltas"
        );
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
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            s.insert(format!("k{i:02}"), i as u64).unwrap();
            rig.commit(&s).await
        }));
    }
    for t in tasks {
        assert!(matches!(
            t.await.unwrap(),
            CookieUpdate::Set { .. } | CookieUpdate::Keep
        ));
    }
    let all = rig.load(Some(&token)).await;
    assert_eq!(all.len(), 51, "lost updates: {all}");
    for i in 0..50u64 {
        assert_eq!(all.get::<u64>(&format!("k{i:02}")).unwrap(), Some(i));
    }
}

/// A save after the session was destroyed fails and does not bring it back.
pub async fn no_resurrection<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let token = rig.create("user", "alice").await;
    let slow = rig.load(Some(&token)).await;
    let logout = rig.load(Some(&token)).await;
    logout.destroy();
    assert_eq!(rig.commit(&logout).await, CookieUpdate::Remove);

    slow.insert("cart", "tea").unwrap();
    let result = rig.manager.commit(&slow).await;
    if !rig.caps().revocation {
        // The state lives in the cookie: the store cannot know of the logout.
        assert!(result.is_ok());
        return;
    }
    let err = result.expect_err("a save after destroy must fail");
    assert!(matches!(err.error, StoreError::Gone), "{err:?}");
    assert_eq!(err.cookie, CookieUpdate::Remove);
    let again = rig.load(Some(&token)).await;
    assert!(again.is_empty(), "destroyed session came back: {again}");
    assert_eq!(h.stored(&rig.store).await.unwrap_or(0), 0);

    // The same at the store level.
    let record = Record::empty(START, START + IDLE, 4);
    let changes = Changes {
        keys: vec!["x".into()],
        ..Changes::default()
    };
    let ids = FixedIds::new(&[]);
    let keys = keyring(1);
    let cx = Context::new(&keys, "session", START, &ids);
    let save = Save {
        token: Some(&token),
        record: &record,
        changes: &changes,
    };
    assert!(matches!(
        rig.store.save(save, &cx).await,
        Err(StoreError::Gone)
    ));
}

/// Ids handed out in a fixed order, then random ones.
#[derive(Debug)]
pub struct FixedIds(Mutex<Vec<SessionId>>);

impl FixedIds {
    /// Hands out `ids` in order, then random ids.
    pub fn new(ids: &[SessionId]) -> Self {
        let mut v = ids.to_vec();
        v.reverse();
        Self(Mutex::new(v))
    }
}

impl IdSource for FixedIds {
    fn next_id(&self) -> Result<SessionId, StoreError> {
        match self.0.lock().unwrap().pop() {
            Some(id) => Ok(id),
            None => crate::RandomIds::new().next_id(),
        }
    }
}

/// A create whose id is taken never overwrites: the existing session keeps
/// its data and the new one gets another id.
pub async fn atomic_create<H: Harness>(h: &H) {
    let store = h.store().await;
    let taken = SessionId([7; 16]);
    let settings = settings_with(keyring(1));
    let clock = ManualClock::new(START);
    let manager = Arc::new(
        SessionManager::new(store.clone(), &settings)
            .with_clock(clock)
            .with_ids(FixedIds::new(&[taken, taken])),
    );
    let first = manager.load(None).await.unwrap();
    first.insert("owner", "first").unwrap();
    let CookieUpdate::Set { value: t1, .. } = manager.commit(&first).await.unwrap() else {
        panic!("first session not created");
    };
    let second = manager.load(None).await.unwrap();
    second.insert("owner", "second").unwrap();
    let CookieUpdate::Set { value: t2, .. } = manager.commit(&second).await.unwrap() else {
        panic!("second session not created");
    };
    assert_ne!(t1, t2);
    let one = manager.load(Some(&t1)).await.unwrap();
    let two = manager.load(Some(&t2)).await.unwrap();
    assert_eq!(
        one.get::<String>("owner").unwrap().as_deref(),
        Some("first")
    );
    assert_eq!(
        two.get::<String>("owner").unwrap().as_deref(),
        Some("second")
    );

    if store.capabilities().revocation {
        // At the store level: a create on a taken id is refused.
        let keys = keyring(1);
        let ids = FixedIds::new(&[taken]);
        let cx = Context::new(&keys, "session", START, &ids);
        let record = Record::empty(START, START + IDLE, 4);
        let changes = Changes::default();
        let save = Save {
            token: None,
            record: &record,
            changes: &changes,
        };
        assert!(matches!(
            store.save(save, &cx).await,
            Err(StoreError::Exists)
        ));
        let one = manager.load(Some(&t1)).await.unwrap();
        assert_eq!(
            one.get::<String>("owner").unwrap().as_deref(),
            Some("first")
        );
    }
}

fn context_at<'a>(keys: &'a Keyring, ids: &'a FixedIds, now: UnixTime) -> Context<'a> {
    Context::new(keys, "session", now, ids)
}

/// A session unused for the idle timeout is gone, as the store sees it.
pub async fn idle_expiry<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let token = rig.create("k", "v").await;
    let keys = keyring(1);
    let ids = FixedIds::new(&[]);
    let just_before = START + (IDLE - Duration::from_secs(1));
    let found = rig
        .store
        .load(&token, &context_at(&keys, &ids, just_before))
        .await
        .unwrap();
    assert!(found.is_some(), "expired early");
    let at = START + IDLE;
    let found = rig
        .store
        .load(&token, &context_at(&keys, &ids, at))
        .await
        .unwrap();
    assert!(found.is_none(), "store returned an idle-expired session");
    rig.clock.advance(IDLE);
    assert!(rig.load(Some(&token)).await.is_empty());
}

/// A session kept busy still ends at the absolute lifetime.
pub async fn absolute_expiry<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let mut token = rig.create("k", "v").await;
    let step = IDLE / 2;
    let mut elapsed = Duration::ZERO;
    while elapsed + step < ABSOLUTE {
        rig.clock.advance(step);
        elapsed += step;
        let s = rig.load(Some(&token)).await;
        assert_eq!(s.len(), 1, "ended early, after {elapsed:?}");
        s.insert("k", elapsed.as_secs()).unwrap();
        token = rig.commit_kept(&s, token).await;
    }
    let keys = keyring(1);
    let ids = FixedIds::new(&[]);
    let end = START + ABSOLUTE;
    let found = rig
        .store
        .load(&token, &context_at(&keys, &ids, end))
        .await
        .unwrap();
    assert!(
        found.is_none(),
        "store returned a session past its absolute lifetime"
    );
    rig.clock.advance(ABSOLUTE - elapsed);
    assert!(rig.load(Some(&token)).await.is_empty());
}

/// A read-only request writes nothing until a quarter of the idle window
/// has passed; then it extends the session. A cookie is sent only if its
/// value changed, and it lives until the absolute deadline.
pub async fn refresh_is_throttled<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
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
            assert_eq!(max_age, ABSOLUTE - IDLE / 4);
            value
        }
        CookieUpdate::Remove => panic!("a live session was removed"),
    };
    // At `due`'s first idle deadline (and past `early`'s): `early` is
    // gone, `due` lives on only if the refresh was written.
    rig.clock.advance(IDLE - IDLE / 4);
    assert!(
        rig.load(Some(&early)).await.is_empty(),
        "a throttled read wrote"
    );
    assert_eq!(
        rig.load(Some(&due)).await.len(),
        1,
        "the refresh was not written"
    );
}

/// Corrupt stored state loads as no session, never a panic or an error.
pub async fn corrupt_is_no_session<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let token = rig.create("k", "v").await;
    let Some(bad) = h.corrupt(&rig.store, &token).await else {
        // The store keeps typed values and decodes nothing on load.
        assert_eq!(rig.load(Some(&token)).await.len(), 1);
        return;
    };
    let s = rig.load(Some(&bad)).await;
    assert!(s.is_empty(), "corrupt state was returned: {s}");
    s.insert("fresh", 1).unwrap();
    let fresh = rig.commit_token(&s).await;
    assert_ne!(fresh, bad);
}

/// Renew keeps the data under a new token; the old token loads nothing.
pub async fn renew_moves_to_new_token<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let old = rig.create("cart", "tea").await;
    let s = rig.load(Some(&old)).await;
    s.insert("user", "alice").unwrap();
    s.renew();
    let new = rig.commit_token(&s).await;
    assert_ne!(new, old);
    let moved = rig.load(Some(&new)).await;
    assert_eq!(moved.to_string(), "{cart: tea, user: alice}");
    let stale = rig.load(Some(&old)).await;
    if rig.caps().revocation {
        assert!(stale.is_empty(), "old token still loads: {stale}");
        assert_eq!(h.stored(&rig.store).await.unwrap_or(1), 1);
    }
}

/// Destroy deletes the session and removes the cookie.
pub async fn destroy_removes<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.destroy();
    assert_eq!(rig.commit(&s).await, CookieUpdate::Remove);
    if rig.caps().revocation {
        assert!(rig.load(Some(&token)).await.is_empty());
        assert_eq!(h.stored(&rig.store).await.unwrap_or(0), 0);
    }
}

/// A session nobody wrote to is never stored; one emptied is deleted.
pub async fn empty_is_never_stored<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let s = rig.load(None).await;
    assert_eq!(s.get::<String>("anything").unwrap(), None);
    s.insert("k", "v").unwrap();
    assert!(s.remove("k"));
    assert_eq!(rig.commit(&s).await, CookieUpdate::Keep);
    assert_eq!(h.stored(&rig.store).await.unwrap_or(0), 0);

    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.remove("k");
    assert_eq!(rig.commit(&s).await, CookieUpdate::Remove);
    if rig.caps().revocation {
        assert!(rig.load(Some(&token)).await.is_empty());
        assert_eq!(h.stored(&rig.store).await.unwrap_or(0), 0);
    }
}

/// A forged, random or foreign token is no session and its cookie goes.
pub async fn forged_token_is_no_session<H: Harness>(h: &H) {
    let rig = Rig::new(h.store().await);
    let real = rig.create("k", "v").await;
    let foreign = token::seal(&keyring(9), &SessionId([1; 16]));
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
        assert_eq!(rig.commit(&s).await, CookieUpdate::Remove);
    }
    assert_eq!(rig.load(Some(&real)).await.len(), 1);
}

/// A cookie under a verify-only key loads and is issued again under the
/// current key; a cookie under a removed key is no session.
pub async fn rotation_reissues<H: Harness>(h: &H) {
    let store = h.store().await;
    let old = Rig::with_settings(store.clone(), settings_with(keyring(1)));
    let token = old.create("k", "v").await;
    let rotated = Rig::with_settings(
        store.clone(),
        settings_with(
            keyring(2)
                .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
                .unwrap(),
        ),
    );
    let s = rotated.load(Some(&token)).await;
    assert_eq!(s.len(), 1);
    let reissued = rotated.commit_token(&s).await;
    assert_ne!(reissued, token);
    let only_new = Rig::with_settings(store, settings_with(keyring(2)));
    assert_eq!(only_new.load(Some(&reissued)).await.len(), 1);
    assert!(only_new.load(Some(&token)).await.is_empty());
}

/// Runs every case of the suite as its own `#[tokio::test]`.
///
/// `$harness` is an expression making the backend's [`Harness`]; it is
/// evaluated once per case.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@cases $harness;
            round_trip, no_resurrection, atomic_create, idle_expiry, absolute_expiry,
            refresh_is_throttled, corrupt_is_no_session, renew_moves_to_new_token,
            destroy_removes, empty_is_never_stored, forged_token_is_no_session,
            rotation_reissues);
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_concurrent_deltas() {
            $crate::testing::concurrent_deltas(&$harness).await;
        }
    };
    (@cases $harness:expr; $($case:ident),+) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    $crate::testing::$case(&$harness).await;
                }
            )+
        }
    };
}

/// Driving a service that has the session layer, one request at a time,
/// for HTTP-level tests of the layer and of each backend.
pub mod http {
    use bytes::Bytes;
    use http::header::{COOKIE, SET_COOKIE};
    use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
    use http_body_util::{BodyExt, Empty};
    use tower::{Service, ServiceExt};

    /// A response, read whole.
    #[derive(Debug)]
    pub struct Reply {
        /// Its status.
        pub status: StatusCode,
        /// Its headers.
        pub headers: HeaderMap,
        /// Its body, as text.
        pub body: String,
    }

    impl Reply {
        /// The `Set-Cookie` header, if there is one.
        pub fn set_cookie(&self) -> Option<&str> {
            self.headers
                .get(SET_COOKIE)
                .map(|v| v.to_str().expect("Set-Cookie is ASCII"))
        }

        /// The value the `Set-Cookie` header gives the cookie `name`.
        pub fn cookie_value(&self, name: &str) -> Option<&str> {
            let pair = self.set_cookie()?.split(';').next()?;
            pair.strip_prefix(name)?.strip_prefix('=')
        }

        /// Whether the response removes the cookie (`Max-Age=0`).
        pub fn removes_cookie(&self) -> bool {
            self.set_cookie().is_some_and(|c| c.contains("Max-Age=0"))
        }
    }

    /// Sends `GET path`, with a `Cookie` header if one is given.
    pub async fn get<S, B>(service: &S, path: &str, cookie: Option<HeaderValue>) -> Reply
    where
        S: Service<Request<Empty<Bytes>>, Response = Response<B>> + Clone,
        S::Error: std::fmt::Debug,
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let request = request.body(Empty::new()).expect("a valid request");
        let response = service.clone().oneshot(request).await.expect("a response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("a readable body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        }
    }

    /// `name=value`, as a `Cookie` header.
    pub fn cookie(name: &str, value: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("{name}={value}")).expect("a valid cookie header")
    }
}
