//! The stats PUB socket's thread. Messages arrive over a bounded channel; the thread sends
//! each without blocking (a PUB socket drops for slow subscribers anyway).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::error::RunError;
use crate::zmqutil::{prepare_ipc, zmq_err};

/// Messages queued for the thread at most.
pub const QUEUE: usize = 10_000;

/// Send high-water mark of the PUB socket.
const SNDHWM: i32 = 10_000;

/// The sending side, for the stats task.
#[derive(Clone, Debug)]
pub struct StatsSender {
    tx: Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl StatsSender {
    /// Queues one message; drops it (counted) when the queue is full.
    pub fn send(&self, msg: Vec<u8>) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                    tracing::warn!("stats socket queue full; dropping stats messages");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The running thread.
#[derive(Debug)]
pub struct StatsSocket {
    thread: Option<JoinHandle<()>>,
    sender: Option<StatsSender>,
}

/// Binds the PUB socket at `spec` and starts its thread.
pub fn start(spec: &str) -> Result<StatsSocket, RunError> {
    prepare_ipc(spec)?;
    let context = zmq::Context::new();
    let socket = context
        .socket(zmq::PUB)
        .map_err(zmq_err("create stats PUB"))?;
    socket.set_sndhwm(SNDHWM).map_err(zmq_err("stats SNDHWM"))?;
    socket.set_linger(0).map_err(zmq_err("stats LINGER"))?;
    socket.bind(spec).map_err(|source| RunError::Bind {
        spec: spec.to_string(),
        source,
    })?;
    let (tx, rx) = bounded(QUEUE);
    let thread = std::thread::Builder::new()
        .name("zmq-stats".into())
        .spawn(move || {
            run(&socket, &rx);
            drop(socket);
            drop(context);
        })
        .map_err(|source| RunError::Os {
            what: "stats thread",
            source,
        })?;
    tracing::info!("stats socket bound at {spec}");
    Ok(StatsSocket {
        thread: Some(thread),
        sender: Some(StatsSender {
            tx,
            dropped: Arc::default(),
        }),
    })
}

fn run(socket: &zmq::Socket, rx: &Receiver<Vec<u8>>) {
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(msg) => match socket.send(msg, zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => {}
                Err(err) => tracing::debug!("stats send failed: {err}"),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl StatsSocket {
    /// The sender for the stats task (once).
    pub fn take_sender(&mut self) -> Option<StatsSender> {
        self.sender.take()
    }

    /// Stops the thread once every sender is gone (the stats task aborted). Blocks.
    pub fn stop(mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("stats thread panicked");
            }
        }
    }
}
