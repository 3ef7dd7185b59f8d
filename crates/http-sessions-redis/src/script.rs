//! The Lua scripts that write sessions, and the arguments of each call:
//! `save.lua` creates or updates one session, `retire.lua` turns a renewed
//! session into the marker of its id, `users.lua` admits a binding into a
//! user's index or starts a new generation, and `end.lua` ends sessions of
//! a user, checking each hash. On a single node a save or a retire keeps
//! the users' indexes in the same script (more than one key); on a
//! Cluster every call names one key, so each runs whole on the node that
//! owns it, and the store orders the calls (see `users`).

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
/// The ending script's source.
const END_CODE: &str = include_str!("end.lua");

/// Each script and its SHA-1, computed once per process. A call sends
/// `EVALSHA`, and the whole script (`EVAL`, which also loads it) only when
/// the server answers `NOSCRIPT` (after a restart, or on a cluster node that
/// has not run it yet).
static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_CODE));
static RETIRE: LazyLock<Script> = LazyLock::new(|| Script::new(RETIRE_CODE));
static USERS: LazyLock<Script> = LazyLock::new(|| Script::new(USERS_CODE));
static END: LazyLock<Script> = LazyLock::new(|| Script::new(END_CODE));

/// One run of a script: its `EVALSHA`, and the `EVAL` to fall back on.
#[derive(Debug)]
pub(crate) struct ScriptCall {
    evalsha: Cmd,
    code: &'static str,
}

impl ScriptCall {
    /// `EVALSHA sha numkeys keys... args...`.
    pub(crate) fn evalsha(&self) -> &Cmd {
        &self.evalsha
    }

    /// `EVAL script numkeys keys... args...`: the same call for a server
    /// that does not know the script yet.
    pub(crate) fn eval(&self) -> Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(self.code);
        // Past `EVALSHA` and the hash: the key count, the keys, the args.
        for arg in self.evalsha.args_iter().skip(2) {
            if let Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }

    /// A call of `script` on one key, the first of `keys` (the others
    /// follow with [`arg`](Self::arg) before any argument).
    fn new(script: &Script, code: &'static str, keys: usize, key: impl redis::ToRedisArgs) -> Self {
        // Room for the common save's arguments without growing.
        let mut evalsha = Cmd::with_capacity(12, 256);
        evalsha
            .arg("EVALSHA")
            .arg(script.get_hash())
            .arg(keys)
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
    /// The update would have left the session this many bytes, over the
    /// size bound and larger than it was; nothing was written.
    TooLarge(usize),
}

/// The code of the error reply with which the save script refuses an
/// update over the session size bound; the detail is the size it would
/// have left.
pub(crate) const TOO_LARGE: &str = "TOOLARGE";

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

/// What a save does to the users' indexes and to the hash's `gen` field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Indexing<'a> {
    /// The session id as an index names it (base64url).
    pub(crate) id: &'a str,
    /// The session's absolute deadline: its entry's score.
    pub(crate) ends: UnixTime,
    /// The time the index's TTL counts from.
    pub(crate) now: UnixTime,
    /// The `gen` field.
    pub(crate) generation: Generation<'a>,
    /// The index the session leaves, and the user the request loaded it
    /// with: the entry goes only if the hash still names that user.
    pub(crate) leave: Option<(&'a [u8], &'a str)>,
}

/// What a save writes to the hash's `gen` field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Generation<'a> {
    /// Nothing: the binding does not move.
    Keep,
    /// The binding, carrying this generation (0: never stored), joins the
    /// index at this key, on the same node: admitted there, and the
    /// result stamped.
    Admit(&'a [u8], u64),
    /// This generation, admitted already (a Cluster's first step); 0
    /// deletes the field.
    Stamp(u64),
}

impl<'a> Indexing<'a> {
    /// Neither index nor generation touched: an anonymous save, or one
    /// that does not move the binding.
    pub(crate) fn none() -> Self {
        Self {
            id: "",
            ends: UnixTime::from_secs(0),
            now: UnixTime::from_secs(0),
            generation: Generation::Keep,
            leave: None,
        }
    }

    fn keys(&self) -> Vec<&'a [u8]> {
        let mut keys = Vec::new();
        if let Generation::Admit(index, _) = self.generation {
            keys.push(index);
        }
        if let Some((index, _)) = self.leave {
            keys.push(index);
        }
        keys
    }

    /// `ARGV[9 .. 14]` of the save script's general form.
    fn args(&self, call: &mut ScriptCall) {
        let (op, generation) = match self.generation {
            Generation::Keep => ("", 0),
            Generation::Admit(_, generation) => ("a", generation),
            Generation::Stamp(generation) => ("s", generation),
        };
        call.arg(op)
            .arg(generation)
            .arg(self.id)
            .arg(self.ends.as_secs())
            .arg(ttl(self.ends, self.now))
            .arg(self.leave.map_or("", |(_, user)| user));
    }
}

/// The script call that stores `record` under the free key `key`: the whole
/// record, or nothing if the key is taken, and the user's index as
/// `indexing` says.
pub(crate) fn create(
    key: impl redis::ToRedisArgs,
    record: &Record,
    indexing: &Indexing<'_>,
) -> ScriptCall {
    // A create is not told the time, and the TTL only needs to outlast the
    // session: counted from its creation it does, since a record is never
    // created after the request that stores it. For a new session that is
    // the request's own time, so the TTL is exact; a renewed one keeps its
    // old creation time, and its key then lives a little longer than
    // needed, until its next update sets the TTL from that request's time.
    let ttl = ttl(record.expires, record.created);
    let keys = indexing.keys();
    let mut call = ScriptCall::new(&SAVE, SAVE_CODE, 1 + keys.len(), key);
    for index in keys {
        call.arg(index);
    }
    // The size but for the generation, which the script stamps and counts.
    let size = record.encoded_len() - if record.generation == 0 { 0 } else { 8 };
    call.arg("create")
        // `now`: for a create, the time its index is trimmed to.
        .arg(record.created.as_secs())
        .arg(record.expires.as_secs())
        .arg(ttl)
        .arg(record.created.as_secs())
        .arg("0")
        .arg(size)
        .arg("");
    indexing.args(&mut call);
    // The generation is the script's to stamp, from the index.
    let extras: Vec<_> = record
        .extras()
        .into_iter()
        .filter(|&(name, _)| name != Extra::Generation.name())
        .collect();
    call.arg(record.data.len() + extras.len() + record.flash.len())
        .arg(0)
        .arg(0)
        .arg(0);
    for (k, v) in &record.data {
        call.arg(layout::DataField(k)).arg(v.as_bytes());
    }
    for (field, value) in extras {
        call.arg(field).arg(value);
    }
    for (id, flash) in record.flash.entries() {
        call.arg(layout::FlashField(id))
            .arg(layout::FlashValue(flash));
    }
    call
}

/// The call that admits a binding into the user's index at `key` (a
/// Cluster's first step): answers the generation to stamp, or -1.
pub(crate) fn admit(
    key: &[u8],
    id: &str,
    ends: UnixTime,
    now: UnixTime,
    generation: u64,
) -> ScriptCall {
    let mut call = ScriptCall::new(&USERS, USERS_CODE, 1, key);
    call.arg("admit")
        .arg(now.as_secs())
        .arg(id)
        .arg(ends.as_secs())
        .arg(ttl(ends, now))
        .arg(generation);
    call
}

/// The call that starts a new generation of the user whose index is at
/// `key`, at least `floor` and remembered at least until `remember_until`,
/// and lists the entries whose time has not passed at `now`.
pub(crate) fn raise(key: &[u8], now: UnixTime, floor: u64, remember_until: UnixTime) -> ScriptCall {
    let mut call = ScriptCall::new(&USERS, USERS_CODE, 1, key);
    call.arg("raise")
        .arg(now.as_secs())
        .arg(floor)
        .arg(ttl(remember_until, now));
    call
}

/// The call that ends the session under `key` if it is `user`'s, and
/// drops its entry from the index at `index`, if given (same node).
pub(crate) fn end(
    key: impl redis::ToRedisArgs,
    index: Option<&[u8]>,
    user: &str,
    id: &str,
    now: UnixTime,
) -> ScriptCall {
    let mut call = ScriptCall::new(&END, END_CODE, 1 + usize::from(index.is_some()), key);
    if let Some(index) = index {
        call.arg(index);
    }
    call.arg("end").arg(user).arg(now.as_secs()).arg(id);
    call
}

/// The call that deletes whatever is under `key`, and its entry in the
/// index at `index` if the hash names `user` (same node).
pub(crate) fn delete(
    key: impl redis::ToRedisArgs,
    index: &[u8],
    user: &str,
    id: &str,
) -> ScriptCall {
    let mut call = ScriptCall::new(&END, END_CODE, 2, key);
    call.arg(index).arg("delete").arg(user).arg(0).arg(id);
    call
}

/// end_all's second step on a single node: every listed session (`ids`,
/// with their keys) of `user` of a generation older than `raised` ends,
/// but `keep`, the position in `ids` of the session to keep.
pub(crate) fn end_listed(
    index: &[u8],
    keys: &[Vec<u8>],
    ids: &[String],
    user: &str,
    raised: u64,
    keep: Option<usize>,
    now: UnixTime,
) -> ScriptCall {
    let mut call = ScriptCall::new(&END, END_CODE, 1 + keys.len(), index);
    for key in keys {
        call.arg(key);
    }
    // KEYS[k] is ids[k - 2].
    call.arg("all")
        .arg(user)
        .arg(now.as_secs())
        .arg(raised)
        .arg(keep.map_or(0, |at| at + 2));
    for id in ids {
        call.arg(id);
    }
    call
}

/// end_all's second step on a Cluster, for the one listed session under
/// `key`, whose entry lasts until `ends`.
pub(crate) fn end_one(
    key: impl redis::ToRedisArgs,
    user: &str,
    raised: u64,
    keep: bool,
    ends: UnixTime,
    now: UnixTime,
) -> ScriptCall {
    let mut call = ScriptCall::new(&END, END_CODE, 1, key);
    call.arg("one")
        .arg(user)
        .arg(now.as_secs())
        .arg(raised)
        .arg(if keep { "1" } else { "0" })
        .arg(ends.as_secs())
        .arg(ttl(ends, now));
    call
}

/// The script call that applies `update` to the live session under `key`:
/// only the keys in `update.changes`, so a concurrent request's change to
/// another key stays, and the new expiry, and the users' indexes as
/// `indexing` says. An update that only sets values takes the script's
/// short form, bound or not.
pub(crate) fn update(
    key: impl redis::ToRedisArgs,
    update: &Update<'_>,
    indexing: &Indexing<'_>,
) -> ScriptCall {
    let ttl = ttl(update.expires, update.now);
    let changes = update.changes;
    let keys = indexing.keys();
    if keys.is_empty()
        && matches!(indexing.generation, Generation::Keep)
        && !changes.cleared
        && changes.flash.is_empty()
        && !changes.expiry
        && !changes.binding
    {
        let mut sets = 0;
        let only_sets = update.changed().all(|(_, v)| {
            sets += 1;
            v.is_some()
        });
        if only_sets && sets <= FAST_MAX_SETS {
            let mut call = ScriptCall::new(&SAVE, SAVE_CODE, 1, key);
            call.arg("u")
                .arg(update.now.as_secs())
                .arg(ttl)
                .arg(update.max_size)
                .arg(update.expires.as_secs());
            for (k, v) in update.changed() {
                if let Some(v) = v {
                    call.arg(layout::DataField(k)).arg(v.as_bytes());
                }
            }
            return call;
        }
    }

    let mut call = ScriptCall::new(&SAVE, SAVE_CODE, 1 + keys.len(), key);
    for index in keys {
        call.arg(index);
    }
    call.arg("update")
        .arg(update.now.as_secs())
        .arg(update.expires.as_secs())
        .arg(ttl)
        // The creation time: the update path does not write it.
        .arg(update.record.created.as_secs())
        .arg(if changes.cleared { "1" } else { "0" })
        .arg(update.max_size)
        .arg(update.record.flash.capacity());
    indexing.args(&mut call);

    let mut set = Vec::new();
    let mut removed = Vec::new();
    for (k, v) in update.changed() {
        match v {
            Some(v) => set.push((layout::DataField(k), v)),
            None => removed.push(layout::DataField(k)),
        }
    }
    // The session's expiry, user and label, each written if it changed:
    // set, or deleted when back to its default. The generation is the
    // script's, as `indexing` says.
    let mut extras = Vec::new();
    let mut cleared = Vec::new();
    for extra in Extra::ALL
        .into_iter()
        .filter(|&e| e != Extra::Generation && changes.changed(e))
    {
        match update.record.extra(extra) {
            Some(value) => extras.push((extra.name(), value)),
            None => cleared.push(extra.name()),
        }
    }
    // The messages pushed, copied from the request's queue; one it dropped
    // again before saving is not there, and is not sent.
    let flash = &update.record.flash;
    let pushed = || (changes.flash.pushed.iter()).filter_map(|&id| flash.get(id).map(|f| (id, f)));
    call.arg(set.len() + extras.len())
        .arg(removed.len() + cleared.len())
        .arg(changes.flash.taken.len())
        .arg(pushed().count());
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
    for &id in &changes.flash.taken {
        call.arg(layout::FlashField(id));
    }
    for (id, message) in pushed() {
        call.arg(layout::FlashField(id))
            .arg(layout::FlashValue(message));
    }
    call
}

/// The script call that replaces the live session under `key` by the
/// marker of a renewed id, lasting until `until`. `tag` is random: a call
/// sent twice recognises the marker it wrote. `leave`: the index (same
/// node) that loses the entry `id` if the hash names that user.
pub(crate) fn retire(
    key: impl redis::ToRedisArgs,
    now: UnixTime,
    until: UnixTime,
    tag: &str,
    leave: Option<(&[u8], &str, &str)>,
) -> ScriptCall {
    let mut call = ScriptCall::new(&RETIRE, RETIRE_CODE, 1 + usize::from(leave.is_some()), key);
    if let Some((index, _, _)) = leave {
        call.arg(index);
    }
    call.arg(now.as_secs())
        .arg(until.as_secs())
        .arg(ttl(until, now))
        .arg(tag);
    if let Some((_, user, id)) = leave {
        call.arg(user).arg(id);
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
        assert_eq!(Outcome::from_reply(-5), None);
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
            Extra::Generation.name(),
            layout::ENDED,
        ] {
            assert!(SAVE_CODE.contains(&format!("'{field}'")), "{field}");
        }
        assert!(SAVE_CODE.contains(&format!("'{}'", layout::DATA_PREFIX)));
        assert!(SAVE_CODE.contains(&format!("'{}'", layout::FLASH_PREFIX)));
        assert!(SAVE_CODE.contains(&format!("'{}%016x'", layout::FLASH_PREFIX)));
        assert!(SAVE_CODE.contains(&format!("'{}'", layout::SIZE)));
        assert!(SAVE_CODE.contains(&format!("'{TOO_LARGE} '")));
        assert!(SAVE_CODE.contains(&format!(
            "local FLASH_MAX_BYTES = {}\n",
            http_sessions_core::store::FLASH_MAX_BYTES
        )));
        for field in [layout::EXPIRES, layout::RENEWED, layout::TAG, "user"] {
            assert!(RETIRE_CODE.contains(&format!("'{field}'")), "{field}");
        }
        for field in [
            layout::EXPIRES,
            Extra::User.name(),
            Extra::Generation.name(),
            layout::ENDED,
        ] {
            assert!(END_CODE.contains(&format!("'{field}'")), "{field}");
        }
        assert!(USERS_CODE.contains(&format!("'{}'", layout::GENERATION_MEMBER)));
        assert!(SAVE_CODE.contains(&format!("'{}'", layout::GENERATION_MEMBER)));
    }

    #[test]
    fn a_fallback_eval_carries_its_own_script_and_the_same_arguments() {
        let call = retire(
            "k",
            UnixTime::from_secs(100),
            UnixTime::from_secs(160),
            "t",
            None,
        );
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
