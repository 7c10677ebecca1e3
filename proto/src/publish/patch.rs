//! JSON Patch (RFC 6902, with RFC 6901 pointers) for `http-response` `body-patch` publishes.
//!
//! [`patch_body`] does what Pushpin does to the held response's body: parse it as JSON, apply
//! the operations, serialize compactly with object keys sorted (Qt's JSON objects are sorted
//! maps) and re-append the original trailing `\r\n` or `\n`. **[observed 1.36]**: the body
//! `{"b": [1, 2], "a": 1, "c": {"z": null, "y": 1.5}}\r\n` patched with `replace /a`,
//! `add /b/-` and `add /d` became `{"a":"x","b":[1,2,3],"c":{"y":1.5,"z":null},"d":{"q":[true,null]}}\r\n`.
//! On any failure Pushpin sends an empty body; the caller does that with the error.

use serde_json::Value;

/// Why a patch could not be applied. The document is left unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body to patch is empty or not JSON.
    #[error("failed to parse original response body as JSON")]
    BodyNotJson,
    /// A `from` or `path` is not a valid JSON pointer.
    #[error("invalid JSON pointer '{0}'")]
    InvalidPointer(String),
    /// Operation `index` lacks a string `op`/`path`/`from`, or a `value`.
    #[error("patch operation {index} has no valid '{field}'")]
    MissingField {
        /// Position of the operation.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// `move` into one of the moved value's own children.
    #[error("cannot move '{0}' into itself")]
    MoveIntoItself(String),
    /// A pointer names a location that does not exist (or cannot be added to).
    #[error("path '{0}' not found")]
    NotFound(String),
    /// Operation `index` is not an object.
    #[error("patch operation {0} is not an object")]
    NotAnObject(usize),
    /// A `test` operation failed.
    #[error("test failed at '{0}'")]
    TestFailed(String),
    /// Operation `index` has an unknown `op`.
    #[error("patch operation {index} has unknown op '{op}'")]
    UnknownOp {
        /// Position of the operation.
        index: usize,
        /// The op.
        op: String,
    },
}

/// Applies RFC 6902 operations to `doc`, all or nothing.
pub fn apply_patch(doc: &mut Value, ops: &[Value]) -> Result<(), PatchError> {
    let mut work = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_one(&mut work, index, op)?;
    }
    *doc = work;
    Ok(())
}

/// Patches a JSON response body as Pushpin does (see the module docs).
pub fn patch_body(body: &[u8], ops: &[Value]) -> Result<Vec<u8>, PatchError> {
    let mut doc: Value = serde_json::from_slice(body).map_err(|_| PatchError::BodyNotJson)?;
    apply_patch(&mut doc, ops)?;
    let mut out = Vec::with_capacity(body.len() + 16);
    write_sorted(&doc, &mut out);
    if body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    } else if body.ends_with(b"\n") {
        out.push(b'\n');
    }
    Ok(out)
}

fn apply_one(doc: &mut Value, index: usize, op: &Value) -> Result<(), PatchError> {
    let Value::Object(op) = op else {
        return Err(PatchError::NotAnObject(index));
    };
    let field = |field: &'static str| -> Result<&str, PatchError> {
        op.get(field)
            .and_then(Value::as_str)
            .ok_or(PatchError::MissingField { index, field })
    };
    let value = || -> Result<Value, PatchError> {
        op.get("value").cloned().ok_or(PatchError::MissingField {
            index,
            field: "value",
        })
    };
    let name = field("op")?;
    let path = field("path")?;
    let tokens = parse_pointer(path)?;
    match name {
        "add" => add(doc, path, &tokens, value()?),
        "remove" => remove(doc, path, &tokens).map(drop),
        "replace" => {
            let target = get_mut(doc, &tokens).ok_or_else(|| PatchError::NotFound(path.into()))?;
            *target = value()?;
            Ok(())
        }
        "move" => {
            let from = field("from")?;
            let from_tokens = parse_pointer(from)?;
            if from_tokens.len() < tokens.len() && tokens.starts_with(&from_tokens) {
                return Err(PatchError::MoveIntoItself(from.into()));
            }
            let moved = remove(doc, from, &from_tokens)?;
            add(doc, path, &tokens, moved)
        }
        "copy" => {
            let from = field("from")?;
            let copied = get_mut(doc, &parse_pointer(from)?)
                .ok_or_else(|| PatchError::NotFound(from.into()))?
                .clone();
            add(doc, path, &tokens, copied)
        }
        "test" => {
            let expected = value()?;
            let actual = get_mut(doc, &tokens).ok_or_else(|| PatchError::NotFound(path.into()))?;
            if json_equal(actual, &expected) {
                Ok(())
            } else {
                Err(PatchError::TestFailed(path.into()))
            }
        }
        other => Err(PatchError::UnknownOp {
            index,
            op: other.into(),
        }),
    }
}

/// RFC 6901: `""` is the whole document, otherwise `/`-separated tokens with `~1` for `/` and
/// `~0` for `~`.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PatchError::InvalidPointer(pointer.into()));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(PatchError::InvalidPointer(pointer.into())),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || (token.len() > 1 && token.starts_with('0'))
        || !token.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    token.parse().ok()
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => array_index(token).and_then(move |i| items.get_mut(i)),
        _ => None,
    })
}

fn add(doc: &mut Value, path: &str, tokens: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let not_found = || PatchError::NotFound(path.into());
    match get_mut(doc, parent_tokens).ok_or_else(not_found)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let at = if last == "-" {
                items.len()
            } else {
                array_index(last)
                    .filter(|i| *i <= items.len())
                    .ok_or_else(not_found)?
            };
            items.insert(at, value);
            Ok(())
        }
        _ => Err(not_found()),
    }
}

fn remove(doc: &mut Value, path: &str, tokens: &[String]) -> Result<Value, PatchError> {
    let not_found = || PatchError::NotFound(path.into());
    let (last, parent_tokens) = tokens.split_last().ok_or_else(not_found)?;
    match get_mut(doc, parent_tokens).ok_or_else(not_found)? {
        Value::Object(map) => map.remove(last).ok_or_else(not_found),
        Value::Array(items) => {
            let at = array_index(last)
                .filter(|i| *i < items.len())
                .ok_or_else(not_found)?;
            Ok(items.remove(at))
        }
        _ => Err(not_found()),
    }
}

/// RFC 6902 §4.6 equality: numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Compact JSON with object keys sorted and integral floats written as integers, as Qt writes
/// its (double-only) numbers.
fn write_sorted(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (n, k) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(child) = map.get(k) {
                    write_sorted(child, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_sorted(item, out);
            }
            out.push(b']');
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                out.extend_from_slice((f as i64).to_string().as_bytes());
            }
            _ => write_scalar(v, out),
        },
        _ => write_scalar(v, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar `Value` into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(doc: Value, ops: Value) -> Result<Value, PatchError> {
        let mut doc = doc;
        let ops = ops.as_array().cloned().unwrap_or_default();
        apply_patch(&mut doc, &ops).map(|()| doc)
    }

    /// Examples from RFC 6902 appendix A.
    #[test]
    fn rfc6902_examples() {
        assert_eq!(
            patched(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}])
            )
            .unwrap(),
            json!({"baz": "qux", "foo": "bar"})
        );
        assert_eq!(
            patched(
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
            )
            .unwrap(),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        assert_eq!(
            patched(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}])
            )
            .unwrap(),
            json!({"foo": "bar"})
        );
        assert_eq!(
            patched(
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}])
            )
            .unwrap(),
            json!({"foo": ["bar", "baz"]})
        );
        assert_eq!(
            patched(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}])
            )
            .unwrap(),
            json!({"baz": "boo", "foo": "bar"})
        );
        assert_eq!(
            patched(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            )
            .unwrap(),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            patched(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            )
            .unwrap(),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            patched(
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
                json!([
                    {"op": "test", "path": "/baz", "value": "qux"},
                    {"op": "test", "path": "/foo/1", "value": 2.0}
                ])
            )
            .unwrap(),
            json!({"baz": "qux", "foo": ["a", 2, "c"]})
        );
        assert_eq!(
            patched(
                json!({"baz": "qux"}),
                json!([{"op": "test", "path": "/baz", "value": "bar"}])
            ),
            Err(PatchError::TestFailed("/baz".into()))
        );
        assert_eq!(
            patched(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])
            )
            .unwrap(),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
        assert_eq!(
            patched(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz/bat", "value": "qux"}])
            ),
            Err(PatchError::NotFound("/baz/bat".into()))
        );
        assert_eq!(
            patched(
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}])
            )
            .unwrap(),
            json!({"/": 9, "~1": 10})
        );
        assert_eq!(
            patched(
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
            )
            .unwrap(),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
    }

    #[test]
    fn copy_root_and_atomicity() {
        assert_eq!(
            patched(
                json!({"a": {"b": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/c"}])
            )
            .unwrap(),
            json!({"a": {"b": 1}, "c": {"b": 1}})
        );
        assert_eq!(
            patched(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": [1]}])
            )
            .unwrap(),
            json!([1])
        );
        // A failing second operation leaves the document untouched.
        let mut doc = json!({"a": 1});
        let ops = [
            json!({"op": "add", "path": "/b", "value": 2}),
            json!({"op": "remove", "path": "/zz"}),
        ];
        assert_eq!(
            apply_patch(&mut doc, &ops),
            Err(PatchError::NotFound("/zz".into()))
        );
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn malformed_operations() {
        let e = |ops: Value| patched(json!({"a": [1]}), ops).unwrap_err();
        assert_eq!(e(json!([1])), PatchError::NotAnObject(0));
        assert_eq!(
            e(json!([{"path": "/a"}])),
            PatchError::MissingField {
                index: 0,
                field: "op"
            }
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/x"}])),
            PatchError::MissingField {
                index: 0,
                field: "value"
            }
        );
        assert_eq!(
            e(json!([{"op": "move", "path": "/x"}])),
            PatchError::MissingField {
                index: 0,
                field: "from"
            }
        );
        assert_eq!(
            e(json!([{"op": "bogus", "path": "/a"}])),
            PatchError::UnknownOp {
                index: 0,
                op: "bogus".into()
            }
        );
        assert_eq!(
            e(json!([{"op": "remove", "path": "a"}])),
            PatchError::InvalidPointer("a".into())
        );
        assert_eq!(
            e(json!([{"op": "remove", "path": "/a/~2"}])),
            PatchError::InvalidPointer("/a/~2".into())
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/a/01", "value": 0}])),
            PatchError::NotFound("/a/01".into())
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/a/2", "value": 0}])),
            PatchError::NotFound("/a/2".into())
        );
        assert_eq!(
            e(json!([{"op": "move", "from": "/a", "path": "/a/0"}])),
            PatchError::MoveIntoItself("/a".into())
        );
    }

    #[test]
    fn body_patch_matches_observed_pushpin_output() {
        let body = b"{\"b\": [1, 2], \"a\": 1, \"c\": {\"z\": null, \"y\": 1.5}}\r\n";
        let ops = [
            json!({"op": "replace", "path": "/a", "value": "x"}),
            json!({"op": "add", "path": "/b/-", "value": 3}),
            json!({"op": "add", "path": "/d", "value": {"q": [true, null]}}),
        ];
        assert_eq!(
            String::from_utf8(patch_body(body, &ops).unwrap()).unwrap(),
            "{\"a\":\"x\",\"b\":[1,2,3],\"c\":{\"y\":1.5,\"z\":null},\"d\":{\"q\":[true,null]}}\r\n"
        );
        assert_eq!(patch_body(b"[1.0]\n", &[]).unwrap(), b"[1]\n");
        assert_eq!(
            patch_body(b"{\"s\":\"\\u00e9\\n\"}", &[]).unwrap(),
            "{\"s\":\"\u{e9}\\n\"}".as_bytes()
        );
        assert_eq!(patch_body(b"", &[]), Err(PatchError::BodyNotJson));
        assert_eq!(patch_body(b"not json\n", &[]), Err(PatchError::BodyNotJson));
    }
}
