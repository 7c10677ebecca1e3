//! End-to-end tests of `holdfast-handler` with this test playing the connmgr.

mod support;

use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::{Body, CloseReason, Closed, StreamId, ToConnmgr, ToHandler};

use support::{closed_port, header, ok_text, request, Backend, Connmgr, Handler, Reply};

fn route_to(port: u16) -> String {
    format!("* 127.0.0.1:{port}")
}

#[test]
fn plain_get_is_proxied_and_the_connection_reused() {
    let backend = Backend::start(ok_text("hello"));
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");

    for id in [1, 2] {
        cm.send(vec![ToHandler::Request(request(
            id,
            "GET",
            "/echo?x=1",
            &[("Host", "example.com"), ("User-Agent", "test")],
        ))]);
        let (head, body) = cm.response(StreamId(id));
        assert_eq!(head.code, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(body, b"hello");
        assert_eq!(header(&head, "Content-Length").as_deref(), Some("5"));
        assert_eq!(header(&head, "Content-Type").as_deref(), Some("text/plain"));
        assert_eq!(header(&head, "X-Custom").as_deref(), Some("a"));
        assert_eq!(header(&head, "Connection"), None);
        assert_eq!(header(&head, "Keep-Alive"), None);
    }
    let reqs = backend.wait_requests(2);
    assert_eq!(reqs[0].request_line(), "GET /echo?x=1 HTTP/1.1");
    assert_eq!(
        reqs[1].conn, reqs[0].conn,
        "second request reuses the pooled connection"
    );
    let log = handler.wait_log(&format!(
        "GET http://example.com/echo?x=1 -> 127.0.0.1:{} code=200 5",
        backend.port
    ));
    assert!(log.contains("[INFO] "), "Pushpin log format: {log}");
}

#[test]
fn request_body_streams_in_several_messages_with_credits() {
    let backend = Backend::start(ok_text("done"));
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let id = StreamId(7);

    let mut head = request(
        7,
        "POST",
        "/upload",
        &[("Host", "h"), ("Content-Length", "15")],
    );
    head.body = Bytes::from_static(b"hello");
    head.more = true;
    cm.send(vec![ToHandler::Request(head)]);
    // Credit comes back as soon as the first bytes are handed to the backend connection.
    match cm.expect("credit") {
        ToConnmgr::Credit(c) => assert_eq!((c.id, c.bytes), (id, 5)),
        other => panic!("expected credit, got {other:?}"),
    }
    cm.send(vec![ToHandler::Body(Body {
        id,
        data: Bytes::from_static(b" world"),
        more: true,
    })]);
    match cm.expect("credit") {
        ToConnmgr::Credit(c) => assert_eq!((c.id, c.bytes), (id, 6)),
        other => panic!("expected credit, got {other:?}"),
    }
    cm.send(vec![ToHandler::Body(Body {
        id,
        data: Bytes::from_static(b"!!!!"),
        more: false,
    })]);
    let (head, body) = cm.response(id);
    assert_eq!((head.code, body.as_slice()), (200, &b"done"[..]));
    let req = &backend.wait_requests(1)[0];
    assert_eq!(req.body, b"hello world!!!!");
    assert_eq!(req.header("Content-Length").as_deref(), Some("15"));
    assert_eq!(req.header("Transfer-Encoding"), None);
}

#[test]
fn chunked_request_body_stays_chunked() {
    let backend = Backend::start(ok_text("ok"));
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let id = StreamId(3);
    let mut head = request(
        3,
        "PUT",
        "/c",
        &[("Host", "h"), ("Transfer-Encoding", "chunked")],
    );
    head.body = Bytes::from_static(b"abc");
    head.more = true;
    cm.send(vec![
        ToHandler::Request(head),
        ToHandler::Body(Body {
            id,
            data: Bytes::from_static(b"def"),
            more: false,
        }),
    ]);
    let (head, body) = cm.response(id);
    assert_eq!((head.code, body.as_slice()), (200, &b"ok"[..]));
    let req = &backend.wait_requests(1)[0];
    assert_eq!(req.body, b"abcdef");
    assert_eq!(req.header("Transfer-Encoding").as_deref(), Some("chunked"));
    assert_eq!(req.header("Content-Length"), None);
}

#[test]
fn large_response_never_exceeds_credits() {
    const CHUNKS: usize = 64;
    const SIZE: usize = 16 * 1024;
    const GRANT: u32 = 10_000;
    let backend = Backend::start(Reply::Chunked {
        chunks: CHUNKS,
        size: SIZE,
    });
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let id = StreamId(9);
    let mut head = request(9, "GET", "/big", &[("Host", "h")]);
    head.credits = GRANT;
    cm.send(vec![ToHandler::Request(head)]);

    let mut granted = u64::from(GRANT);
    let mut received: Vec<u8> = Vec::new();
    let mut more = true;
    let mut saw_head = false;
    while more {
        let msg = cm.expect("response data");
        let (data, m) = match msg {
            ToConnmgr::Response(h) => {
                assert!(!saw_head);
                saw_head = true;
                assert_eq!(h.code, 200);
                assert_eq!(header(&h, "Transfer-Encoding"), None);
                (h.body, h.more)
            }
            ToConnmgr::Body(b) => {
                assert!(saw_head);
                (b.data, b.more)
            }
            other => panic!("unexpected {other:?}"),
        };
        received.extend_from_slice(&data);
        more = m;
        assert!(
            received.len() as u64 <= granted,
            "handler sent {} bytes with only {granted} granted",
            received.len()
        );
        if more && received.len() as u64 == granted {
            // Make sure nothing more arrives without credit, then grant more.
            cm.expect_silence(Duration::from_millis(30));
            cm.credit(id, GRANT);
            granted += u64::from(GRANT);
        }
    }
    assert_eq!(received.len(), CHUNKS * SIZE);
    assert!(received
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 251) as u8));
    handler.wait_log(&format!("code=200 {}", CHUNKS * SIZE));
}

#[test]
fn backend_down_gives_502_text() {
    let port = closed_port();
    let handler = Handler::start(&[route_to(port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    let (head, body) = cm.response(StreamId(1));
    assert_eq!((head.code, head.reason.as_str()), (502, "Bad Gateway"));
    assert_eq!(header(&head, "Content-Type").as_deref(), Some("text/plain"));
    assert_eq!(body, b"Error while proxying to origin.\n");
    handler.wait_log(&format!("GET http://h/ -> 127.0.0.1:{port} code=502 32"));
}

#[test]
fn debug_route_lists_the_targets_tried() {
    let (a, b) = (closed_port(), closed_port());
    let handler = Handler::start(&[format!("*,debug 127.0.0.1:{a} 127.0.0.1:{b}")], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    let (head, body) = cm.response(StreamId(1));
    assert_eq!(head.code, 502);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("Unable to connect to any targets. Tried: 127.0.0.1:{a}, 127.0.0.1:{b}\n")
    );
}

#[test]
fn falls_through_to_the_second_target() {
    let backend = Backend::start(ok_text("second"));
    let dead = closed_port();
    let handler = Handler::start(
        &[format!("* 127.0.0.1:{dead} 127.0.0.1:{}", backend.port)],
        None,
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let mut head = request(1, "POST", "/p", &[("Host", "h"), ("Content-Length", "3")]);
    head.body = Bytes::from_static(b"abc");
    cm.send(vec![ToHandler::Request(head)]);
    let (head, body) = cm.response(StreamId(1));
    assert_eq!((head.code, body.as_slice()), (200, &b"second"[..]));
    assert_eq!(
        backend.wait_requests(1)[0].body,
        b"abc",
        "body intact after fall-through"
    );
}

#[test]
fn route_not_found() {
    let handler = Handler::start(&["example.com 127.0.0.1:1".to_string()], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        4,
        "GET",
        "/",
        &[("Host", "other.com:8080")],
    ))]);
    let (head, body) = cm.response(StreamId(4));
    assert_eq!((head.code, head.reason.as_str()), (502, "Bad Gateway"));
    assert_eq!(header(&head, "Content-Type").as_deref(), Some("text/plain"));
    assert_eq!(body, b"Route not found\n");
}

#[test]
fn test_target() {
    let dead = closed_port();
    let handler = Handler::start(
        &[
            "*,path_beg=/t/ test".to_string(),
            format!("* 127.0.0.1:{dead}"),
        ],
        None,
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let cases: [(u64, &str, &str, u16, &[u8]); 5] = [
        (
            1,
            "GET",
            "/t/",
            200,
            b"Hello from the Holdfast test handler!\n",
        ),
        (
            2,
            "GET",
            "/t/?x=1",
            200,
            b"Hello from the Holdfast test handler!\n",
        ),
        (3, "GET", "/t/foo", 404, b"no such test resource\n"),
        (4, "GET", "/t", 502, b"Error while proxying to origin.\n"),
        (5, "HEAD", "/t/", 200, b""),
    ];
    for (id, method, path, code, expected) in cases {
        cm.send(vec![ToHandler::Request(request(
            id,
            method,
            path,
            &[("Host", "h")],
        ))]);
        let (head, body) = cm.response(StreamId(id));
        assert_eq!(head.code, code, "{method} {path}");
        assert_eq!(body, expected, "{method} {path}");
        assert_eq!(header(&head, "Content-Type").as_deref(), Some("text/plain"));
        if method == "HEAD" {
            assert_eq!(header(&head, "Content-Length").as_deref(), Some("38"));
        }
    }
    cm.send(vec![ToHandler::Request(request(
        6,
        "GET",
        "/t/stream",
        &[("Host", "h")],
    ))]);
    match cm.expect("stream hold head") {
        ToConnmgr::Response(head) => {
            assert_eq!(head.id, StreamId(6));
            assert_eq!(head.code, 200);
            assert!(head.more, "a stream hold keeps the response open");
            assert_eq!(head.body.as_ref(), b"[stream opened]\n");
            assert_eq!(header(&head, "Grip-Hold"), None);
            assert_eq!(header(&head, "Content-Length"), None);
        }
        other => panic!("expected the stream head, got {other:?}"),
    }
    handler.wait_log("GET http://h/t/foo -> test code=404 22");
}

#[test]
fn request_headers_are_rewritten() {
    let backend = Backend::start(ok_text("ok"));
    let port = backend.port;
    let config = "[global]\nrundir={dir}/run\n[proxy]\nx_forwarded_for=append\nset_x_forwarded_protocol=true\n";
    let handler = Handler::start(
        &[
            format!("a.example,as_host=rewritten.example:81,header=X-Route:yes 127.0.0.1:{port}"),
            format!("b.example 127.0.0.1:{port},host=target.example"),
            format!("* 127.0.0.1:{port}"),
        ],
        Some(config),
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let mut head = request(
        1,
        "GET",
        "/h",
        &[
            ("Host", "example.com:8000"),
            ("User-Agent", "test-agent"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Grip-Sig", "forged"),
            ("Grip-Foo", "x"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "300"),
            ("Expect", "100-continue"),
            ("Accept-Encoding", "gzip"),
            ("TE", "trailers"),
            ("X-Forwarded-Proto", "http"),
            ("x-lower-case", "kept"),
        ],
    );
    head.secure = true;
    cm.send(vec![ToHandler::Request(head)]);
    assert_eq!(cm.response(StreamId(1)).0.code, 200);
    cm.send(vec![ToHandler::Request(request(
        2,
        "GET",
        "/a",
        &[("Host", "a.example")],
    ))]);
    assert_eq!(cm.response(StreamId(2)).0.code, 200);
    cm.send(vec![ToHandler::Request(request(
        3,
        "GET",
        "/b",
        &[("Host", "b.example:9")],
    ))]);
    assert_eq!(cm.response(StreamId(3)).0.code, 200);

    let reqs = backend.wait_requests(3);
    let r = &reqs[0];
    let names: Vec<String> = r.headers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "Host", "Host first: {names:?}");
    assert_eq!(r.header("Host").as_deref(), Some("example.com:8000"));
    assert_eq!(r.header("User-Agent").as_deref(), Some("test-agent"));
    assert_eq!(
        r.header("X-Forwarded-For").as_deref(),
        Some("1.2.3.4, 10.9.8.7")
    );
    assert_eq!(r.header("X-Forwarded-Proto").as_deref(), Some("https"));
    assert_eq!(r.header("X-Forwarded-Protocol").as_deref(), Some("https"));
    assert!(
        names.contains(&"X-Lower-Case".to_string()),
        "title case: {names:?}"
    );
    for gone in [
        "Grip-Sig",
        "Grip-Foo",
        "Connection",
        "X-Hop",
        "Keep-Alive",
        "Expect",
        "Accept-Encoding",
        "TE",
    ] {
        assert_eq!(r.header(gone), None, "{gone} must not reach the backend");
    }
    assert_eq!(
        r.headers()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("X-Forwarded-Proto"))
            .count(),
        1
    );
    assert_eq!(
        reqs[1].header("Host").as_deref(),
        Some("rewritten.example:81")
    );
    assert_eq!(reqs[1].header("X-Route").as_deref(), Some("yes"));
    assert_eq!(reqs[2].header("Host").as_deref(), Some("target.example"));
}

#[test]
fn closed_cancels_the_backend_request() {
    let backend = Backend::start(Reply::Hang);
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        5,
        "GET",
        "/hang",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    cm.send(vec![ToHandler::Closed(Closed {
        id: StreamId(5),
        reason: CloseReason::ClientGone,
    })]);
    backend.wait_closed(1);
    cm.expect_silence(Duration::from_millis(100));
    handler.wait_log("GET http://h/hang -> 127.0.0.1");
    assert!(handler.log().contains(" error"));
}

#[test]
fn worker_restart_cancels_its_streams() {
    let backend = Backend::start(Reply::Hang);
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        5,
        "GET",
        "/hang",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    // Same identity, new epoch: the connmgr restarted.
    cm.epoch += 1;
    cm.send(vec![ToHandler::Heartbeat]);
    backend.wait_closed(1);
    handler.wait_log("restarted");
}

#[test]
fn heartbeats_flow_when_quiet() {
    let handler = Handler::start(&["* test".to_string()], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-hb");
    // Keep the handler from timing us out while we listen.
    let beats = cm.count_heartbeats(Duration::from_millis(2600));
    assert!((2..=3).contains(&beats), "{beats} heartbeats in 2.6 s");
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let backend = Backend::start(Reply::Delayed(
        Duration::from_millis(500),
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_vec(),
    ));
    let mut handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/slow",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    handler.signal("TERM");
    handler.wait_log("stopping");
    // A new request during the drain is refused.
    cm.send(vec![ToHandler::Request(request(
        2,
        "GET",
        "/new",
        &[("Host", "h")],
    ))]);
    let mut got_close = false;
    let mut got_body = false;
    while !(got_close && got_body) {
        match cm.expect("drain traffic") {
            ToConnmgr::Close(c) => {
                assert_eq!((c.id, c.reason), (StreamId(2), CloseReason::Shutdown));
                got_close = true;
            }
            ToConnmgr::Response(h) => {
                assert_eq!((h.id, h.code), (StreamId(1), 200));
                assert_eq!(&h.body[..], b"slow");
                assert!(!h.more);
                got_body = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(handler.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn backend_failure_after_the_head_closes_the_stream() {
    let backend = Backend::start(Reply::FullThenClose(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec(),
    ));
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    let mut body = Vec::new();
    match cm.expect("head") {
        ToConnmgr::Response(h) => {
            assert_eq!(h.code, 200);
            assert_eq!(header(&h, "Content-Length").as_deref(), Some("100"));
            assert!(h.more);
            body.extend_from_slice(&h.body);
        }
        other => panic!("expected head, got {other:?}"),
    }
    loop {
        match cm.expect("body or close") {
            ToConnmgr::Body(b) => {
                assert!(b.more, "a truncated body must not end cleanly");
                body.extend_from_slice(&b.data);
            }
            ToConnmgr::Close(c) => {
                assert_eq!((c.id, c.reason), (StreamId(1), CloseReason::BackendError));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(body, b"0123456789");
    handler.wait_log("GET http://h/ -> ");
    assert!(handler.log().contains(" error"));
}

#[test]
fn tls_targets_use_sni_and_honour_insecure() {
    let dir = support::TempDir::new();
    let Some((cert, key)) = support::self_signed(&dir.0) else {
        eprintln!("skipped: openssl not available to make a test certificate");
        return;
    };
    let backend = Backend::start_tls(ok_text("secure"), &cert, &key);
    let port = backend.port;
    let handler = Handler::start(
        &[
            format!("verified.example 127.0.0.1:{port},ssl"),
            format!("ip.example 127.0.0.1:{port},ssl,insecure,trust_connect_host"),
            format!("* 127.0.0.1:{port},ssl,insecure"),
        ],
        None,
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");

    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/s",
        &[("Host", "secure.example")],
    ))]);
    let (head, body) = cm.response(StreamId(1));
    assert_eq!((head.code, body.as_slice()), (200, &b"secure"[..]));
    assert_eq!(
        backend.wait_requests(1)[0].header("Host").as_deref(),
        Some("secure.example")
    );
    assert_eq!(
        backend.server_names.lock().unwrap()[0].as_deref(),
        Some("secure.example"),
        "SNI is the request host"
    );

    // A self-signed certificate fails verification: like a connect failure, 502.
    cm.send(vec![ToHandler::Request(request(
        2,
        "GET",
        "/v",
        &[("Host", "verified.example")],
    ))]);
    let (head, body) = cm.response(StreamId(2));
    assert_eq!(head.code, 502);
    assert_eq!(body, b"Error while proxying to origin.\n");

    // trust_connect_host: the name is the connect host, an IP, for which no SNI is sent.
    cm.send(vec![ToHandler::Request(request(
        3,
        "GET",
        "/i",
        &[("Host", "ip.example")],
    ))]);
    assert_eq!(cm.response(StreamId(3)).0.code, 200);
    let names = backend.server_names.lock().unwrap().clone();
    assert_eq!(names.last().cloned(), Some(None), "{names:?}");
}

#[test]
fn routes_file_reloads_on_change_and_sighup() {
    let dead = closed_port();
    let config = "[global]\nrundir={dir}/run\n[proxy]\nroutesfile=routes\n";
    // The routes file lives next to the config (relative `routesfile`).
    let handler = Handler::start_with_files(
        &[],
        Some(config),
        &[("routes", format!("* 127.0.0.1:{dead}\n"))],
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    let ask = |cm: &mut Connmgr, id: u64| {
        cm.send(vec![ToHandler::Request(request(
            id,
            "GET",
            "/",
            &[("Host", "h")],
        ))]);
        cm.response(StreamId(id))
    };
    assert_eq!(ask(&mut cm, 1).0.code, 502);

    std::fs::write(handler.dir.0.join("routes"), "* test\n").unwrap();
    handler.wait_log("routes reloaded from");
    let (head, body) = ask(&mut cm, 2);
    assert_eq!(head.code, 200);
    assert_eq!(body, b"Hello from the Holdfast test handler!\n");

    std::fs::write(handler.dir.0.join("routes"), "example.com test\n").unwrap();
    handler.signal("HUP");
    handler.wait_log("SIGHUP: reloading routes");
    let (head, body) = ask(&mut cm, 3);
    assert_eq!(head.code, 502);
    assert_eq!(body, b"Route not found\n");
}

#[test]
fn second_signal_exits_at_once() {
    let backend = Backend::start(Reply::Hang);
    let mut handler = Handler::start(&[route_to(backend.port)], None);
    let cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    handler.signal("TERM");
    handler.wait_log("stopping");
    let start = std::time::Instant::now();
    handler.signal("INT");
    assert_eq!(handler.wait_exit(Duration::from_secs(3)), Some(1));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn shutdown_deadline_aborts_remaining_sessions() {
    let backend = Backend::start(Reply::Hang);
    let mut handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    let start = std::time::Instant::now();
    handler.signal("TERM");
    match cm.next(Duration::from_secs(8)) {
        Some(ToConnmgr::Close(c)) => {
            assert_eq!((c.id, c.reason), (StreamId(1), CloseReason::Shutdown))
        }
        other => panic!("expected Close(Shutdown), got {other:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(4500),
        "closed after {waited:?}"
    );
    assert_eq!(handler.wait_exit(Duration::from_secs(5)), Some(0));
    backend.wait_closed(1);
}

#[test]
fn bad_input_is_survived() {
    let backend = Backend::start(Reply::Hang);
    let handler = Handler::start(
        &["*,path_beg=/t/ test".to_string(), route_to(backend.port)],
        None,
    );
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    cm.send_raw(b"\xc1 not msgpack");
    cm.send_raw(b"");
    // Messages for streams that do not exist.
    cm.send(vec![
        ToHandler::Body(Body {
            id: StreamId(99),
            data: Bytes::from_static(b"x"),
            more: false,
        }),
        ToHandler::Credit(holdfast_proto::internal::Credit {
            id: StreamId(99),
            bytes: 5,
        }),
        ToHandler::Closed(Closed {
            id: StreamId(99),
            reason: CloseReason::ClientGone,
        }),
    ]);
    // A target that is not a path.
    cm.send(vec![ToHandler::Request(request(1, "GET", "nonsense", &[]))]);
    let (head, body) = cm.response(StreamId(1));
    assert_eq!(
        (head.code, body.as_slice()),
        (400, &b"Invalid request.\n"[..])
    );
    // A method hyper refuses.
    cm.send(vec![ToHandler::Request(request(
        2,
        "G\u{1}T",
        "/",
        &[("Host", "h")],
    ))]);
    assert_eq!(cm.response(StreamId(2)).0.code, 400);
    // A host with spaces.
    cm.send(vec![ToHandler::Request(request(
        3,
        "GET",
        "/",
        &[("Host", "a b")],
    ))]);
    assert_eq!(cm.response(StreamId(3)).0.code, 400);
    // More request body than the credit window allows: the stream is closed.
    let mut head = request(4, "POST", "/", &[("Host", "h")]);
    head.more = true;
    cm.send(vec![
        ToHandler::Request(head),
        ToHandler::Body(Body {
            id: StreamId(4),
            data: Bytes::from(vec![b'x'; 65_537]),
            more: true,
        }),
    ]);
    loop {
        match cm.expect("close") {
            ToConnmgr::Close(c) => {
                assert_eq!((c.id, c.reason), (StreamId(4), CloseReason::BadRequest));
                break;
            }
            ToConnmgr::Credit(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Odd header bytes do not disturb the handler (forwarding drops invalid values; see the
    // unit tests of the request builder).
    cm.send(vec![ToHandler::Request(request(
        5,
        "GET",
        "/t/",
        &[("Host", "h"), ("X-Bad", "a\r\nInjected: 1")],
    ))]);
    assert_eq!(cm.response(StreamId(5)).0.code, 200);
    assert!(handler.log().contains("dropping bad packet"));
}

#[test]
fn backend_closing_pooled_connections_is_handled() {
    // Each response is complete but the backend then closes without saying so: the pooled
    // connection is dead by the next request, which must still succeed.
    let backend = Backend::start(Reply::FullThenClose(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ));
    let handler = Handler::start(&[route_to(backend.port)], None);
    let mut cm = Connmgr::connect(&handler.spec, "cm-0");
    for id in 1..=5 {
        cm.send(vec![ToHandler::Request(request(
            id,
            "GET",
            "/",
            &[("Host", "h")],
        ))]);
        let (head, body) = cm.response(StreamId(id));
        assert_eq!(
            (head.code, body.as_slice()),
            (200, &b"ok"[..]),
            "request {id}"
        );
    }
    assert_eq!(backend.wait_requests(5).len(), 5);
}

#[test]
fn silent_worker_times_out_and_its_streams_are_cancelled() {
    let backend = Backend::start(Reply::Hang);
    let handler = Handler::start(&[route_to(backend.port)], None);
    let cm = Connmgr::connect(&handler.spec, "cm-quiet");
    let start = std::time::Instant::now();
    cm.send(vec![ToHandler::Request(request(
        1,
        "GET",
        "/",
        &[("Host", "h")],
    ))]);
    backend.wait_requests(1);
    // This fake worker never sends heartbeats: after PEER_TIMEOUT_MS it is considered gone.
    let deadline = start + Duration::from_secs(15);
    while backend.closed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "stream not cancelled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(9_500),
        "cancelled after {waited:?}"
    );
    handler.wait_log("silent too long");
}
