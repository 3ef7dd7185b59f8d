//! A session as its rows hold it, and what a save writes from a record:
//! the same columns on every database, decoded and checked in one place.

use http_sessions_core::store::{Expiry, Flash, FlashQueue, Loaded, Record, UnixTime, Value};
use http_sessions_core::{FlashLevel, store::SessionData};

/// One id's row and the rows of its values and flash messages, as read.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) renewed: bool,
    pub(crate) created: i64,
    pub(crate) expires: i64,
    pub(crate) expiry: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) generation: i64,
    /// Keys and their MessagePack values.
    pub(crate) values: Vec<(Vec<u8>, Vec<u8>)>,
    /// Flash message ids (8 bytes, big-endian), levels and texts.
    pub(crate) flashes: Vec<(Vec<u8>, i16, String)>,
}

/// Why stored rows are not a session: the column at fault and what is
/// wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    pub(crate) column: &'static str,
    pub(crate) reason: &'static str,
}

fn corrupt(column: &'static str, reason: &'static str) -> Corrupt {
    Corrupt { column, reason }
}

fn time(column: &'static str, secs: i64) -> Result<UnixTime, Corrupt> {
    u64::try_from(secs)
        .map(UnixTime::from_secs)
        .map_err(|_| corrupt(column, "a negative time"))
}

impl Rows {
    /// What a load at `now` finds: the session, or that it has expired;
    /// the marker of a renewed id until its time, or nothing. Every column
    /// must decode, since a session missing part of its state is not the
    /// session its user left.
    pub(crate) fn load(self, now: UnixTime) -> Result<Option<Loaded>, Corrupt> {
        let expires = time("expires", self.expires)?;
        if self.renewed {
            return Ok((now < expires).then_some(Loaded::Renewed));
        }
        let record = self.into_record(expires)?;
        Ok(Some(match record.is_expired(now) {
            true => Loaded::Expired(record),
            false => Loaded::Live(record),
        }))
    }

    /// The record the rows hold, expiring at `expires`.
    pub(crate) fn into_record(self, expires: UnixTime) -> Result<Record, Corrupt> {
        let created = time("created", self.created)?;
        // The layer applies its own flash capacity after loading.
        let mut record = Record::empty(created, expires, usize::MAX);
        let mut data = Vec::with_capacity(self.values.len());
        for (key, value) in self.values {
            let key = String::from_utf8(key).map_err(|_| corrupt("key", "not UTF-8"))?;
            if !Value::is_well_formed(&value) {
                return Err(corrupt("value", "not one MessagePack value"));
            }
            data.push((key.into(), Value::from_msgpack(value)));
        }
        record.data = data.into_iter().collect::<SessionData>();
        let mut messages = Vec::with_capacity(self.flashes.len());
        for (id, level, message) in self.flashes {
            let id = <[u8; 8]>::try_from(id.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("flash id", "not 8 bytes"))?;
            let level = u8::try_from(level)
                .ok()
                .and_then(FlashLevel::from_u8)
                .ok_or(corrupt("flash level", "not a level"))?;
            messages.push((id, Flash { level, message }));
        }
        record.flash = FlashQueue::from_entries(messages, usize::MAX);
        if let Some(text) = self.expiry {
            record.expiry = Expiry::decode(&text).ok_or(corrupt("expiry", "does not decode"))?;
        }
        record.user = self.user;
        record.label = self.label;
        record.generation =
            u64::try_from(self.generation).map_err(|_| corrupt("generation", "negative"))?;
        Ok(record)
    }
}

/// A time as the columns keep it.
pub(crate) fn secs(time: UnixTime) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
}

/// A count or a generation as the columns keep it.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A flash message's id as its column keeps it.
pub(crate) fn flash_id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// A flash message's level as its column keeps it.
pub(crate) fn level(flash: &Flash) -> i16 {
    i16::from(flash.level.as_u8())
}

/// The size a record counts for, as its row keeps it.
pub(crate) fn size(record: &Record) -> i32 {
    i32::try_from(record.encoded_len()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows {
            created: 100,
            expires: 200,
            values: vec![(b"k".to_vec(), vec![0x01])],
            flashes: vec![(7u64.to_be_bytes().to_vec(), 2, "hi".into())],
            expiry: Some("browser".into()),
            user: Some("alice".into()),
            generation: 5,
            ..Rows::default()
        }
    }

    #[test]
    fn rows_decode_into_the_record_they_hold() {
        let Ok(Some(Loaded::Live(record))) = rows().load(UnixTime::from_secs(150)) else {
            panic!("not live");
        };
        assert_eq!(record.data.get("k").map(Value::as_bytes), Some(&[0x01][..]));
        assert_eq!(
            record.flash.entries().map(|(id, _)| id).collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(record.expiry, Expiry::BrowserSession);
        assert_eq!(
            (record.user.as_deref(), record.generation),
            (Some("alice"), 5)
        );
        // At its expiry the same record, as expired.
        assert_eq!(
            rows().load(UnixTime::from_secs(200)),
            Ok(Some(Loaded::Expired(record)))
        );
    }

    #[test]
    fn a_column_that_does_not_decode_makes_the_rows_corrupt() {
        type Spoil = fn(&mut Rows);
        let cases: [(Spoil, &str); 5] = [
            (|r| r.values[0].1 = vec![0x92, 0x01], "value"),
            (|r| r.values[0].0 = vec![0xff], "key"),
            (|r| r.flashes[0].0 = vec![1, 2], "flash id"),
            (|r| r.flashes[0].1 = 99, "flash level"),
            (|r| r.expiry = Some("soon".into()), "expiry"),
        ];
        // Expired or not: an expired session is decoded as a live one.
        for (spoil, column) in cases {
            for now in [150, 200] {
                let mut r = rows();
                spoil(&mut r);
                assert_eq!(
                    r.load(UnixTime::from_secs(now)).err().map(|c| c.column),
                    Some(column),
                    "at {now}"
                );
            }
        }
    }

    #[test]
    fn a_marker_loads_as_renewed_until_its_time() {
        let marker = || Rows {
            renewed: true,
            expires: 200,
            ..Rows::default()
        };
        assert_eq!(
            marker().load(UnixTime::from_secs(199)),
            Ok(Some(Loaded::Renewed))
        );
        assert_eq!(marker().load(UnixTime::from_secs(200)), Ok(None));
    }
}
