//! The rules of one stored session, written once for every store: what an
//! id holds ([`Entry`]) and how a load, an update and a retire change it.

use crate::error::StoreError;
use crate::session::record::Record;
use crate::session::time::UnixTime;
use crate::store::{Loaded, Update, Updated};

/// What a store keeps under one id: a live session, or the marker a
/// renewed id leaves until its time.
///
/// A store that keeps whole records holds one `Entry` per id and lets its
/// methods decide: [`load`](Self::load), [`apply`](Self::apply) and
/// [`retire`](Self::retire) keep the contract's rules (expiry by the
/// caller's clock, no resurrection, a renewed id loading as renewed), so
/// the store only has to keep them atomic and reclaim dead entries
/// ([`is_dead`](Self::is_dead)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A session; it may have expired already.
    Live(Box<Record>),
    /// A renewed id, which loads as [`Loaded::Renewed`] until `until`.
    Renewed {
        /// When the marker ends.
        until: UnixTime,
    },
}

impl Entry {
    /// The entry of a newly created session.
    pub fn live(record: &Record) -> Self {
        Self::Live(Box::new(record.clone()))
    }

    /// What a load at `now` finds: the session, or that it has expired;
    /// the marker until its time, or nothing.
    pub fn load(&self, now: UnixTime) -> Option<Loaded> {
        match self {
            Entry::Live(record) if record.is_expired(now) => {
                Some(Loaded::Expired(Record::clone(record)))
            }
            Entry::Live(record) => Some(Loaded::Live(Record::clone(record))),
            Entry::Renewed { until } if *until > now => Some(Loaded::Renewed),
            Entry::Renewed { .. } => None,
        }
    }

    /// The session, if it is live at `now`.
    pub fn record(&self, now: UnixTime) -> Option<&Record> {
        match self {
            Entry::Live(record) if !record.is_expired(now) => Some(record),
            _ => None,
        }
    }

    /// Applies `update` to the session: [`StoreError::Gone`], and nothing
    /// written, unless it is live at `update.now`; [`StoreError::TooLarge`],
    /// and nothing written, if it would take the session past its bound
    /// ([`Update::check_size`]). An answer of
    /// [`Updated::Emptied`] asks the store to remove the entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] as above.
    pub fn apply(&mut self, update: &Update<'_>) -> Result<Updated, StoreError> {
        self.apply_measured(update).map(|(updated, _)| updated)
    }

    /// [`apply`](Self::apply), also answering by how much the session's
    /// [`encoded_len`](Record::encoded_len) changed: exactly, unless the
    /// update changed the flash queue (whose merge may drop messages), when
    /// it is `None` and a store that counts sizes counts again.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn apply_measured(
        &mut self,
        update: &Update<'_>,
    ) -> Result<(Updated, Option<isize>), StoreError> {
        let Entry::Live(stored) = self else {
            return Err(StoreError::Gone);
        };
        if stored.is_expired(update.now) {
            return Err(StoreError::Gone);
        }
        let (removed, added) = update.check_delta(stored)?;
        update.apply_to(stored);
        let change = (update.changes.flash.is_empty())
            .then(|| {
                isize::try_from(added)
                    .ok()?
                    .checked_sub(isize::try_from(removed).ok()?)
            })
            .flatten();
        // Concurrent removals can empty a session that each request saw
        // non-empty: an empty session is not kept.
        let updated = if stored.is_empty() {
            Updated::Emptied
        } else {
            Updated::Kept
        };
        Ok((updated, change))
    }

    /// Ends the session because it was renewed: the entry becomes the
    /// marker of a renewed id until `until`, and the session is returned
    /// (its user's index loses it). A marker already past its time at
    /// `now` is dead at once: the store may drop it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] unless the session is live at `now`.
    pub fn retire(&mut self, now: UnixTime, until: UnixTime) -> Result<Box<Record>, StoreError> {
        if self.record(now).is_none() {
            return Err(StoreError::Gone);
        }
        match std::mem::replace(self, Entry::Renewed { until }) {
            Entry::Live(record) => Ok(record),
            Entry::Renewed { .. } => Err(StoreError::Gone),
        }
    }

    /// The user the session is bound to, if it is a session.
    pub fn user(&self) -> Option<&str> {
        match self {
            Entry::Live(record) => record.user.as_deref(),
            Entry::Renewed { .. } => None,
        }
    }

    /// When the entry stops counting: the session's expiry or the marker's
    /// end. Past it the store may reclaim it.
    pub fn deadline(&self) -> UnixTime {
        match self {
            Entry::Live(record) => record.expires,
            Entry::Renewed { until } => *until,
        }
    }

    /// Whether the entry is past its [`deadline`](Self::deadline) at `now`.
    pub fn is_dead(&self, now: UnixTime) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::changes::Changes;
    use crate::session::value::Value;

    fn at(secs: u64) -> UnixTime {
        UnixTime::from_secs(1_000 + secs)
    }

    fn record() -> Record {
        let mut r = Record::empty(at(0), at(10), 4);
        r.data.insert(
            "k".into(),
            Value::encode("v").unwrap_or_else(|_| unreachable!()),
        );
        r
    }

    fn update<'a>(record: &'a Record, changes: &'a Changes, now: u64) -> Update<'a> {
        Update {
            record,
            changes,
            expires: at(20),
            ends: at(100),
            now: at(now),
            stored_user: None,
            max_size: usize::MAX,
        }
    }

    #[test]
    fn a_session_loads_until_it_expires_and_a_marker_until_its_end() {
        let live = Entry::live(&record());
        assert_eq!(live.load(at(9)), Some(Loaded::Live(record())));
        assert_eq!(live.load(at(10)), Some(Loaded::Expired(record())));
        let marker = Entry::Renewed { until: at(5) };
        assert_eq!(marker.load(at(4)), Some(Loaded::Renewed));
        assert_eq!(marker.load(at(5)), None);
        assert!(marker.is_dead(at(5)) && !marker.is_dead(at(4)));
    }

    #[test]
    fn only_a_live_session_takes_an_update() {
        let changes = Changes::default();
        let r = record();
        let mut live = Entry::live(&r);
        assert_eq!(
            live.apply(&update(&r, &changes, 9)).ok(),
            Some(Updated::Kept)
        );
        assert_eq!(live.deadline(), at(20), "the update's expiry");
        let mut expired = Entry::live(&r);
        assert!(matches!(
            expired.apply(&update(&r, &changes, 10)),
            Err(StoreError::Gone)
        ));
        assert_eq!(expired, Entry::live(&r), "nothing written");
        let mut marker = Entry::Renewed { until: at(50) };
        assert!(matches!(
            marker.apply(&update(&r, &changes, 1)),
            Err(StoreError::Gone)
        ));
    }

    #[test]
    fn an_update_that_empties_the_session_says_so() {
        let stored = record();
        let emptied = Record::empty(at(0), at(10), 4);
        let changes = Changes {
            keys: vec!["k".into()],
            ..Changes::default()
        };
        let mut entry = Entry::live(&stored);
        assert_eq!(
            entry.apply(&update(&emptied, &changes, 1)).ok(),
            Some(Updated::Emptied)
        );
    }

    #[test]
    fn retire_leaves_a_marker_once() {
        let mut entry = Entry::live(&record());
        assert_eq!(entry.retire(at(1), at(60)).ok().map(|r| *r), Some(record()));
        assert_eq!(entry, Entry::Renewed { until: at(60) });
        assert!(matches!(entry.retire(at(2), at(70)), Err(StoreError::Gone)));
        let mut expired = Entry::live(&record());
        assert!(matches!(
            expired.retire(at(10), at(70)),
            Err(StoreError::Gone)
        ));
    }
}
