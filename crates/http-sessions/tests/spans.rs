//! Each store call runs in a `session_store` span naming the backend, the
//! call and how it ended. Alone in its binary: the subscriber it installs
//! is the thread's, and callsites another test thread hit first would
//! race with it.
#![cfg(all(feature = "memory", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::get;
use http_sessions::memory::MemoryStore;
use http_sessions::{Key, Keyring, Session, SessionLayer, Settings};
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::test]
async fn store_calls_are_traced_with_backend_op_and_outcome() {
    let captured = http_sessions_conformance::http::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);

    let settings = Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[3; 32]).unwrap()).unwrap())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/login",
            get(|s: Session| async move { s.insert("user", "alice").map(|()| "hi") }),
        )
        .route("/whoami", get(|s: Session| async move { s.to_string() }))
        .layer(SessionLayer::new(MemoryStore::new(), &settings));
    let login = http_sessions_conformance::http::get(&app, "/login", None).await;
    let name = &settings.cookie().name;
    let token = login.cookie_value(name).unwrap().to_owned();
    let cookie = HeaderValue::from_str(&format!("{name}={token}")).unwrap();
    let whoami = http_sessions_conformance::http::get(&app, "/whoami", Some(cookie)).await;
    assert_eq!(whoami.body, "{user: alice}");

    let log = captured.take();
    let spans: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session_store{"))
        .collect();
    assert_eq!(spans.len(), 2, "{log}");
    assert!(
        spans[0].contains(r#"backend="memory" op="create" outcome="ok""#),
        "{log}"
    );
    assert!(
        spans[1].contains(r#"backend="memory" op="load" outcome="ok""#),
        "{log}"
    );
}
