//! `cargo xtask bench [ARGS...]`: the side-by-side benchmark of the
//! `session-bench` crate, built in release and run with a Redis and a
//! PostgreSQL provided as for the tests (`REDIS_URL` and `DATABASE_URL` if
//! set, else servers started here), writing its sections of
//! `docs/benchmarks.md`. `ARGS` go to the bench
//! (`--seconds`, `--rounds`, `--sessions`, ...; `--help` lists them).

use std::time::Instant;

use crate::postgres::Postgres;
use crate::redis::Redis;
use crate::root;
use crate::run;

/// The file the report goes into, relative to the workspace root.
const OUT: &str = "docs/benchmarks.md";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    // Both binaries: `cargo run` builds only the one it runs, and the bench
    // runs `session-bench-memory` from beside itself.
    let mut build = run::cargo(&root);
    build.args(["build", "--release", "-p", "session-bench", "--bins"]);
    run::checked(build)?;

    let help = args.iter().any(|a| a == "-h" || a == "--help");
    // One node is all the bench uses: no cluster is started.
    let (redis, postgres) = if help {
        (None, None)
    } else {
        (Some(Redis::provide_single()?), Some(Postgres::provide()?))
    };
    let mut shown = String::from("cargo xtask bench");
    for arg in args {
        shown.push(' ');
        shown.push_str(arg);
    }
    let mut bench = run::cargo(&root);
    bench
        .args(["run", "--release", "--quiet", "-p", "session-bench", "--"])
        .args(["--out", OUT, "--command", &shown])
        // After ours, so the caller's `--out` wins.
        .args(args);
    if let Some(redis) = &redis {
        redis.apply(&mut bench);
    }
    if let Some(postgres) = &postgres {
        postgres.apply(&mut bench);
    }
    let result = run::checked(bench);
    println!(
        "cargo xtask bench: {:.0} s in all, build included",
        started.elapsed().as_secs_f64()
    );
    result
}
