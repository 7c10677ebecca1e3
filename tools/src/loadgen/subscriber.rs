//! One subscriber connection, shared by `hold`, `fanout` and `channels`: open it (HTTP stream /
//! SSE request or WebSocket upgrade), wait for the response head and, for HTTP, the first body
//! bytes; then read every published message, parse `<seq> <ts>`, and track latency, losses,
//! duplicates and reordering.
//!
//! Message formats (one parser handles both HTTP ones): HTTP streaming lines `<seq> <ts>\n`;
//! SSE `event: m\ndata: <seq> <ts>\n\n` (the `data:` prefix is stripped, other lines such as
//! `:ok`, keep-alives and `event:` are ignored); WebSocket text frames `<seq> <ts>`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::http::{self, ChunkDecoder, Framing, Target};
use super::stats::{now_ns, SharedHistogram};
use super::ws;

/// How subscribers connect and how published content is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// HTTP streaming (`Grip-Hold: stream`), `http-stream` content `<seq> <ts>\n`.
    Stream,
    /// Server-Sent Events over the same hold, content `event: m\ndata: <seq> <ts>\n\n`.
    Sse,
    /// WebSocket (`ws://…/ws?channel=X`, WebSocket-over-HTTP backend), `ws-message` content.
    Ws,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Stream => "stream",
            Transport::Sse => "sse",
            Transport::Ws => "ws",
        }
    }

    /// The request path for a subscriber of `channel`.
    pub fn path(self, channel: &str) -> String {
        match self {
            Transport::Stream | Transport::Sse => format!("/stream?channel={channel}"),
            Transport::Ws => format!("/ws?channel={channel}"),
        }
    }
}

/// How a response body is being decoded.
enum Body {
    Chunked(ChunkDecoder),
    Length(u64),
    Close,
}

/// An open subscriber connection, ready to receive messages.
pub struct Subscriber {
    stream: TcpStream,
    ws: bool,
    body: Body,
    /// Raw bytes not yet decoded (WebSocket frames).
    raw: Vec<u8>,
    /// Decoded body text not yet split into lines.
    text: Vec<u8>,
}

/// Opens subscriber `index` (its source address is chosen from `index`) on `path`.
pub async fn open(
    target: &Target,
    index: usize,
    sources: usize,
    path: &str,
    websocket: bool,
) -> Result<Subscriber, String> {
    let mut stream = http::connect(target, index, sources)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let full_path = format!("{}{path}", target.prefix);
    let req = if websocket {
        ws::handshake_request(&full_path, &target.host)
    } else {
        format!("GET {full_path} HTTP/1.1\r\nHost: {}\r\n\r\n", target.host)
    };
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let (head, len) = loop {
        if let Some(h) = http::parse_response_head(&buf)? {
            break h;
        }
        http::read_more(&mut stream, &mut buf)
            .await
            .map_err(|e| format!("read head: {e}"))?;
    };
    buf.drain(..len);
    let want = if websocket { 101 } else { 200 };
    if head.status != want {
        let snippet: String = String::from_utf8_lossy(&buf[..buf.len().min(60)])
            .trim()
            .chars()
            .take(60)
            .collect();
        return Err(format!(
            "status {} (expected {want}): {snippet}",
            head.status
        ));
    }
    if websocket {
        return Ok(Subscriber {
            stream,
            ws: true,
            body: Body::Close,
            raw: buf,
            text: Vec::new(),
        });
    }
    let body = match head.framing {
        Framing::Chunked => Body::Chunked(ChunkDecoder::new()),
        Framing::Length(n) => Body::Length(n),
        Framing::Close => Body::Close,
    };
    let mut sub = Subscriber {
        stream,
        ws: false,
        body,
        raw: Vec::new(),
        text: Vec::new(),
    };
    // Wait for the first body bytes (the backend's initial `:ok\n\n`).
    sub.decode(&buf)?;
    while sub.text.is_empty() {
        if matches!(sub.body, Body::Length(0)) {
            return Err("response body ended before any data".into());
        }
        buf.clear();
        http::read_more(&mut sub.stream, &mut buf)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        sub.decode(&buf)?;
    }
    Ok(sub)
}

impl Subscriber {
    /// Frees buffers: for connections that are only held.
    pub fn shrink(&mut self) {
        self.raw = Vec::new();
        self.text = Vec::new();
    }

    /// Decodes HTTP body bytes into `self.text`.
    fn decode(&mut self, data: &[u8]) -> Result<(), String> {
        match &mut self.body {
            Body::Chunked(dec) => {
                dec.feed(data, &mut self.text)?;
                if dec.is_done() {
                    return Err("stream ended (last chunk)".into());
                }
            }
            Body::Length(rem) => {
                let n = (*rem).min(data.len() as u64) as usize;
                self.text.extend_from_slice(&data[..n]);
                *rem -= n as u64;
            }
            Body::Close => self.text.extend_from_slice(data),
        }
        Ok(())
    }

    /// Reads messages until `stop` fires or the connection ends, recording into `tracker` and
    /// `shared`.
    pub async fn receive(
        mut self,
        tracker: &mut Tracker,
        shared: &Deliveries,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), String> {
        // Messages that arrived with the head.
        let now = now_ns();
        if self.ws {
            self.ws_frames(tracker, shared, now).await?;
        } else {
            drain_lines(&mut self.text, |seq, ts| {
                tracker.on_message(seq, ts, now, shared)
            });
        }
        let mut buf = vec![0u8; 4096];
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let n = tokio::select! {
                _ = stop.changed() => return Ok(()),
                r = self.stream.read(&mut buf) => r.map_err(|e| format!("read: {e}"))?,
            };
            if n == 0 {
                return Err("connection closed by server".into());
            }
            let now = now_ns();
            if self.ws {
                self.raw.extend_from_slice(&buf[..n]);
                self.ws_frames(tracker, shared, now).await?;
            } else {
                self.decode(&buf[..n])?;
                drain_lines(&mut self.text, |seq, ts| {
                    tracker.on_message(seq, ts, now, shared)
                });
            }
        }
    }

    /// Handles every complete frame in `self.raw`.
    async fn ws_frames(
        &mut self,
        tracker: &mut Tracker,
        shared: &Deliveries,
        now: u64,
    ) -> Result<(), String> {
        let mut pos = 0;
        while let Some((frame, used)) = ws::parse_frame(&self.raw[pos..])? {
            pos += used;
            match frame.opcode {
                ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT => {
                    self.text.extend_from_slice(&frame.payload);
                    if frame.fin {
                        if let Some((seq, ts)) = parse_message(&self.text) {
                            tracker.on_message(seq, ts, now, shared);
                        }
                        self.text.clear();
                    }
                }
                ws::OP_PING => {
                    let pong = ws::client_frame(ws::OP_PONG, &frame.payload);
                    self.stream
                        .write_all(&pong)
                        .await
                        .map_err(|e| format!("write pong: {e}"))?;
                }
                ws::OP_CLOSE => {
                    let _ = self
                        .stream
                        .write_all(&ws::client_frame(ws::OP_CLOSE, &frame.payload))
                        .await;
                    return Err("websocket closed by server".into());
                }
                _ => {}
            }
        }
        self.raw.drain(..pos);
        Ok(())
    }
}

/// Calls `f(seq, ts)` for every complete line of `text` holding a message and removes the
/// complete lines, keeping a trailing partial line.
pub fn drain_lines(text: &mut Vec<u8>, mut f: impl FnMut(u64, u64)) {
    let mut start = 0;
    while let Some(i) = text[start..].iter().position(|&b| b == b'\n') {
        let line = &text[start..start + i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line
            .strip_prefix(b"data:")
            .map(|l| l.strip_prefix(b" ").unwrap_or(l))
            .unwrap_or(line);
        if let Some((seq, ts)) = parse_message(line) {
            f(seq, ts);
        }
        start += i + 1;
    }
    text.drain(..start);
}

/// Parses `<seq> <ts>` (two decimal numbers separated by one space).
pub fn parse_message(line: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(line).ok()?;
    let (a, b) = s.trim().split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Counters all subscribers of a run share.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Latency in microseconds.
    pub latency: SharedHistogram,
    pub count: AtomicU64,
    pub last_ns: AtomicU64,
    /// Subscribers that received every expected message.
    pub complete: AtomicUsize,
}

/// What one subscriber saw of sequence numbers `1..=expected`.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    expected: u64,
    seen: Vec<u64>,
    pub unique: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Sequence numbers outside `1..=expected`.
    pub unexpected: u64,
    max_seq: u64,
}

impl Tracker {
    pub fn new(expected: u64) -> Tracker {
        Tracker {
            expected,
            seen: vec![0; expected.div_ceil(64) as usize],
            ..Tracker::default()
        }
    }

    pub fn lost(&self) -> u64 {
        self.expected - self.unique
    }

    /// Records one message received at `now` (ns since the epoch).
    pub fn on_message(&mut self, seq: u64, ts: u64, now: u64, shared: &Deliveries) {
        shared.count.fetch_add(1, Ordering::Relaxed);
        shared.last_ns.fetch_max(now, Ordering::Relaxed);
        shared.latency.record(now.saturating_sub(ts) / 1000);
        if seq == 0 || seq > self.expected {
            self.unexpected += 1;
            return;
        }
        let (word, bit) = (((seq - 1) / 64) as usize, (seq - 1) % 64);
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        if seq < self.max_seq {
            self.out_of_order += 1;
        }
        self.max_seq = self.max_seq.max(seq);
        if self.unique == self.expected {
            shared.complete.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Default time allowed for one subscriber to connect and get its first bytes.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stream_and_sse() {
        let mut got = Vec::new();
        let mut text = b":ok\n\n1 100\nevent: m\ndata: 2 200\n\n:\n\ndata:3 300\r\n4 4".to_vec();
        drain_lines(&mut text, |s, t| got.push((s, t)));
        assert_eq!(got, [(1, 100), (2, 200), (3, 300)]);
        assert_eq!(text, b"4 4");
        text.extend_from_slice(b"00\n");
        drain_lines(&mut text, |s, t| got.push((s, t)));
        assert_eq!(got.last(), Some(&(4, 400)));
        assert!(text.is_empty());
        assert_eq!(parse_message(b"1 2 3"), None);
        assert_eq!(parse_message(b"x 2"), None);
    }

    #[test]
    fn tracker_counts() {
        let shared = Deliveries::default();
        let mut t = Tracker::new(5);
        for seq in [1, 3, 2, 3, 9, 5] {
            t.on_message(seq, 1_000, 3_000, &shared);
        }
        assert_eq!(
            (t.unique, t.duplicated, t.out_of_order, t.unexpected),
            (4, 1, 1, 1)
        );
        assert_eq!(t.lost(), 1);
        assert_eq!(shared.complete.load(Ordering::Relaxed), 0);
        t.on_message(4, 1_000, 3_000, &shared);
        assert_eq!(shared.complete.load(Ordering::Relaxed), 1);
        assert_eq!(shared.count.load(Ordering::Relaxed), 7);
        let h = shared.latency.snapshot();
        assert_eq!((h.count(), h.max()), (7, 2));
    }
}
