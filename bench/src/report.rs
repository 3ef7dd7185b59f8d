//! The results as a [`Report`]: the table printed to the terminal, the
//! [`TARGETS`] and [`SQL_TARGETS`] judged against it, and the Markdown
//! sections written in `docs/benchmarks.md` ([`write_section`]): the SQL
//! rows and figures between [`SQL_BEGIN`] and [`SQL_END`], the rest
//! between [`BEGIN`] and [`END`].

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::machine::Machine;
use crate::memory::{InProcess, InRedis, OnDisk};
use crate::stats::Summary;
use crate::variants::{
    DATABASE_CONNECTIONS, IDLE_TIMEOUT, OUR_TABLE, REDIS_CONNECTIONS, Route, SQL_SCHEMA,
    SQLITE_CONNECTIONS, THEIR_TABLE, Variant,
};

/// The marker before the main section this program owns.
pub(crate) const BEGIN: &str = "<!-- bench:begin -->";
/// The marker after it.
pub(crate) const END: &str = "<!-- bench:end -->";
/// The marker before the section of the SQL rows and figures.
pub(crate) const SQL_BEGIN: &str = "<!-- bench-sql:begin -->";
/// The marker after it.
pub(crate) const SQL_END: &str = "<!-- bench-sql:end -->";

/// What a target compares a variant with.
#[derive(Debug, Clone, Copy)]
enum Against {
    /// The no-layer baseline on the same route.
    Baseline,
    /// The variant's tower-sessions counterpart on the same route.
    Counterpart,
}

/// One goal of the project for these figures: `variant` on `route` at
/// least `goal` times the throughput of what it is `against`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    variant: Variant,
    route: Route,
    against: Against,
    goal: f64,
}

/// The project's goals, from the benchmark issue.
pub(crate) const TARGETS: [Target; 5] = [
    Target {
        variant: Variant::Memory,
        route: Route::Counter,
        against: Against::Counterpart,
        goal: 1.4,
    },
    Target {
        variant: Variant::CookieSigned,
        route: Route::Counter,
        against: Against::Counterpart,
        goal: 1.4,
    },
    Target {
        variant: Variant::Redis,
        route: Route::Counter,
        against: Against::Counterpart,
        goal: 1.5,
    },
    Target {
        variant: Variant::Memory,
        route: Route::Counter,
        against: Against::Baseline,
        goal: 0.75,
    },
    Target {
        variant: Variant::Memory,
        route: Route::Untouched,
        against: Against::Baseline,
        goal: 0.97,
    },
];

/// The goals for the SQL rows, in their own section.
pub(crate) const SQL_TARGETS: [Target; 1] = [Target {
    variant: Variant::Postgres,
    route: Route::Counter,
    against: Against::Counterpart,
    goal: 1.3,
}];

/// The routes on which the pipe is compared with the driver's connection:
/// those whose requests go to Redis.
const PIPE_ROUTES: [Route; 3] = [Route::Counter, Route::SignedInCounter, Route::New];

/// A target's verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The measured ratio reaches the goal.
    Met(f64),
    /// It does not.
    Missed(f64),
    /// A row it needs has errors, so no ratio is trusted.
    Invalid,
    /// A row it needs was not measured (`--only`, `--routes`).
    NotMeasured,
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Met(_) => "met",
            Verdict::Missed(_) => "missed",
            Verdict::Invalid => "invalid: errors",
            Verdict::NotMeasured => "not measured",
        }
    }

    fn ratio(&self) -> String {
        match self {
            Verdict::Met(r) | Verdict::Missed(r) => format!("{r:.2}x"),
            Verdict::Invalid | Verdict::NotMeasured => "-".to_owned(),
        }
    }
}

/// Memory figures, each present if it was measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memory {
    pub(crate) ours: Option<InProcess>,
    pub(crate) theirs: Option<InProcess>,
    pub(crate) redis: Option<InRedis>,
}

/// Everything one run measured, and where.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) redis_version: Option<String>,
    /// The Postgres version and settings, when one was used.
    pub(crate) postgres_version: Option<String>,
    /// The SQLite version, when it was used.
    pub(crate) sqlite_version: Option<String>,
    pub(crate) command: String,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) seconds: Duration,
    pub(crate) rounds: usize,
    /// The server and the client were pinned to a core each.
    pub(crate) pinned: bool,
    /// Share of CPU time stolen by the hypervisor during the windows.
    pub(crate) steal: Option<f64>,
    pub(crate) rows: Vec<(Variant, Route, Summary)>,
    /// Instructions per request, from callgrind, where counted.
    pub(crate) instructions: Vec<(Variant, Route, f64)>,
    pub(crate) memory: Memory,
    /// Bytes on disk per session in Postgres, if measured.
    pub(crate) postgres_disk: Option<OnDisk>,
    /// Bytes on disk per session in SQLite, if measured.
    pub(crate) sqlite_disk: Option<OnDisk>,
    /// How long the whole run took, when known.
    pub(crate) wall: Option<Duration>,
}

impl Report {
    fn get(&self, variant: Variant, route: Route) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|(v, r, _)| *v == variant && *r == route)
            .map(|(_, _, s)| s)
    }

    /// `variant`'s throughput over `other`'s on `route`.
    fn ratio(&self, variant: Variant, other: Option<Variant>, route: Route) -> Option<f64> {
        let ours = self.get(variant, route)?;
        let theirs = self.get(other?, route)?;
        (theirs.per_second > 0.0).then(|| ours.per_second / theirs.per_second)
    }

    /// Whether `target` holds in these figures.
    pub(crate) fn judge(&self, target: &Target) -> Verdict {
        let other = match target.against {
            Against::Baseline => Some(Variant::NoLayer),
            Against::Counterpart => target.variant.counterpart(),
        };
        let rows = [Some(target.variant), other].map(|v| v.and_then(|v| self.get(v, target.route)));
        let [Some(a), Some(b)] = rows else {
            return Verdict::NotMeasured;
        };
        if a.errors > 0 || b.errors > 0 {
            return Verdict::Invalid;
        }
        match self.ratio(target.variant, other, target.route) {
            Some(r) if r >= target.goal => Verdict::Met(r),
            Some(r) => Verdict::Missed(r),
            None => Verdict::Invalid,
        }
    }

    /// The pipe's gain over the driver's connection: on each of
    /// [`PIPE_ROUTES`] measured on both, `sessions: Redis`'s throughput and
    /// server CPU over `sessions: Redis (driver connection)`'s, as
    /// `/counter 1.25x req/s, 1.00x server CPU`. None if no route was
    /// measured on both.
    fn pipe_vs_driver(&self) -> Option<String> {
        let over = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        let parts: Vec<String> = PIPE_ROUTES
            .into_iter()
            .filter_map(|route| {
                let pipe = self.get(Variant::Redis, route)?;
                let driver = self.get(Variant::RedisDriver, route)?;
                let figures = if pipe.errors > 0 || driver.errors > 0 {
                    "invalid: errors".to_owned()
                } else {
                    format!(
                        "{} req/s, {} server CPU",
                        over(Some(pipe.per_second), Some(driver.per_second)),
                        over(pipe.server_cores, driver.server_cores)
                    )
                };
                Some(format!("{} {figures}", route.path()))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Rows with errors, for the caller's exit status.
    pub(crate) fn errors(&self) -> u64 {
        self.rows.iter().map(|(_, _, s)| s.errors).sum()
    }

    /// Whether the main section has anything of this run: a row of a
    /// variant other than the SQL ones, or a memory or instruction figure.
    pub(crate) fn has_main_section(&self) -> bool {
        let m = &self.memory;
        self.rows.iter().any(|(v, _, _)| !v.is_sql())
            || !self.instructions.is_empty()
            || m.ours.is_some()
            || m.theirs.is_some()
            || m.redis.is_some()
    }

    /// Whether the SQL section has anything of this run.
    pub(crate) fn has_sql_section(&self) -> bool {
        self.rows.iter().any(|(v, _, _)| v.is_sql())
            || self.postgres_disk.is_some()
            || self.sqlite_disk.is_some()
    }

    /// The cells of every row.
    fn cells(&self) -> Vec<[String; 11]> {
        self.cells_of(|_| true)
    }

    /// The cells of the rows of the variants `which` picks.
    fn cells_of(&self, which: impl Fn(Variant) -> bool) -> Vec<[String; 11]> {
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
        let cores = |c: Option<f64>| c.map_or_else(|| "-".to_owned(), |c| format!("{c:.2}"));
        self.rows
            .iter()
            .filter(|(v, _, _)| which(*v))
            .map(|(v, r, s)| {
                let baseline = (*v != Variant::NoLayer)
                    .then(|| self.ratio(*v, Some(Variant::NoLayer), *r))
                    .flatten();
                [
                    v.label().to_owned(),
                    r.path().to_owned(),
                    format!("{:.0}", s.per_second),
                    s.p50_us.to_string(),
                    s.p99_us.to_string(),
                    s.spread
                        .map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0)),
                    ratio(baseline),
                    ratio(self.ratio(*v, v.counterpart(), *r)),
                    cores(s.server_cores),
                    cores(s.client_cores),
                    s.errors.to_string(),
                ]
            })
            .collect()
    }

    /// The results as plain text for the terminal.
    pub(crate) fn text(&self) -> String {
        const HEAD: [&str; 11] = [
            "variant", "route", "req/s", "p50 us", "p99 us", "spread", "vs none", "vs tower",
            "srv cpu", "cli cpu", "errors",
        ];
        let rows = self.cells();
        let mut widths = HEAD.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            for (i, (cell, w)) in cells.zip(widths).enumerate() {
                // Names left, numbers right.
                if i < 2 {
                    let _ = write!(out, "{cell:<w$}  ");
                } else {
                    let _ = write!(out, "{cell:>w$}  ");
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        };
        line(&mut HEAD.iter().copied());
        for row in &rows {
            line(&mut row.iter().map(String::as_str));
        }
        if let Some(steal) = self.steal {
            let _ = writeln!(
                out,
                "\nCPU stolen by the hypervisor in the windows: {:.1}%",
                steal * 100.0
            );
        }
        if let Some(line) = self.pipe_vs_driver() {
            let _ = writeln!(out, "\npipe vs driver connection: {line}");
        }
        out.push_str("\ntargets:\n");
        for t in TARGETS.iter().chain(&SQL_TARGETS) {
            let v = self.judge(t);
            let _ = writeln!(
                out,
                "  {:<64} >= {:.2}x  {:>6}  {}",
                describe(t),
                t.goal,
                v.ratio(),
                v.word()
            );
        }
        out.push_str(&self.instructions_text());
        out.push_str(&self.memory_text());
        for (database, after, disk) in [
            ("Postgres", "VACUUM ANALYZE", &self.postgres_disk),
            ("SQLite", "VACUUM", &self.sqlite_disk),
        ] {
            if let Some(d) = disk {
                let _ = writeln!(
                    out,
                    "\non disk in {database} per session (at {} sessions, after {after}):\n  \
                     {:<40} {:>7.0} B\n  {:<40} {:>7.0} B\n  ours / theirs {:.2}x",
                    d.sessions,
                    format!("sessions {database} store (4 tables)"),
                    d.ours,
                    format!("tower-sessions-sqlx-store {database}"),
                    d.theirs,
                    d.ours / d.theirs
                );
            }
        }
        for (v, r, s) in &self.rows {
            if let Some(e) = &s.first_error {
                let _ = writeln!(
                    out,
                    "errors in {} {}: {} ({e})",
                    v.label(),
                    r.path(),
                    s.errors
                );
            }
        }
        out
    }

    /// Instructions per request, and the ratios as for throughput: fewer
    /// instructions is a higher ratio.
    fn instruction_cells(&self) -> Vec<[String; 5]> {
        let count = |variant: Variant, route: Route| {
            self.instructions
                .iter()
                .find(|(v, r, _)| *v == variant && *r == route)
                .map(|(_, _, n)| *n)
        };
        let ratio = |other: Option<f64>, ours: f64| {
            other.map_or_else(|| "-".to_owned(), |o| format!("{:.2}x", o / ours))
        };
        self.instructions
            .iter()
            .map(|&(variant, route, n)| {
                let none = (variant != Variant::NoLayer)
                    .then(|| count(Variant::NoLayer, route))
                    .flatten();
                let tower = variant.counterpart().and_then(|c| count(c, route));
                [
                    variant.label().to_owned(),
                    route.path().to_owned(),
                    format!("{n:.0}"),
                    ratio(none, n),
                    ratio(tower, n),
                ]
            })
            .collect()
    }

    fn instructions_text(&self) -> String {
        let mut out = String::new();
        if self.instructions.is_empty() {
            return out;
        }
        out.push_str(
            "
instructions per request (callgrind, in process):
",
        );
        for [v, r, n, none, tower] in self.instruction_cells() {
            let _ = writeln!(
                out,
                "  {v:<28} {r:<18} {n:>7}  vs none {none:>6}  vs tower {tower:>6}"
            );
        }
        out
    }

    fn instructions_markdown(&self) -> String {
        let mut md = String::new();
        if self.instructions.is_empty() {
            return md;
        }
        md.push_str(
            "\n### Instructions per request\n\nThe same routes served in process (the \
             `session-bench-layer` binary: the router called as a tower service, no sockets, \
             no kernel), each variant's requests counted by `valgrind --tool=callgrind`. \
             Unlike requests per second on a shared virtual machine, the count is the same \
             from run to run, so it says which way a change went. It leaves out what every \
             variant pays alike (the kernel's socket path, hyper's parsing and writing), so \
             its ratios are wider than the HTTP ones. Under valgrind, ring computes SHA-256 \
             with AVX instead of the CPU's SHA extensions, which counts HMAC-SHA256 (every \
             request of ours verifies a MAC) several times heavier than it runs. \"vs none\" \
             and \"vs tower\" are the other row's count over this one's, as for throughput.\n\n\
             | variant | route | instructions | vs none | vs tower |\n|---|---|--:|--:|--:|\n",
        );
        for row in self.instruction_cells() {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md
    }

    fn memory_text(&self) -> String {
        let mut out = String::new();
        let m = &self.memory;
        if m.ours.is_none() && m.theirs.is_none() && m.redis.is_none() {
            return out;
        }
        out.push_str("\nmemory per session (5 keys of 8-character strings):\n");
        for (name, fig) in [
            ("sessions MemoryStore", m.ours),
            ("tower-sessions MemoryStore", m.theirs),
        ] {
            if let Some(f) = fig {
                let _ = writeln!(
                    out,
                    "  {name:<40} {:>7.0} B allocated, {:>7.0} B resident (at {} sessions)",
                    f.allocated, f.resident, f.sessions
                );
            }
        }
        if let Some(r) = &m.redis {
            let _ = writeln!(
                out,
                "  {:<40} {:>7} B (MEMORY USAGE)\n  {:<40} {:>7} B (MEMORY USAGE)",
                "sessions RedisStore", r.ours, "tower-sessions-redis-store", r.theirs
            );
        }
        out
    }

    /// The Markdown section, markers excluded.
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = write!(
            md,
            "## HTTP, side by side with tower-sessions

`cargo xtask bench` serves the same four axum routes with no session
layer, with each backend of ours, and with tower-sessions (0.15 with its
`MemoryStore`; tower-sessions-redis-store 0.16 on the same Redis, under
tower-sessions 0.14, the version that release of the store is built for:
none is out for 0.15 yet), and drives each with the load generator of the
`session-bench` crate. Our Redis
store runs twice: on its own pipe, which writes the commands of concurrent
requests together, and, as \"driver connection\", on redis-rs's own
multiplexed connection (the one it uses for TLS and Unix sockets), so that
what the pipe gains shows in the same run.


- `/untouched` never touches the session; the client sends its session
  cookie anyway, as a returning visitor does.
- `/counter` reads a `u64` from the session and writes it back plus one:
  returning visitors, each on its own keep-alive connection holding its
  own session cookie.
- `/counter-signed-in` is `/counter` for a signed-in visitor, who first
  visited `/counter` once and then signed in as a user of its own
  (`/sign-in/{{n}}`, not measured): ours renews the session id and binds the
  session to `user-n` (`Session::bind_user`: our server-side stores keep it
  in the user's index, the cookie stores in the cookie); tower-sessions
  cycles its id and keeps the user id in the session as a value, as a
  tower-sessions application does. Each request checks that the session is
  signed in (ours `Session::user`, theirs the value; 401 if not), then reads
  and writes the counter as `/counter` does.
- `/new`: every request is a new visitor (no cookie) who writes one value.

The baseline, \"no session layer\", serves `/untouched` alike; its
`/counter` keeps a per-visitor counter in a `Mutex<HashMap>` keyed by a
sequential cookie it sets itself, and its `/new` stores one value the same
way; its `/counter-signed-in` keeps the user of each signed-in cookie in a
second map: the least an application without a session library would do
(no random ids, no signing, no serialization, no expiry).

How: the server runs on a tokio runtime of one worker thread and the load
generator on another, so they share the two cores{placement} (Redis, when used, runs
beside them). {connections} connections, HTTP/1.1 keep-alive, one request
in flight on each. Each row is measured for {seconds} s in all after {warmup} s of
warm-up, both split over {rounds} rounds: every round measures every row once, on
fresh connections, so a slow moment of the (virtual) machine falls on all
rows alike rather than on one; \"spread\" is how far the rounds of a row
were apart, (fastest - slowest) / rate. Every response is checked (status
200, the counter climbing by one, a cookie for each new visitor), and a row
with any error is reported as such. Both sides: a {idle}-minute idle
timeout and `Secure` off (plain http on loopback); tower-sessions keeps its
default id cookie, unsigned, while ours are signed (HMAC-SHA256);
{REDIS_CONNECTIONS} Redis connections on each side. \"vs none\" is throughput
over the no-layer row's, \"vs tower\" over the tower-sessions counterpart's
(its `MemoryStore` for our memory and cookie stores, its Redis store for
ours); \"server CPU\" and \"client CPU\" are the cores each side's threads
used in the windows (the server near 1.00 means it, not the client, was
the bottleneck).

Measured {date} on {machine}; Redis {redis}; CPU time stolen by the
hypervisor during the windows: {steal}. Command: `{command}`.

| variant | route | req/s | p50 µs | p99 µs | spread | vs none | vs tower | server CPU | client CPU | errors |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
",
            connections = self.connections,
            warmup = self.warmup.as_secs_f64(),
            seconds = self.seconds.as_secs_f64(),
            rounds = self.rounds,
            placement = if self.pinned {
                ", the server pinned to one and the load generator to the other"
            } else {
                " as the scheduler places them"
            },
            steal = self
                .steal
                .map_or_else(|| "not measured".to_owned(), |s| format!("{:.1}%", s * 100.0)),
            idle = IDLE_TIMEOUT.as_secs() / 60,
            date = self.machine.date,
            machine = self.machine.summary(),
            redis = self.redis_version.as_deref().unwrap_or("not used"),
            command = self.command,
        );
        for row in self.cells_of(|v| !v.is_sql()) {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push_str(
            "\nA difference between two rows smaller than their spread is within the \
             machine's noise.\n",
        );
        if let Some(line) = self.pipe_vs_driver() {
            let _ = write!(
                md,
                "\nPipe vs driver connection (`sessions: Redis` over `sessions: Redis \
                 (driver connection)`: throughput, and the cores the server used): \
                 {line}.\n"
            );
        }
        md.push_str("\n### Targets\n\n| target | goal | measured | |\n|---|--:|--:|---|\n");
        for t in &TARGETS {
            let v = self.judge(t);
            let _ = writeln!(
                md,
                "| {} | ≥ {:.2}x | {} | {} |",
                describe(t),
                t.goal,
                v.ratio(),
                v.word()
            );
        }
        md.push_str(&self.instructions_markdown());
        md.push_str(&self.memory_markdown());
        if let Some(wall) = self.wall {
            let _ = write!(md, "\nThe whole run took {:.0} s.\n", wall.as_secs_f64());
        }
        md
    }

    /// The Markdown section of the SQL rows and figures, markers excluded.
    pub(crate) fn sql_markdown(&self) -> String {
        let mut md = String::new();
        let _ = write!(
            md,
            "## SQL stores, side by side with tower-sessions-sqlx-store

The routes of the section above, served with our SQL stores
(http-sessions-sql) and with tower-sessions-sqlx-store 0.15's stores for
the same databases under the tower-sessions 0.14 layer (the version that
release is built for), each pair on the same database in the same run:
`PostgresStore` against `PostgresStore` on the Postgres at `DATABASE_URL`,
`SqliteStore` against `SqliteStore` on one database file the bench makes.
Each side has tables of its own, made by its store's `migrate()`: ours
`{OUR_TABLE}` and the `_values`, `_flashes` and `_users` tables named after
it, theirs `{THEIR_TABLE}` (in Postgres both in the schema `{SQL_SCHEMA}`).
Both sides' pools are alike: {DATABASE_CONNECTIONS} connections to Postgres
(sqlx's default, and our `from_url`'s); {SQLITE_CONNECTIONS} to SQLite (our
`from_url`'s), with our `from_url`'s settings (the WAL journal,
`synchronous = NORMAL`, foreign keys) and sqlx's `busy_timeout` of 5 s.
Load, handlers, rounds and columns are those of the section above; \"vs
tower\" is over tower-sessions-sqlx-store's row on the same database.

What a request costs the database differs. Ours keeps a row per session
and a row per value: a load is one statement (the session joined with its
values), a save writes only the keys the request changed (in Postgres one
call of the function its migration installs, which locks the session's
row first; in SQLite one write transaction, our store's writers taking
turns). Theirs keeps the whole session as one MessagePack value in one
row: a load reads it, a save upserts all of it, and a new session is a
transaction that first checks that its id is free (in SQLite its
concurrent writers wait for each other through SQLite's busy handler).

Measured {date} on {machine}, with the Postgres on the same machine:
PostgreSQL {postgres}; SQLite {sqlite}. CPU time stolen by the hypervisor
during the windows: {steal}.
Command: `{command}`.

| variant | route | req/s | p50 µs | p99 µs | spread | vs none | vs tower | server CPU | client CPU | errors |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
",
            steal = self
                .steal
                .map_or_else(|| "not measured".to_owned(), |s| format!("{:.1}%", s * 100.0)),
            date = self.machine.date,
            machine = self.machine.summary(),
            postgres = self.postgres_version.as_deref().unwrap_or("not used"),
            sqlite = self.sqlite_version.as_deref().unwrap_or("not used"),
            command = self.command,
        );
        for row in self.cells_of(Variant::is_sql) {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push_str(
            "\nThe database's own CPU is in neither column: Postgres runs on the same two \
             cores, beside the bench, and SQLite in the bench's process on sqlx's worker \
             threads, one per connection.\n\n### Targets\n\n| target | goal | measured | |\n|---|--:|--:|---|\n",
        );
        for t in &SQL_TARGETS {
            let v = self.judge(t);
            let _ = writeln!(
                md,
                "| {} | ≥ {:.2}x | {} | {} |",
                describe(t),
                t.goal,
                v.ratio(),
                v.word()
            );
        }
        if self.postgres_disk.is_some() || self.sqlite_disk.is_some() {
            let n = (self.postgres_disk.or(self.sqlite_disk)).map_or(0, |d| d.sessions);
            let _ = write!(
                md,
                "\n### Bytes on disk per session\n\n{n} sample sessions (five keys, `k1` to \
                 `k5`, each an 8-character string, different in each session) written through \
                 each store's API, each side into tables of its own: ours by \
                 `SessionStore::create`, as the layer creates a session; theirs by \
                 `SessionStore::save`, the upsert its `create` runs after checking that the id \
                 is free. In Postgres, then `VACUUM ANALYZE`, and `pg_total_relation_size` \
                 (rows, indexes, TOAST, free space maps) summed over each side's tables \
                 (ours `{OUR_TABLE}`, `_values`, `_flashes` and `_users`; theirs \
                 `{THEIR_TABLE}`). In SQLite, each side's tables alone in a database file of \
                 their own, then `VACUUM`, and the file's `page_count` times `page_size`. \
                 Each divided by {n}.\n\n\
                 | database | sessions | tower-sessions-sqlx-store | ours over theirs |\n\
                 |---|--:|--:|--:|\n"
            );
            for (database, disk) in [
                ("Postgres", &self.postgres_disk),
                ("SQLite", &self.sqlite_disk),
            ] {
                if let Some(d) = disk {
                    let _ = writeln!(
                        md,
                        "| {database} | {:.0} B | {:.0} B | {:.2}x |",
                        d.ours,
                        d.theirs,
                        d.ours / d.theirs
                    );
                }
            }
        }
        if let Some(wall) = self.wall {
            let _ = write!(md, "\nThe whole run took {:.0} s.\n", wall.as_secs_f64());
        }
        md
    }

    fn memory_markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.memory;
        if m.ours.is_none() && m.theirs.is_none() && m.redis.is_none() {
            return md;
        }
        md.push_str(
            "\n### Memory per session\n\nThe sample session: five keys, `k1` to `k5`, each an \
             8-character string.\n",
        );
        if m.ours.is_some() || m.theirs.is_some() {
            let n = m.ours.or(m.theirs).map_or(0, |f| f.sessions);
            let _ = write!(
                md,
                "\nIn process: {n} sessions created through each store's public API (our \
                 `SessionStore::create`, as the layer creates a session; \
                 tower-sessions' `SessionStore::create`), in a process of its own. \
                 \"Allocated\" is the growth of the bytes asked of the allocator (a counting \
                 global allocator); \"resident\" the growth of the resident set, the \
                 allocator's overhead included.\n\n| store | allocated / session | resident / session |\n|---|--:|--:|\n"
            );
            for (name, fig) in [
                ("sessions `MemoryStore`", m.ours),
                ("tower-sessions `MemoryStore`", m.theirs),
            ] {
                if let Some(f) = fig {
                    let _ = writeln!(
                        md,
                        "| {name} | {:.0} B | {:.0} B |",
                        f.allocated, f.resident
                    );
                }
            }
        }
        if let Some(r) = &m.redis {
            let _ = write!(
                md,
                "\nIn Redis: `MEMORY USAGE key SAMPLES 0` of one session written by each \
                 store (ours: a hash, one field per key plus `created` and `expires`; \
                 theirs: one MessagePack string).\n\n| store | bytes |\n|---|--:|\n\
                 | sessions `RedisStore` | {} B |\n| tower-sessions-redis-store | {} B |\n",
                r.ours, r.theirs
            );
        }
        md
    }
}

/// A target in words: `/counter: sessions: memory vs tower-sessions: MemoryStore`.
fn describe(t: &Target) -> String {
    let other = match t.against {
        Against::Baseline => Variant::NoLayer.label(),
        Against::Counterpart => t.variant.counterpart().map_or("-", Variant::label),
    };
    format!("{} {} vs {other}", t.route.path(), t.variant.label())
}

/// Puts `section` between the markers `begin` and `end` in the file at
/// `path`, leaving the rest of the file as it is. Markers that are absent
/// are appended at the end; a file that is absent is created.
pub(crate) fn write_section(
    path: &Path,
    (begin, end): (&str, &str),
    section: &str,
) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(format!("reading {}: {e}", path.display()).into()),
    };
    let updated = replace_section(&text, (begin, end), section)?;
    std::fs::write(path, updated).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn replace_section(text: &str, (begin, end): (&str, &str), section: &str) -> Result<String, Error> {
    let body = format!("{begin}\n{}\n{end}", section.trim());
    match (text.find(begin), text.find(end)) {
        (Some(at), Some(to)) if at < to => {
            let (before, _) = text.split_at(at);
            let (_, after) = text.split_at(to + end.len());
            Ok(format!("{before}{body}{after}"))
        }
        (None, None) => {
            let sep = if text.ends_with('\n') { "\n" } else { "\n\n" };
            Ok(format!("{text}{sep}{body}\n"))
        }
        _ => {
            Err(format!("the markers {begin} and {end} are out of order or one is missing").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(per_second: f64) -> Summary {
        Summary {
            per_second,
            ..Summary::default()
        }
    }

    fn report(rows: Vec<(Variant, Route, Summary)>) -> Report {
        Report {
            machine: Machine {
                cpus: 2,
                cpu_model: "test".to_owned(),
                memory_gib: Some(1.0),
                date: "2026-11-25".to_owned(),
            },
            redis_version: None,
            postgres_version: None,
            sqlite_version: None,
            command: "cargo xtask bench".to_owned(),
            connections: 64,
            warmup: Duration::from_secs(1),
            seconds: Duration::from_secs(3),
            rounds: 3,
            pinned: false,
            steal: None,
            rows,
            instructions: Vec::new(),
            memory: Memory::default(),
            postgres_disk: None,
            sqlite_disk: None,
            wall: None,
        }
    }

    #[test]
    fn targets_are_judged_on_ratios() {
        let r = report(vec![
            (Variant::NoLayer, Route::Counter, summary(1000.0)),
            (Variant::TowerMemory, Route::Counter, summary(500.0)),
            (Variant::Memory, Route::Counter, summary(800.0)),
        ]);
        let [vs_tower, _, _, vs_none, untouched] = TARGETS;
        assert_eq!(r.judge(&vs_tower), Verdict::Met(1.6));
        assert_eq!(r.judge(&vs_none), Verdict::Met(0.8));
        assert_eq!(r.judge(&untouched), Verdict::NotMeasured);

        let mut errors = summary(800.0);
        errors.errors = 1;
        let r = report(vec![
            (Variant::TowerMemory, Route::Counter, summary(700.0)),
            (Variant::Memory, Route::Counter, errors),
        ]);
        assert_eq!(r.judge(&vs_tower), Verdict::Invalid);
        assert!(r.text().contains("invalid"));
        assert!(
            r.markdown()
                .contains("| sessions: memory | /counter | 800 |")
        );
    }

    #[test]
    fn the_pipe_is_put_over_the_driver_connection() {
        let row = |per_second, server| Summary {
            per_second,
            server_cores: Some(server),
            ..Summary::default()
        };
        let r = report(vec![(Variant::Redis, Route::Counter, row(1000.0, 0.9))]);
        assert_eq!(r.pipe_vs_driver(), None);
        assert!(!r.text().contains("pipe vs driver"));

        let mut failed = row(600.0, 0.8);
        failed.errors = 2;
        let r = report(vec![
            (Variant::Redis, Route::Untouched, row(9000.0, 1.0)),
            (Variant::RedisDriver, Route::Untouched, row(9000.0, 1.0)),
            (Variant::Redis, Route::Counter, row(1250.0, 0.9)),
            (Variant::RedisDriver, Route::Counter, row(1000.0, 1.0)),
            (Variant::Redis, Route::New, row(700.0, 0.8)),
            (Variant::RedisDriver, Route::New, failed),
        ]);
        let line = "/counter 1.25x req/s, 0.90x server CPU; /new invalid: errors";
        assert_eq!(r.pipe_vs_driver().as_deref(), Some(line));
        assert!(
            r.text()
                .contains(&format!("pipe vs driver connection: {line}\n"))
        );
        assert!(r.markdown().contains(&format!("{line}.\n")));
        assert!(
            r.markdown()
                .contains("| sessions: Redis (driver connection) | /counter | 1000 |")
        );
    }

    #[test]
    fn signed_in_rows_are_put_over_their_counterpart() {
        let r = report(vec![
            (Variant::NoLayer, Route::SignedInCounter, summary(1000.0)),
            (Variant::TowerRedis, Route::SignedInCounter, summary(500.0)),
            (Variant::Redis, Route::SignedInCounter, summary(900.0)),
        ]);
        assert!(r.markdown().contains(
            "| sessions: Redis | /counter-signed-in | 900 | 0 | 0 | - | 0.90x | 1.80x |"
        ));
        assert!(r.text().lines().any(|l| l.starts_with("sessions: Redis ")
            && l.contains("/counter-signed-in")
            && l.contains("1.80x")));
    }

    #[test]
    fn postgres_rows_go_to_their_own_section() {
        let mut r = report(vec![
            (Variant::TowerPostgres, Route::Counter, summary(1000.0)),
            (Variant::Postgres, Route::Counter, summary(1400.0)),
        ]);
        assert!(r.has_sql_section() && !r.has_main_section());
        assert_eq!(r.judge(&SQL_TARGETS[0]), Verdict::Met(1.4));
        let sql = r.sql_markdown();
        assert!(sql.contains("| sessions: Postgres | /counter | 1400 |"));
        assert!(sql.contains("| 1.40x |"));
        assert!(!r.markdown().contains("Postgres | /counter"));

        r.rows
            .push((Variant::Memory, Route::Counter, summary(5000.0)));
        r.rows
            .push((Variant::Sqlite, Route::Counter, summary(3000.0)));
        r.rows
            .push((Variant::TowerSqlite, Route::Counter, summary(2000.0)));
        r.postgres_disk = Some(OnDisk {
            sessions: 100,
            ours: 300.0,
            theirs: 200.0,
        });
        assert!(r.has_main_section());
        let sql = r.sql_markdown();
        assert!(!sql.contains("sessions: memory"));
        assert!(sql.contains("| sessions: SQLite | /counter | 3000 | 0 | 0 | - | - | 1.50x |"));
        assert!(sql.contains("| Postgres | 300 B | 200 B | 1.50x |"));
        assert!(!sql.contains("| SQLite |"));
        assert!(r.text().contains("ours / theirs 1.50x"));
        assert!(!r.markdown().contains("SQLite"));
    }

    #[test]
    fn only_the_section_is_replaced() {
        let doc = format!("# B\n\nkept\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = replace_section(&doc, (BEGIN, END), "new").unwrap();
        assert_eq!(
            new,
            format!("# B\n\nkept\n\n{BEGIN}\nnew\n{END}\n\nafter\n")
        );
        let appended = replace_section("# B\n", (BEGIN, END), "x").unwrap();
        assert_eq!(appended, format!("# B\n\n{BEGIN}\nx\n{END}\n"));
        assert!(replace_section(&format!("{END}{BEGIN}"), (BEGIN, END), "x").is_err());

        // Each section between its own markers, the other left alone.
        let both = format!("{BEGIN}\nmain\n{END}\n{SQL_BEGIN}\nold\n{SQL_END}\n");
        let new = replace_section(&both, (SQL_BEGIN, SQL_END), "sql").unwrap();
        assert_eq!(
            new,
            format!("{BEGIN}\nmain\n{END}\n{SQL_BEGIN}\nsql\n{SQL_END}\n")
        );
    }
}
