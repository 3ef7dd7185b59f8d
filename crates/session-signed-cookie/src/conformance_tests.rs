//! The store conformance suite, run against both modes. Lives inside the
//! crate so `corrupt` can seal a body that does not decode.

use async_trait::async_trait;
use session_core::testing::Harness;
use session_core::{Context, RandomIds};

use crate::{CookieStore, Mode};

pub(crate) struct Cookies(pub(crate) Mode);

#[async_trait]
impl Harness for Cookies {
    type Store = CookieStore;

    async fn store(&self) -> CookieStore {
        CookieStore { mode: self.0 }
    }

    /// An authentic cookie, under the suite's key, whose body is not a
    /// session.
    async fn corrupt(&self, store: &CookieStore, token: &str) -> Option<String> {
        let keys =
            session_core::Keyring::new(session_core::Key::from_bytes(&[1; 32]).ok()?).ok()?;
        let ids = RandomIds::new();
        // Dated like the token it replaces, so only the body is wrong.
        let now = session_core::UnixTime::from_secs(1_700_000_000);
        let cx = Context::new(&keys, "session", now, &ids);
        let loaded = store.open(token, &cx)?;
        store
            .seal_raw_body(&[0x93, 0xc1, 0xc1, 0xc1], loaded.record.expires, &cx)
            .ok()
    }

    async fn stored(&self, _store: &CookieStore) -> Option<usize> {
        None
    }
}

mod signed {
    use super::*;
    session_core::conformance_suite!(Cookies(Mode::Signed));
}

mod encrypted {
    use super::*;
    session_core::conformance_suite!(Cookies(Mode::Encrypted));
}
