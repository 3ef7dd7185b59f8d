//! Making PostgreSQL available to a test run: the [`Postgres`] whose URL the
//! SQL store's tests read from `DATABASE_URL`; that variable when it is
//! set, else a throwaway server started here from a fresh `initdb` under
//! the temporary directory, on a free port of 127.0.0.1, never the
//! machine's own server, stopped and removed when the [`Postgres`] is
//! dropped. PostgreSQL refuses to run as root, and CI runs as root: then
//! the server runs as the `postgres` account (else `nobody`).
//!
//! Also `cargo xtask postgres [COMMAND...]`: runs one command with it.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::launch::{self, TempDir};

/// The URL the tests connect to.
pub(crate) const URL_ENV: &str = "DATABASE_URL";

/// The superuser `initdb` makes, trusted without a password.
const SUPERUSER: &str = "sessions";
/// The database made for the tests.
const DATABASE: &str = "sessions_test";

const INSTALL: &str = "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`), \
                       or set DATABASE_URL to a PostgreSQL database you can write to";

/// How often readiness is polled, and how long between polls: enough for a
/// slow CI machine (the server is ready in a fraction of a second on a
/// quiet one).
const POLLS: u32 = 600;
const POLL_EVERY: Duration = Duration::from_millis(50);

/// How long a stopped server gets to exit before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A PostgreSQL database for the stages of a run.
#[derive(Debug)]
pub(crate) struct Postgres {
    url: String,
    /// Started here, or `None` for `DATABASE_URL`; stops on drop.
    _server: Option<Server>,
}

impl Postgres {
    /// Uses the database `DATABASE_URL` names, or starts a server.
    pub(crate) fn provide() -> Result<Self, String> {
        if let Some(url) = launch::given(URL_ENV) {
            println!("using {URL_ENV}={}", launch::redact(&url));
            return Ok(Self { url, _server: None });
        }
        let started = Instant::now();
        let server = Server::start()?;
        let url = url(server.port);
        println!(
            "started PostgreSQL on port {} in {:.1?} (as {}): {URL_ENV}={url}",
            server.port,
            started.elapsed(),
            server.owner
        );
        Ok(Self {
            url,
            _server: Some(server),
        })
    }

    /// Gives `cmd` `DATABASE_URL`. Per command, not `set_var`: the process
    /// environment is shared state, and changing it is unsafe.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.env(URL_ENV, &self.url);
    }
}

/// `cargo xtask postgres [COMMAND...]`: runs `COMMAND` (default: the SQL
/// store's tests on PostgreSQL) with `DATABASE_URL` set, then stops what
/// was started.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let postgres = Postgres::provide()?;
    let mut cmd = launch::command_or(
        args,
        &[
            "test",
            "-p",
            "http-sessions-sql",
            "--no-default-features",
            "--features",
            "postgres",
            "--all-targets",
        ],
    );
    postgres.apply(&mut cmd);
    crate::run::checked(cmd)
}

/// The URL of the tests' database on a server started here.
fn url(port: u16) -> String {
    format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}")
}

/// A `postgres` child with its own cluster; stopped and its folder removed
/// on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    port: u16,
    /// Who the server runs as, for messages.
    owner: String,
    /// Removed when dropped, after [`Drop`] has stopped the server.
    _dir: TempDir,
}

impl Server {
    /// `initdb`, then `postgres` on a free port, then the tests' database.
    fn start() -> Result<Self, String> {
        let bin = binaries()?;
        let account = account()?;
        let port = launch::free_port()?;
        let dir = TempDir::fresh("postgres", port)?;
        if let Account::Other { uid, gid, .. } = &account {
            std::os::unix::fs::chown(dir.path(), Some(*uid), Some(*gid)).map_err(|e| {
                format!(
                    "giving {} to {account}, who runs PostgreSQL as we are root: {e}",
                    dir.path().display()
                )
            })?;
        }
        let data = dir.path().join("data");

        let log = dir.path().join("initdb.log");
        let status = account
            .command(&bin.join("initdb"), dir.path())
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth", "trust"])
            // C locale: a minimal container may have no other.
            .args(["--encoding", "UTF8", "--locale", "C"])
            // The cluster lives as long as the run: no need to flush it.
            .arg("--no-sync")
            .stdout(output(&log)?)
            .stderr(output(&log)?)
            .status()
            .map_err(|e| account.spawn_error("initdb", &bin, &e))?;
        if !status.success() {
            return Err(format!(
                "initdb {} failed ({status}){}\n{}",
                data.display(),
                account.reach_hint(dir.path()),
                launch::log_tail(&log)
            ));
        }

        let log = dir.path().join("postgres.log");
        let child = account
            .command(&bin.join("postgres"), dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Its socket in its own folder, never the system's.
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            // Data from one run is worth nothing to the next: no waiting
            // for disks.
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            // The tests run in parallel, each with a pool of its own.
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(output(&log)?)
            .stderr(output(&log)?)
            .spawn()
            .map_err(|e| account.spawn_error("postgres", &bin, &e))?;
        let mut server = Self {
            child,
            port,
            owner: account.to_string(),
            _dir: dir,
        };
        let mut session = server.wait_ready(&log)?;
        query(&mut session, &format!("CREATE DATABASE {DATABASE}")).map_err(|e| {
            format!(
                "creating the database {DATABASE} on port {port}: {e}\n{}",
                launch::log_tail(&log)
            )
        })?;
        terminate(session);
        Ok(server)
    }

    /// Polls until the server takes a session, a bounded number of times;
    /// fails at once if it exits or answers with an error other than
    /// "starting up".
    fn wait_ready(&mut self, log: &Path) -> Result<TcpStream, String> {
        let mut last = String::from("no answer");
        for _ in 0..POLLS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "postgres on port {} exited ({status})\n{}",
                    self.port,
                    launch::log_tail(log)
                ));
            }
            match connect(self.port, "postgres") {
                Ok(session) => return Ok(session),
                Err(Refusal::Transient(why)) => last = why,
                Err(Refusal::Final(why)) => {
                    return Err(format!(
                        "postgres on port {} refused a session: {why}\n{}",
                        self.port,
                        launch::log_tail(log)
                    ));
                }
            }
            std::thread::sleep(POLL_EVERY);
        }
        Err(format!(
            "postgres on port {} was not ready after {:?}; last answer: {last}\n{}",
            self.port,
            POLL_EVERY * POLLS,
            launch::log_tail(log)
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already reaped: its pid may be another process's by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGQUIT: an immediate shutdown, the postmaster taking its
        // children with it, where SIGKILL would leave them to notice alone.
        let quit = Command::new("kill")
            .args(["-s", "QUIT", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if quit.is_ok_and(|s| s.success()) {
            let until = Instant::now() + STOP_WAIT;
            while Instant::now() < until {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
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

/// The folder holding `initdb` and `postgres`: Debian's packages keep them
/// off the PATH, in `/usr/lib/postgresql/<version>/bin` (the newest
/// version wins); else the first PATH entry holding both.
fn binaries() -> Result<PathBuf, String> {
    let debian = Path::new("/usr/lib/postgresql");
    let versions: Vec<String> = std::fs::read_dir(debian)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut candidates: Vec<PathBuf> = newest_first(versions)
        .into_iter()
        .map(|v| debian.join(v).join("bin"))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .ok_or_else(|| {
            format!(
                "no PostgreSQL server found (`initdb` and `postgres` in \
                 /usr/lib/postgresql/<version>/bin or on the PATH): {INSTALL}"
            )
        })
}

/// The names of `/usr/lib/postgresql` that are versions (`15`, `9.6`),
/// newest first, by number: `10` is newer than `9.6`.
fn newest_first(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u32>, String)> = names
        .into_iter()
        .filter_map(|name| {
            let number: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((number?, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

/// Who runs `initdb` and `postgres`.
#[derive(Debug)]
enum Account {
    /// This process's own user: not root.
    Me,
    /// We are root, which PostgreSQL refuses: an unprivileged account.
    Other { name: String, uid: u32, gid: u32 },
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Me => f.write_str("this user"),
            Self::Other { name, .. } => write!(f, "the `{name}` account"),
        }
    }
}

/// [`Account::Me`] unless we are root; then `postgres`, the account
/// Debian's package makes, or else `nobody`.
fn account() -> Result<Account, String> {
    if launch::id(&["-u"]) != Some(0) {
        return Ok(Account::Me);
    }
    for name in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (launch::id(&["-u", name]), launch::id(&["-g", name])) {
            return Ok(Account::Other {
                name: name.to_owned(),
                uid,
                gid,
            });
        }
    }
    Err(
        "we run as root, which PostgreSQL refuses, and there is neither a `postgres` \
         nor a `nobody` account to run it as: create one (`useradd --system postgres`), \
         run as another user, or set DATABASE_URL"
            .into(),
    )
}

impl Account {
    /// `program`, run in `dir` as this account, sent SIGQUIT (an
    /// immediate shutdown) if we die first.
    fn command(&self, program: &Path, dir: &Path) -> Command {
        let ids = match self {
            Self::Me => None,
            Self::Other { uid, gid, .. } => Some((*uid, *gid)),
        };
        let mut cmd = launch::guarded(program, "QUIT", ids);
        // Not ours: the account may not be allowed to enter our folder.
        cmd.current_dir(dir);
        cmd
    }

    /// Why `program` (in `bin`) could not be started.
    fn spawn_error(&self, program: &str, bin: &Path, e: &std::io::Error) -> String {
        match (self, e.kind()) {
            (Self::Other { .. }, ErrorKind::NotFound) => format!(
                "`setpriv` is not on the PATH: as we are root, it runs PostgreSQL as {self}, \
                 since PostgreSQL refuses root; install util-linux (Debian/Ubuntu: \
                 `apt-get install util-linux`), or run as another user"
            ),
            _ => format!("could not start {}: {e}", bin.join(program).display()),
        }
    }

    /// For a failed `initdb`: the likely cause when it ran as another
    /// account.
    fn reach_hint(&self, dir: &Path) -> String {
        match self {
            Self::Me => String::new(),
            Self::Other { .. } => format!(
                "; it ran as {self}, which must be able to enter every folder above {} \
                 (set TMPDIR to one it can, such as /tmp)",
                dir.display()
            ),
        }
    }
}

/// Why a session was not had: worth another try (not listening yet,
/// starting up) or not.
#[derive(Debug)]
enum Refusal {
    Transient(String),
    Final(String),
}

/// A session as the superuser on `database`, once the server has said it
/// is ready for queries.
fn connect(port: u16, database: &str) -> Result<TcpStream, Refusal> {
    let io = |e: std::io::Error| Refusal::Transient(e.to_string());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    stream.write_all(&startup(database)).map_err(io)?;
    loop {
        let (kind, body) = read_message(&mut stream).map_err(io)?;
        match kind {
            // AuthenticationOk is 0; anything else asks for a password.
            b'R' if body == [0, 0, 0, 0] => {}
            b'R' => {
                return Err(Refusal::Final(
                    "the server asks for a password, though initdb was told to trust".into(),
                ));
            }
            b'E' => {
                let error = ServerError::parse(&body);
                // 57P03, cannot_connect_now: "the database system is
                // starting up".
                return Err(if error.code == "57P03" {
                    Refusal::Transient(error.to_string())
                } else {
                    Refusal::Final(error.to_string())
                });
            }
            b'Z' => return Ok(stream),
            // Parameters, the key for cancelling, notices.
            _ => {}
        }
    }
}

/// The start-up message of protocol 3.0 for the superuser on `database`.
fn startup(database: &str) -> Vec<u8> {
    let mut body = 196_608_u32.to_be_bytes().to_vec();
    for (key, value) in [("user", SUPERUSER), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// Runs one statement; fails with the server's error.
fn query(stream: &mut TcpStream, sql: &str) -> std::io::Result<()> {
    let len = u32::try_from(sql.len() + 5)
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "statement too long"))?;
    let mut message = vec![b'Q'];
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(sql.as_bytes());
    message.push(0);
    stream.write_all(&message)?;
    let mut error = None;
    loop {
        match read_message(stream)? {
            (b'E', body) => error = Some(ServerError::parse(&body).to_string()),
            (b'Z', _) => return error.map_or(Ok(()), |e| Err(std::io::Error::other(e))),
            _ => {}
        }
    }
}

/// Ends a session politely, so the server logs no lost connection.
fn terminate(mut stream: TcpStream) {
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
}

/// One backend message: its type byte and its body.
fn read_message(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0; 5];
    stream.read_exact(&mut head)?;
    let [kind, len @ ..] = head;
    let bad = || std::io::Error::new(ErrorKind::InvalidData, "bad message length");
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| bad())?;
    // The length counts itself; no reply to start-up or to one statement
    // comes near a megabyte.
    let len = len
        .checked_sub(4)
        .filter(|&n| n < 1 << 20)
        .ok_or_else(bad)?;
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok((kind, body))
}

/// The fields of an ErrorResponse that say what went wrong.
#[derive(Debug, PartialEq, Eq)]
struct ServerError {
    severity: String,
    code: String,
    message: String,
}

impl ServerError {
    /// Fields are a type byte and a NUL-terminated text each, the list
    /// ended by a NUL.
    fn parse(body: &[u8]) -> Self {
        let mut error = Self {
            severity: "ERROR".into(),
            code: String::new(),
            message: "(no message)".into(),
        };
        for field in body.split(|&b| b == 0) {
            if let Some((&kind, text)) = field.split_first() {
                let text = String::from_utf8_lossy(text).into_owned();
                match kind {
                    b'S' => error.severity = text,
                    b'C' => error.code = text,
                    b'M' => error.message = text,
                    _ => {}
                }
            }
        }
        error
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_comes_first_by_number_not_by_text() {
        let names = ["9.6", "15", "common", "10", "13"]
            .map(String::from)
            .to_vec();
        assert_eq!(newest_first(names), ["15", "13", "10", "9.6"]);
    }

    #[test]
    fn an_error_response_gives_its_severity_code_and_message() {
        let body =
            b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0Fpostmaster.c\0\0";
        assert_eq!(
            ServerError::parse(body),
            ServerError {
                severity: "FATAL".into(),
                code: "57P03".into(),
                message: "the database system is starting up".into(),
            }
        );
    }

    #[test]
    fn the_startup_message_counts_its_own_length() {
        let message = startup("db");
        let body = b"\0\x03\0\0user\0sessions\0database\0db\0\0";
        assert_eq!(&message[..4], &(body.len() as u32 + 4).to_be_bytes());
        assert_eq!(&message[4..], body);
    }
}
