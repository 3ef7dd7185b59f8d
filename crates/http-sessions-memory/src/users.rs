//! [`UserIndex`] for [`MemoryStore`]: listing and ending a user's
//! sessions through the ledger the store keeps with its writes.
//!
//! Each call holds the ledger while it reads or removes sessions, so no
//! binding can move under it; a session is ended only if the map itself
//! says it is the user's, whatever the ledger's ids say.

use async_trait::async_trait;
use dashmap::mapref::entry::Entry as MapEntry;
use http_sessions_core::store::{
    EndAll, Ended, Entry, Record, SessionId, StoreError, UnixTime, UserIndex,
};

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
        self.gone(&entry.remove());
        ledger.leave(user, id);
        live
    }

    fn end_all(&self, user: &str, end: &EndAll<'_>) -> Ended {
        let (keep, now) = (end.keep, end.now);
        let mut ledger = self.ledger();
        let (generation, ids) = ledger.end_all(user, end.floor, end.remember_until);
        let mut ended = 0;
        for id in ids {
            let MapEntry::Occupied(mut entry) = self.sessions.entry(id) else {
                continue;
            };
            let Entry::Live(record) = &mut entry.get_mut().slot else {
                continue;
            };
            // Never another user's (the ledger follows the map under this
            // lock), and checked anyway: that is the contract.
            if record.user.as_deref() != Some(user) {
                continue;
            }
            // Every listed session is of an older generation: each was
            // admitted under the ledger's lock before it was taken here.
            if Some(&id) == keep {
                // Kept, in the new generation: a later request loads it so,
                // and the answer hands it to the request that kept it, so
                // either may renew it or change its expiry.
                record.generation = record.generation.max(generation);
                let (generation, expires) = (record.generation, record.expires);
                if ledger.admit(user, id, generation, expires).is_err() {
                    self.gone(&entry.remove());
                }
                continue;
            }
            ended += usize::from(!record.is_expired(now));
            self.gone(&entry.remove());
        }
        Ended {
            sessions: ended,
            generation,
        }
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

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError> {
        Ok(self.inner.end_all(user, &end))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_sessions_core::FlashLevel;
    use http_sessions_core::store::{Changes, FlashChanges, SessionStore, Update, Updated};

    use super::*;

    const T0: UnixTime = UnixTime::from_secs(1_000_000);
    const ENDS: UnixTime = UnixTime::from_secs(1_000_000 + 3_600);

    fn at(secs: u64) -> UnixTime {
        T0 + Duration::from_secs(secs)
    }

    fn id(n: u32) -> SessionId {
        let mut bytes = [7; 16];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        SessionId::from_bytes(bytes)
    }

    /// A session of `user` (not empty: one flash message), ending at
    /// `at(expires)`, of `generation`.
    fn bound(user: Option<&str>, generation: u64, expires: u64) -> Record {
        let mut r = Record::empty(T0, at(expires), 4);
        r.flash.push(FlashLevel::Info, "x".into());
        r.user = user.map(Into::into);
        r.generation = generation;
        r
    }

    async fn login(store: &MemoryStore, n: u32, user: &str) {
        store
            .create(&id(n), &bound(Some(user), 0, 100), ENDS)
            .await
            .unwrap();
    }

    fn ids(store: &MemoryStore, user: &str) -> Vec<SessionId> {
        let mut ids = store.inner.ledger().ids(user);
        ids.sort_by_key(|id| *id.as_bytes());
        ids
    }

    /// The generation an `end_all` at `at(secs)` moves to, as the layer
    /// asks: past that second's first millisecond.
    fn raised(secs: u64) -> u64 {
        at(secs).as_secs() * 1000 + 1
    }

    /// Ends `user`'s sessions but `keep` at `at(secs)`, as the layer asks;
    /// how many live ones ended.
    async fn end_all(store: &MemoryStore, user: &str, keep: Option<u32>, secs: u64) -> usize {
        let keep = keep.map(id);
        let end = EndAll {
            keep: keep.as_ref(),
            now: at(secs),
            floor: raised(secs),
            remember_until: at(secs) + Duration::from_secs(86_400),
        };
        let ended = UserIndex::end_all(store, user, end).await.unwrap();
        assert_eq!(ended.generation, raised(secs));
        ended.sessions
    }

    async fn generation(store: &MemoryStore, n: u32) -> Option<u64> {
        match store.load(&id(n), at(0)).await.unwrap() {
            Some(http_sessions_core::store::Loaded::Live(r)) => Some(r.generation),
            _ => None,
        }
    }

    /// Rebinds session `n`, loaded bound to `from`, to `to`, with the
    /// generation the request carries.
    async fn rebind(
        store: &MemoryStore,
        n: u32,
        from: Option<&str>,
        to: Option<&str>,
        carried: u64,
    ) -> Result<Updated, StoreError> {
        let record = bound(to, carried, 100);
        let changes = Changes {
            binding: true,
            ..Changes::default()
        };
        let update = Update {
            record: &record,
            changes: &changes,
            expires: at(100),
            ends: ENDS,
            now: at(1),
            stored_user: from,
            max_size: usize::MAX,
        };
        store.update(&id(n), update).await
    }

    #[tokio::test]
    async fn the_ledger_holds_no_more_ids_than_the_store_holds_sessions() {
        let store = MemoryStore::with_capacity(1_000).unwrap();
        for n in 0..20_000 {
            login(&store, n, "ada").await;
        }
        assert!(store.len() <= 1_000, "{} sessions", store.len());
        assert_eq!(ids(&store, "ada").len(), store.len(), "evictions leave it");
        assert_eq!(store.evictions(), 19_000);
        assert_eq!(store.inner.ledger().len(), 1);
    }

    #[tokio::test]
    async fn a_bound_session_leaves_its_user_however_it_goes() {
        let store = MemoryStore::new();
        for n in 1..=6 {
            login(&store, n, "ada").await;
        }
        store
            .create(&id(9), &bound(None, 0, 100), ENDS)
            .await
            .unwrap();
        assert_eq!(ids(&store, "ada").len(), 6);
        assert!(
            ids(&store, "").is_empty(),
            "anonymous sessions are not listed"
        );

        store
            .retire(&id(1), at(1), at(60), Some("ada"))
            .await
            .unwrap();
        store.delete(&id(2), Some("ada")).await.unwrap();
        // A request that loaded it before it was bound still unlists it.
        store.delete(&id(3), None).await.unwrap();
        let empty = bound(Some("ada"), 1, 100);
        // Unbound, and its one message read: nothing is left to keep.
        let emptied = Record {
            flash: Default::default(),
            user: None,
            generation: 0,
            ..empty
        };
        let changes = Changes {
            flash: FlashChanges {
                taken: vec![1],
                pushed: vec![],
            },
            binding: true,
            ..Changes::default()
        };
        let update = Update {
            record: &emptied,
            changes: &changes,
            expires: at(100),
            ends: ENDS,
            now: at(1),
            stored_user: Some("ada"),
            max_size: usize::MAX,
        };
        assert_eq!(
            store.update(&id(4), update).await.ok(),
            Some(Updated::Emptied)
        );
        assert!(store.end("ada", &id(5), at(1)).await.unwrap());
        assert_eq!(ids(&store, "ada"), [id(6)]);
        assert_eq!(
            store.sweep(at(100)),
            3,
            "the marker, session 6, the anonymous one"
        );
        assert!(store.inner.ledger().is_empty());
    }

    #[tokio::test]
    async fn a_binding_is_stamped_and_an_ended_generation_refused() {
        let store = MemoryStore::new();
        login(&store, 1, "ada").await;
        assert_eq!(generation(&store, 1).await, Some(1), "stamped by the store");
        assert_eq!(end_all(&store, "ada", None, 1).await, 1);
        assert_eq!(store.len(), 0);
        // A renew of the ended session carries its generation.
        let renewed = bound(Some("ada"), 1, 100);
        assert!(matches!(
            store.create(&id(2), &renewed, ENDS).await,
            Err(StoreError::Gone)
        ));
        assert_eq!(store.len(), 0, "nothing stored");
        assert!(ids(&store, "ada").is_empty());
        // A new login is of the new generation.
        login(&store, 3, "ada").await;
        assert_eq!(generation(&store, 3).await, Some(raised(1)));
        // An id already taken is Exists, before any generation.
        assert!(matches!(
            store.create(&id(3), &renewed, ENDS).await,
            Err(StoreError::Exists)
        ));
    }

    #[tokio::test]
    async fn a_rebinding_moves_the_session_or_writes_nothing() {
        let store = MemoryStore::new();
        login(&store, 1, "ada").await;
        login(&store, 2, "bob").await;
        end_all(&store, "bob", Some(2), 1).await;
        assert_eq!(
            generation(&store, 2).await,
            Some(raised(1)),
            "kept, restamped"
        );

        assert_eq!(
            rebind(&store, 1, Some("ada"), Some("bob"), 0).await.ok(),
            Some(Updated::Kept)
        );
        assert!(ids(&store, "ada").is_empty());
        assert_eq!(ids(&store, "bob"), [id(1), id(2)]);
        assert_eq!(
            generation(&store, 1).await,
            Some(raised(1)),
            "bob's generation"
        );

        // To carol, a new binding: admitted. Then to dave carrying dave's
        // ended generation: refused, and it stays carol's.
        assert!(matches!(
            rebind(&store, 1, Some("bob"), Some("carol"), 0).await,
            Ok(Updated::Kept)
        ));
        login(&store, 3, "dave").await;
        end_all(&store, "dave", None, 1).await;
        assert!(matches!(
            rebind(&store, 1, Some("carol"), Some("dave"), 1).await,
            Err(StoreError::Gone)
        ));
        assert_eq!(ids(&store, "carol"), [id(1)]);
        assert!(ids(&store, "dave").is_empty());

        // Unbound: it leaves every user and stays.
        assert!(rebind(&store, 1, Some("carol"), None, 0).await.is_ok());
        assert!(ids(&store, "carol").is_empty());
        assert_eq!(generation(&store, 1).await, Some(0));
    }

    #[tokio::test]
    async fn end_and_end_all_never_touch_another_users_session() {
        let store = MemoryStore::new();
        login(&store, 1, "ada").await;
        login(&store, 2, "ada").await;
        login(&store, 3, "bob").await;
        assert!(!store.end("ada", &id(3), at(1)).await.unwrap());
        assert!(!store.end("ada", &id(99), at(1)).await.unwrap());
        // Session 2 rebound to bob: ada's end_all no longer reaches it.
        rebind(&store, 2, Some("ada"), Some("bob"), 0)
            .await
            .unwrap();
        assert_eq!(end_all(&store, "ada", None, 1).await, 1);
        assert_eq!(generation(&store, 2).await, Some(1));
        assert_eq!(generation(&store, 3).await, Some(1));
        let listed = store.list("bob", at(1)).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(store.list("ada", at(1)).await.unwrap().is_empty());
        // Expired sessions are not listed, nor counted as ended.
        assert!(store.list("bob", at(100)).await.unwrap().is_empty());
        assert_eq!(end_all(&store, "bob", None, 100).await, 0);
        assert_eq!(store.len(), 0);
    }
}
