//! Base64 as GRIP needs it: Pushpin's lenient decoder for `*-bin` fields, `format=base64`
//! keep-alives and `base64:` keys, plus the strict URL-safe alphabet for JWTs.
//!
//! Pushpin decodes with Qt's `QByteArray::fromBase64`, which never fails: every byte outside the
//! alphabet (padding included, wherever it appears) is skipped, and leftover bits at the end are
//! dropped. `"aGk=!!x"` therefore decodes to `hi1` **[observed 1.36]**. [`decode_lenient`]
//! reproduces that so publishes and instructs that work with Pushpin keep working.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A strict decoder met something that is not URL-safe base64 without padding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A byte outside the alphabet (padding included).
    #[error("invalid base64 character at offset {0}")]
    InvalidByte(usize),
    /// The length leaves a single dangling character (`len % 4 == 1`).
    #[error("invalid base64 length")]
    InvalidLength,
}

/// Standard alphabet with `=` padding (RFC 4648 §4).
pub fn encode(data: &[u8]) -> String {
    encode_with(data, STANDARD, true)
}

/// URL-safe alphabet without padding (RFC 4648 §5), as JWTs use.
pub fn encode_url(data: &[u8]) -> String {
    encode_with(data, URL_SAFE, false)
}

/// Pushpin-compatible decoding of the standard alphabet: never fails, skips every byte that is
/// not in the alphabet and drops incomplete trailing bits.
pub fn decode_lenient(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in text {
        let Some(d) = standard_digit(c) else {
            continue;
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation keeps exactly the 8 bits just completed.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Strict decoding of URL-safe base64 without padding (a JWT segment).
pub fn decode_url(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    if text.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength);
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, &c) in text.iter().enumerate() {
        let d = url_digit(c).ok_or(Base64Error::InvalidByte(i))?;
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn encode_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let word = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(char::from(alphabet[((word >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn standard_digit(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn url_digit(c: u8) -> Option<u8> {
    match c {
        b'-' => Some(62),
        b'_' => Some(63),
        b'+' | b'/' => None,
        _ => standard_digit(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode_lenient(encoded.as_bytes()), plain.as_bytes());
            let url = encoded.trim_end_matches('=');
            assert_eq!(encode_url(plain.as_bytes()), url);
            assert_eq!(decode_url(url.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn url_alphabet() {
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(decode_url(b"-_8").unwrap(), [0xfb, 0xff]);
    }

    /// Qt skips junk and padding anywhere and keeps decoding (observed on Pushpin 1.36).
    #[test]
    fn lenient_matches_qt() {
        assert_eq!(decode_lenient(b"aGk=!!x"), b"hi1");
        assert_eq!(decode_lenient(b"!!!"), b"");
        assert_eq!(decode_lenient(b"aG\nk="), b"hi");
        assert_eq!(decode_lenient(b"YmluCg=="), b"bin\n");
        assert_eq!(decode_lenient(b"Zg"), b"f");
    }

    #[test]
    fn strict_url_errors() {
        assert_eq!(decode_url(b"Zg=="), Err(Base64Error::InvalidByte(2)));
        assert_eq!(decode_url(b"Zm9vY"), Err(Base64Error::InvalidLength));
        assert_eq!(decode_url(b"a+bc"), Err(Base64Error::InvalidByte(1)));
    }
}
