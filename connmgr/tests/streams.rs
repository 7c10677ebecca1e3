//! Stream lifecycle: credits, aborts from either side, handler restarts and silence, limits,
//! timeouts and shutdown.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{expect_bytes, expect_eof, expect_quiet, send, Connmgr, FakeHandler};
use holdfast_proto::internal::{CloseReason, ToHandler, INITIAL_REQUEST_CREDITS, PEER_TIMEOUT_MS};

#[test]
fn request_body_waits_for_credit() {
    let mut handler = FakeHandler::bind("reqcredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    let total = 200_000usize;
    send(
        &mut client,
        &format!("POST /up HTTP/1.1\r\nContent-Length: {total}\r\n\r\n"),
    );
    let body: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).collect();
    let writer = {
        let mut client = client.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || client.write_all(&body).unwrap())
    };
    let req = handler.request();
    let mut received = req.body.to_vec();
    // Without credit the connection manager stops at the initial allowance.
    for msg in handler.collect_for(Duration::from_millis(500)) {
        if let ToHandler::Body(b) = msg {
            received.extend_from_slice(&b.data);
        }
    }
    assert_eq!(received.len(), INITIAL_REQUEST_CREDITS as usize);
    handler.credit(req.id, 100_000);
    let mut more = true;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < INITIAL_REQUEST_CREDITS as usize + 100_000 {
        match handler.next_msg(deadline).expect("body after credit") {
            ToHandler::Body(b) => {
                received.extend_from_slice(&b.data);
                more = b.more;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(received.len(), INITIAL_REQUEST_CREDITS as usize + 100_000);
    assert!(more);
    handler.credit(req.id, 1_000_000);
    while more {
        match handler.next_msg(deadline).expect("rest of the body") {
            ToHandler::Body(b) => {
                received.extend_from_slice(&b.data);
                more = b.more;
            }
            other => panic!("{other:?}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(received, body);
    handler.respond(req.id, 200, "OK", &[], "", false);
    expect_bytes(&mut client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn response_credits_are_returned_as_the_client_reads() {
    let mut handler = FakeHandler::bind("respcredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET /big HTTP/1.1\r\n\r\n");
    let req = handler.request();
    let window = req.credits as usize;
    let chunk = "x".repeat(window);
    // The whole window at once is allowed.
    handler.respond(
        req.id,
        200,
        "OK",
        &[("Content-Length", &(3 * window).to_string())],
        &chunk,
        true,
    );
    let mut credited = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = window;
    let mut read = 0usize;
    let mut buf = vec![0u8; 65536];
    let head_len = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 3 * window).len();
    while read < head_len + 3 * window {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0);
        read += n;
        // Forward credit into more body, never exceeding what was granted.
        while let Some(msg) = handler.next_msg(Instant::now() + Duration::from_millis(50)) {
            if let ToHandler::Credit(c) = msg {
                assert_eq!(c.id, req.id);
                credited += c.bytes as usize;
            }
        }
        let allowed = window + credited - sent;
        let todo = (3 * window - sent).min(allowed);
        if todo > 0 {
            let more = sent + todo < 3 * window;
            handler.body(req.id, &vec![b'y'; todo], more);
            sent += todo;
        }
        assert!(
            Instant::now() < deadline,
            "stalled: read {read}, sent {sent}, credited {credited}"
        );
    }
    assert_eq!(sent, 3 * window);
    assert!(credited >= 2 * window);
}

#[test]
fn handler_exceeding_credits_is_cut_off() {
    let mut handler = FakeHandler::bind("overcredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    let too_much = "z".repeat(req.credits as usize + 1);
    handler.respond(req.id, 200, "OK", &[], &too_much, false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: 32\r\n\r\nError while proxying to origin.\n",
    );
    expect_eof(&mut client);
    assert!(
        matches!(handler.next(), ToHandler::Closed(c) if c.reason == CloseReason::BackendError)
    );
}

#[test]
fn client_disconnect_reaches_the_handler() {
    let mut handler = FakeHandler::bind("gone");
    let cm = Connmgr::start(&mut handler, &[]);
    // Before the response.
    let mut client = cm.connect();
    send(&mut client, "GET /wait HTTP/1.1\r\n\r\n");
    let req = handler.request();
    drop(client);
    match handler.next() {
        ToHandler::Closed(c) => {
            assert_eq!(c.id, req.id);
            assert_eq!(c.reason, CloseReason::ClientGone);
        }
        other => panic!("{other:?}"),
    }
    // In the middle of a streamed response.
    let mut client = cm.connect();
    send(&mut client, "GET /stream HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "first", true);
    let mut buf = [0u8; 256];
    let n = client.read(&mut buf).unwrap();
    assert!(n > 0);
    drop(client);
    match handler.next() {
        ToHandler::Closed(c) => assert_eq!((c.id, c.reason), (req.id, CloseReason::ClientGone)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn handler_close_aborts_the_connection() {
    let mut handler = FakeHandler::bind("hclose");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.close(req.id);
    expect_eof(&mut client);

    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "partial", true);
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n",
    );
    handler.close(req.id);
    expect_eof(&mut client);
    // No Closed comes back for a stream the handler aborted itself.
    let seen = handler.collect_for(Duration::from_millis(300));
    assert!(
        !seen.iter().any(|m| matches!(m, ToHandler::Closed(_))),
        "{seen:?}"
    );
}

#[test]
fn handler_restart_aborts_streams_in_flight() {
    let mut handler = FakeHandler::bind("restart");
    let cm = Connmgr::start(&mut handler, &[]);
    // An idle keep-alive connection survives the restart.
    let mut idle = cm.connect();
    send(&mut idle, "GET /idle HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "", false);
    expect_bytes(&mut idle, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");

    let mut waiting = cm.connect();
    send(&mut waiting, "GET /wait HTTP/1.1\r\n\r\n");
    let req = handler.request();

    // A packet with a new epoch: the handler restarted.
    handler.epoch += 1;
    handler.send(vec![holdfast_proto::internal::ToConnmgr::Heartbeat]);
    expect_eof(&mut waiting);
    let mut saw_closed = false;
    let mut saw_hello = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(saw_closed && saw_hello) {
        match handler
            .next_msg(deadline)
            .expect("Closed and Hello after the restart")
        {
            ToHandler::Closed(c) => {
                assert_eq!(c.id, req.id);
                saw_closed = true;
            }
            ToHandler::Hello(h) => {
                assert_eq!(h.worker, 0);
                saw_hello = true;
            }
            _ => {}
        }
    }
    // Late messages of the old incarnation are ignored; the idle connection still works.
    handler.respond(req.id, 200, "OK", &[], "late", false);
    send(&mut idle, "GET /after HTTP/1.1\r\n\r\n");
    let req = handler.request();
    assert_eq!(req.target, "/after");
    handler.respond(req.id, 200, "OK", &[], "", false);
    expect_bytes(&mut idle, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn silent_handler_gives_502() {
    let mut handler = FakeHandler::bind("silent");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    // The 502 comes PEER_TIMEOUT_MS (10 s) after the request, the usual read timeout's length:
    // wait longer so a loaded machine's few late milliseconds cannot fail the read.
    let peer_timeout = Duration::from_millis(PEER_TIMEOUT_MS);
    client
        .set_read_timeout(Some(peer_timeout + common::WAIT))
        .expect("timeout");
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    let started = Instant::now();
    expect_bytes(
        &mut client,
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: 32\r\n\r\nError while proxying to origin.\n",
    );
    let waited = started.elapsed();
    assert!(
        waited >= peer_timeout - Duration::from_secs(1),
        "502 after {waited:?}"
    );
    expect_eof(&mut client);
    match handler.next() {
        ToHandler::Closed(c) => assert_eq!((c.id, c.reason), (req.id, CloseReason::Timeout)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heartbeats_keep_the_handler_informed() {
    let mut handler = FakeHandler::bind("heartbeat");
    let _cm = Connmgr::start(&mut handler, &[]);
    let mut beats = 0;
    let deadline = Instant::now() + Duration::from_millis(2600);
    while let Some(packet) = handler.recv_packet(deadline.saturating_duration_since(Instant::now()))
    {
        assert_ne!(packet.epoch, 0);
        beats += packet
            .msgs
            .iter()
            .filter(|m| matches!(m, ToHandler::Heartbeat))
            .count();
    }
    assert!((1..=4).contains(&beats), "{beats} heartbeats in 2.6 s");
}

#[test]
fn every_worker_says_hello() {
    let mut handler = FakeHandler::bind("workers");
    let _cm = Connmgr::start(&mut handler, &["--workers=3"]);
    let mut identities = vec![handler.worker.clone()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while identities.len() < 3 {
        let msg = handler.next_msg(deadline).expect("hello from every worker");
        if matches!(msg, ToHandler::Hello(_)) {
            identities.push(handler.worker.clone());
        }
    }
    identities.sort();
    assert_eq!(
        identities,
        [b"test-0".to_vec(), b"test-1".to_vec(), b"test-2".to_vec()]
    );
}

#[test]
fn maxconn_leaves_extra_connections_waiting() {
    let mut handler = FakeHandler::bind("maxconn");
    let cm = Connmgr::start(&mut handler, &["--maxconn=1"]);
    let mut first = cm.connect();
    send(&mut first, "GET /1 HTTP/1.1\r\n\r\n");
    let req1 = handler.request();
    // Over the limit: connected (kernel backlog) but not served.
    let mut second = cm.connect();
    send(&mut second, "GET /2 HTTP/1.1\r\n\r\n");
    let early = handler.collect_for(Duration::from_millis(400));
    assert!(
        !early.iter().any(|m| matches!(m, ToHandler::Request(_))),
        "{early:?}"
    );
    handler.respond(req1.id, 200, "OK", &[], "", false);
    expect_bytes(&mut first, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    drop(first);
    let req2 = handler.request();
    assert_eq!(req2.target, "/2");
    handler.respond(req2.id, 200, "OK", &[], "", false);
    expect_bytes(&mut second, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn inactivity_timeout_closes_connections() {
    let mut handler = FakeHandler::bind("timeout");
    let cm = Connmgr::start(&mut handler, &["--stream-timeout=1"]);
    // Idle keep-alive connection.
    let mut idle = cm.connect();
    let started = Instant::now();
    expect_eof(&mut idle);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A stream waiting too long (the handler keeps heartbeating, so it is not "silent").
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    let closed = std::thread::spawn(move || {
        expect_eof(&mut client);
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        handler.send(vec![holdfast_proto::internal::ToConnmgr::Heartbeat]);
        if let Some(ToHandler::Closed(c)) =
            handler.next_msg(Instant::now() + Duration::from_millis(200))
        {
            assert_eq!((c.id, c.reason), (req.id, CloseReason::Timeout));
            break;
        }
        assert!(Instant::now() < deadline, "no timeout");
    }
    closed.join().unwrap();
}

#[test]
fn graceful_shutdown_finishes_responses_then_exits() {
    let mut handler = FakeHandler::bind("shutdown");
    let mut cm = Connmgr::start(&mut handler, &[]);
    let mut idle = cm.connect();
    let mut busy = cm.connect();
    send(&mut busy, "GET /slow HTTP/1.1\r\n\r\n");
    let req = handler.request();
    cm.terminate();
    // The idle connection closes at once; the listener is gone.
    expect_eof(&mut idle);
    std::thread::sleep(Duration::from_millis(200));
    assert!(std::net::TcpStream::connect(("127.0.0.1", cm.port)).is_err());
    // The in-flight response still completes, now with Connection: close.
    handler.respond(req.id, 200, "OK", &[], "done", false);
    expect_bytes(
        &mut busy,
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\ndone",
    );
    expect_eof(&mut busy);
    assert_eq!(cm.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn shutdown_deadline_cancels_streams() {
    let mut handler = FakeHandler::bind("shutdown2");
    let mut cm = Connmgr::start(&mut handler, &[]);
    let mut busy = cm.connect();
    send(&mut busy, "GET /never HTTP/1.1\r\n\r\n");
    let req = handler.request();
    let started = Instant::now();
    cm.terminate();
    // Keep the handler alive-looking so only the drain deadline applies.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        handler.send(vec![holdfast_proto::internal::ToConnmgr::Heartbeat]);
        if let Some(ToHandler::Closed(c)) =
            handler.next_msg(Instant::now() + Duration::from_millis(200))
        {
            assert_eq!((c.id, c.reason), (req.id, CloseReason::Shutdown));
            break;
        }
        assert!(Instant::now() < deadline, "no Closed(Shutdown)");
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    expect_eof(&mut busy);
    assert_eq!(cm.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn second_signal_stops_at_once() {
    let mut handler = FakeHandler::bind("shutdown3");
    let mut cm = Connmgr::start(&mut handler, &[]);
    let mut busy = cm.connect();
    send(&mut busy, "GET /never HTTP/1.1\r\n\r\n");
    let _req = handler.request();
    cm.terminate();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    cm.terminate();
    assert_eq!(cm.wait_exit(Duration::from_secs(3)), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut buf = Vec::new();
    let _ = busy.read_to_end(&mut buf);
    assert!(buf.is_empty());
    expect_quiet_closed(&mut busy);
}

fn expect_quiet_closed(stream: &mut std::net::TcpStream) {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("unexpected data {:?}", &buf[..n]),
    }
}

#[test]
fn idle_connections_stay_open_and_quiet() {
    let mut handler = FakeHandler::bind("idle");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut conns: Vec<_> = (0..20).map(|_| cm.connect()).collect();
    for c in &mut conns {
        expect_quiet(c, Duration::from_millis(20));
    }
    let seen = handler.collect_for(Duration::from_millis(200));
    assert!(seen
        .iter()
        .all(|m| matches!(m, ToHandler::Heartbeat | ToHandler::Hello(_))));
}
