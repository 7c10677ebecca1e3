//! The per-worker state every connection needs while it is driven: clock, limits, buffer pools,
//! the outgoing batch for the handler and stream bookkeeping.
//!
//! It is kept apart from the connection slab so a connection can borrow it mutably while the
//! worker holds the connection itself.

use std::time::{Duration, Instant};

/// How long a connection's credit may wait for the sweep: a handler holding back a message
/// larger than three quarters of its window (see [`Ctx::credit_batch`]) waits at most this
/// much longer.
pub const CREDIT_HOLD: Duration = Duration::from_millis(20);

use holdfast_proto::config::DEFAULT_CLIENT_HEADER_TIMEOUT;
use holdfast_proto::internal::{StreamId, ToHandler};

use super::write_queue::Segment;
use crate::pool::{BufferPool, DequePool, DEFAULT_MAX_SPARE};
use crate::ws::deflate::{MessageCompressor, DEFAULT_LEVEL};
use crate::ws::extension::DeflateOptions;
use crate::ws::Limits;

/// A worker's WebSocket settings, and its one message compressor.
#[derive(Debug, Default)]
pub struct WsSettings {
    /// Negotiate permessage-deflate (`--compression`).
    pub compression: bool,
    /// Frame and message limits for client input.
    pub limits: Limits,
    /// Created when the first compressed message is sent; its state is large, and every
    /// connection shares it because each message starts from a fresh state.
    compressor: Option<MessageCompressor>,
}

impl WsSettings {
    /// Settings for `--compression` and `--max-message-size`. The frame limit leaves room
    /// for DEFLATE's worst-case growth of an incompressible message of the largest size.
    pub fn new(compression: bool, max_message_size: usize) -> Self {
        let frame = max_message_size as u64 + (max_message_size as u64 >> 4) + 1024;
        Self {
            compression,
            limits: Limits {
                max_frame_size: frame,
                max_message_size,
            },
            compressor: None,
        }
    }

    /// How to negotiate permessage-deflate, `None` when compression is off.
    pub fn deflate_options(&self) -> Option<DeflateOptions> {
        self.compression.then(DeflateOptions::default)
    }

    /// The worker's compressor (`server_no_context_takeover`).
    pub fn compressor(&mut self) -> &mut MessageCompressor {
        self.compressor
            .get_or_insert_with(|| MessageCompressor::new(DEFAULT_LEVEL))
    }
}

/// Per-worker context handed to every [`super::conn::Conn`] call.
#[derive(Debug)]
pub struct Ctx {
    /// The time of the current event-loop pass.
    pub now: Instant,
    /// Connection buffer size (and request head limit).
    pub buffer_size: usize,
    /// Response body bytes a stream's handler may have outstanding ([`RequestHead::credits`]).
    ///
    /// [`RequestHead::credits`]: holdfast_proto::internal::RequestHead::credits
    pub response_window: u32,
    /// Inactivity timeout.
    pub stream_timeout: Duration,
    /// Longest time from the first byte of a request head to its end (`--header-timeout`).
    pub header_timeout: Duration,
    /// The worker is shutting down: no new requests, no keep-alive.
    pub draining: bool,
    /// Read buffers.
    pub buffers: BufferPool,
    /// Write queue deques.
    pub deques: DequePool<Segment>,
    /// WebSocket settings.
    pub ws: WsSettings,
    /// Credit smaller than this waits for the credit sweep, up to [`CREDIT_HOLD`]; 0 returns
    /// every credit at once. The worker uses a quarter of the response window.
    pub credit_batch: u32,
    /// Connections holding credit back for the sweep: (slot, uid).
    credit_held: Vec<(usize, u64)>,
    /// When the held credit is due.
    credit_due_at: Option<Instant>,
    outbox: Vec<ToHandler>,
    outbox_bytes: usize,
    generations: Vec<u32>,
    inflight: usize,
    inflight_since: Option<Instant>,
}

impl Ctx {
    /// A context for a worker with these limits.
    pub fn new(
        now: Instant,
        buffer_size: usize,
        response_window: u32,
        stream_timeout: Duration,
    ) -> Self {
        Self {
            now,
            buffer_size,
            response_window,
            stream_timeout,
            header_timeout: Duration::from_secs(DEFAULT_CLIENT_HEADER_TIMEOUT),
            draining: false,
            buffers: BufferPool::new(buffer_size, DEFAULT_MAX_SPARE),
            deques: DequePool::new(DEFAULT_MAX_SPARE),
            ws: WsSettings::default(),
            credit_batch: 0,
            credit_held: Vec::new(),
            credit_due_at: None,
            outbox: Vec::new(),
            outbox_bytes: 0,
            generations: Vec::new(),
            inflight: 0,
            inflight_since: None,
        }
    }

    /// Lists a connection for the credit sweep ([`CREDIT_HOLD`] from the first one listed).
    pub(super) fn hold_credit(&mut self, slot: usize, uid: u64) {
        self.credit_held.push((slot, uid));
        self.credit_due_at.get_or_insert(self.now + CREDIT_HOLD);
    }

    /// When the credit sweep is due, if anything is held.
    pub(super) fn credit_due_at(&self) -> Option<Instant> {
        self.credit_due_at
    }

    /// The connections to sweep, if the sweep is due (`now` past [`Self::credit_due_at`]).
    pub(super) fn take_held_credit(&mut self) -> Option<Vec<(usize, u64)>> {
        if self.credit_due_at.is_none_or(|at| self.now < at) {
            return None;
        }
        self.credit_due_at = None;
        Some(std::mem::take(&mut self.credit_held))
    }

    /// Queues a message for the handler; it leaves with the rest of this pass's batch.
    pub fn send(&mut self, msg: ToHandler) {
        self.outbox_bytes += approximate_size(&msg);
        self.outbox.push(msg);
    }

    /// Approximate encoded size of the queued batch.
    pub fn outbox_bytes(&self) -> usize {
        self.outbox_bytes
    }

    /// True if nothing is queued for the handler.
    pub fn outbox_is_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Takes the queued batch, leaving an empty one (capacity kept by [`Self::restore_outbox`]).
    pub fn take_outbox(&mut self) -> Vec<ToHandler> {
        self.outbox_bytes = 0;
        std::mem::take(&mut self.outbox)
    }

    /// Gives back the batch vector after encoding, so its capacity is reused.
    pub fn restore_outbox(&mut self, mut msgs: Vec<ToHandler>) {
        msgs.clear();
        if self.outbox.is_empty() && msgs.capacity() <= 4096 {
            self.outbox = msgs;
        }
    }

    /// A fresh stream id for a request on connection `slot`: the slot's generation moves on, so
    /// no later message for an earlier stream of this slot (or of a previous connection in it)
    /// can match.
    pub fn next_stream_id(&mut self, slot: usize) -> StreamId {
        if self.generations.len() <= slot {
            self.generations.resize(slot + 1, 0);
        }
        let generation = self.generations[slot].wrapping_add(1);
        self.generations[slot] = generation;
        // Slots are bounded by the connection limit, far below u32::MAX.
        StreamId::new(slot as u32, generation)
    }

    /// A stream was sent to the handler and awaits its response.
    pub fn stream_opened(&mut self) {
        if self.inflight == 0 {
            self.inflight_since = Some(self.now);
        }
        self.inflight += 1;
    }

    /// A stream stopped waiting for the handler (response complete or stream aborted).
    pub fn stream_settled(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
        if self.inflight == 0 {
            self.inflight_since = None;
        }
    }

    /// Streams waiting for the handler.
    pub fn inflight(&self) -> usize {
        self.inflight
    }

    /// Since when streams have been waiting for the handler without interruption.
    pub fn inflight_since(&self) -> Option<Instant> {
        self.inflight_since
    }
}

fn approximate_size(msg: &ToHandler) -> usize {
    match msg {
        ToHandler::Request(head) | ToHandler::Upgrade(head) => {
            128 + head.method.len()
                + head.target.len()
                + head.body.len()
                + head
                    .headers
                    .iter()
                    .map(|h| h.0.len() + h.1.len() + 4)
                    .sum::<usize>()
        }
        ToHandler::Body(body) => 32 + body.data.len(),
        ToHandler::WsMessage(msg) => 32 + msg.data.len(),
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_move_on_per_slot() {
        let mut cx = Ctx::new(Instant::now(), 1024, 65536, Duration::from_secs(1));
        let a = cx.next_stream_id(3);
        let b = cx.next_stream_id(3);
        let c = cx.next_stream_id(0);
        assert_eq!((a.slot(), a.generation()), (3, 1));
        assert_eq!((b.slot(), b.generation()), (3, 2));
        assert_eq!((c.slot(), c.generation()), (0, 1));
    }

    #[test]
    fn inflight_tracking() {
        let t0 = Instant::now();
        let mut cx = Ctx::new(t0, 1024, 65536, Duration::from_secs(1));
        cx.stream_opened();
        cx.now = t0 + Duration::from_secs(1);
        cx.stream_opened();
        assert_eq!(cx.inflight(), 2);
        assert_eq!(cx.inflight_since(), Some(t0));
        cx.stream_settled();
        cx.stream_settled();
        cx.stream_settled();
        assert_eq!(cx.inflight(), 0);
        assert_eq!(cx.inflight_since(), None);
    }

    #[test]
    fn outbox_round_trip() {
        let mut cx = Ctx::new(Instant::now(), 1024, 65536, Duration::from_secs(1));
        assert!(cx.outbox_is_empty());
        cx.send(ToHandler::Heartbeat);
        assert_eq!(cx.outbox_bytes(), 32);
        let msgs = cx.take_outbox();
        assert_eq!(msgs.len(), 1);
        assert_eq!(cx.outbox_bytes(), 0);
        cx.restore_outbox(msgs);
        assert!(cx.outbox_is_empty());
    }
}
