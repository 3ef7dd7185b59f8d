//! Project automation, run as `cargo xtask <command>`.
//!
//! # Layout
//!
//! - `test_all`: every check and test, ending in `N passed, N failed`; its
//!   last test stage drives the demo in headless Chromium, which needs
//!   Debian's `chromium` and `chromium-driver` (`session-browser`).
//! - `bench`: our session layer beside tower-sessions under the same load,
//!   reported in `docs/benchmarks.md` (the `session-bench` crate).
//! - `services`: the servers the tests talk to, each provided once per run;
//!   also `cargo xtask services`.
//! - `redis`: a Redis and a Redis Cluster for the tests, from `REDIS_URL` and
//!   `REDIS_CLUSTER_URLS` or started here; also `cargo xtask redis`.
//! - `postgres`: a PostgreSQL database, from `DATABASE_URL` or a throwaway
//!   server started here; also `cargo xtask postgres`.
//! - `mariadb`: a MariaDB database, from `MYSQL_URL` or a throwaway server
//!   started here; also `cargo xtask mariadb`.
//! - `launch`: what starting a server of the run's own takes (a free port,
//!   a fresh folder, a process that dies with this one).
//! - `registry`: whether crates.io can be reached, for the publish dry-run.
//! - `run`: running cargo and other programs, and counting test results.

mod bench;
mod launch;
mod mariadb;
mod postgres;
mod redis;
mod registry;
mod run;
mod services;
mod test_all;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test-all    fmt check, clippy -D warnings, the tests of each backend alone
              and of all features together, doctests, the demo in headless
              Chromium (needs chromium and chromedriver: apt-get install
              chromium chromium-driver), and `cargo publish --workspace
              --dry-run --no-verify` (skipped, saying so, when crates.io cannot
              be reached); ends with `N passed, N failed`.
              Redis: REDIS_URL and REDIS_CLUSTER_URLS if set, else redis-server
              and a 3-node cluster started on free ports and stopped at the end.
              PostgreSQL: DATABASE_URL if set, else a throwaway server (initdb,
              postgres) on a free port. MariaDB: MYSQL_URL if set, else a
              throwaway mariadbd on a free port. Each started before the first
              stage that needs it, stopped and its files removed at the end
  bench [ARGS...]
              builds `session-bench` in release and runs it: the same axum routes
              with no session layer, each of our backends and tower-sessions,
              under the same load, plus bytes per session; writes its section
              of docs/benchmarks.md. Redis: REDIS_URL if set, else a redis-server
              started on a free port. `cargo xtask bench --help` lists ARGS
  redis [COMMAND...]
              runs COMMAND (default: the Redis backend's tests) with that same
              Redis, REDIS_URL and REDIS_CLUSTER_URLS set
  postgres [COMMAND...]
              runs COMMAND (default: the SQL store's tests on PostgreSQL) with
              that same PostgreSQL, DATABASE_URL set
  mariadb [COMMAND...]
              runs COMMAND (default: the SQL store's tests on MariaDB) with
              that same MariaDB, MYSQL_URL set
  services [COMMAND...]
              runs COMMAND (default: every test, all features, but the
              browser's) with Redis, PostgreSQL and MariaDB, all the variables
              above set";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test-all") => test_all::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("redis") => redis::run(&rest),
        Some("postgres") => postgres::run(&rest),
        Some("mariadb") => mariadb::run(&rest),
        Some("services") => services::run(&rest),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The package whose tests drive the demo in Chromium: its own stage
/// runs them, after the demo is built, and no other command tests it.
const BROWSER: &str = "session-browser";

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
