//! A flood of large anonymous sessions against a store bounded in bytes:
//! resident memory stays near the bound, which the bound in entries alone
//! would let grow with every session, and the signed-in users' large
//! sessions are kept. One test in its own binary, so the resident memory
//! read from `/proc/self/status` is this test's alone.

use std::time::Duration;

use http_sessions_core::store::{Loaded, Record, SessionId, SessionStore, Value};
use http_sessions_core::{seams::Clock, seams::SystemClock};
use http_sessions_memory::MemoryStore;

const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Each session's one value: near the largest the settings accept.
const VALUE: usize = 60 * 1024;
const USERS: u32 = 10;
/// 176 MiB of values: more than five times the bound.
const FLOOD: u32 = 3_000;
/// The most resident memory the flood may add: the bound, and room for the
/// allocator's slack.
const MAX_GROWTH_MIB: u64 = 48;

fn id(n: u32) -> SessionId {
    let mut bytes = [9; 16];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    SessionId::from_bytes(bytes)
}

/// Resident memory of this process, in KiB.
///
/// # Errors
///
/// Off Linux, where there is no `/proc/self/status` to read it from.
fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        format!("this test reads resident memory from /proc/self/status, which only Linux has: {e}")
    })?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS line in /proc/self/status".to_owned())
}

/// A session holding `VALUE` bytes of its own (each request decodes its
/// own copy), bound to `user` if any.
fn large(n: u32, user: Option<String>) -> Result<Record, Box<dyn std::error::Error>> {
    let now = SystemClock.now();
    let mut record = Record::empty(now, now + Duration::from_secs(1_800), 4);
    let mut text = n.to_string();
    text.push_str(&"x".repeat(VALUE));
    record.data.insert("v".into(), Value::encode(&text)?);
    record.user = user;
    Ok(record)
}

#[tokio::test]
async fn large_sessions_are_held_to_the_byte_bound_and_signed_in_users_kept()
-> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new().with_max_bytes(MAX_BYTES)?;
    for n in 0..USERS {
        let record = large(n, Some(format!("user-{n}")))?;
        store.create(&id(n), &record, record.expires).await?;
    }

    let before = rss_kib()?;
    for n in 1_000..1_000 + FLOOD {
        let record = large(n, None)?;
        store.create(&id(n), &record, record.expires).await?;
        assert!(store.bytes() <= MAX_BYTES, "{} bytes held", store.bytes());
    }
    let growth_mib = rss_kib()?.saturating_sub(before) / 1024;
    eprintln!(
        "flood of {FLOOD} sessions of {VALUE} B: resident memory +{growth_mib} MiB, {} held \
         counting {} bytes, {} evicted",
        store.len(),
        store.bytes(),
        store.evictions()
    );

    assert!(
        growth_mib < MAX_GROWTH_MIB,
        "the flood added {growth_mib} MiB, over {MAX_GROWTH_MIB} MiB"
    );
    // Each session counts its value and the overhead: about 530 fit.
    let held = store.len();
    assert!((400..600).contains(&held), "{held} held");
    let now = SystemClock.now();
    for n in 0..USERS {
        let loaded = store.load(&id(n), now).await?;
        assert!(matches!(loaded, Some(Loaded::Live(_))), "user {n} evicted");
    }
    assert_eq!(store.signed_in_evictions(), 0);
    Ok(())
}
