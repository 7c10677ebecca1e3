//! ZeroMQ publishing: one bare-tnetstring frame on a PUSH socket connected to the spec, which
//! is what `pushpin-publish` sends and what Pushpin's (and Holdfast's) PULL input reads
//! (reference §6.3).
//!
//! PUSH is fire-and-forget, so "published" can only mean "handed to a connected peer". Pushpin
//! connects, sends and lets the context wait with infinite linger, which hangs forever when
//! nothing listens at the spec. Here `ZMQ_IMMEDIATE` makes the send wait for a completed
//! connection, `ZMQ_SNDTIMEO` bounds that wait (a timeout is a clear error), and `ZMQ_LINGER`
//! bounds the final flush. With `--timeout 0` all three wait forever, as Pushpin does.

use std::time::Duration;

/// Why the push failed.
#[derive(Debug, thiserror::Error)]
pub enum ZmqError {
    /// Creating or configuring the socket failed.
    #[error("cannot create ZeroMQ socket: {0}")]
    Socket(#[source] ::zmq::Error),
    /// libzmq refused the spec (syntax, unknown transport).
    #[error("cannot connect to ZeroMQ spec {spec:?}: {source}")]
    Connect {
        /// The spec.
        spec: String,
        /// libzmq's error (`Invalid argument` for a malformed spec).
        #[source]
        source: ::zmq::Error,
    },
    /// No peer completed a connection within the timeout.
    #[error("no ZeroMQ peer accepted the connection at {spec} within {secs}s")]
    Timeout {
        /// The spec.
        spec: String,
        /// The timeout.
        secs: u64,
    },
    /// The send failed for another reason.
    #[error("cannot send to {spec}: {source}")]
    Send {
        /// The spec.
        spec: String,
        /// libzmq's error.
        #[source]
        source: ::zmq::Error,
    },
}

/// Connects a PUSH socket to `spec` and sends `frame` as one message.
pub fn push(spec: &str, frame: &[u8], timeout: Option<Duration>) -> Result<(), ZmqError> {
    // libzmq takes milliseconds as i32, with -1 for "forever".
    let millis = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
    let context = ::zmq::Context::new();
    let socket = context.socket(::zmq::PUSH).map_err(ZmqError::Socket)?;
    socket
        .set_immediate(true)
        .and_then(|()| socket.set_sndtimeo(millis))
        .and_then(|()| socket.set_linger(millis))
        .map_err(ZmqError::Socket)?;
    socket.connect(spec).map_err(|source| ZmqError::Connect {
        spec: spec.to_string(),
        source,
    })?;
    match socket.send(frame, 0) {
        Ok(()) => Ok(()),
        Err(::zmq::Error::EAGAIN) => Err(ZmqError::Timeout {
            spec: spec.to_string(),
            secs: timeout.map_or(0, |t| t.as_secs()),
        }),
        Err(source) => Err(ZmqError::Send {
            spec: spec.to_string(),
            source,
        }),
    }
    // Dropping the socket, then the context, flushes the queued frame (bounded by the linger).
}
