//! The stats socket (reference §6.7): a PUB socket on `stats_spec` publishing `conn`, `sub`,
//! `message` and `report` packets.
//!
//! Three parts:
//! * [`StatsObserver`] records the hub's and the session table's events under a short mutex,
//!   coalesced per connection and per subscription, so memory is bounded by the live
//!   connections and subscriptions (plus at most [`MAX_PENDING_MESSAGES`] `message` packets
//!   between two passes; beyond that they are dropped and counted);
//! * [`Reporter`] is the pure state machine: given what happened and the time it returns the
//!   packets to send (new/closed connections and subscriptions, refreshes every ttl×3/4,
//!   reports every `stats_report_interval`);
//! * a tokio task runs the reporter every [`PASS`] and hands encoded messages to the PUB
//!   socket's own thread over a bounded channel (full: the message is dropped, as a PUB socket
//!   at its high-water mark would).

pub mod packet;
mod reporter;
pub mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use holdfast_proto::config::StatsFormat;

pub use self::reporter::{Reporter, ReporterConfig};
use crate::metrics::Metrics;
use crate::observe::{ConnKind, Event, Observer, SubMode, Transport};

/// How often pending events become packets.
pub const PASS: Duration = Duration::from_millis(100);

/// `message` packets kept between two passes at most.
pub const MAX_PENDING_MESSAGES: usize = 10_000;

/// A connection's change since the last pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnChange {
    /// Set when it opened: its kind, the peer address and when.
    pub opened: Option<(ConnKind, Arc<str>, Instant)>,
    /// The id of the route it was given (only routes with an explicit `id`), once known: its
    /// `conn` packets then carry `route`, as Pushpin's do.
    pub route: Option<Arc<str>>,
    /// It closed.
    pub closed: bool,
}

/// One `message` packet's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageStat {
    /// Channel.
    pub channel: Arc<str>,
    /// Item id.
    pub item_id: Option<Arc<str>>,
    /// Receivers.
    pub count: usize,
    /// Transport.
    pub transport: Transport,
}

/// What happened since the last pass.
#[derive(Debug, Default)]
pub struct Pending {
    /// Connections opened or closed.
    pub conns: HashMap<Arc<str>, ConnChange>,
    /// Subscriptions: the new count, or `None` when gone.
    pub subs: HashMap<(SubMode, Arc<str>), Option<usize>>,
    /// Deliveries.
    pub messages: Vec<MessageStat>,
    /// Items received.
    pub received: u64,
    /// Messages sent (receivers).
    pub sent: u64,
    /// Long-polls completed by publishes.
    pub http_response_sent: u64,
    /// Content bytes sent.
    pub content_bytes_sent: u64,
}

/// Records events for the reporter.
#[derive(Debug, Default)]
pub struct StatsObserver {
    pending: Mutex<Pending>,
    /// `message` packets dropped because too many were pending.
    pub dropped_messages: AtomicU64,
    /// Whether deliveries are recorded for `message` packets: only while the reporter builds
    /// packets (see [`ReporterConfig::send`]); the counters are kept either way.
    messages_wanted: AtomicBool,
}

impl StatsObserver {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Plain counters and maps: still consistent after a panic elsewhere.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that connection `id` was given the route whose explicit id is `route` (§6.7:
    /// packets about it carry `route`). Meant for the code that selects routes, which knows
    /// the connection id of the request it routes; a connection never seen opening is ignored
    /// by the reporter, so calling this for an unknown id costs one pending entry only.
    pub fn set_route(&self, id: &Arc<str>, route: Arc<str>) {
        self.lock().conns.entry(id.clone()).or_default().route = Some(route);
    }

    /// Whether deliveries are recorded for `message` packets from now on (set by [`run`]
    /// before each pass, as the reporter's `send`).
    pub fn set_messages_wanted(&self, wanted: bool) {
        self.messages_wanted.store(wanted, Ordering::Relaxed);
    }

    /// Takes what happened since the last call.
    pub fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }
}

impl Observer for StatsObserver {
    fn observe(&self, event: &Event) {
        match event {
            Event::ConnOpened { id, kind, peer } => {
                self.lock().conns.entry(id.clone()).or_default().opened =
                    Some((*kind, peer.clone(), Instant::now()));
            }
            Event::ConnClosed { id } => {
                self.lock().conns.entry(id.clone()).or_default().closed = true;
            }
            Event::Subscribed {
                mode,
                channel,
                subscribers,
            } => {
                self.lock()
                    .subs
                    .insert((*mode, channel.clone()), Some(*subscribers));
            }
            Event::Unsubscribed { mode, channel } => {
                self.lock().subs.insert((*mode, channel.clone()), None);
            }
            Event::Delivered {
                channel,
                item_id,
                transport,
                count,
                bytes,
            } => {
                let mut p = self.lock();
                p.sent += *count as u64;
                p.content_bytes_sent += (*count as u64).saturating_mul(*bytes as u64);
                if *transport == Transport::HttpResponse {
                    p.http_response_sent += *count as u64;
                }
                if !self.messages_wanted.load(Ordering::Relaxed) {
                    // Nobody reads the packets: no per-delivery record to build and drop.
                } else if p.messages.len() < MAX_PENDING_MESSAGES {
                    p.messages.push(MessageStat {
                        channel: channel.clone(),
                        item_id: item_id.clone(),
                        count: *count,
                        transport: *transport,
                    });
                } else {
                    self.dropped_messages.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Published(_) => self.lock().received += 1,
            Event::RouteSelected { id, route } => self.set_route(id, route.clone()),
            Event::Listen(_)
            | Event::Unlisten(_)
            | Event::Dropped { .. }
            | Event::PublishLatency(_) => {}
        }
    }
}

/// Runs the reporter until aborted: every [`PASS`], takes the observer's events and sends
/// the packets through `out` (when a stats socket is configured and somebody subscribes to
/// it; otherwise the reporter only keeps its tables and counters).
pub async fn run(
    observer: Arc<StatsObserver>,
    mut reporter: Reporter,
    format: StatsFormat,
    out: Option<socket::StatsSender>,
    metrics: Arc<Metrics>,
) {
    let mut interval = tokio::time::interval(PASS);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let send = out.as_ref().is_some_and(socket::StatsSender::listening);
        observer.set_messages_wanted(send);
        let pending = observer.take();
        reporter.set_send(send);
        let packets = reporter.step(pending, Instant::now());
        metrics.add_connection_minutes(reporter.take_minutes_for_metrics());
        metrics.set_subscriptions(reporter.subscriptions());
        if let Some(out) = &out {
            for p in packets {
                out.send(p.encode(format));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered() -> Event {
        Event::Delivered {
            channel: Arc::from("c"),
            item_id: None,
            transport: Transport::HttpStream,
            count: 3,
            bytes: 5,
        }
    }

    #[test]
    fn deliveries_are_recorded_for_packets_only_while_wanted() {
        let observer = StatsObserver::default();
        observer.observe(&delivered());
        let p = observer.take();
        assert!(p.messages.is_empty(), "nobody reads the packets");
        assert_eq!(
            (p.sent, p.content_bytes_sent),
            (3, 15),
            "the counters still count"
        );

        observer.set_messages_wanted(true);
        observer.observe(&delivered());
        let p = observer.take();
        assert_eq!(p.messages.len(), 1);
        assert_eq!((p.sent, p.content_bytes_sent), (3, 15));
    }
}
