//! `ws-echo`: WebSocket round trips through the proxy to a WebSocket-over-HTTP backend.
//!
//! N clients open `ws://…/echo` (the embedded backend's plain echo, reached through a route with
//! `over_http`), `--concurrency` opens at a time. Once every open has finished, each client
//! sends one text message, waits for the same message to come back, and repeats until
//! `--duration` seconds have passed; then it closes (close code 1000) and waits up to 2 s for the
//! proxy's close frame. One round trip through a WebSocket-over-HTTP proxy is a client frame, a
//! backend `POST` carrying a `TEXT` event, the backend's `TEXT` answer, and a server frame.
//!
//! Reported: round trips/s (all completed round trips over the time from the start of the
//! measurement to the last completed one; setup is excluded), round-trip latency, how many
//! echoes differed from what was sent (`mismatched`), connections lost mid-run by error, and
//! clean closes. A client whose echo does not come within `--echo-timeout` seconds gives up
//! (counted in `errors`), so a proxy that stops answering cannot hang the run.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::http::{self, Target};
use super::stats::{rate, round3, SharedHistogram};
use super::ws;
use super::ClientOpts;

/// Largest reassembled message accepted from the server (echoes are small).
const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a client waits for the close frame answering its own.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, clap::Args)]
pub struct WsEchoArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Number of WebSocket clients.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub connections: usize,
    /// Seconds of echo traffic.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Path (and query) of the WebSocket; `/echo` is the embedded backend's plain echo.
    #[arg(long, default_value = "/echo")]
    pub path: String,
    /// Message size in bytes (at least the `<client> <seq>` text, padded with `x`).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Seconds one echo may take before the client gives up.
    #[arg(long, default_value_t = 10.0)]
    pub echo_timeout: f64,
}

/// Why a client could not open or went wrong mid-run.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("write: {0}")]
    Write(io::Error),
    #[error("read: {0}")]
    Read(io::Error),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("handshake status {0} (expected 101)")]
    Status(u16),
    #[error("bad frame: {0}")]
    Frame(String),
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("closed by server")]
    Closed,
    #[error("open timed out")]
    OpenTimeout,
    #[error("echo timed out")]
    EchoTimeout,
}

/// One open client connection.
struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet parsed as frames (at most one frame plus one read).
    raw: Vec<u8>,
    /// The fragments of a message being reassembled.
    message: Vec<u8>,
}

impl Conn {
    async fn open(
        target: &Target,
        index: usize,
        sources: usize,
        path: &str,
    ) -> Result<Conn, EchoError> {
        let mut stream = http::connect(target, index, sources)
            .await
            .map_err(EchoError::Connect)?;
        let req = ws::handshake_request(&format!("{}{path}", target.prefix), &target.host);
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(EchoError::Write)?;
        let mut buf = Vec::with_capacity(1024);
        let (head, len) = loop {
            if let Some(h) = http::parse_response_head(&buf).map_err(EchoError::Handshake)? {
                break h;
            }
            http::read_more(&mut stream, &mut buf)
                .await
                .map_err(EchoError::Read)?;
        };
        if head.status != 101 {
            return Err(EchoError::Status(head.status));
        }
        buf.drain(..len);
        Ok(Conn {
            stream,
            raw: buf,
            message: Vec::new(),
        })
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<(), EchoError> {
        self.stream
            .write_all(&ws::client_frame(opcode, payload))
            .await
            .map_err(EchoError::Write)
    }

    /// The next complete text or binary message; pings are answered on the way, a close frame
    /// is [`EchoError::Closed`].
    async fn next_message(&mut self) -> Result<Vec<u8>, EchoError> {
        let mut tmp = [0u8; 4096];
        loop {
            while let Some((frame, used)) = ws::parse_frame(&self.raw).map_err(EchoError::Frame)? {
                self.raw.drain(..used);
                match frame.opcode {
                    ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT => {
                        if self.message.len() + frame.payload.len() > MAX_MESSAGE {
                            return Err(EchoError::TooLarge);
                        }
                        self.message.extend_from_slice(&frame.payload);
                        if frame.fin {
                            return Ok(std::mem::take(&mut self.message));
                        }
                    }
                    ws::OP_PING => self.send(ws::OP_PONG, &frame.payload).await?,
                    ws::OP_CLOSE => return Err(EchoError::Closed),
                    _ => {}
                }
            }
            let n = self.stream.read(&mut tmp).await.map_err(EchoError::Read)?;
            if n == 0 {
                return Err(EchoError::Read(io::ErrorKind::UnexpectedEof.into()));
            }
            self.raw.extend_from_slice(&tmp[..n]);
        }
    }

    /// Sends close 1000 and waits for the server's close frame: true if it came in time.
    async fn close(mut self) -> bool {
        if self
            .send(ws::OP_CLOSE, &1000u16.to_be_bytes())
            .await
            .is_err()
        {
            return false;
        }
        let wait = async {
            loop {
                match self.next_message().await {
                    Ok(_) => continue,
                    Err(EchoError::Closed) => return true,
                    Err(_) => return false,
                }
            }
        };
        tokio::time::timeout(CLOSE_WAIT, wait)
            .await
            .unwrap_or(false)
    }
}

/// What one client did during the measurement.
struct Outcome {
    round_trips: u64,
    mismatched: u64,
    /// When its last round trip completed.
    last: Option<Instant>,
    error: Option<EchoError>,
    clean_close: bool,
}

/// Counters every client shares.
#[derive(Default)]
struct Shared {
    /// Round-trip latency in microseconds.
    latency: SharedHistogram,
    round_trips: AtomicU64,
}

/// The message client `index` sends as its `seq`-th: `<index> <seq>` padded to `size`.
fn message(index: usize, seq: u64, size: usize) -> Vec<u8> {
    let mut m = format!("{index} {seq} ").into_bytes();
    if m.len() < size {
        m.resize(size, b'x');
    }
    m
}

async fn echo_loop(
    mut conn: Conn,
    index: usize,
    size: usize,
    deadline: Instant,
    echo_timeout: Duration,
    shared: &Shared,
) -> Outcome {
    let mut out = Outcome {
        round_trips: 0,
        mismatched: 0,
        last: None,
        error: None,
        clean_close: false,
    };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let sent = message(index, seq, size);
        let start = Instant::now();
        let trip = async {
            conn.send(ws::OP_TEXT, &sent).await?;
            conn.next_message().await
        };
        match tokio::time::timeout(echo_timeout, trip).await {
            Ok(Ok(echo)) => {
                let now = Instant::now();
                shared
                    .latency
                    .record(now.duration_since(start).as_micros() as u64);
                shared.round_trips.fetch_add(1, Ordering::Relaxed);
                out.round_trips += 1;
                out.last = Some(now);
                if echo != sent {
                    out.mismatched += 1;
                }
            }
            Ok(Err(e)) => {
                out.error = Some(e);
                return out;
            }
            Err(_) => {
                out.error = Some(EchoError::EchoTimeout);
                return out;
            }
        }
    }
    out.clean_close = conn.close().await;
    out
}

pub async fn run(args: WsEchoArgs) -> Result<Value, String> {
    let target = Arc::new(Target::parse(&args.client.url)?);
    let n = args.connections.max(1);
    let sem = Arc::new(Semaphore::new(args.client.concurrency.max(1)));
    let open_timeout = Duration::from_secs_f64(args.client.open_timeout);
    let setup_start = Instant::now();
    let mut opens = Vec::with_capacity(n);
    for i in 0..n {
        let (target, sem, path) = (target.clone(), sem.clone(), args.path.clone());
        let sources = args.client.sources;
        opens.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            tokio::time::timeout(open_timeout, Conn::open(&target, i, sources, &path))
                .await
                .unwrap_or(Err(EchoError::OpenTimeout))
        }));
    }
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut conns = Vec::with_capacity(n);
    for (i, h) in opens.into_iter().enumerate() {
        match h.await {
            Ok(Ok(c)) => conns.push((i, c)),
            Ok(Err(e)) => *errors.entry(format!("open: {e}")).or_default() += 1,
            Err(e) => *errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let connected = conns.len();
    let setup_secs = setup_start.elapsed().as_secs_f64();
    eprintln!(
        "ws-echo: {connected}/{n} connected in {setup_secs:.2} s; echoing for {} s",
        args.duration
    );

    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let echo_timeout = Duration::from_secs_f64(args.echo_timeout);
    let size = args.size;
    let loops: Vec<_> = conns
        .into_iter()
        .map(|(i, conn)| {
            let shared = shared.clone();
            tokio::spawn(
                async move { echo_loop(conn, i, size, deadline, echo_timeout, &shared).await },
            )
        })
        .collect();
    let (mut mismatched, mut disconnected, mut clean_closes) = (0u64, 0u64, 0u64);
    let mut last = start;
    let mut per_conn_min = u64::MAX;
    for h in loops {
        match h.await {
            Ok(o) => {
                mismatched += o.mismatched;
                clean_closes += u64::from(o.clean_close);
                per_conn_min = per_conn_min.min(o.round_trips);
                if let Some(t) = o.last {
                    last = last.max(t);
                }
                if let Some(e) = o.error {
                    disconnected += 1;
                    *errors.entry(e.to_string()).or_default() += 1;
                }
            }
            Err(e) => *errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let round_trips = shared.round_trips.load(Ordering::Relaxed);
    let secs = last.duration_since(start).as_secs_f64();
    eprintln!("ws-echo: {round_trips} round trips in {secs:.2} s");
    Ok(json!({
        "scenario": "ws-echo",
        "target": args.client.url,
        "path": args.path,
        "connections": n,
        "connected": connected,
        "failed": n - connected,
        "setup_secs": round3(setup_secs),
        "size": size,
        "duration_secs": round3(secs),
        "round_trips": round_trips,
        "round_trips_per_sec": rate(round_trips, secs),
        "min_round_trips_per_conn": if connected == 0 { 0 } else { per_conn_min },
        "latency_us": shared.latency.snapshot().summary(),
        "mismatched": mismatched,
        "disconnected": disconnected,
        "clean_closes": clean_closes,
        "errors": errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_padded_and_distinct() {
        assert_eq!(message(3, 7, 0), b"3 7 ");
        let m = message(12, 1, 32);
        assert_eq!(m.len(), 32);
        assert!(m.starts_with(b"12 1 x"));
        assert_ne!(message(1, 12, 32), message(11, 2, 32));
    }
}
