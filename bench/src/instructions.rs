//! Instructions per request, counted by callgrind on the
//! `session-bench-layer` binary: each variant's routes served in process,
//! without sockets. The count does not move with the load on the machine,
//! so it settles what the requests per second of a noisy machine cannot.

use std::process::Command;

use crate::Error;
use crate::variants::{Route, Variant};

/// The in-process binary, built beside this one.
const LAYER_BIN: &str = "session-bench-layer";
/// The function of [`LAYER_BIN`] that runs the requests; callgrind counts
/// in it alone.
const MEASURED_FN: &str = "session_bench_layer::measured";

/// Instructions one request to `route` costs on `variant`, over `requests`
/// requests.
pub(crate) fn per_request(variant: Variant, route: Route, requests: u64) -> Result<f64, Error> {
    let exe = crate::sibling_binary(LAYER_BIN, "--no-instructions")?;
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect={MEASURED_FN}"))
        .arg("--callgrind-out-file=/dev/null")
        .arg(&exe)
        .args(["--variant", variant.name(), "--route", route.path()])
        .args(["--requests", &requests.to_string()])
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "valgrind is needed for the instruction counts (Debian: apt-get install \
                 valgrind), or pass --no-instructions"
                    .to_owned()
            }
            _ => format!("running valgrind: {e}"),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{LAYER_BIN} {} {} under callgrind failed ({}): {}",
            variant.name(),
            route.path(),
            out.status,
            stderr.trim()
        )
        .into());
    }
    let collected = collected(&stderr).ok_or_else(|| {
        format!("callgrind printed no instruction count for {LAYER_BIN}: {stderr}")
    })?;
    if collected == 0 {
        return Err(format!("callgrind counted nothing in {MEASURED_FN}: was it inlined?").into());
    }
    Ok(collected as f64 / requests as f64)
}

/// The total of callgrind's `Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (_, count) = line.split_once("Collected :")?;
        count.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collected_count() {
        let stderr = "==1== Callgrind, a call-graph generating cache profiler\n\
                      ==1== Events    : Ir\n==1== Collected : 22512969\n==1==\n";
        assert_eq!(collected(stderr), Some(22_512_969));
        assert_eq!(collected("==1== nothing here\n"), None);
    }
}
