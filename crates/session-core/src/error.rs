//! The errors of the crate boundary: [`StoreError`] for stores,
//! [`ValueError`] for reading and writing session values, [`ConfigError`]
//! for configuration (key errors are `keys::KeyError`).

use std::time::Duration;

use crate::keys::KeyError;

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
}

/// A setting was refused when the settings were built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A cookie name, path or domain holds a character a cookie cannot carry.
    #[error(
        "cookie {field} {value:?} is not allowed: it must be non-empty and free of ';', '=', ',', \
         spaces, quotes, backslashes and control characters"
    )]
    CookieAttribute {
        /// Which attribute: `name`, `path` or `domain`.
        field: &'static str,
        /// The refused value.
        value: String,
    },
    /// A `__Host-` or `__Secure-` cookie name whose other attributes break
    /// the prefix's rules (RFC 6265bis section 4.1.3).
    #[error("cookie name {name:?}: {rule}")]
    CookiePrefix {
        /// The cookie name.
        name: String,
        /// The rule that is broken.
        rule: &'static str,
    },
    /// A duration or the refresh fraction is out of its range.
    #[error("{0}")]
    Duration(&'static str),
    /// The key material was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be set up (for example a malformed Redis URL).
    #[error("the session store could not be set up: {0}")]
    Store(#[source] BoxError),
    /// No key was configured: no keyring, no `SESSION_SECRET`, and no
    /// explicit request for a random development key.
    #[error(
        "no session secret: set SESSION_SECRET to at least 32 random bytes (for example \
         `SESSION_SECRET=$(openssl rand -base64 48)`) or pass a keyring with \
         `Settings::builder().with_keyring(...)`; for local development only, \
         `.with_random_dev_key()` accepts a random key that dies with the process"
    )]
    MissingSecret,
    /// `SESSION_SECRET` is set but not usable.
    #[error("SESSION_SECRET is not usable: {0}")]
    Env(String),
}
