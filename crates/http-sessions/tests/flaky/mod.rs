//! A memory store for the tests of what the layer does when its store
//! fails: switched off, every call fails; made to hang, none answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use http_sessions::StoreError;
use http_sessions::memory::MemoryStore;
use http_sessions::store::{
    Loaded, Record, SessionId, SessionStore, UnixTime, Update, Updated, UserIndex,
};

/// A store that can be switched off, or made to hang.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flaky {
    inner: MemoryStore,
    /// Every call fails as on a refused connection.
    pub(crate) down: Arc<AtomicBool>,
    /// Every call waits forever.
    pub(crate) hang: Arc<AtomicBool>,
}

impl Flaky {
    async fn gate(&self) -> Result<(), StoreError> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection refused"));
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        self.gate().await?;
        self.inner.load(id, now).await
    }
    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.create(id, record, ends).await
    }
    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        self.gate().await?;
        self.inner.update(id, update).await
    }
    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.retire(id, now, until, user).await
    }
    async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.delete(id, user).await
    }
    /// The memory store's own, ungated: these tests fail the session
    /// writes, not the listing.
    fn users(&self) -> Option<&dyn UserIndex> {
        self.inner.users()
    }
}
