//! Auto cross-origin (reference §8.1): with `auto_cross_origin` or route `aco`, CORS headers
//! are added to proxied and held responses, each only if the response lacks it, in Pushpin's
//! order, after the origin's headers.

use holdfast_proto::internal::Header;

/// Response headers a browser exposes anyway (not listed in `Access-Control-Expose-Headers`).
const SIMPLE_HEADERS: [&str; 7] = [
    "Cache-Control",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "Expires",
    "Last-Modified",
    "Pragma",
];

/// What the CORS headers are computed from in the client's request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsRequest {
    /// `Origin`.
    pub origin: Option<String>,
    /// `Access-Control-Request-Method`.
    pub method: Option<String>,
    /// `Access-Control-Request-Headers` values, joined.
    pub headers: Option<String>,
}

impl CorsRequest {
    /// Collects the request headers CORS needs.
    pub fn from_headers(headers: &[Header]) -> Self {
        let first = |name: &str| {
            headers
                .iter()
                .find(|h| h.is(name))
                .map(|h| String::from_utf8_lossy(&h.1).trim().to_string())
        };
        let requested: Vec<String> = headers
            .iter()
            .filter(|h| h.is("Access-Control-Request-Headers"))
            .flat_map(|h| {
                String::from_utf8_lossy(&h.1)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            origin: first("Origin"),
            method: first("Access-Control-Request-Method"),
            headers: (!requested.is_empty()).then(|| requested.join(", ")),
        }
    }

    /// Adds the CORS headers the response lacks.
    pub fn apply(&self, headers: &mut Vec<Header>) {
        let has = |headers: &[Header], name: &str| headers.iter().any(|h| h.is(name));
        let mut add = Vec::new();
        if !has(headers, "Access-Control-Allow-Methods") {
            let methods = self
                .method
                .clone()
                .unwrap_or_else(|| "OPTIONS, HEAD, GET, POST, PUT, DELETE".to_string());
            add.push(Header::new("Access-Control-Allow-Methods", methods));
        }
        if let Some(requested) = &self.headers {
            if !has(headers, "Access-Control-Allow-Headers") {
                add.push(Header::new(
                    "Access-Control-Allow-Headers",
                    requested.clone(),
                ));
            }
        }
        if !has(headers, "Access-Control-Expose-Headers") {
            let mut names: Vec<&str> = Vec::new();
            for h in headers.iter() {
                let name = h.0.as_str();
                let skip = SIMPLE_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
                    || starts_with_ignore_case(name, "Access-Control-")
                    || starts_with_ignore_case(name, "Grip-");
                if !skip && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    names.push(name);
                }
            }
            if !names.is_empty() {
                add.push(Header::new(
                    "Access-Control-Expose-Headers",
                    names.join(", "),
                ));
            }
        }
        if !has(headers, "Access-Control-Allow-Credentials") {
            add.push(Header::new("Access-Control-Allow-Credentials", "true"));
        }
        if !has(headers, "Access-Control-Allow-Origin") {
            let origin = self.origin.clone().unwrap_or_else(|| "*".to_string());
            add.push(Header::new("Access-Control-Allow-Origin", origin));
        }
        if !has(headers, "Access-Control-Max-Age") {
            add.push(Header::new("Access-Control-Max-Age", "3600"));
        }
        headers.extend(add);
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(headers: &[Header]) -> Vec<String> {
        headers.iter().map(|h| h.0.clone()).collect()
    }

    #[test]
    fn adds_headers_in_pushpin_order() {
        let cors = CorsRequest::from_headers(&[]);
        let mut headers = vec![
            Header::new("Content-Type", "text/plain"),
            Header::new("Server", "x"),
            Header::new("Date", "d"),
        ];
        cors.apply(&mut headers);
        assert_eq!(
            names(&headers)[3..],
            [
                "Access-Control-Allow-Methods",
                "Access-Control-Expose-Headers",
                "Access-Control-Allow-Credentials",
                "Access-Control-Allow-Origin",
                "Access-Control-Max-Age"
            ]
        );
        assert_eq!(headers[4].1.as_ref(), b"Server, Date");
        assert_eq!(headers[6].1.as_ref(), b"*");
    }

    #[test]
    fn request_values_and_existing_headers_win() {
        let cors = CorsRequest::from_headers(&[
            Header::new("Origin", "http://a.example"),
            Header::new("Access-Control-Request-Method", "PATCH"),
            Header::new("Access-Control-Request-Headers", "X-A, X-B"),
            Header::new("access-control-request-headers", "X-C"),
        ]);
        let mut headers = vec![Header::new("Access-Control-Max-Age", "5")];
        cors.apply(&mut headers);
        let get = |n: &str| {
            headers
                .iter()
                .find(|h| h.is(n))
                .map(|h| String::from_utf8_lossy(&h.1).into_owned())
        };
        assert_eq!(get("Access-Control-Allow-Methods").unwrap(), "PATCH");
        assert_eq!(
            get("Access-Control-Allow-Headers").unwrap(),
            "X-A, X-B, X-C"
        );
        assert_eq!(
            get("Access-Control-Allow-Origin").unwrap(),
            "http://a.example"
        );
        assert_eq!(get("Access-Control-Max-Age").unwrap(), "5");
        assert_eq!(get("Access-Control-Expose-Headers"), None);
    }
}
