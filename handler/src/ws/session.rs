//! One WebSocket stream from `Upgrade` to its end: route selection, then WebSocket-over-HTTP
//! (the I/O around [`super::woh::Woh`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::{CloseReason, RequestHead, WsKind};
use holdfast_proto::routes::{Route, RouteRequest, RouteTable, Target, TargetKind};
use holdfast_proto::wsevents::{Event, MAX_PENDING_CONTENT, MAX_RESPONSE_BODY};
use tokio::time::Instant;

use super::conn::{Applied, ConnState, WsOut};
use super::headers::{accept_headers, RequestBase};
use super::woh::{Action, Woh};
use super::{ClientEvent, WsInbox, DISCONNECT_DEADLINE};
use crate::error::ProxyError;
use crate::proxy::forward::{self, Attempt, BufferError, Buffered};
use crate::proxy::headers::{forward_headers, ForwardParams};
use crate::proxy::request::{header_value, split_host_port, BodyLength, ClientRequest};
use crate::proxy::response::{PROXY_ERROR, ROUTE_NOT_FOUND};
use crate::proxy::{plan_target, ProxyContext, TargetPlan};
use crate::session::{Inbox, SessionGuard, StreamOut};

/// Longest a WebSocket-over-HTTP request may take, reply included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    let mut wout = WsOut::new(ctx, out, credits, ws);
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
    if let Some(id) = &route.id {
        ctx.grip.emit(crate::observe::Event::RouteSelected {
            id: Arc::from(crate::observe::conn_id(&out.key().worker, head.id)),
            route: Arc::from(id.as_str()),
        });
    }
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
    // A secure WebSocket is `wss`, not `https` **[observed 1.36]**.
    for h in &mut forwarded {
        if (h.is("X-Forwarded-Proto") || h.is("X-Forwarded-Protocol")) && h.1 == "https" {
            h.1 = Bytes::from_static(b"wss");
        }
    }

    for target in &route.targets {
        match &target.kind {
            TargetKind::Host {
                host: connect_host,
                port: connect_port,
            } => {
                let plan = plan_target(&host, port, target, connect_host, *connect_port);
                if !target.over_http {
                    let pass = super::passthrough::Passthrough {
                        ctx,
                        route,
                        target,
                        plan,
                        path: path.clone(),
                        forwarded: &forwarded,
                        grip_enabled,
                        trusted,
                    };
                    match pass.run(&mut wout).await {
                        super::passthrough::Outcome::Done => return,
                        super::passthrough::Outcome::NextTarget => continue,
                    }
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
                super::test_ws::run(&mut wout, route, target, &path, grip_enabled).await;
                return;
            }
            TargetKind::Zhttp(_) | TargetKind::ZhttpReq(_) => {
                tracing::warn!("target {} cannot carry WebSockets in Holdfast", target.kind);
            }
        }
    }
    wout.text_response(502, PROXY_ERROR).await;
}

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
        let out = w.out();
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
        let mut st = ConnState::new(w, self.route, self.target, &self.base.connection_id);
        st.connected(w).await;
        if !apply_woh(&mut st, w, &mut woh, actions).await {
            return Outcome::Done;
        }
        self.relay(w, woh, st).await;
        Outcome::Done
    }

    /// The accepted connection's main loop.
    async fn relay(&self, w: &mut WsOut<'_>, mut woh: Woh, mut st: ConnState) {
        let out = w.out();
        let id = out.key().id;
        let mut request: Option<
            std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>>,
        > = None;
        let mut gone_deadline: Option<Instant> = None;
        loop {
            // Published messages, control-message timers, refreshes.
            if !st.service(w).await {
                return;
            }
            // Take client input while there is room for it.
            while woh.pending_content() < MAX_PENDING_CONTENT {
                let Some(event) = w.ws().pop() else { break };
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
            if gone_deadline.is_none() && w.ws().is_gone() {
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
            if st.take_refresh() {
                woh.refresh();
            }
            if request.is_none() {
                if let Some(body) = woh.poll_request(Instant::now().into_std()) {
                    let meta = woh.meta().to_vec();
                    request = Some(Box::pin(async move { self.post(&meta, body, out).await }));
                }
            }
            let wakeup = woh.next_wakeup().map(Instant::from_std);
            let grip_wakeup = st.next_wakeup();
            tokio::select! {
                () = w.ws().wait() => {}
                () = st.changed() => {}
                () = sleep_until(grip_wakeup), if grip_wakeup.is_some() => {}
                r = async { request.as_mut().expect("guarded").await }, if request.is_some() => {
                    request = None;
                    let now = Instant::now().into_std();
                    match r {
                        Ok(reply) => {
                            match woh.on_reply(reply.code, &reply.headers, &reply.body) {
                                Ok(actions) => {
                                    if !apply_woh(&mut st, w, &mut woh, actions).await {
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

/// [`ConnState::apply`] for WebSocket-over-HTTP: a detach queues a `CLOSE` event. False when
/// the connection must end.
async fn apply_woh(
    st: &mut ConnState,
    w: &mut WsOut<'_>,
    woh: &mut Woh,
    actions: Vec<Action>,
) -> bool {
    match st.apply(w, actions).await {
        Applied::Continue => true,
        Applied::Detach => {
            woh.push(Event::Close(None));
            true
        }
        Applied::End => false,
    }
}
