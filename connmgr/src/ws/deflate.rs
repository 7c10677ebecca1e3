//! permessage-deflate payloads (RFC 7692 §7.2): raw DEFLATE, each message ending in a sync
//! flush whose 4-byte tail `00 00 ff ff` is removed by the sender and put back by the
//! receiver.
//!
//! Receiving: each connection with deflate has an [`Inflater`]. Its output is bounded by the
//! message size limit, a little at a time, so a small compressed message cannot make the
//! connection allocate more than [`Limits::max_message_size`](super::Limits) ("zip bomb"). With
//! `client_no_context_takeover` the inflater frees its state (about 40 KiB) between messages.
//!
//! Sending: Holdfast always negotiates `server_no_context_takeover` (see
//! [`super::extension`]), so every server message is compressed from a fresh compressor state
//! and the result is valid for every connection that negotiated deflate, whatever it received
//! before. A message published to many connections is therefore compressed **once**, with
//! [`compress_message`] or a per-worker [`MessageCompressor`] (which resets between messages
//! and produces the same bytes without reallocating its few hundred KiB of state), and the same
//! `Bytes` is written to each connection behind its own frame header with RSV1 set.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::close;

/// The tail of a sync flush, removed from each compressed message (RFC 7692 §7.2.1).
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compression level used by [`compress_message`] (zlib's default, as Pushpin uses).
pub const DEFAULT_LEVEL: u32 = 6;

/// First output slice tried per decompression step; grows up to [`MAX_STEP`].
const MIN_STEP: usize = 256;
/// Largest output slice per decompression step.
const MAX_STEP: usize = 64 * 1024;

/// A permessage-deflate payload that cannot be processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeflateError {
    /// The compressor failed (it does not, short of a bug in it; the caller may send the
    /// message uncompressed instead).
    #[error("compression failed")]
    Compress,
    /// The client's compressed data is not valid DEFLATE (close code 1007).
    #[error("invalid compressed data")]
    Corrupt,
    /// The message decompresses to more than the limit (close code 1009).
    #[error("decompressed message exceeds {max} bytes")]
    TooBig {
        /// The limit.
        max: usize,
    },
}

impl DeflateError {
    /// The close code to fail the connection with: 1009 for [`DeflateError::TooBig`], 1007
    /// (data inconsistent with the message) for corrupt data, 1011 for a compressor failure.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Compress => close::INTERNAL_ERROR,
            Self::Corrupt => close::INVALID_PAYLOAD,
            Self::TooBig { .. } => close::MESSAGE_TOO_BIG,
        }
    }
}

/// Decompresses a connection's compressed messages.
///
/// For each compressed message: [`push`](Self::push) its payload bytes as they arrive (from any
/// number of frames), then [`finish`](Self::finish) it.
#[derive(Debug)]
pub struct Inflater {
    /// Allocated on first use, and dropped after each message when the client does not keep
    /// its context.
    state: Option<Decompress>,
    /// `client_no_context_takeover` was agreed: every message starts from a fresh state.
    no_context_takeover: bool,
    /// The current message ended in a final DEFLATE block: ignore the rest of its input.
    ended: bool,
    /// The current message has had payload bytes. An empty compressed payload is an empty
    /// message: the tail alone is not a complete DEFLATE block (its first byte reads as a
    /// stored-block header and the length is cut short), so feeding it would leave a kept
    /// context in the middle of a block and garble the next message (found by fuzzing).
    received: bool,
}

impl Inflater {
    /// An inflater for a connection; `client_no_context_takeover` as agreed in the handshake.
    pub fn new(client_no_context_takeover: bool) -> Self {
        Self {
            state: None,
            no_context_takeover: client_no_context_takeover,
            ended: false,
            received: false,
        }
    }

    /// Decompresses the next `input` bytes of the current message, appending to `out`, which
    /// never grows beyond `max_len` bytes: a message that would is [`DeflateError::TooBig`].
    pub fn push(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), DeflateError> {
        if self.ended || input.is_empty() {
            return Ok(());
        }
        self.received = true;
        let state = self.state.get_or_insert_with(|| Decompress::new(false));
        match inflate(state, input, out, max_len) {
            Ok(ended) => {
                self.ended = ended;
                Ok(())
            }
            Err(e) => {
                self.state = None;
                Err(e)
            }
        }
    }

    /// Ends the current message: puts back the [`DEFLATE_TAIL`] the client removed and
    /// flushes the remaining output into `out` (still bounded by `max_len`).
    pub fn finish(&mut self, out: &mut Vec<u8>, max_len: usize) -> Result<(), DeflateError> {
        let ended = std::mem::replace(&mut self.ended, false);
        let received = std::mem::replace(&mut self.received, false);
        let result = if ended {
            Ok(true)
        } else if !received {
            // An empty message: nothing to decompress, the context is left as it was.
            Ok(false)
        } else {
            let state = self.state.get_or_insert_with(|| Decompress::new(false));
            inflate(state, &DEFLATE_TAIL, out, max_len)
        };
        match result {
            // A final block ends the DEFLATE stream: the next message needs a new one.
            Ok(true) => self.state = None,
            Ok(false) if self.no_context_takeover => self.state = None,
            Ok(false) => {}
            Err(e) => {
                self.state = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// True while decompression state is allocated (between messages, only with context
    /// takeover).
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }
}

/// Runs `state` over `input`, appending at most `max_len - out.len()` bytes to `out`. Returns
/// true if the DEFLATE stream ended (a final block).
fn inflate(
    state: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max_len: usize,
) -> Result<bool, DeflateError> {
    let mut step = input.len().saturating_mul(4).clamp(MIN_STEP, MAX_STEP);
    loop {
        // One byte of room beyond the limit tells "exactly at the limit" from "over it".
        let room = max_len.saturating_add(1).saturating_sub(out.len());
        let n = step.min(room);
        let start = out.len();
        reserve_bounded(out, n, max_len.saturating_add(1));
        out.resize(start + n, 0);
        let (in_before, out_before) = (state.total_in(), state.total_out());
        let status = state.decompress(input, &mut out[start..], FlushDecompress::None);
        // Both deltas are bounded by the slice lengths passed in, so they fit a usize.
        let consumed = (state.total_in() - in_before) as usize;
        let written = (state.total_out() - out_before) as usize;
        out.truncate(start + written);
        let status = status.map_err(|_| DeflateError::Corrupt)?;
        if out.len() > max_len {
            out.truncate(max_len);
            return Err(DeflateError::TooBig { max: max_len });
        }
        input = &input[consumed..];
        if status == Status::StreamEnd {
            return Ok(true);
        }
        if written < n {
            if input.is_empty() {
                return Ok(false);
            }
            if consumed == 0 && written == 0 {
                // Room to write and input left, yet no progress.
                return Err(DeflateError::Corrupt);
            }
        }
        step = (step * 2).min(MAX_STEP);
    }
}

/// Makes room for `additional` more bytes in `out`, growing geometrically (so appending stays
/// amortised O(1)) but never to more than `cap` bytes of capacity: a message buffer never holds
/// much more memory than the message size limit allows. `out.len() + additional` must not
/// exceed `cap`.
pub(super) fn reserve_bounded(out: &mut Vec<u8>, additional: usize, cap: usize) {
    let needed = out.len() + additional;
    if out.capacity() < needed {
        let target = out
            .capacity()
            .saturating_mul(2)
            .clamp(needed, cap.max(needed));
        out.reserve_exact(target - out.len());
    }
}

/// Compresses server messages for permessage-deflate.
///
/// Without context takeover (the only mode Holdfast negotiates) every call starts from a fresh
/// state, so its output is valid on any connection that negotiated deflate, and equal to what
/// [`compress_message`] returns. Keep one per worker and reuse it: its state is large.
#[derive(Debug)]
pub struct MessageCompressor {
    compress: Compress,
    context_takeover: bool,
}

impl MessageCompressor {
    /// A compressor for `server_no_context_takeover` at `level` (0–9).
    pub fn new(level: u32) -> Self {
        Self {
            compress: Compress::new(Compression::new(level.min(9)), false),
            context_takeover: false,
        }
    }

    /// A compressor that keeps its context between messages, for a single connection that did
    /// not agree to `server_no_context_takeover` (Holdfast never negotiates that; kept for
    /// completeness and tests).
    pub fn with_context_takeover(level: u32) -> Self {
        Self {
            compress: Compress::new(Compression::new(level.min(9)), false),
            context_takeover: true,
        }
    }

    /// The compressed payload of a message whose data is `payload`, tail removed, to be sent
    /// in a frame (or fragments) whose first frame has RSV1 set.
    pub fn compress(&mut self, payload: &[u8]) -> Result<Bytes, DeflateError> {
        if payload.is_empty() {
            // RFC 7692 §7.2.3.6: a single 0x00, which with the receiver's tail is a complete
            // empty stored block. An empty payload would leave the tail alone, an incomplete
            // block that garbles the next message of a receiver keeping its context.
            return Ok(Bytes::from_static(&[0x00]));
        }
        if !self.context_takeover {
            self.compress.reset();
        }
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.compress.total_in();
            let result = self
                .compress
                .compress_vec(input, &mut out, FlushCompress::Sync);
            if result.is_err() {
                // Leave a clean state behind for the next message.
                self.compress.reset();
                return Err(DeflateError::Compress);
            }
            // Bounded by input.len().
            input = &input[(self.compress.total_in() - before) as usize..];
            // The sync flush is complete once all input is in and output room is left over.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if !out.ends_with(&DEFLATE_TAIL) {
            self.compress.reset();
            return Err(DeflateError::Compress);
        }
        out.truncate(out.len() - DEFLATE_TAIL.len());
        Ok(Bytes::from(out))
    }
}

/// Compresses one server message with a fresh compressor at [`DEFAULT_LEVEL`]: the result is
/// valid for every connection that negotiated permessage-deflate (always with
/// `server_no_context_takeover` in Holdfast), so a broadcast is compressed once and shared.
/// Prefer a per-worker [`MessageCompressor`] on hot paths; the output is identical.
pub fn compress_message(payload: &[u8]) -> Result<Bytes, DeflateError> {
    MessageCompressor::new(DEFAULT_LEVEL).compress(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn inflate_message(inflater: &mut Inflater, pieces: &[&[u8]]) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        for piece in pieces {
            inflater.push(piece, &mut out, MAX)?;
        }
        inflater.finish(&mut out, MAX)?;
        Ok(out)
    }

    fn inflate_one(payload: &[u8]) -> Result<Vec<u8>, DeflateError> {
        inflate_message(&mut Inflater::new(false), &[payload])
    }

    /// Compressible but not trivial text.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"the quick brown fox jumps over the lazy dog "[(i * 7 + i / 13) % 44])
            .collect()
    }

    #[test]
    fn rfc7692_hello() {
        // RFC 7692 §7.2.3.1: "Hello" in one compressed frame: c1 07 f2 48 cd c9 c9 07 00.
        let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_one(&compressed).unwrap(), b"Hello");
        assert_eq!(compress_message(b"Hello").unwrap()[..], compressed);
    }

    #[test]
    fn rfc7692_hello_fragmented() {
        // RFC 7692 §7.2.3.1: the same payload split across two frames (41 03 f2 48 cd, 80 04
        // c9 c9 07 00).
        let mut inflater = Inflater::new(false);
        let out = inflate_message(
            &mut inflater,
            &[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]],
        );
        assert_eq!(out.unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_shared_window() {
        // RFC 7692 §7.2.3.2: a second "Hello" referring to the first: f2 00 11 00 00.
        let mut inflater = Inflater::new(false);
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_message(&mut inflater, &[&first]).unwrap(), b"Hello");
        assert!(inflater.is_allocated());
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(
            inflate_message(&mut inflater, &[&second]).unwrap(),
            b"Hello"
        );
        // The same message without the shared window is not "Hello".
        assert_ne!(inflate_one(&second).ok().as_deref(), Some(&b"Hello"[..]));
        // And a compressor with context takeover can produce such references.
        let mut c = MessageCompressor::with_context_takeover(DEFAULT_LEVEL);
        assert_eq!(c.compress(b"Hello").unwrap()[..], first);
        let again = c.compress(b"Hello").unwrap();
        assert!(again.len() < first.len());
        let mut inflater = Inflater::new(false);
        inflate_message(&mut inflater, &[&first]).unwrap();
        assert_eq!(inflate_message(&mut inflater, &[&again]).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_stored_block() {
        // RFC 7692 §7.2.3.3: DEFLATE block with no compression.
        let payload = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate_one(&payload).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_bfinal_block() {
        // RFC 7692 §7.2.3.4: a final block; the rest of the payload and the tail are ignored,
        // and the next message starts a new stream.
        let mut inflater = Inflater::new(false);
        let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(
            inflate_message(&mut inflater, &[&payload]).unwrap(),
            b"Hello"
        );
        assert!(!inflater.is_allocated());
        let next = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_message(&mut inflater, &[&next]).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_two_blocks() {
        // RFC 7692 §7.2.3.5: two DEFLATE blocks in one message.
        let payload = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate_one(&payload).unwrap(), b"Hello");
    }

    #[test]
    fn empty_message() {
        // RFC 7692 §7.2.3.6: an empty payload is the receiver's tail alone.
        assert_eq!(compress_message(b"").unwrap()[..], [0x00]);
        assert_eq!(inflate_one(b"").unwrap(), b"");
        assert_eq!(inflate_one(&[0x00]).unwrap(), b"");
    }

    #[test]
    fn round_trips_in_every_piece_size() {
        for len in [1, 10, 1000, 100_000, 300_000] {
            let data = sample(len);
            let compressed = compress_message(&data).unwrap();
            assert!(!compressed.ends_with(&DEFLATE_TAIL));
            if len >= 1000 {
                assert!(compressed.len() < data.len() / 2, "len {len}");
            }
            for piece in [1, 3, 100, 4096, compressed.len()] {
                let pieces: Vec<&[u8]> = compressed.chunks(piece).collect();
                let out = inflate_message(&mut Inflater::new(false), &pieces).unwrap();
                assert!(out == data, "len {len} piece {piece}");
            }
        }
    }

    #[test]
    fn incompressible_data_round_trips() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let compressed = compress_message(&data).unwrap();
        assert_eq!(inflate_one(&compressed).unwrap(), data);
    }

    #[test]
    fn shared_output_is_valid_on_any_connection() {
        // A connection that already decompressed other messages (client context takeover)
        // reads a broadcast compressed from a fresh state.
        let broadcast = compress_message(b"published to everyone").unwrap();
        let mut busy = Inflater::new(false);
        inflate_message(&mut busy, &[&compress_message(&sample(5000)).unwrap()]).unwrap();
        let mut fresh = Inflater::new(false);
        for inflater in [&mut busy, &mut fresh] {
            assert_eq!(
                inflate_message(inflater, &[&broadcast]).unwrap(),
                b"published to everyone"
            );
        }
    }

    #[test]
    fn reused_compressor_equals_fresh() {
        let mut c = MessageCompressor::new(DEFAULT_LEVEL);
        for msg in [&sample(3000)[..], b"Hello", b"Hello", &sample(70_000)[..]] {
            assert_eq!(c.compress(msg).unwrap(), compress_message(msg).unwrap());
        }
    }

    #[test]
    fn levels() {
        let data = sample(20_000);
        for level in [0, 1, 9, 42] {
            let compressed = MessageCompressor::new(level).compress(&data).unwrap();
            assert_eq!(inflate_one(&compressed).unwrap(), data, "level {level}");
        }
    }

    #[test]
    fn client_no_context_takeover_frees_state() {
        let mut inflater = Inflater::new(true);
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert!(!inflater.is_allocated());
        let mut out = Vec::new();
        inflater.push(&hello, &mut out, MAX).unwrap();
        assert!(inflater.is_allocated());
        inflater.finish(&mut out, MAX).unwrap();
        assert_eq!(out, b"Hello");
        assert!(!inflater.is_allocated());
        assert_eq!(inflate_message(&mut inflater, &[&hello]).unwrap(), b"Hello");
    }

    #[test]
    fn corrupt_data() {
        // Block type 3 is reserved.
        let err = inflate_one(&[0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err, DeflateError::Corrupt);
        assert_eq!(err.close_code(), 1007);
        // A stored block whose length check fails.
        assert_eq!(
            inflate_one(&[0x00, 0x05, 0x00, 0x00, 0x00]),
            Err(DeflateError::Corrupt)
        );
        // The inflater recovers for the next connection state.
        let mut inflater = Inflater::new(false);
        assert!(inflate_message(&mut inflater, &[&[0xff, 0xff]]).is_err());
        assert!(!inflater.is_allocated());
    }

    #[test]
    fn zip_bomb_is_bounded() {
        // 16 MiB of zeros compresses to about 16 KiB.
        let bomb = compress_message(&vec![0; 16 << 20]).unwrap();
        assert!(bomb.len() < 64 * 1024);
        let limit = 1 << 20;
        let mut out = Vec::new();
        let mut inflater = Inflater::new(false);
        let err = inflater.push(&bomb, &mut out, limit).unwrap_err();
        assert_eq!(err, DeflateError::TooBig { max: limit });
        assert_eq!(err.close_code(), 1009);
        assert!(out.len() <= limit);
        assert!(out.capacity() <= limit + 1);
    }

    #[test]
    fn limit_is_inclusive() {
        let data = sample(10_000);
        let compressed = compress_message(&data).unwrap();
        let mut out = Vec::new();
        let mut inflater = Inflater::new(false);
        inflater.push(&compressed, &mut out, 10_000).unwrap();
        inflater.finish(&mut out, 10_000).unwrap();
        assert_eq!(out, data);

        let mut out = Vec::new();
        let mut inflater = Inflater::new(false);
        let result = inflater
            .push(&compressed, &mut out, 9_999)
            .and_then(|()| inflater.finish(&mut out, 9_999));
        assert_eq!(result, Err(DeflateError::TooBig { max: 9_999 }));
        // The limit counts what `out` already holds (earlier fragments' output).
        let mut out = vec![0; 5_000];
        let mut inflater = Inflater::new(false);
        let result = inflater
            .push(&compressed, &mut out, 14_999)
            .and_then(|()| inflater.finish(&mut out, 14_999));
        assert_eq!(result, Err(DeflateError::TooBig { max: 14_999 }));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/ws_deflate.rs): with context takeover, an empty
    /// compressed message (empty payload, so the tail alone) left the inflater inside a
    /// stored-block header, and the next message came out garbled (209 bytes for 200).
    #[test]
    fn empty_message_keeps_the_context_intact() {
        let data: Vec<u8> = (0..200u8).collect();
        for empty in [&[][..], &[0x00][..]] {
            let mut inflater = Inflater::new(false);
            let mut c = MessageCompressor::with_context_takeover(DEFAULT_LEVEL);
            let first = c.compress(b"first message").unwrap();
            assert_eq!(
                inflate_message(&mut inflater, &[&first]).unwrap(),
                b"first message"
            );
            assert_eq!(inflate_message(&mut inflater, &[empty]).unwrap(), b"");
            let next = c.compress(&data).unwrap();
            assert_eq!(inflate_message(&mut inflater, &[&next]).unwrap(), data);
        }
        // The compressor's own empty message is the RFC's single 0x00 and keeps a receiver
        // with context in step as well.
        let mut c = MessageCompressor::with_context_takeover(DEFAULT_LEVEL);
        let mut inflater = Inflater::new(false);
        for msg in [&b"abc"[..], b"", &data, b"", b"abc"] {
            let z = c.compress(msg).unwrap();
            assert_eq!(inflate_message(&mut inflater, &[&z]).unwrap(), msg);
        }
    }
}
