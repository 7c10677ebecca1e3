//! GRIP instructions in an origin response (`holdfast_proto::grip::Instruct::parse`): `Grip-*`
//! headers and the `application/grip-instruct` JSON body.
//!
//! The input is `Name: value` header lines, a blank line, then the body; the first two bytes
//! pick the status code. Checked: parsing is deterministic, the emitted response carries no
//! `Grip-*` header and none of the dropped framing headers, the timeout is at least the
//! minimum, channel names are non-empty, links are absolute and valid, and the prev-id check
//! runs on every accepted instruct.
#![no_main]

use holdfast_fuzz::split_head;
use holdfast_proto::grip::{url, Instruct, OriginResponse, DROPPED_HEADERS, MINIMUM_TIMEOUT};
use libfuzzer_sys::fuzz_target;

const REQUEST_URI: &str = "http://example.com/a/b?c=d";

fuzz_target!(|data: &[u8]| {
    let (code, rest) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) % 1000, rest),
        _ => return,
    };
    let (headers, body) = split_head(rest);
    let response = OriginResponse {
        code,
        reason: "Reason",
        headers: &headers,
        body,
    };
    let result = Instruct::parse(&response, REQUEST_URI);
    assert_eq!(result, Instruct::parse(&response, REQUEST_URI));
    let Ok(instruct) = result else {
        return;
    };
    let _ = instruct.check_prev_ids();
    if instruct.hold.is_some() {
        assert!(instruct.timeout >= MINIMUM_TIMEOUT);
    }
    for h in &instruct.response.headers {
        let name = h.0.as_bytes();
        assert!(
            !(name.len() >= 5 && name[..5].eq_ignore_ascii_case(b"grip-")),
            "{h:?}"
        );
        assert!(!DROPPED_HEADERS.iter().any(|d| h.is(d)), "{h:?}");
    }
    for c in &instruct.channels {
        assert!(!c.name.is_empty());
    }
    if let Some(next) = &instruct.next_link {
        assert!(url::validate(&next.url).is_ok(), "{next:?}");
    }
    if let Some(gone) = &instruct.gone_link {
        assert!(url::validate(gone).is_ok(), "{gone}");
    }
});
