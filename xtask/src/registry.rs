//! Whether crates.io can be reached, decided in a few seconds: the publish
//! dry-run of `test-all` resolves the packaged crates' dependencies against
//! the crates.io index, so without it that stage is skipped, with the
//! reason printed ([`reachable`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
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

/// The packages the publish dry-run makes.
pub(crate) const PUBLISHED: [&str; 6] = [
    "http-sessions",
    "http-sessions-core",
    "http-sessions-memory",
    "http-sessions-redis",
    "http-sessions-cookie",
    "http-sessions-conformance",
];

/// Removes what earlier publish dry-runs left behind, so that a later
/// dry-run of the same version verifies each crate against the current
/// sources of its siblings, not old ones:
///
/// - in cargo's home, the sources of [`PUBLISHED`] extracted from the
///   local registry of packages the dry-run builds under the target
///   directory (cargo extracts a package once per registry path, name and
///   version, and reuses the copy);
/// - under `target`, the build fingerprints of [`PUBLISHED`]: cargo
///   fingerprints a registry package by its version alone, so it would link
///   the build of the old sources again. Those of the workspace's own
///   builds go too (their names do not tell them apart); they are rebuilt
///   when next needed.
///
/// crates.io's own sources (`index.crates.io-*`) are left alone. Returns
/// what it removed.
pub(crate) fn forget_packaged(target: &Path) -> Result<Vec<PathBuf>, String> {
    let mut removed = forget_sources()?;
    let fingerprints = target.join("debug").join(".fingerprint");
    if let Ok(units) = std::fs::read_dir(&fingerprints) {
        for unit in units.flatten() {
            if is_published_unit(&unit.file_name().to_string_lossy()) {
                let path = unit.path();
                std::fs::remove_dir_all(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

/// The extracted sources of [`PUBLISHED`] in cargo's home.
fn forget_sources() -> Result<Vec<PathBuf>, String> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cargo"),
            None => return Ok(Vec::new()),
        },
    };
    let sources = home.join("registry").join("src");
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io")
        {
            continue;
        }
        let Ok(packages) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for package in packages.flatten() {
            let name = package.file_name().to_string_lossy().into_owned();
            if is_published_source(&name) {
                let path = package.path();
                std::fs::remove_dir_all(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

/// Whether `dir` is a build fingerprint of one of [`PUBLISHED`]: its name,
/// a `-`, and sixteen hexadecimal digits.
fn is_published_unit(dir: &str) -> bool {
    PUBLISHED.iter().any(|name| {
        dir.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// Whether `dir` is the extracted source of one of [`PUBLISHED`]: its name,
/// a `-`, and a version starting with a digit.
fn is_published_source(dir: &str) -> bool {
    PUBLISHED.iter().any(|name| {
        dir.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_packages_sources_are_recognised() {
        assert!(is_published_source("http-sessions-0.1.0"));
        assert!(is_published_source("http-sessions-core-0.1.0"));
        assert!(is_published_source("http-sessions-cookie-12.3.4-rc.1"));
        assert!(!is_published_source("http-sessions-core"));
        assert!(!is_published_source("http-sessions-fuzz-0.1.0"));
        assert!(!is_published_source("serde-1.0.0"));
    }

    #[test]
    fn only_our_packages_fingerprints_are_recognised() {
        assert!(is_published_unit("http-sessions-core-591d830fcac4702c"));
        assert!(is_published_unit("http-sessions-bb37244e3f009471"));
        assert!(!is_published_unit("http-sessions-core-0.1.0"));
        assert!(!is_published_unit("http-sessions-fuzz-591d830fcac4702c"));
        assert!(!is_published_unit("serde-591d830fcac4702c"));
    }
}
