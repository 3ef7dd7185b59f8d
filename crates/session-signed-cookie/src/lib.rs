//! Sessions kept entirely in the cookie: [`CookieStore`], signed with
//! HMAC-SHA256 or encrypted with AES-256-GCM.
//!
//! Nothing is stored on the server, so it scales with no shared state; the
//! price is that the client holds the state. Read `docs/security.md`
//! before choosing it: a signed cookie can be read by its holder, any
//! cookie can be replayed until it expires, and two concurrent requests
//! cannot both change it.
//!
//! # Layout
//!
//! - [`CookieStore`] and its [`Mode`]: the `SessionStore` implementation.
//! - `format`: the cookie's bytes, how they are sealed and how they are
//!   opened ([`FORMAT_VERSION`]).

#[cfg(test)]
mod conformance_tests;
mod format;

use async_trait::async_trait;
use session_core::{Capabilities, Context, Loaded, Save, SessionStore, StoreError};

pub use format::FORMAT_VERSION;

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

/// A store that keeps the whole session in the cookie.
///
/// Both modes authenticate the format version, the key id, the cookie name,
/// the issue time and the expiry, so a cookie cannot be moved to another
/// cookie name, re-dated or verified under a key that did not make it. Keys
/// come from the [`Settings`](session_core::Settings)' keyring: a cookie
/// made under a verify-only key is accepted and issued again under the
/// current key.
///
/// What a client-held state cannot do, this store declares in
/// [`capabilities`](SessionStore::capabilities): concurrent changes to
/// different keys do not merge (the last response wins), and a destroyed
/// or renewed session's old cookie stays valid until it expires.
///
/// # Examples
///
/// ```
/// use session_core::{Key, Keyring, SessionLayer, Settings};
/// use session_signed_cookie::CookieStore;
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let signed = SessionLayer::new(CookieStore::signed(), &settings);
/// let private = SessionLayer::new(CookieStore::encrypted(), &settings);
/// # let _ = (signed, private);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieStore {
    mode: Mode,
}

impl CookieStore {
    /// A store whose cookies are signed (readable by the client).
    pub fn signed() -> Self {
        Self { mode: Mode::Signed }
    }

    /// A store whose cookies are encrypted (opaque to the client).
    pub fn encrypted() -> Self {
        Self {
            mode: Mode::Encrypted,
        }
    }

    /// How this store protects its cookies.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Opens a cookie value: the session it holds, or `None` for anything
    /// that does not verify, has expired, is dated in the future or does
    /// not decode. Never panics; the work is bounded by the value's length,
    /// which the layer caps at 4096 bytes.
    pub fn open(&self, value: &str, cx: &Context<'_>) -> Option<Loaded> {
        format::open(self.mode, value, cx)
    }

    /// Seals a record into a cookie value under the current key.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] if the value would not fit in a cookie, and
    /// [`StoreError::Unavailable`] if the system's random generator fails.
    pub fn seal(
        &self,
        record: &session_core::Record,
        cx: &Context<'_>,
    ) -> Result<String, StoreError> {
        format::seal(self.mode, record, cx)
    }

    /// Seals arbitrary bytes as the body of an authentic cookie: the fuzz
    /// target uses it to reach the decoder behind the MAC.
    #[doc(hidden)]
    pub fn seal_raw_body(
        &self,
        body: &[u8],
        expires: session_core::UnixTime,
        cx: &Context<'_>,
    ) -> Result<String, StoreError> {
        format::seal_with(self.mode, expires, cx, body.len(), |buf| {
            buf.extend_from_slice(body);
            Ok(())
        })
    }
}

#[async_trait]
impl SessionStore for CookieStore {
    async fn load(&self, token: &str, cx: &Context<'_>) -> Result<Option<Loaded>, StoreError> {
        Ok(self.open(token, cx))
    }

    /// Writes the whole session into a new cookie value: a cookie cannot
    /// take a delta.
    async fn save(&self, save: Save<'_>, cx: &Context<'_>) -> Result<String, StoreError> {
        self.seal(save.record, cx)
    }

    /// Nothing to delete: the layer expires the cookie.
    async fn delete(&self, _token: &str, _cx: &Context<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            concurrent_deltas: false,
            revocation: false,
            signed_tokens: false,
        }
    }
}
