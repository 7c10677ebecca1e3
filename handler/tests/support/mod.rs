//! Test harness: the real `holdfast-handler` binary, a fake connmgr worker (a ZeroMQ DEALER
//! speaking the internal protocol) and a tiny raw-HTTP backend on tokio.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{
    self, Credit, Header, Hello, HttpVersion, Packet, RequestHead, ResponseHead, StreamId,
    ToConnmgr, ToHandler,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("hf-h-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The handler process; killed on drop.
pub struct Handler {
    pub child: Child,
    pub spec: String,
    pub log_path: PathBuf,
    pub dir: TempDir,
}

impl Handler {
    /// Starts the handler with `--route` lines and an optional config file body (`{dir}` in
    /// it becomes the handler's temporary directory).
    pub fn start(routes: &[String], config: Option<&str>) -> Self {
        Self::start_with_files(routes, config, &[])
    }

    /// Like [`Handler::start`], first writing `files` (name, contents) into the directory.
    pub fn start_with_files(
        routes: &[String],
        config: Option<&str>,
        files: &[(&str, String)],
    ) -> Self {
        let dir = TempDir::new();
        for (name, text) in files {
            std::fs::write(dir.0.join(name), text).unwrap();
        }
        let socket = dir.0.join("x");
        let spec = format!("ipc://{}", socket.display());
        let log_path = dir.0.join("handler.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast-handler"));
        cmd.arg("--connmgr-spec")
            .arg(&spec)
            .arg("--log-level=3")
            .arg("--instance-id=test-handler");
        if let Some(text) = config {
            let path = dir.0.join("pushpin.conf");
            let text = text.replace("{dir}", &dir.0.display().to_string());
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(&path);
        }
        for route in routes {
            cmd.arg(format!("--route={route}"));
        }
        let log = std::fs::File::create(&log_path).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn holdfast-handler");
        let handler = Self {
            child,
            spec,
            log_path,
            dir,
        };
        handler.wait_for(|| socket.exists(), "ipc socket to appear");
        handler
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the handler log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_for(|| self.log().contains(needle), needle);
        self.log()
    }

    pub fn wait_for(&self, mut cond: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; handler log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("handler did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake connmgr worker.
pub struct Connmgr {
    _ctx: zmq::Context,
    sock: zmq::Socket,
    pub epoch: u64,
    pending: VecDeque<ToConnmgr>,
    pub handler_epoch: Option<u64>,
}

impl Connmgr {
    /// Connects with `identity` and completes the Hello exchange.
    pub fn connect(spec: &str, identity: &str) -> Self {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::DEALER).unwrap();
        sock.set_identity(identity.as_bytes()).unwrap();
        sock.set_linger(0).unwrap();
        sock.set_rcvtimeo(50).unwrap();
        sock.connect(spec).unwrap();
        let mut cm = Self {
            _ctx: ctx,
            sock,
            epoch: 1000 + NEXT_DIR.fetch_add(1, Ordering::SeqCst) as u64,
            pending: VecDeque::new(),
            handler_epoch: None,
        };
        cm.send(vec![ToHandler::Hello(Hello { worker: 0 })]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no Hello from the handler");
            if let Some(packet) = cm.recv_packet() {
                if packet.msgs.contains(&ToConnmgr::Hello) {
                    cm.pending
                        .extend(packet.msgs.into_iter().filter(|m| *m != ToConnmgr::Hello));
                    return cm;
                }
            }
        }
    }

    pub fn send(&self, msgs: Vec<ToHandler>) {
        let packet = Packet {
            epoch: self.epoch,
            msgs,
        };
        self.sock
            .send(internal::encode(&packet).unwrap(), 0)
            .unwrap();
    }

    /// Sends arbitrary bytes as one message.
    pub fn send_raw(&self, bytes: &[u8]) {
        self.sock.send(bytes, 0).unwrap();
    }

    fn recv_packet(&mut self) -> Option<Packet<ToConnmgr>> {
        match self.sock.recv_bytes(0) {
            Ok(bytes) => {
                let packet: Packet<ToConnmgr> = internal::decode(&bytes).unwrap();
                if let Some(old) = self.handler_epoch {
                    assert_eq!(old, packet.epoch, "handler epoch changed");
                }
                self.handler_epoch = Some(packet.epoch);
                Some(packet)
            }
            Err(zmq::Error::EAGAIN) => None,
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// Next protocol message other than Hello/Heartbeat, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<ToConnmgr> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(msg) = self.pending.pop_front() {
                if !matches!(msg, ToConnmgr::Hello | ToConnmgr::Heartbeat) {
                    return Some(msg);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            if let Some(packet) = self.recv_packet() {
                self.pending.extend(packet.msgs);
            }
        }
    }

    pub fn expect(&mut self, what: &str) -> ToConnmgr {
        self.next(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("timed out waiting for {what}"))
    }

    /// Collects the response for `id`, granting back every body byte received as credit.
    /// Returns the head and the whole body.
    pub fn response(&mut self, id: StreamId) -> (ResponseHead, Vec<u8>) {
        let head = match self.expect("response head") {
            ToConnmgr::Response(head) => head,
            other => panic!("expected a response head, got {other:?}"),
        };
        assert_eq!(head.id, id);
        let mut body = head.body.to_vec();
        let mut more = head.more;
        if !head.body.is_empty() {
            self.credit(id, head.body.len() as u32);
        }
        while more {
            match self.expect("response body") {
                ToConnmgr::Body(b) => {
                    assert_eq!(b.id, id);
                    body.extend_from_slice(&b.data);
                    if !b.data.is_empty() {
                        self.credit(id, b.data.len() as u32);
                    }
                    more = b.more;
                }
                ToConnmgr::Credit(_) => {}
                other => panic!("unexpected {other:?} while reading the body"),
            }
        }
        (head, body)
    }

    pub fn credit(&self, id: StreamId, bytes: u32) {
        self.send(vec![ToHandler::Credit(Credit { id, bytes })]);
    }

    /// Counts heartbeats received during `wait` (other messages are kept for `next`).
    pub fn count_heartbeats(&mut self, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        let mut n = 0;
        while Instant::now() < deadline {
            if let Some(packet) = self.recv_packet() {
                for msg in packet.msgs {
                    if msg == ToConnmgr::Heartbeat {
                        n += 1;
                    } else {
                        self.pending.push_back(msg);
                    }
                }
            }
        }
        n
    }

    /// Asserts nothing (but heartbeats) arrives for `wait`.
    pub fn expect_silence(&mut self, wait: Duration) {
        if let Some(msg) = self.next(wait) {
            panic!("expected nothing, got {msg:?}");
        }
    }
}

pub fn header(head: &ResponseHead, name: &str) -> Option<String> {
    head.headers
        .iter()
        .find(|h| h.is(name))
        .map(|h| String::from_utf8_lossy(&h.1).into_owned())
}

/// A request head with sensible defaults.
pub fn request(id: u64, method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        id: StreamId(id),
        method: method.into(),
        target: target.into(),
        version: HttpVersion::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| Header::new(*n, Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
        peer_addr: "10.9.8.7".into(),
        peer_port: 40000,
        secure: false,
        local_port: 7999,
        body: Bytes::new(),
        more: false,
        credits: 65536,
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// One request as the backend received it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub conn: usize,
    pub head: String,
    pub body: Vec<u8>,
}

impl Captured {
    /// Header lines (name, value) in order, names as sent on the wire.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }
}

/// What the backend answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// These raw bytes.
    Full(Vec<u8>),
    /// 200 chunked, `chunks` chunks of `size` bytes; byte i of the body is `i % 251`.
    Chunked { chunks: usize, size: usize },
    /// Never answers; counts the connection as closed when the peer closes it.
    Hang,
    /// Answers `Full` after a delay.
    Delayed(Duration, Vec<u8>),
    /// Writes these bytes, then closes the connection.
    FullThenClose(Vec<u8>),
}

/// The tiny raw-HTTP backend.
pub struct Backend {
    pub port: u16,
    pub captured: Arc<Mutex<Vec<Captured>>>,
    /// TLS server names (SNI) seen, for TLS backends (`None` = no SNI sent).
    pub server_names: Arc<Mutex<Vec<Option<String>>>>,
    pub closed: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
}

pub fn ok_text(body: &str) -> Reply {
    Reply::Full(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Custom: a\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl Backend {
    pub fn start(reply: Reply) -> Self {
        Self::start_with(reply, None)
    }

    /// A backend speaking TLS with the given PEM certificate chain and key.
    pub fn start_tls(reply: Reply, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::start_with(
            reply,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn start_with(reply: Reply, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        {
            let captured = captured.clone();
            let server_names = server_names.clone();
            let closed = closed.clone();
            let connections = connections.clone();
            rt.spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    let conn = connections.fetch_add(1, Ordering::SeqCst);
                    let reply = reply.clone();
                    let captured = captured.clone();
                    let closed = closed.clone();
                    match &tls {
                        None => {
                            tokio::spawn(serve(sock, conn, reply, captured, closed));
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            let server_names = server_names.clone();
                            tokio::spawn(async move {
                                // Handshake failures (client rejected our certificate) are
                                // simply dropped connections.
                                if let Ok(stream) = acceptor.accept(sock).await {
                                    let name = stream.get_ref().1.server_name().map(str::to_string);
                                    server_names.lock().unwrap().push(name);
                                    serve(stream, conn, reply, captured, closed).await;
                                }
                            });
                        }
                    }
                }
            });
        }
        Self {
            port,
            captured,
            server_names,
            closed,
            connections,
            rt: Some(rt),
        }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }

    pub fn wait_requests(&self, n: usize) -> Vec<Captured> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "backend got {} of {n} requests",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_closed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.closed.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "backend connection not closed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn fill<S: AsyncRead + Unpin>(sock: &mut S, buf: &mut Vec<u8>, n: usize) -> bool {
    let mut tmp = [0u8; 65536];
    while buf.len() < n {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&tmp[..k]),
        }
    }
    true
}

async fn read_line<S: AsyncRead + Unpin>(sock: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..pos]).into_owned();
            buf.drain(..pos + 2);
            return Some(line);
        }
        let want = buf.len() + 1;
        if !fill(sock, buf, want).await {
            return None;
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    conn: usize,
    reply: Reply,
    captured: Arc<Mutex<Vec<Captured>>>,
    closed: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let want = buf.len() + 1;
            if !fill(&mut sock, &mut buf, want).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let lower = head.to_ascii_lowercase();
        let content_length = lower
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let mut body = Vec::new();
        if let Some(len) = content_length {
            if !fill(&mut sock, &mut buf, len).await {
                return;
            }
            body = buf.drain(..len).collect();
        } else if lower.contains("transfer-encoding: chunked") {
            loop {
                let Some(line) = read_line(&mut sock, &mut buf).await else {
                    return;
                };
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .unwrap_or(0);
                if size == 0 {
                    let _ = read_line(&mut sock, &mut buf).await;
                    break;
                }
                if !fill(&mut sock, &mut buf, size + 2).await {
                    return;
                }
                body.extend(buf.drain(..size));
                buf.drain(..2);
            }
        }
        captured.lock().unwrap().push(Captured { conn, head, body });
        match &reply {
            Reply::Full(bytes) => {
                if sock.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Reply::FullThenClose(bytes) => {
                let _ = sock.write_all(bytes).await;
                let _ = sock.shutdown().await;
                return;
            }
            Reply::Delayed(delay, bytes) => {
                tokio::time::sleep(*delay).await;
                if sock.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Reply::Chunked { chunks, size } => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if sock.write_all(head).await.is_err() {
                    return;
                }
                for c in 0..*chunks {
                    let data: Vec<u8> = (c * size..(c + 1) * size)
                        .map(|i| (i % 251) as u8)
                        .collect();
                    let mut frame = format!("{size:x}\r\n").into_bytes();
                    frame.extend_from_slice(&data);
                    frame.extend_from_slice(b"\r\n");
                    if sock.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                if sock.write_all(b"0\r\n\r\n").await.is_err() {
                    return;
                }
            }
            Reply::Hang => {
                let mut tmp = [0u8; 1024];
                loop {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => {
                            closed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("pushpin.conf")
}

/// A self-signed certificate for `localhost` made with the `openssl` command, or `None` when
/// it is not installed.
pub fn self_signed(dir: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    Some((std::fs::read(cert).ok()?, std::fs::read(key).ok()?))
}
