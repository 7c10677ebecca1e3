//! TNetStrings (reference §2.1): the encoding of Pushpin's ZeroMQ publish input (`T`-prefixed or
//! bare frames on the PULL and SUB sockets) and of its ZRPC command socket.
//!
//! A value is `<decimal length>:<payload><type char>` with the type characters `,` (byte
//! string), `#` (integer), `^` (float), `!` (boolean), `~` (null), `]` (list) and `}` (map of
//! byte-string keys to values). Every string is raw bytes; nothing here assumes UTF-8.
//!
//! The parser is strict where Pushpin's is lax, because a malformed frame is far more likely to
//! be a bug in a publisher than something worth guessing at: length prefixes are plain decimal
//! without leading zeros, nested values must fill their container's payload exactly, integers
//! must fit an `i64`, booleans are exactly `true`/`false`, a null's payload is empty, and
//! nesting is bounded by [`MAX_DEPTH`] so a hostile frame cannot exhaust the stack. Every error
//! carries the byte offset where the input went wrong.
//!
//! Maps keep their keys in wire order (a `Vec` of pairs); when a key repeats, [`Value::get`]
//! returns the last one, which is what Pushpin's hash-based decoder ends up with.

use std::fmt;

/// Maximum nesting of lists and maps. Publish items nest four levels deep at most
/// (item → formats → format → headers → pair), so 64 leaves plenty of room.
pub const MAX_DEPTH: usize = 64;

/// Largest payload length the parser accepts (the tnetstring spec's nine decimal digits).
pub const MAX_LENGTH: usize = 999_999_999;

/// A tnetstring value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `,`: a byte string.
    Bytes(Vec<u8>),
    /// `#`: a signed integer.
    Int(i64),
    /// `^`: a float.
    Float(f64),
    /// `!`: `true` or `false`.
    Bool(bool),
    /// `~`: null (`0:~`).
    Null,
    /// `]`: a list of values.
    List(Vec<Value>),
    /// `}`: a map from byte-string keys to values, in wire order.
    Map(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// Convenience constructor for a byte-string value.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Self::Bytes(b.into())
    }

    /// Convenience constructor for a map from `(key, value)` pairs.
    pub fn map<K: Into<Vec<u8>>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value under `key` if this is a map (the last one if the key repeats).
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Self::Map(pairs) => pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The bytes if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The pairs if this is a map.
    pub fn as_map(&self) -> Option<&[(Vec<u8>, Value)]> {
        match self {
            Self::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Serializes the value (see [`to_vec`]).
    pub fn to_vec(&self) -> Vec<u8> {
        to_vec(self)
    }

    /// Number of bytes [`to_vec`] produces for this value.
    pub fn encoded_len(&self) -> usize {
        let payload = self.payload_len();
        decimal_len(payload) + 1 + payload + 1
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Int(i) => i.to_string().len(),
            Self::Float(f) => format_float(*f).len(),
            Self::Bool(true) => 4,
            Self::Bool(false) => 5,
            Self::Null => 0,
            Self::List(l) => l.iter().map(Value::encoded_len).sum(),
            Self::Map(m) => m
                .iter()
                .map(|(k, v)| decimal_len(k.len()) + k.len() + 2 + v.encoded_len())
                .sum(),
        }
    }
}

/// Why a tnetstring could not be parsed. `offset` is the byte position in the whole input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TnetError {
    /// A value's type character is not one of `,#^!~]}`.
    #[error("unknown tnetstring type {byte:#04x} at offset {offset}")]
    BadType {
        /// Where the type character is.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A boolean payload is not exactly `true` or `false`.
    #[error("invalid tnetstring boolean at offset {offset}")]
    BadBool {
        /// Where the payload starts.
        offset: usize,
    },
    /// A float payload is not a decimal floating-point number.
    #[error("invalid tnetstring float at offset {offset}")]
    BadFloat {
        /// Where the payload starts.
        offset: usize,
    },
    /// An integer payload is not `-?[0-9]+` or does not fit an `i64`.
    #[error("invalid tnetstring integer at offset {offset}")]
    BadInt {
        /// Where the payload starts.
        offset: usize,
    },
    /// The length prefix is empty, not decimal, has a leading zero or exceeds [`MAX_LENGTH`].
    #[error("invalid tnetstring length at offset {offset}")]
    BadLength {
        /// Where the length prefix starts.
        offset: usize,
    },
    /// A map key is not a byte string.
    #[error("tnetstring map key at offset {offset} is not a byte string")]
    BadMapKey {
        /// Where the key starts.
        offset: usize,
    },
    /// A null has a non-empty payload.
    #[error("invalid tnetstring null at offset {offset}")]
    BadNull {
        /// Where the payload starts.
        offset: usize,
    },
    /// A map's payload ends after a key, without its value.
    #[error("tnetstring map key at offset {offset} has no value")]
    MissingMapValue {
        /// Where the key starts.
        offset: usize,
    },
    /// The length prefix is not followed by `:` (or the input ends inside it).
    #[error("missing ':' after tnetstring length at offset {offset}")]
    MissingColon {
        /// Where the length prefix starts.
        offset: usize,
    },
    /// Lists and maps nest deeper than [`MAX_DEPTH`].
    #[error("tnetstring nests deeper than {max} levels at offset {offset}")]
    TooDeep {
        /// Where the value that went too deep starts.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes remain after the top-level value.
    #[error("{len} unexpected bytes after the tnetstring value at offset {offset}")]
    TrailingData {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// The input (or the enclosing container's payload) ends before the value does.
    #[error("truncated tnetstring value at offset {offset}")]
    Truncated {
        /// Where the value that does not fit starts.
        offset: usize,
    },
}

/// Parses exactly one value that must span the whole input.
pub fn parse(input: &[u8]) -> Result<Value, TnetError> {
    let (value, used) = parse_prefix(input)?;
    if used != input.len() {
        return Err(TnetError::TrailingData {
            offset: used,
            len: input.len() - used,
        });
    }
    Ok(value)
}

/// Parses one value at the start of `input` and returns it with the number of bytes it used.
pub fn parse_prefix(input: &[u8]) -> Result<(Value, usize), TnetError> {
    let mut parser = Parser { input };
    let (value, end) = parser.value(0, input.len(), 0)?;
    Ok((value, end))
}

/// Serializes a value.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.encoded_len());
    write(value, &mut out);
    out
}

/// Appends the serialization of `value` to `out`.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(value.payload_len().to_string().as_bytes());
    out.push(b':');
    match value {
        Value::Bytes(b) => {
            out.extend_from_slice(b);
            out.push(b',');
        }
        Value::Int(i) => {
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'#');
        }
        Value::Float(f) => {
            out.extend_from_slice(format_float(*f).as_bytes());
            out.push(b'^');
        }
        Value::Bool(b) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            out.push(b'!');
        }
        Value::Null => out.push(b'~'),
        Value::List(items) => {
            for item in items {
                write(item, out);
            }
            out.push(b']');
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                out.extend_from_slice(k.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(k);
                out.push(b',');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

/// Shortest text that parses back to the same float (`1.5`, `100.0`, `1e20`, `inf`, `NaN`).
fn format_float(f: f64) -> String {
    format!("{f:?}")
}

fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

struct Parser<'a> {
    input: &'a [u8],
}

impl Parser<'_> {
    /// Parses one value starting at `start` that must end at or before `limit`; returns the
    /// value and the offset just past its type character.
    fn value(
        &mut self,
        start: usize,
        limit: usize,
        depth: usize,
    ) -> Result<(Value, usize), TnetError> {
        let (len, payload_start) = self.length(start, limit)?;
        // `payload_start + len` cannot overflow: len <= MAX_LENGTH and payload_start <= input length.
        let type_at = payload_start + len;
        if type_at >= limit {
            return Err(TnetError::Truncated { offset: start });
        }
        let payload = &self.input[payload_start..type_at];
        let value = match self.input[type_at] {
            b',' => Value::Bytes(payload.to_vec()),
            b'#' => Value::Int(parse_int(payload).ok_or(TnetError::BadInt {
                offset: payload_start,
            })?),
            b'^' => Value::Float(parse_float(payload).ok_or(TnetError::BadFloat {
                offset: payload_start,
            })?),
            b'!' => match payload {
                b"true" => Value::Bool(true),
                b"false" => Value::Bool(false),
                _ => {
                    return Err(TnetError::BadBool {
                        offset: payload_start,
                    })
                }
            },
            b'~' => {
                if !payload.is_empty() {
                    return Err(TnetError::BadNull {
                        offset: payload_start,
                    });
                }
                Value::Null
            }
            b']' => {
                let depth = self.enter(start, depth)?;
                let mut items = Vec::new();
                let mut at = payload_start;
                while at < type_at {
                    let (item, next) = self.value(at, type_at, depth)?;
                    items.push(item);
                    at = next;
                }
                Value::List(items)
            }
            b'}' => {
                let depth = self.enter(start, depth)?;
                let mut pairs = Vec::new();
                let mut at = payload_start;
                while at < type_at {
                    let (key, next) = self.value(at, type_at, depth)?;
                    let Value::Bytes(key) = key else {
                        return Err(TnetError::BadMapKey { offset: at });
                    };
                    if next >= type_at {
                        return Err(TnetError::MissingMapValue { offset: at });
                    }
                    let (value, next) = self.value(next, type_at, depth)?;
                    pairs.push((key, value));
                    at = next;
                }
                Value::Map(pairs)
            }
            byte => {
                return Err(TnetError::BadType {
                    offset: type_at,
                    byte,
                })
            }
        };
        Ok((value, type_at + 1))
    }

    fn enter(&self, offset: usize, depth: usize) -> Result<usize, TnetError> {
        if depth >= MAX_DEPTH {
            return Err(TnetError::TooDeep {
                offset,
                max: MAX_DEPTH,
            });
        }
        Ok(depth + 1)
    }

    /// Reads `<digits>:` at `start`; returns the length and the payload offset.
    fn length(&self, start: usize, limit: usize) -> Result<(usize, usize), TnetError> {
        let window = &self.input[start..limit];
        let digits = window.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == window.len() {
            // Ran off the end while reading digits (or nothing at all).
            return Err(if digits == 0 && window.is_empty() {
                TnetError::Truncated { offset: start }
            } else {
                TnetError::MissingColon { offset: start }
            });
        }
        if window[digits] != b':' {
            return Err(if digits == 0 {
                TnetError::BadLength { offset: start }
            } else {
                TnetError::MissingColon { offset: start }
            });
        }
        if digits == 0 || digits > 9 || (digits > 1 && window[0] == b'0') {
            return Err(TnetError::BadLength { offset: start });
        }
        let len = window[..digits]
            .iter()
            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
        Ok((len, start + digits + 1))
    }
}

fn parse_int(payload: &[u8]) -> Option<i64> {
    let digits = payload.strip_prefix(b"-").unwrap_or(payload);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(payload).ok()?.parse().ok()
}

fn parse_float(payload: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(payload).ok()?;
    // Rust's parser accepts a leading '+' and words like "infinity"; that leniency is harmless.
    if text.is_empty() || text.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Value {
    /// A readable rendering for logs: byte strings as escaped double-quoted text, like
    /// Pushpin's debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write_escaped(f, b),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("null"),
            Self::List(items) => {
                f.write_str("[")?;
                for (n, item) in items.iter().enumerate() {
                    f.write_str(if n == 0 { " " } else { ", " })?;
                    write!(f, "{item}")?;
                }
                f.write_str(" ]")
            }
            Self::Map(pairs) => {
                f.write_str("{")?;
                for (n, (k, v)) in pairs.iter().enumerate() {
                    f.write_str(if n == 0 { " " } else { ", " })?;
                    write_escaped(f, k)?;
                    write!(f, ": {v}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &b in bytes {
        match b {
            b'\\' => f.write_str("\\\\")?,
            b'"' => f.write_str("\\\"")?,
            b'\n' => f.write_str("\\n")?,
            0x20..=0x7e => write!(f, "{}", char::from(b))?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::bytes(s)
    }

    /// Parses `input`, checks it re-serializes to the same bytes, and returns the value.
    fn round_trip(input: &[u8]) -> Value {
        let value = parse(input).unwrap();
        assert_eq!(to_vec(&value), input, "re-serialization differs");
        assert_eq!(value.encoded_len(), input.len());
        value
    }

    #[test]
    fn scalars() {
        assert_eq!(round_trip(b"5:hello,"), b("hello"));
        assert_eq!(round_trip(b"0:,"), b(""));
        assert_eq!(round_trip(b"2:42#"), Value::Int(42));
        assert_eq!(round_trip(b"2:-7#"), Value::Int(-7));
        assert_eq!(round_trip(b"1:0#"), Value::Int(0));
        assert_eq!(round_trip(b"19:9223372036854775807#"), Value::Int(i64::MAX));
        assert_eq!(
            round_trip(b"20:-9223372036854775808#"),
            Value::Int(i64::MIN)
        );
        assert_eq!(round_trip(b"3:1.5^"), Value::Float(1.5));
        assert_eq!(round_trip(b"4:true!"), Value::Bool(true));
        assert_eq!(round_trip(b"5:false!"), Value::Bool(false));
        assert_eq!(round_trip(b"0:~"), Value::Null);
        assert_eq!(round_trip(b"0:]"), Value::List(vec![]));
        assert_eq!(round_trip(b"0:}"), Value::Map(vec![]));
    }

    #[test]
    fn bytes_are_raw() {
        let v = round_trip(b"4:\x00\xff:,,");
        assert_eq!(v.as_bytes(), Some(&b"\x00\xff:,"[..]));
    }

    #[test]
    fn floats_in_other_spellings_parse() {
        assert_eq!(parse(b"5:1e+20^").unwrap(), Value::Float(1e20));
        assert_eq!(parse(b"3:100^").unwrap(), Value::Float(100.0));
        assert_eq!(to_vec(&Value::Float(100.0)), b"5:100.0^");
        assert_eq!(to_vec(&Value::Float(-0.25)), b"5:-0.25^");
    }

    /// §3.10 wire examples, each after its `T` prefix, must parse and re-serialize byte for byte.
    #[test]
    fn golden_zhttp_examples() {
        let request = b"277:4:from,7:connmgr,2:id,2:42,3:seq,1:0#3:ext,15:5:multi,4:true!}6:method,3:GET,3:uri,25:http://example.com/stream,7:headers,45:22:4:Host,11:example.com,]15:6:Accept,3:*/*,]]7:credits,4:8192#6:stream,4:true!11:router-resp,4:true!12:peer-address,11:203.0.113.7,9:peer-port,5:50122#}";
        let v = round_trip(request);
        assert_eq!(v.get(b"from"), Some(&b("connmgr")));
        assert_eq!(v.get(b"seq"), Some(&Value::Int(0)));
        assert_eq!(v.get(b"credits"), Some(&Value::Int(8192)));
        assert_eq!(v.get(b"peer-port"), Some(&Value::Int(50122)));
        assert_eq!(
            v.get(b"ext"),
            Some(&Value::map([("multi", Value::Bool(true))]))
        );
        assert_eq!(
            v.get(b"headers"),
            Some(&Value::List(vec![
                Value::List(vec![b("Host"), b("example.com")]),
                Value::List(vec![b("Accept"), b("*/*")]),
            ]))
        );

        let response = b"141:4:from,9:proxy_123,2:id,2:42,3:seq,1:0#4:code,3:200#6:reason,2:OK,7:headers,34:30:12:Content-Type,10:text/plain,]]4:body,3:hi\n,4:more,4:true!}";
        let v = round_trip(response);
        assert_eq!(v.get(b"body"), Some(&b("hi\n")));
        assert_eq!(v.get(b"more"), Some(&Value::Bool(true)));

        let credit = b"67:4:from,7:connmgr,2:id,2:42,3:seq,1:1#4:type,6:credit,7:credits,1:3#}";
        assert_eq!(round_trip(credit).get(b"type"), Some(&b("credit")));

        let multi = b"125:4:from,11:handler_456,2:id,48:20:2:id,2:42,3:seq,1:5#}20:2:id,2:43,3:seq,1:9#}]4:type,10:keep-alive,3:ext,15:5:multi,4:true!}}";
        let v = round_trip(multi);
        assert_eq!(
            v.get(b"id").and_then(Value::as_list).map(<[_]>::len),
            Some(2)
        );

        round_trip(b"63:4:from,9:proxy_123,2:id,2:42,3:seq,1:2#4:type,13:handoff-start,}");
        round_trip(b"63:4:from,7:connmgr,2:id,2:42,3:seq,1:1#4:type,15:handoff-proceed,}");
    }

    /// §6.6 command-socket replies observed from Pushpin 1.36.
    #[test]
    fn golden_command_replies() {
        let ok = round_trip(b"37:2:id,1:1,7:success,4:true!5:value,0:~}");
        assert_eq!(
            ok,
            Value::map([
                ("id", b("1")),
                ("success", Value::Bool(true)),
                ("value", Value::Null),
            ])
        );
        let err = round_trip(b"59:2:id,1:1,9:condition,16:method-not-found,7:success,5:false!}");
        assert_eq!(err.get(b"condition"), Some(&b("method-not-found")));
        assert_eq!(err.get(b"success"), Some(&Value::Bool(false)));
    }

    #[test]
    fn serializes_built_values() {
        let v = Value::map([
            ("channel", b("test")),
            (
                "formats",
                Value::map([("http-stream", Value::map([("content", b("hi\n"))]))]),
            ),
        ]);
        assert_eq!(
            to_vec(&v),
            b"66:7:channel,4:test,7:formats,35:11:http-stream,16:7:content,3:hi\n,}}}"
        );
        assert_eq!(parse(&to_vec(&v)).unwrap(), v);
    }

    #[test]
    fn repeated_map_key_returns_last() {
        let v = parse(b"16:1:a,1:1,1:a,1:2,}").unwrap();
        assert_eq!(v.get(b"a"), Some(&b("2")));
        assert_eq!(v.get(b"b"), None);
    }

    #[test]
    fn exact_errors() {
        use TnetError::*;
        let cases: &[(&[u8], TnetError)] = &[
            (b"", Truncated { offset: 0 }),
            (b"5", MissingColon { offset: 0 }),
            (b"5x", MissingColon { offset: 0 }),
            (b":", BadLength { offset: 0 }),
            (b"x:", BadLength { offset: 0 }),
            (b"05:hello,", BadLength { offset: 0 }),
            (b"1234567890:", BadLength { offset: 0 }),
            (b"5:hell", Truncated { offset: 0 }),
            (b"5:hello", Truncated { offset: 0 }),
            (
                b"5:hello?",
                BadType {
                    offset: 7,
                    byte: b'?',
                },
            ),
            (b"2:4x#", BadInt { offset: 2 }),
            (b"0:#", BadInt { offset: 2 }),
            (b"2:+4#", BadInt { offset: 2 }),
            (b"19:9223372036854775808#", BadInt { offset: 3 }),
            (b"3:abc^", BadFloat { offset: 2 }),
            (b"4:True!", BadBool { offset: 2 }),
            (b"1:x~", BadNull { offset: 2 }),
            (b"4:1:a,}", MissingMapValue { offset: 2 }),
            (b"8:1:1#1:a,}", BadMapKey { offset: 2 }),
            // The inner value claims more bytes than its container holds.
            (b"5:3:abc]", Truncated { offset: 2 }),
            (b"0:~x", TrailingData { offset: 3, len: 1 }),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse(input).as_ref(),
                Err(expected),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            TnetError::BadType {
                offset: 7,
                byte: b'?'
            }
            .to_string(),
            "unknown tnetstring type 0x3f at offset 7"
        );
        assert_eq!(
            TnetError::TrailingData { offset: 3, len: 1 }.to_string(),
            "1 unexpected bytes after the tnetstring value at offset 3"
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = Value::Null;
        for _ in 0..MAX_DEPTH {
            v = Value::List(vec![v]);
        }
        let ok = to_vec(&v);
        assert_eq!(parse(&ok).unwrap(), v);
        let too_deep = to_vec(&Value::List(vec![v]));
        assert!(matches!(
            parse(&too_deep),
            Err(TnetError::TooDeep { max: MAX_DEPTH, .. })
        ));
    }

    #[test]
    fn prefix_parse_reports_length() {
        let (v, used) = parse_prefix(b"1:a,rest").unwrap();
        assert_eq!(v, b("a"));
        assert_eq!(used, 4);
    }

    #[test]
    fn display_escapes() {
        let v = Value::map([(
            "k\"",
            Value::List(vec![b("a\n\x01"), Value::Int(1), Value::Null]),
        )]);
        assert_eq!(v.to_string(), r#"{ "k\"": [ "a\n\x01", 1, null ] }"#);
    }
}
