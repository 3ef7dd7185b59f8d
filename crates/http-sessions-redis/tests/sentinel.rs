//! [`RedisStore::sentinel`] against a real Sentinel group: a primary, a
//! replica and three Sentinels, started by each test on free ports and
//! killed when it ends (a failover changes the group, so no two tests
//! share one).
//!
//! The store passes cases of the conformance suite through the group; when
//! the primary dies, or an operator moves it, requests answer 503 (never
//! another session's data, never a fresh session in place of the real one)
//! until the Sentinels promote the replica, and are then served by it with
//! every session that had reached the replica.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use http_sessions_core::store::{IdSource, RandomIds, SessionStore, UnixTime};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, StoreError, ValueError};
use http_sessions_redis::RedisStore;
use http_sessions_redis::redis::{self, AsyncCommands};
use support::{Reach, Spawned, free_port};
use tokio::time::Instant;
use tower::ServiceExt;

/// The name the Sentinels monitor the primary under.
const SERVICE: &str = "sessions-primary";

/// How long the Sentinels wait before they call a silent primary down.
/// Production groups use more (Redis's default is 30 s): a failover then
/// takes that much longer, and nothing else changes.
const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// The stated bound on a failover as the application sees it, from the
/// primary's death to the first request served by the new primary: the
/// Sentinels' `DOWN_AFTER`, their election and the promotion take a few
/// seconds; this leaves room for a slow CI machine.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

/// How long a group may take to form (Sentinels finding the replica and
/// each other), and how long a request may take: only against a hang.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Between two requests while waiting for the failover.
const POLL_EVERY: Duration = Duration::from_millis(50);

// ------------------------------------------------------------------- the group

/// A primary, a replica and three Sentinels, each killed on drop.
struct Group {
    /// `None` once killed.
    primary: Option<Spawned>,
    primary_port: u16,
    /// Kept for its drop, which stops it.
    _replica: Spawned,
    replica_port: u16,
    sentinels: Vec<(Spawned, u16)>,
}

impl Group {
    /// Starts the group and returns once it can fail over: each Sentinel
    /// knows the replica and the two other Sentinels, and the replica is
    /// in sync with the primary.
    async fn start() -> Self {
        let primary_port = free_port();
        let primary = Spawned::start(
            primary_port,
            Spawned::dir("sentinel-primary", primary_port),
            Vec::<&str>::new(),
        );
        let replica_port = free_port();
        let replica = Spawned::start(
            replica_port,
            Spawned::dir("sentinel-replica", replica_port),
            ["--replicaof", "127.0.0.1", &primary_port.to_string()],
        );
        let config = format!(
            "sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {SERVICE} {}\n\
             sentinel failover-timeout {SERVICE} 10000\n",
            DOWN_AFTER.as_millis()
        );
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let dir = Spawned::dir("sentinel", port);
                (Spawned::sentinel(port, dir, &config), port)
            })
            .collect();
        let group = Self {
            primary: Some(primary),
            primary_port,
            _replica: replica,
            replica_port,
            sentinels,
        };
        group.wait_until_formed().await;
        group
    }

    /// The Sentinels' URLs, as an application lists them.
    fn urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(_, port)| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    async fn wait_until_formed(&self) {
        let started = Instant::now();
        loop {
            let mut formed = true;
            for (_, port) in &self.sentinels {
                let master = sentinel_master(*port).await;
                formed &= master.get("num-slaves").map(String::as_str) == Some("1")
                    && master.get("num-other-sentinels").map(String::as_str) == Some("2");
            }
            let mut info = redis::cmd("INFO");
            info.arg("replication");
            let replication: String = info
                .query_async(&mut admin(self.replica_port).await)
                .await
                .unwrap();
            if formed && replication.contains("master_link_status:up") {
                return;
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "the Sentinel group did not form within {HANG_GUARD:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until every write the primary took has reached the replica:
    /// the replica's replication offset has caught up with the primary's.
    /// (`WAIT` on a connection of its own would not do: it waits only for
    /// that connection's own writes, and this one made none.)
    async fn replicated(&self) {
        let started = Instant::now();
        let target = repl_offset(self.primary_port, "master_repl_offset").await;
        while repl_offset(self.replica_port, "slave_repl_offset").await < target {
            assert!(
                started.elapsed() < HANG_GUARD,
                "the replica did not catch up with the primary within {HANG_GUARD:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Kills the primary outright (SIGKILL): no goodbye to its clients.
    fn kill_primary(&mut self) {
        drop(self.primary.take());
    }

    /// Asks a Sentinel to move the primary to the replica now, as an
    /// operator does before maintenance; the old primary becomes a replica.
    async fn switch_over(&self) {
        let (_, port) = &self.sentinels[0];
        let mut failover = redis::cmd("SENTINEL");
        failover.arg("FAILOVER").arg(SERVICE);
        let () = failover.query_async(&mut admin(*port).await).await.unwrap();
    }

    /// The port of the node the Sentinels name as the primary.
    async fn primary_now(&self) -> u16 {
        let master = sentinel_master(self.sentinels[0].1).await;
        master["port"].parse().unwrap()
    }
}

/// A connection of the test's own to the server on `port`.
async fn admin(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// What the Sentinel on `port` knows of the primary.
async fn sentinel_master(port: u16) -> HashMap<String, String> {
    let mut master = redis::cmd("SENTINEL");
    master.arg("MASTER").arg(SERVICE);
    master.query_async(&mut admin(port).await).await.unwrap()
}

// ------------------------------------------------------------------ the app

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
}

/// Counts this session's visits: a load and an update on every request.
async fn count(session: Session) -> Result<String, ValueError> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(visits.to_string())
}

/// The visits counted so far, without writing.
async fn visits(session: Session) -> Result<String, ValueError> {
    Ok(session.get::<u64>("visits")?.unwrap_or(0).to_string())
}

fn app(store: RedisStore) -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/visits", get(visits))
        .layer(SessionLayer::new(store, &settings()))
}

/// A request's status and body, and the session cookie it set, if any.
async fn send(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
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
    let cookie = response.headers().get(SET_COOKIE).map(|v| {
        let pair = v.to_str().unwrap().split(';').next().unwrap();
        pair.strip_prefix("session=").unwrap().to_owned()
    });
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), cookie)
}

/// Visitors who each counted `visits` visits; their cookies.
async fn visitors(app: &Router, how_many: usize, visits: u64) -> Vec<String> {
    let mut cookies = Vec::new();
    for _ in 0..how_many {
        let (status, body, cookie) = send(app, "/count", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
        let cookie = cookie.expect("the first visit sets a cookie");
        for n in 2..=visits {
            let (status, body, _) = send(app, "/count", Some(&cookie)).await;
            assert_eq!((status, body), (StatusCode::OK, n.to_string()));
        }
        cookies.push(cookie);
    }
    cookies
}

/// Reads every visitor's count until all are served, from `since`:
/// each request answers either 503 or the visitor's true count, never
/// anything else. Returns how long it took and how many 503s were met.
async fn served_again(
    app: &Router,
    cookies: &[String],
    visits: u64,
    since: Instant,
) -> (Duration, usize) {
    let mut unavailable = 0;
    let mut waiting: Vec<&String> = cookies.iter().collect();
    while !waiting.is_empty() {
        assert!(
            since.elapsed() < FAILOVER_BOUND,
            "not served again within {FAILOVER_BOUND:?}; {unavailable} requests answered 503"
        );
        let mut still = Vec::new();
        for cookie in waiting {
            let (status, body, set_cookie) = send(app, "/visits", Some(cookie)).await;
            match status {
                StatusCode::OK => assert_eq!(
                    body,
                    visits.to_string(),
                    "a served request carries the visitor's own session"
                ),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(set_cookie, None, "the client's cookie is left alone");
                    unavailable += 1;
                    still.push(cookie);
                }
                other => panic!("answered {other} during the failover: {body}"),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
    (since.elapsed(), unavailable)
}

/// Every visitor counts one more visit: writes land on the new primary.
async fn write_again(app: &Router, cookies: &[String], visits: u64) {
    for cookie in cookies {
        let (status, body, _) = send(app, "/count", Some(cookie)).await;
        assert_eq!((status, body), (StatusCode::OK, (visits + 1).to_string()));
    }
}

// ---------------------------------------------------------------------- tests

#[tokio::test]
async fn when_the_primary_dies_the_promoted_replica_serves_every_session() {
    let mut group = Group::start().await;
    let app = app(RedisStore::sentinel(group.urls(), SERVICE).unwrap());
    let cookies = visitors(&app, 10, 3).await;
    group.replicated().await;

    let killed = Instant::now();
    group.kill_primary();
    let (took, unavailable) = served_again(&app, &cookies, 3, killed).await;
    println!(
        "failover (primary killed): served again after {took:?}, \
         {unavailable} request(s) answered 503 on the way"
    );
    assert!(unavailable > 0, "the dead primary was noticed");
    assert_eq!(group.primary_now().await, group.replica_port);
    write_again(&app, &cookies, 3).await;
}

#[tokio::test]
async fn a_switch_over_moves_every_session_to_the_new_primary() {
    let group = Group::start().await;
    let app = app(RedisStore::sentinel(group.urls(), SERVICE).unwrap());
    let cookies = visitors(&app, 10, 2).await;
    group.replicated().await;
    let old_primary = group.primary_port;

    let asked = Instant::now();
    group.switch_over().await;
    // Until the switch is done, the old primary may still serve: wait for
    // the Sentinels to name the new one, then for every session to be
    // served through it.
    while group.primary_now().await == old_primary {
        assert!(asked.elapsed() < FAILOVER_BOUND, "no switch-over");
        tokio::time::sleep(POLL_EVERY).await;
    }
    let (took, unavailable) = served_again(&app, &cookies, 2, asked).await;
    println!(
        "switch-over: served again after {took:?}, \
         {unavailable} request(s) answered 503 on the way"
    );
    write_again(&app, &cookies, 2).await;
    // The writes went to the new primary, not the demoted one.
    let visits: HashMap<String, String> = {
        let mut primary = admin(group.replica_port).await;
        let keys: Vec<String> = primary.keys("session:*").await.unwrap();
        assert_eq!(keys.len(), cookies.len());
        primary.hgetall(&keys[0]).await.unwrap()
    };
    assert!(visits.contains_key("d:visits"), "{visits:?}");
}

#[tokio::test]
async fn a_service_the_sentinels_do_not_know_is_unavailable_and_named() {
    let group = Group::start().await;
    let store = RedisStore::sentinel(group.urls(), "no-such-primary").unwrap();
    let id = RandomIds::new().next_id().unwrap();
    let error = store
        .load(&id, UnixTime::from_secs(1_700_000_000))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("no Sentinel names a primary that is up"),
        "{message}"
    );
}

#[test]
fn a_sentinel_store_needs_a_sentinel_and_a_service_name() {
    assert!(RedisStore::sentinel(Vec::<String>::new(), SERVICE).is_err());
    assert!(RedisStore::sentinel(["redis://127.0.0.1:26379"], "").is_err());
    assert!(RedisStore::sentinel(["http://127.0.0.1:26379"], SERVICE).is_err());
}

// --------------------------------------------------------- conformance harness

/// Stores that find the primary through the group's Sentinels.
struct ThroughSentinels {
    group: Group,
}

#[async_trait]
impl Reach for ThroughSentinels {
    fn store(&self) -> RedisStore {
        RedisStore::sentinel(self.group.urls(), SERVICE)
            .unwrap()
            .with_prefix(support::random_prefix("sentinel"))
    }

    async fn keys(&self, prefix: &str) -> usize {
        let mut primary = admin(self.group.primary_port).await;
        let keys: Vec<String> = primary.keys(format!("{prefix}*")).await.unwrap();
        keys.len()
    }
}

#[tokio::test]
async fn a_store_through_sentinels_passes_the_conformance_cases() {
    let group = Group::start().await;
    support::passes_the_conformance_cases(ThroughSentinels { group }).await;
}

/// The replication offset `field` that `INFO replication` of the server on
/// `port` reports.
async fn repl_offset(port: u16, field: &str) -> u64 {
    let mut info = redis::cmd("INFO");
    info.arg("replication");
    let replication: String = info.query_async(&mut admin(port).await).await.unwrap();
    replication
        .lines()
        .find_map(|line| line.trim().strip_prefix(field)?.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("INFO replication of {port} has no {field}: {replication}"))
}
