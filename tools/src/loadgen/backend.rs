//! The embedded GRIP backend the scenarios put behind the proxy under test (`holdfast-loadgen
//! backend --listen ADDR`). Keep-alive HTTP/1.1, pipelining-safe, every answer built from the
//! request line alone:
//!
//! - `GET /stream?channel=X`: a stream hold, `Content-Type: text/event-stream`, `Grip-Hold:
//!   stream`, `Grip-Channel: X`, `Grip-Keep-Alive: :\n\n; format=cstring; timeout=55` (a literal
//!   backslash-n in the header), initial body `:ok\n\n`.
//! - `GET /poll?channel=X`: a response hold, `Grip-Hold: response`, `Grip-Channel: X`,
//!   `Grip-Timeout: 55`, body `timeout\n` (sent by the proxy on timeout).
//! - `GET /plain`: `hello\n`.
//! - `POST` with `Content-Type: application/websocket-events` (WebSocket-over-HTTP, for routes
//!   with `over_http`, reference §5.3), one answer event per request event:
//!   - on `/echo`, a plain echo server: `OPEN` → `OPEN`, `TEXT`/`BINARY` → the same message
//!     back, `CLOSE` → `CLOSE` with the same code; no GRIP (the `ws-echo` scenario);
//!   - on any other path, GRIP mode: `OPEN` → `OPEN`, `Sec-WebSocket-Extensions: grip` and the
//!     control message `c:{"type":"subscribe","channel":"X"}` (X from the `channel` query
//!     parameter, `test` without one; the `fanout --transport ws` and `ws-broadcast`
//!     subscribers); messages are echoed with the `m:` prefix GRIP mode requires, `CLOSE` →
//!     `CLOSE`.
//!
//!   `PING`, `PONG` and `DISCONNECT` get no answer; a body that does not parse gets `400`.
//!
//! The channel is used as sent (not percent-decoded); the scenarios use plain names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::http::{parse_request, simple_response, Request};
use super::ws::{encode_event, parse_events};

const WS_EVENTS: &str = "application/websocket-events";

/// The answer to one request.
pub fn respond(req: &Request) -> Vec<u8> {
    let channel = req.query("channel").unwrap_or("test");
    if req.method == "POST" && req.content_type.starts_with(WS_EVENTS) {
        return websocket_over_http(req, channel);
    }
    match (req.method.as_str(), req.path()) {
        ("GET", "/stream") => simple_response(
            "200 OK",
            &format!(
                "Content-Type: text/event-stream\r\nGrip-Hold: stream\r\nGrip-Channel: {channel}\r\nGrip-Keep-Alive: :\\n\\n; format=cstring; timeout=55\r\n"
            ),
            b":ok\n\n",
        ),
        ("GET", "/poll") => simple_response(
            "200 OK",
            &format!(
                "Content-Type: text/plain\r\nGrip-Hold: response\r\nGrip-Channel: {channel}\r\nGrip-Timeout: 55\r\n"
            ),
            b"timeout\n",
        ),
        ("GET", "/plain") => simple_response("200 OK", "Content-Type: text/plain\r\n", b"hello\n"),
        _ => simple_response("404 Not Found", "Content-Type: text/plain\r\n", b"Not Found\n"),
    }
}

/// The answer to one WebSocket-over-HTTP request (see the module doc).
fn websocket_over_http(req: &Request, channel: &str) -> Vec<u8> {
    let events = match parse_events(&req.body) {
        Ok(events) => events,
        Err(e) => {
            return simple_response(
                "400 Bad Request",
                "Content-Type: text/plain\r\n",
                format!("{e}\n").as_bytes(),
            )
        }
    };
    let grip = req.path() != "/echo";
    let mut body = Vec::new();
    let mut opened = false;
    for ev in &events {
        match (ev.kind, ev.content) {
            ("OPEN", _) => {
                opened = true;
                body.extend(encode_event("OPEN", None));
                if grip {
                    let control = format!(r#"c:{{"type":"subscribe","channel":"{channel}"}}"#);
                    body.extend(encode_event("TEXT", Some(control.as_bytes())));
                }
            }
            (kind @ ("TEXT" | "BINARY"), content) => {
                let content = content.unwrap_or_default();
                if grip {
                    body.extend(encode_event(kind, Some(&[b"m:", content].concat())));
                } else {
                    body.extend(encode_event(kind, Some(content)));
                }
            }
            ("CLOSE", content) => body.extend(encode_event("CLOSE", content)),
            _ => {}
        }
    }
    let extensions = if grip && opened {
        "Sec-WebSocket-Extensions: grip\r\n"
    } else {
        ""
    };
    simple_response(
        "200 OK",
        &format!("Content-Type: {WS_EVENTS}\r\n{extensions}"),
        &body,
    )
}

/// Serves until the process ends, counting requests.
pub async fn serve(listener: TcpListener, requests: Arc<AtomicU64>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let requests = requests.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, &requests).await;
                });
            }
            Err(e) => {
                eprintln!("backend: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, requests: &AtomicU64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 8192];
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut close = false;
        let mut used = 0;
        loop {
            match parse_request(&buf[used..]) {
                Ok(Some((req, n))) => {
                    used += n;
                    requests.fetch_add(1, Ordering::Relaxed);
                    out.extend(respond(&req));
                    if req.close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.extend(simple_response(
                        "400 Bad Request",
                        "Connection: close\r\n",
                        e.as_bytes(),
                    ));
                    close = true;
                    break;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &[u8]) -> Request {
        parse_request(raw).unwrap().unwrap().0
    }

    #[test]
    fn stream_hold() {
        let r = respond(&req(b"GET /stream?channel=hold-3 HTTP/1.1\r\n\r\n"));
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Grip-Hold: stream\r\nGrip-Channel: hold-3\r\n"));
        assert!(s.contains("Grip-Keep-Alive: :\\n\\n; format=cstring; timeout=55\r\n"));
        assert!(s.ends_with("Content-Length: 5\r\n\r\n:ok\n\n"));
    }

    #[test]
    fn response_hold_and_plain() {
        let s = String::from_utf8(respond(&req(b"GET /poll?channel=p HTTP/1.1\r\n\r\n"))).unwrap();
        assert!(s.contains("Grip-Hold: response\r\nGrip-Channel: p\r\nGrip-Timeout: 55\r\n"));
        assert!(s.ends_with("\r\n\r\ntimeout\n"));
        let s = String::from_utf8(respond(&req(b"GET /plain HTTP/1.1\r\n\r\n"))).unwrap();
        assert!(s.ends_with("Content-Length: 6\r\n\r\nhello\n"));
        let s = String::from_utf8(respond(&req(b"GET /nope HTTP/1.1\r\n\r\n"))).unwrap();
        assert!(s.starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn websocket_over_http() {
        let open = b"POST /ws?channel=X HTTP/1.1\r\nContent-Type: application/websocket-events\r\nContent-Length: 6\r\n\r\nOPEN\r\n";
        let s = String::from_utf8(respond(&req(open))).unwrap();
        assert!(s.contains("Sec-WebSocket-Extensions: grip\r\n"));
        assert!(s.ends_with(
            "\r\n\r\nOPEN\r\nTEXT 24\r\nc:{\"type\":\"subscribe\",\"channel\":\"X\"}\r\n"
        ));
        // GRIP mode: messages come back with the `m:` prefix, no extension header after OPEN.
        let other = b"POST /ws?channel=X HTTP/1.1\r\nContent-Type: application/websocket-events\r\nContent-Length: 10\r\n\r\nTEXT 0\r\n\r\n";
        let s = String::from_utf8(respond(&req(other))).unwrap();
        assert!(s.ends_with("Content-Length: 12\r\n\r\nTEXT 2\r\nm:\r\n"));
        assert!(s.contains("Content-Type: application/websocket-events\r\n"));
        assert!(!s.contains("Sec-WebSocket-Extensions"));
    }

    fn woh(path: &str, body: &[u8]) -> Vec<u8> {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nContent-Type: application/websocket-events\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        respond(&req(&raw))
    }

    #[test]
    fn websocket_echo() {
        let s = woh("/echo", b"OPEN\r\n");
        assert!(s.ends_with(b"\r\n\r\nOPEN\r\n"));
        assert!(!String::from_utf8_lossy(&s).contains("Sec-WebSocket-Extensions"));
        let s = woh("/echo", b"TEXT 5\r\nhello\r\nTEXT 3\r\n1 2\r\nPING\r\n");
        assert!(s.ends_with(b"\r\n\r\nTEXT 5\r\nhello\r\nTEXT 3\r\n1 2\r\n"));
        // Close code 1000 comes back as sent.
        let s = woh("/echo", b"CLOSE 2\r\n\x03\xe8\r\n");
        assert!(s.ends_with(b"Content-Length: 13\r\n\r\nCLOSE 2\r\n\x03\xe8\r\n"));
        let s = woh("/echo", b"CLOSE\r\nDISCONNECT\r\n");
        assert!(s.ends_with(b"\r\n\r\nCLOSE\r\n"));
        let s = woh("/echo", b"TEXT 9\r\nhi\r\n");
        assert!(s.starts_with(b"HTTP/1.1 400"));
    }
}
