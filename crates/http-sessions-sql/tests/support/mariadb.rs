//! A MariaDB server of a test's own, in a temporary folder on a free
//! port, for the tests that stop and restart it.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "install MariaDB (Debian/Ubuntu: `apt-get install mariadb-server`); \
                       these tests start servers of their own";

/// A running `mariadbd`, killed and removed on drop.
pub(crate) struct MariaDb {
    child: Option<Child>,
    dir: PathBuf,
    pub(crate) port: u16,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

impl MariaDb {
    pub(crate) fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "http-sessions-mariadb-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .output()
            .unwrap_or_else(|e| panic!("mariadb-install-db: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Self {
            child: None,
            dir,
            port: free_port(),
        };
        server.start_again();
        let status = Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h127.0.0.1", "-uroot"])
            .arg(format!("-P{}", server.port))
            .args(["-e", "CREATE DATABASE sessions"])
            .status()
            .unwrap();
        assert!(status.success(), "could not create the database");
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/sessions", self.port)
    }

    /// Starts the server (again) and waits until it listens.
    pub(crate) fn start_again(&mut self) {
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-log-bin",
                "--skip-name-resolve",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mariadbd: {e}; {INSTALL}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server, as a crash would.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
