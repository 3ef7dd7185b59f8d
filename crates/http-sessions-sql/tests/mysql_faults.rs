//! What a visitor sees when MariaDB is restarted under the store, and
//! when another transaction holds a session's row: 503 while it cannot
//! answer, the client's cookie kept, then the same session again. Each
//! test starts a server of its own.
#![cfg(feature = "mysql")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http_sessions_conformance::http::{Reply, cookie, get as send};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, ValueError};
use http_sessions_sql::MySqlStore;
use http_sessions_sql::sqlx::{self, mysql::MySqlPoolOptions};
use support::mariadb::MariaDb;

/// The store's bound on a call; MySQL keeps lock waits in whole seconds.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// Timers and a loaded machine add a little to any bound.
const SLACK: Duration = Duration::from_millis(700);

async fn counter(session: Session) -> Result<String, ValueError> {
    let n: u64 = session.get("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

async fn app(store: MySqlStore) -> Router {
    store.migrate().await.unwrap();
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[8; 32]).unwrap()).unwrap())
        .with_secure(false)
        .with_store_timeout(STORE_TIMEOUT)
        .build()
        .unwrap();
    Router::new()
        .route("/counter", get(counter))
        .layer(SessionLayer::new(store, &settings))
}

fn session_cookie(reply: &Reply) -> http::HeaderValue {
    cookie(
        "session",
        reply.cookie_value("session").expect("a session cookie"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_answers_503_then_serves_the_same_session() {
    let mut server = MariaDb::start();
    let app = app(MySqlStore::from_url(&server.url()).unwrap()).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);
    // Several connections in the pool, each to die with the server: four
    // requests at once, each on a session of its own.
    let together: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, "/counter", None).await.status })
        })
        .collect();
    for request in together {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(send(&app, "/counter", Some(jar.clone())).await.body, "2");

    server.stop();
    let down = send(&app, "/counter", Some(jar.clone())).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.set_cookie().is_none(), "the client's cookie is kept");

    server.start_again();
    // Every request after the restart is served: each dead connection is
    // found by a call and replaced, within the call.
    for expected in 3..6 {
        let back = send(&app, "/counter", Some(jar.clone())).await;
        assert_eq!(
            (back.status, back.body.as_str()),
            (StatusCode::OK, &*expected.to_string())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_by_another_transaction_answers_503_within_the_store_timeout() {
    let server = MariaDb::start();
    let app = app(MySqlStore::from_url(&server.url()).unwrap()).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);

    let other = MySqlPoolOptions::new()
        .connect(&server.url())
        .await
        .unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM http_sessions FOR UPDATE")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let began = Instant::now();
    let locked = send(&app, "/counter", Some(jar.clone())).await;
    assert_eq!(locked.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        began.elapsed() < STORE_TIMEOUT + SLACK,
        "{:?}",
        began.elapsed()
    );
    tx.rollback().await.unwrap();

    let after = send(&app, "/counter", Some(jar)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "2"));
}
