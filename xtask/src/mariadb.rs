//! Making MariaDB available to a test run: the [`MariaDb`] whose URL the
//! SQL store's tests read from `MYSQL_URL`; that variable when it is set,
//! else a throwaway `mariadbd` started here on a data folder that
//! `mariadb-install-db` makes under the temporary directory, on a free port
//! of 127.0.0.1, never the machine's own server. Its `root` logs in over
//! TCP without a password; it is stopped and its folder removed when the
//! [`MariaDb`] is dropped.
//!
//! Also `cargo xtask mariadb [COMMAND...]`: runs one command with it.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::launch::{self, TempDir};

/// The URL the tests connect to.
pub(crate) const URL_ENV: &str = "MYSQL_URL";

/// The database made for the tests.
const DATABASE: &str = "sessions_test";

const INSTALL: &str = "install MariaDB (Debian/Ubuntu: `apt-get install mariadb-server`), \
                       or set MYSQL_URL to a MariaDB or MySQL database you can write to";

/// How often readiness is polled, and how long between polls: enough for a
/// slow CI machine (the server is ready in a fraction of a second on a
/// quiet one).
const POLLS: u32 = 600;
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A MariaDB database for the stages of a run.
#[derive(Debug)]
pub(crate) struct MariaDb {
    url: String,
    /// Started here, or `None` for `MYSQL_URL`; killed on drop.
    _server: Option<Server>,
}

impl MariaDb {
    /// Uses the database `MYSQL_URL` names, or starts a server.
    pub(crate) fn provide() -> Result<Self, String> {
        if let Some(url) = launch::given(URL_ENV) {
            println!("using {URL_ENV}={}", launch::redact(&url));
            return Ok(Self { url, _server: None });
        }
        let started = Instant::now();
        let server = Server::start()?;
        let url = url(server.port);
        println!(
            "started MariaDB on port {} in {:.1?}: {URL_ENV}={url}",
            server.port,
            started.elapsed()
        );
        Ok(Self {
            url,
            _server: Some(server),
        })
    }

    /// Gives `cmd` `MYSQL_URL`. Per command, not `set_var`: the process
    /// environment is shared state, and changing it is unsafe.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.env(URL_ENV, &self.url);
    }
}

/// `cargo xtask mariadb [COMMAND...]`: runs `COMMAND` (default: the SQL
/// store's tests on MariaDB) with `MYSQL_URL` set, then stops what was
/// started.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mariadb = MariaDb::provide()?;
    let mut cmd = launch::command_or(
        args,
        &[
            "test",
            "-p",
            "http-sessions-sql",
            "--no-default-features",
            "--features",
            "mysql",
            "--all-targets",
        ],
    );
    mariadb.apply(&mut cmd);
    crate::run::checked(cmd)
}

/// The URL of the tests' database on a server started here.
fn url(port: u16) -> String {
    format!("mysql://root@127.0.0.1:{port}/{DATABASE}")
}

/// A `mariadbd` child with its own data folder; killed and the folder
/// removed on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    port: u16,
    /// Removed when dropped, after [`Drop`] has stopped the server.
    _dir: TempDir,
}

impl Server {
    /// `mariadb-install-db`, then `mariadbd` on a free port, then the
    /// tests' database.
    fn start() -> Result<Self, String> {
        let install_db = find("mariadb-install-db")?;
        let mariadbd = find("mariadbd")?;
        let port = launch::free_port()?;
        let dir = TempDir::fresh("mariadb", port)?;
        let data = dir.path().join("data");
        // mariadbd refuses to run as root unless told to: the folder is
        // ours, so it may.
        let as_root = launch::id(&["-u"]) == Some(0);
        let user: &[&str] = if as_root { &["--user=root"] } else { &[] };

        let log = dir.path().join("install.log");
        let status = Command::new(&install_db)
            // First: no my.cnf of the machine's server applies.
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // `root` logs in with no password, over TCP too.
            .arg("--auth-root-authentication-method=normal")
            .args(["--skip-test-db", "--skip-name-resolve"])
            .args(user)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output(&log)?)
            .stderr(output(&log)?)
            .status()
            .map_err(|e| format!("could not start {}: {e}", install_db.display()))?;
        if !status.success() {
            return Err(format!(
                "mariadb-install-db --datadir={} failed ({status})\n{}",
                data.display(),
                launch::log_tail(&log)
            ));
        }

        let log = dir.path().join("mariadbd.log");
        let child = launch::guarded(&mariadbd, "KILL", None)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            // Its socket and pid file in its own folder, never the system's.
            .arg(format!(
                "--socket={}",
                dir.path().join("mariadbd.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mariadbd.pid").display()
            ))
            .arg(format!("--tmpdir={}", dir.path().display()))
            // `root@127.0.0.1` is a user of its own: no name lookups.
            .arg("--skip-name-resolve")
            // Data from one run is worth nothing to the next: no waiting
            // for disks, no binary log.
            .arg("--innodb-flush-log-at-trx-commit=0")
            .arg("--skip-log-bin")
            // The tests run in parallel, each with a pool of its own.
            .arg("--max-connections=300")
            .args(user)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            // No --log-error: its log goes to stderr, here.
            .stdout(output(&log)?)
            .stderr(output(&log)?)
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", mariadbd.display()))?;
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        let mut session = server.wait_ready(&log)?;
        query(
            &mut session,
            &format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"),
        )
        .map_err(|e| {
            format!(
                "creating the database {DATABASE} on port {port}: {e}\n{}",
                launch::log_tail(&log)
            )
        })?;
        quit(session);
        Ok(server)
    }

    /// Polls until `root` logs in, a bounded number of times; fails at once
    /// if the server exits or refuses the login.
    fn wait_ready(&mut self, log: &Path) -> Result<TcpStream, String> {
        let mut last = String::from("no answer");
        for _ in 0..POLLS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "mariadbd on port {} exited ({status})\n{}",
                    self.port,
                    launch::log_tail(log)
                ));
            }
            match login(self.port) {
                Ok(session) => return Ok(session),
                Err(Refusal::Transient(why)) => last = why,
                Err(Refusal::Final(why)) => {
                    return Err(format!(
                        "mariadbd on port {} refused `root` without a password: {why}\n{}",
                        self.port,
                        launch::log_tail(log)
                    ));
                }
            }
            std::thread::sleep(POLL_EVERY);
        }
        Err(format!(
            "mariadbd on port {} was not ready after {:?}; last answer: {last}\n{}",
            self.port,
            POLL_EVERY * POLLS,
            launch::log_tail(log)
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Killed, not shut down: nothing in it is worth the flush.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log file `path`, opened for appending, for a child's output.
fn output(path: &Path) -> Result<File, String> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// `program` on the PATH, or in the folders servers live in off a user's
/// PATH (`/usr/sbin` on Debian, `/usr/libexec` on Fedora).
fn find(program: &str) -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/libexec"].map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("`{program}` is not on the PATH, nor in /usr/sbin: {INSTALL}"))
}

/// Why a login did not happen: worth another try (not listening yet) or
/// not (the server said no).
#[derive(Debug)]
enum Refusal {
    Transient(String),
    Final(String),
}

/// Capabilities of our login: 4.1 protocol, the password's length before
/// it, and the name of the method we answer with.
const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;

/// A session as `root` with no password, after the server's OK.
fn login(port: u16) -> Result<TcpStream, Refusal> {
    let io = |e: std::io::Error| Refusal::Transient(e.to_string());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    let (_, greeting) = read_packet(&mut stream).map_err(io)?;
    match greeting.first() {
        Some(10) => {}
        Some(0xff) => return Err(Refusal::Final(server_error(&greeting))),
        _ => return Err(Refusal::Final("the port does not greet as MariaDB".into())),
    }
    write_packet(&mut stream, 1, &handshake_response()).map_err(io)?;
    let (seq, answer) = read_packet(&mut stream).map_err(io)?;
    let answer = match answer.first() {
        // An account with another method: an empty password in that one
        // is empty too.
        Some(0xfe) => {
            write_packet(&mut stream, seq.wrapping_add(1), &[]).map_err(io)?;
            read_packet(&mut stream).map_err(io)?.1
        }
        _ => answer,
    };
    match answer.first() {
        Some(0) => Ok(stream),
        Some(0xff) => Err(Refusal::Final(server_error(&answer))),
        _ => Err(Refusal::Final("unexpected answer to the login".into())),
    }
}

/// The handshake response logging in `root` with no password, using
/// `mysql_native_password`.
fn handshake_response() -> Vec<u8> {
    let capabilities =
        CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    let mut reply = capabilities.to_le_bytes().to_vec();
    reply.extend_from_slice(&(1_u32 << 24).to_le_bytes()); // largest packet
    reply.push(45); // utf8mb4_general_ci
    reply.extend_from_slice(&[0; 23]);
    reply.extend_from_slice(b"root\0");
    reply.push(0); // the password's length
    reply.extend_from_slice(b"mysql_native_password\0");
    reply
}

/// Runs one statement; fails with the server's error.
fn query(stream: &mut TcpStream, sql: &str) -> Result<(), String> {
    let mut command = vec![0x03]; // COM_QUERY
    command.extend_from_slice(sql.as_bytes());
    write_packet(stream, 0, &command).map_err(|e| e.to_string())?;
    let (_, answer) = read_packet(stream).map_err(|e| e.to_string())?;
    match answer.first() {
        Some(0) => Ok(()),
        Some(0xff) => Err(server_error(&answer)),
        _ => Err("unexpected answer to the statement".into()),
    }
}

/// Ends a session politely, so the server logs no aborted connection.
fn quit(mut stream: TcpStream) {
    let _ = write_packet(&mut stream, 0, &[0x01]); // COM_QUIT
}

/// One packet: its sequence number and payload.
fn read_packet(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0; 4];
    stream.read_exact(&mut head)?;
    let [a, b, c, seq] = head;
    let len = usize::try_from(u32::from_le_bytes([a, b, c, 0]))
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "bad packet length"))?;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload)?;
    Ok((seq, payload))
}

/// Sends `payload` as one packet (all ours are far below 16 MiB).
fn write_packet(stream: &mut TcpStream, seq: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n < 1 << 24)
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "packet too long"))?;
    let [a, b, c, _] = len.to_le_bytes();
    let mut packet = vec![a, b, c, seq];
    packet.extend_from_slice(payload);
    stream.write_all(&packet)
}

/// An ERR packet as text: `0xff`, the error number, then (after the login)
/// `#` and the SQL state, then the message.
fn server_error(packet: &[u8]) -> String {
    let Some((&0xff, rest)) = packet.split_first() else {
        return "not an error packet".into();
    };
    let Some(([lo, hi], rest)) = rest.split_first_chunk::<2>() else {
        return "truncated error packet".into();
    };
    let code = u16::from_le_bytes([*lo, *hi]);
    let message = match rest.split_first() {
        Some((b'#', state_and_message)) => state_and_message.get(5..).unwrap_or_default(),
        _ => rest,
    };
    format!("error {code}: {}", String::from_utf8_lossy(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_packet_gives_its_number_and_message() {
        let mut packet = vec![0xff, 0x15, 0x04];
        packet.extend_from_slice(b"#28000Access denied for user 'root'@'127.0.0.1'");
        assert_eq!(
            server_error(&packet),
            "error 1045: Access denied for user 'root'@'127.0.0.1'"
        );
        // Before the login, with no SQL state.
        let mut packet = vec![0xff, 0x10, 0x04];
        packet.extend_from_slice(b"Too many connections");
        assert_eq!(server_error(&packet), "error 1040: Too many connections");
    }
}
