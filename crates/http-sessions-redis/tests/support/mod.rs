//! `redis-server` processes of the tests' own: started on a free port in a
//! directory of their own, ready once their log says so, killed on drop.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `redis-server`, killed (and its directory removed) on drop.
pub(crate) struct Spawned {
    child: Child,
    /// Its working directory, for files it reads or a Unix socket.
    pub(crate) dir: PathBuf,
}

impl Spawned {
    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: its port still
    /// accepts connections, and what is sent meanwhile is run, in order,
    /// once it thaws.
    #[allow(dead_code)] // Only the users' tests pause a server.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// A new directory for a server of `kind` on `port`.
    pub(crate) fn dir(kind: &str, port: u16) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "http-sessions-redis-{kind}-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts `redis-server` on `port` in `dir`, with `args` on top of the
    /// usual ones (loopback only, nothing saved), and returns once it
    /// accepts connections.
    pub(crate) fn start<A: AsRef<OsStr>>(
        port: u16,
        dir: PathBuf,
        args: impl IntoIterator<Item = A>,
    ) -> Self {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(args);
        Self::spawn(command, port, dir, "Ready to accept connections")
    }

    /// Starts a Redis Sentinel on `port` in `dir` with `config` (the
    /// contents of its `sentinel.conf`, which it rewrites as it learns the
    /// group), and returns once it monitors its primary.
    #[allow(dead_code)] // Only the Sentinel tests start one.
    pub(crate) fn sentinel(port: u16, dir: PathBuf, config: &str) -> Self {
        let file = dir.join("sentinel.conf");
        std::fs::write(&file, format!("port {port}\nbind 127.0.0.1\n{config}")).unwrap();
        let mut command = Command::new("redis-server");
        command.arg(&file).arg("--sentinel");
        Self::spawn(command, port, dir, "+monitor master")
    }

    /// Runs `command` (a `redis-server`) in `dir` and returns once its log
    /// shows `ready`.
    fn spawn(mut command: Command, port: u16, dir: PathBuf, ready: &str) -> Self {
        let child = command
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A refused option is told on stderr: left in view.
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not on the PATH; these tests start their own. \
                 Install it (Debian/Ubuntu: `apt-get install redis-server`) and run again."
            ),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        // The server says when it accepts connections: its log, read to
        // the end on a thread of its own (so that the server never blocks
        // on a full pipe), is the signal.
        let log = child.stdout.take().unwrap();
        let (lines, read) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let server = Self { child, dir };
        let mut seen = Vec::new();
        loop {
            match read.recv_timeout(HANG_GUARD) {
                Ok(line) if line.contains(ready) => return server,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "redis-server on port {port} never got ready (a refused option is \
                     printed above):\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// --------------------------------------------------------- conformance harness

/// A key prefix no other store of the run uses, named after `test`.
pub(crate) fn random_prefix(test: &str) -> String {
    use http_sessions_core::store::{IdSource, RandomIds};
    format!(
        "{test}:{}:",
        RandomIds::new().next_id().unwrap().to_base64()
    )
}

/// How the tests of one way of reaching Redis (credentials, TLS, Sentinel)
/// make their stores and look inside the server.
#[async_trait::async_trait]
pub(crate) trait Reach: Send + Sync + 'static {
    /// A new store, with a prefix of its own.
    fn store(&self) -> http_sessions_redis::RedisStore;

    /// How many keys on the server start with `prefix`.
    async fn keys(&self, prefix: &str) -> usize;
}

/// The conformance suite's harness on the stores a [`Reach`] makes, for
/// the cases that corrupt nothing.
pub(crate) struct Reached<R>(pub(crate) R);

#[async_trait::async_trait]
impl<R: Reach> http_sessions_conformance::Harness for Reached<R> {
    type Handle = http_sessions_redis::RedisStore;

    async fn make(
        &self,
        settings: &http_sessions_core::Settings,
    ) -> (http_sessions_core::seams::Backend, Self::Handle) {
        let store = self.0.store();
        // The suite also calls the handle itself: the settings' timeout on
        // it too, as the manager gives it to the backend's clone.
        http_sessions_core::store::SessionStore::use_settings(&store, settings);
        (
            http_sessions_core::seams::Backend::server(store.clone()),
            store,
        )
    }

    async fn corrupt(
        &self,
        _store: &Self::Handle,
        _id: Option<http_sessions_core::store::SessionId>,
        _cookie: &str,
        _settings: &http_sessions_core::Settings,
    ) -> Option<String> {
        panic!("the cases run here corrupt nothing")
    }

    async fn stored(&self, store: &Self::Handle) -> Option<usize> {
        Some(self.0.keys(store.prefix()).await)
    }
}

/// The conformance cases that corrupt nothing, through `reach`'s stores;
/// and a load past a session's expiry ([`expired_sessions_load_as_expired`]).
pub(crate) async fn passes_the_conformance_cases(reach: impl Reach) {
    use http_sessions_conformance as cases;
    expired_sessions_load_as_expired(&reach.store()).await;
    let harness = Reached(reach);
    cases::round_trip(&harness).await;
    cases::concurrent_deltas(&harness).await;
    cases::atomic_create(&harness).await;
    cases::no_resurrection(&harness).await;
    cases::renew_moves_to_new_token(&harness).await;
    cases::renew_after_destroy_is_gone(&harness).await;
    cases::destroy_removes(&harness).await;
    cases::empty_is_never_stored(&harness).await;
}

// ------------------------------------------------------------ expired loads

/// Through `store`: a session bound to a user, labelled, with a value and
/// a flash message, loads as live until its expiry and from then on as
/// the same record, [`Loaded::Expired`] (the hash is still there: its TTL
/// only collects, and the `expires` field is the judge), which a list of
/// the user's sessions still leaves out; a renewed id's marker past its
/// time is no session. Answers the id of the expired session.
///
/// [`Loaded::Expired`]: http_sessions_core::store::Loaded::Expired
pub(crate) async fn expired_sessions_load_as_expired(
    store: &http_sessions_redis::RedisStore,
) -> http_sessions_core::store::SessionId {
    use http_sessions_conformance::{ABSOLUTE, IDLE, START};
    use http_sessions_core::FlashLevel;
    use http_sessions_core::store::{IdSource, Loaded, RandomIds, Record, SessionStore, Value};

    let ids = RandomIds::new();
    let (id, renewed) = (ids.next_id().unwrap(), ids.next_id().unwrap());
    let expires = START + IDLE;
    let mut created = Record::empty(START, expires, 4);
    (created.data).insert("cart".into(), Value::encode("three apples").unwrap());
    (created.flash).push(FlashLevel::Info, "welcome".into());
    created.user = Some("alice".into());
    created.label = Some("laptop".into());
    store.create(&id, &created, START + ABSOLUTE).await.unwrap();

    let before = START + (IDLE - Duration::from_secs(1));
    let Some(Loaded::Live(live)) = store.load(&id, before).await.unwrap() else {
        panic!("a live session did not load as live");
    };
    assert_eq!(
        (&live.user, &live.label, live.created, live.expires),
        (&created.user, &created.label, START, expires)
    );
    assert_eq!((live.data.len(), live.flash.len()), (1, 1));
    for now in [expires, expires + ABSOLUTE] {
        assert_eq!(
            store.load(&id, now).await.unwrap(),
            Some(Loaded::Expired(live.clone())),
            "a load at {now}"
        );
    }
    let users = store.users().unwrap();
    assert_eq!(users.list("alice", before).await.unwrap().len(), 1);
    assert!(users.list("alice", expires).await.unwrap().is_empty());

    let mut record = Record::empty(START, expires, 4);
    (record.data).insert("k".into(), Value::encode("v").unwrap());
    store.create(&renewed, &record, expires).await.unwrap();
    let until = START + Duration::from_secs(60);
    store.retire(&renewed, START, until, None).await.unwrap();
    let just_before = START + Duration::from_secs(59);
    assert_eq!(
        store.load(&renewed, just_before).await.unwrap(),
        Some(Loaded::Renewed)
    );
    for now in [until, expires, expires + ABSOLUTE] {
        assert_eq!(store.load(&renewed, now).await.unwrap(), None, "at {now}");
    }
    id
}
