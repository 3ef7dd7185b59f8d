//! What a visitor sees when Redis misbehaves: stopped, hung, restarted,
//! flushed, holding corrupt state, or cut off by a path that dies without
//! a reset (a proxy in the test black-holes the open connection); how long
//! each such fault keeps requests from being served (the `recovery_`
//! tests, one line each for the documentation's table); that
//! two application instances share sessions through it; that a renewed
//! id's marker survives what may hit it (a late update, its retire sent
//! twice); and what each request costs Redis, counted by the server
//! itself: one command per load, one per save, no `PING`. Each test starts its own `redis-server` on a free port and
//! drives an axum router with `oneshot`, or the store by id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use http_sessions_core::store::{
    Changes, Loaded, Record, SessionId, SessionStore, UnixTime, Update, Value,
};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings, StoreError, ValueError};
use http_sessions_redis::redis;
use http_sessions_redis::{RedisStore, deadpool_redis};
use tower::ServiceExt;

/// The store's own bound on a call: what a visitor waits at most.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);
/// Timers and a loaded machine add a little to any bound.
const SLACK: Duration = Duration::from_millis(400);
/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);
const PREFIX: &str = "faults:";
const SECRET: [u8; 32] = [7; 32];

// ---------------------------------------------------------------- redis-server

/// A `redis-server` child on its own port and directory, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    cluster: bool,
}

impl RedisServer {
    fn start() -> Self {
        Self::start_with(false)
    }

    /// A Redis Cluster of this one node, owning every slot: a cluster no
    /// other test uses, so its counters are this test's alone.
    async fn start_cluster() -> Self {
        let server = Self::start_with(true);
        let mut conn = server.client().await;
        let () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16383)
            .query_async(&mut conn)
            .await
            .unwrap();
        for _ in 0..500 {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap();
            if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the one-node cluster on port {} never got ok", server.port);
    }

    fn start_with(cluster: bool) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "http-sessions-redis-faults-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            child: None,
            port,
            dir,
            cluster,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let mut command = Command::new("redis-server");
        if self.cluster {
            command.args(["--cluster-enabled", "yes"]);
        }
        let child = command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not on the PATH; these tests start their own. \
                 Install it (Debian/Ubuntu: `apt-get install redis-server`) and run again."
            ),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls `PING` until the server answers, a bounded number of times.
    fn wait_ready(&mut self) {
        for _ in 0..500 {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited ({status}) before answering:\n{log}");
            }
            if ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server; its port is closed until [`restart`](Self::restart).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new server on the same port (and, without persistence, empty).
    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: the port still
    /// accepts connections, but nothing answers.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn client(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key under the tests' prefix.
    async fn session_keys(&self) -> Vec<String> {
        let mut conn = self.client().await;
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{PREFIX}*"))
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                keys.sort();
                keys.dedup();
                return keys;
            }
            cursor = next;
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        cmd.query_async(&mut self.client().await).await.unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

// ---------------------------------------------------------------------- proxy

/// A TCP proxy in front of a `redis-server`, on a free port of its own, that
/// can black-hole the connections it has accepted so far: they stay open,
/// nothing they send reaches the server, nothing the server sends reaches
/// them, and no reset is sent, as after a host crash, a failover behind a
/// load balancer, or a NAT entry that timed out. Connections accepted
/// later are forwarded as usual. It can also reset them instead (see
/// [`reset`](Self::reset)). Its tasks end when it is dropped.
struct Proxy {
    url: String,
    /// How many connections it has accepted.
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// How many black-holed connections their client has closed.
    hung_up: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
    /// Connections accepted before this count are black-holed.
    frozen_below: tokio::sync::watch::Sender<usize>,
    /// Each accepted connection's two forwarding tasks.
    links: std::sync::Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Proxy {
    /// A proxy on a free TCP port.
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let url = format!(
            "redis://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        Self::serve(Listener::Tcp(listener), url, upstream)
    }

    /// A proxy on a Unix socket at `path`: the store then talks through
    /// the driver's own connection, not its pipe.
    fn start_unix(upstream: u16, path: &std::path::Path) -> Self {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let url = format!("redis+unix://{}", path.display());
        Self::serve(Listener::Unix(listener), url, upstream)
    }

    fn serve(listener: Listener, url: String, upstream: u16) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let accepted = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(tokio::sync::watch::Sender::new(0));
        let (frozen_below, frozen) = tokio::sync::watch::channel(0);
        let mut tasks = tokio::task::JoinSet::new();
        let counts = (Arc::clone(&accepted), Arc::clone(&hung_up));
        // Each connection's tasks live as long as the accept loop and the
        // proxy: dropping both drops them and their sockets.
        let links = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accept_links = Arc::clone(&links);
        tasks.spawn(async move {
            loop {
                let Ok((client_read, client_write)) = listener.accept().await else {
                    return;
                };
                let id = counts.0.fetch_add(1, Ordering::SeqCst);
                let Ok(server) =
                    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)).await
                else {
                    continue;
                };
                let (server_read, server_write) = server.into_split();
                let hung_up = Arc::clone(&counts.1);
                let mut links = accept_links.lock().unwrap();
                links.spawn(forward(
                    id,
                    client_read,
                    Box::new(server_write),
                    frozen.clone(),
                    Some(hung_up),
                ));
                links.spawn(forward(
                    id,
                    Box::new(server_read),
                    client_write,
                    frozen.clone(),
                    None,
                ));
            }
        });
        Self {
            url,
            accepted,
            hung_up,
            frozen_below,
            links,
            tasks,
        }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits, at most `limit`, until `count` black-holed connections have
    /// been closed by their client; how many have.
    async fn hung_up(&self, count: usize, limit: Duration) -> usize {
        let mut closed = self.hung_up.subscribe();
        let _ = tokio::time::timeout(limit, closed.wait_for(|&n| n >= count)).await;
        *closed.borrow()
    }

    /// Black-holes every connection accepted so far.
    fn freeze(&self) {
        self.frozen_below.send_replace(self.accepted());
    }

    /// Resets every connection accepted so far: its tasks end, and on TCP
    /// the client's socket closes with `SO_LINGER` 0, a RST and no FIN.
    fn reset(&self) {
        self.links.lock().unwrap().abort_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Where a [`Proxy`] accepts its clients.
enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// One direction of a proxied connection, of either kind.
type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

impl Listener {
    async fn accept(&self) -> std::io::Result<(Reader, Writer)> {
        match self {
            Listener::Tcp(listener) => {
                let stream = listener.accept().await?.0;
                // Zero linger: closing it sends a RST (see `Proxy::reset`).
                // Not `into_split`: its write half sends a FIN when dropped.
                stream.set_zero_linger()?;
                let (read, write) = tokio::io::split(stream);
                Ok((Box::new(read), Box::new(write)))
            }
            Listener::Unix(listener) => {
                let (read, write) = listener.accept().await?.0.into_split();
                Ok((Box::new(read), Box::new(write)))
            }
        }
    }
}

/// Copies `from` to `to` until connection `id` is black-holed. From then on
/// nothing more is copied and both sockets are kept open; what the client
/// still sends is read and dropped (when `hung_up` is given, for the
/// client-to-server direction), so that the proxy sees the client close
/// the connection, and counts it.
async fn forward(
    id: usize,
    mut from: Reader,
    mut to: Writer,
    mut frozen: tokio::sync::watch::Receiver<usize>,
    hung_up: Option<std::sync::Arc<tokio::sync::watch::Sender<usize>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *frozen.borrow_and_update() > id {
            break;
        }
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // Bytes read after the freeze are not passed on.
                    if *frozen.borrow() > id {
                        break;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = frozen.changed() => if changed.is_err() {
                return;
            },
        }
    }
    // Black-holed: `to` stays open, unwritten.
    match hung_up {
        Some(hung_up) => {
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            hung_up.send_modify(|n| *n += 1);
            std::future::pending::<()>().await;
        }
        None => std::future::pending::<()>().await,
    }
    drop((from, to));
}

// ------------------------------------------------------------------------ app

fn settings() -> Settings {
    settings_with(&SECRET)
}

fn settings_with(secret: &[u8; 32]) -> Settings {
    settings_timed(secret, STORE_TIMEOUT)
}

/// The one timeout of every store call: the layer cuts a call off at it,
/// and the store, given it by the layer, judges its connections by it.
fn settings_timed(secret: &[u8; 32], timeout: Duration) -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(secret).unwrap()).unwrap())
        .with_store_timeout(timeout)
        .build()
        .unwrap()
}

/// `store` with the store timeout `timeout`, given as a layer gives it,
/// for tests that call the store themselves.
fn timed(store: RedisStore, timeout: Duration) -> RedisStore {
    store.use_settings(&settings_timed(&SECRET, timeout));
    store
}

fn store(server: &RedisServer) -> RedisStore {
    store_at(&server.url())
}

/// The store every test uses, at `url` (a proxy's, say), with the tests'
/// store timeout even when called without a layer.
fn store_at(url: &str) -> RedisStore {
    timed(
        RedisStore::from_url(url).unwrap().with_prefix(PREFIX),
        STORE_TIMEOUT,
    )
}

async fn login(session: Session) -> Result<&'static str, ValueError> {
    session.insert("user", "alice")?;
    Ok("logged in")
}

/// Counts this session's visits: a load and an update on every request.
async fn count(session: Session) -> Result<String, ValueError> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(visits.to_string())
}

async fn whoami(session: Session) -> Result<String, ValueError> {
    Ok(session
        .get::<String>("user")?
        .unwrap_or_else(|| "anonymous".into()))
}

/// Logs in again: the session moves to a new id, and the old one is kept
/// as a renewed id's marker.
async fn relogin(session: Session) -> Result<&'static str, ValueError> {
    session.renew_on_login();
    session.insert("user", "bob")?;
    Ok("logged in again")
}

fn app(store: RedisStore) -> Router {
    app_with(store, &settings())
}

fn app_with(store: RedisStore, settings: &Settings) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/relogin", get(relogin))
        .route("/whoami", get(whoami))
        .route("/count", get(count))
        .layer(SessionLayer::new(store, settings))
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
    took: Duration,
}

impl Reply {
    /// The session cookie's new value, if one was set and is not a removal.
    fn cookie(&self) -> Option<String> {
        let header = self.set_cookie.as_deref()?;
        if self.removes_cookie() {
            return None;
        }
        let pair = header.split(';').next()?;
        Some(pair.strip_prefix("session=")?.to_owned())
    }

    fn removes_cookie(&self) -> bool {
        self.set_cookie
            .as_deref()
            .is_some_and(|h| h.starts_with("session=;") && h.contains("Max-Age=0"))
    }
}

async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::get(path);
    if let Some(value) = cookie {
        request = request.header(COOKIE, format!("session={value}"));
    }
    let started = Instant::now();
    let response = tokio::time::timeout(
        HANG_GUARD,
        app.clone().oneshot(request.body(Body::empty()).unwrap()),
    )
    .await
    .expect("the request hung")
    .unwrap();
    let took = started.elapsed();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
        took,
    }
}

/// Logs in and returns the session cookie.
async fn log_in(app: &Router) -> String {
    let reply = send(app, "/login", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.cookie().expect("login sets a cookie")
}

/// Logs in and returns the session cookie and the Redis key of its session:
/// the one key the login added.
async fn log_in_with_key(app: &Router, server: &RedisServer) -> (String, String) {
    let before = server.session_keys().await;
    let cookie = log_in(app).await;
    let mut added: Vec<_> = server
        .session_keys()
        .await
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(added.len(), 1, "a login stores one key: {added:?}");
    (cookie, added.remove(0))
}

// ---------------------------------------------------------------------- tests

#[tokio::test]
async fn redis_stopped_answers_503_fast_and_keeps_the_cookie() {
    let mut server = RedisServer::start();
    let app = app(store(&server));
    let cookie = log_in(&app).await;
    server.stop();

    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        read.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        read.body
    );
    assert!(read.took < STORE_TIMEOUT + SLACK, "took {:?}", read.took);
    assert_eq!(
        read.set_cookie, None,
        "the client's cookie must be left alone"
    );

    let write = send(&app, "/login", None).await;
    assert_eq!(
        write.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        write.body
    );
    assert!(write.took < STORE_TIMEOUT + SLACK, "took {:?}", write.took);
    assert_eq!(write.set_cookie, None);

    let write_with_session = send(&app, "/login", Some(&cookie)).await;
    assert_eq!(write_with_session.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(write_with_session.set_cookie, None);
}

#[tokio::test]
async fn redis_hung_answers_503_within_the_timeout_then_recovers() {
    let server = RedisServer::start();
    let app = app(store(&server));
    let cookie = log_in(&app).await;
    server.signal("-STOP");

    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        read.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        read.body
    );
    assert!(read.took >= STORE_TIMEOUT, "took {:?}", read.took);
    assert!(read.took < STORE_TIMEOUT + SLACK, "took {:?}", read.took);
    assert_eq!(read.set_cookie, None);

    let write = send(&app, "/login", None).await;
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(write.took < STORE_TIMEOUT + SLACK, "took {:?}", write.took);

    server.signal("-CONT");
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
}

#[tokio::test]
async fn a_restarted_redis_serves_the_same_app_again() {
    let mut server = RedisServer::start();
    let app = app(store(&server));
    let old = log_in(&app).await;
    server.stop();
    assert_eq!(
        send(&app, "/whoami", Some(&old)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    server.restart();
    // Same router, same store, same pool: its dead connections are
    // replaced on the next checkout.
    let read = send(&app, "/whoami", Some(&old)).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let cookie = log_in(&app).await;
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
}

#[tokio::test]
async fn after_flushall_an_old_cookie_gets_a_fresh_session() {
    let server = RedisServer::start();
    let app = app(store(&server));
    let cookie = log_in(&app).await;
    let () = server.query(&redis::cmd("FLUSHALL")).await;

    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    // A cookie that names no session is left alone: only a request that
    // ends a session removes it.
    assert_eq!(read.set_cookie, None);
    assert!(server.session_keys().await.is_empty());
}

#[tokio::test]
async fn a_corrupt_field_gets_a_fresh_session() {
    let server = RedisServer::start();
    let app = app(store(&server));
    for (field, garbage) in [
        ("d:user", &[0xc1_u8, 0xff][..]),
        ("expires", b"tomorrow"),
        ("flash", b"\x92"),
    ] {
        let (cookie, key) = log_in_with_key(&app, &server).await;
        let mut hset = redis::cmd("HSET");
        hset.arg(&key).arg(field).arg(garbage);
        let _: i64 = server.query(&hset).await;

        let read = send(&app, "/whoami", Some(&cookie)).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{field}"
        );
        assert_eq!(read.set_cookie, None, "{field}");
    }

    // A marker that also holds a session field is neither.
    let (cookie, key) = log_in_with_key(&app, &server).await;
    let mut hset = redis::cmd("HSET");
    hset.arg(&key).arg("renewed").arg(u64::MAX / 2);
    let _: i64 = server.query(&hset).await;
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    assert_eq!(read.set_cookie, None);

    // Something that is not a hash under a session's key.
    let (cookie, key) = log_in_with_key(&app, &server).await;
    let _: i64 = server.query(redis::cmd("DEL").arg(&key)).await;
    let () = server.query(redis::cmd("SET").arg(&key).arg("x")).await;
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    assert_eq!(read.set_cookie, None);
}

#[tokio::test]
async fn two_instances_share_sessions_through_redis() {
    let server = RedisServer::start();
    // Two applications: separate stores and pools, one Redis, one secret.
    let a = app(store(&server));
    let b = app(store(&server));
    let cookie = log_in(&a).await;
    let read = send(&b, "/whoami", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
    assert_eq!(read.set_cookie, None, "a read changes nothing");
}

/// An update that sets more values than the script's short form carries
/// takes its general form, and lands whole all the same; so does one that
/// sets a few.
#[tokio::test]
async fn updates_large_and_small_land_whole() {
    async fn fill(session: Session) -> Result<String, ValueError> {
        for i in 0..600 {
            session.insert(format!("k{i}"), i)?;
        }
        Ok("filled".into())
    }
    async fn sum(session: Session) -> Result<String, ValueError> {
        let mut total = 0;
        for i in 0..600 {
            total += session.get::<u64>(&format!("k{i}"))?.unwrap_or(0);
        }
        Ok(total.to_string())
    }
    let server = RedisServer::start();
    let app = Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/count", get(count))
        .route("/fill", get(fill))
        .route("/sum", get(sum))
        .layer(SessionLayer::new(store(&server), &settings()));
    let cookie = log_in(&app).await;
    assert_eq!(
        send(&app, "/fill", Some(&cookie)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, "/sum", Some(&cookie)).await.body,
        (0..600).sum::<u64>().to_string()
    );
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "1");
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "2");
    assert_eq!(send(&app, "/whoami", Some(&cookie)).await.body, "alice");
}

/// Many visitors at once share the store's connection, their commands
/// written together: each still gets the replies to its own commands, in
/// its own order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_visitors_each_get_their_own_replies() {
    const VISITORS: usize = 64;
    const VISITS: u64 = 20;
    let server = RedisServer::start();
    let app = app(store(&server));
    let mut cookies = Vec::new();
    for _ in 0..VISITORS {
        cookies.push(log_in(&app).await);
    }
    let visitors: Vec<_> = cookies
        .into_iter()
        .map(|cookie| {
            let app = app.clone();
            tokio::spawn(async move {
                for visit in 1..=VISITS {
                    let reply = send(&app, "/count", Some(&cookie)).await;
                    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                    assert_eq!(reply.body, visit.to_string());
                    let read = send(&app, "/whoami", Some(&cookie)).await;
                    assert_eq!(read.body, "alice");
                }
            })
        })
        .collect();
    for visitor in visitors {
        visitor.await.unwrap();
    }
}

#[tokio::test]
async fn visitors_who_never_write_leave_nothing_in_redis() {
    let server = RedisServer::start();
    let app = app(store(&server));
    for _ in 0..3 {
        let read = send(&app, "/whoami", None).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "anonymous")
        );
        assert_eq!(read.set_cookie, None);
    }
    let dbsize: u64 = server.query(&redis::cmd("DBSIZE")).await;
    assert_eq!(dbsize, 0);

    let cookie = log_in(&app).await;
    let keys = server.session_keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let dbsize: u64 = server.query(&redis::cmd("DBSIZE")).await;
    assert_eq!(dbsize, 1);
    let mut ttl = redis::cmd("TTL");
    ttl.arg(&keys[0]);
    let ttl: i64 = server.query(&ttl).await;
    let idle = settings().idle_timeout().as_secs() as i64;
    assert!(ttl > 0 && ttl <= idle, "TTL {ttl}");
    assert!(!cookie.is_empty());
}

#[tokio::test]
async fn forged_tokens_cost_no_round_trip() {
    let mut server = RedisServer::start();
    let app = app(store(&server));
    // A well-formed cookie of a real session, signed with another secret.
    let other = app_with(store(&server), &settings_with(&[8; 32]));
    let forged = log_in(&other).await;
    server.stop();
    for cookie in [forged.as_str(), "not-a-token", "A.B"] {
        let read = send(&app, "/whoami", Some(cookie)).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{cookie}"
        );
        assert_eq!(read.set_cookie, None, "{cookie}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restarted_under_idle_pooled_connections_costs_no_request() {
    let mut server = RedisServer::start();
    let app = app(store(&server));
    let cookie = log_in(&app).await;

    // Several requests at once. A call hands its pooled connection back as
    // soon as it has cloned it (calls pipeline on it), so the pool may hold
    // one connection or a few: whichever, none may fail after the restart.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let app = app.clone();
        let cookie = cookie.clone();
        requests.spawn(async move { send(&app, "/whoami", Some(&cookie)).await.status });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let clients: String = server.query(redis::cmd("CLIENT").arg("LIST")).await;
    // Less the connection that asked.
    let pooled = clients.lines().count() - 1;
    assert!(pooled >= 1, "the pool should hold a connection:\n{clients}");

    // Restarted with no request in between: every pooled connection is
    // dead, and nothing has told the pool yet.
    server.restart();
    for path in ["/whoami", "/whoami", "/login", "/whoami"] {
        let reply = send(&app, path, Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    let cookie = log_in(&app).await;
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
}

// ------------------------------------------------------------ a dead path

/// The bound the issue sets: with the store's default timeout, a
/// black-holed connection is replaced and requests are served again within
/// this.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

/// The path to Redis dies under an open, idle connection, with no reset:
/// the store's default timeout (2 s) fails the one request that meets the
/// dead connection, retires it and shuts it down, and the next request is
/// served on a new connection, with the session's data.
#[tokio::test]
async fn a_connection_that_stops_answering_is_replaced() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let timeout = Settings::DEFAULT_STORE_TIMEOUT;
    let app = default_app(&proxy.url());
    let cookie = log_in(&app).await;
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "1");
    let before = proxy.accepted();
    assert_eq!(before, 1, "one connection serves sequential requests");

    proxy.freeze();
    let frozen = Instant::now();
    let mut failed = Vec::new();
    let recovered = loop {
        // Bounded in count and time: each request at most the layer's
        // timeout, and far fewer than this needed.
        assert!(
            failed.len() < 5 && frozen.elapsed() < RECOVERY_BOUND,
            "not served again after {:?}; failed: {failed:?}",
            frozen.elapsed()
        );
        let reply = send(&app, "/count", Some(&cookie)).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.body, "2", "the session's data, on the new connection");
            break frozen.elapsed();
        }
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert_eq!(reply.set_cookie, None, "the client's cookie is left alone");
        assert!(reply.took >= timeout, "took {:?}", reply.took);
        assert!(reply.took < timeout + SLACK, "took {:?}", reply.took);
        failed.push(reply.took);
    };
    report("black-holed", recovered, failed.len());
    assert_eq!(
        failed.len(),
        1,
        "one request meets the dead connection, the next gets a new one"
    );
    assert_eq!(proxy.accepted(), before + 1, "served on a new connection");
    // The dead connection was shut down, not left to linger.
    assert_eq!(
        proxy.hung_up(1, SLACK).await,
        1,
        "the store closed the dead connection"
    );

    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "3");
    assert_eq!(proxy.accepted(), before + 1, "and stays on it");
}

/// The same dead path under the driver's own connection (a Unix socket
/// URL; TLS and Redis Cluster connections take the same path in the store):
/// the call that times out on it retires it, the next call is served on a
/// new one, and the dead one is closed once its last user lets go.
#[tokio::test]
async fn a_driver_connection_that_stops_answering_is_replaced() {
    let server = RedisServer::start();
    let socket = server.dir.join("proxy.sock");
    let proxy = Proxy::start_unix(server.port, &socket);
    let app = app(store_at(&proxy.url()));
    let cookie = log_in(&app).await;
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "1");
    assert_eq!(proxy.accepted(), 1);

    proxy.freeze();
    let frozen = Instant::now();
    let failed = send(&app, "/count", Some(&cookie)).await;
    assert_eq!(
        (failed.status, failed.set_cookie),
        (StatusCode::SERVICE_UNAVAILABLE, None)
    );
    assert!(failed.took >= STORE_TIMEOUT, "took {:?}", failed.took);
    assert!(
        failed.took < STORE_TIMEOUT + SLACK,
        "took {:?}",
        failed.took
    );

    let served = send(&app, "/count", Some(&cookie)).await;
    assert_eq!((served.status, served.body.as_str()), (StatusCode::OK, "2"));
    println!(
        "driver connection: served again {:?} after the path died",
        frozen.elapsed()
    );
    assert_eq!(proxy.accepted(), 2, "served on a new connection");
    assert_eq!(
        proxy.hung_up(1, SLACK).await,
        1,
        "the dead connection was closed"
    );
}

/// A call with a later deadline, waiting on the same connection as one that
/// times out, is not left to time out too: it fails as *dropped* when the
/// connection is broken, and is sent again on a new connection within its
/// own timeout. Two stores share one pool (a clone with a longer timeout),
/// so both calls go out on the one connection the proxy black-holes.
#[tokio::test]
async fn a_call_waiting_behind_a_timeout_is_sent_again_on_a_new_connection() {
    const T: UnixTime = UnixTime::from_secs(1_700_000_000);
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let short = store_at(&proxy.url());
    let long = timed(short.clone(), HANG_GUARD / 4);
    let id = SessionId::from_bytes([5; 16]);
    let mut record = Record::empty(T, T + Duration::from_secs(600), 4);
    record
        .data
        .insert("user".into(), Value::encode("alice").unwrap());
    long.create(&id, &record, record.expires).await.unwrap();
    assert_eq!(proxy.accepted(), 1);

    proxy.freeze();
    let started = Instant::now();
    let (timed_out, moved) = tokio::join!(short.load(&id, T), async {
        let loaded = long.load(&id, T).await;
        (loaded, started.elapsed())
    });
    assert!(
        matches!(timed_out, Err(StoreError::Timeout(limit)) if limit == STORE_TIMEOUT),
        "{timed_out:?}"
    );
    let (loaded, took) = moved;
    match loaded.unwrap() {
        Some(Loaded::Live(loaded)) => assert_eq!(loaded.data, record.data),
        other => panic!("the session, not {other:?}"),
    }
    // Right after the short call's timeout, not at its own.
    assert!(took < STORE_TIMEOUT + SLACK, "took {took:?}");
    assert_eq!(proxy.accepted(), 2, "sent again on a new connection");
}

/// The store's deadline is the layer's store timeout, learned from the
/// layer's settings: a store given no timeout of its own, under a layer
/// whose store timeout is [`STORE_TIMEOUT`], meets a black-holed path with
/// one request that answers 503 after that timeout, and retires the
/// connection, so the next request is served on a new one. Were the
/// store's deadline its default (2 s), the layer's timer would drop every
/// call before the store could judge the connection, and each request
/// would meet the dead one again.
#[tokio::test]
async fn the_store_retires_a_dead_connection_at_the_layers_store_timeout() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let plain = RedisStore::from_url(&proxy.url())
        .unwrap()
        .with_prefix(PREFIX);
    assert_eq!(plain.timeout(), Settings::DEFAULT_STORE_TIMEOUT);
    assert_eq!(settings().store_timeout(), STORE_TIMEOUT);
    let app = app(plain);
    let cookie = log_in(&app).await;
    assert_eq!(proxy.accepted(), 1);

    proxy.freeze();
    let failed = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.body
    );
    assert!(failed.took >= STORE_TIMEOUT, "took {:?}", failed.took);
    assert!(
        failed.took < STORE_TIMEOUT + SLACK,
        "took {:?}",
        failed.took
    );
    let served = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (served.status, served.body.as_str()),
        (StatusCode::OK, "alice"),
        "served again after one timeout"
    );
    assert_eq!(proxy.accepted(), 2, "on a new connection");
}

/// The path dies while many visitors' requests are on the connection:
/// those time out together, the connection is replaced, and every visitor's
/// next request is served, well within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_visitors_on_a_dead_connection_are_served_after_one_timeout() {
    const VISITORS: usize = 16;
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let app = app(store_at(&proxy.url()));
    let mut cookies = Vec::new();
    for _ in 0..VISITORS {
        cookies.push(log_in(&app).await);
    }
    proxy.freeze();
    let frozen = Instant::now();
    let mut visitors = tokio::task::JoinSet::new();
    for cookie in cookies {
        let app = app.clone();
        visitors.spawn(async move {
            // Each visitor in turn: bounded in count and time.
            for attempt in 0..3 {
                let reply = send(&app, "/whoami", Some(&cookie)).await;
                if reply.status == StatusCode::OK {
                    assert_eq!(reply.body, "alice");
                    return attempt;
                }
                assert_eq!(
                    reply.status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{}",
                    reply.body
                );
                assert!(reply.took < STORE_TIMEOUT + SLACK, "took {:?}", reply.took);
            }
            panic!("never served again");
        });
    }
    let mut failed = 0;
    while let Some(attempts) = visitors.join_next().await {
        let attempts = attempts.unwrap();
        assert!(attempts <= 1, "a visitor failed {attempts} times in a row");
        failed += attempts;
    }
    let recovered = frozen.elapsed();
    println!(
        "{VISITORS} visitors served again {recovered:?} after the path died; {failed} requests failed"
    );
    assert!(recovered < STORE_TIMEOUT * 2 + SLACK, "took {recovered:?}");
    assert!(proxy.accepted() > 1, "served on a new connection");
}

// -------------------------------------------------------------------- recovery

// How long each fault keeps a default store from serving: from the fault
// (or its end) to the first request answered 200 with the session's data,
// and how many answered 503 on the way. Each test prints one line for the
// documentation's table; the black-holed path's is printed by
// `a_connection_that_stops_answering_is_replaced`.

/// An app on a store at `url` with the default store timeout (2 s): a
/// deployment's defaults.
fn default_app(url: &str) -> Router {
    let store = RedisStore::from_url(url).unwrap().with_prefix(PREFIX);
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&SECRET).unwrap()).unwrap())
        .build()
        .unwrap();
    assert_eq!(settings.store_timeout(), Settings::DEFAULT_STORE_TIMEOUT);
    app_with(store, &settings)
}

/// Reads `/whoami` with `cookie` until it answers 200 with `user`, each
/// failure a 503 within the store's timeout that leaves the cookie alone:
/// when it was served, and how many requests answered 503 before.
async fn served_again(app: &Router, cookie: &str, user: &str) -> (Instant, usize) {
    let started = Instant::now();
    let mut failed = 0;
    loop {
        assert!(
            started.elapsed() < HANG_GUARD,
            "not served again; {failed} requests answered 503"
        );
        let reply = send(app, "/whoami", Some(cookie)).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.body, user, "the session's data");
            return (Instant::now(), failed);
        }
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert_eq!(reply.set_cookie, None, "the client's cookie is left alone");
        let timeout = Settings::DEFAULT_STORE_TIMEOUT;
        assert!(reply.took < timeout + SLACK, "took {:?}", reply.took);
        failed += 1;
    }
}

/// Prints a fault's recovery as the documentation's table takes it, and
/// holds it to [`RECOVERY_BOUND`].
fn report(fault: &str, after: Duration, failed: usize) {
    println!(
        "recovery: {fault}: served again after {after:?}, {failed} request(s) answered 503 on the way"
    );
    assert!(
        after < RECOVERY_BOUND,
        "{fault}: served again after {after:?}"
    );
}

/// Redis closes the store's connection (`CLIENT KILL`, every client but the
/// test's own) and stays up.
#[tokio::test]
async fn recovery_closed() {
    let server = RedisServer::start();
    let app = default_app(&server.url());
    let cookie = log_in(&app).await;

    let mut kill = redis::cmd("CLIENT");
    kill.arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes");
    let killed: u64 = server.query(&kill).await;
    let closed = Instant::now();
    assert!(killed >= 1, "the store's connection was killed");
    let (served, failed) = served_again(&app, &cookie, "alice").await;
    report("closed", served - closed, failed);
}

/// The path resets the store's connection: a RST, and Redis stays up.
#[tokio::test]
async fn recovery_reset() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port).await;
    let app = default_app(&proxy.url());
    let cookie = log_in(&app).await;
    // A connection of the test's own through the proxy, to see the RST.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port: u16 = proxy.url().rsplit(':').next().unwrap().parse().unwrap();
    let mut witness = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    witness.write_all(b"PING\r\n").await.unwrap();
    let mut pong = [0u8; 7];
    witness.read_exact(&mut pong).await.unwrap();
    assert_eq!(proxy.accepted(), 2);

    proxy.reset();
    let witnessed = tokio::time::timeout(HANG_GUARD, witness.read(&mut pong)).await;
    let reset = Instant::now();
    assert_eq!(
        witnessed.unwrap().map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "the proxy resets, it does not close"
    );
    let (served, failed) = served_again(&app, &cookie, "alice").await;
    report("reset", served - reset, failed);
    assert_eq!(proxy.accepted(), 3, "served on a new connection");
}

/// Redis frozen (`SIGSTOP`) for [`PAUSE`], then thawed: the requests
/// meanwhile answer 503 within the store's timeout; measured from the thaw.
#[tokio::test]
async fn recovery_paused() {
    /// Longer than two store timeouts.
    const PAUSE: Duration = Duration::from_secs(5);
    let server = RedisServer::start();
    let app = default_app(&server.url());
    let cookie = log_in(&app).await;

    server.signal("-STOP");
    let thaw = async {
        tokio::time::sleep(PAUSE).await;
        server.signal("-CONT");
        Instant::now()
    };
    let ((served, failed), thawed) = tokio::join!(served_again(&app, &cookie, "alice"), thaw);
    assert!(served > thawed, "served while paused");
    assert!(failed >= 1, "a request met the pause");
    report("paused", served - thawed, failed);
}

/// Redis killed and started again on the same port, empty: an old cookie
/// then gets a fresh session. Measured from when the new server answers.
#[tokio::test]
async fn recovery_restarted() {
    let mut server = RedisServer::start();
    let app = default_app(&server.url());
    let cookie = log_in(&app).await;
    server.stop();
    let down = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);

    server.restart();
    let up = Instant::now();
    let (served, failed) = served_again(&app, &cookie, "anonymous").await;
    report("restarted", served - up, failed);
}

// --------------------------------------------------------------------- renewal

/// A hash's fields, by name, as text.
async fn fields(server: &RedisServer, key: &str) -> BTreeMap<String, String> {
    server.query(redis::cmd("HGETALL").arg(key)).await
}

async fn ttl_of(server: &RedisServer, key: &str) -> i64 {
    server.query(redis::cmd("TTL").arg(key)).await
}

#[tokio::test]
async fn a_renewed_cookie_finds_a_marker_that_refuses_its_writes() {
    let server = RedisServer::start();
    let app = app(store(&server));
    let (old, old_key) = log_in_with_key(&app, &server).await;

    let renewed = send(&app, "/relogin", Some(&old)).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let new = renewed.cookie().expect("a renewal sets the new cookie");
    assert_ne!(new, old);
    let keys = server.session_keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");

    // The old key holds the marker alone, kept for as long as the new
    // session can live.
    let marker = fields(&server, &old_key).await;
    assert_eq!(
        marker.keys().map(String::as_str).collect::<Vec<_>>(),
        ["renewed", "tag"]
    );
    let idle = settings().idle_timeout().as_secs() as i64;
    let ttl = ttl_of(&server, &old_key).await;
    assert!(ttl > 0 && ttl <= idle, "TTL {ttl}");

    // The old cookie sees no session and keeps its cookie; its writes are
    // refused and leave the marker as it was.
    let read = send(&app, "/whoami", Some(&old)).await;
    assert_eq!(
        (read.status, read.body.as_str(), read.set_cookie),
        (StatusCode::OK, "anonymous", None)
    );
    let write = send(&app, "/count", Some(&old)).await;
    assert_eq!(
        (write.status, write.set_cookie),
        (StatusCode::CONFLICT, None)
    );
    assert_eq!(fields(&server, &old_key).await, marker);

    let read = send(&app, "/whoami", Some(&new)).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "bob"));
}

/// The store by id, where the HTTP path cannot reach: an update that comes
/// after the retire, a retire sent twice (its connection dropped before the
/// reply), and expired sessions met by an update or a retire.
#[tokio::test]
async fn a_marker_outlives_late_updates_and_a_retire_sent_twice() {
    const T: UnixTime = UnixTime::from_secs(1_700_000_000);
    let at = |secs| T + Duration::from_secs(secs);
    let server = RedisServer::start();
    let store = store(&server);
    let id = SessionId::from_bytes([3; 16]);
    let key = store.key_of(&id);
    let mut record = Record::empty(T, at(600), 4);
    record
        .data
        .insert("user".into(), Value::encode("alice").unwrap());

    store.create(&id, &record, record.expires).await.unwrap();
    assert!(matches!(
        store.create(&id, &record, record.expires).await,
        Err(StoreError::Exists)
    ));
    store.retire(&id, at(10), at(610), None).await.unwrap();
    assert_eq!(
        store.load(&id, at(10)).await.unwrap(),
        Some(Loaded::Renewed)
    );
    assert_eq!(
        store.load(&id, at(609)).await.unwrap(),
        Some(Loaded::Renewed)
    );
    assert_eq!(store.load(&id, at(610)).await.unwrap(), None);
    let ttl = ttl_of(&server, &key).await;
    assert!(ttl > 590 && ttl <= 600, "TTL {ttl}");
    let marker = fields(&server, &key).await;

    // A request that loaded the session before the retire saves after it:
    // gone, and the marker stays, so the old cookie still loads as renewed.
    let mut changes = Changes::default();
    changes.mark("user".into());
    for cleared in [false, true] {
        changes.cleared = cleared;
        let update = Update {
            record: &record,
            changes: &changes,
            expires: at(620),
            ends: at(620),
            now: at(20),
            stored_user: None,
            max_size: usize::MAX,
        };
        assert!(matches!(
            store.update(&id, update).await,
            Err(StoreError::Gone)
        ));
        assert_eq!(fields(&server, &key).await, marker, "cleared: {cleared}");
    }
    // A second renewal of the same session finds it gone.
    assert!(matches!(
        store.retire(&id, at(20), at(620), None).await,
        Err(StoreError::Gone)
    ));
    // Nothing new is stored over a marker.
    assert!(matches!(
        store.create(&id, &record, record.expires).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(fields(&server, &key).await, marker);

    // The retire script run again with the tag of the call that wrote the
    // marker, as a resend does, answers retired; with any other, gone.
    let retire_again = |tag: &str| {
        let mut eval = redis::cmd("EVAL");
        eval.arg(include_str!("../src/retire.lua"))
            .arg(1)
            .arg(&key)
            .arg(at(10).as_secs())
            .arg(at(610).as_secs())
            .arg(600)
            .arg(tag);
        eval
    };
    let resent: i64 = server.query(&retire_again(&marker["tag"])).await;
    assert_eq!(resent, 0);
    let other: i64 = server.query(&retire_again("another call")).await;
    assert_eq!(other, 2);
    assert_eq!(fields(&server, &key).await, marker);

    store.delete(&id, None).await.unwrap();
    assert_eq!(store.load(&id, at(20)).await.unwrap(), None);
    assert!(server.session_keys().await.is_empty());

    // An expired session met by an update or a retire is gone, and its
    // hash is deleted.
    for retire in [false, true] {
        store.create(&id, &record, record.expires).await.unwrap();
        let result = if retire {
            store.retire(&id, at(600), at(1200), None).await
        } else {
            let update = Update {
                record: &record,
                changes: &changes,
                expires: at(1200),
                ends: at(1200),
                now: at(600),
                stored_user: None,
                max_size: usize::MAX,
            };
            store.update(&id, update).await.map(drop)
        };
        assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
        assert!(server.session_keys().await.is_empty(), "retire: {retire}");
    }
}

// ----------------------------------------------------------------- round trips

/// Requests of each kind the round-trip tests send, after the warm-up.
const ROUNDS: u64 = 5;

/// Watches what clients send a server: `MONITOR` for the commands (it
/// tells a client's commands from those a script runs, which `INFO
/// commandstats` counts alike), and `INFO stats` for the connections
/// opened. It talks to the server over connections of its own, which it
/// leaves out of what it reports.
struct Meter {
    conn: redis::aio::MultiplexedConnection,
    port: u16,
    marks: u32,
}

/// A `MONITOR` connection: from `+OK` on, the server writes it one line per
/// command it runs, in the order it runs them.
struct Monitor {
    lines: std::io::BufReader<TcpStream>,
}

/// What clients made the server do between [`Meter::begin`] and
/// [`Meter::end`].
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// Commands sent, by lower-case name, and how many of each.
    commands: BTreeMap<String, u64>,
    /// Connections opened.
    connections: u64,
}

impl Meter {
    async fn new(server: &RedisServer) -> Self {
        Self {
            conn: server.client().await,
            port: server.port,
            marks: 0,
        }
    }

    /// Starts watching: a `MONITOR` connection, then the counters zeroed
    /// (so that connection is not counted).
    async fn begin(&mut self) -> Monitor {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).unwrap();
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut lines = std::io::BufReader::new(stream);
        let mut ok = String::new();
        std::io::BufRead::read_line(&mut lines, &mut ok).unwrap();
        assert_eq!(ok, "+OK\r\n");
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        Monitor { lines }
    }

    /// What the server was made to do since `begin`. Every request measured
    /// has had its reply, so the server has run all it was sent; the marker
    /// this sends runs after them, so once `MONITOR` shows the marker it has
    /// shown them all. No waiting on time.
    async fn end(&mut self, monitor: Monitor) -> Seen {
        self.marks += 1;
        let marker = format!("meter-mark-{}", self.marks);
        let _: String = redis::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let connections = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("total_connections_received:"))
            .expect("INFO stats names total_connections_received")
            .parse()
            .unwrap();

        let lines = tokio::task::spawn_blocking(move || monitor.until(&marker))
            .await
            .unwrap();
        // The meter's own connection is the one that sent the marker.
        let (meter, _) = lines.last().unwrap().clone();
        let mut commands = BTreeMap::new();
        for (client, command) in lines {
            if client != meter && client != "lua" {
                *commands.entry(command).or_insert(0) += 1;
            }
        }
        Seen {
            commands,
            connections,
        }
    }
}

impl Monitor {
    /// `(client, command)` for every command up to and including the
    /// `ECHO` of `marker`. A line reads
    /// `+1700000000.123456 [0 127.0.0.1:54321] "hgetall" "key"`, and the
    /// client is `lua` for what a script runs.
    fn until(mut self, marker: &str) -> Vec<(String, String)> {
        let echo = format!("\"echo\" \"{marker}\"");
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            let read = std::io::BufRead::read_line(&mut self.lines, &mut line).unwrap();
            assert!(read > 0, "MONITOR ended before the marker");
            let (_, rest) = line.split_once(" [").unwrap();
            let (client, rest) = rest.split_once("] ").unwrap();
            let client = client.split_once(' ').unwrap().1.to_owned();
            let command = rest.split('"').nth(1).unwrap().to_lowercase();
            // Commands show as the client spelled them: `ECHO`, `echo`.
            let done = line.trim_end().to_lowercase().ends_with(&echo);
            seen.push((client, command));
            if done {
                return seen;
            }
        }
    }
}

fn seen(commands: &[(&str, u64)]) -> Seen {
    Seen {
        commands: commands
            .iter()
            .map(|&(name, calls)| (name.to_owned(), calls))
            .collect(),
        connections: 0,
    }
}

/// Every request a visitor makes, [`ROUNDS`] times each, and what Redis
/// saw for each kind: returned in the order read, create, update, renewal.
async fn measure(server: &RedisServer, store: RedisStore) -> [Seen; 4] {
    let app = app(store.with_prefix(PREFIX));
    let mut meter = Meter::new(server).await;

    // Warm-up: the pool opens its connection, and the first run of each
    // script loads it (`EVALSHA`, answered `NOSCRIPT`, then `EVAL`).
    let renewed = log_in(&app).await;
    let renewed = send(&app, "/relogin", Some(&renewed)).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let cookie = log_in(&app).await;
    assert_eq!(send(&app, "/count", Some(&cookie)).await.body, "1");

    let watch = meter.begin().await;
    for _ in 0..ROUNDS {
        let read = send(&app, "/whoami", Some(&cookie)).await;
        assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "alice"));
        assert_eq!(read.set_cookie, None, "a read writes nothing");
    }
    let reads = meter.end(watch).await;

    let watch = meter.begin().await;
    for _ in 0..ROUNDS {
        let created = send(&app, "/login", None).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        assert!(created.cookie().is_some());
    }
    let creates = meter.end(watch).await;

    let watch = meter.begin().await;
    for visit in 2..ROUNDS + 2 {
        let updated = send(&app, "/count", Some(&cookie)).await;
        assert_eq!(
            (updated.status, updated.body),
            (StatusCode::OK, visit.to_string())
        );
    }
    let updates = meter.end(watch).await;

    let mut current = renewed.cookie().unwrap();
    let watch = meter.begin().await;
    for _ in 0..ROUNDS {
        let renewed = send(&app, "/relogin", Some(&current)).await;
        assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
        current = renewed.cookie().expect("a renewal sets a cookie");
    }
    let renewals = meter.end(watch).await;
    [reads, creates, updates, renewals]
}

#[tokio::test]
async fn a_load_is_one_hgetall_and_a_save_one_evalsha_and_nothing_else() {
    let server = RedisServer::start();
    assert_one_command_per_call(&server, store(&server)).await;
}

/// The driver's connection that the bench measures the pipe against costs
/// Redis the same commands: the comparison is of the connections alone.
#[tokio::test]
async fn on_the_drivers_connection_too_a_load_and_a_save_are_one_command_each() {
    let server = RedisServer::start();
    let store = RedisStore::from_url(&server.url())
        .unwrap()
        .with_driver_connection();
    assert_one_command_per_call(&server, store).await;
}

#[tokio::test]
async fn on_a_cluster_too_a_load_and_a_save_are_one_command_each() {
    let server = RedisServer::start_cluster().await;
    let store = RedisStore::cluster([server.url()]).unwrap();
    assert!(store.is_cluster());
    assert_one_command_per_call(&server, store).await;
}

/// Exactly one `HGETALL` per load and one `EVALSHA` per save, and no other
/// command: no PING, no UNWATCH, and no new connection (which would cost a
/// handshake).
async fn assert_one_command_per_call(server: &RedisServer, store: RedisStore) {
    assert_commands_per_call(server, store, seen).await;
}

/// Loads, creates, updates and renewals through `store` see what `expect`
/// makes of the store's own commands for each: one `HGETALL` per load, one
/// `EVALSHA` per save, two per renewal (create the new id, retire the old).
async fn assert_commands_per_call(
    server: &RedisServer,
    store: RedisStore,
    expect: impl Fn(&[(&str, u64)]) -> Seen,
) {
    let [reads, creates, updates, renewals] = measure(server, store).await;
    assert_eq!(reads, expect(&[("hgetall", ROUNDS)]), "a load");
    assert_eq!(creates, expect(&[("evalsha", ROUNDS)]), "a create");
    assert_eq!(
        updates,
        expect(&[("hgetall", ROUNDS), ("evalsha", ROUNDS)]),
        "a load and an update"
    );
    // The new id's create, then the old id's retire.
    assert_eq!(
        renewals,
        expect(&[("hgetall", ROUNDS), ("evalsha", 2 * ROUNDS)]),
        "a load and a renewal"
    );
}

/// The control: the same count sees deadpool-redis's check on checkout,
/// which is why `from_url` does not use its pool.
#[tokio::test]
async fn a_hand_built_deadpool_redis_pool_pings_on_every_checkout() {
    let server = RedisServer::start();
    let pool = deadpool_redis::Config::from_url(server.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    // One `UNWATCH` and `PING` before each store call: each command here.
    let checked = |commands: &[(&str, u64)]| {
        let calls = commands.iter().map(|&(_, n)| n).sum();
        let mut all = vec![("ping", calls), ("unwatch", calls)];
        all.extend_from_slice(commands);
        seen(&all)
    };
    assert_commands_per_call(&server, RedisStore::from_pool(pool), checked).await;
}
