//! WebSocket frame codec and message assembly (`holdfast_connmgr::ws::{frame, mask, message}`).
//!
//! The first byte picks the connection's options (permessage-deflate, context takeover, small
//! limits) and how payloads are split; the rest is a stream of client frames. Checked:
//!
//! - a parsed header never claims more bytes than given, has the length its length code
//!   implies, and every strict prefix of it is "partial" (the verdict does not depend on how
//!   TCP split the header);
//! - a parsed header re-encoded by the server encoder (plus mask bit and key) parses back to
//!   the same header;
//! - unmasking in pieces at offsets equals unmasking at once, and masking twice is identity;
//! - two assemblers, one fed whole frames and one fed the payloads in pieces, produce the same
//!   messages and fail on the same frame;
//! - every message respects the limits, text is UTF-8, and a Close code is one allowed on the
//!   wire.
#![no_main]

use holdfast_fuzz::ws::close::is_valid_code;
use holdfast_fuzz::ws::extension::DeflateParams;
use holdfast_fuzz::ws::frame::{encode_header, parse_header, ParseRules, Parsed};
use holdfast_fuzz::ws::mask::apply_mask;
use holdfast_fuzz::ws::message::{Assembler, Message};
use holdfast_fuzz::ws::Limits;
use holdfast_fuzz::{pieces, take_byte};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ctl, mut rest) = take_byte(data);
    let deflate = (ctl & 1 != 0).then_some(DeflateParams {
        client_no_context_takeover: ctl & 2 != 0,
        server_max_window_bits: None,
    });
    let limits = if ctl & 4 != 0 {
        Limits {
            max_frame_size: 64,
            max_message_size: 256,
        }
    } else {
        Limits::default()
    };
    let sizes = [usize::from(ctl >> 3) + 1, 3];
    let rules = ParseRules::new(&limits, deflate.is_some());
    let mut whole = Assembler::new(limits, deflate.as_ref());
    let mut split = Assembler::new(limits, deflate.as_ref());

    loop {
        let (header, n) = match parse_header(rest, &rules) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            Ok(Parsed::Partial) | Err(_) => return,
        };
        assert!(n <= rest.len());
        let expected = match rest[1] & 0x7f {
            126 => 8,
            127 => 14,
            _ => 6,
        };
        assert_eq!(n, expected);
        assert!(header.payload_len <= limits.max_frame_size);
        for k in 0..n {
            assert_eq!(
                parse_header(&rest[..k], &rules),
                Ok(Parsed::Partial),
                "prefix {k}"
            );
        }

        // Server encoding of the same header, made a client header, parses back.
        let len = usize::try_from(header.payload_len).expect("64-bit target");
        let mut enc = encode_header(header.fin, header.rsv1, header.opcode, len)
            .as_bytes()
            .to_vec();
        enc[1] |= 0x80;
        enc.extend_from_slice(&header.mask);
        assert_eq!(
            parse_header(&enc, &rules),
            Ok(Parsed::Complete(header, enc.len()))
        );

        let Some(masked) = rest.get(n..n + len) else {
            return;
        };
        rest = &rest[n + len..];

        let mut payload = masked.to_vec();
        apply_mask(&mut payload, header.mask, 0);
        let mut piecewise = masked.to_vec();
        let mut offset = 0;
        for piece in pieces(masked, &sizes) {
            let end = offset + piece.len();
            apply_mask(&mut piecewise[offset..end], header.mask, offset);
            offset = end;
        }
        assert_eq!(payload, piecewise);
        let mut back = payload.clone();
        apply_mask(&mut back, header.mask, 0);
        assert_eq!(back, masked);

        let a = whole.handle_frame(&header, &payload);
        let b = (|| {
            split.begin_frame(&header)?;
            for piece in pieces(&payload, &sizes) {
                split.push_payload(piece)?;
            }
            split.end_frame()
        })();
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b);
                assert_eq!(whole.is_idle(), split.is_idle());
                if let Some(msg) = a {
                    check(&msg, &limits);
                }
            }
            (Err(_), Err(_)) => return,
            (a, b) => panic!("whole frame gave {a:?}, pieces gave {b:?}"),
        }
    }
});

fn check(msg: &Message, limits: &Limits) {
    match msg {
        Message::Text(b) => {
            assert!(b.len() <= limits.max_message_size);
            assert!(std::str::from_utf8(b).is_ok());
        }
        Message::Binary(b) => assert!(b.len() <= limits.max_message_size),
        Message::Ping(b) | Message::Pong(b) => assert!(b.len() <= 125),
        Message::Close(Some(c)) => assert!(is_valid_code(c.code) && c.reason.len() <= 123),
        Message::Close(None) => {}
    }
}
