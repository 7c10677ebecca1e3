//! The task that owns the ROUTER socket.
//!
//! ZeroMQ sockets are not file descriptors. libzmq exposes a *signalling* descriptor (`ZMQ_FD`)
//! that becomes readable when the socket's state may have changed, edge-triggered, and only
//! after libzmq's own bookkeeping has run (a send, a receive or a `ZMQ_EVENTS` query). The
//! bridge registers that descriptor with tokio ([`AsyncFd`]) purely as a wake-up and never
//! makes a blocking ZeroMQ call, so it runs as an ordinary task: a request from the connmgr
//! reaches its session task without crossing an OS thread of ours, and a response leaves
//! without a wake-up pipe (an earlier version had a dedicated thread polling the socket and a
//! socket pair: two more thread wake-ups per request; one request at a time is 8-10% faster
//! without them).
//!
//! One loop pass:
//!
//! 1. receive up to `MAX_RECV_PER_PASS` (256) messages, decode each [`Packet`], update liveness,
//!    answer `Hello`, and queue the rest for the dispatcher ([`Inbound`]);
//! 2. drain the outbox and group its messages per worker;
//! 3. queue heartbeats for workers the handler has been quiet towards and drop workers that
//!    have been silent for `PEER_TIMEOUT_MS`;
//! 4. encode each worker's batch into ONE packet (split only past `MAX_PACKET_PAYLOAD` (4 MiB)) and
//!    send it without blocking. A packet refused by the high-water mark stays queued, encoded,
//!    and is retried next pass; later packets for that worker wait behind it so order holds;
//! 5. hand the queued [`Inbound`] events to the dispatcher (waiting if its queue is full: that
//!    is the back-pressure that stops the bridge reading, and then the connmgr sending).
//!
//! Then, unless input is still waiting (`ZMQ_EVENTS` says so: a send can consume the edge that
//! announced it), the task sleeps until the descriptor signals, the outbox is woken, or the
//! liveness tick (100 ms; 10 ms while a send is blocked) is due.
//!
//! The socket has `ROUTER_MANDATORY` set, so a message for an identity ZeroMQ does not know
//! fails with `EHOSTUNREACH` instead of vanishing: the worker is then treated as gone.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_proto::internal::{self, Packet, ToConnmgr, ToHandler, MAX_PACKET_SIZE};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// Liveness tick when idle; bounds how late heartbeats and timeouts are noticed.
const TICK_IDLE: Duration = Duration::from_millis(100);

/// Liveness tick while a send is blocked by the high-water mark (the retry interval).
const TICK_BLOCKED: Duration = Duration::from_millis(10);

/// How long the stopping bridge keeps trying to flush queued packets.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// A running bridge task.
#[derive(Debug)]
pub struct BridgeHandle {
    task: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    outbox: Outbox,
}

/// libzmq's signalling descriptor, borrowed for [`AsyncFd`]: libzmq owns and closes it.
struct SignalFd(RawFd);

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl SignalFd {
    /// Registers `fd` (readable) with the current runtime's reactor.
    fn register(
        fd: RawFd,
    ) -> Result<AsyncFd<SignalFd>, tokio::io::unix::AsyncFdRegisterError<Self>> {
        // SAFETY: tokio requires the descriptor to stay open while registered. libzmq closes it
        // only when the socket closes, and the bridge drops this registration before the socket
        // (`Bridge` declares `signal` first, and `run` drops it explicitly before handing the
        // socket back).
        #[allow(unsafe_code)]
        unsafe {
            AsyncFd::register_with_interest(SignalFd(fd), Interest::READABLE)
        }
    }
}

/// Binds the ROUTER socket at `spec` and spawns the bridge task on the current tokio runtime.
/// Decoded traffic goes to `inbound`; `epoch` goes into every packet sent.
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
    let fd = socket.get_fd().map_err(zmq_err("ZMQ_FD"))?;
    let signal = SignalFd::register(fd).map_err(|err| RunError::Os {
        what: "registering the ROUTER socket's descriptor",
        source: err.into(),
    })?;

    let (outbox, receiver) = outbox(OUTBOX_MAX_BYTES);
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = Bridge {
        signal,
        socket,
        outbox: receiver,
        inbound,
        forward: Vec::new(),
        peers: Peers::default(),
        batches: HashMap::new(),
        queued: HashMap::new(),
        epoch,
        stop: stop.clone(),
    };
    let task = tokio::spawn(async move {
        let socket = bridge.run().await;
        // Closing lingers to flush and terminating the context waits for that: not on a worker.
        let closed = tokio::task::spawn_blocking(move || {
            drop(socket);
            drop(context);
        });
        if closed.await.is_err() {
            tracing::error!("closing the ROUTER socket failed");
        }
    });
    tracing::info!("connmgr socket bound at {spec}");
    Ok(BridgeHandle { task, stop, outbox })
}

impl BridgeHandle {
    /// The sending side, for the tokio code.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Flushes what is queued (for up to two seconds), closes the socket and waits for the
    /// task to end.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.outbox.wake_receiver();
        if self.task.await.is_err() {
            tracing::error!("ZeroMQ bridge task failed");
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
    /// The socket's signalling descriptor; declared before `socket` so it is dropped first.
    signal: AsyncFd<SignalFd>,
    socket: zmq::Socket,
    outbox: OutboxReceiver,
    inbound: mpsc::Sender<Inbound>,
    /// Events for the dispatcher collected during a pass, in order.
    forward: Vec<Inbound>,
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
    /// Runs until stopped (or the descriptor fails); gives the socket back for closing.
    async fn run(mut self) -> zmq::Socket {
        let mut stop_deadline: Option<Instant> = None;
        let tick = tokio::time::sleep(TICK_IDLE);
        tokio::pin!(tick);
        loop {
            let now = Instant::now();
            let more = self.receive(now);
            self.collect();
            self.liveness(now);
            self.flush(now);
            self.hand_over().await;

            if self.stop.load(Ordering::Acquire) {
                let deadline = *stop_deadline.get_or_insert(now + STOP_FLUSH);
                if self.queued.is_empty() || now >= deadline {
                    if !self.queued.is_empty() {
                        tracing::warn!(
                            "stopping with {} connmgr workers' packets unsent",
                            self.queued.len()
                        );
                    }
                    break;
                }
            }
            if more || self.input_waiting() {
                // Let the sessions just spawned run before the next pass.
                tokio::task::yield_now().await;
                continue;
            }
            let period = if self.queued.is_empty() {
                TICK_IDLE
            } else {
                TICK_BLOCKED
            };
            let due = tokio::time::Instant::from_std(now) + period;
            if tick.deadline() > due {
                tick.as_mut().reset(due);
            }
            tokio::select! {
                ready = self.signal.readable() => match ready {
                    // Cleared before the next pass reads: an edge after this point is kept.
                    Ok(mut guard) => guard.clear_ready(),
                    Err(err) => {
                        tracing::error!("polling the ROUTER socket failed, bridge stops: {err}");
                        break;
                    }
                },
                () = self.outbox.woken() => {}
                () = &mut tick => tick.as_mut().reset(tokio::time::Instant::now() + period),
            }
        }
        let Bridge { signal, socket, .. } = self;
        drop(signal);
        socket
    }

    /// True if a message is waiting. Reads `ZMQ_EVENTS`, which also re-arms the edge-triggered
    /// descriptor.
    fn input_waiting(&self) -> bool {
        match self.socket.get_events() {
            Ok(events) => events.contains(zmq::POLLIN),
            // If libzmq cannot tell, look again rather than sleep on a lost edge.
            Err(_) => true,
        }
    }

    /// Gives the pass's events to the dispatcher, waiting while its queue is full.
    async fn hand_over(&mut self) {
        for event in self.forward.drain(..) {
            if self.inbound.send(event).await.is_err() {
                tracing::debug!("dispatcher gone; dropping inbound event");
            }
        }
    }

    /// Receives up to `MAX_RECV_PER_PASS` messages; true if it stopped at that limit.
    fn receive(&mut self, now: Instant) -> bool {
        for _ in 0..MAX_RECV_PER_PASS {
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => self.handle_frames(frames, now),
                Err(zmq::Error::EAGAIN) => return false,
                Err(zmq::Error::EINTR) => continue,
                Err(err) => {
                    tracing::error!("ZeroMQ receive failed: {err}");
                    return false;
                }
            }
        }
        true
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

    /// Queues an event for the dispatcher (handed over at the end of the pass).
    fn forward(&mut self, event: Inbound) {
        self.forward.push(event);
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
