//! What clients see and what the handler receives for plain HTTP/1 traffic.

mod common;

use std::time::Duration;

use common::{expect_bytes, expect_eof, expect_quiet, header, send, Connmgr, FakeHandler};
use holdfast_proto::internal::{HttpVersion, ToHandler};

#[test]
fn simple_get_and_keep_alive() {
    let mut handler = FakeHandler::bind("get");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    let local = client.local_addr().unwrap();

    send(
        &mut client,
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n",
    );
    let req = handler.request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, "/a/b?c=d");
    assert_eq!(req.version, HttpVersion::Http11);
    let names: Vec<&str> = req.headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["Host", "X-Multi", "X-Multi"]);
    assert_eq!(header(&req, "host"), Some("example.com"));
    assert_eq!(req.peer_addr, "127.0.0.1");
    assert_eq!(req.peer_port, local.port());
    assert_eq!(req.local_port, cm.port);
    assert!(!req.secure);
    assert!(req.body.is_empty());
    assert!(!req.more);
    assert_eq!(req.credits, 65536);
    assert_eq!(&handler.worker, b"test-0");

    handler.respond(
        req.id,
        200,
        "OK",
        &[("Content-Type", "text/plain")],
        "hello\n",
        false,
    );
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n",
    );

    // The connection is persistent: a second request gets a new stream id.
    send(
        &mut client,
        "GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    let req2 = handler.request();
    assert_eq!(req2.target, "/second");
    assert_ne!(req2.id, req.id);
    assert_eq!(req2.id.slot(), req.id.slot());
    // A late message for the finished stream is ignored.
    handler.respond(req.id, 500, "Stale", &[], "stale", false);
    handler.respond(req2.id, 404, "Not Found", &[], "", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    expect_quiet(&mut client, Duration::from_millis(200));
}

#[test]
fn content_length_from_handler_and_body_messages() {
    let mut handler = FakeHandler::bind("cl");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.respond(
        req.id,
        200,
        "OK",
        &[
            ("Content-Type", "text/plain"),
            ("Content-Length", "10"),
            ("Connection", "close"),
            ("Keep-Alive", "x"),
        ],
        "hello",
        true,
    );
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello",
    );
    handler.body(req.id, b"world", false);
    expect_bytes(&mut client, "world");
    // Still persistent (the handler's Connection header is not the client's business).
    send(&mut client, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    assert_eq!(req.target, "/2");
}

#[test]
fn streamed_response_is_chunked_with_both_headers() {
    let mut handler = FakeHandler::bind("chunked");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.respond(
        req.id,
        200,
        "OK",
        &[("Content-Type", "text/plain"), ("X-A", "1")],
        "hello",
        true,
    );
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nConnection: Transfer-Encoding\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    );
    handler.body(req.id, b"", true);
    handler.body(req.id, b"0123456789abcdefg", true);
    expect_bytes(&mut client, "11\r\n0123456789abcdefg\r\n");
    // Credits for the written body bytes come back while the response is open (small amounts
    // are held for up to 20 ms and returned together).
    let mut credited = 0;
    while credited < 5 + 17 {
        match handler.next_matching(|m| matches!(m, ToHandler::Credit(_))) {
            ToHandler::Credit(c) => {
                assert_eq!(c.id, req.id);
                credited += c.bytes;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(credited, 5 + 17);
    handler.body(req.id, b"", false);
    expect_bytes(&mut client, "0\r\n\r\n");
}

#[test]
fn http10_keep_alive_and_close_delimited() {
    let mut handler = FakeHandler::bind("http10");
    let cm = Connmgr::start(&mut handler, &[]);

    let mut client = cm.connect();
    send(
        &mut client,
        "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let req = handler.request();
    assert_eq!(req.version, HttpVersion::Http10);
    handler.respond(
        req.id,
        200,
        "OK",
        &[("Content-Type", "text/plain")],
        "hi\n",
        false,
    );
    expect_bytes(
        &mut client,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nhi\n",
    );
    // Unknown length on a keep-alive 1.0 request: close-delimited, keep-alive dropped.
    send(
        &mut client,
        "GET /ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let req = handler.request();
    handler.respond(
        req.id,
        200,
        "OK",
        &[("Content-Type", "text/plain")],
        "hello",
        true,
    );
    handler.body(req.id, b"world", false);
    expect_bytes(
        &mut client,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhelloworld",
    );
    expect_eof(&mut client);

    // Plain 1.0: known length, then close.
    let mut client = cm.connect();
    send(&mut client, "GET /plain HTTP/1.0\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "abc", false);
    expect_bytes(
        &mut client,
        "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    );
    expect_eof(&mut client);
}

#[test]
fn http11_connection_close() {
    let mut handler = FakeHandler::bind("close11");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "", true);
    handler.body(req.id, b"x", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: Transfer-Encoding\r\n\
         Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    );
    expect_eof(&mut client);
}

#[test]
fn head_and_bodiless_statuses() {
    let mut handler = FakeHandler::bind("head");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();

    send(&mut client, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    assert_eq!(req.method, "HEAD");
    // Even a body from the handler is not written for HEAD.
    handler.respond(req.id, 200, "OK", &[("Content-Length", "3")], "abc", false);
    expect_bytes(&mut client, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");

    send(&mut client, "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 204, "No Content", &[("X-A", "1")], "", false);
    expect_bytes(&mut client, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");

    send(&mut client, "GET /304 HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.respond(
        req.id,
        304,
        "Not Modified",
        &[("X-A", "1"), ("Content-Length", "10")],
        "",
        false,
    );
    expect_bytes(&mut client, "HTTP/1.1 304 Not Modified\r\nX-A: 1\r\n\r\n");

    // The connection is still in sync: nothing stray was written.
    send(&mut client, "GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "z", false);
    expect_bytes(&mut client, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    expect_quiet(&mut client, Duration::from_millis(200));
}

#[test]
fn pipelined_requests_are_served_one_at_a_time() {
    let mut handler = FakeHandler::bind("pipeline");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(
        &mut client,
        "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let first = handler.request();
    assert_eq!(first.target, "/1");
    // The second request waits until the first response is written.
    let early = handler.collect_for(Duration::from_millis(300));
    assert!(
        !early.iter().any(|m| matches!(m, ToHandler::Request(_))),
        "second request sent too early: {early:?}"
    );
    handler.respond(first.id, 200, "OK", &[], "one", false);
    let second = handler.request();
    assert_eq!(second.target, "/2");
    assert_eq!(&second.body[..], b"abc");
    assert!(!second.more);
    assert_ne!(second.id, first.id);
    handler.respond(second.id, 200, "OK", &[], "two", false);
    let third = handler.request();
    assert_eq!(third.target, "/3");
    handler.respond(third.id, 200, "OK", &[], "three", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none\
         HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo\
         HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthree",
    );
}

#[test]
fn chunked_request_body_is_dechunked() {
    let mut handler = FakeHandler::bind("reqchunked");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(
        &mut client,
        "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    );
    let req = handler.request();
    assert_eq!(header(&req, "transfer-encoding"), Some("chunked"));
    assert!(req.more);
    let mut body = req.body.to_vec();
    std::thread::sleep(Duration::from_millis(100));
    send(
        &mut client,
        "lo\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    );
    loop {
        match handler.next() {
            ToHandler::Body(b) => {
                assert_eq!(b.id, req.id);
                body.extend_from_slice(&b.data);
                if !b.more {
                    break;
                }
            }
            other => panic!("expected body, got {other:?}"),
        }
    }
    assert_eq!(body, b"hello world");
    handler.respond(req.id, 201, "Created", &[], "", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
}

#[test]
fn expect_100_continue() {
    let mut handler = FakeHandler::bind("continue");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(
        &mut client,
        "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    expect_bytes(&mut client, "HTTP/1.1 100 Continue\r\n\r\n");
    let req = handler.request();
    assert!(req.more);
    assert!(req.body.is_empty());
    send(&mut client, "hello");
    match handler.next() {
        ToHandler::Body(b) => {
            assert_eq!(&b.data[..], b"hello");
            assert!(!b.more);
        }
        other => panic!("{other:?}"),
    }
    handler.respond(req.id, 200, "OK", &[], "ok", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
}

fn bad_request_text(body: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn assert_rejected(handler: &mut FakeHandler, cm: &Connmgr, request: &[u8], body: &str) {
    use std::io::Write;
    let mut client = cm.connect();
    client.write_all(request).unwrap();
    expect_bytes(&mut client, &bad_request_text(body));
    expect_eof(&mut client);
    let seen = handler.collect_for(Duration::from_millis(100));
    assert!(
        !seen.iter().any(|m| matches!(m, ToHandler::Request(_))),
        "bad request reached the handler: {seen:?}"
    );
}

#[test]
fn bad_requests_get_400_and_never_reach_the_handler() {
    let mut handler = FakeHandler::bind("bad");
    let cm = Connmgr::start(&mut handler, &[]);

    let mut oversize = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    oversize.resize(9000, b'a');
    oversize.extend_from_slice(b"\r\n\r\n");
    assert_rejected(
        &mut handler,
        &cm,
        &oversize,
        "Request header size exceeded limit of 8192 bytes.\n",
    );

    assert_rejected(
        &mut handler,
        &cm,
        b"GARBAGE\r\n\r\n",
        "Failed to parse request: invalid token\n",
    );
    assert_rejected(
        &mut handler,
        &cm,
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "Failed to parse request: invalid HTTP version\n",
    );
    assert_rejected(
        &mut handler,
        &cm,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "Failed to parse request: both Content-Length and Transfer-Encoding present\n",
    );
    assert_rejected(
        &mut handler,
        &cm,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "Failed to parse request: invalid Content-Length\n",
    );
    assert_rejected(
        &mut handler,
        &cm,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "Failed to parse request: unsupported Transfer-Encoding\n",
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(4096));
    assert_rejected(
        &mut handler,
        &cm,
        long_uri.as_bytes(),
        "Request URI exceeded limit of 4096 bytes.\n",
    );
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..65 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_rejected(
        &mut handler,
        &cm,
        many.as_bytes(),
        "Failed to parse request: too many headers\n",
    );

    // The process is still serving.
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[], "", false);
    expect_bytes(&mut client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn bad_chunk_after_the_head_is_400_and_closed_for_the_handler() {
    let mut handler = FakeHandler::bind("badchunk");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(
        &mut client,
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let req = handler.request();
    send(&mut client, "zz\r\n");
    match handler.next() {
        ToHandler::Closed(c) => {
            assert_eq!(c.id, req.id);
            assert_eq!(c.reason, holdfast_proto::internal::CloseReason::BadRequest);
        }
        other => panic!("{other:?}"),
    }
    expect_bytes(
        &mut client,
        &bad_request_text("Failed to parse request: invalid chunk size\n"),
    );
    expect_eof(&mut client);
}

#[test]
fn unusable_handler_response_is_502() {
    let mut handler = FakeHandler::bind("bad502");
    let cm = Connmgr::start(&mut handler, &[]);
    let mut client = cm.connect();
    send(&mut client, "GET / HTTP/1.1\r\n\r\n");
    let req = handler.request();
    handler.respond(req.id, 200, "OK", &[("X", "a\r\nInjected: yes")], "", false);
    expect_bytes(
        &mut client,
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\
         Content-Length: 32\r\n\r\nError while proxying to origin.\n",
    );
    expect_eof(&mut client);
    assert!(matches!(handler.next(), ToHandler::Closed(c) if c.id == req.id));
}
