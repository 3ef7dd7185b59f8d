//! The lifecycle events, through the layer with real requests on every
//! backend: each step of a session's life emits its event once the store
//! has confirmed it, and no event and no log line, at any level, carries a
//! session id, a token or a cookie value. The servers come from
//! `REDIS_URL`, `REDIS_CLUSTER_URLS`, `DATABASE_URL` and `MYSQL_URL`, which
//! `cargo xtask test-all` sets; without them the tests fail.
#![cfg(all(
    feature = "memory",
    feature = "cookie",
    feature = "redis",
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql",
    feature = "axum"
))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use base64::Engine as _;
use http_body_util::BodyExt;
use http_sessions::events::{Deadline, EventKind, SessionEvent, SessionEvents};
use http_sessions::seams::{ManualClock, SessionManager};
use http_sessions::store::{IdSource, RandomIds, SessionStore, UnixTime};
use http_sessions::{
    Key, Keyring, Session, SessionCheck, SessionLayer, Settings, StoreError, ValueError,
};
use tower::ServiceExt;

/// The two tests share the process's `tracing` callsites: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const IDLE: Duration = Duration::from_secs(600);

async fn login(session: Session) -> Result<&'static str, ValueError> {
    session.renew_on_login();
    session.bind_user("ada")?;
    session.set_label("laptop");
    session.insert("k", 1)?;
    Ok("signed in")
}

async fn renew(session: Session) -> &'static str {
    session.renew();
    "renewed"
}

async fn counter(session: Session) -> Result<String, ValueError> {
    let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

async fn refuse(session: Session) -> Result<&'static str, ValueError> {
    session.insert("refuse", true)?;
    Ok("marked")
}

async fn destroy(session: Session) -> &'static str {
    session.destroy();
    "destroyed"
}

/// Refuses a session marked by `/refuse`.
#[derive(Debug)]
struct RefuseMarked;

#[async_trait]
impl SessionCheck for RefuseMarked {
    async fn accept(&self, session: &Session) -> Result<bool, StoreError> {
        Ok(session.get::<bool>("refuse").ok().flatten() != Some(true))
    }
}

/// An event as recorded: its kind, whether it had a tag, and its user.
type Entry = (EventKind, bool, Option<String>);

/// Every event a hook was given.
#[derive(Debug, Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Entry>>>);

impl SessionEvents for Recorded {
    fn event(&self, event: &SessionEvent<'_>) {
        let entry = (
            event.kind,
            event.session.is_some(),
            event.user.map(str::to_owned),
        );
        self.0.lock().unwrap().push(entry);
    }
}

impl Recorded {
    fn take(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A backend under test: its name, and whether sessions live on the
/// server (ids, a cap, expiry seen by the store).
struct Backend {
    name: &'static str,
    server: Option<Arc<dyn SessionStore>>,
}

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: run `cargo xtask test-all`, which starts the servers for \
             these tests, or set it yourself. These tests never skip themselves."
        ),
    }
}

/// A name of this run's own, for keys and tables.
fn unique() -> String {
    let id = RandomIds::new().next_id().unwrap();
    id.as_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn backends() -> Vec<Backend> {
    use http_sessions::mysql::MySqlStore;
    use http_sessions::postgres::PostgresStore;
    use http_sessions::redis::RedisStore;
    use http_sessions::sqlite::SqliteStore;
    let table = format!("events_{}", unique());
    let postgres = PostgresStore::from_url(&env("DATABASE_URL"))
        .unwrap()
        .with_table(&table)
        .unwrap();
    postgres.migrate().await.unwrap();
    let mysql = MySqlStore::from_url(&env("MYSQL_URL"))
        .unwrap()
        .with_table(&table)
        .unwrap();
    mysql.migrate().await.unwrap();
    let file = std::env::temp_dir().join(format!("{table}.db"));
    let sqlite = SqliteStore::from_url(&format!("sqlite://{}", file.display())).unwrap();
    sqlite.migrate().await.unwrap();
    let prefix = format!("events:{}:", unique());
    let node = RedisStore::from_url(&env("REDIS_URL"))
        .unwrap()
        .with_prefix(prefix.clone());
    let urls = env("REDIS_CLUSTER_URLS");
    let cluster = RedisStore::cluster(urls.split(',').map(str::trim))
        .unwrap()
        .with_prefix(prefix);
    let server = |name, store: Arc<dyn SessionStore>| Backend {
        name,
        server: Some(store),
    };
    vec![
        server(
            "memory",
            Arc::new(http_sessions::memory::MemoryStore::new()),
        ),
        server("redis node", Arc::new(node)),
        server("redis cluster", Arc::new(cluster)),
        server("postgres", Arc::new(postgres)),
        server("sqlite", Arc::new(sqlite)),
        server("mysql", Arc::new(mysql)),
        Backend {
            name: "signed cookie",
            server: None,
        },
        Backend {
            name: "encrypted cookie",
            server: None,
        },
    ]
}

/// The app on `backend`, its layer, and the clock its settings run on;
/// `hook` takes the events, else they go to `tracing`.
fn app(backend: &Backend, hook: Option<Recorded>) -> (Router, SessionLayer, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let mut settings = Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[31; 32]).unwrap()).unwrap())
        .with_idle_timeout(IDLE)
        .with_clock(clock.clone());
    if backend.server.is_some() {
        settings = settings.with_max_sessions_per_user(1);
    }
    let settings = settings.build().unwrap();
    let layer = match (&backend.server, backend.name) {
        (Some(store), _) => SessionLayer::from_manager(SessionManager::new(
            http_sessions::seams::Backend::Server(store.clone()),
            &settings,
        )),
        (None, "signed cookie") => http_sessions::cookie::session_layer(&settings),
        (None, _) => http_sessions::cookie::encrypted_session_layer(&settings),
    };
    let layer = layer.with_check(RefuseMarked);
    let layer = match hook {
        Some(hook) => layer.with_events(hook),
        None => layer,
    };
    let router = Router::new()
        .route("/login", get(login))
        .route("/renew", get(renew))
        .route("/counter", get(counter))
        .route("/refuse", get(refuse))
        .route("/destroy", get(destroy))
        .layer(layer.clone());
    (router, layer, clock)
}

/// What the scenario saw go by: every cookie value set, and every
/// session id listed.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    /// A cookie value, and for a server-side token the id and MAC in it,
    /// and the id in hex.
    fn cookie(&mut self, value: &str) {
        self.0.push(value.to_owned());
        if let Some((id, mac)) = value.split_once('.') {
            self.id(id);
            self.0.push(mac.to_owned());
        }
    }

    fn id(&mut self, id: &str) {
        self.0.push(id.to_owned());
        if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id) {
            self.0
                .push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
    }
}

/// One client: its cookie, as its browser would keep it.
struct Client<'a> {
    app: &'a Router,
    name: String,
    cookie: Option<String>,
}

impl Client<'_> {
    async fn get(&mut self, path: &str, secrets: &mut Secrets) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(value) = &self.cookie {
            request = request.header(header::COOKIE, format!("{}={value}", self.name));
        }
        let response = (self.app.clone())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some(value) = pair.strip_prefix(&format!("{}=", self.name)) {
                if value.is_empty() {
                    self.cookie = None;
                } else {
                    secrets.cookie(value);
                    self.cookie = Some(value.to_owned());
                }
            }
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

/// A session's whole life on `app`: a login, a renew, a second login past
/// the cap of one, a forged cookie, a refused session, an expiry, a
/// logout, and a user's sessions ended one and all.
async fn scenario(
    backend: &Backend,
    app: &Router,
    layer: &SessionLayer,
    clock: &ManualClock,
) -> Secrets {
    let name = layer.manager().settings().cookie().name.clone();
    let mut secrets = Secrets::default();
    let client = |cookie| Client {
        app,
        name: name.clone(),
        cookie,
    };
    let step = |what: &str| format!("{}: {what}", backend.name);
    let server = backend.server.is_some();

    let mut laptop = client(None);
    assert_eq!(laptop.get("/login", &mut secrets).await.0, StatusCode::OK);
    assert_eq!(laptop.get("/renew", &mut secrets).await.0, StatusCode::OK);
    assert_eq!(laptop.get("/counter", &mut secrets).await.1, "1");
    clock.advance(Duration::from_secs(1));
    let mut phone = client(None);
    let (status, _) = phone.get("/login", &mut secrets).await;
    assert_eq!(status, StatusCode::OK, "{}", step("a second login"));

    let held = phone.cookie.clone().unwrap();
    let mut forged = held.clone().into_bytes();
    // A character inside the value: the last one of a base64 field can
    // carry bits the decoder ignores.
    forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
    let mut forger = client(Some(String::from_utf8(forged).unwrap()));
    assert_eq!(forger.get("/counter", &mut secrets).await.1, "1");

    assert_eq!(phone.get("/refuse", &mut secrets).await.1, "marked");
    assert_eq!(
        phone.get("/counter", &mut secrets).await.1,
        "1",
        "{}",
        step("a refused session")
    );
    let mut idle = client(None);
    assert_eq!(idle.get("/counter", &mut secrets).await.1, "1");
    clock.advance(IDLE + Duration::from_secs(1));
    assert_eq!(
        idle.get("/counter", &mut secrets).await.1,
        "1",
        "{}",
        step("an expired session")
    );
    let mut leaving = client(None);
    leaving.get("/login", &mut secrets).await;
    assert_eq!(leaving.get("/destroy", &mut secrets).await.1, "destroyed");
    if server {
        let users = layer.user_sessions();
        let mut one = client(None);
        one.get("/login", &mut secrets).await;
        let listed = users.list("ada").await.unwrap();
        assert_eq!(listed.len(), 1, "{}", step("the cap of one"));
        for info in &listed {
            secrets.id(&info.id);
        }
        assert!(users.end("ada", &listed[0].id).await.unwrap());
        let mut two = client(None);
        two.get("/login", &mut secrets).await;
        assert_eq!(users.end_all("ada", None).await.unwrap(), 1);
    }
    secrets
}

#[tokio::test]
async fn no_event_or_log_line_carries_a_session_id_token_or_cookie() {
    let _serial = SERIAL.lock().await;
    let captured = http_sessions_conformance::http::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    for backend in backends().await {
        let (app, layer, clock) = app(&backend, None);
        let secrets = scenario(&backend, &app, &layer, &clock).await;
        let log = captured.take();
        assert!(
            log.contains("event=\"logged_in\"") && log.contains("event=\"cookies_rejected\""),
            "{}: the events did not reach tracing:\n{log}",
            backend.name
        );
        assert!(secrets.0.len() >= 8, "{}: {:?}", backend.name, secrets.0);
        for secret in &secrets.0 {
            assert!(
                !log.contains(secret.as_str()),
                "{}: {secret:?} appears in the log:\n{log}",
                backend.name
            );
        }
    }
}

#[tokio::test]
async fn each_lifecycle_step_emits_its_event() {
    let _serial = SERIAL.lock().await;
    for backend in backends().await {
        let recorded = Recorded::default();
        let (app, layer, clock) = app(&backend, Some(recorded.clone()));
        scenario(&backend, &app, &layer, &clock).await;
        let events = recorded.take();
        let kinds: Vec<EventKind> = events.iter().map(|(kind, ..)| *kind).collect();
        let server = backend.server.is_some();
        let mut expected = vec![EventKind::LoggedIn, EventKind::Renewed];
        if server {
            // The cap ends the laptop's session before the phone's login
            // is told.
            expected.push(EventKind::EndedOverCap);
        }
        expected.extend([
            EventKind::LoggedIn,
            EventKind::CookiesRejected { count: 1 },
            EventKind::Created,
            EventKind::Refused,
            EventKind::Destroyed,
            EventKind::Created,
            EventKind::Created,
        ]);
        expected.extend([
            EventKind::Expired(Deadline::Idle),
            EventKind::Created,
            EventKind::LoggedIn,
            EventKind::Destroyed,
        ]);
        if server {
            expected.extend([
                EventKind::LoggedIn,
                EventKind::Ended,
                EventKind::LoggedIn,
                EventKind::EndedAll { sessions: 1 },
            ]);
        }
        assert_eq!(kinds, expected, "{}: {events:?}", backend.name);
        for (kind, tagged, user) in &events {
            let about_one = !matches!(
                kind,
                EventKind::EndedAll { .. } | EventKind::CookiesRejected { .. }
            );
            assert_eq!(
                *tagged,
                server && about_one,
                "{}: {kind:?} tag",
                backend.name
            );
            if matches!(kind, EventKind::LoggedIn | EventKind::EndedAll { .. }) {
                assert_eq!(user.as_deref(), Some("ada"), "{}: {kind:?}", backend.name);
            }
        }
    }
}
