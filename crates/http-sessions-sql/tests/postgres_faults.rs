//! What a visitor sees when PostgreSQL misbehaves: restarted, a row
//! locked by another transaction, the pool exhausted, its connection
//! terminated, the database read-only, the server a standby in recovery,
//! a row corrupt; and what a request
//! costs the server: one round trip per load and one per save, counted by
//! a proxy in front of it. Each test starts a server of its own.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http_sessions_conformance::http::{Reply, cookie, get as send};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, ValueError};
use http_sessions_sql::PostgresStore;
use http_sessions_sql::sqlx::{self, postgres::PgPoolOptions};
use support::pg::PgServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The store's bound on a call: what a visitor waits at most.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// Timers and a loaded machine add a little to any bound.
const SLACK: Duration = Duration::from_millis(700);

async fn counter(session: Session) -> Result<String, ValueError> {
    let n: u64 = session.get("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

async fn login(session: Session) -> Result<&'static str, ValueError> {
    session.renew_on_login();
    session.bind_user("alice")?;
    session.insert("n", 0u64)?;
    Ok("welcome")
}

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap())
        .with_secure(false)
        .with_store_timeout(STORE_TIMEOUT)
        .build()
        .unwrap()
}

async fn app(store: PostgresStore) -> Router {
    store.migrate().await.unwrap();
    Router::new()
        .route("/counter", get(counter))
        .route("/login", get(login))
        .layer(SessionLayer::new(store, &settings()))
}

/// The session cookie a reply set.
fn session_cookie(reply: &Reply) -> http::HeaderValue {
    cookie(
        "session",
        reply.cookie_value("session").expect("a session cookie"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_answers_503_then_serves_the_same_session() {
    // Every commit on disk before it is answered, so that the crash below
    // loses none.
    let server = PgServer::start(&["synchronous_commit = on"]);
    let app = app(PostgresStore::from_url(&server.url()).unwrap()).await;
    let first = send(&app, "/counter", None).await;
    let jar = session_cookie(&first);
    assert_eq!(send(&app, "/counter", Some(jar.clone())).await.body, "2");

    server.stop();
    let began = Instant::now();
    let down = send(&app, "/counter", Some(jar.clone())).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.set_cookie().is_none(), "the client's cookie is kept");
    assert!(
        began.elapsed() < STORE_TIMEOUT + SLACK,
        "{:?}",
        began.elapsed()
    );

    server.start_again();
    let back = send(&app, "/counter", Some(jar)).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body, "3", "the same session, not a fresh one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_by_another_transaction_answers_503_within_the_store_timeout() {
    let server = PgServer::start(&[]);
    let app = app(PostgresStore::from_url(&server.url()).unwrap()).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);

    let other = PgPoolOptions::new().connect(&server.url()).await.unwrap();
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
    // The layer answered at its timeout; the server cancels the save at
    // its lock timeout, which started when the save began to wait, a
    // little later. Only once nothing waits on the lock does releasing it
    // show whether the save was cancelled.
    let deadline = Instant::now() + STORE_TIMEOUT + SLACK;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        .fetch_one(&other)
        .await
        .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the save still waits on the lock"
        );
        tokio::task::yield_now().await;
    }
    tx.rollback().await.unwrap();

    let after = send(&app, "/counter", Some(jar)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_within_the_store_timeout() {
    let server = PgServer::start(&[]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url())
        .await
        .unwrap();
    let app = app(PostgresStore::from_pool(pool.clone())).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);

    let held = pool.acquire().await.unwrap();
    let began = Instant::now();
    let starved = send(&app, "/counter", Some(jar.clone())).await;
    assert_eq!(starved.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        began.elapsed() < STORE_TIMEOUT + SLACK,
        "{:?}",
        began.elapsed()
    );
    drop(held);

    let after = send(&app, "/counter", Some(jar)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_connection_is_replaced_by_the_next_request() {
    let server = PgServer::start(&[]);
    let app = app(PostgresStore::from_url(&server.url()).unwrap()).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);

    let admin = PgPoolOptions::new().connect(&server.url()).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(
        !terminated.is_empty(),
        "the store's connection was there to end"
    );

    let after = send(&app, "/counter", Some(jar)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "2"));
}

/// Ends every connection but the caller's, so that the store's next ones
/// take the database's settings as they are now.
async fn terminate_others(admin: &sqlx::PgPool) -> usize {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    ended.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_answers_503_and_keeps_the_cookie() {
    let server = PgServer::start(&[]);
    let app = app(PostgresStore::from_url(&server.url()).unwrap()).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url())
        .await
        .unwrap();
    let read_only = |on: bool| {
        let admin = admin.clone();
        async move {
            let value = if on { "on" } else { "off" };
            sqlx::raw_sql(&format!(
                "ALTER DATABASE postgres SET default_transaction_read_only = {value}"
            ))
            .execute(&admin)
            .await
            .unwrap();
            assert!(terminate_others(&admin).await > 0);
        }
    };
    read_only(true).await;
    let refused = send(&app, "/counter", Some(jar.clone())).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.set_cookie().is_none(),
        "the client's cookie is kept"
    );
    read_only(false).await;
    let after = send(&app, "/counter", Some(jar)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_recovery_answers_503_and_keeps_the_cookie() {
    let primary = PgServer::start(&[]);
    let on_primary = app(PostgresStore::from_url(&primary.url()).unwrap()).await;
    let jar = session_cookie(&send(&on_primary, "/counter", None).await);
    let standby = PgServer::standby_of(&primary);
    let store = PostgresStore::from_url(&standby.url()).unwrap();
    // Until the standby has replayed the session's row.
    let replica = store.pool().clone();
    let mut rows = 0_i64;
    for _ in 0..1_000 {
        rows = sqlx::query_scalar("SELECT count(*) FROM http_sessions")
            .fetch_one(&replica)
            .await
            .unwrap_or(0);
        if rows > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rows, 1, "the standby never had the session");
    let on_standby = Router::new()
        .route("/counter", get(counter))
        .layer(SessionLayer::new(store, &settings()));
    let refused = send(&on_standby, "/counter", Some(jar)).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.set_cookie().is_none(),
        "the client's cookie is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_is_no_session_and_never_a_server_error() {
    let server = PgServer::start(&[]);
    let store = PostgresStore::from_url(&server.url()).unwrap();
    let pool = store.pool().clone();
    let app = app(store).await;
    let jar = session_cookie(&send(&app, "/counter", None).await);
    sqlx::query("UPDATE http_sessions_values SET value = '\\xc1'")
        .execute(&pool)
        .await
        .unwrap();
    for _ in 0..3 {
        let reply = send(&app, "/counter", Some(jar.clone())).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "1", "a new session, not the corrupt one");
    }
}

// ------------------------------------------------------------ round trips

/// A TCP proxy in front of the server that counts round trips: each time
/// the client speaks after the server has answered (or first) is one. A
/// turn that is a lone `Sync` message is sqlx's check of a connection
/// going back to its pool, counted apart: it carries no statement, and
/// runs after the call has returned.
struct Counter {
    port: u16,
    trips: Arc<Trips>,
}

#[derive(Default)]
struct Trips {
    statements: AtomicU64,
    pings: AtomicU64,
}

/// The Postgres protocol's `Sync` message, alone.
const SYNC: [u8; 5] = [b'S', 0, 0, 0, 4];

impl Counter {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let trips = Arc::new(Trips::default());
        let counted = Arc::clone(&trips);
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let server = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
                tokio::spawn(relay(client, server, Arc::clone(&counted)));
            }
        });
        Self { port, trips }
    }

    /// Round trips carrying statements, and pings, so far.
    fn trips(&self) -> (u64, u64) {
        (
            self.trips.statements.load(Ordering::SeqCst),
            self.trips.pings.load(Ordering::SeqCst),
        )
    }
}

/// Relays one connection, counting the client's turns to speak.
async fn relay(client: TcpStream, server: TcpStream, trips: Arc<Trips>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // True once the server has spoken since the client last did.
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let to_server = {
        let answered = Arc::clone(&answered);
        async move {
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = client_read.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                if answered.swap(false, Ordering::SeqCst) {
                    let kind = if buf[..n] == SYNC {
                        &trips.pings
                    } else {
                        &trips.statements
                    };
                    kind.fetch_add(1, Ordering::SeqCst);
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let to_client = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = server_read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            // Set before the bytes go on: the client cannot speak again
            // before it has them.
            answered.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(to_server, to_client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_costs_one_round_trip_to_load_and_one_to_save_signed_in_or_not() {
    let server = PgServer::start(&[]);
    let proxy = Counter::start(server.port).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    // One connection, opened now, so that no connecting is counted.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .connect(&url)
        .await
        .unwrap();
    let app = app(PostgresStore::from_pool(pool)).await;
    let anonymous = session_cookie(&send(&app, "/counter", None).await);
    let signed_in = session_cookie(&send(&app, "/login", None).await);
    // Each statement's first run prepares it: one more trip, once.
    for jar in [&anonymous, &signed_in] {
        send(&app, "/counter", Some(jar.clone())).await;
    }
    for (who, jar) in [("anonymous", anonymous), ("signed in", signed_in)] {
        for _ in 0..5 {
            let (before, _) = proxy.trips();
            let reply = send(&app, "/counter", Some(jar.clone())).await;
            assert_eq!(reply.status, StatusCode::OK);
            let (after, pings) = proxy.trips();
            assert_eq!(
                after - before,
                2,
                "{who}: one round trip to load and one to save"
            );
            assert!(pings > 0, "the proxy tells pings apart");
        }
    }
}
