//! The Lua scripts that write sessions, and the arguments of each call:
//! `save.lua` creates or updates one session, `retire.lua` turns a renewed
//! session into the marker of its id, `users.lua` adds to and lists a
//! user's index of sessions. Each touches one key, so each runs whole on
//! the node that owns it, on a single Redis or a Cluster.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, Arg, Cmd, Script};
use http_sessions_core::store::{Extra, Record, UnixTime, Update};

use crate::layout;

/// The save script's source.
const SAVE_CODE: &str = include_str!("save.lua");
/// The retire script's source.
const RETIRE_CODE: &str = include_str!("retire.lua");
/// The user index script's source.
const USERS_CODE: &str = include_str!("users.lua");

/// Each script and its SHA-1, computed once per process. A call sends
/// `EVALSHA`, and the whole script (`EVAL`, which also loads it) only when
/// the server answers `NOSCRIPT` (after a restart, or on a cluster node that
/// has not run it yet).
static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_CODE));
static RETIRE: LazyLock<Script> = LazyLock::new(|| Script::new(RETIRE_CODE));
static USERS: LazyLock<Script> = LazyLock::new(|| Script::new(USERS_CODE));

/// One run of a script: its `EVALSHA`, and the `EVAL` to fall back on.
#[derive(Debug)]
pub(crate) struct ScriptCall {
    evalsha: Cmd,
    code: &'static str,
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
        eval.arg(self.code);
        // Past `EVALSHA` and the hash: the key count, the key, the args.
        for arg in self.evalsha.args_iter().skip(2) {
            if let Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }

    fn new(script: &Script, code: &'static str, key: impl redis::ToRedisArgs) -> Self {
        // Room for the common save's arguments without growing.
        let mut evalsha = Cmd::with_capacity(12, 256);
        evalsha
            .arg("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(key);
        Self { evalsha, code }
    }

    fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.evalsha.arg(arg);
        self
    }
}

/// What a script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The changes are stored (save), or the session retired (retire).
    Saved,
    /// A create found the key taken; nothing was written.
    Exists,
    /// No live session was there; nothing was written, and an expired
    /// hash was deleted.
    Gone,
    /// The changes left nothing to keep, so the hash was deleted.
    Emptied,
}

impl Outcome {
    /// The outcome a reply of a script stands for.
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

/// A key's TTL for a session ending at `expires`, seen at `now`: relative,
/// not `EXPIREAT`, because `now` is the application's clock, which need not
/// agree with the server's (tests run on a clock set in the past). At least
/// one second, since `EXPIRE` with zero deletes the key at once.
fn ttl(expires: UnixTime, now: UnixTime) -> u64 {
    expires.saturating_since(now).as_secs().max(1)
}

/// The script call that stores `record` under the free key `key`: the whole
/// record, or nothing if the key is taken.
pub(crate) fn create(key: impl redis::ToRedisArgs, record: &Record) -> ScriptCall {
    // A create is not told the time, and the TTL only needs to outlast the
    // session: counted from its creation it does, since a record is never
    // created after the request that stores it. For a new session that is
    // the request's own time, so the TTL is exact; a renewed one keeps its
    // old creation time, and its key then lives a little longer than
    // needed, until its next update sets the TTL from that request's time.
    let ttl = ttl(record.expires, record.created);
    let mut call = ScriptCall::new(&SAVE, SAVE_CODE, key);
    call.arg("create")
        // `now`: the create path does not read it.
        .arg(record.created.as_secs())
        .arg(record.expires.as_secs())
        .arg(ttl)
        .arg(record.created.as_secs())
        .arg("0");
    if record.flash.is_empty() {
        call.arg("d").arg("");
    } else {
        call.arg("s").arg(record.flash.to_msgpack());
    }
    let extras = record.extras();
    call.arg(record.data.len() + extras.len());
    for (k, v) in &record.data {
        call.arg(layout::DataField(k)).arg(v.as_bytes());
    }
    for (field, value) in extras {
        call.arg(field).arg(value);
    }
    call
}

/// The call that puts `id` in the user index at `key` until `until`.
pub(crate) fn index(key: &[u8], id: &str, until: UnixTime, now: UnixTime) -> ScriptCall {
    let mut call = ScriptCall::new(&USERS, USERS_CODE, key);
    call.arg("add")
        .arg(now.as_secs())
        .arg(id)
        .arg(until.as_secs())
        .arg(ttl(until, now));
    call
}

/// The call that lists the ids in the user index at `key`, dropping those
/// whose time has passed at `now`.
pub(crate) fn indexed(key: &[u8], now: UnixTime) -> ScriptCall {
    let mut call = ScriptCall::new(&USERS, USERS_CODE, key);
    call.arg("list").arg(now.as_secs());
    call
}

/// The script call that applies `update` to the live session under `key`:
/// only the keys in `update.changes`, so a concurrent request's change to
/// another key stays, and the new expiry. An update that only sets values
/// takes the script's short form.
pub(crate) fn update(key: impl redis::ToRedisArgs, update: &Update<'_>) -> ScriptCall {
    let ttl = ttl(update.expires, update.now);
    let mut call = ScriptCall::new(&SAVE, SAVE_CODE, key);
    let changes = update.changes;
    if !changes.cleared && !changes.flash && !changes.expiry && !changes.binding {
        let mut sets = 0;
        let only_sets = update.changed().all(|(_, v)| {
            sets += 1;
            v.is_some()
        });
        if only_sets && sets <= FAST_MAX_SETS {
            call.arg("u")
                .arg(update.now.as_secs())
                .arg(ttl)
                .arg(update.expires.as_secs());
            for (k, v) in update.changed() {
                if let Some(v) = v {
                    call.arg(layout::DataField(k)).arg(v.as_bytes());
                }
            }
            return call;
        }
    }

    call.arg("update")
        .arg(update.now.as_secs())
        .arg(update.expires.as_secs())
        .arg(ttl)
        // The creation time: the update path does not write it.
        .arg(update.record.created.as_secs())
        .arg(if changes.cleared { "1" } else { "0" });
    let flash = &update.record.flash;
    match (changes.flash, flash.is_empty()) {
        (false, _) => call.arg("").arg(""),
        (true, true) => call.arg("d").arg(""),
        (true, false) => call.arg("s").arg(flash.to_msgpack()),
    };

    let mut set = Vec::new();
    let mut removed = Vec::new();
    for (k, v) in update.changed() {
        match v {
            Some(v) => set.push((layout::DataField(k), v)),
            None => removed.push(layout::DataField(k)),
        }
    }
    // The session's expiry, user and label, each written if it changed:
    // set, or deleted when back to its default.
    let mut extras = Vec::new();
    let mut cleared = Vec::new();
    for extra in Extra::ALL.into_iter().filter(|&e| changes.changed(e)) {
        match update.record.extra(extra) {
            Some(value) => extras.push((extra.name(), value)),
            None => cleared.push(extra.name()),
        }
    }
    call.arg(set.len() + extras.len());
    for (field, v) in set {
        call.arg(field).arg(v.as_bytes());
    }
    for (field, value) in extras {
        call.arg(field).arg(value);
    }
    for field in removed {
        call.arg(field);
    }
    for field in cleared {
        call.arg(field);
    }
    call
}

/// The script call that replaces the live session under `key` by the
/// marker of a renewed id, lasting until `until`. `tag` is random: a call
/// sent twice recognises the marker it wrote.
pub(crate) fn retire(
    key: impl redis::ToRedisArgs,
    now: UnixTime,
    until: UnixTime,
    tag: &str,
) -> ScriptCall {
    let mut call = ScriptCall::new(&RETIRE, RETIRE_CODE, key);
    call.arg(now.as_secs())
        .arg(until.as_secs())
        .arg(ttl(until, now))
        .arg(tag);
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
    fn the_scripts_name_the_fields_the_layout_names() {
        for field in [
            layout::CREATED,
            layout::EXPIRES,
            layout::FLASH,
            Extra::Expiry.name(),
            Extra::User.name(),
            Extra::Label.name(),
        ] {
            assert!(SAVE_CODE.contains(&format!("'{field}'")), "{field}");
        }
        assert!(SAVE_CODE.contains(&format!("'{}'", layout::DATA_PREFIX)));
        for field in [layout::EXPIRES, layout::RENEWED, layout::TAG] {
            assert!(RETIRE_CODE.contains(&format!("'{field}'")), "{field}");
        }
    }

    #[test]
    fn a_fallback_eval_carries_its_own_script_and_the_same_arguments() {
        let call = retire("k", UnixTime::from_secs(100), UnixTime::from_secs(160), "t");
        let args = |cmd: &Cmd| -> Vec<Vec<u8>> {
            cmd.args_iter()
                .filter_map(|a| match a {
                    Arg::Simple(bytes) => Some(bytes.to_vec()),
                    _ => None,
                })
                .collect()
        };
        let sha = args(call.evalsha());
        let eval = args(&call.eval());
        assert_eq!(sha[0], b"EVALSHA");
        assert_eq!(sha[1], RETIRE.get_hash().as_bytes());
        assert_eq!(eval[0], b"EVAL");
        assert_eq!(eval[1], RETIRE_CODE.as_bytes());
        assert_eq!(sha[2..], eval[2..]);
        assert_eq!(
            eval[2..],
            [&b"1"[..], b"k", b"100", b"160", b"60", b"t"].map(<[u8]>::to_vec)
        );
    }

    #[test]
    fn a_ttl_is_at_least_one_second() {
        let at = UnixTime::from_secs;
        assert_eq!(ttl(at(160), at(100)), 60);
        assert_eq!(ttl(at(100), at(100)), 1);
        assert_eq!(ttl(at(90), at(100)), 1);
    }
}
