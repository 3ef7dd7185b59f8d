//! [`SessionData`]: a session's values by key, in key order.

use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::session::data_key::DataKey;
use crate::session::value::Value;

/// A session's values by key, kept in key order so that printing and
/// encoding are stable.
///
/// It is a sorted vector rather than a tree: a session holds a handful of
/// keys, so a binary search over one contiguous allocation finds a key as
/// fast as a tree does, while a loaded session costs one allocation of
/// exactly its size (a tree node has room for eleven entries whatever the
/// session holds), and a map read in key order, as every store writes it,
/// is built by appending.
///
/// # Examples
///
/// ```
/// use http_sessions_core::store::{SessionData, Value};
///
/// let mut data = SessionData::new();
/// data.insert("user".into(), Value::encode("alice")?);
/// data.insert("cart".into(), Value::encode(&[3, 4])?);
/// let user: Option<String> = data.get("user").map(Value::decode).transpose()?;
/// assert_eq!(user.as_deref(), Some("alice"));
/// assert_eq!(data.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["cart", "user"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionData {
    /// Strictly increasing by key.
    entries: Vec<(DataKey, Value)>,
}

impl SessionData {
    /// An empty map; it allocates nothing until a value is inserted.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every value, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Where `key` is, or where it would go.
    fn search(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = self.search(key).ok()?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// The value under `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.search(key).ok()?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Whether there is a value under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.search(key).is_ok()
    }

    /// Puts `value` under `key` and returns the value it replaces.
    ///
    /// A key past every key already there (as when reading a map written in
    /// key order) is appended after a single comparison.
    pub fn insert(&mut self, key: DataKey, value: Value) -> Option<Value> {
        if self.entries.last().is_none_or(|(last, _)| *last < key) {
            self.entries.push((key, value));
            return None;
        }
        match self.search(&key) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|(_, slot)| std::mem::replace(slot, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Takes the value under `key` out of the map.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.search(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &DataKey> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Sorts entries that came in any order; of entries with the same key,
    /// the last one stays, as if each had been inserted in turn.
    fn from_entries(mut entries: Vec<(DataKey, Value)>) -> Self {
        let in_order = entries.windows(2).all(|w| match w {
            [(a, _), (b, _)] => a < b,
            _ => true,
        });
        if !in_order {
            // Stable, so equal keys keep their order and the last can win.
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        }
        Self { entries }
    }
}

/// Iterator over a [`SessionData`]'s keys and values, in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (DataKey, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a DataKey, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a SessionData {
    type Item = (&'a DataKey, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for SessionData {
    type Item = (DataKey, Value);
    type IntoIter = std::vec::IntoIter<(DataKey, Value)>;

    /// The keys and values, in key order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(DataKey, Value)> for SessionData {
    /// Collects entries in any order; with repeated keys, the last value
    /// stays.
    fn from_iter<I: IntoIterator<Item = (DataKey, Value)>>(iter: I) -> Self {
        Self::from_entries(iter.into_iter().collect())
    }
}

impl Extend<(DataKey, Value)> for SessionData {
    fn extend<I: IntoIterator<Item = (DataKey, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for SessionData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SessionData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = SessionData;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of session values")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<SessionData, A::Error> {
                // The size hint comes from the input: capped, so a forged
                // length cannot reserve unbounded memory.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
                while let Some(entry) = map.next_entry::<DataKey, Value>()? {
                    entries.push(entry);
                }
                Ok(SessionData::from_entries(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Writes `{k1: v1, k2: v2}` in key order.
pub(crate) fn write_map(f: &mut fmt::Formatter<'_>, data: &SessionData) -> fmt::Result {
    f.write_char('{')?;
    for (i, (k, v)) in data.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{k}: {v}")?;
    }
    f.write_char('}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> Value {
        Value::encode(&n).unwrap()
    }

    fn keys(data: &SessionData) -> Vec<&str> {
        data.keys().map(DataKey::as_str).collect()
    }

    #[test]
    fn inserts_in_any_order_keep_keys_sorted_and_unique() {
        let mut data = SessionData::new();
        for (i, k) in ["m", "b", "z", "a", "m", "c"].into_iter().enumerate() {
            let replaced = data.insert(k.into(), v(i as u32));
            assert_eq!(replaced.is_some(), k == "m" && i == 4, "{k}");
        }
        assert_eq!(keys(&data), ["a", "b", "c", "m", "z"]);
        assert_eq!(data.get("m").unwrap().decode::<u32>().unwrap(), 4);
        assert_eq!(data.remove("b").unwrap().decode::<u32>().unwrap(), 1);
        assert!(data.remove("b").is_none());
        assert!(!data.contains_key("b") && data.contains_key("z"));
        *data.get_mut("a").unwrap() = v(9);
        assert_eq!(data.get("a"), Some(&v(9)));
        assert_eq!(data.len(), 4);
        data.clear();
        assert!(data.is_empty() && data.get("a").is_none());
    }

    #[test]
    fn orders_keys_by_their_bytes() {
        let data: SessionData = ["é", "Z", "a", "ab", ""]
            .into_iter()
            .map(|k| (DataKey::from(k), v(0)))
            .collect();
        assert_eq!(keys(&data), ["", "Z", "a", "ab", "é"]);
    }

    #[test]
    fn collecting_keeps_the_last_of_repeated_keys() {
        let entries = [("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5), ("b", 6)];
        let data: SessionData = entries
            .into_iter()
            .map(|(k, n)| (DataKey::from(k), v(n)))
            .collect();
        let got: Vec<(&str, u32)> = data
            .iter()
            .map(|(k, x)| (k.as_str(), x.decode().unwrap()))
            .collect();
        assert_eq!(got, [("a", 4), ("b", 6), ("c", 5)]);
        // The same through inserts one by one.
        let mut one_by_one = SessionData::new();
        one_by_one.extend(entries.into_iter().map(|(k, n)| (DataKey::from(k), v(n))));
        assert_eq!(one_by_one, data);
    }

    #[test]
    fn round_trips_through_messagepack_in_any_order() {
        let mut data = SessionData::new();
        data.insert("user".into(), v(1));
        data.insert("cart".into(), v(2));
        let bytes = rmp_serde::to_vec(&data).unwrap();
        assert_eq!(rmp_serde::from_slice::<SessionData>(&bytes).unwrap(), data);
        // A map written out of order reads sorted.
        let mut unordered = std::collections::HashMap::new();
        unordered.insert("z", v(1));
        unordered.insert("a", v(2));
        let back: SessionData =
            rmp_serde::from_slice(&rmp_serde::to_vec(&unordered).unwrap()).unwrap();
        assert_eq!(keys(&back), ["a", "z"]);
    }

    #[test]
    fn a_map_prints_in_key_order_with_struct_values_by_field_name() {
        #[derive(serde::Serialize)]
        struct Cart {
            items: Vec<&'static str>,
        }
        let mut data = SessionData::new();
        let cart = Cart {
            items: vec!["tea", "cake"],
        };
        data.insert("cart".into(), Value::encode(&cart).unwrap());
        data.insert("a".into(), Value::encode(&1).unwrap());
        struct Shown<'a>(&'a SessionData);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_map(f, self.0)
            }
        }
        assert_eq!(
            Shown(&data).to_string(),
            "{a: 1, cart: {items: [tea, cake]}}"
        );
    }
}
