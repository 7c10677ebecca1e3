//! `application/websocket-events` codec (`holdfast_proto::wsevents`).
//!
//! Checked: decoded events re-encode to exactly `encoded_len` bytes that decode to the same
//! events, and a decodable body never yields more message bytes than it holds. Small limits
//! are exercised too: a body within them decodes as with the defaults.
#![no_main]

use holdfast_proto::wsevents::{decode, decode_with, encode, Event, Limits};
use libfuzzer_sys::fuzz_target;

fn content_len(e: &Event) -> usize {
    match e {
        Event::Text(b) | Event::Binary(b) | Event::Ping(b) | Event::Pong(b) => b.len(),
        // A Close reason is converted lossily: one invalid byte becomes three (U+FFFD).
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let small = Limits {
        max_body: 64,
        max_events: 4,
    };
    let limited = decode_with(data, &small);
    let Ok(events) = decode(data) else {
        assert!(limited.is_err());
        return;
    };
    if let Ok(l) = limited {
        assert_eq!(l, events);
    }
    assert!(events.iter().map(content_len).sum::<usize>() <= data.len());
    let mut out = Vec::new();
    encode(&events, &mut out);
    assert_eq!(
        out.len(),
        events.iter().map(Event::encoded_len).sum::<usize>()
    );
    assert_eq!(decode(&out), Ok(events));
});
