//! The `application/websocket-events` body of WebSocket-over-HTTP (reference §5.3): [`encode`]
//! what the client did into a request body, [`decode`] the origin's reply into [`Event`]s.
//!
//! A body is a run of events, each `TYPE\r\n` (no content) or `TYPE <len>\r\n<content>\r\n`,
//! where `<len>` is the content length in hexadecimal.
//!
//! # What Pushpin 1.36 writes **[observed 1.36]**
//!
//! Captured from a real 1.36 relaying a Python `websockets` client to an `over_http` route
//! (the golden tests below pin these bytes):
//!
//! - Lengths are lowercase hex without padding: a 10-byte text is `TEXT a\r\nfragmented\r\n`.
//! - Content is omitted whenever it is empty, for every type: an empty text message is
//!   `TEXT\r\n`, an empty binary message `BINARY\r\n`, an empty ping `PING\r\n` (the reference's
//!   table only mentions PING/PONG; 1.36 does it for all four).
//! - A ping with payload is `PING 2\r\npp\r\n`; pongs likewise (including the automatic pong a
//!   client sends back for a PING the origin pushed).
//! - A close with a code is `CLOSE <len>\r\n` + 2-byte big-endian code + UTF-8 reason:
//!   close(4001, "bye ü") is `CLOSE 8\r\n\x0f\xa1bye \xc3\xbc\r\n`. A close frame without a
//!   code is `CLOSE\r\n`.
//! - A fragmented client message is reassembled into one event.
//! - `OPEN\r\n` is the whole first body; `DISCONNECT\r\n` the whole last one when the client
//!   vanished without a close.
//!
//! # What Pushpin 1.36 sends with each POST **[observed 1.36]**
//!
//! For the handler engineer, the headers of every WebSocket-over-HTTP request, in this order:
//!
//! 1. The client's handshake headers, minus `Upgrade`, `Connection`, `Accept`,
//!    `Connection-Id`, `Content-Length`, `Sec-WebSocket-Extensions` and every `Meta-*` header
//!    the client sent (a client's `Meta-Evil: x` and `Connection-Id: fake` never reach the
//!    origin). `Host`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol`,
//!    `Cookie`, `User-Agent` and custom headers are kept. An `Accept-Encoding: deflate, gzip,
//!    br, zstd` also appeared (added by the outbound HTTP client, not sent by the client).
//! 2. The usual proxy additions (reference §4.9): `Sec-WebSocket-Extensions: grip`,
//!    `Grip-Sig: <JWT>` (re-signed for every request, `exp` moves), `Grip-Feature: status,
//!    session, link:next, filter:skip-self, filter:skip-users, filter:require-sub,
//!    filter:build-id, filter:var-subst`.
//! 3. `Accept: application/websocket-events`, `Connection-Id: <uuid>` (random v4 UUID, the
//!    same for every request of the connection, e.g. `1f504f9f-5854-435b-909f-97992731e5bd`),
//!    `Content-Type: application/websocket-events`.
//! 4. `Meta-<Name>: <value>` for each meta set by an earlier reply's `Set-Meta-<Name>` header
//!    (`Set-Meta-User: alice` on the OPEN reply → `Meta-User: alice` from the next request).
//! 5. `Content-Length` (never chunked). The method is `POST`, the path and query those of the
//!    handshake.
//!
//! The 101 sent to the client carried the OPEN reply's headers (`Server`, `Date`, custom ones)
//! minus `Content-Length`, `Content-Type`, `Keep-Alive-Interval`, `Set-Meta-*` and
//! `Sec-WebSocket-Extensions`.
//!
//! # How strict [`decode`] is
//!
//! Pushpin's own parser is loose: it reads the length with Qt's `toInt(16)` (whitespace, sign
//! and `0x` accepted), takes whatever content is there when the body is short, and skips two
//! bytes after the content without checking them. Holdfast rejects all of that with an
//! [`EventsError`]: the length is one or more hex digits of either case and nothing else, the
//! content must be complete and followed by `\r\n`. Where Pushpin's behaviour is an
//! observable feature rather than slack, Holdfast keeps it **[observed 1.36]**:
//!
//! - Event types are case-sensitive and unknown types are skipped with their content (`FOO
//!   2\r\nab\r\n` and `text 4\r\nm:lo\r\n` are ignored, the events around them delivered). An
//!   empty line (`\r\n` between events) is an unknown, empty type and is skipped too.
//! - Content on `OPEN` or `DISCONNECT` is ignored.
//! - A `CLOSE` whose content is shorter than 2 bytes is a close without a code; an invalid
//!   UTF-8 reason is decoded lossily (Qt's `QString::fromUtf8`).
//! - TEXT content is not checked for UTF-8 (Pushpin relays it as is).

use bytes::Bytes;

/// The media type of an events body, in both directions. Pushpin compares the reply's whole
/// `Content-Type` value with it, case-sensitively: parameters make the reply invalid.
pub const CONTENT_TYPE: &str = "application/websocket-events";

/// Largest origin reply body Pushpin accepts (`RESPONSE_BODY_MAX`); bigger is a connection
/// error. The default [`Limits::max_body`].
pub const MAX_RESPONSE_BODY: usize = 1_000_000;

/// How much of a rejecting OPEN reply's body is relayed to the client (`REJECT_BODY_MAX`).
pub const MAX_REJECT_BODY: usize = 100_000;

/// Pending client content per connection before client reads pause (`BUFFER_SIZE`); also the
/// most content one request carries.
pub const MAX_PENDING_CONTENT: usize = 200_000;

/// Messages from the origin are split into frames of at most this many bytes toward the client
/// (`FRAME_SIZE_MAX`). A GRIP control message must fit in one such frame.
pub const FRAME_SIZE_MAX: usize = 16_384;

/// Smallest `Keep-Alive-Interval` Pushpin honours, in seconds; smaller positive values are
/// raised to it.
pub const MIN_KEEP_ALIVE_INTERVAL: u32 = 20;

/// The most events a body of [`MAX_RESPONSE_BODY`] bytes can hold (the shortest event,
/// `PING\r\n` and friends, takes 6 bytes). The default [`Limits::max_events`], so by default
/// the event count never rejects a body Pushpin would accept.
pub const DEFAULT_MAX_EVENTS: usize = MAX_RESPONSE_BODY.div_ceil(6);

/// One WebSocket-over-HTTP event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `OPEN`: the first request of a connection; the first event of the reply accepting it.
    Open,
    /// `TEXT`: a complete text message (not checked for UTF-8).
    Text(Bytes),
    /// `BINARY`: a complete binary message.
    Binary(Bytes),
    /// `PING` with its payload (empty: written without content).
    Ping(Bytes),
    /// `PONG` with its payload (empty: written without content).
    Pong(Bytes),
    /// `CLOSE`: the close code and UTF-8 reason, or `None` for a close without a code.
    Close(Option<(u16, String)>),
    /// `DISCONNECT`: the client went away without a close (request); drop the client (reply).
    Disconnect,
}

impl Event {
    /// The event's type name as written on the wire (`OPEN`, `TEXT`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Text(_) => "TEXT",
            Self::Binary(_) => "BINARY",
            Self::Ping(_) => "PING",
            Self::Pong(_) => "PONG",
            Self::Close(_) => "CLOSE",
            Self::Disconnect => "DISCONNECT",
        }
    }

    /// Appends this event to `out` exactly as Pushpin 1.36 writes it (see the module docs).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let name = self.name().as_bytes();
        match self {
            Self::Open | Self::Disconnect | Self::Close(None) => write_bare(out, name),
            Self::Text(c) | Self::Binary(c) | Self::Ping(c) | Self::Pong(c) => {
                if c.is_empty() {
                    write_bare(out, name);
                } else {
                    write_header(out, name, c.len());
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Self::Close(Some((code, reason))) => {
                write_header(out, name, 2 + reason.len());
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// How many bytes [`Event::encode_into`] appends, for sizing a request body.
    pub fn encoded_len(&self) -> usize {
        let name = self.name().len();
        let content = match self {
            Self::Open | Self::Disconnect | Self::Close(None) => 0,
            Self::Text(c) | Self::Binary(c) | Self::Ping(c) | Self::Pong(c) => c.len(),
            Self::Close(Some((_, reason))) => 2 + reason.len(),
        };
        if content == 0 {
            name + 2
        } else {
            name + 1 + hex_digits(content) + 2 + content + 2
        }
    }
}

/// Appends every event to `out`, in order (see [`Event::encode_into`]).
pub fn encode(events: &[Event], out: &mut Vec<u8>) {
    out.reserve(events.iter().map(Event::encoded_len).sum());
    for event in events {
        event.encode_into(out);
    }
}

/// Bounds [`decode_with`] enforces before and while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes. Default [`MAX_RESPONSE_BODY`] (1,000,000), Pushpin's
    /// limit on origin replies.
    pub max_body: usize,
    /// Most events accepted, skipped unknown types included. Default [`DEFAULT_MAX_EVENTS`],
    /// which cannot trigger below the default body limit; lower it to bound the allocation
    /// of the returned list further.
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: MAX_RESPONSE_BODY,
            max_events: DEFAULT_MAX_EVENTS,
        }
    }
}

/// Why an events body was rejected. Pushpin treats every such body as a connection error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// The body exceeds [`Limits::max_body`].
    #[error("websocket-events body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// The body's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body holds more than [`Limits::max_events`] events.
    #[error("websocket-events body has more than {max} events")]
    TooManyEvents {
        /// The limit.
        max: usize,
    },
    /// An event line does not end with `\r\n`.
    #[error("websocket-events line at offset {offset} is not terminated by CRLF")]
    UnterminatedLine {
        /// Where the line starts.
        offset: usize,
    },
    /// The length after the type is not one or more hex digits (or does not fit a `usize`).
    #[error("websocket-events line at offset {offset} has an invalid content length")]
    InvalidLength {
        /// Where the line starts.
        offset: usize,
    },
    /// The content is cut short by the end of the body.
    #[error(
        "websocket-events content at offset {offset} needs {len} bytes but only {available} remain"
    )]
    Truncated {
        /// Where the content starts.
        offset: usize,
        /// The declared length.
        len: usize,
        /// Bytes left in the body.
        available: usize,
    },
    /// The content is not followed by `\r\n`.
    #[error("websocket-events content at offset {offset} is not followed by CRLF")]
    MissingContentEnd {
        /// Where the content starts.
        offset: usize,
    },
}

/// Decodes a body with the default [`Limits`]. An empty body is no events.
pub fn decode(body: &[u8]) -> Result<Vec<Event>, EventsError> {
    decode_with(body, &Limits::default())
}

/// Decodes a body, enforcing `limits`. Unknown event types are skipped (see the module docs).
pub fn decode_with(body: &[u8], limits: &Limits) -> Result<Vec<Event>, EventsError> {
    if body.len() > limits.max_body {
        return Err(EventsError::BodyTooLarge {
            len: body.len(),
            max: limits.max_body,
        });
    }
    let mut events = Vec::new();
    let mut seen = 0usize;
    let mut pos = 0;
    while pos < body.len() {
        seen += 1;
        if seen > limits.max_events {
            return Err(EventsError::TooManyEvents {
                max: limits.max_events,
            });
        }
        let line_start = pos;
        let line_end =
            find_crlf(body, pos).ok_or(EventsError::UnterminatedLine { offset: line_start })?;
        let line = &body[line_start..line_end];
        pos = line_end + 2;

        let (name, content) = match line.iter().position(|&b| b == b' ') {
            None => (line, None),
            Some(space) => {
                let len = parse_hex(&line[space + 1..])
                    .ok_or(EventsError::InvalidLength { offset: line_start })?;
                let available = body.len() - pos;
                if len > available {
                    return Err(EventsError::Truncated {
                        offset: pos,
                        len,
                        available,
                    });
                }
                let content = &body[pos..pos + len];
                if body.get(pos + len..pos + len + 2) != Some(&b"\r\n"[..]) {
                    return Err(EventsError::MissingContentEnd { offset: pos });
                }
                pos += len + 2;
                (&line[..space], Some(content))
            }
        };

        let content = content.unwrap_or_default();
        let event = match name {
            b"OPEN" => Event::Open,
            b"TEXT" => Event::Text(Bytes::copy_from_slice(content)),
            b"BINARY" => Event::Binary(Bytes::copy_from_slice(content)),
            b"PING" => Event::Ping(Bytes::copy_from_slice(content)),
            b"PONG" => Event::Pong(Bytes::copy_from_slice(content)),
            b"CLOSE" => Event::Close(match content {
                [hi, lo, reason @ ..] => Some((
                    u16::from_be_bytes([*hi, *lo]),
                    String::from_utf8_lossy(reason).into_owned(),
                )),
                _ => None,
            }),
            b"DISCONNECT" => Event::Disconnect,
            // Pushpin ignores event types it does not know [observed 1.36].
            _ => continue,
        };
        events.push(event);
    }
    Ok(events)
}

fn write_bare(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &[u8], len: usize) {
    out.extend_from_slice(name);
    out.push(b' ');
    push_hex(out, len);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in lowercase hex without leading zeros (`QByteArray::number(n, 16)`).
fn push_hex(out: &mut Vec<u8>, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let count = hex_digits(n);
    for i in (0..count).rev() {
        out.push(DIGITS[(n >> (4 * i)) & 0xf]);
    }
}

fn hex_digits(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits as usize).div_ceil(4).max(1)
}

/// One or more hex digits of either case, nothing else; `None` if empty, malformed or too big.
fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0usize, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(d as usize)
    })
}

fn find_crlf(body: &[u8], from: usize) -> Option<usize> {
    body.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(events, &mut out);
        out
    }

    fn text(s: &str) -> Event {
        Event::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Every request body a real Pushpin 1.36 sent in the capture described in the module
    /// docs, byte for byte, with the events that produced it.
    #[test]
    fn golden_request_bodies_observed_on_1_36() {
        let cases: Vec<(Event, &[u8])> = vec![
            (Event::Open, b"OPEN\r\n"),
            (text("hello"), b"TEXT 5\r\nhello\r\n"),
            (
                Event::Binary(Bytes::from_static(b"\x00\x01bin")),
                b"BINARY 5\r\n\x00\x01bin\r\n",
            ),
            (Event::Ping(Bytes::from_static(b"pp")), b"PING 2\r\npp\r\n"),
            (Event::Ping(Bytes::new()), b"PING\r\n"),
            (Event::Pong(Bytes::from_static(b"po")), b"PONG 2\r\npo\r\n"),
            (Event::Pong(Bytes::new()), b"PONG\r\n"),
            (text(""), b"TEXT\r\n"),
            (Event::Binary(Bytes::new()), b"BINARY\r\n"),
            (text("fragmented"), b"TEXT a\r\nfragmented\r\n"),
            (
                text("h\u{e9}\u{20ac}"),
                b"TEXT 6\r\nh\xc3\xa9\xe2\x82\xac\r\n",
            ),
            (
                Event::Close(Some((4001, "bye \u{fc}".into()))),
                b"CLOSE 8\r\n\x0f\xa1bye \xc3\xbc\r\n",
            ),
            (
                Event::Close(Some((1011, String::new()))),
                b"CLOSE 2\r\n\x03\xf3\r\n",
            ),
            (Event::Close(None), b"CLOSE\r\n"),
            (Event::Disconnect, b"DISCONNECT\r\n"),
        ];
        for (event, bytes) in cases {
            assert_eq!(
                enc(std::slice::from_ref(&event)),
                bytes,
                "{event:?} encodes as {:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(event.encoded_len(), bytes.len(), "{event:?}");
            // Pushpin reads back what it writes; so do we.
            assert_eq!(decode(bytes).unwrap(), vec![event]);
        }
    }

    #[test]
    fn encode_concatenates_in_order() {
        let events = vec![text("hi there"), Event::Close(None)];
        assert_eq!(enc(&events), b"TEXT 8\r\nhi there\r\nCLOSE\r\n");
        let mut out = b"x".to_vec();
        encode(&[], &mut out);
        assert_eq!(out, b"x");
    }

    #[test]
    fn lengths_are_lowercase_hex_without_padding() {
        for (len, hex) in [
            (1usize, "1"),
            (9, "9"),
            (10, "a"),
            (15, "f"),
            (16, "10"),
            (255, "ff"),
            (256, "100"),
            (16_384, "4000"),
            (200_000, "30d40"),
        ] {
            let event = Event::Binary(Bytes::from(vec![b'x'; len]));
            let out = enc(std::slice::from_ref(&event));
            let expected = format!("BINARY {hex}\r\n");
            assert!(out.starts_with(expected.as_bytes()), "{len}");
            assert_eq!(out.len(), event.encoded_len());
            assert!(out.ends_with(b"x\r\n"));
        }
        let mut out = Vec::new();
        push_hex(&mut out, 0);
        assert_eq!(out, b"0");
        out.clear();
        push_hex(&mut out, usize::MAX);
        assert_eq!(out.len(), usize::BITS as usize / 4);
        assert!(out.iter().all(|&c| c == b'f'));
    }

    /// The reply bodies the capture's origin sent and what Pushpin made of them.
    #[test]
    fn decodes_origin_replies() {
        let body = b"TEXT 4\r\nm:hi\r\nTEXT 7\r\nnoprefx\r\nBINARY 5\r\nm:bin\r\n\
                     TEXT C\r\nm:0123456789\r\nPING 2\r\nxy\r\nPING\r\n";
        assert_eq!(
            decode(body).unwrap(),
            vec![
                text("m:hi"),
                text("noprefx"),
                Event::Binary(Bytes::from_static(b"m:bin")),
                text("m:0123456789"),
                Event::Ping(Bytes::from_static(b"xy")),
                Event::Ping(Bytes::new()),
            ]
        );
        assert_eq!(
            decode(b"CLOSE 5\r\n\x0f\xa1bye\r\n").unwrap(),
            vec![Event::Close(Some((4001, "bye".into())))]
        );
        assert_eq!(decode(b"OPEN\r\n").unwrap(), vec![Event::Open]);
        assert_eq!(decode(b"").unwrap(), vec![]);
    }

    /// Pushpin 1.36 skipped `FOO`, lowercase `text` and a blank line, and delivered the rest.
    #[test]
    fn unknown_types_are_skipped_with_their_content() {
        let body = b"FOO 2\r\nab\r\ntext 4\r\nm:lo\r\n\r\nTEXT 3\r\nm:x\r\nTEXT 0\r\n\r\nBAR\r\n";
        assert_eq!(decode(body).unwrap(), vec![text("m:x"), text("")]);
    }

    #[test]
    fn hex_length_accepts_either_case_and_leading_zeros() {
        let payload = [b'z'; 0xab];
        for len in ["ab", "AB", "aB", "00ab"] {
            let mut body = format!("BINARY {len}\r\n").into_bytes();
            body.extend_from_slice(&payload);
            body.extend_from_slice(b"\r\n");
            assert_eq!(
                decode(&body).unwrap(),
                vec![Event::Binary(Bytes::copy_from_slice(&payload))],
                "{len}"
            );
        }
        assert_eq!(decode(b"TEXT 0\r\n\r\n").unwrap(), vec![text("")]);
    }

    #[test]
    fn content_is_opaque() {
        // CRLF and spaces inside content are data; text is not checked for UTF-8.
        assert_eq!(
            decode(b"TEXT 6\r\na\r\nb c\r\nTEXT 2\r\n\xff\xfe\r\n").unwrap(),
            vec![
                text("a\r\nb c"),
                Event::Text(Bytes::from_static(b"\xff\xfe"))
            ]
        );
    }

    #[test]
    fn close_content_rules() {
        assert_eq!(decode(b"CLOSE\r\n").unwrap(), vec![Event::Close(None)]);
        assert_eq!(
            decode(b"CLOSE 0\r\n\r\n").unwrap(),
            vec![Event::Close(None)]
        );
        // One byte cannot hold a code: Pushpin treats it as a close without one.
        assert_eq!(
            decode(b"CLOSE 1\r\nx\r\n").unwrap(),
            vec![Event::Close(None)]
        );
        assert_eq!(
            decode(b"CLOSE 2\r\n\x03\xe8\r\n").unwrap(),
            vec![Event::Close(Some((1000, String::new())))]
        );
        assert_eq!(
            decode(b"CLOSE 4\r\n\x03\xe8\xffa\r\n").unwrap(),
            vec![Event::Close(Some((1000, "\u{fffd}a".into())))]
        );
    }

    #[test]
    fn content_on_open_and_disconnect_is_ignored() {
        assert_eq!(
            decode(b"OPEN 2\r\nhi\r\nDISCONNECT 1\r\nx\r\n").unwrap(),
            vec![Event::Open, Event::Disconnect]
        );
    }

    #[test]
    fn framing_errors() {
        let cases: Vec<(&[u8], EventsError)> = vec![
            (b"OPEN", EventsError::UnterminatedLine { offset: 0 }),
            (b"OPEN\n", EventsError::UnterminatedLine { offset: 0 }),
            (
                b"OPEN\r\nTEXT 2\r\nhi",
                EventsError::MissingContentEnd { offset: 14 },
            ),
            (
                b"OPEN\r\nTEXT 2\r\nhiXX",
                EventsError::MissingContentEnd { offset: 14 },
            ),
            (
                b"TEXT 2\r\nhi\r",
                EventsError::MissingContentEnd { offset: 8 },
            ),
            (
                b"TEXT 5\r\nhi\r\n",
                EventsError::Truncated {
                    offset: 8,
                    len: 5,
                    available: 4,
                },
            ),
            (b"TEXT \r\n\r\n", EventsError::InvalidLength { offset: 0 }),
            (
                b"TEXT  2\r\nhi\r\n",
                EventsError::InvalidLength { offset: 0 },
            ),
            (
                b"TEXT 2 \r\nhi\r\n",
                EventsError::InvalidLength { offset: 0 },
            ),
            (
                b"TEXT 0x2\r\nhi\r\n",
                EventsError::InvalidLength { offset: 0 },
            ),
            (
                b"TEXT +2\r\nhi\r\n",
                EventsError::InvalidLength { offset: 0 },
            ),
            (b"TEXT -1\r\n\r\n", EventsError::InvalidLength { offset: 0 }),
            (b"TEXT g\r\n\r\n", EventsError::InvalidLength { offset: 0 }),
            (
                b"TEXT 1ffffffffffffffffffff\r\n",
                EventsError::InvalidLength { offset: 0 },
            ),
            (
                b"TEXT ffffffffffffffff\r\n",
                EventsError::Truncated {
                    offset: 23,
                    len: usize::MAX,
                    available: 0,
                },
            ),
            // Unknown types are still framed strictly.
            (b"FOO z\r\n", EventsError::InvalidLength { offset: 0 }),
        ];
        for (body, err) in cases {
            assert_eq!(
                decode(body),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_body: 20,
            max_events: 2,
        };
        assert_eq!(
            decode_with(b"PING\r\nPING\r\nPING\r\n", &limits),
            Err(EventsError::TooManyEvents { max: 2 })
        );
        // Skipped events count too.
        assert_eq!(
            decode_with(b"X\r\nY\r\nZ\r\n", &limits),
            Err(EventsError::TooManyEvents { max: 2 })
        );
        assert_eq!(decode_with(b"PING\r\nPING\r\n", &limits).unwrap().len(), 2);
        assert_eq!(
            decode_with(&[b'x'; 21], &limits),
            Err(EventsError::BodyTooLarge { len: 21, max: 20 })
        );

        // The default body limit is Pushpin's, inclusive.
        let mut body = b"BINARY f4230\r\n".to_vec();
        body.resize(body.len() + 0xf4230, b'b');
        body.extend_from_slice(b"\r\n");
        assert_eq!(body.len(), MAX_RESPONSE_BODY);
        assert!(decode(&body).is_ok());
        body.push(b'!');
        assert_eq!(
            decode(&body),
            Err(EventsError::BodyTooLarge {
                len: 1_000_001,
                max: 1_000_000
            })
        );

        // A body of the largest size full of the shortest events fits the default count.
        let body = b"PING\r\n".repeat(MAX_RESPONSE_BODY / 6);
        assert_eq!(decode(&body).unwrap().len(), MAX_RESPONSE_BODY / 6);
        const { assert!(DEFAULT_MAX_EVENTS * 6 >= MAX_RESPONSE_BODY) };
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            EventsError::Truncated {
                offset: 8,
                len: 5,
                available: 4
            }
            .to_string(),
            "websocket-events content at offset 8 needs 5 bytes but only 4 remain"
        );
        assert_eq!(
            EventsError::BodyTooLarge { len: 2, max: 1 }.to_string(),
            "websocket-events body of 2 bytes exceeds the limit of 1"
        );
    }

    #[test]
    fn round_trip_many() {
        let events = vec![
            Event::Open,
            text("a"),
            Event::Binary(Bytes::from(vec![0u8; 300])),
            Event::Ping(Bytes::new()),
            Event::Pong(Bytes::from_static(b"\r\n")),
            Event::Close(Some((1000, "done".into()))),
            Event::Disconnect,
        ];
        let body = enc(&events);
        assert_eq!(
            body.len(),
            events.iter().map(Event::encoded_len).sum::<usize>()
        );
        assert_eq!(decode(&body).unwrap(), events);
    }
}
