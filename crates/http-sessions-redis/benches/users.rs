//! Listing and ending the sessions of one user who has 1,000, on the Redis
//! at `REDIS_URL` (`cargo xtask redis cargo bench -p http-sessions-redis`):
//! what `UserIndex::list` and `UserIndex::end_all` cost on a single node,
//! each listed session loaded (or ended) by calls sent together.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http_sessions_core::store::{
    EndAll, IdSource, RandomIds, Record, SessionStore, UnixTime, UserIndex, Value,
};
use http_sessions_redis::RedisStore;

const SESSIONS: usize = 1000;

fn store() -> RedisStore {
    let url = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run `cargo xtask redis cargo bench -p http-sessions-redis`");
    let tag = RandomIds::new().next_id().unwrap().to_base64();
    let store = RedisStore::from_url(&url)
        .unwrap()
        .with_prefix(format!("bench:{tag}:"));
    // Called without a layer: the settings' timeout, given as a layer gives it.
    let settings = http_sessions_core::Settings::builder()
        .with_random_dev_key()
        .with_store_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    store.use_settings(&settings);
    store
}

fn now() -> UnixTime {
    UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// Signs `user` in `SESSIONS` times, the creates sent together.
async fn sign_in(store: &RedisStore, user: &str) {
    let t = now();
    let mut record = Record::empty(t, t + Duration::from_secs(1800), 4);
    record.data.insert("k".into(), Value::encode("v").unwrap());
    record.user = Some(user.to_owned());
    record.generation = t.as_secs() * 1000 + 1000 * 60;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SESSIONS {
        let (store, record) = (store.clone(), record.clone());
        tasks.spawn(async move {
            let id = RandomIds::new().next_id().unwrap();
            store
                .create(&id, &record, t + Duration::from_secs(3600))
                .await
                .unwrap();
        });
    }
    tasks.join_all().await;
}

fn users(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = store();
    let mut group = c.benchmark_group("one user's 1000 sessions, one node");
    group.sample_size(20);

    runtime.block_on(sign_in(&store, "listed"));
    group.bench_function("list", |b| {
        b.to_async(&runtime).iter(|| async {
            let listed = store.list("listed", now()).await.unwrap();
            assert_eq!(listed.len(), SESSIONS);
        });
    });

    group.bench_function("end_all", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // A user of their own each time, signed in untimed.
                    let user = format!("ended-{}", RandomIds::new().next_id().unwrap().to_base64());
                    sign_in(&store, &user).await;
                    let started = Instant::now();
                    let t = now();
                    let end = EndAll {
                        keep: None,
                        now: t,
                        floor: t.as_secs() * 1000 + 1000 * 120,
                        remember_until: t + Duration::from_secs(3600),
                    };
                    let ended = store.end_all(&user, end).await.unwrap();
                    spent += started.elapsed();
                    assert_eq!(ended.sessions, SESSIONS);
                }
                spent
            })
        });
    });
    group.finish();
}

criterion_group!(benches, users);
criterion_main!(benches);
