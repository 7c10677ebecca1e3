//! Item and format parsing over [`Var`], in Pushpin's field order.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{
    Formats, HttpResponseFormat, HttpResponseSend, HttpStreamFormat, HttpStreamSend, ItemError,
    PublishItem, ResponseBody, WsClose, WsMessageFormat, WsMessageSend, WsMessageType,
};
use crate::grip::base64;
use crate::grip::reason_phrase;
use crate::grip::variant::Var;
use crate::grip::FieldError;
use crate::internal::Header;
use crate::tnetstring;

const ITEM: &str = "publish item object";
const HTTP_RESPONSE: &str = "'http-response'";
const HTTP_STREAM: &str = "'http-stream'";
const WS_MESSAGE: &str = "'ws-message'";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Send,
    Hint,
    Close,
    Refresh,
}

pub(super) fn item(v: Var<'_>, channel_override: Option<&str>) -> Result<PublishItem, ItemError> {
    if !v.is_object() {
        return Err(FieldError::NotAnObject(ITEM).into());
    }
    let channel = match channel_override.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => v.string(ITEM, "channel", true)?.unwrap_or_default(),
    };
    let id = v.string(ITEM, "id", false)?;
    let prev_id = v.string(ITEM, "prev-id", false)?;

    // Either the `formats` object, or the format keys found at the top level.
    let (formats_obj, top_level) = match v.object(ITEM, "formats", false)? {
        Some(f) => (Some(f), false),
        None => (None, true),
    };
    let lookup = |name: &str| -> Option<Var<'_>> {
        if top_level {
            v.get(name).filter(|f| f.is_valid())
        } else {
            formats_obj.and_then(|f| f.get(name))
        }
    };
    let any_format = if top_level {
        ["http-response", "http-stream", "ws-message"]
            .iter()
            .any(|n| lookup(n).is_some())
    } else {
        formats_obj
            .and_then(Var::entries)
            .is_some_and(|e| !e.is_empty())
    };
    if !any_format {
        return Err(ItemError::NoFormats);
    }

    let formats = Formats {
        http_response: lookup("http-response").map(http_response).transpose()?,
        http_stream: lookup("http-stream").map(http_stream).transpose()?,
        ws_message: lookup("ws-message").map(ws_message).transpose()?,
    };

    let mut meta = BTreeMap::new();
    if let Some(m) = v.object(ITEM, "meta", false)? {
        meta.extend(m.string_map("'meta'")?);
    }

    let size = match v.int(ITEM, "size")? {
        Some(s) => Some(u32::try_from(s).map_err(|_| FieldError::InvalidValue {
            parent: ITEM,
            field: "size",
        })?),
        None => None,
    };

    let no_seq = match v.get("no-seq") {
        Some(n) => n
            .as_bool()
            .ok_or_else(|| FieldError::wrong_type(ITEM, "no-seq"))?,
        None => false,
    };

    Ok(PublishItem {
        channel,
        id,
        prev_id,
        formats,
        meta,
        size,
        no_seq,
    })
}

fn action(v: Var<'_>, parent: &'static str) -> Result<Action, ItemError> {
    if !v.is_object() {
        return Err(FieldError::NotAnObject(parent).into());
    }
    match v.string(parent, "action", false)?.as_deref() {
        None | Some("send") => Ok(Action::Send),
        Some("hint") => Ok(Action::Hint),
        Some("close") => Ok(Action::Close),
        Some("refresh") => Ok(Action::Refresh),
        Some(other) => Err(ItemError::UnknownAction(other.to_string())),
    }
}

fn http_response(v: Var<'_>) -> Result<HttpResponseFormat, ItemError> {
    const P: &str = HTTP_RESPONSE;
    match action(v, P)? {
        Action::Hint => return Ok(HttpResponseFormat::Hint),
        Action::Close => return Ok(HttpResponseFormat::Close),
        Action::Refresh => return Ok(HttpResponseFormat::Refresh),
        Action::Send => {}
    }
    let code = match v.int(P, "code")? {
        Some(c) => u16::try_from(c)
            .ok()
            .filter(|c| *c <= 999)
            .ok_or(FieldError::InvalidValue {
                parent: P,
                field: "code",
            })?,
        None => 200,
    };
    let reason = match v.string(P, "reason", false)? {
        Some(r) if !r.is_empty() => r,
        _ => reason_phrase(code).to_string(),
    };
    let headers = match v.get("headers") {
        Some(h) => h
            .headers(P)?
            .into_iter()
            .map(|(name, value)| Header::new(name, value))
            .collect(),
        None => Vec::new(),
    };
    let content_filters = content_filters(v, P)?;
    let body = if v.is_json() && v.get("body-bin").is_some() {
        let text = v.string(P, "body-bin", false)?.unwrap_or_default();
        ResponseBody::Bytes(Bytes::from(base64::decode_lenient(text.as_bytes())))
    } else if let Some(body) = v.get("body") {
        ResponseBody::Bytes(content_bytes(body, P, "body")?)
    } else if v.get("body-patch").is_some() {
        let ops = v.list(P, "body-patch", false)?.unwrap_or_default();
        ResponseBody::Patch(ops.into_iter().map(to_json).collect())
    } else {
        return Err(FieldError::MissingContent {
            parent: P,
            alternatives: if v.is_json() {
                "'body', 'body-bin', or 'body-patch'"
            } else {
                "'body' or 'body-patch'"
            },
        }
        .into());
    };
    Ok(HttpResponseFormat::Send(HttpResponseSend {
        code,
        reason,
        headers,
        body,
        content_filters,
    }))
}

fn http_stream(v: Var<'_>) -> Result<HttpStreamFormat, ItemError> {
    const P: &str = HTTP_STREAM;
    match action(v, P)? {
        Action::Hint => return Ok(HttpStreamFormat::Hint),
        Action::Close => return Ok(HttpStreamFormat::Close),
        Action::Refresh => return Ok(HttpStreamFormat::Refresh),
        Action::Send => {}
    }
    let content_filters = content_filters(v, P)?;
    let content = if v.is_json() && v.get("content-bin").is_some() {
        let text = v.string(P, "content-bin", false)?.unwrap_or_default();
        Bytes::from(base64::decode_lenient(text.as_bytes()))
    } else if let Some(content) = v.get("content") {
        content_bytes(content, P, "content")?
    } else {
        return Err(FieldError::MissingContent {
            parent: P,
            alternatives: if v.is_json() {
                "'content' or 'content-bin'"
            } else {
                "'content'"
            },
        }
        .into());
    };
    Ok(HttpStreamFormat::Send(HttpStreamSend {
        content,
        content_filters,
    }))
}

fn ws_message(v: Var<'_>) -> Result<WsMessageFormat, ItemError> {
    const P: &str = WS_MESSAGE;
    match action(v, P)? {
        Action::Hint => Ok(WsMessageFormat::Hint),
        Action::Refresh => Ok(WsMessageFormat::Refresh),
        Action::Close => {
            let code = match v.int(P, "code")? {
                Some(c) => Some(u16::try_from(c).map_err(|_| FieldError::InvalidValue {
                    parent: P,
                    field: "code",
                })?),
                None => None,
            };
            let reason = v.string(P, "reason", false)?.filter(|r| !r.is_empty());
            Ok(WsMessageFormat::Close(WsClose { code, reason }))
        }
        Action::Send => {
            let kind = match v.string(P, "type", false)?.as_deref() {
                None => None,
                Some("text") => Some(WsMessageType::Text),
                Some("binary") => Some(WsMessageType::Binary),
                Some("ping") => Some(WsMessageType::Ping),
                Some("pong") => Some(WsMessageType::Pong),
                Some(_) => {
                    return Err(FieldError::UnknownValue {
                        parent: P,
                        field: "type",
                    }
                    .into())
                }
            };
            let content_filters = content_filters(v, P)?;
            let (kind, content) = if let Some(bin) = v.get("content-bin") {
                // JSON needs a base64 string; tnetstring needs raw bytes.
                let content = match bin {
                    Var::Json(serde_json::Value::String(s)) => {
                        Bytes::from(base64::decode_lenient(s.as_bytes()))
                    }
                    Var::Tnet(tnetstring::Value::Bytes(b)) => Bytes::copy_from_slice(b),
                    _ => return Err(FieldError::wrong_type(P, "content-bin").into()),
                };
                (kind.unwrap_or(WsMessageType::Binary), content)
            } else if let Some(content) = v.get("content") {
                (
                    kind.unwrap_or(WsMessageType::Text),
                    content_bytes(content, P, "content")?,
                )
            } else {
                match kind {
                    Some(k @ (WsMessageType::Ping | WsMessageType::Pong)) => (k, Bytes::new()),
                    _ => {
                        return Err(FieldError::MissingContent {
                            parent: P,
                            alternatives: "'content' or 'content-bin'",
                        }
                        .into())
                    }
                }
            };
            Ok(WsMessageFormat::Send(WsMessageSend {
                kind,
                content,
                content_filters,
            }))
        }
    }
}

fn content_filters(v: Var<'_>, parent: &'static str) -> Result<Option<Vec<String>>, ItemError> {
    let Some(filters) = v.get("content-filters") else {
        return Ok(None);
    };
    let items = filters
        .as_list()
        .ok_or_else(|| FieldError::wrong_type(parent, "content-filters"))?;
    Ok(Some(Var::string_list(
        &items,
        "content-filters",
        "element",
    )?))
}

/// A body or content value: JSON text as UTF-8, tnetstring bytes raw.
fn content_bytes(
    v: Var<'_>,
    parent: &'static str,
    field: &'static str,
) -> Result<Bytes, ItemError> {
    v.as_bytes()
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| FieldError::wrong_type(parent, field).into())
}

/// Converts a patch operation to JSON, the way Pushpin's `convertToJsonStyle` does for
/// tnetstring input (byte strings become UTF-8 text).
fn to_json(v: Var<'_>) -> serde_json::Value {
    match v {
        Var::Json(j) => j.clone(),
        Var::Tnet(t) => tnet_to_json(t),
    }
}

fn tnet_to_json(t: &tnetstring::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match t {
        tnetstring::Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        tnetstring::Value::Int(i) => J::from(*i),
        tnetstring::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        tnetstring::Value::Bool(b) => J::Bool(*b),
        tnetstring::Value::Null => J::Null,
        tnetstring::Value::List(l) => J::Array(l.iter().map(tnet_to_json).collect()),
        tnetstring::Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), tnet_to_json(v)))
                .collect(),
        ),
    }
}
