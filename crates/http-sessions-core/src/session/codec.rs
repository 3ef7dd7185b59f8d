//! The one MessagePack encoding of a session, written once for every
//! backend: a whole record (the cookie's body) and single flash messages
//! (what a store that keeps each message apart writes). Decoding refuses
//! anything else with a [`CodecError`], never reserves more than its input
//! can hold, and never panics.

use std::fmt;

use rmp::{decode, encode};

use crate::session::data_key::DataKey;
use crate::session::flash::{Flash, FlashLevel, FlashQueue};
use crate::session::record::{Extra, Record};
use crate::session::session_data::SessionData;
use crate::session::time::UnixTime;
use crate::session::value::Value;

/// Why bytes did not decode as a session or a flash message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecError(&'static str);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CodecError {}

/// Writing to a vector cannot fail, and nothing a session holds counts
/// past `u32::MAX` (keys, messages and texts are bounded far lower).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads a MessagePack string.
fn read_str<'b>(rd: &mut &'b [u8], what: &'static str) -> Result<&'b str, CodecError> {
    let len = decode::read_str_len(rd).map_err(|_| CodecError(what))?;
    let (text, rest) = rd.split_at_checked(len as usize).ok_or(CodecError(what))?;
    *rd = rest;
    std::str::from_utf8(text).map_err(|_| CodecError(what))
}

/// At most how many bytes [`write_record`] appends for `record`.
pub fn record_len_bound(record: &Record) -> usize {
    // MessagePack frames a key, a value or a text with at most 5 bytes.
    let data: usize = (record.data.iter())
        .map(|(k, v)| k.len() + v.as_bytes().len() + 10)
        .sum();
    let extras = record.extras_len() + 4 * (10 + 5);
    32 + data + extras + 5 + record.flash.counted_len()
}

/// Appends `record` as `[created, {key: bin}, flash]`, or `[created, {key:
/// bin}, extra, flash]` when it has an expiry of its own, a user, a label
/// or a generation; `extra` maps each [`Extra`]'s name to its text, and
/// `flash` is [`write_flashes`]'s array. The expiry time is not written:
/// the cookie carries it in its header.
pub fn write_record(buf: &mut Vec<u8>, record: &Record) {
    let extra = record.extras();
    let _ = encode::write_array_len(buf, if extra.is_empty() { 3 } else { 4 });
    let _ = encode::write_uint(buf, record.created.as_secs());
    let _ = encode::write_map_len(buf, count(record.data.len()));
    for (key, value) in &record.data {
        let _ = encode::write_str(buf, key);
        let _ = encode::write_bin(buf, value.as_bytes());
    }
    if !extra.is_empty() {
        let _ = encode::write_map_len(buf, count(extra.len()));
        for (name, value) in &extra {
            let _ = encode::write_str(buf, name);
            let _ = encode::write_str(buf, value);
        }
    }
    write_flashes(buf, &record.flash);
}

/// Decodes what [`write_record`] wrote into the record it holds, which
/// ends at `expires`. Every flash message is kept: the layer applies its
/// own capacity after loading.
///
/// # Errors
///
/// What is wrong with `bytes` if they are not such a record.
pub fn read_record(bytes: &[u8], expires: UnixTime) -> Result<Record, CodecError> {
    let mut rd = bytes;
    let fields = decode::read_array_len(&mut rd).map_err(|_| CodecError("not an array"))?;
    if fields != 3 && fields != 4 {
        return Err(CodecError("neither three nor four fields"));
    }
    let created: u64 = decode::read_int(&mut rd).map_err(|_| CodecError("bad created time"))?;
    let len = decode::read_map_len(&mut rd).map_err(|_| CodecError("data is not a map"))?;
    // Keys arrive sorted, so each insert appends. Never more entries
    // than bytes left: a forged length reserves nothing more.
    let mut data = SessionData::with_capacity((len as usize).min(rd.len() / 2));
    for _ in 0..len {
        let key = read_str(&mut rd, "a key is not a string")?;
        let value_len =
            decode::read_bin_len(&mut rd).map_err(|_| CodecError("value is not bytes"))? as usize;
        let (bytes, rest) = rd
            .split_at_checked(value_len)
            .ok_or(CodecError("value runs past the end"))?;
        rd = rest;
        data.insert(DataKey::from(key), Value::copy_from_msgpack(bytes));
    }
    let mut record = Record::empty(UnixTime::from_secs(created), expires, usize::MAX);
    record.data = data;
    if fields == 4 {
        let entries =
            decode::read_map_len(&mut rd).map_err(|_| CodecError("extra is not a map"))?;
        for _ in 0..entries {
            let name = read_str(&mut rd, "an extra's name is not a string")?;
            let value = read_str(&mut rd, "an extra's value is not a string")?;
            let extra = Extra::named(name.as_bytes()).ok_or(CodecError("unknown extra"))?;
            if !record.set_extra(extra, value) {
                return Err(CodecError("an extra does not decode"));
            }
        }
    }
    record.flash = read_flashes(rd, usize::MAX)?;
    Ok(record)
}

/// Appends one flash message as `[level, text]`.
pub fn write_flash(buf: &mut Vec<u8>, flash: &Flash) {
    let _ = encode::write_array_len(buf, 2);
    let _ = encode::write_uint(buf, u64::from(flash.level.as_u8()));
    let _ = encode::write_str(buf, &flash.message);
}

/// Reads one `[level, text]` from the front of `rd`.
fn read_one_flash(rd: &mut &[u8]) -> Result<Flash, CodecError> {
    if decode::read_array_len(rd).map_err(|_| CodecError("message is not an array"))? != 2 {
        return Err(CodecError("message is not [level, text]"));
    }
    let level: u8 = decode::read_int(rd).map_err(|_| CodecError("level is not a small number"))?;
    let level = FlashLevel::from_u8(level).ok_or(CodecError("unknown flash level"))?;
    let message = read_str(rd, "text is not a string")?.to_owned();
    Ok(Flash { level, message })
}

/// Decodes one message [`write_flash`] wrote, and nothing after it.
///
/// # Errors
///
/// What is wrong with `bytes` if they are not one such message.
pub fn read_flash(bytes: &[u8]) -> Result<Flash, CodecError> {
    let mut rd = bytes;
    let flash = read_one_flash(&mut rd)?;
    if !rd.is_empty() {
        return Err(CodecError("bytes after the message"));
    }
    Ok(flash)
}

/// Appends a queue's messages, oldest first, as an array of
/// [`write_flash`]'s; ids are not written.
pub fn write_flashes(buf: &mut Vec<u8>, queue: &FlashQueue) {
    let _ = encode::write_array_len(buf, count(queue.len()));
    for flash in queue.iter() {
        write_flash(buf, flash);
    }
}

/// Decodes what [`write_flashes`] wrote, and nothing after it, numbering
/// the messages from 1 and keeping the newest `capacity`.
///
/// # Errors
///
/// What is wrong with `bytes` if they are not such messages.
pub fn read_flashes(bytes: &[u8], capacity: usize) -> Result<FlashQueue, CodecError> {
    let mut rd = bytes;
    let n =
        decode::read_array_len(&mut rd).map_err(|_| CodecError("flash queue is not an array"))?;
    // Every message takes at least 3 bytes: never reserve for more.
    let mut items = Vec::with_capacity((n as usize).min(rd.len() / 3));
    for id in 1..=u64::from(n) {
        items.push((id, read_one_flash(&mut rd)?));
    }
    if !rd.is_empty() {
        return Err(CodecError("bytes after the last message"));
    }
    Ok(FlashQueue::from_entries(items, capacity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::expiry::Expiry;

    fn record() -> Record {
        let mut r = Record::empty(
            UnixTime::from_secs(1_700_000_000),
            UnixTime::from_secs(1_700_000_600),
            16,
        );
        r.data.insert("a".into(), Value::encode(&1u8).unwrap());
        r.data.insert("b".into(), Value::encode("two").unwrap());
        r
    }

    #[test]
    fn a_record_round_trips_with_and_without_extras() {
        let mut r = record();
        r.flash.push(FlashLevel::Warning, "w".into());
        r.flash.push(FlashLevel::Info, "i".into());
        for extras in [false, true] {
            if extras {
                r.user = Some("ada".into());
                r.label = Some("phone".into());
                r.generation = 42;
                r.expiry = Expiry::BrowserSession;
            }
            let mut buf = Vec::new();
            write_record(&mut buf, &r);
            assert!(buf.len() <= record_len_bound(&r));
            let back = read_record(&buf, r.expires).unwrap();
            assert_eq!(back, r);
        }
    }

    /// The bytes of a record as the current release writes them, pinned:
    /// cookies already issued must keep opening.
    #[test]
    fn the_record_bytes_are_pinned() {
        let mut r = record();
        r.flash.push(FlashLevel::Error, "e".into());
        let mut buf = Vec::new();
        write_record(&mut buf, &r);
        let expected: &[u8] = &[
            0x93, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x82, 0xa1, b'a', 0xc4, 0x01, 0x01, 0xa1, b'b',
            0xc4, 0x04, 0xa3, b't', b'w', b'o', 0x91, 0x92, 0x04, 0xa1, b'e',
        ];
        assert_eq!(buf, expected);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        write_record(&mut buf, &record());
        for end in 0..buf.len() {
            assert!(
                read_record(&buf[..end], UnixTime::from_secs(1)).is_err(),
                "{end}"
            );
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(read_record(&longer, UnixTime::from_secs(1)).is_err());
        // A count far past the input reserves nothing and fails.
        assert!(read_flashes(&[0xdd, 0xff, 0xff, 0xff, 0xff], 16).is_err());
        assert!(read_flash(&[0x92, 9, 0xa0]).is_err(), "unknown level");
        assert!(read_flash(&[0x92, 1, 0xa1, 0xff]).is_err(), "not UTF-8");
        assert!(
            read_flash(&[0x92, 1, 0xa0, 0x00]).is_err(),
            "trailing bytes"
        );
    }

    #[test]
    fn one_message_round_trips_and_matches_the_queue_encoding() {
        let flash = Flash {
            level: FlashLevel::Success,
            message: "saved".into(),
        };
        let mut one = Vec::new();
        write_flash(&mut one, &flash);
        assert_eq!(read_flash(&one).unwrap(), flash);
        let mut queue = FlashQueue::default();
        queue.push(flash.level, flash.message.clone());
        let mut all = Vec::new();
        write_flashes(&mut all, &queue);
        assert_eq!(all[0], 0x91);
        assert_eq!(&all[1..], one.as_slice());
    }
}
