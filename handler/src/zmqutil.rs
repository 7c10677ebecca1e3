//! Small helpers shared by the ZeroMQ sockets of the publish inputs, the command socket and
//! the stats socket.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::RunError;

/// Creates the directory of an `ipc://` endpoint so binding does not fail on a fresh rundir.
pub fn prepare_ipc(spec: &str) -> Result<(), RunError> {
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
    Ok(())
}

/// Maps a ZeroMQ error during socket setup.
pub fn zmq_err(context: &'static str) -> impl Fn(zmq::Error) -> RunError {
    move |source| RunError::Zmq { context, source }
}

/// Binds `socket` at `spec`.
pub fn bind(socket: &zmq::Socket, spec: &str) -> Result<(), RunError> {
    prepare_ipc(spec)?;
    socket.bind(spec).map_err(|source| RunError::Bind {
        spec: spec.to_string(),
        source,
    })
}

/// A stop flag shared with a socket thread, which checks it at least every poll timeout.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Asks the thread to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once asked.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Logs at warn level at most once per interval, counting what was suppressed.
#[derive(Debug)]
pub struct RateLimitedWarn {
    interval: std::time::Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimitedWarn {
    /// A limiter allowing one warning per `interval`.
    pub fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Logs `msg` unless a warning went out within the interval.
    pub fn warn(&mut self, msg: std::fmt::Arguments<'_>) {
        let now = std::time::Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        if due {
            if self.suppressed > 0 {
                tracing::warn!("{msg} ({} similar messages suppressed)", self.suppressed);
            } else {
                tracing::warn!("{msg}");
            }
            self.suppressed = 0;
            self.last = Some(now);
        } else {
            self.suppressed += 1;
        }
    }
}
