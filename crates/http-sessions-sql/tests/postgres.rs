//! The conformance suite against a real PostgreSQL (`DATABASE_URL`), each
//! store on tables of its own.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use async_trait::async_trait;
use http_sessions_conformance::Harness;
use http_sessions_core::store::{SessionId, SessionStore};
use http_sessions_core::{Settings, seams::Backend};
use http_sessions_sql::PostgresStore;
use http_sessions_sql::sqlx::{self, PgPool, postgres::PgPoolOptions};

pub(crate) fn database_url() -> String {
    support::url(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/sessions_test",
    )
}

/// A pool of this test's own: each test runs on a runtime of its own.
pub(crate) fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_lazy(&database_url())
        .unwrap()
}

struct Postgres;

#[async_trait]
impl Harness for Postgres {
    type Handle = PostgresStore;

    async fn make(&self, settings: &Settings) -> (Backend, PostgresStore) {
        let store = PostgresStore::from_pool(pool())
            .with_table(&support::table())
            .unwrap();
        store.migrate().await.unwrap();
        store.use_settings(settings);
        (Backend::server(store.clone()), store)
    }

    /// Overwrites one of the session's values with a byte that is not
    /// MessagePack (0xc1 is the one marker the format never uses).
    async fn corrupt(
        &self,
        store: &PostgresStore,
        id: Option<SessionId>,
        cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        let id = id.expect("a Postgres session always has an id");
        let table = store.migrations()[0].1.clone();
        let values = values_table(&table);
        let changed = sqlx::query(&format!(
            "UPDATE {values} SET value = '\\xc1' WHERE session_id = $1"
        ))
        .bind(&id.as_bytes()[..])
        .execute(store.pool())
        .await
        .unwrap()
        .rows_affected();
        assert!(changed > 0, "the session has no value to corrupt");
        Some(cookie.to_owned())
    }

    /// Sessions and renewed ids' markers alike: one row each.
    async fn stored(&self, store: &PostgresStore) -> Option<usize> {
        let sessions = sessions_table(&store.migrations()[0].1);
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {sessions}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        Some(usize::try_from(n).unwrap())
    }
}

/// The sessions table's name as the first migration writes it.
fn sessions_table(v1: &str) -> String {
    let at = v1.find("CREATE TABLE IF NOT EXISTS ").unwrap() + "CREATE TABLE IF NOT EXISTS ".len();
    v1[at..].split_whitespace().next().unwrap().to_owned()
}

fn values_table(v1: &str) -> String {
    let sessions = sessions_table(v1);
    format!("{}_values\"", sessions.trim_end_matches('"'))
}

http_sessions_conformance::suite!(Postgres);

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired() {
    support::store::expired_sessions_load_as_expired(&Postgres, |store| store).await;
}
