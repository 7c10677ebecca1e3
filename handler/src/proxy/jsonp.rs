//! JSON-P (reference §8.2): with auto cross-origin, a `GET` carrying the callback parameter is
//! rewritten from its query (`_method`, `_headers`, `_body` or the route's body parameter) and
//! its response is wrapped as `/**/<callback>(<payload>);\n`, `200 OK`,
//! `Content-Type: application/javascript`.
//!
//! * Proxied responses ([`wrap_proxied`]): basic mode wraps the body (one trailing newline
//!   removed); extended mode wraps `{"code": …, "reason": …, "headers": {…}, "body": …}` in
//!   the proxy's spacing, the headers keeping the first value per name, sorted by name. The
//!   origin's `Cache-Control` is mirrored on the outer response.
//! * Held responses ([`Jsonp::wrap_held`], long-poll completion and timeout): extended mode
//!   uses compact JSON with sorted keys and repeated headers merged with `, `; the outer
//!   response keeps the held response's headers with `Content-Type` replaced.
//!
//! Observed on Pushpin 1.36: JSON-P responses carry no CORS headers; the callback is not
//! checked beyond being non-empty; an undecodable `%` escape is kept literally.

use std::collections::BTreeMap;

use bytes::Bytes;
use holdfast_proto::internal::Header;
use holdfast_proto::routes::{JsonpConfig, JsonpMode};

use super::response::Generated;
use crate::grip::hub::Reply;

/// 400 texts for bad parameters.
pub const INVALID_CALLBACK: &str = "Invalid callback parameter.\n";
/// 400: `_method` empty.
pub const INVALID_METHOD: &str = "Invalid _method parameter.\n";
/// 400: `_headers` not a JSON object of strings.
pub const INVALID_HEADERS: &str = "Invalid _headers parameter.\n";
/// 500: the upstream body is not UTF-8 (extended mode) or too large.
pub const NOT_ENCODABLE: &str = "Upstream response could not be JSON-P encoded.\n";

/// Largest proxied body wrapped (larger: 500 [`NOT_ENCODABLE`]).
pub const MAX_BODY: usize = 1_000_000;

/// How a JSON-P request's response is wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jsonp {
    /// The callback name.
    pub callback: String,
    /// Basic or extended.
    pub mode: JsonpMode,
}

/// The request as rewritten from the JSON-P query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// Method (`_method`, else the route's default).
    pub method: String,
    /// Path with the remaining query.
    pub path: String,
    /// Headers to set, each replacing same-named request headers.
    pub headers: Vec<Header>,
    /// Request body (`_body` or the route's body parameter), if given.
    pub body: Option<Bytes>,
}

/// Recognises a JSON-P request (`path` with its encoded query). `Ok(None)`: not JSON-P.
pub fn parse(cfg: &JsonpConfig, path: &str) -> Result<Option<(Jsonp, Rewrite)>, &'static str> {
    let (base, query) = match path.split_once('?') {
        Some((b, q)) => (b, q),
        None => (path, ""),
    };
    let items: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let find = |name: &str| {
        items
            .iter()
            .find(|(k, _)| decode(k) == name.as_bytes())
            .map(|(_, v)| decode(v))
    };
    let body_param = cfg.body_param.as_deref().and_then(find);
    let callback = match find(&cfg.callback_param) {
        Some(cb) => cb,
        None => match (&cfg.default_callback, &body_param) {
            (Some(def), Some(_)) => def.as_bytes().to_vec(),
            _ => return Ok(None),
        },
    };
    if callback.is_empty() {
        return Err(INVALID_CALLBACK);
    }
    let method = match find("_method") {
        Some(m) if m.is_empty() => return Err(INVALID_METHOD),
        Some(m) => String::from_utf8_lossy(&m).into_owned(),
        None => cfg.default_method.clone(),
    };
    let mut headers = Vec::new();
    if let Some(raw) = find("_headers") {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&raw) else {
            return Err(INVALID_HEADERS);
        };
        for (name, value) in map {
            let serde_json::Value::String(value) = value else {
                return Err(INVALID_HEADERS);
            };
            if name.eq_ignore_ascii_case("Host") || name.eq_ignore_ascii_case("Accept") {
                continue;
            }
            headers.push(Header::new(name, value));
        }
    }
    headers.push(Header::new("Accept", "*/*"));
    let body = match body_param {
        Some(b) => {
            headers.push(Header::new("Content-Type", "application/json"));
            Some(Bytes::from(b))
        }
        None => find("_body").map(Bytes::from),
    };
    let consumed = |k: &str| {
        let k = decode(k);
        k == cfg.callback_param.as_bytes()
            || k == b"_method"
            || k == b"_headers"
            || k == b"_body"
            || cfg.body_param.as_deref().is_some_and(|b| k == b.as_bytes())
    };
    let rest: Vec<String> = items
        .iter()
        .filter(|(k, _)| !consumed(k))
        .map(|(k, v)| {
            if v.is_empty() && !query.contains(&format!("{k}=")) {
                k.to_string()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    let path = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok(Some((
        Jsonp {
            callback: String::from_utf8_lossy(&callback).into_owned(),
            mode: cfg.mode,
        },
        Rewrite {
            method,
            path,
            headers,
            body,
        },
    )))
}

/// Percent-decodes a query component; a bad escape stays as it is (`+` is not a space).
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn strip_one_newline(body: &[u8]) -> &[u8] {
    body.strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"))
        .unwrap_or(body)
}

impl Jsonp {
    fn wrap(&self, payload: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(payload.len() + self.callback.len() + 8);
        out.extend_from_slice(b"/**/");
        out.extend_from_slice(self.callback.as_bytes());
        out.push(b'(');
        out.extend_from_slice(payload);
        out.extend_from_slice(b");\n");
        Bytes::from(out)
    }

    /// The wrapped form of a held response (long-poll completion or timeout).
    pub fn wrap_held(&self, reply: Reply) -> Reply {
        let payload = match self.mode {
            JsonpMode::Basic => strip_one_newline(&reply.body).to_vec(),
            JsonpMode::Extended => {
                let mut merged: BTreeMap<String, String> = BTreeMap::new();
                let mut names: BTreeMap<String, String> = BTreeMap::new();
                for h in reply.headers.iter().filter(|h| !h.is("Content-Length")) {
                    let value = String::from_utf8_lossy(&h.1).into_owned();
                    let name = names
                        .entry(h.0.to_ascii_lowercase())
                        .or_insert_with(|| h.0.clone())
                        .clone();
                    merged
                        .entry(name)
                        .and_modify(|v| {
                            v.push_str(", ");
                            v.push_str(&value);
                        })
                        .or_insert(value);
                }
                let value = serde_json::json!({
                    "body": String::from_utf8_lossy(&reply.body),
                    "code": reply.code,
                    "headers": merged,
                    "reason": reply.reason,
                });
                value.to_string().into_bytes()
            }
        };
        let mut headers: Vec<Header> = reply
            .headers
            .into_iter()
            .filter(|h| !h.is("Content-Type") && !h.is("Content-Length"))
            .collect();
        headers.push(Header::new("Content-Type", "application/javascript"));
        Reply {
            code: 200,
            reason: "OK".into(),
            headers,
            body: self.wrap(&payload),
        }
    }
}

/// The wrapped form of a proxied response; `None` when it cannot be encoded (extended mode
/// with a body that is not UTF-8).
pub fn wrap_proxied(
    jsonp: &Jsonp,
    code: u16,
    reason: &str,
    headers: &[Header],
    body: &[u8],
) -> Option<Generated> {
    let payload = match jsonp.mode {
        JsonpMode::Basic => strip_one_newline(body).to_vec(),
        JsonpMode::Extended => {
            let body = std::str::from_utf8(body).ok()?;
            let mut first: BTreeMap<&str, String> = BTreeMap::new();
            let mut seen: Vec<String> = Vec::new();
            for h in headers {
                let lower = h.0.to_ascii_lowercase();
                if seen.contains(&lower) {
                    continue;
                }
                seen.push(lower);
                first.insert(&h.0, String::from_utf8_lossy(&h.1).into_owned());
            }
            let fields: Vec<String> = first
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect();
            format!(
                "{{\"code\": {code}, \"reason\": {}, \"headers\": {{{}}}, \"body\": {}}}",
                json_str(reason),
                fields.join(","),
                json_str(body)
            )
            .into_bytes()
        }
    };
    let mut out_headers = vec![Header::new("Content-Type", "application/javascript")];
    if let Some(cc) = headers.iter().find(|h| h.is("Cache-Control")) {
        out_headers.push(cc.clone());
    }
    Some(Generated {
        code: 200,
        reason: "OK".into(),
        headers: out_headers,
        body: jsonp.wrap(&payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: JsonpMode) -> JsonpConfig {
        JsonpConfig {
            mode,
            default_method: if mode == JsonpMode::Basic {
                "POST".into()
            } else {
                "GET".into()
            },
            ..JsonpConfig::default()
        }
    }

    #[test]
    fn callback_is_consumed_and_the_rest_of_the_query_kept() {
        let (j, r) = parse(&cfg(JsonpMode::Extended), "/echo?callback=cb&x=1")
            .unwrap()
            .unwrap();
        assert_eq!(j.callback, "cb");
        assert_eq!(r.path, "/echo?x=1");
        assert_eq!(r.method, "GET");
        assert_eq!(r.body, None);
        let (_, r) = parse(&cfg(JsonpMode::Basic), "/echo?callback=cb")
            .unwrap()
            .unwrap();
        assert_eq!((r.path.as_str(), r.method.as_str()), ("/echo", "POST"));
        assert_eq!(
            parse(&cfg(JsonpMode::Extended), "/echo?x=1&_method=PUT"),
            Ok(None)
        );
    }

    #[test]
    fn overrides_and_errors() {
        let c = cfg(JsonpMode::Extended);
        let (_, r) = parse(
            &c,
            "/e?callback=cb&_method=POST&_body=hello&_headers=%7B%22X-Foo%22%3A%22bar%22%2C%22Host%22%3A%22h%22%7D",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, Some(Bytes::from_static(b"hello")));
        assert_eq!(
            r.headers,
            vec![Header::new("X-Foo", "bar"), Header::new("Accept", "*/*")]
        );
        let (_, r) = parse(&c, "/e?callback=cb&_body=%ZZ").unwrap().unwrap();
        assert_eq!(r.body, Some(Bytes::from_static(b"%ZZ")));
        assert_eq!(parse(&c, "/e?callback=&x=1"), Err(INVALID_CALLBACK));
        assert_eq!(
            parse(&c, "/e?callback=cb&_headers=notjson"),
            Err(INVALID_HEADERS)
        );
        assert_eq!(parse(&c, "/e?callback=cb&_method="), Err(INVALID_METHOD));
    }

    #[test]
    fn body_param_with_default_callback() {
        let c = JsonpConfig {
            body_param: Some("b".into()),
            default_callback: Some("dcb".into()),
            ..cfg(JsonpMode::Extended)
        };
        let (j, r) = parse(&c, "/e?b=%7B%7D").unwrap().unwrap();
        assert_eq!(j.callback, "dcb");
        assert_eq!(r.body, Some(Bytes::from_static(b"{}")));
        assert!(r
            .headers
            .contains(&Header::new("Content-Type", "application/json")));
    }

    fn origin_headers() -> Vec<Header> {
        vec![
            Header::new("Server", "S"),
            Header::new("Content-Type", "text/plain"),
            Header::new("X-A", "1"),
            Header::new("X-A", "2"),
            Header::new("Cache-Control", "no-cache"),
        ]
    }

    #[test]
    fn proxied_extended_matches_pushpin_bytes() {
        let j = Jsonp {
            callback: "cb".into(),
            mode: JsonpMode::Extended,
        };
        let g = wrap_proxied(&j, 404, "Not Found", &origin_headers(), b"nf\n").unwrap();
        assert_eq!(g.code, 200);
        assert_eq!(
            g.body,
            Bytes::from_static(
                b"/**/cb({\"code\": 404, \"reason\": \"Not Found\", \"headers\": {\"Cache-Control\":\"no-cache\",\"Content-Type\":\"text/plain\",\"Server\":\"S\",\"X-A\":\"1\"}, \"body\": \"nf\\n\"});\n"
            )
        );
        assert_eq!(
            g.headers,
            vec![
                Header::new("Content-Type", "application/javascript"),
                Header::new("Cache-Control", "no-cache")
            ]
        );
        assert!(wrap_proxied(&j, 200, "OK", &[], b"\xff").is_none());
        let basic = Jsonp {
            mode: JsonpMode::Basic,
            ..j
        };
        let g = wrap_proxied(&basic, 200, "OK", &[], b"nf\n").unwrap();
        assert_eq!(g.body, Bytes::from_static(b"/**/cb(nf);\n"));
    }

    #[test]
    fn held_extended_is_compact_sorted_and_merged() {
        let j = Jsonp {
            callback: "cb".into(),
            mode: JsonpMode::Extended,
        };
        let r = j.wrap_held(Reply {
            code: 200,
            reason: "OK".into(),
            headers: origin_headers(),
            body: Bytes::from_static(b"timeout body\n"),
        });
        assert_eq!(
            r.body,
            Bytes::from_static(
                b"/**/cb({\"body\":\"timeout body\\n\",\"code\":200,\"headers\":{\"Cache-Control\":\"no-cache\",\"Content-Type\":\"text/plain\",\"Server\":\"S\",\"X-A\":\"1, 2\"},\"reason\":\"OK\"});\n"
            )
        );
        assert_eq!(
            r.headers.last(),
            Some(&Header::new("Content-Type", "application/javascript"))
        );
        assert_eq!(r.headers.len(), 5);
    }
}
