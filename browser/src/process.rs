//! What the demo and chromedriver need of a child process: the program
//! found, a free port, waiting with a deadline for it to listen, and a
//! guard that stops it together with what it started.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::time::Instant;

use crate::Error;

/// How long a program may take to come up: Chromium on a loaded two-core
/// machine takes a few seconds; ten times that means it is not coming.
pub(crate) const STARTUP: Duration = Duration::from_secs(30);

/// How often a wait looks again at what it waits for.
const POLL: Duration = Duration::from_millis(25);

/// The program named by the variable `var` if set, else `name` on the
/// `PATH`; when neither is there, an error saying what to install.
pub(crate) fn program(var: &str, name: &str) -> Result<PathBuf, Error> {
    let install = "install Chromium and its driver (Debian: \
                   `apt-get install chromium chromium-driver`)";
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{var}={} is not a file: point it at {name}, or unset it and {install}",
                path.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("{name} is not on the PATH: {install}, or set {var}"))
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Waits until something listens on `port`, failing if `child` exits
/// first or [`STARTUP`] passes.
pub(crate) async fn listening(port: u16, child: &mut Child, what: &str) -> Result<(), Error> {
    let deadline = Instant::now() + STARTUP;
    loop {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before it listened: {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{what} did not listen on port {port} within {} s",
                STARTUP.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `done` holds, failing with `what` once [`STARTUP`] passes.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), Error> {
    let deadline = Instant::now() + STARTUP;
    while !done() {
        if Instant::now() >= deadline {
            return Err(format!("{what}: not so within {} s", STARTUP.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// A child started as the leader of a process group of its own
/// (`process_group(0)`), so that what it starts (chromedriver's browsers)
/// is stopped with it: dropping this sends SIGTERM to the whole group,
/// and the child itself is killed when its [`Child`] drops after.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) child: Child,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // By the group's id, which is the leader's: only what this
            // process started. No unsafe `kill(2)` (the workspace forbids
            // unsafe code), so the `kill` program.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
