//! The WebSocket session without a socket: client bytes in, handler messages and queued frames
//! out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{StreamId, ToHandler, WsKind, INITIAL_REQUEST_CREDITS};

use super::*;
use crate::pool::DequePool;
use crate::ws::extension::DeflateParams;
use crate::ws::handshake::AcceptKey;

const MASK: [u8; 4] = [9, 8, 7, 6];

fn cx() -> Ctx {
    Ctx::new(Instant::now(), 4096, 1000, Duration::from_secs(60))
}

fn session(cx: &Ctx, deflate: bool) -> WsSession {
    let accepted = Accepted {
        accept: AcceptKey::for_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        deflate: deflate.then_some(DeflateParams {
            client_no_context_takeover: false,
            server_max_window_bits: None,
        }),
    };
    WsSession::new(StreamId::new(1, 1), &accepted, 1000, 0, cx)
}

fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else if payload.len() <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Everything queued, as bytes.
fn drain(wq: &mut WriteQueue) -> Vec<u8> {
    let mut out = Vec::new();
    wq.write_to(&mut out, &mut DequePool::new(1)).unwrap();
    out
}

fn messages(cx: &mut Ctx) -> Vec<(WsKind, Vec<u8>)> {
    cx.take_outbox()
        .into_iter()
        .filter_map(|m| match m {
            ToHandler::WsMessage(m) => Some((m.kind, m.data.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_fed_one_byte_at_a_time() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    let mut wire = client_frame(0x01, b"ab");
    wire.extend(client_frame(0x80, b"cd"));
    let mut pending: Vec<u8> = Vec::new();
    for &b in &wire {
        pending.push(b);
        let (used, _, step) = ws.process(&mut pending, &mut wq, &mut cx);
        assert_eq!(step, Step::Continue);
        pending.drain(..used);
    }
    assert!(pending.is_empty());
    assert_eq!(messages(&mut cx), vec![(WsKind::Text, b"abcd".to_vec())]);
}

#[test]
fn pings_are_answered_and_forwarded() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    let mut wire = client_frame(0x89, b"hi");
    let (used, moved, step) = ws.process(&mut wire, &mut wq, &mut cx);
    assert_eq!((used, moved, step), (8, true, Step::Continue));
    assert_eq!(drain(&mut wq), [0x8a, 2, b'h', b'i']);
    assert_eq!(messages(&mut cx), vec![(WsKind::Ping, b"hi".to_vec())]);
}

#[test]
fn messages_wait_for_credits_but_an_oversized_one_passes_when_nothing_is_outstanding() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    let initial = INITIAL_REQUEST_CREDITS as usize;
    ws.in_credits = 10;
    let mut wire = client_frame(0x82, &[1; 20]);
    wire.extend(client_frame(0x82, &[2; 5]));
    let (used, _, _) = ws.process(&mut wire, &mut wq, &mut cx);
    assert_eq!(used, 26, "stops after the message that waits");
    assert!(messages(&mut cx).is_empty());
    ws.add_credit(10);
    let (used2, moved, _) = ws.process(&mut wire[used..], &mut wq, &mut cx);
    assert!(moved);
    assert_eq!(used2, 11);
    assert_eq!(messages(&mut cx), vec![(WsKind::Binary, vec![1; 20])]);
    assert_eq!(ws.in_credits, 0);
    ws.add_credit(5);
    ws.process(&mut [], &mut wq, &mut cx);
    assert_eq!(messages(&mut cx), vec![(WsKind::Binary, vec![2; 5])]);

    // A message larger than the initial window goes once every credit is back; the next
    // one waits until the handler has caught up.
    let mut big = session(&cx, false);
    let mut wire = client_frame(0x82, &vec![3; initial + 100]);
    wire.extend(client_frame(0x82, b"next"));
    let (used, _, step) = big.process(&mut wire, &mut wq, &mut cx);
    assert_eq!((used, step), (wire.len(), Step::Continue));
    assert_eq!(messages(&mut cx).len(), 1);
    assert_eq!(big.in_credits, -100);
    big.add_credit(initial as u32 + 100);
    big.process(&mut [], &mut wq, &mut cx);
    assert_eq!(messages(&mut cx), vec![(WsKind::Binary, b"next".to_vec())]);
}

#[test]
fn close_is_forwarded_and_later_input_discarded() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    let mut wire = client_frame(0x88, &[0x03, 0xe8, b'o', b'k']);
    wire.extend(client_frame(0x81, b"late"));
    let (used, _, step) = ws.process(&mut wire, &mut wq, &mut cx);
    assert_eq!((used, step), (wire.len(), Step::Continue));
    let out = cx.take_outbox();
    assert!(matches!(
        &out[..],
        [ToHandler::WsClose(c)] if c.code == Some(1000) && c.reason == "ok"
    ));
    assert!(ws.grace_deadline().is_some());
    assert!(ws.handler_close(Some(1000), "", &mut wq, &mut cx));
    assert_eq!(drain(&mut wq), [0x88, 2, 0x03, 0xe8]);
}

#[test]
fn the_clients_answer_to_our_close_ends_the_session() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    assert!(!ws.handler_close(None, "", &mut wq, &mut cx));
    assert_eq!(drain(&mut wq), [0x88, 0]);
    let mut wire = client_frame(0x88, &[]);
    let (_, _, step) = ws.process(&mut wire, &mut wq, &mut cx);
    assert_eq!(step, Step::Done);
    // Data from the handler after its own Close is dropped.
    let mut out = OutFrame::new(WsKind::Text, Bytes::from_static(b"x")).unwrap();
    assert_eq!(ws.push_message(&mut out, &mut wq, &mut cx), Ok(false));
}

#[test]
fn protocol_errors_carry_their_close_code() {
    let mut cx = cx();
    let mut wq = WriteQueue::default();
    for (wire, code) in [
        (vec![0x81, 0x01, b'x'], 1002),
        (client_frame(0x81, &[0xff]), 1007),
        (client_frame(0x80, b"x"), 1002),
        (client_frame(0xc1, b"x"), 1002),
    ] {
        let mut ws = session(&cx, false);
        let mut wire = wire;
        let (_, _, step) = ws.process(&mut wire, &mut wq, &mut cx);
        assert!(matches!(step, Step::Fail(c, _) if c == code), "{step:?}");
    }
}

#[test]
fn credits_come_back_per_whole_message_written() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    for data in [&b"12345"[..], b"678"] {
        let mut out = OutFrame::new(WsKind::Binary, Bytes::copy_from_slice(data)).unwrap();
        assert_eq!(ws.push_message(&mut out, &mut wq, &mut cx), Ok(true));
    }
    assert_eq!(ws.out_avail, 992);
    ws.on_written(6);
    assert_eq!(ws.take_credit(), None, "first message not complete");
    ws.on_written(1);
    assert_eq!(ws.take_credit(), Some(5));
    ws.credit_deferred = true;
    ws.on_written(5);
    assert_eq!(ws.take_credit(), None);
    ws.credit_deferred = false;
    assert_eq!(ws.take_credit(), Some(3));
    assert_eq!(ws.out_avail, 1000);
    assert_eq!(drain(&mut wq), b"\x82\x0512345\x82\x03678");
}

#[test]
fn a_message_larger_than_the_window_costs_the_whole_window() {
    let mut cx = cx();
    let mut ws = session(&cx, false);
    let mut wq = WriteQueue::default();
    let big = || OutFrame::new(WsKind::Binary, Bytes::from(vec![7; 2500])).unwrap();
    let small = || OutFrame::new(WsKind::Text, Bytes::from_static(b"x")).unwrap();

    // With credit outstanding it breaks the credits.
    assert_eq!(ws.push_message(&mut small(), &mut wq, &mut cx), Ok(true));
    assert!(ws.push_message(&mut big(), &mut wq, &mut cx).is_err());
    let first = drain(&mut wq);
    ws.on_written(first.len());
    assert_eq!(ws.take_credit(), Some(1));

    // With the whole window held it goes, alone: nothing else fits until it is written.
    assert_eq!(ws.push_message(&mut big(), &mut wq, &mut cx), Ok(true));
    assert_eq!(ws.out_avail, 0);
    assert!(ws.push_message(&mut small(), &mut wq, &mut cx).is_err());
    let wire = drain(&mut wq);
    assert_eq!(&wire[..4], &[0x82, 126, 0x09, 0xc4]);
    assert_eq!(wire.len(), 4 + 2500);
    ws.on_written(wire.len() - 1);
    assert_eq!(ws.take_credit(), None, "credited once wholly written");
    ws.on_written(1);
    assert_eq!(ws.take_credit(), Some(1000), "the window, not the length");
    assert_eq!(ws.out_avail, 1000);
    assert_eq!(ws.push_message(&mut small(), &mut wq, &mut cx), Ok(true));
}

#[test]
fn a_fanout_frame_is_compressed_once_and_shared() {
    let mut cx = cx();
    let text = Bytes::from("aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa".repeat(10));
    let mut out = OutFrame::new(WsKind::Text, text.clone()).unwrap();
    let (plain_header, plain) = out.wire(false, &mut cx);
    assert_eq!(plain_header.as_bytes(), [0x81, 126, 1, 0x86]);
    assert_eq!(plain.as_ptr(), text.as_ptr(), "never copied");
    let (h1, p1) = out.wire(true, &mut cx);
    let (h2, p2) = out.wire(true, &mut cx);
    assert_eq!(h1, h2);
    assert_eq!(p1.as_ptr(), p2.as_ptr(), "compressed once");
    assert_eq!(h1.as_bytes()[0], 0xc1);
    assert!(p1.len() < text.len());

    // Control frames are never compressed and never longer than 125 bytes.
    let mut ping = OutFrame::new(WsKind::Ping, Bytes::from_static(b"p")).unwrap();
    assert_eq!(ping.wire(true, &mut cx).0.as_bytes(), [0x89, 1]);
    assert!(OutFrame::new(WsKind::Pong, Bytes::from(vec![0; 126])).is_err());

    // Duplicate ids in one fanout get the message once.
    let mut ws = session(&cx, true);
    let mut wq = WriteQueue::default();
    assert_eq!(
        ws.push_fanout(&mut out, 7, &mut wq, &mut cx),
        FanoutOutcome::Queued
    );
    assert_eq!(
        ws.push_fanout(&mut out, 7, &mut wq, &mut cx),
        FanoutOutcome::Duplicate
    );
    let wire = drain(&mut wq);
    assert_eq!(&wire[..2], &[0xc1, p1.len() as u8]);
}
