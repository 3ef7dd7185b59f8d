//! Secret keys: a [`Keyring`] of one signing [`Key`] and any number of
//! verify-only keys, and the purpose-bound sub-keys derived from each
//! ([`TrustedKey`]).

use std::fmt;

use ring::{hkdf, hmac, rand};

/// The shortest secret accepted, in bytes (256 bits: HMAC-SHA256's block
/// strength and AES-256's key size).
pub const MIN_KEY_LEN: usize = 32;

/// Fixed salt of the HKDF extraction; it separates our derivations from any
/// other use of the same secret.
const HKDF_SALT: &[u8] = b"sessions/keyring/v1";

/// One secret, as given by the operator.
///
/// `Debug` never prints the bytes.
///
/// # Examples
///
/// ```
/// use http_sessions_core::Key;
///
/// let key = Key::from_bytes(&[7u8; 32])?;
/// assert_eq!(format!("{key:?}"), "Key(REDACTED)");
/// assert!(Key::from_bytes(b"too short").is_err());
/// # Ok::<(), http_sessions_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl Key {
    /// A key from raw secret bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] when `secret` has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(Self(secret.to_vec()))
    }

    /// A fresh random key from the system's secure generator.
    ///
    /// # Errors
    ///
    /// [`KeyError::Random`] if the system generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; MIN_KEY_LEN];
        rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| KeyError::Random)?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(REDACTED)")
    }
}

/// A short public name of a key, derived from it, carried in cookies so a
/// verifier knows which key to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// The id made of these bytes, as a cookie or token carries it.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// Its bytes, as a cookie or token carries them.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One trusted key, ready for use: its public [`KeyId`] and the root from
/// which each purpose derives a sub-key of its own, so no two uses ever
/// share key material.
///
/// Sub-keys are HKDF-SHA256 (RFC 5869) outputs of 32 bytes: the core
/// derives the key of its session tokens here, and a backend derives its
/// own with [`sub_key`](Self::sub_key) (the cookie backend: one to sign,
/// one to encrypt).
pub struct TrustedKey {
    id: KeyId,
    /// HKDF's pseudorandom key, which each purpose expands.
    prk: hkdf::Prk,
    token_mac: hmac::Key,
}

/// A 32-byte secret derived for one purpose. `Debug` never prints it.
#[derive(Clone)]
pub struct SubKey([u8; SUB_KEY_LEN]);

/// Bytes in a [`SubKey`]: one block of HKDF-SHA256.
pub const SUB_KEY_LEN: usize = 32;

impl SubKey {
    /// The secret bytes, to build the key of an algorithm from.
    pub fn as_bytes(&self) -> &[u8; SUB_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(REDACTED)")
    }
}

impl TrustedKey {
    fn derive(key: &Key) -> Result<Self, KeyError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&key.0);
        let [a, b, c, d, ..] = expand(&prk, b"key-id")?.0;
        let token_mac = hmac::Key::new(hmac::HMAC_SHA256, &expand(&prk, b"token-mac")?.0);
        Ok(Self {
            id: KeyId([a, b, c, d]),
            prk,
            token_mac,
        })
    }

    /// The public name of this key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// HMAC-SHA256 key of the session tokens of server-side stores.
    pub(crate) fn token_mac(&self) -> &hmac::Key {
        &self.token_mac
    }

    /// The sub-key for `purpose`, a label no other use shares.
    ///
    /// # Errors
    ///
    /// [`KeyError::Derivation`] if HKDF refuses (it cannot for the 32
    /// bytes asked here; the error keeps a broken build from going on with
    /// a key it did not derive).
    pub fn sub_key(&self, purpose: &[u8]) -> Result<SubKey, KeyError> {
        expand(&self.prk, purpose)
    }
}

/// HKDF-Expand (RFC 5869) of one SHA-256 block for `info`.
fn expand(prk: &hkdf::Prk, info: &[u8]) -> Result<SubKey, KeyError> {
    let mut out = [0u8; SUB_KEY_LEN];
    let info = [info];
    prk.expand(&info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| KeyError::Derivation)?;
    Ok(SubKey(out))
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The keys a deployment trusts: one current key that signs everything new,
/// and verify-only keys that are still accepted (key rotation).
///
/// Rotate by making the new key current and the old one verify-only; remove
/// the old one once every session signed by it has expired.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{Key, Keyring};
///
/// let old = Key::from_bytes(&[1u8; 32])?;
/// let new = Key::from_bytes(&[2u8; 32])?;
/// let ring = Keyring::new(new)?.with_verify_only(old)?;
/// assert_eq!(ring.all().count(), 2);
/// # Ok::<(), http_sessions_core::KeyError>(())
/// ```
#[derive(Debug)]
pub struct Keyring {
    current: TrustedKey,
    /// In the order they were added.
    verify_only: Vec<TrustedKey>,
}

impl Keyring {
    /// A keyring whose current key is `current`.
    ///
    /// # Errors
    ///
    /// None today; kept fallible so that a check of the key can be added
    /// without breaking callers.
    pub fn new(current: Key) -> Result<Self, KeyError> {
        Ok(Self {
            current: TrustedKey::derive(&current)?,
            verify_only: Vec::new(),
        })
    }

    /// Adds a key that verifies but never signs.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateId`] if the key's id equals one already present.
    pub fn with_verify_only(mut self, key: Key) -> Result<Self, KeyError> {
        let derived = TrustedKey::derive(&key)?;
        if self.all().any(|k| k.id == derived.id) {
            return Err(KeyError::DuplicateId(derived.id));
        }
        self.verify_only.push(derived);
        Ok(self)
    }

    /// The key that signs everything new.
    pub fn current(&self) -> &TrustedKey {
        &self.current
    }

    /// Every trusted key, current first.
    pub fn all(&self) -> impl Iterator<Item = &TrustedKey> {
        std::iter::once(&self.current).chain(&self.verify_only)
    }

    /// The trusted key with this id, if any.
    pub fn by_id(&self, id: KeyId) -> Option<&TrustedKey> {
        self.all().find(|k| k.id == id)
    }

    /// Whether `key` is the current key.
    pub fn is_current(&self, key: &TrustedKey) -> bool {
        self.current.id == key.id
    }
}

/// A secret key was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than the minimum.
    #[error("session key is {len} bytes; at least {min} random bytes are required")]
    TooShort {
        /// Length given.
        len: usize,
        /// Length required.
        min: usize,
    },
    /// Two keys in one keyring derive the same id (the same secret twice).
    #[error("key {0} is already in the keyring")]
    DuplicateId(KeyId),
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// HKDF refused to derive a sub-key.
    #[error("a sub-key could not be derived from the session key (HKDF-SHA256 refused)")]
    Derivation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_keys_differ_per_purpose_and_per_key() {
        let a = TrustedKey::derive(&Key::from_bytes(&[1; 32]).unwrap()).unwrap();
        let b = TrustedKey::derive(&Key::from_bytes(&[2; 32]).unwrap()).unwrap();
        assert_ne!(
            a.sub_key(b"token-mac").unwrap().0,
            a.sub_key(b"cookie-mac").unwrap().0
        );
        assert_ne!(
            a.sub_key(b"token-mac").unwrap().0,
            b.sub_key(b"token-mac").unwrap().0
        );
        assert_ne!(a.id(), b.id());
    }

    /// The bytes the previous release derived (HKDF written by hand on
    /// HMAC), pinned: keys, cookies and tokens it issued keep opening.
    #[test]
    fn sub_keys_are_the_previous_releases() {
        let key = TrustedKey::derive(&Key::from_bytes(&[5u8; 48]).unwrap()).unwrap();
        assert_eq!(key.id().as_bytes(), &[0xb6, 0x84, 0x1c, 0xbe]);
        let aead: Vec<u8> = (0..32)
            .map(|i| {
                let hex = "109cd625f56f85e3085da674d27d2ddf4217e12b0a50eccbb1e01f89362dbbd7";
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
            })
            .collect();
        assert_eq!(key.sub_key(b"cookie-aead").unwrap().0.to_vec(), aead);
    }

    #[test]
    fn derivation_is_deterministic() {
        let a = TrustedKey::derive(&Key::from_bytes(&[9; 40]).unwrap()).unwrap();
        let b = TrustedKey::derive(&Key::from_bytes(&[9; 40]).unwrap()).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(
            hmac::sign(a.token_mac(), b"x").as_ref(),
            hmac::sign(b.token_mac(), b"x").as_ref()
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(
            Key::from_bytes(&[0; 31]),
            Err(KeyError::TooShort { len: 31, min: 32 })
        ));
    }

    #[test]
    fn same_key_twice_is_refused() {
        let ring = Keyring::new(Key::from_bytes(&[3; 32]).unwrap()).unwrap();
        assert!(matches!(
            ring.with_verify_only(Key::from_bytes(&[3; 32]).unwrap()),
            Err(KeyError::DuplicateId(_))
        ));
    }
}
