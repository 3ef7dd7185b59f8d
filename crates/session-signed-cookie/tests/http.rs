//! The cookie store behind the session layer: bad cookies are no session
//! and a removal cookie, never a 500; the 4096-byte edge on both sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::get;
use session_core::testing::http::Reply;
use session_core::{Key, Keyring, MAX_SET_COOKIE_LEN, Session, SessionLayer, Settings, StoreError};
use session_signed_cookie::CookieStore;

fn settings() -> Settings {
    Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[5; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
}

/// `/fill/N` stores a string of N bytes; `/read` prints the session;
/// `/checked/N` saves early and reports what the store said.
fn app(store: CookieStore) -> Router {
    Router::new()
        .route(
            "/fill/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<usize>, s: Session| async move {
                    s.insert("fill", "x".repeat(n)).unwrap();
                    "filled"
                },
            ),
        )
        .route(
            "/checked/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<usize>, s: Session| async move {
                    s.insert("fill", "x".repeat(n)).unwrap();
                    match s.save().await {
                        Ok(()) => "saved".to_owned(),
                        Err(e) => {
                            let too_large = matches!(e.error, StoreError::TooLarge { .. });
                            s.remove("fill");
                            s.insert("note", "too large, kept small").unwrap();
                            format!("too large: {too_large}")
                        }
                    }
                },
            ),
        )
        .route("/read", get(|s: Session| async move { s.to_string() }))
        .layer(SessionLayer::new(store, &settings()))
}

async fn send(app: &Router, path: &str, cookie: Option<HeaderValue>) -> Reply {
    session_core::testing::http::get(app, path, cookie).await
}

fn value_of(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("session=")
        .unwrap()
}

#[tokio::test]
async fn bad_cookies_are_no_session_and_removed() {
    for store in [CookieStore::signed(), CookieStore::encrypted()] {
        let app = app(store);
        let first = send(&app, "/fill/10", None).await;
        let good = first.cookie_value("session").unwrap().to_owned();
        let mut flipped = good.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let cases: Vec<(&str, HeaderValue)> = vec![
            (
                "truncated",
                HeaderValue::from_str(&format!("session={}", &good[..good.len() - 3])).unwrap(),
            ),
            (
                "flipped",
                HeaderValue::from_bytes(&[b"session=".as_slice(), &flipped].concat()).unwrap(),
            ),
            ("bad base64", HeaderValue::from_static("session=@@@@")),
            (
                "non-UTF-8",
                HeaderValue::from_bytes(b"session=\xc3\x28\xff").unwrap(),
            ),
            (
                "100 KB",
                HeaderValue::from_str(&format!("session={}", "Q".repeat(100 * 1024))).unwrap(),
            ),
        ];
        for (what, cookie) in cases {
            let r = send(&app, "/read", Some(cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{what}");
            assert_eq!(r.body, "{}", "{what}");
            let removal = r
                .set_cookie()
                .unwrap_or_else(|| panic!("{what}: no removal cookie"));
            assert!(
                removal.starts_with("session=;") && removal.contains("Max-Age=0"),
                "{what}: {removal}"
            );
        }
        let ok = send(
            &app,
            "/read",
            Some(HeaderValue::from_str(&format!("session={good}")).unwrap()),
        )
        .await;
        assert_eq!(ok.body, format!("{{fill: {}}}", "x".repeat(10)));
    }
}

/// The largest fill whose `Set-Cookie` fits, found by search.
async fn largest_fitting_fill(app: &Router) -> (usize, String) {
    let (mut lo, mut hi) = (0usize, 4096usize);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if send(app, &format!("/fill/{mid}"), None).await.status == StatusCode::OK {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let r = send(app, &format!("/fill/{lo}"), None).await;
    (lo, r.set_cookie().unwrap().to_owned())
}

#[tokio::test]
async fn the_4096_byte_edge_on_both_sides() {
    for store in [CookieStore::signed(), CookieStore::encrypted()] {
        let app = app(store);
        let (fits, set_cookie) = largest_fitting_fill(&app).await;
        // Just inside: the whole header fits, and closely (base64 moves in
        // steps of 4 characters per 3 bytes, Max-Age by its digits).
        assert!(
            set_cookie.len() <= MAX_SET_COOKIE_LEN,
            "{}",
            set_cookie.len()
        );
        assert!(
            set_cookie.len() > MAX_SET_COOKIE_LEN - 12,
            "{}",
            set_cookie.len()
        );
        // Just outside: a typed error reported by the response, and the
        // client's previous cookie stays (no Set-Cookie at all).
        let previous =
            HeaderValue::from_str(&format!("session={}", value_of(&set_cookie))).unwrap();
        let over = send(&app, &format!("/fill/{}", fits + 1), Some(previous.clone())).await;
        assert_eq!(over.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(over.body.contains("could not be saved"), "{}", over.body);
        assert_eq!(over.set_cookie(), None);
        let still = send(&app, "/read", Some(previous)).await;
        assert_eq!(still.body, format!("{{fill: {}}}", "x".repeat(fits)));
    }
}

#[tokio::test]
async fn the_handler_sees_too_large_and_can_recover() {
    let app = app(CookieStore::encrypted());
    let r = send(&app, "/checked/10000", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "too large: true");
    let c = value_of(r.set_cookie().unwrap()).to_owned();
    let read = send(
        &app,
        "/read",
        Some(HeaderValue::from_str(&format!("session={c}")).unwrap()),
    )
    .await;
    assert_eq!(read.body, "{note: too large, kept small}");
    let small = send(&app, "/checked/10", None).await;
    assert_eq!(small.body, "saved");
    assert!(small.set_cookie().is_some());
}

#[tokio::test]
async fn flashing_alone_cannot_overflow_the_cookie() {
    let app = Router::new()
        .route(
            "/flash",
            get(|s: Session| async move {
                for i in 0..1000 {
                    s.flash(format!(
                        "message number {i} with some text to fill the cookie"
                    ));
                }
                "flashed"
            }),
        )
        .layer(SessionLayer::new(CookieStore::signed(), &settings()));
    let r = send(&app, "/flash", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.set_cookie().unwrap().len() <= MAX_SET_COOKIE_LEN);
}
