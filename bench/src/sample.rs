//! The session both memory figures are taken with, shared by the bench and
//! its memory binary: five short string keys, `k1` to `k5`, each holding
//! eight characters.

/// The keys of the sample session, sorted.
pub(crate) const KEYS: [&str; 5] = ["k1", "k2", "k3", "k4", "k5"];

/// The value of key number `k` (1 to 5) in session number `i`: eight
/// characters, different from session to session as real values are.
pub(crate) fn value(i: usize, k: usize) -> String {
    format!("v{k}{:06}", i % 1_000_000)
}
