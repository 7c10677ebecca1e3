//! The built-in `test` target (routes file value `test`), answering like Pushpin's test handler.
//!
//! The route's `path_beg` minus a trailing `/` is stripped from the path, the query is ignored
//! and one trailing `/` is dropped; then `/` answers the hello text and unknown paths 404 with
//! `no such test resource` (observed on Pushpin 1.36). `/response` and `/stream` answer GRIP
//! instructions exactly like Pushpin's test handler: `Grip-Hold: response` with the timeout body
//! `nothing for now`, or `Grip-Hold: stream` with the initial body `[stream opened]`, on the
//! channels named by `?channel=` (default `test`).

use holdfast_proto::internal::Header;

use super::response::Generated;

/// Largest request body the test target reads (Pushpin's limit).
pub const MAX_REQUEST_BODY: usize = 100_000;

/// Body of the answer to `/`.
pub const HELLO: &str = "Hello from the Holdfast test handler!\n";

/// Body of the 404 answer.
pub const NOT_FOUND: &str = "no such test resource\n";

/// Body of the 400 answer when the request body exceeds [`MAX_REQUEST_BODY`].
pub const TOO_LARGE: &str = "request too large\n";

/// The path the test target sees: `path` (rewritten, with query) without the route's
/// `path_beg` (minus its trailing `/`) and without the query.
pub fn test_path(path: &str, path_beg: Option<&str>) -> String {
    let path = path.split('?').next().unwrap_or("");
    let strip = path_beg
        .map(|p| p.strip_suffix('/').unwrap_or(p))
        .unwrap_or("");
    let path = path.strip_prefix(strip).unwrap_or(path);
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

/// Channels named by `channel=` query items (default `test`), deduplicated, joined `, `.
pub fn channels(target: &str) -> String {
    let mut channels: Vec<String> = Vec::new();
    if let Some((_, query)) = target.split_once('?') {
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name == "channel" {
                let value = percent_decode(value);
                if !channels.contains(&value) {
                    channels.push(value);
                }
            }
        }
    }
    if channels.is_empty() {
        channels.push("test".to_string());
    }
    channels.join(", ")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The test target's answer for a path from [`test_path`]; `target` is the path with its
/// query (for `channel=`).
pub fn respond(path: &str, target: &str) -> Generated {
    // Like Pushpin: one trailing slash is ignored, except for "/" itself.
    let path = if path.len() >= 2 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    match path {
        "/" => Generated::text(200, HELLO),
        "/response" | "/stream" => {
            let (hold, body) = if path == "/response" {
                ("response", "nothing for now\n")
            } else {
                ("stream", "[stream opened]\n")
            };
            let mut answer = Generated::text(200, body);
            answer.headers.push(Header::new("Grip-Hold", hold));
            answer
                .headers
                .push(Header::new("Grip-Channel", channels(target)));
            answer
        }
        _ => Generated::text(404, NOT_FOUND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_path_beg_without_trailing_slash_and_query() {
        assert_eq!(test_path("/t/", Some("/t/")), "/");
        assert_eq!(test_path("/t/foo?x=1", Some("/t/")), "/foo");
        assert_eq!(test_path("/t//", Some("/t/")), "//");
        assert_eq!(test_path("/", None), "/");
        assert_eq!(test_path("/t", Some("/t")), "/");
        assert_eq!(test_path("/x/y", Some("/t/")), "/x/y");
    }

    #[test]
    fn answers_like_pushpin() {
        let hello = respond("/", "/");
        assert_eq!((hello.code, hello.body.as_ref()), (200, HELLO.as_bytes()));
        assert_eq!(hello.reason, "OK");
        assert_eq!(
            respond("//", "//").code,
            200,
            "Pushpin answers /t// with hello"
        );
        let missing = respond("/foo/", "/foo/");
        assert_eq!(missing.code, 404);
        assert_eq!(missing.reason, "Not Found");
        assert_eq!(missing.body.as_ref(), b"no such test resource\n");
        let r = respond("/response", "/t/response?channel=a&x=1&channel=b%20c");
        assert_eq!((r.code, r.body.as_ref()), (200, &b"nothing for now\n"[..]));
        assert_eq!(r.headers[1], Header::new("Grip-Hold", "response"));
        assert_eq!(r.headers[2], Header::new("Grip-Channel", "a, b c"));
        let s = respond("/stream/", "/t/stream/");
        assert_eq!(s.body.as_ref(), b"[stream opened]\n");
        assert_eq!(s.headers[2], Header::new("Grip-Channel", "test"));
    }
}
