//! Liveness of connmgr workers (proto `internal` docs, "Liveness"), as pure bookkeeping.
//!
//! The bridge thread feeds it every received packet's epoch and every sent packet; it answers
//! which workers restarted, which went silent for `PEER_TIMEOUT_MS`, and which need a heartbeat
//! because the handler has not sent them anything for `HEARTBEAT_INTERVAL_MS`. Time comes in as
//! an argument so the tests need no clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use holdfast_proto::internal::{HEARTBEAT_INTERVAL_MS, PEER_TIMEOUT_MS};

use super::WorkerId;

/// What a received packet says about its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerChange {
    /// First packet from this identity (or first since it was forgotten).
    New,
    /// Same incarnation as before.
    Same,
    /// A different epoch: the worker restarted and its old streams are gone.
    Restarted,
}

#[derive(Clone, Copy, Debug)]
struct PeerState {
    epoch: u64,
    last_received: Instant,
    last_sent: Instant,
}

/// The known workers.
#[derive(Debug)]
pub struct Peers {
    map: HashMap<WorkerId, PeerState>,
    heartbeat_interval: Duration,
    timeout: Duration,
}

impl Default for Peers {
    fn default() -> Self {
        Self::new(
            Duration::from_millis(HEARTBEAT_INTERVAL_MS),
            Duration::from_millis(PEER_TIMEOUT_MS),
        )
    }
}

impl Peers {
    /// Bookkeeping with explicit intervals.
    pub fn new(heartbeat_interval: Duration, timeout: Duration) -> Self {
        Self {
            map: HashMap::new(),
            heartbeat_interval,
            timeout,
        }
    }

    /// Records a packet from `worker` carrying `epoch`.
    pub fn on_receive(&mut self, worker: &WorkerId, epoch: u64, now: Instant) -> PeerChange {
        match self.map.get_mut(worker) {
            Some(state) => {
                state.last_received = now;
                if state.epoch == epoch {
                    PeerChange::Same
                } else {
                    state.epoch = epoch;
                    PeerChange::Restarted
                }
            }
            None => {
                self.map.insert(
                    worker.clone(),
                    PeerState {
                        epoch,
                        last_received: now,
                        // Nothing sent yet: due for a heartbeat one interval from now.
                        last_sent: now,
                    },
                );
                PeerChange::New
            }
        }
    }

    /// Records that a packet was sent to `worker` (or queued, for heartbeats).
    pub fn on_send(&mut self, worker: &WorkerId, now: Instant) {
        if let Some(state) = self.map.get_mut(worker) {
            state.last_sent = now;
        }
    }

    /// Removes and returns the workers silent for longer than the peer timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<WorkerId> {
        let timeout = self.timeout;
        let gone: Vec<WorkerId> = self
            .map
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_received) >= timeout)
            .map(|(w, _)| w.clone())
            .collect();
        for worker in &gone {
            self.map.remove(worker);
        }
        gone
    }

    /// Workers the handler has been quiet towards for a heartbeat interval; they are marked as
    /// sent to, so each gets one heartbeat per interval.
    pub fn heartbeats_due(&mut self, now: Instant) -> Vec<WorkerId> {
        let interval = self.heartbeat_interval;
        let mut due = Vec::new();
        for (worker, state) in &mut self.map {
            if now.saturating_duration_since(state.last_sent) >= interval {
                state.last_sent = now;
                due.push(worker.clone());
            }
        }
        due
    }

    /// Forgets a worker; true if it was known.
    pub fn forget(&mut self, worker: &WorkerId) -> bool {
        self.map.remove(worker).is_some()
    }

    /// Number of known workers.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no worker is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> (Peers, Instant) {
        (
            Peers::new(Duration::from_secs(1), Duration::from_secs(10)),
            Instant::now(),
        )
    }

    #[test]
    fn detects_new_same_and_restarted() {
        let (mut peers, t0) = peers();
        let w = WorkerId::new("cm-0");
        assert_eq!(peers.on_receive(&w, 7, t0), PeerChange::New);
        assert_eq!(peers.on_receive(&w, 7, t0), PeerChange::Same);
        assert_eq!(peers.on_receive(&w, 8, t0), PeerChange::Restarted);
        assert_eq!(peers.on_receive(&w, 8, t0), PeerChange::Same);
        assert_eq!(peers.len(), 1);
    }

    #[test]
    fn silent_workers_expire_and_can_come_back() {
        let (mut peers, t0) = peers();
        let a = WorkerId::new("a");
        let b = WorkerId::new("b");
        peers.on_receive(&a, 1, t0);
        peers.on_receive(&b, 1, t0 + Duration::from_secs(5));
        assert!(peers.expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(peers.expire(t0 + Duration::from_secs(10)), vec![a.clone()]);
        assert_eq!(peers.len(), 1);
        assert_eq!(
            peers.on_receive(&a, 1, t0 + Duration::from_secs(11)),
            PeerChange::New
        );
    }

    #[test]
    fn heartbeats_only_when_quiet() {
        let (mut peers, t0) = peers();
        let w = WorkerId::new("w");
        peers.on_receive(&w, 1, t0);
        assert!(peers
            .heartbeats_due(t0 + Duration::from_millis(500))
            .is_empty());
        peers.on_send(&w, t0 + Duration::from_millis(900));
        assert!(peers
            .heartbeats_due(t0 + Duration::from_millis(1500))
            .is_empty());
        assert_eq!(
            peers.heartbeats_due(t0 + Duration::from_millis(1900)),
            vec![w.clone()]
        );
        assert!(
            peers
                .heartbeats_due(t0 + Duration::from_millis(2000))
                .is_empty(),
            "one heartbeat per interval"
        );
        assert!(peers.forget(&w));
        assert!(peers.is_empty());
    }
}
