//! The delivery limiter of reference §6.5 step 3 (`message_rate`, `message_hwm`).
//!
//! Every (receiver, item) delivery becomes an action queued in a bucket: one bucket per route
//! id for routes with an explicit id, one shared bucket for every other route. One limiter
//! drains all buckets round-robin: `rate` actions per second overall, in batches of
//! `rate × 25 ms` every 25 ms (for rates under 40/s, one action every `1000 / rate` ms). The
//! first batch after an idle spell goes out at once. Without a rate everything queued goes
//! out at the next drain. A bucket holds at most `hwm` actions; beyond that
//! [`Limiter::add`] refuses (the caller drops and counts the delivery).
//!
//! Pure state: time is passed in. The hub only builds a limiter when one of the keys is set,
//! so unlimited configurations never pay for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest spacing of two batches (Pushpin's `MIN_BATCH_INTERVAL`).
const MIN_BATCH_INTERVAL: Duration = Duration::from_millis(25);

/// A bucket key: a route id, or `None` for the shared bucket.
pub type BucketKey = Option<Arc<str>>;

/// Batch size and spacing derived from a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pace {
    interval: Duration,
    batch: usize,
}

impl Pace {
    fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        let min_ms = MIN_BATCH_INTERVAL.as_millis() as u32;
        if rate >= 1000 / min_ms {
            Self {
                interval: MIN_BATCH_INTERVAL,
                batch: (rate * min_ms).div_ceil(1000) as usize,
            }
        } else {
            Self {
                interval: Duration::from_millis(u64::from(1000 / rate)),
                batch: 1,
            }
        }
    }
}

/// Round-robin, rate-limited queue of actions `A`.
#[derive(Debug)]
pub struct Limiter<A> {
    pace: Option<Pace>,
    hwm: Option<usize>,
    /// Non-empty buckets in service order: the front is served next.
    buckets: VecDeque<(BucketKey, VecDeque<A>)>,
    /// When the next batch may go; `None` while nothing was ever sent.
    next_batch: Option<Instant>,
}

impl<A> Limiter<A> {
    /// A limiter; `rate` in actions per second (`None` = unlimited), `hwm` per bucket
    /// (`None` = unbounded).
    pub fn new(rate: Option<u32>, hwm: Option<u32>) -> Self {
        Self {
            pace: rate.filter(|r| *r > 0).map(Pace::new),
            hwm: hwm.filter(|h| *h > 0).map(|h| h as usize),
            buckets: VecDeque::new(),
            next_batch: None,
        }
    }

    /// How often [`Limiter::take_due`] should be called (`None`: unlimited rate, drain after
    /// each publish).
    pub fn interval(&self) -> Option<Duration> {
        self.pace.map(|p| p.interval)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Queues an action in `key`'s bucket; false (and the action is dropped) when the bucket
    /// is at its high-water mark.
    pub fn add(&mut self, key: &BucketKey, action: A) -> bool {
        let pos = self.buckets.iter().position(|(k, _)| k == key);
        let queue = match pos {
            Some(i) => &mut self.buckets[i].1,
            None => {
                self.buckets.push_back((key.clone(), VecDeque::new()));
                let last = self.buckets.len() - 1;
                &mut self.buckets[last].1
            }
        };
        // hwm >= 1, so a bucket just created is never full and never left empty.
        if self.hwm.is_some_and(|hwm| queue.len() >= hwm) {
            return false;
        }
        queue.push_back(action);
        true
    }

    /// Takes the actions allowed to run at `now`, in round-robin order across buckets.
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<A>) {
        let Some(pace) = self.pace else {
            while self.take_one(out) {}
            return;
        };
        while !self.buckets.is_empty() {
            let due = match self.next_batch {
                // Idle for a while (or never started): the first batch goes at once and the
                // cadence restarts from now instead of bursting to catch up.
                Some(at) if now.saturating_duration_since(at) < pace.interval * 2 => at,
                _ => now,
            };
            if due > now {
                break;
            }
            for _ in 0..pace.batch {
                if !self.take_one(out) {
                    break;
                }
            }
            self.next_batch = Some(due + pace.interval);
        }
    }

    fn take_one(&mut self, out: &mut Vec<A>) -> bool {
        let Some((key, mut queue)) = self.buckets.pop_front() else {
            return false;
        };
        if let Some(action) = queue.pop_front() {
            out.push(action);
        }
        if !queue.is_empty() {
            self.buckets.push_back((key, queue));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> BucketKey {
        Some(Arc::from(k))
    }

    #[test]
    fn pace_follows_pushpin() {
        assert_eq!(
            Pace::new(2500),
            Pace {
                interval: Duration::from_millis(25),
                batch: 63
            }
        );
        assert_eq!(
            Pace::new(40),
            Pace {
                interval: Duration::from_millis(25),
                batch: 1
            }
        );
        assert_eq!(
            Pace::new(20),
            Pace {
                interval: Duration::from_millis(50),
                batch: 1
            }
        );
        assert_eq!(
            Pace::new(3),
            Pace {
                interval: Duration::from_millis(333),
                batch: 1
            }
        );
    }

    #[test]
    fn first_batch_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Some(20), None);
        for i in 0..5 {
            assert!(l.add(&None, i));
        }
        let mut out = Vec::new();
        l.take_due(t0, &mut out);
        assert_eq!(out, vec![0]);
        l.take_due(t0 + Duration::from_millis(49), &mut out);
        assert_eq!(out, vec![0]);
        l.take_due(t0 + Duration::from_millis(50), &mut out);
        assert_eq!(out, vec![0, 1]);
        // A late call keeps the cadence: the next batch is still due at 150 ms.
        l.take_due(t0 + Duration::from_millis(140), &mut out);
        assert_eq!(out, vec![0, 1, 2]);
        l.take_due(t0 + Duration::from_millis(150), &mut out);
        assert_eq!(out, vec![0, 1, 2, 3]);
        // A call more than one interval late catches up.
        l.add(&None, 9);
        l.take_due(t0 + Duration::from_millis(260), &mut out);
        assert_eq!(out, vec![0, 1, 2, 3, 4, 9]);
        assert!(l.is_empty());
        // After an idle spell the next action goes at once.
        l.add(&None, 5);
        l.take_due(t0 + Duration::from_secs(10), &mut out);
        assert_eq!(out.last(), Some(&5));
    }

    #[test]
    fn rate_over_a_second_matches_the_setting() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Some(2000), None);
        for i in 0..10_000 {
            l.add(&None, i);
        }
        let mut out = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(1) {
            l.take_due(t, &mut out);
            t += Duration::from_millis(5);
        }
        // 40 batches of 50 in the second.
        assert_eq!(out.len(), 2000);
    }

    #[test]
    fn buckets_are_served_round_robin() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Some(1000), None);
        for i in 0..4 {
            l.add(&key("a"), ("a", i));
        }
        l.add(&None, ("-", 0));
        l.add(&key("b"), ("b", 0));
        let mut out = Vec::new();
        l.take_due(t0, &mut out);
        assert_eq!(
            out,
            vec![("a", 0), ("-", 0), ("b", 0), ("a", 1), ("a", 2), ("a", 3)]
        );
    }

    #[test]
    fn hwm_bounds_each_bucket() {
        let mut l = Limiter::new(Some(10), Some(2));
        assert!(l.add(&None, 1));
        assert!(l.add(&None, 2));
        assert!(!l.add(&None, 3));
        assert!(l.add(&key("r"), 4));
        let mut out = Vec::new();
        l.take_due(Instant::now(), &mut out);
        assert_eq!(out, vec![1]);
        assert!(l.add(&None, 5));
    }

    #[test]
    fn unlimited_rate_drains_everything() {
        let mut l = Limiter::new(None, Some(3));
        for i in 0..5 {
            l.add(&None, i);
        }
        let mut out = Vec::new();
        l.take_due(Instant::now(), &mut out);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(l.interval(), None);
    }
}
