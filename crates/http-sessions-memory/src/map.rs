//! The map of sessions ([`Map`]) and what it holds under each id
//! ([`Held`]): the entry, the bytes it counts for, and a mark for the
//! bound's queues. The lowest module: the store and the queues both build
//! on it.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use http_sessions_core::store::{Entry, SessionId};

/// What an entry costs beside its record's encoded bytes: its place in the
/// map's table and in a queue, the boxed `Record` and the allocations of
/// its values and flash messages. Measured at 292 bytes on average
/// (docs/memory.md); this covers the table and queues at their emptiest.
pub(crate) const ENTRY_OVERHEAD: usize = 384;

/// What a renewed id's marker counts for: its places in the table and a
/// queue, at their emptiest, with no record.
pub(crate) const MARKER_BYTES: usize = 128;

/// The map of sessions.
pub(crate) type Map = DashMap<SessionId, Held, RandomIdHash>;

/// An empty map.
pub(crate) fn map() -> Map {
    DashMap::with_hasher(RandomIdHash)
}

/// What the map holds under an id.
///
/// Small on purpose: the map's table keeps up to about twice as many
/// entries as it holds, so every byte here costs up to two per session.
/// The core's `Entry` boxes its record; with the byte count and the mark
/// this is still three words.
pub(crate) struct Held {
    pub(crate) slot: Entry,
    /// What the entry adds to [`Usage`], as counted when it last changed.
    bytes: u32,
    /// Set by loads, under the map's read lock: an atomic, so a load never
    /// takes a write lock or the queues' lock.
    seen: AtomicBool,
}

impl Held {
    /// Holds `slot`, counted in `total`.
    pub(crate) fn new(slot: Entry, total: &Usage) -> Self {
        let bytes = count(&slot);
        total.entries.fetch_add(1, Ordering::Relaxed);
        total.add(bytes);
        Self {
            slot,
            bytes,
            seen: AtomicBool::new(false),
        }
    }

    /// Counts the entry again after a change, under its shard's write
    /// lock, and moves `total` by the difference.
    pub(crate) fn recount(&mut self, total: &Usage) {
        let bytes = count(&self.slot);
        if bytes != self.bytes {
            total.sub(self.bytes);
            total.add(bytes);
            self.bytes = bytes;
        }
    }

    /// Moves the entry's count by `change` bytes, as
    /// [`Entry::apply_measured`] measured it, or counts it again when it
    /// could not.
    pub(crate) fn resize(&mut self, change: Option<isize>, total: &Usage) {
        let Some(change) = change else {
            return self.recount(total);
        };
        if change != 0 {
            let bytes =
                u32::try_from(widen(self.bytes).saturating_add_signed(change)).unwrap_or(u32::MAX);
            total.sub(self.bytes);
            total.add(bytes);
            self.bytes = bytes;
        }
    }

    /// Takes the entry out of `total`: it has left the map.
    pub(crate) fn leave(&self, total: &Usage) {
        total.entries.fetch_sub(1, Ordering::Relaxed);
        total.sub(self.bytes);
    }

    /// Whether the entry is a session bound to a user.
    pub(crate) fn is_bound(&self) -> bool {
        self.slot.user().is_some()
    }

    /// Notes a request that came back with this session.
    pub(crate) fn mark_seen(&self) {
        // Relaxed: the flag is a hint for eviction, not a synchronisation
        // point; a mark lost to a race only costs one second chance.
        self.seen.store(true, Ordering::Relaxed);
    }

    /// Whether a request came back since the last call, clearing the mark.
    pub(crate) fn take_seen(&self) -> bool {
        self.seen.swap(false, Ordering::Relaxed)
    }
}

/// The bytes an entry counts for: its record's encoded size and
/// [`ENTRY_OVERHEAD`], or [`MARKER_BYTES`].
fn count(slot: &Entry) -> u32 {
    let bytes = match slot {
        Entry::Live(record) => ENTRY_OVERHEAD.saturating_add(record.encoded_len()),
        Entry::Renewed { .. } => MARKER_BYTES,
    };
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The map's entries, counted, and the bytes they count for, summed. Each
/// entry's share changes under its shard's write lock, so both are exact
/// whenever no write is under way.
#[derive(Default)]
pub(crate) struct Usage {
    entries: AtomicUsize,
    bytes: AtomicUsize,
}

impl Usage {
    pub(crate) fn entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: u32) {
        self.bytes.fetch_add(widen(bytes), Ordering::Relaxed);
    }

    fn sub(&self, bytes: u32) {
        self.bytes.fetch_sub(widen(bytes), Ordering::Relaxed);
    }
}

fn widen(bytes: u32) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
impl Held {
    /// Its bytes as last counted, and as counted now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (widen(self.bytes), widen(count(&self.slot)))
    }
}

/// Hashes a [`SessionId`] by taking its bytes as they are. The ids are
/// 128 random bits from the system's generator, and only ids this server
/// made (their MAC verified) are ever looked up, so no one can choose keys
/// that collide: a keyed hash would spend its work for nothing.
#[derive(Clone, Copy, Default)]
pub(crate) struct RandomIdHash;

impl BuildHasher for RandomIdHash {
    type Hasher = RandomIdHasher;

    fn build_hasher(&self) -> RandomIdHasher {
        RandomIdHasher(0)
    }
}

#[derive(Default)]
pub(crate) struct RandomIdHasher(u64);

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
