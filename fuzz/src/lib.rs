//! Helpers shared by the fuzz targets: turning the fuzzer's flat byte string into the
//! structured inputs some parsers take (a list of headers and a body, a split into pieces).
//!
//! The encodings are deliberately simple text so the seed files stay readable and the fuzzer's
//! dictionary-free mutations still reach deep into the parsers.

use bytes::Bytes;

// The connection manager's sans-IO codecs, compiled from connmgr's own source files: they
// only refer to each other (`crate::http1`, `crate::ws`), `holdfast_proto` and small crates, so
// the fuzz build does not need the connmgr crate and its socket, TLS and ZeroMQ dependencies.
// The targets import them as `holdfast_fuzz::{http1, ws}`.
#[path = "../../connmgr/src/http1/mod.rs"]
pub mod http1;
#[path = "../../connmgr/src/ws/mod.rs"]
pub mod ws;
use holdfast_proto::internal::Header;

/// Splits `data` into a header list and a body, HTTP-style: lines (`\n`, an optional `\r`
/// before it dropped) of `Name: value` up to the first empty line, then the body. A line
/// without `:` is a header with an empty value. Names are converted lossily to UTF-8, values
/// are kept as bytes with leading spaces removed.
pub fn split_head(data: &[u8]) -> (Vec<Header>, &[u8]) {
    let mut headers = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &line[line.len()..]),
        };
        let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
        headers.push(Header(
            String::from_utf8_lossy(name).into_owned(),
            Bytes::copy_from_slice(&value[start..]),
        ));
    }
    (headers, rest)
}

/// Takes the first byte of `data` as a small control value (0 when empty) and returns it with
/// the remaining bytes.
pub fn take_byte(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}

/// Cuts `data` into consecutive pieces whose lengths cycle through `sizes` (each at least 1),
/// to feed incremental decoders the same input in a different split.
pub fn pieces<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}
