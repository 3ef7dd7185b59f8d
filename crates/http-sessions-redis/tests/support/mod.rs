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
