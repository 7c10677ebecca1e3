//! Publish-side parsing in the handler's input path: control-API publish bodies, ZeroMQ publish
//! frames, GRIP instructions from origin responses, and WebSocket-over-HTTP event bodies.
//!
//! - [`parse_publish_body`]: a `POST /publish` body with 1 item and with 100 items.
//! - [`parse_frame`]: one tnetstring item as it arrives on the ZeroMQ PULL/SUB socket.
//! - [`Instruct::parse`]: a typical stream-hold origin response (`Grip-Hold: stream`,
//!   `Grip-Channel` with two channels, `Grip-Keep-Alive`).
//! - [`wsevents::encode`] / [`wsevents::decode`]: a 10-event body.
//!
//! Why it matters: every publish is parsed once before fan-out, every GRIP response is parsed
//! before the request is held, and every WebSocket-over-HTTP exchange encodes and decodes an
//! event body; these bound publish rate and hold rate on the handler.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use holdfast_benches::{json_message, MEASUREMENT, SAMPLES, WARM_UP};
use holdfast_proto::grip::{HoldMode, Instruct, OriginResponse};
use holdfast_proto::internal::Header;
use holdfast_proto::publish::{parse_frame, parse_publish_body};
use holdfast_proto::tnetstring::Value as T;
use holdfast_proto::wsevents::{self, Event};

/// One publish item with http-stream and ws-message formats, as JSON.
fn json_item(i: usize) -> String {
    format!(
        r#"{{"channel":"room-{ch}","id":"msg-{i}","prev-id":"msg-{p}","formats":{{"http-stream":{{"content":"event: message\ndata: {{\"n\":{i},\"text\":\"hello world\"}}\n\n"}},"ws-message":{{"content":"{{\"n\":{i},\"text\":\"hello world\"}}"}}}}}}"#,
        ch = i % 10,
        p = i.saturating_sub(1),
    )
}

fn publish_body(items: usize) -> Vec<u8> {
    let items: Vec<String> = (0..items).map(json_item).collect();
    format!(r#"{{"items":[{}]}}"#, items.join(",")).into_bytes()
}

fn bench_publish_body(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish/parse_publish_body");
    for n in [1usize, 100] {
        let body = publish_body(n);
        assert_eq!(parse_publish_body(&body).unwrap().len(), n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{n}_items"), |b| {
            b.iter(|| parse_publish_body(black_box(&body)).unwrap());
        });
    }
    g.finish();
}

fn bench_parse_frame(c: &mut Criterion) {
    let content = json_message(256);
    let item = T::map([
        ("channel", T::bytes("room-3")),
        ("id", T::bytes("msg-17")),
        ("prev-id", T::bytes("msg-16")),
        (
            "formats",
            T::map([
                (
                    "http-stream",
                    T::map([("content", T::bytes(content.clone()))]),
                ),
                ("ws-message", T::map([("content", T::bytes(content))])),
            ]),
        ),
    ]);
    let mut frame = b"T".to_vec();
    frame.extend_from_slice(&item.to_vec());
    assert_eq!(parse_frame(&frame, None).unwrap().channel, "room-3");

    let mut g = c.benchmark_group("publish/parse_frame");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("tnetstring_item", |b| {
        b.iter(|| parse_frame(black_box(&frame), None).unwrap());
    });
    g.finish();
}

fn bench_instruct(c: &mut Criterion) {
    let headers: Vec<Header> = [
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("Grip-Hold", "stream"),
        ("Grip-Channel", "news; prev-id=msg-41, user-42"),
        ("Grip-Keep-Alive", r":\n\n; format=cstring; timeout=20"),
        ("X-Request-Id", "7d3c5a4f6c2a9e1b"),
    ]
    .iter()
    .map(|(n, v)| Header::new(*n, Bytes::from_static(v.as_bytes())))
    .collect();
    let body = b"event: open\ndata: {}\n\n";
    let response = OriginResponse {
        code: 200,
        reason: "OK",
        headers: &headers,
        body,
    };
    let uri = "http://realtime.example.com/stream/events?channel=news";
    let parsed = Instruct::parse(&response, uri).unwrap();
    assert!(matches!(parsed.hold, Some(HoldMode::Stream)));
    assert_eq!(parsed.channels.len(), 2);
    assert!(parsed.keep_alive.is_some());

    let mut g = c.benchmark_group("publish/grip_instruct");
    g.throughput(Throughput::Elements(1));
    g.bench_function("stream_hold", |b| {
        b.iter(|| Instruct::parse(black_box(&response), uri).unwrap());
    });
    g.finish();
}

fn events() -> Vec<Event> {
    let mut events = vec![Event::Open];
    for i in 0..7 {
        events.push(Event::Text(Bytes::from(json_message(128 + i * 32))));
    }
    events.push(Event::Ping(Bytes::new()));
    events.push(Event::Close(Some((1000, "bye".into()))));
    events
}

fn bench_wsevents(c: &mut Criterion) {
    let events = events();
    assert_eq!(events.len(), 10);
    let mut body = Vec::new();
    wsevents::encode(&events, &mut body);
    assert_eq!(wsevents::decode(&body).unwrap(), events);

    let mut g = c.benchmark_group("publish/wsevents_10_events");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(body.len());
        b.iter(|| {
            out.clear();
            wsevents::encode(black_box(&events), &mut out);
        });
    });
    g.bench_function("decode", |b| {
        b.iter(|| wsevents::decode(black_box(&body)).unwrap());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    targets = bench_publish_body, bench_parse_frame, bench_instruct, bench_wsevents
}
criterion_main!(benches);
