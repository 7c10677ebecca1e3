//! GRIP instructions from an origin response (reference §4.2, §4.3): [`Instruct::parse`].
//!
//! The parse follows Pushpin's `Instruct::fromResponse` step for step, in the same order, so
//! the first problem reported is the one Pushpin reports: `Grip-Hold`, `Grip-Channel`,
//! `Grip-Timeout`, `Grip-Expose-Headers`, `Grip-Keep-Alive`, `Grip-Set-Meta`, `Grip-Status`,
//! `Grip-Link`, then the `application/grip-instruct` JSON body, whose values override or extend
//! the header-based ones. Defaults and clamps are applied last.
//!
//! Where Holdfast deliberately differs from Pushpin 1.36 (each also noted at the item):
//! - A `Grip-Channel` element with an empty name (`a,,b`, `;x`) is an error (`failed to parse
//!   Grip-Channel`), as the reference specifies; 1.36 silently subscribes to the empty channel.
//! - `rel=gone` links are parsed (Pushpin ≥1.41); 1.36 ignores them.
//! - `Grip-*` headers given in a JSON instruct's `response.headers` are removed too; 1.36 lets
//!   them through to the client.
//! - `Grip-Keep-Alive` data that decodes to nothing (`format=base64` of junk) yields no
//!   keep-alive rather than a keep-alive of zero bytes.
//!
//! Like 1.36 (and unlike HEAD), a channel may carry any number of `filter` parameters: the
//! header size limit bounds them.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::grip::base64;
use crate::grip::headers::{self, parse_qt_int, HeaderParams, ParseMode};
use crate::grip::status::reason_phrase;
use crate::grip::url;
use crate::grip::variant::FieldError;
use crate::internal::Header;

/// Response-hold timeout when none is given, in seconds.
pub const DEFAULT_TIMEOUT: u32 = 55;
/// Shortest response-hold timeout; smaller values are raised to it.
pub const MINIMUM_TIMEOUT: u32 = 5;
/// Keep-alive interval when none is given, in seconds.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: u32 = 55;
/// Shortest keep-alive interval; smaller values are raised to it.
pub const MINIMUM_KEEP_ALIVE_TIMEOUT: u32 = 1;
/// Next-link recovery timeout when none is given, in seconds.
pub const DEFAULT_NEXT_LINK_TIMEOUT: u32 = 120;

/// Response headers the handler never relays from an instruct (besides `Grip-*`): hop-by-hop
/// and framing headers, because the handler re-frames (and may re-encode) the body itself.
pub const DROPPED_HEADERS: [&str; 5] = [
    "Connection",
    "Keep-Alive",
    "Content-Encoding",
    "Transfer-Encoding",
    "Content-Length",
];

/// An origin response as the instruct parser reads it. Headers use the crate's common
/// [`Header`] type (name as received, raw value bytes), the same type the handler sends to the
/// connmgr, so the emitted response needs no conversion.
#[derive(Clone, Copy, Debug)]
pub struct OriginResponse<'a> {
    /// Status code.
    pub code: u16,
    /// Reason phrase as received.
    pub reason: &'a str,
    /// Headers in order.
    pub headers: &'a [Header],
    /// The complete body.
    pub body: &'a [u8],
}

/// True if Pushpin would treat this origin response as GRIP (reference §4.1): the first
/// `Content-Type`'s media type is exactly `application/grip-instruct` (case-sensitive, like
/// Pushpin), or some header name starts with `Grip-` (any case). The caller handles the
/// passthrough cases (trusted client, `no_grip` route, internal request).
pub fn is_grip_response(headers: &[Header]) -> bool {
    is_instruct_content_type(headers)
        || headers
            .iter()
            .any(|h| h.0.len() >= 5 && h.0.as_bytes()[..5].eq_ignore_ascii_case(b"grip-"))
}

/// True if the first `Content-Type` header's media type is `application/grip-instruct`.
pub fn is_instruct_content_type(headers: &[Header]) -> bool {
    headers::single_params(headers, "Content-Type", ParseMode::FirstIsToken)
        .is_some_and(|p| p.first() == b"application/grip-instruct")
}

/// How the handler holds the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldMode {
    /// Long-polling: nothing is sent until a publish or the timeout.
    Response,
    /// Streaming: the response starts now and publishes are appended.
    Stream,
}

/// A channel to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Channel name, without the route's prefix.
    pub name: String,
    /// Id of the last item the client has seen on this channel (`prev-id`).
    pub prev_id: Option<String>,
    /// Filter names in order (`filter=` parameters or JSON `filters`); unknown names are kept
    /// for the filter stack to ignore.
    pub filters: Vec<String>,
}

/// When keep-alive data is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAliveMode {
    /// After `timeout` seconds without anything sent to the client.
    Idle,
    /// Every `timeout` seconds regardless of other output.
    Interval,
}

/// Stream-hold keep-alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Bytes to write (never empty).
    pub data: Bytes,
    /// Seconds, at least [`MINIMUM_KEEP_ALIVE_TIMEOUT`].
    pub timeout: u32,
    /// Timer behaviour. A keep-alive set only by the JSON body has no mode in Pushpin, which
    /// then never restarts the timer on data, i.e. [`KeepAliveMode::Interval`] (reference §12.2).
    pub mode: KeepAliveMode,
}

/// A `rel=next` link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextLink {
    /// Absolute URL (resolved against the request URI).
    pub url: String,
    /// Recovery timeout in seconds (`timeout=`, default [`DEFAULT_NEXT_LINK_TIMEOUT`]).
    pub timeout: u32,
}

/// The response the instruct asks the handler to emit: the initial stream response, the
/// timeout response of a response hold, or the whole response without a hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstructResponse {
    /// Status code (after `Grip-Status` or JSON `response.code`).
    pub code: u16,
    /// Reason phrase; the standard phrase for the code when none was given.
    pub reason: String,
    /// Headers without any `Grip-*` header and without [`DROPPED_HEADERS`], filtered by
    /// `Grip-Expose-Headers` when present.
    pub headers: Vec<Header>,
    /// Body.
    pub body: Bytes,
}

/// Everything an origin's GRIP response instructs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruct {
    /// `None`: no hold (the response is relayed, or streamed while following a next link).
    pub hold: Option<HoldMode>,
    /// Channels in order, header ones first, then JSON ones.
    pub channels: Vec<Channel>,
    /// Response-hold timeout in seconds, at least [`MINIMUM_TIMEOUT`].
    pub timeout: u32,
    /// Stream keep-alive.
    pub keep_alive: Option<KeepAlive>,
    /// Subscription meta variables (`Grip-Set-Meta`, JSON `hold.meta`); later values win.
    pub meta: BTreeMap<String, String>,
    /// `Grip-Link: <…>; rel=next` (the last one given).
    pub next_link: Option<NextLink>,
    /// `Grip-Link: <…>; rel=gone` (the last one given), absolute.
    pub gone_link: Option<String>,
    /// `Grip-Expose-Headers` names, as given.
    pub expose_headers: Vec<String>,
    /// `Grip-Session-Id`.
    pub session_id: Option<String>,
    /// The response to emit.
    pub response: InstructResponse,
}

/// Why an instruct is invalid. The Display text is Pushpin's message, which the handler shows
/// as `Failed to parse accept instructions: <text>` on debug routes (502 otherwise).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstructError {
    /// A `Grip-Channel` element has an empty name.
    #[error("failed to parse Grip-Channel")]
    ChannelEmpty,
    /// A stream hold gives a channel a `prev-id` but there is no next link to recover from.
    /// Reported by [`Instruct::check_prev_ids`], not by [`Instruct::parse`].
    #[error("channel '{0}' specifies prev-id, but no next link found")]
    ChannelPrevIdWithoutNextLink(String),
    /// A JSON instruct field is malformed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// `Grip-Hold` is neither `response` nor `stream`.
    #[error("Grip-Hold must be set to either 'response' or 'stream'")]
    HoldInvalid,
    /// JSON `hold.mode` is neither `response` nor `stream`.
    #[error("hold 'mode' must be set to either 'response' or 'stream'")]
    HoldModeInvalid,
    /// A JSON instruct came with a status other than 200.
    #[error("response code for application/grip-instruct content must be 200")]
    InstructCode,
    /// The JSON instruct body is not JSON (or a bare scalar, which Qt's parser refuses).
    #[error("failed to parse application/grip-instruct content as JSON")]
    InstructJson,
    /// The JSON instruct is an array.
    #[error("instruct must be an object")]
    InstructNotObject,
    /// `Grip-Keep-Alive` data is empty.
    #[error("Grip-Keep-Alive cannot be empty")]
    KeepAliveEmpty,
    /// `format=cstring` data is malformed (or decodes to nothing).
    #[error("failed to parse Grip-Keep-Alive cstring format")]
    KeepAliveCstring,
    /// Unknown `format=`.
    #[error("no such Grip-Keep-Alive format '{0}'")]
    KeepAliveFormat(String),
    /// Unknown `mode=`.
    #[error("no such Grip-Keep-Alive mode '{0}'")]
    KeepAliveMode(String),
    /// Negative keep-alive `timeout=`.
    #[error("Grip-Keep-Alive timeout has invalid value")]
    KeepAliveTimeoutInvalid,
    /// Non-integer keep-alive `timeout=`.
    #[error("failed to parse Grip-Keep-Alive timeout value")]
    KeepAliveTimeoutParse,
    /// A next or gone link is not a valid URL.
    #[error("Grip-Link contains invalid link")]
    LinkInvalid,
    /// Negative link `timeout=`.
    #[error("Grip-Link timeout has invalid value")]
    LinkTimeoutInvalid,
    /// Non-integer link `timeout=`.
    #[error("failed to parse Grip-Link timeout value")]
    LinkTimeoutParse,
    /// A link is not wrapped in `<…>`.
    #[error("failed to parse Grip-Link value")]
    LinkValue,
    /// JSON `response` is not an object. Pushpin reports this with an empty message.
    #[error("")]
    ResponseNotObject,
    /// A `Grip-Set-Meta` element is empty.
    #[error("Grip-Set-Meta cannot be empty")]
    SetMetaEmpty,
    /// `Grip-Status` code is not an integer in 0–999.
    #[error("Grip-Status contains invalid status code")]
    StatusInvalid,
    /// Negative `Grip-Timeout`.
    #[error("Grip-Timeout has invalid value")]
    TimeoutInvalid,
    /// Non-integer `Grip-Timeout`.
    #[error("failed to parse Grip-Timeout")]
    TimeoutParse,
}

/// Values collected while parsing, before defaults and clamps.
#[derive(Default)]
pub(crate) struct Draft {
    pub(crate) hold: Option<HoldMode>,
    pub(crate) channels: Vec<Channel>,
    pub(crate) timeout: Option<i32>,
    pub(crate) keep_alive_data: Vec<u8>,
    pub(crate) keep_alive_timeout: Option<i32>,
    pub(crate) keep_alive_mode: Option<KeepAliveMode>,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) headers: Vec<Header>,
    pub(crate) body: Vec<u8>,
}

impl Instruct {
    /// Parses the GRIP instructions of an origin response. `request_uri` is the client's
    /// absolute request URI (`http://host/path?query`); relative links resolve against it.
    pub fn parse(response: &OriginResponse<'_>, request_uri: &str) -> Result<Self, InstructError> {
        let h = response.headers;
        let mut d = Draft {
            code: response.code,
            reason: response.reason.to_string(),
            body: response.body.to_vec(),
            ..Draft::default()
        };

        if let Some(value) = headers::first_value(h, "Grip-Hold") {
            d.hold = Some(match value {
                b"response" => HoldMode::Response,
                b"stream" => HoldMode::Stream,
                _ => return Err(InstructError::HoldInvalid),
            });
        }

        for params in headers::all_params(h, "Grip-Channel", ParseMode::FirstIsToken) {
            d.channels.push(channel_from_header(&params)?);
        }

        if let Some(value) = headers::first_value(h, "Grip-Timeout") {
            let timeout = parse_qt_int(value).ok_or(InstructError::TimeoutParse)?;
            if timeout < 0 {
                return Err(InstructError::TimeoutInvalid);
            }
            d.timeout = Some(timeout);
        }

        let expose_headers: Vec<String> = headers::all_values(h, "Grip-Expose-Headers")
            .into_iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();

        if let Some(params) = headers::single_params(h, "Grip-Keep-Alive", ParseMode::FirstIsToken)
        {
            keep_alive_from_header(&params, &mut d)?;
        }

        for params in headers::all_params(h, "Grip-Set-Meta", ParseMode::AllParams) {
            let Some(first) = params.0.first() else {
                return Err(InstructError::SetMetaEmpty);
            };
            d.meta.insert(
                lossy(&first.name),
                lossy(first.value.as_deref().unwrap_or_default()),
            );
        }

        if let Some(status) = headers::first_value(h, "Grip-Status").filter(|s| !s.is_empty()) {
            let (code, reason) = match status.iter().position(|&c| c == b' ') {
                Some(at) => (&status[..at], &status[at + 1..]),
                None => (status, &b""[..]),
            };
            d.code = parse_qt_int(code)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| *c <= 999)
                .ok_or(InstructError::StatusInvalid)?;
            d.reason = lossy(reason);
        }

        let (next_link, gone_link) = links_from_headers(h, request_uri)?;

        d.headers = h
            .iter()
            .filter(|hd| !is_grip_header(hd))
            .filter(|hd| expose_headers.is_empty() || expose_headers.iter().any(|e| hd.is(e)))
            .cloned()
            .collect();

        if is_instruct_content_type(h) {
            if response.code != 200 {
                return Err(InstructError::InstructCode);
            }
            crate::grip::instruct_json::apply(response.body, &mut d)?;
        }

        Ok(d.finish(next_link, gone_link, expose_headers, h))
    }

    /// Pushpin's check before a stream hold starts (or resumes after a next link): a channel
    /// with a `prev-id` needs a next link to recover from. Pushpin reports this after the
    /// response has started (debug routes append `\n\n<message>\n` and close), so the handler
    /// calls it at that point rather than failing the instruct.
    pub fn check_prev_ids(&self) -> Result<(), InstructError> {
        if self.hold == Some(HoldMode::Stream) && self.next_link.is_none() {
            if let Some(c) = self.channels.iter().find(|c| c.prev_id.is_some()) {
                return Err(InstructError::ChannelPrevIdWithoutNextLink(c.name.clone()));
            }
        }
        Ok(())
    }
}

impl Draft {
    fn finish(
        self,
        next_link: Option<NextLink>,
        gone_link: Option<String>,
        expose_headers: Vec<String>,
        origin_headers: &[Header],
    ) -> Instruct {
        let timeout = self
            .timeout
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
            .max(MINIMUM_TIMEOUT);
        let keep_alive = match self.keep_alive_timeout {
            Some(t) if !self.keep_alive_data.is_empty() => Some(KeepAlive {
                data: Bytes::from(self.keep_alive_data),
                timeout: u32::try_from(t)
                    .unwrap_or(0)
                    .max(MINIMUM_KEEP_ALIVE_TIMEOUT),
                mode: self.keep_alive_mode.unwrap_or(KeepAliveMode::Interval),
            }),
            _ => None,
        };
        let reason = if self.reason.is_empty() {
            reason_phrase(self.code).to_string()
        } else {
            self.reason
        };
        let headers = self
            .headers
            .into_iter()
            .filter(|hd| !is_grip_header(hd) && !DROPPED_HEADERS.iter().any(|n| hd.is(n)))
            .collect();
        Instruct {
            hold: self.hold,
            channels: self.channels,
            timeout,
            keep_alive,
            meta: self.meta,
            next_link,
            gone_link,
            expose_headers,
            session_id: headers::first_value(origin_headers, "Grip-Session-Id").map(lossy),
            response: InstructResponse {
                code: self.code,
                reason,
                headers,
                body: Bytes::from(self.body),
            },
        }
    }
}

fn channel_from_header(params: &HeaderParams) -> Result<Channel, InstructError> {
    if params.first().is_empty() {
        return Err(InstructError::ChannelEmpty);
    }
    Ok(Channel {
        name: lossy(params.first()),
        prev_id: params.get("prev-id").map(lossy),
        // Pushpin matches the `filter` parameter name case-sensitively.
        filters: params.0[1..]
            .iter()
            .filter(|p| p.name == b"filter")
            .map(|p| lossy(p.value.as_deref().unwrap_or_default()))
            .collect(),
    })
}

fn keep_alive_from_header(params: &HeaderParams, d: &mut Draft) -> Result<(), InstructError> {
    let value = params.first();
    if value.is_empty() {
        return Err(InstructError::KeepAliveEmpty);
    }
    d.keep_alive_mode = Some(match params.get("mode").unwrap_or_default() {
        b"" | b"idle" => KeepAliveMode::Idle,
        b"interval" => KeepAliveMode::Interval,
        other => return Err(InstructError::KeepAliveMode(lossy(other))),
    });
    d.keep_alive_timeout = Some(if params.contains("timeout") {
        let t = parse_qt_int(params.get("timeout").unwrap_or_default())
            .ok_or(InstructError::KeepAliveTimeoutParse)?;
        if t < 0 {
            return Err(InstructError::KeepAliveTimeoutInvalid);
        }
        t
    } else {
        DEFAULT_KEEP_ALIVE_TIMEOUT as i32
    });
    d.keep_alive_data = match params.get("format").unwrap_or_default() {
        b"" | b"raw" => value.to_vec(),
        b"cstring" => decode_cstring(value)
            .filter(|v| !v.is_empty())
            .ok_or(InstructError::KeepAliveCstring)?,
        b"base64" => base64::decode_lenient(value),
        other => return Err(InstructError::KeepAliveFormat(lossy(other))),
    };
    Ok(())
}

fn links_from_headers(
    h: &[Header],
    request_uri: &str,
) -> Result<(Option<NextLink>, Option<String>), InstructError> {
    let mut next = None;
    let mut gone = None;
    for params in headers::all_params(h, "Grip-Link", ParseMode::FirstIsToken) {
        if params.0.len() < 2 {
            continue;
        }
        // Only the relations Holdfast uses are looked at, and only those are checked: 1.36
        // validates nothing else (`</x>; rel=prev` or `<http://a:b/>; rel=NEXT` pass
        // **[observed 1.36]**).
        let rel = params.get("rel").unwrap_or_default();
        if rel != b"next" && rel != b"gone" {
            continue;
        }
        let raw = params.first();
        if raw.len() <= 2 || raw[0] != b'<' || raw[raw.len() - 1] != b'>' {
            return Err(InstructError::LinkValue);
        }
        let url = std::str::from_utf8(&raw[1..raw.len() - 1])
            .ok()
            .and_then(|link| url::resolve(request_uri, link).ok())
            .ok_or(InstructError::LinkInvalid)?;
        if rel == b"gone" {
            gone = Some(url);
            continue;
        }
        let timeout = if params.contains("timeout") {
            let t = parse_qt_int(params.get("timeout").unwrap_or_default())
                .ok_or(InstructError::LinkTimeoutParse)?;
            u32::try_from(t).map_err(|_| InstructError::LinkTimeoutInvalid)?
        } else {
            DEFAULT_NEXT_LINK_TIMEOUT
        };
        next = Some(NextLink { url, timeout });
    }
    Ok((next, gone))
}

/// Decodes `format=cstring` keep-alive data: `\\`, `\r`, `\n` and `\xHH` are escapes; any other
/// escaped character disappears together with its backslash (`a\qb` → `ab` **[observed
/// 1.36]**). `None` for a trailing `\` or a short or non-hex `\x`.
pub fn decode_cstring(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut n = 0;
    while n < input.len() {
        if input[n] != b'\\' {
            out.push(input[n]);
            n += 1;
            continue;
        }
        match *input.get(n + 1)? {
            b'\\' => out.push(b'\\'),
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b'x' => {
                let hi = hex_digit(*input.get(n + 2)?)?;
                let lo = hex_digit(*input.get(n + 3)?)?;
                out.push((hi << 4) | lo);
                n += 2;
            }
            _ => {}
        }
        n += 2;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_grip_header(h: &Header) -> bool {
    h.0.len() >= 5 && h.0.as_bytes()[..5].eq_ignore_ascii_case(b"grip-")
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
