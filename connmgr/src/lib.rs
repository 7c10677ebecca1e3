//! `holdfast-connmgr`: the process that owns client sockets.
//!
//! It accepts TCP connections, speaks HTTP/1.0 and HTTP/1.1 to clients, and forwards each request
//! to `holdfast-handler` as a stream of [`holdfast_proto::internal`] messages over ZeroMQ. It knows
//! nothing about routes or GRIP: it parses, frames, buffers within credits, and enforces limits
//! and timeouts.
//!
//! # Layout
//!
//! - [`config`]: the command line and the validated [`Config`].
//! - [`http1`]: the sans-IO HTTP/1 codec (request heads, chunked request bodies, response
//!   framing and error responses), unit-tested on its own.
//! - [`worker`]: one mio event loop per thread, with its own `SO_REUSEPORT` listeners, slab of
//!   connections, timer wheel, buffer pools and handler socket.
//! - [`handler_link`]: a worker's ZeroMQ DEALER socket, integrated into mio through the
//!   edge-triggered `ZMQ_FD`.
//! - [`pool`], [`timer`]: per-worker buffer free lists and the connection timing wheel.
//! - [`shutdown`]: signal handling (SIGINT/SIGTERM drain, a second signal stops at once).
//! - [`tls`]: certificates for `--tls-listen` listeners, picked per SNI name from
//!   `--tls-certs-dir` and reloaded when their files change; the worker runs rustls under the
//!   HTTP and WebSocket code through one transport layer (plain or TLS), and marks requests from
//!   TLS listeners `secure` for the handler (route `ssl=yes`, `X-Forwarded-Proto`).
//! - [`ws`]: the sans-IO WebSocket codec (handshake, frames, masking, message assembly,
//!   permessage-deflate), unit-tested on its own.
//!
//! # What the handler sees
//!
//! A [`RequestHead`](holdfast_proto::internal::RequestHead) carries the request line and every
//! header as received (framing headers included), the client address, and the first body bytes,
//! already de-chunked; the rest of the body follows in `Body` messages within the handler's
//! credits. The handler may send [`response_window`] response body bytes per stream before it
//! waits for `Credit`, which the worker returns as the client's socket accepts the bytes: at
//! once from a quarter of the window up, smaller amounts within 20 ms (`CREDIT_HOLD`), so a
//! stream fed many small messages costs the handler one `Credit` per 20 ms instead of one per
//! message while it still holds three quarters of its window.
//!
//! Response bodies come as `Response` and `Body` messages, and, for a payload published to many
//! held streams on one worker, as one `Fanout` listing their ids: the worker frames the shared
//! payload for each stream without copying it and charges it to each stream's credits like a
//! `Body` with `more: true` (see [`worker`], "Fanout"). `Credit` and `Close` complete the set.
//!
//! # WebSockets
//!
//! A request with `Upgrade: websocket` is checked by the connection manager ([`ws::handshake`]):
//! an invalid one gets `400` and never reaches the handler; a valid one goes to the handler as
//! `Upgrade`, which answers `WsAccept` (the worker writes the `101`) or an ordinary `Response`
//! (the rejection, after which the connection closes). Then messages flow as `WsMessage` both
//! ways, within credits counted in payload bytes exactly like bodies, and `WsFanout` carries one
//! message to many WebSockets on a worker, framed and compressed once. The closing handshake
//! goes through the handler (`WsClose` both ways, with a 5-second grace period); protocol errors
//! close with the RFC 6455 code and `Closed`. `--compression` enables permessage-deflate
//! (Pushpin's `allow_compression`); `--max-message-size` (default 16 MiB) bounds a client
//! message after reassembly and decompression. `--stream-timeout` applies as for HTTP. See the
//! worker's `ws_conn` module for the details.
//!
//! # Held streams
//!
//! A request may wait minutes for its response (GRIP response hold) and a streamed response may
//! stay open indefinitely between publishes (GRIP stream hold). Only `--stream-timeout` closes
//! them: it counts time without socket I/O, and bytes written to the client count, as in
//! Pushpin. Such a connection holds no pooled buffer while it waits. The handler's heartbeats
//! keep it from being failed by the handler liveness check.
//!
//! # Where we differ from Pushpin 1.36's connection manager (condure 1.9), on purpose
//!
//! Observed on a running Pushpin 1.36:
//!
//! - Bad request heads (malformed, oversized, too many headers, URI over 4096 bytes, bad
//!   Content-Length, unsupported Transfer-Encoding) make condure 1.9 drop the connection without
//!   a response (a reset when input is left unread). We answer `400 Bad Request`, `text/plain`,
//!   with the texts of later Pushpin versions: `Request header size exceeded limit of N bytes.`,
//!   `Failed to parse request: <reason>`, and `Request URI exceeded limit of 4096 bytes.`, then
//!   close gracefully so the client actually receives them.
//! - Content-Length together with Transfer-Encoding: condure 1.9 serves the request (chunked
//!   wins); we refuse it with `400` (request-smuggling defence).
//! - A keep-alive HTTP/1.0 request answered with an unknown length: condure sends
//!   `Connection: keep-alive` and no length and keeps the connection open, so the client cannot
//!   find the end of the body; we send no keep-alive and close at the end.
//! - A client that half-closes (shuts down its write side) after its request is treated as gone,
//!   like condure.
//! - At the connection limit new connections wait in the kernel backlog, like condure.

pub mod config;
pub mod handler_link;
pub mod http1;
mod local;
pub mod pool;
pub mod shutdown;
pub mod timer;
pub mod tls;
pub mod worker;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{error, info, warn};

pub use config::{Args, Config, ConfigError};

use crate::handler_link::{HandlerLink, LinkError};
use crate::shutdown::ShutdownState;
use crate::tls::CertStore;
use crate::worker::{ListenSocket, ListenerSetup, Worker, WorkerError, WorkerSetup};

/// Smallest per-stream response credit window (the handler's send budget), in bytes.
pub const MIN_RESPONSE_WINDOW: u32 = 64 * 1024;

/// Listen backlog of each listener.
const LISTEN_BACKLOG: i32 = 1024;

/// The response credit window for a buffer size: `max(buffer_size, 64 KiB)`. Large enough that a
/// fast client is never held back by the credit round trip, small enough that a slow one costs
/// at most this much queued in the connection manager per stream.
pub fn response_window(buffer_size: usize) -> u32 {
    u32::try_from(buffer_size)
        .unwrap_or(u32::MAX)
        .max(MIN_RESPONSE_WINDOW)
}

/// Why the connection manager could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A poller or waker could not be created.
    #[error("cannot create a poller: {0}")]
    Poll(std::io::Error),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The handler socket could not be set up.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A worker failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// A Unix-domain socket could not be set up.
    #[error("cannot listen on {path}: {what}: {source}")]
    Local {
        /// The socket path.
        path: std::path::PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A TLS server configuration could not be built.
    #[error("cannot set up TLS for port {port}: {source}")]
    Tls {
        /// The listener's port.
        port: u16,
        /// The error.
        source: rustls::Error,
    },
    /// A worker thread panicked (a bug).
    #[error("worker {0} panicked")]
    Panic(usize),
}

/// Binds one `SO_REUSEPORT` listener for `addr` (one per worker, so the kernel balances new
/// connections across workers).
///
/// `TCP_NODELAY` is set here once: Linux copies it to every accepted socket, which saves a
/// `setsockopt` per connection (a sixth of a worker's system calls per accepted request).
pub fn bind_listener(addr: SocketAddr) -> Result<std::net::TcpListener, RunError> {
    let fail = |source| RunError::Listen { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(fail)?;
    }
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_reuse_port(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket.set_nodelay(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(LISTEN_BACKLOG).map_err(fail)?;
    Ok(socket.into())
}

/// One TLS server configuration per `--tls-listen` port (each with its own default
/// certificate, `default_<port>`), all sharing one certificate store. A missing or unusable
/// default certificate is reported now, but is no reason not to start: the files may appear
/// later, and handshakes with a matching SNI name work meanwhile.
fn tls_configs(config: &Config) -> Result<HashMap<u16, Arc<rustls::ServerConfig>>, RunError> {
    let mut configs = HashMap::new();
    let Some(dir) = config.tls_certs_dir.as_ref() else {
        return Ok(configs);
    };
    if config.tls_listen.is_empty() {
        return Ok(configs);
    }
    let store = Arc::new(CertStore::new(dir.clone(), tls::provider()));
    for addr in &config.tls_listen {
        let port = addr.port();
        if configs.contains_key(&port) {
            continue;
        }
        let server = tls::server_config(store.clone(), port)
            .map_err(|source| RunError::Tls { port, source })?;
        let name = tls::default_cert_name(port);
        if store.get(&name).is_none() {
            warn!(
                dir = %dir.display(),
                "TLS port {port} has no usable default certificate {name}.crt/{name}.key: \
                 handshakes without a matching SNI certificate will fail"
            );
        }
        configs.insert(port, server);
    }
    Ok(configs)
}

/// Runs the connection manager until shutdown; returns once every worker has stopped.
pub fn run(config: Config) -> Result<(), RunError> {
    let epoch: u64 = rand::random();
    let context = zmq::Context::new();
    let shutdown = Arc::new(ShutdownState::new());
    let window = response_window(config.buffer_size);
    let tls_configs = tls_configs(&config)?;
    let locals = config
        .local_listen
        .iter()
        .map(local::bind)
        .collect::<Result<Vec<_>, _>>()?;

    let mut workers = Vec::with_capacity(config.workers);
    let mut wakers = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let poll = Poll::new().map_err(RunError::Poll)?;
        let waker = Waker::new(poll.registry(), worker::WAKER).map_err(RunError::Poll)?;
        let mut listeners = Vec::with_capacity(config.listen.len() + config.tls_listen.len());
        for addr in &config.listen {
            listeners.push(ListenerSetup {
                socket: ListenSocket::Tcp(bind_listener(*addr)?),
                tls: None,
            });
        }
        for addr in &config.tls_listen {
            listeners.push(ListenerSetup {
                socket: ListenSocket::Tcp(bind_listener(*addr)?),
                tls: tls_configs.get(&addr.port()).cloned(),
            });
        }
        for (spec, listener) in config.local_listen.iter().zip(&locals) {
            let socket = listener.try_clone().map_err(|source| RunError::Local {
                path: spec.path.clone(),
                what: "duplicate the socket",
                source,
            })?;
            listeners.push(ListenerSetup {
                socket: ListenSocket::Unix(socket),
                tls: None,
            });
        }
        let identity = format!("{}-{}", config.instance_id, index);
        let link = HandlerLink::connect(&context, &config.handler_spec, &identity)?;
        workers.push(Worker::new(WorkerSetup {
            // Bounded by MAX_WORKERS.
            index: index as u16,
            poll,
            listeners,
            link,
            epoch,
            shutdown: shutdown.clone(),
            buffer_size: config.buffer_size,
            response_window: window,
            stream_timeout: config.stream_timeout,
            header_timeout: config.header_timeout,
            compression: config.compression,
            max_message_size: config.max_message_size,
            max_conns: config.maxconn_per_worker(),
        })?);
        wakers.push(Arc::new(waker));
    }
    shutdown::spawn_signal_thread(shutdown.clone(), wakers.clone()).map_err(RunError::Thread)?;

    for addr in &config.listen {
        info!("listening on {addr}");
    }
    for addr in &config.tls_listen {
        info!("listening on {addr} (TLS)");
    }
    for spec in &config.local_listen {
        info!("listening on {}", spec.path.display());
    }
    info!(
        workers = config.workers,
        handler = %config.handler_spec,
        instance = %config.instance_id,
        "started"
    );

    let mut handles = Vec::with_capacity(workers.len());
    for (index, worker) in workers.into_iter().enumerate() {
        let shutdown = shutdown.clone();
        let wakers = wakers.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let result = worker.run();
                if result.is_err() {
                    // One worker failing takes the process down, so the runner can restart it
                    // whole rather than serve with a missing worker.
                    while shutdown.escalate() != shutdown::Phase::Immediate {}
                    for waker in &wakers {
                        let _ = waker.wake();
                    }
                }
                result
            })
            .map_err(RunError::Thread)?;
        handles.push(handle);
    }

    let mut first_error = None;
    for (index, handle) in handles.into_iter().enumerate() {
        let error = match handle.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => RunError::Worker(e),
            Err(_) => {
                while shutdown.escalate() != shutdown::Phase::Immediate {}
                for waker in &wakers {
                    let _ = waker.wake();
                }
                RunError::Panic(index)
            }
        };
        error!("{error}");
        first_error.get_or_insert(error);
    }
    drop(context);
    info!("stopped");
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_at_least_64k() {
        assert_eq!(response_window(8192), 65536);
        assert_eq!(response_window(1 << 20), 1 << 20);
        assert_eq!(response_window(usize::MAX), u32::MAX);
    }

    #[test]
    fn listeners_share_a_port() {
        let a = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_listener(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }

    /// The workers no longer set `TCP_NODELAY` per connection: it must come from the listener.
    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
