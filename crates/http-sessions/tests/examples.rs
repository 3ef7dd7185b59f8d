//! Every example in `examples/` as its users run it: the binary that
//! `cargo test` built beside this test, started on port 0 (`ADDR`), ready
//! once it prints `listening on http://ADDR`, and asked over a real socket.
//! Each test runs only with the features its example requires.
//!
//! A run limited to this file (`--test examples`) does not build the
//! examples; `cargo test -p http-sessions` does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

mod wire;
use wire::{Reply, WAIT};

/// A running example, killed when dropped.
struct Example {
    addr: String,
    _child: Child,
    /// Kept open: a closed pipe would fail the example's later prints.
    _stdout: BufReader<ChildStdout>,
}

/// Where cargo put the example `name`: `target/<profile>/examples/`, beside
/// the `deps/` folder this test runs from.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Starts the example `name` on a free port with `env` added.
async fn start(name: &str, env: &[(&str, &str)]) -> Example {
    let path = binary(name);
    assert!(
        path.exists(),
        "{} not found: `cargo test -p http-sessions` builds the examples \
         (a run limited with `--test` does not)",
        path.display()
    );
    let mut child = Command::new(&path)
        .env("ADDR", "127.0.0.1:0")
        .env_remove("SESSION_SECRET")
        .env_remove("SESSION_SECRET_OLD")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(WAIT, stdout.read_line(&mut line))
        .await
        .unwrap_or_else(|_| panic!("{name} printed nothing within {WAIT:?}"))
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| {
            panic!("{name} printed {line:?}, not `listening on http://ADDR` (its stderr is above)")
        })
        .to_owned();
    Example {
        addr,
        _child: child,
        _stdout: stdout,
    }
}

/// `GET path` on the example, with the session cookie `cookie` if given.
async fn get(example: &Example, path: &str, cookie: Option<&str>) -> Reply {
    wire::get(&example.addr, path, cookie).await
}

/// `GET path` answers 200 with `body`.
async fn answers(example: &Example, path: &str, cookie: Option<&str>, body: &str) -> Reply {
    let reply = get(example, path, cookie).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, body),
        "{reply:?}"
    );
    reply
}

/// The session cookie `reply` sets; it must set one.
fn cookie_of(reply: &Reply) -> String {
    reply
        .cookie()
        .unwrap_or_else(|| panic!("no session cookie set: {reply:?}"))
}

#[cfg(all(feature = "memory", feature = "axum"))]
#[tokio::test]
async fn memory_counts_visits_and_logs_out() {
    let app = start("memory", &[]).await;
    let cookie = cookie_of(&answers(&app, "/", None, "visits = 1").await);
    answers(&app, "/", Some(&cookie), "visits = 2").await;
    let reply = get(&app, "/logout", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "logged out"));
    assert!(
        reply.set_cookie.is_some() && reply.cookie().is_none(),
        "{reply:?}"
    );
    // The ended session is no session: counting starts again.
    answers(&app, "/", Some(&cookie), "visits = 1").await;
}

#[cfg(all(feature = "redis", feature = "axum"))]
#[tokio::test]
async fn redis_counts_visits_in_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "REDIS_URL is not set: `cargo xtask test-all` sets it, or run \
             `cargo xtask redis cargo test -p http-sessions --all-features`"
        )
    });
    let secret = [("REDIS_URL", url.as_str()), ("SESSION_SECRET", SECRET)];
    let app = start("redis", &secret).await;
    let cookie = cookie_of(&answers(&app, "/", None, "visits = 1").await);
    answers(&app, "/", Some(&cookie), "visits = 2").await;
    // Another instance with the same secret reads the same session.
    let other = start("redis", &secret).await;
    answers(&other, "/", Some(&cookie), "visits = 3").await;
}

#[cfg(all(feature = "postgres", feature = "axum"))]
#[tokio::test]
async fn postgres_counts_visits_in_postgres() {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: `cargo xtask test-all` sets it, or run \
             `cargo xtask postgres cargo test -p http-sessions --all-features`"
        )
    });
    let secret = [("DATABASE_URL", url.as_str()), ("SESSION_SECRET", SECRET)];
    let app = start("postgres", &secret).await;
    let cookie = cookie_of(&answers(&app, "/", None, "visits = 1").await);
    answers(&app, "/", Some(&cookie), "visits = 2").await;
    // Another instance with the same secret reads the same session; its
    // start-up finds the tables made.
    let other = start("postgres", &secret).await;
    answers(&other, "/", Some(&cookie), "visits = 3").await;
}

/// A secret for the examples that read `SESSION_SECRET`.
const SECRET: &str = "a test secret of at least thirty-two bytes";

#[cfg(all(feature = "cookie", feature = "axum"))]
#[tokio::test]
async fn cookie_encrypted_rotates_its_key() {
    const OLD: &str = "the old secret, thirty-two bytes or more";
    const NEW: &str = "the new secret, thirty-two bytes or more";
    let before = start("cookie_encrypted", &[("SESSION_SECRET", OLD)]).await;
    let under_old = cookie_of(&answers(&before, "/", None, "visits = 1").await);

    // Rotating: the old key opens the cookie, which is resealed under the new one.
    let rotating = start(
        "cookie_encrypted",
        &[("SESSION_SECRET", NEW), ("SESSION_SECRET_OLD", OLD)],
    )
    .await;
    let under_new = cookie_of(&answers(&rotating, "/", Some(&under_old), "visits = 2").await);
    assert_ne!(under_new, under_old);

    // After: the new key alone opens the reissued cookie, not the old one.
    let after = start("cookie_encrypted", &[("SESSION_SECRET", NEW)]).await;
    answers(&after, "/", Some(&under_new), "visits = 3").await;
    answers(&after, "/", Some(&under_old), "visits = 1").await;
}

#[cfg(feature = "memory")]
#[tokio::test]
async fn tower_serves_sessions_without_axum() {
    let app = start("tower", &[]).await;
    let cookie = cookie_of(&answers(&app, "/", None, "visits = 1").await);
    answers(&app, "/", Some(&cookie), "visits = 2").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn custom_store_keeps_sessions_in_its_map() {
    let app = start("custom_store", &[]).await;
    let cookie = cookie_of(&answers(&app, "/counter", None, "counter = 1").await);
    answers(&app, "/counter", Some(&cookie), "counter = 2").await;
    let reply = get(&app, "/stored", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "1 stored"));
}
