//! The store conformance suite, run against a real Redis (`REDIS_URL`) and a
//! real Redis Cluster (`REDIS_CLUSTER_URLS`, comma-separated node URLs).
//!
//! The single node's suite runs twice: on the store's own pipe, and on the
//! driver's multiplexed connection that `with_driver_connection` asks for
//! (the one the bench measures the pipe against).
//!
//! `cargo xtask test-all` starts both and sets the variables. Without them
//! these tests fail, and say so: a backend test that skips itself is a
//! backend nobody tested.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;

use async_trait::async_trait;
use http_sessions_conformance::Harness;
use http_sessions_core::store::{IdSource, RandomIds, SessionId};
use http_sessions_core::{Settings, seams::Backend};
use http_sessions_redis::RedisStore;
use http_sessions_redis::deadpool_redis::cluster::ClusterClient;
use http_sessions_redis::redis;
use http_sessions_redis::redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo,
};

const HOW: &str = "run `cargo xtask test-all`, which starts Redis for these tests, \
                   or set it yourself";

fn env(name: &str, example: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: {HOW} (for example {name}={example}). \
             The Redis tests never skip themselves."
        ),
    }
}

/// Where the stores under test keep their sessions.
#[derive(Clone)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// The harness: every store it makes has a random key prefix, so cases
/// running side by side on one Redis never see each other's sessions.
struct Redis {
    target: Target,
    /// Stores on the driver's connection rather than the pipe.
    driver: bool,
}

impl Redis {
    fn single() -> Self {
        Self {
            target: Target::Single(env("REDIS_URL", "redis://127.0.0.1:6379")),
            driver: false,
        }
    }

    fn driver() -> Self {
        Self {
            driver: true,
            ..Self::single()
        }
    }

    fn cluster() -> Self {
        let urls = env(
            "REDIS_CLUSTER_URLS",
            "redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002",
        );
        Self {
            target: Target::Cluster(
                urls.split(',')
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect(),
            ),
            driver: false,
        }
    }

    /// Every key under `prefix`, counted once, over every primary.
    async fn keys(&self, prefix: &str) -> HashSet<String> {
        let pattern = format!("{prefix}*");
        match &self.target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                let mut found = HashSet::new();
                let mut cursor = 0u64;
                // SCAN may return a key twice; the set counts it once.
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    found.extend(batch);
                    if next == 0 {
                        return found;
                    }
                    cursor = next;
                }
            }
            Target::Cluster(urls) => {
                // Keys live on the primary owning their slot: ask every
                // primary (replicas would count a key twice) and combine.
                let client = ClusterClient::new(urls.clone()).unwrap();
                let mut conn = client.get_async_connection().await.unwrap();
                let mut keys = redis::cmd("KEYS");
                keys.arg(&pattern);
                let reply = conn
                    .route_command(
                        keys,
                        RoutingInfo::MultiNode((
                            MultipleNodeRoutingInfo::AllMasters,
                            Some(ResponsePolicy::CombineArrays),
                        )),
                    )
                    .await
                    .unwrap();
                redis::from_redis_value::<Vec<String>>(reply)
                    .unwrap()
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Runs one command on a connection of its own, on whichever node
    /// owns the command's key.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        match &self.target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                cmd.query_async(&mut conn).await.unwrap()
            }
            Target::Cluster(urls) => {
                let client = ClusterClient::new(urls.clone()).unwrap();
                let mut conn = client.get_async_connection().await.unwrap();
                cmd.query_async(&mut conn).await.unwrap()
            }
        }
    }
}

#[async_trait]
impl Harness for Redis {
    type Handle = RedisStore;

    async fn make(&self, settings: &Settings) -> (Backend, RedisStore) {
        let tag = RandomIds::new().next_id().unwrap().to_base64();
        let prefix = format!("conformance:{tag}:");
        let store = match &self.target {
            Target::Single(url) if self.driver => {
                RedisStore::from_url(url).unwrap().with_driver_connection()
            }
            Target::Single(url) => RedisStore::from_url(url).unwrap(),
            Target::Cluster(urls) => RedisStore::cluster(urls.clone()).unwrap(),
        }
        .with_prefix(prefix);
        // The suite also calls the handle itself: the settings' timeout on
        // it too, as the manager gives it to the backend's clone.
        http_sessions_core::store::SessionStore::use_settings(&store, settings);
        (Backend::server(store.clone()), store)
    }

    /// Overwrites a session value with bytes that are not MessagePack
    /// (0xc1 is the one marker the format never uses); the cookie still
    /// names the session.
    async fn corrupt(
        &self,
        store: &RedisStore,
        id: Option<SessionId>,
        cookie: &str,
        _settings: &Settings,
    ) -> Option<String> {
        let id = id.expect("a Redis session always has an id");
        let key = store.key_of(&id);
        let mut hkeys = redis::cmd("HKEYS");
        hkeys.arg(&key);
        let fields: Vec<String> = self.run(&hkeys).await;
        // A value the session really holds, so the damage is to its state.
        let victim = fields
            .iter()
            .find(|f| f.starts_with("d:"))
            .unwrap_or_else(|| panic!("the session has no value to corrupt: {fields:?}"));
        let mut hset = redis::cmd("HSET");
        hset.arg(&key).arg(victim).arg(&[0xc1_u8][..]);
        let _: i64 = self.run(&hset).await;
        Some(cookie.to_owned())
    }

    /// Sessions and renewed ids' markers alike: one key each.
    async fn stored(&self, store: &RedisStore) -> Option<usize> {
        Some(self.keys(store.prefix()).await.len())
    }
}

mod single {
    use super::*;
    http_sessions_conformance::suite!(Redis::single());
}

mod driver {
    use super::*;
    http_sessions_conformance::suite!(Redis::driver());
}

mod cluster {
    use super::*;
    http_sessions_conformance::suite!(Redis::cluster());
}
