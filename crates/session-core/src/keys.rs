//! Secret keys: a [`Keyring`] of one signing [`Key`] and any number of
//! verify-only keys, and the purpose-bound sub-keys derived from each.

use std::fmt;

use ring::{aead, hkdf, hmac, rand};

use crate::error::KeyError;

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
/// use session_core::Key;
///
/// let key = Key::from_bytes(&[7u8; 32])?;
/// assert_eq!(format!("{key:?}"), "Key(REDACTED)");
/// assert!(Key::from_bytes(b"too short").is_err());
/// # Ok::<(), session_core::KeyError>(())
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
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The sub-keys derived from one [`Key`] with HKDF-SHA256, one per purpose,
/// so no two uses ever share key material.
pub struct DerivedKeys {
    id: KeyId,
    token_mac: hmac::Key,
    cookie_mac: hmac::Key,
    cookie_aead: aead::LessSafeKey,
}

/// A length, for HKDF outputs that are not keys of a ring algorithm.
struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl DerivedKeys {
    fn derive(key: &Key) -> Result<Self, KeyError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&key.0);
        let mut id = [0u8; 4];
        prk.expand(&[b"key-id"], OutputLen(id.len()))
            .and_then(|okm| okm.fill(&mut id))
            .map_err(|_| KeyError::Derive)?;
        let token_mac = prk
            .expand(&[b"token-mac"], hmac::HMAC_SHA256)
            .map_err(|_| KeyError::Derive)?
            .into();
        let cookie_mac = prk
            .expand(&[b"cookie-mac"], hmac::HMAC_SHA256)
            .map_err(|_| KeyError::Derive)?
            .into();
        let unbound: aead::UnboundKey = prk
            .expand(&[b"cookie-aead"], &aead::AES_256_GCM)
            .map_err(|_| KeyError::Derive)?
            .into();
        Ok(Self {
            id: KeyId(id),
            token_mac,
            cookie_mac,
            cookie_aead: aead::LessSafeKey::new(unbound),
        })
    }

    /// The public name of the key these were derived from.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// HMAC-SHA256 key for server-side session tokens.
    pub fn token_mac(&self) -> &hmac::Key {
        &self.token_mac
    }

    /// HMAC-SHA256 key for signed cookies.
    pub fn cookie_mac(&self) -> &hmac::Key {
        &self.cookie_mac
    }

    /// AES-256-GCM key for encrypted cookies.
    pub fn cookie_aead(&self) -> &aead::LessSafeKey {
        &self.cookie_aead
    }
}

impl fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedKeys")
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
/// use session_core::{Key, Keyring};
///
/// let old = Key::from_bytes(&[1u8; 32])?;
/// let new = Key::from_bytes(&[2u8; 32])?;
/// let ring = Keyring::new(new)?.with_verify_only(old)?;
/// assert_eq!(ring.all().count(), 2);
/// # Ok::<(), session_core::KeyError>(())
/// ```
#[derive(Debug)]
pub struct Keyring {
    current: DerivedKeys,
    /// In the order they were added.
    verify_only: Vec<DerivedKeys>,
}

impl Keyring {
    /// A keyring whose current key is `current`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Derive`] if sub-key derivation fails.
    pub fn new(current: Key) -> Result<Self, KeyError> {
        Ok(Self {
            current: DerivedKeys::derive(&current)?,
            verify_only: Vec::new(),
        })
    }

    /// Adds a key that verifies but never signs.
    ///
    /// # Errors
    ///
    /// [`KeyError::Derive`] if sub-key derivation fails, and
    /// [`KeyError::DuplicateId`] if the key's id equals one already present.
    pub fn with_verify_only(mut self, key: Key) -> Result<Self, KeyError> {
        let derived = DerivedKeys::derive(&key)?;
        if self.all().any(|k| k.id == derived.id) {
            return Err(KeyError::DuplicateId(derived.id));
        }
        self.verify_only.push(derived);
        Ok(self)
    }

    /// The key that signs everything new.
    pub fn current(&self) -> &DerivedKeys {
        &self.current
    }

    /// Every trusted key, current first.
    pub fn all(&self) -> impl Iterator<Item = &DerivedKeys> {
        std::iter::once(&self.current).chain(&self.verify_only)
    }

    /// The trusted key with this id, if any.
    pub fn by_id(&self, id: KeyId) -> Option<&DerivedKeys> {
        self.all().find(|k| k.id == id)
    }

    /// Whether `key` is the current key.
    pub fn is_current(&self, key: &DerivedKeys) -> bool {
        self.current.id == key.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_keys_differ_per_purpose_and_per_key() {
        let a = DerivedKeys::derive(&Key::from_bytes(&[1; 32]).unwrap()).unwrap();
        let b = DerivedKeys::derive(&Key::from_bytes(&[2; 32]).unwrap()).unwrap();
        let tag = |k: &hmac::Key| hmac::sign(k, b"x").as_ref().to_vec();
        assert_ne!(tag(a.token_mac()), tag(a.cookie_mac()));
        assert_ne!(tag(a.token_mac()), tag(b.token_mac()));
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn derivation_is_deterministic() {
        let a = DerivedKeys::derive(&Key::from_bytes(&[9; 40]).unwrap()).unwrap();
        let b = DerivedKeys::derive(&Key::from_bytes(&[9; 40]).unwrap()).unwrap();
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
