//! What the SQL stores' tests share: the databases they run on, and a
//! fresh table family per store, so tests running side by side never see
//! each other's sessions.
#![allow(dead_code)]

use http_sessions_core::store::{IdSource, RandomIds};

const HOW: &str = "run `cargo xtask test-all`, which starts a throwaway database for these \
                   tests, or set it yourself";

/// The URL in the environment variable `name`; the tests fail, saying
/// how to run them, without it. A database test that skips itself is a
/// store nobody tested.
pub(crate) fn url(name: &str, example: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => panic!(
            "{name} is not set: {HOW} (for example {name}={example}). \
             The database tests never skip themselves."
        ),
    }
}

/// A table name no other store of the run uses.
pub(crate) fn table() -> String {
    let id = RandomIds::new().next_id().unwrap();
    let hex: String = id.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t_{hex}")
}

pub(crate) mod pg;

/// What the SQLite and MySQL tests of one store ask of it.
pub(crate) mod store {
    use std::sync::Arc;

    use http_sessions_conformance::{IDLE, START};
    use http_sessions_core::seams::ManualClock;
    use http_sessions_core::store::{
        Changes, Loaded, Record, SessionId, SessionStore, UnixTime, Update, Updated, Value,
    };
    use http_sessions_core::{Key, Keyring, Settings};

    /// Settings on `clock`.
    pub(crate) fn settings(clock: &ManualClock) -> Settings {
        Settings::builder()
            .with_cookie_name("session")
            .with_keyring(Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap())
            .with_clock(clock.clone())
            .build()
            .unwrap()
    }

    /// A session created at [`START`] holding `key`, until `expires`.
    pub(crate) fn record(key: &str, expires: UnixTime) -> Record {
        let mut record = Record::empty(START, expires, 4);
        (record.data).insert(key.into(), Value::encode(&key.to_owned()).unwrap());
        record
    }

    /// Each of `n` tasks sets a key of its own in the session under `id`,
    /// which holds one key, through one of `stores` in turn, all at once;
    /// every save lands.
    pub(crate) async fn concurrent_saves<S: SessionStore + Clone>(
        stores: &[S],
        id: SessionId,
        n: usize,
    ) {
        let start = Arc::new(tokio::sync::Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    let key = format!("k{i}");
                    let mut record = record("base", START + IDLE);
                    (record.data).insert(key.as_str().into(), Value::encode(&i).unwrap());
                    let changes = Changes {
                        keys: vec![key.as_str().into()],
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
            assert_eq!(task.await.unwrap().unwrap(), Updated::Kept);
        }
        let Some(Loaded::Live(all)) = stores[0].load(&id, START).await.unwrap() else {
            panic!("the session is gone");
        };
        assert_eq!(all.data.len(), n + 1, "lost updates: {:?}", all.data);
    }
}

pub(crate) mod mariadb;
