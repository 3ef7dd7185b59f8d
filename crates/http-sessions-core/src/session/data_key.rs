//! [`DataKey`]: the name a value is stored under in a session.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name a value is stored under in a session: a string that holds up
/// to 24 bytes without a heap allocation, so the short names sessions use
/// (`user`, `cart`, `csrf`) cost nothing to copy into a loaded session.
///
/// It orders, compares and hashes as the `str` it holds, and a map keyed by
/// it is looked up with a `&str`.
///
/// # Examples
///
/// ```
/// use http_sessions_core::store::{DataKey, SessionData, Value};
///
/// let mut data = SessionData::new();
/// data.insert(DataKey::from("user"), Value::encode("alice")?);
/// assert!(data.contains_key("user"));
/// assert_eq!(DataKey::from("user"), "user");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct DataKey(CompactString);

/// Hashes as the `str` it holds, as [`Borrow<str>`] requires.
impl std::hash::Hash for DataKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Compared byte by byte, as `str` compares: names are short, and a map
/// of them (built on every load) compares neighbours many times, where a
/// call to `memcmp` per comparison costs more than the bytes.
impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.as_bytes(), other.as_bytes());
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
    }
}

impl Eq for DataKey {}

impl PartialOrd for DataKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DataKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.as_bytes(), other.as_bytes());
        a.iter()
            .zip(b)
            .find(|(x, y)| x != y)
            .map_or_else(|| a.len().cmp(&b.len()), |(x, y)| x.cmp(y))
    }
}

impl DataKey {
    /// The name as a `str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for DataKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for DataKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DataKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for DataKey {
    fn from(name: &str) -> Self {
        Self(CompactString::from(name))
    }
}

impl From<&String> for DataKey {
    fn from(name: &String) -> Self {
        Self::from(name.as_str())
    }
}

impl From<String> for DataKey {
    fn from(name: String) -> Self {
        Self(CompactString::from(name))
    }
}

impl From<Box<str>> for DataKey {
    fn from(name: Box<str>) -> Self {
        Self(CompactString::from(name))
    }
}

impl From<Cow<'_, str>> for DataKey {
    fn from(name: Cow<'_, str>) -> Self {
        Self(CompactString::from(name))
    }
}

impl From<&DataKey> for DataKey {
    fn from(name: &DataKey) -> Self {
        name.clone()
    }
}

impl From<DataKey> for String {
    fn from(name: DataKey) -> Self {
        name.0.into_string()
    }
}

impl PartialEq<str> for DataKey {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DataKey {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for DataKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for DataKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrowed where the input allows, so a short name is never
        // allocated on the way in.
        let name: Cow<'de, str> = Deserialize::deserialize(d)?;
        Ok(Self::from(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn orders_and_looks_up_as_its_str() {
        let names = ["b", "a", "a-much-longer-name-than-fits-inline", "ä", ""];
        let map: BTreeMap<DataKey, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).into(), i))
            .collect();
        let mut sorted = names.to_vec();
        sorted.sort();
        assert_eq!(map.keys().map(DataKey::as_str).collect::<Vec<_>>(), sorted);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(map.get(*n), Some(&i));
        }
        // Hashes as its str too: a hash map keyed by it is found by &str.
        let hashed: std::collections::HashMap<DataKey, usize> =
            map.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(hashed.get(*n), Some(&i));
        }
    }

    #[test]
    fn round_trips_through_messagepack_as_a_string() {
        let key = DataKey::from("user");
        let bytes = rmp_serde::to_vec(&key).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec("user").unwrap());
        assert_eq!(rmp_serde::from_slice::<DataKey>(&bytes).unwrap(), key);
        assert_eq!(String::from(key), "user");
    }
}
