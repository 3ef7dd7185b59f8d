//! Time as sessions see it: [`UnixTime`] seconds and the [`Clock`] that
//! tells them, injectable so expiry can be tested without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch.
///
/// Sessions expire on a scale of minutes, so seconds are precise enough and
/// keep stored timestamps small.
///
/// # Examples
///
/// ```
/// use http_sessions_core::store::UnixTime;
/// use std::time::Duration;
///
/// let t = UnixTime::from_secs(100);
/// assert_eq!(t + Duration::from_secs(5), UnixTime::from_secs(105));
/// assert_eq!(UnixTime::from_secs(105).saturating_since(t), Duration::from_secs(5));
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// The instant `millis` milliseconds after the epoch, to the second
    /// below.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis / 1000)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for UnixTime {
    type Output = UnixTime;

    fn add(self, rhs: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(rhs.as_secs()))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A source of the current time.
///
/// The layer and the stores ask a clock rather than the system so tests can
/// move time forward (see [`ManualClock`]).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds since the epoch, for what must
    /// order events closer than a second apart (users' generations).
    fn now_millis(&self) -> u64 {
        self.now().as_secs().saturating_mul(1000)
    }
}

/// The system's wall clock.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{seams::Clock, seams::SystemClock};
/// assert!(SystemClock.now().as_secs() > 1_600_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock set before 1970 reads as the epoch: sessions then look
        // expired, which fails closed.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        UnixTime(secs)
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{seams::Clock, seams::ManualClock, store::UnixTime};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(UnixTime::from_secs(1_000));
/// let seen_by_layer = clock.clone();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(seen_by_layer.now(), UnixTime::from_secs(1_060));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `start` until advanced.
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the time forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}
