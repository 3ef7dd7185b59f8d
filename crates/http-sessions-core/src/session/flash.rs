//! Flash messages: a bounded [`FlashQueue`] of [`Flash`]es, each with a
//! [`FlashLevel`], kept beside the session map and popped when read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How important a flash message is, from least to most.
///
/// # Examples
///
/// ```
/// use http_sessions_core::FlashLevel;
/// assert!(FlashLevel::Debug < FlashLevel::Info);
/// assert!(FlashLevel::Warning < FlashLevel::Error);
/// assert_eq!(FlashLevel::default(), FlashLevel::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FlashLevel {
    /// Diagnostics for developers.
    Debug,
    /// Ordinary news; the level of [`Session::flash`](crate::Session::flash).
    #[default]
    Info,
    /// Something the user asked for worked.
    Success,
    /// Something the user should look at.
    Warning,
    /// Something failed.
    Error,
}

impl FlashLevel {
    /// Every level, in order.
    pub const ALL: [FlashLevel; 5] = [
        FlashLevel::Debug,
        FlashLevel::Info,
        FlashLevel::Success,
        FlashLevel::Warning,
        FlashLevel::Error,
    ];

    /// The level's stable number, as stored.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The level numbered `n`, if there is one.
    pub fn from_u8(n: u8) -> Option<Self> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// The level's lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlashLevel::Debug => "debug",
            FlashLevel::Info => "info",
            FlashLevel::Success => "success",
            FlashLevel::Warning => "warning",
            FlashLevel::Error => "error",
        }
    }
}

impl fmt::Display for FlashLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FlashLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for FlashLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        Self::from_u8(n)
            .ok_or_else(|| serde::de::Error::custom(format_args!("unknown flash level {n}")))
    }
}

/// One flash message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Its level.
    pub level: FlashLevel,
    /// Its text.
    pub message: String,
}

/// The default bound of a flash queue.
pub const DEFAULT_FLASH_CAPACITY: usize = 16;

/// The most bytes of message text a queue holds. With it, flash messages
/// alone can never push a cookie session past the 4096 bytes a cookie may
/// have: a longer message is cut to this size (ending in `…`), and older
/// messages make room for newer ones.
pub const FLASH_MAX_BYTES: usize = 2048;

/// Flash messages waiting to be read, oldest first, at most `capacity` of
/// them and at most [`FLASH_MAX_BYTES`] of text: pushing onto a full queue
/// drops the oldest.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{FlashLevel, FlashQueue};
///
/// let mut q = FlashQueue::with_capacity(2);
/// q.push(FlashLevel::Info, "one".into());
/// q.push(FlashLevel::Error, "two".into());
/// q.push(FlashLevel::Info, "three".into()); // "one" is dropped
/// assert_eq!(q.pop(FlashLevel::Info).as_deref(), Some("three"));
/// assert_eq!(q.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct FlashQueue {
    /// Oldest first. A `Vec`, not a `VecDeque`: at most a few dozen
    /// messages shift in no time, and every stored record is a word
    /// smaller.
    items: Vec<Flash>,
    capacity: usize,
}

/// Two queues are equal when they hold the same messages in the same
/// order: the capacity is the reader's setting, not part of the state.
impl PartialEq for FlashQueue {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl Eq for FlashQueue {}

impl Default for FlashQueue {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_FLASH_CAPACITY)
    }
}

impl FlashQueue {
    /// An empty queue that holds at most `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a message; drops the oldest while the queue is full.
    pub fn push(&mut self, level: FlashLevel, mut message: String) {
        if message.len() > FLASH_MAX_BYTES {
            let mut end = FLASH_MAX_BYTES - '…'.len_utf8();
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let mut bytes: usize = self.items.iter().map(|f| f.message.len()).sum();
        let mut dropped = 0;
        for old in &self.items {
            if self.items.len() - dropped < self.capacity
                && bytes + message.len() <= FLASH_MAX_BYTES
            {
                break;
            }
            bytes -= old.message.len();
            dropped += 1;
        }
        self.items.drain(..dropped);
        self.items.push(Flash { level, message });
    }

    /// Takes the oldest message of `level`.
    pub fn pop(&mut self, level: FlashLevel) -> Option<String> {
        let at = self.items.iter().position(|f| f.level == level)?;
        Some(self.items.remove(at).message)
    }

    /// Takes every message, oldest first.
    pub fn take_all(&mut self) -> Vec<Flash> {
        self.items.drain(..).collect()
    }

    /// The waiting messages, oldest first, without taking them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Flash> {
        self.items.iter()
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the bound, dropping the oldest messages over it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        let over = self.items.len().saturating_sub(self.capacity);
        self.items.drain(..over);
    }

    /// Encodes the messages as MessagePack (an array of `[level, text]`).
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.msgpack_len_bound());
        self.write_msgpack(&mut out);
        out
    }

    /// At most how many bytes [`write_msgpack`](Self::write_msgpack)
    /// appends: at most 5 of array header, and per message at most 8 of
    /// framing besides its text.
    pub fn msgpack_len_bound(&self) -> usize {
        5 + self
            .items
            .iter()
            .map(|f| f.message.len() + 8)
            .sum::<usize>()
    }

    /// Appends the messages to `out` as [`to_msgpack`](Self::to_msgpack)
    /// encodes them: the same bytes as serializing the queue with
    /// rmp-serde.
    pub fn write_msgpack(&self, out: &mut Vec<u8>) {
        use rmp::encode;
        // Writing to a vector cannot fail, and a queue never holds more
        // than u32::MAX messages or a message of more than u32::MAX bytes
        // (both are bounded far lower).
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let _ = encode::write_array_len(out, len(self.items.len()));
        for flash in &self.items {
            let _ = encode::write_array_len(out, 2);
            let _ = encode::write_uint(out, u64::from(flash.level.as_u8()));
            let _ = encode::write_str(out, &flash.message);
        }
    }

    /// Decodes messages written by [`to_msgpack`](Self::to_msgpack), keeping
    /// the newest `capacity` of them.
    ///
    /// # Errors
    ///
    /// What is wrong with `bytes` if they are not such messages, or if
    /// anything follows them.
    pub fn from_msgpack(bytes: &[u8], capacity: usize) -> Result<Self, rmp_serde::decode::Error> {
        use rmp::decode;
        let bad = |what: &str| rmp_serde::decode::Error::Syntax(format!("flash queue: {what}"));
        let mut rd = bytes;
        let n = decode::read_array_len(&mut rd).map_err(|_| bad("not an array"))?;
        // Every message takes at least 3 bytes: never reserve for more.
        let mut items = Vec::with_capacity((n as usize).min(rd.len() / 3));
        for _ in 0..n {
            if decode::read_array_len(&mut rd).map_err(|_| bad("message is not an array"))? != 2 {
                return Err(bad("message is not [level, text]"));
            }
            let level: u8 =
                decode::read_int(&mut rd).map_err(|_| bad("level is not a small number"))?;
            let level = FlashLevel::from_u8(level).ok_or_else(|| bad("unknown level"))?;
            let text_len =
                decode::read_str_len(&mut rd).map_err(|_| bad("text is not a string"))?;
            let (text, rest) = rd
                .split_at_checked(text_len as usize)
                .ok_or_else(|| bad("text runs past the end"))?;
            let text = std::str::from_utf8(text).map_err(|_| bad("text is not UTF-8"))?;
            rd = rest;
            items.push(Flash {
                level,
                message: text.to_owned(),
            });
        }
        if !rd.is_empty() {
            return Err(bad("bytes after the last message"));
        }
        let mut q = Self { items, capacity };
        q.set_capacity(capacity);
        Ok(q)
    }
}

impl Serialize for FlashQueue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de> Deserialize<'de> for FlashQueue {
    /// Deserializes with the default capacity; the session layer applies the
    /// configured one after loading.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<Flash>::deserialize(d)?;
        let mut q = Self {
            items,
            capacity: DEFAULT_FLASH_CAPACITY,
        };
        q.set_capacity(DEFAULT_FLASH_CAPACITY);
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_messages_per_level_pop_in_order() {
        let mut q = FlashQueue::default();
        q.push(FlashLevel::Info, "a".into());
        q.push(FlashLevel::Warning, "w".into());
        q.push(FlashLevel::Info, "b".into());
        assert_eq!(q.pop(FlashLevel::Info).as_deref(), Some("a"));
        assert_eq!(q.pop(FlashLevel::Info).as_deref(), Some("b"));
        assert_eq!(q.pop(FlashLevel::Info), None);
        assert_eq!(q.pop(FlashLevel::Warning).as_deref(), Some("w"));
    }

    #[test]
    fn full_queue_drops_oldest() {
        let mut q = FlashQueue::with_capacity(3);
        for i in 0..10 {
            q.push(FlashLevel::Info, i.to_string());
        }
        let left: Vec<_> = q.take_all().into_iter().map(|f| f.message).collect();
        assert_eq!(left, ["7", "8", "9"]);
    }

    #[test]
    fn text_is_bounded_too() {
        let mut q = FlashQueue::default();
        q.push(FlashLevel::Info, "é".repeat(FLASH_MAX_BYTES));
        let all = q.iter().map(|f| f.message.len()).sum::<usize>();
        assert!(all <= FLASH_MAX_BYTES);
        assert!(q.iter().next().unwrap().message.ends_with('…'));
        for _ in 0..10 {
            q.push(FlashLevel::Info, "x".repeat(500));
        }
        let all = q.iter().map(|f| f.message.len()).sum::<usize>();
        assert!(all <= FLASH_MAX_BYTES, "{all}");
        assert_eq!(q.len(), 4);
    }

    #[test]
    fn msgpack_round_trip_and_levels() {
        let mut q = FlashQueue::default();
        for level in FlashLevel::ALL {
            q.push(level, level.to_string());
        }
        // The same bytes as rmp-serde's, so either side can read the other.
        assert_eq!(q.to_msgpack(), rmp_serde::to_vec(&q).unwrap());
        assert!(q.to_msgpack().len() <= q.msgpack_len_bound());
        let back = FlashQueue::from_msgpack(&q.to_msgpack(), 16).unwrap();
        assert_eq!(back, q);
        assert!(FlashQueue::from_msgpack(&[0x91, 0x92, 9, 0xa0], 16).is_err());
        assert!(FlashQueue::from_msgpack(b"\xff", 16).is_err());
        // Trailing bytes, an unknown level, text that is not UTF-8, and a
        // length far beyond the input (refused without reserving for it).
        assert!(FlashQueue::from_msgpack(&[0x90, 0x90], 16).is_err());
        assert!(FlashQueue::from_msgpack(&[0x91, 0x92, 5, 0xa0], 16).is_err());
        assert!(FlashQueue::from_msgpack(&[0x91, 0x92, 1, 0xa1, 0xff], 16).is_err());
        assert!(FlashQueue::from_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff], 16).is_err());
        // The newest messages are kept when the capacity is smaller.
        let two = FlashQueue::from_msgpack(&q.to_msgpack(), 2).unwrap();
        assert_eq!(two.len(), 2);
    }
}
