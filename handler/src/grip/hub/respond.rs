//! Building the response that completes a response hold from a published `http-response`
//! (reference §4.4): the timeout response's headers with each published header replacing all
//! same-named ones, the published code (default 200) and reason (default: the standard phrase),
//! and the published body, or the timeout body patched with `body-patch`.

use bytes::Bytes;
use holdfast_proto::internal::Header;
use holdfast_proto::publish::merge_response_headers;

use crate::grip::item::{ResponseBody, ResponseFormat};
use crate::proxy::response::reason_phrase;

/// A complete response (status, headers without `Content-Length`, body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers (no framing headers: the connmgr frames).
    pub headers: Vec<Header>,
    /// Body.
    pub body: Bytes,
}

/// The response a published `http-response` makes of a hold's timeout response.
pub fn build_response(timeout: &Reply, fmt: &ResponseFormat) -> Reply {
    let mut headers = merge_response_headers(&timeout.headers, &fmt.headers);
    headers.retain(|h| !h.is("Content-Length"));
    let code = fmt.code.unwrap_or(200);
    let reason = fmt
        .reason
        .clone()
        .unwrap_or_else(|| reason_phrase(code).to_string());
    let body = match &fmt.body {
        ResponseBody::Bytes(b) => b.clone(),
        ResponseBody::Patch(apply) => apply(&timeout.body),
    };
    Reply {
        code,
        reason,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grip::item::ResponseAction;
    use std::sync::Arc;

    fn timeout() -> Reply {
        Reply {
            code: 200,
            reason: "OK".into(),
            headers: vec![
                Header::new("Content-Type", "text/plain"),
                Header::new("X-Foo", "old"),
                Header::new("x-foo", "old2"),
            ],
            body: Bytes::from_static(b"{\"a\":1}\n"),
        }
    }

    fn fmt(body: ResponseBody) -> ResponseFormat {
        ResponseFormat {
            action: ResponseAction::Send,
            code: None,
            reason: None,
            headers: Vec::new(),
            body,
        }
    }

    #[test]
    fn defaults_keep_headers_and_use_200() {
        let r = build_response(
            &timeout(),
            &fmt(ResponseBody::Bytes(Bytes::from_static(b"hello\n"))),
        );
        assert_eq!((r.code, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.headers.len(), 3);
        assert_eq!(r.body, Bytes::from_static(b"hello\n"));
    }

    #[test]
    fn published_headers_replace_same_named_and_code_sets_reason() {
        let mut f = fmt(ResponseBody::Bytes(Bytes::from_static(b"created\n")));
        f.code = Some(201);
        f.headers = vec![
            Header::new("X-FOO", "bar"),
            Header::new("Grip-Channel", "x"),
            Header::new("X-New", "1"),
        ];
        let r = build_response(&timeout(), &f);
        assert_eq!((r.code, r.reason.as_str()), (201, "Created"));
        let names: Vec<&str> = r.headers.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(names, ["Content-Type", "X-FOO", "X-New"]);
        f.reason = Some("Made".into());
        assert_eq!(build_response(&timeout(), &f).reason, "Made");
    }

    #[test]
    fn body_patch_applies_to_the_timeout_body() {
        let patch = ResponseBody::Patch(Arc::new(|b: &[u8]| {
            let mut v = b.to_vec();
            v.insert(0, b'!');
            Bytes::from(v)
        }));
        let r = build_response(&timeout(), &fmt(patch));
        assert_eq!(r.body, Bytes::from_static(b"!{\"a\":1}\n"));
    }
}
