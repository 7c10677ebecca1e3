//! One worker thread: a mio event loop that owns its listeners, its connections, its timers and
//! its ZeroMQ socket to the handler. Workers share nothing on the hot path; the kernel spreads
//! new connections across them (`SO_REUSEPORT`).
//!
//! # The loop
//!
//! Each pass:
//!
//! 1. waits in `poll` (never while the handler socket has input: see [`HandlerLink`]);
//! 2. handles readiness: accepts, and drives each ready connection as far as it can go;
//! 3. drains the handler socket and applies every message to its stream (a `Fanout` to each of
//!    its streams, see below);
//! 4. fires expired connection timers, checks the handler's liveness, steps the shutdown;
//! 5. sends everything the pass produced for the handler as **one** packet (a heartbeat if the
//!    worker has been quiet for [`HEARTBEAT_INTERVAL_MS`]).
//!
//! # Fanout
//!
//! A [`ToConnmgr::Fanout`] carries one payload for many streams (a publish reaching every
//! subscriber on this worker). Each id is looked up by its slot in O(1); the payload is framed
//! for each live stream whose response is streaming (chunk header + shared payload + CRLF for
//! chunked responses, the raw bytes for close-delimited HTTP/1.0, within the remaining length
//! for a `Content-Length` response) and queued, with no copy of the payload: every queue holds a
//! refcount. It counts against each stream's credits like a `Body` with `more: true`, and a
//! stream it would take beyond its credits is aborted like an over-credit `Body` (the others
//! are unaffected). Ids of streams that are gone, not yet answered or already complete are
//! skipped and counted; the per-worker totals appear in the debug log line of every fanout and
//! when the worker stops. The sockets are written once the pass has applied every handler
//! packet waiting (step 3), once per connection however many fanouts reached it, and the
//! written bytes go back as one `Credit` per stream (see the `fanout` module).
//!
//! A [`ToConnmgr::WsFanout`] is the same for WebSockets: the frame header is built once and the
//! payload compressed at most once (for the connections that negotiated permessage-deflate,
//! all with `server_no_context_takeover`), then the shared `Bytes` is queued on each listed
//! WebSocket within its credits; the same skip, cut-off and deferred-write rules apply.
//!
//! # Handler liveness
//!
//! Every packet from the handler carries its epoch. A new epoch means the handler restarted and
//! forgot our streams: every stream in flight is aborted (its client connection closed, nothing
//! more written), a `Closed` is sent for each so the new handler can drop any of them it did
//! receive, and the worker introduces itself again with `Hello`. A handler silent for
//! [`PEER_TIMEOUT_MS`] while streams wait for it is presumed dead: streams whose response has not
//! started get `502 Bad Gateway` (`Error while proxying to origin.`), the others are closed.
//!
//! # Connection limit
//!
//! At its share of `--maxconn` a worker stops accepting and leaves new connections in the
//! kernel's backlog until a connection closes, which is what Pushpin's connection manager does
//! (observed on 1.36 with `--stream-maxconn`): clients wait instead of being refused.

mod conn;
mod ctx;
mod fanout;
mod stream;
#[cfg(test)]
mod tests;
mod transport;
mod write_queue;
mod ws_conn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_proto::internal::{
    decode, encode, CloseReason, Hello, Packet, StreamId, ToConnmgr, ToHandler,
    HEARTBEAT_INTERVAL_MS, PEER_TIMEOUT_MS,
};
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};
use slab::Slab;
use tracing::{debug, error, info, trace, warn};

use self::conn::{Conn, Status};
use self::ctx::{Ctx, WsSettings};
use self::fanout::FanoutStats;
use self::transport::{Peer, Transport};
use crate::config::MAX_LISTENERS;
use crate::handler_link::{HandlerLink, LinkError};
use crate::shutdown::{Phase, ShutdownState};
use crate::timer::TimerWheel;

pub use self::conn::{BAD_GATEWAY_BODY, LINGER};

/// The token of each worker's [`mio::Waker`] (shutdown notifications).
pub const WAKER: Token = Token(0);
const LINK: Token = Token(1);
const LISTENER_BASE: usize = 2;
const CONN_BASE: usize = LISTENER_BASE + MAX_LISTENERS;

/// How long in-flight responses may take to finish after the first shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

const HEARTBEAT: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS);
const PEER_TIMEOUT: Duration = Duration::from_millis(PEER_TIMEOUT_MS);
const TIMER_RESOLUTION: Duration = Duration::from_millis(250);
/// 8192 slots of 250 ms: a 34-minute span, longer than the default stream timeout.
const TIMER_SLOTS: usize = 8192;
/// A batch this large (approximately, in bytes) is sent before the pass ends.
const FLUSH_THRESHOLD: usize = 1 << 20;
/// Handler packets handled per pass before sockets get their turn again.
const RECV_BUDGET: usize = 256;
/// Pause after an accept error such as EMFILE before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Everything a worker is built from.
#[derive(Debug)]
pub struct WorkerSetup {
    /// Worker index (part of its identity).
    pub index: u16,
    /// The worker's poller (its waker already registered under [`WAKER`]).
    pub poll: Poll,
    /// One bound, listening, non-blocking socket per `--listen`/`--tls-listen` address.
    pub listeners: Vec<ListenerSetup>,
    /// The connected handler socket.
    pub link: HandlerLink,
    /// This process's epoch.
    pub epoch: u64,
    /// Shared shutdown phase.
    pub shutdown: Arc<ShutdownState>,
    /// Connection buffer size.
    pub buffer_size: usize,
    /// Response credit window per stream.
    pub response_window: u32,
    /// Inactivity timeout.
    pub stream_timeout: Duration,
    /// Longest time a request head may take.
    pub header_timeout: Duration,
    /// Negotiate permessage-deflate with WebSocket clients.
    pub compression: bool,
    /// Largest WebSocket message accepted from a client.
    pub max_message_size: usize,
    /// This worker's share of the connection limit.
    pub max_conns: usize,
}

/// A bound listener and how its connections are served.
#[derive(Debug)]
pub struct ListenerSetup {
    /// The listening, non-blocking socket.
    pub socket: ListenSocket,
    /// TLS for every connection it accepts (`--tls-listen`); `None` for plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
}

/// A listening socket handed to a worker.
#[derive(Debug)]
pub enum ListenSocket {
    /// TCP, bound by each worker with `SO_REUSEPORT`.
    Tcp(std::net::TcpListener),
    /// A Unix-domain socket (`--local-listen`): bound once, each worker polls a duplicate of
    /// it and the first to accept a connection gets it.
    Unix(std::os::unix::net::UnixListener),
}

/// A worker's listening socket.
#[derive(Debug)]
enum Listening {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listening {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Self::Tcp(l) => l,
            Self::Unix(l) => l,
        }
    }

    /// Accepts one connection as a plain (or Unix) transport.
    fn accept(&self) -> std::io::Result<(Transport, Peer)> {
        match self {
            Self::Tcp(l) => {
                // `TCP_NODELAY` comes from the listener (see `bind_listener`).
                let (sock, peer) = l.accept()?;
                Ok((Transport::Plain(sock), Peer::Tcp(peer)))
            }
            Self::Unix(l) => {
                let (sock, _) = l.accept()?;
                Ok((Transport::Unix(sock), Peer::Local))
            }
        }
    }
}

/// Why a worker stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The poller failed.
    #[error("worker {index}: poll failed: {source}")]
    Poll {
        /// Worker index.
        index: u16,
        /// The error.
        source: std::io::Error,
    },
    /// A listener could not be registered.
    #[error("worker {index}: cannot register a listener: {source}")]
    Register {
        /// Worker index.
        index: u16,
        /// The error.
        source: std::io::Error,
    },
    /// The handler socket failed to set up.
    #[error(transparent)]
    Link(#[from] LinkError),
}

struct Listener {
    socket: Option<Listening>,
    port: u16,
    tls: Option<Arc<ServerConfig>>,
}

/// A worker's event loop and everything it owns.
pub struct Worker {
    index: u16,
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    cx: Ctx,
    wheel: TimerWheel<(usize, u64, u64)>,
    expired: Vec<(usize, u64, u64)>,
    link: HandlerLink,
    link_more: bool,
    shutdown: Arc<ShutdownState>,
    max_conns: usize,
    accept_paused: bool,
    accept_retry_at: Option<Instant>,
    epoch: u64,
    handler_epoch: Option<u64>,
    last_rx: Instant,
    last_tx: Instant,
    next_uid: u64,
    drain_deadline: Option<Instant>,
    /// Sequence number of the last fanout applied (see `Stream::last_fanout`).
    fanout_seq: u64,
    fanout_stats: FanoutStats,
    /// Connections a fanout queued bytes on, written (and credited) once the handler input of
    /// the pass has been applied (see the `fanout` module).
    write_due: Vec<(usize, StreamId)>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("conns", &self.conns.len())
            .finish()
    }
}

impl Worker {
    /// Registers the listeners and the handler socket with the poller.
    pub fn new(setup: WorkerSetup) -> Result<Self, WorkerError> {
        let index = setup.index;
        let mut listeners = Vec::with_capacity(setup.listeners.len());
        for (i, listener) in setup.listeners.into_iter().enumerate() {
            let (port, mut socket) = match listener.socket {
                ListenSocket::Tcp(l) => (
                    l.local_addr().map(|a| a.port()).unwrap_or(0),
                    Listening::Tcp(TcpListener::from_std(l)),
                ),
                ListenSocket::Unix(l) => (0, Listening::Unix(UnixListener::from_std(l))),
            };
            setup
                .poll
                .registry()
                .register(
                    socket.source(),
                    Token(LISTENER_BASE + i),
                    Interest::READABLE,
                )
                .map_err(|source| WorkerError::Register { index, source })?;
            listeners.push(Listener {
                socket: Some(socket),
                port,
                tls: listener.tls,
            });
        }
        setup.link.register(setup.poll.registry(), LINK)?;
        let now = Instant::now();
        let mut cx = Ctx::new(
            now,
            setup.buffer_size,
            setup.response_window,
            setup.stream_timeout,
        );
        cx.ws = WsSettings::new(setup.compression, setup.max_message_size);
        cx.header_timeout = setup.header_timeout;
        cx.credit_batch = setup.response_window / 4;
        Ok(Self {
            index,
            poll: setup.poll,
            listeners,
            conns: Slab::new(),
            cx,
            wheel: TimerWheel::new(now, TIMER_RESOLUTION, TIMER_SLOTS),
            expired: Vec::new(),
            link: setup.link,
            link_more: false,
            shutdown: setup.shutdown,
            max_conns: setup.max_conns.max(1),
            accept_paused: false,
            accept_retry_at: None,
            epoch: setup.epoch,
            handler_epoch: None,
            last_rx: now,
            last_tx: now,
            next_uid: 0,
            drain_deadline: None,
            fanout_seq: 0,
            fanout_stats: FanoutStats::default(),
            write_due: Vec::new(),
        })
    }

    /// Runs the loop until shutdown completes.
    pub fn run(mut self) -> Result<(), WorkerError> {
        debug!(worker = self.index, "worker started");
        self.cx.send(ToHandler::Hello(Hello { worker: self.index }));
        self.flush_outbox();
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(source) = self.poll.poll(&mut events, Some(timeout)) {
                if source.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(WorkerError::Poll {
                    index: self.index,
                    source,
                });
            }
            self.cx.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER | LINK => {}
                    Token(t) if t >= CONN_BASE => {
                        let readable = event.is_readable() || event.is_read_closed();
                        let writable = event.is_writable() || event.is_write_closed();
                        let error = event.is_error();
                        self.conn_ready(t - CONN_BASE, readable || error, writable || error);
                    }
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
                if self.cx.outbox_bytes() >= FLUSH_THRESHOLD {
                    self.flush_outbox();
                }
            }
            self.service_link();
            self.expire_timers();
            self.check_handler_liveness();
            if self.shutdown_step() {
                break;
            }
            self.resume_accepting();
            self.sweep_credit();
            self.flush_outbox();
        }
        self.flush_outbox();
        self.link.deregister(self.poll.registry());
        self.link.close();
        let stats = self.fanout_stats;
        debug!(
            worker = self.index,
            fanouts = stats.messages,
            fanout_delivered = stats.delivered,
            fanout_skipped = stats.skipped,
            fanout_cut_off = stats.cut_off,
            "worker stopped"
        );
        Ok(())
    }

    fn poll_timeout(&mut self) -> Duration {
        if self.link_more || self.link.needs_service() {
            return Duration::ZERO;
        }
        let mut next = self.last_tx + HEARTBEAT;
        if let Some(t) = self.wheel.next_expiry() {
            next = next.min(t);
        }
        if let Some(since) = self.cx.inflight_since() {
            next = next.min(since.max(self.last_rx) + PEER_TIMEOUT);
        }
        if let Some(t) = self.drain_deadline {
            next = next.min(t);
        }
        if let Some(t) = self.accept_retry_at {
            next = next.min(t);
        }
        if let Some(t) = self.cx.credit_due_at() {
            next = next.min(t);
        }
        next.saturating_duration_since(Instant::now())
    }

    /// Returns the credit connections held back for up to `CREDIT_HOLD` (see
    /// `Conn::return_credit`), once it is due.
    fn sweep_credit(&mut self) {
        let Some(held) = self.cx.take_held_credit() else {
            return;
        };
        for (slot, uid) in held {
            match self.conns.get_mut(slot) {
                Some(conn) if conn.uid() == uid => conn.release_held_credit(slot, &mut self.cx),
                _ => {}
            }
        }
    }

    fn conn_ready(&mut self, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let status = conn.on_ready(slot, readable, writable, &mut self.cx);
        self.after(slot, status);
    }

    /// Applies a connection's status: remove it, or make sure its timer is scheduled.
    fn after(&mut self, slot: usize, status: Status) {
        match status {
            Status::Close => self.remove(slot),
            Status::Open => self.schedule(slot),
        }
    }

    fn schedule(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let deadline = conn.deadline(&self.cx);
        let tick = self.wheel.tick_for(deadline);
        // Only an earlier deadline needs a new entry; a later one is found when the pending
        // entry fires (see the timer module).
        if conn.timer_tick().is_none_or(|t| tick < t) {
            self.wheel.schedule(deadline, (slot, conn.uid(), tick));
            conn.set_timer_tick(Some(tick));
        }
    }

    fn remove(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.try_remove(slot) else {
            return;
        };
        // Every path that closes a connection has already told the handler; this only matters
        // if one did not.
        conn.cancel(Some(CloseReason::ClientGone), &mut self.cx);
        // No `deregister`: closing the socket (it is never duplicated) takes it out of the
        // epoll set, and the explicit `EPOLL_CTL_DEL` was one system call more per connection.
        conn.release(&mut self.cx);
        trace!(worker = self.index, slot, "connection closed");
    }

    fn accept(&mut self, index: usize) {
        if self.cx.draining {
            return;
        }
        loop {
            if self.conns.len() >= self.max_conns {
                if !self.accept_paused {
                    debug!(
                        worker = self.index,
                        limit = self.max_conns,
                        "connection limit reached; new connections wait in the backlog"
                    );
                }
                self.accept_paused = true;
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let port = listener.port;
            let Some(socket) = listener.socket.as_ref() else {
                return;
            };
            match socket.accept() {
                Ok((transport, peer)) => {
                    let mut transport = match (transport, &listener.tls) {
                        (transport, None) => transport,
                        (Transport::Plain(sock), Some(config)) => {
                            match ServerConnection::new(config.clone()) {
                                Ok(tls) => Transport::tls(sock, tls, self.cx.buffer_size),
                                Err(e) => {
                                    warn!(worker = self.index, error = %e, "cannot start TLS for a connection");
                                    continue;
                                }
                            }
                        }
                        // TLS is only configured on TCP listeners.
                        (transport, Some(_)) => transport,
                    };
                    let entry = self.conns.vacant_entry();
                    let slot = entry.key();
                    let token = Token(CONN_BASE + slot);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self
                        .poll
                        .registry()
                        .register(&mut transport, token, interest)
                    {
                        warn!(worker = self.index, error = %e, "cannot register a connection");
                        continue;
                    }
                    self.next_uid += 1;
                    entry.insert(Conn::new(transport, peer, port, self.next_uid, self.cx.now));
                    trace!(worker = self.index, slot, %peer, "connection accepted");
                    self.schedule(slot);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    warn!(worker = self.index, error = %e, "accept failed; retrying shortly");
                    self.accept_retry_at = Some(self.cx.now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Accepts again once below the limit (edge-triggered listeners do not report the
    /// connections that queued up meanwhile) or after an accept error's pause.
    fn resume_accepting(&mut self) {
        let retry_due = self.accept_retry_at.is_some_and(|t| self.cx.now >= t);
        let below_limit = self.accept_paused && self.conns.len() < self.max_conns;
        if !(retry_due || below_limit) || self.cx.draining {
            return;
        }
        self.accept_retry_at = None;
        self.accept_paused = false;
        for index in 0..self.listeners.len() {
            self.accept(index);
        }
    }

    /// Applies the handler packets waiting (at most [`RECV_BUDGET`]), then writes the
    /// connections their fanouts queued bytes on, once each.
    fn service_link(&mut self) {
        self.link_more = true;
        for _ in 0..RECV_BUDGET {
            match self.link.recv() {
                Ok(Some(msg)) => self.on_packet(&msg),
                Ok(None) => {
                    self.link_more = false;
                    break;
                }
                Err(e) => {
                    warn!(worker = self.index, error = %e, "handler socket");
                    self.link_more = false;
                    break;
                }
            }
            if self.cx.outbox_bytes() >= FLUSH_THRESHOLD {
                self.flush_outbox();
            }
        }
        self.flush_fanout_writes();
    }

    fn on_packet(&mut self, bytes: &[u8]) {
        let packet: Packet<ToConnmgr> = match decode(bytes) {
            Ok(packet) => packet,
            Err(e) => {
                warn!(worker = self.index, error = %e, "dropping an undecodable packet from the handler");
                return;
            }
        };
        trace!(
            worker = self.index,
            epoch = packet.epoch,
            msgs = packet.msgs.len(),
            "packet from the handler"
        );
        self.last_rx = self.cx.now;
        match self.handler_epoch {
            Some(epoch) if epoch != packet.epoch => {
                info!(
                    worker = self.index,
                    streams = self.cx.inflight(),
                    "handler restarted; aborting the streams it had"
                );
                self.abort_in_flight();
                self.handler_epoch = Some(packet.epoch);
                self.cx.send(ToHandler::Hello(Hello { worker: self.index }));
            }
            Some(_) => {}
            None => {
                debug!(worker = self.index, "handler connected");
                self.handler_epoch = Some(packet.epoch);
            }
        }
        for msg in packet.msgs {
            self.dispatch(msg);
        }
    }

    fn dispatch(&mut self, msg: ToConnmgr) {
        let msg = match msg {
            ToConnmgr::Fanout(fanout) => return self.fanout(fanout),
            ToConnmgr::WsFanout(fanout) => return self.ws_fanout(fanout),
            other => other,
        };
        let (id, kind) = match &msg {
            ToConnmgr::Hello | ToConnmgr::Heartbeat | ToConnmgr::Fanout(_) => return,
            ToConnmgr::WsFanout(_) => return,
            ToConnmgr::WsAccept(accept) => (accept.id, "ws accept"),
            ToConnmgr::WsMessage(msg) => (msg.id, "ws message"),
            ToConnmgr::WsClose(close) => (close.id, "ws close"),
            ToConnmgr::Response(head) => (head.id, "response"),
            ToConnmgr::Body(body) => (body.id, "body"),
            ToConnmgr::Credit(credit) => (credit.id, "credit"),
            ToConnmgr::Close(closed) => (closed.id, "close"),
        };
        let Some(slot) = self.stream_slot(id) else {
            trace!(worker = self.index, stream = %id, kind, "message for a stream that is gone");
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let cx = &mut self.cx;
        let status = match msg {
            ToConnmgr::Response(head) => conn.on_response(slot, head, cx),
            ToConnmgr::Body(body) => conn.on_body(slot, body, cx),
            ToConnmgr::Credit(credit) => conn.on_credit(slot, credit.bytes, cx),
            ToConnmgr::Close(_) => conn.on_close(cx),
            ToConnmgr::WsAccept(accept) => conn.on_ws_accept(slot, accept, cx),
            ToConnmgr::WsMessage(msg) => conn.on_ws_message(slot, msg, cx),
            ToConnmgr::WsClose(close) => conn.on_ws_close(slot, close, cx),
            _ => Status::Open,
        };
        self.after(slot, status);
    }

    fn stream_slot(&self, id: StreamId) -> Option<usize> {
        let slot = id.slot() as usize;
        let conn = self.conns.get(slot)?;
        (conn.stream_id() == Some(id)).then_some(slot)
    }

    /// The handler restarted: close every connection whose stream it had.
    fn abort_in_flight(&mut self) {
        let slots: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.in_flight())
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.cancel(Some(CloseReason::ClientGone), &mut self.cx);
            }
            self.remove(slot);
        }
    }

    fn expire_timers(&mut self) {
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.expire(self.cx.now, &mut expired);
        for (slot, uid, tick) in expired.drain(..) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            // A stale entry: another connection in the slot, or superseded by an earlier one.
            if conn.uid() != uid || conn.timer_tick() != Some(tick) {
                continue;
            }
            conn.set_timer_tick(None);
            let status = conn.on_timeout(slot, &mut self.cx);
            self.after(slot, status);
        }
        self.expired = expired;
    }

    fn check_handler_liveness(&mut self) {
        let Some(since) = self.cx.inflight_since() else {
            return;
        };
        if self.cx.now < since.max(self.last_rx) + PEER_TIMEOUT {
            return;
        }
        warn!(
            worker = self.index,
            streams = self.cx.inflight(),
            "no word from the handler for {} s; failing the streams waiting for it",
            PEER_TIMEOUT.as_secs()
        );
        let slots: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.in_flight())
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            let status = conn.fail(slot, CloseReason::Timeout, &mut self.cx);
            self.after(slot, status);
        }
    }

    /// Advances the shutdown; true when the loop should end.
    fn shutdown_step(&mut self) -> bool {
        let phase = self.shutdown.phase();
        if phase == Phase::Running {
            return false;
        }
        if self.drain_deadline.is_none() {
            self.begin_drain();
        }
        let expired = self.drain_deadline.is_some_and(|d| self.cx.now >= d);
        if phase == Phase::Immediate || expired {
            self.cancel_all();
            return true;
        }
        self.conns.iter().all(|(_, c)| c.is_idle())
    }

    fn begin_drain(&mut self) {
        self.cx.draining = true;
        self.drain_deadline = Some(self.cx.now + DRAIN_TIMEOUT);
        for listener in &mut self.listeners {
            if let Some(mut socket) = listener.socket.take() {
                let _ = self.poll.registry().deregister(socket.source());
            }
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_idle())
            .map(|(slot, _)| slot)
            .collect();
        for slot in idle {
            self.remove(slot);
        }
        let websockets: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_websocket())
            .map(|(slot, _)| slot)
            .collect();
        for slot in websockets {
            if let Some(conn) = self.conns.get_mut(slot) {
                let status = conn.ws_going_away(slot, &mut self.cx);
                self.after(slot, status);
            }
        }
        debug!(
            worker = self.index,
            remaining = self.conns.len(),
            "draining: listeners closed, idle connections closed, WebSockets closing"
        );
    }

    fn cancel_all(&mut self) {
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        let mut cancelled = 0;
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                cancelled += usize::from(conn.in_flight());
                conn.cancel(Some(CloseReason::Shutdown), &mut self.cx);
            }
            self.remove(slot);
        }
        if cancelled > 0 {
            info!(
                worker = self.index,
                streams = cancelled,
                "cancelled streams at shutdown"
            );
        }
    }

    /// Sends the pass's batch as one packet (or a heartbeat if the worker has been quiet).
    fn flush_outbox(&mut self) {
        if self.cx.outbox_is_empty() {
            if self.cx.now < self.last_tx + HEARTBEAT {
                return;
            }
            // A heartbeat stuck behind unsent packets proves nothing: skip this one.
            if self.link.backlog() > 0 {
                self.last_tx = self.cx.now;
                return;
            }
            self.cx.send(ToHandler::Heartbeat);
        }
        let packet = Packet {
            epoch: self.epoch,
            msgs: self.cx.take_outbox(),
        };
        match encode(&packet) {
            Ok(bytes) => {
                trace!(
                    worker = self.index,
                    msgs = packet.msgs.len(),
                    bytes = bytes.len(),
                    "packet to the handler"
                );
                if let Err(e) = self.link.send(bytes) {
                    warn!(worker = self.index, error = %e, "cannot send to the handler");
                }
                if self.link.backlog() > 0 {
                    trace!(
                        worker = self.index,
                        backlog = self.link.backlog(),
                        "handler socket full"
                    );
                }
            }
            Err(e) => error!(worker = self.index, error = %e, "cannot encode a packet"),
        }
        self.last_tx = self.cx.now;
        self.cx.restore_outbox(packet.msgs);
    }
}
