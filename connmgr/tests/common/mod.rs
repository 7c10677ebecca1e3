//! Test harness: the real `holdfast-connmgr` binary against a fake handler (a ZeroMQ ROUTER
//! bound on a temporary ipc path, speaking the internal protocol by hand) and raw TCP clients.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{
    decode, encode, Body, Closed, Credit, Fanout, Header, Packet, RequestHead, ResponseHead,
    StreamId, ToConnmgr, ToHandler,
};

/// How long any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hfcm-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The fake handler: a ROUTER socket the connection manager's workers connect to.
pub struct FakeHandler {
    _context: zmq::Context,
    socket: zmq::Socket,
    /// The epoch put in every packet sent.
    pub epoch: u64,
    /// The ipc endpoint.
    pub spec: String,
    /// The identity of the last worker heard from.
    pub worker: Vec<u8>,
    pending: VecDeque<ToHandler>,
    _dir: PathBuf,
}

impl FakeHandler {
    /// Binds a ROUTER on a fresh ipc path.
    pub fn bind(name: &str) -> Self {
        let dir = temp_dir(name);
        let spec = format!("ipc://{}/handler", dir.display());
        let context = zmq::Context::new();
        let socket = context.socket(zmq::ROUTER).expect("router");
        socket.set_linger(0).expect("linger");
        socket.bind(&spec).expect("bind router");
        Self {
            _context: context,
            socket,
            epoch: 1000,
            spec,
            worker: Vec::new(),
            pending: VecDeque::new(),
            _dir: dir,
        }
    }

    /// The next packet (the sender's identity is kept in `worker`), or `None` after `timeout`.
    pub fn recv_packet(&mut self, timeout: Duration) -> Option<Packet<ToHandler>> {
        if timeout.is_zero() {
            return None;
        }
        let ms = i64::try_from(timeout.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let ready = self.socket.poll(zmq::POLLIN, ms).expect("poll");
        if ready == 0 {
            return None;
        }
        let parts = self.socket.recv_multipart(0).expect("recv");
        assert_eq!(parts.len(), 2, "identity + payload");
        self.worker = parts[0].clone();
        Some(decode(&parts[1]).expect("decode packet from connmgr"))
    }

    /// The next message other than Hello/Heartbeat/Credit; panics on timeout.
    pub fn next(&mut self) -> ToHandler {
        self.next_matching(|m| {
            !matches!(
                m,
                ToHandler::Hello(_) | ToHandler::Heartbeat | ToHandler::Credit(_)
            )
        })
    }

    /// The next message satisfying `pred` (others are dropped); panics on timeout.
    pub fn next_matching(&mut self, mut pred: impl FnMut(&ToHandler) -> bool) -> ToHandler {
        let deadline = Instant::now() + WAIT;
        loop {
            let msg = self
                .next_msg(deadline)
                .expect("timed out waiting for a message from connmgr");
            if pred(&msg) {
                return msg;
            }
        }
    }

    /// The next message in order, or `None` at `deadline`.
    pub fn next_msg(&mut self, deadline: Instant) -> Option<ToHandler> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Some(msg);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let packet = self.recv_packet(left)?;
            self.pending.extend(packet.msgs);
        }
    }

    /// Collects every message (except heartbeats) for `dur`.
    pub fn collect_for(&mut self, dur: Duration) -> Vec<ToHandler> {
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        while let Some(msg) = self.next_msg(deadline) {
            if !matches!(msg, ToHandler::Heartbeat) {
                out.push(msg);
            }
        }
        out
    }

    /// Waits for the first Hello (the worker is up).
    pub fn wait_hello(&mut self) {
        match self.next_matching(|m| matches!(m, ToHandler::Hello(_))) {
            ToHandler::Hello(_) => {}
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// The next message must be a request head.
    pub fn request(&mut self) -> RequestHead {
        match self.next() {
            ToHandler::Request(head) => head,
            other => panic!("expected a Request, got {other:?}"),
        }
    }

    /// Sends one packet with these messages to the last worker heard from.
    pub fn send(&self, msgs: Vec<ToConnmgr>) {
        self.send_with_epoch(self.epoch, msgs);
    }

    /// Sends one packet with an explicit epoch.
    pub fn send_with_epoch(&self, epoch: u64, msgs: Vec<ToConnmgr>) {
        self.send_to(&self.worker, epoch, msgs);
    }

    /// Sends one packet to the worker with this identity.
    pub fn send_to(&self, worker: &[u8], epoch: u64, msgs: Vec<ToConnmgr>) {
        let bytes = encode(&Packet { epoch, msgs }).expect("encode");
        self.socket
            .send_multipart([worker.to_vec(), bytes], 0)
            .expect("send");
    }

    /// Sends a complete response.
    pub fn respond(
        &self,
        id: StreamId,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: &str,
        more: bool,
    ) {
        self.send(vec![ToConnmgr::Response(ResponseHead {
            id,
            code,
            reason: reason.into(),
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from(body.to_string()),
            more,
        })]);
    }

    /// Sends more body.
    pub fn body(&self, id: StreamId, data: &[u8], more: bool) {
        self.send(vec![ToConnmgr::Body(Body {
            id,
            data: Bytes::copy_from_slice(data),
            more,
        })]);
    }

    /// Sends one payload to many streams in one message.
    pub fn fanout(&self, ids: &[StreamId], data: &[u8]) {
        self.send(vec![fanout_msg(ids, data)]);
    }

    /// Grants request body credit.
    pub fn credit(&self, id: StreamId, bytes: u32) {
        self.send(vec![ToConnmgr::Credit(Credit { id, bytes })]);
    }

    /// Aborts a stream.
    pub fn close(&self, id: StreamId) {
        self.send(vec![ToConnmgr::Close(Closed {
            id,
            reason: holdfast_proto::internal::CloseReason::BackendError,
        })]);
    }
}

/// A `Fanout` message.
pub fn fanout_msg(ids: &[StreamId], data: &[u8]) -> ToConnmgr {
    ToConnmgr::Fanout(Fanout {
        ids: ids.to_vec(),
        data: Bytes::copy_from_slice(data),
    })
}

/// The connection manager process; killed when dropped.
pub struct Connmgr {
    child: Child,
    /// The client port.
    pub port: u16,
    log: PathBuf,
}

impl Connmgr {
    /// Starts the binary against `handler` with one worker and waits for its Hello.
    pub fn start(handler: &mut FakeHandler, extra: &[&str]) -> Self {
        let port = free_port();
        let log = temp_dir("log").join("connmgr.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut args = vec![
            format!("--listen=127.0.0.1:{port}"),
            format!("--handler-spec={}", handler.spec),
            "--instance-id=test".to_string(),
        ];
        if !extra.iter().any(|a| a.starts_with("--log-level")) {
            args.push("--log-level=4".to_string());
        }
        if !extra.iter().any(|a| a.starts_with("--workers")) {
            args.push("--workers=1".to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_holdfast-connmgr"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn holdfast-connmgr");
        let connmgr = Self { child, port, log };
        handler.wait_hello();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "connmgr never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        connmgr
    }

    /// A new client connection.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        stream
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Connmgr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- connmgr log ----\n{}", self.log());
        }
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for FakeHandler {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// Reads exactly `expected.len()` bytes and compares them as text.
pub fn expect_bytes(stream: &mut TcpStream, expected: &str) {
    let mut buf = vec![0u8; expected.len()];
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => panic!(
                "EOF after {:?}, expected {:?}",
                String::from_utf8_lossy(&buf[..got]),
                expected
            ),
            Ok(n) => got += n,
            Err(e) => panic!(
                "read error {e} after {:?}, expected {:?}",
                String::from_utf8_lossy(&buf[..got]),
                expected
            ),
        }
    }
    assert_eq!(String::from_utf8_lossy(&buf), expected);
}

/// Reads until EOF (panics on timeout or reset).
pub fn read_to_eof(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read to EOF");
    String::from_utf8_lossy(&out).into_owned()
}

/// Asserts the connection is closed with nothing more to read.
pub fn expect_eof(stream: &mut TcpStream) {
    let rest = read_to_eof(stream);
    assert_eq!(rest, "", "expected EOF");
}

/// Asserts nothing arrives within `dur` (the connection stays open and quiet).
pub fn expect_quiet(stream: &mut TcpStream, dur: Duration) {
    stream.set_read_timeout(Some(dur)).expect("timeout");
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => panic!("unexpected EOF"),
        Ok(n) => panic!("unexpected data {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "unexpected error {e}"
        ),
    }
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
}

/// Writes all of `data`.
pub fn send(stream: &mut TcpStream, data: &str) {
    stream.write_all(data.as_bytes()).expect("write");
}

/// The header value of `name` in a request head, as text.
pub fn header<'a>(head: &'a RequestHead, name: &str) -> Option<&'a str> {
    head.headers
        .iter()
        .find(|h| h.is(name))
        .and_then(|h| std::str::from_utf8(&h.1).ok())
}
