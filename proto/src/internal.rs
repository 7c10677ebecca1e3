//! Messages between `holdfast-connmgr` and `holdfast-handler`.
//!
//! # Transport
//!
//! The handler binds one ZeroMQ ROUTER socket; each connmgr worker thread connects one DEALER whose
//! routing identity is `<instance>-<worker>`. Every ZeroMQ message carries exactly one [`Packet`]:
//! the sender's process epoch plus a *batch* of messages, so one syscall and one ZeroMQ message
//! carry everything a worker produced in one event-loop pass.
//!
//! # Encoding
//!
//! msgpack via rmp-serde with **named** encoding ([`encode`] uses `to_vec_named`): structs are maps
//! keyed by field name, enums are externally tagged (`{"Variant": {...}}`, unit variants as the
//! bare string). Named encoding costs a few bytes per message but lets either side add an
//! optional field without breaking the other; the payloads that matter for speed (bodies) are
//! msgpack `bin` and dominate the size anyway. Golden-byte tests at the bottom pin the format.
//!
//! # Streams and ids
//!
//! Each HTTP request (and later each WebSocket) is a *stream* named by a [`StreamId`] that the
//! connmgr worker allocates. The handler treats it as opaque and addresses replies with it plus the
//! worker identity. A stream ends when the response has been sent completely (`more: false`), when
//! either side aborts it ([`ToHandler::Closed`], [`ToConnmgr::Close`]), or when a peer restart is
//! detected.
//!
//! # Flow control
//!
//! Credits count body bytes only (never heads). The connmgr grants the handler `credits` response
//! body bytes in [`RequestHead`] and returns more with [`ToHandler::Credit`] as the client drains
//! them; the handler never sends more body than it holds credits for. In the other direction the
//! request head may carry up to [`INITIAL_REQUEST_CREDITS`] body bytes, and further request body
//! needs [`ToConnmgr::Credit`] from the handler. Neither process therefore buffers more than the
//! credits it granted, whatever the speed of the client or the backend.
//!
//! The connmgr may hold back a response `Credit` smaller than a quarter of the window for up to
//! 20 ms, to return one credit for many small writes; the handler never waits longer than that
//! for credit it needs.
//!
//! WebSocket messages are counted the same way (payload bytes), but a message is never split,
//! so one larger than the whole window could never fit. The rule, in both directions: a message
//! larger than the window may be sent only when the sender holds the whole window (nothing
//! outstanding), and then nothing else is sent until credit comes back. Towards the client
//! ([`ToConnmgr::WsMessage`], [`ToConnmgr::WsFanout`]; the window is the `Upgrade`'s
//! `credits`) such a message costs exactly the window, and the connmgr credits the window back
//! once the message is written. Towards the handler ([`ToHandler::WsMessage`]; the window is
//! [`INITIAL_REQUEST_CREDITS`]) it costs its length, the connmgr's balance going negative until
//! the handler's usual `Credit` for it. Either way each side holds at most one such message per
//! stream, and messages up to the size limits (`--max-message-size` for client messages, the
//! handler's for origin and published ones) always get through.
//!
//! # Liveness
//!
//! Every [`Packet`] carries the sender's `epoch`, a random number chosen at process start. A
//! receiver that sees a new epoch from a peer knows that peer restarted and drops every stream it
//! had with the previous incarnation. Both sides send [`ToHandler::Heartbeat`] /
//! [`ToConnmgr::Heartbeat`] when they have been quiet for [`HEARTBEAT_INTERVAL_MS`]; a peer silent
//! for [`PEER_TIMEOUT_MS`] is considered gone and its streams are aborted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Body bytes the connmgr may put in a [`RequestHead`] (and send after it) before the handler has
/// granted any credit.
pub const INITIAL_REQUEST_CREDITS: u32 = 65_536;

/// How often a quiet peer sends a heartbeat.
pub const HEARTBEAT_INTERVAL_MS: u64 = 1_000;

/// Silence after which a peer is considered gone.
pub const PEER_TIMEOUT_MS: u64 = 10_000;

/// Upper bound on one encoded packet; a receiver drops larger packets instead of decoding them.
pub const MAX_PACKET_SIZE: usize = 64 * 1024 * 1024;

/// Names one stream (one request/response exchange) on one connmgr worker.
///
/// The connmgr packs its connection slot and a per-slot generation into the number so a late
/// message for a stream that already ended can never reach the connection that reused the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(pub u64);

impl StreamId {
    /// Builds an id from a connection slot and that slot's generation counter.
    pub fn new(slot: u32, generation: u32) -> Self {
        Self((u64::from(slot) << 32) | u64::from(generation))
    }

    /// The connection slot half of the id.
    pub fn slot(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The generation half of the id.
    pub fn generation(self) -> u32 {
        self.0 as u32
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.slot(), self.generation())
    }
}

/// One header line: name as received (case kept), value as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header(pub String, pub Bytes);

impl Header {
    /// Convenience constructor for text values.
    pub fn new(name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self(name.into(), value.into())
    }

    /// True if the header's name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }
}

/// HTTP version of the client's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// Everything one ZeroMQ message carries, in either direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Packet<M> {
    /// The sender's process epoch (see the module docs, "Liveness").
    pub epoch: u64,
    /// The batch, in order.
    pub msgs: Vec<M>,
}

/// Messages from a connmgr worker to the handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToHandler {
    /// Sent first by every worker and again whenever it sees a new handler epoch, so the handler's
    /// ROUTER learns the worker's identity before it needs to address it.
    Hello(Hello),
    /// Nothing else to say for a while; proves the worker is alive.
    Heartbeat,
    /// A new request was read from a client.
    Request(RequestHead),
    /// More request body for a stream (never more than the credits the handler granted).
    Body(Body),
    /// The client drained this many response body bytes: the handler may send that many more.
    Credit(Credit),
    /// The stream ended on the client side before the response completed (client gone, bad
    /// input after the head, timeout). The handler cancels whatever it was doing for it.
    Closed(Closed),
    /// A valid WebSocket handshake (already checked by the connmgr: GET, HTTP/1.1, version 13,
    /// a key). The handler answers [`ToConnmgr::WsAccept`] to open the WebSocket, or a
    /// [`ToConnmgr::Response`] with a non-101 status to reject it.
    Upgrade(RequestHead),
    /// A complete message from a WebSocket client (fragments reassembled, unmasked, text
    /// validated as UTF-8, decompressed). Its payload counts against the credits the handler
    /// granted, like request body bytes (one larger than the whole window: module docs, "Flow
    /// control").
    WsMessage(WsMessage),
    /// The client sent a close frame. The handler answers with [`ToConnmgr::WsClose`] (usually
    /// after telling the backend); the connmgr closes the connection after sending it, or on its
    /// own after a short grace period.
    WsClose(WsClose),
}

/// Messages from the handler to a connmgr worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToConnmgr {
    /// Answer to a worker's [`ToHandler::Hello`].
    Hello,
    /// Nothing else to say for a while; proves the handler is alive.
    Heartbeat,
    /// The response head and its first body bytes.
    Response(ResponseHead),
    /// More response body.
    Body(Body),
    /// The handler consumed this many request body bytes: the worker may send that many more.
    Credit(Credit),
    /// Abort the stream: the handler cannot complete it. If the response had not begun the worker
    /// sends nothing more and closes the connection; otherwise it closes the connection, which
    /// tells the client the body is truncated.
    Close(Closed),
    /// The same body bytes for many streams at once: a published message reaching every
    /// subscriber on this worker. The payload travels once per worker, never once per
    /// subscriber; the worker frames it for each stream (chunked or raw) and counts it against
    /// each stream's credits exactly like a [`ToConnmgr::Body`] with `more: true`.
    Fanout(Fanout),
    /// Accept a WebSocket handshake announced by [`ToHandler::Upgrade`]: the connmgr writes
    /// `101 Switching Protocols` with its own `Sec-WebSocket-Accept` and extension headers plus
    /// these headers (e.g. `Sec-WebSocket-Protocol` chosen by the backend).
    WsAccept(WsAccept),
    /// A message to send to a WebSocket client; its payload counts against the stream's credits
    /// (the `credits` of the `Upgrade` head are the window). A message larger than the window
    /// costs the whole window and may only be sent while the handler holds all of it (module
    /// docs, "Flow control"); anything else beyond the credits aborts the stream.
    WsMessage(WsMessage),
    /// Send a close frame to the client, then close the connection once the client answers
    /// (or at once if the client closed first).
    WsClose(WsClose),
    /// One message for many WebSocket streams on this worker: framed (and, where negotiated,
    /// compressed) once per worker, counted against each stream's credits like a
    /// [`ToConnmgr::WsMessage`] (a message larger than the window only for streams whose whole
    /// window the handler holds).
    WsFanout(WsFanout),
}

/// Accepting a WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WsAccept {
    /// The stream (the id of the [`ToHandler::Upgrade`]).
    pub id: StreamId,
    /// Extra headers for the 101 response.
    pub headers: Vec<Header>,
}

/// What kind of WebSocket message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WsKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
    /// A ping (payload up to 125 bytes).
    Ping,
    /// A pong (payload up to 125 bytes).
    Pong,
}

/// One complete WebSocket message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WsMessage {
    /// The stream.
    pub id: StreamId,
    /// Text, binary, ping or pong.
    pub kind: WsKind,
    /// The payload.
    pub data: Bytes,
}

/// A WebSocket close frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsClose {
    /// The stream.
    pub id: StreamId,
    /// Close code (`None`: a close frame without a payload).
    pub code: Option<u16>,
    /// UTF-8 reason (empty when there is none).
    pub reason: String,
}

/// One message for many WebSocket streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WsFanout {
    /// The streams, all on the receiving worker. Unknown or closed ids are skipped.
    pub ids: Vec<StreamId>,
    /// Text, binary, ping or pong.
    pub kind: WsKind,
    /// The payload.
    pub data: Bytes,
}

/// One payload appended to the response body of many streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fanout {
    /// The streams, all on the receiving worker. Unknown or finished ids are skipped.
    pub ids: Vec<StreamId>,
    /// The bytes to append to each stream's body.
    pub data: Bytes,
}

/// Worker introduction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The worker's index within its connmgr process.
    pub worker: u16,
}

/// A request head read by the connmgr.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestHead {
    /// The stream this request opens.
    pub id: StreamId,
    /// Request method as sent by the client.
    pub method: String,
    /// Request target as sent by the client (origin form `/path?query`, or absolute form).
    pub target: String,
    /// Client's HTTP version.
    pub version: HttpVersion,
    /// Request headers in order, as received.
    pub headers: Vec<Header>,
    /// Client IP address, as text.
    pub peer_addr: String,
    /// Client TCP port.
    pub peer_port: u16,
    /// The connection came in on a TLS listener.
    pub secure: bool,
    /// The local port the client connected to.
    pub local_port: u16,
    /// First request body bytes (already de-chunked).
    pub body: Bytes,
    /// More request body follows in [`ToHandler::Body`] messages.
    pub more: bool,
    /// Response body bytes the handler may send before waiting for [`ToHandler::Credit`]. For
    /// an `Upgrade` this is also the WebSocket window: a larger message costs exactly this much
    /// (module docs, "Flow control").
    pub credits: u32,
}

/// A response head from the handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseHead {
    /// The stream being answered.
    pub id: StreamId,
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Response headers (hop-by-hop and framing headers are ignored: the connmgr frames the body
    /// itself, keeping a `Content-Length` it finds here as the known body size).
    pub headers: Vec<Header>,
    /// First body bytes.
    pub body: Bytes,
    /// More body follows in [`ToConnmgr::Body`] messages.
    pub more: bool,
}

/// A chunk of body for a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// The stream.
    pub id: StreamId,
    /// The bytes (already de-framed; never chunk-encoded).
    pub data: Bytes,
    /// More body follows.
    pub more: bool,
}

/// A credit grant for a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The stream.
    pub id: StreamId,
    /// Body bytes granted.
    pub bytes: u32,
}

/// An aborted stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// The stream.
    pub id: StreamId,
    /// Why, for logs.
    pub reason: CloseReason,
}

/// Why a stream was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The client closed or reset its connection.
    ClientGone,
    /// The client sent something invalid after the head (bad chunk framing, body too large).
    BadRequest,
    /// A timeout expired.
    Timeout,
    /// The backend failed after the response began.
    BackendError,
    /// The process is shutting down.
    Shutdown,
}

/// Why a packet could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The packet is larger than [`MAX_PACKET_SIZE`].
    #[error("packet of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid msgpack packet of the expected type.
    #[error("malformed packet: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
}

/// Why a packet could not be encoded (only possible with a broken `Serialize` impl).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode packet: {0}")]
pub struct EncodeError(#[from] rmp_serde::encode::Error);

/// Encodes a packet with the named msgpack encoding this protocol uses.
pub fn encode<M: Serialize>(packet: &Packet<M>) -> Result<Vec<u8>, EncodeError> {
    Ok(rmp_serde::to_vec_named(packet)?)
}

/// Decodes a packet, refusing anything larger than [`MAX_PACKET_SIZE`].
pub fn decode<M: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<Packet<M>, DecodeError> {
    if bytes.len() > MAX_PACKET_SIZE {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_PACKET_SIZE,
        });
    }
    Ok(rmp_serde::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> RequestHead {
        RequestHead {
            id: StreamId::new(1, 2),
            method: "GET".into(),
            target: "/a".into(),
            version: HttpVersion::Http11,
            headers: vec![Header::new("Host", "h")],
            peer_addr: "127.0.0.1".into(),
            peer_port: 5,
            secure: false,
            local_port: 7999,
            body: Bytes::from_static(b"x"),
            more: false,
            credits: 8192,
        }
    }

    #[test]
    fn stream_id_packs_slot_and_generation() {
        let id = StreamId::new(7, 0xffff_fffe);
        assert_eq!(id.slot(), 7);
        assert_eq!(id.generation(), 0xffff_fffe);
        assert_eq!(id.to_string(), "7-4294967294");
    }

    #[test]
    fn round_trips_every_message() {
        let to_handler = Packet {
            epoch: 42,
            msgs: vec![
                ToHandler::Hello(Hello { worker: 3 }),
                ToHandler::Heartbeat,
                ToHandler::Request(sample_request()),
                ToHandler::Body(Body {
                    id: StreamId(9),
                    data: Bytes::from_static(b"abc"),
                    more: true,
                }),
                ToHandler::Credit(Credit {
                    id: StreamId(9),
                    bytes: 10,
                }),
                ToHandler::Closed(Closed {
                    id: StreamId(9),
                    reason: CloseReason::ClientGone,
                }),
            ],
        };
        let bytes = encode(&to_handler).unwrap();
        assert_eq!(decode::<ToHandler>(&bytes).unwrap(), to_handler);

        let to_connmgr = Packet {
            epoch: 43,
            msgs: vec![
                ToConnmgr::Hello,
                ToConnmgr::Heartbeat,
                ToConnmgr::Response(ResponseHead {
                    id: StreamId(1),
                    code: 200,
                    reason: "OK".into(),
                    headers: vec![Header::new("Content-Type", "text/plain")],
                    body: Bytes::from_static(b"hi\n"),
                    more: false,
                }),
                ToConnmgr::Body(Body {
                    id: StreamId(1),
                    data: Bytes::new(),
                    more: false,
                }),
                ToConnmgr::Credit(Credit {
                    id: StreamId(1),
                    bytes: 1,
                }),
                ToConnmgr::Close(Closed {
                    id: StreamId(1),
                    reason: CloseReason::BackendError,
                }),
            ],
        };
        let bytes = encode(&to_connmgr).unwrap();
        assert_eq!(decode::<ToConnmgr>(&bytes).unwrap(), to_connmgr);
    }

    /// Pins the wire format: named maps, externally tagged enums, bodies as msgpack `bin`.
    #[test]
    fn golden_bytes_body() {
        let packet = Packet {
            epoch: 1,
            msgs: vec![ToConnmgr::Body(Body {
                id: StreamId(2),
                data: Bytes::from_static(b"hi"),
                more: false,
            })],
        };
        let bytes = encode(&packet).unwrap();
        let expected = concat!(
            "82", // map, 2 entries
            "a565706f6368",
            "01", // "epoch": 1
            "a46d736773",
            "91", // "msgs": array of 1
            "81",
            "a4426f6479", // {"Body":
            "83",         //   map, 3 entries
            "a26964",
            "02", //   "id": 2
            "a464617461",
            "c4026869", // "data": bin8 "hi"
            "a46d6f7265",
            "c2", //   "more": false
        );
        assert_eq!(hex::encode(&bytes), expected);
    }

    #[test]
    fn golden_bytes_unit_variant_and_header() {
        let packet = Packet {
            epoch: 0,
            msgs: vec![ToHandler::Heartbeat],
        };
        assert_eq!(
            hex::encode(encode(&packet).unwrap()),
            concat!(
                "82",
                "a565706f6368",
                "00",
                "a46d736773",
                "91",
                "a9486561727462656174"
            )
        );
        // A header is a 2-element array: [str name, bin value].
        let header = rmp_serde::to_vec_named(&Header::new("A", "b")).unwrap();
        assert_eq!(hex::encode(header), "92a141c40162");
    }

    #[test]
    fn golden_bytes_fanout() {
        let packet = Packet {
            epoch: 1,
            msgs: vec![ToConnmgr::Fanout(Fanout {
                ids: vec![StreamId(1), StreamId(2)],
                data: Bytes::from_static(b"x"),
            })],
        };
        let expected = concat!(
            "82",
            "a565706f6368",
            "01",
            "a46d736773",
            "91",
            "81",
            "a646616e6f7574", // {"Fanout":
            "82",             //   map, 2 entries
            "a3696473",
            "920102", //   "ids": [1, 2]
            "a464617461",
            "c40178", //   "data": bin8 "x"
        );
        assert_eq!(hex::encode(encode(&packet).unwrap()), expected);
    }

    #[test]
    fn golden_bytes_ws_message() {
        let packet = Packet {
            epoch: 1,
            msgs: vec![ToConnmgr::WsMessage(WsMessage {
                id: StreamId(3),
                kind: WsKind::Text,
                data: Bytes::from_static(b"x"),
            })],
        };
        let expected = concat!(
            "82",
            "a565706f6368",
            "01",
            "a46d736773",
            "91",
            "81",
            "a9",
            "57734d657373616765", // {"WsMessage":
            "83",                 //   map, 3 entries
            "a26964",
            "03", //   "id": 3
            "a46b696e64",
            "a454657874", //   "kind": "Text"
            "a464617461",
            "c40178", //   "data": bin8 "x"
        );
        assert_eq!(hex::encode(encode(&packet).unwrap()), expected);
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        assert!(matches!(
            decode::<ToHandler>(b"\xc1"),
            Err(DecodeError::Malformed(_))
        ));
        let big = vec![0u8; MAX_PACKET_SIZE + 1];
        assert!(matches!(
            decode::<ToHandler>(&big),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
