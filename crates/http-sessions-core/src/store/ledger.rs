//! [`UserLedger`]: the users' sessions of a store that keeps everything in
//! one process, under the same lock as its sessions.

use std::collections::{HashMap, HashSet};

use crate::error::StoreError;
use crate::session::id::SessionId;
use crate::session::time::UnixTime;
use crate::store::{Entry, next_generation};

/// Which sessions each user has, and each user's generation, for a store
/// whose sessions live in process memory: keep it under the lock that
/// guards the sessions, tell it of every binding stored
/// ([`admit`](Self::admit)) and every session that leaves
/// ([`leave`](Self::leave)), and it answers [`UserIndex`] with
/// [`end_all`](Self::end_all) and [`ids`](Self::ids).
///
/// A user's entry lives while the user has sessions, and after an
/// `end_all` until the sessions it ended would have ended anyway, so that a
/// request still carrying one cannot store it again. It costs in
/// proportion to the user's live sessions.
///
/// [`UserIndex`]: crate::store::UserIndex
#[derive(Debug, Default)]
pub struct UserLedger {
    users: HashMap<String, Sessions>,
}

#[derive(Debug)]
struct Sessions {
    /// Only grows: 1, until an `end_all` raises it.
    generation: u64,
    ids: HashSet<SessionId>,
    /// The latest end of any session the user had: until then a binding of
    /// an older generation may still come back and must be refused.
    remember_until: UnixTime,
}

impl UserLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the session under `id`, bound to `user` with
    /// `generation` (0 for a binding never stored) and ending at the latest
    /// at `ends`, is being stored. Returns the generation to store with it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if the binding is of an older generation than
    /// the user's: an `end_all` ended it, and it must not come back.
    pub fn admit(
        &mut self,
        user: &str,
        id: SessionId,
        generation: u64,
        ends: UnixTime,
    ) -> Result<u64, StoreError> {
        let sessions = match self.users.get_mut(user) {
            Some(sessions) => sessions,
            None => self.users.entry(user.to_owned()).or_insert(Sessions {
                generation: 1,
                ids: HashSet::new(),
                remember_until: ends,
            }),
        };
        if generation != 0 && generation < sessions.generation {
            return Err(StoreError::Gone);
        }
        sessions.ids.insert(id);
        sessions.remember_until = sessions.remember_until.max(ends);
        Ok(generation.max(sessions.generation))
    }

    /// Keeps the ledger in step with a write under `id` that replaces
    /// `before` by `after` (`None`: nothing is left). A binding in `after`
    /// is admitted first, its generation stamped in place, so a refused
    /// one ([`StoreError::Gone`]) is known before anything is written;
    /// then `id` leaves the sessions of `before`'s user if it is no longer
    /// theirs. `ends` is as for [`admit`](Self::admit).
    ///
    /// # Errors
    ///
    /// As [`admit`](Self::admit).
    pub fn follow(
        &mut self,
        id: SessionId,
        before: Option<&Entry>,
        after: Option<&mut Entry>,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        let mut theirs = None;
        if let Some(Entry::Live(record)) = after {
            if let Some(user) = &record.user {
                record.generation = self.admit(user, id, record.generation, ends)?;
            }
            theirs = record.user.as_deref();
        }
        if let Some(user) = before.and_then(Entry::user)
            && theirs != Some(user)
        {
            self.leave(user, &id);
        }
        Ok(())
    }

    /// Records that the session under `id` is no longer `user`'s (it
    /// ended, was renewed, or was bound to someone else).
    pub fn leave(&mut self, user: &str, id: &SessionId) {
        if let Some(sessions) = self.users.get_mut(user) {
            sessions.ids.remove(id);
            // Nothing to remember for a user never logged out everywhere.
            if sessions.ids.is_empty() && sessions.generation == 1 {
                self.users.remove(user);
            }
        }
    }

    /// The ids of `user`'s sessions.
    pub fn ids(&self, user: &str) -> Vec<SessionId> {
        self.users
            .get(user)
            .map(|s| s.ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Starts a new generation of `user`'s sessions, at least `floor` and
    /// remembered at least until `remember_until` (see
    /// [`EndAll`](crate::store::EndAll)), and hands back the new
    /// generation and the ids of the user's sessions, which the caller
    /// ends: a binding of an earlier generation is refused from now on.
    pub fn end_all(
        &mut self,
        user: &str,
        floor: u64,
        remember_until: UnixTime,
    ) -> (u64, Vec<SessionId>) {
        let sessions = self.users.entry(user.to_owned()).or_insert(Sessions {
            generation: 1,
            ids: HashSet::new(),
            remember_until,
        });
        sessions.generation = next_generation(sessions.generation, floor);
        sessions.remember_until = sessions.remember_until.max(remember_until);
        (sessions.generation, sessions.ids.drain().collect())
    }

    /// Forgets the users with no sessions whose ended sessions would all
    /// have ended by `now`.
    pub fn sweep(&mut self, now: UnixTime) {
        self.users
            .retain(|_, s| !s.ids.is_empty() || s.remember_until > now);
    }

    /// How many users the ledger holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether it holds no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    const ENDS: UnixTime = UnixTime::from_secs(100);

    #[test]
    fn a_new_binding_takes_the_users_generation_and_an_ended_one_is_refused() {
        let mut ledger = UserLedger::new();
        // Bound by a request that began at 5,000 ms.
        assert_eq!(ledger.admit("ada", id(1), 5_000, ENDS).ok(), Some(5_000));
        let (generation, ids) = ledger.end_all("ada", 9_001, ENDS);
        assert_eq!((generation, ids), (9_001, vec![id(1)]));
        // A renew of the ended session, and a login that began before the
        // end (at 9,000 ms), are refused.
        for carried in [5_000, 9_000] {
            assert!(matches!(
                ledger.admit("ada", id(2), carried, ENDS),
                Err(StoreError::Gone)
            ));
        }
        // A login that began after it is of the new generation.
        assert_eq!(ledger.admit("ada", id(3), 9_002, ENDS).ok(), Some(9_002));
        assert_eq!(ledger.ids("ada"), [id(3)]);
    }

    #[test]
    fn a_user_is_kept_only_while_needed() {
        let mut ledger = UserLedger::new();
        ledger.admit("ada", id(1), 0, ENDS).ok();
        ledger.leave("ada", &id(1));
        assert!(ledger.is_empty(), "never ended: nothing to remember");
        ledger.admit("bob", id(2), 0, ENDS).ok();
        ledger.end_all("bob", 1_001, UnixTime::from_secs(50));
        ledger.sweep(UnixTime::from_secs(99));
        assert_eq!(
            ledger.len(),
            1,
            "bob's ended sessions could still come back"
        );
        ledger.sweep(ENDS);
        assert!(ledger.is_empty());
        // A user with no session: a login under way must still be refused.
        assert_eq!(ledger.end_all("carol", 7_001, ENDS), (7_001, Vec::new()));
        assert!(matches!(
            ledger.admit("carol", id(3), 7_000, ENDS),
            Err(StoreError::Gone)
        ));
    }
}
