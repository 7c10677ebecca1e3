//! The ZeroMQ side: one ROUTER socket shared by every connmgr worker.
//!
//! ZeroMQ sockets are not thread-safe, so one task, [`bridge`], owns the socket (polling its
//! signalling descriptor through tokio). The rest of the handler talks to it through two queues:
//!
//! * inbound, [`Inbound`] over a bounded tokio mpsc: decoded batches and "worker gone" events;
//! * outbound, the [`Outbox`]: a crossbeam queue plus a [`tokio::sync::Notify`] that wakes the
//!   bridge once per batch of pushes.
//!
//! Outbound memory is bounded by bytes: [`Outbox::send`] (used for response heads and bodies)
//! waits while more than [`OUTBOX_MAX_BYTES`] are queued, so a connmgr that stops reading slows
//! the sessions down instead of growing the queue. [`Outbox::push`] never waits and is used only
//! for small control messages (credits, close, error answers) whose number the protocol bounds.

pub mod bridge;
pub mod peers;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use holdfast_proto::internal::{ToConnmgr, ToHandler};

/// Byte budget of messages queued towards the connmgr but not yet handed to ZeroMQ.
pub const OUTBOX_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Fixed per-message overhead counted against [`OUTBOX_MAX_BYTES`].
const MESSAGE_OVERHEAD: usize = 64;

/// The ZeroMQ routing identity of one connmgr worker (`<instance>-<worker>`).
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct WorkerId(Bytes);

impl std::hash::Hash for WorkerId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Byte equality, with a shortcut for two handles on the same bytes (clones of one identity),
/// which is what the hub compares once per receiver when it groups a delivery by worker.
impl PartialEq for WorkerId {
    fn eq(&self, other: &Self) -> bool {
        (self.0.as_ptr() == other.0.as_ptr() && self.0.len() == other.0.len()) || self.0 == other.0
    }
}

impl WorkerId {
    /// Wraps a routing identity.
    pub fn new(identity: impl Into<Bytes>) -> Self {
        Self(identity.into())
    }

    /// The raw identity frame.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({self})")
    }
}

/// What the bridge thread tells the tokio side.
#[derive(Debug)]
pub enum Inbound {
    /// One decoded packet's messages (Hello and Heartbeat already handled by the bridge).
    Messages {
        /// The sending worker.
        worker: WorkerId,
        /// The batch, in order.
        msgs: Vec<ToHandler>,
    },
    /// Every stream of this worker is dead: abort its sessions. Sent before any message of a
    /// restarted worker's new incarnation.
    WorkerGone {
        /// The worker.
        worker: WorkerId,
        /// Why, for logs.
        reason: GoneReason,
    },
}

/// Why a worker's streams were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoneReason {
    /// It sent a packet with a new epoch (the connmgr restarted).
    Restarted,
    /// Nothing arrived from it for `PEER_TIMEOUT_MS`.
    TimedOut,
    /// ZeroMQ no longer knows its identity (it disconnected).
    Unreachable,
}

impl fmt::Display for GoneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Restarted => "restarted",
            Self::TimedOut => "timed out",
            Self::Unreachable => "unreachable",
        })
    }
}

/// The bridge has stopped; nothing can be sent any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the ZeroMQ bridge has stopped")]
pub struct OutboxClosed;

/// One queued outbound message.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) worker: WorkerId,
    pub(crate) msg: ToConnmgr,
    pub(crate) weight: usize,
}

/// Sending side of the queue to the bridge. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    inner: Arc<OutboxShared>,
    tx: crossbeam_channel::Sender<Outgoing>,
}

#[derive(Debug)]
struct OutboxShared {
    /// Wakes the bridge. `notify_one` keeps a permit when the bridge is not waiting, so a
    /// push between its drain and its next wait is never missed.
    wake: tokio::sync::Notify,
    /// A wake-up is pending; avoids one notification per message.
    wake_pending: AtomicBool,
    /// Sum of the weights of queued (not yet sent) messages.
    queued: AtomicUsize,
    /// Signalled by the bridge whenever it releases queued bytes.
    space: tokio::sync::Notify,
    max_bytes: usize,
    /// Set when the receiver (the bridge) is gone.
    closed: AtomicBool,
}

/// Receiving side, owned by the bridge.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    inner: Arc<OutboxShared>,
    rx: crossbeam_channel::Receiver<Outgoing>,
}

/// Creates the outbox pair with the given byte budget.
pub(crate) fn outbox(max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let inner = Arc::new(OutboxShared {
        wake: tokio::sync::Notify::new(),
        wake_pending: AtomicBool::new(false),
        queued: AtomicUsize::new(0),
        space: tokio::sync::Notify::new(),
        max_bytes,
        closed: AtomicBool::new(false),
    });
    // Unbounded in count: the byte budget above is the bound that matters.
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        Outbox {
            inner: inner.clone(),
            tx,
        },
        OutboxReceiver { inner, rx },
    )
}

/// Bytes a message counts against the budget.
pub(crate) fn weight(msg: &ToConnmgr) -> usize {
    MESSAGE_OVERHEAD
        + match msg {
            ToConnmgr::Response(head) => {
                head.body.len()
                    + head
                        .headers
                        .iter()
                        .map(|h| h.0.len() + h.1.len() + 4)
                        .sum::<usize>()
                    + head.reason.len()
            }
            ToConnmgr::Body(body) => body.data.len(),
            // The payload travels once per worker; each id costs its 8 bytes in the packet.
            ToConnmgr::Fanout(fanout) => fanout.data.len() + fanout.ids.len() * 8,
            ToConnmgr::WsMessage(msg) => msg.data.len(),
            ToConnmgr::WsFanout(fanout) => fanout.data.len() + fanout.ids.len() * 8,
            ToConnmgr::WsAccept(accept) => accept
                .headers
                .iter()
                .map(|h| h.0.len() + h.1.len() + 4)
                .sum::<usize>(),
            ToConnmgr::WsClose(close) => close.reason.len(),
            ToConnmgr::Hello
            | ToConnmgr::Heartbeat
            | ToConnmgr::Credit(_)
            | ToConnmgr::Close(_) => 0,
        }
}

impl Outbox {
    /// Queues a message without waiting. For small control messages and one-shot answers.
    pub fn push(&self, worker: &WorkerId, msg: ToConnmgr) -> Result<(), OutboxClosed> {
        let weight = weight(&msg);
        self.inner.queued.fetch_add(weight, Ordering::AcqRel);
        let item = Outgoing {
            worker: worker.clone(),
            msg,
            weight,
        };
        if self.tx.send(item).is_err() {
            self.inner.queued.fetch_sub(weight, Ordering::AcqRel);
            return Err(OutboxClosed);
        }
        self.wake();
        Ok(())
    }

    /// Queues a message, first waiting while the queue holds more than its byte budget.
    pub async fn send(&self, worker: &WorkerId, msg: ToConnmgr) -> Result<(), OutboxClosed> {
        loop {
            let notified = self.inner.space.notified();
            tokio::pin!(notified);
            // Register before checking so a release between the check and the await is seen.
            notified.as_mut().enable();
            if self.inner.queued.load(Ordering::Acquire) <= self.inner.max_bytes {
                return self.push(worker, msg);
            }
            if self.is_closed() {
                return Err(OutboxClosed);
            }
            notified.await;
        }
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    /// True once the bridge has gone.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn wake(&self) {
        if !self.inner.wake_pending.swap(true, Ordering::AcqRel) {
            self.inner.wake.notify_one();
        }
    }

    /// Wakes the bridge without queueing anything (it then sees its stop flag).
    pub(crate) fn wake_receiver(&self) {
        self.inner.wake.notify_one();
    }
}

impl OutboxReceiver {
    /// Re-arms the wake flag. Call before draining so a message pushed after the drain always
    /// causes a new wake-up.
    pub(crate) fn rearm(&self) {
        self.inner.wake_pending.store(false, Ordering::Release);
    }

    /// Resolves once a push (or a stop) has happened since the last time it resolved.
    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Takes the next queued message, if any.
    pub(crate) fn try_recv(&self) -> Option<Outgoing> {
        self.rx.try_recv().ok()
    }

    /// Gives `bytes` of budget back (the messages were sent or dropped) and wakes waiters.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.inner.queued.fetch_sub(bytes, Ordering::AcqRel);
            self.inner.space.notify_waiters();
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        // Wake every waiter so none of them sleeps forever on a queue that will never drain;
        // their next push fails because the receiver is gone.
        self.inner.closed.store(true, Ordering::Release);
        self.inner.queued.store(0, Ordering::Release);
        self.inner.space.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::internal::{Body, CloseReason, Closed, StreamId};

    fn body(n: usize) -> ToConnmgr {
        ToConnmgr::Body(Body {
            id: StreamId(1),
            data: Bytes::from(vec![b'x'; n]),
            more: true,
        })
    }

    #[test]
    fn push_counts_bytes_and_release_returns_them() {
        let (outbox, rx) = outbox(1000);
        let worker = WorkerId::new("w-0");
        outbox.push(&worker, body(100)).unwrap();
        assert_eq!(outbox.queued_bytes(), 100 + MESSAGE_OVERHEAD);
        rx.rearm();
        let item = rx.try_recv().unwrap();
        assert_eq!(item.worker, worker);
        rx.release(item.weight);
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn push_fails_once_receiver_is_gone() {
        let (outbox, rx) = outbox(1000);
        drop(rx);
        let msg = ToConnmgr::Close(Closed {
            id: StreamId(1),
            reason: CloseReason::Shutdown,
        });
        assert_eq!(outbox.push(&WorkerId::new("w"), msg), Err(OutboxClosed));
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn send_waits_for_budget() {
        let (outbox, rx) = outbox(100);
        let worker = WorkerId::new("w");
        outbox.send(&worker, body(200)).await.unwrap();
        let waiting = {
            let outbox = outbox.clone();
            let worker = worker.clone();
            tokio::spawn(async move { outbox.send(&worker, body(10)).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "over budget: send must wait");
        let item = rx.try_recv().unwrap();
        rx.release(item.weight);
        waiting.await.unwrap().unwrap();
        assert_eq!(outbox.queued_bytes(), 10 + MESSAGE_OVERHEAD);
    }

    #[tokio::test]
    async fn send_fails_when_receiver_drops_while_waiting() {
        let (outbox, rx) = outbox(10);
        let worker = WorkerId::new("w");
        outbox.send(&worker, body(200)).await.unwrap();
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(&WorkerId::new("w"), body(1)).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(OutboxClosed));
    }
}
