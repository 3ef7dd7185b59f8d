//! The pool behind a [`RedisStore`](crate::RedisStore): one Redis node (at
//! a URL, or the primary a group of Sentinels names) or a Redis Cluster,
//! each call bounded by the store's timeout, and the driver's errors mapped
//! into [`StoreError`].
//!
//! A pool of its own, because deadpool-redis checks each connection it
//! hands out with a `PING`, a second round trip per call. The [`Lean`]
//! manager checks nothing on the wire: a closed connection fails its next
//! call at once, and one that stops answering fails one call's timeout;
//! either then retires every connection opened as early (by epoch), and a
//! dropped one's call is sent once more on a new connection. How, and why
//! that is safe: `docs/redis-internals.md`.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use deadpool::managed::{self, Metrics, Object, QueueMode, RecycleError, RecycleResult};
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster::ClusterClient;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::io::tcp::TcpSettings;
use deadpool_redis::redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue,
    IntoConnectionInfo, RedisError, RedisResult, Value,
};
use deadpool_redis::{Runtime, Status, cluster};
use http_sessions_core::{ConfigError, StoreError};

use crate::pipe::{Deadline, Pipe};
use crate::script::ScriptCall;

/// The error of getting a connection from any of the pools.
pub(crate) type PoolError = managed::PoolError<RedisError>;

/// The pool a store draws connections from.
#[derive(Clone)]
pub(crate) enum Pool {
    /// One Redis server (or a proxy in front of several), through a pool
    /// whose checkout costs no round trip.
    Node(managed::Pool<Lean<NodeClient>>),
    /// A Redis Cluster, through a pool whose checkout costs no round trip:
    /// commands go to the node owning their key's slot.
    Cluster(managed::Pool<Lean<ClusterClient>>),
    /// A deadpool-redis pool built by the caller: it pings on checkout.
    Deadpool(deadpool_redis::Pool),
    /// A deadpool-redis cluster pool built by the caller: it pings on
    /// checkout.
    DeadpoolCluster(cluster::Pool),
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
            Error::Pool(managed::PoolError::Backend(e)) | Error::Redis(e) => {
                match Refused::why(&e) {
                    Some(why) => StoreError::unavailable(Refused { why, source: e }),
                    None => StoreError::unavailable(e),
                }
            }
            Error::Pool(e) => StoreError::unavailable(e),
            Error::Timeout(limit) => StoreError::Timeout(limit),
        }
    }
}

/// Redis refused the store's credentials, or its user may not run the
/// store's commands: a fault of configuration (the URL, or the server's
/// ACL) that no retry mends, so the error says which. Also the Sentinels
/// naming no primary, which the driver's words leave obscure.
#[derive(Debug)]
struct Refused {
    why: Why,
    source: RedisError,
}

/// What [`Refused`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// `AUTH` was refused (`WRONGPASS`): a wrong password, or an unknown
    /// or disabled user.
    Credentials,
    /// The server requires a password and the URL gives none (`NOAUTH`).
    NoPassword,
    /// The user may not run a command or touch a key (`NOPERM`).
    Permission,
    /// No Sentinel names a primary that is up for the store's service.
    NoPrimary,
}

impl Refused {
    /// What `error` is about, if it is a refusal of access.
    fn why(error: &RedisError) -> Option<Why> {
        match error.kind() {
            redis::ErrorKind::AuthenticationFailed => return Some(Why::Credentials),
            redis::ErrorKind::MasterNameNotFoundBySentinel => return Some(Why::NoPrimary),
            _ => {}
        }
        match error.code()? {
            "WRONGPASS" => Some(Why::Credentials),
            "NOAUTH" => Some(Why::NoPassword),
            "NOPERM" => Some(Why::Permission),
            _ => None,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.why {
            Why::Credentials => f.write_str(
                "authentication failed: Redis refused the user name or password in the URL",
            )?,
            Why::NoPassword => f.write_str(
                "authentication failed: the Redis server requires a password and the URL \
                 gives none, as in redis://:password@host or redis://user:password@host",
            )?,
            Why::Permission => f.write_str(
                "permission denied: the Redis user in the URL may not run the store's \
                 commands on its keys",
            )?,
            Why::NoPrimary => f.write_str(
                "no Sentinel names a primary that is up: a failover is under way, the \
                 primary is down, or the service name differs from the one in \
                 `sentinel monitor <name>`",
            )?,
        }
        // The server's own words; they never hold the password.
        match (self.source.code(), self.source.detail()) {
            (Some(code), Some(detail)) => write!(f, " ({code} {detail})"),
            (None, Some(detail)) => write!(f, " ({detail})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What one store call sends: a command, or a script.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    /// One command (`HGETALL`, `DEL`).
    Command(&'a Cmd),
    /// A script (save or retire): `EVALSHA`, then `EVAL` (which also loads
    /// it) only if the server answers `NOSCRIPT`.
    Script(&'a ScriptCall),
}

impl Request<'_> {
    /// The reply, a server's error reply included as a value, or a timed
    /// out I/O error at the deadline.
    async fn send<C: Link>(self, conn: &mut C, deadline: Deadline) -> RedisResult<Value> {
        match self {
            Request::Command(cmd) => conn.send(cmd, deadline).await,
            Request::Script(call) => {
                let reply = conn.send(call.evalsha(), deadline).await;
                if is_noscript(&reply) {
                    conn.send(&call.eval(), deadline).await
                } else {
                    reply
                }
            }
        }
    }
}

/// Whether the server does not know the script (after a restart, or on a
/// cluster node that has not run it yet).
fn is_noscript(reply: &RedisResult<Value>) -> bool {
    match reply {
        Ok(Value::ServerError(e)) => e.code() == "NOSCRIPT",
        Ok(_) => false,
        Err(e) => e.code() == Some("NOSCRIPT"),
    }
}

/// A connection a store call can send a command on.
pub(crate) trait Link: Send {
    /// Sends `cmd` and reads its reply, giving up at `deadline` with an I/O
    /// error of kind `TimedOut` (`is_timeout`).
    fn send(
        &mut self,
        cmd: &Cmd,
        deadline: Deadline,
    ) -> impl Future<Output = RedisResult<Value>> + Send;

    /// Whether a call sent at `sent` that timed out at `deadline` says the
    /// connection may never answer again: by default, [`had_time`].
    fn dead_after_timeout(&self, sent: Instant, deadline: Deadline) -> bool {
        had_time(sent, deadline)
    }
}

/// Whether a call sent at `sent` still had at least half its timeout left:
/// enough for a healthy connection to answer, so that a timeout says the
/// connection is at fault, not the time the call spent before it.
fn had_time(sent: Instant, deadline: Deadline) -> bool {
    deadline.at.saturating_duration_since(sent) >= deadline.limit / 2
}

/// `reply`, or a timed out I/O error if it has not come at `deadline`.
/// Dropping the driver's call is safe: its reply is discarded when it
/// comes.
async fn by(
    deadline: Deadline,
    reply: impl Future<Output = RedisResult<Value>>,
) -> RedisResult<Value> {
    tokio::time::timeout_at(deadline.at, reply)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no reply from Redis within the store's timeout",
            )))
        })
}

impl Link for NodeConn {
    async fn send(&mut self, cmd: &Cmd, deadline: Deadline) -> RedisResult<Value> {
        match self {
            // The pipe's own timer: cheaper than a timer per call.
            NodeConn::Pipe(pipe) => pipe.send_by(cmd, Some(deadline)).await,
            NodeConn::Multiplexed(conn) => by(deadline, conn.req_packed_command(cmd)).await,
        }
    }

    fn dead_after_timeout(&self, sent: Instant, deadline: Deadline) -> bool {
        match self {
            // The pipe judged by its silence, and broke if it was dead.
            NodeConn::Pipe(pipe) => pipe.is_broken(),
            NodeConn::Multiplexed(_) => had_time(sent, deadline),
        }
    }
}

impl Link for ClusterConnection {
    async fn send(&mut self, cmd: &Cmd, deadline: Deadline) -> RedisResult<Value> {
        by(deadline, self.req_packed_command(cmd)).await
    }
}

impl Link for deadpool_redis::Connection {
    async fn send(&mut self, cmd: &Cmd, deadline: Deadline) -> RedisResult<Value> {
        by(deadline, self.req_packed_command(cmd)).await
    }
}

impl Link for cluster::Connection {
    async fn send(&mut self, cmd: &Cmd, deadline: Deadline) -> RedisResult<Value> {
        by(deadline, self.req_packed_command(cmd)).await
    }
}

/// The TCP settings of every driver connection opened here: no Nagle delay
/// (as on a [`Pipe`]), and the store's keepalive.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(crate::pipe::keepalive())
}

/// The address and settings `url` names, with the store's TCP settings.
fn node_info(url: &str) -> Result<ConnectionInfo, ConfigError> {
    Ok(url
        .into_connection_info()
        .map_err(|e| ConfigError::Store(Box::new(e)))?
        .set_tcp_settings(tcp_settings()))
}

/// rustls needs one crypto provider for the process, and redis-rs enables
/// rustls without naming one: ring is installed here, unless the
/// application installed another first (which then stays, hence the
/// ignored result). Without this, rustls would panic on the first
/// connection of a program whose dependencies enable two providers.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Pool {
    /// A pool of multiplexed connections to the Redis at `url`; nothing
    /// connects until the first call.
    pub(crate) fn node(url: &str) -> Result<Self, ConfigError> {
        let client =
            redis::Client::open(node_info(url)?).map_err(|e| ConfigError::Store(Box::new(e)))?;
        Self::node_client(client)
    }

    /// A pool of TLS connections to the Redis at `url` (`rediss://`) that
    /// trust the certificate authorities in `ca_pem` and no others.
    #[cfg(feature = "tls")]
    pub(crate) fn node_with_ca(url: &str, ca_pem: &[u8]) -> Result<Self, ConfigError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        // The driver would take PEM without a certificate as an empty
        // trust store, and every connection would then be refused: said
        // here instead, at start.
        let certificates = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Store(format!("the CA's PEM does not parse: {e}").into()))?;
        if certificates.is_empty() {
            return Err(ConfigError::Store(
                "the CA's PEM holds no certificate (`-----BEGIN CERTIFICATE-----`)".into(),
            ));
        }
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_pem.to_vec()),
        };
        let client = redis::Client::build_with_tls(node_info(url)?, certificates)
            .map_err(|e| ConfigError::Store(Box::new(e)))?;
        Self::node_client(client)
    }

    fn node_client(client: redis::Client) -> Result<Self, ConfigError> {
        Self::node_found_by(Node::Url(client))
    }

    /// A pool of connections to the primary that the Sentinels at
    /// `sentinels` name for `service`, reached as `node` says (its user,
    /// password, database, TLS) with the store's TCP settings. Nothing
    /// connects until the first call; each new connection asks the
    /// Sentinels again, so one opened after a failover goes to the new
    /// primary.
    pub(crate) fn sentinel(
        sentinels: Vec<String>,
        service: String,
        node: SentinelNodeConnectionInfo,
    ) -> Result<Self, ConfigError> {
        if service.is_empty() {
            return Err(ConfigError::Store(
                "a Sentinel group needs the name of the primary it monitors \
                 (`sentinel monitor <name> ...` in sentinel.conf)"
                    .into(),
            ));
        }
        let sentinel = Sentinel::build(sentinels).map_err(|e| ConfigError::Store(Box::new(e)))?;
        Self::node_found_by(Node::Sentinel(SentinelPrimary {
            sentinel: tokio::sync::Mutex::new(sentinel),
            service,
            node: node.set_tcp_settings(tcp_settings()),
        }))
    }

    fn node_found_by(node: Node) -> Result<Self, ConfigError> {
        #[cfg(feature = "tls")]
        install_crypto_provider();
        Ok(Pool::Node(lean(NodeClient {
            node,
            driver: AtomicBool::new(false),
        })?))
    }

    /// On a single node over plain TCP, opens the driver's multiplexed
    /// connection from now on instead of a [`Pipe`], and retires the
    /// connections already open. Nothing on other pools.
    pub(crate) fn use_driver_connection(&self) {
        if let Pool::Node(pool) = self {
            let manager = pool.manager();
            manager.open.driver.store(true, Ordering::Relaxed);
            manager.retire(manager.epoch.load(Ordering::Acquire));
        }
    }

    /// A pool of connections to the Redis Cluster that the nodes at `urls`
    /// belong to; nothing connects until the first call.
    pub(crate) fn cluster(urls: Vec<String>) -> Result<Self, ConfigError> {
        // No response timeout of the driver's (none is its default on a
        // cluster): the store's bounds each call.
        let client = ClusterClient::builder(urls)
            .tcp_settings(tcp_settings())
            .build()
            .map_err(|e| ConfigError::Store(Box::new(e)))?;
        Ok(Pool::Cluster(lean(client)?))
    }

    /// Sends `request` and reads its reply, the wait for a connection
    /// included, within `limit`.
    ///
    /// On the pools built here, a request that fails because the pooled
    /// connection it was given had been dropped is sent once more, on a new
    /// connection. That may run it twice: a dropped connection does not say
    /// whether the server had received the command before it went away.
    /// Every request the store makes stays correct if it runs twice:
    ///
    /// - `HGETALL` and `DEL` change nothing the second time.
    /// - An *update* by the save script writes the same fields with the same
    ///   values again, so the session ends as if the request had run once,
    ///   last. It checks again that the session is alive, so it never brings
    ///   back a session that ended in between; it then answers *gone*, which
    ///   is also the answer when its first run had emptied and deleted the
    ///   session (the request then fails as *gone*, and nothing is revived).
    /// - A *create* that had already run finds its own key and answers
    ///   *exists*; the layer then creates the session again under a new id.
    ///   The first key is left to its TTL, and no session is ever
    ///   overwritten.
    /// - A *retire* that had already run finds the marker it wrote, known by
    ///   the random tag the call carries, and answers *retired* again; a
    ///   marker some other renewal wrote is still *gone*.
    ///
    /// A request that times out retires the connection it was sent on (see
    /// the module documentation); on a deadpool-redis pool, that connection
    /// is taken out of the pool.
    pub(crate) async fn call<T: FromRedisValue>(
        &self,
        request: Request<'_>,
        limit: Duration,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + limit;
        let due = Deadline {
            at: deadline,
            limit,
        };
        if let Pool::Node(pool) = self
            && let Some((pipe @ NodeConn::Pipe(_), epoch)) = pool.manager().hot()
        {
            let reply = call_pipe(pool, pipe, epoch, request, due).await?;
            return Ok(redis::from_redis_value(reply.extract_error()?).map_err(RedisError::from)?);
        }
        let reply = match self {
            Pool::Node(pool) => call_lean(pool, request, true, due).await?,
            Pool::Cluster(pool) => call_lean(pool, request, true, due).await?,
            // Boxed for the size of the pool's future (see `checkout`).
            Pool::Deadpool(pool) => {
                let conn = within(due, async { Ok(Box::pin(pool.get()).await?) }).await?;
                call_detaching(conn, request, due, deadpool_redis::Connection::take).await?
            }
            Pool::DeadpoolCluster(pool) => {
                let conn = within(due, async { Ok(Box::pin(pool.get()).await?) }).await?;
                call_detaching(conn, request, due, cluster::Connection::take).await?
            }
        };
        Ok(redis::from_redis_value(reply.extract_error()?).map_err(RedisError::from)?)
    }

    /// Changes the most connections the pool keeps open.
    pub(crate) fn resize(&self, max_size: usize) {
        match self {
            Pool::Node(pool) => pool.resize(max_size),
            Pool::Cluster(pool) => pool.resize(max_size),
            Pool::Deadpool(pool) => pool.resize(max_size),
            Pool::DeadpoolCluster(pool) => pool.resize(max_size),
        }
    }

    pub(crate) fn status(&self) -> Status {
        match self {
            Pool::Node(pool) => pool.status(),
            Pool::Cluster(pool) => pool.status(),
            Pool::Deadpool(pool) => pool.status(),
            Pool::DeadpoolCluster(pool) => pool.status(),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Pool::Cluster(_) | Pool::DeadpoolCluster(_))
    }

    /// Whether the pool's node is the primary a group of Sentinels names.
    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self, Pool::Node(pool) if matches!(pool.manager().open.node, Node::Sentinel(_)))
    }

    /// Whether checking a connection out costs a round trip (`PING`).
    pub(crate) fn pings_on_checkout(&self) -> bool {
        matches!(self, Pool::Deadpool(_) | Pool::DeadpoolCluster(_))
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct(if self.is_cluster() {
            "Cluster"
        } else if self.is_sentinel() {
            "Sentinel"
        } else {
            "Single"
        })
        .field("size", &status.size)
        .field("max_size", &status.max_size)
        .field("available", &status.available)
        .field("pings_on_checkout", &self.pings_on_checkout())
        .finish()
    }
}

/// `Err(Timeout(limit))` if `step` (getting a connection) has not finished
/// at the deadline. Dropping it is safe: a connection taken or opened
/// meanwhile goes back to the pool, or is closed.
async fn within<T>(
    due: Deadline,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(due.at, step)
        .await
        .unwrap_or(Err(Error::Timeout(due.limit)))
}

/// The request on a connection of a deadpool-redis pool; if it times out
/// in a way that says the connection may never answer again
/// ([`Link::dead_after_timeout`]), the connection is taken out of the pool
/// with `take` and dropped, so that no later call is handed it.
async fn call_detaching<C: Link, D>(
    mut conn: C,
    request: Request<'_>,
    due: Deadline,
    take: fn(C) -> D,
) -> Result<Value, Error> {
    let sent = Instant::now();
    match request.send(&mut conn, due).await {
        Ok(reply) => Ok(reply),
        Err(error) if error.is_timeout() => {
            if conn.dead_after_timeout(sent, due) {
                drop(take(conn));
            }
            Err(Error::Timeout(due.limit))
        }
        Err(error) => Err(error.into()),
    }
}

/// The error of a call that timed out on `conn`, retiring the connection
/// (and those of its epoch) if the timeout says it may never answer again.
fn timed_out<O: Open>(
    pool: &managed::Pool<Lean<O>>,
    conn: &O::Conn,
    epoch: u64,
    sent: Instant,
    due: Deadline,
) -> Error {
    if conn.dead_after_timeout(sent, due) {
        tracing::debug!("no reply from Redis in time; the connection is retired");
        pool.manager().retire(epoch);
    }
    Error::Timeout(due.limit)
}

/// [`Pool::call`] on the hot connection of a single node's pool when it is a
/// [`Pipe`]: the request, bounded by the pipe's timer, and if the pipe turns
/// out dropped, once more on a new connection, as [`call_lean`] does, within
/// what is left of the timeout.
async fn call_pipe(
    pool: &managed::Pool<Lean<NodeClient>>,
    mut pipe: NodeConn,
    epoch: u64,
    request: Request<'_>,
    due: Deadline,
) -> Result<Value, Error> {
    match send_on(pool, &mut pipe, epoch, request, due).await {
        Ok(reply) => Ok(reply),
        Err(Failed::Dropped(error)) => {
            tracing::debug!(%error, "pooled Redis connection was dropped; trying once more on a new one");
            call_lean(pool, request, false, due).await
        }
        Err(Failed::Other(error)) => Err(error),
    }
}

/// How a request failed on a connection.
enum Failed {
    /// The connection turned out dropped (and is retired): the request may
    /// be tried once more on a new one.
    Dropped(RedisError),
    /// Any other failure: the call's error.
    Other(Error),
}

impl From<Failed> for Error {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Dropped(error) => error.into(),
            Failed::Other(error) => error,
        }
    }
}

/// Sends `request` on `conn`, a connection of `epoch`. A connection the
/// error broke is retired, and so is one a timeout says may never answer
/// again ([`timed_out`]).
async fn send_on<O: Open>(
    pool: &managed::Pool<Lean<O>>,
    conn: &mut O::Conn,
    epoch: u64,
    request: Request<'_>,
    due: Deadline,
) -> Result<Value, Failed> {
    let sent = Instant::now();
    match request.send(conn, due).await {
        Ok(reply) => Ok(reply),
        Err(error) if error.is_timeout() => {
            Err(Failed::Other(timed_out(pool, conn, epoch, sent, due)))
        }
        Err(error) if breaks_connection(&error) => {
            pool.manager().retire(epoch);
            if error.is_connection_dropped() {
                Err(Failed::Dropped(error))
            } else {
                Err(Failed::Other(error.into()))
            }
        }
        Err(error) => Err(Failed::Other(error.into())),
    }
}

// ------------------------------------------------------------ the lean pool

/// Opens one connection: what a [`Lean`] manager pools.
pub(crate) trait Open: Send + Sync + 'static {
    /// The connection, multiplexed: one serves many calls at once.
    type Conn: Link + Clone + Send + Sync + 'static;

    /// Connects (and authenticates, selects the database) as the client's
    /// URL says.
    fn open(&self) -> impl Future<Output = RedisResult<Self::Conn>> + Send;
}

/// A connection to one Redis node: a [`Pipe`] on plain TCP, which writes
/// the commands of concurrent calls together, else (TLS, Unix socket) the
/// driver's multiplexed connection.
#[derive(Clone)]
pub(crate) enum NodeConn {
    /// Plain TCP.
    Pipe(Pipe),
    /// Any other kind of address the driver knows, and plain TCP when
    /// asked ([`Pool::use_driver_connection`]).
    Multiplexed(MultiplexedConnection),
}

impl Open for redis::Client {
    type Conn = NodeConn;

    async fn open(&self) -> RedisResult<NodeConn> {
        let info = self.get_connection_info();
        match info.addr() {
            ConnectionAddr::Tcp(host, port) => Ok(NodeConn::Pipe(
                Pipe::connect(host, *port, info.redis_settings()).await?,
            )),
            _ => Ok(NodeConn::Multiplexed(multiplexed(self).await?)),
        }
    }
}

/// The driver's multiplexed connection to the node `client` names.
async fn multiplexed(client: &redis::Client) -> RedisResult<MultiplexedConnection> {
    // The store's timeout bounds each call, the connecting included
    // (`checkout` runs within it): the driver's shorter defaults would cut
    // a longer one short.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// How a single node's pool finds its node, and which connection it opens
/// on plain TCP.
pub(crate) struct NodeClient {
    node: Node,
    /// The driver's multiplexed connection on plain TCP too, not a
    /// [`Pipe`]: only to measure the pipe against it
    /// ([`Pool::use_driver_connection`]).
    driver: AtomicBool,
}

/// Where a single node's connections go.
enum Node {
    /// The node a URL names.
    Url(redis::Client),
    /// Whichever node a group of Sentinels names as the primary, asked
    /// again for each new connection.
    Sentinel(SentinelPrimary),
}

/// The primary a group of Sentinels monitors under one service name.
struct SentinelPrimary {
    /// The driver's Sentinel client, which keeps a connection to the
    /// Sentinel that last answered; locked while it is asked.
    sentinel: tokio::sync::Mutex<Sentinel>,
    service: String,
    node: SentinelNodeConnectionInfo,
}

impl SentinelPrimary {
    /// A client for the node the Sentinels name as the primary now. The
    /// driver asks them in turn, skips a primary they see as down, and
    /// checks with `ROLE` that the node it names is a primary: during a
    /// failover, this fails until a replica has been promoted.
    async fn client(&self) -> RedisResult<redis::Client> {
        let mut sentinel = self.sentinel.lock().await;
        sentinel
            .async_master_for(&self.service, Some(&self.node))
            .await
    }
}

impl Open for NodeClient {
    type Conn = NodeConn;

    async fn open(&self) -> RedisResult<NodeConn> {
        let found;
        let client = match &self.node {
            Node::Url(client) => client,
            Node::Sentinel(primary) => {
                found = primary.client().await?;
                &found
            }
        };
        if self.driver.load(Ordering::Relaxed) {
            Ok(NodeConn::Multiplexed(multiplexed(client).await?))
        } else {
            client.open().await
        }
    }
}

impl Open for ClusterClient {
    type Conn = ClusterConnection;

    async fn open(&self) -> RedisResult<ClusterConnection> {
        self.get_async_connection().await
    }
}

/// A pool manager whose checkout costs no round trip (see the module
/// documentation): it keeps a connection unless a connection opened at the
/// same time or later was found dropped.
pub(crate) struct Lean<O: Open> {
    open: O,
    /// Moves on when a connection is found dropped; connections opened in
    /// an older epoch are discarded when next checked out.
    epoch: AtomicU64,
    /// The connection the last checkout from the pool handed out, and its
    /// epoch: what the next calls use without going through the pool, as
    /// long as its epoch is current.
    hot: Mutex<Option<(O::Conn, u64)>>,
}

/// A pooled connection and the epoch it was opened in.
pub(crate) struct Pooled<C> {
    conn: C,
    epoch: u64,
}

impl<O: Open> Lean<O> {
    /// The hot connection, if its epoch is still current.
    fn hot(&self) -> Option<(O::Conn, u64)> {
        let hot = self.hot.lock().unwrap_or_else(PoisonError::into_inner);
        match &*hot {
            Some((conn, epoch)) if *epoch >= self.epoch.load(Ordering::Acquire) => {
                Some((conn.clone(), *epoch))
            }
            _ => None,
        }
    }

    fn set_hot(&self, conn: &O::Conn, epoch: u64) {
        *self.hot.lock().unwrap_or_else(PoisonError::into_inner) = Some((conn.clone(), epoch));
    }

    /// Discards, at their next checkout, every connection opened in
    /// `epoch` (that of a connection just found broken) or earlier. An
    /// older epoch changes nothing: its failure was already counted, and the
    /// connections opened since are not suspect.
    fn retire(&self, epoch: u64) {
        let _ = self.epoch.compare_exchange(
            epoch,
            epoch.saturating_add(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

impl<O: Open> managed::Manager for Lean<O> {
    type Type = Pooled<O::Conn>;
    type Error = RedisError;

    async fn create(&self) -> Result<Pooled<O::Conn>, RedisError> {
        // Read before connecting: a drop found meanwhile discards this one
        // too, which costs a reconnect at worst.
        let epoch = self.epoch.load(Ordering::Acquire);
        let conn = self.open.open().await?;
        Ok(Pooled { conn, epoch })
    }

    async fn recycle(&self, conn: &mut Pooled<O::Conn>, _: &Metrics) -> RecycleResult<RedisError> {
        // No I/O: a dead multiplexed connection fails its next command at
        // once, before sending, and that failure is handled in `call_lean`.
        if conn.epoch < self.epoch.load(Ordering::Acquire) {
            Err(RecycleError::message(
                "opened before a connection to the same Redis was found dropped",
            ))
        } else {
            Ok(())
        }
    }
}

/// A pool of `O`'s connections with the default size (twice the CPUs, as
/// deadpool-redis's).
fn lean<O: Open>(open: O) -> Result<managed::Pool<Lean<O>>, ConfigError> {
    let manager = Lean {
        open,
        epoch: AtomicU64::new(0),
        hot: Mutex::new(None),
    };
    managed::Pool::builder(manager)
        .runtime(Runtime::Tokio1)
        // A call hands its connection back at once (see `checkout`): with
        // the last one returned handed out first, concurrent calls share one
        // connection and its writes, and the others open only if that one
        // is checked out at the very moment.
        .queue_mode(QueueMode::Lifo)
        .build()
        .map_err(|e| ConfigError::Store(Box::new(e)))
}

/// [`Pool::call`] on a lean pool: the request on a pooled connection, and,
/// if `retry`, once more on a new one if the pooled one turns out to have
/// been dropped. A connection the request broke, or timed out on for good
/// ([`Link::dead_after_timeout`]), is retired.
async fn call_lean<O: Open>(
    pool: &managed::Pool<Lean<O>>,
    request: Request<'_>,
    retry: bool,
    due: Deadline,
) -> Result<Value, Error> {
    let (mut conn, epoch, reused) = within(due, checkout(pool)).await?;
    match send_on(pool, &mut conn, epoch, request, due).await {
        // A connection opened for this very call that is dropped already
        // says the server just went away: a second try would fail the same
        // way.
        Err(Failed::Dropped(error)) if retry && reused => {
            tracing::debug!(%error, "pooled Redis connection was dropped; trying once more on a new one");
            let (mut conn, epoch, _) = within(due, checkout(pool)).await?;
            send_on(pool, &mut conn, epoch, request, due)
                .await
                .map_err(Error::from)
        }
        sent => sent.map_err(Error::from),
    }
}

/// A handle on a pooled connection, its epoch, and whether it had been used
/// before. The pooled connection goes back at once: a multiplexed
/// connection serves many calls at a time, and holding it for one call
/// would cap the calls in flight at the pool's size.
///
/// The connection handed out last is kept at hand and handed out again
/// without asking the pool, until a connection of its epoch is found
/// broken: one lock and a clone instead of the pool's bookkeeping on every
/// call.
async fn checkout<O: Open>(pool: &managed::Pool<Lean<O>>) -> Result<(O::Conn, u64, bool), Error> {
    let manager = pool.manager();
    if let Some((conn, epoch)) = manager.hot() {
        return Ok((conn, epoch, true));
    }
    // Boxed: the pool's future is several kilobytes, and each store call's
    // future, which holds this one, is allocated and moved whole on every
    // call, also when the hot connection makes it unneeded.
    let pooled = Box::pin(pool.get()).await?;
    let reused = Object::metrics(&pooled).recycle_count > 0;
    manager.set_hot(&pooled.conn, pooled.epoch);
    Ok((pooled.conn.clone(), pooled.epoch, reused))
}

/// Whether `error` leaves the connection unusable: the driver's own
/// judgement (a dropped connection, a reply it could not parse, ...), or any
/// I/O error but a response timeout. Whether a timeout does is the
/// connection's to tell ([`Link::dead_after_timeout`]): a call that had
/// little time left says nothing of it.
fn breaks_connection(error: &RedisError) -> bool {
    error.is_unrecoverable_error() || (error.is_io_error() && !error.is_timeout())
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use deadpool_redis::redis::ErrorKind;

    #[test]
    fn only_errors_that_break_a_connection_discard_it() {
        for kind in [
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::Other,
        ] {
            let error = RedisError::from(io::Error::from(kind));
            assert!(breaks_connection(&error), "{kind:?}");
        }
        // No reply in time: whether that condemns the connection is the
        // connection's to tell.
        let slow = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
        assert!(!breaks_connection(&slow));
        // The server answered: the connection is fine.
        let answered = RedisError::from((ErrorKind::UnexpectedReturnType, "not an integer"));
        assert!(!breaks_connection(&answered));
    }

    #[test]
    fn a_timeout_condemns_a_driver_connection_only_if_the_call_had_time() {
        let limit = Duration::from_secs(2);
        let sent = Instant::now();
        let deadline = |left| Deadline {
            at: sent + left,
            limit,
        };
        assert!(had_time(sent, deadline(limit)));
        assert!(had_time(sent, deadline(limit / 2)));
        assert!(!had_time(
            sent,
            deadline(limit / 2 - Duration::from_millis(1))
        ));
        assert!(!had_time(sent, deadline(Duration::ZERO)));
    }

    #[test]
    fn refusals_of_access_name_their_cause() {
        let said = |reply: &[u8]| {
            let error = redis::parse_redis_value(reply)
                .unwrap()
                .extract_error()
                .unwrap_err();
            StoreError::from(Error::Redis(error)).to_string()
        };
        assert_eq!(
            said(b"-NOAUTH Authentication required.\r\n"),
            "session store unavailable: authentication failed: the Redis server requires \
             a password and the URL gives none, as in redis://:password@host or \
             redis://user:password@host (NOAUTH Authentication required.)"
        );
        let denied = said(b"-NOPERM this user has no permissions to run the 'hgetall' command\r\n");
        assert!(
            denied.starts_with("session store unavailable: permission denied: ")
                && denied.ends_with(
                    " (NOPERM this user has no permissions to run the 'hgetall' command)"
                ),
            "{denied}"
        );
        // As the pipe's handshake reports a refused `AUTH`, through the pool.
        let refused = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "authentication failed",
            "WRONGPASS invalid username-password pair or user is disabled.".to_owned(),
        ));
        assert_eq!(
            StoreError::from(Error::Pool(managed::PoolError::Backend(refused))).to_string(),
            "session store unavailable: authentication failed: Redis refused the user name \
             or password in the URL (WRONGPASS invalid username-password pair or user is \
             disabled.)"
        );
        // Any other error keeps its own words.
        let other = said(b"-ERR unknown command\r\n");
        assert!(!other.contains("authentication"), "{other}");
    }

    #[test]
    fn building_a_pool_connects_to_nothing() {
        let pool = Pool::node("redis://127.0.0.1:1").unwrap();
        assert!(!pool.is_cluster() && !pool.pings_on_checkout());
        assert_eq!(pool.status().size, 0);
        let pool = Pool::cluster(vec!["redis://127.0.0.1:1".to_owned()]).unwrap();
        assert!(pool.is_cluster() && !pool.pings_on_checkout());
        assert_eq!(pool.status().size, 0);
    }

    #[test]
    fn asking_for_the_driver_connection_retires_the_pipes() {
        let pool = Pool::node("redis://127.0.0.1:1").unwrap();
        let Pool::Node(lean) = &pool else {
            panic!("a single node's pool")
        };
        let manager = lean.manager();
        assert!(!manager.open.driver.load(Ordering::Relaxed));
        pool.use_driver_connection();
        assert!(manager.open.driver.load(Ordering::Relaxed));
        // A pipe opened before is not handed out again.
        assert_eq!(manager.epoch.load(Ordering::Acquire), 1);
        assert_eq!(pool.status().size, 0);
    }
}
