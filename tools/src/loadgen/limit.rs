//! The limit server: the practical ceiling of the machine for `hold`, `fanout` and `channels`.
//!
//! A tiny tokio server with no proxy, no backend round trip and no inter-process hop:
//!
//! - `GET /stream?channel=X` answers `200` (`Content-Type: text/event-stream`, chunked) with the
//!   initial chunk `:ok\n\n` and holds the connection, subscribed to X;
//! - `POST /publish/` takes the same `{"items":[…]}` JSON as the proxies, validates it whole,
//!   frames each item's `http-stream` content as one chunk (once, shared by every subscriber)
//!   and queues it to every subscriber of the item's channel; answers `Published\n`. Other
//!   formats (`ws-message`, `http-response`) are ignored: only HTTP streaming and SSE content;
//! - `GET /plain` answers `hello\n` (for `proxy`).
//!
//! The very same client code is pointed at it: `holdfast-loadgen limit-server --listen ADDR` as
//! a separate process (so `hold --pids` measures the server's memory alone), or `holdfast-loadgen
//! limit hold|fanout|channels|proxy …`, which starts the server in-process on an ephemeral port
//! and points the scenario's URL and publish endpoint at it (client and server then share the
//! process and its threads, as they share the machine's cores with a proxy under test).
//!
//! Each subscriber has an unbounded queue: the server never drops, so a slow reader grows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::http::{parse_request, simple_response};

type Chunk = Arc<[u8]>;

/// Subscribers by channel.
#[derive(Default)]
pub struct Registry {
    channels: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Chunk>>>>,
}

impl Registry {
    fn subscribe(&self, channel: &str, tx: mpsc::UnboundedSender<Chunk>) {
        // A poisoned lock only means another task panicked mid-update; the map is still usable.
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(channel.to_string()).or_default().push(tx);
    }

    /// Queues `chunk` to every live subscriber of `channel`; returns how many.
    fn deliver(&self, channel: &str, chunk: &Chunk) -> usize {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let Some(subs) = map.get_mut(channel) else {
            return 0;
        };
        subs.retain(|tx| tx.send(chunk.clone()).is_ok());
        let n = subs.len();
        if n == 0 {
            map.remove(channel);
        }
        n
    }
}

/// Validates a publish body whole and returns (channel, framed chunk) per `http-stream` item.
pub fn parse_publish(body: &[u8]) -> Result<Vec<(String, Chunk)>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid format: {e}"))?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or("Invalid format: no items")?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let channel = item
            .get("channel")
            .and_then(Value::as_str)
            .ok_or("Invalid format: no channel")?;
        let Some(content) = item.pointer("/formats/http-stream/content") else {
            continue;
        };
        let content = content
            .as_str()
            .ok_or("Invalid format: content is not a string")?;
        out.push((channel.to_string(), frame_chunk(content.as_bytes())));
    }
    Ok(out)
}

/// One chunk of a chunked body.
pub fn frame_chunk(data: &[u8]) -> Chunk {
    let mut v = format!("{:x}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v.into()
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener) {
    let registry = Arc::new(Registry::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let registry = registry.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, &registry).await;
                });
            }
            Err(e) => {
                eprintln!("limit-server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let (req, used) = loop {
            match parse_request(&buf) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(e) => {
                    let resp =
                        simple_response("400 Bad Request", "Connection: close\r\n", e.as_bytes());
                    return stream.write_all(&resp).await;
                }
            }
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        buf.drain(..used);
        match (req.method.as_str(), req.path()) {
            ("GET", "/stream") => {
                let channel = req.query("channel").unwrap_or("test").to_string();
                return hold(stream, registry, &channel).await;
            }
            ("POST", "/publish/") | ("POST", "/publish") => {
                let resp = match parse_publish(&req.body) {
                    Ok(items) => {
                        for (channel, chunk) in &items {
                            registry.deliver(channel, chunk);
                        }
                        simple_response("200 OK", "Content-Type: text/plain\r\n", b"Published\n")
                    }
                    Err(e) => simple_response(
                        "400 Bad Request",
                        "Content-Type: text/plain\r\n",
                        format!("{e}\n").as_bytes(),
                    ),
                };
                stream.write_all(&resp).await?;
            }
            ("GET", "/plain") => {
                stream
                    .write_all(&simple_response(
                        "200 OK",
                        "Content-Type: text/plain\r\n",
                        b"hello\n",
                    ))
                    .await?;
            }
            _ => {
                stream
                    .write_all(&simple_response(
                        "404 Not Found",
                        "Content-Type: text/plain\r\n",
                        b"Not Found\n",
                    ))
                    .await?;
            }
        }
        if req.close {
            return Ok(());
        }
    }
}

/// Holds a stream: the head and `:ok`, then every queued chunk, until the client goes away.
async fn hold(mut stream: TcpStream, registry: &Registry, channel: &str) -> std::io::Result<()> {
    let mut head =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    head.extend_from_slice(&frame_chunk(b":ok\n\n"));
    stream.write_all(&head).await?;
    drop(head);
    let (tx, mut rx) = mpsc::unbounded_channel();
    registry.subscribe(channel, tx);
    let (mut r, mut w) = stream.split();
    let mut tmp = [0u8; 64];
    let mut out = Vec::new();
    loop {
        tokio::select! {
            chunk = rx.recv() => {
                let Some(chunk) = chunk else { return Ok(()) };
                out.extend_from_slice(&chunk);
                while let Ok(more) = rx.try_recv() {
                    out.extend_from_slice(&more);
                }
                w.write_all(&out).await?;
                out.clear();
                if out.capacity() > 64 * 1024 {
                    out = Vec::new();
                }
            }
            n = r.read(&mut tmp) => {
                if n? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies() {
        let body = br#"{"items":[{"channel":"a","formats":{"http-stream":{"content":"1 2\n"}}},{"channel":"b","formats":{"ws-message":{"content":"x"}}}]}"#;
        let items = parse_publish(body).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, "a");
        assert_eq!(&*items[0].1, b"4\r\n1 2\n\r\n");
        assert!(parse_publish(b"{}").is_err());
        assert!(parse_publish(br#"{"items":[{"formats":{}}]}"#).is_err());
        assert!(parse_publish(b"nope").is_err());
    }

    #[test]
    fn registry_prunes_closed_subscribers() {
        let reg = Registry::default();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let (tx2, rx2) = mpsc::unbounded_channel();
        reg.subscribe("c", tx1);
        reg.subscribe("c", tx2);
        drop(rx2);
        let chunk = frame_chunk(b"x");
        assert_eq!(reg.deliver("c", &chunk), 1);
        assert_eq!(&*rx1.try_recv().unwrap(), b"1\r\nx\r\n");
        assert_eq!(reg.deliver("none", &chunk), 0);
    }
}
