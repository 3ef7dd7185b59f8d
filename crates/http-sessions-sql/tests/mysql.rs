//! The conformance suite against a real MySQL or MariaDB (`MYSQL_URL`),
//! each store on tables of its own; and what only MySQL can get wrong: the
//! migration, the sweep, concurrent saves, and user ids and keys as MySQL
//! compares and bounds them.
#![cfg(feature = "mysql")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use async_trait::async_trait;
use http_sessions_conformance::{Harness, IDLE, START};
use http_sessions_core::Settings;
use http_sessions_core::seams::{Backend, ManualClock};
use http_sessions_core::store::{
    Changes, EndAll, IdSource, Loaded, RandomIds, SessionId, SessionStore, StoreError, Update,
    UserIndex, Value,
};
use http_sessions_sql::MySqlStore;
use http_sessions_sql::mysql::MAX_KEY_LEN;
use http_sessions_sql::sqlx::{self, MySqlPool, mysql::MySqlPoolOptions};
use support::store::{concurrent_saves, record, settings};

fn database_url() -> String {
    support::url("MYSQL_URL", "mysql://root@127.0.0.1:3306/sessions_test")
}

/// A pool of this test's own: each test runs on a runtime of its own.
fn pool() -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(4)
        .connect_lazy(&database_url())
        .unwrap()
}

/// A store on a pool built from the URL, as `session_layer` makes it, on
/// tables of its own.
fn store() -> MySqlStore {
    MySqlStore::from_url(&database_url())
        .unwrap()
        .with_table(&support::table())
        .unwrap()
}

async fn count(store: &MySqlStore, suffix: &str) -> i64 {
    let table = format!("`{}{suffix}`", table_of(store));
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The sessions table's bare name, as the first migration writes it.
fn table_of(store: &MySqlStore) -> String {
    let v1 = &store.migrations()[0].1;
    let at =
        v1.find("CREATE TABLE IF NOT EXISTS `").unwrap() + "CREATE TABLE IF NOT EXISTS `".len();
    v1[at..].split('`').next().unwrap().to_owned()
}

struct MySql;

#[async_trait]
impl Harness for MySql {
    type Handle = MySqlStore;

    async fn make(&self, settings: &Settings) -> (Backend, MySqlStore) {
        let store = store();
        store.use_settings(settings);
        store.migrate().await.unwrap();
        (Backend::server(store.clone()), store)
    }

    /// Overwrites one of the session's values with a byte that is not
    /// MessagePack (0xc1 is the one marker the format never uses).
    async fn corrupt(
        &self,
        store: &MySqlStore,
        id: Option<SessionId>,
        cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        let id = id.expect("a MySQL session always has an id");
        let values = format!("`{}_values`", table_of(store));
        let changed = sqlx::query(&format!(
            "UPDATE {values} SET value = X'c1' WHERE session_id = ?"
        ))
        .bind(&id.as_bytes()[..])
        .execute(store.pool())
        .await
        .unwrap()
        .rows_affected();
        assert!(changed > 0, "the session has no value to corrupt");
        Some(cookie.to_owned())
    }

    /// Sessions and renewed ids' markers alike: one row each.
    async fn stored(&self, store: &MySqlStore) -> Option<usize> {
        Some(usize::try_from(count(store, "").await).unwrap())
    }
}

http_sessions_conformance::suite!(MySql);

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired() {
    support::store::expired_sessions_load_as_expired(&MySql, |store| store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_safe_from_many_instances_at_once() {
    let table = support::table();
    // Instances of the application, each on a pool of its own.
    let stores: Vec<MySqlStore> = (0..4)
        .map(|_| MySqlStore::from_pool(pool()).with_table(&table).unwrap())
        .collect();
    let tasks: Vec<_> = (stores.iter().cloned())
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    stores[0].migrate().await.unwrap();
    stores[1].migrate().await.unwrap();
    assert_eq!(
        count(&stores[0], "_version").await,
        1,
        "version 1, recorded once"
    );
    assert_eq!(count(&stores[0], "").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_deletes_the_expired_rows_and_only_them() {
    let clock = ManualClock::new(START);
    let store = store();
    store.use_settings(&settings(&clock));
    store.migrate().await.unwrap();
    // Another instance, sweeping at the same time.
    let other = MySqlStore::from_pool(pool())
        .with_table(&table_of(&store))
        .unwrap();
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
        store.create(&id, &record, expires).await.unwrap();
    }
    assert_eq!(store.delete_expired().await.unwrap(), 0, "nothing expired");
    clock.advance(IDLE);
    let (one, two) = tokio::join!(store.delete_expired(), other.delete_expired());
    // The sessions and the users whose sessions have all ended.
    assert_eq!(one.unwrap() + two.unwrap(), 1_800 + 180);
    assert_eq!(count(&store, "").await, 700);
    assert_eq!(
        count(&store, "_values").await,
        700,
        "values go with their session"
    );
    assert_eq!(count(&store, "_users").await, 70);
    assert_eq!(store.delete_expired().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_one_session_all_land() {
    let store = store();
    store.migrate().await.unwrap();
    // Other instances of the application, on pools of their own.
    let table = table_of(&store);
    let mut stores = vec![store.clone()];
    stores.extend((0..3).map(|_| MySqlStore::from_pool(pool()).with_table(&table).unwrap()));
    for _ in 0..3 {
        let id = RandomIds::new().next_id().unwrap();
        (store.create(&id, &record("base", START + IDLE), START + IDLE))
            .await
            .unwrap();
        concurrent_saves(&stores, id, 16).await;
    }
}

/// MySQL's text collations ignore trailing spaces, even the binary ones:
/// user ids are kept as bytes, so that two ids are one user only if they
/// are the same bytes.
#[tokio::test]
async fn user_ids_compare_byte_for_byte() {
    let store = store();
    store.migrate().await.unwrap();
    let ids = RandomIds::new();
    let (ada, ada_space) = (ids.next_id().unwrap(), ids.next_id().unwrap());
    for (id, user) in [(&ada, "ada"), (&ada_space, "ada ")] {
        let mut record = record("k", START + IDLE);
        record.user = Some(user.into());
        store.create(id, &record, START + IDLE).await.unwrap();
    }
    let listed = store.list("ada", START).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, ada);
    let end = EndAll {
        keep: None,
        now: START,
        floor: 1_000,
        remember_until: START + IDLE,
    };
    assert_eq!(store.end_all("ada", end).await.unwrap().sessions, 1);
    assert!(matches!(
        store.load(&ada_space, START).await.unwrap(),
        Some(Loaded::Live(_))
    ));
    assert_eq!(count(&store, "_users").await, 2);
}

/// Keys up to the bound of the values table are stored whole; a longer
/// one is refused, never cut to a key it is not.
#[tokio::test]
async fn keys_are_stored_whole_or_refused() {
    let store = store();
    store.migrate().await.unwrap();
    let id = RandomIds::new().next_id().unwrap();
    let longest = "k".repeat(MAX_KEY_LEN);
    let mut created = record(&longest, START + IDLE);
    store.create(&id, &created, START + IDLE).await.unwrap();
    let Some(Loaded::Live(loaded)) = store.load(&id, START).await.unwrap() else {
        panic!("no session");
    };
    assert!(loaded.data.contains_key(&longest));

    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    created
        .data
        .insert(too_long.as_str().into(), Value::encode(&1).unwrap());
    let changes = Changes {
        keys: vec![too_long.as_str().into()],
        ..Changes::default()
    };
    let update = Update {
        record: &created,
        changes: &changes,
        expires: START + IDLE,
        ends: START + IDLE,
        now: START,
        stored_user: None,
        max_size: 64 * 1024,
    };
    assert!(matches!(
        store.update(&id, update).await,
        Err(StoreError::Unsupported(_))
    ));
    let other = RandomIds::new().next_id().unwrap();
    assert!(matches!(
        store.create(&other, &created, START + IDLE).await,
        Err(StoreError::Unsupported(_))
    ));
}

/// Saves that add keys to different sessions at once, whose rows neighbour
/// one another in the values table's index, all land: none waits for a
/// lock on a gap beside another session's rows, so none deadlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_of_neighbouring_sessions_do_not_deadlock() {
    let store = store();
    store.migrate().await.unwrap();
    let table = table_of(&store);
    let mut stores = vec![store.clone()];
    stores.extend((0..3).map(|_| MySqlStore::from_pool(pool()).with_table(&table).unwrap()));
    let ids: Vec<SessionId> = (0..16)
        .map(|_| RandomIds::new().next_id().unwrap())
        .collect();
    for id in &ids {
        (store.create(id, &record("base", START + IDLE), START + IDLE))
            .await
            .unwrap();
    }
    for round in 0..5 {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(ids.len()));
        let tasks: Vec<_> = (ids.iter().enumerate())
            .map(|(i, &id)| {
                let store = stores[i % stores.len()].clone();
                let start = std::sync::Arc::clone(&start);
                tokio::spawn(async move {
                    // Keys that sort before and after the stored one.
                    let keys = [format!("a{round}"), format!("z{round}")];
                    let mut record = record("base", START + IDLE);
                    for key in &keys {
                        (record.data).insert(key.as_str().into(), Value::encode(&i).unwrap());
                    }
                    let changes = Changes {
                        keys: keys.iter().map(|k| k.as_str().into()).collect(),
                        ..Changes::default()
                    };
                    let update = Update {
                        record: &record,
                        changes: &changes,
                        expires: START + IDLE,
                        ends: START + IDLE * 6,
                        now: START,
                        stored_user: None,
                        max_size: 64 * 1024,
                    };
                    start.wait().await;
                    store.update(&id, update).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    assert_eq!(count(&store, "_values").await, 16 * 11);
}

/// A pool built from a URL bounds its lock waits and statements by the
/// settings' store timeout.
#[tokio::test]
async fn connections_from_a_url_keep_the_store_timeout() {
    let store = store();
    let settings = Settings::builder()
        .with_keyring(
            http_sessions_core::Keyring::new(
                http_sessions_core::Key::from_bytes(&[7; 32]).unwrap(),
            )
            .unwrap(),
        )
        .with_store_timeout(std::time::Duration::from_millis(2_500))
        .build()
        .unwrap();
    store.use_settings(&settings);
    let (lock_wait, mariadb): (u64, i64) =
        sqlx::query_as("SELECT @@innodb_lock_wait_timeout, VERSION() LIKE '%MariaDB%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(lock_wait, 3, "whole seconds, rounded up");
    let statement: f64 = if mariadb != 0 {
        sqlx::query_scalar("SELECT @@max_statement_time")
            .fetch_one(store.pool())
            .await
            .unwrap()
    } else {
        let ms: u64 = sqlx::query_scalar("SELECT @@max_execution_time")
            .fetch_one(store.pool())
            .await
            .unwrap();
        ms as f64 / 1000.0
    };
    assert_eq!(statement, 2.5);
}

/// A store told its database names it in every statement: here the
/// connection's own, so the test needs no right to make another.
#[tokio::test]
async fn tables_in_a_named_database_work_whole() {
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&pool())
        .await
        .unwrap();
    let store = store().with_schema(&database).unwrap();
    assert!(
        store.migrations()[0]
            .1
            .contains(&format!("`{database}`.`t_"))
    );
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let ids = RandomIds::new();
    let (id, renewed) = (ids.next_id().unwrap(), ids.next_id().unwrap());
    let mut record = record("k", START + IDLE);
    record.user = Some("ada".into());
    store.create(&id, &record, START + IDLE).await.unwrap();
    store.create(&renewed, &record, START + IDLE).await.unwrap();
    store
        .retire(&renewed, START, START + IDLE, Some("ada"))
        .await
        .unwrap();
    assert_eq!(
        store.load(&renewed, START).await.unwrap(),
        Some(Loaded::Renewed)
    );
    assert_eq!(store.list("ada", START).await.unwrap().len(), 1);
    assert!(store.end("ada", &id, START).await.unwrap());
    assert_eq!(store.load(&id, START).await.unwrap(), None);
    // By the system clock, long after START: the marker, and ada's row.
    assert_eq!(store.delete_expired().await.unwrap(), 2);
}
