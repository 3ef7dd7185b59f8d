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

    use std::time::Duration;

    use http_sessions_conformance::{ABSOLUTE, Harness, IDLE, START};
    use http_sessions_core::seams::ManualClock;
    use http_sessions_core::store::{
        Changes, IdSource, Loaded, RandomIds, Record, SessionId, SessionStore, UnixTime, Update,
        Updated, Value,
    };
    use http_sessions_core::{FlashLevel, Key, Keyring, Settings};

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

    /// A session created at [`START`] until `START + IDLE`, bound to
    /// alice, labelled and holding a value and a flash message.
    fn bound_record() -> Record {
        let mut record = record("cart", START + IDLE);
        record.user = Some("alice".into());
        record.label = Some("laptop".into());
        (record.flash).push(FlashLevel::Info, "welcome".into());
        record
    }

    /// The store of a `harness`'s handle, which its test hands over: a
    /// session found past its expiry is [`Loaded::Expired`], decoded as a
    /// live one, so rows that do not decode are no session, expired or
    /// not; a renewed id's marker past its time is no session.
    pub(crate) async fn expired_sessions_load_as_expired<H: Harness, S: SessionStore>(
        harness: &H,
        store_of: fn(&H::Handle) -> &S,
    ) {
        let settings = settings(&ManualClock::new(START));
        let (_backend, handle) = harness.make(&settings).await;
        let store = store_of(&handle);
        let id = RandomIds::new().next_id().unwrap();
        loads_as_expired_past_its_expiry(store, &id).await;
        a_marker_past_its_time_is_no_session(store).await;
        harness.corrupt(&handle, Some(id), "", &settings).await;
        for now in [START, START + IDLE, START + ABSOLUTE] {
            assert_eq!(store.load(&id, now).await.unwrap(), None, "at {now}");
        }
    }

    /// Creates [`bound_record`] under `id` through `store`, and checks
    /// that it loads as live until its expiry and from then on as the
    /// same record, [`Loaded::Expired`], while a list still finds no live
    /// session.
    async fn loads_as_expired_past_its_expiry<S: SessionStore>(store: &S, id: &SessionId) {
        let created = bound_record();
        let expires = created.expires;
        store.create(id, &created, START + ABSOLUTE).await.unwrap();
        let before = START + (IDLE - Duration::from_secs(1));
        let Some(Loaded::Live(live)) = store.load(id, before).await.unwrap() else {
            panic!("a live session did not load as live");
        };
        assert_eq!(
            (&live.user, &live.label, live.created, live.expires),
            (&created.user, &created.label, START, expires)
        );
        assert_eq!((live.data.len(), live.flash.len()), (1, 1));
        for now in [expires, expires + ABSOLUTE] {
            assert_eq!(
                store.load(id, now).await.unwrap(),
                Some(Loaded::Expired(live.clone())),
                "a load at {now}"
            );
        }
        let users = store.users().unwrap();
        assert_eq!(users.list("alice", before).await.unwrap().len(), 1);
        assert!(users.list("alice", expires).await.unwrap().is_empty());
    }

    /// A renewed id created and retired through `store`: renewed until the
    /// marker's time, then no session, never an expired one.
    async fn a_marker_past_its_time_is_no_session<S: SessionStore>(store: &S) {
        let id = RandomIds::new().next_id().unwrap();
        let record = record("k", START + IDLE);
        store.create(&id, &record, START + IDLE).await.unwrap();
        let until = START + Duration::from_secs(60);
        store.retire(&id, START, until, None).await.unwrap();
        let just_before = START + Duration::from_secs(59);
        assert_eq!(
            store.load(&id, just_before).await.unwrap(),
            Some(Loaded::Renewed)
        );
        for now in [until, START + IDLE, START + ABSOLUTE] {
            assert_eq!(store.load(&id, now).await.unwrap(), None, "at {now}");
        }
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
