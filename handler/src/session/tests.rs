//! Unit tests for the session table and dispatcher.

use super::*;
use std::task::{Context, Wake, Waker};

use holdfast_proto::internal::INITIAL_REQUEST_CREDITS;

struct Flag(std::sync::atomic::AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn waker() -> (Waker, Arc<Flag>) {
    let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
    (Waker::from(flag.clone()), flag)
}

#[test]
fn body_flows_with_grants_and_end() {
    let inbox = Inbox::new(Bytes::from_static(b"ab"), true, 10);
    let (w, flag) = waker();
    assert_eq!(
        inbox.poll_body(&w),
        (BodyPoll::Data(Bytes::from_static(b"ab")), true)
    );
    assert_eq!(inbox.poll_body(&w), (BodyPoll::Pending, false));
    inbox.push_body(Bytes::from_static(b"cd"), false).unwrap();
    assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        inbox.poll_body(&w),
        (BodyPoll::Data(Bytes::from_static(b"cd")), false),
        "no grant once the body has ended"
    );
    assert_eq!(inbox.poll_body(&w), (BodyPoll::End, false));
    assert_eq!(
        inbox.push_body(Bytes::from_static(b"x"), false),
        Err(InboxError::BodyAfterEnd)
    );
    let _ = Context::from_waker(&w);
}

#[test]
fn body_beyond_window_is_refused() {
    let window = INITIAL_REQUEST_CREDITS as usize;
    let inbox = Inbox::new(Bytes::from(vec![0u8; window - 1]), true, 0);
    inbox.push_body(Bytes::from_static(b"x"), true).unwrap();
    assert!(matches!(
        inbox.push_body(Bytes::from_static(b"y"), true),
        Err(InboxError::CreditsExceeded { .. })
    ));
}

#[test]
fn close_fails_the_reader() {
    let inbox = Inbox::new(Bytes::new(), true, 0);
    let (w, flag) = waker();
    assert_eq!(inbox.poll_body(&w).0, BodyPoll::Pending);
    inbox.close();
    assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(inbox.poll_body(&w).0, BodyPoll::Closed);
}

#[tokio::test]
async fn credits_are_waited_for() {
    let inbox = Arc::new(Inbox::new(Bytes::new(), false, 3));
    assert_eq!(inbox.take_credits(10).await, 3);
    assert_eq!(inbox.try_take_credits(10), 0);
    let waiter = {
        let inbox = inbox.clone();
        tokio::spawn(async move { inbox.take_credits(4).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!waiter.is_finished());
    inbox.add_credits(10);
    assert_eq!(waiter.await.unwrap(), 4);
    assert_eq!(inbox.try_take_credits(100), 6);
}

#[test]
fn table_remove_respects_serial() {
    let mut table = SessionTable::default();
    let key = SessionKey {
        worker: WorkerId::new("w"),
        id: StreamId(1),
    };
    let inbox = Arc::new(Inbox::new(Bytes::new(), false, 0));
    let first = table.insert(key.clone(), inbox.clone());
    assert!(table.remove(&key, Some(first + 1)).is_none());
    assert_eq!(table.len(), 1);
    assert!(table.remove(&key, Some(first)).is_some());
    assert!(table.is_empty());
    table.insert(key.clone(), inbox.clone());
    table.insert(
        SessionKey {
            worker: WorkerId::new("w"),
            id: StreamId(2),
        },
        inbox,
    );
    assert_eq!(table.remove_worker(&WorkerId::new("w")).len(), 2);
    assert!(table.is_empty());
}

/// Issue 7: once a crowd of streams ended, the table holds neither their entries nor the
/// table sized for them, while the worker still has other streams.
#[test]
fn table_empties_and_shrinks_after_a_crowd() {
    let worker = WorkerId::new(b"w".to_vec());
    let key = |id: u64| SessionKey {
        worker: worker.clone(),
        id: StreamId(id),
    };
    let mut table = SessionTable::default();
    table.insert(key(0), Arc::new(Inbox::new(Bytes::new(), false, 0)));
    for id in 1..=2_000 {
        table.insert(key(id), Arc::new(Inbox::new(Bytes::new(), false, 0)));
    }
    assert_eq!(table.len(), 2_001);
    for id in 1..=2_000 {
        assert!(table.remove(&key(id), None).is_some());
    }
    assert_eq!(table.len(), 1);
    let streams = &table.workers[&worker];
    assert_eq!(streams.len(), 1);
    assert!(streams.capacity() < 1_024, "{}", streams.capacity());
    assert!(table.remove(&key(0), None).is_some());
    assert!(table.is_empty() && table.workers.is_empty());
}
