//! What every accepted WebSocket connection shares, whatever carries it to the origin
//! (WebSocket-over-HTTP in [`super::session`], passthrough in [`super::passthrough`]):
//!
//! - [`WsOut`]: the way back to the connmgr (handshake answer, messages under credits, close);
//! - [`ConnState`]: the close handshake and the GRIP side of the connection (control messages,
//!   hub subscriptions, published messages, keep-alives, delayed sends).
//!
//! A driver uses them like this:
//!
//! ```text
//! accept → st.connected(w)
//! loop {
//!     if !st.service(w).await { break }            // published messages, timers
//!     select! {
//!         client event  → forward to the origin,
//!         origin output → st.apply(w, actions) (Detach: close the origin side),
//!         st.changed()  → {},
//!         sleep_until(st.next_wakeup()) → {},
//!     }
//! }
//! ```
//!
//! Dropping the [`ConnState`] removes the connection from the hub. The connection's timers
//! (`keep-alive`, `send-delayed`) live here, in its task: the hub keeps none for WebSockets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::{
    CloseReason, Header, ResponseHead, ToConnmgr, WsAccept, WsClose, WsKind, WsMessage,
};
use holdfast_proto::routes::{Route, Target};
use holdfast_proto::wscontrol::{self, ControlMessage, KeepAliveMode};
use holdfast_proto::wsevents::MAX_REJECT_BODY;
use tokio::time::Instant;

use super::woh::Action;
use super::WsInbox;
use crate::grip::hub::{Filters, Sub, WsSubscribed};
use crate::grip::wssink::{Outgoing, WsSink};
use crate::grip::GripRuntime;
use crate::ipc::OutboxClosed;
use crate::proxy::response::reason_phrase;
use crate::proxy::ProxyContext;
use crate::session::{Inbox, SessionKey, StreamOut};

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

impl<'a> WsOut<'a> {
    /// The way back for one stream.
    pub fn new(
        ctx: &'a ProxyContext,
        out: &'a StreamOut,
        credits: &'a Arc<Inbox>,
        ws: &'a Arc<WsInbox>,
    ) -> Self {
        Self {
            ctx,
            out,
            credits,
            ws,
            spare: 0,
        }
    }

    /// The proxy's shared state.
    pub fn ctx(&self) -> &'a ProxyContext {
        self.ctx
    }

    /// The stream's handle (ids, `Credit` for client messages, `close`).
    pub fn out(&self) -> &'a StreamOut {
        self.out
    }

    /// The stream's key.
    pub fn key(&self) -> &'a SessionKey {
        self.out.key()
    }

    /// The client's events.
    pub fn ws(&self) -> &'a Arc<WsInbox> {
        self.ws
    }

    /// The stream's response credits.
    pub fn credits(&self) -> &'a Arc<Inbox> {
        self.credits
    }

    async fn send(&self, msg: ToConnmgr) -> Result<(), OutboxClosed> {
        self.ctx.outbox.send(&self.out.key().worker, msg).await
    }

    /// A response rejecting the handshake (body cut to the stream's credits).
    pub async fn respond(&self, code: u16, reason: String, headers: Vec<Header>, mut body: Bytes) {
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

    /// A `text/plain` rejection.
    pub async fn text_response(&self, code: u16, body: &'static str) {
        let headers = vec![Header::new("Content-Type", "text/plain")];
        self.respond(
            code,
            reason_phrase(code).to_string(),
            headers,
            Bytes::from_static(body.as_bytes()),
        )
        .await;
    }

    /// Accepts the handshake (`101` with these extra headers).
    pub async fn accept(&self, headers: Vec<Header>) -> Result<(), OutboxClosed> {
        let id = self.out.key().id;
        self.send(ToConnmgr::WsAccept(WsAccept { id, headers }))
            .await
    }

    /// Sends a message once the stream holds credits for it; false if the client is gone.
    ///
    /// A message larger than the whole response window waits until every credit is back
    /// (the connmgr then takes it and counts it as the whole window: see
    /// [`holdfast_proto::internal::WsMessage`]), so at most one such message is in flight.
    pub async fn message(&mut self, kind: WsKind, data: Bytes) -> bool {
        // At most data.len(), a usize.
        let need = self.credits.message_cost(data.len()) as usize;
        while self.spare < need {
            if self.ws.is_gone() {
                return false;
            }
            // The client's departure is noticed within a tick; its messages stay queued for
            // the driver.
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

    /// Sends a close frame to the client.
    pub async fn close(&self, code: Option<u16>, reason: String) {
        let id = self.out.key().id;
        let _ = self
            .send(ToConnmgr::WsClose(WsClose { id, code, reason }))
            .await;
    }
}

/// What the driver must do after [`ConnState::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Go on.
    Continue,
    /// GRIP `detach` (first time): close the origin side (WOH: a `CLOSE` event; passthrough:
    /// a close frame), keep the client; client messages are discarded from now on.
    Detach,
    /// The connection is over (`DISCONNECT`, too many filters, client gone).
    End,
}

/// The close handshake and GRIP state of an accepted connection.
#[derive(Debug)]
pub struct ConnState {
    /// The client's close frame, once received.
    pub client_closed: Option<(Option<u16>, String)>,
    /// A close frame was sent to the client.
    pub origin_closed: bool,
    /// GRIP `detach`: the origin side is closed, client messages are discarded.
    pub detached: bool,
    grip: GripConn,
}

/// The connection as the hub knows it, plus the timers of its control messages.
#[derive(Debug)]
struct GripConn {
    runtime: Arc<GripRuntime>,
    key: SessionKey,
    cid: Arc<str>,
    sink: Arc<WsSink>,
    /// The route's `prefix=`, put before every channel a control message names.
    prefix: String,
    /// The route's explicit id (the delivery limiter's bucket).
    route_id: Option<Arc<str>>,
    /// `sub=` channels of the target: subscribed at once, never unsubscribed.
    implicit: Vec<String>,
    /// Registered in the hub (between [`ConnState::connected`] and the drop).
    registered: bool,
    keep_alive: Option<KeepAlive>,
    delayed: Option<Delayed>,
    /// A refresh (command or publish) asked for a WebSocket-over-HTTP request.
    refresh: bool,
}

/// A `keep-alive` control message in force.
#[derive(Debug)]
struct KeepAlive {
    kind: WsKind,
    data: Bytes,
    every: Duration,
    mode: KeepAliveMode,
    /// Interval mode: the next send. Idle mode: when the setting started (idle time counts
    /// from the later of this and the last output).
    at: Instant,
    /// 0-999 ms taken off each wait, drawn again after each send (Pushpin sends between
    /// `timeout - 1 s` and `timeout` after the last output **[observed 1.36]**).
    jitter: Duration,
}

impl KeepAlive {
    fn due(&self, last_output: Instant) -> Instant {
        match self.mode {
            KeepAliveMode::Interval => self.at,
            KeepAliveMode::Idle => {
                self.at.max(last_output) + self.every.saturating_sub(self.jitter)
            }
        }
    }
}

/// A `send-delayed` message waiting.
#[derive(Debug)]
struct Delayed {
    kind: WsKind,
    data: Bytes,
    at: Instant,
}

fn jitter() -> Duration {
    Duration::from_millis(rand::random::<u64>() % 1000)
}

/// Pushpin's limit on a `subscribe`'s filters: more closes the connection with 1011.
const MAX_FILTERS: usize = 5;

impl ConnState {
    /// The state of a connection accepted on `route` through `target`; `cid` is its
    /// `Connection-Id` (the `refresh` command's `cid`).
    pub fn new(w: &WsOut<'_>, route: &Route, target: &Target, cid: &str) -> Self {
        let ctx = w.ctx();
        Self {
            client_closed: None,
            origin_closed: false,
            detached: false,
            grip: GripConn {
                runtime: ctx.grip.clone(),
                key: w.key().clone(),
                cid: Arc::from(cid),
                sink: Arc::new(WsSink::new(w.credits().clone(), std::time::Instant::now())),
                prefix: route.props.prefix.clone(),
                route_id: route.id.as_deref().map(Arc::from),
                implicit: target.subs.clone(),
                registered: false,
                keep_alive: None,
                delayed: None,
                refresh: false,
            },
        }
    }

    /// Call once after the `101` went out: registers the connection in the hub and applies
    /// the implicit (`sub=`) subscriptions, whether or not the origin speaks GRIP.
    pub async fn connected(&mut self, _w: &mut WsOut<'_>) {
        let g = &mut self.grip;
        if g.registered {
            return;
        }
        g.registered = true;
        let (key, cid, sink, route) = (
            g.key.clone(),
            g.cid.clone(),
            g.sink.clone(),
            g.route_id.clone(),
        );
        let implicit = g.implicit.clone();
        g.runtime.with(|hub, now, _| {
            hub.ws_open(key.clone(), cid, sink, route, now);
            for channel in implicit {
                let sub = Sub {
                    name: Arc::from(channel.as_str()),
                    prefix_len: 0,
                    filters: Filters::default(),
                    prev_id: None,
                };
                hub.ws_subscribe(&key, sub, now);
            }
        });
    }

    /// Carries out the origin's output, in order.
    pub async fn apply(&mut self, w: &mut WsOut<'_>, actions: Vec<Action>) -> Applied {
        let mut result = Applied::Continue;
        for action in actions {
            match action {
                Action::Send(kind, data) => {
                    if self.origin_closed {
                        continue;
                    }
                    if !w.message(kind, data).await {
                        // The client is gone: the driver notices and tells the origin.
                        return result;
                    }
                    self.grip.sink.touch(std::time::Instant::now());
                }
                Action::Close(code, reason) => {
                    if !self.origin_closed {
                        self.origin_closed = true;
                        w.close(code, reason).await;
                    }
                }
                Action::Disconnect => {
                    w.out().close(CloseReason::BackendError);
                    return Applied::End;
                }
                Action::Control(json) => match self.control(w, &json).await {
                    Applied::Continue => {}
                    Applied::Detach => result = Applied::Detach,
                    Applied::End => return Applied::End,
                },
            }
        }
        result
    }

    /// One GRIP control message (reference §5.4).
    async fn control(&mut self, w: &mut WsOut<'_>, json: &[u8]) -> Applied {
        let id = w.key().id;
        let msg = match wscontrol::parse(json) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!("stream {id}: {e}");
                return Applied::Continue;
            }
        };
        let g = &mut self.grip;
        match msg {
            ControlMessage::Subscribe { channel, filters } => {
                if filters.len() > MAX_FILTERS {
                    tracing::debug!("stream {id}: too many filters ({}); closing", filters.len());
                    if !self.origin_closed {
                        self.origin_closed = true;
                        w.close(Some(1011), String::new()).await;
                    }
                    return Applied::Continue;
                }
                let name = format!("{}{channel}", g.prefix);
                let sub = Sub {
                    name: Arc::from(name.as_str()),
                    prefix_len: g.prefix.len(),
                    filters: Filters::from_names(&filters),
                    prev_id: None,
                };
                let key = g.key.clone();
                let r = g.runtime.with(|hub, now, _| hub.ws_subscribe(&key, sub, now));
                match r {
                    WsSubscribed::Added => tracing::debug!("stream {id}: subscribed to {name}"),
                    WsSubscribed::Already => {}
                    WsSubscribed::AtLimit => tracing::debug!(
                        "stream {id}: subscription to {name} ignored (connection_subscription_max)"
                    ),
                    WsSubscribed::Unknown => {
                        tracing::debug!("stream {id}: subscribe before the connection opened")
                    }
                }
            }
            ControlMessage::Unsubscribe { channel } => {
                let name = format!("{}{channel}", g.prefix);
                if g.implicit.contains(&name) {
                    tracing::debug!("stream {id}: implicit subscription {name} kept");
                } else {
                    let key = g.key.clone();
                    g.runtime
                        .with(|hub, now, _| hub.ws_unsubscribe(&key, &name, now));
                }
            }
            ControlMessage::Detach => {
                if !self.detached {
                    self.detached = true;
                    return Applied::Detach;
                }
            }
            ControlMessage::Session { id: session } => {
                tracing::debug!("stream {id}: session {session:?} (no state service)");
            }
            ControlMessage::SetMeta { name, value } => {
                let key = g.key.clone();
                g.runtime
                    .with(|hub, _, _| hub.ws_set_meta(&key, name, value));
            }
            ControlMessage::KeepAlive {
                content,
                timeout,
                mode,
            } => {
                g.keep_alive = content.map(|(kind, data)| {
                    let every = Duration::from_secs(u64::from(timeout.max(1)));
                    let now = Instant::now();
                    KeepAlive {
                        kind,
                        data,
                        every,
                        mode,
                        at: match mode {
                            KeepAliveMode::Interval => now + every.saturating_sub(jitter()),
                            KeepAliveMode::Idle => now,
                        },
                        jitter: jitter(),
                    }
                });
            }
            ControlMessage::SendDelayed {
                content,
                kind,
                timeout,
            } => {
                if let Some(d) = g.delayed.take() {
                    if !self.send_own(w, d.kind, d.data).await {
                        return Applied::Continue;
                    }
                }
                let at = Instant::now() + Duration::from_secs(u64::from(timeout.max(1)));
                self.grip.delayed = Some(Delayed {
                    kind,
                    data: content,
                    at,
                });
            }
            ControlMessage::FlushDelayed => {
                if let Some(d) = g.delayed.take() {
                    if !self.send_own(w, d.kind, d.data).await {
                        return Applied::Continue;
                    }
                }
            }
            ControlMessage::Unknown(kind) => tracing::debug!(
                "stream {id}: failed to parse grip control message: 'type' contains unknown value: {kind}"
            ),
        }
        Applied::Continue
    }

    /// Sends a message of the connection's own (delayed send, keep-alive) unless a close
    /// frame went out; false if the client is gone.
    async fn send_own(&mut self, w: &mut WsOut<'_>, kind: WsKind, data: Bytes) -> bool {
        if self.origin_closed || self.client_closed.is_some() {
            return true;
        }
        let ok = w.message(kind, data).await;
        self.grip.sink.touch(std::time::Instant::now());
        ok
    }

    /// Sends what the hub queued for this connection and what timers made due; false when the
    /// connection must end now (the outbox is closed: the handler is stopping).
    pub async fn service(&mut self, w: &mut WsOut<'_>) -> bool {
        while let Some(entry) = self.grip.sink.pop() {
            let ok = match entry {
                Outgoing::Message(kind, data) => {
                    self.origin_closed
                        || self.client_closed.is_some()
                        || w.message(kind, data).await
                }
                Outgoing::Close(code, reason) => {
                    if !self.origin_closed {
                        self.origin_closed = true;
                        w.close(code, reason).await;
                    }
                    true
                }
                Outgoing::Refresh => {
                    self.grip.refresh = true;
                    true
                }
            };
            self.grip.sink.sent(std::time::Instant::now());
            if !ok {
                return self.client_gone(w);
            }
        }
        let now = Instant::now();
        if self.grip.delayed.as_ref().is_some_and(|d| d.at <= now) {
            if let Some(d) = self.grip.delayed.take() {
                if !self.send_own(w, d.kind, d.data).await {
                    return self.client_gone(w);
                }
            }
        }
        let last = Instant::from_std(self.grip.sink.last_output());
        let due = self.grip.keep_alive.as_ref().map(|ka| ka.due(last));
        if let (Some(due), Some(ka)) = (due, self.grip.keep_alive.as_mut()) {
            if due <= now {
                let (kind, data) = (ka.kind, ka.data.clone());
                ka.jitter = jitter();
                if ka.mode == KeepAliveMode::Interval {
                    ka.at = now + ka.every.saturating_sub(ka.jitter);
                }
                if !self.send_own(w, kind, data).await {
                    return self.client_gone(w);
                }
            }
        }
        true
    }

    /// A send failed: when the client is gone, publishes stop (the driver tells the origin);
    /// otherwise the outbox is closed (shutdown) and the connection ends.
    fn client_gone(&mut self, w: &WsOut<'_>) -> bool {
        self.grip.sink.close();
        self.grip.keep_alive = None;
        self.grip.delayed = None;
        w.ws().is_gone()
    }

    /// When [`ConnState::service`] must run next, if a timer is set.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let delayed = self.grip.delayed.as_ref().map(|d| d.at);
        let keep_alive = self
            .grip
            .keep_alive
            .as_ref()
            .map(|ka| ka.due(Instant::from_std(self.grip.sink.last_output())));
        match (delayed, keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resolves when the hub queued something for this connection.
    pub async fn changed(&self) {
        self.grip.sink.changed().await;
    }

    /// True once after a refresh was asked for (command `refresh`, `ws-message` `action:
    /// refresh`): WebSocket-over-HTTP sends a request now; passthrough ignores it.
    pub fn take_refresh(&mut self) -> bool {
        std::mem::take(&mut self.grip.refresh)
    }

    /// The connection's publish queue (tests, stats).
    pub fn sink(&self) -> &Arc<WsSink> {
        &self.grip.sink
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        let g = &self.grip;
        g.sink.close();
        if g.registered {
            let key = g.key.clone();
            g.runtime.with(|hub, now, _| hub.ws_close(&key, now));
        }
    }
}
