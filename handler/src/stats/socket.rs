//! The stats socket's thread. Messages arrive over a bounded channel; the thread sends each
//! without blocking (a publisher drops for slow subscribers anyway).
//!
//! The socket is an XPUB: to its subscribers (Pushpin's stats readers connect a SUB) it is a
//! PUB socket, and it also tells the thread which topics are subscribed. While nobody
//! subscribes, [`StatsSender::listening`] is false and the reporter builds no packets: most
//! deployments bind the stats socket (Pushpin's `internal.conf` sets `stats_spec`) and never
//! read it, and a `conn` packet per opened and closed connection and a `message` packet per
//! delivery were being built, encoded and dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::error::RunError;
use crate::zmqutil::{prepare_ipc, zmq_err};

/// Messages queued for the thread at most.
pub const QUEUE: usize = 10_000;

/// Send high-water mark of the socket.
const SNDHWM: i32 = 10_000;

/// How long the thread waits for a message before it looks for (un)subscriptions: bounds how
/// late a new subscriber is noticed (its first packets are built from the next reporter pass
/// on).
const SUBSCRIPTION_POLL: Duration = Duration::from_millis(50);

/// The sending side, for the stats task.
#[derive(Clone, Debug)]
pub struct StatsSender {
    tx: Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    listening: Arc<AtomicBool>,
}

impl StatsSender {
    /// True while at least one subscription is open on the socket.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

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
        .socket(zmq::XPUB)
        .map_err(zmq_err("create stats XPUB"))?;
    socket.set_sndhwm(SNDHWM).map_err(zmq_err("stats SNDHWM"))?;
    socket.set_linger(0).map_err(zmq_err("stats LINGER"))?;
    socket.bind(spec).map_err(|source| RunError::Bind {
        spec: spec.to_string(),
        source,
    })?;
    let (tx, rx) = bounded(QUEUE);
    let listening = Arc::new(AtomicBool::new(false));
    let flag = listening.clone();
    let thread = std::thread::Builder::new()
        .name("zmq-stats".into())
        .spawn(move || {
            run(&socket, &rx, &flag);
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
            listening,
        }),
    })
}

fn run(socket: &zmq::Socket, rx: &Receiver<Vec<u8>>, listening: &AtomicBool) {
    // Subscribed topics: XPUB reports a topic's first subscription (`\x01topic`) and its
    // last unsubscription (`\x00topic`, also when the subscriber disconnects).
    let mut topics: HashSet<Vec<u8>> = HashSet::new();
    loop {
        match rx.recv_timeout(SUBSCRIPTION_POLL) {
            Ok(msg) => match socket.send(msg, zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => {}
                Err(err) => tracing::debug!("stats send failed: {err}"),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(event) = socket.recv_bytes(zmq::DONTWAIT) {
            match event.split_first() {
                Some((1, topic)) => {
                    topics.insert(topic.to_vec());
                }
                Some((0, topic)) => {
                    topics.remove(topic);
                }
                _ => {}
            }
        }
        listening.store(!topics.is_empty(), Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Polls `cond` for up to two seconds.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    #[test]
    fn listening_follows_the_subscribers() {
        let dir = std::env::temp_dir().join(format!("hf-stats-{}", std::process::id()));
        let spec = format!("ipc://{}/stats", dir.display());
        let mut socket = start(&spec).expect("bind the stats socket");
        let sender = socket.take_sender().expect("a sender");
        assert!(!sender.listening(), "nobody subscribed yet");

        let context = zmq::Context::new();
        let sub = context.socket(zmq::SUB).expect("SUB");
        sub.set_linger(0).expect("linger");
        sub.set_subscribe(b"").expect("subscribe");
        sub.connect(&spec).expect("connect");
        assert!(
            eventually(|| sender.listening()),
            "the subscription is seen"
        );
        // What is sent now reaches the subscriber.
        assert!(eventually(|| {
            sender.send(b"report T0:}".to_vec());
            sub.recv_bytes(zmq::DONTWAIT).is_ok()
        }));

        drop(sub);
        assert!(
            eventually(|| !sender.listening()),
            "the subscriber's departure is seen"
        );
        drop(sender);
        socket.stop();
        let _ = std::fs::remove_dir_all(dir);
    }
}
