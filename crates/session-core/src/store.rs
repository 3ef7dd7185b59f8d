//! The store contract: the [`SessionStore`] trait that every backend
//! implements, and the values passed across it ([`Context`], [`Save`],
//! [`Loaded`], [`Capabilities`]).
//!
//! Every store holds to these five points; the conformance suite (feature
//! `testing`) checks them:
//!
//! 1. **Deltas, not snapshots.** A save writes only what changed, so two
//!    requests changing different keys of one session both land. A store
//!    that keeps state on the client cannot, and says so in
//!    [`Capabilities::concurrent_deltas`].
//! 2. **No resurrection.** An update of a session that was destroyed or
//!    expired meanwhile fails with [`StoreError::Gone`].
//! 3. **Atomic create.** A create never overwrites: it fails with
//!    [`StoreError::Exists`] and the caller tries a new id.
//! 4. **Server-side expiry.** A record at or past its
//!    [`expires`](Record::expires) time is never returned.
//! 5. **Typed errors.** Backend failures are [`StoreError`]s; corrupt state
//!    is logged and loads as no session.

use std::fmt;

use async_trait::async_trait;

use crate::data_key::DataKey;
use crate::error::StoreError;
use crate::keys::Keyring;
use crate::record::{Record, Value};
use crate::time::UnixTime;
use crate::token::{self, IdSource, OpenedToken, SessionId};

/// What a store is told about the request it serves.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    keys: &'a Keyring,
    cookie_name: &'a str,
    now: UnixTime,
    ids: &'a dyn IdSource,
    /// A token the layer has already verified, so the store need not again.
    verified: Option<(&'a str, OpenedToken)>,
    max_value_len: usize,
}

impl<'a> Context<'a> {
    /// A context for one store call.
    pub fn new(
        keys: &'a Keyring,
        cookie_name: &'a str,
        now: UnixTime,
        ids: &'a dyn IdSource,
    ) -> Self {
        Self {
            keys,
            cookie_name,
            now,
            ids,
            verified: None,
            max_value_len: crate::manager::MAX_COOKIE_VALUE_LEN,
        }
    }

    /// Sets the longest cookie value the response can carry.
    pub fn with_max_value_len(mut self, len: usize) -> Self {
        self.max_value_len = len;
        self
    }

    /// The longest cookie value the response can carry: 4096 bytes for the
    /// whole `Set-Cookie` (name, value and attributes, RFC 6265 section
    /// 6.1) less the name and attributes. A store whose token is longer
    /// fails with [`StoreError::TooLarge`].
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// Records that `token` was verified as `opened`, so
    /// [`open_token`](Self::open_token) answers it without another HMAC.
    pub fn with_verified(mut self, token: &'a str, opened: OpenedToken) -> Self {
        self.verified = Some((token, opened));
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &'a Keyring {
        self.keys
    }

    /// The session cookie's name (cookie stores bind their value to it).
    pub fn cookie_name(&self) -> &'a str {
        self.cookie_name
    }

    /// The current time: expiry is judged against this, never the system
    /// clock, so tests can move it.
    pub fn now(&self) -> UnixTime {
        self.now
    }

    /// A new random session id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the system generator fails.
    pub fn new_id(&self) -> Result<SessionId, StoreError> {
        self.ids.next_id()
    }

    /// The `id.mac` token of a session id, signed with the current key.
    pub fn seal_token(&self, id: &SessionId) -> String {
        token::seal(self.keys, id)
    }

    /// The session id a token names, if its MAC verifies under a trusted key.
    pub fn open_token(&self, token: &str) -> Option<OpenedToken> {
        match self.verified {
            Some((known, opened)) if known == token => Some(opened),
            _ => token::open(self.keys, token),
        }
    }
}

/// A session found by [`SessionStore::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Its state.
    pub record: Record,
    /// True when a verify-only key verified the cookie: the next response
    /// carries a cookie issued under the current key.
    pub reissue: bool,
}

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
}

impl Changes {
    /// Whether nothing at all changed.
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty() && !self.flash
    }

    /// Records that `key` was set or removed, keeping `keys` sorted and
    /// free of duplicates.
    pub fn mark(&mut self, key: DataKey) {
        if let Err(at) = self.keys.binary_search(&key) {
            self.keys.insert(at, key);
        }
    }
}

/// One save: the session as it is now and what changed since it was loaded.
#[derive(Debug, Clone, Copy)]
pub struct Save<'a> {
    /// The token the session was loaded under; `None` creates a new session.
    pub token: Option<&'a str>,
    /// The whole state after the request, with the new expiry.
    pub record: &'a Record,
    /// What changed; empty when the save only extends the expiry.
    pub changes: &'a Changes,
}

impl<'a> Save<'a> {
    /// The changed keys with their new values; `None` means removed.
    pub fn changed(&self) -> impl Iterator<Item = (&'a str, Option<&'a Value>)> + 'a {
        let data = &self.record.data;
        self.changes
            .keys
            .iter()
            .map(move |k| (k.as_str(), data.get(k.as_str())))
    }
}

/// What a store can promise beyond the contract's common ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Concurrent saves changing different keys both land (point 1). False
    /// for a store that keeps state on the client: the last response wins.
    pub concurrent_deltas: bool,
    /// A destroyed or renewed session's old token is dead at once. False for
    /// a store that keeps state on the client: an old cookie stays valid
    /// until it expires.
    pub revocation: bool,
    /// Tokens are the layer's signed `id.mac` tokens ([`Context::seal_token`]):
    /// the layer verifies them before calling the store, so a forged or
    /// random token never costs a store round trip.
    pub signed_tokens: bool,
}

impl Capabilities {
    /// A server-side store: everything.
    pub const SERVER: Capabilities = Capabilities {
        concurrent_deltas: true,
        revocation: true,
        signed_tokens: true,
    };
}

/// A place where sessions live.
///
/// The layer calls these with a timeout around each; an implementation
/// need not add its own. `token` is the session cookie's value, opaque to
/// the layer: server-side stores use [`Context::open_token`] and
/// [`Context::seal_token`]; a cookie store keeps the state in it.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The session a token names, if it exists and has not expired at
    /// `cx.now()`.
    ///
    /// A token that does not verify, or state that does not decode, is
    /// `Ok(None)`: the request goes on with a fresh session.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] when the
    /// backend cannot answer.
    async fn load(&self, token: &str, cx: &Context<'_>) -> Result<Option<Loaded>, StoreError>;

    /// Writes a session and returns its token (the cookie value to send).
    ///
    /// With `save.token == None` this creates a session under a new id and
    /// never overwrites one; otherwise it applies `save.changes` and the new
    /// expiry to the existing session only.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gone`] if the session no longer exists,
    /// [`StoreError::Exists`] if a create found its id taken,
    /// [`StoreError::TooLarge`] if the store cannot hold it, and the backend
    /// errors.
    async fn save(&self, save: Save<'_>, cx: &Context<'_>) -> Result<String, StoreError>;

    /// Deletes a session; deleting one that does not exist is not an error.
    ///
    /// # Errors
    ///
    /// The backend errors.
    async fn delete(&self, token: &str, cx: &Context<'_>) -> Result<(), StoreError>;

    /// What this store promises beyond the common contract.
    fn capabilities(&self) -> Capabilities {
        Capabilities::SERVER
    }
}
