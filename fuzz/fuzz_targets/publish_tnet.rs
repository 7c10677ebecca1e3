//! Publish items from the ZeroMQ PULL/SUB and command sockets (`holdfast_proto::publish::
//! {parse_frame, parse_item_tnet, parse_command_items}`), over tnetstring.
//!
//! The input is a SUB channel line (up to the first newline, possibly empty) then the payload.
//! Checked: a `T` frame, a bare frame and the parsed tnetstring handed to `parse_item_tnet`
//! give the same item (the SUB channel replacing the item's when non-empty), and a command
//! `publish` args map with the item in its `items` list gives the same item.
#![no_main]

use holdfast_proto::publish::{parse_command_items, parse_frame, parse_item_tnet};
use holdfast_proto::tnetstring::{self, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (channel, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            &data[at + 1..],
        ),
        None => (String::new(), data),
    };
    let channel = (!channel.is_empty()).then_some(channel.as_str());
    let bare = parse_frame(payload, channel);
    let Ok(value) = tnetstring::parse(payload) else {
        assert!(bare.is_err() || payload.first() == Some(&b'T') || payload.first() == Some(&b'J'));
        return;
    };
    let direct = parse_item_tnet(&value, channel);
    if payload.first() != Some(&b'T') && payload.first() != Some(&b'J') {
        assert_eq!(bare.ok(), direct.clone().ok());
    }
    let mut t = b"T".to_vec();
    t.extend_from_slice(payload);
    assert_eq!(parse_frame(&t, channel).ok(), direct.clone().ok());

    let args = Value::map([("items", Value::List(vec![value.clone()]))]);
    let command = parse_command_items(&args);
    assert_eq!(
        command.ok(),
        parse_item_tnet(&value, None).ok().map(|item| vec![item])
    );
});
