//! Request head parsing: bytes in, a typed [`Request`] out.
//!
//! [`parse`] is called with everything buffered so far for the next request. It answers "not yet"
//! (`Ok(None)`) until the head is complete, then returns the request and the length of its head so
//! the caller can consume exactly that much; the bytes after it are body or the next pipelined
//! request. Everything the connection manager needs to decide about framing is settled here, once:
//! the body framing (with the request-smuggling checks), persistence and `Expect: 100-continue`.

use bytes::Bytes;
use holdfast_proto::internal::{Header, HttpVersion};

/// Most request headers accepted (Pushpin's limit); one more is a `400`.
pub const MAX_HEADERS: usize = 64;

/// Longest request target accepted, in bytes. Pushpin 1.36 drops the connection when the URI it
/// builds (`http://host` + target) exceeds 4096 bytes; we apply the limit to the target itself
/// and answer `400` instead of dropping.
pub const MAX_TARGET_LEN: usize = 4096;

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no Content-Length, or `Content-Length: 0`).
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head, owned, ready to become a [`holdfast_proto::internal::RequestHead`].
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Method as sent (case kept: methods are case-sensitive).
    pub method: String,
    /// Request target as sent.
    pub target: String,
    /// HTTP version of the request.
    pub version: HttpVersion,
    /// Every header in order, as received (framing headers included: the handler may want to
    /// know the announced length; the body it receives is always de-chunked).
    pub headers: Vec<Header>,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// The client asked for (1.0) or did not refuse (1.1) a persistent connection.
    pub persistent: bool,
    /// HTTP/1.1 `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl Request {
    /// True for `HEAD`, whose response never carries a body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Why a request head was refused. The `Display` text (plus a newline) is the body of the
/// `400 Bad Request` the client receives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The head did not fit in the connection buffer.
    #[error("Request header size exceeded limit of {0} bytes.")]
    HeadTooLarge(usize),
    /// httparse rejected the request line or a header (bad token, bad version, too many headers).
    #[error("Failed to parse request: {0}")]
    Malformed(httparse::Error),
    /// The request target is longer than [`MAX_TARGET_LEN`].
    #[error("Request URI exceeded limit of {MAX_TARGET_LEN} bytes.")]
    TargetTooLong,
    /// A Content-Length that is not a decimal number, or several that disagree.
    #[error("Failed to parse request: invalid Content-Length")]
    InvalidContentLength,
    /// A Transfer-Encoding other than exactly `chunked` (or any on HTTP/1.0).
    #[error("Failed to parse request: unsupported Transfer-Encoding")]
    UnsupportedTransferEncoding,
    /// Both Content-Length and Transfer-Encoding: the classic smuggling vector, refused.
    #[error("Failed to parse request: both Content-Length and Transfer-Encoding present")]
    ConflictingFraming,
}

/// Parses the request head at the start of `buf`.
///
/// `limit` is the largest head accepted (the connection buffer size): a head still incomplete
/// after `limit` bytes is [`RequestError::HeadTooLarge`]. Returns the request and the number of
/// bytes its head occupies.
pub fn parse(buf: &[u8], limit: usize) -> Result<Option<(Request, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limit {
                Err(RequestError::HeadTooLarge(limit))
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(RequestError::Malformed(e)),
    };
    if head_len > limit {
        return Err(RequestError::HeadTooLarge(limit));
    }
    // httparse fills every field of a complete request; treat a missing one as malformed rather
    // than trusting that.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(RequestError::Malformed(httparse::Error::Token));
    };
    if target.len() > MAX_TARGET_LEN {
        return Err(RequestError::TargetTooLong);
    }
    let version = if minor == 0 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    };

    let mut content_length: Option<u64> = None;
    let mut transfer_codings = 0usize;
    let mut chunked_last = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            let n = parse_content_length(h.value)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(RequestError::InvalidContentLength);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("Transfer-Encoding") {
            for coding in list_items(h.value) {
                transfer_codings += 1;
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            }
            if list_items(h.value).next().is_none() {
                // An empty Transfer-Encoding still claims a coding we cannot honour.
                return Err(RequestError::UnsupportedTransferEncoding);
            }
        } else if h.name.eq_ignore_ascii_case("Connection") {
            for token in list_items(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("Expect") {
            expect_continue |= trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }

    let body = if transfer_codings > 0 {
        if content_length.is_some() {
            return Err(RequestError::ConflictingFraming);
        }
        // HTTP/1.0 has no transfer codings (RFC 9112 §6.1: treat as faulty framing); anything
        // but exactly one `chunked` is a coding we cannot decode.
        if version == HttpVersion::Http10 || transfer_codings != 1 || !chunked_last {
            return Err(RequestError::UnsupportedTransferEncoding);
        }
        BodyFraming::Chunked
    } else {
        match content_length {
            None | Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        }
    };

    let persistent = match version {
        HttpVersion::Http10 => keep_alive && !close,
        HttpVersion::Http11 => !close,
    };

    let headers = req
        .headers
        .iter()
        .map(|h| Header(h.name.to_owned(), Bytes::copy_from_slice(h.value)))
        .collect();

    Ok(Some((
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version,
            headers,
            body,
            persistent,
            expect_continue: expect_continue && version == HttpVersion::Http11,
        },
        head_len,
    )))
}

/// Parses a Content-Length value: a decimal number, or a list of identical decimal numbers
/// (`5, 5`, which RFC 9110 §8.6 allows a recipient to collapse).
fn parse_content_length(value: &[u8]) -> Result<u64, RequestError> {
    let mut result = None;
    let mut any = false;
    for item in value.split(|&b| b == b',') {
        any = true;
        let item = trim(item);
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(RequestError::InvalidContentLength);
        }
        let n = item
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        if result.is_some_and(|prev| prev != n) {
            return Err(RequestError::InvalidContentLength);
        }
        result = Some(n);
    }
    match (any, result) {
        (true, Some(n)) => Ok(n),
        _ => Err(RequestError::InvalidContentLength),
    }
}

/// The non-empty, trimmed items of a comma-separated header value.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|item| !item.is_empty())
}

/// `value` without leading and trailing spaces and tabs.
fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &value[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> (Request, usize) {
        parse(raw.as_bytes(), 8192).unwrap().unwrap()
    }

    fn err(raw: &str) -> RequestError {
        parse(raw.as_bytes(), 8192).unwrap_err()
    }

    #[test]
    fn simple_get() {
        let raw = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nrest";
        let (req, len) = ok(raw);
        assert_eq!(len, raw.len() - 4);
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/a?b=c");
        assert_eq!(req.version, HttpVersion::Http11);
        assert_eq!(
            req.headers,
            vec![
                Header::new("Host", "example.com"),
                Header::new("Accept", "*/*")
            ]
        );
        assert_eq!(req.body, BodyFraming::None);
        assert!(req.persistent);
        assert!(!req.expect_continue);
        assert!(!req.is_head());
    }

    #[test]
    fn partial_until_complete() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut], 8192), Ok(None), "cut at {cut}");
        }
        assert!(parse(raw, 8192).unwrap().is_some());
    }

    #[test]
    fn head_too_large() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.resize(100, b'a');
        assert_eq!(parse(&raw, 100), Err(RequestError::HeadTooLarge(100)));
        assert_eq!(parse(&raw[..99], 100), Ok(None));
        assert_eq!(
            RequestError::HeadTooLarge(8192).to_string(),
            "Request header size exceeded limit of 8192 bytes."
        );
    }

    #[test]
    fn complete_head_longer_than_limit_is_refused() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(parse(raw, 10), Err(RequestError::HeadTooLarge(10)));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            err("GARBAGE\r\n\r\n").to_string(),
            "Failed to parse request: invalid token"
        );
        assert_eq!(
            err("GET / HTTP/2.0\r\n\r\n").to_string(),
            "Failed to parse request: invalid HTTP version"
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost x\r\n\r\n").to_string(),
            "Failed to parse request: invalid header name"
        );
    }

    #[test]
    fn too_many_headers() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..MAX_HEADERS {
            raw.push_str(&format!("X-{i}: y\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(ok(&raw).0.headers.len(), MAX_HEADERS);
        let raw = raw.replacen("\r\n\r\n", "\r\nX-Last: y\r\n\r\n", 1);
        assert_eq!(
            err(&raw).to_string(),
            "Failed to parse request: too many headers"
        );
    }

    #[test]
    fn target_limit() {
        let target = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
        assert_eq!(
            ok(&format!("GET {target} HTTP/1.1\r\n\r\n")).0.target,
            target
        );
        let target = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(
            err(&format!("GET {target} HTTP/1.1\r\n\r\n")),
            RequestError::TargetTooLong
        );
    }

    #[test]
    fn persistence_rules() {
        assert!(ok("GET / HTTP/1.1\r\n\r\n").0.persistent);
        assert!(
            !ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .0
                .persistent
        );
        assert!(
            !ok("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n")
                .0
                .persistent
        );
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").0.persistent);
        assert!(
            ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .persistent
        );
        assert!(
            !ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
                .0
                .persistent
        );
    }

    #[test]
    fn content_length() {
        let (req, _) = ok("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(req.body, BodyFraming::Length(12));
        let (req, _) = ok("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(req.body, BodyFraming::None);
        let (req, _) = ok("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(req.body, BodyFraming::Length(5));
        for bad in [
            "abc",
            "-1",
            "1 2",
            "",
            "5, 6",
            "+5",
            "99999999999999999999",
            "0x10",
        ] {
            assert_eq!(
                err(&format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n")),
                RequestError::InvalidContentLength,
                "{bad:?}"
            );
        }
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            RequestError::InvalidContentLength
        );
    }

    #[test]
    fn transfer_encoding() {
        let (req, _) = ok("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(req.body, BodyFraming::Chunked);
        for bad in [
            "gzip",
            "gzip, chunked",
            "chunked, chunked",
            "chunked, gzip",
            "",
        ] {
            assert_eq!(
                err(&format!(
                    "POST / HTTP/1.1\r\nTransfer-Encoding: {bad}\r\n\r\n"
                )),
                RequestError::UnsupportedTransferEncoding,
                "{bad:?}"
            );
        }
        assert_eq!(
            err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            RequestError::UnsupportedTransferEncoding
        );
        assert_eq!(
            err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            RequestError::UnsupportedTransferEncoding
        );
    }

    #[test]
    fn smuggling_cl_te_refused() {
        let e = err("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e, RequestError::ConflictingFraming);
        let e = err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(e, RequestError::ConflictingFraming);
    }

    #[test]
    fn expect_continue() {
        let (req, _) = ok("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(req.expect_continue);
        let (req, _) = ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
        assert!(!req.expect_continue);
        let (req, _) = ok("POST / HTTP/1.1\r\nExpect: something\r\n\r\n");
        assert!(!req.expect_continue);
    }

    #[test]
    fn head_method_and_leading_newlines() {
        let (req, len) = ok("\r\nHEAD / HTTP/1.1\r\n\r\n");
        assert!(req.is_head());
        assert_eq!(len, 21);
    }

    #[test]
    fn header_values_keep_raw_bytes() {
        let (req, _) = ok("GET / HTTP/1.1\r\nX-Bin: caf\u{e9}\r\n\r\n");
        assert_eq!(req.headers[0].1.as_ref(), "caf\u{e9}".as_bytes());
    }

    #[test]
    fn trim_edges() {
        assert_eq!(trim(b"  a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }

    #[test]
    fn never_panics_on_prefixes_of_odd_input() {
        let inputs: [&[u8]; 5] = [
            b"GET / HTTP/1.1\r\nContent-Length: \xff\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
            b"GET \xff HTTP/1.1\r\n\r\n",
            b"G\r\n\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: ,,,\r\n\r\n",
        ];
        for input in inputs {
            for cut in 0..=input.len() {
                let _ = parse(&input[..cut], 64);
            }
        }
    }
}
