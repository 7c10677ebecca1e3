//! The dispatcher: routes the connmgr's messages to the sessions of the table, and starts
//! a session task (through the [`SessionSpawner`]) for each new request or handshake.

use std::sync::Arc;

use bytes::Bytes;
use holdfast_proto::internal::{
    CloseReason, Header, RequestHead, ResponseHead, StreamId, ToConnmgr, ToHandler, WsClose,
    WsMessage,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{abort_entry, lock, Inbox, SessionGuard, SessionKey, Sessions, StreamOut};
use crate::ipc::{Inbound, Outbox, WorkerId};

/// The answer to a WebSocket handshake while the handler cannot proxy WebSockets.
const WEBSOCKETS_NOT_SUPPORTED: &str =
    "WebSockets are not supported by this Holdfast version yet.\n";

/// What the dispatcher needs from the proxy layer: a way to start a session task.
pub trait SessionSpawner: Send + Sync + 'static {
    /// Starts the task for a new request. The task must hold `guard` until it ends.
    fn spawn(
        &self,
        head: RequestHead,
        inbox: Arc<Inbox>,
        out: StreamOut,
        guard: SessionGuard,
    ) -> JoinHandle<()>;

    /// Response credits for a held stream (see [`SessionGuard::into_held`]).
    fn held_credit(&self, _key: &SessionKey, _bytes: u32) {}

    /// Response credits for several held streams of one worker, in order (a run of `Credit`
    /// messages in one packet, typically one per subscriber after a fan-out). The default
    /// hands them to [`SessionSpawner::held_credit`] one by one; an implementation can apply
    /// them all under one lock.
    fn held_credits(&self, worker: &WorkerId, credits: &[(StreamId, u32)]) {
        for &(id, bytes) in credits {
            let key = SessionKey {
                worker: worker.clone(),
                id,
            };
            self.held_credit(&key, bytes);
        }
    }

    /// A held stream ended on the client side (or its worker went away).
    fn held_closed(&self, _key: &SessionKey) {}

    /// True if [`SessionSpawner::spawn_ws`] serves WebSockets (otherwise handshakes are
    /// refused with 501).
    fn serves_websockets(&self) -> bool {
        false
    }

    /// Starts the task for a WebSocket handshake (`Upgrade`). The task must hold `guard`
    /// until it ends (it is dropped inside the task: the table lock is held during the call).
    fn spawn_ws(
        &self,
        _head: RequestHead,
        _inbox: Arc<Inbox>,
        _ws: Arc<crate::ws::WsInbox>,
        _out: StreamOut,
        guard: SessionGuard,
    ) -> JoinHandle<()> {
        tokio::spawn(async move { drop(guard) })
    }
}

/// Routes the connmgr's messages to sessions. Runs until `inbound` closes.
#[derive(Debug)]
pub struct Dispatcher<S> {
    sessions: Sessions,
    outbox: Outbox,
    spawner: S,
    max_sessions: usize,
    accepting: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: SessionSpawner> Dispatcher<S> {
    /// A dispatcher admitting at most `max_sessions` concurrent sessions.
    pub fn new(sessions: Sessions, outbox: Outbox, spawner: S, max_sessions: usize) -> Self {
        Self {
            sessions,
            outbox,
            spawner,
            max_sessions: max_sessions.max(1),
            accepting: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Clearing this flag makes the dispatcher refuse new requests (shutdown).
    pub fn accepting(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.accepting.clone()
    }

    /// Processes inbound events until the bridge goes away.
    pub async fn run(self, mut inbound: mpsc::Receiver<Inbound>) {
        while let Some(event) = inbound.recv().await {
            match event {
                Inbound::Messages { worker, msgs } => self.handle_batch(&worker, msgs),
                Inbound::WorkerGone { worker, reason } => {
                    let entries = lock(&self.sessions).remove_worker(&worker);
                    if !entries.is_empty() {
                        tracing::info!(
                            "connmgr worker {worker} {reason}: cancelling {} sessions",
                            entries.len()
                        );
                    }
                    for (id, entry) in entries {
                        if entry.is_held() {
                            self.spawner.held_closed(&SessionKey {
                                worker: worker.clone(),
                                id,
                            });
                        }
                        abort_entry(entry);
                    }
                }
            }
        }
    }

    /// Handles one packet's messages in order. Consecutive `Credit`s (after a fan-out the
    /// connmgr returns one per subscriber, side by side) are applied together: one table lookup
    /// pass under one lock, and the held streams' share handed over in one call.
    fn handle_batch(&self, worker: &WorkerId, msgs: Vec<ToHandler>) {
        let mut run: Vec<(StreamId, u32)> = Vec::new();
        for msg in msgs {
            match msg {
                ToHandler::Credit(credit) => run.push((credit.id, credit.bytes)),
                other => {
                    if !run.is_empty() {
                        self.credits(worker, &run);
                        run.clear();
                    }
                    self.handle(worker, other);
                }
            }
        }
        if !run.is_empty() {
            self.credits(worker, &run);
        }
    }

    /// Response credits for streams of `worker`: to the session's inbox, or to the GRIP hub for
    /// a held stream.
    fn credits(&self, worker: &WorkerId, run: &[(StreamId, u32)]) {
        let mut inboxes = Vec::new();
        let mut held = Vec::new();
        {
            let table = lock(&self.sessions);
            let streams = table.workers.get(worker);
            for &(id, bytes) in run {
                match streams.and_then(|m| m.get(&id)).map(|e| e.inbox.clone()) {
                    Some(Some(inbox)) => inboxes.push((inbox, bytes)),
                    Some(None) => held.push((id, bytes)),
                    None => tracing::debug!("credit for unknown stream {id} of {worker}"),
                }
            }
        }
        // Woken outside the table lock, as for every other message.
        for (inbox, bytes) in inboxes {
            inbox.add_credits(bytes);
        }
        if !held.is_empty() {
            self.spawner.held_credits(worker, &held);
        }
    }

    fn handle(&self, worker: &WorkerId, msg: ToHandler) {
        match msg {
            ToHandler::Request(head) => self.start(worker, head),
            ToHandler::Body(body) => {
                let key = SessionKey {
                    worker: worker.clone(),
                    id: body.id,
                };
                let inbox = lock(&self.sessions).get(&key).map(|e| e.inbox.clone());
                match inbox {
                    // A held request's body was read completely before the hold.
                    Some(None) => {
                        tracing::debug!("body for held stream {} of {worker}", body.id)
                    }
                    Some(Some(inbox)) => {
                        if let Err(err) = inbox.push_body(body.data, body.more) {
                            tracing::warn!("stream {} of {worker}: {err}; closing", body.id);
                            self.cancel(&key);
                            StreamOut::new(self.outbox.clone(), key).close(CloseReason::BadRequest);
                        }
                    }
                    None => tracing::debug!("body for unknown stream {} of {worker}", body.id),
                }
            }
            ToHandler::Credit(credit) => self.credits(worker, &[(credit.id, credit.bytes)]),
            ToHandler::Closed(closed) => {
                let key = SessionKey {
                    worker: worker.clone(),
                    id: closed.id,
                };
                tracing::debug!(
                    "stream {} of {worker} closed by connmgr: {:?}",
                    closed.id,
                    closed.reason
                );
                self.cancel(&key);
            }
            // The bridge answers these itself.
            ToHandler::Hello(_) | ToHandler::Heartbeat => {}
            ToHandler::Upgrade(head) => self.start_ws(worker, head),
            ToHandler::WsMessage(WsMessage { id, kind, data }) => {
                self.ws_event(worker, id, crate::ws::ClientEvent::Message(kind, data));
            }
            ToHandler::WsClose(WsClose { id, code, reason }) => {
                self.ws_event(worker, id, crate::ws::ClientEvent::Close(code, reason));
            }
        }
    }

    /// Hands a client WebSocket event to its stream's task.
    fn ws_event(&self, worker: &WorkerId, id: StreamId, event: crate::ws::ClientEvent) {
        let key = SessionKey {
            worker: worker.clone(),
            id,
        };
        let found = lock(&self.sessions).get(&key).map(|e| e.ws.clone());
        match found {
            Some(Some(ws)) => ws.push(event),
            Some(None) => {
                tracing::warn!("WebSocket message for HTTP stream {id} of {worker}; closing");
                self.cancel(&key);
                StreamOut::new(self.outbox.clone(), key).close(CloseReason::BadRequest);
            }
            None => tracing::debug!("WebSocket message for unknown stream {id} of {worker}"),
        }
    }

    /// Starts a WebSocket stream (`Upgrade`), or refuses it with 501 when the spawner does not
    /// serve WebSockets.
    fn start_ws(&self, worker: &WorkerId, head: RequestHead) {
        if !self.accepting.load(std::sync::atomic::Ordering::Acquire) {
            let key = SessionKey {
                worker: worker.clone(),
                id: head.id,
            };
            StreamOut::new(self.outbox.clone(), key).close(CloseReason::Shutdown);
            return;
        }
        if !self.spawner.serves_websockets() {
            tracing::info!(
                "WebSocket handshake on stream {} of {worker} refused",
                head.id
            );
            let head = ResponseHead {
                id: head.id,
                code: 501,
                reason: "Not Implemented".into(),
                headers: vec![Header::new("Content-Type", "text/plain")],
                body: Bytes::from_static(WEBSOCKETS_NOT_SUPPORTED.as_bytes()),
                more: false,
            };
            let _ = self.outbox.push(worker, ToConnmgr::Response(head));
            return;
        }
        let ws = Arc::new(crate::ws::WsInbox::default());
        let inbox = Arc::new(Inbox::new(Bytes::new(), false, head.credits));
        self.admit(
            worker,
            head,
            inbox,
            Some(ws.clone()),
            "handshake",
            |head, inbox, out, guard| self.spawner.spawn_ws(head, inbox, ws, out, guard),
        );
    }

    fn cancel(&self, key: &SessionKey) {
        let entry = lock(&self.sessions).remove(key, None);
        if let Some(entry) = entry {
            if entry.is_held() {
                self.spawner.held_closed(key);
            }
            abort_entry(entry);
        }
    }

    fn start(&self, worker: &WorkerId, head: RequestHead) {
        let inbox = Arc::new(Inbox::new(head.body.clone(), head.more, head.credits));
        self.admit(
            worker,
            head,
            inbox,
            None,
            "request",
            |head, inbox, out, guard| self.spawner.spawn(head, inbox, out, guard),
        );
    }

    /// The admission both kinds of stream go through: refused while shutting down, ignored
    /// for a live id, refused at `client_maxconn`; otherwise entered in the table (with its
    /// WebSocket inbox, if any) and its task started by `spawn`.
    fn admit(
        &self,
        worker: &WorkerId,
        head: RequestHead,
        inbox: Arc<Inbox>,
        ws: Option<Arc<crate::ws::WsInbox>>,
        what: &str,
        spawn: impl FnOnce(RequestHead, Arc<Inbox>, StreamOut, SessionGuard) -> JoinHandle<()>,
    ) {
        let key = SessionKey {
            worker: worker.clone(),
            id: head.id,
        };
        let out = StreamOut::new(self.outbox.clone(), key.clone());
        if !self.accepting.load(std::sync::atomic::Ordering::Acquire) {
            out.close(CloseReason::Shutdown);
            return;
        }
        let mut table = lock(&self.sessions);
        if table.get(&key).is_some() {
            tracing::warn!(
                "duplicate {what} for live stream {} of {worker}; ignored",
                head.id
            );
            return;
        }
        if table.len() >= self.max_sessions {
            drop(table);
            tracing::warn!(
                "{} sessions live (client_maxconn); refusing {what} on stream {} of {worker}",
                self.max_sessions,
                head.id
            );
            out.close(CloseReason::Shutdown);
            return;
        }
        let serial = table.insert(key.clone(), inbox.clone());
        if let Some(entry) = table.get_mut(&key) {
            entry.ws = ws;
        }
        table.opened(&key, &head.peer_addr);
        let guard = SessionGuard {
            sessions: self.sessions.clone(),
            key: key.clone(),
            serial,
            inbox: inbox.clone(),
            armed: true,
        };
        // The table lock is held across the spawn so the task cannot finish (and remove its
        // entry) before the abort handle is stored.
        let handle = spawn(head, inbox, out, guard);
        table.set_abort(&key, handle.abort_handle());
    }
}
