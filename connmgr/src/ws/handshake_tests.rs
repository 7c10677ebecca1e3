//! Tests of the opening handshake.

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

type Headers = Vec<(&'static str, &'static [u8])>;

fn valid_headers() -> Headers {
    vec![
        ("Host", b"server.example.com"),
        ("Upgrade", b"websocket"),
        ("Connection", b"Upgrade"),
        ("Sec-WebSocket-Key", KEY.as_bytes()),
        ("Origin", b"http://example.com"),
        ("Sec-WebSocket-Protocol", b"chat, superchat"),
        ("Sec-WebSocket-Version", b"13"),
    ]
}

fn with(mut headers: Headers, name: &'static str, value: Option<&'static [u8]>) -> Headers {
    headers.retain(|h| !h.0.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        headers.push((name, v));
    }
    headers
}

fn check(headers: &[(&str, &[u8])]) -> Result<Accepted, HandshakeError> {
    validate(
        "GET",
        HttpVersion::Http11,
        headers,
        Some(&DeflateOptions::default()),
    )
}

#[test]
fn rfc6455_accept_example() {
    // RFC 6455 §1.3.
    let accept = AcceptKey::for_key(KEY.as_bytes());
    assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accept.as_bytes(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // Another known pair (RFC 6455 §4.2.2 uses the same key; this one is from the
    // widely used "x3JJHMbDL1EzLkh9GBhXDw==" example).
    assert_eq!(
        AcceptKey::for_key(b"x3JJHMbDL1EzLkh9GBhXDw==").as_str(),
        "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
    );
}

#[test]
fn valid_request() {
    let accepted = check(&valid_headers()).unwrap();
    assert_eq!(accepted.accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accepted.deflate, None);
}

#[test]
fn header_types() {
    let proto: Vec<Header> = valid_headers()
        .into_iter()
        .map(|(n, v)| Header::new(n, v))
        .collect();
    assert!(is_upgrade(&proto));
    assert!(validate("GET", HttpVersion::Http11, &proto, None).is_ok());

    let mut storage = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut storage);
    let head = format!(
        "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key:   {KEY}  \r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert!(req.parse(head.as_bytes()).unwrap().is_complete());
    assert!(is_upgrade(req.headers));
    let accepted = validate("GET", HttpVersion::Http11, req.headers, None).unwrap();
    assert_eq!(accepted.accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn tokens_are_case_insensitive_lists() {
    let h = with(valid_headers(), "Upgrade", Some(b"WebSocket"));
    assert!(is_upgrade(&h));
    assert!(check(&h).is_ok());
    let h = with(valid_headers(), "Connection", Some(b"keep-alive, Upgrade"));
    assert!(check(&h).is_ok());
    let h = with(valid_headers(), "Connection", Some(b"keep-alive,upgrade "));
    assert!(check(&h).is_ok());
    let h = with(valid_headers(), "Upgrade", Some(b"h2c, websocket"));
    assert!(check(&h).is_ok());
    // Several Connection lines: any of them.
    let mut h = with(valid_headers(), "Connection", Some(b"keep-alive"));
    h.push(("connection", b"upgrade"));
    assert!(check(&h).is_ok());
    // Trimmed key and version.
    let h = with(valid_headers(), "Sec-WebSocket-Version", Some(b" 13\t"));
    assert!(check(&h).is_ok());
}

#[test]
fn is_upgrade_detection() {
    assert!(!is_upgrade::<(&str, &[u8])>(&[]));
    assert!(!is_upgrade(&[("Upgrade", &b"h2c"[..])]));
    assert!(!is_upgrade(&[("Connection", &b"upgrade"[..])]));
    assert!(!is_upgrade(&[("X-Upgrade", &b"websocket"[..])]));
    assert!(is_upgrade(&[("upgrade", &b" websocket "[..])]));
    assert!(!is_upgrade(&[("Upgrade", &b"websocket2"[..])]));
}

#[test]
fn refusals() {
    let cases: Vec<(Headers, HandshakeError)> = vec![
        (
            with(valid_headers(), "Upgrade", None),
            HandshakeError::NoUpgrade,
        ),
        (
            with(valid_headers(), "Upgrade", Some(b"h2c")),
            HandshakeError::NoUpgrade,
        ),
        (
            with(valid_headers(), "Connection", None),
            HandshakeError::NoConnectionUpgrade,
        ),
        (
            with(valid_headers(), "Connection", Some(b"keep-alive")),
            HandshakeError::NoConnectionUpgrade,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Version", None),
            HandshakeError::MissingVersion,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Version", Some(b"8")),
            HandshakeError::UnsupportedVersion,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Version", Some(b"13, 8")),
            HandshakeError::UnsupportedVersion,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Key", None),
            HandshakeError::MissingKey,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Key", Some(b"abc")),
            HandshakeError::InvalidKey,
        ),
        (
            // 17 bytes of base64.
            with(
                valid_headers(),
                "Sec-WebSocket-Key",
                Some(b"dGhlIHNhbXBsZSBub25jZXg="),
            ),
            HandshakeError::InvalidKey,
        ),
        (
            with(
                valid_headers(),
                "Sec-WebSocket-Key",
                Some(b"dGhlIHNhbXBsZSBub25jZ!=="),
            ),
            HandshakeError::InvalidKey,
        ),
        (
            with(valid_headers(), "Sec-WebSocket-Key", Some(b"")),
            HandshakeError::InvalidKey,
        ),
        (
            with(valid_headers(), "Content-Length", Some(b"5")),
            HandshakeError::Body,
        ),
        (
            with(valid_headers(), "Content-Length", Some(b"x")),
            HandshakeError::Body,
        ),
        (
            with(valid_headers(), "Transfer-Encoding", Some(b"chunked")),
            HandshakeError::Body,
        ),
        (
            with(
                valid_headers(),
                "Sec-WebSocket-Extensions",
                Some(b"permessage-deflate;"),
            ),
            HandshakeError::Extensions(ExtensionError { offset: 19 }),
        ),
    ];
    for (headers, err) in cases {
        assert_eq!(check(&headers).unwrap_err(), err, "{headers:?}");
    }
    let mut twice = valid_headers();
    twice.push(("Sec-WebSocket-Key", KEY.as_bytes()));
    assert_eq!(check(&twice).unwrap_err(), HandshakeError::InvalidKey);

    let h = valid_headers();
    assert_eq!(
        validate("POST", HttpVersion::Http11, &h, None).unwrap_err(),
        HandshakeError::Method
    );
    assert_eq!(
        validate("get", HttpVersion::Http11, &h, None).unwrap_err(),
        HandshakeError::Method
    );
    assert_eq!(
        validate("GET", HttpVersion::Http10, &h, None).unwrap_err(),
        HandshakeError::HttpVersion
    );
}

#[test]
fn zero_content_length_allowed() {
    for v in [&b"0"[..], b" 0 ", b"0, 0", b"00"] {
        let h = with(valid_headers(), "Content-Length", Some(v));
        assert!(check(&h).is_ok(), "{v:?}");
    }
}

#[test]
fn deflate_negotiation() {
    let h = with(
        valid_headers(),
        "Sec-WebSocket-Extensions",
        Some(b"permessage-deflate; client_max_window_bits"),
    );
    let accepted = check(&h).unwrap();
    assert_eq!(
        accepted.deflate,
        Some(DeflateParams {
            client_no_context_takeover: false,
            server_max_window_bits: None
        })
    );
    // Compression disabled: the offer is ignored.
    let accepted = validate("GET", HttpVersion::Http11, &h, None).unwrap();
    assert_eq!(accepted.deflate, None);
    // An offer we cannot honour: no compression, handshake still fine.
    let h = with(
        valid_headers(),
        "Sec-WebSocket-Extensions",
        Some(b"permessage-deflate; server_max_window_bits=9"),
    );
    assert_eq!(check(&h).unwrap().deflate, None);
    // Offers over several header lines.
    let mut h = with(valid_headers(), "Sec-WebSocket-Extensions", Some(b"foo"));
    h.push((
        "Sec-WebSocket-Extensions",
        b"permessage-deflate; client_no_context_takeover",
    ));
    assert_eq!(
        check(&h).unwrap().deflate,
        Some(DeflateParams {
            client_no_context_takeover: true,
            server_max_window_bits: None
        })
    );
}

#[test]
fn rejection_response_bytes() {
    let text_len = INVALID_REQUEST_TEXT.len();
    assert_eq!(text_len, 110);
    assert!(INVALID_REQUEST_TEXT.ends_with("not a valid WebSocket request.\n"));
    let expected = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: {text_len}\r\n\r\n{INVALID_REQUEST_TEXT}"
    );
    let out = rejection_response(HttpVersion::Http11, &HandshakeError::MissingKey);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    // Same as the connection manager's other generated errors.
    assert_eq!(
        rejection_response(HttpVersion::Http11, &HandshakeError::Body),
        crate::http1::response::error_response(
            HttpVersion::Http11,
            400,
            "Bad Request",
            INVALID_REQUEST_TEXT
        )
    );

    let out = rejection_response(HttpVersion::Http11, &HandshakeError::UnsupportedVersion);
    let expected = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nSec-WebSocket-Version: 13\r\n\
         Connection: close\r\nContent-Length: {text_len}\r\n\r\n{INVALID_REQUEST_TEXT}"
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert!(HandshakeError::MissingVersion.is_version_error());
    assert!(!HandshakeError::InvalidKey.is_version_error());

    let out = rejection_response(HttpVersion::Http10, &HandshakeError::HttpVersion);
    assert!(out.starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
}

fn accepted(deflate: Option<DeflateParams>) -> Accepted {
    Accepted {
        accept: AcceptKey::for_key(KEY.as_bytes()),
        deflate,
    }
}

#[test]
fn switching_protocols_head() {
    let backend = [
        Header::new("Sec-WebSocket-Protocol", "chat"),
        Header::new("upgrade", "something-else"),
        Header::new("Connection", "keep-alive"),
        Header::new("Sec-WebSocket-Accept", "forged"),
        Header::new("Sec-WebSocket-Extensions", "grip; message-prefix=\"\""),
        Header::new("Content-Length", "0"),
        Header::new("Transfer-Encoding", "chunked"),
        Header::new("Keep-Alive", "timeout=5"),
        Header::new("Set-Cookie", "a=b"),
    ];
    let mut out = Vec::new();
    write_switching_protocols(&mut out, &accepted(None), "Switching Protocols", &backend).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Sec-WebSocket-Protocol: chat\r\n\
         Set-Cookie: a=b\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn switching_protocols_with_deflate() {
    let deflate = DeflateParams {
        client_no_context_takeover: true,
        server_max_window_bits: None,
    };
    let mut out = Vec::new();
    write_switching_protocols(&mut out, &accepted(Some(deflate)), "", &[]).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover\r\n\r\n"
    );
    // Well-formed for a client parser.
    let mut storage = [httparse::EMPTY_HEADER; 8];
    let mut resp = httparse::Response::new(&mut storage);
    assert_eq!(
        resp.parse(&out).unwrap(),
        httparse::Status::Complete(out.len())
    );
    assert_eq!(resp.code, Some(101));
}

#[test]
fn switching_protocols_reason_and_bad_headers() {
    let mut out = Vec::new();
    write_switching_protocols(
        &mut out,
        &accepted(None),
        "Web Socket Protocol Handshake",
        &[],
    )
    .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 101 Web Socket Protocol Handshake\r\n"));
    let mut out = Vec::new();
    write_switching_protocols(&mut out, &accepted(None), "bad\r\nX: y", &[]).unwrap();
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));

    let mut out = Vec::new();
    assert_eq!(
        write_switching_protocols(
            &mut out,
            &accepted(None),
            "",
            &[Header::new("X-Ok", "1"), Header::new("Bad Name", "1")]
        ),
        Err(ResponseError::InvalidHeaderName("Bad Name".into()))
    );
    assert!(out.is_empty());
    assert_eq!(
        write_switching_protocols(&mut out, &accepted(None), "", &[Header::new("X", "a\r\nb")]),
        Err(ResponseError::InvalidHeaderValue("X".into()))
    );
    assert!(out.is_empty());
}

#[test]
fn replaced_headers() {
    for name in [
        "upgrade",
        "CONNECTION",
        "sec-websocket-accept",
        "Sec-WebSocket-Extensions",
    ] {
        assert!(is_replaced_header(name), "{name}");
    }
    for name in [
        "Sec-WebSocket-Protocol",
        "Set-Cookie",
        "Upgrade-Insecure-Requests",
    ] {
        assert!(!is_replaced_header(name), "{name}");
    }
}
