//! The cap on sessions per user
//! ([`with_max_sessions_per_user`](crate::SettingsBuilder::with_max_sessions_per_user)):
//! which of a user's sessions are past it. The manager keeps the cap for
//! every store through the store's [`UserIndex`](crate::store::UserIndex):
//! once a binding is stored, it lists the user's sessions and ends those
//! this module names. Every binder lists after its own write and ranks in
//! one order that depends only on what is stored, so however many logins
//! of one user run at once, the last to list sees every session and
//! leaves no more than the cap.

use std::cmp::Reverse;

use crate::config::limits::OverCap;
use crate::session::id::SessionId;
use crate::session::record::Record;
use crate::session::time::UnixTime;

/// Why a cookie backend or a store without an index cannot cap sessions.
pub(crate) const NO_INDEX: &str = "with_max_sessions_per_user needs a session store that keeps \
     an index of users' sessions (the memory, Redis and SQL stores do); sessions kept in the \
     cookie, or in a store whose SessionStore::users answers None, cannot be counted";

/// The cap, as the settings give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap {
    pub(crate) max: usize,
    pub(crate) over: OverCap,
}

impl Cap {
    /// Before a binding is written: whether the user's `live` sessions
    /// leave room for it. Only [`OverCap::Refuse`] asks, so that a refused
    /// login writes nothing; concurrent bindings can all pass here, and
    /// [`past`](Self::past) settles them.
    pub(crate) fn refuses(self, live: usize) -> bool {
        self.over == OverCap::Refuse && live >= self.max
    }

    /// The sessions of `sessions` (a user's live ones, the new binding
    /// among them) past the cap, the ones to end. With
    /// [`OverCap::EndLeastRecent`] the most recently used stay, by
    /// `last_seen`; with [`OverCap::Refuse`] the oldest stay, so that a
    /// binding that came past the cap is the one refused.
    pub(crate) fn past(
        self,
        mut sessions: Vec<(SessionId, Record)>,
        last_seen: impl Fn(&Record) -> UnixTime,
    ) -> Vec<(SessionId, Record)> {
        if sessions.len() <= self.max {
            return Vec::new();
        }
        // Times are kept in seconds, so ties are common; the generation,
        // the time in milliseconds the binding's request began, breaks
        // them in favour of the later login.
        match self.over {
            OverCap::EndLeastRecent => sessions.sort_by_key(|(id, record)| {
                Reverse((
                    last_seen(record),
                    record.generation,
                    record.created,
                    *id.as_bytes(),
                ))
            }),
            OverCap::Refuse => sessions
                .sort_by_key(|(id, record)| (record.created, record.generation, *id.as_bytes())),
        }
        sessions.split_off(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8, seen: u64, generation: u64) -> (SessionId, Record) {
        let mut record = Record::empty(UnixTime::from_secs(seen), UnixTime::from_secs(seen), 1);
        record.generation = generation;
        (SessionId::from_bytes([n; 16]), record)
    }

    fn ids(sessions: &[(SessionId, Record)]) -> Vec<u8> {
        sessions.iter().map(|(id, _)| id.as_bytes()[0]).collect()
    }

    #[test]
    fn the_least_recently_used_go_and_ties_keep_the_later_login() {
        let cap = Cap {
            max: 2,
            over: OverCap::EndLeastRecent,
        };
        let seen = |r: &Record| r.created;
        let sessions = vec![session(1, 10, 5), session(2, 30, 1), session(3, 30, 9)];
        assert_eq!(ids(&cap.past(sessions, seen)), [1]);
        let tie = vec![session(1, 30, 5), session(2, 30, 1), session(3, 30, 9)];
        assert_eq!(ids(&cap.past(tie, seen)), [2]);
        assert!(cap.past(vec![session(1, 1, 1)], seen).is_empty());
    }

    #[test]
    fn refusing_keeps_the_oldest_and_counts_before_the_write() {
        let cap = Cap {
            max: 1,
            over: OverCap::Refuse,
        };
        let sessions = vec![session(1, 20, 2), session(2, 10, 1)];
        assert_eq!(ids(&cap.past(sessions, |r| r.created)), [1]);
        assert!(cap.refuses(1) && !cap.refuses(0));
        let ending = Cap {
            max: 1,
            over: OverCap::EndLeastRecent,
        };
        assert!(!ending.refuses(5));
    }
}
