//! Writes held up by a paused PostgreSQL backend (`SIGSTOP` on the process
//! serving one instance's connection) that land after the layer gave up on
//! them and after another instance wrote: a late update after a destroy
//! finds nothing to bring back, and a late login after "log out
//! everywhere" is refused. The other instance works on connections of its
//! own, which the pause does not touch.
//!
//! A held call is known to have reached the backend once its timeout has
//! fired (the statement was flushed before the wait); after `SIGCONT` it
//! is known to have run once the backend shows as idle again with no
//! query under way. No sleep stands in for either.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::process::Command;
use std::time::Duration;

use http_sessions_core::store::{
    Changes, DataKey, EndAll, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime,
    Update, UserIndex, Value,
};
use http_sessions_sql::PostgresStore;
use http_sessions_sql::sqlx::{
    self, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use support::pg::PgServer;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const HELD: Duration = Duration::from_millis(500);
/// The most a resumed backend may take to answer the held call.
const RESUMED: Duration = Duration::from_secs(30);

/// A store of its own on one connection, named `name` on the server.
async fn instance(server: &PgServer, name: &str) -> PostgresStore {
    let options: PgConnectOptions = server.url().parse().unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .connect_with(options.application_name(name))
        .await
        .unwrap();
    PostgresStore::from_pool(pool)
}

async fn pid_of(admin: &PgPool, name: &str) -> i32 {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(admin)
        .await
        .unwrap()
}

fn signal(pid: i32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

fn record(user: Option<&str>, generation: u64) -> Record {
    let mut r = Record::empty(NOW, NOW + Duration::from_secs(600), 16);
    r.data.insert("k".into(), Value::encode("v").unwrap());
    r.user = user.map(str::to_owned);
    r.generation = generation;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_update_after_a_destroy_brings_nothing_back() {
    let server = PgServer::start(&[]);
    let admin = PgPoolOptions::new().connect(&server.url()).await.unwrap();
    let paused = instance(&server, "paused").await;
    let other = instance(&server, "other").await;
    paused.migrate().await.unwrap();
    let id = SessionId::from_bytes([1; 16]);
    other
        .create(&id, &record(None, 0), NOW + Duration::from_secs(3600))
        .await
        .unwrap();

    let pid = pid_of(&admin, "paused").await;
    signal(pid, "-STOP");
    // The call goes on in a task of its own, its statement queued at the
    // paused backend, as a call the layer gave up on would be.
    let mut late = tokio::spawn(async move {
        let mut mine = record(None, 0);
        mine.data
            .insert("late".into(), Value::encode("write").unwrap());
        let mut changes = Changes::default();
        changes.mark(DataKey::from("late"));
        let update = Update {
            record: &mine,
            changes: &changes,
            expires: NOW + Duration::from_secs(600),
            ends: NOW + Duration::from_secs(3600),
            now: NOW,
            stored_user: None,
            max_size: 64 * 1024,
        };
        paused.update(&id, update).await.map(|_| ())
    });
    let held = tokio::time::timeout(HELD, &mut late).await;
    assert!(held.is_err(), "the paused backend answered");

    other.delete(&id, None).await.unwrap();
    signal(pid, "-CONT");
    let landed = tokio::time::timeout(RESUMED, late)
        .await
        .expect("the resumed backend never answered")
        .unwrap();
    assert!(
        matches!(landed, Err(StoreError::Gone)),
        "the late update: {landed:?}"
    );
    assert_eq!(
        other.load(&id, NOW).await.unwrap(),
        None,
        "the session came back"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM http_sessions_values")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no value of it came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_login_after_log_out_everywhere_is_refused() {
    let server = PgServer::start(&[]);
    let admin = PgPoolOptions::new().connect(&server.url()).await.unwrap();
    let paused = instance(&server, "paused").await;
    let other = instance(&server, "other").await;
    paused.migrate().await.unwrap();
    let began_ms = NOW.as_secs() * 1000;
    let existing = SessionId::from_bytes([2; 16]);
    other
        .create(
            &existing,
            &record(Some("alice"), began_ms),
            NOW + Duration::from_secs(3600),
        )
        .await
        .unwrap();

    let pid = pid_of(&admin, "paused").await;
    signal(pid, "-STOP");
    // A login whose request began before "log out everywhere".
    let login = SessionId::from_bytes([3; 16]);
    let mut late = tokio::spawn(async move {
        paused
            .create(
                &login,
                &record(Some("alice"), began_ms + 5),
                NOW + Duration::from_secs(3600),
            )
            .await
    });
    let held = tokio::time::timeout(HELD, &mut late).await;
    assert!(held.is_err(), "the paused backend answered");

    let ended = other
        .end_all(
            "alice",
            EndAll {
                keep: None,
                now: NOW,
                floor: began_ms + 1_000,
                remember_until: NOW + Duration::from_secs(3600),
            },
        )
        .await
        .unwrap();
    assert_eq!(ended.sessions, 1);
    signal(pid, "-CONT");
    let landed = tokio::time::timeout(RESUMED, late)
        .await
        .expect("the resumed backend never answered")
        .unwrap();
    assert!(
        matches!(landed, Err(StoreError::Gone)),
        "the late login: {landed:?}"
    );
    assert!(
        other.list("alice", NOW).await.unwrap().is_empty(),
        "a session of alice survived"
    );
    assert!(
        !matches!(
            other.load(&login, NOW).await.unwrap(),
            Some(Loaded::Live(_))
        ),
        "the late login was stored"
    );
}
