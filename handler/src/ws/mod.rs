//! WebSockets on the handler side (reference §5): the connmgr announces a handshake with
//! `ToHandler::Upgrade`; [`session::run`] selects the route (`websocket: true`) and serves it.
//!
//! # Parts
//!
//! - WebSocket-over-HTTP (`over_http` targets, [`woh`] state machine + [`session`] driver):
//!   OPEN with Pushpin's headers ([`headers`]), rejection relayed as the handshake response,
//!   `101` with the OPEN reply's headers, batched event POSTs with one request in flight,
//!   `one_event`, in-order delivery of TEXT/BINARY/PING/PONG/CLOSE/DISCONNECT,
//!   `Keep-Alive-Interval`, `Set-Meta-*`, retries (5, exponential), `DISCONNECT` when the
//!   client vanishes (bounded by [`DISCONNECT_DEADLINE`]), GRIP mode from the OPEN reply
//!   (`m:`/negotiated prefix stripped, unprefixed dropped, `c:` control messages).
//! - Passthrough (targets without `over_http`, [`passthrough`]): backend WebSocket (`ws`/`wss`)
//!   with Pushpin's handshake headers, next target on connect/TLS failure, rejection relayed as
//!   1.36 does (status and body only), messages/pings/pongs/close codes both ways under
//!   credits, GRIP mode from the backend's `101`.
//! - What both share ([`conn`]): the way back to the connmgr and the GRIP side of a
//!   connection: registration in the hub, `sub=` implicit subscriptions, the control messages
//!   (`subscribe`, `unsubscribe`, `set-meta`, `detach`, `keep-alive`, `send-delayed`,
//!   `flush-delayed`), published `ws-message` items arriving through the connection's
//!   [`crate::grip::wssink::WsSink`] (`action: close`, `action: refresh`).
//! - The `test` target's `/ws` ([`test_ws`]): echo, subscriptions to `?channel=` (default
//!   `test`) when GRIP is enabled, `404` for other paths.

pub mod conn;
pub mod headers;
pub mod passthrough;
pub mod session;
pub mod test_ws;
pub mod woh;

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::WsKind;
use tokio::sync::Notify;

/// How long a connection whose client vanished may take to tell the origin (`DISCONNECT`).
pub const DISCONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// Something the client did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A complete message.
    Message(WsKind, Bytes),
    /// A close frame.
    Close(Option<u16>, String),
}

/// Where the connmgr's WebSocket messages for one stream wait for its task. Bounded by the
/// credit protocol: the connmgr only sends as much message payload as the handler granted.
#[derive(Debug, Default)]
pub struct WsInbox {
    state: Mutex<WsInboxState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct WsInboxState {
    queue: VecDeque<ClientEvent>,
    gone: bool,
}

impl WsInbox {
    fn lock(&self) -> MutexGuard<'_, WsInboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a client event and wakes the task.
    pub fn push(&self, event: ClientEvent) {
        self.lock().queue.push_back(event);
        self.notify.notify_one();
    }

    /// The client connection is gone (`Closed`, worker gone): the task tells the origin and
    /// ends.
    pub fn gone(&self) {
        self.lock().gone = true;
        self.notify.notify_one();
    }

    /// True once [`WsInbox::gone`] was called.
    pub fn is_gone(&self) -> bool {
        self.lock().gone
    }

    /// Takes the next queued event.
    pub fn pop(&self) -> Option<ClientEvent> {
        self.lock().queue.pop_front()
    }

    /// Waits for the next push or [`WsInbox::gone`] (a wake-up that came while nobody waited
    /// is kept).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}
