//! The bound: which entries go when the store is full ([`Segments`]).
//!
//! Three queues of ids. Anonymous entries (renewed ids' markers included)
//! all go before any signed-in user's session: a flood of anonymous
//! sessions, however often each comes back, evicts only its own kind.
//! Among anonymous ones, a new entry waits in the *first-visit* queue and
//! moves to the *returning* one if loaded before it reaches the front
//! (S3-FIFO without its ghost queue); signed-in sessions wait in a third,
//! the least recently seen going first. docs/memory.md says why.

use std::collections::VecDeque;

use http_sessions_core::store::SessionId;

use crate::map::{Map, Usage};

/// How many entries of each kind were evicted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evicted {
    /// Anonymous sessions and renewed ids' markers.
    pub(crate) anonymous: u64,
    /// Sessions bound to a user: each of those users was logged out.
    pub(crate) signed_in: u64,
}

impl Evicted {
    pub(crate) fn total(self) -> u64 {
        self.anonymous.saturating_add(self.signed_in)
    }

    fn count(&mut self, bound: bool) {
        let kind = if bound {
            &mut self.signed_in
        } else {
            &mut self.anonymous
        };
        *kind += 1;
    }
}

/// The three queues, behind the store's one lock for creates.
///
/// Every id in the map is in a queue of its kind; an id may also linger in
/// a queue it left (a session bound or unbound since, or removed) until it
/// reaches the front, or until such ids fill as many places as the
/// capacity and are dropped at once.
pub(crate) struct Segments {
    first: VecDeque<SessionId>,
    returning: VecDeque<SessionId>,
    users: VecDeque<SessionId>,
    capacity: usize,
    /// The first-visit queue keeps at least this many places against the
    /// returning one, so a new visitor has time to come back.
    first_floor: usize,
}

impl Segments {
    /// Queues for at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            first: VecDeque::new(),
            returning: VecDeque::new(),
            users: VecDeque::new(),
            capacity,
            first_floor: (capacity / 10).max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn len(&self) -> usize {
        self.first.len() + self.returning.len() + self.users.len()
    }

    /// Queues `id`, just stored in `map` (bound to a user or not), then
    /// evicts as [`fit`](Self::fit) does.
    pub(crate) fn admit(
        &mut self,
        id: SessionId,
        bound: bool,
        map: &Map,
        usage: &Usage,
        max_bytes: usize,
        evict: impl FnMut(&SessionId) -> Option<bool>,
    ) -> Evicted {
        self.requeue(id, bound, map);
        self.fit(map, usage, max_bytes, evict)
    }

    /// Queues `id` as bound to a user or not: after a create, or after a
    /// session was bound or unbound (under this lock, which every change of
    /// binding takes). Its old place is skipped when it reaches the front.
    pub(crate) fn requeue(&mut self, id: SessionId, bound: bool, map: &Map) {
        if bound {
            self.users.push_back(id);
        } else {
            self.first.push_back(id);
        }
        // Places the map no longer fills, dropped once they are as many as
        // the capacity: each drop pays for that many pushes.
        if self.len() > self.capacity.saturating_mul(2) {
            self.retain_held(map);
        }
    }

    /// Evicts until `usage` holds at most `capacity` entries and
    /// `max_bytes`: anonymous entries while any are queued, then signed-in
    /// sessions. `evict` removes an entry from the map (and from its user's
    /// sessions and from `usage`) and says whether it was bound, or `None`
    /// if there was none.
    ///
    /// Takes the map's shard locks while `self` is locked, never the other
    /// way round: no caller holds a shard lock when it calls this.
    pub(crate) fn fit(
        &mut self,
        map: &Map,
        usage: &Usage,
        max_bytes: usize,
        mut evict: impl FnMut(&SessionId) -> Option<bool>,
    ) -> Evicted {
        let mut evicted = Evicted::default();
        while usage.entries() > self.capacity || usage.bytes() > max_bytes {
            let anonymous = !self.first.is_empty() || !self.returning.is_empty();
            let id = if anonymous {
                if self.first.len() > self.first_floor || self.returning.is_empty() {
                    self.pop_first(map)
                } else {
                    pop_unseen(&mut self.returning, map, false)
                }
            } else if self.users.is_empty() {
                // Every entry is queued while this lock is held, so the map
                // is empty: nothing is left to evict.
                break;
            } else {
                pop_unseen(&mut self.users, map, true)
            };
            if let Some(bound) = id.and_then(|id| evict(&id)) {
                evicted.count(bound);
            }
        }
        evicted
    }

    /// Takes the oldest first-visit id: an anonymous session seen again
    /// moves to the returning queue, and any other anonymous entry is the
    /// one to evict.
    fn pop_first(&mut self, map: &Map) -> Option<SessionId> {
        let id = self.first.pop_front()?;
        match place(map, &id, false)? {
            true => {
                self.returning.push_back(id);
                None
            }
            false => Some(id),
        }
    }

    /// Forgets the places the map no longer fills: ids it no longer
    /// holds, or holds as the other kind.
    pub(crate) fn retain_held(&mut self, map: &Map) {
        let fills =
            |id: &SessionId, bound: bool| map.get(id).is_some_and(|held| held.is_bound() == bound);
        self.first.retain(|id| fills(id, false));
        self.returning.retain(|id| fills(id, false));
        self.users.retain(|id| fills(id, true));
    }
}

/// Takes the oldest id of `queue` (of entries bound or not as `bound`
/// says) that was not seen since its last pass: one seen goes round again,
/// its mark cleared, so at most one full turn passes before one is
/// returned. `None` if the queue ran out.
fn pop_unseen(queue: &mut VecDeque<SessionId>, map: &Map, bound: bool) -> Option<SessionId> {
    while let Some(id) = queue.pop_front() {
        match place(map, &id, bound) {
            None => {}
            Some(true) => queue.push_back(id),
            Some(false) => return Some(id),
        }
    }
    None
}

/// Whether the entry under `id` was seen, clearing the mark; `None` if the
/// map no longer holds it or holds it as the other kind (it was queued
/// again in the queue of that kind).
fn place(map: &Map, id: &SessionId, bound: bool) -> Option<bool> {
    let held = map.get(id)?;
    (held.is_bound() == bound).then(|| held.take_seen())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Held, map};
    use http_sessions_core::store::{Entry, Record, UnixTime};

    fn id(n: u32) -> SessionId {
        let mut bytes = [0; 16];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        SessionId::from_bytes(bytes)
    }

    /// Queues over a map, under the count bound alone.
    struct Store {
        segments: Segments,
        map: Map,
        usage: Usage,
    }

    fn store(capacity: usize) -> Store {
        Store {
            segments: Segments::new(capacity),
            map: map(),
            usage: Usage::default(),
        }
    }

    fn signed_in(user: &str) -> Entry {
        let mut record = Record::empty(UnixTime::from_secs(0), UnixTime::from_secs(9), 4);
        record.user = Some(user.into());
        Entry::Live(Box::new(record))
    }

    impl Store {
        /// Stores entry `n`, a marker if anonymous or a session of user
        /// `n`, and admits it.
        fn add(&mut self, n: u32, bound: bool) -> Evicted {
            let slot = if bound {
                signed_in(&n.to_string())
            } else {
                Entry::Renewed {
                    until: UnixTime::from_secs(1),
                }
            };
            self.map.insert(id(n), Held::new(slot, &self.usage));
            let (map, usage) = (&self.map, &self.usage);
            self.segments
                .admit(id(n), bound, map, usage, usize::MAX, |id| {
                    evict(map, usage, id)
                })
        }

        fn see(&self, n: u32) {
            if let Some(held) = self.map.get(&id(n)) {
                held.mark_seen();
            }
        }

        fn holds(&self, n: u32) -> bool {
            self.map.contains_key(&id(n))
        }
    }

    fn evict(map: &Map, usage: &Usage, id: &SessionId) -> Option<bool> {
        let (_, held) = map.remove(id)?;
        held.leave(usage);
        Some(held.is_bound())
    }

    fn anonymous(n: u64) -> Evicted {
        Evicted {
            anonymous: n,
            signed_in: 0,
        }
    }

    #[test]
    fn a_flood_of_first_visits_evicts_only_first_visits() {
        let mut store = store(20);
        for n in 0..5 {
            store.add(n, false);
            store.see(n);
        }
        let evicted: u64 = (100..1_100).map(|n| store.add(n, false).anonymous).sum();
        assert_eq!(evicted, 1_000 + 5 - 20);
        assert_eq!(store.map.len(), 20);
        for n in 0..5 {
            assert!(store.holds(n), "returning session {n} evicted");
        }
        assert_eq!(store.segments.returning.len(), 5);
    }

    #[test]
    fn anonymous_entries_that_come_back_never_evict_a_signed_in_one() {
        let mut store = store(20);
        for n in 0..10 {
            store.add(n, true);
        }
        // Each anonymous entry comes back, again and again, before the
        // next one arrives; the signed-in ones are idle.
        for n in 100..2_100 {
            assert_eq!(store.add(n, false).signed_in, 0, "at {n}");
            for _ in 0..3 {
                store.see(n);
            }
        }
        for n in 0..10 {
            assert!(store.holds(n), "signed-in session {n} evicted");
        }
        assert_eq!(store.map.len(), 20);
    }

    #[test]
    fn signed_in_sessions_go_when_nothing_anonymous_is_left_least_recently_seen_first() {
        let mut store = store(3);
        for n in 0..3 {
            store.add(n, true);
        }
        store.see(0);
        // Nothing anonymous: the oldest not seen since goes.
        assert_eq!(store.add(3, true).signed_in, 1);
        assert!(!store.holds(1));
        assert!(store.holds(0));
        // An anonymous newcomer is the only anonymous entry: it is the one
        // that goes, not a signed-in session.
        assert_eq!(store.add(4, false), anonymous(1));
        assert!(!store.holds(4));
        assert_eq!(store.map.len(), 3);
    }

    #[test]
    fn an_entry_queued_again_is_evicted_as_its_new_kind() {
        let mut store = store(3);
        store.add(0, false);
        store.add(1, true);
        store.add(2, true);
        // Entry 0 signs in: its first-visit place is skipped, and the
        // anonymous newcomer goes instead of it.
        if let Some(mut held) = store.map.get_mut(&id(0)) {
            held.slot = signed_in("ada");
        }
        store.segments.requeue(id(0), true, &store.map);
        assert_eq!(store.add(3, false), anonymous(1));
        for n in 0..3 {
            assert!(store.holds(n), "{n}");
        }
        // Its old place does not count: an anonymous entry fits beside
        // the three without evicting.
        let mut store = self::store(4);
        store.add(0, false);
        if let Some(mut held) = store.map.get_mut(&id(0)) {
            held.slot = signed_in("ada");
        }
        store.segments.requeue(id(0), true, &store.map);
        store.add(1, true);
        store.add(2, false);
        assert_eq!(store.add(3, false), anonymous(0));
    }

    #[test]
    fn places_left_behind_are_dropped_once_they_fill_the_capacity() {
        let mut store = store(10);
        for n in 0..5 {
            store.add(n, false);
        }
        for round in 0..100 {
            let n = 100 + round;
            store.add(n, false);
            evict(&store.map, &store.usage, &id(n));
        }
        assert!(store.segments.len() <= 20, "{}", store.segments.len());
        assert_eq!(store.map.len(), 5);
    }

    #[test]
    fn the_first_visit_queue_keeps_its_floor_against_returning_sessions() {
        let mut store = store(10);
        // Twenty sessions that all come back: the returning queue takes
        // nine places and the newest first visit keeps the tenth.
        for n in 0..20 {
            store.add(n, false);
            store.see(n);
        }
        assert_eq!(store.map.len(), 10);
        assert_eq!(store.segments.first.len(), 1);
        assert!(store.holds(19));
    }

    #[test]
    fn a_returning_session_seen_again_gets_a_second_chance() {
        let mut store = store(10);
        for n in 0..9 {
            store.add(n, false);
            store.see(n);
        }
        // Pushes the nine into the returning queue, marks cleared.
        store.add(9, false);
        store.add(10, false);
        assert_eq!(store.segments.returning.len(), 9);
        // Only session 0 comes back; when the returning queue must give a
        // place, it goes round and session 1 goes.
        store.see(0);
        store.see(10);
        store.add(11, false);
        assert!(store.holds(0));
        assert!(!store.holds(1));
        assert_eq!(store.map.len(), 10);
    }

    #[test]
    fn the_byte_bound_evicts_in_the_same_order() {
        let mut store = store(100);
        for n in 0..4 {
            store.add(n, n < 2);
        }
        // Room for two entries' bytes: the two anonymous ones go, though
        // the signed-in ones are older.
        let (map, usage) = (&store.map, &store.usage);
        let signed_in_bytes: usize = (0..2)
            .filter_map(|n| map.get(&id(n)).map(|held| held.counts().0))
            .sum();
        let evicted = store
            .segments
            .fit(map, usage, signed_in_bytes, |id| evict(map, usage, id));
        assert_eq!(evicted, anonymous(2));
        assert!(store.holds(0) && store.holds(1));
        assert_eq!(store.usage.bytes(), signed_in_bytes);
    }

    #[test]
    fn ids_gone_from_the_map_are_skipped_and_swept() {
        let mut store = store(3);
        for n in 0..3 {
            store.add(n, false);
        }
        evict(&store.map, &store.usage, &id(0));
        // The map has room: nothing evicted, its place left to the front.
        assert_eq!(store.add(3, false), anonymous(0));
        assert_eq!(store.map.len(), 3);
        evict(&store.map, &store.usage, &id(1));
        store.segments.retain_held(&store.map);
        assert_eq!(store.segments.first.len(), 2);
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let mut store = store(0);
        assert_eq!(store.segments.capacity(), 1);
        store.add(0, false);
        store.see(0);
        assert_eq!(store.add(1, false), anonymous(1));
        assert_eq!(store.map.len(), 1);
    }
}
