//! The little URI handling `Grip-Link` needs: Pushpin's validity check and RFC 3986 §5 reference
//! resolution against the client's request URI. Not a general URL library on purpose: the
//! handler only has to turn `</path?x>` into an absolute `http(s)://…` it can request.
//!
//! Validity follows what Pushpin 1.36's `QUrl` (tolerant mode) rejects **[observed 1.36]**:
//! an empty or malformed scheme (`:x`, `1http://x/`), a host with characters outside RFC 3986's
//! reg-name set (`a b`, `a^b`, `a\b`, `a%zz`, `a]`, `a[b`), more than one `@`, a port that is not
//! all digits or exceeds 65535 (`a:b`, `a:+80`, `a:1:2`, `a:99999`), and a malformed IP literal
//! (`[bad`, `[zz]`, `[::1]x`). Paths, queries and fragments are accepted as they come (spaces,
//! control bytes and stray `%` included) and percent-encoded on output.

use std::net::Ipv6Addr;

/// A `Grip-Link` URL that Pushpin would reject, or a base URI without a scheme.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI reference")]
pub struct InvalidUri;

/// The five RFC 3986 components of a URI reference (Appendix B split).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Checks a link the way Pushpin does before using it.
pub fn validate(reference: &str) -> Result<(), InvalidUri> {
    let parts = split(reference)?;
    if let Some(authority) = parts.authority {
        validate_authority(authority)?;
    }
    Ok(())
}

/// Resolves `reference` against the absolute URI `base` (RFC 3986 §5.2), validating the
/// reference first. The result has its dot segments removed and every byte that may not appear
/// in a URI (spaces, controls, non-ASCII, `"<>\^`{|}` and a `%` not followed by two hex digits)
/// percent-encoded; the fragment is dropped, since it is never sent in a request.
pub fn resolve(base: &str, reference: &str) -> Result<String, InvalidUri> {
    validate(reference)?;
    let b = split(base)?;
    let Some(base_scheme) = b.scheme else {
        return Err(InvalidUri);
    };
    let r = split(reference)?;

    let (scheme, authority, path, query);
    if let Some(s) = r.scheme {
        scheme = s;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = base_scheme;
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            authority = b.authority;
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    remove_dot_segments(&merge(b.authority.is_some(), b.path, r.path))
                };
                query = r.query;
            }
        }
    }

    let mut out = String::new();
    out.push_str(&scheme.to_ascii_lowercase());
    out.push(':');
    if let Some(a) = authority {
        out.push_str("//");
        encode_into(&mut out, a);
    }
    encode_into(&mut out, &path);
    if let Some(q) = query {
        out.push('?');
        encode_into(&mut out, q);
    }
    Ok(out)
}

/// Scheme, host and port of an absolute URI, lower-cased, with the default port filled in for
/// `http`/`https`/`ws`/`wss`. Used to decide whether a next link points back at the same origin
/// as the client's request (Pushpin's `prefer-internal`).
pub fn origin(uri: &str) -> Option<(String, String, Option<u16>)> {
    let parts = split(uri).ok()?;
    let scheme = parts.scheme?.to_ascii_lowercase();
    let authority = parts.authority?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port)?;
    let port = match port {
        Some(p) if !p.is_empty() => Some(p.parse().ok()?),
        _ => match scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        },
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// RFC 3986 Appendix B: `^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?`, except that
/// a `:` before the first `/?#` always introduces a scheme, which must then be well formed
/// (QUrl rejects `:x` and `1http:` rather than reading them as paths).
fn split(s: &str) -> Result<Parts<'_>, InvalidUri> {
    let mut rest = s;
    let mut scheme = None;
    let delim = rest.find([':', '/', '?', '#']);
    if let Some(i) = delim {
        if rest.as_bytes()[i] == b':' {
            let candidate = &rest[..i];
            if !is_scheme(candidate) {
                return Err(InvalidUri);
            }
            scheme = Some(candidate);
            rest = &rest[i + 1..];
        }
    }
    let mut authority = None;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        authority = Some(&after[..end]);
        rest = &after[end..];
    }
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    Ok(Parts {
        scheme,
        authority,
        path,
        query,
        fragment,
    })
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn validate_authority(authority: &str) -> Result<(), InvalidUri> {
    let host_port = match authority.split_once('@') {
        Some((_, hp)) if hp.contains('@') => return Err(InvalidUri),
        Some((_, hp)) => hp,
        None => authority,
    };
    let (host, port) = split_host_port(host_port).ok_or(InvalidUri)?;
    if let Some(port) = port {
        if !port.is_empty()
            && (!port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
        {
            return Err(InvalidUri);
        }
    }
    if let Some(literal) = host.strip_prefix('[') {
        let inner = literal.strip_suffix(']').ok_or(InvalidUri)?;
        if !(is_ip_future(inner) || inner.parse::<Ipv6Addr>().is_ok()) {
            return Err(InvalidUri);
        }
    } else if !is_reg_name(host) {
        return Err(InvalidUri);
    }
    Ok(())
}

/// Splits `host[:port]`, keeping IP literals whole. `None` if text follows an IP literal's `]`
/// without being a port.
fn split_host_port(hp: &str) -> Option<(&str, Option<&str>)> {
    if hp.starts_with('[') {
        let close = hp.find(']')?;
        let (host, rest) = hp.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match hp.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hp, None),
    })
}

fn is_ip_future(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(['v', 'V']) else {
        return false;
    };
    let Some((version, addr)) = rest.split_once('.') else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_hexdigit())
        && !addr.is_empty()
        && addr
            .bytes()
            .all(|b| is_unreserved(b) || is_sub_delim(b) || b == b':')
}

/// RFC 3986 reg-name: unreserved, sub-delims and well-formed percent escapes.
fn is_reg_name(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if is_unreserved(b[i]) || is_sub_delim(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// RFC 3986 §5.2.3.
fn merge(base_has_authority: bool, base_path: &str, reference_path: &str) -> String {
    if base_has_authority && base_path.is_empty() {
        return format!("/{reference_path}");
    }
    match base_path.rfind('/') {
        Some(i) => format!("{}{}", &base_path[..=i], reference_path),
        None => reference_path.to_string(),
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output: Vec<&str> = Vec::new();
    // `output` holds segments each starting with '/' (except possibly the first).
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let skip = usize::from(input.starts_with('/'));
            let end = input[skip..].find('/').map_or(input.len(), |i| i + skip);
            output.push(&input[..end]);
            input = &input[end..];
        }
    }
    output.concat()
}

/// Appends `s`, percent-encoding what may not appear in a URI and a `%` that does not start a
/// valid escape.
fn encode_into(out: &mut String, s: &str) {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'%' => {
                b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            0x21..=0x7e => !matches!(
                c,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            ),
            _ => false,
        };
        if keep {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3986 §5.4 examples.
    #[test]
    fn rfc3986_resolution_examples() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("g?y#s", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g#s/../x", "http://a/b/c/g"),
            ("http:g", "http:g"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                resolve(base, reference).unwrap(),
                expected,
                "reference {reference:?}"
            );
        }
    }

    #[test]
    fn typical_next_links() {
        let base = "http://example.com:8080/stream/1?x=y";
        assert_eq!(
            resolve(base, "/stream/2").unwrap(),
            "http://example.com:8080/stream/2"
        );
        assert_eq!(
            resolve(base, "2?a=b").unwrap(),
            "http://example.com:8080/stream/2?a=b"
        );
        assert_eq!(
            resolve(base, "https://other.example/next").unwrap(),
            "https://other.example/next"
        );
        assert_eq!(resolve("http://h", "x").unwrap(), "http://h/x");
        assert_eq!(
            resolve(base, "/a b\u{1}/%zz/%41").unwrap(),
            "http://example.com:8080/a%20b%01/%25zz/%41"
        );
        assert_eq!(
            resolve(base, "/caf\u{e9}").unwrap(),
            "http://example.com:8080/caf%C3%A9"
        );
        assert_eq!(resolve(base, "HTTP://H/").unwrap(), "http://H/");
    }

    #[test]
    fn base_must_be_absolute() {
        assert_eq!(resolve("/relative", "x"), Err(InvalidUri));
    }

    /// Each case was sent to Pushpin 1.36 as `Grip-Link: <…>; rel=next`.
    #[test]
    fn validity_matches_pushpin() {
        let accepted = [
            "http://[v1.x]/",
            "http://[::1]:80/",
            "http://a:/",
            "http:x",
            "http://[2001:db8::1]/",
            "http://1.2.3.999/",
            "http://:/",
            "http://:80/",
            "http://a/b c",
            "/a%zz",
            "http://a/\u{1}",
            "http://a_b/",
            "http://u:p@a/",
            "../x?y",
            "/x",
        ];
        for link in accepted {
            assert_eq!(validate(link), Ok(()), "{link:?} should be accepted");
        }
        let rejected = [
            "http://[bad/",
            "http://a:b/",
            "http://a[b/",
            "http://[::1]x/",
            "http://a:1:2/",
            "http://[zz]/",
            "http://a]/",
            "http://a%zz/",
            "http://a@b@c/",
            "http:// a/",
            "http://a:+80/",
            "http://a\\b/",
            "http://a:99999/",
            ":x",
            "1http://x/",
            "http://a^b/",
        ];
        for link in rejected {
            assert_eq!(
                validate(link),
                Err(InvalidUri),
                "{link:?} should be rejected"
            );
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("http://Example.com/x"),
            Some(("http".into(), "example.com".into(), Some(80)))
        );
        assert_eq!(
            origin("HTTPS://u@h:8443/"),
            Some(("https".into(), "h".into(), Some(8443)))
        );
        assert_eq!(
            origin("http://[::1]/"),
            Some(("http".into(), "[::1]".into(), Some(80)))
        );
        assert_eq!(origin("/x"), None);
    }
}
