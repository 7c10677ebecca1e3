//! The byte stream under a connection: plain TCP, TLS over TCP with rustls's sans-IO
//! [`ServerConnection`], or a Unix-domain socket (`--local-listen`). The HTTP and WebSocket code reads and writes plaintext through
//! [`Read`]/[`Write`] and never knows which one it has.
//!
//! # TLS with an edge-triggered poller
//!
//! The connection keeps its own `readable`/`writable` flags and clears one only when an
//! operation returns `WouldBlock`, so this layer returns `WouldBlock` only when the *socket*
//! did (the kernel then reports the next edge):
//!
//! - [`Read`]: plaintext already decrypted is returned first; otherwise TLS records are read
//!   from the socket and processed (which drives the handshake) until plaintext appears, the
//!   socket would block, or the peer is gone. Handshake replies rustls queues meanwhile are
//!   written at once where the socket takes them.
//! - [`Write`]: plaintext goes into rustls (encrypted into records), then records are written
//!   to the socket. When rustls's buffer is full, records are flushed first; `WouldBlock` only
//!   once the socket refuses them.
//! - [`Transport::has_pending_output`] / [`Transport::flush_pending`]: records rustls still holds
//!   (handshake flights, alerts, the tail of a response, `close_notify`). The connection flushes
//!   them whenever the socket is writable, and finishes a response only after they are gone.
//!
//! # Bounds
//!
//! rustls's outgoing buffers (plaintext before the handshake completes, and encrypted records)
//! are limited to the connection buffer size, so a client that does not read costs at most that
//! much in records beyond what the write queue holds; its received-plaintext buffer is bounded
//! by rustls (16 KiB) and only refilled once drained; its record buffer holds one record at
//! most and shrinks back to 4 KiB when empty, so an idle keep-alive or held TLS connection keeps
//! about that plus rustls's session state (the pooled read buffer and write queue are released
//! as for plain connections). Plaintext accepted by rustls counts as written for credits,
//! exactly as bytes accepted by the kernel do.
//!
//! A TLS error (a failed handshake, plain HTTP sent to a TLS port, a bad record) is returned as
//! an `InvalidData` read error after rustls's alert was sent where possible: the connection
//! closes, and only that one.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use rustls::ServerConnection;

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A client of a Unix-domain socket: it has no address.
    Local,
}

impl Peer {
    /// The address for the handler (`RequestHead::peer_addr`): the IP as text, or empty for a
    /// Unix-socket client (as Pushpin 1.36, observed: `X-Forwarded-For` then gets an empty
    /// item appended).
    pub fn addr_text(&self) -> String {
        match self {
            Self::Tcp(addr) => addr.ip().to_canonical().to_string(),
            Self::Local => String::new(),
        }
    }

    /// The client port (0 for a Unix-socket client).
    pub fn port(&self) -> u16 {
        match self {
            Self::Tcp(addr) => addr.port(),
            Self::Local => 0,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Local => f.write_str("unix"),
        }
    }
}

/// A connection's byte stream.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// A Unix-domain socket.
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

/// TLS state over a TCP socket.
#[derive(Debug)]
pub struct TlsStream {
    sock: TcpStream,
    tls: ServerConnection,
    /// The socket reported end of input.
    eof: bool,
    /// `close_notify` was queued.
    closing: bool,
}

/// What one [`Transport::flush_pending`] achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Bytes written to the socket.
    pub bytes: usize,
    /// The socket stopped accepting with records still pending.
    pub blocked: bool,
}

impl Transport {
    /// TLS over `sock` with a fresh server connection, its outgoing buffers limited to
    /// `buffer_limit` bytes.
    pub fn tls(sock: TcpStream, mut tls: ServerConnection, buffer_limit: usize) -> Self {
        tls.set_buffer_limit(Some(buffer_limit));
        Self::Tls(Box::new(TlsStream {
            sock,
            tls,
            eof: false,
            closing: false,
        }))
    }

    /// The connection came in over TLS.
    pub fn is_secure(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// TLS records are waiting for the socket.
    pub fn has_pending_output(&self) -> bool {
        match self {
            Self::Plain(_) | Self::Unix(_) => false,
            Self::Tls(t) => t.tls.wants_write(),
        }
    }

    /// Writes pending TLS records until none are left or the socket would block.
    pub fn flush_pending(&mut self) -> io::Result<Flushed> {
        match self {
            Self::Plain(_) | Self::Unix(_) => Ok(Flushed::default()),
            Self::Tls(t) => t.push_records(),
        }
    }

    /// Shuts down the write side once everything is written. For TLS the first call queues
    /// `close_notify` and returns `false` (flush, then call again); `true` when done.
    pub fn shutdown_write(&mut self) -> bool {
        match self {
            Self::Plain(sock) => {
                let _ = sock.shutdown(Shutdown::Write);
                true
            }
            Self::Unix(sock) => {
                let _ = sock.shutdown(Shutdown::Write);
                true
            }
            Self::Tls(t) if !t.closing => {
                t.closing = true;
                t.tls.send_close_notify();
                false
            }
            Self::Tls(t) => {
                let _ = t.sock.shutdown(Shutdown::Write);
                true
            }
        }
    }
}

impl TlsStream {
    fn push_records(&mut self) -> io::Result<Flushed> {
        let mut out = Flushed::default();
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP connection without close_notify: end of input too.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert for the peer: best effort, the connection is over.
                let _ = self.push_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake flights and other replies leave now where the socket takes them; a
            // `WouldBlock` here leaves them pending for the next writable edge.
            self.push_records()?;
        }
    }

    fn write_plain(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        loop {
            let n = self.tls.writer().write_vectored(bufs)?;
            if n > 0 {
                self.push_records()?;
                return Ok(n);
            }
            // The outgoing buffer is full: make room by writing records. (Before the handshake
            // completes nothing can be written, but nothing is queued then either: a response
            // exists only after a request was decrypted.)
            let flushed = self.push_records()?;
            if flushed.blocked || flushed.bytes == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }
}

impl Transport {
    /// True when a read that returned less than it was offered proves the socket empty, so
    /// the read that would only return `WouldBlock` can be skipped (one syscall per request
    /// on a keep-alive connection). That holds for plain sockets: epoll (and kqueue) raise a
    /// new readiness edge for data that arrives after the read. Not for TLS, whose decrypted
    /// bytes can stay in rustls after a short read.
    pub fn short_read_drains(&self) -> bool {
        !matches!(self, Self::Tls(_))
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(sock) => sock.read(buf),
            Self::Unix(sock) => sock.read(buf),
            Self::Tls(t) => t.read_plain(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(sock) => sock.write_vectored(bufs),
            Self::Unix(sock) => sock.write_vectored(bufs),
            Self::Tls(t) => t.write_plain(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(sock) => sock.flush(),
            Self::Unix(sock) => sock.flush(),
            Self::Tls(t) => t.push_records().map(|_| ()),
        }
    }
}

impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Plain(sock) => sock.register(registry, token, interests),
            Self::Unix(sock) => sock.register(registry, token, interests),
            Self::Tls(t) => t.sock.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Plain(sock) => sock.reregister(registry, token, interests),
            Self::Unix(sock) => sock.reregister(registry, token, interests),
            Self::Tls(t) => t.sock.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Self::Plain(sock) => sock.deregister(registry),
            Self::Unix(sock) => sock.deregister(registry),
            Self::Tls(t) => t.sock.deregister(registry),
        }
    }
}
