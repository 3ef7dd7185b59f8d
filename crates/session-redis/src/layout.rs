//! How a session sits in Redis: one hash per session, its field names, and
//! decoding a hash read back with `HGETALL` into a [`Record`].
//!
//! | field       | holds                                              |
//! |-------------|----------------------------------------------------|
//! | `d:<key>`   | the value of session key `<key>`, MessagePack      |
//! | `created`   | when the session was created, Unix seconds         |
//! | `expires`   | when it ends unless refreshed, Unix seconds        |
//! | `flash`     | the flash queue, MessagePack (absent when empty)   |
//!
//! Session keys carry the `d:` prefix so that no key a handler chooses can
//! be mistaken for, or overwrite, the metadata.

use std::io::{Cursor, Write};

use deadpool_redis::redis::{RedisWrite, ToRedisArgs};

use serde::Deserialize;
use session_core::{FlashQueue, Record, UnixTime, Value};

/// Field holding the creation time.
pub(crate) const CREATED: &str = "created";
/// Field holding the expiry time.
pub(crate) const EXPIRES: &str = "expires";
/// Field holding the flash queue.
pub(crate) const FLASH: &str = "flash";
/// Prefix of the fields holding session values.
pub(crate) const DATA_PREFIX: &str = "d:";

/// Deepest MessagePack nesting accepted in a stored value: the same bound
/// session-core's decoder keeps, so a hostile value cannot exhaust the
/// stack here either.
const MAX_DEPTH: usize = 64;

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

/// Decodes the fields of a session's hash (as `HGETALL` returns them, in any
/// order) into a record.
///
/// Every field must decode: a value that is not exactly one MessagePack
/// value, a timestamp that is not a number, a missing timestamp or a field
/// this version does not know all make the whole session corrupt, since a
/// session missing part of its state is not the session its user left.
pub(crate) fn decode<I>(fields: I) -> Result<Record, Corrupt>
where
    I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
{
    // In the hash's order: sorted once at the end.
    let mut data = Vec::new();
    let mut created = None;
    let mut expires = None;
    // The layer applies its own capacity after loading; keeping every stored
    // message here leaves that choice to it.
    let mut flash = FlashQueue::with_capacity(usize::MAX);
    for (name, value) in fields {
        if let Some(key) = name.strip_prefix(DATA_PREFIX.as_bytes()) {
            let key = std::str::from_utf8(key)
                .map_err(|_| Corrupt::new(&name, "session key is not UTF-8"))?;
            if !is_one_msgpack_value(&value) {
                return Err(Corrupt::new(&name, "value is not MessagePack"));
            }
            data.push((key.into(), Value::from_msgpack(value)));
        } else if name == CREATED.as_bytes() {
            created = Some(timestamp(&name, &value)?);
        } else if name == EXPIRES.as_bytes() {
            expires = Some(timestamp(&name, &value)?);
        } else if name == FLASH.as_bytes() {
            flash = FlashQueue::from_msgpack(&value, usize::MAX)
                .map_err(|_| Corrupt::new(&name, "flash queue is not MessagePack"))?;
        } else {
            return Err(Corrupt::new(&name, "unknown field"));
        }
    }
    let created = created.ok_or_else(|| Corrupt::new(CREATED.as_bytes(), "missing"))?;
    let expires = expires.ok_or_else(|| Corrupt::new(EXPIRES.as_bytes(), "missing"))?;
    Ok(Record {
        data: data.into_iter().collect(),
        flash,
        created,
        expires,
    })
}

/// A timestamp as the script writes it: decimal Unix seconds.
fn timestamp(name: &[u8], value: &[u8]) -> Result<UnixTime, Corrupt> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .map(UnixTime::from_secs)
        .ok_or_else(|| Corrupt::new(name, "timestamp is not a number"))
}

/// Whether `bytes` are exactly one well-formed MessagePack value, nothing
/// missing and nothing after it.
fn is_one_msgpack_value(bytes: &[u8]) -> bool {
    let mut de = rmp_serde::Deserializer::new(Cursor::new(bytes));
    de.set_max_depth(MAX_DEPTH);
    serde::de::IgnoredAny::deserialize(&mut de).is_ok()
        && usize::try_from(de.position()).is_ok_and(|read| read == bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::FlashLevel;

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
            field("flash", &queue.to_msgpack()),
            field("d:d:nested", Value::encode(&[1, 2, 3]).unwrap().as_bytes()),
        ]
    }

    #[test]
    fn a_whole_hash_decodes_in_any_order() {
        let record = decode(valid()).unwrap();
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
        assert_eq!(decode(reversed).unwrap(), record);
    }

    #[test]
    fn the_flash_field_is_optional() {
        let fields = valid().into_iter().filter(|(n, _)| n != b"flash");
        assert!(decode(fields).unwrap().flash.is_empty());
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
        for key in ["created", "expires", "flash", ""] {
            assert!(data_field(key).starts_with(DATA_PREFIX));
        }
    }
}
