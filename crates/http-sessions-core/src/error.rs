//! The errors of the crate boundary that everything below configuration
//! can meet: [`StoreError`] for stores, [`ValueError`] for reading and
//! writing session values.

use std::time::Duration;

/// Boxed source error of a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store could not load, save or delete a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or refused the command.
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend did not answer within the configured timeout.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),
    /// Stored state could not be decoded.
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
    /// The session is larger than the store can hold.
    #[error("session is {size} bytes, over the store's limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the session, in bytes.
        size: usize,
        /// The store's limit, in bytes.
        limit: usize,
    },
    /// An update found no session: it was destroyed or expired after this
    /// request loaded it, and a save must not bring it back.
    #[error("the session was destroyed or expired before this request saved it")]
    Gone,
    /// A create found the id already taken; the caller retries with a new id.
    #[error("a session with this id already exists")]
    Exists,
    /// The session was to be bound to a user who already has the most
    /// sessions one user may have, and the settings refuse such a binding
    /// ([`OverCap::Refuse`](crate::OverCap::Refuse)); nothing was stored.
    #[error(
        "the user already has {limit} sessions, the most allowed \
         (SettingsBuilder::with_max_sessions_per_user): sign out elsewhere first"
    )]
    TooManySessions {
        /// The most sessions one user may have.
        limit: usize,
    },
    /// The backend cannot do this at all: a programming error, which no
    /// retry mends. The text says why and what to use instead.
    #[error("not supported by this session backend: {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps a backend error as [`StoreError::Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// A session value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value could not be serialized to MessagePack.
    #[error("session value {key:?} could not be encoded: {source}")]
    Encode {
        /// The session key.
        key: String,
        /// What the encoder said.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// The stored value is not of the requested type.
    #[error("session value {key:?} could not be decoded as the requested type: {source}")]
    Decode {
        /// The session key.
        key: String,
        /// What the decoder said.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// [`Session::bind_user`](crate::Session::bind_user) was given a user
    /// id longer than a session keeps.
    #[error(
        "a user id of {len} bytes cannot be bound to a session: the most is {limit} bytes \
         (bind a shorter key, such as the user's database id)"
    )]
    UserTooLong {
        /// The length of the id given, in bytes.
        len: usize,
        /// The most a session keeps, in bytes.
        limit: usize,
    },
    /// [`Session::bind_user`](crate::Session::bind_user) was given a user
    /// id holding a NUL character, which a database's text column (a
    /// Postgres `text`) cannot keep.
    #[error(
        "a user id holding a NUL character cannot be bound to a session \
         (bind the user's key as the application stores it)"
    )]
    UserHasNul,
}
