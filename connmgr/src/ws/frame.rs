//! Frame headers (RFC 6455 §5.2): parsing what a client sends, writing what the server sends.
//!
//! [`parse_header`] looks only at the header: it answers [`Parsed::Partial`] until the whole
//! header is buffered, then returns it with its length, and the payload stays where it is in
//! the caller's buffer. Everything that can be decided from the header is decided here, as
//! early as possible (most checks need only the first two bytes), with the strict rules of a
//! server:
//!
//! - client frames must be masked (RFC 6455 §5.1);
//! - RSV1 only when permessage-deflate was negotiated, and then only on the first frame of a
//!   data message (RFC 7692 §6.1); RSV2 and RSV3 never (no extension we support uses them);
//! - only the six defined opcodes;
//! - control frames carry at most 125 bytes and are never fragmented (RFC 6455 §5.5);
//! - a 64-bit length must have its most significant bit clear;
//! - the payload must fit [`ParseRules::max_frame_size`] (close code 1009).
//!
//! A length encoded in more bytes than needed is accepted: the minimal encoding is a duty of
//! the sender that buys the receiver nothing.
//!
//! Server frames are never masked, so their header is at most [`MAX_SERVER_HEADER_LEN`] bytes:
//! [`encode_header`] returns it in a [`HeaderBuf`] on the stack, to be written with `writev`
//! ahead of a payload `Bytes` that is never copied.

use super::close;
use super::Limits;

/// Largest payload of a control frame (Close, Ping, Pong).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest header of a server frame: 2 bytes and a 64-bit extended length, no masking key.
pub const MAX_SERVER_HEADER_LEN: usize = 10;

/// Longest header of a client frame: 2 bytes, a 64-bit extended length and the masking key.
pub const MAX_CLIENT_HEADER_LEN: usize = 14;

/// A frame opcode (RFC 6455 §5.2); the reserved values are refused by the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: a later fragment of a data message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the low 4 bits of a frame's first byte, `None` if reserved.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xa => Some(Self::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xa,
        }
    }

    /// Close, Ping and Pong.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A parsed client frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The last frame of its message.
    pub fin: bool,
    /// RSV1: with permessage-deflate, set on the first frame of a compressed message.
    pub rsv1: bool,
    /// What the frame is.
    pub opcode: OpCode,
    /// The masking key (client frames are always masked).
    pub mask: [u8; 4],
    /// Payload length in bytes, after the header.
    pub payload_len: u64,
}

/// What the parser needs to know about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseRules {
    /// Largest payload accepted ([`Limits::max_frame_size`]).
    pub max_frame_size: u64,
    /// permessage-deflate was negotiated, so RSV1 may be set on a data message's first frame.
    pub rsv1_allowed: bool,
}

impl ParseRules {
    /// The rules for a connection with these limits, with or without permessage-deflate.
    pub fn new(limits: &Limits, deflate: bool) -> Self {
        Self {
            max_frame_size: limits.max_frame_size,
            rsv1_allowed: deflate,
        }
    }
}

/// Outcome of [`parse_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The header is not complete yet: read more.
    Partial,
    /// The header, and how many bytes it occupies; the payload follows.
    Complete(FrameHeader, usize),
}

/// A frame header a server must refuse. Every one fails the connection with
/// [`FrameError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A control frame announced more than 125 payload bytes.
    #[error("control frame payload longer than {MAX_CONTROL_PAYLOAD} bytes")]
    ControlTooLong,
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// The payload is larger than the configured limit (close code 1009).
    #[error("frame payload of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooBig {
        /// Announced payload length.
        len: u64,
        /// [`ParseRules::max_frame_size`].
        max: u64,
    },
    /// A 64-bit length with its most significant bit set.
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A reserved opcode (3–7, 0xB–0xF).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV2 or RSV3, RSV1 without permessage-deflate, or RSV1 on a control or continuation
    /// frame.
    #[error("reserved bit set without a negotiated extension allowing it")]
    ReservedBits,
    /// A client frame without a masking key.
    #[error("unmasked client frame")]
    Unmasked,
}

impl FrameError {
    /// The close code to fail the connection with: 1009 for [`FrameError::FrameTooBig`], 1002
    /// (protocol error) otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::FrameTooBig { .. } => close::MESSAGE_TOO_BIG,
            _ => close::PROTOCOL_ERROR,
        }
    }
}

/// Parses the client frame header at the start of `buf`.
///
/// Returns [`Parsed::Partial`] until the header is complete (a refusal that the first bytes
/// already decide is returned without waiting for the rest), then the header and its length.
/// The payload is not looked at, and need not be buffered yet.
pub fn parse_header(buf: &[u8], rules: &ParseRules) -> Result<Parsed, FrameError> {
    let &[b0, b1, ..] = buf else {
        return Ok(Parsed::Partial);
    };
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = OpCode::from_bits(b0 & 0x0f).ok_or(FrameError::ReservedOpcode(b0 & 0x0f))?;
    if rsv1 && (!rules.rsv1_allowed || opcode.is_control() || opcode == OpCode::Continuation) {
        return Err(FrameError::ReservedBits);
    }
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::FragmentedControl);
        }
        if usize::from(b1 & 0x7f) > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::ControlTooLong);
        }
    }
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (payload_len, len_end) = match b1 & 0x7f {
        126 => {
            let Some(&[hi, lo]) = buf.get(2..4) else {
                return Ok(Parsed::Partial);
            };
            (u64::from(u16::from_be_bytes([hi, lo])), 4)
        }
        127 => {
            let Some(bytes) = buf.get(2..10) else {
                return Ok(Parsed::Partial);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(FrameError::LengthOverflow);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if payload_len > rules.max_frame_size {
        return Err(FrameError::FrameTooBig {
            len: payload_len,
            max: rules.max_frame_size,
        });
    }
    let Some(&[k0, k1, k2, k3]) = buf.get(len_end..len_end + 4) else {
        return Ok(Parsed::Partial);
    };
    Ok(Parsed::Complete(
        FrameHeader {
            fin,
            rsv1,
            opcode,
            mask: [k0, k1, k2, k3],
            payload_len,
        },
        len_end + 4,
    ))
}

/// A server frame header: up to [`MAX_SERVER_HEADER_LEN`] bytes on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderBuf {
    bytes: [u8; MAX_SERVER_HEADER_LEN],
    len: u8,
}

impl HeaderBuf {
    /// The header bytes, to be written just before the payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for HeaderBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The header of an unmasked server frame with `payload_len` bytes of payload.
///
/// `rsv1` marks the first frame of a compressed message. The caller keeps control frames
/// within [`MAX_CONTROL_PAYLOAD`] and unfragmented; the payload itself is written after the
/// header, untouched.
pub fn encode_header(fin: bool, rsv1: bool, opcode: OpCode, payload_len: usize) -> HeaderBuf {
    let mut bytes = [0u8; MAX_SERVER_HEADER_LEN];
    bytes[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.bits();
    let len = match payload_len {
        0..=125 => {
            // Fits the 7-bit length field (checked by the match arm).
            bytes[1] = payload_len as u8;
            2
        }
        126..=0xffff => {
            bytes[1] = 126;
            // Fits 16 bits (checked by the match arm).
            bytes[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            bytes[1] = 127;
            // usize is at most 64 bits, and a slice length never exceeds isize::MAX, so the
            // most significant bit is clear as RFC 6455 requires.
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        }
    };
    HeaderBuf { bytes, len }
}

/// Appends a whole unmasked server frame to `out`: convenient for small control frames, where
/// a copy of the payload costs nothing worth avoiding.
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) {
    out.extend_from_slice(encode_header(fin, rsv1, opcode, payload.len()).as_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::mask::apply_mask;

    const RULES: ParseRules = ParseRules {
        max_frame_size: 1 << 20,
        rsv1_allowed: false,
    };
    const DEFLATE: ParseRules = ParseRules {
        max_frame_size: 1 << 20,
        rsv1_allowed: true,
    };
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame, as a test client would send it.
    fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&key);
        let mut masked = payload.to_vec();
        apply_mask(&mut masked, key, 0);
        out.extend_from_slice(&masked);
        out
    }

    fn parse(buf: &[u8], rules: &ParseRules) -> (FrameHeader, usize) {
        match parse_header(buf, rules) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            other => panic!("expected a complete header, got {other:?}"),
        }
    }

    fn unmasked_payload(buf: &[u8], h: &FrameHeader, n: usize) -> Vec<u8> {
        let mut payload = buf[n..n + h.payload_len as usize].to_vec();
        apply_mask(&mut payload, h.mask, 0);
        payload
    }

    #[test]
    fn rfc6455_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse(&wire, &RULES);
        assert_eq!(n, 6);
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                rsv1: false,
                opcode: OpCode::Text,
                mask: KEY,
                payload_len: 5,
            }
        );
        assert_eq!(unmasked_payload(&wire, &h, n), b"Hello");
        assert_eq!(client_frame(0x81, b"Hello", KEY), wire);
    }

    #[test]
    fn rfc6455_unmasked_hello_written_by_server_refused_from_client() {
        // RFC 6455 §5.7: a single-frame unmasked text message, what a server sends.
        let mut out = Vec::new();
        encode_frame(&mut out, true, false, OpCode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // The same bytes from a client are a protocol error.
        assert_eq!(parse_header(&out, &RULES), Err(FrameError::Unmasked));
        assert_eq!(FrameError::Unmasked.close_code(), 1002);
    }

    #[test]
    fn rfc6455_fragmented_hello() {
        // RFC 6455 §5.7: "Hel" then "lo" (shown unmasked there; clients mask).
        let mut first = Vec::new();
        encode_frame(&mut first, false, false, OpCode::Text, b"Hel");
        assert_eq!(first, [0x01, 0x03, 0x48, 0x65, 0x6c]);
        let mut second = Vec::new();
        encode_frame(&mut second, true, false, OpCode::Continuation, b"lo");
        assert_eq!(second, [0x80, 0x02, 0x6c, 0x6f]);

        let wire = client_frame(0x01, b"Hel", KEY);
        let (h, n) = parse(&wire, &RULES);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(unmasked_payload(&wire, &h, n), b"Hel");
        let wire = client_frame(0x80, b"lo", KEY);
        let (h, n) = parse(&wire, &RULES);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
        assert_eq!(unmasked_payload(&wire, &h, n), b"lo");
    }

    #[test]
    fn rfc6455_ping_and_pong() {
        // RFC 6455 §5.7: unmasked Ping "Hello", masked Pong "Hello".
        let mut ping = Vec::new();
        encode_frame(&mut ping, true, false, OpCode::Ping, b"Hello");
        assert_eq!(ping, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse(&pong, &RULES);
        assert_eq!(h.opcode, OpCode::Pong);
        assert_eq!(unmasked_payload(&pong, &h, n), b"Hello");
        let (h, _) = parse(&client_frame(0x89, b"Hello", KEY), &RULES);
        assert_eq!(h.opcode, OpCode::Ping);
    }

    #[test]
    fn rfc6455_256_bytes_and_64_kib_lengths() {
        // RFC 6455 §5.7: 256 bytes in one unmasked binary frame: 0x82 0x7E 0x0100.
        let h = encode_header(true, false, OpCode::Binary, 256);
        assert_eq!(h.as_bytes(), [0x82, 0x7e, 0x01, 0x00]);
        // 64 KiB: 0x82 0x7F 0x0000000000010000.
        let h = encode_header(true, false, OpCode::Binary, 65536);
        assert_eq!(
            h.as_bytes(),
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );

        let payload = vec![0xab; 256];
        let wire = client_frame(0x82, &payload, KEY);
        let (h, n) = parse(&wire, &RULES);
        assert_eq!((h.payload_len, n), (256, 8));
        assert_eq!(unmasked_payload(&wire, &h, n), payload);

        let payload = vec![0x5a; 65536];
        let wire = client_frame(0x82, &payload, KEY);
        assert_eq!(&wire[..10], [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]);
        let (h, n) = parse(&wire, &RULES);
        assert_eq!((h.payload_len, n), (65536, 14));
        assert_eq!(unmasked_payload(&wire, &h, n), payload);
    }

    #[test]
    fn header_length_boundaries() {
        for (len, header_len) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (0xffff, 4),
            (0x1_0000, 10),
            (usize::MAX >> 1, 10),
        ] {
            let h = encode_header(true, false, OpCode::Binary, len);
            assert_eq!(h.as_bytes().len(), header_len, "len {len}");
            assert_eq!(h.as_ref(), h.as_bytes());
        }
        let h = encode_header(true, false, OpCode::Binary, 125);
        assert_eq!(h.as_bytes(), [0x82, 125]);
        let h = encode_header(true, false, OpCode::Binary, 126);
        assert_eq!(h.as_bytes(), [0x82, 126, 0, 126]);
        let h = encode_header(true, false, OpCode::Binary, 0xffff);
        assert_eq!(h.as_bytes(), [0x82, 126, 0xff, 0xff]);
    }

    #[test]
    fn server_header_bits() {
        assert_eq!(
            encode_header(true, true, OpCode::Text, 7).as_bytes(),
            [0xc1, 7]
        );
        assert_eq!(
            encode_header(false, true, OpCode::Binary, 0).as_bytes(),
            [0x42, 0]
        );
        assert_eq!(
            encode_header(true, false, OpCode::Close, 2).as_bytes(),
            [0x88, 2]
        );
        assert_eq!(
            encode_header(true, false, OpCode::Pong, 0).as_bytes(),
            [0x8a, 0]
        );
        assert_eq!(
            encode_header(false, false, OpCode::Continuation, 1).as_bytes(),
            [0x00, 1]
        );
    }

    #[test]
    fn partial_until_the_header_is_complete() {
        for payload_len in [5usize, 300, 70_000] {
            let wire = client_frame(0x82, &vec![0; payload_len], KEY);
            let (_, n) = parse(&wire, &RULES);
            for cut in 0..n {
                assert_eq!(
                    parse_header(&wire[..cut], &RULES),
                    Ok(Parsed::Partial),
                    "len {payload_len} cut {cut}"
                );
            }
            // The payload need not be there.
            assert!(matches!(
                parse_header(&wire[..n], &RULES),
                Ok(Parsed::Complete(_, m)) if m == n
            ));
        }
    }

    #[test]
    fn every_opcode() {
        for bits in 0..16u8 {
            let wire = client_frame(0x80 | bits, b"", KEY);
            let result = parse_header(&wire, &RULES);
            match OpCode::from_bits(bits) {
                Some(op) => {
                    assert_eq!(op.bits(), bits);
                    assert!(matches!(result, Ok(Parsed::Complete(h, 6)) if h.opcode == op));
                }
                None => assert_eq!(result, Err(FrameError::ReservedOpcode(bits))),
            }
        }
        assert_eq!(FrameError::ReservedOpcode(3).close_code(), 1002);
    }

    #[test]
    fn reserved_bits() {
        // RSV2, RSV3: never.
        for first in [0xa1, 0x91, 0xb1, 0xf1] {
            let wire = client_frame(first, b"x", KEY);
            assert_eq!(parse_header(&wire, &DEFLATE), Err(FrameError::ReservedBits));
        }
        // RSV1 on a text frame: only with deflate.
        let wire = client_frame(0xc1, b"x", KEY);
        assert_eq!(parse_header(&wire, &RULES), Err(FrameError::ReservedBits));
        assert!(matches!(
            parse_header(&wire, &DEFLATE),
            Ok(Parsed::Complete(h, _)) if h.rsv1
        ));
        // RSV1 on continuation or control frames: never.
        for first in [0xc0, 0xc8, 0xc9, 0xca] {
            let wire = client_frame(first, b"", KEY);
            assert_eq!(parse_header(&wire, &DEFLATE), Err(FrameError::ReservedBits));
        }
        // Refused from the first byte alone.
        assert_eq!(
            parse_header(&[0xa1, 0x80], &RULES),
            Err(FrameError::ReservedBits)
        );
    }

    #[test]
    fn control_frame_rules() {
        let wire = client_frame(0x89, &[0; 125], KEY);
        assert!(matches!(
            parse_header(&wire, &RULES),
            Ok(Parsed::Complete(..))
        ));
        let wire = client_frame(0x89, &[0; 126], KEY);
        assert_eq!(parse_header(&wire, &RULES), Err(FrameError::ControlTooLong));
        // Refused before the extended length arrives.
        assert_eq!(
            parse_header(&[0x88, 0xfe], &RULES),
            Err(FrameError::ControlTooLong)
        );
        assert_eq!(
            parse_header(&[0x8a, 0xff], &RULES),
            Err(FrameError::ControlTooLong)
        );
        for op in [0x08, 0x09, 0x0a] {
            let wire = client_frame(op, b"", KEY);
            assert_eq!(
                parse_header(&wire, &RULES),
                Err(FrameError::FragmentedControl)
            );
        }
        assert_eq!(FrameError::ControlTooLong.close_code(), 1002);
        assert_eq!(FrameError::FragmentedControl.close_code(), 1002);
    }

    #[test]
    fn unmasked_refused_early() {
        assert_eq!(
            parse_header(&[0x81, 0x05], &RULES),
            Err(FrameError::Unmasked)
        );
        assert_eq!(
            parse_header(&[0x82, 0x7f], &RULES),
            Err(FrameError::Unmasked)
        );
    }

    #[test]
    fn length_msb_must_be_clear() {
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        wire.extend_from_slice(&KEY);
        assert_eq!(parse_header(&wire, &RULES), Err(FrameError::LengthOverflow));
        assert_eq!(FrameError::LengthOverflow.close_code(), 1002);
        let rules = ParseRules {
            max_frame_size: u64::MAX,
            rsv1_allowed: false,
        };
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        wire.extend_from_slice(&KEY);
        assert!(matches!(
            parse_header(&wire, &rules),
            Ok(Parsed::Complete(h, 14)) if h.payload_len == u64::MAX >> 1
        ));
    }

    #[test]
    fn frame_size_limit() {
        let rules = ParseRules {
            max_frame_size: 300,
            rsv1_allowed: false,
        };
        let wire = client_frame(0x82, &[0; 300], KEY);
        assert!(matches!(
            parse_header(&wire, &rules),
            Ok(Parsed::Complete(..))
        ));
        let wire = client_frame(0x82, &[0; 301], KEY);
        let err = parse_header(&wire, &rules).unwrap_err();
        assert_eq!(err, FrameError::FrameTooBig { len: 301, max: 300 });
        assert_eq!(err.close_code(), 1009);
        // Decided before the masking key arrives.
        assert_eq!(parse_header(&wire[..4], &rules), Err(err));
        // 64-bit lengths too.
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(matches!(
            parse_header(&wire, &rules),
            Err(FrameError::FrameTooBig { len, max: 300 }) if len == 1 << 40
        ));
    }

    #[test]
    fn non_minimal_length_accepted() {
        let mut wire = vec![0x82, 0x80 | 126, 0, 5];
        wire.extend_from_slice(&KEY);
        assert!(matches!(
            parse_header(&wire, &RULES),
            Ok(Parsed::Complete(h, 8)) if h.payload_len == 5
        ));
    }

    #[test]
    fn rules_from_limits() {
        let limits = Limits {
            max_frame_size: 7,
            max_message_size: 9,
        };
        assert_eq!(
            ParseRules::new(&limits, true),
            ParseRules {
                max_frame_size: 7,
                rsv1_allowed: true
            }
        );
    }
}
