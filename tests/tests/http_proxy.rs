//! Plain HTTP reverse proxying through the real processes: framing, bodies, keep-alive,
//! pipelining, headers sent to the backend, and the error responses clients see.

use std::time::Duration;

use holdfast_tests::client::get;
use holdfast_tests::{Backend, BackendResponse, Client, Holdfast};

fn proxy_to(backend: &Backend) -> Holdfast {
    Holdfast::builder()
        .route(&format!("* 127.0.0.1:{}", backend.port))
        .start()
}

#[test]
fn get_is_proxied_with_status_headers_and_body() {
    let backend = Backend::start(|req| BackendResponse::Full {
        code: 201,
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("X-Custom".into(), "yes".into()),
        ],
        body: format!("you asked for {}\n", req.target).into_bytes(),
    });
    let holdfast = proxy_to(&backend);
    let resp = get(holdfast.port, "/some/path?q=1");
    assert_eq!(resp.code, 201);
    assert_eq!(resp.reason, "Created");
    assert_eq!(resp.header("X-Custom"), Some("yes"));
    assert_eq!(resp.header("Content-Length"), Some("29"));
    assert_eq!(resp.text(), "you asked for /some/path?q=1\n");
    let seen = backend.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/some/path?q=1");
}

#[test]
fn backend_sees_pushpin_request_headers() {
    let backend = Backend::echo();
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    client.send(
        format!(
            "GET /h HTTP/1.1\r\nHost: example.test:{}\r\nX-Forwarded-For: 1.2.3.4\r\nGrip-Foo: x\r\n\
             Accept-Encoding: gzip\r\nKeep-Alive: 5\r\nX-Keep: kept\r\nConnection: close\r\n\r\n",
            holdfast.port
        )
        .as_bytes(),
    );
    assert_eq!(client.read_response(false).code, 200);
    let seen = backend.last();
    assert_eq!(
        seen.header("Host"),
        Some(format!("example.test:{}", holdfast.port).as_str())
    );
    assert_eq!(seen.header("X-Forwarded-For"), Some("1.2.3.4"));
    assert_eq!(seen.header("X-Keep"), Some("kept"));
    for removed in ["Grip-Foo", "Accept-Encoding", "Keep-Alive", "Connection"] {
        assert!(
            !seen.has(removed),
            "{removed} must not reach the backend: {:?}",
            seen.headers
        );
    }
}

#[test]
fn x_forwarded_for_rules_apply() {
    let backend = Backend::echo();
    let holdfast = Holdfast::builder()
        .route(&format!("* 127.0.0.1:{}", backend.port))
        .config("proxy", "x_forwarded_for=truncate:0,append")
        .start();
    let mut client = Client::connect(holdfast.port);
    client.send(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(client.read_response(false).code, 200);
    assert_eq!(backend.last().header("X-Forwarded-For"), Some("127.0.0.1"));
}

#[test]
fn large_bodies_stream_both_ways() {
    let backend = Backend::echo();
    let holdfast = proxy_to(&backend);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = Client::connect(holdfast.port);
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    client.send(&request);
    let resp = client.read_response(false);
    assert_eq!(resp.code, 200);
    assert_eq!(resp.body.len(), body.len());
    assert!(resp.body == body, "echoed body differs");
    assert_eq!(backend.last().body.len(), body.len());
}

#[test]
fn chunked_request_body_is_forwarded() {
    let backend = Backend::echo();
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    client.send(
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
    );
    let resp = client.read_response(false);
    assert_eq!(resp.code, 200);
    assert_eq!(resp.text(), "hello, world");
    assert_eq!(backend.last().body, b"hello, world");
}

#[test]
fn unknown_length_response_is_chunked_like_pushpin() {
    let backend = Backend::start(|_| BackendResponse::Chunked {
        code: 200,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        chunks: vec![b"one\n".to_vec(), b"two\n".to_vec(), b"three\n".to_vec()],
        pause: Duration::from_millis(50),
    });
    let holdfast = proxy_to(&backend);
    let resp = get(holdfast.port, "/stream");
    assert_eq!(resp.code, 200);
    assert!(resp.chunked, "expected chunked framing: {:?}", resp.headers);
    // Pushpin's connection manager names Transfer-Encoding in Connection, and (the request asked
    // for it) also says close.
    assert_eq!(
        resp.headers_named("Connection"),
        vec!["close", "Transfer-Encoding"]
    );
    assert_eq!(resp.text(), "one\ntwo\nthree\n");
}

#[test]
fn http10_client_gets_length_or_close_delimited_body() {
    let backend = Backend::start(|req| {
        if req.target == "/stream" {
            BackendResponse::Chunked {
                code: 200,
                headers: vec![],
                chunks: vec![b"a".to_vec(), b"b".to_vec()],
                pause: Duration::from_millis(20),
            }
        } else {
            BackendResponse::text("fixed\n")
        }
    });
    let holdfast = proxy_to(&backend);

    // Keep-alive HTTP/1.0: Content-Length and Connection: keep-alive, then a second request.
    let mut client = Client::connect(holdfast.port);
    client.send(b"GET /fixed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = client.read_response(false);
    assert_eq!(resp.version, "HTTP/1.0");
    assert_eq!(resp.header("Connection"), Some("keep-alive"));
    assert_eq!(resp.text(), "fixed\n");
    client.send(b"GET /fixed HTTP/1.0\r\n\r\n");
    let resp = client.read_response(false);
    assert_eq!(resp.text(), "fixed\n");
    assert!(
        client.is_closed(),
        "non-persistent HTTP/1.0 connection must close"
    );

    // Unknown length for HTTP/1.0: no chunking, the body ends when the connection closes.
    let mut client = Client::connect(holdfast.port);
    client.send(b"GET /stream HTTP/1.0\r\n\r\n");
    let resp = client.read_response(false);
    assert!(!resp.chunked);
    assert_eq!(resp.header("Transfer-Encoding"), None);
    assert_eq!(resp.text(), "ab");
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let backend = Backend::start(|req| BackendResponse::text(&format!("{}\n", req.target)));
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    client.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    for n in 1..=3 {
        let resp = client.read_response(false);
        assert_eq!(resp.code, 200);
        assert_eq!(resp.text(), format!("/{n}\n"));
        assert_eq!(resp.header("Connection"), None);
    }
    client.send(b"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let resp = client.read_response(false);
    assert_eq!(resp.text(), "/4\n");
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn head_204_and_304_have_no_body() {
    let backend = Backend::start(|req| match req.target.as_str() {
        "/204" => BackendResponse::Full {
            code: 204,
            headers: vec![],
            body: vec![],
        },
        "/304" => BackendResponse::Full {
            code: 304,
            headers: vec![("ETag".into(), "\"x\"".into())],
            body: vec![],
        },
        _ => BackendResponse::text("body for get\n"),
    });
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    client.send(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let resp = client.read_response(true);
    assert_eq!(resp.code, 200);
    assert_eq!(resp.header("Content-Length"), Some("13"));
    for path in ["/204", "/304"] {
        client.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        let resp = client.read_response(false);
        assert_eq!(resp.code.to_string(), path[1..]);
        assert!(resp.body.is_empty());
    }
    // The connection is still usable: nothing stray was written after the bodiless responses.
    client.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(client.read_response(false).text(), "body for get\n");
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let backend = Backend::echo();
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    client
        .send(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = client.read_response(false);
    assert_eq!(interim.code, 100);
    client.send(b"ping");
    let resp = client.read_response(false);
    assert_eq!(resp.code, 200);
    assert_eq!(resp.text(), "ping");
    assert!(!backend.last().has("Expect"));
}

#[test]
fn every_method_is_proxied() {
    let backend = Backend::start(|req| BackendResponse::text(&req.method));
    let holdfast = proxy_to(&backend);
    let mut client = Client::connect(holdfast.port);
    for method in [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
    ] {
        client.send(
            format!("{method} /m HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
        assert_eq!(client.read_response(false).text(), method);
    }
}

#[test]
fn unreachable_backend_gives_502_and_targets_fall_through() {
    let backend = Backend::start(|_| BackendResponse::text("second\n"));
    let dead = holdfast_tests::free_port();
    let holdfast = Holdfast::builder()
        .route(&format!("*,path_beg=/dead 127.0.0.1:{dead}"))
        .route(&format!("* 127.0.0.1:{dead} 127.0.0.1:{}", backend.port))
        .start();
    let resp = get(holdfast.port, "/dead");
    assert_eq!(resp.code, 502);
    assert_eq!(resp.reason, "Bad Gateway");
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(resp.text(), "Error while proxying to origin.\n");
    let resp = get(holdfast.port, "/other");
    assert_eq!(resp.code, 200);
    assert_eq!(resp.text(), "second\n");
}

#[test]
fn debug_route_explains_the_502() {
    let dead = holdfast_tests::free_port();
    let holdfast = Holdfast::builder()
        .route(&format!("*,debug 127.0.0.1:{dead}"))
        .start();
    let resp = get(holdfast.port, "/");
    assert_eq!(resp.code, 502);
    assert_eq!(
        resp.text(),
        format!("Unable to connect to any targets. Tried: 127.0.0.1:{dead}\n")
    );
}

#[test]
fn no_matching_route_gives_route_not_found() {
    let backend = Backend::echo();
    let holdfast = Holdfast::builder()
        .route(&format!("only.example 127.0.0.1:{}", backend.port))
        .start();
    let resp = get(holdfast.port, "/");
    assert_eq!(resp.code, 502);
    assert_eq!(resp.text(), "Route not found\n");
}

#[test]
fn bad_requests_get_400_and_others_keep_being_served() {
    let backend = Backend::echo();
    let holdfast = proxy_to(&backend);

    let mut client = Client::connect(holdfast.port);
    client.send(b"GARBAGE\r\n\r\n");
    let resp = client.read_response(false);
    assert_eq!(resp.code, 400);
    assert!(
        resp.text().starts_with("Failed to parse request"),
        "{}",
        resp.text()
    );

    let mut client = Client::connect(holdfast.port);
    let big = "x".repeat(9000);
    client.send(format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let resp = client.read_response(false);
    assert_eq!(resp.code, 400);
    assert_eq!(
        resp.text(),
        "Request header size exceeded limit of 8192 bytes.\n"
    );

    // Request smuggling defence: both framings at once.
    let mut client = Client::connect(holdfast.port);
    client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(client.read_response(false).code, 400);

    let mut client = Client::connect(holdfast.port);
    client.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    // Either a 400 or a closed connection: the bad chunk must never reach the backend.
    let _ = client.try_read_response(false);

    let resp = get(holdfast.port, "/still-fine");
    assert_eq!(resp.code, 200);
    assert!(backend.requests().iter().all(|r| r.body != b"0\r\n\r\n"));
}

#[test]
fn client_disconnect_mid_response_does_not_hurt_others() {
    let backend = Backend::start(|req| {
        if req.target == "/slow" {
            BackendResponse::Chunked {
                code: 200,
                headers: vec![],
                chunks: (0..20).map(|_| vec![b'x'; 1000]).collect(),
                pause: Duration::from_millis(50),
            }
        } else {
            BackendResponse::text("ok\n")
        }
    });
    let holdfast = proxy_to(&backend);
    for _ in 0..5 {
        let mut client = Client::connect(holdfast.port);
        client.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
        std::thread::sleep(Duration::from_millis(80));
        drop(client);
    }
    let resp = get(holdfast.port, "/ok");
    assert_eq!(resp.text(), "ok\n");
}

#[test]
fn route_conditions_and_rewrites_apply() {
    let api = Backend::echo();
    let site = Backend::start(|_| BackendResponse::text("site\n"));
    let other = Backend::start(|_| BackendResponse::text("other domain\n"));
    let holdfast = Holdfast::builder()
        .route("# comments and blank lines are fine")
        .route("")
        // `header=User-Agent:` (empty value) removes the header; the target section is quoted.
        .route(&format!(
            "*,path_beg=/api/,replace_beg=/v1/,as_host=internal.test,header=X-Route:api,header=User-Agent: \"127.0.0.1:{}\"",
            api.port
        ))
        .route(&format!("* 127.0.0.1:{}", site.port))
        .route(&format!("other.test 127.0.0.1:{}", other.port))
        .start();

    let mut client = Client::connect(holdfast.port);
    client.send(b"GET /api/items?x=1 HTTP/1.1\r\nHost: public.test\r\nUser-Agent: curl\r\n\r\n");
    assert_eq!(client.read_response(false).code, 200);
    let seen = api.last();
    assert_eq!(seen.target, "/v1/items?x=1");
    assert_eq!(seen.header("Host"), Some("internal.test"));
    assert_eq!(seen.header("X-Route"), Some("api"));
    assert!(
        !seen.has("User-Agent"),
        "header=Name: with an empty value removes it"
    );

    client.send(b"GET /page HTTP/1.1\r\nHost: public.test\r\n\r\n");
    assert_eq!(client.read_response(false).text(), "site\n");
    client.send(b"GET /api/x HTTP/1.1\r\nHost: other.test:8080\r\n\r\n");
    assert_eq!(
        client.read_response(false).text(),
        "other domain\n",
        "an exact domain beats *"
    );
}
