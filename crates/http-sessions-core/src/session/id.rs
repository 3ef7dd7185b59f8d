//! Session ids: the [`SessionId`] a server-side store keeps a session
//! under, and the [`IdSource`] new ones come from.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand;

use crate::error::StoreError;

/// Bytes in a session id: 128 bits, as OWASP asks of session identifiers.
pub const ID_LEN: usize = 16;

/// The id under which a server-side store keeps a session.
///
/// Its `Debug` shows only a short prefix: an id is a bearer credential.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId([u8; ID_LEN]);

/// Hashes the id's bytes in one write, with no length prefix, so a hasher
/// made for random ids can take them as they are.
impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl SessionId {
    /// The id made of these bytes: for stores that keep ids as bytes, and
    /// for tests. New ids come from an [`IdSource`].
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The id in base64url, as used in store keys.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The id [`to_base64`](Self::to_base64) wrote; `None` for anything
    /// else.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::SessionId;
    ///
    /// let id = SessionId::from_bytes([7; 16]);
    /// assert_eq!(SessionId::from_base64(&id.to_base64()), Some(id));
    /// assert_eq!(SessionId::from_base64("too short"), None);
    /// ```
    pub fn from_base64(text: &str) -> Option<Self> {
        let mut id = [0u8; ID_LEN];
        // A base64 text of 16 bytes is 22 characters; anything longer
        // would not fit the buffer and fails to decode.
        match URL_SAFE_NO_PAD.decode_slice(text, &mut id) {
            Ok(ID_LEN) => Some(Self(id)),
            _ => None,
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, ..] = self.0;
        write!(f, "SessionId({a:02x}{b:02x}..)")
    }
}

/// Where new session ids come from.
///
/// [`RandomIds`] is the only source for real use; tests may give a fixed
/// sequence to check that a store never overwrites on create.
pub trait IdSource: Send + Sync + fmt::Debug + 'static {
    /// A new id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if no id can be made.
    fn next_id(&self) -> Result<SessionId, StoreError>;
}

/// 128-bit ids from the operating system's secure generator (ring's
/// `SystemRandom`).
#[derive(Debug)]
pub struct RandomIds(rand::SystemRandom);

impl RandomIds {
    /// A source backed by the system generator.
    pub fn new() -> Self {
        Self(rand::SystemRandom::new())
    }
}

impl Default for RandomIds {
    fn default() -> Self {
        Self::new()
    }
}

impl IdSource for RandomIds {
    fn next_id(&self) -> Result<SessionId, StoreError> {
        let mut id = [0u8; ID_LEN];
        rand::SecureRandom::fill(&self.0, &mut id).map_err(|_| {
            StoreError::unavailable("the system random generator failed to make a session id")
        })?;
        Ok(SessionId(id))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// OWASP ASVS 7.2.3: ids come from the system's CSPRNG, 128 bits of
    /// it. Ten thousand are all distinct, every one of the 16 bytes takes
    /// many values across them, and each bit is set in about half.
    #[test]
    fn ids_are_distinct_and_use_all_their_bits() {
        let source = RandomIds::new();
        let ids: Vec<SessionId> = (0..10_000).map(|_| source.next_id().unwrap()).collect();
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for byte in 0..ID_LEN {
            let values: HashSet<u8> = ids.iter().map(|id| id.as_bytes()[byte]).collect();
            assert!(
                values.len() > 200,
                "byte {byte} took {} values",
                values.len()
            );
            for bit in 0..8 {
                let set = ids
                    .iter()
                    .filter(|id| id.as_bytes()[byte] >> bit & 1 == 1)
                    .count();
                assert!(
                    (4_000..6_000).contains(&set),
                    "byte {byte} bit {bit}: {set}"
                );
            }
        }
    }
}
