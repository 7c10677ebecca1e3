//! A hashed timing wheel for connection deadlines.
//!
//! Connections refresh their inactivity deadline on every read and write; putting each refresh
//! into a heap would cost a push per I/O. Instead the wheel is *lazy*: a connection schedules one
//! entry, activity only updates the connection's own "last activity" time, and when the entry
//! fires the worker compares the connection's real deadline with the clock and reschedules if it
//! moved. So a busy connection costs one wheel operation per timeout period, not per I/O.
//!
//! The wheel has `slots` buckets of `resolution` each. A deadline further away than the wheel's
//! span is parked in the last bucket and simply rescheduled when it fires. Entries are never
//! removed early: a stale entry (its connection gone, or its slot reused) is recognised and
//! ignored by the key the caller stores in it.

use std::time::{Duration, Instant};

/// Buckets [`TimerWheel::next_expiry`] looks ahead for a due entry, so a wheel with only far
/// deadlines wakes its owner once per this many ticks rather than on every tick.
pub const SCAN_AHEAD: u64 = 16;

/// A timing wheel of keys `K`.
#[derive(Debug)]
pub struct TimerWheel<K> {
    origin: Instant,
    resolution: Duration,
    buckets: Vec<Vec<K>>,
    /// The next tick to process; every entry's tick is in `current..current + buckets.len()`.
    current: u64,
    len: usize,
}

impl<K> TimerWheel<K> {
    /// A wheel starting at `origin` with `slots` buckets (at least 2) of `resolution` each.
    pub fn new(origin: Instant, resolution: Duration, slots: usize) -> Self {
        let resolution = resolution.max(Duration::from_millis(1));
        Self {
            origin,
            resolution,
            buckets: (0..slots.max(2)).map(|_| Vec::new()).collect(),
            current: 0,
            len: 0,
        }
    }

    /// Entries scheduled (stale ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick an entry for `deadline` goes into: the first tick at or after the deadline,
    /// clamped to the wheel's span.
    pub fn tick_for(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.origin).as_nanos();
        let res = self.resolution.as_nanos().max(1);
        let tick = u64::try_from(nanos.div_ceil(res)).unwrap_or(u64::MAX);
        let last = self.current + self.buckets.len() as u64 - 1;
        tick.clamp(self.current, last)
    }

    /// Schedules `key` for `deadline`; returns the tick used (see [`Self::tick_for`]).
    pub fn schedule(&mut self, deadline: Instant, key: K) -> u64 {
        let tick = self.tick_for(deadline);
        let n = self.buckets.len() as u64;
        self.buckets[(tick % n) as usize].push(key);
        self.len += 1;
        tick
    }

    /// Moves every entry whose tick has come by `now` into `out`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<K>) {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        let due = u64::try_from(elapsed / self.resolution.as_nanos().max(1)).unwrap_or(u64::MAX);
        let n = self.buckets.len() as u64;
        let mut processed = 0;
        while self.current <= due && processed < n {
            let bucket = &mut self.buckets[(self.current % n) as usize];
            self.len -= bucket.len();
            out.append(bucket);
            self.current += 1;
            processed += 1;
        }
        // After a full turn every bucket is empty: jump straight to the present.
        if self.current <= due {
            self.current = due + 1;
        }
    }

    /// When [`Self::expire`] should next be called, if anything is scheduled: the first
    /// non-empty bucket within the next [`SCAN_AHEAD`] ticks, else the end of that range.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let n = self.buckets.len() as u64;
        let tick = (self.current..self.current + SCAN_AHEAD.min(n))
            .find(|t| !self.buckets[(t % n) as usize].is_empty())
            .unwrap_or(self.current + SCAN_AHEAD.min(n));
        let nanos = u128::from(tick) * self.resolution.as_nanos();
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Some(self.origin + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fires_at_or_after_deadline() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0, 100 * MS, 8);
        wheel.schedule(t0 + 250 * MS, 'a');
        wheel.schedule(t0 + 100 * MS, 'b');
        assert_eq!(wheel.len(), 2);
        let mut out = Vec::new();
        wheel.expire(t0 + 99 * MS, &mut out);
        assert!(out.is_empty());
        wheel.expire(t0 + 100 * MS, &mut out);
        assert_eq!(out, vec!['b']);
        assert_eq!(wheel.next_expiry(), Some(t0 + 300 * MS));
        out.clear();
        wheel.expire(t0 + 299 * MS, &mut out);
        assert!(out.is_empty());
        wheel.expire(t0 + 300 * MS, &mut out);
        assert_eq!(out, vec!['a']);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_expiry(), None);
    }

    #[test]
    fn next_expiry_skips_empty_buckets_within_the_scan() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0, 100 * MS, 64);
        wheel.schedule(t0 + 5000 * MS, ());
        // Tick 50 is beyond the scan: wake at the end of the scanned range.
        assert_eq!(wheel.next_expiry(), Some(t0 + 1600 * MS));
        wheel.schedule(t0 + 450 * MS, ());
        assert_eq!(wheel.next_expiry(), Some(t0 + 500 * MS));
    }

    #[test]
    fn far_deadlines_are_clamped_to_the_span() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0, 100 * MS, 4);
        let tick = wheel.schedule(t0 + Duration::from_secs(60), 1);
        assert_eq!(tick, 3);
        let mut out = Vec::new();
        wheel.expire(t0 + 300 * MS, &mut out);
        assert_eq!(out, vec![1]);
    }

    #[test]
    fn past_deadlines_fire_on_next_expire() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0, 100 * MS, 4);
        let mut out = Vec::new();
        wheel.expire(t0 + 1000 * MS, &mut out);
        wheel.schedule(t0, 7);
        wheel.expire(t0 + 1000 * MS, &mut out);
        assert!(out.is_empty(), "tick 11 is not due at 1000 ms");
        wheel.expire(t0 + 1100 * MS, &mut out);
        assert_eq!(out, vec![7]);
    }

    #[test]
    fn long_stall_processes_everything_once() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0, 10 * MS, 4);
        for i in 0..4 {
            wheel.schedule(t0 + i * 10 * MS, i);
        }
        let mut out = Vec::new();
        wheel.expire(t0 + Duration::from_secs(3600), &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![0, 1, 2, 3]);
        assert!(wheel.is_empty());
        // The wheel continues from the present.
        wheel.schedule(t0 + Duration::from_secs(3600) + 5 * MS, 9);
        out.clear();
        wheel.expire(t0 + Duration::from_secs(3600) + 10 * MS, &mut out);
        assert_eq!(out, vec![9]);
    }
}
