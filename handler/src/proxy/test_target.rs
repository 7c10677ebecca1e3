//! The built-in `test` target (routes file value `test`), answering like Pushpin's test handler.
//!
//! The route's `path_beg` minus a trailing `/` is stripped from the path, the query is ignored
//! and one trailing `/` is dropped; then `/` answers the hello text and unknown paths 404 with
//! `no such test resource` (observed on Pushpin 1.36). `/response` and `/stream` are GRIP holds
//! in Pushpin; until the GRIP work lands they answer 501 saying so.

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

/// The test target's answer for a path from [`test_path`].
pub fn respond(path: &str) -> Generated {
    // Like Pushpin: one trailing slash is ignored, except for "/" itself.
    let path = if path.len() >= 2 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    match path {
        "/" => Generated::text(200, HELLO),
        "/response" | "/stream" => Generated::text(
            501,
            format!(
                "The test resource {path} is a GRIP hold, which this Holdfast version does not implement yet.\n"
            ),
        ),
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
        let hello = respond("/");
        assert_eq!((hello.code, hello.body.as_ref()), (200, HELLO.as_bytes()));
        assert_eq!(hello.reason, "OK");
        assert_eq!(respond("//").code, 200, "Pushpin answers /t// with hello");
        let missing = respond("/foo/");
        assert_eq!(missing.code, 404);
        assert_eq!(missing.reason, "Not Found");
        assert_eq!(missing.body.as_ref(), b"no such test resource\n");
        assert_eq!(respond("/response").code, 501);
        assert_eq!(respond("/stream/").code, 501);
    }
}
