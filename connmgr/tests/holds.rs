//! Long-held streams (GRIP response holds and stream holds): only the inactivity timeout closes
//! them, and writes to the client count as activity.

mod common;

use std::time::{Duration, Instant};

use common::{expect_bytes, expect_eof, send, Connmgr, FakeHandler};
use holdfast_proto::internal::{CloseReason, ToConnmgr, ToHandler};

/// Heartbeats the connection manager for `dur`; returns what it sent meanwhile (heartbeats
/// and credits left out).
fn heartbeat_for(handler: &mut FakeHandler, dur: Duration) -> Vec<ToHandler> {
    let end = Instant::now() + dur;
    let mut seen = Vec::new();
    while Instant::now() < end {
        handler.send(vec![ToConnmgr::Heartbeat]);
        let step = (Instant::now() + Duration::from_millis(500)).min(end);
        while let Some(msg) = handler.next_msg(step) {
            if !matches!(msg, ToHandler::Heartbeat | ToHandler::Credit(_)) {
                seen.push(msg);
            }
        }
    }
    seen
}

#[test]
fn writes_keep_a_stream_hold_alive_until_it_goes_quiet() {
    let mut handler = FakeHandler::bind("holdwrites");
    let cm = Connmgr::start(&mut handler, &["--stream-timeout=2"]);
    let mut client = cm.connect();
    send(&mut client, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let id = handler.request().id;
    handler.respond(id, 200, "OK", &[], "", true);
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    // Twice the timeout, with a publish every 700 ms and nothing from the client.
    let started = Instant::now();
    let mut last_write = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(700));
        handler.fanout(&[id], b"tick\n");
        expect_bytes(&mut client, "5\r\ntick\n\r\n");
        last_write = Instant::now();
    }
    // Then silence: the inactivity timeout closes it.
    let mut closed = None;
    let deadline = Instant::now() + Duration::from_secs(6);
    while closed.is_none() {
        assert!(Instant::now() < deadline, "never timed out");
        closed = heartbeat_for(&mut handler, Duration::from_millis(200))
            .into_iter()
            .find_map(|m| match m {
                ToHandler::Closed(c) => Some(c),
                _ => None,
            });
    }
    let quiet = last_write.elapsed();
    assert_eq!(
        closed.map(|c| (c.id, c.reason)),
        Some((id, CloseReason::Timeout))
    );
    assert!(
        quiet >= Duration::from_millis(1800),
        "closed {quiet:?} after the last write"
    );
    expect_eof(&mut client);
}

#[test]
fn holds_outlast_every_timer_but_the_inactivity_timeout() {
    let mut handler = FakeHandler::bind("holdlong");
    let cm = Connmgr::start(&mut handler, &[]);
    // A response hold (long-poll): no response yet.
    let mut polling = cm.connect();
    send(&mut polling, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    let poll_id = handler.request().id;
    // A stream hold: head sent, no body yet.
    let mut streaming = cm.connect();
    send(&mut streaming, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let stream_id = handler.request().id;
    handler.respond(stream_id, 200, "OK", &[], "", true);
    expect_bytes(
        &mut streaming,
        "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
    );

    // Longer than the handler liveness timeout (10 s), with a live handler.
    let seen = heartbeat_for(&mut handler, Duration::from_secs(12));
    assert!(seen.is_empty(), "{seen:?}");

    handler.fanout(&[stream_id], b"published\n");
    expect_bytes(&mut streaming, "a\r\npublished\n\r\n");
    handler.respond(poll_id, 200, "OK", &[], "published\n", false);
    expect_bytes(
        &mut polling,
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npublished\n",
    );
}
