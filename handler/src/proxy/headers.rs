//! Header rewriting in both directions (reference §4.9 for requests, §1.3.1 for responses).
//!
//! Requests: the steps run in Pushpin's order (route `header=` first, then the hop-by-hop and
//! `Grip-*` removal, `CDN-Loop`, `X-Forwarded-Proto`, `X-Forwarded-For`), so a route cannot
//! re-add a hop-by-hop header and the forwarding headers always come last. `Host`,
//! `Content-Length` and `Transfer-Encoding` are left to the request builder: `Host` depends on
//! the target (`host=`) and the body framing is decided from the client's framing.
//!
//! Responses: hop-by-hop headers go, everything else (including `Content-Length`, which tells the
//! connmgr the body size) passes.

use bytes::Bytes;
use holdfast_proto::config::{ProxyConfig, XffRule};
use holdfast_proto::internal::Header;

/// Request headers never forwarded: they describe the client hop only. `Accept-Encoding` is
/// dropped as Pushpin does (the backend then answers uncompressed unless it insists);
/// `Content-Length`/`Transfer-Encoding`/`Host` are set again by the request builder.
const REQUEST_HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Accept-Encoding",
    "Content-Encoding",
    "Transfer-Encoding",
    "Content-Length",
    "Expect",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Connection",
    "Host",
];

/// Response headers never passed to the connmgr, which frames the body itself.
///
/// Unlike Pushpin, `Content-Encoding` is kept: Pushpin's zurl (libcurl) advertises compression
/// and decodes the body, so the header would be wrong after it; Holdfast forwards the body
/// bytes untouched, so a compressed body must keep saying so.
const RESPONSE_HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Transfer-Encoding",
    "Proxy-Connection",
    "Trailer",
    "Upgrade",
];

/// Prefix of headers carrying the client's original headers for `orig_headers` routes.
const ORIG_HEADER_PREFIX: &str = "eb9bf0f5-";

/// Inputs of [`forward_headers`].
#[derive(Clone, Copy, Debug)]
pub struct ForwardParams<'a> {
    /// `[proxy]` settings.
    pub proxy: &'a ProxyConfig,
    /// Route `header=Name:value` items (empty value deletes).
    pub route_headers: &'a [(String, String)],
    /// Route `orig_headers`.
    pub orig_headers: bool,
    /// The request is https (connection or trusted `X-Forwarded-Proto`).
    pub secure: bool,
    /// Client IP, for `X-Forwarded-For: append`.
    pub peer_addr: &'a str,
    /// The client proved itself with `upstream_key` (`grip::sign`). Trusted clients keep
    /// their `Grip-*` headers and use `x_forwarded_for_trusted`.
    pub trusted: bool,
}

/// The headers to send to the backend, in order, without `Host`, `Content-Length` and
/// `Transfer-Encoding`.
pub fn forward_headers(incoming: &[Header], p: &ForwardParams<'_>) -> Vec<Header> {
    let mut headers: Vec<Header> = incoming.to_vec();

    for (name, value) in p.route_headers {
        remove_all(&mut headers, name);
        if !value.is_empty() {
            headers.push(Header::new(name.clone(), Bytes::from(value.clone())));
        }
    }

    apply_orig_headers(
        &mut headers,
        p.orig_headers && !p.trusted,
        &p.proxy.orig_headers_need_mark,
    );

    // Headers the client named as hop-by-hop in Connection go too (RFC 9110 §7.6.1).
    let named: Vec<String> = values(&headers, "Connection")
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    for name in named
        .iter()
        .map(String::as_str)
        .chain(REQUEST_HOP_BY_HOP.iter().copied())
    {
        remove_all(&mut headers, name);
    }

    if p.proxy.accept_pushpin_route {
        remove_all(&mut headers, "Pushpin-Route");
    }

    if let Some(cdn_loop) = p.proxy.cdn_loop.as_deref().filter(|v| !v.is_empty()) {
        let mut loops = values(&headers, "CDN-Loop");
        remove_all(&mut headers, "CDN-Loop");
        loops.push(cdn_loop.to_string());
        headers.push(Header::new("CDN-Loop", loops.join(", ")));
    }

    if !p.trusted {
        headers.retain(|h| !starts_with_ignore_case(&h.0, "Grip-"));
    }
    // Grip-Sig and Grip-Feature are added by the caller (`grip::sign`) when the route has GRIP
    // enabled and the client is not trusted.

    let set_proto = p.proxy.set_x_forwarded_protocol;
    if p.proxy.accept_x_forwarded_protocol || set_proto.is_some() {
        remove_all(&mut headers, "X-Forwarded-Proto");
        remove_all(&mut headers, "X-Forwarded-Protocol");
    }
    if let (Some(both), true) = (set_proto, p.secure) {
        headers.push(Header::new("X-Forwarded-Proto", "https"));
        if both {
            headers.push(Header::new("X-Forwarded-Protocol", "https"));
        }
    }

    let rule = if p.trusted {
        &p.proxy.x_forwarded_for_trusted
    } else {
        &p.proxy.x_forwarded_for
    };
    let xff = forwarded_for(&values(&headers, "X-Forwarded-For"), rule, p.peer_addr);
    remove_all(&mut headers, "X-Forwarded-For");
    if let Some(xff) = xff {
        headers.push(Header::new("X-Forwarded-For", xff));
    }

    headers
}

/// Applies an `x_forwarded_for` rule to the existing values: `truncate:N` keeps the last N,
/// `append` adds the client address. `None` when nothing is left.
pub fn forwarded_for(existing: &[String], rule: &XffRule, peer_addr: &str) -> Option<String> {
    let mut list: Vec<&str> = existing.iter().map(String::as_str).collect();
    if let Some(keep) = rule.truncate {
        let drop = list.len().saturating_sub(keep);
        list.drain(..drop);
    }
    if rule.append && !peer_addr.is_empty() {
        list.push(peer_addr);
    }
    if list.is_empty() {
        None
    } else {
        Some(list.join(", "))
    }
}

/// Keeps or strips `eb9bf0f5-` copies of the client's headers (`orig_headers` routes). When
/// copying, headers listed in `orig_headers_need_mark` are only accepted if the client (a
/// trusted proxy in front) already sent them marked.
fn apply_orig_headers(headers: &mut Vec<Header>, copy: bool, need_mark: &[String]) {
    let (marked, plain): (Vec<Header>, Vec<Header>) = std::mem::take(headers)
        .into_iter()
        .partition(|h| starts_with_ignore_case(&h.0, ORIG_HEADER_PREFIX));
    *headers = plain;
    if copy {
        let copies: Vec<Header> = headers
            .iter()
            .filter(|h| !need_mark.iter().any(|n| h.is(n)))
            .map(|h| Header(format!("{ORIG_HEADER_PREFIX}{}", h.0), h.1.clone()))
            .collect();
        headers.extend(marked);
        headers.extend(copies);
    }
}

/// Response headers for the connmgr: hop-by-hop ones removed, names title-cased (hyper hands
/// them over lowercased).
pub fn response_headers(map: &http::HeaderMap) -> Vec<Header> {
    let named: Vec<String> = map
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| split_list(v.as_bytes()))
        .collect();
    map.iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !RESPONSE_HOP_BY_HOP
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
                && !named.iter().any(|h| h.eq_ignore_ascii_case(name))
        })
        .map(|(name, value)| {
            Header(
                title_case(name.as_str()),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect()
}

/// `content-type` → `Content-Type`; `te` → `Te`, as hyper's title-case writer does.
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// All comma-separated values of a header, trimmed, in order.
fn values(headers: &[Header], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.is(name))
        .flat_map(|h| split_list(&h.1))
        .collect()
}

fn split_list(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn remove_all(headers: &mut Vec<Header>, name: &str) {
    headers.retain(|h| !h.is(name));
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::config::{Config, Overrides};

    fn proxy() -> ProxyConfig {
        let mut p = Config::builtin(&Overrides::default()).proxy;
        p.set_x_forwarded_protocol = None;
        p
    }

    fn h(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter()
            .map(|(n, v)| Header::new(*n, Bytes::copy_from_slice(v.as_bytes())))
            .collect()
    }

    fn names(headers: &[Header]) -> Vec<String> {
        headers.iter().map(|h| h.0.clone()).collect()
    }

    fn get(headers: &[Header], name: &str) -> Option<String> {
        headers
            .iter()
            .find(|h| h.is(name))
            .map(|h| String::from_utf8_lossy(&h.1).into_owned())
    }

    fn params<'a>(proxy: &'a ProxyConfig, route: &'a [(String, String)]) -> ForwardParams<'a> {
        ForwardParams {
            proxy,
            route_headers: route,
            orig_headers: false,
            secure: false,
            peer_addr: "10.1.1.1",
            trusted: false,
        }
    }

    #[test]
    fn strips_hop_by_hop_grip_and_framing() {
        let proxy = proxy();
        let incoming = h(&[
            ("Host", "example.com"),
            ("User-Agent", "curl"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Accept-Encoding", "gzip"),
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "5"),
            ("Expect", "100-continue"),
            ("TE", "trailers"),
            ("Upgrade", "foo"),
            ("Grip-Sig", "forged"),
            ("grip-last", "x"),
            ("Gripper", "kept"),
            ("Accept", "*/*"),
        ]);
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(names(&out), vec!["User-Agent", "Gripper", "Accept"]);
    }

    #[test]
    fn route_headers_replace_and_delete() {
        let proxy = proxy();
        let route = vec![
            ("X-Api".to_string(), "v2".to_string()),
            ("User-Agent".to_string(), String::new()),
            ("Connection".to_string(), "close".to_string()),
        ];
        let incoming = h(&[("x-api", "v1"), ("User-Agent", "curl"), ("A", "b")]);
        let out = forward_headers(&incoming, &params(&proxy, &route));
        assert_eq!(names(&out), vec!["A", "X-Api"]);
        assert_eq!(get(&out, "x-api").as_deref(), Some("v2"));
    }

    #[test]
    fn xff_default_passes_through_rejoined() {
        let proxy = proxy();
        let incoming = h(&[
            ("X-Forwarded-For", "1.2.3.4, 5.6.7.8"),
            ("X-Forwarded-For", "9.9.9.9"),
        ]);
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(
            get(&out, "X-Forwarded-For").as_deref(),
            Some("1.2.3.4, 5.6.7.8, 9.9.9.9")
        );
        assert_eq!(out.len(), 1);
        assert!(forward_headers(&[], &params(&proxy, &[])).is_empty());
    }

    #[test]
    fn xff_rules() {
        let existing: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let rule = |truncate, append| XffRule { truncate, append };
        assert_eq!(
            forwarded_for(&existing, &rule(None, true), "ip").as_deref(),
            Some("a, b, c, ip")
        );
        assert_eq!(
            forwarded_for(&existing, &rule(Some(1), true), "ip").as_deref(),
            Some("c, ip")
        );
        assert_eq!(
            forwarded_for(&existing, &rule(Some(0), true), "ip").as_deref(),
            Some("ip")
        );
        assert_eq!(forwarded_for(&existing, &rule(Some(0), false), "ip"), None);
        assert_eq!(
            forwarded_for(&existing, &rule(Some(5), false), "ip").as_deref(),
            Some("a, b, c")
        );
        assert_eq!(
            forwarded_for(&[], &rule(None, true), "ip").as_deref(),
            Some("ip")
        );
    }

    #[test]
    fn xff_append_and_trusted_rule() {
        let mut proxy = proxy();
        proxy.x_forwarded_for = XffRule {
            truncate: Some(0),
            append: true,
        };
        proxy.x_forwarded_for_trusted = XffRule {
            truncate: None,
            append: true,
        };
        let incoming = h(&[("X-Forwarded-For", "6.6.6.6")]);
        let mut p = params(&proxy, &[]);
        let out = forward_headers(&incoming, &p);
        assert_eq!(get(&out, "X-Forwarded-For").as_deref(), Some("10.1.1.1"));
        p.trusted = true;
        let out = forward_headers(&incoming, &p);
        assert_eq!(
            get(&out, "X-Forwarded-For").as_deref(),
            Some("6.6.6.6, 10.1.1.1")
        );
    }

    #[test]
    fn trusted_clients_keep_grip_headers() {
        let proxy = proxy();
        let mut p = params(&proxy, &[]);
        p.trusted = true;
        let out = forward_headers(&h(&[("Grip-Last", "a; last-id=1")]), &p);
        assert_eq!(names(&out), vec!["Grip-Last"]);
    }

    #[test]
    fn forwarded_proto_modes() {
        let mut proxy = proxy();
        let incoming = h(&[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Protocol", "x"),
        ]);
        // Off: passed through untouched.
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(out.len(), 2);
        // accept only: incoming copies removed, nothing added.
        proxy.accept_x_forwarded_protocol = true;
        assert!(forward_headers(&incoming, &params(&proxy, &[])).is_empty());
        // proto-only, secure request.
        proxy.accept_x_forwarded_protocol = false;
        proxy.set_x_forwarded_protocol = Some(false);
        let mut p = params(&proxy, &[]);
        p.secure = true;
        let out = forward_headers(&incoming, &p);
        assert_eq!(names(&out), vec!["X-Forwarded-Proto"]);
        assert_eq!(get(&out, "X-Forwarded-Proto").as_deref(), Some("https"));
        // true: both headers; plain request: none.
        proxy.set_x_forwarded_protocol = Some(true);
        let mut p = params(&proxy, &[]);
        p.secure = true;
        let out = forward_headers(&incoming, &p);
        assert_eq!(
            names(&out),
            vec!["X-Forwarded-Proto", "X-Forwarded-Protocol"]
        );
        p.secure = false;
        assert!(forward_headers(&incoming, &p).is_empty());
    }

    #[test]
    fn cdn_loop_and_pushpin_route() {
        let mut proxy = proxy();
        proxy.cdn_loop = Some("holdfast".into());
        proxy.accept_pushpin_route = true;
        let incoming = h(&[
            ("CDN-Loop", "a, b"),
            ("Pushpin-Route", "api"),
            ("cdn-loop", "c"),
        ]);
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(names(&out), vec!["CDN-Loop"]);
        assert_eq!(get(&out, "CDN-Loop").as_deref(), Some("a, b, c, holdfast"));
        proxy.accept_pushpin_route = false;
        proxy.cdn_loop = None;
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(out.len(), 3, "kept when the features are off");
    }

    #[test]
    fn orig_headers_copy_and_strip() {
        let proxy = proxy();
        let incoming = h(&[("A", "1"), ("eb9bf0f5-B", "2")]);
        let out = forward_headers(&incoming, &params(&proxy, &[]));
        assert_eq!(names(&out), vec!["A"]);
        let mut p = params(&proxy, &[]);
        p.orig_headers = true;
        let out = forward_headers(&incoming, &p);
        assert_eq!(names(&out), vec!["A", "eb9bf0f5-B", "eb9bf0f5-A"]);
        let mut proxy = proxy.clone();
        proxy.orig_headers_need_mark = vec!["a".into()];
        let mut p = params(&proxy, &[]);
        p.orig_headers = true;
        let out = forward_headers(&incoming, &p);
        assert_eq!(names(&out), vec!["A", "eb9bf0f5-B"]);
    }

    #[test]
    fn response_headers_drop_hop_by_hop_and_keep_length_and_encoding() {
        let mut map = http::HeaderMap::new();
        for (n, v) in [
            ("content-type", "text/plain"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-encoding", "gzip"),
            ("content-length", "5"),
            ("x-custom-thing", "a"),
        ] {
            map.append(
                http::HeaderName::from_static(n),
                http::HeaderValue::from_static(v),
            );
        }
        let out = response_headers(&map);
        assert_eq!(
            names(&out),
            vec![
                "Content-Type",
                "Content-Encoding",
                "Content-Length",
                "X-Custom-Thing"
            ]
        );
    }

    #[test]
    fn title_case_names() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("www-authenticate"), "Www-Authenticate");
        assert_eq!(title_case("x"), "X");
    }
}
