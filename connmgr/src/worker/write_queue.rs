//! A connection's queue of bytes waiting for the socket.
//!
//! Response bytes arrive from the handler as refcounted [`Bytes`]; the queue keeps them as they
//! are (no copy into a connection buffer) together with the framing around them (head, chunk
//! headers, CRLFs), and writes as many segments as the socket takes with one `writev`. Chunk
//! headers live inline in the segment, so framing a chunk allocates nothing.
//!
//! The deque itself comes from the worker's [`DequePool`] when the first segment is queued and
//! goes back as soon as the queue drains: an idle connection holds no write buffer.
//!
//! A published payload fanned out to many connections is one allocation: each connection's
//! queue holds a [`Bytes`] handle to it (a refcount), with its own framing segments around it.
//!
//! Body bytes are tagged so the connection can return exactly the written amount to the handler
//! as credit.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

use crate::http1::response::CHUNK_HEADER_MAX;
use crate::pool::DequePool;

/// Most segments handed to one `writev` call.
const MAX_IOVECS: usize = 32;

/// One piece of queued output.
#[derive(Debug)]
pub enum Segment {
    /// Response body bytes: written bytes count as credit for the handler.
    Body(Bytes),
    /// Anything else: heads, framing, `100 Continue`, error responses.
    Framing(Bytes),
    /// Short framing stored inline (chunk headers).
    Inline {
        /// The bytes.
        buf: [u8; CHUNK_HEADER_MAX],
        /// First unwritten byte.
        start: u8,
        /// End of the bytes.
        end: u8,
    },
}

impl Segment {
    /// An inline segment holding `bytes` (at most [`CHUNK_HEADER_MAX`] of them are kept).
    pub fn inline(bytes: &[u8]) -> Self {
        let mut buf = [0u8; CHUNK_HEADER_MAX];
        let n = bytes.len().min(CHUNK_HEADER_MAX);
        buf[..n].copy_from_slice(&bytes[..n]);
        Self::Inline {
            buf,
            start: 0,
            end: n as u8,
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Body(b) | Self::Framing(b) => b,
            Self::Inline { buf, start, end } => &buf[usize::from(*start)..usize::from(*end)],
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Marks `n` (at most [`Self::len`]) bytes as written.
    fn advance(&mut self, n: usize) {
        match self {
            Self::Body(b) | Self::Framing(b) => b.advance(n),
            // n <= end - start <= CHUNK_HEADER_MAX, which fits a u8.
            Self::Inline { start, .. } => *start += n as u8,
        }
    }
}

/// What one [`WriteQueue::write_to`] call achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes written in total.
    pub bytes: usize,
    /// Of which response body bytes.
    pub body: usize,
    /// The socket stopped accepting (`WouldBlock`) with bytes still queued.
    pub blocked: bool,
}

/// A connection's pending output.
#[derive(Debug, Default)]
pub struct WriteQueue {
    segments: Option<VecDeque<Segment>>,
    queued: usize,
}

impl WriteQueue {
    /// True if nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queued
    }

    /// The queued segments, front first.
    #[cfg(test)]
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().flatten()
    }

    /// True if the queue holds a deque from the pool (an idle connection must not).
    #[cfg(test)]
    pub fn holds_buffer(&self) -> bool {
        self.segments.is_some()
    }

    /// Appends a segment (empty ones are skipped).
    pub fn push(&mut self, segment: Segment, pool: &mut DequePool<Segment>) {
        let len = segment.len();
        if len == 0 {
            return;
        }
        self.queued += len;
        self.segments
            .get_or_insert_with(|| pool.take())
            .push_back(segment);
    }

    /// Writes as much as `w` accepts, with vectored writes; returns the deque to `pool` once
    /// drained. `Interrupted` is retried; other errors are returned.
    pub fn write_to<W: Write>(
        &mut self,
        w: &mut W,
        pool: &mut DequePool<Segment>,
    ) -> io::Result<Written> {
        let mut result = Written::default();
        while let Some(segments) = self.segments.as_mut() {
            if segments.is_empty() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, segment) in slices.iter_mut().zip(segments.iter()) {
                *slot = IoSlice::new(segment.as_slice());
                count += 1;
            }
            let n = match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    result.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            result.bytes += n;
            self.queued -= n.min(self.queued);
            let mut left = n;
            while left > 0 {
                let Some(front) = segments.front_mut() else {
                    break;
                };
                let take = left.min(front.len());
                if matches!(front, Segment::Body(_)) {
                    result.body += take;
                }
                front.advance(take);
                left -= take;
                if front.len() == 0 {
                    segments.pop_front();
                }
            }
        }
        if self.queued == 0 {
            self.release(pool);
        }
        Ok(result)
    }

    /// Drops everything queued and returns the deque to `pool`.
    pub fn release(&mut self, pool: &mut DequePool<Segment>) {
        self.queued = 0;
        if let Some(segments) = self.segments.take() {
            pool.give(segments);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `limit` bytes per call and then blocks after `calls` calls.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let mut n = 0;
            for b in bufs {
                let take = (self.limit - n).min(b.len());
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn queue(pool: &mut DequePool<Segment>) -> WriteQueue {
        let mut q = WriteQueue::default();
        q.push(Segment::Framing(Bytes::from_static(b"HEAD|")), pool);
        q.push(Segment::inline(b"3\r\n"), pool);
        q.push(Segment::Body(Bytes::from_static(b"abc")), pool);
        q.push(Segment::Framing(Bytes::from_static(b"")), pool);
        q.push(Segment::Framing(Bytes::from_static(b"\r\n")), pool);
        q
    }

    #[test]
    fn writes_everything_and_counts_body_bytes() {
        let mut pool = DequePool::new(4);
        let mut q = queue(&mut pool);
        assert_eq!(q.len(), 13);
        let mut w = Trickle {
            out: Vec::new(),
            limit: 1000,
            calls_left: 10,
        };
        let r = q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(
            r,
            Written {
                bytes: 13,
                body: 3,
                blocked: false
            }
        );
        assert_eq!(w.out, b"HEAD|3\r\nabc\r\n");
        assert!(q.is_empty());
        assert!(q.segments.is_none(), "drained queue gives its deque back");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        for limit in 1..14 {
            let mut pool = DequePool::new(4);
            let mut q = queue(&mut pool);
            let mut w = Trickle {
                out: Vec::new(),
                limit,
                calls_left: 2,
            };
            let first = q.write_to(&mut w, &mut pool).unwrap();
            assert_eq!(first.blocked, !q.is_empty());
            w.calls_left = 100;
            let second = q.write_to(&mut w, &mut pool).unwrap();
            assert_eq!(w.out, b"HEAD|3\r\nabc\r\n", "limit {limit}");
            assert_eq!(first.body + second.body, 3);
            assert_eq!(first.bytes + second.bytes, 13);
        }
    }

    #[test]
    fn errors_are_returned() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut pool = DequePool::new(4);
        let mut q = queue(&mut pool);
        assert_eq!(
            q.write_to(&mut Broken, &mut pool).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        q.release(&mut pool);
        assert!(q.is_empty());
    }
}
