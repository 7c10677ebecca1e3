//! WebSocket passthrough (reference §5.1, §5.2): a route target without `over_http` gets a real
//! WebSocket of its own (`ws://`, or `wss://` with `ssl`) and messages are relayed both ways.
//!
//! # Handshake
//!
//! The request carries the client's headers as [`forward_headers`] left them, minus the
//! client's extension offer and its handshake headers, then `Grip-Sig`/`Grip-Feature` and
//! `Sec-WebSocket-Extensions: grip` when GRIP is enabled on the route, then a fresh handshake
//! (`Upgrade`, `Connection`, `Sec-WebSocket-Version: 13`, a new `Sec-WebSocket-Key`), in the
//! order Pushpin 1.36 sends them. It is sent with hyper over our own TCP (and rustls) stream, so
//! a connect or TLS failure is known before anything else and moves on to the route's next
//! target, and a non-`101` answer comes with its whole body.
//!
//! Observed on Pushpin 1.36 and matched here:
//!
//! - a non-`101` answer becomes the rejection with the backend's status, an **empty** reason
//!   phrase, **no** backend headers and the body cut to [`MAX_REJECT_BODY`] bytes;
//! - an answer that is not HTTP at all → `502` with the proxy error text;
//! - `Sec-WebSocket-Accept` is not checked (1.36 accepts the client on a wrong one);
//! - the `101` to the client carries the backend's headers (`Server`, `Date`,
//!   `Sec-WebSocket-Protocol`, ...) minus the handshake ones and the `grip` extension;
//! - close codes and reasons pass both ways; a backend that vanishes without a close frame
//!   drops the client's TCP connection (no close frame), and a client that vanishes drops the
//!   backend's;
//! - after a GRIP `detach` the backend gets a close frame without a code, and a later client
//!   close is answered at once with `1000`.
//!
//! One deliberate difference: 1.36 was seen neither passing a backend ping to the client nor
//! a client pong to the backend; Holdfast relays pings and pongs both ways, as §5.1 says.
//!
//! # Flow control
//!
//! One task drives both directions. While a backend message waits for the client's credits
//! ([`WsOut::message`]) the backend is not read, so TCP slows it down; client messages are only
//! taken from the [`super::WsInbox`] (and their credits returned) once the previous one went
//! to the backend. Backend messages are bounded by [`MAX_MESSAGE_SIZE`].

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use holdfast_proto::internal::{CloseReason, Header, WsKind};
use holdfast_proto::routes::{Route, Target};
use holdfast_proto::wscontrol::{classify, parse_grip_extension, GripExtension, OriginMessage};
use holdfast_proto::wsevents::MAX_REJECT_BODY;
use http::header::{HeaderName, HeaderValue, HOST};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::conn::{Applied, ConnState, WsOut};
use super::woh::Action;
use super::ClientEvent;
use crate::client::CONNECT_TIMEOUT;
use crate::error::ProxyError;
use crate::proxy::headers::response_headers;
use crate::proxy::response::PROXY_ERROR;
use crate::proxy::{ProxyContext, TargetPlan};

/// Largest backend message (and frame) accepted; the connmgr's default `--max-message-size`
/// for client messages (16 MiB), so both directions have the same bound.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Longest wait for the backend's handshake answer (head and rejection body).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a finished connection may take to flush its last close frame to the backend.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Client handshake headers never forwarded (the handshake is the proxy's own).
const DROPPED_CLIENT_HEADERS: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Content-Length",
    "Transfer-Encoding",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
];

/// Backend `101` headers never copied into the client's `101` (the connmgr writes its own
/// handshake headers).
const DROPPED_ACCEPT_HEADERS: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Content-Length",
    "Transfer-Encoding",
    "Keep-Alive",
];

/// What happened with one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client got its answer (a rejection, or the whole connection).
    Done,
    /// The target could not be reached (connect, TLS): try the next one.
    NextTarget,
}

/// Why the handshake with the backend failed after the connection was made.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("invalid websocket request to {target}: {what}")]
    InvalidRequest { target: String, what: String },
    #[error("websocket handshake with {target} failed: {source}")]
    Http {
        target: String,
        #[source]
        source: hyper::Error,
    },
    #[error("websocket handshake with {target} timed out")]
    Timeout { target: String },
}

/// Any stream a backend WebSocket runs on (plain TCP or TLS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type BackendWs = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Aborts the hyper connection task when the handshake is abandoned.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One passthrough attempt on one target.
#[derive(Debug)]
pub struct Passthrough<'a> {
    /// The proxy's shared state (signing).
    pub ctx: &'a ProxyContext,
    /// The selected route.
    pub route: &'a Route,
    /// The target being tried.
    pub target: &'a Target,
    /// Host header and connection parameters from [`crate::proxy::plan_target`].
    pub plan: TargetPlan,
    /// Path with query, after the route's rewrite.
    pub path: String,
    /// The client's headers after [`forward_headers`] (GRIP headers already removed when
    /// GRIP is enabled).
    pub forwarded: &'a [Header],
    /// GRIP enabled on the route and the client untrusted: offer `grip`, sign.
    pub grip_enabled: bool,
    /// The client proved itself with `upstream_key`: the `grip` extension passes through.
    pub trusted: bool,
}

/// The backend handshake's headers, in Pushpin 1.36's order; `grip` are `Grip-Sig` and
/// `Grip-Feature` when GRIP is enabled (the `grip` extension is then offered).
fn request_headers(forwarded: &[Header], grip: Option<Vec<Header>>, key: &str) -> Vec<Header> {
    let mut out: Vec<Header> = forwarded
        .iter()
        .filter(|h| !DROPPED_CLIENT_HEADERS.iter().any(|d| h.is(d)))
        .cloned()
        .collect();
    if let Some(grip) = grip {
        out.extend(grip);
        out.push(Header::new("Sec-WebSocket-Extensions", "grip"));
    }
    out.push(Header::new("Upgrade", "websocket"));
    out.push(Header::new("Connection", "Upgrade"));
    out.push(Header::new("Sec-WebSocket-Version", "13"));
    out.push(Header::new("Sec-WebSocket-Key", key.to_string()));
    out
}

/// The backend `101`'s headers for the client's `101`. The `grip` extension is kept only for
/// a trusted client; other extensions are never kept (none was offered for the client).
fn accept_headers(backend: &[Header], trusted: bool) -> Vec<Header> {
    backend
        .iter()
        .filter(|h| {
            if h.is("Sec-WebSocket-Extensions") {
                return trusted && is_grip_extension(&h.1);
            }
            !DROPPED_ACCEPT_HEADERS.iter().any(|d| h.is(d))
        })
        .cloned()
        .collect()
}

fn is_grip_extension(value: &[u8]) -> bool {
    let name = value.split(|&c| c == b';').next().unwrap_or(b"");
    name.trim_ascii().eq_ignore_ascii_case(b"grip")
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
fn new_key() -> String {
    let raw: [u8; 16] = rand::random();
    holdfast_proto::grip::base64::encode(&raw)
}

fn ws_kind(msg: &Message) -> Option<(WsKind, Bytes)> {
    match msg {
        Message::Text(t) => Some((WsKind::Text, Bytes::copy_from_slice(t.as_bytes()))),
        Message::Binary(b) => Some((WsKind::Binary, Bytes::copy_from_slice(b))),
        Message::Ping(b) => Some((WsKind::Ping, Bytes::copy_from_slice(b))),
        Message::Pong(b) => Some((WsKind::Pong, Bytes::copy_from_slice(b))),
        Message::Close(_) | Message::Frame(_) => None,
    }
}

fn to_backend(kind: WsKind, data: Bytes) -> Message {
    match kind {
        // The connmgr validated the client's UTF-8.
        WsKind::Text => Message::Text(String::from_utf8_lossy(&data).into_owned()),
        WsKind::Binary => Message::Binary(data.to_vec()),
        WsKind::Ping => Message::Ping(data.to_vec()),
        WsKind::Pong => Message::Pong(data.to_vec()),
    }
}

fn close_message(code: Option<u16>, reason: String) -> Message {
    Message::Close(code.map(|code| CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// What one backend message means for the client, GRIP mode applied.
fn backend_actions(grip: Option<&GripExtension>, msg: Message) -> Vec<Action> {
    if let Message::Close(frame) = msg {
        let (code, reason) = match frame {
            Some(f) => (Some(u16::from(f.code)), f.reason.into_owned()),
            None => (None, String::new()),
        };
        return vec![Action::Close(code, reason)];
    }
    let Some((kind, data)) = ws_kind(&msg) else {
        return Vec::new();
    };
    let Some(ext) = grip else {
        return vec![Action::Send(kind, data)];
    };
    // tungstenite hands over whole messages; a `c:` message is taken as one frame.
    match classify(ext, kind, &data, true) {
        OriginMessage::Control(json) => vec![Action::Control(json)],
        OriginMessage::Deliver(data) => vec![Action::Send(kind, data)],
        OriginMessage::Drop => {
            tracing::debug!("dropping unprefixed message");
            Vec::new()
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What woke the relay loop.
enum Wake {
    Client,
    Backend(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Timer,
}

impl Passthrough<'_> {
    /// TCP (and TLS) to the target, within [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<Box<dyn Io>, ProxyError> {
        let key = &self.plan.key;
        let target = key.to_string();
        let connect = async {
            let tcp = TcpStream::connect((key.host.as_str(), key.port))
                .await
                .map_err(|source| ProxyError::Connect {
                    target: target.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let Some(tls) = &key.tls else {
                return Ok(Box::new(tcp) as Box<dyn Io>);
            };
            let tls_error = |what: String| ProxyError::Tls {
                target: target.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
            };
            let name = ServerName::try_from(tls.server_name.clone())
                .map_err(|_| tls_error(format!("invalid TLS server name '{}'", tls.server_name)))?;
            // The same roots and settings as every other backend connection.
            let config = self.ctx.client.tls().for_target(tls.insecure);
            let connector = tokio_rustls::TlsConnector::from(config);
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|source| ProxyError::Tls {
                    target: target.clone(),
                    source,
                })?;
            Ok(Box::new(stream) as Box<dyn Io>)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| ProxyError::ConnectTimeout {
                target: target.clone(),
            })?
    }

    fn build_request(&self, headers: &[Header]) -> Result<http::Request<Empty<Bytes>>, String> {
        let uri: http::Uri = self
            .path
            .parse()
            .map_err(|_| format!("invalid path '{}'", self.path))?;
        let host = HeaderValue::from_str(&self.plan.host_header)
            .map_err(|_| format!("invalid host '{}'", self.plan.host_header))?;
        let mut req = http::Request::new(Empty::new());
        *req.uri_mut() = uri;
        let map = req.headers_mut();
        map.insert(HOST, host);
        for header in headers {
            match (
                HeaderName::from_bytes(header.0.as_bytes()),
                HeaderValue::from_maybe_shared(header.1.clone()),
            ) {
                (Ok(name), Ok(value)) => {
                    map.append(name, value);
                }
                _ => tracing::debug!("dropping invalid request header {:?}", header.0),
            }
        }
        Ok(req)
    }

    /// Tries this target: handshake, then the whole connection.
    pub async fn run(&self, w: &mut WsOut<'_>) -> Outcome {
        let id = w.key().id;
        let io = match self.connect().await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!("stream {id}: {e}; trying the next target");
                return Outcome::NextTarget;
            }
        };
        let grip = self
            .grip_enabled
            .then(|| self.ctx.signer.grip_headers(&self.route.props));
        let headers = request_headers(self.forwarded, grip, &new_key());
        let answer = match self.handshake(io, &headers).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!("stream {id}: {e}");
                w.text_response(502, PROXY_ERROR).await;
                return Outcome::Done;
            }
        };
        let (headers, ws) = match answer {
            Answer::Rejected(code, body) => {
                // Pushpin 1.36 relays only the status and the body.
                w.respond(code, String::new(), Vec::new(), body).await;
                return Outcome::Done;
            }
            Answer::Upgraded(headers, ws) => (headers, ws),
        };
        let ext = if self.grip_enabled {
            parse_grip_extension(&headers)
        } else {
            None
        };
        if w.accept(accept_headers(&headers, self.trusted))
            .await
            .is_err()
        {
            return Outcome::Done;
        }
        let cid = super::headers::uuid_v4();
        let mut st = ConnState::new(w, self.route, self.target, &cid);
        st.connected(w).await;
        relay(w, &mut st, ws, ext.as_ref()).await;
        Outcome::Done
    }

    /// Sends the handshake and reads the answer (a rejection's body to its end, cut to
    /// [`MAX_REJECT_BODY`]).
    async fn handshake(
        &self,
        io: Box<dyn Io>,
        headers: &[Header],
    ) -> Result<Answer, HandshakeError> {
        let target = self.plan.key.to_string();
        let req = self
            .build_request(headers)
            .map_err(|what| HandshakeError::InvalidRequest {
                target: target.clone(),
                what,
            })?;
        let http_err = |source| HandshakeError::Http {
            target: target.clone(),
            source,
        };
        let exchange = async {
            let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
                .title_case_headers(true)
                .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
                .await
                .map_err(http_err)?;
            let task = AbortOnDrop(tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!("websocket handshake connection ended: {e}");
                }
            }));
            let mut response = sender.send_request(req).await.map_err(http_err)?;
            let code = response.status().as_u16();
            if code != 101 {
                let mut body = response.into_body();
                let mut buf = bytes::BytesMut::new();
                while buf.len() < MAX_REJECT_BODY {
                    let Some(frame) = body.frame().await else {
                        break;
                    };
                    if let Ok(data) = frame.map_err(http_err)?.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                buf.truncate(MAX_REJECT_BODY);
                drop(task);
                return Ok(Answer::Rejected(code, buf.freeze()));
            }
            let headers = response_headers(response.headers());
            let upgraded = hyper::upgrade::on(&mut response).await.map_err(http_err)?;
            let config = WebSocketConfig {
                max_message_size: Some(MAX_MESSAGE_SIZE),
                max_frame_size: Some(MAX_MESSAGE_SIZE),
                ..WebSocketConfig::default()
            };
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Client,
                Some(config),
            )
            .await;
            Ok(Answer::Upgraded(headers, Box::new(ws)))
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
            .await
            .map_err(|_| HandshakeError::Timeout {
                target: target.clone(),
            })?
    }
}

/// The backend's answer to the handshake.
enum Answer {
    /// Not `101`: status and body (cut).
    Rejected(u16, Bytes),
    /// `101`: its headers and the WebSocket.
    Upgraded(Vec<Header>, Box<BackendWs>),
}

/// The backend side of a connection.
struct Backend {
    /// The WebSocket; `None` once it ended (closed, failed, or its close handshake is done:
    /// dropping it closes the TCP connection, which the server waits for).
    ws: Option<Box<BackendWs>>,
    /// A close frame went to the backend.
    close_sent: bool,
}

impl Backend {
    /// Sends a message; false (and the backend is dropped) if the write failed.
    async fn send(&mut self, id: &str, msg: Message) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return true;
        };
        match ws.send(msg).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("stream {id}: backend write failed: {e}");
                self.ws = None;
                false
            }
        }
    }

    /// Sends a close frame (once), bounded by [`CLOSE_FLUSH`].
    async fn close(&mut self, code: Option<u16>, reason: String) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        if let Some(ws) = self.ws.as_mut() {
            match tokio::time::timeout(CLOSE_FLUSH, ws.send(close_message(code, reason))).await {
                Ok(Ok(())) => {}
                _ => self.ws = None,
            }
        }
    }

    /// The backend's close frame arrived: flush the automatic reply (when it closed first),
    /// then drop the connection.
    async fn finish(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(CLOSE_FLUSH, ws.close(None)).await;
        }
    }

    async fn next(&mut self) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        match self.ws.as_mut() {
            Some(ws) => ws.next().await,
            None => std::future::pending().await,
        }
    }
}

/// The accepted connection's main loop (see the module docs). `grip` is the backend's `grip`
/// extension when GRIP mode is on.
async fn relay(
    w: &mut WsOut<'_>,
    st: &mut ConnState,
    ws: Box<BackendWs>,
    grip: Option<&GripExtension>,
) {
    let out = w.out();
    let id = out.key().id.to_string();
    let mut backend = Backend {
        ws: Some(ws),
        close_sent: false,
    };
    loop {
        // Client input, in order; each message is credited back once it went on.
        while let Some(event) = w.ws().pop() {
            match event {
                ClientEvent::Message(kind, data) => {
                    out.credit(u32::try_from(data.len()).unwrap_or(u32::MAX));
                    if st.client_closed.is_some() || st.detached || backend.close_sent {
                        continue;
                    }
                    if !backend.send(&id, to_backend(kind, data)).await && !st.origin_closed {
                        out.close(CloseReason::BackendError);
                        return;
                    }
                }
                ClientEvent::Close(code, reason) => {
                    if st.client_closed.is_some() {
                        continue;
                    }
                    st.client_closed = Some((code, reason.clone()));
                    if st.detached {
                        // The backend is gone: Pushpin answers the client itself.
                        if !st.origin_closed {
                            st.origin_closed = true;
                            w.close(Some(1000), String::new()).await;
                        }
                    } else if !st.origin_closed {
                        backend.close(code, reason).await;
                    }
                }
            }
        }
        if w.ws().is_gone() {
            // Like Pushpin: the backend's TCP connection is dropped without a close frame.
            return;
        }
        if let Some((code, reason)) = st.client_closed.clone() {
            if backend.ws.is_none() && !st.origin_closed {
                // The backend ended without answering the client's close: finish it.
                st.origin_closed = true;
                w.close(code, reason).await;
            }
            if st.origin_closed {
                backend.finish().await;
                return;
            }
        }
        if !st.service(w).await {
            return;
        }
        let wakeup = st.next_wakeup();
        let wake = tokio::select! {
            () = w.ws().wait() => Wake::Client,
            () = st.changed() => Wake::Timer,
            () = sleep_until(wakeup), if wakeup.is_some() => Wake::Timer,
            msg = backend.next(), if backend.ws.is_some() => Wake::Backend(msg),
        };
        let msg = match wake {
            Wake::Client | Wake::Timer => continue,
            Wake::Backend(Some(Ok(msg))) => msg,
            Wake::Backend(end) => {
                if let Some(Err(e)) = end {
                    tracing::debug!("stream {id}: backend connection ended: {e}");
                }
                backend.ws = None;
                if st.detached || st.origin_closed || st.client_closed.is_some() {
                    continue;
                }
                // The backend vanished without a close frame: so does the client's connection.
                out.close(CloseReason::BackendError);
                return;
            }
        };
        let is_close = matches!(msg, Message::Close(_));
        if st.detached {
            // The origin side is closed: whatever it still sends is dropped.
            if is_close {
                backend.finish().await;
            }
            continue;
        }
        let actions = backend_actions(grip, msg);
        let applied = st.apply(w, actions).await;
        if is_close {
            backend.finish().await;
        }
        match applied {
            Applied::Continue => {}
            Applied::Detach => backend.close(None, String::new()).await,
            Applied::End => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_follow_pushpin_order() {
        let forwarded = vec![
            Header::new("X-Client", "c"),
            Header::new("Sec-WebSocket-Key", "client-key"),
            Header::new("Sec-WebSocket-Version", "13"),
            Header::new("Sec-WebSocket-Extensions", "permessage-deflate"),
            Header::new("Sec-WebSocket-Protocol", "chat"),
            Header::new("User-Agent", "ua"),
        ];
        let grip = vec![
            Header::new("Grip-Sig", "s"),
            Header::new("Grip-Feature", "f"),
        ];
        let headers = request_headers(&forwarded, Some(grip), "k");
        let names: Vec<&str> = headers.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "X-Client",
                "Sec-WebSocket-Protocol",
                "User-Agent",
                "Grip-Sig",
                "Grip-Feature",
                "Sec-WebSocket-Extensions",
                "Upgrade",
                "Connection",
                "Sec-WebSocket-Version",
                "Sec-WebSocket-Key"
            ]
        );
        assert_eq!(headers[5].1.as_ref(), b"grip");
        assert_eq!(headers[9].1.as_ref(), b"k");
        let plain = request_headers(&forwarded, None, "k");
        assert!(!plain.iter().any(|h| h.is("Sec-WebSocket-Extensions")));
    }

    #[test]
    fn accept_headers_drop_handshake_and_grip() {
        let backend = vec![
            Header::new("Upgrade", "websocket"),
            Header::new("Sec-WebSocket-Accept", "x"),
            Header::new("Sec-WebSocket-Extensions", "grip; message-prefix=\"\""),
            Header::new("Sec-WebSocket-Protocol", "chat"),
            Header::new("Server", "s"),
        ];
        let names = |hs: Vec<Header>| hs.into_iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(
            names(accept_headers(&backend, false)),
            ["Sec-WebSocket-Protocol", "Server"]
        );
        assert_eq!(
            names(accept_headers(&backend, true)),
            [
                "Sec-WebSocket-Extensions",
                "Sec-WebSocket-Protocol",
                "Server"
            ]
        );
        let deflate = vec![Header::new(
            "Sec-WebSocket-Extensions",
            "permessage-deflate",
        )];
        assert!(accept_headers(&deflate, true).is_empty());
    }

    #[test]
    fn keys_are_fresh_base64() {
        let a = new_key();
        assert_eq!(a.len(), 24);
        assert!(a.ends_with("=="));
        assert_ne!(a, new_key());
    }

    #[test]
    fn grip_mode_classifies_backend_messages() {
        let ext = GripExtension {
            message_prefix: "m:".into(),
        };
        let text = |s: &str| Message::Text(s.to_string());
        assert_eq!(
            backend_actions(Some(&ext), text("m:hi")),
            [Action::Send(WsKind::Text, Bytes::from_static(b"hi"))]
        );
        assert!(backend_actions(Some(&ext), text("hi")).is_empty());
        assert_eq!(
            backend_actions(Some(&ext), text("c:{\"type\":\"detach\"}")),
            [Action::Control(Bytes::from_static(
                b"{\"type\":\"detach\"}"
            ))]
        );
        assert_eq!(
            backend_actions(Some(&ext), Message::Ping(b"p".to_vec())),
            [Action::Send(WsKind::Ping, Bytes::from_static(b"p"))]
        );
        assert_eq!(
            backend_actions(None, text("hi")),
            [Action::Send(WsKind::Text, Bytes::from_static(b"hi"))]
        );
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye".into(),
        }));
        assert_eq!(
            backend_actions(Some(&ext), close),
            [Action::Close(Some(4001), "bye".into())]
        );
        assert_eq!(
            backend_actions(None, Message::Close(None)),
            [Action::Close(None, String::new())]
        );
    }
}
