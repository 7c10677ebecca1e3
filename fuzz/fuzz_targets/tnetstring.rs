//! TNetString codec (`holdfast_proto::tnetstring`).
//!
//! Checked: a value that parses re-encodes to bytes of exactly `encoded_len`, that parse back
//! to a value with the same encoding (byte-for-byte stable after one round, NaN included), and
//! `parse_prefix` never reports more bytes than it was given and agrees with `parse` on the
//! prefix it used.
#![no_main]

use holdfast_proto::tnetstring::{parse, parse_prefix, to_vec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, used)) = parse_prefix(data) {
        assert!(used > 0 && used <= data.len());
        let again = parse(&data[..used]).expect("the used prefix parses alone");
        assert_eq!(to_vec(&again), to_vec(&value));
    }
    let Ok(value) = parse(data) else {
        return;
    };
    let encoded = to_vec(&value);
    assert_eq!(encoded.len(), value.encoded_len());
    let reparsed = parse(&encoded).expect("encoder output parses");
    assert_eq!(to_vec(&reparsed), encoded);
});
