//! [`ConfigError`]: a setting refused when a layer or a store was built.

use std::fmt;

use crate::config::keys::KeyError;
use crate::error::BoxError;

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
    /// A value outside the range its setting accepts, zero included where
    /// zero is refused: every bound of every setting, in the settings and
    /// in the stores, is refused with this one kind.
    #[error(
        "{setting} was given {value}, which is out of range: it must be {allowed}; \
         change the value passed to {setting}"
    )]
    OutOfRange {
        /// Where the value was set, as the code calls it, for example
        /// `SettingsBuilder::with_store_timeout`.
        setting: &'static str,
        /// The refused value, as `Debug` writes it (`0ns`, `1023`, `NaN`).
        value: String,
        /// What the setting accepts, with its bounds.
        allowed: &'static str,
    },
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
    /// `SESSION_COOKIE_SECURE` is set to something other than `true`, `1`,
    /// `false` or `0`.
    #[error(
        "SESSION_COOKIE_SECURE={value:?} is not understood: set it to `false` or `0` to send the \
         session cookie without Secure over plain http (local development only), or to `true` \
         or `1` (or leave it unset) to keep Secure on"
    )]
    SecureEnv {
        /// The refused value (lossily decoded if it is not UTF-8).
        value: String,
    },
}

impl ConfigError {
    /// The error for `value`, refused by `setting` (the method that set it,
    /// for example `MemoryStore::with_capacity`), which accepts `allowed`
    /// (for example `at least 1`): for stores' own settings, so that every
    /// out-of-range value reads alike.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::ConfigError;
    ///
    /// let error = ConfigError::out_of_range("MyStore::with_capacity", 0, "at least 1");
    /// assert!(matches!(error, ConfigError::OutOfRange { value, .. } if value == "0"));
    /// ```
    pub fn out_of_range(
        setting: &'static str,
        value: impl fmt::Debug,
        allowed: &'static str,
    ) -> Self {
        Self::OutOfRange {
            setting,
            value: format!("{value:?}"),
            allowed,
        }
    }
}
