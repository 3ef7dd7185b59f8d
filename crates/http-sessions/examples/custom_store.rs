//! A session store of your own: sessions in a `Mutex<HashMap>`, behind the
//! same layer as the built-in stores. A store sees session ids and records
//! only; the layer handles cookies, tokens and keys. The conformance suite
//! runs against this store in `tests/custom_store.rs`.
//!
//! The core's `Entry` keeps the rules of one stored session (expiry, no
//! resurrection, renewed ids) and `UserLedger` the users' sessions and
//! their generations, so the store only keeps them atomic: one lock over
//! both. Kept short on purpose: entries past their time are dropped only
//! when met. A real store reclaims them too (a TTL, or a sweeper like
//! `MemoryStore`'s, with `UserLedger::sweep`).
//!
//! ```sh
//! cargo run -p http-sessions --example custom_store   # http://127.0.0.1:8080/counter
//! ```
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use http_sessions::store::{
    Entry, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, Update, Updated,
    UserIndex, UserLedger,
};

type State = (HashMap<SessionId, Entry>, UserLedger);
/// What a store call answers.
type Answer<T> = Result<T, StoreError>;

/// Sessions in a hash map, where `Entry` keeps the rules of each, and a
/// `UserLedger` of whose they are, under one lock: a write and its change
/// to the user's sessions are one step.
#[derive(Debug, Clone, Default)]
pub(crate) struct MapStore(Arc<Mutex<State>>);

impl MapStore {
    /// Nothing panics holding the lock, so a poisoned one is whole.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many ids hold something.
    pub(crate) fn len(&self) -> usize {
        self.lock().0.len()
    }
}

/// Every write: puts `entry` under `id` (`None` removes it), moving the id
/// between users' sessions. A binding of an ended generation writes nothing.
fn put((map, users): &mut State, id: &SessionId, new: Option<Entry>, ends: UnixTime) -> Answer<()> {
    let mut new = new;
    if let Some(Entry::Live(r)) = &mut new
        && let Some(user) = &r.user
    {
        r.generation = users.admit(user, *id, r.generation, ends)?;
    }
    let was = map.remove(id);
    map.extend(new.map(|new| (*id, new)));
    if let Some(user) = was.as_ref().and_then(Entry::user)
        && map.get(id).and_then(Entry::user) != Some(user)
    {
        users.leave(user, id);
    }
    Ok(())
}

#[async_trait]
impl SessionStore for MapStore {
    async fn load(&self, id: &SessionId, now: UnixTime) -> Answer<Option<Loaded>> {
        Ok(self.lock().0.get(id).and_then(|entry| entry.load(now)))
    }

    async fn create(&self, id: &SessionId, record: &Record, ends: UnixTime) -> Answer<()> {
        let state = &mut *self.lock();
        match state.0.contains_key(id) {
            true => Err(StoreError::Exists),
            false => put(state, id, Some(Entry::live(record)), ends),
        }
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Answer<Updated> {
        let state = &mut *self.lock();
        let mut next = state.0.get(id).cloned().ok_or(StoreError::Gone)?;
        let answer = next.apply(&update)?;
        let kept = (answer == Updated::Kept).then_some(next);
        put(state, id, kept, update.ends).map(|()| answer)
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        _: Option<&str>,
    ) -> Answer<()> {
        let state = &mut *self.lock();
        let mut next = state.0.get(id).cloned().ok_or(StoreError::Gone)?;
        next.retire(now, until)?;
        put(state, id, Some(next), until)
    }

    async fn delete(&self, id: &SessionId, _: Option<&str>) -> Answer<()> {
        put(&mut self.lock(), id, None, UnixTime::default())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

#[async_trait]
impl UserIndex for MapStore {
    async fn list(&self, user: &str, now: UnixTime) -> Answer<Vec<(SessionId, Record)>> {
        let (map, users) = &*self.lock();
        let live = |id| Some((id, map.get(&id)?.record(now)?.clone()));
        Ok(users.ids(user).into_iter().filter_map(live).collect())
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Answer<bool> {
        let state = &mut *self.lock();
        let theirs =
            matches!(state.0.get(id), Some(e) if e.user() == Some(user) && !e.is_dead(now));
        if theirs {
            put(state, id, None, now)?;
        }
        Ok(theirs)
    }

    async fn end_all(&self, user: &str, keep: Option<&SessionId>, now: UnixTime) -> Answer<usize> {
        let (map, users) = &mut *self.lock();
        let (generation, ids) = users.end_all(user);
        let mut ended = 0;
        // Under the one lock the ledger is exact: each id is the user's.
        for id in ids {
            if let (Some(Entry::Live(r)), true) = (map.get_mut(&id), keep == Some(&id)) {
                r.generation = users.admit(user, id, generation, r.expires)?;
            } else if map.remove(&id).is_some_and(|entry| !entry.is_dead(now)) {
                ended += 1;
            }
        }
        Ok(ended)
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
