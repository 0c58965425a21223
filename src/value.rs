//! The JSON-like [`Value`] used for run parameters, input values and output
//! values, and its canonical compact binary encoding.
//!
//! This module owns the byte format of every value the store writes. The
//! invariant it keeps: [`Value::encode`] is a pure function of the value (the
//! same value always gives the same bytes, map keys in strictly ascending
//! order), and [`Value::decode`] accepts exactly the bytes `encode` can
//! produce for values at most [`VALUE_DEPTH_MAX`] deep, rejecting everything
//! else with a [`DecodeError`] instead of panicking or allocating on the word
//! of an unchecked length.
//!
//! # Format
//!
//! One tag byte per value, all integers little-endian:
//!
//! | tag | value | payload |
//! | --- | --- | --- |
//! | 0 | null | none |
//! | 1 | false | none |
//! | 2 | true | none |
//! | 3 | int | `i64`, 8 bytes |
//! | 4 | float | `f64` bits, 8 bytes |
//! | 5 | string | `u32` byte length, then UTF-8 bytes |
//! | 6 | list | `u32` item count, then the items |
//! | 7 | map | `u32` entry count, then per entry: `u32` key length, key UTF-8, value |
//!
//! Floats are stored by their exact bits, so `0.0` and `-0.0` (and NaNs with
//! different payloads) encode differently even though `0.0 == -0.0`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// Deepest nesting of lists and maps that [`Value::decode`] accepts; a
/// top-level list or map is at depth 1, scalars add no depth.
///
/// 64 levels is far more than any real configuration uses (3LC configs are a
/// handful of levels deep), and it bounds the recursion of decoding so that a
/// corrupt or hostile file cannot overflow the stack.
pub const VALUE_DEPTH_MAX: usize = 64;

/// Largest single encoded value, in bytes, that the store accepts.
///
/// 64 MiB: parameters of a megabyte or more (whole training configs,
/// embedded label maps) fit with plenty of room, while a single record still
/// stays far below what a transaction can hold in memory comfortably.
pub const VALUE_ENCODED_BYTES_MAX: usize = 64 << 20;

const TAG_NULL: u8 = 0;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_INT: u8 = 3;
const TAG_FLOAT: u8 = 4;
const TAG_STR: u8 = 5;
const TAG_LIST: u8 = 6;
const TAG_MAP: u8 = 7;

/// Fewest bytes one encoded map entry can take: a 4-byte key length and a
/// 1-byte value tag.
const MAP_ENTRY_BYTES_MIN: usize = 5;

/// A JSON-like value: a run parameter, an input value or an output value.
///
/// Maps are ordered by key, so a value has exactly one encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The absence of a value (JSON `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float; may be non-finite, which JSON cannot show.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// An ordered list of values.
    List(Vec<Value>),
    /// A map from string keys to values, ordered by key.
    Map(BTreeMap<String, Value>),
}

/// Why JSON text did not become a [`Value`] ([`Value::parse_json`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The text is not JSON.
    #[error(transparent)]
    Syntax(serde_json::Error),
    /// Lists and maps nest deeper than [`VALUE_DEPTH_MAX`].
    #[error("JSON nests {depth} levels deep, deeper than the {VALUE_DEPTH_MAX} levels allowed")]
    TooDeep {
        /// How deep the text's brackets nest.
        depth: usize,
    },
    /// An integer outside `i64`, which a [`Value::Int`] cannot hold and a float would round.
    #[error("integer {integer} does not fit in i64; write it as a string or a float")]
    IntegerOutOfRange {
        /// The integer as written.
        integer: String,
    },
    /// A number beyond the range of `f64` (`1e400`).
    #[error(transparent)]
    NumberOutOfRange(serde_json::Error),
}

/// What [`scan_json_text`] finds in JSON text without parsing it.
struct JsonTextScan {
    /// The deepest nesting of `[` and `{` outside strings.
    depth: usize,
    /// The first integer (a number without fraction or exponent) outside `i64`.
    integer_out_of_range: Option<String>,
}

/// Walks JSON text once, outside strings: how deep brackets nest, and the first integer
/// outside `i64`. It does not check syntax (the parser does); on text that is not JSON its
/// answers are only about brackets and digits.
fn scan_json_text(text: &str) -> JsonTextScan {
    let bytes = text.as_bytes();
    let mut scan = JsonTextScan {
        depth: 0,
        integer_out_of_range: None,
    };
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                scan.depth = scan.depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = at;
                while at + 1 < bytes.len()
                    && matches!(
                        bytes[at + 1],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    at += 1;
                }
                let number = &text[start..=at];
                let is_integer = !number.contains(['.', 'e', 'E']);
                if is_integer
                    && number.parse::<i64>().is_err()
                    && scan.integer_out_of_range.is_none()
                {
                    scan.integer_out_of_range = Some(number.to_owned());
                }
            }
            _ => {}
        }
        at += 1;
    }
    scan
}

/// Why a byte string is not a valid [`Value`] encoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid value encoding at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Offset in the input at which the problem was found.
    pub offset: usize,
    /// What is wrong, as a short lowercase phrase.
    pub reason: &'static str,
}

impl Value {
    /// Encodes this value into a fresh byte vector.
    ///
    /// The result is deterministic: equal values with equal float bits give
    /// equal bytes, so the encoding can be compared for equality and dedup.
    ///
    /// # Panics
    ///
    /// If a single string has more than `u32::MAX` bytes, or a single list or
    /// map more than `u32::MAX` items, which the format cannot express (such
    /// a value is far beyond [`VALUE_ENCODED_BYTES_MAX`] anyway).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding of this value to `out`.
    ///
    /// # Panics
    ///
    /// As [`Value::encode`].
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(TAG_NULL),
            Value::Bool(false) => out.push(TAG_FALSE),
            Value::Bool(true) => out.push(TAG_TRUE),
            Value::Int(i) => {
                out.push(TAG_INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Str(s) => {
                out.push(TAG_STR);
                push_len(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Value::List(items) => {
                out.push(TAG_LIST);
                push_len(out, items.len());
                for item in items {
                    item.encode_into(out);
                }
            }
            Value::Map(entries) => {
                out.push(TAG_MAP);
                push_len(out, entries.len());
                for (key, value) in entries {
                    push_len(out, key.len());
                    out.extend_from_slice(key.as_bytes());
                    value.encode_into(out);
                }
            }
        }
    }

    /// Decodes one value that must fill `bytes` exactly.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] on truncated input, trailing bytes, an unknown tag,
    /// invalid UTF-8, map keys that are not strictly ascending, nesting
    /// deeper than [`VALUE_DEPTH_MAX`], or a count larger than the remaining
    /// input could hold.
    pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
        // Numbers are most of what is decoded (index columns, outputs): skip the walk.
        if let Some((&tag, payload)) = bytes.split_first() {
            if let Ok(payload) = <[u8; 8]>::try_from(payload) {
                match tag {
                    TAG_INT => return Ok(Value::Int(i64::from_le_bytes(payload))),
                    TAG_FLOAT => {
                        return Ok(Value::Float(f64::from_bits(u64::from_le_bytes(payload))))
                    }
                    _ => {}
                }
            }
        }
        let mut decoder = Decoder { bytes, pos: 0 };
        let value = decoder.value(0)?;
        if decoder.pos != bytes.len() {
            return Err(decoder.error_at(decoder.pos, "trailing bytes"));
        }
        Ok(value)
    }

    /// The value at key path `path` inside the encoded value `bytes`, as
    /// `Value::decode(bytes)?.get_path(path).cloned()` would give it, but without building
    /// the maps and lists it walks past: entries of other keys are skipped in place. An empty
    /// path decodes the whole value. `None` when a step is missing or not a map.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] for the malformations [`Value::decode`] rejects in the parts this
    /// walk reads or skips (bytes after the value found are not looked at).
    pub fn decode_path(bytes: &[u8], path: &[&str]) -> Result<Option<Value>, DecodeError> {
        let mut decoder = Decoder { bytes, pos: 0 };
        let mut depth = 0;
        'steps: for key in path {
            let [tag] = decoder.take_array()?;
            if tag != TAG_MAP {
                return Ok(None);
            }
            if depth >= VALUE_DEPTH_MAX {
                return Err(decoder.error_at(decoder.pos, "nesting too deep"));
            }
            let count = decoder.count(MAP_ENTRY_BYTES_MIN)?;
            for _ in 0..count {
                let entry_key = decoder.str_slice()?;
                if entry_key == *key {
                    depth += 1;
                    continue 'steps;
                }
                decoder.skip(depth + 1)?;
            }
            return Ok(None);
        }
        decoder.value(depth).map(Some)
    }

    /// Parses JSON text into a value.
    ///
    /// # Errors
    ///
    /// The `serde_json` error when `s` is not valid JSON, and one made from the
    /// [`JsonError`] of [`Value::parse_json`] when it is JSON the store cannot hold as written
    /// (nested deeper than [`VALUE_DEPTH_MAX`], an integer outside `i64`).
    pub fn from_json_str(s: &str) -> Result<Value, serde_json::Error> {
        Value::parse_json(s).map_err(|error| match error {
            JsonError::Syntax(error) => error,
            other => <serde_json::Error as serde::de::Error>::custom(other),
        })
    }

    /// Parses JSON text into a value, telling text that is not JSON ([`JsonError::Syntax`])
    /// from JSON that cannot be stored as written: nested deeper than [`VALUE_DEPTH_MAX`]
    /// (also past `serde_json`'s own limit of 128, where it stops parsing), an integer outside
    /// `i64` (which would otherwise become a rounded float), or a number beyond `f64`. A
    /// caller that reads non-JSON text as a string (`--param`) must refuse the others.
    ///
    /// # Errors
    ///
    /// A [`JsonError`], as above.
    pub fn parse_json(text: &str) -> Result<Value, JsonError> {
        let scan = scan_json_text(text);
        let parsed = serde_json::from_str::<serde_json::Value>(text);
        if scan.depth > VALUE_DEPTH_MAX {
            // serde_json refuses 128 levels and more as it would refuse bad syntax: the text
            // is refused whether or not the rest of it is JSON.
            return Err(JsonError::TooDeep { depth: scan.depth });
        }
        match parsed {
            Ok(json) => match scan.integer_out_of_range {
                Some(integer) => Err(JsonError::IntegerOutOfRange { integer }),
                None => Ok(Value::from(json)),
            },
            // serde_json's text for a number beyond f64 (`1e400`): JSON, but not a float.
            Err(error) if error.to_string().starts_with("number out of range") => {
                Err(JsonError::NumberOutOfRange(error))
            }
            Err(error) => Err(JsonError::Syntax(error)),
        }
    }

    /// Converts this value into a `serde_json` value.
    ///
    /// JSON has no NaN or infinity, and `null` is a missing value, so non-finite floats become
    /// the strings of [`non_finite_json_text`]: `"NaN"`, `"Infinity"` and `"-Infinity"`, the
    /// spellings JavaScript, JSON5 and Python's `float()` read back (pandas' `to_numeric`
    /// too). Every JSON the CLI prints goes through this or [`non_finite_json_text`].
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::Number((*i).into()),
            Value::Float(f) => match non_finite_json_text(*f) {
                Some(text) => serde_json::Value::String(text.to_owned()),
                // Every finite float is a JSON number.
                None => serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
            },
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a map value from `(key, value)` pairs; a later duplicate key
    /// overwrites an earlier one.
    pub fn map<I, K, V>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        )
    }

    /// The value as a float, if it is an [`Value::Int`] or a [`Value::Float`].
    ///
    /// Integers beyond 2^53 lose precision.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as an integer, if it is an [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as a boolean, if it is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if the value is a [`Value::List`].
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if the value is a [`Value::Map`].
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map holding that key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.get(key)
    }

    /// The value reached by looking up each key of `dotted` in turn through
    /// nested maps; an empty path gives this value itself.
    pub fn get_path(&self, dotted: &[&str]) -> Option<&Value> {
        dotted.iter().try_fold(self, |value, key| value.get(key))
    }

    /// The name of this value's variant: `null`, `bool`, `int`, `float`,
    /// `str`, `list` or `map`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// How deeply lists and maps nest in this value: 0 for a scalar, 1 for a
    /// list or map of scalars, and so on. [`Value::decode`] rejects
    /// encodings of values deeper than [`VALUE_DEPTH_MAX`].
    pub fn depth(&self) -> usize {
        // Iterative, so that even an absurdly deep value cannot overflow the
        // stack here.
        let mut deepest = 0;
        let mut pending = vec![(self, 0usize)];
        while let Some((value, depth)) = pending.pop() {
            match value {
                Value::List(items) => {
                    deepest = deepest.max(depth + 1);
                    pending.extend(items.iter().map(|item| (item, depth + 1)));
                }
                Value::Map(entries) => {
                    deepest = deepest.max(depth + 1);
                    pending.extend(entries.values().map(|item| (item, depth + 1)));
                }
                _ => {}
            }
        }
        deepest
    }

    /// Merges `other` into this value with Python `dict.update` semantics,
    /// as 3LC does for parameters.
    ///
    /// If both are maps, each key of `other` overwrites the same key here
    /// (shallowly: nested maps are replaced, not merged); otherwise this
    /// value becomes a copy of `other`.
    pub fn merge_from(&mut self, other: &Value) {
        match (self, other) {
            (Value::Map(mine), Value::Map(theirs)) => {
                for (key, value) in theirs {
                    mine.insert(key.clone(), value.clone());
                }
            }
            (this, _) => *this = other.clone(),
        }
    }
}

/// How JSON output spells a float JSON cannot hold: `"NaN"`, `"Infinity"` or `"-Infinity"` (a
/// JSON string, quotes included in the JSON text), so that it is neither `null` (a missing
/// value) nor a parse error for a strict reader. Finite floats give `None`.
pub fn non_finite_json_text(float: f64) -> Option<&'static str> {
    if float.is_nan() {
        Some("NaN")
    } else if float == f64::INFINITY {
        Some("Infinity")
    } else if float == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// Appends a length or count as a little-endian `u32`.
fn push_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a string, list or map longer than u32::MAX");
    out.extend_from_slice(&len.to_le_bytes());
}

/// Reads a value encoding from a byte slice, tracking the position for
/// error reports.
struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn error_at(&self, offset: usize, reason: &'static str) -> DecodeError {
        DecodeError { offset, reason }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes the next `n` bytes, or fails without moving.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.error_at(self.pos, "truncated input"));
        }
        let taken = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u32_len(&mut self) -> Result<usize, DecodeError> {
        let len = u32::from_le_bytes(self.take_array()?);
        // A u32 always fits the usize of the 32- and 64-bit targets we build
        // for; saturating keeps a 16-bit target from wrapping.
        Ok(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn str_slice(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u32_len()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.error_at(start + e.valid_up_to(), "invalid utf-8"))
    }

    /// Moves past one value without building it, checking what [`Decoder::value`] checks
    /// except the order of map keys.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        let at = self.pos;
        let [tag] = self.take_array()?;
        match tag {
            TAG_NULL | TAG_FALSE | TAG_TRUE => Ok(()),
            TAG_INT | TAG_FLOAT => self.take(8).map(drop),
            TAG_STR => self.str_slice().map(drop),
            TAG_LIST | TAG_MAP if depth >= VALUE_DEPTH_MAX => {
                Err(self.error_at(at, "nesting too deep"))
            }
            TAG_LIST => {
                for _ in 0..self.count(1)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            TAG_MAP => {
                for _ in 0..self.count(MAP_ENTRY_BYTES_MIN)? {
                    self.str_slice()?;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(self.error_at(at, "unknown tag")),
        }
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32_len()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.error_at(start + e.valid_up_to(), "invalid utf-8")),
        }
    }

    /// Reads a count of items that each take at least `item_bytes_min`
    /// bytes, rejecting counts the remaining input cannot hold.
    fn count(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let count = self.u32_len()?;
        if count.saturating_mul(item_bytes_min) > self.remaining() {
            return Err(self.error_at(at, "count exceeds remaining bytes"));
        }
        Ok(count)
    }

    /// Decodes one value whose enclosing containers nest `depth` deep.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let at = self.pos;
        let [tag] = self.take_array()?;
        match tag {
            TAG_NULL => Ok(Value::Null),
            TAG_FALSE => Ok(Value::Bool(false)),
            TAG_TRUE => Ok(Value::Bool(true)),
            TAG_INT => Ok(Value::Int(i64::from_le_bytes(self.take_array()?))),
            TAG_FLOAT => Ok(Value::Float(f64::from_bits(u64::from_le_bytes(
                self.take_array()?,
            )))),
            TAG_STR => Ok(Value::Str(self.string()?)),
            TAG_LIST | TAG_MAP if depth >= VALUE_DEPTH_MAX => {
                Err(self.error_at(at, "nesting too deep"))
            }
            TAG_LIST => {
                let count = self.count(1)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::List(items))
            }
            TAG_MAP => {
                let count = self.count(MAP_ENTRY_BYTES_MIN)?;
                let mut entries = BTreeMap::new();
                for _ in 0..count {
                    let key_at = self.pos;
                    let key = self.string()?;
                    // Keys arrive ascending, so the largest key so far is
                    // the previous one.
                    if let Some((previous, _)) = entries.last_key_value() {
                        match String::cmp(previous, &key) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(self.error_at(key_at, "duplicate map key"));
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(self.error_at(key_at, "map keys out of order"));
                            }
                        }
                    }
                    let value = self.value(depth + 1)?;
                    entries.insert(key, value);
                }
                Ok(Value::Map(entries))
            }
            _ => Err(self.error_at(at, "unknown tag")),
        }
    }
}

impl fmt::Display for Value {
    /// Prints the value as compact JSON (non-finite floats as the strings `"NaN"`,
    /// `"Infinity"` and `"-Infinity"`, as [`Value::to_json`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl From<serde_json::Value> for Value {
    /// Converts JSON: integers that fit `i64` become [`Value::Int`], larger
    /// unsigned integers and all other numbers become [`Value::Float`] (rounded: parse text
    /// with [`Value::parse_json`] or [`Value::from_json_str`], which refuse such integers).
    fn from(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::Float(u as f64)
                } else {
                    n.as_f64().map_or(Value::Null, Value::Float)
                }
            }
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(items) => {
                Value::List(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, Value::from(value)))
                    .collect(),
            ),
        }
    }
}

impl From<bool> for Value {
    /// A [`Value::Bool`].
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    /// A [`Value::Int`].
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    /// A [`Value::Int`].
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    /// A [`Value::Int`].
    fn from(u: u32) -> Value {
        Value::Int(i64::from(u))
    }
}

impl From<f64> for Value {
    /// A [`Value::Float`].
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<f32> for Value {
    /// A [`Value::Float`], widened exactly.
    fn from(f: f32) -> Value {
        Value::Float(f64::from(f))
    }
}

impl From<&str> for Value {
    /// A [`Value::Str`].
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    /// A [`Value::Str`].
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    /// A [`Value::List`].
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    /// A [`Value::Map`].
    fn from(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(entries)
    }
}

/// Compares two numbers exactly (integers with integers and with floats); `None` if either is
/// NaN or not a number.
///
/// This is the numeric order of the bytes on disk (`OutputStats` min/max in the key index) as
/// well as of the query language's comparisons; it lives here, below both, so that a change
/// to the query language cannot change what stored bytes mean.
pub(crate) fn numeric_cmp(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Float(b)) => int_float_cmp(*a, *b),
        (Value::Float(a), Value::Int(b)) => int_float_cmp(*b, *a).map(Ordering::reverse),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        _ => None,
    }
}

/// Compares an integer with a float without rounding the integer.
fn int_float_cmp(int: i64, float: f64) -> Option<Ordering> {
    // 2^63, exactly representable; every finite float in [-2^63, 2^63) truncates to an i64.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In range, so the cast is exact.
    let whole_int = whole as i64;
    Some(int.cmp(&whole_int).then_with(|| {
        // Same whole part: the float's fraction decides.
        if float > whole {
            Ordering::Less
        } else if float < whole {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_float_in_json_text_reads_back_to_the_same_bits() {
        // serde_json's default float parser may be one unit in the last place off; a value
        // logged as JSON text (`runstore log --output`, an import) must not change.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let float = f64::from_bits(state);
            if !float.is_finite() {
                continue;
            }
            let text = format!("{{\"x\": {float:?}}}");
            let parsed = Value::parse_json(&text).unwrap();
            assert_eq!(
                parsed.get("x").unwrap().as_f64().unwrap().to_bits(),
                float.to_bits(),
                "{text}"
            );
        }
        let parsed = Value::parse_json("0.9750000000000001").unwrap();
        assert_eq!(parsed, Value::Float(0.9750000000000001));
    }
    use proptest::prelude::*;

    /// Encodes `value`, checks the bytes against `expected` when given, and
    /// checks that decoding gives the value back (floats compared by bits).
    fn check(value: &Value, expected: Option<&[u8]>) {
        let bytes = value.encode();
        if let Some(expected) = expected {
            assert_eq!(bytes, expected, "encoding of {value:?}");
        }
        let mut appended = vec![0xAA];
        value.encode_into(&mut appended);
        assert_eq!(appended[1..], bytes[..], "encode_into appends encode");
        let decoded = Value::decode(&bytes).expect("round trip decodes");
        assert!(same_bits(value, &decoded), "{value:?} != {decoded:?}");
        assert_eq!(decoded.encode(), bytes, "re-encoding is stable");
    }

    /// Asserts that decoding `bytes` fails with `reason` at `offset`.
    fn check_reject(bytes: &[u8], offset: usize, reason: &'static str) {
        assert_eq!(
            Value::decode(bytes),
            Err(DecodeError { offset, reason }),
            "decoding {bytes:?}"
        );
    }

    /// Structural equality that compares floats by their bits, so NaN
    /// equals itself and 0.0 differs from -0.0.
    fn same_bits(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::List(xs), Value::List(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_bits(x, y))
            }
            (Value::Map(xs), Value::Map(ys)) => {
                xs.len() == ys.len()
                    && xs
                        .iter()
                        .zip(ys)
                        .all(|((kx, x), (ky, y))| kx == ky && same_bits(x, y))
            }
            _ => a == b,
        }
    }

    fn nested_lists(depth: usize) -> Value {
        let mut value = Value::Null;
        for _ in 0..depth {
            value = Value::List(vec![value]);
        }
        value
    }

    #[test]
    fn scalars_round_trip_with_exact_bytes() {
        check(&Value::Null, Some(&[0]));
        check(&Value::Bool(false), Some(&[1]));
        check(&Value::Bool(true), Some(&[2]));
        check(&Value::Int(1), Some(&[3, 1, 0, 0, 0, 0, 0, 0, 0]));
        check(
            &Value::Int(-1),
            Some(&[3, 255, 255, 255, 255, 255, 255, 255, 255]),
        );
        check(&Value::Int(i64::MIN), None);
        check(&Value::Int(i64::MAX), None);
        check(&Value::Float(1.0), Some(&[4, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F]));
        for f in [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
        ] {
            check(&Value::Float(f), None);
        }
        check(&Value::from("hé"), Some(&[5, 3, 0, 0, 0, b'h', 0xC3, 0xA9]));
        check(&Value::from(""), Some(&[5, 0, 0, 0, 0]));
    }

    #[test]
    fn containers_round_trip_with_exact_bytes() {
        check(&Value::List(vec![]), Some(&[6, 0, 0, 0, 0]));
        check(
            &Value::List(vec![Value::Null, Value::Bool(true)]),
            Some(&[6, 2, 0, 0, 0, 0, 2]),
        );
        check(&Value::Map(BTreeMap::new()), Some(&[7, 0, 0, 0, 0]));
        check(
            &Value::map([("b", Value::Null), ("a", Value::Bool(false))]),
            Some(&[7, 2, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 1, 0, 0, 0, b'b', 0]),
        );
        let nested = Value::map([
            ("lr", Value::from(3e-4)),
            ("epochs", Value::from(10)),
            (
                "model",
                Value::map([
                    ("name", Value::from("resnet")),
                    ("layers", Value::List(vec![64.into(), 128.into()])),
                ]),
            ),
            (
                "tags",
                Value::List(vec!["a".into(), Value::map([("x", 1)])]),
            ),
        ]);
        check(&nested, None);
        check(&nested_lists(VALUE_DEPTH_MAX), None);
    }

    #[test]
    fn one_megabyte_config_round_trips() {
        let config = Value::map((0..16_384).map(|i| {
            (
                format!("param_{i:05}"),
                Value::from("x".repeat(48) + &i.to_string()),
            )
        }));
        let bytes = config.encode();
        assert!(bytes.len() > 1 << 20, "{} bytes", bytes.len());
        assert!(bytes.len() < VALUE_ENCODED_BYTES_MAX);
        check(&config, None);
        check(&Value::from("y".repeat(1 << 20)), None);
    }

    #[test]
    fn rejects_truncated_input() {
        check_reject(&[], 0, "truncated input");
        check_reject(&[3, 1, 2, 3], 1, "truncated input");
        check_reject(&[4, 0, 0, 0, 0, 0, 0, 0], 1, "truncated input");
        check_reject(&[5, 1, 0], 1, "truncated input");
        check_reject(&[5, 3, 0, 0, 0, b'a'], 5, "truncated input");
        check_reject(&[6, 2, 0, 0, 0, 0, 3], 7, "truncated input");
        check_reject(&[7, 1, 0, 0, 0, 1, 0, 0, 0, b'a'], 10, "truncated input");
    }

    #[test]
    fn rejects_trailing_bytes() {
        check_reject(&[0, 0], 1, "trailing bytes");
        check_reject(&[6, 0, 0, 0, 0, 9], 5, "trailing bytes");
    }

    #[test]
    fn rejects_unknown_tag() {
        check_reject(&[8], 0, "unknown tag");
        check_reject(&[255], 0, "unknown tag");
        check_reject(&[6, 1, 0, 0, 0, 42], 5, "unknown tag");
    }

    #[test]
    fn rejects_invalid_utf8() {
        check_reject(&[5, 2, 0, 0, 0, b'a', 0xFF], 6, "invalid utf-8");
        check_reject(&[7, 1, 0, 0, 0, 1, 0, 0, 0, 0xC3, 0], 9, "invalid utf-8");
    }

    #[test]
    fn rejects_unsorted_and_duplicate_keys() {
        let unsorted = [7, 2, 0, 0, 0, 1, 0, 0, 0, b'b', 0, 1, 0, 0, 0, b'a', 0];
        check_reject(&unsorted, 11, "map keys out of order");
        let duplicate = [7, 2, 0, 0, 0, 1, 0, 0, 0, b'a', 0, 1, 0, 0, 0, b'a', 0];
        check_reject(&duplicate, 11, "duplicate map key");
    }

    #[test]
    fn rejects_too_deep() {
        let bytes = nested_lists(VALUE_DEPTH_MAX + 1).encode();
        check_reject(&bytes, 5 * VALUE_DEPTH_MAX, "nesting too deep");
        let mut maps = Value::Null;
        for _ in 0..=VALUE_DEPTH_MAX {
            maps = Value::map([("k", maps)]);
        }
        assert_eq!(maps.depth(), VALUE_DEPTH_MAX + 1);
        let bytes = maps.encode();
        check_reject(&bytes, 10 * VALUE_DEPTH_MAX, "nesting too deep");
    }

    #[test]
    fn rejects_huge_counts_before_allocating() {
        check_reject(&[6, 255, 255, 255, 255], 1, "count exceeds remaining bytes");
        check_reject(&[6, 2, 0, 0, 0, 0], 1, "count exceeds remaining bytes");
        check_reject(&[6, 3, 0, 0, 0, 0, 0], 1, "count exceeds remaining bytes");
        check_reject(&[7, 255, 255, 255, 255], 1, "count exceeds remaining bytes");
        // Nine bytes remain but one map entry needs at least five.
        check_reject(
            &[7, 2, 0, 0, 0, 1, 0, 0, 0, b'a', 0, 0, 0, 0],
            1,
            "count exceeds remaining bytes",
        );
        check_reject(&[5, 255, 255, 255, 255, 0], 5, "truncated input");
    }

    #[test]
    fn encoding_is_deterministic() {
        let a = Value::map([("z", 1), ("a", 2), ("m", 3)]);
        let b = Value::map([("m", 3), ("z", 1), ("a", 2)]);
        assert_eq!(a, b);
        assert_eq!(a.encode(), b.encode());
        assert_eq!(a.encode(), a.clone().encode());
        let c = Value::from_json_str(r#"{"z":1,"a":2,"m":3}"#).unwrap();
        assert_eq!(c.encode(), a.encode());
        assert_ne!(Value::Int(1).encode(), Value::Float(1.0).encode());
    }

    #[test]
    fn json_conversions() {
        let value = Value::from_json_str(
            r#"{"b":[1,-2,2.5,true,null,"s"],"a":{"big":1.8446744073709552e19,"neg":-9223372036854775808}}"#,
        )
        .unwrap();
        assert_eq!(value.get_path(&["b"]).unwrap().as_list().unwrap().len(), 6);
        assert_eq!(
            value.get_path(&["a", "big"]),
            Some(&Value::Float(u64::MAX as f64))
        );
        assert_eq!(value.get_path(&["a", "neg"]), Some(&Value::Int(i64::MIN)));
        assert_eq!(
            value.to_string(),
            r#"{"a":{"big":1.8446744073709552e+19,"neg":-9223372036854775808},"b":[1,-2,2.5,true,null,"s"]}"#
        );
        // Integers outside i64 are refused, not rounded to floats.
        for (text, integer) in [
            ("18446744073709551615", "18446744073709551615"),
            (r#"{"a":[1,9223372036854775808]}"#, "9223372036854775808"),
            ("-9223372036854775809", "-9223372036854775809"),
        ] {
            let error = Value::parse_json(text).unwrap_err();
            assert!(
                matches!(&error, JsonError::IntegerOutOfRange { integer: found } if found == integer),
                "{text}: {error:?}"
            );
            assert_eq!(
                error.to_string(),
                format!("integer {integer} does not fit in i64; write it as a string or a float")
            );
            assert!(Value::from_json_str(text).is_err());
        }
        // Digits inside strings are text, and floats may be large.
        assert_eq!(
            Value::parse_json(r#"["18446744073709551615", 1e300, -0.0]"#).unwrap(),
            Value::List(vec![
                Value::from("18446744073709551615"),
                Value::Float(1e300),
                Value::Float(-0.0)
            ])
        );
        // Too deep for the store is refused, also past serde_json's own limit of 128.
        for depth in [65, 127, 128, 129, 10_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let error = Value::parse_json(&text).unwrap_err();
            assert!(matches!(error, JsonError::TooDeep { depth: found } if found == depth));
        }
        let text = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(Value::parse_json(&text).unwrap().depth(), 64);
        assert!(matches!(
            Value::parse_json("1e400"),
            Err(JsonError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            Value::parse_json("[1, x"),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            Value::parse_json(r#""a\"[[[""#),
            Ok(Value::Str(_))
        ));
        assert_eq!(Value::from_json_str(&value.to_string()).unwrap(), value);
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::json!("NaN"));
        assert_eq!(Value::Float(f64::INFINITY).to_string(), r#""Infinity""#);
        assert_eq!(
            Value::Float(f64::NEG_INFINITY).to_string(),
            r#""-Infinity""#
        );
        assert_eq!(Value::Float(-0.0).to_string(), "-0.0");
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::from_json_str("1.0").unwrap(), Value::Float(1.0));
        assert_eq!(Value::from_json_str("7").unwrap(), Value::Int(7));
        assert_eq!(Value::from("a\"b").to_string(), r#""a\"b""#);
        assert!(Value::from_json_str("{").is_err());
        assert!(Value::from_json_str("[1] x").is_err());
    }

    #[test]
    fn from_impls() {
        assert_eq!(Value::from(true), Value::Bool(true));
        assert_eq!(Value::from(-3i64), Value::Int(-3));
        assert_eq!(Value::from(-3i32), Value::Int(-3));
        assert_eq!(Value::from(u32::MAX), Value::Int(4_294_967_295));
        assert_eq!(Value::from(0.5f64), Value::Float(0.5));
        assert_eq!(Value::from(0.5f32), Value::Float(0.5));
        assert_eq!(Value::from("s"), Value::Str("s".into()));
        assert_eq!(Value::from(String::from("s")), Value::Str("s".into()));
        assert_eq!(
            Value::from(vec![Value::Null]),
            Value::List(vec![Value::Null])
        );
        let map = BTreeMap::from([("k".to_owned(), Value::Null)]);
        assert_eq!(Value::from(map.clone()), Value::Map(map));
        assert_eq!(Value::map([("k", 1), ("k", 2)]), Value::map([("k", 2)]));
    }

    #[test]
    fn accessors() {
        let value = Value::map([
            ("i", Value::from(2)),
            ("f", Value::from(0.5)),
            ("s", Value::from("x")),
            ("m", Value::map([("n", Value::map([("o", true)]))])),
        ]);
        assert_eq!(value.get("i").and_then(Value::as_f64), Some(2.0));
        assert_eq!(value.get("f").and_then(Value::as_f64), Some(0.5));
        assert_eq!(value.get("i").and_then(Value::as_i64), Some(2));
        assert_eq!(value.get("f").and_then(Value::as_i64), None);
        assert_eq!(value.get("s").and_then(Value::as_str), Some("x"));
        assert_eq!(value.get("s").and_then(Value::as_map), None);
        assert_eq!(value.get("missing"), None);
        assert_eq!(Value::Int(1).get("i"), None);
        assert_eq!(value.get_path(&["m", "n", "o"]), Some(&Value::Bool(true)));
        assert_eq!(value.get_path(&["m", "x", "o"]), None);
        assert_eq!(value.get_path(&["s", "x"]), None);
        assert_eq!(value.get_path(&[]), Some(&value));
        assert_eq!(
            value.get_path(&["m", "n", "o"]).and_then(Value::as_bool),
            Some(true)
        );
        assert_eq!(value.depth(), 3);
        assert_eq!(Value::Null.depth(), 0);
        let names: Vec<_> = [
            Value::Null,
            Value::Bool(true),
            Value::Int(0),
            Value::Float(0.0),
            Value::from(""),
            Value::List(vec![]),
            Value::Map(BTreeMap::new()),
        ]
        .iter()
        .map(Value::type_name)
        .collect();
        assert_eq!(
            names,
            ["null", "bool", "int", "float", "str", "list", "map"]
        );
    }

    #[test]
    fn merge_is_shallow_dict_update() {
        let mut params = Value::map([
            ("lr", Value::from(0.1)),
            ("model", Value::map([("depth", 18), ("width", 64)])),
        ]);
        params.merge_from(&Value::map([
            ("lr", Value::from(0.01)),
            ("model", Value::map([("depth", 50)])),
            ("seed", Value::from(7)),
        ]));
        assert_eq!(
            params,
            Value::map([
                ("lr", Value::from(0.01)),
                ("model", Value::map([("depth", 50)])),
                ("seed", Value::from(7)),
            ])
        );
        let mut scalar = Value::from(1);
        scalar.merge_from(&Value::map([("a", 1)]));
        assert_eq!(scalar, Value::map([("a", 1)]));
        let mut map = Value::map([("a", 1)]);
        map.merge_from(&Value::Null);
        assert_eq!(map, Value::Null);
    }

    #[test]
    fn error_message() {
        let error = Value::decode(&[9]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value encoding at byte 0: unknown tag"
        );
    }

    fn arbitrary_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<u64>().prop_map(|bits| Value::Float(f64::from_bits(bits))),
            ".{0,12}".prop_map(Value::Str),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                prop::collection::btree_map(".{0,8}", inner, 0..8).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_path_agrees_with_decode_then_get_path(
            value in prop_oneof![
                arbitrary_value(),
                prop::collection::btree_map(
                    prop::sample::select(vec!["a", "b", "key", "x"]).prop_map(String::from),
                    prop_oneof![
                        arbitrary_value(),
                        prop::collection::btree_map(
                            prop::sample::select(vec!["a", "b", "x"]).prop_map(String::from),
                            arbitrary_value(),
                            0..4,
                        )
                        .prop_map(Value::Map),
                    ],
                    0..5,
                )
                .prop_map(Value::Map),
            ],
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", "", "key", "x"]), 0..3),
        ) {
            let bytes = value.encode();
            // Compared as encodings: NaN never equals itself.
            let expected = value.get_path(&path).map(Value::encode);
            let decoded = Value::decode_path(&bytes, &path).unwrap();
            prop_assert_eq!(decoded.as_ref().map(Value::encode), expected);
        }

        #[test]
        fn decode_path_of_arbitrary_bytes_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            path in prop::collection::vec(prop::sample::select(vec!["a", ""]), 0..3),
        ) {
            let _ = Value::decode_path(&bytes, &path);
        }

        #[test]
        fn encode_decode_is_identity(value in arbitrary_value()) {
            let bytes = value.encode();
            let decoded = Value::decode(&bytes).unwrap();
            prop_assert!(same_bits(&value, &decoded));
            prop_assert_eq!(decoded.encode(), bytes);
        }

        #[test]
        fn decode_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(value) = Value::decode(&bytes) {
                // Anything accepted is canonical: it re-encodes to the input.
                prop_assert_eq!(value.encode(), bytes);
            }
        }

        #[test]
        fn decode_of_mutated_encodings_never_panics(
            value in arbitrary_value(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = value.encode();
            for (index, byte) in flips {
                let i = index.index(bytes.len());
                bytes[i] = byte;
            }
            let cut = cut.index(bytes.len() + 1);
            if let Ok(decoded) = Value::decode(&bytes[..cut]) {
                prop_assert_eq!(decoded.encode(), &bytes[..cut]);
            }
        }
    }
}
