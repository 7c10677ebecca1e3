//! Signal handling and the process-wide shutdown phase.
//!
//! A dedicated thread waits for SIGINT/SIGTERM (signal-hook's self-pipe, so no code runs in
//! signal context) and escalates a shared [`ShutdownState`]: the first signal asks workers to
//! drain, the second to stop at once. After each change it wakes every worker through its mio
//! [`Waker`], so workers never poll a flag on a timer.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use mio::Waker;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Where the process is in its shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving.
    Running,
    /// Stop accepting, finish in-flight responses within the drain deadline, then exit.
    Draining,
    /// Cancel everything now and exit.
    Immediate,
}

/// The shutdown phase, shared by the signal thread and the workers.
#[derive(Debug, Default)]
pub struct ShutdownState {
    phase: AtomicU8,
}

impl ShutdownState {
    /// A state in [`Phase::Running`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Draining,
            _ => Phase::Immediate,
        }
    }

    /// Moves one phase on (Running → Draining → Immediate) and returns the new phase.
    pub fn escalate(&self) -> Phase {
        let _ = self
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some((p + 1).min(2))
            });
        self.phase()
    }
}

/// Starts the signal thread: every SIGINT/SIGTERM escalates `state` and wakes all `wakers`.
pub fn spawn_signal_thread(
    state: Arc<ShutdownState>,
    wakers: Vec<Arc<Waker>>,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let phase = state.escalate();
                match phase {
                    Phase::Draining => tracing::info!(
                        signal,
                        "shutting down: no new connections, finishing responses in flight"
                    ),
                    _ => tracing::info!(signal, "second signal: stopping now"),
                }
                for waker in &wakers {
                    if let Err(e) = waker.wake() {
                        tracing::error!(error = %e, "cannot wake a worker");
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalates_and_saturates() {
        let s = ShutdownState::new();
        assert_eq!(s.phase(), Phase::Running);
        assert_eq!(s.escalate(), Phase::Draining);
        assert_eq!(s.escalate(), Phase::Immediate);
        assert_eq!(s.escalate(), Phase::Immediate);
        assert!(Phase::Draining > Phase::Running);
    }
}
