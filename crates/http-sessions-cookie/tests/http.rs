//! The cookie store behind the session layer: bad or expired cookies are
//! no session, never a 500, and leave the client's cookie alone; only
//! ending a session removes it; the 4096-byte edge on both sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::get;
use http_sessions_conformance::http::{Reply, cookie};
use http_sessions_cookie::{CookieStore, Mode};
use http_sessions_core::{
    Key, Keyring, Session, SessionLayer, Settings, StoreError, layer::cookies::MAX_SET_COOKIE_LEN,
    seams::ManualClock, store::UnixTime,
};

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[5; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
}

fn layer(mode: Mode) -> SessionLayer {
    let settings = settings();
    let store = match mode {
        Mode::Signed => CookieStore::signed(&settings),
        Mode::Encrypted => CookieStore::encrypted(&settings),
    };
    SessionLayer::in_cookie(store, &settings)
}

const BOTH: [Mode; 2] = [Mode::Signed, Mode::Encrypted];

fn app(mode: Mode) -> Router {
    routes().layer(layer(mode))
}

/// `/fill/N` stores a string of N bytes; `/read` prints the session;
/// `/checked/N` saves early and reports what the store said; `/destroy`
/// and `/clear` end the session.
fn routes() -> Router {
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
                            let too_large = matches!(e, StoreError::TooLarge { .. });
                            s.remove("fill");
                            s.insert("note", "too large, kept small").unwrap();
                            format!("too large: {too_large}")
                        }
                    }
                },
            ),
        )
        .route("/read", get(|s: Session| async move { s.to_string() }))
        .route(
            "/destroy",
            get(|s: Session| async move {
                s.destroy();
                "destroyed"
            }),
        )
        .route(
            "/clear",
            get(|s: Session| async move {
                s.clear();
                "cleared"
            }),
        )
}

async fn send(app: &Router, path: &str, cookie: Option<HeaderValue>) -> Reply {
    http_sessions_conformance::http::get(app, path, cookie).await
}

#[tokio::test]
async fn bad_cookies_are_no_session_and_left_alone() {
    for mode in BOTH {
        let app = app(mode);
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
            // A cookie that does not open is no session; it is not removed
            // either: only a request that ends a session removes it.
            let r = send(&app, "/read", Some(cookie.clone())).await;
            assert_eq!(r.status, StatusCode::OK, "{what}");
            assert_eq!(r.body, "{}", "{what}");
            assert_eq!(r.set_cookie(), None, "{what}");
            // Writing replaces it with a cookie that opens.
            let w = send(&app, "/fill/3", Some(cookie)).await;
            let fresh = w.cookie_value("session").unwrap();
            let read = send(&app, "/read", Some(self::cookie("session", fresh))).await;
            assert_eq!(read.body, "{fill: xxx}", "{what}");
        }
        let ok = send(&app, "/read", Some(cookie("session", &good))).await;
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
    for mode in BOTH {
        let app = app(mode);
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
        let value = set_cookie
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("session="))
            .unwrap();
        let previous = cookie("session", value);
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
    let app = app(Mode::Encrypted);
    let r = send(&app, "/checked/10000", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "too large: true");
    let c = r.cookie_value("session").unwrap();
    let read = send(&app, "/read", Some(cookie("session", c))).await;
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
        .layer(layer(Mode::Signed));
    let r = send(&app, "/flash", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.set_cookie().unwrap().len() <= MAX_SET_COOKIE_LEN);
}

#[tokio::test]
async fn only_ending_a_session_removes_the_cookie() {
    for mode in BOTH {
        let app = app(mode);
        for path in ["/destroy", "/clear"] {
            let first = send(&app, "/fill/10", None).await;
            let good = cookie("session", first.cookie_value("session").unwrap());
            let r = send(&app, path, Some(good.clone())).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert!(r.removes_cookie(), "{mode:?} {path}: {:?}", r.set_cookie());
            assert!(r.set_cookie().unwrap().starts_with("session=;"), "{path}");
            // A cookie can be replayed: the store holds nothing to revoke,
            // so the old value still opens (docs/security.md).
            let replayed = send(&app, "/read", Some(good)).await;
            assert_eq!(replayed.body, format!("{{fill: {}}}", "x".repeat(10)));
        }
    }
}

#[tokio::test]
async fn an_expired_cookie_is_no_session_and_left_alone() {
    let idle = Duration::from_secs(600);
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[5; 32]).unwrap()).unwrap())
        .with_idle_timeout(idle)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    for store in [
        CookieStore::signed(&settings),
        CookieStore::encrypted(&settings),
    ] {
        let app = routes().layer(SessionLayer::in_cookie(store, &settings));
        let first = send(&app, "/fill/10", None).await;
        let value = cookie("session", first.cookie_value("session").unwrap());
        clock.advance(idle - Duration::from_secs(1));
        let live = send(&app, "/read", Some(value.clone())).await;
        assert_eq!(live.body, format!("{{fill: {}}}", "x".repeat(10)));
        clock.advance(Duration::from_secs(1));
        let expired = send(&app, "/read", Some(value)).await;
        assert_eq!(expired.status, StatusCode::OK);
        assert_eq!(expired.body, "{}");
        assert_eq!(expired.set_cookie(), None);
    }
}

/// The cookie backend's `Set-Cookie`, byte for byte around its value: the
/// same attributes, in the same order, as a server-side store's.
#[tokio::test]
async fn set_cookie_is_pinned_byte_for_byte() {
    for mode in BOTH {
        let app = app(mode);
        let set = send(&app, "/fill/10", None).await;
        let value = set.cookie_value("session").unwrap().to_owned();
        assert_eq!(
            set.set_cookie().unwrap(),
            format!("session={value}; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"),
            "{mode:?}"
        );
        let gone = send(&app, "/destroy", Some(cookie("session", &value))).await;
        assert_eq!(
            gone.set_cookie().unwrap(),
            "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; SameSite=Lax",
            "{mode:?}"
        );
    }
}

/// Fifty `session=` cookies of every shape but this backend's: empty,
/// garbage, too long, the right alphabet at a length base64 never has, a
/// server-side token, quoted, a header too short to be ours, another
/// format version, and a value sealed in the other mode.
fn junk_session_cookies(other_mode: &str) -> Vec<String> {
    let shapes = [
        String::new(),
        "garbage".to_owned(),
        "x".repeat(5000),
        "A".repeat(101),
        format!("{}.{}", "A".repeat(22), "A".repeat(43)),
        format!("\"{}\"", "A".repeat(98)),
        "AQAAAAAA".to_owned(),
        format!("Ag{}", "A".repeat(98)),
        format!("AQ{}!", "A".repeat(97)),
        "%41%51".to_owned(),
        other_mode.to_owned(),
    ];
    shapes.iter().cycle().take(50).cloned().collect()
}

fn session_cookie_header(values: &[String]) -> HeaderValue {
    let joined = values
        .iter()
        .map(|v| format!("session={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    HeaderValue::from_str(&joined).unwrap()
}

#[tokio::test]
async fn a_valid_cookie_behind_fifty_junk_ones_is_found() {
    for (mode, other) in [
        (Mode::Signed, Mode::Encrypted),
        (Mode::Encrypted, Mode::Signed),
    ] {
        let app = app(mode);
        let other_mode = send(&self::app(other), "/fill/10", None).await;
        let other_mode = other_mode.cookie_value("session").unwrap();
        let real = send(&app, "/fill/10", None).await;
        let mut values = junk_session_cookies(other_mode);
        values.push(real.cookie_value("session").unwrap().to_owned());
        let r = send(&app, "/read", Some(session_cookie_header(&values))).await;
        assert_eq!(r.status, StatusCode::OK, "{mode:?}");
        assert_eq!(r.body, format!("{{fill: {}}}", "x".repeat(10)), "{mode:?}");
    }
}

/// Values shaped like this backend's still count toward the eight a
/// request may try, so a flood of forgeries costs at most eight MACs: a
/// valid cookie behind eight of them is not found.
#[tokio::test]
async fn forged_cookies_shaped_like_ours_still_cap_the_work_at_eight() {
    for mode in BOTH {
        let app = app(mode);
        let real = send(&app, "/fill/10", None).await;
        let real = real.cookie_value("session").unwrap().to_owned();
        let forged = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| {
                    // Past the header: the times and key id stay as sealed.
                    let mut bytes = real.clone().into_bytes();
                    let at = 40 + i;
                    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(bytes).unwrap()
                })
                .collect()
        };
        let mut seven = forged(7);
        seven.push(real.clone());
        let r = send(&app, "/read", Some(session_cookie_header(&seven))).await;
        assert_eq!(r.body, format!("{{fill: {}}}", "x".repeat(10)), "{mode:?}");
        for n in [8, 9] {
            let mut values = forged(n);
            values.push(real.clone());
            values.splice(3..3, junk_session_cookies(""));
            let r = send(&app, "/read", Some(session_cookie_header(&values))).await;
            assert_eq!(r.status, StatusCode::OK, "{mode:?} {n}");
            assert_eq!(r.body, "{}", "{mode:?} {n}");
            assert_eq!(r.set_cookie(), None, "{mode:?} {n}");
        }
    }
}
