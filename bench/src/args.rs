//! The bench's command line: [`Args`], read by [`Args::parse`].

use std::path::PathBuf;
use std::time::Duration;

use crate::variants::{Route, Variant};

pub(crate) const USAGE: &str = "\
usage: session-bench [OPTIONS]
       (normally `cargo xtask bench [OPTIONS]`, which provides Redis and --out)

options:
  --seconds S        measured time per variant and route (default 3)
  --warmup S         warm-up per variant and route (default 1)
  --rounds N         rounds (default 5): every variant and route is measured
                     once per round, for its share of --seconds after its
                     share of --warmup on fresh connections, so a slow
                     moment of the machine falls on all of them alike
  --connections N    keep-alive connections, one visitor each (default 64)
  --sessions N       sessions created for the bytes-per-session figures (default 1000000)
  --out PATH         also write the report into PATH: the SQL rows and
                     figures between <!-- bench-sql:begin --> and
                     <!-- bench-sql:end -->, the rest between
                     <!-- bench:begin --> and <!-- bench:end -->; a section
                     the run measured nothing of is left as it is
  --redis-url URL    the Redis for the Redis variants (default: REDIS_URL,
                     else redis://127.0.0.1:6379)
  --database-url URL the Postgres for the Postgres variants (default:
                     DATABASE_URL; with neither, they are left out of the
                     default variants, and asking for one fails); the bench
                     drops and makes the schemas session_bench and
                     session_bench_disk there, and drops them at the end
  --only V[,V...]    only these variants: none, cookie-signed, cookie-encrypted,
                     memory, redis, redis-driver (our Redis store on redis-rs's
                     own connection instead of its pipe), postgres, sqlite,
                     tower-sessions-memory, tower-sessions-redis,
                     tower-sessions-postgres, tower-sessions-sqlite (the
                     SQLite variants share a database file the bench makes
                     in the temporary directory and deletes at the end)
  --routes R[,R...]  only these routes: untouched, counter, counter-signed-in,
                     new
  --no-memory        skip the bytes-per-session figures in memory and Redis
  --disk-sessions N  sessions written through each SQL store for the
                     bytes-on-disk figures (default 100000)
  --no-disk          skip the bytes-on-disk figures (taken for Postgres and
                     for SQLite when a variant of theirs is measured)
  --instructions N   requests counted by callgrind per variant and route
                     for the instructions-per-request figures (default 2000)
  --no-instructions  skip the instructions-per-request figures (they need
                     valgrind)
  --pin              pin the server to the first core and the load generator
                     to the second (default: the scheduler places them; pinned,
                     a Redis beside them is starved of the core it is woken on)
  --command TEXT     the command line to print in the report (xtask sets it)";

/// Longest measurement or warm-up accepted: the run must end by itself in
/// minutes, not hours.
const MAX_SECONDS: f64 = 300.0;
/// Most rounds accepted.
const MAX_ROUNDS: usize = 20;
/// Most connections accepted: each is a task and a socket on this machine.
const MAX_CONNECTIONS: usize = 4096;
/// Most requests counted under callgrind per variant and route (about
/// 20 µs each there).
const MAX_COUNTED: usize = 1_000_000;
/// Most sessions accepted for the memory figures (about 1 KiB each at worst).
const MAX_SESSIONS: usize = 20_000_000;
/// Most sessions accepted for the disk figures (a few thousand a second
/// are written).
const MAX_DISK_SESSIONS: usize = 5_000_000;

/// What one run measures, and where it writes.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) seconds: Duration,
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) connections: usize,
    pub(crate) sessions: usize,
    pub(crate) out: Option<PathBuf>,
    pub(crate) redis_url: String,
    /// The Postgres of the Postgres variants, if given.
    pub(crate) database_url: Option<String>,
    pub(crate) variants: Vec<Variant>,
    /// The Postgres variants were left out of the default variants, no
    /// database being given.
    pub(crate) database_left_out: bool,
    pub(crate) routes: Vec<Route>,
    pub(crate) memory: bool,
    /// Sessions for the bytes-on-disk figures; `None` skips them.
    pub(crate) disk_sessions: Option<usize>,
    /// Requests counted per variant and route for the instruction
    /// figures; `None` skips them.
    pub(crate) instructions: Option<u64>,
    pub(crate) pin: bool,
    pub(crate) command: String,
}

impl Args {
    /// Reads the arguments after the program name. `Err` carries the message
    /// to print: a mistake with the usage, or the usage alone for `--help`.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        Self::parse_with(args, |name| std::env::var(name).ok())
    }

    /// [`parse`](Self::parse) with the environment variables read by `env`.
    fn parse_with(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut parsed = Self {
            seconds: Duration::from_secs(3),
            rounds: 5,
            warmup: Duration::from_secs(1),
            connections: 64,
            sessions: 1_000_000,
            out: None,
            redis_url: set("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
            database_url: set("DATABASE_URL").map(|url| url.trim().to_owned()),
            variants: Variant::ALL.to_vec(),
            database_left_out: false,
            routes: Route::ALL.to_vec(),
            memory: true,
            disk_sessions: Some(100_000),
            instructions: Some(2000),
            pin: false,
            command: default_command(&args),
        };
        let mut only = false;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value =
                |name: &str| it.next().ok_or(format!("{name} needs a value\n\n{USAGE}"));
            match arg.as_str() {
                "--seconds" => parsed.seconds = seconds("--seconds", &value("--seconds")?)?,
                "--rounds" => {
                    parsed.rounds = count("--rounds", &value("--rounds")?, MAX_ROUNDS)?;
                }
                "--warmup" => parsed.warmup = seconds("--warmup", &value("--warmup")?)?,
                "--connections" => {
                    parsed.connections =
                        count("--connections", &value("--connections")?, MAX_CONNECTIONS)?;
                }
                "--sessions" => {
                    parsed.sessions = count("--sessions", &value("--sessions")?, MAX_SESSIONS)?;
                }
                "--out" => parsed.out = Some(PathBuf::from(value("--out")?)),
                "--redis-url" => parsed.redis_url = value("--redis-url")?,
                "--database-url" => parsed.database_url = Some(value("--database-url")?),
                "--only" => {
                    parsed.variants = list("--only", &value("--only")?, Variant::parse)?;
                    only = true;
                }
                "--routes" => parsed.routes = list("--routes", &value("--routes")?, Route::parse)?,
                "--no-memory" => parsed.memory = false,
                "--disk-sessions" => {
                    let n = count(
                        "--disk-sessions",
                        &value("--disk-sessions")?,
                        MAX_DISK_SESSIONS,
                    )?;
                    parsed.disk_sessions = Some(n);
                }
                "--no-disk" => parsed.disk_sessions = None,
                "--instructions" => {
                    let n = count("--instructions", &value("--instructions")?, MAX_COUNTED)?;
                    parsed.instructions = Some(n as u64);
                }
                "--no-instructions" => parsed.instructions = None,
                "--pin" => parsed.pin = true,
                "--command" => parsed.command = value("--command")?,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        // Asked for by name, a Postgres variant without a database fails
        // the run; by default, it is only left out (and said so).
        if !only && parsed.database_url.is_none() {
            parsed.variants.retain(|v| !v.uses_postgres());
            parsed.database_left_out = true;
        }
        Ok(parsed)
    }

    /// The measured time of one round of one variant and route.
    pub(crate) fn slice(&self) -> Duration {
        self.seconds.div_f64(self.rounds as f64)
    }

    /// The warm-up before each round of one variant and route.
    pub(crate) fn slice_warmup(&self) -> Duration {
        self.warmup.div_f64(self.rounds as f64)
    }

    /// Whether any chosen variant talks to Redis, or the memory figures do.
    pub(crate) fn needs_redis(&self) -> bool {
        self.memory || self.variants.iter().any(|v| v.uses_redis())
    }

    /// Whether any chosen variant talks to Postgres; its disk figures are
    /// taken then (unless `--no-disk`).
    pub(crate) fn needs_postgres(&self) -> bool {
        self.variants.iter().any(|v| v.uses_postgres())
    }

    /// Whether any chosen variant keeps sessions in SQLite; its disk
    /// figures are taken then (unless `--no-disk`).
    pub(crate) fn needs_sqlite(&self) -> bool {
        self.variants.iter().any(|v| v.uses_sqlite())
    }

    /// Sessions for the bytes-on-disk figures, if any are taken.
    pub(crate) fn disk_figures(&self) -> Option<usize> {
        self.disk_sessions
            .filter(|_| self.needs_postgres() || self.needs_sqlite())
    }
}

/// The command as typed, when run directly rather than through xtask.
fn default_command(args: &[String]) -> String {
    let mut command = String::from("cargo run --release -p session-bench --");
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    command
}

fn seconds(name: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_SECONDS => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{name} {text:?}: expected seconds above 0 and at most {MAX_SECONDS}"
        )),
    }
}

fn count(name: &str, text: &str, max: usize) -> Result<usize, String> {
    match text.replace('_', "").parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name} {text:?}: expected a whole number from 1 to {max}"
        )),
    }
}

fn list<T: PartialEq>(
    name: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let item =
            parse(word).ok_or_else(|| format!("{name}: unknown name {word:?}\n\n{USAGE}"))?;
        if !items.contains(&item) {
            items.push(item);
        }
    }
    if items.is_empty() {
        return Err(format!("{name} needs at least one name"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsed with no environment variable set.
    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse_with(args.iter().map(|a| (*a).to_owned()), |_| None)
    }

    #[test]
    fn defaults_measure_everything() {
        let args = Args::parse_with(Vec::new(), |name| {
            (name == "DATABASE_URL").then(|| "postgres://bench@127.0.0.1:55433/bench ".to_owned())
        })
        .unwrap();
        assert_eq!(args.seconds, Duration::from_secs(3));
        assert_eq!(args.slice(), Duration::from_millis(600));
        assert_eq!(args.slice_warmup(), Duration::from_millis(200));
        assert_eq!(args.connections, 64);
        assert_eq!(args.sessions, 1_000_000);
        assert_eq!(args.variants, Variant::ALL);
        assert!(args.variants.contains(&Variant::RedisDriver));
        assert!(args.variants.contains(&Variant::TowerPostgres));
        assert_eq!(
            args.database_url.as_deref(),
            Some("postgres://bench@127.0.0.1:55433/bench")
        );
        assert!(!args.database_left_out && args.needs_postgres());
        assert_eq!(args.disk_figures(), Some(100_000));
        assert_eq!(args.routes, Route::ALL);
        assert!(args.routes.contains(&Route::SignedInCounter));
        assert!(args.memory && args.needs_redis());
        assert_eq!(args.command, "cargo run --release -p session-bench --");
    }

    #[test]
    fn the_postgres_variants_need_a_database_when_asked_for() {
        // Not asked for: left out of the defaults, and no disk figures.
        let args = parse(&[]).unwrap();
        assert!(args.database_left_out && !args.needs_postgres());
        assert_eq!(args.variants.len(), Variant::ALL.len() - 2);
        // SQLite needs no server: its variants stay, and its disk figures.
        assert!(args.needs_sqlite());
        assert_eq!(args.disk_figures(), Some(100_000));
        let args = parse(&["--only", "none,memory"]).unwrap();
        assert_eq!(args.disk_figures(), None);

        // Asked for: kept, so that the run fails and says why.
        let args = parse(&["--only", "postgres,tower-sessions-postgres"]).unwrap();
        assert_eq!(args.variants, [Variant::Postgres, Variant::TowerPostgres]);
        assert!(!args.database_left_out && args.needs_postgres());
        assert_eq!(args.database_url, None);

        let args = parse(&[
            "--database-url",
            "postgres://x@127.0.0.1:1/x",
            "--disk-sessions",
            "1_000",
        ])
        .unwrap();
        assert_eq!(args.variants, Variant::ALL);
        assert_eq!(args.disk_figures(), Some(1000));
        let args = parse(&["--only", "postgres", "--no-disk"]).unwrap();
        assert_eq!(args.disk_figures(), None);
        let args = parse(&["--only", "sqlite,tower-sessions-sqlite"]).unwrap();
        assert!(args.needs_sqlite() && !args.needs_postgres());
        assert_eq!(args.variants, [Variant::Sqlite, Variant::TowerSqlite]);
        assert!(parse(&["--disk-sessions", "0"]).is_err());
    }

    #[test]
    fn flags_are_read_and_checked() {
        let args = parse(&[
            "--seconds",
            "0.5",
            "--sessions",
            "1_000",
            "--rounds",
            "1",
            "--only",
            "none,memory",
            "--routes",
            "counter,/counter-signed-in",
            "--no-memory",
        ])
        .unwrap();
        assert_eq!(args.seconds, Duration::from_millis(500));
        assert_eq!(args.sessions, 1000);
        assert_eq!(args.slice(), Duration::from_millis(500));
        assert_eq!(args.variants, [Variant::NoLayer, Variant::Memory]);
        assert_eq!(args.routes, [Route::Counter, Route::SignedInCounter]);
        assert!(!args.needs_redis());

        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds", "1e9"]).is_err());
        assert!(parse(&["--connections", "0"]).is_err());
        assert!(parse(&["--only", "mongo"]).is_err());

        let args = parse(&["--only", "redis,redis-driver,tower-sessions-redis"]).unwrap();
        assert_eq!(
            args.variants,
            [Variant::Redis, Variant::RedisDriver, Variant::TowerRedis]
        );
        assert!(args.needs_redis());
        assert!(parse(&["--out"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
