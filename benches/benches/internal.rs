//! The connmgr ⇄ handler wire format ([`holdfast_proto::internal`], MessagePack via rmp-serde):
//! encode and decode of the two packets that dominate traffic.
//!
//! - A `Request` packet carrying a typical browser request head (12 headers): paid once per
//!   request by the connmgr (encode) and the handler (decode).
//! - A `Fanout` packet with 10,000 stream ids and a 100-byte payload: what the handler sends to
//!   each connmgr worker for one publish reaching 10,000 subscribers there, so this is the
//!   per-publish, per-worker serialisation cost of a large fan-out.
//!
//! Throughput is in encoded bytes (divide the fan-out time by 10,000 for the cost per id).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use holdfast_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use holdfast_proto::internal::{
    self, Fanout, Header, HttpVersion, Packet, RequestHead, StreamId, ToConnmgr, ToHandler,
    INITIAL_REQUEST_CREDITS,
};

fn request_packet() -> Packet<ToHandler> {
    let headers = [
        ("Host", "realtime.example.com"),
        ("Connection", "keep-alive"),
        ("Cache-Control", "max-age=0"),
        (
            "sec-ch-ua",
            "\"Chromium\";v=\"130\", \"Not?A_Brand\";v=\"99\"",
        ),
        ("sec-ch-ua-mobile", "?0"),
        ("Upgrade-Insecure-Requests", "1"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/130.0.0.0 Safari/537.36",
        ),
        ("Accept", "text/event-stream,text/html;q=0.9,*/*;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-GB,en;q=0.9"),
        ("Cookie", "session=4f6c2a9e1b7d3c5a; theme=dark"),
        ("Referer", "https://realtime.example.com/"),
    ];
    Packet {
        epoch: 1_732_291_200_123,
        msgs: vec![ToHandler::Request(RequestHead {
            id: StreamId::new(1234, 7),
            method: "GET".into(),
            target: "/stream/events?channel=news&since=1732291200".into(),
            version: HttpVersion::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(*n, Bytes::from_static(v.as_bytes())))
                .collect(),
            peer_addr: "203.0.113.42".into(),
            peer_port: 53_124,
            secure: true,
            local_port: 443,
            body: Bytes::new(),
            more: false,
            credits: INITIAL_REQUEST_CREDITS,
        })],
    }
}

fn fanout_packet(n: u32) -> Packet<ToConnmgr> {
    Packet {
        epoch: 1_732_291_200_456,
        msgs: vec![ToConnmgr::Fanout(Fanout {
            // Realistic ids: slot in the high half, a small generation in the low half.
            ids: (0..n)
                .map(|i| StreamId::new(i * 2 + 1, 1 + i % 5))
                .collect(),
            data: Bytes::from(vec![b'x'; 100]),
        })],
    }
}

fn bench_request(c: &mut Criterion) {
    let packet = request_packet();
    let bytes = internal::encode(&packet).unwrap();
    assert_eq!(internal::decode::<ToHandler>(&bytes).unwrap(), packet);
    let mut g = c.benchmark_group("internal/request_head");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| internal::encode(black_box(&packet)).unwrap());
    });
    g.bench_function("decode", |b| {
        b.iter(|| internal::decode::<ToHandler>(black_box(&bytes)).unwrap());
    });
    g.finish();
}

fn bench_fanout(c: &mut Criterion) {
    const IDS: u32 = 10_000;
    let packet = fanout_packet(IDS);
    let bytes = internal::encode(&packet).unwrap();
    assert_eq!(internal::decode::<ToConnmgr>(&bytes).unwrap(), packet);
    let mut g = c.benchmark_group("internal/fanout_10k_ids");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| internal::encode(black_box(&packet)).unwrap());
    });
    g.bench_function("decode", |b| {
        b.iter(|| internal::decode::<ToConnmgr>(black_box(&bytes)).unwrap());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    targets = bench_request, bench_fanout
}
criterion_main!(benches);
