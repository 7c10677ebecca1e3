//! The opening handshake, server side (RFC 6455 §4.2).
//!
//! The worker parses a request head with [`crate::http1::request`] as usual. If
//! [`is_upgrade`] says the client asked for WebSocket, it calls [`validate`] on the same head:
//!
//! - `Ok(Accepted)`: the request goes to the handler as a WebSocket request. When the handler
//!   accepts, [`write_switching_protocols`] writes the `101` head with the handler's headers and
//!   our own `Upgrade`, `Connection`, `Sec-WebSocket-Accept` and, if negotiated,
//!   `Sec-WebSocket-Extensions`. When it rejects, its response is written like any other (minus
//!   the same four headers).
//! - `Err(e)`: the client gets [`rejection_response`] (`400`, Pushpin's text) and the
//!   connection closes. The handler never sees the request.
//!
//! A valid upgrade request (RFC 6455 §4.2.1) is a `GET` over HTTP/1.1 with `Upgrade:
//! websocket` and `Connection: upgrade` (tokens, any case), `Sec-WebSocket-Version: 13`, a
//! `Sec-WebSocket-Key` that is the base64 encoding of 16 bytes, and no body (no
//! `Transfer-Encoding`, no `Content-Length` other than 0: some clients send `Content-Length: 0`
//! and later Pushpin versions accept it). A malformed `Sec-WebSocket-Extensions` fails the
//! handshake, as in Pushpin; an unacceptable permessage-deflate offer only disables
//! compression (see [`super::extension`]).
//!
//! # Observed on Pushpin 1.36 (condure 1.9)
//!
//! An invalid upgrade with `Upgrade: websocket` (no key, version 8, a body, `POST`, even
//! `Content-Length: 0`) is answered by closing the connection without a response; a version
//! other than 13 gets no `426` either. Later Pushpin versions answer every invalid upgrade with
//! `400 Bad Request`, `text/plain`, body [`INVALID_REQUEST_TEXT`]; we do the same, adding
//! `Sec-WebSocket-Version: 13` when the version was missing or unsupported (RFC 6455 §4.2.2 and
//! the `400` example of §4.4).

use std::str;

use holdfast_proto::internal::{Header, HttpVersion};
use ring::digest;

use super::extension::{self, DeflateOptions, DeflateParams, Extension, ExtensionError};
use crate::http1::response::{write_head, Framing, ResponseError, ResponsePlan};

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
pub const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version supported.
pub const VERSION: &str = "13";

/// Body of the `400` for an invalid upgrade request: Pushpin's text (later versions than 1.36,
/// which closes without a response), newline included.
pub const INVALID_REQUEST_TEXT: &str = "Request contained an Upgrade header with value \
\"websocket\" but the request was not a valid WebSocket request.\n";

/// Length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_LEN: usize = 28;

/// A request header as the caller has it: the proto [`Header`], an `httparse::Header`, or a
/// `(name, value)` pair.
pub trait HeaderField {
    /// Header name, as received.
    fn name(&self) -> &str;
    /// Header value, as received.
    fn value(&self) -> &[u8];
}

impl HeaderField for Header {
    fn name(&self) -> &str {
        &self.0
    }

    fn value(&self) -> &[u8] {
        &self.1
    }
}

impl HeaderField for httparse::Header<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn value(&self) -> &[u8] {
        self.value
    }
}

impl HeaderField for (&str, &[u8]) {
    fn name(&self) -> &str {
        self.0
    }

    fn value(&self) -> &[u8] {
        self.1
    }
}

/// True if the client asked for WebSocket: an `Upgrade` header lists the `websocket` token, in
/// any case. (Pushpin only recognises the exact value `websocket`.) Such a request is either a
/// valid upgrade or answered with [`rejection_response`]; it is never served as plain HTTP.
pub fn is_upgrade<H: HeaderField>(headers: &[H]) -> bool {
    headers
        .iter()
        .any(|h| h.name().eq_ignore_ascii_case("Upgrade") && has_token(h.value(), b"websocket"))
}

/// Why an upgrade request is refused. Every variant is answered with [`rejection_response`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A `Transfer-Encoding`, or a `Content-Length` other than 0.
    #[error("WebSocket upgrade request with a body")]
    Body,
    /// `Sec-WebSocket-Extensions` does not follow the grammar.
    #[error("invalid Sec-WebSocket-Extensions: {0}")]
    Extensions(#[from] ExtensionError),
    /// Not HTTP/1.1.
    #[error("WebSocket upgrade requires HTTP/1.1")]
    HttpVersion,
    /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes, or appears twice.
    #[error("Sec-WebSocket-Key is not the base64 encoding of 16 bytes")]
    InvalidKey,
    /// The method is not `GET`.
    #[error("WebSocket upgrade with method other than GET")]
    Method,
    /// No `Sec-WebSocket-Key`.
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// No `Sec-WebSocket-Version`.
    #[error("missing Sec-WebSocket-Version")]
    MissingVersion,
    /// `Connection` does not list the `upgrade` token.
    #[error("Connection header lacks the upgrade token")]
    NoConnectionUpgrade,
    /// `Upgrade` does not list the `websocket` token.
    #[error("Upgrade header lacks the websocket token")]
    NoUpgrade,
    /// A `Sec-WebSocket-Version` other than 13.
    #[error("unsupported Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// The refusal must tell the client which version we speak (`Sec-WebSocket-Version: 13`).
    pub fn is_version_error(&self) -> bool {
        matches!(self, Self::MissingVersion | Self::UnsupportedVersion)
    }
}

/// A `Sec-WebSocket-Accept` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptKey([u8; ACCEPT_LEN]);

impl AcceptKey {
    /// The accept value for a client's `Sec-WebSocket-Key` (without surrounding whitespace):
    /// base64(SHA-1(key + [`GUID`])).
    pub fn for_key(key: &[u8]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(key);
        ctx.update(GUID);
        let digest = ctx.finish();
        let mut out = [b'='; ACCEPT_LEN];
        for (chunk, dst) in digest.as_ref().chunks(3).zip(out.chunks_mut(4)) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let word = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, slot) in dst.iter_mut().enumerate().take(chunk.len() + 1) {
                *slot = BASE64[((word >> (18 - 6 * i)) & 63) as usize];
            }
        }
        Self(out)
    }

    /// The value, as header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value, as text.
    pub fn as_str(&self) -> &str {
        // Invariant: only base64 alphabet bytes and '=' are ever stored, all ASCII.
        str::from_utf8(&self.0).expect("base64 output is ASCII")
    }
}

/// A valid upgrade request: what the `101` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: AcceptKey,
    /// permessage-deflate, if compression is enabled and the client offered something
    /// acceptable.
    pub deflate: Option<DeflateParams>,
}

/// Validates an upgrade request from its parsed head. `compression` is `None` when
/// permessage-deflate is disabled, otherwise how to negotiate it.
pub fn validate<H: HeaderField>(
    method: &str,
    version: HttpVersion,
    headers: &[H],
    compression: Option<&DeflateOptions>,
) -> Result<Accepted, HandshakeError> {
    if method != "GET" {
        return Err(HandshakeError::Method);
    }
    if version != HttpVersion::Http11 {
        return Err(HandshakeError::HttpVersion);
    }
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value())
    };
    if !named("Upgrade").any(|v| has_token(v, b"websocket")) {
        return Err(HandshakeError::NoUpgrade);
    }
    if !named("Connection").any(|v| has_token(v, b"upgrade")) {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    let mut versions = named("Sec-WebSocket-Version").peekable();
    if versions.peek().is_none() {
        return Err(HandshakeError::MissingVersion);
    }
    if !versions.all(|v| trim(v) == VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = named("Sec-WebSocket-Key");
    let key = trim(keys.next().ok_or(HandshakeError::MissingKey)?);
    if keys.next().is_some() || !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    if named("Transfer-Encoding").next().is_some()
        || named("Content-Length").any(|v| !is_zero_length(v))
    {
        return Err(HandshakeError::Body);
    }
    let mut offers: Vec<Extension> = Vec::new();
    for value in named("Sec-WebSocket-Extensions") {
        extension::parse(value, &mut offers)?;
    }
    Ok(Accepted {
        accept: AcceptKey::for_key(key),
        deflate: compression.and_then(|options| extension::negotiate_deflate(&offers, options)),
    })
}

/// The complete response to an invalid upgrade request: `400 Bad Request`, `text/plain`,
/// [`INVALID_REQUEST_TEXT`], `Sec-WebSocket-Version: 13` for a version error, and the
/// connection closes after it.
pub fn rejection_response(version: HttpVersion, err: &HandshakeError) -> Vec<u8> {
    let mut headers = vec![Header::new("Content-Type", "text/plain")];
    if err.is_version_error() {
        headers.push(Header::new("Sec-WebSocket-Version", VERSION));
    }
    let len = INVALID_REQUEST_TEXT.len() as u64;
    let plan = ResponsePlan {
        framing: Framing::Length(len),
        persistent: false,
        content_length: Some(len),
    };
    let mut out = Vec::with_capacity(256);
    write_head(&mut out, version, 400, "Bad Request", &headers, &plan);
    out.extend_from_slice(INVALID_REQUEST_TEXT.as_bytes());
    out
}

/// True for the headers of the handler's response that the connection manager replaces or
/// that a `101` cannot carry: `Upgrade`, `Connection`, `Sec-WebSocket-Accept` and
/// `Sec-WebSocket-Extensions` (as Pushpin), plus the body framing headers `Content-Length`,
/// `Transfer-Encoding` and `Keep-Alive` (RFC 9110 §8.6, RFC 9112 §6.1: never on a 1xx).
/// Also the headers to drop from a handler's rejection of a WebSocket request.
pub fn is_replaced_header(name: &str) -> bool {
    [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Content-Length",
        "Transfer-Encoding",
        "Keep-Alive",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// Appends the `101 Switching Protocols` head to `out`: the handler's `headers` in order (less
/// those [`is_replaced_header`] names), then `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Accept` and the negotiated `Sec-WebSocket-Extensions`, in Pushpin's order.
///
/// `reason` is the handler's reason phrase; an empty one, or one with control characters, is
/// replaced by `Switching Protocols`. A header the handler got wrong (a name that is not a
/// token, a value with CR, LF or NUL) is refused before anything is written.
pub fn write_switching_protocols(
    out: &mut Vec<u8>,
    accepted: &Accepted,
    reason: &str,
    headers: &[Header],
) -> Result<(), ResponseError> {
    for h in headers {
        if h.0.is_empty() || !h.0.bytes().all(is_tchar) {
            return Err(ResponseError::InvalidHeaderName(h.0.clone()));
        }
        if h.1.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ResponseError::InvalidHeaderValue(h.0.clone()));
        }
    }
    let reason_ok = !reason.is_empty()
        && reason
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    out.extend_from_slice(b"HTTP/1.1 101 ");
    out.extend_from_slice(
        if reason_ok {
            reason
        } else {
            "Switching Protocols"
        }
        .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for h in headers.iter().filter(|h| !is_replaced_header(&h.0)) {
        push_header(out, h.0.as_bytes(), &h.1);
    }
    push_header(out, b"Upgrade", b"websocket");
    push_header(out, b"Connection", b"Upgrade");
    push_header(out, b"Sec-WebSocket-Accept", accepted.accept.as_bytes());
    if let Some(deflate) = &accepted.deflate {
        push_header(
            out,
            b"Sec-WebSocket-Extensions",
            deflate.header_value().as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A key that decodes to 16 bytes: 22 base64 characters and `==`. (The unused low bits of the
/// last character are not checked, as most decoders ignore them.)
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(|b| BASE64.contains(b))
}

/// A `Content-Length` value (or list of values) that means no body.
fn is_zero_length(value: &[u8]) -> bool {
    value.split(|&b| b == b',').all(|item| {
        let item = trim(item);
        !item.is_empty() && item.iter().all(|&b| b == b'0')
    })
}

/// True if the comma-separated `value` lists `token`, ignoring ASCII case.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim(item).eq_ignore_ascii_case(token))
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
