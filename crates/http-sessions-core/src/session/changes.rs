//! What a request did: [`Changes`] to a session's values and flash
//! messages, as a server-side store applies them, and the
//! [`CookieUpdate`] its response carries.

use crate::session::data_key::DataKey;
use crate::session::flash::FlashChanges;
use crate::session::record::Extra;

/// The keys a save changes, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Every key was removed before the changes below (the session was
    /// cleared).
    pub cleared: bool,
    /// Keys set or removed: each is set to its value in the record, or
    /// removed if the record does not have it. Sorted, no duplicates.
    pub keys: Vec<DataKey>,
    /// Flash messages taken and pushed, by id.
    pub flash: FlashChanges,
    /// The session's [`Expiry`](crate::Expiry) changed: write the record's.
    pub expiry: bool,
    /// The session's user or label changed: write the record's.
    pub binding: bool,
}

impl Changes {
    /// Whether nothing at all changed.
    pub fn is_empty(&self) -> bool {
        !self.cleared
            && self.keys.is_empty()
            && self.flash.is_empty()
            && !self.expiry
            && !self.binding
    }

    /// Whether `extra` changed, so a store that keeps it must write it.
    pub fn changed(&self, extra: Extra) -> bool {
        match extra {
            Extra::Expiry => self.expiry,
            Extra::User | Extra::Label | Extra::Generation => self.binding,
        }
    }

    /// Whether the changes add anything to `record`'s size: a value set,
    /// a flash message pushed, or a new binding or expiry. Removals and
    /// reads only shrink a session.
    pub fn adds(&self, record: &crate::session::record::Record) -> bool {
        !self.flash.pushed.is_empty()
            || self.binding
            || self.expiry
            || self
                .keys
                .iter()
                .any(|k| record.data.contains_key(k.as_str()))
    }

    /// Records that `key` was set or removed, keeping `keys` sorted and
    /// free of duplicates.
    pub fn mark(&mut self, key: DataKey) {
        if let Err(at) = self.keys.binary_search(&key) {
            self.keys.insert(at, key);
        }
    }
}

/// What the response does with the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CookieUpdate {
    /// Leave the client's cookie as it is.
    #[default]
    Keep,
    /// Set the cookie to this value, living this long.
    Set {
        /// The cookie value.
        value: String,
        /// Its `Max-Age`; `None` for a browser session's cookie, which
        /// has none.
        max_age: Option<std::time::Duration>,
    },
    /// Expire the cookie.
    Remove,
}
