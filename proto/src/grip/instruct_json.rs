//! The `application/grip-instruct` JSON body (reference §4.3), applied on top of the values the
//! `Grip-*` headers gave: channels are appended, `timeout`, `keep-alive` and `meta` entries
//! override, and the emitted response's headers and body are replaced by `response.*` (cleared
//! even when there is no `response`, as in Pushpin **[observed 1.36]**).

use crate::grip::base64;
use crate::grip::instruct::{Channel, Draft, HoldMode, InstructError, DEFAULT_KEEP_ALIVE_TIMEOUT};
use crate::grip::variant::{FieldError, Var};
use crate::internal::Header;

pub(crate) fn apply(body: &[u8], d: &mut Draft) -> Result<(), InstructError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| InstructError::InstructJson)?;
    match doc {
        serde_json::Value::Object(_) => {}
        // Qt's parser only accepts an object or an array at the top level.
        serde_json::Value::Array(_) => return Err(InstructError::InstructNotObject),
        _ => return Err(InstructError::InstructJson),
    }
    let root = Var::Json(&doc);

    if let Some(hold) = root.get("hold") {
        if !hold.is_object() {
            return Err(FieldError::wrong_type("instruct", "hold").into());
        }
        apply_hold(hold, d)?;
    }

    d.headers.clear();
    d.body.clear();

    if let Some(response) = root.get("response") {
        if !response.is_object() {
            return Err(InstructError::ResponseNotObject);
        }
        apply_response(response, d)?;
    }
    Ok(())
}

fn apply_hold(hold: Var<'_>, d: &mut Draft) -> Result<(), InstructError> {
    const P: &str = "hold";
    d.hold = Some(match hold.string(P, "mode", false)?.as_deref() {
        None | Some("response") => HoldMode::Response,
        Some("stream") => HoldMode::Stream,
        Some(_) => return Err(InstructError::HoldModeInvalid),
    });

    for channel in hold.list(P, "channels", true)?.unwrap_or_default() {
        const C: &str = "channel";
        let name = channel.string(C, "name", true)?.unwrap_or_default();
        // Refused as an empty `Grip-Channel` element is: a subscription to "" is never what the
        // backend meant (Pushpin 1.36 drops the client connection without a response).
        if name.is_empty() {
            return Err(FieldError::InvalidValue {
                parent: C,
                field: "name",
            }
            .into());
        }
        let prev_id = channel.string(C, "prev-id", false)?;
        let filters = match channel.list(C, "filters", false)? {
            Some(items) => Var::string_list(&items, "filters", "value")?,
            None => Vec::new(),
        };
        d.channels.push(Channel {
            name,
            prev_id,
            filters,
        });
    }

    if let Some(timeout) = hold.int(P, "timeout")? {
        if timeout < 0 {
            return Err(FieldError::InvalidValue {
                parent: P,
                field: "timeout",
            }
            .into());
        }
        d.timeout = Some(timeout);
    }

    if let Some(ka) = hold.object(P, "keep-alive", false)? {
        const K: &str = "keep-alive";
        if ka.get("content-bin").is_some() {
            let text = ka.string(K, "content-bin", false)?.unwrap_or_default();
            d.keep_alive_data = base64::decode_lenient(text.as_bytes());
        } else if let Some(content) = ka.get("content") {
            d.keep_alive_data = content
                .as_bytes()
                .ok_or_else(|| FieldError::wrong_type(K, "content"))?
                .to_vec();
        }
        d.keep_alive_timeout = Some(match ka.int(K, "timeout")? {
            Some(t) if t < 0 => {
                return Err(FieldError::InvalidValue {
                    parent: K,
                    field: "timeout",
                }
                .into())
            }
            Some(t) => t,
            None => DEFAULT_KEEP_ALIVE_TIMEOUT as i32,
        });
    }

    if let Some(meta) = hold.object(P, "meta", false)? {
        d.meta.extend(meta.string_map("'meta'")?);
    }
    Ok(())
}

fn apply_response(response: Var<'_>, d: &mut Draft) -> Result<(), InstructError> {
    const P: &str = "response";
    if let Some(code) = response.int(P, "code")? {
        d.code =
            u16::try_from(code)
                .ok()
                .filter(|c| *c <= 999)
                .ok_or(FieldError::InvalidValue {
                    parent: P,
                    field: "code",
                })?;
        // A new code invalidates the origin's reason; the standard phrase is filled in later.
        d.reason.clear();
    }
    if let Some(reason) = response.string(P, "reason", false)? {
        if !reason.is_empty() {
            d.reason = reason;
        }
    }
    if let Some(headers) = response.get("headers") {
        d.headers = headers
            .headers(P)?
            .into_iter()
            .map(|(name, value)| Header::new(name, value))
            .collect();
    }
    if response.get("body-bin").is_some() {
        let text = response.string(P, "body-bin", false)?.unwrap_or_default();
        d.body = base64::decode_lenient(text.as_bytes());
    } else if let Some(body) = response.get("body") {
        d.body = body
            .as_bytes()
            .ok_or_else(|| FieldError::wrong_type(P, "body"))?
            .to_vec();
    }
    Ok(())
}
