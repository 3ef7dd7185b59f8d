//! Whether the server's eviction policy can undo a "log out everywhere":
//! a user's index, written only when its user logs in or out, can be
//! evicted under an LRU, LFU or random policy while sessions read on every
//! request stay, and `end_all` then misses them. The store reads the
//! policy before its first call and warns once.

use deadpool_redis::redis::{self, Value};

use crate::conn;

/// What a server's `maxmemory-policy` means for the users' indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// Nothing is evicted (`noeviction`), or the keys nearest their expiry
    /// go first (`volatile-ttl`), and an index expires no sooner than its
    /// sessions.
    Holds,
    /// An index, touched only when its user logs in or out, can be evicted
    /// while sessions touched on every request stay: `end_all` then misses
    /// them.
    Evicts,
    /// A policy this version does not know.
    Unknown,
}

/// What `policy` (a `maxmemory-policy` value) means for the indexes.
pub(crate) fn classify(policy: &str) -> Eviction {
    match policy {
        "noeviction" | "volatile-ttl" => Eviction::Holds,
        "allkeys-lru" | "allkeys-lfu" | "allkeys-random" | "volatile-lru" | "volatile-lfu"
        | "volatile-random" => Eviction::Evicts,
        _ => Eviction::Unknown,
    }
}

/// Judges the reply to `CONFIG GET maxmemory-policy` and warns, once,
/// when the policy can evict a user's index while the user's sessions
/// stay, or when it could not be read (a refused `CONFIG`, as a managed
/// Redis or an ACL may refuse it, or no answer in time). `false` when the
/// call never reached the server (a failure that comes at once): the next
/// call reads it again.
pub(crate) fn judge(reply: Result<Value, conn::Error>) -> bool {
    match reply {
        Ok(reply) => match policy_in(reply) {
            Some(policy) => warn_about(&policy),
            None => unread("CONFIG GET maxmemory-policy answered no policy"),
        },
        Err(conn::Error::Redis(error)) if error.code().is_some() => unread(&error.to_string()),
        Err(conn::Error::Timeout(_)) => unread("no answer within the store's timeout"),
        Err(_) => return false,
    }
    true
}

fn unread(why: &str) {
    tracing::warn!(
        reason = why,
        "could not read the Redis maxmemory-policy: under an allkeys-* or volatile-lru, \
         volatile-lfu or volatile-random policy a user's index of sessions can be evicted \
         while the sessions stay, and end_all then misses them; use volatile-ttl or noeviction"
    );
}

fn warn_about(policy: &str) {
    match classify(policy) {
        Eviction::Holds => {}
        Eviction::Evicts => tracing::warn!(
            policy,
            "Redis maxmemory-policy {policy} can evict a user's index of sessions while the \
             sessions stay: end_all may then miss sessions; use volatile-ttl or noeviction"
        ),
        Eviction::Unknown => tracing::warn!(
            policy,
            "Redis maxmemory-policy {policy} is not one this version knows: if it can evict a \
             user's index of sessions while the sessions stay, end_all may miss sessions; use \
             volatile-ttl or noeviction"
        ),
    }
}

/// The policy in a `CONFIG GET` reply: `[name, value]`, or a map.
fn policy_in(reply: Value) -> Option<String> {
    match reply {
        Value::Array(items) => match items.as_slice() {
            [_, value] => redis::from_redis_value(value.clone()).ok(),
            _ => None,
        },
        Value::Map(pairs) => pairs
            .into_iter()
            .next()
            .and_then(|(_, value)| redis::from_redis_value(value).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_that_can_evict_an_index_are_told_apart() {
        for holds in ["noeviction", "volatile-ttl"] {
            assert_eq!(classify(holds), Eviction::Holds, "{holds}");
        }
        for evicts in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
        ] {
            assert_eq!(classify(evicts), Eviction::Evicts, "{evicts}");
        }
        assert_eq!(classify("volatile-new"), Eviction::Unknown);
    }

    #[test]
    fn a_config_reply_names_its_policy() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let array = Value::Array(vec![bulk("maxmemory-policy"), bulk("volatile-ttl")]);
        assert_eq!(policy_in(array).as_deref(), Some("volatile-ttl"));
        let map = Value::Map(vec![(bulk("maxmemory-policy"), bulk("noeviction"))]);
        assert_eq!(policy_in(map).as_deref(), Some("noeviction"));
        assert_eq!(policy_in(Value::Array(vec![])), None);
    }
}
