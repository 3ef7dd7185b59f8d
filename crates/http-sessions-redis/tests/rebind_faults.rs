//! A session of user A re-bound to user B on the same id (loaded as A's,
//! `bind_user(B)`, committed) while `end_all(A)` runs, each store call
//! held up by a paused server (`SIGSTOP`), on a single node and on a
//! three-node Redis Cluster of the test's own: B's session is never ended
//! by `end_all(A)`, stays listed for B and is ended by `end_all(B)`; and a
//! re-binding that fails before its session write leaves the session A's,
//! for `end_all(A)` to end.
//!
//! Each call goes through a `SessionManager` on a manual clock. Three
//! ways a pause meets the two calls:
//!
//! - *in turn*: the first call times out (store timeout 500 ms, in the
//!   settings and on the store), then the second is sent while the server
//!   is still paused and times out too;
//! - *together*: both are in flight at once, and time out;
//! - *delayed*: both are in flight at once, on a 10 s timeout, and the
//!   server thaws before either times out.
//!
//! A call is known to be held at the paused server when the bytes waiting
//! in that server's sockets (`/proc/net/tcp`, its receive queues) grow, or
//! it is known to be done; after `SIGCONT` the queued commands are known to
//! have run once those queues are empty and a `PING` on a new connection
//! is answered. No sleep stands in for either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // The conformance harness is for the other test files.
mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_sessions_core::store::{SessionId, UnixTime};
use http_sessions_core::{
    Key, Keyring, Settings, StoreError, UserSessions, seams::Backend, seams::CookieUpdate,
    seams::ManualClock, seams::SessionManager,
};
use http_sessions_redis::{RedisStore, redis};
use support::{Spawned, free_port, random_prefix};
use tokio::task::JoinHandle;

/// The timeout of the calls meant to fail: layer and store alike. Long
/// enough that the second call of a race is sent well before the first
/// times out, on a loaded machine too.
const FAST: Duration = Duration::from_millis(500);
/// The timeout of the calls meant to be only delayed, and of the checks.
const SLOW: Duration = Duration::from_secs(10);
/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);
const SECRET: [u8; 32] = [5; 32];

const SCRIPTS: [&str; 4] = [
    include_str!("../src/save.lua"),
    include_str!("../src/retire.lua"),
    include_str!("../src/users.lua"),
    include_str!("../src/end.lua"),
];

// ------------------------------------------------------------- servers

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

async fn client(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url(port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Loads the store's scripts on the server at `port`, so that no call
/// made while it is paused needs a `NOSCRIPT` round trip first.
async fn load_scripts(port: u16) {
    let mut conn = client(port).await;
    for code in SCRIPTS {
        let _sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(code)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// Bytes received and not yet read by the server listening on `port`,
/// over all its connections (accepted or still in its accept queue).
fn queued_bytes(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.split_once(':')?;
            // 0A: the listening socket, whose queue counts connections.
            if u16::from_str_radix(local_port, 16).ok()? != port || *fields.get(3)? == "0A" {
                return None;
            }
            let (_, rx) = fields.get(4)?.split_once(':')?;
            u64::from_str_radix(rx, 16).ok()
        })
        .sum()
}

/// A server the test pauses and thaws.
struct Paused<'a> {
    server: &'a Spawned,
    port: u16,
}

impl Paused<'_> {
    fn stop(&self) {
        self.server.signal("-STOP");
    }

    fn resume(&self) {
        self.server.signal("-CONT");
    }

    /// Returns once `task` is done or more bytes than `before` wait at the
    /// paused server: its call is then held there.
    async fn holds<T>(&self, task: &JoinHandle<T>, before: u64) {
        let start = Instant::now();
        while !task.is_finished() && queued_bytes(self.port) <= before {
            assert!(
                start.elapsed() < HANG_GUARD,
                "the call never reached the server"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// After [`resume`](Self::resume): returns once the server has read
    /// everything queued for it and answered a `PING` on a new connection,
    /// so that every command it was sent while paused has run.
    async fn drained(&self) {
        let start = Instant::now();
        while queued_bytes(self.port) > 0 {
            assert!(
                start.elapsed() < HANG_GUARD,
                "the thawed server reads nothing"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let pong: String = redis::cmd("PING")
            .query_async(&mut client(self.port).await)
            .await
            .unwrap();
        assert_eq!(pong, "PONG");
    }
}

fn node() -> (Spawned, u16) {
    let port = free_port();
    (
        Spawned::start(port, Spawned::dir("rebind", port), [] as [&str; 0]),
        port,
    )
}

/// `n` free ports, each with its cluster bus port (plus 10000) free too.
fn cluster_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if let Ok(bus_listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, bus)) {
            ports.push(port);
            held.push(listener);
            held.push(bus_listener);
        }
    }
    ports
}

/// A Redis Cluster of three primaries of the test's own.
struct Cluster {
    nodes: Vec<Spawned>,
    ports: Vec<u16>,
    /// `(first slot, last slot, index of the node)`, from `CLUSTER SLOTS`.
    slots: Vec<(u16, u16, usize)>,
    /// A connection to the first node, for `CLUSTER KEYSLOT`: one for the
    /// whole test, as every connection closed leaves a socket in
    /// `/proc/net/tcp` for a while, and [`queued_bytes`] reads them all.
    admin: redis::aio::MultiplexedConnection,
}

impl Cluster {
    async fn start() -> Self {
        let ports = cluster_ports(3);
        let nodes: Vec<Spawned> = ports
            .iter()
            .map(|&port| {
                Spawned::start(
                    port,
                    Spawned::dir("rebind-cluster", port),
                    // Pauses here last well under a second; a node is
                    // never to be taken for failed meanwhile.
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        "60000",
                    ],
                )
            })
            .collect();
        let ranges = [(0u16, 5460u16), (5461, 10922), (10923, 16383)];
        for (i, &port) in ports.iter().enumerate() {
            let mut conn = client(port).await;
            let () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(ranges[i].0)
                .arg(ranges[i].1)
                .query_async(&mut conn)
                .await
                .unwrap();
            let () = redis::cmd("CLUSTER")
                .arg("SET-CONFIG-EPOCH")
                .arg(i + 1)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let mut first = client(ports[0]).await;
        for &port in &ports[1..] {
            let () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(port)
                .query_async(&mut first)
                .await
                .unwrap();
        }
        let start = Instant::now();
        for &port in &ports {
            let mut conn = client(port).await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let ok = info.lines().any(|l| l.trim() == "cluster_state:ok")
                    && info.lines().any(|l| l.trim() == "cluster_known_nodes:3");
                if ok && slot_table(&mut conn, &ports).await.len() == 3 {
                    break;
                }
                assert!(start.elapsed() < HANG_GUARD, "the cluster never got ok");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            load_scripts(port).await;
        }
        let slots = slot_table(&mut first, &ports).await;
        Self {
            nodes,
            ports,
            slots,
            admin: first,
        }
    }

    fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|&p| url(p)).collect()
    }

    /// The index of the node that holds `key`, by `CLUSTER KEYSLOT`.
    async fn node_of(&self, key: &str) -> usize {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.admin.clone())
            .await
            .unwrap();
        self.slots
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, node)| *node)
            .unwrap()
    }

    fn paused(&self, node: usize) -> Paused<'_> {
        Paused {
            server: &self.nodes[node],
            port: self.ports[node],
        }
    }
}

/// `CLUSTER SLOTS` as `(first, last, index in ports)`.
async fn slot_table(
    conn: &mut redis::aio::MultiplexedConnection,
    ports: &[u16],
) -> Vec<(u16, u16, usize)> {
    let reply: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(items) = range else {
                return None;
            };
            let lo: u16 = redis::from_redis_value(items.first()?.clone()).ok()?;
            let hi: u16 = redis::from_redis_value(items.get(1)?.clone()).ok()?;
            let redis::Value::Array(primary) = items.get(2)? else {
                return None;
            };
            let port: u16 = redis::from_redis_value(primary.get(1)?.clone()).ok()?;
            Some((lo, hi, ports.iter().position(|&p| p == port)?))
        })
        .collect()
}

// ------------------------------------------------------------- sessions

/// One application instance: a manager on the shared store and clock.
struct Instance {
    manager: Arc<SessionManager>,
    users: UserSessions,
}

fn instance(store: &RedisStore, timeout: Duration, clock: &ManualClock) -> Instance {
    let settings = Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&SECRET).unwrap()).unwrap())
        .with_store_timeout(timeout)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    // The manager gives this clone of the store the same timeout.
    let manager = Arc::new(SessionManager::new(
        Backend::server(store.clone()),
        &settings,
    ));
    Instance {
        users: UserSessions::new(manager.clone()),
        manager,
    }
}

/// Two instances on one store (one pool of connections): calls meant to
/// fail, and calls meant only to be delayed (and the checks).
struct Rig {
    store: RedisStore,
    fast: Instance,
    slow: Instance,
}

impl Rig {
    fn new(store: RedisStore) -> Self {
        let clock = ManualClock::new(UnixTime::from_secs(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        ));
        Self {
            fast: instance(&store, FAST, &clock),
            slow: instance(&store, SLOW, &clock),
            store,
        }
    }

    /// A new session with one value, bound to `user` if any.
    async fn login(&self, user: Option<&str>) -> Token {
        let s = self.slow.manager.load_cookie(None).await.unwrap();
        if let Some(user) = user {
            s.bind_user(user).unwrap();
        }
        s.insert("k", "v").unwrap();
        let CookieUpdate::Set { value, .. } = self.slow.manager.commit(&s).await.unwrap() else {
            panic!("a new session set no cookie");
        };
        // A commit takes the session's state: its id, from a new load.
        let loaded = self.slow.manager.load_cookie(Some(&value)).await.unwrap();
        let id = SessionId::from_base64(&loaded.id().unwrap()).unwrap();
        Token { value, id }
    }

    /// Binds the session of `token` to `user`, on the same id.
    async fn bind(&self, token: &Token, user: &str) {
        let s = self
            .slow
            .manager
            .load_cookie(Some(&token.value))
            .await
            .unwrap();
        s.bind_user(user).unwrap();
        assert_eq!(
            self.slow.manager.commit(&s).await.unwrap(),
            CookieUpdate::Keep
        );
        assert_eq!(self.owner(token).await, Some(Some(user.to_owned())));
    }

    /// Whose the session of `token` is: `None` if it is gone, `Some(None)`
    /// if anonymous.
    async fn owner(&self, token: &Token) -> Option<Option<String>> {
        let s = self
            .slow
            .manager
            .load_cookie(Some(&token.value))
            .await
            .unwrap();
        s.id()?;
        assert_eq!(s.id(), Some(token.id.to_base64()));
        assert_eq!(s.get::<String>("k").unwrap().as_deref(), Some("v"));
        Some(s.user())
    }

    async fn listed(&self, user: &str, token: &Token) -> bool {
        let id = token.id.to_base64();
        self.slow
            .users
            .list(user)
            .await
            .unwrap()
            .iter()
            .any(|info| info.id == id)
    }

    async fn end_all(&self, user: &str) -> usize {
        self.slow.users.end_all(user, None).await.unwrap()
    }
}

struct Token {
    value: String,
    id: SessionId,
}

/// Which of the two calls is sent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    RebindFirst,
    EndAllFirst,
}

/// How the pause meets the two calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The first call times out, then the second is sent and times out.
    InTurn,
    /// Both in flight at once, and both time out.
    Together,
    /// Both in flight at once, on the slow timeout; the server thaws first.
    Delayed,
}

const FAULTS: [Fault; 3] = [Fault::InTurn, Fault::Together, Fault::Delayed];
const ORDERS: [Order; 2] = [Order::RebindFirst, Order::EndAllFirst];

/// What became of the moving session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// B's, live.
    Rebound,
    /// Ended as A's: `end_all(A)` reached it before the re-binding did.
    EndedAsA,
    /// Still A's: the re-binding failed before its session write.
    StillA,
}

/// The cast of a round: A's session that moves to B, and the sessions
/// that must outlive `end_all(A)` (B's own, C's, an anonymous one) or
/// not (A's other).
struct Cast {
    a: String,
    b: String,
    moving: Token,
    a_other: Token,
    b_own: Token,
    c_own: Token,
    anonymous: Token,
}

impl Cast {
    /// `moving` (stored anonymous) bound to `a`, then the others.
    async fn new(rig: &Rig, a: &str, b: &str, moving: Token) -> Self {
        rig.bind(&moving, a).await;
        Self {
            a: a.to_owned(),
            b: b.to_owned(),
            moving,
            a_other: rig.login(Some(a)).await,
            b_own: rig.login(Some(b)).await,
            c_own: rig.login(Some("cyd")).await,
            anonymous: rig.login(None).await,
        }
    }
}

/// What the re-binding and the racing `end_all(A)` answered.
struct Raced {
    rebind: Result<CookieUpdate, StoreError>,
    end_all: Result<usize, StoreError>,
}

/// The re-binding of `cast.moving` to B and `end_all(A)`, in `order`,
/// while `paused` is stopped as `fault` says; returns once every command
/// sent meanwhile has run.
async fn race(rig: &Rig, cast: &Cast, paused: &Paused<'_>, order: Order, fault: Fault) -> Raced {
    let calls = if fault == Fault::Delayed {
        &rig.slow
    } else {
        &rig.fast
    };
    // Loaded as A's before the pause.
    let rebinding = calls
        .manager
        .load_cookie(Some(&cast.moving.value))
        .await
        .unwrap();
    assert_eq!(rebinding.user().as_deref(), Some(cast.a.as_str()));
    rebinding.bind_user(cast.b.as_str()).unwrap();

    paused.stop();
    let rebind = {
        let manager = calls.manager.clone();
        move || tokio::spawn(async move { manager.commit(&rebinding).await })
    };
    let end_all = {
        let (users, a) = (calls.users.clone(), cast.a.clone());
        move || tokio::spawn(async move { users.end_all(&a, None).await })
    };
    let before = queued_bytes(paused.port);
    let (rebind, end_all) = if fault == Fault::InTurn {
        // The first call times out before the second is sent.
        match order {
            Order::RebindFirst => {
                let rebind = guarded(rebind()).await;
                let task = end_all();
                paused.holds(&task, before).await;
                (rebind, guarded(task).await)
            }
            Order::EndAllFirst => {
                let end_all = guarded(end_all()).await;
                let task = rebind();
                paused.holds(&task, before).await;
                (guarded(task).await, end_all)
            }
        }
    } else {
        let (rebind_task, end_all_task) = match order {
            Order::RebindFirst => {
                let first = rebind();
                paused.holds(&first, before).await;
                let between = queued_bytes(paused.port);
                let second = end_all();
                paused.holds(&second, between).await;
                (first, second)
            }
            Order::EndAllFirst => {
                let first = end_all();
                paused.holds(&first, before).await;
                let between = queued_bytes(paused.port);
                let second = rebind();
                paused.holds(&second, between).await;
                (second, first)
            }
        };
        if fault == Fault::Delayed {
            paused.resume();
        }
        (guarded(rebind_task).await, guarded(end_all_task).await)
    };
    if fault != Fault::Delayed {
        paused.resume();
    }
    paused.drained().await;
    Raced { rebind, end_all }
}

async fn guarded<T>(task: JoinHandle<T>) -> T {
    tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("a call hung")
        .unwrap()
}

/// B's own, C's and the anonymous session are as they were.
async fn others(rig: &Rig, cast: &Cast, what: &str) {
    assert_eq!(
        rig.owner(&cast.b_own).await,
        Some(Some(cast.b.clone())),
        "{what}: B's own session"
    );
    assert_eq!(
        rig.owner(&cast.c_own).await,
        Some(Some("cyd".to_owned())),
        "{what}: C's session"
    );
    assert_eq!(
        rig.owner(&cast.anonymous).await,
        Some(None),
        "{what}: the anonymous session"
    );
}

/// Holds what the race left to one of `expected`, then checks that `end_all(A)`
/// leaves B's session alone and `end_all(B)` ends it, and that no session
/// of another user than A's was ever ended by `end_all(A)`.
async fn verify(
    rig: &Rig,
    cast: &Cast,
    raced: Raced,
    fault: Fault,
    expected: &[Outcome],
    what: &str,
) {
    let (a, b) = (cast.a.as_str(), cast.b.as_str());
    let outcome = match rig.owner(&cast.moving).await {
        Some(Some(user)) if user == b => Outcome::Rebound,
        Some(Some(user)) if user == a => Outcome::StillA,
        None => Outcome::EndedAsA,
        other => panic!("{what}: the moving session is {other:?}"),
    };
    println!(
        "{what}: the re-bind answered {:?}, end_all({a}) answered {:?}; the session {outcome:?}",
        raced.rebind, raced.end_all
    );
    assert!(
        expected.contains(&outcome),
        "{what}: the session is {outcome:?}, not one of {expected:?}"
    );
    match (fault, outcome, &raced.rebind) {
        (Fault::Delayed, Outcome::Rebound, Ok(CookieUpdate::Keep))
        | (Fault::Delayed, Outcome::EndedAsA, Err(StoreError::Gone))
        | (Fault::InTurn | Fault::Together, _, Err(StoreError::Timeout(_))) => {}
        (_, _, other) => panic!("{what}: the re-bind answered {other:?}"),
    }

    // end_all(A) never ended a session of anyone else.
    others(rig, cast, what).await;
    let a_other_left = rig.owner(&cast.a_other).await.is_some();
    if let Ok(ended) = raced.end_all {
        // Done: A's other session, and the moving one if still A's.
        assert!(!a_other_left, "{what}: end_all({a}) left A's other session");
        let moving = usize::from(outcome == Outcome::EndedAsA);
        assert_eq!(ended, 1 + moving, "{what}: end_all({a}) ended");
    }

    // A fresh end_all(A), once the server is back.
    let a_live = usize::from(a_other_left);
    match outcome {
        Outcome::Rebound => {
            assert!(
                rig.listed(b, &cast.moving).await,
                "{what}: not listed for B"
            );
            assert!(!rig.listed(a, &cast.moving).await, "{what}: listed for A");
            assert_eq!(rig.end_all(a).await, a_live, "{what}: end_all({a}) again");
            assert_eq!(
                rig.owner(&cast.moving).await,
                Some(Some(b.to_owned())),
                "{what}: end_all({a}) again touched B's session"
            );
            assert!(rig.listed(b, &cast.moving).await, "{what}");
        }
        Outcome::EndedAsA => {
            assert!(!rig.listed(b, &cast.moving).await, "{what}");
            assert!(!rig.listed(a, &cast.moving).await, "{what}");
            assert_eq!(rig.end_all(a).await, a_live, "{what}: end_all({a}) again");
        }
        Outcome::StillA => {
            assert!(!rig.listed(b, &cast.moving).await, "{what}: listed for B");
            assert!(
                rig.listed(a, &cast.moving).await,
                "{what}: not listed for A"
            );
            assert_eq!(
                rig.end_all(a).await,
                1 + a_live,
                "{what}: end_all({a}) again"
            );
            assert_eq!(rig.owner(&cast.moving).await, None, "{what}");
        }
    }
    assert_eq!(rig.owner(&cast.a_other).await, None, "{what}");
    others(rig, cast, what).await;
    assert!(rig.slow.users.list(a).await.unwrap().is_empty(), "{what}");

    // end_all(B) ends B's own session, and the moved one if it is B's.
    let rebound = usize::from(outcome == Outcome::Rebound);
    assert_eq!(rig.end_all(b).await, 1 + rebound, "{what}: end_all({b})");
    assert_eq!(rig.owner(&cast.moving).await, None, "{what}");
    assert_eq!(rig.owner(&cast.b_own).await, None, "{what}");
    assert!(rig.slow.users.list(b).await.unwrap().is_empty(), "{what}");
    assert_eq!(rig.owner(&cast.c_own).await, Some(Some("cyd".to_owned())));
    assert_eq!(rig.owner(&cast.anonymous).await, Some(None));
}

// ------------------------------------------------------------- one node

/// Every way the pause meets the two calls, in `order`, on one node.
async fn on_a_node(order: Order) {
    let (server, port) = node();
    load_scripts(port).await;
    let paused = Paused {
        server: &server,
        port,
    };
    for fault in FAULTS {
        let store = RedisStore::from_url(&url(port))
            .unwrap()
            .with_prefix(random_prefix("rebind"));
        let rig = Rig::new(store);
        let moving = rig.login(None).await;
        let cast = Cast::new(&rig, "amy", "ben", moving).await;
        let raced = race(&rig, &cast, &paused, order, fault).await;
        let what = format!("node, {order:?}, {fault:?}");
        // One script per write: whichever lands first, the re-binding
        // stands (end_all's second step, if sent at all, comes after).
        verify(&rig, &cast, raced, fault, &[Outcome::Rebound], &what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_node_a_rebind_held_by_a_pause_then_end_all_of_the_old_user_never_ends_it() {
    on_a_node(Order::RebindFirst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_node_end_all_of_the_old_user_held_by_a_pause_then_a_rebind_never_ends_it() {
    on_a_node(Order::EndAllFirst).await;
}

// ------------------------------------------------------------- cluster

/// Which node of the cluster is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The one holding the moving session's hash.
    Session,
    /// The one holding B's index.
    BIndex,
    /// The one holding A's index.
    AIndex,
}

/// A rig on `cluster` and a cast whose moving session, A's index and B's
/// index are on three different nodes; those nodes, in that order.
async fn cluster_cast(cluster: &Cluster) -> (Rig, Cast, [usize; 3]) {
    let store = RedisStore::cluster(cluster.urls())
        .unwrap()
        .with_prefix(random_prefix("rebind"));
    let rig = Rig::new(store);
    let moving = rig.login(None).await;
    let session = cluster.node_of(&rig.store.key_of(&moving.id)).await;
    let mut a = None;
    let mut b = None;
    for i in 0..100 {
        let name = format!("amy{i}");
        let at = cluster.node_of(&rig.store.user_key_of(&name)).await;
        if at != session {
            a = Some((name, at));
            break;
        }
    }
    let (a, a_at) = a.unwrap();
    for i in 0..100 {
        let name = format!("ben{i}");
        let at = cluster.node_of(&rig.store.user_key_of(&name)).await;
        if at != session && at != a_at {
            b = Some((name, at));
            break;
        }
    }
    let (b, b_at) = b.unwrap();
    let cast = Cast::new(&rig, &a, &b, moving).await;
    (rig, cast, [session, a_at, b_at])
}

/// Every way the pause of `target` meets the two calls, in both orders.
async fn on_a_cluster(target: Target) {
    let cluster = Cluster::start().await;
    for order in ORDERS {
        for fault in FAULTS {
            let (rig, cast, [session, a_at, b_at]) = cluster_cast(&cluster).await;
            let node = match target {
                Target::Session => session,
                Target::BIndex => b_at,
                Target::AIndex => a_at,
            };
            let raced = race(&rig, &cast, &cluster.paused(node), order, fault).await;
            let what = format!(
                "cluster, {target:?} paused (session on node {session}, {} on {a_at}, {} on {b_at}), {order:?}, {fault:?}",
                cast.a, cast.b
            );
            // The re-binding writes B's index, then the hash, then A's
            // index. With B's index paused its first step is held while
            // end_all(A) ends the session, still A's; with the session's
            // node paused, whichever reaches the hash first wins; A's
            // index paused holds only the re-binding's last step.
            //
            // In turn, the first call's timeout retires the store's
            // cluster connection, and a new one waits on every node, the
            // paused one included: the second call then times out without
            // reaching any node. So with B's index paused end_all(A) does
            // not run, and with A's index paused end_all(A) first, the
            // re-binding does not: either way the session stays A's (were
            // the second call to reach the healthy nodes, it would go as
            // in the other faults).
            let expected: &[Outcome] = match (target, order, fault) {
                (Target::BIndex, Order::RebindFirst, Fault::InTurn) => {
                    &[Outcome::StillA, Outcome::EndedAsA]
                }
                (Target::AIndex, Order::EndAllFirst, Fault::InTurn) => {
                    &[Outcome::StillA, Outcome::Rebound]
                }
                (Target::BIndex, ..) | (Target::Session, Order::EndAllFirst, _) => {
                    &[Outcome::EndedAsA]
                }
                _ => &[Outcome::Rebound],
            };
            verify(&rig, &cast, raced, fault, expected, &what).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_with_the_sessions_node_paused_end_all_of_the_old_user_never_ends_a_rebound_session()
 {
    on_a_cluster(Target::Session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_with_the_new_users_index_paused_end_all_of_the_old_user_never_ends_a_rebound_session()
 {
    on_a_cluster(Target::BIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_with_the_old_users_index_paused_end_all_of_the_old_user_never_ends_a_rebound_session()
 {
    on_a_cluster(Target::AIndex).await;
}

/// B's index paused past the timeout: the re-binding fails at its first
/// step (the admit), before the session write. Once the admit has landed
/// late, the session is still A's, is not listed for B, and end_all(A)
/// ends it; end_all(B) ends only B's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_a_rebind_whose_admit_times_out_leaves_the_session_to_the_old_users_end_all() {
    let cluster = Cluster::start().await;
    let (rig, cast, [_, _, b_at]) = cluster_cast(&cluster).await;
    let paused = cluster.paused(b_at);
    let rebinding = rig
        .fast
        .manager
        .load_cookie(Some(&cast.moving.value))
        .await
        .unwrap();
    rebinding.bind_user(cast.b.as_str()).unwrap();
    paused.stop();
    let before = queued_bytes(paused.port);
    let task = {
        let manager = rig.fast.manager.clone();
        tokio::spawn(async move { manager.commit(&rebinding).await })
    };
    paused.holds(&task, before).await;
    let rebind = guarded(task).await;
    paused.resume();
    paused.drained().await;
    assert!(
        matches!(rebind, Err(StoreError::Timeout(_))),
        "the re-bind answered {rebind:?}"
    );
    let (a, b) = (cast.a.as_str(), cast.b.as_str());
    assert_eq!(rig.owner(&cast.moving).await, Some(Some(a.to_owned())));
    assert!(rig.listed(a, &cast.moving).await);
    assert!(!rig.listed(b, &cast.moving).await);
    // The late admit left an entry in B's index, which the hash disowns.
    let entry: Option<f64> = redis::cmd("ZSCORE")
        .arg(rig.store.user_key_of(b))
        .arg(cast.moving.id.to_base64())
        .query_async(&mut client(cluster.ports[b_at]).await)
        .await
        .unwrap();
    println!("the late admit left B's index entry: {entry:?}");

    assert_eq!(rig.end_all(a).await, 2, "the moving session and A's other");
    assert_eq!(rig.owner(&cast.moving).await, None);
    assert_eq!(rig.owner(&cast.a_other).await, None);
    assert_eq!(rig.owner(&cast.b_own).await, Some(Some(b.to_owned())));
    assert_eq!(rig.owner(&cast.c_own).await, Some(Some("cyd".to_owned())));
    assert_eq!(rig.owner(&cast.anonymous).await, Some(None));
    assert_eq!(rig.end_all(b).await, 1, "B's own only");
    assert_eq!(rig.owner(&cast.b_own).await, None);
    assert!(rig.slow.users.list(b).await.unwrap().is_empty());
    assert_eq!(rig.owner(&cast.c_own).await, Some(Some("cyd".to_owned())));
}
