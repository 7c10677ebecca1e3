//! `holdfast-publish`: publish one item to a channel, a drop-in for Pushpin's `pushpin-publish`
//! (reference §6.9) with the same options, defaults, item shapes, output and exit codes.
//!
//! The command line ([`Args`]) becomes one publish item ([`build_item`], pure apart from the
//! injected file reader, so every option is unit-tested down to the exact JSON), which goes to
//! one of two places chosen by the spec, as in Pushpin:
//!
//! - `http://…` / `https://…`: the control API (reference §6.2), an HTTP/1.0 `POST
//!   <path>/publish/` with `{"items":[item]}` ([`http`]). Only a `200` answer counts as success;
//!   any other status prints the server's error text (`Invalid format: …`).
//! - anything else: a ZeroMQ endpoint, one bare-tnetstring frame on a PUSH socket ([`zmq`]),
//!   which Pushpin's PULL input accepts (reference §6.3).
//!
//! Success prints `Published` on stdout and exits 0; every failure prints `Error: <text>` on
//! stderr and exits 1 (including command-line errors, which is what Pushpin's clap 2 did).
//!
//! JSON and tnetstring items carry their keys in sorted order. Pushpin builds the item in hash
//! maps, so its tnetstring key order is random and its JSON order (serde_json's sorted map) is
//! the one used here; no reader depends on the order.
//!
//! Deliberate differences from `pushpin-publish` 1.36, each where Pushpin fails or hangs:
//!
//! - `--timeout` (default 10 s, `0` waits forever): Pushpin blocks forever on a ZeroMQ spec with
//!   no listener and on an HTTP server that never answers.
//! - A trailing `/` on an HTTP spec is dropped, and a query or fragment is ignored: Pushpin
//!   would POST to `//publish/` (404 `Not Found`) or put the query in the path.
//! - `https://` works (rustls, Mozilla roots from `webpki-roots` plus any certificates in the
//!   PEM file named by `SSL_CERT_FILE`); Debian's 1.36 build says TLS is unsupported.
//! - `--patch` accepts `@file` too, header and meta names are trimmed like their values, and
//!   `-u`/`-B` with a ZeroMQ spec is an error rather than silently ignored.
//! - `[::1]`-style IPv6 hosts work; Pushpin rejects them as invalid URLs.

pub mod http;
pub mod zmq;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use holdfast_proto::grip::base64;
use holdfast_proto::tnetstring::Value as Tnet;
use serde_json::{Map, Value as Json};

/// Pushpin's default control API address, used when neither `--spec` nor `$GRIP_URL` is set.
pub const DEFAULT_SPEC: &str = "http://localhost:5561";

/// The command line. Option names, value names, help texts and defaults are Pushpin's.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "holdfast-publish",
    version,
    about = "Publish messages to Pushpin (and Holdfast)"
)]
pub struct Args {
    /// Channel to send to
    #[arg(value_name = "channel")]
    pub channel: String,

    /// Content to use for HTTP body and WebSocket message (@file reads a file)
    #[arg(value_name = "content")]
    pub content: Option<String>,

    /// Payload ID
    #[arg(long, value_name = "id")]
    pub id: Option<String>,

    /// Previous payload ID
    #[arg(long = "prev-id", value_name = "id")]
    pub prev_id: Option<String>,

    /// Sender meta value
    #[arg(long, value_name = "sender")]
    pub sender: Option<String>,

    /// HTTP response code to use
    // A string, parsed in `build_item`, so a bad value gets Pushpin's message.
    #[arg(
        long,
        value_name = "code",
        default_value = "200",
        allow_hyphen_values = true
    )]
    pub code: String,

    /// Add HTTP response header
    #[arg(short = 'H', long = "header", value_name = "\"K: V\"")]
    pub headers: Vec<String>,

    /// Add meta variable
    #[arg(short = 'M', long = "meta", value_name = "\"K=V\"")]
    pub meta: Vec<String>,

    /// Send hint instead of content
    #[arg(long)]
    pub hint: bool,

    /// Close streaming and WebSocket connections
    #[arg(long)]
    pub close: bool,

    /// Content is JSON patch
    #[arg(long)]
    pub patch: bool,

    /// Bypass sequencing buffer
    #[arg(long = "no-seq")]
    pub no_seq: bool,

    /// Don't add newline to HTTP payloads
    #[arg(long = "no-eol")]
    pub no_eol: bool,

    /// GRIP URL or ZeroMQ PUSH spec
    #[arg(long, value_name = "spec", env = "GRIP_URL", default_value = DEFAULT_SPEC)]
    pub spec: String,

    /// Authenticate using basic auth (https only)
    #[arg(short = 'u', long = "user", value_name = "user:pass")]
    pub user: Option<String>,

    /// Authenticate using a bearer token (https only)
    #[arg(
        short = 'B',
        long = "bearer",
        value_name = "token",
        conflicts_with = "user"
    )]
    pub bearer: Option<String>,

    /// Give up after this many seconds without progress; 0 waits forever [Holdfast extension]
    #[arg(long, value_name = "seconds", default_value_t = 10)]
    pub timeout: u64,
}

/// Why a publish failed. `Display` is the text printed after `Error: `; where Pushpin has a
/// message for the same failure, the text starts with Pushpin's.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `--code` is not a number.
    #[error("failed to parse code: {0}")]
    CodeSyntax(#[source] std::num::ParseIntError),
    /// `--code` is above 999 (checked only when sending content, as Pushpin does).
    #[error("code must be an integer between 0 and 999")]
    CodeRange,
    /// Neither content nor `--hint`/`--close`.
    #[error("must specify content")]
    NoContent,
    /// `--patch` content is not JSON.
    #[error("patch content is not valid JSON: {0}")]
    PatchSyntax(#[source] serde_json::Error),
    /// `--patch` content is JSON but not an array of operations.
    #[error("patch content must be a JSON array")]
    PatchNotArray,
    /// A `-H` value without a `:`.
    #[error("header must be in the form \"name: value\" (got {0:?})")]
    Header(String),
    /// A `-M` value without a `=`.
    #[error("meta must be in the form \"name=value\" (got {0:?})")]
    Meta(String),
    /// `@file` content that cannot be read.
    #[error("can't read file {path}: {source}")]
    ReadFile {
        /// The file named after `@`.
        path: String,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// `-u`/`-B` with a spec that is not `https://` (credentials are never sent in clear).
    #[error("Authentication requires https")]
    AuthRequiresHttps,
    /// A `--patch` value the tnetstring encoding cannot carry (ZeroMQ specs only).
    #[error("patch content cannot be sent over ZeroMQ: {0}")]
    Tnetstring(&'static str),
    /// The HTTP spec is malformed or the control API request failed or was refused.
    #[error(transparent)]
    Http(#[from] http::HttpError),
    /// The ZeroMQ push failed.
    #[error(transparent)]
    Zmq(#[from] zmq::ZmqError),
}

/// What the item asks subscribers to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Deliver content (`action` absent, i.e. `send`).
    Send {
        /// `http-response` status code.
        code: u16,
        /// `http-response` headers, in command-line order.
        headers: Vec<(String, String)>,
        /// The payload.
        body: Body,
    },
    /// `--hint`: `action: hint` in all three formats (clients re-fetch from the origin).
    Hint,
    /// `--close`: `action: close` in `http-stream` and `ws-message` (`http-response` has no
    /// close).
    Close,
}

/// The payload of a [`Action::Send`].
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Content for all three formats. The HTTP formats get `http` (with the newline that
    /// `--no-eol` suppresses), WebSocket messages get `ws` (never a newline added).
    Content {
        /// `http-response` body and `http-stream` content.
        http: Vec<u8>,
        /// `ws-message` content.
        ws: Vec<u8>,
    },
    /// `--patch`: JSON Patch operations for `http-response` `body-patch` only (a patch makes no
    /// sense for streams or WebSocket messages).
    Patch(Vec<Json>),
}

/// One publish item, encoded with [`Item::to_json`] for HTTP and [`Item::to_tnet`] for ZeroMQ.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Channel.
    pub channel: String,
    /// `id`, absent when not given or empty (Pushpin treats `--id ""` as absent).
    pub id: Option<String>,
    /// `prev-id`, same rule.
    pub prev_id: Option<String>,
    /// `meta`: `--sender` as `sender`, then every `-M` (a later name wins).
    pub meta: BTreeMap<String, String>,
    /// `no-seq: true`.
    pub no_seq: bool,
    /// The formats to generate.
    pub action: Action,
}

/// Credentials for the control API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `-u user:pass`: `Authorization: Basic base64(user:pass)`.
    Basic(String),
    /// `-B token`: `Authorization: Bearer token`.
    Bearer(String),
}

impl Auth {
    /// The `Authorization` header value.
    pub fn header_value(&self) -> String {
        match self {
            Self::Basic(user_pass) => format!("Basic {}", base64::encode(user_pass.as_bytes())),
            Self::Bearer(token) => format!("Bearer {token}"),
        }
    }
}

/// Where the item goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The HTTP control API.
    Http(http::Url),
    /// A ZeroMQ endpoint for a PUSH socket to connect to.
    Zmq(String),
}

impl Target {
    /// Pushpin's rule: a spec starting with `http:` or `https:` is a URL, anything else a
    /// ZeroMQ endpoint (whose syntax libzmq checks on connect).
    pub fn parse(spec: &str) -> Result<Self, PublishError> {
        if spec.starts_with("http:") || spec.starts_with("https:") {
            Ok(Self::Http(http::Url::parse(spec)?))
        } else {
            Ok(Self::Zmq(spec.to_string()))
        }
    }
}

/// Everything [`send`] needs, decided before any network I/O.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The destination.
    pub target: Target,
    /// Credentials (HTTPS targets only).
    pub auth: Option<Auth>,
    /// The item.
    pub item: Item,
    /// Per-operation timeout; `None` waits forever.
    pub timeout: Option<Duration>,
}

/// Turns the command line into a [`Plan`]: the item first (so its errors come first, as in
/// Pushpin), then the spec and the credentials. `read_file` serves `@file` content.
pub fn plan(
    args: &Args,
    read_file: impl FnOnce(&Path) -> io::Result<Vec<u8>>,
) -> Result<Plan, PublishError> {
    let item = build_item(args, read_file)?;
    let target = Target::parse(&args.spec)?;
    let auth = match (&args.user, &args.bearer) {
        (Some(user), _) => Some(Auth::Basic(user.clone())),
        (None, Some(token)) => Some(Auth::Bearer(token.clone())),
        (None, None) => None,
    };
    if auth.is_some() && !matches!(&target, Target::Http(url) if url.tls) {
        return Err(PublishError::AuthRequiresHttps);
    }
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    Ok(Plan {
        target,
        auth,
        item,
        timeout,
    })
}

/// Builds the item from the command line. Checks run in Pushpin's order: code syntax, then (for
/// a send) code range, content presence and patch syntax, then headers, then meta. The one
/// difference: an `@file` is read with the content, before headers and meta are checked.
pub fn build_item(
    args: &Args,
    read_file: impl FnOnce(&Path) -> io::Result<Vec<u8>>,
) -> Result<Item, PublishError> {
    let code: u16 = args.code.parse().map_err(PublishError::CodeSyntax)?;
    let action = if args.hint {
        Action::Hint
    } else if args.close {
        Action::Close
    } else {
        if code > 999 {
            return Err(PublishError::CodeRange);
        }
        let content = args.content.as_deref().ok_or(PublishError::NoContent)?;
        let body = build_body(content, args.patch, !args.no_eol, read_file)?;
        Action::Send {
            code,
            headers: Vec::new(),
            body,
        }
    };

    let mut headers = Vec::with_capacity(args.headers.len());
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| PublishError::Header(header.clone()))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    // Pushpin parses -H even for hint/close, and drops the result (only a send has headers).
    let action = match action {
        Action::Send { code, body, .. } => Action::Send {
            code,
            headers,
            body,
        },
        other => other,
    };

    let mut meta = BTreeMap::new();
    if let Some(sender) = non_empty(&args.sender) {
        meta.insert("sender".to_string(), sender);
    }
    for entry in &args.meta {
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| PublishError::Meta(entry.clone()))?;
        meta.insert(name.trim().to_string(), value.trim().to_string());
    }

    Ok(Item {
        channel: args.channel.clone(),
        id: non_empty(&args.id),
        prev_id: non_empty(&args.prev_id),
        meta,
        no_seq: args.no_seq,
        action,
    })
}

/// The payload: `@file` is read as is (no newline added, as in Pushpin), literal content gets
/// a newline for the HTTP formats unless `--no-eol`.
fn build_body(
    content: &str,
    patch: bool,
    eol: bool,
    read_file: impl FnOnce(&Path) -> io::Result<Vec<u8>>,
) -> Result<Body, PublishError> {
    let from_file = match content.strip_prefix('@') {
        Some(name) => {
            Some(
                read_file(Path::new(name)).map_err(|source| PublishError::ReadFile {
                    path: name.to_string(),
                    source,
                })?,
            )
        }
        None => None,
    };
    if patch {
        let text = from_file.as_deref().unwrap_or(content.as_bytes());
        return match serde_json::from_slice(text).map_err(PublishError::PatchSyntax)? {
            Json::Array(ops) => Ok(Body::Patch(ops)),
            _ => Err(PublishError::PatchNotArray),
        };
    }
    Ok(match from_file {
        Some(bytes) => Body::Content {
            http: bytes.clone(),
            ws: bytes,
        },
        None => {
            let ws = content.as_bytes().to_vec();
            let mut http = ws.clone();
            if eol {
                http.push(b'\n');
            }
            Body::Content { http, ws }
        }
    })
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).cloned()
}

impl Item {
    /// The item as the control API's JSON. Byte fields that are not UTF-8 become `body-bin` /
    /// `content-bin` (base64), as Pushpin does; keys are in sorted order.
    pub fn to_json(&self) -> Json {
        let mut formats = Map::new();
        match &self.action {
            Action::Send {
                code,
                headers,
                body,
            } => {
                let mut response = Map::new();
                match body {
                    Body::Content { http, .. } => put_bytes_json(&mut response, "body", http),
                    Body::Patch(ops) => {
                        response.insert("body-patch".into(), Json::Array(ops.clone()));
                    }
                }
                response.insert("code".into(), Json::from(*code));
                if !headers.is_empty() {
                    let list = headers
                        .iter()
                        .map(|(n, v)| Json::Array(vec![n.as_str().into(), v.as_str().into()]))
                        .collect();
                    response.insert("headers".into(), Json::Array(list));
                }
                formats.insert("http-response".into(), Json::Object(response));
                if let Body::Content { http, ws } = body {
                    let mut stream = Map::new();
                    put_bytes_json(&mut stream, "content", http);
                    formats.insert("http-stream".into(), Json::Object(stream));
                    let mut message = Map::new();
                    put_bytes_json(&mut message, "content", ws);
                    formats.insert("ws-message".into(), Json::Object(message));
                }
            }
            Action::Hint | Action::Close => {
                for name in self.action_formats() {
                    let mut format = Map::new();
                    format.insert("action".into(), self.action_name().into());
                    formats.insert((*name).to_string(), Json::Object(format));
                }
            }
        }

        let mut item = Map::new();
        item.insert("channel".into(), self.channel.as_str().into());
        item.insert("formats".into(), Json::Object(formats));
        if let Some(id) = &self.id {
            item.insert("id".into(), id.as_str().into());
        }
        if !self.meta.is_empty() {
            let meta = self
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
                .collect();
            item.insert("meta".into(), Json::Object(meta));
        }
        if self.no_seq {
            item.insert("no-seq".into(), Json::Bool(true));
        }
        if let Some(prev_id) = &self.prev_id {
            item.insert("prev-id".into(), prev_id.as_str().into());
        }
        Json::Object(item)
    }

    /// The control API request body, `{"items":[item]}`.
    pub fn to_publish_body(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("items".into(), Json::Array(vec![self.to_json()]));
        Json::Object(body).to_string().into_bytes()
    }

    /// The item as a tnetstring map (the ZeroMQ frame), bytes kept raw; keys in sorted order.
    /// Fails only for a patch number outside `i64` that is not a float.
    pub fn to_tnet(&self) -> Result<Tnet, PublishError> {
        let mut formats = Vec::new();
        match &self.action {
            Action::Send {
                code,
                headers,
                body,
            } => {
                let mut response = Vec::new();
                match body {
                    Body::Content { http, .. } => {
                        response.push(("body", Tnet::bytes(http.clone())))
                    }
                    Body::Patch(ops) => {
                        let ops = ops.iter().map(json_to_tnet).collect::<Result<_, _>>()?;
                        response.push(("body-patch", Tnet::List(ops)));
                    }
                }
                response.push(("code", Tnet::Int(i64::from(*code))));
                if !headers.is_empty() {
                    let list = headers
                        .iter()
                        .map(|(n, v)| {
                            Tnet::List(vec![Tnet::bytes(n.as_str()), Tnet::bytes(v.as_str())])
                        })
                        .collect();
                    response.push(("headers", Tnet::List(list)));
                }
                formats.push(("http-response", Tnet::map(response)));
                if let Body::Content { http, ws } = body {
                    formats.push((
                        "http-stream",
                        Tnet::map([("content", Tnet::bytes(http.clone()))]),
                    ));
                    formats.push((
                        "ws-message",
                        Tnet::map([("content", Tnet::bytes(ws.clone()))]),
                    ));
                }
            }
            Action::Hint | Action::Close => {
                for name in self.action_formats() {
                    formats.push((
                        *name,
                        Tnet::map([("action", Tnet::bytes(self.action_name()))]),
                    ));
                }
            }
        }

        let mut item = vec![
            ("channel", Tnet::bytes(self.channel.as_str())),
            ("formats", Tnet::map(formats)),
        ];
        if let Some(id) = &self.id {
            item.push(("id", Tnet::bytes(id.as_str())));
        }
        if !self.meta.is_empty() {
            let meta = self
                .meta
                .iter()
                .map(|(k, v)| (k.as_str(), Tnet::bytes(v.as_str())));
            item.push(("meta", Tnet::map(meta)));
        }
        if self.no_seq {
            item.push(("no-seq", Tnet::Bool(true)));
        }
        if let Some(prev_id) = &self.prev_id {
            item.push(("prev-id", Tnet::bytes(prev_id.as_str())));
        }
        Ok(Tnet::map(item))
    }

    /// Formats that carry the `action` of a hint or close.
    fn action_formats(&self) -> &'static [&'static str] {
        match self.action {
            Action::Close => &["http-stream", "ws-message"],
            _ => &["http-response", "http-stream", "ws-message"],
        }
    }

    fn action_name(&self) -> &'static str {
        match self.action {
            Action::Close => "close",
            Action::Hint => "hint",
            Action::Send { .. } => "send",
        }
    }
}

/// Puts `key` as a JSON string, or `key-bin` as base64 when the bytes are not UTF-8.
fn put_bytes_json(map: &mut Map<String, Json>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => map.insert(key.to_string(), Json::from(text)),
        Err(_) => map.insert(format!("{key}-bin"), Json::from(base64::encode(bytes))),
    };
}

/// A JSON Patch value as tnetstring: strings become byte strings, numbers integers when they
/// fit an `i64`, else floats.
fn json_to_tnet(value: &Json) -> Result<Tnet, PublishError> {
    Ok(match value {
        Json::Null => Tnet::Null,
        Json::Bool(b) => Tnet::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.is_u64(), n.as_f64()) {
            (Some(i), _, _) => Tnet::Int(i),
            (None, true, _) => return Err(PublishError::Tnetstring("integer above i64 range")),
            (None, false, Some(f)) => Tnet::Float(f),
            (None, false, None) => return Err(PublishError::Tnetstring("unrepresentable number")),
        },
        Json::String(s) => Tnet::bytes(s.as_str()),
        Json::Array(list) => Tnet::List(list.iter().map(json_to_tnet).collect::<Result<_, _>>()?),
        Json::Object(map) => Tnet::Map(
            map.iter()
                .map(|(k, v)| Ok((k.as_bytes().to_vec(), json_to_tnet(v)?)))
                .collect::<Result<_, PublishError>>()?,
        ),
    })
}

/// Sends a planned item to its target.
pub fn send(plan: &Plan) -> Result<(), PublishError> {
    match &plan.target {
        Target::Http(url) => {
            http::post(
                url,
                plan.auth.as_ref(),
                &plan.item.to_publish_body(),
                plan.timeout,
            )?;
        }
        Target::Zmq(spec) => zmq::push(spec, &plan.item.to_tnet()?.to_vec(), plan.timeout)?,
    }
    Ok(())
}

/// Plans and sends with the real file system.
pub fn run(args: &Args) -> Result<(), PublishError> {
    let plan = plan(args, |path| fs::read(path))?;
    send(&plan)
}

/// The whole command: parse `std::env::args`, publish, print `Published` or `Error: …`.
/// Command-line errors exit 1 like Pushpin's (clap's own default would be 2).
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // A failed print (closed stdout/stderr) leaves nothing better to do.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&args) {
        Ok(()) => {
            println!("Published");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("Error: {err}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests;
