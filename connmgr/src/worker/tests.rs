//! A connection driven over a real loopback socket: held streams and their buffers, without the
//! event loop or the handler socket (fanout delivery is tested in the `fanout` module).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{Body, ResponseHead, StreamId, ToHandler};

use super::conn::{Conn, Status};
use super::ctx::Ctx;
use super::transport::{Peer, Transport};

const SLOT: usize = 0;

/// A connection with its client end, whose reads give up after `read_timeout` (the `fanout`
/// tests use a short one to see that nothing more was written).
pub(super) fn pair(read_timeout: Duration) -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(read_timeout)).unwrap();
    let (server, peer) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let sock = mio::net::TcpStream::from_std(server);
    (
        Conn::new(
            Transport::Plain(sock),
            Peer::Tcp(peer),
            80,
            1,
            Instant::now(),
        ),
        client,
    )
}

fn cx(window: u32) -> Ctx {
    Ctx::new(Instant::now(), 4096, window, Duration::from_secs(60))
}

/// Drives the connection until the handler has been sent a request; returns its id.
fn read_request(conn: &mut Conn, cx: &mut Ctx) -> StreamId {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert_eq!(conn.on_ready(SLOT, true, true, cx), Status::Open);
        for msg in cx.take_outbox() {
            if let ToHandler::Request(head) = msg {
                return head.id;
            }
        }
        assert!(Instant::now() < deadline, "no request");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn streaming_head(id: StreamId) -> ResponseHead {
    ResponseHead {
        id,
        code: 200,
        reason: "OK".into(),
        headers: Vec::new(),
        body: Bytes::new(),
        more: true,
    }
}

fn read_exactly(client: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    client.read_exact(&mut buf).unwrap();
    buf
}

fn credits(msgs: &[ToHandler]) -> Vec<(StreamId, u32)> {
    msgs.iter()
        .filter_map(|m| match m {
            ToHandler::Credit(c) => Some((c.id, c.bytes)),
            _ => None,
        })
        .collect()
}

#[test]
fn held_streams_own_no_buffers() {
    let mut cx = cx(65536);
    let (mut conn, mut client) = pair(Duration::from_secs(5));
    client
        .write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let id = read_request(&mut conn, &mut cx);
    // Response hold: the request is consumed, nothing to write.
    assert!(!conn.holds_buffers());
    assert_eq!(cx.buffers.in_use(), 0);

    assert_eq!(
        conn.on_response(SLOT, streaming_head(id), &mut cx),
        Status::Open
    );
    let head =
        "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(read_exactly(&mut client, head.len()), head.as_bytes());
    // Stream hold between publishes: still nothing held.
    assert!(!conn.holds_buffers());

    for _ in 0..3 {
        let body = Body {
            id,
            data: Bytes::from_static(b"hello"),
            more: true,
        };
        assert_eq!(conn.on_body(SLOT, body, &mut cx), Status::Open);
        assert!(!conn.holds_buffers(), "written at once, queue given back");
        // A `Body` is credited back as soon as it reaches the socket.
        assert_eq!(credits(&cx.take_outbox()), [(id, 5)]);
    }
    assert_eq!(
        read_exactly(&mut client, 30),
        b"5\r\nhello\r\n5\r\nhello\r\n5\r\nhello\r\n"
    );
    assert!(!conn.holds_buffers());
    assert_eq!(cx.buffers.in_use(), 0);
}
