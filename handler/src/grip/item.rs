//! The publish item as the hub delivers it: a handler-side view of proto's parsed publish item
//! with only what delivery needs, payloads as shared [`Bytes`] so one published payload is
//! never copied per subscriber.

use std::sync::Arc;

use bytes::Bytes;
use holdfast_proto::internal::{Header, WsKind};

/// One validated publish item.
#[derive(Clone, Debug)]
pub struct Item {
    /// Channel (as published, i.e. already including any route prefix a subscriber uses).
    pub channel: String,
    /// `id`.
    pub id: Option<String>,
    /// `prev-id`.
    pub prev_id: Option<String>,
    /// `no-seq`: bypass the reordering buffer.
    pub no_seq: bool,
    /// Publish meta (`sender`, `skip_users`, `require_sub`, ...).
    pub meta: Vec<(String, String)>,
    /// The `http-response` format.
    pub response: Option<Arc<ResponseFormat>>,
    /// The `http-stream` format.
    pub stream: Option<StreamFormat>,
    /// The `ws-message` format.
    pub ws: Option<WsFormat>,
}

impl Item {
    /// A publish meta value.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What an `http-stream` item does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    /// Append these bytes to every stream.
    Send(Bytes),
    /// End the streams.
    Close,
    /// Fetch the next link (streams that have one).
    Hint,
}

/// What a `ws-message` item does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsFormat {
    /// Send this message to every WebSocket subscriber.
    Send(WsKind, Bytes),
    /// Send a close frame (code, reason) to every subscriber.
    Close(Option<u16>, String),
    /// Make each WebSocket-over-HTTP subscriber send a request to its origin now.
    Refresh,
}

/// What an `http-response` item does.
#[derive(Clone, Debug)]
pub enum ResponseAction {
    /// Complete held requests with this response.
    Send,
    /// Re-request the origin for each held request.
    Hint,
    /// `close`/`refresh`: accepted, no effect on response holds.
    Ignore,
}

/// Applies a `body-patch` to a timeout response's body.
pub type PatchFn = Arc<dyn Fn(&[u8]) -> Bytes + Send + Sync>;

/// The body of an `http-response` item.
#[derive(Clone)]
pub enum ResponseBody {
    /// `body` / `body-bin`.
    Bytes(Bytes),
    /// `body-patch`: a function applying the JSON Patch to the timeout response's body.
    Patch(PatchFn),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => f.debug_tuple("Bytes").field(b).finish(),
            Self::Patch(_) => f.write_str("Patch(..)"),
        }
    }
}

/// An `http-response` format.
#[derive(Clone, Debug)]
pub struct ResponseFormat {
    /// The action.
    pub action: ResponseAction,
    /// Status code (default 200).
    pub code: Option<u16>,
    /// Reason phrase (default: the standard phrase of the code).
    pub reason: Option<String>,
    /// Headers, each replacing same-named headers of the timeout response (`Grip-*` removed).
    pub headers: Vec<Header>,
    /// The body.
    pub body: ResponseBody,
}
