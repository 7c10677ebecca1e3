//! permessage-deflate (`holdfast_connmgr::ws::deflate`).
//!
//! Two halves, chosen by the first input byte:
//!
//! - arbitrary bytes as a compressed message, pushed in pieces under a small output limit:
//!   the output never exceeds the limit, and the same bytes pushed whole give the same result;
//! - arbitrary bytes as messages to compress: `compress_message` and a reused
//!   `MessageCompressor` give identical bytes, and inflating them (whole or in pieces, with
//!   or without context takeover across messages) gives the original back.
#![no_main]

use holdfast_fuzz::ws::deflate::{compress_message, Inflater, MessageCompressor};
use holdfast_fuzz::{pieces, take_byte};
use libfuzzer_sys::fuzz_target;

fn inflate(inf: &mut Inflater, parts: &[&[u8]], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in parts {
        inf.push(p, &mut out, max).map_err(|e| e.to_string())?;
        assert!(out.len() <= max, "{} > {max}", out.len());
    }
    inf.finish(&mut out, max).map_err(|e| e.to_string())?;
    assert!(out.len() <= max);
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let (ctl, rest) = take_byte(data);
    let sizes = [usize::from(ctl >> 4) + 1, 7];
    if ctl & 1 == 0 {
        let max = usize::from(ctl >> 1) * 97 + 1;
        let a = inflate(&mut Inflater::new(true), &[rest], max);
        let b = inflate(&mut Inflater::new(true), &pieces(rest, &sizes), max);
        // Whole and split agree on success; a failure may be found at a different point
        // (corrupt vs too big) but must be a failure either way.
        assert_eq!(a.is_ok(), b.is_ok(), "{a:?} vs {b:?}");
        if a.is_ok() {
            assert_eq!(a, b);
        }
        return;
    }

    // Messages separated by 0xff.
    let messages: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();
    // Compressor state is a few hundred KiB to allocate and clear: the one that resets
    // between messages is reused across runs, as a worker reuses its own.
    thread_local! {
        static REUSED: std::cell::RefCell<MessageCompressor> =
            std::cell::RefCell::new(MessageCompressor::new(6));
    }
    let mut takeover = MessageCompressor::with_context_takeover(6);
    let mut inf_fresh = Inflater::new(true);
    let mut inf_keep = Inflater::new(false);
    for (i, msg) in messages.into_iter().enumerate() {
        let once = REUSED
            .with(|c| c.borrow_mut().compress(msg))
            .expect("compress");
        if i == 0 {
            // A fresh compressor per call is costly: compare on the first message only.
            assert_eq!(compress_message(msg).expect("compress"), once);
        }
        let max = msg.len();
        assert_eq!(
            inflate(&mut inf_fresh, &pieces(&once, &sizes), max).as_deref(),
            Ok(msg)
        );
        let kept = takeover.compress(msg).expect("compress");
        assert_eq!(inflate(&mut inf_keep, &[&kept], max).as_deref(), Ok(msg));
    }
});
