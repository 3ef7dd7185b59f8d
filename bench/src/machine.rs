//! What the report says about where it was measured: the [`Machine`]
//! (CPUs, CPU model, memory, date) and the Redis, Postgres and SQLite
//! versions.

use std::time::Duration;

use http_sessions::redis::redis;
use tower_sessions::cookie::time::OffsetDateTime;

use crate::Error;

/// The machine the figures come from.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// CPUs this process may run on.
    pub(crate) cpus: usize,
    /// The first `model name` of `/proc/cpuinfo`.
    pub(crate) cpu_model: String,
    /// `MemTotal` of `/proc/meminfo`, in GiB.
    pub(crate) memory_gib: Option<f64>,
    /// Today, UTC, as `YYYY-MM-DD`.
    pub(crate) date: String,
}

impl Machine {
    /// Reads it from the system; what cannot be read says so.
    pub(crate) fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                (name.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / (1024.0 * 1024.0));
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory_gib,
            date: OffsetDateTime::now_utc().date().to_string(),
        }
    }

    /// One line: `2 CPUs (model), 23.4 GiB of memory`.
    pub(crate) fn summary(&self) -> String {
        let memory = self.memory_gib.map_or_else(
            || "unknown memory".to_owned(),
            |g| format!("{g:.1} GiB of memory"),
        );
        format!("{} CPUs ({}), {memory}", self.cpus, self.cpu_model)
    }
}

/// `redis_version` from `INFO server` of the Redis at `url`.
pub(crate) async fn redis_version(url: &str) -> Result<String, Error> {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let ask = async {
        let client = redis::Client::open(url)?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut con)
            .await?;
        Ok::<_, Error>(info)
    };
    let info = tokio::time::timeout(TIMEOUT, ask)
        .await
        .map_err(|_| format!("no answer from {url} in {TIMEOUT:?}"))??;
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("INFO server of {url} has no redis_version").into())
}

/// The Postgres at `url` as the report gives it: `server_version`, and
/// the settings that move write speed (`15.2; fsync=off, ...`).
pub(crate) async fn postgres_version(url: &str) -> Result<String, Error> {
    const TIMEOUT: Duration = Duration::from_secs(5);
    const SETTINGS: [&str; 3] = ["fsync", "synchronous_commit", "shared_buffers"];
    let ask = async {
        let pool = http_sessions_sql::sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        let mut shown = Vec::new();
        for name in ["server_version"].into_iter().chain(SETTINGS) {
            let value: Result<String, _> =
                http_sessions_sql::sqlx::query_scalar(&format!("SHOW {name}"))
                    .fetch_one(&pool)
                    .await;
            match value {
                Ok(value) => shown.push(value),
                Err(e) => {
                    pool.close().await;
                    return Err(e.into());
                }
            }
        }
        pool.close().await;
        let (version, settings) = shown.split_first().ok_or("SHOW returned nothing")?;
        let settings: Vec<String> = (SETTINGS.iter().zip(settings))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Ok::<_, Error>(format!("{version}; {}", settings.join(", ")))
    };
    tokio::time::timeout(TIMEOUT, ask)
        .await
        .map_err(|_| format!("no answer from {url} in {TIMEOUT:?}"))?
}

/// The version of the SQLite the bench is built with (bundled by sqlx).
pub(crate) async fn sqlite_version() -> Result<String, Error> {
    let pool = http_sessions_sql::sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    let version: Result<String, _> =
        http_sessions_sql::sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&pool)
            .await;
    pool.close().await;
    Ok(version?)
}
