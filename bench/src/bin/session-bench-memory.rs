//! `session-bench-memory`: bytes per live session in a memory store, for
//! the bench's report. Creates N sessions of the sample (five short string
//! keys) through the store's public API, and prints the growth of the bytes
//! allocated (counted by a global allocator) and of the resident set.
//!
//! ```text
//! session-bench-memory --store sessions|tower-sessions --sessions N
//! allocated=123456 rss=234567 held=1000000
//! ```
//!
//! A program of its own, not part of `session-bench`: a counting allocator
//! puts an atomic add on every allocation, which the HTTP measurements must
//! not pay. One store per process, so memory freed by one cannot be reused
//! by the other and hide its growth.

use std::collections::HashMap;
use std::process::ExitCode;

use cap::Cap;

#[path = "../sample.rs"]
mod sample;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every allocation of this program, counted (no limit is set).
#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

const USAGE: &str = "usage: session-bench-memory --store sessions|tower-sessions --sessions N";

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("session-bench-memory: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Error> {
    let mut store = None;
    let mut sessions = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--store" => store = args.next(),
            "--sessions" => sessions = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
        }
    }
    let (Some(store), Some(n)) = (store, sessions) else {
        return Err(USAGE.into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (allocated, rss, held) = match store.as_str() {
        "sessions" => runtime.block_on(ours(n))?,
        "tower-sessions" => runtime.block_on(theirs(n))?,
        other => return Err(format!("unknown store {other:?}\n{USAGE}").into()),
    };
    Ok(format!("allocated={allocated} rss={rss} held={held}"))
}

/// Bytes allocated and resident now.
fn usage() -> Result<(usize, usize), Error> {
    Ok((ALLOCATOR.allocated(), rss()?))
}

/// Growth since `before`, and how many sessions the store holds.
fn growth(before: (usize, usize), held: usize) -> Result<(usize, usize, usize), Error> {
    let after = usage()?;
    Ok((
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
        held,
    ))
}

/// The resident set size, from `/proc/self/status`.
fn rss() -> Result<usize, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024)
}

/// Our `MemoryStore`: each session created as the layer creates one.
async fn ours(n: usize) -> Result<(usize, usize, usize), Error> {
    use http_sessions::memory::MemoryStore;
    use http_sessions::seams::{Clock, SystemClock};
    use http_sessions::store::{IdSource, RandomIds, Record, SessionStore, Value};

    let ids = RandomIds::new();
    // Bounded so that all `n` stay: this measures what a session costs,
    // not the eviction of the default bound.
    let store = MemoryStore::with_capacity(n)?;
    let before = usage()?;
    for i in 0..n {
        let now = SystemClock.now();
        let expires = now + std::time::Duration::from_secs(1800);
        let mut record = Record::empty(now, expires, 16);
        for (k, key) in sample::KEYS.iter().enumerate() {
            record
                .data
                .insert((*key).into(), Value::encode(&sample::value(i, k + 1))?);
        }
        // Not bound to a user: the absolute deadline goes to no index.
        store.create(&ids.next_id()?, &record, expires).await?;
    }
    growth(before, store.len())
}

/// tower-sessions' `MemoryStore`: each record created as its layer creates
/// one, through `SessionStore::create`.
async fn theirs(n: usize) -> Result<(usize, usize, usize), Error> {
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};
    use tower_sessions::session::{Id, Record};
    use tower_sessions::{MemoryStore, SessionStore};

    let store = MemoryStore::default();
    let before = usage()?;
    for i in 0..n {
        let mut data = HashMap::new();
        for (k, key) in sample::KEYS.iter().enumerate() {
            data.insert(
                (*key).to_owned(),
                serde_json::Value::String(sample::value(i, k + 1)),
            );
        }
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: OffsetDateTime::now_utc() + Duration::minutes(30),
        };
        store
            .create(&mut record)
            .await
            .map_err(|e| format!("tower-sessions create: {e}"))?;
    }
    // Its store has no public length; every create succeeded, so all n are
    // held (a colliding id is replaced by a new one, never dropped).
    growth(before, n)
}
