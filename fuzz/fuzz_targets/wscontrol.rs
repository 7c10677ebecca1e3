//! GRIP on WebSockets (`holdfast_proto::wscontrol`): `c:` control messages, the `grip`
//! extension of the origin's reply, and message classification.
//!
//! The input is header lines (`Name: value`), a blank line, then an origin message. Checked:
//! parsing is deterministic; a delivered message is the input minus the prefix; a control
//! payload is the input minus `c:`.
#![no_main]

use bytes::Bytes;
use holdfast_fuzz::split_head;
use holdfast_proto::internal::WsKind;
use holdfast_proto::wscontrol::{classify, parse, parse_grip_extension, OriginMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split_head(data);
    let ext = parse_grip_extension(&headers);
    assert_eq!(ext, parse_grip_extension(&headers));

    let parsed = parse(body);
    assert_eq!(parsed, parse(body));
    if let Some(rest) = body.strip_prefix(b"c:") {
        let _ = parse(rest);
    }

    let Some(ext) = ext else {
        return;
    };
    let message = Bytes::copy_from_slice(body);
    for kind in [WsKind::Text, WsKind::Binary] {
        match classify(&ext, kind, &message, true) {
            OriginMessage::Control(c) => {
                assert!(kind == WsKind::Text);
                assert_eq!(&body[2..], &c[..]);
            }
            OriginMessage::Deliver(d) => {
                assert!(body.ends_with(&d) && body.len() - d.len() == ext.message_prefix.len());
            }
            OriginMessage::Drop => {}
        }
    }
});
