//! Two ways in, chosen by the first byte:
//! - even: the rest, as text, is a cookie value from an attacker. Nothing
//!   may panic and nothing may open without the key.
//! - odd: the rest is sealed as the body of an authentic cookie, so the
//!   decoder behind the MAC meets arbitrary bytes. Nothing may panic, and
//!   a body that opens (keys in any order, repeated or not) must seal and
//!   open again to the same data and flash messages.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use http_sessions_core::store::UnixTime;
use http_sessions_core::{Key, Keyring, Settings};
use http_sessions_cookie::CookieStore;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

/// Both modes, keyed once: key derivation is not what is fuzzed.
static STORES: LazyLock<Option<[CookieStore; 2]>> = LazyLock::new(|| {
    let keys = Keyring::new(Key::from_bytes(&[42; 32]).ok()?).ok()?;
    let settings = Settings::builder().with_keyring(keys).build().ok()?;
    Some([
        CookieStore::signed(&settings),
        CookieStore::encrypted(&settings),
    ])
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(stores) = STORES.as_ref() else {
        std::process::abort();
    };
    for store in stores {
        if selector % 2 == 0 {
            let Ok(value) = std::str::from_utf8(rest) else {
                return;
            };
            // A forged cookie that opens is a MAC or AEAD failure: abort so
            // the fuzzer reports it as a crash.
            if store.open(value, NOW).is_some() {
                std::process::abort();
            }
        } else {
            let expires = UnixTime::from_secs(NOW.as_secs() + 60);
            let Ok(value) = store.seal_raw_body(rest, expires, NOW) else {
                continue;
            };
            let Some(opened) = store.open(&value, NOW) else {
                continue;
            };
            let again = store
                .seal(&opened.record, NOW)
                .ok()
                .and_then(|value| store.open(&value, NOW));
            match again {
                Some(again)
                    if again.record.data == opened.record.data
                        && again.record.flash == opened.record.flash => {}
                _ => std::process::abort(),
            }
        }
    }
});
