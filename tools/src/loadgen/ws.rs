//! A minimal RFC 6455 client: the upgrade request, frame parsing (server frames are unmasked,
//! masked ones are accepted too), masked client frames (pong and close replies), and the
//! WebSocket-over-HTTP event encoding the embedded backend answers with. The server's
//! `Sec-WebSocket-Accept` is not verified: the peers are loopback proxies under test.

use std::cell::Cell;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest frame payload accepted.
const MAX_PAYLOAD: u64 = 16 * 1024 * 1024;

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = super::stats::now_ns();
    let tid = std::thread::current().id();
    let h = format!("{tid:?}")
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    (t ^ h.rotate_left(32)) | 1
}

/// A fast non-cryptographic random number (xorshift64), for masks and handshake keys.
pub fn random_u64() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.set(x);
        x
    })
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The upgrade request for `path` (path and query).
pub fn handshake_request(path: &str, host: &str) -> String {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&random_u64().to_le_bytes());
    key[8..].copy_from_slice(&random_u64().to_le_bytes());
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base64(&key)
    )
}

/// One parsed frame: header fields and the payload's range in the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Parses one frame at the start of `buf`: `Ok(None)` if incomplete, else the frame (payload
/// unmasked) and the bytes it used.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let mut pos = 2;
    let mut len = u64::from(buf[1] & 0x7F);
    if len == 126 {
        if buf.len() < 4 {
            return Ok(None);
        }
        len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
        pos = 4;
    } else if len == 127 {
        if buf.len() < 10 {
            return Ok(None);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[2..10]);
        len = u64::from_be_bytes(b);
        pos = 10;
    }
    if len > MAX_PAYLOAD {
        return Err(format!("frame too large ({len} bytes)"));
    }
    let mut mask = [0u8; 4];
    if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        mask.copy_from_slice(&buf[pos..pos + 4]);
        pos += 4;
    }
    let end = pos + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let mut payload = buf[pos..end].to_vec();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        end,
    )))
}

/// A final, masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame_with_mask(opcode, payload, (random_u64() as u32).to_be_bytes())
}

fn client_frame_with_mask(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// One WebSocket-over-HTTP event (`application/websocket-events`): `TYPE\r\n` without content,
/// `TYPE <hexlen>\r\n<content>\r\n` with.
pub fn encode_event(kind: &str, content: Option<&[u8]>) -> Vec<u8> {
    match content {
        None => format!("{kind}\r\n").into_bytes(),
        Some(c) => {
            let mut out = format!("{kind} {:x}\r\n", c.len()).into_bytes();
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

/// Largest WebSocket-over-HTTP body the backend parses (Pushpin caps its own at 1,000,000).
pub const MAX_EVENTS_BODY: usize = 1_000_000;

/// Why an `application/websocket-events` body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("events body too large ({0} bytes)")]
    TooLarge(usize),
    #[error("event line without CRLF at byte {0}")]
    Unterminated(usize),
    #[error("bad event length {0:?}")]
    BadLength(String),
    #[error("event content truncated at byte {0}")]
    Truncated(usize),
}

/// One WebSocket-over-HTTP event: its type (`OPEN`, `TEXT`, `CLOSE`, …) and content, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub content: Option<&'a [u8]>,
}

/// Parses a whole `application/websocket-events` body (the inverse of [`encode_event`]; the
/// hexadecimal length may be in either case).
pub fn parse_events(body: &[u8]) -> Result<Vec<Event<'_>>, EventError> {
    if body.len() > MAX_EVENTS_BODY {
        return Err(EventError::TooLarge(body.len()));
    }
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let line_len = body[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(EventError::Unterminated(pos))?;
        let line = std::str::from_utf8(&body[pos..pos + line_len]).map_err(|_| {
            EventError::BadLength(String::from_utf8_lossy(&body[pos..pos + line_len]).into_owned())
        })?;
        pos += line_len + 2;
        let (kind, content) = match line.split_once(' ') {
            None => (line, None),
            Some((kind, hex)) => {
                let len = usize::from_str_radix(hex, 16)
                    .map_err(|_| EventError::BadLength(hex.to_string()))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| e + 2 <= body.len() && &body[*e..e + 2] == b"\r\n")
                    .ok_or(EventError::Truncated(pos))?;
                let content = &body[pos..end];
                pos = end + 2;
                (kind, Some(content))
            }
        };
        events.push(Event { kind, content });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0u8; 16]).len(), 24);
    }

    #[test]
    fn handshake() {
        let r = handshake_request("/ws?channel=a", "127.0.0.1:1");
        assert!(r.starts_with("GET /ws?channel=a HTTP/1.1\r\n"));
        assert!(r.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn frames_round_trip() {
        // RFC 6455 §5.7: a masked "Hello".
        let f = client_frame_with_mask(OP_TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            f,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let (frame, n) = parse_frame(&f).unwrap().unwrap();
        assert_eq!(n, f.len());
        assert_eq!(
            frame,
            Frame {
                fin: true,
                opcode: OP_TEXT,
                payload: b"Hello".to_vec()
            }
        );
        // Unmasked server frames, 16-bit length, partial input.
        let unmasked = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
        assert_eq!(parse_frame(&unmasked[..4]).unwrap(), None);
        assert_eq!(parse_frame(&unmasked).unwrap().unwrap().0.payload, b"Hello");
        let big = vec![b'x'; 300];
        let f = client_frame(OP_BINARY, &big);
        assert_eq!(f[1], 0x80 | 126);
        let (frame, _) = parse_frame(&f).unwrap().unwrap();
        assert_eq!(frame.payload, big);
        let huge = [0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0];
        assert!(parse_frame(&huge).is_err());
    }

    #[test]
    fn events() {
        assert_eq!(encode_event("OPEN", None), b"OPEN\r\n");
        assert_eq!(encode_event("TEXT", Some(b"c:{}")), b"TEXT 4\r\nc:{}\r\n");
        let content = br#"c:{"type":"subscribe","channel":"X"}"#;
        assert_eq!(
            encode_event("TEXT", Some(content)),
            [&b"TEXT 24\r\n"[..], content, b"\r\n"].concat()
        );
    }

    #[test]
    fn events_parse() {
        let body = b"OPEN\r\nTEXT 8\r\nhi there\r\nBINARY A\r\n0123456789\r\nCLOSE\r\n";
        let ev = parse_events(body).unwrap();
        assert_eq!(ev.len(), 4);
        assert_eq!(
            ev[0],
            Event {
                kind: "OPEN",
                content: None
            }
        );
        assert_eq!(ev[1].content, Some(&b"hi there"[..]));
        assert_eq!(
            (ev[2].kind, ev[2].content.map(<[u8]>::len)),
            ("BINARY", Some(10))
        );
        assert_eq!(ev[3].kind, "CLOSE");
        assert_eq!(parse_events(b"").unwrap(), []);
        assert_eq!(parse_events(b"OPEN"), Err(EventError::Unterminated(0)));
        assert_eq!(
            parse_events(b"TEXT 9\r\nhi there\r\n"),
            Err(EventError::Truncated(8))
        );
        assert_eq!(
            parse_events(b"TEXT zz\r\n"),
            Err(EventError::BadLength("zz".into()))
        );
        let round = [encode_event("TEXT", Some(b"x")), encode_event("PING", None)].concat();
        assert_eq!(parse_events(&round).unwrap()[1].kind, "PING");
    }
}
