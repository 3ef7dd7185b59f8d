//! The capacity bound: which sessions go when the store is full
//! ([`Segments`]).
//!
//! Two queues of ids. A new session joins the *first-visit* queue; if it
//! is loaded again before it reaches the front, it moves to the
//! *returning* queue when it gets there, and otherwise it is evicted. A
//! flood of one-request sessions therefore only churns the first-visit
//! queue, and the returning visitors wait in their own. The returning queue
//! gives a second chance: a session loaded since its last pass goes to the
//! back instead of out. (This is the shape of S3-FIFO, without its ghost
//! queue.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use http_sessions_core::store::{Entry, SessionId};

use crate::RandomIdHash;

/// What the map holds under an id: the entry, and whether it was loaded
/// since it joined its queue or last passed the front of it.
///
/// Small on purpose: the map's table keeps up to about twice as many
/// entries as it holds, so every byte here costs up to two per session.
/// The core's `Entry` boxes its record, so this is three words.
pub(crate) struct Held {
    pub(crate) slot: Entry,
    /// Set by loads, under the map's read lock: an atomic, so a load never
    /// takes a write lock or the queues' lock.
    seen: AtomicBool,
}

impl Held {
    pub(crate) fn new(slot: Entry) -> Self {
        Self {
            slot,
            seen: AtomicBool::new(false),
        }
    }

    /// Notes a request that came back with this session.
    pub(crate) fn mark_seen(&self) {
        // Relaxed: the flag is a hint for eviction, not a synchronisation
        // point; a mark lost to a race only costs one second chance.
        self.seen.store(true, Ordering::Relaxed);
    }
}

/// The map of sessions, as the queues see it.
pub(crate) type Map = DashMap<SessionId, Held, RandomIdHash>;

/// The two queues, behind the store's one lock for creates.
///
/// Every id in the map is in one of the queues (an id the map no longer
/// holds may linger in a queue until it reaches the front or a sweep), so
/// the map holds at most `capacity` entries once [`admit`](Self::admit)
/// returns.
pub(crate) struct Segments {
    first: VecDeque<SessionId>,
    returning: VecDeque<SessionId>,
    capacity: usize,
    /// The first-visit queue keeps at least this many places, so a new
    /// visitor has time to come back even when returning sessions fill the
    /// rest.
    first_floor: usize,
}

impl Segments {
    /// Queues for at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            first: VecDeque::new(),
            returning: VecDeque::new(),
            capacity,
            first_floor: (capacity / 10).max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `id`, just created in `map`, and evicts until the bound
    /// holds again; returns how many entries were evicted. `evict` removes
    /// an entry from the map (and from its user's sessions) and says
    /// whether there was one.
    ///
    /// Takes the map's shard locks while `self` is locked, never the other
    /// way round: no caller holds a shard lock when it calls this.
    pub(crate) fn admit(
        &mut self,
        id: SessionId,
        map: &Map,
        mut evict: impl FnMut(&SessionId) -> bool,
    ) -> u64 {
        self.first.push_back(id);
        let mut evicted = 0;
        while self.first.len() + self.returning.len() > self.capacity {
            let from_first = self.first.len() > self.first_floor || self.returning.is_empty();
            let gone = if from_first {
                self.pop_first(map, &mut evict)
            } else {
                self.pop_returning(map, &mut evict)
            };
            evicted += u64::from(gone);
        }
        evicted
    }

    /// Takes the oldest first-visit id: a session seen again moves to the
    /// returning queue, any other entry is evicted. True if one was.
    fn pop_first(&mut self, map: &Map, evict: &mut impl FnMut(&SessionId) -> bool) -> bool {
        let Some(id) = self.first.pop_front() else {
            return false;
        };
        match take_seen(map, &id) {
            None => false,
            Some(true) => {
                self.returning.push_back(id);
                false
            }
            Some(false) => evict(&id),
        }
    }

    /// Takes the oldest returning id: a session seen since its last pass
    /// goes round again, any other entry is evicted. True if one was.
    fn pop_returning(&mut self, map: &Map, evict: &mut impl FnMut(&SessionId) -> bool) -> bool {
        // Each pass clears the mark of the session it sends round, so at
        // most one full turn passes before an entry goes.
        while let Some(id) = self.returning.pop_front() {
            match take_seen(map, &id) {
                None => {}
                Some(true) => self.returning.push_back(id),
                Some(false) => return evict(&id),
            }
        }
        false
    }

    /// Forgets the ids the map no longer holds (after a sweep).
    pub(crate) fn retain_held(&mut self, map: &Map) {
        self.first.retain(|id| map.contains_key(id));
        self.returning.retain(|id| map.contains_key(id));
    }
}

/// Whether the entry under `id` was seen, clearing the mark; `None` if the
/// map no longer holds it.
fn take_seen(map: &Map, id: &SessionId) -> Option<bool> {
    map.get(id)
        .map(|held| held.seen.swap(false, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_sessions_core::store::UnixTime;

    fn id(n: u32) -> SessionId {
        let mut bytes = [0; 16];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        SessionId(bytes)
    }

    fn add(segments: &mut Segments, map: &Map, n: u32) -> u64 {
        let marker = Entry::Renewed {
            until: UnixTime::from_secs(1),
        };
        map.insert(id(n), Held::new(marker));
        segments.admit(id(n), map, |id| map.remove(id).is_some())
    }

    fn see(map: &Map, n: u32) {
        if let Some(held) = map.get(&id(n)) {
            held.mark_seen();
        }
    }

    fn map() -> Map {
        DashMap::with_hasher(RandomIdHash)
    }

    #[test]
    fn a_flood_of_first_visits_evicts_only_first_visits() {
        let (mut segments, map) = (Segments::new(20), map());
        for n in 0..5 {
            add(&mut segments, &map, n);
            see(&map, n);
        }
        let evicted: u64 = (100..1_100).map(|n| add(&mut segments, &map, n)).sum();
        assert_eq!(evicted, 1_000 + 5 - 20);
        assert_eq!(map.len(), 20);
        for n in 0..5 {
            assert!(map.contains_key(&id(n)), "returning session {n} evicted");
        }
        assert_eq!(segments.returning.len(), 5);
    }

    #[test]
    fn the_first_visit_queue_keeps_its_floor_against_returning_sessions() {
        let (mut segments, map) = (Segments::new(10), map());
        // Twenty sessions that all come back: the returning queue takes
        // nine places and the newest first visit keeps the tenth.
        for n in 0..20 {
            add(&mut segments, &map, n);
            see(&map, n);
        }
        assert_eq!(map.len(), 10);
        assert_eq!(segments.first.len(), 1);
        assert!(map.contains_key(&id(19)));
    }

    #[test]
    fn a_returning_session_seen_again_gets_a_second_chance() {
        let (mut segments, map) = (Segments::new(10), map());
        for n in 0..9 {
            add(&mut segments, &map, n);
            see(&map, n);
        }
        // Pushes the nine into the returning queue, marks cleared.
        add(&mut segments, &map, 9);
        add(&mut segments, &map, 10);
        assert_eq!(segments.returning.len(), 9);
        // Only session 0 comes back; when the returning queue must give a
        // place, it goes round and session 1 goes.
        see(&map, 0);
        see(&map, 10);
        add(&mut segments, &map, 11);
        assert!(map.contains_key(&id(0)));
        assert!(!map.contains_key(&id(1)));
        assert_eq!(map.len(), 10);
    }

    #[test]
    fn ids_gone_from_the_map_are_skipped_and_swept() {
        let (mut segments, map) = (Segments::new(3), map());
        for n in 0..3 {
            add(&mut segments, &map, n);
        }
        map.remove(&id(0));
        // Id 0 is at the front: dropping it makes room, nothing evicted.
        assert_eq!(add(&mut segments, &map, 3), 0);
        map.remove(&id(1));
        segments.retain_held(&map);
        assert_eq!(segments.first.len(), 2);
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let (mut segments, map) = (Segments::new(0), map());
        assert_eq!(segments.capacity(), 1);
        add(&mut segments, &map, 0);
        see(&map, 0);
        assert_eq!(add(&mut segments, &map, 1), 1);
        assert_eq!(map.len(), 1);
    }
}
