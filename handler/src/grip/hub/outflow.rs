//! Per-session output bookkeeping: response credits from the connmgr and the queue of items
//! waiting for them (reference §4.4: at most [`MAX_QUEUED_ITEMS`] per session).
//!
//! A published item goes out at once, through the per-worker `Fanout`, only when nothing is
//! queued before it and the session holds enough credits for the whole item; otherwise it is
//! queued and later sent as individual `Body` messages, split to fit the credits. Order is
//! therefore kept per session whatever the mix.

use std::collections::VecDeque;

use bytes::Bytes;

/// Items a session may queue while its client is slow (Pushpin's per-session limit).
pub const MAX_QUEUED_ITEMS: usize = 100;

/// What happened to an offered item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Credits were taken: the caller sends the item now.
    SendNow,
    /// The item waits in the queue.
    Queued,
    /// The queue is full: the item is dropped (the caller counts it).
    Dropped,
}

/// Credits and queue of one held stream.
#[derive(Debug, Default)]
pub struct Outflow {
    credits: u64,
    queue: VecDeque<Bytes>,
}

impl Outflow {
    /// A flow starting with `credits`.
    pub fn new(credits: u64) -> Self {
        Self {
            credits,
            queue: VecDeque::new(),
        }
    }

    /// Credits currently held.
    pub fn credits(&self) -> u64 {
        self.credits
    }

    /// True when nothing waits.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Offers a published item.
    pub fn offer(&mut self, data: &Bytes) -> Offer {
        let len = data.len() as u64;
        if self.queue.is_empty() && self.credits >= len {
            self.credits -= len;
            Offer::SendNow
        } else if self.queue.len() < MAX_QUEUED_ITEMS {
            self.queue.push_back(data.clone());
            Offer::Queued
        } else {
            Offer::Dropped
        }
    }

    /// Queues bytes that must go out whatever the queue length (a head's body remainder, a
    /// completed response's body): they are part of a response already promised.
    pub fn push_forced(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.queue.push_back(data);
        }
    }

    /// Sends as much of `data` as credits allow now and queues the rest (for heads).
    pub fn split_first(&mut self, mut data: Bytes) -> Bytes {
        let n = if self.queue.is_empty() {
            self.credits.min(data.len() as u64)
        } else {
            0
        };
        self.credits -= n;
        // n <= data.len(), a usize.
        let first = data.split_to(n as usize);
        self.push_forced(data);
        first
    }

    /// Takes keep-alive credits if the session is idle and can afford them.
    pub fn take_for_keep_alive(&mut self, len: usize) -> bool {
        let len = len as u64;
        if self.queue.is_empty() && self.credits >= len {
            self.credits -= len;
            true
        } else {
            false
        }
    }

    /// Adds credits and returns the chunks that may be sent now, in order (the front item may
    /// be split to fit).
    pub fn add_credits(&mut self, bytes: u64) -> Vec<Bytes> {
        self.credits += bytes;
        let mut out = Vec::new();
        while self.credits > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let len = front.len() as u64;
            if len <= self.credits {
                self.credits -= len;
                if let Some(item) = self.queue.pop_front() {
                    out.push(item);
                }
            } else {
                // credits < len, a usize.
                let part = front.split_to(self.credits as usize);
                self.credits = 0;
                out.push(part);
            }
        }
        out
    }

    /// Forgets every queued item (a hint drops what was waiting, as Pushpin does).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn sends_at_once_with_credit_and_queues_without() {
        let mut f = Outflow::new(4);
        assert_eq!(f.offer(&b("abc")), Offer::SendNow);
        assert_eq!(f.credits(), 1);
        assert_eq!(f.offer(&b("def")), Offer::Queued);
        // Order: even a small item waits behind the queue.
        assert_eq!(f.offer(&b("g")), Offer::Queued);
        assert_eq!(f.add_credits(1), vec![b("de")]);
        assert_eq!(f.add_credits(10), vec![b("f"), b("g")]);
        assert_eq!(f.credits(), 8);
        assert!(f.is_idle());
    }

    #[test]
    fn queue_is_bounded_and_overflow_is_reported() {
        let mut f = Outflow::new(0);
        for _ in 0..MAX_QUEUED_ITEMS {
            assert_eq!(f.offer(&b("x")), Offer::Queued);
        }
        assert_eq!(f.offer(&b("x")), Offer::Dropped);
        assert_eq!(f.add_credits(1000).len(), MAX_QUEUED_ITEMS);
    }

    #[test]
    fn head_body_is_split_to_credits() {
        let mut f = Outflow::new(3);
        assert_eq!(f.split_first(b("hello")), b("hel"));
        assert!(!f.take_for_keep_alive(1), "queued data first");
        assert_eq!(f.add_credits(2), vec![b("lo")]);
        assert_eq!(f.add_credits(1), Vec::<Bytes>::new());
        assert!(f.take_for_keep_alive(1));
    }

    #[test]
    fn shared_payload_is_not_copied() {
        let mut f = Outflow::new(0);
        let data = Bytes::from(vec![7u8; 100]);
        f.offer(&data);
        let out = f.add_credits(100);
        assert_eq!(out[0].as_ptr(), data.as_ptr());
    }
}
