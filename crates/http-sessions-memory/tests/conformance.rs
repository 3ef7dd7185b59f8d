//! The conformance suite, run against `MemoryStore` at its default bound
//! and at a small one: the bound's queues must follow every create,
//! update, retire and delete.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use http_sessions_conformance::Harness;
use http_sessions_core::store::SessionId;
use http_sessions_core::{Settings, seams::Backend};
use http_sessions_memory::MemoryStore;

struct Memory {
    capacity: Option<usize>,
}

#[async_trait]
impl Harness for Memory {
    type Handle = MemoryStore;

    async fn make(&self, _settings: &Settings) -> (Backend, MemoryStore) {
        let store = match self.capacity {
            Some(n) => MemoryStore::with_capacity(n).unwrap(),
            None => MemoryStore::new(),
        };
        (Backend::server(store.clone()), store)
    }

    /// Values are kept as the bytes they were saved as and records as typed
    /// Rust values: nothing is decoded on load, so nothing can be corrupt.
    async fn corrupt(
        &self,
        _store: &MemoryStore,
        _id: Option<SessionId>,
        _cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        None
    }

    async fn stored(&self, store: &MemoryStore) -> Option<usize> {
        Some(store.len())
    }
}

mod default_capacity {
    use super::*;
    http_sessions_conformance::suite!(Memory { capacity: None });
}

mod bounded {
    use super::*;
    http_sessions_conformance::suite!(Memory {
        capacity: Some(1_000)
    });
}
