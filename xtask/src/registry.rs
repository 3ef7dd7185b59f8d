//! Whether crates.io can be reached, decided in a few seconds: the publish
//! dry-run of `test-all` resolves the packaged crates' dependencies against
//! the crates.io index, so without it that stage is skipped, with the
//! reason printed ([`reachable`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The host of the sparse index that `cargo publish --dry-run` reads.
const INDEX: (&str, u16) = ("index.crates.io", 443);

/// Long enough for a slow link, short enough that an offline run loses
/// seconds, not minutes.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `Ok(())` when the crates.io index answers a TCP connect within
/// [`TIMEOUT`], else why not.
///
/// A TCP connect, not `cargo search --limit 1 serde`: `cargo search` asks
/// the crates.io web API, another host than the index the dry-run needs,
/// and cargo retries a failed request (`net.retry`, 3 by default, with
/// back-off) under a 30 s HTTP timeout, so an unreachable registry would
/// cost minutes before the answer. The name is resolved on a thread of its
/// own because `ToSocketAddrs` has no timeout; a thread left waiting on a
/// hung resolver ends with the process.
pub(crate) fn reachable() -> Result<(), String> {
    if std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true") {
        return Err("CARGO_NET_OFFLINE=true".into());
    }
    // Behind a proxy a direct connect proves nothing either way: let cargo
    // try, through the proxy, and fail the stage if it cannot.
    for proxy in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        if std::env::var_os(proxy).is_some_and(|v| !v.is_empty()) {
            return Ok(());
        }
    }
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = connect();
        // The receiver may have given up already; nothing to tell then.
        let _ = tx.send(result);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer from {}:{} within {} s",
            INDEX.0,
            INDEX.1,
            TIMEOUT.as_secs()
        )),
    }
}

fn connect() -> Result<(), String> {
    let (host, port) = INDEX;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {host}:{port} ({addr}): {e}"),
        }
    }
    Err(last)
}
