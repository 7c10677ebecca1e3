//! Stream keep-alive scheduling (reference §4.2 `Grip-Keep-Alive`), with time passed in.
//!
//! `idle` mode: keep-alive data goes out only after `timeout` without any other output, so a
//! delivery pushes the deadline back. `interval` mode: every `timeout` whatever else was sent.
//! Like Pushpin, every wait is shortened by a random 0–999 ms so that many streams opened
//! together do not all fire in the same instant.

use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::grip::{KeepAlive as Instructed, KeepAliveMode};

/// The keep-alive of one stream hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Bytes written each time.
    pub data: Bytes,
    /// The period.
    pub timeout: Duration,
    /// `idle` (true) or `interval`.
    pub idle: bool,
}

impl KeepAlive {
    /// From the parsed instruction.
    pub fn from_instruct(ka: &Instructed) -> Self {
        Self {
            data: ka.data.clone(),
            timeout: Duration::from_secs(u64::from(ka.timeout.max(1))),
            idle: ka.mode == KeepAliveMode::Idle,
        }
    }

    /// The next deadline counted from `from`, shortened by `jitter_ms` (0–999; larger values
    /// are reduced modulo 1000), never earlier than 100 ms after `from`.
    pub fn next(&self, from: Instant, jitter_ms: u64) -> Instant {
        let jitter = Duration::from_millis(jitter_ms % 1000);
        let wait = self
            .timeout
            .saturating_sub(jitter)
            .max(Duration::from_millis(100));
        from + wait
    }

    /// The deadline after output was sent at `now`, given the current one: idle mode restarts
    /// the period, interval mode keeps it.
    pub fn after_output(&self, current: Instant, now: Instant) -> Instant {
        if self.idle {
            now + self.timeout
        } else {
            current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ka(idle: bool) -> KeepAlive {
        KeepAlive {
            data: Bytes::from_static(b":\n\n"),
            timeout: Duration::from_secs(20),
            idle,
        }
    }

    #[test]
    fn jitter_shortens_the_wait() {
        let t0 = Instant::now();
        assert_eq!(ka(true).next(t0, 0), t0 + Duration::from_secs(20));
        assert_eq!(ka(true).next(t0, 999), t0 + Duration::from_millis(19_001));
        assert_eq!(ka(true).next(t0, 1500), t0 + Duration::from_millis(19_500));
        let short = KeepAlive {
            timeout: Duration::from_secs(0),
            ..ka(true)
        };
        assert_eq!(short.next(t0, 5), t0 + Duration::from_millis(100));
    }

    #[test]
    fn idle_restarts_and_interval_keeps() {
        let t0 = Instant::now();
        let current = t0 + Duration::from_secs(20);
        let later = t0 + Duration::from_secs(7);
        assert_eq!(
            ka(true).after_output(current, later),
            later + Duration::from_secs(20)
        );
        assert_eq!(ka(false).after_output(current, later), current);
    }
}
