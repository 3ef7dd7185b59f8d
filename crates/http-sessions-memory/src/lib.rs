//! Sessions in process memory: [`MemoryStore`].
//!
//! Fast, and gone when the process stops: for one process, development and
//! tests; sessions that must survive a restart or be shared between
//! instances belong in Redis. The store is bounded in entries and in bytes,
//! so no flood of sessions can take the process's memory, and a flood of
//! anonymous sessions, however often each comes back, evicts only
//! anonymous ones while any are left: signed-in users stay signed in.
//! docs/memory.md gives the eviction policy and its measurements.
//!
//! # Layout
//!
//! - [`MemoryStore`]: the store and its sweeper; each id holds the core's
//!   `store::Entry`, whose methods keep the contract's rules.
//! - `map`: what the map holds per id, and the bytes each entry counts for.
//! - `segments`: the bounds' queues, which entry goes when the store is full.
//! - `users`: [`UserIndex`], a user's sessions listed and ended through
//!   the core's `store::UserLedger`, under the same locks as the sessions.
//! - `evictions`: the eviction count and its rate-limited warning.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod evictions;
mod map;
mod segments;
mod users;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::mapref::entry::{Entry as MapEntry, OccupiedEntry};
use http_sessions_core::store::{
    Entry, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
    UserIndex, UserLedger,
};
use http_sessions_core::{ConfigError, Settings, seams::Clock, seams::SystemClock};

pub use evictions::EVICTION_WARNING_INTERVAL;

use evictions::{Bounds, Evictions};
use map::{Held, Map, Usage};
use segments::Segments;

/// How many entries (sessions and renewed ids' markers) a store holds
/// unless [`MemoryStore::with_capacity`] says otherwise: 100,000.
///
/// Far more sessions than one process serving its users keeps within an
/// idle timeout. An entry with a flash message or a few small values costs
/// about 330 bytes with the map and queue around it, so a full store of
/// such sessions takes about 32 MiB. Large sessions meet
/// [`DEFAULT_MAX_BYTES`] first.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How many bytes the entries of a store may count for unless
/// [`MemoryStore::with_max_bytes`] says otherwise: 512 MiB.
///
/// Each entry counts its record's encoded size (`Record::encoded_len`)
/// and a fixed overhead for the map, the queue and the allocations around
/// it (384 bytes; a renewed id's marker 128 in all). A hundred
/// thousand sessions of a kilobyte count for about 135 MiB, a quarter of
/// the bound; a flood of sessions of the largest size the settings accept
/// (64 KiB by default), which the entry bound alone would let grow past
/// 6 GiB, stops at about 8,000 of them. docs/memory.md has the
/// measurements.
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024 * 1024;

/// The smallest byte bound [`MemoryStore::with_max_bytes`] accepts: 1 MiB,
/// room for sixteen sessions of the default largest size.
pub const MIN_MAX_BYTES: usize = 1024 * 1024;

/// How often the sweeper removes expired sessions, unless configured.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The longest sweep interval [`MemoryStore::with_sweep_interval`] accepts:
/// one day. Expired sessions are never returned whatever the interval, so a
/// longer one would only let them pile up; the bound also keeps the
/// sweeper's first deadline (`Instant` plus interval) in range.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Sessions in a concurrent hash map (DashMap), keyed by session id, up to
/// a bound in entries and one in bytes.
///
/// - Expired sessions are never returned: each load checks the expiry
///   stored with the session.
/// - A renewed id keeps a marker (no data) until the time given to
///   [`retire`](SessionStore::retire), so it loads as
///   [`Loaded::Renewed`].
/// - A background task removes expired sessions and markers every
///   [`DEFAULT_SWEEP_INTERVAL`]. It starts with the first create (so a
///   store can be built outside a runtime) and stops when the store is
///   dropped.
/// - At most [`DEFAULT_CAPACITY`] entries ([`with_capacity`](Self::with_capacity))
///   counting for at most [`DEFAULT_MAX_BYTES`]
///   ([`with_max_bytes`](Self::with_max_bytes)). Beyond either, the store
///   evicts anonymous entries (renewed ids' markers included) while any
///   are left: first those never loaded after the request that created
///   them, then, once those are down to a tenth of the store, the
///   returning one that has gone longest without a request. Only then does
///   it evict sessions bound to a user, the one that has gone longest
///   without a request first. [`evictions`](Self::evictions) counts them,
///   and a warning, logged at most once every
///   [`EVICTION_WARNING_INTERVAL`], says whether signed-in users lost
///   theirs.
/// - Lists and ends each user's sessions ([`UserIndex`], behind
///   `UserSessions`): a ledger of them is kept with every write of a
///   bound session, under the same locks, so it never lists a session the
///   map does not hold, and "log out everywhere" is one step under its
///   lock.
///
/// Loads, updates and deletes of anonymous sessions take only the map's
/// shard locks, and creates also one lock for the bound's queues; a write
/// that changes a session's place in a user's ledger (a login, a logout, a
/// renew or delete of a bound session) also takes the ledger's lock. A
/// signed-in request that only saves its values does not.
///
/// Cheap to clone; clones share the sessions.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_memory::MemoryStore;
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let store = MemoryStore::with_capacity(500_000)?.with_max_bytes(1 << 30)?;
/// let layer = SessionLayer::new(store, &settings);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    /// What the sweeper judges expiry by: the clock of the settings of the
    /// last layer built on this store or a clone (`use_settings`), else the
    /// system's.
    clock: Arc<Mutex<Arc<dyn Clock>>>,
    sweep_interval: Duration,
}

/// The store's state, shared by its clones and its sweeper.
///
/// # Locks
///
/// Three kinds, always taken in this order, so they cannot deadlock: the
/// bound's queues (`segments`), then the users' `ledger`, then one shard
/// of the map; a DashMap guard is always dropped before either mutex is
/// taken. A bound session's place in the ledger changes under the ledger
/// and its shard together, so the two always agree; anonymous sessions
/// never take the ledger: their loads, updates, retires and deletes take
/// one shard, and their creates the queues too.
struct Inner {
    sessions: Map,
    /// The order of eviction. Every insert into the map and every change
    /// of a session's binding happens under this lock, so whenever it is
    /// free each entry is queued as its kind.
    segments: Mutex<Segments>,
    /// Each user's sessions and generation. Its ids are sessions the map
    /// holds: every removal of a bound session takes it out here too, so
    /// it is bounded by the store's capacity.
    ledger: Mutex<UserLedger>,
    /// The map's entries and what they count for; each removal takes its
    /// share out.
    usage: Usage,
    max_bytes: AtomicUsize,
    evictions: Evictions,
    sweeper: OnceLock<()>,
    /// Sessions the sweeps removed as expired.
    expired: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store holding at most [`DEFAULT_CAPACITY`] entries counting for at
    /// most [`DEFAULT_MAX_BYTES`].
    pub fn new() -> Self {
        Self::bounded(DEFAULT_CAPACITY)
    }

    /// A store holding at most `capacity` entries, renewed ids' markers
    /// included, and counting for at most [`DEFAULT_MAX_BYTES`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] if `capacity` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// let store = MemoryStore::with_capacity(1_000_000)?;
    /// assert_eq!(store.capacity(), 1_000_000);
    /// assert!(MemoryStore::with_capacity(0).is_err());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn with_capacity(capacity: usize) -> Result<Self, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::out_of_range(
                "MemoryStore::with_capacity",
                capacity,
                "at least one entry",
            ));
        }
        Ok(Self::bounded(capacity))
    }

    fn bounded(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: map::map(),
                segments: Mutex::new(Segments::new(capacity)),
                ledger: Mutex::new(UserLedger::new()),
                usage: Usage::default(),
                max_bytes: AtomicUsize::new(DEFAULT_MAX_BYTES),
                evictions: Evictions::default(),
                sweeper: OnceLock::new(),
                expired: AtomicU64::new(0),
            }),
            clock: Arc::new(Mutex::new(Arc::new(SystemClock))),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// Bounds the bytes the entries count for at `max` instead of
    /// [`DEFAULT_MAX_BYTES`]: each counts its record's encoded size and
    /// 384 bytes of overhead (a renewed id's marker 128 in all).
    /// Beyond it the store evicts as beyond its capacity. Clones made
    /// before share the new bound.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] if `max` is under [`MIN_MAX_BYTES`] (1 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new().with_max_bytes(64 * 1024 * 1024)?;
    /// assert_eq!(store.max_bytes(), 64 * 1024 * 1024);
    /// assert!(MemoryStore::new().with_max_bytes(0).is_err());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn with_max_bytes(self, max: usize) -> Result<Self, ConfigError> {
        if max < MIN_MAX_BYTES {
            return Err(ConfigError::out_of_range(
                "MemoryStore::with_max_bytes",
                max,
                "at least 1 MiB (MIN_MAX_BYTES)",
            ));
        }
        self.inner.max_bytes.store(max, Ordering::Relaxed);
        Ok(self)
    }

    /// Sweeps every `interval` instead of every [`DEFAULT_SWEEP_INTERVAL`].
    /// The sweeper takes its settings from the clone that creates first.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] if `interval` is zero or over
    /// [`MAX_SWEEP_INTERVAL`] (one day).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new().with_sweep_interval(Duration::from_secs(10))?;
    /// assert!(MemoryStore::new().with_sweep_interval(Duration::MAX).is_err());
    /// assert!(MemoryStore::new().with_sweep_interval(Duration::ZERO).is_err());
    /// # let _ = store;
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn with_sweep_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() || interval > MAX_SWEEP_INTERVAL {
            return Err(ConfigError::out_of_range(
                "MemoryStore::with_sweep_interval",
                interval,
                "above zero and at most one day (MAX_SWEEP_INTERVAL)",
            ));
        }
        self.sweep_interval = interval;
        Ok(self)
    }

    /// How many entries are held: sessions and renewed ids' markers,
    /// including those past their end and not yet swept.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Whether nothing is held.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert!(MemoryStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.sessions.is_empty()
    }

    /// The most entries the store holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::{DEFAULT_CAPACITY, MemoryStore};
    ///
    /// assert_eq!(MemoryStore::new().capacity(), DEFAULT_CAPACITY);
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.segments().capacity()
    }

    /// The bytes the entries held count for, as
    /// [`with_max_bytes`](Self::with_max_bytes) counts them.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().bytes(), 0);
    /// ```
    pub fn bytes(&self) -> usize {
        self.inner.usage.bytes()
    }

    /// The most bytes the entries may count for.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::{DEFAULT_MAX_BYTES, MemoryStore};
    ///
    /// assert_eq!(MemoryStore::new().max_bytes(), DEFAULT_MAX_BYTES);
    /// ```
    pub fn max_bytes(&self) -> usize {
        self.inner.max_bytes.load(Ordering::Relaxed)
    }

    /// How many entries were evicted to keep the store within its
    /// bounds since it was made (expired ones that were swept do not
    /// count). Anything above zero means some visitors lost their session
    /// early: raise the bounds, or keep sessions in Redis.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().evictions(), 0);
    /// ```
    pub fn evictions(&self) -> u64 {
        self.inner.evictions.total()
    }

    /// How many of the [`evictions`](Self::evictions) were of sessions
    /// bound to a user, each a user logged out: the store evicts those only
    /// when no anonymous entry is left to evict.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().signed_in_evictions(), 0);
    /// ```
    pub fn signed_in_evictions(&self) -> u64 {
        self.inner.evictions.signed_in()
    }

    /// How many sessions the sweeps removed because they had expired, since
    /// the store was built (renewed ids' markers past their time are not
    /// counted): for an exporter, beside [`evictions`](Self::evictions).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().expired(), 0);
    /// ```
    pub fn expired(&self) -> u64 {
        self.inner.expired.load(Ordering::Relaxed)
    }

    /// Removes every session expired at `now` and every marker past its
    /// end; returns how many entries went.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::UnixTime;
    /// use http_sessions_memory::MemoryStore;
    ///
    /// assert_eq!(MemoryStore::new().sweep(UnixTime::from_secs(1)), 0);
    /// ```
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
            // The first sweep is one period after the first create, not
            // after the task first gets to run.
            let first = tokio::time::Instant::now() + period;
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let now = clock.lock().unwrap_or_else(PoisonError::into_inner).now();
                    let removed = inner.sweep(now);
                    if removed > 0 {
                        tracing::debug!(removed, "expired sessions and renewed ids swept");
                    }
                }
            });
        });
    }
}

/// One occupied place of the map, its shard locked for writing.
type Occupied<'a> = OccupiedEntry<'a, SessionId, Held>;

/// Takes `id` out of its user's sessions if `slot` is bound. The caller
/// holds the ledger (taken before the entry's shard); without one, the
/// caller has checked under the shard lock that `slot` is anonymous.
fn unlist(ledger: Option<&mut UserLedger>, id: &SessionId, slot: &Entry) {
    if let (Some(ledger), Some(user)) = (ledger, slot.user()) {
        ledger.leave(user, id);
    }
}

impl Inner {
    fn segments(&self) -> MutexGuard<'_, Segments> {
        // Every critical section leaves the queues consistent before
        // anything that could panic, so a poisoned lock is still usable.
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ledger(&self) -> MutexGuard<'_, UserLedger> {
        // std Mutex, not tokio's: nothing awaits while it is held. As for
        // the queues, a poisoned ledger is still consistent.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a removed entry out of the usage.
    fn gone(&self, held: &Held) {
        held.leave(&self.usage);
    }

    fn max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    fn load(&self, id: &SessionId, now: UnixTime) -> Option<Loaded> {
        let held = self.sessions.get(id)?;
        let loaded = held.slot.load(now);
        if matches!(loaded, Some(Loaded::Live(_))) {
            held.mark_seen();
        }
        loaded
    }

    fn sweep(&self, now: UnixTime) -> usize {
        // The queues, the ledger, then the map's shards, as everywhere.
        let mut segments = self.segments();
        let mut ledger = self.ledger();
        let before = self.sessions.len();
        let mut expired = 0;
        self.sessions.retain(|id, held| {
            let dead = held.slot.is_dead(now);
            if dead {
                expired += u64::from(matches!(held.slot, Entry::Live(_)));
                unlist(Some(&mut ledger), id, &held.slot);
                self.gone(held);
            }
            !dead
        });
        ledger.sweep(now);
        drop(ledger);
        self.expired.fetch_add(expired, Ordering::Relaxed);
        let removed = before.saturating_sub(self.sessions.len());
        if removed > 0 {
            segments.retain_held(&self.sessions);
        }
        removed
    }

    fn create(&self, id: SessionId, record: &Record, ends: UnixTime) -> Result<(), StoreError> {
        // The queues first: an entry is in the map only once it is queued,
        // whenever this lock is free.
        let mut segments = self.segments();
        match record.user.as_deref() {
            // Anonymous: no ledger.
            None => match self.sessions.entry(id) {
                MapEntry::Occupied(_) => return Err(StoreError::Exists),
                MapEntry::Vacant(slot) => {
                    slot.insert(Held::new(Entry::live(record), &self.usage));
                }
            },
            Some(user) => {
                let mut ledger = self.ledger();
                let MapEntry::Vacant(slot) = self.sessions.entry(id) else {
                    return Err(StoreError::Exists);
                };
                // A refusal stores nothing: the binding was ended.
                let generation = ledger.admit(user, id, record.generation, ends)?;
                let mut stored = Box::new(record.clone());
                stored.generation = generation;
                slot.insert(Held::new(Entry::Live(stored), &self.usage));
            }
        }
        // The map's shard lock is released: evicting may touch any shard.
        let mut ledger = None;
        let evicted = segments.admit(
            id,
            record.user.is_some(),
            &self.sessions,
            &self.usage,
            self.max_bytes(),
            |id| self.evict(id, &mut ledger),
        );
        drop(ledger);
        let capacity = segments.capacity();
        drop(segments);
        self.evictions.record(evicted, || self.bounds(capacity));
        Ok(())
    }

    /// Evicts until the store is within its bounds again, after a write
    /// that grew a session.
    fn fit(&self) {
        let mut segments = self.segments();
        let mut ledger = None;
        let evicted = segments.fit(&self.sessions, &self.usage, self.max_bytes(), |id| {
            self.evict(id, &mut ledger)
        });
        drop(ledger);
        let capacity = segments.capacity();
        drop(segments);
        self.evictions.record(evicted, || self.bounds(capacity));
    }

    fn bounds(&self, capacity: usize) -> Bounds {
        Bounds {
            capacity,
            max_bytes: self.max_bytes(),
            entries: self.usage.entries(),
            bytes: self.usage.bytes(),
        }
    }

    /// Removes `id` for room, under the queues' lock; says whether it was
    /// bound, or `None` if it was not there. An anonymous entry goes with
    /// its shard lock alone; a bound one takes the ledger, which stays held
    /// for the rest of the evictions of this call.
    fn evict<'a>(
        &'a self,
        id: &SessionId,
        ledger: &mut Option<MutexGuard<'a, UserLedger>>,
    ) -> Option<bool> {
        if ledger.is_none() {
            match self.sessions.entry(*id) {
                MapEntry::Vacant(_) => return None,
                MapEntry::Occupied(entry) if !entry.get().is_bound() => {
                    self.gone(&entry.remove());
                    return Some(false);
                }
                // Bound: the shard is released before the ledger is taken.
                MapEntry::Occupied(_) => {}
            }
        }
        let ledger = ledger.get_or_insert_with(|| self.ledger());
        let (id, held) = self.sessions.remove(id)?;
        unlist(Some(ledger), &id, &held.slot);
        self.gone(&held);
        Some(held.is_bound())
    }

    fn update(&self, id: SessionId, update: &Update<'_>) -> Result<Updated, StoreError> {
        let updated = self.write(id, update);
        // The session may have grown: the shard is released, so the queues
        // can be taken. Only a store over its byte bound takes them.
        if self.usage.bytes() > self.max_bytes() {
            self.fit();
        }
        updated
    }

    fn write(&self, id: SessionId, update: &Update<'_>) -> Result<Updated, StoreError> {
        if update.moves_binding() {
            return self.update_binding(id, update);
        }
        let MapEntry::Occupied(mut entry) = self.sessions.entry(id) else {
            return Err(StoreError::Gone);
        };
        let stored_user = entry.get().slot.user();
        let rebinds = update.changes.binding && stored_user != update.record.user.as_deref();
        let bound = stored_user.is_some();
        if rebinds {
            // Bound or unbound by another request since this one loaded:
            // writing this binding moves the session between users.
            drop(entry);
            return self.update_binding(id, update);
        }
        let held = entry.get_mut();
        let applied = held.slot.apply_measured(update).map(|(updated, change)| {
            held.resize(change, &self.usage);
            updated
        });
        match applied {
            Err(error) => {
                // A bound session past its time is left to the sweep, which
                // takes the ledger.
                if !bound && entry.get().slot.is_dead(update.now) {
                    self.gone(&entry.remove());
                }
                Err(error)
            }
            Ok(Updated::Kept) => Ok(Updated::Kept),
            Ok(Updated::Emptied) if !bound => {
                self.gone(&entry.remove());
                Ok(Updated::Emptied)
            }
            Ok(Updated::Emptied) => {
                drop(entry);
                Ok(self.remove_emptied(id))
            }
        }
    }

    /// Removes the bound session under `id` that an update emptied, unless
    /// another request set a value meanwhile (then it is kept).
    fn remove_emptied(&self, id: SessionId) -> Updated {
        let mut ledger = self.ledger();
        let MapEntry::Occupied(entry) = self.sessions.entry(id) else {
            return Updated::Emptied;
        };
        match &entry.get().slot {
            Entry::Live(record) if record.is_empty() => {}
            _ => return Updated::Kept,
        }
        let (id, held) = entry.remove_entry();
        unlist(Some(&mut ledger), &id, &held.slot);
        self.gone(&held);
        Updated::Emptied
    }

    /// An update that moves the session in the users' index, under the
    /// queues (a session bound or unbound changes queue) and the ledger:
    /// the new binding is admitted first, and a refusal writes nothing.
    fn update_binding(&self, id: SessionId, update: &Update<'_>) -> Result<Updated, StoreError> {
        let mut segments = self.segments();
        let mut ledger = self.ledger();
        let MapEntry::Occupied(mut entry) = self.sessions.entry(id) else {
            return Err(StoreError::Gone);
        };
        let Entry::Live(stored) = &entry.get().slot else {
            return Err(StoreError::Gone);
        };
        if stored.is_expired(update.now) {
            let (id, held) = entry.remove_entry();
            unlist(Some(&mut ledger), &id, &held.slot);
            self.gone(&held);
            return Err(StoreError::Gone);
        }
        let (was, stored_generation) = (stored.user.clone(), stored.generation);
        let target = if update.changes.binding {
            update.record.user.as_deref()
        } else {
            was.as_deref()
        };
        let same = target == was.as_deref();
        // A binding kept is of the generation stored with it (an end_all
        // that kept this session restamped it); a new one, of the request's.
        let generation = if same {
            stored_generation
        } else {
            update.record.generation
        };
        let stamped = match target {
            Some(user) => Some(ledger.admit(user, id, generation, update.ends)?),
            None => None,
        };
        if let (false, Some(old)) = (same, &was) {
            ledger.leave(old, &id);
        }
        let held = entry.get_mut();
        let updated = held.slot.apply(update)?;
        if let (Entry::Live(stored), Some(generation)) = (&mut held.slot, stamped) {
            stored.generation = generation;
        }
        held.recount(&self.usage);
        if updated == Updated::Emptied {
            let (id, held) = entry.remove_entry();
            unlist(Some(&mut ledger), &id, &held.slot);
            self.gone(&held);
        } else if was.is_some() != target.is_some() {
            // The shard first: requeueing may look through the map.
            drop(entry);
            segments.requeue(id, target.is_some(), &self.sessions);
        }
        Ok(updated)
    }

    fn retire(
        &self,
        id: SessionId,
        now: UnixTime,
        until: UnixTime,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        if user.is_none() {
            let MapEntry::Occupied(entry) = self.sessions.entry(id) else {
                return Err(StoreError::Gone);
            };
            if !entry.get().is_bound() {
                return self.retire_entry(entry, now, until, None).map(drop);
            }
            // Bound by another request meanwhile: under the ledger.
        }
        // The queues too: a bound session's marker is anonymous, and is
        // queued as such.
        let mut segments = self.segments();
        let mut ledger = self.ledger();
        let MapEntry::Occupied(entry) = self.sessions.entry(id) else {
            return Err(StoreError::Gone);
        };
        let bound = entry.get().is_bound();
        let kept = self.retire_entry(entry, now, until, Some(&mut ledger))?;
        if bound && kept {
            segments.requeue(id, false, &self.sessions);
        }
        Ok(())
    }

    /// Retires the session in `entry`; `ledger` as for [`unlist`]. Says
    /// whether a marker was kept.
    fn retire_entry(
        &self,
        mut entry: Occupied<'_>,
        now: UnixTime,
        until: UnixTime,
        ledger: Option<&mut UserLedger>,
    ) -> Result<bool, StoreError> {
        if entry.get().slot.is_dead(now) {
            let (id, held) = entry.remove_entry();
            unlist(ledger, &id, &held.slot);
            self.gone(&held);
            return Err(StoreError::Gone);
        }
        let id = *entry.key();
        let held = entry.get_mut();
        let record = held.slot.retire(now, until)?;
        held.recount(&self.usage);
        let kept = until > now;
        if !kept {
            // A marker that would be past its end at once is not kept.
            self.gone(&entry.remove());
        }
        unlist(ledger, &id, &Entry::Live(record));
        Ok(kept)
    }

    fn delete(&self, id: &SessionId, user: Option<&str>) {
        // Its id stays queued until it reaches the front or a sweep: a
        // delete takes neither the queues nor, if anonymous, the ledger.
        if user.is_none() {
            match self.sessions.entry(*id) {
                MapEntry::Vacant(_) => return,
                MapEntry::Occupied(entry) if !entry.get().is_bound() => {
                    self.gone(&entry.remove());
                    return;
                }
                MapEntry::Occupied(_) => {}
            }
        }
        let mut ledger = self.ledger();
        if let Some((id, held)) = self.sessions.remove(id) {
            unlist(Some(&mut ledger), &id, &held.slot);
            self.gone(&held);
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        Ok(self.inner.load(id, now))
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        self.start_sweeper();
        self.inner.create(*id, record, ends)
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        self.inner.update(*id, &update)
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.retire(*id, now, until, user)
    }

    async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError> {
        self.inner.delete(id, user);
        Ok(())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn use_settings(&self, settings: &Settings) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = settings.clock();
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("capacity", &self.capacity())
            .field("bytes", &self.bytes())
            .field("max_bytes", &self.max_bytes())
            .field("evictions", &self.evictions())
            .field("sweep_interval", &self.sweep_interval)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_sessions_core::seams::ManualClock;
    use http_sessions_core::store::{Changes, DataKey, FlashChanges, FlashQueue, Value};
    use http_sessions_core::{Flash, FlashLevel};

    const T0: UnixTime = UnixTime::from_secs(1_000_000);
    /// The absolute deadline the tests' sessions are created with.
    const ENDS: UnixTime = UnixTime::from_secs(1_000_000 + 3_600);

    fn at(secs: u64) -> UnixTime {
        T0 + Duration::from_secs(secs)
    }

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    /// A session with one flash message (so it is not empty), ending at
    /// `at(expires)`.
    fn record(expires: u64) -> Record {
        let mut r = Record::empty(T0, at(expires), 4);
        r.flash.push(FlashLevel::Info, "x".into());
        r
    }

    fn value(s: &str) -> Value {
        Value::encode(s).unwrap()
    }

    async fn create(store: &MemoryStore, n: u8, expires: u64) {
        store.create(&id(n), &record(expires), ENDS).await.unwrap();
    }

    async fn load(store: &MemoryStore, n: u8, now: u64) -> Option<Loaded> {
        store.load(&id(n), at(now)).await.unwrap()
    }

    async fn is_live(store: &MemoryStore, n: u8, now: u64) -> bool {
        matches!(load(store, n, now).await, Some(Loaded::Live(_)))
    }

    /// Applies `changes` from `record` at `at(now)`, moving the expiry to
    /// `at(expires)`.
    async fn update(
        store: &MemoryStore,
        n: u8,
        record: &Record,
        changes: &Changes,
        now: u64,
        expires: u64,
    ) -> Result<Updated, StoreError> {
        let update = Update {
            record,
            changes,
            expires: at(expires),
            ends: ENDS,
            now: at(now),
            stored_user: None,
            max_size: usize::MAX,
        };
        store.update(&id(n), update).await
    }

    /// Only the expiry moves.
    async fn touch(store: &MemoryStore, n: u8, now: u64, expires: u64) -> Result<(), StoreError> {
        update(store, n, &record(0), &Changes::default(), now, expires)
            .await
            .map(drop)
    }

    fn stores() -> [MemoryStore; 2] {
        [MemoryStore::new(), MemoryStore::with_capacity(10).unwrap()]
    }

    /// Checks the usage against the entries: each was counted again after
    /// its last change, and each removal took its share out.
    fn assert_counted(store: &MemoryStore) {
        let (mut counted, mut now) = (0, 0);
        for held in store.inner.sessions.iter() {
            let (was, is) = held.counts();
            counted += was;
            now += is;
        }
        assert_eq!(counted, now, "an entry was not counted again");
        assert_eq!(store.bytes(), counted, "a removal kept its bytes");
        assert_eq!(store.inner.usage.entries(), store.len());
    }

    #[test]
    fn an_entry_is_at_most_three_words() {
        // A boxed record or a marker's time, and the eviction mark; in
        // `u64`s, so that it holds on 32-bit targets too.
        assert!(size_of::<Entry>() <= 2 * size_of::<u64>());
        assert!(size_of::<Held>() <= 3 * size_of::<u64>());
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MemoryStore>();
    }

    #[tokio::test]
    async fn load_returns_a_session_until_it_expires() {
        for store in stores() {
            assert_eq!(load(&store, 1, 0).await, None);
            create(&store, 1, 10).await;
            assert_eq!(load(&store, 1, 9).await, Some(Loaded::Live(record(10))));
            assert_eq!(load(&store, 1, 10).await, Some(Loaded::Expired(record(10))));
            assert_eq!(store.len(), 1, "load does not remove");
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn create_never_overwrites() {
        for store in stores() {
            create(&store, 1, 10).await;
            let other = Record::empty(T0, at(99), 4);
            assert!(matches!(
                store.create(&id(1), &other, ENDS).await,
                Err(StoreError::Exists)
            ));
            assert_eq!(load(&store, 1, 0).await, Some(Loaded::Live(record(10))));

            create(&store, 2, 10).await;
            store.retire(&id(2), at(0), at(50), None).await.unwrap();
            assert!(matches!(
                store.create(&id(2), &other, ENDS).await,
                Err(StoreError::Exists)
            ));
            assert_eq!(load(&store, 2, 0).await, Some(Loaded::Renewed));
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn update_writes_the_changed_keys_and_the_new_expiry() {
        for store in stores() {
            let mut stored = record(10);
            stored.data.insert("a".into(), value("a0"));
            stored.data.insert("b".into(), value("b0"));
            stored.data.insert("c".into(), value("c0"));
            store.create(&id(1), &stored, ENDS).await.unwrap();

            // The request saw other values for `b`, `c` and its flash, but
            // changed only `a` (set), `c` (removed) and `d` (added).
            let mut after = Record::empty(T0, at(10), 4);
            after.data.insert("a".into(), value("a1"));
            after.data.insert("b".into(), value("stale"));
            after.data.insert("d".into(), value("d1"));
            let changes = Changes {
                cleared: false,
                keys: vec![DataKey::from("a"), DataKey::from("c"), DataKey::from("d")],
                ..Changes::default()
            };
            update(&store, 1, &after, &changes, 5, 30).await.unwrap();

            let Some(Loaded::Live(got)) = load(&store, 1, 29).await else {
                panic!("the session is gone");
            };
            let keys: Vec<_> = got.data.keys().map(|k| k.as_str()).collect();
            assert_eq!(keys, ["a", "b", "d"]);
            assert_eq!(got.data.get("a"), Some(&value("a1")));
            assert_eq!(got.data.get("b"), Some(&value("b0")));
            assert_eq!(got.data.get("d"), Some(&value("d1")));
            assert_eq!(got.flash, record(10).flash, "the flash was not changed");
            assert_eq!(got.expires, at(30), "the update's expiry, not the record's");
            assert_eq!(got.created, T0);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn update_clears_and_replaces_the_flash() {
        for store in stores() {
            let mut stored = record(10);
            stored.data.insert("old".into(), value("x"));
            store.create(&id(1), &stored, ENDS).await.unwrap();

            // The request read the stored message (id 1) and pushed one.
            let mut after = Record::empty(T0, at(10), 4);
            after.data.insert("new".into(), value("y"));
            let e = Flash {
                level: FlashLevel::Error,
                message: "e".into(),
            };
            after.flash = FlashQueue::from_entries([(2, e)], 4);
            let changes = Changes {
                cleared: true,
                keys: vec![DataKey::from("new")],
                flash: FlashChanges {
                    taken: vec![1],
                    pushed: vec![2],
                },
                ..Changes::default()
            };
            update(&store, 1, &after, &changes, 5, 20).await.unwrap();

            let Some(Loaded::Live(got)) = load(&store, 1, 5).await else {
                panic!("the session is gone");
            };
            let keys: Vec<_> = got.data.keys().map(|k| k.as_str()).collect();
            assert_eq!(keys, ["new"]);
            let flash: Vec<Flash> = got.flash.iter().cloned().collect();
            assert_eq!(
                flash,
                [Flash {
                    level: FlashLevel::Error,
                    message: "e".into()
                }]
            );
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn update_deletes_a_session_it_empties() {
        for store in stores() {
            let mut stored = Record::empty(T0, at(10), 4);
            stored.data.insert("a".into(), value("a0"));
            store.create(&id(1), &stored, ENDS).await.unwrap();
            // Another request removed `a`; this one saw it and removes it too.
            let changes = Changes {
                cleared: false,
                keys: vec![DataKey::from("a")],
                ..Changes::default()
            };
            let after = Record::empty(T0, at(10), 4);
            let updated = update(&store, 1, &after, &changes, 1, 20).await;
            assert_eq!(updated.unwrap(), Updated::Emptied);
            assert_eq!(store.len(), 0);
            assert_eq!(load(&store, 1, 1).await, None);
            // The index forgot it too: a later sweep finds nothing.
            assert_eq!(store.sweep(at(100)), 0);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn update_of_no_live_session_is_gone_and_writes_nothing() {
        for store in stores() {
            // Never stored.
            assert!(matches!(
                touch(&store, 1, 0, 20).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(store.len(), 0);

            // Expired at the update's time: removed on the spot.
            create(&store, 2, 10).await;
            assert!(matches!(
                touch(&store, 2, 10, 20).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(store.len(), 0);

            // Renewed: the marker stays as it was.
            create(&store, 3, 10).await;
            store.retire(&id(3), at(0), at(50), None).await.unwrap();
            assert!(matches!(
                touch(&store, 3, 1, 20).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(load(&store, 3, 49).await, Some(Loaded::Renewed));
            assert_eq!(load(&store, 3, 50).await, None);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn retire_leaves_a_marker_until_its_end() {
        for store in stores() {
            create(&store, 1, 10).await;
            store.retire(&id(1), at(5), at(40), None).await.unwrap();
            assert_eq!(store.len(), 1);
            // Renewed even after the session itself would have expired.
            assert_eq!(load(&store, 1, 5).await, Some(Loaded::Renewed));
            assert_eq!(load(&store, 1, 39).await, Some(Loaded::Renewed));
            assert_eq!(load(&store, 1, 40).await, None);
            // A renewed id cannot be renewed again.
            assert!(matches!(
                store.retire(&id(1), at(6), at(60), None).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(
                load(&store, 1, 45).await,
                None,
                "the marker's end did not move"
            );
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn retire_of_no_live_session_is_gone() {
        for store in stores() {
            assert!(matches!(
                store.retire(&id(1), at(0), at(40), None).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(store.len(), 0, "no marker for an id that held nothing");

            create(&store, 2, 10).await;
            assert!(matches!(
                store.retire(&id(2), at(10), at(40), None).await,
                Err(StoreError::Gone)
            ));
            assert_eq!(store.len(), 0, "the expired session was removed");
            assert_eq!(store.sweep(at(100)), 0);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn delete_removes_sessions_and_markers() {
        for store in stores() {
            create(&store, 1, 10).await;
            create(&store, 2, 10).await;
            store.retire(&id(2), at(0), at(40), None).await.unwrap();
            store.delete(&id(1), None).await.unwrap();
            store.delete(&id(2), None).await.unwrap();
            store.delete(&id(3), None).await.unwrap();
            assert_eq!(store.len(), 0);
            assert_eq!(load(&store, 1, 0).await, None);
            assert_eq!(load(&store, 2, 0).await, None);
            // Both ids are free again.
            create(&store, 2, 10).await;
            assert!(is_live(&store, 2, 0).await);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn sweep_removes_expired_sessions_and_markers_past_their_end() {
        for store in stores() {
            create(&store, 1, 10).await;
            create(&store, 2, 100).await;
            create(&store, 3, 20).await;
            store.retire(&id(3), at(0), at(30), None).await.unwrap();
            assert_eq!(store.sweep(at(9)), 0);
            assert_eq!(store.sweep(at(10)), 1);
            assert_eq!(load(&store, 1, 0).await, None);
            // The marker outlives its session's old expiry.
            assert_eq!(store.sweep(at(29)), 0);
            assert_eq!(load(&store, 3, 29).await, Some(Loaded::Renewed));
            assert_eq!(store.sweep(at(30)), 1);
            assert_eq!(store.len(), 1);
            assert!(is_live(&store, 2, 30).await);
            assert_eq!(store.expired(), 1, "the session, not the marker");
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn sweep_follows_an_updated_expiry() {
        for store in stores() {
            create(&store, 1, 10).await;
            touch(&store, 1, 5, 50).await.unwrap();
            assert_eq!(store.sweep(at(10)), 0);
            assert!(is_live(&store, 1, 10).await);
            assert_eq!(store.sweep(at(50)), 1);
            assert_counted(&store);
        }
    }

    #[tokio::test]
    async fn a_full_store_evicts_sessions_that_never_came_back() {
        let store = MemoryStore::with_capacity(3).unwrap();
        assert_eq!(store.capacity(), 3);
        create(&store, 1, 100).await;
        create(&store, 2, 100).await;
        create(&store, 3, 100).await;
        // Session 1 comes back; session 2, older than 3, never does.
        assert!(is_live(&store, 1, 0).await);
        create(&store, 4, 100).await;
        assert_eq!(store.len(), 3);
        assert_eq!(store.evictions(), 1);
        assert_eq!(load(&store, 2, 0).await, None);
        for n in [1, 3, 4] {
            assert!(is_live(&store, n, 0).await);
        }
    }

    #[tokio::test]
    async fn evictions_count_markers_and_not_what_was_swept_or_deleted() {
        let store = MemoryStore::with_capacity(2).unwrap();
        create(&store, 1, 10).await;
        store.retire(&id(1), at(0), at(50), None).await.unwrap();
        create(&store, 2, 100).await;
        // The marker was never loaded: it is the first to go.
        create(&store, 3, 100).await;
        assert_eq!(load(&store, 1, 0).await, None);
        assert_eq!(store.evictions(), 1);
        store.delete(&id(2), None).await.unwrap();
        assert_eq!(store.sweep(at(100)), 1);
        create(&store, 4, 200).await;
        create(&store, 5, 200).await;
        assert_eq!(store.len(), 2);
        assert_eq!(store.evictions(), 1, "the deleted and swept made room");
    }

    #[tokio::test]
    async fn the_default_store_is_bounded() {
        let store = MemoryStore::new();
        assert_eq!(store.capacity(), DEFAULT_CAPACITY);
        assert_eq!(store.max_bytes(), DEFAULT_MAX_BYTES);
        assert_eq!(MemoryStore::default().capacity(), DEFAULT_CAPACITY);
    }

    #[test]
    fn out_of_range_bounds_are_refused() {
        assert!(matches!(
            MemoryStore::with_capacity(0),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(matches!(
            MemoryStore::with_capacity(1).map(|s| s.capacity()),
            Ok(1)
        ));
        for refused in [0, 1, MIN_MAX_BYTES - 1] {
            assert!(matches!(
                MemoryStore::new().with_max_bytes(refused),
                Err(ConfigError::OutOfRange { .. })
            ));
        }
        for accepted in [MIN_MAX_BYTES, usize::MAX] {
            let store = MemoryStore::new().with_max_bytes(accepted);
            assert_eq!(store.map(|s| s.max_bytes()).ok(), Some(accepted));
        }
    }

    /// A session of `user` whose one value is `len` bytes long.
    fn large(user: Option<&str>, len: usize) -> Record {
        let mut r = Record::empty(T0, at(100), 4);
        r.data.insert("v".into(), value(&"x".repeat(len)));
        r.user = user.map(Into::into);
        r
    }

    #[tokio::test]
    async fn the_byte_bound_evicts_anonymous_sessions_first_and_counts_every_change() {
        let store = MemoryStore::new().with_max_bytes(MIN_MAX_BYTES).unwrap();
        let size = 60 * 1024;
        for n in 0..4 {
            let user = format!("user-{n}");
            store
                .create(&id(n), &large(Some(&user), size), ENDS)
                .await
                .unwrap();
        }
        for n in 10..100 {
            store
                .create(&id(n), &large(None, size), ENDS)
                .await
                .unwrap();
            assert!(store.bytes() <= MIN_MAX_BYTES, "{} bytes", store.bytes());
            assert_counted(&store);
        }
        assert_eq!(store.signed_in_evictions(), 0);
        assert!(store.evictions() > 70, "{}", store.evictions());
        for n in 0..4 {
            assert!(is_live(&store, n, 0).await, "signed-in session {n}");
        }
        // A session that grows past the bound by an update evicts too.
        let before = store.evictions();
        let grown = large(None, 4 * size);
        let changes = Changes {
            keys: vec![DataKey::from("v")],
            ..Changes::default()
        };
        update(&store, 99, &grown, &changes, 1, 100).await.unwrap();
        assert!(store.bytes() <= MIN_MAX_BYTES);
        assert!(store.evictions() >= before + 3);
        assert!(
            is_live(&store, 99, 1).await,
            "the newest anonymous one stays"
        );
        assert_eq!(store.signed_in_evictions(), 0);
        assert_counted(&store);
    }

    #[tokio::test]
    async fn a_session_that_signs_in_or_out_is_evicted_as_its_new_kind() {
        let store = MemoryStore::with_capacity(3).unwrap();
        store.create(&id(1), &record(100), ENDS).await.unwrap();
        let ada = Update {
            record: &large(Some("ada"), 1),
            changes: &Changes {
                binding: true,
                ..Changes::default()
            },
            expires: at(100),
            ends: ENDS,
            now: at(1),
            stored_user: None,
            max_size: usize::MAX,
        };
        store.update(&id(1), ada).await.unwrap();
        store
            .create(&id(2), &large(Some("bob"), 1), ENDS)
            .await
            .unwrap();
        // Anonymous newcomers go before ada, who signed in after her
        // session was created: only one of them is kept.
        for n in 3..10 {
            create(&store, n, 100).await;
        }
        assert_eq!(store.signed_in_evictions(), 0);
        assert!(is_live(&store, 1, 1).await && is_live(&store, 2, 1).await);
        // Bob's session is renewed: its marker is anonymous, and goes (after
        // the older anonymous session) before any signed-in one.
        store
            .retire(&id(2), at(1), at(50), Some("bob"))
            .await
            .unwrap();
        for (n, user) in [(20, "bob"), (21, "carol")] {
            store
                .create(&id(n), &large(Some(user), 1), ENDS)
                .await
                .unwrap();
        }
        assert_eq!(load(&store, 9, 1).await, None);
        assert_eq!(load(&store, 2, 1).await, None, "the marker was evicted");
        assert_eq!(store.signed_in_evictions(), 0);
        for n in [1, 20, 21] {
            assert!(is_live(&store, n, 1).await, "{n}");
        }
        assert_counted(&store);
    }

    #[tokio::test(start_paused = true)]
    async fn background_sweeper_runs_and_stops_with_the_store() {
        let clock = ManualClock::new(T0);
        let store = MemoryStore::new()
            .with_sweep_interval(Duration::from_secs(30))
            .unwrap();
        let key = http_sessions_core::Key::from_bytes(&[1; 32]).unwrap();
        let settings = http_sessions_core::Settings::builder()
            .with_keyring(http_sessions_core::Keyring::new(key).unwrap())
            .with_clock(clock.clone())
            .build()
            .unwrap();
        store.use_settings(&settings);
        create(&store, 1, 10).await;
        create(&store, 2, 10).await;
        store.retire(&id(2), at(0), at(20), None).await.unwrap();
        clock.advance(Duration::from_secs(20));
        assert_eq!(store.len(), 2, "nothing sweeps before the interval");
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
        assert!(matches!(refused, Err(ConfigError::OutOfRange { .. })));
        let zero = MemoryStore::new().with_sweep_interval(Duration::ZERO);
        assert!(
            matches!(zero, Err(ConfigError::OutOfRange { .. })),
            "{zero:?}"
        );
        let over =
            MemoryStore::new().with_sweep_interval(MAX_SWEEP_INTERVAL + Duration::from_secs(1));
        assert!(over.is_err());
        // The longest accepted interval starts the sweeper on the first
        // save without overflowing its deadline.
        let store = MemoryStore::new()
            .with_sweep_interval(MAX_SWEEP_INTERVAL)
            .unwrap();
        create(&store, 1, 10).await;
        assert!(store.load(&id(1), at(0)).await.unwrap().is_some());
        assert!(store.inner.sweeper.get().is_some(), "the sweeper started");
    }

    /// Polls `future` once, outside any runtime.
    fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(future).poll(&mut cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn store_without_runtime_still_expires_on_load() {
        // No runtime: the first create starts no sweeper and does not
        // panic, and expiry holds on load.
        let store = MemoryStore::new();
        assert!(matches!(
            poll_once(store.create(&id(1), &record(10), ENDS)),
            Some(Ok(()))
        ));
        assert!(matches!(
            poll_once(store.load(&id(1), at(9))),
            Some(Ok(Some(Loaded::Live(_))))
        ));
        assert!(matches!(
            poll_once(store.load(&id(1), at(10))),
            Some(Ok(Some(Loaded::Expired(_))))
        ));
    }
}
