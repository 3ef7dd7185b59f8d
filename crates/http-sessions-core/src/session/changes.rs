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

    /// The bytes ([`Record::encoded_len`]) these changes write from
    /// `record`: each value set, each flash message pushed, and the
    /// binding and expiry if they changed. A stored session holds at least
    /// these once the update lands.
    ///
    /// [`Record::encoded_len`]: crate::session::record::Record::encoded_len
    pub fn written_len(&self, record: &crate::session::record::Record) -> usize {
        let values: usize = (self.keys.iter())
            .filter_map(|k| Some(k.as_str().len() + record.data.get(k.as_str())?.as_bytes().len()))
            .sum();
        let pushed: usize = (self.flash.pushed.iter())
            .filter_map(|&id| record.flash.get(id))
            .map(|f| f.message.len() + 8)
            .sum();
        let binding = if self.binding {
            record.binding_len()
        } else {
            0
        };
        let expiry = if self.expiry {
            record.expiry.encoded_len()
        } else {
            0
        };
        values + pushed + binding + expiry
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
