//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and the permessage-deflate negotiation (RFC 7692
//! §5, §7.1).
//!
//! A client lists extension offers, most preferred first; several offers of the same extension
//! are alternatives. The server accepts at most one permessage-deflate offer: the first it can
//! honour. An offer it cannot honour is declined (the connection goes on uncompressed); only a
//! header that does not follow the grammar fails the handshake, as in Pushpin.
//!
//! What Holdfast answers to an acceptable offer:
//!
//! - `server_no_context_takeover`, always, even when not offered (RFC 7692 §7.1.1.1 allows it):
//!   every server message is compressed from a fresh state, so one compressed payload serves
//!   every connection (see [`crate::ws::deflate::compress_message`]).
//! - `client_no_context_takeover` when offered, or when [`DeflateOptions`] asks for it (RFC 7692
//!   §7.1.1.2 allows it unoffered): the connection can then drop its decompressor between
//!   messages, at the cost of a worse compression ratio for the client.
//! - `server_max_window_bits`: an offer asking for fewer than 15 bits is declined, because the
//!   compressor always uses the full 32 KiB window (a smaller value would need a compression
//!   per window size and defeat sharing; Pushpin declines too). An offer of 15 is accepted and
//!   echoed.
//! - `client_max_window_bits` is never sent back: the decompressor accepts any window up to 15
//!   bits, so there is nothing to limit.

use std::fmt::Write as _;

/// The extension name (RFC 7692 §5).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// One extension offer: a name and its parameters, in order, quoted values unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Extension name as sent.
    pub name: String,
    /// Parameters: name, and value if `name=value` was given.
    pub params: Vec<(String, Option<String>)>,
}

/// A `Sec-WebSocket-Extensions` value that does not follow the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions value at byte {offset}")]
pub struct ExtensionError {
    /// Where in the value the grammar broke.
    pub offset: usize,
}

/// Parses one `Sec-WebSocket-Extensions` value, appending its offers to `out` (several header
/// lines are parsed in turn into the same list).
///
/// The grammar is RFC 6455 §9.1 with RFC 9110 list rules: `extension *( "," extension )`,
/// `extension = token *( ";" token [ "=" ( token / quoted-string ) ] )`, optional whitespace
/// around separators and empty list elements ignored.
pub fn parse(value: &[u8], out: &mut Vec<Extension>) -> Result<(), ExtensionError> {
    let mut c = Cursor { s: value, pos: 0 };
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(()),
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token()?;
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            if !c.eat(b';') {
                break;
            }
            c.skip_ows();
            let param = c.token()?;
            c.skip_ows();
            let value = if c.eat(b'=') {
                c.skip_ows();
                Some(if c.peek() == Some(b'"') {
                    c.quoted_string()?
                } else {
                    c.token()?
                })
            } else {
                None
            };
            params.push((param, value));
        }
        out.push(Extension { name, params });
        c.skip_ows();
        match c.peek() {
            None => return Ok(()),
            Some(b',') => c.pos += 1,
            Some(_) => return Err(c.error()),
        }
    }
}

/// A permessage-deflate offer whose parameters are all defined, valid and not repeated (RFC
/// 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOffer {
    /// The client asks the server not to keep its compression context between messages.
    pub server_no_context_takeover: bool,
    /// The client says it will not keep its compression context between messages.
    pub client_no_context_takeover: bool,
    /// The largest window the server may compress with, in bits (8–15).
    pub server_max_window_bits: Option<u8>,
    /// The client supports a limit on its own window: `Some(None)` without a value,
    /// `Some(Some(bits))` with its own hint.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Why an offer is declined (never an error of the handshake: the next offer is tried).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// A parameter with a value it must not have, or without one it needs, or a window size
    /// outside 8–15.
    #[error("invalid value for permessage-deflate parameter {0}")]
    InvalidValue(String),
    /// The same parameter twice.
    #[error("repeated permessage-deflate parameter {0}")]
    Repeated(String),
    /// A parameter RFC 7692 does not define.
    #[error("unknown permessage-deflate parameter {0}")]
    Unknown(String),
}

impl DeflateOffer {
    /// Reads the parameters of a permessage-deflate offer.
    pub fn from_params(params: &[(String, Option<String>)]) -> Result<Self, OfferError> {
        let mut offer = Self::default();
        let mut seen = [false; 4];
        for (name, value) in params {
            let (index, ok) = match name.as_str() {
                "server_no_context_takeover" => {
                    offer.server_no_context_takeover = true;
                    (0, value.is_none())
                }
                "client_no_context_takeover" => {
                    offer.client_no_context_takeover = true;
                    (1, value.is_none())
                }
                "server_max_window_bits" => {
                    offer.server_max_window_bits = value.as_deref().and_then(window_bits);
                    (2, offer.server_max_window_bits.is_some())
                }
                "client_max_window_bits" => {
                    let bits = value.as_deref().map(window_bits);
                    offer.client_max_window_bits = Some(bits.flatten());
                    (3, !matches!(bits, Some(None)))
                }
                _ => return Err(OfferError::Unknown(name.clone())),
            };
            if seen[index] {
                return Err(OfferError::Repeated(name.clone()));
            }
            seen[index] = true;
            if !ok {
                return Err(OfferError::InvalidValue(name.clone()));
            }
        }
        Ok(offer)
    }
}

/// How this server negotiates permessage-deflate (when compression is enabled at all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOptions {
    /// Ask every client for `client_no_context_takeover`, so a connection's decompressor (about
    /// 40 KiB) can be dropped between messages; clients then compress less well. Default off,
    /// like Pushpin.
    pub request_client_no_context_takeover: bool,
}

/// The agreed permessage-deflate parameters of a connection. `server_no_context_takeover` is
/// always part of the agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The client resets its compressor after each message, so the server may reset (or drop)
    /// its decompressor between messages.
    pub client_no_context_takeover: bool,
    /// Echo of an offered `server_max_window_bits` (always 15: smaller offers are declined).
    pub server_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value of the `101` response.
    pub fn header_value(&self) -> String {
        let mut v = String::from(PERMESSAGE_DEFLATE);
        v.push_str("; server_no_context_takeover");
        if self.client_no_context_takeover {
            v.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            // Writing to a String cannot fail.
            let _ = write!(v, "; server_max_window_bits={bits}");
        }
        v
    }
}

/// The response to the first permessage-deflate offer in `offers` that can be accepted, if
/// any. Offers of other extensions are ignored.
pub fn negotiate_deflate(offers: &[Extension], options: &DeflateOptions) -> Option<DeflateParams> {
    offers
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .filter_map(|e| DeflateOffer::from_params(&e.params).ok())
        .find(|o| o.server_max_window_bits.is_none_or(|bits| bits == 15))
        .map(|o| DeflateParams {
            client_no_context_takeover: o.client_no_context_takeover
                || options.request_client_no_context_takeover,
            server_max_window_bits: o.server_max_window_bits,
        })
}

/// A window size value: `8`–`15`, decimal without leading zeros (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    match value {
        "8" => Some(8),
        "9" => Some(9),
        "10" => Some(10),
        "11" => Some(11),
        "12" => Some(12),
        "13" => Some(13),
        "14" => Some(14),
        "15" => Some(15),
        _ => None,
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn error(&self) -> ExtensionError {
        ExtensionError { offset: self.pos }
    }

    fn token(&mut self) -> Result<String, ExtensionError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error());
        }
        // Token characters are ASCII.
        Ok(self.s[start..self.pos]
            .iter()
            .map(|&b| char::from(b))
            .collect())
    }

    fn quoted_string(&mut self) -> Result<String, ExtensionError> {
        let mut out = String::new();
        self.pos += 1; // the opening quote
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => {
                            out.push(char::from(b));
                            self.pos += 1;
                        }
                        _ => return Err(self.error()),
                    }
                }
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
                // Unterminated, a control character, or non-ASCII (obs-text) that no defined
                // parameter can use.
                _ => return Err(self.error()),
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Vec<Extension>, ExtensionError> {
        let mut out = Vec::new();
        parse(s.as_bytes(), &mut out)?;
        Ok(out)
    }

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), v.map(Into::into)))
                .collect(),
        }
    }

    fn negotiate(header: &str) -> Option<DeflateParams> {
        negotiate_deflate(&parse_str(header).unwrap(), &DeflateOptions::default())
    }

    #[test]
    fn grammar() {
        assert_eq!(parse_str(""), Ok(vec![]));
        assert_eq!(parse_str(" , ,"), Ok(vec![]));
        assert_eq!(
            parse_str("permessage-deflate; client_max_window_bits"),
            Ok(vec![ext(
                "permessage-deflate",
                &[("client_max_window_bits", None)]
            )])
        );
        assert_eq!(
            parse_str(
                "foo, permessage-deflate ;server_max_window_bits = 10 ; x=\"a\\\"b c\",bar;baz"
            ),
            Ok(vec![
                ext("foo", &[]),
                ext(
                    "permessage-deflate",
                    &[
                        ("server_max_window_bits", Some("10")),
                        ("x", Some("a\"b c"))
                    ]
                ),
                ext("bar", &[("baz", None)]),
            ])
        );
        // Several header lines parse into one list.
        let mut out = Vec::new();
        parse(b"a", &mut out).unwrap();
        parse(b"b; c=1", &mut out).unwrap();
        assert_eq!(out, vec![ext("a", &[]), ext("b", &[("c", Some("1"))])]);
    }

    #[test]
    fn grammar_errors() {
        for (bad, offset) in [
            (";x", 0),
            ("a;", 2),
            ("a; =1", 3),
            ("a; b=", 5),
            ("a b", 2),
            ("a; b=\"unterminated", 18),
            ("a; b=\"\x01\"", 6),
            ("a; b=c d", 7),
            ("a@", 1),
        ] {
            assert_eq!(parse_str(bad), Err(ExtensionError { offset }), "{bad:?}");
        }
        assert_eq!(
            parse(b"a; b=\"\xc3\xa9\"", &mut Vec::new()),
            Err(ExtensionError { offset: 6 })
        );
    }

    #[test]
    fn offer_parameters() {
        let offer = |s: &str| DeflateOffer::from_params(&parse_str(s).unwrap()[0].params);
        assert_eq!(offer("permessage-deflate"), Ok(DeflateOffer::default()));
        assert_eq!(
            offer(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12; client_max_window_bits=\"9\""
            ),
            Ok(DeflateOffer {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(12),
                client_max_window_bits: Some(Some(9)),
            })
        );
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits").map(|o| o.client_max_window_bits),
            Ok(Some(None))
        );
        for (bad, err) in [
            ("x; foo", OfferError::Unknown("foo".into())),
            (
                "x; server_no_context_takeover=1",
                OfferError::InvalidValue("server_no_context_takeover".into()),
            ),
            (
                "x; client_no_context_takeover=\"\"",
                OfferError::InvalidValue("client_no_context_takeover".into()),
            ),
            (
                "x; server_max_window_bits",
                OfferError::InvalidValue("server_max_window_bits".into()),
            ),
            (
                "x; server_max_window_bits=7",
                OfferError::InvalidValue("server_max_window_bits".into()),
            ),
            (
                "x; client_max_window_bits=16",
                OfferError::InvalidValue("client_max_window_bits".into()),
            ),
            (
                "x; client_max_window_bits=09",
                OfferError::InvalidValue("client_max_window_bits".into()),
            ),
            (
                "x; client_no_context_takeover; client_no_context_takeover",
                OfferError::Repeated("client_no_context_takeover".into()),
            ),
            (
                "x; server_max_window_bits=10; server_max_window_bits=10",
                OfferError::Repeated("server_max_window_bits".into()),
            ),
        ] {
            assert_eq!(offer(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn negotiation_always_adds_server_no_context_takeover() {
        let p = negotiate("permessage-deflate").unwrap();
        assert_eq!(
            p,
            DeflateParams {
                client_no_context_takeover: false,
                server_max_window_bits: None
            }
        );
        assert_eq!(
            p.header_value(),
            "permessage-deflate; server_no_context_takeover"
        );
        // What browsers send.
        let p = negotiate("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(
            p.header_value(),
            "permessage-deflate; server_no_context_takeover"
        );
    }

    #[test]
    fn negotiation_echoes_client_no_context_takeover() {
        let p = negotiate("permessage-deflate; client_no_context_takeover").unwrap();
        assert!(p.client_no_context_takeover);
        assert_eq!(
            p.header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let options = DeflateOptions {
            request_client_no_context_takeover: true,
        };
        let p = negotiate_deflate(&parse_str("permessage-deflate").unwrap(), &options).unwrap();
        assert!(p.client_no_context_takeover);
    }

    #[test]
    fn negotiation_window_bits() {
        // Fewer than 15 bits for the server's window: declined.
        assert_eq!(
            negotiate("permessage-deflate; server_max_window_bits=10"),
            None
        );
        // 15: accepted and echoed.
        let p = negotiate("permessage-deflate; server_max_window_bits=15").unwrap();
        assert_eq!(
            p.header_value(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=15"
        );
        // The first acceptable alternative wins.
        let p = negotiate(
            "permessage-deflate; server_max_window_bits=10, \
             permessage-deflate; client_no_context_takeover, permessage-deflate",
        )
        .unwrap();
        assert!(p.client_no_context_takeover);
        // A client window limit is never answered.
        let p = negotiate("permessage-deflate; client_max_window_bits=10").unwrap();
        assert_eq!(
            p.header_value(),
            "permessage-deflate; server_no_context_takeover"
        );
    }

    #[test]
    fn negotiation_declines_invalid_offers_and_other_extensions() {
        assert_eq!(negotiate("x-webkit-deflate-frame, foo"), None);
        assert_eq!(negotiate("permessage-deflate; foo=1"), None);
        assert_eq!(negotiate(""), None);
        assert!(negotiate("permessage-deflate; foo, permessage-deflate").is_some());
        assert!(negotiate("Permessage-Deflate").is_some());
    }
}
