//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).
//!
//! A Close payload is empty, or a 2-byte big-endian status code followed by a UTF-8 reason;
//! the whole payload fits a control frame, so the reason is at most [`MAX_REASON_LEN`] bytes.
//! Codes that only describe local events (1005, 1006, 1015) and the unassigned ranges must
//! never appear on the wire.

use std::str;

use super::frame::MAX_CONTROL_PAYLOAD;

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutdown, page navigation).
pub const GOING_AWAY: u16 = 1001;
/// 1002: protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1005: no status code was present (local meaning only, never sent).
pub const NO_STATUS: u16 = 1005;
/// 1006: the connection closed without a Close frame (local meaning only, never sent).
pub const ABNORMAL: u16 = 1006;
/// 1007: data inconsistent with the message type (invalid UTF-8 in a text message).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: policy violation.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: a message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1010: the client expected an extension the server did not negotiate.
pub const MANDATORY_EXTENSION: u16 = 1010;
/// 1011: an unexpected condition in the server.
pub const INTERNAL_ERROR: u16 = 1011;
/// 1012: service restart (IANA registry).
pub const SERVICE_RESTART: u16 = 1012;
/// 1013: try again later (IANA registry).
pub const TRY_AGAIN_LATER: u16 = 1013;
/// 1014: bad gateway (IANA registry).
pub const BAD_GATEWAY: u16 = 1014;
/// 1015: TLS handshake failure (local meaning only, never sent).
pub const TLS_HANDSHAKE: u16 = 1015;

/// Longest reason that fits a Close frame next to its status code.
pub const MAX_REASON_LEN: usize = MAX_CONTROL_PAYLOAD - 2;

/// True if `code` may be carried by a Close frame: 1000–1003 and 1007–1014 (RFC 6455 §7.4.1
/// and the IANA registry), and the application ranges 3000–4999. 1004 is reserved, 1005, 1006
/// and 1015 are local-only, 1016–2999 are reserved for future RFCs, and codes below 1000 or
/// above 4999 are not used.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A Close frame's status code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (always [`is_valid_code`] when parsed from a client).
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: String,
}

/// A Close payload a client must not send. Fails the connection with
/// [`CloseError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    /// A status code not allowed on the wire (see [`is_valid_code`]).
    #[error("invalid close code {0}")]
    InvalidCode(u16),
    /// The reason is not UTF-8 (close code 1007).
    #[error("close reason is not valid UTF-8")]
    InvalidReason,
    /// A 1-byte payload: half a status code.
    #[error("close payload of 1 byte")]
    Truncated,
}

impl CloseError {
    /// 1007 for a reason that is not UTF-8, 1002 (protocol error) otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::InvalidReason => INVALID_PAYLOAD,
            Self::InvalidCode(_) | Self::Truncated => PROTOCOL_ERROR,
        }
    }
}

/// Parses the payload of a Close frame received from a client: `None` when it is empty (no
/// status code, which the application sees as 1005).
pub fn parse_payload(payload: &[u8]) -> Result<Option<CloseFrame>, CloseError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(CloseError::Truncated),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    if !is_valid_code(code) {
        return Err(CloseError::InvalidCode(code));
    }
    let reason = str::from_utf8(reason).map_err(|_| CloseError::InvalidReason)?;
    Ok(Some(CloseFrame {
        code,
        reason: reason.to_owned(),
    }))
}

/// Appends the payload of a Close frame the server sends to `out`.
///
/// A code that may not go on the wire (1005 "no status" from a handler that gave none, 1006,
/// 1015, unassigned codes) is sent as an empty payload, which the client reads as "no status".
/// A reason longer than [`MAX_REASON_LEN`] bytes is cut at the last character boundary that
/// fits, so the payload always fits a control frame.
pub fn encode_payload(out: &mut Vec<u8>, code: u16, reason: &str) {
    if !is_valid_code(code) {
        return;
    }
    out.extend_from_slice(&code.to_be_bytes());
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        p
    }

    #[test]
    fn valid_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(is_valid_code(code), "{code}");
            assert_eq!(
                parse_payload(&payload(code, b"")),
                Ok(Some(CloseFrame {
                    code,
                    reason: String::new()
                }))
            );
        }
    }

    #[test]
    fn invalid_codes() {
        // Autobahn 7.9.x plus the edges of each range.
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_code(code), "{code}");
            let err = parse_payload(&payload(code, b"")).unwrap_err();
            assert_eq!(err, CloseError::InvalidCode(code));
            assert_eq!(err.close_code(), PROTOCOL_ERROR);
        }
    }

    #[test]
    fn empty_and_truncated() {
        assert_eq!(parse_payload(b""), Ok(None));
        assert_eq!(parse_payload(&[0x03]), Err(CloseError::Truncated));
        assert_eq!(CloseError::Truncated.close_code(), 1002);
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            parse_payload(&payload(1000, "bye κόσμε".as_bytes())),
            Ok(Some(CloseFrame {
                code: 1000,
                reason: "bye κόσμε".into()
            }))
        );
        let err = parse_payload(&payload(
            1000,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        ))
        .unwrap_err();
        assert_eq!(err, CloseError::InvalidReason);
        assert_eq!(err.close_code(), 1007);
        // Truncated character at the end of the reason.
        assert_eq!(
            parse_payload(&payload(1000, b"ok\xe2\x82")),
            Err(CloseError::InvalidReason)
        );
    }

    #[test]
    fn encode_round_trips() {
        let mut out = Vec::new();
        encode_payload(&mut out, 1001, "shutting down");
        assert_eq!(out, payload(1001, b"shutting down"));
        assert_eq!(
            parse_payload(&out),
            Ok(Some(CloseFrame {
                code: 1001,
                reason: "shutting down".into()
            }))
        );
    }

    #[test]
    fn encode_local_only_codes_as_empty() {
        for code in [NO_STATUS, ABNORMAL, TLS_HANDSHAKE, 0, 2000] {
            let mut out = Vec::new();
            encode_payload(&mut out, code, "ignored");
            assert!(out.is_empty(), "{code}");
        }
    }

    #[test]
    fn encode_truncates_reason_on_char_boundary() {
        let long = "é".repeat(100); // 200 bytes, 2 per character
        let mut out = Vec::new();
        encode_payload(&mut out, NORMAL, &long);
        assert!(out.len() <= MAX_CONTROL_PAYLOAD);
        assert_eq!(out.len(), 2 + 122);
        assert!(parse_payload(&out).is_ok());

        let ascii = "a".repeat(200);
        let mut out = Vec::new();
        encode_payload(&mut out, NORMAL, &ascii);
        assert_eq!(out.len(), MAX_CONTROL_PAYLOAD);
    }
}
