//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames (and across reads, and across decompressor
//! output) anywhere, including inside a character. [`Utf8Validator`] keeps at most the 3 bytes
//! of an unfinished character between calls and otherwise relies on `std::str::from_utf8`,
//! whose `error_len()` tells an invalid sequence (`Some`) from one that is merely cut short
//! (`None`). It fails as soon as the bytes seen so far cannot start valid UTF-8, which is what
//! RFC 6455 §8.1 asks of an endpoint ("fail fast", checked by Autobahn case 6.x).

use std::str;

/// The bytes are not UTF-8 (close code 1007).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Validates UTF-8 fed in arbitrary pieces.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    /// The start of a character cut short by the end of the last piece (a valid prefix).
    partial: [u8; 4],
    partial_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the text.
    ///
    /// Fails as soon as the bytes seen so far cannot be the beginning of valid UTF-8; a piece
    /// that ends inside a character is fine, the rest of it is expected next.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            // `partial` is a valid prefix, so its first byte is a lead byte.
            let need = sequence_len(self.partial[0]) - self.partial_len;
            let take = need.min(input.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&input[..take]);
            self.partial_len += take;
            input = &input[take..];
            match str::from_utf8(&self.partial[..self.partial_len]) {
                Ok(_) => self.partial_len = 0,
                // Still unfinished: the whole piece was used up.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // An unfinished character is at most 3 bytes.
                let rest = &input[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// True if the text fed so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Ends the text: fails if it stopped inside a character. The validator is then ready for
    /// a new text.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_complete();
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Forgets any unfinished character, ready for a new text.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Length of the sequence a valid lead byte starts.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    const SAMPLES: &[&str] = &[
        "",
        "Hello",
        "κόσμε",
        "Hello-µ@ßöäüàá-UTF-8!!",
        "\u{10ffff}\u{1f600}a\u{800}\u{7ff}\u{80}\u{7f}",
        "日本語のテキスト",
    ];

    #[test]
    fn valid_text_accepted_at_every_split() {
        for s in SAMPLES {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                assert_eq!(validate_in_pieces(b, &[i]), Ok(()), "{s:?} at {i}");
                for j in i..=b.len() {
                    assert_eq!(validate_in_pieces(b, &[i, j]), Ok(()), "{s:?} at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        for s in SAMPLES {
            let mut v = Utf8Validator::new();
            for &b in s.as_bytes() {
                v.feed(&[b]).unwrap();
            }
            assert!(v.is_complete());
            v.finish().unwrap();
        }
    }

    #[test]
    fn invalid_sequences_rejected_at_every_split() {
        let invalid: &[&[u8]] = &[
            b"\xff",
            b"\xc0\x80",             // overlong NUL
            b"\xe0\x80\xaf",         // overlong
            b"\xed\xa0\x80",         // UTF-16 surrogate
            b"\xf4\x90\x80\x80",     // above U+10FFFF
            b"\xf8\x88\x80\x80\x80", // 5-byte form
            b"a\x80b",               // stray continuation
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        ];
        for b in invalid {
            for i in 0..=b.len() {
                assert_eq!(
                    validate_in_pieces(b, &[i]),
                    Err(InvalidUtf8),
                    "{b:?} at {i}"
                );
            }
        }
    }

    #[test]
    fn fails_fast_before_the_text_ends() {
        // Autobahn 6.4.x: the bad byte must be reported when it arrives, not at the end.
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8));

        // A lead byte whose first continuation byte is already impossible.
        let mut v = Utf8Validator::new();
        v.feed(b"\xe0").unwrap();
        assert_eq!(v.feed(b"\x80"), Err(InvalidUtf8));

        // Still a valid prefix: no error yet.
        let mut v = Utf8Validator::new();
        v.feed(b"\xf0\x90").unwrap();
        v.feed(b"\x80").unwrap();
        assert!(!v.is_complete());
        v.feed(b"\x80").unwrap();
        assert!(v.is_complete());
    }

    #[test]
    fn truncated_text_fails_on_finish() {
        let mut v = Utf8Validator::new();
        v.feed(b"ok\xe2\x82").unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish() resets for the next text.
        v.feed(b"next").unwrap();
        v.finish().unwrap();
    }

    #[test]
    fn reset_forgets_partial_character() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xe2\x82").unwrap();
        v.reset();
        v.feed(b"plain").unwrap();
        v.finish().unwrap();
    }
}
