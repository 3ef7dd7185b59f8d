//! HTTP-level behaviour of the session layer, driven with `oneshot` against
//! the memory backend and against stores that count or fail.
#![cfg(all(feature = "memory", feature = "axum"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::get;
use http_sessions::memory::MemoryStore;
use http_sessions::seams::ManualClock;
use http_sessions::store::{Loaded, Record, SessionId, SessionStore, UnixTime, Update, Updated};
use http_sessions::{
    Key, Keyring, Session, SessionFailure, SessionLayer, Settings, SettingsBuilder, StoreError,
};
use http_sessions_conformance::http::Reply;

fn settings() -> Settings {
    builder().build().unwrap()
}

fn builder() -> SettingsBuilder {
    Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[11; 32]).unwrap()).unwrap())
        .with_cookie_name("session")
        .with_cookie_domain("example.com")
        .with_cookie_path("/")
}

/// The test's settings, on `clock`.
fn settings_on(clock: &ManualClock) -> Settings {
    builder().with_clock(clock.clone()).build().unwrap()
}

#[path = "../examples/demo/routes.rs"]
mod routes;

mod flaky;
use flaky::Flaky;

async fn untouched() -> &'static str {
    "no session here"
}

fn app(layer: SessionLayer) -> Router {
    routes::router()
        .route("/untouched", get(untouched))
        .layer(layer)
}

/// The session cookie value a reply sets.
fn token(reply: &Reply) -> String {
    reply
        .cookie_value("session")
        .expect("a session cookie")
        .to_owned()
}

async fn get_with(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let header = cookie.map(|c| HeaderValue::from_str(c).unwrap());
    http_sessions_conformance::http::get(app, path, header).await
}

fn cookie(token: &str) -> String {
    format!("session={token}")
}

#[tokio::test]
async fn login_then_logout_prints_both_keys() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let login = get_with(&app, "/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body, "<h1>Hello, Prologue!</h1>");
    let token = token(&login);
    let logout = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(logout.body, "{flywind: 123, ordontfly: 345}");
    // Read-only: no new cookie, but the response varies on the cookie.
    assert_eq!(logout.set_cookie(), None);
    assert_eq!(logout.headers[header::VARY], "cookie");
}

#[tokio::test]
async fn flash_is_shown_once() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let hello = get_with(&app, "/hello", None).await;
    assert_eq!(hello.body, "Hello, world");
    let c = cookie(&token(&hello));
    let first = get_with(&app, "/tea", Some(&c)).await;
    assert_eq!(first.body, "Please retry again!");
    // The session is empty once the flash is read: it is deleted.
    assert!(first.set_cookie().unwrap().contains("Max-Age=0"));
    let second = get_with(&app, "/tea", Some(&c)).await;
    assert_eq!(second.body, "My tea");
}

#[tokio::test]
async fn waiting_flashes_are_counted_without_being_read() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let c = cookie(&token(&get_with(&app, "/hello", None).await));
    let waiting = get_with(&app, "/waiting", Some(&c)).await;
    assert_eq!(waiting.body, "1 waiting");
    assert_eq!(waiting.set_cookie(), None, "a peek saves nothing");
    assert_eq!(
        get_with(&app, "/tea", Some(&c)).await.body,
        "Please retry again!"
    );
}

#[tokio::test]
async fn a_browser_session_cookie_has_no_max_age_and_remember_me_has_its_own() {
    use http_sessions::Expiry;
    let app = Router::new()
        .route(
            "/browser",
            get(|session: Session| async move {
                session.set_expiry(Expiry::BrowserSession);
                session
                    .insert("user", "alice")
                    .map(|()| "until the browser closes")
            }),
        )
        .merge(routes::router())
        .layer(SessionLayer::new(MemoryStore::new(), &settings()));
    let browser = get_with(&app, "/browser", None).await;
    let set_cookie = browser.set_cookie().unwrap();
    assert!(!set_cookie.contains("Max-Age"), "{set_cookie}");
    assert!(!set_cookie.contains("Expires"), "{set_cookie}");
    let remembered = get_with(&app, "/remember", None).await;
    let set_cookie = remembered.set_cookie().unwrap();
    assert!(set_cookie.contains("Max-Age=2592000"), "{set_cookie}");
    // The default is the settings' absolute lifetime, 12 hours.
    let login = get_with(&app, "/login", None).await;
    assert!(login.set_cookie().unwrap().contains("Max-Age=43200"));
}

#[tokio::test]
async fn untouched_route_costs_nothing() {
    let store = MemoryStore::new();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let r = get_with(&app, "/untouched", Some("session=whatever")).await;
    assert_eq!(r.body, "no session here");
    assert_eq!(r.set_cookie(), None);
    assert!(r.headers.get(header::VARY).is_none());
    let r = get_with(&app, "/tea", None).await;
    assert_eq!(r.body, "My tea");
    assert_eq!(r.set_cookie(), None, "an empty session is never written");
    assert_eq!(store.len(), 0);
}

/// Counts the store calls that reach the wrapped store.
#[derive(Debug, Clone)]
struct Counting {
    inner: MemoryStore,
    loads: Arc<AtomicUsize>,
}

#[async_trait]
impl SessionStore for Counting {
    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id, now).await
    }
    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner.create(id, record, ends).await
    }
    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        self.inner.update(id, update).await
    }
    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.retire(id, now, until, user).await
    }
    async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError> {
        self.inner.delete(id, user).await
    }
}

#[tokio::test]
async fn forged_or_random_token_is_a_fresh_session_without_lookup() {
    let store = Counting {
        inner: MemoryStore::new(),
        loads: Arc::default(),
    };
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let real = token(&get_with(&app, "/login", None).await);
    let mut forged = real.clone().into_bytes();
    forged[3] = if forged[3] == b'x' { b'y' } else { b'x' };
    let forged = String::from_utf8(forged).unwrap();
    let other_key = {
        let other = Settings::builder()
            .with_keyring(Keyring::new(Key::from_bytes(&[12; 32]).unwrap()).unwrap())
            .with_cookie_name("session")
            .build()
            .unwrap();
        let app2 = app_for(other);
        token(&get_with(&app2, "/login", None).await)
    };
    for bad in [forged.as_str(), other_key.as_str(), "random", "", "%00x"] {
        let r = get_with(&app, "/logout", Some(&format!("session={bad}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        assert_eq!(r.body, "{}", "{bad:?}");
        // Not ours to remove: it may be a sibling domain's cookie.
        assert_eq!(r.set_cookie(), None, "{bad:?}");
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
    let ok = get_with(&app, "/logout", Some(&cookie(&real))).await;
    assert_eq!(ok.body, "{flywind: 123, ordontfly: 345}");
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
}

/// Fifty `session=` cookies of every shape but a token's: empty, garbage,
/// too long, the right alphabet at the wrong length, the right length with
/// a character or the dot out of place, quoted, percent-encoded, and the
/// cookie backend's shape.
fn junk_session_cookies() -> Vec<String> {
    let shapes = [
        String::new(),
        "garbage".to_owned(),
        "x".repeat(5000),
        "A".repeat(65),
        "A".repeat(67),
        "A".repeat(66),
        format!("{}.{}!", "A".repeat(22), "A".repeat(42)),
        format!("{}.{}", "A".repeat(21), "A".repeat(44)),
        format!("\"{}.{}\"", "A".repeat(22), "A".repeat(41)),
        "%41%42%43".to_owned(),
        format!("AQ{}", "A".repeat(98)),
    ];
    shapes.iter().cycle().take(50).cloned().collect()
}

/// `n` tokens shaped like ours whose tags do not verify.
fn forged_tokens(real: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut bytes = real.as_bytes().to_vec();
            let at = 30 + i;
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

fn session_cookie_header(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("session={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn a_valid_cookie_behind_fifty_junk_ones_is_found() {
    let store = Counting {
        inner: MemoryStore::new(),
        loads: Arc::default(),
    };
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let real = token(&get_with(&app, "/login", None).await);
    let mut values = junk_session_cookies();
    values.push(real);
    let r = get_with(&app, "/logout", Some(&session_cookie_header(&values))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    // The junk never reached the store.
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
}

/// Values shaped like tokens still count toward the eight a request may
/// try: a flood of forgeries costs at most eight MACs, and a valid cookie
/// behind eight of them is not found (the request is a new visitor's).
#[tokio::test]
async fn forged_tokens_shaped_like_ours_still_cap_the_work_at_eight() {
    let store = Counting {
        inner: MemoryStore::new(),
        loads: Arc::default(),
    };
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let real = token(&get_with(&app, "/login", None).await);
    let mut seven = forged_tokens(&real, 7);
    seven.push(real.clone());
    let r = get_with(&app, "/logout", Some(&session_cookie_header(&seven))).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
    for n in [8, 9] {
        let mut values = forged_tokens(&real, n);
        values.push(real.clone());
        // Junk in between changes nothing: it does not count.
        values.splice(3..3, junk_session_cookies());
        let r = get_with(&app, "/logout", Some(&session_cookie_header(&values))).await;
        assert_eq!(r.status, StatusCode::OK, "{n}");
        assert_eq!(r.body, "{}", "{n}");
        // No forgery verified, the real one was not tried: no lookup, and
        // no cookie is removed.
        assert_eq!(store.loads.load(Ordering::SeqCst), 1, "{n}");
        assert_eq!(r.set_cookie(), None, "{n}");
    }
}

fn app_for(settings: Settings) -> Router {
    app(SessionLayer::new(MemoryStore::new(), &settings))
}

#[tokio::test]
async fn destroy_removes_cookie_with_same_scope() {
    let store = MemoryStore::new();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let token = token(&get_with(&app, "/login", None).await);
    let r = get_with(&app, "/destroy", Some(&cookie(&token))).await;
    assert_eq!(
        r.set_cookie().unwrap(),
        "session=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(store.len(), 0);
    let after = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(after.body, "{}");
}

#[tokio::test]
async fn renew_issues_a_new_token_and_kills_the_old() {
    let store = MemoryStore::new();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let old = token(&get_with(&app, "/login", None).await);
    let r = get_with(&app, "/renew", Some(&cookie(&old))).await;
    let new = token(&r);
    assert_ne!(new, old);
    assert!(
        r.set_cookie()
            .unwrap()
            .contains("Domain=example.com; Max-Age=43200")
    );
    assert_eq!(
        get_with(&app, "/logout", Some(&cookie(&new))).await.body,
        "{flywind: 123, ordontfly: 345}"
    );
    let stale = get_with(&app, "/logout", Some(&cookie(&old))).await;
    assert_eq!(stale.body, "{}");
    // A request still carrying the old cookie leaves the new one alone.
    assert_eq!(stale.set_cookie(), None);
    // The new session, and the mark of the renewed id.
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn responses_that_use_the_session_vary_on_cookie() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    for path in ["/login", "/logout", "/tea", "/hello"] {
        let r = get_with(&app, path, None).await;
        assert_eq!(r.headers[header::VARY], "cookie", "{path}");
    }
    let r = get_with(&app, "/login", None).await;
    assert_eq!(r.headers[header::CACHE_CONTROL], "private");
}

#[tokio::test]
async fn set_cookie_carries_the_secure_defaults() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let set = get_with(&app, "/login", None).await;
    let set = set.set_cookie().unwrap();
    for attr in [
        "Path=/",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        // The absolute lifetime: idle expiry is enforced on the server.
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
}

/// The whole `Set-Cookie` the layer writes, byte for byte, for a login
/// (the absolute lifetime), a browser session, a "remember me" and a
/// removal: cookies already in browsers were written this way.
#[tokio::test]
async fn set_cookie_is_pinned_byte_for_byte() {
    use http_sessions::Expiry;
    let app = Router::new()
        .route(
            "/browser",
            get(|session: Session| async move {
                session.set_expiry(Expiry::BrowserSession);
                session.insert("user", "alice").map(|()| "browser")
            }),
        )
        .merge(routes::router())
        .layer(SessionLayer::new(MemoryStore::new(), &settings()));
    let login = get_with(&app, "/login", None).await;
    let t = token(&login);
    assert_eq!(
        login.set_cookie().unwrap(),
        format!(
            "session={t}; Path=/; Domain=example.com; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"
        )
    );
    let browser = get_with(&app, "/browser", None).await;
    let b = token(&browser);
    assert_eq!(
        browser.set_cookie().unwrap(),
        format!("session={b}; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=Lax")
    );
    let remembered = get_with(&app, "/remember", None).await;
    let r = token(&remembered);
    assert_eq!(
        remembered.set_cookie().unwrap(),
        format!(
            "session={r}; Path=/; Domain=example.com; Max-Age=2592000; HttpOnly; Secure; SameSite=Lax"
        )
    );
    let gone = get_with(&app, "/destroy", Some(&cookie(&t))).await;
    assert_eq!(
        gone.set_cookie().unwrap(),
        "session=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         HttpOnly; Secure; SameSite=Lax"
    );
}

#[tokio::test]
async fn two_cookies_with_the_session_name_take_the_first_that_verifies() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let a = token(&get_with(&app, "/login", None).await);
    let b = token(&get_with(&app, "/hello", None).await);
    // `a` first: the login session, whichever header order.
    let r = get_with(&app, "/logout", Some(&format!("session={a}; session={b}"))).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    let r = get_with(&app, "/tea", Some(&format!("session={b}; session={a}"))).await;
    assert_eq!(r.body, "Please retry again!");
    // Garbage first (planted by a sibling subdomain): the valid cookie is
    // used, and no removal cookie deletes it.
    let planted = format!("session=garbage; session={a}");
    let r = get_with(&app, "/logout", Some(&planted)).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    assert_eq!(r.set_cookie(), None);
}

#[test]
fn bad_cookie_attributes_are_refused_at_configuration() {
    let keys = || Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap();
    for b in [
        Settings::builder().with_cookie_name("my session"),
        Settings::builder().with_cookie_name("a;b"),
        Settings::builder().with_cookie_name("a=b"),
        Settings::builder().with_cookie_path("/a;b"),
        Settings::builder().with_cookie_path("/a b"),
        Settings::builder().with_cookie_domain("exa mple.com"),
        Settings::builder().with_cookie_domain("example.com\r\n"),
        Settings::builder()
            .with_cookie_name("__Host-s")
            .with_cookie_domain("example.com"),
    ] {
        let err = b.with_keyring(keys()).build().unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}

#[tokio::test]
async fn idle_sessions_expire_through_the_layer() {
    let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
    let layer = SessionLayer::new(MemoryStore::new(), &settings_on(&clock));
    let app = app(layer);
    let token = token(&get_with(&app, "/login", None).await);
    clock.advance(Duration::from_secs(29 * 60));
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    // Past a quarter of the idle window: the read extends the session in
    // the store; the cookie, whose value is unchanged, is not sent again.
    assert_eq!(r.set_cookie(), None);
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        get_with(&app, "/logout", Some(&cookie(&token))).await.body,
        "{flywind: 123, ordontfly: 345}"
    );
    clock.advance(Duration::from_secs(30 * 60));
    let gone = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(gone.body, "{}");
    // Only a request that ends a session removes its cookie.
    assert_eq!(gone.set_cookie(), None);
}

#[tokio::test]
async fn no_layer_is_a_clear_500() {
    let app = routes::router();
    let r = get_with(&app, "/logout", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("no session layer"), "{}", r.body);
}

#[tokio::test]
async fn store_down_is_503_and_the_cookie_stays() {
    let store = Flaky::default();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let token = token(&get_with(&app, "/login", None).await);
    store.down.store(true, Ordering::SeqCst);
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.set_cookie(), None);
    // Down on save: no false success.
    store.down.store(false, Ordering::SeqCst);
    let app_saving = Router::new()
        .route(
            "/save",
            get({
                let store = store.clone();
                move |session: Session| async move {
                    session.insert("k", "v").unwrap();
                    store.down.store(true, Ordering::SeqCst);
                    "saved?"
                }
            }),
        )
        .layer(SessionLayer::new(store.clone(), &settings()));
    let r = get_with(&app_saving, "/save", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(r.body, "saved?");
    // The write may have reached the store: the answer never says otherwise.
    assert!(r.body.contains("may not have been saved"), "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers[header::VARY], "cookie");
    assert_eq!(r.set_cookie(), None);
    // Back up: the session was never lost.
    store.down.store(false, Ordering::SeqCst);
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_times_out_with_503() {
    let store = Flaky::default();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let token = token(&get_with(&app, "/login", None).await);
    store.hang.store(true, Ordering::SeqCst);
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_save_after_logout_elsewhere_is_a_conflict() {
    let store = MemoryStore::new();
    let layer = SessionLayer::new(store.clone(), &settings());
    let token = token(&get_with(&app(layer.clone()), "/login", None).await);
    let c = cookie(&token);
    let racing = Router::new()
        .route(
            "/slow",
            get({
                let app = app(layer.clone());
                let c = c.clone();
                move |session: Session| async move {
                    // Another request logs out while this one runs.
                    let _ = get_with(&app, "/destroy", Some(&c)).await;
                    session.insert("cart", "tea").unwrap();
                    "added"
                }
            }),
        )
        .layer(layer);
    let r = get_with(&racing, "/slow", Some(&c)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // The logout's own response removed the cookie.
    assert_eq!(r.set_cookie(), None);
    assert_eq!(store.len(), 0, "the destroyed session came back");
}

/// A route that runs `during` (another request) after loading its session,
/// then calls `then` on it.
fn racing(
    layer: &SessionLayer,
    during: &'static str,
    cookie: String,
    then: fn(&Session),
) -> Router {
    let other = app(layer.clone());
    Router::new()
        .route(
            "/race",
            get(move |session: Session| async move {
                let _ = session.len();
                let _ = get_with(&other, during, Some(&cookie)).await;
                then(&session);
                "done"
            }),
        )
        .layer(layer.clone())
}

#[tokio::test]
async fn a_renew_after_logout_elsewhere_is_a_conflict() {
    let store = MemoryStore::new();
    let layer = SessionLayer::new(store.clone(), &settings());
    let c = cookie(&token(&get_with(&app(layer.clone()), "/login", None).await));
    let r = get_with(&racing(&layer, "/destroy", c, |s| s.renew()), "/race", None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "no session cookie: nothing to renew"
    );
    let c = cookie(&token(&get_with(&app(layer.clone()), "/login", None).await));
    let r = get_with(
        &racing(&layer, "/destroy", c.clone(), |s| s.renew()),
        "/race",
        Some(&c),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.set_cookie(), None);
    assert_eq!(
        store.len(),
        0,
        "the destroyed session came back under a new id"
    );
}

#[tokio::test]
async fn requests_in_flight_during_a_renew_keep_the_new_cookie() {
    let store = MemoryStore::new();
    let layer = SessionLayer::new(store.clone(), &settings());
    let old = cookie(&token(&get_with(&app(layer.clone()), "/login", None).await));
    // Loaded before the renew, writing after it: refused, no cookie.
    let writer = racing(&layer, "/renew", old.clone(), |s| {
        s.insert("cart", "tea").unwrap();
    });
    let r = get_with(&writer, "/race", Some(&old)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.set_cookie(), None);
    // Arriving after the renew with the old cookie: a read sends nothing,
    // a write is refused rather than starting a session over the new one.
    let app = app(layer);
    let read = get_with(&app, "/logout", Some(&old)).await;
    assert_eq!((read.body.as_str(), read.set_cookie()), ("{}", None));
    let write = get_with(&app, "/counter", Some(&old)).await;
    assert_eq!(write.status, StatusCode::CONFLICT);
    assert_eq!(write.set_cookie(), None);
}

#[tokio::test]
async fn renew_never_extends_the_absolute_lifetime() {
    let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
    let layer = SessionLayer::new(MemoryStore::new(), &settings_on(&clock));
    let app = app(layer);
    let mut token = token(&get_with(&app, "/login", None).await);
    // Renewed every 20 minutes, a stolen cookie lives no longer than 12 h.
    for _ in 0..35 {
        clock.advance(Duration::from_secs(20 * 60));
        let r = get_with(&app, "/renew", Some(&cookie(&token))).await;
        token = r.cookie_value("session").expect("renewed").to_owned();
    }
    // 11 h 40 min in: 20 minutes are left, and the cookie says so.
    let r = get_with(&app, "/renew", Some(&cookie(&token))).await;
    let set = r.set_cookie().expect("renewed");
    assert!(set.contains("Max-Age=1200"), "{set}");
    let token = r.cookie_value("session").expect("renewed").to_owned();
    clock.advance(Duration::from_secs(20 * 60));
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(
        r.body, "{}",
        "renew made the session outlive its absolute lifetime"
    );
}

#[tokio::test]
async fn login_renews_the_id_planted_before_it() {
    let store = MemoryStore::new();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    // An attacker's session, planted in the victim's browser.
    let planted = token(&get_with(&app, "/hello", None).await);
    let login = get_with(&app, "/login", Some(&cookie(&planted))).await;
    let signed_in = token(&login);
    assert_ne!(signed_in, planted, "login kept the planted id");
    let attacker = get_with(&app, "/logout", Some(&cookie(&planted))).await;
    assert_eq!(attacker.body, "{}", "the planted id sees the login");
}

#[cfg(feature = "cookie")]
#[tokio::test]
async fn a_handled_save_error_lets_the_handler_answer() {
    let settings = settings();
    let app = Router::new()
        .route(
            "/big",
            get(|session: Session| async move {
                session.insert("big", "x".repeat(5000)).unwrap();
                match session.save().await {
                    Err(StoreError::TooLarge { .. }) => "too large, handled",
                    _ => "saved",
                }
            }),
        )
        .layer(http_sessions::cookie::session_layer(&settings));
    let r = get_with(&app, "/big", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "too large, handled");
    assert_eq!(r.set_cookie(), None);
}

#[tokio::test]
async fn demo_root_flashes_and_counter_counts() {
    let app = app(SessionLayer::new(MemoryStore::new(), &settings()));
    let root = get_with(&app, "/", None).await;
    assert_eq!(root.body, "Hello, world");
    let c = cookie(&token(&root));
    assert_eq!(
        get_with(&app, "/counter", Some(&c)).await.body,
        "counter = 1"
    );
    assert_eq!(
        get_with(&app, "/counter", Some(&c)).await.body,
        "counter = 2"
    );
    assert_eq!(
        get_with(&app, "/tea", Some(&c)).await.body,
        "Please retry again!"
    );
}

/// The longest lifetimes `build` accepts, used through the layer: the
/// deadline, the refresh check and the cookie's `Max-Age` stay in range.
#[tokio::test]
async fn the_longest_accepted_lifetimes_work_through_the_layer() {
    let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
    let settings = Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[11; 32]).unwrap()).unwrap())
        .with_cookie_name("session")
        .with_idle_timeout(Settings::MAX_LIFETIME)
        .with_absolute_lifetime(Settings::MAX_LIFETIME)
        .with_store_timeout(Settings::MAX_STORE_TIMEOUT)
        .with_refresh_fraction(1.0)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let app = app(SessionLayer::new(MemoryStore::new(), &settings));
    let login = get_with(&app, "/login", None).await;
    let set = login.set_cookie().unwrap();
    assert!(set.contains("Max-Age=34560000"), "400 days: {set}");
    let c = cookie(&token(&login));
    clock.advance(Settings::MAX_LIFETIME - Duration::from_secs(1));
    let r = get_with(&app, "/logout", Some(&c)).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
    clock.advance(Duration::from_secs(1));
    assert_eq!(get_with(&app, "/logout", Some(&c)).await.body, "{}");
}

/// A handler that wants its page in every cache, and logs the visitor in.
async fn public_login(session: Session) -> ([(header::HeaderName, &'static str); 1], &'static str) {
    session.insert("user", "alice").unwrap();
    (
        [(header::CACHE_CONTROL, "public, s-maxage=600, max-age=60")],
        "welcome",
    )
}

#[tokio::test]
async fn a_response_that_sets_the_cookie_is_private_whatever_the_handler_said() {
    let app = Router::new()
        .route("/public-login", get(public_login))
        .layer(SessionLayer::new(MemoryStore::new(), &settings()));
    let r = get_with(&app, "/public-login", None).await;
    assert!(r.set_cookie().is_some());
    assert_eq!(r.headers[header::CACHE_CONTROL], "private");
    assert_eq!(r.headers[header::VARY], "cookie");
}

/// An application's page for the layer's own answers: the failure's
/// status and message in its own markup.
async fn failure_page(response: axum::response::Response) -> axum::response::Response {
    use axum::response::{Html, IntoResponse};
    match response.extensions().get::<SessionFailure>().copied() {
        Some(failure) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_TYPE);
            let page = format!("<p class=\"sorry\">{}</p>", failure.message());
            (parts, Html(page)).into_response()
        }
        None => response,
    }
}

#[tokio::test]
async fn the_layers_own_answers_take_the_applications_pages() {
    let store = Flaky::default();
    let app = routes::router()
        .route(
            "/save",
            get({
                let store = store.clone();
                move |session: Session| async move {
                    session.insert("k", "v").unwrap();
                    store.down.store(true, Ordering::SeqCst);
                    "saved?"
                }
            }),
        )
        .layer(SessionLayer::new(store.clone(), &settings()))
        .layer(axum::middleware::map_response(failure_page));
    let login = get_with(&app, "/login", None).await;
    assert_eq!(
        login.body, "<h1>Hello, Prologue!</h1>",
        "others pass untouched"
    );
    let token = token(&login);

    // A save that failed (the store goes down while the handler runs),
    // then a load that failed.
    for (path, failure) in [
        ("/save", SessionFailure::NotConfirmed),
        ("/logout", SessionFailure::NotLoaded),
    ] {
        let r = get_with(&app, path, Some(&cookie(&token))).await;
        assert_eq!(r.status, failure.status(), "{path}: {}", r.body);
        assert_eq!(
            r.body,
            format!("<p class=\"sorry\">{}</p>", failure.message())
        );
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(
            r.headers[header::CACHE_CONTROL],
            "no-store",
            "kept from the layer"
        );
        assert_eq!(r.headers[header::VARY], "cookie");
    }
}

#[tokio::test]
async fn stats_count_the_store_calls_and_their_failures() {
    let store = Flaky::default();
    let layer = SessionLayer::new(store.clone(), &settings());
    let app = app(layer.clone());
    let token = token(&get_with(&app, "/login", None).await);
    get_with(&app, "/logout", Some(&cookie(&token))).await;
    let stats = layer.stats();
    assert_eq!((stats.loads, stats.creates, stats.updates), (1, 1, 0));
    assert_eq!(stats.store_errors, 0);

    store.down.store(true, Ordering::SeqCst);
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let stats = layer.stats();
    assert_eq!((stats.loads, stats.store_errors), (2, 1));
}

/// A handler that fails after changing the session saves none of it.
#[tokio::test]
async fn a_handler_that_answers_500_saves_nothing() {
    let store = MemoryStore::new();
    let failing = Router::new()
        .route(
            "/fail",
            get(|session: Session| async move {
                session.insert("cart", "a sofa").unwrap();
                session.flash("added");
                (StatusCode::INTERNAL_SERVER_ERROR, "the database went away")
            }),
        )
        .merge(routes::router())
        .layer(SessionLayer::new(store.clone(), &settings()));
    let r = get_with(&failing, "/fail", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body, "the database went away", "the handler's own answer");
    assert_eq!(r.set_cookie(), None);
    assert_eq!(r.headers[header::VARY], "cookie");
    assert_eq!(store.len(), 0, "no session was created");

    let token = token(&get_with(&failing, "/login", None).await);
    let r = get_with(&failing, "/fail", Some(&cookie(&token))).await;
    assert_eq!(r.set_cookie(), None);
    let r = get_with(&failing, "/logout", Some(&cookie(&token))).await;
    assert_eq!(
        r.body, "{flywind: 123, ordontfly: 345}",
        "no cart was added"
    );
}

/// What `Session::save` stored before a handler failed stays stored, and
/// the cookie that names it still reaches the client.
#[tokio::test]
async fn a_handler_that_saved_then_answers_500_sends_the_saved_cookie() {
    let store = MemoryStore::new();
    let app = Router::new()
        .route(
            "/save-then-fail",
            get(|session: Session| async move {
                session.renew_on_login();
                session.insert("user", "alice").unwrap();
                session.save().await.unwrap();
                session.insert("cart", "a sofa").unwrap();
                (StatusCode::INTERNAL_SERVER_ERROR, "the database went away")
            }),
        )
        .merge(routes::router())
        .layer(SessionLayer::new(store.clone(), &settings()));
    let r = get_with(&app, "/save-then-fail", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let saved = token(&r);
    let r = get_with(&app, "/logout", Some(&cookie(&saved))).await;
    assert_eq!(
        r.body, "{user: alice}",
        "the save stands; the cart does not"
    );
}

#[tokio::test]
async fn a_failed_load_is_a_503_no_cache_keeps() {
    let store = Flaky::default();
    let app = app(SessionLayer::new(store.clone(), &settings()));
    let token = token(&get_with(&app, "/login", None).await);
    store.down.store(true, Ordering::SeqCst);
    let r = get_with(&app, "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[header::VARY], "cookie");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

/// A cart as a release before a deploy stored it.
#[derive(serde::Serialize)]
struct CartBefore {
    items: Vec<&'static str>,
    owner: &'static str,
    coupon: &'static str,
}

/// The cart after it: fields reordered, `coupon` gone, `gift_wrap` new.
#[derive(serde::Deserialize, Default)]
struct CartAfter {
    coupon_code: Option<String>,
    owner: String,
    items: Vec<String>,
    #[serde(default)]
    gift_wrap: bool,
}

/// A cart whose shape no longer fits what was stored.
#[derive(serde::Deserialize, Default)]
struct CartIncompatible {
    items: Vec<u32>,
}

async fn store_cart(session: Session) -> &'static str {
    let cart = CartBefore {
        items: vec!["tea", "cake"],
        owner: "ada",
        coupon: "SPRING",
    };
    session.insert("cart", &cart).unwrap();
    "stored"
}

async fn read_cart(session: Session) -> String {
    let cart: CartAfter = session.get("cart").unwrap().unwrap_or_default();
    format!(
        "{} {:?} {} {:?}",
        cart.owner, cart.items, cart.gift_wrap, cart.coupon_code
    )
}

async fn read_incompatible(session: Session) -> String {
    // The pattern of the guide: a value that no longer decodes is
    // treated as absent.
    let cart = match session.get::<CartIncompatible>("cart") {
        Ok(cart) => cart.unwrap_or_default(),
        Err(http_sessions::ValueError::Decode { .. }) => CartIncompatible::default(),
        Err(other) => return other.to_string(),
    };
    format!("{:?}", cart.items)
}

#[tokio::test]
async fn a_struct_value_reads_back_by_field_name_after_a_deploy() {
    let app = routes::router()
        .route("/store-cart", get(store_cart))
        .route("/read-cart", get(read_cart))
        .route("/read-incompatible", get(read_incompatible))
        .layer(SessionLayer::new(MemoryStore::new(), &settings()));
    let c = cookie(&token(&get_with(&app, "/store-cart", None).await));
    assert_eq!(
        get_with(&app, "/logout", Some(&c)).await.body,
        "{cart: {items: [tea, cake], owner: ada, coupon: SPRING}}"
    );
    assert_eq!(
        get_with(&app, "/read-cart", Some(&c)).await.body,
        "ada [\"tea\", \"cake\"] false None"
    );
    assert_eq!(
        get_with(&app, "/read-incompatible", Some(&c)).await.body,
        "[]"
    );
}

#[tokio::test]
async fn a_failed_save_keeps_the_login_renewal() {
    let store = Flaky::default();
    let layer = SessionLayer::new(store.clone(), &settings());
    let planted = token(&get_with(&app(layer.clone()), "/hello", None).await);
    let login = Router::new()
        .route(
            "/login",
            get({
                let store = store.clone();
                move |session: Session| async move {
                    session.renew_on_login();
                    store.down.store(true, Ordering::SeqCst);
                    let saved = session.save().await.is_ok();
                    store.down.store(false, Ordering::SeqCst);
                    session.insert("user", "alice").unwrap();
                    if saved {
                        "saved"
                    } else {
                        "not saved, carried on"
                    }
                }
            }),
        )
        .layer(layer.clone());
    let r = get_with(&login, "/login", Some(&cookie(&planted))).await;
    assert_eq!(r.body, "not saved, carried on");
    // The renewal failed inside the handler and was made at the end: the
    // login never lands on the planted id.
    let signed_in = token(&r);
    assert_ne!(signed_in, planted);
    let app = app(layer);
    let attacker = get_with(&app, "/logout", Some(&cookie(&planted))).await;
    assert_eq!(attacker.body, "{}");
    let user = get_with(&app, "/logout", Some(&cookie(&signed_in))).await;
    assert_eq!(user.body, "{user: alice}");
}

#[tokio::test]
async fn a_session_past_its_size_bound_is_refused_before_the_store_is_asked() {
    let store = Flaky::default();
    let layer = SessionLayer::new(store.clone(), &settings());
    let token = token(&get_with(&app(layer.clone()), "/login", None).await);
    let big = Router::new()
        .route(
            "/big",
            get({
                let store = store.clone();
                move |session: Session| async move {
                    session.insert("big", "x".repeat(70 * 1024)).unwrap();
                    // Anything sent now would fail as unavailable.
                    store.down.store(true, Ordering::SeqCst);
                    "stored?"
                }
            }),
        )
        .layer(layer.clone());
    let r = get_with(&big, "/big", Some(&cookie(&token))).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    store.down.store(false, Ordering::SeqCst);
    let r = get_with(&app(layer), "/logout", Some(&cookie(&token))).await;
    assert_eq!(r.body, "{flywind: 123, ordontfly: 345}");
}

/// A deploy that moves the cookie to a new name signs nobody out: the
/// default `__Host-session` reads a cookie of the bare name an earlier
/// deploy set, sends the session back under the new name, and removes the
/// old cookie; the new cookie then carries the session on its own.
#[tokio::test]
async fn a_cookie_of_the_old_name_is_read_and_moved_to_the_new_one() {
    let store = MemoryStore::new();
    moves_to_the_new_name(|settings| SessionLayer::new(store.clone(), settings)).await;
}

/// As above, for sessions kept in the cookie, whose values authenticate
/// the cookie's name.
#[cfg(feature = "cookie")]
#[tokio::test]
async fn a_cookie_session_of_the_old_name_is_read_and_moved_to_the_new_one() {
    moves_to_the_new_name(http_sessions::cookie::session_layer).await;
}

async fn moves_to_the_new_name(layer: impl Fn(&Settings) -> SessionLayer) {
    let keys = || Keyring::new(Key::from_bytes(&[11; 32]).unwrap()).unwrap();
    let before = Settings::builder()
        .with_keyring(keys())
        .with_cookie_name("session")
        .build()
        .unwrap();
    let after = Settings::builder().with_keyring(keys()).build().unwrap();
    assert_eq!(after.cookie().name, "__Host-session");
    let old_app = app(layer(&before));
    let new_app = app(layer(&after));

    let first = get_with(&old_app, "/counter", None).await;
    assert_eq!(first.body, "counter = 1");
    let old = token(&first);

    let moved = get_with(&new_app, "/counter", Some(&cookie(&old))).await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_eq!(
        moved.body, "counter = 2",
        "the session under the old name was lost"
    );
    let set: Vec<&str> = moved
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(
        set[0].starts_with("__Host-session=") && set[0].contains("; Secure"),
        "{set:?}"
    );
    assert_eq!(
        set[1],
        "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
    );
    let new = moved.cookie_value("__Host-session").unwrap().to_owned();
    let again = get_with(&new_app, "/counter", Some(&format!("__Host-session={new}"))).await;
    assert_eq!(again.body, "counter = 3");
    let moved_again = again.set_cookie().unwrap_or_default();
    assert!(
        !moved_again.starts_with("session="),
        "nothing left to move: {moved_again}"
    );
    // With both cookies, the current name wins and the old one is ignored.
    let latest = again.cookie_value("__Host-session").unwrap_or(&new);
    let both = format!("session={old}; __Host-session={latest}");
    assert_eq!(
        get_with(&new_app, "/counter", Some(&both)).await.body,
        "counter = 4"
    );
}
