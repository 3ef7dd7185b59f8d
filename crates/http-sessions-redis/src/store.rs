//! [`RedisStore`]: the session store on Redis, its constructors and builder
//! methods, and its [`SessionStore`] implementation.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::cluster;
use deadpool_redis::redis::sentinel::SentinelNodeConnectionInfo;
use deadpool_redis::redis::{self, Cmd, Value};
use http_sessions_core::store::{
    IdSource, Loaded, RandomIds, Record, SessionId, SessionStore, StoreError, UnixTime, Update,
    Updated, UserIndex,
};
use http_sessions_core::{ConfigError, Settings};

use crate::conn::{self, Pool, Request};
use crate::layout::{self, Stored};
use crate::script::{self, Generation, Indexing, Outcome, ScriptCall};

/// The prefix of every key a store writes, unless configured.
pub const DEFAULT_PREFIX: &str = "session:";

/// Sessions in Redis, one hash per session, through a pool of multiplexed
/// connections: a single node ([`from_url`](Self::from_url),
/// [`from_pool`](Self::from_pool)) or a Redis Cluster
/// ([`cluster`](Self::cluster), [`from_cluster_pool`](Self::from_cluster_pool)).
///
/// - A load is one `HGETALL`; a create or an update is one `EVALSHA` of a
///   Lua script that creates the hash only if its key is free, updates it
///   only while it is alive, and writes only the keys the request changed.
///   A retire (the old id of a renewed session) is one `EVALSHA` of another
///   script, which replaces the live hash by a marker of the renewed id. On
///   the stores [`from_url`](Self::from_url) and [`cluster`](Self::cluster)
///   build, each is one network round trip: taking a connection from their
///   pool sends nothing.
/// - Expiry is judged from the `expires` field against the layer's clock;
///   the key's Redis TTL only collects what nobody loads again, so a hash
///   past its `expires` that is still there loads as [`Loaded::Expired`].
/// - The store sees session ids only: the layer checks the cookie's MAC,
///   so a forged cookie is refused before Redis is asked.
/// - Stored state that does not decode is no session, logged once as a
///   warning; never a panic or an error.
/// - Each call, waiting for a connection included, is bounded by the
///   settings' store timeout
///   ([`with_store_timeout`](http_sessions_core::SettingsBuilder::with_store_timeout)),
///   learned when a layer is built on the store: the layer cuts the call
///   off at it, and the store judges by the same deadline which connection
///   to retire (see `docs/redis.md`). There is no timeout to set here.
///
/// Cheap to clone; clones share the pool, and each keeps the timeout of
/// the layer it was given to.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
/// use http_sessions_redis::RedisStore;
///
/// let store = RedisStore::from_url("redis://127.0.0.1:6379")?
///     .with_prefix("myapp:session:")
///     .with_pool_size(32)?;
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .with_store_timeout(Duration::from_millis(500))
///     .build()?;
/// let layer = SessionLayer::new(store, &settings);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    timeout: CallTimeout,
    /// Whether the server's eviction policy was read (or is being read):
    /// once per store and its clones.
    policy_read: Arc<AtomicBool>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` with the `tls` feature).
    ///
    /// Nothing connects yet: connections open on first use, so this works
    /// while Redis is down.
    ///
    /// The pool's connections are multiplexed, and handing one out costs no
    /// round trip: a connection whose server went away fails at once, is
    /// dropped from the pool, and the call is sent once more on a new
    /// connection within the same timeout, so the application recovers by
    /// itself when Redis is back.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `url` is not a Redis URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// // No server needed to build one.
    /// let store = RedisStore::from_url("redis://127.0.0.1:1")?;
    /// assert!(!store.is_cluster());
    /// assert!(RedisStore::from_url("http://example.com").is_err());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        Ok(Self::new(Pool::node(url)?))
    }

    /// A store on the Redis at `url` (`rediss://host[:port]`), over TLS,
    /// that trusts the certificate authorities in `ca_pem` (PEM, one or
    /// more certificates) instead of the platform's or the built-in root
    /// certificates: for a server whose certificate a private CA signed.
    ///
    /// Otherwise as [`from_url`](Self::from_url): nothing connects yet, so
    /// a certificate the CA did not sign is refused at the first call, as
    /// [`StoreError::Unavailable`](http_sessions_core::StoreError::Unavailable).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `url` is not a `rediss://` URL, or
    /// `ca_pem` holds no certificate that parses.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use http_sessions_redis::RedisStore;
    ///
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt")?;
    /// let store = RedisStore::from_url_with_ca("rediss://redis.internal:6380", &ca)?;
    /// assert!(!store.is_cluster());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn from_url_with_ca(url: &str, ca_pem: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self::new(Pool::node_with_ca(url, ca_pem)?))
    }

    /// A store on a deadpool-redis pool built by hand, for settings
    /// [`from_url`](Self::from_url) does not offer (connection info, pool
    /// timeouts, hooks).
    ///
    /// deadpool-redis checks every connection it hands out with `UNWATCH`
    /// and `PING`, so each load and each save on this store costs one extra
    /// round trip. [`from_url`](Self::from_url) builds a pool that does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::{RedisStore, deadpool_redis};
    ///
    /// let mut config = deadpool_redis::Config::from_url("redis://127.0.0.1:6379");
    /// config.pool = Some(deadpool_redis::PoolConfig::new(8));
    /// let pool = config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
    /// let store = RedisStore::from_pool(pool);
    /// assert_eq!(store.max_connections(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pool(pool: deadpool_redis::Pool) -> Self {
        Self::new(Pool::Deadpool(pool))
    }

    /// A store on the Redis Cluster that the nodes at `urls` belong to (one
    /// reachable node is enough to discover the rest).
    ///
    /// Each session is one key, so each script touches a single hash
    /// slot and runs on the node that owns it.
    ///
    /// As with [`from_url`](Self::from_url), taking a connection from the
    /// pool costs no round trip, and nothing connects until the first call.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `urls` is empty or one of them is not a
    /// Redis URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])?;
    /// assert!(store.is_cluster());
    /// assert!(RedisStore::cluster(Vec::<String>::new()).is_err());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn cluster<I>(urls: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        if urls.is_empty() {
            return Err(ConfigError::Store(
                "a Redis Cluster needs the URL of at least one node".into(),
            ));
        }
        Ok(Self::new(Pool::cluster(urls)?))
    }

    /// A store on the primary that a group of Redis Sentinels monitors
    /// under `service` (the name in `sentinel monitor <service> ...`),
    /// found by asking the Sentinels at `sentinels` (one reachable
    /// Sentinel is enough; list them all). The primary is reached on plain
    /// TCP, with no password and database 0; for anything else, use
    /// [`sentinel_with`](Self::sentinel_with).
    ///
    /// Each new connection asks the Sentinels, so after a failover the
    /// store finds the promoted replica by itself: calls answer as
    /// unavailable (503) while no primary is up, then are served by the new
    /// one. Writes the old primary had acknowledged but not yet passed to a
    /// replica are lost at a failover; `docs/redis.md` says how to narrow
    /// that. As with [`from_url`](Self::from_url), handing a connection out
    /// costs no round trip, and nothing connects until the first call.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] if `sentinels` is empty, one of them is not a
    /// Redis URL, or `service` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::sentinel(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    ///     "mymaster",
    /// )?;
    /// assert!(store.is_sentinel());
    /// assert!(RedisStore::sentinel(Vec::<String>::new(), "mymaster").is_err());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn sentinel<I>(sentinels: I, service: &str) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::sentinel_with(sentinels, service, SentinelNodeConnectionInfo::default())
    }

    /// As [`sentinel`](Self::sentinel), reaching the primary as `primary`
    /// says: its user and password, database and TLS, in the driver's own
    /// type. The Sentinels' own password, if any, goes in their URLs
    /// (`redis://:password@host:26379`). The store sets the TCP settings
    /// (no delay, keepalive) itself.
    ///
    /// # Errors
    ///
    /// As [`sentinel`](Self::sentinel).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    /// use http_sessions_redis::redis::RedisConnectionInfo;
    /// use http_sessions_redis::redis::sentinel::SentinelNodeConnectionInfo;
    ///
    /// let primary = SentinelNodeConnectionInfo::default().set_redis_connection_info(
    ///     RedisConnectionInfo::default()
    ///         .set_username("sessions")
    ///         .set_password("s3cret")
    ///         .set_db(2),
    /// );
    /// let store = RedisStore::sentinel_with(["redis://10.0.0.1:26379"], "mymaster", primary)?;
    /// assert!(store.is_sentinel());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn sentinel_with<I>(
        sentinels: I,
        service: &str,
        primary: SentinelNodeConnectionInfo,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let sentinels: Vec<String> = sentinels.into_iter().map(Into::into).collect();
        if sentinels.is_empty() {
            return Err(ConfigError::Store(
                "a Sentinel group needs the URL of at least one Sentinel".into(),
            ));
        }
        Ok(Self::new(Pool::sentinel(
            sentinels,
            service.to_owned(),
            primary,
        )?))
    }

    /// A store on a deadpool-redis Redis Cluster pool built by hand.
    ///
    /// deadpool-redis checks every connection it hands out with a `PING`,
    /// so each load and each save on this store costs one extra round
    /// trip. [`cluster`](Self::cluster) builds a pool that does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::{RedisStore, deadpool_redis::{Runtime, cluster}};
    ///
    /// let pool = cluster::Config::from_urls(vec!["redis://127.0.0.1:7000".to_owned()])
    ///     .create_pool(Some(Runtime::Tokio1))?;
    /// let store = RedisStore::from_cluster_pool(pool);
    /// assert!(store.is_cluster());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_cluster_pool(pool: cluster::Pool) -> Self {
        Self::new(Pool::DeadpoolCluster(pool))
    }

    fn new(pool: Pool) -> Self {
        Self {
            pool,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: CallTimeout::new(Settings::DEFAULT_STORE_TIMEOUT),
            policy_read: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Puts every key under `prefix` instead of [`DEFAULT_PREFIX`], so that
    /// applications sharing one Redis keep apart.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::SessionId;
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?.with_prefix("shop:s:");
    /// assert_eq!(store.prefix(), "shop:s:");
    /// assert_eq!(store.key_of(&SessionId::from_bytes([0; 16])), "shop:s:AAAAAAAAAAAAAAAAAAAAAA");
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Keeps at most `size` connections open (at least one; deadpool's
    /// default is twice the number of CPUs). Connections are multiplexed,
    /// so a few serve many concurrent requests.
    ///
    /// The pool is shared with every clone of this store, and with the
    /// caller of [`from_pool`](Self::from_pool): all of them see the change.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?.with_pool_size(4)?;
    /// assert_eq!(store.max_connections(), 4);
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for a size of zero.
    pub fn with_pool_size(self, size: usize) -> Result<Self, ConfigError> {
        if size == 0 {
            return Err(ConfigError::out_of_range(
                "RedisStore::with_pool_size",
                size,
                "at least one connection",
            ));
        }
        self.pool.resize(size);
        Ok(self)
    }

    /// Talks to a single node over plain TCP through the driver's own
    /// multiplexed connection (the one TLS and Unix socket URLs use) instead
    /// of the store's pipe, which writes the commands of concurrent calls
    /// together. Everything else stays the same: the pool, the timeout, the
    /// retry on a dropped connection.
    ///
    /// This is for measuring the pipe against the driver (`cargo xtask
    /// bench`, variant `redis-driver`); an application gains nothing from
    /// it. It changes nothing on a Redis Cluster or a pool built by hand.
    /// Like [`with_pool_size`](Self::with_pool_size), it applies to every
    /// clone of this store: connections opened before it are replaced at
    /// their next use.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?.with_driver_connection();
    /// assert!(!store.is_cluster());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    #[doc(hidden)]
    pub fn with_driver_connection(self) -> Self {
        self.pool.use_driver_connection();
        self
    }

    /// The prefix of every key this store writes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use http_sessions_redis::RedisStore;
    /// let store = RedisStore::from_url("redis://127.0.0.1")?;
    /// assert_eq!(store.prefix(), http_sessions_redis::DEFAULT_PREFIX);
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The longest one call may take: the store timeout of the settings of
    /// the layer this clone was given to, and until then their default,
    /// [`Settings::DEFAULT_STORE_TIMEOUT`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::{Key, Keyring, SessionLayer, Settings};
    /// use http_sessions_core::store::SessionStore;
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?;
    /// assert_eq!(store.timeout(), Settings::DEFAULT_STORE_TIMEOUT);
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .with_store_timeout(Duration::from_millis(250))
    ///     .build()?;
    /// // What a layer built on the store does (`SessionLayer::new`).
    /// store.use_settings(&settings);
    /// assert_eq!(store.timeout(), Duration::from_millis(250));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    /// The most connections the pool keeps open.
    ///
    /// # Examples
    ///
    /// ```
    /// # use http_sessions_redis::RedisStore;
    /// let store = RedisStore::from_url("redis://127.0.0.1")?.with_pool_size(3)?;
    /// assert_eq!(store.max_connections(), 3);
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn max_connections(&self) -> usize {
        self.pool.status().max_size
    }

    /// Whether the store talks to a Redis Cluster.
    ///
    /// # Examples
    ///
    /// ```
    /// # use http_sessions_redis::RedisStore;
    /// assert!(!RedisStore::from_url("redis://127.0.0.1")?.is_cluster());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.pool.is_cluster()
    }

    /// Whether the store finds its Redis through a group of Sentinels
    /// ([`sentinel`](Self::sentinel)).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// assert!(RedisStore::sentinel(["redis://127.0.0.1:26379"], "mymaster")?.is_sentinel());
    /// assert!(!RedisStore::from_url("redis://127.0.0.1")?.is_sentinel());
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn is_sentinel(&self) -> bool {
        self.pool.is_sentinel()
    }

    /// The Redis key of the session with id `id`: the prefix, then the id in
    /// base64url. For operators and tests; the id is a bearer credential, so
    /// do not log it.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::SessionId;
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?;
    /// assert_eq!(store.key_of(&SessionId::from_bytes([255; 16])), "session:_____________________w");
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn key_of(&self, id: &SessionId) -> String {
        let id = id.to_base64();
        let mut key = String::with_capacity(self.prefix.len() + id.len());
        key.push_str(&self.prefix);
        key.push_str(&id);
        key
    }

    /// The Redis key of `user`'s index of sessions: the prefix, `user:`,
    /// the user as given. For operators and tests.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_redis::RedisStore;
    ///
    /// let store = RedisStore::from_url("redis://127.0.0.1")?;
    /// assert_eq!(store.user_key_of("ada"), "session:user:ada");
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn user_key_of(&self, user: &str) -> String {
        String::from_utf8_lossy(&self.user_key(user)).into_owned()
    }

    /// The key of `user`'s index of sessions, as bytes.
    pub(crate) fn user_key(&self, user: &str) -> Vec<u8> {
        [
            self.prefix.as_bytes(),
            layout::USER_INDEX.as_bytes(),
            user.as_bytes(),
        ]
        .concat()
    }

    /// [`key_of`](Self::key_of) as a command argument, written straight
    /// into the command.
    pub(crate) fn key_arg<'a>(&'a self, id: &'a SessionId) -> KeyArg<'a> {
        KeyArg {
            prefix: &self.prefix,
            id,
        }
    }

    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &Cmd,
    ) -> Result<T, conn::Error> {
        self.read_policy_once().await;
        self.pool.call(Request::Command(cmd), self.timeout()).await
    }

    /// Runs a script call and returns its reply as it is.
    pub(crate) async fn eval<T: redis::FromRedisValue>(
        &self,
        call: &ScriptCall,
    ) -> Result<T, StoreError> {
        self.read_policy_once().await;
        Ok(self
            .pool
            .call(Request::Script(call), self.timeout())
            .await?)
    }

    /// Before the first call of this store and its clones, reads the
    /// server's eviction policy, and warns if it can evict a user's index
    /// while their sessions stay: one round trip, once, on the connection
    /// the call then uses (read in a task of its own, it would race the
    /// call for a first connection and open a second).
    async fn read_policy_once(&self) {
        if self.policy_read.load(Ordering::Relaxed) || self.policy_read.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let mut config = redis::cmd("CONFIG");
        config.arg("GET").arg("maxmemory-policy");
        let reply = self
            .pool
            .call(Request::Command(&config), self.timeout())
            .await;
        if !crate::eviction::judge(reply) {
            // It never reached the server: read it at the next call.
            self.policy_read.store(false, Ordering::Release);
        }
    }

    /// Runs a script call and reads what it did.
    ///
    /// A call may run twice if a pooled connection turns out dropped (see
    /// `Pool::call`), and each script stays correct if it does.
    async fn run(&self, call: &ScriptCall) -> Result<Outcome, StoreError> {
        self.read_policy_once().await;
        let reply: i64 = match self.pool.call(Request::Script(call), self.timeout()).await {
            Ok(reply) => reply,
            Err(conn::Error::Redis(e)) if e.code() == Some(script::TOO_LARGE) => {
                let size = e.detail().and_then(|d| d.trim().parse().ok());
                return size.map(Outcome::TooLarge).ok_or_else(|| {
                    StoreError::unavailable(format!(
                        "the session save script refused a size it did not give: {e}"
                    ))
                });
            }
            Err(e) => return Err(e.into()),
        };
        Outcome::from_reply(reply).ok_or_else(|| {
            StoreError::unavailable(format!(
                "a session script answered {reply}, which this version does not know"
            ))
        })
    }
}

/// A session's key as a command argument: the prefix, then the id in
/// base64url.
pub(crate) struct KeyArg<'a> {
    prefix: &'a str,
    id: &'a SessionId,
}

impl redis::ToRedisArgs for KeyArg<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into a command's buffer cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.id.to_base64().as_bytes());
    }
}

/// A hash's field, value pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The field, value pairs of an `HGETALL` reply, as they came: a flat
/// array of bulk strings (RESP2) taken apart without copying, anything else
/// (a RESP3 map) through the driver's conversion.
fn hash_fields(reply: Value) -> Result<Fields, conn::Error> {
    let items = match reply {
        Value::Array(items) => items,
        other => {
            let map: HashMap<Vec<u8>, Vec<u8>> =
                redis::from_redis_value(other).map_err(redis::RedisError::from)?;
            return Ok(map.into_iter().collect());
        }
    };
    let mut fields = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let Some(name) = items.next() {
        match (name, items.next()) {
            (Value::BulkString(name), Some(Value::BulkString(value))) => {
                fields.push((name, value));
            }
            _ => {
                return Err(conn::Error::Redis(redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "HGETALL answered something other than field, value pairs",
                ))));
            }
        }
    }
    Ok(fields)
}

#[async_trait]
impl SessionStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
        let mut hgetall = Cmd::with_capacity(2, 64);
        hgetall.arg("HGETALL").arg(self.key_arg(id));
        let fields = match self.query::<Value>(&hgetall).await.and_then(hash_fields) {
            Ok(fields) => fields,
            // Something else owns the key: not a session this store wrote.
            Err(conn::Error::Redis(e)) if e.code() == Some("WRONGTYPE") => {
                tracing::warn!(
                    ?id,
                    prefix = %self.prefix,
                    "stored session is not a hash; treated as no session"
                );
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if fields.is_empty() {
            return Ok(None);
        }
        // Expiry is judged by the layer's clock, not the key's TTL.
        match layout::decode(fields) {
            Ok(Stored::Live(record)) if !record.is_expired(now) => Ok(Some(Loaded::Live(record))),
            // Past its expiry, and not yet reclaimed by its TTL.
            Ok(Stored::Live(record)) => Ok(Some(Loaded::Expired(record))),
            Ok(Stored::Renewed { until }) if now < until => Ok(Some(Loaded::Renewed)),
            Ok(Stored::Renewed { .. } | Stored::Ended) => Ok(None),
            Err(corrupt) => {
                tracing::warn!(
                    ?id,
                    prefix = %self.prefix,
                    field = %corrupt.field,
                    reason = corrupt.reason,
                    "stored session is corrupt; treated as no session"
                );
                Ok(None)
            }
        }
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        ends: UnixTime,
    ) -> Result<(), StoreError> {
        // If sent twice, the second run finds the first one's key and
        // answers `Exists`: the layer creates again under a new id, and the
        // first key is left to its TTL. Nothing is ever overwritten.
        let Some(user) = record.user.as_deref() else {
            return created(
                self.run(&script::create(self.key_arg(id), record, &Indexing::none()))
                    .await?,
            );
        };
        let index = self.user_key(user);
        let id64 = id.to_base64();
        let now = record.created;
        let generation = if self.is_cluster() {
            // The index first, then the session: an end_all between the
            // two lists the id, and leaves a tombstone that refuses it.
            let admit = script::admit(&index, &id64, ends, now, record.generation);
            match self.eval::<i64>(&admit).await? {
                stamp @ 1.. => Generation::Stamp(stamp.unsigned_abs()),
                _ => return Err(StoreError::Gone),
            }
        } else {
            Generation::Admit(&index, record.generation)
        };
        let indexing = Indexing {
            id: &id64,
            ends,
            now,
            generation,
            leave: None,
        };
        created(
            self.run(&script::create(self.key_arg(id), record, &indexing))
                .await?,
        )
    }

    async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
        if !update.moves_binding() {
            // Bound or not, the same one script on the session's key alone.
            let call = script::update(self.key_arg(id), &update, &Indexing::none());
            return updated(self.run(&call).await?, &update);
        }
        let joins = update.record.user.as_deref();
        let leaves = update.stored_user.filter(|&old| Some(old) != joins);
        let join_key = joins.map(|user| self.user_key(user));
        let leave_key = leaves.map(|user| self.user_key(user));
        let id64 = id.to_base64();
        let mut indexing = Indexing {
            id: &id64,
            ends: update.ends,
            now: update.now,
            generation: Generation::Stamp(0),
            leave: None,
        };
        if !self.is_cluster() {
            if let Some(index) = &join_key {
                indexing.generation = Generation::Admit(index, update.record.generation);
            }
            indexing.leave = leave_key.as_deref().zip(leaves);
            return updated(
                self.run(&script::update(self.key_arg(id), &update, &indexing))
                    .await?,
                &update,
            );
        }
        // A Cluster: the new user's index admits the binding, then the
        // session takes it, then the old user's index lets it go.
        if let Some(index) = &join_key {
            let admit = script::admit(
                index,
                &id64,
                update.ends,
                update.now,
                update.record.generation,
            );
            match self.eval::<i64>(&admit).await? {
                stamp @ 1.. => indexing.generation = Generation::Stamp(stamp.unsigned_abs()),
                _ => return Err(StoreError::Gone),
            }
        }
        let outcome = updated(
            self.run(&script::update(self.key_arg(id), &update, &indexing))
                .await?,
            &update,
        )?;
        let mut stale: Vec<&[u8]> = leave_key.iter().map(Vec::as_slice).collect();
        if outcome == Updated::Emptied {
            stale.extend(join_key.as_deref());
        }
        for index in stale {
            self.unlist(index, &[id64.as_str()]).await?;
        }
        Ok(outcome)
    }

    async fn retire(
        &self,
        id: &SessionId,
        now: UnixTime,
        until: UnixTime,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        // Random, so that only this call, if sent twice, takes the marker
        // it finds for its own; a concurrent renewal of the same session
        // still finds it gone.
        let tag = RandomIds::new().next_id()?.to_base64();
        let index = user.map(|user| self.user_key(user));
        let id64 = id.to_base64();
        let same_node = match (&index, user) {
            (Some(index), Some(user)) if !self.is_cluster() => {
                Some((index.as_slice(), user, id64.as_str()))
            }
            _ => None,
        };
        let call = script::retire(self.key_arg(id), now, until, &tag, same_node);
        match self.run(&call).await? {
            Outcome::Saved => {}
            Outcome::Gone => return Err(StoreError::Gone),
            other => {
                return Err(StoreError::unavailable(format!(
                    "the session retire script answered {other:?}"
                )));
            }
        }
        // On a Cluster the index lets the id go once it is retired, never
        // before: a session still live keeps its entry.
        if let (Some(index), None) = (&index, same_node) {
            self.unlist(index, &[id64.as_str()]).await?;
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError> {
        match user {
            Some(user) if !self.is_cluster() => {
                let index = self.user_key(user);
                let call = script::delete(self.key_arg(id), &index, user, &id.to_base64());
                let _: i64 = self.eval(&call).await?;
            }
            _ => {
                let mut del = redis::cmd("DEL");
                del.arg(self.key_arg(id));
                let _removed: i64 = self.query(&del).await?;
                // On a Cluster, after the session is gone, never before.
                if let Some(user) = user {
                    self.unlist(&self.user_key(user), &[id.to_base64().as_str()])
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn users(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    /// Takes the settings' store timeout as this clone's deadline for
    /// every call: the layer's timeout and the store's are one.
    fn use_settings(&self, settings: &Settings) {
        self.timeout.set(settings.store_timeout());
    }
}

/// A clone's per-call timeout, in nanoseconds (the settings bound it by an
/// hour, far below `u64::MAX`). Set through `&self`, since a layer holds
/// its store behind an `Arc`; each clone has its own, so two layers on
/// clones of one store keep their own settings' timeout.
struct CallTimeout(AtomicU64);

impl CallTimeout {
    fn new(timeout: Duration) -> Self {
        let this = Self(AtomicU64::new(0));
        this.set(timeout);
        this
    }

    fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, timeout: Duration) {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(nanos, Ordering::Relaxed);
    }
}

impl Clone for CallTimeout {
    fn clone(&self) -> Self {
        Self::new(self.get())
    }
}

/// A create's answer.
fn created(outcome: Outcome) -> Result<(), StoreError> {
    match outcome {
        Outcome::Saved | Outcome::Emptied => Ok(()),
        Outcome::Exists => Err(StoreError::Exists),
        // A binding of an ended generation, or the tombstone end_all left.
        Outcome::Gone => Err(StoreError::Gone),
        Outcome::TooLarge(_) => Err(StoreError::unavailable(
            "the session save script refused a create as too large",
        )),
    }
}

/// The answer to `update`.
fn updated(outcome: Outcome, update: &Update<'_>) -> Result<Updated, StoreError> {
    match outcome {
        Outcome::Saved => Ok(Updated::Kept),
        Outcome::Emptied => Ok(Updated::Emptied),
        Outcome::Gone => Err(StoreError::Gone),
        Outcome::TooLarge(size) => Err(StoreError::TooLarge {
            size,
            limit: update.max_size,
        }),
        Outcome::Exists => Err(StoreError::unavailable(
            "the session save script answered exists to an update",
        )),
    }
}

impl RedisStore {
    /// Drops the entries `ids` from the index at `index`.
    pub(crate) async fn unlist(&self, index: &[u8], ids: &[&str]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(index);
        for id in ids {
            zrem.arg(*id);
        }
        let _removed: i64 = self.query(&zrem).await?;
        Ok(())
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("pool", &self.pool)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn the_store_is_shareable() {
        assert_send_sync::<RedisStore>();
    }

    #[test]
    fn building_needs_no_server_and_refuses_bad_urls() {
        // Port 1: nothing listens, and nothing is asked to.
        let store = RedisStore::from_url("redis://127.0.0.1:1/0").unwrap();
        assert_eq!(store.prefix(), DEFAULT_PREFIX);
        assert_eq!(store.timeout(), Settings::DEFAULT_STORE_TIMEOUT);
        for bad in [
            "",
            "not a url",
            "http://127.0.0.1",
            "redis://127.0.0.1:notaport",
        ] {
            let err = RedisStore::from_url(bad).unwrap_err();
            assert!(matches!(err, ConfigError::Store(_)), "{bad:?}: {err:?}");
        }
        for bad in [vec![], vec!["http://127.0.0.1:7000"]] {
            let err = RedisStore::cluster(bad.clone()).unwrap_err();
            assert!(matches!(err, ConfigError::Store(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn the_key_argument_is_the_key() {
        let store = RedisStore::from_url("redis://127.0.0.1:1")
            .unwrap()
            .with_prefix("p:");
        let id = SessionId::from_bytes([9; 16]);
        assert_eq!(
            redis::ToRedisArgs::to_redis_args(&store.key_arg(&id)),
            vec![store.key_of(&id).into_bytes()]
        );
    }

    #[test]
    fn hgetall_replies_become_pairs() {
        let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
        let flat = Value::Array(vec![bulk(b"a"), bulk(b"1"), bulk(b"b"), bulk(b"2")]);
        let pairs = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ];
        assert_eq!(hash_fields(flat).unwrap(), pairs);
        assert!(hash_fields(Value::Array(vec![])).unwrap().is_empty());
        let map = Value::Map(vec![(bulk(b"a"), bulk(b"1"))]);
        assert_eq!(hash_fields(map).unwrap(), pairs[..1]);
        for bad in [
            Value::Array(vec![bulk(b"a")]),
            Value::Array(vec![bulk(b"a"), Value::Int(1)]),
            Value::Int(3),
        ] {
            assert!(hash_fields(bad).is_err());
        }
    }

    /// Loads a session of `store` (so the store asks Redis) and says
    /// whether the call failed.
    async fn load_fails(store: &RedisStore) -> bool {
        let now = http_sessions_core::store::UnixTime::from_secs(1);
        store
            .load(&SessionId::from_bytes([1; 16]), now)
            .await
            .is_err()
    }

    fn settings(timeout: Duration) -> Settings {
        let key = http_sessions_core::Key::from_bytes(&[3; 32]).unwrap();
        Settings::builder()
            .with_keyring(http_sessions_core::Keyring::new(key).unwrap())
            .with_store_timeout(timeout)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_longest_timeout_the_settings_accept_works() {
        // Port 1: nothing listens, so the call fails at once, after its
        // deadline has been computed from the longest accepted timeout.
        let longest = RedisStore::from_url("redis://127.0.0.1:1").unwrap();
        longest.use_settings(&settings(Settings::MAX_STORE_TIMEOUT));
        assert!(load_fails(&longest).await);
    }

    #[test]
    fn each_clone_keeps_the_timeout_of_the_layer_it_was_given_to() {
        use http_sessions_core::SessionLayer;
        let store = RedisStore::from_url("redis://127.0.0.1:1").unwrap();
        let fast = SessionLayer::new(store.clone(), &settings(Duration::from_millis(20)));
        let slow = SessionLayer::new(store.clone(), &settings(Duration::from_secs(5)));
        let shown = |layer: &SessionLayer| format!("{:?}", layer.manager().backend());
        assert!(shown(&fast).contains("timeout: 20ms"), "{}", shown(&fast));
        assert!(shown(&slow).contains("timeout: 5s"), "{}", shown(&slow));
        assert_eq!(store.timeout(), Settings::DEFAULT_STORE_TIMEOUT);
        let copy = store.clone();
        copy.use_settings(&settings(Duration::from_secs(5)));
        assert_eq!(
            copy.clone().timeout(),
            Duration::from_secs(5),
            "a clone copies it"
        );
        assert_eq!(store.timeout(), Settings::DEFAULT_STORE_TIMEOUT);
    }

    #[test]
    fn builder_methods_apply() {
        let store = RedisStore::from_url("redis://127.0.0.1:1")
            .unwrap()
            .with_prefix("p:")
            .with_pool_size(1)
            .unwrap();
        assert_eq!(store.prefix(), "p:");
        assert_eq!(store.max_connections(), 1);
        assert!(matches!(
            store.clone().with_pool_size(0),
            Err(ConfigError::OutOfRange { .. })
        ));
        let shown = format!("{store:?}");
        assert!(shown.contains("Single") && shown.contains("p:"), "{shown}");
    }
}
