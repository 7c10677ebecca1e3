//! The thread that owns the ROUTER socket.
//!
//! One loop pass:
//!
//! 1. `zmq::poll` the ROUTER socket and the outbox wake-up fd (100 ms timeout, 10 ms while a
//!    send is blocked by the high-water mark);
//! 2. receive up to `MAX_RECV_PER_PASS` (256) messages, decode each [`Packet`], update liveness,
//!    answer `Hello`, and forward the rest to tokio ([`Inbound`], `blocking_send`: this is not
//!    a tokio thread);
//! 3. drain the outbox and group its messages per worker;
//! 4. queue heartbeats for workers the handler has been quiet towards and drop workers that
//!    have been silent for `PEER_TIMEOUT_MS`;
//! 5. encode each worker's batch into ONE packet (split only past `MAX_PACKET_PAYLOAD` (4 MiB)) and
//!    send it without blocking. A packet refused by the high-water mark stays queued, encoded,
//!    and is retried next pass; later packets for that worker wait behind it so order holds.
//!
//! The socket has `ROUTER_MANDATORY` set, so a message for an identity ZeroMQ does not know
//! fails with `EHOSTUNREACH` instead of vanishing: the worker is then treated as gone.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_proto::internal::{self, Packet, ToConnmgr, ToHandler, MAX_PACKET_SIZE};
use tokio::sync::mpsc;

use super::peers::{PeerChange, Peers};
use super::{outbox, GoneReason, Inbound, Outbox, OutboxReceiver, WorkerId, OUTBOX_MAX_BYTES};
use crate::error::RunError;

/// Messages received per loop pass before the loop turns to sending (fairness).
const MAX_RECV_PER_PASS: usize = 256;

/// Body bytes per encoded packet before a batch is split (far below `MAX_PACKET_SIZE`).
const MAX_PACKET_PAYLOAD: usize = 4 * 1024 * 1024;

/// ZeroMQ high-water marks, in messages (each message is a whole batch).
const HWM: i32 = 10_000;

/// How long pending messages may take to leave when the process stops.
const LINGER_MS: i32 = 1_000;

/// Poll timeout when idle; bounds how late heartbeats and timeouts are noticed.
const POLL_IDLE_MS: i64 = 100;

/// Poll timeout while a send is blocked by the high-water mark.
const POLL_BLOCKED_MS: i64 = 10;

/// How long the stopping bridge keeps trying to flush queued packets.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// A running bridge thread.
#[derive(Debug)]
pub struct BridgeHandle {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    outbox: Outbox,
}

/// Binds the ROUTER socket at `spec` and starts the bridge thread. Decoded traffic goes to
/// `inbound`; `epoch` goes into every packet sent.
pub fn start(
    spec: &str,
    epoch: u64,
    inbound: mpsc::Sender<Inbound>,
) -> Result<BridgeHandle, RunError> {
    if let Some(path) = spec.strip_prefix("ipc://") {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| RunError::IpcDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
    }
    let context = zmq::Context::new();
    let zmq_err = |context: &'static str| move |source| RunError::Zmq { context, source };
    let socket = context
        .socket(zmq::ROUTER)
        .map_err(zmq_err("create ROUTER"))?;
    socket
        .set_router_mandatory(true)
        .map_err(zmq_err("ROUTER_MANDATORY"))?;
    // A restarted worker reconnects with the same identity; let the new pipe take it over.
    socket
        .set_router_handover(true)
        .map_err(zmq_err("ROUTER_HANDOVER"))?;
    socket.set_sndhwm(HWM).map_err(zmq_err("SNDHWM"))?;
    socket.set_rcvhwm(HWM).map_err(zmq_err("RCVHWM"))?;
    socket.set_linger(LINGER_MS).map_err(zmq_err("LINGER"))?;
    socket
        .set_maxmsgsize(MAX_PACKET_SIZE as i64)
        .map_err(zmq_err("MAXMSGSIZE"))?;
    socket.bind(spec).map_err(|source| RunError::Bind {
        spec: spec.to_string(),
        source,
    })?;

    let (outbox, receiver) = outbox(OUTBOX_MAX_BYTES).map_err(|source| RunError::Os {
        what: "outbox wake-up socket pair",
        source,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = Bridge {
        socket,
        outbox: receiver,
        inbound,
        peers: Peers::default(),
        batches: HashMap::new(),
        queued: HashMap::new(),
        epoch,
        stop: stop.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("zmq-bridge".into())
        .spawn(move || {
            bridge.run();
            // Socket first (it lingers to flush), then the context.
            drop(context);
        })
        .map_err(|source| RunError::Os {
            what: "bridge thread",
            source,
        })?;
    tracing::info!("connmgr socket bound at {spec}");
    Ok(BridgeHandle {
        thread: Some(thread),
        stop,
        outbox,
    })
}

impl BridgeHandle {
    /// The sending side, for the tokio code.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Flushes what is queued (for up to two seconds) and stops the thread. Blocks: call it
    /// outside the async runtime or from `spawn_blocking`.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Any message wakes the thread; Heartbeat to nobody is dropped harmlessly.
        let _ = self.outbox.push(&WorkerId::new(""), ToConnmgr::Heartbeat);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("ZeroMQ bridge thread panicked");
            }
        }
    }
}

/// One encoded packet waiting for the socket.
struct Encoded {
    bytes: Vec<u8>,
    weight: usize,
}

/// Messages collected for one worker during a pass.
#[derive(Default)]
struct Batch {
    msgs: Vec<ToConnmgr>,
    weight: usize,
    payload: usize,
}

struct Bridge {
    socket: zmq::Socket,
    outbox: OutboxReceiver,
    inbound: mpsc::Sender<Inbound>,
    peers: Peers,
    /// This pass's messages per worker, not yet encoded.
    batches: HashMap<WorkerId, Batch>,
    /// Encoded packets per worker, in order, waiting for the socket.
    queued: HashMap<WorkerId, VecDeque<Encoded>>,
    epoch: u64,
    stop: Arc<AtomicBool>,
}

enum SendOutcome {
    Sent,
    Blocked,
    Unreachable,
    Failed(zmq::Error),
}

impl Bridge {
    fn run(mut self) {
        let mut stop_deadline: Option<Instant> = None;
        loop {
            let timeout = if self.queued.is_empty() {
                POLL_IDLE_MS
            } else {
                POLL_BLOCKED_MS
            };
            let readable = {
                let mut items = [
                    self.socket.as_poll_item(zmq::POLLIN),
                    zmq::PollItem::from_fd(self.outbox.wake.as_raw_fd(), zmq::POLLIN),
                ];
                match zmq::poll(&mut items, timeout) {
                    Ok(_) => items[0].is_readable(),
                    Err(zmq::Error::EINTR) => false,
                    Err(err) => {
                        tracing::error!("ZeroMQ poll failed, bridge stops: {err}");
                        return;
                    }
                }
            };
            let now = Instant::now();
            if readable {
                self.receive(now);
            }
            self.collect();
            self.liveness(now);
            self.flush(now);

            if self.stop.load(Ordering::Acquire) {
                let deadline = *stop_deadline.get_or_insert(now + STOP_FLUSH);
                if self.queued.is_empty() || now >= deadline {
                    if !self.queued.is_empty() {
                        tracing::warn!(
                            "stopping with {} connmgr workers' packets unsent",
                            self.queued.len()
                        );
                    }
                    return;
                }
            }
        }
    }

    fn receive(&mut self, now: Instant) {
        for _ in 0..MAX_RECV_PER_PASS {
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => self.handle_frames(frames, now),
                Err(zmq::Error::EAGAIN) => return,
                Err(zmq::Error::EINTR) => continue,
                Err(err) => {
                    tracing::error!("ZeroMQ receive failed: {err}");
                    return;
                }
            }
        }
    }

    fn handle_frames(&mut self, mut frames: Vec<Vec<u8>>, now: Instant) {
        // ROUTER prepends the identity; a DEALER sends one frame, so expect [identity, packet].
        if frames.len() < 2 {
            tracing::warn!("dropping ZeroMQ message with {} frames", frames.len());
            return;
        }
        let payload = frames.pop().unwrap_or_default();
        let worker = WorkerId::new(std::mem::take(&mut frames[0]));
        let packet: Packet<ToHandler> = match internal::decode(&payload) {
            Ok(packet) => packet,
            Err(err) => {
                tracing::warn!("dropping bad packet from connmgr worker {worker}: {err}");
                return;
            }
        };
        match self.peers.on_receive(&worker, packet.epoch, now) {
            PeerChange::New => tracing::info!("connmgr worker {worker} connected"),
            PeerChange::Same => {}
            PeerChange::Restarted => {
                tracing::warn!("connmgr worker {worker} restarted; dropping its streams");
                self.forward(Inbound::WorkerGone {
                    worker: worker.clone(),
                    reason: GoneReason::Restarted,
                });
            }
        }
        let mut msgs = Vec::with_capacity(packet.msgs.len());
        for msg in packet.msgs {
            match msg {
                ToHandler::Hello(hello) => {
                    tracing::debug!(
                        "hello from connmgr worker {worker} (index {})",
                        hello.worker
                    );
                    self.batch(&worker, ToConnmgr::Hello, 0);
                }
                ToHandler::Heartbeat => {}
                other => msgs.push(other),
            }
        }
        if !msgs.is_empty() {
            self.forward(Inbound::Messages { worker, msgs });
        }
    }

    /// Hands an event to tokio. If the tokio side is gone (shutting down) it is dropped.
    fn forward(&self, event: Inbound) {
        if self.inbound.blocking_send(event).is_err() {
            tracing::debug!("dispatcher gone; dropping inbound event");
        }
    }

    fn batch(&mut self, worker: &WorkerId, msg: ToConnmgr, weight: usize) {
        let batch = self.batches.entry(worker.clone()).or_default();
        batch.payload += match &msg {
            ToConnmgr::Response(head) => head.body.len(),
            ToConnmgr::Body(body) => body.data.len(),
            ToConnmgr::Fanout(fanout) => fanout.data.len() + fanout.ids.len() * 8,
            _ => 0,
        };
        batch.weight += weight;
        batch.msgs.push(msg);
        if batch.payload >= MAX_PACKET_PAYLOAD {
            let full = std::mem::take(batch);
            self.encode(worker, full);
        }
    }

    fn collect(&mut self) {
        self.outbox.rearm();
        while let Some(item) = self.outbox.try_recv() {
            if item.worker.as_bytes().is_empty() {
                // The stop wake-up.
                self.outbox.release(item.weight);
                continue;
            }
            self.batch(&item.worker, item.msg, item.weight);
        }
    }

    fn liveness(&mut self, now: Instant) {
        for worker in self.peers.heartbeats_due(now) {
            let busy = self.batches.contains_key(&worker) || self.queued.contains_key(&worker);
            if !busy {
                self.batch(&worker, ToConnmgr::Heartbeat, 0);
            }
        }
        for worker in self.peers.expire(now) {
            tracing::warn!("connmgr worker {worker} silent too long; dropping its streams");
            self.discard(&worker);
            self.forward(Inbound::WorkerGone {
                worker,
                reason: GoneReason::TimedOut,
            });
        }
    }

    /// Drops everything queued for a worker and returns its budget.
    fn discard(&mut self, worker: &WorkerId) {
        if let Some(batch) = self.batches.remove(worker) {
            self.outbox.release(batch.weight);
        }
        if let Some(queue) = self.queued.remove(worker) {
            self.outbox.release(queue.iter().map(|e| e.weight).sum());
        }
    }

    fn encode(&mut self, worker: &WorkerId, batch: Batch) {
        if batch.msgs.is_empty() {
            return;
        }
        let packet = Packet {
            epoch: self.epoch,
            msgs: batch.msgs,
        };
        match internal::encode(&packet) {
            Ok(bytes) => self
                .queued
                .entry(worker.clone())
                .or_default()
                .push_back(Encoded {
                    bytes,
                    weight: batch.weight,
                }),
            Err(err) => {
                tracing::error!("cannot encode packet for {worker}: {err}");
                self.outbox.release(batch.weight);
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        let batches: Vec<(WorkerId, Batch)> = self.batches.drain().collect();
        for (worker, batch) in batches {
            self.encode(&worker, batch);
        }
        let workers: Vec<WorkerId> = self.queued.keys().cloned().collect();
        for worker in workers {
            let outcome = self.send_queued(&worker);
            match outcome {
                SendOutcome::Sent => {
                    self.queued.remove(&worker);
                    self.peers.on_send(&worker, now);
                }
                SendOutcome::Blocked => self.peers.on_send(&worker, now),
                SendOutcome::Unreachable => {
                    self.discard(&worker);
                    if self.peers.forget(&worker) {
                        tracing::warn!("connmgr worker {worker} unreachable; dropping its streams");
                        self.forward(Inbound::WorkerGone {
                            worker,
                            reason: GoneReason::Unreachable,
                        });
                    } else {
                        tracing::debug!("dropping messages for unknown connmgr worker {worker}");
                    }
                }
                SendOutcome::Failed(err) => {
                    tracing::error!("ZeroMQ send to {worker} failed: {err}");
                    self.discard(&worker);
                }
            }
        }
    }

    /// Sends a worker's queued packets in order until done or blocked.
    fn send_queued(&mut self, worker: &WorkerId) -> SendOutcome {
        let Some(queue) = self.queued.get_mut(worker) else {
            return SendOutcome::Sent;
        };
        while let Some(front) = queue.front() {
            let parts: [&[u8]; 2] = [worker.as_bytes(), &front.bytes];
            match self.socket.send_multipart(parts, zmq::DONTWAIT) {
                Ok(()) => {
                    let weight = front.weight;
                    queue.pop_front();
                    self.outbox.release(weight);
                }
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => return SendOutcome::Blocked,
                Err(zmq::Error::EHOSTUNREACH) => return SendOutcome::Unreachable,
                Err(err) => return SendOutcome::Failed(err),
            }
        }
        SendOutcome::Sent
    }
}
