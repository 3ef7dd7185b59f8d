//! [`Table`]: the whole store contract over one map, for a store that
//! keeps its sessions in process and makes each call atomic with one lock.

use std::collections::HashMap;

use crate::error::StoreError;
use crate::session::id::SessionId;
use crate::session::record::Record;
use crate::session::time::UnixTime;
use crate::store::{EndAll, Ended, Entry, Loaded, Update, Updated, UserLedger};

/// Sessions by id, as [`Entry`]s, and whose they are, in a
/// [`UserLedger`]: each method is the [`SessionStore`] or [`UserIndex`]
/// call of the same name, synchronous. Put it behind a lock and the store
/// is done (`examples/custom_store.rs`). Entries past their time stay
/// until [`sweep`](Self::sweep).
///
/// [`SessionStore`]: crate::store::SessionStore
/// [`UserIndex`]: crate::store::UserIndex
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<SessionId, Entry>,
    users: UserLedger,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`SessionStore::load`](crate::store::SessionStore::load).
    pub fn load(&self, id: &SessionId, now: UnixTime) -> Option<Loaded> {
        self.entries.get(id)?.load(now)
    }

    /// As [`SessionStore::create`](crate::store::SessionStore::create).
    ///
    /// # Errors
    ///
    /// [`StoreError::Exists`] if `id` holds anything, [`StoreError::Gone`]
    /// for a binding of an ended generation.
    pub fn create(
        &mut self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        if self.entries.contains_key(id) {
            return Err(StoreError::Exists);
        }
        self.write(id, Some(Entry::live(record)), ends)
    }

    /// As [`SessionStore::update`](crate::store::SessionStore::update).
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if no live session is under `id`, or for a
    /// binding of an ended generation.
    pub fn update(&mut self, id: &SessionId, update: &Update<'_>) -> Result<Updated, StoreError> {
        let mut entry = self.entries.get(id).cloned().ok_or(StoreError::Gone)?;
        let updated = entry.apply(update)?;
        let kept = (updated == Updated::Kept).then_some(entry);
        self.write(id, kept, update.ends)?;
        Ok(updated)
    }

    /// As [`SessionStore::retire`](crate::store::SessionStore::retire).
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if no live session is under `id` at `now`.
    pub fn retire(
        &mut self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<(), StoreError> {
        let mut entry = self.entries.get(id).cloned().ok_or(StoreError::Gone)?;
        entry.retire(now, until)?;
        self.write(id, Some(entry), until)
    }

    /// As [`SessionStore::delete`](crate::store::SessionStore::delete).
    pub fn delete(&mut self, id: &SessionId) {
        // Removing nothing binds nothing: this cannot be refused.
        let _ = self.write(id, None, UnixTime::default());
    }

    /// As [`UserIndex::list`](crate::store::UserIndex::list).
    pub fn list(&self, user: &str, now: UnixTime) -> Vec<(SessionId, Record)> {
        let live = |id| Some((id, self.entries.get(&id)?.record(now)?.clone()));
        self.users.ids(user).into_iter().filter_map(live).collect()
    }

    /// As [`UserIndex::end`](crate::store::UserIndex::end).
    pub fn end(&mut self, user: &str, id: &SessionId, now: UnixTime) -> bool {
        let theirs = self
            .entries
            .get(id)
            .and_then(|entry| entry.record(now))
            .is_some_and(|record| record.user.as_deref() == Some(user));
        if theirs {
            self.delete(id);
        }
        theirs
    }

    /// As [`UserIndex::end_all`](crate::store::UserIndex::end_all).
    pub fn end_all(&mut self, user: &str, end: &EndAll<'_>) -> Ended {
        let (generation, ids) = self.users.end_all(user, end.floor, end.remember_until);
        let mut sessions = 0;
        for id in ids {
            let Some(Entry::Live(record)) = self.entries.get_mut(&id) else {
                continue;
            };
            if record.user.as_deref() != Some(user) {
                continue;
            }
            if end.keep == Some(&id) {
                record.generation = generation;
                let ends = record.expires;
                // Of the new generation, so it is admitted.
                let _ = self.users.admit(user, id, generation, ends);
            } else {
                sessions += usize::from(!record.is_expired(end.now));
                self.entries.remove(&id);
            }
        }
        Ended {
            sessions,
            generation,
        }
    }

    /// Drops the entries past their time at `now`, and the users the
    /// ledger no longer needs.
    pub fn sweep(&mut self, now: UnixTime) {
        let users = &mut self.users;
        self.entries.retain(|id, entry| {
            let dead = entry.is_dead(now);
            if let (true, Some(user)) = (dead, entry.user()) {
                users.leave(user, id);
            }
            !dead
        });
        users.sweep(now);
    }

    /// How many ids hold something.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no id holds anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every write: `after` under `id` (`None` removes it), the ledger
    /// following; a refused binding writes nothing.
    fn write(
        &mut self,
        id: &SessionId,
        mut after: Option<Entry>,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        self.users
            .follow(*id, self.entries.get(id), after.as_mut(), ends)?;
        match after {
            Some(entry) => self.entries.insert(*id, entry),
            None => self.entries.remove(id),
        };
        Ok(())
    }
}
