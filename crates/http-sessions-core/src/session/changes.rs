//! What a request did: [`Changes`] to a session's values and flash
//! messages, as a server-side store applies them, and the
//! [`CookieUpdate`] its response carries.

use crate::session::data_key::DataKey;
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
    /// The flash queue changed: write the record's queue whole.
    pub flash: bool,
    /// The session's [`Expiry`](crate::Expiry) changed: write the record's.
    pub expiry: bool,
    /// The session's user or label changed: write the record's.
    pub binding: bool,
}

impl Changes {
    /// Whether nothing at all changed.
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty() && !self.flash && !self.expiry && !self.binding
    }

    /// Whether `extra` changed, so a store that keeps it must write it.
    pub fn changed(&self, extra: Extra) -> bool {
        match extra {
            Extra::Expiry => self.expiry,
            Extra::User | Extra::Label | Extra::Generation => self.binding,
        }
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
