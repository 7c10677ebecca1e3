//! A stream's inbox: where the connmgr's request body and response credits wait for the
//! session task. Bounded by the protocol itself: the connmgr may only send as much request body
//! as the handler granted.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use bytes::Bytes;
use holdfast_proto::internal::INITIAL_REQUEST_CREDITS;
use tokio::sync::Notify;

/// Why the inbox refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The connmgr sent more request body than it held credits for.
    #[error("request body exceeds granted credits ({received} > {window})")]
    CreditsExceeded {
        /// Body bytes received so far.
        received: u64,
        /// Bytes the connmgr was allowed to send.
        window: u64,
    },
    /// Body arrived after the body had ended.
    #[error("request body after its end")]
    BodyAfterEnd,
}

/// Where the connmgr's messages for one stream wait for the session task.
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<InboxState>,
    /// Wakes the session task (credits arrived).
    notify: Notify,
}

#[derive(Debug, Default)]
struct InboxState {
    body: VecDeque<Bytes>,
    body_ended: bool,
    /// Request body bytes received (head included).
    received: u64,
    /// Request body bytes the connmgr may send in total (initial window plus grants).
    window: u64,
    /// Response body bytes the session may still send.
    credits: u64,
    /// The response credits the stream started with (the connmgr's whole window): a WebSocket
    /// message larger than this costs exactly this much (see [`Inbox::try_take_message`]).
    resp_window: u64,
    /// Set when the stream is being torn down; the body reader then fails.
    closed: bool,
    /// The request body reader waiting for data.
    body_waker: Option<Waker>,
    /// Request body chunks handed out so far (shared `Bytes`, not copies), kept so a GRIP
    /// hold can re-request the origin later; `None` once more than [`CAPTURE_LIMIT`] bytes
    /// went by.
    captured: Option<Vec<Bytes>>,
    captured_len: usize,
}

impl InboxState {
    /// See [`Inbox::message_cost`]. Without a window (an inbox that started with no credits,
    /// e.g. a resumed hold) a message costs its length.
    fn message_cost(&self, len: usize) -> u64 {
        match self.resp_window {
            0 => len as u64,
            window => (len as u64).min(window),
        }
    }
}

/// Request body bytes remembered for GRIP retries (Pushpin's limit: a larger request body
/// cannot be held, §4.1).
pub const CAPTURE_LIMIT: usize = 100_000;

/// A chunk taken from the inbox's request body.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyPoll {
    /// Bytes; more may follow.
    Data(Bytes),
    /// The body is complete.
    End,
    /// Nothing yet; the waker will be called.
    Pending,
    /// The stream is gone.
    Closed,
}

impl Inbox {
    /// An inbox for a new request: its first body bytes and its initial response credits.
    pub fn new(head_body: Bytes, more: bool, credits: u32) -> Self {
        let mut state = InboxState {
            body_ended: !more,
            received: head_body.len() as u64,
            window: u64::from(INITIAL_REQUEST_CREDITS),
            credits: u64::from(credits),
            resp_window: u64::from(credits),
            captured: Some(Vec::new()),
            ..InboxState::default()
        };
        if !head_body.is_empty() {
            state.body.push_back(head_body);
        }
        Self {
            state: Mutex::new(state),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic while holding this short lock cannot leave the state half-updated in a way
        // that matters more than losing the stream, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends request body from the connmgr.
    pub fn push_body(&self, data: Bytes, more: bool) -> Result<(), InboxError> {
        let waker = {
            let mut st = self.lock();
            if st.body_ended {
                return Err(InboxError::BodyAfterEnd);
            }
            st.received += data.len() as u64;
            if st.received > st.window {
                return Err(InboxError::CreditsExceeded {
                    received: st.received,
                    window: st.window,
                });
            }
            if !data.is_empty() {
                st.body.push_back(data);
            }
            st.body_ended = !more;
            st.body_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Takes the next request body chunk, registering `waker` if there is none yet. Returns the
    /// chunk plus whether credit should be granted for it (not once the body has ended: the
    /// connmgr has nothing more to send).
    pub fn poll_body(&self, waker: &Waker) -> (BodyPoll, bool) {
        let mut st = self.lock();
        if st.closed {
            return (BodyPoll::Closed, false);
        }
        if let Some(chunk) = st.body.pop_front() {
            st.captured_len += chunk.len();
            if st.captured_len > CAPTURE_LIMIT {
                st.captured = None;
            } else if let Some(captured) = &mut st.captured {
                captured.push(chunk.clone());
            }
            let grant = !st.body_ended;
            if grant {
                st.window += chunk.len() as u64;
            }
            return (BodyPoll::Data(chunk), grant);
        }
        if st.body_ended {
            return (BodyPoll::End, false);
        }
        st.body_waker = Some(waker.clone());
        (BodyPoll::Pending, false)
    }

    /// The request body read so far, if it fit in [`CAPTURE_LIMIT`]; `None` if it was larger.
    pub fn captured_body(&self) -> Option<Bytes> {
        let st = self.lock();
        if !st.body_ended {
            return None;
        }
        let chunks = st.captured.as_ref()?;
        let chunks: Vec<Bytes> = chunks
            .iter()
            .cloned()
            .chain(st.body.iter().cloned())
            .collect();
        if chunks.iter().map(Bytes::len).sum::<usize>() > CAPTURE_LIMIT {
            return None;
        }
        Some(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks[0].clone(),
            _ => Bytes::from(chunks.concat()),
        })
    }

    /// True when the whole request body is in the inbox or consumed.
    pub fn body_complete(&self) -> bool {
        self.lock().body_ended
    }

    /// True when the body has ended and every chunk has been taken.
    pub fn body_exhausted(&self) -> bool {
        let st = self.lock();
        st.body_ended && st.body.is_empty()
    }

    /// Adds response credits from the connmgr.
    pub fn add_credits(&self, bytes: u32) {
        self.add_credits_u64(u64::from(bytes));
    }

    /// Adds response credits carried over from a held session.
    pub fn add_credits_u64(&self, bytes: u64) {
        self.lock().credits += bytes;
        self.notify.notify_one();
    }

    /// Takes every response credit left (the stream is being handed to the GRIP hub).
    pub fn take_all_credits(&self) -> u64 {
        std::mem::take(&mut self.lock().credits)
    }

    /// Waits until at least one response credit is available and takes up to `max`.
    pub async fn take_credits(&self, max: usize) -> usize {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if st.credits > 0 {
                    let n = st.credits.min(max as u64);
                    st.credits -= n;
                    // n <= max, which is a usize.
                    return n as usize;
                }
            }
            notified.await;
        }
    }

    /// Takes up to `max` credits without waiting.
    pub fn try_take_credits(&self, max: usize) -> usize {
        let mut st = self.lock();
        let n = st.credits.min(max as u64);
        st.credits -= n;
        n as usize
    }

    /// The response credits the stream started with (a WebSocket's whole window).
    pub fn response_window(&self) -> u64 {
        self.lock().resp_window
    }

    /// What a WebSocket message of `len` payload bytes costs in credits: its length, or the
    /// whole window for a message larger than the window (the rule of
    /// [`holdfast_proto::internal::WsMessage`]).
    pub fn message_cost(&self, len: usize) -> u64 {
        self.lock().message_cost(len)
    }

    /// Takes the credits for a WebSocket message of `len` bytes if they are all there (all or
    /// nothing): `len` credits, or for a message larger than the window the whole window, which
    /// the inbox only holds when nothing is outstanding.
    pub fn try_take_message(&self, len: usize) -> bool {
        let mut st = self.lock();
        let cost = st.message_cost(len);
        if st.credits >= cost {
            st.credits -= cost;
            true
        } else {
            false
        }
    }

    /// Marks the stream as torn down and wakes the body reader.
    pub fn close(&self) {
        let waker = {
            let mut st = self.lock();
            st.closed = true;
            st.body_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.notify.notify_one();
    }
}
