//! What a visitor sees when Redis misbehaves: stopped, hung, restarted,
//! flushed, holding corrupt state; and that two application instances share
//! sessions through it. Each test starts its own `redis-server` on a free
//! port and drives an axum router with `oneshot`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use session_core::{Key, Keyring, Session, SessionId, SessionLayer, Settings, ValueError, token};
use session_redis::RedisStore;
use session_redis::redis;
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
}

impl RedisServer {
    fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "session-redis-faults-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new("redis-server")
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

// ------------------------------------------------------------------------ app

fn settings() -> Settings {
    Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&SECRET).unwrap()).unwrap())
        // Above the store's own timeout, so the store's is the one that trips.
        .with_store_timeout(STORE_TIMEOUT * 10)
        .build()
        .unwrap()
}

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::from_url(&server.url())
        .unwrap()
        .with_prefix(PREFIX)
        .with_timeout(STORE_TIMEOUT)
}

async fn login(session: Session) -> Result<&'static str, ValueError> {
    session.insert("user", "alice")?;
    Ok("logged in")
}

async fn whoami(session: Session) -> Result<String, ValueError> {
    Ok(session
        .get::<String>("user")?
        .unwrap_or_else(|| "anonymous".into()))
}

fn app(store: RedisStore) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .layer(SessionLayer::new(store, &settings()))
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
/// The Redis key of the session a cookie names.
fn key_for(cookie: &str) -> String {
    let (id, _mac) = cookie.split_once('.').unwrap();
    let id = URL_SAFE_NO_PAD.decode(id).unwrap();
    format!("{PREFIX}{}", SessionId(id.try_into().unwrap()).to_base64())
}

async fn log_in(app: &Router) -> String {
    let reply = send(app, "/login", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.cookie().expect("login sets a cookie")
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
    assert!(read.removes_cookie(), "{:?}", read.set_cookie);
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
        let cookie = log_in(&app).await;
        let mut hset = redis::cmd("HSET");
        hset.arg(key_for(&cookie)).arg(field).arg(garbage);
        let _: i64 = server.query(&hset).await;

        let read = send(&app, "/whoami", Some(&cookie)).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{field}"
        );
        assert!(read.removes_cookie(), "{field}: {:?}", read.set_cookie);
    }

    // Something that is not a hash under a session's key.
    let cookie = log_in(&app).await;
    let key = key_for(&cookie);
    let _: i64 = server.query(redis::cmd("DEL").arg(&key)).await;
    let () = server.query(redis::cmd("SET").arg(&key).arg("x")).await;
    let read = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    assert!(read.removes_cookie(), "{:?}", read.set_cookie);
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
    server.stop();
    let other_key = Keyring::new(Key::from_bytes(&[8; 32]).unwrap()).unwrap();
    let forged = token::seal(&other_key, &SessionId([9; 16]));
    for cookie in [forged.as_str(), "not-a-token", "A.B"] {
        let read = send(&app, "/whoami", Some(cookie)).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{cookie}"
        );
        assert!(read.removes_cookie(), "{:?}", read.set_cookie);
    }
}
