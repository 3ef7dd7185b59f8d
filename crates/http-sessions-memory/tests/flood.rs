//! A million one-request anonymous sessions against the default store:
//! memory stays bounded and the visitors who came back keep their
//! sessions. One test in its own binary, so the resident memory read from
//! `/proc/self/status` is this test's alone.

use std::time::{Duration, Instant};

use http_sessions_core::store::{Loaded, Record, SessionId, SessionStore, Value};
use http_sessions_core::{FlashLevel, seams::Clock, seams::SystemClock};
use http_sessions_memory::{DEFAULT_CAPACITY, MemoryStore};

/// The sessions created in the flood.
const FLOOD: u64 = 1_000_000;

/// The returning visitors, and how many requests each makes before it.
const RETURNING: u64 = 100;
const VISITS: usize = 5;

/// The most resident memory the flood may add: the default store full of
/// small sessions (about 40 MiB, see `DEFAULT_CAPACITY`) with room for the
/// allocator's slack. The unbounded store grew by about 530 MiB in 20 s of
/// such a flood over HTTP, and would hold all million sessions here.
const MAX_GROWTH_MIB: u64 = 64;

/// A distinct, well-spread id for `n` (splitmix64 over both halves), as
/// random as the real ones as far as the map's hash is concerned.
fn id(n: u64) -> SessionId {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&mix(n).to_le_bytes());
    bytes[8..].copy_from_slice(&mix(!n).to_le_bytes());
    SessionId::from_bytes(bytes)
}

/// Resident memory of this process, in KiB.
///
/// # Errors
///
/// Off Linux, where there is no `/proc/self/status` to read it from.
fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        format!(
            "the flood test reads resident memory from /proc/self/status, \
             which only Linux has: {e}"
        )
    })?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS line in /proc/self/status".to_owned())
}

#[tokio::test]
async fn a_flood_of_one_request_sessions_keeps_memory_bounded_and_returning_visitors()
-> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let now = SystemClock.now();
    let expires = now + Duration::from_secs(30 * 60);

    // Signed-in users: each session holds its user and makes several
    // requests before the flood starts.
    for n in 0..RETURNING {
        let mut record = Record::empty(now, expires, 4);
        record.data.insert("user".into(), Value::encode(&n)?);
        store.create(&id(n), &record, record.expires).await?;
    }
    for _ in 0..VISITS {
        for n in 0..RETURNING {
            let loaded = store.load(&id(n), now).await?;
            assert!(matches!(loaded, Some(Loaded::Live(_))));
        }
    }

    // The flood: each request flashes a message and never comes back.
    let before = rss_kib()?;
    let started = Instant::now();
    for n in RETURNING..RETURNING + FLOOD {
        let mut record = Record::empty(now, expires, 4);
        record
            .flash
            .push(FlashLevel::Info, "Thanks for your visit".into());
        store.create(&id(n), &record, record.expires).await?;
    }
    let took = started.elapsed();
    let growth_mib = rss_kib()?.saturating_sub(before) / 1024;
    eprintln!(
        "flood of {FLOOD}: {took:?}, resident memory +{growth_mib} MiB, {} held, {} evicted",
        store.len(),
        store.evictions()
    );

    assert!(
        growth_mib < MAX_GROWTH_MIB,
        "the flood added {growth_mib} MiB, over {MAX_GROWTH_MIB} MiB"
    );
    assert_eq!(store.len(), DEFAULT_CAPACITY);
    assert_eq!(
        store.evictions(),
        RETURNING + FLOOD - DEFAULT_CAPACITY as u64
    );
    let mut kept = 0;
    for n in 0..RETURNING {
        let Ok(Some(Loaded::Live(record))) = store.load(&id(n), now).await else {
            continue;
        };
        let user = record.data.get("user").map(|v| v.decode::<u64>());
        assert!(matches!(user, Some(Ok(u)) if u == n), "session {n}'s data");
        kept += 1;
    }
    assert_eq!(kept, RETURNING, "returning sessions kept after the flood");
    Ok(())
}
