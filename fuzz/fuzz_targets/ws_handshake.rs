//! WebSocket handshake pieces (`holdfast_connmgr::ws::{handshake, extension, close}`).
//!
//! The input is a header block (`Name: value` lines, blank line) followed by a Close payload.
//! Checked:
//!
//! - `Sec-WebSocket-Extensions` values that parse re-serialize (every value quoted) to text
//!   that parses to the same offers;
//! - `validate` accepts only requests `is_upgrade` recognises, answers a 28-byte accept key,
//!   and negotiates deflate only when compression is enabled, with a header value that itself
//!   parses as one permessage-deflate offer; every rejection has a 400 response;
//! - a Close payload that parses re-encodes to the same bytes.
#![no_main]

use holdfast_fuzz::ws::close::{encode_payload, parse_payload};
use holdfast_fuzz::ws::extension::{self, DeflateOptions, Extension};
use holdfast_fuzz::ws::handshake::{is_upgrade, rejection_response, validate, ACCEPT_LEN};
use holdfast_fuzz::{split_head, take_byte};
use holdfast_proto::internal::HttpVersion;
use libfuzzer_sys::fuzz_target;

fn serialize(offers: &[Extension]) -> String {
    let mut s = String::new();
    for (i, e) in offers.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&e.name);
        for (name, value) in &e.params {
            s.push_str("; ");
            s.push_str(name);
            if let Some(v) = value {
                s.push_str("=\"");
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
                s.push('"');
            }
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let (ctl, rest) = take_byte(data);
    let (headers, close_payload) = split_head(rest);

    for h in headers.iter().filter(|h| h.is("Sec-WebSocket-Extensions")) {
        let mut offers = Vec::new();
        if extension::parse(&h.1, &mut offers).is_ok() {
            let text = serialize(&offers);
            let mut again = Vec::new();
            extension::parse(text.as_bytes(), &mut again).expect("re-serialized offers parse");
            assert_eq!(offers, again, "{text}");
        }
    }

    let version = if ctl & 1 == 0 {
        HttpVersion::Http11
    } else {
        HttpVersion::Http10
    };
    let options = DeflateOptions {
        request_client_no_context_takeover: ctl & 2 != 0,
    };
    let compression = (ctl & 4 != 0).then_some(&options);
    match validate("GET", version, &headers, compression) {
        Ok(accepted) => {
            assert!(is_upgrade(&headers));
            assert_eq!(accepted.accept.as_bytes().len(), ACCEPT_LEN);
            if let Some(params) = accepted.deflate {
                assert!(compression.is_some());
                let mut offers = Vec::new();
                extension::parse(params.header_value().as_bytes(), &mut offers)
                    .expect("own extension header parses");
                assert_eq!(offers.len(), 1);
            }
        }
        Err(e) => {
            let resp = rejection_response(version, &e);
            assert!(resp.starts_with(b"HTTP/1.") && resp.windows(3).any(|w| w == b"400"));
        }
    }

    if let Ok(parsed) = parse_payload(close_payload) {
        let mut out = Vec::new();
        if let Some(frame) = parsed {
            encode_payload(&mut out, frame.code, &frame.reason);
            if close_payload.len() <= 125 {
                assert_eq!(out, close_payload);
            }
        } else {
            assert!(close_payload.is_empty());
        }
    }
});
