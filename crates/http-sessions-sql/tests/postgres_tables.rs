//! The store's tables over time, on the PostgreSQL at `DATABASE_URL`:
//! made and upgraded by `migrate()` (once, however many instances start
//! together), and kept to what is live by the sweeper, through a flood of
//! visitors who never come back.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http_sessions_conformance::http::{cookie, get as send};
use http_sessions_core::seams::ManualClock;
use http_sessions_core::store::{Loaded, Record, SessionId, SessionStore, UnixTime};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, ValueError};
use http_sessions_sql::sqlx::{self, PgPool, postgres::PgPoolOptions};
use http_sessions_sql::{PostgresStore, Sweeper};

const START: UnixTime = UnixTime::from_secs(1_700_000_000);
const IDLE: Duration = Duration::from_secs(600);

fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect_lazy(&support::url(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/sessions_test",
        ))
        .unwrap()
}

fn store(table: &str) -> PostgresStore {
    PostgresStore::from_pool(pool()).with_table(table).unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

fn settings(clock: &ManualClock) -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[3; 32]).unwrap()).unwrap())
        .with_secure(false)
        .with_idle_timeout(IDLE)
        // Generous: these tests measure tables, not a loaded machine's
        // patience.
        .with_store_timeout(Duration::from_secs(30))
        .with_clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_made_by_the_first_version_are_upgraded_with_their_sessions() {
    let table = support::table();
    let old = store(&table);
    old.migrate_to(1).await.unwrap();
    // A session as rows of the first version's tables.
    let id = SessionId::from_bytes([9; 16]);
    sqlx::query(&format!(
        "INSERT INTO {table} (id, expires, created, user_id, generation, size) \
         VALUES ($1, $2, $3, 'alice', 5, 20)"
    ))
    .bind(&id.as_bytes()[..])
    .bind(1_700_000_600_i64)
    .bind(1_700_000_000_i64)
    .execute(old.pool())
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {table}_values (session_id, key, value) VALUES ($1, 'n', '\\x07')"
    ))
    .bind(&id.as_bytes()[..])
    .execute(old.pool())
    .await
    .unwrap();

    let new = store(&table);
    new.migrate().await.unwrap();
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM {table}_version ORDER BY version"
    ))
    .fetch_all(new.pool())
    .await
    .unwrap();
    assert_eq!(versions, [1, 2], "each version applied once");
    let Some(Loaded::Live(record)) = new.load(&id, START).await.unwrap() else {
        panic!("the session did not survive the upgrade");
    };
    assert_eq!(record.data.get("n").map(|v| v.as_bytes()), Some(&[7][..]));
    assert_eq!(
        (record.user.as_deref(), record.generation),
        (Some("alice"), 5)
    );
    // And the upgraded store writes to it.
    new.delete(&id, Some("alice")).await.unwrap();
    assert!(new.load(&id, START).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let table = support::table();
    let starts = (0..8).map(|_| {
        let store = store(&table);
        tokio::spawn(async move { store.migrate().await })
    });
    for start in starts.collect::<Vec<_>>() {
        start.await.unwrap().unwrap();
    }
    let again = store(&table);
    again.migrate().await.unwrap();
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM {table}_version ORDER BY version"
    ))
    .fetch_all(again.pool())
    .await
    .unwrap();
    assert_eq!(versions, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_keeps_its_tables_in_its_own_schema() {
    let schema = support::table();
    let store = PostgresStore::from_pool(pool())
        .with_schema(&schema)
        .unwrap();
    store.migrate().await.unwrap();
    let tables = count(
        store.pool(),
        &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"),
    )
    .await;
    assert_eq!(tables, 5, "sessions, values, flashes, users, version");
    let mut record = Record::empty(START, START + IDLE, 16);
    record.label = Some("phone".into());
    let id = SessionId::from_bytes([4; 16]);
    store.create(&id, &record, START + IDLE).await.unwrap();
    assert!(store.load(&id, START).await.unwrap().is_some());
}

async fn visit(session: Session) -> Result<&'static str, ValueError> {
    let visits: u32 = session.get("visits")?.unwrap_or(0);
    session.insert("visits", visits + 1)?;
    Ok("hello")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flood_of_visitors_a_sweep_leaves_only_what_is_live() {
    let table = support::table();
    let store = store(&table);
    store.migrate().await.unwrap();
    let clock = ManualClock::new(START);
    let app = Router::new()
        .route("/", get(visit))
        .layer(SessionLayer::new(store.clone(), &settings(&clock)));
    // Ten who stay, then a flood who come once.
    let mut stayers = Vec::new();
    for _ in 0..10 {
        let reply = send(&app, "/", None).await;
        stayers.push(cookie("session", reply.cookie_value("session").unwrap()));
    }
    clock.advance(Duration::from_secs(60));
    // A hundred at a time: what is measured is the table, not how the
    // pool copes with a queue (other tests say that).
    for _ in 0..20 {
        let wave: Vec<_> = (0..100)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app, "/", None).await.status })
            })
            .collect();
        for visitor in wave {
            assert_eq!(visitor.await.unwrap(), StatusCode::OK);
        }
    }
    let rows = format!("SELECT count(*) FROM {table}");
    assert_eq!(count(store.pool(), &rows).await, 2_010);

    // The stayers come back; then time passes the flood's idle timeout,
    // not theirs.
    clock.advance(Duration::from_secs(240));
    for jar in &stayers {
        assert_eq!(
            send(&app, "/", Some(jar.clone())).await.status,
            StatusCode::OK
        );
    }
    clock.advance(IDLE - Duration::from_secs(200));
    let deleted = store.delete_expired().await.unwrap();
    assert_eq!(deleted, 2_000);
    assert_eq!(
        count(store.pool(), &rows).await,
        10,
        "only the live sessions"
    );
    let values = format!("SELECT count(*) FROM {table}_values");
    assert_eq!(
        count(store.pool(), &values).await,
        10,
        "their values went with them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweepers_on_many_instances_share_the_work_and_stop() {
    let table = support::table();
    let clock = ManualClock::new(START);
    let settings = settings(&clock);
    let first = store(&table);
    first.migrate().await.unwrap();
    first.use_settings(&settings);
    for i in 0..3_000u32 {
        let mut id = [0; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let mut record = Record::empty(START, START + IDLE, 16);
        record.label = Some("x".into());
        first
            .create(&SessionId::from_bytes(id), &record, START + IDLE)
            .await
            .unwrap();
    }
    clock.advance(IDLE);
    // Three instances, each with its sweeper.
    let sweepers: Vec<Sweeper> = (0..3)
        .map(|_| {
            let store = store(&table);
            store.use_settings(&settings);
            Sweeper::start(store, Duration::from_millis(5))
        })
        .collect();
    let rows = format!("SELECT count(*) FROM {table}");
    let mut left = count(first.pool(), &rows).await;
    for _ in 0..2_000 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        left = count(first.pool(), &rows).await;
    }
    assert_eq!(left, 0, "every expired row swept");
    for sweeper in sweepers {
        sweeper.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_flash_messages_keep_any_character() {
    let store = store(&support::table());
    store.migrate().await.unwrap();
    let mut record = Record::empty(START, START + IDLE, 16);
    record.label = Some("phone\0of alice".into());
    record.flash.push(
        http_sessions_core::FlashLevel::Info,
        "you typed \0 and é".into(),
    );
    let id = SessionId::from_bytes([5; 16]);
    store.create(&id, &record, START + IDLE).await.unwrap();
    let Some(Loaded::Live(back)) = store.load(&id, START).await.unwrap() else {
        panic!("not stored");
    };
    assert_eq!(back.label, record.label);
    assert_eq!(
        back.flash
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>(),
        ["you typed \0 and é"]
    );
}
