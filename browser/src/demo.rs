//! [`Demo`]: the demo binary named by `DEMO_BIN`, started on a port the
//! system picks, with the memory backend, and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::Error;
use crate::process::{Group, STARTUP};

/// How to build the binary the tests need.
const BUILD: &str = "build it with `cargo build -p http-sessions --example demo` and set \
                     DEMO_BIN=target/debug/examples/demo (`cargo xtask test-all` does both)";

/// The line the demo prints once it listens, before its address.
const LISTENING: &str = "sessions demo on http://";

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    _process: Group,
    port: u16,
}

impl Demo {
    /// The demo serving plain http, its cookie without `Secure` (the
    /// demo's default).
    ///
    /// # Errors
    ///
    /// `DEMO_BIN` unset or not a file (the message says how to build it),
    /// or the demo not listening in time.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(None).await
    }

    /// The demo with `SESSION_COOKIE_SECURE=true`: a `Secure` cookie, still
    /// served over plain http, which a browser accepts from `localhost`.
    ///
    /// # Errors
    ///
    /// As [`Demo::start`].
    pub async fn start_with_secure_cookie() -> Result<Self, Error> {
        Self::start_with(Some("true")).await
    }

    async fn start_with(secure: Option<&str>) -> Result<Self, Error> {
        let bin = binary()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--addr", "127.0.0.1:0", "--backend", "memory"])
            // The test decides these, not the environment it runs in.
            .env_remove("SESSION_BACKEND")
            .env_remove("SESSION_COOKIE_SECURE")
            .env_remove("SESSION_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(secure) = secure {
            cmd.env("SESSION_COOKIE_SECURE", secure);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", bin.display()))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("the demo's output was not piped".into());
        };
        let process = Group { child };
        let errors = tokio::spawn(collect(stderr));
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(STARTUP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    return Some(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            None
        })
        .await;
        let addr = match announced {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                // The demo closed its output: it exited, and said why on
                // stderr.
                let why = errors.await.unwrap_or_default();
                return Err(format!("the demo exited before it listened: {why}"));
            }
            Err(_) => {
                return Err(format!(
                    "the demo did not say it listens within {} s",
                    STARTUP.as_secs()
                ));
            }
        };
        // The rest of its log is read and dropped, so a full pipe never
        // stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .ok_or_else(|| format!("the demo announced {addr:?}, not HOST:PORT"))?;
        Ok(Self {
            _process: process,
            port,
        })
    }

    /// `path` on the demo, as `http://localhost:PORT/...`: `localhost`, a
    /// name browsers treat as a secure context even over plain http.
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }
}

/// The demo binary from `DEMO_BIN`, a relative path taken from the
/// workspace root (the tests run in `browser/`).
fn binary() -> Result<PathBuf, Error> {
    let Some(path) = std::env::var_os("DEMO_BIN").filter(|v| !v.is_empty()) else {
        return Err(format!("DEMO_BIN is not set: {BUILD}"));
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let path = root.join(path);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "DEMO_BIN={} is not a file: {BUILD}",
            path.display()
        ))
    }
}

/// All that `out` says until it closes.
async fn collect(out: impl AsyncRead + Unpin) -> String {
    let mut lines = BufReader::new(out).lines();
    let mut text = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        text.push_str(&line);
        text.push('\n');
    }
    text
}
