//! Loads of sessions past their expiry, on the node at `REDIS_URL` (on the
//! store's pipe and on the driver's connection) and the cluster at
//! `REDIS_CLUSTER_URLS` (`cargo xtask services` starts both): the hash
//! outlives its `expires` field until its TTL collects it, and a load
//! meanwhile answers `Loaded::Expired` with the record a live load gave,
//! decoded as strictly, so a hash that does not decode is still no
//! session. Through credentials, TLS and Sentinel the same check runs with
//! the conformance cases (`support::passes_the_conformance_cases`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // The conformance harness is for the other test files.
mod support;

use http_sessions_conformance::{ABSOLUTE, IDLE, START};
use http_sessions_core::store::SessionStore;
use http_sessions_redis::RedisStore;
use http_sessions_redis::deadpool_redis::cluster::ClusterClient;
use http_sessions_redis::redis;
use support::{expired_sessions_load_as_expired, random_prefix};

fn url() -> String {
    std::env::var("REDIS_URL").expect(
        "REDIS_URL is not set: run `cargo xtask services`, which starts Redis for these tests",
    )
}

fn cluster_urls() -> Vec<String> {
    let urls = std::env::var("REDIS_CLUSTER_URLS").expect(
        "REDIS_CLUSTER_URLS is not set: run `cargo xtask services`, which starts a cluster",
    );
    urls.split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

/// Loads past their expiry through `store`, then the expired session's
/// value overwritten (through `hset`) with a byte that is not MessagePack
/// (0xc1 is the one marker the format never uses): no session, live or
/// expired.
async fn expired_and_corrupt<F, Fut>(store: RedisStore, hset: F)
where
    F: FnOnce(redis::Cmd) -> Fut,
    Fut: Future<Output = ()>,
{
    let id = expired_sessions_load_as_expired(&store).await;
    let mut spoil = redis::cmd("HSET");
    spoil
        .arg(store.key_of(&id))
        .arg("d:cart")
        .arg(&[0xc1_u8][..]);
    hset(spoil).await;
    for now in [START, START + IDLE, START + ABSOLUTE] {
        assert_eq!(store.load(&id, now).await.unwrap(), None, "at {now}");
    }
}

async fn on_node(store: RedisStore) {
    expired_and_corrupt(store, |cmd| async move {
        let client = redis::Client::open(url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let written: i64 = cmd.query_async(&mut conn).await.unwrap();
        assert_eq!(written, 0, "the value was there to overwrite");
    })
    .await;
}

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired_on_a_node() {
    let store = RedisStore::from_url(&url()).unwrap();
    on_node(store.with_prefix(random_prefix("expired-node"))).await;
}

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired_on_the_driver_connection() {
    let store = RedisStore::from_url(&url())
        .unwrap()
        .with_driver_connection();
    on_node(store.with_prefix(random_prefix("expired-driver"))).await;
}

#[tokio::test]
async fn a_session_found_past_its_expiry_loads_as_expired_on_a_cluster() {
    let store = RedisStore::cluster(cluster_urls()).unwrap();
    let store = store.with_prefix(random_prefix("expired-cluster"));
    expired_and_corrupt(store, |cmd| async move {
        let client = ClusterClient::new(cluster_urls()).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        let written: i64 = cmd.query_async(&mut conn).await.unwrap();
        assert_eq!(written, 0, "the value was there to overwrite");
    })
    .await;
}
