//! Field access over JSON and tnetstring values with Pushpin's exact type rules and error texts.
//!
//! Pushpin turns both JSON and tnetstrings into Qt variants and reads them through a handful of
//! helpers (`getString`, `getList`, `getKeyedObject`, `canConvert(Int)`), whose quirks decide
//! what a publisher or backend may send. This module reproduces them over both inputs, so the
//! instruct and publish parsers can say "read string field `id` of the publish item object" and
//! get Pushpin's behaviour and message:
//!
//! - A field that is absent is absent. A JSON `null` is a *present* value of the wrong type
//!   (`"id": null` → `… contains 'id' with wrong type` **[observed 1.36]**). A tnetstring null is
//!   Qt's invalid variant, which optional reads treat as absent.
//! - Strings accept JSON strings and tnetstring byte strings (decoded as UTF-8, lossily).
//! - Integers (`code`, `timeout`, `size`) accept anything Qt can convert: numbers (rounded half
//!   up like Qt's `qRound64`: `201.6` → 202, `202.5` → 203, `-0.4` → 0), booleans (1/0) and
//!   strings, where text that is not a decimal `int` becomes 0 (`"code": "abc"` → status 0,
//!   `" 204 "` → 204 **[observed 1.36]**). Lists, objects and null are the wrong type.
//! - JSON objects are iterated in key order (Qt's `QVariantMap` is sorted), tnetstring maps in
//!   wire order.

use std::borrow::Cow;

use crate::grip::headers::parse_qt_int;
use crate::tnetstring;

/// A field-level problem, worded exactly as Pushpin words it. `parent` names the object being
/// read as Pushpin does (`publish item object`, `'http-response'`, `hold`, `channel`,
/// `response`, `keep-alive`, `headers`, `'meta'`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// An element of a list has the wrong type (`filters contains value with wrong type`,
    /// `headers contains element with wrong type`, `content-filters contains element with
    /// wrong type`).
    #[error("{list} contains {element} with wrong type")]
    ElementWrongType {
        /// The list (`filters`, `headers`, `content-filters`).
        list: &'static str,
        /// How Pushpin calls the element (`value`, `element`).
        element: &'static str,
    },
    /// A header given as a `[name, value]` pair has a non-string part.
    #[error("header contains {0} element with wrong type")]
    HeaderPartWrongType(&'static str),
    /// A header given as a list does not have exactly two elements.
    #[error("headers contains list with wrong number of elements")]
    HeaderPairLength,
    /// A number is out of range (`'http-response' contains 'code' with invalid value`).
    #[error("{parent} contains '{field}' with invalid value")]
    InvalidValue {
        /// The object.
        parent: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A required field is absent.
    #[error("{parent} does not contain '{field}'")]
    Missing {
        /// The object.
        parent: &'static str,
        /// The field.
        field: &'static str,
    },
    /// None of the alternative content fields is present
    /// (`'http-stream' does not contain 'content' or 'content-bin'`).
    #[error("{parent} does not contain {alternatives}")]
    MissingContent {
        /// The object.
        parent: &'static str,
        /// The alternatives, quoted as Pushpin quotes them.
        alternatives: &'static str,
    },
    /// The value being read is not an object (`publish item object is not an object`).
    #[error("{0} is not an object")]
    NotAnObject(&'static str),
    /// An enumerated string has a value Pushpin does not know
    /// (`'ws-message' contains 'type' with unknown value`).
    #[error("{parent} contains '{field}' with unknown value")]
    UnknownValue {
        /// The object.
        parent: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field (or a map entry: `headers contains 'X' with wrong type`, `'meta' contains 'u'
    /// with wrong type`) has the wrong type.
    #[error("{parent} contains '{field}' with wrong type")]
    WrongType {
        /// The object.
        parent: &'static str,
        /// The field or the entry's key.
        field: String,
    },
}

impl FieldError {
    pub(crate) fn wrong_type(parent: &'static str, field: impl Into<String>) -> Self {
        Self::WrongType {
            parent,
            field: field.into(),
        }
    }
}

/// A borrowed JSON or tnetstring value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Var<'a> {
    Json(&'a serde_json::Value),
    Tnet(&'a tnetstring::Value),
}

impl<'a> Var<'a> {
    /// True for JSON input, where Pushpin also recognises the base64 `*-bin` fields.
    pub(crate) fn is_json(self) -> bool {
        matches!(self, Self::Json(_))
    }

    pub(crate) fn is_object(self) -> bool {
        matches!(
            self,
            Self::Json(serde_json::Value::Object(_)) | Self::Tnet(tnetstring::Value::Map(_))
        )
    }

    /// Qt's "valid" variant: everything but a tnetstring null.
    pub(crate) fn is_valid(self) -> bool {
        !matches!(self, Self::Tnet(tnetstring::Value::Null))
    }

    /// The value under `key`, if this is an object that has it (`keyedObjectGetValue`).
    pub(crate) fn get(self, key: &str) -> Option<Var<'a>> {
        match self {
            Self::Json(serde_json::Value::Object(m)) => m.get(key).map(Var::Json),
            Self::Tnet(v) => v.get(key.as_bytes()).map(Var::Tnet),
            Self::Json(_) => None,
        }
    }

    /// Text of a string value (JSON string or tnetstring bytes).
    pub(crate) fn as_str(self) -> Option<Cow<'a, str>> {
        match self {
            Self::Json(serde_json::Value::String(s)) => Some(Cow::Borrowed(s)),
            Self::Tnet(tnetstring::Value::Bytes(b)) => Some(String::from_utf8_lossy(b)),
            _ => None,
        }
    }

    /// Bytes of a string value: raw for tnetstring, UTF-8 for JSON.
    pub(crate) fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Self::Json(serde_json::Value::String(s)) => Some(s.as_bytes()),
            Self::Tnet(tnetstring::Value::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn as_bool(self) -> Option<bool> {
        match self {
            Self::Json(serde_json::Value::Bool(b)) | Self::Tnet(tnetstring::Value::Bool(b)) => {
                Some(*b)
            }
            _ => None,
        }
    }

    /// Qt's `canConvert(Int)` followed by `toInt()`.
    pub(crate) fn to_int(self) -> Option<i32> {
        match self {
            Self::Json(serde_json::Value::Number(n)) => {
                // Qt holds every JSON number as a double.
                Some(qt_round(n.as_f64().unwrap_or(0.0)))
            }
            Self::Json(serde_json::Value::String(s)) => {
                Some(parse_qt_int(s.as_bytes()).unwrap_or(0))
            }
            Self::Tnet(tnetstring::Value::Bytes(b)) => Some(parse_qt_int(b).unwrap_or(0)),
            // Truncation to 32 bits is what `toInt()` does with a 64-bit integer.
            Self::Tnet(tnetstring::Value::Int(i)) => Some(*i as i32),
            Self::Tnet(tnetstring::Value::Float(f)) => Some(qt_round(*f)),
            _ => self.as_bool().map(i32::from),
        }
    }

    pub(crate) fn as_list(self) -> Option<Vec<Var<'a>>> {
        match self {
            Self::Json(serde_json::Value::Array(a)) => Some(a.iter().map(Var::Json).collect()),
            Self::Tnet(tnetstring::Value::List(l)) => Some(l.iter().map(Var::Tnet).collect()),
            _ => None,
        }
    }

    /// Entries of an object: JSON sorted by key, tnetstring in wire order.
    pub(crate) fn entries(self) -> Option<Vec<(Cow<'a, str>, Var<'a>)>> {
        match self {
            Self::Json(serde_json::Value::Object(m)) => {
                let mut out: Vec<_> = m
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Var::Json(v)))
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Some(out)
            }
            Self::Tnet(tnetstring::Value::Map(m)) => Some(
                m.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), Var::Tnet(v)))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// `getChild`: the field if present and valid; an error if this is not an object or a
    /// required field is missing.
    pub(crate) fn child(
        self,
        parent: &'static str,
        field: &'static str,
        required: bool,
    ) -> Result<Option<Var<'a>>, FieldError> {
        if !self.is_object() {
            return Err(FieldError::NotAnObject(parent));
        }
        match self.get(field) {
            Some(v) if v.is_valid() || required => Ok(Some(v)),
            None if required => Err(FieldError::Missing { parent, field }),
            _ => Ok(None),
        }
    }

    /// `getString`.
    pub(crate) fn string(
        self,
        parent: &'static str,
        field: &'static str,
        required: bool,
    ) -> Result<Option<String>, FieldError> {
        match self.child(parent, field, required)? {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.into_owned()))
                .ok_or_else(|| FieldError::wrong_type(parent, field)),
        }
    }

    /// `getList`.
    pub(crate) fn list(
        self,
        parent: &'static str,
        field: &'static str,
        required: bool,
    ) -> Result<Option<Vec<Var<'a>>>, FieldError> {
        match self.child(parent, field, required)? {
            None => Ok(None),
            Some(v) => v
                .as_list()
                .map(Some)
                .ok_or_else(|| FieldError::wrong_type(parent, field)),
        }
    }

    /// `getKeyedObject`.
    pub(crate) fn object(
        self,
        parent: &'static str,
        field: &'static str,
        required: bool,
    ) -> Result<Option<Var<'a>>, FieldError> {
        match self.child(parent, field, required)? {
            None => Ok(None),
            Some(v) if v.is_object() => Ok(Some(v)),
            Some(_) => Err(FieldError::wrong_type(parent, field)),
        }
    }

    /// A present (even null) integer field: `keyedObjectContains` + `canConvert(Int)`.
    pub(crate) fn int(
        self,
        parent: &'static str,
        field: &'static str,
    ) -> Result<Option<i32>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .to_int()
                .map(Some)
                .ok_or_else(|| FieldError::wrong_type(parent, field)),
        }
    }

    /// A string-valued map such as `meta`: every value must be a string
    /// (`'meta' contains 'u' with wrong type`).
    pub(crate) fn string_map(
        self,
        map_name: &'static str,
    ) -> Result<Vec<(String, String)>, FieldError> {
        let mut out = Vec::new();
        for (k, v) in self.entries().unwrap_or_default() {
            let value = v
                .as_str()
                .ok_or_else(|| FieldError::wrong_type(map_name, k.as_ref()))?;
            out.push((k.into_owned(), value.into_owned()));
        }
        Ok(out)
    }

    /// Response headers as a list of `[name, value]` pairs or an object of name → value, with
    /// Pushpin's messages for each malformed shape. Names and values are UTF-8 text.
    pub(crate) fn headers(self, parent: &'static str) -> Result<Vec<(String, String)>, FieldError> {
        if let Some(items) = self.as_list() {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let pair = item.as_list().ok_or(FieldError::ElementWrongType {
                    list: "headers",
                    element: "element",
                })?;
                let [name, value] = pair[..] else {
                    return Err(FieldError::HeaderPairLength);
                };
                let name = name
                    .as_str()
                    .ok_or(FieldError::HeaderPartWrongType("name"))?;
                let value = value
                    .as_str()
                    .ok_or(FieldError::HeaderPartWrongType("value"))?;
                out.push((name.into_owned(), value.into_owned()));
            }
            Ok(out)
        } else if self.is_object() {
            self.string_map("headers")
        } else {
            Err(FieldError::wrong_type(parent, "headers"))
        }
    }

    /// A list of strings such as `content-filters` (`content-filters contains element with wrong
    /// type`).
    pub(crate) fn string_list(
        items: &[Var<'a>],
        list: &'static str,
        element: &'static str,
    ) -> Result<Vec<String>, FieldError> {
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(Cow::into_owned)
                    .ok_or(FieldError::ElementWrongType { list, element })
            })
            .collect()
    }
}

/// Qt 5's `qRound64` (round half up, also for negatives: -1.5 → -1) followed by `toInt()`'s
/// truncation to 32 bits.
fn qt_round(d: f64) -> i32 {
    // `as` saturates for out-of-range floats and maps NaN to 0: a defined stand-in for the
    // undefined behaviour Qt has there.
    ((d + 0.5).floor() as i64) as i32
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn qt_int_conversions() {
        let cases = [
            (json!(200), Some(200)),
            (json!(201.6), Some(202)),
            (json!(202.5), Some(203)),
            (json!(-0.4), Some(0)),
            (json!(-1.5), Some(-1)),
            (json!("201"), Some(201)),
            (json!(" 204 "), Some(204)),
            (json!("abc"), Some(0)),
            (json!(true), Some(1)),
            (json!(false), Some(0)),
            (json!(null), None),
            (json!([1]), None),
            (json!({}), None),
        ];
        for (value, expected) in cases {
            assert_eq!(Var::Json(&value).to_int(), expected, "{value}");
        }
        assert_eq!(
            Var::Tnet(&tnetstring::Value::Int(5_000_000_000)).to_int(),
            Some(705_032_704)
        );
        assert_eq!(
            Var::Tnet(&tnetstring::Value::bytes("42")).to_int(),
            Some(42)
        );
        assert_eq!(Var::Tnet(&tnetstring::Value::Null).to_int(), None);
    }

    #[test]
    fn null_is_present_in_json_absent_in_tnetstring() {
        let j = json!({"id": null});
        assert_eq!(
            Var::Json(&j).string("publish item object", "id", false),
            Err(FieldError::wrong_type("publish item object", "id"))
        );
        let t = tnetstring::Value::map([("id", tnetstring::Value::Null)]);
        assert_eq!(
            Var::Tnet(&t).string("publish item object", "id", false),
            Ok(None)
        );
        assert_eq!(
            Var::Tnet(&t).string("publish item object", "id", true),
            Err(FieldError::wrong_type("publish item object", "id"))
        );
    }

    #[test]
    fn messages() {
        let j = json!({"a": 1});
        assert_eq!(
            Var::Json(&j)
                .string("channel", "name", true)
                .unwrap_err()
                .to_string(),
            "channel does not contain 'name'"
        );
        assert_eq!(
            Var::Json(&json!(5))
                .string("channel", "name", true)
                .unwrap_err()
                .to_string(),
            "channel is not an object"
        );
        assert_eq!(
            Var::Json(&j)
                .list("hold", "a", false)
                .unwrap_err()
                .to_string(),
            "hold contains 'a' with wrong type"
        );
        assert_eq!(
            Var::Json(&json!({"u": 5}))
                .string_map("'meta'")
                .unwrap_err()
                .to_string(),
            "'meta' contains 'u' with wrong type"
        );
    }

    #[test]
    fn headers_shapes() {
        let list = json!([["A", "1"], ["B", "2"]]);
        assert_eq!(
            Var::Json(&list).headers("response").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        let obj = json!({"B": "2", "A": "1"});
        assert_eq!(
            Var::Json(&obj).headers("response").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        let errors = [
            (json!([5]), "headers contains element with wrong type"),
            (
                json!([["a"]]),
                "headers contains list with wrong number of elements",
            ),
            (
                json!([["a", "b", "c"]]),
                "headers contains list with wrong number of elements",
            ),
            (
                json!([[1, "b"]]),
                "header contains name element with wrong type",
            ),
            (
                json!([["a", 2]]),
                "header contains value element with wrong type",
            ),
            (json!({"X": 1}), "headers contains 'X' with wrong type"),
            (json!("x"), "response contains 'headers' with wrong type"),
            (json!(null), "response contains 'headers' with wrong type"),
        ];
        for (value, message) in errors {
            assert_eq!(
                Var::Json(&value)
                    .headers("response")
                    .unwrap_err()
                    .to_string(),
                message
            );
        }
    }
}
