//! What a manager counts of its sessions' store calls, for an application
//! to export, and the `tracing` span each call runs in.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StoreError;

/// A store call, as counted and traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Load,
    Create,
    Update,
    Retire,
    Delete,
    List,
    End,
    EndAll,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Load => "load",
            Op::Create => "create",
            Op::Update => "update",
            Op::Retire => "retire",
            Op::Delete => "delete",
            Op::List => "list",
            Op::End => "end",
            Op::EndAll => "end_all",
        }
    }
}

/// How a store call ended, as a span's `outcome`.
pub(crate) fn outcome<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(StoreError::Gone) => "gone",
        Err(StoreError::Exists) => "exists",
        Err(StoreError::Timeout(_)) => "timeout",
        Err(StoreError::TooLarge { .. }) => "too_large",
        Err(StoreError::Corrupt(_)) => "corrupt",
        Err(StoreError::Unsupported(_)) => "unsupported",
        Err(StoreError::TooManySessions { .. }) => "too_many_sessions",
        Err(_) => "unavailable",
    }
}

/// The counters, shared by a manager and its clones.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    loads: AtomicU64,
    creates: AtomicU64,
    updates: AtomicU64,
    retires: AtomicU64,
    deletes: AtomicU64,
    conflicts: AtomicU64,
    timeouts: AtomicU64,
    store_errors: AtomicU64,
    rejected_cookies: AtomicU64,
}

impl Counters {
    /// Counts `n` session cookies that failed to verify.
    pub(crate) fn rejected(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.rejected_cookies.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one call of `op` that ended in `result`.
    pub(crate) fn count<T>(&self, op: Op, result: &Result<T, StoreError>) {
        let calls = match op {
            Op::Load => Some(&self.loads),
            Op::Create => Some(&self.creates),
            Op::Update => Some(&self.updates),
            Op::Retire => Some(&self.retires),
            Op::Delete => Some(&self.deletes),
            // Listing and ending users' sessions: counted only when it fails.
            Op::List | Op::End | Op::EndAll => None,
        };
        if let Some(calls) = calls {
            calls.fetch_add(1, Ordering::Relaxed);
        }
        let failed = match result {
            Ok(_) | Err(StoreError::Exists | StoreError::TooManySessions { .. }) => None,
            Err(StoreError::Gone) => Some(&self.conflicts),
            Err(StoreError::Timeout(_)) => Some(&self.timeouts),
            Err(_) => Some(&self.store_errors),
        };
        if let Some(counter) = failed {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> SessionStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SessionStats {
            loads: read(&self.loads),
            creates: read(&self.creates),
            updates: read(&self.updates),
            retires: read(&self.retires),
            deletes: read(&self.deletes),
            conflicts: read(&self.conflicts),
            timeouts: read(&self.timeouts),
            store_errors: read(&self.store_errors),
            rejected_cookies: read(&self.rejected_cookies),
        }
    }
}

/// How many store calls a layer made since it was built, by kind and by
/// failure: a snapshot to export as counters (to Prometheus, say).
///
/// Each store call also runs in a `tracing` span named `session_store`, at
/// `DEBUG`, with the fields `backend` (the store's
/// [`name`](crate::store::SessionStore::name)), `op` and `outcome`.
/// Evictions and expiries happen inside a store: the memory store counts
/// its own (`evictions()`, `expired()`), Redis in `INFO stats`.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// # #[derive(Debug)] struct Store;
/// # #[async_trait::async_trait]
/// # impl http_sessions_core::store::SessionStore for Store {
/// #   async fn load(&self, _: &http_sessions_core::store::SessionId, _: http_sessions_core::store::UnixTime) -> Result<Option<http_sessions_core::store::Loaded>, http_sessions_core::StoreError> { Ok(None) }
/// #   async fn create(&self, _: &http_sessions_core::store::SessionId, _: &http_sessions_core::store::Record, _: http_sessions_core::store::UnixTime) -> Result<(), http_sessions_core::StoreError> { Ok(()) }
/// #   async fn update(&self, _: &http_sessions_core::store::SessionId, _: http_sessions_core::store::Update<'_>) -> Result<http_sessions_core::store::Updated, http_sessions_core::StoreError> { Err(http_sessions_core::StoreError::Gone) }
/// #   async fn retire(&self, _: &http_sessions_core::store::SessionId, _: http_sessions_core::store::UnixTime, _: http_sessions_core::store::UnixTime, _: Option<&str>) -> Result<(), http_sessions_core::StoreError> { Err(http_sessions_core::StoreError::Gone) }
/// #   async fn delete(&self, _: &http_sessions_core::store::SessionId, _: Option<&str>) -> Result<(), http_sessions_core::StoreError> { Ok(()) }
/// # }
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let layer = SessionLayer::new(Store, &settings);
/// let stats = layer.stats();
/// assert_eq!((stats.loads, stats.store_errors), (0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Sessions asked of the store by id (a cookie that verified).
    pub loads: u64,
    /// New sessions stored, a renewed session's new id included.
    pub creates: u64,
    /// Changes saved to stored sessions.
    pub updates: u64,
    /// Old ids retired by a renew.
    pub retires: u64,
    /// Sessions deleted: logouts, emptied sessions, replaced ones.
    pub deletes: u64,
    /// Calls refused because the session had ended or been renewed
    /// meanwhile (the 409s, and a retire that lost a race).
    pub conflicts: u64,
    /// Calls cut off by the store timeout.
    pub timeouts: u64,
    /// Calls that failed otherwise: the store was unavailable, refused the
    /// size, or held something that did not decode.
    pub store_errors: u64,
    /// Session cookies that failed to verify: forged, tampered with, or
    /// signed by a key no longer trusted. A rising count is someone
    /// guessing (see also the `cookies_rejected`
    /// [event](crate::events::EventKind::CookiesRejected)).
    pub rejected_cookies: u64,
}
