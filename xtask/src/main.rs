//! Project automation, run as `cargo xtask <command>`.
//!
//! # Layout
//!
//! - `test_all`: every check and test, ending in `N passed, N failed`.
//! - `bench`: our session layer beside tower-sessions under the same load,
//!   reported in `docs/benchmarks.md` (the `session-bench` crate).
//! - `redis`: a Redis and a Redis Cluster for the tests, from `REDIS_URL` and
//!   `REDIS_CLUSTER_URLS` or started here; also `cargo xtask redis`.
//! - `registry`: whether crates.io can be reached, for the publish dry-run.
//! - `run`: running cargo and other programs, and counting test results.

mod bench;
mod redis;
mod registry;
mod run;
mod test_all;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test-all    fmt check, clippy -D warnings, the tests of each backend alone
              and of all features together, doctests, and `cargo publish
              --workspace --dry-run` (skipped, saying so, when crates.io cannot
              be reached); ends with `N passed, N failed`.
              Redis: REDIS_URL and REDIS_CLUSTER_URLS if set, else redis-server
              and a 3-node cluster started on free ports and stopped at the end
  bench [ARGS...]
              builds `session-bench` in release and runs it: the same axum routes
              with no session layer, each of our backends and tower-sessions,
              under the same load, plus bytes per session; writes its section
              of docs/benchmarks.md. Redis: REDIS_URL if set, else a redis-server
              started on a free port. `cargo xtask bench --help` lists ARGS
  redis [COMMAND...]
              runs COMMAND (default: the Redis backend's tests) with that same
              Redis, REDIS_URL and REDIS_CLUSTER_URLS set";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test-all") => test_all::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("redis") => redis::run(&rest),
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

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
