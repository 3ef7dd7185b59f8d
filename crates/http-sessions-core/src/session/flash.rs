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
/// Each message carries an id, unique within its session and growing with
/// the time it was pushed: a request tells the store which messages it
/// took and which it added ([`FlashChanges`]), never the queue whole, so a
/// message read by one request is not brought back by a concurrent one,
/// and two concurrent pushes both land.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{FlashLevel, store::FlashQueue};
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
    /// Oldest first, by id. A `Vec`, not a `VecDeque`: at most a few dozen
    /// messages shift in no time, and every stored record is a word
    /// smaller.
    items: Vec<(u64, Flash)>,
    capacity: usize,
}

/// What a request did to a flash queue, message by message: a store
/// removes the messages `taken` and adds those `pushed` from the request's
/// queue, keeping what concurrent requests did to the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlashChanges {
    /// Ids of the messages read or dropped: remove them.
    pub taken: Vec<u64>,
    /// Ids of the messages added: copy them from the request's queue.
    pub pushed: Vec<u64>,
}

impl FlashChanges {
    /// Whether the queue is unchanged.
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.pushed.is_empty()
    }

    /// Records that message `id` left the queue. One this request pushed
    /// was never stored: it is simply not pushed.
    pub(crate) fn take(&mut self, id: u64) {
        match self.pushed.iter().position(|&p| p == id) {
            Some(at) => {
                self.pushed.remove(at);
            }
            None => self.taken.push(id),
        }
    }
}

/// Two queues are equal when they hold the same messages in the same
/// order: the capacity is the reader's setting, not part of the state.
impl PartialEq for FlashQueue {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for FlashQueue {}

impl Default for FlashQueue {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_FLASH_CAPACITY)
    }
}

/// `message` cut to [`FLASH_MAX_BYTES`], ending in `…` if it was longer.
fn bounded(mut message: String) -> String {
    if message.len() > FLASH_MAX_BYTES {
        let mut end = FLASH_MAX_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

impl FlashQueue {
    /// An empty queue that holds at most `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// A queue of these messages, each under its id (as a store keeps
    /// them), oldest first by id; the oldest go past `capacity` or
    /// [`FLASH_MAX_BYTES`].
    pub fn from_entries(entries: impl IntoIterator<Item = (u64, Flash)>, capacity: usize) -> Self {
        let mut items: Vec<(u64, Flash)> = entries.into_iter().collect();
        items.sort_by_key(|(id, _)| *id);
        items.dedup_by_key(|(id, _)| *id);
        let mut q = Self {
            items,
            capacity: capacity.max(1),
        };
        q.trim(None, |_| {});
        q
    }

    /// Adds a message; drops the oldest while the queue is full.
    pub fn push(&mut self, level: FlashLevel, message: String) {
        self.push_after(level, message, 0, |_| {});
    }

    /// Adds a message under an id of at least `floor` and past every id
    /// queued, calling `dropped` with the id of each message it drops to
    /// make room; returns the new message's id.
    pub(crate) fn push_after(
        &mut self,
        level: FlashLevel,
        message: String,
        floor: u64,
        dropped: impl FnMut(u64),
    ) -> u64 {
        let message = bounded(message);
        let last = self.items.last().map_or(0, |(id, _)| *id);
        let id = floor.max(last.saturating_add(1));
        self.trim(Some(message.len()), dropped);
        self.items.push((id, Flash { level, message }));
        id
    }

    /// Drops the oldest messages until the queue is within its bounds
    /// with room for an incoming message of this many bytes, if any.
    fn trim(&mut self, incoming: Option<usize>, mut dropped: impl FnMut(u64)) {
        let (extra, room) = incoming.map_or((0, 0), |len| (1, len));
        let mut bytes: usize = self.items.iter().map(|(_, f)| f.message.len()).sum();
        let mut n = 0;
        for (id, old) in &self.items {
            if self.items.len() - n + extra <= self.capacity && bytes + room <= FLASH_MAX_BYTES {
                break;
            }
            bytes -= old.message.len();
            dropped(*id);
            n += 1;
        }
        self.items.drain(..n);
    }

    /// Takes the oldest message of `level`.
    pub fn pop(&mut self, level: FlashLevel) -> Option<String> {
        self.pop_entry(level).map(|(_, f)| f.message)
    }

    /// Takes the oldest message of `level`, with its id.
    pub(crate) fn pop_entry(&mut self, level: FlashLevel) -> Option<(u64, Flash)> {
        let at = self.items.iter().position(|(_, f)| f.level == level)?;
        Some(self.items.remove(at))
    }

    /// Takes every message, oldest first.
    pub fn take_all(&mut self) -> Vec<Flash> {
        self.items.drain(..).map(|(_, f)| f).collect()
    }

    /// Takes every message, oldest first, calling `taken` with each id.
    pub(crate) fn take_all_with(&mut self, mut taken: impl FnMut(u64)) -> Vec<Flash> {
        self.items
            .drain(..)
            .map(|(id, f)| {
                taken(id);
                f
            })
            .collect()
    }

    /// The waiting messages, oldest first, without taking them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Flash> {
        self.items.iter().map(|(_, f)| f)
    }

    /// The waiting messages with their ids, oldest first: what a store
    /// that keeps each message on its own writes.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u64, &Flash)> {
        self.items.iter().map(|(id, f)| (*id, f))
    }

    /// The message with id `id`, if it waits.
    pub fn get(&self, id: u64) -> Option<&Flash> {
        self.items
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|at| self.items.get(at))
            .map(|(_, flash)| flash)
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
        self.set_capacity_with(capacity, |_| {});
    }

    /// [`set_capacity`](Self::set_capacity), calling `dropped` with the id
    /// of each message it drops.
    pub(crate) fn set_capacity_with(&mut self, capacity: usize, dropped: impl FnMut(u64)) {
        self.capacity = capacity.max(1);
        self.trim(None, dropped);
    }

    /// Applies what a request did (`changes`, to its queue `from`) to this
    /// queue as stored: the messages it took go, those it pushed are
    /// added, and the oldest go past the bounds of `from`.
    pub fn merge(&mut self, from: &FlashQueue, changes: &FlashChanges) {
        self.items.retain(|(id, _)| !changes.taken.contains(id));
        for &id in &changes.pushed {
            let Some(flash) = from.get(id) else { continue };
            if let Err(at) = self.items.binary_search_by_key(&id, |(i, _)| *i) {
                self.items.insert(at, (id, flash.clone()));
            }
        }
        self.capacity = from.capacity;
        self.trim(None, |_| {});
    }

    /// The bytes the messages count for in the session size bound: their
    /// text and 8 bytes each.
    pub fn counted_len(&self) -> usize {
        self.items.iter().map(|(_, f)| f.message.len() + 8).sum()
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
    fn every_level_round_trips_through_the_codec() {
        use crate::session::codec;
        let mut q = FlashQueue::default();
        for level in FlashLevel::ALL {
            q.push(level, level.to_string());
        }
        let mut bytes = Vec::new();
        codec::write_flashes(&mut bytes, &q);
        assert_eq!(codec::read_flashes(&bytes, 16).unwrap(), q);
        // The newest messages are kept when the capacity is smaller.
        assert_eq!(codec::read_flashes(&bytes, 2).unwrap().len(), 2);
    }
}
