//! Per-worker free lists for connection buffers.
//!
//! An idle connection owns no buffers (DESIGN.md, "Performance rules"): a connection takes a read
//! buffer when its socket has data and gives it back once everything in it has been consumed, and
//! likewise for its write queue. With tens of thousands of mostly idle held connections, this is
//! what keeps memory proportional to the connections that are actually moving bytes. The free
//! lists keep a bounded number of spares so that busy connections do not hit the allocator on
//! every request. Nothing here is shared between workers.

use std::collections::VecDeque;

/// Spare buffers a pool keeps at most; more are freed.
pub const DEFAULT_MAX_SPARE: usize = 256;

/// Fixed-size byte buffers (the connection read buffers).
#[derive(Debug)]
pub struct BufferPool {
    size: usize,
    spare: Vec<Box<[u8]>>,
    max_spare: usize,
    in_use: usize,
}

impl BufferPool {
    /// A pool of buffers of `size` bytes keeping at most `max_spare` unused ones.
    pub fn new(size: usize, max_spare: usize) -> Self {
        Self {
            size,
            spare: Vec::new(),
            max_spare,
            in_use: 0,
        }
    }

    /// Size of every buffer.
    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// Buffers currently handed out.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Spare buffers held.
    pub fn spare(&self) -> usize {
        self.spare.len()
    }

    /// A buffer of [`Self::buffer_size`] bytes (contents unspecified).
    pub fn take(&mut self) -> Box<[u8]> {
        self.in_use += 1;
        self.spare
            .pop()
            .unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice())
    }

    /// Returns a buffer taken from this pool.
    pub fn give(&mut self, buf: Box<[u8]>) {
        self.in_use = self.in_use.saturating_sub(1);
        if buf.len() == self.size && self.spare.len() < self.max_spare {
            self.spare.push(buf);
        }
    }
}

/// Empty deques with their capacity kept (the connection write queues).
#[derive(Debug)]
pub struct DequePool<T> {
    spare: Vec<VecDeque<T>>,
    max_spare: usize,
}

impl<T> DequePool<T> {
    /// A pool keeping at most `max_spare` unused deques.
    pub fn new(max_spare: usize) -> Self {
        Self {
            spare: Vec::new(),
            max_spare,
        }
    }

    /// An empty deque.
    pub fn take(&mut self) -> VecDeque<T> {
        self.spare.pop().unwrap_or_default()
    }

    /// Returns a deque; its elements are dropped, its capacity kept (up to a bound, so one huge
    /// burst does not pin memory forever).
    pub fn give(&mut self, mut deque: VecDeque<T>) {
        deque.clear();
        if self.spare.len() < self.max_spare && deque.capacity() <= 64 {
            self.spare.push(deque);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_bounded() {
        let mut pool = BufferPool::new(16, 2);
        let a = pool.take();
        let b = pool.take();
        let c = pool.take();
        assert_eq!(a.len(), 16);
        assert_eq!(pool.in_use(), 3);
        pool.give(a);
        pool.give(b);
        pool.give(c);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.spare(), 2);
        let _ = pool.take();
        assert_eq!(pool.spare(), 1);
        // A foreign-sized buffer is not kept.
        pool.give(vec![0u8; 3].into_boxed_slice());
        assert_eq!(pool.spare(), 1);
    }

    #[test]
    fn deques_come_back_empty() {
        let mut pool: DequePool<u32> = DequePool::new(1);
        let mut d = pool.take();
        d.push_back(1);
        pool.give(d);
        let d = pool.take();
        assert!(d.is_empty());
        assert!(d.capacity() >= 1);
    }
}
