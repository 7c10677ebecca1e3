//! A real HTTP/1.1 backend on loopback, one thread per connection, that records every request it
//! receives (exactly as it arrived) and answers with whatever the test's closure returns.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::client::find;

/// A request as the backend received it.
#[derive(Clone, Debug)]
pub struct BackendRequest {
    /// Method.
    pub method: String,
    /// Request target.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// De-chunked body.
    pub body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl BackendRequest {
    /// First value of a header, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a header is present.
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// What the backend sends back.
pub enum BackendResponse {
    /// A complete response; `Content-Length` is added.
    Full {
        /// Status.
        code: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// A chunked response written chunk by chunk with a pause between chunks.
    Chunked {
        /// Status.
        code: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Chunks.
        chunks: Vec<Vec<u8>>,
        /// Pause between chunks.
        pause: Duration,
    },
    /// Bytes written verbatim, then the connection is closed.
    Raw(Vec<u8>),
}

impl BackendResponse {
    /// A 200 text/plain response.
    pub fn text(body: &str) -> Self {
        Self::Full {
            code: 200,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(&BackendRequest) -> BackendResponse + Send + Sync;

/// A running backend; stops when dropped.
pub struct Backend {
    /// Its port on 127.0.0.1.
    pub port: u16,
    requests: Arc<Mutex<Vec<BackendRequest>>>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Starts a backend answering with `handler`.
    pub fn start(
        handler: impl Fn(&BackendRequest) -> BackendResponse + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, stopping) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handler, reqs) = (handler.clone(), reqs.clone());
                thread::spawn(move || serve(stream, &*handler, &reqs));
            }
        });
        Self {
            port,
            requests,
            stop,
        }
    }

    /// A backend that echoes method, target and body back as text.
    pub fn echo() -> Self {
        Self::start(|req| BackendResponse::Full {
            code: 200,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("X-Echo".into(), "1".into()),
            ],
            body: req.body.clone(),
        })
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<BackendRequest> {
        self.requests.lock().expect("lock").clone()
    }

    /// The most recent request.
    pub fn last(&self) -> BackendRequest {
        self.requests()
            .pop()
            .expect("the backend received a request")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<BackendRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            return;
        };
        requests.lock().expect("lock").push(request.clone());
        let close = request
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let ok = match handler(&request) {
            BackendResponse::Full {
                code,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
                for (n, v) in &headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                if code != 204 && code != 304 && !(100..200).contains(&code) {
                    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                if request.method != "HEAD" {
                    bytes.extend_from_slice(&body);
                }
                stream.write_all(&bytes).is_ok()
            }
            BackendResponse::Chunked {
                code,
                headers,
                chunks,
                pause,
            } => {
                let mut out = format!(
                    "HTTP/1.1 {code} {}\r\nTransfer-Encoding: chunked\r\n",
                    reason(code)
                );
                for (n, v) in &headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut ok = stream.write_all(out.as_bytes()).is_ok();
                for chunk in chunks {
                    thread::sleep(pause);
                    let mut bytes = format!("{:x}\r\n", chunk.len()).into_bytes();
                    bytes.extend_from_slice(&chunk);
                    bytes.extend_from_slice(b"\r\n");
                    ok = ok && stream.write_all(&bytes).is_ok();
                }
                ok && stream.write_all(b"0\r\n\r\n").is_ok()
            }
            BackendResponse::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
        };
        if !ok || close {
            return;
        }
    }
}

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<BackendRequest> {
    let end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        fill(stream, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let version = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let mut request = BackendRequest {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if request
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.chunked = true;
        loop {
            let line = read_line(stream, buf)?;
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !read_line(stream, buf)?.is_empty() {}
                break;
            }
            while buf.len() < size + 2 {
                fill(stream, buf)?;
            }
            request.body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(len) = request
        .header("Content-Length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        while buf.len() < len {
            fill(stream, buf)?;
        }
        request.body = buf.drain(..len).collect();
    }
    Some(request)
}

fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(pos) = find(buf, b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..pos]).into_owned();
            buf.drain(..pos + 2);
            return Some(line);
        }
        fill(stream, buf)?;
    }
}

fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 65536];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}
