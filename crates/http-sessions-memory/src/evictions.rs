//! The count of entries evicted for room, and the warning that tells an
//! operator about them at most once a minute ([`Evictions`]), saying
//! whether signed-in users lost their sessions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::segments::Evicted;

/// The shortest time between two warnings about evicted sessions.
pub const EVICTION_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The warning when only anonymous entries were evicted.
const ANONYMOUS_ONLY: &str = "memory session store full: anonymous sessions were evicted to \
     make room, and their visitors lost their values and flash messages; no signed-in \
     user's session was evicted. Raise the bounds with MemoryStore::with_capacity or \
     with_max_bytes if memory allows, or keep sessions in Redis";

/// The warning when signed-in users' sessions were evicted too.
const SIGNED_IN_TOO: &str = "memory session store full of signed-in users' sessions: with no \
     anonymous session left to evict, sessions bound to users were evicted and those users \
     were logged out. Raise the bounds with MemoryStore::with_capacity or with_max_bytes if \
     memory allows, or keep sessions in Redis";

/// Evictions so far, and those not yet reported in a warning.
#[derive(Default)]
pub(crate) struct Evictions {
    total: AtomicU64,
    signed_in: AtomicU64,
    report: Mutex<Report>,
}

#[derive(Default)]
struct Report {
    /// When the last warning was logged; `None` before the first.
    last: Option<Instant>,
    /// Evictions since then.
    unreported: Evicted,
}

/// What the bounds were when entries were evicted, for the warning.
pub(crate) struct Bounds {
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) entries: usize,
    pub(crate) bytes: usize,
}

impl Evictions {
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn signed_in(&self) -> u64 {
        self.signed_in.load(Ordering::Relaxed)
    }

    /// Counts `evicted` entries and logs a warning if one is due.
    pub(crate) fn record(&self, evicted: Evicted, bounds: impl FnOnce() -> Bounds) {
        if evicted.total() == 0 {
            return;
        }
        if let Some(reported) = self.count(evicted, Instant::now()) {
            let Bounds {
                capacity,
                max_bytes,
                entries,
                bytes,
            } = bounds();
            tracing::warn!(
                evicted = reported.total(),
                anonymous = reported.anonymous,
                signed_in = reported.signed_in,
                entries,
                capacity,
                bytes,
                max_bytes,
                total = self.total(),
                "{}",
                warning(reported)
            );
        }
    }

    /// Counts `evicted` entries at `now`; returns those to report if a
    /// warning is due (the first ever, or the first after
    /// [`EVICTION_WARNING_INTERVAL`]).
    fn count(&self, evicted: Evicted, now: Instant) -> Option<Evicted> {
        self.total.fetch_add(evicted.total(), Ordering::Relaxed);
        self.signed_in
            .fetch_add(evicted.signed_in, Ordering::Relaxed);
        // Each critical section leaves the report consistent, so a poisoned
        // lock is still usable.
        let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        let unreported = &mut report.unreported;
        unreported.anonymous = unreported.anonymous.saturating_add(evicted.anonymous);
        unreported.signed_in = unreported.signed_in.saturating_add(evicted.signed_in);
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

/// What the warning about `evicted` says.
fn warning(evicted: Evicted) -> &'static str {
    if evicted.signed_in == 0 {
        ANONYMOUS_ONLY
    } else {
        SIGNED_IN_TOO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymous(n: u64) -> Evicted {
        Evicted {
            anonymous: n,
            signed_in: 0,
        }
    }

    #[test]
    fn the_first_eviction_warns_and_later_ones_wait_for_the_interval() {
        let evictions = Evictions::default();
        let t0 = Instant::now();
        assert_eq!(evictions.count(anonymous(1), t0), Some(anonymous(1)));
        let signed_in = Evicted {
            anonymous: 4,
            signed_in: 1,
        };
        assert_eq!(
            evictions.count(signed_in, t0 + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            evictions.count(anonymous(2), t0 + Duration::from_secs(59)),
            None
        );
        // The warning reports everything since the last one.
        let reported = evictions.count(anonymous(3), t0 + EVICTION_WARNING_INTERVAL);
        let expected = Evicted {
            anonymous: 9,
            signed_in: 1,
        };
        assert_eq!(reported, Some(expected));
        assert_eq!(
            evictions.count(anonymous(1), t0 + Duration::from_secs(61)),
            None
        );
        assert_eq!(evictions.total(), 12);
        assert_eq!(evictions.signed_in(), 1);
    }

    #[test]
    fn the_warning_says_whether_signed_in_users_were_logged_out() {
        assert!(warning(anonymous(5)).contains("no signed-in user's session was evicted"));
        let both = Evicted {
            anonymous: 5,
            signed_in: 1,
        };
        assert!(warning(both).contains("those users were logged out"));
        assert!(!warning(both).contains("no signed-in"));
    }
}
