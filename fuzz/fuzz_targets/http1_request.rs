//! HTTP/1 request head parser (`holdfast_connmgr::http1::request::parse`).
//!
//! Beyond "no panic": a complete head never claims more bytes than it was given, re-parsing
//! exactly the head gives the same request (the head is self-delimiting), a strict prefix of a
//! complete head is "not yet" (the verdict does not depend on how TCP split the bytes), the
//! limits hold, and the framing decision is consistent with the headers.
#![no_main]

use holdfast_fuzz::http1::request::{parse, BodyFraming, MAX_HEADERS, MAX_TARGET_LEN};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let result = parse(data, LIMIT);
    let Ok(Some((req, n))) = result else {
        if let Ok(None) = result {
            assert!(
                data.len() < LIMIT,
                "incomplete head at the limit must be an error"
            );
        }
        return;
    };
    assert!(
        n > 0 && n <= data.len() && n <= LIMIT,
        "head length {n} of {}",
        data.len()
    );
    assert!(req.target.len() <= MAX_TARGET_LEN);
    assert!(req.headers.len() <= MAX_HEADERS);

    // The head alone parses to the same request.
    let again = parse(&data[..n], LIMIT).expect("head alone must parse");
    assert_eq!(again, Some((req.clone(), n)));

    // Any strict prefix is incomplete, never an error or another request.
    for k in [0, n / 2, n - 1] {
        assert_eq!(parse(&data[..k], LIMIT), Ok(None), "prefix {k} of head {n}");
    }

    // A limit below the head length refuses it.
    if n > 1 {
        assert!(parse(data, n - 1).is_err());
    }

    let has = |name: &str| req.headers.iter().any(|h| h.is(name));
    match req.body {
        BodyFraming::Chunked => assert!(has("Transfer-Encoding") && !has("Content-Length")),
        BodyFraming::Length(len) => assert!(len > 0 && has("Content-Length")),
        BodyFraming::None => assert!(!has("Transfer-Encoding")),
    }
});
