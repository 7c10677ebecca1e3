//! Events the hub and the session table report to stats, metrics and the ZeroMQ SUB input.
//!
//! The producers (the hub, [`crate::grip::subs::SubTracker`], the session table) call
//! [`Observers::emit`] while they hold their own lock, so observers see events in the order the
//! state changed: a `Listen` can never overtake the `Unlisten` before it. In exchange an
//! observer must be quick and must never block or take the hub or session-table lock: it
//! records the event in atomics or under its own short mutex and does the slow work (sockets,
//! encoding) on its own thread or task.
//!
//! WebSocket sessions report through the same events: `ConnOpened` with [`ConnKind::Ws`],
//! subscriptions with [`SubMode::Ws`], deliveries with [`Transport::WsMessage`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A subscription's kind, as in Pushpin's `sub` stats packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubMode {
    /// Response hold (long-poll); lingers `subscription_linger` after its last subscriber.
    Response,
    /// Stream hold.
    Stream,
    /// WebSocket.
    Ws,
}

impl SubMode {
    /// The stats spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Response => "response",
            Self::Stream => "stream",
            Self::Ws => "ws",
        }
    }
}

/// A delivery's transport, as in Pushpin's `message` stats packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A long-poll completed.
    HttpResponse,
    /// Content appended to a stream.
    HttpStream,
    /// A WebSocket message.
    WsMessage,
}

impl Transport {
    /// The stats spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpResponse => "http-response",
            Self::HttpStream => "http-stream",
            Self::WsMessage => "ws-message",
        }
    }
}

/// A client connection's kind (`type` of `conn` packets; `transport` label of metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnKind {
    /// An HTTP request/response exchange (plain, held or streamed).
    Http,
    /// A WebSocket.
    Ws,
}

impl ConnKind {
    /// The stats spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
        }
    }
}

/// Why a delivery or a published item was dropped (the `reason` label of the drop counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A slow stream's queue was full.
    QueueFull,
    /// The (channel, id) was seen within `id_cache_ttl`.
    Duplicate,
    /// A ZeroMQ publish message could not be parsed.
    Malformed,
    /// A route's delivery-limiter bucket was at `message_hwm`.
    Hwm,
}

impl DropReason {
    /// Every reason, for rendering all counters.
    pub const ALL: [Self; 4] = [Self::QueueFull, Self::Duplicate, Self::Malformed, Self::Hwm];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Duplicate => "duplicate",
            Self::Malformed => "malformed",
            Self::Hwm => "hwm",
        }
    }
}

/// Where a publish came from (the `input` label of the publish counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublishInput {
    /// The HTTP control API.
    Http,
    /// The ZeroMQ PULL socket.
    ZmqPull,
    /// The ZeroMQ SUB socket.
    ZmqSub,
    /// The command socket's `publish` method.
    Command,
}

impl PublishInput {
    /// Every input, for rendering all counters.
    pub const ALL: [Self; 4] = [Self::Http, Self::ZmqPull, Self::ZmqSub, Self::Command];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::ZmqPull => "zmq-pull",
            Self::ZmqSub => "zmq-sub",
            Self::Command => "command",
        }
    }
}

/// One observed state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client connection (one request stream) started. `id` is Holdfast's connection id,
    /// `<connmgr worker identity>:<slot>-<generation>` (see [`conn_id`]).
    ConnOpened {
        /// Connection id.
        id: Arc<str>,
        /// Kind.
        kind: ConnKind,
        /// Client address.
        peer: Arc<str>,
    },
    /// The connection ended.
    ConnClosed {
        /// Connection id.
        id: Arc<str>,
    },
    /// A (mode, channel) subscription appeared or its subscriber count changed (≥ 1).
    Subscribed {
        /// Mode.
        mode: SubMode,
        /// Channel (with route prefix).
        channel: Arc<str>,
        /// Current subscribers.
        subscribers: usize,
    },
    /// A (mode, channel) subscription went away (after the linger for response mode).
    Unsubscribed {
        /// Mode.
        mode: SubMode,
        /// Channel.
        channel: Arc<str>,
    },
    /// The first subscription (any mode) of a channel appeared: subscribe the SUB socket.
    Listen(Arc<str>),
    /// The last subscription of a channel went away: unsubscribe the SUB socket.
    Unlisten(Arc<str>),
    /// An item reached `count` (≥ 1) receivers over `transport`.
    Delivered {
        /// Channel.
        channel: Arc<str>,
        /// Item id.
        item_id: Option<Arc<str>>,
        /// Transport.
        transport: Transport,
        /// Receivers.
        count: usize,
        /// Content bytes handed out per receiver (stream content or response body).
        bytes: usize,
    },
    /// `count` deliveries or items were dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// How many.
        count: u64,
    },
    /// One valid item was received from `input` and run through the pipeline.
    Published(PublishInput),
    /// One published item reached somebody: the time from its publish call to its delivery
    /// messages being in the outbox.
    PublishLatency(Duration),
    /// A connection's request matched a route with an explicit `id=` (stats `route` field).
    RouteSelected {
        /// Connection id.
        id: Arc<str>,
        /// The route's id.
        route: Arc<str>,
    },
}

/// Something that wants events. See the module docs for the rules.
pub trait Observer: Send + Sync + fmt::Debug {
    /// Records one event; must not block.
    fn observe(&self, event: &Event);
}

/// A fan-out over observers; empty (and free) by default.
#[derive(Clone, Debug, Default)]
pub struct Observers(Arc<[Arc<dyn Observer>]>);

impl Observers {
    /// Observers in the given order.
    pub fn new(list: Vec<Arc<dyn Observer>>) -> Self {
        Self(list.into())
    }

    /// True when nobody listens (callers may skip building events).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands `event` to every observer.
    pub fn emit(&self, event: Event) {
        for o in self.0.iter() {
            o.observe(&event);
        }
    }
}

/// Holdfast's spelling of a connection id: `<worker identity>:<slot>-<generation>`, e.g.
/// `t-connmgr-0:3-1`. It plays the role of Pushpin's `<connmgr id>:<request id>`.
pub fn conn_id(
    worker: &crate::ipc::WorkerId,
    stream: holdfast_proto::internal::StreamId,
) -> String {
    format!("{worker}:{stream}")
}

/// The reverse of [`conn_id`]: the worker identity and stream id, or `None` when `id` is not
/// spelled that way (the stream part may also be the plain 64-bit number).
pub fn parse_conn_id(
    id: &str,
) -> Option<(crate::ipc::WorkerId, holdfast_proto::internal::StreamId)> {
    use holdfast_proto::internal::StreamId;
    let (worker, stream) = id.rsplit_once(':')?;
    if worker.is_empty() {
        return None;
    }
    let stream = match stream.split_once('-') {
        Some((slot, generation)) => StreamId::new(slot.parse().ok()?, generation.parse().ok()?),
        None => StreamId(stream.parse().ok()?),
    };
    Some((crate::ipc::WorkerId::new(worker.to_string()), stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::WorkerId;
    use holdfast_proto::internal::StreamId;

    #[test]
    fn conn_ids_round_trip() {
        let w = WorkerId::new("t-connmgr-0");
        let id = conn_id(&w, StreamId::new(3, 1));
        assert_eq!(id, "t-connmgr-0:3-1");
        assert_eq!(parse_conn_id(&id), Some((w.clone(), StreamId::new(3, 1))));
        assert_eq!(
            parse_conn_id("t-connmgr-0:12884901889"),
            Some((w, StreamId::new(3, 1)))
        );
        assert_eq!(parse_conn_id("nocolon"), None);
        assert_eq!(parse_conn_id(":1-2"), None);
        assert_eq!(parse_conn_id("w:x-1"), None);
    }
}
