//! Sessions kept entirely in the cookie: [`CookieStore`], a
//! [`CookieCodec`] that signs the session with HMAC-SHA256 or encrypts it
//! with AES-256-GCM.
//!
//! Nothing is stored on the server, so it scales with no shared state; the
//! price is that the client holds the state. Read `docs/security.md`
//! before choosing it: a signed cookie can be read by its holder, any
//! cookie can be replayed until it expires, and two concurrent requests
//! cannot both change it.
//!
//! # Layout
//!
//! - [`CookieStore`] and its [`Mode`]: the codec the session layer calls.
//! - `keys`: the cookie's keys, derived once from the settings' keyring.
//! - `format`: the cookie's bytes, how they are sealed and how they are
//!   opened ([`FORMAT_VERSION`]).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
mod conformance_tests;
mod format;
mod keys;

use std::fmt;
use std::sync::Arc;

use http_sessions_core::Settings;
use http_sessions_core::store::{CookieCodec, Opened, Record, StoreError, UnixTime};

pub use format::FORMAT_VERSION;

use crate::keys::CookieKeys;

/// How the cookie is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// HMAC-SHA256: the client can read the session but not change it.
    #[default]
    Signed,
    /// AES-256-GCM with a random nonce: the client can neither read nor
    /// change it.
    Encrypted,
}

/// A backend that keeps the whole session in the cookie.
///
/// Both modes authenticate the format version, the key id, the cookie name,
/// the issue time and the expiry, so a cookie cannot be moved to another
/// cookie name, re-dated or verified under a key that did not make it.
/// Keys come from the [`Settings`]' keyring, derived when the store is
/// built: a cookie made under a verify-only key opens, and the layer seals
/// it again under the current key. Build the store and the layer from the
/// same settings, so they agree on the keys and the cookie name.
///
/// What a client-held state cannot do, this store cannot either: concurrent
/// changes to different keys do not merge (the last response wins), and a
/// destroyed or renewed session's old cookie stays valid until it expires.
///
/// Cloning is cheap: the keys are shared.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_cookie::CookieStore;
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let signed = SessionLayer::in_cookie(CookieStore::signed(&settings), &settings);
/// let private = SessionLayer::in_cookie(CookieStore::encrypted(&settings), &settings);
/// # let _ = (signed, private);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CookieStore {
    inner: Arc<Inner>,
}

struct Inner {
    mode: Mode,
    /// Authenticated in every cookie, never sent in it.
    cookie_name: Box<str>,
    /// Names the cookie had before: a cookie sealed under one still opens,
    /// and the layer seals it again under the current name.
    previous_names: Box<[Box<str>]>,
    keys: CookieKeys,
}

impl CookieStore {
    /// A store whose cookies are signed: the client can read the session
    /// but not change it.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Key, Keyring, Settings};
    /// use http_sessions_cookie::{CookieStore, Mode};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
    ///     .build()?;
    /// assert_eq!(CookieStore::signed(&settings).mode(), Mode::Signed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signed(settings: &Settings) -> Self {
        Self::new(Mode::Signed, settings)
    }

    /// A store whose cookies are encrypted: the client can neither read
    /// nor change the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Key, Keyring, Settings};
    /// use http_sessions_cookie::{CookieStore, Mode};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
    ///     .build()?;
    /// assert_eq!(CookieStore::encrypted(&settings).mode(), Mode::Encrypted);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encrypted(settings: &Settings) -> Self {
        Self::new(Mode::Encrypted, settings)
    }

    fn new(mode: Mode, settings: &Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                mode,
                cookie_name: settings.cookie().name.as_str().into(),
                previous_names: settings.previous_cookie_names().map(Into::into).collect(),
                keys: CookieKeys::derive(settings.keyring(), mode),
            }),
        }
    }

    /// How this store protects its cookies.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Opens a cookie value: the session it holds and whether the current
    /// key sealed it, or `None` for anything that does not verify, has
    /// expired at `now`, is dated in the future or does not decode. Never
    /// panics; the work is bounded by the value's length, and a value
    /// longer than a cookie can be is refused unread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::{Key, Keyring, Settings};
    /// use http_sessions_core::store::{Record, UnixTime, Value};
    /// use http_sessions_cookie::CookieStore;
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
    ///     .build()?;
    /// let store = CookieStore::encrypted(&settings);
    /// let now = UnixTime::from_secs(1_800_000_000);
    /// let mut record = Record::empty(now, now + Duration::from_secs(600), 16);
    /// record.data.insert("user".into(), Value::encode("alice")?);
    ///
    /// let value = store.seal(&record, now)?;
    /// let opened = store.open(&value, now).expect("a cookie it sealed");
    /// assert_eq!(opened.record, record);
    /// assert!(opened.current_key);
    /// // Expired at its expiry, and nothing opens a forgery.
    /// assert!(store.open(&value, now + Duration::from_secs(600)).is_none());
    /// assert!(store.open("forged", now).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, value: &str, now: UnixTime) -> Option<Opened> {
        format::open(self, value, now)
    }

    /// Seals `record` into a cookie value under the current key, issued at
    /// `now` and valid until `record.expires`.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] if the value would be longer than any
    /// cookie can be ([`MAX_COOKIE_VALUE_LEN`](http_sessions_core::store::MAX_COOKIE_VALUE_LEN);
    /// the layer holds it to its `Set-Cookie` limit, which is shorter), and
    /// [`StoreError::Unavailable`] if the system's random generator fails
    /// or the encryption key could not be built.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::{Key, Keyring, Settings, StoreError};
    /// use http_sessions_core::store::{Record, UnixTime, Value};
    /// use http_sessions_cookie::CookieStore;
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
    ///     .build()?;
    /// let store = CookieStore::signed(&settings);
    /// let now = UnixTime::from_secs(1_800_000_000);
    /// let mut record = Record::empty(now, now + Duration::from_secs(600), 16);
    /// record.data.insert("big".into(), Value::encode(&"x".repeat(5000))?);
    /// assert!(matches!(store.seal(&record, now), Err(StoreError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal(&self, record: &Record, now: UnixTime) -> Result<String, StoreError> {
        format::seal(self, record, now)
    }

    /// Seals arbitrary bytes as the body of an authentic cookie, issued at
    /// `now` and valid until `expires`: the fuzz target and the tests use
    /// it to reach the decoder behind the MAC.
    #[doc(hidden)]
    pub fn seal_raw_body(
        &self,
        body: &[u8],
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<String, StoreError> {
        format::seal_with(self, expires, now, body.len(), |buf| {
            buf.extend_from_slice(body);
            Ok(())
        })
    }

    fn cookie_name(&self) -> &str {
        &self.inner.cookie_name
    }

    fn previous_names(&self) -> impl Iterator<Item = &str> {
        self.inner.previous_names.iter().map(|name| &**name)
    }

    fn keys(&self) -> &CookieKeys {
        &self.inner.keys
    }
}

impl CookieCodec for CookieStore {
    fn open(&self, value: &str, now: UnixTime) -> Option<Opened> {
        CookieStore::open(self, value, now)
    }

    fn seal(&self, record: &Record, now: UnixTime) -> Result<String, StoreError> {
        CookieStore::seal(self, record, now)
    }

    /// Shaped: base64url, long enough for a header and a tag, and of this
    /// format version and this store's mode.
    fn open_shaped(&self, value: &str, now: UnixTime) -> Option<Option<Opened>> {
        format::open_shaped(self, value, now)
    }
}

impl fmt::Debug for CookieStore {
    /// The mode, the cookie name and the key ids: never the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("mode", &self.inner.mode)
            .field("cookie_name", &self.inner.cookie_name)
            .field("keys", &self.inner.keys)
            .finish()
    }
}
