//! `rediss://` against a real `redis-server` that speaks TLS with a
//! certificate from a CA made for the test: a store that trusts that CA
//! ([`RedisStore::from_url_with_ca`]) passes cases of the conformance suite
//! over TLS; a store that trusts only the platform's root certificates, or
//! another CA, is refused with an error that names the certificate, and
//! never panics. Each test starts its own server; it is killed when the
//! test ends.
#![cfg(feature = "tls")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_sessions_core::store::{IdSource, RandomIds, SessionStore, UnixTime};
use http_sessions_core::{ConfigError, StoreError};
use http_sessions_redis::RedisStore;
use http_sessions_redis::redis;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use support::{Reach, Spawned, free_port};

/// Only against a hang of the test itself; never expected to trip.
const HANG_GUARD: Duration = Duration::from_secs(20);

// ------------------------------------------------------------- certificates

/// A CA of the test's own: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`, and its key,
    /// both PEM.
    fn server_cert(&self) -> (String, String) {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

// ---------------------------------------------------------------- redis-server

/// A `redis-server` child that speaks TLS on one free port (with a
/// certificate `ca` signed) and plain TCP on another, for the test's own
/// look inside; killed on drop.
struct TlsServer {
    /// Kept for its drop, which stops the server.
    #[allow(dead_code)]
    server: Spawned,
    port: u16,
    tls_port: u16,
}

impl TlsServer {
    fn start(ca: &Ca) -> Self {
        let port = free_port();
        let tls_port = free_port();
        let dir = Spawned::dir("tls", tls_port);
        let (cert, key) = ca.server_cert();
        std::fs::write(dir.join("ca.crt"), &ca.pem).unwrap();
        std::fs::write(dir.join("server.crt"), cert).unwrap();
        std::fs::write(dir.join("server.key"), key).unwrap();
        let args: Vec<std::ffi::OsString> = vec![
            "--tls-port".into(),
            tls_port.to_string().into(),
            "--tls-cert-file".into(),
            dir.join("server.crt").into(),
            "--tls-key-file".into(),
            dir.join("server.key").into(),
            "--tls-ca-cert-file".into(),
            dir.join("ca.crt").into(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self {
            server: Spawned::start(port, dir, args),
            port,
            tls_port,
        }
    }

    /// `rediss://127.0.0.1:<TLS port>`.
    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    /// The keys under `prefix`, through the plain port.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut admin = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut admin)
            .await
            .unwrap()
    }
}

/// What a load through `store` fails with: it must fail.
async fn load_error(store: &RedisStore) -> StoreError {
    let id = RandomIds::new().next_id().unwrap();
    let load = store.load(&id, UnixTime::from_secs(1_700_000_000));
    match tokio::time::timeout(HANG_GUARD, load)
        .await
        .expect("the load hung")
    {
        Ok(loaded) => panic!("a load over an untrusted certificate succeeded: {loaded:?}"),
        Err(error) => error,
    }
}

// --------------------------------------------------------- conformance harness

/// Stores that reach the server over TLS, trusting the test's CA.
struct OverTls {
    server: Arc<TlsServer>,
    ca: String,
}

#[async_trait]
impl Reach for OverTls {
    fn store(&self) -> RedisStore {
        RedisStore::from_url_with_ca(&self.server.url(), self.ca.as_bytes())
            .unwrap()
            .with_prefix(support::random_prefix("tls"))
    }

    async fn keys(&self, prefix: &str) -> usize {
        self.server.keys(prefix).await.len()
    }
}

// ---------------------------------------------------------------------- tests

#[tokio::test]
async fn a_store_that_trusts_the_ca_passes_the_conformance_cases_over_tls() {
    let ca = Ca::new("http-sessions-redis test CA");
    let server = Arc::new(TlsServer::start(&ca));
    support::passes_the_conformance_cases(OverTls {
        server,
        ca: ca.pem.clone(),
    })
    .await;
}

#[tokio::test]
async fn a_store_without_the_ca_is_refused_naming_the_certificate() {
    let ca = Ca::new("http-sessions-redis test CA");
    let server = TlsServer::start(&ca);
    // The platform's root certificates only.
    let store = RedisStore::from_url(&server.url()).unwrap();
    let error = load_error(&store).await;
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("certificate"), "{message}");
    // Another CA's certificate, given as the only one to trust.
    let other = Ca::new("another CA");
    let store = RedisStore::from_url_with_ca(&server.url(), other.pem.as_bytes()).unwrap();
    let error = load_error(&store).await;
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");
    // And the CA that signed it works on the same server.
    let store = RedisStore::from_url_with_ca(&server.url(), ca.pem.as_bytes()).unwrap();
    let id = RandomIds::new().next_id().unwrap();
    let loaded = store
        .load(&id, UnixTime::from_secs(1_700_000_000))
        .await
        .unwrap();
    assert!(loaded.is_none());
}

#[test]
fn a_ca_needs_a_rediss_url_and_a_certificate() {
    let ca = Ca::new("http-sessions-redis test CA");
    let plain = RedisStore::from_url_with_ca("redis://127.0.0.1:6379", ca.pem.as_bytes());
    assert!(matches!(plain, Err(ConfigError::Store(_))), "{plain:?}");
    let garbage = RedisStore::from_url_with_ca("rediss://127.0.0.1:6380", b"not a certificate");
    assert!(matches!(garbage, Err(ConfigError::Store(_))), "{garbage:?}");
}
