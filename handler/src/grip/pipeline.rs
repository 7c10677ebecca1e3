//! The publish pipeline's pure stages (reference §6.5): `id` deduplication and `prev-id`
//! sequencing, with time passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::item::Item;

/// Items a channel may hold back waiting for their predecessor (Pushpin's limit).
pub const MAX_PENDING_PER_CHANNEL: usize = 100;

/// Remembered (channel, id) pairs at most; the oldest are forgotten first.
const DEDUP_CAPACITY: usize = 1_000_000;

/// Drops items whose (channel, id) was seen within the TTL (`id_cache_ttl`; zero = off).
#[derive(Debug)]
pub struct Dedup {
    ttl: Duration,
    seen: HashMap<(String, String), Instant>,
    order: VecDeque<(Instant, (String, String))>,
}

impl Dedup {
    /// A deduplicator with `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True if the item is a duplicate and must be dropped; otherwise records it.
    pub fn is_duplicate(&mut self, channel: &str, id: Option<&str>, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let Some(id) = id else {
            return false;
        };
        self.expire(now);
        let key = (channel.to_string(), id.to_string());
        if self.seen.contains_key(&key) {
            return true;
        }
        if self.order.len() >= DEDUP_CAPACITY {
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((now, key));
        false
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                if self.seen.get(&key) == Some(&at) {
                    self.seen.remove(&key);
                }
            }
        }
    }
}

/// Per-channel ordering by `prev-id`: an item whose `prev-id` differs from the last delivered
/// id waits (at most `message_wait`) for its predecessor.
#[derive(Debug, Default)]
pub struct Sequencer {
    last_id: Option<String>,
    pending: Vec<(Instant, Item)>,
}

impl Sequencer {
    /// True while items are held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Offers an item; returns the items to deliver now, in order.
    pub fn offer(&mut self, item: Item, now: Instant) -> Vec<Item> {
        if !item.no_seq {
            if let (Some(last), Some(prev)) = (&self.last_id, &item.prev_id) {
                if last != prev && self.pending.len() < MAX_PENDING_PER_CHANNEL {
                    // One waiting item per distinct prev-id: a newer one replaces it.
                    self.pending
                        .retain(|(_, p)| p.prev_id.as_deref() != Some(prev.as_str()));
                    self.pending.push((now, item));
                    return Vec::new();
                }
            }
        }
        let mut out = vec![item];
        self.delivered(&mut out);
        out
    }

    /// Releases the items that waited `wait` or longer (with everything they unblock).
    pub fn expire(&mut self, now: Instant, wait: Duration) -> Vec<Item> {
        let mut out = Vec::new();
        while let Some(pos) = self
            .pending
            .iter()
            .position(|(at, _)| now.saturating_duration_since(*at) >= wait)
        {
            let (_, item) = self.pending.remove(pos);
            out.push(item);
            self.delivered(&mut out);
        }
        out
    }

    /// Records the last item of `out` as delivered and appends waiting successors.
    fn delivered(&mut self, out: &mut Vec<Item>) {
        loop {
            let Some(last) = out.last() else { return };
            self.last_id = last.id.clone();
            let Some(id) = self.last_id.as_deref() else {
                return;
            };
            let Some(pos) = self
                .pending
                .iter()
                .position(|(_, p)| p.prev_id.as_deref() == Some(id))
            else {
                return;
            };
            let (_, next) = self.pending.remove(pos);
            out.push(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: Option<&str>, prev: Option<&str>) -> Item {
        Item {
            channel: "c".into(),
            id: id.map(str::to_string),
            prev_id: prev.map(str::to_string),
            no_seq: false,
            meta: Vec::new(),
            response: None,
            stream: None,
            ws: None,
        }
    }

    fn ids(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| i.id.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn dedup_within_ttl_only() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(60));
        assert!(!d.is_duplicate("c", Some("1"), t0));
        assert!(d.is_duplicate("c", Some("1"), t0 + Duration::from_secs(59)));
        assert!(!d.is_duplicate("other", Some("1"), t0));
        assert!(!d.is_duplicate("c", None, t0));
        assert!(!d.is_duplicate("c", None, t0));
        assert!(!d.is_duplicate("c", Some("1"), t0 + Duration::from_secs(61)));
        let mut off = Dedup::new(Duration::ZERO);
        assert!(!off.is_duplicate("c", Some("1"), t0));
        assert!(!off.is_duplicate("c", Some("1"), t0));
    }

    #[test]
    fn out_of_order_items_wait_for_their_predecessor() {
        let t0 = Instant::now();
        let mut s = Sequencer::default();
        assert_eq!(ids(&s.offer(item(Some("1"), None), t0)), ["1"]);
        assert!(s.offer(item(Some("3"), Some("2")), t0).is_empty());
        assert!(s.has_pending());
        assert_eq!(ids(&s.offer(item(Some("2"), Some("1")), t0)), ["2", "3"]);
        assert!(!s.has_pending());
    }

    #[test]
    fn waiting_items_are_released_after_message_wait() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(5);
        let mut s = Sequencer::default();
        s.offer(item(Some("1"), None), t0);
        assert!(s.offer(item(Some("5"), Some("4")), t0).is_empty());
        assert!(s.expire(t0 + Duration::from_secs(4), wait).is_empty());
        assert_eq!(ids(&s.expire(t0 + wait, wait)), ["5"]);
        assert_eq!(ids(&s.offer(item(Some("6"), Some("5")), t0)), ["6"]);
    }

    #[test]
    fn no_seq_and_unknown_last_id_pass() {
        let t0 = Instant::now();
        let mut s = Sequencer::default();
        assert_eq!(ids(&s.offer(item(Some("9"), Some("8")), t0)), ["9"]);
        let mut bypass = item(Some("x"), Some("nope"));
        bypass.no_seq = true;
        assert_eq!(ids(&s.offer(bypass, t0)), ["x"]);
        // An item without id clears the last id: anything passes after it.
        s.offer(item(None, None), t0);
        assert_eq!(ids(&s.offer(item(Some("z"), Some("q")), t0)), ["z"]);
    }

    #[test]
    fn pending_is_bounded() {
        let t0 = Instant::now();
        let mut s = Sequencer::default();
        s.offer(item(Some("0"), None), t0);
        for n in 0..MAX_PENDING_PER_CHANNEL {
            let prev = format!("p{n}");
            assert!(s.offer(item(Some("x"), Some(&prev)), t0).is_empty());
        }
        assert_eq!(s.offer(item(Some("y"), Some("zz")), t0).len(), 1);
    }
}
