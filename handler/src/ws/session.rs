//! One WebSocket stream from `Upgrade` to its end: route selection, then WebSocket-over-HTTP
//! (the I/O around [`super::woh::Woh`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::{
    CloseReason, Header, RequestHead, ResponseHead, ToConnmgr, WsAccept, WsClose, WsKind, WsMessage,
};
use holdfast_proto::routes::{Route, RouteRequest, RouteTable, Target, TargetKind};
use holdfast_proto::wscontrol::{self, ControlMessage};
use holdfast_proto::wsevents::{Event, MAX_PENDING_CONTENT, MAX_REJECT_BODY, MAX_RESPONSE_BODY};
use tokio::time::Instant;

use super::headers::{accept_headers, RequestBase};
use super::woh::{Action, Woh};
use super::{ClientEvent, WsInbox, DISCONNECT_DEADLINE};
use crate::error::ProxyError;
use crate::ipc::OutboxClosed;
use crate::proxy::forward::{self, Attempt, BufferError, Buffered};
use crate::proxy::headers::{forward_headers, ForwardParams};
use crate::proxy::request::{header_value, split_host_port, BodyLength, ClientRequest};
use crate::proxy::response::{reason_phrase, PROXY_ERROR, ROUTE_NOT_FOUND};
use crate::proxy::{plan_target, ProxyContext, TargetPlan};
use crate::session::{Inbox, SessionGuard, StreamOut};

/// Longest a WebSocket-over-HTTP request may take, reply included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a sender waiting for credits checks whether the client is gone.
const CREDIT_TICK: Duration = Duration::from_millis(250);

/// A WebSocket stream's way back to the connmgr.
#[derive(Debug)]
pub struct WsOut<'a> {
    ctx: &'a ProxyContext,
    out: &'a StreamOut,
    /// Response credits (`Credit` from the connmgr).
    credits: &'a Arc<Inbox>,
    ws: &'a Arc<WsInbox>,
    /// Credits taken but not yet used.
    spare: usize,
}

impl WsOut<'_> {
    async fn send(&self, msg: ToConnmgr) -> Result<(), OutboxClosed> {
        self.ctx.outbox.send(&self.out.key().worker, msg).await
    }

    /// A response rejecting the handshake (body cut to the stream's credits).
    async fn respond(&self, code: u16, reason: String, headers: Vec<Header>, mut body: Bytes) {
        let limit = self.credits.try_take_credits(MAX_REJECT_BODY);
        body.truncate(limit);
        let head = ResponseHead {
            id: self.out.key().id,
            code,
            reason,
            headers,
            body,
            more: false,
        };
        let _ = self.send(ToConnmgr::Response(head)).await;
    }

    async fn text_response(&self, code: u16, body: &'static str) {
        let headers = vec![Header::new("Content-Type", "text/plain")];
        self.respond(
            code,
            reason_phrase(code).to_string(),
            headers,
            Bytes::from_static(body.as_bytes()),
        )
        .await;
    }

    async fn accept(&self, headers: Vec<Header>) -> Result<(), OutboxClosed> {
        let id = self.out.key().id;
        self.send(ToConnmgr::WsAccept(WsAccept { id, headers }))
            .await
    }

    /// Sends a message once the stream holds credits for it; false if the client is gone.
    async fn message(&mut self, kind: WsKind, data: Bytes) -> bool {
        let need = data.len();
        while self.spare < need {
            if self.ws.is_gone() {
                return false;
            }
            // The client's departure is noticed within a tick; its messages stay queued for
            // the main loop.
            if let Ok(n) =
                tokio::time::timeout(CREDIT_TICK, self.credits.take_credits(need - self.spare))
                    .await
            {
                self.spare += n;
            }
        }
        self.spare -= need;
        let id = self.out.key().id;
        self.send(ToConnmgr::WsMessage(WsMessage { id, kind, data }))
            .await
            .is_ok()
    }

    async fn close(&self, code: Option<u16>, reason: String) {
        let id = self.out.key().id;
        let _ = self
            .send(ToConnmgr::WsClose(WsClose { id, code, reason }))
            .await;
    }
}

/// Route selection for a handshake (protocol `ws`).
pub fn select_route<'a>(
    table: &'a RouteTable,
    req: &ClientRequest,
    ctx: &ProxyContext,
) -> Option<&'a Route> {
    if ctx.config.accept_pushpin_route {
        if let Some(id) = header_value(&req.headers, "Pushpin-Route") {
            let id = String::from_utf8_lossy(id);
            return table.by_id(id.trim(), &req.path);
        }
    }
    table.select(&RouteRequest {
        host: &req.host,
        path: &req.path,
        websocket: true,
        secure: req.secure,
    })
}

/// Serves one WebSocket stream to its end. `credits` is the stream's inbox (response credits
/// only), `ws` its WebSocket inbox.
pub async fn run(
    ctx: &ProxyContext,
    head: RequestHead,
    credits: &Arc<Inbox>,
    ws: &Arc<WsInbox>,
    out: &StreamOut,
    _guard: &mut SessionGuard,
) {
    let mut wout = WsOut {
        ctx,
        out,
        credits,
        ws,
        spare: 0,
    };
    let req = match ClientRequest::from_head(&head, ctx.config.accept_x_forwarded_protocol) {
        Ok(req) => req,
        Err(err) => {
            tracing::debug!("stream {}: {err}", head.id);
            wout.text_response(400, crate::proxy::response::INVALID_REQUEST)
                .await;
            return;
        }
    };
    let table = ctx.routes.current();
    let Some(route) = select_route(&table, &req, ctx) else {
        wout.text_response(502, ROUTE_NOT_FOUND).await;
        return;
    };
    let trusted = ctx.signer.is_trusted(&req.headers);
    let grip_enabled = !route.props.no_grip && !trusted;
    let (host, port) = match route.props.as_host.as_deref().and_then(split_host_port) {
        Some(as_host) => as_host,
        None => (req.host.clone(), req.port),
    };
    let mut path = route.rewrite_path(&req.path);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut forwarded = forward_headers(
        &req.headers,
        &ForwardParams {
            proxy: &ctx.config,
            route_headers: &route.props.headers,
            orig_headers: route.props.orig_headers,
            secure: req.secure,
            peer_addr: &req.peer_addr,
            trusted,
        },
    );
    if grip_enabled {
        forwarded.retain(|h| !h.is("Grip-Sig") && !h.is("Grip-Feature"));
    }

    for target in &route.targets {
        match &target.kind {
            TargetKind::Host {
                host: connect_host,
                port: connect_port,
            } => {
                let plan = plan_target(&host, port, target, connect_host, *connect_port);
                if !target.over_http {
                    // Passthrough is not implemented yet (see the module docs).
                    wout.text_response(501, NOT_YET).await;
                    return;
                }
                let conn = WohConn {
                    ctx,
                    route,
                    target,
                    plan,
                    path: path.clone(),
                    base: RequestBase::new(&forwarded, grip_enabled),
                    grip_enabled,
                };
                match conn.run(&mut wout).await {
                    Outcome::Done => return,
                    Outcome::NextTarget => {}
                }
            }
            TargetKind::Test => {
                wout.text_response(501, NOT_YET).await;
                return;
            }
            TargetKind::Zhttp(_) | TargetKind::ZhttpReq(_) => {
                tracing::warn!("target {} cannot carry WebSockets in Holdfast", target.kind);
            }
        }
    }
    wout.text_response(502, PROXY_ERROR).await;
}

const NOT_YET: &str = "This WebSocket target is not supported by this Holdfast version yet.\n";

enum Outcome {
    Done,
    NextTarget,
}

/// Why a POST failed.
enum PostError {
    /// Not delivered (connect, TLS, timeout): may be retried, or try the next target for OPEN.
    Undelivered(String),
    /// Anything else.
    Failed(String),
}

struct WohConn<'a> {
    ctx: &'a ProxyContext,
    route: &'a Route,
    target: &'a Target,
    plan: TargetPlan,
    path: String,
    base: RequestBase,
    grip_enabled: bool,
}

impl WohConn<'_> {
    async fn post(
        &self,
        meta: &[(String, String)],
        body: Bytes,
        out: &StreamOut,
    ) -> Result<Buffered, PostError> {
        let grip_headers = if self.grip_enabled {
            self.ctx.signer.grip_headers(&self.route.props)
        } else {
            Vec::new()
        };
        let headers = self.base.request_headers(grip_headers, meta);
        let attempt = Attempt {
            method: "POST",
            path: &self.path,
            headers: &headers,
            length: BodyLength::Known(body.len() as u64),
            plan: &self.plan,
        };
        // A one-shot inbox holding the whole body; it never grants credit (the body ended).
        let inbox = Arc::new(Inbox::new(body, false, 0));
        let exchange = async {
            let exchange = forward::exchange(&self.ctx.client, &attempt, &inbox, out)
                .await
                .map_err(|e| match e {
                    e @ (ProxyError::Connect { .. }
                    | ProxyError::ConnectTimeout { .. }
                    | ProxyError::Tls { .. }
                    | ProxyError::Handshake { .. }) => PostError::Undelivered(e.to_string()),
                    e => PostError::Failed(e.to_string()),
                })?;
            exchange
                .buffer(MAX_RESPONSE_BODY)
                .await
                .map_err(|e| match e {
                    BufferError::TooLarge(_) => PostError::Failed(e.to_string()),
                    BufferError::Proxy(e) => PostError::Failed(e.to_string()),
                })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(r) => r,
            Err(_) => Err(PostError::Undelivered("request timed out".into())),
        }
    }

    async fn run(&self, w: &mut WsOut<'_>) -> Outcome {
        let out = w.out;
        let id = out.key().id;
        let mut woh = Woh::new(self.target.one_event, Instant::now().into_std());
        let reply = match self.post(&[], Woh::open_body(), out).await {
            Ok(reply) => reply,
            Err(PostError::Undelivered(e)) => {
                tracing::debug!("stream {id}: OPEN not delivered: {e}; trying the next target");
                return Outcome::NextTarget;
            }
            Err(PostError::Failed(e)) => {
                tracing::debug!("stream {id}: OPEN failed: {e}");
                w.text_response(502, PROXY_ERROR).await;
                return Outcome::Done;
            }
        };
        let now = Instant::now().into_std();
        let actions = match woh.on_open_reply(
            reply.code,
            &reply.headers,
            &reply.body,
            self.grip_enabled,
            now,
        ) {
            Ok(Some(actions)) => actions,
            Ok(None) => {
                let headers = reply
                    .headers
                    .into_iter()
                    .filter(|h| !h.is("Content-Length"))
                    .collect();
                w.respond(reply.code, reply.reason, headers, reply.body)
                    .await;
                return Outcome::Done;
            }
            Err(e) => {
                tracing::debug!("stream {id}: bad OPEN reply: {e}");
                w.text_response(502, PROXY_ERROR).await;
                return Outcome::Done;
            }
        };
        if w.accept(accept_headers(&reply.headers)).await.is_err() {
            return Outcome::Done;
        }
        let mut st = ConnState::default();
        if !st.apply(w, &mut woh, actions).await {
            return Outcome::Done;
        }
        self.relay(w, woh, st).await;
        Outcome::Done
    }

    /// The accepted connection's main loop.
    async fn relay(&self, w: &mut WsOut<'_>, mut woh: Woh, mut st: ConnState) {
        let out = w.out;
        let id = out.key().id;
        let mut request: Option<
            std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>>,
        > = None;
        let mut gone_deadline: Option<Instant> = None;
        loop {
            // Take client input while there is room for it.
            while woh.pending_content() < MAX_PENDING_CONTENT {
                let Some(event) = w.ws.pop() else { break };
                match event {
                    ClientEvent::Message(kind, data) => {
                        out.credit(u32::try_from(data.len()).unwrap_or(u32::MAX));
                        if st.client_closed.is_some() || st.detached {
                            continue;
                        }
                        woh.push(match kind {
                            WsKind::Text => Event::Text(data),
                            WsKind::Binary => Event::Binary(data),
                            WsKind::Ping => Event::Ping(data),
                            WsKind::Pong => Event::Pong(data),
                        });
                    }
                    ClientEvent::Close(code, reason) => {
                        if st.client_closed.is_none() {
                            st.client_closed = Some((code, reason.clone()));
                            if !st.detached {
                                woh.push(Event::Close(code.map(|c| (c, reason))));
                            }
                        }
                    }
                }
            }
            if gone_deadline.is_none() && w.ws.is_gone() {
                gone_deadline = Some(Instant::now() + DISCONNECT_DEADLINE);
                if st.client_closed.is_none() && !st.origin_closed && !st.detached {
                    woh.push(Event::Disconnect);
                }
            }
            let finished = request.is_none()
                && woh.idle()
                && (gone_deadline.is_some() || (st.client_closed.is_some() && st.origin_closed));
            if finished {
                return;
            }
            if request.is_none() {
                if let Some(body) = woh.poll_request(Instant::now().into_std()) {
                    let meta = woh.meta().to_vec();
                    request = Some(Box::pin(async move { self.post(&meta, body, out).await }));
                }
            }
            let wakeup = woh.next_wakeup().map(Instant::from_std);
            tokio::select! {
                () = w.ws.wait() => {}
                r = async { request.as_mut().expect("guarded").await }, if request.is_some() => {
                    request = None;
                    let now = Instant::now().into_std();
                    match r {
                        Ok(reply) => {
                            match woh.on_reply(reply.code, &reply.headers, &reply.body) {
                                Ok(actions) => {
                                    if !st.apply(w, &mut woh, actions).await {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::debug!("stream {id}: {e}");
                                    out.close(CloseReason::BackendError);
                                    return;
                                }
                            }
                            // The origin did not answer the client's close: finish it.
                            if woh.idle() && !st.origin_closed {
                                if let Some((code, reason)) = st.client_closed.clone() {
                                    w.close(code, reason).await;
                                    st.origin_closed = true;
                                }
                            }
                        }
                        Err(PostError::Undelivered(e)) => {
                            tracing::debug!("stream {id}: request not delivered: {e}");
                            if let Err(e) = woh.on_failure(now) {
                                tracing::debug!("stream {id}: {e}");
                                out.close(CloseReason::BackendError);
                                return;
                            }
                        }
                        Err(PostError::Failed(e)) => {
                            tracing::debug!("stream {id}: request failed: {e}");
                            out.close(CloseReason::BackendError);
                            return;
                        }
                    }
                }
                () = sleep_until(wakeup), if wakeup.is_some() => {}
                () = sleep_until(gone_deadline), if gone_deadline.is_some() => return,
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The close handshake and GRIP state of an accepted connection.
#[derive(Debug, Default)]
struct ConnState {
    /// The client's close frame, once received.
    client_closed: Option<(Option<u16>, String)>,
    /// A close frame was sent to the client.
    origin_closed: bool,
    /// GRIP `detach`: the origin side is closed, client messages are discarded.
    detached: bool,
}

impl ConnState {
    /// Carries out a reply's actions; false when the connection must end now.
    async fn apply(&mut self, w: &mut WsOut<'_>, woh: &mut Woh, actions: Vec<Action>) -> bool {
        let id = w.out.key().id;
        for action in actions {
            match action {
                Action::Send(kind, data) => {
                    if self.origin_closed {
                        continue;
                    }
                    if !w.message(kind, data).await {
                        return true;
                    }
                }
                Action::Close(code, reason) => {
                    if !self.origin_closed {
                        self.origin_closed = true;
                        w.close(code, reason).await;
                    }
                }
                Action::Disconnect => {
                    w.out.close(CloseReason::BackendError);
                    return false;
                }
                Action::Control(json) => match wscontrol::parse(&json) {
                    Ok(ControlMessage::Detach) => {
                        if !self.detached {
                            self.detached = true;
                            woh.push(Event::Close(None));
                        }
                    }
                    Ok(other) => {
                        tracing::debug!("stream {id}: grip control {other:?} not supported yet")
                    }
                    Err(e) => tracing::debug!("stream {id}: {e}"),
                },
            }
        }
        true
    }
}
