//! A PostgreSQL server of a test's own, in a temporary folder on a free
//! port, for the tests that stop, restart or reconfigure it. `initdb` and
//! `postgres` refuse to run as root: as root, they run as the `postgres`
//! user Debian's package creates.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const INSTALL: &str = "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`); \
                       these tests start servers of their own";

/// A running PostgreSQL, stopped and removed on drop.
pub(crate) struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    match found.pop() {
        Some(dir) => dir,
        None if Command::new("initdb").arg("--version").output().is_ok() => PathBuf::new(),
        None => panic!("initdb is not installed: {INSTALL}"),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` of the server's binaries, run as a user who may run it.
fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// Starts a server with `settings` (`name=value`) on top of fast,
    /// test-only ones.
    pub(crate) fn start(settings: &[&str]) -> Self {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "http-sessions-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(&dir);
                    c
                },
                "chown",
            );
        }
        let mut initdb = command(&bin, "initdb");
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]);
        run(initdb, "initdb");
        let mut conf = String::from(
            "listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 50\n",
        );
        conf.push_str(&format!("unix_socket_directories = '{}'\n", dir.display()));
        for s in settings {
            conf.push_str(s);
            conf.push('\n');
        }
        // Appended, so the file stays the server's own (ALTER SYSTEM
        // writes beside it).
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data/postgresql.conf"))
            .unwrap();
        file.write_all(conf.as_bytes()).unwrap();
        let server = Self {
            bin,
            dir,
            port: free_port(),
        };
        server.start_again();
        server
    }

    /// A hot standby of `primary`, in recovery for as long as it runs: it
    /// answers reads and refuses every write.
    pub(crate) fn standby_of(primary: &PgServer) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "http-sessions-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(&dir);
            run(chown, "chown");
        }
        let mut backup = command(&primary.bin, "pg_basebackup");
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-R", "-X", "stream", "--no-sync"]);
        run(backup, "pg_basebackup");
        // The copy has the primary's socket folder: this one has its own.
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data/postgresql.conf"))
            .unwrap();
        writeln!(file, "unix_socket_directories = '{}'", dir.display()).unwrap();
        let server = Self {
            bin: primary.bin.clone(),
            dir,
            port: free_port(),
        };
        server.start_again();
        server
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), and waits until it accepts connections.
    pub(crate) fn start_again(&self) {
        let mut start = command(&self.bin, "pg_ctl");
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(format!("-p {}", self.port))
            .args(["-w", "start"]);
        run(start, "pg_ctl start");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server at once, as a crash would.
    pub(crate) fn stop(&self) {
        let mut stop = command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
