//! The pool behind a [`RedisStore`](crate::RedisStore): one Redis node or a
//! Redis Cluster, both from deadpool-redis, each call bounded by a timeout,
//! and the driver's errors mapped into [`StoreError`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{
    Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, ScriptInvocation, Value,
};
use deadpool_redis::{PoolError, Status, cluster};
use session_core::StoreError;

/// The pool a store draws connections from.
#[derive(Clone)]
pub(crate) enum Pool {
    /// One Redis server (or a proxy in front of several).
    Single(deadpool_redis::Pool),
    /// A Redis Cluster: commands go to the node owning their key's slot.
    Cluster(cluster::Pool),
}

/// A connection taken from either kind of pool; back in the pool on drop.
enum Conn {
    Single(deadpool_redis::Connection),
    Cluster(cluster::Connection),
}

/// Why a call failed, before it becomes a [`StoreError`].
#[derive(Debug)]
pub(crate) enum Error {
    /// No connection: the server refused, or the pool's health check failed.
    Pool(PoolError),
    /// The server or the connection failed the command.
    Redis(RedisError),
    /// The call did not finish within the store's timeout.
    Timeout(Duration),
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        Error::Pool(e)
    }
}

impl From<RedisError> for Error {
    fn from(e: RedisError) -> Self {
        Error::Redis(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Pool(e) => StoreError::unavailable(e),
            Error::Redis(e) => StoreError::unavailable(e),
            Error::Timeout(limit) => StoreError::Timeout(limit),
        }
    }
}

impl Pool {
    async fn get(&self) -> Result<Conn, PoolError> {
        Ok(match self {
            Pool::Single(pool) => Conn::Single(pool.get().await?),
            Pool::Cluster(pool) => Conn::Cluster(pool.get().await?),
        })
    }

    /// Runs one command, the wait for a connection included, within `limit`.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        limit: Duration,
    ) -> Result<T, Error> {
        within(limit, async {
            let mut conn = self.get().await?;
            Ok(cmd.query_async(&mut conn).await?)
        })
        .await
    }

    /// Runs a script (`EVALSHA`, loading it first if the server lacks it),
    /// the wait for a connection included, within `limit`.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        script: &ScriptInvocation<'_>,
        limit: Duration,
    ) -> Result<T, Error> {
        within(limit, async {
            let mut conn = self.get().await?;
            Ok(script.invoke_async(&mut conn).await?)
        })
        .await
    }

    /// Changes the most connections the pool keeps open.
    pub(crate) fn resize(&self, max_size: usize) {
        match self {
            Pool::Single(pool) => pool.resize(max_size),
            Pool::Cluster(pool) => pool.resize(max_size),
        }
    }

    pub(crate) fn status(&self) -> Status {
        match self {
            Pool::Single(pool) => pool.status(),
            Pool::Cluster(pool) => pool.status(),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Pool::Cluster(_))
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct(if self.is_cluster() {
            "Cluster"
        } else {
            "Single"
        })
        .field("size", &status.size)
        .field("max_size", &status.max_size)
        .field("available", &status.available)
        .finish()
    }
}

/// `Err(Timeout)` if `call` has not finished after `limit`. Dropping the
/// call is safe: a connection taken meanwhile goes back to the pool, and a
/// reply that arrives later is discarded by the multiplexer.
async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(Error::Timeout(limit)))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
