//! Response framing: how the handler's response reaches this client.
//!
//! The handler sends a status, headers and body bytes without framing. The connection manager
//! decides how the body is delimited on the wire, following Pushpin's connection manager
//! (reference §3.11, observed on 1.36):
//!
//! - `Connection` (except on `101`), `Content-Length`, `Transfer-Encoding` and `Keep-Alive` from
//!   the handler are dropped and regenerated; the other headers keep their order.
//! - The body size is *known* if the handler's headers had a `Content-Length`, or if the first
//!   message is also the last (`more: false`; size = that body) → `Content-Length`.
//! - Otherwise HTTP/1.1 gets chunked encoding announced by **both** `Connection:
//!   Transfer-Encoding` and `Transfer-Encoding: chunked` (exactly what Pushpin emits), and
//!   HTTP/1.0 gets a close-delimited body: no length, and the connection closes at the end.
//!   (Pushpin 1.36 answers a keep-alive HTTP/1.0 request with an unknown length by sending
//!   `Connection: keep-alive` and never closing, so the client cannot find the end; we drop
//!   keep-alive for that response instead.)
//! - `HEAD` responses and `1xx`/`204`/`304` have no body; `HEAD` keeps a known `Content-Length`.
//! - Persistent HTTP/1.0 responses get `Connection: keep-alive`, non-persistent HTTP/1.1
//!   responses `Connection: close`; these come after the handler's headers and before the
//!   framing headers, as in Pushpin.

use holdfast_proto::internal::{Header, HttpVersion};

/// Most bytes a chunk header takes: 16 hex digits and CRLF.
pub const CHUNK_HEADER_MAX: usize = 18;

/// The last chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What the response plan needs to know about the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request's HTTP version (the response uses the same).
    pub version: HttpVersion,
    /// The connection may stay open after this response (request asked for it and nothing,
    /// such as a shutdown, forbids it).
    pub persistent: bool,
    /// The request was `HEAD`.
    pub is_head: bool,
}

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body may be sent (HEAD, 1xx, 204, 304); any body from the handler is discarded.
    NoBody,
    /// Exactly this many bytes, announced with `Content-Length`.
    Length(u64),
    /// HTTP/1.1 chunked encoding.
    Chunked,
    /// HTTP/1.0 with an unknown length: the body ends when the connection closes.
    CloseDelimited,
}

/// The framing decision for one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponsePlan {
    /// How the body goes on the wire.
    pub framing: Framing,
    /// The connection stays open after the response.
    pub persistent: bool,
    /// The `Content-Length` value to announce, if any (also for HEAD with a known size).
    pub content_length: Option<u64>,
}

/// Why a response from the handler cannot be sent to a client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The status code is outside 100..=999.
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    /// A Content-Length header that is not a decimal number, or several that disagree.
    #[error("invalid Content-Length in response")]
    InvalidContentLength,
    /// A header name that is not an HTTP token.
    #[error("invalid response header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value with CR, LF or NUL (response splitting).
    #[error("invalid value for response header {0}")]
    InvalidHeaderValue(String),
}

/// Decides how to frame a response: `first_body_len` and `more` describe the handler's first
/// message (the response head).
pub fn plan(
    req: &RequestInfo,
    code: u16,
    headers: &[Header],
    first_body_len: usize,
    more: bool,
) -> Result<ResponsePlan, ResponseError> {
    if !(100..=999).contains(&code) {
        return Err(ResponseError::InvalidStatus(code));
    }
    let mut known: Option<u64> = None;
    for h in headers {
        if h.0.is_empty() || !h.0.bytes().all(is_token_byte) {
            return Err(ResponseError::InvalidHeaderName(h.0.clone()));
        }
        if h.1.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ResponseError::InvalidHeaderValue(h.0.clone()));
        }
        if h.is("Content-Length") {
            let n = parse_decimal(&h.1).ok_or(ResponseError::InvalidContentLength)?;
            if known.is_some_and(|prev| prev != n) {
                return Err(ResponseError::InvalidContentLength);
            }
            known = Some(n);
        }
    }
    if known.is_none() && !more {
        known = Some(first_body_len as u64);
    }
    let status_without_body = (100..200).contains(&code) || code == 204 || code == 304;
    let framing = if req.is_head || status_without_body {
        Framing::NoBody
    } else if let Some(n) = known {
        Framing::Length(n)
    } else if req.version == HttpVersion::Http11 {
        Framing::Chunked
    } else {
        Framing::CloseDelimited
    };
    let content_length = match framing {
        Framing::Length(n) => Some(n),
        Framing::NoBody if !status_without_body => known,
        _ => None,
    };
    Ok(ResponsePlan {
        framing,
        persistent: req.persistent && framing != Framing::CloseDelimited && code != 101,
        content_length,
    })
}

/// Serialises the response head for `plan` into `out`.
pub fn write_head(
    out: &mut Vec<u8>,
    version: HttpVersion,
    code: u16,
    reason: &str,
    headers: &[Header],
    plan: &ResponsePlan,
) {
    out.extend_from_slice(match version {
        HttpVersion::Http10 => b"HTTP/1.0 ",
        HttpVersion::Http11 => b"HTTP/1.1 ",
    });
    push_decimal(out, u64::from(code));
    out.push(b' ');
    // A reason with control characters would let the handler split the response: drop it (an
    // empty reason phrase is valid).
    if reason
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
    {
        out.extend_from_slice(reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for h in headers {
        let framing_header = h.is("Content-Length")
            || h.is("Transfer-Encoding")
            || h.is("Keep-Alive")
            || (h.is("Connection") && code != 101);
        if framing_header {
            continue;
        }
        out.extend_from_slice(h.0.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.1);
        out.extend_from_slice(b"\r\n");
    }
    match (version, plan.persistent) {
        (HttpVersion::Http10, true) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (HttpVersion::Http11, false) if code != 101 => {
            out.extend_from_slice(b"Connection: close\r\n")
        }
        _ => {}
    }
    if plan.framing == Framing::Chunked {
        out.extend_from_slice(b"Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n");
    }
    if let Some(n) = plan.content_length {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The header of a chunk of `len` bytes (`<hex>\r\n`), in a fixed array so writing a chunk costs
/// no allocation. Returns the array and how many of its bytes are used.
pub fn chunk_header(len: u64) -> ([u8; CHUNK_HEADER_MAX], usize) {
    let mut buf = [0u8; CHUNK_HEADER_MAX];
    let digits = (16 - len.leading_zeros() as usize / 4).max(1);
    for (i, slot) in buf[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *slot = b"0123456789abcdef"[((len >> shift) & 0xf) as usize];
    }
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    (buf, digits + 2)
}

/// A complete `text/plain` response generated by the connection manager itself, after which the
/// connection closes: `body` should end with a newline, as all of Pushpin's do.
pub fn error_response(version: HttpVersion, code: u16, reason: &str, body: &str) -> Vec<u8> {
    let headers = [Header::new("Content-Type", "text/plain")];
    let plan = ResponsePlan {
        framing: Framing::Length(body.len() as u64),
        persistent: false,
        content_length: Some(body.len() as u64),
    };
    let mut out = Vec::with_capacity(128 + body.len());
    write_head(&mut out, version, code, reason, &headers, &plan);
    out.extend_from_slice(body.as_bytes());
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'))? + 1;
    let digits = &value[start..end];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
    )
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const V10: HttpVersion = HttpVersion::Http10;
    const V11: HttpVersion = HttpVersion::Http11;

    fn info(version: HttpVersion, persistent: bool, is_head: bool) -> RequestInfo {
        RequestInfo {
            version,
            persistent,
            is_head,
        }
    }

    fn head(
        req: RequestInfo,
        code: u16,
        headers: &[Header],
        body_len: usize,
        more: bool,
    ) -> String {
        let plan = plan(&req, code, headers, body_len, more).unwrap();
        let mut out = Vec::new();
        write_head(&mut out, req.version, code, "OK", headers, &plan);
        String::from_utf8(out).unwrap()
    }

    fn ct() -> Header {
        Header::new("Content-Type", "text/plain")
    }

    #[test]
    fn complete_body_gets_content_length() {
        let req = info(V11, true, false);
        assert_eq!(
            plan(&req, 200, &[ct()], 3, false).unwrap(),
            ResponsePlan {
                framing: Framing::Length(3),
                persistent: true,
                content_length: Some(3)
            }
        );
        assert_eq!(
            head(req, 200, &[ct()], 3, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn handler_content_length_is_kept_as_size_and_regenerated() {
        let req = info(V11, true, false);
        let headers = [Header::new("content-length", " 10 "), ct()];
        assert_eq!(
            head(req, 200, &headers, 3, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n"
        );
    }

    #[test]
    fn unknown_length_http11_is_chunked_with_both_headers() {
        let req = info(V11, true, false);
        let headers = [ct(), Header::new("X-A", "1")];
        assert_eq!(
            head(req, 200, &headers, 0, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n\
             Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        // Observed on Pushpin 1.36: with Connection: close there are two Connection headers.
        let req = info(V11, false, false);
        assert_eq!(
            head(req, 200, &headers, 0, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nConnection: close\r\n\
             Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn http10_unknown_length_is_close_delimited() {
        for persistent in [false, true] {
            let req = info(V10, persistent, false);
            let p = plan(&req, 200, &[ct()], 0, true).unwrap();
            assert_eq!(p.framing, Framing::CloseDelimited);
            assert!(!p.persistent);
            assert_eq!(
                head(req, 200, &[ct()], 0, true),
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
            );
        }
    }

    #[test]
    fn http10_keep_alive() {
        let req = info(V10, true, false);
        assert_eq!(
            head(req, 200, &[ct()], 3, false),
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n\
             Content-Length: 3\r\n\r\n"
        );
        let req = info(V10, false, false);
        assert_eq!(
            head(req, 200, &[ct()], 3, false),
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn http11_close() {
        let req = info(V11, false, false);
        assert_eq!(
            head(req, 200, &[ct()], 3, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\
             Content-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn framing_headers_from_handler_are_dropped() {
        let req = info(V11, true, false);
        let headers = [
            Header::new("Connection", "close"),
            Header::new("Keep-Alive", "timeout=5"),
            Header::new("Transfer-Encoding", "chunked"),
            ct(),
        ];
        assert_eq!(
            head(req, 200, &headers, 2, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn no_body_statuses() {
        let req = info(V11, true, false);
        let headers = [Header::new("X-A", "1"), Header::new("Content-Length", "10")];
        for code in [204, 304, 100, 103] {
            let p = plan(&req, code, &headers, 0, false).unwrap();
            assert_eq!(p.framing, Framing::NoBody);
            assert_eq!(p.content_length, None);
            assert!(p.persistent);
        }
        let plan = plan(&req, 304, &headers, 0, false).unwrap();
        let mut out = Vec::new();
        write_head(&mut out, V11, 304, "Not Modified", &headers, &plan);
        assert_eq!(out, b"HTTP/1.1 304 Not Modified\r\nX-A: 1\r\n\r\n");
    }

    #[test]
    fn head_keeps_known_length_only() {
        let req = info(V11, true, true);
        let p = plan(&req, 200, &[Header::new("Content-Length", "3")], 0, false).unwrap();
        assert_eq!(
            p,
            ResponsePlan {
                framing: Framing::NoBody,
                persistent: true,
                content_length: Some(3)
            }
        );
        let p = plan(&req, 200, &[], 0, false).unwrap();
        assert_eq!(p.content_length, Some(0));
        let p = plan(&req, 200, &[], 0, true).unwrap();
        assert_eq!(
            p,
            ResponsePlan {
                framing: Framing::NoBody,
                persistent: true,
                content_length: None
            }
        );
    }

    #[test]
    fn switching_protocols_keeps_connection_header() {
        let req = info(V11, true, false);
        let headers = [
            Header::new("Upgrade", "websocket"),
            Header::new("Connection", "Upgrade"),
        ];
        let p = plan(&req, 101, &headers, 0, true).unwrap();
        assert!(!p.persistent);
        let mut out = Vec::new();
        write_head(&mut out, V11, 101, "Switching Protocols", &headers, &p);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn rejects_bad_handler_input() {
        let req = info(V11, true, false);
        assert_eq!(
            plan(&req, 99, &[], 0, false),
            Err(ResponseError::InvalidStatus(99))
        );
        assert_eq!(
            plan(&req, 1000, &[], 0, false),
            Err(ResponseError::InvalidStatus(1000))
        );
        assert_eq!(
            plan(&req, 200, &[Header::new("Content-Length", "x")], 0, false),
            Err(ResponseError::InvalidContentLength)
        );
        assert_eq!(
            plan(
                &req,
                200,
                &[
                    Header::new("Content-Length", "1"),
                    Header::new("Content-Length", "2")
                ],
                0,
                false
            ),
            Err(ResponseError::InvalidContentLength)
        );
        assert!(matches!(
            plan(&req, 200, &[Header::new("Bad Name", "x")], 0, false),
            Err(ResponseError::InvalidHeaderName(_))
        ));
        assert!(matches!(
            plan(
                &req,
                200,
                &[Header::new("X", "a\r\nSet-Cookie: evil")],
                0,
                false
            ),
            Err(ResponseError::InvalidHeaderValue(_))
        ));
    }

    #[test]
    fn reason_with_control_characters_is_dropped() {
        let p = ResponsePlan {
            framing: Framing::Length(0),
            persistent: true,
            content_length: Some(0),
        };
        let mut out = Vec::new();
        write_head(&mut out, V11, 200, "OK\r\nX: y", &[], &p);
        assert_eq!(out, b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn chunk_headers() {
        let cases: [(u64, &str); 5] = [
            (0, "0\r\n"),
            (5, "5\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
            (u64::MAX, "ffffffffffffffff\r\n"),
        ];
        for (len, expected) in cases {
            let (buf, n) = chunk_header(len);
            assert_eq!(&buf[..n], expected.as_bytes());
        }
    }

    #[test]
    fn error_responses() {
        let body = "Request header size exceeded limit of 8192 bytes.\n";
        let out = error_response(V11, 400, "Bad Request", body);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        );
        let out = error_response(V10, 502, "Bad Gateway", "Error while proxying to origin.\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.0 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 32\r\n\r\n\
             Error while proxying to origin.\n"
        );
    }

    #[test]
    fn decimals() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        out.push(b' ');
        push_decimal(&mut out, u64::MAX);
        assert_eq!(out, b"0 18446744073709551615");
        assert_eq!(parse_decimal(b" 42 "), Some(42));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"4 2"), None);
    }
}
