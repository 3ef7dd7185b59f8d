//! Figures from raw measurements: each [`Slice`] (one window of one
//! variant and route) is added to the [`Tally`] of its row, which sums up
//! as a [`Summary`]; and the CPU clocks sampled at the window's edges
//! ([`Clocks`]): the server's and the client's threads, to show which side
//! was the bottleneck, and the machine's steal time, to show interference.

use std::time::Duration;

use crate::client::Outcome;

/// The server runtime's threads are named this (Linux keeps 15 bytes).
pub(crate) const SERVER_THREADS: &str = "bench-server";
/// The client runtime's threads are named this.
pub(crate) const CLIENT_THREADS: &str = "bench-client";

/// CPU clocks at one instant; each None where it cannot be read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clocks {
    server: Option<Duration>,
    client: Option<Duration>,
    /// Steal and total of `/proc/stat`'s `cpu` line, in clock ticks.
    machine: Option<(u64, u64)>,
}

impl Clocks {
    /// Reads them now.
    pub(crate) fn now() -> Self {
        Self {
            server: cpu_time(SERVER_THREADS),
            client: cpu_time(CLIENT_THREADS),
            machine: machine_ticks(),
        }
    }
}

/// One measured window of one (variant, route).
#[derive(Debug)]
pub(crate) struct Slice {
    pub(crate) outcome: Outcome,
    pub(crate) length: Duration,
    pub(crate) before: Clocks,
    pub(crate) after: Clocks,
}

impl Slice {
    /// Responses per second in this window.
    pub(crate) fn per_second(&self) -> f64 {
        self.outcome.latencies_us.len() as f64 / self.length.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The slices of one row so far.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    outcome: Outcome,
    length: Duration,
    rates: Vec<f64>,
    server: Option<Duration>,
    client: Option<Duration>,
}

impl Tally {
    /// Adds one window's figures.
    pub(crate) fn add(&mut self, slice: Slice) {
        self.rates.push(slice.per_second());
        let first = self.rates.len() == 1;
        let used = |before: Option<Duration>, after: Option<Duration>| after?.checked_sub(before?);
        let sum = |total: Option<Duration>, more: Option<Duration>| match (first, total, more) {
            (true, _, more) => more,
            (false, Some(t), Some(m)) => Some(t + m),
            // One window without a reading spoils the average.
            _ => None,
        };
        self.server = sum(self.server, used(slice.before.server, slice.after.server));
        self.client = sum(self.client, used(slice.before.client, slice.after.client));
        self.length += slice.length;
        self.outcome.merge(slice.outcome);
    }

    /// The row's figures over all its windows.
    pub(crate) fn summary(mut self) -> Summary {
        let latencies = &mut self.outcome.latencies_us;
        latencies.sort_unstable();
        let seconds = self.length.as_secs_f64().max(f64::MIN_POSITIVE);
        let per_second = latencies.len() as f64 / seconds;
        let spread = match (
            self.rates.iter().copied().reduce(f64::min),
            self.rates.iter().copied().reduce(f64::max),
        ) {
            (Some(min), Some(max)) if self.rates.len() > 1 && per_second > 0.0 => {
                Some((max - min) / per_second)
            }
            _ => None,
        };
        Summary {
            per_second,
            p50_us: percentile(latencies, 0.50),
            p99_us: percentile(latencies, 0.99),
            spread,
            errors: self.outcome.errors,
            first_error: self.outcome.first_error,
            server_cores: self.server.map(|d| d.as_secs_f64() / seconds),
            client_cores: self.client.map(|d| d.as_secs_f64() / seconds),
        }
    }
}

/// One (variant, route) measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Responses completed inside the windows, per second.
    pub(crate) per_second: f64,
    /// Median latency, microseconds.
    pub(crate) p50_us: u32,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: u32,
    /// How far apart the rounds were: (fastest - slowest) / overall rate.
    /// None with one round.
    pub(crate) spread: Option<f64>,
    /// Wrong or missing responses (any at all makes the row suspect).
    pub(crate) errors: u64,
    /// The first of them.
    pub(crate) first_error: Option<String>,
    /// CPU used by the server's threads in the windows, in cores (1.0 is
    /// one core busy all the time).
    pub(crate) server_cores: Option<f64>,
    /// The same for the load generator's threads.
    pub(crate) client_cores: Option<f64>,
}

/// Share of the machine's CPU time stolen by the hypervisor over a run's
/// windows: other guests' work, which slows whatever ran then.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Steal {
    stolen: u64,
    total: u64,
}

impl Steal {
    /// Adds the window between `before` and `after`.
    pub(crate) fn add(&mut self, before: &Clocks, after: &Clocks) {
        if let (Some(b), Some(a)) = (before.machine, after.machine) {
            self.stolen += a.0.saturating_sub(b.0);
            self.total += a.1.saturating_sub(b.1);
        }
    }

    /// The stolen share, if anything was measured.
    pub(crate) fn share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.stolen as f64 / self.total as f64)
    }
}

/// The nearest-rank percentile `p` (0 to 1) of sorted values; 0 if none.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or(0)
}

/// CPU time used so far by this process's threads whose name starts with
/// `prefix`, from `/proc/self/task/*/schedstat` (nanoseconds on the CPU).
/// None where that is not available (not Linux, or no schedstat).
fn cpu_time(prefix: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        let path = task.path();
        // A thread may end between the listing and the reads: skip it.
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        if let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            total += ns;
            found = true;
        }
    }
    found.then(|| Duration::from_nanos(total))
}

/// Steal and total ticks of all CPUs, from the first line of `/proc/stat`
/// (`cpu user nice system idle iowait irq softirq steal ...`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    Some((*ticks.get(7)?, ticks.iter().sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    fn clocks(server_ms: u64, client_ms: u64) -> Clocks {
        Clocks {
            server: Some(Duration::from_millis(server_ms)),
            client: Some(Duration::from_millis(client_ms)),
            machine: Some((0, 0)),
        }
    }

    #[test]
    fn a_tally_sums_its_windows() {
        let mut tally = Tally::default();
        tally.add(Slice {
            outcome: Outcome {
                latencies_us: vec![30, 10],
                errors: 0,
                first_error: None,
            },
            length: Duration::from_secs(1),
            before: clocks(0, 0),
            after: clocks(1000, 500),
        });
        tally.add(Slice {
            outcome: Outcome {
                latencies_us: vec![40, 20, 50, 60],
                errors: 1,
                first_error: Some("x".to_owned()),
            },
            length: Duration::from_secs(1),
            before: clocks(5000, 5000),
            after: clocks(6000, 5500),
        });
        let s = tally.summary();
        assert!((s.per_second - 3.0).abs() < 1e-9);
        assert_eq!((s.p50_us, s.p99_us), (30, 60));
        // Rounds at 2/s and 4/s around an overall 3/s.
        assert!((s.spread.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.errors, 1);
        assert!((s.server_cores.unwrap() - 1.0).abs() < 1e-9);
        assert!((s.client_cores.unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn this_machine_has_proc_stat() {
        // Linux only, as the bench itself; the figure is informative.
        if cfg!(target_os = "linux") {
            let (steal, total) = machine_ticks().unwrap();
            assert!(steal <= total);
        }
    }
}
