//! Chunked request body decoder (`holdfast_connmgr::http1::chunked::ChunkedDecoder`).
//!
//! The first input byte picks how the rest is split into reads and the per-call credit; the
//! same body is also decoded in one piece with unlimited credit. Both runs must agree exactly
//! (body bytes, completion, error, where the body ends): the decoder is incremental, so the
//! split must not matter. Every call must stay inside its input, honour its credit and make
//! progress whenever it has input and credit.
#![no_main]

use holdfast_fuzz::http1::chunked::{ChunkError, ChunkedDecoder};
use holdfast_fuzz::{pieces, take_byte};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Outcome {
    body: Vec<u8>,
    done: bool,
    error: Option<ChunkError>,
    /// Input bytes consumed in all (meaningful when done: where the next request starts).
    consumed: usize,
}

fn run(reads: &[&[u8]], max_data: usize) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Outcome {
        body: Vec::new(),
        done: false,
        error: None,
        consumed: 0,
    };
    'reads: for read in reads {
        buf.extend_from_slice(read);
        loop {
            match dec.decode(&buf, max_data) {
                Ok(d) => {
                    assert!(d.consumed <= buf.len());
                    assert!(d.data.start <= d.data.end && d.data.end <= d.consumed);
                    assert!(d.data.len() <= max_data);
                    assert_eq!(d.done, dec.is_done());
                    out.body.extend_from_slice(&buf[d.data.clone()]);
                    out.consumed += d.consumed;
                    buf.drain(..d.consumed);
                    if d.done {
                        break 'reads;
                    }
                    if d.consumed == 0 {
                        // No progress is only allowed with nothing left to read.
                        assert!(buf.is_empty(), "stalled with {} bytes", buf.len());
                        break;
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    break 'reads;
                }
            }
        }
    }
    out.done = dec.is_done();
    if out.error.is_some() {
        // Where inside the failing call the error was found is not reported.
        out.consumed = 0;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (ctl, input) = take_byte(data);
    let sizes = [usize::from(ctl & 0x0f) + 1, usize::from(ctl >> 4) * 3 + 1];
    let max_data = usize::from(ctl % 7) + 1;

    let whole = run(&[input], usize::MAX);
    let split = run(&pieces(input, &sizes), max_data);
    assert_eq!(whole, split, "ctl {ctl:#x}");
    if whole.done {
        assert!(whole.consumed <= input.len());
        assert!(whole.body.len() < whole.consumed);
    }
});
