//! Many clients at once across several workers, to shake out lost wake-ups and stalls.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Connmgr, FakeHandler};
use holdfast_proto::internal::{ResponseHead, ToConnmgr, ToHandler};

const CLIENTS: usize = 40;
const REQUESTS: usize = 50;

#[test]
fn many_keep_alive_clients_on_two_workers() {
    let mut handler = FakeHandler::bind("load");
    let cm = Connmgr::start(&mut handler, &["--workers=2", "--log-level=2"]);
    let port = cm.port;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                for r in 0..REQUESTS {
                    let body = format!("c{c}r{r}");
                    let req = format!(
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(req.as_bytes()).unwrap();
                    let expected = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let mut got = vec![0u8; expected.len()];
                    stream.read_exact(&mut got).unwrap();
                    assert_eq!(String::from_utf8_lossy(&got), expected);
                }
            })
        })
        .collect();

    // Echo every request body back, to the worker that sent it, one packet per received packet.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = 0;
    while answered < CLIENTS * REQUESTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let packet = handler.recv_packet(left).expect("requests keep coming");
        let worker = handler.worker.clone();
        let mut replies = Vec::new();
        for msg in packet.msgs {
            if let ToHandler::Request(req) = msg {
                assert!(!req.more);
                replies.push(ToConnmgr::Response(ResponseHead {
                    id: req.id,
                    code: 200,
                    reason: "OK".into(),
                    headers: Vec::new(),
                    body: Bytes::from(req.body.to_vec()),
                    more: false,
                }));
            }
        }
        answered += replies.len();
        if !replies.is_empty() {
            handler.send_to(&worker, handler.epoch, replies);
        }
    }
    for client in clients {
        client.join().unwrap();
    }
}
