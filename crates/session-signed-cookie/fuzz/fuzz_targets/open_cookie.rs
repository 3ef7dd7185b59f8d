//! Feeds arbitrary cookie values to both modes of the cookie store: none may
//! panic, and none may open without the key. A valid cookie, mutated by the
//! fuzzer, is in the seed corpus (see `seed_corpus` in the README beside).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Context, Key, Keyring, RandomIds, UnixTime};
use session_signed_cookie::CookieStore;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = Key::from_bytes(&[42; 32]) else {
        return;
    };
    let Ok(keys) = Keyring::new(key) else { return };
    let ids = RandomIds::new();
    let cx = Context::new(&keys, "session", UnixTime::from_secs(1_800_000_000), &ids);
    for store in [CookieStore::signed(), CookieStore::encrypted()] {
        // A forged cookie that opens would be a MAC or AEAD failure: abort
        // so the fuzzer reports it as a crash.
        if store.open(value, &cx).is_some() {
            std::process::abort();
        }
    }
});
