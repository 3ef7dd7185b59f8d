//! How a session sits in Redis: one hash per session id, its field names,
//! and decoding a hash read back with `HGETALL` into what it [`Stored`].
//!
//! A live session:
//!
//! | field       | holds                                              |
//! |-------------|----------------------------------------------------|
//! | `d:<key>`   | the value of session key `<key>`, MessagePack      |
//! | `f:<id>`    | a flash message, MessagePack `[level, text]`, under its id in 16 hex digits |
//! | `created`   | when the session was created, Unix seconds         |
//! | `expires`   | when it ends unless refreshed, Unix seconds        |
//! | `sz`        | its size as the session size bound counts it (absent if written before sizes) |
//! | `flash`     | the whole flash queue, as the release before message ids wrote it (read, never written) |
//! | `expiry`    | the session's own expiry, `browser` or `<idle>/<absolute>` seconds (absent for the settings') |
//! | `user`      | the user the session is bound to (absent if none)  |
//! | `label`     | the application's label for it (absent if none)    |
//! | `gen`       | the generation of the user's sessions it was bound in (absent if unbound, or written before generations) |
//!
//! A user's sessions are listed in a sorted set of its own, under
//! `<prefix>user:<user>`: each session id, scored with the session's
//! absolute deadline, and the member `gen` scored with minus the user's
//! generation (absent: generation 1), so that neither trimming past
//! entries nor listing by score ever meets it (`users.lua`). The `:`
//! keeps the key apart from every session key, whose ids are base64url.
//!
//! A renewed id (the marker `retire.lua` leaves, so a request still
//! carrying the id neither sees the session nor replaces its cookie):
//!
//! | field       | holds                                              |
//! |-------------|----------------------------------------------------|
//! | `renewed`   | until when the id counts as renewed, Unix seconds  |
//! | `tag`       | a random tag of the retire call that wrote it      |
//!
//! A session that `end_all` ended on a Redis Cluster, or whose id it found
//! empty, leaves a tombstone until its entry's time: one field, `ended`,
//! until when it counts, Unix seconds. It loads as no session, and a
//! create that meets it (a login whose index entry was written before
//! `end_all` started and whose session lands after) is refused as gone.
//!
//! Session keys carry the `d:` prefix so that no key a handler chooses can
//! be mistaken for, or overwrite, the metadata. A marker has no `expires`
//! field, so the save script never takes it for a live session.

use std::io::Write;

use deadpool_redis::redis::{RedisWrite, ToRedisArgs};

use http_sessions_core::store::{Extra, Record, UnixTime, Value, codec};
use http_sessions_core::{Flash, store::FlashQueue};

/// Field holding the creation time.
pub(crate) const CREATED: &str = "created";
/// Field holding the expiry time.
pub(crate) const EXPIRES: &str = "expires";
/// Field holding the whole flash queue, as the release before message ids
/// wrote it: read, and turned into [`FLASH_PREFIX`] fields by the first
/// save that changes the queue.
pub(crate) const FLASH: &str = "flash";
/// Prefix of the fields holding one flash message each.
pub(crate) const FLASH_PREFIX: &str = "f:";
/// Field holding the session's size as the size bound counts it.
pub(crate) const SIZE: &str = "sz";
/// What follows the prefix in a user index's key.
pub(crate) const USER_INDEX: &str = "user:";
/// The member of a user's index scored with minus the user's generation;
/// only the scripts write it, and a test checks they spell it so.
#[cfg(test)]
pub(crate) const GENERATION_MEMBER: &str = "gen";
/// Field of a tombstone: until when the id it holds stays ended.
pub(crate) const ENDED: &str = "ended";

/// Prefix of the fields holding session values.
pub(crate) const DATA_PREFIX: &str = "d:";
/// Field of a renewed id's marker: until when it counts as renewed.
pub(crate) const RENEWED: &str = "renewed";
/// Field of a renewed id's marker: the tag of the retire call that wrote it.
pub(crate) const TAG: &str = "tag";

/// The field holding session key `key`.
#[cfg(test)]
fn data_field(key: &str) -> String {
    let mut field = String::with_capacity(DATA_PREFIX.len() + key.len());
    field.push_str(DATA_PREFIX);
    field.push_str(key);
    field
}

/// The field holding session key `key` (`d:<key>`), written straight into
/// a command's argument, without a `String` of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataField<'a>(pub(crate) &'a str);

impl ToRedisArgs for DataField<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into a command's buffer cannot fail.
        let _ = arg.write_all(DATA_PREFIX.as_bytes());
        let _ = arg.write_all(self.0.as_bytes());
    }
}

/// The field holding flash message `id` (`f:` and the id in 16 hex
/// digits, so that names sort as ids do), written straight into a
/// command's argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlashField(pub(crate) u64);

impl ToRedisArgs for FlashField {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into a command's buffer cannot fail.
        let _ = write!(arg, "{FLASH_PREFIX}{:016x}", self.0);
    }
}

/// A flash message as its field holds it, MessagePack `[level, text]`,
/// written straight into a command's argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlashValue<'a>(pub(crate) &'a Flash);

impl ToRedisArgs for FlashValue<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        // A message is pushed once in many saves: its few bytes of framing
        // and text are copied once more, through a buffer of their own.
        let mut bytes = Vec::with_capacity(self.0.message.len() + 5);
        codec::write_flash(&mut bytes, self.0);
        out.write_arg(&bytes);
    }
}

/// The id a flash message's field names, if `hex` is one.
fn flash_id(hex: &[u8]) -> Option<u64> {
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// Why a stored hash is not a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The field at fault, as text (lossy if it is not UTF-8).
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) reason: &'static str,
}

impl Corrupt {
    fn new(field: &[u8], reason: &'static str) -> Self {
        Self {
            field: String::from_utf8_lossy(field).into_owned(),
            reason,
        }
    }
}

/// What a hash under a session id holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A session, whether or not it has expired yet.
    Live(Record),
    /// The marker of a renewed id.
    Renewed {
        /// Until when the id counts as renewed.
        until: UnixTime,
    },
    /// The tombstone `end_all` leaves on a Cluster: no session.
    Ended,
}

/// Decodes the fields of a hash (as `HGETALL` returns them, in any order)
/// into a session or a renewed id's marker.
///
/// Every field must decode: a value that is not exactly one MessagePack
/// value, a timestamp that is not a number, a missing timestamp, a field
/// this version does not know, or a marker holding anything of a session,
/// all make the whole hash corrupt, since a session missing part of its
/// state is not the session its user left.
pub(crate) fn decode<I>(fields: I) -> Result<Stored, Corrupt>
where
    I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
{
    // In the hash's order: sorted once at the end.
    let mut data = Vec::new();
    let mut created = None;
    let mut expires = None;
    let mut renewed = None;
    let mut ended = false;
    let mut session_fields = 0;
    // The layer applies its own capacity after loading; keeping every stored
    // message here leaves that choice to it.
    let mut flash = FlashQueue::with_capacity(usize::MAX);
    let mut messages = Vec::new();
    // The extra fields, set on a record of their own until the rest is in.
    let mut extras = Record::empty(UnixTime::from_secs(0), UnixTime::from_secs(0), 0);
    for (name, value) in fields {
        if let Some(key) = name.strip_prefix(DATA_PREFIX.as_bytes()) {
            let key = std::str::from_utf8(key)
                .map_err(|_| Corrupt::new(&name, "session key is not UTF-8"))?;
            if !Value::is_well_formed(&value) {
                return Err(Corrupt::new(&name, "value is not MessagePack"));
            }
            data.push((key.into(), Value::from_msgpack(value)));
            session_fields += 1;
        } else if let Some(hex) = name.strip_prefix(FLASH_PREFIX.as_bytes()) {
            let id = flash_id(hex).ok_or_else(|| Corrupt::new(&name, "not a flash message id"))?;
            let message = codec::read_flash(&value)
                .map_err(|_| Corrupt::new(&name, "flash message is not [level, text]"))?;
            messages.push((id, message));
            session_fields += 1;
        } else if name == SIZE.as_bytes() {
            // Only the save script reads it.
            if decimal(&value).is_none() {
                return Err(Corrupt::new(&name, "size is not a number"));
            }
            session_fields += 1;
        } else if name == RENEWED.as_bytes() {
            renewed = Some(timestamp(&name, &value)?);
        } else if name == ENDED.as_bytes() {
            timestamp(&name, &value)?;
            ended = true;
        } else if name == TAG.as_bytes() {
            // Only the retire script reads it.
        } else if name == CREATED.as_bytes() {
            created = Some(timestamp(&name, &value)?);
            session_fields += 1;
        } else if name == EXPIRES.as_bytes() {
            expires = Some(timestamp(&name, &value)?);
            session_fields += 1;
        } else if name == FLASH.as_bytes() {
            flash = codec::read_flashes(&value, usize::MAX)
                .map_err(|_| Corrupt::new(&name, "flash queue is not MessagePack"))?;
            session_fields += 1;
        } else if let Some(extra) = Extra::named(&name) {
            let decoded = std::str::from_utf8(&value).is_ok_and(|t| extras.set_extra(extra, t));
            if !decoded {
                return Err(Corrupt::new(&name, "does not decode"));
            }
            session_fields += 1;
        } else {
            return Err(Corrupt::new(&name, "unknown field"));
        }
    }
    if ended {
        if session_fields > 0 || renewed.is_some() {
            return Err(Corrupt::new(
                ENDED.as_bytes(),
                "a tombstone holds other fields",
            ));
        }
        return Ok(Stored::Ended);
    }
    if let Some(until) = renewed {
        if session_fields > 0 {
            return Err(Corrupt::new(
                RENEWED.as_bytes(),
                "a renewed id's marker holds session fields",
            ));
        }
        return Ok(Stored::Renewed { until });
    }
    let created = created.ok_or_else(|| Corrupt::new(CREATED.as_bytes(), "missing"))?;
    let expires = expires.ok_or_else(|| Corrupt::new(EXPIRES.as_bytes(), "missing"))?;
    if !messages.is_empty() {
        // A script turns a queue stored whole into fields in one step, so
        // both at once is not expected; neither loses a message if it is.
        let whole = flash.entries().map(|(id, f)| (id, f.clone()));
        flash = FlashQueue::from_entries(messages.into_iter().chain(whole), usize::MAX);
    }
    Ok(Stored::Live(Record {
        data: data.into_iter().collect(),
        flash,
        created,
        expires,
        ..extras
    }))
}

/// `value` as a decimal number that fits a `u64`, as the scripts write
/// them.
fn decimal(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
}

/// A timestamp as the script writes it: decimal Unix seconds.
fn timestamp(name: &[u8], value: &[u8]) -> Result<UnixTime, Corrupt> {
    decimal(value)
        .map(UnixTime::from_secs)
        .ok_or_else(|| Corrupt::new(name, "timestamp is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_sessions_core::FlashLevel;

    fn field(name: &str, value: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.to_vec())
    }

    fn valid() -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut queue = FlashQueue::default();
        queue.push(FlashLevel::Warning, "careful".into());
        vec![
            field("expires", b"1700000600"),
            field("d:user", Value::encode("alice").unwrap().as_bytes()),
            field("created", b"1700000000"),
            field("flash", &{
                let mut old = Vec::new();
                codec::write_flashes(&mut old, &queue);
                old
            }),
            field("d:d:nested", Value::encode(&[1, 2, 3]).unwrap().as_bytes()),
        ]
    }

    fn live(fields: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Record, Corrupt> {
        match decode(fields)? {
            Stored::Live(record) => Ok(record),
            Stored::Renewed { .. } | Stored::Ended => panic!("a session decoded as a marker"),
        }
    }

    #[test]
    fn a_whole_hash_decodes_in_any_order() {
        let record = live(valid()).unwrap();
        assert_eq!(record.created, UnixTime::from_secs(1_700_000_000));
        assert_eq!(record.expires, UnixTime::from_secs(1_700_000_600));
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["d:nested", "user"]);
        assert_eq!(
            record.data.get("user").unwrap().decode::<String>().unwrap(),
            "alice"
        );
        let flashes: Vec<_> = record.flash.iter().collect();
        assert_eq!(flashes.len(), 1);
        assert_eq!(flashes[0].level, FlashLevel::Warning);

        let mut reversed = valid();
        reversed.reverse();
        assert_eq!(live(reversed).unwrap(), record);
    }

    fn message(id: u64, level: FlashLevel, text: &str) -> (Vec<u8>, Vec<u8>) {
        let flash = Flash {
            level,
            message: text.into(),
        };
        let mut args = FlashField(id).to_redis_args();
        args.extend(FlashValue(&flash).to_redis_args());
        let value = args.pop().unwrap();
        (args.pop().unwrap(), value)
    }

    #[test]
    fn flash_messages_decode_by_id_whatever_the_hash_order() {
        let mut fields = valid();
        fields.retain(|(n, _)| n != b"flash");
        fields.push(message(0x30, FlashLevel::Error, "third"));
        fields.push(message(7, FlashLevel::Info, "first"));
        fields.push(message(0x1f, FlashLevel::Info, &"x".repeat(300)));
        fields.push(field("sz", b"123"));
        let record = live(fields).unwrap();
        let got: Vec<_> = record
            .flash
            .entries()
            .map(|(id, f)| (id, f.message.len()))
            .collect();
        assert_eq!(got, [(7, 5), (0x1f, 300), (0x30, 5)]);
        assert_eq!(record.flash.get(0x30).unwrap().level, FlashLevel::Error);
    }

    #[test]
    fn a_flash_field_is_named_by_its_id_in_sixteen_hex_digits() {
        let (name, value) = message(0xab, FlashLevel::Warning, "hi");
        assert_eq!(name, b"f:00000000000000ab");
        // The same bytes a queue of one message holds, past its header.
        let mut queue = FlashQueue::default();
        queue.push(FlashLevel::Warning, "hi".into());
        let mut whole = Vec::new();
        codec::write_flashes(&mut whole, &queue);
        assert_eq!(value, whole[1..]);
        let (name, _) = message(u64::MAX, FlashLevel::Info, "");
        assert_eq!(name, b"f:ffffffffffffffff");
    }

    #[test]
    fn a_queue_stored_whole_numbers_its_messages_from_one() {
        let record = live(valid()).unwrap();
        assert_eq!(
            record.flash.entries().map(|(id, _)| id).collect::<Vec<_>>(),
            [1]
        );
        // Beside fields of messages, nothing is lost.
        let mut fields = valid();
        fields.push(message(1 << 40, FlashLevel::Info, "new"));
        let record = live(fields).unwrap();
        let ids: Vec<_> = record.flash.entries().map(|(id, _)| id).collect();
        assert_eq!(ids, [1, 1 << 40]);
    }

    #[test]
    fn the_flash_field_is_optional() {
        let fields = valid().into_iter().filter(|(n, _)| n != b"flash");
        assert!(live(fields.collect()).unwrap().flash.is_empty());
    }

    #[test]
    fn every_kind_of_damage_is_corrupt() {
        let cases: Vec<(&str, Option<&[u8]>, &str)> = vec![
            ("d:user", Some(&[0xc1]), "value is not MessagePack"),
            ("d:user", Some(&[]), "value is not MessagePack"),
            // Truncated: a str of 5 bytes holding 2.
            (
                "d:user",
                Some(&[0xa5, b'a', b'b']),
                "value is not MessagePack",
            ),
            // Trailing bytes after a whole value.
            (
                "d:user",
                Some(&[0xa1, b'a', 0x00]),
                "value is not MessagePack",
            ),
            ("created", Some(b"soon"), "timestamp is not a number"),
            ("expires", Some(b""), "timestamp is not a number"),
            ("expires", Some(b"-5"), "timestamp is not a number"),
            (
                "expires",
                Some(b"99999999999999999999999"),
                "timestamp is not a number",
            ),
            (
                "flash",
                Some(&[0x92, 0x01]),
                "flash queue is not MessagePack",
            ),
            ("sz", Some(b"-1"), "size is not a number"),
            (
                "f:0000000000000001",
                Some(&[0x92, 0x09, 0xa0]),
                "flash message is not [level, text]",
            ),
            (
                "f:0000000000000001",
                Some(&[0x92, 0x01, 0xa0, 0x00]),
                "flash message is not [level, text]",
            ),
            ("f:1", Some(&[0x92, 0x01, 0xa0]), "not a flash message id"),
            (
                "f:000000000000000g",
                Some(&[0x92, 0x01, 0xa0]),
                "not a flash message id",
            ),
            ("created", None, "missing"),
            ("expires", None, "missing"),
        ];
        for (name, value, reason) in cases {
            let mut fields: Vec<_> = valid()
                .into_iter()
                .filter(|(n, _)| n != name.as_bytes())
                .collect();
            if let Some(v) = value {
                fields.push(field(name, v));
            }
            assert_eq!(
                decode(fields),
                Err(Corrupt {
                    field: name.into(),
                    reason
                }),
                "{name} = {value:?}"
            );
        }
        let mut unknown = valid();
        unknown.push(field("owner", b"x"));
        assert_eq!(decode(unknown).unwrap_err().reason, "unknown field");
        let mut bad_key = valid();
        bad_key.push((b"d:\xff".to_vec(), vec![0x01]));
        assert_eq!(
            decode(bad_key).unwrap_err().reason,
            "session key is not UTF-8"
        );
    }

    #[test]
    fn a_marker_decodes_as_renewed() {
        let until = Stored::Renewed {
            until: UnixTime::from_secs(1_700_000_900),
        };
        let marker = vec![field("renewed", b"1700000900"), field("tag", b"x")];
        assert_eq!(decode(marker.clone()), Ok(until.clone()));
        let mut reversed = marker;
        reversed.reverse();
        assert_eq!(decode(reversed), Ok(until.clone()));
        // The tag is the retire script's business alone.
        assert_eq!(decode(vec![field("renewed", b"1700000900")]), Ok(until));
    }

    #[test]
    fn a_damaged_marker_is_corrupt() {
        assert_eq!(
            decode(vec![field("renewed", b"soon"), field("tag", b"x")]),
            Err(Corrupt {
                field: "renewed".into(),
                reason: "timestamp is not a number"
            })
        );
        // A marker and a session at once is neither.
        for session_field in valid() {
            let fields = vec![field("renewed", b"1700000900"), session_field.clone()];
            assert_eq!(
                decode(fields).unwrap_err().reason,
                "a renewed id's marker holds session fields",
                "{:?}",
                String::from_utf8_lossy(&session_field.0)
            );
        }
        // A tag alone is no marker, and no session either.
        assert_eq!(
            decode(vec![field("tag", b"x")]).unwrap_err().reason,
            "missing"
        );
    }

    #[test]
    fn a_tombstone_decodes_as_ended_and_alone() {
        assert_eq!(
            decode(vec![field("ended", b"1700000900")]),
            Ok(Stored::Ended)
        );
        assert_eq!(
            decode(vec![field("ended", b"soon")]).unwrap_err().reason,
            "timestamp is not a number"
        );
        for other in [field("expires", b"1700000600"), field("renewed", b"1")] {
            let fields = vec![field("ended", b"1700000900"), other];
            assert_eq!(
                decode(fields).unwrap_err().reason,
                "a tombstone holds other fields"
            );
        }
    }

    #[test]
    fn a_generation_decodes_and_a_session_without_one_is_of_none() {
        let mut fields = valid();
        fields.push(field("user", b"ada"));
        assert_eq!(live(fields.clone()).unwrap().generation, 0);
        fields.push(field("gen", b"3"));
        let record = live(fields.clone()).unwrap();
        assert_eq!(
            (record.user.as_deref(), record.generation),
            (Some("ada"), 3)
        );
        fields.push(field("gen", b"x"));
        assert_eq!(decode(fields).unwrap_err().reason, "does not decode");
    }

    #[test]
    fn hostile_nesting_is_refused_not_followed() {
        let mut deep = vec![0x91; 100_000];
        deep.push(0x01);
        let mut fields = valid();
        fields.push(field("d:deep", &deep));
        assert_eq!(
            decode(fields).unwrap_err().reason,
            "value is not MessagePack"
        );
    }

    #[test]
    fn a_data_field_argument_is_the_data_field() {
        for key in ["counter", "", "d:x", "\u{e9}t\u{e9}"] {
            assert_eq!(
                DataField(key).to_redis_args(),
                vec![data_field(key).into_bytes()]
            );
        }
    }

    #[test]
    fn user_keys_cannot_reach_the_metadata() {
        for key in [
            "created", "expires", "flash", "renewed", "tag", "sz", "f:1", "",
        ] {
            assert!(data_field(key).starts_with(DATA_PREFIX));
        }
    }
}
