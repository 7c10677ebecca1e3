//! Publish items (reference §6.1–6.4): the typed form of what publishers send, parsed from the
//! HTTP control API's JSON body, from ZeroMQ PULL/SUB frames (JSON or tnetstring) and from the
//! command socket's `publish` method, with Pushpin's exact validation messages.
//!
//! Entry points:
//!
//! - [`parse_publish_body`]: a `POST /publish` body, all or nothing. Its errors display as the
//!   response body Pushpin sends with status 400 (without the trailing `\n`).
//! - [`parse_frame`]: one ZeroMQ PULL frame (`J`+JSON, `T`+tnetstring or bare tnetstring), or a
//!   SUB payload with the channel from the first frame.
//! - [`parse_command_items`]: the `items` argument of the command socket's `publish`.
//! - [`parse_item_json`], [`parse_item_tnet`]: one item.
//!
//! Parsing mirrors Pushpin's `PublishItem::fromVariant` / `PublishFormat::fromVariant`: the same
//! field order (so the first error is the same), the same error texts ([`FieldError`], shared
//! with instruct parsing), the same type coercions (integers may arrive as numbers, booleans or
//! numeric strings; JSON `null` is a present value of the wrong type, a tnetstring null is
//! absent) and lenient base64 in `*-bin` fields, which only JSON input has. Fields that a non-`send` action does not use are
//! not read at all, so `{"action": "hint", "code": "x"}` is valid, as in Pushpin.
//!
//! Deliberate differences from Pushpin 1.36 (which rejects `refresh` everywhere
//! **[observed 1.36]**): `action: "refresh"` is accepted on every format, as HEAD (≥1.38) does;
//! a `ws-message` close `code` above 65535 is an invalid value instead of being truncated later.

mod parse;
mod patch;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::grip::variant::Var;
use crate::grip::FieldError;
use crate::internal::Header;
use crate::tnetstring::{self, TnetError};

pub use patch::{apply_patch, patch_body, PatchError};

/// One published item.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishItem {
    /// Channel (without any route prefix).
    pub channel: String,
    /// Item id, for sequencing and dedup.
    pub id: Option<String>,
    /// Id of the item this one follows.
    pub prev_id: Option<String>,
    /// The formats, one per transport. All three may be absent when the item only named
    /// formats Pushpin does not know (`{"formats": {"foo": {}}}` is accepted **[observed
    /// 1.36]**).
    pub formats: Formats,
    /// Publish meta (`sender`, `skip_users`, `require_sub`, …); string values only.
    pub meta: BTreeMap<String, String>,
    /// Size for block accounting (`message_block_size`).
    pub size: Option<u32>,
    /// Bypass the reordering buffer.
    pub no_seq: bool,
}

/// The per-transport payloads of an item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Formats {
    /// For response holds (long-polling).
    pub http_response: Option<HttpResponseFormat>,
    /// For stream holds (streaming, SSE).
    pub http_stream: Option<HttpStreamFormat>,
    /// For WebSocket sessions.
    pub ws_message: Option<WsMessageFormat>,
}

/// `http-response` format.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpResponseFormat {
    /// Complete the held response (`action: send`, the default).
    Send(HttpResponseSend),
    /// Re-request the origin for this client.
    Hint,
    /// Accepted but meaningless for a response hold.
    Close,
    /// Accepted but meaningless for a response hold.
    Refresh,
}

/// The response a `send` completes a long-poll with.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponseSend {
    /// Status code, 0–999, default 200.
    pub code: u16,
    /// Reason phrase; the standard phrase for `code` when none (or an empty one) was given.
    pub reason: String,
    /// Headers to set on the timeout response (see [`merge_response_headers`]).
    pub headers: Vec<Header>,
    /// The new body, or a patch of the held response's body.
    pub body: ResponseBody,
    /// `content-filters`: when present, must equal the subscription's content filters.
    pub content_filters: Option<Vec<String>>,
}

/// Body of an `http-response` send.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseBody {
    /// `body` (or `body-bin`, base64-decoded).
    Bytes(Bytes),
    /// `body-patch`: RFC 6902 operations to apply to the held response's JSON body
    /// ([`patch_body`]). Kept as JSON; tnetstring input is converted (byte strings become
    /// UTF-8 text).
    Patch(Vec<serde_json::Value>),
}

/// `http-stream` format.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpStreamFormat {
    /// Append content to the stream.
    Send(HttpStreamSend),
    /// Fetch the next link now.
    Hint,
    /// End the response.
    Close,
    /// Accepted (HEAD); no effect on streams.
    Refresh,
}

/// Content appended to a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpStreamSend {
    /// `content` (or `content-bin`, base64-decoded).
    pub content: Bytes,
    /// `content-filters`.
    pub content_filters: Option<Vec<String>>,
}

/// `ws-message` format.
#[derive(Clone, Debug, PartialEq)]
pub enum WsMessageFormat {
    /// Send a message.
    Send(WsMessageSend),
    /// Send a close frame.
    Close(WsClose),
    /// Ignored for WebSockets.
    Hint,
    /// Trigger a WebSocket-over-HTTP refresh.
    Refresh,
}

/// A message for WebSocket clients.
#[derive(Clone, Debug, PartialEq)]
pub struct WsMessageSend {
    /// Frame type: given, or text for `content` and binary for `content-bin`.
    pub kind: WsMessageType,
    /// Payload (empty for a ping or pong without content).
    pub content: Bytes,
    /// `content-filters`.
    pub content_filters: Option<Vec<String>>,
}

/// WebSocket message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsMessageType {
    /// Text frame.
    Text,
    /// Binary frame.
    Binary,
    /// Ping frame.
    Ping,
    /// Pong frame.
    Pong,
}

/// A close frame for WebSocket clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsClose {
    /// Close code, if given.
    pub code: Option<u16>,
    /// Close reason, if given and non-empty.
    pub reason: Option<String>,
}

/// Why one item is invalid; displayed after `Invalid format: `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A field is missing or malformed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Neither `formats` nor top-level format keys name any format.
    #[error("no formats specified")]
    NoFormats,
    /// An `action` Pushpin does not know. Pushpin reports this with an empty message, so the
    /// control API answers `Invalid format: ` **[observed 1.36]**.
    #[error("")]
    UnknownAction(String),
}

/// Why a control-API publish body (or command-socket `publish` argument) is invalid. The
/// Display text is the 400 response body Pushpin sends, without its trailing `\n`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Some item is invalid (the first one found).
    #[error("Invalid format: {0}")]
    Item(#[from] ItemError),
    /// `items` is not a list.
    #[error("Invalid format: object contains 'items' with wrong type")]
    ItemsWrongType,
    /// The body is not JSON, or is a bare JSON scalar (Qt's parser accepts only an object or
    /// an array at the top level).
    #[error("Body is not valid JSON.")]
    InvalidJson,
    /// The object has no `items`.
    #[error("Invalid format: object does not contain 'items'")]
    MissingItems,
    /// The body is a JSON array.
    #[error("Invalid format.")]
    NotAnObject,
}

/// Why a ZeroMQ publish frame was dropped; the texts are Pushpin's log messages (after
/// `IN pull: ` / `IN sub: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The item is invalid.
    #[error("received message with invalid format: {0}")]
    Item(#[from] ItemError),
    /// `J` frame that is not JSON.
    #[error("received message with invalid format (json parse failed)")]
    Json,
    /// `J` frame whose JSON is not an object.
    #[error("received message with invalid format (not a valid json object)")]
    JsonNotObject,
    /// `T` or bare frame that is not a tnetstring.
    #[error("received message with invalid format (tnetstring parse failed)")]
    Tnetstring(#[source] TnetError),
}

/// Parses a control-API `POST /publish` body: `{"items": [item, …]}`. Every item is validated
/// before any is returned.
pub fn parse_publish_body(body: &[u8]) -> Result<Vec<PublishItem>, PublishError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| PublishError::InvalidJson)?;
    let root = match &doc {
        serde_json::Value::Object(_) => Var::Json(&doc),
        serde_json::Value::Array(_) => return Err(PublishError::NotAnObject),
        _ => return Err(PublishError::InvalidJson),
    };
    parse_items(root)
}

/// Parses the `args` map of a command-socket `publish` request (`{"items": [item, …]}`), with
/// the same messages as the control API.
pub fn parse_command_items(args: &tnetstring::Value) -> Result<Vec<PublishItem>, PublishError> {
    parse_items(Var::Tnet(args))
}

/// Parses one JSON item.
pub fn parse_item_json(item: &serde_json::Value) -> Result<PublishItem, ItemError> {
    parse::item(Var::Json(item), None)
}

/// Parses one tnetstring item. `channel` overrides the item's own channel when non-empty (the
/// SUB socket's first frame).
pub fn parse_item_tnet(
    item: &tnetstring::Value,
    channel: Option<&str>,
) -> Result<PublishItem, ItemError> {
    parse::item(Var::Tnet(item), channel)
}

/// Parses one ZeroMQ publish payload: `J` + JSON object, `T` + tnetstring, or a bare
/// tnetstring. For the SUB socket pass the first frame as `channel`; it replaces the item's
/// `channel` when non-empty (an empty one falls back to the item's, as in Pushpin).
pub fn parse_frame(frame: &[u8], channel: Option<&str>) -> Result<PublishItem, FrameError> {
    match frame.first() {
        Some(b'J') => {
            let doc: serde_json::Value =
                serde_json::from_slice(&frame[1..]).map_err(|_| FrameError::Json)?;
            match doc {
                serde_json::Value::Object(_) => Ok(parse::item(Var::Json(&doc), channel)?),
                serde_json::Value::Array(_) => Err(FrameError::JsonNotObject),
                _ => Err(FrameError::Json),
            }
        }
        first => {
            let offset = usize::from(first == Some(&b'T'));
            let value = tnetstring::parse(&frame[offset..]).map_err(FrameError::Tnetstring)?;
            Ok(parse::item(Var::Tnet(&value), channel)?)
        }
    }
}

/// Builds the headers of the response that completes a long-poll (reference §4.4): the held
/// (timeout) response's headers minus `Content-Length`, with every header named in the publish
/// replacing all same-named ones; `Grip-*` headers of the publish are dropped, and if the
/// publish carried `Grip-Expose-Headers`, headers it lists are **removed** from the result.
/// That last rule is inverted compared with instructs, but it is what Pushpin 1.36 and HEAD do
/// (reference §12.1), so it is kept for compatibility.
pub fn merge_response_headers(held: &[Header], publish: &[Header]) -> Vec<Header> {
    let is_grip = |h: &Header| h.0.len() >= 5 && h.0.as_bytes()[..5].eq_ignore_ascii_case(b"grip-");
    let expose: Vec<&[u8]> = publish
        .iter()
        .filter(|h| h.is("Grip-Expose-Headers"))
        .flat_map(|h| crate::grip::headers::split_list(&h.1))
        .collect();
    let publish: Vec<&Header> = publish.iter().filter(|h| !is_grip(h)).collect();
    let mut out: Vec<Header> = held
        .iter()
        .filter(|h| !h.is("Content-Length") && !publish.iter().any(|p| p.is(&h.0)))
        .cloned()
        .collect();
    out.extend(publish.into_iter().cloned());
    out.retain(|h| {
        !expose
            .iter()
            .any(|e| e.eq_ignore_ascii_case(h.0.as_bytes()))
    });
    out
}

fn parse_items(root: Var<'_>) -> Result<Vec<PublishItem>, PublishError> {
    let items = root.get("items").ok_or(PublishError::MissingItems)?;
    let items = items.as_list().ok_or(PublishError::ItemsWrongType)?;
    items
        .into_iter()
        .map(|item| parse::item(item, None).map_err(PublishError::from))
        .collect()
}

#[cfg(test)]
mod tests;
