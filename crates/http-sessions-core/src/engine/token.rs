//! The session cookie of server-side stores: a random [`SessionId`] and its
//! HMAC, as `id.mac` in base64url, so a forged or random token is refused
//! before any store is asked. Only the manager sees tokens; stores see ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::config::keys::Keyring;
use crate::error::StoreError;
use crate::session::id::SessionId;

/// Base64url characters of an id.
const ID_B64_LEN: usize = 22;
const MAC_B64_LEN: usize = 43;
/// Length of a token: id, a dot, and the HMAC-SHA256 tag.
pub(crate) const TOKEN_LEN: usize = ID_B64_LEN + 1 + MAC_B64_LEN;

/// A token that verified, and whether it did so under the current key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenedToken {
    /// The session id it names.
    pub(crate) id: SessionId,
    /// False when a verify-only key verified it: the cookie should be
    /// issued again under the current key.
    pub(crate) current_key: bool,
}

/// The token for `id`, signed with the current key.
///
/// Written into a buffer of the token's fixed length: base64's
/// `encode_string` goes through a 1 KiB scratch buffer per call, which cost
/// more than the rest of the cookie. The errors cannot happen with these
/// lengths; they are reported rather than assumed away.
pub(crate) fn seal(keys: &Keyring, id: &SessionId) -> Result<String, StoreError> {
    let tag = hmac::sign(keys.current().token_mac(), id.as_bytes());
    let mut token = [b'.'; TOKEN_LEN];
    let (id_b64, dot_mac_b64) = token.split_at_mut(ID_B64_LEN);
    let mac_b64 = dot_mac_b64.get_mut(1..).unwrap_or_default();
    let unwritten =
        |reason: String| StoreError::Corrupt(format!("session token not written: {reason}"));
    fill(id.as_bytes(), id_b64)
        .and_then(|()| fill(tag.as_ref(), mac_b64))
        .map_err(unwritten)?;
    std::str::from_utf8(&token)
        .map(str::to_owned)
        .map_err(|e| unwritten(e.to_string()))
}

/// Writes `bytes` in base64url over the whole of `out`, or says why not.
fn fill(bytes: &[u8], out: &mut [u8]) -> Result<(), String> {
    match URL_SAFE_NO_PAD.encode_slice(bytes, out) {
        Ok(written) if written == out.len() => Ok(()),
        Ok(written) => Err(format!("{written} characters for a field of {}", out.len())),
        Err(error) => Err(error.to_string()),
    }
}

/// A value shaped like a token (the right length, the dot in its place,
/// base64url that decodes), its MAC not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shaped {
    id: SessionId,
    tag: [u8; 32],
}

/// The id and tag a value holds, if it is shaped like a token; anything
/// else is `None`, for the cost of reading it once and no MAC. Only shaped
/// values count toward the candidates a request may try, so another
/// application's cookie of the same name hides no session.
pub(crate) fn shaped(token: &str) -> Option<Shaped> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let (id_b64, rest) = token.split_at_checked(ID_B64_LEN)?;
    let mac_b64 = rest.strip_prefix('.')?;
    let id = SessionId::from_base64(id_b64)?;
    let mut tag = [0u8; 32];
    let m = URL_SAFE_NO_PAD.decode_slice(mac_b64, &mut tag).ok()?;
    if m != tag.len() {
        return None;
    }
    Some(Shaped { id, tag })
}

/// The id a shaped token names, if its MAC verifies under a trusted key:
/// at most one HMAC per trusted key, constant-time in the tag.
pub(crate) fn verify(keys: &Keyring, token: &Shaped) -> Option<OpenedToken> {
    keys.all().find_map(|k| {
        hmac::verify(k.token_mac(), token.id.as_bytes(), &token.tag)
            .ok()
            .map(|()| OpenedToken {
                id: token.id,
                current_key: keys.is_current(k),
            })
    })
}

/// The id a token names, if it is shaped like one and its MAC verifies.
#[cfg(test)]
pub(crate) fn open(keys: &Keyring, token: &str) -> Option<OpenedToken> {
    verify(keys, &shaped(token)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::Key;
    use crate::session::id::{ID_LEN, IdSource, RandomIds};

    fn ring(byte: u8) -> Keyring {
        Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn sealed_tokens_open_to_their_id() {
        let keys = ring(1);
        let id = RandomIds::new().next_id().unwrap();
        let token = seal(&keys, &id).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(
            open(&keys, &token),
            Some(OpenedToken {
                id,
                current_key: true
            })
        );
    }

    /// Tokens already in browsers must keep opening: the format is
    /// `base64url(id) "." base64url(tag)`, whatever writes it.
    /// A token the previous release issued, pinned: it still opens.
    #[test]
    fn a_token_of_the_previous_release_opens() {
        let keys = Keyring::new(crate::Key::from_bytes(&[5u8; 48]).unwrap()).unwrap();
        let token = "BwcHBwcHBwcHBwcHBwcHBw.0siLb2VLV6upUvgIkHiAFG4PN9UlsFwPMVcIpFgWuZA";
        let opened = open(&keys, token).expect("the token opens");
        assert_eq!(opened.id, SessionId::from_bytes([7; 16]));
        assert_eq!(seal(&keys, &opened.id).unwrap(), token);
    }

    #[test]
    fn the_token_format_is_id_dot_tag() {
        let keys = ring(1);
        let id = SessionId::from_bytes([9; ID_LEN]);
        let tag = hmac::sign(keys.current().token_mac(), id.as_bytes());
        let expected = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(id.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        );
        assert_eq!(seal(&keys, &id).unwrap(), expected);
    }

    #[test]
    fn any_changed_character_is_refused() {
        let keys = ring(1);
        let token = seal(&keys, &SessionId::from_bytes([5; ID_LEN])).unwrap();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(bytes).unwrap();
            assert_eq!(open(&keys, &forged), None, "position {i}");
        }
    }

    #[test]
    fn other_keys_and_garbage_are_refused() {
        let token = seal(&ring(1), &SessionId::from_bytes([5; ID_LEN])).unwrap();
        assert_eq!(open(&ring(2), &token), None);
        for bad in ["", ".", "a.b", &"x".repeat(TOKEN_LEN), &"é".repeat(40)] {
            assert_eq!(open(&ring(1), bad), None, "{bad:?}");
        }
    }

    /// What counts as shaped: exactly what could have been sealed, whatever
    /// the key; a changed character may still be shaped (and then fail the
    /// MAC), a wrong length, a misplaced dot or a foreign character never.
    #[test]
    fn only_token_shaped_values_are_shaped() {
        let token = seal(&ring(1), &SessionId::from_bytes([5; ID_LEN])).unwrap();
        assert!(shaped(&token).is_some());
        assert!(shaped(&seal(&ring(2), &SessionId::from_bytes([6; ID_LEN])).unwrap()).is_some());
        let mut forged = token.clone().into_bytes();
        forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(shaped(&forged).is_some());
        assert_eq!(open(&ring(1), &forged), None);
        let (id, mac) = token.split_at(ID_B64_LEN);
        for bad in [
            String::new(),
            "garbage".to_owned(),
            token[1..].to_owned(),
            format!("{token}A"),
            format!("{id}A{}", &mac[1..]),
            // The dot one place early.
            format!(
                "{}.{}{}",
                &id[..ID_B64_LEN - 1],
                &id[ID_B64_LEN - 1..],
                &mac[1..]
            ),
            format!("{id}{}!", &mac[..mac.len() - 1]),
            format!("{id}{}=", &mac[..mac.len() - 1]),
            format!("\"{}\"", &token[2..]),
        ] {
            assert_eq!(shaped(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn verify_only_keys_open_but_ask_for_reissue() {
        let old = ring(1);
        let token = seal(&old, &SessionId::from_bytes([5; ID_LEN])).unwrap();
        let rotated = Keyring::new(Key::from_bytes(&[2; 32]).unwrap())
            .unwrap()
            .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
            .unwrap();
        let opened = open(&rotated, &token).unwrap();
        assert!(!opened.current_key);
        assert_eq!(opened.id, SessionId::from_bytes([5; ID_LEN]));
    }
}
