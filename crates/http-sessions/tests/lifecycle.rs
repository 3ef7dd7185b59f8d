//! Through the layer, with real requests: a login that only binds a user
//! is stored and gets its cookie; a change of expiry sends the cookie with
//! its new lifetime; concurrent requests cannot take one session past its
//! size bound.
#![cfg(all(feature = "memory", feature = "cookie", feature = "axum"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use http_sessions::memory::MemoryStore;
use http_sessions::{Expiry, Key, Keyring, Session, SessionLayer, Settings, ValueError};
use http_sessions_conformance::http;
use tokio::sync::Barrier;

const BOUND: usize = 64 * 1024;
const REMEMBER: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[31; 32]).unwrap()).unwrap())
        .with_secure(false)
        .with_max_session_size(BOUND)
        .build()
        .unwrap()
}

fn layers() -> [(&'static str, SessionLayer); 2] {
    let settings = settings();
    [
        ("memory", SessionLayer::new(MemoryStore::new(), &settings)),
        ("cookie", http_sessions::cookie::session_layer(&settings)),
    ]
}

async fn bind_only(session: Session) -> Result<&'static str, ValueError> {
    session.renew_on_login();
    session.bind_user("ada")?;
    session.set_label("phone");
    Ok("bound")
}

async fn whoami(session: Session) -> String {
    format!("{:?} {:?}", session.user(), session.label())
}

async fn login(session: Session) -> Result<&'static str, ValueError> {
    session.insert("signed_in", true)?;
    Ok("in")
}

async fn browser_only(session: Session) -> &'static str {
    session.set_expiry(Expiry::BrowserSession);
    "until the browser closes"
}

async fn remember(session: Session) -> &'static str {
    session.set_expiry(Expiry::Lifetimes {
        idle: REMEMBER,
        absolute: REMEMBER,
    });
    "remembered"
}

/// Sets a 60 KiB value under key `i`, once every request of the round has
/// loaded the session: each sees only its own value.
async fn big(
    session: Session,
    Path(i): Path<u32>,
    State(round): State<Arc<Barrier>>,
) -> Result<&'static str, ValueError> {
    round.wait().await;
    session.insert(format!("big{i}"), "x".repeat(60 * 1024))?;
    Ok("stored")
}

async fn count(session: Session) -> String {
    session.len().to_string()
}

fn app(layer: SessionLayer, round: Arc<Barrier>) -> Router {
    Router::new()
        .route("/bind", get(bind_only))
        .route("/whoami", get(whoami))
        .route("/login", get(login))
        .route("/browser-only", get(browser_only))
        .route("/remember", get(remember))
        .route("/big/{i}", get(big))
        .route("/count", get(count))
        .with_state(round)
        .layer(layer)
}

/// Status, body and `Set-Cookie` of `GET path` with the session cookie
/// `token`.
async fn get_with(
    app: &Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let header = token.map(|t| http::cookie("session", t));
    let reply = http::get(app, path, header).await;
    let set_cookie = reply.set_cookie().map(str::to_owned);
    (reply.status, reply.body, set_cookie)
}

fn token(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.strip_prefix("session=").unwrap().to_owned()
}

#[tokio::test]
async fn a_login_that_only_binds_is_stored_and_sends_its_cookie() {
    for (backend, layer) in layers() {
        let app = app(layer, Arc::new(Barrier::new(1)));
        let (status, _, set_cookie) = get_with(&app, "/bind", None).await;
        assert_eq!(status, StatusCode::OK, "{backend}");
        let set_cookie = set_cookie.unwrap_or_else(|| panic!("{backend}: no cookie"));
        let (_, body, _) = get_with(&app, "/whoami", Some(&token(&set_cookie))).await;
        assert_eq!(body, r#"Some("ada") Some("phone")"#, "{backend}");
    }
}

#[tokio::test]
async fn a_change_of_expiry_sends_the_cookie_with_its_new_lifetime() {
    for (backend, layer) in layers() {
        let app = app(layer, Arc::new(Barrier::new(1)));
        let (_, _, set_cookie) = get_with(&app, "/login", None).await;
        let first = set_cookie.unwrap();
        assert!(first.contains("Max-Age="), "{backend}: {first}");

        let (_, _, set_cookie) = get_with(&app, "/browser-only", Some(&token(&first))).await;
        let browser =
            set_cookie.unwrap_or_else(|| panic!("{backend}: no cookie for the new expiry"));
        assert!(!browser.contains("Max-Age"), "{backend}: {browser}");

        let (_, _, set_cookie) = get_with(&app, "/remember", Some(&token(&browser))).await;
        let remembered =
            set_cookie.unwrap_or_else(|| panic!("{backend}: no cookie for the new expiry"));
        assert!(
            remembered.contains(&format!("Max-Age={}", REMEMBER.as_secs())),
            "{backend}: {remembered}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_cannot_take_a_session_past_its_bound() {
    const REQUESTS: u32 = 8;
    let layer = SessionLayer::new(MemoryStore::new(), &settings());
    let app = app(layer, Arc::new(Barrier::new(REQUESTS as usize)));
    let (_, _, set_cookie) = get_with(&app, "/login", None).await;
    let token = token(&set_cookie.unwrap());
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { get_with(&app, &format!("/big/{i}"), Some(&token)).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "only one 60 KiB value fits in 64 KiB: {statuses:?}");
    let (status, body, _) = get_with(&app, "/count", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
    // The session still takes writes.
    let (status, _, _) = get_with(&app, "/login", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
}
