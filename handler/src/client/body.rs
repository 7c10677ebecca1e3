//! The request body handed to hyper: it reads the stream's [`Inbox`] and grants the connmgr
//! credit for exactly the bytes hyper takes, so request bodies stream through with at most the
//! initial window (`INITIAL_REQUEST_CREDITS`) buffered in the handler.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

use crate::session::{BodyPoll, Inbox, StreamOut};

/// The stream was torn down while hyper was still reading the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("client stream closed while sending the request body")]
pub struct BodyAborted;

/// A request body fed from the connmgr's `Body` messages.
#[derive(Debug)]
pub struct RequestBody {
    inbox: Arc<Inbox>,
    out: StreamOut,
    length: Option<u64>,
    ended: bool,
    finished: Arc<AtomicBool>,
    /// A body given by the handler instead of the client's (JSON-P `_body`).
    fixed: Option<Bytes>,
    is_fixed: bool,
}

impl RequestBody {
    /// A body for the stream behind `inbox`; `length` is the client's `Content-Length`, if any.
    pub fn new(inbox: Arc<Inbox>, out: StreamOut, length: Option<u64>) -> Self {
        Self {
            inbox,
            out,
            length,
            ended: false,
            finished: Arc::new(AtomicBool::new(length == Some(0))),
            fixed: None,
            is_fixed: false,
        }
    }

    /// A body of `data` instead of the client's (which is left unread).
    pub fn fixed(inbox: Arc<Inbox>, out: StreamOut, data: Bytes) -> Self {
        let mut body = Self::new(inbox, out, Some(data.len() as u64));
        body.fixed = Some(data).filter(|d| !d.is_empty());
        body.is_fixed = true;
        body
    }

    /// Becomes true once hyper has read the whole body; a connection whose request body was
    /// not fully sent cannot be reused.
    pub fn finished_flag(&self) -> Arc<AtomicBool> {
        self.finished.clone()
    }

    fn grant(&self, len: usize) {
        if len > 0 {
            // Chunks are bounded by the 64 KiB credit window, far below u32::MAX.
            self.out.credit(u32::try_from(len).unwrap_or(u32::MAX));
        }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.is_fixed {
            self.ended = true;
            self.finished.store(true, Ordering::Release);
            return Poll::Ready(self.fixed.take().map(|d| Ok(Frame::data(d))));
        }
        let (poll, grant) = self.inbox.poll_body(cx.waker());
        match poll {
            BodyPoll::Data(chunk) => {
                if grant {
                    self.grant(chunk.len());
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            BodyPoll::End => {
                self.ended = true;
                self.finished.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            BodyPoll::Pending => Poll::Pending,
            BodyPoll::Closed => Poll::Ready(Some(Err(BodyAborted))),
        }
    }

    fn is_end_stream(&self) -> bool {
        let end =
            self.ended || self.length == Some(0) || (!self.is_fixed && self.inbox.body_exhausted());
        if end {
            // hyper does not poll a body that reports its end, so record completion here too.
            self.finished.store(true, Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// Outcome of [`read_limited`].
#[derive(Debug, PartialEq, Eq)]
pub enum LimitedBody {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// The body is longer than the limit (reading stopped there).
    TooLarge,
}

/// Reads a whole request body of at most `limit` bytes from the inbox (for handler-generated
/// responses such as the test target), granting credits as it goes.
pub async fn read_limited(
    inbox: &Inbox,
    out: &StreamOut,
    limit: usize,
) -> Result<LimitedBody, BodyAborted> {
    let mut buf = BytesMut::new();
    loop {
        let (poll, grant) = poll_fn(|cx| match inbox.poll_body(cx.waker()) {
            (BodyPoll::Pending, _) => Poll::Pending,
            other => Poll::Ready(other),
        })
        .await;
        match poll {
            BodyPoll::Data(chunk) => {
                if buf.len() + chunk.len() > limit {
                    return Ok(LimitedBody::TooLarge);
                }
                if grant {
                    out.credit(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
                }
                buf.extend_from_slice(&chunk);
            }
            BodyPoll::End => return Ok(LimitedBody::Complete(buf.freeze())),
            BodyPoll::Closed => return Err(BodyAborted),
            // Filtered out by the poll_fn above.
            BodyPoll::Pending => {}
        }
    }
}
