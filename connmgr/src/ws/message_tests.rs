//! Tests of the [`Assembler`](super::Assembler), driven from wire bytes where the RFCs give
//! examples.

use bytes::Bytes;

use super::*;
use crate::ws::deflate::compress_message;
use crate::ws::frame::{parse_header, ParseRules, Parsed};
use crate::ws::mask::apply_mask;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

type Step = Box<dyn Fn(&mut Assembler) -> Result<(), MessageError>>;

fn hdr(fin: bool, rsv1: bool, opcode: OpCode, len: usize) -> FrameHeader {
    FrameHeader {
        fin,
        rsv1,
        opcode,
        mask: KEY,
        payload_len: len as u64,
    }
}

fn plain() -> Assembler {
    Assembler::new(Limits::default(), None)
}

fn deflating(client_no_context_takeover: bool) -> Assembler {
    let params = DeflateParams {
        client_no_context_takeover,
        server_max_window_bits: None,
    };
    Assembler::new(Limits::default(), Some(&params))
}

fn limited(max_message_size: usize, max_frame_size: u64) -> Assembler {
    Assembler::new(
        Limits {
            max_frame_size,
            max_message_size,
        },
        None,
    )
}

/// Feeds `frame` (header + unmasked payload) and returns the outcome.
fn feed(
    a: &mut Assembler,
    fin: bool,
    op: OpCode,
    payload: &[u8],
) -> Result<Option<Message>, MessageError> {
    a.handle_frame(&hdr(fin, false, op, payload.len()), payload)
}

fn feed_compressed(
    a: &mut Assembler,
    fin: bool,
    rsv1: bool,
    op: OpCode,
    payload: &[u8],
) -> Result<Option<Message>, MessageError> {
    a.handle_frame(&hdr(fin, rsv1, op, payload.len()), payload)
}

/// Parses, unmasks and feeds every frame in `wire`, as the worker would.
fn feed_wire(
    a: &mut Assembler,
    wire: &[u8],
    deflate: bool,
) -> Vec<Result<Option<Message>, MessageError>> {
    let rules = ParseRules::new(&Limits::default(), deflate);
    let mut out = Vec::new();
    let mut buf = wire;
    while !buf.is_empty() {
        let Ok(Parsed::Complete(h, n)) = parse_header(buf, &rules) else {
            panic!("bad test frame");
        };
        let len = h.payload_len as usize;
        let mut payload = buf[n..n + len].to_vec();
        apply_mask(&mut payload, h.mask, 0);
        out.push(a.handle_frame(&h, &payload));
        buf = &buf[n + len..];
    }
    out
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&KEY);
    let mut p = payload.to_vec();
    apply_mask(&mut p, KEY, 0);
    out.extend_from_slice(&p);
    out
}

fn text(s: &str) -> Option<Message> {
    Some(Message::Text(Bytes::copy_from_slice(s.as_bytes())))
}

#[test]
fn rfc6455_single_frame_hello() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut a = plain();
    assert_eq!(feed_wire(&mut a, &wire, false), vec![Ok(text("Hello"))]);
    assert!(a.is_idle());
}

#[test]
fn rfc6455_fragmented_hello() {
    let mut wire = masked(0x01, b"Hel");
    wire.extend(masked(0x80, b"lo"));
    let mut a = plain();
    assert_eq!(
        feed_wire(&mut a, &wire, false),
        vec![Ok(None), Ok(text("Hello"))]
    );
}

#[test]
fn rfc6455_ping_and_pong() {
    let mut a = plain();
    let mut wire = masked(0x89, b"Hello");
    wire.extend(masked(0x8a, b"Hello"));
    assert_eq!(
        feed_wire(&mut a, &wire, false),
        vec![
            Ok(Some(Message::Ping(Bytes::from_static(b"Hello")))),
            Ok(Some(Message::Pong(Bytes::from_static(b"Hello")))),
        ]
    );
    assert_eq!(
        feed(&mut a, true, OpCode::Ping, b""),
        Ok(Some(Message::Ping(Bytes::new())))
    );
}

#[test]
fn rfc6455_binary_256_and_64_kib() {
    for len in [256usize, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut a = plain();
        assert_eq!(
            feed(&mut a, true, OpCode::Binary, &payload),
            Ok(Some(Message::Binary(Bytes::from(payload))))
        );
    }
}

#[test]
fn control_frames_between_fragments() {
    let mut a = plain();
    assert_eq!(feed(&mut a, false, OpCode::Binary, b"ab"), Ok(None));
    assert!(!a.is_idle());
    assert_eq!(
        feed(&mut a, true, OpCode::Ping, b"p"),
        Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
    );
    assert_eq!(feed(&mut a, false, OpCode::Continuation, b"cd"), Ok(None));
    assert_eq!(
        feed(&mut a, true, OpCode::Pong, b""),
        Ok(Some(Message::Pong(Bytes::new())))
    );
    assert_eq!(
        feed(&mut a, true, OpCode::Close, &[0x03, 0xe8]),
        Ok(Some(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: String::new()
        }))))
    );
    assert_eq!(
        feed(&mut a, true, OpCode::Continuation, b"e"),
        Ok(Some(Message::Binary(Bytes::from_static(b"abcde"))))
    );
    assert!(a.is_idle());
}

#[test]
fn empty_messages_and_fragments() {
    let mut a = plain();
    assert_eq!(feed(&mut a, true, OpCode::Text, b""), Ok(text("")));
    assert_eq!(feed(&mut a, false, OpCode::Text, b""), Ok(None));
    assert_eq!(feed(&mut a, false, OpCode::Continuation, b""), Ok(None));
    assert_eq!(feed(&mut a, true, OpCode::Continuation, b""), Ok(text("")));
}

#[test]
fn continuation_sequencing() {
    let mut a = plain();
    let err = feed(&mut a, true, OpCode::Continuation, b"x").unwrap_err();
    assert_eq!(err, MessageError::UnexpectedContinuation);
    assert_eq!(err.close_code(), 1002);

    let mut a = plain();
    feed(&mut a, false, OpCode::Text, b"x").unwrap();
    for op in [OpCode::Text, OpCode::Binary] {
        let err = feed(&mut a, true, op, b"y").unwrap_err();
        assert_eq!(err, MessageError::ExpectedContinuation);
        assert_eq!(err.close_code(), 1002);
    }
}

#[test]
fn close_payloads() {
    let mut a = plain();
    assert_eq!(
        feed(&mut a, true, OpCode::Close, b""),
        Ok(Some(Message::Close(None)))
    );
    let mut p = 4000u16.to_be_bytes().to_vec();
    p.extend_from_slice("κόσμε".as_bytes());
    assert_eq!(
        feed(&mut a, true, OpCode::Close, &p),
        Ok(Some(Message::Close(Some(CloseFrame {
            code: 4000,
            reason: "κόσμε".into()
        }))))
    );
    for (payload, code) in [
        (&[0x03][..], 1002),
        (&[0x03, 0xec][..], 1002),       // 1004
        (&[0x03, 0xed][..], 1002),       // 1005
        (&[0x03, 0xee][..], 1002),       // 1006
        (&[0x03, 0xf7][..], 1002),       // 1015
        (&[0x00, 0x00][..], 1002),       // 0
        (&[0x13, 0x88][..], 1002),       // 5000
        (&[0x03, 0xe8, 0xff][..], 1007), // bad reason
    ] {
        let err = feed(&mut plain(), true, OpCode::Close, payload).unwrap_err();
        assert_eq!(err.close_code(), code, "{payload:?}");
        assert!(matches!(err, MessageError::Close(_)));
    }
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    let s = "κόσμε 🎉";
    let bytes = s.as_bytes();
    for cut in 0..=bytes.len() {
        let mut a = plain();
        assert_eq!(feed(&mut a, false, OpCode::Text, &bytes[..cut]), Ok(None));
        assert_eq!(
            feed(&mut a, true, OpCode::Continuation, &bytes[cut..]),
            Ok(text(s))
        );
    }
}

#[test]
fn invalid_utf8_fails_fast_across_fragments() {
    // Autobahn 6.4.1: the invalid sequence arrives in the second of three fragments.
    let mut a = plain();
    assert_eq!(
        feed(&mut a, false, OpCode::Text, "κόσμε".as_bytes()),
        Ok(None)
    );
    let err = feed(&mut a, false, OpCode::Continuation, b"\xf4\x90\x80\x80").unwrap_err();
    assert_eq!(err, MessageError::InvalidUtf8);
    assert_eq!(err.close_code(), 1007);

    // Invalid only once the next fragment arrives: a lead byte then a bad continuation.
    let mut a = plain();
    assert_eq!(feed(&mut a, false, OpCode::Text, b"ok\xe0"), Ok(None));
    assert_eq!(
        feed(&mut a, true, OpCode::Continuation, b"\x80\x80"),
        Err(MessageError::InvalidUtf8)
    );

    // Detected within a frame's payload pushed in pieces, before the frame ends.
    let mut a = plain();
    a.begin_frame(&hdr(true, false, OpCode::Text, 4)).unwrap();
    a.push_payload(b"a").unwrap();
    assert_eq!(a.push_payload(b"\xff"), Err(MessageError::InvalidUtf8));

    // Cut short by the end of the message.
    let mut a = plain();
    assert_eq!(feed(&mut a, false, OpCode::Text, b"ok"), Ok(None));
    assert_eq!(
        feed(&mut a, true, OpCode::Continuation, b"\xe2\x82"),
        Err(MessageError::InvalidUtf8)
    );

    // Binary messages are not checked.
    let mut a = plain();
    assert_eq!(
        feed(&mut a, true, OpCode::Binary, b"\xff\xfe"),
        Ok(Some(Message::Binary(Bytes::from_static(b"\xff\xfe"))))
    );
}

#[test]
fn payload_in_pieces_equals_whole() {
    let data: Vec<u8> = "fragmented and streamed κόσμε ".repeat(50).into_bytes();
    for piece in [1, 2, 7, 100, data.len()] {
        let mut a = plain();
        let (first, second) = data.split_at(data.len() / 3);
        a.begin_frame(&hdr(false, false, OpCode::Text, first.len()))
            .unwrap();
        for chunk in first.chunks(piece) {
            a.push_payload(chunk).unwrap();
        }
        assert_eq!(a.end_frame(), Ok(None));
        a.begin_frame(&hdr(true, false, OpCode::Continuation, second.len()))
            .unwrap();
        let mut expected = second.len() as u64;
        for chunk in second.chunks(piece) {
            assert_eq!(a.remaining(), expected);
            a.push_payload(chunk).unwrap();
            expected -= chunk.len() as u64;
        }
        assert_eq!(a.remaining(), 0);
        assert_eq!(
            a.end_frame(),
            Ok(Some(Message::Text(Bytes::from(data.clone())))),
            "piece {piece}"
        );
    }
}

#[test]
fn control_payload_in_pieces() {
    let mut a = plain();
    a.begin_frame(&hdr(true, false, OpCode::Ping, 5)).unwrap();
    assert_eq!(a.remaining(), 5);
    a.push_payload(b"He").unwrap();
    a.push_payload(b"llo").unwrap();
    assert_eq!(
        a.end_frame(),
        Ok(Some(Message::Ping(Bytes::from_static(b"Hello"))))
    );
}

#[test]
fn message_size_limit() {
    // Exactly at the limit, in one frame or several.
    let mut a = limited(10, 100);
    assert_eq!(
        feed(&mut a, true, OpCode::Binary, &[1; 10]),
        Ok(Some(Message::Binary(Bytes::from(vec![1; 10]))))
    );
    feed(&mut a, false, OpCode::Binary, &[1; 6]).unwrap();
    assert!(feed(&mut a, true, OpCode::Continuation, &[1; 4])
        .unwrap()
        .is_some());

    // One byte over, refused from the header, before any payload.
    let mut a = limited(10, 100);
    let err = a
        .begin_frame(&hdr(true, false, OpCode::Binary, 11))
        .unwrap_err();
    assert_eq!(err, MessageError::TooBig { max: 10 });
    assert_eq!(err.close_code(), 1009);

    // Over the limit across fragments.
    let mut a = limited(10, 100);
    feed(&mut a, false, OpCode::Text, b"123456").unwrap();
    let err = a
        .begin_frame(&hdr(true, false, OpCode::Continuation, 5))
        .unwrap_err();
    assert_eq!(err, MessageError::TooBig { max: 10 });

    // Control frames do not count against a message in progress.
    let mut a = limited(10, 100);
    feed(&mut a, false, OpCode::Text, b"123456789").unwrap();
    feed(&mut a, true, OpCode::Ping, &[0; 125]).unwrap();
    assert_eq!(
        feed(&mut a, true, OpCode::Continuation, b"0"),
        Ok(text("1234567890"))
    );
}

#[test]
fn frame_size_limit() {
    let mut a = limited(1000, 100);
    let err = a
        .begin_frame(&hdr(true, false, OpCode::Binary, 101))
        .unwrap_err();
    assert_eq!(
        err,
        MessageError::Frame(FrameError::FrameTooBig { len: 101, max: 100 })
    );
    assert_eq!(err.close_code(), 1009);
    assert!(feed(&mut a, true, OpCode::Binary, &[0; 100]).is_ok());
}

#[test]
fn header_rules_rechecked() {
    let mut a = plain();
    let err = a
        .begin_frame(&hdr(true, true, OpCode::Text, 1))
        .unwrap_err();
    assert_eq!(err, MessageError::Frame(FrameError::ReservedBits));
    assert_eq!(err.close_code(), 1002);
    assert_eq!(
        plain().begin_frame(&hdr(false, false, OpCode::Ping, 1)),
        Err(MessageError::Frame(FrameError::FragmentedControl))
    );
    assert_eq!(
        plain().begin_frame(&hdr(true, false, OpCode::Close, 126)),
        Err(MessageError::Frame(FrameError::ControlTooLong))
    );
    assert_eq!(
        deflating(false).begin_frame(&hdr(true, true, OpCode::Ping, 1)),
        Err(MessageError::Frame(FrameError::ReservedBits))
    );
    let mut a = deflating(false);
    feed_compressed(&mut a, false, true, OpCode::Text, &[0xf2]).unwrap();
    assert_eq!(
        a.begin_frame(&hdr(true, true, OpCode::Continuation, 1)),
        Err(MessageError::Frame(FrameError::ReservedBits))
    );
}

#[test]
fn misuse_is_reported_not_panicked() {
    let cases: Vec<Step> = vec![
        Box::new(|a| a.push_payload(b"x")),
        Box::new(|a| a.end_frame().map(|_| ())),
        Box::new(|a| {
            a.begin_frame(&hdr(true, false, OpCode::Binary, 2))?;
            a.begin_frame(&hdr(true, false, OpCode::Binary, 2))
        }),
        Box::new(|a| {
            a.begin_frame(&hdr(true, false, OpCode::Binary, 2))?;
            a.push_payload(b"abc")
        }),
        Box::new(|a| {
            a.begin_frame(&hdr(true, false, OpCode::Ping, 2))?;
            a.push_payload(b"abc")
        }),
        Box::new(|a| {
            a.begin_frame(&hdr(true, false, OpCode::Binary, 2))?;
            a.push_payload(b"a")?;
            a.end_frame().map(|_| ())
        }),
        Box::new(|a| {
            a.handle_frame(&hdr(true, false, OpCode::Binary, 2), b"a")
                .map(|_| ())
        }),
    ];
    for (i, case) in cases.iter().enumerate() {
        let err = case(&mut plain()).unwrap_err();
        assert!(matches!(err, MessageError::Misuse(_)), "case {i}: {err:?}");
        assert_eq!(err.close_code(), 1011);
    }
}

#[test]
fn rfc7692_compressed_hello() {
    // RFC 7692 §7.2.3.1, from the wire (masked by the client).
    let mut a = deflating(false);
    let wire = masked(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    assert_eq!(feed_wire(&mut a, &wire, true), vec![Ok(text("Hello"))]);
    // Fragmented: 41 03 f2 48 cd, 80 04 c9 c9 07 00.
    let mut wire = masked(0x41, &[0xf2, 0x48, 0xcd]);
    wire.extend(masked(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
    assert_eq!(
        feed_wire(&mut a, &wire, true),
        vec![Ok(None), Ok(text("Hello"))]
    );
    // Shared window (§7.2.3.2): "Hello" again, referring to the previous message.
    let wire = masked(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(feed_wire(&mut a, &wire, true), vec![Ok(text("Hello"))]);
}

#[test]
fn compressed_and_plain_messages_mix() {
    let mut a = deflating(true);
    let c = compress_message(b"compressed").unwrap();
    assert_eq!(
        feed_compressed(&mut a, true, true, OpCode::Text, &c),
        Ok(text("compressed"))
    );
    assert_eq!(
        feed(&mut a, true, OpCode::Text, b"plain"),
        Ok(text("plain"))
    );
    let payload: Vec<u8> = (0..50_000).map(|i| (i % 251) as u8).collect();
    let c = compress_message(&payload).unwrap();
    let (first, rest) = c.split_at(c.len() / 2);
    assert_eq!(
        feed_compressed(&mut a, false, true, OpCode::Binary, first),
        Ok(None)
    );
    assert_eq!(
        feed(&mut a, true, OpCode::Ping, b"in between"),
        Ok(Some(Message::Ping(Bytes::from_static(b"in between"))))
    );
    assert_eq!(
        feed_compressed(&mut a, true, false, OpCode::Continuation, rest),
        Ok(Some(Message::Binary(Bytes::from(payload))))
    );
}

#[test]
fn compressed_text_utf8_checked() {
    let mut a = deflating(false);
    let c = compress_message(b"ok \xed\xa0\x80").unwrap();
    let err = feed_compressed(&mut a, true, true, OpCode::Text, &c).unwrap_err();
    assert_eq!(err, MessageError::InvalidUtf8);
    assert_eq!(err.close_code(), 1007);
    // Split characters in the decompressed stream are fine.
    let s = "κόσμε".repeat(1000);
    let c = compress_message(s.as_bytes()).unwrap();
    let mut a = deflating(false);
    a.begin_frame(&hdr(true, true, OpCode::Text, c.len()))
        .unwrap();
    for piece in c.chunks(3) {
        a.push_payload(piece).unwrap();
    }
    assert_eq!(a.end_frame(), Ok(text(&s)));
}

#[test]
fn compressed_message_limits() {
    let limits = Limits {
        max_frame_size: 1 << 20,
        max_message_size: 1000,
    };
    let params = DeflateParams {
        client_no_context_takeover: false,
        server_max_window_bits: None,
    };
    // Decompresses to exactly the limit.
    let mut a = Assembler::new(limits, Some(&params));
    let c = compress_message(&[7; 1000]).unwrap();
    assert!(feed_compressed(&mut a, true, true, OpCode::Binary, &c)
        .unwrap()
        .is_some());
    // One byte more: a small frame, refused while inflating.
    let mut a = Assembler::new(limits, Some(&params));
    let c = compress_message(&[7; 1001]).unwrap();
    assert!(c.len() < 100);
    let err = feed_compressed(&mut a, true, true, OpCode::Binary, &c).unwrap_err();
    assert_eq!(
        err,
        MessageError::Deflate(DeflateError::TooBig { max: 1000 })
    );
    assert_eq!(err.close_code(), 1009);
    // A zip bomb split across fragments.
    let mut a = Assembler::new(limits, Some(&params));
    let c = compress_message(&vec![0; 1 << 20]).unwrap();
    let (first, rest) = c.split_at(c.len() / 2);
    let result = feed_compressed(&mut a, false, true, OpCode::Binary, first)
        .and_then(|_| feed_compressed(&mut a, true, false, OpCode::Continuation, rest));
    assert_eq!(
        result,
        Err(MessageError::Deflate(DeflateError::TooBig { max: 1000 }))
    );
}

#[test]
fn corrupt_compressed_data() {
    let mut a = deflating(false);
    let err = feed_compressed(&mut a, true, true, OpCode::Binary, &[0xff, 0xff]).unwrap_err();
    assert_eq!(err, MessageError::Deflate(DeflateError::Corrupt));
    assert_eq!(err.close_code(), 1007);
}
