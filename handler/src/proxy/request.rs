//! The client's request as the proxy sees it: scheme, host, port and path taken from the
//! request target and the `Host` header, and the request URI built from them (Pushpin builds the
//! same URI; it is what the logs show and what routes match against).

use holdfast_proto::internal::{Header, RequestHead};

use crate::error::ProxyError;

/// Host used when the request names none (HTTP/1.0 without `Host`), as Pushpin does.
const DEFAULT_HOST: &str = "localhost";

/// A parsed client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// Method as sent.
    pub method: String,
    /// TLS from the client (or trusted `X-Forwarded-Proto`); selects `https` as scheme.
    pub secure: bool,
    /// Host without port (IPv6 without brackets).
    pub host: String,
    /// Port, if the request named one.
    pub port: Option<u16>,
    /// Encoded path with query, as received (always starts with `/`, or is `*`).
    pub path: String,
    /// Headers as received.
    pub headers: Vec<Header>,
    /// Client address.
    pub peer_addr: String,
}

/// Length of the request body towards the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// No body at all.
    Empty,
    /// `Content-Length` from the client.
    Known(u64),
    /// A body of unknown length (the client sent it chunked): chunked to the backend too.
    Unknown,
}

impl ClientRequest {
    /// Parses a request head. With `accept_x_forwarded_protocol`, an incoming
    /// `X-Forwarded-Proto: https` (or `wss`) marks the request secure.
    pub fn from_head(
        head: &RequestHead,
        accept_x_forwarded_protocol: bool,
    ) -> Result<Self, ProxyError> {
        let (authority, path) = split_target(&head.target)?;
        let authority = match authority {
            Some(a) => a.to_string(),
            None => header_value(&head.headers, "Host")
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_HOST.to_string()),
        };
        let (host, port) = split_host_port(&authority)
            .ok_or_else(|| ProxyError::InvalidRequest(format!("invalid host '{authority}'")))?;
        let mut secure = head.secure;
        if accept_x_forwarded_protocol {
            if let Some(v) = header_value(&head.headers, "X-Forwarded-Proto") {
                let v = String::from_utf8_lossy(v);
                let v = v.trim();
                if v.eq_ignore_ascii_case("https") || v.eq_ignore_ascii_case("wss") {
                    secure = true;
                }
            }
        }
        Ok(Self {
            method: head.method.clone(),
            secure,
            host,
            port,
            path,
            headers: head.headers.clone(),
            peer_addr: head.peer_addr.clone(),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    /// `host[:port]`, IPv6 in brackets.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }

    /// The full request URI, e.g. `http://example.com:8000/path?q`.
    pub fn uri(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.authority(), self.path)
    }
}

/// Formats `host[:port]`, bracketing IPv6 addresses.
pub fn authority(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Splits a request target into the authority it carries (absolute form only) and the path
/// with query.
fn split_target(target: &str) -> Result<(Option<&str>, String), ProxyError> {
    if target.starts_with('/') || target == "*" {
        return Ok((None, target.to_string()));
    }
    if let Some(at) = target.find("://") {
        let scheme = &target[..at];
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            let rest = &target[at + 3..];
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            // Strip userinfo, which has no business in a proxied request.
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            let path = if path.is_empty() {
                "/".to_string()
            } else if path.starts_with('?') {
                format!("/{path}")
            } else {
                path.to_string()
            };
            return Ok((Some(authority), path));
        }
    }
    Err(ProxyError::InvalidRequest(format!(
        "unsupported request target '{target}'"
    )))
}

/// Splits `host[:port]` / `[v6][:port]`. `None` if malformed.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (s, None),
        }
    };
    if host.is_empty() || !host.bytes().all(is_host_byte) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// Bytes allowed in a URI host (reg-name, IPv4, IPv6 inside brackets).
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b)
}

/// The first value of a header, ignoring name case.
pub fn header_value<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|h| h.is(name)).map(|h| h.1.as_ref())
}

/// Decides how the request body is framed towards the backend.
pub fn body_length(headers: &[Header], head_body_len: usize, more: bool) -> BodyLength {
    if let Some(v) = header_value(headers, "Content-Length") {
        if let Some(n) = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            return BodyLength::Known(n);
        }
        return BodyLength::Unknown;
    }
    if header_value(headers, "Transfer-Encoding").is_some() || more || head_body_len > 0 {
        return BodyLength::Unknown;
    }
    BodyLength::Empty
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use holdfast_proto::internal::{HttpVersion, StreamId};

    fn head(target: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            id: StreamId(1),
            method: "GET".into(),
            target: target.into(),
            version: HttpVersion::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(*n, Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
            peer_addr: "10.0.0.1".into(),
            peer_port: 1234,
            secure: false,
            local_port: 7999,
            body: Bytes::new(),
            more: false,
            credits: 1000,
        }
    }

    #[test]
    fn uri_from_host_header() {
        let req =
            ClientRequest::from_head(&head("/a/b?c=1", &[("host", "example.com:8000")]), false)
                .unwrap();
        assert_eq!(req.host, "example.com");
        assert_eq!(req.port, Some(8000));
        assert_eq!(req.uri(), "http://example.com:8000/a/b?c=1");
    }

    #[test]
    fn uri_without_host_uses_localhost() {
        let req = ClientRequest::from_head(&head("/t/", &[]), false).unwrap();
        assert_eq!(req.uri(), "http://localhost/t/");
    }

    #[test]
    fn absolute_form_overrides_host() {
        let req = ClientRequest::from_head(
            &head("http://foo.example:81/x?y", &[("Host", "bar")]),
            false,
        )
        .unwrap();
        assert_eq!(req.uri(), "http://foo.example:81/x?y");
        let req = ClientRequest::from_head(&head("http://foo.example?q", &[]), false).unwrap();
        assert_eq!(req.path, "/?q");
        let req = ClientRequest::from_head(&head("http://u:p@foo.example", &[]), false).unwrap();
        assert_eq!(req.uri(), "http://foo.example/");
    }

    #[test]
    fn secure_and_forwarded_proto() {
        let mut h = head("/", &[("Host", "h"), ("X-Forwarded-Proto", "https")]);
        assert_eq!(
            ClientRequest::from_head(&h, false).unwrap().scheme(),
            "http"
        );
        assert_eq!(
            ClientRequest::from_head(&h, true).unwrap().uri(),
            "https://h/"
        );
        h.headers.clear();
        h.secure = true;
        assert_eq!(
            ClientRequest::from_head(&h, false).unwrap().uri(),
            "https://localhost/"
        );
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(
            split_host_port("[::1]:8080"),
            Some(("::1".into(), Some(8080)))
        );
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), None)));
        assert_eq!(authority("::1", Some(80)), "[::1]:80");
        let req = ClientRequest::from_head(&head("/", &[("Host", "[::1]:80")]), false).unwrap();
        assert_eq!(req.uri(), "http://[::1]:80/");
    }

    #[test]
    fn bad_hosts_and_targets_are_rejected() {
        for bad in ["", "a b", "h:99999", "h:x", "::1", "[::1", "a/b", "[::1]x"] {
            assert_eq!(split_host_port(bad), None, "{bad:?}");
        }
        assert!(ClientRequest::from_head(&head("/", &[("Host", "a b")]), false).is_err());
        assert!(ClientRequest::from_head(&head("example.com:443", &[]), false).is_err());
        assert!(ClientRequest::from_head(&head("ftp://x/", &[]), false).is_err());
        assert!(ClientRequest::from_head(&head("*", &[("Host", "h")]), false).is_ok());
    }

    #[test]
    fn body_length_rules() {
        let cl = [Header::new("content-length", " 12 ")];
        assert_eq!(body_length(&cl, 12, false), BodyLength::Known(12));
        let te = [Header::new("Transfer-Encoding", "chunked")];
        assert_eq!(body_length(&te, 0, true), BodyLength::Unknown);
        assert_eq!(body_length(&[], 0, false), BodyLength::Empty);
        assert_eq!(body_length(&[], 3, false), BodyLength::Unknown);
        assert_eq!(
            body_length(&[Header::new("Content-Length", "0")], 0, false),
            BodyLength::Known(0)
        );
    }
}
