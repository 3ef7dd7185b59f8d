//! One session [`Value`]: MessagePack bytes, held inline when short, and
//! printed the way a person reads them.

use std::fmt::{self, Write as _};
use std::ops::Deref;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ValueError;

/// One session value: MessagePack bytes, as encoded by rmp-serde.
///
/// Structs are stored as maps keyed by field name, not as arrays in field
/// order: a value stored by an older release reads back right after a
/// deploy that reorders fields, removes one, or adds one with
/// `#[serde(default)]`. A value that no longer fits its type is a decode
/// error the handler can treat as absent, never a wrong value.
///
/// A short value (a number, a flag, an id of up to about twenty
/// characters) is held inside the `Value` itself, so it costs no heap
/// allocation to make, clone or drop. A longer one is held as [`Bytes`], so
/// cloning a session (as a memory store does on every load) shares the
/// bytes instead of copying them, and a store that reads many values out of
/// one buffer can hand out slices of it.
#[derive(Clone)]
pub struct Value(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; Value::INLINE_CAPACITY],
    },
    Shared(Bytes),
}

impl Value {
    /// The longest value held without a heap allocation.
    pub const INLINE_CAPACITY: usize = 22;

    /// Encodes `value` as MessagePack, structs as maps of their field names.
    ///
    /// # Errors
    ///
    /// The encoder's error, for types MessagePack cannot represent (for
    /// example a sequence of unknown length).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, rmp_serde::encode::Error> {
        let mut out = ValueWriter::default();
        // Named fields: the compact form (structs as arrays) reads old
        // values into the wrong fields once a deploy reorders them.
        value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
        Ok(out.finish())
    }

    /// Decodes the value as a `T`. A struct is read from its map of field
    /// names, or from the array of an older encoding.
    ///
    /// # Errors
    ///
    /// The decoder's error if the bytes are not a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, rmp_serde::decode::Error> {
        let mut de = rmp_serde::Deserializer::from_read_ref(self.as_bytes());
        de.set_max_depth(MAX_DECODE_DEPTH);
        T::deserialize(&mut de)
    }

    /// Takes bytes that are already MessagePack (as read back from a store).
    pub fn from_msgpack(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::inline(&bytes).unwrap_or(Self(Repr::Shared(bytes)))
    }

    /// Whether `bytes` are exactly one well-formed MessagePack value,
    /// nesting no deeper than [`decode`](Self::decode) reads, nothing
    /// missing and nothing after it: what a store checks of a value it
    /// reads back before taking it with [`from_msgpack`](Self::from_msgpack).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::store::Value;
    ///
    /// assert!(Value::is_well_formed(Value::encode(&[1, 2])?.as_bytes()));
    /// assert!(!Value::is_well_formed(&[0x92, 0x01])); // an array missing an item
    /// assert!(!Value::is_well_formed(&[0x01, 0x02])); // two values
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_well_formed(bytes: &[u8]) -> bool {
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
        de.set_max_depth(MAX_DECODE_DEPTH);
        serde::de::IgnoredAny::deserialize(&mut de).is_ok()
            && usize::try_from(de.position()).is_ok_and(|read| read == bytes.len())
    }

    /// Copies bytes that are already MessagePack.
    pub fn copy_from_msgpack(bytes: &[u8]) -> Self {
        Self::inline(bytes).unwrap_or_else(|| Self(Repr::Shared(Bytes::copy_from_slice(bytes))))
    }

    /// `bytes` held inline, if short enough.
    fn inline(bytes: &[u8]) -> Option<Self> {
        let len = u8::try_from(bytes.len()).ok()?;
        let mut inline = [0; Self::INLINE_CAPACITY];
        inline.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self(Repr::Inline { len, bytes: inline }))
    }

    /// The MessagePack bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared(bytes) => bytes,
        }
    }
}

impl Default for Value {
    /// No bytes: not valid MessagePack, so it decodes to nothing.
    fn default() -> Self {
        Self(Repr::Inline {
            len: 0,
            bytes: [0; Self::INLINE_CAPACITY],
        })
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Value {}

/// Where [`Value::encode`] writes: inline until the value outgrows
/// [`Value::INLINE_CAPACITY`], then a vector.
#[derive(Default)]
struct ValueWriter {
    len: usize,
    inline: [u8; Value::INLINE_CAPACITY],
    spilled: Option<Vec<u8>>,
}

impl ValueWriter {
    fn finish(self) -> Value {
        match self.spilled {
            // Exactly sized: a long-lived session keeps no spare capacity.
            Some(vec) => Value(Repr::Shared(Bytes::from(vec.into_boxed_slice()))),
            None => {
                Value::inline(self.inline.get(..self.len).unwrap_or_default()).unwrap_or_default()
            }
        }
    }
}

impl std::io::Write for ValueWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let spilled = match &mut self.spilled {
            Some(vec) => vec,
            None => {
                let end = self.len + buf.len();
                if let Some(room) = self.inline.get_mut(self.len..end) {
                    room.copy_from_slice(buf);
                    self.len = end;
                    return Ok(());
                }
                let mut vec = Vec::with_capacity(end.max(4 * Value::INLINE_CAPACITY));
                vec.extend_from_slice(self.inline.get(..self.len).unwrap_or_default());
                self.spilled.insert(vec)
            }
        };
        spilled.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({self})")
    }
}

/// Prints the value the way a person reads it: strings bare, numbers,
/// `[a, b]`, `{k: v}`; bytes that are not MessagePack print as `<invalid>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let mut de = rmp_serde::Deserializer::from_read_ref(self.as_bytes());
        de.set_max_depth(MAX_DECODE_DEPTH);
        match de::Deserializer::deserialize_any(
            &mut de,
            Printer {
                out: &mut out,
                depth: 0,
            },
        ) {
            Ok(()) => f.write_str(&out),
            Err(_) => f.write_str("<invalid>"),
        }
    }
}

/// Bytes of a value serialize as a MessagePack `bin`, not an array of
/// numbers.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BinVisitor;
        impl<'de> Visitor<'de> for BinVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("MessagePack bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::copy_from_msgpack(v))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
                Ok(Value::from_msgpack(v))
            }
        }
        d.deserialize_bytes(BinVisitor)
    }
}

/// Deepest nesting decoded at all: deeper input is refused before it can
/// exhaust the stack (the decoder's own default, 1024, can overflow a 2 MiB
/// thread stack in a debug build).
const MAX_DECODE_DEPTH: usize = 64;

/// Deepest nesting that [`Value`]'s `Display` follows; deeper parts print as `…`.
const MAX_PRINT_DEPTH: usize = 16;

/// A serde visitor that writes whatever it visits as text.
struct Printer<'a> {
    out: &'a mut String,
    depth: usize,
}

impl Printer<'_> {
    fn nested(&mut self) -> Printer<'_> {
        Printer {
            out: self.out,
            depth: self.depth + 1,
        }
    }
}

impl<'de> Visitor<'de> for Printer<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MessagePack value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push_str(v);
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        let _ = write!(self.out, "<{} bytes>", v.len());
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_PRINT_DEPTH {
            self.out.push('…');
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        self.out.push('[');
        let mut first = true;
        loop {
            if !first {
                // Written before knowing whether an element follows; trimmed below.
                self.out.push_str(", ");
            }
            if seq.next_element_seed(Seed(self.nested()))?.is_none() {
                if !first {
                    self.out.truncate(self.out.len() - 2);
                }
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_PRINT_DEPTH {
            self.out.push('…');
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(());
        }
        self.out.push('{');
        let mut first = true;
        loop {
            if !first {
                self.out.push_str(", ");
            }
            if map.next_key_seed(Seed(self.nested()))?.is_none() {
                if !first {
                    self.out.truncate(self.out.len() - 2);
                }
                break;
            }
            self.out.push_str(": ");
            map.next_value_seed(Seed(self.nested()))?;
            first = false;
        }
        self.out.push('}');
        Ok(())
    }
}

/// Lets a [`Printer`] be handed to `next_element_seed` and friends.
struct Seed<'a>(Printer<'a>);

impl<'de> de::DeserializeSeed<'de> for Seed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self.0)
    }
}

/// Decodes the value under `key` as a `T`.
pub(crate) fn decode_value<T: DeserializeOwned>(key: &str, v: &Value) -> Result<T, ValueError> {
    v.decode().map_err(|source| ValueError::Decode {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown<T: Serialize>(v: T) -> String {
        Value::encode(&v).unwrap().to_string()
    }

    #[test]
    fn a_value_is_as_small_as_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), std::mem::size_of::<Bytes>());
    }

    #[test]
    fn encoding_matches_rmp_serde_named_on_both_sides_of_the_inline_edge() {
        // A string of n characters encodes to n + 1 bytes up to 31.
        for n in [0, 1, 20, 21, 22, 23, 40, 300, 70_000] {
            let text = "x".repeat(n);
            let value = Value::encode(&text).unwrap();
            assert_eq!(
                value.as_bytes(),
                rmp_serde::to_vec_named(&text).unwrap(),
                "{n}"
            );
            assert_eq!(value.decode::<String>().unwrap(), text);
            assert_eq!(
                matches!(value.0, Repr::Inline { .. }),
                n < Value::INLINE_CAPACITY,
                "{n}"
            );
            // However it was made, the same bytes are the same value.
            assert_eq!(Value::from_msgpack(value.as_bytes().to_vec()), value);
            assert_eq!(Value::copy_from_msgpack(value.as_bytes()), value);
        }
        #[derive(Serialize)]
        struct Point {
            x: i8,
            y: i8,
        }
        let nested = (1u8, vec!["a"; 40], Some(2.5f64), Point { x: 1, y: -1 });
        assert_eq!(
            Value::encode(&nested).unwrap().as_bytes(),
            rmp_serde::to_vec_named(&nested).unwrap()
        );
        // Small structs stay inline, field names and all.
        let point = Value::encode(&Point { x: 1, y: -1 }).unwrap();
        assert!(matches!(point.0, Repr::Inline { .. }));
        assert_eq!(
            point.as_bytes(),
            rmp_serde::to_vec_named(&Point { x: 1, y: -1 }).unwrap()
        );
        assert!(Value::default().as_bytes().is_empty());
    }

    #[test]
    fn values_print_for_people() {
        assert_eq!(shown("123"), "123");
        assert_eq!(shown(7u32), "7");
        assert_eq!(shown(-7i64), "-7");
        assert_eq!(shown(true), "true");
        assert_eq!(shown(Option::<u8>::None), "null");
        assert_eq!(shown(vec![1, 2, 3]), "[1, 2, 3]");
        assert_eq!(shown(Vec::<u8>::new()), "[]");
        let mut m = std::collections::BTreeMap::new();
        m.insert("a", vec!["x"]);
        assert_eq!(shown(m), "{a: [x]}");
        assert_eq!(Value::from_msgpack(vec![0xc1]).to_string(), "<invalid>");
        assert_eq!(Value::from_msgpack(vec![]).to_string(), "<invalid>");
    }

    #[test]
    fn deep_nesting_prints_bounded() {
        let nested = |depth: usize| {
            let mut bytes = vec![0x91; depth];
            bytes.push(0x01);
            Value::from_msgpack(bytes).to_string()
        };
        let text = nested(40);
        assert!(text.len() < 100 && text.contains('…'), "{text}");
        // Past the decoder's own depth limit: refused, not a stack overflow.
        assert_eq!(nested(100_000), "<invalid>");
    }

    /// A value as an older release stored it.
    #[derive(Serialize)]
    struct Customer {
        first_name: &'static str,
        last_name: &'static str,
        coupon: &'static str,
    }

    fn stored_customer() -> Value {
        Value::encode(&Customer {
            first_name: "Ada",
            last_name: "Lovelace",
            coupon: "SPRING",
        })
        .unwrap()
    }

    #[test]
    fn struct_values_print_with_their_field_names() {
        #[derive(Serialize)]
        struct Cart {
            items: Vec<&'static str>,
        }
        let cart = Value::encode(&Cart {
            items: vec!["tea", "cake"],
        })
        .unwrap();
        assert_eq!(cart.to_string(), "{items: [tea, cake]}");
    }

    #[test]
    fn reordered_fields_of_one_type_keep_their_values() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Customer {
            last_name: String,
            first_name: String,
            coupon: String,
        }
        let back: Customer = decode_value("customer", &stored_customer()).unwrap();
        assert_eq!(
            (back.first_name.as_str(), back.last_name.as_str()),
            ("Ada", "Lovelace")
        );
    }

    #[test]
    fn a_field_added_with_a_default_reads_as_its_default() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Customer {
            #[serde(default)]
            visits: u32,
            first_name: String,
            last_name: String,
            coupon: String,
        }
        let back: Customer = decode_value("customer", &stored_customer()).unwrap();
        assert_eq!((back.visits, back.first_name.as_str()), (0, "Ada"));
    }

    #[test]
    fn a_removed_field_is_ignored() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Customer {
            first_name: String,
            last_name: String,
        }
        let back: Customer = decode_value("customer", &stored_customer()).unwrap();
        assert_eq!(
            (back.first_name.as_str(), back.last_name.as_str()),
            ("Ada", "Lovelace")
        );
    }

    #[test]
    fn a_struct_stored_in_the_older_array_form_still_reads() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Customer {
            first_name: String,
            last_name: String,
        }
        let customer = Customer {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        };
        let old = Value::from_msgpack(rmp_serde::to_vec(&customer).unwrap());
        assert_eq!(decode_value::<Customer>("c", &old).unwrap(), customer);
    }

    #[test]
    fn a_value_that_no_longer_decodes_is_a_decode_error() {
        // A new field without a default: the old value is not a `Customer`
        // any more, and the handler is told so rather than given a wrong one.
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Customer {
            first_name: String,
            email: String,
        }
        let err = decode_value::<Customer>("customer", &stored_customer()).unwrap_err();
        assert!(
            matches!(&err, ValueError::Decode { key, .. } if key == "customer"),
            "{err:?}"
        );
    }
}
