//! Where published `ws-message` items meet one WebSocket connection.
//!
//! A WebSocket connection has two writers: its own task (messages from the origin, keep-alives,
//! delayed sends) and the hub (publishes). Both spend the same response credits, taken from
//! the stream's [`Inbox`]. The hub, under its lock, takes the fast path when it can: nothing is
//! queued, the task is not in the middle of sending a queued entry, and the credits for the
//! whole message are there (for a message larger than the response window: the whole window,
//! i.e. nothing outstanding, see [`Inbox::try_take_message`]); the message then joins the
//! worker's one `WsFanout`. Otherwise the
//! entry waits here, in order, and the task sends it when credits return. Because the fast
//! path is only taken when the queue is empty and no queued entry is being sent, publishes
//! reach the client in publish order.
//!
//! The queue is bounded by [`MAX_QUEUED`] messages; beyond that a message is dropped and the
//! hub counts it. Close and refresh entries are never dropped (at most one of each waits).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use holdfast_proto::internal::WsKind;
use tokio::sync::Notify;

use crate::session::Inbox;

/// Published messages one connection may have waiting for credits (Pushpin's per-connection
/// queue is of the same order).
pub const MAX_QUEUED: usize = 100;

/// An entry waiting for the connection's task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A published message.
    Message(WsKind, Bytes),
    /// `action: close`: a close frame (code, reason).
    Close(Option<u16>, String),
    /// `action: refresh`: a WebSocket-over-HTTP request now.
    Refresh,
}

/// What [`WsSink::offer`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkOffer {
    /// Credits taken: the caller sends it (in a `WsFanout`).
    SendNow,
    /// Queued for the task.
    Queued,
    /// The queue is full: dropped.
    Dropped,
}

#[derive(Debug)]
struct SinkState {
    queue: VecDeque<Outgoing>,
    /// The task took an entry and has not handed it to the outbox yet.
    busy: bool,
    /// Last time a message went to the client (idle keep-alives).
    last_output: Instant,
    /// No more entries are accepted (the connection is ending).
    closed: bool,
}

/// One WebSocket connection's publish queue (see the module docs).
#[derive(Debug)]
pub struct WsSink {
    credits: Arc<Inbox>,
    state: Mutex<SinkState>,
    notify: Notify,
}

impl WsSink {
    /// A sink spending the credits of `credits` (the stream's inbox).
    pub fn new(credits: Arc<Inbox>, now: Instant) -> Self {
        Self {
            credits,
            state: Mutex::new(SinkState {
                queue: VecDeque::new(),
                busy: false,
                last_output: now,
                closed: false,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub offers a published message.
    pub fn offer(&self, kind: WsKind, data: &Bytes, now: Instant) -> SinkOffer {
        let mut st = self.lock();
        if st.closed {
            return SinkOffer::Dropped;
        }
        if st.queue.is_empty() && !st.busy && self.credits.try_take_message(data.len()) {
            st.last_output = now;
            return SinkOffer::SendNow;
        }
        let messages = st
            .queue
            .iter()
            .filter(|o| matches!(o, Outgoing::Message(..)))
            .count();
        if messages >= MAX_QUEUED {
            return SinkOffer::Dropped;
        }
        st.queue.push_back(Outgoing::Message(kind, data.clone()));
        drop(st);
        self.notify.notify_one();
        SinkOffer::Queued
    }

    /// Queues a close or a refresh (never dropped; a second one of a kind is redundant).
    pub fn push_control(&self, entry: Outgoing) {
        let mut st = self.lock();
        if st.closed || st.queue.contains(&entry) {
            return;
        }
        if matches!(entry, Outgoing::Close(..))
            && st.queue.iter().any(|o| matches!(o, Outgoing::Close(..)))
        {
            return;
        }
        st.queue.push_back(entry);
        drop(st);
        self.notify.notify_one();
    }

    /// The task takes the next entry; it must call [`WsSink::sent`] once the entry is handed
    /// to the outbox (until then the hub queues behind it).
    pub fn pop(&self) -> Option<Outgoing> {
        let mut st = self.lock();
        let entry = st.queue.pop_front()?;
        st.busy = true;
        Some(entry)
    }

    /// The entry taken by [`WsSink::pop`] went out (or was given up).
    pub fn sent(&self, now: Instant) {
        let mut st = self.lock();
        st.busy = false;
        st.last_output = now;
    }

    /// The task sent a message of its own (origin output, keep-alive): idle timers restart.
    pub fn touch(&self, now: Instant) {
        self.lock().last_output = now;
    }

    /// When a message last went to the client.
    pub fn last_output(&self) -> Instant {
        self.lock().last_output
    }

    /// Entries waiting.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// The connection is ending: refuse further entries and forget the queued ones.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
    }

    /// Resolves once something was queued since the last call (a wake-up that came while
    /// nobody waited is kept).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(credits: u32) -> WsSink {
        WsSink::new(
            Arc::new(Inbox::new(Bytes::new(), false, credits)),
            Instant::now(),
        )
    }

    const MSG: Bytes = Bytes::from_static(b"hello");

    #[test]
    fn fast_path_needs_credits_for_the_whole_message() {
        let s = sink(7);
        let now = Instant::now();
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::SendNow);
        // 2 credits left: the next one waits, and so does everything behind it.
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
        s.credits.add_credits(100);
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
        assert_eq!(s.queued(), 2);
    }

    #[test]
    fn a_message_larger_than_the_window_takes_the_fast_path_only_with_the_whole_window() {
        let s = sink(100);
        let now = Instant::now();
        let big = Bytes::from(vec![b'z'; 250]);
        assert_eq!(s.credits.message_cost(big.len()), 100);
        assert_eq!(s.credits.message_cost(MSG.len()), 5);
        // Some of the window is outstanding: it queues, and so does what follows it.
        assert!(s.credits.try_take_message(MSG.len()));
        assert_eq!(s.offer(WsKind::Text, &big, now), SinkOffer::Queued);
        s.credits.add_credits(5);
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
        assert_eq!(s.pop(), Some(Outgoing::Message(WsKind::Text, big.clone())));
        assert!(
            s.credits.try_take_message(big.len()),
            "the whole window is back"
        );
        assert_eq!(
            s.credits.try_take_credits(usize::MAX),
            0,
            "and all of it was taken"
        );
        s.sent(now);
        assert_eq!(s.pop(), Some(Outgoing::Message(WsKind::Text, MSG)));
        s.sent(now);

        // Nothing outstanding and nothing queued: it goes at once, costing the whole window.
        s.credits.add_credits(100);
        assert_eq!(s.offer(WsKind::Binary, &big, now), SinkOffer::SendNow);
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
    }

    #[test]
    fn a_popped_entry_blocks_the_fast_path_until_sent() {
        let s = sink(0);
        let now = Instant::now();
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
        s.credits.add_credits(100);
        assert_eq!(s.pop(), Some(Outgoing::Message(WsKind::Text, MSG)));
        assert_eq!(s.offer(WsKind::Binary, &MSG, now), SinkOffer::Queued);
        assert_eq!(s.pop(), Some(Outgoing::Message(WsKind::Binary, MSG)));
        s.sent(now);
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::SendNow);
    }

    #[test]
    fn queue_is_bounded_but_close_is_kept() {
        let s = sink(0);
        let now = Instant::now();
        for _ in 0..MAX_QUEUED {
            assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Queued);
        }
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Dropped);
        s.push_control(Outgoing::Close(Some(1000), String::new()));
        s.push_control(Outgoing::Close(Some(1001), String::new()));
        s.push_control(Outgoing::Refresh);
        s.push_control(Outgoing::Refresh);
        assert_eq!(s.queued(), MAX_QUEUED + 2);
        s.close();
        assert_eq!(s.offer(WsKind::Text, &MSG, now), SinkOffer::Dropped);
        assert_eq!(s.pop(), None);
    }
}
