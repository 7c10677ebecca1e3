//! The handler's subscription table fan-out: one publish to 10,000 stream-hold subscribers of one
//! channel, spread over 2 connmgr workers.
//!
//! Drives the handler's public, socket-free [`Hub`] directly (as its unit tests do): 10,000
//! stream holds with ample credits subscribe to `news`, then each iteration publishes one
//! `http-stream` item of 100 bytes with [`Hub::publish`]. The effects are one
//! `ToConnmgr::Fanout` per worker holding 5,000 ids each. Throughput is in deliveries
//! (subscribers reached) per second; the 2 effect messages per publish are checked once.
//!
//! Why it matters: this is the handler-side cost of a publish to a large audience, paid under the
//! hub's mutex, so it bounds how many large publishes per second the handler can sustain and how
//! long other hub operations (new holds, credits) wait behind one. The serialisation of the two
//! resulting packets is measured separately in the `internal` bench.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use holdfast_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use holdfast_handler::grip::hub::{Effects, Filters, Hold, HoldMode, Hub, HubConfig, Reply, Sub};
use holdfast_handler::grip::item::{Item, StreamFormat};
use holdfast_handler::grip::Origin;
use holdfast_handler::ipc::WorkerId;
use holdfast_handler::session::SessionKey;
use holdfast_proto::internal::{Header, HttpVersion, RequestHead, StreamId, ToConnmgr};

const SUBSCRIBERS: u32 = 10_000;
const WORKERS: u32 = 2;
/// Credits large enough that no receiver ever has to queue during the measurement.
const CREDITS: u64 = 1 << 50;

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        head: RequestHead {
            id: StreamId(0),
            method: "GET".into(),
            target: "/stream/events?channel=news".into(),
            version: HttpVersion::Http11,
            headers: vec![Header::new("Host", "realtime.example.com")],
            peer_addr: "203.0.113.42".into(),
            peer_port: 53_124,
            secure: false,
            local_port: 80,
            body: Bytes::new(),
            more: false,
            credits: 0,
        },
        body: Bytes::new(),
        gone: None,
    })
}

/// A hub with `SUBSCRIBERS` stream holds on channel `news`, alternating between 2 workers.
fn populated_hub() -> Hub {
    let mut hub = Hub::new(HubConfig {
        update_on_first_subscription: false,
        ..HubConfig::default()
    });
    let origin = origin();
    let workers: Vec<WorkerId> = (0..WORKERS)
        .map(|w| WorkerId::new(format!("connmgr-{w}").into_bytes()))
        .collect();
    let now = Instant::now();
    let mut fx = Effects::default();
    for i in 0..SUBSCRIBERS {
        let hold = Hold {
            key: SessionKey {
                worker: workers[(i % WORKERS) as usize].clone(),
                id: StreamId::new(i / WORKERS, 1),
            },
            serial: u64::from(i),
            credits: CREDITS,
            subs: vec![Sub {
                name: Arc::from("news"),
                prefix_len: 0,
                filters: Filters::default(),
                prev_id: None,
            }],
            meta: None,
            origin: Arc::clone(&origin),
            route: None,
            mode: HoldMode::Stream {
                head: Some(Reply {
                    code: 200,
                    reason: "OK".into(),
                    headers: vec![Header::new("Content-Type", "text/event-stream")],
                    body: Bytes::new(),
                }),
                keep_alive: None,
                next_link: None,
                link_timeout: Duration::ZERO,
            },
        };
        hub.hold(hold, now, &mut fx);
    }
    assert_eq!(hub.subscribers("news"), SUBSCRIBERS as usize);
    hub
}

fn item(payload: &Bytes) -> Item {
    Item {
        channel: "news".into(),
        id: None,
        prev_id: None,
        no_seq: false,
        meta: Vec::new(),
        response: None,
        stream: Some(StreamFormat::Send(payload.clone())),
        ws: None,
    }
}

fn bench_fanout(c: &mut Criterion) {
    let mut hub = populated_hub();
    let payload = Bytes::from(vec![b'x'; 100]);
    let now = Instant::now();

    // Check the shape of the effects once: one Fanout per worker, 5,000 ids each.
    let mut fx = Effects::default();
    assert_eq!(
        hub.publish(item(&payload), now, &mut fx),
        SUBSCRIBERS as usize
    );
    assert_eq!(fx.msgs.len(), WORKERS as usize);
    for (_, msg) in &fx.msgs {
        let ToConnmgr::Fanout(f) = msg else {
            panic!("expected a Fanout, got {msg:?}");
        };
        assert_eq!(f.ids.len(), (SUBSCRIBERS / WORKERS) as usize);
    }

    let mut g = c.benchmark_group("fanout/publish_10k_stream_subscribers_2_workers");
    g.throughput(Throughput::Elements(u64::from(SUBSCRIBERS)));
    g.bench_function("hub_publish", |b| {
        // The item (one String allocation) is made and the effects (2 vectors of 5,000 ids) are
        // dropped outside the timed section.
        b.iter_batched(
            || (item(&payload), Effects::default()),
            |(item, mut fx)| {
                black_box(hub.publish(item, now, &mut fx));
                fx
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
    targets = bench_fanout
}
criterion_main!(benches);
