//! `Fanout`: one payload from the handler appended to many held streams at once (GRIP publishes
//! to HTTP streaming and SSE subscribers).

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    expect_bytes, expect_eof, expect_quiet, fanout_msg, send, Connmgr, FakeHandler, WAIT,
};
use holdfast_proto::internal::{CloseReason, Header, ResponseHead, StreamId, ToConnmgr, ToHandler};

const CHUNKED_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                            Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A streaming (`more: true`) response head without body.
fn streaming(id: StreamId) -> ToConnmgr {
    ToConnmgr::Response(ResponseHead {
        id,
        code: 200,
        reason: "OK".into(),
        headers: vec![Header::new("Content-Type", "text/plain")],
        body: Bytes::new(),
        more: true,
    })
}

/// One chunk of chunked encoding.
fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// Connects `n` clients that each send `GET /c<i>`; returns them with their stream ids.
fn open_clients(cm: &Connmgr, handler: &mut FakeHandler, n: usize) -> Vec<(TcpStream, StreamId)> {
    let mut clients: Vec<TcpStream> = (0..n).map(|_| cm.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        send(c, &format!("GET /c{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    let mut ids = HashMap::new();
    while ids.len() < n {
        let req = handler.request();
        ids.insert(req.target.clone(), req.id);
    }
    clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, ids[&format!("/c{i}")]))
        .collect()
}

/// A client whose receive buffer is tiny, so the connection manager's queue fills quickly.
fn slow_client(cm: &Connmgr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], cm.port).into();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Asserts no client has anything more to read.
fn nothing_more(clients: &mut [(TcpStream, StreamId)]) {
    std::thread::sleep(Duration::from_millis(100));
    for (c, id) in clients {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("stream {id}: unexpected {other:?}"),
        }
        c.set_nonblocking(false).unwrap();
    }
}

/// Decodes a chunked body; returns the data and whether the last chunk was seen.
fn dechunk(mut wire: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = wire.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = usize::from_str_radix(std::str::from_utf8(&wire[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return (out, &wire[eol..] == b"\r\n\r\n");
        }
        let start = eol + 2;
        if wire.len() < start + size + 2 {
            out.extend_from_slice(&wire[start.min(wire.len())..]);
            return (out, false);
        }
        out.extend_from_slice(&wire[start..start + size]);
        wire = &wire[start + size + 2..];
    }
}

/// Credits per stream among `msgs`: (sum, number of Credit messages).
fn credit_totals(msgs: &[ToHandler]) -> HashMap<StreamId, (u64, usize)> {
    let mut totals: HashMap<StreamId, (u64, usize)> = HashMap::new();
    for m in msgs {
        if let ToHandler::Credit(c) = m {
            let entry = totals.entry(c.id).or_default();
            entry.0 += u64::from(c.bytes);
            entry.1 += 1;
        }
    }
    totals
}

#[test]
fn one_fanout_reaches_200_streams_in_order_without_loss() {
    let mut handler = FakeHandler::bind("fanout200");
    let cm = Connmgr::start(&mut handler, &["--log-level=3"]);
    let mut clients = open_clients(&cm, &mut handler, 200);
    let ids: Vec<StreamId> = clients.iter().map(|(_, id)| *id).collect();
    handler.send(ids.iter().map(|&id| streaming(id)).collect());
    for (c, _) in &mut clients {
        expect_bytes(c, CHUNKED_HEAD);
    }

    // One packet, one payload, 200 streams.
    let first = "published to everyone\n";
    handler.fanout(&ids, first.as_bytes());
    for (c, _) in &mut clients {
        expect_bytes(c, &chunk(first));
    }
    nothing_more(&mut clients);

    // 49 more: 39 in their own packets, then 10 in a single packet.
    let payload = |i: usize| format!("message {i:02} {}\n", "x".repeat(i));
    for i in 1..40 {
        handler.fanout(&ids, payload(i).as_bytes());
    }
    handler.send(
        (40..50)
            .map(|i| fanout_msg(&ids, payload(i).as_bytes()))
            .collect(),
    );
    let expected: String = (1..50).map(|i| chunk(&payload(i))).collect();
    for (c, _) in &mut clients {
        expect_bytes(c, &expected);
    }
    nothing_more(&mut clients);

    // Every byte was credited back as it reached the sockets; the ten fanouts of the last
    // packet were credited with one message per stream.
    let total = (first.len() + (1..50).map(|i| payload(i).len()).sum::<usize>()) as u64;
    let msgs = handler.collect_for(Duration::from_millis(500));
    let credits = credit_totals(&msgs);
    for id in &ids {
        let (bytes, count) = credits.get(id).copied().unwrap_or_default();
        assert_eq!(bytes, total, "stream {id}");
        assert!(
            count <= 41,
            "stream {id}: {count} Credit messages for 41 packets"
        );
    }
    assert!(
        cm.log().contains("delivered=200 skipped=0 cut_off=0"),
        "{}",
        cm.log()
    );

    // The streams still end normally.
    handler.send(
        ids.iter()
            .map(|&id| {
                ToConnmgr::Body(holdfast_proto::internal::Body {
                    id,
                    data: Bytes::new(),
                    more: false,
                })
            })
            .collect(),
    );
    for (c, _) in &mut clients {
        expect_bytes(c, "0\r\n\r\n");
    }
}

#[test]
fn each_stream_gets_its_own_framing() {
    let mut handler = FakeHandler::bind("fanoutframing");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut old = cm.connect();
    send(&mut old, "GET /old HTTP/1.0\r\n\r\n");
    let old_id = handler.request().id;
    let mut new = cm.connect();
    send(&mut new, "GET /new HTTP/1.1\r\nHost: x\r\n\r\n");
    let new_id = handler.request().id;
    let mut sized = cm.connect();
    send(&mut sized, "GET /sized HTTP/1.1\r\nHost: x\r\n\r\n");
    let sized_id = handler.request().id;

    handler.respond(old_id, 200, "OK", &[], "", true);
    expect_bytes(&mut old, "HTTP/1.0 200 OK\r\n\r\n");
    handler.respond(new_id, 200, "OK", &[], "", true);
    expect_bytes(
        &mut new,
        "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    handler.respond(sized_id, 200, "OK", &[("Content-Length", "10")], "", true);
    expect_bytes(&mut sized, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");

    let ids = [old_id, new_id, sized_id];
    handler.fanout(&ids, b"data: a\n\n");
    expect_bytes(&mut old, "data: a\n\n");
    expect_bytes(&mut new, "9\r\ndata: a\n\n\r\n");
    expect_bytes(&mut sized, "data: a\n\n");
    handler.fanout(&ids, b"bc");
    expect_bytes(&mut old, "bc");
    expect_bytes(&mut new, "2\r\nbc\r\n");
    // Content-Length 10: only the one byte still owed goes out.
    expect_bytes(&mut sized, "b");

    // The HTTP/1.0 body ends with the connection; the chunked one with its last chunk.
    handler.body(old_id, b"", false);
    expect_eof(&mut old);
    handler.body(new_id, b"", false);
    expect_bytes(&mut new, "0\r\n\r\n");
    expect_quiet(&mut new, Duration::from_millis(100));
    // The overlong Content-Length response closes rather than be reused.
    handler.body(sized_id, b"", false);
    expect_eof(&mut sized);
}

#[test]
fn stale_unknown_and_unready_ids_are_skipped() {
    let mut handler = FakeHandler::bind("fanoutstale");
    let cm = Connmgr::start(&mut handler, &["--log-level=3"]);
    let mut clients = open_clients(&cm, &mut handler, 3);
    let (live1, live2, gone) = (clients[0].1, clients[1].1, clients[2].1);
    handler.send(vec![streaming(live1), streaming(live2), streaming(gone)]);
    for (c, _) in &mut clients {
        expect_bytes(c, CHUNKED_HEAD);
    }
    // The third client leaves.
    let (gone_client, _) = clients.pop().unwrap();
    drop(gone_client);
    match handler.next() {
        ToHandler::Closed(c) => assert_eq!((c.id, c.reason), (gone, CloseReason::ClientGone)),
        other => panic!("{other:?}"),
    }
    // A keep-alive connection whose first response is complete and whose second request waits:
    // the first id is a stale generation of a live slot, the second has no response yet.
    let mut reused = cm.connect();
    send(&mut reused, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = handler.request().id;
    handler.respond(first, 200, "OK", &[], "", false);
    expect_bytes(&mut reused, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    send(&mut reused, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    let second = handler.request().id;
    assert_eq!(first.slot(), second.slot());
    let unknown = StreamId::new(60_000, 1);

    let ids = [live1, gone, first, second, unknown, live2, live1];
    handler.fanout(&ids, b"news");
    for (c, _) in &mut clients {
        expect_bytes(c, &chunk("news"));
    }
    nothing_more(&mut clients);
    expect_quiet(&mut reused, Duration::from_millis(200));
    assert!(
        cm.log().contains("delivered=2 skipped=5 cut_off=0"),
        "{}",
        cm.log()
    );

    // Nothing was disturbed: the waiting request gets exactly its response.
    handler.respond(second, 200, "OK", &[], "done", false);
    expect_bytes(
        &mut reused,
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
    );
    handler.fanout(&[live2], b"more");
    expect_bytes(&mut clients[1].0, &chunk("more"));
    // No Closed for any skipped id.
    let seen = handler.collect_for(Duration::from_millis(300));
    assert!(
        !seen.iter().any(|m| matches!(m, ToHandler::Closed(_))),
        "{seen:?}"
    );
}

/// Sends `stream` body until its client stops reading and the connection manager's queue holds
/// the rest: returns the body bytes sent. Credits are tracked exactly, so the handler has none
/// left when this returns.
fn fill(handler: &mut FakeHandler, id: StreamId, window: u32) -> usize {
    let block = vec![b'f'; 16384];
    let mut avail = window as usize;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while avail > 0 {
            let n = avail.min(block.len());
            handler.body(id, &block[..n], true);
            avail -= n;
            sent += n;
        }
        match handler.next_msg(Instant::now() + Duration::from_millis(400)) {
            Some(ToHandler::Credit(c)) => {
                assert_eq!(c.id, id);
                avail += c.bytes as usize;
            }
            Some(ToHandler::Heartbeat) => {}
            Some(other) => panic!("{other:?}"),
            None => return sent,
        }
        assert!(Instant::now() < deadline, "the client never blocked");
    }
}

#[test]
fn a_fanout_beyond_one_streams_credits_cuts_off_that_stream_only() {
    let mut handler = FakeHandler::bind("fanoutcredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut slow = slow_client(&cm);
    send(&mut slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    let slow_req = handler.request();
    let mut fast = cm.connect();
    send(&mut fast, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n");
    let fast_id = handler.request().id;
    handler.send(vec![streaming(slow_req.id), streaming(fast_id)]);
    expect_bytes(&mut fast, CHUNKED_HEAD);

    let sent = fill(&mut handler, slow_req.id, slow_req.credits);
    // The slow stream has no credit left; the fast one has its whole window.
    handler.fanout(&[slow_req.id, fast_id], b"event\n");
    expect_bytes(&mut fast, &chunk("event\n"));
    match handler.next() {
        ToHandler::Closed(c) => {
            assert_eq!((c.id, c.reason), (slow_req.id, CloseReason::BackendError));
        }
        other => panic!("{other:?}"),
    }
    // The stream is aborted at once: the client gets what had reached its socket (what still
    // waited in the connection manager's queue, at most a window, is dropped with the
    // connection), then the connection ends without the last chunk (the body is visibly
    // truncated) and without the fanout payload.
    let mut wire = Vec::new();
    slow.read_to_end(&mut wire).unwrap();
    let head_len = CHUNKED_HEAD.len();
    assert_eq!(&wire[..head_len], CHUNKED_HEAD.as_bytes());
    let (body, complete) = dechunk(&wire[head_len..]);
    assert!(!complete);
    let window = slow_req.credits as usize;
    assert!(
        body.len() <= sent && body.len() + window >= sent,
        "{} of {sent} bytes",
        body.len()
    );
    assert!(body.iter().all(|&b| b == b'f'));

    // The fast stream carries on.
    handler.fanout(&[slow_req.id, fast_id], b"again\n");
    expect_bytes(&mut fast, &chunk("again\n"));
}

/// Publishes numbered 1000-byte messages to one stream, never beyond its credits.
struct Publisher {
    id: StreamId,
    avail: usize,
    next: usize,
    credited: u64,
}

const COUNT: usize = 3000;

fn message(i: usize) -> String {
    format!("{i:06}{}", "m".repeat(994))
}

impl Publisher {
    /// Sends what the credits allow, then waits up to `wait` for one message; false if none came.
    fn pump(&mut self, handler: &mut FakeHandler, wait: Duration) -> bool {
        while self.next < COUNT && self.avail >= 1000 {
            handler.fanout(&[self.id], message(self.next).as_bytes());
            self.avail -= 1000;
            self.next += 1;
        }
        match handler.next_msg(Instant::now() + wait) {
            Some(ToHandler::Credit(c)) => {
                assert_eq!(c.id, self.id);
                self.avail += c.bytes as usize;
                self.credited += u64::from(c.bytes);
                true
            }
            Some(ToHandler::Heartbeat) => true,
            Some(other) => panic!("{other:?}"),
            None => false,
        }
    }
}

#[test]
fn credits_come_back_as_a_slow_client_reads() {
    let mut handler = FakeHandler::bind("fanoutslow");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = slow_client(&cm);
    send(&mut client, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.send(vec![streaming(req.id)]);
    expect_bytes(&mut client, CHUNKED_HEAD);

    // Publish within the credits until the client (not reading yet) makes them stop coming.
    let mut publisher = Publisher {
        id: req.id,
        avail: req.credits as usize,
        next: 0,
        credited: 0,
    };
    while publisher.pump(&mut handler, Duration::from_millis(400)) {}
    assert!(
        publisher.next < COUNT,
        "a client that does not read must stall the publisher"
    );

    // Now the client reads: credits flow again and every message arrives, in order.
    let reader = std::thread::spawn(move || {
        let expected: String = (0..COUNT).map(|i| chunk(&message(i))).collect();
        expect_bytes(&mut client, &expected);
        client
    });
    let total = (COUNT * 1000) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.next < COUNT || publisher.credited < total {
        publisher.pump(&mut handler, Duration::from_millis(100));
        assert!(
            Instant::now() < deadline,
            "stuck at {} sent, {} credited",
            publisher.next,
            publisher.credited
        );
    }
    let _client = reader.join().unwrap();
    assert_eq!(publisher.credited, total);
}
