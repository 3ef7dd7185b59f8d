//! Making Redis available to a test run: the [`Redis`] a run's stages talk
//! to, from `REDIS_URL` / `REDIS_CLUSTER_URLS` when they are set, else
//! `redis-server` children started here (one node, and a three-node
//! cluster) on free ports, stopped when the [`Redis`] is dropped.
//!
//! Also `cargo xtask redis [COMMAND...]`: runs one command with that Redis;
//! and [`Redis::provide_single`], the single node alone, for the benchmarks.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The URL of the single node the tests use.
pub(crate) const URL_ENV: &str = "REDIS_URL";
/// Comma-separated URLs of the cluster nodes the tests use.
pub(crate) const CLUSTER_ENV: &str = "REDIS_CLUSTER_URLS";

const INSTALL: &str = "install Redis (Debian/Ubuntu: `apt-get install redis-server redis-tools`; \
                       macOS: `brew install redis`), or set REDIS_URL and REDIS_CLUSTER_URLS \
                       to a Redis and a Redis Cluster you can write to";

/// How often readiness is polled, and how long between polls: enough for a
/// slow CI machine (the servers start in milliseconds on a quiet one).
const POLLS: u32 = 400;
const POLL_EVERY: Duration = Duration::from_millis(25);

/// A Redis and a Redis Cluster for the stages of a run.
#[derive(Debug)]
pub(crate) struct Redis {
    vars: Vec<(&'static str, String)>,
    /// Started here; each stops on drop, so every exit path stops them.
    _servers: Vec<Server>,
}

impl Redis {
    /// Uses the Redis the environment names, or starts one, and a cluster.
    pub(crate) fn provide() -> Result<Self, String> {
        let given = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = given(URL_ENV);
        let cluster = given(CLUSTER_ENV);
        if url.is_none() || cluster.is_none() {
            require("redis-server")?;
        }
        if cluster.is_none() {
            require("redis-cli")?;
        }

        let mut servers = Vec::new();
        let url = single_node(url, &mut servers)?;
        let cluster = match cluster {
            Some(urls) => {
                println!("using {CLUSTER_ENV}={urls}");
                urls
            }
            None => {
                let ports = cluster_ports(3)?;
                let mut nodes = Vec::new();
                for &port in &ports {
                    let config = format!("nodes-{port}.conf");
                    nodes.push(Server::start(
                        port,
                        &["--cluster-enabled", "yes", "--cluster-config-file", &config],
                    )?);
                }
                create_cluster(&mut nodes)?;
                servers.extend(nodes);
                println!("started a Redis Cluster on ports {ports:?}");
                ports
                    .iter()
                    .map(|p| format!("redis://127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        Ok(Self {
            vars: vec![(URL_ENV, url), (CLUSTER_ENV, cluster)],
            _servers: servers,
        })
    }

    /// Like [`provide`](Self::provide), the single node only: for runs
    /// (the benchmarks) that need no cluster, so none is started.
    pub(crate) fn provide_single() -> Result<Self, String> {
        let url = std::env::var(URL_ENV).ok().filter(|v| !v.trim().is_empty());
        if url.is_none() {
            require("redis-server")?;
        }
        let mut servers = Vec::new();
        let url = single_node(url, &mut servers)?;
        Ok(Self {
            vars: vec![(URL_ENV, url)],
            _servers: servers,
        })
    }

    /// Gives `cmd` the Redis variables. Per command, not `set_var`: the
    /// process environment is shared state, and changing it is unsafe.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        for (name, value) in &self.vars {
            cmd.env(name, value);
        }
    }
}

/// `cargo xtask redis [COMMAND...]`: runs `COMMAND` (default: the Redis
/// backend's tests) with Redis available, then stops what was started.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let redis = Redis::provide()?;
    let mut cmd = crate::launch::command_or(
        args,
        &["test", "-p", "http-sessions-redis", "--all-targets"],
    );
    redis.apply(&mut cmd);
    crate::run::checked(cmd)
}

/// The URL of the single node: `given` (from `REDIS_URL`), else a
/// `redis-server` started here and added to `servers`.
fn single_node(given: Option<String>, servers: &mut Vec<Server>) -> Result<String, String> {
    match given {
        Some(url) => {
            println!("using {URL_ENV}={url}");
            Ok(url)
        }
        None => {
            let port = crate::launch::free_port()?;
            servers.push(Server::start(port, &[])?);
            println!("started redis-server on port {port}");
            Ok(format!("redis://127.0.0.1:{port}"))
        }
    }
}

/// Fails with the install hint unless `program` runs.
fn require(program: &str) -> Result<(), String> {
    match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(format!(
            "`{program}` is not on the PATH, and the Redis tests need it: {INSTALL}"
        )),
        Err(e) => Err(format!("could not run `{program}`: {e}")),
    }
}

/// A `redis-server` child with its own directory; killed and cleaned up on
/// drop.
#[derive(Debug)]
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Starts a server on `port` without persistence and waits for `PING`.
    fn start(port: u16, extra: &[&str]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "sessions-xtask-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let log = File::create(dir.join("redis.log"))
            .and_then(|f| Ok((f.try_clone()?, f)))
            .map_err(|e| format!("creating the log in {}: {e}", dir.display()))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            // Sessions from one run are worth nothing to the next.
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.0)
            .stderr(log.1)
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => format!("`redis-server` is not on the PATH: {INSTALL}"),
                _ => format!("could not start redis-server: {e}"),
            })?;
        let mut server = Self { child, port, dir };
        server.wait_until(&["PING"], |reply| reply == "PONG")?;
        Ok(server)
    }

    /// Polls `command` until `ready` accepts its reply, a bounded number of
    /// times; fails at once if the server exits.
    fn wait_until(&mut self, words: &[&str], ready: impl Fn(&str) -> bool) -> Result<(), String> {
        let mut last = String::from("no answer");
        for _ in 0..POLLS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited ({status}):\n{}",
                    self.port,
                    log_tail(&self.dir)
                ));
            }
            match request(self.port, words) {
                Ok(reply) if ready(&reply) => return Ok(()),
                Ok(reply) => last = reply,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(POLL_EVERY);
        }
        Err(format!(
            "redis-server on port {} was not ready after {:?} of `{}`; last answer:\n{last}\n{}",
            self.port,
            POLL_EVERY * POLLS,
            words.join(" "),
            log_tail(&self.dir)
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The end of a server's log, for error messages.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let skip = lines.len().saturating_sub(20);
    lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
}

/// Joins the nodes into one cluster, then waits until each says it is ok.
fn create_cluster(nodes: &mut [Server]) -> Result<(), String> {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("--cluster").arg("create");
    for node in nodes.iter() {
        cmd.arg(format!("127.0.0.1:{}", node.port));
    }
    cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => format!("`redis-cli` is not on the PATH: {INSTALL}"),
            _ => format!("could not run redis-cli: {e}"),
        })?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Every node must see every slot covered, not only the one asked first.
    for node in nodes {
        node.wait_until(&["CLUSTER", "INFO"], |info| {
            info.lines().any(|l| l.trim() == "cluster_state:ok")
        })?;
    }
    Ok(())
}

/// `n` ports that are free, each with its cluster bus port (the port plus
/// 10000, fixed by Redis before 7.0) free too. Every candidate stays bound
/// until all are chosen, so no two overlap.
fn cluster_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..100 {
        if ports.len() == n {
            return Ok(ports);
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if let Ok(bus_listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, bus)) {
            ports.push(port);
            held.push(listener);
            held.push(bus_listener);
        }
    }
    if ports.len() == n {
        Ok(ports)
    } else {
        Err(format!(
            "found only {} of {n} free port pairs for a Redis Cluster",
            ports.len()
        ))
    }
}

/// Sends one command and reads one reply: a simple string, an error, an
/// integer or a bulk string (all that `PING` and `CLUSTER INFO` answer).
fn request(port: u16, words: &[&str]) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut out = format!("*{}\r\n", words.len());
    for word in words {
        out.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream.write_all(out.as_bytes())?;

    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let head = head.trim_end();
    let bad = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_owned());
    match head.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.to_owned()),
        Some(("-", rest)) => Err(std::io::Error::other(rest.to_owned())),
        Some(("$", len)) => {
            let len: usize = len.parse().map_err(|_| bad("bad bulk length"))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            String::from_utf8(body).map_err(|_| bad("reply is not UTF-8"))
        }
        _ => Err(bad("unexpected reply")),
    }
}
