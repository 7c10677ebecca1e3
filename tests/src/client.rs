//! A raw HTTP/1.x client: writes exactly the bytes a test gives it and parses responses strictly
//! enough to assert framing (Content-Length vs chunked vs close-delimited).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl Response {
    /// First value of a header, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to holdfast");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("set timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// Reads one response. `head` says the request was HEAD (no body follows).
    pub fn read_response(&mut self, head: bool) -> Response {
        self.try_read_response(head).expect("read response")
    }

    /// Reads one response, or says why none could be read.
    pub fn try_read_response(&mut self, head: bool) -> Result<Response, String> {
        let end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if !self.fill()? {
                return Err(format!(
                    "connection closed before a response head ({} bytes)",
                    self.buf.len()
                ));
            }
        };
        let head_text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status = lines.next().ok_or("empty head")?;
        let mut parts = status.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let code: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or(format!("bad status line {status:?}"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        let mut response = Response {
            version,
            code,
            reason,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if head || code < 200 || code == 204 || code == 304 {
            return Ok(response);
        }
        if response
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.chunked = true;
            loop {
                let line = self.read_line()?;
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| format!("bad chunk size line {line:?}"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                let data = self.read_exact_bytes(size)?;
                response.body.extend_from_slice(&data);
                if !self.read_line()?.is_empty() {
                    return Err("chunk not followed by CRLF".into());
                }
            }
        } else if let Some(len) = response.header("Content-Length") {
            let len: usize = len.parse().map_err(|_| "bad content-length")?;
            response.body = self.read_exact_bytes(len)?;
        } else {
            while self.fill()? {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// Reads until the server closes; returns what arrived.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while let Ok(true) = self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        matches!(self.fill(), Ok(false) | Err(_))
    }

    /// Sets the read timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set timeout");
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(false),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return Ok(line);
            }
            if !self.fill()? {
                return Err("closed mid-line".into());
            }
        }
    }

    fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(format!("closed after {} of {n} body bytes", self.buf.len()));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// GETs `path` on a fresh connection with HTTP/1.1 and `Connection: close`.
pub fn get(port: u16, path: &str) -> Response {
    let mut client = Client::connect(port);
    client.send(
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    client.read_response(false)
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
