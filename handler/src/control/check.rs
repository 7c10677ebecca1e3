//! Refuses publish items that could not be written to a client as they are.
//!
//! An `http-response` item's headers and reason end up in the response head of every held
//! request it completes. Pushpin 1.36 writes them verbatim, so a value with a CR LF splits the
//! response (header injection, observed). The connection manager refuses such a response with a
//! `502` anyway; checking at the input instead tells the *publisher* (`400` on the control API,
//! a logged drop on ZeroMQ) and leaves the held clients waiting for a good publish or their
//! timeout response. The rules are the connection manager's: header names are RFC 9110 tokens,
//! values and the reason have no CR, LF, NUL or other control character but tab.

use holdfast_proto::grip::FieldError;
use holdfast_proto::publish::{HttpResponseFormat, ItemError, PublishItem};

/// `Ok` if every header and the reason of the item's `http-response` can be written to a client.
pub fn check_item(item: &PublishItem) -> Result<(), ItemError> {
    let Some(HttpResponseFormat::Send(send)) = &item.formats.http_response else {
        return Ok(());
    };
    let invalid = |field| {
        ItemError::Field(FieldError::InvalidValue {
            parent: "'http-response'",
            field,
        })
    };
    let headers_ok = send
        .headers
        .iter()
        .all(|h| is_token(h.0.as_bytes()) && is_field_text(&h.1));
    if !headers_ok {
        return Err(invalid("headers"));
    }
    if !is_field_text(send.reason.as_bytes()) {
        return Err(invalid("reason"));
    }
    Ok(())
}

/// Checks every item; the first problem found.
pub fn check_items(items: &[PublishItem]) -> Result<(), ItemError> {
    items.iter().try_for_each(check_item)
}

fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value or reason phrase: visible bytes, obs-text, space and tab.
fn is_field_text(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || !(b < 0x20 || b == 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::publish::parse_publish_body;

    fn check(response: &str) -> Result<(), String> {
        let body = format!(
            r#"{{"items": [{{"channel": "c", "formats": {{"http-response": {response}}}}}]}}"#
        );
        let items = parse_publish_body(body.as_bytes()).map_err(|e| e.to_string())?;
        check_items(&items).map_err(|e| e.to_string())
    }

    #[test]
    fn good_headers_and_reasons_pass() {
        assert_eq!(check(r#"{"body": "x"}"#), Ok(()));
        assert_eq!(
            check(r#"{"headers": {"X-A": "b\tc \u00e9"}, "reason": "Fine Thanks", "body": "x"}"#),
            Ok(())
        );
        assert_eq!(check(r#"{"action": "hint"}"#), Ok(()));
    }

    #[test]
    fn injections_are_refused_with_pushpins_wording() {
        let headers = "'http-response' contains 'headers' with invalid value";
        for bad in [
            r#"{"body": "x", "headers": {"X-A": "b\r\nInjected: yes"}}"#,
            r#"{"body": "x", "headers": {"X-A": "b\nc"}}"#,
            r#"{"body": "x", "headers": {"X-A": "b\u0000c"}}"#,
            r#"{"body": "x", "headers": {"X-A\r\nInjected": "yes"}}"#,
            r#"{"body": "x", "headers": {"X A": "yes"}}"#,
            r#"{"body": "x", "headers": {"": "yes"}}"#,
            r#"{"body": "x", "headers": [["X-A", "b\rc"]]}"#,
        ] {
            assert_eq!(check(bad), Err(headers.to_string()), "{bad}");
        }
        assert_eq!(
            check(r#"{"body": "x", "reason": "OK\r\nInjected: yes"}"#),
            Err("'http-response' contains 'reason' with invalid value".to_string())
        );
    }
}
