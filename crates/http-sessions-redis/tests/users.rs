//! Users' sessions on real Redis servers: what a signed-in request costs
//! Redis against an anonymous one (counted by the server, `INFO
//! commandstats`), `end_all` racing a client that renews in a loop, a
//! login whose session lands after it, and a re-binding held up by a
//! paused server; the eviction policies; and indexes written by the
//! release before generations. Servers of the tests' own (`support`),
//! plus the cluster at `REDIS_CLUSTER_URLS` that `cargo xtask redis`
//! starts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // The conformance harness is for the other test files.
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use http_sessions_core::store::{
    Changes, EndAll, IdSource, Loaded, RandomIds, Record, SessionId, SessionStore, UnixTime,
    Update, UserIndex, Value,
};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, StoreError, UserSessions};
use http_sessions_redis::RedisStore;
use http_sessions_redis::redis;
use support::{Spawned, free_port, random_prefix};
use tower::ServiceExt;

const SECRET: [u8; 32] = [9; 32];
/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);

fn keyring() -> Keyring {
    Keyring::new(Key::from_bytes(&SECRET).unwrap()).unwrap()
}

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(keyring())
        .build()
        .unwrap()
}

async fn login(session: Session) -> &'static str {
    session.bind_user("ada").unwrap();
    session.insert("k", "v").unwrap();
    "in"
}

async fn counter(session: Session) -> String {
    let n = session.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    session.insert("n", n).unwrap();
    n.to_string()
}

async fn renew(session: Session) -> String {
    session.renew();
    session.user().unwrap_or_else(|| "anonymous".into())
}

async fn whoami(session: Session) -> String {
    session.user().unwrap_or_else(|| "anonymous".into())
}

fn app(store: RedisStore) -> (Router, UserSessions) {
    let layer = SessionLayer::new(store, &settings());
    let users = layer.user_sessions();
    let router = Router::new()
        .route("/login", get(login))
        .route("/counter", get(counter))
        .route("/renew", get(renew))
        .route("/whoami", get(whoami))
        .layer(layer);
    (router, users)
}

/// The status, the new cookie if any, and the body.
async fn send(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(value) = cookie {
        request = request.header(COOKIE, format!("session={value}"));
    }
    let response = tokio::time::timeout(
        HANG_GUARD,
        app.clone().oneshot(request.body(Body::empty()).unwrap()),
    )
    .await
    .expect("the request hung")
    .unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().unwrap().split(';').next())
        .and_then(|pair| pair.strip_prefix("session="))
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

fn node() -> Spawned {
    let port = free_port();
    Spawned::start(port, Spawned::dir("users", port), [] as [&str; 0])
}

fn url(server_port: u16) -> String {
    format!("redis://127.0.0.1:{server_port}")
}

fn port_of(server: &Spawned) -> u16 {
    // The directory is named after the port.
    let name = server
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name.rsplit('-').next().unwrap().parse().unwrap()
}

async fn client(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A Redis Cluster of one node of the test's own, owning every slot, so
/// that its counters are this test's alone.
async fn one_node_cluster() -> Spawned {
    let port = free_port();
    let server = Spawned::start(
        port,
        Spawned::dir("users-cluster", port),
        ["--cluster-enabled", "yes"],
    );
    let mut conn = client(&url(port)).await;
    let () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..2000 {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
            .unwrap();
        if info.lines().any(|l| l.trim() == "cluster_state:ok") {
            return server;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the one-node cluster never got ok");
}

/// `cmdstat_<name>` calls since the last `CONFIG RESETSTAT`, without the
/// meter's own `info` and `config`.
async fn commands(conn: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info" && !name.starts_with("config"))
        .collect()
}

async fn reset(conn: &mut redis::aio::MultiplexedConnection) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .unwrap();
}

const ROUNDS: u64 = 5;

/// What `ROUNDS` saves of a counter cost Redis, anonymous and signed in.
async fn counted(
    store: RedisStore,
    server: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (app, _) = app(store);
    let mut meter = client(server).await;
    // Warm-up: connections open, scripts load, the policy is read.
    let (_, anonymous, _) = send(&app, "/counter", None).await;
    let anonymous = anonymous.unwrap();
    let (_, signed_in, _) = send(&app, "/login", None).await;
    let signed_in = signed_in.unwrap();
    assert_eq!(send(&app, "/counter", Some(&signed_in)).await.2, "1");
    assert_eq!(send(&app, "/whoami", Some(&signed_in)).await.2, "ada");

    reset(&mut meter).await;
    for _ in 0..ROUNDS {
        assert_eq!(
            send(&app, "/counter", Some(&anonymous)).await.0,
            StatusCode::OK
        );
    }
    let anonymous = commands(&mut meter).await;
    reset(&mut meter).await;
    for _ in 0..ROUNDS {
        assert_eq!(
            send(&app, "/counter", Some(&signed_in)).await.0,
            StatusCode::OK
        );
    }
    (anonymous, commands(&mut meter).await)
}

fn assert_same_commands(
    topology: &str,
    anonymous: &BTreeMap<String, u64>,
    signed_in: &BTreeMap<String, u64>,
) {
    println!("{topology}: {ROUNDS} anonymous saves: {anonymous:?}");
    println!("{topology}: {ROUNDS} signed-in saves: {signed_in:?}");
    assert_eq!(
        anonymous, signed_in,
        "{topology}: a signed-in save costs what an anonymous one does"
    );
    assert_eq!(signed_in.get("evalsha"), Some(&ROUNDS), "{topology}");
    assert_eq!(signed_in.get("hgetall"), Some(&ROUNDS), "{topology}");
    for index in ["zadd", "ttl", "zremrangebyscore", "zscore", "eval"] {
        assert!(
            !signed_in.contains_key(index),
            "{topology}: {index} on a plain save"
        );
    }
}

#[tokio::test]
async fn a_signed_in_save_costs_the_commands_of_an_anonymous_one_on_a_node() {
    let server = node();
    let at = url(port_of(&server));
    let store = RedisStore::from_url(&at)
        .unwrap()
        .with_prefix(random_prefix("cost"));
    let (anonymous, signed_in) = counted(store, &at).await;
    assert_same_commands("node", &anonymous, &signed_in);
}

#[tokio::test]
async fn a_signed_in_save_costs_the_commands_of_an_anonymous_one_on_a_cluster() {
    let server = one_node_cluster().await;
    let at = url(port_of(&server));
    let store = RedisStore::cluster([at.clone()])
        .unwrap()
        .with_prefix(random_prefix("cost"));
    let (anonymous, signed_in) = counted(store, &at).await;
    assert_same_commands("cluster", &anonymous, &signed_in);
}

// ---------------------------------------------------------------- races

fn cluster_urls() -> Vec<String> {
    std::env::var("REDIS_CLUSTER_URLS")
        .expect("REDIS_CLUSTER_URLS is not set: run `cargo xtask redis`, which starts a cluster")
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

/// A client renews its session in a loop while `end_all` runs; once
/// `end_all` has returned and the renewal under way has landed, the
/// client's latest cookie names no session of the user.
async fn a_renewing_client_is_ended(store: impl Fn() -> RedisStore) {
    for round in 0..12 {
        let (app, users) = app(store());
        let (_, cookie, _) = send(&app, "/login", None).await;
        let mut cookie = cookie.unwrap();
        let (renewed_tx, mut renewed) = tokio::sync::mpsc::channel::<()>(64);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = tokio::spawn({
            let (app, stop) = (app.clone(), stop.clone());
            async move {
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    match send(&app, "/renew", Some(&cookie)).await {
                        (StatusCode::OK, Some(next), body) if body == "ada" => {
                            cookie = next;
                            let _ = renewed_tx.try_send(());
                        }
                        // Ended: the session is gone, or the renew refused.
                        _ => break,
                    }
                }
                cookie
            }
        });
        // end_all while the client is renewing.
        renewed.recv().await.unwrap();
        users.end_all("ada", None).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::Release);
        let last = client.await.unwrap();
        let (status, _, body) = send(&app, "/whoami", Some(&last)).await;
        assert!(
            status == StatusCode::CONFLICT || body == "anonymous",
            "round {round}: the renewing client is still signed in ({status}, {body})"
        );
        assert!(users.list("ada").await.unwrap().is_empty(), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_all_ends_a_client_renewing_in_a_loop_on_a_node() {
    let server = node();
    let at = url(port_of(&server));
    a_renewing_client_is_ended(|| {
        RedisStore::from_url(&at)
            .unwrap()
            .with_prefix(random_prefix("renew"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_all_ends_a_client_renewing_in_a_loop_on_a_cluster() {
    let urls = cluster_urls();
    a_renewing_client_is_ended(|| {
        RedisStore::cluster(urls.clone())
            .unwrap()
            .with_prefix(random_prefix("renew"))
    })
    .await;
}

fn millis_now() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn bound(user: &str, created: UnixTime, generation: u64) -> Record {
    let mut record = Record::empty(created, created + Duration::from_secs(600), 4);
    record.data.insert("k".into(), Value::encode("v").unwrap());
    record.user = Some(user.to_owned());
    record.generation = generation;
    record
}

fn now() -> UnixTime {
    UnixTime::from_millis(millis_now())
}

/// `end_all` at the store, as the layer calls it at `t`.
async fn end_all_result(
    store: &dyn UserIndex,
    user: &str,
    t: UnixTime,
) -> Result<usize, StoreError> {
    let end = EndAll {
        keep: None,
        now: t,
        floor: millis_now() + 1,
        remember_until: t + Duration::from_secs(3600),
    };
    Ok(store.end_all(user, end).await?.sessions)
}

async fn end_all(store: &dyn UserIndex, user: &str, t: UnixTime) -> usize {
    end_all_result(store, user, t).await.unwrap()
}

fn fresh_id() -> SessionId {
    RandomIds::new().next_id().unwrap()
}

/// On a Cluster a login's index entry is written before its session. A
/// login whose entry is in the index when `end_all` starts and whose
/// session lands after it (here: the entry written by hand, as the
/// login's first step writes it, and the session's create sent after
/// `end_all` returned) is refused as gone, not as taken: the manager does
/// not retry it under a fresh id.
#[tokio::test]
async fn a_login_whose_session_lands_after_end_all_is_refused_on_a_cluster() {
    let urls = cluster_urls();
    let store = RedisStore::cluster(urls.clone())
        .unwrap()
        .with_prefix(random_prefix("late"));
    let cluster = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut conn = cluster.get_async_connection().await.unwrap();
    let began = millis_now();
    let t = now();
    let id = fresh_id();
    let ends = t + Duration::from_secs(600);
    let () = redis::cmd("ZADD")
        .arg(store.user_key_of("olga"))
        .arg(ends.as_secs())
        .arg(id.to_base64())
        .query_async::<i64>(&mut conn)
        .await
        .map(drop)
        .unwrap();
    let users = store.users().unwrap();
    assert_eq!(end_all(users, "olga", t).await, 0);
    let late = store.create(&id, &bound("olga", t, began), ends).await;
    assert!(matches!(late, Err(StoreError::Gone)), "{late:?}");
    assert_eq!(store.load(&id, t).await.unwrap(), None);
    assert!(users.list("olga", t).await.unwrap().is_empty());
}

/// A session moves from A to B while `end_all(A)` runs, each store call
/// held up by a paused server (`SIGSTOP`; the calls queue on the store's
/// connection, in the order sent, and land after `SIGCONT`), in both
/// orders: B's session is never ended, and A's index never ends it.
#[tokio::test]
async fn a_rebinding_held_up_during_end_all_is_never_ended_on_a_node() {
    let server = node();
    let at = url(port_of(&server));
    for rebind_first in [true, false] {
        let store = RedisStore::from_url(&at)
            .unwrap()
            .with_prefix(random_prefix("rebind"));
        let timeout = Settings::builder()
            .with_cookie_name("session")
            .with_store_timeout(HANG_GUARD / 2);
        store.use_settings(&timeout.with_keyring(keyring()).build().unwrap());
        let t = now();
        let id = fresh_id();
        let ends = t + Duration::from_secs(600);
        store
            .create(&id, &bound("amy", t, millis_now()), ends)
            .await
            .unwrap();

        server.signal("-STOP");
        let rebind = {
            let store = store.clone();
            async move {
                let moved = bound("ben", t, millis_now());
                let changes = Changes {
                    binding: true,
                    ..Changes::default()
                };
                let update = Update {
                    record: &moved,
                    changes: &changes,
                    expires: moved.expires,
                    ends,
                    now: t,
                    stored_user: Some("amy"),
                    max_size: usize::MAX,
                };
                store.update(&id, update).await
            }
        };
        let ending = {
            let store = store.clone();
            async move { end_all_result(&store, "amy", t).await }
        };
        // One thread: each task runs, in the order spawned, until it waits
        // on the paused server, so its command is queued in that order.
        let (rebound, ended) = if rebind_first {
            let rebound = tokio::spawn(rebind);
            tokio::task::yield_now().await;
            let ended = tokio::spawn(ending);
            tokio::task::yield_now().await;
            server.signal("-CONT");
            (rebound.await.unwrap(), ended.await.unwrap())
        } else {
            let ended = tokio::spawn(ending);
            tokio::task::yield_now().await;
            let rebound = tokio::spawn(rebind);
            tokio::task::yield_now().await;
            server.signal("-CONT");
            (rebound.await.unwrap(), ended.await.unwrap())
        };
        let ended = ended.unwrap();
        let loaded = store.load(&id, t).await.unwrap();
        println!(
            "rebind first: {rebind_first}: the rebind answered {rebound:?}, end_all(amy) ended {ended}, \
             the session is {}",
            match &loaded {
                Some(Loaded::Live(r)) => format!("live, {:?}'s", r.user),
                other => format!("{other:?}"),
            }
        );
        assert!(rebound.is_ok(), "{rebound:?}");
        match loaded {
            Some(Loaded::Live(record)) => {
                assert_eq!(
                    record.user.as_deref(),
                    Some("ben"),
                    "rebind first: {rebind_first}"
                );
                assert_eq!(ended, 0, "amy's end_all ended ben's session");
            }
            other => panic!("rebind first {rebind_first}: ben's session is {other:?}"),
        }
        assert_eq!(
            store.list("ben", t).await.unwrap().len(),
            1,
            "listed for ben"
        );
        assert!(store.list("amy", t).await.unwrap().is_empty());
        // amy's index, ended again, still leaves it alone.
        assert_eq!(end_all(&store, "amy", t).await, 0);
        assert!(!store.end("amy", &id, t).await.unwrap());
        assert!(matches!(
            store.load(&id, t).await.unwrap(),
            Some(Loaded::Live(_))
        ));
    }
}

/// The same on a Cluster: A's index lists a session that is now B's, and
/// end_all(A) leaves it alone.
#[tokio::test]
async fn a_rebound_session_is_never_ended_by_the_old_users_end_all_on_a_cluster() {
    let store = RedisStore::cluster(cluster_urls())
        .unwrap()
        .with_prefix(random_prefix("rebind"));
    let t = now();
    let id = fresh_id();
    let ends = t + Duration::from_secs(600);
    store
        .create(&id, &bound("amy", t, millis_now()), ends)
        .await
        .unwrap();
    let moved = bound("ben", t, millis_now());
    let changes = Changes {
        binding: true,
        ..Changes::default()
    };
    // A stale entry: amy's index keeps the id as if the rebind's last step
    // (amy's index letting it go) never came.
    let raw = redis::cluster::ClusterClient::new(cluster_urls()).unwrap();
    let mut conn = raw.get_async_connection().await.unwrap();
    let update = Update {
        record: &moved,
        changes: &changes,
        expires: moved.expires,
        ends,
        now: t,
        stored_user: Some("amy"),
        max_size: usize::MAX,
    };
    store.update(&id, update).await.unwrap();
    let () = redis::cmd("ZADD")
        .arg(store.user_key_of("amy"))
        .arg(ends.as_secs())
        .arg(id.to_base64())
        .query_async::<i64>(&mut conn)
        .await
        .map(drop)
        .unwrap();
    assert_eq!(end_all(&store, "amy", t).await, 0);
    assert!(!store.end("amy", &id, t).await.unwrap());
    match store.load(&id, t).await.unwrap() {
        Some(Loaded::Live(record)) => assert_eq!(record.user.as_deref(), Some("ben")),
        other => panic!("ben's session is {other:?}"),
    }
    assert_eq!(store.list("ben", t).await.unwrap().len(), 1);
}

// ---------------------------------------------------------- old layout

/// A session and a user's index as the release before generations wrote
/// them (no `gen` field, no `gen` member, the entry scored with its
/// time) load, list and end through this version.
#[tokio::test]
async fn an_index_of_the_previous_release_loads_and_ends() {
    let server = node();
    let at = url(port_of(&server));
    let store = RedisStore::from_url(&at)
        .unwrap()
        .with_prefix(random_prefix("old"));
    let mut conn = client(&at).await;
    let t = now();
    let id = fresh_id();
    let key = store.key_of(&id);
    let value = Value::encode("v").unwrap();
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("created")
        .arg(t.as_secs())
        .arg("expires")
        .arg(t.as_secs() + 600)
        .arg("d:k")
        .arg(value.as_bytes())
        .arg("user")
        .arg("pam")
        .query_async::<i64>(&mut conn)
        .await
        .map(drop)
        .unwrap();
    let index = store.user_key_of("pam");
    let () = redis::pipe()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(600)
        .ignore()
        .cmd("ZADD")
        .arg(&index)
        .arg(t.as_secs() + 600)
        .arg(id.to_base64())
        .ignore()
        .cmd("EXPIRE")
        .arg(&index)
        .arg(600)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let Some(Loaded::Live(record)) = store.load(&id, t).await.unwrap() else {
        panic!("the old session does not load");
    };
    assert_eq!(
        (record.user.as_deref(), record.generation),
        (Some("pam"), 0)
    );
    assert_eq!(store.list("pam", t).await.unwrap().len(), 1);
    assert_eq!(end_all(&store, "pam", t).await, 1);
    assert_eq!(store.load(&id, t).await.unwrap(), None);
    // Its renew (the record as loaded, generation 0 never stamped) is of
    // an ended generation once the manager gives it the time it began.
    let mut renewed = record.clone();
    renewed.generation = millis_now().saturating_sub(60_000);
    let again = store
        .create(&fresh_id(), &renewed, t + Duration::from_secs(600))
        .await;
    assert!(matches!(again, Err(StoreError::Gone)), "{again:?}");
}

// ---------------------------------------------------------- eviction

/// The warnings a test saw, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct Text<'a>(&'a mut String);

impl tracing::field::Visit for Text<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut Text(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A node with little memory under `policy`, filled with other sessions
/// until it evicts, while one user's session is only read: then end_all.
/// Returns whether the user's session was ended, and the warnings.
async fn under_eviction(policy: &str) -> (bool, Vec<String>) {
    let server = node();
    let at = url(port_of(&server));
    let mut conn = client(&at).await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("used_memory:"))
        .unwrap()
        .parse()
        .unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 2 * 1024 * 1024)
        .arg("maxmemory-policy")
        .arg(policy)
        .query_async(&mut conn)
        .await
        .unwrap();

    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    let store = RedisStore::from_url(&at).unwrap().with_prefix("evict:");
    let t = now();
    let id = fresh_id();
    // Longer-lived than every filler, and read all along, so that it
    // outlasts them under each policy: the question is its index.
    let mut session = bound("quin", t, millis_now());
    session.expires = t + Duration::from_secs(3000);
    store
        .create(&id, &session, t + Duration::from_secs(3600))
        .await
        .unwrap();
    let filler = Value::encode("x".repeat(1000).as_str()).unwrap();
    let mut evicted = 0;
    for n in 0u64.. {
        let mut record = Record::empty(t, t + Duration::from_secs(60 + n % 1200), 4);
        record.data.insert("filler".into(), filler.clone());
        store
            .create(&fresh_id(), &record, record.expires)
            .await
            .unwrap();
        if n % 10 == 0 {
            // The user's session is read, never written.
            let _ = store.load(&id, t).await.unwrap();
        }
        if n % 100 == 0 {
            let stats: String = redis::cmd("INFO")
                .arg("stats")
                .query_async(&mut conn)
                .await
                .unwrap();
            evicted = stats
                .lines()
                .find_map(|l| l.trim().strip_prefix("evicted_keys:"))
                .unwrap()
                .parse::<u64>()
                .unwrap();
            if evicted > 2000 {
                break;
            }
        }
    }
    let session_left = store.load(&id, t).await.unwrap().is_some();
    let index_left: bool = redis::cmd("EXISTS")
        .arg(store.user_key_of("quin"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _ = end_all(&store, "quin", t).await;
    let ended = store.load(&id, t).await.unwrap().is_none();
    let warnings = captured.0.lock().unwrap().clone();
    println!(
        "{policy}: {evicted} keys evicted; before end_all the read-only session {}, its index {}; after, the session {}; warnings: {warnings:?}",
        if session_left {
            "was there"
        } else {
            "had been evicted"
        },
        if index_left {
            "was there"
        } else {
            "had been evicted"
        },
        if ended { "gone" } else { "STILL LIVE" },
    );
    (ended, warnings)
}

#[tokio::test]
async fn under_each_eviction_policy_end_all_holds_or_the_store_warned() {
    for policy in ["volatile-ttl", "noeviction", "volatile-lru", "allkeys-lru"] {
        if policy == "noeviction" {
            // Nothing is evicted: a full Redis refuses writes instead.
            continue;
        }
        let (ended, warnings) = under_eviction(policy).await;
        let warned = warnings.iter().any(|w| w.contains(policy));
        match policy {
            "volatile-ttl" => {
                assert!(ended, "{policy}: end_all missed the session");
                assert!(!warned, "{policy}: warned {warnings:?}");
            }
            _ => assert!(
                warned,
                "{policy}: no warning naming the policy: {warnings:?}"
            ),
        }
        assert!(ended || warned, "{policy}");
    }
}
