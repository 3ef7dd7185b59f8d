//! A session store of your own: sessions in a `Mutex<HashMap>`, behind the
//! same layer as the built-in stores. A store sees session ids and records
//! only; the layer handles cookies, tokens and keys. The conformance suite
//! runs against this store in `tests/custom_store.rs`.
//!
//! Kept short on purpose: one lock for the whole map, and entries past
//! their time are only dropped when met. A real store reclaims them too
//! (a TTL, or a sweeper like `MemoryStore`'s).
//!
//! ```sh
//! cargo run -p http-sessions --example custom_store   # http://127.0.0.1:8080/counter
//! ```
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http_sessions::store::{
    Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
};

/// What an id holds: a session, or the mark of a renewed one.
#[derive(Debug, Clone)]
enum Entry {
    Live(Record),
    Renewed { until: UnixTime },
}

/// Each user's session ids, with the time each counts until.
type Users = HashMap<String, HashMap<SessionId, UnixTime>>;

/// Sessions in a hash map behind one lock, and the index of users'
/// sessions behind another.
#[derive(Debug, Clone, Default)]
pub(crate) struct MapStore {
    sessions: Arc<Mutex<HashMap<SessionId, Entry>>>,
    users: Arc<Mutex<Users>>,
}

impl MapStore {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<SessionId, Entry>>, StoreError> {
        self.sessions
            .lock()
            .map_err(|_| StoreError::unavailable("a thread panicked while holding the map"))
    }

    fn users(&self) -> Result<std::sync::MutexGuard<'_, Users>, StoreError> {
        self.users
            .lock()
            .map_err(|_| StoreError::unavailable("a thread panicked while holding the index"))
    }

    /// How many ids hold something.
    pub(crate) fn len(&self) -> usize {
        self.map().map_or(0, |m| m.len())
    }
}

#[async_trait]
impl SessionStore for MapStore {
    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        Ok(match self.map()?.get(id) {
            Some(Entry::Live(record)) if !record.is_expired(now) => {
                Some(Loaded::Live(record.clone()))
            }
            Some(Entry::Renewed { until }) if *until > now => Some(Loaded::Renewed),
            _ => None,
        })
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<(), StoreError> {
        let mut map = self.map()?;
        if map.contains_key(id) {
            return Err(StoreError::Exists);
        }
        map.insert(*id, Entry::Live(record.clone()));
        Ok(())
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        let mut map = self.map()?;
        let Some(Entry::Live(stored)) = map.get_mut(id) else {
            return Err(StoreError::Gone);
        };
        if stored.is_expired(update.now) {
            map.remove(id);
            return Err(StoreError::Gone);
        }
        update.apply_to(stored);
        if stored.is_empty() {
            map.remove(id);
            return Ok(Updated::Emptied);
        }
        Ok(Updated::Kept)
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<(), StoreError> {
        let mut map = self.map()?;
        match map.get(id) {
            Some(Entry::Live(record)) if !record.is_expired(now) => {
                map.insert(*id, Entry::Renewed { until });
                Ok(())
            }
            _ => Err(StoreError::Gone),
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.map()?.remove(id);
        Ok(())
    }

    async fn index(
        &self,
        user: &str,
        id: &SessionId,
        until: UnixTime,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut users = self.users()?;
        users.entry(user.to_owned()).or_default().insert(*id, until);
        Ok(())
    }

    async fn unindex(&self, user: &str, id: &SessionId) -> Result<(), StoreError> {
        if let Some(ids) = self.users()?.get_mut(user) {
            ids.remove(id);
        }
        Ok(())
    }

    async fn indexed(&self, user: &str, now: UnixTime) -> Result<Vec<SessionId>, StoreError> {
        let mut users = self.users()?;
        let Some(ids) = users.get_mut(user) else {
            return Ok(Vec::new());
        };
        ids.retain(|_, until| *until > now);
        Ok(ids.keys().copied().collect())
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
