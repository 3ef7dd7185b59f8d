//! The cap on sessions per user
//! ([`with_max_sessions_per_user`](crate::SettingsBuilder::with_max_sessions_per_user)),
//! kept by the layer for every store through the store's [`UserIndex`]:
//! once a binding is stored, the user's sessions are listed and those past
//! the cap end. Every binder lists after its own write and ranks the
//! sessions in one order that all of them share, so however many logins of
//! one user run at once, the last to list sees every session and leaves no
//! more than the cap.

use std::cmp::Reverse;

use crate::config::limits::OverCap;
use crate::engine::events::EventKind;
use crate::engine::manager::SessionManager;
use crate::engine::stats::Op;
use crate::error::StoreError;
use crate::session::id::SessionId;
use crate::session::record::Record;
use crate::session::time::UnixTime;
use crate::store::{SessionStore, UserIndex};

/// Why a cookie backend or a store without an index cannot cap sessions.
const NO_INDEX: &str = "with_max_sessions_per_user needs a session store that keeps an index \
     of users' sessions (the memory, Redis and SQL stores do); sessions kept in the cookie, \
     or in a store whose SessionStore::users answers None, cannot be counted";

/// The cap, as the settings give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap {
    pub(crate) max: usize,
    pub(crate) over: OverCap,
}

impl Cap {
    /// The store's index, which the cap needs.
    fn index(store: Option<&dyn SessionStore>) -> Result<&dyn UserIndex, StoreError> {
        store
            .and_then(SessionStore::users)
            .ok_or(StoreError::Unsupported(NO_INDEX))
    }

    /// Before a binding to `user` is written, with [`OverCap::Refuse`]:
    /// [`StoreError::TooManySessions`] if the user already has the most,
    /// so that nothing is written. Concurrent bindings can all pass here;
    /// [`after`](Self::after) settles them.
    ///
    /// # Errors
    ///
    /// As above, [`StoreError::Unsupported`] without an index, and the
    /// store's errors.
    pub(crate) async fn before(
        self,
        manager: &SessionManager,
        store: Option<&dyn SessionStore>,
        user: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let index = Self::index(store)?;
        if self.over != OverCap::Refuse {
            return Ok(());
        }
        let sessions = Self::listed(manager, index, user, now).await?;
        if sessions.len() >= self.max {
            return Err(StoreError::TooManySessions { limit: self.max });
        }
        Ok(())
    }

    /// Once the binding of `own` to `user` is stored: ends the user's
    /// sessions past the cap. With [`OverCap::EndLeastRecent`] the most
    /// recently used stay; with [`OverCap::Refuse`] the oldest stay, so
    /// that a binding that came past the cap is the one refused.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if `own` was among those ended (concurrent
    /// logins of more than the cap: the others were newer),
    /// [`StoreError::TooManySessions`] if it was refused, and the store's
    /// errors.
    pub(crate) async fn after(
        self,
        manager: &SessionManager,
        store: Option<&dyn SessionStore>,
        user: &str,
        own: &SessionId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let index = Self::index(store)?;
        let mut sessions = Self::listed(manager, index, user, now).await?;
        if sessions.len() <= self.max {
            return Ok(());
        }
        // One order for every binder: it depends only on what is stored.
        match self.over {
            OverCap::EndLeastRecent => sessions.sort_by_key(|(id, record)| {
                Reverse((manager.last_seen(record), record.created, *id.as_bytes()))
            }),
            OverCap::Refuse => {
                sessions.sort_by_key(|(id, record)| (record.created, *id.as_bytes()))
            }
        }
        let past = sessions.get(self.max..).unwrap_or_default();
        let mut own_ended = false;
        for (id, record) in past {
            let ended = manager.timed(Op::End, index.end(user, id, now)).await?;
            own_ended |= id == own;
            if ended && id != own {
                manager
                    .events()
                    .send(EventKind::EndedOverCap, Some(id), record);
            }
        }
        match (own_ended, self.over) {
            (false, _) => Ok(()),
            (true, OverCap::Refuse) => Err(StoreError::TooManySessions { limit: self.max }),
            (true, OverCap::EndLeastRecent) => Err(StoreError::Gone),
        }
    }

    /// `user`'s live sessions.
    async fn listed(
        manager: &SessionManager,
        index: &dyn UserIndex,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let mut sessions = manager.timed(Op::List, index.list(user, now)).await?;
        sessions.retain(|(_, record)| record.user.as_deref() == Some(user));
        Ok(sessions)
    }
}
