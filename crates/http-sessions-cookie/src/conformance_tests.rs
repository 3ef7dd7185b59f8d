//! The conformance suite, run against both modes. Lives inside the crate so
//! `corrupt` can read a cookie's dates and seal a body that does not decode
//! with them.

use async_trait::async_trait;
use http_sessions_conformance::Harness;
use http_sessions_core::store::SessionId;
use http_sessions_core::{Settings, seams::Backend};

use crate::{CookieStore, Mode, format};

pub(crate) struct Cookies(pub(crate) Mode);

impl Cookies {
    fn store(&self, settings: &Settings) -> CookieStore {
        match self.0 {
            Mode::Signed => CookieStore::signed(settings),
            Mode::Encrypted => CookieStore::encrypted(settings),
        }
    }
}

#[async_trait]
impl Harness for Cookies {
    type Handle = CookieStore;

    async fn make(&self, settings: &Settings) -> (Backend, CookieStore) {
        let store = self.store(settings);
        (Backend::cookie(store.clone()), store)
    }

    /// An authentic cookie whose body is not a session, issued and expiring
    /// like `cookie`, so only the body is wrong.
    async fn corrupt(
        &self,
        store: &CookieStore,
        _id: Option<SessionId>,
        cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        let (issued, expires) = format::times_of(cookie, store.mode())?;
        // An array of three nils: MessagePack, but not a session body.
        store
            .seal_raw_body(&[0x93, 0xc0, 0xc0, 0xc0], expires, issued)
            .ok()
    }

    async fn stored(&self, _store: &CookieStore) -> Option<usize> {
        None
    }
}

mod signed {
    use super::*;
    http_sessions_conformance::suite!(Cookies(Mode::Signed));
}

mod encrypted {
    use super::*;
    http_sessions_conformance::suite!(Cookies(Mode::Encrypted));
}
