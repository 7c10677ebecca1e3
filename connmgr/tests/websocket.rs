//! WebSockets: the upgrade handshake through the handler, messages both ways, protocol errors,
//! the closing handshake, `WsFanout` (with and without permessage-deflate) and credits.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{expect_eof, read_to_eof, send, Connmgr, FakeHandler, WAIT};
use holdfast_proto::internal::{
    CloseReason, Credit, Header, RequestHead, ResponseHead, StreamId, ToConnmgr, ToHandler,
    WsAccept, WsClose, WsFanout, WsKind, WsMessage,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// The RFC 6455 §1.3 example key and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn upgrade_request(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn upgrade(handler: &mut FakeHandler) -> RequestHead {
    match handler.next() {
        ToHandler::Upgrade(head) => head,
        other => panic!("expected an Upgrade, got {other:?}"),
    }
}

fn accept(id: StreamId) -> ToConnmgr {
    ToConnmgr::WsAccept(WsAccept {
        id,
        headers: Vec::new(),
    })
}

fn ws_msg(id: StreamId, kind: WsKind, data: &[u8]) -> ToConnmgr {
    ToConnmgr::WsMessage(WsMessage {
        id,
        kind,
        data: Bytes::copy_from_slice(data),
    })
}

fn ws_close(id: StreamId, code: Option<u16>, reason: &str) -> ToConnmgr {
    ToConnmgr::WsClose(WsClose {
        id,
        code,
        reason: reason.into(),
    })
}

/// Reads a response head (through the blank line).
fn read_head(c: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "{other:?} after {:?}",
                String::from_utf8_lossy(&head).into_owned()
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Connects, upgrades through the handler, reads the `101`.
fn open_raw(cm: &Connmgr, handler: &mut FakeHandler, extra: &str) -> (TcpStream, StreamId, String) {
    let mut c = cm.connect();
    send(&mut c, &upgrade_request("/ws", extra));
    let id = upgrade(handler).id;
    handler.send(vec![accept(id)]);
    let head = read_head(&mut c);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    (c, id, head)
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Reads one server frame: (first byte, payload). Server frames are never masked.
fn read_frame(c: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).expect("frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    c.read_exact(&mut payload).unwrap();
    (h[0], payload)
}

/// Expects a Close frame with `code`, then the end of the connection.
fn expect_close_then_eof(c: &mut TcpStream, code: u16) {
    let (first, payload) = read_frame(c);
    assert_eq!(first, 0x88, "a Close frame");
    assert_eq!(&payload[..2], code.to_be_bytes(), "{payload:?}");
    expect_eof(c);
}

fn expect_closed(handler: &mut FakeHandler, id: StreamId, reason: CloseReason) {
    match handler.next() {
        ToHandler::Closed(c) => assert_eq!((c.id, c.reason), (id, reason)),
        other => panic!("expected Closed, got {other:?}"),
    }
}

fn next_ws_message(handler: &mut FakeHandler) -> WsMessage {
    match handler.next() {
        ToHandler::WsMessage(m) => m,
        other => panic!("expected a WsMessage, got {other:?}"),
    }
}

/// Raw-inflates a permessage-deflate payload.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut d = flate2::Decompress::new(false);
    let mut buf = vec![0u8; 1 << 20];
    d.decompress(&input, &mut buf, flate2::FlushDecompress::Sync)
        .unwrap();
    buf.truncate(d.total_out() as usize);
    buf
}

#[test]
fn handshake_accept_and_echo_with_tungstenite() {
    let mut handler = FakeHandler::bind("wsecho");
    let cm = Connmgr::start(&mut handler, &[]);
    let port = cm.port;
    let client = std::thread::spawn(move || {
        let mut req = format!("ws://127.0.0.1:{port}/echo?x=1")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("X-Client", "yes".parse().unwrap());
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        // tungstenite checks Sec-WebSocket-Accept itself.
        let (mut ws, resp) = tungstenite::client::client(req, stream).expect("handshake");
        assert_eq!(resp.status(), 101);
        assert_eq!(resp.headers()["X-Backend"], "b");
        ws.send(Message::Text("hello".into())).unwrap();
        ws.send(Message::Binary(vec![0, 1, 2, 255])).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let m = ws.read().unwrap();
            if m.is_text() || m.is_binary() {
                got.push(m);
            }
        }
        got
    });

    let head = upgrade(&mut handler);
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/echo?x=1");
    assert_eq!(common::header(&head, "X-Client"), Some("yes"));
    assert_eq!(common::header(&head, "Upgrade"), Some("websocket"));
    assert!(common::header(&head, "Sec-WebSocket-Key").is_some());
    assert!(head.credits >= 65536);
    assert!(head.body.is_empty() && !head.more);
    handler.send(vec![ToConnmgr::WsAccept(WsAccept {
        id: head.id,
        headers: vec![Header::new("X-Backend", "b")],
    })]);

    for _ in 0..2 {
        let m = next_ws_message(&mut handler);
        assert_eq!(m.id, head.id);
        handler.send(vec![ws_msg(m.id, m.kind, &m.data)]);
    }
    let got = client.join().unwrap();
    assert_eq!(
        got,
        vec![
            Message::Text("hello".into()),
            Message::Binary(vec![0, 1, 2, 255])
        ]
    );
}

#[test]
fn the_101_carries_the_accept_key_and_the_handlers_headers() {
    let mut handler = FakeHandler::bind("ws101");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut c = cm.connect();
    send(&mut c, &upgrade_request("/ws", ""));
    let id = upgrade(&mut handler).id;
    handler.send(vec![ToConnmgr::WsAccept(WsAccept {
        id,
        headers: vec![
            Header::new("Sec-WebSocket-Protocol", "chat"),
            Header::new("Sec-WebSocket-Accept", "forged"),
        ],
    })]);
    let head = read_head(&mut c);
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: chat\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
    );
}

#[test]
fn a_rejection_is_written_as_http_and_the_connection_closes() {
    let mut handler = FakeHandler::bind("wsreject");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut c = cm.connect();
    send(&mut c, &upgrade_request("/ws", ""));
    let id = upgrade(&mut handler).id;
    handler.send(vec![ToConnmgr::Response(ResponseHead {
        id,
        code: 403,
        reason: "Forbidden".into(),
        headers: vec![
            Header::new("Content-Type", "text/plain"),
            Header::new("Sec-WebSocket-Accept", "nope"),
        ],
        body: Bytes::from_static(b"go away\n"),
        more: false,
    })]);
    let all = read_to_eof(&mut c);
    assert_eq!(
        all,
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: 8\r\n\r\ngo away\n"
    );
}

#[test]
fn an_invalid_upgrade_gets_400_and_never_reaches_the_handler() {
    let mut handler = FakeHandler::bind("wsinvalid");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut c = cm.connect();
    send(
        &mut c,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    );
    let all = read_to_eof(&mut c);
    let body = "Request contained an Upgrade header with value \"websocket\" but the request \
                was not a valid WebSocket request.\n";
    assert_eq!(
        all,
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    );
    let msgs = handler.collect_for(Duration::from_millis(300));
    assert!(
        !msgs.iter().any(|m| matches!(m, ToHandler::Upgrade(_))),
        "{msgs:?}"
    );
}

#[test]
fn fragments_are_reassembled_and_pings_answered_and_forwarded() {
    let mut handler = FakeHandler::bind("wsfrag");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    let mut wire = client_frame(0x01, b"Hel");
    wire.extend(client_frame(0x89, b"are you there"));
    wire.extend(client_frame(0x00, b"lo, "));
    wire.extend(client_frame(0x80, "wörld".as_bytes()));
    c.write_all(&wire).unwrap();
    let (first, payload) = read_frame(&mut c);
    assert_eq!(
        (first, &payload[..]),
        (0x8a, &b"are you there"[..]),
        "a Pong"
    );
    let ping = next_ws_message(&mut handler);
    assert_eq!((ping.id, ping.kind), (id, WsKind::Ping));
    assert_eq!(&ping.data[..], b"are you there");
    let text = next_ws_message(&mut handler);
    assert_eq!(text.kind, WsKind::Text);
    assert_eq!(&text.data[..], "Hello, wörld".as_bytes());

    // A pong from the client is forwarded too; a ping from the handler reaches the client.
    c.write_all(&client_frame(0x8a, b"p")).unwrap();
    let pong = next_ws_message(&mut handler);
    assert_eq!((pong.kind, &pong.data[..]), (WsKind::Pong, &b"p"[..]));
    handler.send(vec![ws_msg(id, WsKind::Ping, b"hb")]);
    assert_eq!(read_frame(&mut c), (0x89, b"hb".to_vec()));
}

#[test]
fn invalid_utf8_fails_with_1007() {
    let mut handler = FakeHandler::bind("wsutf8");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    c.write_all(&client_frame(0x81, &[b'a', 0xc3, 0x28]))
        .unwrap();
    expect_close_then_eof(&mut c, 1007);
    expect_closed(&mut handler, id, CloseReason::BadRequest);
}

#[test]
fn an_unmasked_frame_fails_with_1002() {
    let mut handler = FakeHandler::bind("wsunmasked");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    c.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    expect_close_then_eof(&mut c, 1002);
    expect_closed(&mut handler, id, CloseReason::BadRequest);
}

#[test]
fn an_oversized_message_fails_with_1009() {
    let mut handler = FakeHandler::bind("wsbig");
    let cm = Connmgr::start(&mut handler, &["--max-message-size=100"]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    // 60 + 60 bytes in two fragments: each frame fits, the message does not.
    c.write_all(&client_frame(0x02, &[7; 60])).unwrap();
    c.write_all(&client_frame(0x80, &[7; 60])).unwrap();
    expect_close_then_eof(&mut c, 1009);
    expect_closed(&mut handler, id, CloseReason::BadRequest);
}

#[test]
fn client_close_goes_through_the_handler() {
    let mut handler = FakeHandler::bind("wsclose");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    c.write_all(&client_frame(0x88, &payload)).unwrap();
    match handler.next() {
        ToHandler::WsClose(close) => {
            assert_eq!(
                close,
                WsClose {
                    id,
                    code: Some(1000),
                    reason: "bye".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // Nothing until the handler answers.
    common::expect_quiet(&mut c, Duration::from_millis(200));
    handler.send(vec![ws_close(id, Some(1000), "see you")]);
    let (first, payload) = read_frame(&mut c);
    assert_eq!(first, 0x88);
    assert_eq!(&payload[..2], 1000u16.to_be_bytes());
    assert_eq!(&payload[2..], b"see you");
    expect_eof(&mut c);
    // The stream ended cleanly: no Closed for it.
    let msgs = handler.collect_for(Duration::from_millis(300));
    assert!(
        !msgs.iter().any(|m| matches!(m, ToHandler::Closed(_))),
        "{msgs:?}"
    );
}

#[test]
fn handler_close_waits_for_the_clients_answer() {
    let mut handler = FakeHandler::bind("wshclose");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    handler.send(vec![ws_close(id, Some(4000), "done")]);
    let (first, payload) = read_frame(&mut c);
    assert_eq!(first, 0x88);
    assert_eq!(&payload[..2], 4000u16.to_be_bytes());
    c.write_all(&client_frame(0x88, &4000u16.to_be_bytes()))
        .unwrap();
    expect_eof(&mut c);
    match handler.next() {
        ToHandler::WsClose(close) => assert_eq!((close.id, close.code), (id, Some(4000))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unanswered_client_close_is_echoed_after_the_grace_period() {
    let mut handler = FakeHandler::bind("wsgrace");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    c.write_all(&client_frame(0x88, &1001u16.to_be_bytes()))
        .unwrap();
    assert!(matches!(handler.next(), ToHandler::WsClose(_)));
    let start = Instant::now();
    expect_close_then_eof(&mut c, 1001);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    expect_closed(&mut handler, id, CloseReason::Timeout);
}

#[test]
fn a_vanished_client_is_reported() {
    let mut handler = FakeHandler::bind("wsgone");
    let cm = Connmgr::start(&mut handler, &[]);
    let (c, id, _) = open_raw(&cm, &mut handler, "");
    drop(c);
    expect_closed(&mut handler, id, CloseReason::ClientGone);
}

#[test]
fn the_stream_timeout_applies() {
    let mut handler = FakeHandler::bind("wstimeout");
    let cm = Connmgr::start(&mut handler, &["--stream-timeout=1"]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    expect_closed(&mut handler, id, CloseReason::Timeout);
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
}

/// Opens `n` WebSockets (`extra` headers on each upgrade); accepts them all in one packet.
fn open_many(
    cm: &Connmgr,
    handler: &mut FakeHandler,
    n: usize,
    extra: impl Fn(usize) -> &'static str,
) -> Vec<(TcpStream, StreamId, String)> {
    let mut clients: Vec<TcpStream> = (0..n).map(|_| cm.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        send(c, &upgrade_request(&format!("/c{i}"), extra(i)));
    }
    let mut ids = HashMap::new();
    while ids.len() < n {
        let head = upgrade(handler);
        ids.insert(head.target.clone(), head.id);
    }
    handler.send(ids.values().map(|&id| accept(id)).collect());
    clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let head = read_head(&mut c);
            (c, ids[&format!("/c{i}")], head)
        })
        .collect()
}

fn fanout(ids: Vec<StreamId>, kind: WsKind, data: &[u8]) -> ToConnmgr {
    ToConnmgr::WsFanout(WsFanout {
        ids,
        kind,
        data: Bytes::copy_from_slice(data),
    })
}

#[test]
fn one_fanout_reaches_200_websockets() {
    let mut handler = FakeHandler::bind("wsfanout");
    let cm = Connmgr::start(&mut handler, &["--log-level=3"]);
    let mut clients = open_many(&cm, &mut handler, 200, |_| "");
    let mut ids: Vec<StreamId> = clients.iter().map(|(_, id, _)| *id).collect();
    // Unknown and repeated ids are skipped.
    ids.push(StreamId::new(9999, 1));
    ids.push(ids[0]);
    handler.send(vec![
        fanout(ids.clone(), WsKind::Text, b"first"),
        fanout(ids, WsKind::Binary, &[1, 2, 3]),
    ]);
    for (c, _, _) in &mut clients {
        assert_eq!(read_frame(c), (0x81, b"first".to_vec()));
        assert_eq!(read_frame(c), (0x82, vec![1, 2, 3]));
    }
    // Each stream gets its 8 bytes back as one Credit.
    let mut credited: HashMap<StreamId, u32> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while credited.len() < 200 {
        match handler.next_msg(deadline).expect("credits") {
            ToHandler::Credit(Credit { id, bytes }) => {
                assert!(
                    credited.insert(id, bytes).is_none(),
                    "one Credit per stream"
                );
            }
            ToHandler::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(credited.values().all(|&b| b == 8));
}

#[test]
fn a_compressed_fanout_is_compressed_once_for_every_deflate_client() {
    let mut handler = FakeHandler::bind("wsdeflate");
    let cm = Connmgr::start(&mut handler, &["--compression"]);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let mut clients = open_many(
        &cm,
        &mut handler,
        200,
        |i| if i % 2 == 0 { offer } else { "" },
    );
    for (i, (_, _, head)) in clients.iter().enumerate() {
        assert_eq!(
            head.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            ),
            i % 2 == 0,
            "{head}"
        );
    }
    let text = "compress me, compress me, compress me, compress me please ".repeat(20);
    let ids: Vec<StreamId> = clients.iter().map(|(_, id, _)| *id).collect();
    handler.send(vec![fanout(ids, WsKind::Text, text.as_bytes())]);
    let mut compressed = None;
    for (i, (c, _, _)) in clients.iter_mut().enumerate() {
        let (first, payload) = read_frame(c);
        if i % 2 == 0 {
            assert_eq!(first, 0xc1, "FIN + RSV1 + text");
            assert!(payload.len() < text.len() / 4);
            assert_eq!(inflate(&payload), text.as_bytes());
            assert_eq!(compressed.get_or_insert_with(|| payload.clone()), &payload);
        } else {
            assert_eq!((first, payload), (0x81, text.as_bytes().to_vec()));
        }
    }

    // A compressed client message is decompressed before it reaches the handler.
    let (c, id, _) = &mut clients[0];
    let mut enc = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(1024);
    enc.compress_vec(b"hello hello hello", &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    c.write_all(&client_frame(0xc1, &out)).unwrap();
    let m = next_ws_message(&mut handler);
    assert_eq!((m.id, m.kind), (*id, WsKind::Text));
    assert_eq!(&m.data[..], b"hello hello hello");
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

#[test]
fn a_client_that_does_not_read_is_cut_off_alone() {
    let mut handler = FakeHandler::bind("wscredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut slow = slow_client(&cm);
    send(&mut slow, &upgrade_request("/slow", ""));
    let slow_head = upgrade(&mut handler);
    let slow_id = slow_head.id;
    handler.send(vec![accept(slow_id)]);
    read_head(&mut slow);
    let (mut fast, fast_id, _) = open_raw(&cm, &mut handler, "");

    // Fill the slow client's credits until they stop coming back.
    let block = vec![b'f'; 16384];
    let mut avail = slow_head.credits as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while avail > 0 {
            let n = avail.min(block.len());
            handler.send(vec![ws_msg(slow_id, WsKind::Binary, &block[..n])]);
            avail -= n;
        }
        match handler.next_msg(Instant::now() + Duration::from_millis(400)) {
            Some(ToHandler::Credit(c)) => {
                assert_eq!(c.id, slow_id);
                avail += c.bytes as usize;
            }
            Some(ToHandler::Heartbeat) => {}
            Some(other) => panic!("{other:?}"),
            None => break,
        }
        assert!(Instant::now() < deadline, "the client never blocked");
    }
    handler.send(vec![fanout(vec![slow_id, fast_id], WsKind::Text, b"event")]);
    assert_eq!(read_frame(&mut fast), (0x81, b"event".to_vec()));
    expect_closed(&mut handler, slow_id, CloseReason::BackendError);
    handler.send(vec![fanout(vec![slow_id, fast_id], WsKind::Text, b"again")]);
    assert_eq!(read_frame(&mut fast), (0x81, b"again".to_vec()));
}

#[test]
fn client_messages_wait_for_credits() {
    let mut handler = FakeHandler::bind("wsincredit");
    let cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    // 3 x 30000 bytes: the first two fit the initial 65536 credits, the third waits.
    for _ in 0..3 {
        c.write_all(&client_frame(0x82, &[5; 30000])).unwrap();
    }
    assert_eq!(next_ws_message(&mut handler).data.len(), 30000);
    assert_eq!(next_ws_message(&mut handler).data.len(), 30000);
    let msgs = handler.collect_for(Duration::from_millis(300));
    assert!(
        !msgs.iter().any(|m| matches!(m, ToHandler::WsMessage(_))),
        "{msgs:?}"
    );
    handler.send(vec![ToConnmgr::Credit(Credit { id, bytes: 30000 })]);
    assert_eq!(next_ws_message(&mut handler).data.len(), 30000);
}

#[test]
fn shutdown_closes_websockets_with_1001() {
    let mut handler = FakeHandler::bind("wsshutdown");
    let mut cm = Connmgr::start(&mut handler, &[]);
    let (mut c, id, _) = open_raw(&cm, &mut handler, "");
    cm.terminate();
    expect_close_then_eof(&mut c, 1001);
    expect_closed(&mut handler, id, CloseReason::Shutdown);
    assert_eq!(cm.wait_exit(Duration::from_secs(5)), Some(0));
}

/// Waits for the next `Credit` (skipping heartbeats).
fn next_credit(handler: &mut FakeHandler) -> Credit {
    let deadline = Instant::now() + WAIT;
    loop {
        match handler.next_msg(deadline).expect("a Credit") {
            ToHandler::Credit(c) => return c,
            ToHandler::Heartbeat => {}
            other => panic!("expected a Credit, got {other:?}"),
        }
    }
}

#[test]
fn handler_messages_larger_than_the_window_go_when_the_whole_window_is_held() {
    let mut handler = FakeHandler::bind("wsbig");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut c = cm.connect();
    send(&mut c, &upgrade_request("/big", ""));
    let head = upgrade(&mut handler);
    let (id, window) = (head.id, head.credits as usize);
    handler.send(vec![accept(id)]);
    read_head(&mut c);

    // The whole window is held: a message beyond it goes, and costs exactly the window.
    let big: Vec<u8> = (0..window + 1000).map(|i| i as u8).collect();
    handler.send(vec![ws_msg(id, WsKind::Binary, &big)]);
    assert_eq!(read_frame(&mut c), (0x82, big.clone()));
    assert_eq!(
        next_credit(&mut handler),
        Credit {
            id,
            bytes: window as u32
        }
    );

    // The same through a fanout, three times the window.
    let text = "t".repeat(3 * window);
    handler.send(vec![fanout(vec![id], WsKind::Text, text.as_bytes())]);
    assert_eq!(read_frame(&mut c), (0x81, text.into_bytes()));
    assert_eq!(
        next_credit(&mut handler),
        Credit {
            id,
            bytes: window as u32
        }
    );

    // Ordinary messages follow as before. (A large message while credit is outstanding is a
    // violation; the unit tests in `worker::ws_conn` check that deterministically.)
    handler.send(vec![ws_msg(id, WsKind::Text, b"small")]);
    assert_eq!(read_frame(&mut c), (0x81, b"small".to_vec()));
    assert_eq!(next_credit(&mut handler), Credit { id, bytes: 5 });
}
