//! A session store of your own, behind the same layer as the built-in
//! stores. A store sees ids and records only; the layer handles cookies,
//! tokens and keys, and the core holds the rules: `Entry` those of one
//! stored session, `Table` the whole contract over a map in process. So a
//! store writes storage, not semantics: here, one lock around a `Table`,
//! which makes every call one atomic step. The conformance suite runs
//! against it in `tests/custom_store.rs`. Entries past their time stay
//! until `Table::sweep`; a real store calls it from time to time, as
//! `MemoryStore`'s sweeper does.
//!
//! ```sh
//! cargo run -p http-sessions --example custom_store   # http://127.0.0.1:8080/counter
//! ```
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

// The store: from here to `main`.
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use http_sessions::store::{
    EndAll, Ended, Loaded, Record, SessionId, SessionStore, StoreError, Table, UnixTime, Update,
    Updated, UserIndex,
};

type Answer<T> = Result<T, StoreError>;

/// Sessions in a `Table` behind one lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct MapStore(Arc<Mutex<Table>>);

impl MapStore {
    /// Nothing panics holding the lock, so a poisoned one is whole.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many ids hold something.
    pub(crate) fn len(&self) -> usize {
        self.table().len()
    }
}

#[async_trait]
impl SessionStore for MapStore {
    async fn load(&self, id: &SessionId, now: UnixTime) -> Answer<Option<Loaded>> {
        Ok(self.table().load(id, now))
    }

    async fn create(&self, id: &SessionId, record: &Record, ends: UnixTime) -> Answer<()> {
        self.table().create(id, record, ends)
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Answer<Updated> {
        self.table().update(id, &update)
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        _: Option<&str>,
    ) -> Answer<()> {
        self.table().retire(id, now, until)
    }

    async fn delete(&self, id: &SessionId, _: Option<&str>) -> Answer<()> {
        self.table().delete(id);
        Ok(())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

#[async_trait]
impl UserIndex for MapStore {
    async fn list(&self, user: &str, now: UnixTime) -> Answer<Vec<(SessionId, Record)>> {
        Ok(self.table().list(user, now))
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Answer<bool> {
        Ok(self.table().end(user, id, now))
    }

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Answer<Ended> {
        Ok(self.table().end_all(user, &end))
    }
}

#[allow(dead_code)] // The tests include this file for the store alone.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use axum::{Router, routing::get};
    use http_sessions::{Session, SessionLayer, Settings, ValueError};

    async fn counter(session: Session) -> Result<String, ValueError> {
        let n = session.get::<u64>("counter")?.unwrap_or(0) + 1;
        session.insert("counter", n)?;
        Ok(format!("counter = {n}"))
    }

    let settings = Settings::builder()
        .with_keyring(http_sessions::Keyring::new(http_sessions::Key::generate()?)?)
        .with_secure(false) // plain http on localhost
        .build()?;
    let store = MapStore::default();
    let stored = store.clone();
    let app = Router::new()
        .route("/counter", get(counter))
        .route(
            "/stored",
            get(move || async move { format!("{} stored", stored.len()) }),
        )
        .layer(SessionLayer::new(store, &settings));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
