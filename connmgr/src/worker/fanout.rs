//! Applying `Fanout` and `WsFanout` messages: queue first, write once.
//!
//! A fanout only *queues* its payload on each listed stream (a refcount of the shared bytes
//! between that stream's framing segments); the socket writes happen afterwards, once per
//! connection, when the worker has applied every handler packet available in this pass
//! ([`Worker::flush_fanout_writes`]). When publishes arrive faster than 10,000 sockets can be
//! written, the payloads that piled up meanwhile therefore leave in ONE `writev` per
//! connection instead of one per payload, as a minimal server that drains its queue before
//! writing would do. The `writev` (and, on loopback, the receiver's TCP processing the kernel
//! runs in the writer's context) is the dominant per-delivery cost of a big fan-out, so this
//! is where the latency of a burst of publishes is won.
//!
//! The written bytes then count as credit for the handler: one `Credit` per stream however
//! many fanouts the pass held, and less than a quarter of the window waits for the worker's
//! credit sweep (`Ctx::hold_credit`, at most 20 ms), so small messages at a steady rate cost one
//! `Credit` per stream per sweep.
//!
//! Order is kept: every message for a stream appends to the same write queue, and a message
//! that drives the connection itself (a `Body`, a `Response`) writes the queued fanout bytes
//! first. A stream that ends or is aborted before the flush is found gone (by id) and skipped.

use bytes::Bytes;
use holdfast_proto::internal::{CloseReason, Fanout, StreamId, WsFanout};
use tracing::{debug, trace, warn};

use super::conn::{Conn, Status};
use super::ctx::Ctx;
use super::stream::{push_fanout, FanoutOutcome};
use super::ws_conn::OutFrame;
use super::Worker;

/// Running totals of the fanouts a worker applied (logged at debug level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FanoutStats {
    /// Fanout messages received.
    pub(super) messages: u64,
    /// Stream deliveries (payload queued for a stream).
    pub(super) delivered: u64,
    /// Ids skipped: stream gone or unknown, response not started or complete, id repeated.
    pub(super) skipped: u64,
    /// Streams aborted because the payload exceeded their credits.
    pub(super) cut_off: u64,
}

/// What queueing one fanout on one connection did.
struct Queued {
    /// What happened to the payload.
    outcome: FanoutOutcome,
    /// The connection's status (a stream cut off for exceeding its credits is closed).
    status: Status,
    /// The connection was not yet waiting for the write flush: register it.
    first: bool,
}

impl Queued {
    fn skipped(outcome: FanoutOutcome) -> Self {
        Self {
            outcome,
            status: Status::Open,
            first: false,
        }
    }
}

/// Queues fanout `seq`'s payload on the connection's HTTP stream (see [`push_fanout`]),
/// without writing.
fn queue_http(conn: &mut Conn, slot: usize, data: &Bytes, seq: u64, cx: &mut Ctx) -> Queued {
    let Some(stream) = conn.stream.as_mut() else {
        return Queued::skipped(FanoutOutcome::Finished);
    };
    match push_fanout(stream, &mut conn.wq, data, seq, cx) {
        FanoutOutcome::Queued => {
            // `credit_deferred` marks "waiting for the flush" (the flush returns the credit).
            let first = !std::mem::replace(&mut stream.credit_deferred, true);
            Queued {
                outcome: FanoutOutcome::Queued,
                status: Status::Open,
                first,
            }
        }
        FanoutOutcome::OverCredit => Queued {
            outcome: FanoutOutcome::OverCredit,
            status: conn.handler_violation(slot, "response body beyond credits (fanout)", cx),
            first: false,
        },
        other => Queued::skipped(other),
    }
}

/// Queues fanout `seq`'s frame on the connection's WebSocket, without writing.
fn queue_ws(conn: &mut Conn, out: &mut OutFrame, seq: u64, cx: &mut Ctx) -> Queued {
    let Some(ws) = conn.ws.as_mut() else {
        return Queued::skipped(if conn.stream.is_some() {
            FanoutOutcome::NotStarted
        } else {
            FanoutOutcome::Finished
        });
    };
    match ws.push_fanout(out, seq, &mut conn.wq, cx) {
        FanoutOutcome::Queued => {
            // While set, the WebSocket holds its credit back until the flush.
            let first = !std::mem::replace(&mut ws.credit_deferred, true);
            Queued {
                outcome: FanoutOutcome::Queued,
                status: Status::Open,
                first,
            }
        }
        FanoutOutcome::OverCredit => {
            // A handler protocol violation: abort this WebSocket only.
            warn!(
                stream = %ws.id,
                "handler protocol violation: WebSocket message beyond credits (fanout); aborting the WebSocket"
            );
            conn.end_stream(Some(CloseReason::BackendError), cx);
            Queued {
                outcome: FanoutOutcome::OverCredit,
                status: Status::Close,
                first: false,
            }
        }
        other => Queued::skipped(other),
    }
}

impl Worker {
    /// Queues one payload on every listed stream that can take it (see the module docs).
    pub(super) fn fanout(&mut self, fanout: Fanout) {
        let Fanout { ids, data } = fanout;
        self.fan_out("fanout", data.len(), ids, |conn, slot, seq, cx| {
            queue_http(conn, slot, &data, seq, cx)
        });
    }

    /// Queues one WebSocket message on every listed stream that can take it: framed (and, for
    /// connections with permessage-deflate, compressed) once, the same bytes on each.
    pub(super) fn ws_fanout(&mut self, fanout: WsFanout) {
        let WsFanout { ids, kind, data } = fanout;
        let bytes = data.len();
        let mut out = match OutFrame::new(kind, data) {
            Ok(out) => out,
            Err(what) => {
                warn!(
                    worker = self.index,
                    "handler protocol violation: {what} (WsFanout); dropped"
                );
                return;
            }
        };
        self.fan_out("ws fanout", bytes, ids, |conn, _, seq, cx| {
            queue_ws(conn, &mut out, seq, cx)
        });
    }

    /// The loop both fan-outs share: find each stream in O(1) by slot, queue the payload with
    /// `queue`, count what happened, and register the connection for the write flush.
    fn fan_out(
        &mut self,
        what: &'static str,
        bytes: usize,
        ids: Vec<StreamId>,
        mut queue: impl FnMut(&mut Conn, usize, u64, &mut Ctx) -> Queued,
    ) {
        self.fanout_seq += 1;
        let seq = self.fanout_seq;
        let (mut delivered, mut skipped, mut cut_off) = (0u64, 0u64, 0u64);
        for id in ids {
            let Some(slot) = self.stream_slot(id) else {
                trace!(worker = self.index, stream = %id, "{what}: stream gone; skipped");
                skipped += 1;
                continue;
            };
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            let result = queue(conn, slot, seq, &mut self.cx);
            match result.outcome {
                FanoutOutcome::Queued => delivered += 1,
                FanoutOutcome::OverCredit => cut_off += 1,
                other => {
                    trace!(worker = self.index, stream = %id, "{what}: {}; skipped", other.as_str());
                    skipped += 1;
                }
            }
            if result.first {
                self.write_due.push((slot, id));
            }
            if result.outcome == FanoutOutcome::OverCredit {
                // The stream was aborted (the connection closes, or lingers after an error).
                self.after(slot, result.status);
            }
        }
        self.record_fanout(what, bytes, delivered, skipped, cut_off);
    }

    fn record_fanout(
        &mut self,
        what: &str,
        bytes: usize,
        delivered: u64,
        skipped: u64,
        cut_off: u64,
    ) {
        let stats = &mut self.fanout_stats;
        stats.messages += 1;
        stats.delivered += delivered;
        stats.skipped += skipped;
        stats.cut_off += cut_off;
        debug!(
            worker = self.index,
            bytes,
            delivered,
            skipped,
            cut_off,
            total_delivered = stats.delivered,
            total_skipped = stats.skipped,
            total_cut_off = stats.cut_off,
            "{what}"
        );
    }

    /// Writes every connection a fanout queued bytes on since the last flush, once each, and
    /// returns the written bytes as credit (one `Credit` per stream).
    pub(super) fn flush_fanout_writes(&mut self) {
        let mut due = std::mem::take(&mut self.write_due);
        for (slot, id) in due.drain(..) {
            if self.stream_slot(id) != Some(slot) {
                continue;
            }
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if let Some(stream) = conn.stream.as_mut() {
                stream.credit_deferred = false;
            }
            if let Some(ws) = conn.ws.as_mut() {
                ws.credit_deferred = false;
            }
            let status = conn.drive(slot, &mut self.cx);
            self.after(slot, status);
        }
        // Keep the vector's capacity for the next burst, within reason.
        if due.capacity() <= 1 << 16 {
            self.write_due = due;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Queueing over a real loopback socket: nothing is written until the connection is driven,
    //! then everything leaves together and is credited once.

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use holdfast_proto::internal::{ResponseHead, ToHandler};

    use super::*;

    const SLOT: usize = 0;

    /// A connection whose client reads give up after 300 ms.
    fn pair() -> (Conn, TcpStream) {
        crate::worker::tests::pair(Duration::from_millis(300))
    }

    /// A streaming (chunked) response open on a fresh connection; returns its stream id.
    fn streaming(conn: &mut Conn, client: &mut TcpStream, cx: &mut Ctx) -> StreamId {
        client
            .write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let id = loop {
            assert_eq!(conn.on_ready(SLOT, true, true, cx), Status::Open);
            let found = cx.take_outbox().into_iter().find_map(|m| match m {
                ToHandler::Request(head) => Some(head.id),
                _ => None,
            });
            if let Some(id) = found {
                break id;
            }
            assert!(Instant::now() < deadline, "no request");
            std::thread::sleep(Duration::from_millis(5));
        };
        let head = ResponseHead {
            id,
            code: 200,
            reason: "OK".into(),
            headers: Vec::new(),
            body: Bytes::new(),
            more: true,
        };
        assert_eq!(conn.on_response(SLOT, head, cx), Status::Open);
        let mut buf = [0u8; 256];
        let n = client.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
        id
    }

    /// What the worker's write flush does for one connection.
    fn flush(conn: &mut Conn, cx: &mut Ctx) -> Status {
        if let Some(stream) = conn.stream.as_mut() {
            stream.credit_deferred = false;
        }
        if let Some(ws) = conn.ws.as_mut() {
            ws.credit_deferred = false;
        }
        conn.drive(SLOT, cx)
    }

    fn credits(cx: &mut Ctx) -> Vec<(StreamId, u32)> {
        cx.take_outbox()
            .into_iter()
            .filter_map(|m| match m {
                ToHandler::Credit(c) => Some((c.id, c.bytes)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fanouts_queue_until_driven_then_leave_together_with_one_credit() {
        let mut cx = Ctx::new(Instant::now(), 4096, 1000, Duration::from_secs(60));
        let (mut conn, mut client) = pair();
        let id = streaming(&mut conn, &mut client, &mut cx);
        let data = Bytes::from_static(b"hello");
        for seq in 1..=3 {
            let q = queue_http(&mut conn, SLOT, &data, seq, &mut cx);
            assert_eq!((q.outcome, q.status), (FanoutOutcome::Queued, Status::Open));
            assert_eq!(q.first, seq == 1, "registered for the flush once");
        }
        // A repeated id within one fanout is skipped and costs nothing.
        let q = queue_http(&mut conn, SLOT, &data, 3, &mut cx);
        assert_eq!((q.outcome, q.first), (FanoutOutcome::Duplicate, false));
        let mut buf = [0u8; 64];
        assert!(
            client.read(&mut buf).is_err(),
            "nothing written before the flush"
        );
        assert!(credits(&mut cx).is_empty());

        if let Some(stream) = conn.stream.as_mut() {
            stream.credit_deferred = false;
        }
        assert_eq!(conn.drive(SLOT, &mut cx), Status::Open);
        let mut got = vec![0u8; 30];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, b"5\r\nhello\r\n5\r\nhello\r\n5\r\nhello\r\n");
        assert_eq!(credits(&mut cx), [(id, 15)], "one credit for the three");
        assert!(!conn.holds_buffers(), "the queue went back to the pool");
    }

    #[test]
    fn small_credits_wait_for_the_sweep_and_large_ones_leave_at_once() {
        let mut cx = Ctx::new(Instant::now(), 4096, 1000, Duration::from_secs(60));
        cx.credit_batch = 250;
        let (mut conn, mut client) = pair();
        let id = streaming(&mut conn, &mut client, &mut cx);
        let small = Bytes::from_static(b"hello");
        let mut got = vec![0u8; 10];
        // Two passes of small writes: credited nowhere yet, listed for the sweep once.
        for seq in 1..=2 {
            queue_http(&mut conn, SLOT, &small, seq, &mut cx);
            assert_eq!(flush(&mut conn, &mut cx), Status::Open);
            client.read_exact(&mut got).unwrap();
            assert!(credits(&mut cx).is_empty(), "below the batch: held");
        }
        let due = cx.credit_due_at().expect("a sweep is scheduled");
        assert_eq!(due, cx.now + crate::worker::ctx::CREDIT_HOLD);
        assert!(cx.take_held_credit().is_none(), "not due yet");
        cx.now = due;
        let held = cx.take_held_credit().expect("due");
        assert_eq!(held, [(SLOT, conn.uid())]);
        assert!(cx.credit_due_at().is_none());
        conn.release_held_credit(SLOT, &mut cx);
        assert_eq!(credits(&mut cx), [(id, 10)], "both writes, in one credit");

        // A write of at least the batch is credited in the same pass.
        let big = Bytes::from(vec![b'x'; 300]);
        queue_http(&mut conn, SLOT, &big, 3, &mut cx);
        assert_eq!(flush(&mut conn, &mut cx), Status::Open);
        let mut got = vec![0u8; 307];
        client.read_exact(&mut got).unwrap();
        assert_eq!(credits(&mut cx), [(id, 300)]);
        assert!(cx.credit_due_at().is_none(), "nothing held");
    }

    #[test]
    fn a_fanout_beyond_credits_aborts_only_that_stream() {
        let mut cx = Ctx::new(Instant::now(), 4096, 4, Duration::from_secs(60));
        let (mut conn, mut client) = pair();
        let id = streaming(&mut conn, &mut client, &mut cx);
        let q = queue_http(&mut conn, SLOT, &Bytes::from_static(b"hello"), 1, &mut cx);
        assert_eq!(
            (q.outcome, q.status),
            (FanoutOutcome::OverCredit, Status::Close)
        );
        let closed = cx.take_outbox().into_iter().any(|m| {
            matches!(m, ToHandler::Closed(c) if c.id == id && c.reason == CloseReason::BackendError)
        });
        assert!(closed, "the handler is told");
        // A connection without a stream skips the fanout.
        let q = queue_http(&mut conn, SLOT, &Bytes::from_static(b"x"), 2, &mut cx);
        assert_eq!(
            (q.outcome, q.status),
            (FanoutOutcome::Finished, Status::Open)
        );
    }

    #[test]
    fn a_body_after_a_queued_fanout_goes_out_behind_it() {
        let mut cx = Ctx::new(Instant::now(), 4096, 1000, Duration::from_secs(60));
        let (mut conn, mut client) = pair();
        let id = streaming(&mut conn, &mut client, &mut cx);
        let q = queue_http(&mut conn, SLOT, &Bytes::from_static(b"fan"), 1, &mut cx);
        assert_eq!((q.outcome, q.first), (FanoutOutcome::Queued, true));
        // A `Body` in the same pass drives the connection: the queued fanout leaves first.
        let body = holdfast_proto::internal::Body {
            id,
            data: Bytes::from_static(b"body"),
            more: true,
        };
        assert_eq!(conn.on_body(SLOT, body, &mut cx), Status::Open);
        let mut got = vec![0u8; 17];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, b"3\r\nfan\r\n4\r\nbody\r\n");
        assert_eq!(credits(&mut cx), [(id, 7)]);
        // The flush then finds nothing left to write or to credit.
        assert_eq!(flush(&mut conn, &mut cx), Status::Open);
        assert!(credits(&mut cx).is_empty());
        let mut buf = [0u8; 16];
        assert!(client.read(&mut buf).is_err(), "nothing more written");
    }

    #[test]
    fn a_blocked_client_queues_the_shared_payload_then_gives_the_queue_back() {
        let window = 1 << 20;
        let mut cx = Ctx::new(Instant::now(), 4096, window, Duration::from_secs(60));
        let (mut conn, mut client) = pair();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let id = streaming(&mut conn, &mut client, &mut cx);

        // The client stops reading: fan out (one fanout per pass) until the socket refuses and
        // bytes stay queued.
        let data = Bytes::from(vec![b'p'; 65536]);
        let mut sent = 0usize;
        let mut seq = 0;
        while !conn.holds_buffers() {
            seq += 1;
            assert!(seq < 2000, "the socket never blocked");
            let q = queue_http(&mut conn, SLOT, &data, seq, &mut cx);
            assert_eq!(q.outcome, FanoutOutcome::Queued);
            sent += data.len();
            assert_eq!(flush(&mut conn, &mut cx), Status::Open);
        }
        let n = seq as usize;
        let data_bytes = data.clone();
        let reader = std::thread::spawn(move || {
            // Each payload in its own chunk: "10000\r\n", the payload, "\r\n".
            let mut got = vec![0u8; sent + n * 9];
            client.read_exact(&mut got).unwrap();
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend_from_slice(&data_bytes);
            chunk.extend_from_slice(b"\r\n");
            assert!(
                got.chunks(chunk.len()).all(|c| c == chunk),
                "every payload whole and framed"
            );
            client
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while conn.holds_buffers() {
            assert_eq!(conn.on_ready(SLOT, false, true, &mut cx), Status::Open);
            assert!(Instant::now() < deadline, "queue never drained");
            std::thread::sleep(Duration::from_millis(1));
        }
        let _client = reader.join().unwrap();
        let credited: u64 = credits(&mut cx)
            .iter()
            .map(|&(credit_id, bytes)| {
                assert_eq!(credit_id, id);
                u64::from(bytes)
            })
            .sum();
        // Everything fanned out has been credited back, as it reached the socket.
        assert_eq!(credited, sent as u64);
    }
}
