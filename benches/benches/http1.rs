//! HTTP/1.1 codec costs in the connection manager, per request and per body byte.
//!
//! Measures [`holdfast_connmgr::http1::request::parse`] on a typical browser `GET` (about 500
//! bytes, 12 headers) and a small JSON API `POST`, the chunked body decoder on a 64 KiB body sent
//! in 1 KiB chunks, and response head serialisation ([`response::plan`] + [`response::write_head`])
//! for a stream-hold response.
//!
//! Why it matters: every request that reaches Holdfast goes through the head parser before
//! anything else happens, and every held stream's response head is serialised once; together with
//! chunked decoding these bound the connection manager's request rate per core.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use holdfast_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use holdfast_connmgr::http1::chunked::ChunkedDecoder;
use holdfast_connmgr::http1::request::{self, BodyFraming};
use holdfast_connmgr::http1::response::{self, RequestInfo};
use holdfast_proto::internal::{Header, HttpVersion};

/// A Chrome-like navigation request: request line plus 12 headers, about 500 bytes.
const BROWSER_GET: &[u8] = b"GET /stream/events?channel=news&since=1732291200 HTTP/1.1\r\n\
Host: realtime.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"130\", \"Not?A_Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/event-stream,text/html;q=0.9,*/*;q=0.8\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-GB,en;q=0.9\r\n\
Cookie: session=4f6c2a9e1b7d3c5a; theme=dark\r\n\
Referer: https://realtime.example.com/\r\n\
\r\n";

/// A small JSON API call, as a script or server would send it.
const API_POST: &[u8] = b"POST /publish/ HTTP/1.1\r\n\
Host: localhost:5561\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Type: application/json\r\n\
Content-Length: 74\r\n\
\r\n\
{\"items\":[{\"channel\":\"test\",\"formats\":{\"http-stream\":{\"content\":\"hi\\n\"}}}]}";

fn bench_request_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1/request_parse");
    for (name, input) in [("browser_get", BROWSER_GET), ("api_post", API_POST)] {
        // Check the input is what we think it is before timing it.
        let (req, head_len) = request::parse(input, 8192).unwrap().unwrap();
        if name == "browser_get" {
            assert_eq!(req.headers.len(), 12);
            assert_eq!(req.body, BodyFraming::None);
        } else {
            assert_eq!(req.body, BodyFraming::Length(74));
        }
        g.throughput(Throughput::Bytes(head_len as u64));
        g.bench_function(name, |b| {
            b.iter(|| request::parse(black_box(input), 8192));
        });
    }
    g.finish();
}

/// A 64 KiB body as 64 chunks of 1 KiB (`400\r\n<data>\r\n`), then the last chunk.
fn chunked_body() -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut data_len = 0;
    for i in 0..64u8 {
        out.extend_from_slice(b"400\r\n");
        out.extend(std::iter::repeat_n(b'a' + i % 26, 1024));
        out.extend_from_slice(b"\r\n");
        data_len += 1024;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    (out, data_len)
}

fn decode_all(input: &[u8]) -> usize {
    let mut dec = ChunkedDecoder::new();
    let mut pos = 0;
    let mut data = 0;
    while !dec.is_done() {
        let d = dec.decode(&input[pos..], usize::MAX).unwrap();
        data += d.data.len();
        black_box(&input[pos..][d.data]);
        pos += d.consumed;
    }
    data
}

fn bench_chunked(c: &mut Criterion) {
    let (body, data_len) = chunked_body();
    assert_eq!(decode_all(&body), data_len);
    let mut g = c.benchmark_group("http1/chunked_decode");
    // Counted in wire bytes (framing included), the bytes the decoder walks.
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("64KiB_in_1KiB_chunks", |b| {
        b.iter(|| decode_all(black_box(&body)));
    });
    g.finish();
}

fn bench_response_head(c: &mut Criterion) {
    // What the handler sends for a typical stream hold (GRIP headers already stripped).
    let headers = vec![
        Header::new("Content-Type", "text/event-stream"),
        Header::new("Cache-Control", "no-cache"),
        Header::new("X-Request-Id", "7d3c5a4f6c2a9e1b"),
        Header::new("Access-Control-Allow-Origin", "*"),
        Header::new("Date", "Sun, 22 Nov 2026 17:03:45 GMT"),
        Header::new("Server", "origin/1.0"),
    ];
    let req = RequestInfo {
        version: HttpVersion::Http11,
        persistent: true,
        is_head: false,
    };
    let mut out = Vec::with_capacity(512);
    let plan = response::plan(&req, 200, &headers, 0, true).unwrap();
    response::write_head(&mut out, HttpVersion::Http11, 200, "OK", &headers, &plan);
    let head_len = out.len();

    let mut g = c.benchmark_group("http1/response_head");
    g.throughput(Throughput::Bytes(head_len as u64));
    g.bench_function("stream_hold_chunked", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(512),
            |out| {
                let plan = response::plan(&req, 200, black_box(&headers), 0, true).unwrap();
                response::write_head(out, HttpVersion::Http11, 200, "OK", &headers, &plan);
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    targets = bench_request_parse, bench_chunked, bench_response_head
}
criterion_main!(benches);
