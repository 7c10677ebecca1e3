//! Maps keyed by the hub's own held-request ids.
//!
//! Those ids are the hub's sequence numbers (`Hub::next_id`), never chosen by a client, so
//! they need no protection against crafted collisions (what the standard SipHash buys at
//! ~20 ns per lookup). A publish to 10,000 subscribers looks up 10,000 of them under the hub's
//! lock, so the hash is one multiplication instead: sequential ids spread evenly over the
//! table's buckets because multiplying by an odd constant permutes the low bits.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A map from held-request id to `V` with the [`IdHasher`].
pub(super) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Multiplicative hash of one `u64` (Fibonacci hashing's constant, 2^64 / φ, odd).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in, byte by byte.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Maps smaller than this many slots are never shrunk (not worth a rehash).
const SHRINK_MIN_CAPACITY: usize = 1024;

/// Gives back most of a map's table once it holds under a quarter of its capacity.
///
/// Why: a `HashMap` keeps its largest table forever, so the per-request tables sized for a
/// crowd (2,000 long-polls: about 1 MiB for the held records alone) stayed allocated after
/// the clients left, which issue 7 counts against "memory returns to near its starting level".
/// Shrinking to twice the length only once the map fell to a quarter costs one rehash per
/// halving at most, so amortised O(1) per removal.
pub(crate) fn shrink_sparse<K, V, S>(map: &mut HashMap<K, V, S>)
where
    K: Eq + Hash,
    S: BuildHasher,
{
    let capacity = map.capacity();
    if capacity >= SHRINK_MIN_CAPACITY && map.len() < capacity / 4 {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_hash_apart_and_the_map_works() {
        let mut map: IdMap<u64> = IdMap::default();
        for id in 1..=10_000u64 {
            map.insert(id, id * 2);
        }
        assert_eq!(map.len(), 10_000);
        assert!((1..=10_000u64).all(|id| map.get(&id) == Some(&(id * 2))));
        assert_eq!(map.remove(&5_000), Some(10_000));
        assert!(!map.contains_key(&5_000));
        // Neighbouring ids land in different buckets of a small table (low bits differ).
        let hash = |n: u64| {
            let mut h = IdHasher::default();
            h.write_u64(n);
            h.finish()
        };
        let low: std::collections::HashSet<u64> = (0..64u64).map(|n| hash(n) & 63).collect();
        assert_eq!(low.len(), 64);
    }

    #[test]
    fn emptied_maps_give_their_table_back_and_small_ones_are_left_alone() {
        let mut map: IdMap<u64> = IdMap::default();
        for id in 0..10_000u64 {
            map.insert(id, id);
        }
        let full = map.capacity();
        for id in 0..10_000u64 {
            map.remove(&id);
            shrink_sparse(&mut map);
            assert!(map.capacity() >= map.len());
        }
        assert!(map.is_empty());
        assert!(
            map.capacity() < SHRINK_MIN_CAPACITY,
            "{} of {full}",
            map.capacity()
        );
        let mut small: IdMap<u64> = IdMap::default();
        small.reserve(500);
        let before = small.capacity();
        shrink_sparse(&mut small);
        assert_eq!(small.capacity(), before);
    }
}
