//! The cookie's bytes: how a [`Record`] is sealed into a cookie value and
//! opened again.
//!
//! ```text
//! value  = base64url(header || payload)
//! header = version (1) | mode (1) | key id (4) | issued (u64 BE) | expires (u64 BE)
//! signed:    payload = body || HMAC-SHA256(mac key, name || header || body)
//! encrypted: payload = nonce (12) || AES-256-GCM(key, nonce, aad = name || header, body) || tag (16)
//! body   = MessagePack [created, data, flash], or [created, data, extra, flash]
//!          when the session has any of: an expiry of its own, a user, a
//!          label; extra = {"expiry"?: Expiry::encode, "user"?: str, "label"?: str}
//! name   = u16 BE length || cookie name
//! ```
//!
//! The cookie name is authenticated without being sent, so a value minted
//! for one cookie is refused under another.

use std::cell::RefCell;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::Simd;
use base64::engine::general_purpose::NO_PAD;
use http_sessions_core::keys::KeyId;
use http_sessions_core::store::{
    MAX_COOKIE_VALUE_LEN, Opened, Record, StoreError, UnixTime, codec,
};
use ring::{aead, hmac, rand};

use crate::keys::{CookieKey, Protection};
use crate::{CookieStore, Mode};

/// The format version written into every cookie; other versions are refused.
pub const FORMAT_VERSION: u8 = 1;

const HEADER_LEN: usize = 1 + 1 + 4 + 8 + 8;
const MAC_LEN: usize = 32;
const NONCE_LEN: usize = aead::NONCE_LEN;
const GCM_TAG_LEN: usize = 16;
/// How far in the future an issue time may lie before the cookie is
/// refused: room for clocks of several servers that disagree a little.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Unpadded base64url, with the AVX2 or NEON kernels where the CPU has
/// them: a cookie of a few KiB is mostly base64 to encode and decode. Same
/// strictness as the scalar engine (no padding, no stray trailing bits).
static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::url_safe(NO_PAD));

fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Signed => 0,
        Mode::Encrypted => 1,
    }
}

thread_local! {
    /// The working buffer of [`seal_with`] and [`open`] on this thread: a
    /// cookie is a few KiB at most, so one buffer serves every request
    /// instead of an allocation for each seal and each open.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer larger than this (grown by a session far over the cookie
/// limit, which sealing then refuses) is not kept for the next request.
const SCRATCH_KEEP: usize = 16 * 1024;

/// Runs `f` on this thread's scratch buffer, which starts with the
/// authenticated cookie name.
fn with_scratch<R>(name: &str, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let start = |buf: &mut Vec<u8>| {
        buf.clear();
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(name.as_bytes());
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            start(&mut buf);
            let result = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            result
        }
        // Only if `f` itself seals or opens a cookie: it gets its own.
        Err(_) => {
            let mut buf = Vec::new();
            start(&mut buf);
            f(&mut buf)
        }
    })
}

pub(crate) fn seal(
    store: &CookieStore,
    record: &Record,
    now: UnixTime,
) -> Result<String, StoreError> {
    let body_bound = codec::record_len_bound(record);
    seal_with(store, record.expires, now, body_bound, |buf| {
        codec::write_record(buf, record);
        Ok(())
    })
}

/// Seals whatever `write_body` appends as the body, issued at `now`;
/// tests use it to seal bodies that do not decode.
pub(crate) fn seal_with(
    store: &CookieStore,
    expires: UnixTime,
    now: UnixTime,
    body_bound: usize,
    write_body: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
) -> Result<String, StoreError> {
    let key = &store.keys().current;
    with_scratch(store.cookie_name(), |buf| {
        buf.reserve(HEADER_LEN + NONCE_LEN + body_bound + MAC_LEN);
        seal_into(buf, store.mode(), key, now, expires, write_body)
    })
}

/// Seals into `buf`, which holds the authenticated cookie name: one buffer
/// from start to end (name, header, [nonce,] body, tag), the body encoded,
/// sealed and tagged in place.
fn seal_into(
    buf: &mut Vec<u8>,
    mode: Mode,
    key: &CookieKey,
    issued: UnixTime,
    expires: UnixTime,
    write_body: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
) -> Result<String, StoreError> {
    let prefix = buf.len();
    buf.push(FORMAT_VERSION);
    buf.push(mode_byte(mode));
    buf.extend_from_slice(key.id.as_bytes());
    buf.extend_from_slice(&issued.as_secs().to_be_bytes());
    buf.extend_from_slice(&expires.as_secs().to_be_bytes());
    let header_end = buf.len();
    if mode == Mode::Encrypted {
        let mut nonce = [0u8; NONCE_LEN];
        rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut nonce).map_err(|_| {
            StoreError::unavailable("the system random generator failed to make a nonce")
        })?;
        buf.extend_from_slice(&nonce);
    }
    let body_start = buf.len();
    write_body(buf)?;

    // No browser keeps a longer value, so a session that cannot fit is
    // refused before any cryptography is spent on it. The layer holds the
    // value to its tighter `Set-Cookie` limit itself.
    let tag_len = match mode {
        Mode::Signed => MAC_LEN,
        Mode::Encrypted => GCM_TAG_LEN,
    };
    let value_len = ((buf.len() - prefix + tag_len) * 4).div_ceil(3);
    if value_len > MAX_COOKIE_VALUE_LEN {
        return Err(StoreError::TooLarge {
            size: value_len,
            limit: MAX_COOKIE_VALUE_LEN,
        });
    }

    match &key.protection {
        Protection::Mac(mac) => {
            let tag = hmac::sign(mac, buf);
            buf.extend_from_slice(tag.as_ref());
        }
        Protection::Unusable => {
            return Err(StoreError::unavailable(
                "the key of session cookies could not be derived from the keyring",
            ));
        }
        Protection::Aead(aead_key) => {
            let (authenticated, body) = buf.split_at_mut(body_start);
            let (aad, nonce) = authenticated.split_at(header_end);
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| StoreError::Corrupt("nonce of the wrong length".into()))?;
            let tag = aead_key
                .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), body)
                .map_err(|_| StoreError::Corrupt("session could not be encrypted".into()))?;
            buf.extend_from_slice(tag.as_ref());
        }
    }
    // Straight into a string of the exact size (`encode_string` goes
    // through a zeroed 1 KiB chunk buffer and copies out of it).
    Ok(BASE64.encode(buf.get(prefix..).unwrap_or_default()))
}

/// The fixed-size fields at the start of a cookie.
struct Header {
    key: KeyId,
    issued: u64,
    expires: u64,
}

fn read_header(bytes: &[u8], mode: Mode) -> Option<Header> {
    let (&[version, m], rest) = bytes.split_first_chunk::<2>()?;
    if version != FORMAT_VERSION || m != mode_byte(mode) {
        return None;
    }
    let (key, rest) = rest.split_first_chunk::<4>()?;
    let (issued, rest) = rest.split_first_chunk::<8>()?;
    let (expires, _) = rest.split_first_chunk::<8>()?;
    Some(Header {
        key: KeyId::from_bytes(*key),
        issued: u64::from_be_bytes(*issued),
        expires: u64::from_be_bytes(*expires),
    })
}

pub(crate) fn open(store: &CookieStore, value: &str, now: UnixTime) -> Option<Opened> {
    open_shaped(store, value, now)
        .flatten()
        .filter(|opened| !opened.record.is_expired(now))
}

/// [`open`], or `None` when `value` is not shaped like a cookie of this
/// store: not base64url, too short for its header and tag, or of another
/// format version or mode. Nothing cryptographic runs before that is known.
/// A cookie that verifies but has expired is opened all the same, so that
/// the layer can tell an expiry from a forgery; its record says it expired,
/// and the layer never uses it.
pub(crate) fn open_shaped(
    store: &CookieStore,
    value: &str,
    now: UnixTime,
) -> Option<Option<Opened>> {
    if value.len() > MAX_COOKIE_VALUE_LEN {
        return None;
    }
    let opened = with_scratch(store.cookie_name(), |buf| open_from(buf, store, value, now));
    if !matches!(opened, Some(None)) {
        return opened;
    }
    // Sealed under a name the cookie had before, and read under it by the
    // layer: a rename signs nobody out.
    let under_previous = store
        .previous_names()
        .find_map(|name| with_scratch(name, |buf| open_from(buf, store, value, now)).flatten());
    Some(under_previous)
}

/// Opens `value` by way of `buf`, which holds the authenticated cookie
/// name: `None` if it is not shaped like a cookie of `store`, `Some(None)`
/// if it is but does not open.
fn open_from(
    buf: &mut Vec<u8>,
    store: &CookieStore,
    value: &str,
    now: UnixTime,
) -> Option<Option<Opened>> {
    let prefix = buf.len();
    BASE64.decode_vec(value, buf).ok()?;
    let header = read_header(buf.get(prefix..)?, store.mode())?;
    let body_start = prefix + HEADER_LEN;
    let shortest = match store.mode() {
        Mode::Signed => body_start + MAC_LEN,
        Mode::Encrypted => body_start + NONCE_LEN + GCM_TAG_LEN,
    };
    if buf.len() < shortest {
        return None;
    }
    Some(open_shaped_from(buf, body_start, store, &header, now))
}

/// Opens the decoded cookie in `buf`, its body starting at `body_start`:
/// a value shaped like a cookie of `store`, with this `header`.
fn open_shaped_from(
    buf: &mut [u8],
    body_start: usize,
    store: &CookieStore,
    header: &Header,
    now: UnixTime,
) -> Option<Opened> {
    let now = now.as_secs();
    if header.issued > now.saturating_add(MAX_CLOCK_SKEW_SECS) || header.expires < header.issued {
        return None;
    }
    let (key, current_key) = store.keys().by_id(header.key)?;
    // The mode byte was checked against the store's mode, and the store
    // derived every key for that mode; the length holds the tag.
    let body = match &key.protection {
        Protection::Mac(mac) => {
            let tag_start = buf.len().checked_sub(MAC_LEN)?;
            if tag_start < body_start {
                return None;
            }
            let (signed, tag) = buf.split_at(tag_start);
            hmac::verify(mac, signed, tag).ok()?;
            body_start..tag_start
        }
        Protection::Unusable => return None,
        Protection::Aead(aead_key) => {
            let nonce_end = body_start + NONCE_LEN;
            if buf.len() < nonce_end + GCM_TAG_LEN {
                return None;
            }
            let (aad, rest) = buf.split_at_mut(body_start);
            let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
            let plain = aead_key
                .open_in_place(nonce, aead::Aad::from(&*aad), sealed)
                .ok()?;
            nonce_end..nonce_end + plain.len()
        }
    };
    let expires = UnixTime::from_secs(header.expires);
    let record = match buf.get(body).map(|body| codec::read_record(body, expires)) {
        Some(Ok(record)) => record,
        None => return None,
        Some(Err(error)) => {
            // Authentic but undecodable: our own bug or a format change,
            // worth a log line; forgeries never get this far.
            tracing::warn!(%error, key = %header.key, "authentic session cookie did not decode");
            return None;
        }
    };
    Some(Opened {
        record,
        current_key,
    })
}

/// The issue and expiry times in a cookie value's header, unverified: the
/// tests use them to seal a cookie dated like another.
#[cfg(test)]
pub(crate) fn times_of(value: &str, mode: Mode) -> Option<(UnixTime, UnixTime)> {
    let bytes = BASE64.decode(value).ok()?;
    let header = read_header(&bytes, mode)?;
    Some((
        UnixTime::from_secs(header.issued),
        UnixTime::from_secs(header.expires),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use http_sessions_core::store::Value;

    use http_sessions_core::store::Expiry;
    use http_sessions_core::{Key, Keyring, Settings};

    use super::*;

    const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

    fn stores() -> [CookieStore; 2] {
        let settings = Settings::builder()
            .with_keyring(Keyring::new(Key::from_bytes(&[4; 32]).unwrap()).unwrap())
            .build()
            .unwrap();
        [
            CookieStore::signed(&settings),
            CookieStore::encrypted(&settings),
        ]
    }

    /// A signed cookie of the previous release, pinned: it still opens,
    /// and sealing the same session at the same time writes it again.
    #[test]
    fn a_cookie_of_the_previous_release_opens() {
        let keys = || Keyring::new(Key::from_bytes(&[5; 48]).unwrap()).unwrap();
        let settings = Settings::builder()
            .with_keyring(keys())
            .with_cookie_name("session")
            .build()
            .unwrap();
        let store = CookieStore::signed(&settings);
        let cookie = "AQC2hBy-AAAAAGVT8QAAAAAAZVPzWJPOZVPxAIGhYcQBAZCyVNgR7kNt80LbVM8mUOVu4xQhofkZ3T-vwHevLK79_w";
        let issued = UnixTime::from_secs(1_700_000_000);
        // Sealed under the name `session`, it opens under today's default
        // name too, which still reads `session` as a previous name.
        let renamed = Settings::builder().with_keyring(keys()).build().unwrap();
        assert_eq!(renamed.cookie().name, "__Host-session");
        let opened_renamed = CookieStore::signed(&renamed)
            .open(cookie, issued + Duration::from_secs(100))
            .unwrap();
        assert_eq!(opened_renamed.record.created, issued);
        let opened = store
            .open(cookie, issued + Duration::from_secs(100))
            .unwrap();
        assert_eq!(opened.record.created, issued);
        assert_eq!(
            opened.record.data.get("a").unwrap().decode::<u8>().unwrap(),
            1
        );
        assert_eq!(store.seal(&opened.record, issued).unwrap(), cookie);
    }

    fn record() -> Record {
        let mut r = Record::empty(NOW, NOW + Duration::from_secs(600), 16);
        r.data
            .insert("user".into(), Value::encode("alice").unwrap());
        r
    }

    /// What the conformance harness relies on to make a corrupt cookie:
    /// behind an authentic header and MAC, the body alone decides.
    /// Only what a store of this mode could have sealed is shaped; a
    /// forgery is shaped, and does not open.
    #[test]
    fn shaped_is_decided_before_any_cryptography() {
        let [signed, encrypted] = stores();
        for (store, other) in [(&signed, &encrypted), (&encrypted, &signed)] {
            let value = store.seal(&record(), NOW).unwrap();
            assert!(matches!(open_shaped(store, &value, NOW), Some(Some(_))));
            let mut forged = value.clone().into_bytes();
            forged[40] = if forged[40] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert_eq!(open_shaped(store, &forged, NOW), Some(None));
            // Expired, it still verifies: opened, so the layer can report
            // the expiry, but never by `open`.
            let later = NOW + Duration::from_secs(601);
            assert!(
                matches!(open_shaped(store, &value, later), Some(Some(o)) if o.record.is_expired(later))
            );
            assert_eq!(open(store, &value, later), None);
            let from_other = other.seal(&record(), NOW).unwrap();
            let mut version_2 = BASE64.decode(&value).unwrap();
            version_2[0] = 2;
            let bare_header = BASE64.encode(&BASE64.decode(&value).unwrap()[..HEADER_LEN + 8]);
            for junk in [
                "",
                "garbage!",
                &from_other,
                &BASE64.encode(&version_2),
                &bare_header,
                &format!("{value}."),
            ] {
                assert_eq!(open_shaped(store, junk, NOW), None, "{junk:?}");
            }
        }
    }

    #[test]
    fn an_authentic_cookie_opens_only_if_its_body_decodes() {
        let mut body = Vec::new();
        codec::write_record(&mut body, &record());
        for store in stores() {
            let expires = record().expires;
            let good = store.seal_raw_body(&body, expires, NOW).unwrap();
            assert_eq!(store.open(&good, NOW).unwrap().record, record());
            let bad = store
                .seal_raw_body(&[0x93, 0xc0, 0xc0, 0xc0], expires, NOW)
                .unwrap();
            assert!(store.open(&bad, NOW).is_none());
        }
    }

    #[test]
    fn an_expiry_user_and_label_travel_in_the_cookie_and_the_defaults_cost_nothing() {
        for store in stores() {
            let default = store.seal(&record(), NOW).unwrap();
            let mut own = record();
            own.expiry = Expiry::Lifetimes {
                idle: Duration::from_secs(60),
                absolute: Duration::from_secs(86_400),
            };
            let sealed = store.seal(&own, NOW).unwrap();
            assert_eq!(store.open(&sealed, NOW).unwrap().record, own);
            assert!(sealed.len() > default.len());
            own.expiry = Expiry::BrowserSession;
            own.user = Some("user-42".into());
            own.label = Some("Firefox on Linux".into());
            let sealed = store.seal(&own, NOW).unwrap();
            assert_eq!(store.open(&sealed, NOW).unwrap().record, own);
        }
        // An expiry that does not decode makes the body undecodable.
        let mut body = Vec::new();
        rmp::encode::write_array_len(&mut body, 4).unwrap();
        rmp::encode::write_uint(&mut body, 1).unwrap();
        rmp::encode::write_map_len(&mut body, 0).unwrap();
        rmp::encode::write_map_len(&mut body, 1).unwrap();
        rmp::encode::write_str(&mut body, "expiry").unwrap();
        rmp::encode::write_str(&mut body, "forever").unwrap();
        codec::write_flashes(&mut body, &http_sessions_core::store::FlashQueue::default());
        assert!(codec::read_record(&body, NOW).is_err());
    }

    /// A cookie keeps no generation (the manager stamps one on server-side
    /// bindings only), and writes no field for it: a bound session's
    /// cookie is the one the previous release wrote and reads.
    #[test]
    fn a_bound_session_writes_no_generation() {
        let mut bound = record();
        bound.user = Some("user-42".into());
        let mut body = Vec::new();
        codec::write_record(&mut body, &bound);
        assert!(!body.windows(3).any(|w| w == b"gen"), "{body:?}");
        for store in stores() {
            let sealed = store.seal(&bound, NOW).unwrap();
            assert_eq!(store.open(&sealed, NOW).unwrap().record, bound);
        }
    }

    #[test]
    fn times_are_read_from_the_header() {
        for store in stores() {
            let later = NOW + Duration::from_secs(5);
            let value = store.seal(&record(), later).unwrap();
            assert_eq!(
                times_of(&value, store.mode()),
                Some((later, record().expires))
            );
            assert_eq!(times_of("AAAA", store.mode()), None);
        }
    }

    #[test]
    fn an_open_while_the_buffer_is_held_uses_its_own() {
        let [store, _] = stores();
        let value = store.seal(&record(), NOW).unwrap();
        // As if a body writer opened a cookie: the thread's buffer is held,
        // so the open must work in a buffer of its own and leave this one.
        let opened = with_scratch("session", |held| {
            held.extend_from_slice(b"held");
            let opened = store.open(&value, NOW);
            assert!(held.ends_with(b"held"));
            opened
        });
        assert_eq!(opened.unwrap().record, record());
    }
}
