//! What the cookie store must refuse, and what it must never reveal: every
//! bit flip, every bad input, keys rotated and removed, the size edge.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use session_core::{Context, Key, Keyring, Loaded, RandomIds, Record, StoreError, UnixTime, Value};
use session_signed_cookie::CookieStore;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const SECRET: &str = "the plaintext nobody may read 0123456789";

fn keyring(byte: u8) -> Keyring {
    Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
}

fn record() -> Record {
    let mut r = Record::empty(NOW, NOW + Duration::from_secs(600), 16);
    r.data.insert("user".into(), Value::encode(SECRET).unwrap());
    r.data.insert("n".into(), Value::encode(&42u32).unwrap());
    r.flash.push(session_core::FlashLevel::Info, "hi".into());
    r
}

fn seal(store: CookieStore, keys: &Keyring, name: &str, now: UnixTime) -> String {
    let ids = RandomIds::new();
    store
        .seal(&record(), &Context::new(keys, name, now, &ids))
        .unwrap()
}

fn open(
    store: CookieStore,
    keys: &Keyring,
    name: &str,
    value: &str,
    now: UnixTime,
) -> Option<Loaded> {
    let ids = RandomIds::new();
    store.open(value, &Context::new(keys, name, now, &ids))
}

fn both() -> [CookieStore; 2] {
    [CookieStore::signed(), CookieStore::encrypted()]
}

#[test]
fn a_valid_cookie_opens_to_the_same_record() {
    let keys = keyring(1);
    for store in both() {
        let value = seal(store, &keys, "session", NOW);
        let loaded = open(store, &keys, "session", &value, NOW).unwrap();
        assert_eq!(loaded.record, record());
        assert!(!loaded.reissue);
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let keys = keyring(1);
    for store in both() {
        let value = seal(store, &keys, "session", NOW);
        let raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let mut tried = 0;
        for byte in 0..raw.len() {
            for bit in 0..8 {
                let mut flipped = raw.clone();
                flipped[byte] ^= 1 << bit;
                let forged = URL_SAFE_NO_PAD.encode(&flipped);
                assert!(
                    open(store, &keys, "session", &forged, NOW).is_none(),
                    "{:?}: flip of bit {bit} in byte {byte} was accepted",
                    store.mode()
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
                    assert!(open(store, &keys, "session", &text, NOW).is_none());
                }
            }
        }
    }
}

#[test]
fn encryption_hides_the_state_and_never_repeats() {
    let keys = keyring(1);
    let store = CookieStore::encrypted();
    let a = seal(store, &keys, "session", NOW);
    let b = seal(store, &keys, "session", NOW);
    assert_ne!(
        a, b,
        "same state, same key, same time: the nonce must differ"
    );
    for value in [&a, &b] {
        let raw = URL_SAFE_NO_PAD.decode(value).unwrap();
        let needle = SECRET.as_bytes();
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
        assert!(!value.contains("plaintext"));
        assert!(!raw.windows(2).any(|w| w == b"hi"), "flash text leaked");
    }
    // The signed mode, by contrast, carries it readably: documented.
    let signed = URL_SAFE_NO_PAD
        .decode(seal(CookieStore::signed(), &keys, "session", NOW))
        .unwrap();
    assert!(signed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
}

#[test]
fn rotation_accepts_old_keys_reissues_and_forgets_removed_ones() {
    let old = keyring(1);
    let rotated = keyring(2)
        .with_verify_only(Key::from_bytes(&[1; 32]).unwrap())
        .unwrap();
    let new_only = keyring(2);
    for store in both() {
        let under_old = seal(store, &old, "session", NOW);
        let loaded = open(store, &rotated, "session", &under_old, NOW).unwrap();
        assert!(loaded.reissue, "a verify-only key must ask for a reissue");
        assert_eq!(loaded.record, record());
        // Reissued cookies are made under the current key only.
        let reissued = seal(store, &rotated, "session", NOW);
        assert!(open(store, &new_only, "session", &reissued, NOW).is_some());
        assert!(open(store, &old, "session", &reissued, NOW).is_none());
        assert!(
            !open(store, &rotated, "session", &reissued, NOW)
                .unwrap()
                .reissue
        );
        // Once the old key is removed, its cookies are no session.
        assert!(open(store, &new_only, "session", &under_old, NOW).is_none());
    }
}

#[test]
fn bad_inputs_are_no_session() {
    let keys = keyring(1);
    for store in both() {
        let good = seal(store, &keys, "session", NOW);
        let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
        // Every truncation, including a truncated GCM tag.
        for len in 0..raw.len() {
            let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
            assert!(
                open(store, &keys, "session", &cut, NOW).is_none(),
                "truncated to {len}"
            );
        }
        let cases: Vec<(&str, String, &str, UnixTime, Keyring)> = vec![
            ("wrong key", good.clone(), "session", NOW, keyring(9)),
            ("other cookie name", good.clone(), "other", NOW, keyring(1)),
            (
                "expired",
                good.clone(),
                "session",
                NOW + Duration::from_secs(600),
                keyring(1),
            ),
            (
                "future-dated",
                future_dated(store, &keys),
                "session",
                NOW,
                keyring(1),
            ),
            (
                "expiry before issue",
                seal(store, &keys, "session", NOW + Duration::from_secs(3600)),
                "session",
                NOW + Duration::from_secs(3590),
                keyring(1),
            ),
            (
                "bad base64",
                "!!!not*base64***".into(),
                "session",
                NOW,
                keyring(1),
            ),
            ("padding", format!("{good}=="), "session", NOW, keyring(1)),
            ("empty", String::new(), "session", NOW, keyring(1)),
            ("100 KB", "A".repeat(100 * 1024), "session", NOW, keyring(1)),
            (
                "100 KB of valid base64 bytes",
                URL_SAFE_NO_PAD.encode(vec![1u8; 75 * 1024]),
                "session",
                NOW,
                keyring(1),
            ),
            (
                "other mode",
                seal(other_mode(store), &keys, "session", NOW),
                "session",
                NOW,
                keyring(1),
            ),
        ];
        for (what, value, name, now, keys) in cases {
            assert!(
                open(store, &keys, name, &value, now).is_none(),
                "{:?}: {what}",
                store.mode()
            );
        }
        // A clock a little behind the issuing server's is tolerated.
        let ahead = seal(store, &keys, "session", NOW + Duration::from_secs(30));
        assert!(open(store, &keys, "session", &ahead, NOW).is_some());
    }
}

/// Issued an hour from now, valid for two: only the issue time is wrong.
fn future_dated(store: CookieStore, keys: &Keyring) -> String {
    let mut r = record();
    r.expires = NOW + Duration::from_secs(7200);
    let ids = RandomIds::new();
    let later = Context::new(keys, "session", NOW + Duration::from_secs(3600), &ids);
    let value = store.seal(&r, &later).unwrap();
    assert!(
        store.open(&value, &later).is_some(),
        "valid at its own issue time"
    );
    value
}

fn other_mode(store: CookieStore) -> CookieStore {
    match store.mode() {
        session_signed_cookie::Mode::Signed => CookieStore::encrypted(),
        session_signed_cookie::Mode::Encrypted => CookieStore::signed(),
    }
}

#[test]
fn too_large_is_a_typed_error() {
    let keys = keyring(1);
    let ids = RandomIds::new();
    let cx = Context::new(&keys, "session", NOW, &ids).with_max_value_len(200);
    for store in both() {
        let mut r = record();
        r.data
            .insert("big".into(), Value::encode(&"x".repeat(300)).unwrap());
        match store.seal(&r, &cx) {
            Err(StoreError::TooLarge { size, limit }) => {
                assert_eq!(limit, 200);
                assert!(size > 200);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
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
            let keys = keyring(3);
            let store = if encrypted { CookieStore::encrypted() } else { CookieStore::signed() };
            let mut r = Record::empty(NOW, NOW + Duration::from_secs(60), 16);
            for (k, v) in &entries {
                r.data.insert(k.into(), Value::encode(v).unwrap());
            }
            for f in &flashes {
                r.flash.push(session_core::FlashLevel::Warning, f.clone());
            }
            let ids = RandomIds::new();
            let cx = Context::new(&keys, "session", NOW, &ids);
            let value = store.seal(&r, &cx).unwrap();
            let back = store.open(&value, &cx).unwrap();
            prop_assert_eq!(back.record, r);
        }

        /// No input, however made, panics or opens without the key.
        #[test]
        fn arbitrary_input_never_opens(input in ".{0,600}", bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let keys = keyring(3);
            for store in both() {
                prop_assert!(open(store, &keys, "session", &input, NOW).is_none());
                let encoded = URL_SAFE_NO_PAD.encode(&bytes);
                prop_assert!(open(store, &keys, "session", &encoded, NOW).is_none());
            }
        }
    }
}
