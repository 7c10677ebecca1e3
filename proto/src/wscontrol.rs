//! GRIP on WebSockets (reference §5.2, §5.4): whether the origin turned GRIP mode on
//! ([`parse_grip_extension`]), what to do with each origin message in GRIP mode ([`classify`]),
//! and the control messages an origin sends as `c:` + JSON ([`parse`]).
//!
//! All of it follows Pushpin 1.36 (`wsproxysession.cpp`, `wscontrolmessage.cpp`,
//! `handlerengine.cpp`); the cases marked **[observed 1.36]** were checked against a running
//! 1.36 over WebSocket-over-HTTP, with the handler's debug log giving the exact error texts.
//!
//! # GRIP mode
//!
//! The origin enables it with `Sec-WebSocket-Extensions: grip[; message-prefix=<p>]` on its
//! 101 or OPEN reply. Then, origin → client:
//!
//! - a TEXT message starting with `c:` that fits in one frame is a control message; a longer
//!   one is dropped whole (over HTTP the proxy cuts messages into [`FRAME_SIZE_MAX`] frames, so
//!   a `c:` message over 16,384 bytes never reaches the handler **[observed 1.36]**);
//! - a TEXT or BINARY message starting with the prefix is delivered without it;
//! - any other TEXT or BINARY message is dropped (`dropping unprefixed message`);
//! - ping, pong and close always pass.
//!
//! # Ignored control messages
//!
//! Pushpin ignores a control message that is not JSON, not an object, has an unknown `type` or
//! breaks a field rule, logging at debug level. [`parse`] returns the exact text as a
//! [`ControlError`], or [`ControlMessage::Unknown`] for an unknown type.
//!
//! Beware one 1.36 side effect **[observed 1.36]**: the handler then returns before acking the
//! proxy's `grip` item, so the proxy's WS-control request times out and the client connection
//! is dropped about 8 s later (`wscontrol session error`). Whether Holdfast reproduces that is
//! the handler's decision; this module only reports the outcome.

use bytes::Bytes;

use crate::grip::base64;
use crate::grip::headers::{self, ParseMode};
use crate::grip::variant::Var;
use crate::grip::FieldError;
use crate::internal::Header;
use crate::wsevents::FRAME_SIZE_MAX;

/// The kind of a keep-alive or delayed message: text, binary, ping or pong.
pub type WsContentKind = crate::internal::WsKind;

/// What starts a control message: a TEXT message `c:{…}`.
pub const CONTROL_PREFIX: &[u8] = b"c:";

/// The message prefix when the `grip` extension names none.
pub const DEFAULT_MESSAGE_PREFIX: &str = "m:";

/// Keep-alive interval in seconds when `timeout` is absent or 0 (`DEFAULT_WS_KEEPALIVE_TIMEOUT`).
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: u32 = 55;

/// Delay in seconds of `send-delayed` when `timeout` is absent or 0
/// (`DEFAULT_WS_SENDDELAYED_TIMEOUT`).
pub const DEFAULT_SEND_DELAYED_TIMEOUT: u32 = 1;

const PACKET: &str = "grip control packet";
const OBJECT: &str = "grip control object";

/// The origin's `grip` extension: GRIP mode is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GripExtension {
    /// Messages starting with this are delivered without it; others are dropped. Default
    /// [`DEFAULT_MESSAGE_PREFIX`]. May be empty (every message is delivered).
    pub message_prefix: String,
}

impl Default for GripExtension {
    fn default() -> Self {
        Self {
            message_prefix: DEFAULT_MESSAGE_PREFIX.to_owned(),
        }
    }
}

/// Reads the `grip` extension from the origin's 101 / OPEN reply headers, as Pushpin does:
///
/// - every `Sec-WebSocket-Extensions` header, split on commas outside quotes; the first
///   element whose name is exactly `grip` (case-sensitive) counts;
/// - parameters use the GRIP header syntax ([`headers::parse_params`]); `message-prefix` is
///   matched case-sensitively, the last one wins, and one without a value means the empty
///   prefix (`grip; message-prefix` → `""`, `grip; Message-Prefix=z:` → `m:`);
/// - broken parameters turn GRIP mode off: an unterminated quote, or a `name=` that ends the
///   header (`grip; message-prefix=`) **[observed 1.36]**.
///
/// The caller applies the remaining rules: a trusted client gets the extension passed through
/// instead, and the extension is never echoed to an untrusted client. A prefix that is not
/// UTF-8 is converted lossily (Pushpin compares raw bytes).
pub fn parse_grip_extension(headers: &[Header]) -> Option<GripExtension> {
    let element = headers::all_values(headers, "Sec-WebSocket-Extensions")
        .into_iter()
        .find(|e| match e.iter().position(|&c| c == b';') {
            Some(at) => headers::trim(&e[..at]) == b"grip",
            None => *e == b"grip",
        })?;
    let Some(at) = element.iter().position(|&c| c == b';') else {
        return Some(GripExtension::default());
    };
    let params = &element[at + 1..];
    let parsed = headers::parse_params(params, ParseMode::AllParams)?;
    if ends_with_bare_assignment(params) {
        return None;
    }
    let prefix = match parsed.0.iter().rev().find(|p| p.name == b"message-prefix") {
        Some(p) => String::from_utf8_lossy(p.value.as_deref().unwrap_or_default()).into_owned(),
        None => DEFAULT_MESSAGE_PREFIX.to_owned(),
    };
    Some(GripExtension {
        message_prefix: prefix,
    })
}

/// Pushpin's parameter parser fails when the `=` of a `name=` is the last byte of the header
/// (`x=` ends the value there), while [`headers::parse_params`] reads an empty value. Parsing
/// again with a sentinel byte appended tells the two apart: only a value that started at the
/// very end becomes exactly the sentinel (`a=b=` reads `b=` + sentinel, and a quoted `x=""
/// junk=` keeps its empty quoted value).
fn ends_with_bare_assignment(params: &[u8]) -> bool {
    if params.last() != Some(&b'=') {
        return false;
    }
    let mut probe = params.to_vec();
    probe.push(b'\0');
    headers::parse_params(&probe, ParseMode::AllParams)
        .and_then(|p| {
            p.0.last()
                .map(|last| last.value.as_deref() == Some(&b"\0"[..]))
        })
        .unwrap_or(false)
}

/// What to do with one TEXT or BINARY message from the origin in GRIP mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginMessage {
    /// A control message: the JSON after `c:`, for [`parse`] (and, in Holdfast, for the
    /// handler's `grip` WS-control item).
    Control(Bytes),
    /// Deliver this to the client (the message without its prefix; pings and pongs as they
    /// are).
    Deliver(Bytes),
    /// Drop the message (debug log `dropping unprefixed message` when it lacked the prefix).
    Drop,
}

/// Classifies a complete origin message in GRIP mode (reference §5.2).
///
/// `single_frame` says whether the message reached the proxy as one frame: Pushpin only takes
/// a `c:` message as control when it is one frame, and drops it otherwise. Over HTTP that is
/// `message.len() <= FRAME_SIZE_MAX`; see [`classify_woh`].
pub fn classify(
    ext: &GripExtension,
    kind: WsContentKind,
    message: &Bytes,
    single_frame: bool,
) -> OriginMessage {
    match kind {
        WsContentKind::Ping | WsContentKind::Pong => OriginMessage::Deliver(message.clone()),
        WsContentKind::Text if message.starts_with(CONTROL_PREFIX) => {
            if single_frame {
                OriginMessage::Control(message.slice(CONTROL_PREFIX.len()..))
            } else {
                OriginMessage::Drop
            }
        }
        WsContentKind::Text | WsContentKind::Binary => {
            let prefix = ext.message_prefix.as_bytes();
            if message.starts_with(prefix) {
                OriginMessage::Deliver(message.slice(prefix.len()..))
            } else {
                OriginMessage::Drop
            }
        }
    }
}

/// [`classify`] for a message from a WebSocket-over-HTTP reply, which Pushpin splits into
/// frames of [`FRAME_SIZE_MAX`] bytes: a `c:` message longer than that is dropped.
pub fn classify_woh(ext: &GripExtension, kind: WsContentKind, message: &Bytes) -> OriginMessage {
    classify(ext, kind, message, message.len() <= FRAME_SIZE_MAX)
}

/// Keep-alive timing mode (`mode` of a `keep-alive` control message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepAliveMode {
    /// Send when the connection has been idle for the timeout (the default, and what any
    /// value other than `interval` means).
    #[default]
    Idle,
    /// Send every timeout, whatever the traffic.
    Interval,
}

/// A GRIP WebSocket control message (reference §5.4), validated as Pushpin validates it, with
/// its defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlMessage {
    /// `subscribe`: add the route's channel prefix to `channel` before use.
    Subscribe {
        /// Channel name, non-empty.
        channel: String,
        /// `filters`, in order (empty when absent). The subscription and filter limits are
        /// the handler's business.
        filters: Vec<String>,
    },
    /// `unsubscribe` (any `filters` field is ignored, even a malformed one).
    Unsubscribe {
        /// Channel name, non-empty.
        channel: String,
    },
    /// `detach`: close the origin side, keep the client.
    Detach,
    /// `session`: set the session id, or clear it.
    Session {
        /// The id; `None` when absent or empty (both clear it in Pushpin).
        id: Option<String>,
    },
    /// `set-meta`: set or delete a subscription meta value.
    SetMeta {
        /// Name, non-empty.
        name: String,
        /// Value; `None` (field absent) deletes. A JSON `null` is a wrong type, not a delete
        /// **[observed 1.36]**.
        value: Option<String>,
    },
    /// `keep-alive`: start, change or stop keep-alives.
    KeepAlive {
        /// The message to send, or `None` (neither `content` nor `content-bin`) to stop.
        content: Option<(WsContentKind, Bytes)>,
        /// Seconds, [`DEFAULT_KEEP_ALIVE_TIMEOUT`] if absent or 0. Meaningless without content.
        timeout: u32,
        /// Timing mode.
        mode: KeepAliveMode,
    },
    /// `send-delayed`: send a message after a delay unless replaced or flushed.
    SendDelayed {
        /// The message; empty when neither `content` nor `content-bin` is given (Pushpin then
        /// sends an empty message).
        content: Bytes,
        /// Its kind (`message-type`, text by default).
        kind: WsContentKind,
        /// Seconds, [`DEFAULT_SEND_DELAYED_TIMEOUT`] if absent or 0.
        timeout: u32,
    },
    /// `flush-delayed`: send the pending delayed message now.
    FlushDelayed,
    /// A `type` Pushpin 1.36 does not know (HEAD's `auto-respond`, typos). Pushpin ignores it,
    /// logging `failed to parse grip control message: 'type' contains unknown value: <type>`.
    Unknown(String),
}

/// Why Pushpin ignores a control message. The display text is Pushpin's debug log line
/// **[observed 1.36]**.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not JSON, or a JSON scalar (Qt only parses objects and arrays).
    #[error("grip control message is not valid json")]
    InvalidJson,
    /// Valid JSON breaking a rule: not an object (`grip control packet is not an object`), a
    /// missing, mistyped or invalid field (`grip control object contains 'timeout' with
    /// invalid value`, `filters contains value with wrong type`, …).
    #[error("failed to parse grip control message: {0}")]
    Invalid(#[from] FieldError),
}

/// Parses the JSON after `c:` (reference §5.4), checking fields in Pushpin's order so the
/// first problem reported is Pushpin's.
///
/// Field reading follows Pushpin's variant rules: a JSON `null` is a present value of the
/// wrong type; `timeout` accepts numbers (rounded), booleans and strings (non-numeric text is
/// 0, so `"abc"` means the default); `content-bin` is decoded with Pushpin's lenient base64 and
/// wins over `content`; `message-type` defaults to text even for `content-bin`
/// **[observed 1.36]**; `timeout` is only read when there is content, and a negative one is an
/// error rather than the default.
pub fn parse(json: &[u8]) -> Result<ControlMessage, ControlError> {
    let doc: serde_json::Value =
        serde_json::from_slice(json).map_err(|_| ControlError::InvalidJson)?;
    if !(doc.is_object() || doc.is_array()) {
        return Err(ControlError::InvalidJson);
    }
    let root = Var::Json(&doc);
    if !root.is_object() {
        return Err(FieldError::NotAnObject(PACKET).into());
    }

    let kind = root.string(OBJECT, "type", true)?.unwrap_or_default();
    Ok(match kind.as_str() {
        "subscribe" => ControlMessage::Subscribe {
            channel: channel(root)?,
            filters: match root.list(OBJECT, "filters", false)? {
                Some(items) => Var::string_list(&items, "filters", "value")?,
                None => Vec::new(),
            },
        },
        "unsubscribe" => ControlMessage::Unsubscribe {
            channel: channel(root)?,
        },
        "detach" => ControlMessage::Detach,
        "session" => ControlMessage::Session {
            id: root
                .string(OBJECT, "id", false)?
                .filter(|id| !id.is_empty()),
        },
        "set-meta" => {
            let name = root.string(OBJECT, "name", true)?.unwrap_or_default();
            if name.is_empty() {
                return Err(invalid("name").into());
            }
            ControlMessage::SetMeta {
                name,
                value: root.string(OBJECT, "value", false)?,
            }
        }
        "keep-alive" => {
            let (kind, content, timeout) = message_fields(root)?;
            let mode = match root.string(OBJECT, "mode", false)?.as_deref() {
                Some("interval") => KeepAliveMode::Interval,
                _ => KeepAliveMode::Idle,
            };
            ControlMessage::KeepAlive {
                content: content.map(|c| (kind, c)),
                timeout: timeout.unwrap_or(DEFAULT_KEEP_ALIVE_TIMEOUT),
                mode,
            }
        }
        "send-delayed" => {
            let (kind, content, timeout) = message_fields(root)?;
            ControlMessage::SendDelayed {
                content: content.unwrap_or_default(),
                kind,
                timeout: timeout.unwrap_or(DEFAULT_SEND_DELAYED_TIMEOUT),
            }
        }
        "flush-delayed" => ControlMessage::FlushDelayed,
        _ => ControlMessage::Unknown(kind),
    })
}

fn channel(root: Var<'_>) -> Result<String, FieldError> {
    let channel = root.string(OBJECT, "channel", true)?.unwrap_or_default();
    if channel.is_empty() {
        return Err(invalid("channel"));
    }
    Ok(channel)
}

/// `message-type`, the content (if any) and a positive `timeout` (if given) of `keep-alive`
/// and `send-delayed`.
fn message_fields(
    root: Var<'_>,
) -> Result<(WsContentKind, Option<Bytes>, Option<u32>), FieldError> {
    let kind = match root.string(OBJECT, "message-type", false)?.as_deref() {
        None | Some("text") => WsContentKind::Text,
        Some("binary") => WsContentKind::Binary,
        Some("ping") => WsContentKind::Ping,
        Some("pong") => WsContentKind::Pong,
        Some(_) => {
            return Err(FieldError::UnknownValue {
                parent: OBJECT,
                field: "message-type",
            })
        }
    };

    let content = if let Some(bin) = root.get("content-bin") {
        let text = bin
            .as_str()
            .ok_or_else(|| FieldError::wrong_type(OBJECT, "content-bin"))?;
        Some(Bytes::from(base64::decode_lenient(text.as_bytes())))
    } else if let Some(content) = root.get("content") {
        let bytes = content
            .as_bytes()
            .ok_or_else(|| FieldError::wrong_type(OBJECT, "content"))?;
        Some(Bytes::copy_from_slice(bytes))
    } else {
        None
    };

    let mut timeout = None;
    if content.is_some() {
        if let Some(t) = root.int(OBJECT, "timeout")? {
            // Zero means "use the default"; negative is an error.
            timeout = match u32::try_from(t) {
                Ok(0) => None,
                Ok(t) => Some(t),
                Err(_) => return Err(invalid("timeout")),
            };
        }
    }
    Ok((kind, content, timeout))
}

fn invalid(field: &'static str) -> FieldError {
    FieldError::InvalidValue {
        parent: OBJECT,
        field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> ControlMessage {
        parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn err(json: &str) -> String {
        match parse(json.as_bytes()) {
            Ok(m) => panic!("{json} parsed as {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn ext(values: &[&str]) -> Option<GripExtension> {
        let headers: Vec<Header> = values
            .iter()
            .map(|v| Header::new("Sec-WebSocket-Extensions", v.to_string()))
            .collect();
        parse_grip_extension(&headers)
    }

    fn prefix(p: &str) -> Option<GripExtension> {
        Some(GripExtension {
            message_prefix: p.into(),
        })
    }

    /// Each header and what Pushpin 1.36 logged (`grip enabled, message-prefix=[…]`, or
    /// nothing).
    #[test]
    fn grip_extension_observed_on_1_36() {
        let cases: Vec<(&[&str], Option<GripExtension>)> = vec![
            (&["grip"], prefix("m:")),
            (&["grip; message-prefix="], None),
            (&["Grip"], None),
            (&[r#"grip; message-prefix="""#], prefix("")),
            (&["grip; message-prefix"], prefix("")),
            (
                &["permessage-deflate, grip; message-prefix=x:"],
                prefix("x:"),
            ),
            (&["grip ; message-prefix = y: "], prefix("y:")),
            (&["grip; Message-Prefix=z:"], prefix("m:")),
            (
                &["grip; message-prefix=a:; message-prefix=b:"],
                prefix("b:"),
            ),
            (&[r#"grip;message-prefix="q,r""#], prefix("q,r")),
            (&["foo", "grip; message-prefix=t:"], prefix("t:")),
            (&["grip;"], prefix("m:")),
            (&["grip; message-prefix=p:; x="], None),
            (&[r#"grip; message-prefix="a\"b""#], prefix("a\"b")),
            (&["grip, grip; message-prefix=w:"], prefix("m:")),
            (&[r#"grip; message-prefix="unterminated"#], None),
            (&["grip; message-prefix=p:; x"], prefix("p:")),
        ];
        for (values, expected) in cases {
            assert_eq!(ext(values), expected, "{values:?}");
        }
    }

    #[test]
    fn grip_extension_edge_cases() {
        assert_eq!(ext(&[]), None);
        assert_eq!(ext(&["permessage-deflate"]), None);
        assert_eq!(ext(&["gripx"]), None);
        assert_eq!(ext(&["grip-x; message-prefix=a"]), None);
        // Header names match in any case.
        let headers = vec![Header::new(
            "sec-websocket-extensions",
            "grip; message-prefix=k",
        )];
        assert_eq!(parse_grip_extension(&headers), prefix("k"));
        // A trailing '=' inside a value, or after a quoted value, is fine.
        assert_eq!(ext(&["grip; message-prefix=a="]), prefix("a="));
        assert_eq!(ext(&["grip; message-prefix=a ="]), prefix("a ="));
        assert_eq!(ext(&[r#"grip; message-prefix="" junk="#]), prefix(""));
        assert_eq!(ext(&["grip; message-prefix=a; x =  ="]), prefix("a"));
        assert_eq!(ext(&["grip; x =", "grip"]), None);
        // A quoted comma does not split the header.
        assert_eq!(ext(&[r#"a; p="x,grip", grip"#]), prefix("m:"));
        assert_eq!(GripExtension::default(), prefix("m:").unwrap());
    }

    #[test]
    fn classify_grip_messages() {
        let g = GripExtension::default();
        let b = |s: &'static [u8]| Bytes::from_static(s);
        use OriginMessage::*;
        let cases = [
            (WsContentKind::Text, b(b"m:hi"), Deliver(b(b"hi"))),
            (WsContentKind::Text, b(b"noprefx"), Drop),
            (WsContentKind::Text, b(b""), Drop),
            (WsContentKind::Binary, b(b"m:bin"), Deliver(b(b"bin"))),
            (WsContentKind::Binary, b(b"c:{}"), Drop),
            (WsContentKind::Text, b(b"m:"), Deliver(b(b""))),
            (
                WsContentKind::Text,
                b(br#"c:{"type":"detach"}"#),
                Control(b(br#"{"type":"detach"}"#)),
            ),
            (WsContentKind::Text, b(b"c:"), Control(b(b""))),
            (WsContentKind::Ping, b(b"xy"), Deliver(b(b"xy"))),
            (WsContentKind::Pong, b(b""), Deliver(b(b""))),
        ];
        for (kind, msg, expected) in cases {
            assert_eq!(classify(&g, kind, &msg, true), expected, "{kind:?} {msg:?}");
        }
        assert_eq!(classify(&g, WsContentKind::Text, &b(b"c:{}"), false), Drop);
        // Control wins over a prefix of "c:"; an empty prefix delivers everything.
        let c = GripExtension {
            message_prefix: "c:".into(),
        };
        assert_eq!(
            classify(&c, WsContentKind::Text, &b(b"c:x"), true),
            Control(b(b"x"))
        );
        assert_eq!(
            classify(&c, WsContentKind::Binary, &b(b"c:x"), true),
            Deliver(b(b"x"))
        );
        let empty = GripExtension {
            message_prefix: String::new(),
        };
        assert_eq!(
            classify(&empty, WsContentKind::Text, &b(b"raw"), true),
            Deliver(b(b"raw"))
        );
    }

    /// A 16,050-byte `c:` subscribe reached the handler; a 17,050-byte one did not
    /// [observed 1.36].
    #[test]
    fn classify_woh_frame_limit() {
        let g = GripExtension::default();
        let make = |len: usize| {
            let mut m = b"c:".to_vec();
            m.resize(len, b' ');
            Bytes::from(m)
        };
        assert!(matches!(
            classify_woh(&g, WsContentKind::Text, &make(FRAME_SIZE_MAX)),
            OriginMessage::Control(c) if c.len() == FRAME_SIZE_MAX - 2
        ));
        assert_eq!(
            classify_woh(&g, WsContentKind::Text, &make(FRAME_SIZE_MAX + 1)),
            OriginMessage::Drop
        );
        let mut long = b"m:".to_vec();
        long.resize(FRAME_SIZE_MAX * 3, b'x');
        assert!(matches!(
            classify_woh(&g, WsContentKind::Text, &Bytes::from(long)),
            OriginMessage::Deliver(d) if d.len() == FRAME_SIZE_MAX * 3 - 2
        ));
    }

    #[test]
    fn parses_each_type() {
        assert_eq!(
            ok(r#"{"type":"subscribe","channel":"ch1"}"#),
            ControlMessage::Subscribe {
                channel: "ch1".into(),
                filters: vec![]
            }
        );
        assert_eq!(
            ok(r#"{"type":"subscribe","channel":"c","filters":["skip-self","build-id"]}"#),
            ControlMessage::Subscribe {
                channel: "c".into(),
                filters: vec!["skip-self".into(), "build-id".into()]
            }
        );
        assert_eq!(
            ok(r#"{"type":"unsubscribe","channel":"ch1","filters":5}"#),
            ControlMessage::Unsubscribe {
                channel: "ch1".into()
            }
        );
        assert_eq!(ok(r#"{"type":"detach"}"#), ControlMessage::Detach);
        assert_eq!(
            ok(r#"{"type":"flush-delayed"}"#),
            ControlMessage::FlushDelayed
        );
        assert_eq!(
            ok(r#"{"type":"session","id":"s1"}"#),
            ControlMessage::Session {
                id: Some("s1".into())
            }
        );
        assert_eq!(
            ok(r#"{"type":"session","id":""}"#),
            ControlMessage::Session { id: None }
        );
        assert_eq!(
            ok(r#"{"type":"session"}"#),
            ControlMessage::Session { id: None }
        );
        assert_eq!(
            ok(r#"{"type":"set-meta","name":"u","value":"alice"}"#),
            ControlMessage::SetMeta {
                name: "u".into(),
                value: Some("alice".into())
            }
        );
        assert_eq!(
            ok(r#"{"type":"set-meta","name":"u"}"#),
            ControlMessage::SetMeta {
                name: "u".into(),
                value: None
            }
        );
        assert_eq!(
            ok(r#"{"type":"set-meta","name":"u","value":""}"#),
            ControlMessage::SetMeta {
                name: "u".into(),
                value: Some(String::new())
            }
        );
        assert_eq!(
            ok(r#"{"type":"bogus"}"#),
            ControlMessage::Unknown("bogus".into())
        );
        assert_eq!(
            ok(r#"{"type":"auto-respond","x":[]}"#),
            ControlMessage::Unknown("auto-respond".into())
        );
        assert_eq!(ok(r#"{"type":""}"#), ControlMessage::Unknown(String::new()));
        // Types are case-sensitive.
        assert_eq!(
            ok(r#"{"type":"Detach"}"#),
            ControlMessage::Unknown("Detach".into())
        );
    }

    #[test]
    fn keep_alive() {
        // content-bin without message-type is sent as text [observed 1.36].
        assert_eq!(
            ok(r#"{"type":"keep-alive","content-bin":"aGk=","timeout":1}"#),
            ControlMessage::KeepAlive {
                content: Some((WsContentKind::Text, Bytes::from_static(b"hi"))),
                timeout: 1,
                mode: KeepAliveMode::Idle
            }
        );
        assert_eq!(
            ok(r#"{"type":"keep-alive","content":"ka","message-type":"ping","mode":"interval"}"#),
            ControlMessage::KeepAlive {
                content: Some((WsContentKind::Ping, Bytes::from_static(b"ka"))),
                timeout: 55,
                mode: KeepAliveMode::Interval
            }
        );
        // No content: keep-alives off; timeout is not even read [observed 1.36].
        for json in [
            r#"{"type":"keep-alive"}"#,
            r#"{"type":"keep-alive","timeout":[1]}"#,
            r#"{"type":"keep-alive","timeout":-5,"message-type":"binary"}"#,
        ] {
            assert!(
                matches!(ok(json), ControlMessage::KeepAlive { content: None, .. }),
                "{json}"
            );
        }
        let ka = |json: &str| match ok(json) {
            ControlMessage::KeepAlive {
                content,
                timeout,
                mode,
            } => (content, timeout, mode),
            other => panic!("{other:?}"),
        };
        // content-bin wins over content; empty content is still content.
        assert_eq!(
            ka(r#"{"type":"keep-alive","content":"a","content-bin":"Yg==","message-type":"binary"}"#).0,
            Some((WsContentKind::Binary, Bytes::from_static(b"b")))
        );
        assert_eq!(
            ka(r#"{"type":"keep-alive","content":""}"#).0,
            Some((WsContentKind::Text, Bytes::new()))
        );
        // Pushpin's lenient base64.
        assert_eq!(
            ka(r#"{"type":"keep-alive","content-bin":"aGk=!!x"}"#).0,
            Some((WsContentKind::Text, Bytes::from_static(b"hi1")))
        );
        // Timeouts: 0 and non-numeric strings mean the default; numbers round like Qt.
        for (t, expected) in [
            ("0", 55),
            ("\"abc\"", 55),
            ("\"7\"", 7),
            ("true", 1),
            ("2.5", 3),
            ("-0.4", 55),
            ("3600", 3600),
        ] {
            let json = format!(r#"{{"type":"keep-alive","content":"x","timeout":{t}}}"#);
            assert_eq!(ka(&json).1, expected, "{t}");
        }
        // Any mode other than "interval" is idle.
        assert_eq!(
            ka(r#"{"type":"keep-alive","content":"x","mode":"INTERVAL"}"#).2,
            KeepAliveMode::Idle
        );
    }

    #[test]
    fn send_delayed() {
        assert_eq!(
            ok(r#"{"type":"send-delayed","content":"dl"}"#),
            ControlMessage::SendDelayed {
                content: Bytes::from_static(b"dl"),
                kind: WsContentKind::Text,
                timeout: 1
            }
        );
        // "abc" converts to 0: the default one second [observed 1.36].
        assert_eq!(
            ok(r#"{"type":"send-delayed","content":"dl","timeout":"abc"}"#),
            ControlMessage::SendDelayed {
                content: Bytes::from_static(b"dl"),
                kind: WsContentKind::Text,
                timeout: 1
            }
        );
        assert_eq!(
            ok(
                r#"{"type":"send-delayed","content-bin":"AAE=","message-type":"binary","timeout":30}"#
            ),
            ControlMessage::SendDelayed {
                content: Bytes::from_static(b"\x00\x01"),
                kind: WsContentKind::Binary,
                timeout: 30
            }
        );
        assert_eq!(
            ok(r#"{"type":"send-delayed","message-type":"pong","timeout":"x"}"#),
            ControlMessage::SendDelayed {
                content: Bytes::new(),
                kind: WsContentKind::Pong,
                timeout: 1
            }
        );
    }

    /// Every text below is what Pushpin 1.36's handler logged for the same input.
    #[test]
    fn ignored_messages_observed_on_1_36() {
        let cases = [
            ("not json", "grip control message is not valid json"),
            (r#""str""#, "grip control message is not valid json"),
            (
                "[1]",
                "failed to parse grip control message: grip control packet is not an object",
            ),
            (
                r#"{"type":"set-meta","name":"u","value":null}"#,
                "failed to parse grip control message: grip control object contains 'value' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","content":"ka","timeout":-1}"#,
                "failed to parse grip control message: grip control object contains 'timeout' with invalid value",
            ),
            (
                r#"{"type":"subscribe","channel":""}"#,
                "failed to parse grip control message: grip control object contains 'channel' with invalid value",
            ),
            (
                r#"{"type":"subscribe","channel":"ch2","filters":[1]}"#,
                "failed to parse grip control message: filters contains value with wrong type",
            ),
            (
                r#"{"type":"subscribe"}"#,
                "failed to parse grip control message: grip control object does not contain 'channel'",
            ),
            (
                r#"{"type":5}"#,
                "failed to parse grip control message: grip control object contains 'type' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","content":"ka","message-type":"TEXT"}"#,
                "failed to parse grip control message: grip control object contains 'message-type' with unknown value",
            ),
            (
                r#"{"type":"subscribe","channel":"ch3","filters":5}"#,
                "failed to parse grip control message: grip control object contains 'filters' with wrong type",
            ),
            (
                r#"{"type":"send-delayed","content":"dl","timeout":[1]}"#,
                "failed to parse grip control message: grip control object contains 'timeout' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","content":5}"#,
                "failed to parse grip control message: grip control object contains 'content' with wrong type",
            ),
            (
                r#"{"type":"session","id":null}"#,
                "failed to parse grip control message: grip control object contains 'id' with wrong type",
            ),
        ];
        for (json, message) in cases {
            assert_eq!(err(json), message, "{json}");
        }
    }

    #[test]
    fn ignored_messages_from_source() {
        let cases = [
            ("", "grip control message is not valid json"),
            ("5", "grip control message is not valid json"),
            ("null", "grip control message is not valid json"),
            (r#"{"type":"detach"} x"#, "grip control message is not valid json"),
            (
                "{}",
                "failed to parse grip control message: grip control object does not contain 'type'",
            ),
            (
                r#"{"type":"set-meta","name":""}"#,
                "failed to parse grip control message: grip control object contains 'name' with invalid value",
            ),
            (
                r#"{"type":"set-meta"}"#,
                "failed to parse grip control message: grip control object does not contain 'name'",
            ),
            (
                r#"{"type":"unsubscribe","channel":7}"#,
                "failed to parse grip control message: grip control object contains 'channel' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","content-bin":5}"#,
                "failed to parse grip control message: grip control object contains 'content-bin' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","content":"x","mode":1}"#,
                "failed to parse grip control message: grip control object contains 'mode' with wrong type",
            ),
            (
                r#"{"type":"keep-alive","mode":null}"#,
                "failed to parse grip control message: grip control object contains 'mode' with wrong type",
            ),
            (
                r#"{"type":"send-delayed","message-type":null}"#,
                "failed to parse grip control message: grip control object contains 'message-type' with wrong type",
            ),
            // message-type is checked before the content.
            (
                r#"{"type":"send-delayed","content":5,"message-type":"x"}"#,
                "failed to parse grip control message: grip control object contains 'message-type' with unknown value",
            ),
        ];
        for (json, message) in cases {
            assert_eq!(err(json), message, "{json}");
        }
        assert_eq!(parse(b"\xff"), Err(ControlError::InvalidJson));
        assert_eq!(
            parse(b"[]"),
            Err(ControlError::Invalid(FieldError::NotAnObject(
                "grip control packet"
            )))
        );
    }
}
