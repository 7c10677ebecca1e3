//! Responses the handler generates itself: proxy errors (reference §4.11) and the test target.
//!
//! All are `text/plain` with a one-line body ending in `\n`, exactly Pushpin's texts. The
//! connmgr adds `Content-Length` for a complete body; only answers to `HEAD` carry it here,
//! because their body is not sent.

use bytes::Bytes;
use holdfast_proto::internal::Header;

/// No route matched (or `Pushpin-Route` named none).
pub const ROUTE_NOT_FOUND: &str = "Route not found\n";

/// Any backend failure, non-debug text.
pub const PROXY_ERROR: &str = "Error while proxying to origin.\n";

/// The request cannot be expressed towards a backend (Holdfast's text; the connmgr normally
/// rejects such requests first).
pub const INVALID_REQUEST: &str = "Invalid request.\n";

/// Debug text when every target failed to connect.
pub fn connect_failed_debug(targets: &[String]) -> String {
    format!(
        "Unable to connect to any targets. Tried: {}\n",
        targets.join(", ")
    )
}

/// A complete response made by the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers (without `Content-Length`).
    pub headers: Vec<Header>,
    /// Body.
    pub body: Bytes,
}

impl Generated {
    /// A `text/plain` response with the canonical reason for `code`.
    pub fn text(code: u16, body: impl Into<Bytes>) -> Self {
        Self {
            code,
            reason: reason_phrase(code).to_string(),
            headers: vec![Header::new("Content-Type", "text/plain")],
            body: body.into(),
        }
    }

    /// The response as sent for a request with `method`: for `HEAD` the body is replaced by a
    /// `Content-Length` header announcing it.
    pub fn for_method(mut self, method: &str) -> Self {
        if method == "HEAD" {
            self.headers
                .push(Header::new("Content-Length", self.body.len().to_string()));
            self.body = Bytes::new();
        }
        self
    }
}

/// Canonical reason phrase for a status code (empty for unknown codes).
pub fn reason_phrase(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_match_pushpin() {
        assert_eq!(ROUTE_NOT_FOUND, "Route not found\n");
        assert_eq!(PROXY_ERROR, "Error while proxying to origin.\n");
        assert_eq!(PROXY_ERROR.len(), 32, "Pushpin sends Content-Length: 32");
        assert_eq!(
            connect_failed_debug(&["h1:1".into(), "h2:2".into()]),
            "Unable to connect to any targets. Tried: h1:1, h2:2\n"
        );
    }

    #[test]
    fn generated_text_and_head() {
        let r = Generated::text(502, PROXY_ERROR);
        assert_eq!(r.reason, "Bad Gateway");
        assert_eq!(r.headers, vec![Header::new("Content-Type", "text/plain")]);
        let head = r.clone().for_method("HEAD");
        assert!(head.body.is_empty());
        assert_eq!(head.headers[1], Header::new("Content-Length", "32"));
        assert_eq!(r.clone().for_method("GET"), r);
        assert_eq!(reason_phrase(599), "");
        assert_eq!(reason_phrase(404), "Not Found");
    }
}
