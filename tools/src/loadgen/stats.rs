//! Latency histograms (HDR-style: logarithmic buckets, each split into 32 linear sub-buckets, so
//! every recorded value is reported within 1/32 ≈ 3 % of its true value), the clock the
//! scenarios embed in messages, and small helpers to build the JSON result line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// log2 of the number of linear sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every `u64`: the highest value has exponent 63.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// The bucket a value falls in. Values below 32 have a bucket each.
fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let m = v >> (e - SUB_BITS);
    ((e - SUB_BITS + 1) as usize) * SUB as usize + (m - SUB) as usize
}

/// The highest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let group = i / SUB;
    let e = group + u64::from(SUB_BITS) - 1;
    let m = SUB + i % SUB;
    let shift = e - u64::from(SUB_BITS);
    (m << shift).saturating_add((1u64 << shift) - 1)
}

/// A histogram of `u64` values (microseconds in this tool), owned by one task.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    max: u64,
    min: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
            min: u64::MAX,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
        self.min = self.min.min(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        self.min = self.min.min(other.min);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1): the highest value of the bucket holding the
    /// `ceil(q * count)`-th smallest value, capped at the exact maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max).max(self.min);
            }
        }
        self.max
    }

    /// `{"count", "p50", "p90", "p99", "max", "mean"}` for the result line.
    pub fn summary(&self) -> Value {
        json!({
            "count": self.count,
            "p50": self.quantile(0.50),
            "p90": self.quantile(0.90),
            "p99": self.quantile(0.99),
            "max": self.max,
            "mean": (self.mean() * 10.0).round() / 10.0,
        })
    }
}

/// A histogram many tasks record into at once (one relaxed atomic add per value).
#[derive(Debug)]
pub struct SharedHistogram {
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    max: AtomicU64,
    min: AtomicU64,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedHistogram {
    pub fn new() -> Self {
        SharedHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
        }
    }

    pub fn record(&self, v: u64) {
        self.counts[bucket_of(v)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
        self.min.fetch_min(v, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Histogram {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let count = counts.iter().sum();
        Histogram {
            counts,
            count,
            sum: u128::from(self.sum.load(Ordering::Relaxed)),
            max: self.max.load(Ordering::Relaxed),
            min: self.min.load(Ordering::Relaxed),
        }
    }
}

/// Wall-clock nanoseconds since the Unix epoch: the timestamp embedded in published messages,
/// comparable across processes on one machine.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A rate rounded to one decimal, 0 when the duration is not positive.
pub fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (count as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Rounds to three decimals for the result line.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket order at {v}");
            last = b;
            let high = bucket_high(b);
            assert!(high >= v, "{v} above its bucket's high {high}");
            // Relative error at most 1/32.
            assert!(high - v <= v / 32 + 1, "{v} -> {high}");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
        assert_eq!(bucket_high(bucket_of(u64::MAX)), u64::MAX);
    }

    #[test]
    fn small_values_are_exact() {
        for v in 0..64 {
            assert_eq!(bucket_high(bucket_of(v)), v);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=1000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5);
        assert!((500..=516).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((990..=1000).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.max(), 1000);
        assert_eq!(h.count(), 1000);
        assert!((h.mean() - 500.5).abs() < 1e-9);
    }

    #[test]
    fn shared_snapshot_and_merge() {
        let s = SharedHistogram::new();
        let mut h = Histogram::new();
        for v in [5, 50, 500, 5000, 50_000] {
            s.record(v);
            h.record(v);
        }
        let snap = s.snapshot();
        assert_eq!(snap.count(), 5);
        assert_eq!(snap.quantile(0.5), h.quantile(0.5));
        let mut m = Histogram::new();
        m.merge(&snap);
        m.merge(&h);
        assert_eq!(m.count(), 10);
        assert_eq!(m.max(), 50_000);
        assert_eq!(m.quantile(0.0), 5);
    }

    #[test]
    fn rates() {
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(10, 4.0), 2.5);
    }
}
