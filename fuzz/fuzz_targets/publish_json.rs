//! Publish items in JSON (`holdfast_proto::publish::{parse_publish_body, parse_item_json,
//! parse_frame}`) and JSON Patch (`patch_body`).
//!
//! Checked: the control-API body and its items parsed one by one agree (the same items, or
//! the same failure), a `J` ZeroMQ frame holding an item parses to the same item, and a patch
//! that applies yields JSON. The first byte picks publish (even) or patch (odd); a patch input
//! is the document, a NUL byte, then the JSON array of operations.
#![no_main]

use holdfast_fuzz::take_byte;
use holdfast_proto::publish::{parse_frame, parse_item_json, parse_publish_body, patch_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ctl, rest) = take_byte(data);
    if ctl & 1 == 1 {
        let Some(at) = rest.iter().position(|&b| b == 0) else {
            return;
        };
        let Ok(serde_json::Value::Array(ops)) = serde_json::from_slice(&rest[at + 1..]) else {
            return;
        };
        if let Ok(out) = patch_body(&rest[..at], &ops) {
            serde_json::from_slice::<serde_json::Value>(&out).expect("patched body is JSON");
        }
        return;
    }

    let result = parse_publish_body(rest);
    let doc: Option<serde_json::Value> = serde_json::from_slice(rest).ok();
    let items = doc
        .as_ref()
        .and_then(|d| d.get("items"))
        .and_then(|i| i.as_array());
    match (&result, items) {
        (Ok(parsed), Some(items)) => {
            assert_eq!(parsed.len(), items.len());
            for (item, json) in parsed.iter().zip(items) {
                assert_eq!(parse_item_json(json).as_ref(), Ok(item));
                // serde_json's float text round trip is not exact (huge integers become
                // floats): compare the frame with the item re-read from the same text.
                let text = json.to_string();
                let reread: serde_json::Value = serde_json::from_str(&text).expect("own JSON");
                let mut frame = b"J".to_vec();
                frame.extend_from_slice(text.as_bytes());
                assert_eq!(
                    parse_frame(&frame, None).ok(),
                    parse_item_json(&reread).ok()
                );
            }
        }
        (Ok(_), None) => panic!("accepted a body without an items array"),
        (Err(_), Some(items)) if doc.as_ref().is_some_and(|d| d.is_object()) => {
            // Rejected: then some item must be rejected on its own.
            assert!(items.iter().any(|i| parse_item_json(i).is_err()));
        }
        (Err(_), _) => {}
    }
});
