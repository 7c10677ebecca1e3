//! The little HTTP/1.1 this tool speaks over raw tokio sockets: target URLs, client sockets bound
//! to several loopback source addresses, response heads (status, the framing headers), chunked
//! decoding, whole responses for request/response traffic, and request heads for the two
//! embedded servers. Only what the scenarios need; anything else is an error.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Maximum size of a response or request head.
pub const MAX_HEAD: usize = 64 * 1024;

/// Where requests go: `http://host:port[/prefix]` (or `ws://`), resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path prefix without a trailing `/` (usually empty).
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| format!("unsupported URL {url:?} (http:// or ws:// only)"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let with_port = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("cannot resolve {hostport}"))?;
        Ok(Target {
            addr,
            host: hostport.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

/// Opens a client connection. With `sources > 0` and an IPv4 loopback target, the socket is
/// bound to `127.0.0.<1 + index % sources>` first, so that `sources` × ~28k ephemeral ports are
/// available instead of ~28k; the port itself is left to `connect` (see
/// [`super::sys::bind_address_no_port`]).
pub async fn connect(target: &Target, index: usize, sources: usize) -> io::Result<TcpStream> {
    let sock = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if sources > 0 && target.addr.ip().is_loopback() && target.addr.is_ipv4() {
        let x = 1 + (index % sources.min(254)) as u8;
        super::sys::bind_address_no_port(&sock)?;
        sock.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, x)), 0))?;
    }
    let stream = sock.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Binds a listener with a deep accept queue (std and tokio use 128, which overflows when
/// hundreds of clients connect at once and costs them a 1 s SYN retransmission).
pub async fn listen(addr: &str) -> io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(65535)
}

/// How a response body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// The parts of a response head this tool uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// `Connection: close` or HTTP/1.0 without keep-alive.
    pub close: bool,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head at the start of `buf`: `Ok(None)` if incomplete, else the head and
/// its length. 1xx other than 101 are not expected from the servers this tool talks to.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err("response head too large".into());
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    // Invariant: httparse sets the code and version of a complete response.
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut framing = Framing::Close;
    let mut close = http10;
    let mut out = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if framing != Framing::Chunked {
                let n = value
                    .parse()
                    .map_err(|_| format!("bad content-length {value:?}"))?;
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
        out.push((h.name.to_string(), value));
    }
    if status == 204 || status == 304 || status == 101 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some((
        ResponseHead {
            status,
            framing,
            close,
            headers: out,
        },
        len,
    )))
}

/// Incremental decoder of `Transfer-Encoding: chunked` bodies (extensions and trailers are
/// skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDecoder {
    state: ChunkState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ChunkState {
    Size { size: u64, digits: u32, ext: bool },
    Data(u64),
    DataEnd,
    Trailer { empty: bool },
    Done,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    pub fn new() -> Self {
        ChunkDecoder {
            state: ChunkState::Size {
                size: 0,
                digits: 0,
                ext: false,
            },
        }
    }

    /// True once the last chunk and the trailer section were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input`, appending body bytes to `out`. Returns how many input bytes were
    /// consumed: all of them unless the body ended inside `input`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                ChunkState::Size { size, digits, ext } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            if *digits == 0 {
                                return Err("empty chunk size".into());
                            }
                            self.state = if *size == 0 {
                                ChunkState::Trailer { empty: true }
                            } else {
                                ChunkState::Data(*size)
                            };
                        }
                        b'\r' => {}
                        _ if *ext => {}
                        b';' | b' ' | b'\t' => *ext = true,
                        _ => {
                            let d = (b as char)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {b:#x}"))?;
                            if *digits >= 15 {
                                return Err("chunk size too large".into());
                            }
                            *size = *size * 16 + u64::from(d);
                            *digits += 1;
                        }
                    }
                }
                ChunkState::Data(rem) => {
                    let n = (*rem).min((input.len() - i) as u64) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    *rem -= n as u64;
                    if *rem == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' => {
                            self.state = ChunkState::Size {
                                size: 0,
                                digits: 0,
                                ext: false,
                            }
                        }
                        _ => return Err("missing CRLF after chunk data".into()),
                    }
                }
                ChunkState::Trailer { empty } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' if *empty => {
                            self.state = ChunkState::Done;
                            return Ok(i);
                        }
                        b'\n' => *empty = true,
                        _ => *empty = false,
                    }
                }
                ChunkState::Done => return Ok(i),
            }
        }
        Ok(i)
    }
}

/// A whole response to a plain request.
#[derive(Debug)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
}

/// Reads one whole response from `stream`. `buf` carries bytes read past a previous response
/// and keeps bytes read past this one.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let (head, len) = loop {
        if let Some(h) = parse_response_head(buf).map_err(bad)? {
            break h;
        }
        read_more(stream, buf).await?;
    };
    buf.drain(..len);
    let mut body = Vec::new();
    match head.framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).map_err(|_| bad("content-length too large".into()))?;
            while buf.len() < n {
                read_more(stream, buf).await?;
            }
            body.extend(buf.drain(..n));
        }
        Framing::Chunked => {
            let mut dec = ChunkDecoder::new();
            loop {
                let used = dec.feed(buf, &mut body).map_err(bad)?;
                buf.drain(..used);
                if dec.is_done() {
                    break;
                }
                read_more(stream, buf).await?;
            }
        }
        Framing::Close => loop {
            body.append(buf);
            let mut tmp = [0u8; 8192];
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&tmp[..n]);
        },
    }
    Ok(Response { head, body })
}

/// Appends what the socket has to `buf`; end of stream is an error.
pub async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut tmp = [0u8; 8192];
    let n = stream.read(&mut tmp).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buf.extend_from_slice(&tmp[..n]);
    Ok(())
}

/// Sends a request with a body on a keep-alive connection and reads the response. The request
/// says `Connection: keep-alive`: Holdfast's publish API keeps only connections that ask
/// (Pushpin's closes every one, and the caller reconnects when told `close`).
pub async fn post(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    host: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    stream.write_all(&req).await?;
    read_response(stream, buf).await
}

/// A request received by one of the embedded servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The client asked to close (or spoke HTTP/1.0 without keep-alive).
    pub close: bool,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw (not percent-decoded) value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, q) = self.target.split_once('?')?;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// Parses one whole request (head and body) at the start of `buf`: `Ok(None)` if more bytes
/// are needed, else the request and how many bytes it used.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err("request head too large".into());
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("bad request head: {e}")),
    };
    let mut content_type = String::new();
    let mut length = 0u64;
    let mut chunked = false;
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        let v = String::from_utf8_lossy(h.value);
        let v = v.trim();
        if h.name.eq_ignore_ascii_case("content-type") {
            content_type = v.to_string();
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length = v.parse().map_err(|_| format!("bad content-length {v:?}"))?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().ends_with("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    let rest = &buf[head_len..];
    let (body, used) = if chunked {
        let mut dec = ChunkDecoder::new();
        let mut body = Vec::new();
        let used = dec.feed(rest, &mut body)?;
        if !dec.is_done() {
            return Ok(None);
        }
        (body, used)
    } else {
        let n = usize::try_from(length).map_err(|_| "content-length too large".to_string())?;
        if rest.len() < n {
            return Ok(None);
        }
        (rest[..n].to_vec(), n)
    };
    let request = Request {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        content_type,
        body,
        close,
    };
    Ok(Some((request, head_len + used)))
}

/// A response with a `Content-Length` body and extra header lines (each ending in CRLF).
pub fn simple_response(status: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls() {
        let t = Target::parse("http://127.0.0.1:7999").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7999".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:7999");
        assert_eq!(t.prefix, "");
        let t = Target::parse("ws://127.0.0.1:8000/base/").unwrap();
        assert_eq!(t.prefix, "/base");
        assert!(Target::parse("https://x").is_err());
    }

    #[test]
    fn response_heads() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Ty").unwrap(),
            None
        );
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        let (h, n) = parse_response_head(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 3);
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.close);
        assert_eq!(h.header("content-type"), Some("text/plain"));
        let (h, _) = parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.close);
        let (h, _) =
            parse_response_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((h.status, h.framing), (101, Framing::Length(0)));
        let (h, _) = parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Close);
        assert!(h.close);
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_response_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunks_whole_and_byte_by_byte() {
        let raw = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut dec = ChunkDecoder::new();
        let mut out = Vec::new();
        let used = dec.feed(raw, &mut out).unwrap();
        assert!(dec.is_done());
        assert_eq!(out, b"hello, world");
        assert_eq!(&raw[used..], b"NEXT");

        let mut dec = ChunkDecoder::new();
        let mut out = Vec::new();
        let mut total = 0;
        for b in raw.iter() {
            if dec.is_done() {
                break;
            }
            total += dec.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, b"hello, world");
        assert_eq!(total, used);
    }

    #[test]
    fn chunk_errors() {
        let mut out = Vec::new();
        assert!(ChunkDecoder::new().feed(b"\r\n", &mut out).is_err());
        assert!(ChunkDecoder::new().feed(b"zz\r\n", &mut out).is_err());
        assert!(ChunkDecoder::new().feed(b"1\r\nab", &mut out).is_err());
        assert!(ChunkDecoder::new()
            .feed(b"ffffffffffffffffff\r\n", &mut out)
            .is_err());
        let mut dec = ChunkDecoder::new();
        assert_eq!(dec.feed(b"A\r\n0123", &mut out).unwrap(), 7);
        assert!(!dec.is_done());
    }

    #[test]
    fn requests() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(),
            None
        );
        let raw = b"GET /stream?channel=a&x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /";
        let (r, n) = parse_request(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 5);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/stream");
        assert_eq!(r.query("channel"), Some("a"));
        assert_eq!(r.query("x"), Some("1"));
        assert_eq!(r.query("y"), None);
        assert!(!r.close);

        let raw = b"POST /publish/ HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab";
        assert_eq!(parse_request(raw).unwrap(), None);
        let raw = b"POST /publish/ HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd";
        let (r, n) = parse_request(raw).unwrap().unwrap();
        assert_eq!(
            (r.body.as_slice(), n, r.close),
            (&b"abcd"[..], raw.len(), true)
        );
        assert_eq!(r.content_type, "application/json");

        let raw =
            b"POST /ws HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nOPEN\r\n\r\n0\r\n\r\n";
        let (r, n) = parse_request(raw).unwrap().unwrap();
        assert_eq!((r.body.as_slice(), n), (&b"OPEN\r\n"[..], raw.len()));
    }
}
