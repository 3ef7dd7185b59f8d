//! What the SQL stores' tests share: the databases they run on, and a
//! fresh table family per store, so tests running side by side never see
//! each other's sessions.
#![allow(dead_code)]

use http_sessions_core::store::{IdSource, RandomIds};

const HOW: &str = "run `cargo xtask test-all`, which starts a throwaway database for these \
                   tests, or set it yourself";

/// The URL in the environment variable `name`; the tests fail, saying
/// how to run them, without it. A database test that skips itself is a
/// store nobody tested.
pub(crate) fn url(name: &str, example: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => panic!(
            "{name} is not set: {HOW} (for example {name}={example}). \
             The database tests never skip themselves."
        ),
    }
}

/// A table name no other store of the run uses.
pub(crate) fn table() -> String {
    let id = RandomIds::new().next_id().unwrap();
    let hex: String = id.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t_{hex}")
}

pub(crate) mod pg;
