//! The store conformance suite, run against `MemoryStore` (unbounded and
//! bounded).

use async_trait::async_trait;
use session_core::testing::Harness;
use session_memory::MemoryStore;

struct Memory {
    capacity: Option<usize>,
}

#[async_trait]
impl Harness for Memory {
    type Store = MemoryStore;

    async fn store(&self) -> MemoryStore {
        match self.capacity {
            Some(n) => MemoryStore::with_capacity(n),
            None => MemoryStore::new(),
        }
    }

    /// Values are kept as the bytes they were saved as and records as typed
    /// Rust values: nothing is decoded on load, so nothing can be corrupt.
    async fn corrupt(&self, _store: &MemoryStore, _token: &str) -> Option<String> {
        None
    }

    async fn stored(&self, store: &MemoryStore) -> Option<usize> {
        Some(store.len())
    }
}

mod unbounded {
    use super::*;
    session_core::conformance_suite!(Memory { capacity: None });
}

mod bounded {
    use super::*;
    session_core::conformance_suite!(Memory {
        capacity: Some(1_000)
    });
}
