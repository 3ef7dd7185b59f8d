//! [`UserIndex`] for [`MemoryStore`]: listing and ending a user's
//! sessions through the ledger the store keeps with its writes.
//!
//! Each call holds the ledger while it reads or removes sessions, so no
//! binding can move under it; a session is ended only if the map itself
//! says it is the user's, whatever the ledger's ids say.

use async_trait::async_trait;
use dashmap::mapref::entry::Entry as MapEntry;
use http_sessions_core::store::{Entry, Record, SessionId, StoreError, UnixTime, UserIndex};

use crate::{Inner, MemoryStore};

impl Inner {
    fn list(&self, user: &str, now: UnixTime) -> Vec<(SessionId, Record)> {
        let ledger = self.ledger();
        ledger
            .ids(user)
            .into_iter()
            .filter_map(|id| {
                let held = self.sessions.get(&id)?;
                let record = held.slot.record(now)?;
                (record.user.as_deref() == Some(user)).then(|| (id, record.clone()))
            })
            .collect()
    }

    fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> bool {
        let mut ledger = self.ledger();
        let MapEntry::Occupied(entry) = self.sessions.entry(*id) else {
            return false;
        };
        let live = match &entry.get().slot {
            Entry::Live(record) if record.user.as_deref() == Some(user) => !record.is_expired(now),
            _ => return false,
        };
        entry.remove();
        ledger.leave(user, id);
        live
    }

    fn end_all(&self, user: &str, keep: Option<&SessionId>, now: UnixTime) -> usize {
        let mut ledger = self.ledger();
        let (generation, ids) = ledger.end_all(user);
        let mut ended = 0;
        for id in ids {
            let MapEntry::Occupied(mut entry) = self.sessions.entry(id) else {
                continue;
            };
            let Entry::Live(record) = &mut entry.get_mut().slot else {
                continue;
            };
            // A stale id: the session is another user's now.
            if record.user.as_deref() != Some(user) {
                continue;
            }
            if Some(&id) == keep || record.generation >= generation {
                // Kept, in the new generation: a later renew or change of
                // expiry of it is admitted.
                record.generation = record.generation.max(generation);
                let (generation, expires) = (record.generation, record.expires);
                if ledger.admit(user, id, generation, expires).is_err() {
                    entry.remove();
                }
                continue;
            }
            ended += usize::from(!record.is_expired(now));
            entry.remove();
        }
        ended
    }
}

#[async_trait]
impl UserIndex for MemoryStore {
    async fn list(
        &self,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        Ok(self.inner.list(user, now))
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self.inner.end(user, id, now))
    }

    async fn end_all(
        &self,
        user: &str,
        keep: Option<&SessionId>,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        Ok(self.inner.end_all(user, keep, now))
    }
}
