//! The cookie's keys: derived once, when the store is built, from each
//! trusted key of the settings' keyring, so sealing and opening never
//! derive anything.
//!
//! The purposes `cookie-mac` and `cookie-aead` give the same bytes as the
//! HKDF expansion the core used to do itself, so cookies sealed before the
//! keys moved here still open.

use std::fmt;

use http_sessions_core::{Keyring, keys::KeyId, keys::TrustedKey};
use ring::{aead, hmac};

use crate::Mode;

/// The sub-key purpose of the HMAC-SHA256 key of signed cookies.
const MAC_PURPOSE: &[u8] = b"cookie-mac";
/// The sub-key purpose of the AES-256-GCM key of encrypted cookies.
const AEAD_PURPOSE: &[u8] = b"cookie-aead";

/// What protects a cookie under one trusted key: only the key its mode
/// needs is derived.
pub(crate) enum Protection {
    /// HMAC-SHA256 of signed cookies.
    Mac(hmac::Key),
    /// AES-256-GCM of encrypted cookies. Boxed: AES's key schedule is
    /// three times the size of an HMAC key, which signed stores would
    /// otherwise carry for each key.
    Aead(Box<aead::LessSafeKey>),
    /// The key could not be derived (HKDF or ring refused it, which they
    /// do only for lengths this crate never asks for): sealing fails with
    /// an error and opening finds no session, rather than the store
    /// panicking.
    Unusable,
}

/// One trusted key, ready to seal or open cookies.
pub(crate) struct CookieKey {
    /// The id a cookie carries to name this key.
    pub(crate) id: KeyId,
    pub(crate) protection: Protection,
}

impl CookieKey {
    fn derive(key: &TrustedKey, mode: Mode) -> Self {
        let protection = match mode {
            Mode::Signed => match key.sub_key(MAC_PURPOSE) {
                Ok(sub) => Protection::Mac(hmac::Key::new(hmac::HMAC_SHA256, sub.as_bytes())),
                Err(_) => Protection::Unusable,
            },
            Mode::Encrypted => {
                let sub = key.sub_key(AEAD_PURPOSE).ok();
                let unbound = sub
                    .and_then(|sub| aead::UnboundKey::new(&aead::AES_256_GCM, sub.as_bytes()).ok());
                match unbound {
                    Some(key) => Protection::Aead(Box::new(aead::LessSafeKey::new(key))),
                    None => Protection::Unusable,
                }
            }
        };
        Self {
            id: key.id(),
            protection,
        }
    }
}

/// Every trusted key of a keyring, derived for one mode.
pub(crate) struct CookieKeys {
    /// Seals everything new.
    pub(crate) current: CookieKey,
    /// Open cookies only, in the keyring's order.
    verify_only: Vec<CookieKey>,
}

impl CookieKeys {
    pub(crate) fn derive(keyring: &Keyring, mode: Mode) -> Self {
        Self {
            current: CookieKey::derive(keyring.current(), mode),
            verify_only: keyring
                .all()
                .filter(|k| !keyring.is_current(k))
                .map(|k| CookieKey::derive(k, mode))
                .collect(),
        }
    }

    /// The key with this id, and whether it is the current one. A keyring
    /// holds a handful of keys, so a scan is the fastest lookup.
    pub(crate) fn by_id(&self, id: KeyId) -> Option<(&CookieKey, bool)> {
        if self.current.id == id {
            return Some((&self.current, true));
        }
        self.verify_only
            .iter()
            .find(|k| k.id == id)
            .map(|k| (k, false))
    }

    /// The ids of every key, current first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        std::iter::once(&self.current)
            .chain(&self.verify_only)
            .map(|k| k.id)
    }
}

impl fmt::Debug for CookieKeys {
    /// The ids only: the keys themselves never print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ids().map(|id| id.to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use http_sessions_core::Key;
    use ring::hkdf;

    use super::*;

    /// The core's HKDF salt: the old derivation, rebuilt here with ring's
    /// own HKDF, is what cookies sealed before this crate derived its keys
    /// were made with.
    const CORE_SALT: &[u8] = b"sessions/keyring/v1";

    fn old_prk(secret: &[u8]) -> hkdf::Prk {
        hkdf::Salt::new(hkdf::HKDF_SHA256, CORE_SALT).extract(secret)
    }

    #[test]
    fn the_mac_key_is_the_old_hkdf_derivation() {
        let secret = [0x42; 32];
        let keyring = Keyring::new(Key::from_bytes(&secret).unwrap()).unwrap();
        let keys = CookieKeys::derive(&keyring, Mode::Signed);
        let old: hmac::Key = old_prk(&secret)
            .expand(&[MAC_PURPOSE], hmac::HMAC_SHA256)
            .unwrap()
            .into();
        let Protection::Mac(new) = &keys.current.protection else {
            panic!("a signed store derives a MAC key");
        };
        let tag = hmac::sign(&old, b"name, header and body");
        assert!(hmac::verify(new, b"name, header and body", tag.as_ref()).is_ok());
    }

    #[test]
    fn the_aead_key_is_the_old_hkdf_derivation() {
        let secret = [0x42; 40];
        let keyring = Keyring::new(Key::from_bytes(&secret).unwrap()).unwrap();
        let keys = CookieKeys::derive(&keyring, Mode::Encrypted);
        let old: aead::UnboundKey = old_prk(&secret)
            .expand(&[AEAD_PURPOSE], &aead::AES_256_GCM)
            .unwrap()
            .into();
        let old = aead::LessSafeKey::new(old);
        let Protection::Aead(new) = &keys.current.protection else {
            panic!("an encrypted store derives an AEAD key");
        };
        let nonce = [7; aead::NONCE_LEN];
        let mut sealed = b"the body".to_vec();
        old.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(b"aad"),
            &mut sealed,
        )
        .unwrap();
        let opened = new
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(b"aad"),
                &mut sealed,
            )
            .unwrap();
        assert_eq!(opened, b"the body");
    }

    #[test]
    fn keys_are_found_by_id_and_never_printed() {
        let keyring = Keyring::new(Key::from_bytes(&[2; 32]).unwrap())
            .unwrap()
            .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
            .unwrap();
        let keys = CookieKeys::derive(&keyring, Mode::Signed);
        let ids: Vec<KeyId> = keyring.all().map(|k| k.id()).collect();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ids);
        assert!(matches!(keys.by_id(ids[0]), Some((_, true))));
        assert!(matches!(keys.by_id(ids[1]), Some((_, false))));
        assert!(keys.by_id(KeyId::from_bytes([0; 4])).is_none());
        let printed = format!("{keys:?}");
        assert_eq!(printed, format!("[\"{}\", \"{}\"]", ids[0], ids[1]));
    }
}
