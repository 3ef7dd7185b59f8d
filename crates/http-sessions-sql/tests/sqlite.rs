//! The conformance suite against SQLite, each store on a database file of
//! its own; and what only SQLite can get wrong: the migration, the sweep
//! and writers taking turns.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::PathBuf;

use async_trait::async_trait;
use http_sessions_conformance::{Harness, IDLE, START};
use http_sessions_core::Settings;
use http_sessions_core::seams::{Backend, ManualClock};
use http_sessions_core::store::{IdSource, Loaded, RandomIds, SessionId, SessionStore};
use http_sessions_sql::SqliteStore;
use http_sessions_sql::sqlx;
use support::store::{concurrent_saves, record, settings};

/// A store on a database file of its own, deleted when the test ends.
struct Db {
    store: SqliteStore,
    table: String,
    path: PathBuf,
}

impl Db {
    fn new() -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sessions-{}.db", support::table()));
        let table = support::table();
        Self {
            store: store_on(&path, &table),
            table,
            path,
        }
    }

    async fn count(&self, suffix: &str) -> i64 {
        let table = format!("\"{}{suffix}\"", self.table);
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for end in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(end);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn store_on(path: &std::path::Path, table: &str) -> SqliteStore {
    SqliteStore::from_url(&format!("sqlite://{}", path.display()))
        .unwrap()
        .with_table(table)
        .unwrap()
}

struct Sqlite;

#[async_trait]
impl Harness for Sqlite {
    type Handle = Db;

    async fn make(&self, settings: &Settings) -> (Backend, Db) {
        let db = Db::new();
        db.store.use_settings(settings);
        db.store.migrate().await.unwrap();
        (Backend::server(db.store.clone()), db)
    }

    /// Overwrites one of the session's values with a byte that is not
    /// MessagePack (0xc1 is the one marker the format never uses).
    async fn corrupt(
        &self,
        db: &Db,
        id: Option<SessionId>,
        cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        let id = id.expect("a SQLite session always has an id");
        let values = format!("\"{}_values\"", db.table);
        let changed = sqlx::query(&format!(
            "UPDATE {values} SET value = X'c1' WHERE session_id = ?"
        ))
        .bind(&id.as_bytes()[..])
        .execute(db.store.pool())
        .await
        .unwrap()
        .rows_affected();
        assert!(changed > 0, "the session has no value to corrupt");
        Some(cookie.to_owned())
    }

    /// Sessions and renewed ids' markers alike: one row each.
    async fn stored(&self, db: &Db) -> Option<usize> {
        Some(usize::try_from(db.count("").await).unwrap())
    }
}

http_sessions_conformance::suite!(Sqlite);

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired() {
    support::store::expired_sessions_load_as_expired(&Sqlite, |db| &db.store).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_from_many_instances_at_once() {
    let db = Db::new();
    // Other instances of the application: pools of their own on the file.
    let others: Vec<SqliteStore> = (0..4).map(|_| store_on(&db.path, &db.table)).collect();
    let tasks: Vec<_> = (others.iter().cloned())
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert_eq!(db.count("_version").await, 1, "version 1, recorded once");
    assert_eq!(db.count("").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_deletes_the_expired_rows_and_only_them() {
    let clock = ManualClock::new(START);
    let db = Db::new();
    db.store.use_settings(&settings(&clock));
    db.store.migrate().await.unwrap();
    // Another instance, sweeping at the same time.
    let other = store_on(&db.path, &db.table);
    other.use_settings(&settings(&clock));
    let ids = RandomIds::new();
    // 2,500 sessions, 3 batches' worth: the first 1,800 expire within the
    // idle timeout, the others an hour later.
    for i in 0..2_500u64 {
        let expires = if i < 1_800 {
            START + IDLE
        } else {
            START + IDLE * 7
        };
        let mut record = record("k", expires);
        if i % 10 == 0 {
            record.user = Some(format!("user{i}"));
        }
        let id = ids.next_id().unwrap();
        db.store.create(&id, &record, expires).await.unwrap();
    }
    assert_eq!(
        db.store.delete_expired().await.unwrap(),
        0,
        "nothing expired"
    );
    clock.advance(IDLE);
    let (one, two) = tokio::join!(db.store.delete_expired(), other.delete_expired());
    // The sessions and the users whose sessions have all ended.
    assert_eq!(one.unwrap() + two.unwrap(), 1_800 + 180);
    assert_eq!(db.count("").await, 700);
    assert_eq!(
        db.count("_values").await,
        700,
        "values go with their session"
    );
    assert_eq!(db.count("_users").await, 70);
    assert_eq!(db.store.delete_expired().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_one_session_all_land() {
    let db = Db::new();
    db.store.migrate().await.unwrap();
    let id = RandomIds::new().next_id().unwrap();
    db.store
        .create(&id, &record("base", START + IDLE), START + IDLE)
        .await
        .unwrap();
    concurrent_saves(std::slice::from_ref(&db.store), id, 8).await;
}

/// Stores on pools of their own, as instances of an application in
/// processes of their own are: they wait for one another's write lock in
/// SQLite's busy handler, within the default store timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_from_several_instances_all_land() {
    let db = Db::new();
    db.store.migrate().await.unwrap();
    let stores: Vec<SqliteStore> = (0..4).map(|_| store_on(&db.path, &db.table)).collect();
    let id = RandomIds::new().next_id().unwrap();
    db.store
        .create(&id, &record("base", START + IDLE), START + IDLE)
        .await
        .unwrap();
    concurrent_saves(&stores, id, 32).await;
}

#[tokio::test]
async fn a_memory_database_keeps_its_sessions_in_its_one_connection() {
    let store = SqliteStore::from_url("sqlite::memory:").unwrap();
    store.migrate().await.unwrap();
    let id = RandomIds::new().next_id().unwrap();
    store
        .create(&id, &record("k", START + IDLE), START + IDLE)
        .await
        .unwrap();
    assert!(matches!(
        store.load(&id, START).await.unwrap(),
        Some(Loaded::Live(_))
    ));
    // Another store's memory database is another database.
    let other = SqliteStore::from_url("sqlite::memory:").unwrap();
    other.migrate().await.unwrap();
    assert_eq!(other.load(&id, START).await.unwrap(), None);
}

/// A pool built from a URL waits for other processes' writers as long as
/// the settings' store timeout.
#[tokio::test]
async fn connections_from_a_url_keep_the_store_timeout() {
    let db = Db::new();
    let settings = http_sessions_core::Settings::builder()
        .with_keyring(
            http_sessions_core::Keyring::new(
                http_sessions_core::Key::from_bytes(&[7; 32]).unwrap(),
            )
            .unwrap(),
        )
        .with_store_timeout(std::time::Duration::from_millis(2_500))
        .build()
        .unwrap();
    db.store.use_settings(&settings);
    let (busy, journal): (i64, String) = (
        sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(db.store.pool())
            .await
            .unwrap(),
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.store.pool())
            .await
            .unwrap(),
    );
    assert_eq!((busy, journal.as_str()), (2_500, "wal"));
}
