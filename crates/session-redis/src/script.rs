//! The Lua script that saves a session (`save.lua`) and the arguments that
//! carry one [`Save`] to it.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, Arg, Cmd, Script};
use session_core::{Save, UnixTime};

use crate::layout;

/// The script's source.
const SAVE_CODE: &str = include_str!("save.lua");

/// The script and its SHA-1, computed once per process. A save sends
/// `EVALSHA`, and the whole script (`EVAL`, which also loads it) only when
/// the server answers `NOSCRIPT` (after a restart, or on a cluster node that
/// has not run it yet).
static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_CODE));

/// One run of the save script: its `EVALSHA`, and the `EVAL` to fall back
/// on.
#[derive(Debug)]
pub(crate) struct ScriptCall {
    evalsha: Cmd,
}

impl ScriptCall {
    /// `EVALSHA sha 1 key args...`.
    pub(crate) fn evalsha(&self) -> &Cmd {
        &self.evalsha
    }

    /// `EVAL script 1 key args...`: the same call for a server that does
    /// not know the script yet.
    pub(crate) fn eval(&self) -> Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(SAVE_CODE);
        // Past `EVALSHA` and the hash: the key count, the key, the args.
        for arg in self.evalsha.args_iter().skip(2) {
            if let Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }

    fn new(key: impl redis::ToRedisArgs) -> Self {
        // Room for the common save's arguments without growing.
        let mut evalsha = Cmd::with_capacity(12, 256);
        evalsha.arg("EVALSHA").arg(SAVE.get_hash()).arg(1).arg(key);
        Self { evalsha }
    }

    fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.evalsha.arg(arg);
        self
    }
}

/// What the script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The changes are stored.
    Saved,
    /// A create found the key taken; nothing was written.
    Exists,
    /// An update found no live session; nothing was written, and an
    /// expired hash was deleted.
    Gone,
    /// The changes left nothing to keep, so the hash was deleted.
    Emptied,
}

impl Outcome {
    /// The outcome a reply of the script stands for.
    pub(crate) fn from_reply(reply: i64) -> Option<Self> {
        match reply {
            0 => Some(Outcome::Saved),
            1 => Some(Outcome::Exists),
            2 => Some(Outcome::Gone),
            3 => Some(Outcome::Emptied),
            _ => None,
        }
    }
}

/// The most values the common save (an update that only sets values)
/// carries in its short form: the script passes them to `HSET` with one
/// `unpack()`, which takes a bounded number of values. Larger saves take
/// the general form, which writes in chunks.
const FAST_MAX_SETS: usize = 500;

/// The script call for `save` on the hash `key`, at `now`.
///
/// A create writes the whole record; an update writes only the keys in
/// `save.changes`, so a concurrent request's change to another key stays.
/// An update that only sets values takes the script's short form.
pub(crate) fn invocation(
    key: impl redis::ToRedisArgs,
    save: &Save<'_>,
    now: UnixTime,
) -> ScriptCall {
    let record = save.record;
    let create = save.token.is_none();
    // Relative, not EXPIREAT: `now` is the application's clock, which need
    // not agree with the server's (tests run on a clock set in the past).
    let ttl = record.expires.saturating_since(now).as_secs().max(1);

    let mut call = ScriptCall::new(key);
    if !create && !save.changes.cleared && !save.changes.flash {
        let mut sets = 0;
        let only_sets = save.changed().all(|(_, v)| {
            sets += 1;
            v.is_some()
        });
        if only_sets && sets <= FAST_MAX_SETS {
            call.arg("u")
                .arg(now.as_secs())
                .arg(ttl)
                .arg(record.expires.as_secs());
            for (k, v) in save.changed() {
                if let Some(v) = v {
                    call.arg(layout::DataField(k)).arg(v.as_bytes());
                }
            }
            return call;
        }
    }

    call.arg(if create { "create" } else { "update" })
        .arg(now.as_secs())
        .arg(record.expires.as_secs())
        .arg(ttl)
        .arg(record.created.as_secs())
        .arg(if !create && save.changes.cleared {
            "1"
        } else {
            "0"
        });

    let flash_changed = create || save.changes.flash;
    match (flash_changed, record.flash.is_empty()) {
        (false, _) => call.arg("").arg(""),
        (true, true) => call.arg("d").arg(""),
        (true, false) => call.arg("s").arg(record.flash.to_msgpack()),
    };

    let mut removed = Vec::new();
    if create {
        call.arg(record.data.len());
        for (k, v) in &record.data {
            call.arg(layout::DataField(k)).arg(v.as_bytes());
        }
    } else {
        let mut set = Vec::new();
        for (k, v) in save.changed() {
            match v {
                Some(v) => set.push((layout::DataField(k), v)),
                None => removed.push(layout::DataField(k)),
            }
        }
        call.arg(set.len());
        for (field, v) in set {
            call.arg(field).arg(v.as_bytes());
        }
    }
    for field in removed {
        call.arg(field);
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_outcomes() {
        assert_eq!(Outcome::from_reply(0), Some(Outcome::Saved));
        assert_eq!(Outcome::from_reply(1), Some(Outcome::Exists));
        assert_eq!(Outcome::from_reply(2), Some(Outcome::Gone));
        assert_eq!(Outcome::from_reply(3), Some(Outcome::Emptied));
        assert_eq!(Outcome::from_reply(4), None);
        assert_eq!(Outcome::from_reply(-1), None);
    }

    #[test]
    fn the_script_names_the_fields_the_layout_names() {
        let code = include_str!("save.lua");
        for field in [layout::CREATED, layout::EXPIRES, layout::FLASH] {
            assert!(code.contains(&format!("'{field}'")), "{field}");
        }
        assert!(code.contains(&format!("'{}'", layout::DATA_PREFIX)));
    }
}
