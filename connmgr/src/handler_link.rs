//! One worker's ZeroMQ DEALER socket to the handler, integrated into the worker's mio loop.
//!
//! ZeroMQ sockets are not file descriptors; libzmq exposes a *signalling* descriptor (`ZMQ_FD`)
//! that becomes readable when the socket's state may have changed, **edge-triggered**, and only
//! after libzmq's own bookkeeping has been driven by a `ZMQ_EVENTS` query or a send/receive. So:
//!
//! - the descriptor is registered READABLE with mio (edge-triggered) purely as a wake-up;
//! - on wake-up, and before the worker blocks in `poll` again, [`HandlerLink::recv`] is called
//!   until it reports nothing more (`DONTWAIT` receives until `EAGAIN`);
//! - after every send the events are re-read ([`HandlerLink::needs_service`]), because a send can
//!   consume the edge that announced pending input: a worker that skipped this check could sleep
//!   with messages waiting (the bug Pushpin's `core/zmq.rs` guards against the same way).
//!
//! Sends never block: when the socket refuses (high-water mark reached), encoded packets wait in a
//! backlog, in order, and go out when ZeroMQ reports `POLLOUT`. The backlog is bounded in
//! practice by the credit windows of the streams that produced it.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use holdfast_proto::internal::MAX_PACKET_SIZE;

/// Packets queued in each direction inside ZeroMQ before it pushes back.
pub const HIGH_WATER_MARK: i32 = 1000;

/// Packets kept waiting for ZeroMQ at most. Reached only when the handler has stopped reading
/// altogether (ZeroMQ's own queue of [`HIGH_WATER_MARK`] packets is full too); by then every
/// stream waiting for it has been failed by the liveness check, so the oldest packets are
/// dropped rather than letting memory grow.
pub const MAX_BACKLOG: usize = 10_000;

/// How long closing the socket may wait to deliver the last packets (the `Closed(Shutdown)`
/// batch) before they are dropped. Bounded so a dead handler cannot hold up the exit.
pub const CLOSE_LINGER_MS: i32 = 250;

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Creating, configuring or connecting the socket failed.
    #[error("cannot set up the handler socket ({what}): {source}")]
    Setup {
        /// The step that failed.
        what: &'static str,
        /// libzmq's error.
        source: zmq::Error,
    },
    /// Registering the socket's descriptor with the poller failed.
    #[error("cannot register the handler socket with the poller: {0}")]
    Register(#[from] std::io::Error),
    /// A send or receive failed for a reason other than "would block".
    #[error("handler socket {what} failed: {source}")]
    Io {
        /// `send` or `recv`.
        what: &'static str,
        /// libzmq's error.
        source: zmq::Error,
    },
}

/// A connected DEALER socket plus its send backlog.
pub struct HandlerLink {
    socket: zmq::Socket,
    fd: RawFd,
    backlog: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl std::fmt::Debug for HandlerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerLink")
            .field("fd", &self.fd)
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

fn setup(what: &'static str) -> impl FnOnce(zmq::Error) -> LinkError {
    move |source| LinkError::Setup { what, source }
}

impl HandlerLink {
    /// Creates a DEALER with routing identity `identity` and connects it to `spec`.
    pub fn connect(context: &zmq::Context, spec: &str, identity: &str) -> Result<Self, LinkError> {
        let socket = context.socket(zmq::DEALER).map_err(setup("socket"))?;
        socket
            .set_identity(identity.as_bytes())
            .map_err(setup("identity"))?;
        socket
            .set_sndhwm(HIGH_WATER_MARK)
            .map_err(setup("sndhwm"))?;
        socket
            .set_rcvhwm(HIGH_WATER_MARK)
            .map_err(setup("rcvhwm"))?;
        socket
            .set_maxmsgsize(MAX_PACKET_SIZE as i64)
            .map_err(setup("maxmsgsize"))?;
        socket.set_linger(0).map_err(setup("linger"))?;
        socket.connect(spec).map_err(setup("connect"))?;
        let fd = socket.get_fd().map_err(setup("fd"))?;
        Ok(Self {
            socket,
            fd,
            backlog: VecDeque::new(),
            dropped: 0,
        })
    }

    /// Registers the signalling descriptor (READABLE, edge-triggered) under `token`.
    pub fn register(&self, registry: &Registry, token: Token) -> Result<(), LinkError> {
        registry.register(&mut SourceFd(&self.fd), token, Interest::READABLE)?;
        Ok(())
    }

    /// Removes the descriptor from the poller.
    pub fn deregister(&self, registry: &Registry) {
        let _ = registry.deregister(&mut SourceFd(&self.fd));
    }

    /// Receives one packet without blocking; `Ok(None)` once nothing is waiting.
    pub fn recv(&mut self) -> Result<Option<zmq::Message>, LinkError> {
        loop {
            match self.socket.recv_msg(zmq::DONTWAIT) {
                Ok(msg) => {
                    // A DEALER peer could send multipart messages; the protocol has one part.
                    // Drop any extra parts so they are not mistaken for packets.
                    while self.socket.get_rcvmore().unwrap_or(false) {
                        if self.socket.recv_msg(zmq::DONTWAIT).is_err() {
                            break;
                        }
                    }
                    return Ok(Some(msg));
                }
                Err(zmq::Error::EAGAIN) => return Ok(None),
                Err(zmq::Error::EINTR) => continue,
                Err(source) => {
                    return Err(LinkError::Io {
                        what: "recv",
                        source,
                    })
                }
            }
        }
    }

    /// Sends one encoded packet, or queues it behind earlier ones if ZeroMQ pushes back.
    pub fn send(&mut self, packet: Vec<u8>) -> Result<(), LinkError> {
        if self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
            if self.dropped == 0 {
                tracing::warn!("the handler is not reading; dropping the oldest queued packets");
            }
            self.dropped += 1;
        }
        self.backlog.push_back(packet);
        self.flush()
    }

    /// Sends queued packets until the backlog is empty or ZeroMQ pushes back.
    pub fn flush(&mut self) -> Result<(), LinkError> {
        while let Some(packet) = self.backlog.front() {
            match self.socket.send(packet.as_slice(), zmq::DONTWAIT) {
                Ok(()) => {
                    self.backlog.pop_front();
                    if self.backlog.is_empty() && self.dropped > 0 {
                        tracing::warn!(dropped = self.dropped, "the handler is reading again");
                        self.dropped = 0;
                    }
                }
                Err(zmq::Error::EAGAIN) => break,
                Err(zmq::Error::EINTR) => continue,
                Err(source) => {
                    // The packet cannot be sent (e.g. context terminated): drop it rather than
                    // retry forever.
                    self.backlog.pop_front();
                    return Err(LinkError::Io {
                        what: "send",
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Packets waiting for ZeroMQ to accept them.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// True if the worker must not block: input is waiting, or the backlog can move. Reads
    /// `ZMQ_EVENTS`, which also re-arms the edge-triggered descriptor.
    pub fn needs_service(&self) -> bool {
        match self.socket.get_events() {
            Ok(events) => {
                events.contains(zmq::POLLIN)
                    || (!self.backlog.is_empty() && events.contains(zmq::POLLOUT))
            }
            // If libzmq cannot tell us, poll again soon rather than sleep on a lost edge.
            Err(_) => true,
        }
    }

    /// Gives the last packets [`CLOSE_LINGER_MS`] to leave, then closes the socket.
    pub fn close(mut self) {
        let _ = self.flush();
        let _ = self.socket.set_linger(CLOSE_LINGER_MS);
    }
}
