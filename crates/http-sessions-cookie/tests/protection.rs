//! What the cookie store must refuse, and what it must never reveal: every
//! bit flip, every bad input, keys rotated and removed, the size edge; and
//! what it must keep opening: cookies of earlier releases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_sessions_cookie::{CookieStore, Mode};
use http_sessions_core::store::{CookieCodec, Record, StoreError, UnixTime, Value};
use http_sessions_core::{Key, Keyring, Settings, store::MAX_COOKIE_VALUE_LEN};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const SECRET: &str = "the plaintext nobody may read 0123456789";

/// Long enough that random ciphertext never contains it by chance.
const FLASH_TEXT: &str = "a flash message that must stay hidden";

fn keyring(byte: u8) -> Keyring {
    Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
}

fn record() -> Record {
    let mut r = Record::empty(NOW, NOW + Duration::from_secs(600), 16);
    r.data.insert("user".into(), Value::encode(SECRET).unwrap());
    r.data.insert("n".into(), Value::encode(&42u32).unwrap());
    r.flash
        .push(http_sessions_core::FlashLevel::Info, FLASH_TEXT.into());
    r
}

/// A store of `mode` under `keys`, for the cookie `name`.
fn store_for(mode: Mode, keys: Keyring, name: &str) -> CookieStore {
    let settings = Settings::builder()
        .with_keyring(keys)
        .with_cookie_name(name)
        .build()
        .unwrap();
    match mode {
        Mode::Signed => CookieStore::signed(&settings),
        Mode::Encrypted => CookieStore::encrypted(&settings),
    }
}

/// A store of `mode` under `keyring(byte)`, for the cookie `session`.
fn store(mode: Mode, byte: u8) -> CookieStore {
    store_for(mode, keyring(byte), "session")
}

fn seal(store: &CookieStore, now: UnixTime) -> String {
    store.seal(&record(), now).unwrap()
}

const BOTH: [Mode; 2] = [Mode::Signed, Mode::Encrypted];

#[test]
fn a_valid_cookie_opens_to_the_same_record() {
    for mode in BOTH {
        let store = store(mode, 1);
        let value = seal(&store, NOW);
        let opened = store.open(&value, NOW).unwrap();
        assert_eq!(opened.record, record());
        assert!(opened.current_key);
        // The same through the trait the session layer calls.
        let codec: &dyn CookieCodec = &store;
        let value = codec.seal(&record(), NOW).unwrap();
        assert_eq!(codec.open(&value, NOW), Some(opened));
    }
}

/// Cookies sealed by the release before the cookie keys were derived in
/// this crate (key `[0x42; 32]`, issued at `NOW`, valid for ten minutes):
/// the keys and the format are unchanged, so they must still open.
#[test]
fn cookies_of_the_previous_release_still_open() {
    const SIGNED: &str = "AQDw7tJUAAAAAGtJ0gAAAAAAa0nUWJPOa0nSAIKhbsQBKqR1c2VyxAalYWxpY2WRkgGiaGnXM5QVisK2G5vVD1aZbQXSlg4qez2WdS6_1oQlsYpihA";
    const ENCRYPTED: &str = "AQHw7tJUAAAAAGtJ0gAAAAAAa0nUWJhIMUcuVD41KMNBl7oDT6SHX28kSUfiht7itE57Vh3k3sd-WxTJipuVzxbgQdPtj0yUFOZ1Wj8841N3";
    let mut expected = Record::empty(NOW, NOW + Duration::from_secs(600), 16);
    expected
        .data
        .insert("user".into(), Value::encode("alice").unwrap());
    expected
        .data
        .insert("n".into(), Value::encode(&42u32).unwrap());
    expected
        .flash
        .push(http_sessions_core::FlashLevel::Info, "hi".into());
    for (mode, value) in [(Mode::Signed, SIGNED), (Mode::Encrypted, ENCRYPTED)] {
        let opened = store(mode, 0x42).open(value, NOW).unwrap();
        assert_eq!(opened.record, expected, "{mode:?}");
        assert!(opened.current_key);
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    for mode in BOTH {
        let store = store(mode, 1);
        let value = seal(&store, NOW);
        let raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let mut tried = 0;
        for byte in 0..raw.len() {
            for bit in 0..8 {
                let mut flipped = raw.clone();
                flipped[byte] ^= 1 << bit;
                let forged = URL_SAFE_NO_PAD.encode(&flipped);
                assert!(
                    store.open(&forged, NOW).is_none(),
                    "{mode:?}: flip of bit {bit} in byte {byte} was accepted"
                );
                tried += 1;
            }
        }
        assert_eq!(tried, raw.len() * 8);
        // And every bit of the text as sent.
        for i in 0..value.len() {
            for bit in 0..7 {
                let mut text = value.clone().into_bytes();
                text[i] ^= 1 << bit;
                if let Ok(text) = String::from_utf8(text) {
                    assert!(store.open(&text, NOW).is_none());
                }
            }
        }
    }
}

#[test]
fn encryption_hides_the_state_and_never_repeats() {
    let store = store(Mode::Encrypted, 1);
    let a = seal(&store, NOW);
    let b = seal(&store, NOW);
    assert_ne!(
        a, b,
        "same state, same key, same time: the nonce must differ"
    );
    for value in [&a, &b] {
        let raw = URL_SAFE_NO_PAD.decode(value).unwrap();
        let needle = SECRET.as_bytes();
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
        assert!(!value.contains("plaintext"));
        let flash = FLASH_TEXT.as_bytes();
        assert!(
            !raw.windows(flash.len()).any(|w| w == flash),
            "flash text leaked"
        );
    }
    // The signed mode, by contrast, carries it readably: documented.
    let signed = URL_SAFE_NO_PAD
        .decode(seal(&self::store(Mode::Signed, 1), NOW))
        .unwrap();
    assert!(signed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
}

#[test]
fn rotation_accepts_old_keys_reissues_and_forgets_removed_ones() {
    for mode in BOTH {
        let old = store(mode, 1);
        let rotated = store_for(
            mode,
            keyring(2)
                .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
                .unwrap(),
            "session",
        );
        let new_only = store(mode, 2);
        let under_old = seal(&old, NOW);
        let opened = rotated.open(&under_old, NOW).unwrap();
        assert!(
            !opened.current_key,
            "a verify-only key must ask for a reissue"
        );
        assert_eq!(opened.record, record());
        // Reissued cookies are made under the current key only.
        let reissued = seal(&rotated, NOW);
        assert!(new_only.open(&reissued, NOW).is_some());
        assert!(old.open(&reissued, NOW).is_none());
        assert!(rotated.open(&reissued, NOW).unwrap().current_key);
        // Once the old key is removed, its cookies are no session.
        assert!(new_only.open(&under_old, NOW).is_none());
    }
}

#[test]
fn bad_inputs_are_no_session() {
    for mode in BOTH {
        let store = store(mode, 1);
        let good = seal(&store, NOW);
        let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
        // Every truncation, including a truncated GCM tag.
        for len in 0..raw.len() {
            let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
            assert!(store.open(&cut, NOW).is_none(), "truncated to {len}");
        }
        // Each case: what it is, the value, the store that opens it, when.
        let cases: Vec<(&str, String, CookieStore, UnixTime)> = vec![
            ("wrong key", good.clone(), self::store(mode, 9), NOW),
            (
                "other cookie name",
                good.clone(),
                store_for(mode, keyring(1), "other"),
                NOW,
            ),
            (
                "expired",
                good.clone(),
                store.clone(),
                NOW + Duration::from_secs(600),
            ),
            ("future-dated", future_dated(&store), store.clone(), NOW),
            (
                "expiry before issue",
                seal(&store, NOW + Duration::from_secs(3600)),
                store.clone(),
                NOW + Duration::from_secs(3590),
            ),
            ("bad base64", "!!!not*base64***".into(), store.clone(), NOW),
            ("padding", format!("{good}=="), store.clone(), NOW),
            ("empty", String::new(), store.clone(), NOW),
            ("100 KB", "A".repeat(100 * 1024), store.clone(), NOW),
            (
                "100 KB of valid base64 bytes",
                URL_SAFE_NO_PAD.encode(vec![1u8; 75 * 1024]),
                store.clone(),
                NOW,
            ),
            (
                "other mode",
                seal(&self::store(other_mode(mode), 1), NOW),
                store.clone(),
                NOW,
            ),
        ];
        for (what, value, opener, now) in cases {
            assert!(opener.open(&value, now).is_none(), "{mode:?}: {what}");
        }
        // A clock a little behind the issuing server's is tolerated.
        let ahead = seal(&store, NOW + Duration::from_secs(30));
        assert!(store.open(&ahead, NOW).is_some());
    }
}

/// Issued an hour from now, valid for two: only the issue time is wrong.
fn future_dated(store: &CookieStore) -> String {
    let mut r = record();
    r.expires = NOW + Duration::from_secs(7200);
    let later = NOW + Duration::from_secs(3600);
    let value = store.seal(&r, later).unwrap();
    assert!(
        store.open(&value, later).is_some(),
        "valid at its own issue time"
    );
    value
}

fn other_mode(mode: Mode) -> Mode {
    match mode {
        Mode::Signed => Mode::Encrypted,
        Mode::Encrypted => Mode::Signed,
    }
}

/// A record holding a string of `n` bytes besides [`record`]'s values.
fn filled(n: usize) -> Record {
    let mut r = record();
    r.data
        .insert("fill".into(), Value::encode(&"x".repeat(n)).unwrap());
    r
}

#[test]
fn a_value_longer_than_any_cookie_is_a_typed_error() {
    for mode in BOTH {
        let store = store(mode, 1);
        match store.seal(&filled(5000), NOW) {
            Err(StoreError::TooLarge { size, limit }) => {
                assert_eq!(limit, MAX_COOKIE_VALUE_LEN);
                assert!(size > MAX_COOKIE_VALUE_LEN, "{size}");
            }
            other => panic!("{mode:?}: expected TooLarge, got {other:?}"),
        }
        // The edge is exact: the largest session that seals makes a value
        // within a base64 step of the limit, and it opens.
        let (mut lo, mut hi) = (0usize, 5000usize);
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if store.seal(&filled(mid), NOW).is_ok() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let value = store.seal(&filled(lo), NOW).unwrap();
        assert!(value.len() <= MAX_COOKIE_VALUE_LEN, "{}", value.len());
        assert!(value.len() > MAX_COOKIE_VALUE_LEN - 4, "{}", value.len());
        assert_eq!(store.open(&value, NOW).unwrap().record, filled(lo));
    }
}

#[test]
fn debug_shows_key_ids_never_keys() {
    let keys = keyring(1);
    let id = keys.current().id();
    let store = store_for(Mode::Encrypted, keys, "__Host-s");
    assert_eq!(
        format!("{store:?}"),
        format!("CookieStore {{ mode: Encrypted, cookie_name: \"__Host-s\", keys: [\"{id}\"] }}")
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the session holds, it comes back as it was.
        #[test]
        fn any_record_round_trips(
            entries in proptest::collection::btree_map("[a-z]{1,12}", ".{0,40}", 0..12),
            flashes in proptest::collection::vec(".{0,20}", 0..4),
            encrypted in any::<bool>(),
        ) {
            let store = store(if encrypted { Mode::Encrypted } else { Mode::Signed }, 3);
            let mut r = Record::empty(NOW, NOW + Duration::from_secs(60), 16);
            for (k, v) in &entries {
                r.data.insert(k.into(), Value::encode(v).unwrap());
            }
            for f in &flashes {
                r.flash.push(http_sessions_core::FlashLevel::Warning, f.clone());
            }
            let value = store.seal(&r, NOW).unwrap();
            let back = store.open(&value, NOW).unwrap();
            prop_assert_eq!(back.record, r);
        }

        /// No input, however made, panics or opens without the key.
        #[test]
        fn arbitrary_input_never_opens(input in ".{0,600}", bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for mode in BOTH {
                let store = store(mode, 3);
                prop_assert!(store.open(&input, NOW).is_none());
                let encoded = URL_SAFE_NO_PAD.encode(&bytes);
                prop_assert!(store.open(&encoded, NOW).is_none());
            }
        }
    }
}
