//! Criterion benches for Holdfast's codecs live in `benches/` (run them with
//! `cargo bench -p holdfast-benches`); this library holds what they share.
//!
//! `scripts/` has the end-to-end comparisons against Pushpin.

use std::time::Duration;

/// Criterion settings that keep every bench group short: the whole suite must finish in a few
/// minutes on a 2-core machine. Pass `--quick` (or `--measurement-time`) on the command line to
/// go shorter or longer.
pub const WARM_UP: Duration = Duration::from_millis(500);

/// Measurement time per benchmark (see [`WARM_UP`]).
pub const MEASUREMENT: Duration = Duration::from_secs(2);

/// Samples per benchmark (criterion's minimum is 10).
pub const SAMPLES: usize = 20;

/// A JSON document of about `len` bytes, shaped like a typical realtime message (an event with
/// a few fields and a text body), for WebSocket and publish payloads.
pub fn json_message(len: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"{"type":"message","channel":"room-42","user":{"id":1234,"name":"alice"},"ts":1732291200123,"text":""#,
    );
    let words = [
        "lorem ",
        "ipsum ",
        "dolor ",
        "sit ",
        "amet ",
        "consectetur ",
        "adipiscing ",
        "elit ",
    ];
    let mut i = 0;
    while s.len() + 2 < len {
        s.push_str(words[i % words.len()]);
        i += 1;
    }
    s.truncate(
        len.saturating_sub(2)
            .max(s.find("\"text\":\"").map_or(0, |p| p + 8)),
    );
    s.push_str("\"}");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_message_has_the_requested_size_and_parses() {
        for len in [256, 1024, 4096] {
            let m = json_message(len);
            assert_eq!(m.len(), len);
            let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
            assert!(v.is_object());
        }
    }
}
