//! What a store takes from the settings of the layer it serves: the store
//! timeout, which its connections keep as the server's own timeouts, and
//! the clock its sweeper reads. Given through `&self` as a layer is built
//! (`SessionStore::use_settings`), and shared by the store's clones and
//! the hook that sets up each new connection of its pool.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_sessions_core::Settings;
use http_sessions_core::seams::{Clock, SystemClock};
use http_sessions_core::store::UnixTime;

/// The store timeout and the clock, until a layer gives its own: the
/// settings' default timeout and the system clock.
#[derive(Clone)]
pub(crate) struct Given {
    timeout_ms: Arc<AtomicU64>,
    clock: Arc<Mutex<Arc<dyn Clock>>>,
}

impl Given {
    pub(crate) fn new() -> Self {
        Self {
            timeout_ms: Arc::new(AtomicU64::new(millis(Settings::DEFAULT_STORE_TIMEOUT))),
            clock: Arc::new(Mutex::new(Arc::new(SystemClock))),
        }
    }

    /// Takes the timeout and the clock of `settings`.
    pub(crate) fn take(&self, settings: &Settings) {
        self.timeout_ms
            .store(millis(settings.store_timeout()), Ordering::Relaxed);
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = settings.clock();
    }

    /// The store timeout, in whole milliseconds, at least 1.
    pub(crate) fn timeout_ms(&self) -> u64 {
        self.timeout_ms.load(Ordering::Relaxed)
    }

    /// The time by the settings' clock.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .now()
    }
}

fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl fmt::Debug for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Given")
            .field("timeout_ms", &self.timeout_ms())
            .finish_non_exhaustive()
    }
}
