//! Error types.
//!
//! Two families, following pingora's habit of saying *whose fault* a failure is:
//!
//! * [`RunError`]: the process cannot start (bad config, socket cannot be bound) or cannot
//!   keep running. Fatal.
//! * [`ProxyError`]: one request failed. It carries a [`Fault`] so the session can pick the
//!   right answer (400 for the client's fault, 502 for the backend's) and, for backend errors,
//!   whether the next target may be tried ([`ProxyError::may_try_next_target`]).

use std::io;
use std::path::PathBuf;

use holdfast_proto::config::ConfigError;

use crate::client::tls::TlsConfigError;

/// Why the handler could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration file could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS client configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The ZeroMQ bridge thread stopped while the handler was running.
    #[error("the ZeroMQ bridge stopped unexpectedly")]
    BridgeStopped,
    /// The directory of the ipc socket could not be created.
    #[error("cannot create ipc directory {path}: {source}")]
    IpcDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A ZeroMQ socket could not be created or configured.
    #[error("cannot set up ZeroMQ socket ({context}): {source}")]
    Zmq {
        /// What was being done.
        context: &'static str,
        /// The ZeroMQ error.
        source: zmq::Error,
    },
    /// The ROUTER socket could not be bound (address in use, bad spec, permissions).
    #[error("cannot bind connmgr socket at {spec}: {source}")]
    Bind {
        /// The spec given with `--connmgr-spec` or derived from the config.
        spec: String,
        /// The ZeroMQ error.
        source: zmq::Error,
    },
    /// An OS resource (thread, wake-up pipe, runtime, signal handler) could not be created.
    #[error("cannot create {what}: {source}")]
    Os {
        /// The resource.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Who caused a request to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something we cannot forward.
    Client,
    /// The backend could not be reached or misbehaved.
    Backend,
    /// The client went away or the stream was cancelled.
    Cancelled,
}

/// Why one proxied request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request cannot be expressed as an HTTP request to a backend (bad method, target or
    /// host); the connmgr normally rejects these before they get here.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Resolving or connecting to the target failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// `host:port` of the target.
        target: String,
        /// The OS error.
        source: io::Error,
    },
    /// Connecting (TCP and TLS together) took longer than the connect timeout.
    #[error("connecting to {target} timed out")]
    ConnectTimeout {
        /// `host:port` of the target.
        target: String,
    },
    /// The TLS handshake with the target failed (certificate, protocol, bad server name).
    #[error("TLS handshake with {target} failed: {source}")]
    Tls {
        /// `host:port` of the target.
        target: String,
        /// The TLS error as reported by tokio-rustls.
        source: io::Error,
    },
    /// The HTTP/1 connection could not be set up.
    #[error("HTTP handshake with {target} failed: {source}")]
    Handshake {
        /// `host:port` of the target.
        target: String,
        /// The hyper error.
        source: hyper::Error,
    },
    /// The request was sent (at least partly) but no valid response head came back.
    #[error("request to {target} failed: {source}")]
    Request {
        /// `host:port` of the target.
        target: String,
        /// The hyper error.
        source: hyper::Error,
    },
    /// The response body from the backend broke off.
    #[error("response body from {target} failed: {source}")]
    ResponseBody {
        /// `host:port` of the target.
        target: String,
        /// The hyper error.
        source: hyper::Error,
    },
    /// The stream was closed by the connmgr or the process is stopping.
    #[error("stream cancelled")]
    Cancelled,
}

impl ProxyError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            Self::InvalidRequest(_) => Fault::Client,
            Self::Cancelled => Fault::Cancelled,
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Tls { .. }
            | Self::Handshake { .. }
            | Self::Request { .. }
            | Self::ResponseBody { .. } => Fault::Backend,
        }
    }

    /// True for failures that happen before any part of the request reached the backend
    /// (connect, TLS, handshake): Pushpin then tries the route's next target.
    pub fn may_try_next_target(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::ConnectTimeout { .. }
                | Self::Tls { .. }
                | Self::Handshake { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_fall_through_and_others_do_not() {
        let connect = ProxyError::Connect {
            target: "h:1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(connect.may_try_next_target());
        assert_eq!(connect.fault(), Fault::Backend);
        assert!(ProxyError::ConnectTimeout {
            target: "h:1".into()
        }
        .may_try_next_target());
        assert!(!ProxyError::Cancelled.may_try_next_target());
        assert_eq!(
            ProxyError::InvalidRequest("x".into()).fault(),
            Fault::Client
        );
        assert_eq!(
            connect.to_string(),
            "cannot connect to h:1: connection refused"
        );
    }
}
