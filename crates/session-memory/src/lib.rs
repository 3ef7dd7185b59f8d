//! Sessions in process memory: [`MemoryStore`].
//!
//! Fast and simple, and gone when the process stops; every instance of an
//! application has its own, so use it for one process, for development and
//! for tests. Sessions that must survive a restart or be shared between
//! instances belong in Redis.
//!
//! # Layout
//!
//! - [`MemoryStore`]: the store, its capacity bound and its sweeper.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use session_core::{
    Clock, ConfigError, Context, Loaded, Record, Save, SessionId, SessionStore, StoreError,
    SystemClock, UnixTime,
};

/// How often the sweeper removes expired sessions, unless configured.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The longest sweep interval [`MemoryStore::with_sweep_interval`] accepts:
/// one day. Expired sessions are never returned whatever the interval, so a
/// longer one would only let them pile up; the bound also keeps the
/// sweeper's first deadline (`Instant` plus interval) in range.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Sessions in a concurrent hash map (DashMap), keyed by session id.
///
/// - Expired sessions are never returned: each load checks the expiry
///   stored with the session.
/// - A background task removes expired sessions every
///   [`DEFAULT_SWEEP_INTERVAL`]. It starts with the first save (so a store
///   can be built outside a runtime) and stops when the store is dropped.
/// - [`with_capacity`](Self::with_capacity) bounds the number of sessions:
///   a new session beyond the bound evicts the one closest to expiry.
///
/// Cheap to clone; clones share the sessions.
///
/// # Examples
///
/// ```
/// use session_core::{SessionLayer, Settings, Key, Keyring};
/// use session_memory::MemoryStore;
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let layer = SessionLayer::new(MemoryStore::with_capacity(100_000), &settings);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    /// What the sweeper judges expiry by.
    clock: Arc<dyn Clock>,
    sweep_interval: Duration,
}

struct Inner {
    sessions: DashMap<SessionId, Record, RandomIdHash>,
    /// Present only with a capacity bound: the sessions in expiry order, so
    /// the one closest to expiry can be found at once. Writes then pass
    /// through this one lock, which is the price of an exact bound; an
    /// unbounded store has no global lock at all.
    bound: Option<Bound>,
    sweeper: OnceLock<()>,
}

struct Bound {
    capacity: usize,
    by_expiry: Mutex<BTreeSet<(UnixTime, SessionId)>>,
}

impl Bound {
    fn lock(&self) -> MutexGuard<'_, BTreeSet<(UnixTime, SessionId)>> {
        // Every critical section leaves the set consistent before anything
        // that could panic, so a poisoned lock is still usable.
        self.by_expiry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with no bound on the number of sessions.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A store holding at most `capacity` sessions (at least one); beyond
    /// it, a new session evicts the one closest to expiry.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::build(Some(capacity.max(1)))
    }

    fn build(capacity: Option<usize>) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: DashMap::with_hasher(RandomIdHash),
                bound: capacity.map(|capacity| Bound {
                    capacity,
                    by_expiry: Mutex::new(BTreeSet::new()),
                }),
                sweeper: OnceLock::new(),
            }),
            clock: Arc::new(SystemClock),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// Sweeps every `interval` instead of every [`DEFAULT_SWEEP_INTERVAL`];
    /// a zero interval is taken as one millisecond. The sweeper takes its
    /// settings from the clone that saves first.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Duration`] if `interval` is over
    /// [`MAX_SWEEP_INTERVAL`] (one day).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new().with_sweep_interval(Duration::from_secs(10))?;
    /// assert!(MemoryStore::new().with_sweep_interval(Duration::MAX).is_err());
    /// # let _ = store;
    /// # Ok::<(), session_core::ConfigError>(())
    /// ```
    pub fn with_sweep_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval > MAX_SWEEP_INTERVAL {
            return Err(ConfigError::Duration(
                "the sweep interval must be at most one day (MAX_SWEEP_INTERVAL)",
            ));
        }
        self.sweep_interval = interval.max(Duration::from_millis(1));
        Ok(self)
    }

    /// Uses `clock` to decide what the sweeper removes (on load, the time
    /// the layer passes in decides).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many sessions are held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.inner.sessions.is_empty()
    }

    /// The capacity bound, if any.
    pub fn capacity(&self) -> Option<usize> {
        self.inner.bound.as_ref().map(|b| b.capacity)
    }

    /// Removes every session expired at `now`; returns how many went.
    pub fn sweep(&self, now: UnixTime) -> usize {
        self.inner.sweep(now)
    }

    fn start_sweeper(&self) {
        self.inner.sweeper.get_or_init(|| {
            // Without a runtime (a store used from plain threads) expired
            // sessions are still never returned; they are only not swept.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::debug!("no tokio runtime: the memory store's sweeper is not started");
                return;
            };
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            let period = self.sweep_interval;
            let clock = self.clock.clone();
            // The first sweep is one period after the first save, not after
            // the task first gets to run.
            let first = tokio::time::Instant::now() + period;
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let removed = inner.sweep(clock.now());
                    if removed > 0 {
                        tracing::debug!(removed, "expired sessions swept");
                    }
                }
            });
        });
    }
}

/// Hashes a [`SessionId`] by taking its bytes as they are. The ids are
/// 128 random bits from the system's generator, and only ids this server
/// made (their MAC verified) are ever looked up, so no one can choose keys
/// that collide: a keyed hash would spend its work for nothing.
#[derive(Clone, Copy, Default)]
struct RandomIdHash;

impl BuildHasher for RandomIdHash {
    type Hasher = RandomIdHasher;

    fn build_hasher(&self) -> RandomIdHasher {
        RandomIdHasher(0)
    }
}

#[derive(Default)]
struct RandomIdHasher(u64);

impl Hasher for RandomIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Both halves of an id, folded; anything else (never written by
        // `SessionId`) still hashes, only less evenly.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

impl Inner {
    fn sweep(&self, now: UnixTime) -> usize {
        match &self.bound {
            None => {
                let before = self.sessions.len();
                self.sessions.retain(|_, r| !r.is_expired(now));
                before.saturating_sub(self.sessions.len())
            }
            Some(bound) => {
                let mut index = bound.lock();
                let mut removed = 0;
                while let Some(&(expires, id)) = index.first() {
                    if expires > now {
                        break;
                    }
                    index.pop_first();
                    self.sessions.remove(&id);
                    removed += 1;
                }
                removed
            }
        }
    }

    fn create(&self, id: SessionId, record: &Record) -> Result<(), StoreError> {
        let mut index = self.bound.as_ref().map(Bound::lock);
        match self.sessions.entry(id) {
            Entry::Occupied(_) => return Err(StoreError::Exists),
            Entry::Vacant(slot) => {
                slot.insert(record.clone());
            }
        }
        if let (Some(index), Some(bound)) = (index.as_mut(), &self.bound) {
            index.insert((record.expires, id));
            while index.len() > bound.capacity {
                let Some((_, evicted)) = index.pop_first() else {
                    break;
                };
                self.sessions.remove(&evicted);
            }
        }
        Ok(())
    }

    fn update(&self, id: &SessionId, save: &Save<'_>, now: UnixTime) -> Result<(), StoreError> {
        let mut index = self.bound.as_ref().map(Bound::lock);
        let Some(mut stored) = self.sessions.get_mut(id) else {
            return Err(StoreError::Gone);
        };
        let before = stored.expires;
        if stored.is_expired(now) {
            drop(stored);
            self.sessions.remove(id);
            if let Some(index) = index.as_mut() {
                index.remove(&(before, *id));
            }
            return Err(StoreError::Gone);
        }
        if save.changes.cleared {
            stored.data.clear();
        }
        for (key, value) in save.changed() {
            match (value, stored.data.get_mut(key)) {
                // Overwrite in place: no new key string for a key already there.
                (Some(v), Some(slot)) => *slot = v.clone(),
                (Some(v), None) => {
                    stored.data.insert(key.into(), v.clone());
                }
                (None, _) => {
                    stored.data.remove(key);
                }
            }
        }
        if save.changes.flash {
            stored.flash.clone_from(&save.record.flash);
        }
        stored.expires = save.record.expires;
        // Concurrent removals can empty a session that each request saw
        // non-empty: an empty session is not kept.
        let emptied = stored.is_empty();
        drop(stored);
        if emptied {
            self.sessions.remove(id);
        }
        if let Some(index) = index.as_mut() {
            index.remove(&(before, *id));
            if !emptied {
                index.insert((save.record.expires, *id));
            }
        }
        Ok(())
    }

    fn delete(&self, id: &SessionId) {
        let mut index = self.bound.as_ref().map(Bound::lock);
        if let (Some((_, record)), Some(index)) = (self.sessions.remove(id), index.as_mut()) {
            index.remove(&(record.expires, *id));
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, token: &str, cx: &Context<'_>) -> Result<Option<Loaded>, StoreError> {
        let Some(opened) = cx.open_token(token) else {
            return Ok(None);
        };
        let Some(stored) = self.inner.sessions.get(&opened.id) else {
            return Ok(None);
        };
        if stored.is_expired(cx.now()) {
            return Ok(None);
        }
        Ok(Some(Loaded {
            record: stored.clone(),
            reissue: !opened.current_key,
        }))
    }

    async fn save(&self, save: Save<'_>, cx: &Context<'_>) -> Result<String, StoreError> {
        self.start_sweeper();
        match save.token {
            None => {
                let id = cx.new_id()?;
                self.inner.create(id, save.record)?;
                Ok(cx.seal_token(&id))
            }
            Some(token) => {
                let opened = cx.open_token(token).ok_or(StoreError::Gone)?;
                self.inner.update(&opened.id, &save, cx.now())?;
                Ok(if opened.current_key {
                    token.to_owned()
                } else {
                    cx.seal_token(&opened.id)
                })
            }
        }
    }

    async fn delete(&self, token: &str, cx: &Context<'_>) -> Result<(), StoreError> {
        if let Some(opened) = cx.open_token(token) {
            self.inner.delete(&opened.id);
        }
        Ok(())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("capacity", &self.capacity())
            .field("sweep_interval", &self.sweep_interval)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{Changes, FlashLevel, Key, Keyring, ManualClock, RandomIds};

    const T0: UnixTime = UnixTime::from_secs(1_000_000);

    fn keys() -> Keyring {
        Keyring::new(Key::from_bytes(&[4; 32]).unwrap()).unwrap()
    }

    fn record(expires_in: u64) -> Record {
        let mut r = Record::empty(T0, T0 + Duration::from_secs(expires_in), 4);
        r.flash.push(FlashLevel::Info, "x".into());
        r
    }

    async fn create(store: &MemoryStore, keys: &Keyring, expires_in: u64) -> String {
        let ids = RandomIds::new();
        let cx = Context::new(keys, "session", T0, &ids);
        let r = record(expires_in);
        let changes = Changes::default();
        let save = Save {
            token: None,
            record: &r,
            changes: &changes,
        };
        store.save(save, &cx).await.unwrap()
    }

    async fn exists(store: &MemoryStore, keys: &Keyring, token: &str) -> bool {
        let ids = RandomIds::new();
        let cx = Context::new(keys, "session", T0, &ids);
        store.load(token, &cx).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn capacity_evicts_the_session_closest_to_expiry() {
        let keys = keys();
        let store = MemoryStore::with_capacity(3);
        let late = create(&store, &keys, 300).await;
        let soonest = create(&store, &keys, 100).await;
        let middle = create(&store, &keys, 200).await;
        let newest = create(&store, &keys, 400).await;
        assert_eq!(store.len(), 3);
        assert!(!exists(&store, &keys, &soonest).await);
        for t in [&late, &middle, &newest] {
            assert!(exists(&store, &keys, t).await);
        }
        let _ = create(&store, &keys, 500).await;
        assert!(!exists(&store, &keys, &middle).await);
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn sweep_removes_only_expired_sessions() {
        let keys = keys();
        for store in [MemoryStore::new(), MemoryStore::with_capacity(10)] {
            let short = create(&store, &keys, 10).await;
            let long = create(&store, &keys, 100).await;
            assert_eq!(store.sweep(T0 + Duration::from_secs(9)), 0);
            assert_eq!(store.sweep(T0 + Duration::from_secs(10)), 1);
            assert!(!exists(&store, &keys, &short).await);
            assert!(exists(&store, &keys, &long).await);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_sweeper_runs_and_stops_with_the_store() {
        let keys = keys();
        let clock = ManualClock::new(T0);
        let store = MemoryStore::new()
            .with_sweep_interval(Duration::from_secs(30))
            .unwrap()
            .with_clock(clock.clone());
        let _ = create(&store, &keys, 10).await;
        clock.advance(Duration::from_secs(11));
        assert_eq!(store.len(), 1, "nothing sweeps before the interval");
        tokio::time::advance(Duration::from_secs(31)).await;
        let mut polls = 0;
        while !store.is_empty() && polls < 100 {
            tokio::task::yield_now().await;
            polls += 1;
        }
        assert_eq!(store.len(), 0, "the sweeper did not run");
        let weak = Arc::downgrade(&store.inner);
        drop(store);
        tokio::time::advance(Duration::from_secs(31)).await;
        tokio::task::yield_now().await;
        assert!(
            weak.upgrade().is_none(),
            "the sweeper keeps the store alive"
        );
    }

    #[tokio::test]
    async fn an_out_of_range_sweep_interval_is_refused_and_the_longest_works() {
        let refused = MemoryStore::new().with_sweep_interval(Duration::MAX);
        assert!(matches!(refused, Err(ConfigError::Duration(_))));
        let over =
            MemoryStore::new().with_sweep_interval(MAX_SWEEP_INTERVAL + Duration::from_secs(1));
        assert!(over.is_err());
        // The longest accepted interval starts the sweeper on the first
        // save without overflowing its deadline.
        let keys = keys();
        let store = MemoryStore::new()
            .with_sweep_interval(MAX_SWEEP_INTERVAL)
            .unwrap();
        let token = create(&store, &keys, 10).await;
        assert!(exists(&store, &keys, &token).await);
        assert!(store.inner.sweeper.get().is_some(), "the sweeper started");
    }

    #[tokio::test]
    async fn store_without_runtime_thread_still_expires_on_load() {
        // Built outside any runtime: no panic, and expiry holds on load.
        let store = std::thread::spawn(MemoryStore::new).join().unwrap();
        let keys = keys();
        let token = create(&store, &keys, 10).await;
        let ids = RandomIds::new();
        let later = Context::new(&keys, "session", T0 + Duration::from_secs(10), &ids);
        assert!(store.load(&token, &later).await.unwrap().is_none());
    }
}
