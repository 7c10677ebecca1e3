//! The control-API client: one HTTP/1.0 `POST <path>/publish/` over a blocking
//! [`TcpStream`], optionally inside rustls.
//!
//! HTTP/1.0 keeps the client trivial and is what `pushpin-publish` sends: the request carries
//! `Content-Length`, the server closes after its answer, and there is no chunked encoding to
//! decode. The request head is byte-for-byte Pushpin's (`Host`, `Content-Type`,
//! `Content-Length`, then `Authorization` if any). A full HTTP client crate would bring a large
//! dependency tree for one request.
//!
//! TLS verifies the server against the Mozilla roots in `webpki-roots`, plus every certificate
//! in the PEM file named by `SSL_CERT_FILE` (the variable OpenSSL and `rustls-native-certs`,
//! which Pushpin uses, honour), so a private CA works without a system trust store.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::Auth;

/// How much of a response is read. The control API answers in a few bytes; the cap only stops
/// a misdirected spec (some other server) from streaming without end.
const MAX_RESPONSE: usize = 64 * 1024;

/// A parsed `http://` or `https://` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https`.
    pub tls: bool,
    /// The authority as written (`host[:port]`), sent as `Host`.
    pub host: String,
    /// The host to resolve and, for TLS, the server name (IPv6 without brackets).
    pub connect_host: String,
    /// The port, 80 or 443 unless given.
    pub port: u16,
    /// The base path without trailing `/`, query or fragment (empty for the root).
    pub path: String,
}

impl Url {
    /// Parses a spec. Beyond Pushpin's parser: bracketed IPv6 hosts work, a trailing `/` on the
    /// path is dropped (Pushpin would POST to `//publish/`), and a query or fragment is ignored.
    pub fn parse(spec: &str) -> Result<Self, HttpError> {
        let invalid = |reason| HttpError::InvalidUrl {
            url: spec.to_string(),
            reason,
        };
        let (scheme, rest) = spec
            .split_once("://")
            .ok_or(invalid("expected scheme://host"))?;
        let tls = match scheme {
            "http" => false,
            "https" => true,
            _ => return Err(invalid("scheme must be http or https")),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (host, path) = match rest.find('/') {
            Some(pos) => rest.split_at(pos),
            None => (rest, ""),
        };
        if host.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported, use -u or -B",
            ));
        }
        let (connect_host, port) = if let Some(bracketed) = host.strip_prefix('[') {
            let (addr, after) = bracketed
                .split_once(']')
                .ok_or(invalid("unterminated [ in host"))?;
            match after {
                "" => (addr, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (addr, Some(port)),
                    None => return Err(invalid("unexpected text after ]")),
                },
            }
        } else {
            match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            }
        };
        if connect_host.is_empty() {
            return Err(invalid("missing host"));
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| invalid("invalid port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Self {
            tls,
            host: host.to_string(),
            connect_host: connect_host.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The request target: `<path>/publish/`.
    pub fn publish_path(&self) -> String {
        format!("{}/publish/", self.path)
    }
}

/// Why the control-API request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The spec is not a usable URL.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The spec as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// `host:port`.
        addr: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No address of the host accepted the connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The last address's error.
        #[source]
        source: io::Error,
    },
    /// The TLS client could not be set up (bad `SSL_CERT_FILE`, bad server name).
    #[error("TLS setup failed: {0}")]
    TlsSetup(String),
    /// Sending the request or reading the answer failed (TLS handshake errors land here).
    #[error("error {stage} {addr}: {source}")]
    Io {
        /// What was being done.
        stage: &'static str,
        /// `host:port`.
        addr: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The server went quiet for longer than `--timeout`.
    #[error("timed out {stage} {addr} (no progress for {secs}s)")]
    Timeout {
        /// What was being done.
        stage: &'static str,
        /// `host:port`.
        addr: String,
        /// The timeout.
        secs: u64,
    },
    /// The answer is not HTTP.
    #[error("invalid response from {addr}: {reason}")]
    BadResponse {
        /// `host:port`.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with a status other than 200. Displays the server's error text
    /// (what Pushpin prints), or the status line when the body is empty.
    #[error("{}", rejected_text(*.status, .reason, .text))]
    Rejected {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// The body, trimmed.
        text: String,
    },
}

fn rejected_text(status: u16, reason: &str, text: &str) -> String {
    if text.is_empty() {
        format!("server answered {status} {reason}")
    } else {
        text.to_string()
    }
}

/// The request head, exactly as `pushpin-publish` writes it.
pub fn request_head(url: &Url, auth: Option<&Auth>, body_len: usize) -> String {
    let mut head = format!(
        "POST {} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        url.publish_path(),
        url.host,
        body_len
    );
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: {}\r\n", auth.header_value()));
    }
    head.push_str("\r\n");
    head
}

/// The parts of a response head that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Length of the head including the blank line.
    pub head_len: usize,
    /// `Content-Length`, if sent (else the body runs to the end of the connection).
    pub content_length: Option<usize>,
}

/// Parses the response head from the bytes read so far: `Ok(None)` until it is complete.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let content_length = match response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        Some(h) => Some(
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("invalid Content-Length")?,
        ),
        None => None,
    };
    Ok(Some(ResponseHead {
        // Complete responses always have both; the defaults are never used.
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_string(),
        head_len,
        content_length,
    }))
}

/// Posts `body` (the `{"items":[…]}` document) and succeeds only on a `200` answer.
pub fn post(
    url: &Url,
    auth: Option<&Auth>,
    body: &[u8],
    timeout: Option<Duration>,
) -> Result<(), HttpError> {
    let addr = format!("{}:{}", url.connect_host, url.port);
    // TLS is set up before connecting so a bad SSL_CERT_FILE fails without touching the server.
    let tls = if url.tls {
        let name = ServerName::try_from(url.connect_host.clone())
            .map_err(|err| HttpError::TlsSetup(format!("{}: {err}", url.connect_host)))?;
        let conn = ClientConnection::new(tls_config()?, name)
            .map_err(|err| HttpError::TlsSetup(err.to_string()))?;
        Some(conn)
    } else {
        None
    };
    let tcp = connect(url, &addr, timeout)?;
    let mut stream = match tls {
        Some(conn) => Stream::Tls(Box::new(StreamOwned::new(conn, tcp))),
        None => Stream::Plain(tcp),
    };

    let io_err = |stage, source: io::Error| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout {
            stage,
            addr: addr.clone(),
            secs: timeout.map_or(0, |t| t.as_secs()),
        },
        _ => HttpError::Io {
            stage,
            addr: addr.clone(),
            source,
        },
    };

    if let Stream::Tls(tls) = &mut stream {
        // Handshake first so a failure there is reported as such (a plain-HTTP server on an
        // https spec shows up as a handshake timeout, not as a failed request write).
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| io_err("in the TLS handshake with", e))?;
        }
    }

    let mut request = request_head(url, auth, body.len()).into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .and_then(|()| stream.flush())
        .map_err(|e| io_err("sending the request to", e))?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut head: Option<ResponseHead> = None;
    loop {
        if let Some(h) = &head {
            let have = buf.len() - h.head_len;
            if h.content_length.is_some_and(|len| have >= len) || have >= MAX_RESPONSE {
                break;
            }
        } else if buf.len() >= MAX_RESPONSE {
            return Err(HttpError::BadResponse {
                addr,
                reason: "response head too large".into(),
            });
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A TLS peer closing without close_notify: the HTTP/1.0 answer ends there anyway.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && head.is_some() => 0,
            Err(e) => return Err(io_err("reading the response from", e)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if head.is_none() {
            head = parse_response_head(&buf).map_err(|reason| HttpError::BadResponse {
                addr: addr.clone(),
                reason,
            })?;
        }
    }

    let head = head.ok_or_else(|| HttpError::BadResponse {
        addr: addr.clone(),
        reason: if buf.is_empty() {
            "connection closed without a response".into()
        } else {
            "connection closed inside the response head".into()
        },
    })?;
    if head.status == 200 {
        return Ok(());
    }
    let mut body = &buf[head.head_len..];
    if let Some(len) = head.content_length {
        body = &body[..len.min(body.len())];
    }
    Err(HttpError::Rejected {
        status: head.status,
        reason: head.reason,
        text: String::from_utf8_lossy(body).trim().to_string(),
    })
}

/// Connects to the first address of the host that accepts, within `timeout` per address.
fn connect(url: &Url, addr: &str, timeout: Option<Duration>) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = (url.connect_host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    for sockaddr in addrs {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&sockaddr, t),
            None => TcpStream::connect(sockaddr),
        };
        match attempt {
            Ok(stream) => {
                let configured = stream
                    .set_read_timeout(timeout)
                    .and_then(|()| stream.set_write_timeout(timeout))
                    .and_then(|()| stream.set_nodelay(true));
                return match configured {
                    Ok(()) => Ok(stream),
                    Err(source) => Err(HttpError::Connect {
                        addr: addr.to_string(),
                        source,
                    }),
                };
            }
            Err(err) => last = err,
        }
    }
    Err(HttpError::Connect {
        addr: addr.to_string(),
        source: last,
    })
}

/// The rustls client configuration: ring, safe defaults, webpki roots plus `SSL_CERT_FILE`.
fn tls_config() -> Result<Arc<ClientConfig>, HttpError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let shown = path.to_string_lossy().into_owned();
        let fail = |err: String| HttpError::TlsSetup(format!("SSL_CERT_FILE {shown}: {err}"));
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|err| fail(err.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| fail(err.to_string()))?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(fail("no usable certificates".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| HttpError::TlsSetup(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(spec: &str) -> Url {
        Url::parse(spec).unwrap()
    }

    #[test]
    fn parses_specs() {
        let u = url("http://localhost:5561");
        assert_eq!(
            u,
            Url {
                tls: false,
                host: "localhost:5561".into(),
                connect_host: "localhost".into(),
                port: 5561,
                path: String::new(),
            }
        );
        assert_eq!(u.publish_path(), "/publish/");
        assert_eq!(url("http://h").port, 80);
        assert_eq!(url("https://h").port, 443);
        assert!(url("https://h").tls);
        assert_eq!(url("http://h:1/").publish_path(), "/publish/");
        assert_eq!(url("http://h:1/base").publish_path(), "/base/publish/");
        assert_eq!(url("http://h:1/a/b//").publish_path(), "/a/b/publish/");
        assert_eq!(url("http://h:1/a?key=x#f").publish_path(), "/a/publish/");
        assert_eq!(url("http://h:1?key=x").publish_path(), "/publish/");
        let v6 = url("http://[::1]:5561/x");
        assert_eq!(
            (v6.host.as_str(), v6.connect_host.as_str(), v6.port),
            ("[::1]:5561", "::1", 5561)
        );
        assert_eq!(url("https://[::1]").port, 443);
    }

    #[test]
    fn rejects_bad_specs() {
        for spec in [
            "http:foo",
            "ftp://h",
            "http://",
            "http://:80",
            "http://h:abc",
            "http://h:99999",
            "http://u:p@h",
            "http://[::1",
            "http://[::1]x",
        ] {
            let err = Url::parse(spec).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid URL {spec}: ")),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn request_head_matches_pushpin() {
        assert_eq!(
            request_head(&url("http://127.0.0.1:5561"), None, 42),
            "POST /publish/ HTTP/1.0\r\nHost: 127.0.0.1:5561\r\n\
             Content-Type: application/json\r\nContent-Length: 42\r\n\r\n"
        );
        assert_eq!(
            request_head(
                &url("https://api.example.com/realm"),
                Some(&Auth::Basic("user:pass".into())),
                1
            ),
            "POST /realm/publish/ HTTP/1.0\r\nHost: api.example.com\r\n\
             Content-Type: application/json\r\nContent-Length: 1\r\n\
             Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
        );
        assert!(
            request_head(&url("https://h"), Some(&Auth::Bearer("tok".into())), 1)
                .ends_with("Authorization: Bearer tok\r\n\r\n")
        );
    }

    #[test]
    fn parses_response_heads() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Le"),
            Ok(None)
        );
        let head = parse_response_head(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nabc",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            head,
            ResponseHead {
                status: 400,
                reason: "Bad Request".into(),
                head_len: 73,
                content_length: Some(5),
            }
        );
        let head = parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.content_length, None);
        assert!(parse_response_head(b"garbage\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn rejected_shows_server_text_or_status() {
        let with_text = HttpError::Rejected {
            status: 400,
            reason: "Bad Request".into(),
            text: "Invalid format: boom".into(),
        };
        assert_eq!(with_text.to_string(), "Invalid format: boom");
        let empty = HttpError::Rejected {
            status: 502,
            reason: "Bad Gateway".into(),
            text: String::new(),
        };
        assert_eq!(empty.to_string(), "server answered 502 Bad Gateway");
    }
}
