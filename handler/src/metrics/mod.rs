//! Prometheus metrics (reference §6.8) on `[handler] prometheus_port`.
//!
//! [`Metrics`] is an [`Observer`]: every counter is an atomic bumped from the hub's and the
//! session table's events, so the publish hot path never takes a lock for metrics. [`render`]
//! writes the text exposition format; [`server`] answers any HTTP request with it.
//!
//! Pushpin's names, kept for dashboards that already use them: `request_received`,
//! `connection_connected`, `connection_minute`, `message_received`, `message_sent`. Holdfast
//! adds `connections{transport}`, `subscriptions`, `publish_received_total{input}`,
//! `delivery_total{transport}`, `drop_total{reason}` and the `publish_latency_seconds`
//! histogram: the time from a publish call on the pipeline's entry point
//! ([`crate::grip::GripRuntime::publish`]) to the item's delivery messages being handed to the
//! outbox towards the connmgr (per item that reached at least one receiver).

pub mod server;

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::observe::{ConnKind, DropReason, Event, Observer, PublishInput, Transport};

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

const TRANSPORTS: [Transport; 3] = [
    Transport::HttpResponse,
    Transport::HttpStream,
    Transport::WsMessage,
];

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::HttpResponse => 0,
        Transport::HttpStream => 1,
        Transport::WsMessage => 2,
    }
}

/// Every metric, as atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    request_received: AtomicU64,
    connection_minute: AtomicU64,
    message_received: AtomicU64,
    message_sent: AtomicU64,
    /// Live connections: [http, ws].
    connections: [AtomicI64; 2],
    subscriptions: AtomicI64,
    published: [AtomicU64; 4],
    delivered: [AtomicU64; 3],
    dropped: [AtomicU64; 4],
    /// Non-cumulative bucket counts; the last one is `+Inf`.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    /// Adds connection-minutes (computed by the stats reporter).
    pub fn add_connection_minutes(&self, minutes: u64) {
        self.connection_minute.fetch_add(minutes, Ordering::Relaxed);
    }

    /// Sets the subscriptions gauge (kept by the stats reporter, which has the table).
    pub fn set_subscriptions(&self, n: usize) {
        self.subscriptions
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    fn observe_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[idx].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }
}

fn kind_index(kind: ConnKind) -> usize {
    match kind {
        ConnKind::Http => 0,
        ConnKind::Ws => 1,
    }
}

fn input_index(input: PublishInput) -> usize {
    match input {
        PublishInput::Http => 0,
        PublishInput::ZmqPull => 1,
        PublishInput::ZmqSub => 2,
        PublishInput::Command => 3,
    }
}

fn reason_index(reason: DropReason) -> usize {
    match reason {
        DropReason::QueueFull => 0,
        DropReason::Duplicate => 1,
        DropReason::Malformed => 2,
        DropReason::Hwm => 3,
    }
}

impl Observer for Metrics {
    fn observe(&self, event: &Event) {
        match event {
            Event::ConnOpened { kind, .. } => {
                self.request_received.fetch_add(1, Ordering::Relaxed);
                self.connections[kind_index(*kind)].fetch_add(1, Ordering::Relaxed);
            }
            Event::ConnClosed { .. } => {
                // Close events do not say the kind; WebSockets report theirs with their own
                // ids, and only HTTP streams exist so far.
                self.connections[0].fetch_sub(1, Ordering::Relaxed);
            }
            Event::Published(input) => {
                self.message_received.fetch_add(1, Ordering::Relaxed);
                self.published[input_index(*input)].fetch_add(1, Ordering::Relaxed);
            }
            Event::Delivered {
                transport, count, ..
            } => {
                let n = *count as u64;
                self.message_sent.fetch_add(n, Ordering::Relaxed);
                self.delivered[transport_index(*transport)].fetch_add(n, Ordering::Relaxed);
            }
            Event::Dropped { reason, count } => {
                self.dropped[reason_index(*reason)].fetch_add(*count, Ordering::Relaxed);
            }
            Event::PublishLatency(d) => self.observe_latency(*d),
            Event::Subscribed { .. }
            | Event::Unsubscribed { .. }
            | Event::Listen(_)
            | Event::Unlisten(_)
            | Event::RouteSelected { .. } => {}
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The text exposition (format 0.0.4) of every metric, names prefixed with `prefix`.
pub fn render(m: &Metrics, prefix: &str) -> String {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::with_capacity(4096);
    let simple: [(&str, &str, &str, i64); 5] = [
        (
            "request_received",
            "counter",
            "Number of requests received",
            load(&m.request_received) as i64,
        ),
        (
            "connection_connected",
            "gauge",
            "Number of connections currently connected",
            m.connections
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<i64>()
                .max(0),
        ),
        (
            "connection_minute",
            "counter",
            "Number of minutes clients have been connected",
            load(&m.connection_minute) as i64,
        ),
        (
            "message_received",
            "counter",
            "Number of messages received by the publish API",
            load(&m.message_received) as i64,
        ),
        (
            "message_sent",
            "counter",
            "Number of messages sent to clients",
            load(&m.message_sent) as i64,
        ),
    ];
    for (name, kind, help, value) in simple {
        let name = format!("{prefix}{name}");
        header(&mut out, &name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }

    let name = format!("{prefix}connections");
    header(&mut out, &name, "gauge", "Connections by transport");
    for (label, c) in ["http", "ws"].iter().zip(&m.connections) {
        let v = c.load(Ordering::Relaxed).max(0);
        let _ = writeln!(out, "{name}{{transport=\"{label}\"}} {v}");
    }

    let name = format!("{prefix}subscriptions");
    header(
        &mut out,
        &name,
        "gauge",
        "Subscriptions (mode and channel), lingering ones included",
    );
    let _ = writeln!(out, "{name} {}", m.subscriptions.load(Ordering::Relaxed));

    let name = format!("{prefix}publish_received_total");
    header(
        &mut out,
        &name,
        "counter",
        "Published items received by input",
    );
    for input in PublishInput::ALL {
        let v = load(&m.published[input_index(input)]);
        let _ = writeln!(out, "{name}{{input=\"{}\"}} {v}", input.as_str());
    }

    let name = format!("{prefix}delivery_total");
    header(
        &mut out,
        &name,
        "counter",
        "Deliveries of published items to receivers by transport",
    );
    for t in TRANSPORTS {
        let v = load(&m.delivered[transport_index(t)]);
        let _ = writeln!(out, "{name}{{transport=\"{}\"}} {v}", t.as_str());
    }

    let name = format!("{prefix}drop_total");
    header(
        &mut out,
        &name,
        "counter",
        "Published items or deliveries dropped by reason",
    );
    for r in DropReason::ALL {
        let v = load(&m.dropped[reason_index(r)]);
        let _ = writeln!(out, "{name}{{reason=\"{}\"}} {v}", r.as_str());
    }

    let name = format!("{prefix}publish_latency_seconds");
    header(
        &mut out,
        &name,
        "histogram",
        "Time from a publish entering the pipeline to its deliveries being queued for the connection manager",
    );
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += load(&m.latency_buckets[i]);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += load(&m.latency_buckets[LATENCY_BUCKETS.len()]);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let sum = load(&m.latency_sum_nanos) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {}", load(&m.latency_count));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn events_move_the_right_series() {
        let m = Metrics::default();
        m.observe(&Event::ConnOpened {
            id: Arc::from("w:1-1"),
            kind: ConnKind::Http,
            peer: Arc::from("127.0.0.1"),
        });
        m.observe(&Event::ConnOpened {
            id: Arc::from("w:2-1"),
            kind: ConnKind::Http,
            peer: Arc::from("127.0.0.1"),
        });
        m.observe(&Event::ConnClosed {
            id: Arc::from("w:1-1"),
        });
        m.observe(&Event::Published(PublishInput::ZmqPull));
        m.observe(&Event::Delivered {
            channel: Arc::from("c"),
            item_id: None,
            transport: Transport::HttpStream,
            count: 3,
            bytes: 5,
        });
        m.observe(&Event::Dropped {
            reason: DropReason::Malformed,
            count: 2,
        });
        m.observe(&Event::PublishLatency(Duration::from_micros(300)));
        m.observe(&Event::PublishLatency(Duration::from_secs(10)));
        m.add_connection_minutes(4);
        m.set_subscriptions(7);
        let text = render(&m, "hf_");
        assert!(text.contains("# HELP hf_request_received Number of requests received\n"));
        assert!(text.contains("# TYPE hf_request_received counter\n"));
        assert!(text.contains("# TYPE hf_connection_connected gauge\n"));
        assert_eq!(value(&text, "hf_request_received"), "2");
        assert_eq!(value(&text, "hf_connection_connected"), "1");
        assert_eq!(value(&text, "hf_connection_minute"), "4");
        assert_eq!(value(&text, "hf_message_received"), "1");
        assert_eq!(value(&text, "hf_message_sent"), "3");
        assert_eq!(value(&text, "hf_connections{transport=\"http\"}"), "1");
        assert_eq!(value(&text, "hf_subscriptions"), "7");
        assert_eq!(
            value(&text, "hf_publish_received_total{input=\"zmq-pull\"}"),
            "1"
        );
        assert_eq!(
            value(&text, "hf_publish_received_total{input=\"http\"}"),
            "0"
        );
        assert_eq!(
            value(&text, "hf_delivery_total{transport=\"http-stream\"}"),
            "3"
        );
        assert_eq!(value(&text, "hf_drop_total{reason=\"malformed\"}"), "2");
        assert_eq!(
            value(&text, "hf_publish_latency_seconds_bucket{le=\"0.0001\"}"),
            "0"
        );
        assert_eq!(
            value(&text, "hf_publish_latency_seconds_bucket{le=\"0.0005\"}"),
            "1"
        );
        assert_eq!(
            value(&text, "hf_publish_latency_seconds_bucket{le=\"5\"}"),
            "1"
        );
        assert_eq!(
            value(&text, "hf_publish_latency_seconds_bucket{le=\"+Inf\"}"),
            "2"
        );
        assert_eq!(value(&text, "hf_publish_latency_seconds_count"), "2");
        assert!(value(&text, "hf_publish_latency_seconds_sum").starts_with("10.0003"));
        // Every series has its HELP and TYPE once.
        assert_eq!(text.matches("# TYPE ").count(), 11);
    }
}
