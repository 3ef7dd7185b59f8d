//! Concurrent saves of one session merged in Redis, on the node at
//! `REDIS_URL` and the cluster at `REDIS_CLUSTER_URLS` (`cargo xtask
//! redis` starts both): the session size bound holds on the merged
//! session, a flash message read once is never shown again, two pushes
//! both land, and sessions stored by the release before message ids and
//! sizes (written here by hand) load and change as they should.
//!
//! Each test drives the store as requests do: loads, changes its own copy,
//! and saves the changes, with the order of the saves chosen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // The conformance harness is for the other test files.
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_sessions_core::FlashLevel;
use http_sessions_core::store::{
    Changes, DataKey, Expiry, Flash, FlashChanges, FlashQueue, Loaded, Record, SessionId,
    SessionStore, StoreError, UnixTime, Update, Updated, Value,
};
use http_sessions_redis::RedisStore;
use http_sessions_redis::deadpool_redis::cluster::ClusterClient;
use http_sessions_redis::redis;
use support::random_prefix;

/// The session size bound of these tests.
const BOUND: usize = 64 * 1024;

/// Where the stores under test keep their sessions, and a client of its
/// own to look inside.
enum Target {
    Node(String),
    Cluster(Vec<String>),
}

impl Target {
    fn node() -> Self {
        Target::Node(std::env::var("REDIS_URL").expect(
            "REDIS_URL is not set: run `cargo xtask redis`, which starts Redis for these tests",
        ))
    }

    fn cluster() -> Self {
        let urls = std::env::var("REDIS_CLUSTER_URLS").expect(
            "REDIS_CLUSTER_URLS is not set: run `cargo xtask redis`, which starts a cluster",
        );
        Target::Cluster(
            urls.split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
        )
    }

    fn store(&self, test: &str) -> RedisStore {
        let store = match self {
            Target::Node(url) => RedisStore::from_url(url).unwrap(),
            Target::Cluster(urls) => RedisStore::cluster(urls.clone()).unwrap(),
        };
        store.with_prefix(random_prefix(test))
    }

    /// Runs `cmd` on a connection of its own.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        match self {
            Target::Node(url) => {
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                cmd.query_async(&mut conn).await.unwrap()
            }
            Target::Cluster(urls) => {
                let client = ClusterClient::new(urls.clone()).unwrap();
                let mut conn = client.get_async_connection().await.unwrap();
                cmd.query_async(&mut conn).await.unwrap()
            }
        }
    }

    async fn field_names(&self, key: &str) -> Vec<String> {
        let mut names: Vec<String> = self.query(redis::cmd("HKEYS").arg(key)).await;
        names.sort();
        names
    }
}

fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime::from_secs(secs)
}

fn value(bytes: usize) -> Value {
    Value::encode(&"v".repeat(bytes)).unwrap()
}

fn flash(text: &str) -> Flash {
    Flash {
        level: FlashLevel::Info,
        message: text.into(),
    }
}

/// A message id as a request pushing at `ms` makes one.
fn id_at(ms: u64, random: u64) -> u64 {
    (ms << 22) | random
}

/// A new session holding `record`, under a fresh id.
async fn created(store: &RedisStore, record: &Record) -> SessionId {
    let id = SessionId::from_bytes(rand_id());
    store.create(&id, record, record.expires).await.unwrap();
    id
}

fn rand_id() -> [u8; 16] {
    use http_sessions_core::store::{IdSource, RandomIds};
    *RandomIds::new().next_id().unwrap().as_bytes()
}

async fn load(store: &RedisStore, id: &SessionId) -> Record {
    match store.load(id, now()).await.unwrap() {
        Some(Loaded::Live(record)) => record,
        other => panic!("no live session: {other:?}"),
    }
}

fn messages(record: &Record) -> Vec<&str> {
    record.flash.iter().map(|f| f.message.as_str()).collect()
}

/// Saves what a request changed (`changes`, leaving it with `record`).
async fn save(
    store: &RedisStore,
    id: &SessionId,
    record: &Record,
    changes: &Changes,
) -> Result<Updated, StoreError> {
    let t = now();
    let update = Update {
        record,
        changes,
        expires: t + Duration::from_secs(600),
        ends: t + Duration::from_secs(3600),
        now: t,
        stored_user: record.user.as_deref(),
        max_size: BOUND,
    };
    store.update(id, update).await
}

/// The size the hash keeps is the size of the session it loads as.
async fn assert_size_kept(target: &Target, store: &RedisStore, id: &SessionId) {
    let kept: Option<usize> = target
        .query(redis::cmd("HGET").arg(store.key_of(id)).arg("sz"))
        .await;
    assert_eq!(kept, Some(load(store, id).await.encoded_len()));
}

fn fresh() -> Record {
    let t = now();
    let mut record = Record::empty(t, t + Duration::from_secs(600), 16);
    record.data.insert("small".into(), value(10));
    record
}

fn set_one(record: &Record, key: &str, bytes: usize) -> (Record, Changes) {
    let mut mine = record.clone();
    mine.data.insert(key.into(), value(bytes));
    let mut changes = Changes::default();
    changes.mark(DataKey::from(key));
    (mine, changes)
}

// ----------------------------------------------------------- size bound

async fn eight_concurrent_large_writes_leave_the_session_within_the_bound(target: Target) {
    let store = target.store("bound");
    let id = created(&store, &fresh()).await;
    let loaded = load(&store, &id).await;
    // Every save is sent before any answer is read.
    let saves: Vec<_> = (0..8)
        .map(|i| {
            let (record, changes) = set_one(&loaded, &format!("big{i}"), 60 * 1024);
            let store = store.clone();
            tokio::spawn(async move { save(&store, &id, &record, &changes).await })
        })
        .collect();
    let mut results = Vec::new();
    for save in saves {
        results.push(save.await.unwrap());
    }
    let landed = results.iter().filter(|r| r.is_ok()).count();
    for result in &results {
        match result {
            Ok(Updated::Kept) => {}
            Err(StoreError::TooLarge { size, limit }) => {
                assert_eq!(*limit, BOUND);
                assert!(*size > BOUND, "{size}");
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // One 60 KiB value fits the bound, two do not.
    assert_eq!(landed, 1, "{results:?}");
    let stored = load(&store, &id).await;
    assert!(stored.encoded_len() <= BOUND, "{}", stored.encoded_len());
    assert_eq!(stored.data.len(), 2);
    assert_size_kept(&target, &store, &id).await;

    // Later writes work: a small one lands, and a large one is refused.
    let (mine, changes) = set_one(&stored, "later", 100);
    assert_eq!(
        save(&store, &id, &mine, &changes).await.unwrap(),
        Updated::Kept
    );
    let (mine, changes) = set_one(&stored, "again", 10 * 1024);
    assert!(matches!(
        save(&store, &id, &mine, &changes).await,
        Err(StoreError::TooLarge { .. })
    ));
    assert!(load(&store, &id).await.data.contains_key("later"));
    assert!(!load(&store, &id).await.data.contains_key("again"));
    assert_size_kept(&target, &store, &id).await;
}

#[tokio::test]
async fn eight_concurrent_large_writes_leave_the_session_within_the_bound_on_a_node() {
    eight_concurrent_large_writes_leave_the_session_within_the_bound(Target::node()).await;
}

#[tokio::test]
async fn eight_concurrent_large_writes_leave_the_session_within_the_bound_on_a_cluster() {
    eight_concurrent_large_writes_leave_the_session_within_the_bound(Target::cluster()).await;
}

async fn a_session_stored_over_the_bound_loads_and_can_shrink(target: Target) {
    let store = target.store("over");
    let id = SessionId::from_bytes(rand_id());
    let key = store.key_of(&id);
    let t = now();
    // As the release before sizes wrote it, and over today's bound.
    let big = value(100 * 1024);
    let _: i64 = target
        .query(
            redis::cmd("HSET")
                .arg(&key)
                .arg("created")
                .arg(t.as_secs())
                .arg("expires")
                .arg((t + Duration::from_secs(600)).as_secs())
                .arg("d:big")
                .arg(big.as_bytes())
                .arg("d:small")
                .arg(value(10).as_bytes())
                .arg("label")
                .arg("phone"),
        )
        .await;
    let loaded = load(&store, &id).await;
    let size = loaded.encoded_len();
    assert!(size > BOUND);

    // Growing it is refused, and writes nothing.
    let (mine, changes) = set_one(&loaded, "more", 10);
    match save(&store, &id, &mine, &changes).await {
        Err(StoreError::TooLarge {
            size: refused,
            limit,
        }) => {
            assert_eq!(refused, size + "more".len() + value(10).as_bytes().len());
            assert_eq!(limit, BOUND);
        }
        other => panic!("a save growing a session over the bound answered {other:?}"),
    }
    assert_eq!(load(&store, &id).await, loaded);

    // Shrinking it is not, even while it stays over the bound.
    let (mine, changes) = set_one(&loaded, "big", 90 * 1024);
    assert_eq!(
        save(&store, &id, &mine, &changes).await.unwrap(),
        Updated::Kept
    );
    assert_size_kept(&target, &store, &id).await;
    let shrunk = load(&store, &id).await;
    assert!(shrunk.encoded_len() > BOUND && shrunk.encoded_len() < size);

    // Nor is a save that takes it back under, with a small value added.
    let mut mine = shrunk.clone();
    mine.data.remove("big");
    mine.data.insert("more".into(), value(10));
    let mut changes = Changes::default();
    changes.mark(DataKey::from("big"));
    changes.mark(DataKey::from("more"));
    assert_eq!(
        save(&store, &id, &mine, &changes).await.unwrap(),
        Updated::Kept
    );
    let last = load(&store, &id).await;
    assert_eq!(last.data.keys().collect::<Vec<_>>(), ["more", "small"]);
    assert_size_kept(&target, &store, &id).await;
}

#[tokio::test]
async fn a_session_stored_over_the_bound_loads_and_can_shrink_on_a_node() {
    a_session_stored_over_the_bound_loads_and_can_shrink(Target::node()).await;
}

#[tokio::test]
async fn a_session_stored_over_the_bound_loads_and_can_shrink_on_a_cluster() {
    a_session_stored_over_the_bound_loads_and_can_shrink(Target::cluster()).await;
}

// ---------------------------------------------------------------- flash

/// The request's copy with these flash messages.
fn with_flash(record: &Record, entries: Vec<(u64, Flash)>) -> Record {
    let mut mine = record.clone();
    mine.flash = FlashQueue::from_entries(entries, record.flash.capacity());
    mine
}

fn flash_changes(taken: Vec<u64>, pushed: Vec<u64>) -> Changes {
    Changes {
        flash: FlashChanges { taken, pushed },
        ..Changes::default()
    }
}

async fn a_message_read_once_is_not_shown_again(target: Target) {
    let store = target.store("read-once");
    let m1 = id_at(1_000, 1);
    let m2 = id_at(2_000, 2);
    let id = created(&store, &with_flash(&fresh(), vec![(m1, flash("m1"))])).await;
    let loaded = load(&store, &id).await;
    assert_eq!(messages(&loaded), ["m1"]);

    // A page reads m1; a request that loaded before it pushes m2 and
    // saves after it.
    let reader = with_flash(&loaded, vec![]);
    let pusher = with_flash(&loaded, vec![(m1, flash("m1")), (m2, flash("m2"))]);
    assert_eq!(
        save(&store, &id, &reader, &flash_changes(vec![m1], vec![]))
            .await
            .unwrap(),
        Updated::Kept
    );
    assert_eq!(
        save(&store, &id, &pusher, &flash_changes(vec![], vec![m2]))
            .await
            .unwrap(),
        Updated::Kept
    );

    assert_eq!(messages(&load(&store, &id).await), ["m2"]);
    assert_size_kept(&target, &store, &id).await;
}

#[tokio::test]
async fn a_message_read_once_is_not_shown_again_on_a_node() {
    a_message_read_once_is_not_shown_again(Target::node()).await;
}

#[tokio::test]
async fn a_message_read_once_is_not_shown_again_on_a_cluster() {
    a_message_read_once_is_not_shown_again(Target::cluster()).await;
}

async fn two_concurrent_pushes_both_land(target: Target) {
    let store = target.store("pushes");
    let id = created(&store, &fresh()).await;
    let loaded = load(&store, &id).await;
    let (a, b) = (id_at(5_000, 7), id_at(5_000, 9));
    let first = with_flash(&loaded, vec![(b, flash("b"))]);
    let second = with_flash(&loaded, vec![(a, flash("a"))]);
    assert_eq!(
        save(&store, &id, &first, &flash_changes(vec![], vec![b]))
            .await
            .unwrap(),
        Updated::Kept
    );
    assert_eq!(
        save(&store, &id, &second, &flash_changes(vec![], vec![a]))
            .await
            .unwrap(),
        Updated::Kept
    );
    // Oldest first, by id, whichever saved first.
    let stored = load(&store, &id).await;
    assert_eq!(messages(&stored), ["a", "b"]);
    assert_size_kept(&target, &store, &id).await;

    // Two more pushes, each request's queue holding 2 and dropping the
    // oldest for its own: the merged queue keeps the newest 2.
    let (c, d) = (id_at(6_000, 1), id_at(6_000, 2));
    let third = with_small_queue(&stored, vec![(b, flash("b")), (c, flash("c"))]);
    let fourth = with_small_queue(&stored, vec![(b, flash("b")), (d, flash("d"))]);
    assert_eq!(
        save(&store, &id, &third, &flash_changes(vec![a], vec![c]))
            .await
            .unwrap(),
        Updated::Kept
    );
    assert_eq!(
        save(&store, &id, &fourth, &flash_changes(vec![a], vec![d]))
            .await
            .unwrap(),
        Updated::Kept
    );
    assert_eq!(messages(&load(&store, &id).await), ["c", "d"]);
    assert_size_kept(&target, &store, &id).await;
}

fn with_small_queue(record: &Record, entries: Vec<(u64, Flash)>) -> Record {
    let mut mine = record.clone();
    mine.flash = FlashQueue::from_entries(entries, 2);
    mine
}

#[tokio::test]
async fn two_concurrent_pushes_both_land_on_a_node() {
    two_concurrent_pushes_both_land(Target::node()).await;
}

#[tokio::test]
async fn two_concurrent_pushes_both_land_on_a_cluster() {
    two_concurrent_pushes_both_land(Target::cluster()).await;
}

async fn a_queue_stored_whole_loads_and_shows_each_message_once(target: Target) {
    let store = target.store("whole");
    let id = SessionId::from_bytes(rand_id());
    let key = store.key_of(&id);
    let t = now();
    // As the release before message ids wrote it: the queue in one field.
    let mut queue = FlashQueue::default();
    queue.push(FlashLevel::Info, "old one".into());
    queue.push(FlashLevel::Error, "old two".into());
    let _: i64 = target
        .query(
            redis::cmd("HSET")
                .arg(&key)
                .arg("created")
                .arg(t.as_secs())
                .arg("expires")
                .arg((t + Duration::from_secs(600)).as_secs())
                .arg("d:small")
                .arg(value(10).as_bytes())
                .arg("flash")
                .arg(old_queue(&queue)),
        )
        .await;
    let loaded = load(&store, &id).await;
    assert_eq!(messages(&loaded), ["old one", "old two"]);
    let ids: Vec<u64> = loaded.flash.entries().map(|(i, _)| i).collect();
    assert_eq!(ids, [1, 2]);

    // Two requests load it: one reads the first message and pushes one, the
    // other reads the second and saves after.
    let new = id_at(t.as_secs() * 1000, 3);
    let first = with_flash(&loaded, vec![(2, flash("old two")), (new, flash("new"))]);
    let second = with_flash(&loaded, vec![(1, flash("old one"))]);
    assert_eq!(
        save(&store, &id, &first, &flash_changes(vec![1], vec![new]))
            .await
            .unwrap(),
        Updated::Kept
    );
    let names = target.field_names(&key).await;
    assert!(!names.contains(&"flash".to_owned()), "{names:?}");
    assert!(
        names.contains(&"f:0000000000000002".to_owned()),
        "{names:?}"
    );
    assert_size_kept(&target, &store, &id).await;
    assert_eq!(
        save(&store, &id, &second, &flash_changes(vec![2], vec![]))
            .await
            .unwrap(),
        Updated::Kept
    );
    assert_eq!(messages(&load(&store, &id).await), ["new"]);
    assert_size_kept(&target, &store, &id).await;
}

#[tokio::test]
async fn a_queue_stored_whole_loads_and_shows_each_message_once_on_a_node() {
    a_queue_stored_whole_loads_and_shows_each_message_once(Target::node()).await;
}

#[tokio::test]
async fn a_queue_stored_whole_loads_and_shows_each_message_once_on_a_cluster() {
    a_queue_stored_whole_loads_and_shows_each_message_once(Target::cluster()).await;
}

// ------------------------------------------------------------ emptiness

async fn a_session_left_with_only_a_user_label_or_expiry_is_kept(target: Target) {
    let store = target.store("kept");
    let mut cases: Vec<(&str, Record)> = Vec::new();
    let mut r = fresh();
    r.label = Some("phone".into());
    cases.push(("label", r));
    let mut r = fresh();
    r.expiry = Expiry::BrowserSession;
    cases.push(("expiry", r));
    let mut r = fresh();
    r.user = Some(format!(
        "ada-{}",
        SessionId::from_bytes(rand_id()).to_base64()
    ));
    cases.push(("user", r));
    for (what, record) in cases {
        let id = created(&store, &record).await;
        let loaded = load(&store, &id).await;
        let mut mine = loaded.clone();
        mine.data.clear();
        let mut changes = Changes::default();
        changes.mark(DataKey::from("small"));
        assert_eq!(
            save(&store, &id, &mine, &changes).await.unwrap(),
            Updated::Kept,
            "{what}"
        );
        let kept = load(&store, &id).await;
        assert!(kept.data.is_empty() && !kept.is_empty(), "{what}");
        assert_size_kept(&target, &store, &id).await;
    }
    // With none of them, it goes.
    let id = created(&store, &fresh()).await;
    let mut mine = load(&store, &id).await;
    mine.data.clear();
    let mut changes = Changes::default();
    changes.mark(DataKey::from("small"));
    assert_eq!(
        save(&store, &id, &mine, &changes).await.unwrap(),
        Updated::Emptied
    );
}

#[tokio::test]
async fn a_session_left_with_only_a_user_label_or_expiry_is_kept_on_a_node() {
    a_session_left_with_only_a_user_label_or_expiry_is_kept(Target::node()).await;
}

#[tokio::test]
async fn a_session_left_with_only_a_user_label_or_expiry_is_kept_on_a_cluster() {
    a_session_left_with_only_a_user_label_or_expiry_is_kept(Target::cluster()).await;
}

/// A queue as the previous release wrote it, whole, in one field.
fn old_queue(queue: &http_sessions_core::store::FlashQueue) -> Vec<u8> {
    let mut bytes = Vec::new();
    http_sessions_core::store::codec::write_flashes(&mut bytes, queue);
    bytes
}
