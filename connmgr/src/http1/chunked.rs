//! Incremental decoder for `Transfer-Encoding: chunked` request bodies.
//!
//! The decoder is a byte-level state machine, so it never needs a whole chunk-size line or
//! trailer in the buffer at once and never copies: each [`ChunkedDecoder::decode`] call consumes
//! framing bytes and hands back the position of the next run of body bytes *inside the caller's
//! input*. The caller forwards that slice and advances by `consumed`. Extensions and trailers are
//! validated for size and discarded (the handler receives plain body bytes only).
//!
//! Framing is strict (CRLF everywhere, hex sizes without prefixes or signs): lenient chunked
//! parsing is a request-smuggling vector when a proxy and an origin disagree about where a body
//! ends.

use std::ops::Range;

/// Longest chunk extension accepted (`;name=value...` after the size), in bytes.
pub const MAX_EXTENSION_LEN: usize = 4096;

/// Most trailer bytes accepted after the last chunk.
pub const MAX_TRAILER_LEN: usize = 8192;

/// Most hex digits in a chunk size (sizes are u64).
const MAX_SIZE_DIGITS: u8 = 16;

/// Why a chunked body is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk-size line is not hex digits optionally followed by whitespace/extensions.
    #[error("invalid chunk size")]
    InvalidSize,
    /// The chunk size does not fit in 64 bits.
    #[error("chunk size too large")]
    SizeTooLarge,
    /// A chunk extension longer than [`MAX_EXTENSION_LEN`], or with control characters.
    #[error("invalid chunk extension")]
    InvalidExtension,
    /// A CR or LF was expected and something else came.
    #[error("missing CRLF in chunked body")]
    MissingCrlf,
    /// The trailer section is longer than [`MAX_TRAILER_LEN`].
    #[error("chunked trailers too large")]
    TrailersTooLarge,
}

/// What one [`ChunkedDecoder::decode`] call found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed (framing and data); the caller advances by this much.
    pub consumed: usize,
    /// Body bytes found, as a range of the input (empty if none).
    pub data: Range<usize>,
    /// The terminating chunk and trailers have been consumed: the body is complete.
    pub done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size { value: u64, digits: u8 },
    /// Whitespace after the size digits.
    SizeSpace { value: u64 },
    /// Inside a chunk extension, until CR.
    Extension { value: u64 },
    /// CR of the size line seen, LF expected.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// CR expected after chunk data.
    DataCr,
    /// LF expected after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line, until CR.
    TrailerLine,
    /// CR of a trailer line seen, LF expected.
    TrailerLf,
    /// CR of the final empty line seen, LF expected.
    EndLf,
    /// Body complete.
    Done,
}

/// Decoder state for one chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    extension_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            extension_len: 0,
            trailer_len: 0,
        }
    }

    /// True once the whole body (terminating chunk and trailers) has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from `input` and returns the next run of body bytes, at most `max_data`
    /// of them (the caller's credit). Stops right after a data run, at the end of the input, or
    /// when the body is complete (bytes after the body are left unconsumed: they belong to the
    /// next pipelined request).
    pub fn decode(&mut self, input: &[u8], max_data: usize) -> Result<Decoded, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Size { value, digits } => match hex_value(b) {
                    Some(d) => {
                        if digits >= MAX_SIZE_DIGITS {
                            return Err(ChunkError::SizeTooLarge);
                        }
                        State::Size {
                            value: (value << 4) | u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(ChunkError::InvalidSize),
                    None => match b {
                        b' ' | b'\t' => State::SizeSpace { value },
                        b';' => self.start_extension(value),
                        b'\r' => State::SizeLf { value },
                        _ => return Err(ChunkError::InvalidSize),
                    },
                },
                State::SizeSpace { value } => match b {
                    b' ' | b'\t' => State::SizeSpace { value },
                    b';' => self.start_extension(value),
                    b'\r' => State::SizeLf { value },
                    _ => return Err(ChunkError::InvalidSize),
                },
                State::Extension { value } => match b {
                    b'\r' => State::SizeLf { value },
                    b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                        self.extension_len += 1;
                        if self.extension_len > MAX_EXTENSION_LEN {
                            return Err(ChunkError::InvalidExtension);
                        }
                        State::Extension { value }
                    }
                    _ => return Err(ChunkError::InvalidExtension),
                },
                State::SizeLf { value } => match b {
                    b'\n' if value == 0 => State::TrailerStart,
                    b'\n' => State::Data { remaining: value },
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::Data { remaining } => {
                    let available = (input.len() - i) as u64;
                    let n = remaining.min(available).min(max_data as u64);
                    if n == 0 {
                        // Out of credit: stop before the data, consuming only framing.
                        return Ok(Decoded {
                            consumed: i,
                            data: i..i,
                            done: false,
                        });
                    }
                    // n <= available, which is a usize.
                    let n = n as usize;
                    self.state = if remaining == n as u64 {
                        State::DataCr
                    } else {
                        State::Data {
                            remaining: remaining - n as u64,
                        }
                    };
                    return Ok(Decoded {
                        consumed: i + n,
                        data: i..i + n,
                        done: false,
                    });
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::DataLf => match b {
                    b'\n' => State::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    _ => self.trailer_byte()?,
                },
                State::TrailerLine => match b {
                    b'\r' => State::TrailerLf,
                    _ => self.trailer_byte()?,
                },
                State::TrailerLf => match b {
                    b'\n' => State::TrailerStart,
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::EndLf => match b {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(Decoded {
                            consumed: i + 1,
                            data: i + 1..i + 1,
                            done: true,
                        });
                    }
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::Done => {
                    return Ok(Decoded {
                        consumed: i,
                        data: i..i,
                        done: true,
                    });
                }
            };
            i += 1;
        }
        Ok(Decoded {
            consumed: i,
            data: i..i,
            done: self.state == State::Done,
        })
    }

    fn start_extension(&mut self, value: u64) -> State {
        self.extension_len = 0;
        State::Extension { value }
    }

    fn trailer_byte(&mut self) -> Result<State, ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_LEN {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(State::TrailerLine)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes with the given credit per call; returns the
    /// body, the bytes left after the body and whether it completed.
    fn run(
        input: &[u8],
        step: usize,
        credit: usize,
    ) -> Result<(Vec<u8>, Vec<u8>, bool), ChunkError> {
        let mut dec = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut buffered: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            let d = dec.decode(&buffered, credit)?;
            body.extend_from_slice(&buffered[d.data.clone()]);
            buffered.drain(..d.consumed);
            if d.done {
                return Ok((body, buffered, true));
            }
            if d.consumed == 0 {
                if fed == input.len() {
                    return Ok((body, buffered, false));
                }
                let end = (fed + step).min(input.len());
                buffered.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }

    #[test]
    fn decodes_in_any_split() {
        let input =
            b"5\r\nhello\r\n1;ext=1\r\n \r\nA  \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for step in 1..input.len() {
            for credit in [1, 3, 100] {
                let (body, rest, done) = run(input, step, credit).unwrap();
                assert_eq!(body, b"hello 0123456789", "step {step} credit {credit}");
                assert!(done);
                // Bytes after the body stay for the next request.
                assert!(b"NEXT".starts_with(&rest) || rest.starts_with(b"NEXT"));
            }
        }
    }

    #[test]
    fn zero_credit_consumes_only_framing() {
        let mut dec = ChunkedDecoder::new();
        let d = dec.decode(b"3\r\nabc\r\n0\r\n\r\n", 0).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 3,
                data: 3..3,
                done: false
            }
        );
        let d = dec.decode(b"abc\r\n0\r\n\r\n", 2).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 2,
                data: 0..2,
                done: false
            }
        );
        let d = dec.decode(b"c\r\n0\r\n\r\n", 0).unwrap();
        assert_eq!(d.consumed, 0);
        let d = dec.decode(b"c\r\n0\r\n\r\n", 5).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 1,
                data: 0..1,
                done: false
            }
        );
        // The last chunk completes even with no credit.
        let d = dec.decode(b"\r\n0\r\n\r\n", 0).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 7,
                data: 7..7,
                done: true
            }
        );
        assert!(dec.is_done());
        let d = dec.decode(b"GET", 10).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 0,
                data: 0..0,
                done: true
            }
        );
    }

    #[test]
    fn empty_body() {
        let (body, rest, done) = run(b"0\r\n\r\n", 100, 100).unwrap();
        assert!(body.is_empty() && rest.is_empty() && done);
    }

    #[test]
    fn incomplete_is_not_done() {
        let (body, _, done) = run(b"5\r\nhel", 100, 100).unwrap();
        assert_eq!(body, b"hel");
        assert!(!done);
    }

    #[test]
    fn errors() {
        let cases: [(&[u8], ChunkError); 9] = [
            (b"x\r\n", ChunkError::InvalidSize),
            (b"\r\n", ChunkError::InvalidSize),
            (b"-1\r\n", ChunkError::InvalidSize),
            (b"0x5\r\n", ChunkError::InvalidSize),
            (b"5\nhello", ChunkError::InvalidSize),
            (b"11111111111111111\r\n", ChunkError::SizeTooLarge),
            (b"5\r\nhelloX", ChunkError::MissingCrlf),
            (b"5\r\nhello\rX", ChunkError::MissingCrlf),
            (b"1;a\x01\r\n", ChunkError::InvalidExtension),
        ];
        for (input, expected) in cases {
            assert_eq!(run(input, 100, 100).unwrap_err(), expected, "{input:?}");
        }
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION_LEN + 1));
        assert_eq!(
            run(&long_ext, 100, 100).unwrap_err(),
            ChunkError::InvalidExtension
        );
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b'a', MAX_TRAILER_LEN + 1));
        assert_eq!(
            run(&trailers, 100, 100).unwrap_err(),
            ChunkError::TrailersTooLarge
        );
    }

    #[test]
    fn max_size_chunk_header_is_accepted() {
        let mut dec = ChunkedDecoder::new();
        let d = dec.decode(b"ffffffffffffffff\r\nab", 10).unwrap();
        assert_eq!(d.data, 18..20);
    }
}
