//! Credentials and a database number in the store's URL, against real
//! `redis-server` processes: a password alone, an ACL user with its
//! password, a database number; the connection the store opens
//! authenticates as that user and selects that database (the server's own
//! `CLIENT LIST` says so), sessions round-trip, and a wrong password, an
//! unknown user, a missing password or a user without the rights fail
//! with an error that names the cause. Each test starts its own server on
//! a free port; it is killed when the test ends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::Arc;
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
use http_sessions_redis::redis;
use support::{Reach, Spawned, free_port};
use tower::ServiceExt;

/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);
/// The default user's password on the servers that require one: percent
/// encoded in a URL (`%40`, `%3A`, `%2F`).
const ADMIN_PASSWORD: &str = "p@ss:w/rd";
const ADMIN_PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd";
/// What no server here accepts; never to be seen in an error.
const WRONG_PASSWORD: &str = "not-the-password-17";
/// The client name of the test's own connections.
const ADMIN: &str = "test-admin";

// ---------------------------------------------------------------- redis-server

/// A `redis-server` child on a free port and a directory of its own,
/// started with `args` on top of the usual ones, and killed on drop.
struct RedisServer {
    server: Spawned,
    port: u16,
    /// The password of the default user, if the server requires one.
    password: Option<&'static str>,
}

impl RedisServer {
    /// A server that requires [`ADMIN_PASSWORD`] of the default user, and
    /// knows `alice` (password `secret`, every key and command) and `carol`
    /// (password `secret`, only keys under `other:`).
    fn with_users() -> Self {
        Self::start(
            &[
                "--requirepass",
                ADMIN_PASSWORD,
                "--user",
                "alice",
                "on",
                ">secret",
                "~*",
                "&*",
                "+@all",
                "--user",
                "carol",
                "on",
                ">secret",
                "~other:*",
                "+@all",
            ],
            Some(ADMIN_PASSWORD),
        )
    }

    /// A server that requires no password.
    fn open() -> Self {
        Self::start(&[], None)
    }

    fn start(args: &[&str], password: Option<&'static str>) -> Self {
        let port = free_port();
        let dir = Spawned::dir("auth", port);
        // Also on a Unix socket, where the store uses the driver's own
        // connection and handshake.
        let socket = dir.join("redis.sock");
        let mut all = vec!["--unixsocket".into(), socket.into_os_string()];
        all.extend(["--unixsocketperm", "700"].map(Into::into));
        all.extend(args.iter().map(Into::into));
        Self {
            server: Spawned::start(port, dir, all),
            port,
            password,
        }
    }

    /// `redis://127.0.0.1:port` with `credentials` (`user:password@` or
    /// `:password@`, already percent-encoded) and `path` (`/3`).
    fn url(&self, credentials: &str, path: &str) -> String {
        format!("redis://{credentials}127.0.0.1:{}{path}", self.port)
    }

    /// `redis+unix://` to the server's socket, with `query` (`?user=...`).
    fn socket_url(&self, query: &str) -> String {
        format!(
            "redis+unix://{}{query}",
            self.server.dir.join("redis.sock").display()
        )
    }

    /// A connection of the test's own, as the default user, on database 0.
    async fn admin(&self) -> redis::aio::MultiplexedConnection {
        let credentials = match self.password {
            Some(_) => format!(":{ADMIN_PASSWORD_IN_URL}@"),
            None => String::new(),
        };
        let mut admin = redis::Client::open(self.url(&credentials, ""))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        // Named, so that `clients` tells the test's connections (a closed
        // one may still be listed) from the store's.
        let () = query(&mut admin, redis::cmd("CLIENT").arg("SETNAME").arg(ADMIN)).await;
        admin
    }

    /// The user and database of every client connected but the test's
    /// own, as the server sees them.
    async fn clients(&self) -> Vec<(String, i64)> {
        let mut admin = self.admin().await;
        let list: String = query(&mut admin, redis::cmd("CLIENT").arg("LIST")).await;
        list.lines()
            .filter_map(|line| {
                let field = |name: &str| {
                    line.split(' ')
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_owned)
                };
                if field("name")? == ADMIN {
                    return None;
                }
                Some((field("user")?, field("db")?.parse().ok()?))
            })
            .collect()
    }

    /// The keys under `prefix` in database `db`, sorted, through a raw
    /// connection that selects it itself.
    async fn keys_in(&self, db: i64, prefix: &str) -> Vec<String> {
        let mut admin = self.admin().await;
        let () = query(&mut admin, redis::cmd("SELECT").arg(db)).await;
        let mut keys: Vec<String> =
            query(&mut admin, redis::cmd("KEYS").arg(format!("{prefix}*"))).await;
        keys.sort();
        keys
    }

    /// How many keys database `db` holds.
    async fn dbsize(&self, db: i64) -> i64 {
        let mut admin = self.admin().await;
        let () = query(&mut admin, redis::cmd("SELECT").arg(db)).await;
        query(&mut admin, &redis::cmd("DBSIZE")).await
    }
}

async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> T {
    cmd.query_async(conn).await.unwrap()
}

// -------------------------------------------------------------------- helpers

fn store_at(url: &str) -> RedisStore {
    RedisStore::from_url(url)
        .unwrap()
        .with_prefix(support::random_prefix("auth"))
}

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[9; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
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

/// The status, the session cookie set (if any) and the body.
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
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

/// Logs in, then reads the session back with the cookie the login set.
async fn log_in_and_back(app: &Router) {
    let (status, cookie, body) = send(app, "/login", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.expect("a login sets a cookie");
    let (status, _, body) = send(app, "/whoami", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

/// What a load through a store at `url` fails with: it must fail.
async fn load_error(url: &str) -> StoreError {
    let store = store_at(url);
    let id = RandomIds::new().next_id().unwrap();
    match store.load(&id, UnixTime::from_secs(1_700_000_000)).await {
        Ok(loaded) => panic!("a load through {url} succeeded: {:?}", loaded.is_some()),
        Err(error) => error,
    }
}

/// Checks that `error` is [`StoreError::Unavailable`] and its message
/// holds each of `words`, never a password, nor "Protocol error"; returns
/// the message.
fn assert_names(error: &StoreError, words: &[&str]) -> String {
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let message = error.to_string();
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
    for secret in [WRONG_PASSWORD, ADMIN_PASSWORD, "secret"] {
        assert!(!message.contains(secret), "a password in {message:?}");
    }
    assert!(!message.contains("Protocol error"), "{message}");
    message
}

// --------------------------------------------------------- conformance harness

/// Stores at a given URL (credentials and database included), looked
/// inside through the server's admin connection, on the URL's database.
struct AtUrl {
    server: Arc<RedisServer>,
    url: String,
    db: i64,
}

#[async_trait]
impl Reach for AtUrl {
    fn store(&self) -> RedisStore {
        store_at(&self.url)
    }

    async fn keys(&self, prefix: &str) -> usize {
        self.server.keys_in(self.db, prefix).await.len()
    }
}

/// Runs the conformance cases through stores at `url`.
async fn conformance(server: &Arc<RedisServer>, url: String, db: i64) {
    let server = Arc::clone(server);
    support::passes_the_conformance_cases(AtUrl { server, url, db }).await;
}

// ---------------------------------------------------------------------- tests

#[tokio::test]
async fn an_acl_user_with_its_password_stores_and_loads_sessions() {
    let server = Arc::new(RedisServer::with_users());
    let url = server.url("alice:secret@", "/2");
    conformance(&server, url.clone(), 2).await;
    let store = store_at(&url);
    log_in_and_back(&app(store.clone())).await;
    // The store's connections are alice's, on database 2.
    let clients = server.clients().await;
    assert!(!clients.is_empty());
    assert!(
        clients.iter().all(|(user, db)| user == "alice" && *db == 2),
        "{clients:?}"
    );
    assert_eq!(server.dbsize(0).await, 0, "nothing lands in database 0");
}

#[tokio::test]
async fn a_password_alone_authenticates_the_default_user() {
    let server = RedisServer::with_users();
    // Percent-encoded in the URL, sent decoded.
    let store = store_at(&server.url(&format!(":{ADMIN_PASSWORD_IN_URL}@"), ""));
    // The store is kept, and its connections open, until the end.
    log_in_and_back(&app(store.clone())).await;
    let clients = server.clients().await;
    assert!(!clients.is_empty());
    assert!(
        clients
            .iter()
            .all(|(user, db)| user == "default" && *db == 0),
        "{clients:?}"
    );
}

#[tokio::test]
async fn a_database_number_in_the_url_puts_the_keys_in_that_database() {
    let server = Arc::new(RedisServer::open());
    let url = server.url("", "/3");
    let store = store_at(&url);
    log_in_and_back(&app(store.clone())).await;
    assert_eq!(server.keys_in(3, store.prefix()).await.len(), 1);
    assert_eq!(server.dbsize(3).await, 1);
    assert_eq!(server.dbsize(0).await, 0, "nothing lands in database 0");
    let clients = server.clients().await;
    assert!(!clients.is_empty());
    assert!(clients.iter().all(|(_, db)| *db == 3), "{clients:?}");
    conformance(&server, url, 3).await;
    assert_eq!(server.dbsize(0).await, 0, "nothing lands in database 0");
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_fails_naming_authentication() {
    let server = RedisServer::with_users();
    let wrong = format!(":{WRONG_PASSWORD}@");
    let error = load_error(&server.url(&wrong, "")).await;
    assert_eq!(
        assert_names(&error, &[]),
        "session store unavailable: authentication failed: Redis refused the user name or \
         password in the URL (WRONGPASS invalid username-password pair or user is disabled.)"
    );
    for credentials in [
        format!("alice:{WRONG_PASSWORD}@"),
        "bob:secret@".to_owned(),
        // Refused before the database is selected.
        wrong.clone(),
    ] {
        let url = server.url(&credentials, "/3");
        let error = load_error(&url).await;
        assert_names(&error, &["authentication failed", "WRONGPASS"]);
        // A visitor gets a 503, and nothing is stored.
        let (status, cookie, _) = send(&app(store_at(&url)), "/login", None).await;
        assert_eq!((status, cookie), (StatusCode::SERVICE_UNAVAILABLE, None));
    }
    assert_eq!(server.dbsize(0).await + server.dbsize(3).await, 0);
    // A password for a server that has none set is refused too.
    let open = RedisServer::open();
    let error = load_error(&open.url(&wrong, "")).await;
    assert_names(
        &error,
        &["authentication failed", "without any password configured"],
    );
}

#[tokio::test]
async fn a_missing_password_fails_naming_what_the_server_requires() {
    let server = RedisServer::with_users();
    // No `AUTH` at all: the first command is refused; with a database, the
    // `SELECT` of the handshake is; a user name alone sends no `AUTH`.
    for url in [
        server.url("", ""),
        server.url("", "/3"),
        server.url("alice@", ""),
    ] {
        let error = load_error(&url).await;
        assert_names(
            &error,
            &["authentication failed", "requires a password", "NOAUTH"],
        );
        let (status, cookie, _) = send(&app(store_at(&url)), "/login", None).await;
        assert_eq!((status, cookie), (StatusCode::SERVICE_UNAVAILABLE, None));
    }
}

#[tokio::test]
async fn a_user_without_rights_on_the_keys_fails_naming_permission() {
    let server = RedisServer::with_users();
    // carol may touch keys under `other:` only; the store's are `auth:...`.
    let url = server.url("carol:secret@", "");
    let error = load_error(&url).await;
    assert_names(&error, &["permission denied", "NOPERM"]);
    let (status, cookie, _) = send(&app(store_at(&url)), "/login", None).await;
    assert_eq!((status, cookie), (StatusCode::SERVICE_UNAVAILABLE, None));
    // Under a prefix of hers, she keeps sessions.
    let store = RedisStore::from_url(&url).unwrap().with_prefix("other:");
    log_in_and_back(&app(store)).await;
}

#[tokio::test]
async fn on_a_unix_socket_the_driver_s_handshake_fails_the_same_way() {
    let server = RedisServer::with_users();
    let wrong = server.socket_url(&format!("?user=alice&pass={WRONG_PASSWORD}"));
    let error = load_error(&wrong).await;
    assert_names(
        &error,
        &["authentication failed", "refused the user name or password"],
    );
    let error = load_error(&server.socket_url("")).await;
    assert_names(
        &error,
        &["authentication failed", "requires a password", "NOAUTH"],
    );
    let store = store_at(&server.socket_url("?user=alice&pass=secret&db=2"));
    log_in_and_back(&app(store.clone())).await;
    assert_eq!(server.keys_in(2, store.prefix()).await.len(), 1);
    assert_eq!(server.dbsize(0).await, 0, "nothing lands in database 0");
}
