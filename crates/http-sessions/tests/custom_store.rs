//! The store of `examples/custom_store.rs` passes the conformance suite.

#[path = "../examples/custom_store.rs"]
mod custom_store;

use async_trait::async_trait;
use custom_store::MapStore;
use http_sessions::Settings;
use http_sessions::seams::Backend;
use http_sessions::store::SessionId;
use http_sessions_conformance::Harness;

struct Map;

#[async_trait]
impl Harness for Map {
    type Handle = MapStore;

    async fn make(&self, _settings: &Settings) -> (Backend, MapStore) {
        let store = MapStore::default();
        (Backend::server(store.clone()), store)
    }

    /// Records are kept as typed values: nothing to corrupt.
    async fn corrupt(
        &self,
        _: &MapStore,
        _: Option<SessionId>,
        _: &str,
        _: &Settings,
    ) -> Option<String> {
        None
    }

    async fn stored(&self, store: &MapStore) -> Option<usize> {
        Some(store.len())
    }
}

http_sessions_conformance::suite!(Map);
