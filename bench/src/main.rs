//! `session-bench`: our session layer and tower-sessions side by side.
//! Serves the same axum routes with no session layer, with each of our
//! backends and with tower-sessions' three stores, drives each with the
//! load generator in `client`, measures bytes per session, and prints a
//! [`report::Report`] (also written into `--out`, between markers). Run it
//! through `cargo xtask bench`, which provides Redis and Postgres; the
//! Postgres variants run when `DATABASE_URL` names a Postgres, the SQLite
//! ones in a database file the bench makes.
//!
//! # Layout
//!
//! - `args`: the command line.
//! - `variants`: the setups compared, their routes and handlers.
//! - `server`: the server runtime (one worker thread) and one server per variant.
//! - `client`: the HTTP/1.1 keep-alive load generator.
//! - `stats`: rows summed over rounds, percentiles, CPU time of each side.
//! - `memory`: bytes per session, in process, in Redis and on disk in
//!   Postgres and SQLite.
//! - `instructions`: instructions per request, counted by callgrind on the
//!   in-process `session-bench-layer` binary.
//! - `machine`: the machine and the Redis, Postgres and SQLite versions,
//!   for the report.
//! - `report`: the table, the targets, the Markdown section.
//! - `sample`: the session the memory figures use (shared with the
//!   `session-bench-memory` binary).

mod args;
mod client;
mod instructions;
mod machine;
mod memory;
mod report;
mod sample;
mod server;
mod stats;
mod variants;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use args::Args;
use client::{Load, Outcome};
use report::{Memory, Report};
use server::Servers;
use stats::{CLIENT_THREADS, Clocks, Slice, Steal, Tally};
use variants::{Backends, Route, Variant};

/// Errors of the bench: printed, then the process fails.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) if report.errors() == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!(
                "session-bench: {} request(s) failed; the rows that show errors are not to be trusted",
                report.errors()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("session-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Report, Error> {
    let started = Instant::now();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (server_core, client_core) = match (args.pin, cores.as_slice()) {
        (true, [server, client, ..]) => (Some(*server), Some(*client)),
        _ => (None, None),
    };
    let servers = Servers::new(server_core)?;
    let client = server::one_thread_runtime(CLIENT_THREADS, client_core)?;
    let machine = machine::Machine::describe();
    let redis_version = if args.needs_redis() {
        let version = servers
            .runtime()
            .block_on(machine::redis_version(&args.redis_url))
            .map_err(|e| {
                format!(
                    "Redis at {}: {e}\n`cargo xtask bench` starts one; or set REDIS_URL, \
                     or leave the Redis variants out (--only, --no-memory)",
                    args.redis_url
                )
            })?;
        Some(version)
    } else {
        None
    };
    let database_url = if args.needs_postgres() {
        Some(variants::need_database(args.database_url.as_deref())?)
    } else {
        None
    };
    let postgres_version = match database_url {
        Some(url) => {
            let version = servers
                .runtime()
                .block_on(machine::postgres_version(url))
                .map_err(|e| {
                    format!(
                        "Postgres at {url}: {e}\nset DATABASE_URL (or --database-url) to a \
                         Postgres the bench may make tables in, or leave the Postgres \
                         variants out (--only)"
                    )
                })?;
            // Runs alike: the HTTP rows start from empty tables.
            servers
                .runtime()
                .block_on(variants::drop_schema(url, variants::SQL_SCHEMA))?;
            Some(version)
        }
        None => None,
    };
    // The SQLite variants' database file, in a directory of this run's,
    // deleted with it.
    let sqlite_dir = args.needs_sqlite().then(TempDir::new).transpose()?;
    let sqlite_url = (sqlite_dir.as_ref()).map(|dir| memory::sqlite_url(&dir.0.join("http.db")));
    let sqlite_version = match &sqlite_dir {
        Some(_) => Some(servers.runtime().block_on(machine::sqlite_version())?),
        None => None,
    };
    println!("{}", machine.summary());
    if let Some(v) = &redis_version {
        println!("Redis {v} at {}", args.redis_url);
    }
    if let (Some(v), Some(url)) = (&postgres_version, database_url) {
        println!("PostgreSQL {v} at {url}");
    }
    if let (Some(v), Some(url)) = (&sqlite_version, &sqlite_url) {
        println!("SQLite {v} at {url}");
    }
    if args.database_left_out {
        println!(
            "DATABASE_URL is not set: the Postgres variants are left out \
             (set it, or pass --database-url, to measure them)"
        );
    }

    // Memory first: it is quick, and a missing piece fails the run before
    // minutes of measuring rather than after.
    let mut memory = Memory::default();
    if args.memory {
        for (store, slot) in [
            ("sessions", &mut memory.ours),
            ("tower-sessions", &mut memory.theirs),
        ] {
            progress(&format!(
                "memory: {} sessions in {store}' MemoryStore",
                args.sessions
            ));
            let figures = memory::in_process(store, args.sessions)?;
            println!(" {:.0} B allocated per session", figures.allocated);
            *slot = Some(figures);
        }
        progress("memory: one session in Redis from each Redis store");
        let figures = servers
            .runtime()
            .block_on(memory::in_redis(&args.redis_url))?;
        println!(" {} B ours, {} B theirs", figures.ours, figures.theirs);
        memory.redis = Some(figures);
    }
    let mut postgres_disk = None;
    if let (Some(n), Some(url)) = (args.disk_figures(), database_url) {
        progress(&format!(
            "disk: {n} sessions through each Postgres store, then VACUUM ANALYZE"
        ));
        let figures = servers.runtime().block_on(memory::in_postgres(url, n))?;
        println!(
            " {:.0} B ours, {:.0} B theirs per session",
            figures.ours, figures.theirs
        );
        postgres_disk = Some(figures);
    }
    let mut sqlite_disk = None;
    if let (Some(n), Some(dir)) = (args.disk_figures(), &sqlite_dir) {
        progress(&format!(
            "disk: {n} sessions through each SQLite store, then VACUUM"
        ));
        let figures = servers.runtime().block_on(memory::in_sqlite(&dir.0, n))?;
        println!(
            " {:.0} B ours, {:.0} B theirs per session",
            figures.ours, figures.theirs
        );
        sqlite_disk = Some(figures);
    }

    // Instruction counts next: minutes under valgrind, but nothing on the
    // machine moves them.
    let mut counted = Vec::new();
    if let Some(requests) = args.instructions {
        let in_process = |v: &&Variant| !v.uses_redis() && !v.is_sql();
        for &variant in args.variants.iter().filter(in_process) {
            for &route in &args.routes {
                progress(&format!(
                    "instructions: {} {} ({requests} requests under callgrind)",
                    variant.label(),
                    route.path()
                ));
                let per = instructions::per_request(variant, route, requests)?;
                println!(" {per:.0} per request");
                counted.push((variant, route, per));
            }
        }
    }

    // Every server at once, idle but for the one measured: rounds then
    // visit each in turn without restarting anything.
    let backends = Backends {
        redis_url: &args.redis_url,
        database_url,
        sqlite_url: sqlite_url.as_deref(),
    };
    let mut running = Vec::new();
    for &variant in &args.variants {
        running.push((variant, servers.start(variant, backends)?));
    }
    let mut tallies: Vec<(Variant, Route, Tally)> = Vec::new();
    for (variant, _) in &running {
        for &route in &args.routes {
            tallies.push((*variant, route, Tally::default()));
        }
    }
    let mut steal = Steal::default();
    let measured = (|| -> Result<(), Error> {
        // A first window runs slow (fresh threads, caches, the memory
        // figures' processes just gone): one is run and thrown away.
        if let (Some((_, server)), Some(&route)) = (running.first(), args.routes.first()) {
            progress("warming up the machine");
            let load = Load {
                addr: server.addr,
                route,
                connections: args.connections,
                warmup: args.slice_warmup(),
                measure: args.slice(),
            };
            client.block_on(measure(&load))?;
            println!(" done");
        }
        for round in 1..=args.rounds {
            for ((variant, route, tally), server) in tallies.iter_mut().zip(
                running
                    .iter()
                    .flat_map(|(_, s)| std::iter::repeat_n(s, args.routes.len())),
            ) {
                progress(&format!(
                    "round {round}/{}: {} {}",
                    args.rounds,
                    variant.label(),
                    route.path()
                ));
                let load = Load {
                    addr: server.addr,
                    route: *route,
                    connections: args.connections,
                    warmup: args.slice_warmup(),
                    measure: args.slice(),
                };
                let slice = client.block_on(measure(&load))?;
                steal.add(&slice.before, &slice.after);
                println!(
                    " {:.0} req/s{}",
                    slice.per_second(),
                    match slice.outcome.errors {
                        0 => String::new(),
                        n => format!(", {n} ERRORS"),
                    }
                );
                tally.add(slice);
            }
        }
        Ok(())
    })();
    // Stopped whether or not measuring went well.
    for (_, server) in running {
        servers.stop(server)?;
    }
    if let Some(url) = database_url {
        servers
            .runtime()
            .block_on(variants::drop_schema(url, variants::SQL_SCHEMA))?;
    }
    measured?;
    let rows = tallies
        .into_iter()
        .map(|(v, r, t)| (v, r, t.summary()))
        .collect();

    let report = Report {
        machine,
        redis_version,
        postgres_version,
        sqlite_version,
        command: args.command.clone(),
        connections: args.connections,
        warmup: args.warmup,
        seconds: args.seconds,
        rounds: args.rounds,
        pinned: server_core.is_some(),
        steal: steal.share(),
        rows,
        instructions: counted,
        memory,
        postgres_disk,
        sqlite_disk,
        wall: Some(started.elapsed()),
    };
    println!("\n{}", report.text());
    if let Some(out) = &args.out {
        // A section this run measured nothing of keeps its last figures.
        if report.has_main_section() {
            report::write_section(out, (report::BEGIN, report::END), &report.markdown())?;
            println!("wrote the report into {}", out.display());
        }
        if report.has_sql_section() {
            report::write_section(
                out,
                (report::SQL_BEGIN, report::SQL_END),
                &report.sql_markdown(),
            )?;
            println!("wrote the SQL section into {}", out.display());
        }
    }
    Ok(report)
}

/// One window of one (variant, route): connects, lets the visitors run,
/// reads the CPU clocks at the edges of the measured window.
async fn measure(load: &Load) -> Result<Slice, Error> {
    let (window, visitors) = client::start(load).await?;
    tokio::time::sleep_until(window.start).await;
    let before = Clocks::now();
    tokio::time::sleep_until(window.end).await;
    let after = Clocks::now();
    let mut outcome = Outcome::default();
    for visitor in visitors {
        outcome.merge(visitor.await?);
    }
    Ok(Slice {
        outcome,
        length: window.end.duration_since(window.start),
        before,
        after,
    })
}

/// The path of the bench's binary `name`, built beside this one; `skip` is
/// the flag that leaves out what it measures.
pub(crate) fn sibling_binary(name: &str, skip: &str) -> Result<std::path::PathBuf, Error> {
    let exe = std::env::current_exe()?.with_file_name(name);
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build --release -p session-bench --bins` \
             (`cargo xtask bench` does), or pass {skip}",
            exe.display()
        )
        .into())
    }
}

/// A directory of this run's in the temporary directory, deleted with
/// all in it when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("session-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("making {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints what is being measured, without ending the line.
fn progress(what: &str) {
    print!("{what} ...");
    let _ = std::io::stdout().flush();
}
