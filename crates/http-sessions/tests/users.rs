//! The demo's signed-in routes through the layer with real requests, on
//! each server-side store: a remembered login (a 30-day cookie, bound to
//! the user and labelled with the browser), the user's sessions listed,
//! and "log out everywhere" ending every device. On Redis (a node and a
//! Cluster, `REDIS_URL` and `REDIS_CLUSTER_URLS`, which `cargo xtask
//! test-all` sets) the user's index and the sessions live in different
//! slots.
#![cfg(all(feature = "memory", feature = "axum"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;
use http_sessions::memory::MemoryStore;
use http_sessions::{Key, Keyring, SessionLayer, Settings};
use tower::ServiceExt;

#[path = "../examples/demo/routes.rs"]
mod routes;

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[21; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
}

/// Status, body and session cookie value of `GET path` from `agent`.
async fn get(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
    agent: &str,
) -> (StatusCode, String, Option<String>) {
    let mut request = Request::get(path).header(header::USER_AGENT, agent);
    if let Some(token) = cookie {
        request = request.header(header::COOKIE, format!("session={token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v: &HeaderValue| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).unwrap(),
        set_cookie,
    )
}

/// The cookie value a `Set-Cookie` gives, unless it removes it.
fn value(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?;
    let value = pair.strip_prefix("session=")?;
    (!value.is_empty()).then(|| value.to_owned())
}

async fn remembered_logins_are_listed_and_ended_everywhere(layer: SessionLayer) {
    let app = routes::router().layer(layer.clone());
    let (status, body, set_cookie) = get(&app, "/remember", None, "laptop browser").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "demo is remembered for 30 days")
    );
    let set_cookie = set_cookie.expect("a login sets the cookie");
    assert!(
        set_cookie.contains(&format!("Max-Age={}", routes::REMEMBER.as_secs())),
        "{set_cookie}"
    );
    let laptop = value(&set_cookie).unwrap();
    let phone = value(
        &get(&app, "/remember", None, "phone browser")
            .await
            .2
            .unwrap(),
    )
    .unwrap();

    let (_, list, _) = get(&app, "/sessions", Some(&laptop), "laptop browser").await;
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort_by_key(|line| line.contains("phone"));
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].ends_with(" laptop browser (this one)"), "{list}");
    assert!(lines[1].ends_with(" phone browser"), "{list}");

    let (status, body, set_cookie) =
        get(&app, "/logout-everywhere", Some(&phone), "phone browser").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "ended 2 sessions of demo")
    );
    assert!(
        set_cookie.unwrap().contains("Max-Age=0"),
        "this device is logged out too"
    );
    let (_, body, _) = get(&app, "/sessions", Some(&laptop), "laptop browser").await;
    assert_eq!(
        body, "not signed in: /remember first",
        "the laptop is logged out"
    );

    // The store calls behind it, counted: two logins, and one load for
    // each later request; the store lists a user's sessions with their
    // records, so no listed session is loaded again.
    let stats = layer.stats();
    assert_eq!(stats.creates, 2, "{stats:?}");
    assert_eq!(stats.loads, 3, "{stats:?}");
    assert_eq!(
        (stats.store_errors, stats.timeouts, stats.conflicts),
        (0, 0, 0)
    );
}

/// Each user's generation: sessions carrying an older one are refused.
#[cfg(feature = "cookie")]
#[derive(Debug, Clone, Default)]
struct Generations(std::sync::Arc<std::sync::Mutex<u64>>);

#[cfg(feature = "cookie")]
#[async_trait::async_trait]
impl http_sessions::SessionCheck for Generations {
    async fn accept(
        &self,
        session: &http_sessions::Session,
    ) -> Result<bool, http_sessions::StoreError> {
        if session.user().is_none() {
            return Ok(true);
        }
        let carried = session.get::<u64>("generation").ok().flatten().unwrap_or(0);
        Ok(carried >= *self.0.lock().unwrap())
    }
}

/// Sessions in the cookie have no index: a raised generation ends them
/// all through the layer's check, and their cookie is removed.
#[cfg(feature = "cookie")]
#[tokio::test]
async fn cookie_sessions_end_everywhere_by_a_generation() {
    let generations = Generations::default();
    let layer = http_sessions::cookie::session_layer(&settings()).with_check(generations.clone());
    let app = routes::router().layer(layer);
    let laptop = value(&get(&app, "/remember", None, "laptop").await.2.unwrap()).unwrap();
    let phone = value(&get(&app, "/remember", None, "phone").await.2.unwrap()).unwrap();
    let (_, body, _) = get(&app, "/logout", Some(&laptop), "laptop").await;
    assert_eq!(body, "{user: demo}", "accepted while current");

    *generations.0.lock().unwrap() = 1;
    for cookie in [&laptop, &phone] {
        let (status, body, set_cookie) = get(&app, "/logout", Some(cookie), "any").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "{}"),
            "no session any more"
        );
        assert!(
            set_cookie.unwrap().contains("Max-Age=0"),
            "the cookie is removed"
        );
    }
}

/// Sessions in the cookie cannot be listed or ended from the server: the
/// demo's pages say so in plain words, with what to use instead, in a 500
/// (no retry helps, so never a 503), and leave the session as it was.
#[cfg(feature = "cookie")]
#[tokio::test]
async fn cookie_sessions_are_not_listed_and_the_pages_say_why() {
    for layer in [
        http_sessions::cookie::session_layer(&settings()),
        http_sessions::cookie::encrypted_session_layer(&settings()),
    ] {
        let app = routes::router().layer(layer);
        let laptop = value(&get(&app, "/remember", None, "laptop").await.2.unwrap()).unwrap();
        for path in ["/sessions", "/logout-everywhere"] {
            let (status, body, set_cookie) = get(&app, path, Some(&laptop), "laptop").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {body}");
            for words in [
                "cannot be listed or ended from the server",
                "SessionCheck",
                "--backend memory",
            ] {
                assert!(
                    body.contains(words),
                    "{path} does not say {words:?}: {body}"
                );
            }
            assert_eq!(set_cookie, None, "{path}: the session is left alone");
        }
        let (_, body, _) = get(&app, "/logout", Some(&laptop), "laptop").await;
        assert_eq!(body, "{user: demo}", "still signed in");
    }
}

/// The demo's cap: a login past [`routes::CAP`] ends the session used
/// least recently, and `/cap` counts what is left.
#[tokio::test]
async fn a_login_past_the_demo_cap_ends_the_least_recently_used_session() {
    let clock = http_sessions::seams::ManualClock::new(http_sessions::store::UnixTime::from_secs(
        1_800_000_000,
    ));
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[22; 32]).unwrap()).unwrap())
        .with_max_sessions_per_user(routes::CAP)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    // Past a quarter of the 30-minute idle timeout, a request refreshes
    // the session: it counts as used then. (A remembered login's idle
    // timeout is its whole lifetime, so its last use cannot be told.)
    let step = std::time::Duration::from_secs(10 * 60);
    let app = routes::router().layer(SessionLayer::new(MemoryStore::new(), &settings));
    let mut tokens: Vec<String> = Vec::new();
    for n in 0..=routes::CAP {
        // The first session is used again before each later login: it
        // stays among the most recent, and the second becomes the least
        // recently used.
        if n > 0 {
            clock.advance(step);
            let (_, body, _) = get(&app, "/whoami", Some(&tokens[0]), "browser 0").await;
            assert_eq!(body, "signed in as demo", "before login {n}");
            clock.advance(std::time::Duration::from_secs(1));
        }
        let agent = format!("browser {n}");
        let (status, _, set_cookie) = get(&app, "/signin", None, &agent).await;
        assert_eq!(status, StatusCode::OK);
        tokens.push(value(&set_cookie.unwrap()).unwrap());
    }
    let (_, body, _) = get(&app, "/cap", Some(&tokens[0]), "browser 0").await;
    assert_eq!(
        body,
        format!(
            "demo has {cap} of at most {cap} sessions; a login past {cap} ends the one used \
             least recently",
            cap = routes::CAP
        )
    );
    let (_, body, _) = get(&app, "/whoami", Some(&tokens[1]), "browser 1").await;
    assert_eq!(
        body, "not signed in",
        "the least recently used session lives on"
    );
    for (n, token) in tokens.iter().enumerate().skip(2) {
        let (_, body, _) = get(&app, "/whoami", Some(token), "browser").await;
        assert_eq!(body, "signed in as demo", "session {n}");
    }
}

#[tokio::test]
async fn on_the_memory_store() {
    remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(
        MemoryStore::new(),
        &settings(),
    ))
    .await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use http_sessions::redis::RedisStore;
    use http_sessions::store::{IdSource, RandomIds};

    fn env(name: &str) -> String {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => value,
            _ => panic!(
                "{name} is not set: run `cargo xtask test-all`, which starts Redis for \
                 these tests, or set it yourself. The Redis tests never skip themselves."
            ),
        }
    }

    /// Keys of a run of their own, so runs side by side never meet.
    fn prefix() -> String {
        format!("users:{}:", RandomIds::new().next_id().unwrap().to_base64())
    }

    #[tokio::test]
    async fn on_a_redis_node() {
        let store = RedisStore::from_url(&env("REDIS_URL"))
            .unwrap()
            .with_prefix(prefix());
        remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(store, &settings()))
            .await;
    }

    #[tokio::test]
    async fn on_a_redis_cluster() {
        let urls = env("REDIS_CLUSTER_URLS");
        let store = RedisStore::cluster(urls.split(',').map(str::trim))
            .unwrap()
            .with_prefix(prefix());
        remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(store, &settings()))
            .await;
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
mod sql {
    use super::*;
    use http_sessions::store::{IdSource, RandomIds};

    /// The database URL in `name`; the tests fail without it.
    fn url(name: &str, server: &str) -> String {
        match std::env::var(name) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "{name} is not set: run `cargo xtask test-all`, which starts {server} for \
                 these tests, or set it yourself. The database tests never skip themselves."
            ),
        }
    }

    /// Tables of a run of their own, so runs side by side never meet.
    fn table() -> String {
        let id = RandomIds::new().next_id().unwrap();
        let hex: String = id.as_bytes()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("users_{hex}")
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn on_postgres() {
        let url = url("DATABASE_URL", "PostgreSQL");
        let store = http_sessions::postgres::PostgresStore::from_url(&url)
            .unwrap()
            .with_table(&table())
            .unwrap();
        store.migrate().await.unwrap();
        remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(store, &settings()))
            .await;
    }

    #[cfg(feature = "mysql")]
    #[tokio::test]
    async fn on_mysql() {
        let store = http_sessions::mysql::MySqlStore::from_url(&url("MYSQL_URL", "MariaDB"))
            .unwrap()
            .with_table(&table())
            .unwrap();
        store.migrate().await.unwrap();
        remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(store, &settings()))
            .await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn on_sqlite() {
        let file = std::env::temp_dir().join(format!("{}.db", table()));
        let url = format!("sqlite://{}", file.display());
        let store = http_sessions::sqlite::SqliteStore::from_url(&url).unwrap();
        store.migrate().await.unwrap();
        remembered_logins_are_listed_and_ended_everywhere(SessionLayer::new(store, &settings()))
            .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
}
