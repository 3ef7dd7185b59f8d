//! Bytes per session: in process memory (our `MemoryStore` and
//! tower-sessions', measured by the `session-bench-memory` binary), in
//! Redis (`MEMORY USAGE` of one key written by each Redis store) and on
//! disk in Postgres and SQLite (the tables of each SQL store after many
//! sessions).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use http_sessions::redis::redis;
use http_sessions::seams::Clock;
use http_sessions::store::{IdSource, RandomIds, Record, SessionStore, Value};
// The Redis store's release implements tower-sessions 0.14's trait.
use tower_sessions_014::SessionStore as _;
use tower_sessions_014::cookie::time::{self, OffsetDateTime};

use crate::Error;
use crate::sample;
use crate::variants::{self, IDLE_TIMEOUT, OUR_TABLE, THEIR_TABLE};

/// The memory binary, built beside this one.
const MEMORY_BIN: &str = "session-bench-memory";
/// How long a Redis command of the bench's own may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// The schema the disk figures' tables are made in, apart from the HTTP
/// rows' ([`variants::SQL_SCHEMA`]): dropped before and after.
const DISK_SCHEMA: &str = "session_bench_disk";
/// The suffixes of our tables that hold a session's rows: the sessions,
/// their values, their flash messages, the users' generations.
const OUR_TABLES: [&str; 4] = ["", "_values", "_flashes", "_users"];

/// One store's bytes per session in process memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InProcess {
    /// Sessions created (and held at the end).
    pub(crate) sessions: usize,
    /// Growth of the bytes allocated, per session: what the program asked
    /// the allocator for.
    pub(crate) allocated: f64,
    /// Growth of the resident set, per session: the allocator's own
    /// overhead and the tables' spare room included.
    pub(crate) resident: f64,
}

/// Measures `store` (`sessions` or `tower-sessions`) with `n` sessions, in
/// a process of its own.
pub(crate) fn in_process(store: &str, n: usize) -> Result<InProcess, Error> {
    let exe = crate::sibling_binary(MEMORY_BIN, "--no-memory")?;
    let out = Command::new(&exe)
        .args(["--store", store, "--sessions", &n.to_string()])
        .output()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --store {store} failed ({}): {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: HashMap<&str, usize> = text
        .split_whitespace()
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let field = |name: &str| {
        fields
            .get(name)
            .copied()
            .ok_or_else(|| format!("{MEMORY_BIN} printed no {name}: {text:?}"))
    };
    let held = field("held")?;
    if held != n {
        return Err(format!("{store}: {held} sessions held of the {n} created").into());
    }
    let per = |bytes: usize| bytes as f64 / n as f64;
    Ok(InProcess {
        sessions: n,
        allocated: per(field("allocated")?),
        resident: per(field("rss")?),
    })
}

/// `MEMORY USAGE` of one sample session in Redis, on each side.
#[derive(Debug, Clone)]
pub(crate) struct InRedis {
    /// Bytes of the hash our `RedisStore` writes.
    pub(crate) ours: u64,
    /// Bytes of the string tower-sessions-redis-store writes.
    pub(crate) theirs: u64,
}

/// Writes one sample session through each Redis store, reads `MEMORY
/// USAGE` of its key, and deletes both. Runs on a runtime.
pub(crate) async fn in_redis(url: &str) -> Result<InRedis, Error> {
    let client = redis::Client::open(url)?;
    let mut con = tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| format!("no connection to {url} in {REDIS_TIMEOUT:?}"))??;
    let mut usage = async |key: &str| -> Result<u64, Error> {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut con)
            .await?;
        bytes.ok_or_else(|| format!("MEMORY USAGE: no key {key:?}").into())
    };

    // Ours: created as the layer creates a session.
    let store = http_sessions::redis::RedisStore::from_url(url)?;
    let id = RandomIds::new().next_id()?;
    let now = http_sessions::seams::SystemClock.now();
    let mut record = Record::empty(now, now + IDLE_TIMEOUT, 16);
    for (k, key) in sample::KEYS.iter().enumerate() {
        record
            .data
            .insert((*key).into(), Value::encode(&sample::value(0, k + 1))?);
    }
    // Not bound to a user: the absolute deadline goes to no index.
    store.create(&id, &record, record.expires).await?;
    let ours = usage(&store.key_of(&id)).await;
    store.delete(&id, None).await?;

    // Theirs: created as its layer creates one.
    let pool = variants::fred_pool(url).await?;
    let store = tower_sessions_redis_store::RedisStore::new(pool.clone());
    let mut data = HashMap::new();
    for (k, key) in sample::KEYS.iter().enumerate() {
        data.insert(
            (*key).to_owned(),
            serde_json::Value::String(sample::value(0, k + 1)),
        );
    }
    let idle = i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
    let mut record = tower_sessions_014::session::Record {
        id: tower_sessions_014::session::Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + time::Duration::seconds(idle),
    };
    let created = store.create(&mut record).await;
    let theirs = match created {
        Ok(()) => usage(&record.id.to_string()).await,
        Err(e) => Err(format!("tower-sessions-redis-store create: {e}").into()),
    };
    let _ = store.delete(&record.id).await;
    variants::Resources::with_fred(pool).close().await;

    Ok(InRedis {
        ours: ours?,
        theirs: theirs?,
    })
}

/// Bytes on disk per session in one SQL database, on each side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OnDisk {
    /// Sessions written through each store.
    pub(crate) sessions: usize,
    /// Our tables' bytes, per session.
    pub(crate) ours: f64,
    /// tower-sessions-sqlx-store's table's bytes, per session.
    pub(crate) theirs: f64,
}

/// Writes `n` sample sessions through each Postgres store, each into
/// tables of its own in [`DISK_SCHEMA`], runs `VACUUM ANALYZE` on them,
/// and sums `pg_total_relation_size` (rows, indexes, TOAST) over each
/// side's tables. The schema is dropped after. Runs on a runtime.
pub(crate) async fn in_postgres(url: &str, n: usize) -> Result<OnDisk, Error> {
    variants::drop_schema(url, DISK_SCHEMA).await?;
    let measured = async {
        let pool = variants::postgres_pool(url).await?;
        let figures = in_postgres_tables(&pool, n).await;
        pool.close().await;
        figures
    }
    .await;
    let dropped = variants::drop_schema(url, DISK_SCHEMA).await;
    let figures = measured?;
    dropped?;
    Ok(figures)
}

async fn in_postgres_tables(
    pool: &http_sessions_sql::sqlx::PgPool,
    n: usize,
) -> Result<OnDisk, Error> {
    // As many writers as the pool has connections.
    let writers = variants::DATABASE_CONNECTIONS as usize;
    let ours = variants::our_postgres(pool.clone(), DISK_SCHEMA).await?;
    write_ours(&ours, n, writers).await?;
    let theirs = variants::their_postgres(pool.clone(), DISK_SCHEMA).await?;
    write_theirs(&theirs, n, writers).await?;

    let our_tables: Vec<String> = OUR_TABLES
        .iter()
        .map(|suffix| format!("{OUR_TABLE}{suffix}"))
        .collect();
    let their_tables = vec![THEIR_TABLE.to_owned()];
    let all: Vec<String> = (our_tables.iter().chain(&their_tables))
        .map(|t| format!("\"{DISK_SCHEMA}\".\"{t}\""))
        .collect();
    variants::sqlx_raw(pool, &format!("VACUUM ANALYZE {}", all.join(", "))).await?;
    let size = async |tables: &[String]| -> Result<f64, Error> {
        let bytes: i64 = http_sessions_sql::sqlx::query_scalar(
            "SELECT sum(pg_total_relation_size(format('%I.%I', $1::text, t)::regclass))::bigint \
             FROM unnest($2::text[]) AS t",
        )
        .bind(DISK_SCHEMA)
        .bind(tables)
        .fetch_one(pool)
        .await?;
        Ok(bytes as f64 / n as f64)
    };
    Ok(OnDisk {
        sessions: n,
        ours: size(&our_tables).await?,
        theirs: size(&their_tables).await?,
    })
}

/// Writes `n` sample sessions through each SQLite store, each side into
/// a database file of its own in `dir` holding its tables alone, then
/// `VACUUM`s it and takes its size (`page_count` times `page_size`). The
/// files are deleted after. Runs on a runtime.
pub(crate) async fn in_sqlite(dir: &Path, n: usize) -> Result<OnDisk, Error> {
    let writers = variants::SQLITE_CONNECTIONS as usize;
    let file = |name: &str| dir.join(name);
    let ours = async {
        let pool = variants::sqlite_pool(&sqlite_url(&file("disk-ours.db"))).await?;
        let written = async {
            let store = variants::our_sqlite(pool.clone()).await?;
            write_ours(&store, n, writers).await?;
            sqlite_bytes(&pool).await
        }
        .await;
        pool.close().await;
        written
    }
    .await;
    let theirs = async {
        let pool = variants::sqlite_pool(&sqlite_url(&file("disk-theirs.db"))).await?;
        let written = async {
            let store = variants::their_sqlite(pool.clone()).await?;
            write_theirs(&store, n, writers).await?;
            sqlite_bytes(&pool).await
        }
        .await;
        pool.close().await;
        written
    }
    .await;
    for name in ["disk-ours.db", "disk-theirs.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(file(&format!("{name}{suffix}")));
        }
    }
    Ok(OnDisk {
        sessions: n,
        ours: ours? / n as f64,
        theirs: theirs? / n as f64,
    })
}

/// The URL of the SQLite database file at `path`.
pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The bytes of the SQLite database on `pool` once vacuumed.
async fn sqlite_bytes(pool: &http_sessions_sql::sqlx::SqlitePool) -> Result<f64, Error> {
    use http_sessions_sql::sqlx::Executor as _;
    pool.execute(http_sessions_sql::sqlx::raw_sql("VACUUM"))
        .await?;
    let pages: i64 = http_sessions_sql::sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await?;
    let page: i64 = http_sessions_sql::sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(pool)
        .await?;
    Ok((pages * page) as f64)
}

/// Writes sample sessions `0..n` through our `store` from `writers`
/// tasks, each created as the layer creates a session (not bound to a
/// user).
async fn write_ours<S>(store: &S, n: usize, writers: usize) -> Result<(), Error>
where
    S: SessionStore + Clone + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (first..n).step_by(writers) {
                let id = RandomIds::new().next_id()?;
                let now = http_sessions::seams::SystemClock.now();
                let mut record = Record::empty(now, now + IDLE_TIMEOUT, 16);
                for (k, key) in sample::KEYS.iter().enumerate() {
                    record
                        .data
                        .insert((*key).into(), Value::encode(&sample::value(i, k + 1))?);
                }
                store.create(&id, &record, record.expires).await?;
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(written) = tasks.join_next().await {
        written??;
    }
    Ok(())
}

/// Writes sample sessions `0..n` through tower-sessions-sqlx-store's
/// `store` from `writers` tasks, by `save`: the upsert its `create` runs
/// too, after checking in a transaction that the id is free; the row
/// written is the same.
async fn write_theirs<S>(store: &S, n: usize, writers: usize) -> Result<(), Error>
where
    S: tower_sessions_014::SessionStore + Clone + 'static,
{
    let idle = i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (first..n).step_by(writers) {
                let data = (sample::KEYS.iter().enumerate())
                    .map(|(k, key)| {
                        (
                            (*key).to_owned(),
                            serde_json::Value::String(sample::value(i, k + 1)),
                        )
                    })
                    .collect();
                let record = tower_sessions_014::session::Record {
                    id: tower_sessions_014::session::Id::default(),
                    data,
                    expiry_date: OffsetDateTime::now_utc() + time::Duration::seconds(idle),
                };
                store
                    .save(&record)
                    .await
                    .map_err(|e| format!("tower-sessions-sqlx-store save: {e}"))?;
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(written) = tasks.join_next().await {
        written??;
    }
    Ok(())
}
