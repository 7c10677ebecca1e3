//! Sans-IO WebSocket server codec: RFC 6455 with permessage-deflate (RFC 7692).
//!
//! Like [`crate::http1`], nothing here touches a socket, a clock or the handler: every function
//! takes bytes or values and returns values, so the rules a client meets can be unit-tested on
//! their own. The worker's connection state machine drives these pieces once a request head has
//! been parsed (the layout follows tungstenite's: one small file per concern):
//!
//! - [`handshake`]: is a request a WebSocket upgrade attempt ([`handshake::is_upgrade`]), is it a
//!   valid one ([`handshake::validate`]), the `Sec-WebSocket-Accept` value, the `101` response
//!   head written once the handler accepts, and the `400` written when the request is invalid.
//! - [`extension`]: the `Sec-WebSocket-Extensions` grammar and the permessage-deflate
//!   negotiation.
//! - [`frame`] and [`mask`]: frame headers parsed from the read buffer without copying the
//!   payload, payloads unmasked in place 8 bytes at a time; server frame headers built in a
//!   10-byte stack buffer so a (possibly shared) payload `Bytes` can be written with `writev`.
//! - [`message`]: an [`Assembler`](message::Assembler) that turns frames into messages
//!   (continuations, interleaved control frames, size limits, UTF-8), with [`close`] for close
//!   codes and Close payloads and [`utf8`] for validation across fragments.
//! - [`deflate`]: permessage-deflate decompression bounded by the message size limit, and
//!   compression whose output can be shared by every connection (see "Compression" below).
//!
//! # Driving a connection
//!
//! Reading, after the `101` was written:
//!
//! 1. [`frame::parse_header`] on the buffered bytes. `Partial`: read more. `Complete(header,
//!    n)`: consume `n` bytes and call [`message::Assembler::begin_frame`].
//! 2. As payload bytes arrive (at most [`message::Assembler::remaining`]), unmask them with
//!    [`mask::apply_mask`] (passing the offset within the payload) and feed them to
//!    [`message::Assembler::push_payload`]; the read buffer never has to hold a whole frame.
//! 3. When the frame's payload is complete, [`message::Assembler::end_frame`] returns the
//!    message it completed, if any. A data message goes to the handler; a Ping is answered
//!    with a Pong; a Close is answered with a Close and ends the connection.
//!
//! Every error (frame, message, decompression) carries `close_code()`: send a Close frame with
//! that code and close the connection (RFC 6455 §7.1.7, "Fail the WebSocket Connection").
//!
//! Writing: [`frame::encode_header`] for the header, then the payload, unmasked. Control
//! payloads come from [`close::encode_payload`] or the Ping being answered.
//!
//! # Limits
//!
//! [`Limits`] bounds what a client can make a connection hold: the largest frame (checked when
//! its header is parsed, before any payload is buffered) and the largest message after
//! reassembly and decompression. Both are answered with close code 1009.
//!
//! # Compression
//!
//! permessage-deflate is negotiated by the connection manager itself, never by the backend
//! (Pushpin does the same; the backend's `Sec-WebSocket-Extensions` is dropped from its `101`).
//! Holdfast **always negotiates `server_no_context_takeover`**: every server message is
//! compressed from a fresh compressor state, so a message published to many connections is
//! compressed once ([`deflate::compress_message`]) and the same `Bytes` is valid for every
//! connection that negotiated deflate. Client messages may use context takeover; each
//! connection keeps its own [`deflate::Inflater`].
//!
//! # Where we differ from Pushpin 1.36's connection manager (condure 1.9), on purpose
//!
//! Observed on a running Pushpin 1.36:
//!
//! - An invalid upgrade (no key, `Sec-WebSocket-Version` other than 13, a body, not `GET`)
//!   makes condure 1.9 close the connection without a response. We answer `400 Bad Request`
//!   with the text of later Pushpin versions ([`handshake::INVALID_REQUEST_TEXT`]), plus
//!   `Sec-WebSocket-Version: 13` when the version was wrong (RFC 6455 §4.4).
//! - condure 1.9 refuses `Content-Length: 0` on an upgrade; we accept it, as later Pushpin does.
//! - condure only recognises the exact value `Upgrade: websocket`; `Upgrade: WebSocket` is served
//!   as plain HTTP. We match the token case-insensitively (RFC 6455 §4.2.1).
//! - condure accepts HTTP/1.0 upgrades, a missing `Connection: Upgrade` and any non-empty key;
//!   we require HTTP/1.1, the `upgrade` token and a key that decodes to 16 bytes.

pub mod close;
pub mod deflate;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod utf8;

/// Default for [`Limits::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u64 = 16 << 20;

/// Default for [`Limits::max_message_size`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// What one WebSocket connection may be made to hold. Exceeding either limit fails the
/// connection with close code 1009 (message too big).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted, in bytes, as it is on the wire (compressed, for a
    /// compressed message). Checked as soon as the frame header is parsed, before any of the
    /// payload is buffered. Default [`DEFAULT_MAX_FRAME_SIZE`].
    pub max_frame_size: u64,
    /// Largest message accepted, in bytes, after reassembly of its fragments and after
    /// decompression (so it also bounds a "zip bomb"). A connection holds up to this much while
    /// a message is being received. Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}
