//! The count of sessions evicted for room, and the warning that tells an
//! operator about them at most once a minute ([`Evictions`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The shortest time between two warnings about evicted sessions.
pub const EVICTION_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Evictions so far, and those not yet reported in a warning.
#[derive(Default)]
pub(crate) struct Evictions {
    total: AtomicU64,
    report: Mutex<Report>,
}

#[derive(Default)]
struct Report {
    /// When the last warning was logged; `None` before the first.
    last: Option<Instant>,
    /// Evictions since then.
    unreported: u64,
}

impl Evictions {
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts `evicted` sessions and logs a warning if one is due.
    pub(crate) fn record(&self, evicted: u64, capacity: usize) {
        if evicted == 0 {
            return;
        }
        if let Some(evicted) = self.count(evicted, Instant::now()) {
            tracing::warn!(
                evicted,
                capacity,
                total = self.total(),
                "memory session store full: sessions were evicted to make room, and \
                 their users lost them (signed-in users were logged out if theirs went). \
                 Raise the bound with MemoryStore::with_capacity if memory allows, or \
                 keep sessions in Redis; a flood of new anonymous sessions only evicts \
                 sessions that never came back"
            );
        }
    }

    /// Counts `evicted` sessions at `now`; returns how many to report if a
    /// warning is due (the first ever, or the first after
    /// [`EVICTION_WARNING_INTERVAL`]).
    fn count(&self, evicted: u64, now: Instant) -> Option<u64> {
        self.total.fetch_add(evicted, Ordering::Relaxed);
        // Each critical section leaves the report consistent, so a poisoned
        // lock is still usable.
        let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        report.unreported = report.unreported.saturating_add(evicted);
        let due = report
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= EVICTION_WARNING_INTERVAL);
        if !due {
            return None;
        }
        report.last = Some(now);
        Some(std::mem::take(&mut report.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_eviction_warns_and_later_ones_wait_for_the_interval() {
        let evictions = Evictions::default();
        let t0 = Instant::now();
        assert_eq!(evictions.count(1, t0), Some(1));
        assert_eq!(evictions.count(5, t0 + Duration::from_secs(1)), None);
        assert_eq!(evictions.count(2, t0 + Duration::from_secs(59)), None);
        // The warning reports everything since the last one.
        assert_eq!(evictions.count(3, t0 + EVICTION_WARNING_INTERVAL), Some(10));
        assert_eq!(evictions.count(1, t0 + Duration::from_secs(61)), None);
        assert_eq!(evictions.total(), 12);
    }
}
