//! What a store keeps of a session: the [`Record`], its map of values, its
//! flash queue and its two timestamps.

use crate::session::expiry::Expiry;
use crate::session::flash::FlashQueue;
use crate::session::session_data::SessionData;
use crate::session::time::UnixTime;

/// Everything a store keeps of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key-value map.
    pub data: SessionData,
    /// Flash messages not yet read.
    pub flash: FlashQueue,
    /// When the session was first saved (start of the absolute lifetime).
    pub created: UnixTime,
    /// When the session ends unless refreshed: the earlier of the idle
    /// deadline and the absolute one. A store never returns a record at or
    /// past this time.
    pub expires: UnixTime,
    /// How long this session lives, if not as the settings say.
    pub expiry: Expiry,
    /// The user the session is bound to, if any: server-side stores keep
    /// an index of each user's sessions.
    pub user: Option<String>,
    /// The application's label for the session (a device, a browser), at
    /// most [`MAX_LABEL_LEN`] bytes, shown when the user's sessions are
    /// listed.
    pub label: Option<String>,
    /// The generation of [`user`](Self::user)'s sessions this binding
    /// belongs to; 0 when unbound. The manager gives a new binding the
    /// time its request began, in milliseconds since the epoch, and a renew
    /// carries it on.
    /// A user's generation only grows: each "log out everywhere" raises it
    /// past the time it runs, and a store refuses to store a binding of an
    /// older generation than its user's, so neither a renew nor a login
    /// that was under way brings an ended session back (see
    /// [`UserIndex`]).
    ///
    /// [`UserIndex`]: crate::store::UserIndex
    pub generation: u64,
}

/// The longest label a session keeps, in bytes; a longer one is cut.
pub const MAX_LABEL_LEN: usize = 256;

/// The longest user id a session can be bound to, in bytes: room for an
/// email address (at most 254) or any database key; a longer one is
/// refused ([`ValueError::UserTooLong`](crate::ValueError::UserTooLong)).
pub const MAX_USER_LEN: usize = 256;

/// A field of a [`Record`] beside its values and flash messages, as a
/// store keeps it: under a name, as text, and only when it differs from
/// its default. One list for every store, so each writes and reads the
/// same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// [`Record::expiry`], as [`Expiry::encode`] writes it.
    Expiry,
    /// [`Record::user`].
    User,
    /// [`Record::label`].
    Label,
    /// [`Record::generation`], in decimal.
    Generation,
}

impl Extra {
    /// Every extra field, in the order stores write them.
    pub const ALL: [Extra; 4] = [Extra::Expiry, Extra::User, Extra::Label, Extra::Generation];

    /// The name a store keeps it under.
    pub fn name(self) -> &'static str {
        match self {
            Extra::Expiry => "expiry",
            Extra::User => "user",
            Extra::Label => "label",
            Extra::Generation => "gen",
        }
    }

    /// The field named `name`, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::Extra;
    ///
    /// assert_eq!(Extra::named(b"user"), Some(Extra::User));
    /// assert_eq!(Extra::named(b"d:user"), None);
    /// ```
    pub fn named(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name().as_bytes() == name)
    }
}

impl Record {
    /// A new record with nothing in it.
    pub fn empty(created: UnixTime, expires: UnixTime, flash_capacity: usize) -> Self {
        Self {
            data: SessionData::new(),
            flash: FlashQueue::with_capacity(flash_capacity),
            created,
            expires,
            expiry: Expiry::Default,
            user: None,
            label: None,
            generation: 0,
        }
    }

    /// Whether there is nothing to keep: no values, no flash messages, no
    /// user, label or expiry of its own. A session with any of them is
    /// stored, so a login that only binds a user is kept.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.flash.is_empty()
            && self.user.is_none()
            && self.label.is_none()
            && self.expiry == Expiry::Default
    }

    /// The bytes the session counts for in the session size bound: every
    /// field a store keeps, about as much as it takes encoded. Keys and
    /// values count their bytes, a flash message its text and 8, the
    /// user, the label and the expiry their text, the generation 8.
    pub fn encoded_len(&self) -> usize {
        self.data_len() + self.flash.counted_len() + self.extras_len()
    }

    /// What the keys and values count for in [`encoded_len`](Self::encoded_len).
    pub fn data_len(&self) -> usize {
        self.data
            .iter()
            .map(|(k, v)| k.as_str().len() + v.as_bytes().len())
            .sum()
    }

    /// What the user, the label, the expiry and the generation count for
    /// in [`encoded_len`](Self::encoded_len).
    pub fn extras_len(&self) -> usize {
        self.binding_len() + self.expiry.encoded_len()
    }

    /// What the user, the label and the generation count for.
    pub(crate) fn binding_len(&self) -> usize {
        self.user.as_ref().map_or(0, String::len)
            + self.label.as_ref().map_or(0, String::len)
            + if self.generation == 0 { 0 } else { 8 }
    }

    /// The text a store keeps for `extra`; `None` when it has its default,
    /// and there is nothing to keep.
    pub fn extra(&self, extra: Extra) -> Option<String> {
        match extra {
            Extra::Expiry => self.expiry.encode(),
            Extra::User => self.user.clone(),
            Extra::Label => self.label.clone(),
            Extra::Generation => (self.generation != 0).then(|| self.generation.to_string()),
        }
    }

    /// Every extra field that differs from its default, under its name, as
    /// [`extra`](Self::extra) writes it: what a store keeps beside the
    /// values.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::{Record, UnixTime};
    ///
    /// let mut record = Record::empty(UnixTime::from_secs(0), UnixTime::from_secs(60), 4);
    /// assert!(record.extras().is_empty());
    /// record.user = Some("ada".into());
    /// assert_eq!(record.extras(), [("user", "ada".to_owned())]);
    /// ```
    pub fn extras(&self) -> Vec<(&'static str, String)> {
        Extra::ALL
            .into_iter()
            .filter_map(|extra| Some((extra.name(), self.extra(extra)?)))
            .collect()
    }

    /// Sets `extra` from the text [`extra`](Self::extra) gave; `false`,
    /// and nothing set, if it does not decode.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::{Extra, Record, UnixTime};
    ///
    /// let mut record = Record::empty(UnixTime::from_secs(0), UnixTime::from_secs(60), 4);
    /// assert!(record.set_extra(Extra::Expiry, "600/3600"));
    /// assert_eq!(record.extra(Extra::Expiry).as_deref(), Some("600/3600"));
    /// assert!(!record.set_extra(Extra::Expiry, "forever"));
    /// ```
    pub fn set_extra(&mut self, extra: Extra, text: &str) -> bool {
        match extra {
            Extra::Expiry => match Expiry::decode(text) {
                Some(expiry) => self.expiry = expiry,
                None => return false,
            },
            Extra::User => self.user = Some(text.to_owned()),
            Extra::Label => self.label = Some(text.to_owned()),
            Extra::Generation => match text.parse() {
                Ok(generation) if text.bytes().all(|b| b.is_ascii_digit()) => {
                    self.generation = generation;
                }
                _ => return false,
            },
        }
        true
    }

    /// Whether the record has expired at `now`.
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stays_twenty_words() {
        // Every stored session holds one: each word is 8 bytes per session
        // in the memory store.
        assert!(size_of::<Record>() <= 20 * size_of::<u64>());
    }

    #[test]
    fn the_encoded_length_counts_keys_values_and_flash() {
        let mut r = Record::empty(UnixTime::from_secs(1), UnixTime::from_secs(2), 4);
        let empty = r.encoded_len();
        r.data.insert(
            "key".into(),
            Value::encode("x".repeat(100).as_str()).unwrap(),
        );
        // "key", and 100 characters behind a 2-byte string header.
        assert_eq!(r.encoded_len(), empty + 3 + 102);
        r.flash
            .push(crate::session::flash::FlashLevel::Info, "y".repeat(50));
        assert_eq!(r.encoded_len(), empty + 3 + 102 + 50 + 8);
    }

    #[test]
    fn every_field_counts_toward_the_size() {
        let mut r = Record::empty(UnixTime::from_secs(1), UnixTime::from_secs(2), 4);
        assert_eq!(r.encoded_len(), 0);
        r.user = Some("u".repeat(1000));
        assert_eq!(r.encoded_len(), 1000);
        r.label = Some("l".repeat(10));
        r.generation = 7;
        assert_eq!(r.encoded_len(), 1000 + 10 + 8);
        r.expiry = Expiry::Lifetimes {
            idle: std::time::Duration::from_secs(600),
            absolute: std::time::Duration::from_secs(86_400),
        };
        assert_eq!(r.encoded_len(), 1018 + "600/86400".len());
        assert_eq!(r.expiry.encoded_len(), r.expiry.encode().unwrap().len());
    }

    #[test]
    fn a_session_with_only_a_user_label_or_expiry_is_not_empty() {
        let empty = Record::empty(UnixTime::from_secs(1), UnixTime::from_secs(2), 4);
        assert!(empty.is_empty());
        let mut r = empty.clone();
        r.user = Some("ada".into());
        assert!(!r.is_empty());
        let mut r = empty.clone();
        r.label = Some("phone".into());
        assert!(!r.is_empty());
        let mut r = empty;
        r.expiry = Expiry::BrowserSession;
        assert!(!r.is_empty());
    }
    use crate::session::value::Value;
}
